//! The quantized network: what quantizing a [`DenseNetwork`] gives, the
//! network it stands for ([`QuantizedNetwork::dequantize`]), and its
//! summary. The byte form is in `serialize`, inference in `infer`.

use serde_json::{Value, json};
use tessera_core::{
    MatrixRef, PluginError,
    ir::{Activation, DenseLayer, DenseNetwork},
};

use crate::{
    Options, math,
    scheme::{self, BIAS_LIMIT_8, BIAS_LIMIT_16, MAX_INPUTS_8},
};

/// Most calibration rows looked at; more are sampled evenly.
pub const CALIBRATION_ROWS: usize = 4096;

/// How a network's activations are quantized.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Calibration {
    /// One scale per layer input, chosen on `rows` calibration rows.
    Static {
        /// Rows the scales were chosen on.
        rows: u32,
    },
    /// A scale per row and layer, from the row's largest magnitude, at
    /// prediction time.
    Dynamic,
}

/// A layer's biases.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Bias {
    /// In accumulator units (`input scale * weight scale`): static
    /// calibration.
    Int(Vec<i64>),
    /// As they were: dynamic quantization, whose accumulator units
    /// change from row to row.
    Float(Vec<f32>),
}

/// One quantized layer: `out = act(W x + b)` with `W = diag(w_scale) Q`.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct QLayer {
    pub inputs: usize,
    pub outputs: usize,
    pub activation: Activation,
    /// The integer range of the layer's quantized input.
    pub lo: i32,
    pub hi: i32,
    /// The input's scale (static calibration; 0 when dynamic).
    pub in_scale: f32,
    /// One scale per output channel.
    pub w_scale: Vec<f32>,
    /// `outputs x inputs`, row-major, within `±qmax(bits)`.
    pub weights: Vec<i16>,
    pub bias: Bias,
}

/// A dense network with integer weights and activations: 8-bit (or
/// 16-bit) weights with one scale per output channel, activations
/// quantized at each layer input, biases in the accumulator's units. The
/// input transformation (fill, offset, scale) and the last layer's
/// activation stay `f32`.
#[derive(Clone, Debug, PartialEq)]
pub struct QuantizedNetwork {
    pub(crate) bits: u32,
    pub(crate) calibration: Calibration,
    pub(crate) n_classes: u32,
    pub(crate) input_mean: Vec<f32>,
    pub(crate) input_scale: Vec<f32>,
    pub(crate) input_fill: Vec<f32>,
    pub(crate) layers: Vec<QLayer>,
}

/// Whether the values out of `act` are never negative.
pub(crate) fn nonnegative(act: Activation) -> bool {
    matches!(act, Activation::Relu | Activation::Logistic)
}

