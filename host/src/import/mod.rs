//! Importers that turn models trained by other libraries into tessera's
//! tree-ensemble IR ([`TreeEnsemble`]).
//!
//! * [`lightgbm`] reads LightGBM's text format (`Booster.save_model`,
//!   versions v2 to v4);
//! * [`xgboost`] reads XGBoost's JSON format (`Booster.save_model("m.json")`,
//!   1.x to 3.x).
//!
//! Both reproduce the library's raw score (`predict(raw_score=True)`,
//! `predict(output_margin=True)`) as `base_score` plus the sum of the trees,
//! and its prediction through the ensemble's
//! [`Link`](tessera_core::ir::Link). LightGBM's random-forest mode
//! (`average_output`) is the exception: its prediction links the *mean* of
//! the trees (`Combine::Mean`), although its `raw_score` reports their sum.
//! Whatever the IR
//! cannot express faithfully (categorical splits, linear leaves, objectives
//! with an exponential link, ...) is refused with an [`ImportError`] naming
//! the place in the file, rather than imported approximately. Every input is
//! checked explicitly: malformed, truncated or hostile files give an error,
//! never a panic, and the produced ensemble is validated as a whole (every
//! node reached exactly once from the root, features, children and leaf
//! values in range) before it is returned.
//!
//! Split thresholds are converted so that the IR's `x <= threshold` on `f32`
//! inputs sends every row where the original library sends it:
//!
//! * LightGBM compares `(double)x <= t`: the IR keeps the largest `f32` not
//!   above `t` (so `t` itself when it is an `f32`). LightGBM also reads every
//!   input with `|x| <= 1e-35` as zero; a threshold inside that band is moved
//!   to its edge so that the whole band goes where zero goes.
//! * XGBoost sends a row left when `x < c` (strict, in `f32`): the IR keeps
//!   the `f32` just below `c`.

use tessera_core::ir::{Tree, TreeEnsemble, TreeNode};
use thiserror::Error;

mod artifact;
mod lightgbm;
#[cfg(test)]
mod tests;
mod xgboost;

pub use artifact::{COMPONENT, Origin, artifact};

/// A model read from another library's file.
#[derive(Clone, Debug, PartialEq)]
pub struct Imported {
    /// The trees, ready for tessera's tree-ensemble tooling.
    pub ensemble: TreeEnsemble,
    /// One name per feature, in column order (`ensemble.n_features` of
    /// them). XGBoost models saved without names get XGBoost's defaults
    /// `f0`, `f1`, ...
    pub feature_names: Vec<String>,
    /// The objective the model was trained with, as the library names it
    /// (`binary`, `multiclass`, `regression`, ... for LightGBM;
    /// `binary:logistic`, `multi:softprob`, `reg:squarederror`, ... for
    /// XGBoost).
    pub objective: String,
}

/// Why a model file could not be imported: one sentence naming the place at
/// fault.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum ImportError {
    /// A LightGBM text model is malformed or uses something the IR cannot
    /// express.
    #[error("line {line}: {message}")]
    LightGbm {
        /// 1-based line number.
        line: usize,
        /// What is wrong there.
        message: String,
    },
    /// An XGBoost JSON model is malformed or uses something the IR cannot
    /// express.
    #[error("{}", located(path, message))]
    XgBoost {
        /// JSON path of the value at fault, such as
        /// `learner.gradient_booster.model.trees[3].split_conditions[7]`;
        /// empty when the text is not JSON at all.
        path: String,
        /// What is wrong there.
        message: String,
    },
    /// The class labels given for the model do not fit it.
    #[error("{0}")]
    Classes(String),
}

fn located(path: &str, message: &str) -> String {
    if path.is_empty() {
        message.to_string()
    } else {
        format!("{path}: {message}")
    }
}

/// Reads a LightGBM model saved in its text format (`save_model`,
/// `model_to_string`).
///
/// Accepted objectives: `binary` (with `sigmoid:1`), `multiclass` and the
/// regression family (`regression`, `regression_l1`, `huber`, `fair`,
/// `quantile`, `mape`). The base score is 0: LightGBM folds its initial
/// score into the first trees.
///
/// # Errors
/// When the text is not a well-formed LightGBM model, or uses categorical
/// splits, linear trees, zero-as-missing splits that send zero against the
/// comparison, or another objective.
pub fn lightgbm(text: &str) -> Result<Imported, ImportError> {
    lightgbm::parse(text)
}

