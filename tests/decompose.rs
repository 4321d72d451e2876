//! `tessera decompose` (decompose plugin) through the real binary: every
//! decomposer on every model family it takes splits the model into parts
//! that load as ordinary models and, recombined as their roles say,
//! answer as the whole model within 1e-6 relative on every row of the test
//! split; the graph fragment names them; bad requests are refused.

use std::path::Path;

use serde_json::Value;

use crate::util::{TempDir, data, plugin_dir, s, tessera, train};

const PLUGINS: &[&str] = &[
    "tessera_forest",
    "tessera_boosting",
    "tessera_bagging",
    "tessera_mlp",
    "tessera_decompose",
    "tessera_linear",
];

/// Trains `learner` on the shipped `name` split with `settings`.
fn trained(plugins: &Path, tmp: &TempDir, learner: &str, name: &str, settings: &[&str]) -> String {
    let m = tmp.join(&format!("{learner}-{name}.tsr"));
    let target = if name == "diabetes" {
        "target"
    } else {
        "label"
    };
    // The template's linear learner is deterministic: it has no seed.
    let mut args = if learner == "linear" {
        vec![]
    } else {
        vec!["--seed", "0"]
    };
    args.extend_from_slice(settings);
    train(
        plugins,
        learner,
        &data(&format!("{name}.train.csv")),
        target,
        &args,
        &m,
    )
    .ok();
    s(&m).to_string()
}

/// Decomposes `model` and returns the JSON summary (with the check on the
/// test split of `name`).
fn decompose(plugins: &Path, out: &Path, model: &str, name: &str, with: &[&str]) -> Value {
    let test = data(&format!("{name}.test.csv"));
    let mut args = vec!["decompose", "--model", model, "--out", s(out)];
    args.extend_from_slice(with);
    args.extend_from_slice(&["--check", s(&test), "--json"]);
    serde_json::from_str(tessera(plugins, &args).ok()).unwrap()
}

#[test]
fn every_decomposer_recombines_exactly() {
    let plugins = plugin_dir(PLUGINS);
    let p = plugins.path();
    let tmp = TempDir::new("decompose");
    let few = ["--set", "n_estimators=12"];
    let cases: Vec<(String, &str, Vec<&str>, usize)> = vec![
        // Forests: probabilities (weighted mean) and values.
        (
            trained(p, &tmp, "random_forest", "digits", &few),
            "digits",
            vec!["--with", "shard", "--set", "parts=3"],
            3,
        ),
        (
            trained(p, &tmp, "random_forest", "diabetes", &few),
            "diabetes",
            vec!["--with", "shard", "--set", "parts=4"],
            4,
        ),
        (
            trained(p, &tmp, "random_forest", "digits", &few),
            "digits",
            vec!["--with", "one_vs_rest"],
            10,
        ),
        // Boosting: raw scores summed through sigmoid, softmax or nothing.
        (
            trained(p, &tmp, "gradient_boosting", "breast_cancer", &few),
            "breast_cancer",
            vec!["--with", "shard", "--set", "parts=3"],
            3,
        ),
        (
            trained(p, &tmp, "gradient_boosting", "wine", &few),
            "wine",
            vec!["--with", "shard", "--set", "parts=5"],
            5,
        ),
        (
            trained(p, &tmp, "gradient_boosting", "diabetes", &few),
            "diabetes",
            vec!["--with", "shard"],
            2,
        ),
        (
            trained(p, &tmp, "gradient_boosting", "wine", &few),
            "wine",
            vec!["--with", "one_vs_rest"],
            3,
        ),
        // AdaBoost (stumps, SAMME) and bagged trees.
        (
            trained(p, &tmp, "adaboost", "iris", &few),
            "iris",
            vec!["--with", "shard", "--set", "parts=4"],
            4,
        ),
        (
            trained(p, &tmp, "adaboost", "iris", &few),
            "iris",
            vec!["--with", "one_vs_rest"],
            3,
        ),
        (
            trained(p, &tmp, "bagging", "wine", &few),
            "wine",
            vec!["--with", "shard", "--set", "parts=2"],
            2,
        ),
        // Networks: stages and output units.
        (
            trained(
                p,
                &tmp,
                "mlp",
                "digits",
                &[
                    "--set",
                    "hidden_layer_sizes=[24, 12]",
                    "--set",
                    "max_iter=40",
                ],
            ),
            "digits",
            vec!["--with", "pipeline", "--set", "stages=3"],
            3,
        ),
        (
            trained(
                p,
                &tmp,
                "mlp",
                "diabetes",
                &["--set", "hidden_layer_sizes=[16]", "--set", "max_iter=40"],
            ),
            "diabetes",
            vec!["--with", "pipeline", "--set", "boundaries=[1]"],
            2,
        ),
        (
            trained(p, &tmp, "mlp", "wine", &["--set", "max_iter=40"]),
            "wine",
            vec!["--with", "one_vs_rest"],
            3,
        ),
    ];
    for (i, (model, name, with, n_parts)) in cases.iter().enumerate() {
        let out = tmp.join(&format!("parts-{i}"));
        let r = decompose(p, &out, model, name, with);
        let what = format!("{model} {with:?}");
        let parts = r["parts"].as_array().unwrap();
        assert_eq!(parts.len(), *n_parts, "{what}: {r}");
        for part in parts {
            assert!(Path::new(part["file"].as_str().unwrap()).exists(), "{what}");
        }
        let rel = r["check"]["max_rel_diff"].as_f64().unwrap();
        assert!(
            rel <= 1e-6,
            "{what}: recombined answers differ by {rel} relative: {r}"
        );
        // The fragment is TOML naming every part and how they join.
        let graph = std::fs::read_to_string(out.join("graph.toml")).unwrap();
        let doc: toml::Table = graph
            .parse()
            .unwrap_or_else(|e| panic!("{what}: {e}\n{graph}"));
        let nodes = doc["nodes"].as_table().unwrap();
        assert!(nodes.len() >= *n_parts, "{what}: {graph}");
        assert!(doc["outputs"].as_table().unwrap().len() == 1, "{what}");
    }
}

