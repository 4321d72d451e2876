//! `pipeline`: a dense network into consecutive stages. The first stage
//! takes the raw features (the input transformation stays with it); each
//! later stage takes the previous one's outputs; the last answers as the
//! whole network. Every stage computes exactly the layers it had, so the
//! chain gives the same numbers.

use serde_json::Value;
use tessera_core::{
    HostContextRef, PluginError,
    abi_stable::std_types::RVec,
    ir::{DenseNetwork, ModelIr},
    params::{ParamSpec, Params},
    plugin::DecomposerImpl,
    traits::SubModel,
};

use tessera_core::recombine::Role;

use crate::shard::balanced_cuts;

const BOUNDARIES_TYPE: &str = "[int >= 1, ...] | null";

/// The parameter schema.
pub fn specs() -> Vec<ParamSpec> {
    vec![
        ParamSpec::int(
            "stages",
            Some(2),
            2,
            "number of stages, balanced by parameter count (ignored when boundaries is given)",
        ),
        ParamSpec::custom(
            "boundaries",
            BOUNDARIES_TYPE,
            Value::Null,
            "explicit cuts: layer indices where a new stage starts, ascending (e.g. [1] puts \
             layer 0 in the first stage and the rest in the second)",
            check_boundaries,
        ),
    ]
}

fn check_boundaries(v: &Value) -> Result<(), String> {
    match v {
        Value::Null => Ok(()),
        Value::Array(a)
            if !a.is_empty()
                && a.iter().all(|b| b.as_u64().is_some_and(|b| b >= 1))
                && a.windows(2).all(|w| w[0].as_u64() < w[1].as_u64()) =>
        {
            Ok(())
        }
        _ => Err(format!(
            "expected {BOUNDARIES_TYPE} (ascending layer indices), got {v}"
        )),
    }
}

struct Pipeline {
    stages: usize,
    boundaries: Option<Vec<usize>>,
}

/// Builds the decomposer from checked parameters.
///
/// # Errors
/// None beyond the schema's.
pub fn create(p: Params) -> Result<Box<dyn DecomposerImpl>, PluginError> {
    Ok(Box::new(Pipeline {
        stages: p.usize("stages"),
        boundaries: p.get("boundaries").as_array().map(|a| {
            a.iter()
                .filter_map(Value::as_u64)
                .map(|b| b as usize)
                .collect()
        }),
    }))
}

impl DecomposerImpl for Pipeline {
    fn decompose(
        &self,
        _ctx: &HostContextRef<'_>,
        model: ModelIr,
    ) -> Result<Vec<SubModel>, PluginError> {
        let ModelIr::Network(net) = model else {
            return Err(PluginError::unsupported(
                "pipeline splits dense networks; this model is not one (use shard for tree \
                 ensembles)",
            ));
        };
        net.check()?;
        let n = net.layers.len();
        let ends: Vec<usize> = match &self.boundaries {
            Some(b) => {
                if let Some(&bad) = b.iter().find(|&&b| b >= n) {
                    return Err(PluginError::params(format!(
                        "pipeline: boundary {bad} is not inside the network's {n} layers \
                         (a boundary is the index of a stage's first layer, 1 to {})",
                        n - 1
                    )));
                }
                b.iter().copied().chain([n]).collect()
            }
            None => {
                if self.stages > n {
                    return Err(PluginError::params(format!(
                        "pipeline: stages = {} but the network has {n} layers",
                        self.stages
                    )));
                }
                let sizes: Vec<usize> = net.layers.iter().map(|l| l.weights.len()).collect();
                balanced_cuts(&sizes, self.stages)
            }
        };
        let mut out = Vec::with_capacity(ends.len());
        let mut start = 0;
        for (i, &end) in ends.iter().enumerate() {
            let first = i == 0;
            let last = end == n;
            let stage = DenseNetwork {
                input_mean: if first {
                    net.input_mean.clone()
                } else {
                    RVec::new()
                },
                input_scale: if first {
                    net.input_scale.clone()
                } else {
                    RVec::new()
                },
                input_fill: if first {
                    net.input_fill.clone()
                } else {
                    RVec::new()
                },
                layers: net.layers[start..end].iter().cloned().collect(),
                n_classes: if last { net.n_classes } else { 0 },
            };
            out.push(SubModel {
                name: format!("stage_{i}").into(),
                model: ModelIr::Network(stage),
                role: Role::Stage(i).to_text().into(),
            });
            start = end;
        }
        Ok(out)
    }
}
