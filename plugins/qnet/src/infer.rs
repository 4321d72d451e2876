//! Inference: the plan a quantized network runs by (weights packed for
//! the kernel, the requantization factors of every layer worked out
//! once), and one block of rows through it.
//!
//! Static calibration: raw rows are filled, offset, scaled and quantized
//! in one pass; each hidden layer with `relu` or no activation is one
//! kernel call whose requantization (`sum * in_scale * w_scale /
//! next_scale`, clamped to the next input's range) is also the ReLU;
//! a `tanh` or `logistic` hidden layer goes through `f32` for its
//! activation and is quantized again; the last layer's sums come out as
//! `f32` for its activation. Dynamic quantization goes through `f32`
//! after every layer: each row's input to each layer is quantized with
//! the scale of its own largest magnitude, and the layer's `f32` output
//! is `sum * row_scale * w_scale + bias`.

use std::cell::RefCell;

use tessera_core::ir::Activation;

use crate::{
    kernel::{self, Epilogue, Packed},
    math,
    network::{Bias, Calibration, QuantizedNetwork},
    scheme::{round_to_int, scale_for},
};

/// A quantized network ready to run.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Plan {
    features: usize,
    /// Per feature: what a missing value becomes (zeros when the network
    /// has no fill values: missing values are refused before a block
    /// runs).
    fill: Vec<f32>,
    /// Per feature: the offset.
    mean: Vec<f32>,
    /// Per feature: the input scale, over the first layer's input scale
    /// when static.
    mult: Vec<f32>,
    /// Whether missing values are filled (else refused).
    has_fill: bool,
    /// The first layer's input range.
    lo: i32,
    hi: i32,
    dynamic: bool,
    steps: Vec<Step>,
    /// The widest row of any buffer.
    width: usize,
}

#[derive(Clone, Debug, PartialEq)]
struct Step {
    packed: Packed,
    act: Activation,
    outputs: usize,
    kind: Kind,
}

/// What follows a layer's sums.
#[derive(Clone, Debug, PartialEq)]
enum Kind {
    /// Static, hidden, `relu` or no activation: requantized by the
    /// kernel into the next input's range.
    Requant { mult: Vec<f32>, lo: i32, hi: i32 },
    /// Static, hidden, another activation: to `f32` by `mult`, the
    /// activation, then times `inv_next` into `lo..=hi`.
    Float {
        mult: Vec<f32>,
        inv_next: f32,
        lo: i32,
        hi: i32,
    },
    /// Static, last: to `f32` by `mult`.
    Last { mult: Vec<f32> },
    /// Dynamic: this layer's input range, the weight scales (as kernel
    /// factors) and the `f32` biases.
    Dynamic {
        lo: i32,
        hi: i32,
        w_scale: Vec<f32>,
        bias: Vec<f32>,
    },
}

/// Pads `v` with zeros to `n` values.
fn padded(mut v: Vec<f32>, n: usize) -> Vec<f32> {
    v.resize(n, 0.0);
    v
}

/// One block of rows, as work for [`kernel::with_avx2`].
struct Job<'a> {
    plan: &'a Plan,
    s: &'a mut Scratch,
    x: &'a [f32],
    out: &'a mut [f32],
    activate: bool,
}

impl kernel::Wide for Job<'_> {
    type Out = bool;

    #[inline(always)]
    fn run(self) -> bool {
        self.plan.block_in(self.s, self.x, self.out, self.activate)
    }
}

/// Scratch of one block, kept per thread between calls.
#[derive(Default)]
struct Scratch {
    q: [Vec<i16>; 2],
    f: [Vec<f32>; 2],
    row_scale: Vec<f32>,
}

thread_local! {
    static SCRATCH: RefCell<Scratch> = RefCell::new(Scratch::default());
}

