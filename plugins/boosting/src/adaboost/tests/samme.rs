//! SAMME against numbers computed with scikit-learn 1.9
//! (`AdaBoostClassifier(n_estimators, learning_rate).fit(X, y,
//! sample_weight)` over `DecisionTreeClassifier(max_depth=1)`), on data
//! where every round's best stump is unambiguous, and the exchange form.

use tessera_core::{Matrix, MatrixRef, ir::ModelIr};

use super::*;

/// One feature `0..11`, three classes.
const Y3: [u8; 12] = [0, 0, 0, 1, 1, 0, 1, 2, 2, 1, 2, 2];
/// One feature `0..11`, two classes.
const Y2: [u8; 12] = [0, 0, 1, 0, 0, 1, 1, 0, 1, 1, 1, 1];
/// Where the models are asked.
const QUERY: [f32; 5] = [0.5, 3.0, 5.5, 8.0, 10.5];

struct Expected {
    weights: &'static [f64],
    errors: &'static [f64],
    predict: [f32; 5],
    proba: &'static [[f64; 3]],
}

fn check(data: &Data, params: &str, want: &Expected) {
    let m = fit(1, params, data);
    let s = summary(&m);
    assert_eq!(s["algorithm"], "SAMME");
    assert_eq!(s["n_members"], want.weights.len());
    assert_close(&numbers(&s["estimator_weights"]), want.weights, 1e-12);
    assert_close(&numbers(&s["estimator_errors"]), want.errors, 1e-12);
    let q = MatrixRef::new(&QUERY, 5, 1).unwrap();
    assert_eq!(predict(&m, q), want.predict, "{params}");
    let p = proba(&m, q).unwrap();
    let k = data.task.n_classes as usize;
    let got: Vec<f64> = p.data.iter().map(|&v| f64::from(v)).collect();
    let expected: Vec<f64> = want.proba.iter().flat_map(|r| r[..k].to_vec()).collect();
    assert_close(&got, &expected, 1e-6);
    check_ir(&m, q, &p);
}

/// The exchange form, summed and softmaxed, gives `predict_proba`.
fn check_ir(m: &ModelBox, q: MatrixRef<'_>, p: &Matrix) {
    let Some(ModelIr::Trees(t)) = m.to_ir().into_option() else {
        panic!("no tree ensemble")
    };
    let k = t.n_outputs as usize;
    assert_eq!(
        t.trees.len(),
        summary(m)["n_members"].as_u64().unwrap() as usize
    );
    for r in 0..q.rows() {
        let mut raw = vec![0.0f32; k];
        for tree in t.trees.iter() {
            tree.add_to(q.row(r), &mut raw);
        }
        let max = raw.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let e: Vec<f32> = raw.iter().map(|v| (v - max).exp()).collect();
        let sum: f32 = e.iter().sum();
        for (c, v) in e.iter().enumerate() {
            let want = p.data[r * k + c];
            assert!((v / sum - want).abs() < 1e-5, "row {r}: {raw:?} vs {p:?}");
        }
    }
}

#[test]
fn three_classes_match_scikit_learn() {
    check(
        &Data::line(&Y3, 3),
        r#"{"n_estimators": 5}"#,
        &Expected {
            weights: &[
                1.3862943611198908,
                2.0281482472922856,
                1.7592740140835663,
                1.652598693964358,
                1.7310333164716911,
            ],
            errors: &[
                0.3333333333333333,
                0.20833333333333331,
                0.256140350877193,
                0.2769880244679936,
                0.2615580713024476,
            ],
            predict: [0.0, 0.0, 0.0, 2.0, 2.0],
            proba: &[
                [
                    0.45576577521580847,
                    0.29305448334397144,
                    0.25117974144022004,
                ],
                [0.3882260929176888, 0.3561946402248347, 0.25557926685747656],
                [0.3882260929176888, 0.3561946402248347, 0.25557926685747656],
                [0.2555584229387876, 0.3552851256306837, 0.38915645143052874],
                [0.2555584229387876, 0.3552851256306837, 0.38915645143052874],
            ],
        },
    );
}