impl QuantizedNetwork {
    /// Quantizes `net` to `opts.bits` bits.
    ///
    /// With `calibration` rows (raw feature rows, as the network takes
    /// them; at most [`CALIBRATION_ROWS`] are used, sampled evenly), the
    /// rows are run through the `f32` network and each layer input gets
    /// one scale, the clipping threshold with the least squared error on
    /// the values seen there ([`scheme::activation_scale`]); biases are
    /// then integers in the accumulator's units. Without, activations
    /// are quantized dynamically: each row's input to each layer gets the
    /// scale of its own largest magnitude at prediction time, and biases
    /// stay `f32` (slower, nothing to calibrate on).
    ///
    /// # Errors
    /// `bits` other than 8 or 16 (input error naming `bits`); an
    /// inconsistent network; calibration rows of the wrong width, none,
    /// or with missing values the network cannot fill; an 8-bit layer
    /// wider than [`MAX_INPUTS_8`](scheme::MAX_INPUTS_8) inputs.
    pub fn quantize(
        net: &DenseNetwork,
        opts: &Options,
        calibration: Option<MatrixRef<'_>>,
    ) -> Result<Self, PluginError> {
        let bits = opts.bits;
        scheme::check_bits(bits)?;
        net.check()?;
        if bits == 8
            && let Some((i, l)) =
                (net.layers.iter().enumerate()).find(|(_, l)| l.inputs as usize > MAX_INPUTS_8)
        {
            return Err(PluginError::unsupported(format!(
                "layer {i} has {} inputs; 8-bit sums would overflow past {MAX_INPUTS_8}, \
                 use `bits` = 16",
                l.inputs
            )));
        }
        let ranges: Vec<(i32, i32)> = (net.layers.iter().enumerate())
            .map(|(i, l)| {
                let nonneg = i > 0 && nonnegative(net.layers[i - 1].activation);
                scheme::activation_range(bits, nonneg, l.inputs as usize)
            })
            .collect();
        let (calibration, in_scales) = match calibration {
            Some(x) => {
                let inputs = calibration_inputs(net, x)?;
                let scales = inputs
                    .iter()
                    .zip(&ranges)
                    .map(|(v, &(lo, hi))| scheme::activation_scale(v, lo, hi))
                    .collect();
                let rows = x.rows().min(CALIBRATION_ROWS) as u32;
                (Calibration::Static { rows }, scales)
            }
            None => (Calibration::Dynamic, vec![0.0; net.layers.len()]),
        };
        let q = scheme::qmax(bits);
        let layers = net
            .layers
            .iter()
            .zip(ranges.iter().zip(&in_scales))
            .map(|(l, (&(lo, hi), &in_scale))| {
                let (k, n) = (l.inputs as usize, l.outputs as usize);
                let w_scale = scheme::weight_scales(&l.weights, n, k, bits);
                let weights = l
                    .weights
                    .chunks_exact(k)
                    .zip(&w_scale)
                    .flat_map(|(row, &s)| {
                        row.iter()
                            .map(move |&w| scheme::quantize(w, s, -q, q) as i16)
                    })
                    .collect();
                let bias = match calibration {
                    Calibration::Dynamic => Bias::Float(l.bias.to_vec()),
                    Calibration::Static { .. } => {
                        let limit = if bits == 8 {
                            BIAS_LIMIT_8
                        } else {
                            BIAS_LIMIT_16
                        };
                        let b = l.bias.iter().zip(&w_scale).map(|(&b, &s)| {
                            let unit = f64::from(in_scale) * f64::from(s);
                            // A bias past the limit dwarfs every product
                            // anyway; clamping it keeps the sums in range.
                            ((f64::from(b) / unit).round() as i64).clamp(-limit, limit)
                        });
                        Bias::Int(b.collect())
                    }
                };
                QLayer {
                    inputs: k,
                    outputs: n,
                    activation: l.activation,
                    lo,
                    hi,
                    in_scale,
                    w_scale,
                    weights,
                    bias,
                }
            })
            .collect();
        Ok(Self {
            bits,
            calibration,
            n_classes: net.n_classes,
            input_mean: net.input_mean.to_vec(),
            input_scale: net.input_scale.to_vec(),
            input_fill: net.input_fill.to_vec(),
            layers,
        })
    }

    /// Bits per weight and activation: 8 or 16.
    pub fn bits(&self) -> u32 {
        self.bits
    }

    /// Input width.
    pub fn n_features(&self) -> usize {
        self.layers.first().map_or(0, |l| l.inputs)
    }

    /// Output width.
    pub fn n_outputs(&self) -> usize {
        self.layers.last().map_or(0, |l| l.outputs)
    }

    /// 0 for regression, otherwise the number of classes.
    pub fn n_classes(&self) -> u32 {
        self.n_classes
    }

    /// The `f32` network this one stands for: every weight `scale * q`,
    /// every integer bias times its accumulator unit, the input
    /// transformation as it is. (Activations are not quantized in it: it
    /// is the network of the quantized weights.)
    pub fn dequantize(&self) -> DenseNetwork {
        let layers = self
            .layers
            .iter()
            .map(|l| {
                let weights = l
                    .weights
                    .chunks_exact(l.inputs)
                    .zip(&l.w_scale)
                    .flat_map(|(row, &s)| row.iter().map(move |&q| s * f32::from(q)))
                    .collect();
                let bias = match &l.bias {
                    Bias::Float(b) => b.iter().copied().collect(),
                    Bias::Int(b) => b
                        .iter()
                        .zip(&l.w_scale)
                        .map(|(&b, &s)| (b as f64 * f64::from(l.in_scale) * f64::from(s)) as f32)
                        .collect(),
                };
                DenseLayer {
                    inputs: l.inputs as u32,
                    outputs: l.outputs as u32,
                    weights,
                    bias,
                    activation: l.activation,
                }
            })
            .collect();
        DenseNetwork {
            input_mean: self.input_mean.as_slice().into(),
            input_scale: self.input_scale.as_slice().into(),
            input_fill: self.input_fill.as_slice().into(),
            layers,
            n_classes: self.n_classes,
        }
    }

