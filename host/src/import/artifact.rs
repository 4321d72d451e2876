//! An imported ensemble as a tessera model file.
//!
//! The payload is the ensemble in exchange form with a note of its origin
//! ([`tessera_engine::IrModel`]'s bytes); the header names
//! `gradient_boosting` as the component that loads it, so the plugin
//! providing that learner must be loaded.

use std::path::Path;

use anyhow::Context;
use serde_json::json;
use tessera_core::ComponentKind;
use tessera_engine::IrModel;

use super::{ImportError, Imported};
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

/// The model file for `imported`. The trees are not compiled here: the
/// importers have checked them whole, and loading the file through its
/// plugin (as `tessera import` does before writing it) compiles them.
///
/// # Errors
/// No plugin providing [`COMPONENT`], a class list that does not fit, or
/// more trees or nodes than the byte form counts.
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
        Some(c) => checked_classes(c, n_classes)?,
    };
    let note = json!({
        "imported_from": origin.library,
        "source": origin.source.display().to_string(),
        "objective": imported.objective,
    });
    let payload = IrModel::encode(&imported.ensemble, &note)?;
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
            targets: Vec::new(),
            features: imported.feature_names,
            payload_len: payload.len() as u64,
            payload_crc32: crc32(&payload),
            training,
        },
        payload,
    })
}

/// The class labels a user gave, if they fit a model of `n_classes`.
fn checked_classes(given: &[String], n_classes: usize) -> Result<Vec<String>, ImportError> {
    let fail = |why: String| Err(ImportError::Classes(why));
    if n_classes == 0 {
        return fail(format!(
            "{} class labels were given, but the model is a regression",
            given.len()
        ));
    }
    if given.len() != n_classes {
        return fail(format!(
            "{} class labels were given, but the model has {n_classes} classes",
            given.len()
        ));
    }
    for (i, c) in given.iter().enumerate() {
        if c.trim().is_empty() {
            return fail(format!("class label {} is empty", i + 1));
        }
        if given[..i].contains(c) {
            return fail(format!("class label `{c}` is given twice"));
        }
    }
    Ok(given.to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn class_labels_must_fit_the_model() {
        assert_eq!(
            checked_classes(&names(&["a", "b"]), 2).unwrap(),
            names(&["a", "b"])
        );
        let why = |v: &[&str], n| checked_classes(&names(v), n).unwrap_err().to_string();
        assert!(
            why(&["a", "b", "c"], 2).contains("3 class labels were given, but the model has 2")
        );
        assert!(why(&["a"], 0).contains("regression"));
        assert!(why(&["a", "a"], 2).contains("`a` is given twice"));
        assert!(why(&["a", " "], 2).contains("class label 2 is empty"));
    }
}
