//! Tests of tree-ensemble pruning: random ensembles of every combination
//! and link for validity, small hand-built trees for exact values.

use tessera_core::{
    CompressData, ErrorKind, Holdout, MatrixRef, NullContext, PluginError, Task,
    abi_stable::std_types::{ROption, RSlice},
    ir::{Combine, Link, Tree, TreeEnsemble, TreeNode},
};
use tessera_engine::Engine;

use super::greedy::*;
use super::*;

/// A splitmix64 stream: deterministic test data without a dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `[0, 1)`.
    fn unit(&mut self) -> f32 {
        (self.next() >> 40) as f32 / (1u64 << 24) as f32
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// What a random tree's leaves hold.
#[derive(Clone, Copy)]
enum Leaves {
    /// A probability per class.
    Proba(usize),
    /// Free scores, `width` per leaf.
    Score(usize),
}

/// A random tree in preorder (left child right after its parent), the
/// layout pruning writes, so that an untouched tree comes back equal.
fn random_tree(rng: &mut Rng, features: usize, leaves: Leaves, output: u32) -> Tree {
    fn grow(
        rng: &mut Rng,
        nodes: &mut Vec<TreeNode>,
        values: &mut Vec<f32>,
        features: usize,
        leaves: Leaves,
        depth: usize,
    ) -> u32 {
        let at = nodes.len();
        if depth >= 4 || (depth > 0 && rng.unit() < 0.25) {
            nodes.push(TreeNode::leaf(values.len() as u32));
            match leaves {
                Leaves::Proba(k) => {
                    let raw: Vec<f32> = (0..k).map(|_| rng.unit().powi(2)).collect();
                    let sum: f32 = raw.iter().sum::<f32>().max(1e-6);
                    values.extend(raw.iter().map(|v| v / sum));
                }
                Leaves::Score(w) => values.extend((0..w).map(|_| 2.0 * rng.unit() - 1.0)),
            }
            return at as u32;
        }
        nodes.push(TreeNode {
            feature: rng.below(features) as u32,
            threshold: 2.0 * rng.unit() - 1.0,
            left: 0,
            right: 0,
            value: 0,
            missing_left: u8::from(rng.unit() < 0.5),
        });
        let left = grow(rng, nodes, values, features, leaves, depth + 1);
        let right = grow(rng, nodes, values, features, leaves, depth + 1);
        nodes[at].left = left;
        nodes[at].right = right;
        at as u32
    }
    let (mut nodes, mut values) = (Vec::new(), Vec::new());
    grow(rng, &mut nodes, &mut values, features, leaves, 0);
    Tree {
        nodes: nodes.into(),
        values: values.into(),
        output,
    }
}

const FEATURES: usize = 4;

/// Every kind of ensemble the engine serves: its name, the ensemble, and
/// the task of its rows.
fn ensembles() -> Vec<(&'static str, TreeEnsemble, Task)> {
    let mut rng = Rng(7);
    let mut make = |combine, link, k: u32, c: u32, base: Vec<f32>, leaves, one_output: bool| {
        let trees: Vec<Tree> = (0..9)
            .map(|t| {
                let output = if one_output { t % k } else { Tree::ALL_OUTPUTS };
                random_tree(&mut rng, FEATURES, leaves, output)
            })
            .collect();
        TreeEnsemble {
            n_features: FEATURES as u32,
            n_outputs: k,
            n_classes: c,
            combine,
            link,
            base_score: base.into(),
            trees: trees.into(),
        }
    };
    use Combine::{Mean, Sum, Vote};
    use Leaves::{Proba, Score};
    use Link::{Identity, Sigmoid, Softmax};
    let (cls, reg) = (Task::classification, Task::regression_targets);
    vec![
        (
            "forest binary",
            make(Mean, Identity, 2, 2, vec![], Proba(2), false),
            cls(2),
        ),
        (
            "forest 3 classes",
            make(Mean, Identity, 3, 3, vec![], Proba(3), false),
            cls(3),
        ),
        (
            "forest regression",
            make(Mean, Identity, 1, 0, vec![], Score(1), false),
            reg(1),
        ),
        (
            "forest 2 targets",
            make(Mean, Identity, 2, 0, vec![], Score(2), false),
            reg(2),
        ),
        (
            "vote 3 classes",
            make(Vote, Identity, 3, 3, vec![], Proba(3), false),
            cls(3),
        ),
        (
            "boosted binary",
            make(Sum, Sigmoid, 1, 2, vec![0.3], Score(1), false),
            cls(2),
        ),
        (
            "boosted softmax, a tree per class",
            make(Sum, Softmax, 3, 3, vec![0.1, -0.2, 0.0], Score(1), true),
            cls(3),
        ),
        (
            "boosted softmax, wide trees",
            make(Sum, Softmax, 3, 3, vec![], Score(3), false),
            cls(3),
        ),
        (
            "boosted regression",
            make(Sum, Identity, 1, 0, vec![0.5], Score(1), false),
            reg(1),
        ),
        (
            "boosted 2 targets, a tree per target",
            make(Sum, Identity, 2, 0, vec![0.5, -1.0], Score(1), true),
            reg(2),
        ),
    ]
}

/// Rows with 5 % missing values, targets for `task`, weights if asked.
struct Rows {
    x: Vec<f32>,
    y: Vec<f32>,
    w: Option<Vec<f32>>,
}

impl Rows {
    fn random(seed: u64, n: usize, task: Task, weighted: bool) -> Self {
        let mut rng = Rng(seed);
        let x = (0..n * FEATURES)
            .map(|_| {
                if rng.unit() < 0.05 {
                    f32::NAN
                } else {
                    3.0 * rng.unit() - 1.5
                }
            })
            .collect();
        let y = (0..n * task.n_targets())
            .map(|_| {
                if task.is_classification() {
                    rng.below(task.n_classes as usize) as f32
                } else {
                    2.0 * rng.unit() - 1.0
                }
            })
            .collect();
        let w = weighted.then(|| (0..n).map(|_| 2.0 * rng.unit()).collect());
        Self { x, y, w }
    }

    fn holdout(&self) -> Holdout<'_> {
        let rows = self.x.len() / FEATURES;
        Holdout {
            x: MatrixRef::new(&self.x, rows, FEATURES).expect("shape"),
            y: RSlice::from_slice(&self.y),
            weights: match &self.w {
                Some(w) => ROption::RSome(RSlice::from_slice(w)),
                None => ROption::RNone,
            },
        }
    }
}

