//! Tiny base learners for the tests, served by the fake host:
//!
//! * `knn`: k nearest neighbours; has `random_state` (recorded, unused) and
//!   `proba` (false: no probabilities, so bagging must vote). Its summary
//!   tells what it was trained on.
//! * `stump`: one split on the last of its columns, exposing a tree
//!   ensemble; no `random_state`.
//! * `probe`: predicts the thread budget it was trained with.
//! * `boom`: fails to train.

use serde_json::{Value, json};
use tessera_core::{
    HostContextRef, Matrix, MatrixRef, PluginError, Task, TrainData,
    params::{ParamSpec, Params},
    plugin::{LearnerDef, LearnerImpl, ModelImpl},
    testkit::fakes::{Boom, StumpModel, argmax, corrupt, floats, task_from, task_json},
};

pub fn defs() -> Vec<LearnerDef> {
    vec![
        LearnerDef {
            name: "knn",
            description: "k nearest neighbours",
            params: vec![
                ParamSpec::int("k", Some(3), 1, "neighbours"),
                ParamSpec::int("random_state", None, 0, "recorded"),
                ParamSpec::bool("proba", true, "predict probabilities"),
            ],
            create: create_knn,
            load: load_knn,
        },
        LearnerDef {
            name: "stump",
            description: "one split",
            params: vec![],
            create: |_| Ok(Box::new(Stump)),
            load: StumpModel::load,
        },
        LearnerDef {
            name: "probe",
            description: "predicts its thread budget",
            params: vec![],
            create: |_| Ok(Box::new(Probe)),
            load: load_probe,
        },
        LearnerDef {
            name: "boom",
            description: "fails",
            params: vec![],
            create: |_| Ok(Box::new(Boom("boom: cannot learn this"))),
            load: |_, _| Err(PluginError::corrupt("boom models do not exist")),
        },
    ]
}

// ---------------------------------------------------------------- knn

struct Knn {
    k: usize,
    random_state: Option<u64>,
    proba: bool,
}

fn create_knn(p: Params) -> Result<Box<dyn LearnerImpl>, PluginError> {
    Ok(Box::new(Knn {
        k: p.usize("k"),
        random_state: p.opt_u64("random_state"),
        proba: p.bool("proba"),
    }))
}

pub struct KnnModel {
    task: Task,
    cols: usize,
    k: usize,
    random_state: Option<u64>,
    proba: bool,
    x: Vec<f32>,
    y: Vec<f32>,
    weight_sum: f64,
    names: Vec<String>,
}

impl LearnerImpl for Knn {
    fn fit(
        &self,
        _ctx: &HostContextRef<'_>,
        data: &TrainData<'_>,
    ) -> Result<Box<dyn ModelImpl>, PluginError> {
        Ok(Box::new(KnnModel {
            task: data.task,
            cols: data.x.cols(),
            k: self.k,
            random_state: self.random_state,
            proba: self.proba,
            x: data.x.as_slice().to_vec(),
            y: data.y.to_vec(),
            weight_sum: data
                .weights
                .into_option()
                .map_or(data.x.rows() as f64, |w| {
                    w.iter().map(|&v| f64::from(v)).sum()
                }),
            names: data.feature_names.iter().map(|n| n.to_string()).collect(),
        }))
    }
}

impl KnnModel {
    /// The targets of the `k` nearest training rows of `row`.
    fn neighbours(&self, row: &[f32]) -> Vec<f32> {
        let mut d: Vec<(f32, usize)> = self
            .x
            .chunks(self.cols)
            .enumerate()
            .map(|(i, t)| {
                let dist = t
                    .iter()
                    .zip(row)
                    .map(|(a, b)| {
                        let diff = a - b;
                        if diff.is_nan() { 0.0 } else { diff * diff }
                    })
                    .sum::<f32>();
                (dist, i)
            })
            .collect();
        d.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
        d.iter().take(self.k).map(|&(_, i)| self.y[i]).collect()
    }

    fn shares(&self, x: MatrixRef<'_>) -> Vec<f32> {
        let k = self.task.n_classes as usize;
        let mut out = Vec::with_capacity(x.rows() * k);
        for r in 0..x.rows() {
            let n = self.neighbours(x.row(r));
            let mut counts = vec![0.0f32; k];
            for c in &n {
                counts[*c as usize] += 1.0;
            }
            out.extend(counts.iter().map(|c| c / n.len() as f32));
        }
        out
    }
}

