//! A trained forest's bytes and exchange form, through the plugin API:
//! round trips, corrupt input, and the IR predicting like the model.

mod common;

use common::{Data, blobs, fit, predict, proba};
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

#[test]
fn exchange_form_predicts_like_the_model() {
    let train = blobs(300, 8);
    let test = blobs(100, 9);
    let model = fit(
        r#"{"n_estimators": 15, "random_state": 2, "criterion": "entropy"}"#,
        &train,
        2,
    )
    .unwrap();
    let ROption::RSome(ModelIr::Trees(ir)) = model.to_ir() else {
        panic!("no tree ensemble")
    };
    assert_eq!(
        (ir.n_features, ir.n_outputs, ir.n_classes, ir.trees.len()),
        (4, 3, 3, 15)
    );
    let k = ir.n_outputs as usize;
    let mut via_ir = Vec::new();
    for row in test.x.chunks(4) {
        let mut acc = vec![0.0f64; k];
        for t in ir.trees.iter() {
            for (a, &v) in acc.iter_mut().zip(t.leaf_values(row, k)) {
                *a += f64::from(v);
            }
        }
        via_ir.extend(acc.iter().map(|a| (a / ir.trees.len() as f64) as f32));
    }
    assert_eq!(via_ir, proba(&model, test.matrix(), 1));

    let reg = Data::new(
        train.x.clone(),
        train.x.chunks(4).map(|r| r[0] * 2.0 + r[1]).collect(),
        4,
        Task::regression(),
    );
    let model = fit(r#"{"n_estimators": 5, "random_state": 2}"#, &reg, 1).unwrap();
    let ROption::RSome(ModelIr::Trees(ir)) = model.to_ir() else {
        panic!("no tree ensemble")
    };
    assert_eq!((ir.n_outputs, ir.n_classes), (1, 0));
    let row = &reg.x[..4];
    let mean = ir
        .trees
        .iter()
        .map(|t| f64::from(t.leaf_values(row, 1)[0]))
        .sum::<f64>()
        / 5.0;
    assert_eq!(
        mean as f32,
        predict(&model, MatrixRef::new(row, 1, 4).unwrap())[0]
    );
    let e = model
        .predict_proba(NullContext::default().as_ref(), reg.matrix())
        .into_result()
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::UNSUPPORTED);
}
