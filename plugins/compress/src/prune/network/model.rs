//! The sparse network as a model: prediction with a sparse kernel, the
//! summary, bytes, and the dense exchange form.
//!
//! The kernel works on blocks of `BLOCK` (64) rows held feature-major (one
//! contiguous run of `BLOCK` values per input): each stored weight then
//! adds `w · x[col, ..]` to its output's run, a multiply-add over
//! contiguous values that vectorizes, where row-major rows would gather
//! one scattered input per weight.

use std::cell::RefCell;

use serde_json::{Value, json};
use tessera_core::{
    HostContextRef, Matrix, MatrixRef, PluginError, Task,
    ir::{Activation, ModelIr},
    plugin::{ModelImpl, for_row_blocks_from},
};

use super::{
    SPARSE_FAMILY,
    math::{Scaling, activate, argmax},
    sparse::{SparseLayer, SparseNetwork},
};

/// Rows per block.
const BLOCK: usize = 64;
/// Fewer rows than this are predicted on the caller's thread alone.
const PARALLEL_ROWS: usize = 1024;

thread_local! {
    /// Scratch for one block: scaled rows, two feature-major buffers.
    static SCRATCH: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
}

/// A sparse network, ready to predict.
#[derive(Clone, Debug, PartialEq)]
pub struct SparseModel {
    net: SparseNetwork,
    scaling: Scaling,
    task: Task,
    width: usize,
}

impl SparseModel {
    /// A model of `net` (checked by [`SparseNetwork::from_bytes`] or
    /// built from a checked dense network).
    pub fn new(net: SparseNetwork) -> Self {
        let task = if net.n_classes > 0 {
            Task::classification(net.n_classes)
        } else {
            Task::regression_targets(net.n_outputs() as u32)
        };
        let scaling = Scaling {
            mean: net.input_mean.clone(),
            scale: net.input_scale.clone(),
            fill: net.input_fill.clone(),
        };
        let width = net
            .layers
            .iter()
            .map(|l| l.inputs.max(l.outputs))
            .max()
            .unwrap_or(0);
        Self {
            net,
            scaling,
            task,
            width,
        }
    }

    /// The network.
    pub fn net(&self) -> &SparseNetwork {
        &self.net
    }

    /// The output layer's values for every row of `x`.
    fn outputs(&self, ctx: &HostContextRef<'_>, x: MatrixRef<'_>) -> Result<Vec<f32>, PluginError> {
        let p = self.net.n_features();
        x.check(p)?;
        if let Some(m) = self.scaling.first_unfillable(x.as_slice(), p) {
            return Err(PluginError::input(format!(
                "{SPARSE_FAMILY}: row {} (counting from 0) has a missing or infinite value in \
                 column {}, and the network has no fill value for it",
                m.row, m.col
            )));
        }
        let k = self.net.n_outputs();
        let mut out = vec![0.0; x.rows() * k];
        for_row_blocks_from(
            ctx,
            PARALLEL_ROWS,
            x.as_slice(),
            p,
            &mut out,
            k,
            BLOCK,
            |xb, ob| self.block(xb, ob),
        )?;
        Ok(out)
    }

    /// One block of raw rows (missing values already checked) into
    /// `out`, row-major.
    fn block(&self, x: &[f32], out: &mut [f32]) {
        let p = self.net.n_features();
        let rows = x.len() / p;
        SCRATCH.with_borrow_mut(|s| {
            let need = rows * p + 2 * rows * self.width;
            if s.len() < need {
                s.resize(need, 0.0);
            }
            let (scaled, rest) = s.split_at_mut(rows * p);
            let (mut a, mut b) = rest.split_at_mut(rows * self.width);
            self.scaling.rows_checked(x, scaled, p);
            transpose(scaled, rows, p, a);
            for layer in &self.net.layers {
                let dst = &mut b[..layer.outputs * rows];
                products(layer, a, dst, rows);
                // Softmax runs across a row's outputs, after the block
                // is back in row-major order; the others value by value.
                if layer.activation != Activation::Softmax {
                    activate(layer.activation, dst, layer.outputs);
                }
                std::mem::swap(&mut a, &mut b);
            }
            let k = self.net.n_outputs();
            transpose(&a[..k * rows], k, rows, out);
            if let Some(last) = self.net.layers.last()
                && last.activation == Activation::Softmax
            {
                activate(Activation::Softmax, out, k);
            }
        });
    }
}

