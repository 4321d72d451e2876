//! `tessera serve` end to end: the real binary and plugins behind a real
//! socket, driven by the small client in `http.rs`. Answers are compared
//! with what `tessera predict` writes for the same rows; every error status
//! is provoked and its message read; batching, hot reload under load,
//! graceful shutdown and the OpenAPI document are checked against the
//! running server.

use std::{
    collections::BTreeMap,
    io::{BufRead, BufReader, Write},
    path::{Path, PathBuf},
    process::{Child, Command, ExitStatus, Stdio},
    sync::{
        Arc, Barrier, Mutex,
        atomic::{AtomicBool, Ordering},
        mpsc,
    },
    thread,
    time::{Duration, Instant},
};

use serde_json::{Value, json};

use crate::{
    http::{self, Response, get, post, request},
    util::{Run, TempDir, data, plugin_dir, read, repo, s, tessera_bin, train, write_lines},
};

/// How long a server may take to start listening.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// The admin token of the graphs that set one.
const TOKEN: &str = "s3cret-token";

const IRIS_FEATURES: &str = "[inputs.features]\nnames = [\"f0\", \"f1\", \"f2\", \"f3\"]\n";

// ---------------------------------------------------------------------
// A running server
// ---------------------------------------------------------------------

/// A running `tessera serve` on a free port; killed when dropped unless
/// the test waited for it to exit.
pub(crate) struct Served {
    child: Child,
    addr: String,
    log: Arc<Mutex<String>>,
    exited: Option<ExitStatus>,
    /// The shell that signals the server as soon as it is ready.
    signaller: Option<Child>,
}

impl Served {
    /// `tessera --plugins <plugins> serve <args..> --listen 127.0.0.1:0`,
    /// once it says where it listens.
    pub(crate) fn start(plugins: &Path, args: &[&str]) -> Self {
        Self::start_with_env(plugins, args, &[])
    }

    fn start_with_env(plugins: &Path, args: &[&str], env: &[(&str, &str)]) -> Self {
        Self::launch(plugins, args, env, None, "127.0.0.1:0")
    }

    /// [`Served::start`] listening on `listen` (a fixed address, for a
    /// server restarted where its clients expect it).
    pub(crate) fn start_at(plugins: &Path, args: &[&str], listen: &str) -> Self {
        Self::launch(plugins, args, &[], None, listen)
    }

    /// [`Served::start`], and signal `sig` sent the moment the server says
    /// it listens (by a shell started beforehand, so that no process start
    /// stands between the line and the signal).
    #[cfg(unix)]
    fn start_and_signal(plugins: &Path, args: &[&str], sig: &str) -> Self {
        Self::launch(plugins, args, &[], Some(sig), "127.0.0.1:0")
    }

    fn launch(
        plugins: &Path,
        args: &[&str],
        env: &[(&str, &str)],
        ready_signal: Option<&str>,
        listen: &str,
    ) -> Self {
        let mut cmd = Command::new(tessera_bin());
        cmd.arg("--plugins")
            .arg(plugins)
            .arg("serve")
            .args(args)
            .args(["--listen", listen])
            .env_remove("TESSERA_PLUGINS")
            .env_remove("TESSERA_ADMIN_TOKEN")
            .env_remove("TESSERA_LOG")
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("cannot start tessera serve");
        let stderr = child.stderr.take().unwrap();
        let mut signaller = ready_signal.map(|sig| {
            Command::new("sh")
                .arg("-c")
                .arg(format!("read go && kill -{sig} {}", child.id()))
                .stdin(Stdio::piped())
                .spawn()
                .expect("cannot start sh")
        });
        let mut go = signaller.as_mut().map(|s| s.stdin.take().unwrap());
        let log = Arc::new(Mutex::new(String::new()));
        let (tx, rx) = mpsc::channel();
        let sink = log.clone();
        // Drains stderr for the server's whole life, so the pipe never
        // fills; hands over the address once it is printed.
        thread::spawn(move || {
            let mut tx = Some(tx);
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if line.starts_with("listening on ")
                    && let Some(mut go) = go.take()
                {
                    let _ = go.write_all(b"go\n");
                }
                {
                    let mut l = sink.lock().unwrap();
                    l.push_str(&line);
                    l.push('\n');
                }
                if let Some(addr) = line.strip_prefix("listening on http://")
                    && let Some(tx) = tx.take()
                {
                    let _ = tx.send(addr.trim().to_string());
                }
            }
        });
        let mut served = Self {
            child,
            addr: String::new(),
            log,
            exited: None,
            signaller,
        };
        match rx.recv_timeout(START_TIMEOUT) {
            Ok(addr) => served.addr = addr,
            Err(e) => {
                let status = served.child.try_wait();
                panic!(
                    "tessera serve {args:?} did not start listening ({e}; exit: {status:?}):\n{}",
                    served.log()
                );
            }
        }
        served
    }

    pub(crate) fn addr(&self) -> &str {
        &self.addr
    }

    /// What it wrote on stderr so far.
    pub(crate) fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// Sends signal `sig` (`HUP`, `TERM`) with `kill`.
    #[cfg(unix)]
    pub(crate) fn signal(&self, sig: &str) {
        let st = Command::new("kill")
            .arg(format!("-{sig}"))
            .arg(self.child.id().to_string())
            .status()
            .expect("cannot run kill");
        assert!(st.success(), "kill -{sig} failed");
    }

    /// Waits for the process to exit, at most `within`.
    #[track_caller]
    fn wait_exit(&mut self, within: Duration) -> ExitStatus {
        let deadline = Instant::now() + within;
        loop {
            if let Some(st) = self.child.try_wait().unwrap() {
                self.exited = Some(st);
                return st;
            }
            if Instant::now() >= deadline {
                panic!(
                    "tessera serve did not exit within {within:?}:\n{}",
                    self.log()
                );
            }
            thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        if self.exited.is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        if let Some(mut sh) = self.signaller.take() {
            let _ = sh.kill();
            let _ = sh.wait();
        }
    }
}

/// `tessera --plugins <plugins> serve <args..>` that is expected to fail
/// before listening; killed (and the test failed) after 30 s.
fn serve_run(plugins: &Path, args: &[&str]) -> Run {
    let mut child = Command::new(tessera_bin())
        .arg("--plugins")
        .arg(plugins)
        .arg("serve")
        .args(args)
        .env_remove("TESSERA_PLUGINS")
        .env_remove("TESSERA_ADMIN_TOKEN")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut pipe = child.stderr.take().unwrap();
    let stderr = thread::spawn(move || {
        let mut e = String::new();
        let _ = std::io::Read::read_to_string(&mut pipe, &mut e);
        e
    });
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            let stderr = stderr.join().unwrap();
            panic!("tessera serve {args:?} did not exit (it should have failed):\n{stderr}");
        }
        thread::sleep(Duration::from_millis(20));
    };
    Run {
        code: status.code(),
        stdout: String::new(),
        stderr: stderr.join().unwrap(),
    }
}

// ---------------------------------------------------------------------
// Models, rows and expected answers
// ---------------------------------------------------------------------

/// Trains `learner` (seed 0, `settings`) on `csv` into `dir/name.tsr`.
fn model(
    plugins: &Path,
    dir: &TempDir,
    name: &str,
    learner: &str,
    csv: &Path,
    target: &str,
    settings: &[&str],
) -> PathBuf {
    let out = dir.join(&format!("{name}.tsr"));
    let mut args = vec!["--seed", "0"];
    args.extend_from_slice(settings);
    train(plugins, learner, csv, target, &args, &out).ok();
    out
}

/// A forest of `trees` trees on the iris training rows.
fn iris_forest(plugins: &Path, dir: &TempDir, name: &str, trees: usize) -> PathBuf {
    let n = format!("n_estimators={trees}");
    model(
        plugins,
        dir,
        name,
        "random_forest",
        &data("iris.train.csv"),
        "label",
        &["--set", &n],
    )
}

/// The feature rows of `csv` (every column but `label` and `target`).
fn rows_of(csv: &Path) -> Vec<Vec<f64>> {
    let text = read(csv);
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let keep: Vec<usize> = (0..header.len())
        .filter(|&i| header[i] != "label" && header[i] != "target")
        .collect();
    lines
        .filter(|l| !l.is_empty())
        .map(|l| {
            let cells: Vec<&str> = l.split(',').collect();
            keep.iter().map(|&i| cells[i].parse().unwrap()).collect()
        })
        .collect()
}

/// What a classifier answers for some rows.
#[derive(Clone, Debug, PartialEq)]
struct Answers {
    labels: Vec<String>,
    proba: Vec<Vec<f64>>,
}

impl Answers {
    /// The answers of rows `idx`.
    fn rows(&self, idx: &[usize]) -> Self {
        Self {
            labels: idx.iter().map(|&i| self.labels[i].clone()).collect(),
            proba: idx.iter().map(|&i| self.proba[i].clone()).collect(),
        }
    }

