//! XGBoost's JSON model format (`Booster.save_model("model.json")`), as
//! written by XGBoost 1.x to 3.x.
//!
//! The parts read here:
//!
//! ```text
//! learner.learner_model_param  {base_score, num_class, num_feature, num_target}, numbers as strings
//! learner.objective.name       "binary:logistic", ...
//! learner.feature_names        [] or one name per feature
//! learner.gradient_booster     {name: "gbtree", model} or {name: "dart", gbtree: {model}, weight_drop}
//!   model.trees[t]             parallel arrays, one entry per node:
//!                              left_children / right_children (-1 at leaves), split_indices,
//!                              split_conditions (the leaf value at leaves), default_left, split_type
//!   model.tree_info[t]         the output (class) tree t adds to
//! ```
//!
//! A row goes left when `x < split_condition` (strict, in `f32`). The raw
//! score (`predict(output_margin=True)`) is the base margin plus the sum of
//! the trees (each tree scaled by its `weight_drop` for DART), where the base
//! margin is `base_score` turned from the objective's prediction space into
//! its margin space: `logit(base_score)` for `binary:logistic`, `base_score`
//! itself for every other accepted objective. XGBoost 3.x writes
//! `base_score` as a list (`"[5E-1]"`, one value per class for multiclass
//! models, already margins there since softmax's conversion is the
//! identity); 1.x and 2.x write a single number (`"5E-1"`), shared by all
//! classes.

use serde_json::{Map, Value};
use tessera_core::ir::{Combine, Link, Tree, TreeEnsemble};

use super::{
    Built, ImportError, Imported, MAX_FEATURES, Shape, Side, SrcNode, build_tree, count_in,
    validate,
};

/// A JSON value and its path from the document root.
#[derive(Clone, Debug)]
struct J<'a> {
    v: &'a Value,
    path: String,
}

fn err_at(path: &str, message: impl Into<String>) -> ImportError {
    ImportError::XgBoost {
        path: path.to_string(),
        message: message.into(),
    }
}

/// What kind of JSON value `v` is, for error messages.
fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

impl<'a> J<'a> {
    fn err(&self, message: impl Into<String>) -> ImportError {
        err_at(&self.path, message)
    }

    fn child_path(&self, key: &str) -> String {
        if self.path.is_empty() {
            key.to_string()
        } else {
            format!("{}.{key}", self.path)
        }
    }

    fn object(&self) -> Result<&'a Map<String, Value>, ImportError> {
        self.v
            .as_object()
            .ok_or_else(|| self.err(format!("expected an object, found {}", kind(self.v))))
    }

    /// The member `key`, if present.
    fn opt(&self, key: &str) -> Result<Option<J<'a>>, ImportError> {
        Ok(self.object()?.get(key).map(|v| J {
            v,
            path: self.child_path(key),
        }))
    }

    /// The member `key`.
    fn get(&self, key: &str) -> Result<J<'a>, ImportError> {
        self.opt(key)?
            .ok_or_else(|| err_at(&self.child_path(key), "missing"))
    }

    fn array(&self) -> Result<&'a [Value], ImportError> {
        self.v
            .as_array()
            .map(Vec::as_slice)
            .ok_or_else(|| self.err(format!("expected an array, found {}", kind(self.v))))
    }

    /// The elements of an array, each with its path.
    fn items(&self) -> Result<Vec<J<'a>>, ImportError> {
        Ok(self
            .array()?
            .iter()
            .enumerate()
            .map(|(i, v)| J {
                v,
                path: format!("{}[{i}]", self.path),
            })
            .collect())
    }

    fn str(&self) -> Result<&'a str, ImportError> {
        self.v
            .as_str()
            .ok_or_else(|| self.err(format!("expected a string, found {}", kind(self.v))))
    }

    /// An integer written as a JSON integer or as a string (XGBoost writes
    /// its parameters as strings).
    fn int(&self) -> Result<i64, ImportError> {
        let parsed = match self.v {
            Value::Number(n) => n.as_i64(),
            Value::String(s) => s.trim().parse().ok(),
            _ => None,
        };
        parsed.ok_or_else(|| self.err(format!("expected an integer, found {}", self.v)))
    }

    /// An integer in `min..=max`.
    fn count(&self, min: i64, max: i64) -> Result<usize, ImportError> {
        count_in(self.int()?, min, max).map_err(|m| self.err(m))
    }

    /// The elements of an array of integers.
    fn ints(&self) -> Result<Vec<i64>, ImportError> {
        self.elements(|v| v.as_i64(), "an integer")
    }

    /// The elements of an array of numbers.
    fn numbers(&self) -> Result<Vec<f64>, ImportError> {
        self.elements(|v| v.as_f64(), "a number")
    }

    /// The elements of an array of flags (booleans, or 0 and 1).
    fn flags(&self) -> Result<Vec<bool>, ImportError> {
        self.elements(
            |v| match v {
                Value::Bool(b) => Some(*b),
                Value::Number(n) => match n.as_u64() {
                    Some(0) => Some(false),
                    Some(1) => Some(true),
                    _ => None,
                },
                _ => None,
            },
            "0, 1 or a boolean",
        )
    }

    fn elements<T>(
        &self,
        read: impl Fn(&Value) -> Option<T>,
        what: &str,
    ) -> Result<Vec<T>, ImportError> {
        self.array()?
            .iter()
            .enumerate()
            .map(|(i, v)| {
                read(v).ok_or_else(|| {
                    err_at(
                        &format!("{}[{i}]", self.path),
                        format!("expected {what}, found {v}"),
                    )
                })
            })
            .collect()
    }
}

