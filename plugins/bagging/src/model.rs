//! The trained ensemble: prediction by averaging or voting, its summary and
//! its exchange form.
//!
//! When the members pool into one tree ensemble (`tree_ensemble`: every
//! member a tree ensemble averaged alike, under soft voting or for
//! regression), the pooled trees are compiled for the inference engine on
//! first use and the model predicts through it, all members in one pass
//! over the rows (and no copy of a member's columns). Otherwise (hard
//! voting, or any member not such a tree ensemble) the members are asked
//! one after the other.

use std::sync::OnceLock;

use serde_json::{Map, Value, json};
use tessera_core::{
    HostContextRef, Matrix, MatrixRef, ModelBox, PluginError, Task,
    ir::{Combine, Link, ModelIr, TreeEnsemble},
    plugin::ModelImpl,
};
use tessera_engine::Engine;

use crate::{parallel::for_each_member, params::LEARNER, sample};

/// Members whose describe() is shown in full in the summary; beyond this
/// only the first one is.
const MEMBERS_SHOWN: usize = 10;

/// How the members' outputs combine.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Voting {
    /// Regression: the mean of the predictions.
    Mean,
    /// Classification: the mean of the class probabilities.
    Soft,
    /// Classification: the share of votes for each class.
    Hard,
}

impl Voting {
    /// The name shown in the summary.
    pub fn name(self) -> &'static str {
        match self {
            Self::Mean => "mean",
            Self::Soft => "soft",
            Self::Hard => "hard",
        }
    }

    /// The byte stored in the model.
    pub fn code(self) -> u8 {
        match self {
            Self::Mean => 0,
            Self::Soft => 1,
            Self::Hard => 2,
        }
    }

    /// What each member is asked for under this voting.
    pub fn ask(self) -> Ask {
        match self {
            Self::Soft => Ask::Proba,
            Self::Mean | Self::Hard => Ask::Predict,
        }
    }

    /// Reads [`Voting::code`] back.
    pub fn from_code(code: u8) -> Option<Self> {
        match code {
            0 => Some(Self::Mean),
            1 => Some(Self::Soft),
            2 => Some(Self::Hard),
            _ => None,
        }
    }
}

/// One member: a model of the base learner and the feature columns it
/// reads.
pub struct Member {
    /// Columns of the full feature space, in the member's order.
    pub features: Vec<u32>,
    /// Whether `features` is every column in order (no copy needed).
    pub all_features: bool,
    /// The component that trained the model (and loads it).
    pub component: String,
    /// The model.
    pub model: ModelBox,
}

impl Member {
    /// A member reading `features` of `n_features` columns.
    pub fn new(features: Vec<u32>, n_features: usize, model: ModelBox) -> Self {
        Self {
            all_features: sample::is_all(&features, n_features),
            component: model.component().to_string(),
            features,
            model,
        }
    }

    /// The member's view of `x`: its columns, copied unless it reads all.
    fn input<'a>(&self, x: MatrixRef<'a>, buf: &'a mut Vec<f32>) -> MatrixRef<'a> {
        if self.all_features {
            return x;
        }
        *buf = sample::gather(x, None, Some(&self.features));
        MatrixRef::new(buf, x.rows(), self.features.len())
            .expect("gathered matrix matches its shape")
    }
}

/// A bagging ensemble.
pub struct BaggingModel {
    /// Regression or classification.
    pub task: Task,
    /// Feature columns of the data it was trained on.
    pub n_features: usize,
    /// How member outputs combine.
    pub voting: Voting,
    /// The settings it was trained with and its out-of-bag score, a JSON
    /// object (stored with the model, shown by describe()).
    pub info: Value,
    /// The members, at least one.
    pub members: Vec<Member>,
    /// The members' pooled trees compiled, on first use; `None` when they
    /// do not pool (or the engine refuses them).
    pub(crate) engine: OnceLock<Option<Engine>>,
}

/// What each member is asked for.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Ask {
    /// `predict`: values or class indices.
    Predict,
    /// `predict_proba`: class probabilities.
    Proba,
}

