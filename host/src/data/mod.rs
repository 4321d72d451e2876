//! Tables read from CSV files: a header row, then one sample per row.
//! Empty cells and `NaN` are missing values.
//!
//! Cells are parsed once, column by column, into `f32`; a cell that is not a
//! number keeps its text (class labels, ids), so columns a model does not use
//! may hold anything and only the columns asked for as features must be
//! numeric. A million rows of 28 features take about 120 MB this way.

mod error;
mod target;

use std::path::{Path, PathBuf};

pub use error::DataError;
pub use target::{Target, TaskHint};

/// One column: numbers, with the text of the cells that are not numbers.
#[derive(Debug, Clone, Default)]
struct Column {
    /// One value per row; `NaN` for missing cells and for text cells.
    values: Vec<f32>,
    /// `(row, text)` of every non-empty cell that is not a number, by row.
    text: Vec<(u32, Box<str>)>,
    /// `(row, value)` of integers too large for `f32` to hold exactly, so
    /// that labels such as `20231201` survive.
    wide: Vec<(u32, f64)>,
}

impl Column {
    fn text_at(&self, row: usize) -> Option<&str> {
        self.text
            .binary_search_by_key(&(row as u32), |(r, _)| *r)
            .ok()
            .map(|i| &*self.text[i].1)
    }
}

/// Above this, not every integer has an exact `f32`.
const F32_EXACT_INT: f32 = 16_777_216.0;

/// What a cell holds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Cell<'a> {
    /// Empty or `NaN`.
    Missing,
    /// A number.
    Number(f32),
    /// Anything else, as written (trimmed).
    Text(&'a str),
}

/// A CSV table, parsed column by column.
#[derive(Debug, Clone)]
pub struct Table {
    path: PathBuf,
    names: Vec<String>,
    columns: Vec<Column>,
    /// The 1-based line of each row (rows may span lines inside quotes).
    lines: Vec<u64>,
}

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
        Self::from_reader(std::io::BufReader::with_capacity(1 << 20, file), path)
    }

    /// Reads CSV from any reader; `path` is used in messages.
    ///
    /// # Errors
    /// As [`Table::read`].
    pub fn from_reader(reader: impl std::io::Read, path: &Path) -> Result<Self, DataError> {
        let mut rdr = csv::ReaderBuilder::new()
            .has_headers(true)
            .flexible(false)
            .from_reader(reader);
        let malformed = |e: csv::Error| malformed(path, e);
        let header = rdr.byte_headers().map_err(malformed)?.clone();
        let names: Vec<String> = header
            .iter()
            .map(|h| String::from_utf8_lossy(h).trim().to_string())
            .collect();
        if names.is_empty() || (names.len() == 1 && names[0].is_empty()) {
            return Err(DataError::Empty {
                path: path.to_path_buf(),
            });
        }
        for (i, c) in names.iter().enumerate() {
            if names[..i].contains(c) {
                return Err(DataError::DuplicateColumn {
                    path: path.to_path_buf(),
                    name: c.clone(),
                });
            }
        }
        let mut columns = vec![Column::default(); names.len()];
        let mut lines = Vec::new();
        let mut rec = csv::ByteRecord::new();
        while rdr.read_byte_record(&mut rec).map_err(malformed)? {
            let line = rec.position().map_or(lines.len() as u64 + 2, |p| p.line());
            // A blank line inside the data reads as one empty field; skip it.
            if rec.len() == 1 && rec[0].is_empty() && names.len() > 1 {
                continue;
            }
            let row = lines.len() as u32;
            for (col, raw) in columns.iter_mut().zip(rec.iter()) {
                let cell = std::str::from_utf8(raw).map_err(|_| DataError::Malformed {
                    path: path.to_path_buf(),
                    line,
                    what: "row is not valid UTF-8".into(),
                })?;
                match parse_cell(cell) {
                    Cell::Missing => col.values.push(f32::NAN),
                    Cell::Number(v) => {
                        if v.abs() > F32_EXACT_INT
                            && let Ok(x) = cell.trim().parse::<f64>()
                            && x.fract() == 0.0
                        {
                            col.wide.push((row, x));
                        }
                        col.values.push(v);
                    }
                    Cell::Text(t) => {
                        col.values.push(f32::NAN);
                        col.text.push((row, t.into()));
                    }
                }
            }
            lines.push(line);
        }
        if lines.is_empty() {
            return Err(DataError::NoRows {
                path: path.to_path_buf(),
            });
        }
        Ok(Self {
            path: path.to_path_buf(),
            names,
            columns,
            lines,
        })
    }

    /// The file this table came from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Column names, in file order.
    pub fn columns(&self) -> &[String] {
        &self.names
    }

    /// Number of data rows.
    pub fn n_rows(&self) -> usize {
        self.lines.len()
    }

    /// Whether the table has a column `name`.
    pub fn has_column(&self, name: &str) -> bool {
        self.names.iter().any(|c| c == name)
    }

    /// The index of column `name`; `what` says what it is for, in errors.
    ///
    /// # Errors
    /// [`DataError::MissingColumn`], with the closest name and the list.
    pub fn column(&self, name: &str, what: &'static str) -> Result<usize, DataError> {
        self.names.iter().position(|c| c == name).ok_or_else(|| {
            let names: Vec<&str> = self.names.iter().map(String::as_str).collect();
            DataError::MissingColumn {
                path: self.path.clone(),
                what,
                name: name.to_string(),
                suggestion: tessera_core::params::closest(name, &names).map(str::to_string),
                columns: self.names.clone(),
            }
        })
    }

    fn line(&self, row: usize) -> u64 {
        self.lines[row]
    }

    /// The exact value of a numeric cell where `f32` rounds it.
    fn wide(&self, col: usize, row: usize) -> Option<f64> {
        let w = &self.columns[col].wide;
        w.binary_search_by_key(&(row as u32), |(r, _)| *r)
            .ok()
            .map(|i| w[i].1)
    }

    fn cell(&self, col: usize, row: usize) -> Cell<'_> {
        let c = &self.columns[col];
        let v = c.values[row];
        if !v.is_nan() {
            return Cell::Number(v);
        }
        match c.text_at(row) {
            Some(t) => Cell::Text(t),
            None => Cell::Missing,
        }
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
        // Report the first offending cell in file order.
        let bad = idx
            .iter()
            .filter_map(|&c| self.columns[c].text.first().map(|(r, t)| (*r, c, t)))
            .min_by_key(|(r, c, _)| (*r, *c));
        if let Some((row, c, text)) = bad {
            return Err(DataError::NotANumber {
                path: self.path.clone(),
                line: self.line(row as usize),
                column: self.names[c].clone(),
                value: text.to_string(),
            });
        }
        let rows = self.n_rows();
        let k = idx.len();
        let mut out = vec![0.0f32; rows * k];
        for (j, &c) in idx.iter().enumerate() {
            for (r, &v) in self.columns[c].values.iter().enumerate() {
                out[r * k + j] = v;
            }
        }
        Ok(out)
    }

    /// Every column except those in `exclude`, in file order.
    pub fn columns_except(&self, exclude: &[&str]) -> Vec<String> {
        self.names
            .iter()
            .filter(|c| !exclude.contains(&c.as_str()))
            .cloned()
            .collect()
    }

    /// Sample weights from column `name`: finite and non-negative.
    ///
    /// # Errors
    /// A missing column, or a cell that is empty, negative or not a number.
    pub fn weights(&self, name: &str) -> Result<Vec<f32>, DataError> {
        let c = self.column(name, "weight column")?;
        (0..self.n_rows())
            .map(|r| match self.cell(c, r) {
                Cell::Number(v) if v.is_finite() && v >= 0.0 => Ok(v),
                other => Err(DataError::BadWeight {
                    path: self.path.clone(),
                    line: self.line(r),
                    column: name.to_string(),
                    value: match other {
                        Cell::Number(v) => v.to_string(),
                        Cell::Text(t) => t.to_string(),
                        Cell::Missing => String::new(),
                    },
                }),
            })
            .collect()
    }
}

