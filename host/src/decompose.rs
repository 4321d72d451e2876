//! Decomposition: a model's exchange form through a decomposer plugin
//! into parts, each saved as an ordinary model file (tree ensembles load
//! through the `gradient_boosting` component, networks through `mlp`),
//! with the graph fragment that recombines them; and running the parts
//! and joining their answers ([`Parts::answer`]), which is how the result
//! is checked against the whole model.

use std::{fmt::Write as _, path::Path};

use anyhow::{Context, bail};
use serde_json::{Value, json};
use tessera_core::{
    HostContextRef, PluginError,
    ir::{DenseNetwork, ModelIr},
    recombine::{Plan, Role, link_name},
};
use tessera_engine::IrModel;

use crate::{
    artifact::{Artifact, Header, crc32},
    model::{CallError, LoadedModel},
    plugin::Registry,
};

/// The component that loads a tree-ensemble part.
const TREES_COMPONENT: &str = "gradient_boosting";
/// The component that loads a network part.
const NETWORK_COMPONENT: &str = "mlp";

/// One part, as a model file.
pub struct Part {
    /// The decomposer's name for it (`shard_0`).
    pub name: String,
    /// How it recombines.
    pub role: String,
    /// The model file.
    pub artifact: Artifact,
}

/// A decomposed model.
pub struct Parts {
    /// The parts, in the order they combine.
    pub parts: Vec<Part>,
    /// How they join.
    pub plan: Plan,
    /// The whole model's task: whether answers are class probabilities.
    pub classes: Vec<String>,
}

/// What the whole model answers for the rows `x`: class probabilities
/// (row-major, one column per class) for a classifier, values otherwise.
///
/// # Errors
/// The plugin's error.
pub fn whole_answer(
    model: &LoadedModel,
    ctx: HostContextRef<'_>,
    x: &[f32],
) -> Result<Vec<f64>, CallError> {
    Ok(model.answer(ctx, x)?.into_iter().map(f64::from).collect())
}

