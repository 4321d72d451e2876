//! The arithmetic of one boosting round, apart from any learner: the row
//! weights, a member's error and weight, the reweighting (SAMME for
//! classification, AdaBoost.R2 for regression) and R2's weighted bootstrap.
//!
//! It follows scikit-learn's `BaseWeightBoosting.fit` and the `_boost`
//! methods of `AdaBoostClassifier` and `AdaBoostRegressor` step by step,
//! in `f64`: weights start as the sample weights scaled to sum to 1, are
//! clipped below at machine epsilon each round (rows whose weight was zero
//! at the start stay zero), updated after each member but the last, and
//! scaled back to sum 1 after each round but the last.

use tessera_core::{PluginError, plugin::seeds::SplitMix};

use super::params::{LEARNER, Loss};

/// Weights are clipped below at this (scikit-learn's issue #20320: it
/// keeps them from vanishing).
const EPSILON: f64 = f64::EPSILON;

/// The row weights of a fit.
#[derive(Clone, Debug, PartialEq)]
pub struct RowWeights {
    /// Current weights.
    pub w: Vec<f64>,
    /// Rows whose sample weight was zero: they stay zero.
    zero: Vec<bool>,
}

impl RowWeights {
    /// `n` rows with the given sample weights (1 each without), scaled to
    /// sum to 1.
    ///
    /// # Errors
    /// Weights that sum to zero.
    pub fn new(n: usize, sample_weight: Option<&[f32]>) -> Result<Self, PluginError> {
        let mut w: Vec<f64> = match sample_weight {
            Some(s) => s.iter().map(|&v| f64::from(v)).collect(),
            None => vec![1.0; n],
        };
        let total: f64 = w.iter().sum();
        if !(total > 0.0 && total.is_finite()) {
            return Err(PluginError::input(format!(
                "{LEARNER}: the sample weights sum to {total}; at least one row needs a positive \
                 weight"
            )));
        }
        w.iter_mut().for_each(|v| *v /= total);
        let zero = w.iter().map(|&v| v == 0.0).collect();
        Ok(Self { w, zero })
    }

    /// Raises weights below machine epsilon to it, except the rows that
    /// started at zero.
    pub fn clip(&mut self) {
        for (v, &z) in self.w.iter_mut().zip(&self.zero) {
            *v = if z { 0.0 } else { v.max(EPSILON) };
        }
    }

    /// The sum of the weights.
    pub fn sum(&self) -> f64 {
        self.w.iter().sum()
    }

    /// Scales the weights by `1 / sum`.
    pub fn normalise(&mut self, sum: f64) {
        self.w.iter_mut().for_each(|v| *v /= sum);
    }

    /// The weights as a member trains on them: `f32`, scaled to sum to the
    /// row count. Trees are indifferent to the scale (scikit-learn hands
    /// them weights summing to 1); learners with absolute thresholds on
    /// weight (a minimum hessian or child weight) then see weights of the
    /// size they see without any.
    pub fn for_member(&self, out: &mut Vec<f32>) {
        let scale = self.w.len() as f64 / self.sum();
        out.clear();
        out.extend(self.w.iter().map(|&v| (v * scale) as f32));
    }
}

/// What a round decided.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Round {
    /// The member made no error: it is kept with weight 1 and boosting
    /// stops.
    Perfect,
    /// The member was no better than chance (`error`): boosting stops.
    Useless {
        /// Its error.
        error: f64,
    },
    /// The member is kept with `weight`; the row weights were updated.
    Boost {
        /// The member's weight.
        weight: f64,
        /// Its error.
        error: f64,
    },
}

/// A SAMME round over `n_classes` classes: the weighted error of a member
/// that got `incorrect` rows wrong, its weight
/// `learning_rate * (ln((1 - err) / err) + ln(K - 1))`, and (unless `last`)
/// the weights of the rows it got wrong multiplied by `exp(weight)`.
/// No better than chance means an error of at least `1 - 1/K`.
pub fn samme(
    rw: &mut RowWeights,
    incorrect: &[bool],
    n_classes: u32,
    learning_rate: f64,
    last: bool,
) -> Round {
    let total: f64 = rw.w.iter().sum();
    let wrong: f64 =
        rw.w.iter()
            .zip(incorrect)
            .filter(|(_, i)| **i)
            .map(|(w, _)| w)
            .sum();
    let error = wrong / total;
    if error <= 0.0 {
        return Round::Perfect;
    }
    let k = f64::from(n_classes);
    if error >= 1.0 - 1.0 / k {
        return Round::Useless { error };
    }
    let weight = learning_rate * (((1.0 - error) / error).ln() + (k - 1.0).ln());
    if !last {
        let factor = weight.exp();
        for (w, &i) in rw.w.iter_mut().zip(incorrect) {
            if i && *w > 0.0 {
                *w *= factor;
            }
        }
    }
    Round::Boost { weight, error }
}

