//! `tessera compress`: one compressor on one model, with the before/after
//! table on the evaluation rows.

use std::{path::PathBuf, time::Instant};

use anyhow::Context;
use clap::Args;
use serde_json::json;
use tessera_core::CompressData;
use tessera_host::{
    LoadedModel, RunContext, Table,
    compress::{self, Rows, Step},
    params::ParamSet,
};

use super::commands::{Env, UsageError, threads, write_json};

#[derive(Debug, Args)]
pub struct CompressArgs {
    /// The model file.
    #[arg(long, value_name = "MODEL")]
    model: PathBuf,
    /// The compressor: quantize, prune (or a plugin's own).
    #[arg(long = "with", value_name = "NAME")]
    with: String,
    /// One compressor parameter; VALUE is a TOML value.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    set: Vec<String>,
    /// Compressor parameters as a TOML table (applied before --set).
    #[arg(long, value_name = "FILE.toml")]
    config: Option<PathBuf>,
    /// Where to write the compressed model.
    #[arg(long, value_name = "MODEL")]
    out: PathBuf,
    /// Labelled rows to choose on (greedy tree selection) and to measure
    /// both models on.
    #[arg(long, value_name = "FILE")]
    eval: Option<PathBuf>,
    /// Labelled rows to fit on: calibration of quantized activations,
    /// fine-tuning after pruning.
    #[arg(long, value_name = "FILE")]
    data: Option<PathBuf>,
    /// The column holding the truth in --eval and --data (repeat it for
    /// each target of a multi-output regression model).
    #[arg(long, value_name = "COL")]
    target: Vec<String>,
    /// Also write the before/after measures as JSON.
    #[arg(long, value_name = "FILE.json")]
    report: Option<PathBuf>,
    /// Timing rounds (models timed in turn; medians reported).
    #[arg(long, value_name = "N", default_value_t = 3)]
    rounds: usize,
    /// Thread budget (default: all cores).
    #[arg(long, value_name = "N")]
    threads: Option<usize>,
    /// Print JSON instead of the table.
    #[arg(long)]
    json: bool,
}

pub fn compress(env: &Env, a: CompressArgs) -> anyhow::Result<()> {
    let start = Instant::now();
    let threads = threads(a.threads)?;
    if (a.eval.is_some() || a.data.is_some()) && a.target.is_empty() {
        return Err(UsageError(
            "--eval and --data need --target COL: the column holding the truth".into(),
        )
        .into());
    }
    if !a.target.is_empty() && a.eval.is_none() && a.data.is_none() {
        return Err(UsageError(
            "--target names a column of --eval or --data; give one of them".into(),
        )
        .into());
    }
    if a.out == a.model {
        return Err(UsageError(format!(
            "--out {} is the model being compressed; write the compressed model elsewhere",
            a.out.display()
        ))
        .into());
    }
    let registry = env.registry()?;
    let model = LoadedModel::open(&registry, &a.model)?;
    let mut params = ParamSet::new();
    if let Some(c) = &a.config {
        params.merge_toml_file(c)?;
    }
    for s in &a.set {
        params.set(s)?;
    }
    let rows = |path: &Option<PathBuf>| -> anyhow::Result<Option<Rows>> {
        path.as_ref()
            .map(|p| Rows::of(&model, &Table::read(p)?, &a.target))
            .transpose()
    };
    let eval = rows(&a.eval)?;
    let train = rows(&a.data)?;
    let cols = model.header.features.len();
    let data = CompressData {
        train: train.as_ref().map(|r| r.holdout(cols)).transpose()?.into(),
        eval: eval.as_ref().map(|r| r.holdout(cols)).transpose()?.into(),
        task: model.model.task(),
    };
    let ctx = RunContext::new(&registry, threads).verbose(env.verbose);
    let step = Step {
        with: a.with.clone(),
        params: params.to_json(),
    };
    let (artifact, compressed) = compress::compress(
        &registry,
        ctx.as_abi(),
        &model,
        std::slice::from_ref(&step),
        data,
        &a.model,
    )?;
    let compress_seconds = start.elapsed().as_secs_f64();
    let after_bytes = artifact.write(&a.out)?;
    let before_bytes = std::fs::metadata(&a.model)
        .with_context(|| format!("cannot read {}", a.model.display()))?
        .len();
    let measures = compress::measure(
        ctx.as_abi(),
        &[(&model, before_bytes), (&compressed, after_bytes)],
        eval.as_ref(),
        a.rounds,
    )?;
    let (before, after) = (&measures[0], &measures[1]);
    let raw_diff = match &eval {
        Some(rows) => compress::raw_difference(ctx.as_abi(), &model, &compressed, rows)?,
        None => None,
    };
    let report = json!({
        "model": a.model.display().to_string(),
        "with": a.with,
        "params": step.params,
        "out": a.out.display().to_string(),
        "component": compressed.header.component,
        "eval": a.eval.as_ref().map(|p| p.display().to_string()),
        "eval_rows": eval.as_ref().map(|r| r.n),
        "data": a.data.as_ref().map(|p| p.display().to_string()),
        "threads": threads,
        "compress_seconds": compress_seconds,
        "before": before,
        "after": after,
        "raw_max_abs_diff": raw_diff,
        "messages": messages(&ctx.messages()),
    });
    if let Some(path) = &a.report {
        write_json(path, &report)?;
    }
    if a.json {
        outln!("{report}");
        return Ok(());
    }
    outln!(
        "compressed {} with {} in {compress_seconds:.2} s -> {} ({})",
        a.model.display(),
        a.with,
        a.out.display(),
        compressed.header.component
    );
    match (&a.eval, &eval) {
        (Some(p), Some(r)) => outln!(
            "measured on {} ({} rows, {threads} thread(s), median of {} rounds)",
            p.display(),
            r.n,
            a.rounds.max(1)
        ),
        _ => outln!("(give --eval FILE --target COL to compare metric and speed)"),
    }
    outln!("{:<16} {:>14} {:>14}   {}", "", "before", "after", "change");
    for (name, b, after, change) in compress::table(before, after) {
        outln!("{name:<16} {b:>14} {after:>14}   {change}");
    }
    if let Some(d) = raw_diff {
        outln!("largest difference of the raw tree outputs: {d:.3e}");
    }
    Ok(())
}

/// The plugins' messages, those of the form `NAME: {json}` (a
/// compressor's account of what it did) as JSON objects.
fn messages(raw: &[String]) -> Vec<serde_json::Value> {
    raw.iter()
        .map(|m| {
            m.split_once(": ")
                .and_then(|(name, rest)| {
                    serde_json::from_str::<serde_json::Value>(rest)
                        .ok()
                        .filter(serde_json::Value::is_object)
                        .map(|v| json!({ "from": name, "summary": v }))
                })
                .unwrap_or_else(|| json!(m))
        })
        .collect()
}
