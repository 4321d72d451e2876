//! Smaller trees: node statistics from rows, depth truncation, minimal
//! cost-complexity pruning, and the preorder rebuild every output tree goes
//! through.

use super::*;

/// The per-tree options.
pub(super) struct Shape {
    pub(super) max_depth: Option<usize>,
    pub(super) ccp_alpha: f64,
}

/// Rows passed down the trees for node statistics.
pub(super) struct StatRows<'a> {
    pub(super) h: Holdout<'a>,
    /// Classes (0: regression).
    classes: usize,
    targets: usize,
    /// Total weight of the rows: node risks are fractions of it, as in
    /// scikit-learn.
    total: f64,
}

impl<'a> StatRows<'a> {
    pub(super) fn new(h: Holdout<'a>, data: &CompressData<'_>) -> Self {
        let total = (0..h.x.rows()).map(|r| row_weight(&h, r)).sum();
        Self {
            h,
            classes: if data.task.is_classification() {
                data.task.n_classes as usize
            } else {
                0
            },
            targets: data.task.n_targets(),
            total,
        }
    }

    /// Each node's row weight, and its risk as a leaf: for classes the
    /// gini impurity times the weight, for regression the squared error
    /// around the node's mean (averaged over targets), both over the total
    /// weight.
    pub(super) fn node_stats(&self, tree: &Tree, order: &[usize]) -> (Vec<f64>, Vec<f64>) {
        let n = tree.nodes.len();
        let width = if self.classes > 0 {
            self.classes
        } else {
            2 * self.targets
        };
        // Sums are added at the leaves, then up the tree: one write per row
        // instead of one per level.
        let mut weight = vec![0.0f64; n];
        let mut acc = vec![0.0f64; n * width];
        let h = &self.h;
        for r in 0..h.x.rows() {
            let w = row_weight(h, r);
            let (x, mut i) = (h.x.row(r), 0usize);
            while !tree.nodes[i].is_leaf() {
                i = next(&tree.nodes[i], x);
            }
            weight[i] += w;
            let a = &mut acc[i * width..(i + 1) * width];
            if self.classes > 0 {
                a[h.y[r] as usize] += w;
            } else {
                let y = &h.y[r * self.targets..(r + 1) * self.targets];
                for (j, &y) in y.iter().enumerate() {
                    let y = f64::from(y);
                    a[2 * j] += w * y;
                    a[2 * j + 1] += w * y * y;
                }
            }
        }
        for &i in order.iter().rev() {
            let node = &tree.nodes[i];
            if !node.is_leaf() {
                let (l, r) = (node.left as usize, node.right as usize);
                weight[i] = weight[l] + weight[r];
                for j in 0..width {
                    acc[i * width + j] = acc[l * width + j] + acc[r * width + j];
                }
            }
        }
        let total = if self.total > 0.0 { self.total } else { 1.0 };
        let risk = (0..n)
            .map(|i| {
                let (w, a) = (weight[i], &acc[i * width..(i + 1) * width]);
                if w <= 0.0 {
                    return 0.0;
                }
                let r = if self.classes > 0 {
                    w - a.iter().map(|c| c * c).sum::<f64>() / w
                } else {
                    let sse: f64 = a.chunks_exact(2).map(|s| s[1] - s[0] * s[0] / w).sum();
                    sse / self.targets as f64
                };
                r.max(0.0) / total
            })
            .collect();
        (weight, risk)
    }
}

/// The child of internal `node` that row `x` goes to.
pub(super) fn next(node: &TreeNode, x: &[f32]) -> usize {
    let v = x[node.feature as usize];
    let left = if v.is_nan() {
        node.missing_left != 0
    } else {
        v <= node.threshold
    };
    (if left { node.left } else { node.right }) as usize
}

