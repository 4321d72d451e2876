//! Exact split search: each candidate feature's values at the node are
//! sorted and every threshold between distinct values is scored, including
//! where missing values should go; or, for the random splitter, one
//! threshold is drawn between the node's smallest and largest value.
//!
//! Every row adds `weight * value` to one slot of a statistics vector: for
//! classification the slot is the row's class and the value 1 (weighted
//! class counts); for regression there is one slot and the value is the
//! target (the weighted target sum). The Gini proxy `sum(s^2) / w` per
//! child is then also the squared-error proxy.

use std::ops::Range;

use crate::{
    config::{Criterion, Splitter as Kind},
    data::Dataset,
    node::{NodeSplitter, NodeStats, NodeView, Scan, Split},
    rng::Rng,
};

/// Scratch space for exact split search, reused across nodes of one tree.
pub struct ExactSplitter<'a> {
    data: &'a Dataset,
    weight: &'a [f64],
    /// The sampled rows, node by node.
    rows: Vec<u32>,
    criterion: Criterion,
    kind: Kind,
    min_leaf: usize,
    min_weight: f64,
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

pub use tessera_trees::bin::midpoint;

fn xlogx(x: f64) -> f64 {
    if x > 0.0 { x * x.ln() } else { 0.0 }
}

/// A threshold drawn uniformly in `[lo, hi)` (`lo < hi`), as scikit-learn's
/// random splitter: a draw that rounds to `hi` becomes `lo`.
pub fn draw_threshold(lo: f32, hi: f32, rng: &mut Rng) -> f32 {
    let u = rng.unit();
    let t = (f64::from(lo) + (f64::from(hi) - f64::from(lo)) * u) as f32;
    if t >= hi || t.is_nan() { lo } else { t.max(lo) }
}

impl<'a> ExactSplitter<'a> {
    /// A splitter over the rows of `data` with positive `weight` (zero for
    /// rows not in the tree's sample); children keep `min_leaf` rows and
    /// `min_weight`.
    pub fn new(
        data: &'a Dataset,
        weight: &'a [f64],
        criterion: Criterion,
        kind: Kind,
        min_leaf: usize,
        min_weight: f64,
    ) -> Self {
        Self {
            data,
            weight,
            rows: (0..data.n_rows as u32)
                .filter(|&r| weight[r as usize] > 0.0)
                .collect(),
            criterion,
            kind,
            min_leaf,
            min_weight,
            keys: Vec::new(),
            left: vec![0.0; data.n_slots],
            miss: vec![0.0; data.n_slots],
        }
    }

    /// Proxy of the split whose left child holds `left` (+ the missing rows
    /// when `miss_left`) and whose right child holds the rest of `node`;
    /// `None` when a child is lighter than `min_weight`.
    fn proxy(&self, node: &NodeView<'_>, wl: f64, wm: f64, miss_left: bool) -> Option<f64> {
        let ml = if miss_left { 1.0 } else { 0.0 };
        let wl2 = wl + ml * wm;
        let wr2 = node.stats.weight - wl2;
        if !(wl2 >= self.min_weight && wr2 >= self.min_weight && wl2 > 0.0 && wr2 > 0.0) {
            return None;
        }
        let (l, m, t) = (&self.left, &self.miss, node.sums);
        Some(match self.criterion {
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
        })
    }

    fn add(&mut self, to_left: bool, r: usize) -> f64 {
        let d = self.data;
        let acc = if to_left {
            &mut self.left
        } else {
            &mut self.miss
        };
        acc[d.slot[r] as usize] += self.weight[r] * d.value[r];
        self.weight[r]
    }

