//! Structured pruning: whole hidden units removed, with the next layer's
//! columns for them, so the network is smaller and runs faster.
//!
//! A unit's importance is how much the next layer would miss without it.
//! With rows, units are removed one at a time, each time the one whose
//! loss the others make up for best, and the next layer is refitted on
//! the kept ones to the original network's pre-activations
//! ([`select`]). Without rows, a unit scores the norm of its incoming
//! weights times that of its outgoing ones. Layers are pruned input
//! first, each on the network as already pruned before it.

use tessera_core::ir::{Activation, DenseLayer, DenseNetwork};

use super::{
    math::{activate, affine},
    refit::select,
};

/// Most rows a unit's importance is measured on (evenly spaced through
/// the given rows).
pub const IMPORTANCE_ROWS: usize = 4096;

/// One hidden layer's units before and after.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Units {
    /// Units before.
    pub before: usize,
    /// Units kept.
    pub after: usize,
}

/// The outputs of layer `upto` of `net` for `rows` rows of `x` (already
/// transformed: filled, offset and scaled), `rows x outputs`.
pub fn layer_outputs(net: &DenseNetwork, x: &[f32], rows: usize, upto: usize) -> Vec<f32> {
    forward(net, x, rows, upto, true)
}

/// [`layer_outputs`], or layer `upto`'s values before its activation
/// when not `activated`.
pub fn forward(
    net: &DenseNetwork,
    x: &[f32],
    rows: usize,
    upto: usize,
    activated: bool,
) -> Vec<f32> {
    let mut cur = x.to_vec();
    for (at, l) in net.layers[..=upto].iter().enumerate() {
        let act = if at == upto && !activated {
            Activation::Identity
        } else {
            l.activation
        };
        let (inputs, outputs) = (l.inputs as usize, l.outputs as usize);
        let mut wt = vec![0.0f32; inputs * outputs];
        for (o, row) in l.weights.chunks_exact(inputs).enumerate() {
            for (i, &w) in row.iter().enumerate() {
                wt[i * outputs + o] = w;
            }
        }
        let mut out = vec![0.0f32; rows * outputs];
        affine(&cur, rows, &wt, &l.bias, &mut out);
        activate(act, &mut out, outputs);
        cur = out;
    }
    cur
}

/// The mean and standard deviation of each column of `h` (`width`
/// columns).
fn column_stats(h: &[f32], width: usize) -> (Vec<f64>, Vec<f64>) {
    let n = (h.len() / width).max(1) as f64;
    let mut mean = vec![0.0f64; width];
    for row in h.chunks_exact(width) {
        mean.iter_mut()
            .zip(row)
            .for_each(|(m, &v)| *m += f64::from(v));
    }
    mean.iter_mut().for_each(|m| *m /= n);
    let mut var = vec![0.0f64; width];
    for row in h.chunks_exact(width) {
        for ((s, &v), m) in var.iter_mut().zip(row).zip(&mean) {
            *s += (f64::from(v) - m).powi(2);
        }
    }
    (mean, var.iter().map(|s| (s / n).sqrt()).collect())
}

/// The units `keep` of `keep_units` kept for a layer of `width`: at
/// least one.
pub fn kept(width: usize, keep_units: f64) -> usize {
    ((keep_units * width as f64).ceil() as usize).clamp(1, width)
}

