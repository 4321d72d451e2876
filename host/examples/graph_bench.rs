//! Batch throughput of a model alone, of a graph around it, and of a
//! graph that shards it, measured in-process on the same rows.
//!
//! ```sh
//! cargo run --release -p tessera-host --example graph_bench -- \
//!     --plugins target/release --model M.tsr --data F.csv [--parts 2] [--threads 2] [--runs 5]
//! ```
//!
//! Prints one JSON object: the best of `--runs` timings of
//!
//! * `model_1t`: the model's class probabilities (or values) on one thread;
//! * `graph_1t`: a graph whose one node is that model, on one thread (its
//!   overhead is the difference);
//! * `sharded`: a graph that decomposes the model into `--parts` shards at
//!   load and runs them side by side on `--threads` threads;
//!
//! with rows per second and the ratios the graph issue's targets use. The
//! graph's overhead is also measured in CPU time of the one thread (the
//! sum over the runs), which other work on a shared machine disturbs far
//! less than wall time.

use std::{
    path::{Path, PathBuf},
    process::ExitCode,
    time::Instant,
};

use serde_json::json;
use tessera_host::{
    LoadedModel, Registry, RunContext, Table, decompose::whole_answer, graph::Graph,
};

fn time(f: impl FnOnce() -> anyhow::Result<()>) -> anyhow::Result<f64> {
    let t = Instant::now();
    f()?;
    Ok(t.elapsed().as_secs_f64())
}

/// CPU seconds this thread has used (user + system), from
/// `/proc/thread-self/stat` (Linux; `None` elsewhere). A one-thread run
/// measured this way is not lengthened by other processes taking the
/// core, which wall time on a shared machine is.
fn thread_cpu() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/thread-self/stat").ok()?;
    // Fields after the command name (which ends with ')'): utime and
    // stime are the 12th and 13th, in clock ticks of 1/100 s.
    let rest = &stat[stat.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split(' ').collect();
    let ticks: f64 = f.get(11)?.parse::<f64>().ok()? + f.get(12)?.parse::<f64>().ok()?;
    Some(ticks / 100.0)
}

/// CPU seconds of `f` on this thread, or wall seconds where unknown.
fn cpu_time(f: impl FnOnce() -> anyhow::Result<()>) -> anyhow::Result<f64> {
    match thread_cpu() {
        Some(start) => {
            f()?;
            Ok(thread_cpu().unwrap_or(start) - start)
        }
        None => time(f),
    }
}

fn run(args: &[String]) -> anyhow::Result<()> {
    let get = |k: &str| -> Option<&String> {
        args.iter()
            .position(|a| a == k)
            .and_then(|i| args.get(i + 1))
    };
    let plugins = PathBuf::from(get("--plugins").ok_or_else(|| anyhow::anyhow!("--plugins"))?);
    let model_path =
        PathBuf::from(get("--model").ok_or_else(|| anyhow::anyhow!("--model"))?).canonicalize()?;
    let data = PathBuf::from(get("--data").ok_or_else(|| anyhow::anyhow!("--data"))?);
    let parts: usize = get("--parts").map_or(Ok(2), |v| v.parse())?;
    let threads: usize = get("--threads").map_or(Ok(2), |v| v.parse())?;
    let runs: usize = get("--runs").map_or(Ok(5), |v| v.parse())?;

    let mut registry = Registry::new();
    registry.load_dir(&plugins)?;
    let model = LoadedModel::open(&registry, &model_path)?;
    let table = Table::read(&data)?;
    let x = model.features_from(&table)?;
    let rows = table.n_rows();
    let names: Vec<String> = model
        .header
        .features
        .iter()
        .map(|f| format!("{f:?}"))
        .collect();
    let input = format!("[inputs.features]\nnames = [{}]\n", names.join(", "));
    let single = format!(
        "{input}[nodes.m]\nmodel = {model_path:?}\ninputs = [\"features\"]\n[outputs.o]\nfrom = \"m\"\n"
    );
    let sharded = format!(
        "{input}[nodes.m]\nmodel = {model_path:?}\ninputs = [\"features\"]\n\
         decompose = {{ with = \"shard\", params = {{ parts = {parts} }} }}\n\
         [outputs.o]\nfrom = \"m\"\n"
    );
    let here = Path::new(".");
    let g1 = Graph::from_toml(&registry, &single, here, Path::new("single"))?;
    let gs = Graph::from_toml(&registry, &sharded, here, Path::new("sharded"))?;

    // Interleaved: every run times the three in turn, so that a slow
    // stretch of a shared machine does not fall on one of them alone.
    let ctx1 = RunContext::new(&registry, 1);
    let (mut model_1t, mut graph_1t, mut sharded_t) = (f64::INFINITY, f64::INFINITY, f64::INFINITY);
    let (mut model_cpu, mut graph_cpu) = (0.0, 0.0);
    let run_model = || -> anyhow::Result<()> {
        std::hint::black_box(whole_answer(&model, ctx1.as_abi(), &x)?);
        Ok(())
    };
    let run_graph = || -> anyhow::Result<()> {
        std::hint::black_box(g1.predict("o", &x, 1)?);
        Ok(())
    };
    let run_sharded = || -> anyhow::Result<()> {
        std::hint::black_box(gs.predict("o", &x, threads)?);
        Ok(())
    };
    for _ in 0..runs {
        graph_cpu += cpu_time(run_graph)?;
        model_cpu += cpu_time(run_model)?;
        graph_1t = graph_1t.min(time(run_graph)?);
        model_1t = model_1t.min(time(run_model)?);
        sharded_t = sharded_t.min(time(run_sharded)?);
    }
    println!(
        "{}",
        json!({
            "model": model_path.display().to_string(),
            "data": data.display().to_string(),
            "rows": rows,
            "parts": parts,
            "threads": threads,
            "runs": runs,
            "model_1t": {"seconds": model_1t, "rows_per_second": rows as f64 / model_1t},
            "graph_1t": {"seconds": graph_1t, "rows_per_second": rows as f64 / graph_1t},
            "sharded": {"seconds": sharded_t, "rows_per_second": rows as f64 / sharded_t},
            "graph_overhead": graph_cpu / model_cpu - 1.0,
            "graph_overhead_wall": graph_1t / model_1t - 1.0,
            "cpu_seconds": {"model_1t": model_cpu, "graph_1t": graph_cpu},
            "sharded_speedup_over_model_1t": model_1t / sharded_t,
        })
    );
    Ok(())
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!(
                "error: {e:#}\nusage: graph_bench --plugins DIR --model M.tsr --data F.csv [--parts N] [--threads N] [--runs N]"
            );
            ExitCode::from(2)
        }
    }
}
