//! The trained ensemble: the weighted vote (SAMME) with scikit-learn's
//! decision function and probabilities, the weighted median
//! (AdaBoost.R2), the summary and the exchange form.
//!
//! A classifier whose members are single trees (the default
//! `decision_tree` stumps, for one) has an exchange form
//! (`tree_ensemble`); it is compiled for the inference engine on first
//! use and predicts through it, all members in one pass over the rows.
//! Any other classifier, and every regressor (a weighted median, which no
//! sum of trees gives), asks its members one after the other.

use std::sync::OnceLock;

use serde_json::{Map, Value, json};
use tessera_core::{
    HostContextRef, Matrix, MatrixRef, ModelBox, PluginError, Task,
    ir::{Combine, Link, ModelIr, Tree, TreeEnsemble},
    plugin::ModelImpl,
};
use tessera_engine::Engine;

use super::params::LEARNER;

/// Rows predicted at once by a regressor, whose members' predictions are
/// all held until the median is taken.
const MEDIAN_BLOCK: usize = 1 << 16;

/// An AdaBoost ensemble.
pub struct AdaBoostModel {
    /// Regression or classification.
    pub task: Task,
    /// Feature columns of the training data.
    pub n_features: usize,
    /// The settings it was trained with and why it stopped, a JSON object
    /// (stored with the model, shown by describe()).
    pub info: Value,
    /// The members, at least one, in the order they were fitted.
    pub members: Vec<ModelBox>,
    /// Each member's weight.
    pub weights: Vec<f64>,
    /// Each member's weighted training error.
    pub errors: Vec<f64>,
    /// The exchange form compiled, on first use; `None` when the members
    /// make none (or the engine refuses it).
    engine: OnceLock<Option<Engine>>,
}

/// Runs member `i`'s `predict` on `x` and checks its output: one value per
/// row, and for classification a class index.
///
/// # Errors
/// The member's error, saying which member failed, or an output of the
/// wrong size or kind.
pub fn predict_member(
    i: usize,
    model: &ModelBox,
    ctx: HostContextRef<'_>,
    x: MatrixRef<'_>,
    task: Task,
) -> Result<Vec<f32>, PluginError> {
    let out = model.predict(ctx, x).into_result().map_err(|e| {
        PluginError::new(
            e.kind,
            format!(
                "{LEARNER}: member {i} (`{}`) failed to predict: {}",
                model.component(),
                e.message
            ),
        )
    })?;
    if out.len() != x.rows() {
        return Err(PluginError::internal(format!(
            "{LEARNER}: member {i} (`{}`) returned {} values for {} rows",
            model.component(),
            out.len(),
            x.rows()
        )));
    }
    if task.is_classification() {
        let k = task.n_classes;
        if let Some(c) = out
            .iter()
            .find(|c| !(**c >= 0.0 && c.fract() == 0.0 && (**c as u32) < k))
        {
            return Err(PluginError::internal(format!(
                "{LEARNER}: member {i} (`{}`) predicted {c}, not a class index below {k}",
                model.component()
            )));
        }
    }
    Ok(out.into_vec())
}

/// The index of the largest value; the first one on ties.
fn argmax<T: PartialOrd + Copy>(row: &[T]) -> usize {
    let mut best = 0;
    for (c, &v) in row.iter().enumerate() {
        if v > row[best] {
            best = c;
        }
    }
    best
}

/// `softmax(row)` in place, shifted by the largest value for stability.
fn softmax(row: &mut [f64]) {
    let max = row.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let mut sum = 0.0;
    for v in row.iter_mut() {
        *v = (*v - max).exp();
        sum += *v;
    }
    row.iter_mut().for_each(|v| *v /= sum);
}

/// The weighted median of `values` under `weights` as scikit-learn takes
/// it: sorted by value, the first whose cumulative weight reaches half the
/// total (with all weights zero, the smallest value). `order` is scratch.
fn weighted_median(values: &[f32], weights: &[f64], order: &mut Vec<usize>) -> f32 {
    order.clear();
    order.extend(0..values.len());
    order.sort_unstable_by(|&a, &b| values[a].total_cmp(&values[b]));
    let total: f64 = order.iter().map(|&m| weights[m]).sum();
    let mut acc = 0.0;
    for &m in order.iter() {
        acc += weights[m];
        if acc >= 0.5 * total {
            return values[m];
        }
    }
    values[order[order.len() - 1]]
}

