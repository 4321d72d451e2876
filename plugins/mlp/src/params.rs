//! The `mlp` parameter schema and the settings it resolves to. Names,
//! defaults and meaning follow scikit-learn's `MLPClassifier` and
//! `MLPRegressor`; `standardize` and `impute` are tessera's own (the
//! scaling scikit-learn leaves to a `StandardScaler` in front).

use serde_json::{Value, json};
use tessera_core::{PluginError, ir::Activation, params::ParamSpec, params::Params};

/// The learner's component name.
pub const LEARNER: &str = "mlp";

const LAYERS_TYPE: &str = "[int >= 1, ...] (at least one) | int >= 1";
const BATCH_TYPE: &str = r#""auto" | int >= 1"#;
const HALF_OPEN_UNIT_TYPE: &str = "float in [0, 1)";

/// The parameter schema.
pub fn specs() -> Vec<ParamSpec> {
    vec![
        ParamSpec::custom(
            "hidden_layer_sizes",
            LAYERS_TYPE,
            json!([100]),
            "widths of the hidden layers, input side first, e.g. [128, 64]",
            check_layers,
        ),
        ParamSpec::choice(
            "activation",
            "relu",
            &["relu", "tanh", "logistic", "identity"],
            "activation of the hidden layers (the output layer is softmax, logistic or \
             identity by task)",
        ),
        ParamSpec::choice(
            "solver",
            "adam",
            &["adam", "sgd", "lbfgs"],
            "weight optimiser: adam, or stochastic gradient descent with momentum \
             (lbfgs is not supported)",
        ),
        ParamSpec::float(
            "alpha",
            1e-4,
            0.0,
            f64::MAX,
            "L2 penalty on the weights (not the biases), scaled by the batch size as in \
             scikit-learn",
        ),
        ParamSpec::custom(
            "batch_size",
            BATCH_TYPE,
            json!("auto"),
            "rows per minibatch; \"auto\" is min(200, rows)",
            check_batch,
        ),
        ParamSpec::choice(
            "learning_rate",
            "constant",
            &["constant", "invscaling", "adaptive"],
            "step-size schedule for sgd: constant, learning_rate_init / t^power_t after t \
             samples, or divided by 5 whenever n_iter_no_change epochs bring no improvement",
        ),
        ParamSpec::positive("learning_rate_init", 0.001, "initial step size"),
        ParamSpec::float(
            "power_t",
            0.5,
            0.0,
            f64::MAX,
            "exponent of the invscaling schedule",
        ),
        ParamSpec::int(
            "max_iter",
            Some(200),
            1,
            "most epochs (passes over the data)",
        ),
        ParamSpec::bool("shuffle", true, "shuffle the rows before every epoch"),
        ParamSpec::float(
            "tol",
            1e-4,
            0.0,
            f64::MAX,
            "smallest improvement of the loss (or validation score) that counts",
        ),
        ParamSpec::float("momentum", 0.9, 0.0, 1.0, "sgd momentum"),
        ParamSpec::bool("nesterovs_momentum", true, "sgd with Nesterov's momentum"),
        ParamSpec::bool(
            "early_stopping",
            false,
            "stop when the validation score (accuracy or R²) stops improving, and keep the \
             best epoch's weights; scored on --valid data when given, else on a held-out \
             validation_fraction of the training rows",
        ),
        ParamSpec::open_unit(
            "validation_fraction",
            0.1,
            "fraction of the training rows held out (stratified for classification) for \
             early stopping",
        ),
        ParamSpec::custom(
            "beta_1",
            HALF_OPEN_UNIT_TYPE,
            json!(0.9),
            "adam: decay of the first-moment estimate",
            check_half_open_unit,
        ),
        ParamSpec::custom(
            "beta_2",
            HALF_OPEN_UNIT_TYPE,
            json!(0.999),
            "adam: decay of the second-moment estimate",
            check_half_open_unit,
        ),
        ParamSpec::positive(
            "epsilon",
            1e-8,
            "adam: added to the denominator for stability",
        ),
        ParamSpec::int(
            "n_iter_no_change",
            Some(10),
            1,
            "epochs without an improvement of more than tol before stopping (or, for the \
             adaptive schedule, before dividing the step size)",
        ),
        ParamSpec::bool(
            "standardize",
            true,
            "scale every feature to mean 0 and variance 1 (learned at fit time, stored in \
             the model, applied to raw inputs at prediction)",
        ),
        ParamSpec::choice(
            "impute",
            "none",
            &["none", "mean"],
            "missing values: refused (\"none\"), or replaced by the feature's training mean",
        ),
        ParamSpec::int(
            "random_state",
            None,
            0,
            "seed for the initial weights, the shuffling and the validation split; null \
             draws one",
        ),
        ParamSpec::bool(
            "quantization_aware",
            false,
            "train for int8: the forward pass sees every layer's weights and inputs rounded \
             as tessera-qnet's 8-bit quantization rounds them (weights per output channel, \
             activations on scales tracked during training), gradients pass the rounding \
             straight through to the float weights, which are what the model keeps; the \
             model then loses less accuracy when compressed to 8 bits",
        ),
        ParamSpec::custom(
            "init_network",
            crate::finetune::INIT_TYPE,
            Value::Null,
            "continue training from this network instead of a fresh initialisation: the hex \
             text of a dense network's exchange-form bytes (DenseNetwork::to_bytes), as a \
             compressor passes a pruned network; its layer sizes, activations and input \
             scaling are kept (hidden_layer_sizes and activation, if given, must match), its \
             class count must be the data's; trains exactly max_iter epochs of adam at \
             learning_rate_init with batch_size, random_state and the sample weights, and \
             applies no early stopping, tol, alpha, standardize or impute",
            crate::finetune::check_init_network,
        ),
        ParamSpec::bool(
            "keep_zeros",
            false,
            "with init_network: weights that are exactly zero in it stay zero throughout \
             training (a pruned network stays as sparse)",
        ),
    ]
}

