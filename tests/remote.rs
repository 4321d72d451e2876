//! Remote nodes end to end: shards of a forest served by separate
//! `tessera serve --node ID` processes behind a front host that calls them
//! over HTTP; replicas killed and restarted under load; a hung shard
//! degrading the answer; the configuration mistakes refused.

use std::{
    path::Path,
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicUsize, Ordering},
    },
    thread,
    time::{Duration, Instant},
};

use serde_json::{Value, json};

use crate::{
    http::post,
    serve::Served,
    util::{TempDir, data, plugin_dir, read, s, tessera, train},
};

const PLUGINS: &[&str] = &["tessera_forest", "tessera_boosting", "tessera_decompose"];

/// The breast cancer test rows (30 features).
fn test_rows() -> Vec<Vec<f64>> {
    let text = read(&data("breast_cancer.test.csv"));
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let label = header.iter().position(|h| *h == "label").unwrap();
    lines
        .map(|l| {
            l.split(',')
                .enumerate()
                .filter(|(i, _)| *i != label)
                .map(|(_, v)| v.parse().unwrap())
                .collect()
        })
        .collect()
}

fn body(rows: &[Vec<f64>]) -> Value {
    json!({"inputs": [{"name": "features", "shape": [rows.len(), 30], "datatype": "FP32", "data": rows}]})
}

