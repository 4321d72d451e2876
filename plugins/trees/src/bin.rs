//! Feature binning: bin boundaries computed once per feature from the
//! training data, and the data stored as `u8` bin indices, column-major.
//!
//! A feature with at most `max_bins` distinct values gets one bin per value;
//! otherwise its sorted values are cut greedily into `max_bins` groups of
//! about equal row counts (a value never spans two bins, so a heavy value
//! gets a bin of its own). The boundary after a bin is the midpoint between
//! the bin's largest value and the next bin's smallest, the threshold an
//! exact CART split would use there. `NaN` always goes to [`MISSING_BIN`].

use rayon::prelude::*;

use crate::{MAX_BINS, MISSING_BIN};

/// How one feature's values map to bins.
#[derive(Clone, Debug, PartialEq)]
pub struct BinMapper {
    /// `edges[b]` is the largest value in bin `b`'s range: bin `b` holds the
    /// values `v` with `edges[b - 1] < v <= edges[b]`. The last is `+inf`.
    edges: Vec<f32>,
    /// Smallest training value in each bin.
    lower: Vec<f32>,
    /// Largest training value in each bin.
    upper: Vec<f32>,
    /// Whether any training value was missing.
    has_missing: bool,
    /// Whether any training value was present.
    has_present: bool,
}

/// The threshold between consecutive distinct values `a < b`: their
/// midpoint, or `a` when the midpoint rounds up to `b` or overflows, so that
/// `a <= t < b` always holds.
#[inline]
pub fn midpoint(a: f32, b: f32) -> f32 {
    let m = (f64::from(a) / 2.0 + f64::from(b) / 2.0) as f32;
    if m >= b || !m.is_finite() { a } else { m }
}

/// Groups sorted distinct values (with their counts) into at most
/// `max_bins` runs of about equal total count; returns each run's end
/// (exclusive).
#[inline]
fn group(counts: &[usize], max_bins: usize) -> Vec<usize> {
    let nd = counts.len();
    if nd <= max_bins {
        return (1..=nd).collect();
    }
    let mut ends = Vec::with_capacity(max_bins);
    let mut rows_left: usize = counts.iter().sum();
    let mut bins_left = max_bins;
    let mut acc = 0usize;
    for i in 0..nd - 1 {
        acc += counts[i];
        if bins_left == 1 {
            continue;
        }
        let target = rows_left as f64 / bins_left as f64;
        // Cut where the running count is nearest the target, and always
        // once every remaining value can have a bin of its own.
        let enough = acc as f64 + counts[i + 1] as f64 / 2.0 >= target;
        if enough || nd - 1 - i < bins_left {
            ends.push(i + 1);
            rows_left -= acc;
            bins_left -= 1;
            acc = 0;
        }
    }
    ends.push(nd);
    ends
}

impl BinMapper {
    /// Bins for `values` (`NaN` = missing), at most `max_bins` (clamped to
    /// `2..=MAX_BINS`) for the present values.
    #[inline]
    pub fn fit(values: &[f32], max_bins: usize) -> Self {
        let max_bins = max_bins.clamp(2, MAX_BINS);
        let mut sorted: Vec<f32> = values.iter().copied().filter(|v| !v.is_nan()).collect();
        let has_missing = sorted.len() < values.len();
        sorted.sort_unstable_by(f32::total_cmp);
        // Distinct values (-0.0 and 0.0 are one) and their counts.
        let mut distinct: Vec<f32> = Vec::new();
        let mut counts: Vec<usize> = Vec::new();
        for &v in &sorted {
            match (distinct.last(), counts.last_mut()) {
                (Some(&d), Some(c)) if d == v => *c += 1,
                _ => {
                    distinct.push(v);
                    counts.push(1);
                }
            }
        }
        if distinct.is_empty() {
            return Self {
                edges: vec![f32::INFINITY],
                lower: vec![0.0],
                upper: vec![0.0],
                has_missing,
                has_present: false,
            };
        }
        let ends = group(&counts, max_bins);
        let mut m = Self {
            edges: Vec::with_capacity(ends.len()),
            lower: Vec::with_capacity(ends.len()),
            upper: Vec::with_capacity(ends.len()),
            has_missing,
            has_present: true,
        };
        let mut start = 0;
        for (g, &end) in ends.iter().enumerate() {
            m.lower.push(distinct[start]);
            m.upper.push(distinct[end - 1]);
            m.edges.push(if g + 1 == ends.len() {
                f32::INFINITY
            } else {
                midpoint(distinct[end - 1], distinct[end])
            });
            start = end;
        }
        m
    }

