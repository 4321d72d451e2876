//! [`QuantizedTrees`]: a tree ensemble whose thresholds are bin indices
//! into per-feature edges and whose leaf values are stored compactly;
//! made from a [`TreeEnsemble`] and turned back into one.

use serde_json::{Value, json};
use tessera_core::{
    PluginError,
    ir::{self, Combine, Link, TreeEnsemble, TreeNode},
};

use crate::{
    edges::{choose_edges, nearest},
    half::{F16_MAX, f16_to_f32, f32_to_f16},
    options::{LeafFormat, Options},
};

/// Deepest tree accepted (as the engine's): deeper ones are no tree a
/// learner grew, and would make lockstep walks pointlessly long.
pub const MAX_DEPTH: u32 = 4096;

/// Most features a quantized ensemble may have (what an 8-byte compiled
/// node can name).
pub const MAX_FEATURES: u32 = 1 << 24;

/// A tree ensemble with quantized thresholds and leaves.
///
/// Each feature has its sorted bin edges; a split on feature `f` with bin
/// `k` sends a row left when `x[f] <= edges[f][k]` (a missing value goes
/// the split's missing side), which is what comparing the row's bin index
/// with `k` decides. The combination, link, base score and output shape
/// are the ensemble's.
#[derive(Clone, Debug, PartialEq)]
pub struct QuantizedTrees {
    pub(crate) n_features: u32,
    pub(crate) n_outputs: u32,
    pub(crate) n_classes: u32,
    pub(crate) combine: Combine,
    pub(crate) link: Link,
    pub(crate) base_score: Vec<f32>,
    /// 8 or 16.
    pub(crate) bits: u32,
    pub(crate) leaves: LeafFormat,
    /// Per feature, strictly ascending, at most `2^bits - 1`.
    pub(crate) edges: Vec<Vec<f32>>,
    /// Splits whose threshold was moved to another value to fit the edges.
    pub(crate) moved: u64,
    pub(crate) trees: Vec<QTree>,
}

/// One quantized tree.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct QTree {
    /// The output its leaves add to, or [`ir::Tree::ALL_OUTPUTS`].
    pub(crate) output: u32,
    /// Preorder: node 0 is the root and a split's left child follows it.
    pub(crate) nodes: Vec<QNode>,
    /// The leaves' stored values, [`QuantizedTrees::codes_per_leaf`] per
    /// leaf, leaves in preorder: the bits of an `f32` or of a half, an
    /// `i16` or `i8` (as `i32` bits), or a vote's class.
    pub(crate) codes: Vec<u32>,
    /// Scaled integer leaves: one scale per value column; else empty.
    pub(crate) scales: Vec<f32>,
}

impl QTree {
    /// Edges on the longest root-to-leaf path.
    pub(crate) fn depth(&self) -> u32 {
        // Preorder: a split's children are one level below it.
        let mut depth = vec![0u32; self.nodes.len()];
        let mut most = 0;
        for (i, n) in self.nodes.iter().enumerate() {
            if let QNode::Split { right, .. } = *n {
                depth[i + 1] = depth[i] + 1;
                depth[right as usize] = depth[i] + 1;
            }
            most = most.max(depth[i]);
        }
        most
    }
}

/// A node of a [`QTree`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum QNode {
    /// Left when the row's bin of `feature` is at most `bin`.
    Split {
        feature: u32,
        bin: u32,
        missing_left: bool,
        /// The right child (the left one is the next node).
        right: u32,
    },
    /// The `leaf`-th leaf of the tree (in preorder).
    Leaf { leaf: u32 },
}

