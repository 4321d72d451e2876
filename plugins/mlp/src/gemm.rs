//! The matrix product every layer runs on: `C = A·B` or `C += A·B` with
//! `B` and `C` row-major and `A` read through strides (so `Xᵀ·D`, the
//! weight gradient, needs no transposed copy).
//!
//! The shapes here are small in two dimensions (a layer's widths, tens to
//! a few hundred) and long in one (rows), so there is no packing: a tile
//! of 6 rows × 16 columns of `C` lives in twelve AVX2 registers while the
//! inner loop streams one row of `B` (two vector loads) and broadcasts six
//! values of `A` per step, 12 fused multiply-adds per step. Partial tiles
//! use masked loads and stores. Every element of `C` adds its `k`
//! products in the order `p = 0, 1, …`, whatever the tiling, so a row's
//! result does not depend on how rows are split between calls or threads.
//! Nothing is allocated.
//!
//! Machines without AVX2 and FMA take a plain loop (`C[i,:] += a·B[p,:]`)
//! with the same order of additions per element, though without fused
//! rounding, so its results may differ from the AVX2 path's in the last
//! bits.
#![allow(unsafe_code)]

/// The left operand: `rows x cols`, element `(i, p)` at
/// `data[i * rs + p * cs]`.
#[derive(Clone, Copy, Debug)]
pub struct Lhs<'a> {
    data: &'a [f32],
    rows: usize,
    cols: usize,
    rs: usize,
    cs: usize,
}

impl<'a> Lhs<'a> {
    /// A row-major `rows x cols` matrix.
    ///
    /// # Panics
    /// `data` shorter than `rows * cols`.
    pub fn new(data: &'a [f32], rows: usize, cols: usize) -> Self {
        Self::strided(data, rows, cols, cols, 1)
    }

    /// The transpose of a row-major `rows x cols` matrix (so a
    /// `cols x rows` operand).
    ///
    /// # Panics
    /// `data` shorter than `rows * cols`.
    pub fn transposed(data: &'a [f32], rows: usize, cols: usize) -> Self {
        Self::strided(data, cols, rows, 1, cols)
    }

    fn strided(data: &'a [f32], rows: usize, cols: usize, rs: usize, cs: usize) -> Self {
        if rows > 0 && cols > 0 {
            let last = (rows - 1) * rs + (cols - 1) * cs;
            assert!(last < data.len(), "matrix operand out of bounds");
        }
        Self {
            data,
            rows,
            cols,
            rs,
            cs,
        }
    }

    /// Rows.
    pub fn rows(&self) -> usize {
        self.rows
    }
}

/// `c = a·b` (or `c += a·b` with `accumulate`), `b` row-major
/// `a.cols x n`, `c` row-major `a.rows x n`.
///
/// # Panics
/// Sizes that do not match.
pub fn matmul(a: Lhs<'_>, b: &[f32], n: usize, c: &mut [f32], accumulate: bool) {
    let (m, k) = (a.rows, a.cols);
    assert!(
        b.len() >= k * n,
        "right operand has {} values for {k} x {n}",
        b.len()
    );
    assert_eq!(c.len(), m * n, "output size");
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        if !accumulate {
            c.fill(0.0);
        }
        return;
    }
    #[cfg(target_arch = "x86_64")]
    if avx2::available() {
        // SAFETY: the checks above and in `Lhs::strided` bound every index
        // the kernel forms: `a` up to `(m-1)*rs + (k-1)*cs`, `b` below
        // `k*n`, `c` below `m*n`; the CPU has AVX2 and FMA.
        unsafe {
            avx2::matmul(
                a.data.as_ptr(),
                a.rs,
                a.cs,
                m,
                k,
                b.as_ptr(),
                n,
                c.as_mut_ptr(),
                accumulate,
            )
        };
        return;
    }
    plain(a, b, n, c, accumulate);
}

