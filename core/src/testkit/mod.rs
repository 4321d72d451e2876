//! A conformance kit every learner plugin runs in its own tests (feature
//! `testkit`): parameter errors, shapes, probabilities, serialization
//! round-trip, refusal of damaged bytes, empty and malformed input, and
//! determinism for a fixed `random_state` across thread budgets.
//!
//! ```ignore
//! #[test]
//! fn conformance() {
//!     tessera_core::testkit::check_learner(&my_plugin::plugin(), "my_learner", "{}");
//! }
//! ```
//!
//! Meta-learners' unit tests also find here an in-process host serving a
//! plugin's learners ([`FakeHost`]), parts of tiny base learners
//! ([`fakes`]), and random tree ensembles with a model made of them
//! ([`trees`]).

pub mod fakes;
mod host;
pub mod trees;

pub use host::{FakeHost, bytes, summary};

use abi_stable::std_types::{ROption, RSlice, RString};
use serde_json::Value;

use crate::{
    ErrorKind, LearnerBox, MatrixRef, ModelBox, NullContext, PluginError, Task, TrainData,
    plugin::PluginDef,
};

/// A small synthetic dataset.
#[derive(Clone, Debug)]
pub struct Case {
    /// Row-major features.
    pub x: Vec<f32>,
    /// Targets (class indices or values).
    pub y: Vec<f32>,
    /// Rows.
    pub rows: usize,
    /// Columns.
    pub cols: usize,
    /// The task.
    pub task: Task,
    /// `f0..`.
    pub names: Vec<RString>,
}

impl Case {
    /// The training view of this case.
    pub fn data(&self) -> TrainData<'_> {
        TrainData {
            x: self.matrix(),
            y: RSlice::from_slice(&self.y),
            weights: ROption::RNone,
            feature_names: RSlice::from_slice(&self.names),
            task: self.task,
            valid: ROption::RNone,
        }
    }

    /// The features as a matrix.
    pub fn matrix(&self) -> MatrixRef<'_> {
        MatrixRef::new(&self.x, self.rows, self.cols).expect("consistent case")
    }
}

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> f32 {
        // SplitMix64: enough for test data, and the same on every platform.
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        ((z ^ (z >> 31)) >> 40) as f32 / (1u64 << 24) as f32
    }
}

fn names(cols: usize) -> Vec<RString> {
    (0..cols).map(|i| RString::from(format!("f{i}"))).collect()
}

/// `classes` Gaussian-ish blobs in `cols` dimensions, learnable by any
/// reasonable classifier.
pub fn classification(rows: usize, cols: usize, classes: u32, seed: u64) -> Case {
    let mut r = Rng(seed);
    let mut x = Vec::with_capacity(rows * cols);
    let mut y = Vec::with_capacity(rows);
    for i in 0..rows {
        let c = (i as u32) % classes;
        for j in 0..cols {
            let centre = if j % classes as usize == c as usize {
                2.0
            } else {
                0.0
            };
            x.push(centre + r.next() - 0.5);
        }
        y.push(c as f32);
    }
    Case {
        x,
        y,
        rows,
        cols,
        task: Task::classification(classes),
        names: names(cols),
    }
}

/// A noisy linear target in `cols` dimensions.
pub fn regression(rows: usize, cols: usize, seed: u64) -> Case {
    let mut r = Rng(seed);
    let mut x = Vec::with_capacity(rows * cols);
    let mut y = Vec::with_capacity(rows);
    for _ in 0..rows {
        let mut t = 0.0;
        for j in 0..cols {
            let v = r.next() * 4.0 - 2.0;
            t += v * (j as f32 + 1.0);
            x.push(v);
        }
        y.push(t + 0.1 * (r.next() - 0.5));
    }
    Case {
        x,
        y,
        rows,
        cols,
        task: Task::regression(),
        names: names(cols),
    }
}

/// The coefficient of determination of `pred` for `y`.
pub fn r2(pred: &[f32], y: &[f32]) -> f64 {
    let mean = y.iter().map(|&v| f64::from(v)).sum::<f64>() / y.len() as f64;
    let res: f64 = pred
        .iter()
        .zip(y)
        .map(|(p, t)| (f64::from(*p) - f64::from(*t)).powi(2))
        .sum();
    let tot: f64 = y.iter().map(|&t| (f64::from(t) - mean).powi(2)).sum();
    1.0 - res / tot
}

fn with_param(params_json: &str, key: &str, value: Value) -> String {
    let mut v: Value = if params_json.trim().is_empty() {
        Value::Object(Default::default())
    } else {
        serde_json::from_str(params_json).expect("testkit: params must be a JSON object")
    };
    v[key] = value;
    v.to_string()
}

