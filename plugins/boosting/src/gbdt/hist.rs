//! Gradient histograms: per feature and bin, the sums of the gradients and
//! hessians of a leaf's rows.
//!
//! Histograms are built row by row from the row-major bin matrix (one
//! row's bins are adjacent, so a row costs one cache line whichever
//! features are used), in blocks of the leaf's rows built in parallel
//! within the thread budget and summed in order. A leaf's sibling is never
//! built: its histogram is the parent's minus the leaf's (the subtraction
//! trick).
//!
//! An entry is two `f64` (16 bytes, one vector add per row and feature).
//! Row counts are not summed: without sample weights and with a unit
//! hessian (the regression losses) a bin's hessian sum is its row count;
//! otherwise the split search estimates counts from hessians, as LightGBM
//! does, and the grower checks the exact counts when it partitions.

use rayon::prelude::*;
use tessera_trees::{MISSING_BIN, N_BINS, prefetch::prefetch};

/// Sums over rows: gradient, hessian and (for a leaf or a split side, not
/// a histogram bin) the exact row count.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Bin {
    /// Sum of gradients.
    pub g: f64,
    /// Sum of hessians.
    pub h: f64,
    /// Rows.
    pub n: u32,
}

/// One histogram bin: gradient and hessian sums.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
#[repr(C, align(16))]
pub struct Entry {
    /// Sum of gradients.
    pub g: f64,
    /// Sum of hessians.
    pub h: f64,
}

impl Entry {
    #[inline]
    fn plus(self, o: Entry) -> Entry {
        Entry {
            g: self.g + o.g,
            h: self.h + o.h,
        }
    }

    #[inline]
    fn minus(self, o: Entry) -> Entry {
        Entry {
            g: self.g - o.g,
            h: self.h - o.h,
        }
    }
}

/// One feature's histogram.
pub type FeatureHist = [Entry; N_BINS];

/// An empty feature histogram.
pub const EMPTY: FeatureHist = [Entry { g: 0.0, h: 0.0 }; N_BINS];

/// How many rows ahead of use a row's data is prefetched.
const PREFETCH_AHEAD: usize = 24;

/// Rows per block below which a histogram is built in one pass.
const PARALLEL_ROWS: usize = 2 * 1024;
/// The most blocks a histogram is built in (and the scratch sets needed,
/// plus one): enough to keep a few threads busy.
pub const MAX_BLOCKS: usize = 4;

/// The training rows' bins, row-major: row `i`'s bins are
/// `bins[i * n_features..][..n_features]`.
pub struct RowBins<'a> {
    /// The bins.
    pub bins: &'a [u8],
    /// Features per row.
    pub n_features: usize,
    /// Bins of present values per feature: only bins below it and
    /// [`MISSING_BIN`] are ever used, so only those are cleared, summed
    /// and subtracted.
    pub n_bins: &'a [usize],
}

/// Sets the bins feature `f` uses to zero.
#[inline]
fn clear_used(fh: &mut FeatureHist, nb: usize) {
    fh[..nb].fill(Entry::default());
    fh[usize::from(MISSING_BIN)] = Entry::default();
}

/// Applies `op` to the bins a feature with `nb` present bins uses.
#[inline]
fn each_used(a: &mut FeatureHist, b: &FeatureHist, nb: usize, op: impl Fn(Entry, Entry) -> Entry) {
    for (x, y) in a[..nb].iter_mut().zip(&b[..nb]) {
        *x = op(*x, *y);
    }
    let m = usize::from(MISSING_BIN);
    a[m] = op(a[m], b[m]);
}

