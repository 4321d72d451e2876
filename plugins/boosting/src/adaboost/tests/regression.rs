//! AdaBoost.R2: resampled members, early termination, losses, the weighted
//! median.

use tessera_core::{
    Task,
    testkit::{self, r2},
};

use super::*;

/// `y = x` on one feature: stumps need many rounds.
fn ramp(n: usize) -> Data {
    let x: Vec<f32> = (0..n).map(|i| i as f32).collect();
    Data::new(x.clone(), x, 1, Task::regression())
}

#[test]
fn members_fit_weighted_resamples_without_weights() {
    let data = ramp(40);
    let m = fit(1, r#"{"n_estimators": 20, "random_state": 3}"#, &data);
    let s = summary(&m);
    assert_eq!(s["algorithm"], "AdaBoost.R2");
    assert_eq!(s["loss"], "linear");
    assert_eq!(s["estimator_params"]["max_depth"], 3);
    let first = &s["first_member"]["summary"];
    assert_eq!(first["rows"], 40);
    assert!(first["weights"].is_null(), "{first}");
    let n = s["n_members"].as_u64().unwrap() as usize;
    assert!(n > 1, "{s}");
    assert_eq!(numbers(&s["estimator_weights"]).len(), n);
    let errors = numbers(&s["estimator_errors"]);
    assert!(errors.iter().all(|&e| e > 0.0 && e < 0.5), "{errors:?}");
    let score = r2(&predict(&m, data.matrix()), &data.y);
    assert!(score > 0.7, "{score}");
}

#[test]
fn the_resamples_follow_random_state() {
    let data = Data::from_case(&testkit::regression(60, 3, 4));
    let a = fit(1, r#"{"n_estimators": 5, "random_state": 1}"#, &data);
    let b = fit(1, r#"{"n_estimators": 5, "random_state": 1}"#, &data);
    let c = fit(1, r#"{"n_estimators": 5, "random_state": 2}"#, &data);
    assert_eq!(bytes(&a), bytes(&b));
    assert_ne!(
        summary(&a)["estimator_errors"],
        summary(&c)["estimator_errors"]
    );
}

#[test]
fn zero_weight_rows_are_never_drawn() {
    // Only the first ten rows carry weight: every member sees copies of
    // them alone, so rows 10.. (y = 100) never pull the leaves up.
    let mut data = ramp(20);
    data.y[10..].iter_mut().for_each(|v| *v = 100.0);
    let w: Vec<f32> = (0..20).map(|i| if i < 10 { 1.0 } else { 0.0 }).collect();
    let data = data.weighted(&w);
    let m = fit(1, r#"{"n_estimators": 5, "random_state": 0}"#, &data);
    let q = MatrixRef::new(&data.x[..10], 10, 1).unwrap();
    assert!(predict(&m, q).iter().all(|&p| p < 10.0));
}

#[test]
fn a_perfect_member_ends_boosting() {
    let x: Vec<f32> = (0..8).map(|i| i as f32).collect();
    let data = Data::new(x, vec![2.5; 8], 1, Task::regression());
    let m = fit(1, r#"{"n_estimators": 5}"#, &data);
    let s = summary(&m);
    assert_eq!(s["stopped"], "perfect_fit");
    assert_eq!(numbers(&s["estimator_weights"]), vec![1.0]);
    assert_eq!(predict(&m, data.matrix()), vec![2.5; 8]);
}

#[test]
fn a_useless_first_member_is_kept_with_weight_zero() {
    // `majority` predicts 0 for a target of 5s and 6s: scaled errors 5/6
    // and 1, an error of 11/12 >= 0.5.
    let x: Vec<f32> = (0..6).map(|i| i as f32).collect();
    let data = Data::new(x, vec![5.0, 6.0, 5.0, 6.0, 5.0, 6.0], 1, Task::regression());
    let m = fit(1, r#"{"estimator": "majority"}"#, &data);
    let s = summary(&m);
    assert_eq!(s["n_members"], 1);
    assert_eq!(s["stopped"], "no_better_than_chance");
    assert_eq!(numbers(&s["estimator_weights"]), vec![0.0]);
    assert_eq!(predict(&m, data.matrix()), vec![0.0; 6]);
}

#[test]
fn losses_change_the_ensemble() {
    let data = Data::from_case(&testkit::regression(60, 3, 4));
    let errors = |loss: &str| {
        let params = format!(r#"{{"n_estimators": 4, "random_state": 1, "loss": "{loss}"}}"#);
        let s = summary(&fit(1, &params, &data));
        assert_eq!(s["loss"], loss);
        numbers(&s["estimator_errors"])
    };
    let (lin, sq, exp) = (errors("linear"), errors("square"), errors("exponential"));
    // Scaled errors lie in [0, 1]: squaring shrinks them, and so does
    // 1 - exp(-e) < e.
    assert!(sq[0] < lin[0] && exp[0] < lin[0], "{lin:?} {sq:?} {exp:?}");
}

#[test]
fn predictions_are_the_weighted_median_of_the_members() {
    let data = ramp(30);
    let m = fit(1, r#"{"n_estimators": 6, "random_state": 5}"#, &data);
    // Round trip each member through the bytes to predict with it alone.
    let s = summary(&m);
    let weights = numbers(&s["estimator_weights"]);
    let members = members_of(&m);
    assert_eq!(members.len(), weights.len());
    let preds: Vec<Vec<f32>> = members
        .iter()
        .map(|mm| predict(mm, data.matrix()))
        .collect();
    let got = predict(&m, data.matrix());
    for r in 0..data.rows() {
        let mut pairs: Vec<(f32, f64)> = preds.iter().map(|p| p[r]).zip(weights.clone()).collect();
        pairs.sort_by(|a, b| a.0.total_cmp(&b.0));
        let total: f64 = weights.iter().sum();
        let mut acc = 0.0;
        let want = pairs
            .iter()
            .find(|(_, w)| {
                acc += w;
                acc >= 0.5 * total
            })
            .unwrap()
            .0;
        assert_eq!(got[r], want, "row {r}");
    }
}

/// The members of `m`, loaded back from its bytes.
fn members_of(m: &ModelBox) -> Vec<ModelBox> {
    let b = bytes(m);
    let mut r = tessera_core::plugin::members::ByteReader::new(&b, "adaboost");
    r.take(6, "header").unwrap();
    r.u32("classes").unwrap();
    r.u32("features").unwrap();
    r.text("info").unwrap();
    let n = r.u32("count").unwrap();
    (0..n)
        .map(|_| {
            r.f64("w").unwrap();
            r.f64("e").unwrap();
            let (component, bytes) = r.member("m").unwrap();
            def().load_model(component, bytes).unwrap()
        })
        .collect()
}