/// `dst` (`cols x rows`) = the transpose of `src` (`rows x cols`).
fn transpose(src: &[f32], rows: usize, cols: usize, dst: &mut [f32]) {
    for (r, row) in src.chunks_exact(cols).take(rows).enumerate() {
        for (c, &v) in row.iter().enumerate() {
            dst[c * rows + r] = v;
        }
    }
}

/// `dst = W a + b` for one layer and a block of `rows` rows, `a`
/// (`inputs x rows`) and `dst` (`outputs x rows`) feature-major.
fn products(layer: &SparseLayer, a: &[f32], dst: &mut [f32], rows: usize) {
    #[cfg(target_arch = "x86_64")]
    if is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma") {
        // SAFETY: the CPU has AVX2 and FMA, the features `products_fma`
        // is compiled for; it reads and writes only through slices.
        #[allow(unsafe_code)]
        unsafe {
            products_fma(layer, a, dst, rows)
        };
        return;
    }
    products_with::<false>(layer, a, dst, rows);
}

/// [`products_with`] compiled for AVX2 and FMA: the block's
/// accumulators fit in eight registers and each step is one fused
/// multiply-add per eight rows.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn products_fma(layer: &SparseLayer, a: &[f32], dst: &mut [f32], rows: usize) {
    products_with::<true>(layer, a, dst, rows);
}

/// `acc + w · x`, fused where the CPU has FMA (elsewhere `mul_add` is a
/// slow library call).
#[inline(always)]
fn madd<const FMA: bool>(acc: f32, w: f32, x: f32) -> f32 {
    if FMA { w.mul_add(x, acc) } else { acc + w * x }
}

#[inline(always)]
fn products_with<const FMA: bool>(layer: &SparseLayer, a: &[f32], dst: &mut [f32], rows: usize) {
    for (o, run) in dst.chunks_exact_mut(rows).enumerate() {
        let (from, to) = (layer.row_ptr[o] as usize, layer.row_ptr[o + 1] as usize);
        let entries = layer.cols[from..to].iter().zip(&layer.values[from..to]);
        if let Ok(run) = <&mut [f32; BLOCK]>::try_from(&mut *run) {
            // A whole block: a fixed-size accumulator the compiler keeps
            // in registers across the entries.
            let mut acc = [layer.bias[o]; BLOCK];
            for (&c, &w) in entries {
                let c = c as usize * BLOCK;
                for (acc, &x) in acc.iter_mut().zip(&a[c..c + BLOCK]) {
                    *acc = madd::<FMA>(*acc, w, x);
                }
            }
            *run = acc;
        } else {
            run.fill(layer.bias[o]);
            for (&c, &w) in entries {
                let src = &a[c as usize * rows..(c as usize + 1) * rows];
                for (acc, &x) in run.iter_mut().zip(src) {
                    *acc = madd::<FMA>(*acc, w, x);
                }
            }
        }
    }
}

impl ModelImpl for SparseModel {
    fn task(&self) -> Task {
        self.task
    }

    fn n_features(&self) -> usize {
        self.net.n_features()
    }

    fn predict(&self, ctx: &HostContextRef<'_>, x: MatrixRef<'_>) -> Result<Vec<f32>, PluginError> {
        let out = self.outputs(ctx, x)?;
        let k = self.net.n_outputs();
        Ok(match (self.task.is_classification(), k) {
            (false, _) => out,
            (true, 1) => out
                .iter()
                .map(|&p| if p > 0.5 { 1.0 } else { 0.0 })
                .collect(),
            (true, _) => out.chunks_exact(k).map(|o| argmax(o) as f32).collect(),
        })
    }

