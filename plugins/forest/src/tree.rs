//! The model's tree: a flat array of 12-byte nodes in depth-first
//! pre-order, so a left child always follows its parent and only the right
//! child's index is stored. A leaf with one value (regression, binary
//! classification) keeps it in place of the threshold; a leaf with a class
//! distribution points into [`Tree::values`].

use tessera_core::ir::{self, TreeNode};

/// One node.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Node {
    /// Split feature in the low 31 bits, missing-goes-left in the top bit;
    /// [`Node::LEAF`] for a leaf.
    pub feature: u32,
    /// Split threshold, or the leaf's value when leaves hold one value.
    pub threshold: f32,
    /// Right child, or the offset of the leaf's values in [`Tree::values`].
    pub right: u32,
}

const MISSING_LEFT: u32 = 1 << 31;

impl Node {
    /// The `feature` of a leaf.
    pub const LEAF: u32 = u32::MAX;

    /// An internal node (its left child is the next node).
    pub fn split(feature: u32, threshold: f32, missing_left: bool, right: u32) -> Self {
        Self {
            feature: feature | if missing_left { MISSING_LEFT } else { 0 },
            threshold,
            right,
        }
    }

    /// A leaf holding one value.
    pub fn leaf(value: f32) -> Self {
        Self {
            feature: Self::LEAF,
            threshold: value,
            right: 0,
        }
    }

    /// A leaf whose values start at `offset` in [`Tree::values`].
    pub fn leaf_at(offset: u32) -> Self {
        Self {
            feature: Self::LEAF,
            threshold: 0.0,
            right: offset,
        }
    }

    /// Whether this is a leaf.
    pub fn is_leaf(&self) -> bool {
        self.feature == Self::LEAF
    }

    /// The split feature (internal nodes).
    pub fn feature_index(&self) -> usize {
        (self.feature & !MISSING_LEFT) as usize
    }

    /// Where missing values go (internal nodes).
    pub fn missing_left(&self) -> bool {
        self.feature & MISSING_LEFT != 0
    }
}

/// One decision tree.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Tree {
    /// Nodes in pre-order, root first.
    pub nodes: Vec<Node>,
    /// Class distributions of leaves, when leaves hold more than one value.
    pub values: Vec<f32>,
}

impl Tree {
    /// Values a leaf stores for a model with `n_classes` classes (0 for
    /// regression): one for regression (the mean), binary classification
    /// (the probability of class 1) and a single class; the class
    /// distribution otherwise.
    pub fn leaf_width(n_classes: usize) -> usize {
        if n_classes <= 2 { 1 } else { n_classes }
    }

    /// The index of the leaf `row` reaches.
    #[inline]
    pub fn leaf(&self, row: &[f32]) -> usize {
        let mut i = 0;
        loop {
            let n = &self.nodes[i];
            if n.is_leaf() {
                return i;
            }
            let x = row[n.feature_index()];
            let left = x <= n.threshold || (x.is_nan() && n.missing_left());
            i = if left { i + 1 } else { n.right as usize };
        }
    }

    /// Adds the class distribution (or value) of the leaf `row` reaches to
    /// `acc` (`max(n_classes, 1)` values).
    #[inline]
    pub fn accumulate(&self, row: &[f32], n_classes: usize, acc: &mut [f64]) {
        let n = &self.nodes[self.leaf(row)];
        match n_classes {
            0 | 1 => acc[0] += f64::from(n.threshold),
            2 => {
                acc[0] += 1.0 - f64::from(n.threshold);
                acc[1] += f64::from(n.threshold);
            }
            k => {
                let o = n.right as usize;
                for (a, &v) in acc.iter_mut().zip(&self.values[o..o + k]) {
                    *a += f64::from(v);
                }
            }
        }
    }

    /// Number of leaves.
    pub fn n_leaves(&self) -> usize {
        self.nodes.iter().filter(|n| n.is_leaf()).count()
    }

    /// Depth of the deepest leaf (a lone root has depth 0).
    pub fn depth(&self) -> usize {
        let mut depth = vec![0usize; self.nodes.len()];
        let mut deepest = 0;
        // Children come after parents, so one forward pass sees every
        // parent's depth before its children's.
        for (i, n) in self.nodes.iter().enumerate() {
            let d = depth[i];
            deepest = deepest.max(d);
            if !n.is_leaf() {
                for c in [i + 1, n.right as usize] {
                    if let Some(child) = depth.get_mut(c) {
                        *child = d + 1;
                    }
                }
            }
        }
        deepest
    }

    /// The exchange form: leaves hold `n_outputs` values each (the class
    /// distribution, or the mean).
    pub fn to_ir(&self, n_classes: usize) -> ir::Tree {
        let n_outputs = n_classes.max(1);
        let mut nodes = Vec::with_capacity(self.nodes.len());
        let mut values = Vec::new();
        for (i, n) in self.nodes.iter().enumerate() {
            if n.is_leaf() {
                let value = values.len() as u32;
                match n_classes {
                    2 => values.extend([1.0 - n.threshold, n.threshold]),
                    0 | 1 => values.push(n.threshold),
                    k => {
                        let o = n.right as usize;
                        values.extend_from_slice(&self.values[o..o + k]);
                    }
                }
                debug_assert_eq!(values.len(), value as usize + n_outputs);
                nodes.push(TreeNode::leaf(value));
            } else {
                nodes.push(TreeNode {
                    feature: n.feature_index() as u32,
                    threshold: n.threshold,
                    left: i as u32 + 1,
                    right: n.right,
                    value: 0,
                    missing_left: u8::from(n.missing_left()),
                });
            }
        }
        ir::Tree {
            nodes: nodes.into(),
            values: values.into(),
            output: ir::Tree::ALL_OUTPUTS,
        }
    }
}
