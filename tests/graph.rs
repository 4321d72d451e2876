//! Serving graphs (TOML) through the real binary: `graph check` lists
//! every problem with its line and key, one bad file per kind of problem;
//! `predict --graph` runs decomposed models and combiners in-process and
//! answers as the models do; `graph show` draws DOT.

use std::path::Path;

use crate::util::{TempDir, data, plugin_dir, read, s, tessera, train, write_lines};

const PLUGINS: &[&str] = &[
    "tessera_forest",
    "tessera_boosting",
    "tessera_mlp",
    "tessera_decompose",
];

/// Trains `learner` on iris with `settings` into `dir/name.tsr`.
fn model(plugins: &Path, dir: &TempDir, name: &str, learner: &str, csv: &Path, settings: &[&str]) {
    let mut args = vec!["--seed", "0"];
    args.extend_from_slice(settings);
    train(
        plugins,
        learner,
        csv,
        "label",
        &args,
        &dir.join(&format!("{name}.tsr")),
    )
    .ok();
}

/// Writes `text` as `dir/name.toml`.
fn toml(dir: &TempDir, name: &str, text: &str) -> String {
    let lines: Vec<String> = text.lines().map(str::to_string).collect();
    s(&write_lines(dir, name, &lines)).to_string()
}

const INPUT: &str = "[inputs.features]\nnames = [\"f0\", \"f1\", \"f2\", \"f3\"]\n";

