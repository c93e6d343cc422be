//! `churn-train evaluate`: what the logged predictions were worth once outcomes came back.

use crate::{instant, open_store};
use anyhow::Context;
use std::path::PathBuf;

#[derive(clap::Args, Debug)]
pub struct EvaluateArgs {
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
    /// Also estimate what candidate targeting policies would have earned on the logged
    /// campaigns (off-policy, doubly robust and IPS): a comma-separated list of playbook,
    /// nobody, risk:SHARE, uplift, uplift:SHARE and candidate playbooks (FILE.toml).
    #[arg(long, value_name = "LIST", value_delimiter = ',')]
    policy: Vec<String>,
    /// Instead of the evaluation: compare two versions of the model (aliases or versions, e.g.
    /// `champion,challenger`) on the same matured customers — paired AUC difference (DeLong),
    /// Brier and log-loss differences (paired bootstrap), calibration, churners caught at the
    /// same budget — and give a verdict.
    #[arg(long, value_name = "A,B", value_delimiter = ',', num_args = 1)]
    compare: Vec<String>,
    /// Contacts each version gets in the comparison (default: 10% of the compared customers).
    #[arg(long, value_name = "N", requires = "compare")]
    budget: Option<usize>,
    /// Config whose `[lifecycle] promote = "when-better"` lets a comparison promote a
    /// challenger that is better on ranking and probabilities (both intervals excluding 0).
    #[arg(long, value_name = "FILE", requires = "compare")]
    config: Option<PathBuf>,
}

