//! tessera-qnet: dense networks quantized to 8-bit (or 16-bit) integers.
//!
//! [`QuantizedNetwork::quantize`] turns a [`DenseNetwork`] (the exchange
//! form every network plugin gives) into integer weights, one scale per
//! output channel, with activations quantized at every layer input:
//! calibrated once on sample rows run through the `f32` network, or, with
//! no rows, per row at prediction time. [`QuantizedModel`] predicts with
//! integer kernels (AVX2 where the CPU has it, a portable loop
//! otherwise) and is what the [`FAMILY`] model form loads; the compress
//! plugin declares that form and returns quantized networks as
//! `ModelIr::Opaque { family: FAMILY, bytes }`.
//!
//! Modules: [`scheme`] (the quantization rules, shared with the mlp
//! learner's quantization-aware training), `network` (quantizing,
//! dequantizing, the summary), `serialize` (the bytes), `kernel` (the
//! integer matrix kernel), `infer` (a block of rows through the layers),
//! `math` (the `f32` activations) and `model` (the model).
//!
//! [`DenseNetwork`]: tessera_core::ir::DenseNetwork

mod infer;
mod kernel;
pub mod math;
mod model;
mod network;
pub mod scheme;
mod serialize;

pub use model::{QuantizedModel, load};
pub use network::{CALIBRATION_ROWS, QuantizedNetwork};
pub use serialize::{MAGIC, VERSION};

/// The name of the model form, and the `family` of its opaque exchange
/// form.
pub const FAMILY: &str = "quantized_network";

/// How to quantize.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Options {
    /// Bits per weight and activation: 8, or 16 where 8 loses too much.
    pub bits: u32,
}

impl Default for Options {
    fn default() -> Self {
        Self { bits: 8 }
    }
}
