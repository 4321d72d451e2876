use tessera_core::{
    ErrorKind, NullContext,
    abi_stable::std_types::RVec,
    plugin::{ModelImpl, seeds::SplitMix},
};

use super::*;
use crate::{FAMILY, QuantizedModel, load};

fn uniform(rng: &mut SplitMix, n: usize, scale: f32) -> RVec<f32> {
    (0..n)
        .map(|_| (rng.unit() as f32 * 2.0 - 1.0) * scale)
        .collect()
}

/// A network of `widths` with Glorot-like weights, `hidden` between
/// layers and `last` at the end, standardizing its inputs and filling
/// missing ones.
fn network(widths: &[usize], hidden: Activation, last: Activation, seed: u64) -> DenseNetwork {
    let mut rng = SplitMix::new(seed);
    let n = widths.len() - 1;
    let layers = (0..n)
        .map(|i| {
            let (k, o) = (widths[i], widths[i + 1]);
            let bound = (6.0 / (k + o) as f32).sqrt();
            DenseLayer {
                inputs: k as u32,
                outputs: o as u32,
                weights: uniform(&mut rng, k * o, bound),
                bias: uniform(&mut rng, o, 0.3),
                activation: if i + 1 == n { last } else { hidden },
            }
        })
        .collect();
    let p = widths[0];
    let n_classes = match last {
        Activation::Softmax => widths[n] as u32,
        Activation::Logistic => 2,
        _ => 0,
    };
    DenseNetwork {
        input_mean: uniform(&mut rng, p, 2.0),
        input_scale: (0..p).map(|j| 0.5 + j as f32 * 0.1).collect(),
        input_fill: uniform(&mut rng, p, 1.0),
        layers,
        n_classes,
    }
}

/// Raw rows around the network's input means.
fn rows(net: &DenseNetwork, n: usize, seed: u64) -> Vec<f32> {
    let mut rng = SplitMix::new(seed);
    let p = net.n_features();
    (0..n * p)
        .map(|i| {
            let j = i % p;
            net.input_mean[j] + (rng.unit() as f32 * 2.0 - 1.0) * 2.0 / net.input_scale[j]
        })
        .collect()
}

/// The `f32` network's outputs, in `f64`, by the book.
fn reference(net: &DenseNetwork, x: &[f32]) -> Vec<Vec<f64>> {
    let p = net.n_features();
    x.chunks_exact(p)
        .map(|row| {
            let mut v: Vec<f64> = row
                .iter()
                .enumerate()
                .map(|(j, &x)| {
                    let x = if x.is_finite() { x } else { net.input_fill[j] };
                    f64::from((x - net.input_mean[j]) * net.input_scale[j])
                })
                .collect();
            for l in net.layers.iter() {
                let k = l.inputs as usize;
                let mut z: Vec<f64> = (l.weights.chunks_exact(k).zip(l.bias.iter()))
                    .map(|(w, &b)| {
                        f64::from(b)
                            + w.iter()
                                .zip(&v)
                                .map(|(w, x)| f64::from(*w) * x)
                                .sum::<f64>()
                    })
                    .collect();
                match l.activation {
                    Activation::Relu => z.iter_mut().for_each(|v| *v = v.max(0.0)),
                    Activation::Tanh => z.iter_mut().for_each(|v| *v = v.tanh()),
                    Activation::Logistic => {
                        z.iter_mut().for_each(|v| *v = 1.0 / (1.0 + (-*v).exp()))
                    }
                    Activation::Softmax => {
                        let m = z.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                        let s: f64 = z.iter().map(|v| (v - m).exp()).sum();
                        z.iter_mut().for_each(|v| *v = (*v - m).exp() / s);
                    }
                    Activation::Identity => {}
                }
                v = z;
            }
            v
        })
        .collect()
}

fn matrix(x: &[f32], p: usize) -> MatrixRef<'_> {
    MatrixRef::new(x, x.len() / p, p).unwrap()
}

fn opts(bits: u32) -> Options {
    Options { bits }
}

/// How far the model's outputs are from the reference's: the largest
/// and the mean absolute difference, and the share of rows whose arg-max
/// agrees.
fn compare(model: &QuantizedModel, net: &DenseNetwork, x: &[f32]) -> (f64, f64, f64) {
    let ctx = NullContext::default();
    let p = net.n_features();
    let got = model.outputs(&ctx.as_ref(), matrix(x, p), true).unwrap();
    let want = reference(net, x);
    let k = net.n_outputs();
    let (mut worst, mut sum) = (0.0f64, 0.0f64);
    let mut agree = 0;
    for (g, w) in got.chunks_exact(k).zip(&want) {
        for (a, b) in g.iter().zip(w) {
            let d = (f64::from(*a) - b).abs();
            worst = worst.max(d);
            sum += d;
        }
        let wf: Vec<f32> = w.iter().map(|&v| v as f32).collect();
        agree += usize::from(crate::math::argmax(g) == crate::math::argmax(&wf));
    }
    let n = want.len() as f64;
    (worst, sum / (n * k as f64), agree as f64 / n)
}

