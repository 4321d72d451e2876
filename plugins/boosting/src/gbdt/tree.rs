//! A boosted regression tree as the model keeps it.

use tessera_core::ir::{self, TreeNode};
use tessera_trees::{BinnedData, MISSING_BIN};

/// A node: internal nodes send `x[feature] <= threshold` left (missing
/// values to the side `missing_left` names); leaves hold a value.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Node {
    /// Feature index, or [`Node::LEAF`].
    pub feature: u32,
    /// Threshold on the raw feature value.
    pub threshold: f32,
    /// The same split on training bins: bins `0..=bin` go left.
    pub bin: u8,
    /// Where missing values go.
    pub missing_left: bool,
    /// Left child (internal nodes).
    pub left: u32,
    /// Right child (internal nodes).
    pub right: u32,
    /// The leaf's value, shrinkage applied (leaves).
    pub value: f32,
}

impl Node {
    /// The `feature` of a leaf.
    pub const LEAF: u32 = u32::MAX;

    /// A leaf of value `value`.
    pub fn leaf(value: f32) -> Self {
        Self {
            feature: Self::LEAF,
            threshold: 0.0,
            bin: 0,
            missing_left: false,
            left: 0,
            right: 0,
            value,
        }
    }

    /// Whether this is a leaf.
    #[inline]
    pub fn is_leaf(&self) -> bool {
        self.feature == Self::LEAF
    }
}

/// One tree, root first; children come after their parent.
#[derive(Clone, Debug, PartialEq)]
pub struct Tree {
    /// The nodes.
    pub nodes: Vec<Node>,
}

impl Tree {
    /// The value of the leaf `x` reaches.
    #[inline]
    pub fn value(&self, x: &[f32]) -> f32 {
        let mut n = &self.nodes[0];
        while !n.is_leaf() {
            let v = x[n.feature as usize];
            let left = if v.is_nan() {
                n.missing_left
            } else {
                v <= n.threshold
            };
            n = &self.nodes[if left { n.left } else { n.right } as usize];
        }
        n.value
    }

    /// The value of the leaf that row `r` of binned data reaches, routing
    /// by bins as training did.
    #[inline]
    pub fn value_binned(&self, data: &BinnedData, r: usize) -> f32 {
        let mut n = &self.nodes[0];
        while !n.is_leaf() {
            let b = data.column(n.feature as usize)[r];
            let left = if b == MISSING_BIN {
                n.missing_left
            } else {
                b <= n.bin
            };
            n = &self.nodes[if left { n.left } else { n.right } as usize];
        }
        n.value
    }

    /// Number of leaves.
    pub fn n_leaves(&self) -> usize {
        self.nodes.iter().filter(|n| n.is_leaf()).count()
    }

    /// The exchange form; `output` is the output the tree adds to
    /// ([`ir::Tree::ALL_OUTPUTS`] for single-output models).
    pub fn to_ir(&self, output: u32) -> ir::Tree {
        let mut values = Vec::new();
        let nodes = self
            .nodes
            .iter()
            .map(|n| {
                if n.is_leaf() {
                    values.push(n.value);
                    TreeNode::leaf(values.len() as u32 - 1)
                } else {
                    TreeNode {
                        feature: n.feature,
                        threshold: n.threshold,
                        left: n.left,
                        right: n.right,
                        value: 0,
                        missing_left: u8::from(n.missing_left),
                    }
                }
            })
            .collect::<Vec<_>>();
        ir::Tree {
            nodes: nodes.into(),
            values: values.into(),
            output,
        }
    }
}
