//! The byte form of a [`QuantizedNetwork`] (little-endian):
//!
//! ```text
//! magic "TSQN", version u32, bits u8, calibration u8 (0 dynamic,
//! 1 static), calibration rows u32, n_classes u32,
//! input_mean, input_scale, input_fill: u32 count + f32 each,
//! layers: u32 count, then per layer
//!   inputs u32, outputs u32, activation u8, input range lo i32, hi i32,
//!   input scale f32,
//!   outputs weight scales f32,
//!   outputs x inputs weights (i8 at 8 bits, i16 at 16),
//!   outputs biases (i32 at 8 bits, i64 at 16, f32 when dynamic)
//! ```
//!
//! Reading trusts nothing: every count is checked against the bytes left
//! before anything is allocated, and every invariant the kernels rely on
//! (value ranges, sums that fit their accumulators, chained widths) is
//! checked, so damaged bytes give an error, never a panic or a wrong sum.

use tessera_core::{
    PluginError,
    bytes::{ByteReader, put_u32},
    ir::Activation,
};

use crate::{
    network::{Bias, Calibration, QLayer, QuantizedNetwork, nonnegative},
    scheme::{self, BIAS_LIMIT_8, BIAS_LIMIT_16, MAX_INPUTS_8},
};

/// The first bytes of a quantized network.
pub const MAGIC: &[u8; 4] = b"TSQN";
/// The version of the form this build writes and reads.
pub const VERSION: u32 = 1;
/// Who the reader's errors name.
const OWNER: &str = "quantized network";

fn activation_code(a: Activation) -> u8 {
    match a {
        Activation::Identity => 0,
        Activation::Relu => 1,
        Activation::Tanh => 2,
        Activation::Logistic => 3,
        Activation::Softmax => 4,
    }
}

fn activation_of(code: u8) -> Option<Activation> {
    Some(match code {
        0 => Activation::Identity,
        1 => Activation::Relu,
        2 => Activation::Tanh,
        3 => Activation::Logistic,
        4 => Activation::Softmax,
        _ => return None,
    })
}

