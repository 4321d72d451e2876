//! The bagging model's binary format, and reading it back without trusting
//! it.
//!
//! Layout, little-endian: magic `TSRB`, format version (1 byte), task kind
//! (1 byte), class count, feature count (u32 each), voting (1 byte: 0 mean,
//! 1 soft, 2 hard), the settings and out-of-bag score as a JSON object (u32
//! length + UTF-8), the member count (u32), then per member: its feature
//! count (u32) and feature indices (u32 each), the component that trained
//! it (u32 length + UTF-8) and that component's own bytes (u64 length +
//! bytes).
//!
//! A payload may also be the payloads of all the shards of one ensemble
//! back to back (in shard order): it reads as that ensemble
//! (module `shards`), which is how `tessera merge` joins shards.
//!
//! Reading checks every count against the bytes actually left before
//! allocating, so damaged bytes are refused with a
//! [`PluginError::corrupt`], never a panic or a huge allocation. Members are
//! read back by the plugins that trained them, through the host
//! ([`HostContext::load_model`](tessera_core::HostContext::load_model)).

use serde_json::Value;
use tessera_core::{
    HostContextRef, PluginError, Task,
    plugin::{
        ModelImpl,
        members::{ByteReader, load_member, put_u32, write_member},
    },
};

use crate::{
    model::{BaggingModel, Member, Voting},
    params::LEARNER,
    shards,
};

const MAGIC: &[u8; 4] = b"TSRB";
const VERSION: u8 = 1;
/// The fewest bytes a member takes: feature count, one feature, name
/// length, payload length.
const MIN_MEMBER_BYTES: usize = 4 + 4 + 4 + 8;

/// Serializes `m` in the current format version, with each member's own
/// bytes.
///
/// # Errors
/// A member that cannot be saved.
pub fn to_bytes(m: &BaggingModel) -> Result<Vec<u8>, PluginError> {
    let info = m.info.to_string();
    let mut out = Vec::new();
    out.extend_from_slice(MAGIC);
    out.push(VERSION);
    out.push(m.task.kind);
    out.extend_from_slice(&m.task.n_classes.to_le_bytes());
    put_u32(&mut out, m.n_features, LEARNER, "feature count")?;
    out.push(m.voting.code());
    put_u32(&mut out, info.len(), LEARNER, "summary length")?;
    out.extend_from_slice(info.as_bytes());
    put_u32(&mut out, m.members.len(), LEARNER, "member count")?;
    for (i, member) in m.members.iter().enumerate() {
        put_u32(&mut out, member.features.len(), LEARNER, "feature count")?;
        for &f in &member.features {
            out.extend_from_slice(&f.to_le_bytes());
        }
        write_member(&mut out, LEARNER, i, &member.model)?;
    }
    Ok(out)
}

/// A member as stored, before its model is read back.
pub(crate) struct StoredMember<'a> {
    pub(crate) features: Vec<u32>,
    pub(crate) component: &'a str,
    pub(crate) bytes: &'a [u8],
}

/// Everything but the members' models.
pub(crate) struct Stored<'a> {
    pub(crate) task: Task,
    pub(crate) n_features: usize,
    pub(crate) voting: Voting,
    pub(crate) info: Value,
    pub(crate) members: Vec<StoredMember<'a>>,
}

/// Reads a model's bytes; or the models of all the shards of one ensemble
/// back to back, in shard order, as that ensemble (see [`crate::shards`]).
pub(crate) fn parse(bytes: &[u8]) -> Result<Stored<'_>, PluginError> {
    let mut r = ByteReader::new(bytes, LEARNER);
    let first = one(&mut r)?;
    let Some((shard, _, _)) = shards::record(&first.info) else {
        r.finish()?;
        return Ok(first);
    };
    let mut parts = vec![first];
    while r.left() != 0 {
        parts.push(one(&mut r)?);
    }
    // One shard alone stays a shard unless it is the whole ensemble (1/1).
    if parts.len() == 1 && shard.count != 1 {
        return Ok(parts.pop().expect("one part"));
    }
    shards::join(parts)
}

/// Reads one model from `r`.
fn one<'a>(r: &mut ByteReader<'a>) -> Result<Stored<'a>, PluginError> {
    if r.take(4, "the header").ok() != Some(MAGIC.as_slice()) {
        return Err(r.corrupt("not a bagging model (bad magic bytes)"));
    }
    let version = r.u8("the format version")?;
    if version != VERSION {
        return Err(r.corrupt(format!(
            "format version {version} is not supported (this plugin reads version {VERSION})"
        )));
    }
    let kind = r.u8("the task")?;
    let n_classes = r.u32("the class count")?;
    let n_features = r.u32("the feature count")? as usize;
    let voting =
        Voting::from_code(r.u8("the voting")?).ok_or_else(|| r.corrupt("unknown voting code"))?;
    let task = match (kind, voting) {
        (Task::REGRESSION, Voting::Mean) if n_classes == 1 => Task::regression(),
        (Task::CLASSIFICATION, Voting::Soft | Voting::Hard) if n_classes >= 1 => {
            Task::classification(n_classes)
        }
        _ => return Err(r.corrupt("inconsistent task, class count and voting")),
    };
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
    let mut members = Vec::with_capacity(count);
    for i in 0..count {
        let what = format!("member {i}");
        let k = r.u32(&what)? as usize;
        if k == 0 || k > r.left() / 4 {
            return Err(r.corrupt(format!("{what} has a bad feature count {k}")));
        }
        let features: Vec<u32> = r
            .take(4 * k, &what)?
            .chunks_exact(4)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect();
        if let Some(f) = features.iter().find(|&&f| f as usize >= n_features) {
            return Err(r.corrupt(format!("{what} reads feature {f} of only {n_features}")));
        }
        let (component, bytes) = r.member(&what)?;
        members.push(StoredMember {
            features,
            component,
            bytes,
        });
    }
    Ok(Stored {
        task,
        n_features,
        voting,
        info,
        members,
    })
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
    let stored = parse(bytes)?;
    let mut members = Vec::with_capacity(stored.members.len());
    for (i, m) in stored.members.into_iter().enumerate() {
        let model = load_member(
            ctx,
            LEARNER,
            i,
            m.component,
            m.bytes,
            stored.task,
            m.features.len(),
        )?;
        members.push(Member::new(m.features, stored.n_features, model));
    }
    Ok(Box::new(BaggingModel {
        task: stored.task,
        n_features: stored.n_features,
        voting: stored.voting,
        info: stored.info,
        members,
        engine: Default::default(),
    }))
}
