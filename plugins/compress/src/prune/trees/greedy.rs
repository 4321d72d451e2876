//! Greedy forward selection of trees: each tree's outputs on the
//! evaluation rows computed once, then at each step every remaining
//! candidate scored in one pass over the rows (log-loss or squared error of
//! the ensemble with it added).

use super::*;

/// The loss a row's raw outputs give, by task and link.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Loss {
    /// Log-loss of probabilities read directly (identity link), clipped.
    Prob,
    /// Log-loss through a sigmoid on one score.
    Logit,
    /// Log-loss through a softmax across outputs.
    Softmax,
    /// Squared error, summed over the targets.
    Square,
}

impl Loss {
    pub(super) fn of(ens: &TreeEnsemble) -> Self {
        match (ens.n_classes > 0, ens.link) {
            (false, _) => Self::Square,
            (true, Link::Identity) => Self::Prob,
            (true, Link::Sigmoid) => Self::Logit,
            (true, Link::Softmax) => Self::Softmax,
        }
    }

    pub(super) fn name(self) -> &'static str {
        match self {
            Self::Square => "squared_error",
            _ => "log_loss",
        }
    }

    /// The loss of one row's raw outputs `raw` with target `y` (a class
    /// index, or the targets).
    pub(super) fn row(self, raw: &[f64], y: &[f32]) -> f64 {
        match self {
            Self::Prob => -raw[y[0] as usize].clamp(PROB_EPS, 1.0).ln(),
            Self::Logit => softplus(if y[0] > 0.5 { -raw[0] } else { raw[0] }),
            Self::Softmax => log_sum_exp(raw) - raw[y[0] as usize],
            Self::Square => raw
                .iter()
                .zip(y)
                .map(|(r, &y)| (r - f64::from(y)).powi(2))
                .sum(),
        }
    }
}

/// `ln(1 + e^s)` without overflow.
pub(super) fn softplus(s: f64) -> f64 {
    if s > 0.0 {
        s + (-s).exp().ln_1p()
    } else {
        s.exp().ln_1p()
    }
}

pub(super) fn log_sum_exp(v: &[f64]) -> f64 {
    let max = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    max + v.iter().map(|x| (x - max).exp()).sum::<f64>().ln()
}

/// The ensemble's metric on all of `h`'s rows, weighted: its name and value.
pub(super) fn metric(
    ens: &TreeEnsemble,
    h: Holdout<'_>,
    ctx: &HostContextRef<'_>,
) -> Result<(&'static str, f64), PluginError> {
    let loss = Loss::of(ens);
    let engine = Engine::new(ens)?;
    let raw = engine.raw(ctx, h.x)?;
    let k = ens.n_outputs as usize;
    let t = (h.y.len() / h.x.rows().max(1)).max(1);
    let (mut sum, mut total) = (0.0, 0.0);
    for (r, (raw, y)) in raw.chunks_exact(k).zip(h.y.chunks_exact(t)).enumerate() {
        let w = row_weight(&h, r);
        sum += w * loss.row(raw, y);
        total += w;
    }
    Ok((loss.name(), if total > 0.0 { sum / total } else { 0.0 }))
}

// ---------------------------------------------------------------------------
// Greedy selection