    /// Whether `self` is `want`: the same labels and probabilities within
    /// 1e-6.
    fn check(&self, want: &Self) -> Result<(), String> {
        if self.labels != want.labels {
            return Err(format!(
                "labels {:?}, expected {:?}",
                self.labels, want.labels
            ));
        }
        if self.proba.len() != want.proba.len() {
            return Err(format!(
                "{} rows of probabilities, expected {}",
                self.proba.len(),
                want.proba.len()
            ));
        }
        for (r, (a, b)) in self.proba.iter().zip(&want.proba).enumerate() {
            let close = a.len() == b.len() && a.iter().zip(b).all(|(x, y)| (x - y).abs() <= 1e-6);
            if !close {
                return Err(format!("row {r}: probabilities {a:?}, expected {b:?}"));
            }
        }
        Ok(())
    }
}

#[track_caller]
fn assert_answers(got: &Answers, want: &Answers, what: &str) {
    if let Err(e) = got.check(want) {
        panic!("{what}: {e}");
    }
}

/// `tessera predict --proba` of `model` on `csv`: the class names (from the
/// `proba_<class>` columns) and the answers.
fn predicted(plugins: &Path, model: &Path, csv: &Path) -> (Vec<String>, Answers) {
    let out = crate::util::predict(plugins, model, csv, &["--proba"]);
    let text = out.ok();
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    assert_eq!(header[0], "prediction", "{text}");
    let classes = header[1..]
        .iter()
        .map(|c| c.strip_prefix("proba_").unwrap().to_string())
        .collect();
    let mut a = Answers {
        labels: Vec::new(),
        proba: Vec::new(),
    };
    for l in lines {
        let cells: Vec<&str> = l.split(',').collect();
        a.labels.push(cells[0].to_string());
        a.proba
            .push(cells[1..].iter().map(|v| v.parse().unwrap()).collect());
    }
    (classes, a)
}

/// `tessera predict` of a regression `model` on `csv`, one value per row.
fn predicted_values(plugins: &Path, model: &Path, csv: &Path) -> Vec<f64> {
    let out = crate::util::predict(plugins, model, csv, &[]);
    out.ok()
        .lines()
        .skip(1)
        .map(|v| v.parse().unwrap())
        .collect()
}

/// An inference request: `rows` as FP32, nested.
fn infer_body(input: &str, rows: &[Vec<f64>]) -> Value {
    json!({
        "inputs": [{
            "name": input,
            "shape": [rows.len(), rows[0].len()],
            "datatype": "FP32",
            "data": rows,
        }]
    })
}

/// `rows` picked from `all` by index.
fn pick(all: &[Vec<f64>], idx: &[usize]) -> Vec<Vec<f64>> {
    idx.iter().map(|&i| all[i].clone()).collect()
}

/// One output tensor of an answer.
#[derive(Debug)]
enum Data {
    Bytes(Vec<String>),
    Fp64(Vec<f64>),
}

#[derive(Debug)]
struct Tensor {
    shape: Vec<usize>,
    data: Data,
}

fn flatten(v: &Value, out: &mut Vec<Value>) {
    match v {
        Value::Array(a) => a.iter().for_each(|x| flatten(x, out)),
        other => out.push(other.clone()),
    }
}

/// The JSON part and the output tensors of a 200 infer answer, JSON or
/// binary (`Inference-Header-Content-Length` splits the body; BYTES are a
/// 4-byte little-endian length then the bytes, FP64 little-endian).
#[track_caller]
fn outputs(r: &Response) -> (Value, BTreeMap<String, Tensor>) {
    assert_eq!(r.status, 200, "infer failed: {}", r.text());
    let (head, mut binary): (&[u8], &[u8]) = match r.header("inference-header-content-length") {
        Some(n) => {
            let n: usize = n.parse().unwrap();
            assert!(n <= r.body.len(), "JSON part {n} > body {}", r.body.len());
            r.body.split_at(n)
        }
        None => (&r.body, &[]),
    };
    let head: Value = serde_json::from_slice(head)
        .unwrap_or_else(|e| panic!("the JSON part is not JSON ({e}): {}", r.text()));
    let mut out = BTreeMap::new();
    for o in head["outputs"].as_array().expect("no outputs") {
        let name = o["name"].as_str().unwrap().to_string();
        let shape: Vec<usize> = o["shape"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d.as_u64().unwrap() as usize)
            .collect();
        let count: usize = shape.iter().product();
        let datatype = o["datatype"].as_str().unwrap();
        let data = if let Some(size) = o["parameters"]["binary_data_size"].as_u64() {
            assert!(o.get("data").is_none(), "{name}: both data and binary");
            let size = size as usize;
            assert!(size <= binary.len(), "{name}: {size} bytes past the body");
            let (mine, rest) = binary.split_at(size);
            binary = rest;
            match datatype {
                "FP64" => {
                    assert_eq!(size, count * 8, "{name}: binary size");
                    Data::Fp64(
                        mine.chunks_exact(8)
                            .map(|c| f64::from_le_bytes(c.try_into().unwrap()))
                            .collect(),
                    )
                }
                "BYTES" => {
                    let mut strings = Vec::new();
                    let mut b = mine;
                    while !b.is_empty() {
                        let n = u32::from_le_bytes(b[..4].try_into().unwrap()) as usize;
                        strings.push(String::from_utf8(b[4..4 + n].to_vec()).unwrap());
                        b = &b[4 + n..];
                    }
                    Data::Bytes(strings)
                }
                other => panic!("{name}: datatype {other}"),
            }
        } else {
            let mut flat = Vec::new();
            flatten(&o["data"], &mut flat);
            match datatype {
                "FP64" => Data::Fp64(flat.iter().map(|v| v.as_f64().unwrap()).collect()),
                "BYTES" => Data::Bytes(
                    flat.iter()
                        .map(|v| v.as_str().unwrap().to_string())
                        .collect(),
                ),
                other => panic!("{name}: datatype {other}"),
            }
        };
        let len = match &data {
            Data::Bytes(b) => b.len(),
            Data::Fp64(v) => v.len(),
        };
        assert_eq!(len, count, "{name}: shape {shape:?} but {len} values");
        out.insert(name, Tensor { shape, data });
    }
    assert!(
        binary.is_empty(),
        "{} bytes after the last binary output",
        binary.len()
    );
    (head, out)
}

/// A classifier's answer (`label` and `probabilities`).
#[track_caller]
fn answers(r: &Response) -> Answers {
    let (_, out) = outputs(r);
    let Some(Tensor {
        shape: ls,
        data: Data::Bytes(labels),
    }) = out.get("label")
    else {
        panic!("no BYTES `label` output: {out:?}");
    };
    let Some(Tensor {
        shape: ps,
        data: Data::Fp64(p),
    }) = out.get("probabilities")
    else {
        panic!("no FP64 `probabilities` output: {out:?}");
    };
    assert_eq!(ls.len(), 1, "label shape {ls:?}");
    assert_eq!(ps.len(), 2, "probabilities shape {ps:?}");
    assert_eq!(ls[0], ps[0], "label and probabilities rows");
    Answers {
        labels: labels.clone(),
        proba: p.chunks(ps[1]).map(<[f64]>::to_vec).collect(),
    }
}

/// Runs `f`; its panic message if it panicked.
fn caught(f: impl FnOnce()) -> Option<String> {
    let e = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).err()?;
    Some(
        e.downcast_ref::<String>()
            .cloned()
            .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_else(|| "a panic".into()),
    )
}

/// The sample value of the Prometheus series `series` (name and labels,
/// exactly as written), if present.
fn metric(text: &str, series: &str) -> Option<f64> {
    text.lines().find_map(|l| {
        l.strip_prefix(series)
            .and_then(|rest| rest.strip_prefix(' '))
            .map(|v| v.trim().parse().unwrap())
    })
}

#[track_caller]
fn metrics(addr: &str) -> String {
    let r = get(addr, "/metrics");
    assert_eq!(r.status, 200, "{}", r.text());
    r.text()
}

/// Writes `text` to `dir/name` at once (rename over the old file), so a
/// reload never reads half a file; returns its path.
fn write_file(dir: &TempDir, name: &str, text: &str) -> String {
    let tmp = dir.join(&format!(".{name}.new"));
    std::fs::write(&tmp, text).unwrap();
    let path = dir.join(name);
    std::fs::rename(&tmp, &path).unwrap();
    s(&path).to_string()
}

/// The version of the workspace (`[workspace.package] version`).
fn workspace_version() -> String {
    let text = read(&repo().join("Cargo.toml"));
    let doc: toml::Table = text.parse().unwrap();
    doc["workspace"]["package"]["version"]
        .as_str()
        .unwrap()
        .to_string()
}

// ---------------------------------------------------------------------
// The tests
// ---------------------------------------------------------------------

