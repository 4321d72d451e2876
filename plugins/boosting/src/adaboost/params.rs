//! The learner's parameters: the schema the host checks them against (names,
//! defaults and meaning follow scikit-learn's `AdaBoostClassifier` and
//! `AdaBoostRegressor`), and their conversion into [`AdaBoostParams`].

use serde_json::{Value, json};
use tessera_core::{
    PluginError,
    params::{ParamSpec, Params},
    plugin::members::{Estimator, estimator_params_spec, estimator_spec},
};

/// The learner's component name.
pub const LEARNER: &str = "adaboost";

/// The base learner used when none is named.
pub const DEFAULT_ESTIMATOR: &str = "decision_tree";

/// `max_depth` of the default base learner: stumps for classification,
/// depth 3 for regression, as scikit-learn.
pub const DEFAULT_DEPTH_CLASSIFICATION: u32 = 1;
/// See [`DEFAULT_DEPTH_CLASSIFICATION`].
pub const DEFAULT_DEPTH_REGRESSION: u32 = 3;

const LOSS_TYPE: &str = "\"linear\" | \"square\" | \"exponential\" | null";
const RATE_TYPE: &str = "float > 0";

/// The parameter schema of `adaboost`.
pub fn specs() -> Vec<ParamSpec> {
    vec![
        estimator_spec(
            Value::Null,
            "the base learner (any learner of a loaded plugin that honours sample weights), by \
             name, or a table whose `name` is the learner and whose other keys are its \
             parameters; null (or a table without `name`): decision_tree with max_depth = 1 for \
             classification, 3 for regression, unless the parameters given say otherwise",
        ),
        estimator_params_spec(),
        ParamSpec::int(
            "n_estimators",
            Some(50),
            1,
            "most members to fit; boosting stops early on a perfect fit or on a member no better \
             than chance",
        ),
        ParamSpec::custom(
            "learning_rate",
            RATE_TYPE,
            json!(1.0),
            "shrinks each member's weight and the reweighting of the rows",
            check_rate,
        ),
        ParamSpec::custom(
            "loss",
            LOSS_TYPE,
            Value::Null,
            "regression only (AdaBoost.R2): how a row's error, scaled by the largest, counts; \
             null means \"linear\"",
            check_loss,
        ),
        ParamSpec::int(
            "random_state",
            None,
            0,
            "seed making the members' own random_state and (regression) the weighted resamples \
             reproducible; null draws a fresh seed, recorded in the model",
        ),
    ]
}

fn check_rate(v: &Value) -> Result<(), String> {
    match v.as_f64() {
        Some(r) if r > 0.0 && r.is_finite() => Ok(()),
        _ => Err(format!("expected {RATE_TYPE}, got {v}")),
    }
}

fn check_loss(v: &Value) -> Result<(), String> {
    if v.is_null() || v.as_str().and_then(Loss::from_name).is_some() {
        Ok(())
    } else {
        Err(format!("expected {LOSS_TYPE}, got {v}"))
    }
}

/// How AdaBoost.R2 turns a row's error, scaled into `[0, 1]` by the
/// largest, into its loss.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Loss {
    /// `e`.
    Linear,
    /// `e²`.
    Square,
    /// `1 - exp(-e)`.
    Exponential,
}

impl Loss {
    /// The loss named `name`.
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "linear" => Some(Self::Linear),
            "square" => Some(Self::Square),
            "exponential" => Some(Self::Exponential),
            _ => None,
        }
    }

    /// Its name.
    pub fn name(self) -> &'static str {
        match self {
            Self::Linear => "linear",
            Self::Square => "square",
            Self::Exponential => "exponential",
        }
    }

    /// The loss of a scaled error `e` in `[0, 1]`.
    pub fn apply(self, e: f64) -> f64 {
        match self {
            Self::Linear => e,
            Self::Square => e * e,
            Self::Exponential => 1.0 - (-e).exp(),
        }
    }
}

/// The learner's parameters, checked.
#[derive(Clone, Debug, PartialEq)]
pub struct AdaBoostParams {
    /// The base learner as given; see [`AdaBoostParams::estimator_for`].
    pub estimator: Estimator,
    /// Most members.
    pub n_estimators: usize,
    /// Shrinkage of member weights and reweighting.
    pub learning_rate: f64,
    /// The AdaBoost.R2 loss, when given (regression only).
    pub loss: Option<Loss>,
    /// The seed; `None` draws one at fit time.
    pub random_state: Option<u64>,
}

fn bad(key: &str, v: &Value) -> PluginError {
    PluginError::params(format!(
        "`{LEARNER}` parameter `{key}`: unexpected value {v}"
    ))
}

impl AdaBoostParams {
    /// Reads parameters that [`tessera_core::params::parse`] has checked
    /// against [`specs`].
    ///
    /// # Errors
    /// The base learner's parameters given both inside `estimator` and as
    /// `estimator_params`, or a value the schema should have refused.
    pub fn from_params(p: &Params) -> Result<Self, PluginError> {
        let n_estimators = p
            .opt_usize("n_estimators")
            .filter(|&n| n >= 1 && u32::try_from(n).is_ok())
            .ok_or_else(|| bad("n_estimators", p.get("n_estimators")))?;
        let learning_rate = p.f64("learning_rate");
        if !(learning_rate > 0.0 && learning_rate.is_finite()) {
            return Err(bad("learning_rate", p.get("learning_rate")));
        }
        let loss = match p.get("loss") {
            Value::Null => None,
            v => Some(
                v.as_str()
                    .and_then(Loss::from_name)
                    .ok_or_else(|| bad("loss", v))?,
            ),
        };
        Ok(Self {
            estimator: Estimator::from_values(
                LEARNER,
                DEFAULT_ESTIMATOR,
                p.get("estimator"),
                p.get("estimator_params"),
            )?,
            n_estimators,
            learning_rate,
            loss,
            random_state: p.opt_u64("random_state"),
        })
    }

