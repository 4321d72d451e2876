//! LightGBM's text model format (`Booster.save_model`, format v2 to v4).
//!
//! The file is a header of `key=value` lines after a first line `tree`, then
//! one `Tree=i` block per tree, then `end of trees` and sections this reader
//! ignores (feature importances, parameters). In a tree of `num_leaves = n`
//! leaves the split arrays (`split_feature`, `threshold`, `decision_type`,
//! `left_child`, `right_child`) have `n - 1` entries and `leaf_value` has
//! `n`; a child `c >= 0` is split `c`, a child `c < 0` is leaf `!c`.
//!
//! `decision_type` packs: bit 0 categorical, bit 1 default left, bits 2-3 the
//! missing type (0 None: NaN reads as 0.0; 1 Zero: NaN and zero go to the
//! default side; 2 NaN: NaN goes to the default side).

use std::collections::HashMap;

use tessera_core::ir::{Combine, Link, Tree, TreeEnsemble};

use super::{
    Built, ImportError, Imported, MAX_FEATURES, Shape, Side, SrcNode, build_tree, count_in,
    f32_at_or_below, validate,
};

/// LightGBM reads every input with `|x| <= 1e-35` (this value, a float) as
/// zero, and with missing type Zero sends it to the default side.
const ZERO_BAND: f64 = 1e-35f32 as f64;

/// Model format versions this reader knows.
const VERSIONS: [&str; 3] = ["v2", "v3", "v4"];

/// Bare (`key` without `=value`) lines LightGBM writes in the header.
const HEADER_FLAGS: [&str; 1] = ["average_output"];

/// Regression objectives whose prediction is the raw score.
const REGRESSION: [&str; 6] = [
    "regression",
    "regression_l1",
    "huber",
    "fair",
    "quantile",
    "mape",
];

/// Upper bound on counts read from the file (leaves, classes, trees per
/// iteration); the arrays that must match them bound them further.
const MAX_COUNT: i64 = u32::MAX as i64 / 2;

fn err(line: usize, message: impl Into<String>) -> ImportError {
    ImportError::LightGbm {
        line,
        message: message.into(),
    }
}

/// Shortens text quoted in an error message.
fn quote(s: &str) -> String {
    const MAX: usize = 40;
    match s.char_indices().nth(MAX) {
        Some((end, _)) => format!("`{}...`", &s[..end]),
        None => format!("`{s}`"),
    }
}

/// One `key=value` line (`value` is empty for a bare flag).
#[derive(Clone, Copy, Debug)]
struct Field<'a> {
    line: usize,
    key: &'a str,
    value: &'a str,
}

/// The header or one `Tree=i` block.
#[derive(Debug)]
struct Block<'a> {
    /// The line that opens the block (`tree` or `Tree=i`).
    line: usize,
    fields: HashMap<&'a str, Field<'a>>,
}

impl<'a> Block<'a> {
    fn new(line: usize) -> Self {
        Block {
            line,
            fields: HashMap::new(),
        }
    }

    fn get(&self, key: &str) -> Option<Field<'a>> {
        self.fields.get(key).copied()
    }

    /// The field `key`, or an error naming `what` the block is.
    fn require(&self, key: &str, what: &str) -> Result<Field<'a>, ImportError> {
        self.get(key)
            .ok_or_else(|| err(self.line, format!("{what} has no `{key}` line")))
    }

    fn push(&mut self, field: Field<'a>) -> Result<(), ImportError> {
        if let Some(first) = self.get(field.key) {
            return Err(err(
                field.line,
                format!(
                    "`{}` appears a second time (first on line {})",
                    field.key, first.line
                ),
            ));
        }
        self.fields.insert(field.key, field);
        Ok(())
    }
}

/// The file cut into its header and tree blocks.
struct Sections<'a> {
    header: Block<'a>,
    trees: Vec<Block<'a>>,
}

/// Splits the text into header and tree blocks, up to `end of trees`.
fn sections(text: &str) -> Result<Sections<'_>, ImportError> {
    let mut lines = text
        .lines()
        .enumerate()
        .map(|(i, l)| (i + 1, l.trim()))
        .filter(|(_, l)| !l.is_empty())
        .peekable();
    let first = first_line(lines.next())?;
    let mut header = Block::new(first);
    let mut trees: Vec<Block<'_>> = Vec::new();
    let mut last = first;
    while let Some((no, line)) = lines.next() {
        last = no;
        let at_end = lines.peek().is_none();
        if line == "end of trees" {
            return Ok(Sections { header, trees });
        }
        if let Some(index) = line.strip_prefix("Tree=") {
            tree_start(no, line, index, trees.len(), at_end)?;
            trees.push(Block::new(no));
            continue;
        }
        let f = field(no, line, trees.len().checked_sub(1), at_end)?;
        trees.last_mut().unwrap_or(&mut header).push(f)?;
    }
    Err(err(
        last + 1,
        "the model ends before `end of trees` (the file is truncated)",
    ))
}

