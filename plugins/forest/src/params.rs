//! The learners' parameter schemas. Names, defaults and meaning follow
//! scikit-learn's `RandomForest{Classifier,Regressor}` and
//! `DecisionTree{Classifier,Regressor}`; `split_algorithm` and `max_bins`
//! choose between histogram and exact split search. [`crate::config`]
//! turns checked values into settings.

use serde_json::{Value, json};
use tessera_core::params::ParamSpec;

pub use crate::config::{Criterion, ForestParams, TreeConfig};
pub use tessera_trees::class_weight::{ClassWeight, class_weight};

/// The forest learner's component name.
pub const LEARNER: &str = "random_forest";
/// The single-tree learner's component name.
pub const TREE_LEARNER: &str = "decision_tree";

/// Criterion names accepted.
pub const CRITERIA: &[&str] = &["gini", "entropy", "log_loss", "squared_error"];
const CRITERION_TYPE: &str = r#""gini" | "entropy" | "log_loss" | "squared_error" | null"#;
const SPLIT_TYPE: &str = "int >= 2 | float in (0, 1]";
const LEAF_TYPE: &str = "int >= 1 | float in (0, 1)";
const MAX_FEATURES_TYPE: &str = r#""auto" | "sqrt" | "log2" | int >= 1 | float in (0, 1] | null"#;
const MAX_SAMPLES_TYPE: &str = "int >= 1 | float in (0, 1] | null";
const NON_NEGATIVE_TYPE: &str = "float >= 0";
const MAX_BINS_TYPE: &str = "int in [2, 255]";
const FOREST_CLASS_WEIGHT_TYPE: &str =
    r#""balanced" | "balanced_subsample" | {"<class index>": weight, ...} | null"#;
const TREE_CLASS_WEIGHT_TYPE: &str = r#""balanced" | {"<class index>": weight, ...} | null"#;

/// The parameter schema of `random_forest`.
pub fn specs() -> Vec<ParamSpec> {
    let mut s = vec![ParamSpec::int(
        "n_estimators",
        Some(100),
        1,
        "number of trees in the forest",
    )];
    s.extend(tree_specs_with(
        json!("auto"),
        "features tried per split: \"sqrt\", \"log2\", a count, a fraction, or null for all; \
         \"auto\" is scikit-learn's default for the task (sqrt for classification, all for \
         regression)",
        ParamSpec::custom(
            "class_weight",
            FOREST_CLASS_WEIGHT_TYPE,
            Value::Null,
            "weights per class, multiplying sample weights: \"balanced\" (inversely proportional \
             to class frequencies), \"balanced_subsample\" (the same, per bootstrap sample), or a \
             table from class index to weight; class indices are 0..K-1 in the sorted order of \
             the labels; unlisted classes weigh 1",
            check_forest_class_weight,
        ),
    ));
    s.extend([
        ParamSpec::bool(
            "bootstrap",
            true,
            "train each tree on a bootstrap sample: rows drawn with replacement, with \
             probability proportional to sample weight times class weight (as scikit-learn \
             1.9), each weighing as often as it was drawn",
        ),
        ParamSpec::bool(
            "oob_score",
            false,
            "score the forest on the rows each tree did not see (accuracy, or R² for \
             regression); reported by describe as `oob_score`; needs bootstrap",
        ),
        ParamSpec::custom(
            "max_samples",
            MAX_SAMPLES_TYPE,
            Value::Null,
            "rows drawn per tree with bootstrap: a count, a fraction of the rows, or null for \
             as many as there are rows",
            check_max_samples,
        ),
        tessera_core::shard::spec(
            "train only shard I of N of the forest: the tree indices \
             0..n_estimators are cut into N consecutive ranges of near-equal size and shard I \
             grows the I-th, each tree exactly as the whole forest grows it (its sample and \
             feature draws depend only on random_state and its index); needs random_state, \
             excludes oob_score; set by `tessera train --shard I/N`, joined by `tessera merge`",
        ),
    ]);
    s
}

/// The parameter schema of `decision_tree`.
pub fn tree_specs() -> Vec<ParamSpec> {
    tree_specs_with(
        Value::Null,
        "features tried per split: \"sqrt\", \"log2\", a count, a fraction, or null for all \
         (\"auto\": sqrt for classification, all for regression)",
        ParamSpec::custom(
            "class_weight",
            TREE_CLASS_WEIGHT_TYPE,
            Value::Null,
            "weights per class, multiplying sample weights: \"balanced\" (inversely proportional \
             to class frequencies) or a table from class index to weight; class indices are \
             0..K-1 in the sorted order of the labels; unlisted classes weigh 1",
            check_tree_class_weight,
        ),
    )
}