impl QuantizedNetwork {
    /// The network as bytes (see the module documentation);
    /// [`QuantizedNetwork::from_bytes`] reads them back.
    ///
    /// # Errors
    /// More values than a `u32` counts.
    pub fn to_bytes(&self) -> Result<Vec<u8>, PluginError> {
        let width = (self.bits / 8) as usize;
        let size: usize = self
            .layers
            .iter()
            .map(|l| 40 + l.weights.len() * width + l.outputs * 12)
            .sum();
        let mut out = Vec::with_capacity(64 + size + 12 * self.input_mean.len());
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&VERSION.to_le_bytes());
        out.push(self.bits as u8);
        let rows = match self.calibration {
            Calibration::Dynamic => {
                out.push(0);
                0
            }
            Calibration::Static { rows } => {
                out.push(1);
                rows
            }
        };
        out.extend_from_slice(&rows.to_le_bytes());
        out.extend_from_slice(&self.n_classes.to_le_bytes());
        for (what, v) in [
            ("input_mean", &self.input_mean),
            ("input_scale", &self.input_scale),
            ("input_fill", &self.input_fill),
        ] {
            put_u32(&mut out, v.len(), OWNER, what)?;
            v.iter()
                .for_each(|x| out.extend_from_slice(&x.to_le_bytes()));
        }
        put_u32(&mut out, self.layers.len(), OWNER, "layers")?;
        for l in &self.layers {
            put_u32(&mut out, l.inputs, OWNER, "inputs")?;
            put_u32(&mut out, l.outputs, OWNER, "outputs")?;
            out.push(activation_code(l.activation));
            out.extend_from_slice(&l.lo.to_le_bytes());
            out.extend_from_slice(&l.hi.to_le_bytes());
            out.extend_from_slice(&l.in_scale.to_le_bytes());
            l.w_scale
                .iter()
                .for_each(|s| out.extend_from_slice(&s.to_le_bytes()));
            if self.bits == 8 {
                // Within ±127 by construction (and checked on reading).
                l.weights.iter().for_each(|&w| out.push(w as i8 as u8));
            } else {
                l.weights
                    .iter()
                    .for_each(|w| out.extend_from_slice(&w.to_le_bytes()));
            }
            match &l.bias {
                Bias::Float(b) => b
                    .iter()
                    .for_each(|b| out.extend_from_slice(&b.to_le_bytes())),
                Bias::Int(b) if self.bits == 8 => b
                    .iter()
                    .for_each(|&b| out.extend_from_slice(&(b as i32).to_le_bytes())),
                Bias::Int(b) => b
                    .iter()
                    .for_each(|b| out.extend_from_slice(&b.to_le_bytes())),
            }
        }
        Ok(out)
    }

    /// Reads what [`QuantizedNetwork::to_bytes`] wrote, all of it.
    ///
    /// # Errors
    /// Bytes that are not a quantized network (bad magic), a newer
    /// version, truncation, trailing bytes, or any value out of its
    /// range; all as corrupt-model errors.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, PluginError> {
        let mut r = ByteReader::new(bytes, OWNER);
        if r.take(4, "magic")? != MAGIC {
            return Err(r.corrupt("not a quantized network (bad magic bytes)"));
        }
        let version = r.u32("version")?;
        if version != VERSION {
            return Err(r.corrupt(format!(
                "format version {version}; this build reads version {VERSION}"
            )));
        }
        let bits = u32::from(r.u8("bits")?);
        if scheme::check_bits(bits).is_err() {
            return Err(r.corrupt(format!("`bits` is {bits}, not 8 or 16")));
        }
        let mode = r.u8("calibration")?;
        let rows = r.u32("calibration rows")?;
        let calibration = match mode {
            0 => Calibration::Dynamic,
            1 => Calibration::Static { rows },
            m => return Err(r.corrupt(format!("unknown calibration mode {m}"))),
        };
        let n_classes = r.u32("n_classes")?;
        let floats = |r: &mut ByteReader<'_>, what: &str| -> Result<Vec<f32>, PluginError> {
            let n = r.count(4, what)?;
            let v = (0..n).map(|_| r.f32(what)).collect::<Result<Vec<_>, _>>()?;
            if v.iter().any(|x| !x.is_finite()) {
                return Err(r.corrupt(format!("{what} has a value that is not finite")));
            }
            Ok(v)
        };
        let input_mean = floats(&mut r, "input_mean")?;
        let input_scale = floats(&mut r, "input_scale")?;
        let input_fill = floats(&mut r, "input_fill")?;
        // A layer takes at least 21 bytes before its per-output values.
        let n_layers = r.count(21, "layers")?;
        if n_layers == 0 {
            return Err(r.corrupt("no layers"));
        }
        let mut layers: Vec<QLayer> = Vec::with_capacity(n_layers);
        for i in 0..n_layers {
            let prev = layers.last();
            layers.push(read_layer(&mut r, i, n_layers, bits, calibration, prev)?);
        }
        r.finish()?;
        let p = layers[0].inputs;
        for (what, v) in [
            ("input_mean", &input_mean),
            ("input_scale", &input_scale),
            ("input_fill", &input_fill),
        ] {
            if !v.is_empty() && v.len() != p {
                return Err(r.corrupt(format!("{what} has {} values for {p} inputs", v.len())));
            }
        }
        Ok(Self {
            bits,
            calibration,
            n_classes,
            input_mean,
            input_scale,
            input_fill,
            layers,
        })
    }
}

