//! Tests of fine-tuning and of `init_network` training.

use tessera_core::NullContext;

use super::*;

/// Two interleaved half-moons' worth of points: a class boundary a
/// small network learns only partly in a few epochs.
fn problem(n: usize, seed: u64) -> (Vec<f32>, Vec<f32>) {
    let mut rng = SplitMix::new(seed);
    let mut x = Vec::with_capacity(n * 3);
    let mut y = Vec::with_capacity(n);
    for _ in 0..n {
        let a = (rng.unit() * 4.0 - 2.0) as f32;
        let b = (rng.unit() * 4.0 - 2.0) as f32;
        let c = (rng.unit() * 10.0) as f32;
        x.extend([a, b, c]);
        let z = a * b + 0.5 * a.sin() + 0.05 * c;
        y.push(if z > 0.5 {
            2.0
        } else if z > -0.5 {
            1.0
        } else {
            0.0
        });
    }
    (x, y)
}

fn network(seed: u64) -> DenseNetwork {
    let mut rng = SplitMix::new(seed);
    let net = Net::init(
        vec![3, 16, 8, 3],
        Activation::Relu,
        Activation::Softmax,
        &mut rng,
    );
    // The third feature spans [0, 10]: standardize it as a trained
    // model would, so that the scaling is exercised.
    net.to_ir(&[0.0, 0.0, 5.0], &[1.0, 1.0, 0.35], &[], 3)
}

fn opts(epochs: usize) -> FineTune {
    FineTune {
        epochs,
        learning_rate_init: 0.01,
        batch_size: 32,
        random_state: 7,
    }
}

#[test]
fn fine_tuning_lowers_the_training_loss() {
    let (x, y) = problem(400, 3);
    let m = MatrixRef::new(&x, 400, 3).unwrap();
    let net = network(1);
    let ctx = NullContext::default();
    let before = mean_loss(&net, m, &y, None).unwrap();
    let (tuned, curve) = fine_tune(&net, None, m, &y, None, &opts(20), &ctx.as_ref()).unwrap();
    tuned.check().unwrap();
    let after = mean_loss(&tuned, m, &y, None).unwrap();
    assert_eq!(curve.len(), 20);
    assert!(after < 0.7 * before, "loss {before} -> {after}");
    assert!(curve[19] < curve[0], "{curve:?}");
    // The input transformation is the network's, untouched.
    assert_eq!(tuned.input_mean, net.input_mean);
    assert_eq!(tuned.input_scale, net.input_scale);
    // Seeded: the same run gives the same network, whatever the
    // thread count.
    let four = NullContext { threads: 4 };
    let (again, _) = fine_tune(&net, None, m, &y, None, &opts(20), &four.as_ref()).unwrap();
    assert_eq!(again, tuned);
}

#[test]
fn masked_weights_stay_zero() {
    let (x, y) = problem(300, 5);
    let m = MatrixRef::new(&x, 300, 3).unwrap();
    let net = network(2);
    // About a third of the weights masked, at random.
    let mut rng = SplitMix::new(8);
    let mask: Vec<Vec<bool>> = net
        .layers
        .iter()
        .map(|layer| layer.weights.iter().map(|_| rng.unit() > 0.35).collect())
        .collect();
    let ctx = NullContext::default();
    let (tuned, curve) =
        fine_tune(&net, Some(&mask), m, &y, None, &opts(10), &ctx.as_ref()).unwrap();
    assert!(curve[9] < curve[0], "{curve:?}");
    let (mut kept, mut moved) = (0, 0);
    for (l, (a, b)) in tuned.layers.iter().zip(&net.layers).enumerate() {
        for (i, (&w, &keep)) in a.weights.iter().zip(&mask[l]).enumerate() {
            if keep {
                kept += 1;
                moved += usize::from(w != b.weights[i]);
            } else {
                assert_eq!(w, 0.0, "layer {l} weight {i} is masked");
            }
        }
    }
    // A ReLU unit that never fires keeps its incoming weights.
    assert!(
        moved * 10 > kept * 8,
        "{moved} of {kept} kept weights trained"
    );
}