/// The nodes the root reaches, in preorder, with each one's parent and
/// depth (`usize::MAX` for the root's parent and unreached nodes).
pub(super) fn preorder(tree: &Tree) -> (Vec<usize>, Vec<usize>, Vec<usize>) {
    let n = tree.nodes.len();
    let (mut order, mut parent, mut depth) = (Vec::new(), vec![usize::MAX; n], vec![0; n]);
    let mut stack = vec![0usize];
    while let Some(i) = stack.pop() {
        order.push(i);
        let node = &tree.nodes[i];
        if !node.is_leaf() {
            for c in [node.right as usize, node.left as usize] {
                parent[c] = i;
                depth[c] = depth[i] + 1;
                stack.push(c);
            }
        }
    }
    (order, parent, depth)
}

/// `tree` cut at `shape.max_depth`, pruned at `shape.ccp_alpha` with
/// node statistics from `rows`, and rebuilt in preorder.
pub(super) fn shape_tree(
    tree: &Tree,
    k: usize,
    shape: &Shape,
    rows: Option<&StatRows<'_>>,
) -> Tree {
    let n = tree.nodes.len();
    let (order, parent, depth) = preorder(tree);
    let mut cut = vec![false; n];
    if let Some(d) = shape.max_depth {
        for &i in &order {
            cut[i] = depth[i] == d && !tree.nodes[i].is_leaf();
        }
    }
    let (weight, risk) = match rows {
        Some(rows) => rows.node_stats(tree, &order),
        None => (vec![0.0; n], vec![0.0; n]),
    };
    if shape.ccp_alpha > 0.0 {
        cost_complexity(tree, &order, &parent, &risk, shape.ccp_alpha, &mut cut);
    }
    let width = tree.leaf_width(k);
    let merged = if cut.iter().any(|&c| c) {
        merged_values(tree, &order, &weight, width)
    } else {
        Vec::new()
    };
    rebuild(tree, &cut, width, &merged)
}

/// Each node's leaf values as a leaf: the average of its subtree's leaves
/// weighted by their row weight, or their plain average when no weight
/// reaches them; `width` values per node (only cut nodes' are read).
pub(super) fn merged_values(
    tree: &Tree,
    order: &[usize],
    weight: &[f64],
    width: usize,
) -> Vec<f32> {
    let n = tree.nodes.len();
    // Per node: weighted sum, plain sum (width each), weight, leaves.
    let mut wsum = vec![0.0f64; n * width];
    let mut usum = vec![0.0f64; n * width];
    let mut wtot = vec![0.0f64; n];
    let mut leaves = vec![0usize; n];
    for &i in order.iter().rev() {
        let node = &tree.nodes[i];
        if node.is_leaf() {
            let v = node.value as usize;
            for (j, &x) in tree.values[v..v + width].iter().enumerate() {
                wsum[i * width + j] = weight[i] * f64::from(x);
                usum[i * width + j] = f64::from(x);
            }
            wtot[i] = weight[i];
            leaves[i] = 1;
        } else {
            let (l, r) = (node.left as usize, node.right as usize);
            for j in 0..width {
                wsum[i * width + j] = wsum[l * width + j] + wsum[r * width + j];
                usum[i * width + j] = usum[l * width + j] + usum[r * width + j];
            }
            wtot[i] = wtot[l] + wtot[r];
            leaves[i] = leaves[l] + leaves[r];
        }
    }
    (0..n * width)
        .map(|ij| {
            let i = ij / width;
            if wtot[i] > 0.0 {
                (wsum[ij] / wtot[i]) as f32
            } else {
                (usum[ij] / leaves[i].max(1) as f64) as f32
            }
        })
        .collect()
}

/// A weakest-link candidate: prune `node` at effective alpha `g`; stale
/// when the node's `version` has moved on.
#[derive(Debug, PartialEq)]
pub(super) struct WeakLink {
    g: f64,
    node: usize,
    version: u32,
}

impl Eq for WeakLink {}

impl Ord for WeakLink {
    // Reversed: the heap pops the smallest alpha, then the lowest node.
    fn cmp(&self, other: &Self) -> Ordering {
        other.g.total_cmp(&self.g).then(other.node.cmp(&self.node))
    }
}

