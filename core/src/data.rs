//! Tensors and training data as they cross the boundary: row-major `f32`
//! with an explicit shape, never an ndarray type.

use abi_stable::{
    StableAbi,
    std_types::{ROption, RSlice, RString, RVec},
};

use crate::error::PluginError;

/// A borrowed row-major `f32` matrix. Missing values are `NaN`.
#[repr(C)]
#[derive(StableAbi, Clone, Copy, Debug)]
pub struct MatrixRef<'a> {
    /// `rows * cols` values, row after row.
    pub data: RSlice<'a, f32>,
    /// Number of rows (samples).
    pub rows: u64,
    /// Number of columns (features or outputs).
    pub cols: u64,
}

impl<'a> MatrixRef<'a> {
    /// Wraps `data` as a `rows x cols` matrix.
    ///
    /// # Errors
    /// When `data.len() != rows * cols`.
    pub fn new(data: &'a [f32], rows: usize, cols: usize) -> Result<Self, PluginError> {
        if rows.checked_mul(cols) != Some(data.len()) {
            return Err(PluginError::input(format!(
                "matrix of {rows} x {cols} needs {} values, got {}",
                rows.saturating_mul(cols),
                data.len()
            )));
        }
        Ok(Self {
            data: RSlice::from_slice(data),
            rows: rows as u64,
            cols: cols as u64,
        })
    }

    /// Number of rows.
    pub fn rows(&self) -> usize {
        self.rows as usize
    }

    /// Number of columns.
    pub fn cols(&self) -> usize {
        self.cols as usize
    }

    /// The values as a plain slice.
    pub fn as_slice(&self) -> &'a [f32] {
        self.data.as_slice()
    }

    /// Row `i`.
    ///
    /// # Panics
    /// When `i >= rows`.
    pub fn row(&self, i: usize) -> &'a [f32] {
        let c = self.cols();
        &self.as_slice()[i * c..(i + 1) * c]
    }

    /// Checks that the shape is consistent and that there are `expected`
    /// columns.
    ///
    /// # Errors
    /// When the buffer length and the shape disagree, or the column count is
    /// not `expected`.
    pub fn check(&self, expected_cols: usize) -> Result<(), PluginError> {
        if (self.rows as usize).checked_mul(self.cols as usize) != Some(self.data.len()) {
            return Err(PluginError::input(format!(
                "matrix shape {} x {} does not match its {} values",
                self.rows,
                self.cols,
                self.data.len()
            )));
        }
        if self.cols as usize != expected_cols {
            return Err(PluginError::input(format!(
                "expected {expected_cols} feature columns, got {}",
                self.cols
            )));
        }
        Ok(())
    }
}

/// An owned row-major `f32` matrix, returned by plugins.
#[repr(C)]
#[derive(StableAbi, Clone, Debug, PartialEq)]
pub struct Matrix {
    /// `rows * cols` values, row after row.
    pub data: RVec<f32>,
    /// Number of rows.
    pub rows: u64,
    /// Number of columns.
    pub cols: u64,
}

impl Matrix {
    /// Wraps `data` as a `rows x cols` matrix.
    ///
    /// # Panics
    /// When `data.len() != rows * cols` (a bug in the caller).
    pub fn new(data: Vec<f32>, rows: usize, cols: usize) -> Self {
        assert_eq!(
            data.len(),
            rows * cols,
            "matrix data does not match its shape"
        );
        Self {
            data: data.into(),
            rows: rows as u64,
            cols: cols as u64,
        }
    }

    /// Borrows this matrix.
    pub fn as_ref(&self) -> MatrixRef<'_> {
        MatrixRef {
            data: self.data.as_rslice(),
            rows: self.rows,
            cols: self.cols,
        }
    }
}

/// What a learner is asked to learn.
///
/// A struct rather than an enum so that new tasks can be added without a
/// layout change.
#[repr(C)]
#[derive(StableAbi, Clone, Copy, Debug, PartialEq, Eq)]
pub struct Task {
    /// [`Task::REGRESSION`] or [`Task::CLASSIFICATION`].
    pub kind: u8,
    /// Number of classes (classification); for regression the number of
    /// targets: 1, or more for multi-output regression (see
    /// [`Task::regression_targets`]).
    pub n_classes: u32,
}

