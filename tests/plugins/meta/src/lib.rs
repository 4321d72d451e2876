//! Test plugin `meta`: one learner, `meta_ensemble`, which trains `n` copies
//! of any learner the host knows and averages them (see
//! [`tessera_test_nesting`]).
//!
//! Together with `relay` from the `faulty` test plugin it lets the host's
//! tests nest learners across plugins:
//! `meta_ensemble -> relay -> meta_ensemble -> random_forest`.

use tessera_core::{
    PluginError,
    params::Params,
    plugin::{LearnerDef, LearnerImpl, ModelImpl, PluginDef},
};

/// The component name of the averaging learner in this plugin.
pub const META_ENSEMBLE: &str = "meta_ensemble";

fn create(params: Params) -> Result<Box<dyn LearnerImpl>, PluginError> {
    tessera_test_nesting::create(META_ENSEMBLE, &params)
}

fn load(
    bytes: &[u8],
    _ctx: &tessera_core::HostContextRef<'_>,
) -> Result<Box<dyn ModelImpl>, PluginError> {
    tessera_test_nesting::load(META_ENSEMBLE, bytes)
}

/// The plugin's definition.
pub fn plugin() -> PluginDef {
    PluginDef {
        name: "meta",
        version: env!("CARGO_PKG_VERSION"),
        learners: vec![LearnerDef {
            name: META_ENSEMBLE,
            description: "averages n copies of another learner, trained in parallel (test plugin)",
            params: tessera_test_nesting::param_specs(),
            create,
            load,
        }],
        compressors: vec![],
        decomposers: vec![],
        models: Vec::new(),
    }
}

tessera_core::export_plugin!(plugin);

#[cfg(test)]
mod tests {
    use tessera_core::{
        ErrorKind, MatrixRef, NullContext, Task, TrainData,
        abi_stable::std_types::{ROption, RString},
    };

    use super::*;

    #[test]
    fn manifest_lists_meta_ensemble() {
        let m = plugin().manifest();
        assert_eq!(m.name.as_str(), "meta");
        assert_eq!(m.abi_version.as_str(), tessera_core::ABI_VERSION);
        assert_eq!(m.components.len(), 1);
        let c = &m.components[0];
        assert_eq!(c.name.as_str(), META_ENSEMBLE);
        let params: Vec<(&str, &str)> = c
            .params
            .iter()
            .map(|p| (p.name.as_str(), p.default.as_str()))
            .collect();
        assert_eq!(
            params,
            [
                ("estimator", "\"random_forest\""),
                ("estimator_params", "{}"),
                ("n", "2")
            ]
        );
    }

    #[test]
    fn needs_a_host_to_create_children() {
        let learner = plugin()
            .create_learner(META_ENSEMBLE, r#"{"estimator": "relay", "n": 3}"#)
            .unwrap();
        let x = [1.0f32, 2.0];
        let y = [0.0f32, 1.0];
        let names = [RString::from("a")];
        let data = TrainData {
            x: MatrixRef::new(&x, 2, 1).unwrap(),
            y: y.as_slice().into(),
            weights: ROption::RNone,
            feature_names: names.as_slice().into(),
            task: Task::classification(2),
            valid: ROption::RNone,
        };
        let e = learner
            .fit(NullContext::default().as_ref(), data)
            .into_result()
            .err()
            .unwrap();
        assert_eq!(e.kind, ErrorKind::UNSUPPORTED);
        assert!(
            e.message
                .contains("meta_ensemble: creation of child 0 (`relay`)"),
            "{e}"
        );
    }

    #[test]
    fn params_are_checked_and_models_do_not_load() {
        let e = plugin()
            .create_learner(META_ENSEMBLE, r#"{"estimators": "x"}"#)
            .err()
            .unwrap();
        assert_eq!(e.kind, ErrorKind::INVALID_PARAMS);
        assert!(e.message.contains("did you mean `estimator`"), "{e}");
        let e = plugin()
            .load_model(META_ENSEMBLE, b"anything")
            .err()
            .unwrap();
        assert_eq!(e.kind, ErrorKind::UNSUPPORTED);
    }
}
