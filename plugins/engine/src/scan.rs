//! The scan: batch prediction for ensembles of small trees (at most 64
//! leaves each, as boosted models mostly are), eight rows at a time, by
//! feature rather than by tree.
//!
//! Number each tree's leaves left to right. A row at a node whose test it
//! fails (`x > threshold`, it goes right) can reach none of the leaves of
//! the node's left subtree; clear their bits from a mask per tree (32 bits
//! when every tree has at most 32 leaves, else 64: [`Bits`]),
//! and after every failed test is applied, the row's leaf is the lowest bit
//! left (the leftmost leaf no failed test excluded is the one the walk ends
//! in). The failed tests are found per feature: its nodes, sorted by
//! threshold, fail for a row exactly up to the first threshold not below
//! the row's value, so the scan of a feature stops at the first threshold
//! none of the eight rows exceeds.
//!
//! Nothing here depends on a tree's depth, the steps have no chain of
//! dependent loads, and the eight rows of a step are one vector operation:
//! on the boosted models it is made for, the scan does several times less
//! work per row than the walk. It handles no missing value (a block with
//! one takes the walk).
//!
//! # Safety
//!
//! The scan's loop reads its tests and writes the per-tree masks without
//! bounds checks: every range `start[f]..start[f + 1]` lies within `tests`
//! and every test's tree is below the tree count, both by construction in
//! [`Scan::new`] (the fields are private and never written after it), and
//! [`Scan::group`] asserts that the mask buffer has one entry per tree. On
//! x86-64 the loop is compiled a second time for AVX2 and taken when the
//! processor has it ([`Scan::new`] checks).

#![allow(unsafe_code)]

use tessera_core::ir;

use crate::layout::{BLOCK, Layout};

/// Rows scanned together.
pub const ROWS: usize = 8;

/// A mask of a tree's leaves: `u32` or `u64`.
pub trait Bits:
    Copy
    + Eq
    + std::fmt::Debug
    + std::ops::BitAnd<Output = Self>
    + std::ops::BitOr<Output = Self>
    + std::ops::Not<Output = Self>
    + Send
    + Sync
    + 'static
{
    /// Leaves it can hold.
    const WIDTH: usize;
    /// Every bit set.
    const ALL: Self;
    /// No bit set.
    const NONE: Self;
    /// `n` bits from bit `lo` (`lo + n <= WIDTH`).
    fn span(lo: usize, n: usize) -> Self;
    /// The lowest set bit's index.
    fn lowest(self) -> usize;
    /// [`Scan::fail`] for AVX2.
    ///
    /// # Safety
    /// The processor must have AVX2; the caller checked the block's size
    /// and the masks' count.
    #[cfg(target_arch = "x86_64")]
    unsafe fn fail_avx2(scan: &Scan<Self>, xt: &[f32], r: usize, masks: &mut [[Self; ROWS]]);
}

/// `Bits` for an unsigned integer type of `$width` bits whose AVX2 loop
/// is `$avx2`.
macro_rules! bits {
    ($t:ty, $width:expr, $avx2:ident) => {
        impl Bits for $t {
            const WIDTH: usize = $width;
            const ALL: Self = <$t>::MAX;
            const NONE: Self = 0;
            fn span(lo: usize, n: usize) -> Self {
                if n == $width {
                    <$t>::MAX
                } else {
                    ((1 << n) - 1) << lo
                }
            }
            fn lowest(self) -> usize {
                self.trailing_zeros() as usize
            }
            #[cfg(target_arch = "x86_64")]
            unsafe fn fail_avx2(
                scan: &Scan<Self>,
                xt: &[f32],
                r: usize,
                masks: &mut [[Self; ROWS]],
            ) {
                // SAFETY: as the caller promised.
                unsafe { scan.$avx2(xt, r, masks) }
            }
        }
    };
}

bits!(u32, 32, fail_avx2_32);
bits!(u64, 64, fail_avx2_64);

/// One node's test.
#[derive(Clone, Copy, Debug, PartialEq)]
#[repr(C)]
struct Test<B> {
    threshold: f32,
    /// The test's tree, as its position in [`Layout::by_depth`].
    tree: u32,
    /// The leaves still possible after failing the test.
    mask: B,
}

