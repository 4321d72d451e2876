//! Routes, request handling and the connection loop.

use std::{
    convert::Infallible,
    sync::{Arc, atomic::Ordering::Relaxed},
    time::{Duration, Instant},
};

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::{
    Method, Request, Response, StatusCode,
    body::Body,
    header::{self, HeaderValue},
};
use serde_json::{Value, json};

use super::{
    Endpoint, RETRY_AFTER, Server,
    batch::{Failure, Job},
    token_matches,
};
use crate::oip::{self, Output, OutputData, RequestError};

/// The OpenAPI document of the API, served at `/v2/openapi.json`.
pub const OPENAPI: &str = include_str!("../../../docs/openapi.json");

type Reply = Response<Full<Bytes>>;

fn reply(status: u16, content_type: &'static str, body: impl Into<Bytes>) -> Reply {
    let mut r = Response::new(Full::new(body.into()));
    *r.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    r
}

fn json_reply(status: u16, v: &Value) -> Reply {
    reply(status, "application/json", v.to_string())
}

/// `{"error": message}` with `status`; 503s carry `Retry-After`.
fn error(status: u16, message: impl Into<String>) -> Reply {
    let mut r = json_reply(status, &json!({ "error": message.into() }));
    if status == 503 {
        r.headers_mut().insert(
            header::RETRY_AFTER,
            HeaderValue::from(RETRY_AFTER.as_secs()),
        );
    }
    r
}

impl From<RequestError> for Reply {
    fn from(e: RequestError) -> Self {
        error(e.status, e.message)
    }
}

