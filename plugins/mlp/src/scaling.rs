//! What happens to a raw input row before the first layer: missing
//! values filled (or refused), then standardized. Learned at fit time,
//! stored in the model and in the exchange form
//! ([`DenseNetwork::input_fill`](tessera_core::ir::DenseNetwork), `input_mean`,
//! `input_scale`), so serving takes raw features.

use tessera_core::{MatrixRef, PluginError};

/// The input transformation. Each vector is empty (step skipped) or one
/// value per feature.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Scaling {
    /// Subtracted from each feature.
    pub mean: Vec<f32>,
    /// Multiplies each feature after the offset.
    pub scale: Vec<f32>,
    /// What a missing (NaN or infinite) value becomes, before the offset.
    pub fill: Vec<f32>,
}

/// A missing value with no fill: its row and column.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Missing {
    /// Row index.
    pub row: usize,
    /// Column index.
    pub col: usize,
}

impl Missing {
    /// The error for it, naming the column by `names` where known.
    pub fn error(self, names: &[String], during: &str) -> PluginError {
        let col = names.get(self.col).map_or_else(
            || format!("column {}", self.col),
            |n| format!("column `{n}`"),
        );
        PluginError::input(format!(
            "mlp: {during}: row {} (counting data rows from 0) has a missing or infinite value \
             in {col}; train with impute = \"mean\" to fill missing values with the training \
             mean",
            self.row
        ))
    }
}

impl Scaling {
    /// Learns the transformation from the training inputs: per-feature
    /// means and standard deviations over the present values (a constant
    /// feature keeps scale 1, as scikit-learn's `StandardScaler`), and
    /// the fill values when `impute_mean`.
    ///
    /// # Errors
    /// A missing value when not `impute_mean`.
    pub fn fit(x: MatrixRef<'_>, standardize: bool, impute_mean: bool) -> Result<Self, Missing> {
        let p = x.cols();
        let mut sum = vec![0.0f64; p];
        let mut count = vec![0usize; p];
        for (r, row) in x.as_slice().chunks_exact(p).enumerate() {
            for (j, &v) in row.iter().enumerate() {
                if v.is_finite() {
                    sum[j] += f64::from(v);
                    count[j] += 1;
                } else if !impute_mean {
                    return Err(Missing { row: r, col: j });
                }
            }
        }
        let mean: Vec<f64> = sum
            .iter()
            .zip(&count)
            .map(|(s, &c)| if c > 0 { s / c as f64 } else { 0.0 })
            .collect();
        let mut out = Self::default();
        if impute_mean {
            out.fill = mean.iter().map(|&m| m as f32).collect();
        }
        if standardize {
            let mut sq = vec![0.0f64; p];
            for row in x.as_slice().chunks_exact(p) {
                for (j, &v) in row.iter().enumerate() {
                    if v.is_finite() {
                        let d = f64::from(v) - mean[j];
                        sq[j] += d * d;
                    }
                }
            }
            out.mean = mean.iter().map(|&m| m as f32).collect();
            out.scale = sq
                .iter()
                .zip(&count)
                .map(|(s, &c)| {
                    let sd = (s / c.max(1) as f64).sqrt();
                    if sd < 10.0 * f64::EPSILON {
                        1.0
                    } else {
                        (1.0 / sd) as f32
                    }
                })
                .collect();
        }
        Ok(out)
    }

    /// Transforms row `src` into `dst`, in passes that vectorize: fill,
    /// then offset and scale.
    ///
    /// # Errors
    /// The column of a missing value when there is no fill.
    #[inline]
    pub fn row(&self, src: &[f32], dst: &mut [f32]) -> Result<(), usize> {
        let p = src.len();
        if self.fill.len() == p {
            for ((d, &v), &f) in dst.iter_mut().zip(src).zip(&self.fill) {
                *d = if v.is_finite() { v } else { f };
            }
        } else {
            if let Some(j) = src.iter().position(|v| !v.is_finite()) {
                return Err(j);
            }
            dst.copy_from_slice(src);
        }
        if self.mean.len() == p && self.scale.len() == p {
            for ((d, &m), &s) in dst.iter_mut().zip(&self.mean).zip(&self.scale) {
                *d = (*d - m) * s;
            }
        }
        Ok(())
    }

    /// Transforms the rows of `src` (`p` values each) into `dst`, without
    /// looking for missing values: the caller has made sure that every
    /// one has a fill ([`Scaling::first_unfillable`]).
    pub fn rows_checked(&self, src: &[f32], dst: &mut [f32], p: usize) {
        for (s, d) in src.chunks_exact(p).zip(dst.chunks_exact_mut(p)) {
            if self.fill.len() == p {
                for ((d, &v), &f) in d.iter_mut().zip(s).zip(&self.fill) {
                    *d = if v.is_finite() { v } else { f };
                }
            } else {
                d.copy_from_slice(s);
            }
            if self.mean.len() == p && self.scale.len() == p {
                for ((d, &m), &k) in d.iter_mut().zip(&self.mean).zip(&self.scale) {
                    *d = (*d - m) * k;
                }
            }
        }
    }

    /// Transforms every row of `x` (`p` columns) into a new matrix.
    ///
    /// # Errors
    /// The first missing value when there is no fill.
    pub fn apply(&self, x: &[f32], p: usize) -> Result<Vec<f32>, Missing> {
        let mut out = vec![0.0; x.len()];
        for (r, (src, dst)) in x.chunks_exact(p).zip(out.chunks_exact_mut(p)).enumerate() {
            self.row(src, dst).map_err(|col| Missing { row: r, col })?;
        }
        Ok(out)
    }

    /// The first missing value of `x` that has no fill.
    pub fn first_unfillable(&self, x: &[f32], p: usize) -> Option<Missing> {
        if !self.fill.is_empty() {
            return None;
        }
        // A branch-free test per block of values (it vectorizes), then the
        // search within the block that has one.
        let block = x
            .chunks(256)
            .position(|c| c.iter().fold(false, |bad, v| bad | !v.is_finite()))?;
        let i = block * 256 + x[block * 256..].iter().position(|v| !v.is_finite())?;
        Some(Missing {
            row: i / p,
            col: i % p,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn standardizes_and_fills_with_the_mean() {
        let x = [1.0, 5.0, 3.0, 5.0, f32::NAN, 5.0];
        let m = MatrixRef::new(&x, 3, 2).unwrap();
        let e = Scaling::fit(m, true, false).unwrap_err();
        assert_eq!(e, Missing { row: 2, col: 0 });
        let s = Scaling::fit(m, true, true).unwrap();
        assert_eq!(s.mean, vec![2.0, 5.0]);
        assert_eq!(s.scale, vec![1.0, 1.0]); // sd 1; constant column keeps 1
        assert_eq!(s.fill, vec![2.0, 5.0]);
        let out = s.apply(&x, 2).unwrap();
        assert_eq!(out, vec![-1.0, 0.0, 1.0, 0.0, 0.0, 0.0]);
        let plain = Scaling::fit(m, false, true).unwrap();
        assert!(plain.mean.is_empty() && plain.scale.is_empty());
        assert_eq!(plain.apply(&x, 2).unwrap()[4], 2.0);
        assert_eq!(
            Scaling::default().first_unfillable(&x, 2),
            Some(Missing { row: 2, col: 0 })
        );
        let e = Missing { row: 2, col: 0 }.error(&["age".into()], "predict");
        assert!(
            e.message.contains("row 2") && e.message.contains("`age`"),
            "{}",
            e.message
        );
    }
}
