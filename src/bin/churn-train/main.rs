//! `churn-train`: train a churn model bundle, or write the customer-level feature table.

use anyhow::Context;
use churn::cli::{self, DataArgs};
use churn::config::{Config, ModelConfig};
use churn::io::write_table;
use churn::model::tree::{Criterion, LearnerKind};
use churn::model::{ClassWeight, Economics};
use churn::segment::SegmentConfig;
use churn::store::{IdKey, Store, StoreUrl};
use churn::train::{self, TrainOptions};
use clap::{Parser, Subcommand};
use std::collections::BTreeSet;
use std::path::PathBuf;

#[derive(Parser, Debug)]
#[command(
    name = "churn-train",
    version,
    about = "Train a calibrated churn model into a versioned bundle (no arguments: the bundled Telco example into models/telco)",
    args_conflicts_with_subcommands = true
)]
struct Cli {
    #[command(subcommand)]
    cmd: Option<Cmd>,
    #[command(flatten)]
    data: DataArgs,
    #[command(flatten)]
    train: TrainArgs,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Write the customer-level table the model would be trained on (id, features, label), or
    /// with --as-of the features of every customer on that date, for scoring (no label).
    Features {
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
        /// purchase; stop with an error before passing SIZE (e.g. 2G, 512M). Logs over 1 GiB are
        /// read this way even without the flag.
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
        quiet: bool,
    },
    /// Re-render a trained model's HTML report (report.html) from its bundle and card.
    Report {
        /// Model directory (holding model.bin and model_card.json).
        #[arg(long, value_name = "DIR")]
        model: PathBuf,
        /// Output file (default: DIR/report.html).
        #[arg(long, value_name = "FILE")]
        output: Option<PathBuf>,
    },
    /// Print the model as one SQL query that scores a customer table inside PostgreSQL, DuckDB
    /// or Spark: the same probabilities (to the last bit), intervals, segments, classes, stages
    /// and risk bands churn-score writes.
    ExportSql(ExportSqlArgs),
    /// Load outcome events (churned, retained, action_taken, purchase, survey) from a CSV /
    /// Parquet file into the prediction store; all or nothing unless --skip-invalid.
    Outcomes(OutcomeArgs),
    /// Measure what the logged predictions were worth once outcomes came back: realised and
    /// expected performance, the lift of each action against the control group, and the save
    /// rates it teaches (stored, unless --no-learned-rates, for the next load of the model).
    Evaluate(EvaluateArgs),
    /// Retention KPIs over a period (default: the last full month), overall and per segment:
    /// retention, churn, repurchase, NPS, average order value, CLV.
    Kpis(KpiArgs),
    /// Write a simulated campaign with known truth into a store: customers drawn from a table,
    /// scored by the model, contacted, and churning with a chosen true effect per action.
    Simulate(SimulateArgs),
    /// Maintain the prediction store.
    Store {
        #[command(subcommand)]
        cmd: StoreCmd,
    },
}

