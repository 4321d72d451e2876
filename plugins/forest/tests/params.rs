//! The parameter schemas and their resolution against a task and a data
//! size.

use tessera_core::{ErrorKind, PluginError, Task, params::parse};
use tessera_forest::params::{Criterion, ForestParams, LEARNER, TREE_LEARNER, specs, tree_specs};

fn params(text: &str) -> Result<ForestParams, PluginError> {
    ForestParams::from_params(&parse(LEARNER, &specs(), text)?)
}

fn tree(text: &str) -> Result<ForestParams, PluginError> {
    ForestParams::decision_tree(&parse(TREE_LEARNER, &tree_specs(), text)?)
}

#[test]
fn defaults_resolve_like_scikit_learn() {
    let p = params("").unwrap();
    let c = p.resolve(Task::classification(3), 100, 64).unwrap();
    assert_eq!(
        (c.criterion, c.max_features, c.min_samples_split),
        (Criterion::Gini, 8, 2)
    );
    assert_eq!(
        (c.n_draws, c.max_leaf_nodes, c.ccp_alpha, c.max_bins),
        (100, None, 0.0, 255)
    );
    let r = p.resolve(Task::regression(), 100, 10).unwrap();
    assert_eq!(
        (r.criterion, r.max_features, r.max_depth),
        (Criterion::SquaredError, 10, usize::MAX)
    );
    // A decision tree tries every feature and sees every row once.
    let t = tree("").unwrap();
    let c = t.resolve(Task::classification(3), 100, 64).unwrap();
    assert_eq!(
        (c.max_features, c.bootstrap, t.n_estimators),
        (64, false, 1)
    );
}

#[test]
fn fractions_round_like_scikit_learn() {
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
    let p = params(r#"{"max_samples": 0.25}"#).unwrap();
    assert_eq!(p.resolve(Task::regression(), 10, 2).unwrap().n_draws, 2);
    assert_eq!(p.draws(10, 7.0), 1);
    let p = params(r#"{"max_samples": 7}"#).unwrap();
    assert_eq!(p.resolve(Task::regression(), 10, 2).unwrap().n_draws, 7);
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
        let e = params(bad).unwrap_err();
        assert!(e.message.contains("parameter `max_features`"), "{bad}: {e}");
    }
    let e = params(r#"{"max_features": 0}"#).unwrap_err();
    assert_eq!(e.kind, ErrorKind::INVALID_PARAMS);
    assert!(e.message.contains("got 0"), "{e}");
    assert!(params(r#"{"min_samples_split": 1}"#).is_err());
    assert!(params(r#"{"min_samples_split": 1.0}"#).is_ok());
    assert!(params(r#"{"min_samples_leaf": 1.0}"#).is_err());
    assert!(params(r#"{"criterion": "mse"}"#).is_err());
    let e = params(r#"{"n_trees": 5}"#).unwrap_err();
    assert!(e.message.contains("unknown parameter `n_trees`"), "{e}");
    let e = tree(r#"{"n_estimators": 5}"#).unwrap_err();
    assert!(
        e.message
            .contains("unknown parameter `n_estimators` for `decision_tree`"),
        "{e}"
    );
    assert!(tree(r#"{"bootstrap": true}"#).is_err());
}

#[test]
fn new_parameters_check_their_values() {
    let e = params(r#"{"max_samples": 1.5}"#).unwrap_err();
    assert_eq!(
        e.message,
        "`random_forest` parameter `max_samples`: expected int >= 1 | float in (0, 1] | null, got 1.5"
    );
    for bad in [
        r#"{"max_samples": 0}"#,
        r#"{"max_samples": 0.0}"#,
        r#"{"max_samples": "all"}"#,
    ] {
        assert!(
            params(bad).unwrap_err().message.contains("`max_samples`"),
            "{bad}"
        );
    }
    let e = params(r#"{"max_samples": 10, "bootstrap": false}"#).unwrap_err();
    assert!(
        e.message
            .contains("`max_samples`: applies only with `bootstrap = true`"),
        "{e}"
    );
    let e = params(r#"{"max_samples": 50}"#)
        .unwrap()
        .resolve(Task::regression(), 10, 2)
        .unwrap_err();
    assert!(
        e.message
            .contains("`max_samples`: 50 is more than the 10 rows"),
        "{e}"
    );

    let e = params(r#"{"class_weight": {"a": 1.0}}"#).unwrap_err();
    assert!(
        e.message
            .contains("parameter `class_weight`: key \"a\" is not a class index"),
        "{e}"
    );
    let e = params(r#"{"class_weight": {"1": -2}}"#).unwrap_err();
    assert!(
        e.message.contains("`class_weight`: weight of class \"1\""),
        "{e}"
    );
    let e = params(r#"{"class_weight": "even"}"#).unwrap_err();
    assert!(e.message.contains("`class_weight`"), "{e}");
    assert!(params(r#"{"class_weight": "balanced_subsample"}"#).is_ok());
    let e = tree(r#"{"class_weight": "balanced_subsample"}"#).unwrap_err();
    assert!(
        e.message
            .contains("`decision_tree` parameter `class_weight`"),
        "{e}"
    );
    let e = params(r#"{"class_weight": {"3": 2.0}}"#)
        .unwrap()
        .resolve(Task::classification(3), 10, 2)
        .unwrap_err();
    assert!(e.message.contains("class index 3 does not exist"), "{e}");

    for (key, bad) in [
        ("max_bins", "1"),
        ("max_bins", "256"),
        ("split_algorithm", r#""approx""#),
        ("splitter", r#""worst""#),
        ("ccp_alpha", "-0.1"),
        ("min_impurity_decrease", "-1"),
        ("min_weight_fraction_leaf", "0.6"),
        ("max_leaf_nodes", "1"),
        ("oob_score", "1"),
    ] {
        let e = params(&format!(r#"{{"{key}": {bad}}}"#)).unwrap_err();
        assert!(
            e.message.contains(&format!("parameter `{key}`")),
            "{key}: {e}"
        );
    }
    let e = params(r#"{"oob_score": true, "bootstrap": false}"#).unwrap_err();
    assert!(
        e.message.contains("`oob_score`: needs `bootstrap = true`"),
        "{e}"
    );
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
    let e = params(r#"{"class_weight": "balanced"}"#)
        .unwrap()
        .resolve(Task::regression(), 10, 4)
        .unwrap_err();
    assert!(
        e.message
            .contains("`class_weight`: applies to classification only"),
        "{e}"
    );
}
