//! The network as it trains and predicts.
//!
//! Every parameter lives in one flat vector, layer after layer: the
//! layer's weights as a row-major `inputs x outputs` matrix (so a block of
//! rows times the weights is one [`matmul`]), then its biases. The
//! optimiser walks that vector in one loop; the exchange form
//! ([`DenseNetwork`]) stores weights `outputs x inputs`, and the
//! conversions transpose.

use std::ops::Range;

use tessera_core::{
    PluginError,
    abi_stable::std_types::RVec,
    ir::{Activation, DenseLayer, DenseNetwork},
    plugin::seeds::SplitMix,
};

use crate::gemm::{Lhs, Out, matmul};

/// Where one layer's parameters sit in the flat vector.
#[derive(Clone, Debug, PartialEq)]
pub struct Slot {
    /// Input width.
    pub inputs: usize,
    /// Output width.
    pub outputs: usize,
    /// The weights, `inputs x outputs` row-major.
    pub weights: Range<usize>,
    /// The biases.
    pub bias: Range<usize>,
}

/// A feed-forward network.
#[derive(Clone, Debug, PartialEq)]
pub struct Net {
    /// Layer widths: inputs, hidden layers, outputs.
    pub widths: Vec<usize>,
    /// Activation of the hidden layers.
    pub hidden: Activation,
    /// Activation of the output layer (softmax, logistic or identity).
    pub output: Activation,
    /// Every parameter (see the module documentation).
    pub params: Vec<f32>,
    slots: Vec<Slot>,
}

fn slots(widths: &[usize]) -> Vec<Slot> {
    let mut at = 0;
    widths
        .windows(2)
        .map(|w| {
            let (inputs, outputs) = (w[0], w[1]);
            let weights = at..at + inputs * outputs;
            let bias = weights.end..weights.end + outputs;
            at = bias.end;
            Slot {
                inputs,
                outputs,
                weights,
                bias,
            }
        })
        .collect()
}

impl Net {
    /// A network with every parameter zero.
    pub fn zeros(widths: Vec<usize>, hidden: Activation, output: Activation) -> Self {
        let slots = slots(&widths);
        let n = slots.last().map_or(0, |s| s.bias.end);
        Self {
            widths,
            hidden,
            output,
            params: vec![0.0; n],
            slots,
        }
    }

    /// A freshly initialised network, as scikit-learn initialises one
    /// (Glorot): every weight and bias of a layer drawn uniformly from
    /// `±sqrt(f / (inputs + outputs))`, `f` = 2 for logistic layers and 6
    /// otherwise.
    pub fn init(
        widths: Vec<usize>,
        hidden: Activation,
        output: Activation,
        rng: &mut SplitMix,
    ) -> Self {
        let mut net = Self::zeros(widths, hidden, output);
        for l in 0..net.slots.len() {
            let s = &net.slots[l];
            let factor = if net.activation(l) == Activation::Logistic {
                2.0
            } else {
                6.0
            };
            let bound = (factor / (s.inputs + s.outputs) as f64).sqrt();
            let range = s.weights.start..s.bias.end;
            for p in &mut net.params[range] {
                *p = ((rng.unit() * 2.0 - 1.0) * bound) as f32;
            }
        }
        net
    }

    /// The layers' places in [`Net::params`].
    pub fn slots(&self) -> &[Slot] {
        &self.slots
    }

    /// Input width.
    pub fn n_inputs(&self) -> usize {
        self.widths[0]
    }

    /// Output width.
    pub fn n_outputs(&self) -> usize {
        *self.widths.last().unwrap_or(&0)
    }

    /// The widest layer (inputs included).
    pub fn max_width(&self) -> usize {
        self.widths.iter().copied().max().unwrap_or(0)
    }

    /// The activation of layer `l`.
    pub fn activation(&self, l: usize) -> Activation {
        if l + 1 == self.slots.len() {
            self.output
        } else {
            self.hidden
        }
    }

