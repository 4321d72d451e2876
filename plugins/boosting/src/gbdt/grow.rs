//! Leaf-wise tree growth on gradient histograms.
//!
//! The tree starts as one leaf holding every sampled row. Each open leaf
//! knows its best split; the leaf whose split gains most is split next,
//! until `max_leaf_nodes` leaves exist or no leaf can be split (depth,
//! `min_samples_leaf`, the smallest hessian sum, or no gain). Rows are
//! indices kept in one array, each leaf owning a contiguous range; a split
//! partitions its range in place (stably, in parallel for large leaves).
//! Only the smaller child's histogram is built; the larger child takes over
//! its parent's histogram minus the smaller one's.

use rayon::prelude::*;
use tessera_trees::{BinnedData, MISSING_BIN, prefetch::prefetch};

use super::{
    hist::{self, Bin, EMPTY, FeatureHist, RowBins},
    tree::{Node, Tree},
};

/// Limits and regularisation of one tree.
#[derive(Clone, Copy, Debug)]
pub struct GrowParams {
    /// Most leaves.
    pub max_leaves: usize,
    /// Deepest leaf (root = 0).
    pub max_depth: usize,
    /// Fewest rows per leaf.
    pub min_samples_leaf: u32,
    /// L2 penalty added to hessian sums.
    pub l2: f64,
    /// Smallest hessian sum per child.
    pub min_hessian: f64,
    /// Shrinkage applied to leaf values.
    pub learning_rate: f64,
}

/// A candidate split of a leaf.
#[derive(Clone, Copy, Debug)]
struct Split {
    feature: usize,
    cut: u8,
    missing_left: bool,
    gain: f64,
    left: Bin,
    right: Bin,
}

/// A leaf that may still be split.
struct Open {
    lo: usize,
    hi: usize,
    depth: usize,
    sum: Bin,
    hist: Option<usize>,
    split: Option<Split>,
    node: usize,
    bounds: Bounds,
}

/// The range a leaf's value (before shrinkage) must stay in, so that
/// monotonic constraints hold between subtrees.
pub type Bounds = (f64, f64);

/// No bounds.
pub const UNBOUNDED: Bounds = (f64::NEG_INFINITY, f64::INFINITY);

/// A leaf of a grown tree: its rows are `idx[lo..hi]`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Leaf {
    /// First row position.
    pub lo: usize,
    /// End of its rows.
    pub hi: usize,
    /// Its node in the tree.
    pub node: usize,
    /// Its gradient sums.
    pub sum: Bin,
    /// The range its value (before shrinkage) must stay in.
    pub bounds: Bounds,
}

/// A grown tree and where its leaves' rows are.
pub struct Grown {
    /// The tree.
    pub tree: Tree,
    /// Its leaves.
    pub leaves: Vec<Leaf>,
}

/// What the grower needs of the training data.
pub struct Data<'a> {
    /// Row-major bins, for histograms.
    pub rows: RowBins<'a>,
    /// Column-major bins and mappers, for partitions and thresholds.
    pub cols: &'a BinnedData,
}

/// Reusable buffers for growing trees.
pub struct Grower {
    params: GrowParams,
    n_features: usize,
    pool: Vec<Vec<FeatureHist>>,
    free: Vec<usize>,
    scratch: Vec<Vec<FeatureHist>>,
    /// Per feature: +1 (value may only rise with the feature), -1 (only
    /// fall) or 0; empty when nothing is constrained.
    monotonic: Vec<i8>,
}

#[inline]
fn score(b: Bin, l2: f64) -> f64 {
    b.g * b.g / (b.h + l2)
}

impl Grower {
    /// A grower for `n_features` features.
    pub fn new(params: GrowParams, n_features: usize) -> Self {
        Self {
            params,
            n_features,
            pool: Vec::new(),
            free: Vec::new(),
            scratch: vec![vec![EMPTY; n_features]; hist::MAX_BLOCKS - 1],
            monotonic: Vec::new(),
        }
    }

    /// Constrains the trees: per feature +1 (predictions may only rise as
    /// the feature rises), -1 (only fall) or 0 (free).
    pub fn with_monotonic(mut self, cst: Vec<i8>) -> Self {
        self.monotonic = if cst.iter().any(|&c| c != 0) {
            cst
        } else {
            Vec::new()
        };
        self
    }

    /// A leaf's best value within `bounds` (before shrinkage).
    fn value(&self, b: Bin, bounds: Bounds) -> f64 {
        let d = b.h + self.params.l2;
        let v = if d > 0.0 { -b.g / d } else { 0.0 };
        v.clamp(bounds.0, bounds.1)
    }