/// The portable product.
fn plain(a: Lhs<'_>, b: &[f32], n: usize, c: &mut [f32], accumulate: bool) {
    for (i, ci) in c.chunks_exact_mut(n).enumerate() {
        if !accumulate {
            ci.fill(0.0);
        }
        for (p, bp) in b.chunks_exact(n).take(a.cols).enumerate() {
            let x = a.data[i * a.rs + p * a.cs];
            for (cv, bv) in ci.iter_mut().zip(bp) {
                *cv += x * bv;
            }
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    use std::arch::x86_64::*;

    /// Rows of a tile.
    const MR: usize = 6;
    /// Columns of a tile (two vectors).
    const NR: usize = 16;

    pub fn available() -> bool {
        is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma")
    }

    /// Lanes `0..w` (of 8) set.
    #[inline(always)]
    unsafe fn mask(w: usize) -> __m256i {
        unsafe {
            let lanes = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
            _mm256_cmpgt_epi32(_mm256_set1_epi32(w as i32), lanes)
        }
    }

    /// # Safety
    /// AVX2 and FMA present; `a` valid for `(m-1)*rs + (k-1)*cs + 1`
    /// reads, `b` for `k*n`, `c` for `m*n` reads and writes.
    #[target_feature(enable = "avx2,fma")]
    #[allow(clippy::too_many_arguments)]
    pub unsafe fn matmul(
        a: *const f32,
        rs: usize,
        cs: usize,
        m: usize,
        k: usize,
        b: *const f32,
        n: usize,
        c: *mut f32,
        acc: bool,
    ) {
        unsafe {
            let mut j = 0;
            while j < n {
                let w = (n - j).min(NR);
                let (m0, m1) = (mask(w.min(8)), mask(w.saturating_sub(8)));
                let mut i = 0;
                while i < m {
                    let r = (m - i).min(MR);
                    let t = Tile {
                        a: a.add(i * rs),
                        rs,
                        cs,
                        k,
                        b: b.add(j),
                        n,
                        c: c.add(i * n + j),
                        acc,
                        m0,
                        m1,
                    };
                    match (r, w == NR) {
                        (6, true) => t.run::<6, true>(),
                        (6, false) => t.run::<6, false>(),
                        (5, true) => t.run::<5, true>(),
                        (5, false) => t.run::<5, false>(),
                        (4, true) => t.run::<4, true>(),
                        (4, false) => t.run::<4, false>(),
                        (3, true) => t.run::<3, true>(),
                        (3, false) => t.run::<3, false>(),
                        (2, true) => t.run::<2, true>(),
                        (2, false) => t.run::<2, false>(),
                        (_, true) => t.run::<1, true>(),
                        (_, false) => t.run::<1, false>(),
                    }
                    i += r;
                }
                j += NR;
            }
        }
    }

    /// One tile of `C`: `R` rows from `a`, 16 columns (the first lanes of
    /// `m0`, `m1` when not `FULL`) from `b` and `c`.
    struct Tile {
        a: *const f32,
        rs: usize,
        cs: usize,
        k: usize,
        b: *const f32,
        n: usize,
        c: *mut f32,
        acc: bool,
        m0: __m256i,
        m1: __m256i,
    }

    impl Tile {
        #[inline(always)]
        unsafe fn load<const FULL: bool>(&self, p: *const f32) -> (__m256, __m256) {
            unsafe {
                if FULL {
                    (_mm256_loadu_ps(p), _mm256_loadu_ps(p.add(8)))
                } else {
                    // Lanes outside the masks are not read; `wrapping_add`
                    // keeps the address arithmetic defined when the second
                    // vector lies wholly past the row.
                    (
                        _mm256_maskload_ps(p, self.m0),
                        _mm256_maskload_ps(p.wrapping_add(8), self.m1),
                    )
                }
            }
        }

        #[inline(always)]
        unsafe fn store<const FULL: bool>(&self, p: *mut f32, v0: __m256, v1: __m256) {
            unsafe {
                if FULL {
                    _mm256_storeu_ps(p, v0);
                    _mm256_storeu_ps(p.add(8), v1);
                } else {
                    _mm256_maskstore_ps(p, self.m0, v0);
                    _mm256_maskstore_ps(p.wrapping_add(8), self.m1, v1);
                }
            }
        }

        #[inline(always)]
        unsafe fn run<const R: usize, const FULL: bool>(&self) {
            unsafe {
                let mut s0 = [_mm256_setzero_ps(); R];
                let mut s1 = [_mm256_setzero_ps(); R];
                for p in 0..self.k {
                    let (b0, b1) = self.load::<FULL>(self.b.add(p * self.n));
                    let ap = self.a.add(p * self.cs);
                    for r in 0..R {
                        let x = _mm256_broadcast_ss(&*ap.add(r * self.rs));
                        s0[r] = _mm256_fmadd_ps(x, b0, s0[r]);
                        s1[r] = _mm256_fmadd_ps(x, b1, s1[r]);
                    }
                }
                for r in 0..R {
                    let cp = self.c.add(r * self.n);
                    let (mut v0, mut v1) = (s0[r], s1[r]);
                    if self.acc {
                        let (c0, c1) = self.load::<FULL>(cp);
                        v0 = _mm256_add_ps(c0, v0);
                        v1 = _mm256_add_ps(c1, v1);
                    }
                    self.store::<FULL>(cp, v0, v1);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tessera_core::plugin::seeds::SplitMix;

    fn reference(a: Lhs<'_>, b: &[f32], n: usize, c: &[f32], acc: bool) -> Vec<f64> {
        let mut out = vec![0.0; a.rows * n];
        for i in 0..a.rows {
            for j in 0..n {
                let mut s = if acc { f64::from(c[i * n + j]) } else { 0.0 };
                for p in 0..a.cols {
                    s += f64::from(a.data[i * a.rs + p * a.cs]) * f64::from(b[p * n + j]);
                }
                out[i * n + j] = s;
            }
        }
        out
    }

    fn random(len: usize, rng: &mut SplitMix) -> Vec<f32> {
        (0..len).map(|_| (rng.unit() * 2.0 - 1.0) as f32).collect()
    }

    #[test]
    fn products_match_a_reference_for_every_tile_edge() {
        let mut rng = SplitMix::new(7);
        for m in [1, 2, 5, 6, 7, 13, 40] {
            for n in [1, 3, 8, 9, 16, 17, 31, 40] {
                for k in [1, 2, 9, 33] {
                    for (transposed, acc) in [(false, false), (true, false), (false, true)] {
                        let data = random(m * k, &mut rng);
                        let a = if transposed {
                            Lhs::transposed(&data, k, m)
                        } else {
                            Lhs::new(&data, m, k)
                        };
                        let b = random(k * n, &mut rng);
                        let c0 = random(m * n, &mut rng);
                        let want = reference(a, &b, n, &c0, acc);
                        let mut c = c0.clone();
                        matmul(a, &b, n, &mut c, acc);
                        let mut p = c0.clone();
                        plain(a, &b, n, &mut p, acc);
                        for ((got, plain), want) in c.iter().zip(&p).zip(&want) {
                            let tol = 1e-5 * (k as f64 + 1.0);
                            assert!((f64::from(*got) - want).abs() < tol, "{m}x{k}x{n}");
                            assert!((f64::from(*plain) - want).abs() < tol, "{m}x{k}x{n}");
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn a_row_does_not_depend_on_its_neighbours() {
        let mut rng = SplitMix::new(3);
        let (m, k, n) = (23, 37, 45);
        let x = random(m * k, &mut rng);
        let b = random(k * n, &mut rng);
        let mut all = vec![0.0; m * n];
        matmul(Lhs::new(&x, m, k), &b, n, &mut all, false);
        for i in 0..m {
            let mut one = vec![0.0; n];
            matmul(
                Lhs::new(&x[i * k..(i + 1) * k], 1, k),
                &b,
                n,
                &mut one,
                false,
            );
            assert_eq!(one, all[i * n..(i + 1) * n], "row {i}");
        }
    }

    #[test]
    fn empty_inner_dimension_clears_or_keeps() {
        let mut c = vec![1.0; 6];
        matmul(Lhs::new(&[], 2, 0), &[], 3, &mut c, true);
        assert_eq!(c, vec![1.0; 6]);
        matmul(Lhs::new(&[], 2, 0), &[], 3, &mut c, false);
        assert_eq!(c, vec![0.0; 6]);
    }
}
