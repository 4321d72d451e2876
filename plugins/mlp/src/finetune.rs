//! Training a network further from where it is: what the `mlp` learner
//! runs when given `init_network` (how a compressor, through the host,
//! wins back after pruning what the cut weights cost).
//!
//! The minibatch loop is [`train`](crate::train)'s (the same parts,
//! gradients and adam step), started from the given weights with fresh
//! moments and no L2 term. A mask keeps chosen weights at zero: after
//! every step the masked ones are set back to zero, so a pruned weight
//! never comes back.
//!
//! The network crosses the plugin boundary as parameter text: the hex
//! digits of [`DenseNetwork::to_bytes`] ([`encode_hex`],
//! [`decode_init`]). [`init_network`] reads it from the checked
//! parameters and refuses the ones that contradict it; [`fit_from`] is
//! the learner's `fit` in that mode.

use rayon::prelude::*;
use serde_json::Value;
use tessera_core::{
    HostContextRef, MatrixRef, PluginError, TrainData,
    ir::{Activation, DenseNetwork},
    params::Params,
    plugin::{
        seeds::{SplitMix, entropy_seed},
        with_thread_budget,
    },
};

use crate::{
    loss::Loss,
    model::{History, MlpModel},
    net::Net,
    optim::Optimizer,
    params::{Config, Solver},
    scaling::Scaling,
    train::{PART_ROWS, Part, Set, shuffle},
};

/// How to fine-tune.
#[derive(Clone, Debug, PartialEq)]
pub struct FineTune {
    /// Passes over the rows (0: the network comes back as it was).
    pub epochs: usize,
    /// Adam's step size.
    pub learning_rate_init: f64,
    /// Rows per minibatch (at least 1; more than the rows means all of
    /// them).
    pub batch_size: usize,
    /// Seed of the row order.
    pub random_state: u64,
}

impl Default for FineTune {
    /// Ten epochs at scikit-learn's default step size and batch size.
    fn default() -> Self {
        Self {
            epochs: 10,
            learning_rate_init: 1e-3,
            batch_size: 200,
            random_state: 0,
        }
    }
}

/// Rows scaled as the network scales them, with their targets and
/// weights (scaled to average 1, as the learner does).
struct Rows {
    x: Vec<f32>,
    weights: Option<Vec<f32>>,
    cols: usize,
    yw: usize,
}

/// The loss `net` trains with: log loss on a logistic output (two
/// classes) or softmax outputs, half the squared error on identity
/// outputs (regression).
fn loss_of(net: &DenseNetwork) -> Result<Loss, PluginError> {
    loss_or_why(net).map_err(|why| PluginError::unsupported(format!("fine_tune: {why}")))
}

/// [`loss_of`], with the reason a network has none.
fn loss_or_why(net: &DenseNetwork) -> Result<Loss, String> {
    let k = net.n_outputs();
    let out = net
        .layers
        .last()
        .map_or(Activation::Identity, |l| l.activation);
    match (net.n_classes, out) {
        (0, Activation::Identity) => Ok(Loss::Squared),
        (0, a) => Err(format!(
            "a regression network needs an identity output layer, this one is {}",
            a.name()
        )),
        (2, Activation::Logistic) if k == 1 => Ok(Loss::Binary),
        (c, Activation::Softmax) if c >= 2 && k == c as usize => Ok(Loss::Softmax),
        (c, a) => Err(format!(
            "a classifier of {c} classes needs one logistic output (two classes) or one \
             softmax output per class, this one has {k} {} output(s)",
            a.name()
        )),
    }
}

