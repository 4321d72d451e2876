//! Refitting pruned layers by least squares, so that their
//! pre-activations on the given rows match the original network's as
//! closely as what is left allows (the reconstruction step of
//! reconstruction-based pruning, as in ThiNet): whatever a removed unit
//! or weight carried that the kept ones can express moves onto them, so
//! fine-tuning starts much closer.
//!
//! [`select`] chooses which units of a hidden layer to keep and solves
//! the layer after it on them; [`refit_masked`] solves each output of a
//! sparse layer on its own kept inputs.

use tessera_core::ir::DenseLayer;

use super::math::cross;

/// Ridge added to the Gram matrix, relative to its mean diagonal: enough
/// to keep it positive definite when a kept unit never varies, too
/// little to bias a well-posed fit.
const RIDGE: f64 = 1e-3;

/// The units a hidden layer keeps, and the next layer's weights on them
/// (`outputs x kept`, row-major) and biases.
#[derive(Clone, Debug, PartialEq)]
pub struct Selection {
    /// The kept units, ascending.
    pub keep: Vec<usize>,
    /// The next layer's weights on the kept units.
    pub weights: Vec<f32>,
    /// The next layer's biases.
    pub bias: Vec<f32>,
}

/// Chooses `n_keep` of the `width` units whose activations are `h`
/// (`rows x width`) and refits the next layer on them, so that its
/// pre-activations best match `target` (`rows x outputs`, the original
/// network's) in least squares.
///
/// Units go one at a time (greedy backward elimination), each time the
/// one whose loss raises the squared error least: with `A` the inverse
/// Gram matrix of the kept units' activations and `β` the least-squares
/// weights, dropping unit `j` costs `Σ_o β[j,o]² / A[j,j]` (the saliency
/// of optimal brain surgeon), and `A` and `β` follow by a rank-one
/// update. `None` when the system cannot be solved.
pub fn select(
    h: &[f32],
    width: usize,
    n_keep: usize,
    target: &[f32],
    outputs: usize,
) -> Option<Selection> {
    let n = h.len() / width;
    let m = outputs;
    if n == 0 || target.len() != n * m || n_keep == 0 {
        return None;
    }
    let mut hc = h.to_vec();
    let mean_h = center(&mut hc, width);
    let mut z = target.to_vec();
    let mean_z = center(&mut z, m);
    let gram = cross(&hc, width, &hc, width);
    let hz = cross(&hc, width, &z, m);
    let mut g: Vec<f64> = gram.iter().map(|&v| f64::from(v)).collect();
    let trace: f64 = (0..width).map(|i| g[i * width + i]).sum();
    let ridge = RIDGE * trace / width as f64 + f64::MIN_POSITIVE;
    (0..width).for_each(|i| g[i * width + i] += ridge);
    // A = G⁻¹, then β = A B.
    let mut a = vec![0.0f64; width * width];
    (0..width).for_each(|i| a[i * width + i] = 1.0);
    if !cholesky_solve(&mut g, width, &mut a, width) {
        return None;
    }
    let mut beta = vec![0.0f64; width * m];
    for i in 0..width {
        for p in 0..width {
            let aip = a[i * width + p];
            for o in 0..m {
                beta[i * m + o] += aip * f64::from(hz[p * m + o]);
            }
        }
    }
    let mut alive = vec![true; width];
    for _ in n_keep..width {
        let cost = |j: usize| {
            beta[j * m..(j + 1) * m].iter().map(|b| b * b).sum::<f64>() / a[j * width + j]
        };
        // The cheapest unit; ties to the lower index.
        let j = (0..width)
            .filter(|&j| alive[j])
            .min_by(|&x, &y| cost(x).total_cmp(&cost(y)).then(x.cmp(&y)))?;
        alive[j] = false;
        let ajj = a[j * width + j];
        if !(ajj > 0.0 && ajj.is_finite()) {
            return None;
        }
        let col: Vec<f64> = (0..width).map(|i| a[i * width + j]).collect();
        let bj: Vec<f64> = beta[j * m..(j + 1) * m].to_vec();
        for i in (0..width).filter(|&i| alive[i]) {
            let f = col[i] / ajj;
            for (b, &v) in beta[i * m..(i + 1) * m].iter_mut().zip(&bj) {
                *b -= f * v;
            }
            for l in (0..width).filter(|&l| alive[l]) {
                a[i * width + l] -= f * col[l];
            }
        }
    }
    let keep: Vec<usize> = (0..width).filter(|&j| alive[j]).collect();
    let k = keep.len();
    let mut weights = vec![0.0f32; m * k];
    let mut bias = vec![0.0f32; m];
    for o in 0..m {
        let mut b = mean_z[o];
        for (c, &u) in keep.iter().enumerate() {
            let w = beta[u * m + o];
            weights[o * k + c] = w as f32;
            b -= w * mean_h[u];
        }
        bias[o] = b as f32;
    }
    weights
        .iter()
        .chain(&bias)
        .all(|v| v.is_finite())
        .then_some(Selection {
            keep,
            weights,
            bias,
        })
}