impl QuantizedTrees {
    /// Quantizes `ens`: each feature's thresholds become bin indices into
    /// its edges (exactly its distinct thresholds when there are at most
    /// `2^bits - 1` of them, else that many weighted quantiles of them,
    /// every threshold moved to the nearest), and the leaf values take
    /// `opts.leaves`. In a vote, a leaf keeps only its class (the first
    /// largest value), whatever the format: that is all a vote reads.
    ///
    /// # Errors
    /// `bits` other than 8 or 16; an inconsistent or malformed ensemble;
    /// leaf values the format cannot hold (past the half range for `f16`,
    /// not finite for `i8` / `i16`).
    pub fn quantize(ens: &TreeEnsemble, opts: &Options) -> Result<Self, PluginError> {
        opts.check()?;
        let tree_outputs: Vec<u32> = ens.trees.iter().map(|t| t.output).collect();
        check_shape(&Shape::of(ens), &tree_outputs).map_err(PluginError::input)?;
        if ens.n_features > MAX_FEATURES {
            return Err(PluginError::unsupported(format!(
                "the ensemble has {} features; quantized trees take at most {MAX_FEATURES}",
                ens.n_features
            )));
        }
        let mut q = QuantizedTrees {
            n_features: ens.n_features,
            n_outputs: ens.n_outputs,
            n_classes: ens.n_classes,
            combine: ens.combine,
            link: ens.link,
            base_score: ens.base_score.to_vec(),
            bits: opts.bits,
            leaves: opts.leaves,
            edges: Vec::new(),
            moved: 0,
            trees: Vec::with_capacity(ens.trees.len()),
        };
        // Preorder copies of the trees, thresholds still as they are.
        let mut thresholds = vec![Vec::new(); ens.n_features as usize];
        let mut split_thresholds = Vec::with_capacity(ens.trees.len());
        for (t, tree) in ens.trees.iter().enumerate() {
            let pre = preorder(ens, tree)
                .map_err(|e| PluginError::input(format!("tree ensemble: tree {t}: {e}")))?;
            for &(f, x) in &pre.splits {
                thresholds[f as usize].push(x);
            }
            let (codes, scales) = q
                .encode_leaves(tree, &pre.leaves)
                .map_err(|e| PluginError::input(format!("tree {t}: {e}")))?;
            q.trees.push(QTree {
                output: tree.output,
                nodes: pre.nodes,
                codes,
                scales,
            });
            split_thresholds.push(pre.splits);
        }
        let most = (1usize << opts.bits) - 1;
        q.edges = thresholds
            .into_iter()
            .map(|t| choose_edges(t, most))
            .collect();
        // Each split's threshold becomes the index of the nearest edge.
        for (tree, th) in q.trees.iter_mut().zip(split_thresholds) {
            let mut th = th.into_iter();
            for n in &mut tree.nodes {
                if let QNode::Split { feature, bin, .. } = n {
                    let (_, x) = th.next().expect("one threshold per split");
                    let edges = &q.edges[*feature as usize];
                    *bin = nearest(edges, x) as u32;
                    q.moved += u64::from(edges[*bin as usize] != x);
                }
            }
        }
        Ok(q)
    }

    /// Stored values per leaf: one (the class) in a vote, else the tree's
    /// leaf width.
    pub(crate) fn codes_per_leaf(&self, output: u32) -> usize {
        if self.combine == Combine::Vote || output != ir::Tree::ALL_OUTPUTS {
            1
        } else {
            self.n_outputs as usize
        }
    }

    /// Whether leaf values are scaled integers with a scale per column.
    pub(crate) fn scaled(&self) -> bool {
        self.combine != Combine::Vote && self.leaves.int_max().is_some()
    }

    /// The stored codes of `tree`'s leaves, whose values start at
    /// `leaf_src` in `tree.values`, and the scales per column.
    fn encode_leaves(
        &self,
        tree: &ir::Tree,
        leaf_src: &[usize],
    ) -> Result<(Vec<u32>, Vec<f32>), String> {
        let width = tree.leaf_width(self.n_outputs as usize);
        let vals = |l: usize| &tree.values[leaf_src[l]..leaf_src[l] + width];
        let n = leaf_src.len();
        if self.combine == Combine::Vote {
            return Ok(((0..n).map(|l| argmax(vals(l)) as u32).collect(), Vec::new()));
        }
        let mut codes = Vec::with_capacity(n * width);
        match self.leaves.int_max() {
            None if self.leaves == LeafFormat::F32 => {
                codes.extend((0..n).flat_map(|l| vals(l).iter().map(|v| v.to_bits())));
                Ok((codes, Vec::new()))
            }
            None => {
                for l in 0..n {
                    for &v in vals(l) {
                        if v.is_finite() && v.abs() > F16_MAX {
                            return Err(format!(
                                "leaf value {v} is past the range of `leaves` f16 \
                                 (at most {F16_MAX} in magnitude); use i16 or f32"
                            ));
                        }
                        codes.push(u32::from(f32_to_f16(v)));
                    }
                }
                Ok((codes, Vec::new()))
            }
            Some(max) => {
                let mut scales = vec![0.0f32; width];
                for l in 0..n {
                    for (s, &v) in scales.iter_mut().zip(vals(l)) {
                        if !v.is_finite() {
                            return Err(format!(
                                "leaf value {v} cannot be stored as `leaves` {}",
                                self.leaves.name()
                            ));
                        }
                        *s = s.max(v.abs());
                    }
                }
                scales.iter_mut().for_each(|s| *s /= max);
                for l in 0..n {
                    for (&s, &v) in scales.iter().zip(vals(l)) {
                        let q = if s > 0.0 {
                            (v / s).round().clamp(-max, max)
                        } else {
                            0.0
                        };
                        codes.push(q as i32 as u32);
                    }
                }
                Ok((codes, scales))
            }
        }
    }

