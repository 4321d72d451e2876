//! Test plugin `faulty`: learners that fail on purpose, so that the host's
//! tests can check that failures are contained and reported.
//!
//! * `panic_fit`: `fit` panics with "deliberate panic in fit".
//! * `panic_predict`: `fit` succeeds; the model's `predict` and
//!   `predict_proba` panic with "deliberate panic in predict", inside a rayon
//!   worker of a two-thread pool. Its models save and load, so the panic can
//!   also be met after loading.
//! * `error_fit`: `fit` returns an invalid-input error,
//!   "deliberate error in fit".
//! * `relay`: the averaging meta-learner of [`tessera_test_nesting`]
//!   (parameters `estimator`, `estimator_params`, `n`); its models cannot be
//!   saved.
//! * `kill_predict` (parameter `kill_file`): its models answer class 0
//!   (probabilities uniform), except that a prediction that finds the file
//!   `kill_file` deletes it and kills its own process with SIGKILL: the
//!   crash of a graph's worker process, once.
//! * compressor `first_trees` (parameter `n`): keeps a tree ensemble's
//!   first `n` trees, so graphs' `compress = [...]` can be tested before
//!   real compressors exist.

use rayon::prelude::*;
use serde_json::{Value, json};
use tessera_core::{
    HostContextRef, Matrix, MatrixRef, PluginError, Task, TrainData,
    params::{ParamSpec, Params},
    plugin::{
        CompressorDef, CompressorImpl, LearnerDef, LearnerImpl, ModelImpl, PluginDef,
        with_thread_budget,
    },
};

/// The message of the panic in `panic_fit`.
pub const FIT_PANIC: &str = "deliberate panic in fit";
/// The message of the panic in the predictions of `panic_predict` models.
pub const PREDICT_PANIC: &str = "deliberate panic in predict";
/// The message of the error returned by `error_fit`.
pub const FIT_ERROR: &str = "deliberate error in fit";

struct PanicFit;

impl LearnerImpl for PanicFit {
    fn fit(
        &self,
        _ctx: &HostContextRef<'_>,
        _data: &TrainData<'_>,
    ) -> Result<Box<dyn ModelImpl>, PluginError> {
        panic!("{FIT_PANIC}");
    }
}

struct ErrorFit;

impl LearnerImpl for ErrorFit {
    fn fit(
        &self,
        _ctx: &HostContextRef<'_>,
        _data: &TrainData<'_>,
    ) -> Result<Box<dyn ModelImpl>, PluginError> {
        Err(PluginError::input(FIT_ERROR))
    }
}

struct PanicPredict;

impl LearnerImpl for PanicPredict {
    fn fit(
        &self,
        _ctx: &HostContextRef<'_>,
        data: &TrainData<'_>,
    ) -> Result<Box<dyn ModelImpl>, PluginError> {
        Ok(Box::new(PanickyModel {
            task: data.task,
            n_features: data.x.cols(),
        }))
    }
}

/// A model that panics whenever it is asked to predict.
struct PanickyModel {
    task: Task,
    n_features: usize,
}

const MAGIC: &[u8; 7] = b"FAULTY\x01";
const MODEL_LEN: usize = MAGIC.len() + 1 + 4 + 8;

impl PanickyModel {
    /// Panics inside a worker of a two-thread pool: the panic has to travel
    /// back through rayon before the boundary catches it.
    fn panic_in_worker() -> Result<(), PluginError> {
        with_thread_budget(2, || {
            (0..2)
                .into_par_iter()
                .for_each(|_| panic!("{PREDICT_PANIC}"));
        })
    }

    fn from_bytes(bytes: &[u8]) -> Result<Self, PluginError> {
        let corrupt = || PluginError::corrupt("not a panic_predict model");
        if bytes.len() != MODEL_LEN || !bytes.starts_with(MAGIC) {
            return Err(corrupt());
        }
        let rest = &bytes[MAGIC.len()..];
        let kind = rest[0];
        let n_classes = u32::from_le_bytes(rest[1..5].try_into().map_err(|_| corrupt())?);
        let n_features = u64::from_le_bytes(rest[5..13].try_into().map_err(|_| corrupt())?);
        let task = match kind {
            Task::REGRESSION if n_classes == 1 => Task::regression(),
            Task::CLASSIFICATION => Task::classification(n_classes),
            _ => return Err(corrupt()),
        };
        Ok(Self {
            task,
            n_features: usize::try_from(n_features).map_err(|_| corrupt())?,
        })
    }
}

