//! `one_vs_rest`: a multiclass model into one sub-model per class, each
//! answering its class's column alone.
//!
//! * Boosted trees (a sum with softmax): class `c`'s trees (and class
//!   `c`'s values of trees that serve every class), with class `c`'s base
//!   score: its raw score. Softmax across the columns gives the original.
//! * Forests (a mean of class distributions): every tree with only class
//!   `c`'s leaf values: the mean probability of class `c`. The columns side
//!   by side are the original's probabilities.
//! * Networks (softmax outputs): the network with only output unit `c`, no
//!   activation on it: its logit. Softmax across the columns gives the
//!   original.

use tessera_core::{
    HostContextRef, PluginError,
    abi_stable::std_types::RVec,
    ir::{Activation, Combine, DenseLayer, DenseNetwork, Link, ModelIr, Tree, TreeEnsemble},
    params::Params,
    plugin::DecomposerImpl,
    traits::SubModel,
};

use tessera_core::recombine::Role;

struct OneVsRest;

/// Builds the decomposer.
///
/// # Errors
/// None.
pub fn create(_p: Params) -> Result<Box<dyn DecomposerImpl>, PluginError> {
    Ok(Box::new(OneVsRest))
}

/// Tree `t` reduced to class `c`: its values for that class (a tree that
/// serves every class), itself (a tree of class `c`), or nothing.
fn class_tree(t: &Tree, c: usize, k: usize) -> Option<Tree> {
    if t.output == Tree::ALL_OUTPUTS {
        let mut values = RVec::with_capacity(t.values.len() / k.max(1));
        let nodes = t
            .nodes
            .iter()
            .map(|n| {
                if n.is_leaf() {
                    let mut leaf = *n;
                    leaf.value = values.len() as u32;
                    values.push(t.values[n.value as usize + c]);
                    leaf
                } else {
                    *n
                }
            })
            .collect();
        Some(Tree {
            nodes,
            values,
            output: 0,
        })
    } else if t.output as usize == c {
        Some(Tree {
            output: 0,
            ..t.clone()
        })
    } else {
        None
    }
}

fn trees(e: &TreeEnsemble) -> Result<Vec<SubModel>, PluginError> {
    let k = e.n_outputs as usize;
    let link = match (e.combine, e.link) {
        (Combine::Sum, Link::Softmax) => Link::Softmax,
        (Combine::Mean, Link::Identity) if e.n_classes >= 2 => Link::Identity,
        (Combine::Vote, _) => {
            return Err(PluginError::unsupported(
                "one_vs_rest: a hard vote has no per-class form (a class's votes depend on \
                 the other classes' values); decompose the model with shard instead",
            ));
        }
        _ => {
            return Err(PluginError::unsupported(format!(
                "one_vs_rest needs a multiclass classifier (softmax over 3+ classes, or a \
                 forest's class probabilities); this ensemble has {} classes and {k} outputs",
                e.n_classes
            )));
        }
    };
    (0..k)
        .map(|c| {
            let trees: RVec<Tree> = e.trees.iter().filter_map(|t| class_tree(t, c, k)).collect();
            if trees.is_empty() && e.combine != Combine::Sum {
                return Err(PluginError::corrupt(format!("class {c} has no trees")));
            }
            Ok(SubModel {
                name: format!("class_{c}").into(),
                model: ModelIr::Trees(TreeEnsemble {
                    n_outputs: 1,
                    n_classes: 0,
                    link: Link::Identity,
                    base_score: e
                        .base_score
                        .get(c)
                        .map(|b| vec![*b].into())
                        .unwrap_or_default(),
                    // A mean stays a mean over every tree of the ensemble.
                    trees,
                    ..e.clone()
                }),
                role: Role::Class(c, link).to_text().into(),
            })
        })
        .collect()
}

fn network(net: &DenseNetwork) -> Result<Vec<SubModel>, PluginError> {
    net.check()?;
    let n = net.layers.len();
    let last = &net.layers[n - 1];
    if last.activation != Activation::Softmax || last.outputs < 3 {
        return Err(PluginError::unsupported(format!(
            "one_vs_rest needs a network with a softmax over 3 or more classes; this one ends \
             in {} outputs with {}",
            last.outputs,
            last.activation.name()
        )));
    }
    let inputs = last.inputs as usize;
    (0..last.outputs as usize)
        .map(|c| {
            let mut layers: RVec<DenseLayer> = net.layers[..n - 1].iter().cloned().collect();
            layers.push(DenseLayer {
                inputs: last.inputs,
                outputs: 1,
                weights: last.weights[c * inputs..(c + 1) * inputs].into(),
                bias: vec![last.bias[c]].into(),
                activation: Activation::Identity,
            });
            Ok(SubModel {
                name: format!("class_{c}").into(),
                model: ModelIr::Network(DenseNetwork {
                    layers,
                    n_classes: 0,
                    ..net.clone()
                }),
                role: Role::Class(c, Link::Softmax).to_text().into(),
            })
        })
        .collect()
}

impl DecomposerImpl for OneVsRest {
    fn decompose(
        &self,
        _ctx: &HostContextRef<'_>,
        model: ModelIr,
    ) -> Result<Vec<SubModel>, PluginError> {
        match &model {
            ModelIr::Trees(e) => trees(e),
            ModelIr::Network(n) => network(n),
            ModelIr::Opaque { family, .. } => Err(PluginError::unsupported(format!(
                "one_vs_rest works on tree ensembles and networks, not `{family}`"
            ))),
        }
    }
}