impl Task {
    /// Kind value of a regression task.
    pub const REGRESSION: u8 = 0;
    /// Kind value of a classification task.
    pub const CLASSIFICATION: u8 = 1;

    /// A regression task (one real-valued output).
    pub fn regression() -> Self {
        Self {
            kind: Self::REGRESSION,
            n_classes: 1,
        }
    }

    /// A multi-output regression task: `targets` real values per row,
    /// stored row-major in [`TrainData::y`] (and returned that way by a
    /// model's `predict`). Only learners whose
    /// [`LearnerImpl::multi_output`](crate::plugin::LearnerImpl::multi_output)
    /// says so accept more than one.
    pub fn regression_targets(targets: u32) -> Self {
        Self {
            kind: Self::REGRESSION,
            n_classes: targets.max(1),
        }
    }

    /// Values per row in the target and in `predict`'s output: the
    /// number of regression targets, 1 for classification.
    pub fn n_targets(&self) -> usize {
        if self.is_classification() {
            1
        } else {
            self.n_classes.max(1) as usize
        }
    }

    /// A classification task with `n_classes` classes labelled `0..n_classes`.
    pub fn classification(n_classes: u32) -> Self {
        Self {
            kind: Self::CLASSIFICATION,
            n_classes,
        }
    }

    /// Whether this is a classification task.
    pub fn is_classification(&self) -> bool {
        self.kind == Self::CLASSIFICATION
    }

    /// A lowercase name.
    pub fn name(&self) -> &'static str {
        if self.is_classification() {
            "classification"
        } else {
            "regression"
        }
    }
}

/// Everything a learner gets to train on.
///
/// For classification, `y` holds class indices `0..n_classes` as `f32`;
/// the host maps the user's labels to indices and back. For regression
/// with several targets, `y` is row-major `rows x n_targets`.
#[repr(C)]
#[derive(StableAbi, Clone, Copy, Debug)]
pub struct TrainData<'a> {
    /// Features, one row per sample; `NaN` marks a missing value.
    pub x: MatrixRef<'a>,
    /// Target, one value per row ([`Task::n_targets`] per row for
    /// multi-output regression).
    pub y: RSlice<'a, f32>,
    /// Optional non-negative sample weights, one per row.
    pub weights: ROption<RSlice<'a, f32>>,
    /// One name per feature column.
    pub feature_names: RSlice<'a, RString>,
    /// Regression or classification with its class count.
    pub task: Task,
    /// Held-out rows the learner may score while it trains (early stopping
    /// on a user's validation file), never fit on. Same columns and target
    /// encoding as the training rows.
    pub valid: ROption<Holdout<'a>>,
}

/// Held-out rows: features, target and optional weights, in the encoding of
/// the [`TrainData`] they come with.
#[repr(C)]
#[derive(StableAbi, Clone, Copy, Debug)]
pub struct Holdout<'a> {
    /// Features, one row per sample, the training data's columns.
    pub x: MatrixRef<'a>,
    /// Target, one value per row ([`Task::n_targets`] per row for
    /// multi-output regression).
    pub y: RSlice<'a, f32>,
    /// Optional non-negative sample weights, one per row.
    pub weights: ROption<RSlice<'a, f32>>,
}

impl TrainData<'_> {
    /// Checks the shapes and the target, so each learner need not.
    ///
    /// # Errors
    /// Mismatched lengths, no rows, a missing or non-finite target, a class
    /// index out of range, or a negative/non-finite weight.
    pub fn validate(&self) -> Result<(), PluginError> {
        let rows = self.x.rows();
        self.x.check(self.x.cols())?;
        if rows == 0 {
            return Err(PluginError::input("training data has no rows"));
        }
        if self.x.cols() == 0 {
            return Err(PluginError::input("training data has no feature columns"));
        }
        if self.feature_names.len() != self.x.cols() {
            return Err(PluginError::input(format!(
                "{} feature names for {} columns",
                self.feature_names.len(),
                self.x.cols()
            )));
        }
        check_target(self.y, self.weights, rows, self.task)?;
        if let Some(v) = self.valid.into_option() {
            v.x.check(self.x.cols())
                .map_err(|e| PluginError::input(format!("validation data: {}", e.message)))?;
            check_target(v.y, v.weights, v.x.rows(), self.task)
                .map_err(|e| PluginError::input(format!("validation data: {}", e.message)))?;
        }
        Ok(())
    }
}

