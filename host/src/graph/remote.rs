//! Remote model nodes: a node whose model another `tessera serve` holds
//! (`remote = ["http://host:port", ...]`). Rows go over the Open
//! Inference Protocol v2 with binary tensors, on pooled keep-alive
//! connections; each replica's `/v2/health/ready` is polled so a failing
//! one leaves the rotation and comes back when it recovers; a failed call
//! is retried on another replica, and a slow one can be hedged.
//!
//! The graph runs on plain threads, so a call is handed to a small async
//! runtime kept for all remote nodes and waited for.

use std::{
    fmt,
    sync::{
        Arc, OnceLock, Weak,
        atomic::{AtomicBool, AtomicUsize, Ordering::Relaxed},
    },
    time::Duration,
};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Request, StatusCode, Uri};
use hyper_util::{
    client::legacy::{Client, connect::HttpConnector},
    rt::TokioExecutor,
};

use super::config::{RemoteDecl, ReplicaUrl};

/// How often each replica's readiness is asked.
const HEALTH_EVERY: Duration = Duration::from_millis(250);
/// How long a readiness check may take.
const HEALTH_TIMEOUT: Duration = Duration::from_millis(500);

/// The runtime every remote call and health check runs on.
fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("remote")
            .enable_all()
            .build()
            .expect("the remote-call runtime starts")
    })
}

/// A remote call under way.
pub struct Pending {
    rx: std::sync::mpsc::Receiver<Result<Vec<f64>, RemoteError>>,
    node: String,
}

impl Pending {
    /// Its answer.
    ///
    /// # Errors
    /// As [`Remote::call`].
    pub fn wait(self) -> anyhow::Result<Vec<f64>> {
        match self.rx.recv() {
            Ok(r) => r.map_err(anyhow::Error::new),
            Err(_) => anyhow::bail!("node `{}`: the remote call was dropped", self.node),
        }
    }
}

/// Why a call to a replica failed.
#[derive(Debug, Clone)]
pub struct RemoteError {
    /// The HTTP status the replica answered, if it answered.
    pub status: Option<u16>,
    /// What went wrong.
    pub message: String,
}

impl fmt::Display for RemoteError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for RemoteError {}

impl RemoteError {
    /// Whether the request itself was wrong (the same request fails on
    /// every replica: no retry).
    pub fn is_client_error(&self) -> bool {
        self.status == Some(400)
    }
}

struct Replica {
    url: String,
    infer: Uri,
    ready: Uri,
    healthy: AtomicBool,
}

/// A remote node's replicas and how to call them.
pub struct Remote {
    node: String,
    model: String,
    input: String,
    features: usize,
    /// The output asked for: `probabilities` or `prediction`.
    output: &'static str,
    width: usize,
    timeout: Duration,
    retries: usize,
    hedge: Option<Duration>,
    replicas: Vec<Replica>,
    next: AtomicUsize,
    client: Client<HttpConnector, Full<Bytes>>,
}