#[test]
fn quantized_predictions_stay_close_to_the_float_network() {
    let net = network(&[12, 40, 24, 5], Activation::Relu, Activation::Softmax, 1);
    let calib = rows(&net, 1000, 2);
    let test = rows(&net, 2000, 3);
    // (bits, calibrated, largest probability error, least agreement)
    for (bits, calibrated, tol, agree) in [
        (8, true, 0.04, 0.98),
        (8, false, 0.02, 0.98),
        (16, true, 1e-3, 0.999),
        (16, false, 1e-3, 0.999),
    ] {
        let c = calibrated.then(|| matrix(&calib, 12));
        let q = QuantizedNetwork::quantize(&net, &opts(bits), c).unwrap();
        let m = QuantizedModel::new(q).unwrap();
        let (worst, _, share) = compare(&m, &net, &test);
        assert!(
            worst < tol,
            "bits {bits} calibrated {calibrated}: error {worst}"
        );
        assert!(
            share >= agree,
            "bits {bits} calibrated {calibrated}: agreement {share}"
        );
    }
}

#[test]
fn other_activations_and_tasks_run_too() {
    let cases = [
        (Activation::Tanh, Activation::Softmax),
        (Activation::Logistic, Activation::Logistic),
        (Activation::Identity, Activation::Identity),
        (Activation::Relu, Activation::Identity),
    ];
    for (i, (hidden, last)) in cases.into_iter().enumerate() {
        let widths: &[usize] = if last == Activation::Softmax {
            &[7, 33, 3]
        } else {
            &[9, 17, 16, 1]
        };
        let net = network(widths, hidden, last, 10 + i as u64);
        let calib = rows(&net, 500, 20);
        let test = rows(&net, 300, 30);
        for calibrated in [true, false] {
            let c = calibrated.then(|| matrix(&calib, widths[0]));
            let q = QuantizedNetwork::quantize(&net, &opts(8), c).unwrap();
            let m = QuantizedModel::new(q).unwrap();
            let (worst, mean, _) = compare(&m, &net, &test);
            // Outputs of unit size (probabilities, or regression values
            // up to about 4). Static scales clip a test row's activation
            // past what the calibration rows showed, so the worst row may
            // be off more than the typical one.
            let at = format!("{hidden:?} -> {last:?} calibrated {calibrated}");
            assert!(mean < 0.03, "{at}: mean error {mean}");
            assert!(worst < 0.2, "{at}: worst error {worst}");
        }
    }
}

#[test]
fn predictions_are_classes_and_probabilities_like_the_mlp_models() {
    let ctx = NullContext::default();
    let net = network(&[6, 20, 4], Activation::Relu, Activation::Softmax, 7);
    let x = rows(&net, 50, 8);
    let q = QuantizedNetwork::quantize(&net, &opts(8), Some(matrix(&x, 6))).unwrap();
    let m = QuantizedModel::new(q).unwrap();
    assert_eq!(m.task(), tessera_core::Task::classification(4));
    assert_eq!(m.n_features(), 6);
    let proba = m.predict_proba(&ctx.as_ref(), matrix(&x, 6)).unwrap();
    assert_eq!((proba.rows, proba.cols), (50, 4));
    let classes = m.predict(&ctx.as_ref(), matrix(&x, 6)).unwrap();
    for (c, p) in classes.iter().zip(proba.data.chunks_exact(4)) {
        assert!((p.iter().sum::<f32>() - 1.0).abs() < 1e-5);
        assert_eq!(*c as usize, crate::math::argmax(p));
    }
    // Binary: one logistic output, two probability columns.
    let net = network(&[6, 20, 1], Activation::Relu, Activation::Logistic, 7);
    let q = QuantizedNetwork::quantize(&net, &opts(8), Some(matrix(&x, 6))).unwrap();
    let m = QuantizedModel::new(q).unwrap();
    let proba = m.predict_proba(&ctx.as_ref(), matrix(&x, 6)).unwrap();
    let classes = m.predict(&ctx.as_ref(), matrix(&x, 6)).unwrap();
    for (c, p) in classes.iter().zip(proba.data.chunks_exact(2)) {
        assert_eq!(*c, if p[1] > 0.5 { 1.0 } else { 0.0 });
    }
    let d = m.describe();
    assert_eq!(d["model"], FAMILY);
    assert_eq!(d["bits"], 8);
    assert_eq!(d["calibration"]["mode"], "static");
    assert_eq!(d["calibration"]["rows"], 50);
    assert_eq!(d["layers"][0]["input_range"], json!([-127, 127]));
    assert_eq!(d["layers"][1]["input_range"], json!([0, 255]));
    assert_eq!(d["bytes"], m.to_bytes().unwrap().len());
    // Regression refuses probabilities.
    let net = network(&[6, 20, 2], Activation::Relu, Activation::Identity, 7);
    let m = QuantizedModel::new(QuantizedNetwork::quantize(&net, &opts(8), None).unwrap()).unwrap();
    assert_eq!(m.task(), tessera_core::Task::regression_targets(2));
    assert_eq!(m.predict(&ctx.as_ref(), matrix(&x, 6)).unwrap().len(), 100);
    let e = m.predict_proba(&ctx.as_ref(), matrix(&x, 6)).unwrap_err();
    assert_eq!(e.kind, ErrorKind::UNSUPPORTED);
}