/// Checks the first non-empty line, `tree`, and returns its number.
fn first_line(first: Option<(usize, &str)>) -> Result<usize, ImportError> {
    let Some((no, head)) = first else {
        return Err(err(1, "the file is empty, not a LightGBM text model"));
    };
    if head == "tree" {
        return Ok(no);
    }
    let hint = if head.starts_with('{') {
        "this looks like JSON; expected LightGBM's text format (save_model), whose first line is `tree`"
    } else {
        "expected `tree`, the first line of a LightGBM text model (save_model)"
    };
    Err(err(no, format!("found {}: {hint}", quote(head))))
}

/// The error for a last line cut short.
fn truncated(no: usize, line: &str) -> ImportError {
    err(
        no,
        format!(
            "the model ends in the middle of a line, {} (the file is truncated)",
            quote(line)
        ),
    )
}

/// Checks that a `Tree=i` line opens tree `expected`.
fn tree_start(
    no: usize,
    line: &str,
    index: &str,
    expected: usize,
    at_end: bool,
) -> Result<(), ImportError> {
    if index.parse::<usize>().ok() == Some(expected) {
        Ok(())
    } else if at_end {
        Err(truncated(no, line))
    } else {
        Err(err(
            no,
            format!("expected `Tree={expected}`, found {}", quote(line)),
        ))
    }
}

/// Reads a `key=value` line (or a bare header flag) of the header (`tree`
/// is `None`) or of a tree.
fn field<'a>(
    no: usize,
    line: &'a str,
    tree: Option<usize>,
    at_end: bool,
) -> Result<Field<'a>, ImportError> {
    if let Some((key, value)) = line.split_once('=') {
        return Ok(Field {
            line: no,
            key: key.trim(),
            value: value.trim(),
        });
    }
    if tree.is_none() && HEADER_FLAGS.contains(&line) {
        return Ok(Field {
            line: no,
            key: line,
            value: "",
        });
    }
    if at_end {
        return Err(truncated(no, line));
    }
    let within = tree.map_or_else(|| "the header".to_string(), |t| format!("tree {t}"));
    Err(err(
        no,
        format!("unexpected line {} in {within}", quote(line)),
    ))
}

/// An integer field in `min..=max`.
fn count(f: Field<'_>, min: i64, max: i64) -> Result<usize, ImportError> {
    let v: i64 = f.value.parse().map_err(|_| {
        err(
            f.line,
            format!("`{}` is {}, not an integer in range", f.key, quote(f.value)),
        )
    })?;
    count_in(v, min, max).map_err(|m| err(f.line, format!("`{}` = {m}", f.key)))
}

/// The whitespace-separated entries of an array field.
fn entries<T: std::str::FromStr>(f: Field<'_>, kind: &str) -> Result<Vec<T>, ImportError> {
    f.value
        .split_whitespace()
        .enumerate()
        .map(|(i, s)| {
            s.parse().map_err(|_| {
                err(
                    f.line,
                    format!("`{}` entry {i} is {}, not {kind}", f.key, quote(s)),
                )
            })
        })
        .collect()
}

/// An array field with the line it came from.
struct Column<'a, T> {
    field: Field<'a>,
    values: Vec<T>,
}

/// An array field of exactly `len` entries, `len` being the tree's number of
/// `unit` (splits or leaves).
fn array<'a, T: std::str::FromStr>(
    b: &Block<'a>,
    key: &str,
    kind: &str,
    len: usize,
    unit: &str,
    tree: usize,
) -> Result<Column<'a, T>, ImportError> {
    let field = b.require(key, &format!("tree {tree}"))?;
    let values: Vec<T> = entries(field, kind)?;
    if values.len() != len {
        return Err(err(
            field.line,
            format!(
                "`{key}` has {} values but tree {tree} has {len} {unit}",
                values.len()
            ),
        ));
    }
    Ok(Column { field, values })
}

/// What the objective makes of the trees' raw score.
#[derive(Debug)]
struct Objective {
    name: String,
    link: Link,
    n_classes: u32,
    n_outputs: usize,
}

