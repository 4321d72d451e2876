//! Growing one CART tree from weighted rows, whatever the split search:
//! the stopping rules, the feature draw at each node, depth-first growth,
//! and best-first growth when `max_leaf_nodes` is set.
//!
//! Evaluating a node searches its best split, partitions its rows and
//! computes its children's statistics, which gives the weighted impurity
//! decrease that `min_impurity_decrease` tests and best-first growth orders
//! by. Depth-first growth evaluates a node when it reaches it (left subtree
//! first), best-first growth when it creates it. Split search is a
//! [`NodeSplitter`]; one that keeps per-node histograms passes them to
//! children through [`NodeSplitter::child_caches`] (the subtraction trick).
//!
//! Nothing is allocated per node: statistics go straight into the
//! [`RawTree`], and the features found constant along a path are a linked
//! list in one arena shared by the whole tree.

use std::collections::BinaryHeap;

use crate::{
    config::TreeConfig,
    node::{NodeSplitter, NodeStats, NodeView, PURE, Scan, Split},
    prune::RawTree,
    rng::Rng,
};

/// A split searched and applied to a node's rows, not yet made part of the
/// tree.
struct Plan {
    split: Split,
    /// Where the right child's rows start.
    mid: usize,
    /// The children, already in the tree's arrays but not linked.
    children: [usize; 2],
    improvement: f64,
}

struct Pending<C> {
    node: usize,
    start: usize,
    end: usize,
    depth: usize,
    /// Head of this node's list of constant features in the arena (0: none).
    constants: u32,
    stats: NodeStats,
    plan: Option<Plan>,
    cache: Option<C>,
}

/// Best-first order: largest improvement first, then creation order.
struct ByImprovement<C>(Pending<C>);

impl<C> ByImprovement<C> {
    fn key(&self) -> (f64, usize) {
        let plan = self.0.plan.as_ref();
        (
            plan.map_or(f64::NEG_INFINITY, |p| p.improvement),
            self.0.node,
        )
    }
}

impl<C> PartialEq for ByImprovement<C> {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other).is_eq()
    }
}
impl<C> Eq for ByImprovement<C> {}
impl<C> PartialOrd for ByImprovement<C> {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl<C> Ord for ByImprovement<C> {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        let (a, b) = (self.key(), other.key());
        a.0.total_cmp(&b.0).then(b.1.cmp(&a.1))
    }
}

/// One tree's growth state.
struct Grower<'a, S: NodeSplitter> {
    n_features: usize,
    cfg: &'a TreeConfig,
    splitter: S,
    rng: &'a mut Rng,
    tree: RawTree,
    candidates: Vec<u32>,
    scans: Vec<Scan>,
    is_constant: Vec<bool>,
    /// Constant features as linked lists: `(feature, next entry + 1)`.
    arena: Vec<(u32, u32)>,
    /// A node's constant features, gathered for the splitter.
    constants: Vec<u32>,
    root_weight: f64,
    min_weight_leaf: f64,
}

