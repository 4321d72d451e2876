//! Split finding on one feature's histogram.
//!
//! A split sends the present values in bins `0..=cut` left and the others
//! right; missing values go to the side that scores better (tried both
//! ways when the node has any), or, when the node has none, to the heavier
//! child, where unseen missing values are most likely to belong. The
//! split's quality is `score(left) + score(right)` for an additive
//! [`Score`]: higher is better, and only comparable between splits of the
//! same node.

use crate::{HistView, MISSING_BIN, Score};

/// What each child of a split must keep.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Limits {
    /// Fewest rows (at least 1 is always required).
    pub min_count: u32,
    /// Smallest weight ([`Score::weight`]).
    pub min_weight: f64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            min_count: 1,
            min_weight: 0.0,
        }
    }
}

/// A split found on a histogram.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BinSplit {
    /// Present values in bins `0..=cut` go left.
    pub cut: u8,
    /// The first bin above `cut` holding present values of the node, or
    /// [`MISSING_BIN`] when there is none: a threshold anywhere from the
    /// top of `cut` to the bottom of `next` splits the node's rows the same
    /// way (see [`crate::BinMapper::split_threshold`]).
    pub next: u8,
    /// Where missing values go.
    pub missing_left: bool,
    /// `score(left) + score(right)`.
    pub proxy: f64,
    /// Rows going left.
    pub left_count: u32,
    /// Rows going right.
    pub right_count: u32,
}

/// Scratch space for split finding, reused across features and nodes.
#[derive(Clone, Debug, Default)]
pub struct SplitFinder {
    bins: Vec<u8>,
    total: Vec<f64>,
    missing: Vec<f64>,
    left: Vec<f64>,
    side: Vec<f64>,
}

struct Node {
    total_count: u32,
    missing_count: u32,
}

impl SplitFinder {
    /// Empty scratch space.
    pub fn new() -> Self {
        Self::default()
    }

    /// Loads the histogram: the bins in use and the totals.
    fn load(&mut self, view: &HistView<'_>, bins: impl IntoIterator<Item = u8>) -> Node {
        let w = view.width();
        self.bins.clear();
        self.bins.extend(bins);
        for v in [&mut self.total, &mut self.missing, &mut self.left] {
            v.clear();
            v.resize(w, 0.0);
        }
        self.side.resize(w, 0.0);
        let mut node = Node {
            total_count: 0,
            missing_count: 0,
        };
        for &b in &self.bins {
            node.total_count += view.count(b);
            for (t, s) in self.total.iter_mut().zip(view.sums(b)) {
                *t += s;
            }
        }
        if self.bins.last() == Some(&MISSING_BIN) {
            self.bins.pop();
            node.missing_count = view.count(MISSING_BIN);
            self.missing.copy_from_slice(view.sums(MISSING_BIN));
        }
        node
    }

    /// Scores the split whose left child is `self.left` (+ the missing rows
    /// when `with_missing`) holding `left_count` rows; `None` unless it
    /// keeps `limits` and beats `bar`.
    #[allow(clippy::too_many_arguments)]
    fn eval<S: Score>(
        &mut self,
        node: &Node,
        (score, limits): (&S, &Limits),
        bar: Option<f64>,
        (cut, next): (u8, u8),
        left_count: u32,
        with_missing: bool,
        missing_left: Option<bool>,
    ) -> Option<BinSplit> {
        let lc = left_count + if with_missing { node.missing_count } else { 0 };
        let rc = node.total_count - lc;
        let min = limits.min_count.max(1);
        if lc < min || rc < min {
            return None;
        }
        let l = if with_missing {
            for ((s, l), m) in self.side.iter_mut().zip(&self.left).zip(&self.missing) {
                *s = l + m;
            }
            &self.side
        } else {
            &self.left
        };
        let (wl, wr, proxy) = score.split(l, &self.total);
        if !(wl >= limits.min_weight && wr >= limits.min_weight) {
            return None;
        }
        // Strictly better only: the first of equal splits wins.
        if proxy.is_nan() || bar.is_some_and(|b| proxy <= b) {
            return None;
        }
        Some(BinSplit {
            cut,
            next,
            missing_left: missing_left.unwrap_or(wl >= wr),
            proxy,
            left_count: lc,
            right_count: rc,
        })
    }