fn create(def: &PluginDef, learner: &str, params: &str) -> LearnerBox {
    def.create_learner(learner, params)
        .unwrap_or_else(|e| panic!("testkit: creating `{learner}` with {params}: {e}"))
}

fn fit(learner: &LearnerBox, case: &Case, threads: u32) -> ModelBox {
    let ctx = NullContext { threads };
    learner
        .fit(ctx.as_ref(), case.data())
        .into_result()
        .unwrap_or_else(|e| panic!("testkit: fit on {} failed: {e}", case.task.name()))
}

fn predict(model: &ModelBox, x: MatrixRef<'_>) -> Result<Vec<f32>, PluginError> {
    model
        .predict(NullContext::default().as_ref(), x)
        .into_result()
        .map(|v| v.into_vec())
}

fn assert_not_panic<T>(r: Result<T, PluginError>, what: &str) {
    if let Err(e) = r {
        assert_ne!(e.kind, ErrorKind::PANIC, "testkit: {what} panicked: {e}");
    }
}

/// Runs the whole kit on learner `learner` of `def`, with `params_json` as
/// the base parameters (keep them small so the kit is quick). Panics with a
/// message naming the failed property.
pub fn check_learner(def: &PluginDef, learner: &str, params_json: &str) {
    check_params(def, learner);
    let cls = classification(90, 4, 3, 1);
    let reg = regression(80, 3, 2);
    for case in [&cls, &reg] {
        check_case(def, learner, params_json, case);
    }
    check_determinism(def, learner, params_json, &cls);
    check_several_targets(def, learner, params_json, &reg);
}

/// Two regression targets: a learner that declares
/// [`multi_output`](crate::plugin::LearnerImpl::multi_output) returns two
/// values per row; any other is refused with an input error before it
/// runs.
fn check_several_targets(def: &PluginDef, learner: &str, params_json: &str, case: &Case) {
    let y: Vec<f32> = case.y.iter().flat_map(|&t| [t, -t]).collect();
    let mut data = case.data();
    data.y = RSlice::from_slice(&y);
    data.task = Task::regression_targets(2);
    let l = create(def, learner, params_json);
    match l.fit(NullContext::default().as_ref(), data).into_result() {
        Ok(model) => {
            let pred = predict(&model, case.matrix())
                .unwrap_or_else(|e| panic!("testkit: two targets: predict: {e}"));
            assert_eq!(
                pred.len(),
                2 * case.rows,
                "testkit: two targets: two values per row"
            );
        }
        Err(e) => {
            assert_eq!(
                e.kind,
                ErrorKind::INVALID_INPUT,
                "testkit: two targets: {e}"
            );
            assert!(
                e.message.contains("one regression target"),
                "testkit: two targets: {e}"
            );
        }
    }
}

fn check_params(def: &PluginDef, learner: &str) {
    match def.create_learner(learner, r#"{"no_such_parameter_xyz": 1}"#) {
        Ok(_) => panic!("testkit: `{learner}` accepted an unknown parameter"),
        Err(e) => {
            assert_eq!(
                e.kind,
                ErrorKind::INVALID_PARAMS,
                "testkit: unknown parameter: {e}"
            );
            assert!(
                e.message.contains("no_such_parameter_xyz"),
                "testkit: message must name the key: {e}"
            );
        }
    }
    assert!(
        def.create_learner(learner, "[1, 2]").is_err(),
        "testkit: non-object params accepted"
    );
    assert!(def.create_learner("no_such_learner_xyz", "").is_err());
}

