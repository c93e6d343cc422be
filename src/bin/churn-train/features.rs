//! `churn-train features`: the customer-level table a model trains on (or, with `--as-of`, the
//! features to score), built here or printed as a SQL query.

use crate::export_sql::{parse_dialect, write_sql};
use churn::cli::{self, DataArgs};
use churn::io::write_table;
use std::path::{Path, PathBuf};

#[derive(clap::Args, Debug)]
pub struct FeaturesArgs {
    #[command(flatten)]
    data: Box<DataArgs>,
    /// Transaction logs: build the features as of DATE (YYYY-MM-DD) for scoring, from every
    /// event before it; no label is written. (--cutoff is for training.)
    #[arg(long, value_name = "DATE", conflicts_with = "cutoff")]
    as_of: Option<String>,
    /// Output file (CSV, TSV or Parquet by extension; with --engine sql the query, default
    /// standard output).
    #[arg(long, value_name = "FILE")]
    output: Option<PathBuf>,
    /// Build the table out of core (transaction CSV / TSV logs, plain or .gz): the file is
    /// read in chunks, and memory holds one chunk plus about 200 bytes per customer and 8 per
    /// purchase; stop with an error before passing SIZE (e.g. 2G, 512M). One record may take a
    /// quarter of SIZE at most (an unterminated quote or a line without end stops with an error
    /// naming its line). Logs over 1 GiB are read this way even without the flag.
    #[arg(long, value_name = "SIZE")]
    memory_limit: Option<String>,
    /// native: build the table here; sql: print the query that builds it inside a database
    /// (PostgreSQL, DuckDB, Spark) from a transaction table, without reading any file.
    #[arg(long, value_name = "ENGINE", default_value = "native")]
    engine: String,
    /// SQL dialect for --engine sql: postgres, duckdb or spark.
    #[arg(long, value_name = "DIALECT")]
    dialect: Option<String>,
    /// Transaction table the query reads (optionally schema.table), for --engine sql.
    #[arg(long, value_name = "NAME", default_value = "transactions")]
    table: String,
    /// Print only errors.
    #[arg(long)]
    pub quiet: bool,
}

/// Run `churn-train features`: the native build or the SQL query, by `--engine`.
pub fn run(a: FeaturesArgs) -> anyhow::Result<()> {
    match a.engine.as_str() {
        "native" => match &a.output {
            Some(out) => native(&a.data, a.as_of, out, a.memory_limit.as_deref(), a.quiet),
            None => Err(cli::CliError::Usage(
                "features: --output FILE is required (or --engine sql to print a query)".into(),
            )
            .into()),
        },
        "sql" => sql(&a.data, a.as_of, a.dialect.as_deref(), &a.table, a.output),
        other => Err(cli::CliError::Usage(format!(
            "--engine: expected native or sql, found '{other}'"
        ))
        .into()),
    }
}

fn sql(
    data: &DataArgs,
    as_of: Option<String>,
    dialect: Option<&str>,
    table: &str,
    output: Option<PathBuf>,
) -> anyhow::Result<()> {
    let dialect = parse_dialect(dialect)?;
    let mut spec = data.transaction_columns()?;
    if let Some(d) = as_of {
        spec.cut = churn::ingest::Cut::AsOf(Some(d));
    }
    let sql = churn::export::features_query(
        &spec,
        &churn::export::FeatureExport {
            dialect,
            table: table.to_string(),
        },
    )?;
    write_sql(&sql, output.as_deref(), dialect.name())
}

/// Logs larger than this are read out of core by `features` even without --memory-limit.
const STREAM_ABOVE_BYTES: u64 = 1 << 30;

