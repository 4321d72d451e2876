//! Quantized models against `tessera_engine` on random ensembles: equal
//! to the dequantized ensemble, close to the original one, alike alone
//! and in batches, and their bytes round trip and refuse damage.

use tessera_core::{
    MatrixRef, NullContext,
    ir::{Combine, Link, Tree, TreeEnsemble, TreeNode},
    plugin::{ModelImpl, seeds::SplitMix},
};
use tessera_engine::{Engine, IrModel};

use super::*;
use crate::{
    half::{f16_to_f32, f32_to_f16},
    predict::Inference,
};

/// Thresholds on a small grid (few distinct values, hit exactly by rows),
/// or anywhere (many distinct values).
#[derive(Clone, Copy, PartialEq)]
enum Thresholds {
    Grid,
    Anywhere,
}

fn grid(rng: &mut SplitMix) -> f32 {
    (rng.below(9) as f32 - 4.0) * 0.25
}

/// A random tree of about `leaves` leaves over `p` features whose leaves
/// hold `width` values.
fn tree(
    rng: &mut SplitMix,
    p: usize,
    leaves: usize,
    width: usize,
    output: u32,
    th: Thresholds,
) -> Tree {
    let mut nodes = vec![TreeNode::leaf(0)];
    let value = |rng: &mut SplitMix| (rng.unit() as f32 - 0.5) * 3.0;
    let mut values: Vec<f32> = (0..width).map(|_| value(rng)).collect();
    let mut open = vec![0usize];
    let target = 1 + rng.below(leaves.max(1));
    while open.len() < target {
        let at = open.swap_remove(rng.below(open.len()));
        let (l, r) = (nodes.len(), nodes.len() + 1);
        let old = nodes[at].value;
        let threshold = match th {
            Thresholds::Grid => grid(rng),
            Thresholds::Anywhere => (rng.unit() as f32 - 0.5) * 2.5,
        };
        nodes[at] = TreeNode {
            feature: rng.below(p) as u32,
            threshold,
            left: l as u32,
            right: r as u32,
            value: 0,
            missing_left: rng.below(2) as u8,
        };
        nodes.push(TreeNode::leaf(old));
        let v = values.len() as u32;
        values.extend((0..width).map(|_| value(rng)));
        nodes.push(TreeNode::leaf(v));
        open.extend([l, r]);
    }
    Tree {
        nodes: nodes.into(),
        values: values.into(),
        output,
    }
}

/// The kinds of ensemble tessera makes: regression (sum, mean, several
/// targets), binary boosting, multiclass boosting with a tree per class,
/// a mean of class distributions, a vote.
const KINDS: usize = 7;

fn ensemble(
    rng: &mut SplitMix,
    kind: usize,
    n_trees: usize,
    p: usize,
    th: Thresholds,
) -> TreeEnsemble {
    let (k, c, combine, link, per_class) = match kind {
        0 => (1, 0, Combine::Sum, Link::Identity, false),
        1 => (1, 2, Combine::Sum, Link::Sigmoid, false),
        2 => (3, 3, Combine::Sum, Link::Softmax, true),
        3 => (3, 3, Combine::Mean, Link::Identity, false),
        4 => (4, 4, Combine::Vote, Link::Identity, false),
        5 => (1, 0, Combine::Mean, Link::Identity, false),
        _ => (2, 0, Combine::Sum, Link::Identity, false),
    };
    let trees = (0..n_trees)
        .map(|t| {
            let (width, output) = if per_class {
                (1, (t % k) as u32)
            } else {
                (k, Tree::ALL_OUTPUTS)
            };
            tree(rng, p, 40, width, output, th)
        })
        .collect::<Vec<_>>();
    let base = if combine == Combine::Sum {
        (0..k).map(|i| i as f32 * 0.1 - 0.05).collect()
    } else {
        Vec::new()
    };
    TreeEnsemble {
        n_features: p as u32,
        n_outputs: k as u32,
        n_classes: c as u32,
        combine,
        link,
        base_score: base.into(),
        trees: trees.into(),
    }
}

fn rows(rng: &mut SplitMix, n: usize, p: usize, nan: f64) -> Vec<f32> {
    (0..n * p)
        .map(|_| {
            if rng.unit() < nan {
                f32::NAN
            } else if rng.unit() < 0.3 {
                grid(rng)
            } else {
                (rng.unit() as f32 - 0.5) * 3.0
            }
        })
        .collect()
}

