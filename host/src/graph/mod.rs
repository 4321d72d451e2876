//! The serving graph: inputs clients send, model and combiner nodes,
//! outputs clients call, read from TOML ([`config`]) and run in-process
//! ([`Graph::predict`]): independent nodes run side by side within the
//! thread budget, a decomposed node fans out to its parts.
//!
//! ```no_run
//! use tessera_host::{Registry, graph::Graph};
//! let mut registry = Registry::new();
//! registry.load_dir(std::path::Path::new("target/release"))?;
//! let graph = Graph::from_file(&registry, std::path::Path::new("graph.toml"))?;
//! let rows = vec![0.0f32; 4 * graph.input_width()?];
//! let answer = graph.predict("churn", &rows, 2)?;
//! println!("{:?}", answer.labels());
//! # Ok::<(), anyhow::Error>(())
//! ```

pub mod config;
pub mod remote;
mod run;
pub mod worker;

use std::path::{Path, PathBuf};

use anyhow::Context;
use tessera_core::ir::Link;

pub use config::{
    Batching, Combine, Config, GraphError, OnFailure, Problem, RemoteDecl, ServerDecl,
};
pub use run::Answer;

use crate::{
    decompose::{self, Parts},
    model::LoadedModel,
    plugin::Registry,
};

/// Where a node's data comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Source {
    Input(usize),
    Node(usize),
}

/// What a node answers: `width` values per row; class probabilities
/// when `classes` is not empty.
#[derive(Clone, Debug, PartialEq)]
struct Shape {
    width: usize,
    classes: Vec<String>,
}

impl Shape {
    /// What a model with this header answers.
    fn of(h: &crate::artifact::Header) -> Self {
        Self {
            width: h.answer_width(),
            classes: h.classes.clone(),
        }
    }
}

enum Op {
    /// A whole model; `pick` maps its features to the input's columns.
    Model {
        model: LoadedModel,
        pick: Option<Vec<usize>>,
    },
    /// A model decomposed at load: parts run side by side, then join.
    Parts {
        parts: Parts,
        loaded: Vec<LoadedModel>,
        pick: Option<Vec<usize>>,
    },
    /// A router: the cumulative shares of its inputs.
    Route { cumulative: Vec<f64> },
    /// A meta-model over its inputs' answers side by side.
    Stack { meta: LoadedModel },
    /// A model served by other tessera servers.
    Remote {
        remote: std::sync::Arc<remote::Remote>,
        pick: Option<Vec<usize>>,
    },
    /// A model in a worker process.
    Process {
        worker: std::sync::Mutex<worker::Worker>,
        pick: Option<Vec<usize>>,
    },
    /// A combiner.
    Combine {
        how: Combine,
        weights: Vec<f64>,
        link: Link,
    },
}

struct Node {
    id: String,
    op: Op,
    inputs: Vec<Source>,
    shape: Shape,
    /// The node whose answer stands in when this one fails.
    fallback: Option<usize>,
    /// `on_failure = "degrade"`: its readers answer without it.
    degrade: bool,
}

/// A loaded, checked graph.
pub struct Graph<'r> {
    registry: &'r Registry,
    /// Calls of [`Graph::predict`] so far: their request ids.
    requests: std::sync::atomic::AtomicU64,
    path: PathBuf,
    config: Config,
    nodes: Vec<Node>,
    /// Told how long each node took, when set.
    observer: std::sync::OnceLock<NodeObserver>,
}

/// What [`Graph::observe_nodes`] calls: a node's id and the time it took.
pub type NodeObserver = Box<dyn Fn(&str, std::time::Duration) + Send + Sync>;

fn link_of(name: &str) -> Link {
    match name {
        "sigmoid" => Link::Sigmoid,
        "softmax" => Link::Softmax,
        _ => Link::Identity,
    }
}

