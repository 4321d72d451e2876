//! The graph's TOML: reading it, and every check that needs no model
//! loaded (keys, types, ids, edges, cycles, reachability). Problems are
//! collected, not stopped at, each with the line and dotted key it is
//! about.

use std::{
    collections::{BTreeMap, BTreeSet},
    fmt,
    path::{Path, PathBuf},
};

use serde_json::Value as Json;
use toml::{Spanned, Value, de::DeTable, de::DeValue};

use crate::{compress::Step, params::toml_to_json};

mod serving;

pub use serving::{Batching, RemoteDecl, ReplicaUrl, ServerDecl};

/// One problem in a graph file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    /// 1-based line of the key (0 when the file has no such key).
    pub line: usize,
    /// The dotted key, e.g. `nodes.rf.inputs`.
    pub key: String,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line > 0 {
            write!(f, "line {}: `{}`: {}", self.line, self.key, self.message)
        } else {
            write!(f, "`{}`: {}", self.key, self.message)
        }
    }
}

/// Every problem of a graph file, ready to print.
#[derive(Clone, Debug, thiserror::Error)]
#[error("{}", render(.path, .problems))]
pub struct GraphError {
    /// The file (or a name for TOML text).
    pub path: PathBuf,
    /// The problems, in file order.
    pub problems: Vec<Problem>,
}

fn render(path: &Path, problems: &[Problem]) -> String {
    let mut s = format!(
        "{}: {} problem{}",
        path.display(),
        problems.len(),
        if problems.len() == 1 { "" } else { "s" }
    );
    for p in problems {
        s.push_str(&format!("\n  {}: {p}", path.display()));
    }
    s
}

/// How a combiner joins its inputs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Combine {
    /// Mean of the inputs' class probabilities.
    MeanProba,
    /// Majority of the inputs' predicted classes (probabilities: vote
    /// shares).
    Vote,
    /// Sum of the inputs' outputs, then the link.
    Sum,
    /// Sum of the inputs' outputs times their weights.
    Weighted,
    /// The inputs' columns side by side, then the link.
    Concat,
    /// A meta-model trained at load on the inputs' answers.
    Stack,
}

/// The combiners' names.
pub const COMBINERS: &[&str] = &["mean_proba", "vote", "sum", "weighted", "concat", "stack"];
/// The links a combiner may apply.
pub const LINKS: &[&str] = &["identity", "sigmoid", "softmax"];

/// What a node is.
#[derive(Clone, Debug, PartialEq)]
pub enum NodeKind {
    /// A model file (or one trained at load), optionally decomposed.
    Model {
        /// The file, resolved against the graph file's folder (for a
        /// trained node: its training data).
        path: PathBuf,
        /// `train = { learner, data, target, params, seed }`: train the
        /// model from `path` when the graph loads.
        train: Option<TrainDecl>,
        /// `decompose = { with = NAME, params = {...} }`.
        decompose: Option<(String, Json)>,
        /// `process = true`: run it in a worker process of its own.
        process: bool,
        /// `compress = [{ with = NAME, params = {...} }, ...]`: compressors
        /// applied in order at load (before any decomposition).
        compress: Vec<crate::compress::Step>,
        /// `remote = ["http://host:port", ...]`: served by other tessera
        /// servers (the file gives only its shape here).
        remote: Option<RemoteDecl>,
    },
    /// A router: each request goes to one of its inputs, chosen by the
    /// request id with these shares.
    Route {
        /// Shares of the inputs (normalised).
        weights: Vec<f64>,
    },
    /// A combiner.
    Combine {
        /// How.
        how: Combine,
        /// `weights` (weighted).
        weights: Vec<f64>,
        /// `link` (sum, concat): `identity`, `sigmoid` or `softmax`.
        link: String,
        /// `classes`: labels of the combined output, when its inputs do
        /// not carry them (raw scores joined through a link).
        classes: Option<Vec<String>>,
        /// `stack`: the meta-model's training data and learner.
        train: Option<(PathBuf, TrainDecl)>,
    },
}

/// What a node's failure does to the nodes that read it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum OnFailure {
    /// The request fails (unless a `fallback` answers).
    #[default]
    Fail,
    /// The combiner reading it answers from the inputs that did answer,
    /// rescaled, and the answer names the missing node.
    Degrade,
}

