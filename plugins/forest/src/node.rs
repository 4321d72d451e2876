//! What growth and split search share: a node's statistics, the split
//! found for it, and the [`NodeSplitter`] interface that exact and
//! histogram search implement.

use std::ops::Range;

use crate::{config::Criterion, rng::Rng};

/// Impurities at or below this count as pure (scikit-learn's `EPSILON`).
pub const PURE: f64 = f64::EPSILON;

/// Weight and impurity of the rows in one node; their summed statistics
/// (weighted class counts, or the weighted target sum) live beside them.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct NodeStats {
    /// Total weight.
    pub weight: f64,
    /// The node's impurity under the criterion.
    pub impurity: f64,
}

impl NodeStats {
    /// Statistics of rows given as `(slot, weight, value)`: each adds
    /// `weight * value` to its slot of `sums` (zeroed here).
    pub fn compute<I>(rows: I, sums: &mut [f64], criterion: Criterion) -> Self
    where
        I: Iterator<Item = (u32, f64, f64)> + Clone,
    {
        sums.fill(0.0);
        let mut w = 0.0;
        for (slot, weight, value) in rows.clone() {
            sums[slot as usize] += weight * value;
            w += weight;
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
                        .map(|(_, weight, v)| weight * (v - mean) * (v - mean))
                        .sum();
                    sse / w
                }
            }
        };
        Self {
            weight: w,
            impurity,
        }
    }
}

/// A node as split search sees it.
#[derive(Clone, Debug)]
pub struct NodeView<'a> {
    /// Its rows, in the splitter's order.
    pub range: Range<usize>,
    /// Its weight and impurity.
    pub stats: NodeStats,
    /// Its summed statistics.
    pub sums: &'a [f64],
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
    /// Histogram search: present values in bins `0..=cut` go left.
    pub cut: u8,
}

impl Split {
    /// Keeps `self` in `best` when it is strictly better (the first of
    /// equal splits wins).
    pub fn offer(self, best: &mut Option<Split>) {
        if best.is_none_or(|b| self.proxy > b.proxy) {
            *best = Some(self);
        }
    }
}

/// What scanning one feature found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scan {
    /// Every row has the same value: useless here and in every descendant.
    Constant,
    /// The feature was evaluated (a split may or may not have improved).
    Evaluated,
}

/// Split search for one tree. It owns the tree's sampled rows, in an order
/// where every node's rows are the contiguous range the grower names.
pub trait NodeSplitter {
    /// What a node keeps for its children's search (histograms).
    type Cache;
    /// Number of rows in the tree's sample.
    fn n_rows(&self) -> usize;
    /// Statistics of the rows in `range`, their sums into `sums`.
    fn stats(&self, range: Range<usize>, sums: &mut [f64]) -> NodeStats;
    /// Scans `features` over `node`, replacing `best` with any better
    /// split, and appends what it found for each feature to `scans`.
    fn scan(
        &mut self,
        features: &[u32],
        node: &NodeView<'_>,
        cache: Option<&Self::Cache>,
        rng: &mut Rng,
        best: &mut Option<Split>,
        scans: &mut Vec<Scan>,
    );
    /// Moves the rows of `range` going left to its front; returns where
    /// the right side starts.
    fn partition(&mut self, range: Range<usize>, split: &Split) -> usize;
    /// The root's cache, if this search keeps any.
    fn root_cache(&mut self) -> Option<Self::Cache> {
        None
    }
    /// The children's caches from the parent's, given the children's row
    /// ranges and the features known to be constant in them.
    fn child_caches(
        &mut self,
        _parent: Option<Self::Cache>,
        _ranges: [Range<usize>; 2],
        _constants: &[u32],
    ) -> [Option<Self::Cache>; 2] {
        [None, None]
    }
    /// Takes back a cache no longer needed.
    fn recycle(&mut self, _cache: Self::Cache) {}
}