#[test]
fn read_endpoints_describe_the_server_and_its_models() {
    let plugins = plugin_dir(&["tessera_forest"]);
    let p = plugins.path();
    let tmp = TempDir::new("serve-read");
    let iris = iris_forest(p, &tmp, "iris", 5);
    let cancer = model(
        p,
        &tmp,
        "cancer",
        "random_forest",
        &data("breast_cancer.train.csv"),
        "label",
        &["--set", "n_estimators=3"],
    );
    let reg = model(
        p,
        &tmp,
        "reg",
        "random_forest",
        &data("diabetes.train.csv"),
        "target",
        &["--task", "regression", "--set", "n_estimators=3"],
    );
    let iris_arg = format!("iris={}", s(&iris));
    let cancer_arg = format!("cancer={}", s(&cancer));
    let reg_arg = format!("reg={}", s(&reg));
    let server = Served::start(
        p,
        &[
            "--model",
            &iris_arg,
            "--model",
            &cancer_arg,
            "--model",
            &reg_arg,
        ],
    );
    let a = server.addr();

    let v = get(a, "/v2");
    assert_eq!(v.status, 200);
    assert_eq!(
        v.json(),
        json!({
            "name": "tessera",
            "version": env!("CARGO_PKG_VERSION"),
            "extensions": ["binary_tensor_data", "model_repository"],
        })
    );
    assert_eq!(get(a, "/v2/health/live").json(), json!({ "live": true }));
    let ready = get(a, "/v2/health/ready");
    assert_eq!(
        (ready.status, ready.json()),
        (200, json!({ "ready": true }))
    );

    let meta = get(a, "/v2/models/iris");
    assert_eq!(meta.status, 200, "{}", meta.text());
    assert_eq!(
        meta.header("content-type"),
        Some("application/json"),
        "{:?}",
        meta.headers
    );
    assert_eq!(
        meta.json(),
        json!({
            "name": "iris",
            "versions": ["1"],
            "platform": "tessera",
            "inputs": [{ "name": "input", "datatype": "FP32", "shape": [-1, 4] }],
            "outputs": [
                { "name": "label", "datatype": "BYTES", "shape": [-1] },
                { "name": "probabilities", "datatype": "FP64", "shape": [-1, 3] },
            ],
            "parameters": {
                "classes": ["0", "1", "2"],
                "features": ["f0", "f1", "f2", "f3"],
            },
        })
    );
    assert_eq!(get(a, "/v2/models/iris/versions/1").json(), meta.json());
    let cancer_meta = get(a, "/v2/models/cancer").json();
    assert_eq!(cancer_meta["inputs"][0]["shape"], json!([-1, 30]));
    assert_eq!(cancer_meta["outputs"][1]["shape"], json!([-1, 2]));
    assert_eq!(cancer_meta["parameters"]["classes"], json!(["0", "1"]));
    let reg_meta = get(a, "/v2/models/reg").json();
    assert_eq!(
        reg_meta["outputs"],
        json!([{ "name": "prediction", "datatype": "FP64", "shape": [-1] }])
    );
    assert_eq!(reg_meta["inputs"][0]["shape"], json!([-1, 10]));
    assert!(
        reg_meta["parameters"].get("classes").is_none(),
        "{reg_meta}"
    );

    for path in ["/v2/models/iris/ready", "/v2/models/iris/versions/1/ready"] {
        let r = get(a, path);
        assert_eq!(
            (r.status, r.json()),
            (200, json!({ "name": "iris", "ready": true })),
            "{path}"
        );
    }

    let config = get(a, "/v2/models/iris/config");
    assert_eq!(config.status, 200);
    let c = config.json();
    assert_eq!(c["name"], "iris");
    assert_eq!(c["max_batch_size"], 64);
    assert_eq!(
        c["input"],
        json!([{ "name": "input", "data_type": "TYPE_FP32", "dims": [4] }])
    );
    assert_eq!(
        c["output"],
        json!([
            { "name": "label", "data_type": "TYPE_STRING", "dims": [] },
            { "name": "probabilities", "data_type": "TYPE_FP64", "dims": [3] },
        ])
    );
    assert_eq!(get(a, "/v2/models/iris/versions/1/config").json(), c);

    let index = json!([
        { "name": "cancer", "version": "1", "state": "READY", "reason": "" },
        { "name": "iris", "version": "1", "state": "READY", "reason": "" },
        { "name": "reg", "version": "1", "state": "READY", "reason": "" },
    ]);
    let r = post(a, "/v2/repository/index", &json!({}));
    assert_eq!((r.status, r.json()), (200, index.clone()));
    assert_eq!(get(a, "/v2/repository/index").json(), index);

    // Metrics: nothing for iris before its first request, then its count.
    let before = metrics(a);
    assert!(
        !before.contains("tessera_inference_requests_total{model=\"iris\""),
        "{before}"
    );
    let rows = rows_of(&data("iris.test.csv"));
    let r = post(a, "/v2/models/iris/infer", &infer_body("input", &rows[..2]));
    assert_eq!(r.status, 200, "{}", r.text());
    let bad = post(a, "/v2/models/iris/infer", &json!({ "inputs": [] }));
    assert_eq!(bad.status, 400, "{}", bad.text());
    let m = get(a, "/metrics");
    assert!(
        m.header("content-type")
            .is_some_and(|t| t.starts_with("text/plain")),
        "{:?}",
        m.headers
    );
    let text = m.text();
    for (series, want) in [
        (
            "tessera_inference_requests_total{model=\"iris\",code=\"200\"}",
            1.0,
        ),
        (
            "tessera_inference_requests_total{model=\"iris\",code=\"400\"}",
            1.0,
        ),
        ("tessera_batch_rows_sum{model=\"iris\"}", 2.0),
    ] {
        assert_eq!(metric(&text, series), Some(want), "{series}:\n{text}");
    }
    assert!(
        metric(&text, "tessera_http_responses_total{code=\"200\"}").unwrap() >= 10.0,
        "{text}"
    );
    assert!(text.contains("# TYPE tessera_inference_requests_total counter"));

    // No admin token configured: the admin routes are closed.
    let r = request(
        a,
        "POST",
        "/v2/repository/reload",
        &[("Authorization", "Bearer anything")],
        b"",
    );
    assert!(r.error(401).contains("no admin token is configured"));
}

#[test]
fn answers_equal_tessera_predict_for_every_row() {
    let plugins = plugin_dir(&["tessera_forest"]);
    let p = plugins.path();
    let tmp = TempDir::new("serve-infer");
    let iris = iris_forest(p, &tmp, "iris", 20);
    let reg = model(
        p,
        &tmp,
        "reg",
        "random_forest",
        &data("diabetes.train.csv"),
        "target",
        &["--task", "regression", "--set", "n_estimators=5"],
    );
    let test = data("iris.test.csv");
    let rows = rows_of(&test);
    let (classes, want) = predicted(p, &iris, &test);
    assert_eq!(classes, ["0", "1", "2"]);
    assert!(
        want.proba.iter().any(|r| r.iter().all(|&x| x < 0.99)),
        "the test wants some uncertain rows"
    );
    let iris_arg = format!("iris={}", s(&iris));
    let reg_arg = format!("reg={}", s(&reg));
    let server = Served::start(p, &["--model", &iris_arg, "--model", &reg_arg]);
    let a = server.addr();

    // Nested data, every test row at once.
    let r = post(a, "/v2/models/iris/infer", &infer_body("input", &rows));
    assert_eq!(r.header("content-type"), Some("application/json"));
    let (head, _) = outputs(&r);
    assert_eq!(head["model_name"], "iris");
    assert_eq!(head["model_version"], "1");
    assert!(head.get("id").is_none(), "{head}");
    assert_answers(&answers(&r), &want, "nested FP32");

    // Flat data, FP64, and one row at a time with a 1-D shape.
    let flat: Vec<f64> = rows.iter().flatten().copied().collect();
    let body = json!({
        "inputs": [{ "name": "input", "shape": [rows.len(), 4], "datatype": "FP64", "data": flat }]
    });
    assert_answers(
        &answers(&post(a, "/v2/models/iris/infer", &body)),
        &want,
        "flat FP64",
    );
    for i in [0, 7, rows.len() - 1] {
        let body = json!({
            "inputs": [{ "name": "input", "shape": [4], "datatype": "FP32", "data": rows[i] }]
        });
        assert_answers(
            &answers(&post(a, "/v2/models/iris/infer", &body)),
            &want.rows(&[i]),
            &format!("row {i} alone"),
        );
    }

    // INT32 rows: the answers of the same integers through predict.
    let ints: Vec<Vec<f64>> = rows
        .iter()
        .map(|r| r.iter().map(|v| v.round()).collect())
        .collect();
    let mut lines = vec!["f0,f1,f2,f3".to_string()];
    lines.extend(ints.iter().map(|r| {
        r.iter()
            .map(|v| format!("{v}"))
            .collect::<Vec<_>>()
            .join(",")
    }));
    let int_csv = write_lines(&tmp, "ints.csv", &lines);
    let (_, want_ints) = predicted(p, &iris, &int_csv);
    assert_ne!(want_ints, want, "rounding should change some answer");
    let int_data: Vec<Vec<i64>> = ints
        .iter()
        .map(|r| r.iter().map(|v| *v as i64).collect())
        .collect();
    for dt in ["INT32", "INT64"] {
        let body = json!({
            "inputs": [{ "name": "input", "shape": [ints.len(), 4], "datatype": dt, "data": int_data }]
        });
        assert_answers(
            &answers(&post(a, "/v2/models/iris/infer", &body)),
            &want_ints,
            dt,
        );
    }

    // The id is echoed, and so is X-Request-Id; one output can be asked for.
    let mut body = infer_body("input", &pick(&rows, &[3, 4]));
    body["id"] = json!("req-42");
    body["outputs"] = json!([{ "name": "probabilities" }]);
    let r = request(
        a,
        "POST",
        "/v2/models/iris/versions/1/infer",
        &[("X-Request-Id", "trace-7f3a")],
        body.to_string().as_bytes(),
    );
    assert_eq!(r.header("x-request-id"), Some("trace-7f3a"));
    let (head, out) = outputs(&r);
    assert_eq!(head["id"], "req-42");
    assert_eq!(out.keys().collect::<Vec<_>>(), ["probabilities"]);
    let Data::Fp64(p34) = &out["probabilities"].data else {
        panic!("{out:?}")
    };
    assert_eq!(out["probabilities"].shape, [2, 3]);
    let want34 = want.rows(&[3, 4]);
    let got34 = Answers {
        labels: want34.labels.clone(),
        proba: p34.chunks(3).map(<[f64]>::to_vec).collect(),
    };
    assert_answers(&got34, &want34, "one output");

    // Zero rows: an empty answer, not an error.
    let body =
        json!({ "inputs": [{ "name": "input", "shape": [0, 4], "datatype": "FP32", "data": [] }] });
    let empty = answers(&post(a, "/v2/models/iris/infer", &body));
    assert!(empty.labels.is_empty() && empty.proba.is_empty());

    // A regression model answers `prediction`, as predict does.
    let reg_test = data("diabetes.test.csv");
    let reg_rows = rows_of(&reg_test);
    let want_reg = predicted_values(p, &reg, &reg_test);
    let r = post(a, "/v2/models/reg/infer", &infer_body("input", &reg_rows));
    let (_, out) = outputs(&r);
    assert_eq!(out.keys().collect::<Vec<_>>(), ["prediction"]);
    assert_eq!(out["prediction"].shape, [reg_rows.len()]);
    let Data::Fp64(got) = &out["prediction"].data else {
        panic!("{out:?}")
    };
    assert_eq!(got.len(), want_reg.len());
    for (i, (g, w)) in got.iter().zip(&want_reg).enumerate() {
        assert!(
            (g - w).abs() <= 1e-6 * w.abs().max(1.0),
            "row {i}: {g} vs {w}"
        );
    }
}

