#![allow(clippy::needless_range_loop)] // finite differences perturb parameter j of several copies

use tessera_core::{
    MatrixRef, NullContext, Task,
    abi_stable::std_types::{ROption, RSlice},
    ir::Activation,
    plugin::ModelImpl,
    testkit,
};

use super::*;
use crate::{model::MlpModel, params::specs};

fn config(json: &str) -> Config {
    let p = tessera_core::params::parse("mlp", &specs(), json).unwrap();
    Config::from_params(&p).unwrap()
}

/// A small network, rows and targets for `loss`.
fn problem(hidden: Activation, loss: Loss, seed: u64) -> (Net, Vec<f32>, Vec<f32>, Vec<f32>) {
    let mut rng = SplitMix::new(seed);
    let k = match loss {
        Loss::Softmax => 3,
        Loss::Binary => 1,
        // Two regression targets: the squared loss's mean over outputs.
        Loss::Squared => 2,
    };
    let net = Net::init(vec![3, 4, 3, k], hidden, loss.activation(), &mut rng);
    let rows = 5;
    let x: Vec<f32> = (0..rows * 3)
        .map(|_| (rng.unit() * 4.0 - 2.0) as f32)
        .collect();
    let y: Vec<f32> = (0..rows * loss.target_width(k))
        .map(|_| match loss {
            Loss::Softmax => rng.below(3) as f32,
            Loss::Binary => rng.below(2) as f32,
            Loss::Squared => (rng.unit() * 2.0) as f32,
        })
        .collect();
    let w: Vec<f32> = (0..rows).map(|_| (0.5 + rng.unit()) as f32).collect();
    (net, x, y, w)
}

/// The gradient sums and weighted loss of `net` on the rows.
fn gradient(net: &Net, x: &[f32], y: &[f32], w: &[f32], loss: Loss) -> (Vec<f32>, f64) {
    let mut wt = vec![0.0; net.params.len()];
    net.transpose_weights(&mut wt);
    let set = Set {
        x,
        y,
        w: Some(w),
        cols: 3,
        yw: loss.target_width(net.n_outputs()),
    };
    let mut part = Part::new(net, true, set.yw);
    part.gather(&set, &(0..set.rows()).collect::<Vec<_>>());
    part.gradient(net, &wt, loss);
    (part.grad, part.loss)
}

#[test]
fn backpropagation_matches_finite_differences() {
    let hidden = [
        Activation::Relu,
        Activation::Tanh,
        Activation::Logistic,
        Activation::Identity,
    ];
    for act in hidden {
        for loss in [Loss::Binary, Loss::Softmax, Loss::Squared] {
            let (net, x, y, w) = problem(act, loss, 11);
            let (grad, _) = gradient(&net, &x, &y, &w, loss);
            // ReLU's kink needs a small step; the smooth ones take a
            // larger one, kinder to f32 rounding.
            let h = if act == Activation::Relu { 1e-3 } else { 1e-2 };
            for j in 0..net.params.len() {
                let mut plus = net.clone();
                plus.params[j] += h;
                let mut minus = net.clone();
                minus.params[j] -= h;
                let numeric = (gradient(&plus, &x, &y, &w, loss).1
                    - gradient(&minus, &x, &y, &w, loss).1)
                    / (2.0 * f64::from(h));
                let analytic = f64::from(grad[j]);
                assert!(
                    (numeric - analytic).abs() <= 2e-3 + 1e-2 * analytic.abs(),
                    "{act:?} {loss:?} parameter {j}: numeric {numeric}, backprop {analytic}"
                );
            }
        }
    }
}