#[test]
fn weights_regression_and_zero_epochs() {
    let (x, y) = problem(200, 9);
    let m = MatrixRef::new(&x, 200, 3).unwrap();
    let mut rng = SplitMix::new(4);
    let reg = Net::init(
        vec![3, 8, 2],
        Activation::Tanh,
        Activation::Identity,
        &mut rng,
    )
    .to_ir(&[], &[], &[], 0);
    // Two targets per row.
    let t: Vec<f32> = y.iter().flat_map(|&c| [c, 1.0 - c]).collect();
    let w: Vec<f32> = (0..200).map(|i| 0.5 + (i % 3) as f32).collect();
    let ctx = NullContext::default();
    let before = mean_loss(&reg, m, &t, Some(&w)).unwrap();
    let (tuned, _) = fine_tune(&reg, None, m, &t, Some(&w), &opts(15), &ctx.as_ref()).unwrap();
    let after = mean_loss(&tuned, m, &t, Some(&w)).unwrap();
    assert!(after < before, "loss {before} -> {after}");
    let (same, curve) = fine_tune(&reg, None, m, &t, None, &opts(0), &ctx.as_ref()).unwrap();
    assert_eq!(same, reg);
    assert!(curve.is_empty());
}

#[test]
fn bad_inputs_are_named() {
    let (x, y) = problem(50, 1);
    let m = MatrixRef::new(&x, 50, 3).unwrap();
    let net = network(1);
    let ctx = NullContext::default();
    let run = |mask: Option<&[Vec<bool>]>, y: &[f32], o: &FineTune| {
        fine_tune(&net, mask, m, y, None, o, &ctx.as_ref())
            .unwrap_err()
            .message
            .to_string()
    };
    let mut o = opts(1);
    o.learning_rate_init = -1.0;
    assert!(run(None, &y, &o).contains("`learning_rate_init` must be a positive number, got -1"));
    o = opts(1);
    o.batch_size = 0;
    assert!(run(None, &y, &o).contains("`batch_size` must be at least 1, got 0"));
    let mut bad = y.clone();
    bad[4] = 3.0;
    let e = run(None, &bad, &opts(1));
    assert!(e.contains("row 4 is 3, not a class index below 3"), "{e}");
    let e = run(None, &y[..10], &opts(1));
    assert!(e.contains("10 values for 50 rows"), "{e}");
    let e = run(Some(&[vec![true; 48]]), &y, &opts(1));
    assert!(e.contains("mask has 1 layers, the network 3"), "{e}");
    let short = vec![vec![true; 48], vec![true; 128], vec![true; 5]];
    let e = run(Some(&short), &y, &opts(1));
    assert!(e.contains("layer 2 has 5 entries for 3 x 8"), "{e}");
    let two = MatrixRef::new(&x[..100], 50, 2).unwrap();
    let e = fine_tune(&net, None, two, &y, None, &opts(1), &ctx.as_ref()).unwrap_err();
    assert!(
        e.message.contains("expected 3 feature columns"),
        "{}",
        e.message
    );
    let mut nan = x.clone();
    nan[7] = f32::NAN;
    let m = MatrixRef::new(&nan, 50, 3).unwrap();
    let e = fine_tune(&net, None, m, &y, None, &opts(1), &ctx.as_ref()).unwrap_err();
    assert!(e.message.contains("row 2"), "{}", e.message);
    let mut wrong = net.clone();
    wrong.n_classes = 0;
    let e = mean_loss(&wrong, MatrixRef::new(&x, 50, 3).unwrap(), &y, None).unwrap_err();
    assert!(e.message.contains("identity output layer"), "{}", e.message);
}

// The learner with `init_network`, through the plugin's own entry
// points (parameter parsing included).

