//! Fitting: the `random_forest` and `decision_tree` learners share it. Each
//! tree gets its own sample and a generator seeded from `(random_state,
//! tree index)`, so trees can be built in any order on any thread, the
//! forest does not depend on the thread count, and a shard (`shard = [I,
//! N]`) grows exactly the trees the whole forest has at its indices.
//! Everything parallel (binning, trees, the out-of-bag score) runs in one
//! pool sized by the host's thread budget.
//!
//! Weights follow scikit-learn 1.9: the base weight of a row is its sample
//! weight times its class weight; without bootstrap a tree weighs rows by
//! it, with bootstrap it draws rows with probability proportional to it
//! and weighs each by how often it was drawn.

use std::sync::atomic::{AtomicU64, Ordering};

use rayon::prelude::*;
use tessera_core::{
    HostContextRef, PluginError, TrainData,
    params::Params,
    plugin::{LearnerImpl, ModelImpl, with_thread_budget},
};
use tessera_trees::{Entropy, Gini, Limits, SquaredError, class_weight::balanced};

use crate::{
    config::{Algorithm, Criterion, ForestParams, TreeConfig},
    data::Dataset,
    grow::grow,
    hist_split::{Classes, HistConfig, HistSplitter, Values},
    model::ForestModel,
    oob,
    params::ClassWeight,
    prune::RawTree,
    rng::{Rng, WeightedIndex, entropy_seed, tree_seed},
    shards,
    split::ExactSplitter,
    tree::Tree,
};

/// Either learner: a forest, or a forest of one tree on all rows.
pub struct TreeLearner {
    params: ForestParams,
}

/// Builds `random_forest` from parameters the schema has checked.
///
/// # Errors
/// A value the schema should have refused, or inconsistent parameters.
pub fn create(p: Params) -> Result<Box<dyn LearnerImpl>, PluginError> {
    Ok(Box::new(TreeLearner {
        params: ForestParams::from_params(&p)?,
    }))
}

/// Builds `decision_tree` from parameters the schema has checked.
///
/// # Errors
/// A value the schema should have refused.
pub fn create_tree(p: Params) -> Result<Box<dyn LearnerImpl>, PluginError> {
    Ok(Box::new(TreeLearner {
        params: ForestParams::decision_tree(&p)?,
    }))
}

/// One grown tree, with what the forest needs of it.
struct Built {
    tree: Tree,
    importances: Vec<f64>,
    /// Bit `r` set when row `r` was drawn (only when the OOB score is asked).
    inbag: Option<Vec<u64>>,
}

/// How trees draw their bootstrap samples: as scikit-learn, each draw
/// picks a row with probability proportional to its sample weight times
/// its class weight, and the tree then weighs rows by how often they were
/// drawn.
enum Draws {
    /// All rows weigh the same.
    Uniform,
    /// Rows weigh differently.
    Weighted(WeightedIndex),
}

/// Per-row weights of one tree's sample: bootstrap counts (times, for
/// "balanced_subsample", the sample's class weights), or the base weights
/// without bootstrap.
fn sample_weights(
    data: &Dataset,
    cfg: &TreeConfig,
    draws: &Draws,
    subsample: bool,
    rng: &mut Rng,
) -> Vec<f64> {
    if !cfg.bootstrap {
        return data.sample_weight.clone();
    }
    let n = data.n_rows;
    let mut counts = vec![0.0; n];
    for _ in 0..cfg.n_draws {
        let r = match draws {
            Draws::Uniform => rng.below(n),
            Draws::Weighted(w) => w.draw(rng),
        };
        counts[r] += 1.0;
    }
    if subsample {
        let cw = balanced(
            data.slot.iter().map(|&c| c as usize),
            counts.iter().copied(),
            data.n_slots,
        );
        for (w, &c) in counts.iter_mut().zip(&data.slot) {
            *w *= cw[c as usize];
        }
    }
    counts
}