impl AdaBoostModel {
    /// An ensemble of `members` with their weights and errors.
    ///
    /// # Errors
    /// No members, lengths that disagree, or weights that are negative, not
    /// finite, or (classification) sum to zero.
    pub fn new(
        task: Task,
        n_features: usize,
        info: Value,
        members: Vec<ModelBox>,
        weights: Vec<f64>,
        errors: Vec<f64>,
    ) -> Result<Self, PluginError> {
        let fault = if members.is_empty() {
            Some("no members".to_string())
        } else if weights.len() != members.len() || errors.len() != members.len() {
            Some(format!(
                "{} weights and {} errors for {} members",
                weights.len(),
                errors.len(),
                members.len()
            ))
        } else if weights.iter().any(|w| !(w.is_finite() && *w >= 0.0)) {
            Some("a member weight is negative or not finite".to_string())
        } else if task.is_classification() && weights.iter().sum::<f64>() <= 0.0 {
            Some("the member weights sum to zero".to_string())
        } else {
            None
        };
        if let Some(f) = fault {
            return Err(PluginError::internal(format!("{LEARNER}: {f}")));
        }
        Ok(Self {
            task,
            n_features,
            info,
            members,
            weights,
            errors,
            engine: OnceLock::new(),
        })
    }

    /// The members compiled into one tree ensemble (compiled on the first
    /// call), when they make one: a classifier of single-tree members.
    pub fn engine(&self) -> Option<&Engine> {
        self.engine
            .get_or_init(|| tree_ensemble(self).and_then(|e| Engine::new(&e).ok()))
            .as_ref()
    }

    fn n_classes(&self) -> usize {
        self.task.n_classes as usize
    }

    /// scikit-learn's `decision_function` for `K > 1` classes, as `K`
    /// values per row: `sum_m w_m * (1 if member m votes c, else
    /// -1 / (K - 1)) / sum_m w_m`.
    fn decision(
        &self,
        ctx: &HostContextRef<'_>,
        x: MatrixRef<'_>,
    ) -> Result<Vec<f64>, PluginError> {
        let k = self.n_classes();
        let mut votes = vec![0.0f64; x.rows() * k];
        for (i, (m, &w)) in self.members.iter().zip(&self.weights).enumerate() {
            if ctx.is_cancelled() {
                return Err(PluginError::cancelled());
            }
            let pred = predict_member(i, m, ctx.sabi_reborrow(), x, self.task)?;
            for (row, &c) in votes.chunks_exact_mut(k).zip(&pred) {
                row[c as usize] += w;
            }
        }
        let total: f64 = self.weights.iter().sum();
        let other = 1.0 / (k as f64 - 1.0);
        for v in &mut votes {
            *v = (*v - (total - *v) * other) / total;
        }
        Ok(votes)
    }

    /// Class probabilities as scikit-learn's `predict_proba`, member by
    /// member:
    /// `softmax(decision / (K - 1))`, which for two classes is
    /// `softmax([-d, d] / 2)` of the binary decision `d = dec_1 - dec_0`.
    fn proba(&self, ctx: &HostContextRef<'_>, x: MatrixRef<'_>) -> Result<Vec<f64>, PluginError> {
        let k = self.n_classes();
        if k <= 1 {
            return Ok(vec![1.0; x.rows() * k]);
        }
        let mut p = self.decision(ctx, x)?;
        let scale = 1.0 / (k as f64 - 1.0);
        for row in p.chunks_exact_mut(k) {
            if k == 2 {
                let d = row[1] - row[0];
                row[0] = -d / 2.0;
                row[1] = d / 2.0;
            } else {
                row.iter_mut().for_each(|v| *v *= scale);
            }
            softmax(row);
        }
        Ok(p)
    }

    /// The classes, member by member: for two, class 1 when the binary
    /// decision is positive; otherwise the largest decision (the first on
    /// ties).
    fn classes(&self, ctx: &HostContextRef<'_>, x: MatrixRef<'_>) -> Result<Vec<f32>, PluginError> {
        let k = self.n_classes();
        if k <= 1 {
            return Ok(vec![0.0; x.rows()]);
        }
        let dec = self.decision(ctx, x)?;
        Ok(dec
            .chunks_exact(k)
            .map(|row| {
                if k == 2 {
                    f32::from(u8::from(row[1] - row[0] > 0.0))
                } else {
                    argmax(row) as f32
                }
            })
            .collect())
    }

    /// The weighted median of the members' predictions, block by block.
    fn median(&self, ctx: &HostContextRef<'_>, x: MatrixRef<'_>) -> Result<Vec<f32>, PluginError> {
        let (rows, cols) = (x.rows(), x.cols());
        let n = self.members.len();
        let mut out = Vec::with_capacity(rows);
        let mut order = Vec::with_capacity(n);
        let mut column = vec![0.0f32; n];
        let mut start = 0;
        while start < rows {
            let end = (start + MEDIAN_BLOCK).min(rows);
            let block = MatrixRef::new(&x.as_slice()[start * cols..end * cols], end - start, cols)?;
            let mut preds = Vec::with_capacity(n);
            for (i, m) in self.members.iter().enumerate() {
                if ctx.is_cancelled() {
                    return Err(PluginError::cancelled());
                }
                preds.push(predict_member(i, m, ctx.sabi_reborrow(), block, self.task)?);
            }
            for r in 0..end - start {
                for (c, p) in column.iter_mut().zip(&preds) {
                    *c = p[r];
                }
                out.push(weighted_median(&column, &self.weights, &mut order));
            }
            start = end;
        }
        Ok(out)
    }
}