impl<'r> Graph<'r> {
    /// Reads, checks and loads the graph in `path` (model paths relative
    /// to its folder).
    ///
    /// # Errors
    /// An unreadable file, or a [`GraphError`] listing every problem.
    pub fn from_file(registry: &'r Registry, path: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| crate::data::DataError::Io {
            path: path.to_path_buf(),
            source: e,
        })?;
        let base = path.parent().unwrap_or(Path::new("."));
        Self::from_toml(registry, &text, base, path)
    }

    /// The same from TOML text; `base` is the folder model paths are
    /// relative to, `name` names the text in messages.
    ///
    /// # Errors
    /// A [`GraphError`] listing every problem.
    pub fn from_toml(
        registry: &'r Registry,
        text: &str,
        base: &Path,
        name: &Path,
    ) -> anyhow::Result<Self> {
        let config = config::parse(text, base, name)?;
        let mut problems = Vec::new();
        let mut nodes: Vec<Node> = Vec::with_capacity(config.nodes.len());
        let source = |id: &str, nodes: &[Node]| -> Option<Source> {
            config
                .inputs
                .iter()
                .position(|i| i.id == id)
                .map(Source::Input)
                .or_else(|| nodes.iter().position(|n| n.id == id).map(Source::Node))
        };
        for decl in &config.nodes {
            let mut problem = |message: String| {
                problems.push(Problem {
                    line: decl.line,
                    key: format!("nodes.{}", decl.id),
                    message,
                });
            };
            let Some(inputs) = decl
                .inputs
                .iter()
                .map(|i| source(i, &nodes))
                .collect::<Option<Vec<_>>>()
            else {
                // An input that failed to load (its problem is listed).
                continue;
            };
            let in_shape = |s: &Source| -> (usize, Option<&Vec<String>>) {
                match *s {
                    Source::Input(i) => (config.inputs[i].width, config.inputs[i].names.as_ref()),
                    Source::Node(n) => (nodes[n].shape.width, None),
                }
            };
            // Every kind of node gives its op and shape, or one problem.
            let built: Result<(Op, Shape), String> = match &decl.kind {
                config::NodeKind::Model {
                    path,
                    remote: Some(r),
                    ..
                } => {
                    let source = decl.inputs.first().map_or("", String::as_str);
                    remote_node(path, &decl.id, r, source, inputs.first().map(in_shape))
                        .map_err(|e| format!("{e:#}"))
                }
                config::NodeKind::Model {
                    path,
                    process: true,
                    ..
                } => process_node(registry, path, &decl.id, inputs.first().map(in_shape))
                    .map_err(|e| format!("{e:#}")),
                config::NodeKind::Model {
                    path,
                    decompose: how,
                    train,
                    compress,
                    ..
                } => load_model(
                    registry,
                    path,
                    train.as_ref(),
                    compress,
                    how.as_ref(),
                    inputs.first().map(in_shape),
                )
                .map_err(|e| format!("{e:#}")),
                config::NodeKind::Route { weights } => {
                    let shapes = source_shapes(&inputs, &config, &nodes);
                    same_shape(&shapes).map(|shape| {
                        let total: f64 = weights.iter().sum();
                        let mut acc = 0.0;
                        let cumulative = weights
                            .iter()
                            .map(|w| {
                                acc += w / total;
                                acc
                            })
                            .collect();
                        (Op::Route { cumulative }, shape)
                    })
                }
                config::NodeKind::Combine {
                    how: Combine::Stack,
                    train: Some((data, t)),
                    ..
                } => stack_meta(registry, &config, &mut nodes, &inputs, data, t, name)
                    .map_err(|e| format!("{e:#}")),
                config::NodeKind::Combine {
                    how,
                    weights,
                    link,
                    classes,
                    ..
                } => {
                    let shapes = source_shapes(&inputs, &config, &nodes);
                    combined_shape(*how, &shapes, link, classes.as_deref()).map(|shape| {
                        (
                            Op::Combine {
                                how: *how,
                                weights: weights.clone(),
                                link: link_of(link),
                            },
                            shape,
                        )
                    })
                }
            };
            let built = built.map_err(&mut problem).ok();
            if let Some((op, shape)) = built {
                nodes.push(Node {
                    id: decl.id.clone(),
                    op,
                    inputs,
                    shape,
                    fallback: None,
                    degrade: decl.on_failure == config::OnFailure::Degrade,
                });
            }
        }
        // Fallbacks, once every node is built: they must answer alike.
        for decl in &config.nodes {
            let (Some(f), Some(i)) = (
                decl.fallback.as_ref(),
                nodes.iter().position(|n| n.id == decl.id),
            ) else {
                continue;
            };
            let Some(j) = nodes.iter().position(|n| n.id == *f) else {
                continue;
            };
            if nodes[j].shape != nodes[i].shape {
                problems.push(Problem {
                    line: decl.line,
                    key: format!("nodes.{}.fallback", decl.id),
                    message: format!(
                        "`{f}` answers {} values per row{}, `{}` {}{}",
                        nodes[j].shape.width,
                        classes_note(&nodes[j].shape),
                        decl.id,
                        nodes[i].shape.width,
                        classes_note(&nodes[i].shape)
                    ),
                });
            }
            nodes[i].fallback = Some(j);
        }
        if !problems.is_empty() {
            problems.sort_by_key(|p| p.line);
            return Err(GraphError {
                path: name.to_path_buf(),
                problems,
            }
            .into());
        }
        Ok(Self {
            registry,
            requests: std::sync::atomic::AtomicU64::new(0),
            path: name.to_path_buf(),
            config,
            nodes,
            observer: std::sync::OnceLock::new(),
        })
    }

    /// Calls `f` with each node's id and run time after it runs (once per
    /// batch); only the first observer set is kept.
    pub fn observe_nodes(&self, f: NodeObserver) {
        let _ = self.observer.set(f);
    }

    /// Whether output `name` passes through a router, so that its answer
    /// for a request depends on the request's id.
    pub fn routes(&self, name: &str) -> bool {
        let Some(o) = self.config.outputs.iter().find(|o| o.name == name) else {
            return false;
        };
        let mut todo: Vec<usize> = self
            .nodes
            .iter()
            .position(|n| n.id == o.from)
            .into_iter()
            .collect();
        let mut seen = vec![false; self.nodes.len()];
        while let Some(i) = todo.pop() {
            if std::mem::replace(&mut seen[i], true) {
                continue;
            }
            if matches!(self.nodes[i].op, Op::Route { .. }) {
                return true;
            }
            todo.extend(self.nodes[i].inputs.iter().filter_map(|s| match s {
                Source::Node(n) => Some(*n),
                Source::Input(_) => None,
            }));
        }
        false
    }

    /// The checked configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The graph file's path (or name).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The names of the outputs clients call.
    pub fn outputs(&self) -> Vec<&str> {
        self.config
            .outputs
            .iter()
            .map(|o| o.name.as_str())
            .collect()
    }

    /// Columns per row of the graph's one input.
    ///
    /// # Errors
    /// A graph with several inputs.
    pub fn input_width(&self) -> anyhow::Result<usize> {
        match self.config.inputs.as_slice() {
            [one] => Ok(one.width),
            many => anyhow::bail!(
                "{}: the graph has {} inputs; name each one's rows",
                self.path.display(),
                many.len()
            ),
        }
    }

    /// The class labels output `name` answers with (empty for values).
    pub fn output_classes(&self, name: &str) -> Option<&[String]> {
        let o = self.config.outputs.iter().find(|o| o.name == name)?;
        let n = self.nodes.iter().find(|n| n.id == o.from)?;
        Some(&n.shape.classes)
    }

    /// Values per row output `name` answers with.
    pub fn output_width(&self, name: &str) -> Option<usize> {
        let o = self.config.outputs.iter().find(|o| o.name == name)?;
        let n = self.nodes.iter().find(|n| n.id == o.from)?;
        Some(n.shape.width)
    }

    /// Sets the program started for `process = true` nodes (default:
    /// `$TESSERA_WORKER`, else this executable, which must then be the
    /// `tessera` binary).
    pub fn set_worker_program(&self, program: &Path) {
        for n in &self.nodes {
            if let Op::Process { worker, .. } = &n.op {
                let mut w = worker
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                w.program = program.to_path_buf();
            }
        }
    }

    /// The graph as Graphviz DOT.
    pub fn dot(&self) -> String {
        run::dot(self)
    }
}

