//! The trained network: prediction (blocks of rows across the thread
//! budget; one row on the caller's thread with no allocation but the
//! result), the summary, the exchange form, and the model bytes.
//!
//! Bytes: magic `TSML`, version (u32), a JSON header (task, feature
//! names, hidden activation, learning curve, parameters; u32 length +
//! UTF-8), then the network in core's dense-network byte form (weights,
//! biases, activations and the input transformation).

use std::cell::RefCell;

use serde_json::{Value, json};
use tessera_core::{
    HostContextRef, Matrix, MatrixRef, PluginError, Task,
    bytes::{ByteReader, put_u32},
    ir::{DenseNetwork, ModelIr},
    plugin::{ModelImpl, for_row_blocks_from},
};

use crate::{loss::argmax, net::Net, params::LEARNER, scaling::Scaling};

const MAGIC: &[u8; 4] = b"TSML";
const VERSION: u32 = 1;
/// Rows per block of a batch prediction.
pub const BLOCK: usize = 128;
/// Fewer rows than this are predicted on the caller's thread alone.
const PARALLEL_ROWS: usize = 1024;

/// How training went.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct History {
    /// Training loss per epoch (L2 term included), as scikit-learn's
    /// `loss_curve_`.
    pub loss_curve: Vec<f64>,
    /// Validation score per epoch (accuracy or R²), when there were
    /// validation rows.
    pub validation_scores: Vec<f64>,
    /// Where they came from: `valid` (--valid), `split` (held out), or
    /// empty.
    pub valid_source: String,
    /// Lowest training loss (not stopping early).
    pub best_loss: Option<f64>,
    /// Best validation score (stopping early).
    pub best_validation_score: Option<f64>,
    /// The epoch of the best loss or score (1-based).
    pub best_epoch: usize,
    /// Epochs run.
    pub n_iter: usize,
    /// Whether training stopped before `max_iter`.
    pub stopped_early: bool,
    /// Training rows seen (scikit-learn's `t_`).
    pub samples: u64,
}

impl History {
    fn to_json(&self) -> Value {
        json!({
            "loss_curve": self.loss_curve,
            "validation_scores": self.validation_scores,
            "valid_source": self.valid_source,
            "best_loss": self.best_loss,
            "best_validation_score": self.best_validation_score,
            "best_epoch": self.best_epoch,
            "n_iter": self.n_iter,
            "stopped_early": self.stopped_early,
            "samples": self.samples,
        })
    }

    fn from_json(v: &Value) -> Self {
        let floats = |k: &str| -> Vec<f64> {
            v[k].as_array()
                .map(|a| a.iter().filter_map(Value::as_f64).collect())
                .unwrap_or_default()
        };
        Self {
            loss_curve: floats("loss_curve"),
            validation_scores: floats("validation_scores"),
            valid_source: v["valid_source"].as_str().unwrap_or("").into(),
            best_loss: v["best_loss"].as_f64(),
            best_validation_score: v["best_validation_score"].as_f64(),
            best_epoch: v["best_epoch"].as_u64().unwrap_or(0) as usize,
            n_iter: v["n_iter"].as_u64().unwrap_or(0) as usize,
            stopped_early: v["stopped_early"].as_bool().unwrap_or(false),
            samples: v["samples"].as_u64().unwrap_or(0),
        }
    }
}

/// A trained multilayer perceptron.
#[derive(Clone, Debug, PartialEq)]
pub struct MlpModel {
    net: Net,
    scaling: Scaling,
    task: Task,
    names: Vec<String>,
    history: History,
    params: Value,
}

thread_local! {
    /// Scratch for one block: scaled inputs and two activation buffers.
    static SCRATCH: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
}

impl MlpModel {
    /// Assembles a model.
    pub fn new(
        net: Net,
        scaling: Scaling,
        task: Task,
        names: Vec<String>,
        history: History,
        params: Value,
    ) -> Self {
        Self {
            net,
            scaling,
            task,
            names,
            history,
            params,
        }
    }

    /// The network.
    pub fn net(&self) -> &Net {
        &self.net
    }

    /// How training went.
    pub fn history(&self) -> &History {
        &self.history
    }

