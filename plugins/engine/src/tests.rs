//! The engine against the plain tree walk of the exchange form, on random
//! ensembles and random rows (missing values included).

use tessera_core::{
    MatrixRef, NullContext,
    ir::{Combine, Link, Tree, TreeEnsemble, TreeNode},
    plugin::seeds::SplitMix,
};

use super::*;

/// A random tree of at most `max_leaves` leaves over `p` features whose
/// leaves hold `width` values; thresholds come from a small grid so rows
/// hit them exactly.
fn random_tree(rng: &mut SplitMix, p: usize, max_leaves: usize, width: usize, output: u32) -> Tree {
    let target = if max_leaves <= 1 {
        1
    } else {
        2 + rng.below(max_leaves - 1)
    };
    tree_of(rng, p, target, width, output)
}

/// A random tree of exactly `target` leaves, as [`random_tree`].
pub(crate) fn tree_of(
    rng: &mut SplitMix,
    p: usize,
    target: usize,
    width: usize,
    output: u32,
) -> Tree {
    let mut nodes = vec![TreeNode::leaf(0)];
    let mut values: Vec<f32> = (0..width).map(|_| rng.unit() as f32 - 0.5).collect();
    let mut leaves = vec![0usize];
    while leaves.len() < target {
        // Split a random leaf.
        let at = leaves.swap_remove(rng.below(leaves.len()));
        let (l, r) = (nodes.len(), nodes.len() + 1);
        let old = nodes[at].value;
        nodes[at] = TreeNode {
            feature: rng.below(p) as u32,
            threshold: grid(rng),
            left: l as u32,
            right: r as u32,
            value: 0,
            missing_left: (rng.below(2)) as u8,
        };
        nodes.push(TreeNode::leaf(old));
        let v = values.len() as u32;
        values.extend((0..width).map(|_| rng.unit() as f32 - 0.5));
        nodes.push(TreeNode::leaf(v));
        leaves.extend([l, r]);
    }
    Tree {
        nodes: nodes.into(),
        values: values.into(),
        output,
    }
}

fn grid(rng: &mut SplitMix) -> f32 {
    (rng.below(9) as f32 - 4.0) * 0.25
}

fn random_rows(rng: &mut SplitMix, n: usize, p: usize, nan: f64) -> Vec<f32> {
    (0..n * p)
        .map(|_| {
            if rng.unit() < nan {
                f32::NAN
            } else if rng.unit() < 0.3 {
                grid(rng)
            } else {
                (rng.unit() as f32 - 0.5) * 2.5
            }
        })
        .collect()
}

/// The exchange form's meaning, walked the plain way.
fn reference(ens: &TreeEnsemble, row: &[f32]) -> Vec<f64> {
    let k = ens.n_outputs as usize;
    let mut acc = vec![0.0f64; k];
    for t in ens.trees.iter() {
        let v = t.leaf_values(row, k);
        if ens.combine == Combine::Vote {
            acc[layout::argmax(v)] += 1.0;
        } else if t.output != Tree::ALL_OUTPUTS {
            acc[t.output as usize] += f64::from(v[0]);
        } else {
            for (a, &v) in acc.iter_mut().zip(v) {
                *a += f64::from(v);
            }
        }
    }
    let scale = match ens.combine {
        Combine::Sum => 1.0,
        _ => 1.0 / ens.trees.len() as f64,
    };
    (0..k)
        .map(|c| ens.base_score.get(c).map_or(0.0, |&b| f64::from(b)) + acc[c] * scale)
        .collect()
}

fn ensemble(
    rng: &mut SplitMix,
    kind: usize,
    n_trees: usize,
    p: usize,
    max_leaves: usize,
) -> TreeEnsemble {
    let (k, c, combine, link, per_class) = match kind {
        0 => (1, 0, Combine::Sum, Link::Identity, false),
        1 => (1, 2, Combine::Sum, Link::Sigmoid, false),
        2 => (3, 3, Combine::Sum, Link::Softmax, true),
        3 => (3, 3, Combine::Mean, Link::Identity, false),
        4 => (4, 4, Combine::Vote, Link::Identity, false),
        _ => (1, 0, Combine::Mean, Link::Identity, false),
    };
    let trees: Vec<Tree> = (0..n_trees)
        .map(|t| {
            // A one-leaf tree now and then.
            let leaves = if t > 0 && rng.below(10) == 0 {
                1
            } else {
                max_leaves
            };
            if per_class {
                random_tree(rng, p, leaves, 1, (t % k) as u32)
            } else {
                random_tree(rng, p, leaves, k, Tree::ALL_OUTPUTS)
            }
        })
        .collect();
    let base: Vec<f32> = if combine == Combine::Sum {
        (0..k).map(|_| rng.unit() as f32).collect()
    } else {
        Vec::new()
    };
    TreeEnsemble {
        n_features: p as u32,
        n_outputs: k as u32,
        n_classes: c,
        combine,
        link,
        base_score: base.into(),
        trees: trees.into(),
    }
}