/// Run `churn-train evaluate`: print the summary, write the JSON, store the learned rates.
pub fn run(a: &EvaluateArgs) -> anyhow::Result<()> {
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
    let bundle = if dir.join(churn::bundle::MODEL_FILE).exists()
        || churn::bundle::registry::ModelDir::new(&dir).is_registry()
    {
        Some(churn::bundle::load(&dir)?.bundle)
    } else {
        eprintln!(
            "note: no bundle at {}: no playbook (costs, learned save rates) and the default horizon unless --horizon-days",
            dir.display()
        );
        None
    };
    if !a.compare.is_empty() {
        return compare(a, &store, &model, &dir, &period);
    }
    let opts = evaluate::options(&model, bundle.as_ref(), &period);
    let t = std::time::Instant::now();
    let data = store.block_on(churn::evaluate::load(
        &store,
        &model,
        (period.from, period.to),
        churn::store::Events::LabelsAndActions,
    ))?;
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
    let policies = match &bundle {
        Some(b) if !a.policy.is_empty() => {
            let r = policies(&store, b, &dir, &a.policy, &period, &opts)?;
            print!("{}", evaluate::policy::summary(&r));
            Some(r)
        }
        None if !a.policy.is_empty() => {
            return Err(churn::cli::CliError::Usage(format!(
                "--policy needs the model's bundle (its playbook), not found at {}",
                dir.display()
            ))
            .into())
        }
        _ => None,
    };
    if let Some(path) = &a.output {
        let mut value = serde_json::to_value(&ev)?;
        if let (Some(r), Some(o)) = (&policies, value.as_object_mut()) {
            o.insert("policies".into(), serde_json::to_value(r)?);
        }
        let json = serde_json::to_vec_pretty(&value)?;
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

/// The off-policy values of `names` on the model's logged campaigns.
fn policies(
    store: &churn::store::Store,
    bundle: &churn::bundle::Bundle,
    dir: &std::path::Path,
    names: &[String],
    period: &churn::evaluate::Period,
    opts: &churn::evaluate::EvalOptions<'_>,
) -> anyhow::Result<churn::evaluate::policy::PolicyReport> {
    use churn::evaluate::policy::{self, Policy};
    let mut files = Vec::new();
    let mut list = Vec::new();
    for n in names {
        if n.ends_with(".toml") {
            list.push(Policy::Candidate(files.len()));
            files.push(n.as_str());
        } else {
            list.push(Policy::parse(n)?);
        }
    }
    let playbook = bundle.playbook.as_ref().ok_or_else(|| {
        churn::cli::CliError::Usage(format!("--policy: model {} has no playbook", bundle.name))
    })?;
    let uplift = churn::bundle::uplift::load(dir, bundle)?.map(|(u, _)| u);
    if uplift.is_none()
        && list
            .iter()
            .any(|p| matches!(p, Policy::Uplift | Policy::UpliftTop(_)))
    {
        return Err(churn::cli::CliError::Usage(format!(
            "--policy uplift needs {}: run churn-train uplift first",
            dir.join(churn::bundle::uplift::UPLIFT_FILE).display()
        ))
        .into());
    }
    let rows = store.block_on(churn::evaluate::uplift::from_store(
        store,
        bundle,
        period.from,
        opts.as_of,
        opts.horizon_days,
    ))?;
    let units = policy::units(&rows, playbook, uplift.as_ref());
    // each candidate playbook, compiled against the model and ranked with its uplift models
    let mut candidates = Vec::new();
    for file in files {
        let loaded = churn::bundle::load(dir)?;
        let version_dir = loaded.dir.clone();
        let mut scorer = churn::scoring::Scorer::new(loaded);
        scorer.attach_uplift(&version_dir)?;
        scorer.set_playbook(churn::playbook::read(std::path::Path::new(file))?, file)?;
        candidates.push(policy::candidate(file, &scorer, playbook, &rows)?);
    }
    let offered = 1.0 - playbook.file.holdout_percent / 100.0;
    Ok(policy::evaluate(&units, offered, &list, &candidates)?)
}

/// `--compare A,B`: the two versions on the same matured customers.
fn compare(
    a: &EvaluateArgs,
    store: &churn::store::Store,
    model: &str,
    dir: &std::path::Path,
    period: &churn::evaluate::Period,
) -> anyhow::Result<()> {
    use churn::evaluate::compare;
    let [first, second] = a.compare.as_slice() else {
        return Err(churn::cli::CliError::Usage(format!(
            "--compare: expected two versions or aliases, e.g. champion,challenger; got {}",
            a.compare.len()
        ))
        .into());
    };
    let promote = match &a.config {
        Some(p) => churn::config::Config::load(p)?.lifecycle.promote,
        None => churn::config::Promote::Never,
    };
    if promote == churn::config::Promote::WhenBetter && period.from.is_none() {
        return Err(churn::cli::CliError::Usage(
            "[lifecycle] promote = \"when-better\" needs --from DATE: judge the challenger on \
             customers scored after the rows it was trained on (on those it looks better than it is)"
                .into(),
        )
        .into());
    }
    let [champion, challenger] = compare::load_pair(dir, [first, second])?;
    let (horizon, _) = churn::evaluate::horizon(a.horizon_days, Some(&champion.bundle));
    let as_of = period.as_of.unwrap_or_else(churn::time::now_ms);
    let (rows, counts) = store.block_on(compare::from_store(
        store,
        model,
        (period.from, period.to),
        as_of,
        horizon,
    ))?;
    let budget = a.budget.unwrap_or(rows.len().div_ceil(10));
    let c = compare::compare(
        &rows,
        counts,
        (first, &champion),
        (second, &challenger),
        budget,
    )?;
    print!("{}", compare::summary(&c));
    if promote == churn::config::Promote::WhenBetter {
        match compare::promotion(&c) {
            Some(reason) => {
                let m = churn::bundle::registry::ModelDir::new(dir);
                let author = churn::bundle::registry::Author {
                    by: "lifecycle (promote = when-better)".into(),
                    reason,
                };
                let change = m.set_alias(
                    churn::bundle::registry::CHAMPION,
                    &c.challenger.version,
                    &author,
                )?;
                if let Err(e) = store.block_on(store.record_model_change(model, &change)) {
                    eprintln!("warning: the promotion is not recorded in the store: {e}");
                }
                println!(
                    "promoted {} to champion of {} ({}); a running churn-serve serves it after its next reload",
                    c.challenger.version,
                    dir.display(),
                    author.reason
                );
            }
            None => println!(
                "not promoted: [lifecycle] promote = \"when-better\" needs the verdict \"challenger better\" with the AUC interval above 0 and the log-loss interval below 0"
            ),
        }
    }
    if let Some(path) = &a.output {
        let json = serde_json::to_vec_pretty(&c)?;
        churn::util::write_atomic(path, &json)
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    Ok(())
}