/// A request with `rows` as binary `datatype` after the JSON part; `extra`
/// keys are added to the JSON. Returns the body and the JSON part's length.
fn binary_request(
    input: &str,
    rows: &[Vec<f64>],
    datatype: &str,
    extra: Value,
) -> (Vec<u8>, usize) {
    let mut bin = Vec::new();
    for v in rows.iter().flatten() {
        match datatype {
            "FP32" => bin.extend_from_slice(&(*v as f32).to_le_bytes()),
            "FP64" => bin.extend_from_slice(&v.to_le_bytes()),
            other => panic!("{other}"),
        }
    }
    let mut head = json!({
        "inputs": [{
            "name": input,
            "shape": [rows.len(), rows[0].len()],
            "datatype": datatype,
            "parameters": { "binary_data_size": bin.len() },
        }]
    });
    if let (Value::Object(h), Value::Object(e)) = (&mut head, extra) {
        h.extend(e);
    }
    let mut body = head.to_string().into_bytes();
    let n = body.len();
    body.extend_from_slice(&bin);
    (body, n)
}

#[track_caller]
fn post_binary(addr: &str, path: &str, body: &[u8], json_len: usize) -> Response {
    let n = json_len.to_string();
    request(
        addr,
        "POST",
        path,
        &[
            ("Content-Type", "application/octet-stream"),
            ("Inference-Header-Content-Length", &n),
        ],
        body,
    )
}

#[test]
fn binary_tensors_in_and_out_give_the_same_answers() {
    let plugins = plugin_dir(&["tessera_forest"]);
    let p = plugins.path();
    let tmp = TempDir::new("serve-binary");
    let iris = iris_forest(p, &tmp, "iris", 20);
    let test = data("iris.test.csv");
    let rows = rows_of(&test);
    let (_, want) = predicted(p, &iris, &test);
    let arg = format!("iris={}", s(&iris));
    let server = Served::start(p, &["--model", &arg]);
    let a = server.addr();
    let json_answer = answers(&post(
        a,
        "/v2/models/iris/infer",
        &infer_body("input", &rows),
    ));
    assert_answers(&json_answer, &want, "JSON");

    // Binary in, binary out (every output).
    let (body, n) = binary_request(
        "input",
        &rows,
        "FP32",
        json!({ "parameters": { "binary_data_output": true } }),
    );
    let r = post_binary(a, "/v2/models/iris/infer", &body, n);
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("content-type"), Some("application/octet-stream"));
    let split: usize = r
        .header("inference-header-content-length")
        .expect("no Inference-Header-Content-Length in a binary answer")
        .parse()
        .unwrap();
    let head: Value = serde_json::from_slice(&r.body[..split]).unwrap();
    let outs = head["outputs"].as_array().unwrap();
    assert_eq!(outs.len(), 2, "{head}");
    for o in outs {
        assert!(o.get("data").is_none(), "{o}");
        assert!(o["parameters"]["binary_data_size"].as_u64().unwrap() > 0);
    }
    // 30 FP64 rows of 3 probabilities.
    assert_eq!(
        head["outputs"][1]["parameters"]["binary_data_size"],
        rows.len() * 3 * 8
    );
    assert_answers(&answers(&r), &want, "binary in and out");

    // FP64 binary in, one output binary and the other in JSON.
    let (body, n) = binary_request(
        "input",
        &rows,
        "FP64",
        json!({
            "outputs": [
                { "name": "label" },
                { "name": "probabilities", "parameters": { "binary_data": true } },
            ]
        }),
    );
    let r = post_binary(a, "/v2/models/iris/infer", &body, n);
    let (head, _) = outputs(&r);
    assert!(head["outputs"][0]["data"].is_array(), "{head}");
    assert!(head["outputs"][1].get("data").is_none(), "{head}");
    assert_answers(&answers(&r), &want, "FP64 in, probabilities binary");

    // JSON in, binary out.
    let mut body = infer_body("input", &rows);
    body["parameters"] = json!({ "binary_data_output": true });
    let r = post(a, "/v2/models/iris/infer", &body);
    assert!(r.header("inference-header-content-length").is_some());
    assert_answers(&answers(&r), &want, "JSON in, binary out");

    // Binary sizes that do not add up are refused, naming the input.
    let (body, n) = binary_request("input", &rows, "FP32", json!({}));
    let r = post_binary(a, "/v2/models/iris/infer", &body[..body.len() - 4], n);
    let e = r.error(400);
    assert!(
        e.contains("input `input`") && e.contains("ends before"),
        "{e}"
    );
    let r = post_binary(a, "/v2/models/iris/infer", &body, body.len() + 1);
    let e = r.error(400);
    assert!(e.contains("Inference-Header-Content-Length"), "{e}");
}

/// An iris forest of `trees` trees, and an mlp trained without `impute`
/// (so it refuses missing values).
fn forest_and_net(p: &Path, tmp: &TempDir, trees: usize) -> (PathBuf, PathBuf) {
    let rf = iris_forest(p, tmp, "rf", trees);
    let net = model(
        p,
        tmp,
        "net",
        "mlp",
        &data("iris.train.csv"),
        "label",
        &["--set", "max_iter=20"],
    );
    (rf, net)
}

