//! The walks: several rows (or several trees) descending in lockstep.
//!
//! Each lane's next node depends only on its own previous one, so the
//! lanes' loads overlap instead of waiting on each other, and a lane that
//! reached its leaf simply stays there (a leaf sends every row to itself).
//! A walk takes as many steps as the tree is deep, or for deep trees stops
//! once the slowest lane reached its leaf (see [`lockstep`]).
//!
//! # Safety
//!
//! This is the one module of the engine with `unsafe`: the loads of a node
//! and of a feature value skip their bounds checks, which would otherwise
//! be most of a step's instructions. They are in bounds because:
//!
//! * every node index is a root from [`Layout::trees`] or a node's `left`
//!   (or `left + 1`), and [`Layout::compile`] checks every child of every
//!   tree before it returns; the three node arrays (`split`, `left`, `aux`)
//!   have one entry per node (the layout cannot be built or changed any
//!   other way: its fields are private to the crate, and nothing in the
//!   crate writes them after compiling);
//! * every `column` is `feature * BLOCK` with `feature < n_features`
//!   (also checked there), a leaf's is 0; each walk asserts that its values
//!   hold `n_features` features (and, for a block, that the lanes stay
//!   within the block) before it starts.

#![allow(unsafe_code)]

use crate::layout::{BLOCK, BLOCK_SHIFT, Layout, Split};

/// Rows (or, for one row, trees) descending in lockstep.
pub const LANES: usize = 8;

/// Whether a row whose value is `x` goes right at a node (never at a
/// leaf); `aux` reads the node's [`Node`](crate::layout::Node)`::aux`,
/// needed only for a missing value.
#[inline(always)]
fn goes_right<const NAN: bool>(s: &Split, x: f32, aux: impl FnOnce() -> u32) -> bool {
    if NAN {
        // NaN goes the default way; a leaf's NaN threshold makes the second
        // term false too.
        (x > s.threshold) | (x.is_nan() && !s.threshold.is_nan() && aux() == 0)
    } else {
        x > s.threshold
    }
}

/// Trees at most this deep are walked a fixed number of steps.
pub const FIXED_DEPTH: u32 = 16;

/// Walks `L` lanes down from `idx`, `step` giving a lane's next node.
///
/// A tree at most [`FIXED_DEPTH`] deep is walked `depth` steps with no test
/// at all (measured faster than stopping early, even though a group of rows
/// rarely needs every level). A deeper one is walked `min_depth` steps (no
/// lane can reach a leaf sooner), then two steps at a time until a pair of
/// steps moved no lane: a node's children come after it, so a lane that
/// moves raises its index, and the lanes stood still exactly when the sum
/// of their indices did not change.
#[inline(always)]
fn lockstep<const L: usize>(
    mut idx: [usize; L],
    (min_depth, depth): (u32, u32),
    mut step: impl FnMut(usize, usize) -> usize,
) -> [usize; L] {
    let mut round = |idx: &mut [usize; L]| {
        for (l, i) in idx.iter_mut().enumerate() {
            *i = step(l, *i);
        }
    };
    if depth <= FIXED_DEPTH {
        for _ in 0..depth {
            round(&mut idx);
        }
        return idx;
    }
    for _ in 0..min_depth {
        round(&mut idx);
    }
    let mut sum: usize = idx.iter().sum();
    loop {
        round(&mut idx);
        round(&mut idx);
        let now: usize = idx.iter().sum();
        if now == sum {
            return idx;
        }
        sum = now;
    }
}

/// The leaves that the first `rows` rows of a transposed block `xt`
/// (feature `f` of row `r` at `f * BLOCK + r`) reach in the tree rooted at
/// `root` (leaves between `depths.0` and `depths.1` deep), into `leaves`; [`LANES`] rows descend at a
/// time. With `NAN = false` the rows must hold no missing value. Kept out
/// of line so that the lanes get the registers to themselves.
///
/// # Panics
/// When `xt` holds fewer than `n_features` columns of a block, `rows`
/// exceeds the block, or `root` is not a tree's root.
#[inline(never)]
pub fn block<const NAN: bool>(
    layout: &Layout,
    root: u32,
    depths: (u32, u32),
    xt: &[f32],
    rows: usize,
    leaves: &mut [u32; BLOCK],
) {
    assert!(xt.len() >= layout.n_features * BLOCK && rows <= BLOCK);
    assert!((root as usize) < layout.left.len());
    let (split, left, aux) = (
        layout.split.as_ptr(),
        layout.left.as_ptr(),
        layout.aux.as_ptr(),
    );
    for r in (0..rows).step_by(LANES) {
        let xt = xt[r..].as_ptr();
        let idx = lockstep([root as usize; LANES], depths, |l, i| {
            // SAFETY: see the module's documentation: `i` is a node of the
            // layout, and `column + r + l < n_features * BLOCK <= xt.len()`
            // (`r + l < BLOCK`: `r` is a multiple of LANES below BLOCK).
            unsafe {
                let s = &*split.add(i);
                let x = *xt.add(s.column as usize + l);
                *left.add(i) as usize + usize::from(goes_right::<NAN>(s, x, || *aux.add(i)))
            }
        });
        for (o, i) in leaves[r..r + LANES].iter_mut().zip(idx) {
            *o = i as u32;
        }
    }
}

/// The leaves one row reaches in `L` trees (roots `roots`, leaves between
/// `depths.0` and `depths.1` deep): the trees are the lanes.
///
/// # Panics
/// When `row` does not hold `n_features` values or a root is not a tree's.
#[inline(always)]
pub fn trees<const L: usize, const NAN: bool>(
    layout: &Layout,
    roots: [u32; L],
    depths: (u32, u32),
    row: &[f32],
) -> [u32; L] {
    assert_eq!(row.len(), layout.n_features);
    assert!(roots.iter().all(|&r| (r as usize) < layout.left.len()));
    let roots = roots.map(|r| r as usize);
    let (split, left, aux) = (
        layout.split.as_ptr(),
        layout.left.as_ptr(),
        layout.aux.as_ptr(),
    );
    let row = row.as_ptr();
    lockstep(roots, depths, |_, i| {
        // SAFETY: see the module's documentation: `i` is a node of the
        // layout, and `column >> BLOCK_SHIFT < n_features == row.len()`.
        unsafe {
            let s = &*split.add(i);
            let x = *row.add((s.column >> BLOCK_SHIFT) as usize);
            *left.add(i) as usize + usize::from(goes_right::<NAN>(s, x, || *aux.add(i)))
        }
    })
    .map(|i| i as u32)
}
