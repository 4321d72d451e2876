//! The serving keys of a graph file: `[server]`, an output's `batching`,
//! and a node's `remote = [...]` with its call settings.

use std::path::{Path, PathBuf};

use toml::Value;

use super::Reader;

/// A model node served by other `tessera serve` processes.
#[derive(Clone, Debug, PartialEq)]
pub struct RemoteDecl {
    /// `remote`: the replicas' base URLs (`http://host:port`).
    pub urls: Vec<String>,
    /// `remote_model`: the model's name on them (default: the node id).
    pub model: String,
    /// `timeout_ms`: the longest one call to a replica may take.
    pub timeout_ms: u64,
    /// `retries`: other replicas tried after a failed call (default: each
    /// other replica once).
    pub retries: usize,
    /// `hedge_after_ms`: when a call is slower than this, the same request
    /// goes to another replica too, and the first answer wins.
    pub hedge_after_ms: Option<u64>,
}

/// A replica's base URL, checked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReplicaUrl {
    /// `host:port`.
    pub authority: String,
}

impl ReplicaUrl {
    /// `http://host:port` (a trailing `/` allowed), or `None`.
    pub fn parse(url: &str) -> Option<Self> {
        let rest = url.strip_prefix("http://")?.trim_end_matches('/');
        let (host, port) = rest.rsplit_once(':')?;
        if host.is_empty() || host.contains('/') || port.parse::<u16>().is_err() {
            return None;
        }
        Some(Self {
            authority: rest.to_string(),
        })
    }
}

/// How a served output joins concurrent requests into batches.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Batching {
    /// Most rows in one batch (a larger request runs alone).
    pub max_batch: usize,
    /// How long the first request of a batch waits for others; 0 takes
    /// only what is already queued.
    pub max_delay_ms: u64,
    /// Most requests waiting; more are refused at once (HTTP 503).
    pub max_queue: usize,
    /// Batches run at once, each on a thread of its own (default: half
    /// the cores, at least one).
    pub instances: Option<usize>,
}

impl Default for Batching {
    fn default() -> Self {
        Self {
            max_batch: 64,
            max_delay_ms: 0,
            max_queue: 1024,
            instances: None,
        }
    }
}

/// `[server]`: where and how `tessera serve` listens.
#[derive(Clone, Debug, PartialEq)]
pub struct ServerDecl {
    /// `listen`: the address to bind (default `127.0.0.1:8000`).
    pub listen: Option<String>,
    /// `plugins`: plugin folders or files, relative to the graph file.
    pub plugins: Vec<PathBuf>,
    /// `threads`: the thread budget of one prediction.
    pub threads: Option<usize>,
    /// `admin_token`: what reload/load/unload requests must present.
    pub admin_token: Option<String>,
    /// `max_body_bytes`: the largest request body accepted.
    pub max_body_bytes: u64,
    /// `request_timeout_ms`: the longest a request may wait for its answer.
    pub request_timeout_ms: u64,
    /// `max_connections`: connections served at once; more wait to be
    /// accepted.
    pub max_connections: usize,
    /// `drain_timeout_ms`: on shutdown, the longest in-flight requests
    /// may take to finish.
    pub drain_timeout_ms: u64,
}

impl Default for ServerDecl {
    fn default() -> Self {
        Self {
            listen: None,
            plugins: Vec::new(),
            threads: None,
            admin_token: None,
            max_body_bytes: 64 << 20,
            request_timeout_ms: 30_000,
            max_connections: 1024,
            drain_timeout_ms: 10_000,
        }
    }
}

impl Reader<'_, '_> {
    /// An integer at `path` within `lo..=hi`, or a problem.
    fn integer(&mut self, v: &Value, path: &[&str], lo: i64, hi: i64) -> Option<i64> {
        match v.as_integer() {
            Some(i) if (lo..=hi).contains(&i) => Some(i),
            _ => {
                self.problem(
                    path,
                    format!("expected an integer from {lo} to {hi}, got {v}"),
                );
                None
            }
        }
    }

