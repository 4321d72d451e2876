//! Training in shards and merging them (`tessera train --shard I/N`,
//! `tessera merge`).
//!
//! A learner can train one shard of its ensemble when it declares the
//! `shard` parameter; what that promises is written in
//! [`tessera_core::shard`]. Training a shard sets the parameter and records
//! in the model file's header ([`Record`], under `training.shard`) which
//! shard it is, the estimator indices it holds, the size of the whole
//! model and a checksum of the training data. [`merge`] checks from the
//! headers alone that the parts are the shards of one model (same plugin,
//! learner, task, columns, parameters, seed and data; every shard once),
//! then hands their payloads, back to back in shard order, to the
//! learner's own plugin, which reads them as the whole model; its bytes,
//! saved again, are the merged model's payload. The merged file is an
//! ordinary model of the same learner, whose answers are those of the
//! model an unsharded run trains.

use std::{ops::Range, path::PathBuf};

use anyhow::Context;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tessera_core::{
    ComponentInfo, ComponentKind,
    shard::{PARAM, Shard},
};

use crate::{
    artifact::{Artifact, Crc32, Header, crc32},
    model::{CallError, LoadedModel},
    plugin::Registry,
};

/// Why a shard cannot be trained, or parts cannot be merged.
#[derive(Debug, thiserror::Error)]
pub enum ShardError {
    /// The learner does not declare the `shard` parameter.
    #[error(
        "learner `{learner}` cannot train in shards: it does not declare the `shard` parameter, \
         which only learners whose estimators are trained independently of each other declare \
         ({})",
        if can.is_empty() { "none is loaded".to_string() } else { format!("loaded: {}", can.join(", ")) }
    )]
    NotShardable {
        /// The learner.
        learner: String,
        /// The loaded learners that declare it.
        can: Vec<String>,
    },
    /// A `shard` value that is not `[I, N]`.
    #[error("parameter `shard`: {0}")]
    BadValue(String),
    /// No fixed seed.
    #[error(
        "training in shards needs a fixed seed (--seed N, or random_state): every shard must \
         draw as one run of the whole model would"
    )]
    NoSeed,
    /// The learner declares `shard` but its size cannot be known.
    #[error(
        "learner `{0}` declares `shard` but no integer `n_estimators`, so its shards cannot be sized"
    )]
    NoEstimatorCount(String),
    /// More shards than estimators.
    #[error("shard {shard}: {why}")]
    Range {
        /// The shard.
        shard: Shard,
        /// What is wrong.
        why: String,
    },
    /// `merge` without parts.
    #[error("nothing to merge: name the shards' model files")]
    NoParts,
    /// A model file that is not a shard.
    #[error("{0} is not a shard: it was not trained with --shard")]
    NotAShard(PathBuf),
    /// Two parts that cannot be shards of one model.
    #[error("{path} and {first} are not shards of one model: {what}")]
    Mismatch {
        /// The part that differs.
        path: PathBuf,
        /// The first part.
        first: PathBuf,
        /// What differs, with this part's value first.
        what: String,
    },
    /// The same shard twice.
    #[error("{path} and {other} are both shard {shard}")]
    Duplicate {
        /// The later part.
        path: PathBuf,
        /// The earlier part.
        other: PathBuf,
        /// The shard.
        shard: Shard,
    },
    /// Shards missing.
    #[error(
        "{} of {count} {} missing (given: {}); every shard is needed",
        if missing.len() == 1 { format!("shard {}", missing[0]) } else { format!("shards {}", list(missing)) },
        if missing.len() == 1 { "is" } else { "are" },
        list(given)
    )]
    Missing {
        /// The missing shard indices.
        missing: Vec<usize>,
        /// The shard count.
        count: usize,
        /// The given ones.
        given: Vec<usize>,
    },
    /// A header whose range is not the shard's.
    #[error("{path}: shard {shard} of {n} estimators holds {want:?}, but the header says {got:?}")]
    BadRange {
        /// The part.
        path: PathBuf,
        /// Its shard.
        shard: Shard,
        /// The whole model's estimator count.
        n: usize,
        /// The range the shard holds.
        want: Range<usize>,
        /// The range recorded.
        got: Range<usize>,
    },
    /// The loaded plugin cannot join shards.
    #[error(
        "learner `{0}` of the loaded plugin does not declare the `shard` parameter, so it cannot \
         join shards"
    )]
    CannotJoin(String),
}

