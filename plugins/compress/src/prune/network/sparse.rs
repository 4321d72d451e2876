//! The sparse network: a dense network whose weight matrices keep only
//! their nonzero entries, row by row (compressed sparse rows), and its
//! bytes.
//!
//! Bytes (little-endian): magic `TSSN`, version (u32), `n_classes`
//! (u32), the three input vectors (u32 count + f32 values: mean, scale,
//! fill), the layer count (u32), then per layer: inputs (u32), outputs
//! (u32), activation (u8), nonzeros (u32), `outputs + 1` row pointers
//! (u32), the column index of every nonzero (u16 when the layer has at
//! most 65536 inputs, else u32), the nonzero values (f32) and the biases
//! (f32).

use tessera_core::{
    PluginError,
    abi_stable::std_types::RVec,
    bytes::{ByteReader, put_u32},
    ir::{Activation, DenseLayer, DenseNetwork},
};

use super::SPARSE_FAMILY;

const MAGIC: &[u8; 4] = b"TSSN";
const VERSION: u32 = 1;
/// Most inputs a layer may have for its column indices to be stored as
/// `u16`.
const NARROW_INPUTS: usize = 1 << 16;

/// One layer: `out = act(W x + b)` with `W` in compressed sparse rows.
#[derive(Clone, Debug, PartialEq)]
pub struct SparseLayer {
    /// Input width.
    pub inputs: usize,
    /// Output width.
    pub outputs: usize,
    /// Where each output's entries start in `cols` / `values`
    /// (`outputs + 1` values, the last one the nonzero count).
    pub row_ptr: Vec<u32>,
    /// The input of each entry, increasing within an output.
    pub cols: Vec<u32>,
    /// The weight of each entry.
    pub values: Vec<f32>,
    /// One bias per output.
    pub bias: Vec<f32>,
    /// Applied to every output.
    pub activation: Activation,
}

/// A dense network stored sparse (see the module documentation for the
/// meaning of each field, which is [`DenseNetwork`]'s).
#[derive(Clone, Debug, PartialEq)]
pub struct SparseNetwork {
    /// Per-feature offset (may be empty).
    pub input_mean: Vec<f32>,
    /// Per-feature factor after the offset (may be empty).
    pub input_scale: Vec<f32>,
    /// Per-feature value of a missing input (may be empty).
    pub input_fill: Vec<f32>,
    /// The layers, input first.
    pub layers: Vec<SparseLayer>,
    /// 0 for regression, otherwise the number of classes.
    pub n_classes: u32,
}

fn activation_of(v: u8) -> Option<Activation> {
    Some(match v {
        0 => Activation::Identity,
        1 => Activation::Relu,
        2 => Activation::Tanh,
        3 => Activation::Logistic,
        4 => Activation::Softmax,
        _ => return None,
    })
}

impl SparseNetwork {
    /// The entries of `net` where `keep` (one vector per layer, laid out
    /// as the layer's weights) is true; `None` keeps every nonzero
    /// weight.
    ///
    /// # Panics
    /// A mask of another shape than the weights (a bug in the caller).
    pub fn from_dense(net: &DenseNetwork, keep: Option<&[Vec<bool>]>) -> Self {
        let layers = net
            .layers
            .iter()
            .enumerate()
            .map(|(l, d)| {
                let (inputs, outputs) = (d.inputs as usize, d.outputs as usize);
                let mut row_ptr = Vec::with_capacity(outputs + 1);
                let (mut cols, mut values) = (Vec::new(), Vec::new());
                row_ptr.push(0);
                for (o, row) in d.weights.chunks_exact(inputs).enumerate() {
                    for (i, &w) in row.iter().enumerate() {
                        let kept = keep.map_or(w != 0.0, |k| k[l][o * inputs + i]);
                        if kept {
                            cols.push(i as u32);
                            values.push(w);
                        }
                    }
                    row_ptr.push(cols.len() as u32);
                }
                SparseLayer {
                    inputs,
                    outputs,
                    row_ptr,
                    cols,
                    values,
                    bias: d.bias.to_vec(),
                    activation: d.activation,
                }
            })
            .collect();
        Self {
            input_mean: net.input_mean.to_vec(),
            input_scale: net.input_scale.to_vec(),
            input_fill: net.input_fill.to_vec(),
            layers,
            n_classes: net.n_classes,
        }
    }

