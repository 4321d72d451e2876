//! Losses: starting scores, gradients and hessians, loss values, and the
//! leaf refits of the losses whose best leaf value is a quantile.
//!
//! Raw scores are kept class-major (`raw[k * n + i]`, one block of `n` per
//! output) so that each output's tree reads its gradients contiguously.
//! Gradients and hessians are `f32` pairs (`gh[k * n + i]`), already
//! multiplied by the row's weight; histograms sum them in `f64`.

use rayon::prelude::*;
use tessera_core::ir::Link;

use super::params::LossKind;

/// Rows per parallel task when computing gradients or losses.
const CHUNK: usize = 16 * 1024;

/// A loss for a given task.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Loss {
    /// Which loss.
    pub kind: LossKind,
    /// Raw scores per row: the class count for multiclass, else 1.
    pub n_outputs: usize,
}

#[inline]
fn sigmoid(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

/// `log(1 + exp(x))` without overflow.
#[inline]
fn softplus(x: f64) -> f64 {
    if x > 30.0 {
        x
    } else if x < -30.0 {
        x.exp()
    } else {
        x.exp().ln_1p()
    }
}

/// The weighted `q`-quantile of `(value, weight)` pairs (reordered): with
/// equal weights, linear interpolation between order statistics (as numpy's
/// default); otherwise the smallest value whose cumulative weight reaches
/// `q` of the total. `0` when empty.
pub fn weighted_quantile(items: &mut [(f64, f64)], q: f64) -> f64 {
    if items.is_empty() {
        return 0.0;
    }
    items.sort_unstable_by(|a, b| a.0.total_cmp(&b.0));
    let first = items[0].1;
    if items.iter().all(|&(_, w)| w == first) {
        let pos = q * (items.len() - 1) as f64;
        let lo = pos.floor() as usize;
        let hi = (lo + 1).min(items.len() - 1);
        let t = pos - lo as f64;
        return items[lo].0 + (items[hi].0 - items[lo].0) * t;
    }
    let total: f64 = items.iter().map(|&(_, w)| w).sum();
    let mut acc = 0.0;
    for &(v, w) in items.iter() {
        acc += w;
        if acc >= q * total {
            return v;
        }
    }
    items[items.len() - 1].0
}

impl Loss {
    /// The loss for `kind` with `n_classes` classes (0 for regression).
    pub fn new(kind: LossKind, n_classes: usize) -> Self {
        let n_outputs = if kind == LossKind::LogLoss && n_classes > 2 {
            n_classes
        } else {
            1
        };
        Self { kind, n_outputs }
    }

    /// The link from raw scores to predictions.
    pub fn link(&self) -> Link {
        match (self.kind, self.n_outputs) {
            (LossKind::LogLoss, 1) => Link::Sigmoid,
            (LossKind::LogLoss, _) => Link::Softmax,
            _ => Link::Identity,
        }
    }

    /// Whether each row's hessian is its weight (every regression loss
    /// here): histograms then need not sum hessians separately.
    pub fn constant_hessian(&self) -> bool {
        self.kind != LossKind::LogLoss
    }

    /// Whether leaf values are refitted from the leaf's residuals after the
    /// tree is grown (absolute error, huber, quantile).
    pub fn refits_leaves(&self) -> bool {
        matches!(
            self.kind,
            LossKind::Absolute | LossKind::Huber(_) | LossKind::Quantile(_)
        )
    }

    /// The constant raw scores that minimise the loss on `(y, w)`.
    pub fn base_score(&self, y: &[f32], w: &[f32]) -> Vec<f64> {
        let total: f64 = w
            .iter()
            .map(|&w| f64::from(w))
            .sum::<f64>()
            .max(f64::MIN_POSITIVE);
        let quantile = |q: f64| {
            let mut items: Vec<(f64, f64)> = y
                .iter()
                .zip(w)
                .map(|(&y, &w)| (f64::from(y), f64::from(w)))
                .collect();
            weighted_quantile(&mut items, q)
        };
        match self.kind {
            LossKind::Squared => {
                let s: f64 = y
                    .iter()
                    .zip(w)
                    .map(|(&y, &w)| f64::from(y) * f64::from(w))
                    .sum();
                vec![s / total]
            }
            LossKind::Absolute | LossKind::Huber(_) => vec![quantile(0.5)],
            LossKind::Quantile(q) => vec![quantile(q)],
            LossKind::LogLoss => {
                let k = self.n_outputs.max(2);
                let mut per = vec![0.0f64; k];
                for (&y, &w) in y.iter().zip(w) {
                    per[y as usize] += f64::from(w);
                }
                let eps = 1e-15;
                let p: Vec<f64> = per
                    .iter()
                    .map(|&c| (c / total).clamp(eps, 1.0 - eps))
                    .collect();
                if self.n_outputs == 1 {
                    vec![(p[1] / (1.0 - p[1])).ln()]
                } else {
                    let logs: Vec<f64> = p.iter().map(|p| p.ln()).collect();
                    let mean = logs.iter().sum::<f64>() / k as f64;
                    logs.iter().map(|l| l - mean).collect()
                }
            }
        }
    }

    /// Huber's clipping threshold: the `alpha`-quantile of the absolute
    /// residuals `|y - raw|`. `0` for other losses.
    pub fn huber_delta(&self, y: &[f32], w: &[f32], raw: &[f64]) -> f64 {
        let LossKind::Huber(alpha) = self.kind else {
            return 0.0;
        };
        let mut items: Vec<(f64, f64)> = y
            .iter()
            .zip(raw)
            .zip(w)
            .map(|((&y, &r), &w)| ((f64::from(y) - r).abs(), f64::from(w)))
            .collect();
        weighted_quantile(&mut items, alpha)
    }

    /// Gradients and hessians of every row (`gh`, class-major), in
    /// parallel on the current rayon pool. `delta` is Huber's threshold.
    pub fn gradients(&self, y: &[f32], w: &[f32], raw: &[f64], delta: f64, gh: &mut [[f32; 2]]) {
        let n = y.len();
        let k = self.n_outputs;
        debug_assert_eq!(raw.len(), n * k);
        debug_assert_eq!(gh.len(), n * k);
        if k == 1 {
            let kind = self.kind;
            gh.par_chunks_mut(CHUNK)
                .zip(y.par_chunks(CHUNK))
                .zip(raw.par_chunks(CHUNK).zip(w.par_chunks(CHUNK)))
                .for_each(|((gh, y), (raw, w))| {
                    for (((gh, &y), &r), &w) in gh.iter_mut().zip(y).zip(raw).zip(w) {
                        *gh = one_gradient(kind, f64::from(y), r, f64::from(w), delta);
                    }
                });
            return;
        }
        // Multiclass: each row's softmax needs all its scores. Each task
        // takes a block of rows and writes that block of every class.
        let mut blocks: Vec<Vec<&mut [[f32; 2]]>> = (0..n.div_ceil(CHUNK))
            .map(|_| Vec::with_capacity(k))
            .collect();
        for class in gh.chunks_mut(n) {
            for (b, piece) in class.chunks_mut(CHUNK).enumerate() {
                blocks[b].push(piece);
            }
        }
        blocks.into_par_iter().enumerate().for_each(|(b, mut out)| {
            let start = b * CHUNK;
            let mut p = vec![0.0f64; k];
            for j in 0..out[0].len() {
                let i = start + j;
                let mut max = f64::NEG_INFINITY;
                for (c, p) in p.iter_mut().enumerate() {
                    *p = raw[c * n + i];
                    max = max.max(*p);
                }
                let mut sum = 0.0;
                for p in p.iter_mut() {
                    *p = (*p - max).exp();
                    sum += *p;
                }
                let wi = f64::from(w[i]);
                let yi = y[i] as usize;
                for (c, (&pc, o)) in p.iter().zip(out.iter_mut()).enumerate() {
                    let pc = pc / sum;
                    let target = if c == yi { 1.0 } else { 0.0 };
                    o[j] = [
                        (wi * (pc - target)) as f32,
                        (wi * (pc * (1.0 - pc)).max(1e-16)) as f32,
                    ];
                }
            }
        });
    }

    /// The weighted mean loss over `rows` (all rows when `None`) of raw
    /// scores `raw` (class-major, `y.len()` per output).
    pub fn mean_loss(
        &self,
        y: &[f32],
        w: &[f32],
        raw: &[f64],
        delta: f64,
        rows: Option<&[u32]>,
    ) -> f64 {
        let n = y.len();
        let one = |i: usize| -> (f64, f64) {
            let wi = f64::from(w[i]);
            let yi = f64::from(y[i]);
            let l = match self.kind {
                LossKind::Squared => 0.5 * (yi - raw[i]).powi(2),
                LossKind::Absolute => (yi - raw[i]).abs(),
                LossKind::Huber(_) => {
                    let r = (yi - raw[i]).abs();
                    if r <= delta {
                        0.5 * r * r
                    } else {
                        delta * (r - 0.5 * delta)
                    }
                }
                LossKind::Quantile(q) => {
                    let r = yi - raw[i];
                    if r >= 0.0 { q * r } else { (q - 1.0) * r }
                }
                LossKind::LogLoss if self.n_outputs == 1 => softplus(raw[i]) - yi * raw[i],
                LossKind::LogLoss => {
                    let k = self.n_outputs;
                    let max = (0..k)
                        .map(|c| raw[c * n + i])
                        .fold(f64::NEG_INFINITY, f64::max);
                    let lse = max
                        + (0..k)
                            .map(|c| (raw[c * n + i] - max).exp())
                            .sum::<f64>()
                            .ln();
                    lse - raw[(yi as usize) * n + i]
                }
            };
            (wi * l, wi)
        };
        // Chunk sums added in order: the same total on any thread count.
        let parts: Vec<(f64, f64)> = match rows {
            Some(rows) => rows
                .par_chunks(CHUNK)
                .map(|c| c.iter().map(|&i| one(i as usize)).fold((0.0, 0.0), add))
                .collect(),
            None => (0..n.div_ceil(CHUNK))
                .into_par_iter()
                .map(|c| {
                    (c * CHUNK..((c + 1) * CHUNK).min(n))
                        .map(one)
                        .fold((0.0, 0.0), add)
                })
                .collect(),
        };
        let (sum, total) = parts.into_iter().fold((0.0, 0.0), add);
        if total > 0.0 { sum / total } else { 0.0 }
    }

    /// The best leaf value (before shrinkage) for the residuals
    /// `y - raw` of a leaf's rows, for losses that refit leaves.
    pub fn refit(&self, residuals: &mut [(f64, f64)], delta: f64) -> f64 {
        match self.kind {
            LossKind::Absolute => weighted_quantile(residuals, 0.5),
            LossKind::Quantile(q) => weighted_quantile(residuals, q),
            LossKind::Huber(_) => {
                let median = weighted_quantile(residuals, 0.5);
                let (mut s, mut t) = (0.0, 0.0);
                for &(r, w) in residuals.iter() {
                    let d = r - median;
                    s += w * d.signum() * d.abs().min(delta);
                    t += w;
                }
                median + if t > 0.0 { s / t } else { 0.0 }
            }
            _ => 0.0,
        }
    }
}

fn add(a: (f64, f64), b: (f64, f64)) -> (f64, f64) {
    (a.0 + b.0, a.1 + b.1)
}

/// Gradient and hessian of one row for a single-output loss.
#[inline]
fn one_gradient(kind: LossKind, y: f64, raw: f64, w: f64, delta: f64) -> [f32; 2] {
    let (g, h) = match kind {
        LossKind::Squared => (raw - y, 1.0),
        LossKind::Absolute => ((raw - y).signum() * f64::from(u8::from(raw != y)), 1.0),
        LossKind::Huber(_) => {
            let r = y - raw;
            (
                -(if r.abs() <= delta {
                    r
                } else {
                    delta * r.signum()
                }),
                1.0,
            )
        }
        LossKind::Quantile(q) => (if y < raw { 1.0 - q } else { -q }, 1.0),
        LossKind::LogLoss => {
            let p = sigmoid(raw);
            (p - y, (p * (1.0 - p)).max(1e-16))
        }
    };
    [(w * g) as f32, (w * h) as f32]
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The loss of one row with one output.
    fn loss1(l: &Loss, y: f32, raw: f64, delta: f64) -> f64 {
        l.mean_loss(&[y], &[1.0], &[raw], delta, None)
    }

    #[test]
    fn gradients_are_derivatives_of_the_loss() {
        let eps = 1e-5;
        for kind in [
            LossKind::Squared,
            LossKind::Absolute,
            LossKind::Huber(0.9),
            LossKind::Quantile(0.3),
            LossKind::LogLoss,
        ] {
            let l = Loss::new(kind, 2);
            for (y, raw) in [(0.0f32, 0.7), (1.0, -1.3), (1.0, 2.5), (0.0, -0.2)] {
                let delta = 1.0;
                let mut gh = [[0.0f32; 2]];
                l.gradients(&[y], &[1.0], &[raw], delta, &mut gh);
                let numeric =
                    (loss1(&l, y, raw + eps, delta) - loss1(&l, y, raw - eps, delta)) / (2.0 * eps);
                assert!(
                    (f64::from(gh[0][0]) - numeric).abs() < 1e-3,
                    "{kind:?} y={y} raw={raw}: {} vs {numeric}",
                    gh[0][0]
                );
                if kind == LossKind::LogLoss {
                    let mut g2 = [[0.0f32; 2]];
                    l.gradients(&[y], &[1.0], &[raw + eps], delta, &mut g2);
                    let h = (f64::from(g2[0][0]) - f64::from(gh[0][0])) / eps;
                    assert!(
                        (f64::from(gh[0][1]) - h).abs() < 1e-2,
                        "{h} vs {}",
                        gh[0][1]
                    );
                } else {
                    assert_eq!(gh[0][1], 1.0);
                }
            }
        }
    }

    #[test]
    fn weights_scale_gradients_and_hessians() {
        let l = Loss::new(LossKind::LogLoss, 2);
        let (mut a, mut b) = ([[0.0f32; 2]], [[0.0f32; 2]]);
        l.gradients(&[1.0], &[1.0], &[0.3], 0.0, &mut a);
        l.gradients(&[1.0], &[2.5], &[0.3], 0.0, &mut b);
        assert!((b[0][0] - 2.5 * a[0][0]).abs() < 1e-6);
        assert!((b[0][1] - 2.5 * a[0][1]).abs() < 1e-6);
    }

    #[test]
    fn multiclass_gradients_match_softmax_derivatives() {
        let l = Loss::new(LossKind::LogLoss, 3);
        assert_eq!(l.n_outputs, 3);
        // Two rows, class-major raw scores.
        let y = [2.0f32, 0.0];
        let raw = [0.1, -0.4, 1.2, 0.3, 0.5, -2.0];
        let mut gh = vec![[0.0f32; 2]; 6];
        l.gradients(&y, &[1.0, 1.0], &raw, 0.0, &mut gh);
        let eps = 1e-6;
        for c in 0..3 {
            for i in 0..2 {
                let mut up = raw;
                up[c * 2 + i] += eps;
                let mut down = raw;
                down[c * 2 + i] -= eps;
                let num = (l.mean_loss(&y, &[1.0, 1.0], &up, 0.0, None)
                    - l.mean_loss(&y, &[1.0, 1.0], &down, 0.0, None))
                    / (2.0 * eps)
                    * 2.0;
                assert!((f64::from(gh[c * 2 + i][0]) - num).abs() < 1e-4, "{c} {i}");
            }
        }
        // Gradients of a row sum to zero.
        for i in 0..2 {
            let s: f32 = (0..3).map(|c| gh[c * 2 + i][0]).sum();
            assert!(s.abs() < 1e-6);
        }
    }

    #[test]
    fn multiclass_gradients_of_many_rows_land_in_their_class_blocks() {
        let (n, k) = (2 * CHUNK + 123, 3);
        let l = Loss::new(LossKind::LogLoss, k);
        let y: Vec<f32> = (0..n).map(|i| (i % k) as f32).collect();
        let w: Vec<f32> = (0..n).map(|i| 1.0 + (i % 5) as f32).collect();
        let raw: Vec<f64> = (0..n * k)
            .map(|i| ((i * 37) % 11) as f64 / 5.0 - 1.0)
            .collect();
        let mut gh = vec![[0.0f32; 2]; n * k];
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(2)
            .build()
            .unwrap();
        pool.install(|| l.gradients(&y, &w, &raw, 0.0, &mut gh));
        for i in [0, 1, CHUNK - 1, CHUNK, CHUNK + 7, n - 1] {
            let scores: Vec<f64> = (0..k).map(|c| raw[c * n + i]).collect();
            let max = scores.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            let s: f64 = scores.iter().map(|v| (v - max).exp()).sum();
            for c in 0..k {
                let p = (scores[c] - max).exp() / s;
                let t = if c == y[i] as usize { 1.0 } else { 0.0 };
                let g = f64::from(w[i]) * (p - t);
                assert!(
                    (f64::from(gh[c * n + i][0]) - g).abs() < 1e-5,
                    "row {i} class {c}"
                );
            }
        }
    }

    #[test]
    fn base_scores_minimise_the_loss() {
        let y = [1.0f32, 2.0, 3.0, 10.0];
        let w = [1.0f32; 4];
        assert_eq!(
            Loss::new(LossKind::Squared, 0).base_score(&y, &w),
            vec![4.0]
        );
        assert_eq!(
            Loss::new(LossKind::Absolute, 0).base_score(&y, &w),
            vec![2.5]
        );
        assert_eq!(
            Loss::new(LossKind::Quantile(0.0), 0).base_score(&y, &w),
            vec![1.0]
        );
        let b = Loss::new(LossKind::LogLoss, 2).base_score(&[0.0, 1.0, 1.0, 1.0], &w);
        assert!((sigmoid(b[0]) - 0.75).abs() < 1e-12);
        let m = Loss::new(LossKind::LogLoss, 3).base_score(&[0.0, 1.0, 1.0, 2.0], &w);
        let e: Vec<f64> = m.iter().map(|v| v.exp()).collect();
        let s: f64 = e.iter().sum();
        assert!((e[1] / s - 0.5).abs() < 1e-12);
    }

    #[test]
    fn quantiles_and_refits() {
        let mut items = vec![(3.0, 1.0), (1.0, 1.0), (2.0, 1.0)];
        assert_eq!(weighted_quantile(&mut items, 0.5), 2.0);
        let mut items = vec![(1.0, 1.0), (2.0, 5.0), (3.0, 1.0)];
        assert_eq!(weighted_quantile(&mut items, 0.5), 2.0);
        let mut items = vec![(1.0, 1.0), (2.0, 1.0), (9.0, 1.0)];
        let huber = Loss::new(LossKind::Huber(0.9), 0);
        // Median 2; deviations -1, 0, 7 clipped at 1: mean 0.
        assert_eq!(huber.refit(&mut items, 1.0), 2.0);
        let y = [0.0f32, 1.0, 2.0, 10.0];
        let d = huber.huber_delta(&y, &[1.0; 4], &[0.0; 4]);
        assert!(d > 2.0 && d < 10.0);
    }
}
