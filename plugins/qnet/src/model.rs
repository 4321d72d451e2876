//! The quantized network as a model: prediction in blocks of rows across
//! the call's thread budget, as the mlp model predicts, the summary, the
//! bytes and the exchange form.

use std::sync::atomic::{AtomicBool, Ordering};

use serde_json::{Value, json};
use tessera_core::{
    HostContextRef, Matrix, MatrixRef, PluginError, Task,
    ir::{Activation, ModelIr},
    plugin::{ModelImpl, for_row_blocks_from},
};

use crate::{infer::Plan, math::argmax, network::QuantizedNetwork};

/// Rows per block of a batch prediction.
pub const BLOCK: usize = 128;
/// Fewer rows than this are predicted on the caller's thread alone:
/// waking other threads would cost more than it saves.
const PARALLEL_ROWS: usize = 1024;

/// A quantized network that predicts.
#[derive(Clone, Debug, PartialEq)]
pub struct QuantizedModel {
    q: QuantizedNetwork,
    plan: Plan,
    task: Task,
}

impl QuantizedModel {
    /// Wraps `q`: classification with `n_classes` classes (one logistic
    /// output for two classes, else one output per class), or regression
    /// with one target per output.
    ///
    /// # Errors
    /// A classifier whose outputs do not match its classes.
    pub fn new(q: QuantizedNetwork) -> Result<Self, PluginError> {
        let k = q.n_outputs();
        let task = match q.n_classes() {
            0 => Task::regression_targets(k as u32),
            c => {
                if k != c as usize && !(c == 2 && k == 1) {
                    return Err(PluginError::corrupt(format!(
                        "quantized network: {k} outputs for {c} classes"
                    )));
                }
                Task::classification(c)
            }
        };
        let plan = Plan::new(&q);
        Ok(Self { q, plan, task })
    }

    /// The network.
    pub fn network(&self) -> &QuantizedNetwork {
        &self.q
    }

    /// The output layer's values for every row of `x` (`rows x
    /// outputs`), after its activation when `activate`.
    ///
    /// # Errors
    /// The wrong column count, a missing value the network cannot fill,
    /// or cancellation.
    pub fn outputs(
        &self,
        ctx: &HostContextRef<'_>,
        x: MatrixRef<'_>,
        activate: bool,
    ) -> Result<Vec<f32>, PluginError> {
        let p = self.plan.features();
        x.check(p)?;
        let k = self.plan.outputs();
        let mut out = vec![0.0; x.rows() * k];
        // Each block reports a missing value it cannot fill; the error is
        // built afterwards, so that the common case scans nothing twice.
        let missing = AtomicBool::new(false);
        let run = |xb: &[f32], ob: &mut [f32]| {
            if self.plan.block(xb, ob, activate) {
                missing.store(true, Ordering::Relaxed);
            }
        };
        for_row_blocks_from(ctx, PARALLEL_ROWS, x.as_slice(), p, &mut out, k, BLOCK, run)?;
        if missing.load(Ordering::Relaxed) {
            let at = x
                .as_slice()
                .iter()
                .position(|v| !v.is_finite())
                .unwrap_or(0);
            return Err(PluginError::input(format!(
                "quantized network: row {} (counting data rows from 0) has a missing or \
                 infinite value in column {}, and the network has no fill values",
                at / p,
                at % p
            )));
        }
        Ok(out)
    }
}

impl ModelImpl for QuantizedModel {
    fn task(&self) -> Task {
        self.task
    }

    fn n_features(&self) -> usize {
        self.plan.features()
    }

    fn predict(&self, ctx: &HostContextRef<'_>, x: MatrixRef<'_>) -> Result<Vec<f32>, PluginError> {
        if !self.task.is_classification() {
            return self.outputs(ctx, x, true);
        }
        // Softmax and the logistic function keep the order of their
        // inputs, so the class is read off the sums and the activation is
        // skipped (a logistic output is above 0.5 exactly when its input
        // is above 0).
        let k = self.plan.outputs();
        let skip = match self.plan.last_activation() {
            Activation::Softmax => k > 1,
            Activation::Logistic => true,
            _ => false,
        };
        let out = self.outputs(ctx, x, !skip)?;
        let cut = if skip { 0.0 } else { 0.5 };
        Ok(if k == 1 {
            out.iter()
                .map(|&v| if v > cut { 1.0 } else { 0.0 })
                .collect()
        } else {
            out.chunks_exact(k).map(|o| argmax(o) as f32).collect()
        })
    }

    fn predict_proba(
        &self,
        ctx: &HostContextRef<'_>,
        x: MatrixRef<'_>,
    ) -> Result<Matrix, PluginError> {
        if !self.task.is_classification() {
            return Err(PluginError::unsupported(
                "a regression quantized network does not predict probabilities",
            ));
        }
        let out = self.outputs(ctx, x, true)?;
        if self.plan.outputs() == 1 {
            let proba = out.iter().flat_map(|&p| [1.0 - p, p]).collect();
            Ok(Matrix::new(proba, x.rows(), 2))
        } else {
            let k = self.plan.outputs();
            Ok(Matrix::new(out, x.rows(), k))
        }
    }

    fn describe(&self) -> Value {
        let mut d = self.q.describe();
        d["model"] = json!(crate::FAMILY);
        d["task"] = json!(self.task.name());
        d
    }

    fn to_bytes(&self) -> Result<Vec<u8>, PluginError> {
        self.q.to_bytes()
    }

    fn to_ir(&self) -> Option<ModelIr> {
        Some(ModelIr::Network(self.q.dequantize()))
    }
}

/// Reads a quantized network's bytes back as a model: the `load` of the
/// [`FAMILY`](crate::FAMILY) model form.
///
/// # Errors
/// As [`QuantizedNetwork::from_bytes`] and [`QuantizedModel::new`].
pub fn load(bytes: &[u8], _ctx: &HostContextRef<'_>) -> Result<Box<dyn ModelImpl>, PluginError> {
    Ok(Box::new(QuantizedModel::new(
        QuantizedNetwork::from_bytes(bytes)?,
    )?))
}