/// Forward selection of `keep` trees of `ens` on (a sample of) `h`'s rows:
/// the kept indices in ascending order, and a summary.
pub(super) fn greedy(
    ens: &TreeEnsemble,
    h: Holdout<'_>,
    data: &CompressData<'_>,
    keep: usize,
    threads: usize,
    ctx: &HostContextRef<'_>,
) -> Result<(Vec<usize>, Value), PluginError> {
    let loss = Loss::of(ens);
    let narrow = is_narrow(ens);
    let width = if narrow { 1 } else { ens.n_outputs as usize };
    let n_trees = ens.trees.len();
    let cap = SELECTION_ROWS
        .min(TABLE_VALUES / (n_trees * width).max(1))
        .max(MIN_SELECTION_ROWS);
    let sample = Sample::new(h, cap);
    let targets = data.task.n_targets();
    let (kept, last) = if narrow {
        let mut sel = Narrow::new(ens, &sample, loss, threads, ctx)?;
        run_greedy(&mut sel, n_trees, keep, threads, ctx)?
    } else {
        let mut sel = Wide::new(ens, &sample, targets, loss, threads, ctx)?;
        run_greedy(&mut sel, n_trees, keep, threads, ctx)?
    };
    let total: f64 = sample.rows.iter().map(|&r| row_weight(&h, r)).sum();
    let info = json!({
        "method": "greedy",
        "metric": loss.name(),
        "kept": kept,
        "rows_used": sample.rows.len(),
        "metric_on_rows_used": if total > 0.0 { last / total } else { 0.0 },
    });
    Ok((kept, info))
}

/// Whether a row's loss depends on one output only (so [`Narrow`] scores
/// the candidates, else [`Wide`]).
pub(super) fn is_narrow(ens: &TreeEnsemble) -> bool {
    matches!(Loss::of(ens), Loss::Prob | Loss::Logit) || ens.n_outputs == 1
}

/// The rows greedy selection scores on.
pub(super) struct Sample<'a> {
    h: Holdout<'a>,
    /// Their indices in `h`.
    rows: Vec<usize>,
    /// Their features, row-major.
    x: Vec<f32>,
}

impl<'a> Sample<'a> {
    /// At most `cap` rows of `h`, evenly spaced (all of them when there
    /// are no more).
    pub(super) fn new(h: Holdout<'a>, cap: usize) -> Self {
        let n = h.x.rows();
        let rows: Vec<usize> = if n <= cap {
            (0..n).collect()
        } else {
            (0..cap).map(|i| i * n / cap).collect()
        };
        let x = rows.iter().flat_map(|&r| h.x.row(r)).copied().collect();
        Self { h, rows, x }
    }
}

/// A greedy step's candidate scoring: what [`run_greedy`] needs.
pub(super) trait Candidates: Sync {
    /// The weighted loss sum of the kept trees plus tree `t`, `m` trees
    /// being kept.
    fn cost(&self, t: usize, m: usize) -> f64;
    /// Keeps tree `t`.
    fn add(&mut self, t: usize);
    /// The exact weighted loss sum of the `m` kept trees.
    fn current(&self, m: usize) -> f64;
}

/// Adds, `keep` times, the candidate of lowest cost (the lowest index on
/// ties); the kept indices in ascending order and their exact loss sum.
pub(super) fn run_greedy(
    sel: &mut impl Candidates,
    n_trees: usize,
    keep: usize,
    threads: usize,
    ctx: &HostContextRef<'_>,
) -> Result<(Vec<usize>, f64), PluginError> {
    let mut left: Vec<usize> = (0..n_trees).collect();
    let mut kept = Vec::with_capacity(keep);
    for m in 0..keep {
        if ctx.is_cancelled() {
            return Err(PluginError::cancelled());
        }
        let costs = {
            let sel = &*sel;
            par_map(threads, left.len(), |i| sel.cost(left[i], m))
        };
        let best = (0..left.len())
            .min_by(|&a, &b| costs[a].total_cmp(&costs[b]).then(a.cmp(&b)))
            .expect("a candidate is left while fewer than all trees are kept");
        let t = left.remove(best);
        sel.add(t);
        kept.push(t);
        ctx.progress(m as u64 + 1, keep as u64);
    }
    kept.sort_unstable();
    Ok((kept, sel.current(keep)))
}

