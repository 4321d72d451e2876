//! `tessera deploy k8s`: Kubernetes manifests for a graph file.

use std::path::PathBuf;

use clap::{Args, Subcommand};
use tessera_host::deploy::{
    self, DeployError, GraphFile,
    k8s::{K8sOptions, TrainJob},
};

use super::commands::UsageError;

#[derive(Debug, Subcommand)]
pub enum DeployCommand {
    /// Write Kubernetes manifests (JSON) for a graph file.
    ///
    /// A ConfigMap with the graph, a Deployment and a Service per remote
    /// node and for the front host, optionally an Indexed Job training a
    /// model in shards, a KServe ServingRuntime, and a README on applying
    /// them (`kubectl apply -f DIR`).
    K8s(K8sArgs),
}

#[derive(Debug, Args)]
pub struct K8sArgs {
    /// The graph file. Files it names are read, in the cluster, from the
    /// models volume at the same relative paths; they need not exist here.
    #[arg(value_name = "CONFIG.toml")]
    config: PathBuf,
    /// The folder to write to (created if needed; manifests an earlier run
    /// wrote there that no longer belong are removed).
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
    /// The container image (built from the repository's Dockerfile).
    #[arg(long, value_name = "IMAGE", default_value = concat!("tessera:", env!("CARGO_PKG_VERSION")))]
    image: String,
    /// The namespace written into every object and into the in-cluster
    /// URLs (default: none, so `kubectl apply -n NS` picks it).
    #[arg(long, value_name = "NS")]
    namespace: Option<String>,
    /// The prefix of every object's name.
    #[arg(long, value_name = "NAME", default_value = "tessera")]
    name: String,
    /// The PersistentVolumeClaim holding the models (mounted at /models).
    #[arg(long, value_name = "NAME", default_value = "tessera-models")]
    models_claim: String,
    /// Replicas of every remote node (N), or of one (ID=N; repeatable).
    /// Default: as many as the node's `remote` list has URLs.
    #[arg(long, value_name = "[ID=]N")]
    replicas: Vec<String>,
    /// Replicas of the front host.
    #[arg(long, value_name = "N", default_value_t = 1)]
    front_replicas: u32,
    /// CPU each container requests (a Kubernetes quantity).
    #[arg(long, value_name = "QUANTITY", default_value = "1")]
    cpu: String,
    /// Memory each container requests (a Kubernetes quantity).
    #[arg(long, value_name = "QUANTITY", default_value = "1Gi")]
    memory: String,
    /// Also write an Indexed Job training a model in N shards at once
    /// (`tessera train --shard I/N`) and a Job merging them.
    #[arg(
        long,
        value_name = "N",
        requires_all = ["learner", "data", "target"],
        help_heading = "Sharded training"
    )]
    train_shards: Option<u32>,
    /// The learner (with --train-shards).
    #[arg(
        long,
        value_name = "NAME",
        requires = "train_shards",
        help_heading = "Sharded training"
    )]
    learner: Option<String>,
    /// The training data, relative to the models volume (with
    /// --train-shards).
    #[arg(
        long,
        value_name = "PATH",
        requires = "train_shards",
        help_heading = "Sharded training"
    )]
    data: Option<String>,
    /// The target column (repeatable; with --train-shards).
    #[arg(
        long,
        value_name = "COL",
        requires = "train_shards",
        help_heading = "Sharded training"
    )]
    target: Vec<String>,
    /// One learner parameter, as `tessera train --set` takes it
    /// (repeatable).
    #[arg(
        long = "set",
        value_name = "KEY=VALUE",
        requires = "train_shards",
        help_heading = "Sharded training"
    )]
    set: Vec<String>,
    /// The learner's seed (shards need one, here or as `--set
    /// random_state=N`).
    #[arg(
        long,
        value_name = "N",
        requires = "train_shards",
        help_heading = "Sharded training"
    )]
    seed: Option<u64>,
    /// Where the merged model goes, relative to the models volume.
    #[arg(
        long,
        value_name = "PATH",
        default_value = "model.tsr",
        help_heading = "Sharded training"
    )]
    train_out: String,
}

/// Replicas of every remote node, and of single ones by id.
type Replicas = (Option<u32>, Vec<(String, u32)>);

/// `--replicas N` or `--replicas ID=N`.
fn replicas(given: &[String]) -> anyhow::Result<Replicas> {
    let mut all = None;
    let mut nodes = Vec::new();
    for r in given {
        let (id, n) = match r.rsplit_once('=') {
            Some((id, n)) => (Some(id), n),
            None => (None, r.as_str()),
        };
        let n: u32 = n.trim().parse().map_err(|_| {
            UsageError(format!(
                "--replicas `{r}`: expected N or ID=N, N a whole number of at least 1"
            ))
        })?;
        match id {
            Some(id) if !id.is_empty() => nodes.push((id.to_string(), n)),
            Some(_) => {
                return Err(UsageError(format!("--replicas `{r}`: the node id is empty")).into());
            }
            None => all = Some(n),
        }
    }
    Ok((all, nodes))
}

pub fn k8s(a: K8sArgs) -> anyhow::Result<()> {
    let (all, per_node) = replicas(&a.replicas)?;
    let train = a.train_shards.map(|shards| TrainJob {
        shards,
        learner: a.learner.clone().unwrap_or_default(),
        data: a.data.clone().unwrap_or_default(),
        target: a.target.clone(),
        set: a.set.clone(),
        seed: a.seed,
        out: a.train_out.clone(),
    });
    let opts = K8sOptions {
        name: a.name,
        namespace: a.namespace,
        image: a.image,
        models_claim: a.models_claim,
        replicas: all,
        node_replicas: per_node,
        front_replicas: a.front_replicas,
        cpu: a.cpu,
        memory: a.memory,
        train,
    };
    // Everything is made before anything is written: a mistake leaves
    // the folder as it was.
    let out = GraphFile::read(&a.config)
        .and_then(|graph| deploy::k8s::manifests(&graph, &opts))
        .map_err(user_error)?;
    let removed = deploy::write(&a.out, &out)?;
    for n in &out.notes {
        eprintln!("note: {n}");
    }
    for p in &removed {
        eprintln!("removed {} (no longer in the deployment)", p.display());
    }
    for (p, _) in &out.files {
        outln!("{}", a.out.join(p).display());
    }
    eprintln!(
        "apply with: kubectl apply -f {} (see its README.md)",
        a.out.display()
    );
    Ok(())
}

/// Graph problems keep their type (exit code 2 with every line); a bad
/// option or an unreadable file is a usage error.
fn user_error(e: DeployError) -> anyhow::Error {
    match e {
        DeployError::Graph(g) => g.into(),
        e @ (DeployError::Option(_) | DeployError::Read { .. }) => UsageError(e.to_string()).into(),
        e @ DeployError::Write { .. } => e.into(),
    }
}