/// Adds the rows `idx` to `hist` (one entry per feature; only `features`
/// are touched, or all when `None`).
fn accumulate(
    hist: &mut [FeatureHist],
    rows: &RowBins<'_>,
    idx: &[u32],
    gh: &[[f32; 2]],
    features: Option<&[usize]>,
) {
    let p = rows.n_features;
    // A leaf's rows are ascending but scattered: fetch rows a few
    // iterations ahead, so their bins and gradients are in cache in time.
    let ahead = |k: usize| {
        if let Some(&j) = idx.get(k + PREFETCH_AHEAD) {
            let j = j as usize;
            // A row may straddle two cache lines: fetch both ends.
            prefetch(&rows.bins[j * p]);
            prefetch(&rows.bins[j * p + p - 1]);
            prefetch(&gh[j]);
        }
    };
    match features {
        None => {
            for (k, &i) in idx.iter().enumerate() {
                ahead(k);
                let i = i as usize;
                let line = &rows.bins[i * p..(i + 1) * p];
                let [g, h] = gh[i];
                let add = Entry {
                    g: f64::from(g),
                    h: f64::from(h),
                };
                for (fh, &b) in hist.iter_mut().zip(line) {
                    let e = &mut fh[usize::from(b)];
                    *e = e.plus(add);
                }
            }
        }
        Some(features) => {
            for (k, &i) in idx.iter().enumerate() {
                ahead(k);
                let i = i as usize;
                let line = &rows.bins[i * p..(i + 1) * p];
                let [g, h] = gh[i];
                let add = Entry {
                    g: f64::from(g),
                    h: f64::from(h),
                };
                for &f in features {
                    let e = &mut hist[f][usize::from(line[f])];
                    *e = e.plus(add);
                }
            }
        }
    }
}

/// Builds the histograms of the rows `idx` into `out` (all features of
/// `features`, or all when `None`). Large leaves are cut into up to
/// [`MAX_BLOCKS`] blocks built in parallel on the current rayon pool, the
/// extra ones into `scratch` (`MAX_BLOCKS - 1` histogram sets), then summed
/// in block order.
pub fn build(
    out: &mut [FeatureHist],
    scratch: &mut [Vec<FeatureHist>],
    rows: &RowBins<'_>,
    idx: &[u32],
    gh: &[[f32; 2]],
    features: Option<&[usize]>,
) {
    let nb = rows.n_bins;
    let clear = |h: &mut [FeatureHist]| match features {
        None => h.iter_mut().zip(nb).for_each(|(fh, &n)| clear_used(fh, n)),
        Some(fs) => fs.iter().for_each(|&f| clear_used(&mut h[f], nb[f])),
    };
    // The block count depends on the rows alone, never on the threads, so
    // sums (and so models) are the same on any thread budget.
    let blocks = (idx.len() / PARALLEL_ROWS).clamp(1, MAX_BLOCKS);
    if blocks == 1 {
        clear(out);
        accumulate(out, rows, idx, gh, features);
        return;
    }
    let per = idx.len().div_ceil(blocks);
    let mut targets: Vec<&mut [FeatureHist]> = Vec::with_capacity(blocks);
    targets.push(out);
    for s in scratch.iter_mut().take(blocks - 1) {
        targets.push(s.as_mut_slice());
    }
    assert_eq!(
        targets.len(),
        blocks,
        "one scratch histogram set per extra block"
    );
    targets
        .par_iter_mut()
        .zip(idx.par_chunks(per))
        .for_each(|(h, chunk)| {
            clear(h);
            accumulate(h, rows, chunk, gh, features);
        });
    let (first, rest) = targets.split_first_mut().expect("one block at least");
    let add = |f: usize, first: &mut [FeatureHist]| {
        for other in rest.iter() {
            each_used(&mut first[f], &other[f], nb[f], Entry::plus);
        }
    };
    match features {
        None => (0..first.len()).for_each(|f| add(f, first)),
        Some(fs) => fs.iter().for_each(|&f| add(f, first)),
    }
}

