//! Tests of the importers against models trained by LightGBM 4.7 and
//! XGBoost 3.2 (tests/fixtures/import, made by make_models.py), and against
//! malformed and unsupported files.

use serde_json::{Value, json};
use tessera_core::ir::{Combine, Link, Tree, TreeEnsemble};

use super::{ImportError, Imported, lightgbm, xgboost};

const DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/fixtures/import");

/// The feature names of every fixture model (and the header of rows.csv).
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

fn fixture(name: &str) -> String {
    std::fs::read_to_string(format!("{DIR}/{name}")).unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// A CSV of numbers: header and rows.
fn csv(name: &str) -> (Vec<String>, Vec<Vec<f64>>) {
    let text = fixture(name);
    let mut lines = text.lines();
    let header = lines.next().unwrap().split(',').map(String::from).collect();
    let rows = lines
        .map(|l| l.split(',').map(|v| v.parse::<f64>().unwrap()).collect())
        .collect();
    (header, rows)
}

/// The test rows, every value a float32.
fn rows() -> Vec<Vec<f32>> {
    let (header, rows) = csv("rows.csv");
    assert_eq!(header, FEATURES);
    rows.iter()
        .map(|r| {
            r.iter()
                .map(|&v| {
                    let f = v as f32;
                    assert!(v.is_nan() || f64::from(f) == v, "{v} is not a float32");
                    f
                })
                .collect()
        })
        .collect()
}

/// The IR's raw score and prediction for one row: base score plus the sum
/// (or mean) of the trees, then the link.
fn score(e: &TreeEnsemble, row: &[f32]) -> (Vec<f32>, Vec<f32>) {
    let k = e.n_outputs as usize;
    let mut sum = vec![0.0f32; k];
    let mut counts = vec![0usize; k];
    for t in e.trees.iter() {
        t.add_to(row, &mut sum);
        if t.output == Tree::ALL_OUTPUTS {
            counts.iter_mut().for_each(|c| *c += 1);
        } else {
            counts[t.output as usize] += 1;
        }
    }
    if e.combine == Combine::Mean {
        for (s, c) in sum.iter_mut().zip(&counts) {
            *s /= *c as f32;
        }
    }
    let raw: Vec<f32> = (0..k)
        .map(|o| e.base_score.get(o).copied().unwrap_or(0.0) + sum[o])
        .collect();
    let pred = match e.link {
        Link::Identity => raw.clone(),
        Link::Sigmoid => vec![1.0 / (1.0 + (-raw[0]).exp())],
        Link::Softmax => {
            let max = raw.iter().copied().fold(f32::NEG_INFINITY, f32::max);
            let exp: Vec<f32> = raw.iter().map(|r| (r - max).exp()).collect();
            let total: f32 = exp.iter().sum();
            exp.iter().map(|e| e / total).collect()
        }
    };
    (raw, pred)
}

/// Asserts that the IR reproduces `<model>.expected.csv` on every row of
/// rows.csv within 1e-5.
fn check_against_library(model: &str, imported: &Imported) {
    let e = &imported.ensemble;
    let (header, expected) = csv(&format!("{model}.expected.csv"));
    let rows = rows();
    assert_eq!(rows.len(), expected.len(), "{model}: row count");
    let raw_cols = header.iter().filter(|h| h.starts_with("raw_")).count();
    assert_eq!(raw_cols, e.n_outputs as usize, "{model}: outputs");
    // (difference, row, column, ours, theirs)
    let mut worst = (0.0f64, 0, String::new(), 0.0f64, 0.0f64);
    // LightGBM's raw_score of an averaging (random-forest) model is the sum
    // of the trees; only its prediction averages them.
    let raw_divisor = match e.combine {
        Combine::Mean => e.trees.len() as f64 / f64::from(e.n_outputs),
        _ => 1.0,
    };
    for (r, (row, want)) in rows.iter().zip(&expected).enumerate() {
        let want: Vec<f64> = want
            .iter()
            .zip(&header)
            .map(|(w, h)| {
                if h.starts_with("raw_") {
                    w / raw_divisor
                } else {
                    *w
                }
            })
            .collect();
        let want = &want;
        let (raw, pred) = score(e, row);
        let got: Vec<f32> = raw.into_iter().chain(pred).collect();
        assert_eq!(got.len(), want.len(), "{model}: columns");
        for ((g, w), h) in got.iter().zip(want).zip(&header) {
            let d = (f64::from(*g) - w).abs();
            assert!(d.is_finite(), "{model}: row {r} {h}: {g} vs {w}");
            if d > worst.0 {
                worst = (d, r, h.clone(), f64::from(*g), *w);
            }
        }
    }
    let (d, r, h, g, w) = worst;
    assert!(
        d <= 1e-5,
        "{model}: worst |difference| {d:e} at row {r} ({:?}), column {h}: IR {g} vs library {w}",
        rows[r]
    );
}

fn import_lightgbm(model: &str) -> Imported {
    lightgbm(&fixture(&format!("{model}.txt"))).unwrap_or_else(|e| panic!("{model}: {e}"))
}

fn import_xgboost(model: &str) -> Imported {
    xgboost(&fixture(&format!("{model}.json"))).unwrap_or_else(|e| panic!("{model}: {e}"))
}

fn assert_shape(i: &Imported, link: Link, n_classes: u32, n_outputs: u32, objective: &str) {
    let e = &i.ensemble;
    assert_eq!(e.link, link);
    assert_eq!(e.n_classes, n_classes);
    assert_eq!(e.n_outputs, n_outputs);
    assert_eq!(e.n_features, 8);
    assert_eq!(i.objective, objective);
    assert_eq!(i.feature_names.len(), 8);
}

// ---------------------------------------------------------------- LightGBM

#[test]
fn lightgbm_binary_matches_lightgbm() {
    let i = import_lightgbm("lightgbm_binary");
    assert_shape(&i, Link::Sigmoid, 2, 1, "binary");
    assert_eq!(i.feature_names, FEATURES);
    assert_eq!(i.ensemble.combine, Combine::Sum);
    assert_eq!(i.ensemble.trees.len(), 15);
    assert_eq!(i.ensemble.base_score.as_slice(), [0.0]);
    check_against_library("lightgbm_binary", &i);
}

#[test]
fn lightgbm_multiclass_matches_lightgbm() {
    let i = import_lightgbm("lightgbm_multiclass");
    assert_shape(&i, Link::Softmax, 3, 3, "multiclass");
    let outputs: Vec<u32> = i.ensemble.trees.iter().map(|t| t.output).collect();
    assert_eq!(outputs.len(), 24);
    assert!(
        outputs
            .iter()
            .enumerate()
            .all(|(t, &o)| o as usize == t % 3)
    );
    check_against_library("lightgbm_multiclass", &i);
}

#[test]
fn lightgbm_regression_matches_lightgbm() {
    let i = import_lightgbm("lightgbm_regression");
    assert_shape(&i, Link::Identity, 0, 1, "regression");
    check_against_library("lightgbm_regression", &i);
}

#[test]
fn lightgbm_without_missing_values_reads_nan_as_zero() {
    // use_missing=false: every split has missing type None.
    let i = import_lightgbm("lightgbm_no_missing");
    assert_shape(&i, Link::Sigmoid, 2, 1, "binary");
    check_against_library("lightgbm_no_missing", &i);
}

#[test]
fn lightgbm_random_forest_averages_its_trees() {
    let i = import_lightgbm("lightgbm_rf");
    assert_shape(&i, Link::Identity, 0, 1, "regression");
    assert_eq!(i.ensemble.combine, Combine::Mean);
    check_against_library("lightgbm_rf", &i);
}

#[test]
fn lightgbm_multiclass_random_forest_divides_its_leaves() {
    // A multiclass model in average_output mode averages each class over its
    // own trees: the import sums leaves divided by the iteration count.
    let text = fixture("lightgbm_multiclass.txt").replacen(
        "objective=multiclass num_class:3\n",
        "objective=multiclass num_class:3\naverage_output\n",
        1,
    );
    let averaged = lightgbm(&text).unwrap().ensemble;
    let summed = import_lightgbm("lightgbm_multiclass").ensemble;
    assert_eq!(averaged.combine, Combine::Sum);
    for row in rows() {
        let (a, _) = score(&averaged, &row);
        let (s, _) = score(&summed, &row);
        for (a, s) in a.iter().zip(&s) {
            assert!((a - s / 8.0).abs() < 1e-6, "{a} vs {s} / 8");
        }
    }
}

#[test]
fn lightgbm_refuses_categorical_splits_naming_the_feature() {
    let e = lightgbm(&fixture("lightgbm_categorical.txt")).unwrap_err();
    let m = e.to_string();
    assert!(
        m.contains("`grade`") && m.contains("categorical") && m.contains("tree "),
        "{m}"
    );
    assert!(m.starts_with("line "), "{m}");
}

#[test]
fn lightgbm_refuses_zero_as_missing_against_the_threshold() {
    // zero_as_missing=true: zero goes to the default side, which LightGBM
    // picks regardless of the threshold; the IR cannot send zero against it.
    let e = lightgbm(&fixture("lightgbm_zero_as_missing.txt")).unwrap_err();
    let m = e.to_string();
    assert!(
        m.contains("zero as missing") && m.contains("split ") && m.contains("of tree "),
        "{m}"
    );
}

/// A hand-written LightGBM model: two features, one tree.
fn small_lightgbm(tree: &str) -> String {
    format!(
        "tree\nversion=v4\nnum_class=1\nnum_tree_per_iteration=1\nlabel_index=0\nmax_feature_idx=1\n\
         objective=regression\nfeature_names=a b\nfeature_infos=none none\ntree_sizes=1\n\n\
         Tree=0\n{tree}\nis_linear=0\nshrinkage=1\n\n\nend of trees\n\nfeature_importances:\na=1\n"
    )
}

fn leaf_of(e: &TreeEnsemble, row: &[f32]) -> f32 {
    score(e, row).0[0]
}

#[test]
fn lightgbm_reads_tiny_values_as_zero_and_honours_consistent_zero_missing() {
    // Split 0 on `a` at -1e-35 (LightGBM's zero band edge), NaN missing
    // type, default right; split 1 on `b` at 0.5, missing type Zero,
    // default left (where a plain comparison sends zero too).
    let text = small_lightgbm(
        "num_leaves=3\nnum_cat=0\nsplit_feature=0 1\nsplit_gain=1 1\n\
         threshold=-1.0000000180025095e-35 0.5\ndecision_type=8 6\n\
         left_child=-1 -2\nright_child=1 -3\nleaf_value=1 2 3\n\
         leaf_weight=1 1 1\nleaf_count=1 1 1\ninternal_value=0 0\ninternal_weight=1 1\ninternal_count=2 1",
    );
    let e = lightgbm(&text).unwrap().ensemble;
    // LightGBM reads |a| <= 1e-35 as 0, which is above the threshold.
    assert_eq!(leaf_of(&e, &[-1e-35, 0.7]), 3.0);
    assert_eq!(leaf_of(&e, &[-1e-36, 0.7]), 3.0);
    assert_eq!(leaf_of(&e, &[-2e-35, 0.7]), 1.0);
    assert_eq!(leaf_of(&e, &[f32::NAN, 0.7]), 3.0);
    // Missing type Zero: NaN and zero go left, like values <= 0.5.
    assert_eq!(leaf_of(&e, &[1.0, f32::NAN]), 2.0);
    assert_eq!(leaf_of(&e, &[1.0, 0.0]), 2.0);
    assert_eq!(leaf_of(&e, &[1.0, 0.5]), 2.0);
    assert_eq!(leaf_of(&e, &[1.0, 0.5f32.next_up()]), 3.0);
    // The same split sending zero right (default right) cannot be imported.
    let refused = lightgbm(&text.replace("decision_type=8 6", "decision_type=8 4")).unwrap_err();
    assert!(
        refused.to_string().contains("split 1 of tree 0"),
        "{refused}"
    );
}

#[test]
fn lightgbm_rounds_thresholds_down_to_f32() {
    // 0.1 (a double) lies between two floats: x <= 0.1 holds for the lower.
    let text = small_lightgbm(
        "num_leaves=2\nnum_cat=0\nsplit_feature=1\nthreshold=0.1\ndecision_type=2\n\
         left_child=-1\nright_child=-2\nleaf_value=1 2",
    );
    let e = lightgbm(&text).unwrap().ensemble;
    let below = if f64::from(0.1f32) <= 0.1 {
        0.1f32
    } else {
        0.1f32.next_down()
    };
    assert_eq!(leaf_of(&e, &[0.0, below]), 1.0);
    assert_eq!(leaf_of(&e, &[0.0, below.next_up()]), 2.0);
    // Missing type None: NaN reads as 0.0 <= 0.1.
    assert_eq!(leaf_of(&e, &[0.0, f32::NAN]), 1.0);
}

#[test]
fn lightgbm_single_leaf_tree() {
    let text = small_lightgbm(
        "num_leaves=1\nnum_cat=0\nsplit_feature=\nsplit_gain=\nthreshold=\ndecision_type=\n\
         left_child=\nright_child=\nleaf_value=0.25\nleaf_weight=\nleaf_count=3",
    );
    let e = lightgbm(&text).unwrap().ensemble;
    assert_eq!(e.trees[0].nodes.len(), 1);
    assert_eq!(leaf_of(&e, &[1.0, 2.0]), 0.25);
}

#[test]
fn lightgbm_accepts_crlf_line_endings() {
    let text = fixture("lightgbm_binary.txt");
    let crlf = text.replace('\n', "\r\n");
    assert_eq!(lightgbm(&crlf).unwrap(), lightgbm(&text).unwrap());
}

/// The 1-based number of the first line starting with `prefix` after line
/// `after`.
fn line_of(text: &str, prefix: &str, after: usize) -> usize {
    text.lines()
        .enumerate()
        .skip(after)
        .find(|(_, l)| l.starts_with(prefix))
        .map(|(i, _)| i + 1)
        .unwrap()
}

/// Replaces line `no` (1-based) with `f(line)`.
fn edit_line(text: &str, no: usize, f: impl Fn(&str) -> String) -> String {
    text.lines()
        .enumerate()
        .map(|(i, l)| if i + 1 == no { f(l) } else { l.to_string() })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Replaces entry `k` of the array on line `no`.
fn edit_entry(text: &str, no: usize, k: usize, value: &str) -> String {
    edit_line(text, no, |l| {
        let (key, values) = l.split_once('=').unwrap();
        let mut v: Vec<&str> = values.split(' ').collect();
        v[k] = value;
        format!("{key}={}", v.join(" "))
    })
}

fn lightgbm_err(text: &str) -> (usize, String) {
    match lightgbm(text) {
        Err(ImportError::LightGbm { line, message }) => (line, message),
        other => panic!("expected a LightGBM error, got {other:?}"),
    }
}

#[test]
fn lightgbm_refuses_unsupported_objectives_naming_them() {
    let text = fixture("lightgbm_binary.txt");
    let no = line_of(&text, "objective=", 0);
    for objective in [
        "poisson",
        "gamma",
        "tweedie",
        "multiclassova num_class:3 sigmoid:1",
        "cross_entropy",
        "cross_entropy_lambda",
        "lambdarank",
        "rank_xendcg",
        "custom",
        "binary sigmoid:2",
        "regression sqrt",
        "regression_l1 sqrt",
        "no_such_objective",
        "binary extra:1",
    ] {
        let edited = edit_line(&text, no, |_| format!("objective={objective}"));
        let (line, message) = lightgbm_err(&edited);
        assert_eq!(line, no, "{objective}: {message}");
        let name = objective.split(' ').next().unwrap();
        assert!(message.contains(name), "{objective}: {message}");
    }
}

#[test]
fn lightgbm_accepts_the_regression_family() {
    let text = fixture("lightgbm_regression.txt");
    let no = line_of(&text, "objective=", 0);
    for objective in ["regression_l1", "huber", "fair", "quantile", "mape"] {
        let edited = edit_line(&text, no, |_| format!("objective={objective}"));
        let i = lightgbm(&edited).unwrap_or_else(|e| panic!("{objective}: {e}"));
        assert_eq!(i.objective, objective);
        assert_eq!(i.ensemble.link, Link::Identity);
    }
}

#[test]
fn lightgbm_refuses_linear_trees() {
    let text = fixture("lightgbm_regression.txt").replacen("is_linear=0", "is_linear=1", 1);
    let (_, message) = lightgbm_err(&text);
    assert!(message.contains("linear tree"), "{message}");
}

#[test]
fn lightgbm_names_the_line_of_a_wrong_array_length() {
    let text = fixture("lightgbm_binary.txt");
    let tree3 = line_of(&text, "Tree=3", 0);
    let no = line_of(&text, "threshold=", tree3);
    let splits = text.lines().nth(no - 1).unwrap().split(' ').count();
    let cut = edit_line(&text, no, |l| l.rsplit_once(' ').unwrap().0.to_string());
    assert_eq!(
        lightgbm(&cut).unwrap_err().to_string(),
        format!(
            "line {no}: `threshold` has {} values but tree 3 has {splits} splits",
            splits - 1
        )
    );
    let leaves = line_of(&text, "leaf_value=", tree3);
    let longer = edit_line(&text, leaves, |l| format!("{l} 0.5"));
    let (line, message) = lightgbm_err(&longer);
    assert_eq!(line, leaves);
    assert!(message.contains("`leaf_value` has"), "{message}");
}

#[test]
fn lightgbm_refuses_bad_children() {
    let text = fixture("lightgbm_binary.txt");
    let tree2 = line_of(&text, "Tree=2", 0);
    let left = line_of(&text, "left_child=", tree2);
    let right = line_of(&text, "right_child=", tree2);
    for bad in ["99", "-99", "9223372036854775807", "-9223372036854775808"] {
        let (line, message) = lightgbm_err(&edit_entry(&text, left, 0, bad));
        assert_eq!(line, left, "{bad}: {message}");
        assert!(message.contains("`left_child` of split 0"), "{message}");
    }
    // A cycle: split 0's left child is split 1 in this tree; point split 1's
    // children back at split 0.
    let left0 = text.lines().nth(left - 1).unwrap();
    assert!(left0.starts_with("left_child=1 "), "{left0}");
    let cyclic = edit_entry(&edit_entry(&text, left, 1, "0"), right, 1, "0");
    let (line, message) = lightgbm_err(&cyclic);
    assert!(message.contains("cycle"), "{message}");
    assert!(line == left || line == right);
    // A shared child: both sides of split 0 lead to split 1.
    let shared = edit_entry(&text, right, 0, "1");
    let (_, message) = lightgbm_err(&shared);
    assert!(message.contains("already reached"), "{message}");
}

#[test]
fn lightgbm_refuses_bad_counts_and_headers() {
    let text = fixture("lightgbm_binary.txt");
    let edits: [(&str, &str); 12] = [
        ("num_class=", "num_class=0"),
        ("num_class=", "num_class=3"),
        (
            "num_tree_per_iteration=",
            "num_tree_per_iteration=1000000000",
        ),
        ("num_tree_per_iteration=", "num_tree_per_iteration=-1"),
        ("max_feature_idx=", "max_feature_idx=-5"),
        (
            "max_feature_idx=",
            "max_feature_idx=99999999999999999999999",
        ),
        ("max_feature_idx=", "max_feature_idx=3"),
        ("num_leaves=", "num_leaves=-3"),
        ("num_leaves=", "num_leaves=0"),
        ("num_leaves=", "num_leaves=99999999999999"),
        ("version=", "version=v9"),
        ("decision_type=", "decision_type=12 1 1 1 1 1 1 1 1"),
    ];
    for (prefix, replacement) in edits {
        let no = line_of(&text, prefix, 0);
        let edited = edit_line(&text, no, |_| replacement.to_string());
        let (line, message) = lightgbm_err(&edited);
        assert!(line >= 1, "{replacement}: {message}");
    }
    let no_split = edit_line(&text, line_of(&text, "split_feature=", 0), |l| {
        l.replacen("split_feature=", "split_feature=8 ", 1)
            .rsplit_once(' ')
            .unwrap()
            .0
            .to_string()
    });
    let (_, message) = lightgbm_err(&no_split);
    assert!(message.contains("8 features"), "{message}");
    let duplicate = text.replacen("num_cat=0\n", "num_cat=0\nnum_cat=0\n", 1);
    assert!(lightgbm_err(&duplicate).1.contains("second time"));
    let renumbered = text.replacen("Tree=1\n", "Tree=7\n", 1);
    assert!(lightgbm_err(&renumbered).1.contains("expected `Tree=1`"));
    let junk = text.replacen("shrinkage=1\n", "shrinkage=1\ngarbage\n", 1);
    assert!(lightgbm_err(&junk).1.contains("unexpected line"));
    let no_trees = format!("{}\nend of trees\n", text.split("\nTree=0").next().unwrap());
    assert!(lightgbm_err(&no_trees).1.contains("0 trees"));
}

#[test]
fn lightgbm_refuses_what_is_not_a_model() {
    for text in [
        "",
        "\n\n",
        "hello",
        "{\"learner\": {}}",
        "tree",
        "tree\nversion=v4\n",
    ] {
        let (line, message) = lightgbm_err(text);
        assert!(line >= 1, "{text:?}: {message}");
    }
    let json = lightgbm(&fixture("xgboost_binary.json")).unwrap_err();
    assert!(json.to_string().contains("JSON"), "{json}");
}

#[test]
fn lightgbm_truncated_anywhere_is_an_error() {
    for model in ["lightgbm_binary", "lightgbm_multiclass", "lightgbm_rf"] {
        let text = fixture(&format!("{model}.txt"));
        let end = text.find("end of trees").unwrap() + "end of trees".len();
        let cuts = (0..400).chain((400..end).step_by(37)).chain(end - 40..end);
        for cut in cuts.filter(|&c| text.is_char_boundary(c)) {
            let r = lightgbm(&text[..cut]);
            assert!(r.is_err(), "{model} cut at byte {cut} imported");
            if cut > "tree\n".len() {
                let m = r.unwrap_err().to_string();
                assert!(m.contains("truncated"), "{model} cut at byte {cut}: {m}");
            }
        }
        assert!(lightgbm(&text[..end]).is_ok());
    }
}

// ----------------------------------------------------------------- XGBoost

#[test]
fn xgboost_binary_matches_xgboost() {
    let i = import_xgboost("xgboost_binary");
    assert_shape(&i, Link::Sigmoid, 2, 1, "binary:logistic");
    assert_eq!(i.feature_names, FEATURES);
    // base_score is a probability; the base margin is its logit.
    let p = f64::from(5.0416666e-1f32);
    let logit = (p / (1.0 - p)).ln() as f32;
    assert_eq!(i.ensemble.base_score.as_slice(), [logit]);
    check_against_library("xgboost_binary", &i);
}

#[test]
fn xgboost_multiclass_matches_xgboost() {
    let i = import_xgboost("xgboost_multiclass");
    assert_shape(&i, Link::Softmax, 3, 3, "multi:softprob");
    // XGBoost 3.x keeps one base margin per class.
    assert_eq!(
        i.ensemble.base_score.as_slice(),
        [1.0331035e-2, -3.7840366e-2, 2.7509332e-2]
    );
    assert!(
        i.ensemble
            .trees
            .iter()
            .enumerate()
            .all(|(t, tree)| tree.output as usize == t % 3)
    );
    check_against_library("xgboost_multiclass", &i);
}

#[test]
fn xgboost_regression_without_names_gets_default_names() {
    let i = import_xgboost("xgboost_regression");
    assert_shape(&i, Link::Identity, 0, 1, "reg:squarederror");
    let defaults: Vec<String> = (0..8).map(|k| format!("f{k}")).collect();
    assert_eq!(i.feature_names, defaults);
    check_against_library("xgboost_regression", &i);
}

#[test]
fn xgboost_dart_applies_tree_weights() {
    let i = import_xgboost("xgboost_dart");
    assert_shape(&i, Link::Identity, 0, 1, "reg:pseudohubererror");
    check_against_library("xgboost_dart", &i);
}

fn json_fixture(name: &str) -> Value {
    serde_json::from_str(&fixture(name)).unwrap()
}

fn tree_mut(doc: &mut Value, t: usize) -> &mut Value {
    &mut doc["learner"]["gradient_booster"]["model"]["trees"][t]
}

fn xgboost_err(doc: &Value) -> (String, String) {
    match xgboost(&doc.to_string()) {
        Err(ImportError::XgBoost { path, message }) => (path, message),
        other => panic!("expected an XGBoost error, got {other:?}"),
    }
}

#[test]
fn xgboost_accepts_older_shapes() {
    // XGBoost 1.x/2.x: scalar base_score, boolean default_left, no
    // split_type, no num_target.
    let mut doc = json_fixture("xgboost_binary.json");
    let original = xgboost(&doc.to_string()).unwrap();
    doc["learner"]["learner_model_param"]["base_score"] = json!("5.0416666E-1");
    doc["learner"]["learner_model_param"]
        .as_object_mut()
        .unwrap()
        .remove("num_target");
    for t in doc["learner"]["gradient_booster"]["model"]["trees"]
        .as_array_mut()
        .unwrap()
    {
        let flags: Vec<Value> = t["default_left"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| json!(v.as_u64() == Some(1)))
            .collect();
        t["default_left"] = json!(flags);
        t.as_object_mut().unwrap().remove("split_type");
    }
    assert_eq!(xgboost(&doc.to_string()).unwrap(), original);
}

#[test]
fn xgboost_multiclass_scalar_base_score_is_shared() {
    let mut doc = json_fixture("xgboost_multiclass.json");
    doc["learner"]["learner_model_param"]["base_score"] = json!("5E-1");
    let e = xgboost(&doc.to_string()).unwrap().ensemble;
    assert_eq!(e.base_score.as_slice(), [0.5, 0.5, 0.5]);
    doc["learner"]["learner_model_param"]["base_score"] = json!("[1,2]");
    let (path, _) = xgboost_err(&doc);
    assert_eq!(path, "learner.learner_model_param.base_score");
}

#[test]
fn xgboost_splits_are_strict() {
    // x < c goes left: c itself goes right, the float just below it left.
    let doc = json_fixture("xgboost_regression.json");
    let e = xgboost(&doc.to_string()).unwrap().ensemble;
    let t0 = &doc["learner"]["gradient_booster"]["model"]["trees"][0];
    let c = t0["split_conditions"][0].as_f64().unwrap() as f32;
    let f = t0["split_indices"][0].as_u64().unwrap() as u32;
    let root = e.trees[0].nodes[0];
    assert_eq!((root.feature, root.threshold), (f, c.next_down()));
    assert!(c > root.threshold && c.next_down() <= root.threshold);
}

#[test]
fn xgboost_objectives() {
    let doc = json_fixture("xgboost_binary.json");
    let with = |name: &str| {
        let mut d = doc.clone();
        d["learner"]["objective"]["name"] = json!(name);
        d
    };
    // logitraw: the prediction is the margin, whose base is base_score as is.
    let raw = xgboost(&with("binary:logitraw").to_string()).unwrap();
    assert_eq!(raw.ensemble.link, Link::Identity);
    assert_eq!(raw.ensemble.n_classes, 0);
    assert_eq!(raw.ensemble.base_score.as_slice(), [5.0416666e-1]);
    for name in [
        "reg:squarederror",
        "reg:absoluteerror",
        "reg:pseudohubererror",
        "reg:quantileerror",
        "reg:squaredlogerror",
    ] {
        let i = xgboost(&with(name).to_string()).unwrap();
        assert_eq!(i.ensemble.link, Link::Identity, "{name}");
        assert_eq!(i.objective, name);
    }
    for name in [
        "reg:logistic",
        "binary:hinge",
        "count:poisson",
        "reg:gamma",
        "reg:tweedie",
        "survival:aft",
        "survival:cox",
        "rank:pairwise",
        "rank:ndcg",
        "no:such",
    ] {
        let (path, message) = xgboost_err(&with(name));
        assert_eq!(path, "learner.objective.name", "{name}");
        assert!(message.contains(name), "{name}: {message}");
    }
    // A multiclass objective on a model of one output.
    let (_, message) = xgboost_err(&with("multi:softprob"));
    assert!(message.contains("num_class"), "{message}");
}

#[test]
fn xgboost_refuses_other_boosters_and_trees() {
    let linear = json!({"learner": {
        "attributes": {}, "feature_names": [], "feature_types": [],
        "gradient_booster": {"model": {"boosted_rounds": 1, "weights": [0.5, 0.1]}, "name": "gblinear"},
        "learner_model_param": {"base_score": "[5E-1]", "boost_from_average": "1", "num_class": "0", "num_feature": "1", "num_target": "1"},
        "objective": {"name": "binary:logistic", "reg_loss_param": {"scale_pos_weight": "1"}}},
        "version": [3, 2, 0]});
    let (path, message) = xgboost_err(&linear);
    assert_eq!(path, "learner.gradient_booster.name");
    assert!(message.contains("gblinear"), "{message}");

    let mut categorical = json_fixture("xgboost_binary.json");
    let feature = tree_mut(&mut categorical, 2)["split_indices"][0]
        .as_u64()
        .unwrap() as usize;
    tree_mut(&mut categorical, 2)["split_type"][0] = json!(1);
    let (path, message) = xgboost_err(&categorical);
    assert_eq!(
        path,
        "learner.gradient_booster.model.trees[2].split_type[0]"
    );
    assert!(
        message.contains(&format!("`{}`", FEATURES[feature])),
        "{message}"
    );

    let mut targets = json_fixture("xgboost_regression.json");
    targets["learner"]["learner_model_param"]["num_target"] = json!("2");
    let (path, _) = xgboost_err(&targets);
    assert_eq!(path, "learner.learner_model_param.num_target");
}

#[test]
fn xgboost_names_the_path_of_a_wrong_array_length() {
    let mut doc = json_fixture("xgboost_binary.json");
    let n = tree_mut(&mut doc, 3)["left_children"]
        .as_array()
        .unwrap()
        .len();
    tree_mut(&mut doc, 3)["split_conditions"]
        .as_array_mut()
        .unwrap()
        .pop();
    let e = xgboost(&doc.to_string()).unwrap_err();
    assert_eq!(
        e.to_string(),
        format!(
            "learner.gradient_booster.model.trees[3].split_conditions: has {} entries but `left_children` has {n}",
            n - 1
        )
    );
    let mut info = json_fixture("xgboost_binary.json");
    info["learner"]["gradient_booster"]["model"]["tree_info"][1] = json!(4);
    let (path, _) = xgboost_err(&info);
    assert_eq!(path, "learner.gradient_booster.model.tree_info[1]");
}

#[test]
fn xgboost_refuses_bad_children() {
    let base = json_fixture("xgboost_binary.json");
    for bad in [json!(1000), json!(-2), json!(1.5), json!("1")] {
        let mut doc = base.clone();
        tree_mut(&mut doc, 1)["left_children"][0] = bad.clone();
        let (path, _) = xgboost_err(&doc);
        assert_eq!(
            path, "learner.gradient_booster.model.trees[1].left_children[0]",
            "{bad}"
        );
    }
    // A cycle: node 1 (the root's left child) points back at the root.
    let mut doc = base.clone();
    assert_eq!(tree_mut(&mut doc, 1)["left_children"][0], json!(1));
    tree_mut(&mut doc, 1)["left_children"][1] = json!(0);
    let (path, message) = xgboost_err(&doc);
    assert_eq!(
        path,
        "learner.gradient_booster.model.trees[1].left_children[1]"
    );
    assert!(message.contains("cycle"), "{message}");
    // Node 1 turned into a leaf: its children are no longer reached.
    let mut doc = base.clone();
    tree_mut(&mut doc, 1)["left_children"][1] = json!(-1);
    tree_mut(&mut doc, 1)["right_children"][1] = json!(-1);
    let (path, message) = xgboost_err(&doc);
    assert_eq!(path, "learner.gradient_booster.model.trees[1]");
    assert!(message.contains("not reached"), "{message}");
    // One child only.
    let mut doc = base.clone();
    tree_mut(&mut doc, 1)["right_children"][0] = json!(-1);
    let (path, _) = xgboost_err(&doc);
    assert_eq!(
        path,
        "learner.gradient_booster.model.trees[1].right_children[0]"
    );
    // A feature out of range.
    let mut doc = base;
    tree_mut(&mut doc, 0)["split_indices"][0] = json!(8);
    let (path, _) = xgboost_err(&doc);
    assert_eq!(
        path,
        "learner.gradient_booster.model.trees[0].split_indices[0]"
    );
}

#[test]
fn xgboost_refuses_bad_counts() {
    let base = json_fixture("xgboost_multiclass.json");
    let edits = [
        ("num_feature", json!("-1")),
        ("num_feature", json!("0")),
        ("num_feature", json!("99999999999999")),
        ("num_feature", json!("abc")),
        ("num_class", json!("-3")),
        ("num_class", json!("99999999999")),
        ("num_class", json!("4000000000")),
        ("num_class", json!("25")),
        ("num_class", json!("4")),
        ("base_score", json!("[0.5,nope]")),
        ("base_score", json!(["0.5"])),
    ];
    for (key, value) in edits {
        let mut doc = base.clone();
        doc["learner"]["learner_model_param"][key] = value.clone();
        assert!(xgboost(&doc.to_string()).is_err(), "{key} = {value}");
    }
    let mut unnamed = json_fixture("xgboost_regression.json");
    unnamed["learner"]["learner_model_param"]["num_feature"] = json!("4000000000");
    let (path, _) = xgboost_err(&unnamed);
    assert_eq!(path, "learner.learner_model_param.num_feature");
    let mut logistic = json_fixture("xgboost_binary.json");
    logistic["learner"]["learner_model_param"]["base_score"] = json!("[1E0]");
    let (path, message) = xgboost_err(&logistic);
    assert_eq!(path, "learner.learner_model_param.base_score");
    assert!(message.contains("probability"), "{message}");
}

#[test]
fn xgboost_refuses_what_is_not_a_model() {
    for text in ["", "not json", "{", "[1, 2]", "42", "null"] {
        let e = xgboost(text).unwrap_err();
        assert!(matches!(e, ImportError::XgBoost { .. }), "{text}: {e}");
    }
    let e = xgboost("{\"a\": 1}").unwrap_err().to_string();
    assert!(e.starts_with("learner: missing"), "{e}");
    let e = xgboost("{\"learner\": {}}").unwrap_err().to_string();
    assert!(e.starts_with("learner.learner_model_param: missing"), "{e}");
    let e = xgboost("{\"learner\": 5}").unwrap_err().to_string();
    assert!(e.starts_with("learner: expected an object"), "{e}");
    assert!(xgboost(&fixture("lightgbm_binary.txt")).is_err());
    let mut doc = json_fixture("xgboost_binary.json");
    doc["learner"]["gradient_booster"]["model"]["trees"] = json!([]);
    doc["learner"]["gradient_booster"]["model"]["tree_info"] = json!([]);
    doc["learner"]["gradient_booster"]["model"]["gbtree_model_param"]["num_trees"] = json!("0");
    assert!(xgboost_err(&doc).1.contains("no trees"));
}

#[test]
fn xgboost_truncated_anywhere_is_an_error() {
    for model in ["xgboost_binary", "xgboost_dart"] {
        let text = fixture(&format!("{model}.json"));
        let end = text.trim_end().len();
        let cuts = (0..300).chain((300..end).step_by(41)).chain(end - 30..end);
        for cut in cuts.filter(|&c| text.is_char_boundary(c)) {
            assert!(
                xgboost(&text[..cut]).is_err(),
                "{model} cut at byte {cut} imported"
            );
        }
    }
}

#[test]
fn errors_are_one_sentence() {
    let e = lightgbm("hello").unwrap_err().to_string();
    assert!(!e.contains('\n'), "{e}");
    let e = xgboost("hello").unwrap_err().to_string();
    assert!(!e.contains('\n'), "{e}");
}

/// A small deterministic generator for the edit test.
struct Lcg(u64);

impl Lcg {
    fn below(&mut self, n: usize) -> usize {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((self.0 >> 33) as usize) % n.max(1)
    }
}

#[test]
fn random_edits_never_panic() {
    // Replace a few bytes of real models with characters that matter to the
    // formats; every outcome must be a model or an error.
    const SYMBOLS: &[u8] = b"0123456789-.=\n ,[]{}\"e~";
    let mut rng = Lcg(7);
    for name in ["lightgbm_multiclass.txt", "xgboost_multiclass.json"] {
        let original = fixture(name).into_bytes();
        for _ in 0..300 {
            let mut bytes = original.clone();
            for _ in 0..=rng.below(4) {
                let at = rng.below(bytes.len());
                bytes[at] = SYMBOLS[rng.below(SYMBOLS.len())];
            }
            let text = String::from_utf8_lossy(&bytes);
            if name.ends_with(".txt") {
                let _ = lightgbm(&text);
            } else {
                let _ = xgboost(&text);
            }
        }
    }
    // Integers anywhere in the trees' arrays.
    let doc = json_fixture("xgboost_multiclass.json");
    let keys = [
        "left_children",
        "right_children",
        "split_indices",
        "default_left",
        "split_type",
    ];
    for _ in 0..300 {
        let mut d = doc.clone();
        let t = rng.below(24);
        let key = keys[rng.below(keys.len())];
        let array = tree_mut(&mut d, t)[key].as_array_mut().unwrap();
        let at = rng.below(array.len());
        array[at] = json!(rng.below(20) as i64 - 5);
        let _ = xgboost(&d.to_string());
    }
    // Child indices anywhere in LightGBM trees.
    let text = fixture("lightgbm_multiclass.txt");
    let lines: Vec<usize> = text
        .lines()
        .enumerate()
        .filter(|(_, l)| l.starts_with("left_child=") || l.starts_with("right_child="))
        .map(|(i, _)| i + 1)
        .collect();
    for _ in 0..300 {
        let no = lines[rng.below(lines.len())];
        let n = text.lines().nth(no - 1).unwrap().split(' ').count();
        let value = (rng.below(12) as i64 - 6).to_string();
        let _ = lightgbm(&edit_entry(&text, no, rng.below(n), &value));
    }
}
