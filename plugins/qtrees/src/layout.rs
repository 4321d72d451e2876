//! The compiled form a [`QuantizedModel`](crate::QuantizedModel) predicts
//! with: each tree's nodes breadth-first, the two children of a split side
//! by side, every node one packed integer (feature, bin, left child), and
//! a leaf its own left child.
//!
//! A row goes right at a node when its bin exceeds the node's bin; a
//! leaf's bin is the largest a row can have, so every row stays at a
//! leaf, and a group of rows descends a tree in lockstep with no test for
//! "reached a leaf": the next node is `left + (bin > node's bin)`. Child
//! indices count from the tree's first node, so a node takes 4 bytes
//! ([`u32`]: 8-bit feature and bin, 16-bit child) when bins have 8 bits,
//! features are at most 256 and trees at most 65536 nodes, else 8 bytes
//! ([`u64`]: 24-bit feature and child, 16-bit bin); a random forest's
//! tree of a few thousand nodes then sits in the first-level cache.

use tessera_core::{
    PluginError,
    ir::{self, Combine},
};

use crate::{
    options::LeafFormat,
    quantize::{QNode, QTree, QuantizedTrees},
};

/// A packed node.
pub(crate) trait Node: Copy + Send + Sync + std::fmt::Debug + 'static {
    /// Most features a node can name.
    const MAX_FEATURES: usize;
    /// Most nodes a tree can have.
    const MAX_NODES: usize;
    /// Width of the bin field.
    const BIN_BITS: u32;
    /// Packs a node (every field in range).
    fn pack(feature: u32, bin: u32, left: u32) -> Self;
    /// The feature tested.
    fn feature(self) -> usize;
    /// The node's bin: right when the row's bin is above it.
    fn bin(self) -> u32;
    /// The left child's index in the tree (the right one follows it).
    fn left(self) -> usize;
}

impl Node for u32 {
    const MAX_FEATURES: usize = 1 << 8;
    const MAX_NODES: usize = 1 << 16;
    const BIN_BITS: u32 = 8;
    fn pack(feature: u32, bin: u32, left: u32) -> Self {
        feature | bin << 8 | left << 16
    }
    #[inline(always)]
    fn feature(self) -> usize {
        (self & 0xff) as usize
    }
    #[inline(always)]
    fn bin(self) -> u32 {
        (self >> 8) & 0xff
    }
    #[inline(always)]
    fn left(self) -> usize {
        (self >> 16) as usize
    }
}

impl Node for u64 {
    const MAX_FEATURES: usize = 1 << 24;
    const MAX_NODES: usize = 1 << 24;
    const BIN_BITS: u32 = 16;
    fn pack(feature: u32, bin: u32, left: u32) -> Self {
        u64::from(feature) | u64::from(bin) << 24 | u64::from(left) << 40
    }
    #[inline(always)]
    fn feature(self) -> usize {
        (self & 0xff_ffff) as usize
    }
    #[inline(always)]
    fn bin(self) -> u32 {
        ((self >> 24) & 0xffff) as u32
    }
    #[inline(always)]
    fn left(self) -> usize {
        (self >> 40) as usize
    }
}

/// What a tree's leaves add to a row's outputs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Adds {
    /// Their one value (the payload's `f32` bits) to this output.
    One(u32),
    /// `n_outputs` values from [`Layout::values`] at the payload.
    All,
    /// `n_outputs` stored codes packed in the payload (lowest bits first),
    /// decoded by [`Layout::leaves`] with the tree's scales: saves the
    /// second dependent load of [`Adds::All`] where the codes fit 32 bits
    /// (two outputs of 16 bits, up to four of 8).
    Packed,
    /// 1 to the class the payload names.
    Vote,
}

/// Where a compiled tree lives and how deep it is.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct TreeInfo {
    /// Index of its first node in the node arrays.
    pub(crate) start: usize,
    /// Number of nodes.
    pub(crate) len: usize,
    /// Edges on the longest root-to-leaf path.
    pub(crate) depth: u32,
    /// Edges on the shortest root-to-leaf path.
    pub(crate) min_depth: u32,
    pub(crate) adds: Adds,
    /// The scale of each output's codes, for [`Adds::Packed`] integers.
    pub(crate) scales: [f32; 4],
}

/// All trees compiled, deepest first.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Layout<N> {
    /// Every tree's nodes, tree after tree.
    pub(crate) nodes: Vec<N>,
    /// Per node: 1 when a missing value goes left, and at leaves (where it
    /// keeps a missing value in place; see [`crate::walk`]).
    pub(crate) missing: Vec<u8>,
    /// Per node: a leaf's payload (see [`Adds`]); 0 for splits.
    pub(crate) payload: Vec<u32>,
    /// Leaf values of trees that add to every output.
    pub(crate) values: Vec<f32>,
    /// How the codes of [`Adds::Packed`] leaves are stored.
    pub(crate) leaves: LeafFormat,
    /// The trees, deepest first (stable): the order in which their values
    /// are added, the engine's, so that sums agree to the last bit.
    pub(crate) trees: Vec<TreeInfo>,
}

