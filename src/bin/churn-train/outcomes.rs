//! `churn-train outcomes`: load outcome events from a file into the prediction store.

use crate::open_store;
use churn::cli;
use churn::io::write_table;
use std::collections::BTreeSet;
use std::path::PathBuf;

#[derive(clap::Args, Debug)]
pub struct OutcomeArgs {
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
    pub quiet: bool,
}

/// Run `churn-train outcomes`: validate every row, then store them (all or nothing unless
/// `--skip-invalid`).
pub fn run(a: &OutcomeArgs) -> anyhow::Result<()> {
    let table = churn::io::read_table(&a.input, None)?;
    let actions: Option<BTreeSet<String>> = match &a.model {
        Some(dir) => churn::bundle::load(dir)?
            .bundle
            .playbook
            .map(|p| p.action_ids().map(str::to_string).collect()),
        None => None,
    };
    let (valid, bad) =
        churn::store::validate_table(&table, actions.as_ref(), churn::time::now_ms())
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
