//! The byte form of [`QuantizedTrees`] (little-endian):
//!
//! ```text
//! "TSQT" version:u32
//! n_features:u32 n_outputs:u32 n_classes:u32 combine:u8 link:u8 bits:u8 leaves:u8
//! thresholds_moved:u64
//! base scores: count:u32, f32 each
//! per feature: edge count (varint), f32 each, ascending
//! trees: count:u32, per tree:
//!   output:u32 nodes:u32 [scales: f32 per value column, scaled leaves only]
//!   nodes in preorder, each a varint tag:
//!     0                                  a leaf, then its values
//!     1 + (feature << 1 | missing_left)  a split, then its bin (u8 or u16)
//! ```
//!
//! A leaf's values are `f32`, half, `i16` or `i8` codes (a vote's leaf: its
//! class, a varint). The structure is implicit in the preorder (a split's
//! left subtree follows it, then its right one), so a child always comes
//! after its parent and no cycle can be written; reading checks that every
//! tree ends exactly at its node count, that features, bins, classes and
//! outputs are in range, that edges ascend, and that no byte is missing
//! or left over.

use tessera_core::{
    PluginError,
    bytes::{ByteReader, put_u32},
    ir::{self, Combine, Link},
};

use crate::{
    options::LeafFormat,
    quantize::{MAX_DEPTH, QNode, QTree, QuantizedTrees, Shape, check_shape},
};

/// The first bytes of the byte form.
pub const MAGIC: &[u8; 4] = b"TSQT";
/// The version of the byte form this crate writes and reads.
pub const VERSION: u32 = 1;

const OWNER: &str = "quantized trees";

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// A varint of at most `u32::MAX`.
fn varint(r: &mut ByteReader<'_>, what: &str) -> Result<u32, PluginError> {
    let mut v = 0u64;
    for i in 0..5 {
        let b = r.u8(what)?;
        v |= u64::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            return u32::try_from(v).map_err(|_| r.corrupt(format!("{what} {v} is too large")));
        }
    }
    Err(r.corrupt(format!("{what} is not a valid number")))
}

impl QuantizedTrees {
    /// The model as bytes (see the module's documentation).
    ///
    /// # Errors
    /// More trees, nodes or values than a `u32` counts.
    pub fn to_bytes(&self) -> Result<Vec<u8>, PluginError> {
        let nodes: usize = self.trees.iter().map(|t| t.nodes.len()).sum();
        let mut out = Vec::with_capacity(64 + nodes * 3);
        out.extend_from_slice(MAGIC);
        for v in [VERSION, self.n_features, self.n_outputs, self.n_classes] {
            out.extend_from_slice(&v.to_le_bytes());
        }
        out.extend_from_slice(&[
            self.combine as u8,
            self.link as u8,
            self.bits as u8,
            self.leaves.code(),
        ]);
        out.extend_from_slice(&self.moved.to_le_bytes());
        put_u32(&mut out, self.base_score.len(), OWNER, "base scores")?;
        self.base_score
            .iter()
            .for_each(|b| out.extend_from_slice(&b.to_le_bytes()));
        for e in &self.edges {
            put_varint(&mut out, e.len() as u64);
            e.iter()
                .for_each(|x| out.extend_from_slice(&x.to_le_bytes()));
        }
        put_u32(&mut out, self.trees.len(), OWNER, "trees")?;
        for t in &self.trees {
            self.put_tree(&mut out, t)?;
        }
        Ok(out)
    }

    fn put_tree(&self, out: &mut Vec<u8>, t: &QTree) -> Result<(), PluginError> {
        out.extend_from_slice(&t.output.to_le_bytes());
        put_u32(out, t.nodes.len(), OWNER, "nodes")?;
        t.scales
            .iter()
            .for_each(|s| out.extend_from_slice(&s.to_le_bytes()));
        let w = self.codes_per_leaf(t.output);
        for n in &t.nodes {
            match *n {
                QNode::Split {
                    feature,
                    bin,
                    missing_left,
                    ..
                } => {
                    put_varint(out, 1 + (u64::from(feature) << 1 | u64::from(missing_left)));
                    if self.bits == 8 {
                        out.push(bin as u8);
                    } else {
                        out.extend_from_slice(&(bin as u16).to_le_bytes());
                    }
                }
                QNode::Leaf { leaf } => {
                    out.push(0);
                    let codes = &t.codes[leaf as usize * w..(leaf as usize + 1) * w];
                    for &c in codes {
                        if self.combine == Combine::Vote {
                            put_varint(out, u64::from(c));
                            continue;
                        }
                        match self.leaves.size() {
                            4 => out.extend_from_slice(&c.to_le_bytes()),
                            2 => out.extend_from_slice(&(c as u16).to_le_bytes()),
                            _ => out.push(c as u8),
                        }
                    }
                }
            }
        }
        Ok(())
    }

