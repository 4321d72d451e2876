//! A trained forest's bytes and exchange form, through the plugin API:
//! round trips, corrupt input, and the IR predicting like the model.

mod common;

use common::{Data, blobs, fit, fit_with, predict, proba};
use tessera_core::{
    ErrorKind, MatrixRef, NullContext, Task, abi_stable::std_types::ROption, ir::ModelIr,
};

#[test]
fn bytes_round_trip() {
    let train = blobs(200, 3);
    let model = fit(
        r#"{"n_estimators": 10, "random_state": 1, "max_depth": 4}"#,
        &train,
        2,
    )
    .unwrap();
    let bytes = model.to_bytes().unwrap();
    let back = tessera_forest::plugin()
        .load_model("random_forest", &bytes)
        .unwrap();
    assert_eq!(back.to_bytes().unwrap(), bytes);
    assert_eq!(back.describe(), model.describe());
    assert_eq!(
        (back.task(), back.n_features()),
        (Task::classification(3), 4)
    );
    assert_eq!(
        proba(&back, train.matrix(), 1),
        proba(&model, train.matrix(), 1)
    );
}

#[test]
fn corrupt_bytes_are_refused_without_panicking() {
    let train = blobs(60, 4);
    let model = fit(r#"{"n_estimators": 3, "random_state": 1}"#, &train, 1).unwrap();
    let bytes = model.to_bytes().unwrap().into_vec();
    let plugin = tessera_forest::plugin();
    let load = |b: &[u8]| plugin.load_model("random_forest", b);
    for len in 0..bytes.len() {
        let e = load(&bytes[..len])
            .err()
            .unwrap_or_else(|| panic!("prefix of {len} bytes accepted"));
        assert_eq!(e.kind, ErrorKind::CORRUPT_MODEL, "{e}");
    }
    let mut longer = bytes.clone();
    longer.push(0);
    assert!(load(&longer).is_err());
    assert!(load(b"garbage that is not a model at all").is_err());
    let mut huge = bytes[..9].to_vec();
    huge.extend_from_slice(&[0xFF; 64]);
    assert!(load(&huge).is_err());
    let mut version = bytes.clone();
    version[4] = 99;
    assert!(load(&version).err().unwrap().message.contains("version 99"));
    // Any single corrupted byte: refused, or a model that still predicts.
    for i in 0..bytes.len() {
        for flip in [0x01, 0x80, 0xFF] {
            let mut b = bytes.clone();
            b[i] ^= flip;
            if let Ok(m) = load(&b) {
                let x = MatrixRef::new(&train.x, train.rows(), train.cols).unwrap();
                let ctx = NullContext::default();
                assert!(m.predict(ctx.as_ref(), x).is_ok(), "byte {i} ^ {flip:#x}");
            }
        }
    }
}

/// The mean over the IR's trees of the leaf values each row reaches.
fn ir_average(model: &tessera_core::ModelBox, x: &[f32], cols: usize) -> (Vec<f32>, usize) {
    let ROption::RSome(ModelIr::Trees(ir)) = model.to_ir() else {
        panic!("no tree ensemble")
    };
    assert_eq!(ir.n_features as usize, cols);
    let k = ir.n_outputs as usize;
    let mut out = Vec::new();
    for row in x.chunks(cols) {
        let mut acc = vec![0.0f64; k];
        for t in ir.trees.iter() {
            for (a, &v) in acc.iter_mut().zip(t.leaf_values(row, k)) {
                *a += f64::from(v);
            }
        }
        out.extend(acc.iter().map(|a| (a / ir.trees.len() as f64) as f32));
    }
    (out, k)
}

fn close(a: &[f32], b: &[f32]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| (x - y).abs() <= 1e-6)
}

#[test]
fn exchange_form_predicts_like_the_model() {
    let train = blobs(300, 8);
    let mut test = blobs(100, 9);
    test.x[5] = f32::NAN;
    test.x[42] = f32::NAN;
    let binary = Data::new(
        train.x.clone(),
        train.y.iter().map(|&c| f32::from(c == 2.0)).collect(),
        4,
        Task::classification(2),
    );
    let reg = Data::new(
        train.x.clone(),
        train.x.chunks(4).map(|r| r[0] * 2.0 + r[1]).collect(),
        4,
        Task::regression(),
    );
    for learner in ["random_forest", "decision_tree"] {
        for algo in ["hist", "exact"] {
            let params = format!(
                r#"{{"random_state": 2, "criterion": null, "split_algorithm": "{algo}"{}}}"#,
                if learner == "random_forest" {
                    r#", "n_estimators": 15"#
                } else {
                    ""
                }
            );
            let what = format!("{learner} {algo}");
            // Three classes: the IR holds the class distributions.
            let m = fit_with(learner, &params, &train, 2).unwrap();
            let (via_ir, k) = ir_average(&m, &test.x, 4);
            assert_eq!(k, 3, "{what}");
            assert!(close(&via_ir, &proba(&m, test.matrix(), 1)), "{what}");
            // Two classes: the model keeps one probability per leaf, the IR
            // both.
            let m = fit_with(learner, &params, &binary, 2).unwrap();
            let (via_ir, k) = ir_average(&m, &test.x, 4);
            assert_eq!(k, 2, "{what}");
            assert!(close(&via_ir, &proba(&m, test.matrix(), 1)), "{what}");
            let classes: Vec<f32> = via_ir
                .chunks(2)
                .map(|p| f32::from(u8::from(p[1] > p[0])))
                .collect();
            assert_eq!(classes, predict(&m, test.matrix()), "{what}");
            // Regression: the means.
            let m = fit_with(learner, &params, &reg, 1).unwrap();
            let (via_ir, k) = ir_average(&m, &test.x, 4);
            assert_eq!(k, 1, "{what}");
            assert!(close(&via_ir, &predict(&m, test.matrix())), "{what}");
            let ROption::RSome(ModelIr::Trees(ir)) = m.to_ir() else {
                panic!("no tree ensemble")
            };
            assert_eq!(ir.n_classes, 0);
            let e = m
                .predict_proba(NullContext::default().as_ref(), reg.matrix())
                .into_result()
                .unwrap_err();
            assert_eq!(e.kind, ErrorKind::UNSUPPORTED);
        }
    }
}

#[test]
fn each_learner_reads_only_its_own_models() {
    let train = blobs(100, 10);
    let plugin = tessera_forest::plugin();
    let forest = fit(r#"{"n_estimators": 3}"#, &train, 1).unwrap();
    let tree = fit_with("decision_tree", "{}", &train, 1).unwrap();
    let e = plugin
        .load_model("decision_tree", &forest.to_bytes().unwrap())
        .err()
        .unwrap();
    assert!(
        e.message.contains("the bytes hold a random_forest model"),
        "{e}"
    );
    assert!(
        plugin
            .load_model("random_forest", &tree.to_bytes().unwrap())
            .is_err()
    );
    let back = plugin
        .load_model("decision_tree", &tree.to_bytes().unwrap())
        .unwrap();
    assert_eq!(back.describe(), tree.describe());
    let d: serde_json::Value = serde_json::from_str(&back.describe()).unwrap();
    assert_eq!(
        (d["model"].as_str(), d["n_estimators"].as_u64()),
        (Some("decision_tree"), Some(1))
    );
}