    /// Runs `rows` rows of `x` (already scaled) through every layer.
    /// `acts[l]` receives layer `l`'s outputs (`rows x widths[l + 1]`;
    /// each buffer at least that long).
    pub fn forward(&self, x: &[f32], rows: usize, acts: &mut [Vec<f32>]) {
        for (l, s) in self.slots.iter().enumerate() {
            let (before, rest) = acts.split_at_mut(l);
            let input = if l == 0 { x } else { &before[l - 1][..] };
            let out = &mut rest[0][..rows * s.outputs];
            self.layer(l, &input[..rows * s.inputs], rows, out);
        }
    }

    /// One layer: `out = act(input · W + b)`, the bias (and a ReLU)
    /// applied by the product itself.
    pub fn layer(&self, l: usize, input: &[f32], rows: usize, out: &mut [f32]) {
        let s = &self.slots[l];
        let act = self.activation(l);
        matmul(
            Lhs::new(input, rows, s.inputs),
            &self.params[s.weights.clone()],
            s.outputs,
            out,
            Out::Bias {
                bias: &self.params[s.bias.clone()],
                relu: act == Activation::Relu,
            },
        );
        if act != Activation::Relu {
            activate(act, out, s.outputs);
        }
    }

    /// Every layer's weights but the first, transposed (`outputs x
    /// inputs`), into `wt` at the weights' places: what the backward pass
    /// multiplies by (the first layer passes nothing further back).
    pub fn transpose_weights(&self, wt: &mut [f32]) {
        for s in self.slots.iter().skip(1) {
            let w = &self.params[s.weights.clone()];
            let t = &mut wt[s.weights.clone()];
            for i in 0..s.inputs {
                for o in 0..s.outputs {
                    t[o * s.inputs + i] = w[i * s.outputs + o];
                }
            }
        }
    }

    /// The exchange form, with the given input transformation.
    pub fn to_ir(&self, mean: &[f32], scale: &[f32], fill: &[f32], n_classes: u32) -> DenseNetwork {
        let layers = self
            .slots
            .iter()
            .enumerate()
            .map(|(l, s)| {
                let w = &self.params[s.weights.clone()];
                let mut t = RVec::with_capacity(w.len());
                for o in 0..s.outputs {
                    t.extend((0..s.inputs).map(|i| w[i * s.outputs + o]));
                }
                DenseLayer {
                    inputs: s.inputs as u32,
                    outputs: s.outputs as u32,
                    weights: t,
                    bias: self.params[s.bias.clone()].into(),
                    activation: self.activation(l),
                }
            })
            .collect();
        DenseNetwork {
            input_mean: mean.into(),
            input_scale: scale.into(),
            input_fill: fill.into(),
            layers,
            n_classes,
        }
    }

    /// The network of an exchange form (checked with
    /// [`DenseNetwork::check`]), whose hidden layers share one
    /// activation.
    ///
    /// # Errors
    /// An inconsistent network, or hidden layers with different
    /// activations.
    pub fn from_ir(ir: &DenseNetwork) -> Result<Self, PluginError> {
        ir.check()?;
        let mut widths = vec![ir.n_features()];
        widths.extend(ir.layers.iter().map(|l| l.outputs as usize));
        let n = ir.layers.len();
        let output = ir.layers[n - 1].activation;
        let hidden = ir
            .layers
            .first()
            .filter(|_| n > 1)
            .map_or(Activation::Relu, |l| l.activation);
        if let Some(i) = ir.layers[..n - 1]
            .iter()
            .position(|l| l.activation != hidden)
        {
            return Err(PluginError::unsupported(format!(
                "dense network: layer {i} is {} but layer 0 is {}; the mlp plugin runs \
                 networks whose hidden layers share one activation",
                ir.layers[i].activation.name(),
                hidden.name()
            )));
        }
        let mut net = Self::zeros(widths, hidden, output);
        for (s, l) in net.slots.clone().iter().zip(ir.layers.iter()) {
            let w = &mut net.params[s.weights.clone()];
            for o in 0..s.outputs {
                for i in 0..s.inputs {
                    w[i * s.outputs + o] = l.weights[o * s.inputs + i];
                }
            }
            net.params[s.bias.clone()].copy_from_slice(&l.bias);
        }
        Ok(net)
    }
}

