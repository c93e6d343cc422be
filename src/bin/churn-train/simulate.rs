//! `churn-train simulate`: write a simulated campaign with known truth into a store.

use crate::{instant, open_store};
use churn::cli;
use churn::evaluate::simulate::{parse_effect, parse_take_by_risk, simulate, SimConfig};
use churn::evaluate::waves::{run as run_waves, summary, WaveConfig};
use churn::evaluate::EvalError;
use std::path::{Path, PathBuf};

#[derive(clap::Args, Debug)]
pub struct SimulateArgs {
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
    /// True effect of an action: ACTION=SHARE of would-be churners saved, −1 to 1, negative for
    /// an action that drives customers away (repeatable; others 0).
    #[arg(long, value_name = "ACTION=SHARE", allow_hyphen_values = true)]
    effect: Vec<String>,
    /// Share of customers to contact who are contacted.
    #[arg(long, default_value_t = 0.8)]
    take_rate: f64,
    /// Selective take-up instead of --take-rate: the shares contacted in the high, medium and
    /// low risk band (e.g. 0.95,0.7,0.35: agents reach the riskiest first).
    #[arg(long, value_name = "HIGH,MEDIUM,LOW")]
    take_by_risk: Option<String>,
    /// Effects that depend on the customer: a TOML file of `[[effect]]` rules (action, share or
    /// points, when = predicates); see the README.
    #[arg(long, value_name = "FILE")]
    effects: Option<PathBuf>,
    /// First scoring day (YYYY-MM-DD); predictions spread over the next 28 days.
    #[arg(long, value_name = "DATE", default_value = "2026-01-01")]
    start: String,
    /// Run the whole loop this many times: each wave is scored with the save rates and uplift
    /// models learned from the waves before it (in memory), and measured against the truth at
    /// the same contact budget; every wave is stored.
    #[arg(long, default_value_t = 1, value_name = "N")]
    waves: usize,
}

/// A simulation parameter error as a usage error naming the flag (`--effect`, `--take-rate`)
/// or, for the model, its directory.
fn usage(e: EvalError, model: &Path) -> anyhow::Error {
    match e {
        EvalError::Invalid {
            field: "model",
            message,
        } => cli::CliError::Usage(format!("{}: {message}", model.display())).into(),
        EvalError::Invalid { field, message } => {
            cli::CliError::Usage(format!("--{}: {message}", field.replace('_', "-"))).into()
        }
        other => other.into(),
    }
}

/// Run `churn-train simulate`: parse and check the flags (before reading the model, then
/// against its playbook), simulate, store the campaign, print the truth.
pub fn run(a: &SimulateArgs) -> anyhow::Result<()> {
    let effects = a
        .effect
        .iter()
        .map(|e| parse_effect(e))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| usage(e, &a.model))?;
    let mut cfg = SimConfig {
        customers: a.customers,
        seed: a.seed,
        effects,
        take_rate: a.take_rate,
        take_by_risk: a
            .take_by_risk
            .as_deref()
            .map(parse_take_by_risk)
            .transpose()
            .map_err(|e| usage(e, &a.model))?,
        id_prefix: format!("sim{}-", a.seed),
        ..SimConfig::default()
    };
    cfg.validate_parameters().map_err(|e| usage(e, &a.model))?;
    let loaded = churn::bundle::load(&a.model)?;
    let dir = loaded.dir.clone();
    let mut scorer = churn::scoring::Scorer::new(loaded);
    // a later wave offers what the uplift model learned from the earlier ones
    if scorer.attach_uplift(&dir)? {
        eprintln!("offering actions by the uplift model in {}", dir.display());
    }
    cfg.validate(scorer.bundle.playbook.as_ref())
        .map_err(|e| usage(e, &a.model))?;
    if let Some(path) = &a.effects {
        let pb = scorer.bundle.playbook.as_ref();
        let world = churn::evaluate::effects::read_world(path, &scorer.bundle.encoder, |x| {
            pb.is_some_and(|pb| pb.action_ids().any(|id| id == x))
        })
        .map_err(|e| usage(e, &a.model))?;
        cfg.effect_rules = world.effects;
        cfg.shifts = world.shifts;
    }
    cfg.start_ms = instant("start", &Some(a.start.clone()))?.unwrap_or_default();
    let table = churn::io::read_table(&a.input, None)?;
    cfg.horizon_days = churn::evaluate::options(
        &scorer.bundle.name,
        Some(&scorer.bundle),
        &Default::default(),
    )
    .horizon_days;
    let campaign = if a.waves == 1 {
        simulate(&scorer, &table, &cfg)?
    } else {
        let waves = WaveConfig {
            waves: a.waves,
            uplift: Some(Default::default()),
        };
        let (reports, log, _) =
            run_waves(&scorer, &table, &cfg, &waves).map_err(|e| usage(e, &a.model))?;
        eprint!("{}", summary(&reports));
        log
    };
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
            "  truth{} {:<24} effect {:+.2} × mean probability {:.3} of the contacted = lift {:+.1} pts (take-up {:.0}%)",
            if a.waves > 1 { " (wave 1)" } else { "" },
            t.action,
            t.effect,
            t.mean_probability,
            100.0 * t.lift,
            100.0 * t.take_up
        );
    }
    Ok(())
}
