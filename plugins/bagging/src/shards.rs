//! Ensembles trained in shards (`shard = [I, N]`, see
//! [`tessera_core::shard`]): what a shard's model records, and joining the
//! shards of one ensemble back into it.
//!
//! A shard's summary (the JSON stored with the model) is the whole
//! ensemble's, `n_estimators` included, plus `shard` (`[I, N]`) and
//! `estimator_range` (`[a, b]`, the member indices it holds). Joining checks
//! that the shards belong together (same task, features and settings;
//! shards `1..=N` in order, each holding its range), puts their members one
//! after the other, votes softly only when every shard does, and drops the
//! two keys: the result is the ensemble an unsharded fit trains.

use std::ops::Range;

use serde_json::{Value, json};
use tessera_core::{PluginError, shard::Shard};

use crate::{model::Voting, params::LEARNER, serialize::Stored};

const SHARD: &str = "shard";
const RANGE: &str = "estimator_range";

/// Records in `info` that the model is shard `shard`, holding the members
/// `range`.
pub fn mark(info: &mut Value, shard: Shard, range: Range<usize>) {
    info[SHARD] = shard.to_json();
    info[RANGE] = json!([range.start, range.end]);
}

/// What a shard's summary records: the shard, its range, and the member
/// count of the whole ensemble.
pub(crate) fn record(info: &Value) -> Option<(Shard, Range<usize>, usize)> {
    let shard = Shard::from_json(info.get(SHARD)?).ok()??;
    let pair = info.get(RANGE)?.as_array()?;
    let at = |k: usize| pair.get(k)?.as_u64().and_then(|v| usize::try_from(v).ok());
    let n = usize::try_from(info.get("n_estimators")?.as_u64()?).ok()?;
    Some((shard, at(0)?..at(1)?, n))
}

/// `info` without the keys that only shards have.
fn whole(info: &Value) -> Value {
    let mut v = info.clone();
    if let Some(o) = v.as_object_mut() {
        o.remove(SHARD);
        o.remove(RANGE);
    }
    v
}

fn corrupt(why: impl std::fmt::Display) -> PluginError {
    PluginError::corrupt(format!("{LEARNER} model: {why}"))
}

/// Joins `parts`, shards `1..=N` of one ensemble in that order, into the
/// ensemble.
///
/// # Errors
/// A part that is not a shard, shards of different ensembles (task,
/// features, settings or shard count), shards out of order, missing or
/// repeated, or a shard whose members are not its range
/// ([`ErrorKind::CORRUPT_MODEL`](tessera_core::ErrorKind::CORRUPT_MODEL)).
pub(crate) fn join(parts: Vec<Stored<'_>>) -> Result<Stored<'_>, PluginError> {
    let Some(first) = parts.first() else {
        return Err(corrupt("no shards to join"));
    };
    let (task, n_features, base) = (first.task, first.n_features, whole(&first.info));
    let mut total: Option<(usize, usize)> = None;
    let mut soft = true;
    let n_parts = parts.len();
    let mut members = Vec::new();
    for (k, part) in parts.into_iter().enumerate() {
        let Some((shard, range, n)) = record(&part.info) else {
            return Err(corrupt(format!(
                "part {} of the joined payload is not a shard",
                k + 1
            )));
        };
        let (count, whole_n) = *total.get_or_insert((shard.count, n));
        if (shard.count, n) != (count, whole_n) {
            return Err(corrupt(format!(
                "shard {} is shard {shard} of an ensemble of {n} members, the first one of \
                 {count} of {whole_n} members",
                k + 1
            )));
        }
        if shard.index != k + 1 {
            return Err(corrupt(format!(
                "shard {}/{count} is missing or out of order (shard {shard} is in its place)",
                k + 1
            )));
        }
        if part.task != task || part.n_features != n_features || whole(&part.info) != base {
            return Err(corrupt(format!(
                "shard {shard} belongs to another ensemble than shard 1 (other task, features \
                 or settings)"
            )));
        }
        if shard.range(n).ok() != Some(range.clone()) || part.members.len() != range.len() {
            return Err(corrupt(format!(
                "shard {shard} holds {} members for the range {}..{}",
                part.members.len(),
                range.start,
                range.end
            )));
        }
        soft &= part.voting == Voting::Soft;
        members.extend(part.members);
    }
    let (count, _) = total.unwrap_or_default();
    if n_parts != count {
        return Err(corrupt(format!(
            "{n_parts} of the {count} shards were given; all are needed"
        )));
    }
    // Soft voting needs every member to predict probabilities, which each
    // shard has checked for its own.
    let voting = match task {
        _ if !task.is_classification() => Voting::Mean,
        _ if soft => Voting::Soft,
        _ => Voting::Hard,
    };
    Ok(Stored {
        task,
        n_features,
        voting,
        info: base,
        members,
    })
}