    /// The value of the `c`-th stored code of leaf `leaf` of `tree` (not a
    /// vote).
    pub(crate) fn value(&self, tree: &QTree, leaf: usize, c: usize) -> f32 {
        let w = self.codes_per_leaf(tree.output);
        let code = tree.codes[leaf * w + c];
        match self.leaves {
            LeafFormat::F32 => f32::from_bits(code),
            LeafFormat::F16 => f16_to_f32(code as u16),
            LeafFormat::I16 | LeafFormat::I8 => code as i32 as f32 * tree.scales[c],
        }
    }

    /// The ensemble in `f32` form: thresholds are the edges the bins name,
    /// leaves the stored values (a vote's leaf one-hot on its class). Its
    /// predictions are this model's.
    pub fn dequantize(&self) -> TreeEnsemble {
        let k = self.n_outputs as usize;
        let trees = self.trees.iter().map(|t| {
            let w = if self.combine == Combine::Vote {
                k
            } else {
                self.codes_per_leaf(t.output)
            };
            let mut values = Vec::new();
            let nodes = t.nodes.iter().enumerate().map(|(i, n)| match *n {
                QNode::Split {
                    feature,
                    bin,
                    missing_left,
                    right,
                } => TreeNode {
                    feature,
                    threshold: self.edges[feature as usize][bin as usize],
                    left: i as u32 + 1,
                    right,
                    value: 0,
                    missing_left: u8::from(missing_left),
                },
                QNode::Leaf { leaf } => {
                    let l = leaf as usize;
                    if self.combine == Combine::Vote {
                        let class = t.codes[l] as usize;
                        values.extend((0..k).map(|c| if c == class { 1.0 } else { 0.0 }));
                    } else {
                        values.extend((0..w).map(|c| self.value(t, l, c)));
                    }
                    TreeNode::leaf((l * w) as u32)
                }
            });
            let nodes: Vec<TreeNode> = nodes.collect();
            ir::Tree {
                nodes: nodes.into(),
                values: values.into(),
                output: t.output,
            }
        });
        TreeEnsemble {
            n_features: self.n_features,
            n_outputs: self.n_outputs,
            n_classes: self.n_classes,
            combine: self.combine,
            link: self.link,
            base_score: self.base_score.clone().into(),
            trees: trees.collect::<Vec<_>>().into(),
        }
    }

    /// A JSON summary: the shape, `bits`, `leaves`, trees, nodes, edges
    /// per feature (largest and mean count), thresholds moved, and the
    /// size of the byte form.
    pub fn describe(&self) -> Value {
        let nodes: usize = self.trees.iter().map(|t| t.nodes.len()).sum();
        let splits: usize = self.trees.iter().map(|t| t.nodes.len() / 2).sum();
        let counts = self.edges.iter().map(Vec::len);
        let max_edges = counts.clone().max().unwrap_or(0);
        let mean_edges = counts.sum::<usize>() as f64 / self.edges.len().max(1) as f64;
        json!({
            "model": crate::FAMILY,
            "n_features": self.n_features,
            "n_outputs": self.n_outputs,
            "n_classes": if self.n_classes > 0 { json!(self.n_classes) } else { Value::Null },
            "combine": combine_name(self.combine),
            "link": link_name(self.link),
            "base_score": self.base_score,
            "bits": self.bits,
            "leaves": if self.combine == Combine::Vote { "class" } else { self.leaves.name() },
            "trees": self.trees.len(),
            "nodes": nodes,
            "edges_per_feature": {
                "max": max_edges,
                "mean": (mean_edges * 1000.0).round() / 1000.0,
            },
            "thresholds_moved": self.moved,
            "splits": splits,
            "bytes": self.to_bytes().map_or(Value::Null, |b| json!(b.len())),
        })
    }

