//! Fitting a forest: one bootstrap sample and one CART tree per estimator,
//! built sequentially or in a pool sized by the host's thread budget, each
//! seeded from `(random_state, tree index)` so the result does not depend on
//! the thread count.

use std::sync::atomic::{AtomicU64, Ordering};

use rayon::prelude::*;
use tessera_core::{
    HostContextRef, PluginError, TrainData,
    params::Params,
    plugin::{LearnerImpl, ModelImpl, with_thread_budget},
};

use crate::{
    model::ForestModel,
    params::{ForestParams, TreeConfig},
    rng::{Rng, entropy_seed, tree_seed},
    tree::{Dataset, Grown, grow},
};

/// The `random_forest` learner.
pub struct RandomForest {
    params: ForestParams,
}

/// Builds the learner from parameters the schema has checked.
///
/// # Errors
/// A value the schema should have refused.
pub fn create(p: Params) -> Result<Box<dyn LearnerImpl>, PluginError> {
    Ok(Box::new(RandomForest {
        params: ForestParams::from_params(&p)?,
    }))
}

/// Per-row weights of one tree's sample: bootstrap counts (or 1) times the
/// sample weights.
fn sample_weights(data: &Dataset, bootstrap: bool, rng: &mut Rng) -> Vec<f64> {
    let n = data.n_rows;
    let mut w = if bootstrap {
        let mut counts = vec![0.0; n];
        for _ in 0..n {
            counts[rng.below(n)] += 1.0;
        }
        counts
    } else {
        vec![1.0; n]
    };
    for (w, s) in w.iter_mut().zip(&data.sample_weight) {
        *w *= s;
    }
    if w.iter().all(|&w| w <= 0.0) {
        // The draw held only zero-weight rows; the whole data set is the
        // only sample that still says something.
        w.clone_from(&data.sample_weight);
    }
    w
}

fn build_tree(data: &Dataset, cfg: &TreeConfig, seed: u64, index: usize) -> Grown {
    let mut rng = Rng::new(tree_seed(seed, index as u64));
    let weight = sample_weights(data, cfg.bootstrap, &mut rng);
    grow(data, cfg, &weight, &mut rng)
}

/// Mean over trees of each tree's impurity decreases normalised to sum 1
/// (trees that are a lone leaf left out), normalised again: scikit-learn's
/// `feature_importances_`.
fn importances(grown: &[Grown], n_features: usize) -> Vec<f64> {
    let mut total = vec![0.0; n_features];
    for g in grown {
        let sum: f64 = g.importances.iter().sum();
        if g.tree.nodes.len() > 1 && sum > 0.0 {
            for (t, v) in total.iter_mut().zip(&g.importances) {
                *t += v / sum;
            }
        }
    }
    let sum: f64 = total.iter().sum();
    if sum > 0.0 {
        total.iter_mut().for_each(|t| *t /= sum);
    }
    total
}

impl LearnerImpl for RandomForest {
    fn fit(
        &self,
        ctx: &HostContextRef<'_>,
        data: &TrainData<'_>,
    ) -> Result<Box<dyn ModelImpl>, PluginError> {
        let (rows, features) = (data.x.rows(), data.x.cols());
        let cfg = self.params.resolve(data.task, rows, features)?;
        let seed = self.params.random_state.unwrap_or_else(entropy_seed);
        let dataset = Dataset::new(data);
        if dataset.sample_weight.iter().sum::<f64>() <= 0.0 {
            return Err(PluginError::input(
                "sample weights sum to zero: no row has any weight",
            ));
        }
        let total = self.params.n_estimators;
        let done = AtomicU64::new(0);
        let one = |i: usize| -> Result<Grown, PluginError> {
            if ctx.is_cancelled() {
                return Err(PluginError::cancelled());
            }
            let g = build_tree(&dataset, &cfg, seed, i);
            ctx.progress(done.fetch_add(1, Ordering::Relaxed) + 1, total as u64);
            Ok(g)
        };
        let threads = (ctx.threads() as usize).min(total);
        let grown: Vec<Grown> = if threads <= 1 {
            (0..total).map(one).collect::<Result<_, _>>()?
        } else {
            with_thread_budget(threads, || {
                (0..total)
                    .into_par_iter()
                    .map(one)
                    .collect::<Result<_, _>>()
            })??
        };
        let importances = importances(&grown, features);
        Ok(Box::new(ForestModel {
            task: data.task,
            n_features: features,
            trees: grown.into_iter().map(|g| g.tree).collect(),
            importances,
            params: self.params.used(&cfg, seed),
        }))
    }
}
