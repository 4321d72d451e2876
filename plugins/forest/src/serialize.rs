//! The plugin's own binary format, and reading it back without trusting it.
//!
//! Layout (version 2), little-endian: magic `TSRF`, format version (1
//! byte), learner (1 byte: 0 `random_forest`, 1 `decision_tree`), task kind
//! (1 byte), class count, feature count (u32 each), the parameters as JSON
//! (u32 length + UTF-8), one f64 importance per feature, the out-of-bag
//! score (1 byte flag, then an f64 when set), the tree count (u32), then
//! per tree its node count and value count (u32 each), its nodes (feature
//! u32 with missing-left in the top bit, threshold-or-leaf-value f32,
//! right child-or-value offset u32; pre-order, left child next) and its
//! leaf values (f32; only for three classes or more).
//!
//! A `random_forest` payload may also be the payloads of all the shards of
//! one forest back to back (in shard order): it reads as that forest
//! ([`crate::shards`]), which is how `tessera merge` joins shards.
//!
//! Reading checks every count against the bytes actually left before
//! allocating, and every node's references before accepting a tree, so
//! garbage is refused with a [`PluginError::corrupt`] and never panics.

use tessera_core::{
    HostContextRef, PluginError, Task,
    plugin::{ModelImpl, members::ByteReader},
};

use crate::{
    model::ForestModel,
    params::{LEARNER, TREE_LEARNER},
    shards,
    tree::{Node, Tree},
};

const MAGIC: &[u8; 4] = b"TSRF";
const VERSION: u8 = 2;
const NODE_BYTES: usize = 12;
const LEARNERS: [&str; 2] = [LEARNER, TREE_LEARNER];

/// Serializes `m` in the current format version.
pub fn to_bytes(m: &ForestModel) -> Vec<u8> {
    let params = m.params.to_string();
    let nodes: usize = m.trees.iter().map(|t| t.nodes.len()).sum();
    let mut out = Vec::with_capacity(64 + params.len() + nodes * NODE_BYTES);
    out.extend_from_slice(MAGIC);
    out.push(VERSION);
    out.push(u8::from(m.learner == TREE_LEARNER));
    out.push(m.task.kind);
    out.extend_from_slice(&m.task.n_classes.to_le_bytes());
    out.extend_from_slice(&(m.n_features as u32).to_le_bytes());
    out.extend_from_slice(&(params.len() as u32).to_le_bytes());
    out.extend_from_slice(params.as_bytes());
    for v in &m.importances {
        out.extend_from_slice(&v.to_le_bytes());
    }
    match m.oob_score {
        Some(s) => {
            out.push(1);
            out.extend_from_slice(&s.to_le_bytes());
        }
        None => out.push(0),
    }
    out.extend_from_slice(&(m.trees.len() as u32).to_le_bytes());
    for t in &m.trees {
        out.extend_from_slice(&(t.nodes.len() as u32).to_le_bytes());
        out.extend_from_slice(&(t.values.len() as u32).to_le_bytes());
        for n in &t.nodes {
            for v in [n.feature, n.threshold.to_bits(), n.right] {
                out.extend_from_slice(&v.to_le_bytes());
            }
        }
        for v in &t.values {
            out.extend_from_slice(&v.to_le_bytes());
        }
    }
    out
}

/// Reads one tree (its `index` in the model) from `r`.
fn tree(
    r: &mut ByteReader<'_>,
    index: usize,
    n_features: usize,
    n_classes: usize,
) -> Result<Tree, PluginError> {
    let n_nodes = r.count(NODE_BYTES, "node count")?;
    let n_values = r.count(4, "value count")?;
    let width = Tree::leaf_width(n_classes);
    if n_nodes == 0 || (width == 1 && n_values != 0) {
        return Err(r.corrupt(format!(
            "tree {index} has {n_nodes} nodes and {n_values} values"
        )));
    }
    let raw = r.take(n_nodes * NODE_BYTES, "nodes")?;
    let mut nodes = Vec::with_capacity(n_nodes);
    for (i, c) in raw.chunks_exact(NODE_BYTES).enumerate() {
        let word = |k: usize| u32::from_le_bytes([c[k], c[k + 1], c[k + 2], c[k + 3]]);
        let n = Node {
            feature: word(0),
            threshold: f32::from_bits(word(4)),
            right: word(8),
        };
        let ok = if n.is_leaf() {
            width == 1
                || (n.right as usize)
                    .checked_add(width)
                    .is_some_and(|e| e <= n_values)
        } else {
            // Both children after their parent: no cycles, so
            // prediction ends.
            let right = n.right as usize;
            n.feature_index() < n_features && right > i + 1 && right < n_nodes
        };
        if !ok {
            return Err(r.corrupt(format!("node {i} of tree {index} is malformed")));
        }
        nodes.push(n);
    }
    let raw = r.take(n_values * 4, "leaf values")?;
    let values = raw
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    Ok(Tree { nodes, values })
}

