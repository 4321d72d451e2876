//! Checked parameters ([`ForestParams`], for both learners) and their
//! resolution against a task and a data size into a [`TreeConfig`], as
//! scikit-learn resolves them.

use std::ops::Range;

use serde_json::{Value, json};
use tessera_core::{PluginError, Task, params::Params, shard::Shard};

use crate::params::{
    CRITERIA, ClassWeight, LEARNER, MaxFeatures, Size, TREE_LEARNER, class_weight, max_features,
    size,
};

/// A split criterion.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Criterion {
    /// Gini impurity (classification).
    Gini,
    /// Shannon entropy (classification); `log_loss` is the same criterion.
    Entropy,
    /// Variance of the target (regression).
    SquaredError,
}

impl Criterion {
    /// The criterion's scikit-learn name.
    pub fn name(self) -> &'static str {
        match self {
            Self::Gini => "gini",
            Self::Entropy => "entropy",
            Self::SquaredError => "squared_error",
        }
    }
}

/// How thresholds are chosen for a candidate feature.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Splitter {
    /// The best threshold.
    Best,
    /// One random threshold (extremely randomized trees).
    Random,
}

/// How split search reads the features.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Algorithm {
    /// Histograms of binned features.
    Hist,
    /// Sorted raw values.
    Exact,
}

/// Parameters of either learner, checked but not yet resolved against data.
#[derive(Clone, Debug, PartialEq)]
pub struct ForestParams {
    /// `random_forest` or `decision_tree`.
    pub learner: &'static str,
    /// Number of trees (1 for a decision tree).
    pub n_estimators: usize,
    /// The criterion; `None` picks the task's default.
    pub criterion: Option<&'static str>,
    /// Best or random thresholds.
    pub splitter: Splitter,
    /// Depth limit; `None` for none.
    pub max_depth: Option<usize>,
    /// Fewest samples to split a node.
    pub min_samples_split: Size,
    /// Fewest samples in a leaf.
    pub min_samples_leaf: Size,
    /// Smallest fraction of the total weight in a leaf.
    pub min_weight_fraction_leaf: f64,
    /// Features drawn per split.
    pub max_features: MaxFeatures,
    /// Leaf limit (best-first growth); `None` for none.
    pub max_leaf_nodes: Option<usize>,
    /// Smallest weighted impurity decrease of a split.
    pub min_impurity_decrease: f64,
    /// Weights per class.
    pub class_weight: ClassWeight,
    /// Cost-complexity pruning parameter.
    pub ccp_alpha: f64,
    /// Whether each tree sees a bootstrap sample.
    pub bootstrap: bool,
    /// Whether to compute the out-of-bag score.
    pub oob_score: bool,
    /// Rows drawn per tree; `None` for as many as there are rows.
    pub max_samples: Option<Size>,
    /// The seed; `None` draws one at fit time.
    pub random_state: Option<u64>,
    /// Histogram or exact split search.
    pub algorithm: Algorithm,
    /// Bins per feature (histogram search).
    pub max_bins: usize,
    /// The shard to train (`random_forest` only); `None` for every tree.
    pub shard: Option<Shard>,
}

/// Everything one tree needs, resolved for a task and a data size.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TreeConfig {
    /// The split criterion.
    pub criterion: Criterion,
    /// Best or random thresholds.
    pub splitter: Splitter,
    /// Depth limit (`usize::MAX` for none).
    pub max_depth: usize,
    /// Fewest samples to split a node.
    pub min_samples_split: usize,
    /// Fewest samples in each child.
    pub min_samples_leaf: usize,
    /// Smallest fraction of a tree's total weight in each child.
    pub min_weight_fraction_leaf: f64,
    /// Features evaluated per split.
    pub max_features: usize,
    /// Leaf limit (best-first growth).
    pub max_leaf_nodes: Option<usize>,
    /// Smallest weighted impurity decrease of a split.
    pub min_impurity_decrease: f64,
    /// Cost-complexity pruning parameter.
    pub ccp_alpha: f64,
    /// Whether each tree sees a bootstrap sample.
    pub bootstrap: bool,
    /// Rows drawn per tree with bootstrap (see [`ForestParams::draws`]
    /// for weighted data).
    pub n_draws: usize,
    /// Histogram or exact split search.
    pub algorithm: Algorithm,
    /// Bins per feature.
    pub max_bins: usize,
}

fn bad(learner: &str, key: &str, v: &Value) -> PluginError {
    PluginError::params(format!(
        "`{learner}` parameter `{key}`: unexpected value {v}"
    ))
}

fn bad_param(learner: &str, key: &str, why: impl std::fmt::Display) -> PluginError {
    PluginError::params(format!("`{learner}` parameter `{key}`: {why}"))
}

