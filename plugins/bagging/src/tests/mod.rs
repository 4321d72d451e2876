//! Tests through an in-process fake host that serves the bagging learner
//! and the tiny base learners of [`learners`].

mod fitting;
mod learners;
mod model_io;
mod param_errors;
mod voting;

use std::sync::{
    Mutex, OnceLock,
    atomic::{AtomicBool, Ordering},
};

use serde_json::Value;
use tessera_core::{
    HostContext, HostContext_TO, HostContextRef, LearnerBox, Matrix, MatrixRef, ModelBox,
    PluginError,
    abi_stable::{
        RRef,
        sabi_trait::TD_Opaque,
        std_types::{RResult, RSlice, RStr},
    },
    plugin::{LearnerDef, PluginDef},
    testkit::Case,
};

/// The plugin the fake host serves: bagging plus the test learners.
pub fn def() -> &'static PluginDef {
    static DEF: OnceLock<PluginDef> = OnceLock::new();
    DEF.get_or_init(|| {
        let mut learners = vec![LearnerDef {
            name: crate::params::LEARNER,
            description: "bagging",
            params: crate::params::specs(),
            create: crate::train::create,
            load: crate::serialize::load,
        }];
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

/// A host knowing [`def`]'s learners, minus those in `without`.
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

    pub fn cancel(&self) {
        self.cancelled.store(true, Ordering::Relaxed);
    }

    pub fn logs(&self) -> Vec<(u8, String)> {
        self.logs.lock().unwrap().clone()
    }

    fn absent(&self, component: &str) -> Option<PluginError> {
        self.without.contains(&component).then(|| {
            PluginError::unsupported(format!("no loaded plugin provides learner `{component}`"))
        })
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
        self.logs
            .lock()
            .unwrap()
            .push((level, message.as_str().to_string()));
    }
    fn create_learner(&self, name: RStr<'_>, params: RStr<'_>) -> RResult<LearnerBox, PluginError> {
        if let Some(e) = self.absent(name.as_str()) {
            return RResult::RErr(e);
        }
        def().create_learner(name.as_str(), params.as_str()).into()
    }
    fn load_model(
        &self,
        component: RStr<'_>,
        bytes: RSlice<'_, u8>,
    ) -> RResult<ModelBox, PluginError> {
        if let Some(e) = self.absent(component.as_str()) {
            return RResult::RErr(e);
        }
        def()
            .load_model_with(component.as_str(), bytes.as_slice(), &self.as_ref())
            .into()
    }
}

/// Creates `bagging` with `params` and fits it on `case` through `host`.
pub fn fit_on(host: &FakeHost, params: &str, case: &Case) -> Result<ModelBox, PluginError> {
    let learner = def().create_learner("bagging", params)?;
    learner.fit(host.as_ref(), case.data()).into_result()
}

/// As [`fit_on`] with a fresh host of `threads` threads; panics on error.
pub fn fit(threads: u32, params: &str, case: &Case) -> ModelBox {
    fit_on(&FakeHost::new(threads), params, case)
        .unwrap_or_else(|e| panic!("fit with {params}: {e}"))
}

pub fn predict(model: &ModelBox, x: MatrixRef<'_>) -> Vec<f32> {
    let host = FakeHost::new(2);
    model
        .predict(host.as_ref(), x)
        .into_result()
        .unwrap_or_else(|e| panic!("predict: {e}"))
        .into_vec()
}

pub fn proba(model: &ModelBox, x: MatrixRef<'_>) -> Result<Matrix, PluginError> {
    let host = FakeHost::new(2);
    model.predict_proba(host.as_ref(), x).into_result()
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

/// Loads `bytes` as a bagging model through `host`.
pub fn load_on(host: &FakeHost, bytes: &[u8]) -> Result<ModelBox, PluginError> {
    def().load_model_with("bagging", bytes, &host.as_ref())
}

/// Fraction of `pred` equal to `y`.
pub fn accuracy(pred: &[f32], y: &[f32]) -> f64 {
    pred.iter().zip(y).filter(|(a, b)| a == b).count() as f64 / y.len() as f64
}

/// The coefficient of determination of `pred` for `y`.
pub fn r2(pred: &[f32], y: &[f32]) -> f64 {
    let mean = y.iter().map(|&v| f64::from(v)).sum::<f64>() / y.len() as f64;
    let res: f64 = pred
        .iter()
        .zip(y)
        .map(|(p, t)| (f64::from(*p) - f64::from(*t)).powi(2))
        .sum();
    let tot: f64 = y.iter().map(|&t| (f64::from(t) - mean).powi(2)).sum();
    1.0 - res / tot
}
