//! `tessera import` through the real binary and the boosting plugin: every
//! importable LightGBM and XGBoost fixture of tests/fixtures/import (made by
//! make_models.py) predicts what the library predicted, row by row; `inspect`
//! shows where the model came from; `--classes` names the classes; `eval`
//! scores an imported model as its own predictions say it should; and every
//! refused or broken input is one sentence naming the file and the place,
//! exit code 2, with nothing written.
//!
//! `predict` prints probabilities and regression values as `f32` in their
//! shortest round-trip form (up to 9 significant digits), which is ample for
//! the 1e-5 tolerance used here and reads back as the exact `f32` the engine
//! produced.

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::util::{Run, TempDir, eval_json, plugin_dir, predict, read, repo, s, tessera};

const PLUGINS: &[&str] = &["tessera_boosting"];

/// Largest difference allowed between tessera's and the library's
/// probabilities or regression values.
const TOL: f64 = 1e-5;

/// The eight feature names of every fixture (the header of rows.csv).
const FEATURES: [&str; 8] = [
    "age",
    "height",
    "weight",
    "blood_pressure",
    "income",
    "score",
    "grade",
    "visits",
];

fn fixture(name: &str) -> PathBuf {
    repo().join("tests/fixtures/import").join(name)
}

/// One importable fixture and what tessera should make of it.
struct Case {
    /// Stem of the model file and of `<stem>.expected.csv`.
    stem: &'static str,
    from: &'static str,
    /// The objective as the library names it.
    objective: &'static str,
    n_trees: usize,
    /// 0 for regression.
    n_classes: usize,
    /// Saved with feature names (else XGBoost's `f0`, `f1`, ...).
    named: bool,
    link: &'static str,
    combine: &'static str,
}

impl Case {
    fn model(&self) -> PathBuf {
        let ext = if self.from == "lightgbm" {
            "txt"
        } else {
            "json"
        };
        fixture(&format!("{}.{ext}", self.stem))
    }

    fn features(&self) -> Vec<String> {
        if self.named {
            FEATURES.iter().map(|f| f.to_string()).collect()
        } else {
            (0..FEATURES.len()).map(|i| format!("f{i}")).collect()
        }
    }

    fn classes(&self) -> Vec<String> {
        (0..self.n_classes).map(|c| c.to_string()).collect()
    }
}

const LIGHTGBM_BINARY: Case = Case {
    stem: "lightgbm_binary",
    from: "lightgbm",
    objective: "binary",
    n_trees: 15,
    n_classes: 2,
    named: true,
    link: "sigmoid",
    combine: "sum",
};
const LIGHTGBM_MULTICLASS: Case = Case {
    stem: "lightgbm_multiclass",
    from: "lightgbm",
    objective: "multiclass",
    n_trees: 24,
    n_classes: 3,
    named: true,
    link: "softmax",
    combine: "sum",
};
const LIGHTGBM_REGRESSION: Case = Case {
    stem: "lightgbm_regression",
    from: "lightgbm",
    objective: "regression",
    n_trees: 15,
    n_classes: 0,
    named: true,
    link: "identity",
    combine: "sum",
};
const LIGHTGBM_NO_MISSING: Case = Case {
    stem: "lightgbm_no_missing",
    from: "lightgbm",
    objective: "binary",
    n_trees: 10,
    n_classes: 2,
    named: true,
    link: "sigmoid",
    combine: "sum",
};
/// Random-forest mode: the prediction is the mean of the trees.
const LIGHTGBM_RF: Case = Case {
    stem: "lightgbm_rf",
    from: "lightgbm",
    objective: "regression",
    n_trees: 10,
    n_classes: 0,
    named: true,
    link: "identity",
    combine: "mean",
};
const XGBOOST_BINARY: Case = Case {
    stem: "xgboost_binary",
    from: "xgboost",
    objective: "binary:logistic",
    n_trees: 12,
    n_classes: 2,
    named: true,
    link: "sigmoid",
    combine: "sum",
};
const XGBOOST_MULTICLASS: Case = Case {
    stem: "xgboost_multiclass",
    from: "xgboost",
    objective: "multi:softprob",
    n_trees: 24,
    n_classes: 3,
    named: true,
    link: "softmax",
    combine: "sum",
};
const XGBOOST_REGRESSION: Case = Case {
    stem: "xgboost_regression",
    from: "xgboost",
    objective: "reg:squarederror",
    n_trees: 15,
    n_classes: 0,
    named: false,
    link: "identity",
    combine: "sum",
};
/// DART: each tree scaled by its `weight_drop`.
const XGBOOST_DART: Case = Case {
    stem: "xgboost_dart",
    from: "xgboost",
    objective: "reg:pseudohubererror",
    n_trees: 12,
    n_classes: 0,
    named: false,
    link: "identity",
    combine: "sum",
};

/// Runs `tessera import --from <from> <model> --out <out> <extra..>`.
fn import(plugins: &Path, from: &str, model: &Path, out: &Path, extra: &[&str]) -> Run {
    let mut args = vec!["import", "--from", from, s(model), "--out", s(out)];
    args.extend_from_slice(extra);
    tessera(plugins, &args)
}