/// Applies `act` to `z` in place (`width` values per row; softmax works
/// row by row).
pub fn activate(act: Activation, z: &mut [f32], width: usize) {
    match act {
        Activation::Identity => {}
        Activation::Relu => z.iter_mut().for_each(|v| *v = v.max(0.0)),
        Activation::Tanh => z.iter_mut().for_each(|v| *v = tanh(*v)),
        Activation::Logistic => z.iter_mut().for_each(|v| *v = logistic(*v)),
        Activation::Softmax => softmax_rows(z, width),
    }
}

/// Softmax of every row of `z` (`width` values each): the row maxima
/// subtracted row by row, then one pass of [`exp`] over the whole block
/// (which vectorizes, where a row of ten does not), then the rows scaled.
pub fn softmax_rows(z: &mut [f32], width: usize) {
    for row in z.chunks_exact_mut(width) {
        let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        row.iter_mut().for_each(|v| *v -= max);
    }
    z.iter_mut().for_each(|v| *v = exp(*v));
    for row in z.chunks_exact_mut(width) {
        let inv = 1.0 / row.iter().sum::<f32>();
        row.iter_mut().for_each(|v| *v *= inv);
    }
}

/// `1 / (1 + e^-x)`.
pub fn logistic(x: f32) -> f32 {
    1.0 / (1.0 + exp(-x))
}

/// `tanh(x)`, as `1 - 2 / (e^2|x| + 1)` with the sign of `x`.
pub fn tanh(x: f32) -> f32 {
    let t = 1.0 - 2.0 / (exp(2.0 * x.abs()) + 1.0);
    t.copysign(x)
}

/// `e^x` in f32 without a library call, so that loops over activations
/// vectorize: `x = n ln 2 + r` with `|r| <= ln 2 / 2`, `e^r` by its Taylor
/// polynomial to degree 7 (truncation below 1e-8 relative), `2^n` built
/// in the exponent bits. Relative error within a few f32 ulps over the
/// clamped range `[-87, 88]` (below, the result is about 1.6e-38
/// instead of smaller; above, about 1.7e38 instead of infinity).
#[inline]
pub fn exp(x: f32) -> f32 {
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    // ln 2 split so that `n * LN2_HI` is exact for |n| < 2^9.
    const LN2_HI: f32 = 0.693_145_75;
    const LN2_LO: f32 = 1.428_606_8e-6;
    // Adding then subtracting 1.5 * 2^23 rounds to the nearest integer.
    const ROUND: f32 = 12_582_912.0;
    let x = x.clamp(-87.0, 88.0);
    let n = (x * LOG2E + ROUND) - ROUND;
    let r = (x - n * LN2_HI) - n * LN2_LO;
    let mut p = 1.0 / 5040.0;
    for c in [
        1.0 / 720.0,
        1.0 / 120.0,
        1.0 / 24.0,
        1.0 / 6.0,
        0.5,
        1.0,
        1.0,
    ] {
        p = p * r + c;
    }
    p * f32::from_bits(((n as i32 + 127) as u32) << 23)
}

