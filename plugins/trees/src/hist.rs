//! Per-node histograms: for each bin of a feature, how many of the node's
//! rows fall in it and the sum of their statistics.
//!
//! The statistics are the learner's: a [`Target`] says how many `f64` a bin
//! holds and what each row adds. [`Hist`] holds the histograms of the few
//! features a node evaluates, built in one pass over the node's rows, and
//! remembers the bins each touched, so building, reading and clearing cost
//! `O(rows)` rather than `O(bins)`. [`HistSet`] holds the histograms of
//! every feature of one node; [`HistSet::subtract`] turns a parent's set
//! into one child's given the other's (the subtraction trick).

use std::ops::Range;

use crate::{N_BINS, RowStore};

/// What each row adds to the bin it falls in.
pub trait Target: Sync {
    /// A row's statistics, as a [`RowStore`] keeps them.
    type Row: Copy;
    /// Number of `f64` statistics per bin.
    fn width(&self) -> usize;
    /// Adds a row's statistics to `slot` (`width()` values).
    fn add(&self, row: Self::Row, slot: &mut [f64]);
}

/// One feature's histogram, borrowed.
#[derive(Clone, Copy, Debug)]
pub struct HistView<'a> {
    width: usize,
    counts: &'a [u32],
    sums: &'a [f64],
}

impl<'a> HistView<'a> {
    /// Statistics per bin.
    #[inline]
    pub fn width(&self) -> usize {
        self.width
    }

    /// Rows in bin `b`.
    #[inline]
    pub fn count(&self, b: u8) -> u32 {
        self.counts[usize::from(b)]
    }

    /// Summed statistics of bin `b`.
    #[inline]
    pub fn sums(&self, b: u8) -> &'a [f64] {
        let b = usize::from(b);
        &self.sums[b * self.width..(b + 1) * self.width]
    }

    /// The bins holding rows, ascending (the missing bin last).
    #[inline]
    pub fn bins(&self) -> impl Iterator<Item = u8> + Clone + '_ {
        (0..N_BINS)
            .filter(|&b| self.counts[b] != 0)
            .map(|b| b as u8)
    }
}

type Bitmap = [u64; N_BINS / 64];

/// The set bits of a 256-bit map, ascending.
#[inline]
fn set_bits(map: Bitmap) -> impl Iterator<Item = u8> + Clone {
    map.into_iter().enumerate().flat_map(|(i, word)| {
        let mut w = word;
        std::iter::from_fn(move || {
            if w == 0 {
                return None;
            }
            let bit = w.trailing_zeros();
            w &= w - 1;
            Some((i * 64) as u8 + bit as u8)
        })
    })
}

/// The histograms of a few features for one node, tracking bins in use.
#[derive(Clone, Debug)]
pub struct Hist {
    width: usize,
    counts: Vec<u32>,
    sums: Vec<f64>,
    used: Vec<Bitmap>,
    features: Vec<usize>,
}

impl Hist {
    /// No histograms yet, of `width` statistics per bin.
    pub fn new(width: usize) -> Self {
        Self {
            width,
            counts: Vec::new(),
            sums: Vec::new(),
            used: Vec::new(),
            features: Vec::new(),
        }
    }

    /// Builds the histograms of `features` (the `j`-th into slot `j`) from
    /// the rows in `range` of `rows`, in one pass, replacing what was there.
    pub fn build<T: Target>(
        &mut self,
        rows: &RowStore<T::Row>,
        range: Range<usize>,
        features: &[usize],
        t: &T,
    ) {
        self.clear();
        let (w, k, p) = (self.width, features.len(), rows.n_features());
        if self.used.len() < k {
            self.counts.resize(k * N_BINS, 0);
            self.sums.resize(k * N_BINS * w, 0.0);
            self.used.resize(k, [0; N_BINS / 64]);
        }
        self.features.extend_from_slice(features);
        let bins = rows.bins(range.clone()).chunks_exact(p.max(1));
        for (line, &s) in bins.zip(rows.stats(range)) {
            for (j, &f) in features.iter().enumerate() {
                let b = usize::from(line[f]);
                let i = j * N_BINS + b;
                self.counts[i] += 1;
                t.add(s, &mut self.sums[i * w..(i + 1) * w]);
                self.used[j][b >> 6] |= 1 << (b & 63);
            }
        }
    }