/// What a shard's model file records about it (`training.shard` in its
/// header).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Record {
    /// Which shard, from 1.
    pub index: usize,
    /// Of how many.
    pub count: usize,
    /// The estimator indices it holds, `[start, end)`.
    pub estimators: [usize; 2],
    /// The estimator count of the whole model.
    pub n_estimators: usize,
    /// CRC-32 of the training data as the learner saw it (features,
    /// target, weights; see [`data_checksum`]).
    pub data_crc32: u32,
}

impl Record {
    /// The shard.
    pub fn shard(&self) -> Shard {
        Shard {
            index: self.index,
            count: self.count,
        }
    }

    /// The estimator indices it holds.
    pub fn range(&self) -> Range<usize> {
        self.estimators[0]..self.estimators[1]
    }

    /// The record in `header`, if the model is a shard (and the record
    /// names a shard that exists).
    pub fn of(header: &Header) -> Option<Self> {
        let r: Self = serde_json::from_value(header.training.get("shard")?.clone()).ok()?;
        Shard::new(r.index, r.count).ok()?;
        Some(r)
    }
}

fn learner_info<'r>(registry: &'r Registry, learner: &str) -> Option<&'r ComponentInfo> {
    let p = registry.provider(ComponentKind::Learner, learner).ok()?;
    p.manifest
        .components
        .iter()
        .find(|c| c.kind == ComponentKind::Learner && c.name.as_str() == learner)
}

fn declares(info: &ComponentInfo, param: &str) -> bool {
    info.params.iter().any(|p| p.name.as_str() == param)
}

/// The loaded learners that can train in shards, sorted.
pub fn shardable(registry: &Registry) -> Vec<String> {
    let mut v: Vec<String> = registry
        .plugins()
        .iter()
        .flat_map(|p| p.manifest.components.iter())
        .filter(|c| c.kind == ComponentKind::Learner && declares(c, PARAM))
        .map(|c| c.name.to_string())
        .collect();
    v.sort();
    v.dedup();
    v
}

/// The shard that `params` (a JSON object) asks `learner` to train, if any,
/// checked before the learner is created: the learner declares the
/// parameter, and the seed is fixed.
///
/// # Errors
/// A value that is not `[I, N]`, an unknown learner, a learner that cannot
/// train in shards, or no seed.
pub fn requested(
    registry: &Registry,
    learner: &str,
    params: &Value,
) -> anyhow::Result<Option<Shard>> {
    let Some(shard) = Shard::from_json(params.get(PARAM).unwrap_or(&Value::Null))
        .map_err(ShardError::BadValue)?
    else {
        return Ok(None);
    };
    registry.provider(ComponentKind::Learner, learner)?;
    if !learner_info(registry, learner).is_some_and(|i| declares(i, PARAM)) {
        return Err(ShardError::NotShardable {
            learner: learner.to_string(),
            can: shardable(registry),
        }
        .into());
    }
    if params.get("random_state").is_none_or(Value::is_null) {
        return Err(ShardError::NoSeed.into());
    }
    Ok(Some(shard))
}

/// The estimator indices `shard` of `learner` holds, with the parameters
/// `params` (already accepted by the learner), and the whole model's
/// estimator count: `n_estimators` as given, else its declared default.
///
/// # Errors
/// No integer `n_estimators`, or more shards than estimators.
pub fn estimators(
    registry: &Registry,
    learner: &str,
    params: &Value,
    shard: Shard,
) -> Result<(Range<usize>, usize), ShardError> {
    let declared = || {
        let info = learner_info(registry, learner)?;
        let p = info
            .params
            .iter()
            .find(|p| p.name.as_str() == "n_estimators")?;
        serde_json::from_str::<Value>(p.default.as_str()).ok()
    };
    let n = match params.get("n_estimators") {
        Some(v) => Some(v.clone()),
        None => declared(),
    }
    .and_then(|v| v.as_u64())
    .and_then(|n| usize::try_from(n).ok())
    .ok_or_else(|| ShardError::NoEstimatorCount(learner.to_string()))?;
    let range = shard
        .range(n)
        .map_err(|why| ShardError::Range { shard, why })?;
    Ok((range, n))
}

/// CRC-32 of the training data as the learner sees it: the features and
/// the target (`f32`, little-endian, row-major), then the weights if any.
/// Shards of one model must have been trained on the same data.
pub fn data_checksum(x: &[f32], y: &[f32], weights: Option<&[f32]>) -> u32 {
    let mut c = Crc32::new();
    let mut buf = Vec::with_capacity(4096 * 4);
    for part in [x, y, weights.unwrap_or(&[])] {
        for chunk in part.chunks(4096) {
            buf.clear();
            buf.extend(chunk.iter().flat_map(|v| v.to_le_bytes()));
            c.update(&buf);
        }
    }
    // Weights of 1 are not the same data as no weights.
    c.update(&[u8::from(weights.is_some())]);
    c.finish()
}

