//! How members' outputs combine, the out-of-bag score, the exchange form,
//! and the model contract (shapes, zero rows, NaN, wrong width).

use tessera_core::{ErrorKind, ir::ModelIr, testkit};

use super::*;
use crate::{
    model::argmax,
    sample::{self, Sampler},
    serialize,
};

/// The members of `m` read back from its bytes, with their columns.
fn members_of(m: &ModelBox) -> Vec<(Vec<u32>, ModelBox)> {
    let b = bytes(m);
    let stored = serialize::parse(&b).unwrap();
    let host = fake_host(1);
    stored
        .members
        .iter()
        .map(|s| {
            let model = def()
                .load_model_with(s.component, s.bytes, &host.as_ref())
                .unwrap();
            (s.features.clone(), model)
        })
        .collect()
}

/// `x` restricted to `features`.
fn columns(x: MatrixRef<'_>, features: &[u32]) -> Vec<f32> {
    sample::gather(x, None, Some(features))
}

fn member_predict(features: &[u32], model: &ModelBox, x: MatrixRef<'_>) -> Vec<f32> {
    let sub = columns(x, features);
    predict(
        model,
        MatrixRef::new(&sub, x.rows(), features.len()).unwrap(),
    )
}

fn member_proba(features: &[u32], model: &ModelBox, x: MatrixRef<'_>) -> Vec<f32> {
    let sub = columns(x, features);
    proba(
        model,
        MatrixRef::new(&sub, x.rows(), features.len()).unwrap(),
    )
    .unwrap()
    .data
    .into_vec()
}

#[test]
fn soft_voting_averages_probabilities() {
    let case = testkit::classification(90, 4, 3, 1);
    let m = fit(
        2,
        r#"{"estimator": "knn", "n_estimators": 5, "max_features": 3, "random_state": 4}"#,
        &case,
    );
    assert_eq!(summary(&m)["voting"], "soft");
    let x = case.matrix();
    let mut mean = vec![0.0f64; 90 * 3];
    let members = members_of(&m);
    for (f, member) in &members {
        for (s, v) in mean.iter_mut().zip(member_proba(f, member, x)) {
            *s += f64::from(v);
        }
    }
    let got = proba(&m, x).unwrap();
    assert_eq!((got.rows, got.cols), (90, 3));
    for (g, s) in got.data.iter().zip(&mean) {
        assert!((f64::from(*g) - s / 5.0).abs() < 1e-6, "{g} vs {}", s / 5.0);
    }
    let pred = predict(&m, x);
    for (r, p) in pred.iter().enumerate() {
        assert_eq!(*p as usize, argmax(&mean[r * 3..r * 3 + 3]));
    }
    assert!(
        accuracy(&pred, &case.y) >= 0.9,
        "{}",
        accuracy(&pred, &case.y)
    );
}

#[test]
fn hard_voting_when_members_have_no_probabilities() {
    let case = testkit::classification(90, 4, 3, 1);
    let params = r#"{"estimator": "knn", "estimator_params": {"proba": false, "k": 1},
                     "n_estimators": 2, "max_features": 1, "random_state": 8}"#;
    let m = fit(2, params, &case);
    assert_eq!(summary(&m)["voting"], "hard");
    let x = case.matrix();
    let mut votes = vec![0.0f64; 90 * 3];
    for (f, member) in &members_of(&m) {
        for (r, c) in member_predict(f, member, x).iter().enumerate() {
            votes[r * 3 + *c as usize] += 1.0;
        }
    }
    let p = proba(&m, x).unwrap();
    for (g, v) in p.data.iter().zip(&votes) {
        assert_eq!(f64::from(*g), v / 2.0);
    }
    let pred = predict(&m, x);
    let mut ties = 0;
    for (r, &got) in pred.iter().enumerate() {
        let row = &votes[r * 3..r * 3 + 3];
        let best = row.iter().cloned().fold(0.0, f64::max);
        let first = row.iter().position(|&v| v == best).unwrap();
        if row.iter().filter(|&&v| v == best).count() > 1 {
            ties += 1;
        }
        assert_eq!(got as usize, first, "row {r}: votes {row:?}");
    }
    assert!(ties > 0, "no tie was exercised");
    assert!(accuracy(&pred, &case.y) >= 0.5);
}