/// Reads a model of `learner` written by [`to_bytes`]; or, for
/// `random_forest`, the models of all the shards of one forest back to
/// back, in shard order, as that forest (see [`crate::shards`]).
///
/// # Errors
/// Bytes that are not a complete, well-formed model of that learner, or
/// shards that do not make up one forest.
pub fn decode_as(bytes: &[u8], learner: &'static str) -> Result<ForestModel, PluginError> {
    let mut r = ByteReader::new(bytes, learner);
    let first = one(&mut r, learner)?;
    let sharded = learner == LEARNER && shards::is_shard(&first);
    if r.left() != 0 && !sharded {
        return Err(r.corrupt(format!("{} unexpected bytes after the last tree", r.left())));
    }
    if !sharded {
        return Ok(first);
    }
    let whole = shards::count(&first);
    let mut parts = vec![first];
    while r.left() != 0 {
        parts.push(one(&mut r, learner)?);
    }
    // One shard alone stays a shard unless it is the whole forest (1/1).
    if parts.len() == 1 && whole != Some(1) {
        return Ok(parts.pop().expect("one part"));
    }
    shards::join(parts)
}

/// Reads one model from `r`.
fn one(r: &mut ByteReader<'_>, learner: &'static str) -> Result<ForestModel, PluginError> {
    if r.take(4, "the header").ok() != Some(MAGIC.as_slice()) {
        return Err(r.corrupt(format!("not a {learner} model (bad magic bytes)")));
    }
    let version = r.u8("the format version")?;
    if version != VERSION {
        return Err(r.corrupt(format!(
            "format version {version} is not supported (this build reads version {VERSION})"
        )));
    }
    let written = r.u8("the learner")?;
    match LEARNERS.get(usize::from(written)) {
        Some(&l) if l == learner => {}
        Some(l) => return Err(r.corrupt(format!("the bytes hold a {l} model"))),
        None => return Err(r.corrupt(format!("learner {written} is unknown"))),
    }
    let task = match (r.u8("the task")?, r.u32("the class count")?) {
        (Task::REGRESSION, 1) => Task::regression(),
        (Task::CLASSIFICATION, k) if k >= 1 => Task::classification(k),
        (kind, k) => {
            return Err(r.corrupt(format!("task kind {kind} with {k} classes is invalid")));
        }
    };
    let n_features = r.u32("the feature count")? as usize;
    if n_features == 0 || n_features >= (1 << 31) - 1 {
        return Err(r.corrupt(format!("feature count {n_features} is invalid")));
    }
    let params_len = r.count(1, "parameter length")?;
    let params = serde_json::from_slice(r.take(params_len, "parameters")?)
        .map_err(|e| r.corrupt(format!("parameters are not valid JSON: {e}")))?;
    let raw = r.take(n_features.saturating_mul(8), "feature importances")?;
    let importances = raw
        .chunks_exact(8)
        .map(|c| f64::from_le_bytes(c.try_into().unwrap_or([0; 8])))
        .collect();
    let oob_score = match r.u8("the out-of-bag flag")? {
        0 => None,
        1 => Some(r.f64("the out-of-bag score")?),
        f => return Err(r.corrupt(format!("out-of-bag flag {f} is invalid"))),
    };
    let n_trees = r.count(4 + 4 + NODE_BYTES, "tree count")?;
    if n_trees == 0 {
        return Err(r.corrupt("the model has no trees"));
    }
    let n_classes = if task.is_classification() {
        task.n_classes as usize
    } else {
        0
    };
    let mut trees = Vec::with_capacity(n_trees);
    for i in 0..n_trees {
        trees.push(tree(r, i, n_features, n_classes)?);
    }
    Ok(ForestModel::new(
        learner,
        task,
        n_features,
        trees,
        importances,
        oob_score,
        params,
    ))
}

/// Reads a `random_forest` model written by [`to_bytes`].
///
/// # Errors
/// As [`decode_as`].
pub fn decode(bytes: &[u8]) -> Result<ForestModel, PluginError> {
    decode_as(bytes, LEARNER)
}

/// The `load` entry of `random_forest`.
///
/// # Errors
/// As [`decode_as`].
pub fn load(bytes: &[u8], _ctx: &HostContextRef<'_>) -> Result<Box<dyn ModelImpl>, PluginError> {
    Ok(Box::new(decode_as(bytes, LEARNER)?))
}

/// The `load` entry of `decision_tree`.
///
/// # Errors
/// As [`decode_as`].
pub fn load_tree(
    bytes: &[u8],
    _ctx: &HostContextRef<'_>,
) -> Result<Box<dyn ModelImpl>, PluginError> {
    Ok(Box::new(decode_as(bytes, TREE_LEARNER)?))
}
