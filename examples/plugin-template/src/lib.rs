//! `tessera-linear`: a tessera plugin with one learner, `linear`, and the
//! template for writing your own plugins.
//!
//! * Regression targets: ridge regression, solved in closed form
//!   (`alpha`, `fit_intercept`).
//! * Classification targets: multinomial (softmax) logistic regression with
//!   an L2 penalty, solved with L-BFGS (`C`, `fit_intercept`, `max_iter`,
//!   `tol`).
//!
//! Parameters follow scikit-learn's `Ridge` and `LogisticRegression`; see
//! [`params`]. Missing feature values (`NaN`) are replaced by the feature's
//! training mean, which the model remembers.
//!
//! # How a plugin is put together
//!
//! * this file declares the plugin: its name, its learners with their
//!   parameter schemas, and the functions that create learners and load
//!   models; then `tessera_core::export_plugin!` exports it;
//! * [`params`]: the parameter schema and its typed form;
//! * [`train`]: the learner ([`tessera_core::plugin::LearnerImpl`]);
//! * [`model`]: the trained model ([`tessera_core::plugin::ModelImpl`]);
//! * [`serialize`]: the model's own versioned byte format;
//! * [`solve`] and [`parallel`]: numerical helpers.
//!
//! The plugin never panics on purpose, but if it did, tessera-core's adapters
//! would turn the panic into an error before it reached the host.

pub mod model;
pub mod parallel;
pub mod params;
pub mod serialize;
pub mod solve;
pub mod train;

use tessera_core::{
    PluginError,
    params::Params,
    plugin::{LearnerDef, LearnerImpl, ModelImpl, PluginDef},
};

/// The name users pass to `tessera train --learner`.
pub const LEARNER_NAME: &str = "linear";

/// Creates the learner from parameters that already passed the schema.
fn create(params: Params) -> Result<Box<dyn LearnerImpl>, PluginError> {
    let params = params::LinearParams::from_params(&params);
    Ok(Box::new(train::LinearLearner::new(params)))
}

/// Reads back a model written by [`model::LinearModel`]'s `to_bytes`.
fn load(
    bytes: &[u8],
    _ctx: &tessera_core::HostContextRef<'_>,
) -> Result<Box<dyn ModelImpl>, PluginError> {
    Ok(Box::new(serialize::from_bytes(bytes)?))
}

/// Everything this plugin provides.
pub fn plugin() -> PluginDef {
    PluginDef {
        name: "linear",
        version: env!("CARGO_PKG_VERSION"),
        learners: vec![LearnerDef {
            name: LEARNER_NAME,
            description: "ridge regression (regression) or multinomial logistic regression (classification)",
            params: params::specs(),
            create,
            load,
        }],
        compressors: vec![],
        decomposers: vec![],
        models: Vec::new(),
    }
}

tessera_core::export_plugin!(plugin);