    /// Number of bins for present values (at least 1).
    pub fn n_bins(&self) -> usize {
        self.edges.len()
    }

    /// Whether some training value was missing.
    pub fn has_missing(&self) -> bool {
        self.has_missing
    }

    /// Whether every training value fell in one bin: no split can use it.
    pub fn is_constant(&self) -> bool {
        usize::from(self.has_present) * self.n_bins() + usize::from(self.has_missing) <= 1
    }

    /// The bin of `v`.
    #[inline]
    pub fn bin(&self, v: f32) -> u8 {
        if v.is_nan() {
            MISSING_BIN
        } else {
            // The number of edges below `v`; the last edge is +inf, so this
            // is a valid bin whenever `v` is below it.
            let b = self.edges.partition_point(|&e| e < v);
            b.min(self.edges.len() - 1) as u8
        }
    }

    /// The threshold of a split sending bins `0..=b` left: every training
    /// value in them is `<= threshold`, every one above is `>`.
    pub fn threshold(&self, b: u8) -> f32 {
        self.edges
            .get(usize::from(b))
            .copied()
            .unwrap_or(f32::INFINITY)
    }

    /// The threshold of a split of a node whose present values fill bins
    /// `cut` and `next` but none between: the midpoint between the top of
    /// `cut` and the bottom of `next` (the threshold exact CART picks when
    /// bins hold single values), or `+inf` when `next` is
    /// [`MISSING_BIN`].
    pub fn split_threshold(&self, cut: u8, next: u8) -> f32 {
        if next == MISSING_BIN {
            return f32::INFINITY;
        }
        let (_, top) = self.value_range(cut);
        let (bottom, _) = self.value_range(next);
        if top < bottom {
            midpoint(top, bottom)
        } else {
            self.threshold(cut)
        }
    }

    /// The smallest and largest training value in bin `b`.
    pub fn value_range(&self, b: u8) -> (f32, f32) {
        let b = usize::from(b).min(self.edges.len() - 1);
        (self.lower[b], self.upper[b])
    }
}

/// A data set binned feature by feature, column-major.
#[derive(Clone, Debug)]
pub struct BinnedData {
    n_rows: usize,
    /// Bin indices column after column, `n_rows` per feature.
    bins: Vec<u8>,
    mappers: Vec<BinMapper>,
}

impl BinnedData {
    /// Bins the row-major `x` (`n_rows x n_features`, `NaN` = missing) with
    /// at most `max_bins` bins per feature. With `parallel`, features are
    /// binned on the current rayon pool: call it inside a pool you own.
    ///
    /// # Panics
    /// When `x.len() != n_rows * n_features`.
    #[inline]
    pub fn from_rows(
        x: &[f32],
        n_rows: usize,
        n_features: usize,
        max_bins: usize,
        parallel: bool,
    ) -> Self {
        assert_eq!(x.len(), n_rows * n_features, "matrix does not match shape");
        let mut bins = vec![0u8; n_rows * n_features];
        let one = |(f, col): (usize, &mut [u8])| {
            let values: Vec<f32> = (0..n_rows).map(|r| x[r * n_features + f]).collect();
            let m = BinMapper::fit(&values, max_bins);
            for (b, &v) in col.iter_mut().zip(&values) {
                *b = m.bin(v);
            }
            m
        };
        let mappers: Vec<BinMapper> = if n_rows == 0 {
            (0..n_features)
                .map(|_| BinMapper::fit(&[], max_bins))
                .collect()
        } else if parallel {
            bins.par_chunks_mut(n_rows).enumerate().map(one).collect()
        } else {
            bins.chunks_mut(n_rows).enumerate().map(one).collect()
        };
        Self {
            n_rows,
            bins,
            mappers,
        }
    }

    /// Number of rows.
    pub fn n_rows(&self) -> usize {
        self.n_rows
    }

    /// Number of features.
    pub fn n_features(&self) -> usize {
        self.mappers.len()
    }

    /// The bins of feature `f`, one per row.
    #[inline]
    pub fn column(&self, f: usize) -> &[u8] {
        &self.bins[f * self.n_rows..(f + 1) * self.n_rows]
    }