#[test]
fn batch_and_single_row_match_the_plain_walk() {
    let mut rng = SplitMix::new(7);
    let ctx = NullContext { threads: 2 };
    let ctx = ctx.as_ref();
    let mut scanned = 0;
    for case in 0..60 {
        let kind = case % 6;
        let p = 1 + rng.below(12);
        // Deep trees (past the fixed-depth walk) now and then; trees of
        // at most 32 leaves (the scan) often.
        let max_leaves = match case % 5 {
            0 => 400,
            1 | 3 => 32,
            _ => 40,
        };
        let n_trees = 1 + rng.below(30);
        let ens = ensemble(&mut rng, kind, n_trees, p, max_leaves);
        let engine = Engine::new(&ens).unwrap();
        scanned += usize::from(engine.tiles[0].scan.is_some() && case % 3 == 0);
        let n = rng.below(300) + 1;
        let nan = [0.0, 0.05, 0.5][case % 3];
        let x = random_rows(&mut rng, n, p, nan);
        let k = ens.n_outputs as usize;
        let batch = engine.raw(&ctx, MatrixRef::new(&x, n, p).unwrap()).unwrap();
        let mut one = vec![0.0; k];
        for (r, row) in x.chunks_exact(p).enumerate() {
            let want = reference(&ens, row);
            let got = &batch[r * k..(r + 1) * k];
            // The engine adds the trees up in another order: f32 values
            // summed in f64 rarely round, but may.
            for (a, b) in got.iter().zip(&want) {
                let tol = 1e-12 * b.abs().max(1.0);
                assert!((a - b).abs() <= tol, "case {case} row {r}: {a} vs {b}");
            }
            engine.raw_row(row, &mut one);
            assert_eq!(
                one, got,
                "case {case} row {r}: one row differs from the batch"
            );
        }
    }
    assert!(scanned >= 5, "only {scanned} cases took the scan");
}

#[test]
fn results_do_not_depend_on_threads() {
    let mut rng = SplitMix::new(11);
    let ens = ensemble(&mut rng, 2, 24, 6, 30);
    let engine = Engine::new(&ens).unwrap();
    let n = 5000;
    let x = random_rows(&mut rng, n, 6, 0.02);
    let run = |t: u32| {
        let ctx = NullContext { threads: t };
        let ctx = ctx.as_ref();
        engine.raw(&ctx, MatrixRef::new(&x, n, 6).unwrap()).unwrap()
    };
    assert_eq!(run(1), run(2));
}

#[test]
fn links_and_labels() {
    let mut rng = SplitMix::new(3);
    let ens = ensemble(&mut rng, 1, 5, 3, 8);
    let e = Engine::new(&ens).unwrap();
    let mut p = [0.0f32; 2];
    e.proba_row(&[0.0], &mut p);
    assert_eq!(p, [0.5, 0.5]);
    assert_eq!(e.label_row(&[0.1]), 1.0);
    assert_eq!(e.label_row(&[-0.1]), 0.0);
    let ens = ensemble(&mut rng, 2, 6, 3, 8);
    let e = Engine::new(&ens).unwrap();
    let mut p = [0.0f32; 3];
    e.proba_row(&[1.0, 3.0, 2.0], &mut p);
    assert!((p.iter().sum::<f32>() - 1.0).abs() < 1e-6);
    assert!(p[1] > p[2] && p[2] > p[0]);
    assert_eq!(e.label_row(&[1.0, 3.0, 2.0]), 1.0);
}

