//! `churn-train` without a subcommand: train a model bundle from a customer table or a
//! transaction log.

use anyhow::Context;
use churn::bundle::registry::{ModelDir, CHAMPION};
use churn::cli::{self, DataArgs};
use churn::config::{Config, ModelConfig};
use churn::model::tree::{Criterion, LearnerKind};
use churn::model::{ClassWeight, Economics};
use churn::segment::SegmentConfig;
use churn::train::{self, TrainOptions};
use std::path::PathBuf;

#[derive(clap::Args, Debug)]
pub struct TrainArgs {
    /// Output directory (default: models/NAME).
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// Model name (default: config name, else the output directory's name).
    #[arg(long)]
    name: Option<String>,
    /// Seed for the holdout split and CV folds (default 42).
    #[arg(long)]
    pub(crate) seed: Option<u64>,
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
    pub(crate) segments: Option<String>,
    /// Do not build segments.
    #[arg(long)]
    pub(crate) no_segments: bool,
    /// Customer table's tenure column, for lifecycle stages (segments.tenure_column).
    #[arg(long, value_name = "COL")]
    tenure_column: Option<String>,
    /// Days per unit of the tenure column: 1 (days), 30.44 (months), 365.25 (years)
    /// (segments.lifecycle.tenure_unit_days).
    #[arg(long, value_name = "DAYS")]
    tenure_unit_days: Option<f64>,
    /// Column summed as revenue in the segment profile (segments.revenue_column).
    #[arg(long, value_name = "COL")]
    revenue_column: Option<String>,
    /// Retention playbook (TOML); default: the config's, else one inferred from the data (as
    /// `churn-train init` writes it).
    #[arg(long, value_name = "FILE")]
    playbook: Option<PathBuf>,
    /// Previous model directory: keep its segment ids and names, report the migration.
    #[arg(long, value_name = "DIR")]
    pub(crate) previous: Option<PathBuf>,
    /// Make the new version the champion at once (default: the first version of a model is
    /// its champion; later ones wait for `churn-train models promote`).
    #[arg(long)]
    promote: bool,
    /// Why this version was trained (recorded in the registry with its promotion).
    #[arg(long, value_name = "TEXT")]
    pub(crate) reason: Option<String>,
    /// Train from the prediction store instead of a file: each customer's first matured
    /// prediction of the model (the input that was scored, the label observed within the
    /// horizon after it), leaving out customers offered an action. The champion of the model
    /// directory gives the input layout, label, playbook and segments.
    #[arg(long, value_name = "URL", conflicts_with_all = ["data", "transactions"])]
    pub from_store: Option<String>,
    /// With --from-store: only predictions scored on or after DATE (e.g. since a change in
    /// the market).
    #[arg(long, value_name = "DATE", requires = "from_store")]
    pub since: Option<String>,
    /// With --from-store: judge labels as of DATE (default: now).
    #[arg(long, value_name = "DATE", requires = "from_store")]
    pub as_of: Option<String>,
    /// Print only errors (no progress bars, no report).
    #[arg(long)]
    pub quiet: bool,
}

/// Train: resolve the data, apply the flags over the config, fit, write the bundle.
pub fn run(data: &DataArgs, args: &TrainArgs) -> anyhow::Result<()> {
    if let Some(url) = &args.from_store {
        return crate::from_store::run(data, args, url);
    }
    let (mut cfg, source) = data.resolve()?;
    args.apply(&mut cfg)?;
    let (name, out_dir) = args.name_and_dir(&cfg)?;
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
        playbook: args.playbook_file(&cfg)?,
        author: cli::author(
            args.reason
                .clone()
                .unwrap_or_else(|| format!("trained on {}", source.path().display())),
        ),
    };
    let outcome = train::train(table, &opts)?;
    finish(args, &opts, &outcome)
}

/// Promote when asked, print the card's summary and say where the version went and which one
/// is the champion.
pub fn finish(
    args: &TrainArgs,
    opts: &TrainOptions,
    outcome: &train::TrainOutcome,
) -> anyhow::Result<()> {
    let out_dir = &opts.out_dir;
    let r = &outcome.registered;
    if args.promote && r.champion != r.version {
        ModelDir::new(out_dir).set_alias(CHAMPION, &r.version, &opts.author)?;
    }
    if !args.quiet {
        eprint!("{}", churn::bundle::card::summary(&outcome.card));
    }
    let champion = if args.promote {
        &r.version
    } else {
        &r.champion
    };
    let what = if r.new {
        format!("wrote {}", r.dir.display())
    } else {
        format!(
            "version {} is already registered in {} (the same bundle): nothing written",
            r.version,
            r.dir.display()
        )
    };
    if *champion == r.version {
        eprintln!("{what}; it is the champion of {}", out_dir.display());
    } else {
        eprintln!(
            "{what}; the champion of {} stays {champion} (`churn-train models promote {} {}` serves the new one)",
            out_dir.display(),
            opts.name,
            r.version
        );
    }
    Ok(())
}

impl TrainArgs {
    /// Flags override the config file's values; the result is validated.
    pub fn apply(&self, cfg: &mut Config) -> Result<(), anyhow::Error> {
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
        if let Some(c) = &self.tenure_column {
            seg.tenure_column = Some(c.clone());
        }
        if let Some(d) = self.tenure_unit_days {
            if !(d.is_finite() && d > 0.0) {
                return Err(cli::CliError::Usage(format!(
                    "--tenure-unit-days expects a positive number of days (30.44 for months, 365.25 for years), got {d}"
                )));
            }
            seg.lifecycle.tenure_unit_days = d;
        }
        if let Some(c) = &self.revenue_column {
            seg.revenue_column = Some(c.clone());
        }
        Ok(())
    }

    /// The playbook of `--playbook`, else the config's, read (with its path for messages).
    pub fn playbook_file(
        &self,
        cfg: &Config,
    ) -> anyhow::Result<Option<(churn::playbook::PlaybookFile, String)>> {
        match self.playbook.clone().or(cfg.playbook.clone()) {
            Some(p) => Ok(Some((churn::playbook::read(&p)?, p.display().to_string()))),
            None => Ok(None),
        }
    }

    /// Model name (flag, config, output directory's name, else `model`) and output directory
    /// (default `models/NAME`); the name must not hold control characters.
    pub fn name_and_dir(&self, cfg: &Config) -> Result<(String, PathBuf), cli::CliError> {
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
        // the name is printed into reports and the exported SQL's comment, where a CR or LF
        // would end the comment and let the rest run as SQL
        if let Some(c) = name.chars().find(|&c| churn::export::is_line_unsafe(c)) {
            return Err(cli::CliError::Usage(format!(
                "--name: expected a model name without control characters (CR, LF, tab, …); \
                 found {c:?} in {name:?} (from --name, the config's name or the output directory)"
            )));
        }
        Ok((name, out_dir))
    }
}
