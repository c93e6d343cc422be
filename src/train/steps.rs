//! The named stages of [`super::train`]: each takes what earlier stages produced.

use super::{leaf_grid, TrainError, TrainOptions};
use crate::bundle::{self, Bundle};
use crate::config::ModelConfig;
use crate::features::{Encoder, Matrix};
use crate::ingest::CustomerData;
use crate::model::calibrate::{self, CalibrationChoice, Calibrator};
use crate::model::metrics::{self, Evaluation};
use crate::model::tree::{Prepared, TreeParams};
use crate::model::{
    choose_threshold, grid_search, out_of_fold, sample_weights, CvRow, Model, ModelError,
    SearchSpace, ThresholdChoice,
};
use crate::segment::{SegmentModel, SegmentReport};
use crate::util;

pub(super) fn progress_bar(total: usize, show: bool, msg: &str) -> indicatif::ProgressBar {
    if !show {
        return indicatif::ProgressBar::hidden();
    }
    let pb = indicatif::ProgressBar::new(total as u64);
    pb.set_style(
        indicatif::ProgressStyle::with_template("{msg:>14} [{bar:30}] {pos}/{len} {elapsed}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    pb.set_message(msg.to_string());
    pb
}

/// Worker threads: the configured count, or every available core for 0.
pub(super) fn thread_count(configured: usize) -> usize {
    if configured == 0 {
        std::thread::available_parallelism().map_or(1, |n| n.get())
    } else {
        configured
    }
}

/// Wall-clock laps between training stages (for [`Timings`]).
pub(super) struct Stopwatch {
    /// When training started.
    pub(super) started: std::time::Instant,
    /// End of the previous lap.
    pub(super) lap: std::time::Instant,
}

impl Stopwatch {
    /// Start the clock and the first lap.
    pub(super) fn start() -> Stopwatch {
        let started = std::time::Instant::now();
        Stopwatch {
            started,
            lap: started,
        }
    }

    /// Seconds since the previous lap; starts the next one.
    pub(super) fn lap(&mut self) -> f64 {
        let now = std::time::Instant::now();
        let s = (now - self.lap).as_secs_f64();
        self.lap = now;
        s
    }

    /// Seconds since the start.
    pub(super) fn total(&self) -> f64 {
        self.started.elapsed().as_secs_f64()
    }
}

/// The holdout split: training rows, holdout rows and the training labels.
pub(super) struct Split {
    /// Rows the model is trained on.
    pub(super) train_rows: Vec<usize>,
    /// Holdout rows (empty with holdout = 0).
    pub(super) test_rows: Vec<usize>,
    /// Labels of `train_rows`, in that order.
    pub(super) ty: Vec<bool>,
    /// Churned training rows.
    pub(super) tpos: usize,
}

impl Split {
    /// Stratified holdout split of `y`; fails when a class has fewer training rows than folds.
    pub(super) fn new(y: &[bool], cfg: &ModelConfig, seed: u64) -> Result<Split, TrainError> {
        let n = y.len();
        let (train_rows, test_rows) = if cfg.holdout > 0.0 {
            util::stratified_split(y, cfg.holdout, seed)
        } else {
            ((0..n).collect(), Vec::new())
        };
        let ty: Vec<bool> = train_rows.iter().map(|&r| y[r]).collect();
        let tpos = ty.iter().filter(|&&b| b).count();
        let k = cfg.folds;
        if tpos < k || ty.len() - tpos < k {
            return Err(ModelError::Data(format!(
                "{} training rows with {} churned: each class needs at least {} rows for {}-fold cross-validation",
                ty.len(),
                tpos,
                k,
                k
            ))
            .into());
        }
        tracing::info!(
            rows = n,
            train = train_rows.len(),
            holdout = test_rows.len(),
            "training"
        );
        Ok(Split {
            train_rows,
            test_rows,
            ty,
            tpos,
        })
    }
}

/// The encoded training data.
pub(super) struct Encoded {
    /// Encoder fitted on the training rows.
    pub(super) encoder: Encoder,
    /// Every row encoded (training and holdout).
    pub(super) x: Matrix,
    /// Sample weights (class weighting on the training rows).
    pub(super) w: Vec<f64>,
    /// Cross-validation fold per row (`usize::MAX` for holdout rows).
    pub(super) folds: Vec<usize>,
}

/// Fit the encoder, encode every row, free the input columns, and assign weights and folds.
pub(super) fn encode(
    data: &mut CustomerData,
    split: &Split,
    cfg: &ModelConfig,
    seed: u64,
) -> Result<Encoded, TrainError> {
    let n = data.label.len();
    let encoder = Encoder::fit(data, &split.train_rows, cfg.min_count);
    let all: Vec<usize> = (0..n).collect();
    let x = encoder.transform(data, &all)?;
    drop(all);
    // everything below works on the matrix
    data.features = Vec::new();
    data.ids = None;
    let w = sample_weights(&data.label, &split.train_rows, cfg.class_weight);
    let mut folds = vec![usize::MAX; n];
    for (i, f) in util::stratified_folds(&split.ty, cfg.folds, seed)
        .into_iter()
        .enumerate()
    {
        folds[split.train_rows[i]] = f;
    }
    Ok(Encoded {
        encoder,
        x,
        w,
        folds,
    })
}

/// The training rows with everything a fit on them needs.
pub(super) struct TrainSet<'a> {
    /// Labels of all rows.
    pub(super) y: &'a [bool],
    /// Sample weights of all rows.
    pub(super) w: &'a [f64],
    /// Training rows.
    pub(super) rows: &'a [usize],
    /// Fold per row.
    pub(super) folds: &'a [usize],
    /// Number of folds.
    pub(super) k: usize,
    /// Worker threads.
    pub(super) threads: usize,
}

/// Hyper-parameters: the cross-validated grid search (with a progress bar), or the first
/// configured values when the search is off.
pub(super) fn search(
    prep: &Prepared,
    set: &TrainSet,
    cfg: &ModelConfig,
    progress: bool,
) -> Result<(Vec<CvRow>, TreeParams), TrainError> {
    let base = TreeParams {
        criterion: cfg.criterion,
        max_depth: cfg.max_depth[0],
        min_samples_leaf: cfg.min_samples_leaf[0],
        min_samples_split: cfg.min_samples_split.max(2),
        ..TreeParams::default()
    };
    if !cfg.search {
        return Ok((Vec::new(), base));
    }
    let space = SearchSpace {
        max_depth: cfg.max_depth.clone(),
        min_samples_leaf: leaf_grid(&cfg.min_samples_leaf, set.rows.len()),
    };
    // under `auto` on large inputs the tree is validated on the boosted search's single fold:
    // both candidates are then judged on the same rows, at a fifth of the cost
    let eval_folds = boost_eval_folds(cfg, set);
    let (k, leaves) = (eval_folds.len(), space.min_samples_leaf.len());
    let tasks = if prep.learner.nests_by_depth() {
        leaves * k
    } else {
        leaves * space.max_depth.len() * k
    };
    let pb = progress_bar(tasks, progress, "grid search");
    let tick = || pb.inc(1);
    let r = grid_search(
        prep,
        set.y,
        set.w,
        set.rows,
        set.folds,
        &eval_folds,
        &base,
        &space,
        set.threads,
        &tick,
    )?;
    pb.finish_and_clear();
    Ok(r)
}

/// Calibration map and decision threshold.
pub(super) struct Calibration {
    /// The map from raw to calibrated probability.
    pub(super) calibrator: Calibrator,
    /// How it was chosen.
    pub(super) choice: CalibrationChoice,
    /// The threshold on calibrated probabilities.
    pub(super) threshold: ThresholdChoice,
}

/// Calibration and threshold from out-of-fold predictions on the training rows.
pub(super) fn calibrate_oof(
    prep: &Prepared,
    set: &TrainSet,
    ty: &[bool],
    params: &TreeParams,
    opts: &TrainOptions,
    values: Option<&[f64]>,
) -> Result<Calibration, TrainError> {
    let oof = out_of_fold(
        prep,
        set.y,
        set.w,
        set.rows,
        set.folds,
        set.k,
        params,
        set.threads,
    )?;
    Ok(calibrate_probs(&oof, set, ty, opts, values))
}

/// Calibration and threshold from out-of-fold uncalibrated probabilities `oof` (indexed by
/// row; training rows without one, NaN, are left out).
pub(super) fn calibrate_probs(
    oof: &[f64],
    set: &TrainSet,
    ty: &[bool],
    opts: &TrainOptions,
    values: Option<&[f64]>,
) -> Calibration {
    let k = set.k;
    let keep: Vec<usize> = (0..set.rows.len())
        .filter(|&i| oof[set.rows[i]].is_finite())
        .collect();
    let oof_p: Vec<f64> = keep.iter().map(|&i| oof[set.rows[i]]).collect();
    let ky: Vec<bool> = keep.iter().map(|&i| ty[i]).collect();
    let kv: Option<Vec<f64>> = values.map(|v| keep.iter().map(|&i| v[i]).collect());
    let cal_folds = util::stratified_folds(&ky, k, opts.seed.wrapping_add(1));
    let (calibrator, choice) = calibrate::choose(&oof_p, &ky, &cal_folds, k);
    let oof_cal: Vec<f64> = oof_p.iter().map(|&p| calibrator.apply(p)).collect();
    let threshold = choose_threshold(&oof_cal, &ky, opts.economics.as_ref(), kv.as_deref());
    Calibration {
        calibrator,
        choice,
        threshold,
    }
}

/// Training rows above which the boosted search (and, under `auto`, the tree search) holds out
/// one fold instead of all `k`.
const BOOST_SINGLE_FOLD_ROWS: usize = 200_000;

/// The folds the boosted candidates are validated on: fold 0 alone above
/// [`BOOST_SINGLE_FOLD_ROWS`] training rows, unless only the tree is wanted (`--model tree`
/// keeps full cross-validation), else all `k`.
fn boost_eval_folds(cfg: &ModelConfig, set: &TrainSet) -> Vec<usize> {
    if cfg.model != crate::model::ModelChoice::Tree && set.rows.len() > BOOST_SINGLE_FOLD_ROWS {
        vec![0]
    } else {
        (0..set.k).collect()
    }
}

/// The boosted search: every candidate of the configured grid cross-validated with early
/// stopping (one held-out fold on large inputs), with a progress bar. With the search off, the
/// first candidate with the configured rounds (its folds still give the out-of-fold
/// predictions calibration needs).
pub(super) fn boost_search(
    binned: &crate::model::bins::Binned,
    x: &Matrix,
    set: &TrainSet,
    cfg: &ModelConfig,
    seed: u64,
    progress: bool,
) -> Result<crate::model::boost::BoostCv, TrainError> {
    let mut grid = cfg.boost_grid(seed);
    if !cfg.search {
        // no search: the first candidate with exactly the configured rounds
        grid.truncate(1);
        grid[0].early_stopping = 0;
    }
    let eval_folds = boost_eval_folds(cfg, set);
    let pb = progress_bar(grid.len() * eval_folds.len(), progress, "boosting");
    let tick = || pb.inc(1);
    let cv = crate::model::boost::cross_validate(
        binned,
        x,
        set.y,
        set.w,
        set.rows,
        set.folds,
        &eval_folds,
        &grid,
        set.threads,
        &tick,
    )?;
    pb.finish_and_clear();
    Ok(cv)
}

/// Mean |SHAP| per encoded column of a boosted model over (at most 10,000 of) `rows`,
/// normalised to sum 1. Rows are split into a fixed number of chunks added up in order, so the
/// result does not depend on the thread count.
pub(super) fn shap_importances(
    e: &crate::model::boost::Ensemble,
    x: &Matrix,
    rows: &[usize],
    threads: usize,
) -> Vec<f64> {
    let step = rows.len().div_ceil(10_000).max(1);
    let sample: Vec<usize> = rows.iter().step_by(step).copied().collect();
    let tables = crate::model::shap::ShapTables::new(e);
    let parts = crate::model::parallel_chunks(sample.len(), threads, |range| {
        let mut imp = vec![0.0; x.ncols];
        for &r in &sample[range] {
            let phi = tables.shap_values(e, &x.row(r), x.ncols);
            for (a, v) in imp.iter_mut().zip(phi) {
                *a += v.abs();
            }
        }
        imp
    });
    let mut imp = vec![0.0; x.ncols];
    for part in parts {
        for (a, v) in imp.iter_mut().zip(part) {
            *a += v;
        }
    }
    let s: f64 = imp.iter().sum();
    if s > 0.0 {
        imp.iter_mut().for_each(|v| *v /= s);
    }
    imp
}

/// Holdout metrics of the shipped model, ROC-AUC of its uncalibrated leaf probabilities (both
/// `None` without holdout rows) and the holdout probabilities in `test_rows` order.
pub(super) fn evaluate_holdout(
    model: &Model,
    x: &Matrix,
    y: &[bool],
    test_rows: &[usize],
    threads: usize,
) -> (Option<Evaluation>, Option<f64>, Vec<f64>) {
    if test_rows.is_empty() {
        return (None, None, Vec::new());
    }
    let hy: Vec<bool> = test_rows.iter().map(|&r| y[r]).collect();
    // rows are independent: chunks over the threads, concatenated in order
    let parts = crate::model::parallel_chunks(test_rows.len(), threads, |range| {
        test_rows[range]
            .iter()
            .map(|&r| {
                (
                    model.predict_matrix(x, r).probability,
                    model.raw_matrix(x, r),
                )
            })
            .collect::<Vec<_>>()
    });
    let (p, raw): (Vec<f64>, Vec<f64>) = parts.into_iter().flatten().unzip();
    (
        Some(Evaluation::compute(&p, &hy, model.threshold)),
        Some(metrics::roc_auc(&raw, &hy)),
        p,
    )
}

/// Segments on the training rows (keeping ids and names of `opts.previous`), when enabled.
pub(super) fn fit_segments(
    opts: &TrainOptions,
    enc: &Encoded,
    split: &Split,
    y: &[bool],
    mode: crate::ingest::DataMode,
) -> Result<(Option<SegmentModel>, Option<SegmentReport>), TrainError> {
    if !opts.segments.enabled {
        return Ok((None, None));
    }
    let previous = match &opts.previous {
        Some(dir) => bundle::load(dir)?.bundle.segments,
        None => None,
    };
    let (m, r) = crate::segment::fit(
        &opts.segments,
        &crate::segment::FitInput {
            encoder: &enc.encoder,
            x: &enc.x,
            rows: &split.train_rows,
            y,
            mode,
            previous: previous.as_ref(),
            seed: opts.seed,
        },
    )?;
    Ok((Some(m), Some(r)))
}

/// The configured playbook (else the one inferred from the data) compiled against the encoder.
pub(super) fn compile_playbook(
    opts: &TrainOptions,
    inferred: Option<&crate::init::Inferred>,
    encoder: &Encoder,
) -> Result<crate::playbook::Playbook, TrainError> {
    let (pb_file, pb_source) = match (&opts.playbook, inferred) {
        (Some((f, s)), _) => (f.clone(), s.clone()),
        (None, Some(i)) => (
            i.file.clone(),
            "playbook inferred from the data".to_string(),
        ),
        (None, None) => (
            crate::playbook::parse(crate::playbook::DEFAULT_PLAYBOOK, "built-in playbook")?,
            "built-in playbook".to_string(),
        ),
    };
    Ok(crate::playbook::Playbook::compile(
        pb_file, encoder, &pb_source,
    )?)
}

/// Per training row (in `rows` order), the playbook's customer value when it has a value
/// expression (`None` for a constant value).
pub(super) fn playbook_values(
    playbook: &crate::playbook::Playbook,
    x: &Matrix,
    rows: &[usize],
) -> Option<Vec<f64>> {
    playbook.value_rpn.as_ref()?;
    Some(rows.iter().map(|&r| playbook.value(&x.row(r))).collect())
}

/// Assemble the bundle (with the compiled playbook).
pub(super) fn build_bundle(
    data: &CustomerData,
    opts: &TrainOptions,
    split: &Split,
    encoder: Encoder,
    model: Model,
    segments: Option<SegmentModel>,
    playbook: crate::playbook::Playbook,
) -> Result<Bundle, TrainError> {
    Ok(Bundle {
        name: opts.name.clone(),
        software_version: env!("CARGO_PKG_VERSION").to_string(),
        mode: data.quality.mode,
        id_column: data.id_column.clone(),
        label_column: data.label_column.clone(),
        positive_value: data.positive_value.clone(),
        encoder,
        model,
        training_rows: split.train_rows.len(),
        training_churn_rate: split.tpos as f64 / split.ty.len() as f64,
        segments,
        playbook: Some(playbook),
        transactions: data
            .transactions
            .clone()
            .map(|t| crate::ingest::TransactionSpec {
                path: Default::default(),
                ..t
            }),
        profile: None,
    })
}

/// The training data profile of the bundle (what drift is measured against).
pub(super) fn profile(
    bundle: &Bundle,
    x: &Matrix,
    rows: &[usize],
    y: &[bool],
) -> crate::bundle::profile::Profile {
    let names: Vec<String> = bundle
        .segments
        .as_ref()
        .map(|s| s.segments.iter().map(|g| g.name.clone()).collect())
        .unwrap_or_default();
    crate::bundle::profile::Profile::build(
        &bundle.encoder,
        x,
        rows,
        y,
        &|row| bundle.model.predict(row).probability,
        &|row| bundle.segments.as_ref().map(|s| s.cluster_of(row)),
        &names,
    )
}

/// Tree or boosted: what `requested` asks for, or under `auto` the lower cross-validated log
/// loss (the tree when the boosted search did not run).
pub(super) fn choose_model(
    requested: crate::model::ModelChoice,
    cv_table: &[CvRow],
    boost: Option<&crate::model::boost::BoostCv>,
) -> crate::bundle::card::ModelChoiceReport {
    use crate::model::{ModelChoice, ModelKind};
    let tree_ll = cv_table
        .iter()
        .map(|r| r.log_loss)
        .min_by(|a, b| a.total_cmp(b));
    let boost_ll = boost.map(|b| b.log_loss);
    let (chosen, reason) = match (requested, tree_ll, boost_ll) {
        (ModelChoice::Tree, ..) => (ModelKind::Tree, "asked for (--model tree)".to_string()),
        (ModelChoice::Boosted, ..) => (ModelKind::Boosted, "asked for (--model boosted)".to_string()),
        (ModelChoice::Auto, Some(t), Some(b)) if b < t => (
            ModelKind::Boosted,
            format!("cross-validated log loss {b:.4} beats the single tree's {t:.4}"),
        ),
        (ModelChoice::Auto, Some(t), Some(b)) => (
            ModelKind::Tree,
            format!("cross-validated log loss {t:.4} is no worse than the boosted trees' {b:.4}"),
        ),
        (ModelChoice::Auto, None, Some(_)) => (
            ModelKind::Tree,
            "there is no cross-validated tree score to compare".to_string(),
        ),
        (ModelChoice::Auto, None, None) => (
            ModelKind::Tree,
            "the search is off (--no-search): the configured single tree, no comparison (--model boosted for boosted trees)"
                .to_string(),
        ),
        (ModelChoice::Auto, _, None) => (ModelKind::Tree, "the boosted search did not run".to_string()),
    };
    crate::bundle::card::ModelChoiceReport {
        requested,
        chosen,
        reason,
        tree_cv_log_loss: tree_ll,
        boosted_cv_log_loss: boost_ll,
        boosted_cv_table: boost.map(|b| b.table.clone()).unwrap_or_default(),
        boosted: None,
    }
}
