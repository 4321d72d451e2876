//! The target column: class labels or values, and the choice between them.

use tessera_core::Task;

use super::{Cell, DataError, Table};

/// Whether the target is a class label or a value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TaskHint {
    /// Decide from the values: text labels, or few distinct integers, mean
    /// classification; anything else regression.
    Auto,
    /// Class labels.
    Classification,
    /// Real values.
    Regression,
}

/// An encoded target.
#[derive(Clone, Debug, PartialEq)]
pub struct Target {
    /// What the learner is asked to learn.
    pub task: Task,
    /// Class labels by index (empty for regression).
    pub classes: Vec<String>,
    /// Class indices or values, one per row.
    pub y: Vec<f32>,
}

// Integer targets with at most this many distinct values are taken for class
// labels when the task is not given; more distinct values read as a count or
// a measurement (the diabetes target has over 200).
const MAX_AUTO_CLASSES: usize = 100;

/// A target cell, read as a label or a value.
enum Value<'a> {
    Number(f64),
    Text(&'a str),
}

impl Table {
    fn target_cells(&self, name: &str) -> Result<(usize, Vec<Value<'_>>), DataError> {
        let c = self.column(name, "target column")?;
        let mut out = Vec::with_capacity(self.n_rows());
        for r in 0..self.n_rows() {
            out.push(match self.cell(c, r) {
                Cell::Missing => {
                    return Err(DataError::MissingTarget {
                        path: self.path.clone(),
                        line: self.line(r),
                        column: name.to_string(),
                    });
                }
                Cell::Number(v) => Value::Number(self.wide(c, r).unwrap_or(f64::from(v))),
                Cell::Text(t) => Value::Text(t),
            });
        }
        Ok((c, out))
    }

    /// Encodes the target column for training, choosing the task per `hint`.
    ///
    /// # Errors
    /// A missing column, an empty target cell, text labels for regression,
    /// or fewer than two classes.
    pub fn target(&self, name: &str, hint: TaskHint) -> Result<Target, DataError> {
        let (_, cells) = self.target_cells(name)?;
        let bad = |what: String| DataError::BadTarget {
            path: self.path.clone(),
            column: name.to_string(),
            what,
        };
        let first_text = cells.iter().position(|v| matches!(v, Value::Text(_)));
        let classify = match (hint, first_text) {
            (TaskHint::Classification, _) => true,
            (TaskHint::Regression, Some(r)) => {
                let Value::Text(t) = cells[r] else {
                    unreachable!()
                };
                return Err(bad(format!(
                    "`{t}` on line {} is not a number, and regression needs numbers",
                    self.line(r)
                )));
            }
            (TaskHint::Regression, None) => false,
            (TaskHint::Auto, Some(_)) => true,
            (TaskHint::Auto, None) => {
                let nums = || {
                    cells.iter().map(|v| match v {
                        Value::Number(x) => *x,
                        Value::Text(_) => f64::NAN,
                    })
                };
                let integral = nums().all(|x| x.is_finite() && x.fract() == 0.0);
                let mut distinct: Vec<i64> = if integral {
                    nums().map(|x| x as i64).collect()
                } else {
                    Vec::new()
                };
                distinct.sort_unstable();
                distinct.dedup();
                integral
                    && distinct.len() <= MAX_AUTO_CLASSES
                    && distinct.len() * 2 <= cells.len().max(4)
            }
        };
        if !classify {
            let mut y = Vec::with_capacity(cells.len());
            for (r, v) in cells.iter().enumerate() {
                let Value::Number(x) = v else { unreachable!() };
                if !x.is_finite() {
                    return Err(bad(format!("value on line {} is not finite", self.line(r))));
                }
                y.push(*x as f32);
            }
            return Ok(Target {
                task: Task::regression(),
                classes: Vec::new(),
                y,
            });
        }
        let labels: Vec<String> = cells.iter().map(label).collect();
        let mut classes = labels.clone();
        classes.sort_by(|a, b| cmp_labels(a, b));
        classes.dedup();
        if classes.len() < 2 {
            return Err(bad(format!(
                "classification needs at least two classes, found only `{}`",
                classes[0]
            )));
        }
        let y = labels
            .iter()
            .map(|l| {
                classes
                    .binary_search_by(|c| cmp_labels(c, l))
                    .expect("label is a class") as f32
            })
            .collect();
        Ok(Target {
            task: Task::classification(classes.len() as u32),
            classes,
            y,
        })
    }

