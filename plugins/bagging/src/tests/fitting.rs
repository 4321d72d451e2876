//! Sampling, seeds, determinism, the thread budget, progress and
//! cancellation.

use serde_json::json;
use tessera_core::{ErrorKind, abi_stable::std_types::ROption, testkit};

use super::*;

fn members(m: &ModelBox) -> Vec<Value> {
    summary(m)["members"].as_array().unwrap().clone()
}

#[test]
fn bootstrap_draws_rows_with_replacement() {
    let case = testkit::classification(60, 4, 3, 1);
    let m = fit(
        1,
        r#"{"estimator": "knn", "n_estimators": 4, "random_state": 3}"#,
        &case,
    );
    for s in members(&m) {
        let s = &s["summary"];
        assert_eq!(s["rows"], 60);
        let distinct = s["distinct_rows"].as_u64().unwrap();
        assert!((28..55).contains(&distinct), "{distinct} distinct rows");
        assert_eq!(s["features"], json!(["f0", "f1", "f2", "f3"]));
    }
    assert_eq!(members(&m)[0]["features"], "all");
}

#[test]
fn without_bootstrap_rows_are_distinct() {
    let case = testkit::classification(60, 4, 3, 1);
    let m = fit(
        1,
        r#"{"estimator": "knn", "n_estimators": 3, "bootstrap": false, "max_samples": 0.5}"#,
        &case,
    );
    for s in members(&m) {
        assert_eq!(s["summary"]["rows"], 30);
        assert_eq!(s["summary"]["distinct_rows"], 30);
    }
    let m = fit(
        1,
        r#"{"estimator": "knn", "n_estimators": 2, "bootstrap": false, "max_samples": 17}"#,
        &case,
    );
    assert_eq!(members(&m)[0]["summary"]["distinct_rows"], 17);
    // Every row once: the members see the data as given.
    let m = fit(
        1,
        r#"{"estimator": "knn", "n_estimators": 2, "bootstrap": false}"#,
        &case,
    );
    for s in members(&m) {
        assert_eq!(s["summary"]["rows"], 60);
        assert_eq!(s["summary"]["distinct_rows"], 60);
    }
    assert_eq!(summary(&m)["samples_per_member"], 60);
}

#[test]
fn feature_subsets_reach_the_members() {
    let case = testkit::classification(40, 5, 2, 4);
    let m = fit(
        1,
        r#"{"estimator": "knn", "n_estimators": 6, "max_features": 2, "random_state": 1}"#,
        &case,
    );
    let mut seen = std::collections::BTreeSet::new();
    for s in members(&m) {
        let f: Vec<u64> = s["features"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_u64().unwrap())
            .collect();
        assert_eq!(f.len(), 2);
        assert!(f[0] < f[1] && f[1] < 5, "{f:?}");
        let names: Vec<String> = f.iter().map(|i| format!("f{i}")).collect();
        assert_eq!(s["summary"]["features"], json!(names));
        seen.insert(f);
    }
    assert!(seen.len() > 1, "members drew the same columns: {seen:?}");
    assert_eq!(summary(&m)["features_per_member"], 2);
    // The model still takes every column.
    assert_eq!(m.n_features(), 5);
    assert_eq!(predict(&m, case.matrix()).len(), 40);

    let m = fit(
        1,
        r#"{"estimator": "knn", "n_estimators": 10, "max_features": 0.6, "bootstrap_features": true, "random_state": 2}"#,
        &case,
    );
    let repeats = members(&m).iter().any(|s| {
        let f = s["features"].as_array().unwrap();
        f.len() == 3 && f.windows(2).any(|w| w[0] == w[1])
    });
    assert!(repeats, "bootstrap_features never repeated a column");
}

