//! What plugin authors use: plain Rust traits for their algorithms, adapters
//! that turn them into ABI objects, panic containment, the thread-budget
//! helpers, and [`export_plugin!`](crate::export_plugin).
//!
//! A plugin writes a function returning a [`PluginDef`] and calls
//! `tessera_core::export_plugin!(that_function);` once in its `lib.rs`.
//!
//! * this module: the plain traits and the [`PluginDef`] that declares them;
//! * `adapt`: the ABI objects wrapping them, and [`guard`];
//! * `threads`: [`with_thread_budget`] and [`SubContext`];
//! * [`members`]: what meta-learners (bagging, boosting) share about their
//!   members: the `estimator` parameters, base learners created and seeded
//!   through the host, member models saved and loaded through their own
//!   plugins;
//! * [`seeds`]: seed derivation and a small random stream;
//! * `export`: support for [`export_plugin!`](crate::export_plugin).

mod adapt;
#[doc(hidden)]
pub mod export;
pub mod members;
pub mod seeds;
mod threads;

pub use adapt::{guard, learner_box, model_box};
pub use threads::{SubContext, for_row_blocks, for_row_blocks_from, with_thread_budget};

use crate::{
    context::HostContextRef,
    data::{CompressData, Matrix, MatrixRef, Task, TrainData},
    error::PluginError,
    ir::ModelIr,
    manifest::{ComponentInfo, ComponentKind, Manifest},
    params::{self, ParamSpec, Params},
    traits::{CompressorBox, DecomposerBox, LearnerBox, ModelBox, SubModel},
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

    /// Whether it learns several regression targets at once
    /// ([`Task::regression_targets`]). The default is no: the adapter
    /// then refuses such data before `fit` is called.
    fn multi_output(&self) -> bool {
        false
    }
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
    /// Compresses `model`, with the rows in `data` where it needs any.
    ///
    /// # Errors
    /// A model family it cannot handle, or data it needs and lacks.
    fn compress(
        &self,
        ctx: &HostContextRef<'_>,
        model: ModelIr,
        data: &CompressData<'_>,
    ) -> Result<ModelIr, PluginError>;
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
///
/// The context lets a model made of other plugins' models (bagging) load
/// its members through the host.
pub type LoadFn = fn(&[u8], &HostContextRef<'_>) -> Result<Box<dyn ModelImpl>, PluginError>;

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

/// Declares a model form a plugin loads and runs but does not train: what
/// its compressors produce (a quantized ensemble, a sparse network).
///
/// A compressor returns such a model as [`ModelIr::Opaque`] whose
/// `family` is the form's name and whose bytes [`ModelFormDef::load`]
/// reads; the host saves those bytes as the model file's payload.
pub struct ModelFormDef {
    /// The form's name, also the `family` of its opaque exchange form.
    pub name: &'static str,
    /// One line on what it is.
    pub description: &'static str,
    /// Reads the bytes back.
    pub load: LoadFn,
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
    /// The model forms it loads without training them.
    pub models: Vec<ModelFormDef>,
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
        for m in &self.models {
            components.push(info(ComponentKind::Model, m.name, m.description, &[]));
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
        self.load_model_with(component, bytes, &crate::NullContext::default().as_ref())
    }

    /// Reads back a model of learner `component`, with `ctx` for loading
    /// member models of other plugins.
    ///
    /// # Errors
    /// An unknown component or unreadable bytes.
    pub fn load_model_with(
        &self,
        component: &str,
        bytes: &[u8],
        ctx: &HostContextRef<'_>,
    ) -> Result<ModelBox, PluginError> {
        let found = (self.learners.iter().map(|l| (l.name, l.load)))
            .chain(self.models.iter().map(|m| (m.name, m.load)))
            .find(|(name, _)| *name == component);
        let Some((name, load)) = found else {
            return Err(unknown(
                self.name,
                "learner or model form",
                component,
                (self.learners.iter().map(|l| l.name)).chain(self.models.iter().map(|m| m.name)),
            ));
        };
        Ok(model_box(name, load(bytes, ctx)?))
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
        Ok(adapt::compressor_box(def.name, inner))
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
        Ok(adapt::decomposer_box(def.name, inner))
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
