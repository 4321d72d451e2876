//! Which rows and feature columns each member trains on, and copying them
//! out of the training data.
//!
//! Every member's draws depend only on the bagging seed and the member's
//! index, so members can be trained in any order on any thread, and the
//! draws can be repeated after training to find each member's out-of-bag
//! rows without keeping them in memory.

use tessera_core::MatrixRef;

use tessera_core::plugin::seeds::{SplitMix, derive_seed, member_seed};

const FEATURES_TAG: u64 = 1;
const ROWS_TAG: u64 = 2;

/// The draws of every member of one ensemble.
#[derive(Clone, Copy, Debug)]
pub struct Sampler {
    /// The bagging seed.
    pub seed: u64,
    /// Rows of the training data.
    pub n_rows: usize,
    /// Feature columns of the training data.
    pub n_features: usize,
    /// Rows each member draws.
    pub k_rows: usize,
    /// Columns each member draws.
    pub k_features: usize,
    /// Rows are drawn with replacement.
    pub bootstrap: bool,
    /// Columns are drawn with replacement.
    pub bootstrap_features: bool,
}

impl Sampler {
    fn stream(&self, member: usize, tag: u64) -> SplitMix {
        SplitMix::new(derive_seed(derive_seed(self.seed, member as u64), tag))
    }

    /// The `random_state` handed to member `member`'s learner: below 2^31,
    /// which any learner's seed parameter accepts.
    pub fn learner_seed(&self, member: usize) -> u64 {
        member_seed(self.seed, member)
    }

    /// The feature columns of member `member`, ascending (with repeats when
    /// drawn with replacement).
    pub fn features(&self, member: usize) -> Vec<u32> {
        let mut rng = self.stream(member, FEATURES_TAG);
        let cols = draw(
            &mut rng,
            self.n_features,
            self.k_features,
            self.bootstrap_features,
        );
        cols.into_iter().map(|c| c as u32).collect()
    }

    /// The rows of member `member`, ascending (with repeats when drawn with
    /// replacement); `None` when it trains on every row once.
    pub fn rows(&self, member: usize) -> Option<Vec<usize>> {
        if !self.bootstrap && self.k_rows >= self.n_rows {
            return None;
        }
        let mut rng = self.stream(member, ROWS_TAG);
        Some(draw(&mut rng, self.n_rows, self.k_rows, self.bootstrap))
    }
}

/// `k` of `0..n`, sorted: with replacement, or a uniformly random subset.
fn draw(rng: &mut SplitMix, n: usize, k: usize, replace: bool) -> Vec<usize> {
    let mut out: Vec<usize> = if replace {
        (0..k).map(|_| rng.below(n)).collect()
    } else if k >= n {
        (0..n).collect()
    } else {
        // The first `k` steps of a Fisher-Yates shuffle.
        let mut idx: Vec<usize> = (0..n).collect();
        for j in 0..k {
            let pick = j + rng.below(n - j);
            idx.swap(j, pick);
        }
        idx.truncate(k);
        idx
    };
    out.sort_unstable();
    out
}

/// Whether `features` is every column of `n`, in order (no copy needed).
pub fn is_all(features: &[u32], n: usize) -> bool {
    features.len() == n && features.iter().enumerate().all(|(i, &f)| f as usize == i)
}

/// The rows `rows` (all when `None`) and columns `cols` (all when `None`)
/// of `x`, row-major.
pub fn gather(x: MatrixRef<'_>, rows: Option<&[usize]>, cols: Option<&[u32]>) -> Vec<f32> {
    let n_rows = rows.map_or(x.rows(), <[usize]>::len);
    let width = cols.map_or(x.cols(), <[u32]>::len);
    let mut out = Vec::with_capacity(n_rows * width);
    let mut push = |r: usize| {
        let row = x.row(r);
        match cols {
            None => out.extend_from_slice(row),
            Some(cols) => out.extend(cols.iter().map(|&c| row[c as usize])),
        }
    };
    match rows {
        None => (0..x.rows()).for_each(&mut push),
        Some(rows) => rows.iter().for_each(|&r| push(r)),
    }
    out
}

/// Which of `n` rows a member with row draw `rows` trained on.
pub fn in_bag(rows: Option<&[usize]>, n: usize) -> Vec<bool> {
    match rows {
        None => vec![true; n],
        Some(rows) => {
            let mut mask = vec![false; n];
            for &r in rows {
                mask[r] = true;
            }
            mask
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sampler(
        bootstrap: bool,
        bootstrap_features: bool,
        k_rows: usize,
        k_features: usize,
    ) -> Sampler {
        Sampler {
            seed: 42,
            n_rows: 100,
            n_features: 6,
            k_rows,
            k_features,
            bootstrap,
            bootstrap_features,
        }
    }

    #[test]
    fn bootstrap_draws_with_replacement() {
        let s = sampler(true, false, 100, 6);
        let rows = s.rows(0).unwrap();
        assert_eq!(rows.len(), 100);
        assert!(rows.windows(2).all(|w| w[0] <= w[1]));
        let distinct = in_bag(Some(&rows), 100).iter().filter(|&&b| b).count();
        // About 63% of the rows are drawn at least once.
        assert!((50..80).contains(&distinct), "{distinct}");
        assert_eq!(s.rows(0), s.rows(0));
        assert_ne!(s.rows(0), s.rows(1));
        assert!(is_all(&s.features(0), 6));
    }

    #[test]
    fn without_bootstrap_rows_are_distinct() {
        assert_eq!(sampler(false, false, 100, 6).rows(3), None);
        let rows = sampler(false, false, 30, 6).rows(3).unwrap();
        assert_eq!(rows.len(), 30);
        assert!(rows.windows(2).all(|w| w[0] < w[1]));
        assert!(rows.iter().all(|&r| r < 100));
    }

    #[test]
    fn feature_subsets() {
        let s = sampler(true, false, 100, 3);
        let f = s.features(0);
        assert_eq!(f.len(), 3);
        assert!(f.windows(2).all(|w| w[0] < w[1]));
        assert!(f.iter().all(|&c| c < 6));
        let s = sampler(true, true, 100, 6);
        let with_repeats = (0..20).any(|m| {
            let f = s.features(m);
            f.windows(2).any(|w| w[0] == w[1])
        });
        assert!(with_repeats);
    }

    #[test]
    fn learner_seeds_are_small_and_distinct() {
        let s = sampler(true, false, 100, 6);
        assert!(s.learner_seed(0) < 1 << 31);
        assert_ne!(s.learner_seed(0), s.learner_seed(1));
    }

    #[test]
    fn gather_copies_rows_and_columns() {
        let x: Vec<f32> = (0..12).map(|v| v as f32).collect();
        let m = MatrixRef::new(&x, 4, 3).unwrap();
        assert_eq!(gather(m, None, None), x);
        assert_eq!(
            gather(m, Some(&[3, 0, 0]), Some(&[2, 0])),
            vec![11.0, 9.0, 2.0, 0.0, 2.0, 0.0]
        );
        assert_eq!(gather(m, None, Some(&[1])), vec![1.0, 4.0, 7.0, 10.0]);
        assert_eq!(gather(m, Some(&[]), None), Vec::<f32>::new());
    }
}
