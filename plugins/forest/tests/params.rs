//! The parameter schema and its resolution against a task and a data size.

use tessera_core::{PluginError, Task, params::parse};
use tessera_forest::params::{Criterion, ForestParams, LEARNER, specs};

fn params(text: &str) -> Result<ForestParams, PluginError> {
    ForestParams::from_params(&parse(LEARNER, &specs(), text)?)
}

#[test]
fn defaults_resolve_like_scikit_learn() {
    let p = params("").unwrap();
    let c = p.resolve(Task::classification(3), 100, 64).unwrap();
    assert_eq!(
        (c.criterion, c.max_features, c.min_samples_split),
        (Criterion::Gini, 8, 2)
    );
    let r = p.resolve(Task::regression(), 100, 10).unwrap();
    assert_eq!(
        (r.criterion, r.max_features, r.max_depth),
        (Criterion::SquaredError, 10, usize::MAX)
    );
}

#[test]
fn fractions_round_up() {
    let p =
        params(r#"{"min_samples_split": 0.05, "min_samples_leaf": 0.011, "max_features": 0.5}"#)
            .unwrap();
    let c = p.resolve(Task::classification(2), 100, 9).unwrap();
    assert_eq!(
        (c.min_samples_split, c.min_samples_leaf, c.max_features),
        (5, 2, 4)
    );
    let p = params(r#"{"max_features": "log2", "min_samples_leaf": 3}"#).unwrap();
    let c = p.resolve(Task::classification(2), 100, 64).unwrap();
    assert_eq!((c.max_features, c.min_samples_split), (6, 6));
}

#[test]
fn bad_values_are_named() {
    let e = params(r#"{"max_features": "half"}"#).unwrap_err();
    assert!(
        e.message.contains("`max_features`") && e.message.contains("\"half\""),
        "{e}"
    );
    for bad in [
        r#"{"max_features": 0}"#,
        r#"{"max_features": 1.5}"#,
        r#"{"max_features": -1}"#,
    ] {
        assert!(params(bad).is_err(), "{bad}");
    }
    assert!(params(r#"{"min_samples_split": 1}"#).is_err());
    assert!(params(r#"{"min_samples_split": 1.0}"#).is_ok());
    assert!(params(r#"{"min_samples_leaf": 1.0}"#).is_err());
    assert!(params(r#"{"criterion": "mse"}"#).is_err());
    let e = params(r#"{"n_trees": 5}"#).unwrap_err();
    assert!(e.message.contains("unknown parameter `n_trees`"), "{e}");
}

#[test]
fn criterion_must_fit_the_task() {
    let p = params(r#"{"criterion": "gini"}"#).unwrap();
    let e = p.resolve(Task::regression(), 10, 2).unwrap_err();
    assert!(
        e.message.contains("\"gini\" does not apply to regression"),
        "{e}"
    );
    let p = params(r#"{"criterion": "squared_error"}"#).unwrap();
    assert!(p.resolve(Task::classification(2), 10, 2).is_err());
    let p = params(r#"{"criterion": "log_loss"}"#).unwrap();
    assert_eq!(
        p.resolve(Task::classification(2), 10, 2).unwrap().criterion,
        Criterion::Entropy
    );
    let e = params(r#"{"max_features": 5}"#)
        .unwrap()
        .resolve(Task::regression(), 10, 4)
        .unwrap_err();
    assert!(
        e.message.contains("`max_features`: 5 is more than the 4"),
        "{e}"
    );
}
