//! The quantization scheme: how a real value becomes an integer and back.
//! Post-training quantization ([`QuantizedNetwork::quantize`]) and the mlp
//! learner's quantization-aware training both use these functions, so the
//! noise a network trains with is the noise it is later quantized with.
//!
//! The scheme is symmetric, with no zero point: a value `v` with scale `s`
//! becomes `q = clamp(round(v / s), lo, hi)` (rounding half to even, as
//! the vector instructions do) and reads back as `s * q`.
//!
//! * Weights: one scale per output channel (a row of `W` in the exchange
//!   form, a column of the mlp's `inputs x outputs` matrix), `s = max|w| /
//!   qmax`, so every weight is within `s / 2` of its value.
//! * Activations: one scale per layer input. Values known to be
//!   non-negative (after `relu` or `logistic`) use the unsigned range
//!   `0..=255` at 8 bits, one bit more than the signed `-127..=127`. The
//!   scale comes from sample values ([`activation_scale`]): the clipping
//!   threshold with the least squared error, so a few outliers do not
//!   coarsen the grid for every other value.
//!
//! [`QuantizedNetwork::quantize`]: crate::QuantizedNetwork::quantize

use tessera_core::PluginError;

/// Checks a `bits` setting: 8 or 16.
///
/// # Errors
/// Any other value, as an input error naming `bits`.
pub fn check_bits(bits: u32) -> Result<(), PluginError> {
    match bits {
        8 | 16 => Ok(()),
        _ => Err(PluginError::input(format!(
            "`bits` must be 8 or 16, got {bits}"
        ))),
    }
}

/// The largest magnitude of a signed value: 127 at 8 bits, 32767 at 16.
/// The range is symmetric (`-128` and `-32768` are never used), which
/// keeps the kernels' sums inside their accumulators.
///
/// # Panics
/// `bits` other than 8 or 16 (see [`check_bits`]).
pub fn qmax(bits: u32) -> i32 {
    match bits {
        8 => 127,
        16 => 32767,
        _ => panic!("bits must be 8 or 16, got {bits}"),
    }
}

/// The largest sum of products an 8-bit layer may form before its bias
/// is added: the kernels accumulate in `i32`, and the bias takes at most
/// [`BIAS_LIMIT_8`] more.
pub const SUM_LIMIT_8: i64 = (1 << 30) + (1 << 29);
/// The largest magnitude of an 8-bit layer's bias in accumulator units.
pub const BIAS_LIMIT_8: i64 = 1 << 29;
/// The largest magnitude of a 16-bit layer's bias in accumulator units
/// (its accumulators are `i64`).
pub const BIAS_LIMIT_16: i64 = 1 << 60;
/// The widest input an 8-bit layer takes: wider, its sums could pass
/// [`SUM_LIMIT_8`] even with signed 8-bit inputs.
pub const MAX_INPUTS_8: usize = (SUM_LIMIT_8 / (127 * 127)) as usize;

/// The integer range of a layer input holding `bits`-bit values, for a
/// layer of `inputs` inputs: `-qmax..=qmax`, or from 0 when the values
/// are known to be non-negative (after `relu` or `logistic`): up to 255 at
/// 8 bits where `inputs * 255 * 127` stays within [`SUM_LIMIT_8`] (else
/// 127), up to 32767 at 16 bits.
///
/// # Panics
/// `bits` other than 8 or 16.
pub fn activation_range(bits: u32, nonnegative: bool, inputs: usize) -> (i32, i32) {
    let q = qmax(bits);
    if !nonnegative {
        return (-q, q);
    }
    if bits == 8 && (inputs as i64).saturating_mul(255 * 127) <= SUM_LIMIT_8 {
        (0, 255)
    } else {
        (0, q)
    }
}

/// `v / scale`, rounded half to even and clamped to `lo..=hi`.
#[inline]
pub fn quantize(v: f32, scale: f32, lo: i32, hi: i32) -> i32 {
    // Clamping before rounding equals clamping after (the bounds are
    // whole), and keeps the rounding in its range.
    round_to_int((v / scale).clamp(lo as f32, hi as f32))
}

/// `1.5 * 2^23`: added to an `f32` of magnitude up to `2^22`, it leaves
/// no fraction bits, so the default rounding mode rounds the sum half to
/// even, as the vector conversions do.
const SHIFT: f32 = 12_582_912.0;

/// `x` rounded to the nearest whole number, half to even, for `|x| <=
/// 2^22` (every clamped value here). Unlike `f32::round_ties_even`,
/// which is a library call on baseline x86-64, it vectorizes.
#[inline(always)]
pub fn round_half_even(x: f32) -> f32 {
    (x + SHIFT) - SHIFT
}

