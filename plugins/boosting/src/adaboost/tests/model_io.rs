//! Saving and loading: round trips through the host, absent member
//! plugins, damaged bytes.

use tessera_core::{ErrorKind, plugin::guard, testkit};

use super::*;

fn load_on(host: &FakeHost, bytes: &[u8]) -> Result<ModelBox, PluginError> {
    host.load("adaboost", bytes)
}

#[test]
fn round_trip_gives_identical_answers() {
    let cls = Data::from_case(&testkit::classification(90, 4, 3, 1));
    let bin = Data::from_case(&testkit::classification(60, 3, 2, 2));
    let reg = Data::from_case(&testkit::regression(80, 3, 2));
    let skewed = Data::line(&[0, 0, 0, 0, 0, 0, 1, 1, 2, 2], 3);
    for (data, params) in [
        (&cls, r#"{"n_estimators": 8}"#),
        (&bin, r#"{"n_estimators": 5, "learning_rate": 0.3}"#),
        (&skewed, r#"{"estimator": "majority", "n_estimators": 3}"#),
        (&reg, r#"{"n_estimators": 6, "loss": "square"}"#),
        (
            &cls,
            r#"{"n_estimators": 2, "estimator": "adaboost",
                "estimator_params": {"n_estimators": 2}}"#,
        ),
    ] {
        let m = fit(2, params, data);
        let b = bytes(&m);
        let back = load_on(&fake_host(1), &b).unwrap_or_else(|e| panic!("{params}: {e}"));
        assert_eq!(back.task(), m.task());
        assert_eq!(back.n_features(), m.n_features());
        assert_eq!(
            predict(&back, data.matrix()),
            predict(&m, data.matrix()),
            "{params}"
        );
        if data.task.is_classification() {
            assert_eq!(
                proba(&back, data.matrix()).unwrap(),
                proba(&m, data.matrix()).unwrap()
            );
        }
        assert_eq!(summary(&back), summary(&m), "{params}");
        assert_eq!(bytes(&back), b, "{params}: saving again changes the bytes");
    }
}

#[test]
fn a_member_whose_plugin_is_absent_is_named() {
    let m = fit(
        1,
        r#"{"n_estimators": 2}"#,
        &Data::line(&[0, 1, 1, 0, 1, 0], 2),
    );
    let e = load_on(&fake_host(1).without("decision_tree"), &bytes(&m))
        .err()
        .unwrap();
    assert_eq!(e.kind, ErrorKind::UNSUPPORTED);
    assert!(
        e.message.starts_with(
            "adaboost member 0 needs learner `decision_tree` (its plugin must be loaded): "
        ),
        "{e}"
    );
}

#[test]
fn damaged_bytes_are_refused() {
    let m = fit(
        1,
        r#"{"n_estimators": 3}"#,
        &Data::line(&[0, 1, 1, 0, 1, 0], 2),
    );
    let good = bytes(&m);
    let host = fake_host(1);
    let mut bad: Vec<Vec<u8>> = vec![Vec::new(), b"garbage".to_vec(), vec![0xff; 64]];
    for cut in 1..good.len() {
        bad.push(good[..cut].to_vec());
    }
    let mut extra = good.clone();
    extra.push(0);
    bad.push(extra);
    let mut version = good.clone();
    version[4] = 9;
    bad.push(version);
    for b in &bad {
        let r = guard(|| load_on(&host, b)).into_result();
        match r {
            Ok(_) => panic!("loaded {} damaged bytes", b.len()),
            Err(e) => assert_ne!(e.kind, ErrorKind::PANIC, "{e}"),
        }
    }
    let e = load_on(&host, &bad[bad.len() - 1]).err().unwrap();
    assert_eq!(e.kind, ErrorKind::CORRUPT_MODEL);
    assert!(e.message.contains("format version 9"), "{e}");
    let e = load_on(&host, b"garbage").err().unwrap();
    assert_eq!(
        e.message,
        "adaboost model: not an adaboost model (bad magic bytes)"
    );
    // A member weight that is not a number.
    let weight_at = 4 + 1 + 1 + 4 + 4 + 4 + summary_len(&good) + 4;
    let mut nan = good.clone();
    nan[weight_at..weight_at + 8].copy_from_slice(&f64::NAN.to_le_bytes());
    let e = load_on(&host, &nan).err().unwrap();
    assert!(e.message.contains("member 0 has a bad weight"), "{e}");
}

fn summary_len(b: &[u8]) -> usize {
    u32::from_le_bytes([b[14], b[15], b[16], b[17]]) as usize
}
