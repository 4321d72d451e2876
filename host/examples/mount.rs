//! Mounting tessera's HTTP service inside another hyper application: the
//! application answers its own routes and hands everything under `/v2`
//! (and `/metrics`) to [`Server::handle`], which takes a request of any
//! body type.
//!
//! ```sh
//! cargo build --release
//! ./target/release/tessera train --learner random_forest --data examples/data/iris.train.csv \
//!     --target label --seed 0 --out target/iris.tsr
//! cargo run --release -p tessera-host --example mount -- target/release target/iris.tsr 127.0.0.1:8080
//! curl -s localhost:8080/hello
//! curl -s localhost:8080/v2/models/iris/infer \
//!     -d '{"inputs":[{"name":"input","shape":[1,4],"datatype":"FP32","data":[5.1,3.5,1.4,0.2]}]}'
//! ```

use std::{convert::Infallible, path::PathBuf, process::ExitCode, sync::Arc};

use bytes::Bytes;
use http_body_util::Full;
use hyper::{Request, Response, body::Incoming, server::conn::http1, service::service_fn};
use hyper_util::rt::TokioIo;
use tessera_host::{
    Registry,
    serve::{Options, Server, Source},
};

/// The application's own routes, and tessera's under `/v2` and `/metrics`.
async fn route(tessera: Arc<Server>, req: Request<Incoming>) -> Response<Full<Bytes>> {
    let path = req.uri().path();
    if path.starts_with("/v2") || path == "/metrics" {
        tessera.handle(req).await
    } else if path == "/hello" {
        Response::new(Full::new(Bytes::from_static(
            b"hello from the host application\n",
        )))
    } else {
        let mut r = Response::new(Full::new(Bytes::from_static(b"not found\n")));
        *r.status_mut() = hyper::StatusCode::NOT_FOUND;
        r
    }
}

async fn run(plugins: PathBuf, model: PathBuf, listen: String) -> anyhow::Result<()> {
    let mut registry = Registry::new();
    registry.load_dir(&plugins)?;
    // Plugins are never unloaded: the registry lives as long as the process.
    let registry: &'static Registry = Box::leak(Box::new(registry));
    let tessera = Server::new(
        registry,
        Source::Models(vec![("iris".into(), model)]),
        Options::default(),
    )?;
    let listener = tokio::net::TcpListener::bind(&listen).await?;
    eprintln!("listening on http://{}", listener.local_addr()?);
    loop {
        let (stream, _) = listener.accept().await?;
        let tessera = tessera.clone();
        tokio::spawn(async move {
            let service = service_fn(move |req| {
                let tessera = tessera.clone();
                async move { Ok::<_, Infallible>(route(tessera, req).await) }
            });
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [plugins, model, listen] = args.as_slice() else {
        eprintln!("usage: mount PLUGIN_DIR MODEL.tsr ADDR");
        return ExitCode::from(2);
    };
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(plugins.into(), model.into(), listen.clone())) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
