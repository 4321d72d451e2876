//! Pruning dense networks: whole hidden units out (a smaller, faster
//! network), the smallest weights zeroed (a sparse network, a smaller
//! file), then fine-tuning on training rows to win back accuracy.
//!
//! Fine-tuning is the `mlp` learner's, reached through the host
//! ([`HostContext::create_learner`](tessera_core::HostContext::create_learner))
//! with the pruned network as its `init_network`: plugins do not link
//! each other. Without a loaded `mlp` plugin, pruning works with
//! `fine_tune_epochs = 0`.
//!
//! Modules: [`structured`] (unit importance and removal), [`refit`]
//! (the least-squares refit of the layer after a pruned one), [`magnitude`]
//! (per-layer weight thresholds), [`sparse`] (the compressed-sparse-row
//! form and its bytes), [`model`] (the sparse form's model: a sparse
//! kernel, the summary, the dense exchange form) and [`math`] (the `f32`
//! arithmetic they share).

pub mod magnitude;
pub mod math;
pub mod model;
pub mod refit;
pub mod sparse;
pub mod structured;

use serde_json::{Value, json};
use tessera_core::{
    CompressData, ErrorKind, Holdout, HostContextRef, PluginError, Task, TrainData,
    abi_stable::std_types::{ROption, RSlice, RString},
    ir::{DenseNetwork, ModelIr},
    plugin::ModelImpl,
};

use self::{
    math::{Scaling, argmax},
    model::SparseModel,
    sparse::SparseNetwork,
    structured::IMPORTANCE_ROWS,
};

/// The name of the sparse model form, and the `family` of its opaque
/// exchange form.
pub const SPARSE_FAMILY: &str = "sparse_network";

/// Minibatch size of fine-tuning (scikit-learn's default).
const FINE_TUNE_BATCH: usize = 200;

/// The learner that fine-tunes, created through the host.
pub const FINE_TUNER: &str = "mlp";

/// What to prune.
#[derive(Clone, Debug, PartialEq)]
pub struct NetworkPrune {
    /// Fraction of every layer's weights set to zero, in `[0, 1)`; 0
    /// zeroes none.
    pub sparsity: f64,
    /// Fraction of every hidden layer's units kept, in `(0, 1]`; 1
    /// removes none.
    pub keep_units: f64,
    /// Epochs of fine-tuning on the training rows after pruning, by the
    /// host's `mlp` learner (0: none, and no `mlp` needed).
    pub fine_tune_epochs: usize,
    /// Adam's step size while fine-tuning.
    pub learning_rate_init: f64,
    /// Seed of the fine-tuning row order.
    pub random_state: u64,
}

impl Default for NetworkPrune {
    /// Nothing pruned; ten epochs of fine-tuning at scikit-learn's step
    /// size, should there be something to fine-tune.
    fn default() -> Self {
        Self {
            sparsity: 0.0,
            keep_units: 1.0,
            fine_tune_epochs: 10,
            learning_rate_init: 1e-3,
            random_state: 0,
        }
    }
}

impl NetworkPrune {
    /// Checks the options.
    ///
    /// # Errors
    /// The first one out of range, named with its value.
    pub fn check(&self) -> Result<(), PluginError> {
        if !(0.0..1.0).contains(&self.sparsity) {
            return Err(PluginError::input(format!(
                "`sparsity` must be in [0, 1), got {}",
                self.sparsity
            )));
        }
        if !(self.keep_units > 0.0 && self.keep_units <= 1.0) {
            return Err(PluginError::input(format!(
                "`keep_units` must be in (0, 1], got {}",
                self.keep_units
            )));
        }
        let lr = self.learning_rate_init;
        if !(lr.is_finite() && lr > 0.0) {
            return Err(PluginError::input(format!(
                "`learning_rate_init` must be a positive number, got {lr}"
            )));
        }
        Ok(())
    }
}

/// Rows of `set` transformed for `net`'s first layer (at most `limit`,
/// evenly spaced), and how many.
fn transformed(
    net: &DenseNetwork,
    set: &Holdout<'_>,
    which: &str,
    limit: usize,
) -> Result<(Vec<f32>, usize), PluginError> {
    let p = net.n_features();
    let n = set.x.rows();
    let step = n.div_ceil(limit.max(1)).max(1);
    let x: Vec<f32> = (0..n)
        .step_by(step)
        .flat_map(|r| set.x.row(r).iter().copied())
        .collect();
    let rows = x.len() / p;
    let t = Scaling::of(net).apply(&x, p).map_err(|m| {
        PluginError::input(format!(
            "network_prune: {which} data: row {} has a missing or infinite value in column {}, \
             and the network has no fill value for it",
            m.row * step,
            m.col
        ))
    })?;
    Ok((t, rows))
}