#[test]
fn the_l2_penalty_enters_the_step_as_its_gradient() {
    // Plain sgd (no momentum, step 1): the step is minus the gradient of
    // (loss sum + alpha/2 * |W|^2) / rows, which finite differences give.
    let (net, x, y, w) = problem(Activation::Tanh, Loss::Squared, 3);
    let alpha = 0.5;
    let penalized = |n: &Net| {
        let sq: f64 = n
            .slots()
            .iter()
            .flat_map(|s| n.params[s.weights.clone()].iter())
            .map(|&v| f64::from(v) * f64::from(v))
            .sum();
        (gradient(n, &x, &y, &w, Loss::Squared).1 + 0.5 * alpha * sq) / w.len() as f64
    };
    let (grad, _) = gradient(&net, &x, &y, &w, Loss::Squared);
    let mut stepped = net.clone();
    let sgd = Solver::Sgd {
        momentum: 0.0,
        nesterov: false,
    };
    Optimizer::new(sgd, 1.0, &net, alpha).step(&mut stepped.params, &[grad], w.len(), false);
    for j in 0..net.params.len() {
        let h = 1e-2;
        let (mut plus, mut minus) = (net.clone(), net.clone());
        plus.params[j] += h;
        minus.params[j] -= h;
        let numeric = (penalized(&plus) - penalized(&minus)) / (2.0 * f64::from(h));
        let step = f64::from(net.params[j] - stepped.params[j]);
        assert!(
            (numeric - step).abs() < 2e-3,
            "parameter {j}: {numeric} vs {step}"
        );
    }
}

#[test]
fn adam_first_step_moves_every_parameter_by_the_step_size() {
    let (net, x, y, w) = problem(Activation::Relu, Loss::Softmax, 5);
    let (grad, _) = gradient(&net, &x, &y, &w, Loss::Softmax);
    let mut stepped = net.clone();
    let adam = Solver::Adam {
        beta_1: 0.9,
        beta_2: 0.999,
        epsilon: 1e-8,
    };
    Optimizer::new(adam, 0.01, &net, 0.0).step(&mut stepped.params, &[&grad], w.len(), false);
    for j in 0..net.params.len() {
        let moved = stepped.params[j] - net.params[j];
        if grad[j].abs() > 1e-4 {
            assert!(
                (moved.abs() - 0.01).abs() < 1e-4,
                "parameter {j} moved {moved}"
            );
            assert!(moved * grad[j] < 0.0, "parameter {j} moved uphill");
        }
    }
}

fn fit_case(case: &testkit::Case, json: &str, threads: u32) -> MlpModel {
    let ctx = NullContext { threads };
    fit(&config(json), &ctx.as_ref(), &case.data()).unwrap()
}

#[test]
fn a_seed_gives_the_same_model_on_any_thread_count() {
    let case = testkit::classification(700, 6, 3, 9);
    let json = r#"{"hidden_layer_sizes": [16, 8], "max_iter": 5, "random_state": 4}"#;
    let one = fit_case(&case, json, 1);
    let two = fit_case(&case, json, 2);
    assert_eq!(one.to_bytes().unwrap(), two.to_bytes().unwrap());
    let other = fit_case(&case, &json.replace(": 4", ": 5"), 2);
    assert_ne!(one.net().params, other.net().params);
}

#[test]
fn the_testkit_passes() {
    testkit::check_learner(
        &crate::plugin(),
        "mlp",
        r#"{"hidden_layer_sizes": [16], "max_iter": 100, "learning_rate_init": 0.01}"#,
    );
}

#[test]
fn every_solver_and_schedule_learns() {
    let case = testkit::regression(400, 3, 2);
    for extra in [
        r#""solver": "adam", "learning_rate_init": 0.01"#,
        r#""solver": "sgd", "learning_rate_init": 0.01"#,
        r#""solver": "sgd", "nesterovs_momentum": false, "learning_rate_init": 0.01"#,
        r#""solver": "sgd", "learning_rate": "invscaling", "learning_rate_init": 0.05"#,
        r#""solver": "sgd", "learning_rate": "adaptive", "learning_rate_init": 0.01"#,
    ] {
        let json = format!(
            r#"{{"hidden_layer_sizes": [16], "max_iter": 300, "random_state": 0, {extra}}}"#
        );
        let m = fit_case(&case, &json, 1);
        let pred = m
            .predict(&NullContext::default().as_ref(), case.matrix())
            .unwrap();
        let r2 = testkit::r2(&pred, &case.y);
        assert!(r2 > 0.95, "{extra}: R² {r2}");
        let curve = &m.history().loss_curve;
        assert!(curve.last() < curve.first(), "{extra}: {curve:?}");
    }
}

