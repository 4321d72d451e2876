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

impl Combine {
    /// Reads the one byte that [`TreeEnsemble::to_bytes`] writes for it.
    ///
    /// # Errors
    /// Truncation, or a value no combination has.
    pub fn read(r: &mut ByteReader<'_>) -> Result<Self, PluginError> {
        Ok(match r.u8("combine")? {
            0 => Self::Sum,
            1 => Self::Mean,
            2 => Self::Vote,
            c => return Err(r.corrupt(format!("unknown combination {c}"))),
        })
    }
}

impl Link {
    /// Reads the one byte that [`TreeEnsemble::to_bytes`] writes for it.
    ///
    /// # Errors
    /// Truncation, or a value no link has.
    pub fn read(r: &mut ByteReader<'_>) -> Result<Self, PluginError> {
        Ok(match r.u8("link")? {
            0 => Self::Identity,
            1 => Self::Sigmoid,
            2 => Self::Softmax,
            l => return Err(r.corrupt(format!("unknown link {l}"))),
        })
    }
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
///
/// An input row `x` becomes `(fill(x) - input_mean) * input_scale` before
/// the first layer, where `fill` replaces a missing (NaN) value of feature
/// `j` by `input_fill[j]`. Each of the three vectors is either empty (no
/// offset, no scaling, missing values refused) or one value per feature.
#[repr(C)]
#[derive(StableAbi, Clone, Debug, PartialEq)]
pub struct DenseNetwork {
    /// Per-feature offset subtracted from the input (may be empty).
    pub input_mean: RVec<f32>,
    /// Per-feature factor applied after the offset (may be empty).
    pub input_scale: RVec<f32>,
    /// Per-feature value a missing input takes (empty: missing inputs
    /// are an error).
    pub input_fill: RVec<f32>,
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
        let combine = Combine::read(&mut r)?;
        let link = Link::read(&mut r)?;
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

/// The first bytes of a [`DenseNetwork`] in its byte form.
pub const NETWORK_MAGIC: &[u8; 4] = b"TSNN";
/// The version of that form this crate writes and reads.
pub const NETWORK_VERSION: u32 = 1;

impl Activation {
    fn from_u8(v: u8) -> Option<Self> {
        Some(match v {
            0 => Self::Identity,
            1 => Self::Relu,
            2 => Self::Tanh,
            3 => Self::Logistic,
            4 => Self::Softmax,
            _ => return None,
        })
    }

    /// The activation's name: `identity`, `relu`, `tanh`, `logistic`,
    /// `softmax`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Identity => "identity",
            Self::Relu => "relu",
            Self::Tanh => "tanh",
            Self::Logistic => "logistic",
            Self::Softmax => "softmax",
        }
    }
}

impl DenseNetwork {
    /// Input width (of the first layer; 0 without layers).
    pub fn n_features(&self) -> usize {
        self.layers.first().map_or(0, |l| l.inputs as usize)
    }

    /// Output width (of the last layer; 0 without layers).
    pub fn n_outputs(&self) -> usize {
        self.layers.last().map_or(0, |l| l.outputs as usize)
    }

    /// Checks the shapes: at least one layer, each layer's input width
    /// the previous one's output width, weights and biases of the sizes
    /// the widths call for, input vectors empty or one per feature,
    /// finite parameters, and softmax only on the last layer.
    ///
    /// # Errors
    /// The first inconsistency, naming the layer.
    pub fn check(&self) -> Result<(), PluginError> {
        let bad = |why: String| PluginError::corrupt(format!("dense network: {why}"));
        if self.layers.is_empty() {
            return Err(bad("no layers".into()));
        }
        let n = self.n_features();
        for (name, v) in [
            ("input_mean", &self.input_mean),
            ("input_scale", &self.input_scale),
            ("input_fill", &self.input_fill),
        ] {
            if !v.is_empty() && v.len() != n {
                return Err(bad(format!("{name} has {} values for {n} inputs", v.len())));
            }
            if v.iter().any(|x| !x.is_finite()) {
                return Err(bad(format!("{name} has a value that is not finite")));
            }
        }
        let mut width = n;
        let last = self.layers.len() - 1;
        for (i, l) in self.layers.iter().enumerate() {
            let (inputs, outputs) = (l.inputs as usize, l.outputs as usize);
            if inputs != width {
                return Err(bad(format!(
                    "layer {i} takes {inputs} inputs, but the layer before gives {width}"
                )));
            }
            if inputs == 0 || outputs == 0 {
                return Err(bad(format!("layer {i} is {inputs} x {outputs}")));
            }
            if inputs.checked_mul(outputs) != Some(l.weights.len()) {
                return Err(bad(format!(
                    "layer {i} has {} weights for {outputs} x {inputs}",
                    l.weights.len()
                )));
            }
            if l.bias.len() != outputs {
                return Err(bad(format!(
                    "layer {i} has {} biases for {outputs} outputs",
                    l.bias.len()
                )));
            }
            if l.weights
                .iter()
                .chain(l.bias.iter())
                .any(|x| !x.is_finite())
            {
                return Err(bad(format!("layer {i} has a parameter that is not finite")));
            }
            if l.activation == Activation::Softmax && i != last {
                return Err(bad(format!(
                    "layer {i}: softmax is only for the last layer"
                )));
            }
            width = outputs;
        }
        Ok(())
    }

