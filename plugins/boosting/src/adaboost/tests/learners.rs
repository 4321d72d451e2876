//! Tiny base learners for the tests, served by the fake host:
//!
//! * `decision_tree`: a one-split tree chosen as scikit-learn's
//!   `DecisionTree*(max_depth=1)` chooses it (weighted Gini or squared
//!   error, midpoint thresholds, the first best split on ties), so that
//!   SAMME can be checked against scikit-learn's numbers. It takes (and
//!   records) `max_depth` and `random_state`, records the weights and
//!   thread budget it trained with, and exposes a one-tree ensemble.
//! * `majority`: ignores weights; predicts the most frequent class (or 0
//!   for regression); no `random_state`, no exchange form.
//! * `boom`: fails to train. `liar`: predicts a class that does not exist
//!   (or NaN for regression).

use serde_json::{Value, json};
use tessera_core::{
    HostContextRef, MatrixRef, PluginError, Task, TrainData,
    params::{ParamSpec, Params},
    plugin::{LearnerDef, LearnerImpl, ModelImpl},
    testkit::fakes::{Boom, StumpModel, argmax, corrupt, task_from},
};

pub fn defs() -> Vec<LearnerDef> {
    vec![
        LearnerDef {
            name: "decision_tree",
            description: "one split",
            params: vec![
                ParamSpec::int("max_depth", None, 1, "recorded"),
                ParamSpec::int("random_state", None, 0, "recorded"),
            ],
            create: |p: Params| Ok(Box::new(StumpLearner(p.to_json()))),
            load: StumpModel::load,
        },
        LearnerDef {
            name: "majority",
            description: "the most frequent class",
            params: vec![],
            create: |_| Ok(Box::new(Majority)),
            load: load_majority,
        },
        LearnerDef {
            name: "boom",
            description: "fails",
            params: vec![],
            create: |_| Ok(Box::new(Boom("boom cannot learn"))),
            load: |_, _| Err(PluginError::corrupt("boom models do not exist")),
        },
        LearnerDef {
            name: "liar",
            description: "predicts nonsense",
            params: vec![],
            create: |_| Ok(Box::new(Liar)),
            load: |_, _| Err(PluginError::corrupt("liar models are not saved")),
        },
    ]
}

// ------------------------------------------------------------------- stump

struct StumpLearner(Value);

/// Weighted class shares, or the weighted mean.
fn leaf(task: Task, rows: &[(f32, f64)]) -> Vec<f32> {
    let total: f64 = rows.iter().map(|r| r.1).sum();
    if task.is_classification() {
        let mut v = vec![0.0f64; task.n_classes as usize];
        for &(y, w) in rows {
            v[y as usize] += w;
        }
        v.iter().map(|c| (c / total) as f32).collect()
    } else {
        vec![(rows.iter().map(|&(y, w)| f64::from(y) * w).sum::<f64>() / total) as f32]
    }
}

/// The weighted impurity of one side, times its weight: Gini or squared
/// error.
fn side_cost(task: Task, sums: &[f64], w: f64) -> f64 {
    if task.is_classification() {
        w * (1.0 - sums.iter().map(|c| (c / w) * (c / w)).sum::<f64>())
    } else {
        // sums = [sum w y, sum w y^2]
        sums[1] - sums[0] * sums[0] / w
    }
}

