//! The rounds: early termination, member seeds and threads, progress,
//! cancellation, and the errors of base learners.

use tessera_core::{ErrorKind, context::level, testkit};

use super::*;

#[test]
fn a_perfect_member_ends_boosting_with_weight_one() {
    let data = Data::line(&[0, 0, 0, 1, 1, 1], 2);
    let m = fit(1, r#"{"n_estimators": 10}"#, &data);
    let s = summary(&m);
    assert_eq!(s["n_members"], 1);
    assert_eq!(s["stopped"], "perfect_fit");
    assert_eq!(numbers(&s["estimator_weights"]), vec![1.0]);
    assert_eq!(numbers(&s["estimator_errors"]), vec![0.0]);
    assert_eq!(predict(&m, data.matrix()), data.y);
    // One member of weight 1: a binary decision of +-2, probabilities
    // softmax(-1, 1) as scikit-learn.
    let p = proba(&m, data.matrix()).unwrap();
    let hi = 1.0 / (1.0 + (-2.0f64).exp());
    assert!((f64::from(p.data[1]) - (1.0 - hi)).abs() < 1e-6, "{p:?}");
    assert!((f64::from(p.data[11]) - hi).abs() < 1e-6, "{p:?}");
}

#[test]
fn a_first_member_no_better_than_chance_is_an_error() {
    let data = Data::line(&[0, 1, 0, 1, 0, 1], 2);
    let e = fit_on(&fake_host(1), r#"{"estimator": "majority"}"#, &data)
        .err()
        .unwrap();
    assert_eq!(e.kind, ErrorKind::INVALID_INPUT);
    assert!(
        e.message
            .contains("first member (`majority`) is no better than chance"),
        "{e}"
    );
}

#[test]
fn a_later_member_no_better_than_chance_is_dropped() {
    // `majority` ignores the weights and repeats itself; with a learning
    // rate of 2 its second round's error is 0.8 >= 2/3.
    let data = Data::line(&[0, 0, 0, 0, 0, 1, 1, 1, 2, 2], 3);
    let m = fit(
        1,
        r#"{"estimator": "majority", "learning_rate": 2.0}"#,
        &data,
    );
    let s = summary(&m);
    assert_eq!(s["n_members"], 1);
    assert_eq!(s["stopped"], "no_better_than_chance");
    assert_close(&numbers(&s["estimator_errors"]), &[0.5], 1e-12);
    assert_close(&numbers(&s["estimator_weights"]), &[2.0 * 2f64.ln()], 1e-12);
    assert_eq!(predict(&m, data.matrix()), vec![0.0; 10]);
}

#[test]
fn every_round_runs_when_nothing_stops_it() {
    let case = testkit::classification(60, 3, 3, 5);
    let m = fit(
        2,
        r#"{"n_estimators": 7, "random_state": 1}"#,
        &Data::from_case(&case),
    );
    let s = summary(&m);
    assert_eq!(s["n_members"], 7);
    assert_eq!(s["n_estimators"], 7);
    assert_eq!(s["stopped"], "n_estimators");
    assert_eq!(s["random_state"], 1);
    assert!(numbers(&s["estimator_weights"]).iter().all(|&w| w > 0.0));
}

#[test]
fn members_get_their_own_seed_unless_the_user_set_one() {
    let data = Data::line(&[0, 0, 1, 0, 1, 1, 0, 1], 2);
    let s = summary(&fit(1, r#"{"n_estimators": 3, "random_state": 4}"#, &data));
    assert_eq!(s["member_seeds"], true);
    let seed = s["first_member"]["summary"]["random_state"]
        .as_u64()
        .unwrap();
    assert_eq!(seed, tessera_core::plugin::seeds::member_seed(4, 0));
    let s = summary(&fit(
        1,
        r#"{"n_estimators": 3, "estimator_params": {"random_state": 9}}"#,
        &data,
    ));
    assert_eq!(s["member_seeds"], false);
    assert_eq!(s["first_member"]["summary"]["random_state"], 9);
    assert_eq!(s["estimator_params"]["max_depth"], 1);
    let s = summary(&fit(
        1,
        r#"{"estimator": "majority", "n_estimators": 1}"#,
        &Data::line(&[0, 0, 0, 1], 2),
    ));
    assert_eq!(s["member_seeds"], false);
}

#[test]
fn members_get_the_whole_thread_budget() {
    let data = Data::line(&[0, 0, 1, 0, 1, 1, 0, 1], 2);
    for threads in [1, 3] {
        let s = summary(&fit(threads, r#"{"n_estimators": 2}"#, &data));
        assert_eq!(s["first_member"]["summary"]["threads"], threads);
    }
}

#[test]
fn a_fixed_seed_gives_the_same_model_on_any_thread_count() {
    let cls = Data::from_case(&testkit::classification(90, 4, 3, 1));
    let reg = Data::from_case(&testkit::regression(80, 3, 2));
    for data in [&cls, &reg] {
        let params = r#"{"n_estimators": 6, "random_state": 7}"#;
        let a = summary(&fit(1, params, data));
        let b = summary(&fit(3, params, data));
        // The test stump records its thread budget; nothing else differs.
        for key in ["estimator_weights", "estimator_errors", "n_members"] {
            assert_eq!(a[key], b[key], "{key}");
        }
        let (a, b) = (fit(1, params, data), fit(3, params, data));
        assert_eq!(predict(&a, data.matrix()), predict(&b, data.matrix()));
    }
}

#[test]
fn progress_counts_rounds_and_ends_full() {
    let host = fake_host(1);
    let data = Data::line(&[0, 0, 0, 1, 1, 1], 2);
    fit_on(&host, r#"{"n_estimators": 4}"#, &data).unwrap();
    // A perfect first member: the bar still ends at 4 of 4.
    assert_eq!(*host.progress.lock().unwrap(), vec![(1, 4), (4, 4)]);
    assert!(
        host.logs
            .lock()
            .unwrap()
            .iter()
            .any(|(l, m)| *l == level::DEBUG && m.contains("stopped after 1 of 4 members"))
    );
}

#[test]
fn cancellation_stops_training() {
    let host = fake_host(1);
    host.cancelled
        .store(true, std::sync::atomic::Ordering::Relaxed);
    let e = fit_on(&host, "{}", &Data::line(&[0, 1, 0, 1], 2))
        .err()
        .unwrap();
    assert_eq!(e.kind, ErrorKind::CANCELLED);
}

#[test]
fn base_learner_errors_name_the_member() {
    let data = Data::line(&[0, 0, 1, 0, 1, 1], 2);
    let host = fake_host(1);
    let e = fit_on(&host, r#"{"estimator": "nope"}"#, &data)
        .err()
        .unwrap();
    assert!(
        e.message
            .contains("adaboost: cannot create the base learner `nope`"),
        "{e}"
    );
    let e = fit_on(&host, r#"{"estimator_params": {"max_dept": 2}}"#, &data)
        .err()
        .unwrap();
    assert_eq!(e.kind, ErrorKind::INVALID_PARAMS);
    assert!(e.message.contains("max_dept"), "{e}");
    let e = fit_on(&host, r#"{"estimator": "boom"}"#, &data)
        .err()
        .unwrap();
    assert_eq!(e.kind, ErrorKind::INVALID_INPUT);
    assert!(
        e.message
            .contains("adaboost: training member 0 (`boom`) failed: boom cannot learn"),
        "{e}"
    );
    let e = fit_on(&host, r#"{"estimator": "liar"}"#, &data)
        .err()
        .unwrap();
    assert_eq!(e.kind, ErrorKind::INTERNAL);
    assert!(e.message.contains("not a class index below 2"), "{e}");
    let reg = Data::from_case(&testkit::regression(20, 2, 1));
    let e = fit_on(&host, r#"{"estimator": "liar"}"#, &reg)
        .err()
        .unwrap();
    assert!(
        e.message.contains("predicted NaN for training row 0"),
        "{e}"
    );
}

#[test]
fn a_loss_for_classification_is_refused_at_fit() {
    let data = Data::line(&[0, 0, 1, 0, 1, 1], 2);
    let e = fit_on(&fake_host(1), r#"{"loss": "square"}"#, &data)
        .err()
        .unwrap();
    assert_eq!(e.kind, ErrorKind::INVALID_PARAMS);
    assert!(e.message.contains("`adaboost` parameter `loss`"), "{e}");
}

#[test]
fn zero_total_weight_is_refused() {
    let data = Data::line(&[0, 1, 0, 1], 2).weighted(&[0.0; 4]);
    let e = fit_on(&fake_host(1), "{}", &data).err().unwrap();
    assert_eq!(e.kind, ErrorKind::INVALID_INPUT);
    assert!(e.message.contains("sample weights sum to 0"), "{e}");
}

#[test]
fn model_contract() {
    // What the conformance kit checks, through the fake host (the kit's
    // own context cannot create base learners).
    let cls = Data::from_case(&testkit::classification(90, 4, 3, 1));
    let reg = Data::from_case(&testkit::regression(80, 3, 2));
    for data in [&cls, &reg] {
        let m = fit(1, r#"{"n_estimators": 10, "random_state": 0}"#, data);
        assert_eq!(m.task(), data.task);
        assert_eq!(m.n_features() as usize, data.cols);
        let pred = predict(&m, data.matrix());
        assert_eq!(pred.len(), data.rows());
        let wide = vec![0.0f32; 2 * (data.cols + 1)];
        let e = m
            .predict(
                fake_host(1).as_ref(),
                MatrixRef::new(&wide, 2, data.cols + 1).unwrap(),
            )
            .into_result()
            .unwrap_err();
        assert_eq!(e.kind, ErrorKind::INVALID_INPUT);
        assert!(predict(&m, MatrixRef::new(&[], 0, data.cols).unwrap()).is_empty());
        let nan = vec![f32::NAN; data.cols];
        let r = m
            .predict(
                fake_host(1).as_ref(),
                MatrixRef::new(&nan, 1, data.cols).unwrap(),
            )
            .into_result();
        assert!(r.is_ok(), "{:?}", r.err());
        if data.task.is_classification() {
            let right = pred.iter().zip(&data.y).filter(|(a, b)| a == b).count();
            assert!(right * 10 >= data.rows() * 8, "{right} right");
            let p = proba(&m, data.matrix()).unwrap();
            assert_eq!((p.rows as usize, p.cols as usize), (data.rows(), 3));
            for row in p.data.chunks(3) {
                let s: f32 = row.iter().sum();
                assert!((s - 1.0).abs() < 1e-5 && row.iter().all(|&v| v >= 0.0));
            }
        } else {
            let e = proba(&m, data.matrix()).unwrap_err();
            assert_eq!(e.kind, ErrorKind::UNSUPPORTED);
        }
    }
    let e = def()
        .create_learner("adaboost", r#"{"no_such_parameter_xyz": 1}"#)
        .err()
        .unwrap();
    assert_eq!(e.kind, ErrorKind::INVALID_PARAMS);
    assert!(e.message.contains("no_such_parameter_xyz"));
}