    pub(super) fn server(&mut self, t: &toml::Table, base: &Path) -> ServerDecl {
        const KEYS: [&str; 8] = [
            "listen",
            "plugins",
            "threads",
            "admin_token",
            "max_body_bytes",
            "request_timeout_ms",
            "max_connections",
            "drain_timeout_ms",
        ];
        self.known_keys(t, &["server"], &KEYS);
        let mut s = ServerDecl::default();
        for (k, v) in t {
            let at = ["server", k.as_str()];
            match k.as_str() {
                "listen" => match v.as_str() {
                    Some(a) if a.parse::<std::net::SocketAddr>().is_ok() => {
                        s.listen = Some(a.to_string());
                    }
                    _ => self.problem(
                        &at,
                        format!("expected an address such as \"127.0.0.1:8000\", got {v}"),
                    ),
                },
                "plugins" => {
                    if let Some(list) = self.string_list(Some(v), &at) {
                        s.plugins = list.iter().map(|p| base.join(p)).collect();
                    }
                }
                "threads" => {
                    s.threads = self.integer(v, &at, 1, 4096).map(|i| i as usize);
                }
                "admin_token" => match v.as_str() {
                    Some(tok) if !tok.is_empty() => s.admin_token = Some(tok.to_string()),
                    _ => self.problem(&at, format!("expected a non-empty string, got {v}")),
                },
                "max_body_bytes" => {
                    if let Some(i) = self.integer(v, &at, 1024, 1 << 40) {
                        s.max_body_bytes = i as u64;
                    }
                }
                "request_timeout_ms" => {
                    if let Some(i) = self.integer(v, &at, 1, 3_600_000) {
                        s.request_timeout_ms = i as u64;
                    }
                }
                "max_connections" => {
                    if let Some(i) = self.integer(v, &at, 1, 1_000_000) {
                        s.max_connections = i as usize;
                    }
                }
                "drain_timeout_ms" => {
                    if let Some(i) = self.integer(v, &at, 0, 3_600_000) {
                        s.drain_timeout_ms = i as u64;
                    }
                }
                _ => {}
            }
        }
        s
    }

    /// `[outputs.<name>] batching = { max_batch, max_delay_ms, max_queue }`.
    pub(super) fn batching(&mut self, t: &toml::Table, name: &str) -> Batching {
        let mut b = Batching::default();
        let at = ["outputs", name, "batching"];
        match t.get("batching") {
            None => {}
            Some(Value::Table(bt)) => {
                self.known_keys(
                    bt,
                    &at,
                    &["max_batch", "max_delay_ms", "max_queue", "instances"],
                );
                for (k, v) in bt {
                    let at = ["outputs", name, "batching", k.as_str()];
                    match k.as_str() {
                        "max_batch" => {
                            if let Some(i) = self.integer(v, &at, 1, 1 << 20) {
                                b.max_batch = i as usize;
                            }
                        }
                        "max_delay_ms" => {
                            if let Some(i) = self.integer(v, &at, 0, 60_000) {
                                b.max_delay_ms = i as u64;
                            }
                        }
                        "max_queue" => {
                            if let Some(i) = self.integer(v, &at, 1, 1 << 20) {
                                b.max_queue = i as usize;
                            }
                        }
                        "instances" => {
                            b.instances = self.integer(v, &at, 1, 256).map(|i| i as usize);
                        }
                        _ => {}
                    }
                }
            }
            Some(v) => self.problem(
                &at,
                format!(
                    "expected {{ max_batch = 64, max_delay_ms = 2, max_queue = 1024 }}, got {v}"
                ),
            ),
        }
        b
    }

    /// The `remote = [...]` keys of model node `id`.
    pub(super) fn remote_decl(&mut self, t: &toml::Table, id: &str) -> Option<RemoteDecl> {
        let at = |k: &str| -> Vec<String> { vec!["nodes".into(), id.into(), k.into()] };
        let Some(v) = t.get("remote") else {
            for k in ["remote_model", "timeout_ms", "retries", "hedge_after_ms"] {
                if t.contains_key(k) {
                    let p = at(k);
                    let p: Vec<&str> = p.iter().map(String::as_str).collect();
                    self.problem(&p, "only a node with `remote = [...]` takes this".into());
                }
            }
            return None;
        };
        let path = ["nodes", id, "remote"];
        let urls = self.string_list(Some(v), &path)?;
        if urls.is_empty() {
            self.problem(
                &path,
                "expected at least one URL such as \"http://10.0.0.2:8000\"".into(),
            );
            return None;
        }
        for u in &urls {
            if ReplicaUrl::parse(u).is_none() {
                self.problem(
                    &path,
                    format!("`{u}` is not a URL such as \"http://10.0.0.2:8000\""),
                );
            }
        }
        let model = match t.get("remote_model") {
            None => id.to_string(),
            Some(Value::String(m)) if !m.is_empty() && !m.contains('/') => m.clone(),
            Some(v) => {
                self.problem(
                    &["nodes", id, "remote_model"],
                    format!("expected a model name, got {v}"),
                );
                id.to_string()
            }
        };
        let timeout_ms = match t.get("timeout_ms") {
            None => 1000,
            Some(v) => self
                .integer(v, &["nodes", id, "timeout_ms"], 1, 3_600_000)
                .map_or(1000, |i| i as u64),
        };
        let retries = match t.get("retries") {
            None => urls.len() - 1,
            Some(v) => self
                .integer(v, &["nodes", id, "retries"], 0, 100)
                .map_or(0, |i| i as usize),
        };
        let hedge_after_ms = match t.get("hedge_after_ms") {
            None => None,
            Some(v) => self
                .integer(v, &["nodes", id, "hedge_after_ms"], 1, 3_600_000)
                .map(|i| i as u64),
        };
        Some(RemoteDecl {
            urls,
            model,
            timeout_ms,
            retries,
            hedge_after_ms,
        })
    }
}
