//! The trained ensemble: prediction by averaging or voting, its summary and
//! its exchange form.

use serde_json::{Map, Value, json};
use tessera_core::{
    HostContextRef, Matrix, MatrixRef, ModelBox, PluginError, Task,
    ir::{Combine, Link, ModelIr, TreeEnsemble},
    plugin::ModelImpl,
};

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
