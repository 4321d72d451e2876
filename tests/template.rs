//! The third-party plugin template (`examples/plugin-template`, learner
//! `linear`) loads, trains and evaluates through the real binary.

use serde_json::Value;

use crate::util::{TempDir, data, plugin_dir, s, tessera};

fn train_eval(name: &str, target: &str) -> Value {
    let plugins = plugin_dir(&["tessera_linear"]);
    let tmp = TempDir::new("linear");
    let m = tmp.join("m.tsr");
    tessera(
        plugins.path(),
        &[
            "train",
            "--learner",
            "linear",
            "--data",
            s(&data(&format!("{name}.train.csv"))),
            "--target",
            target,
            "--out",
            s(&m),
        ],
    )
    .ok();
    let out = tessera(
        plugins.path(),
        &[
            "eval",
            "--model",
            s(&m),
            "--data",
            s(&data(&format!("{name}.test.csv"))),
            "--target",
            target,
            "--json",
        ],
    );
    serde_json::from_str(out.ok().trim()).unwrap()
}

#[test]
fn linear_classifies_iris() {
    let m = train_eval("iris", "label");
    assert!(m["accuracy"].as_f64().unwrap() >= 0.9, "{m}");
}

#[test]
fn linear_regresses_diabetes() {
    let m = train_eval("diabetes", "target");
    // scikit-learn 1.9.1 `Ridge(alpha=1.0)` on this split scores 0.3410.
    assert!((m["r2"].as_f64().unwrap() - 0.3410).abs() < 0.005, "{m}");
}
