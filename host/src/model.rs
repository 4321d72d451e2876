//! A trained model together with what the host knows about it: its feature
//! names and class labels, so callers predict in their own terms.

use std::path::Path;

use anyhow::{Context, anyhow};
use tessera_core::{HostContextRef, Matrix, MatrixRef, ModelBox, PluginError};

use crate::{
    artifact::{Artifact, Header},
    data::Table,
    plugin::Registry,
};

/// A plugin model and its header.
pub struct LoadedModel {
    /// The header (names, labels, provenance).
    pub header: Header,
    /// The plugin's model object.
    pub model: ModelBox,
}

impl std::fmt::Debug for LoadedModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoadedModel")
            .field("header", &self.header)
            .finish()
    }
}

/// A plugin call failed; the plugin's error kind says whose fault it was.
#[derive(Debug, thiserror::Error)]
#[error("{context}: {error}")]
pub struct CallError {
    /// What was being done.
    pub context: String,
    /// What the plugin returned.
    pub error: PluginError,
}

impl CallError {
    /// The same error, its context naming the data file the call ran on.
    #[must_use]
    pub fn on(mut self, data: &std::path::Path) -> Self {
        self.context = format!("{} on {}", self.context, data.display());
        self
    }
}

impl LoadedModel {
    /// Reads a model file and hands its payload to the plugin that provides
    /// its component.
    ///
    /// # Errors
    /// An unreadable or damaged file, no plugin for its component, or the
    /// plugin refusing the payload.
    pub fn open(registry: &Registry, path: &Path) -> anyhow::Result<Self> {
        let artifact = Artifact::read(path)?;
        Self::from_artifact(registry, artifact)
            .with_context(|| format!("cannot load model {}", path.display()))
    }

    /// Loads an artifact already in memory.
    ///
    /// # Errors
    /// As [`LoadedModel::open`].
    pub fn from_artifact(registry: &Registry, artifact: Artifact) -> anyhow::Result<Self> {
        let h = &artifact.header;
        let provider = registry.model_provider(&h.component)?;
        if provider.manifest.name.as_str() != h.plugin {
            return Err(anyhow!(
                "the model was trained by plugin `{}`, but learner `{}` is now provided by plugin `{}` ({})",
                h.plugin,
                h.component,
                provider.manifest.name,
                provider.path.display()
            ));
        }
        let model = registry.load_model(&h.component, &artifact.payload)?;
        let n = model.n_features() as usize;
        if n != h.features.len() {
            return Err(anyhow!(
                "the header names {} features but the model expects {n}",
                h.features.len()
            ));
        }
        Ok(Self {
            header: artifact.header,
            model,
        })
    }

    /// Whether the model predicts class labels.
    pub fn is_classifier(&self) -> bool {
        !self.header.classes.is_empty()
    }

    /// The feature matrix for this model from `table`, columns picked by
    /// name.
    ///
    /// # Errors
    /// A missing column or a non-numeric cell.
    pub fn features_from(&self, table: &Table) -> Result<Vec<f32>, crate::data::DataError> {
        table.features(&self.header.features)
    }

    /// Raw predictions: class indices (as `f32`), or values (one per
    /// target per row, row-major, for a multi-output regression).
    ///
    /// # Errors
    /// The plugin's error, or an answer of the wrong length.
    pub fn predict(&self, ctx: HostContextRef<'_>, x: &[f32]) -> Result<Vec<f32>, CallError> {
        let m = self.matrix(x)?;
        let out = self
            .model
            .predict(ctx, m)
            .into_result()
            .map(|v| v.into_vec())
            .map_err(|error| self.call_error("predict", error))?;
        let per_row = self.values_per_row();
        if out.len() != m.rows() * per_row {
            return Err(self.call_error(
                "predict",
                PluginError::internal(format!(
                    "returned {} values for {} rows of {per_row} value(s)",
                    out.len(),
                    m.rows()
                )),
            ));
        }
        Ok(out)
    }

    /// The model's answer for the rows `x`: class probabilities
    /// (row-major, [`Header::answer_width`] per row) for a classifier,
    /// what `predict` gives otherwise.
    ///
    /// # Errors
    /// The plugin's error.
    pub fn answer(&self, ctx: HostContextRef<'_>, x: &[f32]) -> Result<Vec<f32>, CallError> {
        if self.is_classifier() {
            Ok(self.predict_proba(ctx, x)?.data.into_vec())
        } else {
            self.predict(ctx, x)
        }
    }