/// A scan with the narrowest masks its trees allow.
#[derive(Clone, Debug, PartialEq)]
pub enum AnyScan {
    /// Every tree has at most 32 leaves.
    Narrow(Scan<u32>),
    /// Some tree has 33 to 64.
    Wide(Scan<u64>),
}

impl AnyScan {
    /// The scan of the trees `trees` of `layout.by_depth`, or `None` when
    /// a tree has more than 64 leaves.
    pub fn new(layout: &Layout, trees: std::ops::Range<usize>) -> Option<Self> {
        match Scan::<u32>::new(layout, trees.clone()) {
            Some(s) => Some(Self::Narrow(s)),
            None => Scan::<u64>::new(layout, trees).map(Self::Wide),
        }
    }
}

/// The ensemble's tests sorted by feature and threshold.
#[derive(Clone, Debug, PartialEq)]
pub struct Scan<B> {
    /// Features' ranges in the arrays below: feature `f`'s tests are
    /// `start[f]..start[f + 1]`, by ascending threshold.
    start: Vec<u32>,
    tests: Vec<Test<B>>,
    /// Per tree (position in `by_depth`), where its leaves start in `leaf`,
    /// and the end of the last tree's.
    leaf_start: Vec<u32>,
    /// Each tree's leaves, left to right, as node indices of the layout.
    leaf: Vec<u32>,
    /// When every tree's leaves hold one value: the values (as `leaf`)
    /// and each tree's output.
    values: Option<(Vec<f64>, Vec<u32>)>,
    /// Whether the processor runs the AVX2 build of the loop.
    avx2: bool,
}

impl<B: Bits> Scan<B> {
    /// The scan of the trees `trees` of `layout.by_depth` (positions
    /// below count from the first of them), or `None` when a tree has more
    /// leaves than `B` holds.
    pub fn new(layout: &Layout, trees: std::ops::Range<usize>) -> Option<Self> {
        let p = layout.n_features;
        let mut tests: Vec<(u32, f32, u32, B)> = Vec::new();
        let mut scan = Scan {
            start: Vec::new(),
            tests: Vec::new(),
            leaf_start: Vec::new(),
            leaf: Vec::new(),
            values: None,
            avx2: false,
        };
        let trees = &layout.by_depth[trees];
        for (pos, t) in trees.iter().enumerate() {
            scan.leaf_start.push(scan.leaf.len() as u32);
            let first = scan.leaf.len();
            // Depth-first, left child first: leaves come out left to right.
            // Each entry: node, and for internal nodes the tests still to
            // be written once the left subtree's leaves are known.
            let mut stack = vec![(t.root as usize, false)];
            let mut open: Vec<(usize, usize)> = Vec::new();
            while let Some((i, done_left)) = stack.pop() {
                let s = layout.split[i];
                if s.threshold.is_nan() {
                    scan.leaf.push(i as u32);
                    if scan.leaf.len() - first > B::WIDTH {
                        return None;
                    }
                    continue;
                }
                let left = layout.left[i] as usize;
                if done_left {
                    // The left subtree's leaves are `lo..` up to now.
                    let (node, lo) = open.pop().expect("an open node for every return");
                    debug_assert_eq!(node, i);
                    let (lo, hi) = (lo - first, scan.leaf.len() - first);
                    let span = B::span(lo, hi - lo);
                    let feature = s.column >> crate::layout::BLOCK_SHIFT;
                    tests.push((feature, s.threshold, pos as u32, !span));
                    stack.push((left + 1, false));
                } else {
                    open.push((i, scan.leaf.len()));
                    stack.push((i, true));
                    stack.push((left, false));
                }
            }
        }
        scan.leaf_start.push(scan.leaf.len() as u32);
        tests.sort_by(|a, b| a.0.cmp(&b.0).then(a.1.total_cmp(&b.1)));
        scan.start = vec![0; p + 1];
        for &(f, ..) in &tests {
            scan.start[f as usize + 1] += 1;
        }
        for f in 0..p {
            scan.start[f + 1] += scan.start[f];
        }
        scan.tests = tests
            .iter()
            .map(|&(_, threshold, tree, mask)| Test {
                threshold,
                mask,
                tree,
            })
            .collect();
        if layout
            .by_depth
            .iter()
            .all(|t| t.output != ir::Tree::ALL_OUTPUTS)
        {
            let values = scan
                .leaf
                .iter()
                .map(|&i| f64::from(f32::from_bits(layout.aux[i as usize])))
                .collect();
            let outputs = trees.iter().map(|t| t.output).collect();
            scan.values = Some((values, outputs));
        }
        #[cfg(target_arch = "x86_64")]
        {
            scan.avx2 = std::arch::is_x86_feature_detected!("avx2");
        }
        Some(scan)
    }

