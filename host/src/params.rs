//! Component parameters as users write them (`--set KEY=VALUE`, a TOML
//! table) turned into the JSON text plugins receive.

use std::path::Path;

use serde_json::{Map, Value};

/// A parameter the user wrote that cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum ParamError {
    /// `--set` without `=`.
    #[error("--set `{0}`: expected KEY=VALUE")]
    NoEquals(String),
    /// An empty key or key segment.
    #[error("--set `{0}`: the key is empty")]
    EmptyKey(String),
    /// A dotted key runs into a value that is not a table.
    #[error("`{key}`: `{prefix}` is already set to a value, not a table")]
    NotATable {
        /// The whole key.
        key: String,
        /// The part that is a value.
        prefix: String,
    },
    /// The config file cannot be read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
    /// The config file is not valid TOML.
    #[error("{path}: {message}")]
    Toml {
        /// The file.
        path: String,
        /// The parser's message, with line and column.
        message: String,
    },
}

/// Parameters being assembled, in order: config file, then each `--set`,
/// then `--seed`.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct ParamSet {
    root: Map<String, Value>,
}

impl ParamSet {
    /// An empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Merges the top-level table of a TOML file.
    ///
    /// # Errors
    /// An unreadable file or invalid TOML (with line and column).
    pub fn merge_toml_file(&mut self, path: &Path) -> Result<(), ParamError> {
        let text = std::fs::read_to_string(path).map_err(|source| ParamError::Io {
            path: path.display().to_string(),
            source,
        })?;
        let table: toml::Table = toml::from_str(&text).map_err(|e| ParamError::Toml {
            path: path.display().to_string(),
            message: e.to_string().trim_end().replace('\n', " "),
        })?;
        for (k, v) in table {
            merge(&mut self.root, k, toml_to_json(v));
        }
        Ok(())
    }

    /// Applies one `KEY=VALUE`; VALUE is read as a TOML value, falling back
    /// to a plain string (`max_features=sqrt`). Dotted keys reach nested
    /// tables.
    ///
    /// # Errors
    /// No `=`, an empty key, or a dotted key through a non-table.
    pub fn set(&mut self, assignment: &str) -> Result<(), ParamError> {
        let (key, raw) = assignment
            .split_once('=')
            .ok_or_else(|| ParamError::NoEquals(assignment.to_string()))?;
        let key = key.trim();
        let parts: Vec<&str> = key.split('.').map(str::trim).collect();
        if parts.iter().any(|p| p.is_empty()) {
            return Err(ParamError::EmptyKey(assignment.to_string()));
        }
        let value = parse_value(raw.trim());
        let mut table = &mut self.root;
        for (i, part) in parts[..parts.len() - 1].iter().enumerate() {
            let entry = table
                .entry(part.to_string())
                .or_insert_with(|| Value::Object(Map::new()));
            table = match entry {
                Value::Object(m) => m,
                _ => {
                    return Err(ParamError::NotATable {
                        key: key.to_string(),
                        prefix: parts[..=i].join("."),
                    });
                }
            };
        }
        table.insert(parts[parts.len() - 1].to_string(), value);
        Ok(())
    }

    /// Sets a top-level key.
    pub fn insert(&mut self, key: &str, value: Value) {
        self.root.insert(key.to_string(), value);
    }

    /// The JSON object.
    pub fn to_json(&self) -> Value {
        Value::Object(self.root.clone())
    }

    /// The JSON text handed to plugins.
    pub fn to_json_text(&self) -> String {
        self.to_json().to_string()
    }
}

fn merge(table: &mut Map<String, Value>, key: String, value: Value) {
    match (table.get_mut(&key), value) {
        (Some(Value::Object(old)), Value::Object(new)) => {
            for (k, v) in new {
                merge(old, k, v);
            }
        }
        (_, v) => {
            table.insert(key, v);
        }
    }
}

fn parse_value(raw: &str) -> Value {
    match toml::from_str::<toml::Table>(&format!("v = {raw}")) {
        Ok(mut t) => toml_to_json(t.remove("v").expect("parsed key")),
        Err(_) => Value::String(raw.trim_matches('"').to_string()),
    }
}

/// A TOML value as JSON (datetimes as strings).
pub fn toml_to_json(v: toml::Value) -> Value {
    match v {
        toml::Value::String(s) => Value::String(s),
        toml::Value::Integer(i) => Value::from(i),
        toml::Value::Float(f) => serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number),
        toml::Value::Boolean(b) => Value::Bool(b),
        toml::Value::Datetime(d) => Value::String(d.to_string()),
        toml::Value::Array(a) => Value::Array(a.into_iter().map(toml_to_json).collect()),
        toml::Value::Table(t) => {
            Value::Object(t.into_iter().map(|(k, v)| (k, toml_to_json(v))).collect())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn values_read_as_toml_with_string_fallback() {
        let mut p = ParamSet::new();
        for s in [
            "n_estimators=100",
            "bootstrap=false",
            "max_features=sqrt",
            "criterion=\"gini\"",
            "hidden_layer_sizes=[128,64]",
            "max_samples=0.5",
            "estimator.max_depth=3",
        ] {
            p.set(s).unwrap();
        }
        assert_eq!(
            p.to_json(),
            json!({
                "n_estimators": 100, "bootstrap": false, "max_features": "sqrt",
                "criterion": "gini", "hidden_layer_sizes": [128, 64], "max_samples": 0.5,
                "estimator": {"max_depth": 3}
            })
        );
    }

    #[test]
    fn bad_assignments() {
        let mut p = ParamSet::new();
        assert!(matches!(
            p.set("n_estimators"),
            Err(ParamError::NoEquals(_))
        ));
        assert!(matches!(p.set("a..b=1"), Err(ParamError::EmptyKey(_))));
        p.set("a=1").unwrap();
        assert!(matches!(p.set("a.b=1"), Err(ParamError::NotATable { .. })));
    }

    #[test]
    fn config_then_set_overrides() {
        let dir = std::env::temp_dir().join(format!("tessera-params-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("c.toml");
        std::fs::write(
            &f,
            "n_estimators = 10\n[estimator]\nmax_depth = 2\nalpha = 1.5\n",
        )
        .unwrap();
        let mut p = ParamSet::new();
        p.merge_toml_file(&f).unwrap();
        p.set("estimator.max_depth=5").unwrap();
        assert_eq!(
            p.to_json(),
            json!({"n_estimators": 10, "estimator": {"max_depth": 5, "alpha": 1.5}})
        );
        std::fs::write(&f, "n_estimators = \n").unwrap();
        let e = ParamSet::new().merge_toml_file(&f).unwrap_err();
        assert!(e.to_string().contains("line 1"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
