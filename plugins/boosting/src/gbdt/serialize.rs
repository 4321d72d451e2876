//! The `gradient_boosting` model format, and reading it back without
//! trusting it.
//!
//! Layout (version 1), little-endian: magic `TSGB`, format version (1
//! byte), task kind (1 byte), class count and feature count (u32 each),
//! loss kind (1 byte) and its parameter (f64: huber's alpha or the
//! quantile), a JSON document (u32 length + UTF-8: feature names,
//! importances, learning curve, parameters), the base score (u32 count +
//! f64 each), then the tree count (u32) and per tree its node count (u32)
//! and nodes of 22 bytes: feature (u32, `u32::MAX` for a leaf), threshold
//! (f32), left and right child (u32 each), leaf value (f32), training bin
//! (u8), missing-goes-left (u8). Children always come after their parent,
//! so every walk ends.

use serde_json::{Value, json};
use tessera_core::{
    HostContextRef, PluginError, Task,
    plugin::{ModelImpl, members::ByteReader},
};

use super::{
    loss::Loss,
    model::{GbdtModel, History},
    params::LossKind,
    tree::{Node, Tree},
};

const MAGIC: &[u8; 4] = b"TSGB";
const VERSION: u8 = 1;
const NODE_BYTES: usize = 22;

fn loss_code(k: LossKind) -> (u8, f64) {
    match k {
        LossKind::Squared => (0, 0.0),
        LossKind::Absolute => (1, 0.0),
        LossKind::Huber(a) => (2, a),
        LossKind::Quantile(q) => (3, q),
        LossKind::LogLoss => (4, 0.0),
    }
}

/// Serializes `m`.
pub fn to_bytes(m: &GbdtModel) -> Vec<u8> {
    let h = &m.history;
    let meta = json!({
        "feature_names": m.feature_names,
        "gain": m.gain,
        "splits": m.splits,
        "train_loss": h.train_loss,
        "valid_loss": h.valid_loss,
        "valid_source": h.valid_source,
        "stopped_early": h.stopped_early,
        "params": m.params,
    })
    .to_string();
    let nodes: usize = m.trees.iter().map(|t| t.nodes.len()).sum();
    let mut out = Vec::with_capacity(64 + meta.len() + nodes * NODE_BYTES);
    out.extend_from_slice(MAGIC);
    out.push(VERSION);
    out.push(m.task.kind);
    out.extend_from_slice(&m.task.n_classes.to_le_bytes());
    out.extend_from_slice(&(m.n_features as u32).to_le_bytes());
    let (code, arg) = loss_code(m.loss.kind);
    out.push(code);
    out.extend_from_slice(&arg.to_le_bytes());
    out.extend_from_slice(&(meta.len() as u32).to_le_bytes());
    out.extend_from_slice(meta.as_bytes());
    out.extend_from_slice(&(m.base.len() as u32).to_le_bytes());
    for b in &m.base {
        out.extend_from_slice(&b.to_le_bytes());
    }
    out.extend_from_slice(&(m.trees.len() as u32).to_le_bytes());
    for t in &m.trees {
        out.extend_from_slice(&(t.nodes.len() as u32).to_le_bytes());
        for n in &t.nodes {
            out.extend_from_slice(&n.feature.to_le_bytes());
            out.extend_from_slice(&n.threshold.to_le_bytes());
            out.extend_from_slice(&n.left.to_le_bytes());
            out.extend_from_slice(&n.right.to_le_bytes());
            out.extend_from_slice(&n.value.to_le_bytes());
            out.push(n.bin);
            out.push(u8::from(n.missing_left));
        }
    }
    out
}

/// Reads a model written by [`to_bytes`].
///
/// # Errors
/// [`PluginError::corrupt`] for anything that is not such a model.
pub fn load(bytes: &[u8], _ctx: &HostContextRef<'_>) -> Result<Box<dyn ModelImpl>, PluginError> {
    Ok(Box::new(from_bytes(bytes)?))
}

