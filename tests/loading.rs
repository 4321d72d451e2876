//! Finding and loading plugins, and every way that can go wrong.

use std::process::Command;

use serde_json::Value;

use crate::util::{TempDir, plugin_dir, plugin_lib, s, tessera, tessera_bin};

fn plugin_names(v: &Value) -> Vec<String> {
    v["plugins"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn several_plugins_load_in_one_process() {
    let dir = plugin_dir(&[
        "tessera_forest",
        "tessera_linear",
        "tessera_test_faulty",
        "tessera_test_meta",
    ]);
    let v: Value = serde_json::from_str(tessera(dir.path(), &["plugins", "--json"]).ok()).unwrap();
    let mut names = plugin_names(&v);
    names.sort();
    assert_eq!(names, ["faulty", "forest", "linear", "meta"]);
}

#[test]
fn single_files_load_too() {
    let forest = plugin_lib("tessera_forest");
    let v: Value = serde_json::from_str(tessera(&forest, &["plugins", "--json"]).ok()).unwrap();
    assert_eq!(plugin_names(&v), ["forest"]);
}

#[test]
fn default_folder_is_the_binarys_and_env_overrides_it() {
    let tmp = TempDir::new("default");
    let bin = tmp.join("tessera");
    std::fs::copy(tessera_bin(), &bin).unwrap();
    let forest = plugin_lib("tessera_forest");
    std::fs::copy(
        &forest,
        tmp.join(forest.file_name().unwrap().to_str().unwrap()),
    )
    .unwrap();
    let out = Command::new(&bin)
        .args(["plugins", "--json"])
        .env_remove("TESSERA_PLUGINS")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(plugin_names(&v), ["forest"]);

    let other = plugin_dir(&["tessera_linear"]);
    let out = Command::new(&bin)
        .args(["plugins", "--json"])
        .env("TESSERA_PLUGINS", other.path())
        .output()
        .unwrap();
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(plugin_names(&v), ["linear"]);

    let out = Command::new(&bin)
        .args(["plugins"])
        .env("TESSERA_PLUGINS", tmp.join("missing"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("does not exist"));
}

#[test]
fn missing_plugin_file() {
    let tmp = TempDir::new("missing");
    let p = tmp.join("libnothing.so");
    tessera(&p, &["plugins"]).fails(2, &["plugin path", "libnothing.so does not exist"]);
}

#[test]
fn text_file_is_not_a_library() {
    let tmp = TempDir::new("text");
    let p = tmp.join("libfake.so");
    std::fs::write(&p, "this is not a shared library\n").unwrap();
    tessera(&p, &["plugins"]).fails(2, &["libfake.so is not a loadable library"]);
}

#[test]
fn executable_is_not_a_library() {
    tessera(&tessera_bin(), &["plugins"]).fails(2, &["is not a loadable library"]);
}

#[test]
fn foreign_library_is_not_a_tessera_plugin() {
    // Any shared library without tessera's root module will do; the C
    // library is on every Linux machine.
    let candidates = [
        "/lib/x86_64-linux-gnu/libc.so.6",
        "/usr/lib/x86_64-linux-gnu/libc.so.6",
        "/lib/aarch64-linux-gnu/libc.so.6",
        "/usr/lib64/libc.so.6",
        "/lib64/libc.so.6",
    ];
    let Some(libc) = candidates
        .iter()
        .map(std::path::Path::new)
        .find(|p| p.exists())
    else {
        eprintln!("no libc found at a known path; skipping");
        return;
    };
    tessera(libc, &["plugins"]).fails(2, &["is not a tessera plugin"]);
}

#[test]
fn incompatible_core_is_refused_in_one_line() {
    let lib = plugin_lib("tessera_test_mismatched");
    let run = tessera(&lib, &["plugins"]);
    run.fails(
        2,
        &[
            "was built against an incompatible tessera-core",
            "rebuild the plugin",
        ],
    );
    assert!(
        run.stderr.lines().count() <= 2,
        "the message must be short:\n{}",
        run.stderr
    );
}

#[test]
fn incompatible_plugin_in_a_folder_is_skipped_with_a_warning() {
    let dir = plugin_dir(&["tessera_forest", "tessera_test_mismatched"]);
    let run = tessera(dir.path(), &["plugins", "--json"]);
    let v: Value = serde_json::from_str(run.ok()).unwrap();
    assert_eq!(plugin_names(&v), ["forest"]);
    assert!(run.stderr.contains("warning: skipped"), "{}", run.stderr);
    assert!(
        v["skipped"][0]["error"]
            .as_str()
            .unwrap()
            .contains("incompatible tessera-core")
    );
}

#[test]
fn two_plugins_claiming_one_name() {
    let dir = plugin_dir(&["tessera_forest"]);
    let src = plugin_lib("tessera_forest");
    std::fs::copy(&src, dir.join("libtessera_forest_copy.so")).unwrap();
    tessera(dir.path(), &["plugins"]).fails(
        2,
        &[
            "learner `random_forest` is provided by two plugins",
            "remove one of them",
        ],
    );
}

#[test]
fn empty_folder_lists_nothing() {
    let dir = plugin_dir(&[]);
    let out = tessera(dir.path(), &["plugins"]);
    assert!(out.ok().contains("no plugins found"), "{}", out.stdout);
    let tmp = TempDir::new("m");
    tessera(
        dir.path(),
        &[
            "train",
            "--learner",
            "random_forest",
            "--data",
            s(&crate::util::data("iris.train.csv")),
            "--target",
            "label",
            "--out",
            s(&tmp.join("m.tsr")),
        ],
    )
    .fails(2, &["no learners are loaded"]);
}

#[test]
fn panicking_plugin_is_an_error_not_an_abort() {
    let dir = plugin_dir(&["tessera_test_faulty"]);
    let tmp = TempDir::new("panic");
    let iris = crate::util::data("iris.train.csv");
    let m = tmp.join("m.tsr");
    let train = |learner: &str| {
        tessera(
            dir.path(),
            &[
                "train",
                "--learner",
                learner,
                "--data",
                s(&iris),
                "--target",
                "label",
                "--out",
                s(&m),
            ],
        )
    };
    train("panic_fit").fails(1, &["plugin panicked: deliberate panic in fit"]);
    train("error_fit").fails(2, &["deliberate error in fit"]);
    train("panic_predict").ok();
    // The panic happens inside a worker thread of the plugin's pool.
    tessera(
        dir.path(),
        &["predict", "--model", s(&m), "--data", s(&iris)],
    )
    .fails(1, &["plugin panicked: deliberate panic in predict"]);
}
