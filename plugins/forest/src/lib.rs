//! tessera-forest: random forests and decision trees (scikit-learn's
//! `RandomForest{Classifier,Regressor}` and
//! `DecisionTree{Classifier,Regressor}`) as a tessera plugin.
//!
//! This file only declares the plugin; the work lives in the modules:
//! [`params`] (schemas), [`config`] (checked and resolved parameters),
//! `data` (the encoded training data), `node` (what growth and split
//! search share), `grow` (CART growth, depth-first or best-first), `split`
//! (exact split search), `hist_split` (histogram split
//! search on tessera-trees), `prune` (cost-complexity pruning and
//! compaction), [`tree`] (the model's tree layout), [`train`] (fitting,
//! out-of-bag score in `oob`), [`model`] (prediction through the inference
//! engine), [`serialize`] (model bytes) and [`shards`] (forests trained
//! in shards, joined).

pub mod config;
mod data;
mod grow;
mod hist_split;
pub mod model;
mod node;
mod oob;
pub mod params;
mod prune;
use tessera_trees::rng;
pub mod serialize;
pub mod shards;
mod split;
pub mod train;
pub mod tree;

use tessera_core::plugin::{LearnerDef, PluginDef};

/// The plugin's definition: `random_forest` and `decision_tree`.
pub fn plugin() -> PluginDef {
    PluginDef {
        name: "forest",
        version: env!("CARGO_PKG_VERSION"),
        learners: vec![
            LearnerDef {
                name: params::LEARNER,
                description: "random forest of CART trees for classification and regression",
                params: params::specs(),
                create: train::create,
                load: serialize::load,
            },
            LearnerDef {
                name: params::TREE_LEARNER,
                description: "a single CART decision tree for classification and regression",
                params: params::tree_specs(),
                create: train::create_tree,
                load: serialize::load_tree,
            },
        ],
        compressors: Vec::new(),
        decomposers: Vec::new(),
        models: Vec::new(),
    }
}

tessera_core::export_plugin!(plugin);