#[test]
fn dequantized_weights_are_within_half_a_step() {
    let net = network(&[10, 30, 3], Activation::Relu, Activation::Softmax, 4);
    let x = rows(&net, 100, 5);
    for bits in [8, 16] {
        let q = QuantizedNetwork::quantize(&net, &opts(bits), Some(matrix(&x, 10))).unwrap();
        let back = q.dequantize();
        back.check().unwrap();
        for ((l, b), ql) in net.layers.iter().zip(back.layers.iter()).zip(&q.layers) {
            let k = l.inputs as usize;
            for (o, (w, wb)) in l
                .weights
                .chunks_exact(k)
                .zip(b.weights.chunks_exact(k))
                .enumerate()
            {
                let s = ql.w_scale[o];
                for (a, b) in w.iter().zip(wb) {
                    assert!(
                        (a - b).abs() <= s / 2.0 * 1.0001,
                        "bits {bits}: {a} -> {b}, step {s}"
                    );
                }
            }
            // Integer biases come back within half an accumulator unit.
            for (o, (a, b)) in l.bias.iter().zip(b.bias.iter()).enumerate() {
                let unit = ql.in_scale * ql.w_scale[o];
                assert!(
                    (a - b).abs() <= unit / 2.0 * 1.001 + 1e-7,
                    "bias {a} -> {b}"
                );
            }
        }
        assert_eq!(back.input_mean, net.input_mean);
        assert_eq!(back.n_classes, net.n_classes);
    }
}

#[test]
fn bytes_round_trip_and_predict_the_same() {
    let ctx = NullContext::default();
    let net = network(&[11, 19, 8, 3], Activation::Tanh, Activation::Softmax, 9);
    let x = rows(&net, 200, 6);
    for bits in [8, 16] {
        for calibrated in [true, false] {
            let c = calibrated.then(|| matrix(&x, 11));
            let q = QuantizedNetwork::quantize(&net, &opts(bits), c).unwrap();
            let bytes = q.to_bytes().unwrap();
            assert_eq!(&bytes[..4], b"TSQN");
            let back = QuantizedNetwork::from_bytes(&bytes).unwrap();
            assert_eq!(back, q);
            let m = QuantizedModel::new(q).unwrap();
            let l = load(&bytes, &ctx.as_ref()).unwrap();
            assert_eq!(l.to_bytes().unwrap(), bytes);
            assert_eq!(
                l.predict_proba(&ctx.as_ref(), matrix(&x, 11)).unwrap(),
                m.predict_proba(&ctx.as_ref(), matrix(&x, 11)).unwrap()
            );
            let Some(tessera_core::ir::ModelIr::Network(ir)) = l.to_ir() else {
                panic!("a network's exchange form")
            };
            assert_eq!(ir, m.network().dequantize());
        }
    }
}

#[test]
fn truncated_or_damaged_bytes_are_refused() {
    let net = network(&[5, 7, 3], Activation::Relu, Activation::Softmax, 2);
    let x = rows(&net, 20, 3);
    for (bits, c) in [(8, Some(matrix(&x, 5))), (16, None)] {
        let bytes = QuantizedNetwork::quantize(&net, &opts(bits), c)
            .unwrap()
            .to_bytes()
            .unwrap();
        for cut in 0..bytes.len() {
            let e = QuantizedNetwork::from_bytes(&bytes[..cut]).unwrap_err();
            assert_eq!(e.kind, ErrorKind::CORRUPT_MODEL, "cut {cut}");
        }
        let mut more = bytes.clone();
        more.push(0);
        assert!(QuantizedNetwork::from_bytes(&more).is_err());
        let mut bad = bytes.clone();
        bad[0] = b'X';
        let e = QuantizedNetwork::from_bytes(&bad).unwrap_err();
        assert!(e.message.contains("bad magic"), "{}", e.message);
        // Every single byte flipped gives an error or a network that
        // checks out, never a panic.
        for i in 0..bytes.len() {
            let mut b = bytes.clone();
            b[i] ^= 0xA5;
            if let Ok(q) = QuantizedNetwork::from_bytes(&b) {
                QuantizedModel::new(q).map(drop).ok();
            }
        }
    }
    // A weight of -128 (outside the symmetric range) is refused.
    let q = QuantizedNetwork::quantize(&net, &opts(8), None).unwrap();
    let mut bytes = q.to_bytes().unwrap();
    let header = 4 + 4 + 1 + 1 + 4 + 4 + 3 * (4 + 5 * 4) + 4 + 21;
    let first_weight = header + 7 * 4;
    bytes[first_weight] = 0x80;
    let e = QuantizedNetwork::from_bytes(&bytes).unwrap_err();
    assert!(e.message.contains("outside"), "{}", e.message);
}

