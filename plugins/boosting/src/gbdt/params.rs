//! The `gradient_boosting` parameter schema and the settings it resolves
//! to. Names and meaning follow scikit-learn's `HistGradientBoosting*`
//! (`GradientBoosting*` for `n_estimators`, `subsample`, `alpha`), with
//! `max_features` drawing columns per tree as LightGBM's
//! `feature_fraction` does.

use serde_json::{Value, json};
use tessera_core::{PluginError, Task, params::ParamSpec, params::Params};
use tessera_trees::class_weight::{ClassWeight, class_weight};

/// The learner's component name.
pub const LEARNER: &str = "gradient_boosting";

/// Loss names accepted.
pub const LOSSES: &[&str] = &[
    "auto",
    "squared_error",
    "absolute_error",
    "huber",
    "quantile",
    "log_loss",
];

const LEAF_NODES_TYPE: &str = "int >= 2 | null";
const DEPTH_TYPE: &str = "int >= 1 | null";
const FRACTION_TYPE: &str = "float in (0, 1]";
const MAX_FEATURES_TYPE: &str = "int >= 1 | float in (0, 1]";
const EARLY_TYPE: &str = r#""auto" | true | false"#;
const QUANTILE_TYPE: &str = "float in (0, 1) | null";
const MONOTONIC_TYPE: &str = r#"[-1 | 0 | 1, ...] | {"<feature>": -1 | 0 | 1, ...} | null"#;
const CLASS_WEIGHT_TYPE: &str = r#""balanced" | {"<class index>": weight, ...} | null"#;

/// The parameter schema.
pub fn specs() -> Vec<ParamSpec> {
    vec![
        ParamSpec::choice(
            "loss",
            "auto",
            LOSSES,
            "the loss to minimise: \"auto\" is log_loss for classification (binary or \
             multiclass softmax) and squared_error for regression",
        ),
        ParamSpec::positive(
            "learning_rate",
            0.1,
            "shrinkage: each tree's leaf values are multiplied by it",
        ),
        ParamSpec::int(
            "n_estimators",
            Some(100),
            1,
            "boosting rounds (one tree per round, one per class and round for multiclass)",
        ),
        ParamSpec::int(
            "max_iter",
            None,
            1,
            "scikit-learn HistGradientBoosting's name for n_estimators; give one or the other",
        ),
        ParamSpec::custom(
            "max_leaf_nodes",
            LEAF_NODES_TYPE,
            json!(31),
            "most leaves per tree; trees grow leaf-wise (best split first); null for no limit \
             (then max_depth bounds the tree)",
            check_leaf_nodes,
        ),
        ParamSpec::custom(
            "max_depth",
            DEPTH_TYPE,
            Value::Null,
            "deepest a leaf may be (the root has depth 0); null for no limit",
            check_depth,
        ),
        ParamSpec::int(
            "min_samples_leaf",
            Some(20),
            1,
            "fewest training rows in a leaf",
        ),
        ParamSpec::float(
            "l2_regularization",
            0.0,
            0.0,
            f64::MAX,
            "L2 penalty on leaf values (added to the hessian sum of every leaf)",
        ),
        ParamSpec::int(
            "max_bins",
            Some(255),
            2,
            "most bins per feature for present values (at most 255; missing values get a bin \
             of their own)",
        ),
        ParamSpec::custom(
            "subsample",
            FRACTION_TYPE,
            json!(1.0),
            "fraction of the rows each round trains on, drawn without replacement",
            check_fraction,
        ),
        ParamSpec::custom(
            "max_features",
            MAX_FEATURES_TYPE,
            json!(1.0),
            "feature columns each tree may split on, drawn without replacement per tree: a \
             fraction or a count",
            check_max_features,
        ),
        ParamSpec::custom(
            "early_stopping",
            EARLY_TYPE,
            json!("auto"),
            "stop when the validation loss stops improving; \"auto\" enables it above 10000 \
             training rows or when validation data is given",
            check_early,
        ),
        ParamSpec::open_unit(
            "validation_fraction",
            0.1,
            "fraction of the training rows held out (stratified for classification) to score \
             early stopping on, when no validation data is given",
        ),
        ParamSpec::int(
            "n_iter_no_change",
            Some(10),
            1,
            "rounds without an improvement of more than tol before early stopping",
        ),
        ParamSpec::float(
            "tol",
            1e-7,
            0.0,
            f64::MAX,
            "smallest decrease of the validation loss that counts as an improvement",
        ),
        ParamSpec::open_unit(
            "alpha",
            0.9,
            "huber: the quantile of absolute residuals beyond which residuals are clipped; \
             quantile loss: the quantile predicted, unless `quantile` is set",
        ),
        ParamSpec::custom(
            "quantile",
            QUANTILE_TYPE,
            Value::Null,
            "the quantile predicted with loss = \"quantile\" (scikit-learn \
             HistGradientBoosting's name); null uses alpha",
            check_quantile,
        ),
        ParamSpec::custom(
            "class_weight",
            CLASS_WEIGHT_TYPE,
            Value::Null,
            "weights per class, multiplying sample weights: \"balanced\" (inversely \
             proportional to class frequencies) or a table from class index to weight",
            check_class_weight,
        ),
        ParamSpec::custom(
            "monotonic_cst",
            MONOTONIC_TYPE,
            Value::Null,
            "monotonic constraints: per feature 1 (predictions may only rise as it rises), -1 \
             (only fall) or 0, as a list in column order or a table from feature name to \
             constraint; not for multiclass",
            check_monotonic,
        ),
        ParamSpec::int(
            "random_state",
            None,
            0,
            "seed for row and column sampling and the validation split; null draws one",
        ),
    ]
}