    /// The base learner for a task: as given, or when not named, the
    /// default decision tree with scikit-learn's default depth for the task
    /// unless the given parameters set one.
    pub fn estimator_for(&self, classify: bool) -> Estimator {
        if self.estimator.named {
            return self.estimator.clone();
        }
        let depth = if classify {
            DEFAULT_DEPTH_CLASSIFICATION
        } else {
            DEFAULT_DEPTH_REGRESSION
        };
        self.estimator
            .clone()
            .with_default("max_depth", json!(depth))
    }

    /// The loss to use for regression.
    ///
    /// # Errors
    /// A `loss` given for classification, which SAMME has no use for.
    pub fn loss_for(&self, classify: bool) -> Result<Loss, PluginError> {
        match (self.loss, classify) {
            (Some(l), true) => Err(PluginError::params(format!(
                "`{LEARNER}` parameter `loss`: \"{}\" applies to regression (AdaBoost.R2) only; \
                 classification (SAMME) takes no loss",
                l.name()
            ))),
            (l, _) => Ok(l.unwrap_or(Loss::Linear)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tessera_core::params::parse;

    fn read(text: &str) -> Result<AdaBoostParams, PluginError> {
        AdaBoostParams::from_params(&parse(LEARNER, &specs(), text)?)
    }

    #[test]
    fn defaults_are_scikit_learns() {
        let p = read("{}").unwrap();
        assert_eq!(p.n_estimators, 50);
        assert_eq!(p.learning_rate, 1.0);
        assert_eq!(p.loss, None);
        assert_eq!(p.random_state, None);
        let c = p.estimator_for(true);
        assert_eq!(c.name, "decision_tree");
        assert_eq!(Value::Object(c.params), json!({"max_depth": 1}));
        let r = p.estimator_for(false);
        assert_eq!(Value::Object(r.params), json!({"max_depth": 3}));
        assert_eq!(p.loss_for(false).unwrap(), Loss::Linear);
        assert_eq!(p.loss_for(true).unwrap(), Loss::Linear);
    }

    #[test]
    fn the_default_tree_takes_given_parameters() {
        let p = read(r#"{"estimator_params": {"max_depth": 2, "min_samples_leaf": 5}}"#).unwrap();
        assert_eq!(
            Value::Object(p.estimator_for(true).params),
            json!({"max_depth": 2, "min_samples_leaf": 5})
        );
        let p = read(r#"{"estimator": {"min_samples_leaf": 5}}"#).unwrap();
        assert_eq!(
            Value::Object(p.estimator_for(false).params),
            json!({"max_depth": 3, "min_samples_leaf": 5})
        );
        // Named explicitly: the learner's own defaults, as scikit-learn's
        // `estimator=DecisionTreeClassifier()`.
        let p = read(r#"{"estimator": "decision_tree"}"#).unwrap();
        assert_eq!(Value::Object(p.estimator_for(true).params), json!({}));
        let p = read(r#"{"estimator": {"name": "linear", "alpha": 2}}"#).unwrap();
        let e = p.estimator_for(true);
        assert_eq!(e.name, "linear");
        assert_eq!(Value::Object(e.params), json!({"alpha": 2}));
    }

    #[test]
    fn bad_values_name_their_key() {
        for (text, piece) in [
            (
                r#"{"n_estimators": 0}"#,
                "`n_estimators`: expected int >= 1, got 0",
            ),
            (
                r#"{"learning_rate": 0}"#,
                "`learning_rate`: expected float > 0, got 0",
            ),
            (
                r#"{"learning_rate": -1.5}"#,
                "`learning_rate`: expected float > 0",
            ),
            (r#"{"learning_rate": "fast"}"#, "`learning_rate`"),
            (
                r#"{"loss": "huber"}"#,
                "`loss`: expected \"linear\" | \"square\"",
            ),
            (r#"{"estimator": 3}"#, "`estimator`: expected learner name"),
            (r#"{"estimator_params": 3}"#, "`estimator_params`"),
            (r#"{"random_state": -1}"#, "`random_state`"),
            (r#"{"algorithm": "SAMME"}"#, "unknown parameter `algorithm`"),
        ] {
            let e = read(text).unwrap_err();
            assert_eq!(e.kind, tessera_core::ErrorKind::INVALID_PARAMS, "{text}");
            assert!(e.message.contains(piece), "{text}: {e}");
        }
        let e = read(r#"{"estimator": {"max_depth": 2}, "estimator_params": {"max_depth": 3}}"#)
            .unwrap_err();
        assert!(
            e.message.contains("`estimator` and `estimator_params`"),
            "{e}"
        );
    }

    #[test]
    fn a_loss_is_for_regression_only() {
        let p = read(r#"{"loss": "square"}"#).unwrap();
        assert_eq!(p.loss_for(false).unwrap(), Loss::Square);
        let e = p.loss_for(true).unwrap_err();
        assert!(e.message.contains("`loss`"), "{e}");
        assert!(e.message.contains("regression"), "{e}");
    }

    #[test]
    fn losses() {
        assert_eq!(Loss::Linear.apply(0.5), 0.5);
        assert_eq!(Loss::Square.apply(0.5), 0.25);
        assert!((Loss::Exponential.apply(1.0) - (1.0 - (-1.0f64).exp())).abs() < 1e-15);
        for l in [Loss::Linear, Loss::Square, Loss::Exponential] {
            assert_eq!(Loss::from_name(l.name()), Some(l));
        }
    }
}
