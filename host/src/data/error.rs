//! What can be wrong with a data file; every variant names the file, and the
//! line and column where there is one.

use std::path::{Path, PathBuf};

/// Why a data file could not be used.
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
    /// A sample weight that is missing, negative or not a number.
    #[error("{path}:{line}: weight column `{column}`: `{value}` is not a non-negative number")]
    BadWeight {
        /// The file.
        path: PathBuf,
        /// 1-based line.
        line: u64,
        /// The column.
        column: String,
        /// The cell's text.
        value: String,
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
