//! Additive split criteria on a child's summed statistics: a split's
//! quality is `score(left) + score(right)`, higher is better.

/// An additive split criterion on a child's summed statistics.
pub trait Score {
    /// The child's weight, which [`crate::Limits::min_weight`] bounds.
    fn weight(&self, stats: &[f64]) -> f64;
    /// The child's share of the split's quality.
    fn score(&self, stats: &[f64]) -> f64;
    /// For the split of a node with statistics `total` into `left` and
    /// `right = total - left`: `(weight(left), weight(right),
    /// score(left) + score(right))`. The criteria here compute it in one
    /// go without building `right`, with the same operations in the same
    /// order as an exact CART scan, so both pick the same split.
    #[inline]
    fn split(&self, left: &[f64], total: &[f64]) -> (f64, f64, f64) {
        let right: Vec<f64> = total.iter().zip(left).map(|(t, l)| t - l).collect();
        let (wl, wr) = (self.weight(left), self.weight(&right));
        (wl, wr, self.score(left) + self.score(&right))
    }
}

/// Gini impurity; statistics are weighted class counts.
/// `score = sum(s^2) / sum(s)`, the weighted Gini decrease up to constants.
#[derive(Clone, Copy, Debug, Default)]
pub struct Gini;

impl Score for Gini {
    #[inline]
    fn weight(&self, s: &[f64]) -> f64 {
        s.iter().sum()
    }
    #[inline]
    fn score(&self, s: &[f64]) -> f64 {
        let (mut w, mut q) = (0.0, 0.0);
        for &v in s {
            w += v;
            q += v * v;
        }
        if w > 0.0 { q / w } else { 0.0 }
    }
    #[inline]
    fn split(&self, l: &[f64], t: &[f64]) -> (f64, f64, f64) {
        let (mut wl, mut ql, mut wr, mut qr) = (0.0, 0.0, 0.0, 0.0);
        for (&a, &t) in l.iter().zip(t) {
            let b = t - a;
            wl += a;
            ql += a * a;
            wr += b;
            qr += b * b;
        }
        let l = if wl > 0.0 { ql / wl } else { 0.0 };
        let r = if wr > 0.0 { qr / wr } else { 0.0 };
        (wl, wr, l + r)
    }
}

#[inline]
fn xlogx(x: f64) -> f64 {
    if x > 0.0 { x * x.ln() } else { 0.0 }
}

/// Shannon entropy; statistics are weighted class counts.
/// `score = sum(s ln s) - w ln w`, minus the child's weighted entropy.
#[derive(Clone, Copy, Debug, Default)]
pub struct Entropy;

impl Score for Entropy {
    #[inline]
    fn weight(&self, s: &[f64]) -> f64 {
        s.iter().sum()
    }
    #[inline]
    fn score(&self, s: &[f64]) -> f64 {
        s.iter().map(|&v| xlogx(v)).sum::<f64>() - xlogx(s.iter().sum())
    }
    #[inline]
    fn split(&self, l: &[f64], t: &[f64]) -> (f64, f64, f64) {
        let (mut wl, mut wr) = (0.0, 0.0);
        for (&a, &t) in l.iter().zip(t) {
            wl += a;
            wr += t - a;
        }
        let mut p = -xlogx(wl) - xlogx(wr);
        for (&a, &t) in l.iter().zip(t) {
            p += xlogx(a) + xlogx(t - a);
        }
        (wl, wr, p)
    }
}

/// Squared error; statistics are `[weight, weighted target sum]`.
/// `score = (sum w y)^2 / sum w`.
#[derive(Clone, Copy, Debug, Default)]
pub struct SquaredError;

impl Score for SquaredError {
    #[inline]
    fn weight(&self, s: &[f64]) -> f64 {
        s[0]
    }
    #[inline]
    fn score(&self, s: &[f64]) -> f64 {
        if s[0] > 0.0 { s[1] * s[1] / s[0] } else { 0.0 }
    }
    #[inline]
    fn split(&self, l: &[f64], t: &[f64]) -> (f64, f64, f64) {
        let r = [t[0] - l[0], t[1] - l[1]];
        (l[0], r[0], self.score(l) + self.score(&r))
    }
}

/// Second-order boosting gain; statistics are `[gradient, hessian]`.
/// `score = g^2 / (h + lambda)`; the weight is the hessian.
#[derive(Clone, Copy, Debug, Default)]
pub struct GradientGain {
    /// L2 regularisation of leaf values.
    pub lambda: f64,
}

impl Score for GradientGain {
    #[inline]
    fn weight(&self, s: &[f64]) -> f64 {
        s[1]
    }
    #[inline]
    fn score(&self, s: &[f64]) -> f64 {
        let d = s[1] + self.lambda;
        if d > 0.0 { s[0] * s[0] / d } else { 0.0 }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regression_and_gradient_scores() {
        assert_eq!(SquaredError.score(&[2.0, 6.0]), 18.0);
        assert_eq!(SquaredError.weight(&[2.0, 6.0]), 2.0);
        let g = GradientGain { lambda: 1.0 };
        assert_eq!((g.score(&[3.0, 2.0]), g.weight(&[3.0, 2.0])), (3.0, 2.0));
        assert_eq!(Gini.score(&[0.0, 0.0]), 0.0);
        let (l, r, t) = ([1.0, 3.0], [4.0, 0.5], [5.0, 3.5]);
        let fused = Gini.split(&l, &t);
        assert!((fused.2 - Gini.score(&l) - Gini.score(&r)).abs() < 1e-12);
        assert_eq!((fused.0, fused.1), (4.0, 4.5));
        let fused = SquaredError.split(&l, &t);
        let sum = SquaredError.score(&l) + SquaredError.score(&r);
        assert!((fused.2 - sum).abs() < 1e-12);
        let fused = Entropy.split(&l, &t);
        assert!((fused.2 - Entropy.score(&l) - Entropy.score(&r)).abs() < 1e-12);
        let g = GradientGain { lambda: 1.0 };
        let fused = g.split(&l, &t);
        assert!((fused.2 - g.score(&l) - g.score(&r)).abs() < 1e-12);
        assert_eq!((fused.0, fused.1), (3.0, 0.5));
        assert!((Entropy.score(&[1.0, 1.0]) + 2.0 * 2f64.ln()).abs() < 1e-12);
    }
}
