//! Minibatch training, as scikit-learn's `MLPClassifier` and
//! `MLPRegressor` train with `solver = "adam"` or `"sgd"`.
//!
//! Every minibatch is cut into parts of at most [`PART_ROWS`] rows. Each
//! part gathers its rows, runs forward and back through the network in
//! buffers of its own (made once, before the first epoch) and leaves its
//! gradient sums; the parts run in parallel within the host's thread
//! budget, and their sums are added in part order. The parts depend on
//! the batch size only, so a fixed seed gives the same model whatever
//! the thread count. The optimiser then takes one step over the flat
//! parameter vector, adding the L2 term as it goes. With
//! `quantization_aware`, the passes run on weights and layer inputs
//! rounded as 8-bit quantization will round them (`qat`).

use rayon::prelude::*;
use tessera_core::{
    HostContextRef, PluginError, TrainData,
    context::level,
    plugin::{
        seeds::{SplitMix, entropy_seed},
        with_thread_budget,
    },
};

use crate::{
    gemm::{Lhs, Out, matmul},
    loss::{Loss, argmax},
    model::{History, MlpModel},
    net::{Net, times_derivative},
    optim::Optimizer,
    params::{Config, Schedule, Solver},
    scaling::Scaling,
};

mod qat;
use qat::Qat;

/// Most rows of one part of a minibatch.
pub const PART_ROWS: usize = 64;
/// Rows per block when scoring the validation rows.
const SCORE_ROWS: usize = 256;
/// One part of a minibatch and its buffers.
pub(crate) struct Part {
    rows: usize,
    x: Vec<f32>,
    y: Vec<f32>,
    w: Option<Vec<f32>>,
    acts: Vec<Vec<f32>>,
    deltas: Vec<Vec<f32>>,
    grad: Vec<f32>,
    pub(crate) loss: f64,
    /// Largest magnitude of each layer's input (quantization-aware
    /// training).
    seen: Vec<f32>,
}

impl Part {
    pub(crate) fn new(net: &Net, weighted: bool, target_width: usize) -> Self {
        let layers = |_| {
            net.widths[1..]
                .iter()
                .map(|w| vec![0.0; PART_ROWS * w])
                .collect::<Vec<_>>()
        };
        Self {
            rows: 0,
            x: vec![0.0; PART_ROWS * net.n_inputs()],
            y: vec![0.0; PART_ROWS * target_width],
            w: weighted.then(|| vec![0.0; PART_ROWS]),
            acts: layers(()),
            deltas: layers(()),
            grad: vec![0.0; net.params.len()],
            loss: 0.0,
            seen: vec![0.0; net.slots().len()],
        }
    }

    /// Copies rows `idx` of the training set in.
    pub(crate) fn gather(&mut self, set: &Set<'_>, idx: &[usize]) {
        let p = set.cols;
        self.rows = idx.len();
        for (k, &r) in idx.iter().enumerate() {
            self.x[k * p..(k + 1) * p].copy_from_slice(&set.x[r * p..(r + 1) * p]);
            let yw = set.yw;
            self.y[k * yw..(k + 1) * yw].copy_from_slice(&set.y[r * yw..(r + 1) * yw]);
            if let (Some(w), Some(sw)) = (self.w.as_mut(), set.w) {
                w[k] = sw[r];
            }
        }
    }

    /// Forward and backward: leaves the gradient sums in `grad` and the
    /// weighted loss sum in `loss`. `wt` holds every layer's weights
    /// transposed (`outputs x inputs`), at the weights' places.
    pub(crate) fn gradient(&mut self, net: &Net, wt: &[f32], loss: Loss) {
        self.gradient_with(net, wt, loss, None);
    }

    /// [`Part::gradient`], with the layer inputs rounded as `qat` says
    /// when training quantization-aware (`net` is then [`Qat::net`]).
    fn gradient_with(&mut self, net: &Net, wt: &[f32], loss: Loss, qat: Option<&Qat>) {
        let rows = self.rows;
        let slots = net.slots();
        let last = slots.len() - 1;
        let x = &mut self.x[..rows * net.n_inputs()];
        match qat {
            Some(q) => q.forward(net, x, rows, &mut self.acts, &mut self.seen),
            None => net.forward(x, rows, &mut self.acts),
        }
        let k = slots[last].outputs;
        self.loss = loss.delta(
            &self.acts[last][..rows * k],
            &self.y[..rows * loss.target_width(k)],
            self.w.as_ref().map(|w| &w[..rows]),
            &mut self.deltas[last][..rows * k],
            k,
        );
        for (l, s) in slots.iter().enumerate().rev() {
            let input = if l == 0 {
                &self.x[..rows * s.inputs]
            } else {
                &self.acts[l - 1][..rows * s.inputs]
            };
            let (before, rest) = self.deltas.split_at_mut(l);
            let d = &rest[0][..rows * s.outputs];
            matmul(
                Lhs::transposed(input, rows, s.inputs),
                d,
                s.outputs,
                &mut self.grad[s.weights.clone()],
                Out::Set,
            );
            let gb = &mut self.grad[s.bias.clone()];
            gb.fill(0.0);
            for row in d.chunks_exact(s.outputs) {
                gb.iter_mut().zip(row).for_each(|(g, v)| *g += v);
            }
            if l > 0 {
                let prev = &mut before[l - 1][..rows * s.inputs];
                matmul(
                    Lhs::new(d, rows, s.outputs),
                    &wt[s.weights.clone()],
                    s.inputs,
                    prev,
                    Out::Set,
                );
                times_derivative(net.hidden, input, prev);
            }
        }
    }
}

