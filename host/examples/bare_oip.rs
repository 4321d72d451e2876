//! A bare Open Inference Protocol (v2) endpoint: the floor that `tessera
//! serve` is measured against in `bench/serve.py`.
//!
//! ```sh
//! cargo build --release -p tessera-host --example bare_oip
//! target/release/examples/bare_oip --listen 127.0.0.1:8080
//! ```
//!
//! It does what every OIP server must do for a request and nothing more:
//! `POST /v2/models/{any}/infer` reads the whole body, parses it with
//! serde_json into a `serde_json::Value` (a body that is not a JSON object
//! with an `inputs` array is answered 400), and answers a fixed small OIP
//! response as `application/json`; `GET /v2/health/ready` and
//! `GET /v2/health/live` answer 200. No model runs, so its requests per
//! second are the ceiling of HTTP/1.1 + JSON parsing on the same runtime
//! (tokio's multi-threaded runtime with its default worker count, hyper 1.x
//! HTTP/1.1 with keep-alive) that `tessera serve` uses.
//!
//! When bound it prints `listening on http://ADDR` to stderr; it exits 0 on
//! SIGINT or SIGTERM (stops accepting and drops open connections).

use std::{convert::Infallible, net::SocketAddr, process::ExitCode};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{
    Method, Request, Response, StatusCode,
    body::Incoming,
    header::{CONTENT_TYPE, HeaderValue},
    server::conn::http1,
    service::service_fn,
};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

const USAGE: &str = "usage: bare_oip --listen ADDR (for example 127.0.0.1:8080)";

/// The fixed answer: one row's label and class probabilities, shaped like
/// `tessera serve`'s answer for a binary classifier.
const ANSWER: &str = concat!(
    r#"{"model_name":"bare","model_version":"1","outputs":["#,
    r#"{"name":"label","shape":[1],"datatype":"INT64","data":[0]},"#,
    r#"{"name":"probabilities","shape":[1,2],"datatype":"FP32","data":[0.5,0.5]}]}"#
);

fn parse_args() -> Result<SocketAddr, String> {
    let mut listen = None;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--listen" => {
                let v = args.next().ok_or("--listen needs an address")?;
                listen = Some(
                    v.parse::<SocketAddr>()
                        .map_err(|e| format!("--listen {v}: {e}"))?,
                );
            }
            "-h" | "--help" => return Err(USAGE.to_string()),
            other => return Err(format!("unknown argument {other}\n{USAGE}")),
        }
    }
    listen.ok_or_else(|| USAGE.to_string())
}

fn respond(status: StatusCode, body: &'static str) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from_static(body.as_bytes())));
    *r.status_mut() = status;
    if !body.is_empty() {
        r.headers_mut()
            .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    }
    r
}

fn is_infer_path(path: &str) -> bool {
    path.strip_prefix("/v2/models/")
        .and_then(|rest| rest.strip_suffix("/infer"))
        .is_some_and(|name| !name.is_empty())
}

async fn handle(req: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    let answer = match (method, path.as_str()) {
        (Method::GET, "/v2/health/ready" | "/v2/health/live") => respond(StatusCode::OK, ""),
        (Method::POST, p) if is_infer_path(p) => {
            let body = match req.into_body().collect().await {
                Ok(b) => b.to_bytes(),
                Err(_) => {
                    return Ok(respond(
                        StatusCode::BAD_REQUEST,
                        r#"{"error":"could not read the body"}"#,
                    ));
                }
            };
            match serde_json::from_slice::<serde_json::Value>(&body) {
                Ok(v) if v.get("inputs").is_some_and(|i| i.is_array()) => {
                    respond(StatusCode::OK, ANSWER)
                }
                _ => respond(
                    StatusCode::BAD_REQUEST,
                    r#"{"error":"the body is not an inference request"}"#,
                ),
            }
        }
        _ => respond(StatusCode::NOT_FOUND, r#"{"error":"not found"}"#),
    };
    Ok(answer)
}

/// Resolves on SIGINT or (on Unix) SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = term => {}
    }
}

async fn serve(addr: SocketAddr) -> std::io::Result<()> {
    let listener = TcpListener::bind(addr).await?;
    eprintln!("listening on http://{}", listener.local_addr()?);
    let shutdown = shutdown_signal();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (stream, _) = match accepted {
                    Ok(a) => a,
                    // Out of file descriptors and the like: keep serving.
                    Err(_) => continue,
                };
                let _ = stream.set_nodelay(true);
                let conn = http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service_fn(handle));
                tokio::spawn(async move {
                    // A client that goes away mid-request is not our error.
                    let _ = conn.await;
                });
            }
            _ = &mut shutdown => break,
        }
    }
    // Open connections are dropped with the runtime: this server holds no
    // state a client could lose, and a bench run has ended by then.
    Ok(())
}

fn main() -> ExitCode {
    let addr = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(serve(addr)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {addr}: {e}");
            ExitCode::FAILURE
        }
    }
}