#[test]
fn parts_are_ordinary_models() {
    // A shard of a boosted classifier answers raw scores: a regression of
    // one value per class, named after the classes, that predicts from
    // the CSV like any model.
    let plugins = plugin_dir(PLUGINS);
    let p = plugins.path();
    let tmp = TempDir::new("decompose-parts");
    let m = trained(
        p,
        &tmp,
        "gradient_boosting",
        "iris",
        &["--set", "n_estimators=6"],
    );
    let out = tmp.join("parts");
    decompose(
        p,
        &out,
        &m,
        "iris",
        &["--with", "shard", "--set", "parts=2"],
    );
    let part = out.join("shard_1.tsr");
    let info: Value =
        serde_json::from_str(tessera(p, &["inspect", "--json", s(&part)]).ok()).unwrap();
    assert_eq!(info["header"]["task"], "regression", "{info}");
    assert_eq!(
        info["header"]["targets"].as_array().unwrap().len(),
        3,
        "{info}"
    );
    let pred = tessera(
        p,
        &[
            "predict",
            "--model",
            s(&part),
            "--data",
            s(&data("iris.test.csv")),
        ],
    );
    let header = pred.ok().lines().next().unwrap().to_string();
    assert!(header.starts_with("prediction_raw_"), "{header}");
}

#[test]
fn bad_decompositions_are_refused_with_the_reason() {
    let plugins = plugin_dir(PLUGINS);
    let p = plugins.path();
    let tmp = TempDir::new("decompose-bad");
    let gb = trained(
        p,
        &tmp,
        "gradient_boosting",
        "breast_cancer",
        &["--set", "n_estimators=5"],
    );
    let mlp = trained(p, &tmp, "mlp", "iris", &["--set", "max_iter=5"]);
    let linear = trained(p, &tmp, "linear", "iris", &[]);
    let out = tmp.join("out");
    for (model, with, pieces) in [
        (
            &gb,
            &["--with", "shard", "--set", "parts=50"][..],
            &["parts = 50", "5 trees"][..],
        ),
        (
            &gb,
            &["--with", "one_vs_rest"],
            &["multiclass", "2 classes"],
        ),
        (&gb, &["--with", "pipeline"], &["dense networks"]),
        (&mlp, &["--with", "shard"], &["tree ensembles"]),
        (
            &mlp,
            &["--with", "pipeline", "--set", "boundaries=[7]"],
            &["boundary 7"],
        ),
        (
            &mlp,
            &["--with", "pipeline", "--set", "boundaries=[2, 1]"],
            &["boundaries", "ascending"],
        ),
        (&linear, &["--with", "shard"], &["no exchange form"]),
        (&gb, &["--with", "shards"], &["shards"]),
    ] {
        let mut args = vec!["decompose", "--model", model.as_str(), "--out", s(&out)];
        args.extend_from_slice(with);
        tessera(p, &args).fails(2, pieces);
        assert!(
            !out.join("graph.toml").exists(),
            "{with:?}: wrote a fragment"
        );
    }
}
