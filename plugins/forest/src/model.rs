//! A trained forest (or single tree): prediction (mean of the trees' class
//! distributions or values), its summary, and its exchange form.

use serde_json::{Value, json};
use tessera_core::{
    HostContextRef, Matrix, MatrixRef, PluginError, Task,
    ir::{Combine, Link, ModelIr, TreeEnsemble},
    plugin::{ModelImpl, for_row_blocks},
};

use crate::{
    serialize,
    tree::{Tree, Walk},
};

/// Rows per unit of parallel prediction work, and between cancellation checks.
const CHUNK: usize = 65536;
/// Rows walked down one tree before moving to the next, so that the tree's
/// upper nodes stay in cache across rows.
const BLOCK: usize = 65536;
/// Rows descending a tree in lockstep.
const LANES: usize = 8;

/// A trained random forest or decision tree.
#[derive(Clone, Debug, PartialEq)]
pub struct ForestModel {
    /// `random_forest` or `decision_tree`.
    pub learner: &'static str,
    /// Regression or classification (with its class count).
    pub task: Task,
    /// Number of feature columns.
    pub n_features: usize,
    /// The trees.
    pub trees: Vec<Tree>,
    /// Normalised mean decrease in impurity per feature.
    pub importances: Vec<f64>,
    /// The out-of-bag score, when asked for and defined.
    pub oob_score: Option<f64>,
    /// The resolved parameters the model was trained with.
    pub params: Value,
    /// The trees laid out for batch prediction.
    walks: Vec<Walk>,
}

impl ForestModel {
    /// A model of `trees`, with the prediction layout built.
    pub fn new(
        learner: &'static str,
        task: Task,
        n_features: usize,
        trees: Vec<Tree>,
        importances: Vec<f64>,
        oob_score: Option<f64>,
        params: Value,
    ) -> Self {
        let mut m = Self {
            learner,
            task,
            n_features,
            trees,
            importances,
            oob_score,
            params,
            walks: Vec::new(),
        };
        let width = Tree::leaf_width(m.n_classes());
        m.walks = m.trees.iter().map(|t| Walk::new(t, width)).collect();
        m
    }

    /// Class count, or 0 for regression.
    pub fn n_classes(&self) -> usize {
        if self.task.is_classification() {
            self.task.n_classes as usize
        } else {
            0
        }
    }

    /// Outputs per row: the class count, or 1 for regression.
    pub fn n_outputs(&self) -> usize {
        self.n_classes().max(1)
    }

    /// Averages the trees' outputs for the rows of `x` into `out`
    /// (`n_outputs` per row). Each tree walks a whole block of rows before
    /// the next, so its nodes stay in cache.
    fn average_into(&self, x: &[f32], out: &mut [f32]) {
        let (p, k, nc) = (self.n_features, self.n_outputs(), self.n_classes());
        let width = Tree::leaf_width(nc);
        let scale = 1.0 / self.trees.len().max(1) as f64;
        let mut acc = vec![0.0f64; BLOCK.min(x.len() / p.max(1)) * width];
        for (xb, ob) in x.chunks(BLOCK * p).zip(out.chunks_mut(BLOCK * k)) {
            let rows = xb.len() / p;
            let nan = xb.iter().any(|v| v.is_nan());
            acc.fill(0.0);
            for (t, w) in self.trees.iter().zip(&self.walks) {
                let mut add = |r: usize, payload: u32| {
                    let a = &mut acc[r * width..(r + 1) * width];
                    if width == 1 {
                        a[0] += f64::from(f32::from_bits(payload));
                    } else {
                        let o = payload as usize;
                        for (a, &v) in a.iter_mut().zip(&t.values[o..o + width]) {
                            *a += f64::from(v);
                        }
                    }
                };
                let groups = xb.chunks_exact(LANES * p);
                let tail = groups.remainder();
                for (g, group) in groups.enumerate() {
                    let leaves = if nan {
                        w.leaves::<LANES, true>(group, p)
                    } else {
                        w.leaves::<LANES, false>(group, p)
                    };
                    for (l, leaf) in leaves.into_iter().enumerate() {
                        add(g * LANES + l, w.payload(leaf));
                    }
                }
                let start = rows - tail.len() / p;
                for (l, row) in tail.chunks_exact(p).enumerate() {
                    add(start + l, w.payload(t.leaf(row) as u32));
                }
            }
            for (a, o) in acc
                .chunks_exact(width)
                .zip(ob.chunks_exact_mut(k))
                .take(rows)
            {
                match nc {
                    2 => {
                        let p1 = a[0] * scale;
                        o[0] = (1.0 - p1) as f32;
                        o[1] = p1 as f32;
                    }
                    1 => o[0] = 1.0,
                    _ => {
                        for (o, a) in o.iter_mut().zip(a) {
                            *o = (a * scale) as f32;
                        }
                    }
                }
            }
        }
    }

    /// The model's raw output, `rows x n_outputs`, row-major.
    fn average(&self, ctx: &HostContextRef<'_>, x: MatrixRef<'_>) -> Result<Vec<f32>, PluginError> {
        let (k, p) = (self.n_outputs(), self.n_features);
        let mut out = vec![0.0f32; x.rows() * k];
        let threads = ctx.threads() as usize;
        // One chunk per thread (capped, for cancellation checks): each tree
        // is walked by as many rows as possible while its nodes are cached.
        let chunk = x.rows().div_ceil(threads.max(1)).clamp(LANES, CHUNK);
        for_row_blocks(ctx, x.as_slice(), p, &mut out, k, chunk, |xc, oc| {
            self.average_into(xc, oc)
        })?;
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
            return Err(PluginError::unsupported(format!(
                "a regression {} does not predict probabilities",
                self.learner
            )));
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
        let mut d = json!({
            "model": self.learner,
            "task": self.task.name(),
            "n_estimators": self.trees.len(),
            "n_classes": if self.task.is_classification() { json!(self.task.n_classes) } else { Value::Null },
            "n_features": self.n_features,
            "params": self.params,
            "total_nodes": nodes,
            "max_depth": depth,
            "mean_leaves": leaves as f64 / self.trees.len().max(1) as f64,
            "feature_importances": self.importances,
        });
        if let Some(s) = self.oob_score {
            d["oob_score"] = json!(s);
        }
        if self.learner == crate::params::TREE_LEARNER {
            d["n_leaves"] = json!(leaves);
        }
        d
    }

    fn to_bytes(&self) -> Result<Vec<u8>, PluginError> {
        Ok(serialize::to_bytes(self))
    }

    fn to_ir(&self) -> Option<ModelIr> {
        let nc = self.n_classes();
        Some(ModelIr::Trees(TreeEnsemble {
            n_features: self.n_features as u32,
            n_outputs: self.n_outputs() as u32,
            n_classes: nc as u32,
            combine: Combine::Mean,
            link: Link::Identity,
            base_score: Vec::new().into(),
            trees: self
                .trees
                .iter()
                .map(|t| t.to_ir(nc))
                .collect::<Vec<_>>()
                .into(),
        }))
    }
}
