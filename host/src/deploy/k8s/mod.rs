//! Kubernetes manifests for a graph (`tessera deploy k8s`), as JSON, one
//! object per file (`kubectl apply -f DIR` reads JSON as it reads YAML,
//! and JSON needs no hand-written quoting):
//!
//! * a ConfigMap with the graph rewritten for the cluster;
//! * per remote node, a Deployment running `tessera serve --node ID` and
//!   a Service in front of it; the front host calls that Service;
//! * the front host: a Deployment running the whole graph and its Service;
//! * on request, an Indexed Job training a model in shards, and a Job
//!   merging them (`train/`, `merge/`);
//! * a KServe `ServingRuntime` for tessera model files, with an example
//!   `InferenceService` (`kserve/`);
//! * a README saying what each file is and how to apply them.

mod objects;
mod readme;

use std::{collections::BTreeMap, path::PathBuf};

use serde_json::Value as Json;

use objects::K8s;

use super::{
    CONFIG_DIR, CONFIG_FILE, DeployError, GraphFile, MAX_LABEL, Output, PORT, fnv64, is_dns_label,
    object_name, on_volume,
};

/// The `app.kubernetes.io/managed-by` label of every object written.
pub const MANAGED_BY: &str = "tessera";
/// The port KServe sends requests to in a runtime's container.
pub const KSERVE_PORT: u16 = 8080;
/// Where KServe puts the model a `storageUri` names.
pub const KSERVE_MODEL: &str = "/mnt/models/model.tsr";
/// The server routes the probes ask (both in `docs/openapi.json`).
pub const READY_PATH: &str = "/v2/health/ready";
/// See [`READY_PATH`].
pub const LIVE_PATH: &str = "/v2/health/live";
/// The user and group the containers run as (the image's `USER`).
const UID: u32 = 10001;
/// Longest `--name`: room is left for `-node-<id>`.
const MAX_NAME: usize = 40;
/// Most replicas of one Deployment, or shards of one training Job.
const MAX_REPLICAS: u32 = 1000;

/// A model trained in shards by an Indexed Job, then merged.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TrainJob {
    /// How many shards (pods) train at once.
    pub shards: u32,
    /// The learner.
    pub learner: String,
    /// The training data, relative to the models volume.
    pub data: String,
    /// The target columns.
    pub target: Vec<String>,
    /// `KEY=VALUE` learner parameters, as `tessera train --set` takes them.
    pub set: Vec<String>,
    /// The learner's seed.
    pub seed: Option<u64>,
    /// The merged model, relative to the models volume.
    pub out: String,
}

/// What `tessera deploy k8s` is asked for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct K8sOptions {
    /// The prefix of every object's name.
    pub name: String,
    /// The namespace, written into every object; `None` leaves it to
    /// `kubectl apply -n`.
    pub namespace: Option<String>,
    /// The container image.
    pub image: String,
    /// The PersistentVolumeClaim holding the models.
    pub models_claim: String,
    /// Replicas of every remote node (default: as many as its `remote`
    /// list has URLs).
    pub replicas: Option<u32>,
    /// Replicas of single remote nodes, by id (over `replicas`).
    pub node_replicas: Vec<(String, u32)>,
    /// Replicas of the front host.
    pub front_replicas: u32,
    /// CPU each serving or training container requests.
    pub cpu: String,
    /// Memory each serving or training container requests.
    pub memory: String,
    /// A sharded training Job to write too.
    pub train: Option<TrainJob>,
}

impl Default for K8sOptions {
    fn default() -> Self {
        Self {
            name: "tessera".into(),
            namespace: None,
            image: format!("tessera:{}", env!("CARGO_PKG_VERSION")),
            models_claim: "tessera-models".into(),
            replicas: None,
            node_replicas: Vec::new(),
            front_replicas: 1,
            cpu: "1".into(),
            memory: "1Gi".into(),
            train: None,
        }
    }
}