/// The header facts the trees need.
#[derive(Debug)]
struct Meta {
    n_features: usize,
    feature_names: Vec<String>,
    objective: Objective,
    per_iteration: usize,
    average: bool,
}

fn meta(h: &Block<'_>) -> Result<Meta, ImportError> {
    if let Some(v) = h.get("version")
        && !VERSIONS.contains(&v.value)
    {
        return Err(err(
            v.line,
            format!(
                "model format version {} is not supported (known: {})",
                quote(v.value),
                VERSIONS.join(", ")
            ),
        ));
    }
    let num_class = count(h.require("num_class", "the header")?, 1, MAX_COUNT)?;
    let per_iteration = count(
        h.require("num_tree_per_iteration", "the header")?,
        1,
        MAX_COUNT,
    )?;
    let max_feature = count(
        h.require("max_feature_idx", "the header")?,
        0,
        MAX_FEATURES - 1,
    )?;
    let n_features = max_feature + 1;
    let objective = match h.get("objective") {
        Some(f) => objective(f, num_class, per_iteration)?,
        None => {
            return Err(err(
                h.line,
                "the header has no `objective` line: the model was trained with a custom objective, whose link is unknown",
            ));
        }
    };
    let names = h.require("feature_names", "the header")?;
    let feature_names: Vec<String> = names.value.split_whitespace().map(String::from).collect();
    if feature_names.len() != n_features {
        return Err(err(
            names.line,
            format!(
                "`feature_names` has {} names but `max_feature_idx` = {max_feature} means {n_features} features",
                feature_names.len()
            ),
        ));
    }
    Ok(Meta {
        n_features,
        feature_names,
        objective,
        per_iteration,
        average: h.get("average_output").is_some(),
    })
}

/// Maps the `objective` line, checking it against `num_class` and
/// `num_tree_per_iteration`.
fn objective(
    f: Field<'_>,
    num_class: usize,
    per_iteration: usize,
) -> Result<Objective, ImportError> {
    let mut tokens = f.value.split_whitespace();
    let Some(name) = tokens.next() else {
        return Err(err(f.line, "`objective` is empty"));
    };
    if let Some(why) = refused(name) {
        return Err(err(
            f.line,
            format!("objective `{name}` is not supported: {why}"),
        ));
    }
    let (link, n_classes) = match name {
        "binary" => (Link::Sigmoid, 2),
        "multiclass" => (
            Link::Softmax,
            u32::try_from(num_class).map_err(|_| err(f.line, "too many classes"))?,
        ),
        n if REGRESSION.contains(&n) => (Link::Identity, 0),
        _ => return Err(err(f.line, format!("unknown objective {}", quote(name)))),
    };
    for o in tokens {
        option(name, o, num_class).map_err(|m| err(f.line, m))?;
    }
    let n_outputs = if link == Link::Softmax { num_class } else { 1 };
    check_counts(name, link, num_class, per_iteration).map_err(|m| err(f.line, m))?;
    Ok(Objective {
        name: name.to_string(),
        link,
        n_classes,
        n_outputs,
    })
}

/// Why a known objective cannot be imported, if it cannot.
fn refused(name: &str) -> Option<&'static str> {
    Some(match name {
        "multiclassova" => {
            "it predicts one sigmoid per class (one-vs-all), which the IR's softmax link does not reproduce"
        }
        "poisson" | "gamma" | "tweedie" => {
            "its prediction is exp(raw score), and the IR has no exponential link"
        }
        "cross_entropy" => {
            "it is a regression through a sigmoid; the IR has a sigmoid link for binary classification only"
        }
        "cross_entropy_lambda" => {
            "its prediction is log(1 + exp(raw score)), which the IR cannot express"
        }
        "lambdarank" | "rank_xendcg" => "ranking models are not supported",
        "custom" => "a custom objective's link is unknown",
        _ => return None,
    })
}