/// The probabilities of an answer.
fn probabilities(v: &Value) -> Vec<f64> {
    let out = v["outputs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["name"] == "probabilities")
        .unwrap_or_else(|| panic!("no probabilities in {v}"));
    out["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap())
        .collect()
}

/// A 40-tree forest split into 4 shards in `dir`; returns the whole
/// model's path and the fragment's text.
fn sharded_forest(p: &Path, dir: &TempDir) -> (String, String) {
    let model = dir.join("rf.tsr");
    train(
        p,
        "random_forest",
        &data("breast_cancer.train.csv"),
        "label",
        &["--set", "n_estimators=40", "--seed", "0"],
        &model,
    )
    .ok();
    tessera(
        p,
        &[
            "decompose",
            "--model",
            s(&model),
            "--with",
            "shard",
            "--set",
            "parts=4",
            "--out",
            s(dir.path()),
        ],
    )
    .ok();
    (s(&model).to_string(), read(&dir.join("graph.toml")))
}

/// The fragment with remote keys added to shard `i`'s node.
fn with_remote(fragment: &str, i: usize, keys: &str) -> String {
    let head = format!("[nodes.rf_shard_{i}]\n");
    assert!(fragment.contains(&head), "{fragment}");
    fragment.replacen(&head, &format!("{head}{keys}\n"), 1)
}

/// A `tessera serve --node` per shard of the fragment (the shard servers
/// ignore `remote`; the front host's file gets their addresses later).
fn shard_servers(p: &Path, dir: &TempDir, fragment: &str) -> Vec<Served> {
    let mut deploy = fragment.to_string();
    for i in 0..4 {
        deploy = with_remote(&deploy, i, "remote = [\"http://127.0.0.1:9\"]");
    }
    let file = dir.join("deploy.toml");
    std::fs::write(&file, &deploy).unwrap();
    (0..4)
        .map(|i| Served::start(p, &["--node", &format!("rf_shard_{i}"), s(&file)]))
        .collect()
}

#[test]
fn four_remote_shards_answer_as_the_whole_model() {
    let plugins = plugin_dir(PLUGINS);
    let p = plugins.path();
    let dir = TempDir::new("remote-shards");
    let (model, fragment) = sharded_forest(p, &dir);
    let shards = shard_servers(p, &dir, &fragment);
    let mut deploy = fragment.clone();
    for (i, sh) in shards.iter().enumerate() {
        deploy = with_remote(&deploy, i, &format!("remote = [\"http://{}\"]", sh.addr()));
    }
    std::fs::write(dir.join("deploy.toml"), &deploy).unwrap();
    let front = Served::start(p, &[s(&dir.join("deploy.toml"))]);
    let alone = Served::start(p, &["--model", &format!("rf={model}")]);
    let rows = test_rows();
    let got = post(front.addr(), "/v2/models/rf/infer", &body(&rows));
    assert_eq!(got.status, 200, "{}", got.text());
    let mut whole = body(&rows);
    whole["inputs"][0]["name"] = json!("input");
    let want = post(alone.addr(), "/v2/models/rf/infer", &whole);
    let (g, w) = (probabilities(&got.json()), probabilities(&want.json()));
    assert_eq!(g.len(), rows.len() * 2);
    let worst = g
        .iter()
        .zip(&w)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f64::max);
    assert!(worst <= 1e-6, "largest difference {worst}");
    // Each shard server answered the front host.
    for sh in &shards {
        let m = crate::http::get(sh.addr(), "/metrics").text();
        assert!(
            m.contains("tessera_inference_requests_total{model=\""),
            "{m}"
        );
    }
    // The metadata a remote node's server gives: its own model, its input.
    let meta = crate::http::get(shards[1].addr(), "/v2/models/rf_shard_1").json();
    assert_eq!(meta["inputs"][0]["name"], "features");
}

#[test]
fn a_killed_replica_costs_no_request_and_rejoins_when_restarted() {
    let plugins = plugin_dir(PLUGINS);
    let p = plugins.path();
    let dir = TempDir::new("remote-replicas");
    let (model, _) = sharded_forest(p, &dir);
    let graph = |urls: &str| {
        format!(
            "[inputs.features]\nshape = [-1, 30]\n\
             [nodes.rf]\nmodel = {model:?}\ninputs = [\"features\"]\nremote = [{urls}]\n\
             timeout_ms = 2000\n[outputs.rf]\nfrom = \"rf\"\n"
        )
    };
    std::fs::write(dir.join("deploy.toml"), graph("\"http://127.0.0.1:9\"")).unwrap();
    let deploy = dir.join("deploy.toml");
    let node = ["--node", "rf", s(&deploy)];
    let a = Served::start(p, &node);
    let b = Served::start(p, &node);
    let b_addr = b.addr().to_string();
    std::fs::write(
        dir.join("deploy.toml"),
        graph(&format!("\"http://{}\", \"http://{b_addr}\"", a.addr())),
    )
    .unwrap();
    let front = Served::start(p, &[s(&dir.join("deploy.toml"))]);
    let rows = test_rows();
    let one = body(&rows[..4]);
    let want = probabilities(&post(front.addr(), "/v2/models/rf/infer", &one).json());
    let stop = Arc::new(AtomicBool::new(false));
    let (ok, failed) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let load: Vec<_> = (0..3)
        .map(|_| {
            let (stop, ok, failed) = (stop.clone(), ok.clone(), failed.clone());
            let (addr, one, want) = (front.addr().to_string(), one.clone(), want.clone());
            thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    let r = post(&addr, "/v2/models/rf/infer", &one);
                    if r.status == 200 && probabilities(&r.json()) == want {
                        ok.fetch_add(1, Ordering::Relaxed);
                    } else {
                        failed.fetch_add(1, Ordering::Relaxed);
                    }
                }
            })
        })
        .collect();
    thread::sleep(Duration::from_millis(300));
    b.signal("KILL");
    drop(b);
    thread::sleep(Duration::from_millis(500));
    let during = ok.load(Ordering::Relaxed);
    // Restarted where the front host expects it.
    let restarted = Instant::now();
    let b = Served::start_at(p, &node, &b_addr);
    // Back in rotation: it answers some of the front host's requests.
    let back = loop {
        let m = crate::http::get(b.addr(), "/metrics").text();
        if m.contains("tessera_inference_requests_total{model=\"rf\",code=\"200\"}") {
            break restarted.elapsed();
        }
        assert!(
            restarted.elapsed() < Duration::from_secs(10),
            "the restarted replica got no request:\n{}",
            front.log()
        );
        thread::sleep(Duration::from_millis(20));
    };
    stop.store(true, Ordering::Relaxed);
    for t in load {
        t.join().unwrap();
    }
    assert_eq!(failed.load(Ordering::Relaxed), 0, "{}", front.log());
    assert!(during > 0 && ok.load(Ordering::Relaxed) > during);
    assert!(
        back < Duration::from_secs(2),
        "back in rotation after {back:?}"
    );
    let log = front.log();
    assert!(log.contains("replica out of rotation"), "{log}");
    assert!(log.contains("replica back in rotation"), "{log}");
}

