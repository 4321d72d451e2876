//! The learner's parameters: the schema the host checks them against (names,
//! defaults and meaning follow scikit-learn's `RandomForestClassifier` and
//! `RandomForestRegressor`), their conversion into [`ForestParams`], and the
//! resolution of task- and size-dependent values into a [`TreeConfig`].

use serde_json::{Value, json};
use tessera_core::{PluginError, Task, params::ParamSpec, params::Params};

/// The learner's component name.
pub const LEARNER: &str = "random_forest";

const CRITERIA: &[&str] = &["gini", "entropy", "log_loss", "squared_error"];
const CRITERION_TYPE: &str = r#""gini" | "entropy" | "log_loss" | "squared_error" | null"#;
const SPLIT_TYPE: &str = "int >= 2 | float in (0, 1]";
const LEAF_TYPE: &str = "int >= 1 | float in (0, 1)";
const MAX_FEATURES_TYPE: &str = r#""auto" | "sqrt" | "log2" | int >= 1 | float in (0, 1] | null"#;

/// The parameter schema of `random_forest`.
pub fn specs() -> Vec<ParamSpec> {
    vec![
        ParamSpec::int(
            "n_estimators",
            Some(100),
            1,
            "number of trees in the forest",
        ),
        ParamSpec::custom(
            "criterion",
            CRITERION_TYPE,
            Value::Null,
            "split quality: gini or entropy (= log_loss) for classification, squared_error for \
             regression; null picks gini or squared_error by task",
            check_criterion,
        ),
        ParamSpec::int(
            "max_depth",
            None,
            1,
            "deepest level a tree may reach; null grows until leaves are pure or too small",
        ),
        ParamSpec::custom(
            "min_samples_split",
            SPLIT_TYPE,
            json!(2),
            "fewest samples a node needs to be split; a float is a fraction of the rows, rounded up",
            check_min_samples_split,
        ),
        ParamSpec::custom(
            "min_samples_leaf",
            LEAF_TYPE,
            json!(1),
            "fewest samples each child of a split must keep; a float is a fraction of the rows, \
             rounded up",
            check_min_samples_leaf,
        ),
        ParamSpec::custom(
            "max_features",
            MAX_FEATURES_TYPE,
            json!("auto"),
            "features tried per split: \"sqrt\", \"log2\", a count, a fraction, or null for all; \
             \"auto\" is scikit-learn's default for the task (sqrt for classification, all for \
             regression)",
            check_max_features,
        ),
        ParamSpec::bool(
            "bootstrap",
            true,
            "train each tree on a bootstrap sample of the rows (drawn with replacement)",
        ),
        ParamSpec::int(
            "random_state",
            None,
            0,
            "seed making training reproducible; null draws a fresh seed, recorded in the model",
        ),
    ]
}

fn check_criterion(v: &Value) -> Result<(), String> {
    match v {
        Value::Null => Ok(()),
        Value::String(s) if CRITERIA.contains(&s.as_str()) => Ok(()),
        _ => Err(format!("expected {CRITERION_TYPE}, got {v}")),
    }
}

fn check_min_samples_split(v: &Value) -> Result<(), String> {
    match size(v) {
        Some(Size::Count(n)) if n >= 2 => Ok(()),
        Some(Size::Fraction(f)) if f > 0.0 && f <= 1.0 => Ok(()),
        _ => Err(format!("expected {SPLIT_TYPE}, got {v}")),
    }
}

fn check_min_samples_leaf(v: &Value) -> Result<(), String> {
    match size(v) {
        Some(Size::Count(n)) if n >= 1 => Ok(()),
        Some(Size::Fraction(f)) if f > 0.0 && f < 1.0 => Ok(()),
        _ => Err(format!("expected {LEAF_TYPE}, got {v}")),
    }
}

fn check_max_features(v: &Value) -> Result<(), String> {
    match max_features(v) {
        Some(MaxFeatures::Count(0)) | None => Err(format!("expected {MAX_FEATURES_TYPE}, got {v}")),
        Some(MaxFeatures::Fraction(f)) if !(f > 0.0 && f <= 1.0) => {
            Err(format!("expected {MAX_FEATURES_TYPE}, got {v}"))
        }
        Some(_) => Ok(()),
    }
}