/// A merged model.
pub struct Merged {
    /// The model file's contents.
    pub artifact: Artifact,
    /// How many shards were joined.
    pub shards: usize,
    /// The estimator count of the model.
    pub n_estimators: usize,
}

/// One part: its file, header record and contents.
struct Part {
    path: PathBuf,
    record: Record,
    artifact: Artifact,
}

/// `params` without `shard`.
fn whole_params(h: &Header) -> Value {
    let mut p = h.training.get("params").cloned().unwrap_or(Value::Null);
    if let Some(o) = p.as_object_mut() {
        o.remove(PARAM);
    }
    p
}

fn list<T: std::fmt::Display>(v: &[T]) -> String {
    v.iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// What differs between `p` (a part) and `q` (the first part), as a phrase
/// with `p`'s value first; `None` when they can be shards of one model.
fn difference(p: &Part, q: &Part) -> Option<String> {
    let (a, b) = (&p.artifact.header, &q.artifact.header);
    if (&a.plugin, &a.plugin_version) != (&b.plugin, &b.plugin_version) {
        return Some(format!(
            "trained by plugin {} {} and {} {}",
            a.plugin, a.plugin_version, b.plugin, b.plugin_version
        ));
    }
    if a.component != b.component {
        return Some(format!("learner `{}` and `{}`", a.component, b.component));
    }
    if (&a.task, &a.classes) != (&b.task, &b.classes) {
        return Some(format!(
            "{} with classes [{}] and {} with classes [{}]",
            a.task,
            list(&a.classes),
            b.task,
            list(&b.classes)
        ));
    }
    if a.target_names() != b.target_names() {
        return Some(format!(
            "target [{}] and [{}]",
            a.target_names().join(", "),
            b.target_names().join(", ")
        ));
    }
    if a.features != b.features {
        return Some(format!(
            "feature columns [{}] and [{}]",
            list(&a.features),
            list(&b.features)
        ));
    }
    let (pa, pb) = (whole_params(a), whole_params(b));
    if pa.get("random_state") != pb.get("random_state") {
        return Some(format!(
            "seed (random_state) {} and {}; the shards of one model share one seed",
            pa.get("random_state").unwrap_or(&Value::Null),
            pb.get("random_state").unwrap_or(&Value::Null)
        ));
    }
    if pa != pb {
        let empty = serde_json::Map::new();
        let (ma, mb) = (
            pa.as_object().unwrap_or(&empty),
            pb.as_object().unwrap_or(&empty),
        );
        let mut keys: Vec<&String> = ma.keys().chain(mb.keys()).collect();
        keys.sort();
        keys.dedup();
        let shown = |v: Option<&Value>| v.map_or_else(|| "unset".to_string(), Value::to_string);
        let diffs: Vec<String> = keys
            .into_iter()
            .filter(|k| ma.get(*k) != mb.get(*k))
            .map(|k| format!("`{k}` {} and {}", shown(ma.get(k)), shown(mb.get(k))))
            .collect();
        return Some(format!("parameters differ: {}", diffs.join("; ")));
    }
    let (ra, rb) = (&p.record, &q.record);
    if (ra.count, ra.n_estimators) != (rb.count, rb.n_estimators) {
        return Some(format!(
            "shard {} of a model of {} estimators and shard {} of {}",
            ra.shard(),
            ra.n_estimators,
            rb.shard(),
            rb.n_estimators
        ));
    }
    let rows = |h: &Header| h.training.get("rows").cloned().unwrap_or(Value::Null);
    let weight = |h: &Header| h.training.get("weight").cloned().unwrap_or(Value::Null);
    if ra.data_crc32 != rb.data_crc32 || rows(a) != rows(b) || weight(a) != weight(b) {
        return Some(format!(
            "trained on different data ({} rows, weight column {}, checksum {:08x}; and {} rows, \
             weight column {}, checksum {:08x})",
            rows(a),
            weight(a),
            ra.data_crc32,
            rows(b),
            weight(b),
            rb.data_crc32
        ));
    }
    None
}

/// Reads the shards `paths`, checks that they make up one model, and
/// joins them through the learner's plugin into that model (checked by
/// loading it back). Nothing is written.
///
/// # Errors
/// A file that cannot be read or is not a shard, parts that are not the
/// shards of one model ([`ShardError`], naming the file and what differs),
/// a missing or repeated shard, or a plugin that cannot join them.
pub fn merge(registry: &Registry, paths: &[PathBuf]) -> anyhow::Result<Merged> {
    if paths.is_empty() {
        return Err(ShardError::NoParts.into());
    }
    let mut parts = Vec::with_capacity(paths.len());
    for path in paths {
        let artifact = Artifact::read(path)?;
        let record =
            Record::of(&artifact.header).ok_or_else(|| ShardError::NotAShard(path.clone()))?;
        let shard = record.shard();
        let want = shard
            .range(record.n_estimators)
            .map_err(|why| ShardError::Range { shard, why })?;
        if want != record.range() {
            return Err(ShardError::BadRange {
                path: path.clone(),
                shard,
                n: record.n_estimators,
                want,
                got: record.range(),
            }
            .into());
        }
        parts.push(Part {
            path: path.clone(),
            record,
            artifact,
        });
    }
    for p in &parts[1..] {
        if let Some(what) = difference(p, &parts[0]) {
            return Err(ShardError::Mismatch {
                path: p.path.clone(),
                first: parts[0].path.clone(),
                what,
            }
            .into());
        }
    }
    let count = parts[0].record.count;
    let mut by_index: Vec<Option<&Part>> = vec![None; count];
    for p in &parts {
        let slot = &mut by_index[p.record.index - 1];
        if let Some(other) = slot {
            return Err(ShardError::Duplicate {
                path: p.path.clone(),
                other: other.path.clone(),
                shard: p.record.shard(),
            }
            .into());
        }
        *slot = Some(p);
    }
    let missing: Vec<usize> = (1..=count).filter(|i| by_index[i - 1].is_none()).collect();
    if !missing.is_empty() {
        let mut given: Vec<usize> = parts.iter().map(|p| p.record.index).collect();
        given.sort_unstable();
        return Err(ShardError::Missing {
            missing,
            count,
            given,
        }
        .into());
    }
    let ordered: Vec<&Part> = by_index.into_iter().flatten().collect();
    join(registry, &ordered)
}

/// Joins `parts` (every shard, in order) through the learner's plugin.
fn join(registry: &Registry, parts: &[&Part]) -> anyhow::Result<Merged> {
    let first = &parts[0].artifact.header;
    let component = first.component.as_str();
    let provider = registry.provider(ComponentKind::Learner, component)?;
    if !learner_info(registry, component).is_some_and(|i| declares(i, PARAM)) {
        return Err(ShardError::CannotJoin(component.to_string()).into());
    }
    let joined: Vec<u8> = parts
        .iter()
        .flat_map(|p| p.artifact.payload.iter().copied())
        .collect();
    let model = registry
        .load_model(component, &joined)
        .with_context(|| format!("learner `{component}` cannot join the shards"))?;
    let payload = model
        .to_bytes()
        .into_result()
        .map_err(|error| CallError {
            context: format!("learner `{component}` to_bytes"),
            error,
        })
        .context("cannot serialize the merged model")?
        .into_vec();
    let record = &parts[0].record;
    let fit_seconds: f64 = parts
        .iter()
        .filter_map(|p| p.artifact.header.training.get("fit_seconds")?.as_f64())
        .sum();
    let get = |k: &str| first.training.get(k).cloned().unwrap_or(Value::Null);
    let header = Header {
        plugin: provider.manifest.name.to_string(),
        plugin_version: provider.manifest.version.to_string(),
        abi_version: provider.manifest.abi_version.to_string(),
        payload_len: payload.len() as u64,
        payload_crc32: crc32(&payload),
        training: json!({
            "data": get("data"),
            "rows": get("rows"),
            "params": whole_params(first),
            "weight": get("weight"),
            "fit_seconds": fit_seconds,
            "merged_from": parts.iter().map(|p| json!({
                "file": p.path.display().to_string(),
                "shard": p.record.shard().to_string(),
                "estimators": p.record.estimators,
            })).collect::<Vec<_>>(),
            "n_estimators": record.n_estimators,
            "data_crc32": record.data_crc32,
            "created_unix": std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs()),
        }),
        ..first.clone()
    };
    let artifact = Artifact { header, payload };
    LoadedModel::from_artifact(registry, artifact.clone())
        .context("the merged model does not load")?;
    Ok(Merged {
        artifact,
        shards: parts.len(),
        n_estimators: record.n_estimators,
    })
}
