//! The float activations that stay outside the integer kernel: the last
//! layer's (softmax, logistic, identity) and hidden `tanh` / `logistic`
//! layers, whose outputs are computed in `f32` before they are quantized
//! again.
//!
//! `exp` is written out so that loops over a block of values vectorize
//! (a library call per value does not, and softmax over a block of rows
//! would cost as much as a layer).

use tessera_core::ir::Activation;

/// Applies `act` in place to rows of `width` values (softmax works row by
/// row).
#[inline(always)]
pub fn activate(act: Activation, z: &mut [f32], width: usize) {
    match act {
        Activation::Identity => {}
        Activation::Relu => z.iter_mut().for_each(|v| *v = v.max(0.0)),
        Activation::Tanh => z.iter_mut().for_each(|v| *v = tanh(*v)),
        Activation::Logistic => z.iter_mut().for_each(|v| *v = logistic(*v)),
        Activation::Softmax => softmax_rows(z, width),
    }
}

/// Softmax of each row of `width` values: shifted by the row's largest
/// value (no overflow), exponentiated over the whole block in one loop,
/// then normalised. Rows go eight at a time through the row maxima and
/// sums, so that eight running maxima (sums) advance together instead of
/// one waiting on the last; each row's sum still adds its values in
/// order, so a row gives the same probabilities in a group as alone.
#[inline(always)]
pub fn softmax_rows(z: &mut [f32], width: usize) {
    const G: usize = 8;
    if width == 0 {
        return;
    }
    let mut groups = z.chunks_exact_mut(width * G);
    for g in &mut groups {
        let mut top = [f32::NEG_INFINITY; G];
        for j in 0..width {
            for (r, t) in top.iter_mut().enumerate() {
                *t = t.max(g[r * width + j]);
            }
        }
        for (row, t) in g.chunks_exact_mut(width).zip(top) {
            row.iter_mut().for_each(|v| *v -= t);
        }
        g.iter_mut().for_each(|v| *v = exp(*v));
        let mut sum = [0.0f32; G];
        for j in 0..width {
            for (r, s) in sum.iter_mut().enumerate() {
                *s += g[r * width + j];
            }
        }
        for (row, s) in g.chunks_exact_mut(width).zip(sum) {
            let k = 1.0 / s;
            row.iter_mut().for_each(|v| *v *= k);
        }
    }
    for row in groups.into_remainder().chunks_exact_mut(width) {
        let top = row.iter().fold(f32::NEG_INFINITY, |m, &v| m.max(v));
        row.iter_mut().for_each(|v| *v -= top);
        row.iter_mut().for_each(|v| *v = exp(*v));
        let k = 1.0 / row.iter().sum::<f32>();
        row.iter_mut().for_each(|v| *v *= k);
    }
}

/// `1 / (1 + e^-x)`.
#[inline]
pub fn logistic(x: f32) -> f32 {
    1.0 / (1.0 + exp(-x))
}

/// `tanh(x) = sign(x) (1 - 2 / (e^{2|x|} + 1))`, which never divides
/// infinity by infinity.
#[inline]
pub fn tanh(x: f32) -> f32 {
    (1.0 - 2.0 / (exp(2.0 * x.abs()) + 1.0)).copysign(x)
}

