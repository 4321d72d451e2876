//! `prune`: fewer trees and smaller trees for ensembles ([`trees`]);
//! fewer hidden units or sparser weights for networks ([`network`]).

pub mod network;
pub mod trees;

use tessera_core::{
    CompressData, HostContextRef, PluginError, context::level, ir::ModelIr, params::Params,
    plugin::CompressorImpl,
};

use crate::params::{NETWORK_ONLY, TREE_ONLY, refuse_foreign};

struct Prune {
    params: Params,
}

/// Builds the compressor from checked parameters.
///
/// # Errors
/// Both `n_estimators` and `fraction`, or nothing to do.
pub fn create(p: Params) -> Result<Box<dyn CompressorImpl>, PluginError> {
    if p.was_given("n_estimators") && p.was_given("fraction") {
        return Err(PluginError::input(
            "prune: give `n_estimators` or `fraction`, not both",
        ));
    }
    let acts = [
        "n_estimators",
        "fraction",
        "ccp_alpha",
        "max_depth",
        "sparsity",
        "keep_units",
    ];
    if !acts.iter().any(|k| p.was_given(k)) {
        return Err(PluginError::input(format!(
            "prune: nothing to do; set one of {} (e.g. --set n_estimators=100)",
            acts.join(", ")
        )));
    }
    Ok(Box::new(Prune { params: p }))
}

impl Prune {
    fn trees(&self) -> trees::TreePrune {
        let p = &self.params;
        let keep = if let Some(n) = p.opt_usize("n_estimators") {
            Some(trees::Keep::Count(n))
        } else {
            p.get("fraction").as_f64().map(trees::Keep::Fraction)
        };
        trees::TreePrune {
            keep,
            selection: match p.str("selection") {
                "first" => trees::Selection::First,
                _ => trees::Selection::Greedy,
            },
            ccp_alpha: p.f64("ccp_alpha"),
            max_depth: p.opt_usize("max_depth"),
        }
    }

    fn network(&self) -> network::NetworkPrune {
        let p = &self.params;
        network::NetworkPrune {
            sparsity: p.f64("sparsity"),
            keep_units: p.f64("keep_units"),
            fine_tune_epochs: p.usize("fine_tune_epochs"),
            learning_rate_init: p.f64("learning_rate_init"),
            random_state: p.opt_u64("random_state").unwrap_or(0),
        }
    }
}

impl CompressorImpl for Prune {
    fn compress(
        &self,
        ctx: &HostContextRef<'_>,
        model: ModelIr,
        data: &CompressData<'_>,
    ) -> Result<ModelIr, PluginError> {
        let p = &self.params;
        let (ir, summary) = match model {
            ModelIr::Trees(ens) => {
                refuse_foreign(p, "prune", "a tree ensemble", NETWORK_ONLY, "networks")?;
                data.validate(ens.n_features as usize)?;
                let (pruned, summary) = trees::prune(&ens, &self.trees(), data, ctx)?;
                (ModelIr::Trees(pruned), summary)
            }
            ModelIr::Network(net) => {
                refuse_foreign(p, "prune", "a dense network", TREE_ONLY, "tree ensembles")?;
                data.validate(net.n_features())?;
                network::prune(&net, &self.network(), data, ctx)?
            }
            ModelIr::Opaque { family, .. } => {
                return Err(PluginError::unsupported(format!(
                    "prune works on tree ensembles and dense networks; this model is a \
                     `{family}` (prune before quantizing)"
                )));
            }
        };
        ctx.log(level::DEBUG, format!("prune: {summary}").as_str().into());
        Ok(ir)
    }
}
