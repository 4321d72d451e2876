//! The ABI objects that wrap a plugin's plain Rust components, and the panic
//! guard every boundary call goes through.

use std::{
    any::Any,
    panic::{AssertUnwindSafe, catch_unwind},
};

use abi_stable::{
    sabi_trait::TD_Opaque,
    std_types::{ROption, RResult, RString, RVec},
};

use super::{CompressorImpl, DecomposerImpl, LearnerImpl, ModelImpl};
use crate::{
    context::HostContextRef,
    data::CompressData,
    data::{Matrix, MatrixRef, Task, TrainData},
    error::PluginError,
    ir::ModelIr,
    traits::{
        Compressor, Compressor_TO, CompressorBox, Decomposer, Decomposer_TO, DecomposerBox,
        Learner, Learner_TO, LearnerBox, Model, Model_TO, ModelBox, SubModel,
    },
};

/// Wraps a plain learner as an ABI object.
pub fn learner_box(name: &'static str, inner: Box<dyn LearnerImpl>) -> LearnerBox {
    Learner_TO::from_value(LearnerAdapter { name, inner }, TD_Opaque)
}

/// Wraps a plain model as an ABI object.
pub fn model_box(name: &'static str, inner: Box<dyn ModelImpl>) -> ModelBox {
    Model_TO::from_value(ModelAdapter { name, inner }, TD_Opaque)
}

/// Wraps a plain compressor as an ABI object.
pub fn compressor_box(name: &'static str, inner: Box<dyn CompressorImpl>) -> CompressorBox {
    Compressor_TO::from_value(CompressorAdapter { name, inner }, TD_Opaque)
}

/// Wraps a plain decomposer as an ABI object.
pub fn decomposer_box(name: &'static str, inner: Box<dyn DecomposerImpl>) -> DecomposerBox {
    Decomposer_TO::from_value(DecomposerAdapter { name, inner }, TD_Opaque)
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
            let targets = data.task.n_targets();
            if targets > 1 && !self.inner.multi_output() {
                return Err(PluginError::input(format!(
                    "`{}` learns one regression target, and the data has {targets}; give one \
                     target column",
                    self.name
                )));
            }
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

    fn compress(
        &self,
        ctx: HostContextRef<'_>,
        model: ModelIr,
        data: CompressData<'_>,
    ) -> RResult<ModelIr, PluginError> {
        guard(|| self.inner.compress(&ctx, model, &data))
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