#[test]
fn malformed_ensembles_are_refused_with_the_tree_named() {
    let mut rng = SplitMix::new(5);
    let good = ensemble(&mut rng, 0, 3, 4, 6);
    let expect = |ens: &TreeEnsemble, needle: &str| {
        let e = Engine::new(ens).unwrap_err();
        assert!(
            e.message.contains(needle),
            "`{}` lacks `{needle}`",
            e.message
        );
    };
    let mut bad = good.clone();
    bad.trees[1].nodes[0].left = 999;
    expect(&bad, "tree 1");
    let mut bad = good.clone();
    bad.trees[2].nodes[0].feature = 9;
    expect(&bad, "feature 9");
    let mut bad = good.clone();
    bad.trees[0].nodes[0].right = 0;
    expect(&bad, "reached twice");
    let mut bad = good.clone();
    bad.trees[0].nodes.clear();
    expect(&bad, "no nodes");
    let mut bad = good.clone();
    let last = bad.trees[0].nodes.len() - 1;
    bad.trees[0].nodes[last].value = 10_000;
    expect(&bad, "values start at");
    let mut bad = good.clone();
    bad.link = Link::Softmax;
    expect(&bad, "softmax");
    let mut bad = good.clone();
    bad.base_score = vec![0.0, 1.0].into();
    expect(&bad, "base scores");
    let mut bad = good;
    bad.trees[0].output = 3;
    expect(&bad, "output 3");
}

#[test]
fn deep_trees_are_walked_to_the_end() {
    // A chain 40 levels deep (past the fixed-depth walk): node i sends
    // x <= i left to a leaf of value i, the rest right, down the chain.
    let depth = 40u32;
    let mut nodes = Vec::new();
    let mut values = Vec::new();
    for i in 0..depth {
        let at = nodes.len() as u32;
        nodes.push(TreeNode {
            feature: 0,
            threshold: i as f32,
            left: at + 1,
            right: at + 2,
            value: 0,
            missing_left: u8::from(i % 2 == 0),
        });
        nodes.push(TreeNode::leaf(values.len() as u32));
        values.push(i as f32);
    }
    nodes.push(TreeNode::leaf(values.len() as u32));
    values.push(100.0);
    let ens = TreeEnsemble {
        n_features: 1,
        n_outputs: 1,
        n_classes: 0,
        combine: Combine::Sum,
        link: Link::Identity,
        base_score: Vec::new().into(),
        trees: vec![
            Tree {
                nodes: nodes.into(),
                values: values.into(),
                output: Tree::ALL_OUTPUTS,
            };
            9
        ]
        .into(),
    };
    let engine = Engine::new(&ens).unwrap();
    assert_eq!(engine.max_depth(), depth);
    let x: Vec<f32> = (0..50).map(|i| i as f32 - 3.5).chain([f32::NAN]).collect();
    let ctx = NullContext { threads: 1 };
    let batch = engine
        .raw(&ctx.as_ref(), MatrixRef::new(&x, x.len(), 1).unwrap())
        .unwrap();
    for (row, got) in x.iter().zip(&batch) {
        let want = reference(&ens, std::slice::from_ref(row));
        assert_eq!(*got, want[0], "x = {row}");
    }
}

#[test]
fn large_ensembles_go_tile_by_tile() {
    let mut rng = SplitMix::new(21);
    // Deep trees (walked) and many small ones (scanned), both past one tile.
    for (kind, n_trees, leaves) in [(3, 150, 400), (0, 2500, 31), (2, 1500, 31)] {
        let ens = ensemble(&mut rng, kind, n_trees, 7, leaves);
        let engine = Engine::new(&ens).unwrap();
        assert!(engine.tiles.len() > 1, "{} tiles", engine.tiles.len());
        assert_eq!(
            engine.tiles.iter().map(|t| t.trees.len()).sum::<usize>(),
            n_trees
        );
        let n = 700;
        for nan in [0.0, 0.01] {
            let x = random_rows(&mut rng, n, 7, nan);
            let ctx = NullContext { threads: 2 };
            let batch = engine
                .raw(&ctx.as_ref(), MatrixRef::new(&x, n, 7).unwrap())
                .unwrap();
            let k = ens.n_outputs as usize;
            let mut one = vec![0.0; k];
            for (r, row) in x.chunks_exact(7).enumerate() {
                let want = reference(&ens, row);
                let got = &batch[r * k..(r + 1) * k];
                for (a, b) in got.iter().zip(&want) {
                    assert!(
                        (a - b).abs() <= 1e-9 * b.abs().max(1.0),
                        "row {r}: {a} vs {b}"
                    );
                }
                engine.raw_row(row, &mut one);
                assert_eq!(one, got, "row {r}: one row differs from the batch");
            }
        }
    }
}
