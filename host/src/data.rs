//! Tables read from CSV files: a header row, then one sample per row.
//! Empty cells and `NaN` are missing values.
//!
//! Cells are kept as text until a column is asked for, so columns a model
//! does not use (an id, the target) may hold anything.

use std::path::{Path, PathBuf};

use tessera_core::Task;

/// Why a data file could not be used. Every variant names the file, and the
/// line and column where there is one.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    /// The file cannot be opened or read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// No header row.
    #[error("{path} is empty: expected a header row naming the columns")]
    Empty {
        /// The file.
        path: PathBuf,
    },
    /// The CSV itself is malformed.
    #[error("{path}:{line}: {what}")]
    Malformed {
        /// The file.
        path: PathBuf,
        /// 1-based line.
        line: u64,
        /// What is wrong.
        what: String,
    },
    /// A header names a column twice.
    #[error("{path}:1: column `{name}` appears twice in the header")]
    DuplicateColumn {
        /// The file.
        path: PathBuf,
        /// The repeated name.
        name: String,
    },
    /// A column the caller needs is not there.
    #[error("{}", missing_message(path, what, name, suggestion.as_deref(), columns))]
    MissingColumn {
        /// The file.
        path: PathBuf,
        /// What the column was wanted for ("target column", "feature").
        what: &'static str,
        /// The name asked for.
        name: String,
        /// The closest column name.
        suggestion: Option<String>,
        /// The columns the file has.
        columns: Vec<String>,
    },
    /// A cell that should hold a number does not.
    #[error(
        "{path}:{line}: column `{column}`: `{value}` is not a number (empty cells and NaN mark missing values)"
    )]
    NotANumber {
        /// The file.
        path: PathBuf,
        /// 1-based line.
        line: u64,
        /// The column's name.
        column: String,
        /// The cell's text.
        value: String,
    },
    /// A target cell is empty.
    #[error("{path}:{line}: target column `{column}` is empty; every row needs a target")]
    MissingTarget {
        /// The file.
        path: PathBuf,
        /// 1-based line.
        line: u64,
        /// The column's name.
        column: String,
    },
    /// A label the model never saw.
    #[error(
        "{path}:{line}: label `{label}` in column `{column}` is not one of the model's classes ({classes})"
    )]
    UnknownLabel {
        /// The file.
        path: PathBuf,
        /// 1-based line.
        line: u64,
        /// The column.
        column: String,
        /// The label.
        label: String,
        /// The known classes, comma-separated.
        classes: String,
    },
    /// The target cannot be used for the task asked for.
    #[error("{path}: target column `{column}`: {what}")]
    BadTarget {
        /// The file.
        path: PathBuf,
        /// The column.
        column: String,
        /// What is wrong.
        what: String,
    },
    /// No data rows.
    #[error("{path} has a header but no data rows")]
    NoRows {
        /// The file.
        path: PathBuf,
    },
}

fn missing_message(
    path: &Path,
    what: &str,
    name: &str,
    suggestion: Option<&str>,
    columns: &[String],
) -> String {
    let mut m = format!("{}: no {what} `{name}`", path.display());
    if let Some(s) = suggestion {
        m.push_str(&format!("; did you mean `{s}`?"));
    }
    let shown: Vec<&str> = columns.iter().take(20).map(String::as_str).collect();
    m.push_str(&format!(" (columns: {}", shown.join(", ")));
    if columns.len() > shown.len() {
        m.push_str(&format!(", … {} in all", columns.len()));
    }
    m.push(')');
    m
}

/// A CSV table held as text.
#[derive(Debug, Clone)]
pub struct Table {
    path: PathBuf,
    columns: Vec<String>,
    rows: Vec<csv::StringRecord>,
}

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

