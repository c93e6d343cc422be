//! Models as SQL, for scoring where the data lives: [`model_query`] prints one query (a chain of
//! `WITH` steps) that takes the raw customer table and returns what `churn-score` writes —
//! probability, interval, leaf support, prediction, segment, RFM class, lifecycle stage and risk
//! band — bit-identical on PostgreSQL and DuckDB, and parseable as Spark SQL.
//!
//! The query is built as a typed expression tree ([`sql`]) and printed per [`Dialect`]; the
//! portability rules it follows are listed there and in ARCHITECTURE.md.

pub mod features;
pub mod model;
pub mod sql;

pub use features::{features_query, FeatureExport};
pub use model::{model_query, ModelExport, DEFAULT_MAX_CASE_DEPTH};
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
}

impl ExportError {
    /// Process exit code: 2 (bad input or option).
    pub fn exit_code(&self) -> i32 {
        2
    }
}
