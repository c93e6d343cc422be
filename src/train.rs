//! The training pipeline: customer data → encoder → CV grid search → calibrated tree →
//! holdout evaluation → bundle + model card + data-quality report.

mod card;
mod holdout;
mod steps;

use crate::bundle::card::{ModelCard, Timings};
use crate::bundle::registry::{Author, ModelDir, Registered, RegistryError};
use crate::bundle::{self, Bundle, BundleError};
use crate::config::ModelConfig;
use crate::features::EncodeError;
use crate::ingest::CustomerData;
use crate::model::bins::{Binned, MAX_BINS};
use crate::model::boost;
use crate::model::tree::Prepared;
use crate::model::tree::{Tree, LEAF};
use crate::model::{score_bins, Boosted, Economics, Model, ModelChoice, ModelError, ModelKind};
use crate::util;
use card::{importances, model_card, Findings};
use serde::Serialize;
use std::path::{Path, PathBuf};
use steps::{
    boost_search, build_bundle, calibrate_oof, calibrate_probs, choose_model, compile_playbook,
    encode, evaluate_holdout, fit_segments, playbook_values, search, shap_importances,
    thread_count, Split, Stopwatch, TrainSet,
};

/// Errors of the training pipeline.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    /// Model layer.
    #[error(transparent)]
    Model(#[from] ModelError),
    /// Encoding.
    #[error(transparent)]
    Encode(#[from] EncodeError),
    /// Bundle writing.
    #[error(transparent)]
    Bundle(#[from] BundleError),
    /// Settings.
    #[error("invalid setting: {0}")]
    Config(String),
    /// Segmentation.
    #[error(transparent)]
    Segment(#[from] crate::segment::SegmentError),
    /// Playbook.
    #[error(transparent)]
    Playbook(#[from] crate::playbook::PlaybookError),
    /// Registering the new version.
    #[error(transparent)]
    Registry(#[from] RegistryError),
    /// Writing the card.
    #[error("{path}: {source}")]
    Write {
        /// File.
        path: PathBuf,
        /// OS error.
        source: std::io::Error,
    },
}

impl TrainError {
    /// Process exit code: 1 when fitting or writing failed, 2 for bad settings or data.
    pub fn exit_code(&self) -> i32 {
        match self {
            TrainError::Model(e) => e.exit_code(),
            TrainError::Segment(e) => e.exit_code(),
            TrainError::Write { .. }
            | TrainError::Bundle(BundleError::Io { .. })
            | TrainError::Registry(RegistryError::Io { .. }) => 1,
            _ => 2,
        }
    }
}

/// Everything `train` needs besides the data.
#[derive(Debug, Clone)]
pub struct TrainOptions {
    /// Model name.
    pub name: String,
    /// Output directory.
    pub out_dir: PathBuf,
    /// Seed for the holdout split and the folds.
    pub seed: u64,
    /// Model settings.
    pub model: ModelConfig,
    /// Economics for the threshold.
    pub economics: Option<Economics>,
    /// sha256 of the input file (for the card).
    pub data_sha256: String,
    /// Show progress bars.
    pub progress: bool,
    /// Segment settings.
    pub segments: crate::segment::SegmentConfig,
    /// A previous model directory whose segment ids and names should persist.
    pub previous: Option<PathBuf>,
    /// Retention playbook and where it came from (None: one inferred from the data).
    pub playbook: Option<(crate::playbook::PlaybookFile, String)>,
    /// Who trains, and why (recorded in the registry when the version becomes champion).
    pub author: Author,
}

/// What training produced.
#[derive(Debug, Clone)]
pub struct TrainOutcome {
    /// The card (also written to disk).
    pub card: ModelCard,
    /// The bundle (also written to disk).
    pub bundle: Bundle,
    /// Where it was registered (`out_dir/versions/VERSION`), and whether it is new.
    pub registered: Registered,
}

/// Default search grid for `n` training rows: the configured leaf sizes plus sizes that scale with
/// the data (0.1% and 0.5% of rows) on large inputs.
pub fn leaf_grid(configured: &[usize], n: usize) -> Vec<usize> {
    let mut v = configured.to_vec();
    if n > 40_000 {
        v.push(n / 1000);
        v.push(n / 200);
    }
    v.sort_unstable();
    v.dedup();
    v
}

/// Train a model on `data` and register it as a new version of the model directory
/// `opts.out_dir`: `versions/VERSION/` with `model.bin`, `model_card.json`, `data_quality.json`
/// and `report.html` (see [`crate::bundle::registry`]). The model's first version becomes its
/// champion; later ones wait to be promoted.
///
/// Takes the data by value: the input columns are freed once encoded, which keeps the peak memory
/// of a large training run near the encoded matrix.
// the pipeline's steps in order, each one call into `steps`; cut in two, a dozen locals (split,
// encoding, bins, timings) would travel between the halves
#[allow(clippy::too_many_lines)]
pub fn train(mut data: CustomerData, opts: &TrainOptions) -> Result<TrainOutcome, TrainError> {
    let cfg = &opts.model;
    let learner = cfg.learner.learner();
    let threads = thread_count(cfg.threads);
    let split = Split::new(&data.label, cfg, opts.seed)?;
    let mut clock = Stopwatch::start();
    let mut timings = Timings::default();
    // without a playbook, one is inferred from the data (before encoding frees the columns)
    let inferred = opts
        .playbook
        .is_none()
        .then(|| crate::init::infer_playbook(&data, &split.train_rows, cfg.min_count, &opts.name));
    let enc = encode(&mut data, &split, cfg, opts.seed)?;
    // the playbook is checked before the search, so a mistake in it costs seconds, not a run
    let playbook = compile_playbook(opts, inferred.as_ref(), &enc.encoder)?;
    timings.encode_s = clock.lap();
    let set = TrainSet {
        y: &data.label,
        w: &enc.w,
        rows: &split.train_rows,
        folds: &enc.folds,
        k: cfg.folds,
        threads,
    };
    let prep = Prepared::new(learner, &enc.x, set.rows, threads)?;
    // boosted trees are fitted when asked for, or under `auto` to compare with the tree's
    // search; `--no-search` under `auto` compares nothing, so it keeps the single tree it
    // configures and fits no boosted trees (their cross-validation was most of such a run)
    let boosting = match cfg.model {
        ModelChoice::Boosted => true,
        ModelChoice::Auto => cfg.search,
        ModelChoice::Tree => false,
    };
    // boosting reuses the histogram learner's bins; other learners bin for it here
    let own_bins = match prep.binned() {
        None if boosting => Some(Binned::new(&enc.x, set.rows, MAX_BINS, threads)?),
        _ => None,
    };
    timings.prepare_s = clock.lap();
    // a boosted-only run needs no tree search
    let tree_cfg = crate::config::ModelConfig {
        search: cfg.search && cfg.model != ModelChoice::Boosted,
        ..cfg.clone()
    };
    let (cv_table, params) = search(&prep, &set, &tree_cfg, opts.progress)?;
    let boost_cv = match own_bins.as_ref().or(prep.binned()) {
        Some(b) if boosting => Some(boost_search(
            b,
            &enc.x,
            &set,
            cfg,
            opts.seed,
            opts.progress,
        )?),
        _ => None,
    };
    timings.search_s = clock.lap();
    let mut choice = choose_model(cfg.model, &cv_table, boost_cv.as_ref());
    tracing::info!(model = %choice.chosen, reason = %choice.reason, "model chosen");
    // the playbook's value expression also values customers for the profit threshold
    // (a given playbook's; an inferred value must not override the economics given)
    let values = opts
        .economics
        .filter(|_| opts.playbook.is_some())
        .and_then(|_| playbook_values(&playbook, &enc.x, set.rows));
    let (model, cal) = match boost_cv
        .as_ref()
        .filter(|_| choice.chosen == ModelKind::Boosted)
    {
        Some(bcv) => {
            let cal = calibrate_probs(&bcv.oof, &set, &split.ty, opts, values.as_deref());
            timings.calibration_s = clock.lap();
            let binned = own_bins.as_ref().or(prep.binned()).expect("binned above");
            let fit = BoostedFit {
                cv: bcv,
                binned,
                x: &enc.x,
                set: &set,
                majority: split.tpos * 2 > split.ty.len(),
                criterion: params.criterion,
            };
            let boosted = fit.run(&mut clock, &mut timings)?;
            choice.boosted = Some(boosted.ensemble.params);
            let model = Model::boosted(
                boosted,
                params,
                cal.calibrator.clone(),
                cal.threshold.threshold,
            );
            (model, cal)
        }
        None => {
            tracing::info!(
                max_depth = params.max_depth,
                min_samples_leaf = params.min_samples_leaf,
                "hyper-parameters chosen"
            );
            let cal = calibrate_oof(&prep, &set, &split.ty, &params, opts, values.as_deref())?;
            timings.calibration_s = clock.lap();
            let tree = prep.fit(set.y, set.w, set.rows, &params, threads)?;
            timings.fit_s = clock.lap();
            let model = Model::tree(
                tree,
                params,
                cal.calibrator.clone(),
                cal.threshold.threshold,
            );
            (model, cal)
        }
    };
    drop(prep);
    drop(own_bins);

    let (holdout, holdout_auc_uncalibrated, holdout_p) =
        evaluate_holdout(&model, &enc.x, set.y, &split.test_rows, threads);
    timings.evaluation_s = clock.lap();
    let (importance, importance_encoded) = importances(&enc.encoder, model.importances());
    let (segments, segment_report) = fit_segments(opts, &enc, &split, set.y, data.quality.mode)?;
    timings.segments_s = clock.lap();
    let mut bundle = build_bundle(&data, opts, &split, enc.encoder, model, segments, playbook)?;
    bundle.profile = Some(steps::profile(&bundle, &enc.x, &split.train_rows, set.y));
    let mut holdout_details = holdout::holdout_details(
        &bundle,
        &enc.x,
        &data,
        &split,
        &holdout_p,
        opts.economics.as_ref(),
        threads,
    );
    if let (Some(i), Some(mix)) = (
        &inferred,
        holdout_details.as_mut().and_then(|d| d.playbook.as_mut()),
    ) {
        mix.inferred = i.decisions.iter().map(ToString::to_string).collect();
    }
    let shap_summary = card::shap_summary(&bundle, &enc.x, &split.train_rows, &importance);
    timings.report_s = clock.lap();
    let findings = Findings {
        model_choice: choice,
        cv_table,
        calibration: cal.choice,
        threshold: cal.threshold,
        holdout,
        holdout_auc_uncalibrated,
        holdout_details,
        importance,
        importance_encoded,
        shap_summary,
        segments: segment_report,
        timings,
    };
    // the card and quality report go first and model.bin last: a server reloading mid-way sees
    // the old bundle (whose card no longer matches, so it keeps its own) or the new one with its
    // card, never a new model with an old card
    let bytes = bundle::to_bytes(&bundle)?;
    let version = bundle::version_of(&bytes);
    let mut card = model_card(
        &data,
        opts,
        learner.name(),
        &split,
        &bundle,
        version,
        findings,
    );
    let html = crate::report::render(&card, &bundle);
    card.timings.report_s += clock.lap();
    card.timings.total_s = clock.total();
    // a new version is written whole into a staging directory, then registered with one rename:
    // nothing that serves, or was trained before, is ever overwritten
    let registry = ModelDir::new(&opts.out_dir);
    let staging = registry.stage()?;
    let written = (|| {
        write_json(&staging.join(bundle::CARD_FILE), &card)?;
        write_json(&staging.join(bundle::QUALITY_FILE), &data.quality)?;
        let report = staging.join(crate::report::REPORT_FILE);
        util::write_atomic(&report, html.as_bytes()).map_err(|source| TrainError::Write {
            path: report,
            source,
        })?;
        Ok::<_, TrainError>(bundle::write(&staging, &bytes)?)
    })();
    if let Err(e) = written {
        let _ = std::fs::remove_dir_all(&staging);
        return Err(e);
    }
    let registered = registry.register(&staging, &card.version, &opts.author)?;
    Ok(TrainOutcome {
        card,
        bundle,
        registered,
    })
}

/// The final boosted fit of a run: the candidate cross-validation chose, on the run's bins.
struct BoostedFit<'a> {
    /// The boosted cross-validation (best parameters, out-of-fold probabilities).
    cv: &'a boost::BoostCv,
    /// The training matrix's bins.
    binned: &'a Binned,
    /// The encoded matrix.
    x: &'a crate::features::Matrix,
    /// Training rows, labels, weights and threads.
    set: &'a TrainSet<'a>,
    /// Most training rows churned (the class of the base node).
    majority: bool,
    /// Split criterion (counts the base node like a single tree's root).
    criterion: crate::model::tree::Criterion,
}

impl BoostedFit<'_> {
    /// Fit the trees on every training row, count the base rate, compute the importances and
    /// the calibration bins of the intervals; the fit and explain times go to `timings`.
    fn run(&self, clock: &mut Stopwatch, timings: &mut Timings) -> Result<Boosted, TrainError> {
        let set = self.set;
        let (ensemble, _) = boost::fit(
            self.binned,
            set.y,
            set.w,
            set.rows,
            &[],
            &self.cv.best,
            set.threads,
        )?;
        // the training rows' base rate, exactly as the root of a single tree counts it
        let root = vec![(0, 0.0, LEAF, LEAF, self.majority)];
        let root = Tree::compile(
            root,
            "gbdt",
            self.x,
            set.y,
            set.w,
            set.rows,
            self.criterion,
            1.0,
        )?;
        timings.fit_s = clock.lap();
        let importances = shap_importances(&ensemble, self.x, set.rows, set.threads);
        timings.explain_s = clock.lap();
        Ok(Boosted {
            ensemble,
            // rows never held out (NaN) are skipped by the binning itself
            bins: score_bins(&self.cv.oof, set.y),
            base: root.nodes.into_iter().next().expect("a root"),
            importances,
        })
    }
}

/// Write pretty JSON atomically.
pub fn write_json<T: Serialize>(path: &Path, value: &T) -> Result<(), TrainError> {
    let mut text = serde_json::to_string_pretty(value).map_err(|e| TrainError::Write {
        path: path.to_path_buf(),
        source: std::io::Error::other(e),
    })?;
    text.push('\n');
    util::write_atomic(path, text.as_bytes()).map_err(|source| TrainError::Write {
        path: path.to_path_buf(),
        source,
    })
}