/// How `base_score` becomes a margin.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Base {
    /// `logit(base_score)`.
    Logit,
    /// `base_score` as is.
    Margin,
}

/// What an objective makes of the raw score.
#[derive(Clone, Copy, Debug)]
struct Objective {
    link: Link,
    n_classes: u32,
    base: Base,
}

/// Regression objectives whose prediction is the raw score.
const REGRESSION: [&str; 6] = [
    "reg:squarederror",
    "reg:linear",
    "reg:squaredlogerror",
    "reg:absoluteerror",
    "reg:pseudohubererror",
    "reg:quantileerror",
];

/// Maps an objective name; `at` is its JSON value (for errors).
fn objective(at: &J<'_>, name: &str, num_class: usize) -> Result<Objective, ImportError> {
    let refuse = |why: &str| at.err(format!("objective `{name}` is not supported: {why}"));
    let single = |link, n_classes, base| {
        if num_class > 1 {
            return Err(at.err(format!(
                "objective `{name}` has one output but learner_model_param.num_class is {num_class}"
            )));
        }
        Ok(Objective {
            link,
            n_classes,
            base,
        })
    };
    match name {
        "binary:logistic" => single(Link::Sigmoid, 2, Base::Logit),
        // The prediction is the margin itself; the sigmoid of it would be
        // the probability of class 1.
        "binary:logitraw" => single(Link::Identity, 0, Base::Margin),
        n if REGRESSION.contains(&n) => single(Link::Identity, 0, Base::Margin),
        "multi:softprob" | "multi:softmax" => {
            if num_class < 2 {
                return Err(at.err(format!(
                    "objective `{name}` needs learner_model_param.num_class >= 2, found {num_class}"
                )));
            }
            let n_classes = u32::try_from(num_class).map_err(|_| refuse("too many classes"))?;
            Ok(Objective {
                link: Link::Softmax,
                n_classes,
                base: Base::Margin,
            })
        }
        "reg:logistic" => Err(refuse(
            "it is a regression through a logistic link, which the IR expresses only for binary classification (binary:logistic builds the same trees)",
        )),
        "binary:hinge" => Err(refuse(
            "it predicts 0 or 1 from the sign of the raw score, which no IR link expresses",
        )),
        "count:poisson" | "reg:gamma" | "reg:tweedie" => Err(refuse(
            "its prediction is exp(raw score), and the IR has no exponential link",
        )),
        n if n.starts_with("survival:") => Err(refuse("survival models are not supported")),
        n if n.starts_with("rank:") => Err(refuse("ranking models are not supported")),
        _ => Err(at.err(format!("unknown objective `{name}`"))),
    }
}

