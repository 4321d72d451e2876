//! `gradient_boosting` through the plugin's own API: the conformance kit,
//! byte round-trips, refusal of damaged bytes, the exchange form against
//! the model's own predictions, determinism across thread budgets, and
//! monotonic constraints.

use tessera_boosting::gbdt::serialize;
use tessera_core::{
    HostContextRef, NullContext,
    ir::{Link, ModelIr},
    plugin::ModelImpl,
    testkit,
};

#[test]
fn passes_the_conformance_kit() {
    let plugin = tessera_boosting::plugin();
    for params in [
        r#"{"n_estimators": 10, "early_stopping": false}"#,
        r#"{"n_estimators": 10, "max_depth": 2, "subsample": 0.7, "max_features": 0.5, "random_state": 3}"#,
        r#"{"n_estimators": 5, "l2_regularization": 1.0, "max_leaf_nodes": 4, "min_samples_leaf": 2}"#,
    ] {
        testkit::check_learner(&plugin, "gradient_boosting", params);
    }
}

/// Trains on a testkit case and returns the model.
fn fit(case: &testkit::Case, params: &str, threads: u32) -> Box<dyn ModelImpl> {
    let p = tessera_core::params::parse(
        "gradient_boosting",
        &tessera_boosting::gbdt::params::specs(),
        params,
    )
    .unwrap();
    let learner = tessera_boosting::gbdt::train::create(p).unwrap();
    let ctx = NullContext { threads };
    let ctx: HostContextRef<'_> = ctx.as_ref();
    learner.fit(&ctx, &case.data()).unwrap()
}