/// A model to train when the graph loads.
#[derive(Clone, Debug, PartialEq)]
pub struct TrainDecl {
    /// The learner.
    pub learner: String,
    /// The target column.
    pub target: String,
    /// Its parameters (a JSON object).
    pub params: Json,
}

/// A declared input.
#[derive(Clone, Debug, PartialEq)]
pub struct InputDecl {
    /// Its id.
    pub id: String,
    /// Columns per row.
    pub width: usize,
    /// Column names, when given.
    pub names: Option<Vec<String>>,
    /// Line of `[inputs.<id>]`.
    pub line: usize,
}

/// A declared node.
#[derive(Clone, Debug, PartialEq)]
pub struct NodeDecl {
    /// Its id.
    pub id: String,
    /// Model or combiner.
    pub kind: NodeKind,
    /// The ids it reads.
    pub inputs: Vec<String>,
    /// `fallback = "<node>"`: whose answer stands in when this node fails.
    pub fallback: Option<String>,
    /// `on_failure = "fail" | "degrade"`.
    pub on_failure: OnFailure,
    /// Line of `[nodes.<id>]`.
    pub line: usize,
}

/// A declared output.
#[derive(Clone, Debug, PartialEq)]
pub struct OutputDecl {
    /// What clients call it.
    pub name: String,
    /// The node (or input) it answers from.
    pub from: String,
    /// `version`: the version it is served as (default `"1"`).
    pub version: String,
    /// `batching = { max_batch, max_delay_ms, max_queue }`.
    pub batching: Batching,
    /// Line of `[outputs.<name>]`.
    pub line: usize,
}

/// A graph file, read and checked for structure.
#[derive(Clone, Debug, PartialEq)]
pub struct Config {
    /// `[inputs.*]`, in file order.
    pub inputs: Vec<InputDecl>,
    /// `[nodes.*]`, in an order where every node comes after its inputs.
    pub nodes: Vec<NodeDecl>,
    /// `[outputs.*]`, in file order.
    pub outputs: Vec<OutputDecl>,
    /// `[server]` (for `tessera serve`).
    pub server: ServerDecl,
}

/// Line numbers of keys, from the parser's spans.
struct Lines<'t> {
    text: &'t str,
    root: Option<DeTable<'t>>,
}

impl Lines<'_> {
    fn line_at(&self, offset: usize) -> usize {
        self.text[..offset.min(self.text.len())]
            .matches('\n')
            .count()
            + 1
    }

    /// The line of the deepest key of `path` that exists.
    fn line(&self, path: &[&str]) -> usize {
        let Some(mut table) = self.root.as_ref() else {
            return 0;
        };
        let mut line = 0;
        for key in path {
            let Some((k, v)) = table.iter().find(|(k, _)| k.get_ref().as_ref() == *key) else {
                break;
            };
            line = self.line_at(k.span().start);
            match v.get_ref() {
                DeValue::Table(t) => table = t,
                _ => break,
            }
        }
        line
    }
}

/// Reads and checks a graph file's text; `base` is the folder model paths
/// are relative to, `path` names the file in messages.
///
/// # Errors
/// Every problem found.
pub fn parse(text: &str, base: &Path, path: &Path) -> Result<Config, GraphError> {
    let fail = |problems| GraphError {
        path: path.to_path_buf(),
        problems,
    };
    let table: toml::Table = toml::from_str(text).map_err(|e| {
        let line = e.span().map_or(0, |s| {
            text[..s.start.min(text.len())].matches('\n').count() + 1
        });
        fail(vec![Problem {
            line,
            key: "(file)".into(),
            message: format!("not valid TOML: {}", e.message()),
        }])
    })?;
    let lines = Lines {
        text,
        root: DeTable::parse(text).ok().map(Spanned::into_inner),
    };
    let mut r = Reader {
        lines: &lines,
        problems: Vec::new(),
    };
    let config = r.config(&table, base);
    let mut problems = r.problems;
    problems.sort_by_key(|p| p.line);
    if problems.is_empty() {
        Ok(config)
    } else {
        Err(fail(problems))
    }
}

struct Reader<'l, 't> {
    lines: &'l Lines<'t>,
    problems: Vec<Problem>,
}

/// A list of finite numbers `>= 0` (integers too), or `None`.
fn shares(v: &Value) -> Option<Vec<f64>> {
    v.as_array()?
        .iter()
        .map(|w| w.as_float().or(w.as_integer().map(|i| i as f64)))
        .map(|w| w.filter(|w| *w >= 0.0 && w.is_finite()))
        .collect()
}