#[test]
fn a_learning_rate_matches_scikit_learn() {
    check(
        &Data::line(&Y3, 3),
        r#"{"n_estimators": 4, "learning_rate": 0.5}"#,
        &Expected {
            weights: &[
                0.6931471805599454,
                0.7408022704621078,
                0.6999771125278121,
                0.6569848328122301,
            ],
            errors: &[
                0.3333333333333333,
                0.3125,
                0.3303047501123415,
                0.3495944131587538,
            ],
            predict: [0.0, 1.0, 1.0, 2.0, 2.0],
            proba: &[
                [0.44282116710965325, 0.3047143831192081, 0.2524644497711387],
                [0.36759702092999763, 0.3766614982094742, 0.25574148086052817],
                [0.36759702092999763, 0.3766614982094742, 0.25574148086052817],
                [0.2528361698764222, 0.30852938602293106, 0.4386344441006468],
                [0.2528361698764222, 0.30852938602293106, 0.4386344441006468],
            ],
        },
    );
}

#[test]
fn sample_weights_match_scikit_learn() {
    // Row 4 has weight zero, row 8 weight 3, row 1 weight 2.
    let w = [1.0, 2.0, 1.0, 1.0, 0.0, 1.0, 1.0, 1.0, 3.0, 1.0, 1.0, 1.0];
    check(
        &Data::line(&Y3, 3).weighted(&w),
        r#"{"n_estimators": 3}"#,
        &Expected {
            weights: &[1.992430164690206, 2.0053335695261136, 1.8428835445611362],
            errors: &[0.2142857142857143, 0.21212121212121215, 0.24053724053724054],
            predict: [0.0, 1.0, 1.0, 2.0, 2.0],
            proba: &[
                [0.42431140959646124, 0.3217447601990512, 0.2539438302044875],
                [
                    0.32858506861658615,
                    0.41700497670481423,
                    0.25440995467859956,
                ],
                [
                    0.32858506861658615,
                    0.41700497670481423,
                    0.25440995467859956,
                ],
                [0.25444697221839296, 0.3291778524975131, 0.4163751752840939],
                [0.25444697221839296, 0.3291778524975131, 0.4163751752840939],
            ],
        },
    );
}

#[test]
fn two_classes_match_scikit_learn() {
    check(
        &Data::line(&Y2, 2),
        r#"{"n_estimators": 4}"#,
        &Expected {
            weights: &[
                1.6094379124341005,
                0.6190392084062232,
                0.9985288301111266,
                1.0687593255184282,
            ],
            errors: &[
                0.16666666666666666,
                0.35000000000000003,
                0.26923076923076933,
                0.25563909774436094,
            ],
            predict: [0.0, 0.0, 1.0, 1.0, 1.0],
            proba: &[
                [0.7320062143535251, 0.26799378564647486, 0.0],
                [0.744638809847813, 0.25536119015218695, 0.0],
                [0.3945067614062955, 0.6054932385937046, 0.0],
                [0.26799378564647486, 0.7320062143535251, 0.0],
                [0.26799378564647486, 0.7320062143535251, 0.0],
            ],
        },
    );
}

#[test]
fn members_train_on_the_weights_scaled_to_the_row_count() {
    let w = [1.0, 2.0, 1.0, 1.0, 0.0, 1.0, 1.0, 1.0, 3.0, 1.0, 1.0, 1.0];
    let m = fit(
        1,
        r#"{"n_estimators": 2}"#,
        &Data::line(&Y3, 3).weighted(&w),
    );
    let first = &summary(&m)["first_member"]["summary"];
    let seen = numbers(&first["weights"]);
    let scale = 12.0 / 14.0;
    let want: Vec<f64> = w.iter().map(|&v| f64::from(v) * scale).collect();
    assert_close(&seen, &want, 1e-6);
    assert_eq!(first["rows"], 12, "SAMME members see every row");
}

#[test]
fn scikit_learns_default_stump() {
    let m = fit(1, r#"{"n_estimators": 2}"#, &Data::line(&Y3, 3));
    let s = summary(&m);
    assert_eq!(s["estimator"], "decision_tree");
    assert_eq!(s["estimator_params"]["max_depth"], 1);
    assert_eq!(s["first_member"]["summary"]["max_depth"], 1);
    assert_eq!(s["first_member"]["component"], "decision_tree");
}

#[test]
fn non_tree_members_have_no_exchange_form() {
    let data = Data::line(&[0, 0, 0, 0, 1, 1, 2, 2, 0, 0], 3);
    let m = fit(1, r#"{"estimator": "majority", "n_estimators": 3}"#, &data);
    assert!(m.to_ir().into_option().is_none());
}