    /// The masks of rows `r..r + ROWS` of the transposed block `xt`:
    /// one per tree (`ROWS` lanes, trees in `by_depth` order), whose lowest
    /// bit is the row's leaf. The rows must hold no missing value.
    ///
    /// # Panics
    /// When `xt` is not a block of this scan's features, or `masks` not
    /// one entry per tree.
    #[inline(always)]
    pub fn group(&self, xt: &[f32], r: usize, masks: &mut [[B; ROWS]]) {
        assert_eq!(masks.len() + 1, self.leaf_start.len());
        assert!(xt.len() >= (self.start.len() - 1) * BLOCK && r + ROWS <= BLOCK);
        masks.fill([B::ALL; ROWS]);
        #[cfg(target_arch = "x86_64")]
        if self.avx2 {
            // SAFETY: the processor has AVX2 (checked in `new`).
            unsafe { B::fail_avx2(self, xt, r, masks) };
        } else {
            self.fail(xt, r, masks);
        }
        #[cfg(not(target_arch = "x86_64"))]
        self.fail(xt, r, masks);
    }

    /// The leaf (node index) of tree `pos` (in `by_depth` order) that
    /// `mask` leaves.
    #[inline(always)]
    pub fn leaf(&self, pos: usize, mask: B) -> u32 {
        self.leaf[self.leaf_start[pos] as usize + mask.lowest()]
    }

    /// Adds the leaf values the first `n` lanes of `masks` reach to their
    /// rows of `out` (`k` outputs per row), trees in `by_depth` order;
    /// `false` (and nothing added) unless every tree's leaves hold one
    /// value.
    #[inline(always)]
    pub fn add_values(&self, masks: &[[B; ROWS]], n: usize, out: &mut [f64], k: usize) -> bool {
        let Some((values, outputs)) = &self.values else {
            return false;
        };
        let trees = masks.iter().zip(self.leaf_start.windows(2)).zip(outputs);
        if k == 1 {
            // One output: the eight sums stay in registers. (The rows start
            // at 0, so adding the sums to them changes nothing in the
            // order of the additions.)
            let mut acc = [0.0f64; ROWS];
            for ((bits, w), _) in trees {
                let values = &values[w[0] as usize..w[1] as usize];
                for (a, &b) in acc.iter_mut().zip(bits) {
                    *a += values[b.lowest()];
                }
            }
            for (o, a) in out.iter_mut().zip(&acc[..n]) {
                *o += a;
            }
        } else {
            for ((bits, w), &o) in trees {
                let values = &values[w[0] as usize..w[1] as usize];
                for (l, &b) in bits[..n].iter().enumerate() {
                    out[l * k + o as usize] += values[b.lowest()];
                }
            }
        }
        true
    }
}

impl<B: Bits> Scan<B> {
    /// Applies every failed test of rows `r..r + ROWS` to `masks`.
    /// (The caller checked the block's size and the masks' count.)
    #[inline(always)]
    fn fail(&self, xt: &[f32], r: usize, masks: &mut [[B; ROWS]]) {
        let tests = self.tests.as_ptr();
        let masks = masks.as_mut_ptr();
        for (f, w) in self.start.windows(2).enumerate() {
            let x: [f32; ROWS] = xt[f * BLOCK + r..f * BLOCK + r + ROWS]
                .try_into()
                .expect("ROWS values");
            for k in w[0] as usize..w[1] as usize {
                // SAFETY: see the module's documentation: `k` is within
                // `tests`, and the test's tree within `masks`.
                let (t, bits) = unsafe {
                    let t = &*tests.add(k);
                    (t, &mut *masks.add(t.tree as usize))
                };
                // All ones where the row passes the test, else none.
                let pass = x.map(|v| if v <= t.threshold { B::ALL } else { B::NONE });
                if pass.iter().all(|&p| p == B::ALL) {
                    break;
                }
                for (b, p) in bits.iter_mut().zip(pass) {
                    *b = *b & (p | t.mask);
                }
            }
        }
    }
}

