//! Quantized tree ensembles: smaller files and faster batch inference for
//! the tree models tessera trains or imports.
//!
//! [`QuantizedTrees::quantize`] turns a
//! [`TreeEnsemble`](tessera_core::ir::TreeEnsemble) into
//!
//! * per feature, the sorted bin edges: the distinct thresholds the
//!   ensemble uses when there are at most `2^bits - 1` of them (lossless),
//!   else that many quantiles of them weighted by use, each threshold moved
//!   to the nearest (lossy; [`QuantizedTrees::describe`] counts the moved
//!   ones);
//! * per split, the index of its edge in 8 or 16 bits;
//! * leaf values as `f32`, half (`f16`, converted here), or `i16` / `i8`
//!   times a scale per tree and output (a vote keeps each leaf's class).
//!
//! Its byte form ([`QuantizedTrees::to_bytes`]) stores the trees in
//! preorder with no child indices; [`QuantizedTrees::from_bytes`] checks
//! all of it. [`QuantizedTrees::dequantize`] gives back an `f32` ensemble
//! whose predictions are exactly the quantized model's.
//!
//! [`QuantizedModel`] predicts: each input row is binned once (per
//! feature, how many edges lie below the value), then the trees compare
//! bin indices only, on a compact layout of 4-byte nodes where they fit
//! (see `layout.rs`, `walk.rs`, `predict.rs`). Combination, link, base
//! score and outputs are the ensemble's, and scores add up in `f64` in the
//! same order as `tessera_engine`'s.

mod edges;
mod half;
mod layout;
mod model;
mod options;
mod predict;
mod quantize;
mod serialize;
mod walk;

pub use model::QuantizedModel;
pub use options::{LeafFormat, Options};
pub use predict::Inference;
pub use quantize::{MAX_DEPTH, MAX_FEATURES, QuantizedTrees};
pub use serialize::{MAGIC, VERSION};

use tessera_core::{HostContextRef, PluginError, plugin::ModelImpl};

/// The model family's name: the `family` of its opaque exchange form and
/// the name of its load-only model form.
pub const FAMILY: &str = "quantized_trees";

/// Reads a model that [`QuantizedTrees::to_bytes`] wrote, ready to
/// predict: the `load` of the model form [`FAMILY`].
///
/// # Errors
/// Bytes [`QuantizedTrees::from_bytes`] refuses, or trees too large to
/// compile.
pub fn load(bytes: &[u8], _ctx: &HostContextRef<'_>) -> Result<Box<dyn ModelImpl>, PluginError> {
    Ok(Box::new(QuantizedModel::new(QuantizedTrees::from_bytes(
        bytes,
    )?)?))
}

#[cfg(test)]
mod tests;