    /// The best threshold of feature `f` over `rows`.
    fn scan_best(
        &mut self,
        f: usize,
        rows: &[u32],
        node: &NodeView<'_>,
        best: &mut Option<Split>,
    ) -> Scan {
        let col = self.data.column(f);
        self.keys.clear();
        self.miss.fill(0.0);
        let (mut wm, mut nm) = (0.0, 0usize);
        for &r in rows {
            let v = col[r as usize];
            if v.is_nan() {
                wm += self.add(false, r as usize);
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
        let mut offer = |proxy: Option<f64>, threshold: f32, missing_left: bool| {
            if let Some(proxy) = proxy {
                let s = Split {
                    feature: f as u32,
                    threshold,
                    missing_left,
                    proxy,
                    cut: 0,
                };
                s.offer(best);
            }
        };
        self.left.fill(0.0);
        let mut wl = 0.0;
        for i in 0..nn - 1 {
            wl += self.add(true, (self.keys[i] & 0xFFFF_FFFF) as usize);
            let (a, b) = (value(self.keys[i]), value(self.keys[i + 1]));
            if b <= a {
                continue;
            }
            let (nl, nr) = (i + 1, nn - i - 1);
            if nm == 0 {
                if nl >= min_leaf && nr >= min_leaf {
                    // With no missing rows here, unseen missing values follow
                    // the heavier child.
                    offer(
                        self.proxy(node, wl, 0.0, false),
                        midpoint(a, b),
                        wl >= node.stats.weight - wl,
                    );
                }
            } else {
                if nl + nm >= min_leaf && nr >= min_leaf {
                    offer(self.proxy(node, wl, wm, true), midpoint(a, b), true);
                }
                if nl >= min_leaf && nr + nm >= min_leaf {
                    offer(self.proxy(node, wl, wm, false), midpoint(a, b), false);
                }
            }
        }
        if nm > 0 && nn >= min_leaf && nm >= min_leaf {
            // Every present value left, every missing one right.
            wl += self.add(true, (self.keys[nn - 1] & 0xFFFF_FFFF) as usize);
            offer(self.proxy(node, wl, wm, false), f32::INFINITY, false);
        }
        Scan::Evaluated
    }

    /// One random threshold of feature `f` over `rows`.
    fn scan_random(
        &mut self,
        f: usize,
        rows: &[u32],
        node: &NodeView<'_>,
        rng: &mut Rng,
        best: &mut Option<Split>,
    ) -> Scan {
        let col = self.data.column(f);
        let (mut lo, mut hi, mut nm) = (f32::INFINITY, f32::NEG_INFINITY, 0usize);
        for &r in rows {
            let v = col[r as usize];
            if v.is_nan() {
                nm += 1;
            } else {
                lo = lo.min(v);
                hi = hi.max(v);
            }
        }
        if lo >= hi {
            return Scan::Constant;
        }
        let threshold = draw_threshold(lo, hi, rng);
        let draw_left = nm > 0 && rng.below(2) == 1;
        self.left.fill(0.0);
        self.miss.fill(0.0);
        let (mut wl, mut wm, mut nl) = (0.0, 0.0, 0usize);
        for &r in rows {
            let v = col[r as usize];
            if v.is_nan() {
                wm += self.add(false, r as usize);
            } else if v <= threshold {
                wl += self.add(true, r as usize);
                nl += 1;
            }
        }
        let missing_left = if nm > 0 {
            draw_left
        } else {
            wl >= node.stats.weight - wl
        };
        let left_rows = nl + if missing_left { nm } else { 0 };
        if left_rows >= self.min_leaf && rows.len() - left_rows >= self.min_leaf {
            let with_missing = nm > 0 && missing_left;
            if let Some(proxy) = self.proxy(node, wl, wm, with_missing) {
                let s = Split {
                    feature: f as u32,
                    threshold,
                    missing_left,
                    proxy,
                    cut: 0,
                };
                s.offer(best);
            }
        }
        Scan::Evaluated
    }
}

impl NodeSplitter for ExactSplitter<'_> {
    type Cache = ();

    fn n_rows(&self) -> usize {
        self.rows.len()
    }

    fn stats(&self, range: Range<usize>, sums: &mut [f64]) -> NodeStats {
        let (d, w) = (self.data, self.weight);
        let rows = self.rows[range].iter().map(|&r| {
            let r = r as usize;
            (d.slot[r], w[r], d.value[r])
        });
        NodeStats::compute(rows, sums, self.criterion)
    }

    fn scan(
        &mut self,
        features: &[u32],
        node: &NodeView<'_>,
        _cache: Option<&()>,
        rng: &mut Rng,
        best: &mut Option<Split>,
        scans: &mut Vec<Scan>,
    ) {
        let all = std::mem::take(&mut self.rows);
        let rows = &all[node.range.clone()];
        for &f in features {
            let f = f as usize;
            scans.push(match self.kind {
                Kind::Best => self.scan_best(f, rows, node, best),
                Kind::Random => self.scan_random(f, rows, node, rng, best),
            });
        }
        self.rows = all;
    }

    fn partition(&mut self, range: Range<usize>, s: &Split) -> usize {
        let col = self.data.column(s.feature as usize);
        let rows = &mut self.rows[range.clone()];
        let (mut i, mut j) = (0, rows.len());
        while i < j {
            let v = col[rows[i] as usize];
            let goes_left = if v.is_nan() {
                s.missing_left
            } else {
                v <= s.threshold
            };
            if goes_left {
                i += 1;
            } else {
                j -= 1;
                rows.swap(i, j);
            }
        }
        range.start + i
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

    #[test]
    fn random_thresholds_stay_in_range() {
        let mut rng = Rng::new(3);
        for (lo, hi) in [
            (0.0, 1.0),
            (-5.0, -4.999),
            (1.0, f32::from_bits(1.0f32.to_bits() + 1)),
        ] {
            for _ in 0..1000 {
                let t = draw_threshold(lo, hi, &mut rng);
                assert!(lo <= t && t < hi, "{lo} {hi} {t}");
            }
        }
        assert!(draw_threshold(f32::MIN, f32::MAX, &mut rng).is_finite());
    }
}
