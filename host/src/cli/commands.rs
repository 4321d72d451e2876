//! The subcommands.

use std::{
    fmt::Write as _,
    path::{Path, PathBuf},
    sync::Arc,
    time::Instant,
};

use anyhow::Context;
use serde_json::{Value, json};
use tessera_host::{
    CallError, LoadedModel, Registry, RunContext, Table,
    artifact::{Artifact, write_atomic},
    import,
    metrics::Metrics,
    params::ParamSet,
    plugin::default_plugin_paths,
    train::{TrainSpec, train as train_model},
};

use super::{
    DecomposeArgs, EvalArgs, ImportArgs, InspectArgs, Library, MergeArgs, PredictArgs, TrainArgs,
    progress::Bar,
};

/// A mistake in how the command was called.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

/// What every command shares: where plugins come from.
pub struct Env {
    plugin_paths: Vec<PathBuf>,
    explicit: bool,
    pub(super) verbose: bool,
}

impl Env {
    pub fn new(plugins: Vec<PathBuf>, verbose: bool) -> Self {
        // Paths the user named must exist; the default folder may not.
        let explicit = !plugins.is_empty() || std::env::var_os("TESSERA_PLUGINS").is_some();
        Self {
            plugin_paths: if plugins.is_empty() {
                default_plugin_paths()
            } else {
                plugins
            },
            explicit,
            verbose,
        }
    }

    pub(super) fn registry(&self) -> anyhow::Result<Registry> {
        let mut r = Registry::new();
        for p in &self.plugin_paths {
            if !self.explicit && !p.exists() {
                continue;
            }
            r.load_paths(std::slice::from_ref(p))?;
        }
        for s in r.skipped() {
            eprintln!("warning: skipped {}: {}", s.path.display(), s.error);
        }
        Ok(r)
    }
}

pub(super) fn threads(n: Option<usize>) -> anyhow::Result<usize> {
    match n {
        Some(0) => Err(UsageError("--threads must be at least 1".into()).into()),
        Some(n) => Ok(n),
        None => Ok(std::thread::available_parallelism().map_or(1, |n| n.get())),
    }
}

pub(super) fn write_json(path: &Path, v: &Value) -> anyhow::Result<()> {
    let mut text = serde_json::to_string_pretty(v)?;
    text.push('\n');
    write_atomic(path, text.as_bytes()).with_context(|| format!("cannot write {}", path.display()))
}

pub fn plugins(env: &Env, as_json: bool) -> anyhow::Result<()> {
    let r = env.registry()?;
    if as_json {
        let list: Vec<Value> = r
            .plugins()
            .iter()
            .map(|p| {
                let comps: Vec<Value> = p
                    .manifest
                    .components
                    .iter()
                    .map(|c| {
                        json!({
                            "kind": c.kind.name(),
                            "name": c.name.as_str(),
                            "description": c.description.as_str(),
                            "params": c.params.iter().map(|p| json!({
                                "name": p.name.as_str(),
                                "type": p.ty.as_str(),
                                "default": serde_json::from_str::<Value>(&p.default).unwrap_or(Value::Null),
                                "doc": p.doc.as_str(),
                            })).collect::<Vec<_>>(),
                        })
                    })
                    .collect();
                json!({
                    "name": p.manifest.name.as_str(),
                    "version": p.manifest.version.as_str(),
                    "abi_version": p.manifest.abi_version.as_str(),
                    "path": p.path.display().to_string(),
                    "components": comps,
                })
            })
            .collect();
        let skipped: Vec<Value> = r
            .skipped()
            .iter()
            .map(|s| json!({"path": s.path.display().to_string(), "error": s.error.to_string()}))
            .collect();
        outln!(
            "{}",
            serde_json::to_string_pretty(&json!({"plugins": list, "skipped": skipped}))?
        );
        return Ok(());
    }
    if r.plugins().is_empty() {
        let where_: Vec<String> = env
            .plugin_paths
            .iter()
            .map(|p| p.display().to_string())
            .collect();
        outln!("no plugins found in {}", where_.join(", "));
        return Ok(());
    }
    let mut out = String::new();
    for p in r.plugins() {
        let _ = writeln!(
            out,
            "{} {} (abi {}) — {}",
            p.manifest.name,
            p.manifest.version,
            p.manifest.abi_version,
            p.path.display()
        );
        for c in p.manifest.components.iter() {
            let _ = writeln!(out, "  {} {}: {}", c.kind.name(), c.name, c.description);
            for prm in c.params.iter() {
                let _ = writeln!(
                    out,
                    "      {} = {}  ({}) {}",
                    prm.name, prm.default, prm.ty, prm.doc
                );
            }
        }
    }
    out!("{out}");
    Ok(())
}

