//! Support for [`export_plugin!`](crate::export_plugin); not a public API.

pub use abi_stable::std_types::{RResult, RSlice, RStr};

pub use super::{PluginDef, guard};
pub use crate::module::{PluginMod, PluginModRef};
pub use crate::{
    context::HostContextRef,
    error::PluginError,
    manifest::Manifest,
    traits::{CompressorBox, DecomposerBox, LearnerBox, ModelBox},
};
pub use abi_stable::{
    library::{__call_root_module_loader, CheckTypeLayout, LibHeader, RootModuleResult},
    prefix_type::PrefixTypeTrait,
};

pub fn manifest(def: fn() -> &'static PluginDef) -> RResult<Manifest, PluginError> {
    guard(|| Ok(def().manifest()))
}
pub fn create_learner(
    def: fn() -> &'static PluginDef,
    name: RStr<'_>,
    params: RStr<'_>,
) -> RResult<LearnerBox, PluginError> {
    guard(|| def().create_learner(name.as_str(), params.as_str()))
}
pub fn load_model(
    def: fn() -> &'static PluginDef,
    component: RStr<'_>,
    bytes: RSlice<'_, u8>,
    ctx: HostContextRef<'_>,
) -> RResult<ModelBox, PluginError> {
    guard(|| def().load_model_with(component.as_str(), bytes.as_slice(), &ctx))
}
pub fn create_compressor(
    def: fn() -> &'static PluginDef,
    name: RStr<'_>,
    params: RStr<'_>,
) -> RResult<CompressorBox, PluginError> {
    guard(|| def().create_compressor(name.as_str(), params.as_str()))
}
pub fn create_decomposer(
    def: fn() -> &'static PluginDef,
    name: RStr<'_>,
    params: RStr<'_>,
) -> RResult<DecomposerBox, PluginError> {
    guard(|| def().create_decomposer(name.as_str(), params.as_str()))
}

/// Exports a plugin from a `cdylib`: pass a function `fn() -> PluginDef`.
///
/// ```ignore
/// fn plugin() -> tessera_core::plugin::PluginDef { /* ... */ }
/// tessera_core::export_plugin!(plugin);
/// ```
///
/// It defines the root module abi_stable looks for, and routes every entry
/// point through [`guard`], so authors need neither `abi_stable` nor
/// `unsafe` in their crate.
#[macro_export]
macro_rules! export_plugin {
    ($def:path) => {
        #[doc(hidden)]
        fn __tessera_plugin_def() -> $crate::plugin::PluginDef {
            $def()
        }

        #[doc(hidden)]
        mod __tessera_export {
            use $crate::abi_stable::std_types::{RResult, RSlice, RStr};
            use $crate::plugin::export as x;

            fn def() -> &'static x::PluginDef {
                static DEF: ::std::sync::OnceLock<x::PluginDef> = ::std::sync::OnceLock::new();
                DEF.get_or_init(super::__tessera_plugin_def)
            }
            extern "C" fn manifest() -> RResult<$crate::Manifest, $crate::PluginError> {
                x::manifest(def)
            }
            extern "C" fn create_learner(
                name: RStr<'_>,
                params: RStr<'_>,
            ) -> RResult<$crate::LearnerBox, $crate::PluginError> {
                x::create_learner(def, name, params)
            }
            extern "C" fn load_model(
                component: RStr<'_>,
                bytes: RSlice<'_, u8>,
                ctx: $crate::HostContextRef<'_>,
            ) -> RResult<$crate::ModelBox, $crate::PluginError> {
                x::load_model(def, component, bytes, ctx)
            }
            extern "C" fn create_compressor(
                name: RStr<'_>,
                params: RStr<'_>,
            ) -> RResult<$crate::CompressorBox, $crate::PluginError> {
                x::create_compressor(def, name, params)
            }
            extern "C" fn create_decomposer(
                name: RStr<'_>,
                params: RStr<'_>,
            ) -> RResult<$crate::DecomposerBox, $crate::PluginError> {
                x::create_decomposer(def, name, params)
            }
            fn root_module() -> x::PluginModRef {
                use x::PrefixTypeTrait;
                x::PluginMod {
                    manifest,
                    create_learner,
                    load_model,
                    create_compressor,
                    create_decomposer,
                }
                .leak_into_prefix()
            }
            extern "C" fn erased_root_module() -> x::RootModuleResult {
                x::__call_root_module_loader(root_module)
            }

            // The symbol abi_stable's loader looks up; its name is checked
            // against abi_stable's own constant in tessera-core's tests.
            // SAFETY: `erased_root_module` returns the `PluginModRef` this
            // header is declared with.
            #[allow(unsafe_code, non_upper_case_globals)]
            #[unsafe(no_mangle)]
            pub static _1as_0lib_1header_0root_bmodule_bloader: x::LibHeader = unsafe {
                x::LibHeader::from_constructor::<x::PluginModRef>(
                    erased_root_module,
                    x::CheckTypeLayout::Yes,
                )
            };
        }
    };
}
