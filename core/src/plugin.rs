//! What plugin authors use: plain Rust traits for their algorithms, adapters
//! that turn them into ABI objects, panic containment, the thread-budget
//! helpers, and [`export_plugin!`](crate::export_plugin).
//!
//! A plugin writes a function returning a [`PluginDef`] and calls
//! `tessera_core::export_plugin!(that_function);` once in its `lib.rs`.

use std::{
    any::Any,
    panic::{AssertUnwindSafe, catch_unwind},
};

use abi_stable::{
    RRef,
    sabi_trait::TD_Opaque,
    std_types::{RBox, ROption, RResult, RSlice, RStr, RString, RVec},
};

use crate::{
    context::{HostContext, HostContext_TO, HostContextRef},
    data::{Matrix, MatrixRef, Task, TrainData},
    error::PluginError,
    ir::ModelIr,
    manifest::{ComponentInfo, ComponentKind, Manifest},
    params::{self, ParamSpec, Params},
    traits::{
        Compressor, Compressor_TO, CompressorBox, Decomposer, Decomposer_TO, DecomposerBox,
        Learner, Learner_TO, LearnerBox, Model, Model_TO, ModelBox, SubModel,
    },
};

/// A learner, written as plain Rust.
pub trait LearnerImpl: Send + Sync + 'static {
    /// Trains a model. `data` has already passed [`TrainData::validate`].
    ///
    /// # Errors
    /// Anything the algorithm cannot handle, or cancellation.
    fn fit(
        &self,
        ctx: &HostContextRef<'_>,
        data: &TrainData<'_>,
    ) -> Result<Box<dyn ModelImpl>, PluginError>;
}

/// A trained model, written as plain Rust.
pub trait ModelImpl: Send + Sync + 'static {
    /// Regression or classification.
    fn task(&self) -> Task;
    /// Number of feature columns expected.
    fn n_features(&self) -> usize;
    /// One prediction per row (class index for classifiers). `x` has the
    /// right column count already.
    ///
    /// # Errors
    /// Cancellation or internal failure.
    fn predict(&self, ctx: &HostContextRef<'_>, x: MatrixRef<'_>) -> Result<Vec<f32>, PluginError>;
    /// Class probabilities, `rows x n_classes`.
    ///
    /// # Errors
    /// Unsupported for regressors (the default).
    fn predict_proba(
        &self,
        _ctx: &HostContextRef<'_>,
        _x: MatrixRef<'_>,
    ) -> Result<Matrix, PluginError> {
        Err(PluginError::unsupported(
            "this model does not predict probabilities",
        ))
    }
    /// A JSON summary.
    fn describe(&self) -> serde_json::Value;
    /// The serialized model.
    ///
    /// # Errors
    /// Internal failure.
    fn to_bytes(&self) -> Result<Vec<u8>, PluginError>;
    /// The exchange form, where the model has one.
    fn to_ir(&self) -> Option<ModelIr> {
        None
    }
}

/// A compressor, written as plain Rust.
pub trait CompressorImpl: Send + Sync + 'static {
    /// Compresses `model`.
    ///
    /// # Errors
    /// A model family it cannot handle.
    fn compress(&self, ctx: &HostContextRef<'_>, model: ModelIr) -> Result<ModelIr, PluginError>;
}

/// A decomposer, written as plain Rust.
pub trait DecomposerImpl: Send + Sync + 'static {
    /// Splits `model` into parts.
    ///
    /// # Errors
    /// A model family it cannot handle.
    fn decompose(
        &self,
        ctx: &HostContextRef<'_>,
        model: ModelIr,
    ) -> Result<Vec<SubModel>, PluginError>;
}

/// Reads back a serialized model.
pub type LoadFn = fn(&[u8]) -> Result<Box<dyn ModelImpl>, PluginError>;

/// Declares one learner.
pub struct LearnerDef {
    /// Component name.
    pub name: &'static str,
    /// One line on what it does.
    pub description: &'static str,
    /// Its parameters.
    pub params: Vec<ParamSpec>,
    /// Builds the learner from checked parameters.
    pub create: fn(Params) -> Result<Box<dyn LearnerImpl>, PluginError>,
    /// Reads back a model written by [`ModelImpl::to_bytes`].
    pub load: LoadFn,
}