#[test]
fn every_problem_is_named_with_its_line_and_key() {
    let plugins = plugin_dir(PLUGINS);
    let p = plugins.path();
    let tmp = TempDir::new("graph-check");
    let iris = data("iris.train.csv");
    let header = read(&iris).lines().next().unwrap().to_string();
    assert!(header.starts_with("f0,f1,f2,f3,"), "{header}");
    model(
        p,
        &tmp,
        "rf",
        "random_forest",
        &iris,
        &["--set", "n_estimators=5"],
    );
    // The same features, two classes.
    let lines: Vec<String> = read(&iris)
        .lines()
        .enumerate()
        .map(|(i, l)| {
            if i == 0 {
                return l.to_string();
            }
            let (x, label) = l.rsplit_once(',').unwrap();
            format!("{x},{}", if label == "0" { "a" } else { "b" })
        })
        .collect();
    let binary = write_lines(&tmp, "binary.csv", &lines);
    model(
        p,
        &tmp,
        "bin",
        "random_forest",
        &binary,
        &["--set", "n_estimators=5"],
    );
    model(
        p,
        &tmp,
        "reg",
        "gradient_boosting",
        &iris,
        &["--task", "regression", "--set", "n_estimators=5"],
    );
    let cases: Vec<(&str, String, Vec<&str>)> = vec![
        (
            "unknown input",
            format!("{INPUT}[nodes.rf]\nmodel = \"rf.tsr\"\ninputs = [\"featurs\"]\n[outputs.o]\nfrom = \"rf\"\n"),
            vec!["line 5: `nodes.rf.inputs`: unknown input `featurs`; did you mean `features`?"],
        ),
        (
            "misspelt model key",
            format!("{INPUT}[nodes.rf]\nmodle = \"rf.tsr\"\ninputs = [\"features\"]\n[outputs.o]\nfrom = \"rf\"\n"),
            vec![
                "line 4: `nodes.rf.modle`: unknown key",
                "did you mean `model`?",
                "`nodes.rf`: a node needs `model",
            ],
        ),
        (
            "cycle",
            format!(
                "{INPUT}[nodes.a]\ncombine = \"mean_proba\"\ninputs = [\"b\"]\n\
                 [nodes.b]\ncombine = \"mean_proba\"\ninputs = [\"a\"]\n[outputs.o]\nfrom = \"a\"\n"
            ),
            vec!["cycle: a -> b -> a"],
        ),
        (
            "unreachable",
            format!(
                "{INPUT}[nodes.rf]\nmodel = \"rf.tsr\"\ninputs = [\"features\"]\n\
                 [nodes.spare]\nmodel = \"rf.tsr\"\ninputs = [\"features\"]\n[outputs.o]\nfrom = \"rf\"\n"
            ),
            vec!["line 6: `nodes.spare`: no output reads this node (unreachable)"],
        ),
        (
            "class count",
            format!(
                "{INPUT}[nodes.rf]\nmodel = \"rf.tsr\"\ninputs = [\"features\"]\n\
                 [nodes.bin]\nmodel = \"bin.tsr\"\ninputs = [\"features\"]\n\
                 [nodes.both]\ncombine = \"mean_proba\"\ninputs = [\"rf\", \"bin\"]\n[outputs.o]\nfrom = \"both\"\n"
            ),
            vec!["line 9: `nodes.both`: class-count mismatch between its inputs: `rf` has 3 classes"],
        ),
        (
            "output shape",
            format!(
                "{INPUT}[nodes.rf]\nmodel = \"rf.tsr\"\ninputs = [\"features\"]\n\
                 [nodes.reg]\nmodel = \"reg.tsr\"\ninputs = [\"features\"]\n\
                 [nodes.s]\ncombine = \"sum\"\ninputs = [\"rf\", \"reg\"]\n[outputs.o]\nfrom = \"s\"\n"
            ),
            vec!["`nodes.s`: output-shape mismatch between its inputs: `rf` has 3 values per row, `reg` has 1"],
        ),
        (
            "missing file and unknown key",
            format!("{INPUT}[nodes.rf]\nmodel = \"nope.tsr\"\ninput = [\"features\"]\n[outputs.o]\nfrom = \"rf\"\n"),
            vec![
                "3 problems",
                "line 3: `nodes.rf`: missing `inputs`",
                "line 4: `nodes.rf.model`: no model file",
                "line 5: `nodes.rf.input`: unknown key",
                "did you mean `inputs`?",
            ],
        ),
        (
            "unknown output node and combiner",
            format!(
                "{INPUT}[nodes.c]\ncombine = \"avg\"\ninputs = [\"features\"]\n[outputs.o]\nfrom = \"cc\"\n"
            ),
            vec!["`nodes.c.combine`: unknown combiner \"avg\"", "`outputs.o.from`: unknown node `cc`"],
        ),
        (
            "bad TOML",
            "[nodes.x\nmodel = 1\n".to_string(),
            vec!["line 1: `(file)`: not valid TOML"],
        ),
        (
            "a feature the input lacks",
            "[inputs.features]\nnames = [\"a\", \"b\", \"c\", \"d\"]\n[nodes.rf]\nmodel = \"rf.tsr\"\ninputs = [\"features\"]\n[outputs.o]\nfrom = \"rf\"\n".to_string(),
            vec!["`nodes.rf`", "needs feature `f0`"],
        ),
    ];
    for (what, text, pieces) in cases {
        let path = toml(&tmp, &format!("{}.toml", what.replace(' ', "_")), &text);
        let mut expected = vec![path.as_str()];
        expected.extend(pieces);
        tessera(p, &["graph", "check", &path]).fails(2, &expected);
    }
    // A model whose plugin is not loaded.
    let only_mlp = plugin_dir(&["tessera_mlp"]);
    let path = toml(
        &tmp,
        "plugin.toml",
        &format!(
            "{INPUT}[nodes.rf]\nmodel = \"rf.tsr\"\ninputs = [\"features\"]\n[outputs.o]\nfrom = \"rf\"\n"
        ),
    );
    tessera(only_mlp.path(), &["graph", "check", &path]).fails(2, &["`nodes.rf`", "forest"]);
}

/// Class probabilities of `tessera predict <source..> --data <data>
/// --proba`, row by row.
fn predicted(plugins: &Path, source: &[&str], data: &Path) -> Vec<Vec<f64>> {
    let mut args = vec!["predict", "--data", s(data), "--proba"];
    args.extend_from_slice(source);
    proba(tessera(plugins, &args).ok())
}

/// Whether two tables of probabilities agree within `1e-6`.
fn agree(a: &[Vec<f64>], b: &[Vec<f64>]) -> bool {
    a.len() == b.len()
        && a.iter()
            .zip(b)
            .all(|(x, y)| x.iter().zip(y).all(|(u, v)| (u - v).abs() < 1e-6))
}

fn proba(csv: &str) -> Vec<Vec<f64>> {
    csv.lines()
        .skip(1)
        .map(|l| l.split(',').skip(1).map(|v| v.parse().unwrap()).collect())
        .collect()
}