impl AsRef<[f32]> for Part {
    fn as_ref(&self) -> &[f32] {
        &self.grad
    }
}

/// Rows to train or score on, already scaled.
pub(crate) struct Set<'a> {
    pub(crate) x: &'a [f32],
    /// Target values, `yw` per row.
    pub(crate) y: &'a [f32],
    pub(crate) w: Option<&'a [f32]>,
    pub(crate) cols: usize,
    pub(crate) yw: usize,
}

impl Set<'_> {
    fn rows(&self) -> usize {
        self.y.len() / self.yw
    }
}

/// Splits `0..n` into training and held-out rows: `fraction` of every
/// class held out for classification (`classes` holds the rows' class
/// indices; at least one row of each class with two or more),
/// `ceil(fraction * n)` rows otherwise.
fn holdout(
    n: usize,
    classes: Option<(&[f32], usize)>,
    fraction: f64,
    rng: &mut SplitMix,
) -> (Vec<usize>, Vec<usize>) {
    let n_classes = classes.map_or(0, |c| c.1);
    let mut groups: Vec<Vec<usize>> = vec![Vec::new(); n_classes.max(1)];
    match classes {
        Some((y, _)) => y
            .iter()
            .enumerate()
            .for_each(|(i, &c)| groups[c as usize].push(i)),
        None => groups[0].extend(0..n),
    }
    let mut held = vec![false; n];
    for g in &mut groups {
        shuffle(g, rng);
        let k = if n_classes > 0 {
            if g.len() >= 2 {
                ((fraction * g.len() as f64).round() as usize).clamp(1, g.len() - 1)
            } else {
                0
            }
        } else {
            ((fraction * g.len() as f64).ceil() as usize).min(g.len().saturating_sub(1))
        };
        g[..k].iter().for_each(|&i| held[i] = true);
    }
    (0..n).partition(|&i| !held[i])
}

/// Fisher-Yates.
pub(crate) fn shuffle(v: &mut [usize], rng: &mut SplitMix) {
    for i in (1..v.len()).rev() {
        v.swap(i, rng.below(i + 1));
    }
}

/// The score scikit-learn's `score` gives: accuracy for classifiers, R²
/// for regressors (the mean over the outputs, scikit-learn's
/// `uniform_average`).
fn score(net: &Net, set: &Set<'_>, loss: Loss, acts: &mut [Vec<f32>]) -> f64 {
    let (p, yw) = (set.cols, set.yw);
    let n = set.rows();
    let k = net.n_outputs();
    let last = acts.len() - 1;
    let mut mean = vec![0.0f64; yw];
    for t in set.y.chunks_exact(yw) {
        mean.iter_mut()
            .zip(t)
            .for_each(|(m, &t)| *m += f64::from(t));
    }
    mean.iter_mut().for_each(|m| *m /= n.max(1) as f64);
    let mut hits = 0usize;
    let (mut sse, mut sst) = (vec![0.0f64; yw], vec![0.0f64; yw]);
    for (b, xb) in set.x.chunks(SCORE_ROWS * p).enumerate() {
        let rows = xb.len() / p;
        net.forward(xb, rows, acts);
        let out = &acts[last][..rows * k];
        for (i, o) in out.chunks_exact(k).enumerate() {
            let r = b * SCORE_ROWS + i;
            let ty = &set.y[r * yw..(r + 1) * yw];
            match loss {
                Loss::Binary => hits += usize::from((o[0] > 0.5) == (ty[0] > 0.5)),
                Loss::Softmax => hits += usize::from(argmax(o) == ty[0] as usize),
                Loss::Squared => {
                    for j in 0..yw {
                        sse[j] += (f64::from(o[j]) - f64::from(ty[j])).powi(2);
                        sst[j] += (f64::from(ty[j]) - mean[j]).powi(2);
                    }
                }
            }
        }
    }
    match loss {
        Loss::Squared => {
            let r2 = sse
                .iter()
                .zip(&sst)
                .map(|(e, t)| if *t > 0.0 { 1.0 - e / t } else { 0.0 });
            r2.sum::<f64>() / yw as f64
        }
        _ => hits as f64 / n.max(1) as f64,
    }
}

