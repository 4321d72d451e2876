//! `adaboost` (boosting plugin) through the real binary, over
//! `decision_tree` and `random_forest` (forest plugin) and the third-party
//! `linear`: accuracy against scikit-learn, saving and reloading members
//! through their own plugins, parameter errors.

use serde_json::Value;

use crate::util::{TempDir, data, eval_json, plugin_dir, predict, read, s, tessera, train};

const PLUGINS: &[&str] = &["tessera_forest", "tessera_boosting", "tessera_linear"];

/// Trains adaboost on `name` (seed 0, `extra` settings) with the test split
/// as `--valid`, checks that the reloaded model scores the test split as
/// the trained one did, and returns those metrics and the model summary.
fn train_eval(name: &str, target: &str, extra: &[&str]) -> (Value, Value) {
    let plugins = plugin_dir(PLUGINS);
    let tmp = TempDir::new("adaboost");
    let m = tmp.join("m.tsr");
    let report = tmp.join("report.json");
    let train_csv = data(&format!("{name}.train.csv"));
    let test = data(&format!("{name}.test.csv"));
    let mut args = vec!["--seed", "0", "--valid", s(&test), "--report", s(&report)];
    args.extend_from_slice(extra);
    train(plugins.path(), "adaboost", &train_csv, target, &args, &m).ok();
    let metrics: Value = eval_json(plugins.path(), &m, &test, target);
    let r: Value = serde_json::from_str(&read(&report)).unwrap();
    // --valid scores the model in memory, eval the one read back.
    assert_eq!(
        metrics, r["metrics"],
        "{name}: the saved model answers differently"
    );
    let v: Value =
        serde_json::from_str(tessera(plugins.path(), &["inspect", s(&m), "--json"]).ok()).unwrap();
    (metrics, v["summary"].clone())
}

#[test]
fn boosted_stumps_match_scikit_learn() {
    // scikit-learn 1.9 AdaBoostClassifier() on these splits: iris 0.933,
    // wine 0.972, breast_cancer 0.965, digits 0.639 (stumps: the same for
    // every seed). Floors sit 1-2 points under.
    for (name, floor) in [
        ("iris", 0.91),
        ("wine", 0.95),
        ("breast_cancer", 0.945),
        ("digits", 0.62),
    ] {
        let (m, summary) = train_eval(name, "label", &[]);
        assert!(m["accuracy"].as_f64().unwrap() >= floor, "{name}: {m}");
        assert_eq!(summary["algorithm"], "SAMME");
        assert_eq!(summary["estimator_params"]["max_depth"], 1, "{summary}");
        let n = summary["n_members"].as_u64().unwrap() as usize;
        assert_eq!(summary["estimator_weights"].as_array().unwrap().len(), n);
        assert_eq!(summary["estimator_errors"].as_array().unwrap().len(), n);
    }
    // scikit-learn AdaBoostRegressor(): R² 0.24-0.30 over seeds 0-4
    // (mean 0.278).
    let (m, summary) = train_eval("diabetes", "target", &[]);
    assert!(m["r2"].as_f64().unwrap() >= 0.26, "diabetes: {m}");
    assert_eq!(summary["algorithm"], "AdaBoost.R2");
    assert_eq!(summary["loss"], "linear");
    assert_eq!(summary["estimator_params"]["max_depth"], 3, "{summary}");
}

#[test]
fn probabilities_are_scikit_learns() {
    // With exact splits the stumps are scikit-learn's, and so is the log
    // loss: 0.3964869448 for AdaBoostClassifier(random_state=0) here.
    let (m, _) = train_eval(
        "breast_cancer",
        "label",
        &["--set", "estimator_params.split_algorithm=exact"],
    );
    let ll = m["log_loss"].as_f64().unwrap();
    assert!((ll - 0.396_486_944_8).abs() < 1e-4, "{m}");
    assert!(
        (m["accuracy"].as_f64().unwrap() - 0.964_912_280_7).abs() < 1e-9,
        "{m}"
    );
}