/// Checks the rows against `net` and scales them.
fn rows(
    net: &DenseNetwork,
    loss: Loss,
    x: MatrixRef<'_>,
    y: &[f32],
    weights: Option<&[f32]>,
) -> Result<Rows, PluginError> {
    let p = net.n_features();
    x.check(p)
        .map_err(|e| PluginError::input(format!("fine_tune: {}", e.message)))?;
    let n = x.rows();
    if n == 0 {
        return Err(PluginError::input("fine_tune: no rows to train on"));
    }
    let yw = loss.target_width(net.n_outputs());
    if y.len() != n * yw {
        return Err(PluginError::input(format!(
            "fine_tune: target has {} values for {n} rows of {yw} target(s)",
            y.len()
        )));
    }
    let classes = net.n_classes as f32;
    if let Some(i) = y.iter().position(|v| {
        !v.is_finite() || (loss != Loss::Squared && (*v < 0.0 || v.fract() != 0.0 || *v >= classes))
    }) {
        return Err(PluginError::input(format!(
            "fine_tune: target of row {} is {}, not {}",
            i / yw,
            y[i],
            if loss == Loss::Squared {
                "a finite value".to_string()
            } else {
                format!("a class index below {}", net.n_classes)
            }
        )));
    }
    let weights = match weights {
        None => None,
        Some(w) if w.len() != n => {
            return Err(PluginError::input(format!(
                "fine_tune: {} sample weights for {n} rows",
                w.len()
            )));
        }
        Some(w) => {
            if let Some(i) = w.iter().position(|w| !(w.is_finite() && *w >= 0.0)) {
                return Err(PluginError::input(format!(
                    "fine_tune: sample weight of row {i} is {}, weights must be finite and \
                     non-negative",
                    w[i]
                )));
            }
            let mean = w.iter().map(|&v| f64::from(v)).sum::<f64>() / n as f64;
            let k = if mean > 0.0 { (1.0 / mean) as f32 } else { 1.0 };
            Some(w.iter().map(|&v| v * k).collect())
        }
    };
    let scaling = Scaling {
        mean: net.input_mean.to_vec(),
        scale: net.input_scale.to_vec(),
        fill: net.input_fill.to_vec(),
    };
    let names: Vec<String> = (0..p).map(|j| format!("f{j}")).collect();
    let x = scaling
        .apply(x.as_slice(), p)
        .map_err(|m| m.error(&names, "fine_tune rows"))?;
    Ok(Rows {
        x,
        weights,
        cols: p,
        yw,
    })
}

/// `keep` as one factor per parameter of `net` (1 keeps, 0 zeroes), in
/// the network's own `inputs x outputs` layout; biases always 1.
fn keep_factors(net: &Net, mask: &[Vec<bool>]) -> Result<Vec<f32>, PluginError> {
    let slots = net.slots();
    if mask.len() != slots.len() {
        return Err(PluginError::input(format!(
            "fine_tune: the mask has {} layers, the network {}",
            mask.len(),
            slots.len()
        )));
    }
    let mut keep = vec![1.0f32; net.params.len()];
    for (l, (s, m)) in slots.iter().zip(mask).enumerate() {
        if m.len() != s.inputs * s.outputs {
            return Err(PluginError::input(format!(
                "fine_tune: the mask of layer {l} has {} entries for {} x {} weights",
                m.len(),
                s.outputs,
                s.inputs
            )));
        }
        let k = &mut keep[s.weights.clone()];
        for o in 0..s.outputs {
            for i in 0..s.inputs {
                k[i * s.outputs + o] = if m[o * s.inputs + i] { 1.0 } else { 0.0 };
            }
        }
    }
    Ok(keep)
}

fn check(opts: &FineTune) -> Result<(), PluginError> {
    let lr = opts.learning_rate_init;
    if !(lr.is_finite() && lr > 0.0) {
        return Err(PluginError::input(format!(
            "fine_tune: `learning_rate_init` must be a positive number, got {lr}"
        )));
    }
    if opts.batch_size == 0 {
        return Err(PluginError::input(
            "fine_tune: `batch_size` must be at least 1, got 0",
        ));
    }
    Ok(())
}

