//! Command-line arguments (the contract in DESIGN.md) and dispatch.

/// `print!` that ignores a closed standard output (`tessera inspect M |
/// head`) instead of panicking.
macro_rules! out {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = write!(std::io::stdout().lock(), $($arg)*);
    }};
}

/// `println!` that ignores a closed standard output.
macro_rules! outln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout().lock(), $($arg)*);
    }};
}

mod commands;
mod compress;
mod deploy;
mod progress;
mod serve;
mod summary;

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};
use tessera_core::shard::Shard;
use tessera_host::{
    artifact::ArtifactError,
    data::{DataError, TaskHint},
    model::CallError,
    params::ParamError,
    plugin::{LoadError, PluginCallError},
};

/// Train, inspect and run classical ML models whose algorithms are plugins.
#[derive(Debug, Parser)]
#[command(name = "tessera", version, about, propagate_version = true)]
pub struct Cli {
    /// Plugin folder or file to load (repeatable). Default: $TESSERA_PLUGINS,
    /// else the folder the tessera binary is in.
    #[arg(long, global = true, value_name = "PATH")]
    plugins: Vec<PathBuf>,

    /// Print plugin debug messages.
    #[arg(long, short, global = true)]
    verbose: bool,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// List the loaded plugins and their components.
    Plugins(PluginsArgs),
    /// Train a model from a CSV file.
    Train(TrainArgs),
    /// Predict with a model.
    Predict(PredictArgs),
    /// Score a model on labelled data.
    Eval(EvalArgs),
    /// Show a model file's header and summary.
    Inspect(InspectArgs),
    /// Turn an XGBoost or LightGBM model into a tessera model.
    Import(ImportArgs),
    /// Join the shards of one model (trained with `train --shard`) into it.
    Merge(MergeArgs),
    /// Split a model into sub-models that recombine to the same answer.
    Decompose(DecomposeArgs),
    /// Compress a model (quantize, prune) into a new model file, with a
    /// before/after table of size, metric and speed.
    Compress(compress::CompressArgs),
    /// Serve a graph file, or model files, over HTTP (Open Inference Protocol v2).
    Serve(ServeArgs),
    /// Check or draw a serving graph (TOML).
    #[command(subcommand)]
    Graph(GraphCommand),
    /// Write deployment files for a graph file (Kubernetes manifests).
    #[command(subcommand)]
    Deploy(deploy::DeployCommand),
    /// Serve one model to a host over standard input and output (what a
    /// graph's `process = true` node starts).
    #[command(hide = true)]
    Worker(WorkerArgs),
}

#[derive(Debug, Args)]
struct ServeArgs {
    /// The graph file (each `[outputs.*]` is served as a model).
    #[arg(value_name = "CONFIG.toml")]
    config: Option<PathBuf>,
    /// Serve a model file under NAME (repeatable; instead of a graph file).
    #[arg(long, value_name = "NAME=MODEL")]
    model: Vec<String>,
    /// Serve only this model node of the graph file, under its id
    /// (repeatable): one machine's part of a larger deployment.
    #[arg(long, value_name = "ID")]
    node: Vec<String>,
    /// The address to listen on (default: `[server] listen`, else
    /// 127.0.0.1:8000; port 0 picks a free one).
    #[arg(long, value_name = "ADDR")]
    listen: Option<String>,
    /// The thread budget of one prediction (default: `[server] threads`,
    /// else every core).
    #[arg(long, value_name = "N")]
    threads: Option<usize>,
    /// Log lines as text or json (the level comes from $TESSERA_LOG:
    /// error, warn, info, debug, trace).
    #[arg(long, value_name = "FORMAT", default_value = "text", value_parser = ["text", "json"])]
    log_format: String,
}

#[derive(Debug, Args)]
struct WorkerArgs {
    /// The model file.
    #[arg(long, value_name = "MODEL")]
    model: PathBuf,
}

#[derive(Debug, Subcommand)]
enum GraphCommand {
    /// Check a graph file: every problem, each with its line and key.
    Check(GraphArgs),
    /// Print a graph file as Graphviz DOT (and render SVG with --svg).
    Show(GraphShowArgs),
}

#[derive(Debug, Args)]
struct GraphArgs {
    /// The graph file.
    config: PathBuf,
}

#[derive(Debug, Args)]
struct GraphShowArgs {
    /// The graph file.
    config: PathBuf,
    /// Also render SVG to this file with Graphviz's `dot`.
    #[arg(long, value_name = "FILE.svg")]
    svg: Option<PathBuf>,
}

