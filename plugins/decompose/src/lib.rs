//! tessera-decompose: splitting one model into sub-models that run apart
//! (threads, processes, machines) and recombine to the same answer.
//!
//! Decomposers work on the exchange form, so they serve every plugin whose
//! models expose it:
//!
//! * `shard` ([`shard`]): a tree ensemble into `parts` sub-ensembles of
//!   consecutive trees, balanced by node count;
//! * `pipeline` ([`pipeline`]): a dense network into consecutive stages;
//! * `one_vs_rest` ([`ovr`]): a multiclass model into one sub-model per
//!   class.
//!
//! Each part's `role` says how it recombines; core's
//! [`recombine`](tessera_core::recombine) documents the roles and joins
//! the parts' answers.

pub mod ovr;
pub mod pipeline;
pub mod shard;

use tessera_core::plugin::{DecomposerDef, PluginDef};

/// The plugin's definition: `shard`, `pipeline`, `one_vs_rest`.
pub fn plugin() -> PluginDef {
    PluginDef {
        name: "decompose",
        version: env!("CARGO_PKG_VERSION"),
        learners: Vec::new(),
        compressors: Vec::new(),
        decomposers: vec![
            DecomposerDef {
                name: "shard",
                description: "a tree ensemble into sub-ensembles of consecutive trees, balanced \
                              by node count, whose outputs recombine exactly",
                params: shard::specs(),
                create: shard::create,
            },
            DecomposerDef {
                name: "pipeline",
                description: "a dense network into consecutive stages, each feeding the next",
                params: pipeline::specs(),
                create: pipeline::create,
            },
            DecomposerDef {
                name: "one_vs_rest",
                description: "a multiclass model into one sub-model per class, recombined as \
                              the original combines its classes",
                params: Vec::new(),
                create: ovr::create,
            },
        ],
        models: Vec::new(),
    }
}

tessera_core::export_plugin!(plugin);
