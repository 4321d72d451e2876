//! Pruning networks built here: random hidden layers with an output
//! layer fitted by least squares. Fine-tuning goes through a fake host
//! whose `mlp` learner checks what it is given and answers with a known
//! network ([`tuner`]), so that the tests see exactly what the
//! compressor sends and what it makes of the answer.

use std::{cell::RefCell, sync::OnceLock};

use tessera_core::{
    HostContextRef, Matrix, MatrixRef, NullContext, Task,
    abi_stable::std_types::{ROption, RSlice},
    ir::{Activation, DenseLayer},
    params::{ParamSpec, Params},
    plugin::{LearnerDef, LearnerImpl, PluginDef, seeds::SplitMix},
    testkit::FakeHost,
};

use super::*;

/// Rows of three classes that a small network separates well.
fn problem(n: usize, seed: u64) -> (Vec<f32>, Vec<f32>) {
    let mut rng = SplitMix::new(seed);
    let mut x = Vec::with_capacity(n * 4);
    let mut y = Vec::with_capacity(n);
    for _ in 0..n {
        let v: Vec<f32> = (0..4).map(|_| (rng.unit() * 4.0 - 2.0) as f32).collect();
        let z = v[0] + 0.5 * v[1] * v[2];
        y.push(if z > 0.7 {
            2.0
        } else if z > -0.7 {
            1.0
        } else {
            0.0
        });
        x.extend(v.iter().map(|v| v * 3.0 + 10.0));
    }
    (x, y)
}

/// A [4, 24, 12, 3] classifier of [`problem`] rows: a Glorot-uniform
/// random ReLU input layer (seeded), then the two layers after it fitted
/// in turn by least squares on the outputs of the ones before: the
/// hidden one to random mixtures of the class indicators, the softmax
/// one to logits of +3 for the row's class and -3 for the others.
fn trained(x: &[f32], y: &[f32]) -> DenseNetwork {
    let mut rng = SplitMix::new(1);
    let mut uniform = |n: usize, limit: f64| -> Vec<f32> {
        (0..n)
            .map(|_| ((rng.unit() * 2.0 - 1.0) * limit) as f32)
            .collect()
    };
    let mut layer = |inputs: usize, outputs: usize, activation| DenseLayer {
        inputs: inputs as u32,
        outputs: outputs as u32,
        weights: uniform(inputs * outputs, (6.0 / (inputs + outputs) as f64).sqrt()).into(),
        bias: uniform(outputs, 0.1).into(),
        activation,
    };
    let mut net = DenseNetwork {
        input_mean: vec![10.0; 4].into(),
        input_scale: vec![1.0 / 3.0; 4].into(),
        input_fill: Default::default(),
        layers: vec![
            layer(4, 24, Activation::Relu),
            layer(24, 12, Activation::Relu),
            layer(12, 3, Activation::Softmax),
        ]
        .into(),
        n_classes: 3,
    };
    let n = y.len();
    let t = Scaling::of(&net).apply(x, 4).unwrap();
    let mix = uniform(12 * 3, 2.0);
    let hidden: Vec<f32> = y
        .iter()
        .flat_map(|&c| mix.chunks_exact(3).map(move |m| 0.5 + m[c as usize]))
        .collect();
    let h = structured::layer_outputs(&net, &t, n, 0);
    assert!(refit::refit_masked(
        &h,
        &hidden,
        &[true; 288],
        &mut net.layers[1]
    ));
    let logits: Vec<f32> = y
        .iter()
        .flat_map(|&c| (0..3).map(move |k| if k == c as usize { 3.0 } else { -3.0 }))
        .collect();
    let h = structured::layer_outputs(&net, &t, n, 1);
    assert!(refit::refit_masked(
        &h,
        &logits,
        &[true; 36],
        &mut net.layers[2]
    ));
    net.check().unwrap();
    net
}

