//! A trained forest: prediction (mean of the trees' class distributions or
//! values), its summary, and its exchange form.

use rayon::prelude::*;
use serde_json::{Value, json};
use tessera_core::{
    HostContextRef, Matrix, MatrixRef, PluginError, Task,
    ir::{Combine, Link, ModelIr, TreeEnsemble},
    plugin::{ModelImpl, with_thread_budget},
};

use crate::{serialize, tree::Tree};

/// Rows per unit of parallel prediction work, and between cancellation checks.
const CHUNK: usize = 256;

/// A trained random forest.
#[derive(Clone, Debug, PartialEq)]
pub struct ForestModel {
    /// Regression or classification (with its class count).
    pub task: Task,
    /// Number of feature columns.
    pub n_features: usize,
    /// The trees; each leaf holds `n_outputs()` values.
    pub trees: Vec<Tree>,
    /// Normalised mean decrease in impurity per feature.
    pub importances: Vec<f64>,
    /// The resolved parameters the forest was trained with.
    pub params: Value,
}

impl ForestModel {
    /// Values per leaf: the class count, or 1 for regression.
    pub fn n_outputs(&self) -> usize {
        if self.task.is_classification() {
            self.task.n_classes as usize
        } else {
            1
        }
    }

    /// Averages the trees' leaf values for each row of `x` into `out`.
    fn average_into(&self, x: &[f32], out: &mut [f32]) {
        let k = self.n_outputs();
        let mut acc = vec![0.0f64; k];
        let scale = 1.0 / self.trees.len().max(1) as f64;
        for (row, dst) in x.chunks_exact(self.n_features).zip(out.chunks_exact_mut(k)) {
            acc.fill(0.0);
            for t in &self.trees {
                for (a, &v) in acc.iter_mut().zip(t.predict_row(row, k)) {
                    *a += f64::from(v);
                }
            }
            for (d, a) in dst.iter_mut().zip(&acc) {
                *d = (a * scale) as f32;
            }
        }
    }

    /// The forest's raw output, `rows x n_outputs`, row-major.
    fn average(&self, ctx: &HostContextRef<'_>, x: MatrixRef<'_>) -> Result<Vec<f32>, PluginError> {
        let (k, p) = (self.n_outputs(), self.n_features);
        let mut out = vec![0.0f32; x.rows() * k];
        let xs = x.as_slice();
        let threads = ctx.threads() as usize;
        let run = |(xc, oc): (&[f32], &mut [f32])| {
            if ctx.is_cancelled() {
                return Err(PluginError::cancelled());
            }
            self.average_into(xc, oc);
            Ok(())
        };
        if threads <= 1 || x.rows() <= CHUNK {
            xs.chunks(CHUNK * p)
                .zip(out.chunks_mut(CHUNK * k))
                .try_for_each(run)?;
        } else {
            with_thread_budget(threads, || {
                xs.par_chunks(CHUNK * p)
                    .zip(out.par_chunks_mut(CHUNK * k))
                    .try_for_each(run)
            })??;
        }
        Ok(out)
    }
}

/// Index of the largest value, the first one on ties.
fn argmax(v: &[f32]) -> usize {
    let mut best = 0;
    for (i, &x) in v.iter().enumerate() {
        if x > v[best] {
            best = i;
        }
    }
    best
}

impl ModelImpl for ForestModel {
    fn task(&self) -> Task {
        self.task
    }

    fn n_features(&self) -> usize {
        self.n_features
    }

    fn predict(&self, ctx: &HostContextRef<'_>, x: MatrixRef<'_>) -> Result<Vec<f32>, PluginError> {
        let raw = self.average(ctx, x)?;
        if self.task.is_classification() {
            Ok(raw
                .chunks_exact(self.n_outputs())
                .map(|p| argmax(p) as f32)
                .collect())
        } else {
            Ok(raw)
        }
    }

    fn predict_proba(
        &self,
        ctx: &HostContextRef<'_>,
        x: MatrixRef<'_>,
    ) -> Result<Matrix, PluginError> {
        if !self.task.is_classification() {
            return Err(PluginError::unsupported(
                "a regression random_forest does not predict probabilities",
            ));
        }
        Ok(Matrix::new(
            self.average(ctx, x)?,
            x.rows(),
            self.n_outputs(),
        ))
    }

    fn describe(&self) -> Value {
        let nodes: usize = self.trees.iter().map(|t| t.nodes.len()).sum();
        let leaves: usize = self.trees.iter().map(Tree::n_leaves).sum();
        let depth = self.trees.iter().map(Tree::depth).max().unwrap_or(0);
        json!({
            "model": "random_forest",
            "task": self.task.name(),
            "n_estimators": self.trees.len(),
            "n_classes": if self.task.is_classification() { json!(self.task.n_classes) } else { Value::Null },
            "n_features": self.n_features,
            "params": self.params,
            "total_nodes": nodes,
            "max_depth": depth,
            "mean_leaves": leaves as f64 / self.trees.len().max(1) as f64,
            "feature_importances": self.importances,
        })
    }

    fn to_bytes(&self) -> Result<Vec<u8>, PluginError> {
        Ok(serialize::to_bytes(self))
    }

    fn to_ir(&self) -> Option<ModelIr> {
        let classify = self.task.is_classification();
        Some(ModelIr::Trees(TreeEnsemble {
            n_features: self.n_features as u32,
            n_outputs: self.n_outputs() as u32,
            n_classes: if classify { self.task.n_classes } else { 0 },
            combine: Combine::Mean,
            link: Link::Identity,
            base_score: Vec::new().into(),
            trees: self
                .trees
                .iter()
                .map(|t| tessera_core::ir::Tree {
                    nodes: t.nodes.clone().into(),
                    values: t.values.clone().into(),
                })
                .collect::<Vec<_>>()
                .into(),
        }))
    }
}
