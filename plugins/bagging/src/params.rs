//! The learner's parameters: the schema the host checks them against (names,
//! defaults and meaning follow scikit-learn's `BaggingClassifier` and
//! `BaggingRegressor`), and their conversion into [`BaggingParams`].

use serde_json::{Value, json};
use std::ops::Range;
pub use tessera_core::plugin::members::Estimator;

use tessera_core::{
    PluginError,
    params::{ParamSpec, Params},
    plugin::members::{estimator_params_spec, estimator_spec},
    shard::Shard,
};

/// The learner's component name.
pub const LEARNER: &str = "bagging";

/// The base learner used when none is named.
pub const DEFAULT_ESTIMATOR: &str = "decision_tree";

const AMOUNT_TYPE: &str = "int >= 1 | float in (0, 1]";

/// The parameter schema of `bagging`.
pub fn specs() -> Vec<ParamSpec> {
    vec![
        estimator_spec(
            Value::from(DEFAULT_ESTIMATOR),
            "the base learner (any learner of a loaded plugin), by name; or a table whose `name` \
             is the learner (default decision_tree) and whose other keys are its parameters",
        ),
        estimator_params_spec(),
        ParamSpec::int(
            "n_estimators",
            Some(10),
            1,
            "number of members in the ensemble",
        ),
        ParamSpec::custom(
            "max_samples",
            AMOUNT_TYPE,
            json!(1.0),
            "rows drawn for each member: a count, or a fraction of the rows (rounded down, at \
             least 1)",
            check_amount,
        ),
        ParamSpec::custom(
            "max_features",
            AMOUNT_TYPE,
            json!(1.0),
            "feature columns drawn for each member: a count, or a fraction of the columns \
             (rounded down, at least 1)",
            check_amount,
        ),
        ParamSpec::bool(
            "bootstrap",
            true,
            "draw each member's rows with replacement",
        ),
        ParamSpec::bool(
            "bootstrap_features",
            false,
            "draw each member's feature columns with replacement",
        ),
        ParamSpec::bool(
            "oob_score",
            false,
            "score the model on the rows each member did not draw (accuracy or R², in the model \
             summary); needs bootstrap",
        ),
        ParamSpec::int(
            "random_state",
            None,
            0,
            "seed making the draws (and the members' own random_state) reproducible; null draws \
             a fresh seed, recorded in the model",
        ),
        tessera_core::shard::spec(
            "train only shard I of N of the ensemble: the member indices \
             0..n_estimators are cut into N consecutive ranges of near-equal size and shard I \
             trains the I-th, each member exactly as the whole ensemble trains it (its row and \
             column draws and its learner's seed depend only on random_state and its index); \
             needs random_state, excludes oob_score; set by `tessera train --shard I/N`, joined \
             by `tessera merge`",
        ),
    ]
}

fn check_amount(v: &Value) -> Result<(), String> {
    match Amount::from_json(v) {
        Some(_) => Ok(()),
        None => Err(format!("expected {AMOUNT_TYPE}, got {v}")),
    }
}

/// How many rows or columns each member draws.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Amount {
    /// Exactly that many.
    Count(usize),
    /// `max(1, floor(fraction * total))`.
    Fraction(f64),
}

impl Amount {
    /// Reads an amount: a JSON integer is a count (at least 1), any other
    /// number a fraction in `(0, 1]`; `None` for anything else.
    pub fn from_json(v: &Value) -> Option<Self> {
        let Value::Number(n) = v else { return None };
        if let Some(c) = n.as_u64() {
            return (c >= 1)
                .then(|| usize::try_from(c).ok().map(Self::Count))
                .flatten();
        }
        if n.is_i64() {
            return None;
        }
        let f = n.as_f64()?;
        (f > 0.0 && f <= 1.0).then_some(Self::Fraction(f))
    }

    /// The amount as given.
    pub fn to_json(self) -> Value {
        match self {
            Self::Count(c) => Value::from(c),
            Self::Fraction(f) => Value::from(f),
        }
    }

    /// How many of `total` things (named `what`) parameter `key` asks for.
    ///
    /// # Errors
    /// A count above `total`.
    pub fn resolve(self, total: usize, key: &str, what: &str) -> Result<usize, PluginError> {
        match self {
            Self::Count(c) if c > total => Err(PluginError::params(format!(
                "`{LEARNER}` parameter `{key}`: {c} is more than the {total} {what} of the data"
            ))),
            Self::Count(c) => Ok(c),
            Self::Fraction(f) => Ok(((f * total as f64).floor() as usize).clamp(1, total.max(1))),
        }
    }
}