/// The `learner` object of the document.
fn find_learner<'a>(root: &J<'a>) -> Result<J<'a>, ImportError> {
    root.object().map_err(|_| {
        root.err(format!(
            "expected an XGBoost model (a JSON object), found {}",
            kind(root.v)
        ))
    })?;
    root.opt("learner")?.ok_or_else(|| {
        err_at(
            "learner",
            "missing: this JSON is not an XGBoost model (no `learner` object)",
        )
    })
}

/// `(num_feature, num_class)` of `learner_model_param`, refusing
/// multi-target models.
fn model_params(params: &J<'_>) -> Result<(usize, usize), ImportError> {
    let n_features = params.get("num_feature")?.count(1, MAX_FEATURES)?;
    let num_class = params.get("num_class")?.count(0, i64::from(u32::MAX))?;
    if let Some(t) = params.opt("num_target")? {
        let targets = t.count(1, i64::from(u32::MAX))?;
        if targets > 1 {
            return Err(t.err(format!(
                "the model has {targets} targets (multi-output or several quantiles); only single-target models are supported"
            )));
        }
    }
    Ok((n_features, num_class))
}

/// The learner facts the trees need.
struct Meta {
    n_features: usize,
    n_outputs: usize,
    feature_names: Vec<String>,
}

/// Reads an XGBoost JSON model.
pub(super) fn parse(json: &str) -> Result<Imported, ImportError> {
    let doc: Value = serde_json::from_str(json).map_err(|e| {
        err_at(
            "",
            format!(
                "the text is not JSON ({e}); expected an XGBoost model saved as JSON (save_model(\"model.json\"))"
            ),
        )
    })?;
    let root = J {
        v: &doc,
        path: String::new(),
    };
    let learner = find_learner(&root)?;
    let params = learner.get("learner_model_param")?;
    let (n_features, num_class) = model_params(&params)?;
    let name_at = learner.get("objective")?.get("name")?;
    let name = name_at.str()?;
    let obj = objective(&name_at, name, num_class)?;
    let n_outputs = num_class.max(1);
    let booster = learner.get("gradient_booster")?;
    let (model, weights) = booster_model(&booster)?;
    let m = Meta {
        n_features,
        n_outputs,
        feature_names: feature_names(&learner, n_features)?,
    };
    let trees = trees(&model, weights.as_ref(), &m)?;
    // Every output has trees (XGBoost grows one per class and round); this
    // also bounds what the base scores allocate.
    if n_outputs > trees.len() {
        return Err(params.get("num_class")?.err(format!(
            "{n_outputs} classes but the model has only {} trees",
            trees.len()
        )));
    }
    let base_score = base_scores(&params.get("base_score")?, obj.base, n_outputs)?;
    let ensemble = TreeEnsemble {
        n_features: u32::try_from(n_features).map_err(|_| params.err("too many features"))?,
        n_outputs: u32::try_from(n_outputs).map_err(|_| params.err("too many outputs"))?,
        n_classes: obj.n_classes,
        combine: Combine::Sum,
        link: obj.link,
        base_score: base_score.into(),
        trees: trees.into(),
    };
    validate(&ensemble).map_err(|(t, message)| match t {
        Some(t) => err_at(&format!("{}.trees[{t}]", model.path), message),
        None => model.err(message),
    })?;
    Ok(Imported {
        ensemble,
        feature_names: m.feature_names,
        objective: name.to_string(),
    })
}

/// DART's per-tree weights (`weight_drop`) and their path.
struct Weights {
    values: Vec<f32>,
    path: String,
}

