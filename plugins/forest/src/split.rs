//! Exact best-split search for one node: node statistics and impurity, and
//! the scan of one feature's sorted values, including where missing values
//! should go.
//!
//! Classification and regression share one representation: every row adds
//! `weight * value` to one slot of a statistics vector. For classification
//! the slot is the row's class and the value 1 (so the slots are weighted
//! class counts); for regression there is one slot and the value is the
//! target (so the slot is the weighted target sum). The Gini proxy
//! `sum(s^2) / w` per child is then also the squared-error proxy.

use crate::{params::Criterion, tree::Dataset};

/// Impurities at or below this count as pure (scikit-learn's `EPSILON`).
pub const PURE: f64 = f64::EPSILON;

/// Statistics of the rows in one node.
#[derive(Clone, Debug)]
pub struct NodeStats {
    /// Total weight.
    pub weight: f64,
    /// Weighted class counts, or the weighted target sum.
    pub sums: Vec<f64>,
    /// The node's impurity under the criterion.
    pub impurity: f64,
}

impl NodeStats {
    /// Statistics of `rows` weighted by `weight`.
    pub fn of(data: &Dataset, weight: &[f64], criterion: Criterion, rows: &[u32]) -> Self {
        let mut sums = vec![0.0; data.n_slots];
        let mut w = 0.0;
        for &r in rows {
            let r = r as usize;
            sums[data.slot[r] as usize] += weight[r] * data.value[r];
            w += weight[r];
        }
        let impurity = if w <= 0.0 {
            0.0
        } else {
            match criterion {
                Criterion::Gini => 1.0 - sums.iter().map(|s| (s / w) * (s / w)).sum::<f64>(),
                Criterion::Entropy => -sums
                    .iter()
                    .filter(|&&s| s > 0.0)
                    .map(|s| (s / w) * (s / w).log2())
                    .sum::<f64>(),
                Criterion::SquaredError => {
                    // Two passes: `E[y^2] - E[y]^2` leaves rounding noise
                    // above `PURE` on constant targets, which would split them.
                    let mean = sums[0] / w;
                    let sse: f64 = rows
                        .iter()
                        .map(|&r| {
                            let d = data.value[r as usize] - mean;
                            weight[r as usize] * d * d
                        })
                        .sum();
                    sse / w
                }
            }
        };
        Self {
            weight: w,
            sums,
            impurity,
        }
    }

    /// The leaf prediction: class distribution or weighted mean.
    pub fn leaf_values(&self) -> impl Iterator<Item = f32> + '_ {
        let w = self.weight;
        self.sums
            .iter()
            .map(move |s| if w > 0.0 { (s / w) as f32 } else { 0.0 })
    }
}

/// The best split found so far at a node.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Split {
    /// Feature column.
    pub feature: u32,
    /// Rows with `x <= threshold` go left.
    pub threshold: f32,
    /// Where rows with a missing value go.
    pub missing_left: bool,
    /// Higher is better; comparable between splits of the same node only.
    pub proxy: f64,
}

/// What scanning one feature found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scan {
    /// Every row has the same value: useless here and in every descendant.
    Constant,
    /// The feature was evaluated (a split may or may not have improved).
    Evaluated,
}

/// Scratch space for split search, reused across nodes of one tree.
pub struct Splitter<'a> {
    data: &'a Dataset,
    weight: &'a [f64],
    criterion: Criterion,
    min_leaf: usize,
    keys: Vec<u64>,
    left: Vec<f64>,
    miss: Vec<f64>,
}

/// Maps an `f32` to a `u32` whose unsigned order is the float's order.
fn order_bits(v: f32) -> u32 {
    let b = v.to_bits();
    if b & 0x8000_0000 != 0 {
        !b
    } else {
        b | 0x8000_0000
    }
}

fn from_order_bits(k: u32) -> f32 {
    f32::from_bits(if k & 0x8000_0000 != 0 {
        k & 0x7FFF_FFFF
    } else {
        !k
    })
}

/// The threshold between consecutive distinct values `a < b`: their
/// midpoint, or `a` when the midpoint rounds up to `b` (as scikit-learn).
pub fn midpoint(a: f32, b: f32) -> f32 {
    let m = (f64::from(a) / 2.0 + f64::from(b) / 2.0) as f32;
    if m >= b || !m.is_finite() { a } else { m }
}

fn xlogx(x: f64) -> f64 {
    if x > 0.0 { x * x.ln() } else { 0.0 }
}

impl<'a> Splitter<'a> {
    /// A splitter over `data` with per-row `weight` (zero for rows not in
    /// the tree's sample).
    pub fn new(
        data: &'a Dataset,
        weight: &'a [f64],
        criterion: Criterion,
        min_leaf: usize,
    ) -> Self {
        Self {
            data,
            weight,
            criterion,
            min_leaf,
            keys: Vec::new(),
            left: vec![0.0; data.n_slots],
            miss: vec![0.0; data.n_slots],
        }
    }

