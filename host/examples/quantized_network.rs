//! An MLP model against its int8 (or int16) quantization: accuracy, file
//! size and batch prediction speed, measured in-process.
//!
//! ```sh
//! cargo run --release -p tessera-host --example quantized_network -- \
//!     --plugins target/release --model M.tsr --train TRAIN.csv --test TEST.csv \
//!     [--bits 8] [--calibration-rows 2048 | --dynamic] [--threads 1,2] [--runs 31]
//! ```
//!
//! Loads the model through the plugin registry and takes its exchange
//! form (`to_ir`), quantizes it with `--calibration-rows` rows spread
//! evenly over the training file (or dynamically), then on the test file
//! prints, as one JSON object:
//!
//! * accuracy of both (the target is the model's own target column) and
//!   the drop in points, and how often the two predict the same class;
//! * sizes: the `.tsr` file, the quantized bytes, the quantized bytes with
//!   a 200-byte artifact header and with the model file's own header,
//!   and the ratios;
//! * batch `predict` and `predict_proba` times on all test rows, per
//!   thread count: the two models timed alternately, `--runs` times each
//!   (after a warm-up); the ratio of the medians, and the median of the
//!   round-by-round ratios.

use std::{
    hint::black_box,
    path::PathBuf,
    process::ExitCode,
    time::{Duration, Instant},
};

use anyhow::{Context, anyhow, ensure};
use serde_json::{Value, json};
use tessera_core::{MatrixRef, NullContext, ir::ModelIr, plugin::ModelImpl};
use tessera_host::{Artifact, LoadedModel, Registry, Table};
use tessera_qnet::{Options, QuantizedModel, QuantizedNetwork};

const USAGE: &str = "usage: quantized_network --plugins DIR --model MODEL.tsr --train TRAIN.csv \
                     --test TEST.csv [--bits 8|16] [--calibration-rows N | --dynamic] \
                     [--threads 1,2] [--runs N]";

/// The artifact header the brief's size comparison assumes for a
/// quantized model file.
const HEADER_ESTIMATE: usize = 200;

struct Args {
    plugins: Vec<PathBuf>,
    model: PathBuf,
    train: PathBuf,
    test: PathBuf,
    bits: u32,
    calibration_rows: Option<usize>,
    threads: Vec<usize>,
    runs: usize,
}