/// The learner's parameters, checked.
#[derive(Clone, Debug, PartialEq)]
pub struct BaggingParams {
    /// The base learner.
    pub estimator: Estimator,
    /// Number of members.
    pub n_estimators: usize,
    /// Rows per member.
    pub max_samples: Amount,
    /// Feature columns per member.
    pub max_features: Amount,
    /// Rows drawn with replacement.
    pub bootstrap: bool,
    /// Columns drawn with replacement.
    pub bootstrap_features: bool,
    /// Compute the out-of-bag score.
    pub oob_score: bool,
    /// The seed; `None` draws one at fit time.
    pub random_state: Option<u64>,
    /// The shard to train; `None` for every member.
    pub shard: Option<Shard>,
}

fn bad(key: &str, v: &Value) -> PluginError {
    PluginError::params(format!(
        "`{LEARNER}` parameter `{key}`: unexpected value {v}"
    ))
}

impl BaggingParams {
    /// Reads parameters that [`tessera_core::params::parse`] has checked
    /// against [`specs`], and checks how they combine.
    ///
    /// # Errors
    /// `oob_score` without `bootstrap`, the base learner's parameters given
    /// both inside `estimator` and as `estimator_params`, or a value the
    /// schema should have refused.
    pub fn from_params(p: &Params) -> Result<Self, PluginError> {
        let amount = |key: &str| Amount::from_json(p.get(key)).ok_or_else(|| bad(key, p.get(key)));
        let n_estimators = p
            .opt_usize("n_estimators")
            .filter(|&n| n >= 1 && u32::try_from(n).is_ok())
            .ok_or_else(|| bad("n_estimators", p.get("n_estimators")))?;
        let bootstrap = p.bool("bootstrap");
        let oob_score = p.bool("oob_score");
        if oob_score && !bootstrap {
            return Err(PluginError::params(format!(
                "`{LEARNER}` parameter `oob_score`: out-of-bag scores need `bootstrap = true` \
                 (without it no row is left out of bag)"
            )));
        }
        let shard = Shard::from_json(p.get("shard"))
            .map_err(|why| PluginError::params(format!("`{LEARNER}` parameter `shard`: {why}")))?;
        if let Some(s) = shard {
            s.range(n_estimators).map_err(|why| {
                PluginError::params(format!("`{LEARNER}` parameter `shard`: {why}"))
            })?;
            if oob_score {
                return Err(PluginError::params(format!(
                    "`{LEARNER}` parameter `oob_score`: cannot be computed in shards (a row is out \
                     of bag only with respect to every member); train without it"
                )));
            }
            if p.opt_u64("random_state").is_none() {
                return Err(PluginError::params(format!(
                    "`{LEARNER}` parameter `shard`: needs a fixed `random_state`, so that every \
                     shard draws as the whole ensemble would"
                )));
            }
        }
        Ok(Self {
            estimator: Estimator::from_values(
                LEARNER,
                DEFAULT_ESTIMATOR,
                p.get("estimator"),
                p.get("estimator_params"),
            )?,
            n_estimators,
            max_samples: amount("max_samples")?,
            max_features: amount("max_features")?,
            bootstrap,
            bootstrap_features: p.bool("bootstrap_features"),
            oob_score,
            random_state: p.opt_u64("random_state"),
            shard,
        })
    }

    /// The indices of the members this fit trains: all of them, or the
    /// shard's range.
    pub fn members(&self) -> Range<usize> {
        match self.shard {
            // `from_params` has checked that the range exists.
            Some(s) => s.range(self.n_estimators).unwrap_or(0..0),
            None => 0..self.n_estimators,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_read_counts_and_fractions() {
        assert_eq!(Amount::from_json(&json!(3)), Some(Amount::Count(3)));
        assert_eq!(Amount::from_json(&json!(1)), Some(Amount::Count(1)));
        assert_eq!(Amount::from_json(&json!(1.0)), Some(Amount::Fraction(1.0)));
        assert_eq!(Amount::from_json(&json!(0.5)), Some(Amount::Fraction(0.5)));
        for bad in [
            json!(0),
            json!(-1),
            json!(0.0),
            json!(1.5),
            json!(-0.5),
            json!("half"),
            Value::Null,
        ] {
            assert_eq!(Amount::from_json(&bad), None, "{bad}");
        }
    }

    #[test]
    fn amounts_resolve_against_the_data() {
        assert_eq!(
            Amount::Fraction(1.0).resolve(150, "k", "rows").unwrap(),
            150
        );
        assert_eq!(Amount::Fraction(0.5).resolve(151, "k", "rows").unwrap(), 75);
        assert_eq!(Amount::Fraction(0.001).resolve(10, "k", "rows").unwrap(), 1);
        assert_eq!(Amount::Count(10).resolve(10, "k", "rows").unwrap(), 10);
        let e = Amount::Count(11)
            .resolve(10, "max_samples", "rows")
            .unwrap_err();
        assert_eq!(
            e.message,
            "`bagging` parameter `max_samples`: 11 is more than the 10 rows of the data"
        );
    }
}