/// Runs `ask` on member `m` for `x`, checking the output's shape.
///
/// # Errors
/// The member's error, with which member failed, or an output of the wrong
/// shape.
pub fn ask_member(
    i: usize,
    m: &Member,
    ctx: HostContextRef<'_>,
    x: MatrixRef<'_>,
    ask: Ask,
    task: Task,
) -> Result<Vec<f32>, PluginError> {
    let mut buf = Vec::new();
    let input = m.input(x, &mut buf);
    let fail = |e: PluginError| {
        PluginError::new(
            e.kind,
            format!(
                "{LEARNER}: member {i} (`{}`) failed to predict: {}",
                m.component, e.message
            ),
        )
    };
    let (out, width) = match ask {
        Ask::Predict => (m.model.predict(ctx, input).into_result().map_err(fail)?, 1),
        Ask::Proba => {
            let p = m
                .model
                .predict_proba(ctx, input)
                .into_result()
                .map_err(fail)?;
            let k = task.n_classes as usize;
            if p.rows as usize != x.rows() || p.cols as usize != k {
                return Err(PluginError::internal(format!(
                    "{LEARNER}: member {i} (`{}`) returned {} x {} probabilities for {} rows and \
                     {k} classes",
                    m.component,
                    p.rows,
                    p.cols,
                    x.rows()
                )));
            }
            (p.data, k)
        }
    };
    if out.len() != x.rows() * width {
        return Err(PluginError::internal(format!(
            "{LEARNER}: member {i} (`{}`) returned {} values for {} rows",
            m.component,
            out.len(),
            x.rows()
        )));
    }
    Ok(out.into_vec())
}

/// Adds member `i`'s output `out` to `sums`: its values as they are, or
/// (hard voting) one vote for its predicted class. Output row `j` belongs to
/// row `rows[j]` of `sums` (row `j` when `rows` is `None`).
///
/// # Errors
/// A predicted class that is not a class index.
pub fn accumulate(
    sums: &mut [f64],
    rows: Option<&[usize]>,
    out: &[f32],
    voting: Voting,
    task: Task,
    i: usize,
) -> Result<(), PluginError> {
    let target = |j: usize| rows.map_or(j, |r| r[j]);
    if voting == Voting::Hard {
        let k = task.n_classes as usize;
        for (j, &c) in out.iter().enumerate() {
            if !(c >= 0.0 && c.fract() == 0.0 && (c as usize) < k) {
                return Err(PluginError::internal(format!(
                    "{LEARNER}: member {i} predicted {c}, not a class index below {k}"
                )));
            }
            sums[target(j) * k + c as usize] += 1.0;
        }
        return Ok(());
    }
    let width = if task.is_classification() {
        task.n_classes as usize
    } else {
        1
    };
    for (j, values) in out.chunks(width.max(1)).enumerate() {
        let at = target(j) * width;
        for (s, &v) in sums[at..at + width].iter_mut().zip(values) {
            *s += f64::from(v);
        }
    }
    Ok(())
}

/// The index of the largest value; the first one on ties.
pub fn argmax(row: &[f64]) -> usize {
    let mut best = 0;
    for (c, &v) in row.iter().enumerate() {
        if v > row[best] {
            best = c;
        }
    }
    best
}

impl BaggingModel {
    /// The members' pooled trees, compiled on the first call, when they
    /// pool: see `tree_ensemble`, which pools only where the pooled mean is
    /// what the members' answers combine into (never under hard voting).
    pub fn engine(&self) -> Option<&Engine> {
        self.engine
            .get_or_init(|| tree_ensemble(self).and_then(|e| Engine::new(&e).ok()))
            .as_ref()
    }

    /// The members' combined outputs for `x`: per row the sum of the
    /// predictions (regression), of the probabilities (soft voting) or of
    /// the votes per class (hard voting), summed in member order.
    fn sums(&self, ctx: &HostContextRef<'_>, x: MatrixRef<'_>) -> Result<Vec<f64>, PluginError> {
        let width = if self.task.is_classification() {
            self.task.n_classes as usize
        } else {
            1
        };
        let mut sums = vec![0.0f64; x.rows() * width];
        let ask = self.voting.ask();
        let batch = 2 * ctx.threads().max(1) as usize;
        for_each_member(
            ctx,
            self.members.len(),
            batch,
            |i, sub| ask_member(i, &self.members[i], sub, x, ask, self.task),
            |i, out| accumulate(&mut sums, None, &out, self.voting, self.task, i),
        )?;
        Ok(sums)
    }

    /// Class probabilities as `f64`, rows of `n_classes`.
    fn proba(&self, ctx: &HostContextRef<'_>, x: MatrixRef<'_>) -> Result<Vec<f64>, PluginError> {
        let n = self.members.len().max(1) as f64;
        let mut p = self.sums(ctx, x)?;
        p.iter_mut().for_each(|v| *v /= n);
        Ok(p)
    }
}

impl ModelImpl for BaggingModel {
    fn task(&self) -> Task {
        self.task
    }

    fn n_features(&self) -> usize {
        self.n_features
    }

