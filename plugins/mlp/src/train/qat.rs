//! Quantization-aware training (`quantization_aware = true`): the forward
//! pass runs the network as tessera-qnet's 8-bit quantization will run
//! it, so training settles where that rounding costs little.
//!
//! * Weights: before every minibatch the float ("master") weights are
//!   rounded per output channel ([`scheme::weight_scales_by_column`],
//!   [`scheme::fake_quant`]) into a copy of the network, which the
//!   forward and backward passes use. The gradient it gives is applied
//!   to the master weights unchanged (the straight-through estimator):
//!   the optimiser moves, and the model keeps, the float weights.
//! * Activations: every layer input is rounded on its own scale and
//!   integer range ([`scheme::activation_range`]). The first layer's
//!   input is the standardized training data, whose scale is chosen once
//!   as calibration will choose it ([`scheme::activation_scale`]); hidden
//!   layers' scales follow an exponential moving average of each
//!   minibatch's largest magnitude (and are not rounded until the first
//!   minibatch has been seen). Gradients pass the rounding straight
//!   through as well.

use tessera_core::ir::Activation;
use tessera_qnet::scheme;

use crate::net::Net;

/// Bits of the quantization trained for (the compressor's default).
pub(crate) const BITS: u32 = 8;
/// Weight of the past in the moving average of the largest magnitudes.
const DECAY: f32 = 0.9;

/// The state of quantization-aware training.
#[derive(Clone, Debug)]
pub(crate) struct Qat {
    /// The network the passes use: the master weights rounded.
    pub net: Net,
    /// Per layer input: its scale (`None` until first seen) and range.
    scales: Vec<Option<f32>>,
    ranges: Vec<(i32, i32)>,
    /// Per hidden layer input: the moving average of the largest
    /// magnitude.
    average: Vec<Option<f32>>,
}

impl Qat {
    /// The state for `net`, whose standardized training rows are `x`.
    pub fn new(net: &Net, x: &[f32]) -> Self {
        let slots = net.slots();
        let nonneg = matches!(net.hidden, Activation::Relu | Activation::Logistic);
        let ranges: Vec<(i32, i32)> = (slots.iter().enumerate())
            .map(|(l, s)| scheme::activation_range(BITS, l > 0 && nonneg, s.inputs))
            .collect();
        let (lo, hi) = ranges[0];
        let mut scales = vec![None; slots.len()];
        scales[0] = Some(scheme::activation_scale(x, lo, hi));
        Self {
            net: net.clone(),
            scales,
            ranges,
            average: vec![None; slots.len()],
        }
    }

    /// Rounds the master weights of `master` into [`Qat::net`]; biases
    /// are copied as they are (the quantized network keeps them in finer
    /// units than its weights).
    pub fn refresh(&mut self, master: &Net) {
        self.net.params.copy_from_slice(&master.params);
        for s in master.slots() {
            let w = &mut self.net.params[s.weights.clone()];
            let scales = scheme::weight_scales_by_column(w, s.inputs, s.outputs, BITS);
            for row in w.chunks_exact_mut(s.outputs) {
                for (v, &sc) in row.iter_mut().zip(&scales) {
                    *v = scheme::fake_quant(*v, sc, BITS);
                }
            }
        }
    }

    /// The forward pass of `net` (normally [`Qat::net`]) over `rows` rows
    /// of `x`, each layer input rounded: `x` in place, hidden outputs in
    /// `acts`. `seen[l]` receives the largest magnitude of layer `l`'s
    /// input before rounding (hidden layers only).
    pub fn forward(
        &self,
        net: &Net,
        x: &mut [f32],
        rows: usize,
        acts: &mut [Vec<f32>],
        seen: &mut [f32],
    ) {
        let slots = net.slots();
        self.round(0, x);
        for (l, s) in slots.iter().enumerate() {
            let (before, rest) = acts.split_at_mut(l);
            let input = if l == 0 { &*x } else { &before[l - 1][..] };
            let out = &mut rest[0][..rows * s.outputs];
            net.layer(l, &input[..rows * s.inputs], rows, out);
            if l + 1 < slots.len() {
                seen[l + 1] = scheme::max_abs(out);
                self.round(l + 1, out);
            }
        }
    }

