//! The `f32` arithmetic pruning and the sparse model run on: the input
//! transformation of a dense network, a layer's affine map, the
//! cross-products of least-squares refits, and the activations.
//!
//! This is the compressor's own, not the mlp plugin's: plugins do not
//! link each other (each one's library carries its plugin root symbol,
//! so two in one binary collide). The loops put the long, contiguous
//! dimension innermost so that they vectorize without intrinsics; the
//! widths here are a layer's (tens to hundreds) and rows a few thousand
//! at most, where that is fast enough.

use tessera_core::ir::DenseNetwork;

/// A missing (or infinite) input without a fill value: its row and
/// column.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Missing {
    /// The row, counting from 0.
    pub row: usize,
    /// The column, counting from 0.
    pub col: usize,
}

/// What a row goes through before the first layer:
/// `(fill(x) - mean) * scale`, each part skipped when empty.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Scaling {
    /// Offset per feature (empty: none).
    pub mean: Vec<f32>,
    /// Factor per feature after the offset (empty: none).
    pub scale: Vec<f32>,
    /// Value a missing input takes (empty: missing inputs refused).
    pub fill: Vec<f32>,
}

impl Scaling {
    /// The transformation of `net`.
    pub fn of(net: &DenseNetwork) -> Self {
        Self {
            mean: net.input_mean.to_vec(),
            scale: net.input_scale.to_vec(),
            fill: net.input_fill.to_vec(),
        }
    }

    /// Transforms the rows of `src` (`p` values each) into `dst` without
    /// looking for missing values: the caller has made sure that each has
    /// a fill ([`Scaling::first_unfillable`]).
    pub fn rows_checked(&self, src: &[f32], dst: &mut [f32], p: usize) {
        if p == 0 {
            return;
        }
        let fill = self.fill.len() == p;
        let affine = self.mean.len() == p && self.scale.len() == p;
        for (s, d) in src.chunks_exact(p).zip(dst.chunks_exact_mut(p)) {
            if fill {
                for ((d, &v), &f) in d.iter_mut().zip(s).zip(&self.fill) {
                    *d = if v.is_finite() { v } else { f };
                }
            } else {
                d.copy_from_slice(s);
            }
            if affine {
                for ((d, &m), &k) in d.iter_mut().zip(&self.mean).zip(&self.scale) {
                    *d = (*d - m) * k;
                }
            }
        }
    }

    /// The first missing or infinite value of `x` (`p` columns) that has
    /// no fill.
    pub fn first_unfillable(&self, x: &[f32], p: usize) -> Option<Missing> {
        if p == 0 || self.fill.len() == p {
            return None;
        }
        let i = x.iter().position(|v| !v.is_finite())?;
        Some(Missing {
            row: i / p,
            col: i % p,
        })
    }

    /// Every row of `x` (`p` columns) transformed, in a new matrix.
    ///
    /// # Errors
    /// The first missing value without a fill.
    pub fn apply(&self, x: &[f32], p: usize) -> Result<Vec<f32>, Missing> {
        if let Some(m) = self.first_unfillable(x, p) {
            return Err(m);
        }
        let mut out = vec![0.0; x.len()];
        self.rows_checked(x, &mut out, p);
        Ok(out)
    }
}

/// `out = x · wt + bias` for `rows` rows of `x` (`rows x inputs`), with
/// `wt` a layer's weights transposed (`inputs x outputs`, row-major) and
/// `out` `rows x outputs`.
///
/// # Panics
/// Buffers shorter than the sizes say.
pub fn affine(x: &[f32], rows: usize, wt: &[f32], bias: &[f32], out: &mut [f32]) {
    let outputs = bias.len();
    if rows == 0 || outputs == 0 {
        return;
    }
    let inputs = wt.len() / outputs;
    for (xr, or) in x
        .chunks_exact(inputs.max(1))
        .zip(out.chunks_exact_mut(outputs))
        .take(rows)
    {
        or.copy_from_slice(bias);
        for (&a, wr) in xr.iter().zip(wt.chunks_exact(outputs)) {
            // ReLU layers feed many exact zeros.
            if a != 0.0 {
                or.iter_mut().zip(wr).for_each(|(o, &w)| *o += a * w);
            }
        }
    }
}

/// `aᵀ · b` (`a_cols x b_cols`, row-major) for `a` (`rows x a_cols`)
/// and `b` (`rows x b_cols`), both row-major with the same rows: the
/// Gram and cross-product matrices of a least-squares fit. Each element
/// adds its products in row order.
pub fn cross(a: &[f32], a_cols: usize, b: &[f32], b_cols: usize) -> Vec<f32> {
    let mut out = vec![0.0f32; a_cols * b_cols];
    if a_cols == 0 || b_cols == 0 {
        return out;
    }
    for (ar, br) in a.chunks_exact(a_cols).zip(b.chunks_exact(b_cols)) {
        for (&v, orow) in ar.iter().zip(out.chunks_exact_mut(b_cols)) {
            if v != 0.0 {
                orow.iter_mut().zip(br).for_each(|(o, &w)| *o += v * w);
            }
        }
    }
    out
}

/// The activations and the class pick are the quantized networks' own
/// (tessera-qnet), so every network form of this plugin computes them
/// alike.
pub use tessera_qnet::math::{activate, argmax};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn products_match_a_plain_sum() {
        // x: 3 x 2, a layer of 2 inputs and 3 outputs.
        let x = [1.0, 2.0, 0.0, -1.0, 3.0, 0.5];
        let w = [[1.0, 0.0], [2.0, -1.0], [0.5, 4.0]]; // outputs x inputs
        let bias = [0.1, 0.2, 0.3];
        let mut wt = vec![0.0; 6];
        for (o, row) in w.iter().enumerate() {
            for (i, &v) in row.iter().enumerate() {
                wt[i * 3 + o] = v;
            }
        }
        let mut out = vec![0.0; 9];
        affine(&x, 3, &wt, &bias, &mut out);
        for r in 0..3 {
            for o in 0..3 {
                let want = bias[o] + w[o][0] * x[r * 2] + w[o][1] * x[r * 2 + 1];
                assert!((out[r * 3 + o] - want).abs() < 1e-6, "{r}, {o}");
            }
        }
        let g = cross(&x, 2, &out, 3);
        for i in 0..2 {
            for j in 0..3 {
                let want: f32 = (0..3).map(|r| x[r * 2 + i] * out[r * 3 + j]).sum();
                assert!((g[i * 3 + j] - want).abs() < 1e-5, "{i}, {j}");
            }
        }
    }

    #[test]
    fn scaling_fills_offsets_and_names_the_missing() {
        let s = Scaling {
            mean: vec![1.0, 2.0],
            scale: vec![2.0, 0.5],
            fill: vec![0.0, 4.0],
        };
        let x = [2.0, f32::NAN, 1.0, 6.0];
        assert_eq!(s.apply(&x, 2).unwrap(), vec![2.0, 1.0, 0.0, 2.0]);
        let bare = Scaling::default();
        assert_eq!(bare.apply(&x, 2), Err(Missing { row: 0, col: 1 }));
        assert_eq!(bare.apply(&x[2..], 2).unwrap(), vec![1.0, 6.0]);
    }
}
