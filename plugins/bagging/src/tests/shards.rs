//! Ensembles trained in shards: each shard trains the whole ensemble's
//! members at its indices, and the shards' bytes back to back load as the
//! whole ensemble.

use serde_json::json;
use tessera_core::{ErrorKind, testkit};

use super::*;

/// Shards `1..=n` of bagging with `params` (a JSON object without braces).
fn shards(params: &str, n: usize, case: &testkit::Case) -> Vec<ModelBox> {
    (1..=n)
        .map(|i| fit(2, &format!(r#"{{{params}, "shard": [{i}, {n}]}}"#), case))
        .collect()
}

fn joined(parts: &[&ModelBox]) -> Vec<u8> {
    parts.iter().flat_map(|m| bytes(m)).collect()
}

#[test]
fn joined_shards_are_the_whole_ensemble() {
    let cls = testkit::classification(90, 5, 3, 4);
    let reg = testkit::regression(80, 4, 5);
    for (case, params, voting) in [
        (
            &cls,
            r#""estimator": "knn", "n_estimators": 7, "max_features": 3, "random_state": 11"#,
            "soft",
        ),
        (
            &cls,
            r#""estimator": "knn", "estimator_params": {"proba": false}, "n_estimators": 5,
               "bootstrap_features": true, "random_state": 2"#,
            "hard",
        ),
        (
            &cls,
            r#""estimator": "stump", "n_estimators": 6, "max_samples": 0.5, "random_state": 3"#,
            "soft",
        ),
        (
            &reg,
            r#""estimator": "knn", "n_estimators": 9, "random_state": 8"#,
            "mean",
        ),
    ] {
        let whole = fit(3, &format!("{{{params}}}"), case);
        let parts = shards(params, 3, case);
        let sizes: Vec<_> = parts
            .iter()
            .map(|m| summary(m)["n_members"].clone())
            .collect();
        let n = summary(&whole)["n_members"].as_u64().unwrap();
        assert_eq!(sizes.iter().map(|v| v.as_u64().unwrap()).sum::<u64>(), n);
        assert_eq!(summary(&parts[0])["shard"], json!([1, 3]));
        let merged = load_on(&fake_host(2), &joined(&parts.iter().collect::<Vec<_>>()))
            .unwrap_or_else(|e| panic!("{params}: {e}"));
        assert_eq!(summary(&merged)["voting"], voting, "{params}");
        assert_eq!(summary(&merged), summary(&whole), "{params}");
        assert_eq!(bytes(&merged), bytes(&whole), "{params}");
        assert_eq!(
            predict(&merged, case.matrix()),
            predict(&whole, case.matrix())
        );
        if case.task.is_classification() {
            assert_eq!(
                proba(&merged, case.matrix()).unwrap(),
                proba(&whole, case.matrix()).unwrap()
            );
        }
    }
}

#[test]
fn a_shard_alone_stays_a_shard_and_one_of_one_is_whole() {
    let case = testkit::classification(60, 4, 2, 1);
    let params = r#""estimator": "knn", "n_estimators": 4, "random_state": 5"#;
    let parts = shards(params, 2, &case);
    let back = load_on(&fake_host(1), &bytes(&parts[1])).unwrap();
    assert_eq!(bytes(&back), bytes(&parts[1]));
    assert_eq!(summary(&back)["estimator_range"], json!([2, 4]));
    let whole = fit(1, &format!("{{{params}}}"), &case);
    let one = shards(params, 1, &case);
    let back = load_on(&fake_host(1), &bytes(&one[0])).unwrap();
    assert_eq!(bytes(&back), bytes(&whole));
}

#[test]
fn shards_that_do_not_make_one_ensemble_are_refused() {
    let case = testkit::classification(60, 4, 2, 1);
    let params = r#""estimator": "knn", "n_estimators": 6, "random_state": 5"#;
    let p = shards(params, 3, &case);
    let other = shards(
        r#""estimator": "knn", "n_estimators": 6, "random_state": 6"#,
        3,
        &case,
    );
    let plain = fit(1, &format!("{{{params}}}"), &case);
    for (parts, why) in [
        (vec![&p[0], &p[1]], "2 of the 3 shards were given"),
        (
            vec![&p[1], &p[0], &p[2]],
            "shard 1/3 is missing or out of order",
        ),
        (
            vec![&p[0], &p[2], &p[2]],
            "shard 2/3 is missing or out of order",
        ),
        (vec![&p[0], &other[1], &p[2]], "belongs to another ensemble"),
        (
            vec![&p[0], &plain],
            "part 2 of the joined payload is not a shard",
        ),
    ] {
        let e = load_on(&fake_host(1), &joined(&parts)).err().unwrap();
        assert_eq!(e.kind, ErrorKind::CORRUPT_MODEL, "{e}");
        assert!(e.message.contains(why), "{why}: {e}");
    }
    let e = load_on(&fake_host(1), &joined(&[&plain, &p[0]]))
        .err()
        .unwrap();
    assert!(e.message.contains("unexpected bytes at the end"), "{e}");
}

#[test]
fn shard_parameter_errors() {
    let case = testkit::classification(40, 3, 2, 1);
    for (params, why) in [
        (
            r#"{"estimator": "knn", "n_estimators": 2, "random_state": 1, "shard": [3, 3]}"#,
            "`bagging` parameter `shard`: 3 shards are more than the 2 estimators",
        ),
        (
            r#"{"estimator": "knn", "n_estimators": 2, "shard": [1, 2]}"#,
            "`bagging` parameter `shard`: needs a fixed `random_state`",
        ),
        (
            r#"{"estimator": "knn", "random_state": 1, "oob_score": true, "shard": [1, 2]}"#,
            "`bagging` parameter `oob_score`: cannot be computed in shards",
        ),
        (
            r#"{"shard": "1/2"}"#,
            "`bagging` parameter `shard`: expected [I, N] with 1 <= I <= N | null, got \"1/2\"",
        ),
    ] {
        let e = fit_on(&fake_host(1), params, &case).err().unwrap();
        assert_eq!(e.kind, ErrorKind::INVALID_PARAMS, "{e}");
        assert!(e.message.contains(why), "{params}: {e}");
    }
}