fn data<'a>(train: Option<&'a Rows>, eval: Option<&'a Rows>, task: Task) -> CompressData<'a> {
    CompressData {
        train: train.map(Rows::holdout).into(),
        eval: eval.map(Rows::holdout).into(),
        task,
    }
}

fn run(
    ens: &TreeEnsemble,
    opts: TreePrune,
    data: &CompressData<'_>,
) -> Result<(TreeEnsemble, Value), PluginError> {
    prune(ens, &opts, data, &NullContext { threads: 2 }.as_ref())
}

/// Every node reached from the root exactly once, every index and value
/// range in bounds, no unused value, and at most `max_depth` deep.
fn assert_compact(tree: &Tree, k: usize, max_depth: Option<usize>, what: &str) {
    let width = tree.leaf_width(k);
    let mut seen = vec![false; tree.nodes.len()];
    let mut stack = vec![(0usize, 0usize)];
    let mut leaves = 0;
    while let Some((i, d)) = stack.pop() {
        assert!(i < tree.nodes.len(), "{what}: child {i} out of range");
        assert!(!seen[i], "{what}: node {i} reached twice");
        seen[i] = true;
        let n = &tree.nodes[i];
        if n.is_leaf() {
            assert!(
                n.value as usize + width <= tree.values.len(),
                "{what}: leaf values"
            );
            leaves += 1;
            if let Some(m) = max_depth {
                assert!(d <= m, "{what}: leaf at depth {d} past max_depth {m}");
            }
        } else {
            stack.extend([(n.left as usize, d + 1), (n.right as usize, d + 1)]);
        }
    }
    assert!(seen.iter().all(|&s| s), "{what}: unreachable nodes kept");
    assert_eq!(
        tree.values.len(),
        leaves * width,
        "{what}: unused leaf values kept"
    );
}

