//! `tessera deploy k8s` through the real binary: every manifest written is
//! read back and checked at schema level (kinds and apiVersions, names,
//! selectors against labels, ports, probe paths against the server's
//! routes, the graph in the ConfigMap calling Services that exist, the
//! Indexed Job, the KServe runtime); mistakes exit with 2 and write
//! nothing.

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
    process::Command,
};

use serde_json::Value;

use crate::util::{TempDir, data, plugin_dir, read, repo, s, tessera, tessera_bin, train};

/// The kinds a manifest may be, by apiVersion.
const KINDS: &[(&str, &str)] = &[
    ("v1", "ConfigMap"),
    ("v1", "Service"),
    ("apps/v1", "Deployment"),
    ("batch/v1", "Job"),
    ("serving.kserve.io/v1alpha1", "ServingRuntime"),
    ("serving.kserve.io/v1beta1", "InferenceService"),
];

const INPUT: &str = "[inputs.features]\nnames = [\"f0\", \"f1\", \"f2\", \"f3\"]\n";

/// Two remote forests (the first with two replicas) and a combiner.
const GRAPH: &str = "[nodes.rf_a]\nmodel = \"models/a.tsr\"\ninputs = [\"features\"]\n\
    remote = [\"http://10.0.0.1:8000\", \"http://10.0.0.2:8000\"]\nhedge_after_ms = 20\n\
    [nodes.rf_b]\nmodel = \"models/b.tsr\"\ninputs = [\"features\"]\n\
    remote = [\"http://10.0.0.3:8000\"]\ntimeout_ms = 500\n\
    [nodes.vote]\ncombine = \"mean_proba\"\ninputs = [\"rf_a\", \"rf_b\"]\n\
    [outputs.iris]\nfrom = \"vote\"\n";

/// Every `*.json` under `dir`, by path relative to it.
fn manifests(dir: &Path) -> BTreeMap<PathBuf, Value> {
    let mut out = BTreeMap::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                todo.push(p);
            } else if p.extension().is_some_and(|x| x == "json") {
                let v: Value = serde_json::from_str(&read(&p))
                    .unwrap_or_else(|e| panic!("{}: not JSON: {e}", p.display()));
                out.insert(p.strip_prefix(dir).unwrap().to_path_buf(), v);
            }
        }
    }
    out
}

/// A DNS-1123 label (what Kubernetes requires of these names).
fn is_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

/// Whether every key of `sub` has the same value in `of`.
fn subset(sub: &Value, of: &Value) -> bool {
    let (Some(sub), Some(of)) = (sub.as_object(), of.as_object()) else {
        return false;
    };
    !sub.is_empty() && sub.iter().all(|(k, v)| of.get(k) == Some(v))
}

fn of_kind<'a>(m: &'a BTreeMap<PathBuf, Value>, kind: &str) -> Vec<&'a Value> {
    m.values().filter(|v| v["kind"] == kind).collect()
}

/// The pod spec of a Deployment or Job.
fn pod(v: &Value) -> &Value {
    &v["spec"]["template"]["spec"]
}

