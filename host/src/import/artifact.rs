//! An imported ensemble as a tessera model file.
//!
//! The payload is the ensemble in exchange form with a note of its origin
//! ([`tessera_engine::IrModel`]'s bytes); the header names
//! `gradient_boosting` as the component that loads it, so the plugin
//! providing that learner must be loaded.

use std::path::Path;

use anyhow::Context;
use serde_json::json;
use tessera_core::{ComponentKind, plugin::ModelImpl};
use tessera_engine::IrModel;

use super::Imported;
use crate::{
    Registry,
    artifact::{Artifact, Header, crc32},
};

/// The learner whose plugin loads imported models.
pub const COMPONENT: &str = "gradient_boosting";

/// Where an imported model came from, and what to call its target.
#[derive(Clone, Debug)]
pub struct Origin<'a> {
    /// The library: `lightgbm` or `xgboost`.
    pub library: &'a str,
    /// The file read.
    pub source: &'a Path,
    /// The target column's name, for `eval`.
    pub target: &'a str,
    /// Class labels in class-index order; `0`, `1`, ... when `None`.
    pub classes: Option<Vec<String>>,
}

/// The model file for `imported`.
///
/// # Errors
/// No plugin providing [`COMPONENT`], a class list of the wrong length, or
/// an ensemble the inference engine refuses.
pub fn artifact(
    registry: &Registry,
    imported: Imported,
    origin: &Origin<'_>,
) -> anyhow::Result<Artifact> {
    let provider = registry
        .provider(ComponentKind::Learner, COMPONENT)
        .context("imported models are served by the plugin that provides gradient_boosting")?;
    let ens = &imported.ensemble;
    let n_classes = ens.n_classes as usize;
    let classes = match &origin.classes {
        None => (0..n_classes).map(|c| c.to_string()).collect(),
        Some(c) if c.len() == n_classes => c.clone(),
        Some(c) => anyhow::bail!(
            "{} names {} classes, but the model has {n_classes}",
            origin.source.display(),
            c.len()
        ),
    };
    let note = json!({
        "imported_from": origin.library,
        "source": origin.source.display().to_string(),
        "objective": imported.objective,
    });
    let model = IrModel::new(imported.ensemble, note.clone())
        .with_context(|| format!("the trees of {} are malformed", origin.source.display()))?;
    let payload = model.to_bytes()?;
    let mut training = note;
    training["created_unix"] = json!(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs())
    );
    Ok(Artifact {
        header: Header {
            plugin: provider.manifest.name.to_string(),
            plugin_version: provider.manifest.version.to_string(),
            component: COMPONENT.to_string(),
            abi_version: provider.manifest.abi_version.to_string(),
            task: if n_classes > 0 {
                "classification"
            } else {
                "regression"
            }
            .to_string(),
            classes,
            target: origin.target.to_string(),
            features: imported.feature_names,
            payload_len: payload.len() as u64,
            payload_crc32: crc32(&payload),
            training,
        },
        payload,
    })
}