/// The lines of rows.csv, header first, with the header renamed to `names`.
fn rows_lines(names: &[String]) -> Vec<String> {
    let mut lines: Vec<String> = read(&fixture("rows.csv"))
        .lines()
        .map(str::to_string)
        .collect();
    assert_eq!(lines[0], FEATURES.join(","), "rows.csv header");
    lines[0] = names.join(",");
    lines
}

fn write_lines(path: &Path, lines: &[String]) {
    std::fs::write(path, lines.join("\n") + "\n").unwrap();
}

/// The `pred_<k>` columns of `<stem>.expected.csv`, one vector per row.
fn expected(stem: &str) -> Vec<Vec<f64>> {
    let text = read(&fixture(&format!("{stem}.expected.csv")));
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let cols: Vec<usize> = header
        .iter()
        .enumerate()
        .filter(|(_, h)| h.starts_with("pred_"))
        .map(|(i, _)| i)
        .collect();
    assert!(!cols.is_empty(), "{stem}.expected.csv has no pred_ column");
    lines
        .map(|l| {
            let cells: Vec<&str> = l.split(',').collect();
            assert_eq!(cells.len(), header.len(), "{stem}.expected.csv: {l}");
            cols.iter()
                .map(|&c| cells[c].parse::<f64>().unwrap())
                .collect()
        })
        .collect()
}

/// The library's class probabilities of one row: `pred_0` is the probability
/// of class 1 for binary models.
fn expected_proba(pred: &[f64], n_classes: usize) -> Vec<f64> {
    if n_classes == 2 && pred.len() == 1 {
        vec![1.0 - pred[0], pred[0]]
    } else {
        assert_eq!(pred.len(), n_classes);
        pred.to_vec()
    }
}

/// The class with the highest probability, when no other is within `gap`
/// of it.
fn clear_argmax(p: &[f64], gap: f64) -> Option<usize> {
    let best = (0..p.len()).fold(0, |b, i| if p[i] > p[b] { i } else { b });
    p.iter()
        .enumerate()
        .all(|(i, &v)| i == best || p[best] - v > gap)
        .then_some(best)
}

/// `predict` output: the header and, per row, the label and the other
/// cells as numbers.
struct Predictions {
    header: Vec<String>,
    labels: Vec<String>,
    values: Vec<Vec<f64>>,
}

fn parse_predictions(text: &str) -> Predictions {
    let mut lines = text.lines();
    let header: Vec<String> = lines
        .next()
        .expect("predict wrote nothing")
        .split(',')
        .map(str::to_string)
        .collect();
    let (mut labels, mut values) = (Vec::new(), Vec::new());
    for l in lines {
        let cells: Vec<&str> = l.split(',').collect();
        assert_eq!(cells.len(), header.len(), "prediction row {l:?}");
        labels.push(cells[0].to_string());
        values.push(
            cells[1..]
                .iter()
                .map(|c| {
                    // Written as f32: it must read back as one exactly.
                    let v = c.parse::<f32>().unwrap_or_else(|_| panic!("cell {c:?}"));
                    f64::from(v)
                })
                .collect(),
        );
    }
    Predictions {
        header,
        labels,
        values,
    }
}

/// Runs `predict` (with `--proba` for classifiers) on `data` into
/// `dir/<name>` and returns the text written.
fn predict_text(
    plugins: &Path,
    model: &Path,
    data: &Path,
    proba: bool,
    extra: &[&str],
    out: &Path,
) -> String {
    let mut args: Vec<&str> = Vec::new();
    if proba {
        args.push("--proba");
    }
    args.extend_from_slice(extra);
    args.extend_from_slice(&["--out", s(out)]);
    predict(plugins, model, data, &args).ok();
    read(out)
}

/// Checks `got` (predict output for the rows whose expected predictions are
/// `want`) against the library's predictions and labels; `classes` are the
/// class labels in index order (empty for regression). Returns the largest
/// difference.
fn compare(
    case: &Case,
    what: &str,
    got: &Predictions,
    want: &[Vec<f64>],
    classes: &[String],
) -> f64 {
    assert_eq!(
        got.labels.len(),
        want.len(),
        "{}: {what}: row count",
        case.stem
    );
    let mut worst = 0.0f64;
    for (r, (w, (label, vals))) in want
        .iter()
        .zip(got.labels.iter().zip(&got.values))
        .enumerate()
    {
        if case.n_classes == 0 {
            assert!(vals.is_empty());
            let v: f64 = label
                .parse::<f32>()
                .map(f64::from)
                .unwrap_or_else(|_| panic!("{}: {what}: row {r}: prediction {label:?}", case.stem));
            let d = (v - w[0]).abs();
            worst = worst.max(d);
            assert!(
                d <= TOL,
                "{}: {what}: row {r}: tessera predicts {v}, {} {}",
                case.stem,
                case.from,
                w[0]
            );
            continue;
        }
        let p = expected_proba(w, case.n_classes);
        assert_eq!(vals.len(), case.n_classes, "{}: {what}: row {r}", case.stem);
        for (c, (&g, &e)) in vals.iter().zip(&p).enumerate() {
            let d = (g - e).abs();
            worst = worst.max(d);
            assert!(
                d <= TOL,
                "{}: {what}: row {r}: P(class {c}) is {g}, {} says {e}",
                case.stem,
                case.from
            );
        }
        let sum: f64 = vals.iter().sum();
        assert!(
            (sum - 1.0).abs() < 1e-5,
            "{}: {what}: row {r}: probabilities sum to {sum}",
            case.stem
        );
        // The label is the most probable class, as the library decides it
        // (rows where two classes are within the tolerance are ambiguous).
        if let Some(c) = clear_argmax(&p, 2.0 * TOL) {
            assert_eq!(
                *label, classes[c],
                "{}: {what}: row {r}: label {label}, {} predicts class {c} ({p:?})",
                case.stem, case.from
            );
        }
        // And it agrees with tessera's own probabilities.
        if let Some(c) = clear_argmax(vals, 1e-6) {
            assert_eq!(*label, classes[c], "{}: {what}: row {r}", case.stem);
        }
    }
    worst
}