    /// Empties the histograms, touching only the bins in use.
    pub fn clear(&mut self) {
        let w = self.width;
        for j in 0..self.features.len() {
            for b in set_bits(self.used[j]) {
                let i = j * N_BINS + usize::from(b);
                self.counts[i] = 0;
                self.sums[i * w..(i + 1) * w].fill(0.0);
            }
            self.used[j] = [0; N_BINS / 64];
        }
        self.features.clear();
    }

    /// The bins of slot `j` holding rows, ascending.
    #[inline]
    pub fn bins_in_use(&self, j: usize) -> impl Iterator<Item = u8> + Clone + use<> {
        set_bits(self.used[j])
    }

    /// Slot `j`'s histogram.
    #[inline]
    pub fn view(&self, j: usize) -> HistView<'_> {
        let s = N_BINS * self.width;
        HistView {
            width: self.width,
            counts: &self.counts[j * N_BINS..(j + 1) * N_BINS],
            sums: &self.sums[j * s..(j + 1) * s],
        }
    }
}

/// The histograms of all features of one node.
#[derive(Clone, Debug)]
pub struct HistSet {
    width: usize,
    counts: Vec<u32>,
    sums: Vec<f64>,
}

impl HistSet {
    /// Zeroed histograms for `n_features` features of `width` statistics.
    pub fn new(n_features: usize, width: usize) -> Self {
        Self {
            width,
            counts: vec![0; n_features * N_BINS],
            sums: vec![0.0; n_features * N_BINS * width],
        }
    }

    /// Number of features held.
    pub fn n_features(&self) -> usize {
        self.counts.len() / N_BINS
    }

    /// Rebuilds the histograms of `features` from the rows in `range` of
    /// `rows`, in one pass; the others keep whatever they held.
    pub fn build<T: Target>(
        &mut self,
        rows: &RowStore<T::Row>,
        range: Range<usize>,
        features: &[usize],
        t: &T,
    ) {
        let (w, s, p) = (self.width, N_BINS * self.width, rows.n_features());
        for &f in features {
            self.counts[f * N_BINS..(f + 1) * N_BINS].fill(0);
            self.sums[f * s..(f + 1) * s].fill(0.0);
        }
        let bins = rows.bins(range.clone()).chunks_exact(p.max(1));
        for (line, &st) in bins.zip(rows.stats(range)) {
            for &f in features {
                let i = f * N_BINS + usize::from(line[f]);
                self.counts[i] += 1;
                t.add(st, &mut self.sums[i * w..(i + 1) * w]);
            }
        }
    }

    /// For each of `features`: `self -= other`. With `self` a parent's
    /// histograms and `other` one child's, `self` becomes the other child's.
    pub fn subtract(&mut self, other: &HistSet, features: &[usize]) {
        let s = N_BINS * self.width;
        for &f in features {
            let counts = &mut self.counts[f * N_BINS..(f + 1) * N_BINS];
            for (c, o) in counts.iter_mut().zip(&other.counts[f * N_BINS..]) {
                *c -= o;
            }
            let sums = &mut self.sums[f * s..(f + 1) * s];
            for (v, o) in sums.iter_mut().zip(&other.sums[f * s..(f + 1) * s]) {
                *v -= o;
            }
        }
    }

