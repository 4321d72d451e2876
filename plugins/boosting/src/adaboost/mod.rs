//! `adaboost`: scikit-learn's `AdaBoostClassifier` (SAMME) and
//! `AdaBoostRegressor` (AdaBoost.R2) over any learner the host knows.
//!
//! Members are fitted one after another, each with the call's whole thread
//! budget. The base learner is created through the host
//! ([`HostContext::create_learner`](tessera_core::HostContext::create_learner)),
//! as `bagging` does, and the members' models are saved inside the
//! AdaBoost model in their own plugins' formats and read back through the
//! host ([`HostContext::load_model`](tessera_core::HostContext::load_model)).
//!
//! # Parameters
//!
//! | key                | default | meaning |
//! |--------------------|---------|---------|
//! | `estimator`        | `null`  | the base learner's name, or a table `{name = "...", <its parameters>}`; `null`: `decision_tree` with `max_depth` 1 (classification) or 3 (regression) |
//! | `estimator_params` | `{}`    | the base learner's parameters |
//! | `n_estimators`     | `50`    | most members |
//! | `learning_rate`    | `1.0`   | shrinks member weights and the reweighting |
//! | `loss`             | `null`  | regression only: `"linear"` (the default), `"square"` or `"exponential"` |
//! | `random_state`     | `null`  | seed; `null` draws one, recorded in the model summary |
//!
//! When no learner is named (`estimator` null, or a table without `name`),
//! the default decision tree gets scikit-learn's default depth unless the
//! given parameters set `max_depth`; a learner named explicitly gets its
//! own defaults (`estimator = "decision_tree"` grows full trees, as
//! scikit-learn's `estimator=DecisionTreeClassifier()`). When the base
//! learner has a `random_state` the user did not set, each member gets its
//! own, derived from the AdaBoost seed.
//!
//! # Classification: SAMME
//!
//! Row weights start as the sample weights (1 without), scaled to sum to 1.
//! Each round clips them below at machine epsilon (rows of zero sample
//! weight stay zero), fits a member on every row with them (the same
//! feature matrix each round, no copy; weights handed over scaled to sum to
//! the row count, to which trees are indifferent), and predicts the
//! training rows once. With `err` its weighted error and `K` classes, a
//! perfect member (`err = 0`) is kept with weight 1 and ends boosting; one
//! no better than chance (`err >= 1 - 1/K`) is dropped and ends boosting
//! (the first one is an error); otherwise its weight is
//! `learning_rate * (ln((1 - err) / err) + ln(K - 1))` and the weights of
//! the rows it got wrong are multiplied by `exp(weight)`, then all are
//! scaled back to sum 1. The base learner must honour sample weights (the
//! tree learners do).
//!
//! Prediction is the weighted vote through scikit-learn's decision
//! function, `f_c = sum_m w_m (1 if m votes c, else -1/(K-1)) / sum_m w_m`:
//! the class with the largest `f_c` (for two classes, class 1 when
//! `f_1 - f_0 > 0`). Probabilities are `softmax(f / (K - 1))`, which for two
//! classes is `softmax([-d, d] / 2)` with `d = f_1 - f_0`, exactly as
//! scikit-learn's `predict_proba`.
//!
//! # Regression: AdaBoost.R2
//!
//! Each round draws as many rows as the data has, with replacement, in
//! proportion to the current weights (the random stream is seeded from
//! `random_state` and the round), fits a member on that resample without
//! weights, and predicts the training rows. The absolute errors, scaled by
//! the largest, pass through `loss`; the member's error `err` is their
//! weighted sum. A perfect member is kept with weight 1 and ends boosting;
//! `err >= 0.5` ends boosting, dropping the member unless it is the first
//! (kept with weight 0, as scikit-learn). Otherwise, with
//! `beta = err / (1 - err)`, its weight is `learning_rate * ln(1 / beta)` and
//! each row's weight is multiplied by `beta ^ ((1 - loss) * learning_rate)`.
//! Prediction is the weighted median of the members' predictions.
//!
//! Boosting also stops when the row weights overflow (with a warning) or
//! vanish. The summary lists `estimator_weights`, `estimator_errors`,
//! `n_members` (members actually fitted) and why boosting `stopped`.
//!
//! # Exchange form
//!
//! A classifier whose members are all single trees exposes one tree
//! ensemble (`Combine::Sum`, `Link::Softmax`) whose leaves hold each
//! member's contribution to `f / (K - 1)`, so that it computes
//! `predict_proba` exactly. Other members and regressors have none.
//!
//! The modules: [`params`] (schema), [`boost`] (one round's arithmetic),
//! [`train`] (the rounds), [`model`] (prediction, summary, exchange form),
//! [`serialize`] (model bytes).

pub mod boost;
pub mod model;
pub mod params;
pub mod serialize;
pub mod train;

#[cfg(test)]
mod tests;

use tessera_core::plugin::LearnerDef;

/// The `adaboost` learner.
pub fn learner() -> LearnerDef {
    LearnerDef {
        name: params::LEARNER,
        description: "AdaBoost (SAMME classification, AdaBoost.R2 regression) over any learner",
        params: params::specs(),
        create: train::create,
        load: serialize::load,
    }
}
