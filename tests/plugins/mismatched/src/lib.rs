//! Test plugin that looks like a tessera plugin built against an older,
//! incompatible tessera-core.
//!
//! Its root module has the names and version of core's `PluginModRef`
//! (`tessera_plugin`, the workspace version that core also has), so the
//! loader's version check passes, but an older layout: `manifest` returns a
//! different type and later entry points are missing. The host's loader must
//! refuse it with `LibraryError::AbiInstability` instead of calling into it.
//!
//! It depends on `abi_stable` directly, not on tessera-core, and its build
//! script makes its types claim package `tessera-core`, as the types of a
//! plugin built against an older core would: the loader then refuses it for
//! its layout, not merely for naming another package.

use abi_stable::{
    StableAbi, declare_root_module_statics, export_root_module,
    library::RootModule,
    package_version_strings,
    prefix_type::PrefixTypeTrait,
    sabi_types::VersionStrings,
    std_types::{RResult, RStr, RString},
};

/// The manifest of the imagined older core: a name and a version only.
#[repr(C)]
#[derive(StableAbi)]
pub struct Manifest {
    /// The plugin's name.
    pub name: RString,
    /// The plugin's version.
    pub version: RString,
}

/// The root module of the imagined older core.
#[repr(C)]
#[derive(StableAbi)]
#[sabi(kind(Prefix(prefix_ref = PluginModRef)))]
#[sabi(missing_field(panic))]
pub struct PluginMod {
    /// Returns the older manifest (core's returns `tessera_core::Manifest`).
    pub manifest: extern "C" fn() -> Manifest,
    /// Creates a learner, returning its name or an error message.
    #[sabi(last_prefix_field)]
    pub create_learner:
        extern "C" fn(name: RStr<'_>, params: RStr<'_>) -> RResult<RString, RString>,
}

impl RootModule for PluginModRef {
    declare_root_module_statics! {PluginModRef}
    const BASE_NAME: &'static str = "tessera_plugin";
    const NAME: &'static str = "tessera_plugin";
    const VERSION_STRINGS: VersionStrings = package_version_strings!();
}

extern "C" fn manifest() -> Manifest {
    Manifest {
        name: "mismatched".into(),
        version: env!("CARGO_PKG_VERSION").into(),
    }
}

extern "C" fn create_learner(name: RStr<'_>, _params: RStr<'_>) -> RResult<RString, RString> {
    RResult::RErr(format!("no learner `{name}`").into())
}

/// The root module abi_stable's loader finds.
#[export_root_module]
pub fn root_module() -> PluginModRef {
    PluginMod {
        manifest,
        create_learner,
    }
    .leak_into_prefix()
}