    /// Values `predict` gives per row: 1, or the number of targets of a
    /// multi-output regression.
    pub fn values_per_row(&self) -> usize {
        if self.is_classifier() {
            1
        } else {
            self.header.target_names().len()
        }
    }

    /// Class probabilities, `rows x n_classes`.
    ///
    /// # Errors
    /// The plugin's error (regressors have none).
    pub fn predict_proba(&self, ctx: HostContextRef<'_>, x: &[f32]) -> Result<Matrix, CallError> {
        let m = self.matrix(x)?;
        let out = self
            .model
            .predict_proba(ctx, m)
            .into_result()
            .map_err(|error| self.call_error("predict_proba", error))?;
        let rows = x.len() / self.header.features.len().max(1);
        if out.rows as usize != rows || out.cols as usize != self.header.classes.len() {
            return Err(self.call_error(
                "predict_proba",
                PluginError::internal(format!(
                    "returned {} x {} probabilities for {rows} rows and {} classes",
                    out.rows,
                    out.cols,
                    self.header.classes.len()
                )),
            ));
        }
        Ok(out)
    }

    /// The label for a raw prediction.
    pub fn label(&self, raw: f32) -> String {
        if self.is_classifier() {
            self.header
                .classes
                .get(raw as usize)
                .cloned()
                .unwrap_or_else(|| format!("{raw}"))
        } else {
            format!("{raw}")
        }
    }

    fn matrix<'a>(&self, x: &'a [f32]) -> Result<MatrixRef<'a>, CallError> {
        let cols = self.header.features.len();
        MatrixRef::new(x, x.len() / cols.max(1), cols).map_err(|error| CallError {
            context: "predict".into(),
            error,
        })
    }

    fn call_error(&self, what: &str, error: PluginError) -> CallError {
        CallError {
            context: format!("plugin `{}` {what}", self.header.plugin),
            error,
        }
    }
}

impl LoadedModel {
    /// Scores the model on `table`, whose column `target` holds the truth.
    ///
    /// # Errors
    /// Missing columns, bad cells, unknown labels, or the plugin's error.
    pub fn evaluate(
        &self,
        ctx: HostContextRef<'_>,
        table: &Table,
        targets: &[String],
    ) -> anyhow::Result<crate::metrics::Metrics> {
        let y = self.targets_from(table, targets)?;
        let x = self.features_from(table)?;
        self.score(ctx, &x, &y)
            .map_err(|e| e.on(table.path()).into())
    }

    /// The truth in `table`'s columns `targets`, in the model's encoding:
    /// class indices for a classifier, values (row-major, in the model's
    /// order of targets) otherwise.
    ///
    /// # Errors
    /// Missing columns, bad cells, unknown labels, or targets other than
    /// the model's.
    pub fn targets_from(&self, table: &Table, targets: &[String]) -> anyhow::Result<Vec<f32>> {
        let names = self.header.target_names();
        Ok(match targets {
            [one] if names.len() == 1 => table.target_like(one, &self.header.classes)?,
            _ => {
                let mut given: Vec<&str> = targets.iter().map(String::as_str).collect();
                let mut want = names.clone();
                given.sort_unstable();
                want.sort_unstable();
                if given != want {
                    anyhow::bail!(crate::data::DataError::BadTarget {
                        path: table.path().to_path_buf(),
                        column: targets.join(", "),
                        what: format!(
                            "the model predicts {} target(s): {}; name exactly those",
                            names.len(),
                            names.join(", ")
                        ),
                    });
                }
                // In the model's order, whatever the order given.
                let ordered: Vec<String> = names.iter().map(|n| n.to_string()).collect();
                table.values_of(&ordered)?
            }
        })
    }

    /// Scores the model on the rows `x` against the truth `y` (in the
    /// model's encoding, see [`LoadedModel::targets_from`]).
    ///
    /// # Errors
    /// The plugin's error.
    pub fn score(
        &self,
        ctx: HostContextRef<'_>,
        x: &[f32],
        y: &[f32],
    ) -> Result<crate::metrics::Metrics, CallError> {
        use crate::metrics::{self, Metrics};
        let pred = self.predict(ctx.sabi_reborrow(), x)?;
        Ok(if self.is_classifier() {
            let proba = self.predict_proba(ctx, x)?;
            Metrics::Classification(metrics::classification(
                y,
                &pred,
                &proba.data,
                self.header.classes.len(),
            ))
        } else {
            Metrics::Regression(metrics::regression_outputs(
                y,
                &pred,
                self.header.target_names().len(),
            ))
        })
    }
}