/// Most multiply-adds [`refit_masked`] spends on its per-output
/// factorizations (`Σ k³ / 3` over outputs with `k` kept inputs): a few
/// seconds at most. Wider layers keep their magnitude-pruned weights.
pub const MASKED_BUDGET: f64 = 4e9;

/// Refits each output of `layer` on its kept inputs (`mask`, laid out as
/// the weights; the others stay zero) and its bias, from `x`, the
/// layer's inputs in the pruned network (`rows x inputs`), to `target`,
/// the original network's pre-activations (`rows x outputs`). Returns
/// false, leaving `layer` as it was, when that would cost more than
/// [`MASKED_BUDGET`]; an output whose system cannot be solved keeps its
/// weights.
pub fn refit_masked(x: &[f32], target: &[f32], mask: &[bool], layer: &mut DenseLayer) -> bool {
    let (p, m) = (layer.inputs as usize, layer.outputs as usize);
    let n = x.len() / p;
    let cost: f64 = mask
        .chunks_exact(p)
        .map(|r| (r.iter().filter(|k| **k).count() as f64).powi(3) / 3.0)
        .sum();
    if n == 0 || target.len() != n * m || cost > MASKED_BUDGET {
        return false;
    }
    let mut xc = x.to_vec();
    let mean_x = center(&mut xc, p);
    let mut z = target.to_vec();
    let mean_z = center(&mut z, m);
    let gram = cross(&xc, p, &xc, p);
    let rhs = cross(&xc, p, &z, m);
    let trace: f64 = (0..p).map(|i| f64::from(gram[i * p + i])).sum();
    let ridge = RIDGE * trace / p as f64 + f64::MIN_POSITIVE;
    for o in 0..m {
        let kept: Vec<usize> = (0..p).filter(|&i| mask[o * p + i]).collect();
        let k = kept.len();
        let mut g = vec![0.0f64; k * k];
        for (a, &i) in kept.iter().enumerate() {
            for (b, &j) in kept.iter().enumerate() {
                g[a * k + b] = f64::from(gram[i * p + j]);
            }
            g[a * k + a] += ridge;
        }
        let mut w: Vec<f64> = kept.iter().map(|&i| f64::from(rhs[i * m + o])).collect();
        if !cholesky_solve(&mut g, k, &mut w, 1) || w.iter().any(|v| !v.is_finite()) {
            continue;
        }
        let mut b = mean_z[o];
        for (&i, &w) in kept.iter().zip(&w) {
            layer.weights[o * p + i] = w as f32;
            b -= w * mean_x[i];
        }
        layer.bias[o] = b as f32;
    }
    true
}

/// Subtracts each column's mean (`width` columns) and returns the means.
fn center(v: &mut [f32], width: usize) -> Vec<f64> {
    let n = (v.len() / width).max(1) as f64;
    let mut mean = vec![0.0f64; width];
    for row in v.chunks_exact(width) {
        mean.iter_mut()
            .zip(row)
            .for_each(|(m, &x)| *m += f64::from(x));
    }
    mean.iter_mut().for_each(|m| *m /= n);
    for row in v.chunks_exact_mut(width) {
        row.iter_mut()
            .zip(&mean)
            .for_each(|(x, &m)| *x = (f64::from(*x) - m) as f32);
    }
    mean
}

/// Solves `A X = B` in place for symmetric positive definite `a` (`k x
/// k`, overwritten by its Cholesky factor) and `b` (`k x m`, overwritten
/// by `X`). False when `a` is not positive definite.
fn cholesky_solve(a: &mut [f64], k: usize, b: &mut [f64], m: usize) -> bool {
    for j in 0..k {
        let mut d = a[j * k + j];
        for p in 0..j {
            d -= a[j * k + p] * a[j * k + p];
        }
        if d <= 0.0 || !d.is_finite() {
            return false;
        }
        let d = d.sqrt();
        a[j * k + j] = d;
        for i in j + 1..k {
            let mut s = a[i * k + j];
            for p in 0..j {
                s -= a[i * k + p] * a[j * k + p];
            }
            a[i * k + j] = s / d;
        }
    }
    // L y = b, then Lᵀ x = y, a column of b at a time across all m.
    for i in 0..k {
        for p in 0..i {
            let l = a[i * k + p];
            for c in 0..m {
                b[i * m + c] -= l * b[p * m + c];
            }
        }
        let d = a[i * k + i];
        b[i * m..(i + 1) * m].iter_mut().for_each(|v| *v /= d);
    }
    for i in (0..k).rev() {
        for p in i + 1..k {
            let l = a[p * k + i];
            for c in 0..m {
                b[i * m + c] -= l * b[p * m + c];
            }
        }
        let d = a[i * k + i];
        b[i * m..(i + 1) * m].iter_mut().for_each(|v| *v /= d);
    }
    true
}