    /// A model from the exchange form (a network compressed or split
    /// elsewhere), with no training history.
    ///
    /// # Errors
    /// A network this plugin cannot run.
    pub fn from_ir(ir: &DenseNetwork) -> Result<Self, PluginError> {
        let net = Net::from_ir(ir)?;
        let task = if ir.n_classes > 0 {
            Task::classification(ir.n_classes)
        } else {
            Task::regression_targets(ir.n_outputs() as u32)
        };
        let expect = match ir.n_classes {
            0 => ir.n_outputs(),
            2 => 1,
            k => k as usize,
        };
        if net.n_outputs() != expect {
            return Err(PluginError::corrupt(format!(
                "dense network: {} outputs for {} classes",
                net.n_outputs(),
                ir.n_classes
            )));
        }
        Ok(Self::new(
            net,
            Scaling {
                mean: ir.input_mean.to_vec(),
                scale: ir.input_scale.to_vec(),
                fill: ir.input_fill.to_vec(),
            },
            task,
            (0..ir.n_features()).map(|j| format!("f{j}")).collect(),
            History::default(),
            Value::Null,
        ))
    }

    /// The output layer's values for every row of `x` (`rows x
    /// n_outputs`).
    ///
    /// # Errors
    /// A missing value with no fill, or cancellation.
    pub fn outputs(
        &self,
        ctx: &HostContextRef<'_>,
        x: MatrixRef<'_>,
    ) -> Result<Vec<f32>, PluginError> {
        let p = self.net.n_inputs();
        if let Some(m) = self.scaling.first_unfillable(x.as_slice(), p) {
            return Err(m.error(&self.names, "input"));
        }
        let k = self.net.n_outputs();
        let mut out = vec![0.0; x.rows() * k];
        for_row_blocks_from(
            ctx,
            PARALLEL_ROWS,
            x.as_slice(),
            p,
            &mut out,
            k,
            BLOCK,
            |xb, ob| self.block(xb, ob),
        )?;
        Ok(out)
    }

    /// Runs one block of raw rows (missing values already checked).
    fn block(&self, x: &[f32], out: &mut [f32]) {
        let p = self.net.n_inputs();
        let rows = x.len() / p;
        let w = self.net.max_width();
        SCRATCH.with_borrow_mut(|s| {
            let need = rows * (p + 2 * w);
            if s.len() < need {
                s.resize(need, 0.0);
            }
            let (input, rest) = s.split_at_mut(rows * p);
            let (mut a, rest) = rest.split_at_mut(rows * w);
            let mut b = &mut rest[..rows * w];
            // Checked by the caller: every missing value has a fill.
            self.scaling.rows_checked(x, input, p);
            let slots = self.net.slots();
            for (l, s) in slots.iter().enumerate() {
                let src: &[f32] = if l == 0 { input } else { &a[..rows * s.inputs] };
                self.net.layer(l, src, rows, &mut b[..rows * s.outputs]);
                std::mem::swap(&mut a, &mut b);
            }
            out.copy_from_slice(&a[..out.len()]);
        });
    }

    fn check_cols(&self, x: &MatrixRef<'_>) -> Result<(), PluginError> {
        x.check(self.net.n_inputs())
    }
}

impl ModelImpl for MlpModel {
    fn task(&self) -> Task {
        self.task
    }

    fn n_features(&self) -> usize {
        self.net.n_inputs()
    }

    fn predict(&self, ctx: &HostContextRef<'_>, x: MatrixRef<'_>) -> Result<Vec<f32>, PluginError> {
        self.check_cols(&x)?;
        let out = self.outputs(ctx, x)?;
        let k = self.net.n_outputs();
        Ok(match (self.task.is_classification(), k) {
            (false, _) => out,
            (true, 1) => out
                .iter()
                .map(|&p| if p > 0.5 { 1.0 } else { 0.0 })
                .collect(),
            (true, _) => out.chunks_exact(k).map(|o| argmax(o) as f32).collect(),
        })
    }

    fn predict_proba(
        &self,
        ctx: &HostContextRef<'_>,
        x: MatrixRef<'_>,
    ) -> Result<Matrix, PluginError> {
        if !self.task.is_classification() {
            return Err(PluginError::unsupported(
                "a regression mlp model does not predict probabilities",
            ));
        }
        self.check_cols(&x)?;
        let out = self.outputs(ctx, x)?;
        let k = self.task.n_classes as usize;
        if self.net.n_outputs() == 1 {
            let proba = out.iter().flat_map(|&p| [1.0 - p, p]).collect();
            Ok(Matrix::new(proba, x.rows(), 2))
        } else {
            Ok(Matrix::new(out, x.rows(), k))
        }
    }