/// Trains `net` further on `x` (raw rows: the network's input
/// transformation is applied here, as the model applies it) and `y`
/// (targets in the network's encoding: class indices for classifiers,
/// `n_outputs` values per row for regression), with optional sample
/// weights. Adam from fresh moments; the loss is the mlp learner's (log
/// loss for classifiers, half the squared error otherwise), without an L2
/// term. Where `mask` (one `Vec<bool>` per layer, laid out as that
/// layer's weights) is false, the weight is zero on return and stays zero
/// throughout.
///
/// Returns the trained network and the training loss of every epoch
/// (averaged over the epoch's minibatches, as scikit-learn's
/// `loss_curve_`).
///
/// # Errors
/// Bad options, rows that do not fit the network (columns, targets,
/// weights, a missing value without a fill), a mask of the wrong shape, a
/// network this plugin cannot run or train (mixed hidden activations, an
/// output layer that does not match the task), a loss that diverges, or
/// cancellation.
pub fn fine_tune(
    net: &DenseNetwork,
    mask: Option<&[Vec<bool>]>,
    x: MatrixRef<'_>,
    y: &[f32],
    weights: Option<&[f32]>,
    opts: &FineTune,
    ctx: &HostContextRef<'_>,
) -> Result<(DenseNetwork, Vec<f64>), PluginError> {
    check(opts)?;
    let mut work = Net::from_ir(net)?;
    let loss = loss_of(net)?;
    let rows = rows(net, loss, x, y, weights)?;
    let keep = mask.map(|m| keep_factors(&work, m)).transpose()?;
    if let Some(k) = &keep {
        work.params.iter_mut().zip(k).for_each(|(p, k)| *p *= k);
    }
    let threads = ctx.threads().max(1) as usize;
    let curve = with_thread_budget(threads, || {
        epochs(
            &mut work,
            keep.as_deref(),
            &rows,
            y,
            loss,
            opts,
            ctx,
            threads,
        )
    })??;
    let out = work.to_ir(
        &net.input_mean,
        &net.input_scale,
        &net.input_fill,
        net.n_classes,
    );
    Ok((out, curve))
}

/// The epoch loop (see [`train`](crate::train) for the parts).
#[allow(clippy::too_many_arguments)] // one call site; a struct would only rename them
fn epochs(
    net: &mut Net,
    keep: Option<&[f32]>,
    rows: &Rows,
    y: &[f32],
    loss: Loss,
    opts: &FineTune,
    ctx: &HostContextRef<'_>,
    threads: usize,
) -> Result<Vec<f64>, PluginError> {
    let set = Set {
        x: &rows.x,
        y,
        w: rows.weights.as_deref(),
        cols: rows.cols,
        yw: rows.yw,
    };
    let n = rows.x.len() / rows.cols;
    let batch = opts.batch_size.clamp(1, n);
    let mut parts: Vec<Part> = (0..batch.div_ceil(PART_ROWS))
        .map(|_| Part::new(net, set.w.is_some(), set.yw))
        .collect();
    let mut wt = vec![0.0f32; net.params.len()];
    // scikit-learn's adam constants.
    let adam = Solver::Adam {
        beta_1: 0.9,
        beta_2: 0.999,
        epsilon: 1e-8,
    };
    let mut opt = Optimizer::new(adam, opts.learning_rate_init, net, 0.0);
    let mut rng = SplitMix::new(opts.random_state);
    let mut order: Vec<usize> = (0..n).collect();
    let mut curve = Vec::with_capacity(opts.epochs);
    for epoch in 0..opts.epochs {
        if ctx.is_cancelled() {
            return Err(PluginError::cancelled());
        }
        shuffle(&mut order, &mut rng);
        let mut total = 0.0f64;
        for idx in order.chunks(batch) {
            let nb = idx.len();
            let used = nb.div_ceil(PART_ROWS);
            net.transpose_weights(&mut wt);
            let step = |(k, part): (usize, &mut Part)| {
                part.gather(&set, &idx[k * nb / used..(k + 1) * nb / used]);
                part.gradient(net, &wt, loss);
            };
            if threads > 1 && used > 1 {
                parts[..used].par_iter_mut().enumerate().for_each(step);
            } else {
                parts[..used].iter_mut().enumerate().for_each(step);
            }
            opt.step(&mut net.params, &parts[..used], nb, threads > 1);
            // Adam moves a masked weight by its gradient like any other;
            // setting it back after the step is what keeps it pruned.
            if let Some(k) = keep {
                net.params.iter_mut().zip(k).for_each(|(p, k)| *p *= k);
            }
            total += parts[..used].iter().map(|p| p.loss).sum::<f64>();
        }
        let epoch_loss = total / n as f64;
        if !epoch_loss.is_finite() {
            return Err(PluginError::input(format!(
                "fine_tune: the loss diverged (not finite) in epoch {}; lower \
                 `learning_rate_init` (now {})",
                epoch + 1,
                opts.learning_rate_init
            )));
        }
        curve.push(epoch_loss);
        ctx.progress((epoch + 1) as u64, opts.epochs as u64);
    }
    Ok(curve)
}