fn expected(ty: &str, v: &Value) -> String {
    format!("expected {ty}, got {v}")
}

fn constraint(v: &Value) -> Option<i8> {
    match v.as_i64() {
        Some(c @ -1..=1) => Some(c as i8),
        _ => None,
    }
}

fn check_monotonic(v: &Value) -> Result<(), String> {
    let ok = match v {
        Value::Null => true,
        Value::Array(a) => a.iter().all(|c| constraint(c).is_some()),
        Value::Object(m) => m.values().all(|c| constraint(c).is_some()),
        _ => false,
    };
    if ok {
        Ok(())
    } else {
        Err(expected(MONOTONIC_TYPE, v))
    }
}

fn check_leaf_nodes(v: &Value) -> Result<(), String> {
    match v {
        Value::Null => Ok(()),
        _ if v.as_u64().is_some_and(|n| n >= 2) => Ok(()),
        _ => Err(expected(LEAF_NODES_TYPE, v)),
    }
}

fn check_depth(v: &Value) -> Result<(), String> {
    match v {
        Value::Null => Ok(()),
        _ if v.as_u64().is_some_and(|n| n >= 1) => Ok(()),
        _ => Err(expected(DEPTH_TYPE, v)),
    }
}

fn check_fraction(v: &Value) -> Result<(), String> {
    match v.as_f64() {
        Some(x) if x > 0.0 && x <= 1.0 => Ok(()),
        _ => Err(expected(FRACTION_TYPE, v)),
    }
}

fn check_quantile(v: &Value) -> Result<(), String> {
    if v.is_null() {
        return Ok(());
    }
    tessera_core::params::check_open_unit(v).map_err(|_| expected(QUANTILE_TYPE, v))
}

fn check_max_features(v: &Value) -> Result<(), String> {
    match max_features(v) {
        Some(_) => Ok(()),
        None => Err(expected(MAX_FEATURES_TYPE, v)),
    }
}

fn check_early(v: &Value) -> Result<(), String> {
    match v {
        Value::Bool(_) => Ok(()),
        Value::String(s) if s == "auto" => Ok(()),
        _ => Err(expected(EARLY_TYPE, v)),
    }
}