/// Splits `model` with decomposer `with` (parameters `params`, a JSON
/// object) into parts, each checked by loading it through its plugin.
/// `source` names the model file in the parts' headers.
///
/// # Errors
/// A model without an exchange form, an unknown decomposer, the
/// decomposer's error, roles that do not make a plan, or a part its
/// plugin refuses.
pub fn decompose(
    registry: &Registry,
    ctx: HostContextRef<'_>,
    model: &LoadedModel,
    source: &Path,
    with: &str,
    params: &Value,
) -> anyhow::Result<Parts> {
    let h = &model.header;
    let Some(ir) = model.model.to_ir().into_option() else {
        return Err(PluginError::unsupported(format!(
            "{}: the `{}` model has no exchange form (tree ensemble or network), so it cannot \
             be decomposed",
            source.display(),
            h.component
        ))
        .into());
    };
    let decomposer = registry.create_decomposer(with, &params.to_string())?;
    let subs = decomposer
        .decompose(ctx, ir)
        .into_result()
        .map_err(|error| CallError {
            context: format!("decomposer `{with}` on {}", source.display()),
            error,
        })?;
    let roles: Vec<String> = subs.iter().map(|s| s.role.to_string()).collect();
    let plan = Plan::from_roles(&roles)
        .map_err(|e| anyhow::anyhow!("decomposer `{with}`: {}", e.message))?;
    let mut parts = Vec::with_capacity(subs.len());
    let mut inputs = h.features.clone();
    for (i, sub) in subs.iter().enumerate() {
        let role = Role::parse(sub.role.as_str()).map_err(|e| anyhow::anyhow!(e.message))?;
        let origin = json!({"decomposed_from": source.display().to_string(),
                            "with": with, "part": sub.name.as_str()});
        let (component, payload) = ir_payload(&sub.model, &origin)
            .with_context(|| format!("decomposer `{with}`, part {}", sub.name))?;
        let (n_classes, outputs) = match &sub.model {
            ModelIr::Trees(e) => (e.n_classes, e.n_outputs as usize),
            ModelIr::Network(n) => (n.n_classes, DenseNetwork::n_outputs(n)),
            ModelIr::Opaque { family, .. } => bail!(PluginError::unsupported(format!(
                "decomposer `{with}` returned part {} as a `{family}` model, whose outputs \
                 the host cannot tell; decomposers return tree ensembles or networks",
                sub.name
            ))),
        };
        let provider = registry.model_provider(&component)?;
        let classifier = n_classes > 0;
        // What the part's outputs are called: the whole model's classes
        // or targets where it answers as the whole does, otherwise names
        // that say what the columns hold.
        let targets: Vec<String> = match role {
            _ if classifier => vec![h.target.clone()],
            Role::Stage(_) if i + 1 < subs.len() => {
                (0..outputs).map(|j| format!("{}_{j}", sub.name)).collect()
            }
            Role::Class(c, _) => vec![format!("{}_{}", sub.name, label(h, c))],
            Role::Sum(_) if !h.classes.is_empty() => (0..outputs)
                .map(|j| format!("raw_{}", label(h, if outputs == 1 { 1 } else { j })))
                .collect(),
            _ => h.target_names().iter().map(|t| t.to_string()).collect(),
        };
        if !classifier && targets.len() != outputs {
            bail!(
                "part {} answers {outputs} values, its names are {}",
                sub.name,
                targets.len()
            );
        }
        let header = Header {
            plugin: provider.manifest.name.to_string(),
            plugin_version: provider.manifest.version.to_string(),
            component: component.to_string(),
            abi_version: provider.manifest.abi_version.to_string(),
            task: if classifier {
                "classification"
            } else {
                "regression"
            }
            .into(),
            classes: if classifier {
                h.classes.clone()
            } else {
                Vec::new()
            },
            target: targets[0].clone(),
            targets: if targets.len() > 1 {
                targets.clone()
            } else {
                Vec::new()
            },
            features: inputs.clone(),
            payload_len: payload.len() as u64,
            payload_crc32: crc32(&payload),
            training: json!({
                "decomposed_from": source.display().to_string(),
                "with": with,
                "params": params,
                "part": sub.name.as_str(),
                "role": sub.role.as_str(),
            }),
        };
        if matches!(role, Role::Stage(_)) {
            inputs = targets;
        }
        let artifact = Artifact { header, payload };
        LoadedModel::from_artifact(registry, artifact.clone())
            .with_context(|| format!("part {} does not load", sub.name))?;
        parts.push(Part {
            name: sub.name.to_string(),
            role: sub.role.to_string(),
            artifact,
        });
    }
    Ok(Parts {
        parts,
        plan,
        classes: h.classes.clone(),
    })
}

/// The component that loads a model in exchange form, and the bytes it
/// loads: tree ensembles through `gradient_boosting` (with `origin` kept
/// beside them), networks through `mlp`, an opaque family through the
/// plugin whose model form has that name (its bytes as they are).
///
/// # Errors
/// Sizes the byte forms cannot count.
pub fn ir_payload(ir: &ModelIr, origin: &Value) -> anyhow::Result<(String, Vec<u8>)> {
    Ok(match ir {
        ModelIr::Trees(e) => (
            TREES_COMPONENT.into(),
            IrModel::encode(e, origin).map_err(plugin_error)?,
        ),
        ModelIr::Network(n) => (
            NETWORK_COMPONENT.into(),
            n.to_bytes().map_err(plugin_error)?,
        ),
        ModelIr::Opaque { family, bytes } => (family.to_string(), bytes.to_vec()),
    })
}

fn plugin_error(e: PluginError) -> anyhow::Error {
    anyhow::Error::new(e)
}

/// Class `c`'s label.
fn label(h: &Header, c: usize) -> String {
    h.classes.get(c).cloned().unwrap_or_else(|| c.to_string())
}