/// The schema-level checks every set of manifests must pass; returns the
/// ConfigMap's graph text.
fn check_manifests(m: &BTreeMap<PathBuf, Value>, namespace: Option<&str>) -> String {
    let openapi: Value = serde_json::from_str(&read(&repo().join("docs/openapi.json"))).unwrap();
    let routes = openapi["paths"].as_object().unwrap();
    for (path, v) in m {
        let pair = (
            v["apiVersion"].as_str().unwrap_or(""),
            v["kind"].as_str().unwrap_or(""),
        );
        assert!(KINDS.contains(&pair), "{}: {pair:?}", path.display());
        let name = v["metadata"]["name"].as_str().unwrap();
        assert!(is_label(name), "{}: name {name:?}", path.display());
        assert_eq!(
            v["metadata"]["namespace"].as_str(),
            namespace,
            "{}",
            path.display()
        );
        for (k, l) in v["metadata"]["labels"].as_object().unwrap() {
            let l = l.as_str().unwrap();
            assert!(
                l.len() <= 63 && !k.is_empty(),
                "{}: label {k}={l}",
                path.display()
            );
        }
    }
    let deployments = of_kind(m, "Deployment");
    for d in &deployments {
        let labels = &d["spec"]["template"]["metadata"]["labels"];
        assert!(subset(&d["spec"]["selector"]["matchLabels"], labels), "{d}");
        assert!(d["spec"]["replicas"].as_u64().unwrap() >= 1);
        let c = &pod(d)["containers"][0];
        for probe in ["readinessProbe", "livenessProbe", "startupProbe"] {
            let path = c[probe]["httpGet"]["path"].as_str().unwrap();
            assert!(
                routes.contains_key(path),
                "{probe} {path} is not a server route"
            );
        }
        assert_eq!(c["readinessProbe"]["httpGet"]["path"], "/v2/health/ready");
        assert_eq!(c["livenessProbe"]["httpGet"]["path"], "/v2/health/live");
        let requests = &c["resources"]["requests"];
        assert!(
            requests["cpu"].is_string() && requests["memory"].is_string(),
            "{c}"
        );
        // Every volume mounted is declared, and the ConfigMap one exists.
        let volumes = pod(d)["volumes"].as_array().unwrap();
        for mount in c["volumeMounts"].as_array().unwrap() {
            let v = volumes
                .iter()
                .find(|v| v["name"] == mount["name"])
                .unwrap_or_else(|| panic!("undeclared volume {mount}"));
            if let Some(cm) = v["configMap"]["name"].as_str() {
                assert!(
                    of_kind(m, "ConfigMap")
                        .iter()
                        .any(|c| c["metadata"]["name"] == cm)
                );
            }
        }
        let args: Vec<&str> = c["args"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a.as_str().unwrap())
            .collect();
        assert_eq!(args[0], "serve");
        assert!(args.ends_with(&["--listen", "0.0.0.0:8000"]), "{args:?}");
    }
    for svc in of_kind(m, "Service") {
        let sel = &svc["spec"]["selector"];
        let matching: Vec<&&Value> = deployments
            .iter()
            .filter(|d| subset(sel, &d["spec"]["template"]["metadata"]["labels"]))
            .collect();
        assert_eq!(
            matching.len(),
            1,
            "Service {} selects {} Deployments",
            svc["metadata"]["name"],
            matching.len()
        );
        let ports: Vec<&Value> = pod(matching[0])["containers"][0]["ports"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| &p["containerPort"])
            .collect();
        for p in svc["spec"]["ports"].as_array().unwrap() {
            assert!(
                ports.contains(&&p["targetPort"]),
                "targetPort {p} not in {ports:?}"
            );
        }
    }
    for job in of_kind(m, "Job") {
        assert_eq!(pod(job)["restartPolicy"], "Never");
        if job["spec"]["completionMode"] == "Indexed" {
            assert_eq!(job["spec"]["completions"], job["spec"]["parallelism"]);
        }
    }
    let runtimes = of_kind(m, "ServingRuntime");
    assert_eq!(runtimes.len(), 1);
    let rt = runtimes[0];
    assert!(
        rt["spec"]["protocolVersions"]
            .as_array()
            .unwrap()
            .contains(&"v2".into())
    );
    assert_eq!(rt["spec"]["supportedModelFormats"][0]["name"], "tessera");
    assert_eq!(rt["spec"]["containers"][0]["name"], "kserve-container");
    for isvc in of_kind(m, "InferenceService") {
        let model = &isvc["spec"]["predictor"]["model"];
        assert_eq!(model["runtime"], rt["metadata"]["name"]);
        assert_eq!(model["modelFormat"]["name"], "tessera");
    }
    let cms = of_kind(m, "ConfigMap");
    assert_eq!(cms.len(), 1);
    let text = cms[0]["data"]["deploy.toml"].as_str().unwrap().to_string();
    // Every remote URL names a Service written here.
    let graph: toml::Table = toml::from_str(&text).unwrap();
    let services: Vec<&str> = of_kind(m, "Service")
        .iter()
        .map(|s| s["metadata"]["name"].as_str().unwrap())
        .collect();
    for (id, node) in graph["nodes"].as_table().unwrap() {
        for url in node
            .get("remote")
            .and_then(|r| r.as_array())
            .into_iter()
            .flatten()
        {
            let url = url.as_str().unwrap();
            let host = url
                .strip_prefix("http://")
                .and_then(|r| r.strip_suffix(":8000"))
                .unwrap_or_else(|| panic!("{id}: {url}"));
            let (svc, rest) = host.split_once('.').unwrap_or((host, ""));
            assert!(services.contains(&svc), "{id}: {url} names no Service");
            match namespace {
                Some(ns) => assert_eq!(rest, format!("{ns}.svc")),
                None => assert_eq!(rest, ""),
            }
        }
    }
    text
}