    /// Reads what [`QuantizedTrees::to_bytes`] wrote, checking all of it
    /// (see the module's documentation).
    ///
    /// # Errors
    /// Bytes that are not quantized trees, another version, truncated or
    /// followed by more bytes, or anything out of range.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, PluginError> {
        let mut r = ByteReader::new(bytes, OWNER);
        if r.take(4, "magic")? != MAGIC {
            return Err(r.corrupt("not quantized trees (bad magic bytes)"));
        }
        let version = r.u32("version")?;
        if version != VERSION {
            return Err(r.corrupt(format!(
                "format version {version}; this build reads version {VERSION}"
            )));
        }
        let n_features = r.u32("n_features")?;
        let n_outputs = r.u32("n_outputs")?;
        let n_classes = r.u32("n_classes")?;
        let combine = Combine::read(&mut r)?;
        let link = Link::read(&mut r)?;
        let bits = u32::from(r.u8("bits")?);
        if bits != 8 && bits != 16 {
            return Err(r.corrupt(format!("`bits` is {bits}, not 8 or 16")));
        }
        let leaves = r.u8("leaves")?;
        let leaves = LeafFormat::from_code(leaves)
            .ok_or_else(|| r.corrupt(format!("unknown leaf format {leaves}")))?;
        let moved = r.u64("thresholds moved")?;
        let n = r.count(4, "base scores")?;
        let base_score = (0..n)
            .map(|_| r.f32("base score"))
            .collect::<Result<Vec<_>, _>>()?;
        // Each feature takes at least one byte.
        if n_features > crate::MAX_FEATURES {
            return Err(r.corrupt(format!(
                "{n_features} features, more than the {} quantized trees take",
                crate::MAX_FEATURES
            )));
        }
        if n_features as usize > r.left() {
            return Err(r.corrupt(format!("{n_features} features, more than the bytes hold")));
        }
        let most = (1usize << bits) - 1;
        let mut edges = Vec::with_capacity(n_features as usize);
        for f in 0..n_features {
            let n = varint(&mut r, "edge count")? as usize;
            if n > most {
                return Err(r.corrupt(format!(
                    "feature {f} has {n} edges; {bits}-bit bins allow {most}"
                )));
            }
            let e = (0..n)
                .map(|_| r.f32("edge"))
                .collect::<Result<Vec<_>, _>>()?;
            // `!(a < b)` also refuses NaN.
            if e.iter().any(|x| x.is_nan()) || e.windows(2).any(|w| w[0] >= w[1]) {
                return Err(r.corrupt(format!("feature {f}'s edges do not ascend")));
            }
            edges.push(e);
        }
        let mut q = QuantizedTrees {
            n_features,
            n_outputs,
            n_classes,
            combine,
            link,
            base_score,
            bits,
            leaves,
            edges,
            moved,
            trees: Vec::new(),
        };
        // A tree takes at least 9 bytes.
        let n_trees = r.count(9, "trees")?;
        q.trees.reserve(n_trees);
        for t in 0..n_trees {
            let tree = q.read_tree(&mut r, t)?;
            q.trees.push(tree);
        }
        r.finish()?;
        let shape = Shape {
            n_features,
            n_outputs,
            n_classes,
            combine,
            link,
            base_len: q.base_score.len(),
        };
        let outputs: Vec<u32> = q.trees.iter().map(|t| t.output).collect();
        check_shape(&shape, &outputs).map_err(|e| r.corrupt(e))?;
        let splits: u64 = q.trees.iter().map(|t| t.nodes.len() as u64 / 2).sum();
        if moved > splits {
            return Err(r.corrupt(format!(
                "{moved} thresholds moved, but there are {splits} splits"
            )));
        }
        Ok(q)
    }

    /// Tree `t`.
    fn read_tree(&self, r: &mut ByteReader<'_>, t: usize) -> Result<QTree, PluginError> {
        let output = r.u32("tree output")?;
        if output != ir::Tree::ALL_OUTPUTS && output >= self.n_outputs {
            return Err(r.corrupt(format!(
                "tree {t} adds to output {output}, but there are {}",
                self.n_outputs
            )));
        }
        // A node takes at least one byte.
        let n_nodes = r.count(1, "nodes")?;
        if n_nodes == 0 {
            return Err(r.corrupt(format!("tree {t} has no nodes")));
        }
        let w = self.codes_per_leaf(output);
        let scales = if self.scaled() {
            let s = (0..w)
                .map(|_| r.f32("scale"))
                .collect::<Result<Vec<_>, _>>()?;
            if s.iter().any(|s| !(s.is_finite() && *s >= 0.0)) {
                return Err(r.corrupt(format!(
                    "tree {t} has a leaf scale that is negative or not finite"
                )));
            }
            s
        } else {
            Vec::new()
        };
        let mut nodes = Vec::with_capacity(n_nodes);
        let mut codes = Vec::new();
        // Splits whose right child is still to come, with their depth.
        let mut open: Vec<(usize, u32)> = Vec::new();
        // The depth of the next node; `None` once the tree is complete.
        let mut depth = Some(0u32);
        for i in 0..n_nodes {
            let d = depth
                .ok_or_else(|| r.corrupt(format!("tree {t} ends at node {i} of {n_nodes}")))?;
            if d > MAX_DEPTH {
                return Err(r.corrupt(format!("tree {t} is deeper than {MAX_DEPTH} levels")));
            }
            let tag = varint(r, "node")?;
            if tag == 0 {
                nodes.push(QNode::Leaf {
                    leaf: (codes.len() / w) as u32,
                });
                for _ in 0..w {
                    codes.push(self.read_code(r, t)?);
                }
                // The next node is the right child of the latest open split.
                depth = open.pop().map(|(s, d)| {
                    if let QNode::Split { right, .. } = &mut nodes[s] {
                        *right = i as u32 + 1;
                    }
                    d + 1
                });
                continue;
            }
            let feature = (tag - 1) >> 1;
            let missing_left = (tag - 1) & 1 == 1;
            let Some(edges) = self.edges.get(feature as usize) else {
                return Err(r.corrupt(format!(
                    "tree {t}: node {i} splits on feature {feature} of {}",
                    self.n_features
                )));
            };
            let bin = if self.bits == 8 {
                u32::from(r.u8("bin")?)
            } else {
                let b = r.take(2, "bin")?;
                u32::from(u16::from_le_bytes([b[0], b[1]]))
            };
            if bin as usize >= edges.len() {
                return Err(r.corrupt(format!(
                    "tree {t}: node {i} uses bin {bin} of feature {feature}, which has {} edges",
                    edges.len()
                )));
            }
            nodes.push(QNode::Split {
                feature,
                bin,
                missing_left,
                right: 0,
            });
            open.push((i, d));
            depth = Some(d + 1);
        }
        if depth.is_some() {
            return Err(r.corrupt(format!("tree {t} ends in the middle after {n_nodes} nodes")));
        }
        Ok(QTree {
            output,
            nodes,
            codes,
            scales,
        })
    }

    /// One stored leaf value of tree `t`.
    fn read_code(&self, r: &mut ByteReader<'_>, t: usize) -> Result<u32, PluginError> {
        if self.combine == Combine::Vote {
            let c = varint(r, "leaf class")?;
            if c >= self.n_classes {
                return Err(r.corrupt(format!(
                    "tree {t}: a leaf votes for class {c} of {}",
                    self.n_classes
                )));
            }
            return Ok(c);
        }
        let b = r.take(self.leaves.size(), "leaf value")?;
        Ok(match *b {
            [a, b, c, d] => u32::from_le_bytes([a, b, c, d]),
            [a, b] if self.leaves == LeafFormat::F16 => u32::from(u16::from_le_bytes([a, b])),
            [a, b] => i16::from_le_bytes([a, b]) as i32 as u32,
            [a] => a as i8 as i32 as u32,
            _ => unreachable!("leaf values take 1, 2 or 4 bytes"),
        })
    }
}
