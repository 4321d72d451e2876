//! The boosting loop.
//!
//! Features are binned once. Each round computes every row's gradients and
//! hessians from the current raw scores, grows one tree per output on them
//! (on a row sample with `subsample`, a column sample with `max_features`),
//! refits leaf values for the quantile-type losses, and adds the tree to
//! the raw scores of the training rows (through the leaves' row ranges, no
//! tree walk) and of the validation rows. Everything parallel runs in one
//! pool sized by the host's thread budget.

use std::borrow::Cow;

use rayon::prelude::*;
use tessera_core::{
    HostContextRef, PluginError, TrainData,
    params::Params,
    plugin::{LearnerImpl, ModelImpl, with_thread_budget},
};
use tessera_trees::{
    BinnedData,
    class_weight::{ClassWeight, balanced},
    rng::{Rng, entropy_seed, tree_seed},
};

use super::{
    grow::{Data, GrowParams, Grower, Grown},
    hist::RowBins,
    loss::Loss,
    model::{GbdtModel, History},
    params::{Config, Early, LossKind, MIN_HESSIAN},
    tree::Tree,
};

/// Rows above which `early_stopping = "auto"` turns early stopping on.
const AUTO_EARLY_ROWS: usize = 10_000;
/// Training rows the learning curve's training loss is computed on.
const CURVE_ROWS: usize = 10_000;

/// The `gradient_boosting` learner.
pub struct GbdtLearner {
    cfg: Config,
}

/// Builds the learner from checked parameters.
///
/// # Errors
/// Conflicting parameters.
pub fn create(p: Params) -> Result<Box<dyn LearnerImpl>, PluginError> {
    Ok(Box::new(GbdtLearner {
        cfg: Config::from_params(&p)?,
    }))
}

impl LearnerImpl for GbdtLearner {
    fn fit(
        &self,
        ctx: &HostContextRef<'_>,
        data: &TrainData<'_>,
    ) -> Result<Box<dyn ModelImpl>, PluginError> {
        let threads = ctx.threads().max(1) as usize;
        let model = with_thread_budget(threads, || fit(&self.cfg, ctx, data, threads))??;
        Ok(Box::new(model))
    }
}

/// Rows `rows` of the row-major `x` with `p` columns.
fn gather(x: &[f32], p: usize, rows: &[usize]) -> Vec<f32> {
    let mut out = Vec::with_capacity(rows.len() * p);
    for &r in rows {
        out.extend_from_slice(&x[r * p..(r + 1) * p]);
    }
    out
}

/// Splits `0..n` into training and held-out rows: `fraction` of each
/// class held out for classification (at least one row of every class
/// with two or more), `ceil(fraction * n)` otherwise.
fn holdout_split(
    y: &[f32],
    n_classes: usize,
    fraction: f64,
    rng: &mut Rng,
) -> (Vec<usize>, Vec<usize>) {
    let n = y.len();
    let mut groups: Vec<Vec<usize>> = if n_classes > 0 {
        let mut g = vec![Vec::new(); n_classes];
        for (i, &c) in y.iter().enumerate() {
            g[c as usize].push(i);
        }
        g
    } else {
        vec![(0..n).collect()]
    };
    let mut held = Vec::new();
    for g in &mut groups {
        // Fisher-Yates shuffle, then the first rows are held out.
        for i in (1..g.len()).rev() {
            g.swap(i, rng.below(i + 1));
        }
        let k = if n_classes > 0 {
            let k = (fraction * g.len() as f64).round() as usize;
            if g.len() >= 2 {
                k.clamp(1, g.len() - 1)
            } else {
                0
            }
        } else {
            ((fraction * g.len() as f64).ceil() as usize).min(g.len().saturating_sub(1))
        };
        held.extend_from_slice(&g[..k]);
    }
    let mut is_held = vec![false; n];
    held.iter().for_each(|&i| is_held[i] = true);
    held.sort_unstable();
    let train = (0..n).filter(|&i| !is_held[i]).collect();
    (train, held)
}

/// `k` distinct values of `0..n`, ascending.
fn sample_without_replacement(n: usize, k: usize, rng: &mut Rng) -> Vec<usize> {
    if k >= n {
        return (0..n).collect();
    }
    // Selection sampling: keeps each item with probability needed / left.
    let mut out = Vec::with_capacity(k);
    for i in 0..n {
        if rng.below(n - i) < k - out.len() {
            out.push(i);
            if out.len() == k {
                break;
            }
        }
    }
    out
}

/// Validation rows, binned like the training rows, with their scores.
struct Valid {
    bins: BinnedData,
    y: Vec<f32>,
    w: Vec<f32>,
    raw: Vec<f64>,
}

