//! Binning rows and walking the compiled trees.
//!
//! A row is binned once: per feature, the number of edges below its value
//! (a value at most `edges[k]` has a bin at most `k`), or
//! [`Binner::missing`] (`2^bits`, one past any bin) for NaN. Batch rows
//! are binned in groups of [`LANES`], transposed so that a feature's eight
//! values are adjacent, then each tree walks every group of a pass, the
//! eight rows descending in lockstep: each lane's next node depends only
//! on its own, so the lanes' loads overlap, and a lane at a leaf stays
//! there. One row walks eight trees in lockstep instead.
//!
//! Bins fit a byte (`bits = 8`) or two; a group holding a missing value is
//! also binned one size wider, where the missing bin exceeds every real
//! one, and walked with the missing-value test: at a node where missing
//! values go left, or at a leaf, a missing bin's "right" is flipped.

use crate::{
    layout::{Layout, Node, TreeInfo},
    quantize::QuantizedTrees,
};

/// Rows (or, for one row, trees) descending in lockstep.
pub(crate) const LANES: usize = 8;

/// Trees at most this deep are walked a fixed number of steps.
const FIXED_DEPTH: u32 = 16;

/// A bin index as stored in a binned row: `u8`, `u16` or `u32`.
pub(crate) trait Bin: Copy + Default + Send + Sync + 'static {
    /// `v`, which fits.
    fn from_u32(v: u32) -> Self;
    /// The bin.
    fn get(self) -> u32;
}

macro_rules! bin {
    ($t:ty) => {
        impl Bin for $t {
            #[inline(always)]
            fn from_u32(v: u32) -> Self {
                v as $t
            }
            #[inline(always)]
            fn get(self) -> u32 {
                u32::from(self)
            }
        }
    };
}

bin!(u8);
bin!(u16);
bin!(u32);

/// Every feature's edges, for binning rows.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Binner {
    /// Each feature's edges padded with `+inf` to a power of two longer
    /// than the edges, one feature after the other.
    edges: Vec<f32>,
    /// Where feature `f`'s padded edges start, and `log2` of their count.
    start: Vec<(usize, u32)>,
    /// The bin of a missing value: `2^bits`.
    pub(crate) missing: u32,
}

impl Binner {
    pub(crate) fn new(q: &QuantizedTrees) -> Self {
        let mut edges = Vec::new();
        let mut start = Vec::with_capacity(q.edges.len());
        for e in &q.edges {
            let size = (e.len() + 1).next_power_of_two();
            start.push((edges.len(), size.trailing_zeros()));
            edges.extend_from_slice(e);
            edges.resize(edges.len() + size - e.len(), f32::INFINITY);
        }
        Self {
            edges,
            start,
            missing: 1 << q.bits,
        }
    }

    /// The bin of value `x` of feature `f`: the number of its edges below
    /// `x`, by a branch-free binary search (the `+inf` padding is below no
    /// value).
    #[inline]
    pub(crate) fn bin(&self, f: usize, x: f32) -> u32 {
        if x.is_nan() {
            return self.missing;
        }
        let (at, levels) = self.start[f];
        let e = &self.edges[at..at + (1 << levels)];
        let mut lo = 0usize;
        for s in (0..levels).rev() {
            let step = 1 << s;
            lo += usize::from(e[lo + step - 1] < x) * step;
        }
        lo as u32
    }

    /// The bins of feature `f` of [`LANES`] values at once (the searches
    /// interleaved, so that their loads overlap).
    #[inline]
    pub(crate) fn bins(&self, f: usize, x: [f32; LANES]) -> [u32; LANES] {
        let (at, levels) = self.start[f];
        let e = &self.edges[at..at + (1 << levels)];
        let mask = e.len() - 1;
        let mut lo = [0usize; LANES];
        for s in (0..levels).rev() {
            let step = 1 << s;
            for (lo, &x) in lo.iter_mut().zip(&x) {
                *lo += usize::from(e[(*lo + step - 1) & mask] < x) * step;
            }
        }
        std::array::from_fn(|l| {
            if x[l].is_nan() {
                self.missing
            } else {
                lo[l] as u32
            }
        })
    }
}

/// Walks `L` lanes down from `idx`, `step` giving a lane's next node.
///
/// A tree at most [`FIXED_DEPTH`] deep is walked `depth` steps with no
/// test (cheaper than stopping early though some lanes idle at their
/// leaves). A deeper one is walked `min_depth` steps (no lane reaches a
/// leaf sooner), then two steps at a time until a pair of steps moved no
/// lane: children come after their parent, so a lane that moves raises
/// its index, and no lane moved exactly when the sum did not change.
#[inline(always)]
fn lockstep<const L: usize>(
    mut idx: [usize; L],
    (min_depth, depth): (u32, u32),
    mut step: impl FnMut(usize, usize) -> usize,
) -> [usize; L] {
    if depth <= FIXED_DEPTH {
        for _ in 0..depth {
            round(&mut idx, &mut step);
        }
        return idx;
    }
    for _ in 0..min_depth {
        round(&mut idx, &mut step);
    }
    let mut sum: usize = idx.iter().sum();
    loop {
        round(&mut idx, &mut step);
        round(&mut idx, &mut step);
        let now: usize = idx.iter().sum();
        if now == sum {
            return idx;
        }
        sum = now;
    }
}

