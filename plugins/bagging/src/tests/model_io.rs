//! Saving and loading: round trips through the host, absent member plugins,
//! damaged bytes.

use tessera_core::{ErrorKind, plugin::guard, testkit};

use super::*;

#[test]
fn round_trip_gives_identical_answers() {
    let cls = testkit::classification(90, 4, 3, 1);
    let reg = testkit::regression(80, 3, 2);
    for (case, params) in [
        (
            &cls,
            r#"{"estimator": "knn", "n_estimators": 4, "max_features": 3, "oob_score": true}"#,
        ),
        (
            &cls,
            r#"{"estimator": "knn", "estimator_params": {"proba": false}, "n_estimators": 3}"#,
        ),
        (
            &cls,
            r#"{"estimator": "stump", "bootstrap_features": true}"#,
        ),
        (
            &reg,
            r#"{"estimator": "knn", "n_estimators": 12, "max_samples": 0.5}"#,
        ),
        (
            &cls,
            r#"{"estimator": "bagging", "n_estimators": 2,
                "estimator_params": {"estimator": "knn", "n_estimators": 2, "max_features": 2}}"#,
        ),
    ] {
        let m = fit(2, params, case);
        let b = bytes(&m);
        let host = fake_host(1);
        let back = load_on(&host, &b).unwrap_or_else(|e| panic!("{params}: {e}"));
        assert_eq!(back.task(), m.task());
        assert_eq!(back.n_features(), m.n_features());
        assert_eq!(
            predict(&back, case.matrix()),
            predict(&m, case.matrix()),
            "{params}"
        );
        if case.task.is_classification() {
            assert_eq!(
                proba(&back, case.matrix()).unwrap(),
                proba(&m, case.matrix()).unwrap()
            );
        }
        assert_eq!(summary(&back), summary(&m), "{params}");
        assert_eq!(bytes(&back), b, "{params}: saving again changes the bytes");
    }
}

#[test]
fn large_ensembles_summarise_one_member() {
    let case = testkit::classification(30, 4, 3, 1);
    let m = fit(2, r#"{"estimator": "knn", "n_estimators": 12}"#, &case);
    let s = summary(&m);
    assert_eq!(s["n_members"], 12);
    assert_eq!(s["members"].as_array().unwrap().len(), 1);
    assert_eq!(s["members_omitted"], 11);
    assert_eq!(s["members"][0]["component"], "knn");
    let m = fit(2, r#"{"estimator": "knn", "n_estimators": 3}"#, &case);
    assert_eq!(summary(&m)["members"].as_array().unwrap().len(), 3);
}

#[test]
fn a_member_whose_plugin_is_absent_is_named() {
    let case = testkit::classification(30, 4, 3, 1);
    let m = fit(1, r#"{"estimator": "knn", "n_estimators": 2}"#, &case);
    let host = fake_host(1).without("knn");
    let e = load_on(&host, &bytes(&m)).err().unwrap();
    assert_eq!(e.kind, ErrorKind::UNSUPPORTED);
    assert!(
        e.message
            .starts_with("bagging member 0 needs learner `knn` (its plugin must be loaded): "),
        "{e}"
    );
    assert!(
        e.message
            .contains("no loaded plugin provides learner `knn`"),
        "{e}"
    );

    // Without any host.
    let e = def().load_model("bagging", &bytes(&m)).err().unwrap();
    assert!(e.message.contains("needs learner `knn`"), "{e}");
}

#[test]
fn a_member_that_refuses_its_bytes_keeps_the_error_kind() {
    let case = testkit::classification(30, 4, 3, 1);
    let m = fit(1, r#"{"estimator": "knn", "n_estimators": 2}"#, &case);
    let mut b = bytes(&m);
    // The first member's payload is JSON starting with `{`; break it.
    let at = b.iter().position(|&c| c == b'{').unwrap();
    let at = at + b[at..].windows(6).position(|w| w == b"\"task\"").unwrap();
    b[at] = b'#';
    let e = load_on(&fake_host(1), &b).err().unwrap();
    assert_eq!(e.kind, ErrorKind::CORRUPT_MODEL, "{e}");
}

#[test]
fn damaged_bytes_are_refused() {
    let case = testkit::classification(30, 4, 3, 1);
    let m = fit(1, r#"{"estimator": "knn", "n_estimators": 3}"#, &case);
    let b = bytes(&m);
    let host = fake_host(1);
    let mut damaged: Vec<Vec<u8>> = vec![
        Vec::new(),
        b"garbage".to_vec(),
        vec![0xff; 64],
        b"TSRB".to_vec(),
    ];
    for cut in 1..b.len() {
        damaged.push(b[..cut].to_vec());
    }
    let mut extra = b.clone();
    extra.push(0);
    damaged.push(extra);
    for d in &damaged {
        let r = guard(|| load_on(&host, d)).into_result();
        match r {
            Ok(_) => panic!("loaded {} of {} bytes", d.len(), b.len()),
            Err(e) => assert_eq!(e.kind, ErrorKind::CORRUPT_MODEL, "{} bytes: {e}", d.len()),
        }
    }

    let mut v = b.clone();
    v[4] = 9;
    let e = load_on(&host, &v).err().unwrap();
    assert!(
        e.message.contains("format version 9 is not supported"),
        "{e}"
    );

    // A huge member count is refused before anything is allocated.
    let stored = crate::serialize::parse(&b).unwrap();
    let count_at = 4 + 1 + 1 + 4 + 4 + 1 + 4 + stored.info.to_string().len();
    let mut v = b.clone();
    v[count_at..count_at + 4].copy_from_slice(&u32::MAX.to_le_bytes());
    let e = load_on(&host, &v).err().unwrap();
    assert!(e.message.contains("members cannot fit"), "{e}");

    // A feature index beyond the data.
    let mut v = b.clone();
    let first_feature = count_at + 4 + 4;
    v[first_feature..first_feature + 4].copy_from_slice(&7u32.to_le_bytes());
    let e = load_on(&host, &v).err().unwrap();
    assert_eq!(e.kind, ErrorKind::CORRUPT_MODEL);
    assert!(e.message.contains("reads feature 7 of only 4"), "{e}");
}