#[test]
fn graphs_answer_as_their_models_do() {
    let plugins = plugin_dir(PLUGINS);
    let p = plugins.path();
    let tmp = TempDir::new("graph-run");
    let iris = data("iris.train.csv");
    let test = data("iris.test.csv");
    model(
        p,
        &tmp,
        "rf",
        "random_forest",
        &iris,
        &["--set", "n_estimators=30"],
    );
    model(
        p,
        &tmp,
        "rf2",
        "random_forest",
        &iris,
        &["--set", "n_estimators=30", "--set", "random_state=7"],
    );
    model(
        p,
        &tmp,
        "gb",
        "gradient_boosting",
        &iris,
        &["--set", "n_estimators=20"],
    );
    let text = format!(
        "{INPUT}\n[nodes.rf]\nmodel = \"rf.tsr\"\ninputs = [\"features\"]\n\
         decompose = {{ with = \"shard\", params = {{ parts = 3 }} }}\n\
         [nodes.rf2]\nmodel = \"rf2.tsr\"\ninputs = [\"features\"]\n\
         [nodes.gb]\nmodel = \"gb.tsr\"\ninputs = [\"features\"]\n\
         decompose = {{ with = \"one_vs_rest\" }}\n\
         [nodes.forests]\ncombine = \"mean_proba\"\ninputs = [\"rf\", \"rf2\"]\n\
         [outputs.rf]\nfrom = \"rf\"\n[outputs.gb]\nfrom = \"gb\"\n[outputs.forests]\nfrom = \"forests\"\n"
    );
    let graph = toml(&tmp, "graph.toml", &text);
    tessera(p, &["graph", "check", &graph]).ok();
    let run = |args: &[&str]| -> Vec<Vec<f64>> {
        let mut a = vec!["--threads", "2"];
        a.extend_from_slice(args);
        predicted(p, &a, &test)
    };
    let single = |m: &str| run(&["--model", s(&tmp.join(&format!("{m}.tsr")))]);
    let close = |a: &[Vec<f64>], b: &[Vec<f64>], what: &str| {
        assert_eq!(a.len(), b.len(), "{what}");
        for (x, y) in a.iter().zip(b) {
            for (u, v) in x.iter().zip(y) {
                assert!(
                    (u - v).abs() <= 1e-6 * v.abs().max(1e-3),
                    "{what}: {u} vs {v}"
                );
            }
        }
    };
    let (rf, rf2, gb) = (single("rf"), single("rf2"), single("gb"));
    close(
        &run(&["--graph", &graph, "--output", "rf"]),
        &rf,
        "sharded forest",
    );
    close(
        &run(&["--graph", &graph, "--output", "gb"]),
        &gb,
        "one-vs-rest boosting",
    );
    let mean: Vec<Vec<f64>> = rf
        .iter()
        .zip(&rf2)
        .map(|(a, b)| a.iter().zip(b).map(|(x, y)| (x + y) / 2.0).collect())
        .collect();
    close(
        &run(&["--graph", &graph, "--output", "forests"]),
        &mean,
        "mean of two forests",
    );
    // A decompose fragment is itself a graph.
    let parts = tmp.join("parts");
    tessera(
        p,
        &[
            "decompose",
            "--model",
            s(&tmp.join("gb.tsr")),
            "--with",
            "shard",
            "--set",
            "parts=4",
            "--out",
            s(&parts),
        ],
    )
    .ok();
    let fragment = parts.join("graph.toml");
    close(
        &run(&["--graph", s(&fragment), "--output", "gb"]),
        &gb,
        "decomposition fragment",
    );
    // Unknown outputs are named; DOT shows every node.
    tessera(
        p,
        &[
            "predict",
            "--graph",
            &graph,
            "--output",
            "rff",
            "--data",
            s(&test),
        ],
    )
    .fails(1, &["no output `rff`", "did you mean `rf`?"]);
    let dot = tessera(p, &["graph", "show", &graph]).ok().to_string();
    for piece in [
        "digraph tessera",
        "\"rf\" -> \"forests\"",
        "3 parts",
        "output:gb",
    ] {
        assert!(dot.contains(piece), "DOT lacks {piece:?}:\n{dot}");
    }
}