/// Declares one compressor.
pub struct CompressorDef {
    /// Component name.
    pub name: &'static str,
    /// One line on what it does.
    pub description: &'static str,
    /// Its parameters.
    pub params: Vec<ParamSpec>,
    /// Builds the compressor from checked parameters.
    pub create: fn(Params) -> Result<Box<dyn CompressorImpl>, PluginError>,
}

/// Declares one decomposer.
pub struct DecomposerDef {
    /// Component name.
    pub name: &'static str,
    /// One line on what it does.
    pub description: &'static str,
    /// Its parameters.
    pub params: Vec<ParamSpec>,
    /// Builds the decomposer from checked parameters.
    pub create: fn(Params) -> Result<Box<dyn DecomposerImpl>, PluginError>,
}

/// Everything a plugin provides.
pub struct PluginDef {
    /// The plugin's name (`forest`).
    pub name: &'static str,
    /// The plugin's version, usually `env!("CARGO_PKG_VERSION")`.
    pub version: &'static str,
    /// Its learners.
    pub learners: Vec<LearnerDef>,
    /// Its compressors.
    pub compressors: Vec<CompressorDef>,
    /// Its decomposers.
    pub decomposers: Vec<DecomposerDef>,
}

impl PluginDef {
    /// The manifest the host sees.
    pub fn manifest(&self) -> Manifest {
        let info = |kind, name: &str, description: &str, params: &[ParamSpec]| ComponentInfo {
            kind,
            name: name.into(),
            description: description.into(),
            params: params.iter().map(ParamSpec::info).collect(),
        };
        let mut components = Vec::new();
        for l in &self.learners {
            components.push(info(
                ComponentKind::Learner,
                l.name,
                l.description,
                &l.params,
            ));
        }
        for c in &self.compressors {
            components.push(info(
                ComponentKind::Compressor,
                c.name,
                c.description,
                &c.params,
            ));
        }
        for d in &self.decomposers {
            components.push(info(
                ComponentKind::Decomposer,
                d.name,
                d.description,
                &d.params,
            ));
        }
        Manifest {
            name: self.name.into(),
            version: self.version.into(),
            abi_version: crate::ABI_VERSION.into(),
            components: components.into(),
        }
    }

    /// Creates the learner `name` from JSON parameters.
    ///
    /// # Errors
    /// An unknown learner or bad parameters.
    pub fn create_learner(&self, name: &str, params_json: &str) -> Result<LearnerBox, PluginError> {
        let def = self
            .learners
            .iter()
            .find(|l| l.name == name)
            .ok_or_else(|| {
                unknown(
                    self.name,
                    "learner",
                    name,
                    self.learners.iter().map(|l| l.name),
                )
            })?;
        let p = params::parse(def.name, &def.params, params_json)?;
        let inner = (def.create)(p)?;
        Ok(learner_box(def.name, inner))
    }

    /// Reads back a model of learner `component`.
    ///
    /// # Errors
    /// An unknown component or unreadable bytes.
    pub fn load_model(&self, component: &str, bytes: &[u8]) -> Result<ModelBox, PluginError> {
        let def = self
            .learners
            .iter()
            .find(|l| l.name == component)
            .ok_or_else(|| {
                unknown(
                    self.name,
                    "learner",
                    component,
                    self.learners.iter().map(|l| l.name),
                )
            })?;
        Ok(model_box(def.name, (def.load)(bytes)?))
    }

    /// Creates the compressor `name` from JSON parameters.
    ///
    /// # Errors
    /// An unknown compressor or bad parameters.
    pub fn create_compressor(
        &self,
        name: &str,
        params_json: &str,
    ) -> Result<CompressorBox, PluginError> {
        let def = self
            .compressors
            .iter()
            .find(|c| c.name == name)
            .ok_or_else(|| {
                unknown(
                    self.name,
                    "compressor",
                    name,
                    self.compressors.iter().map(|c| c.name),
                )
            })?;
        let p = params::parse(def.name, &def.params, params_json)?;
        let inner = (def.create)(p)?;
        Ok(Compressor_TO::from_value(
            CompressorAdapter {
                name: def.name,
                inner,
            },
            TD_Opaque,
        ))
    }

