//! A trained forest (or single tree): prediction (mean of the trees' class
//! distributions or values) through the inference engine, its summary, and
//! its exchange form.

use std::sync::OnceLock;

use serde_json::{Value, json};
use tessera_core::{
    HostContextRef, Matrix, MatrixRef, PluginError, Task,
    ir::{Combine, Link, ModelIr, TreeEnsemble},
    plugin::{ModelImpl, for_row_blocks},
};
use tessera_engine::Engine;

use crate::{serialize, tree::Tree};

/// Rows per unit of parallel work of the plain walk (used only for trees
/// the engine refuses), and between cancellation checks.
const CHUNK: usize = 4096;

/// A trained random forest or decision tree.
#[derive(Clone, Debug)]
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
    /// The trees compiled for the inference engine, on first use; `None`
    /// when the engine refuses them (more than its 2^25 features, or a
    /// tree deeper than its 4096 levels), and the trees are walked row by
    /// row.
    engine: OnceLock<Option<Engine>>,
}

impl PartialEq for ForestModel {
    /// The models' contents; whether either has compiled its trees yet does
    /// not matter.
    fn eq(&self, o: &Self) -> bool {
        (
            self.learner,
            self.task,
            self.n_features,
            &self.trees,
            &self.importances,
            self.oob_score,
            &self.params,
        ) == (
            o.learner,
            o.task,
            o.n_features,
            &o.trees,
            &o.importances,
            o.oob_score,
            &o.params,
        )
    }
}