impl Remote {
    /// The node `node` of `decl`'s replicas; its input is named `input`
    /// on them, takes `features` columns and answers `width` values per
    /// row (class probabilities when `classifier`). Starts the health
    /// checks.
    ///
    /// # Errors
    /// A URL that is not `http://host:port`.
    pub fn new(
        node: &str,
        decl: &RemoteDecl,
        input: &str,
        features: usize,
        classifier: bool,
        width: usize,
    ) -> anyhow::Result<Arc<Self>> {
        let mut replicas = Vec::new();
        for url in &decl.urls {
            let Some(e) = ReplicaUrl::parse(url) else {
                anyhow::bail!("`{url}` is not a URL such as http://10.0.0.2:8000");
            };
            let model = &decl.model;
            replicas.push(Replica {
                url: url.clone(),
                infer: format!("http://{}/v2/models/{model}/infer", e.authority).parse()?,
                ready: format!("http://{}/v2/models/{model}/ready", e.authority).parse()?,
                healthy: AtomicBool::new(true),
            });
        }
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        connector.set_connect_timeout(Some(Duration::from_millis(decl.timeout_ms)));
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(30))
            .build(connector);
        let remote = Arc::new(Self {
            node: node.to_string(),
            model: decl.model.clone(),
            input: input.to_string(),
            features,
            output: if classifier {
                "probabilities"
            } else {
                "prediction"
            },
            width,
            timeout: Duration::from_millis(decl.timeout_ms),
            retries: decl.retries,
            hedge: decl.hedge_after_ms.map(Duration::from_millis),
            replicas,
            next: AtomicUsize::new(0),
            client,
        });
        let weak = Arc::downgrade(&remote);
        runtime().spawn(health_checks(weak));
        Ok(remote)
    }

    /// How many replicas the node has.
    pub fn replicas(&self) -> usize {
        self.replicas.len()
    }

    /// The answers for `rows` rows of `x`, from the first replica that
    /// gives them.
    ///
    /// # Errors
    /// Every replica tried failed (each reason listed), or the request
    /// was refused as wrong (a 400: the same everywhere).
    pub fn call(self: &Arc<Self>, x: &[f32], rows: usize) -> anyhow::Result<Vec<f64>> {
        self.start(x, rows).wait()
    }

    /// [`Remote::call`] started on the remote-call runtime: the caller
    /// goes on (other nodes of the same wave run meanwhile) and waits
    /// with [`Pending::wait`]. No thread is started per call.
    pub fn start(self: &Arc<Self>, x: &[f32], rows: usize) -> Pending {
        let body = self.request_body(x, rows);
        let (tx, rx) = std::sync::mpsc::channel();
        let me = self.clone();
        runtime().spawn(async move {
            let _ = tx.send(me.call_async(body, rows).await);
        });
        Pending {
            rx,
            node: self.node.clone(),
        }
    }

    /// The replicas in rotation, round-robin from the next one. A replica
    /// leaves the rotation when a call to it fails and comes back when its
    /// health check passes, so a dead or hung one costs one timeout, not
    /// one per request.
    fn order(&self) -> Vec<usize> {
        let n = self.replicas.len();
        let start = self.next.fetch_add(1, Relaxed) % n;
        (0..n)
            .map(|k| (start + k) % n)
            .filter(|&i| self.replicas[i].healthy.load(Relaxed))
            .collect()
    }

    async fn call_async(
        self: Arc<Self>,
        body: (Bytes, usize),
        rows: usize,
    ) -> Result<Vec<f64>, RemoteError> {
        let order = self.order();
        let n = order.len();
        if n == 0 {
            return Err(RemoteError {
                status: None,
                message: format!(
                    "node `{}`: no replica in rotation (each failed a call or its health check)",
                    self.node
                ),
            });
        }
        let attempts = 1 + self.retries;
        let mut reasons = Vec::new();
        let mut k = 0;
        while k < attempts {
            let first = order[k % n];
            let result = match self.hedge {
                Some(after) if n > 1 && k + 1 < attempts => {
                    let second = order[(k + 1) % n];
                    k += 2;
                    self.hedged(first, second, after, &body, rows).await
                }
                _ => {
                    k += 1;
                    self.attempt(first, &body, rows).await
                }
            };
            match result {
                Ok(v) => return Ok(v),
                Err(e) if e.is_client_error() => return Err(e),
                Err(e) => reasons.push(e.message),
            }
        }
        Err(RemoteError {
            status: None,
            message: format!(
                "node `{}`: no replica answered ({})",
                self.node,
                reasons.join("; ")
            ),
        })
    }

    /// A call to `first`; when it has not answered after `after`, the
    /// same call to `second` too; the first answer wins.
    async fn hedged(
        &self,
        first: usize,
        second: usize,
        after: Duration,
        body: &(Bytes, usize),
        rows: usize,
    ) -> Result<Vec<f64>, RemoteError> {
        let a = self.attempt(first, body, rows);
        tokio::pin!(a);
        tokio::select! {
            r = &mut a => {
                if r.is_ok() {
                    return r;
                }
                // Failed fast: the other replica alone.
                return self.attempt(second, body, rows).await.map_err(|e| RemoteError {
                    status: e.status,
                    message: format!("{}; {}", r.err().map(|e| e.message).unwrap_or_default(), e.message),
                });
            }
            () = tokio::time::sleep(after) => {}
        }
        let b = self.attempt(second, body, rows);
        tokio::pin!(b);
        tokio::select! {
            r = &mut a => match r {
                Ok(v) => Ok(v),
                Err(_) => b.await,
            },
            r = &mut b => match r {
                Ok(v) => Ok(v),
                Err(_) => a.await,
            },
        }
    }

    /// One call to replica `i`, within the node's timeout.
    async fn attempt(
        &self,
        i: usize,
        body: &(Bytes, usize),
        rows: usize,
    ) -> Result<Vec<f64>, RemoteError> {
        let r = &self.replicas[i];
        let call = async {
            let req = Request::post(r.infer.clone())
                .header("content-type", "application/octet-stream")
                .header(crate::oip::HEADER_LENGTH, body.1)
                .body(Full::new(body.0.clone()))
                .map_err(|e| e.to_string())?;
            let resp = self.client.request(req).await.map_err(|e| {
                use std::error::Error as _;
                match e.source() {
                    Some(s) => format!("{e}: {s}"),
                    None => e.to_string(),
                }
            })?;
            let status = resp.status();
            let json_len = resp
                .headers()
                .get(crate::oip::HEADER_LENGTH)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse::<usize>().ok());
            let bytes = resp
                .into_body()
                .collect()
                .await
                .map_err(|e| e.to_string())?
                .to_bytes();
            Ok::<_, String>((status, json_len, bytes))
        };
        let failed = |status: Option<u16>, message: String| {
            // A replica that did not answer, or answered that it cannot,
            // leaves the rotation until its health check passes.
            if status.is_none_or(|s| s >= 500) && r.healthy.swap(false, Relaxed) {
                tracing::warn!(node = %self.node, replica = %r.url, error = %message, "replica out of rotation");
            }
            RemoteError {
                status,
                message: format!("{}: {message}", r.url),
            }
        };
        let (status, json_len, bytes) = match tokio::time::timeout(self.timeout, call).await {
            Err(_) => {
                return Err(failed(
                    None,
                    format!(
                        "no answer within timeout_ms ({} ms)",
                        self.timeout.as_millis()
                    ),
                ));
            }
            Ok(Err(e)) => return Err(failed(None, e)),
            Ok(Ok(v)) => v,
        };
        if status != StatusCode::OK {
            let message = serde_json::from_slice::<serde_json::Value>(&bytes)
                .ok()
                .and_then(|v| v["error"].as_str().map(str::to_string))
                .unwrap_or_else(|| String::from_utf8_lossy(&bytes).into_owned());
            return Err(failed(
                Some(status.as_u16()),
                format!("{status}: {message}"),
            ));
        }
        self.decode(json_len, &bytes, rows)
            .map_err(|m| failed(Some(502), m))
    }

    /// The request: a JSON header naming the binary input and asking for
    /// the output in binary, then the rows as little-endian f32.
    fn request_body(&self, x: &[f32], rows: usize) -> (Bytes, usize) {
        let cols = x.len().checked_div(rows).unwrap_or(self.features);
        let header = serde_json::json!({
            "inputs": [{
                "name": self.input,
                "shape": [rows, cols],
                "datatype": "FP32",
                "parameters": { "binary_data_size": x.len() * 4 },
            }],
            "outputs": [{ "name": self.output, "parameters": { "binary_data": true } }],
        })
        .to_string();
        let mut body = Vec::with_capacity(header.len() + x.len() * 4);
        body.extend_from_slice(header.as_bytes());
        for v in x {
            body.extend_from_slice(&v.to_le_bytes());
        }
        (Bytes::from(body), header.len())
    }

    /// The output's values from a binary (or JSON) answer.
    fn decode(
        &self,
        json_len: Option<usize>,
        bytes: &[u8],
        rows: usize,
    ) -> Result<Vec<f64>, String> {
        let (json, binary) = match json_len {
            Some(n) if n <= bytes.len() => (&bytes[..n], &bytes[n..]),
            Some(n) => return Err(format!("answer shorter than its header length {n}")),
            None => (bytes, &[][..]),
        };
        let v: serde_json::Value =
            serde_json::from_slice(json).map_err(|e| format!("answer is not JSON: {e}"))?;
        let want = rows * self.width;
        let mut offset: usize = 0;
        for o in v["outputs"].as_array().into_iter().flatten() {
            let size = o["parameters"]["binary_data_size"]
                .as_u64()
                .map(|n| n as usize);
            if o["name"] != self.output {
                offset = offset.saturating_add(size.unwrap_or(0));
                continue;
            }
            let values: Vec<f64> = match size {
                Some(n) => offset
                    .checked_add(n)
                    .and_then(|end| binary.get(offset..end))
                    .ok_or("answer shorter than its binary outputs")?
                    .chunks_exact(8)
                    .map(|c| f64::from_le_bytes(c.try_into().unwrap_or_default()))
                    .collect(),
                None => o["data"]
                    .as_array()
                    .ok_or("answer without data")?
                    .iter()
                    .map(|x| x.as_f64().unwrap_or(f64::NAN))
                    .collect(),
            };
            if values.len() != want {
                return Err(format!(
                    "`{}` answered {} values for {rows} rows; this node answers {} per row",
                    self.model,
                    values.len(),
                    self.width
                ));
            }
            return Ok(values);
        }
        Err(format!("the answer has no output `{}`", self.output))
    }
}

