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

pub fn learner(params: &str) -> Result<LearnerBox, PluginError> {
    tessera_forest::plugin().create_learner("random_forest", params)
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
