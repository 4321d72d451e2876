//! CART: the training data in the column layout split search wants, the tree
//! a forest is made of, and growing one tree depth-first from weighted rows.

use tessera_core::{TrainData, ir::TreeNode};

use crate::{
    params::TreeConfig,
    rng::Rng,
    split::{NodeStats, PURE, Scan, Split, Splitter},
};

/// The training data as split search reads it, shared by all trees.
pub struct Dataset {
    /// Features column after column (`n_rows` values each); NaN = missing.
    cols: Vec<f32>,
    /// Number of rows.
    pub n_rows: usize,
    /// Number of feature columns.
    pub n_features: usize,
    /// Per row: its class (classification) or 0 (regression).
    pub slot: Vec<u32>,
    /// Per row: 1 (classification) or its target (regression).
    pub value: Vec<f64>,
    /// Length of a statistics vector: the class count, or 1.
    pub n_slots: usize,
    /// Per row: its sample weight (1 when none were given).
    pub sample_weight: Vec<f64>,
}

impl Dataset {
    /// Transposes and encodes `data` (which has passed validation).
    pub fn new(data: &TrainData<'_>) -> Self {
        let (n_rows, n_features) = (data.x.rows(), data.x.cols());
        let x = data.x.as_slice();
        let mut cols = vec![0.0; n_rows * n_features];
        for (r, row) in x.chunks_exact(n_features).enumerate() {
            for (f, &v) in row.iter().enumerate() {
                cols[f * n_rows + r] = v;
            }
        }
        let classify = data.task.is_classification();
        let y = data.y.as_slice();
        let (slot, value, n_slots) = if classify {
            (
                y.iter().map(|&c| c as u32).collect(),
                vec![1.0; n_rows],
                data.task.n_classes as usize,
            )
        } else {
            (
                vec![0; n_rows],
                y.iter().map(|&v| f64::from(v)).collect(),
                1,
            )
        };
        let sample_weight = match data.weights.into_option() {
            Some(w) => w.iter().map(|&w| f64::from(w)).collect(),
            None => vec![1.0; n_rows],
        };
        Self {
            cols,
            n_rows,
            n_features,
            slot,
            value,
            n_slots,
            sample_weight,
        }
    }

    /// The values of feature `f`, one per row.
    pub fn column(&self, f: usize) -> &[f32] {
        &self.cols[f * self.n_rows..(f + 1) * self.n_rows]
    }
}

/// One decision tree, in the exchange form's node layout.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Tree {
    /// Nodes, root first; children always come after their parent.
    pub nodes: Vec<TreeNode>,
    /// Leaf values, `n_outputs` per leaf.
    pub values: Vec<f32>,
}

impl Tree {
    /// The leaf values `row` reaches.
    pub fn predict_row(&self, row: &[f32], n_outputs: usize) -> &[f32] {
        let mut i = 0;
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
                for c in [n.left, n.right] {
                    if let Some(child) = depth.get_mut(c as usize) {
                        *child = d + 1;
                    }
                }
            }
        }
        deepest
    }
}

/// A grown tree and its unnormalised impurity decrease per feature.
pub struct Grown {
    /// The tree.
    pub tree: Tree,
    /// Weighted impurity decrease summed per feature.
    pub importances: Vec<f64>,
}

struct Pending {
    node: usize,
    start: usize,
    end: usize,
    depth: usize,
    stats: NodeStats,
    constants: Vec<u32>,
}

/// A node not yet decided (a leaf with no values yet).
const UNSET: TreeNode = TreeNode {
    feature: TreeNode::LEAF,
    threshold: 0.0,
    left: 0,
    right: 0,
    value: 0,
    missing_left: 0,
};

/// Appends the leaf values of `stats` and returns the leaf node owning them.
fn leaf(tree: &mut Tree, stats: &NodeStats) -> TreeNode {
    let value = tree.values.len() as u32;
    tree.values.extend(stats.leaf_values());
    TreeNode { value, ..UNSET }
}

