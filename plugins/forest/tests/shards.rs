//! Forests trained in shards (`shard = [I, N]`): each shard grows the
//! whole forest's trees at its indices, and the shards' payloads back to
//! back load as the whole forest.

mod common;

use common::{blobs, fit, proba};
use serde_json::Value;
use tessera_core::{ErrorKind, ModelBox, PluginError};

fn bytes(m: &ModelBox) -> Vec<u8> {
    m.to_bytes().unwrap().into_vec()
}

fn describe(m: &ModelBox) -> Value {
    serde_json::from_str(&m.describe()).unwrap()
}

fn load(b: &[u8]) -> Result<ModelBox, PluginError> {
    tessera_forest::plugin().load_model("random_forest", b)
}

/// The shards `1..=n` of `params` (a JSON object without its braces).
fn shards(params: &str, n: usize, data: &common::Data) -> Vec<ModelBox> {
    (1..=n)
        .map(|i| fit(&format!(r#"{{{params}, "shard": [{i}, {n}]}}"#), data, 2).unwrap())
        .collect()
}

fn joined(parts: &[&ModelBox]) -> Vec<u8> {
    parts.iter().flat_map(|m| bytes(m)).collect()
}

#[test]
fn joined_shards_are_the_whole_forest() {
    let data = blobs(200, 3);
    let params = r#""n_estimators": 10, "random_state": 7, "max_depth": 5"#;
    let whole = fit(&format!("{{{params}}}"), &data, 3).unwrap();
    let parts = shards(params, 4, &data);
    let sizes: Vec<Value> = parts
        .iter()
        .map(|m| describe(m)["n_estimators"].clone())
        .collect();
    assert_eq!(sizes, [3, 3, 2, 2]);
    assert_eq!(
        describe(&parts[1])["params"]["estimator_range"],
        serde_json::json!([3, 6])
    );
    assert_eq!(describe(&parts[1])["params"]["n_estimators"], 10);
    let merged = load(&joined(&parts.iter().collect::<Vec<_>>())).unwrap();
    assert_eq!(
        proba(&merged, data.matrix(), 2),
        proba(&whole, data.matrix(), 2)
    );
    let (m, w) = (describe(&merged), describe(&whole));
    assert_eq!(m["params"], w["params"]);
    assert_eq!(m["n_estimators"], 10);
    let (mi, wi) = (
        m["feature_importances"].as_array().unwrap(),
        w["feature_importances"].as_array().unwrap(),
    );
    for (a, b) in mi.iter().zip(wi) {
        assert!((a.as_f64().unwrap() - b.as_f64().unwrap()).abs() < 1e-12);
    }
    // Saved again, the joined forest is a plain forest: the whole one's bytes
    // but for the rounding of the importances.
    assert_eq!(bytes(&merged).len(), bytes(&whole).len());
    assert!(bytes(&load(&bytes(&merged)).unwrap()) == bytes(&merged));
}

#[test]
fn a_shard_alone_is_a_smaller_forest_and_one_of_one_is_whole() {
    let data = blobs(120, 3);
    let params = r#""n_estimators": 6, "random_state": 3"#;
    let parts = shards(params, 3, &data);
    let back = load(&bytes(&parts[1])).unwrap();
    assert!(bytes(&back) == bytes(&parts[1]));
    assert_eq!(
        describe(&back)["params"]["shard"],
        serde_json::json!([2, 3])
    );
    let whole = fit(&format!("{{{params}}}"), &data, 1).unwrap();
    let one = shards(params, 1, &data);
    let joined = load(&bytes(&one[0])).unwrap();
    assert_eq!(describe(&joined)["params"], describe(&whole)["params"]);
    assert_eq!(
        proba(&joined, data.matrix(), 1),
        proba(&whole, data.matrix(), 1)
    );
}

#[test]
fn shards_that_do_not_make_one_forest_are_refused() {
    let data = blobs(120, 3);
    let params = r#""n_estimators": 6, "random_state": 3"#;
    let p = shards(params, 3, &data);
    let other_seed = shards(r#""n_estimators": 6, "random_state": 4"#, 3, &data);
    let plain = fit(&format!("{{{params}}}"), &data, 1).unwrap();
    for (parts, why) in [
        (vec![&p[0], &p[1]], "2 of the 3 shards were given"),
        (
            vec![&p[0], &p[2], &p[1]],
            "shard 2/3 is missing or out of order",
        ),
        (
            vec![&p[0], &p[0], &p[2]],
            "shard 2/3 is missing or out of order",
        ),
        (
            vec![&p[0], &other_seed[1], &p[2]],
            "belongs to another forest",
        ),
        (
            vec![&p[0], &plain],
            "part 2 of the joined payload is not a shard",
        ),
    ] {
        let e = load(&joined(&parts)).err().unwrap();
        assert_eq!(e.kind, ErrorKind::CORRUPT_MODEL, "{e}");
        assert!(e.message.contains(why), "{why}: {e}");
    }
    // A plain forest followed by anything is still refused as before.
    let e = load(&joined(&[&plain, &p[0]])).err().unwrap();
    assert!(
        e.message.contains("unexpected bytes after the last tree"),
        "{e}"
    );
}

#[test]
fn shard_parameter_errors() {
    let data = blobs(60, 3);
    for (params, why) in [
        (
            r#"{"n_estimators": 3, "random_state": 1, "shard": [1, 4]}"#,
            "`random_forest` parameter `shard`: 4 shards are more than the 3 estimators",
        ),
        (
            r#"{"n_estimators": 3, "shard": [1, 2]}"#,
            "`random_forest` parameter `shard`: needs a fixed `random_state`",
        ),
        (
            r#"{"n_estimators": 3, "random_state": 1, "oob_score": true, "shard": [1, 2]}"#,
            "`random_forest` parameter `oob_score`: cannot be computed in shards",
        ),
        (
            r#"{"shard": [0, 2]}"#,
            "`random_forest` parameter `shard`: expected [I, N] with 1 <= I <= N | null, got [0,2]",
        ),
    ] {
        let e = fit(params, &data, 1).err().unwrap();
        assert_eq!(e.kind, ErrorKind::INVALID_PARAMS, "{e}");
        assert!(e.message.contains(why), "{params}: {e}");
    }
    let e = tessera_forest::plugin()
        .create_learner("decision_tree", r#"{"shard": [1, 2]}"#)
        .err()
        .unwrap();
    assert!(e.message.contains("unknown parameter `shard`"), "{e}");
}