/// Removes all but `kept(width, keep_units)` units of every hidden layer
/// of `net` (checked), by importance measured on `rows` (transformed
/// rows, `n_features` each) where given. Returns the smaller network and
/// each hidden layer's unit counts.
pub fn remove_units(
    original: &DenseNetwork,
    keep_units: f64,
    rows: Option<&[f32]>,
) -> (DenseNetwork, Vec<Units>) {
    let mut net = original.clone();
    let mut report = Vec::new();
    let p = net.n_features();
    for l in 0..net.layers.len() - 1 {
        let width = net.layers[l].outputs as usize;
        let n_keep = kept(width, keep_units);
        report.push(Units {
            before: width,
            after: n_keep,
        });
        if n_keep == width {
            continue;
        }
        if let Some(x) = rows {
            let n = x.len() / p;
            let h = layer_outputs(&net, x, n, l);
            let target = forward(original, x, n, l + 1, false);
            let outputs = net.layers[l + 1].outputs as usize;
            if let Some(s) = select(&h, width, n_keep, &target, outputs) {
                let (this, mut after) = shrink(&net.layers[l], &net.layers[l + 1], &s.keep, None);
                after.weights = s.weights.into();
                after.bias = s.bias.into();
                net.layers[l] = this;
                net.layers[l + 1] = after;
                continue;
            }
        }
        // No rows (or a system that cannot be solved): rank by weights
        // and spread, fold the removed units' means.
        let next = &net.layers[l + 1];
        let out_norm: Vec<f64> = (0..width)
            .map(|u| {
                next.weights
                    .chunks_exact(width)
                    .map(|row| f64::from(row[u]).powi(2))
                    .sum::<f64>()
                    .sqrt()
            })
            .collect();
        let (mean, spread) = match rows {
            Some(x) => {
                let h = layer_outputs(&net, x, x.len() / p, l);
                let (m, s) = column_stats(&h, width);
                (Some(m), s)
            }
            None => {
                let w = &net.layers[l].weights;
                let inputs = net.layers[l].inputs as usize;
                let norms = w
                    .chunks_exact(inputs)
                    .map(|r| r.iter().map(|&v| f64::from(v).powi(2)).sum::<f64>().sqrt())
                    .collect();
                (None, norms)
            }
        };
        let score: Vec<f64> = spread.iter().zip(&out_norm).map(|(s, o)| s * o).collect();
        let mut order: Vec<usize> = (0..width).collect();
        // Highest first; ties to the lower index, so the choice is
        // deterministic.
        order.sort_by(|&a, &b| score[b].total_cmp(&score[a]).then(a.cmp(&b)));
        let mut keep = order[..n_keep].to_vec();
        keep.sort_unstable();
        let (this, after) = shrink(&net.layers[l], &net.layers[l + 1], &keep, mean.as_deref());
        net.layers[l] = this;
        net.layers[l + 1] = after;
    }
    (net, report)
}

/// Layer `this` with only the units `keep` (ascending), and the layer
/// `next` after it with only their columns; with `fold`, the removed
/// units' mean activations folded into `next`'s biases.
fn shrink(
    this: &DenseLayer,
    next: &DenseLayer,
    keep: &[usize],
    fold: Option<&[f64]>,
) -> (DenseLayer, DenseLayer) {
    let inputs = this.inputs as usize;
    let width = this.outputs as usize;
    let weights = keep
        .iter()
        .flat_map(|&u| this.weights[u * inputs..(u + 1) * inputs].iter().copied())
        .collect();
    let bias = keep.iter().map(|&u| this.bias[u]).collect();
    let mut is_kept = vec![false; width];
    keep.iter().for_each(|&u| is_kept[u] = true);
    let mut next_weights = Vec::with_capacity(next.outputs as usize * keep.len());
    let mut next_bias = Vec::with_capacity(next.outputs as usize);
    for (row, &b) in next.weights.chunks_exact(width).zip(next.bias.iter()) {
        next_weights.extend(keep.iter().map(|&u| row[u]));
        let folded: f64 = fold.map_or(0.0, |m| {
            (0..width)
                .filter(|&u| !is_kept[u])
                .map(|u| f64::from(row[u]) * m[u])
                .sum()
        });
        next_bias.push((f64::from(b) + folded) as f32);
    }
    (
        DenseLayer {
            inputs: this.inputs,
            outputs: keep.len() as u32,
            weights,
            bias,
            activation: this.activation,
        },
        DenseLayer {
            inputs: keep.len() as u32,
            outputs: next.outputs,
            weights: next_weights.into(),
            bias: next_bias.into(),
            activation: next.activation,
        },
    )
}