/// The booster's tree model and, for DART, the per-tree weights.
fn booster_model<'a>(booster: &J<'a>) -> Result<(J<'a>, Option<Weights>), ImportError> {
    let name_at = booster.get("name")?;
    match name_at.str()? {
        "gbtree" => Ok((booster.get("model")?, None)),
        "dart" => {
            let model = booster.get("gbtree")?.get("model")?;
            let w = booster.get("weight_drop")?;
            let weights = w
                .numbers()?
                .into_iter()
                .enumerate()
                .map(|(i, x)| {
                    let f = x as f32;
                    if f.is_finite() {
                        Ok(f)
                    } else {
                        Err(err_at(&format!("{}[{i}]", w.path), format!("weight {x} is not a finite 32-bit float")))
                    }
                })
                .collect::<Result<Vec<_>, _>>()?;
            Ok((
                model,
                Some(Weights {
                    values: weights,
                    path: w.path,
                }),
            ))
        }
        "gblinear" => Err(name_at.err(
            "booster `gblinear` is a linear model, not a tree ensemble; only gbtree and dart are supported",
        )),
        other => Err(name_at.err(format!(
            "unknown booster `{other}`; only gbtree and dart are supported"
        ))),
    }
}

/// The most features a model saved without feature names may declare (the
/// names `f0`, `f1`, ... are made up front, and nothing in the file bounds
/// them).
const MAX_UNNAMED_FEATURES: usize = 1 << 24;

/// `learner.feature_names`, or XGBoost's defaults `f0`, `f1`, ... when the
/// model has none.
fn feature_names(learner: &J<'_>, n_features: usize) -> Result<Vec<String>, ImportError> {
    let names = match learner.opt("feature_names")? {
        Some(j) => j
            .items()?
            .iter()
            .map(|n| n.str().map(String::from))
            .collect::<Result<Vec<_>, _>>()?,
        None => Vec::new(),
    };
    if names.is_empty() {
        if n_features > MAX_UNNAMED_FEATURES {
            return Err(err_at(
                "learner.learner_model_param.num_feature",
                format!(
                    "{n_features} features without names; models without feature names may have at most {MAX_UNNAMED_FEATURES}"
                ),
            ));
        }
        return Ok((0..n_features).map(|i| format!("f{i}")).collect());
    }
    if names.len() != n_features {
        return Err(err_at(
            &learner.child_path("feature_names"),
            format!(
                "{} names for learner_model_param.num_feature = {n_features} features",
                names.len()
            ),
        ));
    }
    Ok(names)
}

/// `base_score` as margins, one per output. It is a string holding a number
/// (`"5E-1"`, XGBoost 1.x and 2.x) or a list (`"[5E-1]"`, `"[a,b,c]"`,
/// XGBoost 3.x), or a plain JSON number.
fn base_scores(j: &J<'_>, base: Base, n_outputs: usize) -> Result<Vec<f32>, ImportError> {
    let values: Vec<f32> = match j.v {
        Value::Number(n) => n.as_f64().map(|x| vec![x as f32]).unwrap_or_default(),
        Value::String(s) => {
            let s = s.trim();
            let inner = s
                .strip_prefix('[')
                .and_then(|t| t.strip_suffix(']'))
                .unwrap_or(s);
            inner
                .split(',')
                .map(|x| x.trim().parse::<f32>())
                .collect::<Result<_, _>>()
                .map_err(|_| j.err(format!("`{s}` is not a number or a list of numbers")))?
        }
        other => return Err(j.err(format!("expected a string, found {}", kind(other)))),
    };
    if let Some(x) = values.iter().find(|x| !x.is_finite()) {
        return Err(j.err(format!("{x} is not a finite 32-bit float")));
    }
    let values = match values.len() {
        1 => vec![values[0]; n_outputs],
        n if n == n_outputs => values,
        n => {
            return Err(j.err(format!("{n} values for a model of {n_outputs} outputs")));
        }
    };
    match base {
        Base::Margin => Ok(values),
        Base::Logit => values
            .iter()
            .map(|&p| {
                logit(p).ok_or_else(|| {
                    j.err(format!(
                "{p} is not a probability strictly between 0 and 1, as binary:logistic needs"
            ))
                })
            })
            .collect(),
    }
}

/// `ln(p / (1 - p))` for `0 < p < 1`.
fn logit(p: f32) -> Option<f32> {
    let p = f64::from(p);
    (p > 0.0 && p < 1.0).then(|| (p / (1.0 - p)).ln() as f32)
}