impl ModelImpl for PanickyModel {
    fn task(&self) -> Task {
        self.task
    }

    fn n_features(&self) -> usize {
        self.n_features
    }

    fn predict(
        &self,
        _ctx: &HostContextRef<'_>,
        _x: MatrixRef<'_>,
    ) -> Result<Vec<f32>, PluginError> {
        Self::panic_in_worker()?;
        Err(PluginError::internal("the deliberate panic did not happen"))
    }

    fn predict_proba(
        &self,
        _ctx: &HostContextRef<'_>,
        _x: MatrixRef<'_>,
    ) -> Result<Matrix, PluginError> {
        Self::panic_in_worker()?;
        Err(PluginError::internal("the deliberate panic did not happen"))
    }

    fn describe(&self) -> Value {
        json!({
            "component": "panic_predict",
            "task": self.task.name(),
            "n_features": self.n_features,
        })
    }

    fn to_bytes(&self) -> Result<Vec<u8>, PluginError> {
        let mut out = Vec::with_capacity(MODEL_LEN);
        out.extend_from_slice(MAGIC);
        out.push(self.task.kind);
        out.extend_from_slice(&self.task.n_classes.to_le_bytes());
        out.extend_from_slice(&(self.n_features as u64).to_le_bytes());
        Ok(out)
    }
}

fn load_panicky(
    bytes: &[u8],
    _ctx: &HostContextRef<'_>,
) -> Result<Box<dyn ModelImpl>, PluginError> {
    Ok(Box::new(PanickyModel::from_bytes(bytes)?))
}

fn no_models(_bytes: &[u8], _ctx: &HostContextRef<'_>) -> Result<Box<dyn ModelImpl>, PluginError> {
    Err(PluginError::corrupt(
        "this learner never makes models, so none can be loaded",
    ))
}

/// `kill_predict`'s learner.
struct KillPredict {
    kill_file: String,
}

impl LearnerImpl for KillPredict {
    fn fit(
        &self,
        _ctx: &HostContextRef<'_>,
        data: &TrainData<'_>,
    ) -> Result<Box<dyn ModelImpl>, PluginError> {
        Ok(Box::new(Killer {
            task: data.task,
            n_features: data.x.cols(),
            kill_file: self.kill_file.clone(),
        }))
    }
}

/// A model whose process dies under it while it predicts, once per kill
/// file.
struct Killer {
    task: Task,
    n_features: usize,
    kill_file: String,
}

impl Killer {
    fn maybe_die(&self) {
        let f = std::path::Path::new(&self.kill_file);
        if !self.kill_file.is_empty() && f.exists() && std::fs::remove_file(f).is_ok() {
            let pid = std::process::id().to_string();
            let _ = std::process::Command::new("kill")
                .args(["-9", &pid])
                .status();
            // The signal is on its way; never answer.
            loop {
                std::thread::sleep(std::time::Duration::from_secs(1));
            }
        }
    }
}

impl ModelImpl for Killer {
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
        self.maybe_die();
        Ok(vec![0.0; x.rows() * self.task.n_targets()])
    }

    fn predict_proba(
        &self,
        _ctx: &HostContextRef<'_>,
        x: MatrixRef<'_>,
    ) -> Result<Matrix, PluginError> {
        self.maybe_die();
        let k = self.task.n_classes as usize;
        Ok(Matrix::new(vec![1.0 / k as f32; x.rows() * k], x.rows(), k))
    }

    fn describe(&self) -> Value {
        json!({"component": "kill_predict", "kill_file": self.kill_file})
    }

    fn to_bytes(&self) -> Result<Vec<u8>, PluginError> {
        Ok(json!({
            "kind": self.task.kind,
            "n_classes": self.task.n_classes,
            "n_features": self.n_features,
            "kill_file": self.kill_file,
        })
        .to_string()
        .into_bytes())
    }
}