fn opts(bits: u32, leaves: LeafFormat) -> Options {
    Options { bits, leaves }
}

/// Largest error of a stored leaf value `v` in `format`, for a tree and
/// column whose largest magnitude is `max`: half a step of the format,
/// plus (integers) the `f32` rounding of the scale and of the product.
fn leaf_bound(format: LeafFormat, v: f32, max: f32) -> f32 {
    let rounding = v.abs() * 2f32.powi(-22);
    match format {
        LeafFormat::F32 => 0.0,
        LeafFormat::F16 => v.abs() * 2f32.powi(-11) + 2f32.powi(-25),
        LeafFormat::I16 => max / 32767.0 * 0.5 + rounding,
        LeafFormat::I8 => max / 127.0 * 0.5 + rounding,
    }
}

/// Raw outputs by the engine.
fn engine_raw(ens: &TreeEnsemble, x: &[f32], threads: u32) -> Vec<f64> {
    let p = ens.n_features as usize;
    let ctx = NullContext { threads };
    let m = MatrixRef::new(x, x.len() / p, p).unwrap();
    Engine::new(ens).unwrap().raw(&ctx.as_ref(), m).unwrap()
}

fn model_raw(m: &QuantizedModel, x: &[f32], threads: u32) -> Vec<f64> {
    let p = m.n_features();
    let ctx = NullContext { threads };
    m.raw(&ctx.as_ref(), MatrixRef::new(x, x.len() / p, p).unwrap())
        .unwrap()
}

fn same_bits(a: &[f64], b: &[f64], what: &str) {
    assert_eq!(a.len(), b.len(), "{what}");
    for (i, (x, y)) in a.iter().zip(b).enumerate() {
        assert!(x.to_bits() == y.to_bits(), "{what}: value {i}: {x} vs {y}");
    }
}

#[test]
fn predictions_equal_the_dequantized_ensemble_through_the_engine() {
    let mut rng = SplitMix::new(11);
    for kind in 0..KINDS {
        for (bits, th) in [
            (8, Thresholds::Grid),
            (8, Thresholds::Anywhere),
            (16, Thresholds::Anywhere),
        ] {
            let ens = ensemble(&mut rng, kind, 30, 6, th);
            for format in LeafFormat::ALL {
                let q = QuantizedTrees::quantize(&ens, &opts(bits, format)).unwrap();
                let deq = q.dequantize();
                let path = [Inference::Bins, Inference::Engine][kind % 2];
                let m = QuantizedModel::with_inference(q, path).unwrap();
                for (n, nan) in [
                    (1, 0.0),
                    (7, 0.2),
                    (8, 0.0),
                    (300, 0.0),
                    (300, 0.05),
                    (5000, 0.01),
                ] {
                    let x = rows(&mut rng, n, 6, nan);
                    let what = format!("kind {kind}, {bits} bits, {}, {n} rows", format.name());
                    for threads in [1, 3] {
                        same_bits(&model_raw(&m, &x, threads), &engine_raw(&deq, &x, 1), &what);
                    }
                    // What a model answers too.
                    let ctx = NullContext::default();
                    let xm = MatrixRef::new(&x, n, 6).unwrap();
                    let ir = IrModel::new(deq.clone(), serde_json::Value::Null).unwrap();
                    assert_eq!(
                        m.predict(&ctx.as_ref(), xm).unwrap(),
                        ir.predict(&ctx.as_ref(), xm).unwrap(),
                        "{what}"
                    );
                    if ens.n_classes > 0 {
                        assert_eq!(
                            m.predict_proba(&ctx.as_ref(), xm).unwrap().data,
                            ir.predict_proba(&ctx.as_ref(), xm).unwrap().data,
                            "{what}"
                        );
                    } else {
                        assert!(m.predict_proba(&ctx.as_ref(), xm).is_err());
                    }
                }
            }
        }
    }
}