/// `%XX` escapes of a path segment decoded.
fn decode_segment(s: &str) -> String {
    if !s.contains('%') {
        return s.to_string();
    }
    let hex = |c: u8| (c as char).to_digit(16).map(|d| d as u8);
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && i + 1 < b.len()
            && let (Some(h), Some(l)) = (hex(b[i + 1]), b.get(i + 2).and_then(|c| hex(*c)))
        {
            out.push(h * 16 + l);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// What a request asks for.
enum Route {
    ServerMetadata,
    Live,
    Ready,
    Metrics,
    OpenApi,
    Model {
        name: String,
        version: Option<String>,
        action: ModelAction,
    },
    Index,
    RepoLoad(String),
    RepoUnload(String),
    Reload,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum ModelAction {
    Metadata,
    Ready,
    Config,
    Infer,
}

/// The route of `method path`, or the error status and message.
fn route(method: &Method, path: &str) -> Result<Route, (u16, String)> {
    let segments: Vec<String> = path
        .trim_end_matches('/')
        .split('/')
        .skip(1)
        .map(decode_segment)
        .collect();
    let s: Vec<&str> = segments.iter().map(String::as_str).collect();
    let get = method == Method::GET || method == Method::HEAD;
    let post = method == Method::POST;
    let (r, ok) = match s.as_slice() {
        ["metrics"] => (Route::Metrics, get),
        ["v2"] => (Route::ServerMetadata, get),
        ["v2", "health", "live"] => (Route::Live, get),
        ["v2", "health", "ready"] => (Route::Ready, get),
        ["v2", "openapi.json"] => (Route::OpenApi, get),
        ["v2", "repository", "index"] => (Route::Index, post || get),
        ["v2", "repository", "reload"] => (Route::Reload, post),
        ["v2", "repository", "models", name, "load"] => (Route::RepoLoad((*name).into()), post),
        ["v2", "repository", "models", name, "unload"] => (Route::RepoUnload((*name).into()), post),
        ["v2", "models", name, rest @ ..] => {
            let (version, rest) = match rest {
                ["versions", v, rest @ ..] => (Some((*v).to_string()), rest),
                _ => (None, rest),
            };
            let (action, ok) = match rest {
                [] => (ModelAction::Metadata, get),
                ["ready"] => (ModelAction::Ready, get),
                ["config"] => (ModelAction::Config, get),
                ["infer"] => (ModelAction::Infer, post),
                _ => return Err((404, format!("no route {path}"))),
            };
            (
                Route::Model {
                    name: (*name).into(),
                    version,
                    action,
                },
                ok,
            )
        }
        _ => return Err((404, format!("no route {path}"))),
    };
    if ok {
        Ok(r)
    } else {
        Err((405, format!("{method} is not allowed on {path}")))
    }
}

impl Server {
    /// Answers one HTTP request. Any body type works, so the service can
    /// be mounted in another hyper or tower application.
    pub async fn handle<B>(self: &Arc<Self>, req: Request<B>) -> Reply
    where
        B: Body,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let start = Instant::now();
        let method = req.method().clone();
        let path = req.uri().path().to_string();
        let request_id = req
            .headers()
            .get("x-request-id")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let mut r = match route(&method, &path) {
            Err((status, message)) => error(status, message),
            Ok(route) => {
                let timeout = Duration::from_millis(self.settings.request_timeout_ms);
                match tokio::time::timeout(timeout, self.dispatch(route, req, request_id.clone()))
                    .await
                {
                    Ok(r) => r,
                    Err(_) => error(
                        503,
                        format!(
                            "the request took longer than request_timeout_ms ({} ms)",
                            self.settings.request_timeout_ms
                        ),
                    ),
                }
            }
        };
        let status = r.status().as_u16();
        self.stats.http(status);
        let took_us = start.elapsed().as_micros() as u64;
        let id = request_id.as_deref().unwrap_or("-");
        if status >= 500 {
            tracing::warn!(%method, %path, status, request_id = id, took_us, "request failed");
        } else {
            tracing::debug!(%method, %path, status, request_id = id, took_us, "request");
        }
        if let Some(id) = request_id
            && let Ok(v) = HeaderValue::from_str(&id)
        {
            r.headers_mut().insert("x-request-id", v);
        }
        r
    }

    async fn dispatch<B>(
        self: &Arc<Self>,
        route: Route,
        req: Request<B>,
        request_id: Option<String>,
    ) -> Reply
    where
        B: Body,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        match route {
            Route::Live => json_reply(200, &json!({ "live": true })),
            Route::Ready => {
                if self.is_ready() {
                    json_reply(200, &json!({ "ready": true }))
                } else {
                    let mut r = error(503, "the server is shutting down");
                    *r.body_mut() = Full::new(
                        json!({"ready": false, "error": "the server is shutting down"})
                            .to_string()
                            .into(),
                    );
                    r
                }
            }
            Route::ServerMetadata => json_reply(
                200,
                &json!({
                    "name": "tessera",
                    "version": env!("CARGO_PKG_VERSION"),
                    "extensions": ["binary_tensor_data", "model_repository"],
                }),
            ),
            Route::Metrics => reply(
                200,
                "text/plain; version=0.0.4; charset=utf-8",
                self.stats.render(),
            ),
            Route::OpenApi => reply(200, "application/json", OPENAPI),
            Route::Index => {
                let d = self.deployment();
                let list: Vec<Value> = d
                    .endpoints
                    .values()
                    .map(|e| {
                        let unloaded = self.is_unloaded(&e.name);
                        json!({
                            "name": e.name,
                            "version": e.version,
                            "state": if unloaded { "UNAVAILABLE" } else { "READY" },
                            "reason": if unloaded { "unloaded" } else { "" },
                        })
                    })
                    .collect();
                json_reply(200, &Value::Array(list))
            }
            Route::Reload | Route::RepoLoad(_) | Route::RepoUnload(_) => {
                if let Err(r) = self.check_admin(&req) {
                    return *r;
                }
                self.admin(route).await
            }
            Route::Model {
                name,
                version,
                action,
            } => {
                let d = self.deployment();
                let Some(e) = d.endpoints.get(&name) else {
                    let names: Vec<&str> = d.endpoints.keys().map(String::as_str).collect();
                    return error(
                        404,
                        format!(
                            "no model `{name}` (serving: {}){}",
                            names.join(", "),
                            crate::graph::config::hint(&name, &names)
                        ),
                    );
                };
                if let Some(v) = &version
                    && *v != e.version
                {
                    return error(
                        404,
                        format!(
                            "model `{name}` has no version `{v}` (serving version `{}`)",
                            e.version
                        ),
                    );
                }
                let e = e.clone();
                drop(d);
                match action {
                    ModelAction::Metadata => json_reply(200, &metadata(&e)),
                    ModelAction::Config => json_reply(200, &model_config(&e)),
                    ModelAction::Ready => {
                        if self.is_unloaded(&name) || !self.is_ready() {
                            error(503, format!("model `{name}` is not ready"))
                        } else {
                            json_reply(200, &json!({ "name": name, "ready": true }))
                        }
                    }
                    ModelAction::Infer => {
                        if self.is_unloaded(&name) {
                            return error(
                                503,
                                format!(
                                    "model `{name}` is unloaded; load it through /v2/repository/models/{name}/load"
                                ),
                            );
                        }
                        let start = Instant::now();
                        let r = self.infer(&e, req, request_id).await;
                        e.stats.answered(r.status().as_u16(), start.elapsed());
                        r
                    }
                }
            }
        }
    }

    /// 401 unless the request carries the admin token (as
    /// `Authorization: Bearer <token>` or `X-Admin-Token`).
    fn check_admin<B>(&self, req: &Request<B>) -> Result<(), Box<Reply>> {
        let Some(want) = &self.admin_token else {
            return Err(Box::new(error(
                401,
                "admin routes are disabled: no admin token is configured ([server] admin_token or TESSERA_ADMIN_TOKEN)",
            )));
        };
        let h = req.headers();
        let given = h
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .or_else(|| h.get("x-admin-token").and_then(|v| v.to_str().ok()));
        match given {
            Some(g) if token_matches(want, g.trim()) => Ok(()),
            Some(_) => Err(Box::new(error(401, "the admin token is wrong"))),
            None => Err(Box::new(error(
                401,
                "admin routes need the admin token (Authorization: Bearer <token>)",
            ))),
        }
    }

    async fn admin(self: &Arc<Self>, route: Route) -> Reply {
        let me = self.clone();
        let work = tokio::task::spawn_blocking(move || match route {
            Route::Reload => me.reload().map(|()| json!({ "reloaded": true })),
            Route::RepoUnload(name) => {
                if me.deployment().endpoints.contains_key(&name) {
                    me.unload(&name);
                    tracing::info!(model = %name, "unloaded");
                    Ok(json!({ "unloaded": name }))
                } else {
                    Err(anyhow::Error::new(RequestError {
                        status: 404,
                        message: format!("no model `{name}`"),
                    }))
                }
            }
            Route::RepoLoad(name) => match me.load_model(&name) {
                Ok(true) => Ok(json!({ "loaded": name })),
                Ok(false) => Err(anyhow::Error::new(RequestError {
                    status: 404,
                    message: format!("the reloaded deployment has no model `{name}`"),
                })),
                Err(e) => Err(e),
            },
            _ => Ok(Value::Null),
        });
        match work.await {
            Ok(Ok(v)) => json_reply(200, &v),
            Ok(Err(e)) => {
                if let Some(r) = e.downcast_ref::<RequestError>() {
                    return error(r.status, r.message.clone());
                }
                // A bad new configuration is the admin's input: 400.
                let status = if e.chain().any(|c| {
                    c.is::<crate::graph::GraphError>()
                        || c.is::<crate::data::DataError>()
                        || c.is::<crate::ArtifactError>()
                }) {
                    400
                } else {
                    500
                };
                error(
                    status,
                    format!("reload refused, the previous deployment keeps serving: {e:#}"),
                )
            }
            Err(_) => error(
                500,
                "the reload panicked; the previous deployment keeps serving",
            ),
        }
    }

    async fn infer<B>(&self, e: &Endpoint, req: Request<B>, request_id: Option<String>) -> Reply
    where
        B: Body,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let limit = self.settings.max_body_bytes;
        let declared = req
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if let Some(n) = declared
            && n > limit
        {
            return error(
                413,
                format!("the body is {n} bytes, over max_body_bytes ({limit})"),
            );
        }
        let json_len = req
            .headers()
            .get(oip::HEADER_LENGTH)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let body = match Limited::new(req.into_body(), limit as usize)
            .collect()
            .await
        {
            Ok(b) => b.to_bytes(),
            Err(err) => {
                if err.is::<http_body_util::LengthLimitError>() {
                    return error(413, format!("the body is over max_body_bytes ({limit})"));
                }
                return error(400, format!("reading the body failed: {err}"));
            }
        };
        let parsed = match oip::parse(body, json_len.as_deref()) {
            Ok(p) => p,
            Err(r) => return r.into(),
        };
        let request = &parsed.request;
        let [input] = request.inputs.as_slice() else {
            return error(
                400,
                format!(
                    "model `{}` takes one input, `{}`; the request has {}",
                    e.name,
                    e.input,
                    request.inputs.len()
                ),
            );
        };
        if input.name != e.input {
            return error(
                400,
                format!(
                    "model `{}` has no input `{}`; its input is `{}`",
                    e.name, input.name, e.input
                ),
            );
        }
        let (rows, x) = match oip::rows_of(input, e.width, &parsed.binary, &mut 0) {
            Ok(v) => v,
            Err(r) => return r.into(),
        };
        let binary_all = request
            .parameters
            .as_ref()
            .and_then(|p| p.get("binary_data_output"))
            .and_then(Value::as_bool)
            .unwrap_or(false);
        let wanted = match wanted_outputs(e, request.outputs.as_deref(), binary_all) {
            Ok(w) => w,
            Err(r) => return r.into(),
        };
        let id = request
            .id
            .clone()
            .or(request_id)
            .unwrap_or_else(|| self.requests.fetch_add(1, Relaxed).to_string());
        if rows == 0 {
            return answer(e, request.id.as_deref(), &wanted, &empty_answer(e));
        }
        let (tx, rx) = tokio::sync::oneshot::channel();
        let job = Job {
            x,
            rows,
            id,
            reply: tx,
        };
        if e.batcher.submit(job).is_err() {
            return error(
                503,
                format!(
                    "model `{}` is overloaded: {} requests are already queued (max_queue)",
                    e.name, e.batching.max_queue
                ),
            );
        }
        match rx.await {
            Ok(Ok(a)) => answer(e, request.id.as_deref(), &wanted, &a),
            Ok(Err(Failure { status, message })) => error(status, message),
            Err(_) => error(500, format!("model `{}` stopped before answering", e.name)),
        }
    }
}

