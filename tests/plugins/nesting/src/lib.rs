//! Test support shared by the `faulty` and `meta` test plugins: an averaging
//! meta-learner, parameterised by the component name it is exported under.
//!
//! It trains `n` copies of any learner the host knows (created through
//! [`HostContext::create_learner`](tessera_core::HostContext::create_learner)),
//! in parallel inside a pool of the caller's thread budget, each child getting
//! an equal share of that budget through a [`SubContext`]. Its models average
//! the children's predictions (regression) or probabilities (classification,
//! predicting the most probable class). They cannot be saved: a plugin cannot
//! load another plugin's model without the host.
//!
//! Exported as `relay` by `tessera-test-faulty` and as `meta_ensemble` by
//! `tessera-test-meta`, it lets the host's tests nest learners across plugins
//! (`meta_ensemble -> relay -> meta_ensemble -> random_forest`).

use std::sync::atomic::{AtomicU64, Ordering};

use rayon::prelude::*;
use serde_json::{Value, json};
use tessera_core::{
    HostContextRef, Matrix, MatrixRef, ModelBox, PluginError, Task, TrainData,
    params::{Check, ParamSpec, Params},
    plugin::{LearnerImpl, ModelImpl, SubContext, with_thread_budget},
};

/// The parameters of the averaging learner: `estimator`, `estimator_params`
/// and `n`.
pub fn param_specs() -> Vec<ParamSpec> {
    vec![
        ParamSpec::custom(
            "estimator",
            "string",
            Value::from("random_forest"),
            "the learner to train copies of (a component of any loaded plugin)",
            check_learner_name,
        ),
        ParamSpec {
            name: "estimator_params",
            ty: "table".into(),
            default: json!({}),
            doc: "the parameters of each copy",
            check: Check::Table,
        },
        ParamSpec::int("n", Some(2), 1, "how many copies to train and average"),
    ]
}

fn check_learner_name(v: &Value) -> Result<(), String> {
    match v.as_str() {
        Some(s) if !s.trim().is_empty() => Ok(()),
        _ => Err(format!("expected a learner name, got {v}")),
    }
}

/// Builds the averaging learner exported as `component` from checked
/// parameters (see [`param_specs`]).
///
/// # Errors
/// Never; the signature matches `LearnerDef::create`.
pub fn create(
    component: &'static str,
    params: &Params,
) -> Result<Box<dyn LearnerImpl>, PluginError> {
    Ok(Box::new(AveragingLearner {
        component,
        estimator: params.str("estimator").to_string(),
        estimator_params: params.get("estimator_params").to_string(),
        n: params.usize("n").max(1),
    }))
}

/// The `load` of the averaging learner exported as `component`: always an
/// error, since its models cannot be saved.
///
/// # Errors
/// Always.
pub fn load(component: &'static str, _bytes: &[u8]) -> Result<Box<dyn ModelImpl>, PluginError> {
    Err(PluginError::unsupported(format!(
        "{component} models cannot be saved, so they cannot be loaded"
    )))
}

/// The thread budget of each of `n` children of a call that may use
/// `threads` threads: an equal share, at least one.
pub fn child_threads(threads: u32, n: usize) -> u32 {
    let n = u32::try_from(n.max(1)).unwrap_or(u32::MAX);
    (threads / n).max(1)
}