/// What tree `t` adds to each output of each row of `x` (row-major,
/// `n_outputs` per row; a vote one-hot), through a one-tree engine: its
/// lockstep walk is several times faster than a row-by-row one.
pub(super) fn tree_raw(ens: &TreeEnsemble, t: usize, x: &[f32]) -> Result<Vec<f64>, PluginError> {
    let one = TreeEnsemble {
        n_features: ens.n_features,
        n_outputs: ens.n_outputs,
        n_classes: ens.n_classes,
        combine: match ens.combine {
            Combine::Vote => Combine::Vote,
            Combine::Sum | Combine::Mean => Combine::Sum,
        },
        link: ens.link,
        base_score: Vec::new().into(),
        trees: vec![ens.trees[t].clone()].into(),
    };
    let mut out = vec![0.0; x.len() / ens.n_features as usize * ens.n_outputs as usize];
    Engine::new(&one)?.raw_into(x, &mut out);
    Ok(out)
}

/// What `m + 1` kept trees' sum is multiplied by.
pub(super) fn scale(combine: Combine, m: usize) -> f64 {
    match combine {
        Combine::Sum => 1.0,
        Combine::Mean | Combine::Vote => 1.0 / (m + 1) as f64,
    }
}

/// Candidate scoring when a row's loss depends on one output: the true
/// class's probability (identity link), the one sigmoid score, or the one
/// regression target. Each tree keeps one value per row.
///
/// The two log-losses score candidates in `f32` with polynomial
/// logarithms and exponentials eight rows at a time (see [`ln_fast`]):
/// the libm calls they replace took nine tenths of a 500-tree selection.
/// [`Candidates::current`] stays exact.
#[derive(Clone)]
pub(super) struct Narrow {
    combine: Combine,
    loss: Loss,
    /// Per tree, its value for each row's output.
    cols: Vec<Vec<f32>>,
    /// Per row: the base score of its output, the kept trees' sum (also
    /// in `f32` for the fast path), its weight, and the target
    /// (regression) or the sign of the score that the log-loss penalizes
    /// (sigmoid).
    base: Vec<f32>,
    acc: Vec<f64>,
    acc32: Vec<f32>,
    w: Vec<f32>,
    target: Vec<f32>,
}

impl Narrow {
    pub(super) fn new(
        ens: &TreeEnsemble,
        sample: &Sample<'_>,
        loss: Loss,
        threads: usize,
        ctx: &HostContextRef<'_>,
    ) -> Result<Self, PluginError> {
        let Sample { h, rows, x } = sample;
        let column = |r: usize| match loss {
            Loss::Prob => h.y[r] as usize,
            _ => 0,
        };
        let k = ens.n_outputs as usize;
        let cols = par_map(threads, ens.trees.len(), |t| {
            if ctx.is_cancelled() {
                return Err(PluginError::cancelled());
            }
            let raw = tree_raw(ens, t, x)?;
            Ok(rows
                .iter()
                .enumerate()
                .map(|(i, &r)| raw[i * k + column(r)] as f32)
                .collect())
        })
        .into_iter()
        .collect::<Result<Vec<_>, _>>()?;
        let base_of = |j: usize| ens.base_score.get(j).copied().unwrap_or(0.0);
        let target = rows.iter().map(|&r| match loss {
            Loss::Logit if h.y[r] > 0.5 => -1.0,
            Loss::Logit => 1.0,
            _ => h.y[r],
        });
        Ok(Self {
            combine: ens.combine,
            loss,
            cols,
            base: rows.iter().map(|&r| base_of(column(r))).collect(),
            acc: vec![0.0; rows.len()],
            acc32: vec![0.0; rows.len()],
            w: rows.iter().map(|&r| row_weight(h, r) as f32).collect(),
            target: target.collect(),
        })
    }

