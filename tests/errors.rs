//! Bad input of every kind: each gives one readable message naming the
//! file, line, column or key at fault, and exit code 2.

use crate::util::{TempDir, data, plugin_dir, s, tessera};

fn train_args<'a>(data: &'a str, target: &'a str, out: &'a str) -> Vec<&'a str> {
    vec![
        "train",
        "--learner",
        "random_forest",
        "--data",
        data,
        "--target",
        target,
        "--out",
        out,
        "--set",
        "n_estimators=3",
    ]
}

#[test]
fn ragged_row() {
    let plugins = plugin_dir(&["tessera_forest"]);
    let tmp = TempDir::new("ragged");
    let f = tmp.join("r.csv");
    std::fs::write(&f, "a,b,y\n1,2,0\n3,4\n5,6,1\n").unwrap();
    let out = tmp.join("m.tsr");
    tessera(plugins.path(), &train_args(s(&f), "y", s(&out))).fails(
        2,
        &[&format!(
            "{}:3: row has 2 fields, the header has 3",
            f.display()
        )],
    );
    assert!(!out.exists(), "no model may be written on error");
}

#[test]
fn non_numeric_cell() {
    let plugins = plugin_dir(&["tessera_forest"]);
    let tmp = TempDir::new("nonnum");
    let f = tmp.join("n.csv");
    std::fs::write(&f, "a,b,y\n1,2,0\n3,x7,1\n").unwrap();
    tessera(
        plugins.path(),
        &train_args(s(&f), "y", s(&tmp.join("m.tsr"))),
    )
    .fails(2, &[":3: column `b`: `x7` is not a number"]);
}

#[test]
fn missing_target_column_lists_columns() {
    let plugins = plugin_dir(&["tessera_forest"]);
    let tmp = TempDir::new("notarget");
    tessera(
        plugins.path(),
        &train_args(s(&data("iris.train.csv")), "lable", s(&tmp.join("m.tsr"))),
    )
    .fails(
        2,
        &[
            "no target column `lable`",
            "did you mean `label`?",
            "columns: f0, f1, f2, f3, label",
        ],
    );
}

#[test]
fn missing_data_file_and_empty_file() {
    let plugins = plugin_dir(&["tessera_forest"]);
    let tmp = TempDir::new("nofile");
    tessera(
        plugins.path(),
        &train_args("does-not-exist.csv", "y", s(&tmp.join("m.tsr"))),
    )
    .fails(2, &["cannot read does-not-exist.csv"]);
    let f = tmp.join("empty.csv");
    std::fs::write(&f, "").unwrap();
    tessera(
        plugins.path(),
        &train_args(s(&f), "y", s(&tmp.join("m.tsr"))),
    )
    .fails(2, &["is empty"]);
}

#[test]
fn unknown_learner_suggests() {
    let plugins = plugin_dir(&["tessera_forest"]);
    let tmp = TempDir::new("learner");
    tessera(
        plugins.path(),
        &[
            "train",
            "--learner",
            "random_forst",
            "--data",
            s(&data("iris.train.csv")),
            "--target",
            "label",
            "--out",
            s(&tmp.join("m.tsr")),
        ],
    )
    .fails(
        2,
        &[
            "no loaded plugin provides learner `random_forst`",
            "did you mean `random_forest`?",
        ],
    );
}

#[test]
fn unknown_and_bad_parameters() {
    let plugins = plugin_dir(&["tessera_forest"]);
    let tmp = TempDir::new("params");
    let m = tmp.join("m.tsr");
    let iris = data("iris.train.csv");
    let mut a = train_args(s(&iris), "label", s(&m));
    a.extend(["--set", "n_estimator=5"]);
    tessera(plugins.path(), &a).fails(
        2,
        &[
            "unknown parameter `n_estimator`",
            "did you mean `n_estimators`?",
            "accepted:",
        ],
    );
    let mut a = train_args(s(&iris), "label", s(&m));
    a.extend(["--set", "max_depth=-1"]);
    tessera(plugins.path(), &a).fails(2, &["`max_depth`"]);
    let mut a = train_args(s(&iris), "label", s(&m));
    a.extend(["--set", "max_features=sqr"]);
    tessera(plugins.path(), &a).fails(2, &["`max_features`"]);
    let mut a = train_args(s(&iris), "label", s(&m));
    a.extend(["--set", "nonsense"]);
    tessera(plugins.path(), &a).fails(2, &["--set `nonsense`: expected KEY=VALUE"]);
    assert!(!m.exists());
}

