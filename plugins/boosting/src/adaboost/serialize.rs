//! The AdaBoost model's binary format, and reading it back without
//! trusting it.
//!
//! Layout, little-endian: magic `TSRA`, format version (1 byte), task kind
//! (1 byte), class count, feature count (u32 each), the settings as a JSON
//! object (u32 length + UTF-8), the member count (u32), then per member:
//! its weight and error (f64 each), the component that trained it (u32
//! length + UTF-8) and that component's own bytes (u64 length + bytes).
//! Members are read back by the plugins that trained them, through the
//! host.

use serde_json::Value;
use tessera_core::{
    HostContextRef, PluginError, Task,
    plugin::{
        ModelImpl,
        members::{ByteReader, load_member, put_u32, write_member},
    },
};

use super::{model::AdaBoostModel, params::LEARNER};

const MAGIC: &[u8; 4] = b"TSRA";
const VERSION: u8 = 1;
/// The fewest bytes a member takes: weight, error, name length, payload
/// length.
const MIN_MEMBER_BYTES: usize = 8 + 8 + 4 + 8;

/// Serializes `m` in the current format version, with each member's own
/// bytes.
///
/// # Errors
/// A member that cannot be saved.
pub fn to_bytes(m: &AdaBoostModel) -> Result<Vec<u8>, PluginError> {
    let info = m.info.to_string();
    let mut out = Vec::new();
    out.extend_from_slice(MAGIC);
    out.push(VERSION);
    out.push(m.task.kind);
    out.extend_from_slice(&m.task.n_classes.to_le_bytes());
    put_u32(&mut out, m.n_features, LEARNER, "feature count")?;
    put_u32(&mut out, info.len(), LEARNER, "summary length")?;
    out.extend_from_slice(info.as_bytes());
    put_u32(&mut out, m.members.len(), LEARNER, "member count")?;
    for (i, model) in m.members.iter().enumerate() {
        out.extend_from_slice(&m.weights[i].to_le_bytes());
        out.extend_from_slice(&m.errors[i].to_le_bytes());
        write_member(&mut out, LEARNER, i, model)?;
    }
    Ok(out)
}

/// Reads back a model written by [`to_bytes`], loading each member through
/// `ctx` from the plugin that trained it.
///
/// # Errors
/// Damaged bytes
/// ([`ErrorKind::CORRUPT_MODEL`](tessera_core::ErrorKind::CORRUPT_MODEL)),
/// or a member that cannot be loaded: when its plugin is absent, the
/// message names the learner.
pub fn load(bytes: &[u8], ctx: &HostContextRef<'_>) -> Result<Box<dyn ModelImpl>, PluginError> {
    let mut r = ByteReader::new(bytes, LEARNER);
    if r.take(4, "the header").ok() != Some(MAGIC.as_slice()) {
        return Err(r.corrupt("not an adaboost model (bad magic bytes)"));
    }
    let version = r.u8("the format version")?;
    if version != VERSION {
        return Err(r.corrupt(format!(
            "format version {version} is not supported (this plugin reads version {VERSION})"
        )));
    }
    let kind = r.u8("the task")?;
    let n_classes = r.u32("the class count")?;
    let task = match kind {
        Task::REGRESSION if n_classes == 1 => Task::regression(),
        Task::CLASSIFICATION if n_classes >= 1 => Task::classification(n_classes),
        _ => return Err(r.corrupt("inconsistent task and class count")),
    };
    let n_features = r.u32("the feature count")? as usize;
    if n_features == 0 {
        return Err(r.corrupt("no feature columns"));
    }
    let info: Value = serde_json::from_str(r.text("the summary")?)
        .map_err(|e| r.corrupt(format!("the summary is not JSON: {e}")))?;
    if !info.is_object() {
        return Err(r.corrupt("the summary is not a JSON object"));
    }
    let count = r.u32("the member count")? as usize;
    if count == 0 {
        return Err(r.corrupt("no members"));
    }
    if count > r.left() / MIN_MEMBER_BYTES {
        return Err(r.corrupt(format!(
            "{count} members cannot fit in the {} bytes left",
            r.left()
        )));
    }
    let mut stored = Vec::with_capacity(count);
    let mut weights = Vec::with_capacity(count);
    let mut errors = Vec::with_capacity(count);
    for i in 0..count {
        let what = format!("member {i}");
        let weight = r.f64(&what)?;
        let error = r.f64(&what)?;
        if !(weight.is_finite() && weight >= 0.0 && error.is_finite()) {
            return Err(r.corrupt(format!("{what} has a bad weight or error")));
        }
        weights.push(weight);
        errors.push(error);
        stored.push(r.member(&what)?);
    }
    r.finish()?;
    if task.is_classification() && weights.iter().sum::<f64>() <= 0.0 {
        return Err(r.corrupt("the member weights sum to zero"));
    }
    let mut members = Vec::with_capacity(count);
    for (i, (component, bytes)) in stored.into_iter().enumerate() {
        members.push(load_member(
            ctx, LEARNER, i, component, bytes, task, n_features,
        )?);
    }
    let model = AdaBoostModel::new(task, n_features, info, members, weights, errors)
        .map_err(|e| r.corrupt(e.message))?;
    Ok(Box::new(model))
}
