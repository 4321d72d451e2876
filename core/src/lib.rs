//! tessera-core: the stable ABI shared by the tessera host and every plugin.
//!
//! A plugin is a `cdylib` that exports one [`PluginMod`] root module. The host
//! loads it with `abi_stable`, which checks the layout of every type reachable
//! from the root module, so a plugin built against an incompatible core is
//! refused at load time instead of misbehaving later.
//!
//! What crosses the boundary:
//!
//! * component objects: [`Learner`], [`Model`], [`Compressor`], [`Decomposer`]
//!   (`#[sabi_trait]` objects), and the host's [`HostContext`];
//! * tensors as row-major `f32` with a shape ([`MatrixRef`], [`Matrix`]);
//! * parameters as JSON text, validated by the plugin against its own
//!   [`ParamInfo`] schema (see [`params`]);
//! * errors as [`PluginError`]; a panic never crosses (see [`plugin`]).
//!
//! Capabilities that need no new method travel as parameters too: a
//! learner that can train one shard of its ensemble declares the
//! [`shard`] parameter.
//!
//! # Compatibility promise
//!
//! The ABI version is the crate's `major.minor` ([`ABI_VERSION`]). A host
//! loads plugins built against the same `tessera-core` minor release; patch
//! releases never change a layout. Anything else is refused with
//! "built against an incompatible tessera-core: rebuild it".
//!
//! # Who owns parallelism
//!
//! The host does. Every call carries a [`HostContext`] whose
//! [`threads`](HostContext::threads) is the number of threads the call may
//! use. A plugin never uses its global rayon pool: it runs inline when the
//! budget is 1 and otherwise inside a pool built for that call
//! ([`plugin::with_thread_budget`]). A meta-learner that trains children in
//! parallel hands each child a share of its budget ([`plugin::SubContext`]).
//! Because no call ever waits on a pool shared with its caller, learners can
//! nest across plugins (A calls B calls A) without deadlock, and the total
//! number of busy threads stays within the budget the user asked for.

// `#[sabi_trait]` expands to impl blocks that rustc flags with
// `non_local_definitions`; the expansion is abi_stable's and is sound.
#![allow(non_local_definitions)]

pub mod bytes;
pub mod context;
pub mod data;
pub mod error;
pub mod ir;
pub mod manifest;
pub mod module;
pub mod params;
pub mod plugin;
pub mod recombine;
pub mod shard;
#[cfg(feature = "testkit")]
pub mod testkit;
pub mod traits;

pub use abi_stable;

pub use context::{HostContext, HostContext_TO, HostContextRef, NullContext};
pub use data::{CompressData, Holdout, Matrix, MatrixRef, Task, TrainData};
pub use error::{ErrorKind, PluginError};
pub use manifest::{ComponentInfo, ComponentKind, Manifest, ParamInfo};
pub use module::{PluginMod, PluginModRef};
pub use traits::{Compressor, Decomposer, Learner, Model};
pub use traits::{
    Compressor_TO, CompressorBox, Decomposer_TO, DecomposerBox, Learner_TO, LearnerBox, Model_TO,
    ModelBox, SubModel,
};

/// The ABI version of this build of tessera-core: `major.minor`.
///
/// A plugin records it in its manifest; the host compares it with its own.
pub const ABI_VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION_MAJOR"),
    ".",
    env!("CARGO_PKG_VERSION_MINOR")
);

#[cfg(test)]
mod tests {
    #[test]
    // `export_plugin!` spells the loader symbol out, because the attribute
    // macro abi_stable offers for it needs `abi_stable` as a direct
    // dependency of every plugin. This keeps the two in step.
    fn root_module_symbol_matches_abi_stable() {
        let exported = include_str!("plugin/export.rs");
        let name = abi_stable::library::ROOT_MODULE_LOADER_NAME;
        assert!(
            exported.contains(&format!("pub static {name}:")),
            "export_plugin! must export `{name}`"
        );
    }
}