impl<N: Node> Layout<N> {
    /// Whether `q` fits nodes of this type.
    pub(crate) fn fits(q: &QuantizedTrees) -> bool {
        q.n_features as usize <= N::MAX_FEATURES
            && q.trees.iter().all(|t| t.nodes.len() <= N::MAX_NODES)
            && q.bits <= N::BIN_BITS
    }

    /// Compiles `q`'s trees (which [`QuantizedTrees`] keeps well-formed).
    ///
    /// # Errors
    /// When `q` does not [fit](Layout::fits).
    pub(crate) fn compile(q: &QuantizedTrees) -> Result<Self, PluginError> {
        if !Self::fits(q) {
            return Err(PluginError::unsupported(format!(
                "quantized trees: at most {} features, {} nodes per tree and {}-bit bins, got {}, {} and {}",
                N::MAX_FEATURES,
                N::MAX_NODES,
                N::BIN_BITS,
                q.n_features,
                q.trees.iter().map(|t| t.nodes.len()).max().unwrap_or(0),
                q.bits
            )));
        }
        let total: usize = q.trees.iter().map(|t| t.nodes.len()).sum();
        let mut out = Layout {
            nodes: Vec::with_capacity(total),
            missing: Vec::with_capacity(total),
            payload: Vec::with_capacity(total),
            values: Vec::new(),
            leaves: q.leaves,
            trees: Vec::with_capacity(q.trees.len()),
        };
        for t in &q.trees {
            let info = out.push_tree(q, t);
            out.trees.push(info);
        }
        out.trees.sort_by_key(|t| std::cmp::Reverse(t.depth));
        Ok(out)
    }

    /// Appends one tree breadth-first, the children of a split side by
    /// side.
    fn push_tree(&mut self, q: &QuantizedTrees, t: &QTree) -> TreeInfo {
        let k = q.n_outputs as usize;
        let adds = if q.combine == Combine::Vote {
            Adds::Vote
        } else if t.output != ir::Tree::ALL_OUTPUTS {
            Adds::One(t.output)
        } else if k == 1 {
            Adds::One(0)
        } else if q.leaves != LeafFormat::F32 && k * q.leaves.size() <= 4 {
            Adds::Packed
        } else {
            Adds::All
        };
        let mut scales = [0.0f32; 4];
        if adds == Adds::Packed && q.scaled() {
            scales[..k].copy_from_slice(&t.scales);
        }
        let leaf_bin = (1u32 << q.bits) - 1;
        let start = self.nodes.len();
        let len = t.nodes.len();
        self.nodes.resize(start + len, N::pack(0, 0, 0));
        self.missing.resize(start + len, 0);
        self.payload.resize(start + len, 0);
        let (mut depth, mut min_depth) = (0u32, u32::MAX);
        // (preorder index, slot, depth); slots are handed out in order.
        let mut queue = std::collections::VecDeque::from([(0usize, 0usize, 0u32)]);
        let mut next = 1usize;
        while let Some((s, slot, d)) = queue.pop_front() {
            let at = start + slot;
            match t.nodes[s] {
                QNode::Leaf { leaf } => {
                    depth = depth.max(d);
                    min_depth = min_depth.min(d);
                    self.nodes[at] = N::pack(0, leaf_bin, slot as u32);
                    self.missing[at] = 1;
                    self.payload[at] = self.leaf_payload(q, t, leaf as usize, adds);
                }
                QNode::Split {
                    feature,
                    bin,
                    missing_left,
                    right,
                } => {
                    self.nodes[at] = N::pack(feature, bin, next as u32);
                    self.missing[at] = u8::from(missing_left);
                    queue.push_back((s + 1, next, d + 1));
                    queue.push_back((right as usize, next + 1, d + 1));
                    next += 2;
                }
            }
        }
        TreeInfo {
            start,
            len,
            depth,
            min_depth,
            adds,
            scales,
        }
    }

    fn leaf_payload(&mut self, q: &QuantizedTrees, t: &QTree, leaf: usize, adds: Adds) -> u32 {
        match adds {
            Adds::Vote => t.codes[leaf],
            Adds::One(_) => q.value(t, leaf, 0).to_bits(),
            Adds::Packed => {
                let (k, bits) = (q.n_outputs as usize, 8 * q.leaves.size());
                let codes = &t.codes[leaf * k..(leaf + 1) * k];
                let mask = (1u32 << bits) - 1;
                (codes.iter().enumerate()).fold(0, |p, (c, &code)| p | (code & mask) << (c * bits))
            }
            Adds::All => {
                let offset = self.values.len() as u32;
                let k = q.n_outputs as usize;
                self.values.extend((0..k).map(|c| q.value(t, leaf, c)));
                offset
            }
        }
    }

    /// Bytes the compiled trees take.
    pub(crate) fn size_bytes(&self) -> usize {
        self.nodes.len() * (std::mem::size_of::<N>() + 5) + self.values.len() * 4
    }

    /// The deepest tree's depth.
    pub(crate) fn max_depth(&self) -> u32 {
        self.trees.first().map_or(0, |t| t.depth)
    }
}
