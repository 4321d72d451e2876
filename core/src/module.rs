//! The root module every plugin exports.

use abi_stable::{
    StableAbi, declare_root_module_statics,
    library::RootModule,
    package_version_strings,
    sabi_types::VersionStrings,
    std_types::{RResult, RSlice, RStr},
};

use crate::{
    context::HostContextRef,
    error::PluginError,
    manifest::Manifest,
    traits::{CompressorBox, DecomposerBox, LearnerBox, ModelBox},
};

/// The root module of a tessera plugin.
///
/// A prefix type: fields after the last prefix field may be added in later
/// minor versions. Plugins do not build it by hand: use
/// [`export_plugin!`](crate::export_plugin).
#[repr(C)]
#[derive(StableAbi)]
#[sabi(kind(Prefix(prefix_ref = PluginModRef)))]
#[sabi(missing_field(panic))]
pub struct PluginMod {
    /// The plugin's manifest.
    pub manifest: extern "C" fn() -> RResult<Manifest, PluginError>,
    /// Creates a learner by component name; `params` is a JSON object.
    pub create_learner:
        extern "C" fn(name: RStr<'_>, params: RStr<'_>) -> RResult<LearnerBox, PluginError>,
    /// Reads back a model written by [`Model::to_bytes`](crate::Model::to_bytes).
    pub load_model: extern "C" fn(
        component: RStr<'_>,
        bytes: RSlice<'_, u8>,
        ctx: HostContextRef<'_>,
    ) -> RResult<ModelBox, PluginError>,
    /// Creates a compressor by component name; `params` is a JSON object.
    pub create_compressor:
        extern "C" fn(name: RStr<'_>, params: RStr<'_>) -> RResult<CompressorBox, PluginError>,
    /// Creates a decomposer by component name; `params` is a JSON object.
    #[sabi(last_prefix_field)]
    pub create_decomposer:
        extern "C" fn(name: RStr<'_>, params: RStr<'_>) -> RResult<DecomposerBox, PluginError>,
}

impl RootModule for PluginModRef {
    declare_root_module_statics! {PluginModRef}
    const BASE_NAME: &'static str = "tessera_plugin";
    const NAME: &'static str = "tessera_plugin";
    const VERSION_STRINGS: VersionStrings = package_version_strings!();
}
