//! Training in shards and merging them: `tessera train --shard I/N` on each
//! part, `tessera merge` of the parts, and the merged model answering
//! exactly as the model trained in one run with the same seed; and every
//! way a shard or a merge can be asked for wrongly.

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::util::{Run, TempDir, data, plugin_dir, predict, read, s, tessera, train};

const PLUGINS: &[&str] = &["tessera_forest", "tessera_bagging", "tessera_boosting"];

/// Trains shards `1..=n` of `learner` (with `extra` arguments) into
/// `dir/part<i>.tsr`.
fn train_shards(
    plugins: &Path,
    dir: &TempDir,
    learner: &str,
    (csv, target): (&Path, &str),
    extra: &[&str],
    n: usize,
) -> Vec<PathBuf> {
    (1..=n)
        .map(|i| {
            let out = dir.join(&format!("part{i}.tsr"));
            let shard = format!("{i}/{n}");
            let mut args = extra.to_vec();
            args.extend_from_slice(&["--shard", &shard]);
            let run = train(plugins, learner, csv, target, &args, &out);
            assert!(
                run.stderr.contains(&format!("{learner} shard {shard}")),
                "{}",
                run.stderr
            );
            run.ok();
            out
        })
        .collect()
}

fn merge(plugins: &Path, parts: &[PathBuf], out: &Path) -> Run {
    let mut args = vec!["merge"];
    args.extend(parts.iter().map(|p| s(p)));
    args.extend_from_slice(&["--out", s(out)]);
    tessera(plugins, &args)
}

fn header(plugins: &Path, model: &Path) -> Value {
    let run = tessera(plugins, &["inspect", "--json", s(model)]);
    serde_json::from_str::<Value>(run.ok()).unwrap()["header"].clone()
}

/// Trains `learner` whole and in 4 shards with the same seed, merges the
/// shards, and checks that the merged model predicts (`--proba` for
/// classifiers) the very same CSV text as the whole one.
fn merged_equals_whole(learner: &str, name: &str, target: &str, extra: &[&str]) {
    let plugins = plugin_dir(PLUGINS);
    let p = plugins.path();
    let tmp = TempDir::new("shard");
    let (train_csv, test_csv) = (
        data(&format!("{name}.train.csv")),
        data(&format!("{name}.test.csv")),
    );
    let mut args = vec!["--seed", "11", "--threads", "2"];
    args.extend_from_slice(extra);
    let whole = tmp.join("whole.tsr");
    train(p, learner, &train_csv, target, &args, &whole).ok();
    let mut parts = train_shards(p, &tmp, learner, (&train_csv, target), &args, 4);
    // Any order on the command line.
    parts.reverse();
    let merged = tmp.join("merged.tsr");
    let out = merge(p, &parts, &merged);
    assert!(
        out.ok()
            .starts_with(&format!("merged 4 shards of {learner}")),
        "{}",
        out.stdout
    );
    let proba: &[&str] = if target == "label" { &["--proba"] } else { &[] };
    let want = predict(p, &whole, &test_csv, proba);
    let got = predict(p, &merged, &test_csv, proba);
    // The merged model holds the same estimators in the same order, so it
    // adds them up in the same order: the text is identical.
    assert_eq!(got.ok(), want.ok(), "{learner} on {name}");
    let (hw, hm) = (header(p, &whole), header(p, &merged));
    assert_eq!(hm["component"], hw["component"]);
    assert_eq!(hm["features"], hw["features"]);
    assert_eq!(hm["classes"], hw["classes"]);
    assert_eq!(hm["training"]["params"], hw["training"]["params"]);
    assert_eq!(hm["training"]["merged_from"].as_array().unwrap().len(), 4);
    // Each part's header says which part of which model it is.
    let h2 = header(p, &tmp.join("part2.tsr"));
    let rec = &h2["training"]["shard"];
    assert_eq!(
        (rec["index"].as_u64(), rec["count"].as_u64()),
        (Some(2), Some(4))
    );
    let n = rec["n_estimators"].as_u64().unwrap();
    let (a, b) = (
        rec["estimators"][0].as_u64().unwrap(),
        rec["estimators"][1].as_u64().unwrap(),
    );
    assert!(a > 0 && b > a && b < n, "{rec}");
    assert_eq!(h2["training"]["params"]["shard"], serde_json::json!([2, 4]));
    assert_eq!(h2["training"]["params"]["random_state"], 11);
}

#[test]
fn random_forest_classification_merges_to_the_whole_forest() {
    merged_equals_whole(
        "random_forest",
        "iris",
        "label",
        &["--set", "n_estimators=14"],
    );
}

#[test]
fn random_forest_regression_merges_to_the_whole_forest() {
    merged_equals_whole(
        "random_forest",
        "diabetes",
        "target",
        &["--set", "n_estimators=10", "--set", "max_depth=6"],
    );
}

#[test]
fn bagged_trees_merge_to_the_whole_ensemble() {
    // Decision trees predict probabilities: soft voting.
    merged_equals_whole(
        "bagging",
        "iris",
        "label",
        &["--set", "n_estimators=9", "--set", "max_features=0.75"],
    );
    merged_equals_whole(
        "bagging",
        "diabetes",
        "target",
        &["--set", "n_estimators=8", "--set", "max_samples=0.5"],
    );
}