impl ForestParams {
    /// Reads `random_forest` parameters that [`tessera_core::params::parse`]
    /// has checked against [`crate::params::specs`].
    ///
    /// # Errors
    /// A value the schema should have refused, or `max_samples` or
    /// `oob_score` without bootstrap.
    pub fn from_params(p: &Params) -> Result<Self, PluginError> {
        let mut f = Self::common(LEARNER, p)?;
        f.n_estimators = p
            .opt_usize("n_estimators")
            .ok_or_else(|| bad(LEARNER, "n_estimators", p.get("n_estimators")))?;
        f.bootstrap = p.bool("bootstrap");
        f.oob_score = p.bool("oob_score");
        f.max_samples = match p.get("max_samples") {
            Value::Null => None,
            v => Some(size(v).ok_or_else(|| bad(LEARNER, "max_samples", v))?),
        };
        if !f.bootstrap && f.max_samples.is_some() {
            return Err(bad_param(
                LEARNER,
                "max_samples",
                "applies only with `bootstrap = true` (without bootstrap every tree sees all rows)",
            ));
        }
        if !f.bootstrap && f.oob_score {
            return Err(bad_param(
                LEARNER,
                "oob_score",
                "needs `bootstrap = true` (without bootstrap no row is out of bag)",
            ));
        }
        f.shard =
            Shard::from_json(p.get("shard")).map_err(|why| bad_param(LEARNER, "shard", why))?;
        if let Some(s) = f.shard {
            s.range(f.n_estimators)
                .map_err(|why| bad_param(LEARNER, "shard", why))?;
            if f.oob_score {
                return Err(bad_param(
                    LEARNER,
                    "oob_score",
                    "cannot be computed in shards (a row is out of bag only with respect to every \
                     tree of the forest); train without it",
                ));
            }
            if f.random_state.is_none() {
                return Err(bad_param(
                    LEARNER,
                    "shard",
                    "needs a fixed `random_state`, so that every shard draws as the whole forest \
                     would",
                ));
            }
        }
        Ok(f)
    }

    /// Reads `decision_tree` parameters checked against
    /// [`crate::params::tree_specs`]: one tree on all rows.
    ///
    /// # Errors
    /// A value the schema should have refused.
    pub fn decision_tree(p: &Params) -> Result<Self, PluginError> {
        Self::common(TREE_LEARNER, p)
    }

    fn common(learner: &'static str, p: &Params) -> Result<Self, PluginError> {
        let get = |key: &str| p.get(key);
        let criterion = match get("criterion") {
            Value::Null => None,
            v => Some(
                CRITERIA
                    .iter()
                    .copied()
                    .find(|c| v.as_str() == Some(c))
                    .ok_or_else(|| bad(learner, "criterion", v))?,
            ),
        };
        let sized = |key: &str| size(get(key)).ok_or_else(|| bad(learner, key, get(key)));
        Ok(Self {
            learner,
            n_estimators: 1,
            criterion,
            splitter: if p.str("splitter") == "random" {
                Splitter::Random
            } else {
                Splitter::Best
            },
            max_depth: p.opt_usize("max_depth"),
            min_samples_split: sized("min_samples_split")?,
            min_samples_leaf: sized("min_samples_leaf")?,
            min_weight_fraction_leaf: p.f64("min_weight_fraction_leaf"),
            max_features: max_features(get("max_features"))
                .ok_or_else(|| bad(learner, "max_features", get("max_features")))?,
            max_leaf_nodes: p.opt_usize("max_leaf_nodes"),
            min_impurity_decrease: p.f64("min_impurity_decrease"),
            class_weight: class_weight(get("class_weight"))
                .map_err(|why| bad_param(learner, "class_weight", why))?,
            ccp_alpha: p.f64("ccp_alpha"),
            bootstrap: false,
            oob_score: false,
            max_samples: None,
            random_state: p.opt_u64("random_state"),
            algorithm: if p.str("split_algorithm") == "exact" {
                Algorithm::Exact
            } else {
                Algorithm::Hist
            },
            max_bins: p.usize("max_bins"),
            shard: None,
        })
    }

    /// The indices of the trees this fit grows: all of them, or the
    /// shard's range.
    pub fn estimators(&self) -> Range<usize> {
        match self.shard {
            // `from_params` has checked that the range exists.
            Some(s) => s.range(self.n_estimators).unwrap_or(0..0),
            None => 0..self.n_estimators,
        }
    }