#[test]
fn every_client_mistake_gets_its_status_and_a_useful_message() {
    let plugins = plugin_dir(&["tessera_forest", "tessera_mlp"]);
    let p = plugins.path();
    let tmp = TempDir::new("serve-errors");
    let (rf, net) = forest_and_net(p, &tmp, 10);
    let test = data("iris.test.csv");
    let rows = rows_of(&test);
    let (_, want) = predicted(p, &rf, &test);
    let (_, want_net) = predicted(p, &net, &test);
    let graph = write_file(
        &tmp,
        "errors.toml",
        &format!(
            "[server]\nmax_body_bytes = 2048\nadmin_token = \"{TOKEN}\"\n\n{IRIS_FEATURES}\n\
             [nodes.rf]\nmodel = \"rf.tsr\"\ninputs = [\"features\"]\n\n\
             [nodes.net]\nmodel = \"net.tsr\"\ninputs = [\"features\"]\n\n\
             [outputs.iris]\nfrom = \"rf\"\n\n[outputs.net]\nfrom = \"net\"\n"
        ),
    );
    let server = Served::start(p, &[&graph]);
    let a = server.addr();
    let infer = "/v2/models/iris/infer";
    let good = infer_body("features", &rows[..3]);
    assert_answers(
        &answers(&post(a, infer, &good)),
        &want.rows(&[0, 1, 2]),
        "a good request",
    );

    // 400s, each naming what is wrong.
    let raw = |body: &str| request(a, "POST", infer, &[], body.as_bytes());
    let e = raw("{\n  \"inputs\": [\n    { \"name\": \"features\" \"shape\": [1, 4] }\n  ]\n}")
        .error(400);
    assert!(
        e.contains("not a valid inference request") && e.contains("line 3 column"),
        "{e}"
    );
    let bad_cases: Vec<(&str, Value, Vec<&str>)> = vec![
        (
            "wrong shape",
            json!({ "inputs": [{ "name": "features", "shape": [1, 3], "datatype": "FP32", "data": [[1, 2, 3]] }] }),
            vec!["input `features`", "shape [1, 3] does not match [-1, 4]"],
        ),
        (
            "too few values",
            json!({ "inputs": [{ "name": "features", "shape": [2, 4], "datatype": "FP32", "data": [[1, 2, 3, 4]] }] }),
            vec!["input `features`", "needs 8 values, `data` has 4"],
        ),
        (
            "BYTES",
            json!({ "inputs": [{ "name": "features", "shape": [1, 4], "datatype": "BYTES", "data": ["a", "b", "c", "d"] }] }),
            vec![
                "input `features`",
                "datatype `BYTES` is not accepted",
                "FP32, FP64, INT32 or INT64",
            ],
        ),
        (
            "strings as FP32",
            json!({ "inputs": [{ "name": "features", "shape": [1, 4], "datatype": "FP32", "data": [1, "2", 3, 4] }] }),
            vec!["input `features`", "holds a string"],
        ),
        (
            "wrong input name",
            infer_body("input", &rows[..1]),
            vec!["no input `input`", "its input is `features`"],
        ),
        (
            "unknown output",
            {
                let mut b = infer_body("features", &rows[..1]);
                b["outputs"] = json!([{ "name": "probs" }]);
                b
            },
            vec!["no output `probs`", "label, probabilities"],
        ),
        (
            "unknown field",
            json!({ "inputs": [], "input": [] }),
            vec!["unknown field `input`"],
        ),
    ];
    for (what, body, pieces) in bad_cases {
        let e = post(a, infer, &body).error(400);
        for piece in pieces {
            assert!(e.contains(piece), "{what}: {e:?} lacks {piece:?}");
        }
    }
    // A missing value sent to a model that cannot take one.
    let mut with_nan = json!(rows[..2]);
    with_nan[1][1] = Value::Null;
    let body = json!({ "inputs": [{ "name": "features", "shape": [2, 4], "datatype": "FP32", "data": with_nan }] });
    let e = post(a, "/v2/models/net/infer", &body).error(400);
    for piece in ["missing", "`f1`", "row 1", "impute"] {
        assert!(e.contains(piece), "NaN to mlp: {e:?} lacks {piece:?}");
    }
    assert_answers(
        &answers(&post(
            a,
            "/v2/models/net/infer",
            &infer_body("features", &rows[..2]),
        )),
        &want_net.rows(&[0, 1]),
        "mlp after a refused request",
    );

    // 404: unknown model (with a suggestion), unknown version, no route.
    let e = post(a, "/v2/models/irsi/infer", &good).error(404);
    assert!(
        e.contains("no model `irsi`") && e.contains("did you mean `iris`?"),
        "{e}"
    );
    let e = post(a, "/v2/models/iris/versions/2/infer", &good).error(404);
    assert!(
        e.contains("no version `2`") && e.contains("serving version `1`"),
        "{e}"
    );
    let e = get(a, "/v2/models/iris/versions/2").error(404);
    assert!(e.contains("no version `2`"), "{e}");
    let e = get(a, "/v2/modelz").error(404);
    assert!(e.contains("no route /v2/modelz"), "{e}");

    // 405: GET on infer.
    let e = get(a, infer).error(405);
    assert!(
        e.contains("GET is not allowed on /v2/models/iris/infer"),
        "{e}"
    );

    // 413: a declared length over max_body_bytes is refused before any
    // of the body is sent.
    let mut sock = http::connect(a).unwrap();
    sock.write_all(&http::head(
        a,
        "POST",
        infer,
        &[
            ("Content-Type", "application/json"),
            ("Content-Length", "1000000000"),
        ],
        None,
    ))
    .unwrap();
    let started = Instant::now();
    let r = http::read_response(&mut sock).expect("no answer to a huge Content-Length");
    assert!(started.elapsed() < Duration::from_secs(5));
    let e = r.error(413);
    assert!(
        e.contains("1000000000") && e.contains("max_body_bytes (2048)"),
        "{e}"
    );
    drop(sock);
    // A chunked body is counted as it arrives: under the limit it is read...
    let chunked = |payload: &[u8], piece: usize| -> Response {
        let mut sock = http::connect(a).unwrap();
        let mut msg = http::head(
            a,
            "POST",
            infer,
            &[
                ("Content-Type", "application/json"),
                ("Transfer-Encoding", "chunked"),
            ],
            None,
        );
        for c in payload.chunks(piece) {
            msg.extend_from_slice(format!("{:x}\r\n", c.len()).as_bytes());
            msg.extend_from_slice(c);
            msg.extend_from_slice(b"\r\n");
        }
        msg.extend_from_slice(b"0\r\n\r\n");
        sock.write_all(&msg).unwrap();
        http::read_response(&mut sock).unwrap()
    };
    let small = good.to_string();
    assert_answers(
        &answers(&chunked(small.as_bytes(), 16)),
        &want.rows(&[0, 1, 2]),
        "a chunked body",
    );
    // ... over it, refused.
    let padded = format!("{small}{}", " ".repeat(3000));
    let e = chunked(padded.as_bytes(), 1000).error(413);
    assert!(e.contains("over max_body_bytes (2048)"), "{e}");

    // 503: a model unloaded through the repository API.
    let unload = "/v2/repository/models/iris/unload";
    assert!(
        post(a, unload, &json!({}))
            .error(401)
            .contains("admin token")
    );
    let bearer = format!("Bearer {TOKEN}");
    let admin = |path: &str| request(a, "POST", path, &[("Authorization", &bearer)], b"");
    let r = admin(unload);
    assert_eq!(
        (r.status, r.json()),
        (200, json!({ "unloaded": "iris" })),
        "{}",
        r.text()
    );
    let r = post(a, infer, &good);
    let e = r.error(503);
    assert_eq!(r.header("retry-after"), Some("1"));
    assert!(e.contains("unloaded") && e.contains("/load"), "{e}");
    assert!(
        get(a, "/v2/models/iris/ready")
            .error(503)
            .contains("not ready")
    );
    let index = post(a, "/v2/repository/index", &json!({})).json();
    assert_eq!(
        index,
        json!([
            { "name": "iris", "version": "1", "state": "UNAVAILABLE", "reason": "unloaded" },
            { "name": "net", "version": "1", "state": "READY", "reason": "" },
        ])
    );
    // The other model still answers; metadata stays.
    assert_eq!(
        post(
            a,
            "/v2/models/net/infer",
            &infer_body("features", &rows[..1])
        )
        .status,
        200
    );
    assert_eq!(get(a, "/v2/models/iris").status, 200);
    let e = admin("/v2/repository/models/nope/unload").error(404);
    assert!(e.contains("no model `nope`"), "{e}");
    let r = admin("/v2/repository/models/iris/load");
    assert_eq!(
        (r.status, r.json()),
        (200, json!({ "loaded": "iris" })),
        "{}",
        r.text()
    );
    assert_answers(
        &answers(&post(a, infer, &good)),
        &want.rows(&[0, 1, 2]),
        "after load",
    );

    // Still alive, and every status was counted.
    assert_eq!(get(a, "/v2/health/live").json(), json!({ "live": true }));
    let text = metrics(a);
    for code in ["200", "400", "404", "405", "413", "503"] {
        let series = format!("tessera_http_responses_total{{code=\"{code}\"}}");
        assert!(
            metric(&text, &series).unwrap_or(0.0) >= 1.0,
            "{series}:\n{text}"
        );
    }
    assert!(
        !server.log().contains("panicked"),
        "the server log shows a panic:\n{}",
        server.log()
    );
}

#[test]
fn a_full_queue_answers_503_at_once_and_the_queued_request_still_succeeds() {
    let plugins = plugin_dir(&["tessera_forest"]);
    let p = plugins.path();
    let tmp = TempDir::new("serve-overload");
    // Many trees and many rows: one request keeps the one batch thread
    // (`instances = 1`) busy for a while.
    let rf = iris_forest(p, &tmp, "rf", 300);
    let test = data("iris.test.csv");
    let rows = rows_of(&test);
    let (_, want) = predicted(p, &rf, &test);
    let graph = write_file(
        &tmp,
        "overload.toml",
        &format!(
            "{IRIS_FEATURES}[nodes.rf]\nmodel = \"rf.tsr\"\ninputs = [\"features\"]\n\
             [outputs.slow]\nfrom = \"rf\"\n\
             batching = {{ max_batch = 1, max_delay_ms = 2000, max_queue = 1, instances = 1 }}\n"
        ),
    );
    let server = Served::start(p, &[&graph, "--threads", "1"]);
    let a = server.addr().to_string();
    let infer = "/v2/models/slow/infer";

    // The big request: 100 000 rows in binary, its labels back in binary.
    let n_big = 100_000;
    let big: Vec<Vec<f64>> = (0..n_big)
        .map(|i| {
            rows[i % rows.len()]
                .iter()
                .map(|v| v + (i % 13) as f64 * 0.05)
                .collect()
        })
        .collect();
    let (body, n) = binary_request(
        "features",
        &big,
        "FP32",
        json!({ "outputs": [{ "name": "label", "parameters": { "binary_data": true } }] }),
    );
    let big_thread = {
        let a = a.clone();
        thread::spawn(move || {
            let r = post_binary(&a, infer, &body, n);
            (r, Instant::now())
        })
    };
    // Its batch has started once the batch-size histogram counts it.
    let deadline = Instant::now() + Duration::from_secs(10);
    while metric(&metrics(&a), "tessera_batch_rows_count{model=\"slow\"}") != Some(1.0) {
        assert!(
            Instant::now() < deadline,
            "the big request never started:\n{}",
            server.log()
        );
        thread::sleep(Duration::from_millis(2));
    }
    assert!(
        !big_thread.is_finished(),
        "the big request finished too soon to hold the queue"
    );

    // Now four small requests at once: one waits in the queue, the
    // others are refused at once.
    let barrier = Arc::new(Barrier::new(4));
    let small: Vec<_> = (0..4)
        .map(|i| {
            let a = a.clone();
            let barrier = barrier.clone();
            let body = infer_body("features", &rows[i..=i]);
            thread::spawn(move || {
                barrier.wait();
                let start = Instant::now();
                let r = post(&a, infer, &body);
                (i, r, start.elapsed(), Instant::now())
            })
        })
        .collect();
    let small: Vec<_> = small.into_iter().map(|t| t.join().unwrap()).collect();
    let (big_answer, big_done) = big_thread.join().unwrap();
    let (_, out) = outputs(&big_answer);
    assert_eq!(out["label"].shape, [n_big]);

    let mut refused = 0;
    let mut answered = 0;
    for (i, r, took, done) in &small {
        match r.status {
            503 => {
                refused += 1;
                let e = r.error(503);
                assert!(e.contains("overloaded") && e.contains("max_queue"), "{e}");
                let retry: u64 = r
                    .header("retry-after")
                    .expect("a 503 without Retry-After")
                    .parse()
                    .unwrap();
                assert!(retry >= 1);
                assert!(
                    *took < Duration::from_secs(1) && *done < big_done,
                    "the 503 took {took:?}: it should come at once, before the busy batch ends"
                );
            }
            200 => {
                answered += 1;
                assert_answers(&answers(r), &want.rows(&[*i]), "the queued request");
            }
            other => panic!("status {other}: {}", r.text()),
        }
    }
    assert!(refused >= 1, "no request was refused");
    assert!(answered >= 1, "the queued request was not answered");
    let text = metrics(&a);
    assert_eq!(
        metric(
            &text,
            "tessera_inference_requests_total{model=\"slow\",code=\"503\"}"
        ),
        Some(f64::from(refused)),
        "{text}"
    );
    assert_eq!(get(&a, "/v2/health/live").status, 200);
}