#[test]
#[cfg(unix)]
fn a_hung_shard_degrades_the_answer_and_says_so() {
    let plugins = plugin_dir(PLUGINS);
    let p = plugins.path();
    let dir = TempDir::new("remote-hung");
    let (_, fragment) = sharded_forest(p, &dir);
    let shards = shard_servers(p, &dir, &fragment);
    let mut deploy = fragment.clone();
    for (i, sh) in shards.iter().enumerate() {
        deploy = with_remote(
            &deploy,
            i,
            &format!(
                "remote = [\"http://{}\"]\ntimeout_ms = 50\non_failure = \"degrade\"",
                sh.addr()
            ),
        );
    }
    std::fs::write(dir.join("deploy.toml"), &deploy).unwrap();
    let front = Served::start(p, &[s(&dir.join("deploy.toml"))]);
    let rows = test_rows();
    let all = probabilities(&post(front.addr(), "/v2/models/rf/infer", &body(&rows)).json());
    shards[2].signal("STOP");
    let mut slowest = Duration::ZERO;
    let mut answer = Value::Null;
    for _ in 0..20 {
        let t = Instant::now();
        let r = post(front.addr(), "/v2/models/rf/infer", &body(&rows));
        slowest = slowest.max(t.elapsed());
        assert_eq!(r.status, 200, "{}", r.text());
        answer = r.json();
        assert_eq!(
            answer["parameters"]["missing"],
            json!(["rf_shard_2"]),
            "{answer}"
        );
    }
    shards[2].signal("CONT");
    // The timeout bounds the wait (generously here: the machine is shared).
    assert!(slowest < Duration::from_secs(1), "slowest {slowest:?}");
    // The answer without shard 2: the other shards' trees, re-weighted
    // to a mean over the trees that answered; a probability still.
    let degraded = probabilities(&answer);
    assert_ne!(degraded, all);
    for pair in degraded.chunks(2) {
        assert!((pair[0] + pair[1] - 1.0).abs() < 1e-6, "{pair:?}");
    }
    let note = answer["parameters"]["fallbacks"][0].as_str().unwrap();
    assert!(
        note.contains("timeout_ms (50 ms)") || note.contains("no replica in rotation"),
        "{note}"
    );
}