#[cfg(test)]
mod tests {
    use tessera_core::{ir::Activation, plugin::seeds::SplitMix};

    use super::*;

    #[test]
    fn cholesky_solves_a_small_system() {
        // A = [[4, 2], [2, 3]], X = [[1, -1], [2, 0.5]] -> B = A X.
        let mut a = vec![4.0, 2.0, 2.0, 3.0];
        let mut b = vec![8.0, -3.0, 8.0, -0.5];
        assert!(cholesky_solve(&mut a, 2, &mut b, 2));
        for (got, want) in b.iter().zip([1.0, -1.0, 2.0, 0.5]) {
            assert!((got - want).abs() < 1e-12, "{got} vs {want}");
        }
        let mut singular = vec![1.0, 1.0, 1.0, 1.0];
        assert!(!cholesky_solve(&mut singular, 2, &mut [0.0; 2], 1));
    }

    #[test]
    fn a_sparse_layer_refits_each_output_on_its_kept_inputs() {
        // Input 2 is input 0 + input 1: an output that lost input 2 but
        // kept 0 and 1 can carry its weight exactly.
        let mut rng = SplitMix::new(6);
        let n = 200;
        let mut x = Vec::with_capacity(n * 3);
        for _ in 0..n {
            let (a, b) = (rng.unit() as f32, rng.unit() as f32);
            x.extend([a, b, a + b]);
        }
        let w = [0.5f32, -0.25, 1.0, 0.75, 0.5, -1.0];
        let target: Vec<f32> = x
            .chunks_exact(3)
            .flat_map(|r| {
                (0..2).map(move |o| 0.2 + (0..3).map(|j| w[o * 3 + j] * r[j]).sum::<f32>())
            })
            .collect();
        let mask = [true, true, false, false, true, true];
        let mut layer = DenseLayer {
            inputs: 3,
            outputs: 2,
            weights: w
                .iter()
                .zip(&mask)
                .map(|(w, k)| if *k { *w } else { 0.0 })
                .collect(),
            bias: vec![0.2; 2].into(),
            activation: Activation::Identity,
        };
        assert!(refit_masked(&x, &target, &mask, &mut layer));
        assert_eq!((layer.weights[2], layer.weights[3]), (0.0, 0.0));
        // Output 0: 0.5 + 1, -0.25 + 1. Output 1 lost input 0, which the
        // others express as input 2 - input 1.
        let want = [1.5, 0.75, 0.0, 0.0, 0.5 - 0.75, -1.0 + 0.75];
        for (got, want) in layer.weights.iter().zip(want) {
            assert!((got - want).abs() < 1e-2, "{:?}", layer.weights);
        }
        assert!((layer.bias[1] - 0.2).abs() < 1e-2, "{:?}", layer.bias);
    }

    #[test]
    fn a_unit_that_the_others_express_goes_first_and_is_recovered() {
        // Unit 2 is exactly 2 * unit 0 - unit 1 + 0.5, unit 4 never
        // varies: keeping three of five, those two go, and the refitted
        // layer reproduces the targets.
        let mut rng = SplitMix::new(4);
        let n = 300;
        let mut h = Vec::with_capacity(n * 5);
        for _ in 0..n {
            let (a, b, c) = (rng.unit() as f32, rng.unit() as f32, rng.unit() as f32);
            h.extend([a, b, 2.0 * a - b + 0.5, c, 1.5]);
        }
        let w = [0.3f32, -0.7, 1.1, 0.4, 2.0, -0.2, 0.5, -0.9, 0.8, -1.0];
        let bias = [0.1f32, -0.3];
        let target: Vec<f32> = h
            .chunks_exact(5)
            .flat_map(|r| {
                (0..2).map(move |o| bias[o] + (0..5).map(|j| w[o * 5 + j] * r[j]).sum::<f32>())
            })
            .collect();
        let s = select(&h, 5, 3, &target, 2).unwrap();
        assert_eq!(s.keep.len(), 3);
        assert!(!s.keep.contains(&4), "{:?}", s.keep);
        assert!(s.keep.contains(&3), "{:?}", s.keep);
        let worst = h
            .chunks_exact(5)
            .zip(target.chunks_exact(2))
            .flat_map(|(r, t)| {
                let s = &s;
                (0..2).map(move |o| {
                    let z: f32 = s.bias[o]
                        + s.keep
                            .iter()
                            .enumerate()
                            .map(|(j, &u)| s.weights[o * 3 + j] * r[u])
                            .sum::<f32>();
                    (z - t[o]).abs()
                })
            })
            .fold(0.0f32, f32::max);
        assert!(worst < 1e-2, "worst error {worst}");
        // Keeping all of them reproduces the weights on the varying
        // units.
        let all = select(&h, 5, 5, &target, 2).unwrap();
        assert_eq!(all.keep, vec![0, 1, 2, 3, 4]);
        assert!(select(&h, 5, 0, &target, 2).is_none());
    }
}