#[test]
fn bad_shard_arguments() {
    let plugins = plugin_dir(PLUGINS);
    let tmp = TempDir::new("shard-args");
    let out = tmp.join("m.tsr");
    let iris = data("iris.train.csv");
    for (shard, why) in [
        ("0/4", "the shard index must be between 1 and 4, got 0"),
        ("5/4", "the shard index must be between 1 and 4, got 5"),
        ("2/0", "the shard count must be at least 1, got 0"),
        ("x", "expected I/N (shard I of N, e.g. 2/4), got `x`"),
    ] {
        train(
            plugins.path(),
            "random_forest",
            &iris,
            "label",
            &["--seed", "1", "--shard", shard],
            &out,
        )
        .fails(
            2,
            &[&format!("invalid value '{shard}' for '--shard <I/N>'"), why],
        );
    }
    train(
        plugins.path(),
        "gradient_boosting",
        &iris,
        "label",
        &["--seed", "1", "--shard", "1/2"],
        &out,
    )
    .fails(
        2,
        &[
            "error: learner `gradient_boosting` cannot train in shards: it does not declare the \
           `shard` parameter",
            "(loaded: bagging, random_forest)",
        ],
    );
    train(
        plugins.path(),
        "random_forest",
        &iris,
        "label",
        &["--shard", "1/2"],
        &out,
    )
    .fails(
        2,
        &["training in shards needs a fixed seed (--seed N, or random_state)"],
    );
    train(
        plugins.path(),
        "random_forest",
        &iris,
        "label",
        &["--seed", "1", "--set", "n_estimators=3", "--shard", "1/4"],
        &out,
    )
    .fails(
        2,
        &["`random_forest` parameter `shard`: 4 shards are more than the 3 estimators"],
    );
    train(
        plugins.path(),
        "random_forest",
        &iris,
        "label",
        &["--seed", "1", "--set", "oob_score=true", "--shard", "1/2"],
        &out,
    )
    .fails(
        2,
        &["`random_forest` parameter `oob_score`: cannot be computed in shards"],
    );
    assert!(!out.exists());
}

#[test]
fn parts_that_are_not_one_model_are_refused() {
    let plugins = plugin_dir(PLUGINS);
    let p = plugins.path();
    let tmp = TempDir::new("shard-merge");
    let iris = data("iris.train.csv");
    let base = ["--seed", "5", "--set", "n_estimators=6"];
    let parts = train_shards(p, &tmp, "random_forest", (&iris, "label"), &base, 3);
    let one = |name: &str, csv: &Path, extra: &[&str], shard: &str| {
        let out = tmp.join(name);
        let mut args = extra.to_vec();
        args.extend_from_slice(&["--shard", shard]);
        train(p, "random_forest", csv, "label", &args, &out).ok();
        out
    };
    let other_seed = one(
        "seed.tsr",
        &iris,
        &["--seed", "6", "--set", "n_estimators=6"],
        "2/3",
    );
    let other_params = one(
        "params.tsr",
        &iris,
        &[
            "--seed",
            "5",
            "--set",
            "n_estimators=6",
            "--set",
            "max_depth=3",
        ],
        "2/3",
    );
    // The same rows without the column f3.
    let lines: Vec<String> = read(&iris)
        .lines()
        .map(|l| {
            let cells: Vec<&str> = l.split(',').collect();
            format!("{},{},{},{}", cells[0], cells[1], cells[2], cells[4])
        })
        .collect();
    let narrow_csv = crate::util::write_lines(&tmp, "narrow.csv", &lines);
    let narrow = one("narrow.tsr", &narrow_csv, &base, "2/3");
    // The same columns, one row fewer: the header and 119 rows.
    let rows: Vec<String> = read(&iris).lines().take(120).map(String::from).collect();
    let fewer_csv = crate::util::write_lines(&tmp, "fewer.csv", &rows);
    let fewer = one("fewer.tsr", &fewer_csv, &base, "2/3");
    let whole = tmp.join("whole.tsr");
    train(p, "random_forest", &iris, "label", &base, &whole).ok();
    let out = tmp.join("merged.tsr");
    let (p1, p2, p3) = (&parts[0], &parts[1], &parts[2]);
    let name = |x: &Path| x.display().to_string();
    for (given, pieces) in [
        (
            vec![p1.clone(), p3.clone()],
            vec!["shard 2 of 3 is missing (given: 1, 3); every shard is needed".to_string()],
        ),
        (
            vec![p1.clone(), p2.clone(), p2.clone(), p3.clone()],
            vec![format!("{} and {} are both shard 2/3", name(p2), name(p2))],
        ),
        (
            vec![p1.clone(), other_seed.clone(), p3.clone()],
            vec![format!(
                "{} and {} are not shards of one model: seed (random_state) 6 and 5",
                name(&other_seed),
                name(p1)
            )],
        ),
        (
            vec![p1.clone(), other_params.clone(), p3.clone()],
            vec![format!(
                "{} and {} are not shards of one model: parameters differ: `max_depth` 3 and unset",
                name(&other_params),
                name(p1)
            )],
        ),
        (
            vec![p1.clone(), narrow.clone(), p3.clone()],
            vec![format!(
                "{} and {} are not shards of one model: feature columns [f0, f1, f2] and [f0, f1, \
                 f2, f3]",
                name(&narrow),
                name(p1)
            )],
        ),
        (
            vec![p1.clone(), fewer.clone(), p3.clone()],
            vec![format!(
                "{} and {} are not shards of one model: trained on different data (119 rows",
                name(&fewer),
                name(p1)
            )],
        ),
        (
            vec![p1.clone(), whole.clone(), p3.clone()],
            vec![format!(
                "{} is not a shard: it was not trained with --shard",
                name(&whole)
            )],
        ),
    ] {
        let pieces: Vec<&str> = pieces.iter().map(String::as_str).collect();
        merge(p, &given, &out).fails(2, &pieces);
        assert!(!out.exists(), "{pieces:?}: nothing is written");
    }
    // What is left is right.
    merge(p, &parts, &out).ok();
    assert!(out.exists());
}
