//! Running a graph: the nodes an output needs, in waves of nodes whose
//! inputs are ready, each wave's nodes side by side with the thread
//! budget shared among them.

use std::{borrow::Cow, fmt::Write as _};

use tessera_core::{ir::Link, recombine::apply_link};

use super::{Combine, Graph, Node, Op, Source};
use crate::{RunContext, decompose::whole_answer, model::LoadedModel};

/// An output's answer for a batch of rows.
#[derive(Clone, Debug, PartialEq)]
pub struct Answer {
    /// Rows answered.
    pub rows: usize,
    /// Values per row.
    pub width: usize,
    /// Class labels: when not empty, `values` are class probabilities
    /// (one column per class).
    pub classes: Vec<String>,
    /// Row-major values.
    pub values: Vec<f64>,
    /// What went wrong on the way and was covered by a fallback (or left
    /// out by a degrading combiner), one line per failed node.
    pub notes: Vec<String>,
    /// Nodes with `on_failure = "degrade"` that failed: the answer was
    /// combined without them.
    pub missing: Vec<String>,
}

impl Answer {
    /// The predicted label of every row (the most probable class), or
    /// `None` for values.
    pub fn labels(&self) -> Option<Vec<&str>> {
        if self.classes.is_empty() {
            return None;
        }
        Some(
            self.values
                .chunks_exact(self.width.max(1))
                .map(|p| self.classes[argmax(p)].as_str())
                .collect(),
        )
    }
}

/// Index of the largest value (the first of ties).
fn argmax(v: &[f64]) -> usize {
    let mut best = 0;
    for (i, x) in v.iter().enumerate() {
        if *x > v[best] {
            best = i;
        }
    }
    best
}

impl Node {
    /// The sources this node reads for a request at `share`: a router's
    /// chosen branch, every input otherwise.
    fn reads(&self, share: f64) -> &[Source] {
        match &self.op {
            Op::Route { cumulative } => {
                std::slice::from_ref(&self.inputs[branch(cumulative, share)])
            }
            _ => &self.inputs,
        }
    }
}

/// Where request `id` falls in [0, 1): FNV-1a of its bytes, mixed so
/// that ids differing in one character spread over the whole range (the
/// 64-bit finaliser of MurmurHash3), top 53 bits.
fn route_share(id: &str) -> f64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in id.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^= h >> 33;
    (h >> 11) as f64 / (1u64 << 53) as f64
}

/// The branch of a router with these cumulative shares that `share`
/// falls in.
fn branch(cumulative: &[f64], share: f64) -> usize {
    cumulative
        .iter()
        .position(|&c| share < c)
        .unwrap_or(cumulative.len() - 1)
}

/// The answers ready for a wave: the input rows and the nodes run so far.
struct Ready<'a> {
    x: &'a [f64],
    x32: &'a [f32],
    width: usize,
    results: &'a [Option<Vec<f64>>],
    /// Degraded nodes (failed; their readers answer without them).
    missing: &'a [bool],
    nodes: &'a [Node],
}

impl<'a> Ready<'a> {
    /// A source's values and width.
    fn get(&self, s: &Source) -> (&'a [f64], usize) {
        match s {
            Source::Input(_) => (self.x, self.width),
            Source::Node(n) => (
                self.results[*n].as_deref().expect("inputs run first"),
                self.nodes[*n].shape.width,
            ),
        }
    }
}

impl<'a> Ready<'a> {
    /// A model's rows from source `s`: the graph's input itself when the
    /// model takes its columns as they are, otherwise a copy (columns
    /// picked by name, or a node's answers as `f32`).
    fn rows_for(&self, s: &Source, pick: &Option<Vec<usize>>) -> Cow<'a, [f32]> {
        let (values, cols) = self.get(s);
        let base: Cow<'a, [f32]> = match s {
            Source::Input(_) => Cow::Borrowed(self.x32),
            Source::Node(_) => Cow::Owned(values.iter().map(|&v| v as f32).collect()),
        };
        match pick {
            None => base,
            Some(p) => Cow::Owned(
                base.chunks_exact(cols.max(1))
                    .flat_map(|row| p.iter().map(|&j| row[j]))
                    .collect(),
            ),
        }
    }
}