    /// The exact weighted loss of the kept trees plus `c` (if any), their
    /// sum times `s`.
    pub(super) fn exact(&self, c: Option<&[f32]>, s: f64) -> f64 {
        (0..self.acc.len())
            .map(|r| {
                let c = c.map_or(0.0, |c| f64::from(c[r]));
                let z = f64::from(self.base[r]) + (self.acc[r] + c) * s;
                let t = f64::from(self.target[r]);
                let loss = match self.loss {
                    Loss::Prob => -z.clamp(PROB_EPS, 1.0).ln(),
                    Loss::Logit => softplus(t * z),
                    _ => (z - t) * (z - t),
                };
                f64::from(self.w[r]) * loss
            })
            .sum()
    }
}

impl Candidates for Narrow {
    fn cost(&self, t: usize, m: usize) -> f64 {
        let s = scale(self.combine, m);
        let c = &self.cols[t];
        let s32 = s as f32;
        let rows = [c.as_slice(), &self.acc32, &self.base, &self.w, &self.target];
        match self.loss {
            Loss::Prob => sum_rows(rows, |[c, a, b, w, _]| {
                let z = (b + (a + c) * s32).clamp(PROB_EPS as f32, 1.0);
                -w * ln_fast(z)
            }),
            Loss::Logit => sum_rows(rows, |[c, a, b, w, sign]| {
                // softplus(v) = max(v, 0) + ln(1 + e^-|v|)
                let v = sign * (b + (a + c) * s32);
                w * (v.max(0.0) + ln_fast(1.0 + exp_fast(-v.abs())))
            }),
            _ => self.exact(Some(c), s),
        }
    }

    fn add(&mut self, t: usize) {
        let c = &self.cols[t];
        for ((a, a32), &c) in self.acc.iter_mut().zip(&mut self.acc32).zip(c) {
            *a += f64::from(c);
            *a32 = *a as f32;
        }
    }

    fn current(&self, m: usize) -> f64 {
        self.exact(None, scale(self.combine, m.saturating_sub(1)))
    }
}

/// Rows summed in one `f32` partial sum: few enough that its rounding
/// (relative 6e-8 per add) stays far below the gaps between candidates.
pub(super) const LANE_BLOCK: usize = 256;

/// The sum over rows of `f` of the rows' values in the five columns, in
/// eight `f32` lanes that the compiler vectorizes, blocks added in `f64`.
pub(super) fn sum_rows(cols: [&[f32]; 5], f: impl Fn([f32; 5]) -> f32) -> f64 {
    fn eights(c: &[f32]) -> impl Iterator<Item = [f32; 8]> + '_ {
        c.chunks_exact(8)
            .map(|c| <[f32; 8]>::try_from(c).expect("chunks of 8"))
    }
    let n = cols[0].len();
    let mut total = 0.0f64;
    for start in (0..n).step_by(LANE_BLOCK) {
        let end = (start + LANE_BLOCK).min(n);
        let [c0, c1, c2, c3, c4] = cols.map(|c| &c[start..end]);
        let mut lanes = [0.0f32; 8];
        let rows = eights(c0)
            .zip(eights(c1))
            .zip(eights(c2))
            .zip(eights(c3))
            .zip(eights(c4));
        for ((((a, b), c), d), e) in rows {
            for (l, lane) in lanes.iter_mut().enumerate() {
                *lane += f([a[l], b[l], c[l], d[l], e[l]]);
            }
        }
        for i in (end - start) / 8 * 8..end - start {
            lanes[0] += f([c0[i], c1[i], c2[i], c3[i], c4[i]]);
        }
        total += lanes.iter().map(|&v| f64::from(v)).sum::<f64>();
    }
    total
}

