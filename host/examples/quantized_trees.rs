//! Quantized trees against the `f32` engine on one model and one data
//! file: file size, batch speed, and how far the answers move.
//!
//! ```sh
//! cargo run --release -p tessera-host --example quantized_trees -- \
//!     --plugins target/release --model M.tsr --data F.csv --target COL \
//!     [--bits 8] [--leaves f16] [--inference auto|bins|engine] [--threads 1,2] [--runs 7]
//! ```
//!
//! Loads the model through the plugin registry and takes its exchange form
//! (`to_ir`), quantizes it (`tessera_qtrees`), and compiles it for
//! `tessera_engine::Engine`. Then, for each thread count, it times the
//! raw batch prediction of the whole file by both, interleaved run by run
//! (which one goes first alternates), and keeps each one's median; it prints rows per second and their ratio,
//! the largest difference of raw scores, the ROC AUC of both (binary
//! classifiers), and the sizes: the model file, the quantized bytes, and
//! a model file holding them (the original header, the quantized
//! payload). One JSON object on stdout.

use std::{hint::black_box, path::PathBuf, process::ExitCode, time::Instant};

use anyhow::{Context, bail};
use serde_json::json;
use tessera_core::{MatrixRef, ir::ModelIr, plugin::ModelImpl};
use tessera_engine::Engine;
use tessera_host::{Artifact, LoadedModel, Registry, RunContext, Table, metrics::roc_auc};
use tessera_qtrees::{FAMILY, Inference, LeafFormat, Options, QuantizedModel, QuantizedTrees};

const USAGE: &str = "usage: quantized_trees --plugins DIR_OR_FILE --model MODEL.tsr --data FILE.csv \
--target COL [--bits 8|16] [--leaves f32|f16|i16|i8] [--inference auto|bins|engine] [--threads 1,2] [--runs N]";

struct Args {
    plugins: Vec<PathBuf>,
    model: PathBuf,
    data: PathBuf,
    target: String,
    bits: u32,
    leaves: LeafFormat,
    inference: Inference,
    threads: Vec<usize>,
    runs: usize,
}