#[test]
fn bad_options_and_inputs_are_named() {
    let net = network(&[4, 6, 2], Activation::Relu, Activation::Softmax, 1);
    let e = QuantizedNetwork::quantize(&net, &opts(3), None).unwrap_err();
    assert_eq!(e.kind, ErrorKind::INVALID_INPUT);
    assert_eq!(e.message, "`bits` must be 8 or 16, got 3");
    let x = vec![0.0; 10];
    let e = QuantizedNetwork::quantize(&net, &opts(8), Some(matrix(&x, 5))).unwrap_err();
    assert!(e.message.contains("calibration rows"), "{}", e.message);
    let e = QuantizedNetwork::quantize(&net, &opts(8), Some(MatrixRef::new(&[], 0, 4).unwrap()))
        .unwrap_err();
    assert!(e.message.contains("none given"), "{}", e.message);
    let mut broken = net.clone();
    broken.layers[1].inputs = 5;
    assert!(QuantizedNetwork::quantize(&broken, &opts(8), None).is_err());

    // Missing values: filled when the network has fill values, else
    // refused, naming the row and column.
    let ctx = NullContext::default();
    let mut x = rows(&net, 3, 1);
    x[6] = f32::NAN;
    let m = QuantizedModel::new(
        QuantizedNetwork::quantize(&net, &opts(8), Some(matrix(&x, 4))).unwrap(),
    )
    .unwrap();
    let mut filled = x.clone();
    filled[6] = net.input_fill[2];
    assert_eq!(
        m.predict_proba(&ctx.as_ref(), matrix(&x, 4)).unwrap(),
        m.predict_proba(&ctx.as_ref(), matrix(&filled, 4)).unwrap()
    );
    let mut nofill = net.clone();
    nofill.input_fill = RVec::new();
    let e = QuantizedNetwork::quantize(&nofill, &opts(8), Some(matrix(&x, 4))).unwrap_err();
    assert!(
        e.message.contains("row 1") && e.message.contains("column 2"),
        "{}",
        e.message
    );
    let m =
        QuantizedModel::new(QuantizedNetwork::quantize(&nofill, &opts(8), None).unwrap()).unwrap();
    let e = m.predict(&ctx.as_ref(), matrix(&x, 4)).unwrap_err();
    assert!(
        e.message.contains("row 1") && e.message.contains("column 2"),
        "{}",
        e.message
    );
    let e = m.predict(&ctx.as_ref(), matrix(&x, 3)).unwrap_err();
    assert_eq!(e.kind, ErrorKind::INVALID_INPUT);
}

#[test]
fn thread_budgets_give_the_same_predictions() {
    let net = network(&[8, 24, 3], Activation::Relu, Activation::Softmax, 3);
    let x = rows(&net, 3000, 4);
    let q = QuantizedNetwork::quantize(&net, &opts(8), Some(matrix(&x, 8))).unwrap();
    let m = QuantizedModel::new(q).unwrap();
    let one = NullContext { threads: 1 };
    let two = NullContext { threads: 2 };
    let a = m.predict_proba(&one.as_ref(), matrix(&x, 8)).unwrap();
    let b = m.predict_proba(&two.as_ref(), matrix(&x, 8)).unwrap();
    assert_eq!(a, b);
    // A row predicts the same alone as in a block.
    let single = m
        .predict_proba(&one.as_ref(), matrix(&x[8 * 777..8 * 778], 8))
        .unwrap();
    assert_eq!(single.data[..], a.data[777 * 3..778 * 3]);
}

#[test]
fn classifiers_need_matching_outputs() {
    let mut net = network(&[4, 6, 3], Activation::Relu, Activation::Softmax, 1);
    net.n_classes = 5;
    let q = QuantizedNetwork::quantize(&net, &opts(8), None).unwrap();
    let e = QuantizedModel::new(q).unwrap_err();
    assert!(
        e.message.contains("3 outputs for 5 classes"),
        "{}",
        e.message
    );
}
