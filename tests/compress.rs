//! `tessera compress` (compress plugin) through the real binary: `quantize`
//! and `prune` on forests, boosted trees and networks give ordinary model
//! files that inspect, evaluate, predict, decompose and load in a graph;
//! the report's "after" column is what `eval` of the written file says;
//! impossible parameters and models without an exchange form are refused
//! with the key at fault.

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::util::{TempDir, data, eval_json, plugin_dir, s, tessera, train};

const PLUGINS: &[&str] = &[
    "tessera_forest",
    "tessera_boosting",
    "tessera_mlp",
    "tessera_decompose",
    "tessera_compress",
    "tessera_linear",
];

/// Trains `learner` on the shipped `name` split.
fn trained(p: &Path, tmp: &TempDir, learner: &str, name: &str, settings: &[&str]) -> PathBuf {
    let m = tmp.join(&format!("{learner}-{name}.tsr"));
    let mut args = vec!["--seed", "0"];
    args.extend_from_slice(settings);
    train(
        p,
        learner,
        &data(&format!("{name}.train.csv")),
        target(name),
        &args,
        &m,
    )
    .ok();
    m
}

fn target(name: &str) -> &'static str {
    if name == "diabetes" {
        "target"
    } else {
        "label"
    }
}

/// Runs `compress` with `--eval` on the test split of `name` and returns
/// the JSON report.
fn compress(p: &Path, model: &Path, out: &Path, name: &str, extra: &[&str]) -> Value {
    let test = data(&format!("{name}.test.csv"));
    let mut args = vec![
        "compress",
        "--model",
        s(model),
        "--out",
        s(out),
        "--eval",
        s(&test),
        "--target",
        target(name),
        "--rounds",
        "1",
        "--json",
    ];
    args.extend_from_slice(extra);
    serde_json::from_str(tessera(p, &args).ok()).unwrap()
}

fn metric(m: &Value, key: &str) -> f64 {
    m[key].as_f64().unwrap_or_else(|| panic!("no {key} in {m}"))
}

/// The written file evaluates as the report's "after" column says (the
/// model survived saving and loading), and is smaller than before.
fn check_report(p: &Path, r: &Value, out: &Path, name: &str, key: &str) {
    let test = data(&format!("{name}.test.csv"));
    let after = eval_json(p, out, &test, target(name));
    assert_eq!(
        metric(&after, key),
        metric(&r["after"]["metrics"], key),
        "{r}"
    );
    let (b, a) = (
        r["before"]["file_bytes"].as_u64().unwrap(),
        r["after"]["file_bytes"].as_u64().unwrap(),
    );
    assert_eq!(a, std::fs::metadata(out).unwrap().len());
    assert!(a < b, "not smaller: {b} -> {a}");
    assert!(r["after"]["batch_rows_per_second"].as_f64().unwrap() > 0.0);
    assert!(r["after"]["row_latency_seconds"].as_f64().unwrap() > 0.0);
}

#[test]
fn quantized_trees_and_networks_keep_their_scores() {
    let dir = plugin_dir(PLUGINS);
    let p = dir.path();
    let tmp = TempDir::new("compress-quantize");
    let cases: &[(&str, &str, &[&str], &str, f64)] = &[
        (
            "random_forest",
            "breast_cancer",
            &["--set", "n_estimators=30"],
            "roc_auc",
            0.002,
        ),
        (
            "gradient_boosting",
            "breast_cancer",
            &["--set", "n_estimators=50"],
            "roc_auc",
            0.002,
        ),
        (
            "random_forest",
            "diabetes",
            &["--set", "n_estimators=20"],
            "r2",
            0.01,
        ),
        (
            "mlp",
            "digits",
            &["--set", "hidden_layer_sizes=[64]", "--set", "max_iter=60"],
            "accuracy",
            0.015,
        ),
    ];
    for &(learner, name, settings, key, tolerance) in cases {
        let m = trained(p, &tmp, learner, name, settings);
        let out = tmp.join(&format!("{learner}-{name}-q.tsr"));
        // A network's activations are calibrated on training rows.
        let train_file = data(&format!("{name}.train.csv"));
        let extra: Vec<&str> = if learner == "mlp" {
            vec!["--data", s(&train_file)]
        } else {
            vec![]
        };
        let r = compress(
            p,
            &m,
            &out,
            name,
            &[&["--with", "quantize"], &extra[..]].concat(),
        );
        let want = if learner == "mlp" {
            "quantized_network"
        } else {
            "quantized_trees"
        };
        assert_eq!(r["component"], want, "{r}");
        let (b, a) = (
            metric(&r["before"]["metrics"], key),
            metric(&r["after"]["metrics"], key),
        );
        assert!(
            (b - a).abs() <= tolerance,
            "{learner} on {name}: {key} {b} -> {a}"
        );
        check_report(p, &r, &out, name, key);
        let shown = tessera(p, &["inspect", s(&out), "--json"]);
        let shown: Value = serde_json::from_str(shown.ok()).unwrap();
        assert_eq!(shown["header"]["component"], want, "{shown}");
        assert!(
            shown["header"]["training"]["compressed_from"]
                .as_str()
                .unwrap()
                .ends_with(".tsr"),
            "{shown}"
        );
    }
}