/// Accuracy (classifiers) or R² averaged over the outputs (regression)
/// of `net` on `set` (the `which` rows, for messages).
fn score(net: &DenseNetwork, set: &Holdout<'_>, which: &str) -> Result<f64, PluginError> {
    let (x, n) = transformed(net, set, which, usize::MAX)?;
    let out = structured::layer_outputs(net, &x, n, net.layers.len() - 1);
    let k = net.n_outputs();
    let y = set.y.as_slice();
    if net.n_classes > 0 {
        let hits = out
            .chunks_exact(k)
            .zip(y)
            .filter(|(o, t)| {
                let class = if k == 1 {
                    usize::from(o[0] > 0.5)
                } else {
                    argmax(o)
                };
                class == **t as usize
            })
            .count();
        return Ok(hits as f64 / n.max(1) as f64);
    }
    let mut r2 = 0.0;
    for j in 0..k {
        let t = || y.iter().skip(j).step_by(k).map(|&v| f64::from(v));
        let mean = t().sum::<f64>() / n.max(1) as f64;
        let sst: f64 = t().map(|v| (v - mean).powi(2)).sum();
        let sse: f64 = t()
            .zip(out.iter().skip(j).step_by(k))
            .map(|(v, &o)| (v - f64::from(o)).powi(2))
            .sum();
        r2 += if sst > 0.0 { 1.0 - sse / sst } else { 0.0 };
    }
    Ok(r2 / k as f64)
}

/// Checks that the data's task is the network's.
fn check_task(net: &DenseNetwork, data: &CompressData<'_>) -> Result<(), PluginError> {
    let task = data.task;
    let (classes, outputs) = (net.n_classes, net.n_outputs());
    let fits = if task.is_classification() {
        task.n_classes == classes
    } else {
        classes == 0 && task.n_targets() == outputs
    };
    if !fits {
        return Err(PluginError::input(format!(
            "network_prune: the data is for {} with {} {}, the network {}",
            task.name(),
            task.n_classes,
            if task.is_classification() {
                "classes"
            } else {
                "targets"
            },
            if classes > 0 {
                format!("classifies {classes} classes")
            } else {
                format!("predicts {outputs} values")
            }
        )));
    }
    Ok(())
}

/// Units per hidden layer.
fn hidden(net: &DenseNetwork) -> Vec<u32> {
    let n = net.layers.len();
    net.layers[..n - 1].iter().map(|l| l.outputs).collect()
}

fn nonzeros(net: &DenseNetwork) -> usize {
    net.layers
        .iter()
        .map(|l| l.weights.iter().filter(|w| **w != 0.0).count())
        .sum()
}