/// `model` through the compressors `steps`, in order, on its exchange
/// form, with no data (compressors that need rows say so).
fn compressed(
    registry: &Registry,
    model: LoadedModel,
    steps: &[crate::compress::Step],
    path: &Path,
) -> anyhow::Result<LoadedModel> {
    let ctx = crate::RunContext::new(registry, 1);
    let task = model.model.task();
    let data = tessera_core::CompressData::none(task);
    let (_, loaded) = crate::compress::compress(registry, ctx.as_abi(), &model, steps, data, path)?;
    Ok(loaded)
}

/// The columns of `features` a model takes from its input (`(width,
/// names)`): `None` when they are the input's own, in order.
fn pick_columns(
    path: &Path,
    features: &[String],
    input: Option<(usize, Option<&Vec<String>>)>,
) -> anyhow::Result<Option<Vec<usize>>> {
    let pick = match input {
        Some((_, Some(names))) => Some(
            features
                .iter()
                .map(|f| {
                    names.iter().position(|n| n == f).ok_or_else(|| {
                        anyhow::anyhow!(
                            "{} needs feature `{f}`, which its input does not name{}",
                            path.display(),
                            config::hint(f, &names.iter().map(String::as_str).collect::<Vec<_>>())
                        )
                    })
                })
                .collect::<anyhow::Result<Vec<_>>>()?,
        ),
        Some((width, None)) if width != features.len() => anyhow::bail!(
            "{} takes {} features, its input gives {width} columns",
            path.display(),
            features.len()
        ),
        _ => None,
    };
    // Columns already in the model's order need no copy.
    Ok(pick.filter(|p| {
        p.iter().enumerate().any(|(i, &j)| i != j) || input.is_some_and(|(w, _)| w != p.len())
    }))
}

