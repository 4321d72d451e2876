//! tessera-compress: compressors that work on the exchange form, so they
//! serve every plugin whose models expose it (random forests, bagged and
//! boosted trees, MLPs, third-party models):
//!
//! * `quantize` ([`quantize`]): tree thresholds as per-feature bin indices
//!   with compact leaves; network weights and activations as int8/int16
//!   on integer kernels;
//! * `prune` ([`prune`]): trees chosen greedily on evaluation rows,
//!   cost-complexity pruning and depth truncation; network units removed
//!   or weights zeroed and stored sparse, then fine-tuned.
//!
//! A quantized or sparse model is a model form of this plugin
//! (`quantized_trees`, `quantized_network`, `sparse_network`): the host
//! saves it as an ordinary model file that predicts, serves, and (through
//! its exchange form) decomposes like any other.

pub mod params;
pub mod prune;
pub mod quantize;

use tessera_core::plugin::{CompressorDef, ModelFormDef, PluginDef};

/// The plugin's definition.
pub fn plugin() -> PluginDef {
    PluginDef {
        name: "compress",
        version: env!("CARGO_PKG_VERSION"),
        learners: Vec::new(),
        compressors: vec![
            CompressorDef {
                name: "quantize",
                description: "tree thresholds as per-feature bin indices and compact leaves; \
                              network weights and activations as int8 (or int16)",
                params: params::quantize_specs(),
                create: quantize::create,
            },
            CompressorDef {
                name: "prune",
                description: "fewer trees (greedy on --eval), cost-complexity pruning, depth \
                              truncation; fewer hidden units or sparse weights, fine-tuned",
                params: params::prune_specs(),
                create: prune::create,
            },
        ],
        decomposers: Vec::new(),
        models: vec![
            ModelFormDef {
                name: tessera_qtrees::FAMILY,
                description: "a tree ensemble with binned thresholds and compact leaves",
                load: tessera_qtrees::load,
            },
            ModelFormDef {
                name: tessera_qnet::FAMILY,
                description: "a dense network with int8/int16 weights on integer kernels",
                load: tessera_qnet::load,
            },
            ModelFormDef {
                name: prune::network::SPARSE_FAMILY,
                description: "a dense network with pruned weights stored sparse",
                load: prune::network::load_sparse,
            },
        ],
    }
}

tessera_core::export_plugin!(plugin);