#[test]
fn a_killed_worker_fails_its_request_and_the_next_gets_a_new_one() {
    use tessera_host::{Registry, graph::Graph};
    let plugins = plugin_dir(&["tessera_test_faulty"]);
    let tmp = TempDir::new("graph-worker");
    let kill = tmp.join("kill");
    let model = tmp.join("killer.tsr");
    let setting = format!("kill_file={:?}", s(&kill));
    train(
        plugins.path(),
        "kill_predict",
        &data("iris.train.csv"),
        "label",
        &["--set", &setting],
        &model,
    )
    .ok();
    let mut registry = Registry::new();
    registry.load_dir(plugins.path()).unwrap();
    let text = format!(
        "{INPUT}[nodes.k]\nmodel = {:?}\ninputs = [\"features\"]\nprocess = true\n\
         [outputs.o]\nfrom = \"k\"\n",
        s(&model)
    );
    let graph = Graph::from_toml(&registry, &text, tmp.path(), Path::new("worker.toml")).unwrap();
    graph.set_worker_program(&crate::util::tessera_bin());
    let rows = [0.5f32; 8];
    let ok = graph.predict("o", &rows, 1).unwrap();
    assert_eq!(ok.values, vec![f64::from(1.0f32 / 3.0); 6]);
    // The next request kills its worker with SIGKILL: that request
    // fails, naming what happened, and this process lives on.
    std::fs::write(&kill, "").unwrap();
    let e = graph.predict("o", &rows, 1).unwrap_err();
    let msg = format!("{e:#}");
    assert!(
        msg.contains("node `k`") && msg.contains("killed by signal 9"),
        "{msg}"
    );
    assert!(!kill.exists(), "the worker did not get to the kill file");
    // A new worker serves the request after.
    assert_eq!(graph.predict("o", &rows, 1).unwrap().values, ok.values);
}

#[test]
fn a_node_can_train_its_model_when_the_graph_loads() {
    let plugins = plugin_dir(PLUGINS);
    let p = plugins.path();
    let tmp = TempDir::new("graph-train");
    let iris = data("iris.train.csv");
    let test = data("iris.test.csv");
    model(
        p,
        &tmp,
        "rf",
        "random_forest",
        &iris,
        &["--set", "n_estimators=10"],
    );
    let text = format!(
        "{INPUT}[nodes.t]\ninputs = [\"features\"]\n\
         train = {{ learner = \"random_forest\", data = {:?}, target = \"label\", \
         params = {{ n_estimators = 10 }}, seed = 0 }}\n[outputs.o]\nfrom = \"t\"\n",
        s(&iris)
    );
    let graph = toml(&tmp, "train.toml", &text);
    let g = predicted(p, &["--graph", &graph, "--output", "o"], &test);
    let m = predicted(p, &["--model", s(&tmp.join("rf.tsr"))], &test);
    // The same learner, data, parameters and seed: the same forest.
    assert!(agree(&g, &m), "{g:?}\nvs\n{m:?}");
    let bad = toml(
        &tmp,
        "bad-train.toml",
        &format!(
            "{INPUT}[nodes.t]\ninputs = [\"features\"]\ntrain = {{ learner = \"random_forest\" }}\n[outputs.o]\nfrom = \"t\"\n"
        ),
    );
    tessera(p, &["graph", "check", &bad]).fails(
        2,
        &["line 5: `nodes.t.train`: needs `learner`, `data` and `target`"],
    );
}