fn expected(ty: &str, v: &Value) -> String {
    format!("expected {ty}, got {v}")
}

fn layers(v: &Value) -> Option<Vec<usize>> {
    // `as_u64` is `None` for floats (`2.0` included) and negatives.
    let width = |w: &Value| w.as_u64().filter(|&w| w >= 1).map(|w| w as usize);
    match v {
        Value::Array(a) if !a.is_empty() => a.iter().map(width).collect(),
        Value::Number(_) => width(v).map(|w| vec![w]),
        _ => None,
    }
}

fn check_layers(v: &Value) -> Result<(), String> {
    match layers(v) {
        Some(l) if l.iter().all(|&w| w <= MAX_WIDTH) => Ok(()),
        Some(_) => Err(format!("a layer wider than {MAX_WIDTH} units: {v}")),
        None if v.as_array().is_some_and(|a| a.is_empty()) => Err(format!(
            "expected at least one hidden layer ({LAYERS_TYPE}), got []; a network without \
             hidden layers is a linear model"
        )),
        None => Err(expected(LAYERS_TYPE, v)),
    }
}

/// The widest layer accepted (a guard against typos that would allocate
/// gigabytes).
pub const MAX_WIDTH: usize = 1 << 16;

fn check_batch(v: &Value) -> Result<(), String> {
    match v {
        Value::String(s) if s == "auto" => Ok(()),
        _ if v.as_u64().is_some_and(|b| b >= 1) => Ok(()),
        _ => Err(expected(BATCH_TYPE, v)),
    }
}

fn check_half_open_unit(v: &Value) -> Result<(), String> {
    match v.as_f64() {
        Some(x) if (0.0..1.0).contains(&x) => Ok(()),
        _ => Err(expected(HALF_OPEN_UNIT_TYPE, v)),
    }
}

/// The weight optimiser.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Solver {
    /// Adam with these decays and epsilon.
    Adam {
        /// First-moment decay.
        beta_1: f64,
        /// Second-moment decay.
        beta_2: f64,
        /// Denominator guard.
        epsilon: f64,
    },
    /// Stochastic gradient descent with momentum.
    Sgd {
        /// Momentum.
        momentum: f64,
        /// Nesterov's variant.
        nesterov: bool,
    },
}

/// The step-size schedule (sgd; adam keeps its step constant).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Schedule {
    /// Constant.
    Constant,
    /// `learning_rate_init / (t + 1)^power_t` after `t` samples.
    InvScaling(f64),
    /// Divided by 5 after `n_iter_no_change` epochs without improvement.
    Adaptive,
}

/// Checked settings.
#[derive(Clone, Debug)]
pub struct Config {
    /// Hidden layer widths.
    pub hidden: Vec<usize>,
    /// Hidden activation.
    pub activation: Activation,
    /// Optimiser.
    pub solver: Solver,
    /// L2 penalty.
    pub alpha: f64,
    /// Rows per minibatch (`None`: min(200, rows)).
    pub batch_size: Option<usize>,
    /// Step-size schedule.
    pub schedule: Schedule,
    /// Initial step size.
    pub learning_rate_init: f64,
    /// Most epochs.
    pub max_iter: usize,
    /// Shuffle every epoch.
    pub shuffle: bool,
    /// Improvement threshold.
    pub tol: f64,
    /// Early stopping on a validation score.
    pub early_stopping: bool,
    /// Held-out fraction.
    pub validation_fraction: f64,
    /// Patience.
    pub n_iter_no_change: usize,
    /// Standardize inputs.
    pub standardize: bool,
    /// Fill missing inputs with the training mean.
    pub impute_mean: bool,
    /// Seed.
    pub random_state: Option<u64>,
    /// Train with 8-bit fake quantization in the forward pass.
    pub quantization_aware: bool,
    /// The network to continue training from (`init_network`).
    pub init_network: Option<tessera_core::ir::DenseNetwork>,
    /// Hold `init_network`'s zero weights at zero.
    pub keep_zeros: bool,
    /// The parameters as given, for the model summary.
    pub json: Value,
}