/// Converts every tree of the model.
fn trees(model: &J<'_>, weights: Option<&Weights>, m: &Meta) -> Result<Vec<Tree>, ImportError> {
    let trees_at = model.get("trees")?;
    let trees = trees_at.items()?;
    let info_at = model.get("tree_info")?;
    let info = info_at.ints()?;
    if info.len() != trees.len() {
        return Err(info_at.err(format!(
            "has {} entries but there are {} trees",
            info.len(),
            trees.len()
        )));
    }
    if let Some(w) = weights
        && w.values.len() != trees.len()
    {
        return Err(err_at(
            &w.path,
            format!(
                "has {} weights but there are {} trees",
                w.values.len(),
                trees.len()
            ),
        ));
    }
    if let Some(p) = model.opt("gbtree_model_param")?
        && let Some(n) = p.opt("num_trees")?
    {
        let n = n.count(0, i64::MAX)?;
        if n != trees.len() {
            return Err(p.err(format!(
                "num_trees is {n} but there are {} trees",
                trees.len()
            )));
        }
    }
    if trees.is_empty() {
        return Err(trees_at.err("the model has no trees"));
    }
    trees
        .iter()
        .enumerate()
        .map(|(t, tree_at)| {
            let group = usize::try_from(info[t])
                .ok()
                .filter(|&g| g < m.n_outputs)
                .ok_or_else(|| {
                    err_at(
                        &format!("{}[{t}]", info_at.path),
                        format!(
                            "output {} is out of range ({} outputs)",
                            info[t], m.n_outputs
                        ),
                    )
                })?;
            let output = if m.n_outputs > 1 {
                u32::try_from(group).map_err(|_| info_at.err("output out of range"))?
            } else {
                Tree::ALL_OUTPUTS
            };
            let weight = weights.map_or(1.0, |w| w.values[t]);
            tree(tree_at, output, weight, m)
        })
        .collect()
}

/// The per-node arrays of one tree.
struct Arrays<'a> {
    at: &'a J<'a>,
    left: Vec<i64>,
    right: Vec<i64>,
    feature: Vec<i64>,
    condition: Vec<f64>,
    default_left: Vec<bool>,
    split_type: Option<Vec<i64>>,
}

impl<'a> Arrays<'a> {
    fn read(t: &'a J<'a>) -> Result<Self, ImportError> {
        let left = t.get("left_children")?.ints()?;
        let n = left.len();
        let same_length = |key: &str, len: usize| {
            if len == n {
                Ok(())
            } else {
                Err(err_at(
                    &t.child_path(key),
                    format!("has {len} entries but `left_children` has {n}"),
                ))
            }
        };
        let right = t.get("right_children")?.ints()?;
        same_length("right_children", right.len())?;
        let feature = t.get("split_indices")?.ints()?;
        same_length("split_indices", feature.len())?;
        let condition = t.get("split_conditions")?.numbers()?;
        same_length("split_conditions", condition.len())?;
        let default_left = t.get("default_left")?.flags()?;
        same_length("default_left", default_left.len())?;
        let split_type = match t.opt("split_type")? {
            Some(s) => {
                let s = s.ints()?;
                same_length("split_type", s.len())?;
                Some(s)
            }
            None => None,
        };
        Ok(Arrays {
            at: t,
            left,
            right,
            feature,
            condition,
            default_left,
            split_type,
        })
    }

    fn path(&self, key: &str, i: usize) -> String {
        format!("{}[{i}]", self.at.child_path(key))
    }
}

/// The `tree_param` facts: (number of nodes, deleted nodes).
fn tree_param(t: &J<'_>) -> Result<(Option<usize>, usize), ImportError> {
    let Some(p) = t.opt("tree_param")? else {
        return Ok((None, 0));
    };
    if let Some(s) = p.opt("size_leaf_vector")? {
        let size = s.count(0, i64::MAX)?;
        if size > 1 {
            return Err(s.err(format!(
                "leaves hold {size} values (a multi-target tree); only single-target trees are supported"
            )));
        }
    }
    let nodes = match p.opt("num_nodes")? {
        Some(n) => Some(n.count(0, i64::MAX)?),
        None => None,
    };
    let deleted = match p.opt("num_deleted")? {
        Some(n) => n.count(0, i64::MAX)?,
        None => 0,
    };
    Ok((nodes, deleted))
}

