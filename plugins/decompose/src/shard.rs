//! `shard`: a tree ensemble into `parts` sub-ensembles of consecutive
//! trees, cut where the running node count crosses each equal share.
//!
//! * A sum of trees (boosting) becomes parts that answer raw scores (a
//!   regression of `n_outputs` values, the base score in the first part
//!   only); their sum, through the ensemble's link, is the original.
//! * A mean or vote of trees (forests, bagging) becomes parts of the same
//!   kind; the original's answer is the parts' answers weighted by their
//!   share of the trees.

use tessera_core::{
    HostContextRef, PluginError,
    abi_stable::std_types::RVec,
    ir::{Combine, Link, ModelIr, Tree, TreeEnsemble},
    params::{ParamSpec, Params},
    plugin::DecomposerImpl,
    traits::SubModel,
};

use tessera_core::recombine::Role;

/// The parameter schema.
pub fn specs() -> Vec<ParamSpec> {
    vec![ParamSpec::int(
        "parts",
        Some(2),
        2,
        "number of sub-ensembles (at most the number of trees)",
    )]
}

struct Shard {
    parts: usize,
}

/// Builds the decomposer from checked parameters.
///
/// # Errors
/// None beyond the schema's.
pub fn create(p: Params) -> Result<Box<dyn DecomposerImpl>, PluginError> {
    Ok(Box::new(Shard {
        parts: p.usize("parts"),
    }))
}

/// Where to cut `sizes` (node counts, in order) into `parts` runs of
/// roughly equal total: the end index of each run.
pub fn balanced_cuts(sizes: &[usize], parts: usize) -> Vec<usize> {
    let total: usize = sizes.iter().sum();
    let mut ends = Vec::with_capacity(parts);
    let (mut seen, mut i) = (0usize, 0usize);
    for p in 1..=parts {
        // Leave at least one item for each part still to come.
        let last = sizes.len() - (parts - p);
        let goal = total * p / parts;
        let start = i;
        while i < last && (i == start || seen + sizes[i] / 2 < goal) {
            seen += sizes[i];
            i += 1;
        }
        if p == parts {
            i = sizes.len();
        }
        ends.push(i);
    }
    ends
}

impl DecomposerImpl for Shard {
    fn decompose(
        &self,
        _ctx: &HostContextRef<'_>,
        model: ModelIr,
    ) -> Result<Vec<SubModel>, PluginError> {
        let ModelIr::Trees(e) = model else {
            return Err(PluginError::unsupported(
                "shard splits tree ensembles; this model is not one (use pipeline or \
                 one_vs_rest for networks)",
            ));
        };
        let n = e.trees.len();
        if self.parts > n {
            return Err(PluginError::params(format!(
                "shard: parts = {} but the ensemble has {n} trees",
                self.parts
            )));
        }
        let sizes: Vec<usize> = e.trees.iter().map(|t| t.nodes.len()).collect();
        let ends = balanced_cuts(&sizes, self.parts);
        let mut out = Vec::with_capacity(self.parts);
        let mut start = 0;
        for (p, &end) in ends.iter().enumerate() {
            let trees: RVec<Tree> = e.trees[start..end].iter().cloned().collect();
            let (part, role) = match e.combine {
                Combine::Sum => (
                    TreeEnsemble {
                        n_classes: 0,
                        link: Link::Identity,
                        base_score: if p == 0 {
                            e.base_score.clone()
                        } else {
                            RVec::new()
                        },
                        trees,
                        ..e.clone()
                    },
                    Role::Sum(e.link),
                ),
                Combine::Mean | Combine::Vote => (
                    TreeEnsemble { trees, ..e.clone() },
                    Role::Weighted((end - start) as f64 / n as f64),
                ),
            };
            out.push(SubModel {
                name: format!("shard_{p}").into(),
                model: ModelIr::Trees(part),
                role: role.to_text().into(),
            });
            start = end;
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cuts_balance_node_counts_and_leave_no_part_empty() {
        assert_eq!(balanced_cuts(&[10; 8], 4), vec![2, 4, 6, 8]);
        assert_eq!(balanced_cuts(&[1, 1, 1, 100], 2), vec![3, 4]);
        assert_eq!(balanced_cuts(&[100, 1, 1, 1], 2), vec![1, 4]);
        assert_eq!(balanced_cuts(&[5, 5, 5], 3), vec![1, 2, 3]);
        for parts in 2..7 {
            let sizes: Vec<usize> = (0..6).map(|i| 3 + i * 7 % 5).collect();
            let ends = balanced_cuts(&sizes, parts);
            assert_eq!(ends.len(), parts);
            assert_eq!(*ends.last().unwrap(), 6);
            assert!(
                ends.windows(2).all(|w| w[0] < w[1]) && ends[0] > 0,
                "{ends:?}"
            );
        }
    }
}