/// Moves the rows going left to the front; returns how many there are.
fn partition(rows: &mut [u32], col: &[f32], s: &Split) -> usize {
    let (mut i, mut j) = (0, rows.len());
    while i < j {
        let v = col[rows[i] as usize];
        let goes_left = if v.is_nan() {
            s.missing_left
        } else {
            v <= s.threshold
        };
        if goes_left {
            i += 1;
        } else {
            j -= 1;
            rows.swap(i, j);
        }
    }
    i
}

/// Grows one tree on the rows with positive `weight` (bootstrap count times
/// sample weight), drawing features with `rng`.
pub fn grow(data: &Dataset, cfg: &TreeConfig, weight: &[f64], rng: &mut Rng) -> Grown {
    let mut rows: Vec<u32> = (0..data.n_rows as u32)
        .filter(|&r| weight[r as usize] > 0.0)
        .collect();
    let mut splitter = Splitter::new(data, weight, cfg.criterion, cfg.min_samples_leaf);
    let mut tree = Tree::default();
    let mut importances = vec![0.0; data.n_features];
    let mut candidates: Vec<u32> = Vec::with_capacity(data.n_features);
    let mut is_constant = vec![false; data.n_features];

    tree.nodes.push(UNSET);
    let stats = NodeStats::of(data, weight, cfg.criterion, &rows);
    let mut stack = vec![Pending {
        node: 0,
        start: 0,
        end: rows.len(),
        depth: 0,
        stats,
        constants: Vec::new(),
    }];

    while let Some(p) = stack.pop() {
        let n = p.end - p.start;
        let splittable = p.depth < cfg.max_depth
            && n >= cfg.min_samples_split
            && n >= 2 * cfg.min_samples_leaf
            && p.stats.impurity > PURE;
        let node_rows = &rows[p.start..p.end];
        let mut found_constant = Vec::new();
        let mut best = None;
        if splittable {
            for &c in &p.constants {
                is_constant[c as usize] = true;
            }
            candidates.clear();
            candidates.extend((0..data.n_features as u32).filter(|&f| !is_constant[f as usize]));
            for &c in &p.constants {
                is_constant[c as usize] = false;
            }
            // Draw features without replacement until `max_features`
            // non-constant ones have been evaluated; past that, keep going
            // only while no valid split has turned up.
            let mut evaluated = 0;
            for i in 0..candidates.len() {
                if evaluated >= cfg.max_features && best.is_some() {
                    break;
                }
                let j = i + rng.below(candidates.len() - i);
                candidates.swap(i, j);
                let f = candidates[i];
                match splitter.scan(f as usize, node_rows, &p.stats, &mut best) {
                    Scan::Constant => found_constant.push(f),
                    Scan::Evaluated => evaluated += 1,
                }
            }
        }
        let Some(split) = best else {
            tree.nodes[p.node] = leaf(&mut tree, &p.stats);
            continue;
        };
        let col = data.column(split.feature as usize);
        let mid = p.start + partition(&mut rows[p.start..p.end], col, &split);
        if mid == p.start || mid == p.end {
            // Cannot happen for a split the scan accepted; a leaf is the
            // safe answer if it ever did.
            tree.nodes[p.node] = leaf(&mut tree, &p.stats);
            continue;
        }
        let ls = NodeStats::of(data, weight, cfg.criterion, &rows[p.start..mid]);
        let rs = NodeStats::of(data, weight, cfg.criterion, &rows[mid..p.end]);
        importances[split.feature as usize] +=
            p.stats.weight * p.stats.impurity - ls.weight * ls.impurity - rs.weight * rs.impurity;
        let (left, right) = (tree.nodes.len(), tree.nodes.len() + 1);
        tree.nodes.extend([UNSET, UNSET]);
        tree.nodes[p.node] = TreeNode {
            feature: split.feature,
            threshold: split.threshold,
            left: left as u32,
            right: right as u32,
            value: 0,
            missing_left: u8::from(split.missing_left),
        };
        let mut constants = p.constants;
        constants.extend(found_constant);
        let depth = p.depth + 1;
        stack.push(Pending {
            node: right,
            start: mid,
            end: p.end,
            depth,
            stats: rs,
            constants: constants.clone(),
        });
        stack.push(Pending {
            node: left,
            start: p.start,
            end: mid,
            depth,
            stats: ls,
            constants,
        });
    }
    Grown { tree, importances }
}