    /// Proxy of the split whose left child holds `left` (+ the missing rows
    /// when `miss_left`) and whose right child holds the rest of `node`.
    fn proxy(&self, node: &NodeStats, wl: f64, wm: f64, miss_left: bool) -> f64 {
        let ml = if miss_left { 1.0 } else { 0.0 };
        let wl2 = wl + ml * wm;
        let wr2 = node.weight - wl2;
        let (l, m, t) = (&self.left, &self.miss, &node.sums);
        match self.criterion {
            Criterion::Gini | Criterion::SquaredError => {
                let (mut pl, mut pr) = (0.0, 0.0);
                for j in 0..t.len() {
                    let a = l[j] + ml * m[j];
                    let b = t[j] - a;
                    pl += a * a;
                    pr += b * b;
                }
                pl / wl2 + pr / wr2
            }
            Criterion::Entropy => {
                let mut p = -xlogx(wl2) - xlogx(wr2);
                for j in 0..t.len() {
                    let a = l[j] + ml * m[j];
                    p += xlogx(a) + xlogx(t[j] - a);
                }
                p
            }
        }
    }

    /// Scans feature `f` over `rows` (the node's rows, statistics `node`),
    /// replacing `best` with any better split.
    pub fn scan(
        &mut self,
        f: usize,
        rows: &[u32],
        node: &NodeStats,
        best: &mut Option<Split>,
    ) -> Scan {
        let data = self.data;
        let col = data.column(f);
        self.keys.clear();
        self.miss.fill(0.0);
        let (mut wm, mut nm) = (0.0, 0usize);
        for &r in rows {
            let v = col[r as usize];
            if v.is_nan() {
                let r = r as usize;
                self.miss[data.slot[r] as usize] += self.weight[r] * data.value[r];
                wm += self.weight[r];
                nm += 1;
            } else {
                self.keys
                    .push((u64::from(order_bits(v)) << 32) | u64::from(r));
            }
        }
        let nn = self.keys.len();
        if nn == 0 {
            return Scan::Constant;
        }
        self.keys.sort_unstable();
        let value = |k: u64| from_order_bits((k >> 32) as u32);
        if nm == 0 && value(self.keys[0]) >= value(self.keys[nn - 1]) {
            return Scan::Constant;
        }
        let min_leaf = self.min_leaf;
        let mut consider = |proxy: f64, threshold: f32, missing_left: bool| {
            if best.is_none_or(|b| proxy > b.proxy) {
                *best = Some(Split {
                    feature: f as u32,
                    threshold,
                    missing_left,
                    proxy,
                });
            }
        };
        self.left.fill(0.0);
        let mut wl = 0.0;
        for i in 0..nn - 1 {
            let r = (self.keys[i] & 0xFFFF_FFFF) as usize;
            self.left[data.slot[r] as usize] += self.weight[r] * data.value[r];
            wl += self.weight[r];
            let (a, b) = (value(self.keys[i]), value(self.keys[i + 1]));
            if b <= a {
                continue;
            }
            let (nl, nr) = (i + 1, nn - i - 1);
            if nm == 0 {
                if nl >= min_leaf && nr >= min_leaf {
                    let p = self.proxy(node, wl, 0.0, false);
                    // With no missing rows here, unseen missing values follow
                    // the heavier child.
                    consider(p, midpoint(a, b), wl >= node.weight - wl);
                }
            } else {
                if nl + nm >= min_leaf && nr >= min_leaf {
                    let p = self.proxy(node, wl, wm, true);
                    consider(p, midpoint(a, b), true);
                }
                if nl >= min_leaf && nr + nm >= min_leaf {
                    let p = self.proxy(node, wl, wm, false);
                    consider(p, midpoint(a, b), false);
                }
            }
        }
        if nm > 0 && nn >= min_leaf && nm >= min_leaf {
            // Every present value left, every missing one right.
            let r = (self.keys[nn - 1] & 0xFFFF_FFFF) as usize;
            self.left[data.slot[r] as usize] += self.weight[r] * data.value[r];
            wl += self.weight[r];
            let p = self.proxy(node, wl, wm, false);
            consider(p, f32::INFINITY, false);
        }
        Scan::Evaluated
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn order_bits_sorts_like_floats() {
        let vals = [
            -f32::INFINITY,
            -3.5,
            -0.0,
            0.0,
            1e-30,
            2.0,
            f32::MAX,
            f32::INFINITY,
        ];
        for w in vals.windows(2) {
            assert!(order_bits(w[0]) <= order_bits(w[1]), "{w:?}");
        }
        for v in vals {
            assert_eq!(from_order_bits(order_bits(v)).to_bits(), v.to_bits());
        }
    }

    #[test]
    fn midpoint_separates() {
        assert_eq!(midpoint(1.0, 2.0), 1.5);
        let a = 1.0f32;
        let b = f32::from_bits(a.to_bits() + 1);
        let m = midpoint(a, b);
        assert!(a <= m && m < b);
        assert_eq!(midpoint(f32::MAX, f32::INFINITY), f32::MAX);
    }
}
