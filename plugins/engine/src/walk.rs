//! The walks: several rows (or several trees) descending in lockstep.
//!
//! Each lane's next node depends only on its own previous one, so the
//! lanes' loads overlap instead of waiting on each other, and a lane that
//! reached its leaf simply stays there (a leaf sends every row to itself).
//! A tree shallow enough is walked a fixed number of steps (its depth),
//! with no test at all; a deep one stops when a whole step moved no lane.
//!
//! # Safety
//!
//! This is the one module of the engine with `unsafe`: the loads of a node
//! and of a feature value skip their bounds checks, which would otherwise
//! be most of a step's instructions. They are in bounds because:
//!
//! * every node index is a root from [`Layout::trees`] or a node's `left`
//!   (or `left + 1`), and [`Layout::compile`] checks every child of every
//!   tree before it returns (the layout cannot be built or changed any
//!   other way: its fields are private to the crate, and nothing in the
//!   crate writes them after compiling);
//! * every `column` is `feature * BLOCK` with `feature < n_features`
//!   (also checked there), a leaf's is 0; each walk asserts that its values
//!   hold `n_features` features (and, for a block, that the lanes stay
//!   within the block) before it starts.

#![allow(unsafe_code)]

use crate::layout::{BLOCK, BLOCK_SHIFT, Layout, Node};

/// Trees at most this deep are walked a fixed number of steps.
pub const FIXED_DEPTH: u32 = 16;

/// Whether a row whose value is `x` goes right at `n` (never at a leaf).
#[inline(always)]
fn goes_right<const NAN: bool>(n: &Node, x: f32) -> bool {
    if NAN {
        // NaN goes the default way; a leaf's NaN threshold makes the second
        // term false too.
        (x > n.threshold) | (x.is_nan() & (n.aux == 0) & !n.threshold.is_nan())
    } else {
        x > n.threshold
    }
}

/// Walks `L` lanes down, `step` giving a lane's next node.
#[inline(always)]
fn lockstep<const L: usize>(
    mut idx: [u32; L],
    depth: u32,
    mut step: impl FnMut(usize, u32) -> u32,
) -> [u32; L] {
    if depth <= FIXED_DEPTH {
        for _ in 0..depth {
            for (l, i) in idx.iter_mut().enumerate() {
                *i = step(l, *i);
            }
        }
    } else {
        loop {
            let mut moved = false;
            for (l, i) in idx.iter_mut().enumerate() {
                let next = step(l, *i);
                moved |= next != *i;
                *i = next;
            }
            if !moved {
                break;
            }
        }
    }
    idx
}

/// The leaves that rows `r..r + L` of a transposed block `xt` (feature `f`
/// of row `r` at `f * BLOCK + r`) reach in the tree rooted at `root`
/// (`depth` levels). With `NAN = false` the rows must hold no missing
/// value.
///
/// # Panics
/// When `xt` holds fewer than `n_features` columns of a block, the lanes
/// run past the block, or `root` is not a tree's root.
#[inline(always)]
pub fn rows<const L: usize, const NAN: bool>(
    layout: &Layout,
    root: u32,
    depth: u32,
    xt: &[f32],
    r: usize,
) -> [u32; L] {
    assert!(xt.len() >= layout.n_features * BLOCK && r + L <= BLOCK);
    assert!((root as usize) < layout.nodes.len());
    let nodes = layout.nodes.as_ptr();
    let xt = xt[r..].as_ptr();
    lockstep([root; L], depth, |l, i| {
        // SAFETY: see the module's documentation: `i` is a node of the
        // layout, and `column + r + l < n_features * BLOCK <= xt.len()`.
        unsafe {
            let n = &*nodes.add(i as usize);
            let x = *xt.add(n.column as usize + l);
            n.left + u32::from(goes_right::<NAN>(n, x))
        }
    })
}

/// The leaves one row reaches in `L` trees (roots `roots`, the deepest
/// `depth` levels): the trees are the lanes.
///
/// # Panics
/// When `row` does not hold `n_features` values or a root is not a tree's.
#[inline(always)]
pub fn trees<const L: usize, const NAN: bool>(
    layout: &Layout,
    roots: [u32; L],
    depth: u32,
    row: &[f32],
) -> [u32; L] {
    assert_eq!(row.len(), layout.n_features);
    assert!(roots.iter().all(|&r| (r as usize) < layout.nodes.len()));
    let nodes = layout.nodes.as_ptr();
    let row = row.as_ptr();
    lockstep(roots, depth, |_, i| {
        // SAFETY: see the module's documentation: `i` is a node of the
        // layout, and `column >> BLOCK_SHIFT < n_features == row.len()`.
        unsafe {
            let n = &*nodes.add(i as usize);
            let x = *row.add((n.column >> BLOCK_SHIFT) as usize);
            n.left + u32::from(goes_right::<NAN>(n, x))
        }
    })
}