/// Grows one tree with the split search `cfg` asks for.
fn grow_tree(data: &Dataset, cfg: &TreeConfig, weight: &[f64], rng: &mut Rng) -> RawTree {
    let total: f64 = weight.iter().filter(|&&w| w > 0.0).sum();
    let min_weight = cfg.min_weight_fraction_leaf * total;
    let (kind, min_leaf) = (cfg.splitter, cfg.min_samples_leaf);
    let (p, k) = (data.n_features, data.n_slots);
    let Some(binned) = data
        .binned
        .as_ref()
        .filter(|_| cfg.algorithm == Algorithm::Hist)
    else {
        let s = ExactSplitter::new(data, weight, cfg.criterion, kind, min_leaf, min_weight);
        return grow(p, k, cfg, s, rng);
    };
    let hc = HistConfig {
        kind,
        limits: Limits {
            min_count: min_leaf.min(u32::MAX as usize) as u32,
            min_weight,
        },
        // Dense histograms with the subtraction trick pay once a node
        // evaluates a good share of the features.
        dense: 3 * cfg.max_features >= p,
        criterion: cfg.criterion,
    };
    let ids: Vec<u32> = (0..data.n_rows as u32)
        .filter(|&r| weight[r as usize] > 0.0)
        .collect();
    if data.classify {
        let stats = ids
            .iter()
            .map(|&r| (data.slot[r as usize], weight[r as usize]))
            .collect();
        let classes = Classes { n_classes: k };
        match cfg.criterion {
            Criterion::Entropy => {
                let s = HistSplitter::new(binned, ids, stats, classes, Entropy, hc);
                grow(p, k, cfg, s, rng)
            }
            _ => {
                let s = HistSplitter::new(binned, ids, stats, classes, Gini, hc);
                grow(p, k, cfg, s, rng)
            }
        }
    } else {
        let stats = ids
            .iter()
            .map(|&r| (weight[r as usize], data.value[r as usize]))
            .collect();
        let s = HistSplitter::new(binned, ids, stats, Values, SquaredError, hc);
        grow(p, k, cfg, s, rng)
    }
}

fn build_tree(
    data: &Dataset,
    cfg: &TreeConfig,
    params: &ForestParams,
    draws: &Draws,
    (seed, index): (u64, usize),
) -> Built {
    let mut rng = Rng::new(tree_seed(seed, index as u64));
    let subsample = params.class_weight == ClassWeight::BalancedSubsample;
    let weight = sample_weights(data, cfg, draws, subsample, &mut rng);
    let mut raw = grow_tree(data, cfg, &weight, &mut rng);
    raw.prune(cfg.ccp_alpha);
    let n_classes = if data.classify { data.n_slots } else { 0 };
    let inbag = params.oob_score.then(|| {
        let mut bits = vec![0u64; data.n_rows.div_ceil(64)];
        for (r, _) in weight.iter().enumerate().filter(|(_, w)| **w > 0.0) {
            bits[r / 64] |= 1 << (r % 64);
        }
        bits
    });
    Built {
        importances: raw.importances(data.n_features),
        tree: raw.compact(n_classes),
        inbag,
    }
}

/// Mean over trees of each tree's impurity decreases normalised to sum 1
/// (trees that are a lone leaf left out), normalised again: scikit-learn's
/// `feature_importances_`; and how many trees counted (what a shard's
/// importances weigh when shards are joined).
fn importances(built: &[Built], n_features: usize) -> (Vec<f64>, usize) {
    let mut total = vec![0.0; n_features];
    let mut counted = 0;
    for b in built {
        let sum: f64 = b.importances.iter().sum();
        if b.tree.nodes.len() > 1 && sum > 0.0 {
            counted += 1;
            for (t, v) in total.iter_mut().zip(&b.importances) {
                *t += v / sum;
            }
        }
    }
    let sum: f64 = total.iter().sum();
    if sum > 0.0 {
        total.iter_mut().for_each(|t| *t /= sum);
    }
    (total, counted)
}

/// Multiplies the sample weights by the class weights that do not depend
/// on the tree. A forest balances classes by their total sample weight, a
/// single tree by their row counts (as scikit-learn).
fn apply_class_weight(data: &mut Dataset, cw: &ClassWeight, bootstrap: bool, forest: bool) {
    let per_class = match cw {
        ClassWeight::None => return,
        ClassWeight::BalancedSubsample if bootstrap => return,
        ClassWeight::Balanced | ClassWeight::BalancedSubsample => {
            let counts: Vec<f64> = if forest {
                data.sample_weight.clone()
            } else {
                vec![1.0; data.n_rows]
            };
            balanced(
                data.slot.iter().map(|&c| c as usize),
                counts.into_iter(),
                data.n_slots,
            )
        }
        ClassWeight::Given(given) => {
            let mut w = vec![1.0; data.n_slots];
            for &(c, v) in given {
                if let Some(slot) = w.get_mut(c) {
                    *slot = v;
                }
            }
            w
        }
    };
    for (w, &c) in data.sample_weight.iter_mut().zip(&data.slot) {
        *w *= per_class[c as usize];
    }
}