/// Multiplies the back-propagated `d` by the derivative of `act` at the
/// layer's outputs `h` (derivatives written in terms of the output, as
/// every hidden activation allows).
pub fn times_derivative(act: Activation, h: &[f32], d: &mut [f32]) {
    let zip = h.iter().zip(d.iter_mut());
    match act {
        Activation::Identity | Activation::Softmax => {}
        // A select, not a branch: the loop vectorizes.
        Activation::Relu => zip.for_each(|(h, d)| *d = if *h > 0.0 { *d } else { 0.0 }),
        Activation::Tanh => zip.for_each(|(h, d)| *d *= 1.0 - h * h),
        Activation::Logistic => zip.for_each(|(h, d)| *d *= h * (1.0 - h)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_exchange_form_round_trips_and_computes_the_same() {
        let mut rng = SplitMix::new(1);
        let net = Net::init(
            vec![3, 5, 4, 2],
            Activation::Tanh,
            Activation::Softmax,
            &mut rng,
        );
        let ir = net.to_ir(&[], &[], &[], 2);
        ir.check().unwrap();
        assert_eq!(Net::from_ir(&ir).unwrap(), net);
        // The IR's row-major `outputs x inputs` weights, applied by hand.
        let x = [0.3f32, -1.2, 0.8];
        let mut v = x.to_vec();
        for l in ir.layers.iter() {
            let mut z: Vec<f32> = (0..l.outputs as usize)
                .map(|o| {
                    let w = &l.weights[o * l.inputs as usize..(o + 1) * l.inputs as usize];
                    l.bias[o] + w.iter().zip(&v).map(|(w, x)| w * x).sum::<f32>()
                })
                .collect();
            let width = z.len();
            activate(l.activation, &mut z, width);
            v = z;
        }
        let mut acts = vec![vec![0.0; 5], vec![0.0; 4], vec![0.0; 2]];
        net.forward(&x, 1, &mut acts);
        for (a, b) in acts[2].iter().zip(&v) {
            assert!((a - b).abs() < 1e-6, "{a} {b}");
        }
    }

    #[test]
    fn fast_exp_tanh_and_logistic_match_the_library() {
        let mut worst = [0.0f64; 3];
        for i in -200_000..=200_000 {
            let x = i as f32 * 4.3e-4; // about [-86, 86]
            let want = f64::from(x).exp();
            let rel = (f64::from(exp(x)) - want).abs() / want;
            worst[0] = worst[0].max(rel);
            let t = (f64::from(tanh(x)) - f64::from(x).tanh()).abs();
            worst[1] = worst[1].max(t);
            let l = (f64::from(logistic(x)) - 1.0 / (1.0 + (-f64::from(x)).exp())).abs();
            worst[2] = worst[2].max(l);
        }
        assert!(worst[0] < 1e-6, "exp relative error {}", worst[0]);
        assert!(worst[1] < 3e-7, "tanh error {}", worst[1]);
        assert!(worst[2] < 2e-7, "logistic error {}", worst[2]);
        assert_eq!(tanh(0.0), 0.0);
        assert_eq!(tanh(-20.0), -1.0);
        assert!(exp(-200.0) >= 0.0 && exp(200.0).is_finite());
    }

    #[test]
    fn mixed_hidden_activations_are_refused() {
        let mut rng = SplitMix::new(1);
        let net = Net::init(
            vec![2, 3, 3, 1],
            Activation::Relu,
            Activation::Identity,
            &mut rng,
        );
        let mut ir = net.to_ir(&[], &[], &[], 0);
        ir.layers[1].activation = Activation::Tanh;
        let e = Net::from_ir(&ir).unwrap_err();
        assert!(e.message.contains("layer 1 is tanh"), "{}", e.message);
    }

    #[test]
    fn init_bounds_follow_glorot() {
        let mut rng = SplitMix::new(5);
        let net = Net::init(
            vec![10, 20, 1],
            Activation::Relu,
            Activation::Logistic,
            &mut rng,
        );
        let s = &net.slots()[0];
        let b0 = (6.0f32 / 30.0).sqrt();
        assert!(net.params[s.weights.clone()].iter().all(|w| w.abs() <= b0));
        let s = &net.slots()[1];
        let b1 = (2.0f32 / 21.0).sqrt();
        assert!(
            net.params[s.weights.start..s.bias.end]
                .iter()
                .all(|w| w.abs() <= b1)
        );
        assert!(
            net.params[s.weights.clone()]
                .iter()
                .any(|w| w.abs() > b1 / 2.0)
        );
    }
}