    /// A JSON summary: the family, bits, calibration, each layer's
    /// shape, activation and input quantization, and the byte size.
    pub fn describe(&self) -> Value {
        let calibration = match self.calibration {
            Calibration::Static { rows } => json!({
                "mode": "static",
                "rows": rows,
                "method": "least squared error clipping",
            }),
            Calibration::Dynamic => json!({ "mode": "dynamic", "method": "per row max-abs" }),
        };
        let layers: Vec<Value> = self
            .layers
            .iter()
            .map(|l| {
                json!({
                    "inputs": l.inputs,
                    "outputs": l.outputs,
                    "activation": l.activation.name(),
                    "input_range": [l.lo, l.hi],
                    "input_scale": match self.calibration {
                        Calibration::Static { .. } => json!(l.in_scale),
                        Calibration::Dynamic => Value::Null,
                    },
                })
            })
            .collect();
        json!({
            "family": crate::FAMILY,
            "bits": self.bits,
            "calibration": calibration,
            "n_features": self.n_features(),
            "n_outputs": self.n_outputs(),
            "n_classes": self.n_classes,
            "layers": layers,
            "n_params": self.layers.iter().map(|l| l.weights.len() + l.outputs).sum::<usize>(),
            "bytes": self.to_bytes().map_or(Value::Null, |b| json!(b.len())),
        })
    }
}

/// Runs the calibration rows through the `f32` network and returns each
/// layer's inputs (`rows x inputs` values per layer; the first layer's
/// after the input transformation).
fn calibration_inputs(net: &DenseNetwork, x: MatrixRef<'_>) -> Result<Vec<Vec<f32>>, PluginError> {
    let p = net.n_features();
    x.check(p)
        .map_err(|e| PluginError::input(format!("calibration rows: {}", e.message)))?;
    if x.rows() == 0 {
        return Err(PluginError::input(
            "calibration rows: none given; pass rows, or none at all for dynamic quantization",
        ));
    }
    let step = x.rows().div_ceil(CALIBRATION_ROWS);
    let rows: Vec<usize> = (0..x.rows()).step_by(step).collect();
    let mut input = Vec::with_capacity(rows.len() * p);
    for &r in &rows {
        let row = x.row(r);
        for (j, &v) in row.iter().enumerate() {
            let v = if v.is_finite() {
                v
            } else if let Some(&f) = net.input_fill.get(j) {
                f
            } else {
                return Err(PluginError::input(format!(
                    "calibration rows: row {r} has a missing or infinite value in column {j}, \
                     and the network has no fill values"
                )));
            };
            let m = net.input_mean.get(j).copied().unwrap_or(0.0);
            let s = net.input_scale.get(j).copied().unwrap_or(1.0);
            input.push((v - m) * s);
        }
    }
    let mut seen = vec![input];
    for l in net.layers.iter().take(net.layers.len() - 1) {
        let (k, n) = (l.inputs as usize, l.outputs as usize);
        let src = seen.last().expect("the input is there");
        let mut out = Vec::with_capacity(rows.len() * n);
        for row in src.chunks_exact(k) {
            for (w, &b) in l.weights.chunks_exact(k).zip(l.bias.iter()) {
                out.push(b + dot(w, row));
            }
        }
        math::activate(l.activation, &mut out, n);
        seen.push(out);
    }
    Ok(seen)
}

/// `Σ a·b` in eight running sums, so that it vectorizes.
fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut s = [0.0f32; 8];
    let (ac, bc) = (a.chunks_exact(8), b.chunks_exact(8));
    let tail: f32 = (ac.remainder().iter().zip(bc.remainder()))
        .map(|(x, y)| x * y)
        .sum();
    for (x, y) in ac.zip(bc) {
        for i in 0..8 {
            s[i] += x[i] * y[i];
        }
    }
    s.iter().sum::<f32>() + tail
}

#[cfg(test)]
mod tests;
