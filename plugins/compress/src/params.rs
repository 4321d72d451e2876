//! The parameters of `quantize` and `prune`, as declared (the schema the
//! manifest shows) and as checked (what each model family takes).

use serde_json::Value;
use tessera_core::{
    PluginError,
    params::{ParamSpec, Params},
};

/// `quantize`'s parameters.
pub fn quantize_specs() -> Vec<ParamSpec> {
    vec![
        ParamSpec::custom(
            "bits",
            "8 | 16",
            Value::from(8),
            "width of quantized values: network weights and activations (int8 or int16), tree \
             thresholds as bin indices (at most 255 or 65,535 edges per feature)",
            check_bits,
        ),
        ParamSpec::choice(
            "leaves",
            "auto",
            &["auto", "f32", "f16", "i16", "i8"],
            "tree leaf values: half floats, or integers scaled per tree; auto = i8 for \
             forest classifiers, i16 otherwise",
        ),
        ParamSpec::int(
            "calibration_rows",
            Some(2048),
            1,
            "networks: rows of --data (else --eval) run through the network to set each \
             layer's activation scale; without rows, activations are scaled per row at run time",
        ),
    ]
}

fn check_bits(v: &Value) -> Result<(), String> {
    match v.as_i64() {
        Some(8 | 16) => Ok(()),
        _ => Err(format!("must be 8 or 16, got {v}")),
    }
}

/// `prune`'s parameters.
pub fn prune_specs() -> Vec<ParamSpec> {
    vec![
        ParamSpec::int(
            "n_estimators",
            None,
            1,
            "tree ensembles: keep this many trees (chosen by `selection`)",
        ),
        ParamSpec::custom(
            "fraction",
            "float in (0, 1] | null",
            Value::Null,
            "tree ensembles: keep this fraction of the trees (instead of n_estimators)",
            |v| match v {
                Value::Null => Ok(()),
                v if v.as_f64().is_some_and(|f| f > 0.0 && f <= 1.0) => Ok(()),
                _ => Err(format!("must be in (0, 1], got {v}")),
            },
        ),
        ParamSpec::choice(
            "selection",
            "greedy",
            &["greedy", "first"],
            "which trees are kept: greedy forward selection on the --eval rows, or the first ones",
        ),
        ParamSpec::float(
            "ccp_alpha",
            0.0,
            0.0,
            f64::MAX,
            "tree ensembles: minimal cost-complexity pruning of each tree, impurities measured \
             on --data (else --eval) rows",
        ),
        ParamSpec::int(
            "max_depth",
            None,
            0,
            "tree ensembles: cut every tree at this depth (the root is depth 0)",
        ),
        ParamSpec::custom(
            "sparsity",
            "float in [0, 1)",
            Value::from(0.0),
            "networks: fraction of each layer's weights set to zero (smallest magnitudes first); \
             the model is stored sparse",
            |v| match v.as_f64() {
                Some(f) if (0.0..1.0).contains(&f) => Ok(()),
                _ => Err(format!("must be in [0, 1), got {v}")),
            },
        ),
        ParamSpec::custom(
            "keep_units",
            "float in (0, 1]",
            Value::from(1.0),
            "networks: fraction of each hidden layer's units kept (least important removed); \
             the layers get smaller",
            |v| match v.as_f64() {
                Some(f) if f > 0.0 && f <= 1.0 => Ok(()),
                _ => Err(format!("must be in (0, 1], got {v}")),
            },
        ),
        ParamSpec::int(
            "fine_tune_epochs",
            Some(10),
            0,
            "networks: epochs of training on the --data rows after pruning (none without --data)",
        ),
        ParamSpec::positive(
            "learning_rate_init",
            1e-3,
            "networks: Adam step size while fine-tuning",
        ),
        ParamSpec::int(
            "random_state",
            Some(0),
            0,
            "networks: seed of fine-tuning's row order",
        ),
    ]
}

/// The parameters that apply to tree ensembles only.
pub const TREE_ONLY: &[&str] = &[
    "n_estimators",
    "fraction",
    "selection",
    "ccp_alpha",
    "max_depth",
];
/// The parameters that apply to networks only.
pub const NETWORK_ONLY: &[&str] = &[
    "sparsity",
    "keep_units",
    "fine_tune_epochs",
    "learning_rate_init",
    "random_state",
];

/// Refuses parameters given for the other family: `family` is what the
/// model is, `foreign` the keys that do not apply to it.
///
/// # Errors
/// The first such key, saying what it is for.
pub fn refuse_foreign(
    p: &Params,
    compressor: &str,
    family: &str,
    foreign: &[&str],
    belongs: &str,
) -> Result<(), PluginError> {
    match foreign.iter().find(|k| p.was_given(k)) {
        Some(k) => Err(PluginError::input(format!(
            "{compressor}: `{k}` applies to {belongs}, and this model is {family}"
        ))),
        None => Ok(()),
    }
}