/// Trains within the host's thread budget.
///
/// With `init_network`, continues from that network instead
/// ([`fit_from`](crate::finetune::fit_from)).
///
/// # Errors
/// Missing values without imputation, a single-class target, or
/// cancellation.
pub fn fit(
    cfg: &Config,
    ctx: &HostContextRef<'_>,
    data: &TrainData<'_>,
) -> Result<MlpModel, PluginError> {
    if let Some(init) = &cfg.init_network {
        return crate::finetune::fit_from(cfg, init, ctx, data);
    }
    let threads = ctx.threads().max(1) as usize;
    with_thread_budget(threads, || train(cfg, ctx, data, threads))?
}

fn train(
    cfg: &Config,
    ctx: &HostContextRef<'_>,
    data: &TrainData<'_>,
    threads: usize,
) -> Result<MlpModel, PluginError> {
    let task = data.task;
    let loss = Loss::for_task(task)?;
    let names: Vec<String> = data.feature_names.iter().map(|n| n.to_string()).collect();
    let (n, p) = (data.x.rows(), data.x.cols());
    let scaling = Scaling::fit(data.x, cfg.standardize, cfg.impute_mean)
        .map_err(|m| m.error(&names, "training data"))?;
    let x = scaling
        .apply(data.x.as_slice(), p)
        .map_err(|m| m.error(&names, "training data"))?;
    let y = data.y.as_slice();
    // Sample weights, scaled to average 1 so that they leave the step
    // size as it is.
    let weights: Option<Vec<f32>> = data.weights.into_option().map(|w| {
        let mean = w.iter().map(|&v| f64::from(v)).sum::<f64>() / n as f64;
        let k = if mean > 0.0 { (1.0 / mean) as f32 } else { 1.0 };
        w.iter().map(|&v| v * k).collect()
    });
    let seed = cfg.random_state.unwrap_or_else(entropy_seed);
    let mut rng = SplitMix::new(seed);

    // Validation rows: --valid when given, else a held-out share of the
    // training rows when stopping early.
    let outputs = loss.outputs(task);
    let yw = loss.target_width(outputs);
    let classes = task
        .is_classification()
        .then_some((y, task.n_classes as usize));
    let mut train_rows: Vec<usize> = (0..n).collect();
    let mut held: Option<(Vec<f32>, Vec<f32>)> = None;
    let mut valid_source = "";
    if let Some(v) = data.valid.into_option() {
        let vx = scaling
            .apply(v.x.as_slice(), p)
            .map_err(|m| m.error(&names, "validation data"))?;
        held = Some((vx, v.y.to_vec()));
        valid_source = "valid";
    } else if cfg.early_stopping {
        let (t, h) = holdout(n, classes, cfg.validation_fraction, &mut rng);
        if h.is_empty() || t.is_empty() {
            return Err(PluginError::input(format!(
                "mlp: early_stopping needs rows to hold out; {n} rows with \
                 validation_fraction = {} leave none",
                cfg.validation_fraction
            )));
        }
        let vx = h
            .iter()
            .flat_map(|&r| &x[r * p..(r + 1) * p])
            .copied()
            .collect();
        let vy = h
            .iter()
            .flat_map(|&r| &y[r * yw..(r + 1) * yw])
            .copied()
            .collect();
        held = Some((vx, vy));
        train_rows = t;
        valid_source = "split";
    }
    let valid = held.as_ref().map(|(vx, vy)| Set {
        x: vx,
        y: vy,
        w: None,
        cols: p,
        yw,
    });
    let set = Set {
        x: &x,
        y,
        w: weights.as_deref(),
        cols: p,
        yw,
    };

    let mut widths = vec![p];
    widths.extend_from_slice(&cfg.hidden);
    widths.push(outputs);
    let mut net = Net::init(widths, cfg.activation, loss.activation(), &mut rng);
    let n_train = train_rows.len();
    let batch = cfg.batch_size.unwrap_or(200).clamp(1, n_train);
    if cfg.batch_size.is_some_and(|b| b > n_train) {
        ctx.log(
            level::WARN,
            format!(
                "mlp: batch_size {batch} is more than the {n_train} training rows; using {n_train}"
            )
            .as_str()
            .into(),
        );
    }
    let max_parts = batch.div_ceil(PART_ROWS);
    let mut parts: Vec<Part> = (0..max_parts)
        .map(|_| Part::new(&net, weights.is_some(), yw))
        .collect();
    let mut wt = vec![0.0f32; net.params.len()];
    let mut qat = cfg.quantization_aware.then(|| Qat::new(&net, &x));
    let mut opt = Optimizer::new(cfg.solver, cfg.learning_rate_init, &net, cfg.alpha);
    let mut score_acts: Vec<Vec<f32>> = net.widths[1..]
        .iter()
        .map(|w| vec![0.0; SCORE_ROWS * w])
        .collect();

    let mut h = History {
        valid_source: valid_source.into(),
        ..History::default()
    };
    let (mut best_loss, mut best_score) = (f64::INFINITY, f64::NEG_INFINITY);
    let mut best_params: Option<Vec<f32>> = None;
    let mut no_improvement = 0usize;
    let mut samples = 0u64;
    for epoch in 0..cfg.max_iter {
        if ctx.is_cancelled() {
            return Err(PluginError::cancelled());
        }
        if cfg.shuffle {
            shuffle(&mut train_rows, &mut rng);
        }
        let mut total = 0.0f64;
        for idx in train_rows.chunks(batch) {
            let nb = idx.len();
            let used = nb.div_ceil(PART_ROWS);
            if let Some(q) = &mut qat {
                q.refresh(&net);
            }
            let hook = qat.as_ref();
            let fwd = hook.map_or(&net, |q| &q.net);
            fwd.transpose_weights(&mut wt);
            let work = |(k, part): (usize, &mut Part)| {
                part.gather(&set, &idx[k * nb / used..(k + 1) * nb / used]);
                part.gradient_with(fwd, &wt, loss, hook);
            };
            if threads > 1 && used > 1 {
                parts[..used].par_iter_mut().enumerate().for_each(work);
            } else {
                parts[..used].iter_mut().enumerate().for_each(work);
            }
            let squares = opt.step(&mut net.params, &parts[..used], nb, threads > 1);
            if let Some(q) = &mut qat {
                q.observe(parts[..used].iter().map(|p| &p.seen[..]));
            }
            let batch_loss = parts[..used].iter().map(|p| p.loss).sum::<f64>() / nb as f64
                + 0.5 * squares / nb as f64;
            total += batch_loss * nb as f64;
        }
        samples += n_train as u64;
        let epoch_loss = total / n_train as f64;
        if !epoch_loss.is_finite() {
            return Err(PluginError::input(format!(
                "mlp: the loss diverged (not finite) in epoch {}; lower learning_rate_init \
                 (now {})",
                epoch + 1,
                cfg.learning_rate_init
            )));
        }
        h.loss_curve.push(epoch_loss);
        if let Some(v) = &valid {
            h.validation_scores
                .push(score(&net, v, loss, &mut score_acts));
        }
        // scikit-learn's bookkeeping: count epochs that fail to improve by
        // tol, and keep the best validation weights when stopping early.
        if cfg.early_stopping {
            let s = *h.validation_scores.last().unwrap_or(&f64::NEG_INFINITY);
            no_improvement = if s < best_score + cfg.tol {
                no_improvement + 1
            } else {
                0
            };
            if s > best_score {
                best_score = s;
                h.best_epoch = epoch + 1;
                match &mut best_params {
                    Some(b) => b.copy_from_slice(&net.params),
                    None => best_params = Some(net.params.clone()),
                }
            }
        } else {
            no_improvement = if epoch_loss > best_loss - cfg.tol {
                no_improvement + 1
            } else {
                0
            };
            if epoch_loss < best_loss {
                best_loss = epoch_loss;
                h.best_epoch = epoch + 1;
            }
        }
        if let (Solver::Sgd { .. }, Schedule::InvScaling(power)) = (cfg.solver, cfg.schedule) {
            opt.lr = cfg.learning_rate_init / ((samples + 1) as f64).powf(power);
        }
        ctx.progress((epoch + 1) as u64, cfg.max_iter as u64);
        h.n_iter = epoch + 1;
        if no_improvement > cfg.n_iter_no_change {
            let adaptive =
                matches!(cfg.solver, Solver::Sgd { .. }) && cfg.schedule == Schedule::Adaptive;
            if adaptive && opt.lr > 1e-6 {
                opt.lr /= 5.0;
                no_improvement = 0;
            } else {
                h.stopped_early = true;
                break;
            }
        }
    }
    if !h.stopped_early && cfg.max_iter > 1 {
        ctx.log(
            level::INFO,
            format!(
                "mlp: trained the full max_iter = {} epochs without the loss settling (tol {}); \
                 more epochs may fit better",
                cfg.max_iter, cfg.tol
            )
            .as_str()
            .into(),
        );
    }
    if let Some(b) = best_params {
        net.params = b;
    }
    h.best_loss = best_loss.is_finite().then_some(best_loss);
    h.best_validation_score = best_score.is_finite().then_some(best_score);
    h.samples = samples;
    Ok(MlpModel::new(
        net,
        scaling,
        task,
        names,
        h,
        cfg.json.clone(),
    ))
}

#[cfg(test)]
mod tests;
