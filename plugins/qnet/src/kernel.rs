//! The integer kernel every quantized layer runs on: for a block of rows,
//! `sums = bias + A · Wᵀ` with integer activations `A` and weights `W`,
//! then the layer's one requantization of each sum (to the next layer's
//! integers, or to `f32`).
//!
//! Values are 8-bit (activations `-127..=127` or `0..=255`, weights
//! `-127..=127`), summed in `i32`, or 16-bit (`-32767..=32767`), summed
//! in `i64`. In memory both are held in `i16` lanes, and the product is
//! AVX2's `vpmaddwd`: 16 products a step, added in pairs into 8 `i32`.
//! On AVX2 without VNNI that is as many multiplies per cycle as the
//! `u8 x i8` route (`vpmaddubsw` then `vpmaddwd` to widen, 32 products
//! for two multiplies), and it never saturates, so any signed input
//! works and the sums are exact.
//!
//! Weights are packed once ([`Packed`]): output columns in strips of
//! [`NR`] = 16, inputs in pairs, a strip's pair `p` as 32 `i16` (column
//! `c`'s weights for inputs `2p` and `2p + 1` side by side), so the
//! inner loop broadcasts one pair of a row's activations and multiplies
//! two vectors of weights. A tile of 4 rows x 16 columns keeps its sums
//! in eight registers. Inputs are padded to even and outputs to a whole
//! strip with zero weights, so there are no partial vectors: outputs are
//! written `padded_outputs` wide, and the padding columns come out 0.
//!
//! Machines without AVX2 take a portable loop over the same layout with
//! the same integer sums and the same float operations after them, so
//! both paths give identical results.
#![allow(unsafe_code)]

use crate::scheme::round_to_int;

/// Output columns per strip of packed weights.
pub const NR: usize = 16;

/// A layer's weights as the kernel reads them (see the module
/// documentation), with its biases in accumulator units.
#[derive(Clone, Debug, PartialEq)]
pub struct Packed {
    inputs: usize,
    pairs: usize,
    strips: usize,
    wide: bool,
    data: Vec<i16>,
    bias32: Vec<i32>,
    bias64: Vec<i64>,
}

impl Packed {
    /// Packs `w`, row-major `outputs x inputs`, and one bias per output.
    /// `wide`: 16-bit values with `i64` sums; otherwise 8-bit values
    /// with `i32` sums, whose biases must be within `i32` (the caller
    /// keeps them within [`BIAS_LIMIT_8`](crate::scheme::BIAS_LIMIT_8)).
    ///
    /// # Panics
    /// Sizes that do not match, or an 8-bit bias outside `i32`.
    pub fn new(w: &[i16], bias: &[i64], inputs: usize, outputs: usize, wide: bool) -> Self {
        assert_eq!(
            w.len(),
            inputs * outputs,
            "weights for {outputs} x {inputs}"
        );
        assert_eq!(bias.len(), outputs, "one bias per output");
        let pairs = inputs.div_ceil(2);
        let strips = outputs.div_ceil(NR);
        let mut data = vec![0i16; strips * pairs * 2 * NR];
        for o in 0..outputs {
            let (s, c) = (o / NR, o % NR);
            for (i, &v) in w[o * inputs..(o + 1) * inputs].iter().enumerate() {
                let (p, t) = (i / 2, i % 2);
                data[(s * pairs + p) * 2 * NR + 2 * c + t] = v;
            }
        }
        let mut bias64 = bias.to_vec();
        bias64.resize(strips * NR, 0);
        let bias32 = if wide {
            Vec::new()
        } else {
            bias64
                .iter()
                .map(|&b| i32::try_from(b).expect("8-bit bias within i32"))
                .collect()
        };
        Self {
            inputs,
            pairs,
            strips,
            wide,
            data,
            bias32,
            bias64,
        }
    }

    /// Input width, rounded up to even: the columns of a row of
    /// activations the kernel reads.
    pub fn padded_inputs(&self) -> usize {
        self.pairs * 2
    }

    /// Output width, rounded up to a whole strip: the width of the rows
    /// the kernel writes.
    pub fn padded_outputs(&self) -> usize {
        self.strips * NR
    }