#[test]
fn f32_leaves_and_few_thresholds_predict_exactly_as_the_original() {
    let mut rng = SplitMix::new(5);
    for kind in 0..KINDS {
        let ens = ensemble(&mut rng, kind, 25, 5, Thresholds::Grid);
        let q = QuantizedTrees::quantize(&ens, &opts(8, LeafFormat::F32)).unwrap();
        assert_eq!(q.thresholds_moved(), 0);
        let m = QuantizedModel::with_inference(q, Inference::Bins).unwrap();
        let x = rows(&mut rng, 700, 5, 0.05);
        same_bits(
            &model_raw(&m, &x, 2),
            &engine_raw(&ens, &x, 1),
            &format!("kind {kind}"),
        );
    }
}

#[test]
fn few_distinct_thresholds_are_kept_exactly_and_leaves_within_bounds() {
    let mut rng = SplitMix::new(7);
    for kind in [0, 1, 2, 3, 5, 6] {
        let ens = ensemble(&mut rng, kind, 20, 4, Thresholds::Grid);
        for format in LeafFormat::ALL {
            let q = QuantizedTrees::quantize(&ens, &opts(8, format)).unwrap();
            assert_eq!(q.thresholds_moved(), 0);
            let deq = q.dequantize();
            for (t, (a, b)) in ens.trees.iter().zip(deq.trees.iter()).enumerate() {
                // Same shape in preorder: compare the walks of every node.
                let width = a.leaf_width(ens.n_outputs as usize);
                let max: Vec<f32> = (0..width)
                    .map(|c| {
                        a.values
                            .iter()
                            .skip(c)
                            .step_by(width)
                            .fold(0f32, |m, v| m.max(v.abs()))
                    })
                    .collect();
                let (pa, pb) = (preorder(a), preorder(b));
                assert_eq!(pa.len(), pb.len());
                for (na, nb) in pa.iter().zip(&pb) {
                    assert_eq!(na.is_leaf(), nb.is_leaf());
                    if !na.is_leaf() {
                        assert_eq!((na.feature, na.threshold), (nb.feature, nb.threshold));
                        assert_eq!(na.missing_left, nb.missing_left);
                        continue;
                    }
                    for (c, &max) in max.iter().enumerate() {
                        let v = a.values[na.value as usize + c];
                        let d = b.values[nb.value as usize + c];
                        let bound = leaf_bound(format, v, max);
                        assert!(
                            (v - d).abs() <= bound,
                            "kind {kind}, {}, tree {t}: {v} stored as {d}, bound {bound}",
                            format.name()
                        );
                    }
                }
            }
            // Raw scores within the sum of the bounds.
            let m = QuantizedModel::with_inference(q, Inference::Bins).unwrap();
            let x = rows(&mut rng, 200, 4, 0.1);
            let (got, want) = (model_raw(&m, &x, 1), engine_raw(&ens, &x, 1));
            let worst: f64 = ens
                .trees
                .iter()
                .map(|t| {
                    t.values
                        .iter()
                        .map(|&v| leaf_bound(format, v, 1.5 * 1.0001) as f64)
                        .fold(0.0, f64::max)
                })
                .sum();
            for (g, w) in got.iter().zip(&want) {
                assert!(
                    (g - w).abs() <= worst + 1e-12,
                    "{}: {g} vs {w}",
                    format.name()
                );
            }
        }
    }
}

/// The nodes of `t` in preorder from its root.
fn preorder(t: &Tree) -> Vec<TreeNode> {
    let mut out = Vec::new();
    let mut stack = vec![0usize];
    while let Some(i) = stack.pop() {
        let n = t.nodes[i];
        out.push(n);
        if !n.is_leaf() {
            stack.push(n.right as usize);
            stack.push(n.left as usize);
        }
    }
    out
}