#[cfg(test)]
mod tests {
    use tessera_core::plugin::seeds::SplitMix;

    use super::*;

    fn network(seed: u64) -> DenseNetwork {
        let mut rng = SplitMix::new(seed);
        let mut layer = |inputs: usize, outputs: usize, activation| DenseLayer {
            inputs: inputs as u32,
            outputs: outputs as u32,
            weights: (0..inputs * outputs)
                .map(|_| (rng.unit() * 2.0 - 1.0) as f32)
                .collect(),
            bias: (0..outputs).map(|_| (rng.unit() - 0.5) as f32).collect(),
            activation,
        };
        DenseNetwork {
            input_mean: Default::default(),
            input_scale: Default::default(),
            input_fill: Default::default(),
            layers: vec![
                layer(4, 10, Activation::Relu),
                layer(10, 6, Activation::Relu),
                layer(6, 2, Activation::Identity),
            ]
            .into(),
            n_classes: 0,
        }
    }

    #[test]
    fn units_go_with_their_columns() {
        let net = network(1);
        for rows in [None, Some(vec![0.5f32; 4 * 30])] {
            let (small, report) = remove_units(&net, 0.5, rows.as_deref());
            small.check().unwrap();
            assert_eq!(
                report,
                vec![
                    Units {
                        before: 10,
                        after: 5
                    },
                    Units {
                        before: 6,
                        after: 3
                    }
                ]
            );
            let widths: Vec<u32> = small.layers.iter().map(|l| l.outputs).collect();
            assert_eq!(widths, vec![5, 3, 2]);
            assert_eq!(small.n_features(), 4);
        }
        let (same, _) = remove_units(&net, 1.0, None);
        assert_eq!(same, net);
        assert_eq!(kept(10, 0.01), 1);
        assert_eq!(kept(3, 0.5), 2);
    }

    #[test]
    fn the_least_important_units_go_and_constant_ones_fold_into_the_bias() {
        let mut net = network(2);
        // One hidden layer: only its units are pruned.
        net.layers.remove(1);
        net.layers[1] = network(5).layers[1].clone();
        net.layers[1].activation = Activation::Identity;
        // Unit 3: constant (no incoming weights, positive bias) with large
        // outgoing weights. Unit 7: tiny outgoing weights. Both should
        // go, and unit 3's constant output survive in the next biases.
        let l0 = &mut net.layers[0];
        l0.weights[12..16].fill(0.0);
        l0.bias[3] = 2.0;
        let l1 = &mut net.layers[1];
        for o in 0..6 {
            l1.weights[o * 10 + 3] = 3.0;
            l1.weights[o * 10 + 7] = 1e-4;
        }
        net.check().unwrap();
        let mut rng = SplitMix::new(3);
        let x: Vec<f32> = (0..4 * 200)
            .map(|_| (rng.unit() * 2.0 - 1.0) as f32)
            .collect();
        let (small, report) = remove_units(&net, 0.8, Some(&x));
        assert_eq!(
            report,
            vec![Units {
                before: 10,
                after: 8
            }]
        );
        let mut want: Vec<f32> = net.layers[0].bias.to_vec();
        want.remove(7);
        want.remove(3);
        assert_eq!(small.layers[0].bias.to_vec(), want);
        for o in 0..6 {
            let d = small.layers[1].bias[o] - net.layers[1].bias[o];
            assert!((d - 6.0).abs() < 1e-2, "output {o}: bias moved by {d}");
        }
        let a = layer_outputs(&net, &x, 200, 1);
        let b = layer_outputs(&small, &x, 200, 1);
        let worst = a
            .iter()
            .zip(&b)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0f32, f32::max);
        assert!(worst < 1e-2, "worst change {worst}");
        // Without the fold, the outputs would be 6 off.
        let (blind, _) = remove_units(&net, 0.8, None);
        let c = layer_outputs(&blind, &x, 200, 1);
        assert!(c.iter().zip(&a).any(|(c, a)| (c - a).abs() > 1.0));
    }
}