impl Scan<u32> {
    /// [`Scan::fail`] for AVX2 and 32-bit masks: the eight rows are one
    /// register, and so are a tree's eight masks.
    ///
    /// # Safety
    /// The processor must have AVX2; the caller checked the block's size
    /// and the masks' count.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    unsafe fn fail_avx2_32(&self, xt: &[f32], r: usize, masks: &mut [[u32; ROWS]]) {
        use std::arch::x86_64::{
            __m256i, _CMP_LE_OQ, _mm256_and_si256, _mm256_castps_si256, _mm256_cmp_ps,
            _mm256_loadu_ps, _mm256_loadu_si256, _mm256_movemask_ps, _mm256_or_si256,
            _mm256_set1_epi32, _mm256_set1_ps, _mm256_storeu_si256,
        };
        let tests = self.tests.as_ptr();
        let masks = masks.as_mut_ptr();
        for (f, w) in self.start.windows(2).enumerate() {
            // SAFETY: the caller checked that `xt` holds ROWS values of
            // every feature from row `r`; `k` and the test's tree are in
            // range (see the module's documentation).
            unsafe {
                let x = _mm256_loadu_ps(xt.as_ptr().add(f * BLOCK + r));
                for k in w[0] as usize..w[1] as usize {
                    let t = &*tests.add(k);
                    let pass = _mm256_cmp_ps::<_CMP_LE_OQ>(x, _mm256_set1_ps(t.threshold));
                    if _mm256_movemask_ps(pass) == 0xFF {
                        break;
                    }
                    let keep = _mm256_or_si256(
                        _mm256_castps_si256(pass),
                        _mm256_set1_epi32(t.mask as i32),
                    );
                    let bits = masks.add(t.tree as usize).cast::<__m256i>();
                    _mm256_storeu_si256(bits, _mm256_and_si256(_mm256_loadu_si256(bits), keep));
                }
            }
        }
    }
}