    /// The dense network, with zeros where no entry is stored.
    pub fn to_dense(&self) -> DenseNetwork {
        let layers = self
            .layers
            .iter()
            .map(|s| {
                let mut w = vec![0.0f32; s.inputs * s.outputs];
                for o in 0..s.outputs {
                    let (a, b) = (s.row_ptr[o] as usize, s.row_ptr[o + 1] as usize);
                    for (c, v) in s.cols[a..b].iter().zip(&s.values[a..b]) {
                        w[o * s.inputs + *c as usize] = *v;
                    }
                }
                DenseLayer {
                    inputs: s.inputs as u32,
                    outputs: s.outputs as u32,
                    weights: w.into(),
                    bias: s.bias.clone().into(),
                    activation: s.activation,
                }
            })
            .collect::<RVec<_>>();
        DenseNetwork {
            input_mean: self.input_mean.clone().into(),
            input_scale: self.input_scale.clone().into(),
            input_fill: self.input_fill.clone().into(),
            layers,
            n_classes: self.n_classes,
        }
    }

    /// Input width.
    pub fn n_features(&self) -> usize {
        self.layers.first().map_or(0, |l| l.inputs)
    }

    /// Output width.
    pub fn n_outputs(&self) -> usize {
        self.layers.last().map_or(0, |l| l.outputs)
    }

    /// Stored weights, over all layers.
    pub fn nonzeros(&self) -> usize {
        self.layers.iter().map(|l| l.values.len()).sum()
    }