impl Valid {
    /// The rows of the row-major `x` binned as `train` was.
    fn new(train: &BinnedData, x: &[f32], y: Vec<f32>, w: Option<Vec<f32>>) -> Self {
        let n = y.len();
        Self {
            bins: train.bin_like(x, n),
            w: w.unwrap_or_else(|| vec![1.0; n]),
            y,
            raw: Vec::new(),
        }
    }

    /// Sets every row's raw scores to `base` (class-major).
    fn start(&mut self, base: &[f64]) {
        let n = self.y.len();
        self.raw = base
            .iter()
            .flat_map(|&b| std::iter::repeat_n(b, n))
            .collect();
    }

    /// Adds `tree`, serving output `c`, to the raw scores.
    fn add(&mut self, tree: &Tree, c: usize) {
        let n = self.y.len();
        let bins = &self.bins;
        self.raw[c * n..(c + 1) * n]
            .par_iter_mut()
            .enumerate()
            .with_min_len(16 * 1024)
            .for_each(|(i, r)| *r += f64::from(tree.value_binned(bins, i)));
    }
}

/// The training targets, weights and current scores of one output.
struct Residuals<'a> {
    y: &'a [f32],
    w: &'a [f32],
    raw: &'a [f64],
}

impl Residuals<'_> {
    /// Sets each leaf's value to the loss's best constant for its rows'
    /// residuals `y - raw`, times the learning rate (absolute error,
    /// quantile and huber losses; `buf` is scratch).
    fn refit_leaves(
        &self,
        grown: &mut Grown,
        idx: &[u32],
        loss: &Loss,
        learning_rate: f64,
        delta: f64,
        buf: &mut Vec<(f64, f64)>,
    ) {
        for leaf in &grown.leaves {
            buf.clear();
            buf.extend(idx[leaf.lo..leaf.hi].iter().map(|&i| {
                let i = i as usize;
                (f64::from(self.y[i]) - self.raw[i], f64::from(self.w[i]))
            }));
            let v = learning_rate * loss.refit(buf, delta).clamp(leaf.bounds.0, leaf.bounds.1);
            grown.tree.nodes[leaf.node].value = v as f32;
        }
    }
}

/// Each row's weight: its sample weight (1 without) times its class's
/// weight.
fn row_weights(cfg: &Config, data: &TrainData<'_>, n_classes: usize) -> Vec<f32> {
    let y: &[f32] = &data.y;
    let mut w: Vec<f32> = match data.weights.into_option() {
        Some(w) => w.to_vec(),
        None => vec![1.0; y.len()],
    };
    if n_classes == 0 {
        return w;
    }
    let per_class = match &cfg.class_weight {
        ClassWeight::None | ClassWeight::BalancedSubsample => return w,
        ClassWeight::Balanced => balanced(
            y.iter().map(|&c| c as usize),
            std::iter::repeat(1.0),
            n_classes,
        ),
        ClassWeight::Given(given) => {
            let mut v = vec![1.0; n_classes];
            for &(c, wc) in given {
                if let Some(s) = v.get_mut(c) {
                    *s = wc;
                }
            }
            v
        }
    };
    for (w, &c) in w.iter_mut().zip(y) {
        *w *= per_class[c as usize] as f32;
    }
    w
}