#[test]
fn pruned_models_are_valid_models() {
    let dir = plugin_dir(PLUGINS);
    let p = dir.path();
    let tmp = TempDir::new("compress-prune");
    let rf = trained(
        p,
        &tmp,
        "random_forest",
        "breast_cancer",
        &["--set", "n_estimators=40"],
    );
    let train_file = data("breast_cancer.train.csv");
    let cases: &[(&str, &[&str])] = &[
        ("greedy", &["--set", "n_estimators=10"]),
        (
            "first",
            &["--set", "fraction=0.25", "--set", "selection=\"first\""],
        ),
        ("depth", &["--set", "max_depth=3"]),
        (
            "ccp",
            &["--set", "ccp_alpha=0.01", "--data", s(&train_file)],
        ),
    ];
    for &(tag, settings) in cases {
        let out = tmp.join(&format!("rf-{tag}.tsr"));
        let r = compress(
            p,
            &rf,
            &out,
            "breast_cancer",
            &[&["--with", "prune"], settings].concat(),
        );
        // A pruned ensemble is still a tree ensemble in exchange form.
        assert_eq!(r["component"], "gradient_boosting", "{tag}: {r}");
        let (b, a) = (
            metric(&r["before"]["metrics"], "roc_auc"),
            metric(&r["after"]["metrics"], "roc_auc"),
        );
        assert!(b - a < 0.05, "{tag}: roc_auc {b} -> {a}");
        check_report(p, &r, &out, "breast_cancer", "roc_auc");
    }
    // Pruned then quantized; and the result still decomposes.
    let q = tmp.join("rf-greedy-q.tsr");
    compress(
        p,
        &tmp.join("rf-greedy.tsr"),
        &q,
        "breast_cancer",
        &["--with", "quantize"],
    );
    let parts = tmp.join("parts");
    let test = data("breast_cancer.test.csv");
    let d = tessera(
        p,
        &[
            "decompose",
            "--model",
            s(&q),
            "--with",
            "shard",
            "--set",
            "parts=2",
            "--out",
            s(&parts),
            "--check",
            s(&test),
            "--json",
        ],
    );
    let d: Value = serde_json::from_str(d.ok()).unwrap();
    assert!(d["check"]["max_abs_diff"].as_f64().unwrap() < 1e-5, "{d}");

    let mlp = trained(
        p,
        &tmp,
        "mlp",
        "digits",
        &["--set", "hidden_layer_sizes=[64]", "--set", "max_iter=60"],
    );
    let digits_train = data("digits.train.csv");
    for (tag, settings, want) in [
        ("units", vec!["--set", "keep_units=0.5"], "mlp"),
        ("sparse", vec!["--set", "sparsity=0.7"], "sparse_network"),
    ] {
        let out = tmp.join(&format!("mlp-{tag}.tsr"));
        let mut extra = vec!["--with", "prune", "--data", s(&digits_train)];
        extra.extend(settings);
        let r = compress(p, &mlp, &out, "digits", &extra);
        assert_eq!(r["component"], want, "{tag}: {r}");
        let (b, a) = (
            metric(&r["before"]["metrics"], "accuracy"),
            metric(&r["after"]["metrics"], "accuracy"),
        );
        assert!(b - a < 0.05, "{tag}: accuracy {b} -> {a}");
        check_report(p, &r, &out, "digits", "accuracy");
    }
}

