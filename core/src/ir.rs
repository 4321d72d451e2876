//! The model exchange form ("IR") for the two model families tessera ships:
//! tree ensembles and dense networks. Compressors and decomposers work on it,
//! and the shared inference engine is built from it.

use abi_stable::{
    StableAbi,
    std_types::{RString, RVec},
};

/// A node of a decision tree.
///
/// Internal nodes send a row left when `x[feature] <= threshold`, right
/// otherwise, and a missing value (`NaN`) to the side `missing_left` names.
/// Leaves have `feature == TreeNode::LEAF` and own `n_outputs` values starting
/// at `value` in [`Tree::values`].
#[repr(C)]
#[derive(StableAbi, Clone, Copy, Debug, PartialEq)]
pub struct TreeNode {
    /// Feature index, or [`TreeNode::LEAF`].
    pub feature: u32,
    /// Split threshold (internal nodes).
    pub threshold: f32,
    /// Left child index (internal nodes).
    pub left: u32,
    /// Right child index (internal nodes).
    pub right: u32,
    /// Offset of the leaf's values in [`Tree::values`] (leaves).
    pub value: u32,
    /// 1 when missing values go left, 0 when they go right.
    pub missing_left: u8,
}

impl TreeNode {
    /// The `feature` value that marks a leaf.
    pub const LEAF: u32 = u32::MAX;

    /// Whether this node is a leaf.
    pub fn is_leaf(&self) -> bool {
        self.feature == Self::LEAF
    }
}

/// One tree; node 0 is the root.
#[repr(C)]
#[derive(StableAbi, Clone, Debug, PartialEq)]
pub struct Tree {
    /// The nodes, root first.
    pub nodes: RVec<TreeNode>,
    /// Leaf values: `n_outputs` per leaf, or one per leaf when `output`
    /// names a single output.
    pub values: RVec<f32>,
    /// The one output this tree's leaves add to (a multiclass boosted tree
    /// serves one class), or [`Tree::ALL_OUTPUTS`].
    pub output: u32,
}

impl Tree {
    /// The `output` of a tree whose leaves hold a value for every output.
    pub const ALL_OUTPUTS: u32 = u32::MAX;

    /// Values per leaf, for an ensemble of `n_outputs` outputs.
    pub fn leaf_width(&self, n_outputs: usize) -> usize {
        if self.output == Self::ALL_OUTPUTS {
            n_outputs
        } else {
            1
        }
    }

    /// Adds the leaf values reached by `row` to `out` (`n_outputs` values).
    ///
    /// # Panics
    /// When the tree is malformed or `output` is out of range.
    pub fn add_to(&self, row: &[f32], out: &mut [f32]) {
        let v = self.leaf_values(row, out.len());
        if self.output == Self::ALL_OUTPUTS {
            for (o, v) in out.iter_mut().zip(v) {
                *o += v;
            }
        } else {
            out[self.output as usize] += v[0];
        }
    }

    /// The leaf values reached by `row` ([`Tree::leaf_width`] of them).
    ///
    /// # Panics
    /// When the tree is malformed (a child or value index out of range).
    pub fn leaf_values(&self, row: &[f32], n_outputs: usize) -> &[f32] {
        let n_outputs = self.leaf_width(n_outputs);
        let mut i = 0usize;
        loop {
            let n = &self.nodes[i];
            if n.is_leaf() {
                let v = n.value as usize;
                return &self.values[v..v + n_outputs];
            }
            let x = row[n.feature as usize];
            let left = if x.is_nan() {
                n.missing_left != 0
            } else {
                x <= n.threshold
            };
            i = if left { n.left } else { n.right } as usize;
        }
    }
}

/// How the trees' outputs combine into the model's raw output.
#[repr(u8)]
#[derive(StableAbi, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Combine {
    /// Add the trees' values to `base_score` (boosting).
    Sum,
    /// Average the trees' values (random forest, bagging of regressors or of
    /// probability-valued trees).
    Mean,
    /// Each tree votes for the class with its highest value; output the vote
    /// shares.
    Vote,
}

/// What turns the combined raw output into the prediction.
#[repr(u8)]
#[derive(StableAbi, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Link {
    /// The raw output is the prediction (regression) or the class
    /// probabilities (classification).
    Identity,
    /// Logistic function on a single raw score (binary classification).
    Sigmoid,
    /// Softmax across outputs (multiclass).
    Softmax,
}

/// A tree ensemble in exchange form.
#[repr(C)]
#[derive(StableAbi, Clone, Debug, PartialEq)]
pub struct TreeEnsemble {
    /// Number of input features.
    pub n_features: u32,
    /// Values per leaf: 1 for regression, classes for classification
    /// (except binary boosting, which has one score).
    pub n_outputs: u32,
    /// 0 for regression, otherwise the number of classes.
    pub n_classes: u32,
    /// How tree outputs combine.
    pub combine: Combine,
    /// The link applied after combining.
    pub link: Link,
    /// Added to the combined output (`n_outputs` values, or empty).
    pub base_score: RVec<f32>,
    /// The trees.
    pub trees: RVec<Tree>,
}

/// Activation of a dense layer.
#[repr(u8)]
#[derive(StableAbi, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Activation {
    /// `x`.
    Identity,
    /// `max(0, x)`.
    Relu,
    /// `tanh(x)`.
    Tanh,
    /// `1 / (1 + exp(-x))`.
    Logistic,
    /// Softmax across the layer's outputs.
    Softmax,
}

/// A fully connected layer: `out = act(W x + b)`, `W` row-major
/// `outputs x inputs`.
#[repr(C)]
#[derive(StableAbi, Clone, Debug, PartialEq)]
pub struct DenseLayer {
    /// Input width.
    pub inputs: u32,
    /// Output width.
    pub outputs: u32,
    /// `outputs * inputs` weights.
    pub weights: RVec<f32>,
    /// `outputs` biases.
    pub bias: RVec<f32>,
    /// Applied to every output.
    pub activation: Activation,
}

/// A dense feed-forward network in exchange form.
#[repr(C)]
#[derive(StableAbi, Clone, Debug, PartialEq)]
pub struct DenseNetwork {
    /// Per-feature offset subtracted from the input (may be empty).
    pub input_mean: RVec<f32>,
    /// Per-feature factor applied after the offset (may be empty).
    pub input_scale: RVec<f32>,
    /// The layers, input first.
    pub layers: RVec<DenseLayer>,
    /// 0 for regression, otherwise the number of classes.
    pub n_classes: u32,
}

/// A model in exchange form.
#[repr(C, u8)]
#[derive(StableAbi, Clone, Debug, PartialEq)]
pub enum ModelIr {
    /// A tree ensemble.
    Trees(TreeEnsemble),
    /// A dense network.
    Network(DenseNetwork),
    /// A family described by its name and the plugin's own bytes.
    Opaque {
        /// The family's name.
        family: RString,
        /// The bytes.
        bytes: RVec<u8>,
    },
}
