//! Learners nested across plugins (meta -> faulty -> meta -> forest) finish
//! with thread budgets of 1 and 2: the design in tessera-core's "Who owns
//! parallelism" keeps every wait on a pool its caller does not occupy.

use std::{sync::mpsc, time::Duration};

use abi_stable::std_types::{ROption, RSlice, RString};
use tessera_core::{MatrixRef, Task, TrainData};
use tessera_host::{Registry, RunContext, Table, data::TaskHint};

use crate::util::{data, plugin_dir};

fn nested_params() -> serde_json::Value {
    serde_json::json!({
        "estimator": "relay",
        "n": 2,
        "estimator_params": {
            "estimator": "meta_ensemble",
            "n": 2,
            "estimator_params": {
                "estimator": "random_forest",
                "estimator_params": { "n_estimators": 4, "random_state": 1 },
                "n": 2
            }
        }
    })
}

fn fit_nested(threads: usize) -> f64 {
    let dir = plugin_dir(&["tessera_forest", "tessera_test_faulty", "tessera_test_meta"]);
    let mut registry = Registry::new();
    registry.load_dir(dir.path()).unwrap();
    let table = Table::read(&data("iris.train.csv")).unwrap();
    let target = table.target("label", TaskHint::Auto).unwrap();
    let names = table.columns_except(&["label"]);
    let x = table.features(&names).unwrap();
    let rnames: Vec<RString> = names.iter().map(|n| RString::from(n.as_str())).collect();
    let learner = registry
        .create_learner("meta_ensemble", &nested_params().to_string())
        .unwrap();
    let ctx = RunContext::new(&registry, threads);
    let model = learner
        .fit(
            ctx.as_abi(),
            TrainData {
                x: MatrixRef::new(&x, table.n_rows(), names.len()).unwrap(),
                y: RSlice::from_slice(&target.y),
                weights: ROption::RNone,
                feature_names: RSlice::from_slice(&rnames),
                task: Task::classification(3),
                valid: ROption::RNone,
            },
        )
        .into_result()
        .unwrap();
    let pred = model
        .predict(
            ctx.as_abi(),
            MatrixRef::new(&x, table.n_rows(), names.len()).unwrap(),
        )
        .unwrap();
    let right = pred.iter().zip(&target.y).filter(|(a, b)| a == b).count();
    right as f64 / pred.len() as f64
}

fn finishes_with(threads: usize) {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(fit_nested(threads));
    });
    match rx.recv_timeout(Duration::from_secs(120)) {
        Ok(acc) => assert!(acc > 0.9, "nested ensemble training accuracy {acc}"),
        Err(_) => panic!("nested training with {threads} thread(s) did not finish: deadlock"),
    }
}

#[test]
fn nested_across_plugins_with_one_thread() {
    finishes_with(1);
}

#[test]
fn nested_across_plugins_with_two_threads() {
    finishes_with(2);
}