/// An AdaBoost.R2 round: each row's absolute error `abs_error` scaled by
/// the largest among rows of positive weight and passed through `loss`;
/// the member's error is their weighted sum; no better than chance means
/// at least 0.5. With `beta = err / (1 - err)` the member's weight is
/// `learning_rate * ln(1 / beta)`, and (unless `last`) each row of positive
/// weight is multiplied by `beta ^ ((1 - loss) * learning_rate)`.
pub fn r2(
    rw: &mut RowWeights,
    abs_error: &[f64],
    loss: Loss,
    learning_rate: f64,
    last: bool,
) -> Round {
    let max =
        rw.w.iter()
            .zip(abs_error)
            .filter(|(w, _)| **w > 0.0)
            .map(|(_, e)| *e)
            .fold(0.0f64, f64::max);
    let scaled = |e: f64| loss.apply(if max != 0.0 { e / max } else { e });
    let error: f64 =
        rw.w.iter()
            .zip(abs_error)
            .filter(|(w, _)| **w > 0.0)
            .map(|(w, &e)| w * scaled(e))
            .sum();
    if error <= 0.0 {
        return Round::Perfect;
    }
    if error >= 0.5 {
        return Round::Useless { error };
    }
    let beta = error / (1.0 - error);
    let weight = learning_rate * (1.0 / beta).ln();
    if !last {
        for (w, &e) in rw.w.iter_mut().zip(abs_error) {
            if *w > 0.0 {
                *w *= beta.powf((1.0 - scaled(e)) * learning_rate);
            }
        }
    }
    Round::Boost { weight, error }
}