    /// Reads the target columns `names`: one as [`Table::target`] reads
    /// it, several as the values of a multi-output regression, row-major
    /// (`rows x names.len()`).
    ///
    /// # Errors
    /// No name, a name given twice, classification asked of several
    /// columns, or a column [`Table::target_like`] refuses.
    pub fn targets(&self, names: &[String], hint: TaskHint) -> Result<Target, DataError> {
        let bad = |column: &str, what: String| DataError::BadTarget {
            path: self.path.clone(),
            column: column.to_string(),
            what,
        };
        match names {
            [] => return Err(bad("", "no target column was named".into())),
            [one] => return self.target(one, hint),
            _ => {}
        }
        if let Some((i, n)) = names
            .iter()
            .enumerate()
            .find(|(i, n)| names[..*i].contains(n))
        {
            return Err(bad(
                n,
                format!("it is named twice (target {} of {})", i + 1, names.len()),
            ));
        }
        if hint == TaskHint::Classification {
            return Err(bad(
                &names[0],
                format!(
                    "{} target columns make a multi-output regression; classification takes \
                     one target",
                    names.len()
                ),
            ));
        }
        Ok(Target {
            task: Task::regression_targets(names.len() as u32),
            classes: Vec::new(),
            y: self.values_of(names)?,
        })
    }

    /// The numeric columns `names`, row-major, for several regression
    /// targets.
    ///
    /// # Errors
    /// As [`Table::target_like`] for regression, or a value that is not
    /// finite.
    pub fn values_of(&self, names: &[String]) -> Result<Vec<f32>, DataError> {
        let k = names.len();
        let mut y = vec![0.0f32; self.n_rows() * k];
        for (j, name) in names.iter().enumerate() {
            let col = self.target_like(name, &[])?;
            if let Some(r) = col.iter().position(|v| !v.is_finite()) {
                return Err(DataError::BadTarget {
                    path: self.path.clone(),
                    column: name.clone(),
                    what: format!("value on line {} is not finite", self.line(r)),
                });
            }
            for (r, v) in col.into_iter().enumerate() {
                y[r * k + j] = v;
            }
        }
        Ok(y)
    }

    /// Encodes the target column against a trained model's classes (or as
    /// values, for regression), for evaluation.
    ///
    /// # Errors
    /// A missing column, an empty cell, a label the model does not know, or
    /// a non-numeric value for regression.
    pub fn target_like(&self, name: &str, classes: &[String]) -> Result<Vec<f32>, DataError> {
        let (_, cells) = self.target_cells(name)?;
        cells
            .iter()
            .enumerate()
            .map(|(r, v)| match (v, classes.is_empty()) {
                (Value::Number(x), true) => Ok(*x as f32),
                (Value::Text(t), true) => Err(DataError::NotANumber {
                    path: self.path.clone(),
                    line: self.line(r),
                    column: name.to_string(),
                    value: t.to_string(),
                }),
                (_, false) => {
                    let l = label(v);
                    classes
                        .iter()
                        .position(|c| *c == l)
                        .map(|i| i as f32)
                        .ok_or_else(|| DataError::UnknownLabel {
                            path: self.path.clone(),
                            line: self.line(r),
                            column: name.to_string(),
                            label: l,
                            classes: classes.join(", "),
                        })
                }
            })
            .collect()
    }
}

/// Integral numbers are written without a fraction (`1.0` and `1` are the
/// same class); other numbers in their shortest form; text as written.
fn label(v: &Value<'_>) -> String {
    match v {
        Value::Number(x) if x.is_finite() && x.fract() == 0.0 && x.abs() < 1e15 => {
            format!("{}", *x as i64)
        }
        Value::Number(x) => format!("{}", *x as f32),
        Value::Text(t) => t.to_string(),
    }
}

/// Numbers in numeric order first, then text in byte order.
fn cmp_labels(a: &str, b: &str) -> std::cmp::Ordering {
    match (a.parse::<f64>(), b.parse::<f64>()) {
        (Ok(x), Ok(y)) => x.total_cmp(&y),
        (Ok(_), Err(_)) => std::cmp::Ordering::Less,
        (Err(_), Ok(_)) => std::cmp::Ordering::Greater,
        (Err(_), Err(_)) => a.cmp(b),
    }
}
