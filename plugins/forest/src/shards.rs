//! Forests trained in shards (`shard = [I, N]`, see [`tessera_core::shard`]):
//! what a shard's model records, and joining the shards of one forest back
//! into it.
//!
//! A shard's parameters (the JSON stored with the model) are the whole
//! forest's, `n_estimators` included, plus three keys: `shard` (`[I, N]`),
//! `estimator_range` (`[a, b]`, the tree indices it holds) and
//! `importance_trees` (how many of its trees count in its feature
//! importances). Joining checks that the shards belong together (same task,
//! features and parameters; shards `1..=N` in order, each holding its
//! range), puts their trees one after the other, weighs each shard's
//! importances by its `importance_trees`, and drops the three keys: the
//! result is the forest an unsharded fit grows, its importances equal to
//! within rounding.

use std::ops::Range;

use serde_json::{Value, json};
use tessera_core::{PluginError, shard::Shard};

use crate::{model::ForestModel, params::LEARNER};

const SHARD: &str = "shard";
const RANGE: &str = "estimator_range";
const WEIGHT: &str = "importance_trees";

/// Records in `params` that the model is shard `shard`, holding the trees
/// `range`, `counted` of which count in its importances.
pub fn mark(params: &mut Value, shard: Shard, range: Range<usize>, counted: usize) {
    params[SHARD] = shard.to_json();
    params[RANGE] = json!([range.start, range.end]);
    params[WEIGHT] = json!(counted);
}

/// What a shard's parameters record.
struct Record {
    shard: Shard,
    range: Range<usize>,
    weight: f64,
    n_estimators: usize,
}

fn record(params: &Value) -> Option<Record> {
    let shard = Shard::from_json(params.get(SHARD)?).ok()??;
    let pair = params.get(RANGE)?.as_array()?;
    let at = |k: usize| pair.get(k)?.as_u64().and_then(|v| usize::try_from(v).ok());
    Some(Record {
        shard,
        range: at(0)?..at(1)?,
        weight: params.get(WEIGHT)?.as_f64()?,
        n_estimators: usize::try_from(params.get("n_estimators")?.as_u64()?).ok()?,
    })
}

/// Whether `m` is one shard of a forest.
pub fn is_shard(m: &ForestModel) -> bool {
    record(&m.params).is_some()
}

/// How many shards the forest that `m` is a shard of was cut into.
pub fn count(m: &ForestModel) -> Option<usize> {
    record(&m.params).map(|r| r.shard.count)
}

/// `params` without the keys that only shards have.
fn whole(params: &Value) -> Value {
    let mut p = params.clone();
    if let Some(o) = p.as_object_mut() {
        for k in [SHARD, RANGE, WEIGHT] {
            o.remove(k);
        }
    }
    p
}

fn corrupt(why: impl std::fmt::Display) -> PluginError {
    PluginError::corrupt(format!("{LEARNER} model: {why}"))
}

/// Joins `parts`, shards `1..=N` of one forest in that order, into the
/// forest.
///
/// # Errors
/// A part that is not a shard, shards of different forests (task,
/// features, parameters or shard count), shards out of order, missing or
/// repeated, or a shard whose trees are not its range
/// ([`ErrorKind::CORRUPT_MODEL`](tessera_core::ErrorKind::CORRUPT_MODEL)).
pub fn join(parts: Vec<ForestModel>) -> Result<ForestModel, PluginError> {
    let Some(first) = parts.first() else {
        return Err(corrupt("no shards to join"));
    };
    let base = whole(&first.params);
    let n_features = first.n_features;
    let task = first.task;
    let mut total: Option<(usize, usize)> = None;
    let mut weighted = vec![0.0f64; n_features];
    let mut trees = Vec::new();
    for (k, part) in parts.iter().enumerate() {
        let Some(r) = record(&part.params) else {
            return Err(corrupt(format!(
                "part {} of the joined payload is not a shard",
                k + 1
            )));
        };
        let (count, n) = *total.get_or_insert((r.shard.count, r.n_estimators));
        if (r.shard.count, r.n_estimators) != (count, n) {
            return Err(corrupt(format!(
                "shard {} is shard {} of a forest of {} trees, the first one of {count} of {n} \
                 trees",
                k + 1,
                r.shard,
                r.n_estimators
            )));
        }
        if r.shard.index != k + 1 {
            return Err(corrupt(format!(
                "shard {}/{count} is missing or out of order (shard {} is in its place)",
                k + 1,
                r.shard
            )));
        }
        if part.task != task || part.n_features != n_features || whole(&part.params) != base {
            return Err(corrupt(format!(
                "shard {} belongs to another forest than shard 1 (other task, features or \
                 parameters)",
                r.shard
            )));
        }
        if r.shard.range(n).ok() != Some(r.range.clone()) || part.trees.len() != r.range.len() {
            return Err(corrupt(format!(
                "shard {} holds {} trees for the range {}..{}",
                r.shard,
                part.trees.len(),
                r.range.start,
                r.range.end
            )));
        }
        for (t, v) in weighted.iter_mut().zip(&part.importances) {
            *t += r.weight * v;
        }
        trees.extend(part.trees.iter().cloned());
    }
    let (count, _) = total.unwrap_or_default();
    if parts.len() != count {
        return Err(corrupt(format!(
            "{} of the {count} shards were given; all are needed",
            parts.len()
        )));
    }
    let sum: f64 = weighted.iter().sum();
    if sum > 0.0 {
        weighted.iter_mut().for_each(|t| *t /= sum);
    }
    Ok(ForestModel::new(
        first.learner,
        task,
        n_features,
        trees,
        weighted,
        None,
        base,
    ))
}