    fn predict(&self, ctx: &HostContextRef<'_>, x: MatrixRef<'_>) -> Result<Vec<f32>, PluginError> {
        if let Some(e) = self.engine() {
            // The mean value, or the class of the largest mean probability.
            return Ok(e.labels(&e.raw(ctx, x)?));
        }
        if self.task.is_classification() {
            let k = (self.task.n_classes as usize).max(1);
            let p = self.proba(ctx, x)?;
            return Ok(p.chunks(k).map(|row| argmax(row) as f32).collect());
        }
        let n = self.members.len().max(1) as f64;
        Ok(self
            .sums(ctx, x)?
            .into_iter()
            .map(|s| (s / n) as f32)
            .collect())
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
        let k = self.task.n_classes as usize;
        if let Some(e) = self.engine() {
            return Ok(Matrix::new(e.proba(&e.raw(ctx, x)?), x.rows(), k));
        }
        let p = self.proba(ctx, x)?;
        Ok(Matrix::new(
            p.into_iter().map(|v| v as f32).collect(),
            x.rows(),
            k,
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
        d.insert("voting".into(), json!(self.voting.name()));
        let shown = if self.members.len() <= MEMBERS_SHOWN {
            self.members.len()
        } else {
            1
        };
        let members: Vec<Value> = self.members[..shown]
            .iter()
            .map(|m| {
                let summary = serde_json::from_str::<Value>(m.model.describe().as_str())
                    .unwrap_or(Value::Null);
                json!({
                    "component": m.component,
                    "features": if m.all_features { json!("all") } else { json!(m.features) },
                    "summary": summary,
                })
            })
            .collect();
        d.insert("members".into(), Value::Array(members));
        if shown < self.members.len() {
            d.insert("members_omitted".into(), json!(self.members.len() - shown));
        }
        Value::Object(d)
    }

    fn to_bytes(&self) -> Result<Vec<u8>, PluginError> {
        crate::serialize::to_bytes(self)
    }

    fn to_ir(&self) -> Option<ModelIr> {
        tree_ensemble(self).map(ModelIr::Trees)
    }
}

/// All members' trees as one ensemble, when that gives the same answers:
/// every member a tree ensemble whose outputs are averaged (`Mean`) or
/// voted (`Vote`) with no link, all alike and with the same number of
/// trees, so that pooling the trees averages the members. Split features
/// are mapped from each member's columns back to the full feature space.
///
/// The pooled mean is the mean of the members' outputs, which is what the
/// model answers for regression (the mean prediction) and under soft
/// voting (the mean probabilities, whose largest is the class). Under hard
/// voting the model counts the members' classes instead, which no mean of
/// the members' trees gives: there is no ensemble then, and the model
/// (which predicts through this ensemble whenever there is one, see
/// [`BaggingModel::engine`]) asks its members.
fn tree_ensemble(m: &BaggingModel) -> Option<TreeEnsemble> {
    if m.voting == Voting::Hard {
        return None;
    }
    let classify = m.task.is_classification();
    let (n_outputs, n_classes) = if classify {
        (m.task.n_classes, m.task.n_classes)
    } else {
        (1, 0)
    };
    let mut first: Option<(Combine, Vec<f32>, usize)> = None;
    let mut trees = Vec::new();
    for member in &m.members {
        let ModelIr::Trees(t) = member.model.to_ir().into_option()? else {
            return None;
        };
        let alike = t.link == Link::Identity
            && matches!(t.combine, Combine::Mean | Combine::Vote)
            && t.n_outputs == n_outputs
            && t.n_classes == n_classes
            && t.n_features as usize == member.features.len()
            && !t.trees.is_empty();
        if !alike {
            return None;
        }
        let base = t.base_score.to_vec();
        match &first {
            None => first = Some((t.combine, base, t.trees.len())),
            Some((combine, b, count)) => {
                if *combine != t.combine || *b != base || *count != t.trees.len() {
                    return None;
                }
            }
        }
        for mut tree in t.trees.into_iter() {
            for node in tree.nodes.iter_mut() {
                if !node.is_leaf() {
                    node.feature = *member.features.get(node.feature as usize)?;
                }
            }
            trees.push(tree);
        }
    }
    let (combine, base_score, _) = first?;
    Some(TreeEnsemble {
        n_features: u32::try_from(m.n_features).ok()?,
        n_outputs,
        n_classes,
        combine,
        link: Link::Identity,
        base_score: base_score.into(),
        trees: trees.into(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use tessera_core::{
        NullContext,
        ir::Tree,
        plugin::{model_box, seeds::SplitMix},
        testkit::trees::{self, TreesModel},
    };

    /// Columns of the full data.
    const P: usize = 7;

    /// A random tree on `cols` columns, at most `depth` deep, whose leaves
    /// hold a class distribution (`k > 1`) or a value.
    fn random_tree(rng: &mut SplitMix, cols: usize, k: usize, depth: usize) -> Tree {
        let mut t = trees::random_tree(rng, cols, k, depth);
        for leaf in t.values.chunks_mut(k) {
            let sum: f32 = if k > 1 { leaf.iter().sum() } else { 0.1 };
            leaf.iter_mut().for_each(|v| *v /= sum);
        }
        t
    }

    /// A bagging model of `members` random forests of `trees` trees each,
    /// each member on a random draw of the columns (with repeats) unless
    /// `all`.
    fn bagging(
        rng: &mut SplitMix,
        task: Task,
        voting: Voting,
        members: usize,
        trees: usize,
        all: bool,
    ) -> BaggingModel {
        let k = (task.n_classes as usize).max(1);
        let members = (0..members)
            .map(|_| {
                let features: Vec<u32> = if all {
                    (0..P as u32).collect()
                } else {
                    (0..4).map(|_| rng.below(P) as u32).collect()
                };
                let cols = features.len();
                let trees = (0..trees).map(|_| random_tree(rng, cols, k, 5)).collect();
                let model = model_box("forest", Box::new(TreesModel { task, cols, trees }));
                Member::new(features, P, model)
            })
            .collect();
        BaggingModel {
            task,
            n_features: P,
            voting,
            info: json!({}),
            members,
            engine: OnceLock::new(),
        }
    }

    #[test]
    fn engine_agrees_with_the_members() {
        let mut rng = SplitMix::new(5);
        let x = trees::random_rows(&mut rng, 600, P);
        let ctx = NullContext { threads: 2 };
        let ctx = ctx.as_ref();
        let n = x.len() / P;
        let parts: Vec<MatrixRef<'_>> = std::iter::once(MatrixRef::new(&x, n, P).unwrap())
            .chain(
                x.chunks(P)
                    .take(30)
                    .map(|r| MatrixRef::new(r, 1, P).unwrap()),
            )
            .collect();
        let tasks = [
            (Task::classification(2), Voting::Soft),
            (Task::classification(3), Voting::Soft),
            (Task::classification(5), Voting::Soft),
            (Task::regression(), Voting::Mean),
        ];
        for (task, voting) in tasks {
            for (members, trees, all) in [(1, 1, true), (10, 1, false), (6, 4, false)] {
                let what = format!("{}, {members} members of {trees} trees", task.name());
                let m = bagging(&mut rng, task, voting, members, trees, all);
                let e = m.engine().expect("forests pool");
                assert_eq!(e.n_trees(), members * trees, "{what}");
                for &xm in &parts {
                    let got = m.predict(&ctx, xm).unwrap();
                    if task.is_classification() {
                        let k = task.n_classes as usize;
                        let want = m.proba(&ctx, xm).unwrap();
                        let classes: Vec<f32> = want.chunks(k).map(|r| argmax(r) as f32).collect();
                        assert_eq!(got, classes, "{what}");
                        let p = m.predict_proba(&ctx, xm).unwrap();
                        assert_eq!(p.data.len(), want.len(), "{what}");
                        for (g, w) in p.data.iter().zip(&want) {
                            assert!((f64::from(*g) - w).abs() < 1e-6, "{what}: {g} vs {w}");
                        }
                    } else {
                        let want = m.sums(&ctx, xm).unwrap();
                        for (g, w) in got.iter().zip(&want) {
                            let w = w / members as f64;
                            assert!((f64::from(*g) - w).abs() < 1e-5, "{what}: {g} vs {w}");
                        }
                    }
                }
            }
        }
        // Hard voting counts the members' classes, which no mean of their
        // trees gives: the members answer.
        let m = bagging(&mut rng, Task::classification(3), Voting::Hard, 5, 2, false);
        assert!(m.engine().is_none());
        let xm = parts[0];
        let p = m.predict_proba(&ctx, xm).unwrap();
        assert!(p.data.iter().all(|v| (v * 5.0).fract() == 0.0));
        // Members of different sizes do not pool either.
        let mut m = bagging(&mut rng, Task::regression(), Voting::Mean, 3, 2, true);
        m.members
            .extend(bagging(&mut rng, Task::regression(), Voting::Mean, 1, 3, true).members);
        assert!(m.engine().is_none());
        assert_eq!(m.predict(&ctx, xm).unwrap().len(), n);
    }
}