fn learner_fit(
    params: &Value,
    x: &[f32],
    y: &[f32],
    weights: Option<&[f32]>,
    task: tessera_core::Task,
) -> Result<tessera_core::ModelBox, PluginError> {
    use tessera_core::abi_stable::std_types::{ROption, RSlice, RString};
    let rows = x.len() / 3;
    let names: Vec<RString> = (0..3).map(|j| format!("x{j}").into()).collect();
    let data = TrainData {
        x: MatrixRef::new(x, rows, 3).unwrap(),
        y: RSlice::from_slice(y),
        weights: weights.map(RSlice::from_slice).into(),
        feature_names: RSlice::from_slice(&names),
        task,
        valid: ROption::RNone,
    };
    let ctx = NullContext::default();
    let learner = crate::plugin().create_learner("mlp", &params.to_string())?;
    learner.fit(ctx.as_ref(), data).into_result()
}

fn tuned_ir(model: &tessera_core::ModelBox) -> DenseNetwork {
    match model.to_ir().into_option() {
        Some(tessera_core::ir::ModelIr::Network(n)) => n,
        other => panic!("not a dense network: {other:?}"),
    }
}

fn hex_of(net: &DenseNetwork) -> String {
    encode_hex(&net.to_bytes().unwrap())
}

#[test]
fn hex_round_trips_and_names_bad_digits() {
    let bytes: Vec<u8> = (0..=255).collect();
    let text = encode_hex(&bytes);
    assert_eq!(&text[..8], "00010203");
    assert_eq!(&text[text.len() - 4..], "feff");
    assert_eq!(decode_hex(&text).unwrap(), bytes);
    assert_eq!(decode_hex("ABcd").unwrap(), vec![0xab, 0xcd]);
    assert_eq!(decode_hex("").unwrap(), Vec::<u8>::new());
    assert_eq!(
        decode_hex("abc").unwrap_err(),
        "the hex text has an odd number of digits (3)"
    );
    assert_eq!(
        decode_hex("a0zz").unwrap_err(),
        "'z' at offset 2 is not a hex digit"
    );
    assert!(decode_hex("0é").unwrap_err().contains("'é' at offset 1"));
}

#[test]
fn init_network_continues_training_from_the_given_weights() {
    let (x, y) = problem(400, 3);
    let m = MatrixRef::new(&x, 400, 3).unwrap();
    let init = network(1);
    let w: Vec<f32> = (0..400).map(|i| 0.5 + (i % 4) as f32).collect();
    let params = serde_json::json!({
        "init_network": hex_of(&init),
        "max_iter": 5,
        "learning_rate_init": 0.01,
        "batch_size": 32,
        "random_state": 7,
        // Given, and the network's: accepted.
        "hidden_layer_sizes": [16, 8],
        "activation": "relu",
    });
    let task = tessera_core::Task::classification(3);
    let model = learner_fit(&params, &x, &y, Some(&w), task).unwrap();
    let tuned = tuned_ir(&model);
    // Shapes, activations and the input transformation are the
    // initial network's.
    assert_eq!(tuned.layers.len(), init.layers.len());
    for (a, b) in tuned.layers.iter().zip(&init.layers) {
        assert_eq!((a.inputs, a.outputs), (b.inputs, b.outputs));
        assert_eq!(a.activation, b.activation);
    }
    assert_eq!(tuned.input_mean, init.input_mean);
    assert_eq!(tuned.input_scale, init.input_scale);
    assert_eq!(tuned.n_classes, 3);
    let (before, after) = (
        mean_loss(&init, m, &y, Some(&w)).unwrap(),
        mean_loss(&tuned, m, &y, Some(&w)).unwrap(),
    );
    assert!(after < 0.9 * before, "loss {before} -> {after}");
    // Exactly the fine-tuning of the given weights, with the sample
    // weights: not a fresh network trained from scratch.
    let ctx = NullContext::default();
    let (direct, curve) = fine_tune(&init, None, m, &y, Some(&w), &opts(5), &ctx.as_ref()).unwrap();
    assert_eq!(tuned, direct);
    let summary = tessera_core::testkit::summary(&model);
    assert_eq!(summary["n_iter"], 5);
    assert_eq!(
        summary["learning_curve"]["train_loss"],
        serde_json::json!(curve)
    );
    // The summary names the network instead of repeating its bytes.
    let shown = summary["params"]["init_network"].as_str().unwrap();
    assert!(shown.starts_with("dense network [3, 16, 8, 3]"), "{shown}");
    // A tiny step leaves the weights where they were.
    let mut still = params.clone();
    still["learning_rate_init"] = serde_json::json!(1e-9);
    still["max_iter"] = serde_json::json!(1);
    let same = tuned_ir(&learner_fit(&still, &x, &y, None, task).unwrap());
    for (a, b) in same.layers.iter().zip(&init.layers) {
        for (p, q) in a.weights.iter().zip(b.weights.iter()) {
            assert!((p - q).abs() < 1e-5, "{p} vs {q}");
        }
    }
    // The result is an ordinary mlp model: its bytes load back.
    let bytes = tessera_core::testkit::bytes(&model);
    let back = crate::plugin().load_model("mlp", &bytes).unwrap();
    assert_eq!(tuned_ir(&back), tuned);
}

