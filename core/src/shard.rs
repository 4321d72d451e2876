//! Training in shards: the `shard` parameter, and what a learner that
//! declares it promises.
//!
//! An ensemble whose estimators are trained independently of each other
//! (a random forest, bagging) can be trained in pieces on several
//! machines and joined afterwards. The host asks for a piece through an
//! ordinary parameter, so that no trait or layout of the ABI changes:
//!
//! * `shard = [I, N]` (`1 <= I <= N`; `null`, the default, trains the whole
//!   model) asks for shard `I` of `N`. The estimator indices
//!   `0..n_estimators` are cut into `N` consecutive ranges whose sizes differ
//!   by at most one, the larger ones first ([`Shard::range`]); shard `I`
//!   trains the `I`-th range.
//!
//! A learner that declares [`PARAM`] (with [`spec`]) promises that:
//!
//! 1. it also declares `n_estimators` and `random_state`;
//! 2. every estimator's randomness depends only on `random_state` and the
//!    estimator's index in the whole model, so shard `I` trains exactly the
//!    estimators that an unsharded fit with the same parameters trains at
//!    those indices;
//! 3. its `load` accepts the payloads of all `N` shards of one model put
//!    back to back in shard order, and reads them as that one model: the
//!    model the unsharded fit gives, and whose `to_bytes` is the plain
//!    single-model payload. It refuses shards that do not belong together
//!    (other parameters, overlapping or missing ranges) as a corrupt model.
//!
//! The host checks everything it can from the model files' headers before
//! it joins payloads (`tessera merge`), so the learner's checks are a
//! second line. A learner that does not declare the parameter cannot be
//! trained in shards, and the host says so.

use std::ops::Range;

use serde_json::Value;

use crate::params::ParamSpec;

/// The parameter's name.
pub const PARAM: &str = "shard";

/// What the parameter accepts, for messages and the manifest.
pub const TYPE: &str = "[I, N] with 1 <= I <= N | null";

/// One shard of a model: shard `index` (from 1) of `count`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Shard {
    /// Which shard, from 1.
    pub index: usize,
    /// How many shards the model is cut into.
    pub count: usize,
}

impl Shard {
    /// Shard `index` of `count`.
    ///
    /// # Errors
    /// A count of 0, or an index outside `1..=count`.
    pub fn new(index: usize, count: usize) -> Result<Self, String> {
        if count == 0 {
            return Err("the shard count must be at least 1, got 0".into());
        }
        if index == 0 || index > count {
            return Err(format!(
                "the shard index must be between 1 and {count}, got {index}"
            ));
        }
        Ok(Self { index, count })
    }

    /// Reads `I/N`, as `tessera train --shard` takes it.
    ///
    /// # Errors
    /// Text that is not two whole numbers around a `/`, or numbers
    /// [`Shard::new`] refuses.
    pub fn parse(text: &str) -> Result<Self, String> {
        let (i, n) = text
            .split_once('/')
            .ok_or_else(|| format!("expected I/N (shard I of N, e.g. 2/4), got `{text}`"))?;
        let number = |s: &str| {
            s.trim()
                .parse::<usize>()
                .map_err(|_| format!("expected I/N (shard I of N, e.g. 2/4), got `{text}`"))
        };
        Self::new(number(i)?, number(n)?)
    }

    /// Reads the parameter's value: `None` for `null`.
    ///
    /// # Errors
    /// Anything but `null` or `[I, N]` with `1 <= I <= N`.
    pub fn from_json(v: &Value) -> Result<Option<Self>, String> {
        let bad = || format!("expected {TYPE}, got {v}");
        match v {
            Value::Null => Ok(None),
            Value::Array(a) if a.len() == 2 => {
                let at = |k: usize| {
                    a[k].as_u64()
                        .and_then(|n| usize::try_from(n).ok())
                        .ok_or_else(bad)
                };
                Self::new(at(0)?, at(1)?).map(Some).map_err(|_| bad())
            }
            _ => Err(bad()),
        }
    }

    /// The parameter's value, `[I, N]`.
    pub fn to_json(self) -> Value {
        Value::from(vec![self.index, self.count])
    }

    /// The estimator indices this shard trains of a model of
    /// `n_estimators`: see [`range`].
    ///
    /// # Errors
    /// More shards than estimators (some shard would train nothing).
    pub fn range(self, n_estimators: usize) -> Result<Range<usize>, String> {
        if self.count > n_estimators {
            return Err(format!(
                "{} shards are more than the {n_estimators} estimators of the model (each \
                 shard trains at least one)",
                self.count
            ));
        }
        Ok(range(n_estimators, self.index - 1, self.count))
    }
}