fn raw(ens: &TreeEnsemble, rows: &Rows) -> Vec<f64> {
    let h = rows.holdout();
    Engine::new(ens)
        .expect("valid ensemble")
        .raw(&NullContext::default().as_ref(), h.x)
        .expect("predicts")
}

#[test]
fn pruned_ensembles_are_valid() {
    let options = [
        TreePrune::default(),
        TreePrune {
            max_depth: Some(0),
            ..TreePrune::default()
        },
        TreePrune {
            max_depth: Some(2),
            ..TreePrune::default()
        },
        TreePrune {
            ccp_alpha: 0.01,
            ..TreePrune::default()
        },
        TreePrune {
            ccp_alpha: 1e9,
            ..TreePrune::default()
        },
        TreePrune {
            keep: Some(Keep::Count(3)),
            ..TreePrune::default()
        },
        TreePrune {
            keep: Some(Keep::Fraction(0.5)),
            selection: Selection::First,
            ..TreePrune::default()
        },
        TreePrune {
            keep: Some(Keep::Count(2)),
            selection: Selection::Greedy,
            ccp_alpha: 0.002,
            max_depth: Some(3),
        },
    ];
    for (name, ens, task) in ensembles() {
        let (train, eval) = (
            Rows::random(1, 300, task, true),
            Rows::random(2, 200, task, false),
        );
        let d = data(Some(&train), Some(&eval), task);
        for opts in options {
            let what = format!("{name}, {opts:?}");
            let (out, summary) = run(&ens, opts, &d).unwrap_or_else(|e| panic!("{what}: {e}"));
            Engine::new(&out).unwrap_or_else(|e| panic!("{what}: engine refuses: {e}"));
            assert_eq!(
                (
                    out.n_features,
                    out.n_outputs,
                    out.n_classes,
                    out.combine,
                    out.link
                ),
                (
                    ens.n_features,
                    ens.n_outputs,
                    ens.n_classes,
                    ens.combine,
                    ens.link
                ),
                "{what}"
            );
            assert_eq!(out.base_score, ens.base_score, "{what}");
            let n = match opts.keep {
                None => 9,
                Some(Keep::Count(n)) => n,
                Some(Keep::Fraction(_)) => 5,
            };
            assert_eq!(out.trees.len(), n, "{what}");
            assert_eq!(summary["trees"]["after"], n, "{what}");
            for (t, tree) in out.trees.iter().enumerate() {
                assert_compact(
                    tree,
                    ens.n_outputs as usize,
                    opts.max_depth,
                    &format!("{what}, tree {t}"),
                );
            }
            let outputs: Vec<u32> = out.trees.iter().map(|t| t.output).collect();
            assert!(
                outputs
                    .iter()
                    .all(|o| ens.trees.iter().any(|t| t.output == *o)),
                "{what}: a tree's output changed"
            );
            assert!(
                summary["metric"]["after"]
                    .as_f64()
                    .is_some_and(f64::is_finite),
                "{what}"
            );
        }
    }
}

#[test]
fn untouched_trees_come_back_equal() {
    for (name, ens, task) in ensembles() {
        let (train, eval) = (
            Rows::random(1, 100, task, false),
            Rows::random(2, 100, task, false),
        );
        for d in [
            data(Some(&train), Some(&eval), task),
            CompressData::none(task),
        ] {
            let (out, summary) = run(&ens, TreePrune::default(), &d).expect("prunes");
            assert_eq!(out, ens, "{name}: no option should change nothing");
            assert_eq!(
                summary["nodes"]["before"], summary["nodes"]["after"],
                "{name}"
            );
        }
        // ccp_alpha = 0 is no pruning, even with rows.
        let opts = TreePrune {
            ccp_alpha: 0.0,
            ..TreePrune::default()
        };
        let (out, _) = run(&ens, opts, &data(Some(&train), None, task)).expect("prunes");
        assert_eq!(out, ens, "{name}: ccp_alpha = 0");
    }
}