impl Table {
    /// Reads a CSV file with a header row.
    ///
    /// # Errors
    /// I/O errors, an empty file, ragged rows, duplicate column names, or no
    /// data rows.
    pub fn read(path: &Path) -> Result<Self, DataError> {
        let file = std::fs::File::open(path).map_err(|source| DataError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Self::from_reader(file, path)
    }

    /// Reads CSV from any reader; `path` is used in messages.
    ///
    /// # Errors
    /// As [`Table::read`].
    pub fn from_reader(reader: impl std::io::Read, path: &Path) -> Result<Self, DataError> {
        let mut rdr = csv::ReaderBuilder::new()
            .has_headers(true)
            .flexible(false)
            .trim(csv::Trim::All)
            .from_reader(reader);
        let malformed = |e: csv::Error| match e.kind() {
            csv::ErrorKind::Io(_) => DataError::Io {
                path: path.to_path_buf(),
                source: std::io::Error::other(e.to_string()),
            },
            csv::ErrorKind::UnequalLengths {
                pos,
                expected_len,
                len,
            } => DataError::Malformed {
                path: path.to_path_buf(),
                line: pos.as_ref().map_or(0, |p| p.line()),
                what: format!("row has {len} fields, the header has {expected_len}"),
            },
            csv::ErrorKind::Utf8 { pos, .. } => DataError::Malformed {
                path: path.to_path_buf(),
                line: pos.as_ref().map_or(0, |p| p.line()),
                what: "row is not valid UTF-8".into(),
            },
            _ => DataError::Malformed {
                path: path.to_path_buf(),
                line: e.position().map_or(0, |p| p.line()),
                what: e.to_string(),
            },
        };
        let header = rdr.headers().map_err(malformed)?.clone();
        if header.is_empty() || (header.len() == 1 && header[0].is_empty()) {
            return Err(DataError::Empty {
                path: path.to_path_buf(),
            });
        }
        let columns: Vec<String> = header.iter().map(str::to_string).collect();
        for (i, c) in columns.iter().enumerate() {
            if columns[..i].contains(c) {
                return Err(DataError::DuplicateColumn {
                    path: path.to_path_buf(),
                    name: c.clone(),
                });
            }
        }
        let mut rows = Vec::new();
        for rec in rdr.records() {
            let rec = rec.map_err(malformed)?;
            // A trailing blank line reads as one empty field; skip it.
            if rec.len() == 1 && rec[0].is_empty() && columns.len() > 1 {
                continue;
            }
            rows.push(rec);
        }
        if rows.is_empty() {
            return Err(DataError::NoRows {
                path: path.to_path_buf(),
            });
        }
        Ok(Self {
            path: path.to_path_buf(),
            columns,
            rows,
        })
    }

    /// The file this table came from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Column names, in file order.
    pub fn columns(&self) -> &[String] {
        &self.columns
    }

    /// Number of data rows.
    pub fn n_rows(&self) -> usize {
        self.rows.len()
    }

    /// The index of column `name`; `what` says what it is for, in errors.
    ///
    /// # Errors
    /// [`DataError::MissingColumn`], with the closest name and the list.
    pub fn column(&self, name: &str, what: &'static str) -> Result<usize, DataError> {
        self.columns.iter().position(|c| c == name).ok_or_else(|| {
            let names: Vec<&str> = self.columns.iter().map(String::as_str).collect();
            DataError::MissingColumn {
                path: self.path.clone(),
                what,
                name: name.to_string(),
                suggestion: tessera_core::params::closest(name, &names).map(str::to_string),
                columns: self.columns.clone(),
            }
        })
    }

    fn line(&self, row: usize) -> u64 {
        self.rows[row]
            .position()
            .map_or(row as u64 + 2, |p| p.line())
    }

    /// The named columns as a row-major `f32` matrix, in the order given.
    ///
    /// # Errors
    /// A missing column or a cell that is not a number.
    pub fn features(&self, names: &[String]) -> Result<Vec<f32>, DataError> {
        let idx: Vec<usize> = names
            .iter()
            .map(|n| self.column(n, "feature column"))
            .collect::<Result<_, _>>()?;
        let mut out = Vec::with_capacity(self.rows.len() * idx.len());
        for (r, rec) in self.rows.iter().enumerate() {
            for &c in &idx {
                let cell = &rec[c];
                out.push(parse_cell(cell).ok_or_else(|| DataError::NotANumber {
                    path: self.path.clone(),
                    line: self.line(r),
                    column: self.columns[c].clone(),
                    value: cell.to_string(),
                })?);
            }
        }
        Ok(out)
    }

    /// Every column except `exclude`, in file order.
    pub fn columns_except(&self, exclude: &str) -> Vec<String> {
        self.columns
            .iter()
            .filter(|c| *c != exclude)
            .cloned()
            .collect()
    }

    /// Encodes the target column for training, choosing the task per `hint`.
    ///
    /// # Errors
    /// A missing column, an empty target cell, text labels for regression,
    /// or fewer than two classes.
    pub fn target(&self, name: &str, hint: TaskHint) -> Result<Target, DataError> {
        let c = self.column(name, "target column")?;
        let mut labels = Vec::with_capacity(self.rows.len());
        for (r, rec) in self.rows.iter().enumerate() {
            let cell = &rec[c];
            if cell.is_empty() || cell.eq_ignore_ascii_case("nan") {
                return Err(DataError::MissingTarget {
                    path: self.path.clone(),
                    line: self.line(r),
                    column: name.to_string(),
                });
            }
            labels.push(cell);
        }
        let numbers: Option<Vec<f64>> = labels.iter().map(|l| l.parse::<f64>().ok()).collect();
        let bad = |what: String| DataError::BadTarget {
            path: self.path.clone(),
            column: name.to_string(),
            what,
        };
        let classify = match (hint, &numbers) {
            (TaskHint::Classification, _) => true,
            (TaskHint::Regression, None) => {
                let (r, l) = labels
                    .iter()
                    .enumerate()
                    .find(|(_, l)| l.parse::<f64>().is_err())
                    .expect("some label is not a number");
                return Err(bad(format!(
                    "`{l}` on line {} is not a number, and regression needs numbers",
                    self.line(r)
                )));
            }
            (TaskHint::Regression, Some(_)) => false,
            (TaskHint::Auto, None) => true,
            (TaskHint::Auto, Some(v)) => {
                let integral = v.iter().all(|x| x.fract() == 0.0 && x.is_finite());
                let mut distinct: Vec<i64> = if integral {
                    v.iter().map(|&x| x as i64).collect()
                } else {
                    Vec::new()
                };
                distinct.sort_unstable();
                distinct.dedup();
                integral
                    && distinct.len() <= MAX_AUTO_CLASSES
                    && distinct.len() * 2 <= v.len().max(4)
            }
        };
        if !classify {
            let v = numbers.expect("checked above");
            if let Some(r) = v.iter().position(|x| !x.is_finite()) {
                return Err(bad(format!("value on line {} is not finite", self.line(r))));
            }
            return Ok(Target {
                task: Task::regression(),
                classes: Vec::new(),
                y: v.into_iter().map(|x| x as f32).collect(),
            });
        }
        let canon: Vec<String> = labels.iter().map(|l| canonical_label(l)).collect();
        let mut classes: Vec<String> = canon.clone();
        sort_labels(&mut classes);
        classes.dedup();
        if classes.len() < 2 {
            return Err(bad(format!(
                "classification needs at least two classes, found only `{}`",
                classes[0]
            )));
        }
        let y = canon
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

    /// Encodes the target column against a trained model's classes (or as
    /// values, for regression), for evaluation.
    ///
    /// # Errors
    /// A missing column, an empty cell, a label the model does not know, or
    /// a non-numeric value for regression.
    pub fn target_like(&self, name: &str, classes: &[String]) -> Result<Vec<f32>, DataError> {
        let c = self.column(name, "target column")?;
        let mut y = Vec::with_capacity(self.rows.len());
        for (r, rec) in self.rows.iter().enumerate() {
            let cell = &rec[c];
            if cell.is_empty() || cell.eq_ignore_ascii_case("nan") {
                return Err(DataError::MissingTarget {
                    path: self.path.clone(),
                    line: self.line(r),
                    column: name.to_string(),
                });
            }
            if classes.is_empty() {
                y.push(cell.parse::<f32>().map_err(|_| DataError::NotANumber {
                    path: self.path.clone(),
                    line: self.line(r),
                    column: name.to_string(),
                    value: cell.to_string(),
                })?);
            } else {
                let l = canonical_label(cell);
                let i = classes.iter().position(|c| *c == l).ok_or_else(|| {
                    DataError::UnknownLabel {
                        path: self.path.clone(),
                        line: self.line(r),
                        column: name.to_string(),
                        label: cell.to_string(),
                        classes: classes.join(", "),
                    }
                })?;
                y.push(i as f32);
            }
        }
        Ok(y)
    }
}

/// Parses a feature cell: a number, or missing (empty / NaN) as `NaN`.
fn parse_cell(cell: &str) -> Option<f32> {
    if cell.is_empty() || cell.eq_ignore_ascii_case("nan") {
        return Some(f32::NAN);
    }
    cell.parse::<f32>().ok()
}

/// Integral numbers are written without a fraction (`1.0` and `1` are the
/// same class); anything else is kept as written.
fn canonical_label(l: &str) -> String {
    match l.parse::<f64>() {
        Ok(x) if x.is_finite() && x.fract() == 0.0 && x.abs() < 1e15 => format!("{}", x as i64),
        _ => l.to_string(),
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

fn sort_labels(v: &mut [String]) {
    v.sort_by(|a, b| cmp_labels(a, b));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(text: &str) -> Result<Table, DataError> {
        Table::from_reader(text.as_bytes(), Path::new("t.csv"))
    }

    #[test]
    fn reads_features_by_name_in_any_order() {
        let t = table("a,b,y\n1,2,x\n3,,z\n").unwrap();
        let f = t.features(&["b".into(), "a".into()]).unwrap();
        assert_eq!(f[0], 2.0);
        assert_eq!(f[1], 1.0);
        assert!(f[2].is_nan());
        assert_eq!(f[3], 3.0);
    }

    #[test]
    fn ragged_row_names_the_line() {
        let e = table("a,b,y\n1,2,3\n1,2\n").unwrap_err();
        assert_eq!(e.to_string(), "t.csv:3: row has 2 fields, the header has 3");
    }

    #[test]
    fn non_numeric_cell_names_line_and_column() {
        let t = table("a,b,y\n1,2,3\n1,oops,3\n").unwrap();
        let e = t.features(&["a".into(), "b".into()]).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("t.csv:3: column `b`: `oops` is not a number"),
            "{e}"
        );
    }

    #[test]
    fn missing_target_lists_columns_and_suggests() {
        let t = table("f0,f1,label\n1,2,3\n").unwrap();
        let e = t.target("labl", TaskHint::Auto).unwrap_err();
        assert_eq!(
            e.to_string(),
            "t.csv: no target column `labl`; did you mean `label`? (columns: f0, f1, label)"
        );
    }

    #[test]
    fn string_labels_are_classes_in_sorted_order() {
        let t = table("x,y\n1,dog\n2,cat\n3,dog\n").unwrap();
        let tg = t.target("y", TaskHint::Auto).unwrap();
        assert_eq!(tg.classes, vec!["cat", "dog"]);
        assert_eq!(tg.y, vec![1.0, 0.0, 1.0]);
        assert!(tg.task.is_classification());
    }

    #[test]
    fn numeric_labels_sort_numerically() {
        let t = table("x,y\n1,10\n2,9\n3,10\n4,9.0\n").unwrap();
        let tg = t.target("y", TaskHint::Auto).unwrap();
        assert_eq!(tg.classes, vec!["9", "10"]);
    }

    #[test]
    fn many_integers_or_fractions_mean_regression() {
        let rows: String = (0..300).map(|i| format!("{i},{}\n", i * 3)).collect();
        let t = table(&format!("x,y\n{rows}")).unwrap();
        assert!(
            !t.target("y", TaskHint::Auto)
                .unwrap()
                .task
                .is_classification()
        );
        let t = table("x,y\n1,0.5\n2,1.5\n").unwrap();
        assert!(
            !t.target("y", TaskHint::Auto)
                .unwrap()
                .task
                .is_classification()
        );
        assert!(
            t.target("y", TaskHint::Classification)
                .unwrap()
                .task
                .is_classification()
        );
    }

    #[test]
    fn empty_target_and_unknown_label_are_errors() {
        let t = table("x,y\n1,a\n2,\n").unwrap();
        assert!(
            t.target("y", TaskHint::Auto)
                .unwrap_err()
                .to_string()
                .contains("t.csv:3")
        );
        let t = table("x,y\n1,a\n2,c\n").unwrap();
        let e = t.target_like("y", &["a".into(), "b".into()]).unwrap_err();
        assert!(e.to_string().contains("label `c`"), "{e}");
    }

    #[test]
    fn empty_and_header_only_files() {
        assert!(matches!(table("").unwrap_err(), DataError::Empty { .. }));
        assert!(matches!(
            table("a,b\n").unwrap_err(),
            DataError::NoRows { .. }
        ));
        assert!(matches!(
            table("a,a\n1,2\n").unwrap_err(),
            DataError::DuplicateColumn { .. }
        ));
    }
}
