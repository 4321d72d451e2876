//! Parameter schemas and their validation.
//!
//! Parameters cross the boundary as JSON text. A plugin declares each
//! parameter once as a [`ParamSpec`]; the same list feeds its manifest
//! (`tessera plugins`) and [`parse`], which rejects unknown keys (suggesting
//! the closest name and listing the accepted ones) and bad values (naming the
//! key, what it accepts and what it got), and fills in defaults.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::{error::PluginError, manifest::ParamInfo};

/// How a parameter's value is checked.
#[derive(Clone, Copy, Debug)]
pub enum Check {
    /// An integer `>= min`; `null` too when `nullable`.
    Int {
        /// Smallest accepted value.
        min: i64,
        /// Whether `null` (no limit) is accepted.
        nullable: bool,
    },
    /// A number in `[min, max]`; `null` too when `nullable`.
    Float {
        /// Smallest accepted value.
        min: f64,
        /// Largest accepted value.
        max: f64,
        /// Whether `null` is accepted.
        nullable: bool,
    },
    /// `true` or `false`.
    Bool,
    /// One of the listed strings.
    Choice(&'static [&'static str]),
    /// A table (JSON object) checked later by whoever consumes it.
    Table,
    /// A check of the plugin's own, returning what went wrong.
    Custom(fn(&Value) -> Result<(), String>),
}

/// One declared parameter.
#[derive(Clone, Debug)]
pub struct ParamSpec {
    /// The key.
    pub name: &'static str,
    /// What values are accepted, for messages and the manifest.
    pub ty: String,
    /// The value used when the key is absent.
    pub default: Value,
    /// One line on what it does.
    pub doc: &'static str,
    /// How values are checked.
    pub check: Check,
}

impl ParamSpec {
    /// An integer parameter `>= min`; a `None` default makes `null` legal.
    pub fn int(name: &'static str, default: Option<i64>, min: i64, doc: &'static str) -> Self {
        let nullable = default.is_none();
        Self {
            name,
            ty: if nullable {
                format!("int >= {min} | null")
            } else {
                format!("int >= {min}")
            },
            default: default.map_or(Value::Null, Value::from),
            doc,
            check: Check::Int { min, nullable },
        }
    }

    /// A number in `[min, max]`.
    pub fn float(name: &'static str, default: f64, min: f64, max: f64, doc: &'static str) -> Self {
        Self {
            name,
            ty: if max >= f64::MAX {
                format!("float >= {min}")
            } else {
                format!("float in [{min}, {max}]")
            },
            default: Value::from(default),
            doc,
            check: Check::Float {
                min,
                max,
                nullable: false,
            },
        }
    }

    /// A boolean.
    pub fn bool(name: &'static str, default: bool, doc: &'static str) -> Self {
        Self {
            name,
            ty: "bool".into(),
            default: Value::Bool(default),
            doc,
            check: Check::Bool,
        }
    }

    /// One of `choices`.
    pub fn choice(
        name: &'static str,
        default: &'static str,
        choices: &'static [&'static str],
        doc: &'static str,
    ) -> Self {
        Self {
            name,
            ty: choices
                .iter()
                .map(|c| format!("\"{c}\""))
                .collect::<Vec<_>>()
                .join(" | "),
            default: Value::from(default),
            doc,
            check: Check::Choice(choices),
        }
    }

    /// A parameter with a check of the plugin's own; `ty` describes what it
    /// accepts.
    pub fn custom(
        name: &'static str,
        ty: &str,
        default: Value,
        doc: &'static str,
        check: fn(&Value) -> Result<(), String>,
    ) -> Self {
        Self {
            name,
            ty: ty.into(),
            default,
            doc,
            check: Check::Custom(check),
        }
    }

    /// A finite number `> 0` (a step size, a scale).
    pub fn positive(name: &'static str, default: f64, doc: &'static str) -> Self {
        Self::custom(name, POSITIVE, Value::from(default), doc, check_positive)
    }

    /// A number strictly between 0 and 1 (a fraction held out, a
    /// quantile).
    pub fn open_unit(name: &'static str, default: f64, doc: &'static str) -> Self {
        Self::custom(name, OPEN_UNIT, Value::from(default), doc, check_open_unit)
    }

    /// The manifest entry for this parameter.
    pub fn info(&self) -> ParamInfo {
        ParamInfo {
            name: self.name.into(),
            ty: self.ty.clone().into(),
            default: self.default.to_string().into(),
            doc: self.doc.into(),
        }
    }

    fn validate(&self, v: &Value) -> Result<(), String> {
        let ok = match self.check {
            Check::Int { min, nullable } => match v {
                Value::Null => nullable,
                _ => v.as_i64().is_some_and(|i| i >= min),
            },
            Check::Float { min, max, nullable } => match v {
                Value::Null => nullable,
                _ => v.as_f64().is_some_and(|f| f >= min && f <= max),
            },
            Check::Bool => v.is_boolean(),
            Check::Choice(choices) => v.as_str().is_some_and(|s| choices.contains(&s)),
            Check::Table => v.is_object(),
            Check::Custom(f) => return f(v),
        };
        if ok {
            Ok(())
        } else {
            Err(format!("expected {}, got {v}", self.ty))
        }
    }
}