/// A closest-match hint, or nothing.
pub fn hint(word: &str, candidates: &[&str]) -> String {
    tessera_core::params::closest(word, candidates)
        .map(|c| format!("; did you mean `{c}`?"))
        .unwrap_or_default()
}

impl Reader<'_, '_> {
    fn problem(&mut self, path: &[&str], message: String) {
        self.problems.push(Problem {
            line: self.lines.line(path),
            key: path.join("."),
            message,
        });
    }

    /// Flags keys of `t` not in `allowed`.
    fn known_keys(&mut self, t: &toml::Table, path: &[&str], allowed: &[&str]) {
        for k in t.keys() {
            if !allowed.contains(&k.as_str()) {
                let mut p = path.to_vec();
                p.push(k);
                let h = hint(k, allowed);
                self.problem(
                    &p,
                    format!("unknown key (accepted: {}){h}", allowed.join(", ")),
                );
            }
        }
    }

    /// The sub-table at `key`, or a problem.
    fn sections<'a>(
        &mut self,
        root: &'a toml::Table,
        key: &str,
    ) -> Vec<(&'a String, &'a toml::Table)> {
        match root.get(key) {
            None => Vec::new(),
            Some(Value::Table(t)) => {
                let mut out = Vec::new();
                for (id, v) in t {
                    match v {
                        Value::Table(s) => out.push((id, s)),
                        _ => self.problem(&[key, id], format!("expected a table `[{key}.{id}]`")),
                    }
                }
                out
            }
            Some(_) => {
                self.problem(&[key], format!("expected tables `[{key}.<id>]`"));
                Vec::new()
            }
        }
    }

    fn string_list(&mut self, v: Option<&Value>, path: &[&str]) -> Option<Vec<String>> {
        let v = v?;
        match v.as_array() {
            Some(a) if a.iter().all(Value::is_str) => Some(
                a.iter()
                    .filter_map(|s| s.as_str().map(str::to_string))
                    .collect(),
            ),
            _ => {
                self.problem(path, format!("expected a list of strings, got {v}"));
                None
            }
        }
    }

    fn config(&mut self, root: &toml::Table, base: &Path) -> Config {
        self.known_keys(root, &[], &["server", "inputs", "nodes", "outputs"]);
        let server = match root.get("server") {
            Some(Value::Table(t)) => self.server(t, base),
            Some(_) => {
                self.problem(&["server"], "expected a table `[server]`".into());
                ServerDecl::default()
            }
            None => ServerDecl::default(),
        };
        let mut inputs = Vec::new();
        for (id, t) in self.sections(root, "inputs") {
            self.known_keys(t, &["inputs", id], &["datatype", "shape", "names"]);
            let line = self.lines.line(&["inputs", id]);
            match t.get("datatype").and_then(Value::as_str) {
                None | Some("FP32") => {}
                Some(d) => self.problem(
                    &["inputs", id, "datatype"],
                    format!("datatype `{d}` is not supported; inputs are FP32"),
                ),
            }
            let names = self.string_list(t.get("names"), &["inputs", id, "names"]);
            let width = match t.get("shape").and_then(Value::as_array).map(Vec::as_slice) {
                Some([rows, cols]) if rows.as_integer() == Some(-1) => match cols.as_integer() {
                    Some(c) if c >= 1 => Some(c as usize),
                    _ => None,
                },
                _ => None,
            };
            let width = match (width, &names, t.get("shape")) {
                (Some(w), Some(n), _) if n.len() != w => {
                    self.problem(
                        &["inputs", id, "names"],
                        format!("{} names for a shape of {w} columns", n.len()),
                    );
                    w
                }
                (Some(w), _, _) => w,
                (None, Some(n), None) => n.len(),
                (None, _, Some(s)) => {
                    self.problem(
                        &["inputs", id, "shape"],
                        format!("expected [-1, <columns>] (a batch of rows), got {s}"),
                    );
                    0
                }
                (None, _, None) => {
                    self.problem(
                        &["inputs", id],
                        "give `shape = [-1, <columns>]` or the column `names`".into(),
                    );
                    0
                }
            };
            inputs.push(InputDecl {
                id: id.clone(),
                width,
                names,
                line,
            });
        }
        let mut nodes = Vec::new();
        let node_sections = self.sections(root, "nodes");
        let declared: Vec<String> = node_sections.iter().map(|(id, _)| (*id).clone()).collect();
        for (id, t) in node_sections {
            if let Some(n) = self.node(id, t, base) {
                nodes.push(n);
            }
        }
        let mut outputs = Vec::new();
        for (name, t) in self.sections(root, "outputs") {
            self.known_keys(t, &["outputs", name], &["from", "batching", "version"]);
            let batching = self.batching(t, name);
            let version = match t.get("version") {
                None => "1".to_string(),
                Some(Value::String(v)) if !v.is_empty() && !v.contains('/') => v.clone(),
                Some(Value::Integer(v)) if *v >= 0 => v.to_string(),
                Some(v) => {
                    self.problem(
                        &["outputs", name, "version"],
                        format!("expected a version such as \"1\" (no `/`), got {v}"),
                    );
                    "1".to_string()
                }
            };
            match t.get("from").and_then(Value::as_str) {
                Some(from) => outputs.push(OutputDecl {
                    name: name.clone(),
                    from: from.to_string(),
                    version,
                    batching,
                    line: self.lines.line(&["outputs", name]),
                }),
                None => self.problem(
                    &["outputs", name],
                    "missing `from`: the node this output answers from".into(),
                ),
            }
        }
        if outputs.is_empty() && !root.contains_key("outputs") {
            self.problem(&["outputs"], "the graph has no `[outputs.<name>]`".into());
        }
        let mut config = Config {
            inputs,
            nodes,
            outputs,
            server,
        };
        self.edges(&mut config, &declared);
        config
    }

    /// A `train = { learner, data, target, params, seed }` table of node
    /// `id`: the data file and what to train on it.
    fn train_decl(
        &mut self,
        t: &toml::Table,
        id: &str,
        base: &Path,
    ) -> Option<(PathBuf, TrainDecl)> {
        let at: Vec<&str> = vec!["nodes", id, "train"];
        let Some(tr) = t.get("train").and_then(Value::as_table) else {
            self.problem(
                &at,
                "expected { learner = \"...\", data = \"<csv>\", target = \"<column>\", \
                 params = {...} }"
                    .into(),
            );
            return None;
        };
        self.known_keys(tr, &at, &["learner", "data", "target", "params", "seed"]);
        let text = |k: &str| tr.get(k).and_then(Value::as_str).map(str::to_string);
        let (Some(learner), Some(data), Some(target)) =
            (text("learner"), text("data"), text("target"))
        else {
            self.problem(&at, "needs `learner`, `data` and `target`".into());
            return None;
        };
        let path = base.join(&data);
        if !path.is_file() {
            self.problem(&at, format!("no training data {}", path.display()));
        }
        let mut params = match tr.get("params") {
            Some(p @ Value::Table(_)) => toml_to_json(p.clone()),
            None => Json::Object(Default::default()),
            Some(p) => {
                self.problem(&at, format!("`params` must be a table, got {p}"));
                Json::Object(Default::default())
            }
        };
        if let Some(seed) = tr.get("seed").and_then(Value::as_integer) {
            params["random_state"] = Json::from(seed);
        }
        Some((
            path,
            TrainDecl {
                learner,
                target,
                params,
            },
        ))
    }

    /// `compress = [{ with, params }, ...]` (or one such table) of node
    /// `id`.
    fn compress_list(&mut self, t: &toml::Table, id: &str) -> Vec<Step> {
        let at: Vec<&str> = vec!["nodes", id, "compress"];
        let items: Vec<&Value> = match t.get("compress") {
            None => return Vec::new(),
            Some(Value::Array(a)) => a.iter().collect(),
            Some(v @ Value::Table(_)) => vec![v],
            Some(v) => {
                self.problem(
                    &at,
                    format!(
                        "expected [{{ with = \"<compressor>\", params = {{...}} }}, ...], got {v}"
                    ),
                );
                return Vec::new();
            }
        };
        let mut out = Vec::new();
        for item in items {
            let Some(c) = item.as_table() else {
                self.problem(
                    &at,
                    format!("expected a table {{ with = ..., params = ... }}, got {item}"),
                );
                continue;
            };
            self.known_keys(c, &at, &["with", "params"]);
            match (c.get("with").and_then(Value::as_str), c.get("params")) {
                (Some(w), None) => out.push(Step {
                    with: w.to_string(),
                    params: Json::Object(Default::default()),
                }),
                (Some(w), Some(p @ Value::Table(_))) => out.push(Step {
                    with: w.to_string(),
                    params: toml_to_json(p.clone()),
                }),
                (Some(_), Some(p)) => {
                    self.problem(&at, format!("`params` must be a table, got {p}"))
                }
                (None, _) => self.problem(&at, "missing `with`: the compressor".into()),
            }
        }
        out
    }

    fn node(&mut self, id: &str, t: &toml::Table, base: &Path) -> Option<NodeDecl> {
        let at = |k: &'static str| -> Vec<&str> { vec!["nodes", id, k] };
        let line = self.lines.line(&["nodes", id]);
        let inputs = match t.get("inputs") {
            Some(v) => self.string_list(Some(v), &at("inputs")).unwrap_or_default(),
            None => {
                self.problem(&["nodes", id], "missing `inputs`: the ids it reads".into());
                Vec::new()
            }
        };
        let kind = match (t.get("model"), t.get("combine")) {
            (Some(_), Some(_)) => {
                self.problem(
                    &["nodes", id],
                    "a node is a `model` or a `combine`, not both".into(),
                );
                return None;
            }
            (None, Some(c)) if t.contains_key("train") && c.as_str() != Some("stack") => {
                self.problem(
                    &at("train"),
                    "a node is a `model`, a `train` or a `combine`, one of them".into(),
                );
                return None;
            }
            (Some(_), None) | (None, None)
                if t.contains_key("model") || t.contains_key("train") =>
            {
                self.known_keys(
                    t,
                    &["nodes", id],
                    &[
                        "model",
                        "train",
                        "inputs",
                        "decompose",
                        "compress",
                        "role",
                        "process",
                        "fallback",
                        "on_failure",
                        "remote",
                        "remote_model",
                        "timeout_ms",
                        "retries",
                        "hedge_after_ms",
                    ],
                );
                let (path, train) = if let Some(m) = t.get("model") {
                    if t.contains_key("train") {
                        self.problem(&at("train"), "give `model` or `train`, not both".into());
                    }
                    let Some(file) = m.as_str() else {
                        self.problem(&at("model"), format!("expected a file path, got {m}"));
                        return None;
                    };
                    let path = base.join(file);
                    if !path.is_file() {
                        self.problem(&at("model"), format!("no model file {}", path.display()));
                    }
                    (path, None)
                } else {
                    let (path, train) = self.train_decl(t, id, base)?;
                    (path, Some(train))
                };
                let decompose = match t.get("decompose") {
                    None => None,
                    Some(Value::Table(d)) => {
                        self.known_keys(d, &at("decompose"), &["with", "params"]);
                        match (d.get("with").and_then(Value::as_str), d.get("params")) {
                            (Some(w), None) => {
                                Some((w.to_string(), Json::Object(Default::default())))
                            }
                            (Some(w), Some(p @ Value::Table(_))) => {
                                Some((w.to_string(), toml_to_json(p.clone())))
                            }
                            (Some(_), Some(p)) => {
                                self.problem(
                                    &at("decompose"),
                                    format!("`params` must be a table, got {p}"),
                                );
                                None
                            }
                            (None, _) => {
                                self.problem(
                                    &at("decompose"),
                                    "missing `with`: the decomposer".into(),
                                );
                                None
                            }
                        }
                    }
                    Some(v) => {
                        self.problem(
                            &at("decompose"),
                            format!(
                                "expected {{ with = \"<decomposer>\", params = {{...}} }}, got {v}"
                            ),
                        );
                        None
                    }
                };
                if inputs.len() > 1 {
                    self.problem(
                        &at("inputs"),
                        format!("a model reads one input, not {}", inputs.len()),
                    );
                }
                let process = match t.get("process") {
                    None => false,
                    Some(Value::Boolean(b)) => *b,
                    Some(v) => {
                        self.problem(&at("process"), format!("expected true or false, got {v}"));
                        false
                    }
                };
                let compress = self.compress_list(t, id);
                if process && !compress.is_empty() {
                    self.problem(
                        &at("process"),
                        "a node in a worker process cannot be compressed at load (yet); save \
                         the compressed model and point `model` at it"
                            .into(),
                    );
                }
                if process && train.is_some() {
                    self.problem(
                        &at("process"),
                        "a node in a worker process needs a model file; train it with `tessera \
                         train` first"
                            .into(),
                    );
                }
                if process && decompose.is_some() {
                    self.problem(
                        &at("process"),
                        "a node in a worker process cannot be decomposed (yet); give its parts \
                         nodes of their own"
                            .into(),
                    );
                }
                let remote = self.remote_decl(t, id);
                if remote.is_some() {
                    for (key, given) in [
                        ("train", train.is_some()),
                        ("decompose", decompose.is_some()),
                        ("compress", !compress.is_empty()),
                        ("process", process),
                    ] {
                        if given {
                            self.problem(
                                &at(key),
                                format!(
                                    "a remote node runs its model elsewhere: no `{key}` here \
                                     (give it to the servers that hold the model)"
                                ),
                            );
                        }
                    }
                }
                NodeKind::Model {
                    path,
                    train,
                    decompose,
                    process,
                    compress,
                    remote,
                }
            }
            (None, None) if t.contains_key("route") => {
                self.known_keys(t, &["nodes", id], &["route", "inputs", "fallback"]);
                let v = &t["route"];
                let weights = shares(v)
                    .filter(|w| w.iter().sum::<f64>() > 0.0)
                    .unwrap_or_default();
                if weights.is_empty() {
                    self.problem(
                        &at("route"),
                        format!(
                            "expected the inputs' shares of requests, e.g. [0.9, 0.1], got {v}"
                        ),
                    );
                    return None;
                }
                if weights.len() != inputs.len() {
                    self.problem(
                        &at("route"),
                        format!("{} shares for {} inputs", weights.len(), inputs.len()),
                    );
                    return None;
                }
                NodeKind::Route { weights }
            }
            (None, Some(c)) => {
                self.known_keys(
                    t,
                    &["nodes", id],
                    &[
                        "combine", "inputs", "weights", "link", "classes", "fallback", "train",
                    ],
                );
                let how = match c.as_str() {
                    Some("mean_proba") => Combine::MeanProba,
                    Some("vote") => Combine::Vote,
                    Some("sum") => Combine::Sum,
                    Some("weighted") => Combine::Weighted,
                    Some("concat") => Combine::Concat,
                    Some("stack") => Combine::Stack,
                    _ => {
                        let h = c.as_str().map(|s| hint(s, COMBINERS)).unwrap_or_default();
                        self.problem(
                            &at("combine"),
                            format!(
                                "unknown combiner {c} (accepted: {}){h}",
                                COMBINERS.join(", ")
                            ),
                        );
                        return None;
                    }
                };
                let weights: Vec<f64> = match t.get("weights") {
                    None => Vec::new(),
                    Some(v) => match shares(v) {
                        Some(w) => w,
                        None => {
                            self.problem(
                                &at("weights"),
                                format!("expected a list of numbers >= 0, got {v}"),
                            );
                            Vec::new()
                        }
                    },
                };
                if how == Combine::Weighted && weights.len() != inputs.len() {
                    self.problem(
                        &at("weights"),
                        format!("{} weights for {} inputs", weights.len(), inputs.len()),
                    );
                }
                if how != Combine::Weighted && t.contains_key("weights") {
                    self.problem(
                        &at("weights"),
                        "only `combine = \"weighted\"` takes weights".into(),
                    );
                }
                let link = match t.get("link") {
                    None => "identity".to_string(),
                    Some(l) => match l.as_str() {
                        Some(s) if LINKS.contains(&s) => s.to_string(),
                        _ => {
                            self.problem(
                                &at("link"),
                                format!("unknown link {l} (accepted: {})", LINKS.join(", ")),
                            );
                            "identity".into()
                        }
                    },
                };
                if t.contains_key("link") && !matches!(how, Combine::Sum | Combine::Concat) {
                    self.problem(&at("link"), "only `sum` and `concat` take a link".into());
                }
                let classes = self.string_list(t.get("classes"), &at("classes"));
                if inputs.is_empty() {
                    self.problem(&at("inputs"), "a combiner needs at least one input".into());
                }
                let train = match (how, t.contains_key("train")) {
                    (Combine::Stack, _) => Some(self.train_decl(t, id, base)?),
                    (_, true) => {
                        self.problem(&at("train"), "only `combine = \"stack\"` trains".into());
                        None
                    }
                    _ => None,
                };
                NodeKind::Combine {
                    how,
                    weights,
                    link,
                    classes,
                    train,
                }
            }
            _ => {
                // A misspelt `model` or `combine` is named with its fix.
                self.known_keys(
                    t,
                    &["nodes", id],
                    &[
                        "model",
                        "train",
                        "combine",
                        "route",
                        "inputs",
                        "decompose",
                        "compress",
                        "role",
                        "process",
                        "fallback",
                        "weights",
                        "link",
                        "classes",
                    ],
                );
                self.problem(
                    &["nodes", id],
                    "a node needs `model = \"<file>\"`, `train = {...}` or `combine = \
                     \"<combiner>\"`"
                        .into(),
                );
                return None;
            }
        };
        let fallback = match t.get("fallback") {
            None => None,
            Some(Value::String(f)) => Some(f.clone()),
            Some(v) => {
                self.problem(&at("fallback"), format!("expected a node id, got {v}"));
                None
            }
        };
        let on_failure = match t.get("on_failure").map(|v| (v, v.as_str())) {
            None | Some((_, Some("fail"))) => OnFailure::Fail,
            Some((_, Some("degrade"))) => OnFailure::Degrade,
            Some((v, _)) => {
                self.problem(
                    &at("on_failure"),
                    format!("expected \"fail\" or \"degrade\", got {v}"),
                );
                OnFailure::Fail
            }
        };
        if on_failure == OnFailure::Degrade && fallback.is_some() {
            self.problem(
                &at("on_failure"),
                "give `fallback` or `on_failure = \"degrade\"`, not both".into(),
            );
        }
        Some(NodeDecl {
            id: id.to_string(),
            kind,
            inputs,
            fallback,
            on_failure,
            line,
        })
    }

    /// Unknown ids, cycles, and nodes no output reaches; orders the nodes
    /// so that every node follows its inputs.
    /// `declared` holds every `[nodes.*]` id, those with problems of
    /// their own too (so that their readers are not flagged again).
    fn edges(&mut self, c: &mut Config, declared: &[String]) {
        let input_ids: BTreeSet<&str> = c.inputs.iter().map(|i| i.id.as_str()).collect();
        let node_ids: BTreeSet<&str> = declared.iter().map(String::as_str).collect();
        for id in input_ids.intersection(&node_ids) {
            self.problem(
                &["nodes", id],
                format!("`{id}` is both an input and a node"),
            );
        }
        let all: Vec<&str> = input_ids.iter().chain(&node_ids).copied().collect();
        let mut problems = Vec::new();
        for n in &c.nodes {
            for i in &n.inputs {
                if !all.contains(&i.as_str()) {
                    problems.push((
                        vec!["nodes".to_string(), n.id.clone(), "inputs".into()],
                        format!("unknown input `{i}`{}", hint(i, &all)),
                    ));
                }
            }
        }
        for n in &c.nodes {
            if let Some(f) = &n.fallback {
                if !node_ids.contains(f.as_str()) {
                    problems.push((
                        vec!["nodes".to_string(), n.id.clone(), "fallback".into()],
                        format!(
                            "unknown node `{f}`{}",
                            hint(f, &node_ids.iter().copied().collect::<Vec<_>>())
                        ),
                    ));
                } else if *f == n.id {
                    problems.push((
                        vec!["nodes".to_string(), n.id.clone(), "fallback".into()],
                        "a node cannot be its own fallback".into(),
                    ));
                }
            }
        }
        // A node that may be missing is read only by combiners that can
        // answer without it: means and votes, rescaled over the rest.
        for n in c
            .nodes
            .iter()
            .filter(|n| n.on_failure == OnFailure::Degrade)
        {
            let readers: Vec<&NodeDecl> = c
                .nodes
                .iter()
                .filter(|r| r.inputs.contains(&n.id))
                .collect();
            let bad = readers.iter().find(|r| {
                !matches!(
                    r.kind,
                    NodeKind::Combine {
                        how: Combine::Weighted | Combine::MeanProba | Combine::Vote,
                        ..
                    }
                )
            });
            let served = c.outputs.iter().any(|o| o.from == n.id);
            if let Some(r) = bad {
                problems.push((
                    vec!["nodes".to_string(), n.id.clone(), "on_failure".into()],
                    format!(
                        "`{}` reads this node, and only `weighted`, `mean_proba` and `vote` \
                         combiners can answer without one of their inputs (a `sum` of boosted \
                         trees without some of them is another model)",
                        r.id
                    ),
                ));
            } else if served || readers.is_empty() {
                problems.push((
                    vec!["nodes".to_string(), n.id.clone(), "on_failure".into()],
                    "`degrade` needs a combiner reading this node (an output cannot answer \
                     without it)"
                        .into(),
                ));
            }
        }
        for o in &c.outputs {
            if !node_ids.contains(o.from.as_str()) {
                problems.push((
                    vec!["outputs".to_string(), o.name.clone(), "from".into()],
                    format!(
                        "unknown node `{}`{}",
                        o.from,
                        hint(&o.from, &node_ids.iter().copied().collect::<Vec<_>>())
                    ),
                ));
            }
        }
        for (p, m) in problems {
            let p: Vec<&str> = p.iter().map(String::as_str).collect();
            self.problem(&p, m);
        }
        // Order by depth-first search from every node; a node met again
        // while still open closes a cycle.
        let index: BTreeMap<&str, usize> = c
            .nodes
            .iter()
            .enumerate()
            .map(|(i, n)| (n.id.as_str(), i))
            .collect();
        let mut state = vec![0u8; c.nodes.len()]; // 0 new, 1 open, 2 done
        let mut order = Vec::with_capacity(c.nodes.len());
        let mut cycles = Vec::new();
        fn visit(
            i: usize,
            nodes: &[NodeDecl],
            index: &BTreeMap<&str, usize>,
            state: &mut [u8],
            order: &mut Vec<usize>,
            stack: &mut Vec<usize>,
            cycles: &mut Vec<Vec<usize>>,
        ) {
            state[i] = 1;
            stack.push(i);
            for inp in &nodes[i].inputs {
                if let Some(&j) = index.get(inp.as_str()) {
                    match state[j] {
                        0 => visit(j, nodes, index, state, order, stack, cycles),
                        1 => {
                            let from = stack.iter().position(|&s| s == j).unwrap_or(0);
                            cycles.push(stack[from..].to_vec());
                        }
                        _ => {}
                    }
                }
            }
            stack.pop();
            state[i] = 2;
            order.push(i);
        }
        for i in 0..c.nodes.len() {
            if state[i] == 0 {
                visit(
                    i,
                    &c.nodes,
                    &index,
                    &mut state,
                    &mut order,
                    &mut Vec::new(),
                    &mut cycles,
                );
            }
        }
        for cyc in cycles {
            let names: Vec<&str> = cyc.iter().map(|&i| c.nodes[i].id.as_str()).collect();
            let first = names[0].to_string();
            self.problem(
                &["nodes", &first, "inputs"],
                format!("cycle: {} -> {first}", names.join(" -> ")),
            );
        }
        // Reachability from the outputs.
        let mut reached = vec![false; c.nodes.len()];
        let mut todo: Vec<usize> = c
            .outputs
            .iter()
            .filter_map(|o| index.get(o.from.as_str()).copied())
            .collect();
        while let Some(i) = todo.pop() {
            if !reached[i] {
                reached[i] = true;
                let n = &c.nodes[i];
                todo.extend(
                    n.inputs
                        .iter()
                        .chain(&n.fallback)
                        .filter_map(|s| index.get(s.as_str()).copied()),
                );
            }
        }
        // A fallback that reads (through any path) the node it stands in
        // for could never answer when that node fails.
        for (i, n) in c.nodes.iter().enumerate() {
            let Some(f) = n
                .fallback
                .as_ref()
                .and_then(|f| index.get(f.as_str()).copied())
            else {
                continue;
            };
            let mut seen = vec![false; c.nodes.len()];
            let mut todo = vec![f];
            let mut reads = false;
            while let Some(j) = todo.pop() {
                if j == i {
                    reads = true;
                    break;
                }
                if !seen[j] {
                    seen[j] = true;
                    todo.extend(
                        c.nodes[j]
                            .inputs
                            .iter()
                            .filter_map(|s| index.get(s.as_str()).copied()),
                    );
                }
            }
            if reads {
                let id = n.id.clone();
                self.problem(
                    &["nodes", &id, "fallback"],
                    format!(
                        "`{}` reads `{id}`, so it cannot stand in for it",
                        c.nodes[f].id
                    ),
                );
            }
        }
        for (i, n) in c.nodes.iter().enumerate() {
            if !reached[i] {
                let id = n.id.clone();
                self.problem(
                    &["nodes", &id],
                    "no output reads this node (unreachable)".into(),
                );
            }
        }
        let nodes = std::mem::take(&mut c.nodes);
        let mut slots: Vec<Option<NodeDecl>> = nodes.into_iter().map(Some).collect();
        c.nodes = order.into_iter().filter_map(|i| slots[i].take()).collect();
    }
}