impl Config {
    /// Resolves checked parameters.
    ///
    /// # Errors
    /// `solver = "lbfgs"`, which is not implemented, and what
    /// [`init_network`](crate::finetune::init_network) refuses.
    pub fn from_params(p: &Params) -> Result<Self, PluginError> {
        let activation = match p.str("activation") {
            "tanh" => Activation::Tanh,
            "logistic" => Activation::Logistic,
            "identity" => Activation::Identity,
            _ => Activation::Relu,
        };
        let solver = match p.str("solver") {
            "sgd" => Solver::Sgd {
                momentum: p.f64("momentum"),
                nesterov: p.bool("nesterovs_momentum"),
            },
            "lbfgs" => {
                return Err(PluginError::params(
                    "mlp: solver \"lbfgs\" is not supported; use \"adam\" (the default) or \
                     \"sgd\"",
                ));
            }
            _ => Solver::Adam {
                beta_1: p.f64("beta_1"),
                beta_2: p.f64("beta_2"),
                epsilon: p.f64("epsilon"),
            },
        };
        let schedule = match p.str("learning_rate") {
            "invscaling" => Schedule::InvScaling(p.f64("power_t")),
            "adaptive" => Schedule::Adaptive,
            _ => Schedule::Constant,
        };
        let init_network = crate::finetune::init_network(p)?;
        let json = crate::finetune::summary_params(p, init_network.as_ref());
        Ok(Self {
            hidden: layers(p.get("hidden_layer_sizes")).unwrap_or_else(|| vec![100]),
            activation,
            solver,
            alpha: p.f64("alpha"),
            batch_size: p.get("batch_size").as_u64().map(|b| b as usize),
            schedule,
            learning_rate_init: p.f64("learning_rate_init"),
            max_iter: p.usize("max_iter"),
            shuffle: p.bool("shuffle"),
            tol: p.f64("tol"),
            early_stopping: p.bool("early_stopping"),
            validation_fraction: p.f64("validation_fraction"),
            n_iter_no_change: p.usize("n_iter_no_change"),
            standardize: p.bool("standardize"),
            impute_mean: p.str("impute") == "mean",
            random_state: p.opt_u64("random_state"),
            quantization_aware: p.bool("quantization_aware"),
            init_network,
            keep_zeros: p.bool("keep_zeros"),
            json,
        })
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
        assert_eq!(c.hidden, vec![100]);
        assert_eq!(c.activation, Activation::Relu);
        assert_eq!(
            c.solver,
            Solver::Adam {
                beta_1: 0.9,
                beta_2: 0.999,
                epsilon: 1e-8
            }
        );
        assert_eq!(c.alpha, 1e-4);
        assert_eq!(c.batch_size, None);
        assert_eq!(c.learning_rate_init, 1e-3);
        assert_eq!(c.max_iter, 200);
        assert_eq!(c.tol, 1e-4);
        assert_eq!(c.n_iter_no_change, 10);
        assert!(c.shuffle && c.standardize && !c.early_stopping && !c.impute_mean);
        assert!(!c.quantization_aware);
        assert!(
            parse(r#"{"quantization_aware": true}"#)
                .unwrap()
                .quantization_aware
        );
        let spec = specs();
        let qat = spec
            .iter()
            .map(ParamSpec::info)
            .find(|i| i.name.as_str() == "quantization_aware")
            .expect("the parameter is declared");
        assert!(qat.doc.contains("int8"), "{}", qat.doc);
        let c = parse(r#"{"hidden_layer_sizes": [128, 64], "solver": "sgd", "batch_size": 32}"#)
            .unwrap();
        assert_eq!(c.hidden, vec![128, 64]);
        assert_eq!(c.batch_size, Some(32));
        assert_eq!(
            c.solver,
            Solver::Sgd {
                momentum: 0.9,
                nesterov: true
            }
        );
        assert_eq!(
            parse(r#"{"hidden_layer_sizes": 7}"#).unwrap().hidden,
            vec![7]
        );
    }

    #[test]
    fn bad_values_name_the_key() {
        for (text, needle) in [
            (r#"{"hidden_layer_sizes": []}"#, "at least one hidden layer"),
            (r#"{"hidden_layer_sizes": [0]}"#, "hidden_layer_sizes"),
            (r#"{"hidden_layer_sizes": [1.5]}"#, "hidden_layer_sizes"),
            (r#"{"hidden_layer_sizes": [10000000]}"#, "wider than"),
            (r#"{"alpha": -1}"#, "alpha"),
            (r#"{"activation": "softplus"}"#, "activation"),
            (r#"{"solver": "lbfgs"}"#, "not supported"),
            (r#"{"batch_size": 0}"#, "batch_size"),
            (r#"{"learning_rate_init": 0}"#, "learning_rate_init"),
            (r#"{"validation_fraction": 1}"#, "validation_fraction"),
            (r#"{"beta_2": 1}"#, "beta_2"),
            (r#"{"impute": "median"}"#, "impute"),
            (r#"{"hidden_layer_size": [3]}"#, "hidden_layer_sizes"),
        ] {
            let e = parse(text).unwrap_err();
            assert!(e.message.contains(needle), "{text}: {}", e.message);
        }
    }
}