/// The outputs a request wants: (name, binary).
fn wanted_outputs(
    e: &Endpoint,
    asked: Option<&[oip::RequestedOutput]>,
    binary_all: bool,
) -> Result<Vec<(&'static str, bool)>, RequestError> {
    let names: &[&'static str] = if e.classes.is_empty() {
        &["prediction"]
    } else {
        &["label", "probabilities"]
    };
    match asked {
        None => Ok(names.iter().map(|n| (*n, binary_all)).collect()),
        Some(list) => list
            .iter()
            .map(|o| {
                let Some(n) = names.iter().find(|n| **n == o.name) else {
                    return Err(RequestError::bad(format!(
                        "model `{}` has no output `{}` (it has: {})",
                        e.name,
                        o.name,
                        names.join(", ")
                    )));
                };
                let binary = o
                    .parameters
                    .as_ref()
                    .and_then(|p| p.get("binary_data"))
                    .and_then(Value::as_bool)
                    .unwrap_or(binary_all);
                Ok((*n, binary))
            })
            .collect(),
    }
}

fn empty_answer(e: &Endpoint) -> crate::graph::Answer {
    crate::graph::Answer {
        rows: 0,
        width: e.answer_width,
        classes: e.classes.clone(),
        values: Vec::new(),
        notes: Vec::new(),
        missing: Vec::new(),
    }
}