/// A `process = true` node: only the model file's header is read here
/// (no plugin code runs in the host); the worker loads the model when the
/// node is first asked.
/// A model node served remotely: its shape and features come from the
/// model file's header; `source` names what it reads (the input name
/// the servers holding it expect).
fn remote_node(
    path: &Path,
    id: &str,
    decl: &config::RemoteDecl,
    source: &str,
    input: Option<(usize, Option<&Vec<String>>)>,
) -> anyhow::Result<(Op, Shape)> {
    let header = crate::artifact::Artifact::read(path)?.header;
    let pick = pick_columns(path, &header.features, input)?;
    let shape = Shape::of(&header);
    let remote = remote::Remote::new(
        id,
        decl,
        source,
        header.features.len(),
        !shape.classes.is_empty(),
        shape.width,
    )?;
    Ok((Op::Remote { remote, pick }, shape))
}

fn process_node(
    registry: &Registry,
    path: &Path,
    id: &str,
    input: Option<(usize, Option<&Vec<String>>)>,
) -> anyhow::Result<(Op, Shape)> {
    let header = crate::artifact::Artifact::read(path)?.header;
    registry.model_provider(&header.component)?;
    let pick = pick_columns(path, &header.features, input)?;
    let shape = Shape::of(&header);
    let plugins: Vec<PathBuf> = registry.plugins().iter().map(|p| p.path.clone()).collect();
    let w = worker::Worker::new(
        worker::Worker::default_program(),
        &plugins,
        path,
        format!("node `{id}` ({})", path.display()),
    );
    Ok((
        Op::Process {
            worker: std::sync::Mutex::new(w),
            pick,
        },
        shape,
    ))
}

