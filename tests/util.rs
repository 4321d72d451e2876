//! Helpers: find the binary and the plugin libraries, run commands, make
//! temporary folders.

use std::{
    path::{Path, PathBuf},
    process::{Command, Output},
    sync::atomic::{AtomicUsize, Ordering},
};

/// The `tessera` binary under test.
pub fn tessera_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_tessera"))
}

/// The repository root.
pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// A shipped example dataset file, e.g. `data("iris.train.csv")`.
pub fn data(name: &str) -> PathBuf {
    repo().join("examples/data").join(name)
}

/// A test input under tests/data.
pub fn test_data(name: &str) -> PathBuf {
    repo().join("tests/data").join(name)
}

/// The shared library of plugin crate `lib_name` (e.g. `tessera_forest`),
/// built by cargo as a dev-dependency next to this test executable.
pub fn plugin_lib(lib_name: &str) -> PathBuf {
    let file = format!(
        "{}{lib_name}{}",
        std::env::consts::DLL_PREFIX,
        std::env::consts::DLL_SUFFIX
    );
    let exe = std::env::current_exe().unwrap();
    let deps = exe.parent().unwrap();
    for dir in [deps, deps.parent().unwrap()] {
        let p = dir.join(&file);
        if p.exists() {
            return p;
        }
    }
    panic!("plugin library {file} not found next to {}", exe.display());
}

/// A fresh empty folder under the target dir, removed when dropped.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> Self {
        static N: AtomicUsize = AtomicUsize::new(0);
        let exe = std::env::current_exe().unwrap();
        let base = exe.parent().unwrap().parent().unwrap().join("e2e-tmp");
        let dir = base.join(format!(
            "{tag}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }

    pub fn join(&self, p: &str) -> PathBuf {
        self.0.join(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A plugins folder holding copies of the named plugin libraries.
pub fn plugin_dir(libs: &[&str]) -> TempDir {
    let d = TempDir::new("plugins");
    for lib in libs {
        let src = plugin_lib(lib);
        std::fs::copy(&src, d.path().join(src.file_name().unwrap())).unwrap();
    }
    d
}

/// The result of one run.
pub struct Run {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    fn from(o: Output) -> Self {
        Self {
            code: o.status.code(),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }

    /// Asserts success and returns stdout.
    #[track_caller]
    pub fn ok(&self) -> &str {
        assert_eq!(
            self.code,
            Some(0),
            "expected success\nstdout:\n{}\nstderr:\n{}",
            self.stdout,
            self.stderr
        );
        &self.stdout
    }

    /// Asserts exit code `code` and that stderr contains every piece.
    #[track_caller]
    pub fn fails(&self, code: i32, pieces: &[&str]) {
        assert_eq!(
            self.code,
            Some(code),
            "expected exit code {code}\nstdout:\n{}\nstderr:\n{}",
            self.stdout,
            self.stderr
        );
        for p in pieces {
            assert!(
                self.stderr.contains(p),
                "stderr lacks {p:?}:\n{}",
                self.stderr
            );
        }
    }
}

/// Runs `tessera` with `args`, loading plugins from `plugins`.
pub fn tessera(plugins: &Path, args: &[&str]) -> Run {
    let mut cmd = Command::new(tessera_bin());
    cmd.arg("--plugins")
        .arg(plugins)
        .args(args)
        .env_remove("TESSERA_PLUGINS");
    Run::from(cmd.output().unwrap())
}

/// Reads a whole text file.
pub fn read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap_or_else(|e| panic!("cannot read {}: {e}", p.display()))
}

/// Path as `&str`.
pub fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Runs `tessera train --learner <learner> --data <data> --target <target>
/// <extra..> --out <out>`, loading plugins from `plugins`.
pub fn train(
    plugins: &Path,
    learner: &str,
    data: &Path,
    target: &str,
    extra: &[&str],
    out: &Path,
) -> Run {
    let mut args = vec![
        "train",
        "--learner",
        learner,
        "--data",
        s(data),
        "--target",
        target,
    ];
    args.extend_from_slice(extra);
    args.extend_from_slice(&["--out", s(out)]);
    tessera(plugins, &args)
}

/// Runs `tessera predict --model <model> --data <data> <extra..>`.
pub fn predict(plugins: &Path, model: &Path, data: &Path, extra: &[&str]) -> Run {
    let mut args = vec!["predict", "--model", s(model), "--data", s(data)];
    args.extend_from_slice(extra);
    tessera(plugins, &args)
}

/// Runs `tessera eval --model <model> --data <data> --target <target>
/// --json`, asserts success and returns the metrics.
pub fn eval_json(plugins: &Path, model: &Path, data: &Path, target: &str) -> serde_json::Value {
    let out = tessera(
        plugins,
        &[
            "eval",
            "--model",
            s(model),
            "--data",
            s(data),
            "--target",
            target,
            "--json",
        ],
    );
    serde_json::from_str(out.ok().trim()).unwrap()
}

/// Trains `learner` (from the plugin libraries `libs`) on `train_csv` with
/// seed 0, `valid` as `--valid` and the `extra` arguments; checks that the
/// saved model scores `valid` exactly as the freshly trained one did
/// (save -> load -> the same predictions), and returns those metrics and
/// the training report.
pub fn train_and_score(
    libs: &[&str],
    learner: &str,
    train_csv: &Path,
    valid: &Path,
    target: &str,
    extra: &[&str],
) -> (serde_json::Value, serde_json::Value) {
    let plugins = plugin_dir(libs);
    let tmp = TempDir::new(learner);
    let m = tmp.join("m.tsr");
    let report = tmp.join("report.json");
    let mut args = vec!["--seed", "0", "--valid", s(valid), "--report", s(&report)];
    args.extend_from_slice(extra);
    train(plugins.path(), learner, train_csv, target, &args, &m).ok();
    let report: serde_json::Value = serde_json::from_str(&read(&report)).unwrap();
    let metrics = eval_json(plugins.path(), &m, valid, target);
    assert_eq!(
        metrics, report["metrics"],
        "reloaded model scores differently"
    );
    (metrics, report)
}

/// Writes `lines` (one per line) to `name` in `dir` and returns its path.
pub fn write_lines(dir: &TempDir, name: &str, lines: &[String]) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, lines.join("\n") + "\n").unwrap();
    p
}
