//! The trained model: a linear function per output.
//!
//! Regression models have one output, the prediction. Classification models
//! have one output per class, turned into probabilities by softmax; the
//! prediction is the most probable class.

use serde_json::{Value, json};
use tessera_core::{HostContextRef, Matrix, MatrixRef, PluginError, Task, plugin::ModelImpl};

use crate::{parallel::map_blocks, params::LinearParams, serialize, train::impute};

/// A trained `linear` model.
#[derive(Clone, Debug, PartialEq)]
pub struct LinearModel {
    /// What it was trained for.
    pub task: Task,
    /// The parameters it was trained with.
    pub params: LinearParams,
    /// Training mean of each feature, used in place of missing values; its
    /// length is the number of features.
    pub means: Vec<f64>,
    /// Coefficients, `outputs x features`, row-major.
    pub coef: Vec<f64>,
    /// One intercept per output.
    pub intercept: Vec<f64>,
    /// Solver iterations (0 for the closed-form ridge solution).
    pub iterations: u32,
    /// Whether the solver reached its tolerance.
    pub converged: bool,
}

impl LinearModel {
    /// Number of outputs: 1 for regression, the class count otherwise.
    pub fn n_outputs(&self) -> usize {
        self.intercept.len()
    }

    /// The linear scores, `rows x outputs`, row-major.
    fn scores(&self, ctx: &HostContextRef<'_>, x: MatrixRef<'_>) -> Result<Vec<f64>, PluginError> {
        if ctx.is_cancelled() {
            return Err(PluginError::cancelled());
        }
        let (p, k) = (self.means.len(), self.n_outputs());
        let blocks = map_blocks(ctx.threads() as usize, x.rows(), p * k, 32, |rows| {
            let mut out = Vec::with_capacity(rows.len() * k);
            let mut filled = vec![0.0; p];
            for i in rows {
                for ((f, &v), &m) in filled.iter_mut().zip(x.row(i)).zip(&self.means) {
                    *f = impute(v, m);
                }
                for c in 0..k {
                    let b = &self.coef[c * p..(c + 1) * p];
                    out.push(
                        self.intercept[c] + b.iter().zip(&filled).map(|(b, x)| b * x).sum::<f64>(),
                    );
                }
            }
            out
        });
        Ok(blocks.concat())
    }
}

/// Softmax of one row of scores, in place.
fn softmax(scores: &mut [f64]) {
    let top = scores.iter().fold(f64::NEG_INFINITY, |a, &b| a.max(b));
    let mut sum = 0.0;
    for s in scores.iter_mut() {
        *s = (*s - top).exp();
        sum += *s;
    }
    scores.iter_mut().for_each(|s| *s /= sum);
}

/// Index of the largest value (the first on ties).
fn argmax(values: &[f64]) -> usize {
    let mut best = 0;
    for (i, &v) in values.iter().enumerate() {
        if v > values[best] {
            best = i;
        }
    }
    best
}

impl ModelImpl for LinearModel {
    fn task(&self) -> Task {
        self.task
    }

    fn n_features(&self) -> usize {
        self.means.len()
    }

    fn predict(&self, ctx: &HostContextRef<'_>, x: MatrixRef<'_>) -> Result<Vec<f32>, PluginError> {
        let scores = self.scores(ctx, x)?;
        Ok(if self.task.is_classification() {
            scores
                .chunks_exact(self.n_outputs())
                .map(|row| argmax(row) as f32)
                .collect()
        } else {
            scores.into_iter().map(|s| s as f32).collect()
        })
    }

    fn predict_proba(
        &self,
        ctx: &HostContextRef<'_>,
        x: MatrixRef<'_>,
    ) -> Result<Matrix, PluginError> {
        if !self.task.is_classification() {
            return Err(PluginError::unsupported(
                "linear regression models do not predict probabilities",
            ));
        }
        let k = self.n_outputs();
        let mut scores = self.scores(ctx, x)?;
        scores.chunks_exact_mut(k).for_each(softmax);
        Ok(Matrix::new(
            scores.into_iter().map(|p| p as f32).collect(),
            x.rows(),
            k,
        ))
    }

    fn describe(&self) -> Value {
        let kind = if self.task.is_classification() {
            "multinomial logistic regression"
        } else {
            "ridge regression"
        };
        json!({
            "learner": crate::LEARNER_NAME,
            "model": kind,
            "task": self.task.name(),
            "n_features": self.means.len(),
            "n_outputs": self.n_outputs(),
            "coef_shape": [self.n_outputs(), self.means.len()],
            "intercept": self.intercept,
            "iterations": self.iterations,
            "converged": self.converged,
            "params": self.params.to_json(),
        })
    }

    fn to_bytes(&self) -> Result<Vec<u8>, PluginError> {
        Ok(serialize::to_bytes(self))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tessera_core::NullContext;

    fn model() -> LinearModel {
        LinearModel {
            task: Task::classification(3),
            params: LinearParams::default(),
            means: vec![1.0, -1.0],
            coef: vec![1.0, 0.0, 0.0, 1.0, -1.0, -1.0],
            intercept: vec![0.0, 0.5, 0.0],
            iterations: 3,
            converged: true,
        }
    }

    #[test]
    fn missing_values_take_the_mean() {
        let m = model();
        let ctx = NullContext::default();
        let x = [f32::NAN, 3.0, 2.0, f32::NAN];
        let x = MatrixRef::new(&x, 2, 2).unwrap();
        // Row 0 is (1, 3): scores (1, 3.5, -4). Row 1 is (2, -1): (2, -0.5, -1).
        assert_eq!(m.predict(&ctx.as_ref(), x).unwrap(), vec![1.0, 0.0]);
        let p = m.predict_proba(&ctx.as_ref(), x).unwrap();
        assert_eq!((p.rows, p.cols), (2, 3));
        for row in p.data.chunks(3) {
            assert!((row.iter().sum::<f32>() - 1.0).abs() < 1e-6);
        }
        let expected = 3.5f64.exp() / (1f64.exp() + 3.5f64.exp() + (-4f64).exp());
        assert!((f64::from(p.data[1]) - expected).abs() < 1e-6);
    }

    #[test]
    fn describe_reports_shape() {
        let d = model().describe();
        assert_eq!(d["coef_shape"], json!([3, 2]));
        assert_eq!(d["intercept"], json!([0.0, 0.5, 0.0]));
        assert_eq!(d["converged"], json!(true));
        assert_eq!(d["params"]["C"], json!(1.0));
    }
}
