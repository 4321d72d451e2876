//! Training: the `linear` learner.
//!
//! tessera-core has already checked the data (`TrainData::validate`): shapes
//! agree, targets are finite, class targets are indices `0..n_classes` and
//! weights are finite and non-negative. What is left to the learner is its
//! own business: missing features, the maths, and honouring the context
//! (thread budget, cancellation, progress, log).

use tessera_core::{
    HostContextRef, PluginError, TrainData,
    context::level,
    plugin::{LearnerImpl, ModelImpl},
};

use crate::{
    model::LinearModel,
    parallel::map_blocks,
    params::LinearParams,
    solve::{NotPositiveDefinite, cholesky_solve, lbfgs},
};

/// The `linear` learner: parameters checked, ready to fit.
pub struct LinearLearner {
    params: LinearParams,
}

impl LinearLearner {
    /// A learner with `params`.
    pub fn new(params: LinearParams) -> Self {
        Self { params }
    }
}

impl LearnerImpl for LinearLearner {
    fn fit(
        &self,
        ctx: &HostContextRef<'_>,
        data: &TrainData<'_>,
    ) -> Result<Box<dyn ModelImpl>, PluginError> {
        let design = Design::new(data)?;
        let model = if data.task.is_classification() {
            fit_logistic(ctx, &design, data, &self.params)?
        } else {
            fit_ridge(ctx, &design, data, &self.params)?
        };
        Ok(Box::new(model))
    }
}

/// The training features as `f64`, missing values replaced by column means,
/// with the sample weights.
struct Design {
    /// `rows x cols`, row-major, no missing values.
    x: Vec<f64>,
    rows: usize,
    cols: usize,
    /// Mean of each column over its present values (0 when none is).
    means: Vec<f64>,
    /// One weight per row (1 without weights).
    weights: Vec<f64>,
    /// Sum of the weights, positive.
    total_weight: f64,
}

impl Design {
    fn new(data: &TrainData<'_>) -> Result<Self, PluginError> {
        let (rows, cols) = (data.x.rows(), data.x.cols());
        let raw = data.x.as_slice();

        let mut sums = vec![0.0f64; cols];
        let mut counts = vec![0usize; cols];
        for row in raw.chunks_exact(cols) {
            for (j, &v) in row.iter().enumerate() {
                if v.is_finite() {
                    sums[j] += f64::from(v);
                    counts[j] += 1;
                }
            }
        }
        let means: Vec<f64> = sums
            .iter()
            .zip(&counts)
            .map(|(&s, &c)| if c > 0 { s / c as f64 } else { 0.0 })
            .collect();

        let x = raw
            .chunks_exact(cols)
            .flat_map(|row| row.iter().zip(&means).map(|(&v, &m)| impute(v, m)))
            .collect();

        let weights: Vec<f64> = match data.weights.into_option() {
            Some(w) => w.iter().map(|&w| f64::from(w)).collect(),
            None => vec![1.0; rows],
        };
        let total_weight: f64 = weights.iter().sum();
        if total_weight <= 0.0 {
            return Err(PluginError::input("the sample weights sum to zero"));
        }
        Ok(Self {
            x,
            rows,
            cols,
            means,
            weights,
            total_weight,
        })
    }

    fn row(&self, i: usize) -> &[f64] {
        &self.x[i * self.cols..(i + 1) * self.cols]
    }

    /// Weighted mean of each column.
    fn weighted_means(&self) -> Vec<f64> {
        let mut m = vec![0.0; self.cols];
        for i in 0..self.rows {
            let w = self.weights[i];
            m.iter_mut().zip(self.row(i)).for_each(|(m, x)| *m += w * x);
        }
        m.iter_mut().for_each(|m| *m /= self.total_weight);
        m
    }
}

/// A feature value, or `mean` when it is missing (`NaN`) or infinite.
pub fn impute(v: f32, mean: f64) -> f64 {
    if v.is_finite() { f64::from(v) } else { mean }
}

/// How many blocks of rows to sum partial results of length `len` over:
/// fewer when each partial result is large, to bound the memory they take.
fn max_blocks_for(len: usize) -> usize {
    const PARTIALS_BYTES: usize = 64 << 20;
    (PARTIALS_BYTES / (len.max(1) * 8)).clamp(1, 32)
}

/// Adds up, in block order, vectors of length `len` computed per block of
/// rows: deterministic whatever the thread count.
fn sum_over_rows(
    threads: usize,
    rows: usize,
    len: usize,
    f: impl Fn(std::ops::Range<usize>, &mut [f64]) + Sync,
) -> Vec<f64> {
    let partials = map_blocks(threads, rows, len, max_blocks_for(len), |range| {
        let mut acc = vec![0.0; len];
        f(range, &mut acc);
        acc
    });
    let mut total = vec![0.0; len];
    for p in partials {
        total.iter_mut().zip(p).for_each(|(t, v)| *t += v);
    }
    total
}