#[test]
fn any_learner_as_the_estimator() {
    // scikit-learn with RandomForestClassifier(n_estimators=5): digits
    // 0.967-0.975 over seeds 0-2.
    let (m, summary) = train_eval(
        "digits",
        "label",
        &[
            "--set",
            "estimator=random_forest",
            "--set",
            "estimator_params.n_estimators=5",
            "--set",
            "n_estimators=10",
        ],
    );
    assert!(m["accuracy"].as_f64().unwrap() >= 0.94, "{m}");
    assert_eq!(summary["first_member"]["component"], "random_forest");
    assert_eq!(summary["member_seeds"], true);
    // The table form, and a third-party learner that honours weights.
    let (m, summary) = train_eval(
        "iris",
        "label",
        &[
            "--set",
            "estimator.name=linear",
            "--set",
            "estimator.alpha=1.0",
            "--set",
            "n_estimators=10",
        ],
    );
    assert!(m["accuracy"].as_f64().unwrap() >= 0.9, "{m}");
    assert_eq!(summary["estimator"], "linear");
    assert_eq!(summary["member_seeds"], false);
    let (m, summary) = train_eval(
        "diabetes",
        "target",
        &["--set", "loss=square", "--set", "estimator.max_depth=2"],
    );
    assert!(m["r2"].as_f64().unwrap() >= 0.15, "{m}");
    assert_eq!(summary["estimator_params"]["max_depth"], 2, "{summary}");
}

#[test]
fn predictions_and_probabilities_from_the_saved_model() {
    let plugins = plugin_dir(PLUGINS);
    let tmp = TempDir::new("adaboost-predict");
    let m = tmp.join("m.tsr");
    train(
        plugins.path(),
        "adaboost",
        &data("wine.train.csv"),
        "label",
        &["--set", "n_estimators=20", "--set", "learning_rate=0.5"],
        &m,
    )
    .ok();
    let out = predict(plugins.path(), &m, &data("wine.test.csv"), &["--proba"]);
    let text = out.ok();
    let mut lines = text.lines();
    assert_eq!(
        lines.next(),
        Some("prediction,proba_0,proba_1,proba_2"),
        "{text}"
    );
    for l in lines {
        let v: Vec<f64> = l.split(',').map(|x| x.parse().unwrap()).collect();
        let sum: f64 = v[1..].iter().sum();
        assert!((sum - 1.0).abs() < 1e-5, "{l}");
        // The predicted class has the largest probability.
        let best = (1..4).max_by(|&a, &b| v[a].total_cmp(&v[b])).unwrap();
        assert_eq!(v[0] as usize, best - 1, "{l}");
    }
}

#[test]
fn loading_names_a_missing_member_plugin() {
    let all = plugin_dir(PLUGINS);
    let tmp = TempDir::new("adaboost-missing");
    let m = tmp.join("m.tsr");
    train(
        all.path(),
        "adaboost",
        &data("iris.train.csv"),
        "label",
        &["--set", "n_estimators=3"],
        &m,
    )
    .ok();
    let without_forest = plugin_dir(&["tessera_boosting"]);
    predict(without_forest.path(), &m, &data("iris.test.csv"), &[])
        .fails(2, &["learner `decision_tree`"]);
}

#[test]
fn bad_adaboost_parameters_name_the_key() {
    let plugins = plugin_dir(PLUGINS);
    let tmp = TempDir::new("adaboost-params");
    let m = tmp.join("m.tsr");
    let run = |name: &str, target: &str, set: &str| {
        train(
            plugins.path(),
            "adaboost",
            &data(&format!("{name}.train.csv")),
            target,
            &["--set", set],
            &m,
        )
    };
    let iris = |set: &str| run("iris", "label", set);
    iris("n_estimators=0").fails(2, &["`n_estimators`", "got 0"]);
    iris("learning_rate=0").fails(2, &["`learning_rate`", "float > 0"]);
    iris("learning_rate=-0.5").fails(2, &["`learning_rate`"]);
    iris("loss=\"huber\"").fails(2, &["`loss`", "\"linear\""]);
    iris("loss=square").fails(2, &["`loss`", "regression"]);
    iris("random_state=-1").fails(2, &["`random_state`"]);
    iris("n_estimatorz=3").fails(
        2,
        &[
            "unknown parameter `n_estimatorz`",
            "did you mean `n_estimators`?",
        ],
    );
    iris("estimator=no_such_learner").fails(2, &["no_such_learner"]);
    iris("estimator=3").fails(2, &["`estimator`"]);
    iris("estimator_params.max_dept=2").fails(2, &["max_dept", "decision_tree"]);
    iris("estimator.max_depth=2").ok();
    train(
        plugins.path(),
        "adaboost",
        &data("iris.train.csv"),
        "label",
        &[
            "--set",
            "estimator.max_depth=2",
            "--set",
            "estimator_params.max_depth=3",
        ],
        &m,
    )
    .fails(2, &["`estimator` and `estimator_params`"]);
    run("diabetes", "target", "loss=exponential").ok();
}