#[test]
fn greedy_with_every_tree_reproduces_the_model() {
    for (name, ens, task) in ensembles() {
        let eval = Rows::random(3, 150, task, true);
        let opts = TreePrune {
            keep: Some(Keep::Count(ens.trees.len())),
            ..TreePrune::default()
        };
        let (out, summary) = run(&ens, opts, &data(None, Some(&eval), task)).expect("prunes");
        assert_eq!(raw(&out, &eval), raw(&ens, &eval), "{name}");
        assert_eq!(out, ens, "{name}: the trees keep their order");
        assert_eq!(
            summary["metric"]["before"], summary["metric"]["after"],
            "{name}"
        );
    }
}

/// The cheap per-candidate scores (the softmax shortcut included) must be
/// the metric of the ensemble they choose, as the engine computes it.
#[test]
fn greedy_scores_agree_with_the_engine() {
    for (name, ens, task) in ensembles() {
        let eval = Rows::random(4, 250, task, true);
        for n in [1, 4] {
            let opts = TreePrune {
                keep: Some(Keep::Count(n)),
                ..TreePrune::default()
            };
            let (_, s) = run(&ens, opts, &data(None, Some(&eval), task)).expect("prunes");
            let chosen = s["selection"]["metric_on_rows_used"]
                .as_f64()
                .expect("a number");
            let engine = s["metric"]["after"].as_f64().expect("a number");
            assert!(
                (chosen - engine).abs() <= 1e-9 * engine.abs().max(1.0),
                "{name}, {n} trees: selection scored {chosen}, the engine {engine}"
            );
            assert_eq!(s["selection"]["rows_used"], 250, "{name}");
        }
    }
}

#[test]
fn greedy_does_not_depend_on_the_thread_count() {
    for (name, ens, task) in ensembles() {
        let eval = Rows::random(5, 120, task, false);
        let d = data(None, Some(&eval), task);
        let opts = TreePrune {
            keep: Some(Keep::Count(4)),
            ..TreePrune::default()
        };
        let one = prune(&ens, &opts, &d, &NullContext { threads: 1 }.as_ref()).expect("prunes");
        let five = prune(&ens, &opts, &d, &NullContext { threads: 5 }.as_ref()).expect("prunes");
        assert_eq!(one.0, five.0, "{name}");
    }
}

#[test]
fn first_keeps_the_first_trees_in_order() {
    let (_, ens, task) = ensembles().swap_remove(5);
    let opts = TreePrune {
        keep: Some(Keep::Count(4)),
        selection: Selection::First,
        ..TreePrune::default()
    };
    // No rows needed.
    let (out, summary) = run(&ens, opts, &CompressData::none(task)).expect("prunes");
    assert_eq!(out.trees.as_slice(), &ens.trees[..4]);
    assert_eq!(summary["selection"]["method"], "first");
    assert!(summary["metric"].is_null());
}

/// A one-leaf tree holding `v`.
fn constant(v: &[f32]) -> Tree {
    Tree {
        nodes: vec![TreeNode::leaf(0)].into(),
        values: v.to_vec().into(),
        output: Tree::ALL_OUTPUTS,
    }
}

/// A stump on feature 0 at 0: `left` below, `right` above.
fn stump(left: &[f32], right: &[f32]) -> Tree {
    let w = left.len() as u32;
    Tree {
        nodes: vec![
            TreeNode {
                feature: 0,
                threshold: 0.0,
                left: 1,
                right: 2,
                value: 0,
                missing_left: 1,
            },
            TreeNode::leaf(0),
            TreeNode::leaf(w),
        ]
        .into(),
        values: [left, right].concat().into(),
        output: Tree::ALL_OUTPUTS,
    }
}