#[test]
fn bytes_round_trip_and_damage_is_refused() {
    for case in [
        testkit::classification(300, 5, 2, 1),
        testkit::classification(300, 5, 4, 2),
        testkit::regression(300, 5, 3),
    ] {
        let m = fit(&case, r#"{"n_estimators": 15, "random_state": 0}"#, 1);
        let bytes = m.to_bytes().unwrap();
        let back = serialize::from_bytes(&bytes).unwrap();
        assert_eq!(back.to_bytes().unwrap(), bytes);
        let ctx = NullContext { threads: 1 };
        let ctx = ctx.as_ref();
        assert_eq!(
            back.predict(&ctx, case.matrix()).unwrap(),
            m.predict(&ctx, case.matrix()).unwrap()
        );
        // Every truncation and a flipped byte at every position of the
        // structural part give an error or a valid model, never a panic.
        for len in 0..bytes.len() {
            assert!(
                serialize::from_bytes(&bytes[..len]).is_err(),
                "truncated at {len}"
            );
        }
        for i in 0..bytes.len().min(4096) {
            let mut b = bytes.clone();
            b[i] ^= 0xA5;
            let _ = serialize::from_bytes(&b);
        }
    }
}

#[test]
fn the_exchange_form_predicts_what_the_model_predicts() {
    for (case, link) in [
        (testkit::classification(400, 6, 2, 4), Link::Sigmoid),
        (testkit::classification(400, 6, 3, 5), Link::Softmax),
        (testkit::regression(400, 6, 6), Link::Identity),
    ] {
        let m = fit(&case, r#"{"n_estimators": 12, "random_state": 0}"#, 2);
        let Some(ModelIr::Trees(e)) = m.to_ir() else {
            panic!("no tree ensemble");
        };
        assert_eq!(e.link, link);
        let k = e.n_outputs as usize;
        let ctx = NullContext { threads: 1 };
        let ctx = ctx.as_ref();
        let proba = m.predict_proba(&ctx, case.matrix()).ok();
        let pred = m.predict(&ctx, case.matrix()).unwrap();
        for (r, &pred_r) in pred.iter().enumerate() {
            let row = case.matrix().row(r);
            let mut out: Vec<f32> = e.base_score.to_vec();
            for t in e.trees.iter() {
                t.add_to(row, &mut out);
            }
            match link {
                Link::Identity => assert!((out[0] - pred_r).abs() < 1e-3, "{r}"),
                Link::Sigmoid => {
                    let p1 = 1.0 / (1.0 + (-out[0]).exp());
                    let p = proba.as_ref().unwrap();
                    assert!((p1 - p.data[r * 2 + 1]).abs() < 1e-4, "{r}");
                }
                Link::Softmax => {
                    let max = out.iter().copied().fold(f32::NEG_INFINITY, f32::max);
                    let s: f32 = out.iter().map(|v| (v - max).exp()).sum();
                    let p = proba.as_ref().unwrap();
                    for (c, &o) in out.iter().enumerate() {
                        let pc = (o - max).exp() / s;
                        assert!((pc - p.data[r * k + c]).abs() < 1e-4, "{r} {c}");
                    }
                }
            }
        }
    }
}

#[test]
fn the_thread_budget_does_not_change_the_model() {
    let case = testkit::classification(30_000, 8, 3, 7);
    let params = r#"{"n_estimators": 8, "random_state": 1, "subsample": 0.8}"#;
    let one = fit(&case, params, 1).to_bytes().unwrap();
    let two = fit(&case, params, 2).to_bytes().unwrap();
    // The summary holds the binning time; the trees must be identical.
    let a = serialize::from_bytes(&one).unwrap();
    let b = serialize::from_bytes(&two).unwrap();
    assert_eq!(a.trees, b.trees);
    assert_eq!(a.base, b.base);
}

#[test]
fn monotonic_constraints_hold_on_every_row() {
    let case = testkit::regression(3000, 4, 11);
    let ctx = NullContext { threads: 2 };
    let ctx = ctx.as_ref();
    for params in [
        r#"{"n_estimators": 30, "random_state": 0, "min_samples_leaf": 5, "monotonic_cst": [1, -1, 0, 0]}"#,
        r#"{"n_estimators": 30, "random_state": 0, "min_samples_leaf": 5, "monotonic_cst": {"f0": 1, "f1": -1}, "loss": "absolute_error"}"#,
    ] {
        let m = fit(&case, params, 2);
        // Sweep f0 up and f1 up from many rows: predictions rise with f0
        // and fall with f1.
        let grid: Vec<f32> = (0..40).map(|i| -4.0 + 0.2 * i as f32).collect();
        for r in (0..case.rows).step_by(97) {
            for (feature, sign) in [(0usize, 1.0f32), (1, -1.0)] {
                let mut x = Vec::new();
                for &g in &grid {
                    let mut row = case.matrix().row(r).to_vec();
                    row[feature] = g;
                    x.extend(row);
                }
                let mx = tessera_core::MatrixRef::new(&x, grid.len(), case.cols).unwrap();
                let p = m.predict(&ctx, mx).unwrap();
                for w in p.windows(2) {
                    assert!(
                        sign * (w[1] - w[0]) >= -1e-6,
                        "{params}: row {r} feature {feature}: {p:?}"
                    );
                }
            }
        }
    }
    // Unconstrained, the same data gives a non-monotonic model somewhere
    // (so the check above can fail).
    let free = fit(
        &case,
        r#"{"n_estimators": 30, "random_state": 0, "min_samples_leaf": 5}"#,
        2,
    );
    let grid: Vec<f32> = (0..40).map(|i| -4.0 + 0.2 * i as f32).collect();
    let mut violated = false;
    for r in (0..case.rows).step_by(97) {
        let mut x = Vec::new();
        for &g in &grid {
            let mut row = case.matrix().row(r).to_vec();
            row[1] = g;
            x.extend(row);
        }
        let mx = tessera_core::MatrixRef::new(&x, grid.len(), case.cols).unwrap();
        let p = free.predict(&ctx, mx).unwrap();
        violated |= p.windows(2).any(|w| w[1] - w[0] > 1e-6);
    }
    assert!(
        violated,
        "the unconstrained model is already monotone: a weak test"
    );
}

#[test]
fn monotonic_constraints_are_checked_against_the_data() {
    for (case, params, needle) in [
        (
            testkit::regression(200, 3, 1),
            r#"{"monotonic_cst": [1, 0]}"#,
            "2 constraints for 3",
        ),
        (
            testkit::regression(200, 3, 1),
            r#"{"monotonic_cst": {"f7": 1}}"#,
            "no feature column `f7`",
        ),
        (
            testkit::classification(200, 3, 3, 1),
            r#"{"monotonic_cst": [1, 0, 0]}"#,
            "multiclass",
        ),
    ] {
        let p = tessera_core::params::parse(
            "gradient_boosting",
            &tessera_boosting::gbdt::params::specs(),
            params,
        )
        .unwrap();
        let learner = tessera_boosting::gbdt::train::create(p).unwrap();
        let ctx = NullContext { threads: 1 };
        let e = learner
            .fit(&ctx.as_ref(), &case.data())
            .err()
            .expect("refused");
        assert!(e.message.contains(needle), "{params}: {}", e.message);
    }
}
