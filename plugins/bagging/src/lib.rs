//! tessera-bagging: bagging (scikit-learn's `BaggingClassifier` and
//! `BaggingRegressor`) as a tessera plugin, over any learner the host knows.
//!
//! The learner `bagging` trains `n_estimators` copies of a base learner
//! (`estimator`, by default the forest plugin's `decision_tree`, but any
//! learner of any loaded plugin works), each on its own sample of the rows
//! (`max_samples`, drawn with replacement when `bootstrap`) and of the feature
//! columns (`max_features`, with replacement when `bootstrap_features`). The
//! base learners are created through the host
//! ([`HostContext::create_learner`](tessera_core::HostContext::create_learner)),
//! trained in parallel within the call's thread budget, each with a share of
//! it, and their models are saved inside the bagging model and read back
//! through the host
//! ([`HostContext::load_model`](tessera_core::HostContext::load_model)), so
//! the plugin that provides the base learner must be loaded to use a saved
//! model.
//!
//! # Parameters
//!
//! | key                  | default           | meaning |
//! |----------------------|-------------------|---------|
//! | `estimator`          | `"decision_tree"` | the base learner's name, or a table `{name = "...", <its parameters>}` |
//! | `estimator_params`   | `{}`              | the base learner's parameters, passed verbatim |
//! | `n_estimators`       | `10`              | number of members |
//! | `max_samples`        | `1.0`             | rows per member: a count (int >= 1) or a fraction (float in (0, 1]) |
//! | `max_features`       | `1.0`             | feature columns per member: a count or a fraction |
//! | `bootstrap`          | `true`            | draw rows with replacement |
//! | `bootstrap_features` | `false`           | draw feature columns with replacement |
//! | `oob_score`          | `false`           | score the training rows out of bag (needs `bootstrap`) |
//! | `random_state`       | `null`            | seed; `null` draws one, recorded in the model summary |
//! | `shard`              | `null`            | `[I, N]`: train only shard I of N of the members (see below) |
//!
//! The base learner's parameters are given either as `estimator_params`
//! (`--set estimator=decision_tree --set estimator_params.max_depth=3`) or,
//! as scikit-learn users may expect, inside an `estimator` table whose key
//! `name` names the learner (default `decision_tree`) and whose other keys
//! are its parameters (`--set estimator.name=decision_tree --set
//! estimator.max_depth=3`); giving parameters both ways is an error. When the
//! base learner has a `random_state` parameter that the user did not set,
//! each member gets its own seed derived from the bagging seed, as in
//! scikit-learn.
//!
//! # Prediction
//!
//! Regression averages the members' predictions. Classification averages
//! the members' class probabilities ("soft" voting) when every member
//! predicts probabilities, and otherwise counts their predicted classes
//! ("hard" voting; ties go to the lowest class index, probabilities are the
//! vote shares). With `oob_score`, each training row is predicted by the
//! members that did not draw it, and the accuracy (classification) or R²
//! (regression) of those predictions is reported in the model summary
//! (unweighted, as in scikit-learn; rows that every member drew are left
//! out, with a warning).
//!
//! Members are trained on copies of their rows and columns (a bootstrap
//! sample repeats rows rather than weighting them, since not every learner
//! honours sample weights); sample weights, when given, follow their rows.
//! When every member exposes a tree ensemble whose outputs are averaged,
//! the model's exchange form pools all their trees into one ensemble, with
//! split features mapped back to the full feature space.
//!
//! # Shards
//!
//! Members are independent: member `i`'s rows, columns and learner seed
//! depend only on `random_state` and `i`. So `shard = [I, N]` (see
//! [`tessera_core::shard`]) trains only the members of the `I`-th of `N`
//! consecutive, near-equal ranges of `0..n_estimators`, each exactly as the
//! whole ensemble trains it, and the shards' payloads put back to back in
//! shard order load as the whole ensemble ([`serialize`]): its members in
//! order, soft voting when every shard votes softly. The summary of a shard
//! records `shard` and `estimator_range`; `oob_score` cannot be computed in
//! shards.
//!
//! This file only declares the plugin; the work lives in the modules:
//! [`params`] (schema and checked parameters), `sample` (row and column
//! draws), [`train`] (fitting and out-of-bag scoring), [`model`] (prediction,
//! summary, exchange form), [`serialize`] (model bytes), `shards` (joining
//! the shards of one ensemble).

pub mod model;
mod parallel;
pub mod params;
mod sample;
pub mod serialize;
mod shards;
pub mod train;

#[cfg(test)]
mod tests;

use tessera_core::plugin::{LearnerDef, PluginDef};

/// The plugin's definition: one learner, `bagging`.
pub fn plugin() -> PluginDef {
    PluginDef {
        name: "bagging",
        version: env!("CARGO_PKG_VERSION"),
        learners: vec![LearnerDef {
            name: params::LEARNER,
            description: "bagging ensemble of any learner, trained on row and feature samples",
            params: params::specs(),
            create: train::create,
            load: serialize::load,
        }],
        compressors: Vec::new(),
        decomposers: Vec::new(),
        models: Vec::new(),
    }
}

tessera_core::export_plugin!(plugin);