#[test]
fn early_stopping_holds_rows_out_and_keeps_the_best_epoch() {
    let case = testkit::classification(600, 5, 3, 1);
    let m = fit_case(
        &case,
        r#"{"hidden_layer_sizes": [8], "early_stopping": true, "n_iter_no_change": 3,
            "max_iter": 500, "random_state": 0, "learning_rate_init": 0.01}"#,
        2,
    );
    let h = m.history();
    assert!(h.stopped_early, "{h:?}");
    assert_eq!(h.validation_scores.len(), h.n_iter);
    assert_eq!(h.valid_source, "split");
    assert!(
        h.best_epoch >= 1 && h.best_epoch + 3 < h.n_iter + 1,
        "{h:?}"
    );
    let best = h.validation_scores[h.best_epoch - 1];
    assert_eq!(h.best_validation_score, Some(best));
    assert!(best > 0.9, "{h:?}");
}

#[test]
fn missing_values_are_refused_by_name_or_imputed() {
    let mut case = testkit::classification(200, 4, 2, 3);
    case.x[5 * 4 + 2] = f32::NAN;
    let ctx = NullContext::default();
    let e = fit(&config("{}"), &ctx.as_ref(), &case.data()).unwrap_err();
    assert!(
        e.message.contains("row 5") && e.message.contains("`f2`") && e.message.contains("impute"),
        "{}",
        e.message
    );
    let m = fit_case(
        &case,
        r#"{"impute": "mean", "hidden_layer_sizes": [8], "max_iter": 50}"#,
        1,
    );
    let row = [f32::NAN, 0.1, f32::NAN, 2.0];
    let x = MatrixRef::new(&row, 1, 4).unwrap();
    assert_eq!(m.predict(&ctx.as_ref(), x).unwrap().len(), 1);
    let strict = fit_case(
        &testkit::classification(200, 4, 2, 3),
        r#"{"max_iter": 5}"#,
        1,
    );
    let e = strict.predict(&ctx.as_ref(), x).unwrap_err();
    assert!(
        e.message.contains("row 0") && e.message.contains("`f0`"),
        "{}",
        e.message
    );
}

#[test]
fn saved_models_predict_identically_and_damage_is_refused() {
    let case = testkit::classification(300, 5, 4, 2);
    let m = fit_case(
        &case,
        r#"{"hidden_layer_sizes": [12, 6], "max_iter": 20}"#,
        2,
    );
    let bytes = m.to_bytes().unwrap();
    let back = MlpModel::from_bytes(&bytes).unwrap();
    assert_eq!(back, m);
    let ctx = NullContext { threads: 2 };
    let a = m.predict_proba(&ctx.as_ref(), case.matrix()).unwrap();
    let b = back.predict_proba(&ctx.as_ref(), case.matrix()).unwrap();
    assert_eq!(a, b);
    for cut in [0, 3, 8, 20, bytes.len() / 2, bytes.len() - 1] {
        assert!(MlpModel::from_bytes(&bytes[..cut]).is_err(), "cut {cut}");
    }
    // The bare exchange form loads too and predicts the same.
    let ir = MlpModel::from_bytes(&m.ir().to_bytes().unwrap()).unwrap();
    assert_eq!(ir.predict_proba(&ctx.as_ref(), case.matrix()).unwrap(), a);
}

#[test]
fn one_row_alone_equals_the_same_row_in_a_batch() {
    let case = testkit::regression(700, 5, 8);
    let m = fit_case(
        &case,
        r#"{"hidden_layer_sizes": [20, 10], "max_iter": 3}"#,
        1,
    );
    let ctx = NullContext { threads: 2 };
    let all = m.predict(&ctx.as_ref(), case.matrix()).unwrap();
    for i in [0, 1, 255, 256, 699] {
        let x = MatrixRef::new(&case.x[i * 5..(i + 1) * 5], 1, 5).unwrap();
        assert_eq!(
            m.predict(&ctx.as_ref(), x).unwrap(),
            vec![all[i]],
            "row {i}"
        );
    }
}