#[test]
fn routers_send_each_request_one_way_by_its_id() {
    use tessera_host::{Registry, graph::Graph};
    let plugins = plugin_dir(PLUGINS);
    let p = plugins.path();
    let tmp = TempDir::new("graph-route");
    let iris = data("iris.train.csv");
    model(
        p,
        &tmp,
        "rf",
        "random_forest",
        &iris,
        &["--set", "n_estimators=10"],
    );
    model(
        p,
        &tmp,
        "gb",
        "gradient_boosting",
        &iris,
        &["--set", "n_estimators=10"],
    );
    model(
        p,
        &tmp,
        "reg",
        "gradient_boosting",
        &iris,
        &["--task", "regression", "--set", "n_estimators=5"],
    );
    let mut registry = Registry::new();
    registry.load_dir(p).unwrap();
    let node = |id: &str| format!("[nodes.{id}]\nmodel = \"{id}.tsr\"\ninputs = [\"features\"]\n");
    let text = format!(
        "{INPUT}{}{}[nodes.ab]\nroute = [0.5, 0.5]\ninputs = [\"rf\", \"gb\"]\n\
         [outputs.ab]\nfrom = \"ab\"\n[outputs.rf]\nfrom = \"rf\"\n[outputs.gb]\nfrom = \"gb\"\n",
        node("rf"),
        node("gb")
    );
    let graph = Graph::from_toml(&registry, &text, tmp.path(), Path::new("route.toml")).unwrap();
    let rows = [5.0f32, 3.4, 1.5, 0.2, 6.7, 3.0, 5.2, 2.3];
    let rf = graph.predict("rf", &rows, 1).unwrap().values;
    let gb = graph.predict("gb", &rows, 1).unwrap().values;
    assert_ne!(rf, gb);
    let (mut to_rf, mut to_gb) = (0, 0);
    for i in 0..40 {
        let id = format!("request-{i}");
        let a = graph.predict_request("ab", &rows, 1, &id).unwrap().values;
        assert_eq!(
            graph.predict_request("ab", &rows, 1, &id).unwrap().values,
            a,
            "{id}"
        );
        if a == rf {
            to_rf += 1;
        } else {
            assert_eq!(a, gb, "{id}");
            to_gb += 1;
        }
    }
    assert!(to_rf >= 10 && to_gb >= 10, "{to_rf} to rf, {to_gb} to gb");
    // Branches must answer alike.
    let bad = format!(
        "{INPUT}{}{}[nodes.ab]\nroute = [0.9, 0.1]\ninputs = [\"rf\", \"reg\"]\n[outputs.ab]\nfrom = \"ab\"\n",
        node("rf"),
        node("reg")
    );
    let path = toml(&tmp, "bad-route.toml", &bad);
    tessera(p, &["graph", "check", &path])
        .fails(2, &["`nodes.ab`", "a router's inputs must answer alike"]);
    let bad = format!(
        "{INPUT}{}[nodes.ab]\nroute = [1]\ninputs = [\"rf\", \"rf\"]\n[outputs.ab]\nfrom = \"ab\"\n",
        node("rf")
    );
    let path = toml(&tmp, "bad-shares.toml", &bad);
    tessera(p, &["graph", "check", &path]).fails(2, &["`nodes.ab.route`: 1 shares for 2 inputs"]);
}

#[test]
fn a_failing_node_is_covered_by_its_fallback() {
    use tessera_host::{Registry, graph::Graph};
    let plugins = plugin_dir(&["tessera_test_faulty", "tessera_forest"]);
    let p = plugins.path();
    let tmp = TempDir::new("graph-fallback");
    let iris = data("iris.train.csv");
    let kill = tmp.join("kill");
    let setting = format!("kill_file={:?}", s(&kill));
    train(
        p,
        "kill_predict",
        &iris,
        "label",
        &["--set", &setting],
        &tmp.join("k.tsr"),
    )
    .ok();
    model(
        p,
        &tmp,
        "rf",
        "random_forest",
        &iris,
        &["--set", "n_estimators=5"],
    );
    let mut registry = Registry::new();
    registry.load_dir(p).unwrap();
    let text = format!(
        "{INPUT}[nodes.k]\nmodel = \"k.tsr\"\ninputs = [\"features\"]\nprocess = true\n\
         fallback = \"rf\"\n[nodes.rf]\nmodel = \"rf.tsr\"\ninputs = [\"features\"]\n\
         [outputs.o]\nfrom = \"k\"\n"
    );
    let graph = Graph::from_toml(&registry, &text, tmp.path(), Path::new("fallback.toml")).unwrap();
    graph.set_worker_program(&crate::util::tessera_bin());
    let rows = [5.0f32, 3.4, 1.5, 0.2];
    let normal = graph.predict("o", &rows, 1).unwrap();
    assert!(normal.notes.is_empty());
    std::fs::write(&kill, "").unwrap();
    let covered = graph.predict("o", &rows, 1).unwrap();
    assert_eq!(covered.notes.len(), 1, "{:?}", covered.notes);
    assert!(
        covered.notes[0].contains("node `k` failed") && covered.notes[0].contains("fallback `rf`"),
        "{:?}",
        covered.notes
    );
    assert_ne!(
        covered.values, normal.values,
        "the forest, not the uniform killer, answered"
    );
    // The worker is back for the next request.
    assert_eq!(graph.predict("o", &rows, 1).unwrap(), normal);
    // A fallback must answer alike and must not read the node it covers.
    let bad = format!(
        "{INPUT}[nodes.rf]\nmodel = \"rf.tsr\"\ninputs = [\"features\"]\nfallback = \"m\"\n\
         [nodes.m]\ncombine = \"mean_proba\"\ninputs = [\"rf\"]\n[outputs.o]\nfrom = \"m\"\n"
    );
    let path = toml(&tmp, "bad-fallback.toml", &bad);
    tessera(p, &["graph", "check", &path]).fails(2, &["`nodes.rf.fallback`: `m` reads `rf`"]);
}