#[test]
fn manifests_for_two_remote_nodes_and_a_combiner_are_well_formed() {
    let plugins = plugin_dir(&["tessera_forest"]);
    let p = plugins.path();
    let dir = TempDir::new("deploy-k8s");
    std::fs::create_dir_all(dir.join("models")).unwrap();
    for m in ["a", "b"] {
        train(
            p,
            "random_forest",
            &data("iris.train.csv"),
            "label",
            &["--set", "n_estimators=3", "--seed", "0"],
            &dir.join(&format!("models/{m}.tsr")),
        )
        .ok();
    }
    let config = dir.join("deploy.toml");
    std::fs::write(&config, format!("{INPUT}{GRAPH}")).unwrap();
    let out = dir.join("k8s");
    let run = tessera(
        p,
        &[
            "deploy",
            "k8s",
            s(&config),
            "--out",
            s(&out),
            "--namespace",
            "ml",
            "--train-shards",
            "3",
            "--learner",
            "random_forest",
            "--data",
            "iris.train.csv",
            "--target",
            "label",
            "--set",
            "n_estimators=30",
            "--seed",
            "0",
        ],
    );
    let listed = run.ok();
    let m = manifests(&out);
    for path in m.keys() {
        assert!(
            listed.contains(s(&out.join(path))),
            "{} not listed:\n{listed}",
            path.display()
        );
    }
    let text = check_manifests(&m, Some("ml"));

    let d = |f: &str| &m[Path::new(f)];
    assert_eq!(d("node-rf-a-deployment.json")["spec"]["replicas"], 2);
    assert_eq!(d("node-rf-b-deployment.json")["spec"]["replicas"], 1);
    assert_eq!(d("front-deployment.json")["spec"]["replicas"], 1);
    assert_eq!(of_kind(&m, "Deployment").len(), 3);
    let args = &pod(d("node-rf-a-deployment.json"))["containers"][0]["args"];
    assert_eq!(args[1], "--node");
    assert_eq!(args[2], "rf_a");
    assert_eq!(args[3], "/etc/tessera/deploy.toml");
    let job = d("train/train-job.json");
    assert_eq!(job["spec"]["completionMode"], "Indexed");
    assert_eq!(job["spec"]["completions"], 3);
    let script = pod(job)["containers"][0]["command"][2].as_str().unwrap();
    assert!(
        script.contains("--shard \"$((JOB_COMPLETION_INDEX + 1))/3\""),
        "{script}"
    );

    // The Jobs' commands run as written, with the volume's path put back
    // to a folder here: three shards, then the merge.
    let vol = dir.join("vol");
    std::fs::create_dir_all(&vol).unwrap();
    std::fs::copy(data("iris.train.csv"), vol.join("iris.train.csv")).unwrap();
    let here = |t: &str| {
        t.replace("/opt/tessera/tessera", s(&tessera_bin()))
            .replace("/models", s(&vol))
    };
    for i in 0..3 {
        let run = Command::new("sh")
            .args(["-c", &here(script)])
            .env("JOB_COMPLETION_INDEX", i.to_string())
            .env("TESSERA_PLUGINS", p)
            .output()
            .unwrap();
        assert!(
            run.status.success(),
            "shard {i}: {}",
            String::from_utf8_lossy(&run.stderr)
        );
    }
    let merge: Vec<String> = pod(d("merge/merge-job.json"))["containers"][0]["command"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| here(a.as_str().unwrap()))
        .collect();
    let run = Command::new(&merge[0])
        .args(&merge[1..])
        .env("TESSERA_PLUGINS", p)
        .output()
        .unwrap();
    assert!(
        run.status.success(),
        "merge: {}",
        String::from_utf8_lossy(&run.stderr)
    );
    assert!(vol.join("model.tsr").is_file());

    // The graph as the cluster runs it is a valid graph: with the volume's
    // path put back to where the models are here, it parses with no problem.
    let graph: toml::Table = toml::from_str(&text).unwrap();
    assert_eq!(
        graph["nodes"]["rf_a"]["remote"].as_array().unwrap().len(),
        2
    );
    assert_eq!(
        graph["nodes"]["rf_a"]["hedge_after_ms"].as_integer(),
        Some(20)
    );
    assert_eq!(graph["nodes"]["rf_b"]["timeout_ms"].as_integer(), Some(500));
    assert_eq!(
        graph["nodes"]["rf_a"]["model"].as_str(),
        Some("/models/models/a.tsr")
    );
    let here = text.replace("\"/models/", &format!("\"{}/", s(dir.path())));
    tessera_host::graph::config::parse(&here, dir.path(), Path::new("cm.toml"))
        .unwrap_or_else(|e| panic!("{e}\n{here}"));

    let readme = read(&out.join("README.md"));
    for path in m.keys() {
        assert!(
            readme.contains(&format!("`{}`", path.display())),
            "README lacks {}",
            path.display()
        );
    }
    assert!(
        readme.contains("`models/a.tsr` (`nodes.rf_a.model`) -> `/models/models/a.tsr`"),
        "{readme}"
    );

    // The image the manifests run holds the binary where they call it
    // and listens where they probe.
    let dockerfile = read(&repo().join("Dockerfile"));
    assert!(dockerfile.contains("ENTRYPOINT [\"/opt/tessera/tessera\"]"));
    assert!(dockerfile.contains("EXPOSE 8000"));
    assert!(script.contains("exec /opt/tessera/tessera train"));

    // A second run with a node gone removes that node's manifests.
    std::fs::write(
        &config,
        format!(
            "{INPUT}{}",
            GRAPH.replace(
                "remote = [\"http://10.0.0.3:8000\"]\ntimeout_ms = 500\n",
                ""
            )
        ),
    )
    .unwrap();
    tessera(p, &["deploy", "k8s", s(&config), "--out", s(&out)]).ok();
    let m = manifests(&out);
    assert!(!m.contains_key(Path::new("node-rf-b-deployment.json")));
    assert!(!m.contains_key(Path::new("train/train-job.json")));
    check_manifests(&m, None);
}