#[test]
fn concurrent_requests_are_batched_without_mixing_answers() {
    let plugins = plugin_dir(&["tessera_forest", "tessera_mlp"]);
    let p = plugins.path();
    let tmp = TempDir::new("serve-batch");
    let (rf, net) = forest_and_net(p, &tmp, 20);
    let test = data("iris.test.csv");
    let rows = Arc::new(rows_of(&test));
    let want = Arc::new(predicted(p, &rf, &test).1);
    let want_net = Arc::new(predicted(p, &net, &test).1);
    let graph = write_file(
        &tmp,
        "batch.toml",
        &format!(
            "{IRIS_FEATURES}[nodes.rf]\nmodel = \"rf.tsr\"\ninputs = [\"features\"]\n\
             [nodes.net]\nmodel = \"net.tsr\"\ninputs = [\"features\"]\n\
             [outputs.iris]\nfrom = \"rf\"\nbatching = {{ max_batch = 64, max_delay_ms = 20 }}\n\
             [outputs.net]\nfrom = \"net\"\nbatching = {{ max_batch = 64, max_delay_ms = 20 }}\n"
        ),
    );
    let server = Served::start(p, &[&graph]);
    let a = server.addr().to_string();
    let threads = 16;
    let rounds = 4;
    let barrier = Arc::new(Barrier::new(threads));
    let handles: Vec<_> = (0..threads)
        .map(|t| {
            let (a, rows, want, want_net, barrier) = (
                a.clone(),
                rows.clone(),
                want.clone(),
                want_net.clone(),
                barrier.clone(),
            );
            thread::spawn(move || {
                let mut sent = 0;
                let mut failures = Vec::new();
                for r in 0..rounds {
                    let count = 1 + (t + r) % 3;
                    let idx: Vec<usize> = (0..count)
                        .map(|k| (t * 5 + r * 3 + k * 11) % rows.len())
                        .collect();
                    let mut body = infer_body("features", &pick(&rows, &idx));
                    let id = format!("t{t}-r{r}");
                    body["id"] = json!(id);
                    barrier.wait();
                    // A failure is recorded, not raised: the other threads
                    // wait for this one at the barrier.
                    failures.extend(caught(|| {
                        let resp = post(&a, "/v2/models/iris/infer", &body);
                        let (head, _) = outputs(&resp);
                        assert_eq!(head["id"], id.as_str(), "another request's answer");
                        assert_answers(&answers(&resp), &want.rows(&idx), &id);
                    }));
                    sent += count;
                }
                // A last round on the mlp, where thread 0 sends a missing
                // value: only its request fails.
                let idx = [t % rows.len(), (t + 9) % rows.len()];
                let mut data = json!(pick(&rows, &idx));
                if t == 0 {
                    data[1][2] = Value::Null;
                }
                let body = json!({ "inputs": [{ "name": "features", "shape": [2, 4], "datatype": "FP32", "data": data }] });
                barrier.wait();
                failures.extend(caught(|| {
                    let resp = post(&a, "/v2/models/net/infer", &body);
                    if t == 0 {
                        let e = resp.error(400);
                        assert!(
                            e.contains("missing") && e.contains("`f2`") && e.contains("row 1"),
                            "{e}"
                        );
                    } else {
                        assert_answers(&answers(&resp), &want_net.rows(&idx), "mlp");
                    }
                }));
                (sent, failures)
            })
        })
        .collect();
    let mut rows_sent = 0;
    let mut failures = Vec::new();
    for h in handles {
        let (sent, f) = h.join().unwrap();
        rows_sent += sent;
        failures.extend(f);
    }
    assert!(
        failures.is_empty(),
        "{} requests failed:\n{}",
        failures.len(),
        failures.join("\n")
    );

    let text = metrics(&a);
    let single = metric(
        &text,
        "tessera_batch_requests_bucket{model=\"iris\",le=\"1\"}",
    )
    .unwrap();
    let batches = metric(&text, "tessera_batch_requests_count{model=\"iris\"}").unwrap();
    assert!(
        single < batches,
        "no batch joined two requests ({single} of {batches} batches were single):\n{text}"
    );
    assert!(batches < (threads * rounds) as f64, "{text}");
    // Every request and every row went through exactly one batch.
    assert_eq!(
        metric(&text, "tessera_batch_requests_sum{model=\"iris\"}"),
        Some((threads * rounds) as f64),
        "{text}"
    );
    assert_eq!(
        metric(&text, "tessera_batch_rows_sum{model=\"iris\"}"),
        Some(rows_sent as f64),
        "{text}"
    );
}