    /// The best split of a feature's histogram `view`, whose bins in use
    /// (ascending) are `bins`, or `None` when no split keeps both children
    /// within `limits`.
    pub fn best<S: Score>(
        &mut self,
        view: HistView<'_>,
        bins: impl IntoIterator<Item = u8>,
        score: &S,
        limits: &Limits,
    ) -> Option<BinSplit> {
        let node = self.load(&view, bins);
        let mut best: Option<BinSplit> = None;
        let sl = (score, limits);
        let mut lc = 0;
        let n = self.bins.len();
        for i in 0..n {
            let b = self.bins[i];
            lc += view.count(b);
            for (l, s) in self.left.iter_mut().zip(view.sums(b)) {
                *l += s;
            }
            let bar = |best: &Option<BinSplit>| best.map(|b| b.proxy);
            if i + 1 < n {
                let at = (b, self.bins[i + 1]);
                if node.missing_count == 0 {
                    let c = self.eval(&node, sl, bar(&best), at, lc, false, None);
                    best = c.or(best);
                } else {
                    let c = self.eval(&node, sl, bar(&best), at, lc, true, Some(true));
                    best = c.or(best);
                    let c = self.eval(&node, sl, bar(&best), at, lc, false, Some(false));
                    best = c.or(best);
                }
            } else if node.missing_count > 0 {
                // Every present value left, every missing one right.
                let at = (b, MISSING_BIN);
                let c = self.eval(&node, sl, bar(&best), at, lc, false, Some(false));
                best = c.or(best);
            }
        }
        best
    }

    /// The split at `cut` (present values in bins `0..=cut` left) with
    /// missing values on the side `missing_left` names (ignored when the
    /// node has none: they follow the heavier child), or `None` when it
    /// breaks `limits` or leaves a child empty.
    pub fn at<S: Score>(
        &mut self,
        view: HistView<'_>,
        bins: impl IntoIterator<Item = u8>,
        cut: u8,
        missing_left: bool,
        score: &S,
        limits: &Limits,
    ) -> Option<BinSplit> {
        let node = self.load(&view, bins);
        let mut lc = 0;
        for &b in self.bins.iter().take_while(|&&b| b <= cut) {
            lc += view.count(b);
            for (l, s) in self.left.iter_mut().zip(view.sums(b)) {
                *l += s;
            }
        }
        let next = self.bins.iter().copied().find(|&b| b > cut);
        let at = (cut, next.unwrap_or(MISSING_BIN));
        let sl = (score, limits);
        if node.missing_count == 0 {
            self.eval(&node, sl, None, at, lc, false, None)
        } else {
            let side = Some(missing_left);
            self.eval(&node, sl, None, at, lc, missing_left, side)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        BinnedData, Entropy, Gini, Hist,
        hist::tests::{Classes, store},
    };

    fn hist(x: &[f32], class: &[usize], weight: &[f64]) -> (Hist, BinnedData) {
        let d = BinnedData::from_rows(x, x.len(), 1, 255, false);
        let mut h = Hist::new(2);
        let rows: Vec<u32> = (0..x.len() as u32).collect();
        h.build(&store(&d, class, weight, &rows), 0..x.len(), &[0], &Classes);
        (h, d)
    }

    #[test]
    fn finds_the_separating_cut() {
        // Classes separate between 3 and 4; Gini and entropy agree.
        let x = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0];
        let (h, d) = hist(&x, &[0, 0, 0, 1, 1, 1], &[1.0; 6]);
        let mut f = SplitFinder::new();
        let g = f
            .best(h.view(0), h.bins_in_use(0), &Gini, &Limits::default())
            .unwrap();
        assert_eq!((g.cut, g.next, g.left_count, g.right_count), (2, 3, 3, 3));
        assert_eq!(d.mapper(0).threshold(g.cut), 3.5);
        assert_eq!(d.mapper(0).split_threshold(g.cut, g.next), 3.5);
        // Pure children: Gini proxy = 3 + 3.
        assert!((g.proxy - 6.0).abs() < 1e-12);
        let e = f
            .best(h.view(0), h.bins_in_use(0), &Entropy, &Limits::default())
            .unwrap();
        assert_eq!(e.cut, 2);
        // No missing rows: missing values follow the heavier child (a tie
        // goes left).
        assert!(g.missing_left);
        // The cut at bin 0 scores worse.
        let at = f
            .at(
                h.view(0),
                h.bins_in_use(0),
                0,
                false,
                &Gini,
                &Limits::default(),
            )
            .unwrap();
        assert!(at.proxy < g.proxy && at.left_count == 1);
    }