    /// Input width.
    pub fn inputs(&self) -> usize {
        self.inputs
    }
}

/// What the kernel does with each row's sums. Every output is `rows x
/// padded_outputs`, and every `mult` one value per padded output.
#[derive(Debug)]
pub enum Epilogue<'a> {
    /// The sums as they are.
    // What the tests compare with a plain loop; prediction never asks.
    #[cfg_attr(not(test), allow(dead_code))]
    Raw(&'a mut [i64]),
    /// `clamp(round(sum * mult), lo, hi)`, rounding half to even: the
    /// next layer's integers (`lo = 0` is also the ReLU).
    Requant {
        /// One factor per column.
        mult: &'a [f32],
        /// Lowest value.
        lo: i32,
        /// Highest value.
        hi: i32,
        /// The integers.
        out: &'a mut [i16],
    },
    /// `sum * mult` (the layer's real outputs, before the activation).
    Dequant {
        /// One factor per column.
        mult: &'a [f32],
        /// The values.
        out: &'a mut [f32],
    },
}

/// Whether the vector path runs on this machine.
pub fn simd_available() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        avx2::available()
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// Work to run compiled for AVX2 where the machine has it (see
/// [`with_avx2`]). Its `run` must be `#[inline(always)]`, like every
/// function it calls whose loops should widen.
pub trait Wide {
    /// What the work gives.
    type Out;
    /// Does the work.
    fn run(self) -> Self::Out;
}

/// Runs `w` compiled for AVX2 where the machine has it: the loops its
/// `run` inlines (the input transformation, requantization in `f32`,
/// softmax) then vectorize eight lanes wide instead of baseline
/// x86-64's four. Their results do not change: the same IEEE
/// operations, and no fused multiply-add.
#[inline(always)]
pub fn with_avx2<W: Wide>(w: W) -> W::Out {
    #[cfg(target_arch = "x86_64")]
    if avx2::available() {
        // SAFETY: the CPU has AVX2.
        return unsafe { avx2::run(w) };
    }
    w.run()
}

/// Runs layer `w` on `rows` rows of `a` (row `i` at `a[i * stride..]`,
/// [`Packed::padded_inputs`] values read; a padding column may hold
/// anything, its weights are zero).
///
/// # Panics
/// Sizes that do not match.
pub fn layer(w: &Packed, a: &[i16], rows: usize, stride: usize, ep: Epilogue<'_>) {
    layer_on(simd_available(), w, a, rows, stride, ep);
}

/// [`layer`], on the vector path when `simd` (and the machine has it),
/// else on the portable one.
pub fn layer_on(simd: bool, w: &Packed, a: &[i16], rows: usize, stride: usize, ep: Epilogue<'_>) {
    let (kp, np) = (w.padded_inputs(), w.padded_outputs());
    assert!(stride >= kp, "row stride {stride} below {kp} inputs");
    let need = if rows == 0 {
        0
    } else {
        (rows - 1) * stride + kp
    };
    assert!(a.len() >= need, "{} activations for {rows} rows", a.len());
    let sink = match ep {
        Epilogue::Raw(out) => {
            assert_eq!(out.len(), rows * np, "output size");
            Sink::Raw(out.as_mut_ptr())
        }
        Epilogue::Requant { mult, lo, hi, out } => {
            assert_eq!(out.len(), rows * np, "output size");
            assert_eq!(mult.len(), np, "one factor per column");
            assert!(
                i32::from(i16::MIN) <= lo && lo <= hi && hi <= i32::from(i16::MAX),
                "requantization range {lo}..={hi}"
            );
            Sink::Requant {
                mult: mult.as_ptr(),
                lo: lo as f32,
                hi: hi as f32,
                out: out.as_mut_ptr(),
            }
        }
        Epilogue::Dequant { mult, out } => {
            assert_eq!(out.len(), rows * np, "output size");
            assert_eq!(mult.len(), np, "one factor per column");
            Sink::Dequant {
                mult: mult.as_ptr(),
                out: out.as_mut_ptr(),
            }
        }
    };
    if rows == 0 {
        return;
    }
    #[cfg(target_arch = "x86_64")]
    if simd && avx2::available() {
        // SAFETY: checked above: `a` holds `(rows-1)*stride + kp` values,
        // the sink `rows * np` and its factors `np`; `Packed::new` made
        // `data` `strips * pairs * 32` long and the biases `np`. The CPU
        // has AVX2.
        unsafe {
            if w.wide {
                avx2::wide(w, a.as_ptr(), rows, stride, sink);
            } else {
                avx2::narrow(w, a.as_ptr(), rows, stride, sink);
            }
        }
        return;
    }
    if w.wide {
        portable::<i64>(w, &w.bias64, a, rows, stride, sink);
    } else {
        portable::<i32>(w, &w.bias32, a, rows, stride, sink);
    }
}