/// Loads a model node: the model (decomposed when asked) and the columns
/// it takes from its input (`(width, names)`).
fn load_model(
    registry: &Registry,
    path: &Path,
    train: Option<&config::TrainDecl>,
    compress: &[crate::compress::Step],
    how: Option<&(String, serde_json::Value)>,
    input: Option<(usize, Option<&Vec<String>>)>,
) -> anyhow::Result<(Op, Shape)> {
    let model = match train {
        None => LoadedModel::open(registry, path)?,
        Some(t) => {
            // Trained from the data file when the graph loads, with every
            // core (loading is not serving).
            let table = crate::data::Table::read(path)?;
            let threads = std::thread::available_parallelism().map_or(1, usize::from);
            let ctx = crate::RunContext::new(registry, threads);
            let targets = [t.target.clone()];
            let spec = crate::train::TrainSpec {
                learner: &t.learner,
                params: t.params.clone(),
                targets: &targets,
                task: crate::data::TaskHint::Auto,
                weight: None,
                valid: None,
            };
            crate::train::train(registry, &ctx, &table, &spec)
                .with_context(|| format!("cannot train `{}` on {}", t.learner, path.display()))?
                .model
        }
    };
    let model = if compress.is_empty() {
        model
    } else {
        compressed(registry, model, compress, path)?
    };
    let pick = pick_columns(path, &model.header.features, input)?;
    let shape = Shape::of(&model.header);
    let op = match how {
        None => Op::Model { model, pick },
        Some((with, params)) => {
            let ctx = crate::RunContext::new(registry, 1);
            let parts = decompose::decompose(registry, ctx.as_abi(), &model, path, with, params)
                .with_context(|| format!("cannot decompose {} with {with}", path.display()))?;
            let loaded = parts.load(registry)?;
            Op::Parts {
                parts,
                loaded,
                pick,
            }
        }
    };
    Ok((op, shape))
}

/// A `stack` node: its inputs' answers on the training file (the graph
/// built so far run on it), side by side, train the meta-model.
fn stack_meta(
    registry: &Registry,
    config: &Config,
    nodes: &mut Vec<Node>,
    inputs: &[Source],
    data: &Path,
    t: &config::TrainDecl,
    name: &Path,
) -> anyhow::Result<(Op, Shape)> {
    use tessera_core::{
        Holdout, MatrixRef, TrainData,
        abi_stable::std_types::{ROption, RSlice, RString},
    };
    let table = crate::data::Table::read(data)?;
    let input = config
        .inputs
        .first()
        .context("a stack needs the graph's input")?;
    let names = input
        .names
        .clone()
        .unwrap_or_else(|| table.columns().iter().take(input.width).cloned().collect());
    let x = table.features(&names)?;
    let rows = table.n_rows();
    let threads = std::thread::available_parallelism().map_or(1, usize::from);
    // The graph so far, to run the stack's inputs on the training rows.
    let partial = Graph {
        registry,
        requests: std::sync::atomic::AtomicU64::new(0),
        path: name.to_path_buf(),
        config: config.clone(),
        nodes: std::mem::take(nodes),
        observer: std::sync::OnceLock::new(),
    };
    let answers: anyhow::Result<Vec<(Vec<f64>, usize, String)>> = inputs
        .iter()
        .map(|s| match *s {
            Source::Input(i) => Ok((
                x.iter().map(|&v| f64::from(v)).collect(),
                config.inputs[i].width,
                config.inputs[i].id.clone(),
            )),
            Source::Node(n) => {
                let (v, _, _) = partial.run_to(n, &x, threads, 0.0)?;
                Ok((v, partial.nodes[n].shape.width, partial.nodes[n].id.clone()))
            }
        })
        .collect();
    *nodes = partial.nodes;
    let answers = answers?;
    let width: usize = answers.iter().map(|(_, w, _)| w).sum();
    let mut features = Vec::with_capacity(rows * width);
    for r in 0..rows {
        for (v, w, _) in &answers {
            features.extend(v[r * w..(r + 1) * w].iter().map(|&f| f as f32));
        }
    }
    let feature_names: Vec<String> = answers
        .iter()
        .flat_map(|(_, w, id)| (0..*w).map(move |j| format!("{id}_{j}")))
        .collect();
    let rnames: Vec<RString> = feature_names
        .iter()
        .map(|n| RString::from(n.as_str()))
        .collect();
    let target = table.target(&t.target, crate::data::TaskHint::Auto)?;
    let learner = registry.create_learner(&t.learner, &t.params.to_string())?;
    let ctx = crate::RunContext::new(registry, threads);
    let model = learner
        .fit(
            ctx.as_abi(),
            TrainData {
                x: MatrixRef::new(&features, rows, width)?,
                y: RSlice::from_slice(&target.y),
                weights: ROption::RNone,
                feature_names: RSlice::from_slice(&rnames),
                task: target.task,
                valid: ROption::<Holdout<'_>>::RNone,
            },
        )
        .into_result()
        .map_err(|error| crate::model::CallError {
            context: format!("stack learner `{}` fit on {}", t.learner, data.display()),
            error,
        })?;
    let provider = registry.provider(tessera_core::ComponentKind::Learner, &t.learner)?;
    let header = crate::artifact::Header {
        plugin: provider.manifest.name.to_string(),
        plugin_version: provider.manifest.version.to_string(),
        component: t.learner.clone(),
        abi_version: provider.manifest.abi_version.to_string(),
        task: target.task.name().to_string(),
        classes: target.classes.clone(),
        target: t.target.clone(),
        targets: Vec::new(),
        features: feature_names,
        payload_len: 0,
        payload_crc32: 0,
        training: serde_json::json!({"stacked_on": data.display().to_string()}),
    };
    let meta = LoadedModel { header, model };
    let shape = Shape::of(&meta.header);
    Ok((Op::Stack { meta }, shape))
}