    /// The children's bounds after splitting a leaf bounded by `bounds` on
    /// `feature` into children of sums `left` and `right`.
    fn child_bounds(&self, feature: usize, bounds: Bounds, left: Bin, right: Bin) -> [Bounds; 2] {
        let c = self.monotonic.get(feature).copied().unwrap_or(0);
        if c == 0 {
            return [bounds, bounds];
        }
        let mid = (self.value(left, bounds) + self.value(right, bounds)) / 2.0;
        let low = (bounds.0, bounds.1.min(mid));
        let high = (bounds.0.max(mid), bounds.1);
        if c > 0 { [low, high] } else { [high, low] }
    }

    fn take(&mut self) -> usize {
        self.free.pop().unwrap_or_else(|| {
            self.pool.push(vec![EMPTY; self.n_features]);
            self.pool.len() - 1
        })
    }

    /// The best split of a leaf with sums `sum` (exact count) over
    /// `features`. Bin counts are the hessian sums when `exact_counts`
    /// (unit hessians), otherwise estimated from them in proportion to the
    /// leaf's rows per hessian.
    fn best_split(
        &self,
        data: &Data<'_>,
        h: &[FeatureHist],
        sum: Bin,
        features: &[usize],
        exact_counts: bool,
        bounds: Bounds,
    ) -> Option<Split> {
        let p = &self.params;
        let constrained = !self.monotonic.is_empty();
        // With monotonic constraints leaf values are clipped to bounds: a
        // side's score is then -(2 G v + (H + l2) v^2) at its clipped value
        // v, which is G^2 / (H + l2) when nothing is clipped.
        let bounded = |b: Bin| {
            let v = self.value(b, bounds);
            -(2.0 * b.g * v + (b.h + p.l2) * v * v)
        };
        let parent = if constrained {
            bounded(sum)
        } else {
            score(sum, p.l2)
        };
        let min_gain = 1e-12 * parent.abs() + 1e-15;
        let per_hessian = if exact_counts || sum.h <= 0.0 {
            1.0
        } else {
            f64::from(sum.n) / sum.h
        };
        // Rounded to nearest; `as` saturates the rare negative (noise) to 0.
        let count = |h: f64| (h * per_hessian + 0.5) as u32;
        let rest = |acc: Bin| Bin {
            g: sum.g - acc.g,
            h: sum.h - acc.h,
            n: sum.n.saturating_sub(acc.n),
        };
        let mut best: Option<Split> = None;
        let mut consider = |feature: usize, cut: u8, missing_left: bool, left: Bin, right: Bin| {
            if left.n < p.min_samples_leaf
                || right.n < p.min_samples_leaf
                || left.h < p.min_hessian
                || right.h < p.min_hessian
            {
                return;
            }
            let gain = if constrained {
                let c = self.monotonic[feature];
                let (vl, vr) = (self.value(left, bounds), self.value(right, bounds));
                if (c > 0 && vl > vr) || (c < 0 && vl < vr) {
                    return;
                }
                bounded(left) + bounded(right) - parent
            } else {
                score(left, p.l2) + score(right, p.l2) - parent
            };
            if gain > min_gain && best.is_none_or(|b| gain > b.gain) {
                best = Some(Split {
                    feature,
                    cut,
                    missing_left,
                    gain,
                    left,
                    right,
                });
            }
        };
        for &f in features {
            let m = data.cols.mapper(f);
            if m.is_constant() {
                continue;
            }
            let fh = &h[f];
            let me = fh[usize::from(MISSING_BIN)];
            let miss = Bin {
                g: me.g,
                h: me.h,
                n: count(me.h),
            };
            let mut acc = Bin::default();
            let mut acc_h = 0.0f64;
            for (b, e) in fh[..m.n_bins()].iter().enumerate() {
                if e.h == 0.0 && e.g == 0.0 {
                    continue;
                }
                acc_h += e.h;
                acc = Bin {
                    g: acc.g + e.g,
                    h: acc_h,
                    n: count(acc_h),
                };
                let right = rest(acc);
                // The left side only grows and the right only shrinks: skip
                // cuts whose left side is too small either way, and stop
                // once the right side is.
                if right.n < p.min_samples_leaf {
                    break;
                }
                if acc.n + miss.n < p.min_samples_leaf {
                    continue;
                }
                if miss.h <= 0.0 {
                    // No missing values here: unseen ones go to the larger
                    // child.
                    consider(f, b as u8, acc.h >= right.h, acc, right);
                } else {
                    consider(f, b as u8, false, acc, right);
                    let left = Bin {
                        g: acc.g + miss.g,
                        h: acc.h + miss.h,
                        n: count(acc.h + miss.h),
                    };
                    consider(f, b as u8, true, left, rest(left));
                }
            }
        }
        best
    }