/// `e^x` for `f32`, branch-free: `x = k ln 2 + r` with `k` whole and
/// `|r| <= ln 2 / 2` (ln 2 in two parts, so `k ln 2` loses nothing for
/// the `k` that occur), `e^r` by its Taylor series to `r^7 / 7!`
/// (truncation under 2e-8), and `2^k` written into the exponent bits.
/// Inputs are clamped to `[-87, 88]`, where both `2^k` and the result
/// are normal floats.
#[inline]
pub fn exp(x: f32) -> f32 {
    const LN2_HI: f32 = 0.693_359_4; // 355 / 512, exact in few bits
    const LN2_LO: f32 = -2.121_944_4e-4; // ln 2 - LN2_HI
    // Adding and taking away 1.5 * 2^23 rounds to a whole number.
    const SHIFT: f32 = 12_582_912.0;
    let x = x.clamp(-87.0, 88.0);
    let shifted = x * std::f32::consts::LOG2_E + SHIFT;
    let k = shifted - SHIFT;
    // `k` as an integer, read off the shifted sum's low mantissa bits (a
    // saturating float-to-integer conversion would not vectorize).
    let ki = shifted.to_bits() as i32 - SHIFT.to_bits() as i32;
    let r = x - k * LN2_HI - k * LN2_LO;
    // Horner from 1/7! down to 1.
    let mut p = 1.0 / 5040.0;
    p = p * r + 1.0 / 720.0;
    p = p * r + 1.0 / 120.0;
    p = p * r + 1.0 / 24.0;
    p = p * r + 1.0 / 6.0;
    p = p * r + 0.5;
    p = p * r + 1.0;
    p = p * r + 1.0;
    let two_k = f32::from_bits(((ki + 127) as u32) << 23);
    p * two_k
}

/// Index of the largest value (the first of equals); 0 when empty or
/// all NaN. The largest value first, then where it is: no branch on the
/// data but the loop's exit (a comparison per value mispredicts often
/// enough to cost as much as a small layer).
#[inline]
pub fn argmax(v: &[f32]) -> usize {
    let top = v.iter().fold(f32::NEG_INFINITY, |m, &x| m.max(x));
    v.iter().position(|&x| x == top).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exp_tanh_and_logistic_match_the_library() {
        let (mut e, mut t, mut l) = (0.0f64, 0.0f64, 0.0f64);
        for i in -100_000..=100_000 {
            let x = i as f32 * 8.6e-4;
            let want = f64::from(x).exp();
            e = e.max((f64::from(exp(x)) - want).abs() / want);
            t = t.max((f64::from(tanh(x)) - f64::from(x).tanh()).abs());
            let lw = 1.0 / (1.0 + (-f64::from(x)).exp());
            l = l.max((f64::from(logistic(x)) - lw).abs());
        }
        assert!(e < 5e-7, "exp relative error {e}");
        assert!(t < 5e-7, "tanh error {t}");
        assert!(l < 5e-7, "logistic error {l}");
        assert!(exp(-1000.0) >= 0.0 && exp(1000.0).is_finite());
        assert_eq!(tanh(-0.0), 0.0);
    }

    #[test]
    fn a_row_gives_the_same_softmax_in_a_group_as_alone() {
        let z: Vec<f32> = (0..10 * 13)
            .map(|i| ((i * 37) % 23) as f32 * 0.7 - 5.0)
            .collect();
        let mut all = z.clone();
        softmax_rows(&mut all, 13);
        for (r, want) in all.chunks_exact(13).enumerate() {
            let mut one = z[r * 13..(r + 1) * 13].to_vec();
            softmax_rows(&mut one, 13);
            assert_eq!(one, want, "row {r}");
            let raw = &z[r * 13..(r + 1) * 13];
            let s: f64 = raw.iter().map(|&v| f64::from(v).exp()).sum();
            for (p, &v) in want.iter().zip(raw) {
                assert!((f64::from(*p) - f64::from(v).exp() / s).abs() < 1e-6);
            }
        }
    }

    #[test]
    fn softmax_rows_sum_to_one_and_keep_the_order() {
        let mut z = vec![1.0, 2.0, 3.0, -50.0, 100.0, 0.0];
        softmax_rows(&mut z, 3);
        for row in z.chunks_exact(3) {
            assert!((row.iter().sum::<f32>() - 1.0).abs() < 1e-6);
        }
        assert_eq!(argmax(&z[..3]), 2);
        assert_eq!(argmax(&z[3..]), 1);
        assert_eq!(argmax(&[]), 0);
    }
}