/// [`round_half_even`] as an integer, for `|x| <= 2^22`: the rounded sum
/// `x + 1.5 * 2^23` has the whole number in its low mantissa bits, read
/// off without a float-to-integer conversion (whose saturating form
/// does not vectorize).
#[inline(always)]
pub fn round_to_int(x: f32) -> i32 {
    (x + SHIFT).to_bits() as i32 - SHIFT.to_bits() as i32
}

/// `v` through a signed `bits`-bit grid of step `scale` and back: what a
/// weight becomes in a quantized network.
///
/// # Panics
/// `bits` other than 8 or 16.
#[inline]
pub fn fake_quant(v: f32, scale: f32, bits: u32) -> f32 {
    let q = qmax(bits);
    fake_quant_range(v, scale, -q, q)
}

/// `v` through the grid `lo..=hi` of step `scale` and back: what an
/// activation becomes (see [`activation_range`]).
#[inline]
pub fn fake_quant_range(v: f32, scale: f32, lo: i32, hi: i32) -> f32 {
    scale * quantize(v, scale, lo, hi) as f32
}

/// The scale that maps `max_abs` onto `hi`, or 1 when `max_abs` is zero
/// (a channel of zeros quantizes to zeros with any scale) or not finite.
pub fn scale_for(max_abs: f32, hi: i32) -> f32 {
    if max_abs > 0.0 && max_abs.is_finite() {
        let s = max_abs / hi as f32;
        if s > 0.0 && s.is_finite() {
            return s;
        }
    }
    1.0
}

/// One scale per row of the row-major `rows x cols` matrix `w` (a row is
/// an output channel in the exchange form's `outputs x inputs` layout).
///
/// # Panics
/// `w` shorter than `rows * cols`, or bad `bits`.
pub fn weight_scales(w: &[f32], rows: usize, cols: usize, bits: u32) -> Vec<f32> {
    let q = qmax(bits);
    (0..rows)
        .map(|r| scale_for(max_abs(&w[r * cols..(r + 1) * cols]), q))
        .collect()
}

/// One scale per column of the row-major `rows x cols` matrix `w` (the
/// mlp's `inputs x outputs` layout, where a column is an output channel).
///
/// # Panics
/// `w` shorter than `rows * cols`, or bad `bits`.
pub fn weight_scales_by_column(w: &[f32], rows: usize, cols: usize, bits: u32) -> Vec<f32> {
    let mut m = vec![0.0f32; cols];
    for r in w[..rows * cols].chunks_exact(cols.max(1)) {
        m.iter_mut().zip(r).for_each(|(m, v)| *m = m.max(v.abs()));
    }
    let q = qmax(bits);
    m.into_iter().map(|m| scale_for(m, q)).collect()
}

/// The largest magnitude in `v` (0 when empty; non-finite values are
/// skipped).
pub fn max_abs(v: &[f32]) -> f32 {
    v.iter()
        .filter(|x| x.is_finite())
        .fold(0.0f32, |m, x| m.max(x.abs()))
}

/// Clipping thresholds tried by [`activation_scale`], as fractions of the
/// largest magnitude: 1 down to about 1 %, each 3 % below the last.
const CLIP_STEPS: i32 = 150;
/// Most values [`activation_scale`] looks at; more are sampled evenly.
const SCALE_SAMPLE: usize = 1 << 18;
/// How much wider than the chosen threshold a 16-bit grid reaches: its
/// steps are fine enough to leave room for values past those seen in
/// calibration, which an 8-bit grid cannot afford.
pub const HEADROOM_16: f32 = 4.0;

