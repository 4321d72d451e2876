//! tessera-host: everything around the plugins.
//!
//! * [`plugin`] finds, loads and checks plugins, and indexes their
//!   components by name;
//! * [`data`] reads CSV tables into feature matrices and targets;
//! * [`artifact`] writes and reads model files (header + plugin payload);
//! * [`import`] reads LightGBM and XGBoost models into the tree-ensemble IR;
//! * [`model`] joins a plugin model with what the host knows about it
//!   (feature names, class labels) to predict in the user's terms;
//! * [`train`] runs a learner on a table and produces a model file;
//! * [`shard`] trains one shard of an ensemble and merges shards into
//!   the whole model;
//! * [`metrics`] scores predictions;
//! * [`oip`] reads and writes the Open Inference Protocol v2's messages
//!   (JSON and binary tensors), for the server and for remote nodes;
//! * [`serve`] serves the graph over HTTP (Open Inference Protocol v2);
//! * [`deploy`] writes deployment files for a graph (Kubernetes manifests);
//! * [`context`] is the [`HostContext`](tessera_core::HostContext) handed to
//!   every plugin call.
//!
//! The `tessera` binary is a thin command line over this library; services
//! can embed the same calls in-process.

pub mod artifact;
pub mod compress;
pub mod context;
pub mod data;
pub mod decompose;
pub mod deploy;
pub mod graph;
pub mod import;
pub mod metrics;
pub mod model;
pub mod oip;
pub mod params;
pub mod plugin;
pub mod serve;
pub mod shard;
pub mod train;

pub use artifact::{Artifact, ArtifactError, Header};
pub use context::RunContext;
pub use data::{DataError, Table};
pub use model::{CallError, LoadedModel};
pub use plugin::{LoadError, Registry};