#[test]
fn bad_config_file_names_line() {
    let plugins = plugin_dir(&["tessera_forest"]);
    let tmp = TempDir::new("badcfg");
    let cfg = tmp.join("c.toml");
    std::fs::write(&cfg, "n_estimators = 3\nmax_depth = = 2\n").unwrap();
    let iris = data("iris.train.csv");
    let mut a = train_args(s(&iris), "label", "unused.tsr");
    a.extend(["--config", s(&cfg)]);
    tessera(plugins.path(), &a).fails(2, &["c.toml", "line 2"]);
}

fn trained_iris(plugins: &std::path::Path, tmp: &TempDir) -> std::path::PathBuf {
    let m = tmp.join("m.tsr");
    tessera(
        plugins,
        &train_args(s(&data("iris.train.csv")), "label", s(&m)),
    )
    .ok();
    m
}

#[test]
fn truncated_corrupted_and_foreign_models_are_refused() {
    let plugins = plugin_dir(&["tessera_forest"]);
    let tmp = TempDir::new("corrupt");
    let m = trained_iris(plugins.path(), &tmp);
    let bytes = std::fs::read(&m).unwrap();
    let test = data("iris.test.csv");

    let cut = tmp.join("cut.tsr");
    std::fs::write(&cut, &bytes[..bytes.len() - 10]).unwrap();
    tessera(
        plugins.path(),
        &["predict", "--model", s(&cut), "--data", s(&test)],
    )
    .fails(2, &["is damaged", "truncated"]);

    let flipped = tmp.join("flipped.tsr");
    let mut b = bytes.clone();
    let last = b.len() - 5;
    b[last] ^= 0xff;
    std::fs::write(&flipped, &b).unwrap();
    tessera(
        plugins.path(),
        &[
            "eval",
            "--model",
            s(&flipped),
            "--data",
            s(&test),
            "--target",
            "label",
        ],
    )
    .fails(2, &["payload checksum mismatch"]);

    tessera(plugins.path(), &["inspect", s(&test)]).fails(2, &["is not a tessera model file"]);
    tessera(plugins.path(), &["inspect", "nope.tsr"])
        .fails(2, &["cannot read model file nope.tsr"]);
}

#[test]
fn missing_feature_column_at_predict() {
    let plugins = plugin_dir(&["tessera_forest"]);
    let tmp = TempDir::new("missingfeat");
    let m = trained_iris(plugins.path(), &tmp);
    let f = tmp.join("few.csv");
    std::fs::write(&f, "f0,f1,f3\n1,2,3\n").unwrap();
    tessera(
        plugins.path(),
        &["predict", "--model", s(&m), "--data", s(&f)],
    )
    .fails(2, &["no feature column `f2`", "columns: f0, f1, f3"]);
}

#[test]
fn unknown_label_at_eval() {
    let plugins = plugin_dir(&["tessera_forest"]);
    let tmp = TempDir::new("unknownlabel");
    let m = trained_iris(plugins.path(), &tmp);
    let f = tmp.join("l.csv");
    std::fs::write(&f, "f0,f1,f2,f3,label\n1,2,3,4,0\n1,2,3,4,7\n").unwrap();
    tessera(
        plugins.path(),
        &[
            "eval",
            "--model",
            s(&m),
            "--data",
            s(&f),
            "--target",
            "label",
        ],
    )
    .fails(
        2,
        &[":3: label `7` in column `label` is not one of the model's classes (0, 1, 2)"],
    );
}

#[test]
fn usage_errors_exit_2() {
    let plugins = plugin_dir(&[]);
    tessera(plugins.path(), &["train", "--learner", "x"]).fails(2, &["--data"]);
    tessera(plugins.path(), &["frobnicate"]).fails(2, &["frobnicate"]);
    let iris = data("iris.train.csv");
    let mut a = train_args(s(&iris), "label", "x.tsr");
    a.extend(["--threads", "0"]);
    tessera(plugins.path(), &a).fails(2, &["--threads must be at least 1"]);
}

#[test]
fn unwritable_output_leaves_nothing_behind() {
    let plugins = plugin_dir(&["tessera_forest"]);
    let tmp = TempDir::new("unwritable");
    let out = tmp.join("no/such/dir/m.tsr");
    tessera(
        plugins.path(),
        &train_args(s(&data("iris.train.csv")), "label", s(&out)),
    )
    .fails(2, &["cannot write model file"]);
    assert!(!tmp.join("no").exists());
}