impl Scan<u64> {
    /// [`Scan::fail`] for AVX2 and 64-bit masks: the eight rows are one
    /// register, a tree's eight masks two.
    ///
    /// # Safety
    /// The processor must have AVX2; the caller checked the block's size
    /// and the masks' count.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    unsafe fn fail_avx2_64(&self, xt: &[f32], r: usize, masks: &mut [[u64; ROWS]]) {
        use std::arch::x86_64::{
            __m256i, _CMP_LE_OQ, _mm256_and_si256, _mm256_castps_si256, _mm256_castsi256_si128,
            _mm256_cmp_ps, _mm256_cvtepi32_epi64, _mm256_extracti128_si256, _mm256_loadu_ps,
            _mm256_loadu_si256, _mm256_movemask_ps, _mm256_or_si256, _mm256_set1_epi64x,
            _mm256_set1_ps, _mm256_storeu_si256,
        };
        let tests = self.tests.as_ptr();
        let masks = masks.as_mut_ptr();
        for (f, w) in self.start.windows(2).enumerate() {
            // SAFETY: as in `fail_avx2_32`; a tree's eight masks are two
            // registers' worth (64 bytes).
            unsafe {
                let x = _mm256_loadu_ps(xt.as_ptr().add(f * BLOCK + r));
                for k in w[0] as usize..w[1] as usize {
                    let t = &*tests.add(k);
                    let pass = _mm256_cmp_ps::<_CMP_LE_OQ>(x, _mm256_set1_ps(t.threshold));
                    if _mm256_movemask_ps(pass) == 0xFF {
                        break;
                    }
                    let pass = _mm256_castps_si256(pass);
                    let m = _mm256_set1_epi64x(t.mask as i64);
                    let lo =
                        _mm256_or_si256(_mm256_cvtepi32_epi64(_mm256_castsi256_si128(pass)), m);
                    let hi = _mm256_or_si256(
                        _mm256_cvtepi32_epi64(_mm256_extracti128_si256::<1>(pass)),
                        m,
                    );
                    let bits = masks.add(t.tree as usize).cast::<__m256i>();
                    _mm256_storeu_si256(bits, _mm256_and_si256(_mm256_loadu_si256(bits), lo));
                    let bits = bits.add(1);
                    _mm256_storeu_si256(bits, _mm256_and_si256(_mm256_loadu_si256(bits), hi));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layout::Layout;
    use tessera_core::{
        ir::{Combine, Link, Tree, TreeEnsemble},
        plugin::seeds::SplitMix,
    };

    /// The compiled layout of a sum of random trees over `p` features, of
    /// `leaves` leaves each.
    fn layout(rng: &mut SplitMix, p: usize, leaves: impl IntoIterator<Item = usize>) -> Layout {
        let ens = TreeEnsemble {
            n_features: p as u32,
            n_outputs: 1,
            n_classes: 0,
            combine: Combine::Sum,
            link: Link::Identity,
            base_score: Vec::new().into(),
            trees: leaves
                .into_iter()
                .map(|l| crate::tests::tree_of(rng, p, l, 1, Tree::ALL_OUTPUTS))
                .collect::<Vec<_>>()
                .into(),
        };
        Layout::compile(&ens).unwrap()
    }

    #[test]
    fn the_plain_loop_and_the_avx2_loop_agree() {
        let mut rng = SplitMix::new(9);
        let p = 5;
        let n = 40;
        let layout = layout(&mut rng, p, (0..n).map(|t| 1 + t % 32));
        let mut scan = Scan::<u32>::new(&layout, 0..n).expect("trees of at most 32 leaves");
        let xt: Vec<f32> = (0..p * BLOCK).map(|_| rng.unit() as f32).collect();
        let masks = |scan: &Scan<u32>| {
            let mut m = vec![[0u32; ROWS]; n];
            for r in (0..BLOCK).step_by(ROWS) {
                scan.group(&xt, r, &mut m);
            }
            m
        };
        // The processor's loop (AVX2 where it has it) against the plain one.
        let first = masks(&scan);
        scan.avx2 = false;
        assert_eq!(masks(&scan), first);
        // Every lane's lowest bit names a leaf of its tree.
        for (pos, lanes) in first.iter().enumerate() {
            for &m in lanes {
                let leaf = scan.leaf(pos, m) as usize;
                assert!(layout.split[leaf].threshold.is_nan());
            }
        }
    }

    #[test]
    fn masks_are_as_wide_as_the_trees_need() {
        let mut rng = SplitMix::new(4);
        let mut scan = |leaves: &[usize]| {
            AnyScan::new(
                &layout(&mut rng, 3, leaves.iter().copied()),
                0..leaves.len(),
            )
        };
        assert!(matches!(scan(&[32, 1, 5]), Some(AnyScan::Narrow(_))));
        assert!(matches!(scan(&[32, 33]), Some(AnyScan::Wide(_))));
        assert!(matches!(scan(&[64, 2]), Some(AnyScan::Wide(_))));
        assert!(scan(&[64, 65]).is_none());
    }

    #[test]
    fn wide_masks_agree_with_narrow_ones() {
        let mut rng = SplitMix::new(12);
        let p = 4;
        let layout = layout(&mut rng, p, (0..30).map(|t| 1 + t % 32));
        let narrow = Scan::<u32>::new(&layout, 0..30).unwrap();
        let mut wide = Scan::<u64>::new(&layout, 0..30).unwrap();
        let xt: Vec<f32> = (0..p * BLOCK).map(|_| rng.unit() as f32).collect();
        let mut m32 = vec![[0u32; ROWS]; 30];
        let mut m64 = vec![[0u64; ROWS]; 30];
        for plain in [false, true] {
            if plain {
                wide.avx2 = false;
            }
            for r in (0..BLOCK).step_by(ROWS) {
                narrow.group(&xt, r, &mut m32);
                wide.group(&xt, r, &mut m64);
                for (pos, (a, b)) in m32.iter().zip(&m64).enumerate() {
                    for (&a, &b) in a.iter().zip(b) {
                        assert_eq!(narrow.leaf(pos, a), wide.leaf(pos, b));
                    }
                }
            }
        }
    }
}