impl Graph<'_> {
    /// Answers output `output` for `rows` of the graph's one input
    /// (row-major, [`Graph::input_width`] values each), within a budget
    /// of `threads` threads.
    ///
    /// # Errors
    /// An unknown output, rows of the wrong width, or a model's error.
    pub fn predict(&self, output: &str, x: &[f32], threads: usize) -> anyhow::Result<Answer> {
        let id = self
            .requests
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
            .to_string();
        self.predict_request(output, x, threads, &id)
    }

    /// [`Graph::predict`] for the request `id`: routers send it to the
    /// input its id hashes to, so the same id always takes the same way
    /// (without an id, [`Graph::predict`] numbers the calls).
    ///
    /// # Errors
    /// As [`Graph::predict`].
    pub fn predict_request(
        &self,
        output: &str,
        x: &[f32],
        threads: usize,
        id: &str,
    ) -> anyhow::Result<Answer> {
        let share = route_share(id);
        let width = self.input_width()?;
        if width == 0 || !x.len().is_multiple_of(width) {
            anyhow::bail!(
                "{}: {} values are not whole rows of {width}",
                self.path.display(),
                x.len()
            );
        }
        let Some(o) = self.config.outputs.iter().find(|o| o.name == output) else {
            let names = self.outputs();
            anyhow::bail!(
                "{}: no output `{output}` (the graph has: {}){}",
                self.path.display(),
                names.join(", "),
                super::config::hint(output, &names)
            );
        };
        let rows = x.len() / width;
        let target = self
            .nodes
            .iter()
            .position(|n| n.id == o.from)
            .expect("outputs name loaded nodes");
        let (values, notes, missing) = self.run_to(target, x, threads, share)?;
        let shape = &self.nodes[target].shape;
        Ok(Answer {
            rows,
            width: shape.width,
            classes: shape.classes.clone(),
            values,
            notes,
            missing,
        })
    }

    /// Node `target`'s answer for the rows `x` of the one input, and the
    /// fallbacks taken on the way.
    pub(super) fn run_to(
        &self,
        target: usize,
        x: &[f32],
        threads: usize,
        share: f64,
    ) -> anyhow::Result<(Vec<f64>, Vec<String>, Vec<String>)> {
        let width = self.input_width()?;
        let rows = x.len() / width.max(1);
        let output = &self.nodes[target].id;
        // The nodes this answer needs.
        let mut needed = vec![false; self.nodes.len()];
        self.mark_needed(target, &mut needed, share);
        let mut results: Vec<Option<Vec<f64>>> = vec![None; self.nodes.len()];
        // The input as f64 only when a combiner reads it directly; models
        // read the f32 rows as they are.
        let combiner_reads_input = (0..self.nodes.len()).any(|i| {
            needed[i]
                && matches!(self.nodes[i].op, Op::Combine { .. } | Op::Stack { .. })
                && self.nodes[i]
                    .inputs
                    .iter()
                    .any(|s| matches!(s, Source::Input(_)))
        });
        let x64: Vec<f64> = if combiner_reads_input {
            x.iter().map(|&v| f64::from(v)).collect()
        } else {
            Vec::new()
        };
        // Nodes that failed, and the fallback standing in for each.
        let mut standing_in: Vec<Option<usize>> = vec![None; self.nodes.len()];
        // Nodes that failed with `on_failure = "degrade"`.
        let mut missing = vec![false; self.nodes.len()];
        let mut notes = Vec::new();
        loop {
            for i in 0..self.nodes.len() {
                if let Some(f) = standing_in[i]
                    && results[i].is_none()
                    && results[f].is_some()
                {
                    results[i] = results[f].clone();
                }
            }
            let wave: Vec<usize> = (0..self.nodes.len())
                .filter(|&i| needed[i] && results[i].is_none() && standing_in[i].is_none())
                .filter(|&i| {
                    self.nodes[i].reads(share).iter().all(|s| match s {
                        Source::Node(n) => results[*n].is_some(),
                        Source::Input(_) => true,
                    })
                })
                .collect();
            if wave.is_empty() {
                break;
            }
            let data = Ready {
                x: &x64,
                x32: x,
                width,
                results: &results,
                missing: &missing,
                nodes: &self.nodes,
            };
            // Remote nodes' calls go out first and run on the remote-call
            // runtime while the local nodes compute here.
            let started = std::time::Instant::now();
            let pending: Vec<(usize, super::remote::Pending)> = wave
                .iter()
                .filter_map(|&i| match &self.nodes[i].op {
                    Op::Remote { remote, pick } => {
                        let x = data.rows_for(&self.nodes[i].inputs[0], pick);
                        Some((i, remote.start(&x, rows)))
                    }
                    _ => None,
                })
                .collect();
            let local: Vec<usize> = wave
                .iter()
                .copied()
                .filter(|&i| !matches!(self.nodes[i].op, Op::Remote { .. }))
                .collect();
            let per_node = (threads / local.len().max(1)).max(1);
            let mut computed: Vec<(usize, anyhow::Result<Vec<f64>>)> = if local.len() <= 1 {
                local
                    .iter()
                    .map(|&i| {
                        (
                            i,
                            self.run_timed(&self.nodes[i], &data, rows, threads, share),
                        )
                    })
                    .collect()
            } else {
                // All but the last on threads of their own; the last on
                // this one, which would otherwise only wait.
                let (last, others) = local.split_last().expect("two or more");
                std::thread::scope(|scope| {
                    let handles: Vec<_> = others
                        .iter()
                        .map(|&i| {
                            let node = &self.nodes[i];
                            let data = &data;
                            (
                                i,
                                scope.spawn(move || {
                                    self.run_timed(node, data, rows, per_node, share)
                                }),
                            )
                        })
                        .collect();
                    let here = (
                        *last,
                        self.run_timed(&self.nodes[*last], &data, rows, per_node, share),
                    );
                    let mut done: Vec<(usize, anyhow::Result<Vec<f64>>)> = handles
                        .into_iter()
                        .map(|(i, h)| {
                            let r = h
                                .join()
                                .unwrap_or_else(|_| Err(anyhow::anyhow!("a graph node panicked")));
                            (i, r)
                        })
                        .collect();
                    done.push(here);
                    done
                })
            };
            for (i, p) in pending {
                let r = p.wait();
                if let Some(f) = self.observer.get() {
                    f(&self.nodes[i].id, started.elapsed());
                }
                computed.push((i, r));
            }
            for (i, r) in computed {
                match (r, self.nodes[i].fallback) {
                    (Ok(r), _) => results[i] = Some(r),
                    (Err(e), None) if self.nodes[i].degrade => {
                        notes.push(format!(
                            "node `{}` failed ({e:#}); answered without it",
                            self.nodes[i].id
                        ));
                        missing[i] = true;
                        results[i] = Some(Vec::new());
                    }
                    (Err(e), Some(f)) => {
                        notes.push(format!(
                            "node `{}` failed ({e:#}); its fallback `{}` answered",
                            self.nodes[i].id, self.nodes[f].id
                        ));
                        standing_in[i] = Some(f);
                        // The fallback and what it reads are needed now.
                        self.mark_needed(f, &mut needed, share);
                    }
                    (Err(e), None) => {
                        return Err(e.context(format!(
                            "{}: node `{}`",
                            self.path.display(),
                            self.nodes[i].id
                        )));
                    }
                }
            }
        }
        if results[target].is_none() {
            anyhow::bail!(
                "{}: node `{output}` could not answer ({})",
                self.path.display(),
                notes.join("; ")
            );
        }
        let missing = (0..self.nodes.len())
            .filter(|&i| missing[i])
            .map(|i| self.nodes[i].id.clone())
            .collect();
        Ok((results[target].take().unwrap_or_default(), notes, missing))
    }

    /// Marks `start` and everything it reads (for request share `share`)
    /// as needed.
    fn mark_needed(&self, start: usize, needed: &mut [bool], share: f64) {
        let mut todo = vec![start];
        while let Some(i) = todo.pop() {
            if !needed[i] {
                needed[i] = true;
                todo.extend(self.nodes[i].reads(share).iter().filter_map(|s| match s {
                    Source::Node(n) => Some(*n),
                    Source::Input(_) => None,
                }));
            }
        }
    }

    /// [`Graph::run_node`], timed for the observer when there is one.
    fn run_timed(
        &self,
        node: &Node,
        data: &Ready<'_>,
        rows: usize,
        threads: usize,
        share: f64,
    ) -> anyhow::Result<Vec<f64>> {
        match self.observer.get() {
            None => self.run_node(node, data, rows, threads, share),
            Some(f) => {
                let start = std::time::Instant::now();
                let r = self.run_node(node, data, rows, threads, share);
                f(&node.id, start.elapsed());
                r
            }
        }
    }

    fn run_node(
        &self,
        node: &Node,
        data: &Ready<'_>,
        rows: usize,
        threads: usize,
        share: f64,
    ) -> anyhow::Result<Vec<f64>> {
        let ctx = RunContext::new(self.registry, threads);
        match &node.op {
            Op::Model { model, pick } => {
                let x = data.rows_for(&node.inputs[0], pick);
                Ok(whole_answer(model, ctx.as_abi(), &x)?)
            }
            Op::Parts {
                parts,
                loaded,
                pick,
            } => {
                let x = data.rows_for(&node.inputs[0], pick);
                run_parts(self, parts, loaded, &x, rows, threads)
            }
            Op::Route { .. } => Ok(data.get(&node.reads(share)[0]).0.to_vec()),
            Op::Stack { meta } => {
                let ins: Vec<(&[f64], usize)> = node.inputs.iter().map(|s| data.get(s)).collect();
                let mut x = Vec::with_capacity(rows * ins.iter().map(|(_, w)| w).sum::<usize>());
                for r in 0..rows {
                    for (v, w) in &ins {
                        x.extend(v[r * w..(r + 1) * w].iter().map(|&f| f as f32));
                    }
                }
                Ok(whole_answer(meta, ctx.as_abi(), &x)?)
            }
            Op::Remote { remote, pick } => {
                let x = data.rows_for(&node.inputs[0], pick);
                remote.call(&x, rows)
            }
            Op::Process { worker, pick } => {
                let x = data.rows_for(&node.inputs[0], pick);
                let cols = x.len().checked_div(rows).unwrap_or(0);
                let mut w = worker
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                w.call(&x, rows, cols)
            }
            Op::Combine { how, weights, link } => {
                let present = |s: &Source| !matches!(s, Source::Node(n) if data.missing[*n]);
                if node.inputs.iter().all(present) {
                    let ins: Vec<(&[f64], usize)> =
                        node.inputs.iter().map(|s| data.get(s)).collect();
                    return Ok(combine(*how, weights, *link, &ins, rows));
                }
                // Degraded: the inputs that answered, their weights scaled
                // up to the same total.
                let kept: Vec<usize> = (0..node.inputs.len())
                    .filter(|&k| present(&node.inputs[k]))
                    .collect();
                if kept.is_empty() {
                    anyhow::bail!("none of the inputs of `{}` answered", node.id);
                }
                let ins: Vec<(&[f64], usize)> =
                    kept.iter().map(|&k| data.get(&node.inputs[k])).collect();
                let w: Vec<f64> = if weights.is_empty() {
                    Vec::new()
                } else {
                    let all: f64 = weights.iter().sum();
                    let here: f64 = kept.iter().map(|&k| weights[k]).sum();
                    if here <= 0.0 {
                        anyhow::bail!("the inputs of `{}` that answered weigh nothing", node.id);
                    }
                    kept.iter().map(|&k| weights[k] * all / here).collect()
                };
                Ok(combine(*how, &w, *link, &ins, rows))
            }
        }
    }
}