    /// The network as bytes (little-endian): [`NETWORK_MAGIC`], the
    /// version, `n_classes`, the three input vectors, then each layer's
    /// widths, activation, weights and biases. Read back by
    /// [`DenseNetwork::from_bytes`].
    ///
    /// # Errors
    /// More values than a `u32` counts.
    pub fn to_bytes(&self) -> Result<Vec<u8>, PluginError> {
        let params: usize = self
            .layers
            .iter()
            .map(|l| l.weights.len() + l.bias.len())
            .sum();
        let mut out = Vec::with_capacity(64 + 4 * (params + 3 * self.n_features()));
        out.extend_from_slice(NETWORK_MAGIC);
        out.extend_from_slice(&NETWORK_VERSION.to_le_bytes());
        out.extend_from_slice(&self.n_classes.to_le_bytes());
        let floats = |out: &mut Vec<u8>, v: &[f32], what: &str| {
            put_u32(out, v.len(), "dense network", what)?;
            v.iter()
                .for_each(|x| out.extend_from_slice(&x.to_le_bytes()));
            Ok::<_, PluginError>(())
        };
        floats(&mut out, &self.input_mean, "input_mean")?;
        floats(&mut out, &self.input_scale, "input_scale")?;
        floats(&mut out, &self.input_fill, "input_fill")?;
        put_u32(&mut out, self.layers.len(), "dense network", "layers")?;
        for l in self.layers.iter() {
            out.extend_from_slice(&l.inputs.to_le_bytes());
            out.extend_from_slice(&l.outputs.to_le_bytes());
            out.push(l.activation as u8);
            floats(&mut out, &l.weights, "weights")?;
            floats(&mut out, &l.bias, "biases")?;
        }
        Ok(out)
    }

    /// Reads what [`DenseNetwork::to_bytes`] wrote, checks it with
    /// [`DenseNetwork::check`], and says how many bytes it took.
    ///
    /// # Errors
    /// Bytes that are not a network, a newer version, truncation, or
    /// inconsistent shapes.
    pub fn from_bytes(bytes: &[u8]) -> Result<(Self, usize), PluginError> {
        let mut r = ByteReader::new(bytes, "dense network");
        if r.take(4, "magic")? != NETWORK_MAGIC {
            return Err(r.corrupt("not a dense network (bad magic bytes)"));
        }
        let version = r.u32("version")?;
        if version != NETWORK_VERSION {
            return Err(r.corrupt(format!(
                "format version {version}; this build reads version {NETWORK_VERSION}"
            )));
        }
        let n_classes = r.u32("n_classes")?;
        let floats = |r: &mut ByteReader<'_>, what: &str| -> Result<RVec<f32>, PluginError> {
            let n = r.count(4, what)?;
            (0..n).map(|_| r.f32(what)).collect::<Result<RVec<_>, _>>()
        };
        let input_mean = floats(&mut r, "input_mean")?;
        let input_scale = floats(&mut r, "input_scale")?;
        let input_fill = floats(&mut r, "input_fill")?;
        // A layer takes at least 17 bytes.
        let n_layers = r.count(17, "layers")?;
        let mut layers = RVec::with_capacity(n_layers);
        for _ in 0..n_layers {
            let inputs = r.u32("layer")?;
            let outputs = r.u32("layer")?;
            let a = r.u8("activation")?;
            let activation = Activation::from_u8(a)
                .ok_or_else(|| r.corrupt(format!("unknown activation {a}")))?;
            let weights = floats(&mut r, "weights")?;
            let bias = floats(&mut r, "biases")?;
            layers.push(DenseLayer {
                inputs,
                outputs,
                weights,
                bias,
                activation,
            });
        }
        let net = Self {
            input_mean,
            input_scale,
            input_fill,
            layers,
            n_classes,
        };
        net.check()?;
        Ok((net, bytes.len() - r.left()))
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

    fn network() -> DenseNetwork {
        DenseNetwork {
            input_mean: vec![0.5, -1.0].into(),
            input_scale: vec![2.0, 0.25].into(),
            input_fill: RVec::new(),
            layers: vec![
                DenseLayer {
                    inputs: 2,
                    outputs: 3,
                    weights: (0..6).map(|i| i as f32 * 0.1).collect(),
                    bias: vec![0.0, 1.0, -1.0].into(),
                    activation: Activation::Relu,
                },
                DenseLayer {
                    inputs: 3,
                    outputs: 2,
                    weights: (0..6).map(|i| 1.0 - i as f32).collect(),
                    bias: vec![0.5, 0.5].into(),
                    activation: Activation::Softmax,
                },
            ]
            .into(),
            n_classes: 2,
        }
    }

    #[test]
    fn networks_round_trip_and_truncations_are_refused() {
        let net = network();
        let mut bytes = net.to_bytes().unwrap();
        let n = bytes.len();
        bytes.push(7);
        let (back, used) = DenseNetwork::from_bytes(&bytes).unwrap();
        assert_eq!(back, net);
        assert_eq!(used, n);
        for cut in 0..n {
            assert!(
                DenseNetwork::from_bytes(&bytes[..cut]).is_err(),
                "cut {cut}"
            );
        }
    }

    #[test]
    fn inconsistent_networks_are_named() {
        let mut net = network();
        net.layers[1].inputs = 4;
        let e = net.check().unwrap_err();
        assert!(
            e.message.contains("layer 1 takes 4 inputs"),
            "{}",
            e.message
        );
        let mut net = network();
        net.layers[0].activation = Activation::Softmax;
        assert!(net.check().unwrap_err().message.contains("softmax"));
        let mut net = network();
        net.input_scale.push(1.0);
        assert!(net.check().unwrap_err().message.contains("input_scale"));
        let mut net = network();
        net.layers[0].bias[1] = f32::NAN;
        assert!(net.check().unwrap_err().message.contains("not finite"));
        net.layers.clear();
        assert!(net.check().unwrap_err().message.contains("no layers"));
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
