//! Tests through an in-process fake host that serves the bagging learner
//! and the tiny base learners of [`learners`].

mod fitting;
mod learners;
mod model_io;
mod param_errors;
mod shards;
mod voting;

use std::sync::OnceLock;

use serde_json::Value;

use tessera_core::{
    Matrix, MatrixRef, ModelBox, PluginError,
    plugin::{LearnerDef, PluginDef},
    testkit::{Case, FakeHost},
};

pub use tessera_core::testkit::{bytes, r2, summary};

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
            models: Vec::new(),
        }
    })
}

/// A host of `threads` threads knowing [`def`]'s learners.
pub fn fake_host(threads: u32) -> FakeHost {
    FakeHost::new(def(), threads)
}

/// Creates `bagging` with `params` and fits it on `case` through `host`.
pub fn fit_on(host: &FakeHost, params: &str, case: &Case) -> Result<ModelBox, PluginError> {
    host.fit("bagging", params, case.data())
}

/// As [`fit_on`] with a fresh host of `threads` threads; panics on error.
pub fn fit(threads: u32, params: &str, case: &Case) -> ModelBox {
    fit_on(&fake_host(threads), params, case).unwrap_or_else(|e| panic!("fit with {params}: {e}"))
}

pub fn predict(model: &ModelBox, x: MatrixRef<'_>) -> Vec<f32> {
    fake_host(2).predict(model, x)
}

pub fn proba(model: &ModelBox, x: MatrixRef<'_>) -> Result<Matrix, PluginError> {
    fake_host(2).proba(model, x)
}

/// Loads `bytes` as a bagging model through `host`.
pub fn load_on(host: &FakeHost, bytes: &[u8]) -> Result<ModelBox, PluginError> {
    host.load("bagging", bytes)
}

/// Fraction of `pred` equal to `y`.
pub fn accuracy(pred: &[f32], y: &[f32]) -> f64 {
    pred.iter().zip(y).filter(|(a, b)| a == b).count() as f64 / y.len() as f64
}