/// The scale for activations like `values` on the integer range
/// `lo..=hi`: of clipping thresholds from the largest magnitude down to
/// about 1 % of it, the one whose quantization has the least squared
/// error over `values` (outliers clipped where that pays, the rest on a
/// finer grid), as TensorRT and others calibrate; at 16 bits, four times
/// that threshold ([`HEADROOM_16`]). At most 2^18 values are looked at,
/// sampled evenly. Zeros, which every scale keeps exactly, are skipped.
/// Returns 1 when every value is zero.
pub fn activation_scale(values: &[f32], lo: i32, hi: i32) -> f32 {
    let step = values.len().div_ceil(SCALE_SAMPLE).max(1);
    let sample: Vec<f32> = values
        .iter()
        .step_by(step)
        .copied()
        .filter(|v| v.is_finite() && *v != 0.0)
        .collect();
    let top = max_abs(&sample);
    if top == 0.0 {
        return 1.0;
    }
    let mut best = (f64::INFINITY, top);
    for i in 0..CLIP_STEPS {
        let t = top * 0.97f32.powi(i);
        let s = scale_for(t, hi);
        let err: f64 = sample
            .iter()
            .map(|&v| {
                let d = f64::from(v) - f64::from(fake_quant_range(v, s, lo, hi));
                d * d
            })
            .sum();
        if err < best.0 {
            best = (err, t);
        }
    }
    let t = if hi > 255 {
        best.1 * HEADROOM_16
    } else {
        best.1
    };
    scale_for(t, hi)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bits_other_than_8_or_16_are_refused_by_name() {
        check_bits(8).unwrap();
        check_bits(16).unwrap();
        let e = check_bits(3).unwrap_err();
        assert_eq!(e.message, "`bits` must be 8 or 16, got 3");
        assert_eq!(e.kind, tessera_core::ErrorKind::INVALID_INPUT);
    }

    #[test]
    fn weights_come_back_within_half_a_step() {
        let mut rng = tessera_core::plugin::seeds::SplitMix::new(4);
        let (rows, cols) = (7, 13);
        let w: Vec<f32> = (0..rows * cols)
            .map(|i| (rng.unit() as f32 * 2.0 - 1.0) * (1 + i % 5) as f32)
            .collect();
        for bits in [8, 16] {
            let s = weight_scales(&w, rows, cols, bits);
            assert_eq!(s.len(), rows);
            for (r, row) in w.chunks_exact(cols).enumerate() {
                for &v in row {
                    let back = fake_quant(v, s[r], bits);
                    assert!((back - v).abs() <= s[r] / 2.0 * 1.0001, "{v} {back}");
                }
                // The largest weight of a row lands on the end of the grid.
                let m = max_abs(row);
                let q = quantize(m, s[r], -qmax(bits), qmax(bits));
                assert_eq!(q, qmax(bits));
            }
            // The same scales, read by column of the transpose.
            let mut t = vec![0.0; w.len()];
            for r in 0..rows {
                for c in 0..cols {
                    t[c * rows + r] = w[r * cols + c];
                }
            }
            assert_eq!(weight_scales_by_column(&t, cols, rows, bits), s);
        }
    }

    #[test]
    fn rounding_is_half_to_even_and_clamped() {
        assert_eq!(quantize(2.5, 1.0, -127, 127), 2);
        assert_eq!(quantize(3.5, 1.0, -127, 127), 4);
        assert_eq!(quantize(-2.5, 1.0, -127, 127), -2);
        assert_eq!(quantize(1e30, 1.0, -127, 127), 127);
        assert_eq!(quantize(-1.0, 0.5, 0, 255), 0);
        assert_eq!(fake_quant(0.26, 0.1, 8), 0.3);
        for i in -70_000..70_000 {
            let x = i as f32 * 0.25 + 0.125 * (i % 3) as f32;
            assert_eq!(round_half_even(x), x.round_ties_even(), "{x}");
            assert_eq!(round_to_int(x), x.round_ties_even() as i32, "{x}");
        }
    }

    #[test]
    fn ranges_use_the_unsigned_bit_where_the_sums_allow() {
        assert_eq!(activation_range(8, false, 10), (-127, 127));
        assert_eq!(activation_range(8, true, 10), (0, 255));
        assert_eq!(activation_range(8, true, 60_000), (0, 127));
        assert_eq!(activation_range(16, true, 10), (0, 32767));
        assert_eq!(activation_range(16, false, 10), (-32767, 32767));
    }

    #[test]
    fn zero_channels_get_a_usable_scale() {
        assert_eq!(weight_scales(&[0.0; 6], 2, 3, 8), vec![1.0, 1.0]);
        assert_eq!(activation_scale(&[0.0; 6], 0, 255), 1.0);
    }

    #[test]
    fn calibration_clips_long_tails() {
        // Laplace-distributed values: max-abs would spend most of the grid
        // on a handful of them.
        let mut rng = tessera_core::plugin::seeds::SplitMix::new(9);
        let v: Vec<f32> = (0..50_000)
            .map(|_| {
                let u = rng.unit().max(1e-12);
                let x = -(u.ln()) as f32;
                if rng.unit() < 0.5 { x } else { -x }
            })
            .collect();
        let mse = |s: f32| -> f64 {
            v.iter()
                .map(|&x| (f64::from(x) - f64::from(fake_quant_range(x, s, -127, 127))).powi(2))
                .sum()
        };
        let top = max_abs(&v);
        let s = activation_scale(&v, -127, 127);
        assert!(s < 0.95 * top / 127.0, "{s} vs max-abs {}", top / 127.0);
        assert!(mse(s) < 0.95 * mse(top / 127.0));
        // Uniform values keep their full range.
        let u: Vec<f32> = (0..1000).map(|i| (i as f32 / 500.0) - 1.0).collect();
        let s = activation_scale(&u, -127, 127);
        assert!((s - 1.0 / 127.0).abs() < 0.05 / 127.0, "{s}");
        // A 16-bit grid leaves room past the values seen.
        let s = activation_scale(&u, -32767, 32767);
        assert!((s - 4.0 / 32767.0).abs() < 0.2 / 32767.0, "{s}");
    }
}
