//! The compiled layout: each tree's nodes breadth-first, the two children
//! of a node side by side, all trees' nodes in three arrays (an 8-byte
//! feature offset and threshold, the left child's index, and a word read
//! only for missing values and at leaves).
//!
//! A leaf has a NaN threshold and is its own left child, so every row goes
//! "left" at a leaf, to itself: a group of rows descends a tree in lockstep
//! with no test for "reached a leaf" and no branch on the comparison, the
//! next node being `left + (x > threshold)`. A leaf keeps its payload in
//! the third array: the bits of its value when leaves hold one value,
//! otherwise the offset of its values in [`Layout::values`].

use std::collections::VecDeque;

use tessera_core::{
    PluginError,
    ir::{self, Combine, TreeEnsemble, TreeNode},
};

/// Rows per block of batch prediction, a power of two: a node names its
/// feature by the feature's offset in a transposed block,
/// `feature * BLOCK`, so that a lane's value is one load away.
pub const BLOCK: usize = 1 << BLOCK_SHIFT;
/// `log2(BLOCK)`.
pub const BLOCK_SHIFT: u32 = 6;
/// Most features a model may have (the offsets fit 31 bits).
pub const MAX_FEATURES: u32 = 1 << (31 - BLOCK_SHIFT);

/// One node of the compiled layout.
///
/// A row goes right when `x > threshold`, else left, so a leaf, whose
/// threshold is NaN, sends every row left: to itself. A missing value goes
/// right unless `aux` says left; a leaf keeps its payload in `aux`.
#[derive(Clone, Copy, Debug)]
#[repr(C)]
pub struct Node {
    /// `feature * BLOCK`: the feature's offset in a transposed block.
    pub column: u32,
    /// Threshold (internal nodes); NaN (leaves).
    pub threshold: f32,
    /// Index of the left child in the whole node array; the right child
    /// follows it. A leaf's is its own index.
    pub left: u32,
    /// 1 when a missing value goes left (internal nodes); the payload
    /// (leaves): the bits of the leaf's one value, or the offset of its
    /// values in [`Layout::values`].
    pub aux: u32,
}

/// The part of a node a step reads first.
#[derive(Clone, Copy, Debug)]
#[repr(C)]
pub struct Split {
    /// [`Node::column`].
    pub column: u32,
    /// [`Node::threshold`].
    pub threshold: f32,
}

impl PartialEq for Split {
    /// Bitwise, so that NaN thresholds compare equal.
    fn eq(&self, o: &Self) -> bool {
        (self.column, self.threshold.to_bits()) == (o.column, o.threshold.to_bits())
    }
}

impl PartialEq for Node {
    /// Bitwise, so that NaN thresholds compare equal.
    fn eq(&self, o: &Self) -> bool {
        (self.column, self.threshold.to_bits(), self.left, self.aux)
            == (o.column, o.threshold.to_bits(), o.left, o.aux)
    }
}

/// Where a compiled tree lives and how deep it is.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TreeInfo {
    /// Index of the root in the node array.
    pub root: u32,
    /// Number of nodes.
    pub len: u32,
    /// Edges on the longest root-to-leaf path.
    pub depth: u32,
    /// Edges on the shortest root-to-leaf path.
    pub min_depth: u32,
    /// The output this tree adds to, or [`ir::Tree::ALL_OUTPUTS`].
    pub output: u32,
}

/// All trees compiled.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Layout {
    /// Input features per row.
    pub(crate) n_features: usize,
    /// Every tree's nodes, tree after tree, while compiling; then split
    /// into the three arrays below and emptied.
    nodes: Vec<Node>,
    /// Each node's column and threshold (8 bytes, so that a node index
    /// scales into an address for free).
    pub(crate) split: Vec<Split>,
    /// Each node's [`Node::left`].
    pub(crate) left: Vec<u32>,
    /// Each node's [`Node::aux`]: read only for missing values and leaves.
    pub(crate) aux: Vec<u32>,
    /// Leaf values of multi-value leaves.
    pub(crate) values: Vec<f32>,
    /// One entry per tree, in the ensemble's order.
    pub(crate) trees: Vec<TreeInfo>,
    /// The same, deepest first (stable): the order in which trees are
    /// walked and their values added, so that one row walks trees of alike
    /// depth in lockstep.
    pub(crate) by_depth: Vec<TreeInfo>,
}

/// Deepest tree the layout accepts; a deeper one is surely not a tree a
/// learner grew, and would make lockstep walks pointlessly long.
pub const MAX_DEPTH: u32 = 4096;