    /// How feature `f` was binned.
    pub fn mapper(&self, f: usize) -> &BinMapper {
        &self.mappers[f]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn few_values_get_one_bin_each_with_midpoint_edges() {
        let m = BinMapper::fit(&[3.0, 1.0, 2.0, 1.0, 3.0], 255);
        assert_eq!(m.n_bins(), 3);
        assert_eq!(m.threshold(0), 1.5);
        assert_eq!(m.threshold(1), 2.5);
        assert_eq!(m.threshold(2), f32::INFINITY);
        assert_eq!([m.bin(1.0), m.bin(2.0), m.bin(3.0)], [0, 1, 2]);
        // Unseen values land by the edges; beyond the last value stays in
        // the last bin.
        assert_eq!(
            [m.bin(-7.0), m.bin(1.5), m.bin(1.6), m.bin(99.0)],
            [0, 0, 1, 2]
        );
        assert_eq!(m.value_range(1), (2.0, 2.0));
        // A node holding 1 and 3 only is split halfway between them.
        assert_eq!(m.split_threshold(0, 2), 2.0);
        assert_eq!(m.split_threshold(0, MISSING_BIN), f32::INFINITY);
        assert!(!m.has_missing() && !m.is_constant());
    }

    #[test]
    fn many_values_respect_max_bins_and_separate_training_values() {
        let values: Vec<f32> = (0..10_000)
            .map(|i| ((i * 7919) % 3001) as f32 / 7.0)
            .collect();
        for max_bins in [2, 3, 16, 255] {
            let m = BinMapper::fit(&values, max_bins);
            assert!(
                m.n_bins() <= max_bins && m.n_bins() >= max_bins.min(2),
                "{max_bins}"
            );
            // Every training value is on the right side of every edge.
            for &v in &values {
                let b = m.bin(v);
                assert!(v <= m.threshold(b));
                if b > 0 {
                    assert!(v > m.threshold(b - 1));
                }
                let (lo, hi) = m.value_range(b);
                assert!(lo <= v && v <= hi);
            }
        }
        // Quantile bins hold similar counts.
        let m = BinMapper::fit(&values, 10);
        let mut counts = [0usize; 10];
        values
            .iter()
            .for_each(|&v| counts[usize::from(m.bin(v))] += 1);
        assert!(
            counts.iter().all(|&c| (800..1200).contains(&c)),
            "{counts:?}"
        );
    }

    #[test]
    fn heavy_value_gets_its_own_bin() {
        let mut values = vec![0.0f32; 5000];
        values.extend((1..=5000).map(|i| i as f32));
        let m = BinMapper::fit(&values, 8);
        assert!(m.n_bins() <= 8);
        assert_eq!(m.value_range(m.bin(0.0)), (0.0, 0.0));
    }

    #[test]
    fn missing_values_have_their_own_bin() {
        let m = BinMapper::fit(&[1.0, f32::NAN, 2.0], 255);
        assert!(m.has_missing());
        assert_eq!(m.bin(f32::NAN), MISSING_BIN);
        assert_eq!(m.n_bins(), 2);
        let all_missing = BinMapper::fit(&[f32::NAN; 4], 255);
        assert!(all_missing.is_constant());
        assert_eq!(all_missing.bin(f32::NAN), MISSING_BIN);
        assert_eq!(all_missing.bin(3.0), 0);
        // One present value plus missing ones can still split.
        assert!(!BinMapper::fit(&[1.0, f32::NAN], 255).is_constant());
    }

    #[test]
    fn constant_and_extreme_features() {
        let m = BinMapper::fit(&[4.0; 10], 255);
        assert!(m.is_constant());
        assert_eq!(m.n_bins(), 1);
        assert_eq!(m.bin(4.0), 0);
        let m = BinMapper::fit(
            &[f32::NEG_INFINITY, -0.0, 0.0, f32::MAX, f32::INFINITY],
            255,
        );
        assert_eq!(m.n_bins(), 4);
        for (v, b) in [
            (f32::NEG_INFINITY, 0),
            (0.0, 1),
            (-0.0, 1),
            (f32::MAX, 2),
            (f32::INFINITY, 3),
        ] {
            assert_eq!(m.bin(v), b, "{v}");
        }
        assert_eq!(m.threshold(2), f32::MAX);
    }

    #[test]
    fn binned_data_is_column_major() {
        let x = [1.0, 10.0, 2.0, f32::NAN, 3.0, 10.0];
        for parallel in [false, true] {
            let d = BinnedData::from_rows(&x, 3, 2, 255, parallel);
            assert_eq!((d.n_rows(), d.n_features()), (3, 2));
            assert_eq!(d.column(0), [0, 1, 2]);
            assert_eq!(d.column(1), [0, MISSING_BIN, 0]);
            assert!(d.mapper(1).has_missing());
        }
        let empty = BinnedData::from_rows(&[], 0, 3, 255, false);
        assert_eq!(empty.n_features(), 3);
    }
}