#[test]
fn a_graph_node_can_be_quantized_at_load() {
    let dir = plugin_dir(PLUGINS);
    let p = dir.path();
    let tmp = TempDir::new("compress-graph");
    let rf = trained(
        p,
        &tmp,
        "random_forest",
        "iris",
        &["--set", "n_estimators=10"],
    );
    let graph = tmp.join("g.toml");
    std::fs::write(
        &graph,
        format!(
            "[inputs.features]\ndatatype = \"FP32\"\nshape = [-1, 4]\n\
             [nodes.rf]\nmodel = \"{}\"\ninputs = [\"features\"]\n\
             compress = [{{ with = \"quantize\", params = {{ bits = 16 }} }}]\n\
             [outputs.o]\nfrom = \"rf\"\n",
            s(&rf).replace('\\', "/")
        ),
    )
    .unwrap();
    let test = data("iris.test.csv");
    let g = tessera(
        p,
        &[
            "predict",
            "--graph",
            s(&graph),
            "--output",
            "o",
            "--data",
            s(&test),
            "--proba",
        ],
    );
    let whole = tessera(
        p,
        &["predict", "--model", s(&rf), "--data", s(&test), "--proba"],
    );
    let rows = |t: &str| -> Vec<Vec<f64>> {
        t.lines()
            .skip(1)
            .map(|l| l.split(',').skip(1).map(|v| v.parse().unwrap()).collect())
            .collect()
    };
    let (g, w) = (rows(g.ok()), rows(whole.ok()));
    assert_eq!(g.len(), w.len());
    for (a, b) in g.iter().zip(&w) {
        for (x, y) in a.iter().zip(b) {
            assert!((x - y).abs() < 2e-3, "{a:?} vs {b:?}");
        }
    }
}

#[test]
fn impossible_requests_are_refused_with_the_key_at_fault() {
    let dir = plugin_dir(PLUGINS);
    let p = dir.path();
    let tmp = TempDir::new("compress-errors");
    let rf = trained(
        p,
        &tmp,
        "random_forest",
        "iris",
        &["--set", "n_estimators=5"],
    );
    let mlp = trained(p, &tmp, "mlp", "iris", &["--set", "max_iter=20"]);
    let out = tmp.join("out.tsr");
    let run = |model: &Path, args: &[&str]| {
        let mut a = vec!["compress", "--model", s(model), "--out", s(&out)];
        a.extend_from_slice(args);
        tessera(p, &a)
    };
    run(&mlp, &["--with", "prune", "--set", "sparsity=1.2"]).fails(2, &["`sparsity`", "1.2"]);
    run(&rf, &["--with", "quantize", "--set", "bits=3"]).fails(2, &["`bits`", "8 or 16", "3"]);
    run(&rf, &["--with", "prune", "--set", "n_estimators=2"]).fails(2, &["--eval"]);
    run(
        &rf,
        &[
            "--with",
            "prune",
            "--set",
            "n_estimators=50",
            "--set",
            "selection=\"first\"",
        ],
    )
    .fails(2, &["`n_estimators`", "50"]);
    run(&rf, &["--with", "prune"]).fails(2, &["nothing to do"]);
    run(&rf, &["--with", "prune", "--set", "sparsity=0.5"]).fails(2, &["`sparsity`", "networks"]);
    run(&mlp, &["--with", "prune", "--set", "max_depth=2"])
        .fails(2, &["`max_depth`", "tree ensembles"]);
    run(&rf, &["--with", "quantise"]).fails(2, &["quantise", "quantize"]);
    let test = data("iris.test.csv");
    run(&rf, &["--with", "quantize", "--eval", s(&test)]).fails(2, &["--target"]);
    // A model without an exchange form: the template's linear learner.
    let linear = tmp.join("linear.tsr");
    train(
        p,
        "linear",
        &data("diabetes.train.csv"),
        "target",
        &[],
        &linear,
    )
    .ok();
    run(&linear, &["--with", "quantize"]).fails(2, &["exchange form"]);
    // Nothing was written by any refused run.
    assert!(!out.exists());
}