/// Checked parameters with defaults filled in.
#[derive(Clone, Debug, PartialEq)]
pub struct Params {
    values: BTreeMap<String, Value>,
    given: Vec<String>,
}

impl Params {
    /// Whether the user gave `name` (rather than its default applying).
    pub fn was_given(&self, name: &str) -> bool {
        self.given.iter().any(|g| g == name)
    }

    /// The value of `name` (its default when not given).
    ///
    /// # Panics
    /// When `name` was not declared: a bug in the plugin.
    pub fn get(&self, name: &str) -> &Value {
        self.values
            .get(name)
            .unwrap_or_else(|| panic!("parameter `{name}` was not declared"))
    }

    /// An integer parameter, `None` when `null`.
    pub fn opt_usize(&self, name: &str) -> Option<usize> {
        self.get(name).as_u64().map(|v| v as usize)
    }

    /// An integer parameter (`0` when `null`).
    pub fn usize(&self, name: &str) -> usize {
        self.opt_usize(name).unwrap_or(0)
    }

    /// An optional `u64` (seeds).
    pub fn opt_u64(&self, name: &str) -> Option<u64> {
        self.get(name).as_u64()
    }

    /// A number parameter (`NaN` when `null`).
    pub fn f64(&self, name: &str) -> f64 {
        self.get(name).as_f64().unwrap_or(f64::NAN)
    }

    /// A boolean parameter.
    pub fn bool(&self, name: &str) -> bool {
        self.get(name).as_bool().unwrap_or(false)
    }

    /// A string parameter (`""` when not a string).
    pub fn str(&self, name: &str) -> &str {
        self.get(name).as_str().unwrap_or("")
    }

    /// All values as a JSON object, for model summaries.
    pub fn to_json(&self) -> Value {
        Value::Object(self.values.clone().into_iter().collect())
    }
}

/// Parses `text` (a JSON object; empty text means no parameters) against
/// `specs` for `component`.
///
/// # Errors
/// Text that is not a JSON object, an unknown key, or a value its spec
/// rejects; the message names the key and lists what is accepted.
pub fn parse(component: &str, specs: &[ParamSpec], text: &str) -> Result<Params, PluginError> {
    let given: serde_json::Map<String, Value> = if text.trim().is_empty() {
        serde_json::Map::new()
    } else {
        match serde_json::from_str(text) {
            Ok(Value::Object(m)) => m,
            Ok(other) => {
                return Err(PluginError::params(format!(
                    "parameters of `{component}` must be a table, got {other}"
                )));
            }
            Err(e) => {
                return Err(PluginError::params(format!(
                    "parameters of `{component}` are not valid JSON: {e}"
                )));
            }
        }
    };
    let mut values = BTreeMap::new();
    let given_keys: Vec<String> = given.keys().cloned().collect();
    for (key, value) in given {
        let Some(spec) = specs.iter().find(|s| s.name == key) else {
            return Err(PluginError::params(unknown_key_message(
                component, specs, &key,
            )));
        };
        spec.validate(&value).map_err(|why| {
            PluginError::params(format!("`{component}` parameter `{key}`: {why}"))
        })?;
        values.insert(key, value);
    }
    for spec in specs {
        values
            .entry(spec.name.to_string())
            .or_insert_with(|| spec.default.clone());
    }
    Ok(Params {
        values,
        given: given_keys,
    })
}

