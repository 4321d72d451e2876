//! tessera-boosting: boosting as a tessera plugin.
//!
//! * `gradient_boosting` ([`gbdt`]): histogram gradient-boosted trees in
//!   the manner of LightGBM and scikit-learn's `HistGradientBoosting*`:
//!   features binned once, leaf-wise growth, histograms with the
//!   subtraction trick built in parallel within the host's thread budget.
//! * `adaboost` ([`adaboost`]): scikit-learn's `AdaBoost{Classifier,Regressor}`
//!   (SAMME and AdaBoost.R2) over any learner the host knows.

pub mod adaboost;
pub mod gbdt;

use tessera_core::plugin::PluginDef;

/// The plugin's definition: `gradient_boosting` and `adaboost`.
pub fn plugin() -> PluginDef {
    PluginDef {
        name: "boosting",
        version: env!("CARGO_PKG_VERSION"),
        learners: vec![gbdt::learner(), adaboost::learner()],
        compressors: Vec::new(),
        decomposers: Vec::new(),
        models: Vec::new(),
    }
}

tessera_core::export_plugin!(plugin);