/// Reads a model written by [`to_bytes`].
///
/// # Errors
/// [`PluginError::corrupt`] for anything that is not such a model.
pub fn from_bytes(bytes: &[u8]) -> Result<GbdtModel, PluginError> {
    let mut r = ByteReader::new(bytes, super::params::LEARNER);
    if r.take(4, "magic")? != MAGIC {
        return Err(r.corrupt("not a gradient_boosting model (bad magic)"));
    }
    let version = r.u8("version")?;
    if version != VERSION {
        return Err(r.corrupt(format!(
            "format version {version}; this plugin reads version {VERSION}"
        )));
    }
    let kind = r.u8("task")?;
    let n_classes = r.u32("class count")?;
    let task = match kind {
        Task::REGRESSION => Task::regression(),
        Task::CLASSIFICATION if (2..=1 << 16).contains(&n_classes) => {
            Task::classification(n_classes)
        }
        _ => return Err(r.corrupt(format!("bad task {kind} with {n_classes} classes"))),
    };
    let n_features = r.u32("feature count")? as usize;
    let code = r.u8("loss")?;
    let arg = r.f64("loss parameter")?;
    let kind = match code {
        0 => LossKind::Squared,
        1 => LossKind::Absolute,
        2 => LossKind::Huber(arg),
        3 => LossKind::Quantile(arg),
        4 => LossKind::LogLoss,
        _ => return Err(r.corrupt(format!("unknown loss code {code}"))),
    };
    if (kind == LossKind::LogLoss) != task.is_classification() {
        return Err(r.corrupt("loss does not match the task"));
    }
    let loss = Loss::new(kind, n_classes as usize);
    let meta_len = r.count(1, "summary length")?;
    let meta: Value = serde_json::from_slice(r.take(meta_len, "summary")?)
        .map_err(|e| r.corrupt(format!("summary is not JSON: {e}")))?;
    let n_base = r.count(8, "base score count")?;
    if n_base != loss.n_outputs {
        return Err(r.corrupt(format!(
            "{n_base} base scores for {} outputs",
            loss.n_outputs
        )));
    }
    let base = (0..n_base)
        .map(|_| r.f64("base score"))
        .collect::<Result<Vec<_>, _>>()?;
    let n_trees = r.count(4, "tree count")?;
    if n_trees % loss.n_outputs != 0 {
        return Err(r.corrupt(format!(
            "{n_trees} trees is not a whole number of rounds of {}",
            loss.n_outputs
        )));
    }
    let mut trees = Vec::with_capacity(n_trees);
    for t in 0..n_trees {
        let n_nodes = r.count(NODE_BYTES, "node count")?;
        if n_nodes == 0 {
            return Err(r.corrupt(format!("tree {t} has no nodes")));
        }
        let mut nodes = Vec::with_capacity(n_nodes);
        for i in 0..n_nodes {
            let n = Node {
                feature: r.u32("node")?,
                threshold: r.f32("node")?,
                left: r.u32("node")?,
                right: r.u32("node")?,
                value: r.f32("node")?,
                bin: r.u8("node")?,
                missing_left: r.u8("node")? != 0,
            };
            let ok = n.is_leaf()
                || ((n.feature as usize) < n_features
                    && (n.left as usize) > i
                    && (n.right as usize) > i
                    && (n.left as usize) < n_nodes
                    && (n.right as usize) < n_nodes);
            if !ok {
                return Err(r.corrupt(format!("tree {t} node {i} is malformed")));
            }
            nodes.push(n);
        }
        trees.push(Tree { nodes });
    }
    r.finish()?;
    let floats = |key: &str| -> Vec<f64> {
        meta[key]
            .as_array()
            .map(|a| a.iter().filter_map(Value::as_f64).collect())
            .unwrap_or_default()
    };
    let feature_names: Vec<String> = meta["feature_names"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    let gain = floats("gain");
    let splits: Vec<u64> = meta["splits"]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_u64).collect())
        .unwrap_or_default();
    if feature_names.len() != n_features || gain.len() != n_features || splits.len() != n_features {
        return Err(r.corrupt("summary does not match the feature count"));
    }
    let model = GbdtModel {
        task,
        n_features,
        loss,
        base,
        trees,
        feature_names,
        gain,
        splits,
        history: History {
            train_loss: floats("train_loss"),
            valid_loss: floats("valid_loss"),
            valid_source: meta["valid_source"].as_str().unwrap_or("").to_string(),
            stopped_early: meta["stopped_early"].as_bool().unwrap_or(false),
        },
        params: meta["params"].clone(),
        engine: Default::default(),
    };
    // Compiling checks every tree, and a loaded model is about to predict.
    model.engine()?;
    Ok(model)
}