    /// Rounds layer `l`'s input `v` in place, once its scale is known.
    fn round(&self, l: usize, v: &mut [f32]) {
        if let Some(s) = self.scales[l] {
            let (lo, hi) = self.ranges[l];
            v.iter_mut()
                .for_each(|x| *x = scheme::fake_quant_range(*x, s, lo, hi));
        }
    }

    /// Moves the hidden layers' scales by what a minibatch's parts saw.
    pub fn observe<'a>(&mut self, seen: impl Iterator<Item = &'a [f32]>) {
        let mut top = vec![0.0f32; self.scales.len()];
        for s in seen {
            top.iter_mut().zip(s).for_each(|(t, s)| *t = t.max(*s));
        }
        let layers = (self.average.iter_mut())
            .zip(&mut self.scales)
            .zip(self.ranges.iter().zip(top))
            .skip(1);
        for ((average, scale), (&(_, hi), top)) in layers {
            let a = match *average {
                Some(a) => DECAY * a + (1.0 - DECAY) * top,
                None => top,
            };
            *average = Some(a);
            *scale = Some(scheme::scale_for(a, hi));
        }
    }
}

#[cfg(test)]
mod tests {
    use tessera_core::plugin::seeds::SplitMix;

    use super::*;

    #[test]
    fn weights_are_rounded_per_output_channel_and_the_master_kept() {
        let mut rng = SplitMix::new(3);
        let net = Net::init(
            vec![5, 7, 3],
            Activation::Relu,
            Activation::Softmax,
            &mut rng,
        );
        let x: Vec<f32> = (0..50).map(|i| (i as f32 * 0.37).sin() * 2.0).collect();
        let mut q = Qat::new(&net, &x);
        q.refresh(&net);
        for s in net.slots() {
            let w = &net.params[s.weights.clone()];
            let r = &q.net.params[s.weights.clone()];
            let scales = scheme::weight_scales_by_column(w, s.inputs, s.outputs, BITS);
            for (i, (a, b)) in w.iter().zip(r).enumerate() {
                let sc = scales[i % s.outputs];
                assert!((a - b).abs() <= sc / 2.0 * 1.0001);
                // On the grid of its channel.
                assert!(((b / sc) - (b / sc).round()).abs() < 1e-3);
            }
            assert_eq!(q.net.params[s.bias.clone()], net.params[s.bias.clone()]);
        }
        assert_ne!(q.net.params, net.params);
    }

    #[test]
    fn hidden_inputs_are_rounded_once_their_scale_is_known() {
        let mut rng = SplitMix::new(5);
        let net = Net::init(
            vec![4, 6, 2],
            Activation::Relu,
            Activation::Softmax,
            &mut rng,
        );
        let rows = 8;
        let x0: Vec<f32> = (0..rows * 4).map(|i| (i as f32 * 0.71).cos()).collect();
        let mut q = Qat::new(&net, &x0);
        q.refresh(&net);
        let mut acts = vec![vec![0.0; rows * 6], vec![0.0; rows * 2]];
        let mut seen = vec![0.0; 2];
        let mut x = x0.clone();
        q.forward(&q.net, &mut x, rows, &mut acts, &mut seen);
        let s0 = q.scales[0].unwrap();
        for v in &x {
            assert!(((v / s0) - (v / s0).round()).abs() < 1e-3);
        }
        // No scale yet for the hidden layer: its outputs are as computed.
        assert!(seen[1] > 0.0 && q.scales[1].is_none());
        q.observe([&seen[..]].into_iter());
        let s1 = q.scales[1].unwrap();
        assert!((s1 - seen[1] / 255.0).abs() < 1e-6);
        let mut x = x0.clone();
        q.forward(&q.net, &mut x, rows, &mut acts, &mut seen);
        for v in &acts[0] {
            assert!(*v >= 0.0 && ((v / s1) - (v / s1).round()).abs() < 1e-3);
        }
    }
}