/// Imports `case`, checks the import summary and `inspect --json`, then
/// predicts rows.csv in one go (one thread and several), in blocks smaller
/// than the engine's eight-row lanes (its one-row path), and compares every
/// row with the library's predictions.
fn check_fixture(case: &Case) {
    let plugins = plugin_dir(PLUGINS);
    let tmp = TempDir::new(&format!("import-{}", case.stem));
    let model = tmp.join("m.tsr");

    // The import itself.
    let summary = import(
        plugins.path(),
        case.from,
        &case.model(),
        &model,
        &["--json"],
    );
    let summary: Value = serde_json::from_str(summary.ok().trim()).unwrap();
    assert_eq!(summary["from"], case.from, "{summary}");
    assert_eq!(summary["objective"], case.objective, "{summary}");
    assert_eq!(summary["n_trees"], case.n_trees, "{summary}");
    assert_eq!(summary["n_features"], FEATURES.len(), "{summary}");
    assert_eq!(summary["out"], s(&model), "{summary}");
    let task = if case.n_classes > 0 {
        "classification"
    } else {
        "regression"
    };
    assert_eq!(summary["task"], task, "{summary}");
    assert_eq!(summary["classes"], serde_json::json!(case.classes()));
    let bytes = std::fs::metadata(&model).unwrap().len();
    assert_eq!(summary["bytes"], bytes, "{summary}");

    // What inspect shows: the header names the boosting plugin's learner,
    // the origin and the trees.
    let inspect: Value =
        serde_json::from_str(tessera(plugins.path(), &["inspect", "--json", s(&model)]).ok())
            .unwrap();
    let h = &inspect["header"];
    assert_eq!(h["component"], "gradient_boosting", "{inspect}");
    assert_eq!(h["plugin"], "boosting", "{inspect}");
    assert_eq!(h["task"], task, "{inspect}");
    assert_eq!(h["classes"], serde_json::json!(case.classes()));
    assert_eq!(h["features"], serde_json::json!(case.features()));
    assert_eq!(h["target"], "label", "{inspect}");
    assert_eq!(h["training"]["imported_from"], case.from, "{inspect}");
    assert_eq!(h["training"]["objective"], case.objective, "{inspect}");
    assert_eq!(h["training"]["source"], s(&case.model()), "{inspect}");
    let sm = &inspect["summary"];
    assert_eq!(sm["model"], "tree_ensemble", "{inspect}");
    assert_eq!(sm["n_trees"], case.n_trees, "{inspect}");
    assert_eq!(sm["n_features"], FEATURES.len(), "{inspect}");
    assert_eq!(sm["link"], case.link, "{inspect}");
    assert_eq!(sm["combine"], case.combine, "{inspect}");
    assert_eq!(sm["origin"]["imported_from"], case.from, "{inspect}");
    assert_eq!(sm["origin"]["objective"], case.objective, "{inspect}");
    if case.n_classes > 0 {
        assert_eq!(sm["n_classes"], case.n_classes, "{inspect}");
    } else {
        assert!(sm["n_classes"].is_null(), "{inspect}");
    }
    let text = tessera(plugins.path(), &["inspect", s(&model)])
        .ok()
        .to_string();
    for piece in ["gradient_boosting", case.from, case.objective] {
        assert!(text.contains(piece), "inspect lacks {piece:?}:\n{text}");
    }

    // Every row of rows.csv, at once.
    let want = expected(case.stem);
    let lines = rows_lines(&case.features());
    assert_eq!(lines.len() - 1, want.len(), "rows.csv vs {}", case.stem);
    let data = tmp.join("rows.csv");
    write_lines(&data, &lines);
    let proba = case.n_classes > 0;
    let one = predict_text(
        plugins.path(),
        &model,
        &data,
        proba,
        &["--threads", "1"],
        &tmp.join("p1.csv"),
    );
    let got = parse_predictions(&one);
    let mut header = vec!["prediction".to_string()];
    if proba {
        header.extend(case.classes().iter().map(|c| format!("proba_{c}")));
    }
    assert_eq!(got.header, header);
    let worst = compare(case, "all rows", &got, &want, &case.classes());
    eprintln!(
        "{}: largest difference from {} {worst:.3e}",
        case.stem, case.from
    );

    // Several threads split the rows: the same bytes.
    let four = predict_text(
        plugins.path(),
        &model,
        &data,
        proba,
        &["--threads", "4"],
        &tmp.join("p4.csv"),
    );
    assert_eq!(one, four, "{}: 1 and 4 threads disagree", case.stem);

    // Blocks of fewer than eight rows take the engine's one-row path; the
    // rows cycle through block sizes 1..=7.
    let mut start = 1;
    let mut size = 1;
    while start < lines.len() {
        let end = (start + size).min(lines.len());
        let mut block = vec![lines[0].clone()];
        block.extend_from_slice(&lines[start..end]);
        let path = tmp.join("block.csv");
        write_lines(&path, &block);
        let text = predict_text(
            plugins.path(),
            &model,
            &path,
            proba,
            &[],
            &tmp.join("pb.csv"),
        );
        let got = parse_predictions(&text);
        compare(
            case,
            &format!("rows {start}..{end} alone"),
            &got,
            &want[start - 1..end - 1],
            &case.classes(),
        );
        // The same numbers as in the full run, to the bit.
        let full: Vec<&str> = one.lines().skip(start).take(end - start).collect();
        let part: Vec<&str> = text.lines().skip(1).collect();
        assert_eq!(
            part, full,
            "{}: rows {start}..{end} alone differ from the full run",
            case.stem
        );
        start = end;
        size = size % 7 + 1;
    }
}

