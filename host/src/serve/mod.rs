//! The HTTP server: the Open Inference Protocol v2 (REST) over the
//! serving graph, with dynamic batching, Prometheus metrics, hot reload
//! and the model repository extension.
//!
//! [`Server`] is usable as a library: [`Server::handle`] answers one
//! `http::Request` of any body type (mount it in another hyper or tower
//! application), and [`Server::run`] serves a listener until a shutdown
//! future completes, then drains.
//!
//! ```no_run
//! use tessera_host::{Registry, serve::{Server, Source}};
//! # async fn f() -> anyhow::Result<()> {
//! let mut registry = Registry::new();
//! registry.load_dir(std::path::Path::new("target/release"))?;
//! // Plugins are never unloaded, so the registry lives as long as the process.
//! let registry: &'static Registry = Box::leak(Box::new(registry));
//! let server = Server::new(registry, Source::Graph("deploy.toml".into()), Default::default())?;
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8000").await?;
//! server.run(listener, async { let _ = tokio::signal::ctrl_c().await; }).await?;
//! # Ok(()) }
//! ```

mod batch;
mod service;
pub mod stats;

use std::{
    collections::{BTreeMap, BTreeSet},
    path::{Path, PathBuf},
    sync::{
        Arc, Mutex, RwLock,
        atomic::{AtomicBool, AtomicU64, Ordering::Relaxed},
    },
    time::{Duration, Instant},
};

use anyhow::Context;

use self::{batch::Batcher, stats::Stats};
use crate::{
    graph::{Batching, Graph, ServerDecl},
    plugin::Registry,
};

/// Where the served models come from; read again on every reload.
#[derive(Clone, Debug)]
pub enum Source {
    /// A graph file: each `[outputs.*]` is a model.
    Graph(PathBuf),
    /// Model files, each served under its name.
    Models(Vec<(String, PathBuf)>),
    /// Only these model nodes of a graph file, each served under its id
    /// (what a machine holding one part of a larger deployment runs).
    Nodes(PathBuf, Vec<String>),
}

/// The server's limits and settings (a graph's `[server]` table, with
/// what the command line overrides).
pub type Settings = ServerDecl;

/// One served model: a graph output, its queue and what clients see.
pub struct Endpoint {
    /// The name clients call.
    pub name: String,
    /// Its version.
    pub version: String,
    /// The input's name.
    pub input: String,
    /// Features per row.
    pub width: usize,
    /// The input's column names, when known.
    pub features: Option<Vec<String>>,
    /// Class labels (empty for values).
    pub classes: Vec<String>,
    /// Values per row of the answer.
    pub answer_width: usize,
    /// Batching settings.
    pub batching: Batching,
    batcher: Batcher,
    stats: Arc<stats::ModelStats>,
}

/// The served models at one moment; replaced whole on reload, while
/// requests already in flight finish on the one they started with.
pub struct Deployment {
    endpoints: BTreeMap<String, Arc<Endpoint>>,
    /// When it was loaded.
    pub loaded_at: std::time::SystemTime,
}

impl Deployment {
    /// The served models by name.
    pub fn endpoints(&self) -> &BTreeMap<String, Arc<Endpoint>> {
        &self.endpoints
    }
}

/// The server: the current deployment, its source, limits and statistics.
pub struct Server {
    registry: &'static Registry,
    source: Source,
    settings: Settings,
    threads: usize,
    admin_token: Option<String>,
    current: RwLock<Arc<Deployment>>,
    /// Models unloaded through the repository API (kept across reloads).
    unloaded: Mutex<BTreeSet<String>>,
    /// One reload at a time.
    reloading: Mutex<()>,
    draining: AtomicBool,
    requests: AtomicU64,
    worker_program: Option<PathBuf>,
    stats: Arc<Stats>,
}