fn parse_args() -> anyhow::Result<Args> {
    let mut a = Args {
        plugins: Vec::new(),
        model: PathBuf::new(),
        data: PathBuf::new(),
        target: String::new(),
        bits: 8,
        leaves: LeafFormat::F16,
        inference: Inference::Auto,
        threads: vec![1, 2],
        runs: 7,
    };
    let mut it = std::env::args().skip(1);
    while let Some(key) = it.next() {
        if key == "--help" || key == "-h" {
            println!("{USAGE}");
            std::process::exit(0);
        }
        let value = it.next().with_context(|| format!("{key} needs a value"))?;
        match key.as_str() {
            "--plugins" => a.plugins.push(value.into()),
            "--model" => a.model = value.into(),
            "--data" => a.data = value.into(),
            "--target" => a.target = value,
            "--bits" => a.bits = value.parse().context("--bits takes 8 or 16")?,
            "--leaves" => a.leaves = LeafFormat::parse(&value)?,
            "--inference" => {
                a.inference = match value.as_str() {
                    "auto" => Inference::Auto,
                    "bins" => Inference::Bins,
                    "engine" => Inference::Engine,
                    _ => bail!("--inference takes auto, bins or engine, not `{value}`"),
                }
            }
            "--threads" => {
                a.threads = (value.split(','))
                    .map(|t| t.parse::<usize>().map(|t| t.max(1)))
                    .collect::<Result<_, _>>()
                    .context("--threads takes whole numbers separated by commas")?;
            }
            "--runs" => {
                a.runs = value
                    .parse::<usize>()
                    .context("--runs takes a number")?
                    .max(1)
            }
            other => bail!("unknown argument `{other}`"),
        }
    }
    if a.plugins.is_empty() || a.model.as_os_str().is_empty() || a.data.as_os_str().is_empty() {
        bail!("--plugins, --model and --data are required");
    }
    if a.target.is_empty() {
        bail!("--target is required");
    }
    Ok(a)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

fn run(a: &Args) -> anyhow::Result<serde_json::Value> {
    let mut registry = Registry::new();
    registry.load_paths(&a.plugins)?;
    let model = LoadedModel::open(&registry, &a.model)?;
    let ens = match model.model.to_ir().into_option() {
        Some(ModelIr::Trees(t)) => t,
        _ => bail!("{} is not a tree ensemble", a.model.display()),
    };
    let table = Table::read(&a.data)?;
    let x = model.features_from(&table)?;
    let y = model.targets_from(&table, std::slice::from_ref(&a.target))?;
    let (n, p) = (table.n_rows(), ens.n_features as usize);
    let k = ens.n_outputs as usize;
    let xm = MatrixRef::new(&x, n, p)?;

    let t = Instant::now();
    let q = QuantizedTrees::quantize(
        &ens,
        &Options {
            bits: a.bits,
            leaves: a.leaves,
        },
    )?;
    let quantize_seconds = t.elapsed().as_secs_f64();
    let payload = q.to_bytes()?;
    let summary = q.describe();
    let mut header = model.header.clone();
    header.component = FAMILY.into();
    header.payload_len = payload.len() as u64;
    let as_file = Artifact {
        header,
        payload: payload.clone(),
    }
    .to_bytes()
    .len();
    let file = std::fs::metadata(&a.model)?.len();
    let qm = QuantizedModel::with_inference(q, a.inference)?;
    let inference = qm.describe()["inference"].clone();
    let engine = Engine::new(&ens)?;

    let mut speed = Vec::new();
    let (mut raw_e, mut raw_q) = (Vec::new(), Vec::new());
    for &threads in &a.threads {
        let ctx = RunContext::new(&registry, threads);
        // One untimed call each: pools, page faults, caches.
        raw_e = engine.raw(&ctx.as_abi(), xm)?;
        raw_q = qm.raw(&ctx.as_abi(), xm)?;
        let (mut te, mut tq) = (Vec::new(), Vec::new());
        for run in 0..a.runs {
            // Alternate which goes first, so that neither always finds the
            // other's traces in the caches.
            for second in [false, true] {
                if (run % 2 == 1) != second {
                    let t = Instant::now();
                    black_box(engine.raw(&ctx.as_abi(), black_box(xm))?);
                    te.push(t.elapsed().as_secs_f64());
                } else {
                    let t = Instant::now();
                    black_box(qm.raw(&ctx.as_abi(), black_box(xm))?);
                    tq.push(t.elapsed().as_secs_f64());
                }
            }
        }
        let (me, mq) = (median(te.clone()), median(tq.clone()));
        speed.push(json!({
            "threads": threads,
            "engine_rows_per_second": (n as f64 / me).round(),
            "quantized_rows_per_second": (n as f64 / mq).round(),
            "speedup": ((me / mq) * 1000.0).round() / 1000.0,
            "engine_seconds": te,
            "quantized_seconds": tq,
        }));
    }
    let max_diff = raw_e
        .iter()
        .zip(&raw_q)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0f64, f64::max);
    let auc = |raw: &[f64]| {
        if engine.n_proba() != 2 {
            return None;
        }
        let proba = engine.proba(raw);
        let scores: Vec<f32> = proba.chunks_exact(2).map(|r| r[1]).collect();
        let positive: Vec<bool> = y.iter().map(|&c| c == 1.0).collect();
        roc_auc(&scores, &positive)
    };
    let (auc_e, auc_q) = (auc(&raw_e), auc(&raw_q));
    Ok(json!({
        "model": a.model.display().to_string(),
        "data": a.data.display().to_string(),
        "rows": n,
        "outputs": k,
        "trees": ens.trees.len(),
        "bits": a.bits,
        "leaves": a.leaves.name(),
        "inference": inference,
        "quantize_seconds": quantize_seconds,
        "bytes": {
            "model_file": file,
            "quantized_payload": payload.len(),
            "quantized_file": as_file,
            "ratio": ((file as f64 / as_file as f64) * 100.0).round() / 100.0,
        },
        "speed": speed,
        "max_abs_raw_difference": max_diff,
        "auc": {
            "f32": auc_e,
            "quantized": auc_q,
            "drop": auc_e.zip(auc_q).map(|(e, q)| e - q),
        },
        "summary": summary,
    }))
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("error: {e:#}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    match run(&args) {
        Ok(v) => {
            println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