/// A split criterion.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Criterion {
    /// Gini impurity (classification).
    Gini,
    /// Shannon entropy (classification); `log_loss` is the same criterion.
    Entropy,
    /// Variance of the target (regression).
    SquaredError,
}

impl Criterion {
    /// The criterion's scikit-learn name.
    pub fn name(self) -> &'static str {
        match self {
            Self::Gini => "gini",
            Self::Entropy => "entropy",
            Self::SquaredError => "squared_error",
        }
    }
}

/// A size given as a count of rows or as a fraction of them.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Size {
    /// That many rows.
    Count(usize),
    /// `ceil(fraction * rows)` rows.
    Fraction(f64),
}

/// How many features each split draws.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum MaxFeatures {
    /// `Sqrt` for classification, `All` for regression.
    Auto,
    /// `max(1, floor(sqrt(features)))`.
    Sqrt,
    /// `max(1, floor(log2(features)))`.
    Log2,
    /// Exactly that many (at most the feature count).
    Count(usize),
    /// `max(1, floor(fraction * features))`.
    Fraction(f64),
    /// Every feature.
    All,
}

/// The learner's parameters, checked but not yet resolved against data.
#[derive(Clone, Debug, PartialEq)]
pub struct ForestParams {
    /// Number of trees.
    pub n_estimators: usize,
    /// The criterion; `None` picks the task's default.
    pub criterion: Option<&'static str>,
    /// Depth limit; `None` for none.
    pub max_depth: Option<usize>,
    /// Fewest samples to split a node.
    pub min_samples_split: Size,
    /// Fewest samples in a leaf.
    pub min_samples_leaf: Size,
    /// Features drawn per split.
    pub max_features: MaxFeatures,
    /// Whether each tree sees a bootstrap sample.
    pub bootstrap: bool,
    /// The seed; `None` draws one at fit time.
    pub random_state: Option<u64>,
}

/// Everything one tree needs, resolved for a task and a data size.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TreeConfig {
    /// The split criterion.
    pub criterion: Criterion,
    /// Depth limit (`usize::MAX` for none).
    pub max_depth: usize,
    /// Fewest samples to split a node.
    pub min_samples_split: usize,
    /// Fewest samples in each child.
    pub min_samples_leaf: usize,
    /// Features evaluated per split.
    pub max_features: usize,
    /// Whether each tree sees a bootstrap sample.
    pub bootstrap: bool,
}

fn size(v: &Value) -> Option<Size> {
    if let Some(n) = v.as_u64() {
        Some(Size::Count(usize::try_from(n).ok()?))
    } else if v.is_i64() {
        None
    } else {
        v.as_f64().map(Size::Fraction)
    }
}

fn max_features(v: &Value) -> Option<MaxFeatures> {
    match v {
        Value::Null => Some(MaxFeatures::All),
        Value::String(s) => match s.as_str() {
            "auto" => Some(MaxFeatures::Auto),
            "sqrt" => Some(MaxFeatures::Sqrt),
            "log2" => Some(MaxFeatures::Log2),
            _ => None,
        },
        Value::Number(_) => match size(v)? {
            Size::Count(n) => Some(MaxFeatures::Count(n)),
            Size::Fraction(f) => Some(MaxFeatures::Fraction(f)),
        },
        _ => None,
    }
}

fn bad(key: &str, v: &Value) -> PluginError {
    PluginError::params(format!(
        "`{LEARNER}` parameter `{key}`: unexpected value {v}"
    ))
}