impl Plan {
    /// Works out the plan of `q` (already checked, by construction or by
    /// `from_bytes`).
    pub fn new(q: &QuantizedNetwork) -> Self {
        let p = q.n_features();
        let dynamic = q.calibration == Calibration::Dynamic;
        let first = &q.layers[0];
        let inv0 = if dynamic {
            1.0
        } else {
            1.0 / f64::from(first.in_scale)
        };
        let mult = (0..p)
            .map(|j| (f64::from(q.input_scale.get(j).copied().unwrap_or(1.0)) * inv0) as f32)
            .collect();
        let mean = padded(q.input_mean.clone(), p);
        let fill = padded(q.input_fill.clone(), p);
        let last = q.layers.len() - 1;
        let mut width = p.div_ceil(2) * 2;
        let steps = q
            .layers
            .iter()
            .enumerate()
            .map(|(i, l)| {
                let bias: Vec<i64> = match &l.bias {
                    Bias::Int(b) => b.clone(),
                    Bias::Float(_) => vec![0; l.outputs],
                };
                let packed = Packed::new(&l.weights, &bias, l.inputs, l.outputs, q.bits == 16);
                let np = packed.padded_outputs();
                width = width.max(np);
                let unit = |o: usize| f64::from(l.in_scale) * f64::from(l.w_scale[o]);
                let factors =
                    |k: f64| padded((0..l.outputs).map(|o| (unit(o) * k) as f32).collect(), np);
                let kind = match (&l.bias, q.layers.get(i + 1)) {
                    (Bias::Float(b), _) => Kind::Dynamic {
                        lo: l.lo,
                        hi: l.hi,
                        w_scale: padded(l.w_scale.clone(), np),
                        bias: padded(b.clone(), np),
                    },
                    (Bias::Int(_), None) => Kind::Last { mult: factors(1.0) },
                    (Bias::Int(_), Some(next)) => {
                        let inv_next = 1.0 / f64::from(next.in_scale);
                        if matches!(l.activation, Activation::Relu | Activation::Identity) {
                            Kind::Requant {
                                mult: factors(inv_next),
                                lo: next.lo,
                                hi: next.hi,
                            }
                        } else {
                            Kind::Float {
                                mult: factors(1.0),
                                inv_next: inv_next as f32,
                                lo: next.lo,
                                hi: next.hi,
                            }
                        }
                    }
                };
                debug_assert!(i == last || !matches!(kind, Kind::Last { .. }));
                Step {
                    packed,
                    act: l.activation,
                    outputs: l.outputs,
                    kind,
                }
            })
            .collect();
        Self {
            features: p,
            has_fill: !q.input_fill.is_empty(),
            fill,
            mean,
            mult,
            lo: first.lo,
            hi: first.hi,
            dynamic,
            steps,
            width,
        }
    }

    /// Input width.
    pub fn features(&self) -> usize {
        self.features
    }

    /// Output width.
    #[inline(always)]
    pub fn outputs(&self) -> usize {
        self.steps.last().map_or(0, |s| s.outputs)
    }

    /// The last layer's activation.
    #[inline(always)]
    pub fn last_activation(&self) -> Activation {
        self.steps.last().map_or(Activation::Identity, |s| s.act)
    }

    /// Runs the rows of `x` (raw features) into `out` (`outputs` values
    /// a row), applying the last layer's activation when `activate`.
    /// Returns whether a row has a missing (non-finite) value the network
    /// cannot fill; `out` is then meaningless.
    pub fn block(&self, x: &[f32], out: &mut [f32], activate: bool) -> bool {
        SCRATCH.with_borrow_mut(|s| {
            kernel::with_avx2(Job {
                plan: self,
                s,
                x,
                out,
                activate,
            })
        })
    }

    #[inline(always)]
    fn block_in(&self, s: &mut Scratch, x: &[f32], out: &mut [f32], activate: bool) -> bool {
        let rows = x.len() / self.features.max(1);
        let need = rows * self.width;
        for q in &mut s.q {
            if q.len() < need {
                q.resize(need, 0);
            }
        }
        for f in &mut s.f {
            if f.len() < need {
                f.resize(need, 0.0);
            }
        }
        if s.row_scale.len() < rows {
            s.row_scale.resize(rows, 0.0);
        }
        let missing = if self.dynamic {
            self.dynamic_block(s, x, rows, out, activate)
        } else {
            self.static_block(s, x, rows, out, activate)
        };
        missing && !self.has_fill
    }

    /// Fills, offsets and scales row `src` into `dst` (the input
    /// transformation; times the first input's inverse scale when
    /// static). Returns whether a value was missing.
    #[inline(always)]
    fn transform(&self, src: &[f32], dst: &mut [f32]) -> bool {
        let p = self.features;
        let (src, dst) = (&src[..p], &mut dst[..p]);
        let (fill, mean, mult) = (&self.fill[..p], &self.mean[..p], &self.mult[..p]);
        let mut missing = false;
        for j in 0..p {
            let v = src[j];
            let ok = v.is_finite();
            missing |= !ok;
            let v = if ok { v } else { fill[j] };
            dst[j] = (v - mean[j]) * mult[j];
        }
        missing
    }