impl<S: NodeSplitter> Grower<'_, S> {
    /// Copies the list starting at `head` into `self.constants`.
    fn gather(&mut self, mut head: u32) {
        self.constants.clear();
        while head != 0 {
            let (f, next) = self.arena[head as usize - 1];
            self.constants.push(f);
            head = next;
        }
    }

    /// A leaf of the rows in `range`, in the tree but not yet linked.
    fn push_node(&mut self, range: std::ops::Range<usize>) -> usize {
        let splitter = &self.splitter;
        self.tree.push_with(|sums| splitter.stats(range, sums))
    }

    /// Searches, partitions and scores `p`'s split, or leaves it a leaf.
    fn evaluate(&mut self, p: &mut Pending<S::Cache>) {
        let cfg = self.cfg;
        let n = p.end - p.start;
        let splittable = p.depth < cfg.max_depth
            && n >= cfg.min_samples_split
            && n >= 2 * cfg.min_samples_leaf
            && p.stats.weight >= 2.0 * self.min_weight_leaf
            && p.stats.impurity > PURE;
        if !splittable {
            return;
        }
        self.gather(p.constants);
        for &c in &self.constants {
            self.is_constant[c as usize] = true;
        }
        self.candidates.clear();
        let is_constant = &self.is_constant;
        self.candidates
            .extend((0..self.n_features as u32).filter(|&f| !is_constant[f as usize]));
        for &c in &self.constants {
            self.is_constant[c as usize] = false;
        }
        // Draw features without replacement until `max_features`
        // non-constant ones have been evaluated; past that, keep going only
        // while no valid split has turned up. Features are drawn in batches
        // of as many as are still needed, so a splitter can evaluate a
        // batch in one pass over the rows.
        let mut best = None;
        let (mut evaluated, mut i) = (0, 0);
        let n_candidates = self.candidates.len();
        while i < n_candidates && !(evaluated >= cfg.max_features && best.is_some()) {
            let need = cfg.max_features.saturating_sub(evaluated).max(1);
            let end = (i + need).min(n_candidates);
            for k in i..end {
                let j = k + self.rng.below(n_candidates - k);
                self.candidates.swap(k, j);
            }
            let node = NodeView {
                range: p.start..p.end,
                stats: p.stats,
                sums: self.tree.sums(p.node),
            };
            let batch = &self.candidates[i..end];
            self.scans.clear();
            let (rng, scans) = (&mut *self.rng, &mut self.scans);
            let cache = p.cache.as_ref();
            self.splitter
                .scan(batch, &node, cache, rng, &mut best, scans);
            for (&f, scan) in batch.iter().zip(&self.scans) {
                match scan {
                    Scan::Constant => {
                        self.arena.push((f, p.constants));
                        p.constants = self.arena.len() as u32;
                    }
                    Scan::Evaluated => evaluated += 1,
                }
            }
            i = end;
        }
        let Some(split) = best else { return };
        let mid = self.splitter.partition(p.start..p.end, &split);
        if mid <= p.start || mid >= p.end {
            // Cannot happen for a split the search accepted; a leaf is the
            // safe answer if it ever did.
            return;
        }
        let children = [self.push_node(p.start..mid), self.push_node(mid..p.end)];
        let [l, r] = children.map(|c| self.tree.nodes[c]);
        let w = p.stats.weight;
        let improvement = w / self.root_weight
            * (p.stats.impurity - r.weight / w * r.impurity - l.weight / w * l.impurity);
        if improvement + PURE < cfg.min_impurity_decrease {
            // The children were pushed last: take them back.
            self.tree.truncate(children[0]);
            return;
        }
        p.plan = Some(Plan {
            split,
            mid,
            children,
            improvement,
        });
    }

    /// Splits `p` by its plan; returns its two children, not yet evaluated.
    fn expand(&mut self, p: Pending<S::Cache>, plan: Plan) -> [Pending<S::Cache>; 2] {
        let [left, right] = plan.children;
        self.tree.set_split(p.node, &plan.split, left, right);
        let (start, mid, end) = (p.start, plan.mid, p.end);
        self.gather(p.constants);
        let caches = self
            .splitter
            .child_caches(p.cache, [start..mid, mid..end], &self.constants);
        let [lc, rc] = caches;
        [(left, start, mid, lc), (right, mid, end, rc)].map(|(node, start, end, cache)| {
            let n = self.tree.nodes[node];
            Pending {
                node,
                start,
                end,
                depth: p.depth + 1,
                constants: p.constants,
                stats: NodeStats {
                    weight: n.weight,
                    impurity: n.impurity,
                },
                plan: None,
                cache,
            }
        })
    }

    /// Evaluates `p`, giving back its cache if it stays a leaf.
    fn evaluate_keep(&mut self, mut p: Pending<S::Cache>) -> Pending<S::Cache> {
        self.evaluate(&mut p);
        if p.plan.is_none()
            && let Some(c) = p.cache.take()
        {
            self.splitter.recycle(c);
        }
        p
    }

    fn finish(&mut self, p: Pending<S::Cache>) {
        if let Some(c) = p.cache {
            self.splitter.recycle(c);
        }
    }
}

/// Grows one tree on the rows `splitter` holds (`n_features` features,
/// `n_slots` statistics per node), drawing features with `rng`.
pub fn grow<S: NodeSplitter>(
    n_features: usize,
    n_slots: usize,
    cfg: &TreeConfig,
    splitter: S,
    rng: &mut Rng,
) -> RawTree {
    let mut g = Grower {
        n_features,
        cfg,
        splitter,
        rng,
        tree: RawTree::new(n_slots),
        candidates: Vec::with_capacity(n_features),
        scans: Vec::new(),
        is_constant: vec![false; n_features],
        arena: Vec::new(),
        constants: Vec::new(),
        root_weight: 0.0,
        min_weight_leaf: 0.0,
    };
    let node = g.push_node(0..g.splitter.n_rows());
    let n = g.tree.nodes[node];
    g.root_weight = n.weight;
    g.min_weight_leaf = cfg.min_weight_fraction_leaf * n.weight;
    let cache = g.splitter.root_cache();
    let root = Pending {
        node,
        start: 0,
        end: g.splitter.n_rows(),
        depth: 0,
        constants: 0,
        stats: NodeStats {
            weight: n.weight,
            impurity: n.impurity,
        },
        plan: None,
        cache,
    };
    match cfg.max_leaf_nodes {
        // Depth-first, left child first; a node is evaluated when it is
        // reached.
        None => {
            let mut stack = vec![root];
            while let Some(mut p) = stack.pop() {
                g.evaluate(&mut p);
                match p.plan.take() {
                    None => g.finish(p),
                    Some(plan) => {
                        let [l, r] = g.expand(p, plan);
                        stack.push(r);
                        stack.push(l);
                    }
                }
            }
        }
        // Best-first: a node is evaluated when it is created, so that the
        // frontier is ordered by the impurity decrease of its splits.
        Some(max_leaves) => {
            let mut heap = BinaryHeap::new();
            heap.push(ByImprovement(g.evaluate_keep(root)));
            let mut leaves = 1;
            while let Some(ByImprovement(mut p)) = heap.pop() {
                match p.plan.take() {
                    Some(plan) if leaves < max_leaves => {
                        leaves += 1;
                        for k in g.expand(p, plan) {
                            heap.push(ByImprovement(g.evaluate_keep(k)));
                        }
                    }
                    _ => g.finish(p),
                }
            }
        }
    }
    g.tree
}