impl ForestModel {
    /// A model of `trees` (compiled for prediction on first use).
    pub fn new(
        learner: &'static str,
        task: Task,
        n_features: usize,
        trees: Vec<Tree>,
        importances: Vec<f64>,
        oob_score: Option<f64>,
        params: Value,
    ) -> Self {
        Self {
            learner,
            task,
            n_features,
            trees,
            importances,
            oob_score,
            params,
            engine: OnceLock::new(),
        }
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

    /// The trees in exchange form: the mean of the trees' leaf values, each
    /// leaf holding the class distribution (both probabilities for two
    /// classes) or the mean.
    pub fn ensemble(&self) -> TreeEnsemble {
        let nc = self.n_classes();
        TreeEnsemble {
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
        }
    }

    /// The trees compiled (on the first call), or `None` when the engine
    /// refuses them.
    pub fn engine(&self) -> Option<&Engine> {
        self.engine
            .get_or_init(|| Engine::new(&self.ensemble()).ok())
            .as_ref()
    }

    /// The mean of the trees' outputs for the rows of `x`, `n_outputs` per
    /// row, row-major: through the engine, or walked when it refuses the
    /// trees.
    ///
    /// # Errors
    /// Cancellation, or no threads.
    pub fn raw(&self, ctx: &HostContextRef<'_>, x: MatrixRef<'_>) -> Result<Vec<f64>, PluginError> {
        match self.engine() {
            Some(e) => e.raw(ctx, x),
            None => self.walk(ctx, x),
        }
    }

    /// What [`ForestModel::raw`] computes, each row walked down each tree
    /// in turn (the trees' own layout, no engine), adding up in the trees'
    /// order. The values agree with the engine's to within rounding: it
    /// adds the trees up in another order (deepest first), and a binary
    /// classifier's output 0 is
    /// `1 - p` here in `f64`, there in `f32` (the model reads output 1
    /// only).
    ///
    /// # Errors
    /// Cancellation, or no threads.
    pub fn walk(
        &self,
        ctx: &HostContextRef<'_>,
        x: MatrixRef<'_>,
    ) -> Result<Vec<f64>, PluginError> {
        let (k, p, nc) = (self.n_outputs(), self.n_features, self.n_classes());
        let scale = 1.0 / self.trees.len().max(1) as f64;
        let mut out = vec![0.0f64; x.rows() * k];
        for_row_blocks(ctx, x.as_slice(), p, &mut out, k, CHUNK, |xc, oc| {
            for (row, o) in xc.chunks_exact(p).zip(oc.chunks_exact_mut(k)) {
                for t in &self.trees {
                    t.accumulate(row, nc, o);
                }
                o.iter_mut().for_each(|v| *v *= scale);
            }
        })?;
        Ok(out)
    }

    /// Class probabilities, `rows x n_classes`, row-major: the mean class
    /// distribution; for two classes `1 - p` and `p` of the mean
    /// probability `p` of class 1; for a single class 1.
    fn proba(&self, ctx: &HostContextRef<'_>, x: MatrixRef<'_>) -> Result<Vec<f32>, PluginError> {
        match self.n_classes() {
            1 => Ok(vec![1.0; x.rows()]),
            2 => Ok(self
                .raw(ctx, x)?
                .chunks_exact(2)
                .flat_map(|r| [(1.0 - r[1]) as f32, r[1] as f32])
                .collect()),
            _ => Ok(self.raw(ctx, x)?.into_iter().map(|v| v as f32).collect()),
        }
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
        if self.task.is_classification() {
            // The class of the largest probability as the model states it
            // (in `f32`), so that predictions and probabilities agree.
            Ok(self
                .proba(ctx, x)?
                .chunks_exact(self.n_outputs())
                .map(|p| argmax(p) as f32)
                .collect())
        } else {
            Ok(self.raw(ctx, x)?.into_iter().map(|v| v as f32).collect())
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
        Ok(Matrix::new(self.proba(ctx, x)?, x.rows(), self.n_outputs()))
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
        Some(ModelIr::Trees(self.ensemble()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tree::Node;
    use tessera_core::NullContext;
    use tessera_trees::rng::Rng;

    const P: usize = 6;

    /// A random tree in pre-order: splits on random features and
    /// thresholds with random missing-value sides, a node below the root a
    /// leaf with probability `stop`, leaves holding a value (regression),
    /// the probability of class 1 (two classes), 1 (one class) or a class
    /// distribution.
    fn grow(rng: &mut Rng, t: &mut Tree, nc: usize, depth: usize, max_depth: usize, stop: f64) {
        let i = t.nodes.len();
        if depth == max_depth || (depth > 0 && rng.unit() < stop) {
            t.nodes.push(match nc {
                0 => Node::leaf((rng.unit() * 20.0 - 10.0) as f32),
                1 => Node::leaf(1.0),
                2 => Node::leaf(rng.unit() as f32),
                k => {
                    let offset = t.values.len() as u32;
                    let raw: Vec<f64> = (0..k).map(|_| rng.unit()).collect();
                    let sum: f64 = raw.iter().sum();
                    t.values.extend(raw.iter().map(|v| (v / sum) as f32));
                    Node::leaf_at(offset)
                }
            });
            return;
        }
        let feature = (rng.next_u64() % P as u64) as u32;
        let threshold = (rng.unit() * 3.0 - 1.5) as f32;
        t.nodes
            .push(Node::split(feature, threshold, rng.unit() < 0.5, 0));
        grow(rng, t, nc, depth + 1, max_depth, stop);
        t.nodes[i].right = t.nodes.len() as u32;
        grow(rng, t, nc, depth + 1, max_depth, stop);
    }

    /// A chain `depth` splits long: each split's left child a leaf, its
    /// right child the next split, on low thresholds so most rows go all
    /// the way down.
    fn chain(rng: &mut Rng, nc: usize, depth: usize) -> Tree {
        let mut t = Tree::default();
        let leaf = |t: &mut Tree, rng: &mut Rng| {
            let mut sub = Tree {
                nodes: Vec::new(),
                values: std::mem::take(&mut t.values),
            };
            grow(rng, &mut sub, nc, 0, 0, 1.0);
            t.values = sub.values;
            t.nodes.extend(sub.nodes);
        };
        for d in 0..depth {
            let i = t.nodes.len() as u32;
            let threshold = (rng.unit() * 0.2 - 1.9) as f32;
            t.nodes.push(Node::split(
                (d % P) as u32,
                threshold,
                rng.unit() < 0.5,
                i + 2,
            ));
            leaf(&mut t, rng);
        }
        leaf(&mut t, rng);
        t
    }

    fn model(trees: Vec<Tree>, nc: usize) -> ForestModel {
        let task = if nc == 0 {
            Task::regression()
        } else {
            Task::classification(nc as u32)
        };
        ForestModel::new(
            "random_forest",
            task,
            P,
            trees,
            vec![0.0; P],
            None,
            json!({}),
        )
    }

    /// Rows of uniform values in [-2, 2), about one value in eight missing.
    fn rows(rng: &mut Rng, n: usize) -> Vec<f32> {
        (0..n * P)
            .map(|_| {
                if rng.unit() < 0.125 {
                    f32::NAN
                } else {
                    (rng.unit() * 4.0 - 2.0) as f32
                }
            })
            .collect()
    }

    /// The mean of the exchange form's trees, each walked with
    /// [`tessera_core::ir::Tree::add_to`].
    fn ir_mean(m: &ForestModel, x: &[f32]) -> Vec<f64> {
        let ens = m.ensemble();
        let k = ens.n_outputs as usize;
        let mut out = Vec::new();
        for row in x.chunks_exact(P) {
            let mut acc = vec![0.0f64; k];
            let mut one = vec![0.0f32; k];
            for t in ens.trees.iter() {
                one.fill(0.0);
                t.add_to(row, &mut one);
                acc.iter_mut()
                    .zip(&one)
                    .for_each(|(a, v)| *a += f64::from(*v));
            }
            out.extend(acc.iter().map(|a| a / ens.trees.len() as f64));
        }
        out
    }

    fn assert_close(a: &[f64], b: &[f64], what: &str) {
        assert_eq!(a.len(), b.len(), "{what}");
        for (i, (x, y)) in a.iter().zip(b).enumerate() {
            assert!(
                (x - y).abs() <= 1e-6 * (1.0 + y.abs()),
                "{what}: value {i}: {x} vs {y}"
            );
        }
    }

    /// Checks the engine's answers (batch on two threads, and one row at
    /// a time) against the plain walk of the forest's trees and the walk
    /// of its exchange form, and the predictions and probabilities made
    /// from them.
    fn check(m: &ForestModel, x: &[f32], what: &str) {
        let n = x.len() / P;
        let nc = m.n_classes();
        let k = m.n_outputs();
        let ctx = NullContext { threads: 2 };
        let ctx = ctx.as_ref();
        let xm = MatrixRef::new(x, n, P).unwrap();
        let walked = m.walk(&ctx, xm).unwrap();
        // The whole batch; one row at a time; three rows at a time.
        let batch = m.raw(&ctx, xm).unwrap();
        let mut single = Vec::new();
        for row in x.chunks_exact(P) {
            single.extend(m.raw(&ctx, MatrixRef::new(row, 1, P).unwrap()).unwrap());
        }
        let mut few = Vec::new();
        for rows in x.chunks(3 * P) {
            let xm = MatrixRef::new(rows, rows.len() / P, P).unwrap();
            few.extend(m.raw(&ctx, xm).unwrap());
        }
        assert_close(&few, &batch, &format!("{what}: 3 rows"));
        if nc == 2 {
            // The model reads output 1; output 0 is `1 - p` in `f32` per leaf.
            let p1 = |v: &[f64]| v.chunks(2).map(|r| r[1]).collect::<Vec<_>>();
            assert_close(&p1(&batch), &p1(&walked), &format!("{what}: batch"));
            assert_close(&p1(&single), &p1(&walked), &format!("{what}: single"));
        }
        if nc != 1 {
            assert_close(&batch, &ir_mean(m, x), &format!("{what}: batch vs IR"));
            assert_close(&single, &ir_mean(m, x), &format!("{what}: single vs IR"));
        }
        if nc != 2 && nc != 1 {
            assert_close(&batch, &walked, &format!("{what}: batch"));
            assert_close(&single, &walked, &format!("{what}: single"));
        }
        let pred = m.predict(&ctx, xm).unwrap();
        assert_eq!(pred.len(), n);
        if nc == 0 {
            let want: Vec<f32> = walked.iter().map(|&v| v as f32).collect();
            for (a, b) in pred.iter().zip(&want) {
                assert!(
                    (a - b).abs() <= 1e-5 * (1.0 + b.abs()),
                    "{what}: {a} vs {b}"
                );
            }
            return;
        }
        let proba = m.predict_proba(&ctx, xm).unwrap();
        assert_eq!((proba.rows as usize, proba.cols as usize), (n, k));
        let want: Vec<f32> = match nc {
            1 => vec![1.0; n],
            2 => walked
                .chunks(2)
                .flat_map(|r| [(1.0 - r[1]) as f32, r[1] as f32])
                .collect(),
            _ => walked.iter().map(|&v| v as f32).collect(),
        };
        for (a, b) in proba.data.iter().zip(&want) {
            assert!((a - b).abs() <= 1e-6, "{what}: {a} vs {b}");
        }
        let classes: Vec<f32> = want.chunks(k).map(|p| argmax(p) as f32).collect();
        assert_eq!(pred, classes, "{what}");
    }

    #[test]
    fn engine_agrees_with_the_plain_walk() {
        let mut rng = Rng::new(7);
        let x = rows(&mut rng, 1000);
        for nc in [0, 1, 2, 3, 5] {
            // One tree; a small forest; a forest large enough for the
            // engine to take it tile by tile.
            for (n_trees, depth) in [(1, 9), (13, 6), (40, 12)] {
                let trees = (0..n_trees)
                    .map(|_| {
                        let mut t = Tree::default();
                        grow(&mut rng, &mut t, nc, 0, depth, 0.08);
                        t
                    })
                    .collect();
                let m = model(trees, nc);
                let what = format!("{nc} classes, {n_trees} trees of depth {depth}");
                if nc != 1 {
                    assert!(m.engine().is_some(), "{what}: the engine takes the trees");
                }
                check(&m, &x, &what);
            }
        }
    }

    #[test]
    fn deep_trees_predict() {
        let mut rng = Rng::new(11);
        let x = rows(&mut rng, 300);
        for nc in [0, 2, 3] {
            // Deeper than the engine walks in a fixed number of steps, with
            // random trees besides.
            let mut trees: Vec<Tree> = (0..9).map(|_| chain(&mut rng, nc, 200)).collect();
            for _ in 0..4 {
                let mut t = Tree::default();
                grow(&mut rng, &mut t, nc, 0, 30, 0.4);
                trees.push(t);
            }
            let m = model(trees, nc);
            assert!(m.engine().is_some());
            check(&m, &x, &format!("{nc} classes, chains of 200"));
            // Deeper than the engine takes, if it refuses: walked.
            let m = model(vec![chain(&mut rng, nc, 5000)], nc);
            check(&m, &x, &format!("{nc} classes, a chain of 5000"));
        }
    }
}