/// Where the sums go, as pointers (checked by [`layer_on`]).
#[derive(Clone, Copy, Debug)]
enum Sink {
    Raw(*mut i64),
    Requant {
        mult: *const f32,
        lo: f32,
        hi: f32,
        out: *mut i16,
    },
    Dequant {
        mult: *const f32,
        out: *mut f32,
    },
}

impl Sink {
    /// Writes one strip of one row: 16 sums for output columns `col..`,
    /// at `at` in the output. The float steps are the vector path's, one
    /// by one, so both paths agree exactly.
    ///
    /// # Safety
    /// The sink's output holds `len` values and its factors `col + NR`
    /// at least, as [`layer_on`] checks for every strip of a row in
    /// range. (`at + NR <= len` is checked here, by the slices.)
    unsafe fn finish(self, sums: &[i64; NR], col: usize, at: usize, len: usize) {
        // SAFETY: as the caller promises.
        unsafe {
            match self {
                Sink::Raw(out) => {
                    std::slice::from_raw_parts_mut(out, len)[at..at + NR].copy_from_slice(sums);
                }
                Sink::Requant { mult, lo, hi, out } => {
                    let m = std::slice::from_raw_parts(mult.add(col), NR);
                    let o = &mut std::slice::from_raw_parts_mut(out, len)[at..at + NR];
                    for ((o, &s), &m) in o.iter_mut().zip(sums).zip(m) {
                        *o = round_to_int((s as f32 * m).max(lo).min(hi)) as i16;
                    }
                }
                Sink::Dequant { mult, out } => {
                    let m = std::slice::from_raw_parts(mult.add(col), NR);
                    let o = &mut std::slice::from_raw_parts_mut(out, len)[at..at + NR];
                    for ((o, &s), &m) in o.iter_mut().zip(sums).zip(m) {
                        *o = s as f32 * m;
                    }
                }
            }
        }
    }
}

/// An accumulator type of the portable path.
trait Acc: Copy + std::ops::AddAssign + std::ops::Mul<Output = Self> + From<i16> + Into<i64> {}
impl Acc for i32 {}
impl Acc for i64 {}