impl Layout {
    /// Compiles `ens`'s trees, checking every index.
    ///
    /// # Errors
    /// A malformed tree: a child, feature, output or value offset out of
    /// range, a node reached twice (a cycle or a shared subtree), or a tree
    /// deeper than [`MAX_DEPTH`].
    pub fn compile(ens: &TreeEnsemble) -> Result<Self, PluginError> {
        let mut out = Layout {
            n_features: ens.n_features as usize,
            ..Layout::default()
        };
        let total: usize = ens.trees.iter().map(|t| t.nodes.len()).sum();
        if total > u32::MAX as usize / 2 {
            return Err(PluginError::unsupported(format!(
                "the ensemble has {total} nodes; the engine takes at most {}",
                u32::MAX / 2
            )));
        }
        if ens.n_features >= MAX_FEATURES {
            return Err(PluginError::unsupported(format!(
                "the ensemble has {} features; the engine takes at most {}",
                ens.n_features,
                MAX_FEATURES - 1
            )));
        }
        out.nodes.reserve(total);
        for (t, tree) in ens.trees.iter().enumerate() {
            let info = out
                .push_tree(ens, tree)
                .map_err(|e| PluginError::corrupt(format!("tree {t}: {e}")))?;
            out.trees.push(info);
        }
        for t in &mut out.trees {
            // A tree whose leaves hold one value for a one-output model
            // adds to output 0.
            if t.output == ir::Tree::ALL_OUTPUTS
                && ens.n_outputs == 1
                && ens.combine != Combine::Vote
            {
                t.output = 0;
            }
        }
        let nodes = std::mem::take(&mut out.nodes);
        out.split = nodes
            .iter()
            .map(|n| Split {
                column: n.column,
                threshold: n.threshold,
            })
            .collect();
        out.left = nodes.iter().map(|n| n.left).collect();
        out.aux = nodes.iter().map(|n| n.aux).collect();
        out.by_depth = out.trees.clone();
        out.by_depth.sort_by_key(|t| std::cmp::Reverse(t.depth));
        Ok(out)
    }

    /// Appends one tree in breadth-first order, the two children of a node
    /// side by side, keeping only what the root reaches.
    fn push_tree(&mut self, ens: &TreeEnsemble, tree: &ir::Tree) -> Result<TreeInfo, String> {
        let k = ens.n_outputs as usize;
        let output = tree.output;
        if output != ir::Tree::ALL_OUTPUTS && output >= ens.n_outputs {
            return Err(format!("adds to output {output}, but the ensemble has {k}"));
        }
        let width = tree.leaf_width(k);
        let src = tree.nodes.as_slice();
        if src.is_empty() {
            return Err("has no nodes".into());
        }
        let root = self.nodes.len();
        let blank = Node {
            column: 0,
            threshold: f32::NAN,
            left: 0,
            aux: 0,
        };
        self.nodes.push(blank);
        let mut seen = vec![false; src.len()];
        // (source node, its slot, its depth)
        let mut queue = VecDeque::from([(0usize, root, 0u32)]);
        let (mut depth, mut min_depth) = (0u32, u32::MAX);
        while let Some((s, slot, d)) = queue.pop_front() {
            if d > MAX_DEPTH {
                return Err(format!("is deeper than {MAX_DEPTH} levels"));
            }
            let n = src
                .get(s)
                .ok_or_else(|| format!("a child index {s} is out of range"))?;
            if std::mem::replace(&mut seen[s], true) {
                return Err(format!("node {s} is reached twice (a cycle?)"));
            }
            if n.is_leaf() {
                depth = depth.max(d);
                min_depth = min_depth.min(d);
                self.nodes[slot] = Node {
                    column: 0,
                    threshold: f32::NAN,
                    left: slot as u32,
                    aux: self.leaf_payload(tree, n, width, ens.combine, s)?,
                };
                continue;
            }
            if n.feature >= ens.n_features {
                return Err(format!(
                    "node {s} splits on feature {}, but the ensemble has {}",
                    n.feature, ens.n_features
                ));
            }
            if n.threshold.is_nan() {
                return Err(format!("node {s} has a NaN threshold"));
            }
            let left = self.nodes.len();
            self.nodes.extend([blank, blank]);
            self.nodes[slot] = Node {
                column: n.feature << BLOCK_SHIFT,
                threshold: n.threshold,
                left: left as u32,
                aux: u32::from(n.missing_left != 0),
            };
            queue.push_back((n.left as usize, left, d + 1));
            queue.push_back((n.right as usize, left + 1, d + 1));
        }
        Ok(TreeInfo {
            root: root as u32,
            len: (self.nodes.len() - root) as u32,
            depth,
            min_depth,
            output,
        })
    }

    /// A leaf's payload: its one value's bits, or the offset of its values
    /// (copied into [`Layout::values`]; a vote becomes a one-hot row).
    fn leaf_payload(
        &mut self,
        tree: &ir::Tree,
        n: &TreeNode,
        width: usize,
        combine: Combine,
        s: usize,
    ) -> Result<u32, String> {
        let v = n.value as usize;
        let vals = tree.values.get(v..v + width).ok_or_else(|| {
            format!(
                "leaf {s}'s values start at {v}, past the {} values",
                tree.values.len()
            )
        })?;
        if width == 1 && combine != Combine::Vote {
            return Ok(vals[0].to_bits());
        }
        let offset = u32::try_from(self.values.len())
            .map_err(|_| "the ensemble has too many leaf values".to_string())?;
        if combine == Combine::Vote {
            let best = argmax(vals);
            self.values
                .extend((0..width).map(|c| if c == best { 1.0 } else { 0.0 }));
        } else {
            self.values.extend_from_slice(vals);
        }
        Ok(offset)
    }
}

/// Index of the largest value, the first on ties.
pub fn argmax<T: PartialOrd + Copy>(v: &[T]) -> usize {
    let mut best = 0;
    for (i, &x) in v.iter().enumerate() {
        if x > v[best] {
            best = i;
        }
    }
    best
}