/// Reads and checks layer `i` of `n`.
fn read_layer(
    r: &mut ByteReader<'_>,
    i: usize,
    n: usize,
    bits: u32,
    calibration: Calibration,
    prev: Option<&QLayer>,
) -> Result<QLayer, PluginError> {
    let what = |s: &str| format!("layer {i} {s}");
    let inputs = r.u32(&what("inputs"))? as usize;
    let outputs = r.u32(&what("outputs"))? as usize;
    let code = r.u8(&what("activation"))?;
    let activation = activation_of(code)
        .ok_or_else(|| r.corrupt(format!("layer {i}: unknown activation {code}")))?;
    let lo = r.u32(&what("input range"))? as i32;
    let hi = r.u32(&what("input range"))? as i32;
    let in_scale = r.f32(&what("input scale"))?;
    let bad = |r: &ByteReader<'_>, why: String| r.corrupt(format!("layer {i}: {why}"));
    if inputs == 0 || outputs == 0 {
        return Err(bad(r, format!("{inputs} x {outputs}")));
    }
    if let Some(p) = prev
        && p.outputs != inputs
    {
        return Err(bad(
            r,
            format!(
                "takes {inputs} inputs, but the layer before gives {}",
                p.outputs
            ),
        ));
    }
    if activation == Activation::Softmax && i + 1 != n {
        return Err(bad(r, "softmax is only for the last layer".into()));
    }
    if bits == 8 && inputs > MAX_INPUTS_8 {
        return Err(bad(
            r,
            format!("{inputs} inputs are too many for 8-bit sums"),
        ));
    }
    let nonneg = prev.is_some_and(|p| nonnegative(p.activation));
    if (lo, hi) != scheme::activation_range(bits, nonneg, inputs) {
        return Err(bad(
            r,
            format!("input range {lo}..={hi} does not fit its inputs"),
        ));
    }
    let static_ = matches!(calibration, Calibration::Static { .. });
    if static_ && !(in_scale > 0.0 && in_scale.is_finite()) {
        return Err(bad(r, format!("input scale {in_scale}")));
    }
    let width = (bits / 8) as usize;
    let bias_width = if static_ { width * 4 } else { 4 };
    // Everything per output, checked against the bytes left at once.
    let per_output = inputs
        .checked_mul(width)
        .and_then(|w| w.checked_add(4 + bias_width));
    match per_output.and_then(|b| b.checked_mul(outputs)) {
        Some(b) if b <= r.left() => {}
        _ => {
            return Err(bad(
                r,
                format!("{outputs} x {inputs} weights are more than the bytes left"),
            ));
        }
    }
    let w_scale = (0..outputs)
        .map(|_| r.f32(&what("weight scales")))
        .collect::<Result<Vec<_>, _>>()?;
    if let Some(s) = w_scale.iter().find(|s| !(**s > 0.0 && s.is_finite())) {
        return Err(bad(r, format!("weight scale {s}")));
    }
    let raw = r.take(outputs * inputs * width, &what("weights"))?;
    let weights: Vec<i16> = if bits == 8 {
        raw.iter().map(|&b| i16::from(b as i8)).collect()
    } else {
        raw.chunks_exact(2)
            .map(|b| i16::from_le_bytes([b[0], b[1]]))
            .collect()
    };
    let q = scheme::qmax(bits);
    if let Some(w) = weights.iter().find(|w| i32::from(w.unsigned_abs()) > q) {
        return Err(bad(r, format!("weight {w} is outside ±{q}")));
    }
    let bias = if static_ {
        let limit = if bits == 8 {
            BIAS_LIMIT_8
        } else {
            BIAS_LIMIT_16
        };
        let b = (0..outputs)
            .map(|_| {
                Ok(if bits == 8 {
                    i64::from(r.u32(&what("biases"))? as i32)
                } else {
                    r.u64(&what("biases"))? as i64
                })
            })
            .collect::<Result<Vec<i64>, PluginError>>()?;
        if let Some(b) = b.iter().find(|b| b.unsigned_abs() > limit as u64) {
            return Err(bad(r, format!("bias {b} is outside ±{limit}")));
        }
        Bias::Int(b)
    } else {
        let b = (0..outputs)
            .map(|_| r.f32(&what("biases")))
            .collect::<Result<Vec<_>, _>>()?;
        if b.iter().any(|b| !b.is_finite()) {
            return Err(bad(r, "a bias is not finite".into()));
        }
        Bias::Float(b)
    };
    Ok(QLayer {
        inputs,
        outputs,
        activation,
        lo,
        hi,
        in_scale,
        w_scale,
        weights,
        bias,
    })
}
