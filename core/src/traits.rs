//! The component interfaces: learners, models, compressors, decomposers.
//!
//! These are `#[sabi_trait]` objects. Plugin authors normally do not
//! implement them by hand: they implement the plain traits in
//! [`crate::plugin`], whose adapters implement these and catch panics.
//! New methods are only ever appended after the `last_prefix_field` one.

use abi_stable::{
    StableAbi, sabi_trait,
    std_types::{RBox, ROption, RResult, RString, RVec},
};

use crate::{
    context::HostContextRef,
    data::{CompressData, Matrix, MatrixRef, Task, TrainData},
    error::PluginError,
    ir::ModelIr,
};

/// A configured learning algorithm: parameters already checked, ready to fit.
#[sabi_trait]
pub trait Learner: Send + Sync {
    /// The component name, e.g. `random_forest`.
    fn component(&self) -> RString;

    /// Trains a model on `data`.
    ///
    /// # Errors
    /// Invalid data, cancellation, or a caught panic.
    #[sabi(last_prefix_field)]
    fn fit(&self, ctx: HostContextRef<'_>, data: TrainData<'_>) -> RResult<ModelBox, PluginError>;
}

/// An owned learner object.
pub type LearnerBox = Learner_TO<'static, RBox<()>>;

/// A trained model.
#[sabi_trait]
pub trait Model: Send + Sync {
    /// The component that trained it (and that can load it again).
    fn component(&self) -> RString;

    /// Regression, or classification with the number of classes.
    fn task(&self) -> Task;

    /// Number of feature columns `predict` expects.
    fn n_features(&self) -> u64;

    /// One prediction per row: the class index (as `f32`) for classifiers,
    /// the value for regressors.
    ///
    /// # Errors
    /// Wrong column count, cancellation, or a caught panic.
    fn predict(&self, ctx: HostContextRef<'_>, x: MatrixRef<'_>)
    -> RResult<RVec<f32>, PluginError>;

    /// Class probabilities, `rows x n_classes`. Regressors return
    /// [`ErrorKind::UNSUPPORTED`](crate::ErrorKind::UNSUPPORTED).
    ///
    /// # Errors
    /// As [`Model::predict`].
    fn predict_proba(
        &self,
        ctx: HostContextRef<'_>,
        x: MatrixRef<'_>,
    ) -> RResult<Matrix, PluginError>;

    /// A JSON object summarising the model (sizes, parameters, importances).
    fn describe(&self) -> RString;

    /// The plugin's own serialized form, read back by the plugin's
    /// `load_model`.
    ///
    /// # Errors
    /// A caught panic.
    fn to_bytes(&self) -> RResult<RVec<u8>, PluginError>;

    /// The model in the shared exchange form, when it has one.
    #[sabi(last_prefix_field)]
    fn to_ir(&self) -> ROption<ModelIr>;
}

/// An owned model object.
pub type ModelBox = Model_TO<'static, RBox<()>>;

/// Turns a model into a smaller or faster one (pruning, quantization).
///
/// Compressors work on the exchange form ([`ModelIr`]), so one compressor
/// serves every plugin whose models expose it.
#[sabi_trait]
pub trait Compressor: Send + Sync {
    /// The component name, e.g. `quantize`.
    fn component(&self) -> RString;

    /// Returns the compressed model. `data` holds the rows the user gave,
    /// if any: calibration and fine-tuning use its training rows, choices
    /// that keep a metric (greedy tree selection) its evaluation rows.
    ///
    /// # Errors
    /// A model family the compressor does not handle, data it needs and
    /// did not get, or a caught panic.
    #[sabi(last_prefix_field)]
    fn compress(
        &self,
        ctx: HostContextRef<'_>,
        model: ModelIr,
        data: CompressData<'_>,
    ) -> RResult<ModelIr, PluginError>;
}

/// An owned compressor object.
pub type CompressorBox = Compressor_TO<'static, RBox<()>>;

/// One part of a decomposed model.
#[repr(C)]
#[derive(StableAbi, Clone, Debug)]
pub struct SubModel {
    /// A name unique among the parts, e.g. `shard_0`.
    pub name: RString,
    /// The part itself.
    pub model: ModelIr,
    /// How this part's output joins the others' (e.g. `sum`, `stage`,
    /// `class:3`); the decomposer documents its values.
    pub role: RString,
}

/// Splits a model into sub-models that together give the same answer
/// (ensemble shards, network stages, one-vs-rest).
#[sabi_trait]
pub trait Decomposer: Send + Sync {
    /// The component name, e.g. `shard`.
    fn component(&self) -> RString;

    /// Returns the parts, in the order they combine.
    ///
    /// # Errors
    /// A model family the decomposer does not handle, or a caught panic.
    #[sabi(last_prefix_field)]
    fn decompose(
        &self,
        ctx: HostContextRef<'_>,
        model: ModelIr,
    ) -> RResult<RVec<SubModel>, PluginError>;
}

/// An owned decomposer object.
pub type DecomposerBox = Decomposer_TO<'static, RBox<()>>;