    /// Input features per row.
    pub fn n_features(&self) -> usize {
        self.n_features as usize
    }

    /// Raw outputs per row.
    pub fn n_outputs(&self) -> usize {
        self.n_outputs as usize
    }

    /// Classes (0 for regression).
    pub fn n_classes(&self) -> usize {
        self.n_classes as usize
    }

    /// Bits of a bin index: 8 or 16.
    pub fn bits(&self) -> u32 {
        self.bits
    }

    /// How the leaf values are stored.
    pub fn leaf_format(&self) -> LeafFormat {
        self.leaves
    }

    /// Number of trees.
    pub fn n_trees(&self) -> usize {
        self.trees.len()
    }

    /// Splits whose threshold moved to another value to fit the edges (0
    /// when every feature kept its thresholds).
    pub fn thresholds_moved(&self) -> u64 {
        self.moved
    }
}

/// The name of a combination, as summaries show it.
pub(crate) fn combine_name(c: Combine) -> &'static str {
    match c {
        Combine::Sum => "sum",
        Combine::Mean => "mean",
        Combine::Vote => "vote",
    }
}

/// The name of a link, as summaries show it.
pub(crate) fn link_name(l: Link) -> &'static str {
    match l {
        Link::Identity => "identity",
        Link::Sigmoid => "sigmoid",
        Link::Softmax => "softmax",
    }
}

/// Index of the largest value, the first on ties (as the engine's vote).
pub(crate) fn argmax(v: &[f32]) -> usize {
    let mut best = 0;
    for (i, &x) in v.iter().enumerate() {
        if x > v[best] {
            best = i;
        }
    }
    best
}

/// A tree in preorder, as [`preorder`] finds it.
struct Preorder {
    /// The nodes, bins still to be set.
    nodes: Vec<QNode>,
    /// Each leaf's value offset in the tree's values.
    leaves: Vec<usize>,
    /// Each split's feature and threshold, in node order.
    splits: Vec<(u32, f32)>,
}

/// `tree` in preorder from its root, checked.
fn preorder(ens: &TreeEnsemble, tree: &ir::Tree) -> Result<Preorder, String> {
    let src = tree.nodes.as_slice();
    if src.is_empty() {
        return Err("has no nodes".into());
    }
    let width = tree.leaf_width(ens.n_outputs as usize);
    let mut seen = vec![false; src.len()];
    let (mut nodes, mut leaves, mut splits) = (Vec::new(), Vec::new(), Vec::new());
    // (source node, depth, the split whose right child it is)
    let mut stack = vec![(0usize, 0u32, None::<usize>)];
    while let Some((s, depth, parent)) = stack.pop() {
        let n = src
            .get(s)
            .ok_or_else(|| format!("a child index {s} is out of range"))?;
        if std::mem::replace(&mut seen[s], true) {
            return Err(format!("node {s} is reached twice (a cycle?)"));
        }
        if depth > MAX_DEPTH {
            return Err(format!("is deeper than {MAX_DEPTH} levels"));
        }
        let i = nodes.len();
        if let Some(QNode::Split { right, .. }) = parent.map(|p| &mut nodes[p]) {
            *right = i as u32;
        }
        if n.is_leaf() {
            let v = n.value as usize;
            if v.checked_add(width)
                .is_none_or(|end| end > tree.values.len())
            {
                return Err(format!(
                    "leaf {s}'s values start at {v}, past the {} values",
                    tree.values.len()
                ));
            }
            nodes.push(QNode::Leaf {
                leaf: leaves.len() as u32,
            });
            leaves.push(v);
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
        nodes.push(QNode::Split {
            feature: n.feature,
            bin: 0,
            missing_left: n.missing_left != 0,
            right: 0,
        });
        // -0 and 0 split alike; one edge serves both.
        let t = if n.threshold == 0.0 { 0.0 } else { n.threshold };
        splits.push((n.feature, t));
        stack.push((n.right as usize, depth + 1, Some(i)));
        stack.push((n.left as usize, depth + 1, None));
    }
    Ok(Preorder {
        nodes,
        leaves,
        splits,
    })
}

/// The shape fields of an ensemble that must agree (checked as the
/// engine checks them).
pub(crate) use tessera_engine::EnsembleShape as Shape;

/// Checks the shape and the trees' outputs.
pub(crate) fn check_shape(s: &Shape, tree_outputs: &[u32]) -> Result<(), String> {
    s.check(tree_outputs)
}