/// Rows whose target is the side of 0 feature 0 falls on: class 0/1, or
/// -1/1 for regression.
fn step_rows(n: usize, classes: bool) -> Rows {
    let mut rng = Rng(11);
    let mut x = Vec::new();
    let mut y = Vec::new();
    for _ in 0..n {
        let v = 2.0 * rng.unit() - 1.0;
        x.extend([v, rng.unit(), rng.unit(), rng.unit()]);
        y.push(match (classes, v > 0.0) {
            (true, up) => f32::from(u8::from(up)),
            (false, true) => 1.0,
            (false, false) => -1.0,
        });
    }
    Rows { x, y, w: None }
}

#[test]
fn greedy_beats_first_when_the_first_trees_are_bad() {
    let cases = [
        (
            // Regression: the first trees predict a constant far off.
            "regression",
            (0..5).map(|_| constant(&[5.0])).collect::<Vec<_>>(),
            (0..5)
                .map(|i| stump(&[-1.0], &[1.0 - 0.1 * i as f32]))
                .collect::<Vec<_>>(),
            0,
            Task::regression(),
        ),
        (
            // A forest: the first trees are confidently wrong.
            "forest",
            (0..5).map(|_| stump(&[0.1, 0.9], &[0.9, 0.1])).collect(),
            (0..5).map(|_| stump(&[0.8, 0.2], &[0.2, 0.8])).collect(),
            2,
            Task::classification(2),
        ),
    ];
    for (name, bad, good, c, task) in cases {
        let k = if c > 0 { 2 } else { 1 };
        let ens = TreeEnsemble {
            n_features: FEATURES as u32,
            n_outputs: k,
            n_classes: c,
            combine: Combine::Mean,
            link: Link::Identity,
            base_score: Vec::new().into(),
            trees: bad.into_iter().chain(good.clone()).collect(),
        };
        let eval = step_rows(400, c > 0);
        let d = data(None, Some(&eval), task);
        let mut opts = TreePrune {
            keep: Some(Keep::Count(3)),
            ..TreePrune::default()
        };
        let (greedy, g) = run(&ens, opts, &d).expect("prunes");
        opts.selection = Selection::First;
        let (_, f) = run(&ens, opts, &d).expect("prunes");
        let (g, f) = (g["metric"]["after"].as_f64(), f["metric"]["after"].as_f64());
        assert!(g < f, "{name}: greedy {g:?} should beat first {f:?}");
        assert!(
            greedy.trees.iter().all(|t| good.contains(t)),
            "{name}: greedy kept a bad tree"
        );
    }
}

/// The hand-pruned tree: root `x0 <= 0.5` to a pure leaf (4 rows of class
/// 0) and to node 2, `x1 <= 0.5`, whose leaves get one row of each class
/// and two of class 1. Gini risks (over 8 rows): root 30/64, node 2
/// 0.1875, its left leaf 0.125, the rest 0; so node 2's effective alpha is
/// 0.0625 and the root's 0.171875, rising to 0.28125 once node 2 is gone.
fn hand_tree() -> (TreeEnsemble, Rows) {
    let split = |feature, left, right| TreeNode {
        feature,
        threshold: 0.5,
        left,
        right,
        value: 0,
        missing_left: 0,
    };
    let tree = Tree {
        nodes: vec![
            split(0, 1, 2),
            TreeNode::leaf(0),
            split(1, 3, 4),
            TreeNode::leaf(2),
            TreeNode::leaf(4),
        ]
        .into(),
        values: vec![1.0, 0.0, 0.5, 0.5, 0.0, 1.0].into(),
        output: Tree::ALL_OUTPUTS,
    };
    let ens = TreeEnsemble {
        n_features: FEATURES as u32,
        n_outputs: 2,
        n_classes: 2,
        combine: Combine::Mean,
        link: Link::Identity,
        base_score: Vec::new().into(),
        trees: vec![tree].into(),
    };
    let rows: [([f32; 2], f32); 8] = [
        ([0.0, 0.0], 0.0),
        ([0.0, 1.0], 0.0),
        ([0.0, 0.0], 0.0),
        ([0.0, 1.0], 0.0),
        ([1.0, 0.0], 1.0),
        ([1.0, 0.0], 0.0),
        ([1.0, 1.0], 1.0),
        ([1.0, 1.0], 1.0),
    ];
    let x = rows
        .iter()
        .flat_map(|(x, _)| [x[0], x[1], 0.0, 0.0])
        .collect();
    let y = rows.iter().map(|(_, y)| *y).collect();
    (ens, Rows { x, y, w: None })
}