/// Each source's id and what it answers (an input: its columns, no
/// classes).
fn source_shapes(inputs: &[Source], config: &Config, nodes: &[Node]) -> Vec<(String, Shape)> {
    inputs
        .iter()
        .map(|s| match *s {
            Source::Input(i) => (
                config.inputs[i].id.clone(),
                Shape {
                    width: config.inputs[i].width,
                    classes: Vec::new(),
                },
            ),
            Source::Node(n) => (nodes[n].id.clone(), nodes[n].shape.clone()),
        })
        .collect()
}

/// The one shape every branch of a router answers with.
fn same_shape(inputs: &[(String, Shape)]) -> Result<Shape, String> {
    let first = &inputs[0];
    match inputs.iter().find(|(_, s)| *s != first.1) {
        Some((id, s)) => Err(format!(
            "a router's inputs must answer alike: `{}` gives {} values per row{}, `{id}` gives \
             {}{}",
            first.0,
            first.1.width,
            classes_note(&first.1),
            s.width,
            classes_note(s)
        )),
        None => Ok(first.1.clone()),
    }
}

fn classes_note(s: &Shape) -> String {
    if s.classes.is_empty() {
        String::new()
    } else {
        format!(" (classes {})", s.classes.join(", "))
    }
}

/// The shape a combiner answers with, or why its inputs do not fit.
fn combined_shape(
    how: Combine,
    inputs: &[(String, Shape)],
    link: &str,
    classes: Option<&[String]>,
) -> Result<Shape, String> {
    let first = &inputs[0].1;
    let differ = |what: &str, f: &dyn Fn(&Shape) -> String| -> Result<(), String> {
        match inputs.iter().find(|(_, s)| f(s) != f(first)) {
            Some((id, s)) => Err(format!(
                "{what} mismatch between its inputs: `{}` has {}, `{id}` has {}",
                inputs[0].0,
                f(first),
                f(s)
            )),
            None => Ok(()),
        }
    };
    let classes_text = |s: &Shape| {
        if s.classes.is_empty() {
            "no classes".to_string()
        } else {
            format!("{} classes [{}]", s.classes.len(), s.classes.join(", "))
        }
    };
    let width_text = |s: &Shape| format!("{} values per row", s.width);
    let shape = match how {
        Combine::Stack => unreachable!("stack nodes are built by stack_meta"),
        Combine::MeanProba | Combine::Vote => {
            if let Some((id, _)) = inputs.iter().find(|(_, s)| s.classes.is_empty()) {
                return Err(format!("`{id}` answers values, not class probabilities"));
            }
            differ("class-count", &classes_text)?;
            first.clone()
        }
        Combine::Sum | Combine::Weighted => {
            differ("output-shape", &width_text)?;
            let classes = classes.map(<[String]>::to_vec).unwrap_or_else(|| {
                let same = inputs.iter().all(|(_, s)| s.classes == first.classes);
                if same {
                    first.classes.clone()
                } else {
                    Vec::new()
                }
            });
            linked(first.width, link, classes)?
        }
        Combine::Concat => {
            let width = inputs.iter().map(|(_, s)| s.width).sum();
            linked(
                width,
                link,
                classes.map(<[String]>::to_vec).unwrap_or_default(),
            )?
        }
    };
    Ok(shape)
}