#[test]
fn remote_mistakes_are_named_with_their_line() {
    let plugins = plugin_dir(PLUGINS);
    let p = plugins.path();
    let dir = TempDir::new("remote-mistakes");
    let (model, fragment) = sharded_forest(p, &dir);
    let check = |name: &str, text: &str, pieces: &[&str]| {
        let f = dir.join(name);
        std::fs::write(&f, text).unwrap();
        tessera(p, &["graph", "check", s(&f)]).fails(2, pieces);
    };
    let input = "[inputs.features]\nshape = [-1, 30]\n";
    check(
        "url.toml",
        &format!(
            "{input}[nodes.rf]\nmodel = {model:?}\ninputs = [\"features\"]\nremote = [\"ftp://x:1\"]\n[outputs.rf]\nfrom = \"rf\"\n"
        ),
        &["line 6: `nodes.rf.remote`: `ftp://x:1` is not a URL"],
    );
    check(
        "train.toml",
        &format!(
            "{input}[nodes.rf]\ninputs = [\"features\"]\nremote = [\"http://a:1\"]\n\
             train = {{ learner = \"random_forest\", data = \"x.csv\", target = \"label\" }}\n[outputs.rf]\nfrom = \"rf\"\n"
        ),
        &["`nodes.rf.train`: a remote node runs its model elsewhere"],
    );
    check(
        "orphan.toml",
        &format!(
            "{input}[nodes.rf]\nmodel = {model:?}\ninputs = [\"features\"]\ntimeout_ms = 5\n[outputs.rf]\nfrom = \"rf\"\n"
        ),
        &["`nodes.rf.timeout_ms`: only a node with `remote = [...]` takes this"],
    );
    // Degrading needs a mean to degrade: not a served node, not a sum.
    check(
        "served.toml",
        &format!(
            "{input}[nodes.rf]\nmodel = {model:?}\ninputs = [\"features\"]\non_failure = \"degrade\"\n[outputs.rf]\nfrom = \"rf\"\n"
        ),
        &["`nodes.rf.on_failure`: `degrade` needs a combiner reading this node"],
    );
    let sum = fragment
        .replace("combine = \"weighted\"", "combine = \"sum\"")
        .replacen(
            "[nodes.rf_shard_0]\n",
            "[nodes.rf_shard_0]\non_failure = \"degrade\"\n",
            1,
        );
    check(
        "sum.toml",
        &sum,
        &["`nodes.rf_shard_0.on_failure`: `rf` reads this node, and only `weighted`"],
    );
    // Serving one node: an unknown id is named with the closest.
    std::fs::write(dir.join("f.toml"), &fragment).unwrap();
    tessera(
        p,
        &["serve", "--node", "rf_shard_7", s(&dir.join("f.toml"))],
    )
    .fails(2, &["no node `rf_shard_7`", "did you mean `rf_shard_0`?"]);
    tessera(p, &["serve", "--node", "rf_shard_0"]).fails(2, &["--node needs the graph file"]);
}

#[test]
#[cfg(unix)]
fn a_slow_replica_is_hedged_by_the_other() {
    let plugins = plugin_dir(PLUGINS);
    let p = plugins.path();
    let dir = TempDir::new("remote-hedge");
    let (model, _) = sharded_forest(p, &dir);
    let graph = |urls: &str, hedge: &str| {
        format!(
            "[inputs.features]\nshape = [-1, 30]\n\
             [nodes.rf]\nmodel = {model:?}\ninputs = [\"features\"]\nremote = [{urls}]\n\
             timeout_ms = 5000\n{hedge}[outputs.rf]\nfrom = \"rf\"\n"
        )
    };
    let deploy = dir.join("deploy.toml");
    std::fs::write(&deploy, graph("\"http://127.0.0.1:9\"", "")).unwrap();
    let node = ["--node", "rf", s(&deploy)];
    let (a, b) = (Served::start(p, &node), Served::start(p, &node));
    let urls = format!("\"http://{}\", \"http://{}\"", a.addr(), b.addr());
    std::fs::write(&deploy, graph(&urls, "hedge_after_ms = 20\n")).unwrap();
    let front = Served::start(p, &[s(&deploy)]);
    let rows = test_rows();
    let one = body(&rows[..2]);
    let want = probabilities(&post(front.addr(), "/v2/models/rf/infer", &one).json());
    // A hang, not a crash: calls to `a` never answer and, within the
    // first health check, it is not yet out of rotation.
    a.signal("STOP");
    let t = Instant::now();
    for _ in 0..6 {
        let r = post(front.addr(), "/v2/models/rf/infer", &one);
        assert_eq!(r.status, 200, "{}", r.text());
        assert_eq!(probabilities(&r.json()), want);
    }
    let took = t.elapsed();
    a.signal("CONT");
    // Without the hedge, every other call would wait out the 5 s timeout.
    assert!(
        took < Duration::from_secs(3),
        "6 hedged calls took {took:?}"
    );
}