    fn can_split(&self, n: usize, depth: usize) -> bool {
        depth < self.params.max_depth && n >= 2 * self.params.min_samples_leaf as usize
    }

    /// Grows one tree on the rows `idx` (reordered: each leaf's rows end up
    /// contiguous) with gradients `gh`, splitting only on `features`
    /// (all when `None`). With `unit_hessian` every row's hessian is 1, so
    /// histogram hessian sums are row counts. Adds each split's gain and
    /// count to `gains` and `splits` per feature.
    #[allow(clippy::too_many_arguments)]
    pub fn grow(
        &mut self,
        data: &Data<'_>,
        idx: &mut [u32],
        gh: &[[f32; 2]],
        features: Option<&[usize]>,
        unit_hessian: bool,
        gains: &mut [f64],
        splits: &mut [u64],
    ) -> Grown {
        let all: Vec<usize>;
        let feature_list: &[usize] = match features {
            Some(f) => f,
            None => {
                all = (0..self.n_features).collect();
                &all
            }
        };
        let p = self.params;
        let root_hist = self.take();
        let out = &mut self.pool[root_hist];
        hist::build(out, &mut self.scratch, &data.rows, idx, gh, features);
        let (g, h) = out[feature_list[0]]
            .iter()
            .fold((0.0, 0.0), |(g, h), e| (g + e.g, h + e.h));
        let sum = Bin {
            g,
            h,
            n: idx.len() as u32,
        };
        let mut nodes = vec![Node::leaf(0.0)];
        let split = if self.can_split(idx.len(), 0) {
            self.best_split(
                data,
                &self.pool[root_hist],
                sum,
                feature_list,
                unit_hessian,
                UNBOUNDED,
            )
        } else {
            None
        };
        let mut open = vec![Open {
            lo: 0,
            hi: idx.len(),
            depth: 0,
            sum,
            hist: Some(root_hist),
            split,
            node: 0,
            bounds: UNBOUNDED,
        }];
        let mut done: Vec<Leaf> = Vec::new();
        let mut leaves = 1;
        while leaves < p.max_leaves {
            let Some(j) = open
                .iter()
                .enumerate()
                .filter_map(|(j, o)| o.split.map(|s| (j, s.gain)))
                .max_by(|a, b| a.1.total_cmp(&b.1).then(b.0.cmp(&a.0)))
                .map(|(j, _)| j)
            else {
                break;
            };
            let leaf = open.swap_remove(j);
            let s = leaf.split.expect("chosen leaves have a split");
            let mid = leaf.lo
                + partition(
                    &mut idx[leaf.lo..leaf.hi],
                    data.cols.column(s.feature),
                    s.cut,
                    s.missing_left,
                );
            // Estimated counts can be off: a split leaving a child short of
            // min_samples_leaf rows is not made, and the leaf stays a leaf.
            let (n_left, n_right) = (mid - leaf.lo, leaf.hi - mid);
            let least = p.min_samples_leaf as usize;
            if n_left < least || n_right < least {
                if let Some(h) = leaf.hist {
                    self.free.push(h);
                }
                done.push(Leaf {
                    lo: leaf.lo,
                    hi: leaf.hi,
                    node: leaf.node,
                    sum: leaf.sum,
                    bounds: leaf.bounds,
                });
                continue;
            }
            let (l, r) = (nodes.len(), nodes.len() + 1);
            nodes[leaf.node] = Node {
                feature: s.feature as u32,
                threshold: data.cols.mapper(s.feature).threshold(s.cut),
                bin: s.cut,
                missing_left: s.missing_left,
                left: l as u32,
                right: r as u32,
                value: 0.0,
            };
            nodes.push(Node::leaf(0.0));
            nodes.push(Node::leaf(0.0));
            gains[s.feature] += s.gain;
            splits[s.feature] += 1;
            leaves += 1;

            let depth = leaf.depth + 1;
            let (mut left_sum, mut right_sum) = (s.left, s.right);
            left_sum.n = n_left as u32;
            right_sum.n = n_right as u32;
            let children = [(leaf.lo, mid, left_sum, l), (mid, leaf.hi, right_sum, r)];
            let splittable = |c: &(usize, usize, Bin, usize)| {
                leaves < p.max_leaves && self.can_split(c.1 - c.0, depth)
            };
            let want = [splittable(&children[0]), splittable(&children[1])];
            let parent_hist = leaf
                .hist
                .expect("open leaves with a split keep their histogram");
            let mut hists = [None, None];
            if want[0] || want[1] {
                // Build the smaller child; the larger takes the parent's
                // histogram minus the smaller's.
                let small =
                    usize::from(children[1].1 - children[1].0 < children[0].1 - children[0].0);
                let large = 1 - small;
                let sh = self.take();
                let mut small_hist = std::mem::take(&mut self.pool[sh]);
                let (lo, hi) = (children[small].0, children[small].1);
                hist::build(
                    &mut small_hist,
                    &mut self.scratch,
                    &data.rows,
                    &idx[lo..hi],
                    gh,
                    features,
                );
                let mut parent = std::mem::take(&mut self.pool[parent_hist]);
                if want[large] {
                    hist::subtract(&mut parent, &small_hist, features, data.rows.n_bins);
                }
                self.pool[sh] = small_hist;
                self.pool[parent_hist] = parent;
                hists[small] = Some(sh);
                hists[large] = Some(parent_hist);
            } else {
                self.free.push(parent_hist);
            }
            // The two children's split searches are independent: run them
            // side by side.
            let bounds = self.child_bounds(s.feature, leaf.bounds, left_sum, right_sum);
            let search = |c: usize| match hists[c] {
                Some(h) if want[c] => self.best_split(
                    data,
                    &self.pool[h],
                    children[c].2,
                    feature_list,
                    unit_hessian,
                    bounds[c],
                ),
                _ => None,
            };
            let found = if want[0] && want[1] {
                rayon::join(|| search(0), || search(1))
            } else {
                (search(0), search(1))
            };
            for (c, child) in children.iter().enumerate() {
                let split = if c == 0 { found.0 } else { found.1 };
                let hist = match (split, hists[c]) {
                    (Some(_), h) => h,
                    (None, Some(h)) => {
                        self.free.push(h);
                        None
                    }
                    (None, None) => None,
                };
                let o = Open {
                    lo: child.0,
                    hi: child.1,
                    depth,
                    sum: child.2,
                    hist,
                    split,
                    node: child.3,
                    bounds: bounds[c],
                };
                if o.split.is_some() {
                    open.push(o);
                } else {
                    done.push(Leaf {
                        lo: o.lo,
                        hi: o.hi,
                        node: o.node,
                        sum: o.sum,
                        bounds: o.bounds,
                    });
                }
            }
        }
        for o in open {
            if let Some(h) = o.hist {
                self.free.push(h);
            }
            done.push(Leaf {
                lo: o.lo,
                hi: o.hi,
                node: o.node,
                sum: o.sum,
                bounds: o.bounds,
            });
        }
        for leaf in &done {
            nodes[leaf.node].value = (p.learning_rate * self.value(leaf.sum, leaf.bounds)) as f32;
        }
        done.sort_unstable_by_key(|l| l.lo);
        Grown {
            tree: Tree { nodes },
            leaves: done,
        }
    }
}