#[test]
fn many_thresholds_are_snapped_to_at_most_255_edges() {
    let mut rng = SplitMix::new(3);
    let ens = ensemble(&mut rng, 0, 400, 3, Thresholds::Anywhere);
    let q = QuantizedTrees::quantize(&ens, &opts(8, LeafFormat::F32)).unwrap();
    assert!(
        q.edges.iter().all(|e| e.len() == 255),
        "more than 255 distinct per feature"
    );
    assert!(q.thresholds_moved() > 0);
    let d = q.describe();
    assert_eq!(d["edges_per_feature"]["max"], 255);
    assert_eq!(d["thresholds_moved"], q.thresholds_moved());
    // Each moved threshold went to its nearest edge.
    let deq = q.dequantize();
    for (a, b) in ens.trees.iter().zip(deq.trees.iter()) {
        for (na, nb) in preorder(a).iter().zip(&preorder(b)) {
            if na.is_leaf() {
                continue;
            }
            let e = &q.edges[na.feature as usize];
            let best = e
                .iter()
                .map(|&x| (x - na.threshold).abs())
                .fold(f32::INFINITY, f32::min);
            assert_eq!((nb.threshold - na.threshold).abs(), best);
        }
    }
    // Sixteen bits keep them all.
    let q = QuantizedTrees::quantize(&ens, &opts(16, LeafFormat::F32)).unwrap();
    assert_eq!(q.thresholds_moved(), 0);
    let x = rows(&mut rng, 500, 3, 0.1);
    same_bits(
        &model_raw(
            &QuantizedModel::with_inference(q, Inference::Bins).unwrap(),
            &x,
            1,
        ),
        &engine_raw(&ens, &x, 1),
        "16 bits",
    );
}

#[test]
fn single_rows_agree_with_batches() {
    let mut rng = SplitMix::new(9);
    for kind in 0..KINDS {
        for bits in [8, 16] {
            // 300 features take the 8-byte nodes even with 8 bits.
            for p in [5, 300] {
                let ens = ensemble(&mut rng, kind, 21, p, Thresholds::Anywhere);
                let q = QuantizedTrees::quantize(&ens, &opts(bits, LeafFormat::F16)).unwrap();
                let m = QuantizedModel::with_inference(q, Inference::Bins).unwrap();
                let narrow = bits == 8 && p <= 256;
                assert_eq!(
                    m.describe()["inference"],
                    if narrow { "bins_4" } else { "bins_8" }
                );
                let x = rows(&mut rng, 100, p, 0.02);
                let batch = model_raw(&m, &x, 2);
                let k = ens.n_outputs as usize;
                for (row, want) in x.chunks_exact(p).zip(batch.chunks_exact(k)) {
                    let mut got = vec![0.0; k];
                    m.raw_row(row, &mut got).unwrap();
                    same_bits(
                        &got,
                        want,
                        &format!("kind {kind}, {bits} bits, {p} features"),
                    );
                }
            }
        }
    }
}

#[test]
fn deep_trees_walk_to_their_leaves() {
    // A chain 40 deep (past the fixed-depth walks) beside a stump.
    let mut nodes = Vec::new();
    let mut values = Vec::new();
    for d in 0..40u32 {
        nodes.push(TreeNode {
            feature: d % 3,
            threshold: (d as f32) * 0.05 - 1.0,
            left: 2 * d + 1,
            right: 2 * d + 2,
            value: 0,
            missing_left: (d % 2) as u8,
        });
        nodes.push(TreeNode::leaf(values.len() as u32));
        values.push(d as f32);
    }
    // Node 2 * 39 + 2 = 80 is the last leaf; the chain goes right.
    for (i, n) in nodes.iter_mut().enumerate() {
        if !n.is_leaf() {
            n.right = i as u32 + 2;
        }
    }
    nodes.push(TreeNode::leaf(values.len() as u32));
    values.push(100.0);
    let chain = Tree {
        nodes: nodes.into(),
        values: values.into(),
        output: Tree::ALL_OUTPUTS,
    };
    let mut rng = SplitMix::new(1);
    let stump = tree(&mut rng, 3, 2, 1, Tree::ALL_OUTPUTS, Thresholds::Grid);
    let ens = TreeEnsemble {
        n_features: 3,
        n_outputs: 1,
        n_classes: 0,
        combine: Combine::Sum,
        link: Link::Identity,
        base_score: Vec::new().into(),
        trees: vec![chain, stump].into(),
    };
    let q = QuantizedTrees::quantize(&ens, &opts(8, LeafFormat::F32)).unwrap();
    let m = QuantizedModel::with_inference(q, Inference::Bins).unwrap();
    let x = rows(&mut rng, 2000, 3, 0.05);
    let x: Vec<f32> = x.iter().map(|v| v * 0.8).collect();
    same_bits(&model_raw(&m, &x, 1), &engine_raw(&ens, &x, 1), "deep");
    let mut one = [0.0];
    m.raw_row(&[2.0, 2.0, 2.0], &mut one).unwrap();
    assert_eq!(
        one[0],
        100.0 + engine_raw(&ens, &[2.0, 2.0, 2.0], 1)[0] - 100.0
    );
}

