//! Deployment files for a serving graph. [`k8s`] writes Kubernetes
//! manifests from one graph file; this module owns what any target needs:
//! reading the graph (checked as `tessera serve` checks it, except that the
//! files it names may be missing here: they live on the cluster's
//! volume), rewriting it for the cluster (remote nodes call in-cluster
//! addresses, file paths point into the models volume), naming objects,
//! and writing the files.

pub mod k8s;

use std::{
    collections::BTreeMap,
    path::{Component, Path, PathBuf},
};

use toml::{Value, de::DeTable, de::DeValue};

use crate::graph::{GraphError, Problem};

/// Where the container image holds the binary (the plugins lie beside
/// it); the repository's `Dockerfile` puts it there.
pub const BINARY: &str = "/opt/tessera/tessera";
/// The port every tessera container listens on.
pub const PORT: u16 = 8000;
/// Where the graph file is mounted.
pub const CONFIG_DIR: &str = "/etc/tessera";
/// The graph file's name there.
pub const CONFIG_FILE: &str = "deploy.toml";
/// Where the models volume is mounted; the files a graph names are read
/// under it at the path they have relative to the graph file.
pub const MODELS_DIR: &str = "/models";

/// Why deployment files could not be made.
#[derive(Debug, thiserror::Error)]
pub enum DeployError {
    /// The graph file has problems, each with its line and key.
    #[error(transparent)]
    Graph(#[from] GraphError),
    /// An option is wrong.
    #[error("{0}")]
    Option(String),
    /// The graph file cannot be read.
    #[error("cannot read {}: {source}", .path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A file cannot be written.
    #[error("cannot write {}: {source}", .path.display())]
    Write {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

/// A model node that other servers run (`remote = [...]`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RemoteNode {
    /// Its id.
    pub id: String,
    /// How many URLs its `remote` list gives.
    pub urls: usize,
}

/// A graph file, checked, with what deployment needs of it.
#[derive(Clone, Debug)]
pub struct GraphFile {
    /// The file as named on the command line (for messages).
    pub path: PathBuf,
    /// Its text.
    pub text: String,
    table: toml::Table,
    /// The remote model nodes, in file order.
    pub remote: Vec<RemoteNode>,
    /// Every file the graph names: the dotted key, the path as written
    /// (relative to the graph file), and whether it exists here.
    pub files: Vec<(String, String, bool)>,
    /// `[server] drain_timeout_ms`: how long a stopping server may take.
    pub drain_timeout_ms: u64,
}

/// Whether `p` is a file the graph names that is not on this machine:
/// deployment allows it (the file is on the cluster's volume).
fn is_missing_file(p: &Problem) -> bool {
    p.message.starts_with("no model file ") || p.message.starts_with("no training data ")
}

/// The 1-based line of the deepest key of `path` in `text` (0 if none).
fn line_of(text: &str, path: &[&str]) -> usize {
    let Ok(root) = DeTable::parse(text) else {
        return 0;
    };
    let mut table = root.get_ref();
    let mut line = 0;
    for key in path {
        let Some((k, v)) = table.iter().find(|(k, _)| k.get_ref().as_ref() == *key) else {
            break;
        };
        line = text[..k.span().start.min(text.len())].matches('\n').count() + 1;
        match v.get_ref() {
            DeValue::Table(t) => table = t,
            _ => break,
        }
    }
    line
}

/// Calls `f` with the dotted key and the value of every file path in the
/// graph: `[server] plugins`, nodes' `model` and `train.data`.
fn each_file(table: &mut toml::Table, mut f: impl FnMut(&[&str], &mut String)) {
    if let Some(Value::Table(s)) = table.get_mut("server")
        && let Some(Value::Array(list)) = s.get_mut("plugins")
    {
        for v in list {
            if let Value::String(p) = v {
                f(&["server", "plugins"], p);
            }
        }
    }
    if let Some(Value::Table(nodes)) = table.get_mut("nodes") {
        for (id, node) in nodes.iter_mut() {
            let Value::Table(node) = node else { continue };
            if let Some(Value::String(m)) = node.get_mut("model") {
                f(&["nodes", id, "model"], m);
            }
            if let Some(Value::Table(t)) = node.get_mut("train")
                && let Some(Value::String(d)) = t.get_mut("data")
            {
                f(&["nodes", id, "train", "data"], d);
            }
        }
    }
}

/// `path` (relative to the graph file) on the models volume, or why it
/// cannot be found there.
pub fn on_volume(path: &str) -> Result<String, String> {
    let mut parts = Vec::new();
    for c in Path::new(path).components() {
        match c {
            Component::Normal(p) => parts.push(p.to_string_lossy().into_owned()),
            Component::CurDir => {}
            Component::ParentDir => {
                return Err(format!(
                    "`{path}` leaves the graph file's folder; in the cluster files are read \
                     under the models volume ({MODELS_DIR}), so give paths inside that folder"
                ));
            }
            Component::RootDir | Component::Prefix(_) => {
                return Err(format!(
                    "`{path}` is an absolute path; in the cluster files are read under the \
                     models volume ({MODELS_DIR}), so give it relative to the graph file"
                ));
            }
        }
    }
    if parts.is_empty() {
        return Err(format!("`{path}` names no file"));
    }
    Ok(format!("{MODELS_DIR}/{}", parts.join("/")))
}

impl GraphFile {
    /// Reads and checks the graph file at `path`.
    ///
    /// # Errors
    /// An unreadable file, or every problem of the graph (files it names
    /// that are missing here excepted), each with its line and key.
    pub fn read(path: &Path) -> Result<Self, DeployError> {
        let text = std::fs::read_to_string(path).map_err(|source| DeployError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Self::from_text(text, path)
    }

    /// Checks a graph file's `text`; `path` names it and its folder holds
    /// the files it names.
    ///
    /// # Errors
    /// As [`GraphFile::read`].
    pub fn from_text(text: String, path: &Path) -> Result<Self, DeployError> {
        let base = path.parent().unwrap_or(Path::new("."));
        let fail = |problems: Vec<Problem>| GraphError {
            path: path.to_path_buf(),
            problems,
        };
        if let Err(e) = crate::graph::config::parse(&text, base, path) {
            let problems: Vec<Problem> = e
                .problems
                .into_iter()
                .filter(|p| !is_missing_file(p))
                .collect();
            if !problems.is_empty() {
                return Err(fail(problems).into());
            }
        }
        let mut table: toml::Table = toml::from_str(&text)
            .map_err(|e| DeployError::Option(format!("{}: {e}", path.display())))?;
        let mut problems = Vec::new();
        let mut files = Vec::new();
        each_file(&mut table, |key, p| {
            if let Err(message) = on_volume(p) {
                problems.push(Problem {
                    line: line_of(&text, key),
                    key: key.join("."),
                    message,
                });
            }
            files.push((key.join("."), p.clone(), base.join(&*p).exists()));
        });
        let inputs: Vec<String> = match table.get("inputs") {
            Some(Value::Table(t)) => t.keys().cloned().collect(),
            _ => Vec::new(),
        };
        let mut remote = Vec::new();
        if let Some(Value::Table(nodes)) = table.get("nodes") {
            for (id, node) in nodes {
                let Some(Value::Array(urls)) = node.get("remote") else {
                    continue;
                };
                // `tessera serve --node` serves a node with the input it
                // reads; a node that reads another node has none to serve.
                let reads = node
                    .get("inputs")
                    .and_then(Value::as_array)
                    .and_then(|a| a.first())
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                if !inputs.iter().any(|i| i == reads) {
                    problems.push(Problem {
                        line: line_of(&text, &["nodes", id, "remote"]),
                        key: format!("nodes.{id}.remote"),
                        message: format!(
                            "a remote node runs as `tessera serve --node {id}`, which serves \
                             only a node that reads one of the graph's inputs; this one reads \
                             `{reads}`"
                        ),
                    });
                }
                remote.push(RemoteNode {
                    id: id.clone(),
                    urls: urls.len(),
                });
            }
        }
        if !problems.is_empty() {
            problems.sort_by_key(|p| p.line);
            return Err(fail(problems).into());
        }
        let drain_timeout_ms = table
            .get("server")
            .and_then(|s| s.get("drain_timeout_ms"))
            .and_then(Value::as_integer)
            .map_or(crate::graph::ServerDecl::default().drain_timeout_ms, |ms| {
                ms.max(0) as u64
            });
        Ok(Self {
            path: path.to_path_buf(),
            text,
            table,
            remote,
            files,
            drain_timeout_ms,
        })
    }

    /// The line of key `path` in the file (0 if absent).
    pub fn line(&self, path: &[&str]) -> usize {
        line_of(&self.text, path)
    }

    /// The graph as the cluster runs it: each remote node calls
    /// `urls[id]` instead of its `remote` list, under its own id (the
    /// servers run `--node ID`, which serves it as `ID`); file paths point
    /// into the models volume; `[server] admin_token` is left out (a
    /// ConfigMap is no place for a secret). Returns the TOML text and
    /// notes for the user about what changed beyond that.
    pub fn for_cluster(&self, urls: &BTreeMap<String, Vec<String>>) -> (String, Vec<String>) {
        let mut table = self.table.clone();
        let mut notes = Vec::new();
        each_file(&mut table, |_, p| {
            if let Ok(v) = on_volume(p) {
                *p = v;
            }
        });
        if let Some(Value::Table(s)) = table.get_mut("server")
            && s.remove("admin_token").is_some()
        {
            notes.push(format!(
                "{}:{}: `server.admin_token` is left out of the ConfigMap; the servers read \
                 the token from the Secret named in the README",
                self.path.display(),
                self.line(&["server", "admin_token"])
            ));
            if s.is_empty() {
                table.remove("server");
            }
        }
        for (key, path, here) in &self.files {
            if !here {
                let at: Vec<&str> = key.split('.').collect();
                notes.push(format!(
                    "{}:{}: `{key}`: {path} is not here; the cluster reads it from the models \
                     volume at {}",
                    self.path.display(),
                    self.line(&at),
                    on_volume(path).unwrap_or_default()
                ));
            }
        }
        if let Some(Value::Table(nodes)) = table.get_mut("nodes") {
            for (id, node) in nodes.iter_mut() {
                let (Some(list), Value::Table(node)) = (urls.get(id), node) else {
                    continue;
                };
                node.insert(
                    "remote".into(),
                    Value::Array(list.iter().cloned().map(Value::String).collect()),
                );
                if let Some(m) = node.remove("remote_model")
                    && m.as_str() != Some(id)
                {
                    notes.push(format!(
                        "{}:{}: `nodes.{id}.remote_model` is dropped: the node's servers run \
                         `tessera serve --node {id}`, which serves it as `{id}`",
                        self.path.display(),
                        line_of(&self.text, &["nodes", id, "remote_model"])
                    ));
                }
            }
        }
        let name = self.path.file_name().map_or_else(
            || "the graph file".into(),
            |n| n.to_string_lossy().into_owned(),
        );
        let body = toml::to_string(&table).unwrap_or_default();
        let text = format!(
            "# Written by `tessera deploy` from {name}: remote nodes call in-cluster\n\
             # Services, and files are read under the models volume ({MODELS_DIR}).\n\n{body}"
        );
        (text, notes)
    }
}

/// FNV-1a, 64 bits: a stable short digest for names and checksums (not
/// for security).
pub fn fnv64(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// `id` as a DNS-1123 label: lowercase letters, digits and `-` (any
/// other character becomes `-`; runs of `-` become one, and none begins
/// or ends it). Empty when `id` has no letter or digit.
pub fn dns_label(id: &str) -> String {
    let mut out = String::new();
    for c in id.chars().flat_map(char::to_lowercase) {
        if c.is_ascii_lowercase() || c.is_ascii_digit() {
            out.push(c);
        } else if !out.is_empty() && !out.ends_with('-') {
            out.push('-');
        }
    }
    while out.ends_with('-') {
        out.pop();
    }
    out
}

/// Kubernetes' limit on names and label values.
pub const MAX_LABEL: usize = 63;

/// `prefix` then `id` as a label, at most 63 characters: a longer one is
/// cut and ends with a digest of the whole id, so that ids differing only
/// past the cut still get different names.
pub fn object_name(prefix: &str, id: &str) -> String {
    let label = dns_label(id);
    if prefix.len() + label.len() <= MAX_LABEL {
        return format!("{prefix}{label}");
    }
    let digest = format!("{:06x}", fnv64(id.as_bytes()) & 0xff_ffff);
    let keep = MAX_LABEL.saturating_sub(prefix.len() + 1 + digest.len());
    let cut = label[..keep.min(label.len())].trim_end_matches('-');
    format!("{prefix}{cut}-{digest}")
}

/// Whether `s` is a DNS-1123 label of at most `max` characters (what
/// Kubernetes requires of most names).
pub fn is_dns_label(s: &str, max: usize) -> bool {
    !s.is_empty()
        && s.len() <= max
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

/// Files to write: paths relative to the output folder, and contents.
#[derive(Clone, Debug, Default)]
pub struct Output {
    /// The files, in the order they are listed to the user.
    pub files: Vec<(PathBuf, String)>,
    /// What the user should know (printed, not written).
    pub notes: Vec<String>,
}

/// Whether `text` is a manifest an earlier run wrote (so a run may
/// remove it when it no longer belongs).
fn written_by_us(text: &str) -> bool {
    serde_json::from_str::<serde_json::Value>(text)
        .is_ok_and(|v| v["metadata"]["labels"]["app.kubernetes.io/managed-by"] == k8s::MANAGED_BY)
}

/// Writes `out` under `dir` (created if needed), each file atomically,
/// and removes manifests an earlier run wrote there that are not in
/// `out` (a node since removed), so that `kubectl apply -f DIR` applies
/// exactly this deployment. Returns the files removed.
///
/// # Errors
/// A folder or file that cannot be written.
pub fn write(dir: &Path, out: &Output) -> Result<Vec<PathBuf>, DeployError> {
    let fail = |path: &Path| {
        let path = path.to_path_buf();
        move |source| DeployError::Write { path, source }
    };
    let mut folders: Vec<PathBuf> = vec![dir.to_path_buf()];
    for (rel, _) in &out.files {
        if let Some(parent) = rel.parent().filter(|p| !p.as_os_str().is_empty()) {
            let d = dir.join(parent);
            if !folders.contains(&d) {
                folders.push(d);
            }
        }
    }
    for d in &folders {
        std::fs::create_dir_all(d).map_err(fail(d))?;
    }
    for (rel, text) in &out.files {
        let path = dir.join(rel);
        crate::artifact::write_atomic(&path, text.as_bytes()).map_err(fail(&path))?;
    }
    // An earlier run's sub-folders too (the training Jobs, when this run
    // writes none).
    let mut scan = vec![dir.to_path_buf()];
    if let Ok(entries) = std::fs::read_dir(dir) {
        scan.extend(entries.flatten().map(|e| e.path()).filter(|p| p.is_dir()));
    }
    let mut removed = Vec::new();
    for d in &scan {
        let Ok(entries) = std::fs::read_dir(d) else {
            continue;
        };
        let before = removed.len();
        for e in entries.flatten() {
            let path = e.path();
            let ours = out.files.iter().any(|(rel, _)| dir.join(rel) == path);
            if ours || path.extension().is_none_or(|x| x != "json") {
                continue;
            }
            if std::fs::read_to_string(&path).is_ok_and(|t| written_by_us(&t)) {
                std::fs::remove_file(&path).map_err(fail(&path))?;
                removed.push(path);
            }
        }
        if d != dir && removed.len() > before {
            // Only if nothing else is left in it.
            let _ = std::fs::remove_dir(d);
        }
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn graph(dir: &Path, text: &str) -> Result<GraphFile, DeployError> {
        GraphFile::from_text(text.to_string(), &dir.join("deploy.toml"))
    }

    fn problems(r: Result<GraphFile, DeployError>) -> Vec<String> {
        match r {
            Err(DeployError::Graph(g)) => g.problems.iter().map(ToString::to_string).collect(),
            Err(e) => panic!("not a graph error: {e}"),
            Ok(_) => panic!("accepted"),
        }
    }

    const INPUT: &str = "[inputs.x]\nshape = [-1, 4]\n";

    #[test]
    fn labels_are_lowercase_letters_digits_and_dashes() {
        assert_eq!(dns_label("rf_shard_0"), "rf-shard-0");
        assert_eq!(dns_label("__Big..Model__"), "big-model");
        assert_eq!(dns_label("___"), "");
        assert!(is_dns_label("rf-shard-0", 63));
        assert!(!is_dns_label("-a", 63));
        assert!(!is_dns_label("a_b", 63));
        assert!(!is_dns_label("", 63));
    }

    #[test]
    fn long_names_are_cut_and_keep_apart() {
        let a = object_name("tessera-node-", &"a".repeat(80));
        let b = object_name("tessera-node-", &format!("{}b", "a".repeat(79)));
        assert_eq!(a.len(), MAX_LABEL);
        assert!(is_dns_label(&a, MAX_LABEL) && is_dns_label(&b, MAX_LABEL));
        assert_ne!(a, b);
        assert_eq!(object_name("tessera-node-", "rf"), "tessera-node-rf");
    }

    #[test]
    fn paths_go_under_the_models_volume() {
        assert_eq!(on_volume("m/rf.tsr").unwrap(), "/models/m/rf.tsr");
        assert_eq!(on_volume("./rf.tsr").unwrap(), "/models/rf.tsr");
        assert!(on_volume("/srv/rf.tsr").unwrap_err().contains("absolute"));
        assert!(on_volume("../rf.tsr").unwrap_err().contains("leaves"));
    }

    #[test]
    fn missing_model_files_are_allowed_and_listed() {
        // Guards the wording `is_missing_file` matches: the graph parser's.
        let dir = std::env::temp_dir();
        let g = graph(
            &dir,
            &format!(
                "{INPUT}[nodes.a]\nmodel = \"no/such-a.tsr\"\ninputs = [\"x\"]\n\
                 remote = [\"http://10.0.0.1:8000\", \"http://10.0.0.2:8000\"]\n\
                 [nodes.b]\ntrain = {{ learner = \"random_forest\", data = \"no/such.csv\", \
                 target = \"y\" }}\ninputs = [\"x\"]\n\
                 [nodes.c]\ncombine = \"mean_proba\"\ninputs = [\"a\", \"b\"]\n\
                 [outputs.c]\nfrom = \"c\"\n"
            ),
        )
        .unwrap();
        assert_eq!(
            g.remote,
            vec![RemoteNode {
                id: "a".into(),
                urls: 2
            }]
        );
        let missing: Vec<&str> = g
            .files
            .iter()
            .filter(|f| !f.2)
            .map(|f| f.1.as_str())
            .collect();
        assert_eq!(missing, ["no/such-a.tsr", "no/such.csv"]);
    }

    #[test]
    fn other_problems_still_fail_with_their_line() {
        let dir = std::env::temp_dir();
        let p = problems(graph(
            &dir,
            &format!(
                "{INPUT}[nodes.a]\nmodel = \"/abs/a.tsr\"\ninputs = [\"x\"]\n\
                 [outputs.a]\nfrom = \"a\"\n"
            ),
        ));
        assert_eq!(p.len(), 1, "{p:?}");
        assert!(p[0].starts_with("line 4: `nodes.a.model`: `/abs/a.tsr` is an absolute path"));
        let p = problems(graph(
            &dir,
            &format!("{INPUT}[nodes.a]\nmodel = \"a.tsr\"\ninputs = [\"x\"]\ncombine = 1\n"),
        ));
        assert!(p.iter().any(|p| p.contains("not both")), "{p:?}");
    }

    #[test]
    fn a_remote_node_must_read_an_input() {
        let dir = std::env::temp_dir();
        let p = problems(graph(
            &dir,
            &format!(
                "{INPUT}[nodes.a]\nmodel = \"a.tsr\"\ninputs = [\"x\"]\n\
                 [nodes.b]\nmodel = \"b.tsr\"\ninputs = [\"a\"]\nremote = [\"http://h:1\"]\n\
                 [outputs.b]\nfrom = \"b\"\n"
            ),
        ));
        assert_eq!(p.len(), 1, "{p:?}");
        assert!(p[0].starts_with("line 9: `nodes.b.remote`"), "{p:?}");
    }

    #[test]
    fn the_cluster_graph_calls_services_and_reads_the_volume() {
        let dir = std::env::temp_dir();
        let g = graph(
            &dir,
            &format!(
                "[server]\nadmin_token = \"s3cret\"\nthreads = 2\n{INPUT}\
                 [nodes.a]\nmodel = \"m/a.tsr\"\ninputs = [\"x\"]\nremote = [\"http://h:1\"]\n\
                 remote_model = \"other\"\ntimeout_ms = 250\n\
                 [outputs.a]\nfrom = \"a\"\n"
            ),
        )
        .unwrap();
        let urls = BTreeMap::from([("a".to_string(), vec!["http://svc:8000".to_string(); 2])]);
        let (text, notes) = g.for_cluster(&urls);
        let t: toml::Table = toml::from_str(&text).unwrap();
        let a = &t["nodes"]["a"];
        assert_eq!(a["model"].as_str(), Some("/models/m/a.tsr"));
        assert_eq!(a["remote"].as_array().unwrap().len(), 2);
        assert_eq!(a["timeout_ms"].as_integer(), Some(250));
        assert!(a.get("remote_model").is_none());
        assert!(t["server"].get("admin_token").is_none());
        assert_eq!(t["server"]["threads"].as_integer(), Some(2));
        assert!(!text.contains("s3cret"));
        // admin_token, remote_model, and the model file not here.
        assert_eq!(notes.len(), 3, "{notes:?}");
        assert!(
            notes
                .iter()
                .any(|n| n.contains("deploy.toml:7: `nodes.a.model`: m/a.tsr is not here")),
            "{notes:?}"
        );
    }

    #[test]
    fn stale_manifests_are_removed_and_others_kept() {
        let dir = std::env::temp_dir().join(format!("tessera-deploy-write-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let stale = serde_json::json!({"metadata": {"labels": {"app.kubernetes.io/managed-by": k8s::MANAGED_BY}}});
        std::fs::write(dir.join("old.json"), stale.to_string()).unwrap();
        std::fs::write(dir.join("mine.json"), "{}").unwrap();
        std::fs::create_dir_all(dir.join("gone")).unwrap();
        std::fs::write(dir.join("gone/old.json"), stale.to_string()).unwrap();
        let out = Output {
            files: vec![
                (PathBuf::from("a.json"), stale.to_string()),
                (PathBuf::from("sub/b.json"), "{}".into()),
            ],
            notes: Vec::new(),
        };
        let mut removed = write(&dir, &out).unwrap();
        removed.sort();
        assert_eq!(
            removed,
            vec![dir.join("gone/old.json"), dir.join("old.json")]
        );
        assert!(!dir.join("gone").exists());
        assert!(dir.join("mine.json").exists() && dir.join("sub/b.json").exists());
        assert!(dir.join("a.json").exists());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
