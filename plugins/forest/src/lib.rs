//! tessera-forest: random forests (scikit-learn's `RandomForestClassifier`
//! and `RandomForestRegressor`) as a tessera plugin.
//!
//! This file only declares the plugin; the work lives in the modules:
//! [`params`] (schema and checked parameters), [`tree`] and `split` (CART),
//! [`train`] (fitting), [`model`] (prediction), [`serialize`] (model bytes).

pub mod model;
pub mod params;
mod rng;
pub mod serialize;
mod split;
pub mod train;
pub mod tree;

use tessera_core::plugin::{LearnerDef, PluginDef};

/// The plugin's definition: one learner, `random_forest`.
pub fn plugin() -> PluginDef {
    PluginDef {
        name: "forest",
        version: env!("CARGO_PKG_VERSION"),
        learners: vec![LearnerDef {
            name: params::LEARNER,
            description: "random forest of CART trees for classification and regression",
            params: params::specs(),
            create: train::create,
            load: serialize::load,
        }],
        compressors: Vec::new(),
        decomposers: Vec::new(),
    }
}

tessera_core::export_plugin!(plugin);
