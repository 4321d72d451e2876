//! The parameters of `linear`.
//!
//! Each parameter is declared once as a [`ParamSpec`]: the same list feeds
//! the manifest (`tessera plugins`) and tessera-core's parser, which rejects
//! unknown keys and bad values and fills in defaults before
//! [`LinearParams::from_params`] sees them.
//!
//! | key             | default | used for       | meaning                                                        |
//! |-----------------|---------|----------------|----------------------------------------------------------------|
//! | `alpha`         | `1.0`   | regression     | L2 penalty of ridge regression; `0` is ordinary least squares  |
//! | `C`             | `1.0`   | classification | inverse L2 penalty strength, as scikit-learn's `C`             |
//! | `fit_intercept` | `true`  | both           | learn an intercept; it is never penalised                      |
//! | `max_iter`      | `100`   | classification | most L-BFGS iterations                                         |
//! | `tol`           | `1e-4`  | classification | stop when every gradient entry is at most this in magnitude    |
//!
//! Regression minimises `sum_i w_i (y_i - x_i.b - b0)^2 + alpha * |b|^2`
//! (scikit-learn's `Ridge`). Classification minimises
//! `C * sum_i w_i * cross_entropy_i + |B|^2 / 2` over the coefficient matrix
//! `B` (scikit-learn's multinomial `LogisticRegression`); both penalties apply
//! to the coefficients of the features as given, so they depend on the
//! features' scale, as in scikit-learn.

use serde_json::{Value, json};
use tessera_core::params::{ParamSpec, Params};

/// The schema of `linear`'s parameters.
pub fn specs() -> Vec<ParamSpec> {
    vec![
        ParamSpec::custom(
            "alpha",
            "float >= 0",
            json!(1.0),
            "L2 penalty of ridge regression (regression targets); 0 means least squares",
            non_negative,
        ),
        ParamSpec::custom(
            "C",
            "float > 0",
            json!(1.0),
            "inverse L2 penalty strength of logistic regression (classification targets)",
            positive,
        ),
        ParamSpec::bool(
            "fit_intercept",
            true,
            "learn an intercept (never penalised)",
        ),
        ParamSpec::int(
            "max_iter",
            Some(100),
            1,
            "most L-BFGS iterations of logistic regression",
        ),
        ParamSpec::custom(
            "tol",
            "float > 0",
            json!(1e-4),
            "logistic regression stops when no gradient entry exceeds this",
            positive,
        ),
    ]
}

fn non_negative(v: &Value) -> Result<(), String> {
    match v.as_f64() {
        Some(f) if f.is_finite() && f >= 0.0 => Ok(()),
        _ => Err(format!("expected float >= 0, got {v}")),
    }
}

fn positive(v: &Value) -> Result<(), String> {
    match v.as_f64() {
        Some(f) if f.is_finite() && f > 0.0 => Ok(()),
        _ => Err(format!("expected float > 0, got {v}")),
    }
}

/// `linear`'s parameters, typed.
#[derive(Clone, Debug, PartialEq)]
pub struct LinearParams {
    /// Ridge penalty (regression).
    pub alpha: f64,
    /// Inverse penalty strength (classification).
    pub c: f64,
    /// Whether to learn an intercept.
    pub fit_intercept: bool,
    /// Most L-BFGS iterations (classification).
    pub max_iter: usize,
    /// Gradient tolerance (classification).
    pub tol: f64,
}

impl Default for LinearParams {
    fn default() -> Self {
        Self {
            alpha: 1.0,
            c: 1.0,
            fit_intercept: true,
            max_iter: 100,
            tol: 1e-4,
        }
    }
}

impl LinearParams {
    /// Reads parameters that passed [`specs`].
    pub fn from_params(p: &Params) -> Self {
        Self {
            alpha: p.f64("alpha"),
            c: p.f64("C"),
            fit_intercept: p.bool("fit_intercept"),
            max_iter: p.usize("max_iter"),
            tol: p.f64("tol"),
        }
    }

    /// The parameters as JSON, with the keys users type.
    pub fn to_json(&self) -> Value {
        json!({
            "alpha": self.alpha,
            "C": self.c,
            "fit_intercept": self.fit_intercept,
            "max_iter": self.max_iter,
            "tol": self.tol,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tessera_core::params::parse;

    #[test]
    fn defaults_match_scikit_learn() {
        let p = LinearParams::from_params(&parse("linear", &specs(), "").unwrap());
        assert_eq!(p, LinearParams::default());
    }

    #[test]
    fn values_are_checked() {
        let p = parse(
            "linear",
            &specs(),
            r#"{"alpha": 0, "C": 0.5, "max_iter": 7}"#,
        )
        .unwrap();
        let p = LinearParams::from_params(&p);
        assert_eq!((p.alpha, p.c, p.max_iter), (0.0, 0.5, 7));
        for bad in [
            r#"{"alpha": -1}"#,
            r#"{"C": 0}"#,
            r#"{"tol": "small"}"#,
            r#"{"max_iter": 0}"#,
            r#"{"c": 1}"#,
        ] {
            assert!(parse("linear", &specs(), bad).is_err(), "{bad}");
        }
    }
}