fn sample() -> QuantizedTrees {
    let mut rng = SplitMix::new(2);
    let ens = ensemble(&mut rng, 2, 12, 4, Thresholds::Anywhere);
    QuantizedTrees::quantize(&ens, &opts(8, LeafFormat::I8)).unwrap()
}

#[test]
fn bytes_round_trip_for_every_kind_and_format() {
    let mut rng = SplitMix::new(4);
    for kind in 0..KINDS {
        for bits in [8, 16] {
            let ens = ensemble(&mut rng, kind, 10, 4, Thresholds::Anywhere);
            for format in LeafFormat::ALL {
                let q = QuantizedTrees::quantize(&ens, &opts(bits, format)).unwrap();
                let bytes = q.to_bytes().unwrap();
                assert!(bytes.starts_with(MAGIC));
                let back = QuantizedTrees::from_bytes(&bytes).unwrap();
                assert_eq!(back, q);
                assert_eq!(back.to_bytes().unwrap(), bytes);
                assert_eq!(q.describe()["bytes"], bytes.len());
                // And through the model's own bytes and the loader.
                let m = QuantizedModel::new(q).unwrap();
                let ctx = NullContext::default();
                let loaded = load(&m.to_bytes().unwrap(), &ctx.as_ref()).unwrap();
                assert_eq!(loaded.describe(), m.describe());
            }
        }
    }
}

#[test]
fn every_truncation_and_damage_is_refused() {
    let bytes = sample().to_bytes().unwrap();
    for cut in 0..bytes.len() {
        assert!(
            QuantizedTrees::from_bytes(&bytes[..cut]).is_err(),
            "cut at {cut}"
        );
    }
    let mut more = bytes.clone();
    more.push(0);
    let e = QuantizedTrees::from_bytes(&more).unwrap_err();
    assert!(e.message.contains("unexpected bytes"), "{}", e.message);
    let mut bad = bytes.clone();
    bad[0] = b'X';
    let e = QuantizedTrees::from_bytes(&bad).unwrap_err();
    assert!(e.message.contains("bad magic"), "{}", e.message);
    assert_eq!(e.kind, tessera_core::ErrorKind::CORRUPT_MODEL);
    let mut bad = bytes.clone();
    bad[4] = 2;
    let e = QuantizedTrees::from_bytes(&bad).unwrap_err();
    assert!(e.message.contains("version 2"), "{}", e.message);
    let mut bad = bytes.clone();
    bad[22] = 3;
    let e = QuantizedTrees::from_bytes(&bad).unwrap_err();
    assert!(e.message.contains("`bits` is 3"), "{}", e.message);
    // No byte flip may panic; most are caught.
    let mut refused = 0;
    for i in 0..bytes.len() {
        for flip in [0x01u8, 0x80, 0xff] {
            let mut bad = bytes.clone();
            bad[i] ^= flip;
            refused += usize::from(QuantizedTrees::from_bytes(&bad).is_err());
        }
    }
    assert!(
        refused > bytes.len(),
        "{refused} of {} flips refused",
        3 * bytes.len()
    );
}

#[test]
fn out_of_range_fields_are_named() {
    let q = sample();
    // A bin past its feature's edges.
    let mut bad = q.clone();
    let e0 = bad.edges[0].len() as u32;
    for t in &mut bad.trees {
        for n in &mut t.nodes {
            if let quantize::QNode::Split {
                feature: 0, bin, ..
            } = n
            {
                *bin = e0;
            }
        }
    }
    let e = QuantizedTrees::from_bytes(&bad.to_bytes().unwrap()).unwrap_err();
    assert!(e.message.contains("which has"), "{}", e.message);
    // A tree for an output the model does not have.
    let mut bad = q.clone();
    bad.trees[3].output = 9;
    let e = QuantizedTrees::from_bytes(&bad.to_bytes().unwrap()).unwrap_err();
    assert!(
        e.message.contains("tree 3 adds to output 9"),
        "{}",
        e.message
    );
    // Edges out of order.
    let mut bad = q;
    bad.edges[1].swap(0, 1);
    let e = QuantizedTrees::from_bytes(&bad.to_bytes().unwrap()).unwrap_err();
    assert!(
        e.message.contains("feature 1's edges do not ascend"),
        "{}",
        e.message
    );
}