/// The answer `a` as the outputs `wanted`.
fn answer(
    e: &Endpoint,
    id: Option<&str>,
    wanted: &[(&'static str, bool)],
    a: &crate::graph::Answer,
) -> Reply {
    let labels = if e.classes.is_empty() {
        None
    } else {
        a.labels()
    };
    let value_shape = if a.width == 1 && e.classes.is_empty() {
        vec![a.rows]
    } else {
        vec![a.rows, a.width]
    };
    let outputs: Vec<Output<'_>> = wanted
        .iter()
        .map(|(name, binary)| Output {
            name,
            shape: if *name == "label" {
                vec![a.rows]
            } else {
                value_shape.clone()
            },
            data: if *name == "label" {
                OutputData::Labels(labels.clone().unwrap_or_default())
            } else {
                OutputData::Values(&a.values)
            },
            binary: *binary,
        })
        .collect();
    let parameters = match (a.notes.is_empty(), a.missing.is_empty()) {
        (true, true) => None,
        (false, true) => Some(json!({ "fallbacks": a.notes })),
        (_, false) => Some(json!({ "fallbacks": a.notes, "missing": a.missing })),
    };
    let (body, json_len) =
        oip::write_answer(&e.name, &e.version, id, parameters.as_ref(), &outputs);
    match json_len {
        None => reply(200, "application/json", body),
        Some(n) => {
            let mut r = reply(200, "application/octet-stream", body);
            r.headers_mut()
                .insert(oip::HEADER_LENGTH, HeaderValue::from(n));
            r
        }
    }
}

/// Model metadata (the protocol's `$metadata_model_response`).
fn metadata(e: &Endpoint) -> Value {
    let outputs = if e.classes.is_empty() {
        let shape: Vec<i64> = if e.answer_width == 1 {
            vec![-1]
        } else {
            vec![-1, e.answer_width as i64]
        };
        json!([{ "name": "prediction", "datatype": "FP64", "shape": shape }])
    } else {
        json!([
            { "name": "label", "datatype": "BYTES", "shape": [-1] },
            { "name": "probabilities", "datatype": "FP64", "shape": [-1, e.classes.len()] },
        ])
    };
    let mut parameters = serde_json::Map::new();
    if !e.classes.is_empty() {
        parameters.insert("classes".into(), json!(e.classes));
    }
    if let Some(f) = &e.features {
        parameters.insert("features".into(), json!(f));
    }
    json!({
        "name": e.name,
        "versions": [e.version],
        "platform": "tessera",
        "inputs": [{ "name": e.input, "datatype": "FP32", "shape": [-1, e.width] }],
        "outputs": outputs,
        "parameters": parameters,
    })
}

/// A Triton-style model configuration, for clients that ask for one.
fn model_config(e: &Endpoint) -> Value {
    let m = metadata(e);
    let dims = |shape: &Value| -> Value {
        json!(
            shape
                .as_array()
                .map(|s| s[1..].to_vec())
                .unwrap_or_default()
        )
    };
    let io = |list: &Value| -> Vec<Value> {
        list.as_array()
            .into_iter()
            .flatten()
            .map(|t| {
                json!({
                    "name": t["name"],
                    "data_type": format!("TYPE_{}", t["datatype"].as_str().unwrap_or("FP32")
                        .replace("BYTES", "STRING")),
                    "dims": dims(&t["shape"]),
                })
            })
            .collect()
    };
    json!({
        "name": e.name,
        "platform": "tessera",
        "max_batch_size": e.batching.max_batch,
        "input": io(&m["inputs"]),
        "output": io(&m["outputs"]),
        "dynamic_batching": {
            "max_queue_delay_microseconds": e.batching.max_delay_ms * 1000,
        },
    })
}

/// The connection loop of [`Server::run`].
pub(super) async fn run(
    server: Arc<Server>,
    listener: tokio::net::TcpListener,
    shutdown: impl std::future::Future<Output = ()>,
) -> std::io::Result<()> {
    use hyper_util::rt::{TokioIo, TokioTimer};
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let slots = Arc::new(tokio::sync::Semaphore::new(server.settings.max_connections));
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            p = slots.clone().acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => break,
            },
            () = &mut shutdown => break,
        };
        let stream = tokio::select! {
            r = listener.accept() => match r {
                Ok((s, _)) => s,
                Err(e) => {
                    // Out of descriptors and the like: wait, then go on.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let s = server.clone();
        let service = hyper::service::service_fn(move |req| {
            let s = s.clone();
            async move { Ok::<_, Infallible>(s.handle(req).await) }
        });
        let conn = hyper::server::conn::http1::Builder::new()
            .timer(TokioTimer::new())
            .header_read_timeout(Duration::from_millis(
                server.settings.request_timeout_ms.max(1000),
            ))
            .serve_connection(TokioIo::new(stream), service);
        let conn = graceful.watch(conn);
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!(error = %e, "connection ended with an error");
            }
            drop(permit);
        });
    }
    server.draining.store(true, Relaxed);
    drop(listener);
    let drain = Duration::from_millis(server.settings.drain_timeout_ms);
    tracing::info!("shutting down: waiting for in-flight requests");
    if tokio::time::timeout(drain, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!(
            drain_timeout_ms = server.settings.drain_timeout_ms,
            "in-flight requests were still running at the drain timeout"
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_and_methods() {
        let ok = |m: Method, p: &str| route(&m, p).is_ok();
        assert!(ok(Method::GET, "/v2"));
        assert!(ok(Method::GET, "/v2/health/ready"));
        assert!(ok(Method::POST, "/v2/models/a/infer"));
        assert!(ok(Method::POST, "/v2/models/a/versions/1/infer"));
        assert!(ok(Method::GET, "/v2/models/a/versions/1"));
        assert!(ok(Method::POST, "/v2/repository/models/a/load"));
        assert!(matches!(
            route(&Method::GET, "/v2/models/a/infer"),
            Err((405, _))
        ));
        assert!(matches!(route(&Method::GET, "/v2/nope"), Err((404, _))));
        assert!(matches!(
            route(&Method::GET, "/v2/models/a/b/c"),
            Err((404, _))
        ));
        match route(&Method::GET, "/v2/models/a%20b/ready") {
            Ok(Route::Model { name, .. }) => assert_eq!(name, "a b"),
            _ => panic!("not a model route"),
        }
    }

    #[test]
    fn percent_decoding_is_lenient() {
        assert_eq!(decode_segment("a%2Fb"), "a/b");
        assert_eq!(decode_segment("100%"), "100%");
        assert_eq!(decode_segment("%zz"), "%zz");
    }
}
