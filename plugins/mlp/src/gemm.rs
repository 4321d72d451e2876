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

/// What a product does with `C`.
#[derive(Clone, Copy, Debug)]
pub enum Out<'a> {
    /// `C = A·B`.
    Set,
    /// `C += A·B`.
    Add,
    /// `C = A·B + bias` (one bias per column), then `max(0, ·)` when
    /// `relu`: a dense layer's affine part and ReLU, fused into the
    /// product's last step.
    Bias {
        /// One value per column of `C`.
        bias: &'a [f32],
        /// Clamp at zero afterwards.
        relu: bool,
    },
}

/// `C = A·B` (or as `out` says), `b` row-major `a.cols x n`, `c` row-major
/// `a.rows x n`.
///
/// # Panics
/// Sizes that do not match.
pub fn matmul(a: Lhs<'_>, b: &[f32], n: usize, c: &mut [f32], out: Out<'_>) {
    let (m, k) = (a.rows, a.cols);
    assert!(
        b.len() >= k * n,
        "right operand has {} values for {k} x {n}",
        b.len()
    );
    assert_eq!(c.len(), m * n, "output size");
    if let Out::Bias { bias, .. } = out {
        assert_eq!(bias.len(), n, "one bias per column");
    }
    if m == 0 || n == 0 {
        return;
    }
    #[cfg(target_arch = "x86_64")]
    if k > 0 && avx2::available() {
        // SAFETY: the checks above and in `Lhs::strided` bound every index
        // the kernel forms: `a` up to `(m-1)*rs + (k-1)*cs`, `b` below
        // `k*n`, `c` below `m*n`, the bias below `n`; the CPU has AVX2 and
        // FMA.
        unsafe {
            avx2::matmul(
                avx2::Args {
                    a: a.data.as_ptr(),
                    rs: a.rs,
                    cs: a.cs,
                    k,
                    b: b.as_ptr(),
                    n,
                },
                m,
                c.as_mut_ptr(),
                out,
            )
        };
        return;
    }
    plain(a, b, n, c, out);
}

