//! [`QuantizedModel`]: quantized trees as a tessera model.

use serde_json::{Value, json};
use tessera_core::{
    HostContextRef, Matrix, MatrixRef, PluginError, Task, ir::ModelIr, plugin::ModelImpl,
};

use crate::{
    predict::{Inference, Predictor},
    quantize::QuantizedTrees,
};

/// Quantized trees, compiled for prediction. It behaves as
/// `tessera_engine::IrModel` over the
/// [dequantized](QuantizedTrees::dequantize) ensemble: class indices (as
/// `f32`) or values from `predict`, probabilities through the link, and
/// that ensemble as its exchange form.
#[derive(Clone, Debug)]
pub struct QuantizedModel {
    trees: QuantizedTrees,
    predictor: Predictor,
}

impl QuantizedModel {
    /// Compiles `q`: for walks on binned rows, or, for ensembles of small
    /// trees that `tessera_engine` scans rather than walks, for that
    /// engine on the [dequantized](QuantizedTrees::dequantize) ensemble
    /// (the same answers; the scan is faster there). `describe` says which
    /// (`inference`).
    ///
    /// # Errors
    /// More than 2^24 features or a tree of more than 2^24 nodes.
    pub fn new(q: QuantizedTrees) -> Result<Self, PluginError> {
        Self::with_inference(q, Inference::Auto)
    }

    /// Compiles `q` to predict as `inference` says.
    ///
    /// # Errors
    /// As [`QuantizedModel::new`].
    pub fn with_inference(q: QuantizedTrees, inference: Inference) -> Result<Self, PluginError> {
        let predictor = Predictor::new(&q, inference)?;
        Ok(Self {
            trees: q,
            predictor,
        })
    }

    /// The quantized trees.
    pub fn trees(&self) -> &QuantizedTrees {
        &self.trees
    }

    /// Raw outputs (before the link) of the rows of `x`, `n_outputs` per
    /// row, in parallel within `ctx`'s thread budget.
    ///
    /// # Errors
    /// A width that is not `n_features`, cancellation, or no threads.
    pub fn raw(&self, ctx: &HostContextRef<'_>, x: MatrixRef<'_>) -> Result<Vec<f64>, PluginError> {
        self.predictor.raw(ctx, x)
    }

    /// Raw outputs of one row into `out` (`n_outputs` values), on this
    /// thread, with no thread hand-off; equal to the row's in a batch.
    ///
    /// # Errors
    /// `row` or `out` of the wrong length.
    pub fn raw_row(&self, row: &[f32], out: &mut [f64]) -> Result<(), PluginError> {
        self.predictor.check_width(row.len())?;
        if out.len() != self.trees.n_outputs as usize {
            return Err(PluginError::input(format!(
                "the model has {} outputs, the output row holds {}",
                self.trees.n_outputs,
                out.len()
            )));
        }
        self.predictor.raw_row(row, out);
        Ok(())
    }
}

impl ModelImpl for QuantizedModel {
    fn task(&self) -> Task {
        match self.predictor.n_classes() {
            0 => Task::regression_targets(self.trees.n_outputs),
            c => Task::classification(c as u32),
        }
    }

    fn n_features(&self) -> usize {
        self.predictor.n_features()
    }

    fn predict(&self, ctx: &HostContextRef<'_>, x: MatrixRef<'_>) -> Result<Vec<f32>, PluginError> {
        Ok(self.predictor.labels(&self.predictor.raw(ctx, x)?))
    }

    fn predict_proba(
        &self,
        ctx: &HostContextRef<'_>,
        x: MatrixRef<'_>,
    ) -> Result<Matrix, PluginError> {
        let c = self.predictor.n_classes();
        if c == 0 {
            return Err(PluginError::unsupported(
                "a regression model does not predict probabilities",
            ));
        }
        let proba = self.predictor.proba(&self.predictor.raw(ctx, x)?);
        Ok(Matrix::new(proba, x.rows(), c))
    }

    fn describe(&self) -> Value {
        let mut d = self.trees.describe();
        let (bytes, depth) = self.predictor.size_and_depth();
        if let Value::Object(m) = &mut d {
            m.insert("task".into(), json!(self.task().name()));
            m.insert("max_depth".into(), json!(depth));
            m.insert("compiled_bytes".into(), json!(bytes));
            m.insert("inference".into(), json!(self.predictor.inference()));
        }
        d
    }

    fn to_bytes(&self) -> Result<Vec<u8>, PluginError> {
        self.trees.to_bytes()
    }

    fn to_ir(&self) -> Option<ModelIr> {
        Some(ModelIr::Trees(self.trees.dequantize()))
    }
}