/// The mean loss of `net` on the rows (weighted by `weights` where
/// given): the quantity [`fine_tune`] lowers, for reporting it before and
/// after.
///
/// # Errors
/// As [`fine_tune`], for the rows and the network.
pub fn mean_loss(
    net: &DenseNetwork,
    x: MatrixRef<'_>,
    y: &[f32],
    weights: Option<&[f32]>,
) -> Result<f64, PluginError> {
    let work = Net::from_ir(net)?;
    let loss = loss_of(net)?;
    let rows = rows(net, loss, x, y, weights)?;
    let (p, k) = (rows.cols, work.n_outputs());
    let mut acts: Vec<Vec<f32>> = work.widths[1..]
        .iter()
        .map(|w| vec![0.0; PART_ROWS * w])
        .collect();
    let mut delta = vec![0.0f32; PART_ROWS * k];
    let last = acts.len() - 1;
    let mut total = 0.0;
    for (b, xb) in rows.x.chunks(PART_ROWS * p).enumerate() {
        let r = xb.len() / p;
        let at = b * PART_ROWS;
        work.forward(xb, r, &mut acts);
        total += loss.delta(
            &acts[last][..r * k],
            &y[at * rows.yw..(at + r) * rows.yw],
            rows.weights.as_deref().map(|w| &w[at..at + r]),
            &mut delta[..r * k],
            k,
        );
    }
    Ok(total / (rows.x.len() / p) as f64)
}

/// What `init_network` accepts, for messages and the manifest.
pub const INIT_TYPE: &str = "hex text of a dense network's bytes | null";

/// The lowercase hex digits of `bytes`, two per byte: how a dense
/// network's [`DenseNetwork::to_bytes`] travels in `init_network`.
pub fn encode_hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(2 * bytes.len());
    for &b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 15)]));
    }
    out
}

/// The bytes of hex text (either case, two digits per byte).
///
/// # Errors
/// An odd number of digits, or a character that is not a hex digit,
/// with its offset.
pub fn decode_hex(text: &str) -> Result<Vec<u8>, String> {
    let digit = |at: usize| -> Result<u8, String> {
        let c = text.as_bytes()[at];
        match c {
            b'0'..=b'9' => Ok(c - b'0'),
            b'a'..=b'f' => Ok(c - b'a' + 10),
            b'A'..=b'F' => Ok(c - b'A' + 10),
            _ => {
                // The character, not the byte: the text may hold any
                // UTF-8 (a byte offset always starts one here, as the
                // digits before it are ASCII).
                let ch = text[at..].chars().next().unwrap_or('?');
                Err(format!("{ch:?} at offset {at} is not a hex digit"))
            }
        }
    };
    let mut out = Vec::with_capacity(text.len() / 2);
    for at in (0..text.len()).step_by(2) {
        let high = digit(at)?;
        if at + 1 == text.len() {
            return Err(format!(
                "the hex text has an odd number of digits ({})",
                text.len()
            ));
        }
        out.push((high << 4) | digit(at + 1)?);
    }
    Ok(out)
}