fn unknown_key_message(component: &str, specs: &[ParamSpec], key: &str) -> String {
    let names: Vec<&str> = specs.iter().map(|s| s.name).collect();
    let mut msg = format!("unknown parameter `{key}` for `{component}`");
    if let Some(best) = closest(key, &names) {
        msg.push_str(&format!("; did you mean `{best}`?"));
    }
    if names.is_empty() {
        msg.push_str(" (it takes no parameters)");
    } else {
        msg.push_str(&format!(" (accepted: {})", names.join(", ")));
    }
    msg
}

/// The type of [`ParamSpec::positive`] parameters.
pub const POSITIVE: &str = "float > 0";
/// The type of [`ParamSpec::open_unit`] parameters.
pub const OPEN_UNIT: &str = "float in (0, 1)";

/// Checks a [`ParamSpec::positive`] value.
///
/// # Errors
/// Anything but a finite number above 0.
pub fn check_positive(v: &Value) -> Result<(), String> {
    match v.as_f64() {
        Some(x) if x > 0.0 && x.is_finite() => Ok(()),
        _ => Err(format!("expected {POSITIVE}, got {v}")),
    }
}

/// Checks a [`ParamSpec::open_unit`] value.
///
/// # Errors
/// Anything but a number strictly between 0 and 1.
pub fn check_open_unit(v: &Value) -> Result<(), String> {
    match v.as_f64() {
        Some(x) if x > 0.0 && x < 1.0 => Ok(()),
        _ => Err(format!("expected {OPEN_UNIT}, got {v}")),
    }
}

/// The candidate closest to `word` by edit distance, when it is close enough
/// to be a plausible typo.
pub fn closest<'a>(word: &str, candidates: &[&'a str]) -> Option<&'a str> {
    candidates
        .iter()
        .map(|c| (edit_distance(word, c), *c))
        .filter(|(d, c)| *d <= 2.max(c.len() / 3))
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

/// Levenshtein distance between two strings, by characters.
pub fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != *cb);
            cur[j + 1] = sub.min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn specs() -> Vec<ParamSpec> {
        vec![
            ParamSpec::int("n_estimators", Some(100), 1, "trees"),
            ParamSpec::int("max_depth", None, 1, "depth"),
            ParamSpec::float("max_samples", 1.0, 0.0, 1.0, "rows"),
            ParamSpec::bool("bootstrap", true, "resample"),
            ParamSpec::choice("criterion", "gini", &["gini", "entropy"], "impurity"),
        ]
    }

    #[test]
    fn defaults_fill_in() {
        let p = parse("rf", &specs(), "").unwrap();
        assert_eq!(p.usize("n_estimators"), 100);
        assert_eq!(p.opt_usize("max_depth"), None);
        assert!(p.bool("bootstrap"));
        assert_eq!(p.str("criterion"), "gini");
    }

    #[test]
    fn given_values_win() {
        let p = parse("rf", &specs(), r#"{"n_estimators": 7, "max_depth": 3}"#).unwrap();
        assert_eq!(p.usize("n_estimators"), 7);
        assert_eq!(p.opt_usize("max_depth"), Some(3));
    }

    #[test]
    fn unknown_key_suggests_and_lists() {
        let e = parse("rf", &specs(), r#"{"n_estimator": 7}"#).unwrap_err();
        assert!(
            e.message
                .contains("unknown parameter `n_estimator` for `rf`"),
            "{e}"
        );
        assert!(e.message.contains("did you mean `n_estimators`"), "{e}");
        assert!(
            e.message.contains("accepted: n_estimators, max_depth"),
            "{e}"
        );
    }

    #[test]
    fn bad_values_name_key_and_type() {
        let e = parse("rf", &specs(), r#"{"n_estimators": 0}"#).unwrap_err();
        assert_eq!(
            e.message,
            "`rf` parameter `n_estimators`: expected int >= 1, got 0"
        );
        let e = parse("rf", &specs(), r#"{"criterion": "gimi"}"#).unwrap_err();
        assert!(
            e.message
                .contains(r#"expected "gini" | "entropy", got "gimi""#),
            "{e}"
        );
        let e = parse("rf", &specs(), r#"{"n_estimators": 2.5}"#).unwrap_err();
        assert!(e.message.contains("got 2.5"), "{e}");
        assert!(parse("rf", &specs(), "[1]").is_err());
        assert!(parse("rf", &specs(), "{").is_err());
    }

    #[test]
    fn edit_distance_basics() {
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(
            closest("featurs", &["features", "labels"]),
            Some("features")
        );
        assert_eq!(closest("zzz", &["features"]), None);
    }
}