/// How [`Server::new`] is set up beyond the source.
#[derive(Clone, Debug, Default)]
pub struct Options {
    /// Overrides `[server]` keys; for [`Source::Models`], the settings.
    pub settings: Option<Settings>,
    /// The admin token, overriding `[server] admin_token` (the CLI passes
    /// `$TESSERA_ADMIN_TOKEN`).
    pub admin_token: Option<String>,
    /// The thread budget of one prediction, overriding `[server] threads`.
    pub threads: Option<usize>,
    /// The program `process = true` nodes start (default: this one).
    pub worker_program: Option<PathBuf>,
}

/// The `[server]` settings of the graph file at `path`.
///
/// # Errors
/// An unreadable or invalid graph file.
pub fn settings_of(path: &Path) -> anyhow::Result<Settings> {
    let text = std::fs::read_to_string(path).map_err(|e| crate::data::DataError::Io {
        path: path.to_path_buf(),
        source: e,
    })?;
    let base = path.parent().unwrap_or(Path::new("."));
    Ok(crate::graph::config::parse(&text, base, path)?.server)
}

impl Server {
    /// Loads the deployment `source` describes.
    ///
    /// # Errors
    /// A graph or model that does not load.
    pub fn new(
        registry: &'static Registry,
        source: Source,
        options: Options,
    ) -> anyhow::Result<Arc<Self>> {
        let settings = match (&options.settings, &source) {
            (Some(s), _) => s.clone(),
            (None, Source::Graph(path) | Source::Nodes(path, _)) => settings_of(path)?,
            (None, Source::Models(_)) => Settings::default(),
        };
        let threads = options
            .threads
            .or(settings.threads)
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, usize::from));
        let admin_token = options
            .admin_token
            .clone()
            .or_else(|| settings.admin_token.clone());
        let stats = Arc::new(Stats::default());
        let mut server = Self {
            registry,
            source,
            settings,
            threads,
            admin_token,
            current: RwLock::new(Arc::new(Deployment {
                endpoints: BTreeMap::new(),
                loaded_at: std::time::SystemTime::now(),
            })),
            unloaded: Mutex::new(BTreeSet::new()),
            reloading: Mutex::new(()),
            draining: AtomicBool::new(false),
            requests: AtomicU64::new(0),
            worker_program: options.worker_program,
            stats,
        };
        let first = server.load()?;
        server.current = RwLock::new(Arc::new(first));
        Ok(Arc::new(server))
    }

    /// The settings in force (read at start; a reload does not change them).
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// The deployment serving now.
    pub fn deployment(&self) -> Arc<Deployment> {
        self.current
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// The server's statistics.
    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// Whether the server takes requests (loaded and not shutting down).
    pub fn is_ready(&self) -> bool {
        !self.draining.load(Relaxed)
    }

    /// Builds a deployment from the source, beside the current one.
    fn load(&self) -> anyhow::Result<Deployment> {
        let start = Instant::now();
        let graphs: Vec<Graph<'static>> = match &self.source {
            Source::Graph(path) => vec![Graph::from_file(self.registry, path)?],
            Source::Models(models) => models
                .iter()
                .map(|(name, path)| model_graph(self.registry, name, path))
                .collect::<anyhow::Result<_>>()?,
            Source::Nodes(path, ids) => ids
                .iter()
                .map(|id| node_graph(self.registry, path, id))
                .collect::<anyhow::Result<_>>()?,
        };
        let mut endpoints = BTreeMap::new();
        for graph in graphs {
            if let Some(p) = &self.worker_program {
                graph.set_worker_program(p);
            }
            let stats = self.stats.clone();
            graph.observe_nodes(Box::new(move |id, took| {
                stats.node(id).observe(took.as_secs_f64());
            }));
            let graph = Arc::new(graph);
            let width = graph.input_width().with_context(|| {
                format!("{}: a served graph takes one input", graph.path().display())
            })?;
            let input = &graph.config().inputs[0];
            for o in &graph.config().outputs {
                let stats = self.stats.model(&o.name);
                let classes = graph.output_classes(&o.name).unwrap_or_default().to_vec();
                let answer_width = graph.output_width(&o.name).unwrap_or(1);
                let batcher = Batcher::start(
                    graph.clone(),
                    &o.name,
                    o.batching,
                    self.threads,
                    stats.clone(),
                )?;
                let e = Endpoint {
                    name: o.name.clone(),
                    version: o.version.clone(),
                    input: input.id.clone(),
                    width,
                    features: input.names.clone(),
                    classes,
                    answer_width,
                    batching: o.batching,
                    batcher,
                    stats,
                };
                if endpoints.insert(o.name.clone(), Arc::new(e)).is_some() {
                    anyhow::bail!("two models are named `{}`", o.name);
                }
            }
        }
        let took = start.elapsed();
        for name in endpoints.keys() {
            self.stats
                .model(name)
                .load_micros
                .store(took.as_micros() as u64, Relaxed);
        }
        Ok(Deployment {
            endpoints,
            loaded_at: std::time::SystemTime::now(),
        })
    }

    /// Reads the source again and swaps the new deployment in; on any
    /// error the current one keeps serving. Blocking (models may train):
    /// call it off the async runtime.
    ///
    /// # Errors
    /// What kept the new deployment from loading.
    pub fn reload(&self) -> anyhow::Result<()> {
        let _one = self
            .reloading
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match self.load() {
            Ok(d) => {
                let names: Vec<&String> = d.endpoints.keys().collect();
                tracing::info!(models = ?names, "reloaded");
                *self
                    .current
                    .write()
                    .unwrap_or_else(std::sync::PoisonError::into_inner) = Arc::new(d);
                self.stats.reloads_ok.fetch_add(1, Relaxed);
                Ok(())
            }
            Err(e) => {
                tracing::warn!(error = %format!("{e:#}"), "reload refused; the previous deployment keeps serving");
                self.stats.reloads_failed.fetch_add(1, Relaxed);
                Err(e)
            }
        }
    }

    /// Marks model `name` unloaded (404-free: its metadata stays, it
    /// answers 503 until loaded again).
    fn unload(&self, name: &str) {
        self.unloaded
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(name.to_string());
    }

    /// Reloads the deployment and serves model `name` again.
    fn load_model(&self, name: &str) -> anyhow::Result<bool> {
        self.reload()?;
        let known = self.deployment().endpoints.contains_key(name);
        if known {
            self.unloaded
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .remove(name);
        }
        Ok(known)
    }

    fn is_unloaded(&self, name: &str) -> bool {
        self.unloaded
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .contains(name)
    }

    /// Serves `listener` until `shutdown` completes; then stops
    /// accepting, lets in-flight requests finish (within
    /// `drain_timeout_ms`) and returns.
    ///
    /// # Errors
    /// The listener failed for good.
    pub async fn run(
        self: &Arc<Self>,
        listener: tokio::net::TcpListener,
        shutdown: impl std::future::Future<Output = ()>,
    ) -> std::io::Result<()> {
        service::run(self.clone(), listener, shutdown).await
    }
}