/// Reads an XGBoost model saved as JSON (`save_model("model.json")`).
///
/// Accepted: the `gbtree` and `dart` boosters; objectives `binary:logistic`,
/// `binary:logitraw`, `multi:softprob`, `multi:softmax`,
/// `reg:squarederror` (`reg:linear`), `reg:squaredlogerror`, `reg:absoluteerror`,
/// `reg:pseudohubererror` and single-quantile `reg:quantileerror`.
///
/// # Errors
/// When the text is not JSON or not a well-formed XGBoost model, or uses
/// categorical splits, multi-target trees, the `gblinear` booster or another
/// objective.
pub fn xgboost(json: &str) -> Result<Imported, ImportError> {
    xgboost::parse(json)
}

/// A node as a file describes it, before it becomes an IR node. Children are
/// indices into the same slice of source nodes.
#[derive(Clone, Copy, Debug)]
enum SrcNode {
    Split {
        feature: u32,
        threshold: f32,
        missing_left: bool,
        left: usize,
        right: usize,
    },
    Leaf(f32),
}

/// Which child of a split.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Side {
    Left,
    Right,
}

/// Why source nodes do not form a tree.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Shape {
    /// The tree has no nodes.
    Empty,
    /// `node`'s child on `side` is not a node index.
    OutOfRange {
        node: usize,
        side: Side,
        child: usize,
    },
    /// `node`'s child on `side` was already reached: a cycle or a shared
    /// child.
    Revisited {
        node: usize,
        side: Side,
        child: usize,
    },
    /// More nodes than `u32` indices can address.
    TooLarge,
}

/// Source nodes copied into an IR tree.
struct Built {
    tree: Tree,
    /// The first source node the root does not reach, if any.
    unreached: Option<usize>,
    /// How many source nodes the root reaches.
    reached: usize,
}

/// Copies the source nodes reachable from node 0 into an IR tree (root
/// first, leaf values in the order leaves are reached), checking that they
/// form a tree: every child index in range and no node reached twice.
fn build_tree(src: &[SrcNode], output: u32) -> Result<Built, Shape> {
    if src.is_empty() {
        return Err(Shape::Empty);
    }
    let mut seen = vec![false; src.len()];
    seen[0] = true;
    let mut nodes = vec![placeholder()];
    let mut values = Vec::new();
    // (source index, IR index) of nodes whose IR slot is still to be filled.
    let mut stack = vec![(0usize, 0usize)];
    while let Some((s, i)) = stack.pop() {
        nodes[i] = match src[s] {
            SrcNode::Leaf(v) => {
                let node = leaf_node(values.len())?;
                values.push(v);
                node
            }
            SrcNode::Split {
                feature,
                threshold,
                missing_left,
                left,
                right,
            } => {
                let mut child = |side, c: usize| -> Result<u32, Shape> {
                    if c >= src.len() {
                        return Err(Shape::OutOfRange {
                            node: s,
                            side,
                            child: c,
                        });
                    }
                    if seen[c] {
                        return Err(Shape::Revisited {
                            node: s,
                            side,
                            child: c,
                        });
                    }
                    seen[c] = true;
                    let at = nodes.len();
                    nodes.push(placeholder());
                    stack.push((c, at));
                    u32::try_from(at).map_err(|_| Shape::TooLarge)
                };
                let l = child(Side::Left, left)?;
                let r = child(Side::Right, right)?;
                TreeNode {
                    feature,
                    threshold,
                    left: l,
                    right: r,
                    value: 0,
                    missing_left: u8::from(missing_left),
                }
            }
        };
    }
    Ok(Built {
        reached: nodes.len(),
        unreached: seen.iter().position(|&s| !s),
        tree: Tree {
            nodes: nodes.into(),
            values: values.into(),
            output,
        },
    })
}

fn placeholder() -> TreeNode {
    TreeNode::leaf(0)
}