/// `parent -= child` on `features` (all when `None`): the parent's
/// histograms become the child's sibling's.
pub fn subtract(
    parent: &mut [FeatureHist],
    child: &[FeatureHist],
    features: Option<&[usize]>,
    n_bins: &[usize],
) {
    match features {
        None => {
            for ((p, c), &nb) in parent.iter_mut().zip(child).zip(n_bins) {
                each_used(p, c, nb, Entry::minus);
            }
        }
        Some(fs) => fs
            .iter()
            .for_each(|&f| each_used(&mut parent[f], &child[f], n_bins[f], Entry::minus)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(n: usize, p: usize) -> (Vec<u8>, Vec<[f32; 2]>) {
        let bins = (0..n * p).map(|i| ((i * 7919) % 13) as u8).collect();
        let gh = (0..n)
            .map(|i| [((i % 5) as f32) - 2.0, 0.5 + (i % 3) as f32])
            .collect();
        (bins, gh)
    }

    fn naive(bins: &[u8], p: usize, idx: &[u32], gh: &[[f32; 2]]) -> Vec<FeatureHist> {
        let mut h = vec![EMPTY; p];
        for &i in idx {
            for f in 0..p {
                let e = &mut h[f][usize::from(bins[i as usize * p + f])];
                e.g += f64::from(gh[i as usize][0]);
                e.h += f64::from(gh[i as usize][1]);
            }
        }
        h
    }

    #[test]
    fn parallel_blocks_and_feature_subsets_match_a_naive_sum() {
        let (n, p) = (40_000, 5);
        let (bins, gh) = data(n, p);
        let nb = vec![13; p];
        let rows = RowBins {
            bins: &bins,
            n_features: p,
            n_bins: &nb,
        };
        let idx: Vec<u32> = (0..n as u32).filter(|i| i % 3 != 0).collect();
        let expected = naive(&bins, p, &idx, &gh);
        for threads in [1usize, 2, 3] {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            let mut out = vec![EMPTY; p];
            let mut scratch = vec![vec![EMPTY; p]; MAX_BLOCKS - 1];
            pool.install(|| build(&mut out, &mut scratch, &rows, &idx, &gh, None));
            for f in 0..p {
                for b in 0..N_BINS {
                    assert!((out[f][b].g - expected[f][b].g).abs() < 1e-6);
                    assert!((out[f][b].h - expected[f][b].h).abs() < 1e-6);
                }
            }
            // Identical sums on any thread count.
            let mut single = vec![EMPTY; p];
            build(&mut single, &mut scratch, &rows, &idx, &gh, None);
            assert_eq!(single, out);
            // A subset touches only its features.
            let mut sub = vec![EMPTY; p];
            pool.install(|| build(&mut sub, &mut scratch, &rows, &idx, &gh, Some(&[1, 3])));
            assert_eq!(sub[1], expected[1]);
            assert_eq!(sub[3], expected[3]);
            assert_eq!(sub[0], EMPTY);
        }
    }

    #[test]
    fn subtraction_gives_the_sibling() {
        let (n, p) = (1000, 3);
        let (bins, gh) = data(n, p);
        let nb = vec![13; p];
        let rows = RowBins {
            bins: &bins,
            n_features: p,
            n_bins: &nb,
        };
        let all: Vec<u32> = (0..n as u32).collect();
        let (left, right): (Vec<u32>, Vec<u32>) = all.iter().partition(|&&i| i % 4 == 1);
        let mut parent = vec![EMPTY; p];
        build(&mut parent, &mut [], &rows, &all, &gh, None);
        let mut small = vec![EMPTY; p];
        build(&mut small, &mut [], &rows, &left, &gh, None);
        subtract(&mut parent, &small, None, &nb);
        let expected = naive(&bins, p, &right, &gh);
        for f in 0..p {
            for b in 0..N_BINS {
                assert!((parent[f][b].h - expected[f][b].h).abs() < 1e-9);
                assert!((parent[f][b].g - expected[f][b].g).abs() < 1e-9);
            }
        }
    }

    #[test]
    fn unit_hessians_are_counts() {
        let (n, p) = (500, 2);
        let (bins, mut gh) = data(n, p);
        gh.iter_mut().for_each(|x| x[1] = 1.0);
        let nb = vec![13; p];
        let rows = RowBins {
            bins: &bins,
            n_features: p,
            n_bins: &nb,
        };
        let idx: Vec<u32> = (0..n as u32).collect();
        let mut a = vec![EMPTY; p];
        build(&mut a, &mut [], &rows, &idx, &gh, None);
        for f in 0..p {
            for b in 0..13u8 {
                let count = (0..n).filter(|&i| bins[i * p + f] == b).count();
                assert_eq!(a[f][usize::from(b)].h, count as f64);
            }
        }
    }
}