/// A one-model graph for `--model NAME=FILE`.
fn model_graph(
    registry: &'static Registry,
    name: &str,
    path: &Path,
) -> anyhow::Result<Graph<'static>> {
    let header = crate::artifact::Artifact::read(path)?.header;
    let mut input = toml::Table::new();
    input.insert(
        "names".into(),
        toml::Value::Array(
            header
                .features
                .iter()
                .map(|f| toml::Value::String(f.clone()))
                .collect(),
        ),
    );
    let mut node = toml::Table::new();
    let model_path = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    node.insert(
        "model".into(),
        toml::Value::String(model_path.display().to_string()),
    );
    node.insert(
        "inputs".into(),
        toml::Value::Array(vec![toml::Value::String("input".into())]),
    );
    let text = one_node_graph(None, ("input", input), (name, node))?;
    Graph::from_toml(registry, &text, Path::new("."), path)
}

/// The TOML of a graph of one model node: `[server]` when given, the
/// input `(id, table)`, the node `(id, table)`, and an output of the
/// node's id answering from it.
fn one_node_graph(
    server: Option<&toml::Value>,
    (input_id, input): (&str, toml::Table),
    (id, node): (&str, toml::Table),
) -> anyhow::Result<String> {
    let one = |k: &str, v: toml::Table| {
        let mut t = toml::Table::new();
        t.insert(k.to_string(), toml::Value::Table(v));
        toml::Value::Table(t)
    };
    let mut output = toml::Table::new();
    output.insert("from".into(), toml::Value::String(id.into()));
    let mut root = toml::Table::new();
    if let Some(server) = server {
        root.insert("server".into(), server.clone());
    }
    root.insert("inputs".into(), one(input_id, input));
    root.insert("nodes".into(), one(id, node));
    root.insert("outputs".into(), one(id, output));
    Ok(toml::to_string(&root)?)
}