fn parse_args() -> Result<Args, String> {
    let mut a = Args {
        plugins: Vec::new(),
        model: PathBuf::new(),
        train: PathBuf::new(),
        test: PathBuf::new(),
        bits: 8,
        calibration_rows: Some(2048),
        threads: vec![1, 2],
        runs: 31,
    };
    let mut it = std::env::args().skip(1);
    let number = |v: Option<String>, key: &str| -> Result<usize, String> {
        let v = v.ok_or_else(|| format!("{key} needs a value"))?;
        v.parse()
            .map_err(|_| format!("{key} takes a whole number, not `{v}`"))
    };
    while let Some(key) = it.next() {
        match key.as_str() {
            "--help" | "-h" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            "--plugins" => a
                .plugins
                .push(it.next().ok_or("--plugins needs a value")?.into()),
            "--model" => a.model = it.next().ok_or("--model needs a value")?.into(),
            "--train" => a.train = it.next().ok_or("--train needs a value")?.into(),
            "--test" => a.test = it.next().ok_or("--test needs a value")?.into(),
            "--bits" => a.bits = number(it.next(), "--bits")? as u32,
            "--calibration-rows" => {
                a.calibration_rows = Some(number(it.next(), "--calibration-rows")?)
            }
            "--dynamic" => a.calibration_rows = None,
            "--runs" => a.runs = number(it.next(), "--runs")?.max(1),
            "--threads" => {
                let v = it.next().ok_or("--threads needs a value")?;
                a.threads = v
                    .split(',')
                    .map(|t| match t.trim().parse::<usize>() {
                        Ok(n) if n >= 1 => Ok(n),
                        _ => Err(format!("--threads takes numbers >= 1 like 1,2, not `{v}`")),
                    })
                    .collect::<Result<_, _>>()?;
            }
            other => return Err(format!("unknown argument `{other}`\n{USAGE}")),
        }
    }
    for (name, p) in [
        ("--model", &a.model),
        ("--train", &a.train),
        ("--test", &a.test),
    ] {
        if p.as_os_str().is_empty() {
            return Err(format!("{name} is required\n{USAGE}"));
        }
    }
    if a.plugins.is_empty() {
        a.plugins.push("target/release".into());
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

fn seconds(d: Duration) -> f64 {
    d.as_secs_f64()
}

/// Seconds `f` takes (its result kept from the optimiser).
fn timed<T>(f: impl FnOnce() -> anyhow::Result<T>) -> anyhow::Result<f64> {
    let start = Instant::now();
    black_box(f()?);
    Ok(seconds(start.elapsed()))
}

fn accuracy(pred: &[f32], y: &[f32]) -> f64 {
    let hits = pred.iter().zip(y).filter(|(p, y)| p == y).count();
    hits as f64 / y.len().max(1) as f64
}

fn run(a: &Args) -> anyhow::Result<Value> {
    let mut registry = Registry::new();
    registry.load_paths(&a.plugins)?;
    let artifact = Artifact::read(&a.model)?;
    let payload_len = artifact.payload.len();
    let file_len = std::fs::metadata(&a.model)
        .with_context(|| format!("cannot read {}", a.model.display()))?
        .len() as usize;
    let model = LoadedModel::from_artifact(&registry, artifact)?;
    ensure!(model.is_classifier(), "the model is not a classifier");
    let Some(ModelIr::Network(ir)) = model.model.to_ir().into_option() else {
        return Err(anyhow!("the model has no dense-network exchange form"));
    };
    let p = model.header.features.len();

    let train = Table::read(&a.train)?;
    let x_train = model.features_from(&train)?;
    let calibration: Option<Vec<f32>> = a.calibration_rows.map(|n| {
        let rows = train.n_rows();
        let step = rows.div_ceil(n.max(1)).max(1);
        (0..rows)
            .step_by(step)
            .flat_map(|r| x_train[r * p..(r + 1) * p].iter().copied())
            .collect()
    });
    let calib = match &calibration {
        Some(c) => Some(MatrixRef::new(c, c.len() / p, p)?),
        None => None,
    };
    let start = Instant::now();
    let q = QuantizedNetwork::quantize(&ir, &Options { bits: a.bits }, calib)?;
    let quantize_seconds = seconds(start.elapsed());
    let q_bytes = q.to_bytes()?.len();
    let qm = QuantizedModel::new(q)?;

    let test = Table::read(&a.test)?;
    let x = model.features_from(&test)?;
    let y = test.target_like(&model.header.target, &model.header.classes)?;
    let rows = test.n_rows();
    let xm = MatrixRef::new(&x, rows, p)?;

    let one = NullContext::default();
    let float_pred = model.predict(one.as_ref(), &x)?;
    let int_pred = qm.predict(&one.as_ref(), xm)?;
    let (acc_f, acc_q) = (accuracy(&float_pred, &y), accuracy(&int_pred, &y));
    let agree = accuracy(&int_pred, &float_pred);

    let mut timings = Vec::new();
    for &threads in &a.threads {
        let ctx = NullContext {
            threads: threads as u32,
        };
        let c = || ctx.as_ref();
        let mut t = [Vec::new(), Vec::new(), Vec::new(), Vec::new()];
        for run in 0..a.runs + 2 {
            let f32_predict = timed(|| Ok(model.predict(c(), &x)?))?;
            let int_predict = timed(|| Ok(qm.predict(&c(), xm)?))?;
            let f32_proba = timed(|| Ok(model.predict_proba(c(), &x)?))?;
            let int_proba = timed(|| Ok(qm.predict_proba(&c(), xm)?))?;
            // The first two rounds warm caches and pools.
            if run >= 2 {
                for (v, s) in t
                    .iter_mut()
                    .zip([f32_predict, int_predict, f32_proba, int_proba])
                {
                    v.push(s);
                }
            }
        }
        // On a busy machine the round-by-round ratio (both timed within
        // moments of each other) drifts less than either time.
        let paired = |f: &[f64], i: &[f64]| median(f.iter().zip(i).map(|(f, i)| f / i).collect());
        let (predict_ratio, proba_ratio) = (paired(&t[0], &t[1]), paired(&t[2], &t[3]));
        let [fp, ip, fpr, ipr] = t.map(median);
        timings.push(json!({
            "threads": threads,
            "predict": {
                "f32_seconds": fp,
                "int_seconds": ip,
                "speedup": fp / ip,
                "speedup_paired": predict_ratio,
                "int_rows_per_second": rows as f64 / ip,
            },
            "predict_proba": {
                "f32_seconds": fpr,
                "int_seconds": ipr,
                "speedup": fpr / ipr,
                "speedup_paired": proba_ratio,
            },
        }));
    }

    let own_header = file_len - payload_len;
    Ok(json!({
        "model": a.model.display().to_string(),
        "test": a.test.display().to_string(),
        "rows": rows,
        "n_features": p,
        "bits": a.bits,
        "calibration_rows": calibration.as_ref().map(|c| c.len() / p),
        "quantize_seconds": quantize_seconds,
        "accuracy": {
            "f32": acc_f,
            "int": acc_q,
            "drop_points": 100.0 * (acc_f - acc_q),
            "same_class": agree,
        },
        "size": {
            "tsr_bytes": file_len,
            "tsr_payload_bytes": payload_len,
            "int_bytes": q_bytes,
            "int_plus_200_header": q_bytes + HEADER_ESTIMATE,
            "ratio_200_header": file_len as f64 / (q_bytes + HEADER_ESTIMATE) as f64,
            "int_plus_own_header": q_bytes + own_header,
            "ratio_own_header": file_len as f64 / (q_bytes + own_header) as f64,
        },
        "timing_medians": timings,
        "runs": a.runs,
        "describe": qm.describe(),
    }))
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("error: {e}");
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