/// One step of every lane.
#[inline(always)]
fn round<const L: usize>(idx: &mut [usize; L], step: &mut impl FnMut(usize, usize) -> usize) {
    for (l, i) in idx.iter_mut().enumerate() {
        *i = step(l, *i);
    }
}

/// Whether a row of bin `x` goes right at node `n` (whose missing flag
/// `miss` reads, needed only with `NAN`, for a missing bin `missing`).
#[inline(always)]
fn goes_right<N: Node, const NAN: bool>(
    n: N,
    x: u32,
    missing: u32,
    miss: impl FnOnce() -> u8,
) -> bool {
    if NAN {
        (x > n.bin()) ^ ((x == missing) & (miss() != 0))
    } else {
        x > n.bin()
    }
}

/// Walks tree `t` for each group of `xs` (groups of `p * LANES` bins,
/// feature `f` of lane `l` at `f * LANES + l`), writing the lanes' leaves
/// (indices in the tree) into `leaves`, one entry per group. With
/// `NAN = false` no bin may be the missing one. Kept out of line so that
/// the lanes get the registers to themselves.
///
/// # Panics
/// When `xs` holds fewer groups than `leaves`.
#[inline(never)]
pub(crate) fn groups<N: Node, X: Bin, const NAN: bool>(
    layout: &Layout<N>,
    t: &TreeInfo,
    xs: &[X],
    p: usize,
    missing: u32,
    leaves: &mut [[u32; LANES]],
) {
    let nodes = &layout.nodes[t.start..t.start + t.len];
    let miss = &layout.missing[t.start..t.start + t.len];
    assert!(xs.len() >= leaves.len() * p * LANES);
    for (xg, out) in xs.chunks_exact(p * LANES).zip(leaves.iter_mut()) {
        let (cols, _) = xg.as_chunks::<LANES>();
        let idx = lockstep([0usize; LANES], (t.min_depth, t.depth), |l, i| {
            let n = nodes[i];
            let x = cols[n.feature()][l].get();
            n.left() + usize::from(goes_right::<N, NAN>(n, x, missing, || miss[i]))
        });
        *out = idx.map(|i| i as u32);
    }
}

/// The leaves (indices in their trees) that one binned row reaches in `L`
/// trees, `trees[l]` walked by lane `l` for `depths` (the least shallowest
/// and the deepest depth among them).
#[inline(always)]
pub(crate) fn trees<N: Node, X: Bin, const L: usize, const NAN: bool>(
    layout: &Layout<N>,
    trees: [&TreeInfo; L],
    depths: (u32, u32),
    row: &[X],
    missing: u32,
) -> [u32; L] {
    let nodes = trees.map(|t| &layout.nodes[t.start..t.start + t.len]);
    let miss = trees.map(|t| &layout.missing[t.start..t.start + t.len]);
    lockstep([0usize; L], depths, |l, i| {
        let n = nodes[l][i];
        let x = row[n.feature()].get();
        n.left() + usize::from(goes_right::<N, NAN>(n, x, missing, || miss[l][i]))
    })
    .map(|i| i as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Bins by counting, the definition.
    fn count(edges: &[f32], x: f32) -> u32 {
        edges.iter().filter(|&&e| e < x).count() as u32
    }

    #[test]
    fn a_bin_counts_the_edges_below() {
        for n in [0usize, 1, 2, 3, 7, 8, 255] {
            let edges: Vec<f32> = (0..n).map(|i| i as f32 * 0.5 - 3.0).collect();
            let mut start = Vec::new();
            let mut padded = edges.clone();
            let size = (n + 1).next_power_of_two();
            start.push((0, size.trailing_zeros()));
            padded.resize(size, f32::INFINITY);
            let b = Binner {
                edges: padded,
                start,
                missing: 256,
            };
            for i in -10..300 {
                let x = i as f32 * 0.25 - 4.0;
                assert_eq!(b.bin(0, x), count(&edges, x), "n = {n}, x = {x}");
                // At most edge k exactly when the bin is at most k.
                for (k, &e) in edges.iter().enumerate() {
                    assert_eq!(x <= e, b.bin(0, x) as usize <= k);
                }
            }
            assert_eq!(b.bin(0, f32::NAN), 256);
            let x = [-3.0, f32::NAN, 0.1, 7.0, -0.5, f32::INFINITY, -9.0, 1.0];
            let want = x.map(|x| b.bin(0, x));
            assert_eq!(b.bins(0, x), want);
            assert_eq!(b.bin(0, f32::INFINITY), n as u32);
            assert_eq!(b.bin(0, f32::NEG_INFINITY), 0);
        }
    }
}