#[test]
fn a_graph_without_remote_nodes_gets_the_front_host_alone() {
    let dir = TempDir::new("deploy-local");
    let config = dir.join("deploy.toml");
    std::fs::write(
        &config,
        format!("{INPUT}[nodes.rf]\nmodel = \"rf.tsr\"\ninputs = [\"features\"]\n[outputs.rf]\nfrom = \"rf\"\n"),
    )
    .unwrap();
    let out = dir.join("k8s");
    // The model is not here: it is on the cluster's volume.
    let run = tessera(dir.path(), &["deploy", "k8s", s(&config), "--out", s(&out)]);
    run.ok();
    assert!(run.stderr.contains("no remote nodes"), "{}", run.stderr);
    let m = manifests(&out);
    let files: Vec<String> = m.keys().map(|p| p.display().to_string()).collect();
    assert_eq!(
        files,
        [
            "front-deployment.json",
            "front-service.json",
            "graph-configmap.json",
            "kserve/inferenceservice.json",
            "kserve/servingruntime.json",
        ]
    );
    check_manifests(&m, None);
    assert!(read(&out.join("README.md")).contains("(not found where the graph file is)"));
    tessera(
        dir.path(),
        &[
            "deploy",
            "k8s",
            s(&config),
            "--out",
            s(&out),
            "--replicas",
            "2",
        ],
    )
    .fails(2, &["--replicas: the graph has no remote nodes"]);
}

#[test]
fn mistakes_exit_with_2_and_write_nothing() {
    let dir = TempDir::new("deploy-mistakes");
    let config = dir.join("deploy.toml");
    std::fs::write(&config, format!("{INPUT}{GRAPH}")).unwrap();
    let out = dir.join("k8s");
    let deploy = |extra: &[&str]| {
        let mut args = vec!["deploy", "k8s", s(&config), "--out", s(&out)];
        args.extend_from_slice(extra);
        tessera(dir.path(), &args)
    };
    deploy(&["--replicas", "0"]).fails(2, &["--replicas must be at least 1"]);
    deploy(&["--replicas", "two"]).fails(2, &["--replicas `two`: expected N or ID=N"]);
    deploy(&["--replicas", "rf_a=100000"]).fails(2, &["at most 1000 replicas"]);
    deploy(&["--replicas", "rf_c=2"]).fails(
        2,
        &["`rf_c` is not a remote node", "rf_a, rf_b", "did you mean"],
    );
    deploy(&["--name", "Tessera"]).fails(2, &["--name `Tessera`"]);
    deploy(&["--train-shards", "2"]).fails(2, &["--learner"]);
    deploy(&[
        "--train-shards",
        "2",
        "--learner",
        "random_forest",
        "--data",
        "d.csv",
        "--target",
        "y",
    ])
    .fails(2, &["--train-shards needs a fixed seed (--seed N)"]);
    let missing = dir.join("missing.toml");
    tessera(
        dir.path(),
        &["deploy", "k8s", s(&missing), "--out", s(&out)],
    )
    .fails(2, &["cannot read", "missing.toml"]);
    // A graph problem is named with its line and key.
    std::fs::write(
        &config,
        format!(
            "{INPUT}{}",
            GRAPH.replace("model = \"models/b.tsr\"", "model = \"/srv/b.tsr\"")
        ),
    )
    .unwrap();
    deploy(&[]).fails(
        2,
        &[
            "deploy.toml",
            "line 9: `nodes.rf_b.model`: `/srv/b.tsr` is an absolute path",
        ],
    );
    std::fs::write(
        &config,
        format!("{INPUT}{}", GRAPH.replace("combine", "combin")),
    )
    .unwrap();
    deploy(&[]).fails(2, &["nodes.vote"]);
    assert!(!out.exists(), "a failed run wrote {}", out.display());
}
