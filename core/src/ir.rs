//! The model exchange form ("IR") for the two model families tessera ships:
//! tree ensembles and dense networks. Compressors and decomposers work on it,
//! and the shared inference engine is built from it.

use abi_stable::{
    StableAbi,
    std_types::{RString, RVec},
};

use crate::{
    bytes::{ByteReader, put_u32},
    error::PluginError,
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

    /// A leaf whose values start at `value` in [`Tree::values`].
    pub fn leaf(value: u32) -> Self {
        Self {
            feature: Self::LEAF,
            threshold: 0.0,
            left: 0,
            right: 0,
            value,
            missing_left: 0,
        }
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

/// The first bytes of a [`TreeEnsemble`] in its byte form.
pub const TREES_MAGIC: &[u8; 4] = b"TSIR";
/// The version of that form this crate writes and reads.
pub const TREES_VERSION: u32 = 1;
/// Bytes of one node in the byte form.
const NODE_BYTES: usize = 21;

impl TreeEnsemble {
    /// The ensemble as bytes (little-endian): [`TREES_MAGIC`], the
    /// version, the shape, the base score, then each tree's output, nodes
    /// and leaf values. [`TreeEnsemble::from_bytes`] reads it back.
    ///
    /// # Errors
    /// More trees, nodes or values than a `u32` counts.
    pub fn to_bytes(&self) -> Result<Vec<u8>, PluginError> {
        let nodes: usize = self.trees.iter().map(|t| t.nodes.len()).sum();
        let mut out = Vec::with_capacity(64 + nodes * NODE_BYTES);
        out.extend_from_slice(TREES_MAGIC);
        for v in [
            TREES_VERSION,
            self.n_features,
            self.n_outputs,
            self.n_classes,
        ] {
            out.extend_from_slice(&v.to_le_bytes());
        }
        out.push(self.combine as u8);
        out.push(self.link as u8);
        let put = |out: &mut Vec<u8>, n: usize, what: &str| put_u32(out, n, "tree ensemble", what);
        put(&mut out, self.base_score.len(), "base scores")?;
        for b in self.base_score.iter() {
            out.extend_from_slice(&b.to_le_bytes());
        }
        put(&mut out, self.trees.len(), "trees")?;
        for t in self.trees.iter() {
            out.extend_from_slice(&t.output.to_le_bytes());
            put(&mut out, t.nodes.len(), "nodes")?;
            for n in t.nodes.iter() {
                for v in [n.feature, n.threshold.to_bits(), n.left, n.right, n.value] {
                    out.extend_from_slice(&v.to_le_bytes());
                }
                out.push(n.missing_left);
            }
            put(&mut out, t.values.len(), "leaf values")?;
            for v in t.values.iter() {
                out.extend_from_slice(&v.to_le_bytes());
            }
        }
        Ok(out)
    }

    /// Reads what [`TreeEnsemble::to_bytes`] wrote, and how many bytes it
    /// took (the ensemble may be followed by other data).
    ///
    /// Only the form is checked here: that every count fits the bytes and
    /// the enums are known. Whether the trees make sense (indices in range,
    /// no cycles) is the inference engine's check, done when it compiles
    /// them.
    ///
    /// # Errors
    /// Bytes that are not an ensemble, a newer version, or truncated.
    pub fn from_bytes(bytes: &[u8]) -> Result<(Self, usize), PluginError> {
        let mut r = ByteReader::new(bytes, "tree ensemble");
        if r.take(4, "magic")? != TREES_MAGIC {
            return Err(r.corrupt("not a tree ensemble (bad magic bytes)"));
        }
        let version = r.u32("version")?;
        if version != TREES_VERSION {
            return Err(r.corrupt(format!(
                "format version {version}; this build reads version {TREES_VERSION}"
            )));
        }
        let n_features = r.u32("n_features")?;
        let n_outputs = r.u32("n_outputs")?;
        let n_classes = r.u32("n_classes")?;
        let combine = match r.u8("combine")? {
            0 => Combine::Sum,
            1 => Combine::Mean,
            2 => Combine::Vote,
            c => return Err(r.corrupt(format!("unknown combination {c}"))),
        };
        let link = match r.u8("link")? {
            0 => Link::Identity,
            1 => Link::Sigmoid,
            2 => Link::Softmax,
            l => return Err(r.corrupt(format!("unknown link {l}"))),
        };
        let n = r.count(4, "base scores")?;
        let base_score = (0..n)
            .map(|_| r.f32("base score"))
            .collect::<Result<Vec<_>, _>>()?;
        // A tree takes at least 12 bytes.
        let n_trees = r.count(12, "trees")?;
        let mut trees = Vec::with_capacity(n_trees);
        for _ in 0..n_trees {
            let output = r.u32("tree output")?;
            let n = r.count(NODE_BYTES, "nodes")?;
            let mut nodes = Vec::with_capacity(n);
            for _ in 0..n {
                nodes.push(TreeNode {
                    feature: r.u32("node")?,
                    threshold: r.f32("node")?,
                    left: r.u32("node")?,
                    right: r.u32("node")?,
                    value: r.u32("node")?,
                    missing_left: r.u8("node")?,
                });
            }
            let n = r.count(4, "leaf values")?;
            let values = (0..n)
                .map(|_| r.f32("leaf value"))
                .collect::<Result<Vec<_>, _>>()?;
            trees.push(Tree {
                nodes: nodes.into(),
                values: values.into(),
                output,
            });
        }
        let used = bytes.len() - r.left();
        Ok((
            Self {
                n_features,
                n_outputs,
                n_classes,
                combine,
                link,
                base_score: base_score.into(),
                trees: trees.into(),
            },
            used,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> TreeEnsemble {
        let split = TreeNode {
            feature: 1,
            threshold: 0.5,
            left: 1,
            right: 2,
            value: 0,
            missing_left: 1,
        };
        let leaf = TreeNode::leaf;
        TreeEnsemble {
            n_features: 3,
            n_outputs: 2,
            n_classes: 2,
            combine: Combine::Mean,
            link: Link::Identity,
            base_score: vec![0.25, -1.0].into(),
            trees: vec![
                Tree {
                    nodes: vec![split, leaf(0), leaf(2)].into(),
                    values: vec![0.1, 0.9, 0.7, 0.3].into(),
                    output: Tree::ALL_OUTPUTS,
                };
                3
            ]
            .into(),
        }
    }

    #[test]
    fn bytes_round_trip_and_say_how_much_they_took() {
        let e = sample();
        let mut bytes = e.to_bytes().unwrap();
        let n = bytes.len();
        bytes.extend_from_slice(b"trailing");
        let (back, used) = TreeEnsemble::from_bytes(&bytes).unwrap();
        assert_eq!(back, e);
        assert_eq!(used, n);
    }

    #[test]
    fn every_truncation_and_bad_tag_is_refused() {
        let bytes = sample().to_bytes().unwrap();
        for cut in 0..bytes.len() {
            assert!(
                TreeEnsemble::from_bytes(&bytes[..cut]).is_err(),
                "cut at {cut}"
            );
        }
        let mut bad = bytes.clone();
        bad[0] = b'X';
        let e = TreeEnsemble::from_bytes(&bad).unwrap_err();
        assert!(e.message.contains("magic"), "{}", e.message);
        let mut bad = bytes.clone();
        bad[4] = 9;
        let e = TreeEnsemble::from_bytes(&bad).unwrap_err();
        assert!(e.message.contains("version 9"), "{}", e.message);
        let mut bad = bytes;
        bad[20] = 7;
        let e = TreeEnsemble::from_bytes(&bad).unwrap_err();
        assert!(e.message.contains("combination 7"), "{}", e.message);
    }
}