fn holdout<'a>(x: &'a [f32], y: &'a [f32]) -> Holdout<'a> {
    Holdout {
        x: MatrixRef::new(x, y.len(), 4).unwrap(),
        y: RSlice::from_slice(y),
        weights: ROption::RNone,
    }
}

fn data<'a>(train: Option<Holdout<'a>>, eval: Option<Holdout<'a>>) -> CompressData<'a> {
    CompressData {
        train: train.into(),
        eval: eval.into(),
        task: Task::classification(3),
    }
}

fn opts(sparsity: f64, keep_units: f64, epochs: usize) -> NetworkPrune {
    NetworkPrune {
        sparsity,
        keep_units,
        fine_tune_epochs: epochs,
        learning_rate_init: 0.005,
        random_state: 3,
    }
}

struct Setup {
    x: Vec<f32>,
    y: Vec<f32>,
    ex: Vec<f32>,
    ey: Vec<f32>,
    net: DenseNetwork,
}

fn setup() -> Setup {
    let (x, y) = problem(600, 1);
    let (ex, ey) = problem(300, 2);
    let net = trained(&x, &y);
    Setup { x, y, ex, ey, net }
}

/// Prunes `s.net` with training and evaluation rows through `ctx`.
fn run_on(s: &Setup, o: &NetworkPrune, ctx: &HostContextRef<'_>) -> (ModelIr, Value) {
    let d = data(Some(holdout(&s.x, &s.y)), Some(holdout(&s.ex, &s.ey)));
    prune(&s.net, o, &d, ctx).unwrap()
}

/// [`run_on`] through a host whose `mlp` is the [`tuner`].
fn run(s: &Setup, o: &NetworkPrune) -> (ModelIr, Value) {
    run_on(s, o, &host().as_ref())
}

/// The dense network of a pruning result, either form.
fn dense(ir: &ModelIr) -> DenseNetwork {
    match ir {
        ModelIr::Network(n) => n.clone(),
        ModelIr::Opaque { bytes, .. } => {
            let model = load_sparse(bytes, &NullContext::default().as_ref()).unwrap();
            match model.to_ir() {
                Some(ModelIr::Network(n)) => n,
                other => panic!("no dense form: {other:?}"),
            }
        }
        other => panic!("not a network: {other:?}"),
    }
}

fn decode_hex(text: &str) -> Vec<u8> {
    assert!(text.len().is_multiple_of(2), "odd hex length");
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).expect("hex digits"))
        .collect()
}

/// The network the [`tuner`] answers with for `init`: its output layer
/// (weights and biases) times 1.5, which scales the logits and leaves
/// every predicted class as it was.
fn tuned(init: &DenseNetwork) -> DenseNetwork {
    let mut out = init.clone();
    let last = out.layers.len() - 1;
    let l = &mut out.layers[last];
    l.weights.iter_mut().for_each(|w| *w *= 1.5);
    l.bias.iter_mut().for_each(|b| *b *= 1.5);
    out
}

// The fake `mlp` learner.

/// How the [`tuner`] answers.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Answer {
    /// [`tuned`] of the network it was given.
    Faithful,
    /// That, with the first zero weight of the first layer set to 0.5.
    MovesAZero,
    /// That, with another input offset.
    OtherScaling,
    /// A model with no exchange form.
    NoNetwork,
    /// Training fails.
    Fails,
}

/// What the tuner was given.
#[derive(Clone, Debug)]
struct Call {
    params: Value,
    rows: usize,
    names: Vec<String>,
    weights: Option<Vec<f32>>,
    task: Task,
    has_valid: bool,
}

thread_local! {
    // The fake host calls the learner on the caller's thread, so each
    // test sees its own answer and calls.
    static ANSWER: RefCell<Answer> = const { RefCell::new(Answer::Faithful) };
    static CALLS: RefCell<Vec<Call>> = const { RefCell::new(Vec::new()) };
}

fn answer(a: Answer) {
    ANSWER.with_borrow_mut(|x| *x = a);
}