/// Ridge regression: minimises `sum_i w_i (y_i - b0 - x_i.b)^2 + alpha |b|^2`
/// through the normal equations.
///
/// With an intercept the features and target are centred first (the
/// intercept is then not penalised). The system is scaled to a unit diagonal
/// before the Cholesky factorisation, which helps when features have very
/// different scales.
fn fit_ridge(
    ctx: &HostContextRef<'_>,
    design: &Design,
    data: &TrainData<'_>,
    params: &LinearParams,
) -> Result<LinearModel, PluginError> {
    let (n, p) = (design.rows, design.cols);
    let y: Vec<f64> = data.y.iter().map(|&v| f64::from(v)).collect();
    let (x_mean, y_mean) = if params.fit_intercept {
        let y_mean = y
            .iter()
            .zip(&design.weights)
            .map(|(y, w)| y * w)
            .sum::<f64>()
            / design.total_weight;
        (design.weighted_means(), y_mean)
    } else {
        (vec![0.0; p], 0.0)
    };

    // The lower triangle of X^T W X, packed row by row, then X^T W y.
    let tri = p * (p + 1) / 2;
    let sums = sum_over_rows(ctx.threads() as usize, n, tri + p, |rows, acc| {
        let mut centred = vec![0.0; p];
        for i in rows {
            centred
                .iter_mut()
                .zip(design.row(i))
                .zip(&x_mean)
                .for_each(|((c, x), m)| *c = x - m);
            let w = design.weights[i];
            let target = y[i] - y_mean;
            let (gram, xty) = acc.split_at_mut(tri);
            for j in 0..p {
                let a = w * centred[j];
                xty[j] += a * target;
                let start = j * (j + 1) / 2;
                for (g, c) in gram[start..=start + j].iter_mut().zip(&centred) {
                    *g += a * c;
                }
            }
        }
    });
    if ctx.is_cancelled() {
        return Err(PluginError::cancelled());
    }

    // Scale to a unit diagonal: D (G + alpha I) D u = D X^T W y, b = D u.
    let diag: Vec<f64> = (0..p)
        .map(|j| sums[j * (j + 1) / 2 + j] + params.alpha)
        .collect();
    let scale: Vec<f64> = diag
        .iter()
        .map(|&d| if d > 0.0 { 1.0 / d.sqrt() } else { 1.0 })
        .collect();
    // `jitter` is added to the scaled diagonal (which is 1, or 0 for a
    // constant feature) only when the system cannot be solved as it is.
    let mut jitter = 0.0;
    let coef = loop {
        let mut a = vec![0.0; p * p];
        for j in 0..p {
            for k in 0..=j {
                let g = sums[j * (j + 1) / 2 + k] + if j == k { params.alpha } else { 0.0 };
                a[j * p + k] = g * scale[j] * scale[k];
            }
            a[j * p + j] += jitter;
        }
        let mut u: Vec<f64> = (0..p).map(|j| sums[tri + j] * scale[j]).collect();
        match cholesky_solve(&mut a, p, &mut u) {
            Ok(()) => {
                break u
                    .iter()
                    .zip(&scale)
                    .map(|(u, s)| u * s)
                    .collect::<Vec<f64>>();
            }
            Err(NotPositiveDefinite) if jitter < 1e-6 => {
                // Collinear or constant features and (nearly) no penalty:
                // add the smallest relative ridge that makes the system
                // solvable, and say so.
                jitter = if jitter == 0.0 { 1e-10 } else { jitter * 100.0 };
                let msg = format!(
                    "linear: the features are collinear; adding a relative ridge penalty \
                     of {jitter:e} (set alpha > 0 to choose the penalty)"
                );
                ctx.log(level::WARN, msg.as_str().into());
            }
            Err(NotPositiveDefinite) => {
                return Err(PluginError::input(
                    "the features are collinear and alpha is 0: use alpha > 0",
                ));
            }
        }
    };
    let intercept = y_mean - coef.iter().zip(&x_mean).map(|(b, m)| b * m).sum::<f64>();
    Ok(LinearModel {
        task: data.task,
        params: params.clone(),
        means: design.means.clone(),
        coef,
        intercept: vec![intercept],
        iterations: 0,
        converged: true,
    })
}