impl ModelImpl for KnnModel {
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
        if self.task.is_classification() {
            let k = self.task.n_classes as usize;
            return Ok(self.shares(x).chunks(k).map(|c| argmax(c) as f32).collect());
        }
        Ok((0..x.rows())
            .map(|r| {
                let n = self.neighbours(x.row(r));
                n.iter().sum::<f32>() / n.len() as f32
            })
            .collect())
    }
    fn predict_proba(
        &self,
        _ctx: &HostContextRef<'_>,
        x: MatrixRef<'_>,
    ) -> Result<Matrix, PluginError> {
        if !self.task.is_classification() || !self.proba {
            return Err(PluginError::unsupported("knn: no probabilities"));
        }
        let k = self.task.n_classes as usize;
        Ok(Matrix::new(self.shares(x), x.rows(), k))
    }
    fn describe(&self) -> Value {
        let mut rows: Vec<Vec<u32>> = self
            .x
            .chunks(self.cols)
            .map(|r| r.iter().map(|v| v.to_bits()).collect())
            .collect();
        rows.sort();
        rows.dedup();
        json!({
            "rows": self.y.len(),
            "distinct_rows": rows.len(),
            "features": self.names,
            "random_state": self.random_state,
            "k": self.k,
            "weight_sum": self.weight_sum,
        })
    }
    fn to_bytes(&self) -> Result<Vec<u8>, PluginError> {
        Ok(json!({
            "task": task_json(self.task),
            "cols": self.cols,
            "k": self.k,
            "random_state": self.random_state,
            "proba": self.proba,
            "x": self.x,
            "y": self.y,
            "weight_sum": self.weight_sum,
            "names": self.names,
        })
        .to_string()
        .into_bytes())
    }
}

fn load_knn(bytes: &[u8], _ctx: &HostContextRef<'_>) -> Result<Box<dyn ModelImpl>, PluginError> {
    let v: Value = serde_json::from_slice(bytes).map_err(corrupt)?;
    let cols = v["cols"].as_u64().ok_or_else(|| corrupt("cols"))? as usize;
    let x = floats(&v["x"])?;
    let y = floats(&v["y"])?;
    if cols == 0 || x.len() != y.len() * cols {
        return Err(corrupt("shape"));
    }
    Ok(Box::new(KnnModel {
        task: task_from(&v["task"])?,
        cols,
        k: v["k"].as_u64().ok_or_else(|| corrupt("k"))? as usize,
        random_state: v["random_state"].as_u64(),
        proba: v["proba"].as_bool().ok_or_else(|| corrupt("proba"))?,
        x,
        y,
        weight_sum: v["weight_sum"].as_f64().ok_or_else(|| corrupt("weights"))?,
        names: v["names"]
            .as_array()
            .ok_or_else(|| corrupt("names"))?
            .iter()
            .map(|n| n.as_str().unwrap_or("").to_string())
            .collect(),
    }))
}

// ---------------------------------------------------------------- stump

struct Stump;

/// Class shares (classification) or the mean (regression) of `ys`.
fn leaf(task: Task, ys: &[f32]) -> Vec<f32> {
    if task.is_classification() {
        let mut v = vec![0.0f32; task.n_classes as usize];
        for &y in ys {
            v[y as usize] += 1.0;
        }
        v.iter().map(|c| c / ys.len().max(1) as f32).collect()
    } else {
        vec![ys.iter().sum::<f32>() / ys.len().max(1) as f32]
    }
}

impl LearnerImpl for Stump {
    fn fit(
        &self,
        _ctx: &HostContextRef<'_>,
        data: &TrainData<'_>,
    ) -> Result<Box<dyn ModelImpl>, PluginError> {
        let cols = data.x.cols();
        let col = cols - 1;
        let rows = data.x.rows();
        let threshold = (0..rows).map(|r| data.x.row(r)[col]).sum::<f32>() / rows as f32;
        let (mut l, mut r) = (Vec::new(), Vec::new());
        for i in 0..rows {
            if data.x.row(i)[col] <= threshold {
                l.push(data.y[i]);
            } else {
                r.push(data.y[i]);
            }
        }
        let all = data.y.to_vec();
        let pick = |side: &[f32]| leaf(data.task, if side.is_empty() { &all } else { side });
        Ok(Box::new(StumpModel {
            task: data.task,
            cols,
            feature: Some(col),
            threshold,
            left: pick(&l),
            right: pick(&r),
            proba: true,
            info: json!({}),
        }))
    }
}

// ---------------------------------------------------------------- probe, boom

struct Probe;

struct ProbeModel {
    task: Task,
    cols: usize,
    threads: u32,
}

impl LearnerImpl for Probe {
    fn fit(
        &self,
        ctx: &HostContextRef<'_>,
        data: &TrainData<'_>,
    ) -> Result<Box<dyn ModelImpl>, PluginError> {
        Ok(Box::new(ProbeModel {
            task: data.task,
            cols: data.x.cols(),
            threads: ctx.threads(),
        }))
    }
}

impl ModelImpl for ProbeModel {
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
        Ok(vec![self.threads as f32; x.rows()])
    }
    fn describe(&self) -> Value {
        json!({ "threads": self.threads })
    }
    fn to_bytes(&self) -> Result<Vec<u8>, PluginError> {
        Ok(json!([task_json(self.task), self.cols, self.threads])
            .to_string()
            .into_bytes())
    }
}

fn load_probe(bytes: &[u8], _ctx: &HostContextRef<'_>) -> Result<Box<dyn ModelImpl>, PluginError> {
    let v: Value = serde_json::from_slice(bytes).map_err(corrupt)?;
    Ok(Box::new(ProbeModel {
        task: task_from(&v[0])?,
        cols: v[1].as_u64().ok_or_else(|| corrupt("cols"))? as usize,
        threads: v[2].as_u64().ok_or_else(|| corrupt("threads"))? as u32,
    }))
}