impl ModelImpl for AdaBoostModel {
    fn task(&self) -> Task {
        self.task
    }

    fn n_features(&self) -> usize {
        self.n_features
    }

    fn predict(&self, ctx: &HostContextRef<'_>, x: MatrixRef<'_>) -> Result<Vec<f32>, PluginError> {
        if let Some(e) = self.engine() {
            // The class of the largest summed score: for two classes, class
            // 1 when its score is above class 0's, as [`Self::classes`].
            return Ok(e.labels(&e.raw(ctx, x)?));
        }
        if self.task.is_classification() {
            self.classes(ctx, x)
        } else {
            self.median(ctx, x)
        }
    }

    fn predict_proba(
        &self,
        ctx: &HostContextRef<'_>,
        x: MatrixRef<'_>,
    ) -> Result<Matrix, PluginError> {
        if !self.task.is_classification() {
            return Err(PluginError::unsupported(format!(
                "{LEARNER} regression models do not predict probabilities"
            )));
        }
        if let Some(e) = self.engine() {
            return Ok(Matrix::new(e.proba(&e.raw(ctx, x)?), x.rows(), e.n_proba()));
        }
        let p = self.proba(ctx, x)?;
        Ok(Matrix::new(
            p.into_iter().map(|v| v as f32).collect(),
            x.rows(),
            self.n_classes(),
        ))
    }

    fn describe(&self) -> Value {
        let mut d = match &self.info {
            Value::Object(m) => m.clone(),
            _ => Map::new(),
        };
        d.insert("component".into(), json!(LEARNER));
        d.insert("task".into(), json!(self.task.name()));
        if self.task.is_classification() {
            d.insert("n_classes".into(), json!(self.task.n_classes));
        }
        d.insert("n_features".into(), json!(self.n_features));
        d.insert("n_members".into(), json!(self.members.len()));
        d.insert("estimator_weights".into(), json!(self.weights));
        d.insert("estimator_errors".into(), json!(self.errors));
        let first = &self.members[0];
        d.insert(
            "first_member".into(),
            json!({
                "component": first.component().as_str(),
                "summary": serde_json::from_str::<Value>(first.describe().as_str())
                    .unwrap_or(Value::Null),
            }),
        );
        Value::Object(d)
    }

    fn to_bytes(&self) -> Result<Vec<u8>, PluginError> {
        super::serialize::to_bytes(self)
    }

    fn to_ir(&self) -> Option<ModelIr> {
        tree_ensemble(self).map(ModelIr::Trees)
    }
}

