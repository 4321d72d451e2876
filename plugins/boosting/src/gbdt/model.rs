//! A trained gradient-boosting model: raw scores (base score plus the sum
//! of the trees), the link to probabilities, its summary and exchange form.

use std::sync::OnceLock;

use serde_json::{Value, json};
use tessera_core::{
    HostContextRef, Matrix, MatrixRef, PluginError, Task,
    ir::{self, Combine, ModelIr, TreeEnsemble},
    plugin::ModelImpl,
};
use tessera_engine::Engine;

use super::{loss::Loss, params::LossKind, serialize, tree::Tree};

/// What training recorded, for the summary.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct History {
    /// Training loss after each round (on a fixed sample of at most 10 000
    /// training rows).
    pub train_loss: Vec<f64>,
    /// Validation loss after each round, when there was validation data.
    pub valid_loss: Vec<f64>,
    /// Where the validation data came from: `"given"`, `"split"`, or
    /// empty for none.
    pub valid_source: String,
    /// Whether early stopping ended training before `n_estimators`.
    pub stopped_early: bool,
}

/// A trained model.
#[derive(Clone, Debug, PartialEq)]
pub struct GbdtModel {
    /// Regression or classification.
    pub task: Task,
    /// Feature columns.
    pub n_features: usize,
    /// The loss trained with.
    pub loss: Loss,
    /// Starting raw score per output.
    pub base: Vec<f64>,
    /// Trees, round after round, `loss.n_outputs` per round (tree
    /// `r * k + c` serves output `c`).
    pub trees: Vec<Tree>,
    /// Feature names.
    pub feature_names: Vec<String>,
    /// Summed split gain per feature.
    pub gain: Vec<f64>,
    /// Split count per feature.
    pub splits: Vec<u64>,
    /// The learning curve and how training ended.
    pub history: History,
    /// Parameters as given, resolved.
    pub params: Value,
    /// The trees compiled for prediction, built on first use.
    pub engine: OnceLock<Engine>,
}

impl GbdtModel {
    /// Rounds trained.
    pub fn n_rounds(&self) -> usize {
        self.trees.len() / self.loss.n_outputs.max(1)
    }

    /// The trees in exchange form.
    pub fn ensemble(&self) -> TreeEnsemble {
        let k = self.loss.n_outputs;
        TreeEnsemble {
            n_features: self.n_features as u32,
            n_outputs: k as u32,
            n_classes: if self.task.is_classification() {
                self.task.n_classes
            } else {
                0
            },
            combine: Combine::Sum,
            link: self.loss.link(),
            base_score: self
                .base
                .iter()
                .map(|&b| b as f32)
                .collect::<Vec<_>>()
                .into(),
            trees: self
                .trees
                .iter()
                .enumerate()
                .map(|(t, tree)| {
                    tree.to_ir(if k == 1 {
                        ir::Tree::ALL_OUTPUTS
                    } else {
                        (t % k) as u32
                    })
                })
                .collect::<Vec<_>>()
                .into(),
        }
    }

    /// The compiled trees (compiled on the first call).
    ///
    /// # Errors
    /// Trees the engine refuses (a damaged model).
    pub fn engine(&self) -> Result<&Engine, PluginError> {
        if let Some(e) = self.engine.get() {
            return Ok(e);
        }
        let e = Engine::new(&self.ensemble())?.with_base(&self.base);
        Ok(self.engine.get_or_init(|| e))
    }

    /// Raw scores of the rows of `x`, row-major, `n_outputs` per row.
    ///
    /// # Errors
    /// Cancellation, or no threads.
    pub fn raw(&self, ctx: &HostContextRef<'_>, x: MatrixRef<'_>) -> Result<Vec<f64>, PluginError> {
        self.engine()?.raw(ctx, x)
    }

    /// Importances per feature as `{name: value}`, normalised to sum 1
    /// (gain) or raw counts (split).
    fn importances(&self) -> Value {
        let total: f64 = self.gain.iter().sum();
        let gain: serde_json::Map<String, Value> = self
            .feature_names
            .iter()
            .zip(&self.gain)
            .map(|(n, g)| (n.clone(), json!(if total > 0.0 { g / total } else { 0.0 })))
            .collect();
        let split: serde_json::Map<String, Value> = self
            .feature_names
            .iter()
            .zip(&self.splits)
            .map(|(n, s)| (n.clone(), json!(s)))
            .collect();
        json!({"gain": gain, "split": split})
    }
}

impl ModelImpl for GbdtModel {
    fn task(&self) -> Task {
        self.task
    }

    fn n_features(&self) -> usize {
        self.n_features
    }

    fn predict(&self, ctx: &HostContextRef<'_>, x: MatrixRef<'_>) -> Result<Vec<f32>, PluginError> {
        let engine = self.engine()?;
        Ok(engine.labels(&engine.raw(ctx, x)?))
    }

    fn predict_proba(
        &self,
        ctx: &HostContextRef<'_>,
        x: MatrixRef<'_>,
    ) -> Result<Matrix, PluginError> {
        if !self.task.is_classification() {
            return Err(PluginError::unsupported(
                "a regression gradient_boosting model does not predict probabilities",
            ));
        }
        let engine = self.engine()?;
        let proba = engine.proba(&engine.raw(ctx, x)?);
        Ok(Matrix::new(proba, x.rows(), engine.n_proba()))
    }

    fn describe(&self) -> Value {
        let leaves: usize = self.trees.iter().map(Tree::n_leaves).sum();
        let h = &self.history;
        json!({
            "model": super::params::LEARNER,
            "task": self.task.name(),
            "n_classes": if self.task.is_classification() { json!(self.task.n_classes) } else { Value::Null },
            "n_features": self.n_features,
            "loss": self.loss.kind.name(),
            "quantile": match self.loss.kind { LossKind::Quantile(q) => json!(q), _ => Value::Null },
            "n_iter": self.n_rounds(),
            "n_trees": self.trees.len(),
            "trees_per_iteration": self.loss.n_outputs,
            "mean_leaves": leaves as f64 / self.trees.len().max(1) as f64,
            "base_score": self.base,
            "stopped_early": h.stopped_early,
            "learning_curve": {
                "train_loss": h.train_loss,
                "valid_loss": if h.valid_loss.is_empty() { Value::Null } else { json!(h.valid_loss) },
                "valid_source": if h.valid_source.is_empty() { Value::Null } else { json!(h.valid_source) },
            },
            "feature_importances": self.importances(),
            "params": self.params,
        })
    }

    fn to_bytes(&self) -> Result<Vec<u8>, PluginError> {
        Ok(serialize::to_bytes(self))
    }

    fn to_ir(&self) -> Option<ModelIr> {
        Some(ModelIr::Trees(self.ensemble()))
    }
}