    /// Feature `f`'s histogram.
    #[inline]
    pub fn view(&self, f: usize) -> HistView<'_> {
        let s = N_BINS * self.width;
        HistView {
            width: self.width,
            counts: &self.counts[f * N_BINS..(f + 1) * N_BINS],
            sums: &self.sums[f * s..(f + 1) * s],
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::{BinnedData, MISSING_BIN};

    /// Two classes with weights: a row is (class, weight).
    pub struct Classes;

    impl Target for Classes {
        type Row = (usize, f64);
        fn width(&self) -> usize {
            2
        }
        fn add(&self, (c, w): (usize, f64), slot: &mut [f64]) {
            slot[c] += w;
        }
    }

    /// The store of rows `ids`.
    pub fn store(
        d: &BinnedData,
        class: &[usize],
        weight: &[f64],
        ids: &[u32],
    ) -> RowStore<(usize, f64)> {
        let stats = ids
            .iter()
            .map(|&r| (class[r as usize], weight[r as usize]))
            .collect();
        RowStore::new(d, ids.to_vec(), stats)
    }

    fn data() -> (BinnedData, Vec<usize>, Vec<f64>) {
        let n = 50;
        let mut x = Vec::new();
        for i in 0..n {
            x.push((i % 7) as f32);
            x.push(if i % 5 == 0 {
                f32::NAN
            } else {
                (i * 3 % 11) as f32
            });
            x.push((i % 2) as f32);
        }
        let class = (0..n).map(|i| usize::from(i * 13 % 3 == 0)).collect();
        let weight = (0..n).map(|i| 1.0 + (i % 4) as f64).collect();
        (BinnedData::from_rows(&x, n, 3, 255, false), class, weight)
    }

    #[test]
    fn hist_counts_and_sums_rows() {
        let (d, class, weight) = data();
        let rows: Vec<u32> = (0..50).filter(|r| r % 3 != 1).collect();
        let s = store(&d, &class, &weight, &rows);
        let mut h = Hist::new(2);
        for features in [&[1usize][..], &[0, 1, 2]] {
            h.build(&s, 0..rows.len(), features, &Classes);
            let j = usize::from(features.len() > 1);
            let v = h.view(j);
            let total: u32 = v.bins().map(|b| v.count(b)).sum();
            assert_eq!(total as usize, rows.len());
            let missing = rows.iter().filter(|&&r| r % 5 == 0).count() as u32;
            assert_eq!(v.count(MISSING_BIN), missing);
            assert_eq!(
                h.bins_in_use(j).collect::<Vec<_>>(),
                v.bins().collect::<Vec<_>>()
            );
            let w: f64 = v.bins().map(|b| v.sums(b).iter().sum::<f64>()).sum();
            let expected: f64 = rows.iter().map(|&r| weight[r as usize]).sum();
            assert!((w - expected).abs() < 1e-12);
        }
        // Slot 2 holds feature 2: two bins.
        assert_eq!(h.bins_in_use(2).collect::<Vec<_>>(), [0, 1]);
        h.clear();
        assert_eq!(h.view(1).bins().count(), 0);
        assert!(h.sums.iter().all(|&s| s == 0.0));
    }

    #[test]
    fn subtraction_gives_the_sibling() {
        let (d, class, weight) = data();
        let all: Vec<u32> = (0..50).collect();
        let mut s = store(&d, &class, &weight, &all);
        let features = [0, 1, 2];
        let mut parent = HistSet::new(3, 2);
        parent.build(&s, 0..50, &features, &Classes);
        // Split on feature 0 at bin 2: the left child is built, the right
        // derived.
        let mid = s.partition(0..50, 0, 2, false);
        let mut small = HistSet::new(3, 2);
        small.build(&s, 0..mid, &features, &Classes);
        let mut direct = HistSet::new(3, 2);
        direct.build(&s, mid..50, &features, &Classes);
        parent.subtract(&small, &features);
        for f in features {
            let (a, b) = (parent.view(f), direct.view(f));
            assert_eq!(a.bins().collect::<Vec<_>>(), b.bins().collect::<Vec<_>>());
            for bin in 0..=255u8 {
                assert_eq!(a.count(bin), b.count(bin));
                assert_eq!(a.sums(bin), b.sums(bin));
            }
        }
        // A set equals the few-feature histograms.
        let mut h = Hist::new(2);
        h.build(&s, mid..50, &[2, 0], &Classes);
        assert_eq!(h.view(1).sums(3), direct.view(0).sums(3));
        assert_eq!(direct.view(0).count(1), 0);
        assert_eq!(h.view(0).sums(1), direct.view(2).sums(1));
        assert_eq!(parent.n_features(), 3);
    }
}