    /// Creates the decomposer `name` from JSON parameters.
    ///
    /// # Errors
    /// An unknown decomposer or bad parameters.
    pub fn create_decomposer(
        &self,
        name: &str,
        params_json: &str,
    ) -> Result<DecomposerBox, PluginError> {
        let def = self
            .decomposers
            .iter()
            .find(|d| d.name == name)
            .ok_or_else(|| {
                unknown(
                    self.name,
                    "decomposer",
                    name,
                    self.decomposers.iter().map(|d| d.name),
                )
            })?;
        let p = params::parse(def.name, &def.params, params_json)?;
        let inner = (def.create)(p)?;
        Ok(Decomposer_TO::from_value(
            DecomposerAdapter {
                name: def.name,
                inner,
            },
            TD_Opaque,
        ))
    }
}

fn unknown<'a>(
    plugin: &str,
    kind: &str,
    name: &str,
    known: impl Iterator<Item = &'a str>,
) -> PluginError {
    let known: Vec<&str> = known.collect();
    PluginError::unsupported(format!(
        "plugin `{plugin}` has no {kind} `{name}` (it has: {})",
        if known.is_empty() {
            "none".to_string()
        } else {
            known.join(", ")
        }
    ))
}

/// Wraps a plain learner as an ABI object.
pub fn learner_box(name: &'static str, inner: Box<dyn LearnerImpl>) -> LearnerBox {
    Learner_TO::from_value(LearnerAdapter { name, inner }, TD_Opaque)
}

/// Wraps a plain model as an ABI object.
pub fn model_box(name: &'static str, inner: Box<dyn ModelImpl>) -> ModelBox {
    Model_TO::from_value(ModelAdapter { name, inner }, TD_Opaque)
}

/// Runs `f`, turning a panic into a [`PluginError`] of kind
/// [`PANIC`](crate::ErrorKind::PANIC). Every call across the boundary goes
/// through this, so no panic ever reaches the host.
pub fn guard<T>(f: impl FnOnce() -> Result<T, PluginError>) -> RResult<T, PluginError> {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(r) => r.into(),
        Err(payload) => RResult::RErr(PluginError::new(
            crate::ErrorKind::PANIC,
            format!("plugin panicked: {}", panic_message(&*payload)),
        )),
    }
}

fn panic_message(payload: &(dyn Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "(no message)".to_string()
    }
}

struct LearnerAdapter {
    name: &'static str,
    inner: Box<dyn LearnerImpl>,
}

impl Learner for LearnerAdapter {
    fn component(&self) -> RString {
        self.name.into()
    }

    fn fit(&self, ctx: HostContextRef<'_>, data: TrainData<'_>) -> RResult<ModelBox, PluginError> {
        guard(|| {
            data.validate()?;
            let model = self.inner.fit(&ctx, &data)?;
            Ok(model_box(self.name, model))
        })
    }
}

struct ModelAdapter {
    name: &'static str,
    inner: Box<dyn ModelImpl>,
}

impl Model for ModelAdapter {
    fn component(&self) -> RString {
        self.name.into()
    }

    fn task(&self) -> Task {
        self.inner.task()
    }

    fn n_features(&self) -> u64 {
        self.inner.n_features() as u64
    }

    fn predict(
        &self,
        ctx: HostContextRef<'_>,
        x: MatrixRef<'_>,
    ) -> RResult<RVec<f32>, PluginError> {
        guard(|| {
            x.check(self.inner.n_features())?;
            Ok(self.inner.predict(&ctx, x)?.into())
        })
    }

    fn predict_proba(
        &self,
        ctx: HostContextRef<'_>,
        x: MatrixRef<'_>,
    ) -> RResult<Matrix, PluginError> {
        guard(|| {
            x.check(self.inner.n_features())?;
            self.inner.predict_proba(&ctx, x)
        })
    }

    fn describe(&self) -> RString {
        match guard(|| Ok(self.inner.describe().to_string())) {
            RResult::ROk(s) => s.into(),
            RResult::RErr(e) => serde_json::json!({ "error": e.message.as_str() })
                .to_string()
                .into(),
        }
    }