/// Checks one option written after an accepted objective's name.
fn option(name: &str, option: &str, num_class: usize) -> Result<(), String> {
    match (name, option.split_once(':')) {
        ("binary", Some(("sigmoid", s))) if s.parse::<f64>().ok() == Some(1.0) => Ok(()),
        ("binary", Some(("sigmoid", s))) => Err(format!(
            "objective `binary` is not supported with `sigmoid:{s}`, which scales the score inside the logistic function; only sigmoid:1 (the default) maps onto the IR's sigmoid link"
        )),
        ("multiclass", Some(("num_class", k))) if k.parse::<usize>().ok() == Some(num_class) => {
            Ok(())
        }
        ("multiclass", Some(("num_class", k))) => Err(format!(
            "the objective says `num_class:{k}` but the header says num_class={num_class}"
        )),
        (n, None) if option == "sqrt" && REGRESSION.contains(&n) => Err(format!(
            "objective `{n}` is not supported with `sqrt` (reg_sqrt): the prediction is the square of the raw score, which the IR cannot express"
        )),
        _ => Err(format!(
            "objective `{name}` has an unknown option {}",
            quote(option)
        )),
    }
}

/// Checks `num_class` and `num_tree_per_iteration` against the objective.
fn check_counts(
    name: &str,
    link: Link,
    num_class: usize,
    per_iteration: usize,
) -> Result<(), String> {
    let multiclass = link == Link::Softmax;
    if multiclass && num_class < 2 {
        return Err(format!(
            "a multiclass model needs num_class >= 2, the header says {num_class}"
        ));
    }
    if !multiclass && num_class != 1 {
        return Err(format!(
            "objective `{name}` has one output but the header says num_class={num_class}"
        ));
    }
    let trees_per_iteration = if multiclass { num_class } else { 1 };
    if per_iteration != trees_per_iteration {
        return Err(format!(
            "objective `{name}` needs {trees_per_iteration} trees per iteration but the header says num_tree_per_iteration={per_iteration}"
        ));
    }
    Ok(())
}

/// Reads a LightGBM text model.
pub(super) fn parse(text: &str) -> Result<Imported, ImportError> {
    let s = sections(text)?;
    let m = meta(&s.header)?;
    if s.trees.is_empty() || s.trees.len() % m.per_iteration != 0 {
        return Err(err(
            s.header.line,
            format!(
                "the model has {} trees, not a positive multiple of num_tree_per_iteration={}",
                s.trees.len(),
                m.per_iteration
            ),
        ));
    }
    let iterations = s.trees.len() / m.per_iteration;
    // Random-forest mode averages each output over the iterations. A single
    // output maps onto Combine::Mean; with several outputs (each averaged
    // over its own trees) the leaves are divided up front and summed.
    let (combine, divisor) = match (m.average, m.objective.n_outputs) {
        (false, _) => (Combine::Sum, 1.0),
        (true, 1) => (Combine::Mean, 1.0),
        (true, _) => (Combine::Sum, iterations as f64),
    };
    let mut trees = Vec::with_capacity(s.trees.len());
    for (i, b) in s.trees.iter().enumerate() {
        let output = if m.objective.n_outputs > 1 {
            u32::try_from(i % m.per_iteration).map_err(|_| err(b.line, "too many outputs"))?
        } else {
            Tree::ALL_OUTPUTS
        };
        trees.push(tree(b, i, &m, output, divisor)?);
    }
    let ensemble = TreeEnsemble {
        n_features: u32::try_from(m.n_features)
            .map_err(|_| err(s.header.line, "too many features"))?,
        n_outputs: u32::try_from(m.objective.n_outputs)
            .map_err(|_| err(s.header.line, "too many outputs"))?,
        n_classes: m.objective.n_classes,
        combine,
        link: m.objective.link,
        base_score: vec![0.0; m.objective.n_outputs].into(),
        trees: trees.into(),
    };
    validate(&ensemble).map_err(|(t, message)| match t {
        Some(t) => err(s.trees[t].line, format!("tree {t}: {message}")),
        None => err(s.header.line, message),
    })?;
    Ok(Imported {
        ensemble,
        feature_names: m.feature_names,
        objective: m.objective.name,
    })
}

/// The parsed split arrays of one tree.
struct Splits<'a> {
    feature: Column<'a, i64>,
    threshold: Column<'a, f64>,
    decision: Column<'a, i64>,
    left: Column<'a, i64>,
    right: Column<'a, i64>,
}

fn splits<'a>(b: &Block<'a>, n: usize, tree: usize) -> Result<Splits<'a>, ImportError> {
    let unit = "splits";
    Ok(Splits {
        feature: array(b, "split_feature", "an integer", n, unit, tree)?,
        threshold: array(b, "threshold", "a number", n, unit, tree)?,
        decision: array(b, "decision_type", "an integer", n, unit, tree)?,
        left: array(b, "left_child", "an integer", n, unit, tree)?,
        right: array(b, "right_child", "an integer", n, unit, tree)?,
    })
}