impl LearnerImpl for StumpLearner {
    fn fit(
        &self,
        ctx: &HostContextRef<'_>,
        data: &TrainData<'_>,
    ) -> Result<Box<dyn ModelImpl>, PluginError> {
        let (n, cols, task) = (data.x.rows(), data.x.cols(), data.task);
        let weight = |r: usize| data.weights.into_option().map_or(1.0, |w| f64::from(w[r]));
        let width = if task.is_classification() {
            task.n_classes as usize
        } else {
            2
        };
        let add = |sums: &mut [f64], r: usize, sign: f64| {
            let (y, w) = (data.y[r], weight(r) * sign);
            if task.is_classification() {
                sums[y as usize] += w;
            } else {
                sums[0] += w * f64::from(y);
                sums[1] += w * f64::from(y) * f64::from(y);
            }
        };
        let mut total = vec![0.0; width];
        (0..n).for_each(|r| add(&mut total, r, 1.0));
        let w_total: f64 = (0..n).map(weight).sum();
        let mut best: Option<(f64, usize, f32)> = None;
        for f in 0..cols {
            let mut order: Vec<usize> = (0..n).collect();
            order.sort_by(|&a, &b| data.x.row(a)[f].total_cmp(&data.x.row(b)[f]));
            let mut left = vec![0.0; width];
            let mut wl = 0.0;
            for j in 0..n.saturating_sub(1) {
                let (r, next) = (order[j], order[j + 1]);
                add(&mut left, r, 1.0);
                wl += weight(r);
                let (a, b) = (data.x.row(r)[f], data.x.row(next)[f]);
                let wr = w_total - wl;
                if a == b || wl <= 0.0 || wr <= 0.0 {
                    continue;
                }
                let right: Vec<f64> = total.iter().zip(&left).map(|(t, l)| t - l).collect();
                let cost = side_cost(task, &left, wl) + side_cost(task, &right, wr);
                if best.is_none_or(|(c, _, _)| cost < c) {
                    best = Some((cost, f, ((f64::from(a) + f64::from(b)) / 2.0) as f32));
                }
            }
        }
        let rows: Vec<(usize, f64)> = (0..n).map(|r| (r, weight(r))).collect();
        let side = |keep: &dyn Fn(usize) -> bool| -> Vec<(f32, f64)> {
            rows.iter()
                .filter(|(r, _)| keep(*r))
                .map(|&(r, w)| (data.y[r], w))
                .collect()
        };
        let all = leaf(task, &side(&|_| true));
        let (feature, threshold, left, right) = match best {
            None => (None, 0.0, all.clone(), all),
            Some((_, f, t)) => (
                Some(f),
                t,
                leaf(task, &side(&|r| data.x.row(r)[f] <= t)),
                leaf(task, &side(&|r| data.x.row(r)[f] > t)),
            ),
        };
        let mut info = self.0.clone();
        info["rows"] = json!(n);
        info["threads"] = json!(ctx.threads());
        info["weights"] = match data.weights.into_option() {
            Some(w) => json!(w.as_slice()),
            None => Value::Null,
        };
        Ok(Box::new(StumpModel {
            task,
            cols,
            feature,
            threshold,
            left,
            right,
            proba: false,
            info,
        }))
    }
}

// ---------------------------------------------------------------- majority

struct Majority;

struct MajorityModel {
    task: Task,
    cols: usize,
    value: f32,
}

impl LearnerImpl for Majority {
    fn fit(
        &self,
        _ctx: &HostContextRef<'_>,
        data: &TrainData<'_>,
    ) -> Result<Box<dyn ModelImpl>, PluginError> {
        let value = if data.task.is_classification() {
            let mut counts = vec![0.0f32; data.task.n_classes as usize];
            data.y.iter().for_each(|&y| counts[y as usize] += 1.0);
            argmax(&counts) as f32
        } else {
            0.0
        };
        Ok(Box::new(MajorityModel {
            task: data.task,
            cols: data.x.cols(),
            value,
        }))
    }
}

impl ModelImpl for MajorityModel {
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
        Ok(vec![self.value; x.rows()])
    }
    fn describe(&self) -> Value {
        json!({ "value": self.value })
    }
    fn to_bytes(&self) -> Result<Vec<u8>, PluginError> {
        Ok(
            json!([self.task.kind, self.task.n_classes, self.cols, self.value])
                .to_string()
                .into_bytes(),
        )
    }
}

fn load_majority(
    bytes: &[u8],
    _ctx: &HostContextRef<'_>,
) -> Result<Box<dyn ModelImpl>, PluginError> {
    let v: Value = serde_json::from_slice(bytes).map_err(corrupt)?;
    Ok(Box::new(MajorityModel {
        task: task_from(&v)?,
        cols: v[2].as_u64().ok_or_else(|| corrupt("cols"))? as usize,
        value: v[3].as_f64().ok_or_else(|| corrupt("value"))? as f32,
    }))
}

// ------------------------------------------------------------- boom, liar

struct Liar;

struct LiarModel {
    task: Task,
    cols: usize,
}

impl LearnerImpl for Liar {
    fn fit(
        &self,
        _ctx: &HostContextRef<'_>,
        data: &TrainData<'_>,
    ) -> Result<Box<dyn ModelImpl>, PluginError> {
        Ok(Box::new(LiarModel {
            task: data.task,
            cols: data.x.cols(),
        }))
    }
}

impl ModelImpl for LiarModel {
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
        let v = if self.task.is_classification() {
            self.task.n_classes as f32
        } else {
            f32::NAN
        };
        Ok(vec![v; x.rows()])
    }
    fn describe(&self) -> Value {
        json!({})
    }
    fn to_bytes(&self) -> Result<Vec<u8>, PluginError> {
        Err(PluginError::internal("liar models are not saved"))
    }
}
