//! `churn-train store`: maintain the prediction store.

use crate::open_store;
use clap::Subcommand;

#[derive(clap::Args, Debug)]
pub struct StoreArgs {
    #[command(subcommand)]
    cmd: StoreCmd,
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

/// Run `churn-train store SUBCOMMAND`.
pub fn run(a: &StoreArgs) -> anyhow::Result<()> {
    match &a.cmd {
        StoreCmd::Prune { store, older_than } => prune(store, *older_than),
    }
}

fn prune(url: &str, older_than_days: u32) -> anyhow::Result<()> {
    let store = open_store(url)?;
    let before = churn::time::now_ms() - i64::from(older_than_days) * churn::time::DAY_MS;
    let r = store.block_on(store.prune(before))?;
    eprintln!(
        "deleted {} predictions, {} shadow answers and {} outcomes of customers left without one from {}",
        r.predictions,
        r.shadow,
        r.outcomes,
        store.url()
    );
    Ok(())
}
