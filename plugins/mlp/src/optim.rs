//! The weight optimisers: adam and sgd with momentum, one step over the
//! flat parameter vector with the L2 penalty added on the way, in
//! parallel chunks.

use rayon::prelude::*;

use crate::{net::Net, params::Solver};

/// Parameters per chunk of an optimiser step (chunks run in parallel).
const STEP_CHUNK: usize = 4096;

/// The weight optimiser's state.
pub struct Optimizer {
    solver: Solver,
    /// The current step size (schedules change it between epochs).
    pub lr: f64,
    /// Adam's first moment, or sgd's velocity.
    m: Vec<f32>,
    /// Adam's second moment (unused by sgd).
    v: Vec<f32>,
    /// The L2 factor of every parameter: `alpha` for weights, 0 for
    /// biases.
    decay: Vec<f32>,
    /// Each chunk's share of the penalty, in chunk order.
    sums: Vec<f64>,
    steps: i32,
}

/// A chunk of parameters, first and second moments, with its index.
type Chunk<'a> = (usize, ((&'a mut [f32], &'a mut [f32]), &'a mut [f32]));

/// One step's constants.
#[derive(Clone, Copy)]
struct Rule {
    adam: bool,
    scale: f32,
    b1: f32,
    b2: f32,
    eps: f32,
    momentum: f32,
    nesterov: bool,
    inv_rows: f32,
}

impl Optimizer {
    pub fn new(solver: Solver, lr: f64, net: &Net, alpha: f64) -> Self {
        let n = net.params.len();
        let mut decay = vec![0.0; n];
        for s in net.slots() {
            decay[s.weights.clone()].fill(alpha as f32);
        }
        Self {
            solver,
            lr,
            m: vec![0.0; n],
            v: vec![0.0; n],
            decay,
            sums: Vec::with_capacity(n.div_ceil(STEP_CHUNK)),
            steps: 0,
        }
    }

    /// One step from the gradient sums of a batch of `rows` rows (the
    /// sum of `grads`, added in order), with the L2 penalty. Returns
    /// `sum(decay * w^2)` before the step (twice the penalty, for the
    /// loss). Chunks of parameters run in parallel when `parallel`; the
    /// result is the same either way.
    pub fn step<G: AsRef<[f32]> + Sync>(
        &mut self,
        params: &mut [f32],
        grads: &[G],
        rows: usize,
        parallel: bool,
    ) -> f64 {
        self.steps += 1;
        let rule = match self.solver {
            Solver::Adam {
                beta_1,
                beta_2,
                epsilon,
            } => {
                let t = self.steps;
                let lr = self.lr * (1.0 - beta_2.powi(t)).sqrt() / (1.0 - beta_1.powi(t));
                Rule {
                    adam: true,
                    scale: lr as f32,
                    b1: beta_1 as f32,
                    b2: beta_2 as f32,
                    eps: epsilon as f32,
                    momentum: 0.0,
                    nesterov: false,
                    inv_rows: 1.0 / rows as f32,
                }
            }
            Solver::Sgd { momentum, nesterov } => Rule {
                adam: false,
                scale: self.lr as f32,
                b1: 0.0,
                b2: 0.0,
                eps: 0.0,
                momentum: momentum as f32,
                nesterov,
                inv_rows: 1.0 / rows as f32,
            },
        };
        let Self {
            m, v, decay, sums, ..
        } = self;
        let chunk = |(c, ((p, m), v)): Chunk<'_>| {
            let start = c * STEP_CHUNK;
            let range = start..start + p.len();
            let mut g = [0.0f32; STEP_CHUNK];
            let g = &mut g[..p.len()];
            g.copy_from_slice(&grads[0].as_ref()[range.clone()]);
            for other in &grads[1..] {
                g.iter_mut()
                    .zip(&other.as_ref()[range.clone()])
                    .for_each(|(g, o)| *g += o);
            }
            update(rule, p, m, v, g, &decay[range])
        };
        if parallel && params.len() > STEP_CHUNK {
            // Into a vector kept between steps: no allocation per batch.
            params
                .par_chunks_mut(STEP_CHUNK)
                .zip(m.par_chunks_mut(STEP_CHUNK))
                .zip(v.par_chunks_mut(STEP_CHUNK))
                .enumerate()
                .map(chunk)
                .collect_into_vec(sums);
            sums.iter().sum()
        } else {
            params
                .chunks_mut(STEP_CHUNK)
                .zip(m.chunks_mut(STEP_CHUNK))
                .zip(v.chunks_mut(STEP_CHUNK))
                .enumerate()
                .map(chunk)
                .sum()
        }
    }
}

/// Updates one chunk of parameters `p` (moments `m`, `v`) from gradient
/// sums `g`; returns `sum(decay * p^2)` before the update.
fn update(r: Rule, p: &mut [f32], m: &mut [f32], v: &mut [f32], g: &[f32], decay: &[f32]) -> f64 {
    let mut sq = 0.0f32;
    let it = p.iter_mut().zip(m.iter_mut()).zip(g).zip(decay);
    if r.adam {
        for ((((p, m), &g), &d), v) in it.zip(v.iter_mut()) {
            sq += d * *p * *p;
            let g = (g + d * *p) * r.inv_rows;
            *m = r.b1 * *m + (1.0 - r.b1) * g;
            *v = r.b2 * *v + (1.0 - r.b2) * g * g;
            *p -= r.scale * *m / (v.sqrt() + r.eps);
        }
    } else {
        for (((p, m), &g), &d) in it {
            sq += d * *p * *p;
            let g = (g + d * *p) * r.inv_rows;
            *m = r.momentum * *m - r.scale * g;
            *p += if r.nesterov {
                r.momentum * *m - r.scale * g
            } else {
                *m
            };
        }
    }
    f64::from(sq)
}