fn calls() -> Vec<Call> {
    CALLS.with_borrow_mut(std::mem::take)
}

struct Tuner {
    params: Params,
}

struct TunedModel {
    net: Option<DenseNetwork>,
    task: Task,
    epochs: usize,
}

impl LearnerImpl for Tuner {
    fn fit(
        &self,
        _ctx: &HostContextRef<'_>,
        data: &TrainData<'_>,
    ) -> Result<Box<dyn ModelImpl>, PluginError> {
        let params = self.params.to_json();
        CALLS.with_borrow_mut(|c| {
            c.push(Call {
                params: params.clone(),
                rows: data.x.rows(),
                names: data.feature_names.iter().map(|n| n.to_string()).collect(),
                weights: data.weights.into_option().map(|w| w.to_vec()),
                task: data.task,
                has_valid: data.valid.is_some(),
            })
        });
        let text = params["init_network"].as_str().unwrap_or("");
        let (init, _) = DenseNetwork::from_bytes(&decode_hex(text))?;
        let mut net = tuned(&init);
        match ANSWER.with_borrow(|a| *a) {
            Answer::Faithful => {}
            Answer::MovesAZero => {
                let w = &mut net.layers[0].weights;
                let at = w.iter().position(|v| *v == 0.0).expect("a zero weight");
                w[at] = 0.5;
            }
            Answer::OtherScaling => net.input_mean[0] += 1.0,
            Answer::Fails => return Err(PluginError::input("the loss diverged")),
            Answer::NoNetwork => {
                return Ok(Box::new(TunedModel {
                    net: None,
                    task: data.task,
                    epochs: 0,
                }));
            }
        }
        Ok(Box::new(TunedModel {
            net: Some(net),
            task: data.task,
            epochs: params["max_iter"].as_u64().unwrap_or(0) as usize,
        }))
    }

    fn multi_output(&self) -> bool {
        true
    }
}

impl ModelImpl for TunedModel {
    fn task(&self) -> Task {
        self.task
    }
    fn n_features(&self) -> usize {
        4
    }
    fn predict(&self, _: &HostContextRef<'_>, _: MatrixRef<'_>) -> Result<Vec<f32>, PluginError> {
        Err(PluginError::unsupported("test model"))
    }
    fn predict_proba(
        &self,
        _: &HostContextRef<'_>,
        _: MatrixRef<'_>,
    ) -> Result<Matrix, PluginError> {
        Err(PluginError::unsupported("test model"))
    }
    fn describe(&self) -> Value {
        json!({ "n_iter": self.epochs })
    }
    fn to_bytes(&self) -> Result<Vec<u8>, PluginError> {
        Err(PluginError::unsupported("test model"))
    }
    fn to_ir(&self) -> Option<ModelIr> {
        self.net.clone().map(ModelIr::Network)
    }
}

/// A plugin of one learner, `mlp`: the [`Tuner`], taking the parameters
/// the compressor sends.
fn tuner() -> &'static PluginDef {
    static DEF: OnceLock<PluginDef> = OnceLock::new();
    DEF.get_or_init(|| PluginDef {
        name: "fake",
        version: "0",
        learners: vec![LearnerDef {
            name: "mlp",
            description: "answers fine-tuning with a known network",
            params: vec![
                ParamSpec::custom("init_network", "string", Value::Null, "", |v| {
                    v.is_string().then_some(()).ok_or(format!("got {v}"))
                }),
                ParamSpec::bool("keep_zeros", false, ""),
                ParamSpec::int("max_iter", Some(200), 1, ""),
                ParamSpec::positive("learning_rate_init", 1e-3, ""),
                ParamSpec::int("random_state", None, 0, ""),
                ParamSpec::int("batch_size", Some(200), 1, ""),
            ],
            create: |params| Ok(Box::new(Tuner { params })),
            load: |_, _| Err(PluginError::unsupported("test model")),
        }],
        compressors: Vec::new(),
        decomposers: Vec::new(),
        models: Vec::new(),
    })
}

