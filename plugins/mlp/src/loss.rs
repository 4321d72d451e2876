//! The losses scikit-learn's MLPs minimise, each tied to its output
//! layer: the output deltas and the loss value of a batch.

use tessera_core::{PluginError, Task, ir::Activation};

/// Probabilities are clipped to `[EPS, 1 - EPS]` in the log loss.
const EPS: f64 = 1e-15;

/// The loss, and so the output layer.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Loss {
    /// Binary log loss on one logistic output.
    Binary,
    /// Multiclass log loss on softmax outputs.
    Softmax,
    /// Half the squared error, identity outputs.
    Squared,
}

impl Loss {
    /// The loss for `task`.
    ///
    /// # Errors
    /// Classification with fewer than two classes.
    pub fn for_task(task: Task) -> Result<Self, PluginError> {
        match (task.is_classification(), task.n_classes) {
            (false, _) => Ok(Self::Squared),
            (true, 2) => Ok(Self::Binary),
            (true, k) if k > 2 => Ok(Self::Softmax),
            (true, k) => Err(PluginError::input(format!(
                "mlp: classification needs at least two classes, the target has {k}"
            ))),
        }
    }

    /// Output width for `task`.
    pub fn outputs(self, task: Task) -> usize {
        match self {
            Self::Softmax => task.n_classes as usize,
            Self::Binary => 1,
            Self::Squared => task.n_targets(),
        }
    }

    /// Target values per row: the outputs for regression, one class
    /// index for classification.
    pub fn target_width(self, outputs: usize) -> usize {
        match self {
            Self::Squared => outputs,
            _ => 1,
        }
    }

    /// The output layer's activation.
    pub fn activation(self) -> Activation {
        match self {
            Self::Binary => Activation::Logistic,
            Self::Softmax => Activation::Softmax,
            Self::Squared => Activation::Identity,
        }
    }

    /// Writes the output layer's deltas (`out - target`, times the row
    /// weight) into `d` (`k` outputs per row) and returns the weighted sum
    /// of the rows' losses. A row's squared loss is half the sum of its
    /// outputs' squared errors, whose gradient the deltas are. (With one
    /// output that is scikit-learn's loss; with several, scikit-learn
    /// reports the mean over outputs but steps along the same deltas.)
    pub fn delta(self, out: &[f32], y: &[f32], w: Option<&[f32]>, d: &mut [f32], k: usize) -> f64 {
        let yw = self.target_width(k);
        let mut total = 0.0;
        for (i, (ty, (o, d))) in y
            .chunks_exact(yw)
            .zip(out.chunks_exact(k).zip(d.chunks_exact_mut(k)))
            .enumerate()
        {
            let wi = w.map_or(1.0, |w| w[i]);
            let t = ty[0];
            let loss = match self {
                Self::Binary => {
                    let p = f64::from(o[0]).clamp(EPS, 1.0 - EPS);
                    d[0] = (o[0] - t) * wi;
                    if t > 0.5 { -p.ln() } else { -(1.0 - p).ln() }
                }
                Self::Softmax => {
                    let c = t as usize;
                    for (j, (d, &o)) in d.iter_mut().zip(o).enumerate() {
                        let hot = if j == c { 1.0 } else { 0.0 };
                        *d = (o - hot) * wi;
                    }
                    -f64::from(o[c]).clamp(EPS, 1.0).ln()
                }
                Self::Squared => {
                    let mut sq = 0.0f64;
                    for ((d, &o), &t) in d.iter_mut().zip(o).zip(ty) {
                        let e = o - t;
                        *d = e * wi;
                        sq += f64::from(e) * f64::from(e);
                    }
                    0.5 * sq
                }
            };
            total += loss * f64::from(wi);
        }
        total
    }
}

/// Index of the largest value (the first of ties).
pub fn argmax(v: &[f32]) -> usize {
    let mut best = 0;
    for (i, &x) in v.iter().enumerate() {
        if x > v[best] {
            best = i;
        }
    }
    best
}