/// Prunes `net`: hidden units first (`keep_units < 1`), then weights
/// (`sparsity > 0`), then fine-tuning on `data.train` (when
/// `fine_tune_epochs > 0`) with removed units gone and zeroed weights
/// held at zero. With rows (`data.train`, else `data.eval`), units are
/// chosen by how well the others reconstruct the next layer without
/// them, and the layers after a cut are refitted to the original
/// network's pre-activations by least squares; without, units are ranked
/// by their weights. `data.eval`, where given, is scored before and
/// after.
///
/// Returns the pruned model, as [`ModelIr::Network`] when no weight was
/// zeroed and as the sparse form (`ModelIr::Opaque` of family
/// [`SPARSE_FAMILY`], loaded by [`load_sparse`]) otherwise, and a JSON
/// summary: units per hidden layer before and after, nonzero weights,
/// byte sizes, the fine-tuning epochs run with the training score
/// (accuracy or R²) of the original network and of the pruned one before
/// and after, and the evaluation score.
///
/// Fine-tuning runs through the host's `mlp` learner
/// ([`fine_tune_on_host`]).
///
/// # Errors
/// Options out of range, an inconsistent network, or rows that do not
/// fit it (columns, targets, task, a missing value without a fill), and
/// what fine-tuning refuses; fine-tuning without an `mlp` learner on the
/// host.
pub fn prune(
    net: &DenseNetwork,
    opts: &NetworkPrune,
    data: &CompressData<'_>,
    ctx: &HostContextRef<'_>,
) -> Result<(ModelIr, Value), PluginError> {
    opts.check()?;
    net.check()?;
    sparse::check_outputs(net.n_classes, net.n_outputs())
        .map_err(|why| PluginError::input(format!("network_prune: dense network: {why}")))?;
    check_task(net, data)?;
    data.validate(net.n_features())
        .map_err(|e| PluginError::input(format!("network_prune: {}", e.message)))?;

    // Rows to choose units on and refit to: training, else evaluation.
    let rows = if opts.keep_units < 1.0 || opts.sparsity > 0.0 {
        data.any()
            .map(|set| transformed(net, &set, "importance", IMPORTANCE_ROWS))
            .transpose()?
            .map(|(x, _)| x)
    } else {
        None
    };
    let mut pruned = net.clone();
    let mut units = Vec::new();
    let mut importance = Value::Null;
    if opts.keep_units < 1.0 {
        importance = json!(if rows.is_some() {
            "reconstruction"
        } else {
            "weights"
        });
        let (smaller, report) = structured::remove_units(&pruned, opts.keep_units, rows.as_deref());
        pruned = smaller;
        units = report;
    }
    let mut refitted = Value::Null;
    let mut mask = None;
    if opts.sparsity > 0.0 {
        let (mut zeroed, kept) = magnitude::zero_smallest(&pruned, opts.sparsity);
        if let Some(x) = &rows {
            refitted = json!(magnitude::refit_layers(&pruned, &mut zeroed, &kept, x));
        }
        pruned = zeroed;
        mask = Some(kept);
    }

    let tuning = match data.train.into_option() {
        Some(set) if opts.fine_tune_epochs > 0 => {
            let score_of = |n: &DenseNetwork| score(n, &set, "training");
            let (original, before) = (score_of(net)?, score_of(&pruned)?);
            let (tuned, epochs_run) =
                fine_tune_on_host(&pruned, mask.as_deref(), &set, data.task, opts, ctx)?;
            pruned = tuned;
            json!({
                "learner": FINE_TUNER,
                "epochs_run": epochs_run,
                "rows": set.x.rows(),
                "metric": if net.n_classes > 0 { "accuracy" } else { "r2" },
                "score_original": original,
                "score_before": before,
                "score_after": score_of(&pruned)?,
            })
        }
        Some(_) => json!({ "epochs_run": 0, "skipped": "fine_tune_epochs is 0" }),
        None if opts.fine_tune_epochs > 0 => json!({
            "epochs_run": 0,
            "skipped": "no training rows were given",
        }),
        None => json!({ "epochs_run": 0 }),
    };
    let eval = match data.eval.into_option() {
        Some(set) => json!({
            "metric": if net.n_classes > 0 { "accuracy" } else { "r2" },
            "rows": set.x.rows(),
            "before": score(net, &set, "evaluation")?,
            "after": score(&pruned, &set, "evaluation")?,
        }),
        None => Value::Null,
    };

    let bytes_before = net.to_bytes()?.len();
    let (ir, form, stored, bytes_after) = match &mask {
        Some(m) => {
            let s = SparseNetwork::from_dense(&pruned, Some(m));
            let bytes = s.to_bytes()?;
            let n = bytes.len();
            let ir = ModelIr::Opaque {
                family: SPARSE_FAMILY.into(),
                bytes: bytes.into(),
            };
            (ir, SPARSE_FAMILY, s.nonzeros(), n)
        }
        None => {
            let n = pruned.to_bytes()?.len();
            let stored = pruned.layers.iter().map(|l| l.weights.len()).sum();
            (ModelIr::Network(pruned.clone()), "network", stored, n)
        }
    };
    let layers: Vec<Value> = units
        .iter()
        .enumerate()
        .map(|(l, u)| json!({ "layer": l, "units_before": u.before, "units_after": u.after }))
        .collect();
    let summary = json!({
        "compressor": "network_prune",
        "form": form,
        "sparsity": opts.sparsity,
        "keep_units": opts.keep_units,
        "importance": importance,
        "layers_refitted": refitted,
        "hidden_units_before": hidden(net),
        "hidden_units_after": hidden(&pruned),
        "layers": layers,
        "weights_before": net.layers.iter().map(|l| l.weights.len()).sum::<usize>(),
        "nonzeros_before": nonzeros(net),
        "nonzeros_after": nonzeros(&pruned),
        "weights_stored": stored,
        "bytes_before": bytes_before,
        "bytes_after": bytes_after,
        "fine_tune": tuning,
        "eval": eval,
    });
    Ok((ir, summary))
}

/// The lowercase hex digits of `bytes`, two per byte: how the pruned
/// network travels as the `mlp` learner's `init_network` parameter.
pub fn encode_hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(2 * bytes.len());
    for &b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 15)]));
    }
    out
}