#[test]
fn lightgbm_binary_predicts_as_lightgbm() {
    check_fixture(&LIGHTGBM_BINARY);
}

#[test]
fn lightgbm_multiclass_predicts_as_lightgbm() {
    check_fixture(&LIGHTGBM_MULTICLASS);
}

#[test]
fn lightgbm_regression_predicts_as_lightgbm() {
    check_fixture(&LIGHTGBM_REGRESSION);
}

#[test]
fn lightgbm_without_missing_values_predicts_as_lightgbm() {
    check_fixture(&LIGHTGBM_NO_MISSING);
}

#[test]
fn lightgbm_random_forest_predicts_the_mean_of_its_trees() {
    check_fixture(&LIGHTGBM_RF);
}

#[test]
fn xgboost_binary_predicts_as_xgboost() {
    check_fixture(&XGBOOST_BINARY);
}

#[test]
fn xgboost_multiclass_predicts_as_xgboost() {
    check_fixture(&XGBOOST_MULTICLASS);
}

#[test]
fn xgboost_regression_without_feature_names_predicts_as_xgboost() {
    check_fixture(&XGBOOST_REGRESSION);
}

#[test]
fn xgboost_dart_predicts_as_xgboost() {
    check_fixture(&XGBOOST_DART);
}

#[test]
fn an_unnamed_xgboost_model_wants_columns_f0_f1() {
    // Saved without feature names, the model's columns are XGBoost's
    // defaults; rows.csv's named columns are not among them.
    let plugins = plugin_dir(PLUGINS);
    let tmp = TempDir::new("import-unnamed");
    let model = tmp.join("m.tsr");
    import(
        plugins.path(),
        "xgboost",
        &XGBOOST_REGRESSION.model(),
        &model,
        &[],
    )
    .ok();
    let out = tmp.join("p.csv");
    let run = predict(
        plugins.path(),
        &model,
        &fixture("rows.csv"),
        &["--out", s(&out)],
    );
    run.fails(2, &["f0"]);
    assert!(!out.exists());
}

/// `--classes` names the classes in class-index order: they head the
/// probability columns, label the predictions and the header, and `eval`
/// reads them in the target column.
#[test]
fn classes_name_the_labels() {
    let plugins = plugin_dir(PLUGINS);
    let tmp = TempDir::new("import-classes");
    let data = tmp.join("rows.csv");
    write_lines(&data, &rows_lines(&LIGHTGBM_BINARY.features()));
    for (case, names) in [
        (&LIGHTGBM_BINARY, &["a", "b"][..]),
        (&XGBOOST_MULTICLASS, &["low", "mid", "high"][..]),
    ] {
        let model = tmp.join(&format!("{}.tsr", case.stem));
        let list = names.join(",");
        let summary = import(
            plugins.path(),
            case.from,
            &case.model(),
            &model,
            &["--classes", &list, "--json"],
        );
        let summary: Value = serde_json::from_str(summary.ok().trim()).unwrap();
        assert_eq!(summary["classes"], serde_json::json!(names), "{summary}");
        let inspect: Value =
            serde_json::from_str(tessera(plugins.path(), &["inspect", "--json", s(&model)]).ok())
                .unwrap();
        assert_eq!(inspect["header"]["classes"], serde_json::json!(names));

        let classes: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        let text = predict_text(plugins.path(), &model, &data, true, &[], &tmp.join("p.csv"));
        let got = parse_predictions(&text);
        let mut header = vec!["prediction".to_string()];
        header.extend(names.iter().map(|c| format!("proba_{c}")));
        assert_eq!(got.header, header);
        assert!(
            got.labels.iter().all(|l| classes.contains(l)),
            "{}: labels outside {classes:?}",
            case.stem
        );
        compare(case, "named classes", &got, &expected(case.stem), &classes);

        // Without --proba: the labels alone, the same ones.
        let plain = predict_text(
            plugins.path(),
            &model,
            &data,
            false,
            &[],
            &tmp.join("plain.csv"),
        );
        let plain = parse_predictions(&plain);
        assert_eq!(plain.header, ["prediction"]);
        assert_eq!(plain.labels, got.labels);
    }
}