/// Natural logarithm of a positive normal `x`, to about 1e-7 relative:
/// Cephes' `logf`, branch-free so that eight rows go through at once.
#[inline(always)]
pub(super) fn ln_fast(x: f32) -> f32 {
    const SQRT_HALF: f32 = std::f32::consts::FRAC_1_SQRT_2;
    let bits = x.to_bits();
    // x = m * 2^e with m in [0.5, 1).
    let e = (((bits >> 23) & 0xff) as i32).wrapping_sub(126);
    let m = f32::from_bits((bits & 0x007f_ffff) | 0x3f00_0000);
    let low = m < SQRT_HALF;
    // Wrapping (never wraps): debug builds then keep the loop vectorized.
    let e = e.wrapping_sub(i32::from(low)) as f32;
    let m = if low { m + m - 1.0 } else { m - 1.0 };
    let z = m * m;
    let p = [
        -1.151_461e-1,
        1.167_699_84e-1,
        -1.242_014_1e-1,
        1.424_932_3e-1,
        -1.666_805_7e-1,
        2.000_071_4e-1,
        -2.499_999_4e-1,
        3.333_333e-1,
    ]
    .iter()
    .fold(7.037_683_6e-2_f32, |acc, &c| acc * m + c);
    let y = p * m * z - 2.121_944_4e-4 * e - 0.5 * z;
    m + y + 0.693_359_4 * e
}

/// `e^x` for `x <= 0`, to about 2e-7 relative (below -87 it gives
/// `e^-87`): Cephes' `expf`, branch-free.
#[inline(always)]
pub(super) fn exp_fast(x: f32) -> f32 {
    let x = x.max(-87.0);
    let t = x * std::f32::consts::LOG2_E;
    // Nearest integer; `as` truncates toward zero.
    let n = (t + 0.5f32.copysign(t)) as i32;
    let nf = n as f32;
    let r = x - nf * 0.693_359_4 + nf * 2.121_944_4e-4;
    let p = [
        1.398_199_9e-3,
        8.333_452e-3,
        4.166_579_6e-2,
        1.666_666_6e-1,
        5e-1,
    ]
    .iter()
    .fold(1.987_569_1e-4_f32, |acc, &c| acc * r + c);
    let y = p * r * r + r + 1.0;
    y * f32::from_bits((n.wrapping_add(127) as u32) << 23)
}

/// One tree's values on the selection rows: every output, or one.
#[derive(Clone)]
pub(super) enum Column {
    All(Vec<f32>),
    One(usize, Vec<f32>),
}

/// Candidate scoring when a row's loss depends on every output: softmax
/// classifiers and regressors of several targets.
#[derive(Clone)]
pub(super) struct Wide {
    combine: Combine,
    loss: Loss,
    k: usize,
    cols: Vec<Column>,
    base: Vec<f64>,
    /// Per row: the kept trees' sum (`k` values), weight, targets
    /// (`targets` values).
    acc: Vec<f64>,
    w: Vec<f64>,
    y: Vec<f32>,
    targets: usize,
    /// For a softmax of sums: each row's log-sum-exp and probabilities
    /// (`k`) of the kept trees, so that a one-output candidate costs one
    /// exponential and one logarithm per row.
    lse: Vec<f64>,
    prob: Vec<f64>,
}

impl Wide {
    pub(super) fn new(
        ens: &TreeEnsemble,
        sample: &Sample<'_>,
        targets: usize,
        loss: Loss,
        threads: usize,
        ctx: &HostContextRef<'_>,
    ) -> Result<Self, PluginError> {
        let Sample { h, rows, x } = sample;
        let k = ens.n_outputs as usize;
        let cols = par_map(threads, ens.trees.len(), |t| {
            if ctx.is_cancelled() {
                return Err(PluginError::cancelled());
            }
            let raw = tree_raw(ens, t, x)?;
            let output = ens.trees[t].output;
            Ok(
                if output == Tree::ALL_OUTPUTS || ens.combine == Combine::Vote {
                    Column::All(raw.iter().map(|&v| v as f32).collect())
                } else {
                    let o = output as usize;
                    let v = raw.chunks_exact(k).map(|r| r[o] as f32).collect();
                    Column::One(o, v)
                },
            )
        })
        .into_iter()
        .collect::<Result<Vec<_>, _>>()?;
        let base = (0..k)
            .map(|j| ens.base_score.get(j).map_or(0.0, |&b| f64::from(b)))
            .collect();
        let mut sel = Self {
            combine: ens.combine,
            loss,
            k,
            cols,
            base,
            acc: vec![0.0; rows.len() * k],
            w: rows.iter().map(|&r| row_weight(h, r)).collect(),
            y: rows
                .iter()
                .flat_map(|&r| h.y[r * targets..(r + 1) * targets].iter().copied())
                .collect(),
            targets,
            lse: Vec::new(),
            prob: Vec::new(),
        };
        sel.refresh();
        Ok(sel)
    }

