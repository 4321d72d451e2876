//! Pruning tree ensembles: fewer trees (greedy forward selection on
//! evaluation rows, or the first ones), and smaller trees (truncation at a
//! depth, minimal cost-complexity pruning with node statistics measured on
//! rows).
//!
//! The steps run in the order `max_depth`, `ccp_alpha`, tree selection, so
//! that the selection judges the trees as they will be served. Every output
//! tree is rebuilt in preorder (a node's left child right after it), which
//! drops unreachable nodes and unused leaf values; a tree already laid out
//! that way and not cut comes back unchanged.
//!
//! Threads: the crate has no rayon of its own, so the two parallel loops
//! (per-tree work, and scoring the candidates of a greedy step) use scoped
//! standard threads, as many as the context's budget.

use std::{cmp::Ordering, collections::BinaryHeap};

use serde_json::{Value, json};
use tessera_core::{
    CompressData, Holdout, HostContextRef, PluginError,
    ir::{Combine, Link, Tree, TreeEnsemble, TreeNode},
};
use tessera_engine::Engine;

mod greedy;
mod shape;

use greedy::{greedy, metric};
use shape::{Shape, StatRows, shape_tree};

/// How many trees to keep.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Keep {
    /// Exactly this many (at least 1, at most the model's trees).
    Count(usize),
    /// This fraction of the model's trees, in `(0, 1]`, rounded to the
    /// nearest count and at least 1.
    Fraction(f64),
}

/// How the kept trees are chosen.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Selection {
    /// Forward selection on the evaluation rows: start with no tree and add,
    /// one at a time, the tree that gives the combined ensemble the best
    /// metric (log-loss for classifiers, squared error for regressors).
    #[default]
    Greedy,
    /// The first trees, the natural choice for boosting, where each tree
    /// corrects the ones before it.
    First,
}

/// What [`prune`] does; the default does nothing but compact the trees.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct TreePrune {
    /// How many trees to keep (`None`: all).
    pub keep: Option<Keep>,
    /// How the kept trees are chosen.
    pub selection: Selection,
    /// Minimal cost-complexity pruning strength, scikit-learn's `ccp_alpha`
    /// (0: none).
    pub ccp_alpha: f64,
    /// Cut every tree at this depth (the root is depth 0).
    pub max_depth: Option<usize>,
}

/// Most evaluation rows greedy selection scores on. Past it, rows are
/// taken evenly spaced through the set (row `i * n / cap`), which is
/// deterministic and follows any drift along the file.
pub const SELECTION_ROWS: usize = 20_000;
/// Most values (trees x rows x stored width) of the per-tree output table
/// greedy selection keeps in memory, 256 MiB of `f32`; a very wide or very
/// large ensemble scores on fewer rows (never under [`MIN_SELECTION_ROWS`]).
const TABLE_VALUES: usize = 64 << 20;
/// Fewest rows the table budget may cut the selection rows to.
const MIN_SELECTION_ROWS: usize = 1_000;
/// Lowest probability the log-loss of a probability-valued ensemble
/// (forests, votes) uses. One tree's leaf often gives a class probability
/// 0; clipping at 1e-6 bounds a row's loss at ~13.8, so that a few
/// confident mistakes of a small early selection do not decide it alone.
const PROB_EPS: f64 = 1e-6;