fn fit(
    cfg: &Config,
    ctx: &HostContextRef<'_>,
    data: &TrainData<'_>,
    threads: usize,
) -> Result<GbdtModel, PluginError> {
    data.validate()?;
    let task = data.task;
    let kind = cfg.loss_for(task)?;
    let n_classes = if task.is_classification() {
        task.n_classes as usize
    } else {
        0
    };
    let loss = Loss::new(kind, n_classes);
    let k = loss.n_outputs;
    let p = data.x.cols();
    let x = data.x.as_slice();
    let y_all: &[f32] = &data.y;
    let seed = cfg.random_state.unwrap_or_else(entropy_seed);
    let mut rng = Rng::new(tree_seed(seed, u64::MAX));

    let w_all = row_weights(cfg, data, n_classes);

    // Validation data: given, split off, or none.
    let given = data.valid.into_option();
    let early = match cfg.early_stopping {
        Early::On => true,
        Early::Off => false,
        Early::Auto => given.is_some() || y_all.len() > AUTO_EARLY_ROWS,
    };
    let (x_train, y_train, w_train, held, source) = match given {
        Some(_) => (Cow::Borrowed(x), y_all.to_vec(), w_all, None, "given"),
        None if early => {
            let (train, held) = holdout_split(y_all, n_classes, cfg.validation_fraction, &mut rng);
            if held.is_empty() || train.is_empty() {
                return Err(PluginError::input(format!(
                    "gradient_boosting: {} rows are too few to hold out validation_fraction = {} \
                     for early stopping; set early_stopping = false or give more rows",
                    y_all.len(),
                    cfg.validation_fraction
                )));
            }
            let yt = train.iter().map(|&i| y_all[i]).collect();
            let wt = train.iter().map(|&i| w_all[i]).collect();
            (
                Cow::Owned(gather(x, p, &train)),
                yt,
                wt,
                Some(held),
                "split",
            )
        }
        None => (Cow::Borrowed(x), y_all.to_vec(), w_all, None, ""),
    };
    let n = y_train.len();
    if w_train.iter().all(|&w| w == 0.0) {
        return Err(PluginError::input(
            "gradient_boosting: every training row has weight 0",
        ));
    }

    let cols = BinnedData::from_rows(&x_train, n, p, cfg.max_bins, threads > 1);
    drop(x_train);

    let mut valid: Option<Valid> = match (given, &held) {
        (Some(v), _) => Some(Valid::new(
            &cols,
            v.x.as_slice(),
            v.y.to_vec(),
            v.weights.into_option().map(|w| w.to_vec()),
        )),
        (None, Some(h)) => Some(Valid::new(
            &cols,
            &gather(x, p, h),
            h.iter().map(|&i| y_all[i]).collect(),
            data.weights
                .into_option()
                .map(|w| h.iter().map(|&i| w[i]).collect()),
        )),
        _ => None,
    };

    let base = loss.base_score(&y_train, &w_train);
    let mut raw: Vec<f64> = base
        .iter()
        .flat_map(|&b| std::iter::repeat_n(b, n))
        .collect();
    if let Some(v) = valid.as_mut() {
        v.start(&base);
    }
    let mut gh = vec![[0.0f32; 2]; n * k];
    let curve_rows: Vec<u32> = sample_without_replacement(n, CURVE_ROWS, &mut rng)
        .into_iter()
        .map(|i| i as u32)
        .collect();
    let has_weights = w_train.iter().any(|&w| w != 1.0);
    let unit_hessian = loss.constant_hessian() && !has_weights;

    let grow_params = GrowParams {
        max_leaves: cfg.max_leaf_nodes.unwrap_or(usize::MAX),
        max_depth: cfg.max_depth.unwrap_or(usize::MAX),
        min_samples_leaf: cfg.min_samples_leaf.min(u32::MAX as usize) as u32,
        l2: cfg.l2,
        min_hessian: MIN_HESSIAN,
        learning_rate: cfg.learning_rate,
    };
    let monotonic = cfg.monotonic_for(&data.feature_names, k)?;
    let mut grower = Grower::new(grow_params, p).with_monotonic(monotonic);
    let n_bins: Vec<usize> = (0..p).map(|f| cols.mapper(f).n_bins()).collect();
    let gdata = Data {
        rows: RowBins {
            bins: cols.row_major(),
            n_features: p,
            n_bins: &n_bins,
        },
        cols: &cols,
    };
    let n_features_per_tree = cfg.max_features.of(p);
    let n_sample = ((cfg.subsample * n as f64).round() as usize).clamp(1, n);
    let mut gains = vec![0.0f64; p];
    let mut splits = vec![0u64; p];
    let mut trees = Vec::with_capacity(cfg.n_estimators * k);
    let mut history = History {
        valid_source: if valid.is_some() {
            source.to_string()
        } else {
            String::new()
        },
        ..History::default()
    };
    let mut idx: Vec<u32> = Vec::with_capacity(n);
    let mut inbag = vec![true; n];
    let mut residuals: Vec<(f64, f64)> = Vec::new();

    for round in 0..cfg.n_estimators {
        if ctx.is_cancelled() {
            return Err(PluginError::cancelled());
        }
        let delta = loss.huber_delta(&y_train, &w_train, &raw);
        loss.gradients(&y_train, &w_train, &raw, delta, &mut gh);
        let mut round_rng = Rng::new(tree_seed(seed, round as u64));
        let sample: Option<Vec<usize>> =
            (n_sample < n).then(|| sample_without_replacement(n, n_sample, &mut round_rng));
        if let Some(s) = &sample {
            inbag.fill(false);
            s.iter().for_each(|&i| inbag[i] = true);
        }
        for c in 0..k {
            idx.clear();
            match &sample {
                Some(s) => idx.extend(s.iter().map(|&i| i as u32)),
                None => idx.extend(0..n as u32),
            }
            let features: Option<Vec<usize>> = (n_features_per_tree < p)
                .then(|| sample_without_replacement(p, n_features_per_tree, &mut round_rng));
            let g = &gh[c * n..(c + 1) * n];
            let mut grown = grower.grow(
                &gdata,
                &mut idx,
                g,
                features.as_deref(),
                unit_hessian,
                &mut gains,
                &mut splits,
            );
            let raw_c = &mut raw[c * n..(c + 1) * n];
            if loss.refits_leaves() {
                let fit = Residuals {
                    y: &y_train,
                    w: &w_train,
                    raw: raw_c,
                };
                fit.refit_leaves(
                    &mut grown,
                    &idx,
                    &loss,
                    cfg.learning_rate,
                    delta,
                    &mut residuals,
                );
            }
            for leaf in &grown.leaves {
                let v = f64::from(grown.tree.nodes[leaf.node].value);
                for &i in &idx[leaf.lo..leaf.hi] {
                    raw_c[i as usize] += v;
                }
            }
            let tree = grown.tree;
            if sample.is_some() {
                raw_c
                    .par_iter_mut()
                    .enumerate()
                    .with_min_len(16 * 1024)
                    .filter(|(i, _)| !inbag[*i])
                    .for_each(|(i, r)| *r += f64::from(tree.value_binned(&cols, i)));
            }
            if let Some(v) = valid.as_mut() {
                v.add(&tree, c);
            }
            trees.push(tree);
        }
        history
            .train_loss
            .push(loss.mean_loss(&y_train, &w_train, &raw, delta, Some(&curve_rows)));
        if let Some(v) = &valid {
            history
                .valid_loss
                .push(loss.mean_loss(&v.y, &v.w, &v.raw, delta, None));
        }
        ctx.progress(round as u64 + 1, cfg.n_estimators as u64);
        if early
            && round + 1 < cfg.n_estimators
            && should_stop(&history.valid_loss, cfg.n_iter_no_change, cfg.tol)
        {
            history.stopped_early = true;
            break;
        }
    }

    let mut params = cfg.json.clone();
    params["random_state"] = serde_json::json!(seed);
    params["loss"] = serde_json::json!(kind.name());
    params["early_stopping"] = serde_json::json!(early);
    if let LossKind::Quantile(q) = kind {
        params["quantile"] = serde_json::json!(q);
    }
    Ok(GbdtModel {
        task,
        n_features: p,
        loss,
        base,
        trees,
        feature_names: data.feature_names.iter().map(|s| s.to_string()).collect(),
        gain: gains,
        splits,
        history,
        params,
        engine: Default::default(),
    })
}