    /// Resolves the task default criterion, the feature count and the row
    /// fractions for `task` on `rows x features` data, as scikit-learn does.
    ///
    /// # Errors
    /// A criterion or class weight of the other task, more features or
    /// samples than the data has.
    pub fn resolve(
        &self,
        task: Task,
        rows: usize,
        features: usize,
    ) -> Result<TreeConfig, PluginError> {
        let learner = self.learner;
        let classify = task.is_classification();
        let criterion = match (self.criterion, classify) {
            (None, true) => Criterion::Gini,
            (None, false) => Criterion::SquaredError,
            (Some("gini"), true) => Criterion::Gini,
            (Some("entropy" | "log_loss"), true) => Criterion::Entropy,
            (Some("squared_error"), false) => Criterion::SquaredError,
            (Some(c), _) => {
                let fits = if classify {
                    r#""gini", "entropy" or "log_loss""#
                } else {
                    r#""squared_error""#
                };
                return Err(bad_param(
                    learner,
                    "criterion",
                    format!("\"{c}\" does not apply to {} (use {fits})", task.name()),
                ));
            }
        };
        if !classify && self.class_weight != ClassWeight::None {
            return Err(bad_param(
                learner,
                "class_weight",
                "applies to classification only",
            ));
        }
        if let ClassWeight::Given(given) = &self.class_weight
            && let Some((c, _)) = given.iter().find(|(c, _)| *c >= task.n_classes as usize)
        {
            return Err(bad_param(
                learner,
                "class_weight",
                format!(
                    "class index {c} does not exist (the data has {} classes, 0..{})",
                    task.n_classes,
                    task.n_classes.saturating_sub(1)
                ),
            ));
        }
        let fraction = |f: f64| (f * rows as f64).ceil() as usize;
        let min_samples_leaf = match self.min_samples_leaf {
            Size::Count(n) => n,
            Size::Fraction(f) => fraction(f).max(1),
        };
        let min_samples_split = match self.min_samples_split {
            Size::Count(n) => n,
            Size::Fraction(f) => fraction(f).max(2),
        };
        let n = features as f64;
        let max_features = match self.max_features {
            MaxFeatures::Auto if classify => n.sqrt() as usize,
            MaxFeatures::Auto | MaxFeatures::All => features,
            MaxFeatures::Sqrt => n.sqrt() as usize,
            MaxFeatures::Log2 => n.log2() as usize,
            MaxFeatures::Fraction(f) => (f * n) as usize,
            MaxFeatures::Count(c) if c > features => {
                return Err(bad_param(
                    learner,
                    "max_features",
                    format!("{c} is more than the {features} feature columns of the data"),
                ));
            }
            MaxFeatures::Count(c) => c,
        };
        let n_draws = match self.max_samples {
            None => rows,
            Some(Size::Count(c)) if c > rows => {
                return Err(bad_param(
                    learner,
                    "max_samples",
                    format!("{c} is more than the {rows} rows of the data"),
                ));
            }
            Some(Size::Count(c)) => c,
            Some(Size::Fraction(_)) => self.draws(rows, rows as f64),
        };
        Ok(TreeConfig {
            criterion,
            splitter: self.splitter,
            max_depth: self.max_depth.unwrap_or(usize::MAX),
            min_samples_split: min_samples_split.max(2 * min_samples_leaf),
            min_samples_leaf,
            min_weight_fraction_leaf: self.min_weight_fraction_leaf,
            max_features: max_features.clamp(1, features.max(1)),
            max_leaf_nodes: self.max_leaf_nodes,
            min_impurity_decrease: self.min_impurity_decrease,
            ccp_alpha: self.ccp_alpha,
            bootstrap: self.bootstrap,
            n_draws,
            algorithm: self.algorithm,
            max_bins: self.max_bins,
        })
    }

    /// Rows drawn per tree from `rows` rows whose weights sum to
    /// `weight_sum` (the row count without weights): all of them, a
    /// count, or, as scikit-learn, a fraction of the total weight rounded
    /// down (at least one).
    pub fn draws(&self, rows: usize, weight_sum: f64) -> usize {
        match self.max_samples {
            Some(Size::Fraction(f)) => ((f * weight_sum) as usize).max(1),
            Some(Size::Count(c)) => c,
            None => rows,
        }
    }

    /// The parameters a model was trained with, resolved, for its summary.
    pub fn used(&self, cfg: &TreeConfig, seed: u64) -> Value {
        let class_weight = match &self.class_weight {
            ClassWeight::None => Value::Null,
            ClassWeight::Balanced => json!("balanced"),
            ClassWeight::BalancedSubsample => json!("balanced_subsample"),
            ClassWeight::Given(g) => {
                Value::Object(g.iter().map(|(c, w)| (c.to_string(), json!(w))).collect())
            }
        };
        let mut v = json!({
            "criterion": self.criterion.unwrap_or(cfg.criterion.name()),
            "splitter": if cfg.splitter == Splitter::Random { "random" } else { "best" },
            "max_depth": self.max_depth,
            "min_samples_split": cfg.min_samples_split,
            "min_samples_leaf": cfg.min_samples_leaf,
            "min_weight_fraction_leaf": cfg.min_weight_fraction_leaf,
            "max_features": cfg.max_features,
            "max_leaf_nodes": cfg.max_leaf_nodes,
            "min_impurity_decrease": cfg.min_impurity_decrease,
            "class_weight": class_weight,
            "ccp_alpha": cfg.ccp_alpha,
            "random_state": seed,
            "split_algorithm": if cfg.algorithm == Algorithm::Hist { "hist" } else { "exact" },
            "max_bins": cfg.max_bins,
        });
        if self.learner == LEARNER {
            v["n_estimators"] = json!(self.n_estimators);
            v["bootstrap"] = json!(cfg.bootstrap);
            v["oob_score"] = json!(self.oob_score);
            v["max_samples"] = if cfg.bootstrap {
                json!(cfg.n_draws)
            } else {
                Value::Null
            };
        }
        v
    }
}
