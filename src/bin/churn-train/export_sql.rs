//! `churn-train export-sql`: the model as one SQL query; also the `--dialect` and SQL output
//! helpers `features --engine sql` shares.

use anyhow::Context;
use churn::cli;
use std::path::{Path, PathBuf};

#[derive(clap::Args, Debug)]
pub struct ExportSqlArgs {
    /// Model directory (holding model.bin).
    #[arg(long, value_name = "DIR")]
    model: PathBuf,
    /// SQL dialect: postgres, duckdb or spark.
    #[arg(long, value_name = "DIALECT")]
    dialect: String,
    /// Customer table the query reads (optionally schema.table), in the training layout.
    #[arg(long, value_name = "NAME", default_value = "customers")]
    table: String,
    /// Trees deeper than this are written as one condition chain per leaf instead of nested
    /// CASE expressions (engines limit nesting: Spark at about 300).
    #[arg(long, value_name = "N", default_value_t = churn::export::DEFAULT_MAX_CASE_DEPTH)]
    max_case_depth: usize,
    /// Output file (default: standard output).
    #[arg(long, value_name = "FILE")]
    output: Option<PathBuf>,
}

/// Run `churn-train export-sql`.
pub fn run(a: &ExportSqlArgs) -> anyhow::Result<()> {
    let dialect = parse_dialect(Some(&a.dialect))?;
    let loaded = churn::bundle::load(&a.model)?;
    let sql = churn::export::model_query(
        &loaded.bundle,
        &loaded.version,
        &churn::export::ModelExport {
            dialect,
            table: a.table.clone(),
            max_case_depth: a.max_case_depth,
        },
    )?;
    write_sql(&sql, a.output.as_deref(), dialect.name())
}

/// `--dialect` as a [`churn::export::Dialect`].
pub fn parse_dialect(d: Option<&str>) -> Result<churn::export::Dialect, cli::CliError> {
    let d = d.ok_or_else(|| {
        cli::CliError::Usage("--dialect is required: postgres, duckdb or spark".into())
    })?;
    churn::export::Dialect::parse(d).ok_or_else(|| {
        cli::CliError::Usage(format!(
            "--dialect: expected postgres, duckdb or spark, found '{d}'"
        ))
    })
}

/// Print SQL to `output` (atomically) or standard output.
pub fn write_sql(sql: &str, output: Option<&Path>, what: &str) -> anyhow::Result<()> {
    match output {
        Some(out) => {
            churn::util::write_atomic(out, sql.as_bytes())
                .with_context(|| format!("{}: cannot write", out.display()))?;
            eprintln!(
                "wrote {} ({} KB, {what})",
                out.display(),
                sql.len().div_ceil(1024)
            );
        }
        None => print!("{sql}"),
    }
    Ok(())
}