/// Prunes `ens`; returns the pruned ensemble and a JSON summary of what was
/// done: trees, nodes and leaves before and after, the options, the rows
/// used for node statistics, the selection, and the metric (log-loss or
/// squared error) of the ensemble before and after on the evaluation rows
/// when there are some.
///
/// Node statistics (`ccp_alpha`, `max_depth`) come from `data.train`, else
/// `data.eval`. A node cut by `max_depth` or `ccp_alpha` becomes a leaf
/// holding the average of its subtree's leaf values weighted by the rows'
/// weight reaching each leaf, or, when no row reaches the subtree or no
/// rows are given (`max_depth` alone), the plain average of its leaves.
///
/// # Errors
/// Options out of range (`PluginError::params`), a tree count larger than
/// the model's, greedy selection without evaluation rows, cost-complexity
/// pruning without rows, rows that do not fit the model, a malformed
/// ensemble, or cancellation.
pub fn prune(
    ens: &TreeEnsemble,
    opts: &TreePrune,
    data: &CompressData<'_>,
    ctx: &HostContextRef<'_>,
) -> Result<(TreeEnsemble, Value), PluginError> {
    let n_trees = ens.trees.len();
    let keep = keep_count(opts.keep, n_trees)?;
    if !(opts.ccp_alpha >= 0.0 && opts.ccp_alpha.is_finite()) {
        return Err(PluginError::params(format!(
            "`ccp_alpha` = {} must be a finite number, 0 or more",
            opts.ccp_alpha
        )));
    }
    Engine::new(ens)?;
    check_rows(ens, data)?;
    let eval = data.eval.into_option();
    if keep.is_some() && opts.selection == Selection::Greedy && eval.is_none() {
        return Err(PluginError::input(
            "greedy tree selection needs evaluation rows: give --eval FILE --target COL, \
             or keep the first trees instead",
        ));
    }
    let threads = ctx.threads().max(1) as usize;

    let shaping = opts.ccp_alpha > 0.0 || opts.max_depth.is_some();
    let (stat_rows, stat_set) = match (data.train.into_option(), eval) {
        (Some(h), _) => (Some(h), "training"),
        (None, Some(h)) => (Some(h), "evaluation"),
        (None, None) => (None, "none"),
    };
    if opts.ccp_alpha > 0.0 && stat_rows.is_none() {
        return Err(PluginError::input(format!(
            "cost-complexity pruning (`ccp_alpha` = {}) measures node impurity on rows: \
             give training or evaluation rows (--eval FILE --target COL)",
            opts.ccp_alpha
        )));
    }
    let stats = stat_rows
        .filter(|_| shaping)
        .map(|h| StatRows::new(h, data));
    let shape = Shape {
        max_depth: opts.max_depth,
        ccp_alpha: opts.ccp_alpha,
    };
    let k = ens.n_outputs as usize;
    let shaped = par_map(threads, n_trees, |t| {
        if ctx.is_cancelled() {
            return Err(PluginError::cancelled());
        }
        Ok(shape_tree(&ens.trees[t], k, &shape, stats.as_ref()))
    })
    .into_iter()
    .collect::<Result<Vec<_>, _>>()?;
    let mut shaped_ens = TreeEnsemble {
        trees: shaped.into(),
        ..ens.clone()
    };

    let mut selection = Value::Null;
    if let Some(n) = keep {
        let kept = match opts.selection {
            Selection::First => {
                selection = json!({ "method": "first" });
                (0..n).collect()
            }
            Selection::Greedy => {
                let h = eval.expect("checked above");
                let (kept, info) = greedy(&shaped_ens, h, data, n, threads, ctx)?;
                selection = info;
                kept
            }
        };
        let trees = std::mem::take(&mut shaped_ens.trees);
        shaped_ens.trees = kept.iter().map(|&t| trees[t].clone()).collect();
    }

    let metric = match eval {
        Some(h) => {
            let (name, before) = metric(ens, h, ctx)?;
            let (_, after) = metric(&shaped_ens, h, ctx)?;
            json!({ "name": name, "rows": h.x.rows(), "before": before, "after": after })
        }
        None => Value::Null,
    };
    let count = |e: &TreeEnsemble, leaves: bool| -> usize {
        e.trees
            .iter()
            .map(|t| t.nodes.iter().filter(|n| !leaves || n.is_leaf()).count())
            .sum()
    };
    let summary = json!({
        "trees": { "before": n_trees, "after": shaped_ens.trees.len() },
        "nodes": { "before": count(ens, false), "after": count(&shaped_ens, false) },
        "leaves": { "before": count(ens, true), "after": count(&shaped_ens, true) },
        "max_depth": opts.max_depth,
        "ccp_alpha": opts.ccp_alpha,
        "node_rows": stats.as_ref().map(|s| json!({ "set": stat_set, "rows": s.h.x.rows() })),
        "selection": selection,
        "metric": metric,
    });
    Ok((shaped_ens, summary))
}

/// The tree count `keep` asks for, checked against the model's `n_trees`.
fn keep_count(keep: Option<Keep>, n_trees: usize) -> Result<Option<usize>, PluginError> {
    let n = match keep {
        None => return Ok(None),
        Some(Keep::Count(0)) => {
            return Err(PluginError::params(
                "`n_estimators` = 0: keep at least 1 tree",
            ));
        }
        Some(Keep::Count(n)) => n,
        Some(Keep::Fraction(f)) => {
            if !(f > 0.0 && f <= 1.0) {
                return Err(PluginError::params(format!(
                    "`n_estimators` = {f} as a fraction of the trees must be in (0, 1]; \
                     give a whole number for a count"
                )));
            }
            ((f * n_trees as f64).round() as usize).max(1)
        }
    };
    if n > n_trees {
        return Err(PluginError::input(format!(
            "`n_estimators` = {n} is more than the {n_trees} trees the model has"
        )));
    }
    Ok(Some(n))
}

/// Refuses rows whose task or width does not fit the model.
fn check_rows(ens: &TreeEnsemble, data: &CompressData<'_>) -> Result<(), PluginError> {
    if data.any().is_none() {
        return Ok(());
    }
    data.validate(ens.n_features as usize)?;
    let task = data.task;
    let fits = if ens.n_classes > 0 {
        task.is_classification() && task.n_classes == ens.n_classes
    } else {
        !task.is_classification() && task.n_targets() == ens.n_outputs as usize
    };
    if !fits {
        let model = if ens.n_classes > 0 {
            format!("a classifier of {} classes", ens.n_classes)
        } else {
            format!("a regressor of {} target(s)", ens.n_outputs)
        };
        let rows = if task.is_classification() {
            format!("classification into {} classes", task.n_classes)
        } else {
            format!("regression of {} target(s)", task.n_targets())
        };
        return Err(PluginError::input(format!(
            "the model is {model}, but the rows are labelled for {rows}"
        )));
    }
    Ok(())
}

/// Maps `f` over `0..n` on up to `threads` scoped threads, thread `j`
/// taking items `j, j + threads, ...` (trees differ in size, so
/// interleaving balances them); results in index order.
fn par_map<T: Send>(threads: usize, n: usize, f: impl Fn(usize) -> T + Sync) -> Vec<T> {
    let threads = threads.min(n);
    if threads <= 1 {
        return (0..n).map(f).collect();
    }
    let parts: Vec<Vec<T>> = std::thread::scope(|s| {
        let f = &f;
        let handles: Vec<_> = (0..threads)
            .map(|j| s.spawn(move || (j..n).step_by(threads).map(f).collect::<Vec<_>>()))
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
            .collect()
    });
    let mut iters: Vec<_> = parts.into_iter().map(Vec::into_iter).collect();
    (0..n)
        .map(|i| iters[i % threads].next().expect("one result per item"))
        .collect()
}

// ---------------------------------------------------------------------------
// Metric

/// Weight of row `r`: its sample weight, or 1.
fn row_weight(h: &Holdout<'_>, r: usize) -> f64 {
    h.weights
        .into_option()
        .map_or(1.0, |w| f64::from(w.as_slice()[r]))
}

#[cfg(test)]
mod tests;
