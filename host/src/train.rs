//! Training: a learner, a table and a target column in; a model and its
//! file contents out. A `shard` parameter trains one shard of the model
//! (see [`crate::shard`]), recorded in the header.

use std::time::Instant;

use abi_stable::std_types::{ROption, RSlice, RString};
use anyhow::Context;
use tessera_core::{ComponentKind, Holdout, MatrixRef, TrainData};

use crate::{
    artifact::{Artifact, Header, crc32},
    context::RunContext,
    data::{Table, TaskHint},
    model::{CallError, LoadedModel},
    plugin::Registry,
};

/// What to train.
#[derive(Clone, Debug)]
pub struct TrainSpec<'a> {
    /// The learner's component name.
    pub learner: &'a str,
    /// Its parameters as a JSON object.
    pub params: serde_json::Value,
    /// The target column; several make a multi-output regression.
    pub targets: &'a [String],
    /// Classification, regression, or decide from the target.
    pub task: TaskHint,
    /// A column of sample weights (not a feature).
    pub weight: Option<&'a str>,
    /// Held-out rows the learner may score while training (early stopping).
    pub valid: Option<&'a Table>,
}

/// A trained model, ready to save or use.
pub struct Trained {
    /// The model with its header.
    pub model: LoadedModel,
    /// The model file's contents.
    pub artifact: Artifact,
    /// Seconds spent in the learner's `fit`.
    pub fit_seconds: f64,
}

/// Trains `spec.learner` on `table`.
///
/// # Errors
/// An unknown learner, bad parameters (reported by the plugin), a bad
/// target or feature column, or the learner's own failure.
pub fn train(
    registry: &Registry,
    ctx: &RunContext<'_>,
    table: &Table,
    spec: &TrainSpec<'_>,
) -> anyhow::Result<Trained> {
    // Checked before the learner sees the parameter, so that a learner
    // without it is refused in words about shards.
    let shard = crate::shard::requested(registry, spec.learner, &spec.params)?;
    let params_text = spec.params.to_string();
    let learner = registry.create_learner(spec.learner, &params_text)?;
    let shard = shard
        .map(|s| {
            crate::shard::estimators(registry, spec.learner, &spec.params, s)
                .map(|(range, n)| (s, range, n))
        })
        .transpose()?;
    let target = table.targets(spec.targets, spec.task)?;
    let mut not_features: Vec<&str> = spec.targets.iter().map(String::as_str).collect();
    let weights = match spec.weight {
        Some(w) if spec.targets.iter().any(|t| t == w) => {
            return Err(crate::data::DataError::BadTarget {
                path: table.path().to_path_buf(),
                column: w.to_string(),
                what: "it cannot also be the weight column".into(),
            }
            .into());
        }
        Some(w) => {
            not_features.push(w);
            Some(table.weights(w)?)
        }
        None => None,
    };
    let features = table.columns_except(&not_features);
    if features.is_empty() {
        return Err(crate::data::DataError::BadTarget {
            path: table.path().to_path_buf(),
            column: spec.targets.join(", "),
            what: if spec.targets.len() == 1 {
                "it is the only column; there are no features to learn from".into()
            } else {
                "they are the only columns; there are no features to learn from".into()
            },
        }
        .into());
    }
    let x = table.features(&features)?;
    let names: Vec<RString> = features.iter().map(|s| RString::from(s.as_str())).collect();
    // The validation rows, in the training columns and label encoding.
    let holdout = match spec.valid {
        Some(v) => {
            let vx = v.features(&features)?;
            let vy = match spec.targets {
                [one] => v.target_like(one, &target.classes)?,
                several => v.values_of(several)?,
            };
            let vw = match spec.weight {
                Some(w) if v.has_column(w) => Some(v.weights(w)?),
                _ => None,
            };
            Some((vx, vy, vw, v.n_rows()))
        }
        None => None,
    };
    let data = TrainData {
        x: MatrixRef::new(&x, table.n_rows(), features.len())?,
        y: RSlice::from_slice(&target.y),
        weights: match &weights {
            Some(w) => ROption::RSome(RSlice::from_slice(w)),
            None => ROption::RNone,
        },
        feature_names: RSlice::from_slice(&names),
        task: target.task,
        valid: match &holdout {
            Some((vx, vy, vw, rows)) => ROption::RSome(Holdout {
                x: MatrixRef::new(vx, *rows, features.len())?,
                y: RSlice::from_slice(vy),
                weights: vw.as_deref().map(RSlice::from_slice).into(),
            }),
            None => ROption::RNone,
        },
    };
    let start = Instant::now();
    let model = learner
        .fit(ctx.as_abi(), data)
        .into_result()
        .map_err(|error| {
            CallError {
                context: format!("learner `{}` fit", spec.learner),
                error,
            }
            .on(table.path())
        })?;
    let fit_seconds = start.elapsed().as_secs_f64();
    let payload = model
        .to_bytes()
        .into_result()
        .map_err(|error| CallError {
            context: format!("learner `{}` to_bytes", spec.learner),
            error,
        })
        .context("cannot serialize the trained model")?;
    let provider = registry.provider(ComponentKind::Learner, spec.learner)?;
    let mut header = Header {
        plugin: provider.manifest.name.to_string(),
        plugin_version: provider.manifest.version.to_string(),
        component: spec.learner.to_string(),
        abi_version: provider.manifest.abi_version.to_string(),
        task: target.task.name().to_string(),
        classes: target.classes.clone(),
        target: spec.targets[0].clone(),
        targets: if spec.targets.len() > 1 {
            spec.targets.to_vec()
        } else {
            Vec::new()
        },
        features,
        payload_len: payload.len() as u64,
        payload_crc32: crc32(&payload),
        training: serde_json::json!({
            "data": table.path().display().to_string(),
            "rows": table.n_rows(),
            "params": spec.params,
            "weight": spec.weight,
            "fit_seconds": fit_seconds,
            "threads": tessera_core::HostContext::threads(ctx),
            "created_unix": std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs()),
        }),
    };
    if let Some((s, range, n)) = shard {
        let record = crate::shard::Record {
            index: s.index,
            count: s.count,
            estimators: [range.start, range.end],
            n_estimators: n,
            data_crc32: crate::shard::data_checksum(&x, &target.y, weights.as_deref()),
        };
        header.training["shard"] = serde_json::to_value(record).expect("a record serializes");
    }
    let artifact = Artifact {
        header: header.clone(),
        payload: payload.into_vec(),
    };
    Ok(Trained {
        model: LoadedModel { header, model },
        artifact,
        fit_seconds,
    })
}