/// Converts one tree; its leaf values are multiplied by `weight`.
fn tree(t: &J<'_>, output: u32, weight: f32, m: &Meta) -> Result<Tree, ImportError> {
    let (num_nodes, deleted) = tree_param(t)?;
    let a = Arrays::read(t)?;
    let n = a.left.len();
    if let Some(num) = num_nodes
        && num != n
    {
        return Err(err_at(
            &format!("{}.num_nodes", t.child_path("tree_param")),
            format!("is {num} but `left_children` has {n} entries"),
        ));
    }
    if n == 0 {
        return Err(t.err("the tree has no nodes"));
    }
    let src = (0..n)
        .map(|i| node(&a, i, weight, m))
        .collect::<Result<Vec<_>, _>>()?;
    let built = build_tree(&src, output).map_err(|s| shape_error(s, &a))?;
    finish(built, &a, deleted)
}

/// Checks that the nodes not reached are the deleted ones.
fn finish(built: Built, a: &Arrays<'_>, deleted: usize) -> Result<Tree, ImportError> {
    if let Some(u) = built.unreached
        && built.reached + deleted != a.left.len()
    {
        return Err(a.at.err(format!(
            "node {u} is not reached from the root ({} of {} nodes are, {deleted} deleted)",
            built.reached,
            a.left.len()
        )));
    }
    Ok(built.tree)
}

fn shape_error(shape: Shape, a: &Arrays<'_>) -> ImportError {
    let key = |side| {
        if side == Side::Left {
            "left_children"
        } else {
            "right_children"
        }
    };
    match shape {
        Shape::Revisited { node, side, child } => err_at(
            &a.path(key(side), node),
            format!(
                "leads to node {child}, which is already reached from the root: the nodes do not form a tree (a cycle or a shared child)"
            ),
        ),
        Shape::OutOfRange { node, side, child } => err_at(
            &a.path(key(side), node),
            format!("node {child} is out of range"),
        ),
        Shape::Empty => a.at.err("the tree has no nodes"),
        Shape::TooLarge => a.at.err("the tree has too many nodes"),
    }
}

/// Converts node `i`.
fn node(a: &Arrays<'_>, i: usize, weight: f32, m: &Meta) -> Result<SrcNode, ImportError> {
    let (l, r) = (a.left[i], a.right[i]);
    let n = a.left.len();
    let c = a.condition[i];
    let f = c as f32;
    if !f.is_finite() {
        return Err(err_at(
            &a.path("split_conditions", i),
            format!("{c} is not a finite 32-bit float"),
        ));
    }
    if l == -1 && r == -1 {
        let v = f * weight;
        if !v.is_finite() {
            return Err(err_at(
                &a.path("split_conditions", i),
                format!("leaf value {c} times weight {weight} is not finite"),
            ));
        }
        return Ok(SrcNode::Leaf(v));
    }
    let child = |key: &str, c: i64| {
        usize::try_from(c).ok().filter(|&c| c < n).ok_or_else(|| {
            err_at(
                &a.path(key, i),
                format!("child {c} is out of range: the tree has {n} nodes, and -1 marks a leaf only when both children are -1"),
            )
        })
    };
    let left = child("left_children", l)?;
    let right = child("right_children", r)?;
    let feature = usize::try_from(a.feature[i])
        .ok()
        .filter(|&f| f < m.n_features)
        .ok_or_else(|| {
            err_at(
                &a.path("split_indices", i),
                format!(
                    "feature {} is out of range: the model has {} features",
                    a.feature[i], m.n_features
                ),
            )
        })?;
    if let Some(types) = &a.split_type
        && types[i] != 0
    {
        return Err(err_at(
            &a.path("split_type", i),
            format!(
                "node {i} splits on feature `{}` as categorical (split_type {}); categorical splits are not supported",
                m.feature_names[feature], types[i]
            ),
        ));
    }
    Ok(SrcNode::Split {
        feature: u32::try_from(feature)
            .map_err(|_| err_at(&a.path("split_indices", i), "feature index too large"))?,
        // x < c  <=>  x <= the f32 just below c.
        threshold: f.next_down(),
        missing_left: a.default_left[i],
        left,
        right,
    })
}