    #[inline(always)]
    fn static_block(
        &self,
        s: &mut Scratch,
        x: &[f32],
        rows: usize,
        out: &mut [f32],
        activate: bool,
    ) -> bool {
        let p = self.features;
        let [qa, qb] = &mut s.q;
        let [fa, _] = &mut s.f;
        let (mut qa, mut qb) = (qa, qb);
        let mut stride = p.div_ceil(2) * 2;
        let mut missing = false;
        let (fill, mean, mult) = (&self.fill[..p], &self.mean[..p], &self.mult[..p]);
        let (lo, hi) = (self.lo as f32, self.hi as f32);
        for (src, dst) in x.chunks_exact(p).zip(qa.chunks_exact_mut(stride)) {
            // The transformation and the quantization in one pass.
            let (src, row) = (&src[..p], &mut dst[..p]);
            for j in 0..p {
                let v = src[j];
                let ok = v.is_finite();
                missing |= !ok;
                let v = if ok { v } else { fill[j] };
                row[j] = round_to_int(((v - mean[j]) * mult[j]).max(lo).min(hi)) as i16;
            }
            dst[p..].fill(0);
        }
        for step in &self.steps {
            let np = step.packed.padded_outputs();
            let (a, n) = (&qa[..], rows * np);
            match &step.kind {
                Kind::Requant { mult, lo, hi } => {
                    let out = &mut qb[..n];
                    let ep = Epilogue::Requant {
                        mult,
                        lo: *lo,
                        hi: *hi,
                        out,
                    };
                    kernel::layer(&step.packed, a, rows, stride, ep);
                }
                Kind::Float {
                    mult,
                    inv_next,
                    lo,
                    hi,
                } => {
                    let f = &mut fa[..n];
                    kernel::layer(
                        &step.packed,
                        a,
                        rows,
                        stride,
                        Epilogue::Dequant { mult, out: f },
                    );
                    math::activate(step.act, f, np);
                    quantize(f, *inv_next, *lo, *hi, &mut qb[..n]);
                }
                Kind::Last { mult } => {
                    let f = &mut fa[..n];
                    kernel::layer(
                        &step.packed,
                        a,
                        rows,
                        stride,
                        Epilogue::Dequant { mult, out: f },
                    );
                    finish(step, f, np, out, activate);
                    break;
                }
                Kind::Dynamic { .. } => unreachable!("a static plan has no dynamic layers"),
            }
            std::mem::swap(&mut qa, &mut qb);
            stride = np;
        }
        missing
    }

    #[inline(always)]
    fn dynamic_block(
        &self,
        s: &mut Scratch,
        x: &[f32],
        rows: usize,
        out: &mut [f32],
        activate: bool,
    ) -> bool {
        let p = self.features;
        let [qa, _] = &mut s.q;
        let [fa, fb] = &mut s.f;
        let (mut fa, mut fb) = (fa, fb);
        let mut missing = false;
        for (src, dst) in x.chunks_exact(p).zip(fa.chunks_exact_mut(p)) {
            missing |= self.transform(src, dst);
        }
        let mut stride = p;
        for step in &self.steps {
            let Kind::Dynamic {
                lo,
                hi,
                w_scale,
                bias,
            } = &step.kind
            else {
                unreachable!("a dynamic plan has only dynamic layers")
            };
            let k = step.packed.inputs();
            let kp = step.packed.padded_inputs();
            let np = step.packed.padded_outputs();
            for ((src, dst), rs) in fa
                .chunks_exact(stride)
                .zip(qa.chunks_exact_mut(kp))
                .zip(&mut s.row_scale[..rows])
            {
                let src = &src[..k];
                let top = src.iter().fold(0.0f32, |m, v| m.max(v.abs()));
                *rs = scale_for(top, *hi);
                quantize(src, 1.0 / *rs, *lo, *hi, &mut dst[..k]);
                dst[k..].fill(0);
            }
            let f = &mut fb[..rows * np];
            let ep = Epilogue::Dequant {
                mult: w_scale,
                out: f,
            };
            kernel::layer(&step.packed, &qa[..rows * kp], rows, kp, ep);
            for (row, &rs) in f.chunks_exact_mut(np).zip(&s.row_scale[..rows]) {
                for (v, &b) in row.iter_mut().zip(bias) {
                    *v = *v * rs + b;
                }
            }
            std::mem::swap(&mut fa, &mut fb);
            if std::ptr::eq(step, self.steps.last().expect("layers")) {
                finish(step, &fa[..rows * np], np, out, activate);
            } else {
                math::activate(step.act, &mut fa[..rows * np], np);
            }
            stride = np;
        }
        missing
    }
}

/// The last layer's `f32` outputs `f` (rows `np` wide, padding columns
/// after the real ones) into `out`, then through the layer's activation
/// when `activate`.
#[inline(always)]
fn finish(step: &Step, f: &[f32], np: usize, out: &mut [f32], activate: bool) {
    let k = step.outputs;
    for (o, f) in out.chunks_exact_mut(k).zip(f.chunks_exact(np)) {
        o.copy_from_slice(&f[..k]);
    }
    if activate {
        math::activate(step.act, out, k);
    }
}

/// `dst = clamp(round(src * k), lo, hi)`, rounding half to even. `max`
/// then `min` (not `clamp`) so that a NaN lands on `lo`.
#[inline(always)]
fn quantize(src: &[f32], k: f32, lo: i32, hi: i32, dst: &mut [i16]) {
    let (lo, hi) = (lo as f32, hi as f32);
    for (d, &v) in dst.iter_mut().zip(src) {
        *d = round_to_int((v * k).max(lo).min(hi)) as i16;
    }
}
