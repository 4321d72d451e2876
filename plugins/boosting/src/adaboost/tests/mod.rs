//! Tests through an in-process fake host that serves `adaboost` and the
//! tiny base learners of [`learners`].

mod learners;
mod model_io;
mod regression;
mod rounds;
mod samme;

use std::sync::OnceLock;

use serde_json::Value;
use tessera_core::{
    Matrix, MatrixRef, ModelBox, PluginError, Task, TrainData,
    abi_stable::std_types::{ROption, RSlice, RString},
    plugin::PluginDef,
    testkit::FakeHost,
};

pub use tessera_core::testkit::{bytes, summary};

/// The plugin the fake host serves: adaboost plus the test learners.
pub fn def() -> &'static PluginDef {
    static DEF: OnceLock<PluginDef> = OnceLock::new();
    DEF.get_or_init(|| {
        let mut learners = vec![super::learner()];
        learners.extend(learners::defs());
        PluginDef {
            name: "fake",
            version: "0",
            learners,
            compressors: Vec::new(),
            decomposers: Vec::new(),
            models: Vec::new(),
        }
    })
}

/// A host of `threads` threads serving [`def`]'s learners, that records
/// logs and progress.
pub fn fake_host(threads: u32) -> FakeHost {
    FakeHost::new(def(), threads)
}

/// A small data set owned by a test.
pub struct Data {
    pub x: Vec<f32>,
    pub y: Vec<f32>,
    pub weights: Option<Vec<f32>>,
    pub cols: usize,
    pub task: Task,
    names: Vec<RString>,
}

impl Data {
    pub fn new(x: Vec<f32>, y: Vec<f32>, cols: usize, task: Task) -> Self {
        Self {
            names: (0..cols).map(|i| RString::from(format!("f{i}"))).collect(),
            x,
            y,
            weights: None,
            cols,
            task,
        }
    }

    /// One feature column `0, 1, ..` with class labels `y`.
    pub fn line(y: &[u8], n_classes: u32) -> Self {
        let x = (0..y.len()).map(|i| i as f32).collect();
        Self::new(
            x,
            y.iter().map(|&c| f32::from(c)).collect(),
            1,
            Task::classification(n_classes),
        )
    }

    pub fn weighted(mut self, w: &[f32]) -> Self {
        self.weights = Some(w.to_vec());
        self
    }

    pub fn from_case(c: &tessera_core::testkit::Case) -> Self {
        Self::new(c.x.clone(), c.y.clone(), c.cols, c.task)
    }

    pub fn rows(&self) -> usize {
        self.y.len()
    }

    pub fn matrix(&self) -> MatrixRef<'_> {
        MatrixRef::new(&self.x, self.rows(), self.cols).unwrap()
    }

    pub fn view(&self) -> TrainData<'_> {
        TrainData {
            x: self.matrix(),
            y: RSlice::from_slice(&self.y),
            weights: match &self.weights {
                Some(w) => ROption::RSome(RSlice::from_slice(w)),
                None => ROption::RNone,
            },
            feature_names: RSlice::from_slice(&self.names),
            task: self.task,
            valid: ROption::RNone,
        }
    }
}

/// Creates `adaboost` with `params` and fits it on `data` through `host`.
pub fn fit_on(host: &FakeHost, params: &str, data: &Data) -> Result<ModelBox, PluginError> {
    host.fit("adaboost", params, data.view())
}

/// As [`fit_on`] with a fresh host of `threads` threads; panics on error.
pub fn fit(threads: u32, params: &str, data: &Data) -> ModelBox {
    fit_on(&fake_host(threads), params, data).unwrap_or_else(|e| panic!("fit with {params}: {e}"))
}

pub fn predict(model: &ModelBox, x: MatrixRef<'_>) -> Vec<f32> {
    fake_host(2).predict(model, x)
}

pub fn proba(model: &ModelBox, x: MatrixRef<'_>) -> Result<Matrix, PluginError> {
    fake_host(2).proba(model, x)
}

/// The values of a JSON array of numbers.
pub fn numbers(v: &Value) -> Vec<f64> {
    v.as_array()
        .unwrap_or_else(|| panic!("not an array: {v}"))
        .iter()
        .map(|x| x.as_f64().unwrap())
        .collect()
}

#[track_caller]
pub fn assert_close(got: &[f64], want: &[f64], tol: f64) {
    assert_eq!(got.len(), want.len(), "got {got:?}, want {want:?}");
    for (g, w) in got.iter().zip(want) {
        assert!((g - w).abs() <= tol, "got {got:?}\nwant {want:?}");
    }
}