    fn predict_proba(
        &self,
        ctx: &HostContextRef<'_>,
        x: MatrixRef<'_>,
    ) -> Result<Matrix, PluginError> {
        if !self.task.is_classification() {
            return Err(PluginError::unsupported(format!(
                "a regression {SPARSE_FAMILY} model does not predict probabilities"
            )));
        }
        let out = self.outputs(ctx, x)?;
        if self.net.n_outputs() == 1 {
            let proba = out.iter().flat_map(|&p| [1.0 - p, p]).collect();
            Ok(Matrix::new(proba, x.rows(), 2))
        } else {
            Ok(Matrix::new(out, x.rows(), self.net.n_outputs()))
        }
    }

    fn describe(&self) -> Value {
        let net = &self.net;
        let layers: Vec<Value> = net
            .layers
            .iter()
            .map(|l| {
                json!({
                    "inputs": l.inputs,
                    "outputs": l.outputs,
                    "activation": l.activation.name(),
                    "nonzeros": l.values.len(),
                    "density": l.values.len() as f64 / (l.inputs * l.outputs) as f64,
                })
            })
            .collect();
        let dense: usize = net.layers.iter().map(|l| l.inputs * l.outputs).sum();
        json!({
            "model": SPARSE_FAMILY,
            "task": self.task.name(),
            "n_classes": if self.task.is_classification() { json!(net.n_classes) } else { Value::Null },
            "n_features": net.n_features(),
            "n_outputs": net.n_outputs(),
            "layers": layers,
            "nonzeros": net.nonzeros(),
            "dense_weights": dense,
            "sparsity": 1.0 - net.nonzeros() as f64 / dense.max(1) as f64,
        })
    }

    fn to_bytes(&self) -> Result<Vec<u8>, PluginError> {
        self.net.to_bytes()
    }

    fn to_ir(&self) -> Option<ModelIr> {
        Some(ModelIr::Network(self.net.to_dense()))
    }
}

#[cfg(test)]
mod tests {
    use tessera_core::{NullContext, ir::DenseNetwork, plugin::seeds::SplitMix};

    use super::*;
    use crate::prune::network::structured::layer_outputs;

    /// The output layer's values of `net` for the `n` rows of `x`, by
    /// the pruning's dense forward pass: row-major, every weight,
    /// nothing in common with the sparse kernel but the activations.
    fn dense_outputs(net: &DenseNetwork, x: &[f32], n: usize) -> Vec<f32> {
        let t = Scaling::of(net).apply(x, net.n_features()).unwrap();
        layer_outputs(net, &t, n, net.layers.len() - 1)
    }

    /// The classes `out` (`k` values a row) stands for.
    fn to_classes(out: &[f32], k: usize) -> Vec<f32> {
        if k == 1 {
            out.iter().map(|&p| f32::from(u8::from(p > 0.5))).collect()
        } else {
            out.chunks_exact(k).map(|o| argmax(o) as f32).collect()
        }
    }

    fn rows(n: usize, p: usize, seed: u64) -> Vec<f32> {
        let mut rng = SplitMix::new(seed);
        (0..n * p)
            .map(|_| (rng.unit() * 6.0 - 3.0) as f32)
            .collect()
    }

    fn close(a: &[f32], b: &[f32], tol: f32) {
        assert_eq!(a.len(), b.len());
        for (i, (x, y)) in a.iter().zip(b).enumerate() {
            assert!((x - y).abs() <= tol, "value {i}: {x} vs {y}");
        }
    }

    /// `net` with its activations changed: the mlp model runs one hidden
    /// activation, the sparse kernel any.
    fn with(
        mut net: DenseNetwork,
        hidden: Activation,
        out: Activation,
        classes: u32,
    ) -> DenseNetwork {
        let n = net.layers.len();
        for l in &mut net.layers[..n - 1] {
            l.activation = hidden;
        }
        net.layers[n - 1].activation = out;
        net.n_classes = classes;
        net
    }

