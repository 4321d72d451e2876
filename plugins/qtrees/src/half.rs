//! IEEE 754 half precision (binary16), converted in software: `f32` to
//! half rounds to nearest, ties to even; half to `f32` is exact.

/// Largest finite half value.
pub const F16_MAX: f32 = 65504.0;

/// The half nearest `x` (ties to even), as its bits. Values past the half
/// range become infinite, values below half the smallest subnormal zero;
/// NaN stays NaN (quiet), infinities stay infinite.
pub fn f32_to_f16(x: f32) -> u16 {
    let b = x.to_bits();
    let sign = ((b >> 16) & 0x8000) as u16;
    let exp = ((b >> 23) & 0xff) as i32;
    let man = b & 0x7f_ffff;
    if exp == 0xff {
        let nan = if man != 0 {
            0x200 | (man >> 13) as u16
        } else {
            0
        };
        return sign | 0x7c00 | nan;
    }
    // The half's biased exponent.
    let e = exp - 127 + 15;
    if e >= 0x1f {
        return sign | 0x7c00;
    }
    if e <= 0 {
        // Subnormal (or zero): the half's mantissa counts 2^-24s. The f32
        // with its implicit bit is `m * 2^(exp - 150)`, so the mantissa is
        // `m` shifted right by `14 - e` bits; a shift past 24 leaves less
        // than half of 2^-24, which rounds to zero.
        if e < -10 {
            return sign;
        }
        let m = man | 0x80_0000;
        let shift = (14 - e) as u32;
        return sign | round_shift(m, shift) as u16;
    }
    // A carry out of the mantissa moves into the exponent, which is the
    // right answer (up to infinity).
    sign | round_shift(((e as u32) << 23) | man, 13) as u16
}

/// `v >> shift`, rounded to nearest, ties to even (`1 <= shift < 32`).
fn round_shift(v: u32, shift: u32) -> u32 {
    let q = v >> shift;
    let rem = v & ((1 << shift) - 1);
    let half = 1 << (shift - 1);
    if rem > half || (rem == half && q & 1 == 1) {
        q + 1
    } else {
        q
    }
}

/// The value of the half with bits `h` (exact).
pub fn f16_to_f32(h: u16) -> f32 {
    let sign = u32::from(h & 0x8000) << 16;
    let exp = u32::from((h >> 10) & 0x1f);
    let man = u32::from(h & 0x3ff);
    match exp {
        0 => {
            // Zero or subnormal: man * 2^-24, exact in f32.
            let v = man as f32 * (1.0 / 16_777_216.0);
            if sign != 0 { -v } else { v }
        }
        0x1f => f32::from_bits(sign | 0x7f80_0000 | (man << 13)),
        _ => f32::from_bits(sign | ((exp + 112) << 23) | (man << 13)),
    }
}

/// A half's value, as [`f16_to_f32`] but with no branch for
/// finite halves: the bits shifted into an `f32`'s place carry the
/// exponent biased by 15 instead of 127, which a product by 2^112 mends,
/// subnormal halves included (the product is exact).
#[inline(always)]
pub fn f16_to_f32_fast(h: u16) -> f32 {
    let sign = u32::from(h & 0x8000) << 16;
    let magnitude = u32::from(h & 0x7fff);
    let v = if magnitude >= 0x7c00 {
        f32::from_bits(0x7f80_0000 | (magnitude & 0x3ff) << 13)
    } else {
        f32::from_bits(magnitude << 13) * f32::from_bits(0x7780_0000)
    };
    f32::from_bits(v.to_bits() | sign)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_half_round_trips() {
        for h in 0..=u16::MAX {
            let x = f16_to_f32(h);
            if x.is_nan() {
                assert!(f16_to_f32(f32_to_f16(x)).is_nan(), "{h:#06x}");
            } else {
                assert_eq!(f32_to_f16(x), h, "{h:#06x} = {x}");
            }
        }
    }

    #[test]
    fn the_fast_decoding_is_the_exact_one() {
        for h in 0..=u16::MAX {
            let (a, b) = (f16_to_f32_fast(h), f16_to_f32(h));
            assert!(
                a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan()),
                "{h:#06x}"
            );
        }
    }

    #[test]
    fn known_values() {
        assert_eq!(f32_to_f16(1.0), 0x3c00);
        assert_eq!(f32_to_f16(-2.0), 0xc000);
        assert_eq!(f32_to_f16(F16_MAX), 0x7bff);
        assert_eq!(
            f32_to_f16(65520.0),
            0x7c00,
            "the tie past the largest rounds up"
        );
        assert_eq!(f32_to_f16(65519.0), 0x7bff);
        assert_eq!(f32_to_f16(1e-8), 0, "below half the smallest subnormal");
        assert_eq!(f32_to_f16(-0.0), 0x8000);
        assert_eq!(f16_to_f32(0x0001), 2f32.powi(-24));
        assert_eq!(f16_to_f32(0x0400), 2f32.powi(-14));
        assert_eq!(f32_to_f16(f32::INFINITY), 0x7c00);
        assert_eq!(f32_to_f16(f32::NEG_INFINITY), 0xfc00);
        assert!(f16_to_f32(f32_to_f16(f32::NAN)).is_nan());
        // 1/3 is 0x3555 (0.33325195) in half precision.
        assert_eq!(f32_to_f16(1.0 / 3.0), 0x3555);
    }

    /// Between two adjacent halves, the midpoint goes to the even one and
    /// anything off it to the nearer one.
    #[test]
    fn rounds_to_nearest_ties_to_even() {
        for h in 0..0x7bffu16 {
            let (a, b) = (f16_to_f32(h), f16_to_f32(h + 1));
            let mid = (f64::from(a) + f64::from(b)) / 2.0;
            let mid32 = mid as f32;
            assert_eq!(f64::from(mid32), mid, "midpoints are exact in f32");
            let even = if h & 1 == 0 { h } else { h + 1 };
            assert_eq!(f32_to_f16(mid32), even, "tie above {h:#06x}");
            assert_eq!(
                f32_to_f16(mid32.next_down()),
                h,
                "below the tie at {h:#06x}"
            );
            assert_eq!(
                f32_to_f16(mid32.next_up()),
                h + 1,
                "above the tie at {h:#06x}"
            );
            assert_eq!(f32_to_f16(-mid32.next_up()), 0x8000 | (h + 1));
        }
    }
}
