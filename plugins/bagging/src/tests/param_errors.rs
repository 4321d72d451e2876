//! Parameter errors name the key at fault; base-learner errors keep their
//! kind and say which learner.

use serde_json::json;
use tessera_core::{ErrorKind, testkit};

use super::*;

fn refused(params: &str) -> PluginError {
    match def().create_learner("bagging", params) {
        Ok(_) => panic!("bagging accepted {params}"),
        Err(e) => {
            assert_eq!(e.kind, ErrorKind::INVALID_PARAMS, "{params}: {e}");
            e
        }
    }
}

#[test]
fn unknown_key_is_named() {
    let e = refused(r#"{"n_estimator": 3}"#);
    assert!(e.message.contains("unknown parameter `n_estimator`"), "{e}");
    assert!(e.message.contains("did you mean `n_estimators`"), "{e}");
}

#[test]
fn bad_values_are_named() {
    for (params, key) in [
        (r#"{"max_samples": 1.5}"#, "max_samples"),
        (r#"{"max_samples": 0}"#, "max_samples"),
        (r#"{"max_samples": 0.0}"#, "max_samples"),
        (r#"{"max_features": 0}"#, "max_features"),
        (r#"{"max_features": -2}"#, "max_features"),
        (r#"{"max_features": "sqrt"}"#, "max_features"),
        (r#"{"n_estimators": 0}"#, "n_estimators"),
        (r#"{"bootstrap": "yes"}"#, "bootstrap"),
        (r#"{"random_state": -1}"#, "random_state"),
        (r#"{"estimator": ""}"#, "estimator"),
        (r#"{"estimator": 7}"#, "estimator"),
        (r#"{"estimator": {"name": 7}}"#, "estimator"),
        (r#"{"estimator_params": 3}"#, "estimator_params"),
    ] {
        let e = refused(params);
        assert!(e.message.contains(&format!("`{key}`")), "{params}: {e}");
    }
    let e = refused(r#"{"max_samples": 1.5}"#);
    assert_eq!(
        e.message,
        "`bagging` parameter `max_samples`: expected int >= 1 | float in (0, 1], got 1.5"
    );
}

#[test]
fn oob_needs_bootstrap() {
    let e = refused(r#"{"oob_score": true, "bootstrap": false}"#);
    assert!(e.message.contains("`oob_score`"), "{e}");
    assert!(e.message.contains("bootstrap"), "{e}");
    assert!(
        def()
            .create_learner("bagging", r#"{"oob_score": true}"#)
            .is_ok()
    );
}

#[test]
fn both_estimator_forms_at_once() {
    let e = refused(r#"{"estimator": {"name": "knn", "k": 1}, "estimator_params": {"k": 2}}"#);
    assert!(e.message.contains("`estimator`"), "{e}");
    assert!(e.message.contains("`estimator_params`"), "{e}");
    // A table with only a name goes with estimator_params.
    assert!(
        def()
            .create_learner(
                "bagging",
                r#"{"estimator": {"name": "knn"}, "estimator_params": {"k": 2}}"#
            )
            .is_ok()
    );
}

#[test]
fn non_object_params_are_refused() {
    assert!(def().create_learner("bagging", "[1]").is_err());
    assert!(def().create_learner("bagging", "{").is_err());
}

#[test]
fn sizes_beyond_the_data_are_named_at_fit() {
    let case = testkit::classification(30, 4, 3, 1);
    let host = fake_host(1);
    let e = fit_on(&host, r#"{"estimator": "knn", "max_samples": 31}"#, &case)
        .err()
        .unwrap();
    assert_eq!(e.kind, ErrorKind::INVALID_PARAMS);
    assert_eq!(
        e.message,
        "`bagging` parameter `max_samples`: 31 is more than the 30 rows of the data"
    );
    let e = fit_on(&host, r#"{"estimator": "knn", "max_features": 5}"#, &case)
        .err()
        .unwrap();
    assert_eq!(e.kind, ErrorKind::INVALID_PARAMS);
    assert!(
        e.message
            .contains("`max_features`: 5 is more than the 4 feature columns"),
        "{e}"
    );
    assert!(
        fit_on(
            &host,
            r#"{"estimator": "knn", "max_samples": 30, "max_features": 4}"#,
            &case
        )
        .is_ok()
    );
}

#[test]
fn base_learner_errors_keep_their_kind() {
    let case = testkit::classification(30, 4, 3, 1);
    let host = fake_host(2);

    let e = fit_on(&host, r#"{"estimator": "nope"}"#, &case)
        .err()
        .unwrap();
    assert_eq!(e.kind, ErrorKind::UNSUPPORTED, "{e}");
    assert!(
        e.message.contains("cannot create the base learner `nope`"),
        "{e}"
    );
    assert!(e.message.contains("no learner `nope`"), "{e}");

    let e = fit_on(
        &host,
        r#"{"estimator": "knn", "estimator_params": {"k": 0}}"#,
        &case,
    )
    .err()
    .unwrap();
    assert_eq!(e.kind, ErrorKind::INVALID_PARAMS, "{e}");
    assert!(e.message.contains("`knn` parameter `k`"), "{e}");

    let e = fit_on(&host, r#"{"estimator": {"name": "knn", "kk": 1}}"#, &case)
        .err()
        .unwrap();
    assert_eq!(e.kind, ErrorKind::INVALID_PARAMS, "{e}");
    assert!(
        e.message.contains("unknown parameter `kk` for `knn`"),
        "{e}"
    );

    let e = fit_on(&host, r#"{"estimator": "boom"}"#, &case)
        .err()
        .unwrap();
    assert_eq!(e.kind, ErrorKind::INVALID_INPUT, "{e}");
    assert!(e.message.contains("training member"), "{e}");
    assert!(e.message.contains("boom: cannot learn this"), "{e}");

    // Without a host, nothing can be created.
    let learner = def().create_learner("bagging", "").unwrap();
    let null = tessera_core::NullContext::default();
    let e = learner
        .fit(null.as_ref(), case.data())
        .into_result()
        .err()
        .unwrap();
    assert_eq!(e.kind, ErrorKind::UNSUPPORTED);
    assert!(e.message.contains("decision_tree"), "{e}");
}

#[test]
fn the_estimator_table_form_configures_the_base_learner() {
    let case = testkit::classification(30, 4, 3, 1);
    let m = fit(
        1,
        r#"{"estimator": {"name": "knn", "k": 1}, "n_estimators": 2}"#,
        &case,
    );
    let s = summary(&m);
    assert_eq!(s["estimator"], "knn");
    assert_eq!(s["estimator_params"], json!({"k": 1}));
    assert_eq!(s["members"][0]["summary"]["k"], 1);
    let m = fit(
        1,
        r#"{"estimator": "knn", "estimator_params": {"k": 2}, "n_estimators": 2}"#,
        &case,
    );
    assert_eq!(summary(&m)["members"][1]["summary"]["k"], 2);
}
