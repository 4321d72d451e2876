//! Magnitude pruning: the smallest weights of every layer set to zero.
//!
//! Each layer loses the same share, `⌊sparsity · n⌋` of its `n` weights
//! (biases are kept): a global threshold would strip the small-valued
//! layers (the wide first layer, whose weights are smallest) far more
//! than the others. Ties in magnitude go by position, so the result is
//! deterministic. With rows, the kept weights are then refitted layer by
//! layer ([`refit_masked`]).

use tessera_core::ir::DenseNetwork;

use super::{refit::refit_masked, structured::forward};

/// Weights of a layer of `n` that `sparsity` zeroes. The allowance
/// absorbs decimal fractions that are not exact in binary (0.29 · 100 is
/// 28.999…).
pub fn zeroed(n: usize, sparsity: f64) -> usize {
    ((sparsity * n as f64 + 1e-9).floor() as usize).min(n)
}

/// `net` with the smallest [`zeroed`] weights of each layer set to zero,
/// and the mask of the weights kept (one vector per layer, laid out as
/// the weights).
pub fn zero_smallest(net: &DenseNetwork, sparsity: f64) -> (DenseNetwork, Vec<Vec<bool>>) {
    let mut out = net.clone();
    let mut masks = Vec::with_capacity(net.layers.len());
    for layer in out.layers.iter_mut() {
        let w = &mut layer.weights;
        let z = zeroed(w.len(), sparsity);
        let mut keep = vec![true; w.len()];
        if z > 0 {
            let mut order: Vec<u32> = (0..w.len() as u32).collect();
            let by_size = |a: &u32, b: &u32| {
                let (x, y) = (w[*a as usize].abs(), w[*b as usize].abs());
                x.total_cmp(&y).then(a.cmp(b))
            };
            order.select_nth_unstable_by(z - 1, by_size);
            for &i in &order[..z] {
                keep[i as usize] = false;
            }
            w.iter_mut()
                .zip(&keep)
                .for_each(|(w, k)| *w = if *k { *w } else { 0.0 });
        }
        masks.push(keep);
    }
    (out, masks)
}

/// Refits the kept weights of `pruned` (zeroed from `dense` with
/// `masks`), input layer first, so that each layer's pre-activations on
/// `rows` (transformed rows) match `dense`'s given the pruned layers
/// before it. Returns how many layers were refitted (a layer too wide
/// for the budget keeps its weights).
pub fn refit_layers(
    dense: &DenseNetwork,
    pruned: &mut DenseNetwork,
    masks: &[Vec<bool>],
    rows: &[f32],
) -> usize {
    let n = rows.len() / dense.n_features().max(1);
    let mut done = 0;
    for (l, mask) in masks.iter().enumerate().take(pruned.layers.len()) {
        let target = forward(dense, rows, n, l, false);
        let input = match l {
            0 => rows.to_vec(),
            _ => forward(pruned, rows, n, l - 1, true),
        };
        done += usize::from(refit_masked(&input, &target, mask, &mut pruned.layers[l]));
    }
    done
}

#[cfg(test)]
mod tests {
    use tessera_core::ir::{Activation, DenseLayer};

    use super::*;

    #[test]
    fn the_smallest_share_of_each_layer_goes() {
        let layer = |inputs: u32, outputs: u32, scale: f32| DenseLayer {
            inputs,
            outputs,
            // Distinct magnitudes, signs alternating.
            weights: (0..inputs * outputs)
                .map(|i| scale * (i as f32 + 1.0) * if i % 2 == 0 { 1.0 } else { -1.0 })
                .rev()
                .collect(),
            bias: vec![0.0; outputs as usize].into(),
            activation: Activation::Identity,
        };
        let net = DenseNetwork {
            input_mean: Default::default(),
            input_scale: Default::default(),
            input_fill: Default::default(),
            layers: vec![layer(10, 10, 0.001), layer(10, 3, 100.0)].into(),
            n_classes: 0,
        };
        let (pruned, masks) = zero_smallest(&net, 0.29);
        pruned.check().unwrap();
        // 29 of 100 and 8 of 30 (not fewer: 0.29 * 100 is 28.999...).
        let zeros: Vec<usize> = pruned
            .layers
            .iter()
            .map(|l| l.weights.iter().filter(|w| **w == 0.0).count())
            .collect();
        assert_eq!(zeros, vec![29, 8]);
        for ((l, p), m) in net.layers.iter().zip(&pruned.layers).zip(&masks) {
            let cut = l
                .weights
                .iter()
                .zip(m)
                .filter(|(_, k)| !**k)
                .map(|(w, _)| w.abs())
                .fold(0.0f32, f32::max);
            let kept = p
                .weights
                .iter()
                .filter(|w| **w != 0.0)
                .map(|w| w.abs())
                .fold(f32::INFINITY, f32::min);
            assert!(cut < kept, "cut {cut} kept {kept}");
            for ((a, b), k) in l.weights.iter().zip(&p.weights).zip(m) {
                assert_eq!(*b, if *k { *a } else { 0.0 });
            }
        }
        let (same, masks) = zero_smallest(&net, 0.0);
        assert_eq!(same, net);
        assert!(masks.iter().flatten().all(|k| *k));
        assert_eq!(zeroed(10, 0.999), 9);
        assert_eq!(zeroed(320, 0.8), 256);
    }
}