fn only_tree(ens: &TreeEnsemble) -> &Tree {
    &ens.trees[0]
}

#[test]
fn cost_complexity_prunes_the_weakest_link_first() {
    let (ens, rows) = hand_tree();
    let task = Task::classification(2);
    let d = data(Some(&rows), None, task);
    let prune_at = |alpha| {
        let opts = TreePrune {
            ccp_alpha: alpha,
            ..TreePrune::default()
        };
        run(&ens, opts, &d).expect("prunes").0
    };
    assert_eq!(prune_at(0.05), ens, "below both alphas nothing goes");
    let t = prune_at(0.1);
    assert_eq!(only_tree(&t).nodes.len(), 3, "node 2 goes at 0.1");
    // Node 2's two leaves, two rows each.
    assert_eq!(only_tree(&t).values.as_slice(), &[1.0, 0.0, 0.25, 0.75]);
    assert_eq!(
        only_tree(&prune_at(0.2)).nodes.len(),
        3,
        "the root's alpha rose to 0.28"
    );
    let t = prune_at(0.3);
    assert_eq!(only_tree(&t).nodes.len(), 1);
    assert_eq!(only_tree(&t).values.as_slice(), &[0.625, 0.375]);
    let t = prune_at(1e9);
    assert_eq!(only_tree(&t).nodes.len(), 1);
}

#[test]
fn cost_complexity_measures_regression_risk_as_squared_error() {
    // One stump splitting targets 0, 0 | 1, 1: the root's risk is
    // 4 * 0.25 / 4 = 0.25 and the leaves' 0, so its alpha is 0.25.
    let ens = TreeEnsemble {
        n_features: FEATURES as u32,
        n_outputs: 1,
        n_classes: 0,
        combine: Combine::Sum,
        link: Link::Identity,
        base_score: Vec::new().into(),
        trees: vec![stump(&[0.0], &[1.0])].into(),
    };
    let rows = Rows {
        x: [-1.0, -0.5, 0.5, 1.0]
            .iter()
            .flat_map(|&v| [v, 0.0, 0.0, 0.0])
            .collect(),
        y: vec![0.0, 0.0, 1.0, 1.0],
        w: None,
    };
    let d = data(None, Some(&rows), Task::regression());
    for (alpha, nodes) in [(0.24, 3), (0.26, 1)] {
        let opts = TreePrune {
            ccp_alpha: alpha,
            ..TreePrune::default()
        };
        let (out, _) = run(&ens, opts, &d).expect("prunes");
        assert_eq!(only_tree(&out).nodes.len(), nodes, "alpha {alpha}");
    }
}

#[test]
fn huge_ccp_alpha_leaves_roots_that_stay_probabilities() {
    for (name, ens, task) in ensembles() {
        let train = Rows::random(6, 200, task, true);
        let opts = TreePrune {
            ccp_alpha: 1e9,
            ..TreePrune::default()
        };
        let (out, _) = run(&ens, opts, &data(Some(&train), None, task)).expect("prunes");
        for t in out.trees.iter() {
            assert_eq!(t.nodes.len(), 1, "{name}");
            if ens.n_classes > 0 && ens.link == Link::Identity {
                let sum: f32 = t.values.iter().sum();
                assert!((sum - 1.0).abs() < 1e-5, "{name}: root sums to {sum}");
            }
        }
    }
}