/// A graph of node `id` of the graph file at `path` alone: the input it
/// reads, the node (run here, whatever its `remote` says) and an output
/// named after it.
fn node_graph(
    registry: &'static Registry,
    path: &Path,
    id: &str,
) -> anyhow::Result<Graph<'static>> {
    let text = std::fs::read_to_string(path).map_err(|e| crate::data::DataError::Io {
        path: path.to_path_buf(),
        source: e,
    })?;
    let base = path.parent().unwrap_or(Path::new("."));
    let config = crate::graph::config::parse(&text, base, path)?;
    let ids: Vec<&str> = config.nodes.iter().map(|n| n.id.as_str()).collect();
    let refuse = |key: String, line: usize, message: String| -> anyhow::Error {
        crate::graph::GraphError {
            path: path.to_path_buf(),
            problems: vec![crate::graph::Problem { line, key, message }],
        }
        .into()
    };
    let Some(decl) = config.nodes.iter().find(|n| n.id == id) else {
        return Err(refuse(
            "nodes".into(),
            0,
            format!(
                "--node: no node `{id}` (nodes: {}){}",
                ids.join(", "),
                crate::graph::config::hint(id, &ids)
            ),
        ));
    };
    let key = format!("nodes.{id}");
    if !matches!(decl.kind, crate::graph::config::NodeKind::Model { .. }) {
        return Err(refuse(key, decl.line, "--node: not a model node".into()));
    }
    let source = decl.inputs.first().cloned().unwrap_or_default();
    if !config.inputs.iter().any(|i| i.id == source) {
        return Err(refuse(
            key,
            decl.line,
            format!(
                "--node: it reads node `{source}`, not one of the graph's inputs; only nodes \
                 that read an input can be served alone"
            ),
        ));
    }
    let root: toml::Table = toml::from_str(&text)?;
    let section = |k: &str, name: &str| -> Option<toml::Table> {
        root.get(k)?.get(name)?.as_table().cloned()
    };
    let mut node = section("nodes", id).unwrap_or_default();
    for k in [
        "remote",
        "remote_model",
        "timeout_ms",
        "retries",
        "hedge_after_ms",
        "on_failure",
        "fallback",
    ] {
        node.remove(k);
    }
    let text = one_node_graph(
        root.get("server"),
        (&source, section("inputs", &source).unwrap_or_default()),
        (id, node),
    )?;
    Graph::from_toml(registry, &text, base, path)
}

/// Whether `given` is the admin token `want` (in time independent of
/// where they differ).
fn token_matches(want: &str, given: &str) -> bool {
    let (a, b) = (want.as_bytes(), given.as_bytes());
    let mut diff = a.len() ^ b.len();
    for (i, x) in a.iter().enumerate() {
        diff |= usize::from(x ^ b.get(i).copied().unwrap_or(0));
    }
    diff == 0
}

/// How long a 503 asks the client to wait.
const RETRY_AFTER: Duration = Duration::from_secs(1);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_compare_whole() {
        assert!(token_matches("s3cret", "s3cret"));
        assert!(!token_matches("s3cret", "s3cre"));
        assert!(!token_matches("s3cret", "s3cretx"));
        assert!(!token_matches("s3cret", ""));
    }
}