/// Polls every replica's readiness while the node exists.
async fn health_checks(remote: Weak<Remote>) {
    loop {
        tokio::time::sleep(HEALTH_EVERY).await;
        let Some(r) = remote.upgrade() else { return };
        for rep in &r.replicas {
            let req = Request::get(rep.ready.clone()).body(Full::new(Bytes::new()));
            let Ok(req) = req else { continue };
            let ok = matches!(
                tokio::time::timeout(HEALTH_TIMEOUT, r.client.request(req)).await,
                Ok(Ok(resp)) if resp.status() == StatusCode::OK
            );
            let was = rep.healthy.swap(ok, Relaxed);
            if was != ok {
                if ok {
                    tracing::info!(node = %r.node, replica = %rep.url, "replica back in rotation");
                } else {
                    tracing::warn!(node = %r.node, replica = %rep.url, "replica out of rotation");
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_host_and_port() {
        assert_eq!(
            ReplicaUrl::parse("http://127.0.0.2:8001/").map(|e| e.authority),
            Some("127.0.0.2:8001".into())
        );
        assert!(ReplicaUrl::parse("https://a:1").is_none());
        assert!(ReplicaUrl::parse("http://a").is_none());
        assert!(ReplicaUrl::parse("http://a:99999").is_none());
        assert!(ReplicaUrl::parse("http://a:80/x").is_none());
    }
}