fn leaf_node(value: usize) -> Result<TreeNode, Shape> {
    let value = u32::try_from(value).map_err(|_| Shape::TooLarge)?;
    Ok(TreeNode {
        value,
        ..placeholder()
    })
}

/// The largest `f32` that is `<= x` (`x` not NaN): `x` itself when it is an
/// `f32`, so that `(f64::from(v) <= x) == (v <= result)` for every `f32` `v`.
fn f32_at_or_below(x: f64) -> f32 {
    let f = x as f32;
    if f64::from(f) > x { f.next_down() } else { f }
}

/// The value of a count in the range `min..=max`, or why not.
fn count_in(value: i64, min: i64, max: i64) -> Result<usize, String> {
    if value < min || value > max {
        return Err(format!("{value} is outside {min}..={max}"));
    }
    usize::try_from(value).map_err(|_| format!("{value} is too large"))
}

/// The most features a model may have: feature indices must stay below
/// [`TreeNode::LEAF`].
const MAX_FEATURES: i64 = u32::MAX as i64 - 1;

/// Checks an ensemble as a whole: the shape of every tree (each node
/// reached exactly once from the root), features, child and value indices,
/// outputs, leaf values and base scores. Returns the index of the first bad
/// tree (or `None` for the ensemble itself) and what is wrong.
fn validate(e: &TreeEnsemble) -> Result<(), (Option<usize>, String)> {
    let n_outputs = e.n_outputs as usize;
    if n_outputs == 0 {
        return Err((None, "the ensemble has no outputs".into()));
    }
    if !(e.base_score.is_empty() || e.base_score.len() == n_outputs) {
        return Err((
            None,
            format!("{} base scores for {n_outputs} outputs", e.base_score.len()),
        ));
    }
    if let Some(b) = e.base_score.iter().find(|b| !b.is_finite()) {
        return Err((None, format!("base score {b} is not finite")));
    }
    if e.trees.is_empty() {
        return Err((None, "the model has no trees".into()));
    }
    for (t, tree) in e.trees.iter().enumerate() {
        validate_tree(tree, e.n_features, n_outputs).map_err(|m| (Some(t), m))?;
    }
    Ok(())
}

fn validate_tree(tree: &Tree, n_features: u32, n_outputs: usize) -> Result<(), String> {
    if tree.output != Tree::ALL_OUTPUTS && tree.output as usize >= n_outputs {
        return Err(format!(
            "output {} is out of range ({n_outputs} outputs)",
            tree.output
        ));
    }
    let width = tree.leaf_width(n_outputs);
    let nodes = &tree.nodes;
    if nodes.is_empty() {
        return Err("the tree has no nodes".into());
    }
    let mut seen = vec![false; nodes.len()];
    seen[0] = true;
    let mut stack = vec![0usize];
    let mut leaves = 0usize;
    while let Some(i) = stack.pop() {
        let n = &nodes[i];
        if n.is_leaf() {
            leaves += 1;
            let end = (n.value as usize).checked_add(width);
            if end.is_none_or(|end| end > tree.values.len()) {
                return Err(format!(
                    "node {i}: leaf value offset {} is out of range",
                    n.value
                ));
            }
            continue;
        }
        if n.feature >= n_features {
            return Err(format!("node {i}: feature {} is out of range", n.feature));
        }
        if n.threshold.is_nan() {
            return Err(format!("node {i}: the threshold is NaN"));
        }
        for c in [n.left as usize, n.right as usize] {
            if c >= nodes.len() {
                return Err(format!("node {i}: child {c} is out of range"));
            }
            if seen[c] {
                return Err(format!("node {i}: child {c} is reached twice"));
            }
            seen[c] = true;
            stack.push(c);
        }
    }
    if let Some(i) = seen.iter().position(|&s| !s) {
        return Err(format!("node {i} is not reached from the root"));
    }
    if leaves.checked_mul(width) != Some(tree.values.len()) {
        return Err(format!(
            "{} leaf values for {leaves} leaves",
            tree.values.len()
        ));
    }
    if let Some(v) = tree.values.iter().find(|v| !v.is_finite()) {
        return Err(format!("leaf value {v} is not finite"));
    }
    Ok(())
}