/// Converts one `Tree=i` block; leaf values are divided by `divisor`.
fn tree(
    b: &Block<'_>,
    index: usize,
    m: &Meta,
    output: u32,
    divisor: f64,
) -> Result<Tree, ImportError> {
    let what = format!("tree {index}");
    let n_leaves = count(b.require("num_leaves", &what)?, 1, MAX_COUNT)?;
    if let Some(f) = b.get("is_linear")
        && f.value != "0"
    {
        return Err(err(
            f.line,
            format!(
                "tree {index} is a linear tree (`is_linear={}`, trained with linear_tree=true); linear leaves are not supported",
                f.value
            ),
        ));
    }
    let n_splits = n_leaves - 1;
    let leaves = array::<f64>(b, "leaf_value", "a number", n_leaves, "leaves", index)?;
    let mut src = Vec::with_capacity(n_splits + n_leaves);
    if n_splits > 0 {
        let s = splits(b, n_splits, index)?;
        for node in 0..n_splits {
            src.push(split(&s, node, n_leaves, index, m)?);
        }
    }
    if let Some(f) = b.get("num_cat")
        && f.value != "0"
    {
        return Err(err(
            f.line,
            format!(
                "tree {index} has categorical splits (`num_cat={}`), which are not supported",
                f.value
            ),
        ));
    }
    for (i, v) in leaves.values.iter().enumerate() {
        src.push(SrcNode::Leaf(leaf(*v / divisor).ok_or_else(|| {
            err(
                leaves.field.line,
                format!("`leaf_value` entry {i} ({v}) is not a finite 32-bit float"),
            )
        })?));
    }
    let built = build_tree(&src, output).map_err(|shape| shape_error(shape, b, index, n_splits))?;
    finish(built, b, index, n_splits)
}

/// A leaf value as `f32`, when finite.
fn leaf(v: f64) -> Option<f32> {
    let f = v as f32;
    f.is_finite().then_some(f)
}

/// Checks that every node was reached and returns the tree.
fn finish(built: Built, b: &Block<'_>, index: usize, n_splits: usize) -> Result<Tree, ImportError> {
    if let Some(u) = built.unreached {
        return Err(err(
            b.line,
            format!(
                "tree {index}: {} is not reached from the root (only {} nodes are)",
                node_name(u, n_splits),
                built.reached
            ),
        ));
    }
    Ok(built.tree)
}

/// "split 3" or "leaf 2" for a source node index.
fn node_name(i: usize, n_splits: usize) -> String {
    if i < n_splits {
        format!("split {i}")
    } else {
        format!("leaf {}", i - n_splits)
    }
}

fn shape_error(shape: Shape, b: &Block<'_>, index: usize, n_splits: usize) -> ImportError {
    let key = |side| {
        if side == Side::Left {
            "left_child"
        } else {
            "right_child"
        }
    };
    let line = |side| b.get(key(side)).map_or(b.line, |f| f.line);
    match shape {
        Shape::Revisited { node, side, child } => err(
            line(side),
            format!(
                "`{}` of split {node} in tree {index} leads to {}, which is already reached from the root: the nodes do not form a tree (a cycle or a shared child)",
                key(side),
                node_name(child, n_splits)
            ),
        ),
        Shape::OutOfRange { node, side, child } => err(
            line(side),
            format!(
                "`{}` of split {node} in tree {index} is out of range ({child})",
                key(side)
            ),
        ),
        Shape::Empty => err(b.line, format!("tree {index} has no nodes")),
        Shape::TooLarge => err(b.line, format!("tree {index} has too many nodes")),
    }
}

/// Converts split `node` of tree `index`.
fn split(
    s: &Splits<'_>,
    node: usize,
    n_leaves: usize,
    index: usize,
    m: &Meta,
) -> Result<SrcNode, ImportError> {
    let feature = split_feature(&s.feature, node, index, m.n_features)?;
    let name = &m.feature_names[feature];
    let (tf, t) = (s.threshold.field, s.threshold.values[node]);
    if t.is_nan() {
        return Err(err(
            tf.line,
            format!("`threshold` of split {node} in tree {index} is NaN"),
        ));
    }
    let df = s.decision.field;
    let decision = decision(&s.decision, node, index, name)?;
    let missing_left = missing_left(decision, t).ok_or_else(|| {
        err(
            df.line,
            format!(
                "split {node} of tree {index} (feature `{name}`) treats zero as missing and sends it {}, but its threshold {t} sends zero {}; the IR cannot send zero against its threshold (trained with zero_as_missing=true)",
                side_name(decision.default_left),
                side_name(!decision.default_left)
            ),
        )
    })?;
    let n_splits = n_leaves - 1;
    Ok(SrcNode::Split {
        feature: u32::try_from(feature).map_err(|_| err(tf.line, "feature index too large"))?,
        threshold: threshold(t),
        missing_left,
        left: child(&s.left, node, n_splits, n_leaves, index)?,
        right: child(&s.right, node, n_splits, n_leaves, index)?,
    })
}