/// Trains `pruned` further on `set` with the host's [`FINE_TUNER`]
/// learner: the network goes in as its `init_network` (the hex of
/// [`DenseNetwork::to_bytes`]), for `fine_tune_epochs` epochs at
/// `learning_rate_init` from `random_state`, and comes back as the
/// trained model's dense exchange form.
///
/// With `mask` (magnitude pruning), `keep_zeros` holds the zero weights
/// at zero: pruning left exactly the masked weights at zero, so those
/// are the mask (a kept weight that is itself exactly zero stays zero
/// too, which changes nothing but that weight). Structured pruning
/// removes units outright and needs no mask.
///
/// Returns the tuned network and the epochs run.
///
/// # Errors
/// No [`FINE_TUNER`] learner on the host (saying how to prune without
/// one), what the learner refuses or fails on, and an answer that is not
/// `pruned` trained: no dense network form, another shape or input
/// transformation, or a masked weight that moved (internal errors).
pub fn fine_tune_on_host(
    pruned: &DenseNetwork,
    mask: Option<&[Vec<bool>]>,
    set: &Holdout<'_>,
    task: Task,
    opts: &NetworkPrune,
    ctx: &HostContextRef<'_>,
) -> Result<(DenseNetwork, usize), PluginError> {
    let params = json!({
        "init_network": encode_hex(&pruned.to_bytes()?),
        "keep_zeros": mask.is_some(),
        "max_iter": opts.fine_tune_epochs,
        "learning_rate_init": opts.learning_rate_init,
        "random_state": opts.random_state,
        "batch_size": FINE_TUNE_BATCH,
    })
    .to_string();
    let learner = ctx
        .create_learner(FINE_TUNER.into(), params.as_str().into())
        .into_result()
        .map_err(|e| {
            if e.kind == ErrorKind::UNSUPPORTED {
                PluginError::unsupported(format!(
                    "network_prune: fine-tuning needs the `{FINE_TUNER}` learner (plugin not \
                     loaded): {}; set fine_tune_epochs = 0 to prune without it",
                    e.message
                ))
            } else {
                PluginError::new(
                    e.kind,
                    format!(
                        "network_prune: the `{FINE_TUNER}` learner refused to fine-tune: {}",
                        e.message
                    ),
                )
            }
        })?;
    let names: Vec<RString> = (0..set.x.cols()).map(|j| format!("x{j}").into()).collect();
    let train = TrainData {
        x: set.x,
        y: set.y,
        weights: set.weights,
        feature_names: RSlice::from_slice(&names),
        task,
        valid: ROption::RNone,
    };
    let model = learner
        .fit(ctx.sabi_reborrow(), train)
        .into_result()
        .map_err(|e| {
            PluginError::new(
                e.kind,
                format!(
                    "network_prune: fine-tuning with `{FINE_TUNER}` failed: {}",
                    e.message
                ),
            )
        })?;
    let odd = |what: &str| {
        PluginError::internal(format!(
            "network_prune: the `{FINE_TUNER}` learner returned {what}"
        ))
    };
    let Some(ModelIr::Network(tuned)) = model.to_ir().into_option() else {
        return Err(odd("a model without a dense network form"));
    };
    let shape = |n: &DenseNetwork| {
        let layers: Vec<_> = n
            .layers
            .iter()
            .map(|l| (l.inputs, l.outputs, l.activation))
            .collect();
        (n.n_classes, layers)
    };
    let same_input = tuned.input_mean == pruned.input_mean
        && tuned.input_scale == pruned.input_scale
        && tuned.input_fill == pruned.input_fill;
    if shape(&tuned) != shape(pruned) || !same_input || tuned.check().is_err() {
        return Err(odd(
            "a network of another shape or input transformation than the one it was given",
        ));
    }
    if let Some(m) = mask {
        let moved = tuned
            .layers
            .iter()
            .zip(m)
            .any(|(l, keep)| l.weights.iter().zip(keep).any(|(&w, &k)| !k && w != 0.0));
        if moved {
            return Err(odd("a network in which pruned weights are no longer zero"));
        }
    }
    // The learner reports its epochs; `mlp` runs exactly `max_iter` with
    // `init_network`, which is the fallback.
    let epochs = serde_json::from_str::<Value>(model.describe().as_str())
        .ok()
        .and_then(|d| d["n_iter"].as_u64())
        .map_or(opts.fine_tune_epochs, |n| n as usize);
    Ok((tuned, epochs))
}

/// Loads the sparse form from its bytes (the model form's `load`).
///
/// # Errors
/// Damaged or foreign bytes.
pub fn load_sparse(
    bytes: &[u8],
    _ctx: &HostContextRef<'_>,
) -> Result<Box<dyn ModelImpl>, PluginError> {
    Ok(Box::new(SparseModel::new(SparseNetwork::from_bytes(
        bytes,
    )?)))
}

#[cfg(test)]
mod tests;