#[test]
fn regression_averages_predictions() {
    let case = testkit::regression(80, 3, 2);
    let m = fit(
        2,
        r#"{"estimator": "knn", "n_estimators": 6, "max_features": 2, "random_state": 1}"#,
        &case,
    );
    assert_eq!(summary(&m)["voting"], "mean");
    let x = case.matrix();
    let mut sum = vec![0.0f64; 80];
    for (f, member) in &members_of(&m) {
        for (s, v) in sum.iter_mut().zip(member_predict(f, member, x)) {
            *s += f64::from(v);
        }
    }
    let pred = predict(&m, x);
    for (p, s) in pred.iter().zip(&sum) {
        assert!((f64::from(*p) - s / 6.0).abs() < 1e-5);
    }
    let all = fit(1, r#"{"estimator": "knn", "random_state": 1}"#, &case);
    assert!(r2(&predict(&all, x), &case.y) > 0.8);
    let e = proba(&m, x).err().unwrap();
    assert_eq!(e.kind, ErrorKind::UNSUPPORTED);
}

#[test]
fn model_contract() {
    let cls = testkit::classification(90, 4, 3, 1);
    let reg = testkit::regression(80, 3, 2);
    for (case, params) in [
        (&cls, r#"{"estimator": "knn", "n_estimators": 3}"#),
        (
            &cls,
            r#"{"estimator": "knn", "estimator_params": {"proba": false}}"#,
        ),
        (
            &reg,
            r#"{"estimator": "knn", "n_estimators": 3, "max_features": 0.5}"#,
        ),
        (&cls, r#"{"estimator": "stump", "max_features": 2}"#),
    ] {
        let m = fit(2, params, case);
        assert_eq!(m.task(), case.task);
        assert_eq!(m.n_features() as usize, case.cols);
        let host = fake_host(2);
        let wide = vec![0.0f32; 2 * (case.cols + 1)];
        let e = m
            .predict(
                host.as_ref(),
                MatrixRef::new(&wide, 2, case.cols + 1).unwrap(),
            )
            .into_result()
            .err()
            .unwrap();
        assert_eq!(e.kind, ErrorKind::INVALID_INPUT, "{e}");
        assert!(predict(&m, MatrixRef::new(&[], 0, case.cols).unwrap()).is_empty());
        let nan = vec![f32::NAN; case.cols];
        let r = m
            .predict(host.as_ref(), MatrixRef::new(&nan, 1, case.cols).unwrap())
            .into_result();
        if let Err(e) = r {
            assert_ne!(e.kind, ErrorKind::PANIC);
        }
        if case.task.is_classification() {
            let p = proba(&m, case.matrix()).unwrap();
            for row in p.data.chunks(3) {
                let s: f32 = row.iter().sum();
                assert!((s - 1.0).abs() < 1e-5, "{row:?}");
                assert!(row.iter().all(|v| (0.0..=1.0).contains(v)));
            }
            let empty = proba(&m, MatrixRef::new(&[], 0, case.cols).unwrap()).unwrap();
            assert_eq!((empty.rows, empty.cols), (0, 3));
        }
    }
}

/// The out-of-bag accuracy recomputed from the members and their draws.
fn oob_by_hand(m: &ModelBox, case: &testkit::Case) -> (f64, usize) {
    let s = summary(m);
    let sampler = Sampler {
        seed: s["random_state"].as_u64().unwrap(),
        n_rows: case.rows,
        n_features: case.cols,
        k_rows: s["samples_per_member"].as_u64().unwrap() as usize,
        k_features: s["features_per_member"].as_u64().unwrap() as usize,
        bootstrap: true,
        bootstrap_features: false,
    };
    let x = case.matrix();
    let k = 3;
    let mut sums = vec![0.0f64; case.rows * k];
    let mut seen = vec![false; case.rows];
    for (i, (f, member)) in members_of(m).iter().enumerate() {
        let bag = sample::in_bag(sampler.rows(i).as_deref(), case.rows);
        let p = member_proba(f, member, x);
        for r in (0..case.rows).filter(|&r| !bag[r]) {
            seen[r] = true;
            for c in 0..k {
                sums[r * k + c] += f64::from(p[r * k + c]);
            }
        }
    }
    let scored: Vec<usize> = (0..case.rows).filter(|&r| seen[r]).collect();
    let right = scored
        .iter()
        .filter(|&&r| argmax(&sums[r * k..r * k + k]) as f32 == case.y[r])
        .count();
    (right as f64 / scored.len() as f64, scored.len())
}

#[test]
fn out_of_bag_scores() {
    let case = testkit::classification(90, 4, 3, 1);
    let m = fit(
        2,
        r#"{"estimator": "knn", "n_estimators": 10, "max_features": 3, "oob_score": true, "random_state": 2}"#,
        &case,
    );
    let s = summary(&m);
    let score = s["oob_score"].as_f64().unwrap();
    assert!((0.8..=1.0).contains(&score), "{score}");
    let (by_hand, rows) = oob_by_hand(&m, &case);
    assert_eq!(score, by_hand);
    assert_eq!(s["oob_rows"], rows);
    assert!(rows >= 85, "{rows}");

    let reg = testkit::regression(80, 3, 2);
    let m = fit(
        2,
        r#"{"estimator": "knn", "n_estimators": 10, "oob_score": true, "random_state": 2}"#,
        &reg,
    );
    let score = summary(&m)["oob_score"].as_f64().unwrap();
    assert!(score > 0.5 && score <= 1.0, "{score}");

    // Hard voting scores out of bag too.
    let m = fit(
        1,
        r#"{"estimator": "knn", "estimator_params": {"proba": false}, "n_estimators": 10, "oob_score": true}"#,
        &case,
    );
    assert!(summary(&m)["oob_score"].as_f64().unwrap() > 0.8);

    // Not asked for, not computed.
    let m = fit(1, r#"{"estimator": "knn", "n_estimators": 2}"#, &case);
    assert!(summary(&m).get("oob_score").is_none());
}

#[test]
fn rows_never_out_of_bag_are_skipped_with_a_warning() {
    let case = testkit::classification(90, 4, 3, 1);
    let host = fake_host(1);
    let m = fit_on(
        &host,
        r#"{"estimator": "knn", "n_estimators": 1, "oob_score": true, "random_state": 0}"#,
        &case,
    )
    .unwrap();
    let s = summary(&m);
    let rows = s["oob_rows"].as_u64().unwrap();
    assert!(rows > 10 && rows < 90, "{rows}");
    assert!(s["oob_score"].is_f64());
    let logs = host.logs();
    assert!(
        logs.iter()
            .any(|(level, msg)| *level == tessera_core::context::level::WARN
                && msg.contains("no out-of-bag prediction")
                && msg.contains(&format!("uses the other {rows}"))),
        "{logs:?}"
    );
}

#[test]
fn tree_members_pool_into_one_tree_ensemble() {
    let case = testkit::classification(90, 4, 3, 1);
    let m = fit(
        2,
        r#"{"estimator": "stump", "n_estimators": 6, "max_features": 2, "random_state": 3}"#,
        &case,
    );
    let Some(ModelIr::Trees(t)) = m.to_ir().into_option() else {
        panic!("no tree ensemble")
    };
    assert_eq!(t.trees.len(), 6);
    assert_eq!((t.n_features, t.n_outputs, t.n_classes), (4, 3, 3));
    assert_eq!(t.combine, tessera_core::ir::Combine::Mean);
    // Members split on their last column; mapped back, that is a column of
    // the full data, and the ensemble answers like the model.
    let split: std::collections::BTreeSet<u32> =
        t.trees.iter().map(|t| t.nodes[0].feature).collect();
    assert!(split.iter().all(|&f| f < 4) && split.len() > 1, "{split:?}");
    let p = proba(&m, case.matrix()).unwrap();
    for r in 0..case.rows {
        let row = case.matrix().row(r);
        for c in 0..3 {
            let mean: f32 = t
                .trees
                .iter()
                .map(|tree| tree.leaf_values(row, 3)[c])
                .sum::<f32>()
                / 6.0;
            assert!((mean - p.data[r * 3 + c]).abs() < 1e-6);
        }
    }

    let reg = testkit::regression(80, 3, 2);
    let m = fit(
        1,
        r#"{"estimator": "stump", "n_estimators": 4, "max_features": 2}"#,
        &reg,
    );
    let Some(ModelIr::Trees(t)) = m.to_ir().into_option() else {
        panic!("no tree ensemble")
    };
    let pred = predict(&m, reg.matrix());
    for (r, p) in pred.iter().enumerate() {
        let row = reg.matrix().row(r);
        let mean: f32 = t
            .trees
            .iter()
            .map(|tree| tree.leaf_values(row, 1)[0])
            .sum::<f32>()
            / 4.0;
        assert!((mean - p).abs() < 1e-5);
    }

    let m = fit(1, r#"{"estimator": "knn", "n_estimators": 2}"#, &case);
    assert!(m.to_ir().into_option().is_none());
}
