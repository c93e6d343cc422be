//! `churn-train`: train a churn model bundle, or write the customer-level feature table.
//!
//! One file per subcommand, each holding its flags beside the function that runs it; the
//! default (no subcommand) is [`train`]. Validation lives in the library: this layer parses
//! flags, calls the library and prints.

mod check;
mod evaluate;
mod export_sql;
mod features;
mod from_store;
mod init;
mod kpis;
mod models;
mod outcomes;
mod report;
mod simulate;
mod store;
mod train;
mod uplift;

use churn::cli::{self, DataArgs};
use churn::store::{IdKey, Store, StoreUrl};
use clap::{Parser, Subcommand};

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
    train: train::TrainArgs,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Write a commented churn.toml and playbook.toml for a customer table the service has not
    /// seen, and print what was decided about each column and why: label, id, personal data,
    /// identifier-like columns, tenure, customer value, churn drivers and their actions.
    Init(init::InitArgs),
    /// Check a playbook while editing it, as training and loading do: against a trained
    /// model's inputs (--model) or the inputs of the data it is for (--config, or --data and
    /// --label). Every error names the rule or setting, the key and the line.
    Check(check::CheckArgs),
    /// Write the customer-level table the model would be trained on (id, features, label), or
    /// with --as-of the features of every customer on that date, for scoring (no label).
    Features(features::FeaturesArgs),
    /// Re-render a trained model's HTML report (report.html) from its bundle and card.
    Report(report::ReportArgs),
    /// Print the model as one SQL query that scores a customer table inside PostgreSQL, DuckDB
    /// or Spark: the same probabilities (to the last bit), intervals, segments, classes, stages
    /// and risk bands churn-score writes.
    ExportSql(export_sql::ExportSqlArgs),
    /// Load outcome events (churned, retained, action_taken, purchase, survey) from a CSV /
    /// Parquet file into the prediction store; all or nothing unless --skip-invalid.
    Outcomes(outcomes::OutcomeArgs),
    /// Measure what the logged predictions were worth once outcomes came back: realised and
    /// expected performance, the lift of each action against the control group, and the save
    /// rates it teaches (stored, unless --no-learned-rates, for the next load of the model).
    Evaluate(evaluate::EvaluateArgs),
    /// Retention KPIs over a period (default: the last full month), overall and per segment:
    /// retention, churn, repurchase, NPS, average order value, CLV.
    Kpis(kpis::KpiArgs),
    /// Write a simulated campaign with known truth into a store: customers drawn from a table,
    /// scored by the model, contacted, and churning with a chosen true effect per action.
    Simulate(simulate::SimulateArgs),
    /// Maintain the prediction store.
    Store(store::StoreArgs),
    /// The registry of model versions: list them, set aliases, promote a version to champion,
    /// roll back, remove an unused version.
    Models(models::ModelsArgs),
    /// Learn each action's per-customer effect (uplift) from the logged campaigns: offered vs
    /// held-out customers with matured labels, T- and X-learners cross-fitted, the better one
    /// per action by held-out Qini, written beside the model as uplift.bin and uplift_card.json.
    Uplift(uplift::UpliftArgs),
}

fn main() {
    let cli = Cli::parse();
    let quiet = match &cli.cmd {
        Some(Cmd::Features(a)) => a.quiet,
        Some(Cmd::Outcomes(a)) => a.quiet,
        Some(Cmd::Init(_))
        | Some(Cmd::Check(_))
        | Some(Cmd::Store(_))
        | Some(Cmd::Models(_))
        | Some(Cmd::Report(_))
        | Some(Cmd::ExportSql(_))
        | Some(Cmd::Evaluate(_))
        | Some(Cmd::Kpis(_))
        | Some(Cmd::Simulate(_))
        | Some(Cmd::Uplift(_)) => false,
        None => cli.train.quiet,
    };
    cli::init_logging(quiet, cli::LogFormat::Text);
    let result = match cli.cmd {
        Some(Cmd::Init(a)) => init::run(&a),
        Some(Cmd::Check(a)) => check::run(&a),
        Some(Cmd::Features(a)) => features::run(a),
        Some(Cmd::Report(a)) => report::run(a),
        Some(Cmd::ExportSql(a)) => export_sql::run(&a),
        Some(Cmd::Outcomes(a)) => outcomes::run(&a),
        Some(Cmd::Evaluate(a)) => evaluate::run(&a),
        Some(Cmd::Kpis(a)) => kpis::run(&a),
        Some(Cmd::Simulate(a)) => simulate::run(&a),
        Some(Cmd::Store(a)) => store::run(&a),
        Some(Cmd::Models(a)) => models::run(&a),
        Some(Cmd::Uplift(a)) => uplift::run(&a),
        None => train::run(&cli.data, &cli.train),
    };
    if let Err(e) = result {
        std::process::exit(cli::report(&e));
    }
}

/// The prediction store of `--store URL` (a database, not `none`).
fn open_store(url: &str) -> anyhow::Result<Store> {
    let ids = IdKey::new(std::env::var("CHURN_ID_KEY").ok().as_deref());
    Store::open(&StoreUrl::parse(url)?, ids)?
        .ok_or_else(|| cli::CliError::Usage("--store: give a database URL, not none".into()).into())
}

/// A date option as Unix milliseconds, or a usage error naming the option.
fn instant(option: &str, v: &Option<String>) -> anyhow::Result<Option<i64>> {
    v.as_deref()
        .map(|s| {
            churn::time::parse(s).ok_or_else(|| {
                cli::CliError::Usage(format!(
                    "--{option}: expected a date (YYYY-MM-DD) or ISO-8601 instant, got '{s}'"
                ))
                .into()
            })
        })
        .transpose()
}