/// The rows a compressor may use, in the model's own encoding (class
/// indices for classifiers, the model's feature columns in order).
///
/// `train` is for fitting: calibration samples and fine-tuning. `eval` is
/// for choosing: which trees best keep the metric. Either may be absent;
/// a compressor that needs one and lacks it says so.
#[repr(C)]
#[derive(StableAbi, Clone, Copy, Debug)]
pub struct CompressData<'a> {
    /// Rows to fit on.
    pub train: ROption<Holdout<'a>>,
    /// Rows to choose on.
    pub eval: ROption<Holdout<'a>>,
    /// The model's task: the encoding of the targets.
    pub task: Task,
}

impl<'a> CompressData<'a> {
    /// No rows at all, for a model of `task`.
    pub fn none(task: Task) -> Self {
        Self {
            train: ROption::RNone,
            eval: ROption::RNone,
            task,
        }
    }

    /// Checks both sets against `cols` feature columns and the task.
    ///
    /// # Errors
    /// A set whose shapes or targets are wrong, naming it.
    pub fn validate(&self, cols: usize) -> Result<(), PluginError> {
        for (name, set) in [("training", self.train), ("evaluation", self.eval)] {
            if let Some(h) = set.into_option() {
                h.x.check(cols)
                    .and_then(|()| check_target(h.y, h.weights, h.x.rows(), self.task))
                    .map_err(|e| PluginError::input(format!("{name} data: {}", e.message)))?;
            }
        }
        Ok(())
    }

    /// The training rows, else the evaluation rows.
    pub fn any(&self) -> Option<Holdout<'a>> {
        self.train.into_option().or(self.eval.into_option())
    }
}

/// Checks a target (and weights) of `rows` rows for `task`.
fn check_target(
    y: RSlice<'_, f32>,
    weights: ROption<RSlice<'_, f32>>,
    rows: usize,
    task: Task,
) -> Result<(), PluginError> {
    let per_row = task.n_targets();
    if rows.checked_mul(per_row) != Some(y.len()) {
        return Err(PluginError::input(format!(
            "target has {} values for {rows} rows of {per_row} target(s)",
            y.len()
        )));
    }
    for (i, &v) in y.iter().enumerate() {
        if !v.is_finite() {
            return Err(PluginError::input(format!(
                "target of row {} is missing or not finite",
                i / per_row
            )));
        }
        if task.is_classification() && (v < 0.0 || v.fract() != 0.0 || v as u32 >= task.n_classes) {
            return Err(PluginError::input(format!(
                "target of row {i} is {v}, not a class index below {}",
                task.n_classes
            )));
        }
    }
    if let Some(w) = weights.into_option() {
        if w.len() != rows {
            return Err(PluginError::input(format!(
                "{} sample weights for {rows} rows",
                w.len()
            )));
        }
        if let Some(i) = w.iter().position(|w| !(w.is_finite() && *w >= 0.0)) {
            return Err(PluginError::input(format!(
                "sample weight of row {i} is {}, weights must be finite and non-negative",
                w[i]
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compress_data_names_the_set_at_fault() {
        let x = [1.0f32, 2.0, 3.0, 4.0];
        let good = Holdout {
            x: MatrixRef::new(&x, 2, 2).unwrap(),
            y: RSlice::from_slice(&[0.0, 1.0]),
            weights: ROption::RNone,
        };
        let bad_class = Holdout {
            y: RSlice::from_slice(&[0.0, 5.0]),
            ..good
        };
        let task = Task::classification(2);
        let data = CompressData {
            train: ROption::RSome(good),
            eval: ROption::RSome(bad_class),
            task,
        };
        let e = data.validate(2).unwrap_err();
        assert!(e.message.starts_with("evaluation data:"), "{}", e.message);
        let e = CompressData {
            eval: ROption::RNone,
            ..data
        }
        .validate(3)
        .unwrap_err();
        assert!(e.message.starts_with("training data:"), "{}", e.message);
        assert!(CompressData::none(task).validate(2).is_ok());
        assert!(CompressData::none(task).any().is_none());
        assert_eq!(
            CompressData {
                train: ROption::RNone,
                ..data
            }
            .any()
            .map(|h| h.y.len()),
            Some(2)
        );
    }
}