#[test]
fn validation_data_scores_every_epoch() {
    let case = testkit::regression(300, 3, 1);
    let valid = testkit::regression(100, 3, 2);
    let mut data = case.data();
    data.valid = ROption::RSome(tessera_core::Holdout {
        x: valid.matrix(),
        y: RSlice::from_slice(&valid.y),
        weights: ROption::RNone,
    });
    let ctx = NullContext::default();
    let m = fit(
        &config(r#"{"max_iter": 30, "hidden_layer_sizes": [8]}"#),
        &ctx.as_ref(),
        &data,
    )
    .unwrap();
    let h = m.history();
    assert_eq!(h.valid_source, "valid");
    assert_eq!(h.validation_scores.len(), 30);
    assert!(h.validation_scores[29] > h.validation_scores[0]);
}

#[test]
fn several_regression_targets_train_together() {
    // Two targets of the same inputs: a linear one and a bent one.
    let base = testkit::regression(1200, 3, 4);
    let y: Vec<f32> = base
        .x
        .chunks_exact(3)
        .zip(&base.y)
        .flat_map(|(x, &t)| [t, (x[0] * x[1]).abs() + x[2]])
        .collect();
    let mut data = base.data();
    data.y = RSlice::from_slice(&y);
    data.task = Task::regression_targets(2);
    let json = r#"{"hidden_layer_sizes": [32], "max_iter": 150, "learning_rate_init": 0.01,
                   "random_state": 1, "early_stopping": true}"#;
    let ctx = NullContext { threads: 2 };
    let m = fit(&config(json), &ctx.as_ref(), &data).unwrap();
    assert_eq!(m.task(), Task::regression_targets(2));
    let pred = m.predict(&ctx.as_ref(), base.matrix()).unwrap();
    assert_eq!(pred.len(), 2 * base.rows);
    for j in 0..2 {
        let p: Vec<f32> = pred.iter().skip(j).step_by(2).copied().collect();
        let t: Vec<f32> = y.iter().skip(j).step_by(2).copied().collect();
        let r2 = testkit::r2(&p, &t);
        assert!(r2 > 0.9, "target {j}: R² {r2}");
    }
    let back = MlpModel::from_bytes(&m.to_bytes().unwrap()).unwrap();
    assert_eq!(back.predict(&ctx.as_ref(), base.matrix()).unwrap(), pred);
}

#[test]
fn quantization_aware_training_learns_and_survives_int8() {
    let case = testkit::classification(800, 6, 3, 12);
    let base = r#"{"hidden_layer_sizes": [16, 8], "max_iter": 60, "random_state": 2, "learning_rate_init": 0.01"#;
    let ctx = NullContext::default();
    let accuracy = |pred: &[f32]| {
        let hits = pred.iter().zip(&case.y).filter(|(p, y)| p == y).count();
        hits as f64 / case.y.len() as f64
    };
    let qat = fit_case(&case, &format!("{base}, \"quantization_aware\": true}}"), 1);
    let plain = fit_case(&case, &format!("{base}}}"), 1);
    // The flag changes training, and the same seed gives the same model
    // on any thread count.
    assert_ne!(qat.net().params, plain.net().params);
    let again = fit_case(&case, &format!("{base}, \"quantization_aware\": true}}"), 2);
    assert_eq!(again.to_bytes().unwrap(), qat.to_bytes().unwrap());
    let float = accuracy(&qat.predict(&ctx.as_ref(), case.matrix()).unwrap());
    assert!(float > 0.85, "accuracy {float}");
    // Quantized to 8 bits, it predicts (nearly) the same classes.
    let q = tessera_qnet::QuantizedNetwork::quantize(
        &qat.ir(),
        &tessera_qnet::Options { bits: 8 },
        Some(case.matrix()),
    )
    .unwrap();
    let q = tessera_qnet::QuantizedModel::new(q).unwrap();
    let int8 = accuracy(&q.predict(&ctx.as_ref(), case.matrix()).unwrap());
    assert!((float - int8).abs() <= 0.02, "float {float}, int8 {int8}");
    assert_eq!(qat.describe()["params"]["quantization_aware"], true);
}
