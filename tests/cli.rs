//! The CLI walkthrough on every shipped dataset: train, predict, eval,
//! inspect, plugins.

use serde_json::Value;

use crate::util::{TempDir, data, plugin_dir, read, s, tessera};

/// Trains a forest on `name`, predicts and evaluates the test split, and
/// returns `eval --json`.
fn walkthrough(name: &str, target: &str) -> Value {
    let plugins = plugin_dir(&["tessera_forest"]);
    let tmp = TempDir::new(name);
    let model = tmp.join("model.tsr");
    let report = tmp.join("report.json");
    let train = data(&format!("{name}.train.csv"));
    let test = data(&format!("{name}.test.csv"));
    tessera(
        plugins.path(),
        &[
            "train",
            "--learner",
            "random_forest",
            "--data",
            s(&train),
            "--target",
            target,
            "--set",
            "n_estimators=50",
            "--seed",
            "0",
            "--threads",
            "2",
            "--out",
            s(&model),
            "--valid",
            s(&test),
            "--report",
            s(&report),
        ],
    )
    .ok();

    let r: Value = serde_json::from_str(&read(&report)).unwrap();
    for key in [
        "load_seconds",
        "fit_seconds",
        "n_rows",
        "n_features",
        "metrics",
    ] {
        assert!(r.get(key).is_some(), "report lacks {key}: {r}");
    }

    let preds = tmp.join("pred.csv");
    tessera(
        plugins.path(),
        &[
            "predict",
            "--model",
            s(&model),
            "--data",
            s(&test),
            "--out",
            s(&preds),
        ],
    )
    .ok();
    let text = read(&preds);
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some("prediction"));
    let n_test = read(&test).lines().count() - 1;
    assert_eq!(lines.count(), n_test);

    let out = tessera(
        plugins.path(),
        &[
            "eval",
            "--model",
            s(&model),
            "--data",
            s(&test),
            "--target",
            target,
            "--json",
        ],
    );
    let m: Value = serde_json::from_str(out.ok().trim()).unwrap();
    // The report's validation metrics are the same computation.
    assert_eq!(m, r["metrics"], "eval and --valid disagree");
    m
}

#[test]
fn iris() {
    let m = walkthrough("iris", "label");
    assert!(m["accuracy"].as_f64().unwrap() >= 0.9, "{m}");
    assert!(m["log_loss"].as_f64().unwrap() < 0.5, "{m}");
    assert!(
        m.get("roc_auc").is_none(),
        "roc_auc is for binary tasks: {m}"
    );
}

#[test]
fn wine() {
    let m = walkthrough("wine", "label");
    assert!(m["accuracy"].as_f64().unwrap() >= 0.9, "{m}");
}

#[test]
fn breast_cancer() {
    let m = walkthrough("breast_cancer", "label");
    assert!(m["accuracy"].as_f64().unwrap() >= 0.92, "{m}");
    assert!(m["roc_auc"].as_f64().unwrap() >= 0.97, "{m}");
}

#[test]
fn digits() {
    let m = walkthrough("digits", "label");
    assert!(m["accuracy"].as_f64().unwrap() >= 0.93, "{m}");
}

#[test]
fn diabetes() {
    let m = walkthrough("diabetes", "target");
    // scikit-learn's RandomForestRegressor scores 0.26 on this split (see
    // plugins/forest/tests/accuracy.rs).
    assert!(m["r2"].as_f64().unwrap() >= 0.2, "{m}");
    assert!(m["rmse"].as_f64().unwrap() > 0.0, "{m}");
    assert!(m.get("accuracy").is_none(), "{m}");
}

#[test]
fn string_labels_and_shuffled_columns_round_trip() {
    let plugins = plugin_dir(&["tessera_forest"]);
    let tmp = TempDir::new("labels");
    let train = tmp.join("train.csv");
    let mut text = String::from("size,weight,kind\n");
    for i in 0..60 {
        let (kind, base) = if i % 2 == 0 {
            ("cat", 1.0)
        } else {
            ("dog", 10.0)
        };
        let missing = if i % 7 == 0 {
            String::new()
        } else {
            format!("{}", base + f64::from(i % 5))
        };
        text.push_str(&format!(
            "{},{missing},{kind}\n",
            base * 2.0 + f64::from(i % 3)
        ));
    }
    std::fs::write(&train, text).unwrap();
    // Columns in another order, an extra id column, no target.
    let new = tmp.join("new.csv");
    std::fs::write(&new, "id,weight,size\na,1,2\nb,11,20\nc,,2\n").unwrap();
    let model = tmp.join("m.tsr");
    tessera(
        plugins.path(),
        &[
            "train",
            "--learner",
            "random_forest",
            "--data",
            s(&train),
            "--target",
            "kind",
            "--out",
            s(&model),
            "--seed",
            "3",
        ],
    )
    .ok();
    let out = tessera(
        plugins.path(),
        &[
            "predict",
            "--model",
            s(&model),
            "--data",
            s(&new),
            "--proba",
        ],
    );
    let text = out.ok();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "prediction,proba_cat,proba_dog");
    assert!(lines[1].starts_with("cat,"), "{text}");
    assert!(lines[2].starts_with("dog,"), "{text}");
    assert!(lines[3].starts_with("cat,"), "{text}");
    for l in &lines[1..] {
        let p: f64 = l
            .split(',')
            .skip(1)
            .map(|v| v.parse::<f64>().unwrap())
            .sum();
        assert!((p - 1.0).abs() < 1e-5, "probabilities sum to {p}: {l}");
    }
}