/// `n` rows drawn with replacement, each with probability proportional to
/// its weight (scikit-learn's `random_state.choice(n, n, p=w)`: a uniform
/// draw located in the cumulative weights), sorted. Rows of zero weight
/// are never drawn.
pub fn weighted_bootstrap(w: &[f64], rng: &mut SplitMix) -> Vec<usize> {
    let mut cdf = Vec::with_capacity(w.len());
    let mut acc = 0.0f64;
    for &v in w {
        acc += v;
        cdf.push(acc);
    }
    let last = w.len().saturating_sub(1);
    let mut rows: Vec<usize> = (0..w.len())
        .map(|_| {
            let u = rng.unit() * acc;
            // The first row whose cumulative weight exceeds `u`.
            cdf.partition_point(|&c| c <= u).min(last)
        })
        .collect();
    rows.sort_unstable();
    rows
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() <= 1e-12 * b.abs().max(1.0)
    }

    #[test]
    fn weights_start_normalised_and_keep_zeros() {
        let rw = RowWeights::new(4, Some(&[1.0, 0.0, 2.0, 1.0])).unwrap();
        assert_eq!(rw.w, vec![0.25, 0.0, 0.5, 0.25]);
        let mut rw2 = rw.clone();
        rw2.w[0] = 1e-300;
        rw2.clip();
        assert_eq!(rw2.w, vec![f64::EPSILON, 0.0, 0.5, 0.25]);
        let e = RowWeights::new(2, Some(&[0.0, 0.0])).unwrap_err();
        assert!(e.message.contains("sample weights sum to 0"), "{e}");
        let uniform = RowWeights::new(3, None).unwrap();
        assert!(uniform.w.iter().all(|&v| close(v, 1.0 / 3.0)));
        let mut out = Vec::new();
        rw.for_member(&mut out);
        assert_eq!(out, vec![1.0, 0.0, 2.0, 1.0]);
    }

    #[test]
    fn samme_weights_and_updates() {
        // Five rows, one wrong, three classes: err = 0.2, weight =
        // ln(0.8 / 0.2) + ln(2) = ln 8; the wrong row's weight is
        // multiplied by 8.
        let mut rw = RowWeights::new(5, None).unwrap();
        let wrong = [false, true, false, false, false];
        let r = samme(&mut rw, &wrong, 3, 1.0, false);
        let Round::Boost { weight, error } = r else {
            panic!("{r:?}")
        };
        assert!(close(error, 0.2));
        assert!(close(weight, 8f64.ln()), "{weight}");
        assert!(close(rw.w[1], 1.6) && close(rw.w[0], 0.2), "{:?}", rw.w);
        // After normalising, the wrong row holds 1.6 / 2.4 of the weight.
        let s = rw.sum();
        rw.normalise(s);
        assert!(close(rw.w[1], 2.0 / 3.0));

        // A learning rate scales the weight; the last round leaves the
        // weights alone.
        let mut rw = RowWeights::new(5, None).unwrap();
        let r = samme(&mut rw, &wrong, 2, 0.5, true);
        assert_eq!(
            r,
            Round::Boost {
                weight: 0.5 * 4f64.ln(),
                error: 0.2
            }
        );
        assert!(rw.w.iter().all(|&v| close(v, 0.2)));
    }

    #[test]
    fn samme_stops_on_perfect_and_on_chance() {
        let mut rw = RowWeights::new(4, None).unwrap();
        assert_eq!(samme(&mut rw, &[false; 4], 2, 1.0, false), Round::Perfect);
        // Binary: chance is an error of 1/2; three classes: 2/3.
        let half = [true, true, false, false];
        assert_eq!(
            samme(&mut rw, &half, 2, 1.0, false),
            Round::Useless { error: 0.5 }
        );
        assert!(matches!(
            samme(&mut rw, &half, 3, 1.0, false),
            Round::Boost { .. }
        ));
        let mut rw = RowWeights::new(4, None).unwrap();
        assert_eq!(
            samme(&mut rw, &[true, true, false, true], 3, 1.0, false),
            Round::Useless { error: 0.75 }
        );
        // Zero-weight rows count for nothing and stay at zero.
        let mut rw = RowWeights::new(3, Some(&[1.0, 0.0, 1.0])).unwrap();
        rw.clip();
        assert_eq!(
            samme(&mut rw, &[false, true, false], 2, 1.0, false),
            Round::Perfect
        );
        let r = samme(&mut rw, &[true, true, false], 3, 1.0, false);
        assert!(matches!(r, Round::Boost { error, .. } if close(error, 0.5)));
        assert_eq!(rw.w[1], 0.0);
    }

    #[test]
    fn r2_weights_and_updates() {
        // Errors 0, 1, 2, 4 scaled by 4: 0, .25, .5, 1 (linear); uniform
        // weights: err = 1.75 / 4 = 0.4375; beta = 0.4375 / 0.5625.
        let abs = [0.0, 1.0, 2.0, 4.0];
        let mut rw = RowWeights::new(4, None).unwrap();
        let r = r2(&mut rw, &abs, Loss::Linear, 1.0, false);
        let beta = 0.4375f64 / 0.5625;
        let Round::Boost { weight, error } = r else {
            panic!("{r:?}")
        };
        assert!(close(error, 0.4375));
        assert!(close(weight, (1.0 / beta).ln()));
        for (i, e) in [0.0, 0.25, 0.5, 1.0].into_iter().enumerate() {
            assert!(close(rw.w[i], 0.25 * beta.powf(1.0 - e)), "{i}");
        }
        // Square loss: (0 + 1/16 + 1/4 + 1) / 4.
        let mut rw = RowWeights::new(4, None).unwrap();
        let r = r2(&mut rw, &abs, Loss::Square, 0.5, true);
        let err = (1.0 / 16.0 + 0.25 + 1.0) / 4.0;
        let Round::Boost { weight, error } = r else {
            panic!("{r:?}")
        };
        assert!(close(error, err));
        assert!(close(weight, 0.5 * ((1.0 - err) / err).ln()));
        assert!(rw.w.iter().all(|&v| v == 0.25), "last round: no update");
        // Exponential loss.
        let mut rw = RowWeights::new(4, None).unwrap();
        let r = r2(&mut rw, &abs, Loss::Exponential, 1.0, false);
        let err: f64 = [0.0f64, 0.25, 0.5, 1.0]
            .iter()
            .map(|e| 0.25 * (1.0 - (-e).exp()))
            .sum();
        assert!(matches!(r, Round::Boost { error, .. } if close(error, err)));
    }

    #[test]
    fn r2_stops_on_perfect_and_on_chance() {
        let mut rw = RowWeights::new(3, None).unwrap();
        assert_eq!(
            r2(&mut rw, &[0.0; 3], Loss::Linear, 1.0, false),
            Round::Perfect
        );
        let r = r2(&mut rw, &[1.0, 1.0, 0.0], Loss::Linear, 1.0, false);
        assert!(matches!(r, Round::Useless { error } if close(error, 2.0 / 3.0)));
        // The largest error is taken over rows of positive weight only.
        let mut rw = RowWeights::new(3, Some(&[1.0, 1.0, 0.0])).unwrap();
        let r = r2(&mut rw, &[0.0, 1.0, 100.0], Loss::Linear, 1.0, false);
        assert!(matches!(r, Round::Useless { error } if close(error, 0.5)));
    }

    #[test]
    fn bootstrap_follows_the_weights() {
        let w = [0.0, 0.1, 0.0, 0.6, 0.3, 0.0];
        let mut rng = SplitMix::new(1);
        let mut counts = [0usize; 6];
        for _ in 0..20_000 {
            let rows = weighted_bootstrap(&w, &mut rng);
            assert_eq!(rows.len(), 6);
            assert!(rows.windows(2).all(|p| p[0] <= p[1]));
            for r in rows {
                counts[r] += 1;
            }
        }
        assert_eq!((counts[0], counts[2], counts[5]), (0, 0, 0), "{counts:?}");
        // Within five standard deviations of the expected shares.
        for (i, p) in [(1, 0.1), (3, 0.6), (4, 0.3)] {
            let share = counts[i] as f64 / 120_000.0;
            let sd = (p * (1.0 - p) / 120_000.0f64).sqrt();
            assert!((share - p).abs() < 5.0 * sd, "{counts:?}");
        }
        assert_eq!(
            weighted_bootstrap(&w, &mut SplitMix::new(4)),
            weighted_bootstrap(&w, &mut SplitMix::new(4))
        );
    }
}
