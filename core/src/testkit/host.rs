//! An in-process host for unit tests of meta-learners: it serves the
//! learners of one [`PluginDef`] (the meta-learner under test plus tiny base
//! learners such as those of [`super::fakes`]) and records what the
//! learners report.

use std::sync::{
    Mutex,
    atomic::{AtomicBool, Ordering},
};

use abi_stable::{
    RRef,
    sabi_trait::TD_Opaque,
    std_types::{RResult, RSlice, RStr},
};
use serde_json::Value;

use crate::{
    HostContext, HostContext_TO, HostContextRef, LearnerBox, Matrix, MatrixRef, ModelBox,
    PluginError, TrainData, plugin::PluginDef,
};

/// A host that creates learners and loads models from [`def`](Self::def),
/// minus the components named in [`without`](Self::without), and records
/// logs and progress.
pub struct FakeHost {
    /// The plugin whose learners this host serves.
    pub def: &'static PluginDef,
    /// The thread budget of every call.
    pub threads: u32,
    /// Components the host pretends no loaded plugin provides.
    pub without: Vec<&'static str>,
    /// Whether [`HostContext::is_cancelled`] answers `true`.
    pub cancelled: AtomicBool,
    /// Every `(level, message)` logged, in order.
    pub logs: Mutex<Vec<(u8, String)>>,
    /// Every `(done, total)` progress report, in order.
    pub progress: Mutex<Vec<(u64, u64)>>,
}

impl FakeHost {
    /// A host serving `def` with a budget of `threads` threads.
    pub fn new(def: &'static PluginDef, threads: u32) -> Self {
        Self {
            def,
            threads,
            without: Vec::new(),
            cancelled: AtomicBool::new(false),
            logs: Mutex::new(Vec::new()),
            progress: Mutex::new(Vec::new()),
        }
    }

    /// This host, pretending that no loaded plugin provides `component`.
    pub fn without(mut self, component: &'static str) -> Self {
        self.without.push(component);
        self
    }

    /// The context to hand to learners and models.
    pub fn as_ref(&self) -> HostContextRef<'_> {
        HostContext_TO::from_ptr(RRef::new(self), TD_Opaque)
    }

    /// Asks the running call to stop.
    pub fn cancel(&self) {
        self.cancelled.store(true, Ordering::Relaxed);
    }

    /// The messages logged so far.
    pub fn logs(&self) -> Vec<(u8, String)> {
        self.logs.lock().unwrap().clone()
    }

    /// Creates `learner` of [`def`](Self::def) with `params` and fits it on
    /// `data` through this host.
    pub fn fit(
        &self,
        learner: &str,
        params: &str,
        data: TrainData<'_>,
    ) -> Result<ModelBox, PluginError> {
        let learner = self.def.create_learner(learner, params)?;
        learner.fit(self.as_ref(), data).into_result()
    }

    /// Loads `bytes` as a model of `learner` of [`def`](Self::def) through
    /// this host.
    pub fn load(&self, learner: &str, bytes: &[u8]) -> Result<ModelBox, PluginError> {
        self.def.load_model_with(learner, bytes, &self.as_ref())
    }

    /// The predictions of `model` for `x` through this host; panics on
    /// error.
    pub fn predict(&self, model: &ModelBox, x: MatrixRef<'_>) -> Vec<f32> {
        model
            .predict(self.as_ref(), x)
            .into_result()
            .unwrap_or_else(|e| panic!("predict: {e}"))
            .into_vec()
    }

    /// The class probabilities of `model` for `x` through this host.
    pub fn proba(&self, model: &ModelBox, x: MatrixRef<'_>) -> Result<Matrix, PluginError> {
        model.predict_proba(self.as_ref(), x).into_result()
    }

    fn absent(&self, component: &str) -> Result<(), PluginError> {
        if self.without.contains(&component) {
            Err(PluginError::unsupported(format!(
                "no loaded plugin provides learner `{component}`"
            )))
        } else {
            Ok(())
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
            .and_then(|()| self.def.create_learner(name.as_str(), params.as_str()))
            .into()
    }
    fn load_model(
        &self,
        component: RStr<'_>,
        bytes: RSlice<'_, u8>,
    ) -> RResult<ModelBox, PluginError> {
        self.absent(component.as_str())
            .and_then(|()| {
                self.def
                    .load_model_with(component.as_str(), &bytes, &self.as_ref())
            })
            .into()
    }
}

/// The summary of `model`, parsed; panics unless it is JSON.
pub fn summary(model: &ModelBox) -> Value {
    serde_json::from_str(model.describe().as_str()).expect("describe is JSON")
}

/// The serialized bytes of `model`; panics on error.
pub fn bytes(model: &ModelBox) -> Vec<u8> {
    model
        .to_bytes()
        .into_result()
        .unwrap_or_else(|e| panic!("to_bytes: {e}"))
        .into_vec()
}