fn host() -> FakeHost {
    answer(Answer::Faithful);
    calls();
    FakeHost::new(tuner(), 1)
}

/// What a call's parameters say apart from the network, and the network.
fn sent(call: &Call) -> (Value, DenseNetwork) {
    let mut p = call.params.clone();
    let text = p
        .as_object_mut()
        .and_then(|m| m.remove("init_network"))
        .expect("init_network is sent");
    let (net, used) = DenseNetwork::from_bytes(&decode_hex(text.as_str().unwrap())).unwrap();
    assert_eq!(used, text.as_str().unwrap().len() / 2);
    (p, net)
}

#[test]
fn hex_is_two_lowercase_digits_a_byte() {
    assert_eq!(encode_hex(&[0, 1, 0x7f, 0xa0, 0xff]), "00017fa0ff");
    assert_eq!(encode_hex(&[]), "");
    let s = setup();
    let bytes = s.net.to_bytes().unwrap();
    assert_eq!(decode_hex(&encode_hex(&bytes)), bytes);
}

#[test]
fn the_test_network_is_a_good_classifier() {
    // What the pruning tests below measure losses against.
    let s = setup();
    let a = score(&s.net, &holdout(&s.ex, &s.ey), "evaluation").unwrap();
    assert!(a > 0.85, "accuracy {a}");
}

#[test]
fn nothing_to_prune_leaves_the_network_as_it_was() {
    let s = setup();
    let (ir, summary) = run_on(&s, &opts(0.0, 1.0, 0), &NullContext::default().as_ref());
    assert_eq!(ir, ModelIr::Network(s.net.clone()));
    assert_eq!(summary["hidden_units_after"], json!([24, 12]));
    assert_eq!(summary["fine_tune"]["epochs_run"], 0);
    assert_eq!(summary["fine_tune"]["skipped"], "fine_tune_epochs is 0");
    // No training rows: no fine-tuning, and the summary says why.
    let d = data(None, None);
    let (ir, summary) = prune(
        &s.net,
        &opts(0.0, 1.0, 5),
        &d,
        &NullContext::default().as_ref(),
    )
    .unwrap();
    assert_eq!(ir, ModelIr::Network(s.net.clone()));
    assert_eq!(
        summary["fine_tune"]["skipped"],
        "no training rows were given"
    );
    assert_eq!(summary["eval"], Value::Null);
}