#[test]
fn max_depth_zero_leaves_the_weighted_average() {
    let (ens, mut rows) = hand_tree();
    let task = Task::classification(2);
    let opts = |d| TreePrune {
        max_depth: Some(d),
        ..TreePrune::default()
    };
    // Rows reaching the leaves: 4, 2, 2.
    let (out, _) = run(&ens, opts(0), &data(Some(&rows), None, task)).expect("prunes");
    assert_eq!(only_tree(&out).nodes.len(), 1);
    assert_eq!(only_tree(&out).values.as_slice(), &[0.625, 0.375]);
    let (out, _) = run(&ens, opts(1), &data(None, Some(&rows), task)).expect("prunes");
    assert_eq!(only_tree(&out).values.as_slice(), &[1.0, 0.0, 0.25, 0.75]);
    // No rows: each leaf counts once.
    let (out, _) = run(&ens, opts(0), &CompressData::none(task)).expect("prunes");
    assert_eq!(only_tree(&out).values.as_slice(), &[0.5, 0.5]);
    // Weighted rows: the pure leaf's 4 rows weigh 2 each.
    rows.w = Some(vec![2.0, 2.0, 2.0, 2.0, 1.0, 1.0, 1.0, 1.0]);
    let (out, _) = run(&ens, opts(0), &data(Some(&rows), None, task)).expect("prunes");
    assert_eq!(only_tree(&out).values.as_slice(), &[0.75, 0.25]);
    let (out, _) = run(&ens, opts(5), &data(Some(&rows), None, task)).expect("prunes");
    assert_eq!(out, ens, "a depth past the tree's cuts nothing");
}

#[test]
fn compaction_drops_unreachable_nodes_and_values() {
    let (mut ens, rows) = hand_tree();
    let tree = &mut ens.trees[0];
    // Node 5 is reached by no one; value 6..8 used by no leaf.
    tree.nodes.push(TreeNode::leaf(6));
    tree.values.extend([0.3, 0.7]);
    // A layout that is not preorder: the root's children stored swapped.
    tree.nodes.swap(1, 2);
    tree.nodes[0].left = 2;
    tree.nodes[0].right = 1;
    let (out, _) = run(
        &ens,
        TreePrune::default(),
        &CompressData::none(Task::classification(2)),
    )
    .expect("prunes");
    assert_compact(only_tree(&out), 2, None, "compacted");
    assert_eq!(only_tree(&out).nodes.len(), 5);
    assert_eq!(raw(&out, &rows), raw(&ens, &rows));
}

#[test]
fn fractions_round_to_a_tree_count() {
    let (_, ens, task) = ensembles().swap_remove(0);
    for (f, n) in [(0.25, 2), (0.3, 3), (0.01, 1), (1.0, 9)] {
        let opts = TreePrune {
            keep: Some(Keep::Fraction(f)),
            selection: Selection::First,
            ..TreePrune::default()
        };
        let (out, _) = run(&ens, opts, &CompressData::none(task)).expect("prunes");
        assert_eq!(out.trees.len(), n, "fraction {f} of 9 trees");
    }
}

