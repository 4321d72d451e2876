//! End-to-end tests: they run the built `tessera` binary with the built
//! plugins, as a user would.

mod adaboost;
mod bagging;
mod cli;
mod compress;
mod decompose;
mod deploy;
mod errors;
mod golden;
mod gradient_boosting;
mod graph;
mod http;
mod import;
mod loading;
mod mlp;
mod nesting;
mod remote;
mod serve;
mod shard;
mod template;
mod util;