/// Multinomial logistic regression: minimises
/// `(1/W) sum_i w_i CE_i + |B|^2 / (2 C W)` (`W` the total weight; the same
/// minimum as scikit-learn's `C sum_i w_i CE_i + |B|^2 / 2`) with L-BFGS.
///
/// The solver works on standardised features `z = (x - mean) / scale` for
/// conditioning, penalising the coefficients of the original features, so
/// the answer is the same as without standardising; the coefficients are
/// folded back to the original scale at the end.
fn fit_logistic(
    ctx: &HostContextRef<'_>,
    design: &Design,
    data: &TrainData<'_>,
    params: &LinearParams,
) -> Result<LinearModel, PluginError> {
    let (n, p) = (design.rows, design.cols);
    let k = data.task.n_classes as usize;
    let total = design.total_weight;

    // Standardisation. Without an intercept the features are only scaled,
    // since centring would change the model.
    let mean = if params.fit_intercept {
        design.weighted_means()
    } else {
        vec![0.0; p]
    };
    let mut spread = vec![0.0; p];
    for i in 0..n {
        let w = design.weights[i];
        for ((s, x), m) in spread.iter_mut().zip(design.row(i)).zip(&mean) {
            *s += w * (x - m) * (x - m);
        }
    }
    let scale: Vec<f64> = spread
        .iter()
        .map(|s| (s / total).sqrt())
        .map(|s| if s.is_finite() && s > 0.0 { s } else { 1.0 })
        .collect();
    let mut z = Vec::with_capacity(n * p);
    for i in 0..n {
        for ((x, m), s) in design.row(i).iter().zip(&mean).zip(&scale) {
            z.push((x - m) / s);
        }
    }
    let labels: Vec<usize> = data.y.iter().map(|&v| v as usize).collect();

    // Parameters: per class, p coefficients then the intercept.
    let width = p + 1;
    let lambda = 1.0 / (params.c * total);
    let penalty: Vec<f64> = scale.iter().map(|s| lambda / (s * s)).collect();
    let threads = ctx.threads() as usize;

    let objective = |theta: &[f64], grad: &mut [f64]| -> Result<f64, PluginError> {
        let sums = sum_over_rows(threads, n, k * width + 1, |rows, acc| {
            let mut scores = vec![0.0; k];
            for i in rows {
                let row = &z[i * p..(i + 1) * p];
                for (c, s) in scores.iter_mut().enumerate() {
                    let t = &theta[c * width..(c + 1) * width];
                    *s = t[p] + t[..p].iter().zip(row).map(|(a, b)| a * b).sum::<f64>();
                }
                let top = scores.iter().fold(f64::NEG_INFINITY, |a, &b| a.max(b));
                let log_norm = top + scores.iter().map(|s| (s - top).exp()).sum::<f64>().ln();
                let w = design.weights[i];
                acc[k * width] += w * (log_norm - scores[labels[i]]);
                for (c, s) in scores.iter().enumerate() {
                    let residual = w * ((s - log_norm).exp() - f64::from(u8::from(c == labels[i])));
                    let g = &mut acc[c * width..(c + 1) * width];
                    g[..p]
                        .iter_mut()
                        .zip(row)
                        .for_each(|(g, x)| *g += residual * x);
                    g[p] += residual;
                }
            }
        });
        let mut loss = sums[k * width] / total;
        let per_class = grad
            .chunks_exact_mut(width)
            .zip(sums.chunks_exact(width))
            .zip(theta.chunks_exact(width));
        for ((g, s), t) in per_class {
            for (((g, s), t), pen) in g.iter_mut().zip(s).zip(t).zip(&penalty) {
                *g = s / total + pen * t;
                loss += 0.5 * pen * t * t;
            }
            // The intercept, last, is not penalised.
            g[p] = if params.fit_intercept {
                s[p] / total
            } else {
                0.0
            };
        }
        Ok(loss)
    };
    let before_iteration = |i: usize| {
        if ctx.is_cancelled() {
            return Err(PluginError::cancelled());
        }
        ctx.progress(i as u64, params.max_iter as u64);
        Ok(())
    };
    let found = lbfgs(
        vec![0.0; k * width],
        params.max_iter,
        params.tol,
        objective,
        before_iteration,
    )?;

    let msg = if found.converged {
        format!(
            "linear: logistic regression converged in {} iterations",
            found.iterations
        )
    } else {
        format!(
            "linear: logistic regression stopped after {} iterations without converging; raise max_iter or tol",
            found.iterations
        )
    };
    ctx.log(
        if found.converged {
            level::DEBUG
        } else {
            level::WARN
        },
        msg.as_str().into(),
    );

    // Fold the standardisation back: x.b + b0 = z.t + t0.
    let mut coef = vec![0.0; k * p];
    let mut intercept = vec![0.0; k];
    for c in 0..k {
        let t = &found.x[c * width..(c + 1) * width];
        let b = &mut coef[c * p..(c + 1) * p];
        for j in 0..p {
            b[j] = t[j] / scale[j];
        }
        intercept[c] = t[p] - b.iter().zip(&mean).map(|(b, m)| b * m).sum::<f64>();
    }
    if params.fit_intercept {
        // Softmax ignores a shift of all intercepts; centre them for tidiness.
        let shift = intercept.iter().sum::<f64>() / k as f64;
        intercept.iter_mut().for_each(|b| *b -= shift);
    }
    Ok(LinearModel {
        task: data.task,
        params: params.clone(),
        means: design.means.clone(),
        coef,
        intercept,
        iterations: found.iterations as u32,
        converged: found.converged,
    })
}