/// The network `init_network` holds: hex text of
/// [`DenseNetwork::to_bytes`], consistent, one that this plugin runs
/// (hidden layers sharing one activation) and trains (an output layer
/// that fits its class count).
///
/// # Errors
/// Why not, without the parameter's name (the caller adds it).
pub fn decode_init(text: &str) -> Result<DenseNetwork, String> {
    if text.is_empty() {
        return Err(format!("expected {INIT_TYPE}, got an empty string"));
    }
    let bytes = decode_hex(text)?;
    let (net, used) = DenseNetwork::from_bytes(&bytes)
        .map_err(|e| format!("not a dense network's bytes: {}", e.message))?;
    if used != bytes.len() {
        return Err(format!(
            "{} bytes follow the dense network's {used}",
            bytes.len() - used
        ));
    }
    // What the model this training makes would refuse to load.
    MlpModel::from_ir(&net).map_err(|e| e.message.to_string())?;
    loss_or_why(&net)?;
    Ok(net)
}

/// The `init_network` parameter's check.
///
/// # Errors
/// Anything but `null` or text [`decode_init`] reads.
pub fn check_init_network(v: &Value) -> Result<(), String> {
    match v {
        Value::Null => Ok(()),
        Value::String(s) => decode_init(s).map(|_| ()),
        _ => Err(format!("expected {INIT_TYPE}, got {v}")),
    }
}

/// The network of checked parameters' `init_network` (`None` when
/// `null`), once the parameters that contradict it are refused: a
/// `hidden_layer_sizes` or `activation` given and different from the
/// network's, and what continued training does not do (`solver` other
/// than adam, `early_stopping`, `quantization_aware`). `keep_zeros`
/// without it is refused too.
///
/// # Errors
/// A params error naming both keys and their values.
pub fn init_network(p: &Params) -> Result<Option<DenseNetwork>, PluginError> {
    let Some(text) = p.get("init_network").as_str() else {
        if p.bool("keep_zeros") {
            return Err(PluginError::params(
                "mlp: `keep_zeros` = true needs `init_network` (the network whose zero \
                 weights it keeps), which is null",
            ));
        }
        return Ok(None);
    };
    let net = decode_init(text)
        .map_err(|why| PluginError::params(format!("mlp: `init_network`: {why}")))?;
    let n = net.layers.len();
    let hidden: Vec<u64> = net.layers[..n - 1]
        .iter()
        .map(|l| u64::from(l.outputs))
        .collect();
    let given = p.get("hidden_layer_sizes");
    let given_widths: Option<Vec<u64>> = match given {
        Value::Array(a) => a.iter().map(Value::as_u64).collect(),
        v => v.as_u64().map(|w| vec![w]),
    };
    if p.was_given("hidden_layer_sizes") && given_widths.as_ref() != Some(&hidden) {
        return Err(PluginError::params(format!(
            "mlp: `hidden_layer_sizes` is {given} but `init_network` has hidden layers \
             {hidden:?}; leave `hidden_layer_sizes` out to keep the network's"
        )));
    }
    let activation = p.str("activation");
    if let Some(first) = net.layers[..n - 1].first()
        && p.was_given("activation")
        && first.activation.name() != activation
    {
        return Err(PluginError::params(format!(
            "mlp: `activation` is \"{activation}\" but `init_network`'s hidden layers are \
             \"{}\"; leave `activation` out to keep the network's",
            first.activation.name()
        )));
    }
    let refuse = |key: &str, value: &str, why: &str| {
        PluginError::params(format!(
            "mlp: `{key}` = {value} is not supported with `init_network`, which {why}"
        ))
    };
    if p.str("solver") != "adam" {
        let solver = p.str("solver");
        return Err(refuse(
            "solver",
            &format!("\"{solver}\""),
            "trains with adam",
        ));
    }
    if p.bool("early_stopping") {
        return Err(refuse(
            "early_stopping",
            "true",
            "trains exactly max_iter epochs",
        ));
    }
    if p.bool("quantization_aware") {
        return Err(refuse("quantization_aware", "true", "trains in float only"));
    }
    Ok(Some(net))
}