fn check_class_weight(v: &Value) -> Result<(), String> {
    match class_weight(v)? {
        ClassWeight::BalancedSubsample => Err(format!(
            "\"balanced_subsample\" is for forests; expected {CLASS_WEIGHT_TYPE}, got {v}"
        )),
        _ => Ok(()),
    }
}

/// Columns per tree: a count or a fraction.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum MaxFeatures {
    /// This many columns (at most all).
    Count(usize),
    /// This fraction of the columns (at least one).
    Fraction(f64),
}

impl MaxFeatures {
    /// The number of columns out of `n`.
    pub fn of(self, n: usize) -> usize {
        match self {
            Self::Count(c) => c.min(n),
            Self::Fraction(f) => ((f * n as f64) as usize).clamp(1, n),
        }
    }
}

fn max_features(v: &Value) -> Option<MaxFeatures> {
    if let Some(n) = v.as_u64().filter(|_| !v.is_f64()) {
        return (n >= 1).then_some(MaxFeatures::Count(n as usize));
    }
    v.as_f64()
        .filter(|&f| f > 0.0 && f <= 1.0)
        .map(MaxFeatures::Fraction)
}

/// The loss, resolved.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum LossKind {
    /// Squared error (regression).
    Squared,
    /// Absolute error (regression, predicts the median).
    Absolute,
    /// Huber (regression): squared near zero, absolute beyond the
    /// `alpha`-quantile of absolute residuals.
    Huber(f64),
    /// Pinball loss for the given quantile (regression).
    Quantile(f64),
    /// Log loss: binary (sigmoid) or multiclass (softmax).
    LogLoss,
}

impl LossKind {
    /// The loss's name, as the parameter spells it.
    pub fn name(self) -> &'static str {
        match self {
            Self::Squared => "squared_error",
            Self::Absolute => "absolute_error",
            Self::Huber(_) => "huber",
            Self::Quantile(_) => "quantile",
            Self::LogLoss => "log_loss",
        }
    }
}

/// Whether early stopping is on.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Early {
    /// On above 10 000 rows or with validation data.
    Auto,
    /// On.
    On,
    /// Off.
    Off,
}

/// Checked settings.
#[derive(Clone, Debug)]
pub struct Config {
    /// The loss as the user gave it (`auto` resolved at fit time).
    pub loss: &'static str,
    /// Shrinkage.
    pub learning_rate: f64,
    /// Rounds.
    pub n_estimators: usize,
    /// Most leaves per tree.
    pub max_leaf_nodes: Option<usize>,
    /// Deepest leaf.
    pub max_depth: Option<usize>,
    /// Fewest rows per leaf.
    pub min_samples_leaf: usize,
    /// L2 penalty.
    pub l2: f64,
    /// Bins per feature.
    pub max_bins: usize,
    /// Rows per round.
    pub subsample: f64,
    /// Columns per tree.
    pub max_features: MaxFeatures,
    /// Early stopping.
    pub early_stopping: Early,
    /// Held-out fraction.
    pub validation_fraction: f64,
    /// Patience.
    pub n_iter_no_change: usize,
    /// Improvement threshold.
    pub tol: f64,
    /// Huber clipping quantile / default quantile.
    pub alpha: f64,
    /// Quantile for the quantile loss.
    pub quantile: Option<f64>,
    /// Class weights.
    pub class_weight: ClassWeight,
    /// Seed.
    pub random_state: Option<u64>,
    /// Monotonic constraints as given (resolved against feature names at
    /// fit time).
    pub monotonic_cst: Value,
    /// The parameters as given, for the model summary.
    pub json: Value,
}

/// The smallest hessian sum a child may have (as scikit-learn and
/// LightGBM: it keeps leaf values finite).
pub const MIN_HESSIAN: f64 = 1e-3;