/// A size such as `2G`, `512M`, `2GiB`, `1500MB` or a byte count.
fn parse_size(s: &str) -> Result<u64, cli::CliError> {
    let t = s.trim().to_ascii_lowercase();
    let t = t.trim_end_matches("ib").trim_end_matches('b');
    let (num, mult) = match t.chars().last() {
        Some('k') => (&t[..t.len() - 1], 1u64 << 10),
        Some('m') => (&t[..t.len() - 1], 1 << 20),
        Some('g') => (&t[..t.len() - 1], 1 << 30),
        Some('t') => (&t[..t.len() - 1], 1 << 40),
        _ => (t, 1),
    };
    match num.trim().parse::<f64>() {
        Ok(x) if x > 0.0 && x.is_finite() => Ok((x * mult as f64) as u64),
        _ => Err(cli::CliError::Usage(format!(
            "--memory-limit: expected a size such as 2G or 512M, found '{s}'"
        ))),
    }
}

/// The out-of-core build of a transaction log's features, with a progress bar on stderr.
fn stream_features(
    spec: &churn::ingest::TransactionSpec,
    limit: Option<u64>,
    quiet: bool,
) -> anyhow::Result<churn::ingest::CustomerData> {
    // chunks of 1/64 of the limit, 4–32 MB: polars parses a chunk into a few times its size,
    // and larger chunks were not faster (50M lines: 32 MB 26.4 s / 1.75 GB peak, 64 MB 27.5 s /
    // 1.99 GB); never over 1/8 of the limit, as the limit check counts 4 chunks for the read
    // buffers (with 4 MB chunks a limit under 16 MiB could not pass a single chunk)
    let chunk_bytes = limit.map_or(32 << 20, |l| {
        (l / 64).clamp(4 << 20, 32 << 20).min((l / 8).max(1))
    }) as usize;
    let bar = if quiet {
        indicatif::ProgressBar::hidden()
    } else {
        indicatif::ProgressBar::new(0)
    };
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{msg:>22} [{bar:30}] {bytes}/{total_bytes} ({elapsed})",
        )
        .expect("valid template")
        .progress_chars("=> "),
    );
    let mut progress = |stage: &str, done: u64, total: u64| {
        bar.set_length(total);
        bar.set_position(done);
        if bar.message() != stage {
            bar.set_message(stage.to_string());
        }
    };
    let data = churn::ingest::stream_transaction_features(
        &spec.path,
        spec,
        churn::ingest::StreamOptions {
            chunk_bytes,
            memory_limit: limit,
        },
        &mut progress,
    )?;
    bar.finish_and_clear();
    Ok(data)
}

fn native(
    data: &DataArgs,
    as_of: Option<String>,
    output: &Path,
    memory_limit: Option<&str>,
    quiet: bool,
) -> anyhow::Result<()> {
    let (_, mut source) = data.resolve()?;
    let scoring = as_of.is_some();
    if let Some(d) = as_of {
        match &mut source {
            churn::ingest::Source::Transactions(t) => t.cut = churn::ingest::Cut::AsOf(Some(d)),
            churn::ingest::Source::Table(_) => {
                return Err(cli::CliError::Usage(
                    "--as-of builds features from a transaction log (--transactions)".into(),
                )
                .into())
            }
        }
    }
    let limit = memory_limit.map(parse_size).transpose()?;
    let table = match &source {
        churn::ingest::Source::Transactions(t)
            if !t
                .path
                .to_string_lossy()
                .to_lowercase()
                .ends_with(".parquet")
                && (limit.is_some()
                    || std::fs::metadata(&t.path).is_ok_and(|m| m.len() > STREAM_ABOVE_BYTES)) =>
        {
            stream_features(t, limit, quiet)?
        }
        churn::ingest::Source::Table(_) if limit.is_some() => {
            return Err(cli::CliError::Usage(
                "--memory-limit is for transaction logs (--transactions)".into(),
            )
            .into())
        }
        _ => churn::ingest::load(&source)?,
    };
    let mut columns = table.output_columns();
    if scoring {
        columns.pop(); // the label: meaningless as of the scoring date
    }
    write_table(output, columns)?;
    let qpath = churn::util::sibling_path(output, "quality.json");
    churn::train::write_json(&qpath, &table.quality)?;
    if !quiet {
        eprint!("{}", table.quality.render());
        eprintln!(
            "wrote {} customers to {} (quality report {})",
            table.nrows(),
            output.display(),
            qpath.display()
        );
    }
    Ok(())
}