#[test]
fn a_wrong_number_of_classes_is_refused() {
    let plugins = plugin_dir(PLUGINS);
    let tmp = TempDir::new("import-wrong-classes");
    let out = tmp.join("m.tsr");
    for (case, list, named, has) in [
        (&LIGHTGBM_BINARY, "a,b,c", 3, 2),
        (&LIGHTGBM_BINARY, "a", 1, 2),
        (&XGBOOST_MULTICLASS, "a,b", 2, 3),
        (&LIGHTGBM_REGRESSION, "a,b", 2, 0),
    ] {
        let run = import(
            plugins.path(),
            case.from,
            &case.model(),
            &out,
            &["--classes", list],
        );
        let file = case.model();
        let has = if has == 0 {
            "the model is a regression".to_string()
        } else {
            format!("the model has {has} classes")
        };
        run.fails(
            2,
            &[
                s(&file),
                "--classes",
                &format!("{named} class labels"),
                &has,
            ],
        );
        one_sentence(&run);
        assert!(
            !out.exists(),
            "{}: --classes {list} wrote a model",
            case.stem
        );
    }
}

/// The error message is one line, `error: ...`, and no panic.
#[track_caller]
fn one_sentence(run: &Run) {
    let err = run.stderr.trim_end();
    assert!(
        err.starts_with("error: ") && !err.contains('\n'),
        "not one sentence:\n{}",
        run.stderr
    );
    assert!(!run.stderr.contains("panicked"), "{}", run.stderr);
}

