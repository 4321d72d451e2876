//! Histogram split search, on tessera-trees.
//!
//! Two regimes, picked per fit by how many features a node evaluates:
//!
//! * few (`max_features` well below the feature count, the forest's
//!   `sqrt` default): each drawn feature's histogram is built from the
//!   node's rows into one reused [`Hist`], scanned over the bins in use
//!   only, and cleared; cost per node is `rows x features drawn`.
//! * many (decision trees, regression forests): a node keeps a [`HistSet`]
//!   of every feature; when it splits, only the smaller child's set is
//!   built and the larger child's is the parent's minus it (the
//!   subtraction trick), so a level costs at most half its rows per
//!   feature. Nodes too small to pay for dense histograms fall back to the
//!   first regime.
//!
//! Thresholds are bin boundaries, real feature values, so the model
//! predicts on raw floats; partitions go by bins, which agree with them.

use std::ops::Range;

use tessera_trees::{
    BinnedData, Hist, HistSet, HistView, Limits, MISSING_BIN, RowStore, Score, SplitFinder, Target,
};

use crate::{
    config::{Criterion, Splitter as Kind},
    node::{NodeSplitter, NodeStats, NodeView, Scan, Split},
    rng::Rng,
    split::draw_threshold,
};

/// Nodes with fewer rows than this use few-feature histograms.
pub const DENSE_MIN_ROWS: usize = 512;
/// At most this many bytes of dense histogram sets are alive per tree
/// (best-first growth could otherwise hold one per frontier node), and at
/// most `MAX_LIVE_SETS` sets.
const MAX_LIVE_BYTES: usize = 64 << 20;
const MAX_LIVE_SETS: usize = 48;

/// A target whose per-row statistics also give the node statistics.
pub trait RowTarget: Target {
    /// `(slot, weight, value)` of a row, as [`NodeStats::compute`] reads.
    fn parts(row: Self::Row) -> (u32, f64, f64);
}

/// Classification: rows are `(class, weight)`, bins weighted class counts.
pub struct Classes {
    /// Number of classes.
    pub n_classes: usize,
}

impl Target for Classes {
    type Row = (u32, f64);
    fn width(&self) -> usize {
        self.n_classes
    }
    #[inline]
    fn add(&self, (c, w): (u32, f64), slot: &mut [f64]) {
        slot[c as usize] += w;
    }
}

impl RowTarget for Classes {
    fn parts((c, w): (u32, f64)) -> (u32, f64, f64) {
        (c, w, 1.0)
    }
}

/// Regression: rows are `(weight, target)`, bins `[weight, weighted
/// target]`.
pub struct Values;

impl Target for Values {
    type Row = (f64, f64);
    fn width(&self) -> usize {
        2
    }
    #[inline]
    fn add(&self, (w, y): (f64, f64), slot: &mut [f64]) {
        slot[0] += w;
        slot[1] += w * y;
    }
}

impl RowTarget for Values {
    fn parts((w, y): (f64, f64)) -> (u32, f64, f64) {
        (0, w, y)
    }
}

/// What a histogram splitter is configured with.
pub struct HistConfig {
    /// Best or random thresholds.
    pub kind: Kind,
    /// What each child must keep.
    pub limits: Limits,
    /// Whether to keep dense histograms (the subtraction trick).
    pub dense: bool,
    /// Criterion of the node statistics.
    pub criterion: Criterion,
}

/// Histogram split search for one tree.
pub struct HistSplitter<'a, T: RowTarget, S: Score> {
    data: &'a BinnedData,
    rows: RowStore<T::Row>,
    target: T,
    score: S,
    cfg: HistConfig,
    hist: Hist,
    finder: SplitFinder,
    pool: Vec<HistSet>,
    live: usize,
    /// Features outside the constants last passed to `mark`.
    varying: Vec<usize>,
    batch: Vec<usize>,
}

impl<'a, T: RowTarget, S: Score> HistSplitter<'a, T, S> {
    /// A splitter over the rows `ids` of `data` with statistics `stats`,
    /// for `target` scored by `score`.
    pub fn new(
        data: &'a BinnedData,
        ids: Vec<u32>,
        stats: Vec<T::Row>,
        target: T,
        score: S,
        cfg: HistConfig,
    ) -> Self {
        let width = target.width();
        Self {
            data,
            rows: RowStore::new(data, ids, stats),
            target,
            score,
            cfg,
            hist: Hist::new(width),
            finder: SplitFinder::new(),
            pool: Vec::new(),
            live: 0,
            varying: Vec::new(),
            batch: Vec::new(),
        }
    }

    /// A dense set for the rows in `range` of the features not in
    /// `constants`, or `None` when too many are alive.
    fn build_set(&mut self, range: Range<usize>, constants: &[u32]) -> Option<HistSet> {
        let n_features = self.data.n_features();
        let set_bytes = n_features * tessera_trees::N_BINS * (4 + 8 * self.target.width());
        let max_live = (MAX_LIVE_BYTES / set_bytes.max(1)).clamp(2, MAX_LIVE_SETS);
        if self.live >= max_live {
            return None;
        }
        let mut set = self
            .pool
            .pop()
            .unwrap_or_else(|| HistSet::new(n_features, self.target.width()));
        self.live += 1;
        self.mark(constants);
        set.build(&self.rows, range, &self.varying, &self.target);
        Some(set)
    }