#[test]
fn structured_pruning_shrinks_the_network_and_fine_tunes_through_the_host() {
    let s = setup();
    // Pruned alone, then pruned and fine-tuned.
    let null = NullContext::default();
    let (alone, _) = run_on(&s, &opts(0.0, 0.5, 0), &null.as_ref());
    let (ir, summary) = run(&s, &opts(0.0, 0.5, 15));
    let ModelIr::Network(small) = &ir else {
        panic!("not a dense network: {ir:?}")
    };
    small.check().unwrap();
    let widths: Vec<u32> = small.layers.iter().map(|l| l.outputs).collect();
    assert_eq!(widths, vec![12, 6, 3]);
    assert_eq!(small.n_features(), 4);
    assert_eq!(small.input_mean, s.net.input_mean);
    assert_eq!(summary["importance"], "reconstruction");
    assert_eq!(summary["layers"][0]["units_before"], 24);
    assert_eq!(summary["layers"][1]["units_after"], 6);
    // The learner got the pruned network, no mask (the units are gone),
    // the options, and the training rows; its answer is the result.
    let c = calls();
    assert_eq!(c.len(), 1);
    let (params, init) = sent(&c[0]);
    assert_eq!(ModelIr::Network(init.clone()), alone);
    assert_eq!(
        params,
        json!({
            "keep_zeros": false,
            "max_iter": 15,
            "learning_rate_init": 0.005,
            "random_state": 3,
            "batch_size": 200,
        })
    );
    assert_eq!(c[0].rows, 600);
    assert_eq!(c[0].names, vec!["x0", "x1", "x2", "x3"]);
    assert_eq!(
        (c[0].task, c[0].has_valid),
        (Task::classification(3), false)
    );
    assert_eq!(*small, tuned(&init));
    // The summary scores the training rows with the compressor's own
    // forward pass.
    let t = &summary["fine_tune"];
    let train = holdout(&s.x, &s.y);
    let on_train = |n: &DenseNetwork| json!(score(n, &train, "training").unwrap());
    assert_eq!(t["epochs_run"], 15);
    assert_eq!(t["learner"], "mlp");
    assert_eq!(t["metric"], "accuracy");
    assert_eq!(t["rows"], 600);
    assert_eq!(t["score_original"], on_train(&s.net));
    assert_eq!(t["score_before"], on_train(&init));
    assert_eq!(t["score_after"], on_train(small));
    // Reconstruction keeps most of the accuracy with half the units.
    let e = &summary["eval"];
    let (a0, a1) = (e["before"].as_f64().unwrap(), e["after"].as_f64().unwrap());
    assert!(a1 > a0 - 0.05, "accuracy {a0} -> {a1}");
    // Without rows, the weights rank the units.
    let d = data(None, None);
    let (_, summary) = prune(&s.net, &opts(0.0, 0.5, 0), &d, &null.as_ref()).unwrap();
    assert_eq!(summary["importance"], "weights");
    assert_eq!(summary["hidden_units_after"], json!([12, 6]));
}

#[test]
fn magnitude_pruning_keeps_an_exact_count_and_predicts_as_the_dense_form() {
    let s = setup();
    let null = NullContext::default();
    let (alone, _) = run_on(&s, &opts(0.8, 1.0, 0), &null.as_ref());
    let (ir, summary) = run(&s, &opts(0.8, 1.0, 10));
    let ModelIr::Opaque { family, bytes } = &ir else {
        panic!("not the sparse form")
    };
    assert_eq!(family.as_str(), SPARSE_FAMILY);
    // ⌊0.8 n⌋ of each layer's n weights zeroed: of 96, 288 and 36, 20 + 58 + 8 kept.
    let kept = (96 - 76) + (288 - 230) + (36 - 28);
    assert_eq!(summary["weights_stored"], kept);
    // A kept weight on a unit that never fires may end at zero.
    assert!(summary["nonzeros_after"].as_u64().unwrap() <= kept);
    assert_eq!(summary["layers_refitted"], 3);
    assert_eq!(summary["fine_tune"]["epochs_run"], 10);
    // The learner got the magnitude-pruned network, whose zeros are the
    // mask, with keep_zeros; the result is its answer.
    let c = calls();
    let (params, init) = sent(&c[0]);
    assert_eq!(params["keep_zeros"], true);
    assert_eq!(params["max_iter"], 10);
    assert_eq!(init, dense(&alone));
    let (_, masks) = magnitude::zero_smallest(&s.net, 0.8);
    for (l, m) in init.layers.iter().zip(&masks) {
        for (w, k) in l.weights.iter().zip(m) {
            assert!(*k || *w == 0.0);
        }
    }
    let result = dense(&ir);
    assert_eq!(result, tuned(&init));
    // Biases, row pointers and the input transformation weigh on a
    // network this small: half the bytes, not a fifth.
    let (b0, b1) = (&summary["bytes_before"], &summary["bytes_after"]);
    assert!(
        b1.as_u64().unwrap() * 2 < b0.as_u64().unwrap(),
        "{b0} -> {b1}"
    );
    let ctx = null.as_ref();
    let model = load_sparse(bytes, &ctx).unwrap();
    result.check().unwrap();
    // Refitting moved the kept weights, never the ones magnitude
    // pruning zeroed.
    for ((d, o), m) in result.layers.iter().zip(&s.net.layers).zip(&masks) {
        for ((w, w0), k) in d.weights.iter().zip(o.weights.iter()).zip(m) {
            if !k {
                assert_eq!(*w, 0.0);
            }
            assert!(!k || w != w0 || *w == 0.0);
        }
    }
    // The sparse kernel predicts as the dense forward pass.
    let n = s.ey.len();
    let m = MatrixRef::new(&s.ex, n, 4).unwrap();
    let t = Scaling::of(&result).apply(&s.ex, 4).unwrap();
    let want = structured::layer_outputs(&result, &t, n, 2);
    let p = model.predict_proba(&ctx, m).unwrap();
    for (a, b) in p.data.iter().zip(&want) {
        assert!((a - b).abs() < 1e-5, "{a} vs {b}");
    }
    let classes: Vec<f32> = want.chunks_exact(3).map(|o| argmax(o) as f32).collect();
    assert_eq!(model.predict(&ctx, m).unwrap(), classes);
    for cut in 0..bytes.len() {
        assert!(load_sparse(&bytes[..cut], &ctx).is_err(), "cut at {cut}");
    }
    // A network of 420 weights loses much at 80%; at half, the refit
    // keeps nearly all of it.
    let (_, summary) = run(&s, &opts(0.5, 1.0, 10));
    let e = &summary["eval"];
    let (a0, a1) = (e["before"].as_f64().unwrap(), e["after"].as_f64().unwrap());
    assert!(a1 > a0 - 0.05, "accuracy {a0} -> {a1}");
}