/// A graph serving `model_file` as `iris`, with the admin token.
fn reload_graph(model_file: &str) -> String {
    format!(
        "[server]\nadmin_token = \"{TOKEN}\"\n\n{IRIS_FEATURES}\n\
         [nodes.m]\nmodel = \"{model_file}\"\ninputs = [\"features\"]\n\n\
         [outputs.iris]\nfrom = \"m\"\nbatching = {{ max_batch = 64, max_delay_ms = 2 }}\n"
    )
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Which {
    Old,
    New,
}

#[test]
fn reload_under_load_fails_no_request_and_bad_configs_keep_the_old_models() {
    let plugins = plugin_dir(&["tessera_forest"]);
    let p = plugins.path();
    let tmp = TempDir::new("serve-reload");
    let test = data("iris.test.csv");
    let rows = Arc::new(rows_of(&test));
    let old_model = iris_forest(p, &tmp, "old", 10);
    // The new model names its classes differently: every answer tells
    // which model gave it.
    let renamed: Vec<String> = read(&data("iris.train.csv"))
        .lines()
        .enumerate()
        .map(|(i, l)| {
            if i == 0 {
                return l.to_string();
            }
            let (x, label) = l.rsplit_once(',').unwrap();
            let name = match label {
                "0" => "setosa",
                "1" => "versicolor",
                _ => "virginica",
            };
            format!("{x},{name}")
        })
        .collect();
    let renamed = write_lines(&tmp, "renamed.csv", &renamed);
    let new_model = model(
        p,
        &tmp,
        "new",
        "random_forest",
        &renamed,
        "label",
        &["--set", "n_estimators=4"],
    );
    let want_old = Arc::new(predicted(p, &old_model, &test).1);
    let want_new = Arc::new(predicted(p, &new_model, &test).1);
    let graph = write_file(&tmp, "deploy.toml", &reload_graph("old.tsr"));
    let server = Served::start(p, &[&graph]);
    let a = server.addr().to_string();

    // Clients send requests without pause the whole time.
    let stop = Arc::new(AtomicBool::new(false));
    type Log = Vec<(Instant, Result<Which, String>)>;
    let clients: Vec<thread::JoinHandle<Log>> = (0..4)
        .map(|t| {
            let (a, rows, want_old, want_new, stop) = (
                a.clone(),
                rows.clone(),
                want_old.clone(),
                want_new.clone(),
                stop.clone(),
            );
            thread::spawn(move || {
                let mut log = Vec::new();
                let mut i = t;
                while !stop.load(Ordering::SeqCst) {
                    let idx = [i % rows.len(), (i + 7) % rows.len()];
                    i += 1;
                    let body = infer_body("features", &pick(&rows, &idx));
                    let start = Instant::now();
                    let result = match http::try_request(
                        &a,
                        "POST",
                        "/v2/models/iris/infer",
                        &[],
                        body.to_string().as_bytes(),
                    ) {
                        Err(e) => Err(format!("transport: {e}")),
                        Ok(r) if r.status != 200 => Err(format!("{}: {}", r.status, r.text())),
                        Ok(r) => {
                            let got = answers(&r);
                            match (
                                got.check(&want_old.rows(&idx)),
                                got.check(&want_new.rows(&idx)),
                            ) {
                                (Ok(()), _) => Ok(Which::Old),
                                (_, Ok(())) => Ok(Which::New),
                                (Err(e), _) => Err(format!("neither model's answer: {e}")),
                            }
                        }
                    };
                    log.push((start, result));
                }
                log
            })
        })
        .collect();
    let pause = || thread::sleep(Duration::from_millis(250));
    pause();

    let reload =
        |headers: &[(&str, &str)]| request(&a, "POST", "/v2/repository/reload", headers, b"");
    let bearer = format!("Bearer {TOKEN}");
    write_file(&tmp, "deploy.toml", &reload_graph("new.tsr"));
    let e = reload(&[]).error(401);
    assert!(e.contains("need the admin token"), "{e}");
    let e = reload(&[("Authorization", "Bearer wrong-token")]).error(401);
    assert!(e.contains("wrong"), "{e}");
    let e = reload(&[("X-Admin-Token", "s3cret")]).error(401);
    assert!(e.contains("wrong"), "{e}");
    let r = reload(&[("Authorization", &bearer)]);
    assert_eq!(
        (r.status, r.json()),
        (200, json!({ "reloaded": true })),
        "{}",
        r.text()
    );
    let reloaded = Instant::now();
    pause();

    // Bad configurations are refused, named, and change nothing.
    let bad_key = reload_graph("new.tsr").replace(
        "inputs = [\"features\"]\n",
        "inputs = [\"features\"]\nproces = true\n",
    );
    write_file(&tmp, "deploy.toml", &bad_key);
    let e = reload(&[("X-Admin-Token", TOKEN)]).error(400);
    for piece in [
        "reload refused",
        "previous deployment keeps serving",
        "deploy.toml",
        "line 10: `nodes.m.proces`: unknown key",
        "did you mean `process`?",
    ] {
        assert!(e.contains(piece), "{e:?} lacks {piece:?}");
    }
    write_file(&tmp, "deploy.toml", &reload_graph("missing.tsr"));
    let e = reload(&[("Authorization", &bearer)]).error(400);
    for piece in [
        "reload refused",
        "`nodes.m.model`",
        "no model file",
        "missing.tsr",
    ] {
        assert!(e.contains(piece), "{e:?} lacks {piece:?}");
    }
    pause();
    stop.store(true, Ordering::SeqCst);
    let log: Log = clients
        .into_iter()
        .flat_map(|c| c.join().unwrap())
        .collect();

    let failures: Vec<&String> = log.iter().filter_map(|(_, r)| r.as_ref().err()).collect();
    assert!(
        failures.is_empty(),
        "{} of {} requests failed during reloads, first: {}",
        failures.len(),
        log.len(),
        failures[0]
    );
    let after: Vec<Which> = log
        .iter()
        .filter(|(t, _)| *t > reloaded)
        .map(|(_, r)| *r.as_ref().unwrap())
        .collect();
    assert!(
        log.iter().any(|(_, r)| *r == Ok(Which::Old)),
        "no answer from the first model"
    );
    assert!(
        after.len() >= 10,
        "too few requests after the reload: {}",
        after.len()
    );
    assert!(
        after.iter().all(|w| *w == Which::New),
        "a request sent after the reload was answered by the old model"
    );
    let meta = get(&a, "/v2/models/iris").json();
    assert_eq!(
        meta["parameters"]["classes"],
        json!(["setosa", "versicolor", "virginica"])
    );
    let text = metrics(&a);
    assert_eq!(
        metric(&text, "tessera_reloads_total{result=\"ok\"}"),
        Some(1.0)
    );
    assert_eq!(
        metric(&text, "tessera_reloads_total{result=\"failed\"}"),
        Some(2.0)
    );

    // SIGHUP reloads too.
    #[cfg(unix)]
    {
        write_file(&tmp, "deploy.toml", &reload_graph("old.tsr"));
        server.signal("HUP");
        let body = infer_body("features", &rows);
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let got = answers(&post(&a, "/v2/models/iris/infer", &body));
            if got.check(&want_old).is_ok() {
                break;
            }
            assert_answers(&got, &want_new, "before SIGHUP took effect");
            assert!(
                Instant::now() < deadline,
                "SIGHUP did not reload:\n{}",
                server.log()
            );
            thread::sleep(Duration::from_millis(20));
        }
        assert_eq!(
            metric(&metrics(&a), "tessera_reloads_total{result=\"ok\"}"),
            Some(2.0)
        );
        assert!(server.log().contains("SIGHUP"), "{}", server.log());
    }
}

#[cfg(unix)]
#[test]
fn sigterm_lets_the_request_in_flight_finish_and_exits_0() {
    let plugins = plugin_dir(&["tessera_forest"]);
    let p = plugins.path();
    let tmp = TempDir::new("serve-drain");
    iris_forest(p, &tmp, "rf", 10);
    let test = data("iris.test.csv");
    let rows = rows_of(&test);
    let (_, want) = predicted(p, &tmp.join("rf.tsr"), &test);
    let graph = write_file(
        &tmp,
        "drain.toml",
        &format!(
            "{IRIS_FEATURES}[nodes.rf]\nmodel = \"rf.tsr\"\ninputs = [\"features\"]\n\
             [outputs.iris]\nfrom = \"rf\"\nbatching = {{ max_batch = 64, max_delay_ms = 1500 }}\n"
        ),
    );
    let mut server = Served::start(p, &[&graph]);
    let a = server.addr().to_string();
    let in_flight = {
        let a = a.clone();
        let body = infer_body("features", &rows[5..8]);
        thread::spawn(move || {
            let r = http::try_request(
                &a,
                "POST",
                "/v2/models/iris/infer",
                &[],
                body.to_string().as_bytes(),
            );
            (r, Instant::now())
        })
    };
    thread::sleep(Duration::from_millis(300));
    let term = Instant::now();
    server.signal("TERM");
    // New connections are refused while the request drains.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        match std::net::TcpStream::connect(&a) {
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => break,
            _ => {
                assert!(
                    Instant::now() < deadline,
                    "still accepting after SIGTERM:\n{}",
                    server.log()
                );
                thread::sleep(Duration::from_millis(10));
            }
        }
    }
    let (r, done) = in_flight.join().unwrap();
    let r = r.expect("the request in flight at SIGTERM got no answer");
    assert!(done > term, "the request ended before SIGTERM");
    assert_answers(&answers(&r), &want.rows(&[5, 6, 7]), "the drained request");
    let status = server.wait_exit(Duration::from_secs(5));
    assert_eq!(status.code(), Some(0), "exit {status:?}:\n{}", server.log());
    let e = std::net::TcpStream::connect(&a).expect_err("a connection after exit");
    assert_eq!(e.kind(), std::io::ErrorKind::ConnectionRefused, "{e}");
    let log = server.log();
    assert!(
        log.contains("shutting down") && log.contains("stopped"),
        "{log}"
    );
    assert!(!log.contains("drain timeout"), "{log}");
}

#[cfg(unix)]
#[test]
fn signals_sent_the_moment_the_server_is_ready_are_handled() {
    let plugins = plugin_dir(&["tessera_forest"]);
    let p = plugins.path();
    let tmp = TempDir::new("serve-ready-signal");
    let rf = iris_forest(p, &tmp, "rf", 3);
    let arg = format!("iris={}", s(&rf));
    // Whoever waits for the `listening on` line may signal right away: the
    // handlers must be in place by then. A window is narrow, so try a few
    // times.
    for i in 0..8 {
        if i % 2 == 0 {
            let mut server = Served::start_and_signal(p, &["--model", &arg], "HUP");
            let deadline = Instant::now() + Duration::from_secs(10);
            while !server.log().contains("SIGHUP: reloading") {
                if let Some(st) = server.child.try_wait().unwrap() {
                    server.exited = Some(st);
                    panic!(
                        "SIGHUP right after the ready line ended the server ({st}):\n{}",
                        server.log()
                    );
                }
                assert!(
                    Instant::now() < deadline,
                    "no reload after SIGHUP:\n{}",
                    server.log()
                );
                thread::sleep(Duration::from_millis(5));
            }
            let r = http::try_request(server.addr(), "GET", "/v2/health/live", &[], b"");
            assert!(
                r.is_ok_and(|r| r.status == 200),
                "SIGHUP right after the ready line ended the server:\n{}",
                server.log()
            );
        } else {
            let mut server = Served::start_and_signal(p, &["--model", &arg], "TERM");
            let status = server.wait_exit(Duration::from_secs(10));
            assert_eq!(
                status.code(),
                Some(0),
                "SIGTERM right after the ready line: {status:?}\n{}",
                server.log()
            );
        }
    }
}

