//! Compression: a model's exchange form through compressor plugins, in
//! order, into a new ordinary model file; and the before/after measures
//! `tessera compress` reports (file size, metric, batch throughput,
//! single-row latency).
//!
//! A compressor returns a tree ensemble or a network (loaded through the
//! plugins that run those forms), or an opaque family such as
//! `quantized_trees`, loaded through the plugin that declares a model
//! form of that name.

use std::{
    path::Path,
    time::{Duration, Instant},
};

use anyhow::Context;
use serde::Serialize;
use serde_json::{Value, json};
use tessera_core::{CompressData, HostContextRef, PluginError};

use crate::{
    artifact::{Artifact, crc32},
    decompose::ir_payload,
    metrics::Metrics,
    model::{CallError, LoadedModel},
    plugin::Registry,
};

/// One compressor and its parameters (a JSON object).
#[derive(Clone, Debug, PartialEq)]
pub struct Step {
    /// The compressor's name: `quantize`, `prune`, or a plugin's own.
    pub with: String,
    /// Its parameters.
    pub params: Value,
}

/// `model` (read from `source`) through `steps`, in order, on its
/// exchange form, with the rows in `data`; the result answers with the
/// same classes, targets and features, and its header says where it came
/// from. Returns the new model file and the model loaded from it.
///
/// # Errors
/// A model with no exchange form, an unknown compressor, the
/// compressor's error (bad parameters, data it needs), or a result that
/// does not load.
pub fn compress(
    registry: &Registry,
    ctx: HostContextRef<'_>,
    model: &LoadedModel,
    steps: &[Step],
    data: CompressData<'_>,
    source: &Path,
) -> anyhow::Result<(Artifact, LoadedModel)> {
    let Some(mut ir) = model.model.to_ir().into_option() else {
        return Err(PluginError::unsupported(format!(
            "{}: the `{}` model has no exchange form, so it cannot be compressed",
            source.display(),
            model.header.component
        ))
        .into());
    };
    for step in steps {
        let c = registry.create_compressor(&step.with, &step.params.to_string())?;
        ir = c
            .compress(ctx.sabi_reborrow(), ir, data)
            .into_result()
            .map_err(|error| CallError {
                context: format!("compressor `{}` on {}", step.with, source.display()),
                error,
            })?;
    }
    let name = source.file_name().map_or_else(
        || source.display().to_string(),
        |n| n.to_string_lossy().to_string(),
    );
    let origin = json!({
        "compressed_from": name,
        "from_component": model.header.component,
        "steps": steps.iter().map(|s| json!({"with": s.with, "params": s.params})).collect::<Vec<_>>(),
    });
    let (component, payload) = ir_payload(&ir, &origin)?;
    let provider = registry.model_provider(&component)?;
    let mut header = model.header.clone();
    header.plugin = provider.manifest.name.to_string();
    header.plugin_version = provider.manifest.version.to_string();
    header.component = component;
    header.abi_version = provider.manifest.abi_version.to_string();
    header.payload_len = payload.len() as u64;
    header.payload_crc32 = crc32(&payload);
    header.training = origin;
    let artifact = Artifact { header, payload };
    let loaded = LoadedModel::from_artifact(registry, artifact.clone())
        .with_context(|| format!("the compressed {} does not load", source.display()))?;
    Ok((artifact, loaded))
}

/// Labelled rows in a model's encoding.
#[derive(Clone, Debug)]
pub struct Rows {
    /// Features, row-major, the model's columns.
    pub x: Vec<f32>,
    /// Truth (class indices, or values).
    pub y: Vec<f32>,
    /// Number of rows.
    pub n: usize,
}

impl Rows {
    /// The rows of `table` for `model`, with truth in `targets`.
    ///
    /// # Errors
    /// Missing columns, bad cells, unknown labels.
    pub fn of(
        model: &LoadedModel,
        table: &crate::data::Table,
        targets: &[String],
    ) -> anyhow::Result<Self> {
        Ok(Self {
            y: model.targets_from(table, targets)?,
            x: model.features_from(table)?,
            n: table.n_rows(),
        })
    }