fn malformed(path: &Path, e: csv::Error) -> DataError {
    match e.kind() {
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
        _ => DataError::Malformed {
            path: path.to_path_buf(),
            line: e.position().map_or(0, |p| p.line()),
            what: e.to_string(),
        },
    }
}

/// Reads a cell: empty or `NaN` is missing; otherwise a number if it parses.
fn parse_cell(raw: &str) -> Cell<'_> {
    let cell = raw.trim();
    if cell.is_empty() || cell.eq_ignore_ascii_case("nan") {
        return Cell::Missing;
    }
    match cell.parse::<f32>() {
        Ok(v) => Cell::Number(v),
        Err(_) => Cell::Text(cell),
    }
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

    #[test]
    fn weights_are_checked() {
        let t = table("x,w,y\n1,0.5,a\n2,2,b\n").unwrap();
        assert_eq!(t.weights("w").unwrap(), vec![0.5, 2.0]);
        let t = table("x,w,y\n1,-1,a\n2,,b\n").unwrap();
        let e = t.weights("w").unwrap_err();
        assert_eq!(
            e.to_string(),
            "t.csv:2: weight column `w`: `-1` is not a non-negative number"
        );
        let t = table("x,w,y\n1,1,a\n2,,b\n").unwrap();
        assert!(
            t.weights("w")
                .unwrap_err()
                .to_string()
                .starts_with("t.csv:3:")
        );
    }

    #[test]
    fn large_integer_labels_survive_f32() {
        let t = table("x,y\n1,20231201\n2,20231202\n3,20231201\n4,20231202\n").unwrap();
        let tg = t.target("y", TaskHint::Classification).unwrap();
        assert_eq!(tg.classes, vec!["20231201", "20231202"]);
    }

    #[test]
    fn text_in_unused_columns_is_fine_and_quoted_fields_work() {
        let t = table("id,x,y\n\"a, b\",1,0\nc,2,1\n").unwrap();
        assert_eq!(t.features(&["x".into()]).unwrap(), vec![1.0, 2.0]);
        let e = t.features(&["id".into(), "x".into()]).unwrap_err();
        assert!(e.to_string().contains("`a, b` is not a number"), "{e}");
    }
}