impl Config {
    /// Resolves checked parameters.
    ///
    /// # Errors
    /// Values the schema lets through one by one but that conflict.
    pub fn from_params(p: &Params) -> Result<Self, PluginError> {
        let loss = LOSSES
            .iter()
            .copied()
            .find(|l| *l == p.str("loss"))
            .unwrap_or("auto");
        let n_estimators = match (p.get("max_iter").is_null(), p.was_given("n_estimators")) {
            (true, _) => p.usize("n_estimators"),
            (false, false) => p.usize("max_iter"),
            (false, true) => {
                return Err(PluginError::params(
                    "gradient_boosting: give n_estimators or max_iter, not both (they are the \
                     same setting)",
                ));
            }
        };
        let max_bins = p.usize("max_bins");
        if max_bins > tessera_trees::MAX_BINS {
            return Err(PluginError::params(format!(
                "gradient_boosting: max_bins is {max_bins}; at most {} bins are supported (one \
                 more bin holds missing values)",
                tessera_trees::MAX_BINS
            )));
        }
        let max_leaf_nodes = p.opt_usize("max_leaf_nodes");
        let max_depth = p.opt_usize("max_depth");
        Ok(Self {
            loss,
            learning_rate: p.f64("learning_rate"),
            n_estimators,
            max_leaf_nodes,
            max_depth,
            min_samples_leaf: p.usize("min_samples_leaf"),
            l2: p.f64("l2_regularization"),
            max_bins,
            subsample: p.f64("subsample"),
            max_features: max_features(p.get("max_features")).unwrap_or(MaxFeatures::Fraction(1.0)),
            early_stopping: match p.get("early_stopping") {
                Value::Bool(true) => Early::On,
                Value::Bool(false) => Early::Off,
                _ => Early::Auto,
            },
            validation_fraction: p.f64("validation_fraction"),
            n_iter_no_change: p.usize("n_iter_no_change"),
            tol: p.f64("tol"),
            alpha: p.f64("alpha"),
            quantile: p.get("quantile").as_f64(),
            class_weight: class_weight(p.get("class_weight")).unwrap_or(ClassWeight::None),
            random_state: p.opt_u64("random_state"),
            monotonic_cst: p.get("monotonic_cst").clone(),
            json: p.to_json(),
        })
    }

    /// The monotonic constraint of each feature (empty: none), for a
    /// model of `n_outputs` raw scores.
    ///
    /// # Errors
    /// A list of the wrong length, an unknown feature name, or
    /// constraints on a multiclass model.
    pub fn monotonic_for(
        &self,
        names: &[tessera_core::abi_stable::std_types::RString],
        n_outputs: usize,
    ) -> Result<Vec<i8>, PluginError> {
        let bad =
            |why: String| PluginError::params(format!("gradient_boosting: monotonic_cst: {why}"));
        let cst: Vec<i8> = match &self.monotonic_cst {
            Value::Null => return Ok(Vec::new()),
            Value::Array(a) => {
                if a.len() != names.len() {
                    return Err(bad(format!(
                        "{} constraints for {} feature columns",
                        a.len(),
                        names.len()
                    )));
                }
                a.iter().map(|c| constraint(c).unwrap_or(0)).collect()
            }
            Value::Object(m) => {
                let mut cst = vec![0i8; names.len()];
                for (name, c) in m {
                    let Some(f) = names.iter().position(|n| n.as_str() == name) else {
                        let all: Vec<&str> = names.iter().map(|n| n.as_str()).collect();
                        let hint = tessera_core::params::closest(name, &all)
                            .map(|c| format!("; did you mean `{c}`?"))
                            .unwrap_or_default();
                        return Err(bad(format!("no feature column `{name}`{hint}")));
                    };
                    cst[f] = constraint(c).unwrap_or(0);
                }
                cst
            }
            _ => return Ok(Vec::new()),
        };
        if n_outputs > 1 && cst.iter().any(|&c| c != 0) {
            return Err(bad(
                "monotonic constraints are not supported for multiclass classification".into(),
            ));
        }
        Ok(cst)
    }