impl TreeLearner {
    fn fit_in_pool(
        &self,
        ctx: &HostContextRef<'_>,
        data: &TrainData<'_>,
        cfg: &TreeConfig,
        seed: u64,
        parallel: bool,
    ) -> Result<ForestModel, PluginError> {
        let p = &self.params;
        let hist = (cfg.algorithm == Algorithm::Hist).then_some(cfg.max_bins);
        let mut dataset = Dataset::new(data, hist, parallel);
        let forest = p.learner == crate::params::LEARNER;
        apply_class_weight(&mut dataset, &p.class_weight, cfg.bootstrap, forest);
        let weight_sum: f64 = dataset.sample_weight.iter().sum();
        if weight_sum <= 0.0 {
            return Err(PluginError::input(
                "sample weights sum to zero: no row has any weight",
            ));
        }
        let first = dataset.sample_weight[0];
        let draws = if dataset.sample_weight.iter().all(|&w| w == first) {
            Draws::Uniform
        } else {
            Draws::Weighted(WeightedIndex::new(&dataset.sample_weight))
        };
        let mut cfg = *cfg;
        cfg.n_draws = p.draws(dataset.n_rows, weight_sum);
        let cfg = &cfg;
        // A shard grows only its range of tree indices; each tree's seed
        // comes from its index in the whole forest.
        let indices = p.estimators();
        let total = indices.len();
        let done = AtomicU64::new(0);
        let one = |i: usize| -> Result<Built, PluginError> {
            if ctx.is_cancelled() {
                return Err(PluginError::cancelled());
            }
            let b = build_tree(&dataset, cfg, p, &draws, (seed, i));
            ctx.progress(done.fetch_add(1, Ordering::Relaxed) + 1, total as u64);
            Ok(b)
        };
        let built: Vec<Built> = if parallel {
            indices
                .clone()
                .into_par_iter()
                .map(one)
                .collect::<Result<_, _>>()?
        } else {
            indices.clone().map(one).collect::<Result<_, _>>()?
        };
        let (importances, counted) = importances(&built, dataset.n_features);
        let (trees, inbag): (Vec<Tree>, Vec<Option<Vec<u64>>>) =
            built.into_iter().map(|b| (b.tree, b.inbag)).unzip();
        let oob_score = if p.oob_score {
            let inbag: Vec<Vec<u64>> = inbag.into_iter().flatten().collect();
            oob::score(&trees, &inbag, data, parallel)
        } else {
            None
        };
        if p.oob_score && oob_score.is_none() {
            ctx.log(
                tessera_core::context::level::WARN,
                "oob_score: every row was in every tree's sample; no out-of-bag score".into(),
            );
        }
        let mut used = p.used(cfg, seed);
        if let Some(s) = p.shard {
            shards::mark(&mut used, s, indices, counted);
        }
        Ok(ForestModel::new(
            p.learner,
            data.task,
            dataset.n_features,
            trees,
            importances,
            oob_score,
            used,
        ))
    }
}

impl LearnerImpl for TreeLearner {
    fn fit(
        &self,
        ctx: &HostContextRef<'_>,
        data: &TrainData<'_>,
    ) -> Result<Box<dyn ModelImpl>, PluginError> {
        let (rows, features) = (data.x.rows(), data.x.cols());
        let cfg = self.params.resolve(data.task, rows, features)?;
        let seed = self.params.random_state.unwrap_or_else(entropy_seed);
        let threads = ctx.threads() as usize;
        let model = if threads <= 1 {
            self.fit_in_pool(ctx, data, &cfg, seed, false)?
        } else {
            with_thread_budget(threads, || self.fit_in_pool(ctx, data, &cfg, seed, true))??
        };
        Ok(Box::new(model))
    }
}