impl std::fmt::Display for Shard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

/// Part `part` (from 0) of `0..n` cut into `parts` consecutive ranges whose
/// sizes differ by at most one, the larger ones first: `10` in `4` parts is
/// `0..3, 3..6, 6..8, 8..10`. The parts cover `0..n` exactly, in order.
///
/// # Panics
/// `parts == 0` or `part >= parts`.
pub fn range(n: usize, part: usize, parts: usize) -> Range<usize> {
    assert!(part < parts, "part {part} of {parts}");
    let (size, extra) = (n / parts, n % parts);
    let start = |p: usize| p * size + p.min(extra);
    start(part)..start(part + 1)
}

/// The `shard` parameter, with the learner's own help text.
pub fn spec(doc: &'static str) -> ParamSpec {
    ParamSpec::custom(PARAM, TYPE, Value::Null, doc, check)
}

fn check(v: &Value) -> Result<(), String> {
    Shard::from_json(v).map(|_| ())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn ranges_cover_in_order_and_differ_by_at_most_one() {
        assert_eq!(
            (0..4).map(|p| range(10, p, 4)).collect::<Vec<_>>(),
            vec![0..3, 3..6, 6..8, 8..10]
        );
        assert_eq!(range(8, 0, 1), 0..8);
        assert_eq!(range(5, 4, 5), 4..5);
        for n in 0..40 {
            for parts in 1..12 {
                let all: Vec<Range<usize>> = (0..parts).map(|p| range(n, p, parts)).collect();
                assert_eq!(all[0].start, 0);
                assert_eq!(all[parts - 1].end, n);
                for w in all.windows(2) {
                    assert_eq!(w[0].end, w[1].start, "{n} in {parts}");
                    assert!(w[0].len() >= w[1].len(), "{n} in {parts}: larger first");
                }
                let (min, max) = (
                    all.iter().map(Range::len).min().unwrap(),
                    all.iter().map(Range::len).max().unwrap(),
                );
                assert!(max - min <= 1, "{n} in {parts}");
            }
        }
    }

    #[test]
    fn shards_parse_and_check() {
        assert_eq!(Shard::parse("2/4"), Ok(Shard { index: 2, count: 4 }));
        assert_eq!(Shard::parse(" 1 / 1 "), Ok(Shard { index: 1, count: 1 }));
        for (text, why) in [
            ("0/4", "between 1 and 4, got 0"),
            ("5/4", "between 1 and 4, got 5"),
            ("2/0", "at least 1, got 0"),
            ("x", "expected I/N"),
            ("2/", "expected I/N"),
            ("-1/4", "expected I/N"),
            ("1.5/4", "expected I/N"),
        ] {
            let e = Shard::parse(text).unwrap_err();
            assert!(e.contains(why), "{text}: {e}");
        }
        assert_eq!(Shard::parse("3/7").unwrap().to_string(), "3/7");
    }

    #[test]
    fn parameter_values() {
        assert_eq!(Shard::from_json(&Value::Null), Ok(None));
        let s = Shard::from_json(&json!([2, 4])).unwrap().unwrap();
        assert_eq!(s, Shard { index: 2, count: 4 });
        assert_eq!(s.to_json(), json!([2, 4]));
        for bad in [
            json!([0, 4]),
            json!([5, 4]),
            json!([1, 0]),
            json!([1]),
            json!([1, 2, 3]),
            json!("2/4"),
            json!([1.5, 4]),
            json!([-1, 4]),
        ] {
            let e = Shard::from_json(&bad).unwrap_err();
            assert_eq!(e, format!("expected {TYPE}, got {bad}"));
        }
        let p = crate::params::parse("rf", &[spec("shard")], r#"{"shard": [3, 2]}"#).unwrap_err();
        assert!(
            p.message
                .contains("`rf` parameter `shard`: expected [I, N]"),
            "{p}"
        );
    }

    #[test]
    fn ranges_of_shards() {
        let s = Shard::new(2, 4).unwrap();
        assert_eq!(s.range(100), Ok(25..50));
        assert_eq!(s.range(10), Ok(3..6));
        assert_eq!(Shard::new(4, 4).unwrap().range(4), Ok(3..4));
        let e = Shard::new(1, 5).unwrap().range(4).unwrap_err();
        assert!(e.contains("5 shards are more than the 4 estimators"), "{e}");
    }
}