/// The portable path: row by row, strip by strip, the same sums.
fn portable<T: Acc>(w: &Packed, bias: &[T], a: &[i16], rows: usize, stride: usize, sink: Sink) {
    let np = w.padded_outputs();
    let kp = w.padded_inputs();
    for i in 0..rows {
        let row = &a[i * stride..i * stride + kp];
        for (s, strip) in w.data.chunks_exact(w.pairs * 2 * NR).enumerate() {
            let mut acc = [T::from(0i16); NR];
            acc.copy_from_slice(&bias[s * NR..(s + 1) * NR]);
            for (pair, b) in row.chunks_exact(2).zip(strip.chunks_exact(2 * NR)) {
                let (x0, x1) = (T::from(pair[0]), T::from(pair[1]));
                for (c, acc) in acc.iter_mut().enumerate() {
                    *acc += x0 * T::from(b[2 * c]);
                    *acc += x1 * T::from(b[2 * c + 1]);
                }
            }
            let sums: [i64; NR] = std::array::from_fn(|c| acc[c].into());
            // SAFETY: `layer_on` checked the sink for `rows * np` values
            // and `np` factors; strip `s` of row `i` lies within them.
            unsafe { sink.finish(&sums, s * NR, i * np + s * NR, rows * np) };
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    use std::arch::x86_64::*;

    use super::{NR, Packed, Sink};

    /// Rows of an 8-bit tile: eight vectors of sums. (Six rows, or two
    /// strips of three or two rows, measured slower end to end on Zen 3:
    /// with every product one `vpmaddwd`, the tile that keeps the most
    /// registers free does best.)
    const MR: usize = 4;
    /// Rows of a 16-bit tile (its sums take four registers a row).
    const MR_WIDE: usize = 2;

    pub fn available() -> bool {
        is_x86_feature_detected!("avx2")
    }

    /// `w.run()`, inlined into a function compiled for AVX2.
    ///
    /// # Safety
    /// AVX2 present.
    #[target_feature(enable = "avx2")]
    pub unsafe fn run<W: super::Wide>(w: W) -> W::Out {
        w.run()
    }

    /// One tile's operands: rows from `a`, one strip of weights.
    struct Tile {
        a: *const i16,
        stride: usize,
        b: *const i16,
        pairs: usize,
        col: usize,
        at: usize,
        np: usize,
        len: usize,
        sink: Sink,
    }

    /// # Safety
    /// AVX2 present; `a` valid for `(rows-1)*stride + 2*pairs` reads, the
    /// sink for `rows * np` writes and `np` factors, `w` as `Packed::new`
    /// built it (8-bit).
    #[target_feature(enable = "avx2")]
    pub unsafe fn narrow(w: &Packed, a: *const i16, rows: usize, stride: usize, sink: Sink) {
        unsafe { tiles(w, a, rows, stride, sink, MR, |t, r| t.narrow(r, &w.bias32)) }
    }

    /// # Safety
    /// As [`narrow`], for a 16-bit `w`.
    #[target_feature(enable = "avx2")]
    pub unsafe fn wide(w: &Packed, a: *const i16, rows: usize, stride: usize, sink: Sink) {
        unsafe {
            tiles(w, a, rows, stride, sink, MR_WIDE, |t, r| {
                t.wide(r, &w.bias64)
            })
        }
    }

    /// Walks the rows `mr` at a time, each tile of rows across every
    /// strip: the tile's activations stay in L1 while the weights stream
    /// past (slightly faster, measured, than strips outermost).
    #[inline(always)]
    unsafe fn tiles(
        w: &Packed,
        a: *const i16,
        rows: usize,
        stride: usize,
        sink: Sink,
        mr: usize,
        run: impl Fn(&Tile, usize),
    ) {
        let np = w.padded_outputs();
        let strip_len = w.pairs * 2 * NR;
        let mut i = 0;
        while i < rows {
            let r = (rows - i).min(mr);
            for s in 0..w.strips {
                // SAFETY: within the bounds the callers promise.
                let t = unsafe {
                    Tile {
                        a: a.add(i * stride),
                        stride,
                        b: w.data.as_ptr().add(s * strip_len),
                        pairs: w.pairs,
                        col: s * NR,
                        at: i * np + s * NR,
                        np,
                        len: rows * np,
                        sink,
                    }
                };
                run(&t, r);
            }
            i += r;
        }
    }

    impl Tile {
        #[inline(always)]
        fn narrow(&self, r: usize, bias: &[i32]) {
            // SAFETY: the tile lies within the operands (see `tiles`).
            unsafe {
                match r {
                    4 => self.narrow_rows::<4>(bias),
                    3 => self.narrow_rows::<3>(bias),
                    2 => self.narrow_rows::<2>(bias),
                    _ => self.narrow_rows::<1>(bias),
                }
            }
        }

        #[inline(always)]
        fn wide(&self, r: usize, bias: &[i64]) {
            // SAFETY: as `narrow`.
            unsafe {
                match r {
                    2 => self.wide_rows::<2>(bias),
                    _ => self.wide_rows::<1>(bias),
                }
            }
        }

        /// The pair `p` of row `r`'s activations in all 8 lanes.
        #[inline(always)]
        unsafe fn pair(&self, r: usize, p: usize) -> __m256i {
            unsafe {
                let at = self.a.add(r * self.stride + 2 * p).cast::<i32>();
                _mm256_set1_epi32(at.read_unaligned())
            }
        }

        /// The strip's weights for pair `p`: columns 0..8 and 8..16.
        #[inline(always)]
        unsafe fn weights(&self, p: usize) -> (__m256i, __m256i) {
            unsafe {
                let bp = self.b.add(p * 2 * NR);
                (
                    _mm256_loadu_si256(bp.cast()),
                    _mm256_loadu_si256(bp.add(NR).cast()),
                )
            }
        }

        /// `R` rows: two vectors of 8 sums a row.
        #[inline(always)]
        unsafe fn narrow_rows<const R: usize>(&self, bias: &[i32]) {
            unsafe {
                let bp = bias.as_ptr().add(self.col);
                let z0 = _mm256_loadu_si256(bp.cast());
                let z1 = _mm256_loadu_si256(bp.add(8).cast());
                let mut s0 = [z0; R];
                let mut s1 = [z1; R];
                for p in 0..self.pairs {
                    let (b0, b1) = self.weights(p);
                    for r in 0..R {
                        let x = self.pair(r, p);
                        s0[r] = _mm256_add_epi32(s0[r], _mm256_madd_epi16(x, b0));
                        s1[r] = _mm256_add_epi32(s1[r], _mm256_madd_epi16(x, b1));
                    }
                }
                for r in 0..R {
                    self.finish_narrow(r, s0[r], s1[r]);
                }
            }
        }

        /// Row `r`'s 16 sums, as the sink wants them. The float steps are
        /// those of `Sink::finish`: convert, multiply, clamp, round half
        /// to even (the default rounding mode).
        #[inline(always)]
        unsafe fn finish_narrow(&self, r: usize, v0: __m256i, v1: __m256i) {
            unsafe {
                let at = self.at + r * self.np;
                let col = self.col;
                match self.sink {
                    Sink::Requant { mult, lo, hi, out } => {
                        let m = mult.add(col);
                        let (lo, hi) = (_mm256_set1_ps(lo), _mm256_set1_ps(hi));
                        let f = |v: __m256i, m: *const f32| {
                            let x = _mm256_mul_ps(_mm256_cvtepi32_ps(v), _mm256_loadu_ps(m));
                            _mm256_cvtps_epi32(_mm256_min_ps(_mm256_max_ps(x, lo), hi))
                        };
                        let (q0, q1) = (f(v0, m), f(v1, m.add(8)));
                        // packs interleaves 128-bit halves: [q0 lo, q1 lo,
                        // q0 hi, q1 hi]; the permute puts them in order.
                        let q = _mm256_permute4x64_epi64(_mm256_packs_epi32(q0, q1), 0b11_01_10_00);
                        _mm256_storeu_si256(out.add(at).cast(), q);
                    }
                    Sink::Dequant { mult, out } => {
                        let m = mult.add(col);
                        let o = out.add(at);
                        _mm256_storeu_ps(
                            o,
                            _mm256_mul_ps(_mm256_cvtepi32_ps(v0), _mm256_loadu_ps(m)),
                        );
                        _mm256_storeu_ps(
                            o.add(8),
                            _mm256_mul_ps(_mm256_cvtepi32_ps(v1), _mm256_loadu_ps(m.add(8))),
                        );
                    }
                    Sink::Raw(_) => {
                        let mut s = [0i32; NR];
                        _mm256_storeu_si256(s.as_mut_ptr().cast(), v0);
                        _mm256_storeu_si256(s.as_mut_ptr().add(8).cast(), v1);
                        let sums = s.map(i64::from);
                        self.sink.finish(&sums, col, at, self.len);
                    }
                }
            }
        }

        /// 16-bit: each step's pair sums (exact in `i32`: at most
        /// `2 * 32767²`) widened and added into `i64`.
        #[inline(always)]
        unsafe fn wide_rows<const R: usize>(&self, bias: &[i64]) {
            unsafe {
                let bp = bias.as_ptr().add(self.col);
                let z: [__m256i; 4] =
                    std::array::from_fn(|q| _mm256_loadu_si256(bp.add(4 * q).cast()));
                let mut s = [z; R];
                for p in 0..self.pairs {
                    let (b0, b1) = self.weights(p);
                    for (r, s) in s.iter_mut().enumerate() {
                        let x = self.pair(r, p);
                        for (h, m) in [_mm256_madd_epi16(x, b0), _mm256_madd_epi16(x, b1)]
                            .into_iter()
                            .enumerate()
                        {
                            let lo = _mm256_cvtepi32_epi64(_mm256_castsi256_si128(m));
                            let hi = _mm256_cvtepi32_epi64(_mm256_extracti128_si256::<1>(m));
                            s[2 * h] = _mm256_add_epi64(s[2 * h], lo);
                            s[2 * h + 1] = _mm256_add_epi64(s[2 * h + 1], hi);
                        }
                    }
                }
                for (r, s) in s.iter().enumerate() {
                    let mut sums = [0i64; NR];
                    for (q, v) in s.iter().enumerate() {
                        _mm256_storeu_si256(sums.as_mut_ptr().add(4 * q).cast(), *v);
                    }
                    self.sink
                        .finish(&sums, self.col, self.at + r * self.np, self.len);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tessera_core::plugin::seeds::SplitMix;

    fn int(rng: &mut SplitMix, lo: i32, hi: i32) -> i16 {
        (lo + rng.below((hi - lo + 1) as usize) as i32) as i16
    }

    /// The plain loop: `bias + Σ a·w` in `i64`.
    fn reference(
        w: &[i16],
        bias: &[i64],
        a: &[i16],
        rows: usize,
        k: usize,
        stride: usize,
    ) -> Vec<i64> {
        let n = bias.len();
        let mut out = vec![0i64; rows * n];
        for i in 0..rows {
            for o in 0..n {
                out[i * n + o] = bias[o]
                    + (0..k)
                        .map(|p| i64::from(a[i * stride + p]) * i64::from(w[o * k + p]))
                        .sum::<i64>();
            }
        }
        out
    }

    struct Case {
        packed: Packed,
        w: Vec<i16>,
        bias: Vec<i64>,
        a: Vec<i16>,
        rows: usize,
        k: usize,
        n: usize,
        stride: usize,
    }

    fn case(rng: &mut SplitMix, rows: usize, k: usize, n: usize, wide: bool, signed: bool) -> Case {
        let wmax = if wide { 32767 } else { 127 };
        let (alo, ahi) = match (wide, signed) {
            (true, true) => (-32767, 32767),
            (true, false) => (0, 32767),
            (false, true) => (-127, 127),
            (false, false) => (0, 255),
        };
        let w: Vec<i16> = (0..n * k).map(|_| int(rng, -wmax, wmax)).collect();
        let bias: Vec<i64> = (0..n)
            .map(|_| i64::from(int(rng, -30000, 30000)) * if wide { 1 << 20 } else { 100 })
            .collect();
        // A stride past the padded width, its spare columns full of junk:
        // their weights are zero, so they must not matter.
        let stride = k.div_ceil(2) * 2 + 3;
        let a: Vec<i16> = (0..rows * stride).map(|_| int(rng, alo, ahi)).collect();
        Case {
            packed: Packed::new(&w, &bias, k, n, wide),
            w,
            bias,
            a,
            rows,
            k,
            n,
            stride,
        }
    }

    fn raw(c: &Case, simd: bool) -> Vec<i64> {
        let np = c.packed.padded_outputs();
        let mut out = vec![i64::MIN; c.rows * np];
        layer_on(
            simd,
            &c.packed,
            &c.a,
            c.rows,
            c.stride,
            Epilogue::Raw(&mut out),
        );
        // The padding columns come out 0 (zero weights, zero bias).
        for row in out.chunks_exact(np) {
            assert!(row[c.n..].iter().all(|&v| v == 0));
        }
        out.chunks_exact(np)
            .flat_map(|r| r[..c.n].to_vec())
            .collect()
    }

    #[test]
    fn integer_sums_equal_the_plain_loop_on_both_paths() {
        let mut rng = SplitMix::new(17);
        for wide in [false, true] {
            for signed in [false, true] {
                for rows in [1, 2, 3, 4, 5, 7, 13] {
                    for k in [1, 2, 3, 15, 16, 17, 33, 64] {
                        for n in [1, 3, 8, 15, 16, 17, 31, 40] {
                            let c = case(&mut rng, rows, k, n, wide, signed);
                            let want = reference(&c.w, &c.bias, &c.a, rows, c.k, c.stride);
                            assert_eq!(raw(&c, true), want, "simd {rows}x{k}x{n} wide {wide}");
                            assert_eq!(raw(&c, false), want, "plain {rows}x{k}x{n} wide {wide}");
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn the_largest_sums_fit_their_accumulators() {
        // 8-bit: 255 · 127 per product over the widest layer the scheme
        // allows with the unsigned range; 16-bit: 32767² per product,
        // far past `i32`.
        for (wide, k, a, wv) in [(false, 33_000, 255, 127), (true, 3000, 32767, 32767)] {
            for sign in [1i16, -1] {
                let w = vec![wv * sign; k];
                let limit = if wide { 1i64 << 60 } else { 1i64 << 29 };
                let bias = [limit * i64::from(sign)];
                let p = Packed::new(&w, &bias, k, 1, wide);
                let x = vec![a; k.div_ceil(2) * 2];
                let want = bias[0] + k as i64 * i64::from(a) * i64::from(wv) * i64::from(sign);
                for simd in [true, false] {
                    let mut out = vec![0; NR];
                    layer_on(simd, &p, &x, 1, x.len(), Epilogue::Raw(&mut out));
                    assert_eq!(out[0], want, "wide {wide} simd {simd}");
                }
            }
        }
    }

    #[test]
    fn requantized_and_dequantized_outputs_agree_between_paths() {
        let mut rng = SplitMix::new(5);
        for wide in [false, true] {
            for (rows, k, n) in [(7, 33, 40), (4, 64, 16), (13, 3, 10), (1, 128, 64)] {
                let c = case(&mut rng, rows, k, n, wide, true);
                let np = c.packed.padded_outputs();
                let sums = reference(&c.w, &c.bias, &c.a, rows, k, c.stride);
                let top = sums.iter().map(|v| v.abs()).max().unwrap_or(1).max(1) as f32;
                let mut mult: Vec<f32> = (0..np)
                    .map(|_| (0.5 + rng.unit() as f32) * 200.0 / top)
                    .collect();
                // A huge factor: the clamp must come before the conversion.
                mult[0] = 1e30;
                for (lo, hi) in [(0, 255), (-127, 127), (-32767, 32767)] {
                    let mut got = [vec![0i16; rows * np], vec![0i16; rows * np]];
                    for (simd, out) in [true, false].into_iter().zip(got.iter_mut()) {
                        let ep = Epilogue::Requant {
                            mult: &mult,
                            lo,
                            hi,
                            out,
                        };
                        layer_on(simd, &c.packed, &c.a, rows, c.stride, ep);
                    }
                    assert_eq!(got[0], got[1], "requant wide {wide} {rows}x{k}x{n}");
                    for i in 0..rows {
                        for o in 0..n {
                            let s = sums[i * n + o];
                            let want = (s as f32 * mult[o]).clamp(lo as f32, hi as f32);
                            assert_eq!(got[0][i * np + o], want.round_ties_even() as i16);
                        }
                    }
                }
                let mut got = [vec![0f32; rows * np], vec![0f32; rows * np]];
                for (simd, out) in [true, false].into_iter().zip(got.iter_mut()) {
                    layer_on(
                        simd,
                        &c.packed,
                        &c.a,
                        rows,
                        c.stride,
                        Epilogue::Dequant { mult: &mult, out },
                    );
                }
                assert_eq!(got[0], got[1], "dequant wide {wide}");
                for o in 0..n {
                    assert_eq!(got[0][o], sums[o] as f32 * mult[o]);
                }
            }
        }
    }

    #[test]
    fn no_rows_is_no_work() {
        let p = Packed::new(&[1, 2, 3], &[0], 3, 1, false);
        layer(&p, &[], 0, 4, Epilogue::Raw(&mut []));
    }
}
