//! Outputs that must not drift: the forest's probabilities on iris for a
//! fixed seed, and the text of representative error messages. Rewrite them
//! with `TESSERA_BLESS=1 cargo test`.

use std::path::Path;

use crate::util::{TempDir, data, plugin_dir, predict, s, tessera, test_data, train};

fn bless() -> bool {
    std::env::var_os("TESSERA_BLESS").is_some()
}

/// Compares numeric CSVs cell by cell within `tol`, text cells exactly.
fn assert_csv_close(expected_path: &Path, got: &str, tol: f64) {
    if bless() {
        std::fs::write(expected_path, got).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(expected_path).unwrap_or_else(|e| {
        panic!(
            "{}: {e} (run with TESSERA_BLESS=1 to create it)",
            expected_path.display()
        )
    });
    let (e_lines, g_lines): (Vec<&str>, Vec<&str>) =
        (expected.lines().collect(), got.lines().collect());
    assert_eq!(
        e_lines.len(),
        g_lines.len(),
        "line count differs\nexpected:\n{expected}\ngot:\n{got}"
    );
    for (i, (e, g)) in e_lines.iter().zip(&g_lines).enumerate() {
        for (ec, gc) in e.split(',').zip(g.split(',')) {
            let same = match (ec.parse::<f64>(), gc.parse::<f64>()) {
                (Ok(a), Ok(b)) => (a - b).abs() <= tol,
                _ => ec == gc,
            };
            assert!(same, "line {}: expected `{e}`, got `{g}`", i + 1);
        }
    }
}

#[test]
fn forest_probabilities_on_iris() {
    let plugins = plugin_dir(&["tessera_forest"]);
    let tmp = TempDir::new("golden");
    let m = tmp.join("m.tsr");
    train(
        plugins.path(),
        "random_forest",
        &data("iris.train.csv"),
        "label",
        &["--set", "n_estimators=25", "--seed", "42", "--threads", "2"],
        &m,
    )
    .ok();
    let out = predict(plugins.path(), &m, &data("iris.test.csv"), &["--proba"]);
    assert_csv_close(&test_data("golden/iris_rf_proba.csv"), out.ok(), 1e-6);
}

#[test]
fn error_messages() {
    let plugins = plugin_dir(&["tessera_forest"]);
    let dir = test_data("bad");
    let mut got = String::new();
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    for f in files {
        let name = f.file_name().unwrap().to_str().unwrap().to_string();
        let run = tessera(
            plugins.path(),
            &[
                "train",
                "--learner",
                "random_forest",
                "--data",
                s(&f),
                "--target",
                "label",
                "--out",
                "unused.tsr",
            ],
        );
        assert_eq!(run.code, Some(2), "{name}: {}", run.stderr);
        // Paths differ between machines; keep the file name only.
        let msg = run.stderr.replace(dir.to_str().unwrap(), "tests/data/bad");
        got.push_str(&format!("{name}: {}", msg));
    }
    let golden = test_data("golden/bad_data_errors.txt");
    if bless() {
        std::fs::write(&golden, &got).unwrap();
    } else {
        let expected = std::fs::read_to_string(&golden).unwrap();
        assert_eq!(
            expected, got,
            "error messages drifted (TESSERA_BLESS=1 to accept)"
        );
    }
}