#[test]
fn keep_zeros_keeps_the_zero_weights_at_zero() {
    let (x, y) = problem(300, 5);
    let mut init = network(2);
    let mut rng = SplitMix::new(11);
    let mut zeroed = 0;
    for l in init.layers.iter_mut() {
        for w in l.weights.iter_mut() {
            if rng.unit() < 0.4 {
                *w = 0.0;
                zeroed += 1;
            }
        }
    }
    let task = tessera_core::Task::classification(3);
    let fit = |keep: bool| {
        let params = serde_json::json!({
            "init_network": hex_of(&init),
            "keep_zeros": keep,
            "max_iter": 4,
            "learning_rate_init": 0.01,
            "random_state": 3,
        });
        tuned_ir(&learner_fit(&params, &x, &y, None, task).unwrap())
    };
    let zeros_left = |net: &DenseNetwork| {
        net.layers
            .iter()
            .zip(&init.layers)
            .flat_map(|(a, b)| a.weights.iter().zip(b.weights.iter()))
            .filter(|(a, b)| **b == 0.0 && **a == 0.0)
            .count()
    };
    let kept = fit(true);
    assert_eq!(zeros_left(&kept), zeroed);
    // The kept weights trained.
    let moved = kept
        .layers
        .iter()
        .zip(&init.layers)
        .flat_map(|(a, b)| a.weights.iter().zip(b.weights.iter()))
        .filter(|(a, b)| **b != 0.0 && a != b)
        .count();
    assert!(moved > 0);
    // Without keep_zeros, the zeros train like any weight.
    let free = fit(false);
    assert!(
        zeros_left(&free) * 2 < zeroed,
        "{} of {zeroed}",
        zeros_left(&free)
    );
}

