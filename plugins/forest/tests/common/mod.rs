//! Test data and plugin calls shared by the integration tests.

// Each test file uses its own subset of these helpers.
#![allow(dead_code)]

use tessera_core::{
    LearnerBox, MatrixRef, ModelBox, NullContext, PluginError, Task, TrainData,
    abi_stable::std_types::{RSlice, RString},
};

/// Rows, columns, features, targets and optional weights of a test set.
pub struct Data {
    pub x: Vec<f32>,
    pub y: Vec<f32>,
    pub w: Option<Vec<f32>>,
    pub cols: usize,
    pub task: Task,
    pub names: Vec<RString>,
}

impl Data {
    pub fn new(x: Vec<f32>, y: Vec<f32>, cols: usize, task: Task) -> Self {
        let names = (0..cols).map(|i| format!("f{i}").into()).collect();
        Self {
            x,
            y,
            w: None,
            cols,
            task,
            names,
        }
    }

    pub fn rows(&self) -> usize {
        self.y.len()
    }

    pub fn matrix(&self) -> MatrixRef<'_> {
        MatrixRef::new(&self.x, self.rows(), self.cols).unwrap()
    }

    pub fn train(&self) -> TrainData<'_> {
        TrainData {
            x: self.matrix(),
            y: RSlice::from_slice(&self.y),
            weights: self.w.as_deref().map(RSlice::from_slice).into(),
            feature_names: RSlice::from_slice(&self.names),
            task: self.task,
            valid: None.into(),
        }
    }
}

/// A small deterministic generator for test data.
pub fn lcg(state: &mut u64) -> f32 {
    *state = state
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    (*state >> 40) as f32 / (1u64 << 24) as f32
}

/// Three classes decided by the first two of four features.
pub fn blobs(rows: usize, seed: u64) -> Data {
    let mut s = seed;
    let (mut x, mut y) = (Vec::new(), Vec::new());
    for _ in 0..rows {
        let row: Vec<f32> = (0..4).map(|_| lcg(&mut s) * 10.0).collect();
        y.push(if row[0] < 3.0 {
            0.0
        } else if row[1] < 5.0 {
            1.0
        } else {
            2.0
        });
        x.extend(row);
    }
    Data::new(x, y, 4, Task::classification(3))
}

/// A table of `examples/data`: features, target, and whether it is a
/// regression set.
pub struct Table {
    pub x: Vec<f32>,
    pub y: Vec<f32>,
    pub rows: usize,
    pub cols: usize,
    pub regression: bool,
}

/// Reads `examples/data/{name}.{split}.csv`.
pub fn read_table(name: &str, split: &str) -> Table {
    let path = format!(
        "{}/../../examples/data/{name}.{split}.csv",
        env!("CARGO_MANIFEST_DIR")
    );
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().expect("header").split(',').collect();
    let (mut x, mut y, mut rows) = (Vec::new(), Vec::new(), 0);
    for line in lines.filter(|l| !l.trim().is_empty()) {
        let vals: Vec<f32> = line
            .split(',')
            .map(|v| v.trim().parse().expect("number"))
            .collect();
        assert_eq!(vals.len(), header.len(), "{path}: ragged row");
        x.extend_from_slice(&vals[..vals.len() - 1]);
        y.push(vals[vals.len() - 1]);
        rows += 1;
    }
    let regression = header.last() == Some(&"target");
    Table {
        x,
        y,
        rows,
        cols: header.len() - 1,
        regression,
    }
}

/// Test accuracy (R² for regression) of `learner` with `params` (a JSON
/// object's inside, without braces) on data set `name`, averaged over
/// random_state 0..seeds.
pub fn example_score(learner: &str, name: &str, params: &str, seeds: u64) -> f64 {
    let (train, test) = (read_table(name, "train"), read_table(name, "test"));
    let task = if train.regression {
        Task::regression()
    } else {
        let k = train.y.iter().chain(&test.y).fold(0.0f32, |a, &b| a.max(b)) as u32 + 1;
        Task::classification(k)
    };
    let names: Vec<RString> = (0..train.cols).map(|i| format!("f{i}").into()).collect();
    let ctx = NullContext { threads: 2 };
    let plugin = tessera_forest::plugin();
    let mut total = 0.0;
    for seed in 0..seeds {
        let sep = if params.is_empty() { "" } else { ", " };
        let json = format!(r#"{{"random_state": {seed}{sep}{params}}}"#);
        let learner = plugin.create_learner(learner, &json).unwrap();
        let data = TrainData {
            x: MatrixRef::new(&train.x, train.rows, train.cols).unwrap(),
            y: RSlice::from_slice(&train.y),
            weights: None.into(),
            feature_names: RSlice::from_slice(&names),
            task,
            valid: None.into(),
        };
        let model = learner.fit(ctx.as_ref(), data).unwrap();
        let x = MatrixRef::new(&test.x, test.rows, test.cols).unwrap();
        let pred = model.predict(ctx.as_ref(), x).unwrap();
        total += if train.regression {
            let mean = test.y.iter().map(|&v| f64::from(v)).sum::<f64>() / test.rows as f64;
            let sse: f64 = pred
                .iter()
                .zip(&test.y)
                .map(|(&p, &t)| (f64::from(p) - f64::from(t)).powi(2))
                .sum();
            let sst: f64 = test.y.iter().map(|&t| (f64::from(t) - mean).powi(2)).sum();
            1.0 - sse / sst
        } else {
            pred.iter().zip(&test.y).filter(|(p, t)| p == t).count() as f64 / test.rows as f64
        };
    }
    total / seeds as f64
}

pub fn learner(params: &str) -> Result<LearnerBox, PluginError> {
    tessera_forest::plugin().create_learner("random_forest", params)
}

/// Fits learner `name` of the plugin with `params` on `data`.
pub fn fit_with(
    name: &str,
    params: &str,
    data: &Data,
    threads: u32,
) -> Result<ModelBox, PluginError> {
    tessera_forest::plugin()
        .create_learner(name, params)?
        .fit(NullContext { threads }.as_ref(), data.train())
        .into_result()
}

pub fn fit(params: &str, data: &Data, threads: u32) -> Result<ModelBox, PluginError> {
    learner(params)?
        .fit(NullContext { threads }.as_ref(), data.train())
        .into_result()
}

pub fn predict(m: &ModelBox, x: MatrixRef<'_>) -> Vec<f32> {
    m.predict(NullContext { threads: 1 }.as_ref(), x)
        .unwrap()
        .into_vec()
}

pub fn proba(m: &ModelBox, x: MatrixRef<'_>, threads: u32) -> Vec<f32> {
    m.predict_proba(NullContext { threads }.as_ref(), x)
        .unwrap()
        .data
        .into_vec()
}
