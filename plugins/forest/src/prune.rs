//! A tree as growth leaves it ([`RawTree`]: every node with its weight,
//! impurity and statistics), minimal cost-complexity pruning, impurity
//! importances, and compaction into the model's [`Tree`].

use crate::{
    node::{NodeStats, Split},
    tree::{Node, Tree},
};

const LEAF: u32 = u32::MAX;

/// One node as grown.
#[derive(Clone, Copy, Debug)]
pub struct RawNode {
    /// Split feature, or `LEAF`.
    pub feature: u32,
    /// Rows with `x <= threshold` go left.
    pub threshold: f32,
    /// Where missing values go.
    pub missing_left: bool,
    /// Children (internal nodes).
    pub children: [u32; 2],
    /// Weighted sample count.
    pub weight: f64,
    /// Impurity.
    pub impurity: f64,
}

/// A grown tree; children always come after their parent.
#[derive(Clone, Debug)]
pub struct RawTree {
    /// The nodes, root first.
    pub nodes: Vec<RawNode>,
    /// `n_slots` statistics per node (class weights or target sum).
    pub sums: Vec<f64>,
    n_slots: usize,
}

impl RawTree {
    /// An empty tree with `n_slots` statistics per node.
    pub fn new(n_slots: usize) -> Self {
        Self {
            nodes: Vec::new(),
            sums: Vec::new(),
            n_slots,
        }
    }

    /// Appends a leaf whose statistics `stats` writes into its sums (given
    /// zeroed) and returns; returns its index.
    pub fn push_with(&mut self, stats: impl FnOnce(&mut [f64]) -> NodeStats) -> usize {
        let start = self.sums.len();
        self.sums.resize(start + self.n_slots, 0.0);
        let s = stats(&mut self.sums[start..]);
        self.nodes.push(RawNode {
            feature: LEAF,
            threshold: 0.0,
            missing_left: false,
            children: [0, 0],
            weight: s.weight,
            impurity: s.impurity,
        });
        self.nodes.len() - 1
    }

    /// The summed statistics of node `i`.
    pub fn sums(&self, i: usize) -> &[f64] {
        &self.sums[i * self.n_slots..(i + 1) * self.n_slots]
    }

    /// Drops node `len` and the ones after it (leaves not yet linked).
    pub fn truncate(&mut self, len: usize) {
        self.nodes.truncate(len);
        self.sums.truncate(len * self.n_slots);
    }

    /// Turns leaf `i` into a split into `left` and `right`.
    pub fn set_split(&mut self, i: usize, s: &Split, left: usize, right: usize) {
        let n = &mut self.nodes[i];
        n.feature = s.feature;
        n.threshold = s.threshold;
        n.missing_left = s.missing_left;
        n.children = [left as u32, right as u32];
    }

    fn is_leaf(&self, i: usize) -> bool {
        self.nodes[i].feature == LEAF
    }

    /// Minimal cost-complexity pruning: the smallest subtree minimising
    /// `R(T) + alpha * |leaves(T)|`, where a node's risk `R` is its weight
    /// times its impurity over the root's weight. This is the tree
    /// scikit-learn's weakest-link pruning reaches: it cuts every branch
    /// whose effective alpha `(R(t) - R(T_t)) / (|leaves(T_t)| - 1)` is at
    /// most `alpha`, which removes exactly the branches this bottom-up pass
    /// finds no cheaper than a leaf. `alpha = 0` changes nothing.
    pub fn prune(&mut self, alpha: f64) {
        if alpha <= 0.0 || self.nodes.is_empty() {
            return;
        }
        let total = self.nodes[0].weight;
        if total <= 0.0 {
            return;
        }
        // cost[i]: the least `R + alpha * leaves` of any pruning of node i's
        // subtree. Children come after parents, so go backwards.
        let mut cost = vec![0.0f64; self.nodes.len()];
        for i in (0..self.nodes.len()).rev() {
            let n = self.nodes[i];
            let as_leaf = n.weight * n.impurity / total + alpha;
            if self.is_leaf(i) {
                cost[i] = as_leaf;
                continue;
            }
            let branch = cost[n.children[0] as usize] + cost[n.children[1] as usize];
            if as_leaf <= branch {
                self.nodes[i].feature = LEAF;
                cost[i] = as_leaf;
            } else {
                cost[i] = branch;
            }
        }
    }

    /// Indices of the nodes reachable from the root, parents first.
    fn reachable(&self) -> Vec<usize> {
        let mut out = Vec::with_capacity(self.nodes.len());
        let mut stack = vec![0usize];
        while let Some(i) = stack.pop() {
            out.push(i);
            if !self.is_leaf(i) {
                let [l, r] = self.nodes[i].children;
                stack.push(r as usize);
                stack.push(l as usize);
            }
        }
        out
    }

    /// Weighted impurity decrease summed per feature over the splits left.
    pub fn importances(&self, n_features: usize) -> Vec<f64> {
        let mut imp = vec![0.0; n_features];
        if self.nodes.is_empty() {
            return imp;
        }
        for i in self.reachable() {
            let n = &self.nodes[i];
            if self.is_leaf(i) {
                continue;
            }
            let [l, r] = n.children.map(|c| &self.nodes[c as usize]);
            imp[n.feature as usize] +=
                n.weight * n.impurity - l.weight * l.impurity - r.weight * r.impurity;
        }
        imp
    }

    /// The model's form of this tree: nodes in depth-first pre-order (the
    /// left child right after its parent) and leaf values per
    /// [`Tree::leaf_width`] for a model with `n_classes` classes (0 for
    /// regression).
    pub fn compact(&self, n_classes: usize) -> Tree {
        let width = Tree::leaf_width(n_classes);
        let mut tree = Tree::default();
        if self.nodes.is_empty() {
            tree.nodes.push(Node::leaf(0.0));
            return tree;
        }
        let order = self.reachable();
        let mut position = vec![0u32; self.nodes.len()];
        for (p, &i) in order.iter().enumerate() {
            position[i] = p as u32;
        }
        tree.nodes.reserve(order.len());
        for &i in &order {
            let n = &self.nodes[i];
            if !self.is_leaf(i) {
                let right = position[n.children[1] as usize];
                tree.nodes
                    .push(Node::split(n.feature, n.threshold, n.missing_left, right));
                continue;
            }
            let s = &self.sums[i * self.n_slots..(i + 1) * self.n_slots];
            let share = |v: f64| {
                if n.weight > 0.0 {
                    (v / n.weight) as f32
                } else {
                    0.0
                }
            };
            let node = match (n_classes, width) {
                // Regression: the weighted mean.
                (0, _) => Node::leaf(share(s[0])),
                // Binary: the probability of class 1.
                (2, 1) => Node::leaf(share(s[1])),
                // One class: certainty.
                (_, 1) => Node::leaf(1.0),
                _ => {
                    let offset = tree.values.len() as u32;
                    tree.values.extend(s.iter().map(|&v| share(v)));
                    Node::leaf_at(offset)
                }
            };
            tree.nodes.push(node);
        }
        tree
    }
}
