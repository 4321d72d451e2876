//! `gradient_boosting`: histogram gradient-boosted trees.
//!
//! Modules: [`params`] (schema and settings), [`loss`] (gradients,
//! hessians, starting scores), `hist` (gradient histograms), `grow`
//! (leaf-wise growth), [`tree`] (the model's trees), [`train`] (the
//! boosting loop, early stopping), [`model`] (prediction, summary,
//! exchange form) and [`serialize`] (model bytes).

mod grow;
mod hist;
pub mod loss;
pub mod model;
pub mod params;
pub mod serialize;
pub mod train;
pub mod tree;

use tessera_core::plugin::LearnerDef;

/// The `gradient_boosting` learner's declaration.
pub fn learner() -> LearnerDef {
    LearnerDef {
        name: params::LEARNER,
        description: "histogram gradient-boosted trees (leaf-wise, LightGBM-style) for \
                      classification and regression",
        params: params::specs(),
        create: train::create,
        load,
    }
}

/// Reads a model back: one this learner trained, or a tree ensemble in
/// exchange form (an imported XGBoost or LightGBM model), which predicts
/// through the engine as is.
fn load(
    bytes: &[u8],
    ctx: &tessera_core::HostContextRef<'_>,
) -> Result<Box<dyn tessera_core::plugin::ModelImpl>, tessera_core::PluginError> {
    if tessera_engine::IrModel::recognizes(bytes) {
        Ok(Box::new(tessera_engine::IrModel::from_bytes(bytes)?))
    } else {
        serialize::load(bytes, ctx)
    }
}