/// The shape after `link` of `width` values labelled `classes`.
fn linked(width: usize, link: &str, classes: Vec<String>) -> Result<Shape, String> {
    match link {
        "sigmoid" if width != 1 => Err(format!(
            "a sigmoid link takes one value per row, not {width}"
        )),
        "sigmoid" => Ok(Shape {
            width: 2,
            classes: if classes.is_empty() {
                vec!["0".into(), "1".into()]
            } else {
                classes
            },
        }),
        "softmax" if !classes.is_empty() && classes.len() != width => Err(format!(
            "{} classes for a softmax over {width} values",
            classes.len()
        )),
        "softmax" => Ok(Shape {
            width,
            classes: if classes.is_empty() {
                (0..width).map(|c| c.to_string()).collect()
            } else {
                classes
            },
        }),
        _ if !classes.is_empty() && classes.len() != width => Err(format!(
            "{} classes for {width} values per row",
            classes.len()
        )),
        _ => Ok(Shape { width, classes }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shape(width: usize, classes: &[&str]) -> Shape {
        Shape {
            width,
            classes: classes.iter().map(|c| c.to_string()).collect(),
        }
    }

    #[test]
    fn combined_shapes_follow_their_inputs_and_links() {
        let three = shape(3, &["a", "b", "c"]);
        let two = shape(2, &["x", "y"]);
        let raw = shape(1, &[]);
        let ins = |v: Vec<Shape>| -> Vec<(String, Shape)> {
            v.into_iter()
                .enumerate()
                .map(|(i, s)| (format!("n{i}"), s))
                .collect()
        };
        assert_eq!(
            combined_shape(
                Combine::MeanProba,
                &ins(vec![three.clone(), three.clone()]),
                "identity",
                None
            ),
            Ok(three.clone())
        );
        let e = combined_shape(
            Combine::Vote,
            &ins(vec![three.clone(), two.clone()]),
            "identity",
            None,
        )
        .unwrap_err();
        assert!(
            e.contains("class-count mismatch") && e.contains("`n1` has 2 classes"),
            "{e}"
        );
        let e = combined_shape(
            Combine::MeanProba,
            &ins(vec![raw.clone()]),
            "identity",
            None,
        )
        .unwrap_err();
        assert!(e.contains("answers values"), "{e}");
        // Raw scores through a sigmoid become two probabilities.
        let s = combined_shape(
            Combine::Sum,
            &ins(vec![raw.clone(), raw.clone()]),
            "sigmoid",
            Some(&["no".into(), "yes".into()]),
        )
        .unwrap();
        assert_eq!(s, shape(2, &["no", "yes"]));
        let e = combined_shape(
            Combine::Sum,
            &ins(vec![raw.clone(), two.clone()]),
            "identity",
            None,
        )
        .unwrap_err();
        assert!(e.contains("output-shape mismatch"), "{e}");
        let c = combined_shape(
            Combine::Concat,
            &ins(vec![raw.clone(), raw.clone(), raw]),
            "softmax",
            None,
        )
        .unwrap();
        assert_eq!(c, shape(3, &["0", "1", "2"]));
        let e = linked(3, "softmax", vec!["a".into()]).unwrap_err();
        assert!(e.contains("1 classes for a softmax over 3"), "{e}");
    }
}