    /// The exact weighted loss of the kept trees plus `col` (if any),
    /// their sum times `s`.
    pub(super) fn exact(&self, col: Option<&Column>, s: f64) -> f64 {
        let (k, n) = (self.k, self.w.len());
        let mut raw = vec![0.0; k];
        (0..n)
            .map(|r| {
                let acc = &self.acc[r * k..(r + 1) * k];
                for (j, z) in raw.iter_mut().enumerate() {
                    let c = match col {
                        Some(Column::All(v)) => f64::from(v[r * k + j]),
                        Some(Column::One(o, v)) if *o == j => f64::from(v[r]),
                        Some(Column::One(..)) | None => 0.0,
                    };
                    *z = self.base[j] + (acc[j] + c) * s;
                }
                let y = &self.y[r * self.targets..(r + 1) * self.targets];
                self.w[r] * self.loss.row(&raw, y)
            })
            .sum()
    }

    /// Whether one-output candidates take the cached softmax shortcut.
    pub(super) fn cached(&self) -> bool {
        self.loss == Loss::Softmax && self.combine == Combine::Sum
    }

    pub(super) fn refresh(&mut self) {
        if !self.cached() {
            return;
        }
        let (k, n) = (self.k, self.w.len());
        self.lse.resize(n, 0.0);
        self.prob.resize(n * k, 0.0);
        let mut z = vec![0.0; k];
        for r in 0..n {
            for (j, z) in z.iter_mut().enumerate() {
                *z = self.base[j] + self.acc[r * k + j];
            }
            let lse = log_sum_exp(&z);
            self.lse[r] = lse;
            for (p, z) in self.prob[r * k..(r + 1) * k].iter_mut().zip(&z) {
                *p = (z - lse).exp();
            }
        }
    }
}

impl Candidates for Wide {
    fn cost(&self, t: usize, m: usize) -> f64 {
        let (k, n, s) = (self.k, self.w.len(), scale(self.combine, m));
        if let (Column::One(o, v), true) = (&self.cols[t], self.cached()) {
            let o = *o;
            return (0..n)
                .map(|r| {
                    let v = f64::from(v[r]);
                    let c = self.y[r] as usize;
                    let p = self.prob[r * k + o];
                    // ln of the new sum of exponentials over the old one;
                    // the floor keeps a probability rounded to 1 from
                    // giving -inf.
                    let grow = (p * v.exp_m1()).max(-1.0 + 1e-15).ln_1p();
                    let zc = self.base[c] + self.acc[r * k + c] + if c == o { v } else { 0.0 };
                    self.w[r] * (self.lse[r] + grow - zc)
                })
                .sum();
        }
        self.exact(Some(&self.cols[t]), s)
    }

    fn add(&mut self, t: usize) {
        let k = self.k;
        match &self.cols[t] {
            Column::All(v) => {
                for (a, &c) in self.acc.iter_mut().zip(v) {
                    *a += f64::from(c);
                }
            }
            Column::One(o, v) => {
                for (r, &c) in v.iter().enumerate() {
                    self.acc[r * k + o] += f64::from(c);
                }
            }
        }
        self.refresh();
    }

    fn current(&self, m: usize) -> f64 {
        self.exact(None, scale(self.combine, m.saturating_sub(1)))
    }
}

// ---------------------------------------------------------------------------
// Tree shaping: depth cut, cost-complexity pruning, compaction
