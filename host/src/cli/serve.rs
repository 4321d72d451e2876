//! `tessera serve`: the HTTP server on a graph file or model files.

use std::{path::PathBuf, sync::Arc};

use tessera_host::{
    Registry,
    serve::{Options, Server, Source},
};

use super::{
    ServeArgs,
    commands::{Env, UsageError},
};

/// `NAME=FILE` of `--model`.
fn named_model(s: &str) -> anyhow::Result<(String, PathBuf)> {
    match s.split_once('=') {
        Some((name, file)) if !name.is_empty() && !file.is_empty() && !name.contains('/') => {
            Ok((name.to_string(), PathBuf::from(file)))
        }
        _ => Err(UsageError(format!(
            "--model `{s}`: expected NAME=FILE (a name without `/`, then the model file)"
        ))
        .into()),
    }
}

fn init_logs(json: bool) {
    let level = std::env::var("TESSERA_LOG")
        .ok()
        .and_then(|l| l.parse::<tracing::level_filters::LevelFilter>().ok())
        .unwrap_or(tracing::level_filters::LevelFilter::INFO);
    let b = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_max_level(level)
        .with_target(false)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    // Another subscriber already set (embedding) is kept.
    let _ = if json {
        b.json().try_init()
    } else {
        b.try_init()
    };
}

pub fn serve(env: &Env, a: ServeArgs) -> anyhow::Result<()> {
    init_logs(a.log_format == "json");
    let source = match (&a.config, a.model.is_empty(), a.node.is_empty()) {
        (Some(c), true, true) => Source::Graph(c.clone()),
        (Some(c), true, false) => Source::Nodes(c.clone(), a.node.clone()),
        (None, false, true) => Source::Models(
            a.model
                .iter()
                .map(|m| named_model(m))
                .collect::<anyhow::Result<_>>()?,
        ),
        (None, _, false) => {
            return Err(UsageError("--node needs the graph file it names nodes of".into()).into());
        }
        (Some(_), false, _) => {
            return Err(
                UsageError("give a graph file or --model NAME=FILE, not both".into()).into(),
            );
        }
        (None, true, true) => {
            return Err(UsageError(
                "nothing to serve: give a graph file (tessera serve deploy.toml) or --model NAME=FILE"
                    .into(),
            )
            .into());
        }
    };
    let mut settings = match &source {
        Source::Graph(path) | Source::Nodes(path, _) => tessera_host::serve::settings_of(path)?,
        Source::Models(_) => tessera_host::serve::Settings::default(),
    };
    let mut registry: Registry = env.registry()?;
    if !settings.plugins.is_empty() {
        registry.load_paths(&settings.plugins)?;
    }
    // Plugins are never unloaded: the registry lives as long as the process.
    let registry: &'static Registry = Box::leak(Box::new(registry));
    if let Some(l) = &a.listen {
        settings.listen = Some(l.clone());
    }
    let listen = settings
        .listen
        .clone()
        .unwrap_or_else(|| "127.0.0.1:8000".to_string());
    let addr: std::net::SocketAddr = listen.parse().map_err(|_| {
        UsageError(format!(
            "--listen `{listen}` is not an address such as 127.0.0.1:8000"
        ))
    })?;
    if a.threads == Some(0) {
        return Err(UsageError("--threads must be at least 1".into()).into());
    }
    let options = Options {
        settings: Some(settings),
        admin_token: std::env::var("TESSERA_ADMIN_TOKEN")
            .ok()
            .filter(|t| !t.is_empty()),
        threads: a.threads,
        worker_program: None,
    };
    let started = std::time::Instant::now();
    let server = Server::new(registry, source, options)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("serve")
        .build()?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|e| anyhow::anyhow!("cannot listen on {addr}: {e}"))?;
        let local = listener.local_addr()?;
        let names: Vec<String> = server.deployment().endpoints().keys().cloned().collect();
        tracing::info!(models = ?names, load_ms = started.elapsed().as_millis() as u64, "loaded");
        // The signal handlers go in before the ready line: whoever waits
        // for it may signal at once.
        let shutdown = shutdown_signal();
        watch_reload_signal(&server);
        eprintln!("listening on http://{local}");
        server.run(listener, shutdown).await?;
        tracing::info!("stopped");
        Ok::<(), anyhow::Error>(())
    })?;
    // Batch threads end with their queues; nothing else needs joining.
    drop(runtime);
    Ok(())
}

/// SIGTERM or SIGINT. The handlers are installed by this call, not when
/// the future is first polled.
fn shutdown_signal() -> impl std::future::Future<Output = ()> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let term = signal(SignalKind::terminate()).ok();
        let int = signal(SignalKind::interrupt()).ok();
        async move {
            let int = async move {
                match int {
                    Some(mut int) => {
                        int.recv().await;
                    }
                    None => {
                        let _ = tokio::signal::ctrl_c().await;
                    }
                }
            };
            match term {
                Some(mut term) => {
                    tokio::select! {
                        _ = term.recv() => {}
                        () = int => {}
                    }
                }
                None => int.await,
            }
        }
    }
    #[cfg(not(unix))]
    async {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// SIGHUP reloads the deployment.
fn watch_reload_signal(server: &Arc<Server>) {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let Ok(mut hup) = signal(SignalKind::hangup()) else {
            tracing::warn!("SIGHUP cannot be watched; reload through the admin route only");
            return;
        };
        let server = server.clone();
        tokio::spawn(async move {
            while hup.recv().await.is_some() {
                tracing::info!("SIGHUP: reloading");
                let s = server.clone();
                // Errors are logged by reload itself.
                let _ = tokio::task::spawn_blocking(move || s.reload()).await;
            }
        });
    }
    #[cfg(not(unix))]
    let _ = server;
}
