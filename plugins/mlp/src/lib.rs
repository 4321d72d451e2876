//! tessera-mlp: multilayer perceptrons as a tessera plugin.
//!
//! `mlp` trains scikit-learn's `MLPClassifier` / `MLPRegressor` with the
//! same parameter names and meaning: minibatch adam or sgd (momentum,
//! Nesterov, constant / invscaling / adaptive step sizes), L2 penalty,
//! early stopping on a validation score, Glorot initialisation. Inputs
//! are standardized (and optionally mean-imputed) by a transformation
//! learned at fit time and stored in the model, so serving takes raw
//! features.
//!
//! Modules: [`params`] (schema and settings), [`scaling`] (the input
//! transformation), [`gemm`] (the matrix kernel), [`net`] (layers, the
//! forward pass, the exchange form), [`loss`] (losses and output
//! deltas), [`optim`] (adam and sgd steps), [`train`] (backpropagation
//! and the epoch loop) and [`model`] (prediction, summary, bytes).

pub mod finetune;
pub mod gemm;
pub mod loss;
pub mod model;
pub mod net;
pub mod optim;
pub mod params;
pub mod scaling;
pub mod train;

use tessera_core::{
    HostContextRef, PluginError, TrainData,
    params::Params,
    plugin::{LearnerDef, LearnerImpl, ModelImpl, PluginDef},
};

/// The `mlp` learner.
struct MlpLearner {
    cfg: params::Config,
}

fn create(p: Params) -> Result<Box<dyn LearnerImpl>, PluginError> {
    Ok(Box::new(MlpLearner {
        cfg: params::Config::from_params(&p)?,
    }))
}

impl LearnerImpl for MlpLearner {
    fn fit(
        &self,
        ctx: &HostContextRef<'_>,
        data: &TrainData<'_>,
    ) -> Result<Box<dyn ModelImpl>, PluginError> {
        Ok(Box::new(train::fit(&self.cfg, ctx, data)?))
    }

    fn multi_output(&self) -> bool {
        true
    }
}

/// The plugin's definition: `mlp`.
pub fn plugin() -> PluginDef {
    PluginDef {
        name: "mlp",
        version: env!("CARGO_PKG_VERSION"),
        learners: vec![LearnerDef {
            name: params::LEARNER,
            description: "multilayer perceptron (scikit-learn's MLPClassifier / MLPRegressor): \
                          adam or sgd, standardized inputs",
            params: params::specs(),
            create,
            load: model::load,
        }],
        compressors: Vec::new(),
        decomposers: Vec::new(),
        models: Vec::new(),
    }
}

tessera_core::export_plugin!(plugin);
