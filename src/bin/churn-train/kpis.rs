//! `churn-train kpis`: retention KPIs over a period, overall and per segment.

use crate::{instant, open_store};
use anyhow::Context;
use std::path::PathBuf;

#[derive(clap::Args, Debug)]
pub struct KpiArgs {
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

/// Run `churn-train kpis`.
pub fn run(a: &KpiArgs) -> anyhow::Result<()> {
    use churn::evaluate::{self, kpi};
    let mut opt = kpi::KpiOptions::last_full_month(churn::time::now_ms());
    if let (Some(f), Some(t)) = (instant("from", &a.from)?, instant("to", &a.to)?) {
        opt.from = f;
        opt.to = t;
    }
    opt.margin_rate = a.margin_rate;
    opt.discount_rate = a.discount_rate;
    kpi::check(&opt)?;
    let store = open_store(&a.store)?;
    let model = store.block_on(evaluate::resolve_model(&store, a.model.as_deref()))?;
    let data = store.block_on(churn::evaluate::load(
        &store,
        &model,
        (None, None),
        churn::store::Events::All,
    ))?;
    let k = kpi::kpis(&data, &opt);
    print!("{}", k.summary());
    if let Some(path) = &a.output {
        churn::util::write_atomic(path, &serde_json::to_vec_pretty(&k)?)
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    Ok(())
}