/// Runs `f` for every item in parallel within the budget of `ctx`, each call
/// getting a child context with its share of that budget; the results come
/// back in item order.
fn for_each_child<I, T>(
    ctx: &HostContextRef<'_>,
    items: &[I],
    f: impl Fn(usize, &I, HostContextRef<'_>) -> Result<T, PluginError> + Sync,
) -> Result<Vec<T>, PluginError>
where
    I: Sync,
    T: Send,
{
    let threads = ctx.threads();
    let share = child_threads(threads, items.len());
    with_thread_budget(threads as usize, || {
        items
            .par_iter()
            .enumerate()
            .map(|(i, item)| {
                let sub = SubContext::new(ctx, share);
                f(i, item, sub.as_ref())
            })
            .collect::<Result<Vec<T>, PluginError>>()
    })?
}

struct AveragingLearner {
    component: &'static str,
    estimator: String,
    estimator_params: String,
    n: usize,
}

impl AveragingLearner {
    /// Keeps the child's error kind and message, saying which child failed.
    fn child_error(&self, i: usize, what: &str, e: PluginError) -> PluginError {
        PluginError::new(
            e.kind,
            format!(
                "{}: {what} of child {i} (`{}`) failed: {}",
                self.component, self.estimator, e.message
            ),
        )
    }
}

impl LearnerImpl for AveragingLearner {
    fn fit(
        &self,
        ctx: &HostContextRef<'_>,
        data: &TrainData<'_>,
    ) -> Result<Box<dyn ModelImpl>, PluginError> {
        if ctx.is_cancelled() {
            return Err(PluginError::cancelled());
        }
        let learners = (0..self.n)
            .map(|i| {
                ctx.create_learner(
                    self.estimator.as_str().into(),
                    self.estimator_params.as_str().into(),
                )
                .into_result()
                .map_err(|e| self.child_error(i, "creation", e))
            })
            .collect::<Result<Vec<_>, _>>()?;

        let data = *data;
        let done = AtomicU64::new(0);
        let total = self.n as u64;
        let children = for_each_child(ctx, &learners, |i, learner, sub| {
            let model = learner
                .fit(sub, data)
                .into_result()
                .map_err(|e| self.child_error(i, "training", e))?;
            ctx.progress(done.fetch_add(1, Ordering::Relaxed) + 1, total);
            Ok(model)
        })?;

        for (i, child) in children.iter().enumerate() {
            if child.task() != data.task || child.n_features() != data.x.cols {
                return Err(PluginError::internal(format!(
                    "{}: child {i} (`{}`) returned a model for a different task or feature count",
                    self.component, self.estimator
                )));
            }
        }
        Ok(Box::new(AveragingModel {
            component: self.component,
            estimator: self.estimator.clone(),
            task: data.task,
            n_features: data.x.cols(),
            children,
        }))
    }
}

struct AveragingModel {
    component: &'static str,
    estimator: String,
    task: Task,
    n_features: usize,
    children: Vec<ModelBox>,
}

impl AveragingModel {
    fn child_error(&self, i: usize, e: PluginError) -> PluginError {
        PluginError::new(
            e.kind,
            format!(
                "{}: prediction of child {i} (`{}`) failed: {}",
                self.component, self.estimator, e.message
            ),
        )
    }

    fn bad_shape(&self, i: usize) -> PluginError {
        PluginError::internal(format!(
            "{}: child {i} (`{}`) returned an output of the wrong shape",
            self.component, self.estimator
        ))
    }

    /// Element-wise mean of the children's outputs, each `len` long.
    fn average(&self, outputs: Vec<Vec<f32>>, len: usize) -> Result<Vec<f32>, PluginError> {
        let mut sum = vec![0.0f64; len];
        for (i, out) in outputs.iter().enumerate() {
            if out.len() != len {
                return Err(self.bad_shape(i));
            }
            for (s, &v) in sum.iter_mut().zip(out) {
                *s += f64::from(v);
            }
        }
        let n = outputs.len().max(1) as f64;
        Ok(sum.into_iter().map(|s| (s / n) as f32).collect())
    }
}

impl ModelImpl for AveragingModel {
    fn task(&self) -> Task {
        self.task
    }

    fn n_features(&self) -> usize {
        self.n_features
    }

    fn predict(&self, ctx: &HostContextRef<'_>, x: MatrixRef<'_>) -> Result<Vec<f32>, PluginError> {
        if self.task.is_classification() {
            let proba = self.predict_proba(ctx, x)?;
            let k = proba.cols as usize;
            return Ok(proba
                .data
                .chunks(k.max(1))
                .map(|row| {
                    let mut best = 0;
                    for (c, &p) in row.iter().enumerate() {
                        if p > row[best] {
                            best = c;
                        }
                    }
                    best as f32
                })
                .collect());
        }
        let outputs = for_each_child(ctx, &self.children, |i, child, sub| {
            child
                .predict(sub, x)
                .into_result()
                .map(Vec::from)
                .map_err(|e| self.child_error(i, e))
        })?;
        self.average(outputs, x.rows())
    }

    fn predict_proba(
        &self,
        ctx: &HostContextRef<'_>,
        x: MatrixRef<'_>,
    ) -> Result<Matrix, PluginError> {
        if !self.task.is_classification() {
            return Err(PluginError::unsupported(format!(
                "{} regression models do not predict probabilities",
                self.component
            )));
        }
        let k = self.task.n_classes as usize;
        let outputs = for_each_child(ctx, &self.children, |i, child, sub| {
            let m = child
                .predict_proba(sub, x)
                .into_result()
                .map_err(|e| self.child_error(i, e))?;
            if m.rows as usize != x.rows() || m.cols as usize != k {
                return Err(self.bad_shape(i));
            }
            Ok(Vec::from(m.data))
        })?;
        Ok(Matrix::new(
            self.average(outputs, x.rows() * k)?,
            x.rows(),
            k,
        ))
    }

    fn describe(&self) -> Value {
        let children: Vec<Value> = self
            .children
            .iter()
            .map(|c| serde_json::from_str(c.describe().as_str()).unwrap_or(Value::Null))
            .collect();
        json!({
            "component": self.component,
            "estimator": self.estimator,
            "n": self.children.len(),
            "task": self.task.name(),
            "n_features": self.n_features,
            "children": children,
        })
    }

    fn to_bytes(&self) -> Result<Vec<u8>, PluginError> {
        Err(PluginError::unsupported(format!(
            "{} models cannot be saved",
            self.component
        )))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::OnceLock;

    use tessera_core::{
        ErrorKind, HostContext, HostContext_TO, LearnerBox, NullContext,
        abi_stable::{
            RRef,
            sabi_trait::TD_Opaque,
            std_types::{RResult, RStr, RString},
        },
        plugin::{LearnerDef, PluginDef},
    };

    use super::*;

    /// A learner whose model remembers the thread budget it was trained
    /// with: it predicts `threads + x[0]`, or all probability on class
    /// `(threads - 1) % n_classes`.
    struct Probe;

    struct ProbeModel {
        task: Task,
        n_features: usize,
        threads: u32,
    }

    impl LearnerImpl for Probe {
        fn fit(
            &self,
            ctx: &HostContextRef<'_>,
            data: &TrainData<'_>,
        ) -> Result<Box<dyn ModelImpl>, PluginError> {
            Ok(Box::new(ProbeModel {
                task: data.task,
                n_features: data.x.cols(),
                threads: ctx.threads(),
            }))
        }
    }

    impl ModelImpl for ProbeModel {
        fn task(&self) -> Task {
            self.task
        }
        fn n_features(&self) -> usize {
            self.n_features
        }
        fn predict(
            &self,
            _ctx: &HostContextRef<'_>,
            x: MatrixRef<'_>,
        ) -> Result<Vec<f32>, PluginError> {
            Ok((0..x.rows())
                .map(|r| self.threads as f32 + x.row(r)[0])
                .collect())
        }
        fn predict_proba(
            &self,
            _ctx: &HostContextRef<'_>,
            x: MatrixRef<'_>,
        ) -> Result<Matrix, PluginError> {
            let k = self.task.n_classes as usize;
            let hot = (self.threads as usize - 1) % k;
            let data = (0..x.rows() * k)
                .map(|i| f32::from(u8::from(i % k == hot)))
                .collect();
            Ok(Matrix::new(data, x.rows(), k))
        }
        fn describe(&self) -> Value {
            json!({ "threads": self.threads })
        }
        fn to_bytes(&self) -> Result<Vec<u8>, PluginError> {
            Ok(vec![])
        }
    }

    struct Boom;

    impl LearnerImpl for Boom {
        fn fit(
            &self,
            _: &HostContextRef<'_>,
            _: &TrainData<'_>,
        ) -> Result<Box<dyn ModelImpl>, PluginError> {
            panic!("boom in fit")
        }
    }

    fn no_load(_: &[u8], _: &HostContextRef<'_>) -> Result<Box<dyn ModelImpl>, PluginError> {
        Err(PluginError::corrupt("nothing to load"))
    }

    fn test_plugin() -> &'static PluginDef {
        static DEF: OnceLock<PluginDef> = OnceLock::new();
        DEF.get_or_init(|| PluginDef {
            name: "nesting-test",
            version: "0",
            learners: vec![
                LearnerDef {
                    name: "avg",
                    description: "averaging",
                    params: param_specs(),
                    create: |p| create("avg", &p),
                    load: |b, _| load("avg", b),
                },
                LearnerDef {
                    name: "probe",
                    description: "records its thread budget",
                    params: vec![],
                    create: |_| Ok(Box::new(Probe)),
                    load: no_load,
                },
                LearnerDef {
                    name: "boom",
                    description: "panics",
                    params: vec![],
                    create: |_| Ok(Box::new(Boom)),
                    load: no_load,
                },
            ],
            compressors: vec![],
            decomposers: vec![],
            models: Vec::new(),
        })
    }

    /// A host that knows only [`test_plugin`].
    struct TestHost {
        threads: u32,
    }

    impl HostContext for TestHost {
        fn threads(&self) -> u32 {
            self.threads
        }
        fn is_cancelled(&self) -> bool {
            false
        }
        fn progress(&self, _done: u64, _total: u64) {}
        fn log(&self, _level: u8, _message: RStr<'_>) {}
        fn create_learner(
            &self,
            name: RStr<'_>,
            params: RStr<'_>,
        ) -> RResult<LearnerBox, PluginError> {
            test_plugin()
                .create_learner(name.as_str(), params.as_str())
                .into()
        }
        fn load_model(
            &self,
            component: RStr<'_>,
            bytes: tessera_core::abi_stable::std_types::RSlice<'_, u8>,
        ) -> RResult<ModelBox, PluginError> {
            test_plugin()
                .load_model(component.as_str(), bytes.as_slice())
                .into()
        }
    }

    fn fit_with(threads: u32, params: &str, task: Task) -> Result<ModelBox, PluginError> {
        let host = TestHost { threads };
        let ctx = HostContext_TO::from_ptr(RRef::new(&host), TD_Opaque);
        let x = [0.5f32, 1.0, 0.25, 2.0];
        let y = [0.0f32, 1.0];
        let names = [RString::from("a"), RString::from("b")];
        let data = TrainData {
            x: MatrixRef::new(&x, 2, 2).unwrap(),
            y: y.as_slice().into(),
            weights: tessera_core::abi_stable::std_types::ROption::RNone,
            feature_names: names.as_slice().into(),
            task,
            valid: None.into(),
        };
        let learner = test_plugin().create_learner("avg", params)?;
        learner.fit(ctx, data).into_result()
    }

    fn predict(model: &ModelBox) -> Vec<f32> {
        let x = [0.5f32, 1.0, 0.25, 2.0];
        let ctx = NullContext { threads: 3 };
        model
            .predict(ctx.as_ref(), MatrixRef::new(&x, 2, 2).unwrap())
            .into_result()
            .unwrap()
            .into()
    }

    #[test]
    fn children_share_the_budget() {
        assert_eq!(child_threads(4, 2), 2);
        assert_eq!(child_threads(1, 2), 1);
        assert_eq!(child_threads(5, 2), 2);
        assert_eq!(child_threads(3, 8), 1);

        let m = fit_with(4, r#"{"estimator": "probe", "n": 2}"#, Task::regression()).unwrap();
        assert_eq!(predict(&m), vec![2.5, 2.25]);
        let m = fit_with(1, r#"{"estimator": "probe", "n": 3}"#, Task::regression()).unwrap();
        assert_eq!(predict(&m), vec![1.5, 1.25]);
    }

    #[test]
    fn nested_children_share_again() {
        let params = r#"{"estimator": "avg", "n": 2,
                         "estimator_params": {"estimator": "probe", "n": 2}}"#;
        let m = fit_with(4, params, Task::regression()).unwrap();
        assert_eq!(predict(&m), vec![1.5, 1.25]);
        let d: Value = serde_json::from_str(m.describe().as_str()).unwrap();
        assert_eq!(d["n"], 2);
        assert_eq!(d["children"][1]["children"][0]["threads"], 1);
        let m = fit_with(8, params, Task::regression()).unwrap();
        assert_eq!(predict(&m), vec![2.5, 2.25]);
    }

    #[test]
    fn classification_averages_probabilities() {
        let m = fit_with(
            2,
            r#"{"estimator": "probe", "n": 2}"#,
            Task::classification(3),
        )
        .unwrap();
        assert_eq!(predict(&m), vec![0.0, 0.0]);
        let m = fit_with(
            4,
            r#"{"estimator": "probe", "n": 2}"#,
            Task::classification(3),
        )
        .unwrap();
        assert_eq!(predict(&m), vec![1.0, 1.0]);
        let x = [0.5f32, 1.0];
        let ctx = NullContext::default();
        let p = m
            .predict_proba(ctx.as_ref(), MatrixRef::new(&x, 1, 2).unwrap())
            .unwrap();
        assert_eq!(p.data.as_slice(), &[0.0, 1.0, 0.0]);
    }

    #[test]
    fn child_failures_keep_their_kind() {
        let e = fit_with(2, r#"{"estimator": "boom"}"#, Task::regression())
            .err()
            .unwrap();
        assert_eq!(e.kind, ErrorKind::PANIC);
        assert!(e.message.contains("boom in fit"), "{e}");
        assert!(e.message.contains("avg: training of child"), "{e}");

        let e = fit_with(2, r#"{"estimator": "nope"}"#, Task::regression())
            .err()
            .unwrap();
        assert_eq!(e.kind, ErrorKind::UNSUPPORTED);
        assert!(e.message.contains("no learner `nope`"), "{e}");

        let e = fit_with(
            2,
            r#"{"estimator": "avg", "estimator_params": {"n": 0}}"#,
            Task::regression(),
        )
        .err()
        .unwrap();
        assert_eq!(e.kind, ErrorKind::INVALID_PARAMS);
    }

    #[test]
    fn without_a_host_there_are_no_children() {
        let x = [1.0f32];
        let y = [1.0f32];
        let names = [RString::from("a")];
        let data = TrainData {
            x: MatrixRef::new(&x, 1, 1).unwrap(),
            y: y.as_slice().into(),
            weights: tessera_core::abi_stable::std_types::ROption::RNone,
            feature_names: names.as_slice().into(),
            task: Task::regression(),
            valid: None.into(),
        };
        let learner = test_plugin().create_learner("avg", "").unwrap();
        let e = learner
            .fit(NullContext::default().as_ref(), data)
            .into_result()
            .err()
            .unwrap();
        assert_eq!(e.kind, ErrorKind::UNSUPPORTED);
        assert!(e.message.contains("random_forest"), "{e}");
    }

    #[test]
    fn models_cannot_be_saved() {
        let m = fit_with(1, r#"{"estimator": "probe"}"#, Task::regression()).unwrap();
        let e = m.to_bytes().into_result().err().unwrap();
        assert_eq!(e.kind, ErrorKind::UNSUPPORTED);
        assert_eq!(e.message, "avg models cannot be saved");
        assert!(test_plugin().load_model("avg", b"").is_err());
    }

    #[test]
    fn bad_params_are_refused() {
        for bad in [
            r#"{"n": 0}"#,
            r#"{"estimator": ""}"#,
            r#"{"estimator_params": 3}"#,
        ] {
            let e = test_plugin().create_learner("avg", bad).err().unwrap();
            assert_eq!(e.kind, ErrorKind::INVALID_PARAMS, "{bad}");
        }
    }
}