    #[test]
    fn limits_and_weights_change_the_choice() {
        let x = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0];
        let (h, _) = hist(&x, &[0, 1, 1, 1, 1, 1], &[1.0; 6]);
        let mut f = SplitFinder::new();
        let free = f
            .best(h.view(0), h.bins_in_use(0), &Gini, &Limits::default())
            .unwrap();
        assert_eq!(free.cut, 0);
        let two = Limits {
            min_count: 2,
            min_weight: 0.0,
        };
        assert_eq!(
            f.best(h.view(0), h.bins_in_use(0), &Gini, &two)
                .unwrap()
                .cut,
            1
        );
        let heavy = Limits {
            min_count: 1,
            min_weight: 3.5,
        };
        assert!(f.best(h.view(0), h.bins_in_use(0), &Gini, &heavy).is_none());
        // Weights count: a heavy class-0 row at 6 moves the best cut.
        let (h, _) = hist(&x, &[0, 0, 1, 1, 1, 0], &[1.0, 1.0, 1.0, 1.0, 1.0, 50.0]);
        let s = f
            .best(h.view(0), h.bins_in_use(0), &Gini, &Limits::default())
            .unwrap();
        assert_eq!(s.cut, 4);
    }

    #[test]
    fn missing_values_go_where_they_help() {
        // Missing rows are class 1, like the large values: they go right.
        let x = [1.0, 2.0, 3.0, 7.0, 8.0, f32::NAN, f32::NAN];
        let (h, _) = hist(&x, &[0, 0, 0, 1, 1, 1, 1], &[1.0; 7]);
        let mut f = SplitFinder::new();
        let s = f
            .best(h.view(0), h.bins_in_use(0), &Gini, &Limits::default())
            .unwrap();
        assert_eq!((s.cut, s.missing_left, s.left_count), (2, false, 3));
        // Missing rows are class 0, like the small values: they go left.
        let (h, _) = hist(&x, &[0, 0, 0, 1, 1, 0, 0], &[1.0; 7]);
        let s = f
            .best(h.view(0), h.bins_in_use(0), &Gini, &Limits::default())
            .unwrap();
        assert_eq!((s.cut, s.missing_left, s.left_count), (2, true, 5));
        // Only missing-ness separates: present left, missing right.
        let x = [1.0, 1.0, f32::NAN, f32::NAN];
        let (h, _) = hist(&x, &[0, 0, 1, 1], &[1.0; 4]);
        let s = f
            .best(h.view(0), h.bins_in_use(0), &Gini, &Limits::default())
            .unwrap();
        assert_eq!(
            (s.cut, s.missing_left, s.left_count, s.right_count),
            (0, false, 2, 2)
        );
        assert_eq!(s.next, MISSING_BIN);
        // A fixed cut honours the requested side.
        let s = f.at(
            h.view(0),
            h.bins_in_use(0),
            0,
            true,
            &Gini,
            &Limits::default(),
        );
        assert!(s.is_none(), "everything left leaves the right child empty");
    }
}
