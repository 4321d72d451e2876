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
                nodes.push(TreeNode {
                    feature: TreeNode::LEAF,
                    threshold: 0.0,
                    left: 0,
                    right: 0,
                    value,
                    missing_left: 0,
                });
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

/// One node of a [`Walk`].
#[derive(Clone, Copy, Debug, PartialEq)]
struct Step {
    /// Feature index in the low 31 bits, missing-goes-left in the top bit.
    feature: u32,
    /// Threshold; for a leaf, its value or (bits) its values' offset.
    threshold: f32,
    /// Next node when the row goes right, and when it goes left.
    next: [u32; 2],
}

/// A tree laid out for batch prediction: both children explicit and a
/// leaf leading back to itself, so rows descend in lockstep without a test
/// for leaves or a branch on the comparison (the comparison picks the
/// child by index); a leaf keeps its value, or the offset of its values in
/// [`Tree::values`], in place of the threshold.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Walk {
    steps: Vec<Step>,
}

impl Walk {
    /// The prediction layout of `tree`, whose leaves hold `width` values
    /// (see [`Tree::leaf_width`]).
    pub fn new(tree: &Tree, width: usize) -> Self {
        let steps = tree
            .nodes
            .iter()
            .enumerate()
            .map(|(i, n)| {
                let i = i as u32;
                if !n.is_leaf() {
                    Step {
                        feature: n.feature,
                        threshold: n.threshold,
                        next: [n.right, i + 1],
                    }
                } else if width == 1 {
                    Step {
                        feature: 0,
                        threshold: n.threshold,
                        next: [i, i],
                    }
                } else {
                    Step {
                        feature: 0,
                        threshold: f32::from_bits(n.right),
                        next: [i, i],
                    }
                }
            })
            .collect();
        Walk { steps }
    }

    /// The payload of leaf `i`: its value's bits (one-value leaves) or its
    /// offset in [`Tree::values`].
    #[inline]
    pub fn payload(&self, i: u32) -> u32 {
        self.steps[i as usize].threshold.to_bits()
    }

    /// The leaves reached by `LANES` rows (`rows`, `p` values each), which
    /// descend in lockstep so one row's next node loads while the others'
    /// are compared. With `NAN = false` the rows must hold no missing
    /// value.
    #[inline]
    pub fn leaves<const LANES: usize, const NAN: bool>(
        &self,
        rows: &[f32],
        p: usize,
    ) -> [u32; LANES] {
        let mut idx = [0u32; LANES];
        loop {
            let mut moved = false;
            for (l, i) in idx.iter_mut().enumerate() {
                let n = &self.steps[*i as usize];
                let x = rows[l * p + (n.feature & !MISSING_LEFT) as usize];
                let left = if NAN {
                    (x <= n.threshold) | (x.is_nan() & (n.feature & MISSING_LEFT != 0))
                } else {
                    x <= n.threshold
                };
                let next = n.next[usize::from(left)];
                moved |= next != *i;
                *i = next;
            }
            if !moved {
                return idx;
            }
        }
    }
}