fn load_killer(bytes: &[u8], _ctx: &HostContextRef<'_>) -> Result<Box<dyn ModelImpl>, PluginError> {
    let corrupt = || PluginError::corrupt("not a kill_predict model");
    let v: Value = serde_json::from_slice(bytes).map_err(|_| corrupt())?;
    let n_classes = v["n_classes"].as_u64().ok_or_else(corrupt)? as u32;
    Ok(Box::new(Killer {
        task: if v["kind"].as_u64() == Some(u64::from(Task::CLASSIFICATION)) {
            Task::classification(n_classes)
        } else {
            Task::regression_targets(n_classes)
        },
        n_features: v["n_features"].as_u64().ok_or_else(corrupt)? as usize,
        kill_file: v["kill_file"].as_str().ok_or_else(corrupt)?.to_string(),
    }))
}

/// `first_trees`: the first `n` trees of an ensemble.
struct FirstTrees {
    n: usize,
}

impl CompressorImpl for FirstTrees {
    fn compress(
        &self,
        _ctx: &HostContextRef<'_>,
        model: tessera_core::ir::ModelIr,
        _data: &tessera_core::CompressData<'_>,
    ) -> Result<tessera_core::ir::ModelIr, PluginError> {
        match model {
            tessera_core::ir::ModelIr::Trees(mut e) => {
                e.trees.truncate(self.n.max(1));
                Ok(tessera_core::ir::ModelIr::Trees(e))
            }
            _ => Err(PluginError::unsupported(
                "first_trees keeps trees of tree ensembles",
            )),
        }
    }
}

fn create_relay(params: Params) -> Result<Box<dyn LearnerImpl>, PluginError> {
    tessera_test_nesting::create("relay", &params)
}

fn load_relay(bytes: &[u8], _ctx: &HostContextRef<'_>) -> Result<Box<dyn ModelImpl>, PluginError> {
    tessera_test_nesting::load("relay", bytes)
}

/// The plugin's definition.
pub fn plugin() -> PluginDef {
    PluginDef {
        name: "faulty",
        version: env!("CARGO_PKG_VERSION"),
        learners: vec![
            LearnerDef {
                name: "panic_fit",
                description: "panics in fit (test plugin)",
                params: vec![],
                create: |_| Ok(Box::new(PanicFit)),
                load: no_models,
            },
            LearnerDef {
                name: "panic_predict",
                description: "trains, then panics in predict inside a rayon worker (test plugin)",
                params: vec![],
                create: |_| Ok(Box::new(PanicPredict)),
                load: load_panicky,
            },
            LearnerDef {
                name: "error_fit",
                description: "returns an error from fit (test plugin)",
                params: vec![],
                create: |_| Ok(Box::new(ErrorFit)),
                load: no_models,
            },
            LearnerDef {
                name: "kill_predict",
                description: "predicts class 0, but kills its own process (SIGKILL) when it finds kill_file (test plugin)",
                params: vec![ParamSpec::custom(
                    "kill_file",
                    "string",
                    json!(""),
                    "a file whose existence makes the next prediction kill the process",
                    |v| {
                        v.as_str()
                            .map(|_| ())
                            .ok_or_else(|| format!("expected a string, got {v}"))
                    },
                )],
                create: |p| {
                    Ok(Box::new(KillPredict {
                        kill_file: p.str("kill_file").to_string(),
                    }))
                },
                load: load_killer,
            },
            LearnerDef {
                name: "relay",
                description: "averages n copies of another learner; models cannot be saved (test plugin)",
                params: tessera_test_nesting::param_specs(),
                create: create_relay,
                load: load_relay,
            },
        ],
        compressors: vec![CompressorDef {
            name: "first_trees",
            description: "keeps a tree ensemble's first n trees (test plugin)",
            params: vec![ParamSpec::int("n", Some(1), 1, "trees to keep")],
            create: |p| Ok(Box::new(FirstTrees { n: p.usize("n") })),
        }],
        decomposers: vec![],
        models: Vec::new(),
    }
}

tessera_core::export_plugin!(plugin);

