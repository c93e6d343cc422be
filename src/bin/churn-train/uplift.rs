//! `churn-train uplift`: learn each action's per-customer effect from the logged campaigns.

use crate::{instant, open_store};
use anyhow::Context;
use churn::evaluate::uplift as up;
use churn::io::OutData;
use std::path::PathBuf;

#[derive(clap::Args, Debug)]
pub struct UpliftArgs {
    /// Prediction store: sqlite://PATH or postgres://USER@HOST:PORT/DB.
    #[arg(long, env = "CHURN_STORE", value_name = "URL")]
    store: String,
    /// Model name (default: the only model with predictions in the store).
    #[arg(long, value_name = "NAME")]
    model: Option<String>,
    /// Directory of model bundles: the uplift bundle is written beside MODELS/NAME/model.bin.
    #[arg(long, value_name = "DIR", default_value = "models")]
    models: PathBuf,
    /// Predictions scored on or after DATE.
    #[arg(long, value_name = "DATE")]
    since: Option<String>,
    /// Judge labels as of DATE (default: now); predictions scored later are not read.
    #[arg(long, value_name = "DATE")]
    as_of: Option<String>,
    /// Label horizon in days (default: the model's; 90 for customer-table models).
    #[arg(long, value_name = "DAYS")]
    horizon_days: Option<u32>,
    /// Folds of the cross-fitting (held-out effects for choosing the learner).
    #[arg(long, value_name = "K", default_value_t = 5)]
    folds: usize,
    /// Seed of the folds and the boosted fits.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Also write the training rows (inputs, action, treated, churned, fold and each
    /// learner's held-out effect) as CSV or Parquet, e.g. to compare with other libraries.
    #[arg(long, value_name = "FILE")]
    rows_out: Option<PathBuf>,
}

/// Run `churn-train uplift`.
pub fn run(a: &UpliftArgs) -> anyhow::Result<()> {
    let as_of = instant("as-of", &a.as_of)?.unwrap_or_else(churn::time::now_ms);
    let since = instant("since", &a.since)?;
    let store = open_store(&a.store)?;
    let model = store.block_on(churn::evaluate::resolve_model(&store, a.model.as_deref()))?;
    let dir = a.models.join(&model);
    let loaded = churn::bundle::load(&dir)?;
    let (horizon, _) = churn::evaluate::horizon(a.horizon_days, Some(&loaded.bundle));
    let rows = store.block_on(up::from_store(
        &store,
        &loaded.bundle,
        since,
        as_of,
        horizon,
    ))?;
    let params = churn::model::uplift::UpliftParams {
        folds: a.folds,
        seed: a.seed,
        threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
        ..Default::default()
    };
    let (bundle, mut card, fits) = up::train(&rows, &loaded.bundle, &loaded.version, &params)?;
    let version = churn::bundle::uplift::save(&loaded.dir, &bundle, &mut card)?;
    print!("{}", up::summary(&card));
    eprintln!(
        "wrote {} and {} (uplift version {version}, for model {model} {})",
        loaded
            .dir
            .join(churn::bundle::uplift::UPLIFT_FILE)
            .display(),
        loaded
            .dir
            .join(churn::bundle::uplift::UPLIFT_CARD_FILE)
            .display(),
        loaded.version
    );
    // the model's report gains the uplift section (Qini curves, measures)
    match churn::report::render_dir(&loaded.dir) {
        Ok(html) => {
            let file = loaded.dir.join(churn::report::REPORT_FILE);
            churn::util::write_atomic(&file, html.as_bytes())
                .with_context(|| format!("cannot write {}", file.display()))?;
            eprintln!("updated {} with the uplift section", file.display());
        }
        Err(e) => eprintln!("note: report not updated: {e}"),
    }
    if let Some(path) = &a.rows_out {
        let inputs: Vec<String> = loaded
            .bundle
            .encoder
            .inputs
            .iter()
            .map(|i| i.name.clone())
            .collect();
        let columns = rows_table(&rows, &fits, &inputs)?;
        churn::io::write_table(path, columns)
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    Ok(())
}

/// The training rows of every modelled action as named columns.
fn rows_table(
    rows: &up::UpliftRows,
    fits: &[up::ActionFit],
    inputs: &[String],
) -> anyhow::Result<Vec<(String, OutData<'static>)>> {
    let mut cells: Vec<Vec<Option<String>>> = vec![Vec::new(); inputs.len()];
    let (mut action, mut treated, mut churned, mut fold) = (vec![], vec![], vec![], vec![]);
    let mut effects: Vec<(String, Vec<Option<f64>>)> = Vec::new();
    for f in fits {
        let Some(a) = rows.actions.iter().find(|a| a.action == f.action) else {
            continue;
        };
        for (r, row) in a.rows.iter().enumerate() {
            let map: serde_json::Map<String, serde_json::Value> = serde_json::from_str(&row.input)?;
            for (c, name) in inputs.iter().enumerate() {
                cells[c].push(match map.get(name) {
                    None | Some(serde_json::Value::Null) => None,
                    Some(serde_json::Value::String(s)) => Some(s.clone()),
                    Some(v) => Some(v.to_string()),
                });
            }
            action.push(Some(f.action.clone()));
            treated.push(Some(i64::from(row.treated)));
            churned.push(Some(i64::from(row.churned)));
            fold.push(Some(f.fit.folds[r] as i64));
            for c in &f.fit.tried {
                let name = format!("effect_{}", c.learner.as_str());
                let k = match effects.iter().position(|e| e.0 == name) {
                    Some(k) => k,
                    None => {
                        effects.push((name, Vec::new()));
                        effects.len() - 1
                    }
                };
                effects[k].1.push(Some(c.effect[r]));
            }
        }
    }
    let mut out: Vec<(String, OutData<'static>)> = inputs
        .iter()
        .cloned()
        .zip(cells.into_iter().map(OutData::Text))
        .collect();
    out.push(("action".into(), OutData::Text(action)));
    out.push(("treated".into(), OutData::Int(treated)));
    out.push(("churned".into(), OutData::Int(churned)));
    out.push(("fold".into(), OutData::Int(fold)));
    out.extend(effects.into_iter().map(|(n, v)| (n, OutData::Float(v))));
    Ok(out)
}