    fn describe(&self) -> Value {
        let net = &self.net;
        let hidden = &net.widths[1..net.widths.len() - 1];
        let h = &self.history;
        json!({
            "model": LEARNER,
            "task": self.task.name(),
            "n_classes": if self.task.is_classification() { json!(self.task.n_classes) } else { Value::Null },
            "n_features": net.n_inputs(),
            "hidden_layer_sizes": hidden,
            "activation": net.hidden.name(),
            "out_activation": net.output.name(),
            "n_outputs": net.n_outputs(),
            "n_params": net.params.len(),
            "standardize": !self.scaling.mean.is_empty(),
            "impute": if self.scaling.fill.is_empty() { "none" } else { "mean" },
            "n_iter": h.n_iter,
            "stopped_early": h.stopped_early,
            "best_epoch": h.best_epoch,
            "best_loss": h.best_loss,
            "best_validation_score": h.best_validation_score,
            "learning_curve": {
                "train_loss": h.loss_curve,
                "valid_score": if h.validation_scores.is_empty() { Value::Null } else { json!(h.validation_scores) },
                "valid_source": if h.valid_source.is_empty() { Value::Null } else { json!(h.valid_source) },
            },
            "params": self.params,
        })
    }

    fn to_bytes(&self) -> Result<Vec<u8>, PluginError> {
        let header = json!({
            "task": self.task.name(),
            "n_classes": self.task.n_classes,
            "feature_names": self.names,
            "history": self.history.to_json(),
            "params": self.params,
        })
        .to_string();
        let net = self.ir().to_bytes()?;
        let mut out = Vec::with_capacity(16 + header.len() + net.len());
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&VERSION.to_le_bytes());
        put_u32(&mut out, header.len(), LEARNER, "header")?;
        out.extend_from_slice(header.as_bytes());
        out.extend_from_slice(&net);
        Ok(out)
    }

    fn to_ir(&self) -> Option<ModelIr> {
        Some(ModelIr::Network(self.ir()))
    }
}

impl MlpModel {
    /// The exchange form.
    pub fn ir(&self) -> DenseNetwork {
        let n_classes = if self.task.is_classification() {
            self.task.n_classes
        } else {
            0
        };
        let s = &self.scaling;
        self.net.to_ir(&s.mean, &s.scale, &s.fill, n_classes)
    }

    /// Reads a model back: this plugin's bytes, or a bare dense network
    /// in core's byte form.
    ///
    /// # Errors
    /// Damaged or foreign bytes.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, PluginError> {
        if bytes.starts_with(tessera_core::ir::NETWORK_MAGIC) {
            let (ir, used) = DenseNetwork::from_bytes(bytes)?;
            ByteReader::new(&bytes[used..], LEARNER).finish()?;
            return Self::from_ir(&ir);
        }
        let mut r = ByteReader::new(bytes, LEARNER);
        if r.take(4, "magic")? != MAGIC {
            return Err(r.corrupt("not an mlp model (bad magic bytes)"));
        }
        let version = r.u32("version")?;
        if version != VERSION {
            return Err(r.corrupt(format!(
                "format version {version}; this build reads version {VERSION}"
            )));
        }
        let header: Value = serde_json::from_str(r.text("header")?)
            .map_err(|e| r.corrupt(format!("header is not JSON: {e}")))?;
        let rest = r.take(r.left(), "network")?;
        let (ir, used) = DenseNetwork::from_bytes(rest)?;
        ByteReader::new(&rest[used..], LEARNER).finish()?;
        let mut m = Self::from_ir(&ir)?;
        if header["task"] == "classification" && !m.task.is_classification()
            || header["task"] == "regression" && m.task.is_classification()
        {
            return Err(r.corrupt("the header's task does not match the network"));
        }
        if let Some(names) = header["feature_names"].as_array() {
            if names.len() != m.names.len() {
                return Err(r.corrupt(format!(
                    "{} feature names for {} inputs",
                    names.len(),
                    m.names.len()
                )));
            }
            m.names = names
                .iter()
                .map(|n| n.as_str().unwrap_or("").to_string())
                .collect();
        }
        m.history = History::from_json(&header["history"]);
        m.params = header["params"].clone();
        Ok(m)
    }
}

/// The learner's `load`.
///
/// # Errors
/// As [`MlpModel::from_bytes`].
pub fn load(bytes: &[u8], _ctx: &HostContextRef<'_>) -> Result<Box<dyn ModelImpl>, PluginError> {
    Ok(Box::new(MlpModel::from_bytes(bytes)?))
}