#[test]
fn both_together_prune_units_then_weights() {
    let s = setup();
    let (ir, summary) = run(&s, &opts(0.5, 0.5, 3));
    let ModelIr::Opaque { bytes, .. } = ir else {
        panic!("not the sparse form")
    };
    let model = load_sparse(&bytes, &NullContext::default().as_ref()).unwrap();
    assert_eq!(model.describe()["layers"][0]["outputs"], 12);
    // 48, 72 and 18 weights, half of each kept.
    assert_eq!(summary["weights_stored"], 24 + 36 + 9);
    assert_eq!(summary["hidden_units_after"], json!([12, 6]));
    let (params, init) = sent(&calls()[0]);
    assert_eq!(params["keep_zeros"], true);
    let widths: Vec<u32> = init.layers.iter().map(|l| l.outputs).collect();
    assert_eq!(widths, vec![12, 6, 3]);
}

#[test]
fn sample_weights_reach_the_learner() {
    let s = setup();
    let w: Vec<f32> = (0..s.y.len()).map(|i| 1.0 + (i % 3) as f32).collect();
    let train = Holdout {
        weights: ROption::RSome(RSlice::from_slice(&w)),
        ..holdout(&s.x, &s.y)
    };
    let host = host();
    prune(
        &s.net,
        &opts(0.0, 0.5, 2),
        &data(Some(train), None),
        &host.as_ref(),
    )
    .unwrap();
    assert_eq!(calls()[0].weights.as_deref(), Some(&w[..]));
}

#[test]
fn fine_tuning_without_the_mlp_learner_says_how_to_do_without() {
    let s = setup();
    let d = data(Some(holdout(&s.x, &s.y)), None);
    let without = FakeHost::new(tuner(), 1).without("mlp");
    let null = NullContext::default();
    for ctx in [without.as_ref(), null.as_ref()] {
        let e = prune(&s.net, &opts(0.5, 1.0, 5), &d, &ctx).unwrap_err();
        assert_eq!(e.kind, ErrorKind::UNSUPPORTED);
        assert!(
            e.message.starts_with(
                "network_prune: fine-tuning needs the `mlp` learner (plugin not loaded): "
            ) && e
                .message
                .ends_with("; set fine_tune_epochs = 0 to prune without it"),
            "{}",
            e.message
        );
        // Which it does.
        prune(&s.net, &opts(0.5, 1.0, 0), &d, &ctx).unwrap();
    }
}

