//! `churn-train --from-store URL`: a new version of a model trained on what its predictions
//! met — each customer's first matured prediction in the store, offered customers left out
//! (see `churn::evaluate::retrain`).

use crate::train::{finish, TrainArgs};
use crate::{instant, open_store};
use churn::bundle::registry::ModelDir;
use churn::cli::{self, DataArgs};
use churn::evaluate::{compare, retrain};
use churn::segment::SegmentConfig;
use churn::train::{self, TrainOptions};

/// Read the rows, train, register.
pub fn run(data: &DataArgs, args: &TrainArgs, url: &str) -> anyhow::Result<()> {
    let mut cfg = data.config_only()?;
    args.apply(&mut cfg)?;
    let (name, out_dir) = args.name_and_dir(&cfg)?;
    let dir = ModelDir::new(&out_dir);
    let champion = churn::bundle::load(&dir.resolve(None)?)?;
    let champion_dir = champion.dir.clone();
    let bundle = &champion.bundle;
    let store = open_store(url)?;
    let as_of = instant("as-of", &args.as_of)?.unwrap_or_else(churn::time::now_ms);
    let since = instant("since", &args.since)?;
    let (horizon_days, _) = churn::evaluate::horizon(data.horizon_days, Some(bundle));
    let (rows, counts) = store.block_on(compare::from_store(
        &store,
        &bundle.name,
        (since, Some(as_of)),
        as_of,
        horizon_days,
    ))?;
    let source = retrain::StoreSource {
        store: churn::store::redact(url),
        model: bundle.name.clone(),
        since,
        as_of,
        horizon_days,
    };
    let table = retrain::customer_table(bundle, rows, counts, &source)?;
    if !args.quiet {
        eprint!("{}", table.quality.render());
    }
    // the champion's playbook and segments unless the flags or the config name others
    let playbook = match args.playbook_file(&cfg)? {
        Some(p) => Some(p),
        None => bundle.playbook.as_ref().map(|p| {
            (
                p.file.clone(),
                format!("the playbook of {}", champion_dir.display()),
            )
        }),
    };
    let segments = match (&bundle.segments, &args.segments, args.no_segments) {
        (Some(s), None, false) => SegmentConfig {
            k: Some(s.segments.len()),
            features: Some(s.features.iter().map(|f| f.name.clone()).collect()),
            ..cfg.segments.clone()
        },
        (None, None, _) => SegmentConfig {
            enabled: false,
            ..cfg.segments.clone()
        },
        _ => cfg.segments.clone(),
    };
    let opts = TrainOptions {
        name,
        out_dir: out_dir.clone(),
        seed: args.seed.or(cfg.seed).unwrap_or(42),
        model: cfg.model.clone(),
        economics: cfg
            .economics
            .or_else(|| churn::bundle::card::read(&champion.dir)?.economics),
        data_sha256: retrain::fingerprint(&table),
        progress: !args.quiet,
        segments,
        previous: Some(args.previous.clone().unwrap_or(champion_dir)),
        playbook,
        author: cli::author(
            args.reason
                .clone()
                .unwrap_or_else(|| format!("trained from the store ({})", source.describe())),
        ),
    };
    let outcome = train::train(table, &opts)?;
    finish(args, &opts, &outcome)
}