pub fn train(env: &Env, a: TrainArgs) -> anyhow::Result<()> {
    let threads = threads(a.threads)?;
    let registry = env.registry()?;
    let mut params = ParamSet::new();
    if let Some(c) = &a.config {
        params.merge_toml_file(c)?;
    }
    for s in &a.set {
        params.set(s)?;
    }
    if let Some(seed) = a.seed {
        params.insert("random_state", Value::from(seed));
    }
    if let Some(shard) = a.shard {
        params.insert(tessera_core::shard::PARAM, shard.to_json());
    }
    let load_start = Instant::now();
    let table = Table::read(&a.data)?;
    let valid = a.valid.as_deref().map(Table::read).transpose()?;
    let load_seconds = load_start.elapsed().as_secs_f64();

    let bar = Arc::new(Bar::new(&format!("training {}", a.learner)));
    let mut ctx = RunContext::new(&registry, threads).verbose(env.verbose);
    if bar.is_some() {
        let b = Arc::clone(&bar);
        ctx = ctx.with_progress(Box::new(move |d, t| {
            if let Some(b) = b.as_ref() {
                b.update(d, t);
            }
        }));
    }
    cancel_on_interrupt(ctx.cancel_flag());
    let spec = TrainSpec {
        learner: &a.learner,
        params: params.to_json(),
        targets: &a.target,
        task: a.task.into(),
        weight: a.weight.as_deref(),
        valid: valid.as_ref(),
    };
    let trained = train_model(&registry, &ctx, &table, &spec)?;
    drop(ctx);
    drop(bar);

    let h = &trained.model.header;
    let metrics = match &valid {
        Some(v) => Some(
            trained
                .model
                .evaluate(RunContext::new(&registry, threads).as_abi(), v, &a.target)
                .with_context(|| {
                    format!("cannot score the validation data {}", v.path().display())
                })?,
        ),
        None => None,
    };
    let model_bytes = trained.artifact.write(&a.out)?;

    let task = if h.classes.is_empty() && h.targets.len() > 1 {
        format!("regression, {} targets", h.targets.len())
    } else if h.classes.is_empty() {
        "regression".to_string()
    } else {
        format!("classification, {} classes", h.classes.len())
    };
    let shard = tessera_host::shard::Record::of(h);
    let what = match &shard {
        Some(r) => format!(
            "{} shard {} (estimators {}..{} of {})",
            a.learner,
            r.shard(),
            r.estimators[0],
            r.estimators[1],
            r.n_estimators
        ),
        None => a.learner.clone(),
    };
    eprintln!(
        "trained {what} on {} rows x {} features ({task}) in {:.3} s -> {}",
        table.n_rows(),
        h.features.len(),
        trained.fit_seconds,
        a.out.display()
    );
    if let Some(m) = &metrics {
        eprintln!(
            "validation ({}): {}",
            a.valid.as_ref().expect("valid").display(),
            metrics_line(m)
        );
    }
    if let Some(path) = &a.report {
        let mut report = json!({
            "learner": a.learner,
            "params": params.to_json(),
            "data": a.data.display().to_string(),
            "n_rows": table.n_rows(),
            "n_features": h.features.len(),
            "task": h.task,
            "classes": h.classes,
            "threads": threads,
            "load_seconds": load_seconds,
            "fit_seconds": trained.fit_seconds,
            "model": a.out.display().to_string(),
            "model_bytes": model_bytes,
            "summary": serde_json::from_str::<Value>(&trained.model.model.describe()).unwrap_or(Value::Null),
        });
        if let Some(r) = &shard {
            report["shard"] = serde_json::to_value(r)?;
        }
        if let Some(m) = &metrics {
            report["valid"] = json!(a.valid.as_ref().map(|p| p.display().to_string()));
            report["metrics"] = serde_json::to_value(m)?;
        }
        write_json(path, &report)?;
    }
    Ok(())
}

