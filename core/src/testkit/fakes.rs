//! Pieces of the tiny base learners that meta-learner tests serve through a
//! [`FakeHost`](super::FakeHost): a learner that always fails ([`Boom`]), a
//! one-split tree model with an exchange form ([`StumpModel`]), and helpers
//! to write and read test models as JSON.

use serde_json::{Value, json};

use crate::{
    HostContextRef, Matrix, MatrixRef, PluginError, Task, TrainData,
    ir::{Combine, Link, ModelIr, Tree, TreeEnsemble, TreeNode},
    plugin::{LearnerImpl, ModelImpl},
};

/// A "corrupt model" error naming `e`.
pub fn corrupt(e: impl std::fmt::Display) -> PluginError {
    PluginError::corrupt(format!("test model: {e}"))
}

/// The numbers of a JSON array, or a [`corrupt`] error.
pub fn floats(v: &Value) -> Result<Vec<f32>, PluginError> {
    v.as_array()
        .ok_or_else(|| corrupt("not an array"))?
        .iter()
        .map(|x| {
            x.as_f64()
                .map(|f| f as f32)
                .ok_or_else(|| corrupt("not a number"))
        })
        .collect()
}

/// `t` as the JSON array `[kind, n_classes]`.
pub fn task_json(t: Task) -> Value {
    json!([t.kind, t.n_classes])
}

/// The task of a JSON array starting `[kind, n_classes, ..]`.
pub fn task_from(v: &Value) -> Result<Task, PluginError> {
    match (v[0].as_u64(), v[1].as_u64()) {
        (Some(kind), Some(n)) => Ok(Task {
            kind: kind as u8,
            n_classes: n as u32,
        }),
        _ => Err(corrupt("task")),
    }
}

/// The index of the largest value, the first on ties.
pub fn argmax(v: &[f32]) -> usize {
    let mut best = 0;
    for (i, &x) in v.iter().enumerate() {
        if x > v[best] {
            best = i;
        }
    }
    best
}

/// A learner whose training always fails with an input error carrying its
/// message.
pub struct Boom(pub &'static str);

impl LearnerImpl for Boom {
    fn fit(
        &self,
        _ctx: &HostContextRef<'_>,
        _data: &TrainData<'_>,
    ) -> Result<Box<dyn ModelImpl>, PluginError> {
        Err(PluginError::input(self.0))
    }
}

/// A one-split tree: rows whose `feature` is at most `threshold` (or
/// missing) get `left`, the others `right`; with no feature, every row gets
/// `left`. The values are class shares (classification) or one value
/// (regression).
#[derive(Clone, Debug)]
pub struct StumpModel {
    /// The task trained for.
    pub task: Task,
    /// The number of features.
    pub cols: usize,
    /// The split feature; `None`: a single leaf.
    pub feature: Option<usize>,
    /// The split threshold.
    pub threshold: f32,
    /// The values of the left leaf.
    pub left: Vec<f32>,
    /// The values of the right leaf.
    pub right: Vec<f32>,
    /// Whether a classifier answers `predict_proba` (with its leaf shares).
    pub proba: bool,
    /// A JSON object the summary starts from.
    pub info: Value,
}

impl StumpModel {
    fn values(&self, row: &[f32]) -> &[f32] {
        match self.feature {
            Some(f) if !(row[f] <= self.threshold || row[f].is_nan()) => &self.right,
            _ => &self.left,
        }
    }

    /// Reads the bytes of [`ModelImpl::to_bytes`]; the shape of a
    /// [`LoadFn`](crate::plugin::LoadFn).
    pub fn load(
        bytes: &[u8],
        _ctx: &HostContextRef<'_>,
    ) -> Result<Box<dyn ModelImpl>, PluginError> {
        let v: Value = serde_json::from_slice(bytes).map_err(corrupt)?;
        Ok(Box::new(StumpModel {
            task: task_from(&v["task"])?,
            cols: v["cols"].as_u64().ok_or_else(|| corrupt("cols"))? as usize,
            feature: v["feature"].as_u64().map(|f| f as usize),
            threshold: v["threshold"]
                .as_f64()
                .ok_or_else(|| corrupt("threshold"))? as f32,
            left: floats(&v["left"])?,
            right: floats(&v["right"])?,
            proba: v["proba"].as_bool().ok_or_else(|| corrupt("proba"))?,
            info: v["info"].clone(),
        }))
    }
}

impl ModelImpl for StumpModel {
    fn task(&self) -> Task {
        self.task
    }
    fn n_features(&self) -> usize {
        self.cols
    }
    fn predict(
        &self,
        _ctx: &HostContextRef<'_>,
        x: MatrixRef<'_>,
    ) -> Result<Vec<f32>, PluginError> {
        Ok((0..x.rows())
            .map(|r| {
                let v = self.values(x.row(r));
                if self.task.is_classification() {
                    argmax(v) as f32
                } else {
                    v[0]
                }
            })
            .collect())
    }
    fn predict_proba(
        &self,
        _ctx: &HostContextRef<'_>,
        x: MatrixRef<'_>,
    ) -> Result<Matrix, PluginError> {
        if !self.proba || !self.task.is_classification() {
            return Err(PluginError::unsupported("stump: no probabilities"));
        }
        let data: Vec<f32> = (0..x.rows())
            .flat_map(|r| self.values(x.row(r)).to_vec())
            .collect();
        Ok(Matrix::new(data, x.rows(), self.task.n_classes as usize))
    }
    fn describe(&self) -> Value {
        let mut d = self.info.clone();
        d["feature"] = json!(self.feature);
        d["threshold"] = json!(self.threshold);
        d
    }
    fn to_bytes(&self) -> Result<Vec<u8>, PluginError> {
        Ok(json!({
            "task": task_json(self.task),
            "cols": self.cols,
            "feature": self.feature,
            "threshold": self.threshold,
            "left": self.left,
            "right": self.right,
            "proba": self.proba,
            "info": self.info,
        })
        .to_string()
        .into_bytes())
    }
    fn to_ir(&self) -> Option<ModelIr> {
        let k = self.left.len() as u32;
        let leaf = TreeNode::leaf;
        let nodes = match self.feature {
            None => vec![leaf(0)],
            Some(f) => vec![
                TreeNode {
                    feature: f as u32,
                    threshold: self.threshold,
                    left: 1,
                    right: 2,
                    value: 0,
                    missing_left: 1,
                },
                leaf(0),
                leaf(k),
            ],
        };
        let classify = self.task.is_classification();
        Some(ModelIr::Trees(TreeEnsemble {
            n_features: self.cols as u32,
            n_outputs: k,
            n_classes: if classify { self.task.n_classes } else { 0 },
            combine: Combine::Mean,
            link: Link::Identity,
            base_score: Vec::new().into(),
            trees: vec![Tree {
                nodes: nodes.into(),
                values: [self.left.clone(), self.right.clone()].concat().into(),
                output: Tree::ALL_OUTPUTS,
            }]
            .into(),
        }))
    }
}