/// A decomposed node: independent parts side by side (a pipeline's
/// stages in order), then joined.
fn run_parts(
    g: &Graph<'_>,
    parts: &crate::decompose::Parts,
    loaded: &[LoadedModel],
    x: &[f32],
    rows: usize,
    threads: usize,
) -> anyhow::Result<Vec<f64>> {
    if parts.plan == tessera_core::recombine::Plan::Pipeline || loaded.len() == 1 {
        let ctx = RunContext::new(g.registry, threads);
        return parts.answer(loaded, ctx.as_abi(), x, rows);
    }
    let share = (threads / loaded.len()).max(1);
    let outputs: Vec<anyhow::Result<Vec<f32>>> = std::thread::scope(|scope| {
        let handles: Vec<_> = loaded
            .iter()
            .map(|m| {
                scope.spawn(move || {
                    let ctx = RunContext::new(g.registry, share);
                    Ok(m.answer(ctx.as_abi(), x)?)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(anyhow::anyhow!("a part panicked")))
            })
            .collect()
    });
    let outputs = outputs.into_iter().collect::<anyhow::Result<Vec<_>>>()?;
    parts
        .plan
        .join(&outputs, rows)
        .map_err(|e| anyhow::anyhow!(e.message.to_string()))
}

/// A combiner over its inputs' answers (`(values, width)` each).
fn combine(
    how: Combine,
    weights: &[f64],
    link: Link,
    ins: &[(&[f64], usize)],
    rows: usize,
) -> Vec<f64> {
    let width = ins[0].1;
    match how {
        Combine::Stack => unreachable!("a stack runs its meta-model"),
        Combine::MeanProba => {
            let mut acc = vec![0.0; rows * width];
            for (v, _) in ins {
                acc.iter_mut().zip(*v).for_each(|(a, x)| *a += x);
            }
            let n = ins.len() as f64;
            acc.iter_mut().for_each(|a| *a /= n);
            acc
        }
        Combine::Vote => {
            let mut acc = vec![0.0; rows * width];
            for (v, _) in ins {
                for (r, p) in v.chunks_exact(width).enumerate() {
                    acc[r * width + argmax(p)] += 1.0;
                }
            }
            let n = ins.len() as f64;
            acc.iter_mut().for_each(|a| *a /= n);
            acc
        }
        Combine::Sum | Combine::Weighted => {
            let mut acc = vec![0.0; rows * width];
            for (k, (v, _)) in ins.iter().enumerate() {
                let w = if how == Combine::Weighted {
                    weights[k]
                } else {
                    1.0
                };
                acc.iter_mut().zip(*v).for_each(|(a, x)| *a += w * x);
            }
            apply_link(acc, width, link)
        }
        Combine::Concat => {
            let total: usize = ins.iter().map(|(_, w)| w).sum();
            let mut acc = Vec::with_capacity(rows * total);
            for r in 0..rows {
                for (v, w) in ins {
                    acc.extend_from_slice(&v[r * w..(r + 1) * w]);
                }
            }
            apply_link(acc, total, link)
        }
    }
}

/// The graph as Graphviz DOT: inputs as ellipses, models as boxes,
/// combiners as diamonds, outputs as double octagons.
pub fn dot(g: &Graph<'_>) -> String {
    let mut s = String::from("digraph tessera {\n  rankdir=LR;\n");
    let q = |id: &str| format!("{id:?}");
    for i in &g.config.inputs {
        let _ = writeln!(
            s,
            "  {} [shape=ellipse, label=\"{}\\n{} columns\"];",
            q(&format!("input:{}", i.id)),
            i.id,
            i.width
        );
    }
    for n in &g.nodes {
        let (shape, label) = match &n.op {
            Op::Model { model, .. } => ("box", format!("{}\\n{}", n.id, model.header.component)),
            Op::Parts { parts, .. } => ("box3d", format!("{}\\n{} parts", n.id, parts.parts.len())),
            Op::Process { .. } => ("box", format!("{}\\nworker process", n.id)),
            Op::Remote { remote, .. } => {
                ("box", format!("{}\\nremote x{}", n.id, remote.replicas()))
            }
            Op::Route { .. } => ("trapezium", format!("{}\\nrouter", n.id)),
            Op::Stack { meta } => (
                "diamond",
                format!("{}\\nstack ({})", n.id, meta.header.component),
            ),
            Op::Combine { how, .. } => ("diamond", format!("{}\\n{how:?}", n.id)),
        };
        let _ = writeln!(s, "  {} [shape={shape}, label=\"{label}\"];", q(&n.id));
        for src in &n.inputs {
            let from = match src {
                Source::Input(i) => format!("input:{}", g.config.inputs[*i].id),
                Source::Node(j) => g.nodes[*j].id.clone(),
            };
            let _ = writeln!(s, "  {} -> {};", q(&from), q(&n.id));
        }
    }
    for o in &g.config.outputs {
        let id = format!("output:{}", o.name);
        let _ = writeln!(
            s,
            "  {} [shape=doubleoctagon, label=\"{}\"];",
            q(&id),
            o.name
        );
        let _ = writeln!(s, "  {} -> {};", q(&o.from), q(&id));
    }
    s.push_str("}\n");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_ids_spread_over_the_shares() {
        let mut counts = [0usize; 4];
        for i in 0..4000 {
            let b = branch(&[0.1, 0.5, 0.9, 1.0], route_share(&format!("req-{i}")));
            counts[b] += 1;
        }
        // 10%, 40%, 40%, 10% of 4000, within 3 standard deviations.
        for (c, want) in counts.iter().zip([400.0, 1600.0, 1600.0, 400.0]) {
            assert!(
                (*c as f64 - want).abs() < 3.0 * (want * 0.9f64).sqrt() + 5.0,
                "{counts:?}"
            );
        }
        assert_eq!(route_share("x"), route_share("x"));
    }

    #[test]
    fn combiners_join_as_documented() {
        // Two classifiers over 2 rows and 3 classes.
        let a = [0.6, 0.3, 0.1, 0.2, 0.2, 0.6];
        let b = [0.2, 0.5, 0.3, 0.1, 0.1, 0.8];
        let ins = [(&a[..], 3), (&b[..], 3)];
        let mean = combine(Combine::MeanProba, &[], Link::Identity, &ins, 2);
        let want = [0.4, 0.4, 0.2, 0.15, 0.15, 0.7];
        assert!(
            mean.iter().zip(want).all(|(x, y)| (x - y).abs() < 1e-12),
            "{mean:?}"
        );
        let vote = combine(Combine::Vote, &[], Link::Identity, &ins, 2);
        assert_eq!(vote, vec![0.5, 0.5, 0.0, 0.0, 0.0, 1.0]);
        let w = combine(Combine::Weighted, &[0.25, 0.75], Link::Identity, &ins, 2);
        assert!((w[0] - (0.25 * 0.6 + 0.75 * 0.2)).abs() < 1e-12, "{w:?}");
        // Raw scores: a sum through a sigmoid, columns through a softmax.
        let z1 = [0.5, -2.0];
        let z2 = [-0.5, 1.0];
        let s = combine(
            Combine::Sum,
            &[],
            Link::Sigmoid,
            &[(&z1[..], 1), (&z2[..], 1)],
            2,
        );
        assert!(
            (s[0] - 0.5).abs() < 1e-12 && (s[1] - 0.5).abs() < 1e-12,
            "{s:?}"
        );
        assert!((s[3] - 1.0 / (1.0 + 1.0f64.exp())).abs() < 1e-12, "{s:?}");
        let c = combine(
            Combine::Concat,
            &[],
            Link::Softmax,
            &[(&z1[..], 1), (&z2[..], 1)],
            2,
        );
        assert!(
            (c[0] - c[1] - (1.0 / (1.0 + (-1.0f64).exp()) - 1.0 / (1.0 + 1.0f64.exp()))).abs()
                < 1e-12
        );
        assert!((c[2] + c[3] - 1.0).abs() < 1e-12);
        let answer = Answer {
            rows: 2,
            width: 3,
            classes: vec!["a".into(), "b".into(), "c".into()],
            values: mean,
            notes: Vec::new(),
            missing: Vec::new(),
        };
        assert_eq!(answer.labels(), Some(vec!["a", "c"]));
    }
}