/// The first Ctrl-C asks the learner to stop (it returns at its next check
/// and nothing is written); a second one ends the process at once.
fn cancel_on_interrupt(flag: Arc<std::sync::atomic::AtomicBool>) {
    use std::sync::atomic::Ordering;
    let _ = ctrlc::set_handler(move || {
        if flag.swap(true, Ordering::SeqCst) {
            std::process::exit(130);
        }
        eprintln!("\ninterrupted: stopping after the current step (Ctrl-C again to quit now)");
    });
}

fn metrics_line(m: &Metrics) -> String {
    match m {
        Metrics::Classification(c) => {
            let mut s = format!("accuracy {:.4}, log_loss {:.4}", c.accuracy, c.log_loss);
            if let Some(auc) = c.roc_auc {
                let _ = write!(s, ", roc_auc {auc:.4}");
            }
            s
        }
        Metrics::Regression(r) => format!("rmse {:.4}, mae {:.4}, r2 {:.4}", r.rmse, r.mae, r.r2),
    }
}

pub fn predict(env: &Env, a: PredictArgs) -> anyhow::Result<()> {
    let threads = threads(a.threads)?;
    let registry = env.registry()?;
    if let (Some(g), Some(o)) = (&a.graph, &a.output) {
        return predict_graph(&registry, &a, g, o, threads);
    }
    let model_path = a
        .model
        .as_deref()
        .expect("clap requires --model without --graph");
    let load_start = Instant::now();
    let model = LoadedModel::open(&registry, model_path)?;
    if a.proba && !model.is_classifier() {
        return Err(UsageError(format!(
            "--proba needs a classifier, and {} is a regression model",
            model_path.display()
        ))
        .into());
    }
    let table = Table::read(&a.data)?;
    let x = model.features_from(&table)?;
    let load_seconds = load_start.elapsed().as_secs_f64();

    let ctx = RunContext::new(&registry, threads).verbose(env.verbose);
    let start = Instant::now();
    let on = |e: CallError| e.on(&a.data);
    let pred = model.predict(ctx.as_abi(), &x).map_err(on)?;
    let proba = if a.proba {
        Some(model.predict_proba(ctx.as_abi(), &x).map_err(on)?)
    } else {
        None
    };
    let predict_seconds = start.elapsed().as_secs_f64();

    let mut csv = String::with_capacity(pred.len() * 8);
    // One value per row, or one per target of a multi-output regression
    // (`prediction_<target>` columns).
    let targets = model.header.target_names();
    let per_row = model.values_per_row();
    if per_row == 1 {
        csv.push_str("prediction");
    } else {
        let cols: Vec<String> = targets
            .iter()
            .map(|t| csv_field(&format!("prediction_{t}")))
            .collect();
        csv.push_str(&cols.join(","));
    }
    if proba.is_some() {
        for c in &model.header.classes {
            let _ = write!(csv, ",{}", csv_field(&format!("proba_{c}")));
        }
    }
    csv.push('\n');
    let k = model.header.classes.len();
    for (i, row) in pred.chunks(per_row).enumerate() {
        let cells: Vec<String> = row.iter().map(|&p| csv_field(&model.label(p))).collect();
        csv.push_str(&cells.join(","));
        if let Some(pr) = &proba {
            for v in &pr.data[i * k..(i + 1) * k] {
                let _ = write!(csv, ",{v}");
            }
        }
        csv.push('\n');
    }
    match &a.out {
        Some(path) => write_atomic(path, csv.as_bytes())
            .with_context(|| format!("cannot write {}", path.display()))?,
        None => {
            use std::io::Write;
            let mut out = std::io::stdout().lock();
            // A closed pipe (`| head`) is not an error worth reporting.
            let _ = out.write_all(csv.as_bytes());
        }
    }
    if let Some(path) = &a.report {
        write_json(
            path,
            &json!({
                "model": model_path.display().to_string(),
                "data": a.data.display().to_string(),
                "n_rows": table.n_rows(),
                "n_features": model.header.features.len(),
                "threads": threads,
                "load_seconds": load_seconds,
                "predict_seconds": predict_seconds,
            }),
        )?;
    }
    Ok(())
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

pub fn eval(env: &Env, a: EvalArgs) -> anyhow::Result<()> {
    let threads = threads(a.threads)?;
    let registry = env.registry()?;
    let model = LoadedModel::open(&registry, &a.model)?;
    let table = Table::read(&a.data)?;
    let ctx = RunContext::new(&registry, threads).verbose(env.verbose);
    let m = model.evaluate(ctx.as_abi(), &table, &a.target)?;
    if a.json {
        outln!("{}", serde_json::to_string(&m)?);
    } else {
        match &m {
            Metrics::Classification(c) => {
                outln!("rows      {}", c.n_rows);
                outln!("accuracy  {:.4}", c.accuracy);
                outln!("log_loss  {:.4}", c.log_loss);
                if let Some(auc) = c.roc_auc {
                    outln!("roc_auc   {auc:.4}");
                }
            }
            Metrics::Regression(r) => {
                outln!("rows  {}", r.n_rows);
                outln!("rmse  {:.4}", r.rmse);
                outln!("mae   {:.4}", r.mae);
                outln!("r2    {:.4}", r.r2);
            }
        }
    }
    Ok(())
}

pub fn inspect(env: &Env, a: InspectArgs) -> anyhow::Result<()> {
    let artifact = Artifact::read(&a.model)?;
    let file_bytes = std::fs::metadata(&a.model).map(|m| m.len()).unwrap_or(0);
    // The header is readable without the plugin; the summary needs it.
    let summary = env
        .registry()
        .and_then(|r| LoadedModel::from_artifact(&r, artifact.clone()))
        .map(|m| serde_json::from_str::<Value>(&m.model.describe()).unwrap_or(Value::Null));
    let h = &artifact.header;
    if a.json {
        let mut v = json!({
            "file": a.model.display().to_string(),
            "file_bytes": file_bytes,
            "format_version": tessera_host::artifact::FORMAT_VERSION,
            "header": h,
        });
        match summary {
            Ok(s) => v["summary"] = s,
            Err(e) => {
                v["summary"] = Value::Null;
                v["summary_error"] = json!(format!("{e:#}"));
            }
        }
        outln!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(());
    }
    outln!("file        {} ({file_bytes} bytes)", a.model.display());
    outln!(
        "format      tessera model v{}",
        tessera_host::artifact::FORMAT_VERSION
    );
    outln!(
        "learner     {} (plugin {} {}, abi {})",
        h.component,
        h.plugin,
        h.plugin_version,
        h.abi_version
    );
    outln!("task        {}", h.task);
    if !h.classes.is_empty() {
        outln!("classes     {}", h.classes.join(", "));
    }
    outln!("target      {}", h.target_names().join(", "));
    outln!(
        "features    {} ({})",
        h.features.len(),
        abbreviate(&h.features, 8)
    );
    outln!(
        "payload     {} bytes, crc32 {:08x}",
        h.payload_len,
        h.payload_crc32
    );
    outln!("training    {}", h.training);
    match summary {
        Ok(s) => out!("{}", super::summary::render(&s)),
        Err(e) => outln!("summary     unavailable: {e:#}"),
    }
    Ok(())
}

fn abbreviate(names: &[String], n: usize) -> String {
    let mut s = names.iter().take(n).cloned().collect::<Vec<_>>().join(", ");
    if names.len() > n {
        let _ = write!(s, ", … {} more", names.len() - n);
    }
    s
}

pub fn import(env: &Env, a: ImportArgs) -> anyhow::Result<()> {
    let start = Instant::now();
    let text = std::fs::read_to_string(&a.model)
        .map_err(|e| UsageError(format!("cannot read {}: {e}", a.model.display())))?;
    let (library, title, parsed) = match a.from {
        Library::Lightgbm => ("lightgbm", "a LightGBM", import::lightgbm(&text)),
        Library::Xgboost => ("xgboost", "an XGBoost", import::xgboost(&text)),
    };
    let imported =
        parsed.with_context(|| format!("cannot import {} as {title} model", a.model.display()))?;
    let (n_trees, objective) = (imported.ensemble.trees.len(), imported.objective.clone());
    let registry = env.registry()?;
    let origin = import::Origin {
        library,
        source: &a.model,
        target: &a.target,
        classes: a.classes,
    };
    let artifact = import::artifact(&registry, imported, &origin).map_err(|e| {
        // The only import error left at this point is about --classes.
        if e.is::<import::ImportError>() {
            e.context(format!("--classes does not fit {}", a.model.display()))
        } else {
            e
        }
    })?;
    // Loading it back through its plugin is the last check before writing.
    let loaded = LoadedModel::from_artifact(&registry, artifact.clone())
        .context("the imported model does not load")?;
    let bytes = artifact.write(&a.out)?;
    let seconds = start.elapsed().as_secs_f64();
    let h = &loaded.header;
    if a.json {
        outln!(
            "{}",
            json!({
                "out": a.out.display().to_string(),
                "from": library,
                "objective": objective,
                "n_trees": n_trees,
                "n_features": h.features.len(),
                "task": h.task,
                "classes": h.classes,
                "bytes": bytes,
                "seconds": seconds,
            })
        );
    } else {
        outln!(
            "imported {library} model {} ({objective}, {n_trees} trees, {} features) in {seconds:.3} s -> {} ({bytes} bytes)",
            a.model.display(),
            h.features.len(),
            a.out.display()
        );
    }
    Ok(())
}

pub fn merge(env: &Env, a: MergeArgs) -> anyhow::Result<()> {
    let start = Instant::now();
    let registry = env.registry()?;
    let merged = tessera_host::shard::merge(&registry, &a.parts)?;
    let bytes = merged.artifact.write(&a.out)?;
    let seconds = start.elapsed().as_secs_f64();
    let h = &merged.artifact.header;
    if a.json {
        outln!(
            "{}",
            json!({
                "out": a.out.display().to_string(),
                "learner": h.component,
                "shards": merged.shards,
                "n_estimators": merged.n_estimators,
                "parts": h.training["merged_from"],
                "bytes": bytes,
                "seconds": seconds,
            })
        );
    } else {
        outln!(
            "merged {} shards of {} ({} estimators) in {seconds:.3} s -> {} ({bytes} bytes)",
            merged.shards,
            h.component,
            merged.n_estimators,
            a.out.display()
        );
    }
    Ok(())
}

/// Largest differences between the recombined answer and the whole
/// model's: absolute, and relative to the whole model's value (values
/// below 1e-6 in size count as 1e-6).
fn differences(whole: &[f64], parts: &[f64]) -> (f64, f64) {
    whole
        .iter()
        .zip(parts)
        .fold((0.0f64, 0.0f64), |(abs, rel), (w, p)| {
            let d = (w - p).abs();
            (abs.max(d), rel.max(d / w.abs().max(1e-6)))
        })
}

pub fn decompose(env: &Env, a: DecomposeArgs) -> anyhow::Result<()> {
    use tessera_host::decompose;
    let start = Instant::now();
    let threads = threads(a.threads)?;
    let registry = env.registry()?;
    let model = LoadedModel::open(&registry, &a.model)?;
    let mut params = ParamSet::new();
    if let Some(c) = &a.config {
        params.merge_toml_file(c)?;
    }
    for s in &a.set {
        params.set(s)?;
    }
    let ctx = RunContext::new(&registry, threads).verbose(env.verbose);
    let parts = decompose::decompose(
        &registry,
        ctx.as_abi(),
        &model,
        &a.model,
        &a.with,
        &params.to_json(),
    )?;
    std::fs::create_dir_all(&a.out)
        .with_context(|| format!("cannot create the folder {}", a.out.display()))?;
    let mut files = Vec::new();
    for p in &parts.parts {
        let path = a.out.join(format!("{}.tsr", p.name));
        let bytes = p.artifact.write(&path)?;
        files.push(json!({"part": p.name, "role": p.role, "file": path.display().to_string(), "bytes": bytes}));
    }
    let id: String = a
        .model
        .file_stem()
        .map(|s| s.to_string_lossy().to_string())
        .unwrap_or_else(|| "model".into())
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    let graph = a.out.join("graph.toml");
    write_atomic(
        &graph,
        parts.fragment(&id, &model.header.features).as_bytes(),
    )
    .with_context(|| format!("cannot write {}", graph.display()))?;
    let check = match &a.check {
        Some(path) => {
            let table = Table::read(path)?;
            let x = model.features_from(&table)?;
            let on = |e: CallError| e.on(path);
            let whole = decompose::whole_answer(&model, ctx.as_abi(), &x).map_err(on)?;
            let loaded = parts.load(&registry)?;
            let joined = parts
                .answer(&loaded, ctx.as_abi(), &x, table.n_rows())
                .with_context(|| format!("the parts fail on {}", path.display()))?;
            let (abs, rel) = differences(&whole, &joined);
            Some(
                json!({"data": path.display().to_string(), "rows": table.n_rows(),
                        "max_abs_diff": abs, "max_rel_diff": rel}),
            )
        }
        None => None,
    };
    let seconds = start.elapsed().as_secs_f64();
    if a.json {
        outln!(
            "{}",
            json!({"model": a.model.display().to_string(), "with": a.with, "parts": files,
                   "graph": graph.display().to_string(), "check": check, "seconds": seconds})
        );
    } else {
        outln!(
            "decomposed {} with {} into {} parts in {seconds:.3} s -> {}",
            a.model.display(),
            a.with,
            parts.parts.len(),
            a.out.display()
        );
        for f in &files {
            outln!(
                "  {:<12} {:<22} {} bytes",
                f["part"].as_str().unwrap_or(""),
                f["role"].as_str().unwrap_or(""),
                f["bytes"]
            );
        }
        outln!("  graph fragment: {}", graph.display());
        if let Some(c) = &check {
            outln!(
                "check on {} ({} rows): largest difference {:e} (relative {:e})",
                c["data"].as_str().unwrap_or(""),
                c["rows"],
                c["max_abs_diff"].as_f64().unwrap_or(f64::NAN),
                c["max_rel_diff"].as_f64().unwrap_or(f64::NAN)
            );
        }
    }
    Ok(())
}

/// `predict --graph`: the graph's one input filled from the CSV columns
/// (by the input's `names`, else the first columns in order).
fn predict_graph(
    registry: &Registry,
    a: &PredictArgs,
    config: &Path,
    output: &str,
    threads: usize,
) -> anyhow::Result<()> {
    use tessera_host::graph::Graph;
    let load_start = Instant::now();
    let graph = Graph::from_file(registry, config)?;
    let table = Table::read(&a.data)?;
    let input = match graph.config().inputs.as_slice() {
        [one] => one,
        many => {
            return Err(UsageError(format!(
                "{}: predict --graph feeds one input, and the graph has {}",
                config.display(),
                many.len()
            ))
            .into());
        }
    };
    let names = input
        .names
        .clone()
        .unwrap_or_else(|| table.columns().iter().take(input.width).cloned().collect());
    let x = table.features(&names)?;
    let load_seconds = load_start.elapsed().as_secs_f64();
    let start = Instant::now();
    let id = a
        .request_id
        .clone()
        .unwrap_or_else(|| a.data.display().to_string());
    let answer = graph.predict_request(output, &x, threads, &id)?;
    for n in &answer.notes {
        eprintln!("warning: {n}");
    }
    let predict_seconds = start.elapsed().as_secs_f64();
    let mut csv = String::with_capacity(answer.values.len() * 8);
    match answer.labels() {
        Some(labels) => {
            csv.push_str("prediction");
            if a.proba {
                for c in &answer.classes {
                    let _ = write!(csv, ",{}", csv_field(&format!("proba_{c}")));
                }
            }
            csv.push('\n');
            for (i, l) in labels.iter().enumerate() {
                csv.push_str(&csv_field(l));
                if a.proba {
                    for v in &answer.values[i * answer.width..(i + 1) * answer.width] {
                        let _ = write!(csv, ",{}", *v as f32);
                    }
                }
                csv.push('\n');
            }
        }
        None => {
            if a.proba {
                return Err(UsageError(format!(
                    "--proba needs a classifier, and output `{output}` answers values"
                ))
                .into());
            }
            csv.push_str(if answer.width == 1 { "prediction" } else { "" });
            if answer.width > 1 {
                let cols: Vec<String> = (0..answer.width)
                    .map(|j| format!("prediction_{j}"))
                    .collect();
                csv.push_str(&cols.join(","));
            }
            csv.push('\n');
            for row in answer.values.chunks_exact(answer.width.max(1)) {
                let cells: Vec<String> = row.iter().map(|v| format!("{}", *v as f32)).collect();
                csv.push_str(&cells.join(","));
                csv.push('\n');
            }
        }
    }
    match &a.out {
        Some(path) => write_atomic(path, csv.as_bytes())
            .with_context(|| format!("cannot write {}", path.display()))?,
        None => {
            use std::io::Write;
            let _ = std::io::stdout().lock().write_all(csv.as_bytes());
        }
    }
    if let Some(path) = &a.report {
        write_json(
            path,
            &json!({"graph": config.display().to_string(), "output": output,
                    "data": a.data.display().to_string(), "n_rows": answer.rows,
                    "threads": threads, "load_seconds": load_seconds,
                    "predict_seconds": predict_seconds, "notes": answer.notes}),
        )?;
    }
    Ok(())
}

pub fn graph_check(env: &Env, config: &Path) -> anyhow::Result<()> {
    let registry = env.registry()?;
    let graph = tessera_host::graph::Graph::from_file(&registry, config)?;
    let c = graph.config();
    outln!(
        "{}: ok: {} input(s), {} node(s), outputs: {}",
        config.display(),
        c.inputs.len(),
        c.nodes.len(),
        graph.outputs().join(", ")
    );
    Ok(())
}

pub fn graph_show(env: &Env, config: &Path, svg: Option<&Path>) -> anyhow::Result<()> {
    let registry = env.registry()?;
    let graph = tessera_host::graph::Graph::from_file(&registry, config)?;
    let dot = graph.dot();
    match svg {
        None => out!("{dot}"),
        Some(path) => {
            use std::io::Write;
            let mut child = std::process::Command::new("dot")
                .args(["-Tsvg", "-o"])
                .arg(path)
                .stdin(std::process::Stdio::piped())
                .spawn()
                .map_err(|e| UsageError(format!("cannot run Graphviz's `dot` for --svg: {e}; install graphviz, or leave out --svg for DOT text")))?;
            child
                .stdin
                .take()
                .expect("piped stdin")
                .write_all(dot.as_bytes())?;
            let status = child.wait()?;
            if !status.success() {
                anyhow::bail!("`dot` failed ({status}) rendering {}", path.display());
            }
            outln!("{}", path.display());
        }
    }
    Ok(())
}

pub fn worker(env: &Env, model: &Path) -> anyhow::Result<()> {
    let registry = env.registry()?;
    let loaded = LoadedModel::open(&registry, model);
    tessera_host::graph::worker::serve(&registry, loaded, std::io::stdin(), std::io::stdout())
}