impl Parts {
    /// Loads the parts through their plugins.
    ///
    /// # Errors
    /// A part its plugin refuses.
    pub fn load(&self, registry: &Registry) -> anyhow::Result<Vec<LoadedModel>> {
        self.parts
            .iter()
            .map(|p| {
                LoadedModel::from_artifact(registry, p.artifact.clone())
                    .with_context(|| format!("part {} does not load", p.name))
            })
            .collect()
    }

    /// The recombined answer of the loaded parts for the rows `x` (in the
    /// whole model's feature columns): what [`whole_answer`] gives for the
    /// whole model.
    ///
    /// # Errors
    /// A part's error, or answers that do not join.
    pub fn answer(
        &self,
        loaded: &[LoadedModel],
        ctx: HostContextRef<'_>,
        x: &[f32],
        rows: usize,
    ) -> anyhow::Result<Vec<f64>> {
        if self.plan == Plan::Pipeline {
            let mut input = x.to_vec();
            let last = loaded.len() - 1;
            for (i, m) in loaded.iter().enumerate() {
                if i == last {
                    return Ok(whole_answer(m, ctx.sabi_reborrow(), &input)?);
                }
                input = m.predict(ctx.sabi_reborrow(), &input)?;
            }
            unreachable!("a pipeline has a last stage");
        }
        let mut outputs = Vec::with_capacity(loaded.len());
        for m in loaded {
            outputs.push(m.answer(ctx.sabi_reborrow(), x)?);
        }
        self.plan
            .join(&outputs, rows)
            .map_err(|e| anyhow::anyhow!(e.message.to_string()))
    }

    /// The graph fragment that recombines the parts, as TOML: an input
    /// `features`, a node per part (model file `<name>.tsr` beside the
    /// fragment), a combining node `model_id`, and an output of that name.
    pub fn fragment(&self, model_id: &str, features: &[String]) -> String {
        let mut t = String::new();
        let names: Vec<String> = self
            .parts
            .iter()
            .map(|p| format!("{model_id}_{}", p.name))
            .collect();
        let quoted = |v: &[String]| {
            v.iter()
                .map(|s| format!("{:?}", s))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let _ = writeln!(
            t,
            "# The parts of one model and how they recombine, from `tessera decompose`.\n"
        );
        let _ = writeln!(
            t,
            "[inputs.features]\ndatatype = \"FP32\"\nshape = [-1, {}]\nnames = [{}]\n",
            features.len(),
            quoted(features)
        );
        for (i, (p, id)) in self.parts.iter().zip(&names).enumerate() {
            let input = match (&self.plan, i) {
                (Plan::Pipeline, i) if i > 0 => names[i - 1].clone(),
                _ => "features".into(),
            };
            let _ = writeln!(
                t,
                "[nodes.{id}]\nmodel = \"{}.tsr\"\ninputs = [\"{input}\"]\nrole = \"{}\"\n",
                p.name, p.role
            );
        }
        let _ = match &self.plan {
            Plan::Pipeline => writeln!(
                t,
                "[outputs.{model_id}]\nfrom = \"{}\"",
                names.last().cloned().unwrap_or_default()
            ),
            plan => {
                let classes = if self.classes.is_empty() {
                    String::new()
                } else {
                    format!("classes = [{}]\n", quoted(&self.classes))
                };
                let (combine, extra) = match plan {
                    Plan::Sum(l) => ("sum", format!("link = \"{}\"\n{classes}", link_name(*l))),
                    Plan::Weighted(w) => (
                        "weighted",
                        format!(
                            "weights = [{}]\n",
                            w.iter()
                                .map(|w| format!("{w:?}"))
                                .collect::<Vec<_>>()
                                .join(", ")
                        ),
                    ),
                    Plan::Classes(l) => {
                        ("concat", format!("link = \"{}\"\n{classes}", link_name(*l)))
                    }
                    Plan::Pipeline => unreachable!(),
                };
                writeln!(
                    t,
                    "[nodes.{model_id}]\ncombine = \"{combine}\"\n{extra}inputs = [{}]\n\n\
                     [outputs.{model_id}]\nfrom = \"{model_id}\"",
                    quoted(&names)
                )
            }
        };
        t
    }
}
