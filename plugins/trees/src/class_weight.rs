//! `class_weight` as scikit-learn spells it: `null`, `"balanced"`,
//! `"balanced_subsample"` (forests) or a table from class index to weight.
//! Each learner decides how the weights apply; this only reads them.

use serde_json::Value;

/// What `class_weight` accepts, for messages.
pub const CLASS_WEIGHT_TYPE: &str =
    r#""balanced" | "balanced_subsample" | {"<class index>": weight, ...} | null"#;

/// Weights per class.
#[derive(Clone, Debug, PartialEq)]
pub enum ClassWeight {
    /// Every class weighs 1.
    None,
    /// `rows / (classes * rows of the class)`, over the training data.
    Balanced,
    /// The same over each tree's bootstrap sample.
    BalancedSubsample,
    /// Given weights by class index; unlisted classes weigh 1.
    Given(Vec<(usize, f64)>),
}

/// Reads `class_weight`; `Err` says what is wrong.
pub fn class_weight(v: &Value) -> Result<ClassWeight, String> {
    match v {
        Value::Null => Ok(ClassWeight::None),
        Value::String(s) if s == "balanced" => Ok(ClassWeight::Balanced),
        Value::String(s) if s == "balanced_subsample" => Ok(ClassWeight::BalancedSubsample),
        Value::Object(m) => {
            let mut given = Vec::with_capacity(m.len());
            for (k, w) in m {
                let class = k.parse::<usize>().map_err(|_| {
                    format!(
                        "key \"{k}\" is not a class index (use \"0\", \"1\", ...: classes are \
                         numbered 0..K-1 in the sorted order of the labels)"
                    )
                })?;
                match w.as_f64() {
                    Some(w) if w >= 0.0 && w.is_finite() => given.push((class, w)),
                    _ => {
                        return Err(format!(
                            "weight of class \"{k}\" must be a number >= 0, got {w}"
                        ));
                    }
                }
            }
            Ok(ClassWeight::Given(given))
        }
        _ => Err(format!("expected {CLASS_WEIGHT_TYPE}, got {v}")),
    }
}

/// scikit-learn's balanced weights: `total / (present classes * class
/// total)` per class, from each row's class and what it counts for (1, or
/// its sample weight); classes without rows weigh 0.
pub fn balanced(
    class: impl Iterator<Item = usize>,
    count: impl Iterator<Item = f64>,
    n_classes: usize,
) -> Vec<f64> {
    let mut per_class = vec![0.0f64; n_classes];
    for (c, n) in class.zip(count) {
        per_class[c] += n;
    }
    let present = per_class.iter().filter(|&&n| n > 0.0).count() as f64;
    let total: f64 = per_class.iter().sum();
    per_class
        .iter()
        .map(|&n| if n > 0.0 { total / (present * n) } else { 0.0 })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reads_every_form_and_refuses_the_rest() {
        assert_eq!(class_weight(&Value::Null), Ok(ClassWeight::None));
        assert_eq!(class_weight(&json!("balanced")), Ok(ClassWeight::Balanced));
        assert_eq!(
            class_weight(&json!({"1": 2.5})),
            Ok(ClassWeight::Given(vec![(1, 2.5)]))
        );
        assert!(
            class_weight(&json!({"a": 1}))
                .unwrap_err()
                .contains("class index")
        );
        assert!(
            class_weight(&json!({"0": -1}))
                .unwrap_err()
                .contains(">= 0")
        );
        assert!(class_weight(&json!(3)).unwrap_err().contains("expected"));
    }

    #[test]
    fn balanced_weights_equalise_classes() {
        let w = balanced([0, 0, 0, 1].into_iter(), [1.0; 4].into_iter(), 3);
        assert_eq!(w, vec![4.0 / 6.0, 4.0 / 2.0, 0.0]);
    }
}