    /// The loss for `task`.
    ///
    /// # Errors
    /// A regression loss for classification, or log loss for regression.
    pub fn loss_for(&self, task: Task) -> Result<LossKind, PluginError> {
        let classify = task.is_classification();
        let kind = match (self.loss, classify) {
            ("auto" | "log_loss", true) => LossKind::LogLoss,
            ("auto" | "squared_error", false) => LossKind::Squared,
            ("absolute_error", false) => LossKind::Absolute,
            ("huber", false) => LossKind::Huber(self.alpha),
            ("quantile", false) => LossKind::Quantile(self.quantile.unwrap_or(self.alpha)),
            (l, true) => {
                return Err(PluginError::params(format!(
                    "gradient_boosting: loss \"{l}\" is for regression, but the target is \
                     classification; use \"log_loss\" (or \"auto\"), or train with --task \
                     regression"
                )));
            }
            (l, false) => {
                return Err(PluginError::params(format!(
                    "gradient_boosting: loss \"{l}\" is for classification, but the target is \
                     regression; use one of squared_error, absolute_error, huber, quantile"
                )));
            }
        };
        if !classify && self.class_weight != ClassWeight::None {
            return Err(PluginError::params(
                "gradient_boosting: class_weight is for classification, but the target is \
                 regression",
            ));
        }
        Ok(kind)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Config, PluginError> {
        let p = tessera_core::params::parse(LEARNER, &specs(), text)?;
        Config::from_params(&p)
    }

    #[test]
    fn defaults_follow_scikit_learn() {
        let c = parse("{}").unwrap();
        assert_eq!(c.n_estimators, 100);
        assert_eq!(c.max_leaf_nodes, Some(31));
        assert_eq!(c.min_samples_leaf, 20);
        assert_eq!(c.max_bins, 255);
        assert_eq!(c.early_stopping, Early::Auto);
        assert_eq!(
            c.loss_for(Task::classification(3)).unwrap(),
            LossKind::LogLoss
        );
        assert_eq!(c.loss_for(Task::regression()).unwrap(), LossKind::Squared);
    }

    #[test]
    fn bad_values_name_the_key() {
        for (text, needle) in [
            (r#"{"learning_rate": 0}"#, "learning_rate"),
            (r#"{"max_leaf_nodes": 1}"#, "max_leaf_nodes"),
            (r#"{"subsample": 1.5}"#, "subsample"),
            (r#"{"max_features": 0}"#, "max_features"),
            (r#"{"early_stopping": "yes"}"#, "early_stopping"),
            (r#"{"loss": "hinge"}"#, "loss"),
            (r#"{"max_bins": 300}"#, "max_bins"),
            (r#"{"class_weight": "balanced_subsample"}"#, "class_weight"),
            (r#"{"n_estimator": 5}"#, "n_estimators"),
            (r#"{"monotonic_cst": [2]}"#, "monotonic_cst"),
            (r#"{"monotonic_cst": "up"}"#, "monotonic_cst"),
        ] {
            let e = parse(text).unwrap_err();
            assert!(e.message.contains(needle), "{text}: {}", e.message);
        }
        let e = parse(r#"{"n_estimators": 5, "max_iter": 6}"#).unwrap_err();
        assert!(e.message.contains("not both"), "{}", e.message);
        assert_eq!(parse(r#"{"max_iter": 6}"#).unwrap().n_estimators, 6);
        let c = parse(r#"{"loss": "huber"}"#).unwrap();
        assert!(c.loss_for(Task::classification(2)).is_err());
        let c = parse(r#"{"loss": "log_loss"}"#).unwrap();
        assert!(c.loss_for(Task::regression()).is_err());
    }

    #[test]
    fn max_features_counts_and_fractions() {
        assert_eq!(MaxFeatures::Count(5).of(3), 3);
        assert_eq!(MaxFeatures::Fraction(0.5).of(10), 5);
        assert_eq!(MaxFeatures::Fraction(0.01).of(10), 1);
        assert_eq!(max_features(&json!(2)), Some(MaxFeatures::Count(2)));
        assert_eq!(max_features(&json!(1.0)), Some(MaxFeatures::Fraction(1.0)));
    }
}