#[cfg(test)]
mod tests {
    use tessera_core::{
        ErrorKind, ModelBox, NullContext,
        abi_stable::std_types::{ROption, RString},
    };

    use super::*;

    fn fit(name: &str, task: Task) -> Result<ModelBox, PluginError> {
        let x = [1.0f32, 2.0, 3.0, 4.0];
        let y = [0.0f32, 1.0];
        let names = [RString::from("a"), RString::from("b")];
        let data = TrainData {
            x: MatrixRef::new(&x, 2, 2).unwrap(),
            y: y.as_slice().into(),
            weights: ROption::RNone,
            feature_names: names.as_slice().into(),
            task,
            valid: ROption::RNone,
        };
        let learner = plugin().create_learner(name, "")?;
        learner
            .fit(NullContext::default().as_ref(), data)
            .into_result()
    }

    #[test]
    fn manifest_lists_all_components() {
        let m = plugin().manifest();
        assert_eq!(m.name.as_str(), "faulty");
        let names: Vec<&str> = m.components.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "panic_fit",
                "panic_predict",
                "error_fit",
                "kill_predict",
                "relay",
                "first_trees"
            ]
        );
    }

    #[test]
    fn panic_in_fit_becomes_an_error() {
        let e = fit("panic_fit", Task::regression()).err().unwrap();
        assert_eq!(e.kind, ErrorKind::PANIC);
        assert_eq!(e.message, format!("plugin panicked: {FIT_PANIC}"));
    }

    #[test]
    fn error_in_fit_is_passed_on() {
        let e = fit("error_fit", Task::regression()).err().unwrap();
        assert_eq!(e.kind, ErrorKind::INVALID_INPUT);
        assert_eq!(e.message, FIT_ERROR);
    }

    fn assert_predict_panics(model: &ModelBox) {
        let x = [1.0f32, 2.0];
        let ctx = NullContext::default();
        let xr = MatrixRef::new(&x, 1, 2).unwrap();
        let e = model.predict(ctx.as_ref(), xr).into_result().err().unwrap();
        assert_eq!(e.kind, ErrorKind::PANIC);
        assert_eq!(e.message, format!("plugin panicked: {PREDICT_PANIC}"));
        let e = model
            .predict_proba(ctx.as_ref(), xr)
            .into_result()
            .err()
            .unwrap();
        assert_eq!(e.kind, ErrorKind::PANIC);
        assert_eq!(e.message, format!("plugin panicked: {PREDICT_PANIC}"));
    }

    #[test]
    fn panic_in_predict_becomes_an_error_and_survives_saving() {
        let model = fit("panic_predict", Task::classification(2)).unwrap();
        assert_predict_panics(&model);
        // Still usable afterwards: the panic left nothing broken.
        assert_predict_panics(&model);

        let bytes = model.to_bytes().into_result().unwrap();
        let loaded = plugin().load_model("panic_predict", &bytes).unwrap();
        assert_eq!(loaded.task(), Task::classification(2));
        assert_eq!(loaded.n_features(), 2);
        assert_predict_panics(&loaded);

        for cut in 0..bytes.len() {
            let e = plugin()
                .load_model("panic_predict", &bytes[..cut])
                .err()
                .unwrap();
            assert_eq!(e.kind, ErrorKind::CORRUPT_MODEL);
        }
        let e = plugin().load_model("panic_fit", &bytes).err().unwrap();
        assert_eq!(e.kind, ErrorKind::CORRUPT_MODEL);
    }

    #[test]
    fn relay_needs_a_host_and_cannot_be_saved() {
        let e = fit("relay", Task::regression()).err().unwrap();
        assert_eq!(e.kind, ErrorKind::UNSUPPORTED);
        assert!(
            e.message
                .starts_with("relay: creation of child 0 (`random_forest`)"),
            "{e}"
        );
        let e = plugin().load_model("relay", b"").err().unwrap();
        assert_eq!(e.kind, ErrorKind::UNSUPPORTED);
        let e = plugin()
            .create_learner("relay", r#"{"n": 0}"#)
            .err()
            .unwrap();
        assert_eq!(e.kind, ErrorKind::INVALID_PARAMS);
    }
}
