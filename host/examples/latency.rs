//! Prediction latency and throughput of a tessera model, measured in-process.
//!
//! ```sh
//! cargo run --release -p tessera-host --example latency -- \
//!     --plugins target/release --model M.tsr --data F.csv [--rows N] [--threads T]
//! ```
//!
//! Loads the plugins, the model and the data once, then measures
//!
//! * single-row latency: `predict` on one row at a time, over the first
//!   `--rows` rows of the file (default 1000), with a thread budget of 1;
//!   median, p99, mean and minimum in microseconds;
//! * batch throughput: `predict` on the whole file with `--threads` threads
//!   (default: all cores), best of 3, in rows per second.
//!
//! CSV parsing and model loading are timed separately and excluded from both
//! figures. The result is printed as one JSON object on stdout.

use std::{
    hint::black_box,
    path::PathBuf,
    process::ExitCode,
    time::{Duration, Instant},
};

use serde_json::json;
use tessera_host::{LoadedModel, Registry, RunContext, Table};

/// Warm-up calls before the single-row measurement (first calls touch cold
/// code and allocate pools).
const WARMUP_CALLS: usize = 20;
/// Repetitions of the batch measurement; the best one is kept.
const BATCH_RUNS: usize = 3;

const USAGE: &str = "usage: latency --plugins DIR_OR_FILE [--plugins ...] --model MODEL.tsr --data FILE.csv [--rows N] [--threads T]";

struct Args {
    plugins: Vec<PathBuf>,
    model: PathBuf,
    data: PathBuf,
    rows: usize,
    threads: usize,
}

fn parse_args() -> Result<Args, String> {
    let mut plugins = Vec::new();
    let mut model = None;
    let mut data = None;
    let mut rows = 1000usize;
    let mut threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        // Accept both `--key value` and `--key=value`.
        let (key, inline) = match arg.split_once('=') {
            Some((k, v)) if k.starts_with("--") => (k.to_string(), Some(v.to_string())),
            _ => (arg.clone(), None),
        };
        if key == "--help" || key == "-h" {
            println!("{USAGE}");
            std::process::exit(0);
        }
        let mut value = || -> Result<String, String> {
            inline
                .clone()
                .or_else(|| it.next())
                .ok_or_else(|| format!("{key} needs a value"))
        };
        match key.as_str() {
            "--plugins" => plugins.push(PathBuf::from(value()?)),
            "--model" => model = Some(PathBuf::from(value()?)),
            "--data" => data = Some(PathBuf::from(value()?)),
            "--rows" => {
                let v = value()?;
                rows = v
                    .parse()
                    .map_err(|_| format!("--rows takes a whole number, not `{v}`"))?;
            }
            "--threads" => {
                let v = value()?;
                threads = match v.parse::<usize>() {
                    Ok(n) if n >= 1 => n,
                    _ => return Err(format!("--threads takes a whole number >= 1, not `{v}`")),
                };
            }
            other => return Err(format!("unknown argument `{other}`")),
        }
    }
    if plugins.is_empty() {
        return Err("--plugins is required".into());
    }
    Ok(Args {
        plugins,
        model: model.ok_or("--model is required")?,
        data: data.ok_or("--data is required")?,
        rows,
        threads,
    })
}

fn micros(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

/// The value at quantile `q` of sorted `v`, by the nearest-rank method
/// (the median of an even count averages the two middle values).
fn quantile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    if q == 0.5 {
        let n = sorted.len();
        return if n % 2 == 1 {
            sorted[n / 2]
        } else {
            (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0
        };
    }
    let rank = (q * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn run(a: &Args) -> anyhow::Result<serde_json::Value> {
    let mut registry = Registry::new();
    registry.load_paths(&a.plugins)?;

    let load_start = Instant::now();
    let model = LoadedModel::open(&registry, &a.model)?;
    let model_seconds = load_start.elapsed().as_secs_f64();
    let data_start = Instant::now();
    let table = Table::read(&a.data)?;
    let x = model.features_from(&table)?;
    let data_seconds = data_start.elapsed().as_secs_f64();
    let n_features = model.header.features.len();
    let n_rows = table.n_rows();
    anyhow::ensure!(n_rows > 0, "{} has no rows", a.data.display());

    // (a) Single-row latency, one thread.
    let single = RunContext::new(&registry, 1);
    let row = |i: usize| &x[i * n_features..(i + 1) * n_features];
    for i in 0..WARMUP_CALLS.min(n_rows) {
        black_box(model.predict(single.as_abi(), row(i))?);
    }
    let measured = a.rows.min(n_rows);
    let mut lat = Vec::with_capacity(measured);
    for i in 0..measured {
        let r = row(i);
        let t = Instant::now();
        let p = model.predict(single.as_abi(), black_box(r))?;
        lat.push(micros(t.elapsed()));
        black_box(p);
    }
    lat.sort_by(f64::total_cmp);
    let mean = if lat.is_empty() {
        f64::NAN
    } else {
        lat.iter().sum::<f64>() / lat.len() as f64
    };

    // (b) Batch throughput, `threads` threads, best of BATCH_RUNS.
    let batch = RunContext::new(&registry, a.threads);
    let mut runs = Vec::with_capacity(BATCH_RUNS);
    for _ in 0..BATCH_RUNS {
        let t = Instant::now();
        let p = model.predict(batch.as_abi(), black_box(&x))?;
        runs.push(t.elapsed().as_secs_f64());
        anyhow::ensure!(
            p.len() == n_rows,
            "predict returned {} values for {n_rows} rows",
            p.len()
        );
        black_box(p);
    }
    let best = runs.iter().copied().fold(f64::INFINITY, f64::min);

    Ok(json!({
        "model": a.model.display().to_string(),
        "data": a.data.display().to_string(),
        "learner": model.header.component,
        "n_rows": n_rows,
        "n_features": n_features,
        "model_load_seconds": model_seconds,
        "data_load_seconds": data_seconds,
        "single_row": {
            "threads": 1,
            "rows": measured,
            "warmup_calls": WARMUP_CALLS.min(n_rows),
            "median_us": quantile(&lat, 0.5),
            "p99_us": quantile(&lat, 0.99),
            "mean_us": mean,
            "min_us": lat.first().copied().unwrap_or(f64::NAN),
            "max_us": lat.last().copied().unwrap_or(f64::NAN),
        },
        "batch": {
            "threads": a.threads,
            "rows": n_rows,
            "runs_seconds": runs,
            "best_seconds": best,
            "rows_per_second": n_rows as f64 / best,
        },
    }))
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("error: {e}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    match run(&args) {
        Ok(v) => {
            println!("{v}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