    /// Sets `self.varying` to the features outside `constants`.
    fn mark(&mut self, constants: &[u32]) {
        self.varying.clear();
        self.varying.extend(0..self.data.n_features());
        self.varying.retain(|f| !constants.contains(&(*f as u32)));
    }

    /// Scores feature `f` given its histogram.
    #[allow(clippy::too_many_arguments)]
    fn evaluate(
        finder: &mut SplitFinder,
        data: &BinnedData,
        score: &S,
        kind: Kind,
        limits: &Limits,
        f: usize,
        view: HistView<'_>,
        bins: impl Iterator<Item = u8> + Clone,
        rng: &mut Rng,
        best: &mut Option<Split>,
    ) -> Scan {
        let mut present = bins.clone().filter(|&b| b != MISSING_BIN);
        let (Some(lo_bin), has_missing) = (present.next(), view.count(MISSING_BIN) > 0) else {
            return Scan::Constant;
        };
        let hi_bin = present.last().unwrap_or(lo_bin);
        let mapper = data.mapper(f);
        // The random threshold, when it separates the node's values as the
        // chosen bins do.
        let mut drawn = None;
        let found = match kind {
            Kind::Best => {
                if lo_bin == hi_bin && !has_missing {
                    return Scan::Constant;
                }
                finder.best(view, bins, score, limits)
            }
            Kind::Random => {
                if lo_bin == hi_bin {
                    return Scan::Constant;
                }
                // Uniform between the node's smallest and largest value,
                // as far as bins tell them; the rows left are those whose
                // bins lie wholly at or below the draw.
                let (lo, _) = mapper.value_range(lo_bin);
                let (_, hi) = mapper.value_range(hi_bin);
                let t = draw_threshold(lo, hi, rng);
                let b = mapper.bin(t);
                let b = if mapper.value_range(b).0 > t {
                    b.saturating_sub(1)
                } else {
                    b
                };
                let cut = b.clamp(lo_bin, hi_bin - 1);
                let missing_left = has_missing && rng.below(2) == 1;
                drawn = Some(t);
                finder.at(view, bins, cut, missing_left, score, limits)
            }
        };
        if let Some(s) = found {
            let between = |t: f32| {
                let below = mapper.value_range(s.cut).1 <= t;
                below && (s.next == MISSING_BIN || t < mapper.value_range(s.next).0)
            };
            let threshold = match drawn {
                Some(t) if between(t) => t,
                _ => mapper.split_threshold(s.cut, s.next),
            };
            Split {
                feature: f as u32,
                threshold,
                missing_left: s.missing_left,
                proxy: s.proxy,
                cut: s.cut,
            }
            .offer(best);
        }
        Scan::Evaluated
    }
}

impl<T: RowTarget, S: Score> NodeSplitter for HistSplitter<'_, T, S> {
    type Cache = HistSet;

    fn n_rows(&self) -> usize {
        self.rows.len()
    }

    fn stats(&self, range: Range<usize>, sums: &mut [f64]) -> NodeStats {
        let rows = self.rows.stats(range).iter().map(|&r| T::parts(r));
        NodeStats::compute(rows, sums, self.cfg.criterion)
    }

    fn scan(
        &mut self,
        features: &[u32],
        node: &NodeView<'_>,
        cache: Option<&HistSet>,
        rng: &mut Rng,
        best: &mut Option<Split>,
        scans: &mut Vec<Scan>,
    ) {
        let (finder, data, score) = (&mut self.finder, self.data, &self.score);
        let (kind, limits) = (self.cfg.kind, &self.cfg.limits);
        if let Some(set) = cache {
            for &f in features {
                let view = set.view(f as usize);
                let bins = view.bins();
                let f = f as usize;
                scans.push(Self::evaluate(
                    finder, data, score, kind, limits, f, view, bins, rng, best,
                ));
            }
            return;
        }
        self.batch.clear();
        self.batch.extend(features.iter().map(|&f| f as usize));
        self.hist
            .build(&self.rows, node.range.clone(), &self.batch, &self.target);
        for (j, &f) in self.batch.iter().enumerate() {
            let (view, bins) = (self.hist.view(j), self.hist.bins_in_use(j));
            scans.push(Self::evaluate(
                finder, data, score, kind, limits, f, view, bins, rng, best,
            ));
        }
    }

    fn partition(&mut self, range: Range<usize>, s: &Split) -> usize {
        let f = s.feature as usize;
        self.rows.partition(range, f, s.cut, s.missing_left)
    }

    fn root_cache(&mut self) -> Option<HistSet> {
        if self.cfg.dense && self.rows.len() >= DENSE_MIN_ROWS {
            self.build_set(0..self.rows.len(), &[])
        } else {
            None
        }
    }

    fn child_caches(
        &mut self,
        parent: Option<HistSet>,
        ranges: [Range<usize>; 2],
        constants: &[u32],
    ) -> [Option<HistSet>; 2] {
        let Some(mut parent) = parent else {
            return [None, None];
        };
        let small = usize::from(ranges[1].len() < ranges[0].len());
        if ranges[1 - small].len() < DENSE_MIN_ROWS {
            self.recycle(parent);
            return [None, None];
        }
        let Some(child) = self.build_set(ranges[small].clone(), constants) else {
            self.recycle(parent);
            return [None, None];
        };
        parent.subtract(&child, &self.varying);
        if small == 0 {
            [Some(child), Some(parent)]
        } else {
            [Some(parent), Some(child)]
        }
    }

    fn recycle(&mut self, cache: HistSet) {
        self.live -= 1;
        self.pool.push(cache);
    }
}
