//! Embedding tessera in another program: load the plugins, build a graph
//! from TOML text, and answer rows in-process through the same code the
//! command line and the server use.
//!
//! ```sh
//! cargo build --release
//! ./target/release/tessera train --learner random_forest --data examples/data/iris.train.csv \
//!     --target label --seed 0 --out target/iris.tsr
//! cargo run --release -p tessera-host --example embed -- target/release target/iris.tsr
//! ```
//!
//! The graph runs the forest twice, once whole and once split into three
//! shards on separate threads, and averages the two (which changes
//! nothing, as the shards recombine exactly: a check, not a use case).

use std::{path::Path, process::ExitCode};

use tessera_host::{Registry, graph::Graph};

fn run(plugins: &Path, model: &Path) -> anyhow::Result<()> {
    let mut registry = Registry::new();
    registry.load_dir(plugins)?;
    let model = model.canonicalize()?;
    let text = format!(
        r#"
[inputs.features]
names = ["f0", "f1", "f2", "f3"]

[nodes.whole]
model = {model:?}
inputs = ["features"]

[nodes.sharded]
model = {model:?}
inputs = ["features"]
decompose = {{ with = "shard", params = {{ parts = 3 }} }}

[nodes.both]
combine = "mean_proba"
inputs = ["whole", "sharded"]

[outputs.iris]
from = "both"
"#
    );
    let graph = Graph::from_toml(
        &registry,
        &text,
        Path::new("."),
        Path::new("embedded graph"),
    )?;
    let rows: [[f32; 4]; 3] = [
        [5.1, 3.5, 1.4, 0.2],
        [6.0, 2.7, 5.1, 1.6],
        [6.9, 3.1, 5.4, 2.1],
    ];
    let x: Vec<f32> = rows.iter().flatten().copied().collect();
    let answer = graph.predict("iris", &x, 2)?;
    let labels = answer.labels().unwrap_or_default();
    for (row, (label, p)) in rows
        .iter()
        .zip(labels.iter().zip(answer.values.chunks(answer.width)))
    {
        println!("{row:?} -> {label} {p:.3?}");
    }
    Ok(())
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [plugins, model] = args.as_slice() else {
        eprintln!("usage: embed PLUGIN_DIR MODEL.tsr (a model trained on iris)");
        return ExitCode::from(2);
    };
    match run(Path::new(plugins), Path::new(model)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