/// The parameters one tree takes, shared by both learners.
fn tree_specs_with(
    max_features_default: Value,
    max_features_doc: &'static str,
    class_weight: ParamSpec,
) -> Vec<ParamSpec> {
    vec![
        ParamSpec::custom(
            "criterion",
            CRITERION_TYPE,
            Value::Null,
            "split quality: gini or entropy (= log_loss) for classification, squared_error for \
             regression; null picks gini or squared_error by task",
            check_criterion,
        ),
        ParamSpec::choice(
            "splitter",
            "best",
            &["best", "random"],
            "\"best\" searches every threshold of each candidate feature; \"random\" draws one \
             threshold per feature uniformly between the node's smallest and largest value \
             (extremely randomized trees; with histograms, rows split by whole bins)",
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
        ParamSpec::float(
            "min_weight_fraction_leaf",
            0.0,
            0.0,
            0.5,
            "smallest fraction of the total sample weight each leaf must keep",
        ),
        ParamSpec::custom(
            "max_features",
            MAX_FEATURES_TYPE,
            max_features_default,
            max_features_doc,
            check_max_features,
        ),
        ParamSpec::int(
            "max_leaf_nodes",
            None,
            2,
            "grow best-first up to this many leaves (largest impurity decrease first); null for \
             no limit (depth-first)",
        ),
        ParamSpec::custom(
            "min_impurity_decrease",
            NON_NEGATIVE_TYPE,
            json!(0.0),
            "split a node only if N_t / N * (impurity - N_t_R / N_t * right_impurity - N_t_L / \
             N_t * left_impurity) reaches this (N: weighted sample counts)",
            check_non_negative,
        ),
        class_weight,
        ParamSpec::custom(
            "ccp_alpha",
            NON_NEGATIVE_TYPE,
            json!(0.0),
            "complexity parameter of minimal cost-complexity pruning after growth; 0 prunes nothing",
            check_non_negative,
        ),
        ParamSpec::int(
            "random_state",
            None,
            0,
            "seed making training reproducible; null draws a fresh seed, recorded in the model",
        ),
        ParamSpec::choice(
            "split_algorithm",
            "hist",
            &["hist", "exact"],
            "\"hist\" finds splits on per-node histograms of binned features (fast); \"exact\" \
             sorts each candidate feature's values at every node",
        ),
        ParamSpec::custom(
            "max_bins",
            MAX_BINS_TYPE,
            json!(255),
            "bins per feature for split_algorithm = \"hist\" (missing values get one more)",
            check_max_bins,
        ),
    ]
}

fn expected(ty: &str, v: &Value) -> String {
    format!("expected {ty}, got {v}")
}

fn check_criterion(v: &Value) -> Result<(), String> {
    match v {
        Value::Null => Ok(()),
        Value::String(s) if CRITERIA.contains(&s.as_str()) => Ok(()),
        _ => Err(expected(CRITERION_TYPE, v)),
    }
}

/// A size given as a count of rows or as a fraction of them.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Size {
    /// That many rows.
    Count(usize),
    /// A fraction of the rows.
    Fraction(f64),
}

/// Reads a size: a non-negative JSON integer is a count, any other number
/// a fraction.
pub fn size(v: &Value) -> Option<Size> {
    if let Some(n) = v.as_u64() {
        Some(Size::Count(usize::try_from(n).ok()?))
    } else if v.is_i64() {
        None
    } else {
        v.as_f64().map(Size::Fraction)
    }
}

fn check_min_samples_split(v: &Value) -> Result<(), String> {
    match size(v) {
        Some(Size::Count(n)) if n >= 2 => Ok(()),
        Some(Size::Fraction(f)) if f > 0.0 && f <= 1.0 => Ok(()),
        _ => Err(expected(SPLIT_TYPE, v)),
    }
}

fn check_min_samples_leaf(v: &Value) -> Result<(), String> {
    match size(v) {
        Some(Size::Count(n)) if n >= 1 => Ok(()),
        Some(Size::Fraction(f)) if f > 0.0 && f < 1.0 => Ok(()),
        _ => Err(expected(LEAF_TYPE, v)),
    }
}

fn check_max_samples(v: &Value) -> Result<(), String> {
    match size(v) {
        _ if v.is_null() => Ok(()),
        Some(Size::Count(n)) if n >= 1 => Ok(()),
        Some(Size::Fraction(f)) if f > 0.0 && f <= 1.0 => Ok(()),
        _ => Err(expected(MAX_SAMPLES_TYPE, v)),
    }
}

fn check_non_negative(v: &Value) -> Result<(), String> {
    match v.as_f64() {
        Some(f) if f >= 0.0 && f.is_finite() => Ok(()),
        _ => Err(expected(NON_NEGATIVE_TYPE, v)),
    }
}

fn check_max_bins(v: &Value) -> Result<(), String> {
    match v.as_u64() {
        Some(2..=255) => Ok(()),
        _ => Err(expected(MAX_BINS_TYPE, v)),
    }
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

/// Reads `max_features`.
pub fn max_features(v: &Value) -> Option<MaxFeatures> {
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

fn check_max_features(v: &Value) -> Result<(), String> {
    match max_features(v) {
        Some(MaxFeatures::Count(0)) | None => Err(expected(MAX_FEATURES_TYPE, v)),
        Some(MaxFeatures::Fraction(f)) if !(f > 0.0 && f <= 1.0) => {
            Err(expected(MAX_FEATURES_TYPE, v))
        }
        Some(_) => Ok(()),
    }
}

fn check_forest_class_weight(v: &Value) -> Result<(), String> {
    class_weight(v).map(|_| ())
}

fn check_tree_class_weight(v: &Value) -> Result<(), String> {
    match class_weight(v) {
        Ok(ClassWeight::BalancedSubsample) | Err(_) if !v.is_object() => {
            Err(expected(TREE_CLASS_WEIGHT_TYPE, v))
        }
        r => r.map(|_| ()),
    }
}