/// The portable product.
fn plain(a: Lhs<'_>, b: &[f32], n: usize, c: &mut [f32], out: Out<'_>) {
    for (i, ci) in c.chunks_exact_mut(n).enumerate() {
        match out {
            Out::Set => ci.fill(0.0),
            Out::Add => {}
            Out::Bias { bias, .. } => ci.copy_from_slice(bias),
        }
        for (p, bp) in b.chunks_exact(n).take(a.cols).enumerate() {
            let x = a.data[i * a.rs + p * a.cs];
            for (cv, bv) in ci.iter_mut().zip(bp) {
                *cv += x * bv;
            }
        }
        if let Out::Bias { relu: true, .. } = out {
            ci.iter_mut().for_each(|v| *v = v.max(0.0));
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    use std::arch::x86_64::*;

    use super::Out;

    /// Rows of a tile.
    const MR: usize = 6;
    /// Columns of a tile (two vectors).
    const NR: usize = 16;

    pub fn available() -> bool {
        is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma")
    }

    /// The operands: `A` through its strides, `B` row-major `k x n`.
    #[derive(Clone, Copy)]
    pub struct Args {
        pub a: *const f32,
        pub rs: usize,
        pub cs: usize,
        pub k: usize,
        pub b: *const f32,
        pub n: usize,
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
    /// reads, `b` for `k*n`, `c` for `m*n` reads and writes, a bias for
    /// `n` reads.
    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn matmul(g: Args, m: usize, c: *mut f32, out: Out<'_>) {
        unsafe {
            let mut j = 0;
            while j < g.n {
                let w = (g.n - j).min(NR);
                let (m0, m1) = (mask(w.min(8)), mask(w.saturating_sub(8)));
                let mut i = 0;
                while i < m {
                    let r = (m - i).min(MR);
                    let t = Tile {
                        a: g.a.add(i * g.rs),
                        rs: g.rs,
                        cs: g.cs,
                        k: g.k,
                        b: g.b.add(j),
                        n: g.n,
                        c: c.add(i * g.n + j),
                        out,
                        j,
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
    /// `m0`, `m1` when not `FULL`) from `b` and `c`, starting at column
    /// `j`.
    struct Tile<'o> {
        a: *const f32,
        rs: usize,
        cs: usize,
        k: usize,
        b: *const f32,
        n: usize,
        c: *mut f32,
        out: Out<'o>,
        j: usize,
        m0: __m256i,
        m1: __m256i,
    }

    impl Tile<'_> {
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
                // The bias, when there is one, is where every sum starts.
                let (z0, z1) = match self.out {
                    Out::Bias { bias, .. } => self.load::<FULL>(bias.as_ptr().add(self.j)),
                    _ => (_mm256_setzero_ps(), _mm256_setzero_ps()),
                };
                let mut s0 = [z0; R];
                let mut s1 = [z1; R];
                for p in 0..self.k {
                    let (b0, b1) = self.load::<FULL>(self.b.add(p * self.n));
                    let ap = self.a.add(p * self.cs);
                    for r in 0..R {
                        let x = _mm256_broadcast_ss(&*ap.add(r * self.rs));
                        s0[r] = _mm256_fmadd_ps(x, b0, s0[r]);
                        s1[r] = _mm256_fmadd_ps(x, b1, s1[r]);
                    }
                }
                let zero = _mm256_setzero_ps();
                for r in 0..R {
                    let cp = self.c.add(r * self.n);
                    let (mut v0, mut v1) = (s0[r], s1[r]);
                    match self.out {
                        Out::Add => {
                            let (c0, c1) = self.load::<FULL>(cp);
                            v0 = _mm256_add_ps(c0, v0);
                            v1 = _mm256_add_ps(c1, v1);
                        }
                        Out::Bias { relu: true, .. } => {
                            v0 = _mm256_max_ps(v0, zero);
                            v1 = _mm256_max_ps(v1, zero);
                        }
                        _ => {}
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
                        let out = if acc { Out::Add } else { Out::Set };
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
                        matmul(a, &b, n, &mut c, out);
                        let mut p = c0.clone();
                        plain(a, &b, n, &mut p, out);
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
        matmul(Lhs::new(&x, m, k), &b, n, &mut all, Out::Set);
        for i in 0..m {
            let mut one = vec![0.0; n];
            matmul(
                Lhs::new(&x[i * k..(i + 1) * k], 1, k),
                &b,
                n,
                &mut one,
                Out::Set,
            );
            assert_eq!(one, all[i * n..(i + 1) * n], "row {i}");
        }
    }

    #[test]
    fn empty_inner_dimension_clears_keeps_or_sets_the_bias() {
        let mut c = vec![1.0; 6];
        matmul(Lhs::new(&[], 2, 0), &[], 3, &mut c, Out::Add);
        assert_eq!(c, vec![1.0; 6]);
        matmul(Lhs::new(&[], 2, 0), &[], 3, &mut c, Out::Set);
        assert_eq!(c, vec![0.0; 6]);
        let bias = [1.0, -2.0, 3.0];
        matmul(
            Lhs::new(&[], 2, 0),
            &[],
            3,
            &mut c,
            Out::Bias {
                bias: &bias,
                relu: true,
            },
        );
        assert_eq!(c, vec![1.0, 0.0, 3.0, 1.0, 0.0, 3.0]);
    }

    #[test]
    fn bias_and_relu_fuse_into_the_product() {
        let mut rng = SplitMix::new(11);
        for (m, k, n) in [(7, 5, 3), (13, 33, 20), (6, 16, 16), (1, 9, 40)] {
            let x = random(m * k, &mut rng);
            let b = random(k * n, &mut rng);
            let bias = random(n, &mut rng);
            for relu in [false, true] {
                let mut got = vec![f32::NAN; m * n];
                matmul(
                    Lhs::new(&x, m, k),
                    &b,
                    n,
                    &mut got,
                    Out::Bias { bias: &bias, relu },
                );
                let mut want = vec![0.0; m * n];
                matmul(Lhs::new(&x, m, k), &b, n, &mut want, Out::Set);
                for (i, w) in want.iter_mut().enumerate() {
                    *w += bias[i % n];
                    if relu {
                        *w = w.max(0.0);
                    }
                }
                for (g, w) in got.iter().zip(&want) {
                    assert!((g - w).abs() < 1e-4, "{m}x{k}x{n} relu {relu}: {g} vs {w}");
                }
            }
        }
    }
}