    /// The rows as the ABI's held-out view.
    ///
    /// # Errors
    /// A shape that does not fit `cols`.
    pub fn holdout(&self, cols: usize) -> Result<tessera_core::Holdout<'_>, PluginError> {
        Ok(tessera_core::Holdout {
            x: tessera_core::MatrixRef::new(&self.x, self.n, cols)?,
            y: self.y.as_slice().into(),
            weights: tessera_core::abi_stable::std_types::ROption::RNone,
        })
    }
}

/// What one model measures on the evaluation rows.
#[derive(Clone, Debug, Serialize)]
pub struct Measures {
    /// The model file's size.
    pub file_bytes: u64,
    /// Its scores (absent without evaluation rows).
    pub metrics: Option<Metrics>,
    /// Rows per second predicting the evaluation rows in one call.
    pub batch_rows_per_second: Option<f64>,
    /// Median seconds of a one-row call.
    pub row_latency_seconds: Option<f64>,
}

/// How long each timing runs, at least.
const TIMING: Duration = Duration::from_millis(300);

/// Measures `models` (with their file sizes) on `rows`, interleaving the
/// timings (model after model, several rounds) so that a busy machine
/// slows them alike; the medians are reported.
///
/// # Errors
/// A plugin's error.
pub fn measure(
    ctx: HostContextRef<'_>,
    models: &[(&LoadedModel, u64)],
    rows: Option<&Rows>,
    rounds: usize,
) -> anyhow::Result<Vec<Measures>> {
    let Some(rows) = rows else {
        return Ok(models
            .iter()
            .map(|&(_, bytes)| Measures {
                file_bytes: bytes,
                metrics: None,
                batch_rows_per_second: None,
                row_latency_seconds: None,
            })
            .collect());
    };
    let mut batch = vec![Vec::new(); models.len()];
    let mut single = vec![Vec::new(); models.len()];
    let width = |m: &LoadedModel| m.header.features.len().max(1);
    // A few hundred rows are enough for the single-row median.
    let one_rows = rows.n.min(256);
    for _ in 0..rounds.max(1) {
        for (i, &(m, _)) in models.iter().enumerate() {
            let (mut n, start) = (0usize, Instant::now());
            while start.elapsed() < TIMING || n == 0 {
                m.answer(ctx.sabi_reborrow(), &rows.x)?;
                n += 1;
            }
            batch[i].push((n * rows.n) as f64 / start.elapsed().as_secs_f64());
            let w = width(m);
            let mut times = Vec::with_capacity(one_rows);
            for r in 0..one_rows {
                let t = Instant::now();
                m.answer(ctx.sabi_reborrow(), &rows.x[r * w..(r + 1) * w])?;
                times.push(t.elapsed().as_secs_f64());
            }
            single[i].push(median(&mut times));
        }
    }
    models
        .iter()
        .enumerate()
        .map(|(i, &(m, bytes))| {
            Ok(Measures {
                file_bytes: bytes,
                metrics: Some(m.score(ctx.sabi_reborrow(), &rows.x, &rows.y)?),
                batch_rows_per_second: Some(median(&mut batch[i])),
                row_latency_seconds: Some(median(&mut single[i])),
            })
        })
        .collect()
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

/// The largest difference of the raw outputs (before the link: boosting
/// scores, forest averages) of two tree ensembles on `rows`, computed from
/// their exchange forms; `None` unless both models are tree ensembles.
///
/// A quantized ensemble's exchange form is the ensemble it predicts with
/// (thresholds at its bin edges, leaves as stored), so this is the error
/// quantization made.
///
/// # Errors
/// An exchange form the engine refuses.
pub fn raw_difference(
    ctx: HostContextRef<'_>,
    before: &LoadedModel,
    after: &LoadedModel,
    rows: &Rows,
) -> anyhow::Result<Option<f64>> {
    use tessera_core::ir::ModelIr;
    let trees = |m: &LoadedModel| match m.model.to_ir().into_option() {
        Some(ModelIr::Trees(e)) => Some(e),
        _ => None,
    };
    let (Some(b), Some(a)) = (trees(before), trees(after)) else {
        return Ok(None);
    };
    let cols = before.header.features.len();
    let x = tessera_core::MatrixRef::new(&rows.x, rows.n, cols)?;
    let rb = tessera_engine::Engine::new(&b)?.raw(&ctx, x)?;
    let ra = tessera_engine::Engine::new(&a)?.raw(&ctx, x)?;
    Ok(Some(
        rb.iter()
            .zip(&ra)
            .map(|(x, y)| (x - y).abs())
            .fold(0.0, f64::max),
    ))
}

/// One line of the before/after table: a name, the two values as text,
/// and how the second compares.
pub type Line = (String, String, String, String);

/// The before/after table's lines.
pub fn table(before: &Measures, after: &Measures) -> Vec<Line> {
    let mut lines = Vec::new();
    let (b, a) = (before.file_bytes as f64, after.file_bytes as f64);
    lines.push((
        "file size".into(),
        size(b),
        size(a),
        format!("{:.2}x smaller", b / a.max(1.0)),
    ));
    if let (Some(mb), Some(ma)) = (&before.metrics, &after.metrics) {
        for (name, vb, va) in metric_pairs(mb, ma) {
            lines.push((
                name.into(),
                format!("{vb:.4}"),
                format!("{va:.4}"),
                format!("{:+.4}", va - vb),
            ));
        }
    }
    if let (Some(tb), Some(ta)) = (before.batch_rows_per_second, after.batch_rows_per_second) {
        lines.push((
            "batch rows/s".into(),
            format!("{tb:.0}"),
            format!("{ta:.0}"),
            speed(ta / tb),
        ));
    }
    if let (Some(lb), Some(la)) = (before.row_latency_seconds, after.row_latency_seconds) {
        lines.push((
            "1-row latency".into(),
            micros(lb),
            micros(la),
            speed(lb / la),
        ));
    }
    lines
}

fn metric_pairs(b: &Metrics, a: &Metrics) -> Vec<(&'static str, f64, f64)> {
    match (b, a) {
        (Metrics::Classification(b), Metrics::Classification(a)) => {
            let mut v = vec![
                ("accuracy", b.accuracy, a.accuracy),
                ("log_loss", b.log_loss, a.log_loss),
            ];
            if let (Some(x), Some(y)) = (b.roc_auc, a.roc_auc) {
                v.push(("roc_auc", x, y));
            }
            v
        }
        (Metrics::Regression(b), Metrics::Regression(a)) => vec![
            ("rmse", b.rmse, a.rmse),
            ("mae", b.mae, a.mae),
            ("r2", b.r2, a.r2),
        ],
        _ => Vec::new(),
    }
}

fn speed(ratio: f64) -> String {
    if ratio >= 1.0 {
        format!("{ratio:.2}x faster")
    } else {
        format!("{:.2}x slower", 1.0 / ratio)
    }
}

fn size(bytes: f64) -> String {
    if bytes >= 1e6 {
        format!("{:.2} MB", bytes / 1e6)
    } else if bytes >= 1e3 {
        format!("{:.1} kB", bytes / 1e3)
    } else {
        format!("{bytes} B")
    }
}

fn micros(seconds: f64) -> String {
    format!("{:.1} us", seconds * 1e6)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn medians_of_odd_even_and_empty() {
        assert_eq!(median(&mut [3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&mut [4.0, 1.0, 2.0, 3.0]), 2.5);
        assert!(median(&mut []).is_nan());
    }

    #[test]
    fn the_table_compares_what_both_sides_have() {
        let m = |bytes, rps, lat| Measures {
            file_bytes: bytes,
            metrics: None,
            batch_rows_per_second: rps,
            row_latency_seconds: lat,
        };
        let lines = table(
            &m(4000, Some(100.0), Some(2e-5)),
            &m(1000, Some(150.0), None),
        );
        assert_eq!(lines.len(), 2, "{lines:?}");
        assert_eq!(lines[0].1, "4.0 kB");
        assert_eq!(lines[0].3, "4.00x smaller");
        assert_eq!(lines[1].3, "1.50x faster");
        let slower = table(&m(10, Some(100.0), None), &m(10, Some(80.0), None));
        assert_eq!(slower[1].3, "1.25x slower");
    }
}