impl PartialOrd for WeakLink {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// Minimal cost-complexity pruning (Breiman et al., scikit-learn's
/// `ccp_alpha`): while the weakest link, the internal node `t` of least
/// `(R(t) - R(T_t)) / (|leaves(T_t)| - 1)`, has that effective alpha at
/// most `alpha`, make it a leaf. Nodes already `cut` count as leaves; the
/// pruned ones are marked in `cut`. A heap of candidates, refreshed along
/// the path to the root after each prune, keeps it `O(n log n)`-ish
/// instead of scikit-learn's rescan per prune.
pub(super) fn cost_complexity(
    tree: &Tree,
    order: &[usize],
    parent: &[usize],
    risk: &[f64],
    alpha: f64,
    cut: &mut [bool],
) {
    let n = tree.nodes.len();
    let mut hidden = vec![false; n];
    for &i in order {
        let p = parent[i];
        if p != usize::MAX {
            hidden[i] = hidden[p] || cut[p];
        }
    }
    // Risk and leaf count of each subtree as it stands.
    let mut sub = vec![0.0f64; n];
    let mut leaves = vec![0usize; n];
    for &i in order.iter().rev() {
        let node = &tree.nodes[i];
        if hidden[i] {
            continue;
        }
        if node.is_leaf() || cut[i] {
            sub[i] = risk[i];
            leaves[i] = 1;
        } else {
            let (l, r) = (node.left as usize, node.right as usize);
            sub[i] = sub[l] + sub[r];
            leaves[i] = leaves[l] + leaves[r];
        }
    }
    let g = |i: usize, sub: &[f64], leaves: &[usize]| (risk[i] - sub[i]) / (leaves[i] - 1) as f64;
    let mut version = vec![0u32; n];
    let mut heap: BinaryHeap<WeakLink> = order
        .iter()
        .filter(|&&i| !hidden[i] && !cut[i] && !tree.nodes[i].is_leaf())
        .map(|&i| WeakLink {
            g: g(i, &sub, &leaves),
            node: i,
            version: 0,
        })
        .collect();
    let under_cut = |mut i: usize, cut: &[bool]| {
        while parent[i] != usize::MAX {
            i = parent[i];
            if cut[i] {
                return true;
            }
        }
        false
    };
    while let Some(link) = heap.pop() {
        if link.g > alpha {
            break;
        }
        let i = link.node;
        if cut[i] || link.version != version[i] || under_cut(i, cut) {
            continue;
        }
        let (dr, dl) = (risk[i] - sub[i], leaves[i] - 1);
        cut[i] = true;
        sub[i] = risk[i];
        leaves[i] = 1;
        let mut a = parent[i];
        while a != usize::MAX {
            sub[a] += dr;
            leaves[a] -= dl;
            version[a] += 1;
            heap.push(WeakLink {
                g: g(a, &sub, &leaves),
                node: a,
                version: version[a],
            });
            a = parent[a];
        }
    }
}

/// `tree` in preorder from its root, `cut` nodes as leaves holding their
/// `merged` values (`width` per node): only reached nodes and used values.
pub(super) fn rebuild(tree: &Tree, cut: &[bool], width: usize, merged: &[f32]) -> Tree {
    let mut nodes: Vec<TreeNode> = Vec::new();
    let mut values: Vec<f32> = Vec::new();
    // (source node, its parent in the output, whether it is the right child)
    let mut stack = vec![(0usize, usize::MAX, false)];
    while let Some((s, p, right)) = stack.pop() {
        let at = nodes.len();
        if p != usize::MAX {
            let parent: &mut TreeNode = &mut nodes[p];
            if right {
                parent.right = at as u32;
            } else {
                parent.left = at as u32;
            }
        }
        let node = tree.nodes[s];
        if node.is_leaf() || cut[s] {
            nodes.push(TreeNode::leaf(values.len() as u32));
            let v = if cut[s] {
                &merged[s * width..(s + 1) * width]
            } else {
                &tree.values[node.value as usize..node.value as usize + width]
            };
            values.extend_from_slice(v);
        } else {
            nodes.push(node);
            stack.push((node.right as usize, at, true));
            stack.push((node.left as usize, at, false));
        }
    }
    Tree {
        nodes: nodes.into(),
        values: values.into(),
        output: tree.output,
    }
}
