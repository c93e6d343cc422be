//! `churn-score`: batch-score a file of customers with a trained bundle.

/// mimalloc: glibc malloc serialises worker threads on its arena lock under many small allocations.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use churn::bundle;
use churn::cli;
use churn::io::{read_table, write_table};
use churn::scoring::{self, Scorer};
use churn::store::{BatchLog, IdKey, StoreUrl};
use clap::Parser;
use std::path::PathBuf;

#[derive(Parser, Debug)]
#[command(
    name = "churn-score",
    version,
    about = "Score a CSV / Parquet file of customers with a trained churn model"
)]
struct Args {
    /// Model directory (holding model.bin) or the model.bin file.
    #[arg(long, value_name = "DIR")]
    model: PathBuf,
    /// Customers to score, in the training layout (CSV, CSV.gz, TSV or Parquet).
    #[arg(
        long,
        value_name = "FILE",
        required_unless_present = "transactions",
        conflicts_with = "transactions"
    )]
    input: Option<PathBuf>,
    /// Transaction log to score (transaction models): the model's features are built from it as
    /// of --as-of with the settings stored in the bundle, then scored.
    #[arg(long, value_name = "FILE")]
    transactions: Option<PathBuf>,
    /// Scoring date YYYY-MM-DD for --transactions: features from every event before it
    /// (default: the day after the last event).
    #[arg(long, value_name = "DATE", requires = "transactions")]
    as_of: Option<String>,
    /// Output file (CSV, TSV or Parquet by extension).
    #[arg(long, value_name = "FILE")]
    output: PathBuf,
    /// Write bad rows to a reject file instead of stopping.
    #[arg(long)]
    skip_invalid: bool,
    /// Reject file (default: OUTPUT's name with `.rejects.csv`).
    #[arg(long, value_name = "FILE")]
    rejects: Option<PathBuf>,
    /// Rows per chunk.
    #[arg(long, default_value_t = 8192)]
    chunk_size: usize,
    /// Worker threads (default: all cores).
    #[arg(long)]
    threads: Option<usize>,
    /// Retention playbook overriding the one stored in the bundle.
    #[arg(long, value_name = "FILE")]
    playbook: Option<PathBuf>,
    /// Output columns, comma-separated, in this order (default: all the model can produce). Asking
    /// only for probabilities skips segments and recommendations, which makes scoring faster.
    #[arg(long, value_name = "COL,...")]
    columns: Option<String>,
    /// Record every scored customer (with an id) in this prediction store: sqlite://PATH or
    /// postgres://USER@HOST:PORT/DB (default: none).
    #[arg(long, env = "CHURN_STORE", value_name = "URL")]
    store: Option<String>,
    /// With --store: rank actions with the playbook's save rates even where `churn-train
    /// evaluate` has learned others.
    #[arg(long)]
    no_learned_rates: bool,
    /// Print only errors.
    #[arg(long)]
    quiet: bool,
}

fn main() {
    let args = Args::parse();
    cli::init_logging(args.quiet, cli::LogFormat::Text);
    if let Err(e) = run(&args) {
        std::process::exit(cli::report(&e));
    }
}

/// The customers to score: the input table, or the features built from a transaction log.
fn customers(args: &Args, scorer: &Scorer) -> anyhow::Result<churn::io::RawTable> {
    if let Some(input) = &args.input {
        return Ok(read_table(input, None)?);
    }
    let log = args.transactions.clone().unwrap_or_default();
    let Some(spec) = scorer.bundle.transactions.clone() else {
        return Err(cli::CliError::Usage(format!(
            "--transactions: model '{}' was trained on a customer table, not a transaction log; score a table with --input",
            scorer.bundle.name
        ))
        .into());
    };
    let spec = churn::ingest::TransactionSpec {
        path: log,
        cut: churn::ingest::Cut::AsOf(args.as_of.clone()),
        ..spec
    };
    let data = churn::ingest::load(&churn::ingest::Source::Transactions(spec))?;
    if !args.quiet {
        for note in &data.quality.notes {
            eprintln!("{note}");
        }
    }
    Ok(data.to_raw_table())
}

fn run(args: &Args) -> anyhow::Result<()> {
    let input = args.input.as_ref().or(args.transactions.as_ref());
    churn::io::check_output_is_not_input(
        input.map_or(std::path::Path::new(""), |p| p),
        &args.output,
    )?;
    let loaded = bundle::load(&args.model)?;
    let dir = loaded.dir.clone();
    let mut scorer = Scorer::new(loaded);
    if let Some(p) = &args.playbook {
        scorer.set_playbook(churn::playbook::read(p)?, &p.display().to_string())?;
    }
    if scorer.attach_uplift(&dir)? && !args.quiet {
        eprintln!("ranking actions by the uplift model in {}", dir.display());
    }
    let t = std::time::Instant::now();
    let table = customers(args, &scorer)?;
    tracing::debug!(secs = t.elapsed().as_secs_f64(), rows = table.nrows, "read");
    let t = std::time::Instant::now();
    let threads = args
        .threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let has_id = scorer
        .bundle
        .id_column
        .as_deref()
        .and_then(|c| table.index_of(c))
        .is_some();
    let columns = scoring::select_columns(&scorer, has_id, args.columns.as_deref())?;
    let store = match &args.store {
        Some(url) => BatchLog::open(
            &StoreUrl::parse(url)?,
            IdKey::new(std::env::var("CHURN_ID_KEY").ok().as_deref()),
        )?,
        None => None,
    };
    if let (Some(log), false) = (&store, args.no_learned_rates) {
        churn::evaluate::apply_learned_rates(&mut scorer, log.store());
    }
    let observe = store.as_ref().map(|s| s.observer(&scorer, &table));
    let mut out = scoring::score_columns_observed(
        &scorer,
        &table,
        &columns,
        threads,
        args.chunk_size,
        observe,
    )?;
    tracing::debug!(secs = t.elapsed().as_secs_f64(), "scored");
    if let Some(store) = &store {
        let t = std::time::Instant::now();
        let written = store.finish()?;
        tracing::debug!(secs = t.elapsed().as_secs_f64(), written, "stored");
        if let (n, Some((row, why))) = store.refused_ids() {
            let message = format!(
                "{}: {n} rows scored but not stored: their customer id breaks the id rule (first: data row {}: {why})",
                input.map_or_else(String::new, |p| p.display().to_string()),
                row + 1
            );
            if !args.skip_invalid {
                return Err(cli::CliError::Usage(format!(
                    "{message}; fix the ids or pass --skip-invalid to score anyway"
                ))
                .into());
            }
            eprintln!("warning: {message}");
        }
    }
    if !args.skip_invalid && !out.bad.is_empty() {
        return Err(out.bad.swap_remove(0).1.into());
    }
    let t = std::time::Instant::now();
    write_table(&args.output, out.table(&scorer, &columns))?;
    tracing::debug!(secs = t.elapsed().as_secs_f64(), "written");
    if !out.bad.is_empty() {
        let path = args
            .rejects
            .clone()
            .unwrap_or_else(|| churn::util::sibling_path(&args.output, "rejects.csv"));
        write_table(&path, out.rejects(&table))?;
        eprintln!(
            "{} of {} rows rejected; written to {}",
            out.bad.len(),
            table.nrows,
            path.display()
        );
    }
    if !args.quiet {
        eprintln!(
            "scored {} customers with model '{}' version {}: {} flagged as likely to churn, {} with warnings; wrote {}",
            out.scored(),
            scorer.bundle.name,
            scorer.version,
            out.flagged(),
            out.warned(),
            args.output.display()
        );
    }
    Ok(())
}