#[test]
fn an_answer_that_is_not_the_pruned_network_trained_is_refused() {
    let s = setup();
    let d = data(Some(holdout(&s.x, &s.y)), None);
    let host = host();
    let fail = |a: Answer, o: &NetworkPrune| {
        answer(a);
        let e = prune(&s.net, o, &d, &host.as_ref()).unwrap_err();
        (e.kind, e.message.to_string())
    };
    let magnitude = opts(0.5, 1.0, 2);
    let (kind, m) = fail(Answer::MovesAZero, &magnitude);
    assert_eq!(kind, ErrorKind::INTERNAL);
    assert!(m.contains("pruned weights are no longer zero"), "{m}");
    let (kind, m) = fail(Answer::OtherScaling, &magnitude);
    assert_eq!(kind, ErrorKind::INTERNAL);
    assert!(m.contains("another shape or input transformation"), "{m}");
    let (kind, m) = fail(Answer::NoNetwork, &opts(0.0, 0.5, 2));
    assert_eq!(kind, ErrorKind::INTERNAL);
    assert!(m.contains("without a dense network form"), "{m}");
    let (kind, m) = fail(Answer::Fails, &opts(0.0, 0.5, 2));
    assert_eq!(kind, ErrorKind::INVALID_INPUT);
    assert!(
        m.starts_with("network_prune: fine-tuning with `mlp` failed: ")
            && m.contains("the loss diverged"),
        "{m}"
    );
    // Parameters the learner refuses are named as such.
    answer(Answer::Faithful);
    let mut o = opts(0.0, 0.5, 2);
    o.random_state = u64::MAX;
    let e = prune(&s.net, &o, &d, &host.as_ref()).unwrap_err();
    assert_eq!(e.kind, ErrorKind::INVALID_PARAMS);
    assert!(
        e.message
            .starts_with("network_prune: the `mlp` learner refused to fine-tune: "),
        "{}",
        e.message
    );
}

#[test]
fn bad_options_and_data_are_named() {
    let s = setup();
    let d = data(None, None);
    let ctx = NullContext::default();
    let err = |o: &NetworkPrune, d: &CompressData<'_>| {
        prune(&s.net, o, d, &ctx.as_ref())
            .unwrap_err()
            .message
            .to_string()
    };
    assert_eq!(
        err(&opts(1.2, 1.0, 0), &d),
        "`sparsity` must be in [0, 1), got 1.2"
    );
    assert_eq!(
        err(&opts(1.0, 1.0, 0), &d),
        "`sparsity` must be in [0, 1), got 1"
    );
    assert!(err(&opts(f64::NAN, 1.0, 0), &d).contains("got NaN"));
    assert_eq!(
        err(&opts(0.0, 0.0, 0), &d),
        "`keep_units` must be in (0, 1], got 0"
    );
    assert!(err(&opts(0.0, 1.5, 0), &d).contains("got 1.5"));
    let mut o = opts(0.0, 1.0, 1);
    o.learning_rate_init = 0.0;
    assert!(err(&o, &d).contains("`learning_rate_init` must be a positive number, got 0"));
    let regression = CompressData::none(Task::regression());
    let e = err(&opts(0.5, 1.0, 0), &regression);
    assert!(
        e.contains("regression") && e.contains("classifies 3 classes"),
        "{e}"
    );
    let narrow = Holdout {
        x: MatrixRef::new(&s.x[..300], 100, 3).unwrap(),
        y: RSlice::from_slice(&s.y[..100]),
        weights: ROption::RNone,
    };
    let e = err(&opts(0.5, 1.0, 0), &data(Some(narrow), None));
    assert!(
        e.contains("training data") && e.contains("expected 4"),
        "{e}"
    );
    let mut nan = s.x.clone();
    nan[9] = f32::NAN;
    let e = err(&opts(0.0, 0.5, 0), &data(Some(holdout(&nan, &s.y)), None));
    assert!(e.contains("row 2") && e.contains("column 1"), "{e}");
}
