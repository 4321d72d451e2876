//! The forest's own binary format, and reading it back without trusting it.
//!
//! Layout, little-endian: magic `TSRF`, format version (1 byte), task kind
//! (1 byte), class count, feature count (u32 each), the parameters as JSON
//! (u32 length + UTF-8), one f64 importance per feature, the tree count
//! (u32), then per tree its node count and value count (u32 each), its nodes
//! (feature u32, threshold f32, left u32, right u32, value u32,
//! missing_left u8) and its values (f32).
//!
//! Reading checks every count against the bytes actually left before
//! allocating, and every node's references before accepting a tree, so
//! garbage is refused with a [`PluginError::corrupt`] and never panics.

use tessera_core::{PluginError, Task, ir::TreeNode, plugin::ModelImpl};

use crate::{model::ForestModel, tree::Tree};

const MAGIC: &[u8; 4] = b"TSRF";
const VERSION: u8 = 1;
const NODE_BYTES: usize = 21;

/// Serializes `m` in the current format version.
pub fn to_bytes(m: &ForestModel) -> Vec<u8> {
    let params = m.params.to_string();
    let mut out = Vec::new();
    out.extend_from_slice(MAGIC);
    out.push(VERSION);
    out.push(m.task.kind);
    out.extend_from_slice(&m.task.n_classes.to_le_bytes());
    out.extend_from_slice(&(m.n_features as u32).to_le_bytes());
    out.extend_from_slice(&(params.len() as u32).to_le_bytes());
    out.extend_from_slice(params.as_bytes());
    for v in &m.importances {
        out.extend_from_slice(&v.to_le_bytes());
    }
    out.extend_from_slice(&(m.trees.len() as u32).to_le_bytes());
    for t in &m.trees {
        out.extend_from_slice(&(t.nodes.len() as u32).to_le_bytes());
        out.extend_from_slice(&(t.values.len() as u32).to_le_bytes());
        for n in &t.nodes {
            for v in [n.feature, n.threshold.to_bits(), n.left, n.right, n.value] {
                out.extend_from_slice(&v.to_le_bytes());
            }
            out.push(n.missing_left);
        }
        for v in &t.values {
            out.extend_from_slice(&v.to_le_bytes());
        }
    }
    out
}

fn corrupt(why: impl std::fmt::Display) -> PluginError {
    PluginError::corrupt(format!("random_forest model: {why}"))
}

struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8], PluginError> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.bytes.len());
        let end = end.ok_or_else(|| corrupt(format!("truncated while reading {what}")))?;
        let s = &self.bytes[self.pos..end];
        self.pos = end;
        Ok(s)
    }

    fn array<const N: usize>(&mut self, what: &str) -> Result<[u8; N], PluginError> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.take(N, what)?);
        Ok(a)
    }

    fn u8(&mut self, what: &str) -> Result<u8, PluginError> {
        Ok(self.array::<1>(what)?[0])
    }

    fn u32(&mut self, what: &str) -> Result<u32, PluginError> {
        Ok(u32::from_le_bytes(self.array(what)?))
    }

    /// A count of items of `size` bytes each, refused unless that many
    /// bytes are still there.
    fn count(&mut self, size: usize, what: &str) -> Result<usize, PluginError> {
        let n = self.u32(what)? as usize;
        match n.checked_mul(size) {
            Some(b) if b <= self.bytes.len() - self.pos => Ok(n),
            _ => Err(corrupt(format!(
                "{what} is {n}, more than the bytes left hold"
            ))),
        }
    }
}

fn read_tree(
    r: &mut Reader<'_>,
    index: usize,
    n_features: usize,
    n_outputs: usize,
) -> Result<Tree, PluginError> {
    let n_nodes = r.count(NODE_BYTES, "node count")?;
    let n_values = r.u32("value count")? as usize;
    if n_nodes == 0 {
        return Err(corrupt(format!("tree {index} has no nodes")));
    }
    let mut nodes = Vec::with_capacity(n_nodes);
    for i in 0..n_nodes {
        let mut word = || r.u32("a node");
        let (feature, threshold, left, right, value) =
            (word()?, f32::from_bits(word()?), word()?, word()?, word()?);
        let missing_left = r.u8("a node")?;
        let n = TreeNode {
            feature,
            threshold,
            left,
            right,
            value,
            missing_left,
        };
        let ok = if n.is_leaf() {
            (value as usize)
                .checked_add(n_outputs)
                .is_some_and(|e| e <= n_values)
        } else {
            // Children after their parent: no cycles, so prediction ends.
            (feature as usize) < n_features
                && [left, right]
                    .iter()
                    .all(|&c| (c as usize) > i && (c as usize) < n_nodes)
                && missing_left <= 1
        };
        if !ok {
            return Err(corrupt(format!("node {i} of tree {index} is malformed")));
        }
        nodes.push(n);
    }
    let raw = r.take(n_values.saturating_mul(4), "leaf values")?;
    let values = raw
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    Ok(Tree { nodes, values })
}

/// Reads a model written by [`to_bytes`].
///
/// # Errors
/// Bytes that are not a complete, well-formed random_forest model.
pub fn decode(bytes: &[u8]) -> Result<ForestModel, PluginError> {
    let mut r = Reader { bytes, pos: 0 };
    if r.take(4, "the header").ok() != Some(MAGIC.as_slice()) {
        return Err(corrupt("not a random_forest model (bad magic bytes)"));
    }
    let version = r.u8("the format version")?;
    if version != VERSION {
        return Err(corrupt(format!(
            "format version {version} is not supported (this build reads version {VERSION})"
        )));
    }
    let task = match (r.u8("the task")?, r.u32("the class count")?) {
        (Task::REGRESSION, 1) => Task::regression(),
        (Task::CLASSIFICATION, k) if k >= 1 => Task::classification(k),
        (kind, k) => {
            return Err(corrupt(format!(
                "task kind {kind} with {k} classes is invalid"
            )));
        }
    };
    let n_features = r.u32("the feature count")? as usize;
    if n_features == 0 {
        return Err(corrupt("feature count is 0"));
    }
    let params_len = r.count(1, "parameter length")?;
    let params = serde_json::from_slice(r.take(params_len, "parameters")?)
        .map_err(|e| corrupt(format!("parameters are not valid JSON: {e}")))?;
    let raw = r.take(n_features.saturating_mul(8), "feature importances")?;
    let importances = raw
        .chunks_exact(8)
        .map(|c| f64::from_le_bytes(c.try_into().unwrap_or([0; 8])))
        .collect();
    let n_trees = r.count(4 + 4 + NODE_BYTES, "tree count")?;
    if n_trees == 0 {
        return Err(corrupt("the forest has no trees"));
    }
    let mut m = ForestModel {
        task,
        n_features,
        trees: Vec::with_capacity(n_trees),
        importances,
        params,
    };
    let n_outputs = m.n_outputs();
    for i in 0..n_trees {
        m.trees.push(read_tree(&mut r, i, n_features, n_outputs)?);
    }
    if r.pos != bytes.len() {
        return Err(corrupt(format!(
            "{} unexpected bytes after the last tree",
            bytes.len() - r.pos
        )));
    }
    Ok(m)
}

/// The `load` entry of the learner definition.
///
/// # Errors
/// As [`decode`].
pub fn load(
    bytes: &[u8],
    _ctx: &tessera_core::HostContextRef<'_>,
) -> Result<Box<dyn ModelImpl>, PluginError> {
    Ok(Box::new(decode(bytes)?))
}
