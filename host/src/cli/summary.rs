//! A model summary (the plugin's JSON `describe`) as readable text for
//! `tessera inspect`: one line per key, nested tables indented, long
//! number lists shortened to their ends, and large tables of numbers
//! (feature importances) cut to their largest entries. `--json` prints it
//! all.

use std::fmt::Write;

use serde_json::Value;

/// Numbers shown at each end of a long list.
const LIST_ENDS: usize = 4;
/// Entries shown of a large table of numbers.
const TOP_ENTRIES: usize = 10;

/// The summary under a `summary` heading, ending with a newline.
pub fn render(summary: &Value) -> String {
    let mut out = String::new();
    match summary {
        Value::Object(m) if !m.is_empty() => {
            out.push_str("summary\n");
            table(&mut out, m, 1);
        }
        other => {
            let _ = writeln!(out, "summary     {other}");
        }
    }
    out
}

fn number(v: &Value) -> String {
    match v.as_f64() {
        Some(x) if v.is_f64() => {
            if x != 0.0 && (x.abs() < 1e-3 || x.abs() >= 1e6) {
                format!("{x:.4e}")
            } else {
                format!("{:.6}", x)
                    .trim_end_matches('0')
                    .trim_end_matches('.')
                    .to_string()
            }
        }
        _ => v.to_string(),
    }
}

fn inline(v: &Value) -> String {
    match v {
        Value::Array(a) if a.iter().all(Value::is_number) && a.len() > 2 * LIST_ENDS => {
            let head: Vec<String> = a[..LIST_ENDS].iter().map(number).collect();
            let tail: Vec<String> = a[a.len() - LIST_ENDS..].iter().map(number).collect();
            format!(
                "[{}, …, {}] ({} values)",
                head.join(", "),
                tail.join(", "),
                a.len()
            )
        }
        Value::Array(a) if a.iter().all(Value::is_number) => {
            format!("[{}]", a.iter().map(number).collect::<Vec<_>>().join(", "))
        }
        Value::Number(_) => number(v),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn table(out: &mut String, m: &serde_json::Map<String, Value>, depth: usize) {
    let pad = "  ".repeat(depth);
    let width = m.keys().map(String::len).max().unwrap_or(0);
    for (k, v) in m {
        match v {
            Value::Object(inner)
                if !inner.is_empty()
                    && inner.values().all(Value::is_number)
                    && inner.len() > TOP_ENTRIES =>
            {
                let mut entries: Vec<(&String, f64)> = inner
                    .iter()
                    .map(|(n, x)| (n, x.as_f64().unwrap_or(0.0)))
                    .collect();
                entries.sort_by(|a, b| b.1.total_cmp(&a.1));
                let _ = writeln!(out, "{pad}{k}: (largest {TOP_ENTRIES} of {})", inner.len());
                let w = entries
                    .iter()
                    .take(TOP_ENTRIES)
                    .map(|e| e.0.len())
                    .max()
                    .unwrap_or(0);
                for (n, _) in entries.iter().take(TOP_ENTRIES) {
                    let _ = writeln!(out, "{pad}  {n:<w$}  {}", number(&inner[n.as_str()]));
                }
            }
            Value::Object(inner) if !inner.is_empty() => {
                let _ = writeln!(out, "{pad}{k}:");
                table(out, inner, depth + 1);
            }
            _ => {
                let _ = writeln!(out, "{pad}{k:<width$}  {}", inline(v));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn long_lists_and_tables_are_shortened() {
        let curve: Vec<f64> = (0..100).map(|i| 1.0 / f64::from(i + 1)).collect();
        let imp: serde_json::Map<String, Value> = (0..20)
            .map(|i| (format!("f{i}"), json!(f64::from(i))))
            .collect();
        let text = render(&json!({
            "n_iter": 100,
            "learning_curve": {"train_loss": curve, "valid_loss": null},
            "feature_importances": {"gain": imp},
            "loss": "log_loss",
        }));
        assert!(text.starts_with("summary\n"), "{text}");
        assert!(
            text.contains("train_loss  [1, 0.5, 0.333333, 0.25, …, "),
            "{text}"
        );
        assert!(text.contains("(100 values)"), "{text}");
        assert!(text.contains("gain: (largest 10 of 20)"), "{text}");
        assert!(text.contains("f19  19"), "{text}");
        assert!(!text.contains("f3 "), "{text}");
        // Keys of one table line up.
        assert!(
            text.contains("\n  loss                 log_loss\n"),
            "{text}"
        );
        assert!(text.contains("\n  n_iter               100\n"), "{text}");
        assert_eq!(render(&json!(null)), "summary     null\n");
    }
}