/// The feature of split `node`, checked against the model's features.
fn split_feature(
    c: &Column<'_, i64>,
    node: usize,
    index: usize,
    n_features: usize,
) -> Result<usize, ImportError> {
    let f = c.values[node];
    usize::try_from(f)
        .ok()
        .filter(|&f| f < n_features)
        .ok_or_else(|| {
            err(
                c.field.line,
                format!(
                    "`split_feature` of split {node} in tree {index} is {f}, but the model has {n_features} features"
                ),
            )
        })
}

/// The decoded, numerical decision type of split `node` on feature `name`.
fn decision(
    c: &Column<'_, i64>,
    node: usize,
    index: usize,
    name: &str,
) -> Result<Decision, ImportError> {
    let d = c.values[node];
    let Some(decision) = Decision::decode(d) else {
        return Err(err(
            c.field.line,
            format!(
                "`decision_type` of split {node} in tree {index} is {d}, not a known decision type"
            ),
        ));
    };
    if decision.categorical {
        return Err(err(
            c.field.line,
            format!(
                "tree {index} splits on feature `{name}` as categorical (split {node}); categorical splits are not supported"
            ),
        ));
    }
    Ok(decision)
}

/// Whether NaN goes left at a split with threshold `t`; `None` when the
/// split treats zero as missing and sends it against the comparison, which
/// the IR cannot express.
fn missing_left(d: Decision, t: f64) -> Option<bool> {
    let zero_left = 0.0 <= t;
    match d.missing {
        Missing::None => Some(zero_left),
        Missing::NaN => Some(d.default_left),
        Missing::Zero => (d.default_left == zero_left).then_some(zero_left),
    }
}

fn side_name(left: bool) -> &'static str {
    if left { "left" } else { "right" }
}

/// The source index of a child: split `c` for `c >= 0`, leaf `!c` (stored
/// after the splits) for `c < 0`.
fn child(
    a: &Column<'_, i64>,
    node: usize,
    n_splits: usize,
    n_leaves: usize,
    index: usize,
) -> Result<usize, ImportError> {
    let c = a.values[node];
    let found = if c >= 0 {
        usize::try_from(c).ok().filter(|&c| c < n_splits)
    } else {
        usize::try_from(!c)
            .ok()
            .filter(|&l| l < n_leaves)
            .map(|l| n_splits + l)
    };
    found.ok_or_else(|| {
        err(
            a.field.line,
            format!(
                "`{}` of split {node} in tree {index} is {c}, but the tree has splits 0..={} and leaves -1..=-{n_leaves}",
                a.field.key,
                n_splits.saturating_sub(1)
            ),
        )
    })
}

/// The IR threshold for LightGBM's `(double)x <= t`, where LightGBM first
/// reads every `|x| <= 1e-35` as zero: inside that band the threshold moves
/// to the band's edge, on zero's side; elsewhere it is the largest `f32`
/// not above `t`.
fn threshold(t: f64) -> f32 {
    let band = ZERO_BAND as f32;
    if (-ZERO_BAND..0.0).contains(&t) {
        (-band).next_down()
    } else if (0.0..ZERO_BAND).contains(&t) {
        band
    } else {
        f32_at_or_below(t)
    }
}

/// How a split treats missing values.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Missing {
    /// NaN reads as 0.0.
    None,
    /// NaN and zero go to the default side.
    Zero,
    /// NaN goes to the default side.
    NaN,
}

/// A decoded `decision_type`.
#[derive(Clone, Copy, Debug)]
struct Decision {
    categorical: bool,
    default_left: bool,
    missing: Missing,
}

impl Decision {
    fn decode(d: i64) -> Option<Decision> {
        if !(0..16).contains(&d) {
            return None;
        }
        let missing = match (d >> 2) & 3 {
            0 => Missing::None,
            1 => Missing::Zero,
            2 => Missing::NaN,
            _ => return None,
        };
        Some(Decision {
            categorical: d & 1 != 0,
            default_left: d & 2 != 0,
            missing,
        })
    }
}