#[test]
fn a_stack_trains_its_meta_model_on_its_inputs_answers() {
    let plugins = plugin_dir(PLUGINS);
    let p = plugins.path();
    let tmp = TempDir::new("graph-stack");
    let iris = data("iris.train.csv");
    let test = data("iris.test.csv");
    model(
        p,
        &tmp,
        "rf",
        "random_forest",
        &iris,
        &["--set", "n_estimators=10"],
    );
    model(
        p,
        &tmp,
        "gb",
        "gradient_boosting",
        &iris,
        &["--set", "n_estimators=10"],
    );
    let text = format!(
        "{INPUT}[nodes.rf]\nmodel = \"rf.tsr\"\ninputs = [\"features\"]\n\
         [nodes.gb]\nmodel = \"gb.tsr\"\ninputs = [\"features\"]\n\
         [nodes.meta]\ncombine = \"stack\"\ninputs = [\"rf\", \"gb\"]\n\
         train = {{ learner = \"gradient_boosting\", data = {:?}, target = \"label\", \
         params = {{ n_estimators = 20 }}, seed = 0 }}\n[outputs.o]\nfrom = \"meta\"\n",
        s(&iris)
    );
    let graph = toml(&tmp, "stack.toml", &text);
    let out = tessera(
        p,
        &[
            "predict",
            "--graph",
            &graph,
            "--output",
            "o",
            "--data",
            s(&test),
        ],
    );
    let predicted: Vec<String> = out.ok().lines().skip(1).map(str::to_string).collect();
    let truth: Vec<String> = read(&test)
        .lines()
        .skip(1)
        .map(|l| l.rsplit(',').next().unwrap().to_string())
        .collect();
    let right = predicted.iter().zip(&truth).filter(|(a, b)| a == b).count();
    assert!(
        right * 10 >= truth.len() * 9,
        "{right} of {} right",
        truth.len()
    );
    let dot = tessera(p, &["graph", "show", &graph]).ok().to_string();
    assert!(dot.contains("stack (gradient_boosting)"), "{dot}");
    let bad = format!(
        "{INPUT}[nodes.rf]\nmodel = \"rf.tsr\"\ninputs = [\"features\"]\n\
         [nodes.meta]\ncombine = \"stack\"\ninputs = [\"rf\"]\n[outputs.o]\nfrom = \"meta\"\n"
    );
    let path = toml(&tmp, "bad-stack.toml", &bad);
    tessera(p, &["graph", "check", &path]).fails(2, &["`nodes.meta.train`: expected { learner"]);
}

#[test]
fn compressors_apply_when_the_graph_loads() {
    let plugins = plugin_dir(&["tessera_forest", "tessera_boosting", "tessera_test_faulty"]);
    let p = plugins.path();
    let tmp = TempDir::new("graph-compress");
    let iris = data("iris.train.csv");
    let test = data("iris.test.csv");
    model(
        p,
        &tmp,
        "rf10",
        "random_forest",
        &iris,
        &["--set", "n_estimators=10"],
    );
    model(
        p,
        &tmp,
        "rf3",
        "random_forest",
        &iris,
        &["--set", "n_estimators=3"],
    );
    let text = format!(
        "{INPUT}[nodes.small]\nmodel = \"rf10.tsr\"\ninputs = [\"features\"]\n\
         compress = [{{ with = \"first_trees\", params = {{ n = 3 }} }}]\n[outputs.o]\nfrom = \"small\"\n"
    );
    let graph = toml(&tmp, "compress.toml", &text);
    let g = predicted(p, &["--graph", &graph, "--output", "o"], &test);
    let t3 = predicted(p, &["--model", s(&tmp.join("rf3.tsr"))], &test);
    let t10 = predicted(p, &["--model", s(&tmp.join("rf10.tsr"))], &test);
    // A forest's trees do not depend on how many follow them: the first 3
    // of 10 are the forest of 3.
    assert!(
        agree(&g, &t3),
        "compressed forest differs from the 3-tree forest"
    );
    assert!(!agree(&g, &t10), "compression changed nothing");
    let bad = format!(
        "{INPUT}[nodes.small]\nmodel = \"rf10.tsr\"\ninputs = [\"features\"]\n\
         compress = [{{ with = \"quantise\" }}]\n[outputs.o]\nfrom = \"small\"\n"
    );
    let path = toml(&tmp, "bad-compress.toml", &bad);
    tessera(p, &["graph", "check", &path]).fails(2, &["`nodes.small`", "quantise"]);
}