/// The parameters as the model summary shows them: `init_network`, when
/// given, as its layer widths and length rather than the whole text (it
/// would double the model's size).
pub fn summary_params(p: &Params, init: Option<&DenseNetwork>) -> Value {
    let mut json = p.to_json();
    if let (Some(net), Some(text)) = (init, p.get("init_network").as_str()) {
        let mut widths = vec![net.n_features()];
        widths.extend(net.layers.iter().map(|l| l.outputs as usize));
        json["init_network"] = Value::from(format!(
            "dense network {widths:?} ({} hex digits)",
            text.len()
        ));
    }
    json
}

/// The `mlp` learner's `fit` with `init_network`: `init` trained further
/// on `data` for `max_iter` epochs of adam at `learning_rate_init`, with
/// `batch_size`, `random_state` and the sample weights, and with its
/// zero weights held at zero when `keep_zeros`. Its layers, activations
/// and input transformation are kept; there is no early stopping, `tol`,
/// L2 penalty or validation score.
///
/// # Errors
/// Data that does not fit `init` (columns, task, class count, a missing
/// value without a fill), a loss that diverges, or cancellation.
pub fn fit_from(
    cfg: &Config,
    init: &DenseNetwork,
    ctx: &HostContextRef<'_>,
    data: &TrainData<'_>,
) -> Result<MlpModel, PluginError> {
    let names: Vec<String> = data.feature_names.iter().map(|n| n.to_string()).collect();
    let (p, cols) = (init.n_features(), data.x.cols());
    if p != cols {
        return Err(PluginError::input(format!(
            "mlp: `init_network` takes {p} features, the training data has {cols}"
        )));
    }
    let task = data.task;
    let (classes, outputs) = (init.n_classes, init.n_outputs());
    if task.is_classification() && classes != task.n_classes {
        return Err(PluginError::input(format!(
            "mlp: `init_network` classifies {classes} classes, the training data has {}{}",
            task.n_classes,
            if classes == 0 {
                " (the network is a regressor)"
            } else {
                ""
            }
        )));
    }
    if !task.is_classification() && (classes != 0 || outputs != task.n_targets()) {
        return Err(PluginError::input(format!(
            "mlp: `init_network` {}, the training data is regression with {} target(s)",
            if classes > 0 {
                format!("classifies {classes} classes")
            } else {
                format!("predicts {outputs} values")
            },
            task.n_targets()
        )));
    }
    let scaling = Scaling {
        mean: init.input_mean.to_vec(),
        scale: init.input_scale.to_vec(),
        fill: init.input_fill.to_vec(),
    };
    if let Some(m) = scaling.first_unfillable(data.x.as_slice(), p) {
        return Err(m.error(&names, "training data"));
    }
    let mask: Option<Vec<Vec<bool>>> = cfg.keep_zeros.then(|| {
        init.layers
            .iter()
            .map(|l| l.weights.iter().map(|&w| w != 0.0).collect())
            .collect()
    });
    let opts = FineTune {
        epochs: cfg.max_iter,
        learning_rate_init: cfg.learning_rate_init,
        batch_size: cfg.batch_size.unwrap_or(200),
        random_state: cfg.random_state.unwrap_or_else(entropy_seed),
    };
    let weights = data.weights.into_option().map(|w| w.as_slice());
    let (tuned, curve) = fine_tune(
        init,
        mask.as_deref(),
        data.x,
        data.y.as_slice(),
        weights,
        &opts,
        ctx,
    )?;
    let (best_epoch, best_loss) = curve.iter().enumerate().fold(
        (0, f64::INFINITY),
        |(e, b), (i, &l)| {
            if l < b { (i + 1, l) } else { (e, b) }
        },
    );
    let history = History {
        n_iter: curve.len(),
        best_epoch,
        best_loss: best_loss.is_finite().then_some(best_loss),
        samples: (data.x.rows() * curve.len()) as u64,
        loss_curve: curve,
        ..History::default()
    };
    Ok(MlpModel::new(
        Net::from_ir(&tuned)?,
        scaling,
        task,
        names,
        history,
        cfg.json.clone(),
    ))
}

#[cfg(test)]
mod tests;