/// Names of the entries of a folder, sorted.
fn entries(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

/// Imports `model` into a folder of its own, expects exit code 2 with one
/// sentence holding every piece (and the model's path), and checks that
/// nothing was written: no `--out`, no temporary file, and an existing
/// `--out` left as it was. Returns the message.
#[track_caller]
fn refused(plugins: &Path, from: &str, model: &Path, pieces: &[&str]) -> String {
    let tmp = TempDir::new("import-refused");
    let out = tmp.join("m.tsr");
    let run = import(plugins, from, model, &out, &[]);
    let mut all = vec![s(model)];
    all.extend_from_slice(pieces);
    run.fails(2, &all);
    one_sentence(&run);
    assert!(run.stdout.is_empty(), "{}", run.stdout);
    assert!(!out.exists(), "a failed import wrote {}", out.display());
    assert!(entries(tmp.path()).is_empty(), "{:?}", entries(tmp.path()));
    // An existing file at --out survives a failed import untouched.
    std::fs::write(&out, b"keep me").unwrap();
    let again = import(plugins, from, model, &out, &[]);
    assert_eq!(again.code, Some(2), "{}", again.stderr);
    assert_eq!(std::fs::read(&out).unwrap(), b"keep me");
    assert_eq!(entries(tmp.path()), ["m.tsr"]);
    run.stderr
}

/// The 1-based number of the first line of `text` that starts with
/// `prefix` at or after line `from`.
fn line_of(text: &str, prefix: &str, from: usize) -> usize {
    text.lines()
        .enumerate()
        .skip(from - 1)
        .find(|(_, l)| l.starts_with(prefix))
        .map(|(i, _)| i + 1)
        .unwrap_or_else(|| panic!("no line starts with {prefix:?}"))
}

#[test]
fn lightgbm_categorical_splits_are_refused_naming_the_feature() {
    let plugins = plugin_dir(PLUGINS);
    let model = fixture("lightgbm_categorical.txt");
    let text = read(&model);
    // The first categorical split is in tree 1; the message points at that
    // tree's decision_type line.
    let line = line_of(&text, "decision_type=", line_of(&text, "Tree=1", 1));
    refused(
        plugins.path(),
        "lightgbm",
        &model,
        &[
            &format!("line {line}:"),
            "feature `grade`",
            "categorical",
            "not supported",
        ],
    );
}

#[test]
fn lightgbm_zero_as_missing_against_the_threshold_is_refused() {
    // make_models.py keeps this model to be refused: a split that treats
    // zero as missing and sends it against its comparison.
    let plugins = plugin_dir(PLUGINS);
    let model = fixture("lightgbm_zero_as_missing.txt");
    let text = read(&model);
    let line = line_of(&text, "decision_type=", line_of(&text, "Tree=0", 1));
    refused(
        plugins.path(),
        "lightgbm",
        &model,
        &[
            &format!("line {line}:"),
            "feature `height`",
            "zero_as_missing",
        ],
    );
}

/// The line number in `line N:` of an import error.
fn reported_line(stderr: &str) -> usize {
    let at = stderr.find("line ").expect("no line number") + 5;
    let digits: String = stderr[at..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().expect("no line number")
}

#[test]
fn a_truncated_lightgbm_file_is_refused_at_its_end() {
    let plugins = plugin_dir(PLUGINS);
    let tmp = TempDir::new("import-truncated");
    let text = read(&fixture("lightgbm_binary.txt"));
    let end = text.find("end of trees").unwrap();
    // Cut in the middle of a line of tree 3, and right after a whole line.
    let tree3 = text.find("Tree=3").unwrap();
    let leaf_line = tree3 + text[tree3..].find("leaf_value=").unwrap();
    let mid_line = leaf_line + 5;
    let after_line = leaf_line + text[leaf_line..].find('\n').unwrap() + 1;
    // And at evenly spaced places from the header to `end of trees`.
    let mut cuts = vec![mid_line, after_line, end, end + 5];
    cuts.extend((1..=20).map(|k| 10 + k * (end - 10) / 21));
    for cut in cuts {
        let part = &text[..cut];
        let path = tmp.join(&format!("cut{cut}.txt"));
        std::fs::write(&path, part).unwrap();
        let err = refused(
            plugins.path(),
            "lightgbm",
            &path,
            &["(the file is truncated)"],
        );
        // The place is where the text stops: its last line that is not
        // blank, or the one after when the cut falls between lines.
        let n_lines = part
            .lines()
            .enumerate()
            .filter(|(_, l)| !l.trim().is_empty())
            .last()
            .map_or(0, |(i, _)| i + 1);
        let line = reported_line(&err);
        assert!(
            line == n_lines || line == n_lines + 1,
            "cut at byte {cut} (last line {n_lines}) reported line {line}: {err}"
        );
        if cut == mid_line {
            assert_eq!(line, n_lines, "{err}");
            assert!(err.contains("in the middle of a line"), "{err}");
        }
        if cut == after_line {
            assert_eq!(line, n_lines + 1, "{err}");
            assert!(err.contains("before `end of trees`"), "{err}");
        }
    }
    // Whatever follows `end of trees` (importances, parameters) is not
    // needed: cut there, the model still imports.
    let after_trees = end + text[end..].find('\n').unwrap() + 1;
    let path = tmp.join("whole_trees.txt");
    std::fs::write(&path, &text[..after_trees]).unwrap();
    import(plugins.path(), "lightgbm", &path, &tmp.join("m.tsr"), &[]).ok();
}

#[test]
fn an_empty_or_foreign_lightgbm_file_is_refused_at_line_1() {
    let plugins = plugin_dir(PLUGINS);
    let tmp = TempDir::new("import-foreign");
    let empty = tmp.join("empty.txt");
    std::fs::write(&empty, "").unwrap();
    refused(plugins.path(), "lightgbm", &empty, &["line 1:", "empty"]);
    // XGBoost's JSON given as LightGBM.
    refused(
        plugins.path(),
        "lightgbm",
        &fixture("xgboost_binary.json"),
        &["line 1:", "looks like JSON", "`tree`"],
    );
}

#[test]
fn an_xgboost_file_that_is_not_json_is_refused_with_line_and_column() {
    let plugins = plugin_dir(PLUGINS);
    let tmp = TempDir::new("import-not-json");
    // A LightGBM model given as XGBoost: the first line is `tree`.
    refused(
        plugins.path(),
        "xgboost",
        &fixture("lightgbm_binary.txt"),
        &["not JSON", "line 1 column"],
    );
    // JSON cut short.
    let text = read(&fixture("xgboost_binary.json"));
    let cut = tmp.join("cut.json");
    std::fs::write(&cut, &text[..text.len() / 2]).unwrap();
    refused(
        plugins.path(),
        "xgboost",
        &cut,
        &[
            "not JSON",
            "EOF",
            &format!("line 1 column {}", text.len() / 2),
        ],
    );
    // Text over several lines: the line is counted.
    let prose = tmp.join("prose.json");
    std::fs::write(&prose, "{\n  \"learner\": {\n    oops\n  }\n}\n").unwrap();
    refused(
        plugins.path(),
        "xgboost",
        &prose,
        &["not JSON", "line 3 column"],
    );
}

/// xgboost_binary.json with `edit` applied, written to `dir/name`.
fn edited_xgboost(dir: &TempDir, name: &str, edit: impl FnOnce(&mut Value)) -> PathBuf {
    let mut v: Value = serde_json::from_str(&read(&fixture("xgboost_binary.json"))).unwrap();
    edit(&mut v);
    let p = dir.join(name);
    std::fs::write(&p, serde_json::to_string(&v).unwrap()).unwrap();
    p
}

#[test]
fn a_malformed_xgboost_model_is_refused_at_its_json_path() {
    let plugins = plugin_dir(PLUGINS);
    let tmp = TempDir::new("import-xgb-bad");
    // Valid JSON, not a model.
    let other = tmp.join("other.json");
    std::fs::write(&other, "{\"trees\": []}").unwrap();
    refused(plugins.path(), "xgboost", &other, &["learner: missing"]);

    let trees = "/learner/gradient_booster/model/trees";
    let bad = edited_xgboost(&tmp, "bad_condition.json", |v| {
        *v.pointer_mut(&format!("{trees}/3/split_conditions/0"))
            .unwrap() = Value::from("oops");
    });
    refused(
        plugins.path(),
        "xgboost",
        &bad,
        &["learner.gradient_booster.model.trees[3].split_conditions[0]: expected a number"],
    );

    let cut = edited_xgboost(&tmp, "no_tree_info.json", |v| {
        v.pointer_mut("/learner/gradient_booster/model")
            .unwrap()
            .as_object_mut()
            .unwrap()
            .remove("tree_info");
    });
    refused(
        plugins.path(),
        "xgboost",
        &cut,
        &["learner.gradient_booster.model.tree_info: missing"],
    );

    // A categorical split on the root of tree 2: the feature is named.
    let mut feature = String::new();
    let cat = edited_xgboost(&tmp, "categorical.json", |v| {
        let t = v.pointer_mut(&format!("{trees}/2")).unwrap();
        let f = t["split_indices"][0].as_u64().unwrap() as usize;
        feature = FEATURES[f].to_string();
        t["split_type"][0] = Value::from(1);
    });
    refused(
        plugins.path(),
        "xgboost",
        &cat,
        &[
            "learner.gradient_booster.model.trees[2].split_type[0]",
            &format!("feature `{feature}`"),
            "categorical",
        ],
    );

    let poisson = edited_xgboost(&tmp, "poisson.json", |v| {
        v["learner"]["objective"]["name"] = Value::from("count:poisson");
    });
    refused(
        plugins.path(),
        "xgboost",
        &poisson,
        &["learner.objective.name", "count:poisson", "not supported"],
    );
}

#[test]
fn a_missing_file_is_refused() {
    let plugins = plugin_dir(PLUGINS);
    let tmp = TempDir::new("import-missing");
    for from in ["lightgbm", "xgboost"] {
        let missing = tmp.join("no/such/model.txt");
        refused(plugins.path(), from, &missing, &["cannot read"]);
    }
}

#[test]
fn without_the_boosting_plugin_import_says_which_is_needed() {
    let plugins = plugin_dir(&["tessera_forest"]);
    let tmp = TempDir::new("import-no-plugin");
    let out = tmp.join("m.tsr");
    let run = import(
        plugins.path(),
        "lightgbm",
        &LIGHTGBM_BINARY.model(),
        &out,
        &[],
    );
    run.fails(2, &["gradient_boosting"]);
    one_sentence(&run);
    assert!(!out.exists());
}

// ---- eval on labelled rows -------------------------------------------------

/// sklearn's metrics, as tessera computes them.
fn accuracy(y: &[usize], pred: &[usize]) -> f64 {
    y.iter().zip(pred).filter(|(a, b)| a == b).count() as f64 / y.len() as f64
}

fn log_loss(y: &[usize], proba: &[Vec<f64>]) -> f64 {
    y.iter()
        .zip(proba)
        .map(|(&c, p)| {
            let sum: f64 = p.iter().sum();
            -(p[c] / sum).clamp(1e-15, 1.0 - 1e-15).ln()
        })
        .sum::<f64>()
        / y.len() as f64
}

/// Mann-Whitney U with ties counted as half.
fn roc_auc(y: &[usize], score: &[f64]) -> f64 {
    let (mut pairs, mut u) = (0.0f64, 0.0f64);
    for (i, &yi) in y.iter().enumerate() {
        for (j, &yj) in y.iter().enumerate() {
            if yi == 1 && yj == 0 {
                pairs += 1.0;
                if score[i] > score[j] {
                    u += 1.0;
                } else if score[i] == score[j] {
                    u += 0.5;
                }
            }
        }
    }
    u / pairs
}

/// (rmse, mae, r2).
fn regression_metrics(y: &[f64], pred: &[f64]) -> (f64, f64, f64) {
    let n = y.len() as f64;
    let mean = y.iter().sum::<f64>() / n;
    let (mut se, mut ae, mut tot) = (0.0, 0.0, 0.0);
    for (&t, &p) in y.iter().zip(pred) {
        se += (t - p) * (t - p);
        ae += (t - p).abs();
        tot += (t - mean) * (t - mean);
    }
    ((se / n).sqrt(), ae / n, 1.0 - se / tot)
}

#[track_caller]
fn close(what: &str, got: &Value, want: f64, tol: f64) {
    let g = got
        .as_f64()
        .unwrap_or_else(|| panic!("{what}: {got} is not a number"));
    assert!(
        (g - want).abs() <= tol,
        "{what}: eval says {g}, expected {want} (±{tol})"
    );
}

/// Imports `case` (with `--classes` when `names` is given), writes rows.csv
/// with a target column `outcome` derived from the library's predictions,
/// and checks that `eval --json` gives the metrics that tessera's own
/// `predict` output implies (to rounding) and the ones the library's
/// predictions imply (to the tolerance).
fn check_eval(case: &Case, names: Option<&[&str]>) {
    let plugins = plugin_dir(PLUGINS);
    let tmp = TempDir::new(&format!("import-eval-{}", case.stem));
    let model = tmp.join("m.tsr");
    let mut extra = vec!["--target", "outcome"];
    let list = names.map(|n| n.join(","));
    if let Some(l) = &list {
        extra.extend_from_slice(&["--classes", l]);
    }
    import(plugins.path(), case.from, &case.model(), &model, &extra).ok();
    let inspect: Value =
        serde_json::from_str(tessera(plugins.path(), &["inspect", "--json", s(&model)]).ok())
            .unwrap();
    assert_eq!(inspect["header"]["target"], "outcome");

    let want = expected(case.stem);
    let lines = rows_lines(&case.features());
    let plain = tmp.join("rows.csv");
    write_lines(&plain, &lines);
    let ours = parse_predictions(&predict_text(
        plugins.path(),
        &model,
        &plain,
        case.n_classes > 0,
        &[],
        &tmp.join("p.csv"),
    ));

    let mut labelled = vec![format!("{},outcome", lines[0])];
    let metrics;
    if case.n_classes > 0 {
        let classes: Vec<String> = match names {
            Some(n) => n.iter().map(|c| c.to_string()).collect(),
            None => case.classes(),
        };
        let k = case.n_classes;
        let theirs: Vec<Vec<f64>> = want.iter().map(|w| expected_proba(w, k)).collect();
        let their_pred: Vec<usize> = theirs
            .iter()
            .map(|p| clear_argmax(p, 2.0 * TOL).expect("a near tie in the expected classes"))
            .collect();
        // The truth: the library's class, except every fifth row, which is
        // the next class (so accuracy is 0.8 and log loss is not tiny).
        let y: Vec<usize> = their_pred
            .iter()
            .enumerate()
            .map(|(i, &c)| if i % 5 == 0 { (c + 1) % k } else { c })
            .collect();
        for (l, &c) in lines[1..].iter().zip(&y) {
            labelled.push(format!("{l},{}", classes[c]));
        }
        let data = tmp.join("labelled.csv");
        write_lines(&data, &labelled);
        metrics = eval_json(plugins.path(), &model, &data, "outcome");

        let our_pred: Vec<usize> = ours
            .labels
            .iter()
            .map(|l| classes.iter().position(|c| c == l).unwrap())
            .collect();
        assert_eq!(our_pred, their_pred, "{}: predicted classes", case.stem);
        assert_eq!(metrics["n_rows"], y.len(), "{metrics}");
        close(
            "accuracy",
            &metrics["accuracy"],
            accuracy(&y, &our_pred),
            1e-12,
        );
        close("accuracy", &metrics["accuracy"], 0.8, 0.01);
        close(
            "log_loss",
            &metrics["log_loss"],
            log_loss(&y, &ours.values),
            1e-9,
        );
        close("log_loss", &metrics["log_loss"], log_loss(&y, &theirs), TOL);
        if k == 2 {
            let score = |p: &[Vec<f64>]| p.iter().map(|r| r[1]).collect::<Vec<_>>();
            close(
                "roc_auc",
                &metrics["roc_auc"],
                roc_auc(&y, &score(&ours.values)),
                1e-12,
            );
            // Probabilities within 1e-5 of each other may swap places:
            // one swapped pair moves the AUC by 1/(positives x negatives).
            close(
                "roc_auc",
                &metrics["roc_auc"],
                roc_auc(&y, &score(&theirs)),
                1e-3,
            );
        } else {
            assert!(metrics.get("roc_auc").is_none(), "{metrics}");
        }
    } else {
        // The truth: the library's prediction plus a fixed offset pattern.
        let y: Vec<f64> = want
            .iter()
            .enumerate()
            .map(|(i, w)| w[0] + ((i * 7) % 11) as f64 * 0.05 - 0.25)
            .collect();
        for (l, t) in lines[1..].iter().zip(&y) {
            labelled.push(format!("{l},{t}"));
        }
        let data = tmp.join("labelled.csv");
        write_lines(&data, &labelled);
        metrics = eval_json(plugins.path(), &model, &data, "outcome");
        // tessera reads the target as f32.
        let y32: Vec<f64> = y.iter().map(|&t| f64::from(t as f32)).collect();
        let our_pred: Vec<f64> = ours
            .labels
            .iter()
            .map(|l| f64::from(l.parse::<f32>().unwrap()))
            .collect();
        let their_pred: Vec<f64> = want.iter().map(|w| w[0]).collect();
        let (rmse, mae, r2) = regression_metrics(&y32, &our_pred);
        assert_eq!(metrics["n_rows"], y.len(), "{metrics}");
        close("rmse", &metrics["rmse"], rmse, 1e-9);
        close("mae", &metrics["mae"], mae, 1e-9);
        close("r2", &metrics["r2"], r2, 1e-9);
        let (rmse, mae, r2) = regression_metrics(&y, &their_pred);
        close("rmse", &metrics["rmse"], rmse, TOL);
        close("mae", &metrics["mae"], mae, TOL);
        close("r2", &metrics["r2"], r2, TOL);
    }
    eprintln!("{}: eval {metrics}", case.stem);
}

#[test]
fn eval_of_an_imported_binary_model_is_consistent() {
    check_eval(&LIGHTGBM_BINARY, None);
    check_eval(&XGBOOST_BINARY, Some(&["no", "yes"]));
}

#[test]
fn eval_of_an_imported_multiclass_model_is_consistent() {
    check_eval(&XGBOOST_MULTICLASS, None);
    check_eval(&LIGHTGBM_MULTICLASS, Some(&["low", "mid", "high"]));
}

#[test]
fn eval_of_an_imported_regressor_is_consistent() {
    check_eval(&LIGHTGBM_RF, None);
    check_eval(&XGBOOST_DART, None);
}