    fn to_bytes(&self) -> RResult<RVec<u8>, PluginError> {
        guard(|| Ok(self.inner.to_bytes()?.into()))
    }

    fn to_ir(&self) -> ROption<ModelIr> {
        match guard(|| Ok(self.inner.to_ir())) {
            RResult::ROk(ir) => ir.into(),
            RResult::RErr(_) => ROption::RNone,
        }
    }
}

struct CompressorAdapter {
    name: &'static str,
    inner: Box<dyn CompressorImpl>,
}

impl Compressor for CompressorAdapter {
    fn component(&self) -> RString {
        self.name.into()
    }

    fn compress(&self, ctx: HostContextRef<'_>, model: ModelIr) -> RResult<ModelIr, PluginError> {
        guard(|| self.inner.compress(&ctx, model))
    }
}

struct DecomposerAdapter {
    name: &'static str,
    inner: Box<dyn DecomposerImpl>,
}

impl Decomposer for DecomposerAdapter {
    fn component(&self) -> RString {
        self.name.into()
    }

    fn decompose(
        &self,
        ctx: HostContextRef<'_>,
        model: ModelIr,
    ) -> RResult<RVec<SubModel>, PluginError> {
        guard(|| Ok(self.inner.decompose(&ctx, model)?.into()))
    }
}

/// Runs `f` inside a rayon pool of exactly `threads` threads built for this
/// call. Plugins use rayon only inside such a pool, never the global one: a
/// fresh pool is never blocked by the caller's threads, which is what makes
/// nesting learners across plugins deadlock-free.
///
/// # Errors
/// When the operating system refuses to start the threads.
pub fn with_thread_budget<R: Send>(
    threads: usize,
    f: impl FnOnce() -> R + Send,
) -> Result<R, PluginError> {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads.max(1))
        .thread_name(|i| format!("tessera-worker-{i}"))
        .build()
        .map_err(|e| {
            PluginError::internal(format!("cannot start {threads} worker threads: {e}"))
        })?;
    Ok(pool.install(f))
}

/// A context that forwards to a parent but reports its own thread budget and,
/// optionally, no progress. Meta-learners hand one to each child learner so
/// the children share the parent's budget instead of multiplying it.
pub struct SubContext<'a, 'p> {
    parent: &'a HostContextRef<'p>,
    threads: u32,
    forward_progress: bool,
}

impl<'a, 'p> SubContext<'a, 'p> {
    /// A child context with `threads` threads that does not forward progress
    /// (the parent reports its own).
    pub fn new(parent: &'a HostContextRef<'p>, threads: u32) -> Self {
        Self {
            parent,
            threads: threads.max(1),
            forward_progress: false,
        }
    }

    /// Forward the child's progress reports to the parent.
    pub fn with_progress(mut self) -> Self {
        self.forward_progress = true;
        self
    }

    /// Borrows this context as a [`HostContextRef`].
    pub fn as_ref(&self) -> HostContextRef<'_> {
        HostContext_TO::from_ptr(RRef::new(self), TD_Opaque)
    }
}

impl HostContext for SubContext<'_, '_> {
    fn threads(&self) -> u32 {
        self.threads
    }
    fn is_cancelled(&self) -> bool {
        self.parent.is_cancelled()
    }
    fn progress(&self, done: u64, total: u64) {
        if self.forward_progress {
            self.parent.progress(done, total);
        }
    }
    fn log(&self, level: u8, message: RStr<'_>) {
        self.parent.log(level, message);
    }
    fn create_learner(&self, name: RStr<'_>, params: RStr<'_>) -> RResult<LearnerBox, PluginError> {
        self.parent.create_learner(name, params)
    }
}

#[doc(hidden)]
pub mod __export {
    //! Support for [`export_plugin!`](crate::export_plugin); not a public API.
    pub use super::*;
    pub use crate::module::{PluginMod, PluginModRef};
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
    ) -> RResult<ModelBox, PluginError> {
        guard(|| def().load_model(component.as_str(), bytes.as_slice()))
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
    pub fn boxed<T>(v: T) -> RBox<T> {
        RBox::new(v)
    }
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
            use $crate::plugin::__export as x;

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
            ) -> RResult<$crate::ModelBox, $crate::PluginError> {
                x::load_model(def, component, bytes)
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