    /// The bytes (see the module documentation).
    ///
    /// # Errors
    /// More values than a `u32` counts.
    pub fn to_bytes(&self) -> Result<Vec<u8>, PluginError> {
        let put = |out: &mut Vec<u8>, n: usize, what: &str| put_u32(out, n, SPARSE_FAMILY, what);
        let floats = |out: &mut Vec<u8>, v: &[f32], what: &str| {
            put(out, v.len(), what)?;
            v.iter()
                .for_each(|x| out.extend_from_slice(&x.to_le_bytes()));
            Ok::<_, PluginError>(())
        };
        let mut out = Vec::with_capacity(64 + 10 * self.nonzeros());
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&VERSION.to_le_bytes());
        out.extend_from_slice(&self.n_classes.to_le_bytes());
        floats(&mut out, &self.input_mean, "input_mean")?;
        floats(&mut out, &self.input_scale, "input_scale")?;
        floats(&mut out, &self.input_fill, "input_fill")?;
        put(&mut out, self.layers.len(), "layers")?;
        for l in &self.layers {
            put(&mut out, l.inputs, "inputs")?;
            put(&mut out, l.outputs, "outputs")?;
            out.push(l.activation as u8);
            put(&mut out, l.values.len(), "nonzeros")?;
            l.row_ptr
                .iter()
                .for_each(|p| out.extend_from_slice(&p.to_le_bytes()));
            if l.inputs <= NARROW_INPUTS {
                // Below 65536 by the check in `from_bytes` / construction.
                l.cols
                    .iter()
                    .for_each(|&c| out.extend_from_slice(&(c as u16).to_le_bytes()));
            } else {
                l.cols
                    .iter()
                    .for_each(|c| out.extend_from_slice(&c.to_le_bytes()));
            }
            l.values
                .iter()
                .chain(&l.bias)
                .for_each(|v| out.extend_from_slice(&v.to_le_bytes()));
        }
        Ok(out)
    }

    /// Reads what [`SparseNetwork::to_bytes`] wrote and checks it: the
    /// layers chain, row pointers rise from 0 to the nonzero count, column
    /// indices increase within a row and stay below the inputs, every
    /// value is finite, softmax only on the last layer, and the outputs
    /// fit `n_classes`.
    ///
    /// # Errors
    /// Damaged or foreign bytes, named by what was being read.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, PluginError> {
        let mut r = ByteReader::new(bytes, SPARSE_FAMILY);
        if r.take(4, "magic")? != MAGIC {
            return Err(r.corrupt("not a sparse network (bad magic bytes)"));
        }
        let version = r.u32("version")?;
        if version != VERSION {
            return Err(r.corrupt(format!(
                "format version {version}; this build reads version {VERSION}"
            )));
        }
        let n_classes = r.u32("n_classes")?;
        let floats = |r: &mut ByteReader<'_>, n: usize, what: &str| {
            let v = (0..n).map(|_| r.f32(what)).collect::<Result<Vec<_>, _>>()?;
            if v.iter().any(|x| !x.is_finite()) {
                return Err(r.corrupt(format!("{what} has a value that is not finite")));
            }
            Ok(v)
        };
        let mut input = Vec::with_capacity(3);
        for what in ["input_mean", "input_scale", "input_fill"] {
            let n = r.count(4, what)?;
            input.push(floats(&mut r, n, what)?);
        }
        // A layer takes at least 17 bytes (widths, activation, count, two
        // row pointers).
        let n_layers = r.count(17, "layers")?;
        if n_layers == 0 {
            return Err(r.corrupt("no layers"));
        }
        let mut layers = Vec::with_capacity(n_layers);
        for l in 0..n_layers {
            layers.push(read_layer(&mut r, l, n_layers)?);
        }
        r.finish()?;
        let [input_mean, input_scale, input_fill]: [Vec<f32>; 3] =
            input.try_into().map_err(|_| r.corrupt("input vectors"))?;
        let net = Self {
            input_mean,
            input_scale,
            input_fill,
            layers,
            n_classes,
        };
        net.check_shape().map_err(|why| r.corrupt(why))?;
        Ok(net)
    }

    /// How the layers chain, and how the outputs fit the task.
    fn check_shape(&self) -> Result<(), String> {
        let p = self.n_features();
        for (name, v) in [
            ("input_mean", &self.input_mean),
            ("input_scale", &self.input_scale),
            ("input_fill", &self.input_fill),
        ] {
            if !v.is_empty() && v.len() != p {
                return Err(format!("{name} has {} values for {p} inputs", v.len()));
            }
        }
        for (l, w) in self.layers.windows(2).enumerate() {
            if w[1].inputs != w[0].outputs {
                return Err(format!(
                    "layer {} takes {} inputs, but the layer before gives {}",
                    l + 1,
                    w[1].inputs,
                    w[0].outputs
                ));
            }
        }
        check_outputs(self.n_classes, self.n_outputs())
    }
}

/// Whether `outputs` fit a network of `n_classes` (0: regression): one
/// output for two classes, one per class for more.
///
/// # Errors
/// They do not, as a sentence.
pub fn check_outputs(n_classes: u32, outputs: usize) -> Result<(), String> {
    let expect = match n_classes {
        0 => outputs,
        2 => 1,
        k => k as usize,
    };
    if n_classes == 1 || outputs != expect {
        return Err(format!(
            "{outputs} outputs for {n_classes} classes (a classifier has one output for two \
             classes, one per class for more)"
        ));
    }
    Ok(())
}

