//! tessera's tree-ensemble inference engine.
//!
//! [`Engine::new`] compiles a [`TreeEnsemble`](tessera_core::ir::TreeEnsemble) (the exchange form every
//! tree model of tessera exposes) once: each tree's nodes breadth-first,
//! the two children of a node side by side, in three arrays (an 8-byte
//! feature offset and threshold, the left child, and a word read only for
//! missing values and at leaves); a leaf leads back to itself (see
//! `layout.rs`). It then predicts:
//!
//! * in batches ([`Engine::raw`], [`Engine::raw_into`]): rows go in blocks
//!   of [`BLOCK`], transposed so that a feature's values are adjacent.
//!   When every tree has at most 64 leaves (boosted models) and a cost
//!   estimate favours it, a block with no missing value is *scanned*
//!   (`scan.rs`): feature by feature, each test
//!   the rows fail clears leaves from a per-tree bit mask, eight rows in one
//!   vector register, and each row's leaf is its mask's lowest bit.
//!   Otherwise every tree *walks* the whole block, eight rows descending in
//!   lockstep (`walk.rs`), before the next tree, so the block's rows and the
//!   tree's nodes stay in the first-level cache; a block with no missing
//!   value takes a walk with no missing-value test. An ensemble larger than
//!   the second-level cache is cut into tiles of consecutive trees; a pass
//!   of many blocks goes through one tile after the other. Passes run in
//!   parallel within the call's thread budget.
//! * one row at a time ([`Engine::raw_row`]): eight trees descend in
//!   lockstep for the one row; no allocation, no thread hand-off.
//!
//! Scores add up in `f64`, in one fixed order of the trees (deepest
//! first), so a row's result does not depend on the block size, the
//! thread count, or whether it came alone or in a batch.

mod engine;
mod layout;
mod model;
mod scan;
mod shape;
mod walk;

pub use engine::Engine;
pub use layout::{BLOCK, MAX_FEATURES};
pub use model::IrModel;
pub use shape::{EnsembleShape, link_proba};
pub use walk::LANES;

#[cfg(test)]
mod tests;
