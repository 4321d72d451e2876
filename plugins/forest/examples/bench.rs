//! Times `random_forest` (or `decision_tree`) on a CSV data set, for
//! comparing with scikit-learn by hand:
//!
//! ```text
//! cargo run --release -p tessera-forest --example bench -- \
//!     /tmp/bench-data/higgs_like 2 '{"n_estimators": 100, "max_features": "sqrt"}'
//! ```
//!
//! Reads `PREFIX.train.csv` and `PREFIX.test.csv` (header, features, then
//! `label` or `target` last) and prints fit and predict time, model size,
//! test accuracy and ROC AUC (binary) or R², and peak memory.

use std::time::Instant;

use tessera_core::{
    MatrixRef, NullContext, Task, TrainData,
    abi_stable::std_types::{ROption, RSlice, RString},
};

fn read(path: &str) -> (Vec<f32>, Vec<f32>, usize, bool) {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().expect("header").split(',').collect();
    let (mut x, mut y) = (Vec::new(), Vec::new());
    for line in lines.filter(|l| !l.trim().is_empty()) {
        let mut vals: Vec<f32> = line
            .split(',')
            .map(|v| v.trim().parse().expect("number"))
            .collect();
        y.push(vals.pop().expect("target"));
        x.extend(vals);
    }
    (x, y, header.len() - 1, header.last() == Some(&"target"))
}

fn auc(score: &[f32], y: &[f32]) -> f64 {
    let mut idx: Vec<usize> = (0..y.len()).collect();
    idx.sort_by(|&a, &b| score[a].total_cmp(&score[b]));
    let (mut rank_sum, mut i) = (0.0, 0);
    while i < idx.len() {
        let mut j = i;
        while j + 1 < idx.len() && score[idx[j + 1]] == score[idx[i]] {
            j += 1;
        }
        let mid = (i + j) as f64 / 2.0 + 1.0;
        rank_sum += (i..=j).filter(|&k| y[idx[k]] == 1.0).count() as f64 * mid;
        i = j + 1;
    }
    let pos = y.iter().filter(|&&v| v == 1.0).count() as f64;
    let neg = y.len() as f64 - pos;
    (rank_sum - pos * (pos + 1.0) / 2.0) / (pos * neg)
}

fn peak_mb() -> f64 {
    let s = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    s.lines()
        .find(|l| l.starts_with("VmHWM"))
        .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let prefix = args
        .get(1)
        .expect("usage: bench PREFIX [THREADS] [PARAMS] [LEARNER] [ROWS]");
    let threads: u32 = args.get(2).map_or(2, |t| t.parse().expect("threads"));
    let params = args.get(3).map_or("{}", String::as_str);
    let learner = args.get(4).map_or("random_forest", String::as_str);
    let (mut x, mut y, cols, regression) = read(&format!("{prefix}.train.csv"));
    if let Some(rows) = args.get(5).map(|r| r.parse::<usize>().expect("rows")) {
        x.truncate(rows * cols);
        y.truncate(rows);
    }
    let (tx, ty, _, _) = read(&format!("{prefix}.test.csv"));
    let task = if regression {
        Task::regression()
    } else {
        Task::classification(y.iter().chain(&ty).fold(0.0f32, |a, &b| a.max(b)) as u32 + 1)
    };
    let names: Vec<RString> = (0..cols).map(|i| format!("f{i}").into()).collect();
    let data = TrainData {
        x: MatrixRef::new(&x, y.len(), cols).unwrap(),
        y: RSlice::from_slice(&y),
        weights: ROption::RNone,
        feature_names: RSlice::from_slice(&names),
        task,
        valid: ROption::RNone,
    };
    let before = peak_mb();
    let ctx = NullContext { threads };
    let l = tessera_forest::plugin()
        .create_learner(learner, params)
        .unwrap();
    let t = Instant::now();
    let model = l.fit(ctx.as_ref(), data).unwrap();
    let fit = t.elapsed().as_secs_f64();
    let test = MatrixRef::new(&tx, ty.len(), cols).unwrap();
    let t = Instant::now();
    let (metric, name) = if regression {
        let p = model.predict(ctx.as_ref(), test).unwrap();
        let mean = ty.iter().map(|&v| f64::from(v)).sum::<f64>() / ty.len() as f64;
        let sse: f64 = p
            .iter()
            .zip(&ty)
            .map(|(&a, &b)| f64::from(a - b).powi(2))
            .sum();
        let sst: f64 = ty.iter().map(|&b| (f64::from(b) - mean).powi(2)).sum();
        (1.0 - sse / sst, "r2")
    } else {
        let p = model.predict_proba(ctx.as_ref(), test).unwrap();
        let k = p.cols as usize;
        let acc = p.data.chunks(k).zip(&ty).filter(|(r, t)| {
            let best = (0..k).fold(0, |b, j| if r[j] > r[b] { j } else { b });
            best as f32 == **t
        });
        let acc = acc.count() as f64 / ty.len() as f64;
        if k == 2 {
            let s: Vec<f32> = p.data.chunks(2).map(|r| r[1]).collect();
            println!("auc {:.4}", auc(&s, &ty));
        }
        (acc, "accuracy")
    };
    let mut pt = t.elapsed().as_secs_f64();
    let repeat: usize = std::env::var("REPEAT").map_or(1, |r| r.parse().expect("REPEAT"));
    for _ in 1..repeat {
        let t = Instant::now();
        let _ = model.predict(ctx.as_ref(), test).unwrap();
        pt = pt.min(t.elapsed().as_secs_f64());
    }
    let bytes = model.to_bytes().unwrap().len();
    let d: serde_json::Value = serde_json::from_str(&model.describe()).unwrap();
    println!(
        "rows {} fit {fit:.2}s predict {pt:.3}s ({:.0} rows/s) size {:.1}MB nodes {} {name} {metric:.4} oob {} peak {:.0}MB (data {before:.0}MB)",
        y.len(),
        ty.len() as f64 / pt,
        bytes as f64 / 1e6,
        d["total_nodes"],
        d["oob_score"],
        peak_mb(),
    );
}