#[test]
fn bad_options_and_unstorable_leaves_are_refused() {
    let mut rng = SplitMix::new(6);
    let ens = ensemble(&mut rng, 0, 3, 3, Thresholds::Grid);
    let e = QuantizedTrees::quantize(&ens, &opts(3, LeafFormat::F16)).unwrap_err();
    assert_eq!(e.message.as_str(), "`bits` must be 8 or 16, got 3");
    let mut big = ens.clone();
    big.trees[1].values[0] = 1e6;
    let e = QuantizedTrees::quantize(&big, &opts(8, LeafFormat::F16)).unwrap_err();
    assert!(
        e.message.contains("tree 1") && e.message.contains("f16"),
        "{}",
        e.message
    );
    assert!(QuantizedTrees::quantize(&big, &opts(8, LeafFormat::I16)).is_ok());
    big.trees[2].values[0] = f32::INFINITY;
    let e = QuantizedTrees::quantize(&big, &opts(8, LeafFormat::I8)).unwrap_err();
    assert!(
        e.message.contains("tree 2") && e.message.contains("i8"),
        "{}",
        e.message
    );
    let mut wide = ens.clone();
    wide.n_features = MAX_FEATURES + 1;
    let e = QuantizedTrees::quantize(&wide, &opts(8, LeafFormat::F32)).unwrap_err();
    assert!(e.message.contains("features"), "{}", e.message);
    // A malformed tree is the caller's input error.
    let mut cyc = ens.clone();
    cyc.trees[0].nodes[0].left = 0;
    let e = QuantizedTrees::quantize(&cyc, &opts(8, LeafFormat::F32)).unwrap_err();
    assert!(e.message.contains("reached twice"), "{}", e.message);
}

#[test]
fn half_leaves_round_to_nearest() {
    // The stored value is the nearest half, ties to even.
    let v = 1.0 + 2f32.powi(-11);
    assert_eq!(f16_to_f32(f32_to_f16(v)), 1.0);
    let v = 1.0 + 3.0 * 2f32.powi(-11);
    assert_eq!(f16_to_f32(f32_to_f16(v)), 1.0 + 2.0 * 2f32.powi(-10));
}

#[test]
fn describe_names_the_quantization() {
    let q = sample();
    let d = q.describe();
    assert_eq!(d["model"], FAMILY);
    assert_eq!(d["bits"], 8);
    assert_eq!(d["leaves"], "i8");
    assert_eq!(d["trees"], 12);
    let m = QuantizedModel::with_inference(q, Inference::Bins).unwrap();
    let d = m.describe();
    assert_eq!(d["task"], "classification");
    assert_eq!(d["inference"], "bins_4");
    match m.to_ir() {
        Some(tessera_core::ir::ModelIr::Trees(t)) => assert_eq!(t, m.trees().dequantize()),
        other => panic!("not trees: {other:?}"),
    }
}

#[test]
fn small_trees_go_to_the_engine_and_large_ones_walk_bins() {
    let mut rng = SplitMix::new(8);
    // Stumps to 8 leaves: scanned by the engine.
    let mut small = ensemble(&mut rng, 1, 50, 6, Thresholds::Anywhere);
    for t in small.trees.iter_mut() {
        *t = tree(&mut rng, 6, 8, 1, Tree::ALL_OUTPUTS, Thresholds::Anywhere);
    }
    let q = QuantizedTrees::quantize(&small, &opts(8, LeafFormat::I16)).unwrap();
    assert_eq!(
        QuantizedModel::new(q).unwrap().describe()["inference"],
        "engine"
    );
    // Trees of hundreds of leaves: walked.
    let mut large = small.clone();
    for t in large.trees.iter_mut() {
        *t = tree(&mut rng, 6, 800, 1, Tree::ALL_OUTPUTS, Thresholds::Anywhere);
        while t.nodes.len() < 200 {
            *t = tree(&mut rng, 6, 800, 1, Tree::ALL_OUTPUTS, Thresholds::Anywhere);
        }
    }
    let q = QuantizedTrees::quantize(&large, &opts(8, LeafFormat::I16)).unwrap();
    assert_eq!(
        QuantizedModel::new(q).unwrap().describe()["inference"],
        "bins_4"
    );
}
