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

    /// Records that training value `v` fell in bin `b`.
    #[inline]
    fn widen(&mut self, b: u8, v: f32) {
        if v.is_nan() {
            self.has_missing = true;
            return;
        }
        let b = usize::from(b);
        if self.has_present {
            self.lower[b] = self.lower[b].min(v);
            self.upper[b] = self.upper[b].max(v);
        }
    }

    /// Widens each bin's value range by `other`'s (the same edges, fitted
    /// on other rows).
    fn merge_ranges(&mut self, other: &BinMapper) {
        self.has_missing |= other.has_missing;
        for b in 0..self.lower.len() {
            self.lower[b] = self.lower[b].min(other.lower[b]);
            self.upper[b] = self.upper[b].max(other.upper[b]);
        }
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

/// The most rows bin edges are fitted on; larger data sets fit them on a
/// sample of this many rows.
pub const BIN_SAMPLE_ROWS: usize = 200_000;

/// The rows bin edges are fitted on: `None` for all of them, else a fixed
/// pseudo-random sample of [`BIN_SAMPLE_ROWS`] (ascending).
fn bin_sample(n_rows: usize) -> Option<Vec<usize>> {
    if n_rows <= BIN_SAMPLE_ROWS {
        return None;
    }
    // Selection sampling (Knuth's algorithm S): each row is kept with
    // probability needed / left, so exactly BIN_SAMPLE_ROWS are kept.
    let mut rng = crate::rng::Rng::new(0x5EED_B175);
    let mut rows = Vec::with_capacity(BIN_SAMPLE_ROWS);
    for r in 0..n_rows {
        let needed = BIN_SAMPLE_ROWS - rows.len();
        if needed == 0 {
            break;
        }
        if rng.below(n_rows - r) < needed {
            rows.push(r);
        }
    }
    Some(rows)
}

/// Rows per parallel task when binning.
const BIN_BLOCK_ROWS: usize = 4 * 1024;

/// A data set binned feature by feature, column-major (and row-major too,
/// for learners that read whole rows).
#[derive(Clone, Debug)]
pub struct BinnedData {
    n_rows: usize,
    /// Bin indices column after column, `n_rows` per feature.
    bins: Vec<u8>,
    /// The same row after row, `n_features` per row.
    row_bins: Vec<u8>,
    mappers: Vec<BinMapper>,
}

impl BinnedData {
    /// Bins the row-major `x` (`n_rows x n_features`, `NaN` = missing) with
    /// at most `max_bins` bins per feature. The bin edges of each feature
    /// are fitted on at most [`BIN_SAMPLE_ROWS`] rows (a fixed pseudo-random
    /// sample when there are more, as LightGBM and scikit-learn do), then
    /// every row is binned. With `parallel`, the work is spread on the
    /// current rayon pool: call it inside a pool you own.
    ///
    /// # Panics
    /// When `x.len() != n_rows * n_features`.
    pub fn from_rows(
        x: &[f32],
        n_rows: usize,
        n_features: usize,
        max_bins: usize,
        parallel: bool,
    ) -> Self {
        assert_eq!(x.len(), n_rows * n_features, "matrix does not match shape");
        let p = n_features;
        if n_rows == 0 || p == 0 {
            return Self {
                n_rows,
                bins: Vec::new(),
                row_bins: Vec::new(),
                mappers: (0..p).map(|_| BinMapper::fit(&[], max_bins)).collect(),
            };
        }
        // The values the edges are fitted on, column by column, read in
        // one pass over the (sampled) rows.
        let sample = bin_sample(n_rows);
        let fit_rows = sample.as_ref().map_or(n_rows, Vec::len);
        let mut fit_cols = vec![0f32; fit_rows * p];
        let row_of = |i: usize| sample.as_ref().map_or(i, |s| s[i]);
        for i in 0..fit_rows {
            let r = row_of(i);
            for (f, &v) in x[r * p..(r + 1) * p].iter().enumerate() {
                fit_cols[f * fit_rows + i] = v;
            }
        }
        let fit = |values: &[f32]| BinMapper::fit(values, max_bins);
        let mut mappers: Vec<BinMapper> = if parallel {
            fit_cols.par_chunks(fit_rows).map(fit).collect()
        } else {
            fit_cols.chunks(fit_rows).map(fit).collect()
        };
        drop(fit_cols);

        // Bin row blocks (reading `x` in order) into row-major bins, then
        // copy each block into the columns while it is in cache; with a
        // sample, also note each bin's value range over all rows.
        let widen = sample.is_some();
        let mut row_bins = vec![0u8; n_rows * p];
        let mut bins = vec![0u8; n_rows * p];
        let n_blocks = n_rows.div_ceil(BIN_BLOCK_ROWS);
        let mut pieces: Vec<Vec<&mut [u8]>> =
            (0..n_blocks).map(|_| Vec::with_capacity(p)).collect();
        for col in bins.chunks_mut(n_rows) {
            for (b, piece) in col.chunks_mut(BIN_BLOCK_ROWS).enumerate() {
                pieces[b].push(piece);
            }
        }
        let block =
            |(c, (out, mut cols)): (usize, (&mut [u8], Vec<&mut [u8]>))| -> Option<Vec<BinMapper>> {
                let start = c * BIN_BLOCK_ROWS;
                let mut local = widen.then(|| mappers.clone());
                for (i, line) in out.chunks_exact_mut(p).enumerate() {
                    let r = start + i;
                    for (f, (b, &v)) in line.iter_mut().zip(&x[r * p..(r + 1) * p]).enumerate() {
                        *b = mappers[f].bin(v);
                        if let Some(l) = local.as_mut() {
                            l[f].widen(*b, v);
                        }
                    }
                }
                for (f, col) in cols.iter_mut().enumerate() {
                    for (b, line) in col.iter_mut().zip(out.chunks_exact(p)) {
                        *b = line[f];
                    }
                }
                local
            };
        let ranges: Vec<Option<Vec<BinMapper>>> = if parallel {
            row_bins
                .par_chunks_mut(BIN_BLOCK_ROWS * p)
                .zip(pieces)
                .enumerate()
                .map(block)
                .collect()
        } else {
            row_bins
                .chunks_mut(BIN_BLOCK_ROWS * p)
                .zip(pieces)
                .enumerate()
                .map(block)
                .collect()
        };
        for local in ranges.into_iter().flatten() {
            for (m, l) in mappers.iter_mut().zip(local) {
                m.merge_ranges(&l);
            }
        }
        Self {
            n_rows,
            bins,
            row_bins,
            mappers,
        }
    }

    /// Bins the row-major `x` with these mappers (for validation rows).
    ///
    /// # Panics
    /// When `x.len() != n_rows * self.n_features()`.
    pub fn bin_like(&self, x: &[f32], n_rows: usize) -> Self {
        let p = self.n_features();
        assert_eq!(x.len(), n_rows * p, "matrix does not match shape");
        let row_bins: Vec<u8> = x
            .iter()
            .enumerate()
            .map(|(i, &v)| self.mappers[i % p.max(1)].bin(v))
            .collect();
        let mut bins = vec![0u8; n_rows * p];
        for (f, col) in bins.chunks_mut(n_rows.max(1)).enumerate().take(p) {
            for (b, line) in col.iter_mut().zip(row_bins.chunks_exact(p)) {
                *b = line[f];
            }
        }
        Self {
            n_rows,
            bins,
            row_bins,
            mappers: self.mappers.clone(),
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

    /// The bins of row `r`, one per feature.
    #[inline]
    pub fn row(&self, r: usize) -> &[u8] {
        let p = self.n_features();
        &self.row_bins[r * p..(r + 1) * p]
    }

    /// All bins row after row (`n_features` per row).
    #[inline]
    pub fn row_major(&self) -> &[u8] {
        &self.row_bins
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
    fn large_data_fits_edges_on_a_sample_and_keeps_value_ranges() {
        let n = BIN_SAMPLE_ROWS + 50_001;
        let x: Vec<f32> = (0..n)
            .map(|i| {
                if i == n - 1 {
                    f32::NAN
                } else {
                    ((i * 7919) % 100_003) as f32
                }
            })
            .collect();
        let d = BinnedData::from_rows(&x, n, 1, 64, false);
        let m = d.mapper(0);
        assert!(m.n_bins() <= 64 && m.has_missing());
        for (r, &b) in d.column(0).iter().enumerate() {
            let v = x[r];
            if v.is_nan() {
                assert_eq!(b, MISSING_BIN);
                continue;
            }
            let (lo, hi) = m.value_range(b);
            assert!(lo <= v && v <= hi, "row {r}: {v} outside [{lo}, {hi}]");
            assert!(v <= m.threshold(b));
        }
        let again = BinnedData::from_rows(&x, n, 1, 64, true);
        assert_eq!(again.column(0), d.column(0));
        let valid = d.bin_like(&x[..10], 10);
        assert_eq!(valid.column(0), &d.column(0)[..10]);
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