    #[test]
    fn predictions_match_the_dense_network_with_zeros() {
        let base = super::super::sparse::tests::half_zero(6);
        // Rows in several blocks, and past the parallel threshold.
        for n in [1, 65, 2000] {
            let x = rows(n, 5, n as u64);
            let m = MatrixRef::new(&x, n, 5).unwrap();
            for (hidden, out, classes) in [
                (Activation::Relu, Activation::Softmax, 3),
                (Activation::Tanh, Activation::Identity, 0),
                (Activation::Logistic, Activation::Softmax, 3),
            ] {
                let dense = with(base.clone(), hidden, out, classes);
                let sparse = SparseModel::new(SparseNetwork::from_dense(&dense, None));
                let want = dense_outputs(&dense, &x, n);
                let ctx = NullContext { threads: 3 };
                let ctx = ctx.as_ref();
                let got = sparse.predict(&ctx, m).unwrap();
                if classes > 0 {
                    assert_eq!(got, to_classes(&want, 3));
                    let p = sparse.predict_proba(&ctx, m).unwrap();
                    assert_eq!((p.rows, p.cols), (n as u64, 3));
                    close(&p.data, &want, 1e-5);
                } else {
                    close(&got, &want, 1e-5);
                    let e = sparse.predict_proba(&ctx, m).unwrap_err();
                    assert!(e.message.contains("regression"), "{}", e.message);
                }
            }
        }
    }

    #[test]
    fn binary_classifiers_and_missing_values() {
        let mut net = super::super::sparse::tests::half_zero(8);
        let last = net.layers.len() - 1;
        let l = &mut net.layers[last];
        l.outputs = 1;
        // One weight per hidden unit, one of them zero (sparse).
        l.weights = vec![1.0, -0.8, 0.0, 0.6].into();
        l.bias.truncate(1);
        l.activation = Activation::Logistic;
        net.n_classes = 2;
        let mut x = rows(40, 5, 2);
        x[13] = f32::NAN; // filled with 0 by the network
        // The output bias moved to the rows' median, so that both
        // classes are predicted.
        let mut z = dense_outputs(&net, &x, 40);
        z.sort_by(f32::total_cmp);
        let median = (z[19] / (1.0 - z[19])).ln();
        net.layers[last].bias[0] -= median;
        let sparse = SparseModel::new(SparseNetwork::from_dense(&net, None));
        let want = dense_outputs(&net, &x, 40);
        let m = MatrixRef::new(&x, 40, 5).unwrap();
        let ctx = NullContext::default();
        let ctx = ctx.as_ref();
        let got = sparse.predict(&ctx, m).unwrap();
        assert_eq!(got, to_classes(&want, 1));
        // Both classes occur, so the threshold is exercised.
        assert!(got.contains(&0.0) && got.contains(&1.0), "{got:?}");
        let p = sparse.predict_proba(&ctx, m).unwrap();
        assert_eq!(p.cols, 2);
        let pairs: Vec<f32> = want.iter().flat_map(|&q| [1.0 - q, q]).collect();
        close(&p.data, &pairs, 1e-6);
        // Without a fill, a missing value is an error naming it.
        net.input_fill = Default::default();
        let sparse = SparseModel::new(SparseNetwork::from_dense(&net, None));
        let e = sparse.predict(&ctx, m).unwrap_err();
        assert!(
            e.message.contains("row 2") && e.message.contains("column 3"),
            "{}",
            e.message
        );
        let narrow = MatrixRef::new(&x[..40], 10, 4).unwrap();
        assert!(sparse.predict(&ctx, narrow).is_err());
    }

    #[test]
    fn describe_bytes_and_exchange_form() {
        let net = super::super::sparse::tests::half_zero(9);
        let model = SparseModel::new(SparseNetwork::from_dense(&net, None));
        let d = model.describe();
        assert_eq!(d["model"], SPARSE_FAMILY);
        assert_eq!(d["nonzeros"], model.net().nonzeros());
        assert_eq!(d["dense_weights"], 35 + 28 + 12);
        assert_eq!(d["layers"][1]["inputs"], 7);
        let back = SparseNetwork::from_bytes(&model.to_bytes().unwrap()).unwrap();
        assert_eq!(SparseModel::new(back), model);
        assert_eq!(model.to_ir(), Some(ModelIr::Network(net)));
    }
}
