//! Test-set accuracy (R² for regression) of `random_forest` on the example
//! data sets, against scikit-learn's with the same parameters.

use std::time::Instant;

use tessera_core::{
    MatrixRef, NullContext, Task, TrainData,
    abi_stable::std_types::{ROption, RSlice, RString},
};

/// scikit-learn 1.9.1, `RandomForest{Classifier,Regressor}(n_estimators=100)`
/// with defaults otherwise, test score averaged over random_state 0..4, as
/// printed by `python3 plugins/forest/tests/sklearn_reference.py`.
const SKLEARN: &[(&str, f64)] = &[
    ("iris", 0.9533),
    ("wine", 1.0000),
    ("breast_cancer", 0.9474),
    ("digits", 0.9694),
    ("diabetes", 0.2566),
];
const SEEDS: u64 = 5;
const TOLERANCE: f64 = 0.02;

struct Table {
    x: Vec<f32>,
    y: Vec<f32>,
    rows: usize,
    cols: usize,
    regression: bool,
}

fn read(name: &str, split: &str) -> Table {
    let path = format!(
        "{}/../../examples/data/{name}.{split}.csv",
        env!("CARGO_MANIFEST_DIR")
    );
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().expect("header").split(',').collect();
    let (mut x, mut y, mut rows) = (Vec::new(), Vec::new(), 0);
    for line in lines.filter(|l| !l.trim().is_empty()) {
        let vals: Vec<f32> = line
            .split(',')
            .map(|v| v.trim().parse().expect("number"))
            .collect();
        assert_eq!(vals.len(), header.len(), "{path}: ragged row");
        x.extend_from_slice(&vals[..vals.len() - 1]);
        y.push(vals[vals.len() - 1]);
        rows += 1;
    }
    let regression = header.last() == Some(&"target");
    Table {
        x,
        y,
        rows,
        cols: header.len() - 1,
        regression,
    }
}

/// Mean test score over the seeds, and the mean training time in seconds.
fn score(name: &str) -> (f64, f64) {
    let (train, test) = (read(name, "train"), read(name, "test"));
    let task = if train.regression {
        Task::regression()
    } else {
        let k = train.y.iter().chain(&test.y).fold(0.0f32, |a, &b| a.max(b)) as u32 + 1;
        Task::classification(k)
    };
    let names: Vec<RString> = (0..train.cols).map(|i| format!("f{i}").into()).collect();
    let ctx = NullContext { threads: 2 };
    let plugin = tessera_forest::plugin();
    let (mut total, mut secs) = (0.0, 0.0);
    for seed in 0..SEEDS {
        let learner = plugin
            .create_learner(
                "random_forest",
                &format!(r#"{{"n_estimators": 100, "random_state": {seed}}}"#),
            )
            .unwrap();
        let data = TrainData {
            x: MatrixRef::new(&train.x, train.rows, train.cols).unwrap(),
            y: RSlice::from_slice(&train.y),
            weights: ROption::RNone,
            feature_names: RSlice::from_slice(&names),
            task,
        };
        let start = Instant::now();
        let model = learner.fit(ctx.as_ref(), data).unwrap();
        secs += start.elapsed().as_secs_f64();
        let x = MatrixRef::new(&test.x, test.rows, test.cols).unwrap();
        let pred = model.predict(ctx.as_ref(), x).unwrap();
        total += if train.regression {
            let mean = test.y.iter().map(|&v| f64::from(v)).sum::<f64>() / test.rows as f64;
            let sse: f64 = pred
                .iter()
                .zip(&test.y)
                .map(|(&p, &t)| (f64::from(p) - f64::from(t)).powi(2))
                .sum();
            let sst: f64 = test.y.iter().map(|&t| (f64::from(t) - mean).powi(2)).sum();
            1.0 - sse / sst
        } else {
            pred.iter().zip(&test.y).filter(|(p, t)| p == t).count() as f64 / test.rows as f64
        };
    }
    (total / SEEDS as f64, secs / SEEDS as f64)
}

#[test]
fn matches_scikit_learn() {
    let mut failures = Vec::new();
    for &(name, reference) in SKLEARN {
        let (ours, secs) = score(name);
        println!("{name:14} ours {ours:.4}  sklearn {reference:.4}  fit {secs:.3}s per forest");
        if ours < reference - TOLERANCE {
            failures.push(format!("{name}: {ours:.4} < {reference:.4} - {TOLERANCE}"));
        }
    }
    assert!(failures.is_empty(), "below scikit-learn: {failures:?}");
}