/// Rows above which a partition runs in parallel.
const PARALLEL_PARTITION: usize = 16 * 1024;

/// Reorders `idx` stably so the rows going left (bin `<= cut`, or missing
/// with `missing_left`) come first; returns how many do.
pub fn partition(idx: &mut [u32], col: &[u8], cut: u8, missing_left: bool) -> usize {
    let goes_left = |i: u32| {
        let b = col[i as usize];
        (b <= cut) & (b != MISSING_BIN) | (b == MISSING_BIN) & missing_left
    };
    // Branch-free: every row is written both to the next left slot (in
    // place: it never passes the read position) and to the next right
    // slot, and only the matching counter advances.
    let stable = |chunk: &mut [u32]| -> usize {
        let mut right = vec![0u32; chunk.len()];
        let (mut l, mut r) = (0usize, 0usize);
        for k in 0..chunk.len() {
            if let Some(&j) = chunk.get(k + 32) {
                prefetch(&col[j as usize]);
            }
            let i = chunk[k];
            let left = goes_left(i);
            chunk[l] = i;
            right[r] = i;
            l += usize::from(left);
            r += usize::from(!left);
        }
        chunk[l..].copy_from_slice(&right[..r]);
        l
    };
    let threads = rayon::current_num_threads();
    if idx.len() < PARALLEL_PARTITION || threads < 2 {
        return stable(idx);
    }
    let per = idx.len().div_ceil(threads * 2);
    let lefts: Vec<usize> = idx.par_chunks_mut(per).map(stable).collect();
    // Each chunk is [its left | its right]: gather all lefts, then rights.
    let mut out = Vec::with_capacity(idx.len());
    for (c, &l) in idx.chunks(per).zip(&lefts) {
        out.extend_from_slice(&c[..l]);
    }
    for (c, &l) in idx.chunks(per).zip(&lefts) {
        out.extend_from_slice(&c[l..]);
    }
    idx.copy_from_slice(&out);
    lefts.iter().sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partition_is_stable_and_parallel_matches_sequential() {
        let n = 200_000;
        let col: Vec<u8> = (0..n)
            .map(|i| {
                if i % 11 == 0 {
                    MISSING_BIN
                } else {
                    (i * 31 % 7) as u8
                }
            })
            .collect();
        let idx: Vec<u32> = (0..n as u32).filter(|i| i % 3 != 0).collect();
        for missing_left in [false, true] {
            let mut a = idx.clone();
            let l = partition(&mut a, &col, 3, missing_left);
            let goes = |i: &u32| {
                let b = col[*i as usize];
                if b == MISSING_BIN {
                    missing_left
                } else {
                    b <= 3
                }
            };
            let (left, right): (Vec<u32>, Vec<u32>) = idx.iter().partition(|i| goes(i));
            assert_eq!(l, left.len());
            assert_eq!(&a[..l], &left[..]);
            assert_eq!(&a[l..], &right[..]);
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(2)
                .build()
                .unwrap();
            let mut b = idx.clone();
            assert_eq!(pool.install(|| partition(&mut b, &col, 3, missing_left)), l);
            assert_eq!(a, b);
        }
    }

    /// One feature whose bin is the row's value: the best split of a
    /// step target is at the step, and leaf-wise growth takes the biggest
    /// gains first.
    #[test]
    fn leaf_wise_growth_splits_the_biggest_gain_first() {
        let n = 400usize;
        let x: Vec<f32> = (0..n).map(|i| (i % 40) as f32).collect();
        let cols = BinnedData::from_rows(&x, n, 1, 255, false);
        let rows: Vec<u8> = cols.column(0).to_vec();
        // Target: -10 below 10, +1 in [10, 30), +3 from 30: the split at 10
        // gains most, then the one at 30.
        let y: Vec<f64> = x
            .iter()
            .map(|&v| {
                if v < 10.0 {
                    -10.0
                } else if v < 30.0 {
                    1.0
                } else {
                    3.0
                }
            })
            .collect();
        let gh: Vec<[f32; 2]> = y.iter().map(|&y| [-(y as f32), 1.0]).collect();
        let data = Data {
            rows: RowBins {
                bins: &rows,
                n_features: 1,
                n_bins: &[255],
            },
            cols: &cols,
        };
        let params = GrowParams {
            max_leaves: 3,
            max_depth: usize::MAX,
            min_samples_leaf: 5,
            l2: 0.0,
            min_hessian: 1e-3,
            learning_rate: 1.0,
        };
        let mut g = Grower::new(params, 1);
        let mut idx: Vec<u32> = (0..n as u32).collect();
        let (mut gains, mut splits) = (vec![0.0], vec![0]);
        let grown = g.grow(&data, &mut idx, &gh, None, true, &mut gains, &mut splits);
        let t = &grown.tree;
        assert_eq!(t.n_leaves(), 3);
        assert_eq!(splits, [2]);
        assert!(
            (t.nodes[0].threshold - 9.5).abs() < 1e-6,
            "{:?}",
            t.nodes[0]
        );
        for (v, expected) in [(0.0f32, -10.0f32), (15.0, 1.0), (35.0, 3.0)] {
            assert!(
                (t.value(&[v]) - expected).abs() < 1e-4,
                "{v}: {}",
                t.value(&[v])
            );
        }
        // Leaves cover all rows, each with the rows that reach it.
        let total: usize = grown.leaves.iter().map(|l| l.hi - l.lo).sum();
        assert_eq!(total, n);
        for leaf in &grown.leaves {
            for &i in &idx[leaf.lo..leaf.hi] {
                assert_eq!(t.value(&[x[i as usize]]), t.nodes[leaf.node].value);
                assert_eq!(t.value_binned(&cols, i as usize), t.nodes[leaf.node].value);
            }
        }
        // min_samples_leaf bounds leaves; max_depth 1 allows one split.
        let mut g = Grower::new(
            GrowParams {
                max_depth: 1,
                ..params
            },
            1,
        );
        let mut idx: Vec<u32> = (0..n as u32).collect();
        let grown = g.grow(&data, &mut idx, &gh, None, true, &mut gains, &mut splits);
        assert_eq!(grown.tree.n_leaves(), 2);
        let mut g = Grower::new(
            GrowParams {
                min_samples_leaf: 300,
                ..params
            },
            1,
        );
        let grown = g.grow(&data, &mut idx, &gh, None, true, &mut gains, &mut splits);
        assert_eq!(grown.tree.n_leaves(), 1);
    }

    /// With uneven hessians counts are estimated; every leaf still has at
    /// least min_samples_leaf rows.
    #[test]
    fn min_samples_leaf_holds_with_estimated_counts() {
        let n = 3000usize;
        let x: Vec<f32> = (0..n * 2).map(|i| ((i * 7919) % 1009) as f32).collect();
        let cols = BinnedData::from_rows(&x, n, 2, 255, false);
        // Hessians from 0.001 to 0.25 (log loss), gradients with signal.
        let gh: Vec<[f32; 2]> = (0..n)
            .map(|i| {
                let h = 0.001 + 0.249 * ((i * 31 % 97) as f32 / 96.0);
                let g = if x[i * 2] < 500.0 { -0.4 } else { 0.3 } + ((i % 13) as f32 - 6.0) * 0.01;
                [g, h]
            })
            .collect();
        let nb: Vec<usize> = (0..2).map(|f| cols.mapper(f).n_bins()).collect();
        let data = Data {
            rows: RowBins {
                bins: cols.row_major(),
                n_features: 2,
                n_bins: &nb,
            },
            cols: &cols,
        };
        for least in [1u32, 20, 150] {
            let params = GrowParams {
                max_leaves: 63,
                max_depth: usize::MAX,
                min_samples_leaf: least,
                l2: 0.0,
                min_hessian: 1e-3,
                learning_rate: 0.1,
            };
            let mut g = Grower::new(params, 2);
            let mut idx: Vec<u32> = (0..n as u32).collect();
            let grown = g.grow(
                &data,
                &mut idx,
                &gh,
                None,
                false,
                &mut [0.0; 2],
                &mut [0; 2],
            );
            assert!(
                grown.tree.n_leaves() >= 2,
                "{least}: {}",
                grown.tree.n_leaves()
            );
            for leaf in &grown.leaves {
                assert!(leaf.hi - leaf.lo >= least as usize, "{least}: {leaf:?}");
                assert_eq!(leaf.sum.n as usize, leaf.hi - leaf.lo);
            }
        }
    }

    #[test]
    fn missing_values_learn_their_direction() {
        // Missing rows behave like the high ones: they should go right.
        let n = 300usize;
        let x: Vec<f32> = (0..n)
            .map(|i| {
                if i % 3 == 0 {
                    f32::NAN
                } else {
                    (i % 50) as f32
                }
            })
            .collect();
        let y: Vec<f32> = x
            .iter()
            .map(|&v| if v.is_nan() || v >= 25.0 { 5.0 } else { -5.0 })
            .collect();
        let cols = BinnedData::from_rows(&x, n, 1, 255, false);
        let rows: Vec<u8> = cols.column(0).to_vec();
        let gh: Vec<[f32; 2]> = y.iter().map(|&y| [-y, 1.0]).collect();
        let data = Data {
            rows: RowBins {
                bins: &rows,
                n_features: 1,
                n_bins: &[255],
            },
            cols: &cols,
        };
        let params = GrowParams {
            max_leaves: 2,
            max_depth: usize::MAX,
            min_samples_leaf: 1,
            l2: 1.0,
            min_hessian: 1e-3,
            learning_rate: 0.5,
        };
        let mut g = Grower::new(params, 1);
        let mut idx: Vec<u32> = (0..n as u32).collect();
        let grown = g.grow(&data, &mut idx, &gh, None, false, &mut [0.0], &mut [0]);
        let root = grown.tree.nodes[0];
        assert!(!root.missing_left);
        assert!(grown.tree.value(&[f32::NAN]) > 0.0);
        assert!(grown.tree.value(&[3.0]) < 0.0);
    }
}
