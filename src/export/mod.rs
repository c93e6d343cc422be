//! Models as SQL, for scoring where the data lives: [`model_query`] prints one query (a chain of
//! `WITH` steps) that takes the raw customer table and returns what `churn-score` writes —
//! probability, interval, leaf support, prediction, segment, RFM class, lifecycle stage and risk
//! band — bit-identical on PostgreSQL and DuckDB, and parseable as Spark SQL.
//!
//! The query is built as a typed expression tree ([`sql`]) and printed per [`Dialect`]; the
//! portability rules it follows are listed there and in ARCHITECTURE.md.

mod boosted;
pub mod features;
pub mod model;
pub mod quote;
mod segments;
pub mod sql;

pub use boosted::TREES_PER_STEP;
pub use features::{features_query, FeatureExport};
pub use model::{model_query, ModelExport, DEFAULT_MAX_CASE_DEPTH};
pub use quote::{check_ident, comment_text, is_line_unsafe, IdentError};
pub use sql::{Dialect, Expr, Op, Query, Select, SqlType};

/// Errors of the export layer.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// The bundle holds something the exporter cannot express.
    #[error("cannot export the model: {0}")]
    Bundle(String),
    /// A bad option.
    #[error("{0}")]
    Usage(String),
    /// A name (a flag's table or column, or a column of the bundle) that cannot be an SQL
    /// identifier: empty, or holding a control character such as CR, which would end the
    /// query's `--` comment or change under a text-mode copy.
    #[error("{what}: {reason}")]
    Name {
        /// Which name: the flag (`--table`) or the bundle's column.
        what: String,
        /// Why it cannot be printed.
        reason: IdentError,
    },
}

/// `name` checked as an identifier ([`check_ident`]; for a table, each part of
/// `schema.table`), the error naming `what` (a flag, or the bundle's column).
pub(crate) fn check_name(what: &str, name: &str, table: bool) -> Result<(), ExportError> {
    let result = if table {
        name.split('.').try_for_each(check_ident)
    } else {
        check_ident(name)
    };
    result.map_err(|reason| ExportError::Name {
        what: what.to_string(),
        reason,
    })
}

impl ExportError {
    /// Process exit code: 2 (bad input or option).
    pub fn exit_code(&self) -> i32 {
        2
    }
}