fn check_case(def: &PluginDef, learner: &str, params_json: &str, case: &Case) {
    let what = case.task.name();
    let model = fit(&create(def, learner, params_json), case, 1);
    assert_eq!(model.task(), case.task, "testkit: {what}: model task");
    assert_eq!(
        model.n_features() as usize,
        case.cols,
        "testkit: {what}: n_features"
    );

    let pred =
        predict(&model, case.matrix()).unwrap_or_else(|e| panic!("testkit: {what}: predict: {e}"));
    assert_eq!(
        pred.len(),
        case.rows,
        "testkit: {what}: one prediction per row"
    );
    let proba = model
        .predict_proba(NullContext::default().as_ref(), case.matrix())
        .into_result();
    if case.task.is_classification() {
        let k = case.task.n_classes as usize;
        for &p in &pred {
            assert!(
                p.fract() == 0.0 && p >= 0.0 && (p as usize) < k,
                "testkit: {what}: class index {p}"
            );
        }
        let right = pred.iter().zip(&case.y).filter(|(a, b)| a == b).count();
        assert!(
            right * 10 >= case.rows * 8,
            "testkit: {what}: only {right}/{} right on easy data",
            case.rows
        );
        let proba = proba.unwrap_or_else(|e| panic!("testkit: {what}: predict_proba: {e}"));
        assert_eq!(
            (proba.rows as usize, proba.cols as usize),
            (case.rows, k),
            "testkit: proba shape"
        );
        for row in proba.data.chunks(k) {
            let s: f32 = row.iter().sum();
            assert!(
                row.iter().all(|&p| (0.0..=1.0 + 1e-5).contains(&p)),
                "testkit: proba out of [0,1]: {row:?}"
            );
            assert!((s - 1.0).abs() < 1e-4, "testkit: proba row sums to {s}");
        }
    } else {
        assert!(
            pred.iter().all(|p| p.is_finite()),
            "testkit: {what}: non-finite prediction"
        );
        match proba {
            Err(e) => assert_eq!(
                e.kind,
                ErrorKind::UNSUPPORTED,
                "testkit: regressor predict_proba: {e}"
            ),
            Ok(_) => panic!("testkit: a regressor returned probabilities"),
        }
    }

    let summary: Value = serde_json::from_str(&model.describe())
        .unwrap_or_else(|e| panic!("testkit: {what}: describe is not JSON: {e}"));
    assert!(
        summary.is_object(),
        "testkit: describe must be a JSON object"
    );

    // Round trip: the reloaded model answers exactly the same.
    let bytes = model
        .to_bytes()
        .into_result()
        .unwrap_or_else(|e| panic!("testkit: to_bytes: {e}"));
    let back = def
        .load_model(learner, &bytes)
        .unwrap_or_else(|e| panic!("testkit: {what}: load of its own bytes: {e}"));
    assert_eq!(
        predict(&back, case.matrix()).unwrap(),
        pred,
        "testkit: {what}: reloaded model differs"
    );

    // Damaged bytes are refused, never a panic.
    let mut damaged: Vec<Vec<u8>> = vec![Vec::new(), b"garbage".to_vec(), vec![0xff; 64]];
    for cut in [1, 2, 8, bytes.len() / 2, bytes.len().saturating_sub(1)] {
        damaged.push(bytes[..cut.min(bytes.len())].to_vec());
    }
    for d in damaged {
        let r = crate::plugin::guard(|| def.load_model(learner, &d)).into_result();
        match r {
            Ok(_) if d.len() < bytes.len() => panic!(
                "testkit: {what}: loaded {} of {} bytes",
                d.len(),
                bytes.len()
            ),
            Ok(_) => {}
            Err(e) => assert_ne!(
                e.kind,
                ErrorKind::PANIC,
                "testkit: {what}: load panicked: {e}"
            ),
        }
    }

    // Wrong width is an input error; no rows is fine; NaN does not panic.
    let wide: Vec<f32> = vec![0.0; 2 * (case.cols + 1)];
    match predict(&model, MatrixRef::new(&wide, 2, case.cols + 1).unwrap()) {
        Err(e) => assert_eq!(
            e.kind,
            ErrorKind::INVALID_INPUT,
            "testkit: wrong width: {e}"
        ),
        Ok(_) => panic!("testkit: {what}: predict accepted a wrong column count"),
    }
    let none = predict(&model, MatrixRef::new(&[], 0, case.cols).unwrap())
        .unwrap_or_else(|e| panic!("testkit: {what}: predict on zero rows: {e}"));
    assert!(none.is_empty());
    let nan = vec![f32::NAN; case.cols];
    assert_not_panic(
        predict(&model, MatrixRef::new(&nan, 1, case.cols).unwrap()),
        "predict on NaN",
    );
}

fn check_determinism(def: &PluginDef, learner: &str, params_json: &str, case: &Case) {
    let Some(spec) = def.learners.iter().find(|l| l.name == learner) else {
        return;
    };
    if !spec.params.iter().any(|p| p.name == "random_state") {
        return;
    }
    let params = with_param(params_json, "random_state", Value::from(7));
    let l = create(def, learner, &params);
    let a = predict(&fit(&l, case, 1), case.matrix()).unwrap();
    let b = predict(&fit(&l, case, 1), case.matrix()).unwrap();
    let c = predict(&fit(&l, case, 2), case.matrix()).unwrap();
    assert_eq!(a, b, "testkit: same random_state, different models");
    assert_eq!(a, c, "testkit: 1 and 2 threads give different models");
    let pa = fit(&l, case, 1).to_bytes().into_result().unwrap();
    let pc = fit(&l, case, 2).to_bytes().into_result().unwrap();
    assert_eq!(pa, pc, "testkit: 1 and 2 threads serialize differently");
}