/// Reads layer `l` of `n`.
fn read_layer(r: &mut ByteReader<'_>, l: usize, n: usize) -> Result<SparseLayer, PluginError> {
    let inputs = r.u32("layer inputs")? as usize;
    let outputs = r.u32("layer outputs")? as usize;
    if inputs == 0 || outputs == 0 {
        return Err(r.corrupt(format!("layer {l} is {inputs} x {outputs}")));
    }
    let a = r.u8("activation")?;
    let activation =
        activation_of(a).ok_or_else(|| r.corrupt(format!("layer {l}: unknown activation {a}")))?;
    if activation == Activation::Softmax && l + 1 != n {
        return Err(r.corrupt(format!("layer {l}: softmax is only for the last layer")));
    }
    let narrow = inputs <= NARROW_INPUTS;
    let entry = if narrow { 6 } else { 8 };
    let nnz = r.count(entry, "nonzeros")?;
    // The row pointers and biases must fit too, before anything is
    // allocated for them.
    let need = (2 * outputs + 1)
        .checked_mul(4)
        .and_then(|b| b.checked_add(nnz * entry));
    if need.is_none_or(|b| b > r.left()) {
        return Err(r.corrupt(format!("truncated in layer {l}")));
    }
    let row_ptr = (0..=outputs)
        .map(|_| r.u32("row pointers"))
        .collect::<Result<Vec<_>, _>>()?;
    if row_ptr[0] != 0
        || row_ptr[outputs] as usize != nnz
        || row_ptr.windows(2).any(|w| w[0] > w[1])
    {
        return Err(r.corrupt(format!(
            "layer {l}: row pointers do not rise from 0 to the {nnz} nonzeros"
        )));
    }
    let cols = (0..nnz)
        .map(|_| {
            if narrow {
                r.take(2, "column indices")
                    .map(|b| u32::from(u16::from_le_bytes([b[0], b[1]])))
            } else {
                r.u32("column indices")
            }
        })
        .collect::<Result<Vec<_>, _>>()?;
    for o in 0..outputs {
        let row = &cols[row_ptr[o] as usize..row_ptr[o + 1] as usize];
        let bad = row.windows(2).any(|w| w[0] >= w[1])
            || row.last().is_some_and(|&c| c as usize >= inputs);
        if bad {
            return Err(r.corrupt(format!(
                "layer {l}: the column indices of output {o} are not increasing below {inputs}"
            )));
        }
    }
    let finite = |r: &mut ByteReader<'_>, k: usize, what: &str| {
        let v = (0..k).map(|_| r.f32(what)).collect::<Result<Vec<_>, _>>()?;
        if v.iter().any(|x| !x.is_finite()) {
            return Err(r.corrupt(format!("layer {l} has {what} that are not finite")));
        }
        Ok(v)
    };
    let values = finite(r, nnz, "weights")?;
    let bias = finite(r, outputs, "biases")?;
    Ok(SparseLayer {
        inputs,
        outputs,
        row_ptr,
        cols,
        values,
        bias,
        activation,
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use tessera_core::plugin::seeds::SplitMix;

    use super::*;

    /// A 3-layer network with about half its weights zero.
    pub(crate) fn half_zero(seed: u64) -> DenseNetwork {
        let mut rng = SplitMix::new(seed);
        let mut layer = |inputs: usize, outputs: usize, activation| DenseLayer {
            inputs: inputs as u32,
            outputs: outputs as u32,
            weights: (0..inputs * outputs)
                .map(|_| {
                    let w = (rng.unit() * 2.0 - 1.0) as f32;
                    if w.abs() < 0.5 { 0.0 } else { w }
                })
                .collect(),
            bias: (0..outputs).map(|o| o as f32 * 0.1 - 0.2).collect(),
            activation,
        };
        DenseNetwork {
            input_mean: vec![0.5; 5].into(),
            input_scale: vec![2.0; 5].into(),
            input_fill: vec![0.0; 5].into(),
            layers: vec![
                layer(5, 7, Activation::Relu),
                layer(7, 4, Activation::Relu),
                layer(4, 3, Activation::Softmax),
            ]
            .into(),
            n_classes: 3,
        }
    }

    #[test]
    fn dense_and_sparse_round_trip() {
        let net = half_zero(3);
        let s = SparseNetwork::from_dense(&net, None);
        let zeros: usize = net
            .layers
            .iter()
            .map(|l| l.weights.iter().filter(|w| **w == 0.0).count())
            .sum();
        assert_eq!(s.nonzeros(), 35 + 28 + 12 - zeros);
        assert_eq!(s.to_dense(), net);
        let bytes = s.to_bytes().unwrap();
        assert_eq!(SparseNetwork::from_bytes(&bytes).unwrap(), s);
        // Widths, activation, count, pointers, u16 indices, values, biases.
        let body: usize = s
            .layers
            .iter()
            .map(|l| 13 + 4 * (l.outputs + 1) + 6 * l.values.len() + 4 * l.outputs)
            .sum();
        assert_eq!(bytes.len(), 12 + 3 * (4 + 20) + 4 + body);
    }

    #[test]
    fn every_truncation_and_damage_is_refused() {
        let bytes = SparseNetwork::from_dense(&half_zero(4), None)
            .to_bytes()
            .unwrap();
        for cut in 0..bytes.len() {
            assert!(
                SparseNetwork::from_bytes(&bytes[..cut]).is_err(),
                "cut at {cut}"
            );
        }
        let mut longer = bytes.clone();
        longer.push(0);
        let e = SparseNetwork::from_bytes(&longer).unwrap_err();
        assert!(e.message.contains("1 unexpected bytes"), "{}", e.message);
        let mut bad = bytes.clone();
        bad[0] = b'X';
        let e = SparseNetwork::from_bytes(&bad).unwrap_err();
        assert!(e.message.contains("magic"), "{}", e.message);
        // The first layer's header sits after magic, version, classes
        // and the three 5-value input vectors, and the layer count.
        let layer = 12 + 3 * 24 + 4;
        let mut bad = bytes.clone();
        bad[layer + 8] = 9;
        let e = SparseNetwork::from_bytes(&bad).unwrap_err();
        assert!(e.message.contains("unknown activation 9"), "{}", e.message);
        let mut bad = bytes.clone();
        bad[layer + 8] = 4;
        let e = SparseNetwork::from_bytes(&bad).unwrap_err();
        assert!(
            e.message.contains("softmax is only for the last"),
            "{}",
            e.message
        );
        // The second row pointer, past the nonzero count.
        let mut bad = bytes.clone();
        bad[layer + 17..layer + 21].copy_from_slice(&1000u32.to_le_bytes());
        let e = SparseNetwork::from_bytes(&bad).unwrap_err();
        assert!(e.message.contains("row pointers"), "{}", e.message);
        // The first column index, out of range.
        let s = SparseNetwork::from_dense(&half_zero(4), None);
        let cols = layer + 17 + 4 * (s.layers[0].outputs + 1);
        let mut bad = bytes.clone();
        bad[cols..cols + 2].copy_from_slice(&7u16.to_le_bytes());
        let e = SparseNetwork::from_bytes(&bad).unwrap_err();
        assert!(
            e.message.contains("not increasing below 5"),
            "{}",
            e.message
        );
        // Two classes need one output.
        let mut bad = bytes;
        bad[8..12].copy_from_slice(&2u32.to_le_bytes());
        let e = SparseNetwork::from_bytes(&bad).unwrap_err();
        assert!(
            e.message.contains("3 outputs for 2 classes"),
            "{}",
            e.message
        );
    }

    #[test]
    fn wide_layers_store_u32_indices() {
        let inputs = NARROW_INPUTS + 1;
        let mut w = vec![0.0f32; inputs];
        w[inputs - 1] = 1.5;
        w[3] = -2.0;
        let net = DenseNetwork {
            input_mean: RVec::new(),
            input_scale: RVec::new(),
            input_fill: RVec::new(),
            layers: vec![DenseLayer {
                inputs: inputs as u32,
                outputs: 1,
                weights: w.into(),
                bias: vec![0.0].into(),
                activation: Activation::Identity,
            }]
            .into(),
            n_classes: 0,
        };
        let s = SparseNetwork::from_dense(&net, None);
        assert_eq!(s.layers[0].cols, vec![3, inputs as u32 - 1]);
        let bytes = s.to_bytes().unwrap();
        assert_eq!(bytes.len(), 12 + 12 + 4 + 13 + 8 + 2 * 8 + 4);
        assert_eq!(SparseNetwork::from_bytes(&bytes).unwrap().to_dense(), net);
    }
}
