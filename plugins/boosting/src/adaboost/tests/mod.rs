//! Tests through an in-process fake host that serves `adaboost` and the
//! tiny base learners of [`learners`].

mod learners;
mod model_io;
mod regression;
mod rounds;
mod samme;

use std::sync::{
    Mutex, OnceLock,
    atomic::{AtomicBool, Ordering},
};

use serde_json::Value;
use tessera_core::{
    HostContext, HostContext_TO, HostContextRef, LearnerBox, Matrix, MatrixRef, ModelBox,
    PluginError, Task, TrainData,
    abi_stable::{
        RRef,
        sabi_trait::TD_Opaque,
        std_types::{ROption, RResult, RSlice, RStr, RString},
    },
    plugin::PluginDef,
};

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
        }
    })
}

/// A host serving [`def`]'s learners, minus those in `without`, that
/// records logs and progress.
pub struct FakeHost {
    pub threads: u32,
    pub without: Vec<&'static str>,
    pub cancelled: AtomicBool,
    pub logs: Mutex<Vec<(u8, String)>>,
    pub progress: Mutex<Vec<(u64, u64)>>,
}

impl FakeHost {
    pub fn new(threads: u32) -> Self {
        Self {
            threads,
            without: Vec::new(),
            cancelled: AtomicBool::new(false),
            logs: Mutex::new(Vec::new()),
            progress: Mutex::new(Vec::new()),
        }
    }

    pub fn without(mut self, component: &'static str) -> Self {
        self.without.push(component);
        self
    }

    pub fn as_ref(&self) -> HostContextRef<'_> {
        HostContext_TO::from_ptr(RRef::new(self), TD_Opaque)
    }

    fn absent(&self, component: &str) -> RResult<(), PluginError> {
        if self.without.contains(&component) {
            RResult::RErr(PluginError::unsupported(format!(
                "no loaded plugin provides learner `{component}`"
            )))
        } else {
            RResult::ROk(())
        }
    }
}

impl HostContext for FakeHost {
    fn threads(&self) -> u32 {
        self.threads
    }
    fn is_cancelled(&self) -> bool {
        self.cancelled.load(Ordering::Relaxed)
    }
    fn progress(&self, done: u64, total: u64) {
        self.progress.lock().unwrap().push((done, total));
    }
    fn log(&self, level: u8, message: RStr<'_>) {
        let m = message.as_str().to_string();
        self.logs.lock().unwrap().push((level, m));
    }
    fn create_learner(&self, name: RStr<'_>, params: RStr<'_>) -> RResult<LearnerBox, PluginError> {
        self.absent(name.as_str())
            .into_result()
            .and_then(|()| def().create_learner(name.as_str(), params.as_str()))
            .into()
    }
    fn load_model(
        &self,
        component: RStr<'_>,
        bytes: RSlice<'_, u8>,
    ) -> RResult<ModelBox, PluginError> {
        self.absent(component.as_str())
            .into_result()
            .and_then(|()| def().load_model_with(component.as_str(), &bytes, &self.as_ref()))
            .into()
    }
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
    let learner = def().create_learner("adaboost", params)?;
    learner.fit(host.as_ref(), data.view()).into_result()
}

/// As [`fit_on`] with a fresh host of `threads` threads; panics on error.
pub fn fit(threads: u32, params: &str, data: &Data) -> ModelBox {
    fit_on(&FakeHost::new(threads), params, data)
        .unwrap_or_else(|e| panic!("fit with {params}: {e}"))
}

pub fn predict(model: &ModelBox, x: MatrixRef<'_>) -> Vec<f32> {
    model
        .predict(FakeHost::new(2).as_ref(), x)
        .into_result()
        .unwrap_or_else(|e| panic!("predict: {e}"))
        .into_vec()
}

pub fn proba(model: &ModelBox, x: MatrixRef<'_>) -> Result<Matrix, PluginError> {
    model
        .predict_proba(FakeHost::new(2).as_ref(), x)
        .into_result()
}

pub fn summary(model: &ModelBox) -> Value {
    serde_json::from_str(model.describe().as_str()).expect("describe is JSON")
}

pub fn bytes(model: &ModelBox) -> Vec<u8> {
    model
        .to_bytes()
        .into_result()
        .unwrap_or_else(|e| panic!("to_bytes: {e}"))
        .into_vec()
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