/// Checks `v` against the OpenAPI `schema` (type, required, properties,
/// additionalProperties = false, items, enum; `$ref`s into `doc`).
fn check_schema(doc: &Value, schema: &Value, v: &Value, at: &str) -> Result<(), String> {
    if let Some(r) = schema.get("$ref").and_then(Value::as_str) {
        let target = doc
            .pointer(r.trim_start_matches('#'))
            .ok_or_else(|| format!("{at}: dangling $ref {r}"))?;
        return check_schema(doc, target, v, at);
    }
    if let Some(allowed) = schema.get("enum").and_then(Value::as_array)
        && !allowed.contains(v)
    {
        return Err(format!("{at}: {v} is not one of {allowed:?}"));
    }
    let ok = match schema.get("type").and_then(Value::as_str) {
        None => true,
        Some("object") => v.is_object(),
        Some("array") => v.is_array(),
        Some("string") => v.is_string(),
        Some("boolean") => v.is_boolean(),
        Some("integer") => v.is_i64() || v.is_u64(),
        Some("number") => v.is_number(),
        Some(other) => return Err(format!("{at}: unknown schema type {other}")),
    };
    if !ok {
        return Err(format!("{at}: {v} is not of type {}", schema["type"]));
    }
    if let Some(obj) = v.as_object() {
        for key in schema
            .get("required")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let key = key.as_str().unwrap();
            if !obj.contains_key(key) {
                return Err(format!("{at}: `{key}` is required, missing in {v}"));
            }
        }
        let props = schema.get("properties").and_then(Value::as_object);
        for (k, x) in obj {
            match props.and_then(|p| p.get(k)) {
                Some(s) => check_schema(doc, s, x, &format!("{at}.{k}"))?,
                None if schema.get("additionalProperties") == Some(&Value::Bool(false)) => {
                    return Err(format!("{at}: `{k}` is not in the schema"));
                }
                None => {}
            }
        }
    }
    if let (Some(items), Some(a)) = (schema.get("items"), v.as_array()) {
        for (i, x) in a.iter().enumerate() {
            check_schema(doc, items, x, &format!("{at}[{i}]"))?;
        }
    }
    Ok(())
}

#[test]
fn the_openapi_document_is_served_and_true() {
    let plugins = plugin_dir(&["tessera_forest"]);
    let p = plugins.path();
    let tmp = TempDir::new("serve-openapi");
    iris_forest(p, &tmp, "rf", 5);
    let rows = rows_of(&data("iris.test.csv"));
    // The admin token comes from the environment here.
    let graph = write_file(
        &tmp,
        "api.toml",
        &format!(
            "{IRIS_FEATURES}[nodes.rf]\nmodel = \"rf.tsr\"\ninputs = [\"features\"]\n\
             [outputs.iris]\nfrom = \"rf\"\nversion = \"3\"\n"
        ),
    );
    let server = Served::start_with_env(p, &[&graph], &[("TESSERA_ADMIN_TOKEN", TOKEN)]);
    let a = server.addr();

    let committed = std::fs::read(repo().join("docs/openapi.json")).unwrap();
    let served = get(a, "/v2/openapi.json");
    assert_eq!(served.status, 200);
    assert_eq!(served.header("content-type"), Some("application/json"));
    let doc: Value = serde_json::from_slice(&committed).unwrap();
    assert_eq!(served.json(), doc, "the served document differs");
    assert!(
        served.body == committed,
        "the served document differs from docs/openapi.json byte for byte"
    );
    let version = env!("CARGO_PKG_VERSION");
    assert_eq!(version, workspace_version());
    assert_eq!(
        doc["info"]["version"], version,
        "docs/openapi.json info.version is not the crate's"
    );
    assert_eq!(get(a, "/v2").json()["version"], version);

    // Every documented path and method answers with a documented status;
    // for the served model, 200 and a body that fits the schema.
    let bearer = format!("Bearer {TOKEN}");
    let infer = infer_body("features", &rows[..2]).to_string();
    let mut calls: Vec<(String, String, &Value)> = Vec::new();
    for (path, item) in doc["paths"].as_object().expect("no paths") {
        for (method, op) in item.as_object().unwrap() {
            if op.get("responses").is_some() {
                calls.push((path.clone(), method.to_uppercase(), op));
            }
        }
    }
    // Unload last, so that the model serves the other calls.
    calls.sort_by_key(|(path, _, _)| path.ends_with("/unload"));
    assert!(calls.len() >= 17, "{} operations", calls.len());
    let call = |path: &str, method: &str, op: &Value| -> Response {
        let mut headers: Vec<(&str, &str)> = Vec::new();
        if op.get("security").is_some() {
            headers.push(("Authorization", &bearer));
        }
        let body: &[u8] = if path.ends_with("/infer") {
            headers.push(("Content-Type", "application/json"));
            infer.as_bytes()
        } else {
            b""
        };
        request(a, method, path, &headers, body)
    };
    for (template, method, op) in &calls {
        let responses = op["responses"].as_object().unwrap();
        for (model, version) in [("iris", "3"), ("nope", "3"), ("iris", "9")] {
            let path = template
                .replace("{model_name}", model)
                .replace("{model_version}", version);
            let real = model == "iris" && (version == "3" || !template.contains("{model_version}"));
            let r = call(&path, method, op);
            let status = r.status.to_string();
            let what = format!("{method} {path}: {} {}", r.status, r.text());
            assert!(!r.text().contains("no route"), "{what}");
            let Some(documented) = responses.get(&status) else {
                panic!(
                    "{what}: status {status} is not documented (documented: {:?})",
                    responses.keys().collect::<Vec<_>>()
                );
            };
            if real {
                assert_eq!(r.status, 200, "{what}");
            }
            if r.status == 503 && documented.get("headers").is_some() {
                assert!(r.header("retry-after").is_some(), "{what}");
            }
            let content = &documented["content"];
            let ct = r.header("content-type").unwrap_or_default();
            let media = content
                .as_object()
                .and_then(|c| c.keys().find(|k| ct.starts_with(k.as_str())))
                .unwrap_or_else(|| panic!("{what}: content type {ct:?} is not documented"));
            if media == "application/json" {
                check_schema(&doc, &content[media]["schema"], &r.json(), "body")
                    .unwrap_or_else(|e| panic!("{what}: {e}"));
            }
            if !template.contains("{model_name}") {
                break;
            }
        }
    }
    // The repository routes need the token; the documented 401 says so.
    let r = request(a, "POST", "/v2/repository/reload", &[], b"");
    assert!(
        doc["paths"]["/v2/repository/reload"]["post"]["responses"]
            .get(r.status.to_string())
            .is_some()
    );
    assert_eq!(r.status, 401);
}

#[test]
fn usage_errors_exit_2_with_a_clear_message() {
    let plugins = plugin_dir(&["tessera_forest"]);
    let p = plugins.path();
    let tmp = TempDir::new("serve-usage");
    let rf = iris_forest(p, &tmp, "rf", 3);
    let listen = ["--listen", "127.0.0.1:0"];
    let run = |args: &[&str]| {
        let mut all = args.to_vec();
        all.extend_from_slice(&listen);
        serve_run(p, &all)
    };
    run(&[]).fails(2, &["nothing to serve", "--model NAME=FILE"]);
    run(&["--model", "iris"]).fails(2, &["--model `iris`", "expected NAME=FILE"]);
    run(&["--model", "=rf.tsr"]).fails(2, &["expected NAME=FILE"]);
    let missing = tmp.join("missing.tsr");
    let missing_arg = format!("iris={}", s(&missing));
    run(&["--model", &missing_arg]).fails(2, &["missing.tsr"]);
    let graph_text = |server: &str, model: &str| {
        format!(
            "[server]\n{server}\n{IRIS_FEATURES}[nodes.rf]\nmodel = \"{model}\"\ninputs = [\"features\"]\n\
             [outputs.iris]\nfrom = \"rf\"\n"
        )
    };
    let bad_server = write_file(
        &tmp,
        "bad-server.toml",
        &graph_text("max_body_bytes = 1", "rf.tsr"),
    );
    run(&[&bad_server]).fails(
        2,
        &[
            "bad-server.toml",
            "line 2: `server.max_body_bytes`",
            "from 1024",
            "got 1",
        ],
    );
    let bad_key = write_file(
        &tmp,
        "bad-key.toml",
        &graph_text("listn = \"127.0.0.1:1\"", "rf.tsr"),
    );
    run(&[&bad_key]).fails(
        2,
        &[
            "line 2: `server.listn`: unknown key",
            "did you mean `listen`?",
        ],
    );
    let no_model = write_file(
        &tmp,
        "no-model.toml",
        &graph_text("threads = 1", "gone.tsr"),
    );
    run(&[&no_model]).fails(
        2,
        &[
            "no-model.toml",
            "`nodes.rf.model`",
            "no model file",
            "gone.tsr",
        ],
    );
    let good = write_file(&tmp, "good.toml", &graph_text("threads = 1", "rf.tsr"));
    let model_arg = format!("iris={}", s(&rf));
    run(&[&good, "--model", &model_arg]).fails(2, &["not both"]);
    run(&[&good, "--threads", "0"]).fails(2, &["--threads must be at least 1"]);
    serve_run(p, &[&good, "--listen", "nowhere"])
        .fails(2, &["--listen `nowhere`", "not an address"]);
    serve_run(
        p,
        &[
            "--model",
            &model_arg,
            "--listen",
            "127.0.0.1:0",
            "--log-format",
            "xml",
        ],
    )
    .fails(2, &["xml"]);
}