#[test]
fn a_fixed_seed_gives_the_same_model_on_any_thread_count() {
    let case = testkit::classification(60, 4, 3, 1);
    let params =
        r#"{"estimator": "knn", "n_estimators": 7, "max_features": 0.75, "random_state": 11}"#;
    let a = fit(1, params, &case);
    let b = fit(1, params, &case);
    let c = fit(2, params, &case);
    let d = fit(4, params, &case);
    let pa = predict(&a, case.matrix());
    assert_eq!(bytes(&a), bytes(&b));
    assert_eq!(bytes(&a), bytes(&c));
    assert_eq!(bytes(&a), bytes(&d));
    assert_eq!(pa, predict(&c, case.matrix()));
    assert_eq!(summary(&a)["random_state"], 11);

    let other = fit(1, &params.replace("11", "12"), &case);
    assert_ne!(bytes(&a), bytes(&other));

    // Without a seed, one is drawn and recorded; it reproduces the model.
    let free = fit(2, r#"{"estimator": "knn", "n_estimators": 3}"#, &case);
    let seed = summary(&free)["random_state"].as_u64().unwrap();
    let again = fit(
        1,
        &json!({"estimator": "knn", "n_estimators": 3, "random_state": seed}).to_string(),
        &case,
    );
    assert_eq!(bytes(&free), bytes(&again));
}

#[test]
fn members_get_their_own_seed_unless_the_user_set_one() {
    let case = testkit::classification(30, 4, 3, 1);
    let m = fit(
        1,
        r#"{"estimator": "knn", "n_estimators": 4, "random_state": 5}"#,
        &case,
    );
    let seeds: Vec<u64> = members(&m)
        .iter()
        .map(|s| s["summary"]["random_state"].as_u64().unwrap())
        .collect();
    let mut distinct = seeds.clone();
    distinct.sort_unstable();
    distinct.dedup();
    assert_eq!(distinct.len(), 4, "{seeds:?}");
    assert_eq!(summary(&m)["member_seeds"], true);

    let m = fit(
        1,
        r#"{"estimator": "knn", "n_estimators": 3, "estimator_params": {"random_state": 9}}"#,
        &case,
    );
    for s in members(&m) {
        assert_eq!(s["summary"]["random_state"], 9);
    }
    assert_eq!(summary(&m)["member_seeds"], false);

    // A learner without random_state works, unseeded.
    let host = fake_host(1);
    let m = fit_on(&host, r#"{"estimator": "stump", "n_estimators": 3}"#, &case).unwrap();
    assert_eq!(summary(&m)["member_seeds"], false);
    assert!(
        host.logs()
            .iter()
            .any(|(_, msg)| msg.contains("`stump` takes no random_state")),
        "{:?}",
        host.logs()
    );
}

#[test]
fn members_share_the_thread_budget() {
    let case = testkit::regression(20, 2, 1);
    let m = fit(4, r#"{"estimator": "probe", "n_estimators": 2}"#, &case);
    assert!(predict(&m, case.matrix()).iter().all(|&v| v == 2.0));
    let m = fit(2, r#"{"estimator": "probe", "n_estimators": 10}"#, &case);
    assert!(predict(&m, case.matrix()).iter().all(|&v| v == 1.0));
    let m = fit(3, r#"{"estimator": "probe", "n_estimators": 1}"#, &case);
    assert!(predict(&m, case.matrix()).iter().all(|&v| v == 3.0));
    // Nested: 8 threads over 2 baggings of 2 members each.
    let m = fit(
        8,
        r#"{"estimator": "bagging", "n_estimators": 2,
            "estimator_params": {"estimator": "probe", "n_estimators": 2}}"#,
        &case,
    );
    assert!(predict(&m, case.matrix()).iter().all(|&v| v == 2.0));
}

#[test]
fn progress_counts_members() {
    let case = testkit::classification(30, 4, 3, 1);
    for threads in [1, 2] {
        let host = fake_host(threads);
        fit_on(&host, r#"{"estimator": "knn", "n_estimators": 5}"#, &case).unwrap();
        let mut p = host.progress.lock().unwrap().clone();
        assert_eq!(p.len(), 5);
        assert!(p.iter().all(|&(_, t)| t == 5));
        p.sort_unstable();
        assert_eq!(p.last(), Some(&(5, 5)));
    }
}

#[test]
fn cancellation_stops_training() {
    let case = testkit::classification(30, 4, 3, 1);
    for threads in [1, 2] {
        let host = fake_host(threads);
        host.cancel();
        let e = fit_on(&host, r#"{"estimator": "knn"}"#, &case)
            .err()
            .unwrap();
        assert_eq!(e.kind, ErrorKind::CANCELLED);
    }
}

#[test]
fn weights_follow_the_drawn_rows() {
    let case = testkit::regression(40, 3, 2);
    let weights = vec![2.0f32; 40];
    let host = fake_host(1);
    let learner = def()
        .create_learner(
            "bagging",
            r#"{"estimator": "knn", "n_estimators": 2, "max_samples": 10, "bootstrap": false}"#,
        )
        .unwrap();
    let mut data = case.data();
    data.weights = ROption::RSome(weights.as_slice().into());
    let m = learner.fit(host.as_ref(), data).into_result().unwrap();
    for s in members(&m) {
        assert_eq!(s["summary"]["weight_sum"], 20.0);
    }
}