/// The classifier as one tree ensemble, when every member is a single tree
/// whose leaves hold class values (its vote is their argmax): each leaf
/// gets, for every class `c`, the member's contribution to scikit-learn's
/// `decision / (K - 1)`, that is `w / (W (K - 1))` for the class it votes
/// and `-w / (W (K - 1)²)` for the others (`W` the sum of the weights), so
/// that summing the trees and applying softmax gives `predict_proba`.
/// Regressors (a weighted median) have no such form.
fn tree_ensemble(m: &AdaBoostModel) -> Option<TreeEnsemble> {
    let k = m.n_classes();
    if !m.task.is_classification() || k < 2 {
        return None;
    }
    let total: f64 = m.weights.iter().sum();
    let scale = 1.0 / (total * (k as f64 - 1.0));
    let mut trees = Vec::with_capacity(m.members.len());
    for (member, &w) in m.members.iter().zip(&m.weights) {
        let ModelIr::Trees(t) = member.to_ir().into_option()? else {
            return None;
        };
        let single = t.trees.len() == 1
            && t.link == Link::Identity
            && matches!(t.combine, Combine::Mean | Combine::Vote)
            && t.n_outputs as usize == k
            && t.n_classes as usize == k
            && t.n_features as usize == m.n_features
            && t.base_score.iter().all(|&b| b == 0.0);
        if !single {
            return None;
        }
        let tree = t.trees.into_iter().next()?;
        if tree.output != Tree::ALL_OUTPUTS {
            return None;
        }
        let hit = (w * scale) as f32;
        let miss = (-w * scale / (k as f64 - 1.0)) as f32;
        let mut nodes = tree.nodes.to_vec();
        let mut values = Vec::new();
        for node in nodes.iter_mut().filter(|n| n.is_leaf()) {
            let at = node.value as usize;
            let vote = argmax(tree.values.get(at..at + k)?);
            node.value = u32::try_from(values.len()).ok()?;
            values.extend((0..k).map(|c| if c == vote { hit } else { miss }));
        }
        trees.push(Tree {
            nodes: nodes.into(),
            values: values.into(),
            output: Tree::ALL_OUTPUTS,
        });
    }
    Some(TreeEnsemble {
        n_features: u32::try_from(m.n_features).ok()?,
        n_outputs: k as u32,
        n_classes: k as u32,
        combine: Combine::Sum,
        link: Link::Softmax,
        base_score: Vec::new().into(),
        trees: trees.into(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use tessera_core::{
        NullContext,
        plugin::{model_box, seeds::SplitMix},
        testkit::trees::{self, TreesModel},
    };

    const P: usize = 5;

    /// An AdaBoost model of `members` random single trees (walked by their
    /// own model, [`TreesModel`]), with equal or random weights.
    fn ensemble(rng: &mut SplitMix, task: Task, members: usize, equal: bool) -> AdaBoostModel {
        let k = (task.n_classes as usize).max(1);
        let members: Vec<ModelBox> = (0..members)
            .map(|_| {
                let trees = vec![trees::random_tree(rng, P, k, 6)];
                model_box(
                    "tree",
                    Box::new(TreesModel {
                        task,
                        cols: P,
                        trees,
                    }),
                )
            })
            .collect();
        let n = members.len();
        let weights = (0..n)
            .map(|_| if equal { 0.7 } else { rng.unit() * 3.0 })
            .collect();
        AdaBoostModel::new(task, P, json!({}), members, weights, vec![0.1; n]).unwrap()
    }

    #[test]
    fn engine_agrees_with_the_members() {
        let mut rng = SplitMix::new(3);
        let x = trees::random_rows(&mut rng, 700, P);
        let ctx = NullContext { threads: 2 };
        let ctx = ctx.as_ref();
        for k in [2u32, 3, 4] {
            for (members, equal) in [(1, false), (4, true), (9, true), (30, false)] {
                let what = format!("{k} classes, {members} members, equal weights {equal}");
                let m = ensemble(&mut rng, Task::classification(k), members, equal);
                let e = m.engine().expect("single trees make an ensemble");
                assert_eq!(e.n_trees(), members, "{what}");
                // In one batch and row by row (the engine's two walks).
                let n = x.len() / P;
                let parts: Vec<MatrixRef<'_>> = std::iter::once(MatrixRef::new(&x, n, P).unwrap())
                    .chain(
                        x.chunks(P)
                            .take(40)
                            .map(|r| MatrixRef::new(r, 1, P).unwrap()),
                    )
                    .collect();
                for xm in parts {
                    let want = m.classes(&ctx, xm).unwrap();
                    assert_eq!(m.predict(&ctx, xm).unwrap(), want, "{what}");
                    let want = m.proba(&ctx, xm).unwrap();
                    let got = m.predict_proba(&ctx, xm).unwrap();
                    assert_eq!(got.data.len(), want.len(), "{what}");
                    for (g, w) in got.data.iter().zip(&want) {
                        assert!((f64::from(*g) - w).abs() < 1e-6, "{what}: {g} vs {w}");
                    }
                }
            }
        }
        // A regressor's weighted median is no sum of trees: its members
        // answer.
        let m = ensemble(&mut rng, Task::regression(), 5, false);
        assert!(m.engine().is_none());
        let xm = MatrixRef::new(&x, x.len() / P, P).unwrap();
        assert_eq!(m.predict(&ctx, xm).unwrap(), m.median(&ctx, xm).unwrap());
    }

    #[test]
    fn weighted_medians_follow_scikit_learn() {
        let mut order = Vec::new();
        // Sorted 1, 2, 3 with weights .2, .3, .5: cumulative .2, .5, 1;
        // half of 1 is first reached at 2.
        assert_eq!(
            weighted_median(&[3.0, 1.0, 2.0], &[0.5, 0.2, 0.3], &mut order),
            2.0
        );
        assert_eq!(
            weighted_median(&[3.0, 1.0, 2.0], &[0.6, 0.2, 0.1], &mut order),
            3.0
        );
        // All weights zero: the smallest.
        assert_eq!(
            weighted_median(&[3.0, 1.0, 2.0], &[0.0; 3], &mut order),
            1.0
        );
        assert_eq!(weighted_median(&[7.5], &[0.0], &mut order), 7.5);
    }

    #[test]
    fn softmax_and_argmax() {
        let mut r = [0.0, (2.0f64).ln()];
        softmax(&mut r);
        assert!((r[0] - 1.0 / 3.0).abs() < 1e-15 && (r[1] - 2.0 / 3.0).abs() < 1e-15);
        assert_eq!(argmax(&[1.0, 3.0, 3.0]), 1);
        assert_eq!(argmax(&[0.5f32, 0.5]), 0);
    }
}