#[test]
fn bad_options_and_missing_rows_are_explained() {
    let (_, ens, task) = ensembles().swap_remove(0);
    let rows = Rows::random(9, 50, task, false);
    let with_eval = data(None, Some(&rows), task);
    let with_train = data(Some(&rows), None, task);
    let none = CompressData::none(task);
    let keep = |k| TreePrune {
        keep: Some(k),
        ..TreePrune::default()
    };
    let ccp = |a| TreePrune {
        ccp_alpha: a,
        ..TreePrune::default()
    };
    let cases: Vec<(TreePrune, &CompressData<'_>, ErrorKind, &str)> = vec![
        (
            keep(Keep::Count(10)),
            &with_eval,
            ErrorKind::INVALID_INPUT,
            "`n_estimators` = 10 is more than the 9 trees the model has",
        ),
        (
            keep(Keep::Count(0)),
            &with_eval,
            ErrorKind::INVALID_PARAMS,
            "`n_estimators` = 0",
        ),
        (
            keep(Keep::Fraction(0.0)),
            &with_eval,
            ErrorKind::INVALID_PARAMS,
            "must be in (0, 1]",
        ),
        (
            keep(Keep::Fraction(1.5)),
            &with_eval,
            ErrorKind::INVALID_PARAMS,
            "`n_estimators` = 1.5",
        ),
        (
            keep(Keep::Fraction(f64::NAN)),
            &with_eval,
            ErrorKind::INVALID_PARAMS,
            "(0, 1]",
        ),
        (
            keep(Keep::Count(3)),
            &with_train,
            ErrorKind::INVALID_INPUT,
            "greedy tree selection needs evaluation rows: give --eval FILE --target COL",
        ),
        (
            ccp(0.1),
            &none,
            ErrorKind::INVALID_INPUT,
            "(`ccp_alpha` = 0.1) measures node impurity on rows",
        ),
        (
            ccp(-1.0),
            &with_train,
            ErrorKind::INVALID_PARAMS,
            "`ccp_alpha` = -1 must be",
        ),
        (
            ccp(f64::INFINITY),
            &with_train,
            ErrorKind::INVALID_PARAMS,
            "`ccp_alpha` = inf",
        ),
    ];
    for (opts, d, kind, message) in cases {
        let e = run(&ens, opts, d).expect_err(&format!("{opts:?} should fail"));
        assert_eq!(e.kind, kind, "{opts:?}: {e}");
        assert!(
            e.message.contains(message),
            "{opts:?}: `{e}` lacks `{message}`"
        );
    }
    // Rows of another task.
    let reg = Rows::random(9, 50, Task::regression(), false);
    let e = run(
        &ens,
        TreePrune::default(),
        &data(None, Some(&reg), Task::regression()),
    )
    .expect_err("regression rows for a classifier");
    assert!(
        e.message.contains("the model is a classifier of 2 classes"),
        "{e}"
    );
}

#[test]
fn fast_logarithm_and_exponential_are_close() {
    let mut worst = (0.0f64, 0.0f64);
    for i in 0..200_000 {
        // 1e-7 to 1e3 for the logarithm, -87 to 0 for the exponential.
        let t = f64::from(i) / 200_000.0;
        let x = 10f64.powf(-7.0 + 10.0 * t) as f32;
        let ln = f64::from(ln_fast(x));
        let err = (ln - f64::from(x).ln()).abs() / f64::from(x).ln().abs().max(1.0);
        worst.0 = worst.0.max(err);
        let y = (-87.0 * t) as f32;
        let exp = f64::from(exp_fast(y));
        worst.1 = worst
            .1
            .max((exp - f64::from(y).exp()).abs() / f64::from(y).exp());
    }
    assert!(worst.0 < 3e-7, "ln: worst relative error {}", worst.0);
    assert!(worst.1 < 3e-7, "exp: worst relative error {}", worst.1);
}

/// Each candidate's fast score must match the exact loss of the ensemble
/// it would make, at every step.
#[test]
fn candidate_scores_match_adding_the_candidate() {
    fn check(sel: &(impl Candidates + Clone), n_trees: usize, tol: f64, what: &str) {
        let mut sel = sel.clone();
        for m in 0..3 {
            for t in m..n_trees {
                let mut with = sel.clone();
                with.add(t);
                let (fast, exact) = (sel.cost(t, m), with.current(m + 1));
                assert!(
                    (fast - exact).abs() <= tol * exact.abs().max(1.0),
                    "{what}: step {m}, tree {t}: scored {fast}, exactly {exact}"
                );
            }
            sel.add(m);
        }
    }
    let ctx = NullContext::default();
    for (name, ens, task) in ensembles() {
        let eval = Rows::random(8, 300, task, true);
        let sample = Sample::new(eval.holdout(), 300);
        let (loss, n) = (Loss::of(&ens), ens.trees.len());
        if is_narrow(&ens) {
            let sel = Narrow::new(&ens, &sample, loss, 2, &ctx.as_ref()).expect("table");
            let tol = if loss == Loss::Square { 1e-12 } else { 1e-5 };
            check(&sel, n, tol, name);
        } else {
            let targets = task.n_targets();
            let sel = Wide::new(&ens, &sample, targets, loss, 2, &ctx.as_ref()).expect("table");
            check(&sel, n, 1e-10, name);
        }
    }
}