#[test]
fn inspect_shows_header_and_summary() {
    let plugins = plugin_dir(&["tessera_forest"]);
    let tmp = TempDir::new("inspect");
    let model = tmp.join("m.tsr");
    tessera(
        plugins.path(),
        &[
            "train",
            "--learner",
            "random_forest",
            "--data",
            s(&data("iris.train.csv")),
            "--target",
            "label",
            "--set",
            "n_estimators=5",
            "--out",
            s(&model),
        ],
    )
    .ok();
    let v: Value =
        serde_json::from_str(tessera(plugins.path(), &["inspect", s(&model), "--json"]).ok())
            .unwrap();
    assert_eq!(v["header"]["plugin"], "forest");
    assert_eq!(v["header"]["component"], "random_forest");
    assert_eq!(v["header"]["classes"], serde_json::json!(["0", "1", "2"]));
    assert_eq!(v["header"]["features"].as_array().unwrap().len(), 4);
    assert_eq!(v["summary"]["n_estimators"], 5, "{v}");
    let text = tessera(plugins.path(), &["inspect", s(&model)]);
    assert!(
        text.ok()
            .contains("learner     random_forest (plugin forest"),
        "{}",
        text.stdout
    );

    // Without the plugin the header is still shown.
    let empty = TempDir::new("noplugins");
    let v: Value =
        serde_json::from_str(tessera(empty.path(), &["inspect", s(&model), "--json"]).ok())
            .unwrap();
    assert_eq!(v["header"]["component"], "random_forest");
    assert!(
        v["summary_error"]
            .as_str()
            .unwrap()
            .contains("no loaded plugin provides learner `random_forest`")
    );
}

#[test]
fn plugins_lists_components_and_params() {
    let plugins = plugin_dir(&["tessera_forest", "tessera_linear"]);
    let v: Value =
        serde_json::from_str(tessera(plugins.path(), &["plugins", "--json"]).ok()).unwrap();
    let names: Vec<&str> = v["plugins"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert!(
        names.contains(&"forest") && names.contains(&"linear"),
        "{v}"
    );
    let forest = v["plugins"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "forest")
        .unwrap();
    let rf = &forest["components"][0];
    assert_eq!(rf["name"], "random_forest");
    assert_eq!(rf["kind"], "learner");
    let params: Vec<&str> = rf["params"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    for p in [
        "n_estimators",
        "max_depth",
        "min_samples_split",
        "min_samples_leaf",
        "max_features",
        "bootstrap",
        "random_state",
        "criterion",
    ] {
        assert!(params.contains(&p), "random_forest lacks {p}: {params:?}");
    }
    let text = tessera(plugins.path(), &["plugins"]);
    assert!(
        text.ok().contains("learner random_forest"),
        "{}",
        text.stdout
    );
}

#[test]
fn config_file_and_set_combine() {
    let plugins = plugin_dir(&["tessera_forest"]);
    let tmp = TempDir::new("config");
    let cfg = tmp.join("rf.toml");
    std::fs::write(&cfg, "n_estimators = 7\nmax_depth = 2\n").unwrap();
    let model = tmp.join("m.tsr");
    let report = tmp.join("r.json");
    tessera(
        plugins.path(),
        &[
            "train",
            "--learner",
            "random_forest",
            "--data",
            s(&data("wine.train.csv")),
            "--target",
            "label",
            "--config",
            s(&cfg),
            "--set",
            "max_depth=3",
            "--out",
            s(&model),
            "--report",
            s(&report),
        ],
    )
    .ok();
    let r: Value = serde_json::from_str(&read(&report)).unwrap();
    assert_eq!(
        r["params"],
        serde_json::json!({"n_estimators": 7, "max_depth": 3})
    );
    assert_eq!(r["summary"]["n_estimators"], 7);
}

#[test]
fn weight_column_is_used_and_not_a_feature() {
    let plugins = plugin_dir(&["tessera_forest"]);
    let tmp = TempDir::new("weights");
    let src = read(&data("iris.train.csv"));
    let mut lines = src.lines();
    let mut text = format!("{},w\n", lines.next().unwrap());
    for (i, l) in lines.enumerate() {
        // Class 2 rows weigh nothing: the model cannot learn that class.
        let w = if l.ends_with(",2") {
            0.0
        } else {
            1.0 + (i % 3) as f64
        };
        text.push_str(&format!("{l},{w}\n"));
    }
    let train = tmp.join("w.csv");
    std::fs::write(&train, text).unwrap();
    let model = tmp.join("m.tsr");
    tessera(
        plugins.path(),
        &[
            "train",
            "--learner",
            "random_forest",
            "--data",
            s(&train),
            "--target",
            "label",
            "--weight",
            "w",
            "--set",
            "n_estimators=10",
            "--seed",
            "1",
            "--out",
            s(&model),
        ],
    )
    .ok();
    let v: Value =
        serde_json::from_str(tessera(plugins.path(), &["inspect", s(&model), "--json"]).ok())
            .unwrap();
    assert_eq!(
        v["header"]["features"],
        serde_json::json!(["f0", "f1", "f2", "f3"])
    );
    assert_eq!(v["header"]["training"]["weight"], "w");
    let out = tessera(
        plugins.path(),
        &[
            "predict",
            "--model",
            s(&model),
            "--data",
            s(&data("iris.test.csv")),
        ],
    );
    assert!(
        !out.ok().lines().skip(1).any(|l| l == "2"),
        "a class of zero weight was predicted"
    );

    let bad = tmp.join("bad.csv");
    std::fs::write(&bad, "f0,w,label\n1,1,0\n2,-3,1\n").unwrap();
    tessera(
        plugins.path(),
        &[
            "train",
            "--learner",
            "random_forest",
            "--data",
            s(&bad),
            "--target",
            "label",
            "--weight",
            "w",
            "--out",
            s(&model),
        ],
    )
    .fails(
        2,
        &[":3: weight column `w`: `-3` is not a non-negative number"],
    );
}