impl ForestParams {
    /// Reads parameters that [`tessera_core::params::parse`] has checked
    /// against [`specs`].
    ///
    /// # Errors
    /// A value the schema should have refused.
    pub fn from_params(p: &Params) -> Result<Self, PluginError> {
        let criterion = match p.get("criterion") {
            Value::Null => None,
            v => Some(
                CRITERIA
                    .iter()
                    .copied()
                    .find(|c| v.as_str() == Some(c))
                    .ok_or_else(|| bad("criterion", v))?,
            ),
        };
        let get = |key: &str| p.get(key);
        Ok(Self {
            n_estimators: p
                .opt_usize("n_estimators")
                .ok_or_else(|| bad("n_estimators", get("n_estimators")))?,
            criterion,
            max_depth: p.opt_usize("max_depth"),
            min_samples_split: size(get("min_samples_split"))
                .ok_or_else(|| bad("min_samples_split", get("min_samples_split")))?,
            min_samples_leaf: size(get("min_samples_leaf"))
                .ok_or_else(|| bad("min_samples_leaf", get("min_samples_leaf")))?,
            max_features: max_features(get("max_features"))
                .ok_or_else(|| bad("max_features", get("max_features")))?,
            bootstrap: p.bool("bootstrap"),
            random_state: p.opt_u64("random_state"),
        })
    }

    /// Resolves the task default criterion, the feature count and the row
    /// fractions for `task` on `rows x features` data, as scikit-learn does.
    ///
    /// # Errors
    /// A criterion of the other task, or more features than the data has.
    pub fn resolve(
        &self,
        task: Task,
        rows: usize,
        features: usize,
    ) -> Result<TreeConfig, PluginError> {
        let classify = task.is_classification();
        let criterion = match (self.criterion, classify) {
            (None, true) => Criterion::Gini,
            (None, false) => Criterion::SquaredError,
            (Some("gini"), true) => Criterion::Gini,
            (Some("entropy" | "log_loss"), true) => Criterion::Entropy,
            (Some("squared_error"), false) => Criterion::SquaredError,
            (Some(c), _) => {
                let fits = if classify {
                    r#""gini", "entropy" or "log_loss""#
                } else {
                    r#""squared_error""#
                };
                return Err(PluginError::params(format!(
                    "`{LEARNER}` parameter `criterion`: \"{c}\" does not apply to {} (use {fits})",
                    task.name()
                )));
            }
        };
        let fraction = |f: f64| (f * rows as f64).ceil() as usize;
        let min_samples_leaf = match self.min_samples_leaf {
            Size::Count(n) => n,
            Size::Fraction(f) => fraction(f).max(1),
        };
        let min_samples_split = match self.min_samples_split {
            Size::Count(n) => n,
            Size::Fraction(f) => fraction(f).max(2),
        };
        let n = features as f64;
        let max_features = match self.max_features {
            MaxFeatures::Auto if classify => n.sqrt() as usize,
            MaxFeatures::Auto | MaxFeatures::All => features,
            MaxFeatures::Sqrt => n.sqrt() as usize,
            MaxFeatures::Log2 => n.log2() as usize,
            MaxFeatures::Fraction(f) => (f * n) as usize,
            MaxFeatures::Count(c) if c > features => {
                return Err(PluginError::params(format!(
                    "`{LEARNER}` parameter `max_features`: {c} is more than the {features} feature \
                     columns of the data"
                )));
            }
            MaxFeatures::Count(c) => c,
        };
        Ok(TreeConfig {
            criterion,
            max_depth: self.max_depth.unwrap_or(usize::MAX),
            min_samples_split: min_samples_split.max(2 * min_samples_leaf),
            min_samples_leaf,
            max_features: max_features.clamp(1, features.max(1)),
            bootstrap: self.bootstrap,
        })
    }

    /// The parameters a model was trained with, resolved, for its summary.
    pub fn used(&self, cfg: &TreeConfig, seed: u64) -> Value {
        json!({
            "n_estimators": self.n_estimators,
            "criterion": self.criterion.unwrap_or(cfg.criterion.name()),
            "max_depth": self.max_depth,
            "min_samples_split": cfg.min_samples_split,
            "min_samples_leaf": cfg.min_samples_leaf,
            "max_features": cfg.max_features,
            "bootstrap": cfg.bootstrap,
            "random_state": seed,
        })
    }
}
