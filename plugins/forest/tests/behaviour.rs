//! Behaviour of `random_forest` through the plugin API: determinism across
//! thread counts, parameter errors, missing values, degenerate data, sample
//! weights, the summary, progress and cancellation.

mod common;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use common::{Data, blobs, fit, lcg, learner, predict, proba};
use tessera_core::{
    ErrorKind, HostContext, HostContext_TO, HostContextRef, LearnerBox, MatrixRef, PluginError,
    Task,
    abi_stable::{
        RRef,
        sabi_trait::TD_Opaque,
        std_types::{RResult, RStr},
    },
};

#[test]
fn same_seed_same_forest_on_any_thread_count() {
    let train = blobs(300, 1);
    let test = blobs(600, 2);
    let params = r#"{"n_estimators": 20, "random_state": 7}"#;
    let one = fit(params, &train, 1).unwrap();
    let two = fit(params, &train, 2).unwrap();
    let four = fit(params, &train, 4).unwrap();
    assert_eq!(one.to_bytes().unwrap(), two.to_bytes().unwrap());
    assert_eq!(one.to_bytes().unwrap(), four.to_bytes().unwrap());
    assert_eq!(proba(&one, test.matrix(), 1), proba(&two, test.matrix(), 2));
    let other = fit(r#"{"n_estimators": 20, "random_state": 8}"#, &train, 2).unwrap();
    assert_ne!(one.to_bytes().unwrap(), other.to_bytes().unwrap());
    let acc = predict(&one, test.matrix())
        .iter()
        .zip(&test.y)
        .filter(|(p, t)| p == t)
        .count();
    assert!(
        acc as f64 / test.rows() as f64 > 0.9,
        "accuracy {acc}/{}",
        test.rows()
    );
}

#[test]
fn parameter_errors_name_the_key() {
    let e = learner(r#"{"n_estimator": 10}"#).err().unwrap();
    assert_eq!(e.kind, ErrorKind::INVALID_PARAMS);
    assert!(e.message.contains("unknown parameter `n_estimator`"), "{e}");
    assert!(e.message.contains("did you mean `n_estimators`"), "{e}");
    let e = learner(r#"{"max_features": "most"}"#).err().unwrap();
    assert!(
        e.message.contains("`max_features`") && e.message.contains("\"most\""),
        "{e}"
    );
    assert!(learner(r#"{"max_features": 0.0}"#).is_err());
    assert!(learner(r#"{"min_samples_leaf": 0}"#).is_err());
    let data = blobs(20, 5);
    let e = fit(r#"{"criterion": "squared_error"}"#, &data, 1)
        .err()
        .unwrap();
    assert_eq!(e.kind, ErrorKind::INVALID_PARAMS);
    assert!(
        e.message
            .contains("\"squared_error\" does not apply to classification"),
        "{e}"
    );
    let e = fit(r#"{"max_features": 9}"#, &data, 1).err().unwrap();
    assert!(e.message.contains("`max_features`: 9"), "{e}");
}

#[test]
fn missing_values_train_and_predict() {
    // Class 1 exactly when feature 0 is missing or large; feature 1 is noise
    // with its own missing values.
    let mut s = 11;
    let (mut x, mut y) = (Vec::new(), Vec::new());
    for i in 0..400 {
        let v = lcg(&mut s);
        let missing = i % 5 == 0;
        x.push(if missing { f32::NAN } else { v });
        x.push(if i % 7 == 0 { f32::NAN } else { lcg(&mut s) });
        y.push(if missing || v > 0.6 { 1.0 } else { 0.0 });
    }
    let data = Data::new(x, y, 2, Task::classification(2));
    let model = fit(r#"{"n_estimators": 25, "random_state": 3}"#, &data, 2).unwrap();
    let test = [
        f32::NAN,
        0.5,
        0.1,
        f32::NAN,
        0.9,
        0.2,
        0.3,
        0.7,
        f32::NAN,
        f32::NAN,
    ];
    let x = MatrixRef::new(&test, 5, 2).unwrap();
    assert_eq!(predict(&model, x), [1.0, 0.0, 1.0, 0.0, 1.0]);
    let p = proba(&model, x, 1);
    assert!(
        p.chunks(2).all(|r| (r[0] + r[1] - 1.0).abs() < 1e-5),
        "{p:?}"
    );

    // A feature never missing in training still routes missing values.
    let train = blobs(100, 6);
    let model = fit(r#"{"n_estimators": 5, "random_state": 3}"#, &train, 1).unwrap();
    let x = MatrixRef::new(&[f32::NAN; 8], 2, 4).unwrap();
    assert_eq!(predict(&model, x).len(), 2);
}

#[test]
fn degenerate_data_does_not_panic() {
    let cases = [
        Data::new(vec![1.0, 2.0], vec![0.0], 2, Task::classification(2)),
        Data::new(vec![1.0, 2.0], vec![3.5], 2, Task::regression()),
        Data::new(
            vec![1.0, 2.0, 3.0, 4.0],
            vec![1.0, 1.0],
            2,
            Task::classification(2),
        ),
        Data::new(
            (0..40).map(|i| i as f32).collect(),
            vec![2.5; 20],
            2,
            Task::regression(),
        ),
        Data::new(
            vec![7.0; 40],
            (0..20).map(|i| (i % 2) as f32).collect(),
            2,
            Task::classification(2),
        ),
        Data::new(
            vec![f32::NAN; 40],
            (0..20).map(|i| (i % 3) as f32).collect(),
            2,
            Task::classification(3),
        ),
        Data::new(vec![0.0; 10], vec![0.0; 10], 1, Task::classification(1)),
    ];
    for (i, data) in cases.iter().enumerate() {
        for params in [
            r#"{"n_estimators": 4, "random_state": 0}"#,
            r#"{"n_estimators": 3, "bootstrap": false, "min_samples_leaf": 0.4}"#,
        ] {
            let model = fit(params, data, 2).unwrap_or_else(|e| panic!("case {i}: {e}"));
            let pred = predict(&model, data.matrix());
            assert_eq!(pred.len(), data.rows(), "case {i}");
            assert!(pred.iter().all(|p| p.is_finite()), "case {i}: {pred:?}");
            let d: serde_json::Value = serde_json::from_str(&model.describe()).unwrap();
            assert!(
                d["feature_importances"].as_array().unwrap().len() == data.cols,
                "case {i}"
            );
        }
    }
    assert_eq!(
        predict(&fit("", &cases[3], 1).unwrap(), cases[3].matrix()),
        vec![2.5; 20]
    );
    let mut zero = blobs(10, 1);
    zero.w = Some(vec![0.0; 10]);
    assert_eq!(
        fit("", &zero, 1).err().unwrap().kind,
        ErrorKind::INVALID_INPUT
    );
}

#[test]
fn sample_weights_count() {
    // Identical rows; the weights alone decide which class wins.
    let mut data = Data::new(
        vec![1.0; 10],
        (0..10).map(|i| f32::from(u8::from(i < 3))).collect(),
        1,
        Task::classification(2),
    );
    data.w = Some((0..10).map(|i| if i < 3 { 10.0 } else { 1.0 }).collect());
    let model = fit(r#"{"bootstrap": false, "n_estimators": 1}"#, &data, 1).unwrap();
    let p = proba(&model, data.matrix(), 1);
    assert!((p[1] - 30.0 / 37.0).abs() < 1e-6, "{p:?}");
}

#[test]
fn describe_reports_sizes_and_importances() {
    let model = fit(
        r#"{"n_estimators": 30, "random_state": 4}"#,
        &blobs(400, 10),
        2,
    )
    .unwrap();
    let d: serde_json::Value = serde_json::from_str(&model.describe()).unwrap();
    assert_eq!(d["n_estimators"], 30);
    assert_eq!(d["n_classes"], 3);
    assert_eq!(d["params"]["max_features"], 2);
    assert_eq!(d["params"]["criterion"], "gini");
    assert!(d["total_nodes"].as_u64().unwrap() > 30);
    assert!(d["max_depth"].as_u64().unwrap() >= 2);
    let imp: Vec<f64> = d["feature_importances"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect();
    assert!((imp.iter().sum::<f64>() - 1.0).abs() < 1e-9, "{imp:?}");
    assert!(
        imp[0] > imp[2] && imp[0] > imp[3] && imp[1] > imp[2] && imp[1] > imp[3],
        "{imp:?}"
    );
}

/// A context that counts progress reports and cancels after `cancel_after`.
struct Watch {
    reports: AtomicU64,
    cancel_after: u64,
    cancelled: AtomicBool,
}

impl HostContext for Watch {
    fn threads(&self) -> u32 {
        2
    }
    fn is_cancelled(&self) -> bool {
        self.cancelled.load(Ordering::SeqCst)
    }
    fn progress(&self, done: u64, total: u64) {
        assert!(done <= total);
        if self.reports.fetch_add(1, Ordering::SeqCst) + 1 >= self.cancel_after {
            self.cancelled.store(true, Ordering::SeqCst);
        }
    }
    fn log(&self, _level: u8, _message: RStr<'_>) {}
    fn create_learner(
        &self,
        _name: RStr<'_>,
        _params: RStr<'_>,
    ) -> RResult<LearnerBox, PluginError> {
        RResult::RErr(PluginError::unsupported("none"))
    }
    fn load_model(
        &self,
        _component: RStr<'_>,
        _bytes: tessera_core::abi_stable::std_types::RSlice<'_, u8>,
    ) -> RResult<tessera_core::ModelBox, PluginError> {
        RResult::RErr(PluginError::unsupported("none"))
    }
}

#[test]
fn progress_and_cancellation() {
    let data = blobs(100, 12);
    let run = |cancel_after| {
        let w = Watch {
            reports: AtomicU64::new(0),
            cancel_after,
            cancelled: AtomicBool::new(false),
        };
        let ctx: HostContextRef<'_> = HostContext_TO::from_ptr(RRef::new(&w), TD_Opaque);
        let r = learner(r#"{"n_estimators": 40}"#)
            .unwrap()
            .fit(ctx, data.train())
            .into_result();
        (r.map(|_| ()), w.reports.load(Ordering::SeqCst))
    };
    assert_eq!(run(u64::MAX), (Ok(()), 40));
    let (r, reports) = run(3);
    assert_eq!(r.unwrap_err().kind, ErrorKind::CANCELLED);
    assert!(reports < 40, "{reports}");
}