#[derive(clap::Args, Debug)]
struct ExportSqlArgs {
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

#[derive(clap::Args, Debug)]
struct OutcomeArgs {
    /// Prediction store: sqlite://PATH or postgres://USER@HOST:PORT/DB.
    #[arg(long, env = "CHURN_STORE", value_name = "URL")]
    store: String,
    /// Events file with columns customer_id, event, at [, prediction_id, action, cost, amount,
    /// score, external_id].
    #[arg(long, value_name = "FILE")]
    input: PathBuf,
    /// Model directory whose playbook's action ids `action` must name (default: not checked).
    #[arg(long, value_name = "DIR")]
    model: Option<PathBuf>,
    /// Store the valid rows and write the invalid ones to a reject file instead of stopping.
    #[arg(long)]
    skip_invalid: bool,
    /// Reject file (default: INPUT's name with `.rejects.csv`).
    #[arg(long, value_name = "FILE")]
    rejects: Option<PathBuf>,
    /// Print only errors.
    #[arg(long)]
    quiet: bool,
}

#[derive(clap::Args, Debug)]
struct EvaluateArgs {
    /// Prediction store: sqlite://PATH or postgres://USER@HOST:PORT/DB.
    #[arg(long, env = "CHURN_STORE", value_name = "URL")]
    store: String,
    /// Model name (default: the only model with predictions in the store).
    #[arg(long, value_name = "NAME")]
    model: Option<String>,
    /// Directory of model bundles (the model's horizon and playbook come from MODELS/NAME).
    #[arg(long, value_name = "DIR", default_value = "models")]
    models: PathBuf,
    /// Predictions scored on or after DATE (YYYY-MM-DD or ISO-8601).
    #[arg(long, value_name = "DATE")]
    from: Option<String>,
    /// Predictions scored before DATE.
    #[arg(long, value_name = "DATE")]
    to: Option<String>,
    /// Judge labels as of DATE (default: now).
    #[arg(long, value_name = "DATE")]
    as_of: Option<String>,
    /// Label horizon in days (default: the model's; 90 for customer-table models).
    #[arg(long, value_name = "DAYS")]
    horizon_days: Option<u32>,
    /// Also write the full evaluation as JSON.
    #[arg(long, value_name = "FILE.json")]
    output: Option<PathBuf>,
    /// Do not store the learned save rates.
    #[arg(long)]
    no_learned_rates: bool,
}

#[derive(clap::Args, Debug)]
struct KpiArgs {
    /// Prediction store.
    #[arg(long, env = "CHURN_STORE", value_name = "URL")]
    store: String,
    /// Model whose predictions define customers and segments (default: the only one).
    #[arg(long, value_name = "NAME")]
    model: Option<String>,
    /// Period start (YYYY-MM-DD or ISO-8601; default: the start of last month).
    #[arg(long, value_name = "DATE", requires = "to")]
    from: Option<String>,
    /// Period end, exclusive.
    #[arg(long, value_name = "DATE", requires = "from")]
    to: Option<String>,
    /// Share of revenue that is margin (for CLV).
    #[arg(long, default_value_t = 0.3)]
    margin_rate: f64,
    /// Discount rate per period (for CLV).
    #[arg(long, default_value_t = 0.01)]
    discount_rate: f64,
    /// Also write the KPIs as JSON.
    #[arg(long, value_name = "FILE.json")]
    output: Option<PathBuf>,
}

#[derive(clap::Args, Debug)]
struct SimulateArgs {
    /// Model directory.
    #[arg(long, value_name = "DIR")]
    model: PathBuf,
    /// Prediction store to write into.
    #[arg(long, env = "CHURN_STORE", value_name = "URL")]
    store: String,
    /// Customers are drawn from this table (the model's input layout).
    #[arg(long, value_name = "FILE")]
    input: PathBuf,
    /// Customers to simulate.
    #[arg(long, default_value_t = 10_000)]
    customers: usize,
    /// Seed.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// True effect of an action: ACTION=SHARE of would-be churners saved (repeatable; others 0).
    #[arg(long, value_name = "ACTION=SHARE")]
    effect: Vec<String>,
    /// Share of customers to contact who are contacted.
    #[arg(long, default_value_t = 0.8)]
    take_rate: f64,
    /// First scoring day (YYYY-MM-DD); predictions spread over the next 28 days.
    #[arg(long, value_name = "DATE", default_value = "2026-01-01")]
    start: String,
}

#[derive(Subcommand, Debug)]
enum StoreCmd {
    /// Delete predictions older than N days (in batches).
    Prune {
        /// Prediction store URL.
        #[arg(long, env = "CHURN_STORE", value_name = "URL")]
        store: String,
        /// Age in days; predictions scored earlier are deleted.
        #[arg(long, value_name = "DAYS")]
        older_than: u32,
    },
}

#[derive(clap::Args, Debug)]
struct TrainArgs {
    /// Output directory (default: models/NAME).
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// Model name (default: config name, else the output directory's name).
    #[arg(long)]
    name: Option<String>,
    /// Seed for the holdout split and CV folds (default 42).
    #[arg(long)]
    seed: Option<u64>,
    /// Model to ship: auto (default; the lower cross-validated log loss of the single tree and
    /// the boosted trees), tree, or boosted.
    #[arg(long, value_name = "KIND", value_enum)]
    model: Option<churn::model::ModelChoice>,
    /// Boosted trees: depths to search, comma-separated (default 3,5).
    #[arg(long, value_name = "D,...", value_delimiter = ',')]
    boost_max_depth: Vec<usize>,
    /// Boosted trees: learning rates to search, comma-separated (default 0.05).
    #[arg(long, value_name = "LR,...", value_delimiter = ',')]
    boost_learning_rate: Vec<f64>,
    /// Boosted trees: most rounds; early stopping picks fewer (default 1000).
    #[arg(long, value_name = "N")]
    boost_rounds: Option<usize>,
    /// Single tree's learner (default hist).
    #[arg(long, value_name = "NAME", value_enum)]
    learner: Option<LearnerKind>,
    /// Split criterion (default gini).
    #[arg(long, value_name = "NAME", value_enum)]
    criterion: Option<Criterion>,
    /// Cross-validation folds (default 5).
    #[arg(long, value_name = "K")]
    folds: Option<usize>,
    /// Holdout share for evaluation (default 0.2; 0 trains on all rows).
    #[arg(long, value_name = "SHARE")]
    holdout: Option<f64>,
    /// Depths to search, comma-separated (with --no-search: the depth).
    #[arg(long, value_name = "D,...", value_delimiter = ',')]
    max_depth: Vec<usize>,
    /// Leaf sizes to search, comma-separated (with --no-search: the size).
    #[arg(long, value_name = "N,...", value_delimiter = ',')]
    min_samples_leaf: Vec<usize>,
    /// One fit with the given hyper-parameters, no CV grid.
    #[arg(long)]
    no_search: bool,
    /// Class weights (default none).
    #[arg(long, value_name = "MODE", value_enum)]
    class_weight: Option<ClassWeight>,
    /// Minimum count for a categorical level to get its own column (default 10).
    #[arg(long, value_name = "N")]
    min_count: Option<usize>,
    /// Worker threads (default: all cores).
    #[arg(long, value_name = "N")]
    threads: Option<usize>,
    /// Value of a saved churner (enables the profit-maximising threshold).
    #[arg(long, value_name = "X", requires_all = ["contact_cost", "save_rate"])]
    customer_value: Option<f64>,
    /// Cost of one retention contact.
    #[arg(long, value_name = "X", requires = "customer_value")]
    contact_cost: Option<f64>,
    /// Share of contacted churners who stay (0..1).
    #[arg(long, value_name = "X", requires = "customer_value")]
    save_rate: Option<f64>,
    /// Number of segments, or `auto` (2..=8 by silhouette).
    #[arg(long, value_name = "K|auto")]
    segments: Option<String>,
    /// Do not build segments.
    #[arg(long)]
    no_segments: bool,
    /// Retention playbook (TOML); default: the config's, else the built-in one.
    #[arg(long, value_name = "FILE")]
    playbook: Option<PathBuf>,
    /// Previous model directory: keep its segment ids and names, report the migration.
    #[arg(long, value_name = "DIR")]
    previous: Option<PathBuf>,
    /// Print only errors (no progress bars, no report).
    #[arg(long)]
    quiet: bool,
}

fn main() {
    let cli = Cli::parse();
    let quiet = match &cli.cmd {
        Some(Cmd::Features { quiet, .. }) => *quiet,
        Some(Cmd::Outcomes(a)) => a.quiet,
        Some(Cmd::Store { .. })
        | Some(Cmd::Report { .. })
        | Some(Cmd::ExportSql(_))
        | Some(Cmd::Evaluate(_))
        | Some(Cmd::Kpis(_))
        | Some(Cmd::Simulate(_)) => false,
        None => cli.train.quiet,
    };
    cli::init_logging(quiet, cli::LogFormat::Text);
    let result = match cli.cmd {
        Some(Cmd::Features {
            data,
            as_of,
            output,
            memory_limit,
            engine,
            dialect,
            table,
            quiet,
        }) => match engine.as_str() {
            "native" => match output {
                Some(out) => features(&data, as_of, &out, memory_limit.as_deref(), quiet),
                None => Err(cli::CliError::Usage(
                    "features: --output FILE is required (or --engine sql to print a query)".into(),
                )
                .into()),
            },
            "sql" => features_sql(&data, as_of, dialect.as_deref(), &table, output),
            other => Err(cli::CliError::Usage(format!(
                "--engine: expected native or sql, found '{other}'"
            ))
            .into()),
        },
        Some(Cmd::Report { model, output }) => report(&model, output),
        Some(Cmd::ExportSql(a)) => export_sql(&a),
        Some(Cmd::Outcomes(a)) => outcomes(&a),
        Some(Cmd::Evaluate(a)) => evaluate(&a),
        Some(Cmd::Kpis(a)) => kpis(&a),
        Some(Cmd::Simulate(a)) => simulate(&a),
        Some(Cmd::Store {
            cmd: StoreCmd::Prune { store, older_than },
        }) => prune(&store, older_than),
        None => run_train(&cli.data, &cli.train),
    };
    if let Err(e) = result {
        std::process::exit(cli::report(&e));
    }
}

fn open_store(url: &str) -> anyhow::Result<Store> {
    let ids = IdKey::new(std::env::var("CHURN_ID_KEY").ok().as_deref());
    Store::open(&StoreUrl::parse(url)?, ids)?
        .ok_or_else(|| cli::CliError::Usage("--store: give a database URL, not none".into()).into())
}

fn outcomes(a: &OutcomeArgs) -> anyhow::Result<()> {
    let table = churn::io::read_table(&a.input, None)?;
    let actions: Option<BTreeSet<String>> = match &a.model {
        Some(dir) => churn::bundle::load(dir)?
            .bundle
            .playbook
            .map(|p| p.action_ids().map(str::to_string).collect()),
        None => None,
    };
    let (valid, bad) =
        churn::store::validate_table(&table, actions.as_ref(), churn::store::now_ms())
            .map_err(|m| cli::CliError::Usage(format!("{}: {m}", a.input.display())))?;
    if let (false, Some((r, e))) = (a.skip_invalid, bad.first()) {
        let msg = format!(
            "{}: row {}: {e}; nothing was stored",
            a.input.display(),
            r + 1
        );
        return Err(cli::CliError::Usage(msg).into());
    }
    let store = open_store(&a.store)?;
    let report = store.block_on(store.record_outcomes(valid))?;
    if !bad.is_empty() {
        let path = a
            .rejects
            .clone()
            .unwrap_or_else(|| churn::util::sibling_path(&a.input, "rejects.csv"));
        write_table(&path, churn::io::reject_table(&table, &bad))?;
        eprintln!(
            "{} of {} rows rejected; written to {}",
            bad.len(),
            table.nrows,
            path.display()
        );
    }
    if !a.quiet {
        eprintln!(
            "stored {} outcomes ({} duplicates) in {}",
            report.stored,
            report.duplicates,
            store.url()
        );
    }
    Ok(())
}

/// A date option as Unix milliseconds, or a usage error naming the option.
fn instant(option: &str, v: &Option<String>) -> anyhow::Result<Option<i64>> {
    v.as_deref()
        .map(|s| {
            churn::store::parse_instant(s).ok_or_else(|| {
                cli::CliError::Usage(format!(
                    "--{option}: expected a date (YYYY-MM-DD) or ISO-8601 instant, got '{s}'"
                ))
                .into()
            })
        })
        .transpose()
}

fn evaluate(a: &EvaluateArgs) -> anyhow::Result<()> {
    use churn::evaluate;
    let period = evaluate::Period {
        from: instant("from", &a.from)?,
        to: instant("to", &a.to)?,
        as_of: instant("as-of", &a.as_of)?,
        horizon_days: a.horizon_days,
    };
    let store = open_store(&a.store)?;
    let model = store.block_on(evaluate::resolve_model(&store, a.model.as_deref()))?;
    let dir = a.models.join(&model);
    let bundle = if dir.join(churn::bundle::MODEL_FILE).exists() {
        Some(churn::bundle::load(&dir)?.bundle)
    } else {
        eprintln!(
            "note: no bundle at {}: no playbook (costs, learned save rates) and the default horizon unless --horizon-days",
            dir.display()
        );
        None
    };
    let opts = evaluate::options(&model, bundle.as_ref(), &period);
    let t = std::time::Instant::now();
    let data = store.block_on(store.load_evaluation(&model, period.from, period.to, false))?;
    tracing::debug!(
        secs = t.elapsed().as_secs_f64(),
        predictions = data.predictions.len(),
        outcomes = data.outcomes.len(),
        "loaded"
    );
    let t = std::time::Instant::now();
    let ev = evaluate::evaluate(&data, &opts)?;
    tracing::debug!(secs = t.elapsed().as_secs_f64(), "evaluated");
    print!("{}", ev.summary());
    if let Some(path) = &a.output {
        let json = serde_json::to_vec_pretty(&ev)?;
        churn::util::write_atomic(path, &json)
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    if !a.no_learned_rates && bundle.is_some() {
        store.block_on(store.save_learned_rates(&model, &ev.learned_rates))?;
        let used = ev.learned_rates.iter().filter(|l| l.applied).count();
        eprintln!(
            "stored {} learned save rates ({used} with enough evidence to be used) for model {model}; churn-serve and churn-score use them from their next load",
            ev.learned_rates.len()
        );
    }
    Ok(())
}

fn kpis(a: &KpiArgs) -> anyhow::Result<()> {
    use churn::evaluate::{self, kpi};
    let mut opt = kpi::KpiOptions::last_full_month(churn::store::now_ms());
    if let (Some(f), Some(t)) = (instant("from", &a.from)?, instant("to", &a.to)?) {
        opt.from = f;
        opt.to = t;
    }
    opt.margin_rate = a.margin_rate;
    opt.discount_rate = a.discount_rate;
    kpi::check(&opt)?;
    let store = open_store(&a.store)?;
    let model = store.block_on(evaluate::resolve_model(&store, a.model.as_deref()))?;
    let data = store.block_on(store.load_evaluation(&model, None, None, true))?;
    let k = kpi::kpis(&data, &opt);
    print!("{}", k.summary());
    if let Some(path) = &a.output {
        churn::util::write_atomic(path, &serde_json::to_vec_pretty(&k)?)
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    Ok(())
}

fn simulate(a: &SimulateArgs) -> anyhow::Result<()> {
    use churn::evaluate::simulate::{simulate, SimConfig};
    let mut effects = Vec::new();
    for e in &a.effect {
        let parsed = e
            .split_once('=')
            .and_then(|(k, v)| Some((k.trim().to_string(), v.trim().parse::<f64>().ok()?)))
            .filter(|(_, v)| (0.0..=1.0).contains(v));
        match parsed {
            Some(p) => effects.push(p),
            None => {
                return Err(cli::CliError::Usage(format!(
                    "--effect: expected ACTION=SHARE with SHARE in 0..=1, got '{e}'"
                ))
                .into())
            }
        }
    }
    if !(0.0..=1.0).contains(&a.take_rate) {
        return Err(cli::CliError::Usage(format!(
            "--take-rate: expected 0..=1, got {}",
            a.take_rate
        ))
        .into());
    }
    let scorer = churn::scoring::Scorer::new(churn::bundle::load(&a.model)?);
    if let Some(pb) = &scorer.bundle.playbook {
        for (action, _) in &effects {
            if !pb.action_ids().any(|x| x == action) {
                return Err(cli::CliError::Usage(format!(
                    "--effect: the playbook has no action '{action}'"
                ))
                .into());
            }
        }
    } else {
        return Err(cli::CliError::Usage(format!(
            "{}: the model has no playbook",
            a.model.display()
        ))
        .into());
    }
    let start = instant("start", &Some(a.start.clone()))?.unwrap_or_default();
    let table = churn::io::read_table(&a.input, None)?;
    let cfg = SimConfig {
        customers: a.customers,
        seed: a.seed,
        effects,
        take_rate: a.take_rate,
        start_ms: start,
        horizon_days: churn::evaluate::options(
            &scorer.bundle.name,
            Some(&scorer.bundle),
            &Default::default(),
        )
        .horizon_days,
        id_prefix: format!("sim{}-", a.seed),
        ..SimConfig::default()
    };
    let campaign = simulate(&scorer, &table, &cfg)?;
    let store = open_store(&a.store)?;
    store.block_on(store.insert_predictions(campaign.records.clone()))?;
    let report = store.block_on(store.record_outcomes(campaign.outcomes.clone()))?;
    eprintln!(
        "simulated {} customers of model {} into {}: {} predictions, {} outcome events",
        campaign.records.len(),
        scorer.bundle.name,
        store.url(),
        campaign.records.len(),
        report.stored
    );
    for t in &campaign.truth.actions {
        eprintln!(
            "  truth {:<24} effect {:.2} × mean probability {:.3} = lift {:+.1} pts",
            t.action,
            t.effect,
            t.mean_probability,
            100.0 * t.lift
        );
    }
    Ok(())
}

fn prune(url: &str, older_than_days: u32) -> anyhow::Result<()> {
    let store = open_store(url)?;
    let before = churn::store::now_ms() - i64::from(older_than_days) * 86_400_000;
    let n = store.block_on(store.prune(before))?;
    eprintln!("deleted {n} predictions from {}", store.url());
    Ok(())
}

/// `--dialect` as a [`churn::export::Dialect`].
fn parse_dialect(d: Option<&str>) -> Result<churn::export::Dialect, cli::CliError> {
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
fn write_sql(sql: &str, output: Option<&std::path::Path>, what: &str) -> anyhow::Result<()> {
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

fn features_sql(
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

fn export_sql(a: &ExportSqlArgs) -> anyhow::Result<()> {
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

fn report(model: &std::path::Path, output: Option<PathBuf>) -> anyhow::Result<()> {
    let html = churn::report::render_dir(model)?;
    let dir = if model.is_dir() {
        model.to_path_buf()
    } else {
        model.parent().map(PathBuf::from).unwrap_or_default()
    };
    let out = output.unwrap_or_else(|| dir.join(churn::report::REPORT_FILE));
    churn::util::write_atomic(&out, html.as_bytes())
        .with_context(|| format!("{}: cannot write", out.display()))?;
    eprintln!("wrote {} ({} KB)", out.display(), html.len() / 1024);
    Ok(())
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
    // 1.99 GB)
    let chunk_bytes = limit.map_or(32 << 20, |l| (l / 64).clamp(4 << 20, 32 << 20)) as usize;
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

fn features(
    data: &DataArgs,
    as_of: Option<String>,
    output: &std::path::Path,
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
    train::write_json(&qpath, &table.quality)?;
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

fn run_train(data: &DataArgs, args: &TrainArgs) -> anyhow::Result<()> {
    let (mut cfg, source) = data.resolve()?;
    args.apply(&mut cfg)?;
    let (name, out_dir) = args.name_and_dir(&cfg);
    let data_sha256 = churn::util::sha256_file(source.path())
        .with_context(|| format!("{}: cannot read", source.path().display()))?;
    let table = churn::ingest::load(&source)?;
    if !args.quiet {
        eprint!("{}", table.quality.render());
    }
    let opts = TrainOptions {
        name,
        out_dir: out_dir.clone(),
        seed: args.seed.or(cfg.seed).unwrap_or(42),
        model: cfg.model.clone(),
        economics: cfg.economics,
        data_sha256,
        progress: !args.quiet,
        segments: cfg.segments.clone(),
        previous: args.previous.clone(),
        playbook: match args.playbook.clone().or(cfg.playbook.clone()) {
            Some(p) => Some((churn::playbook::read(&p)?, p.display().to_string())),
            None => None,
        },
    };
    let outcome = train::train(table, &opts)?;
    if !args.quiet {
        eprint!("{}", train::summary(&outcome.card));
        eprintln!("wrote {}", out_dir.display());
    }
    Ok(())
}

impl TrainArgs {
    /// Flags override the config file's values; the result is validated.
    fn apply(&self, cfg: &mut Config) -> Result<(), anyhow::Error> {
        self.apply_model(&mut cfg.model);
        cfg.model.validate()?;
        self.apply_segments(&mut cfg.segments)?;
        if let (Some(v), Some(c), Some(s)) =
            (self.customer_value, self.contact_cost, self.save_rate)
        {
            cfg.economics = Some(Economics {
                customer_value: v,
                contact_cost: c,
                save_rate: s,
            });
        }
        if let Some(e) = &cfg.economics {
            let valid = e.customer_value > 0.0
                && e.contact_cost >= 0.0
                && (0.0..=1.0).contains(&e.save_rate);
            if !valid {
                return Err(cli::CliError::Usage(
                    "economics: customer_value must be > 0, contact_cost ≥ 0 and save_rate in [0, 1]"
                        .into(),
                )
                .into());
            }
        }
        Ok(())
    }

    fn apply_model(&self, m: &mut ModelConfig) {
        if let Some(v) = self.model {
            m.model = v;
        }
        if !self.boost_max_depth.is_empty() {
            m.boost_max_depth = self.boost_max_depth.clone();
        }
        if !self.boost_learning_rate.is_empty() {
            m.boost_learning_rate = self.boost_learning_rate.clone();
        }
        if let Some(v) = self.boost_rounds {
            m.boost_rounds = v;
        }
        if let Some(v) = self.learner {
            m.learner = v;
        }
        if let Some(v) = self.criterion {
            m.criterion = v;
        }
        if let Some(v) = self.folds {
            m.folds = v;
        }
        if let Some(v) = self.holdout {
            m.holdout = v;
        }
        if !self.max_depth.is_empty() {
            m.max_depth = self.max_depth.clone();
        }
        if !self.min_samples_leaf.is_empty() {
            m.min_samples_leaf = self.min_samples_leaf.clone();
        }
        if self.no_search {
            m.search = false;
        }
        if let Some(v) = self.class_weight {
            m.class_weight = v;
        }
        if let Some(v) = self.min_count {
            m.min_count = v;
        }
        if let Some(v) = self.threads {
            m.threads = v;
        }
    }

    fn apply_segments(&self, seg: &mut SegmentConfig) -> Result<(), cli::CliError> {
        if self.no_segments {
            seg.enabled = false;
        }
        if let Some(k) = &self.segments {
            seg.k = match k.as_str() {
                "auto" => None,
                v => Some(v.parse().map_err(|_| {
                    cli::CliError::Usage(format!("--segments expects a number or auto, got '{v}'"))
                })?),
            };
        }
        Ok(())
    }

    /// Model name (flag, config, output directory's name, else `model`) and output directory
    /// (default `models/NAME`).
    fn name_and_dir(&self, cfg: &Config) -> (String, PathBuf) {
        let name = self
            .name
            .clone()
            .or(cfg.name.clone())
            .or_else(|| {
                self.out
                    .as_ref()
                    .and_then(|o| o.file_name())
                    .map(|s| s.to_string_lossy().into_owned())
            })
            .unwrap_or_else(|| "model".into());
        let out_dir = self
            .out
            .clone()
            .unwrap_or_else(|| PathBuf::from("models").join(&name));
        (name, out_dir)
    }
}