/// Whether `q` is a Kubernetes quantity such as `500m`, `2`, `1.5Gi`.
fn is_quantity(q: &str) -> bool {
    const SUFFIXES: [&str; 14] = [
        "", "m", "k", "M", "G", "T", "P", "E", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei",
    ];
    let digits = q.trim_end_matches(|c: char| c.is_ascii_alphabetic());
    let suffix = &q[digits.len()..];
    let (whole, frac) = digits.split_once('.').unwrap_or((digits, "0"));
    SUFFIXES.contains(&suffix)
        && !whole.is_empty()
        && whole.bytes().all(|b| b.is_ascii_digit())
        && !frac.is_empty()
        && frac.bytes().all(|b| b.is_ascii_digit())
}

/// `s` as one word for `sh -c`.
fn sh_quote(s: &str) -> String {
    let plain = !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_-./=:,+@%".contains(&b));
    if plain {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

impl K8sOptions {
    /// The options' own mistakes (those that need no graph).
    fn check(&self) -> Result<(), DeployError> {
        let bad = |m: String| Err(DeployError::Option(m));
        if !is_dns_label(&self.name, MAX_NAME) {
            return bad(format!(
                "--name `{}`: expected lowercase letters, digits and `-` (at most {MAX_NAME}, \
                 starting and ending with a letter or digit)",
                self.name
            ));
        }
        if !self.name.starts_with(|c: char| c.is_ascii_lowercase()) {
            return bad(format!(
                "--name `{}`: must start with a letter (Service names do)",
                self.name
            ));
        }
        if let Some(ns) = &self.namespace
            && !is_dns_label(ns, MAX_LABEL)
        {
            return bad(format!(
                "--namespace `{ns}`: expected lowercase letters, digits and `-`"
            ));
        }
        let claim_ok = self.models_claim.len() <= 253
            && self
                .models_claim
                .split('.')
                .all(|part| is_dns_label(part, MAX_LABEL));
        if !claim_ok {
            return bad(format!(
                "--models-claim `{}`: expected a PersistentVolumeClaim name (lowercase letters, \
                 digits, `-` and `.`)",
                self.models_claim
            ));
        }
        if self.image.is_empty() || self.image.contains(char::is_whitespace) {
            return bad(format!(
                "--image `{}`: expected an image reference",
                self.image
            ));
        }
        for (flag, q) in [("--cpu", &self.cpu), ("--memory", &self.memory)] {
            if !is_quantity(q) {
                return bad(format!(
                    "{flag} `{q}`: expected a Kubernetes quantity such as 500m, 2 or 1Gi"
                ));
            }
        }
        if self.front_replicas == 0 {
            return bad("--front-replicas must be at least 1".into());
        }
        if self.replicas == Some(0) || self.node_replicas.iter().any(|(_, n)| *n == 0) {
            return bad("--replicas must be at least 1 (a node with none cannot answer)".into());
        }
        // Each replica is a URL in the graph the front host reads, and each
        // shard a path on the merge's command line.
        let most = [self.front_replicas]
            .into_iter()
            .chain(self.replicas)
            .chain(self.node_replicas.iter().map(|(_, n)| *n))
            .chain(self.train.as_ref().map(|t| t.shards))
            .max()
            .unwrap_or(1);
        if most > MAX_REPLICAS {
            return bad(format!(
                "at most {MAX_REPLICAS} replicas or shards, got {most}"
            ));
        }
        if let Some(t) = &self.train {
            if t.shards == 0 {
                return bad("--train-shards must be at least 1".into());
            }
            for (flag, p) in [("--data", &t.data), ("--train-out", &t.out)] {
                if let Err(m) = on_volume(p) {
                    return bad(format!("{flag}: {m}"));
                }
            }
            if let Some(s) = t.set.iter().find(|s| !s.contains('=')) {
                return bad(format!("--set `{s}`: expected KEY=VALUE"));
            }
            let seeded = t.seed.is_some()
                || t.set
                    .iter()
                    .any(|s| s.split('=').next().map(str::trim) == Some("random_state"));
            if !seeded {
                return bad(
                    "--train-shards needs a fixed seed (--seed N): every shard must draw as \
                     one run of the whole model would"
                        .into(),
                );
            }
        }
        Ok(())
    }
}

/// The manifests for `graph`.
///
/// # Errors
/// A wrong option, a remote node named by `--replicas` that the graph
/// lacks, or two node ids that make one object name.
pub fn manifests(graph: &GraphFile, opts: &K8sOptions) -> Result<Output, DeployError> {
    opts.check()?;
    let remote_ids: Vec<&str> = graph.remote.iter().map(|r| r.id.as_str()).collect();
    if opts.replicas.is_some() && remote_ids.is_empty() {
        return Err(DeployError::Option(
            "--replicas: the graph has no remote nodes (no `remote = [...]`); the front host \
             runs it all (scale it with --front-replicas)"
                .into(),
        ));
    }
    for (id, _) in &opts.node_replicas {
        if !remote_ids.contains(&id.as_str()) {
            return Err(DeployError::Option(format!(
                "--replicas {id}=...: `{id}` is not a remote node of {} (remote nodes: {}){}",
                graph.path.display(),
                if remote_ids.is_empty() {
                    "none".to_string()
                } else {
                    remote_ids.join(", ")
                },
                crate::graph::config::hint(id, &remote_ids)
            )));
        }
    }
    let k = K8s {
        opts,
        grace_s: (graph.drain_timeout_ms.div_ceil(1000) + 5).max(30),
    };
    let mut names: BTreeMap<String, &str> = BTreeMap::new();
    let mut nodes = Vec::new();
    for r in &graph.remote {
        let name = object_name(&format!("{}-node-", opts.name), &r.id);
        if let Some(other) = names.insert(name.clone(), &r.id) {
            return Err(DeployError::Option(format!(
                "{}: nodes `{other}` (line {}) and `{}` (line {}) both make the Kubernetes \
                 name `{name}`; rename one",
                graph.path.display(),
                graph.line(&["nodes", other]),
                r.id,
                graph.line(&["nodes", &r.id]),
            )));
        }
        let replicas = opts
            .node_replicas
            .iter()
            .rev()
            .find(|(id, _)| *id == r.id)
            .map(|(_, n)| *n)
            .or(opts.replicas)
            .unwrap_or(r.urls as u32);
        nodes.push((r.id.as_str(), name, replicas));
    }
    // The Service's URL once per replica: the front host keeps one
    // rotation entry per URL, so retries and hedging still have another
    // entry to go to, and kube-proxy spreads the connections over the
    // pods.
    let urls: BTreeMap<String, Vec<String>> = nodes
        .iter()
        .map(|(id, name, n)| (id.to_string(), vec![k.url(name); *n as usize]))
        .collect();
    let (toml, mut notes) = graph.for_cluster(&urls);
    let checksum = format!("{:016x}", fnv64(toml.as_bytes()));

    let mut files: Vec<(PathBuf, Json, String)> = Vec::new();
    let mut add = |path: &str, object: Json, what: String| {
        files.push((PathBuf::from(path), object, what));
    };
    add(
        "graph-configmap.json",
        k.config_map(&toml),
        format!(
            "ConfigMap `{}`: the graph, as the cluster runs it",
            k.config_name()
        ),
    );
    let front_args = vec![
        "serve".to_string(),
        format!("{CONFIG_DIR}/{CONFIG_FILE}"),
        "--listen".into(),
        format!("0.0.0.0:{PORT}"),
    ];
    add(
        "front-deployment.json",
        k.deployment(
            &opts.name,
            "front",
            opts.front_replicas,
            front_args,
            &checksum,
        ),
        format!(
            "Deployment `{}`: the front host, running the whole graph ({} replica{})",
            opts.name,
            opts.front_replicas,
            plural(opts.front_replicas)
        ),
    );
    add(
        "front-service.json",
        k.service(&opts.name, "front"),
        format!("Service `{}`: what clients call (port {PORT})", opts.name),
    );
    for (id, name, replicas) in &nodes {
        let component = object_name("node-", id);
        let args = vec![
            "serve".to_string(),
            "--node".into(),
            id.to_string(),
            format!("{CONFIG_DIR}/{CONFIG_FILE}"),
            "--listen".into(),
            format!("0.0.0.0:{PORT}"),
        ];
        let file = object_name("node-", id);
        add(
            &format!("{file}-deployment.json"),
            k.deployment(name, &component, *replicas, args, &checksum),
            format!(
                "Deployment `{name}`: node `{id}` alone ({replicas} replica{})",
                plural(*replicas)
            ),
        );
        add(
            &format!("{file}-service.json"),
            k.service(name, &component),
            format!("Service `{name}`: the front host calls node `{id}` here"),
        );
    }
    if let Some(t) = &opts.train {
        add(
            "train/train-job.json",
            k.train_job(t),
            format!(
                "Indexed Job `{}-train`: `{}` trained in {} shards on {}",
                opts.name, t.learner, t.shards, t.data
            ),
        );
        add(
            "merge/merge-job.json",
            k.merge_job(t),
            format!(
                "Job `{}-merge`: the shards merged into {}",
                opts.name, t.out
            ),
        );
    }
    add(
        "kserve/servingruntime.json",
        k.serving_runtime(),
        format!(
            "ServingRuntime `{}-runtime`: tessera as a KServe runtime (model format `tessera`, \
             protocol v2)",
            opts.name
        ),
    );
    add(
        "kserve/inferenceservice.json",
        k.inference_service(),
        format!(
            "InferenceService `{}-model`: an example that serves one model file with it",
            opts.name
        ),
    );
    if nodes.is_empty() {
        notes.push(format!(
            "{}: no remote nodes (`remote = [...]`): the front host runs the whole graph",
            graph.path.display()
        ));
    }
    let mut out = Output {
        files: files
            .iter()
            .map(|(p, v, _)| {
                let text = serde_json::to_string_pretty(v).unwrap_or_default() + "\n";
                (p.clone(), text)
            })
            .collect(),
        notes,
    };
    let listed: Vec<(PathBuf, String)> = files.into_iter().map(|(p, _, w)| (p, w)).collect();
    out.files
        .push((PathBuf::from("README.md"), k.readme(graph, &listed)));
    Ok(out)
}

fn plural(n: u32) -> &'static str {
    if n == 1 { "" } else { "s" }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::deploy::GraphFile;
    use serde_json::json;
    use std::path::Path;

    /// A graph with two remote nodes (one with two replicas) and a
    /// combiner; shared with the other modules' tests.
    pub(crate) const GRAPH: &str = "[inputs.x]\nshape = [-1, 4]\n\
        [nodes.rf_a]\nmodel = \"a.tsr\"\ninputs = [\"x\"]\n\
        remote = [\"http://10.0.0.1:8000\", \"http://10.0.0.2:8000\"]\n\
        [nodes.rf_b]\nmodel = \"b.tsr\"\ninputs = [\"x\"]\nremote = [\"http://10.0.0.3:8000\"]\n\
        [nodes.vote]\ncombine = \"mean_proba\"\ninputs = [\"rf_a\", \"rf_b\"]\n\
        [outputs.vote]\nfrom = \"vote\"\n";

    pub(crate) fn graph(text: &str) -> GraphFile {
        GraphFile::from_text(text.into(), &std::env::temp_dir().join("g.toml")).unwrap()
    }

    /// The manifest written at `path`, parsed.
    pub(crate) fn find(out: &Output, path: &str) -> Json {
        let text = &out
            .files
            .iter()
            .find(|(p, _)| p == Path::new(path))
            .unwrap_or_else(|| panic!("no {path}"))
            .1;
        serde_json::from_str(text).unwrap()
    }

    #[test]
    fn quantities_and_quoting() {
        for q in ["1", "500m", "1.5Gi", "64Mi"] {
            assert!(is_quantity(q), "{q}");
        }
        for q in ["", "1.", "Gi", "1GB", "-1", "1 Gi"] {
            assert!(!is_quantity(q), "{q}");
        }
        assert_eq!(sh_quote("max_depth=4"), "max_depth=4");
        assert_eq!(sh_quote("a b"), "'a b'");
        assert_eq!(sh_quote("it's"), r"'it'\''s'");
        assert_eq!(sh_quote(""), "''");
    }

    #[test]
    fn replicas_follow_the_url_lists_unless_told() {
        let g = graph(GRAPH);
        let out = manifests(&g, &K8sOptions::default()).unwrap();
        let a = find(&out, "node-rf-a-deployment.json");
        assert_eq!(a["spec"]["replicas"], 2);
        assert_eq!(a["metadata"]["name"], "tessera-node-rf-a");
        assert_eq!(
            a["spec"]["template"]["spec"]["containers"][0]["args"],
            json!([
                "serve",
                "--node",
                "rf_a",
                "/etc/tessera/deploy.toml",
                "--listen",
                "0.0.0.0:8000"
            ])
        );
        assert_eq!(
            find(&out, "node-rf-b-deployment.json")["spec"]["replicas"],
            1
        );
        let opts = K8sOptions {
            replicas: Some(3),
            node_replicas: vec![("rf_b".into(), 5)],
            namespace: Some("ml".into()),
            ..K8sOptions::default()
        };
        let out = manifests(&g, &opts).unwrap();
        assert_eq!(
            find(&out, "node-rf-a-deployment.json")["spec"]["replicas"],
            3
        );
        assert_eq!(
            find(&out, "node-rf-b-deployment.json")["spec"]["replicas"],
            5
        );
        let cm = find(&out, "graph-configmap.json");
        let t: toml::Table = toml::from_str(cm["data"]["deploy.toml"].as_str().unwrap()).unwrap();
        let urls = t["nodes"]["rf_b"]["remote"].as_array().unwrap();
        assert_eq!(urls.len(), 5);
        assert_eq!(
            urls[0].as_str(),
            Some("http://tessera-node-rf-b.ml.svc:8000")
        );
        assert_eq!(cm["metadata"]["namespace"], "ml");
    }

    #[test]
    fn wrong_options_are_refused() {
        let g = graph(GRAPH);
        let cases: Vec<(K8sOptions, &str)> = vec![
            (
                K8sOptions {
                    replicas: Some(0),
                    ..K8sOptions::default()
                },
                "--replicas must be at least 1",
            ),
            (
                K8sOptions {
                    node_replicas: vec![("rf_c".into(), 2)],
                    ..K8sOptions::default()
                },
                "`rf_c` is not a remote node",
            ),
            (
                K8sOptions {
                    name: "Big_Name".into(),
                    ..K8sOptions::default()
                },
                "--name `Big_Name`",
            ),
            (
                K8sOptions {
                    memory: "1GB".into(),
                    ..K8sOptions::default()
                },
                "--memory `1GB`",
            ),
            (
                K8sOptions {
                    train: Some(TrainJob {
                        shards: 2,
                        learner: "random_forest".into(),
                        data: "d.csv".into(),
                        target: vec!["y".into()],
                        set: Vec::new(),
                        seed: None,
                        out: "m.tsr".into(),
                    }),
                    ..K8sOptions::default()
                },
                "--train-shards needs a fixed seed",
            ),
        ];
        for (opts, want) in cases {
            let e = manifests(&g, &opts).unwrap_err().to_string();
            assert!(e.contains(want), "{e:?} lacks {want:?}");
        }
    }

    #[test]
    fn ids_that_make_one_name_are_refused() {
        let g = graph(&GRAPH.replace("rf_b", "rf-a"));
        let e = manifests(&g, &K8sOptions::default())
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("both make the Kubernetes name `tessera-node-rf-a`"),
            "{e}"
        );
    }
}