/// scikit-learn's rule: stop when none of the last `patience` losses
/// improved on the loss just before them by more than `tol`.
pub fn should_stop(losses: &[f64], patience: usize, tol: f64) -> bool {
    if losses.len() <= patience {
        return false;
    }
    let reference = losses[losses.len() - patience - 1];
    !losses[losses.len() - patience..]
        .iter()
        .any(|&l| l < reference - tol)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn early_stopping_rule() {
        assert!(!should_stop(&[1.0, 0.9], 2, 0.0));
        assert!(!should_stop(&[1.0, 0.9, 0.8], 2, 0.0));
        assert!(should_stop(&[1.0, 0.9, 0.95, 0.91], 2, 0.0));
        // An improvement smaller than tol does not count.
        assert!(should_stop(&[1.0, 0.9, 0.899, 0.8995], 2, 0.01));
        assert!(!should_stop(&[1.0, 0.9, 0.95, 0.85], 2, 0.0));
    }

    #[test]
    fn holdout_is_stratified_and_disjoint() {
        let y: Vec<f32> = (0..1000)
            .map(|i| if i % 10 == 0 { 1.0 } else { 0.0 })
            .collect();
        let mut rng = Rng::new(3);
        let (train, held) = holdout_split(&y, 2, 0.1, &mut rng);
        assert_eq!(train.len() + held.len(), 1000);
        assert_eq!(held.iter().filter(|&&i| y[i] == 1.0).count(), 10);
        assert_eq!(held.len(), 100);
        let mut all: Vec<usize> = train.iter().chain(&held).copied().collect();
        all.sort_unstable();
        assert_eq!(all, (0..1000).collect::<Vec<_>>());
        let (t, h) = holdout_split(&y, 0, 0.25, &mut rng);
        assert_eq!((t.len(), h.len()), (750, 250));
    }

    #[test]
    fn sampling_without_replacement() {
        let mut rng = Rng::new(9);
        let s = sample_without_replacement(100, 30, &mut rng);
        assert_eq!(s.len(), 30);
        assert!(s.windows(2).all(|w| w[0] < w[1]));
        assert_eq!(
            sample_without_replacement(5, 9, &mut rng),
            vec![0, 1, 2, 3, 4]
        );
    }
}