#[derive(Debug, Args)]
struct DecomposeArgs {
    /// The model file.
    #[arg(long, value_name = "MODEL")]
    model: PathBuf,
    /// The decomposer: shard, pipeline, one_vs_rest (or a plugin's own).
    #[arg(long = "with", value_name = "NAME")]
    with: String,
    /// One decomposer parameter; VALUE is a TOML value.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    set: Vec<String>,
    /// Decomposer parameters as a TOML table (applied before --set).
    #[arg(long, value_name = "FILE.toml")]
    config: Option<PathBuf>,
    /// The folder for the parts (`<part>.tsr`) and `graph.toml`.
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
    /// Labelled or unlabelled data to check on: the recombined parts must
    /// answer as the whole model does (largest differences reported).
    #[arg(long, value_name = "FILE")]
    check: Option<PathBuf>,
    /// Thread budget for the check (default: all cores).
    #[arg(long, value_name = "N")]
    threads: Option<usize>,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
struct MergeArgs {
    /// The shards' model files, in any order: every shard of one model once.
    #[arg(value_name = "PART", required = true)]
    parts: Vec<PathBuf>,
    /// Where to write the merged model.
    #[arg(long, value_name = "MODEL")]
    out: PathBuf,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
struct PluginsArgs {
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
struct TrainArgs {
    /// Learner component name, e.g. random_forest.
    #[arg(long, value_name = "NAME")]
    learner: String,
    /// Training data (CSV with a header row).
    #[arg(long, value_name = "FILE")]
    data: PathBuf,
    /// Name of the target column; every other column is a feature. Repeat
    /// it for a multi-output regression (learners that support one: mlp).
    #[arg(long, value_name = "COL", required = true)]
    target: Vec<String>,
    /// One learner parameter; VALUE is a TOML value, dotted keys reach nested tables.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    set: Vec<String>,
    /// Learner parameters as a TOML table (applied before --set).
    #[arg(long, value_name = "FILE.toml")]
    config: Option<PathBuf>,
    /// Validation data: learners that stop early score it while training;
    /// it is scored after training and written to the report.
    #[arg(long, value_name = "FILE")]
    valid: Option<PathBuf>,
    /// Sets the learner's random_state.
    #[arg(long, value_name = "N")]
    seed: Option<u64>,
    /// Train only shard I of N of the ensemble (learners that declare the
    /// `shard` parameter: random_forest, bagging); needs a seed. Join the
    /// shards with `tessera merge`.
    #[arg(long, value_name = "I/N", value_parser = parse_shard)]
    shard: Option<Shard>,
    /// Thread budget (default: all cores).
    #[arg(long, value_name = "N")]
    threads: Option<usize>,
    /// Where to write the model.
    #[arg(long, value_name = "MODEL")]
    out: PathBuf,
    /// Write timings and metrics as JSON here.
    #[arg(long, value_name = "FILE.json")]
    report: Option<PathBuf>,
    /// A column of non-negative sample weights (not used as a feature).
    #[arg(long, value_name = "COL")]
    weight: Option<String>,
    /// What the target is; `auto` takes text labels and few distinct integers
    /// for classes.
    #[arg(long, value_enum, default_value_t = TaskArg::Auto)]
    task: TaskArg,
}

fn parse_shard(text: &str) -> Result<Shard, String> {
    Shard::parse(text)
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum TaskArg {
    Auto,
    Classification,
    Regression,
}

impl From<TaskArg> for TaskHint {
    fn from(t: TaskArg) -> Self {
        match t {
            TaskArg::Auto => TaskHint::Auto,
            TaskArg::Classification => TaskHint::Classification,
            TaskArg::Regression => TaskHint::Regression,
        }
    }
}

#[derive(Debug, Args)]
struct PredictArgs {
    /// The model file.
    #[arg(
        long,
        value_name = "MODEL",
        required_unless_present = "graph",
        conflicts_with = "graph"
    )]
    model: Option<PathBuf>,
    /// A graph file (TOML) to run instead of one model; needs --output.
    #[arg(long, value_name = "CONFIG.toml", requires = "output")]
    graph: Option<PathBuf>,
    /// The graph output to answer (with --graph).
    #[arg(long, value_name = "NAME", requires = "graph")]
    output: Option<String>,
    /// The request's id (with --graph): routers send the same id the same
    /// way. Default: the data file's path.
    #[arg(long, value_name = "ID", requires = "graph")]
    request_id: Option<String>,
    /// Data to predict (CSV; columns are picked by name, extra ones ignored).
    #[arg(long, value_name = "FILE")]
    data: PathBuf,
    /// Also write one probability column per class.
    #[arg(long)]
    proba: bool,
    /// Thread budget (default: all cores).
    #[arg(long, value_name = "N")]
    threads: Option<usize>,
    /// Write predictions here instead of standard output.
    #[arg(long, value_name = "FILE.csv")]
    out: Option<PathBuf>,
    /// Write timings as JSON here.
    #[arg(long, value_name = "FILE.json")]
    report: Option<PathBuf>,
}

#[derive(Debug, Args)]
struct EvalArgs {
    /// The model file.
    #[arg(long, value_name = "MODEL")]
    model: PathBuf,
    /// Labelled data (CSV).
    #[arg(long, value_name = "FILE")]
    data: PathBuf,
    /// The column holding the truth (repeat it for each target of a
    /// multi-output regression model).
    #[arg(long, value_name = "COL", required = true)]
    target: Vec<String>,
    /// Print one JSON object.
    #[arg(long)]
    json: bool,
    /// Thread budget (default: all cores).
    #[arg(long, value_name = "N")]
    threads: Option<usize>,
}

#[derive(Debug, Args)]
struct InspectArgs {
    /// The model file.
    model: PathBuf,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
}

/// The libraries `import` reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Library {
    /// A LightGBM text model (`Booster.save_model("model.txt")`).
    Lightgbm,
    /// An XGBoost JSON model (`Booster.save_model("model.json")`).
    Xgboost,
}

#[derive(Debug, Args)]
struct ImportArgs {
    /// The library that trained the model.
    #[arg(long, value_name = "LIBRARY")]
    from: Library,
    /// The model file.
    model: PathBuf,
    /// Where to write the tessera model.
    #[arg(long, value_name = "MODEL")]
    out: PathBuf,
    /// The target column's name, for `eval`.
    #[arg(long, value_name = "COL", default_value = "label")]
    target: String,
    /// Class labels in class-index order, comma-separated (default 0, 1, ...).
    #[arg(long, value_name = "A,B,...", value_delimiter = ',')]
    classes: Option<Vec<String>>,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
}

/// Runs the parsed command.
pub fn run(cli: Cli) -> anyhow::Result<()> {
    let env = commands::Env::new(cli.plugins, cli.verbose);
    let result = match cli.command {
        Command::Plugins(a) => commands::plugins(&env, a.json),
        Command::Train(a) => commands::train(&env, a),
        Command::Predict(a) => commands::predict(&env, a),
        Command::Eval(a) => commands::eval(&env, a),
        Command::Inspect(a) => commands::inspect(&env, a),
        Command::Import(a) => commands::import(&env, a),
        Command::Merge(a) => commands::merge(&env, a),
        Command::Decompose(a) => commands::decompose(&env, a),
        Command::Compress(a) => compress::compress(&env, a),
        Command::Serve(a) => serve::serve(&env, a),
        Command::Worker(a) => commands::worker(&env, &a.model),
        Command::Deploy(deploy::DeployCommand::K8s(a)) => deploy::k8s(a),
        Command::Graph(GraphCommand::Check(a)) => commands::graph_check(&env, &a.config),
        Command::Graph(GraphCommand::Show(a)) => {
            commands::graph_show(&env, &a.config, a.svg.as_deref())
        }
    };
    if cli.verbose
        && let Err(e) = &result
    {
        // The loader's layout report is hundreds of lines: shown on request.
        for cause in e.chain() {
            if let Some(LoadError::Incompatible { full, .. }) = cause.downcast_ref::<LoadError>()
                && !full.is_empty()
            {
                eprintln!("full report from the plugin loader:\n{full}");
            }
        }
    }
    result
}

/// 2 when the fault lies in what the user gave (arguments, files, data,
/// parameters), 1 otherwise.
pub fn exit_code(e: &anyhow::Error) -> u8 {
    for cause in e.chain() {
        if cause.is::<DataError>()
            || cause.is::<ArtifactError>()
            || cause.is::<LoadError>()
            || cause.is::<ParamError>()
            || cause.is::<tessera_host::import::ImportError>()
            || cause.is::<tessera_host::graph::GraphError>()
            || cause.is::<tessera_host::shard::ShardError>()
            || cause.is::<commands::UsageError>()
        {
            return 2;
        }
        if let Some(c) = cause.downcast_ref::<CallError>() {
            return if c.error.kind.is_user_error() { 2 } else { 1 };
        }
        if let Some(c) = cause.downcast_ref::<PluginCallError>() {
            return if c.error.kind.is_user_error() { 2 } else { 1 };
        }
        if let Some(p) = cause.downcast_ref::<tessera_core::PluginError>() {
            return if p.kind.is_user_error() { 2 } else { 1 };
        }
    }
    1
}