#[test]
fn bad_init_networks_and_contradicting_params_are_refused() {
    let (x, y) = problem(60, 2);
    let init = network(1);
    let hex = hex_of(&init);
    let task = tessera_core::Task::classification(3);
    let refuse = |params: Value| {
        let e = learner_fit(&params, &x, &y, None, task)
            .err()
            .expect("refused");
        assert_eq!(
            e.kind,
            tessera_core::ErrorKind::INVALID_PARAMS,
            "{}",
            e.message
        );
        e.message.to_string()
    };
    let not_network = encode_hex(b"not a network");
    let with_tail = format!("{hex}00");
    for (value, needle) in [
        (
            serde_json::json!("zz"),
            "'z' at offset 0 is not a hex digit",
        ),
        (serde_json::json!("abc"), "odd number of digits"),
        (serde_json::json!(""), "empty string"),
        (
            serde_json::json!(not_network),
            "not a dense network's bytes",
        ),
        (serde_json::json!(with_tail), "1 bytes follow"),
        (serde_json::json!(42), "got 42"),
    ] {
        let e = refuse(serde_json::json!({ "init_network": value }));
        assert!(
            e.contains("`init_network`") && e.contains(needle),
            "{value}: {e}"
        );
    }
    // A regression network with a softmax output cannot be trained,
    // nor can a model of two softmax outputs for two classes be
    // saved.
    let mut odd = init.clone();
    odd.n_classes = 0;
    let e = refuse(serde_json::json!({ "init_network": hex_of(&odd) }));
    assert!(e.contains("identity output layer"), "{e}");
    let mut rng = SplitMix::new(5);
    let two = Net::init(
        vec![3, 4, 2],
        Activation::Relu,
        Activation::Softmax,
        &mut rng,
    )
    .to_ir(&[], &[], &[], 2);
    let e = refuse(serde_json::json!({ "init_network": hex_of(&two) }));
    assert!(e.contains("2 outputs for 2 classes"), "{e}");
    let with =
        |key: &str, v: Value| refuse(serde_json::json!({ "init_network": hex.clone(), key: v }));
    let e = with("hidden_layer_sizes", serde_json::json!([8]));
    assert!(
        e.contains("`hidden_layer_sizes` is [8]") && e.contains("hidden layers [16, 8]"),
        "{e}"
    );
    let e = with("activation", serde_json::json!("tanh"));
    assert!(e.contains("\"tanh\"") && e.contains("\"relu\""), "{e}");
    assert!(with("solver", serde_json::json!("sgd")).contains("`solver` = \"sgd\""));
    assert!(with("early_stopping", serde_json::json!(true)).contains("`early_stopping`"));
    assert!(with("quantization_aware", serde_json::json!(true)).contains("`quantization_aware`"));
    let e = refuse(serde_json::json!({ "keep_zeros": true }));
    assert!(
        e.contains("`keep_zeros`") && e.contains("`init_network`"),
        "{e}"
    );
    // Both are documented for `tessera plugins`.
    for (name, says) in [
        ("init_network", "exchange-form bytes"),
        ("keep_zeros", "stay zero"),
    ] {
        let spec = crate::params::specs()
            .into_iter()
            .find(|s| s.name == name)
            .expect("declared");
        assert!(spec.doc.contains(says), "{name}: {}", spec.doc);
    }
}

#[test]
fn data_that_does_not_fit_the_init_network_is_refused() {
    let (x, y) = problem(60, 4);
    let params = serde_json::json!({ "init_network": hex_of(&network(1)) });
    let fail = |y: &[f32], task| {
        learner_fit(&params, &x, y, None, task)
            .err()
            .expect("refused")
            .message
            .to_string()
    };
    let two: Vec<f32> = y.iter().map(|&c| c.min(1.0)).collect();
    let e = fail(&two, tessera_core::Task::classification(2));
    assert!(
        e.contains("`init_network` classifies 3 classes, the training data has 2"),
        "{e}"
    );
    let e = fail(&y, tessera_core::Task::regression());
    assert!(
        e.contains("classifies 3 classes") && e.contains("regression"),
        "{e}"
    );
    // Columns: a network of 2 inputs on rows of 3.
    let mut rng = SplitMix::new(1);
    let narrow = Net::init(
        vec![2, 4, 3],
        Activation::Relu,
        Activation::Softmax,
        &mut rng,
    )
    .to_ir(&[], &[], &[], 3);
    let params = serde_json::json!({ "init_network": hex_of(&narrow) });
    let e = learner_fit(&params, &x, &y, None, tessera_core::Task::classification(3))
        .err()
        .expect("refused");
    assert!(
        e.message
            .contains("takes 2 features, the training data has 3"),
        "{}",
        e.message
    );
}
