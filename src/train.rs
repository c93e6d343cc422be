//! The training pipeline: customer data → encoder → CV grid search → calibrated tree →
//! holdout evaluation → bundle + model card + data-quality report.

use crate::bundle::{self, Bundle, BundleError};
use crate::config::ModelConfig;
use crate::features::{EncodeError, Encoder};
use crate::ingest::{CustomerData, QualityReport};
use crate::model::calibrate::{self, CalibrationChoice};
use crate::model::metrics::{self, Evaluation};
use crate::model::tree::{learner_by_name, Prepared, TreeParams};
use crate::model::{
    choose_threshold, grid_search, out_of_fold, sample_weights, CvRow, Economics, Model,
    ModelError, SearchSpace, ThresholdChoice,
};
use crate::util;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

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
    /// Writing the card.
    #[error("{path}: {source}")]
    Write {
        /// File.
        path: PathBuf,
        /// OS error.
        source: std::io::Error,
    },
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
    /// Retention playbook and where it came from (None: the built-in default).
    pub playbook: Option<(crate::playbook::PlaybookFile, String)>,
}

/// Importance of one input column (sum over its encoded columns).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Importance {
    /// Input field or encoded column.
    pub name: String,
    /// Share of the total weighted impurity decrease.
    pub importance: f64,
}

/// Feature description in the card.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FeatureInfo {
    /// Input name.
    pub name: String,
    /// Type and encoding.
    #[serde(flatten)]
    pub spec: crate::features::InputSpec,
}

/// The model card (`model_card.json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelCard {
    /// Model name.
    pub name: String,
    /// Content version of `model.bin`.
    pub version: String,
    /// When it was trained (UTC, RFC 3339).
    pub created_at: String,
    /// Software version.
    pub software_version: String,
    /// Input file.
    pub data_source: String,
    /// sha256 of the input file.
    pub data_sha256: String,
    /// `customer_table` or `transactions`.
    pub mode: String,
    /// Rows used for training (excluding the holdout).
    pub training_rows: usize,
    /// Holdout rows.
    pub holdout_rows: usize,
    /// Churn rate over all rows.
    pub label_rate: f64,
    /// Label column and positive value.
    pub label: String,
    /// Id column.
    pub id_column: Option<String>,
    /// Inputs and their encodings.
    pub features: Vec<crate::features::InputSpec>,
    /// Encoded column names.
    pub encoded_columns: Vec<String>,
    /// Learner used.
    pub learner: String,
    /// Seed.
    pub seed: u64,
    /// Final hyper-parameters.
    pub hyper_parameters: TreeParams,
    /// Class weighting.
    pub class_weight: crate::model::ClassWeight,
    /// Tree size.
    pub tree: TreeSummary,
    /// Cross-validation table (empty with `search = false`).
    pub cv_table: Vec<CvRow>,
    /// Calibration choice.
    pub calibration: CalibrationChoice,
    /// Threshold choice.
    pub threshold: ThresholdChoice,
    /// Economics used, if any.
    pub economics: Option<Economics>,
    /// Holdout metrics of the shipped model (absent with holdout = 0).
    pub holdout: Option<Evaluation>,
    /// Holdout ROC-AUC of the uncalibrated leaf probabilities.
    pub holdout_auc_uncalibrated: Option<f64>,
    /// Importance per input field.
    pub importance: Vec<Importance>,
    /// Importance per encoded column.
    pub importance_encoded: Vec<Importance>,
    /// Segments, RFM classes and lifecycle stages.
    pub segments: Option<crate::segment::SegmentReport>,
    /// Data-quality report.
    pub data_quality: QualityReport,
    /// Wall-clock seconds per training stage (not part of the bundle, so retrains stay
    /// byte-identical).
    pub timings: Timings,
}

/// Wall-clock seconds of the training stages.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Timings {
    /// Fitting the encoder and encoding the matrix.
    pub encode_s: f64,
    /// Learner preparation (binning for `hist`).
    pub prepare_s: f64,
    /// Cross-validated grid search (0 with `--no-search`).
    pub search_s: f64,
    /// Out-of-fold fits, calibration and threshold.
    pub calibration_s: f64,
    /// The single final fit on all training rows.
    pub fit_s: f64,
    /// Holdout evaluation.
    pub evaluation_s: f64,
    /// Segments (k-means).
    pub segments_s: f64,
    /// Everything in `train` (excluding reading the input).
    pub total_s: f64,
}

/// Size of the tree.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TreeSummary {
    /// Nodes.
    pub nodes: usize,
    /// Leaves.
    pub leaves: usize,
    /// Depth.
    pub depth: usize,
}

/// What training produced.
#[derive(Debug, Clone)]
pub struct TrainOutcome {
    /// The card (also written to disk).
    pub card: ModelCard,
    /// The bundle (also written to disk).
    pub bundle: Bundle,
}

fn progress_bar(total: usize, show: bool, msg: &str) -> indicatif::ProgressBar {
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

/// Train a model on `data` and write `model.bin`, `model_card.json` and `data_quality.json` into
/// `opts.out_dir`.
///
/// Takes the data by value: the input columns are freed once encoded, which keeps the peak memory
/// of a large training run near the encoded matrix.
pub fn train(mut data: CustomerData, opts: &TrainOptions) -> Result<TrainOutcome, TrainError> {
    let cfg = &opts.model;
    let learner = learner_by_name(&cfg.learner)?;
    let threads = if cfg.threads == 0 {
        std::thread::available_parallelism().map_or(1, |n| n.get())
    } else {
        cfg.threads
    };
    let y = &data.label;
    let n = y.len();
    let (train_rows, test_rows) = if cfg.holdout > 0.0 {
        util::stratified_split(y, cfg.holdout, opts.seed)
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

    let started = std::time::Instant::now();
    let mut timings = Timings::default();
    let mut lap = started;
    let mut mark = |slot: &mut f64| {
        let now = std::time::Instant::now();
        *slot = (now - lap).as_secs_f64();
        lap = now;
    };
    let encoder = Encoder::fit(&data, &train_rows, cfg.min_count);
    let all: Vec<usize> = (0..n).collect();
    let x = encoder.transform(&data, &all)?;
    drop(all);
    // everything below works on the matrix
    data.features = Vec::new();
    data.ids = None;
    let w = sample_weights(y, &train_rows, cfg.class_weight);
    let mut folds = vec![usize::MAX; n];
    for (i, f) in util::stratified_folds(&ty, k, opts.seed)
        .into_iter()
        .enumerate()
    {
        folds[train_rows[i]] = f;
    }
    mark(&mut timings.encode_s);
    let prep = Prepared::new(learner, &x, &train_rows, threads)?;
    mark(&mut timings.prepare_s);
    let base = TreeParams {
        criterion: cfg.criterion,
        max_depth: cfg.max_depth[0],
        min_samples_leaf: cfg.min_samples_leaf[0],
        min_samples_split: cfg.min_samples_split.max(2),
        ..TreeParams::default()
    };
    let (cv_table, params) = if cfg.search {
        let space = SearchSpace {
            max_depth: cfg.max_depth.clone(),
            min_samples_leaf: leaf_grid(&cfg.min_samples_leaf, train_rows.len()),
        };
        let tasks = if learner.nests_by_depth() {
            space.min_samples_leaf.len() * k
        } else {
            space.min_samples_leaf.len() * space.max_depth.len() * k
        };
        let pb = progress_bar(tasks, opts.progress, "grid search");
        let tick = || pb.inc(1);
        let r = grid_search(
            &prep,
            y,
            &w,
            &train_rows,
            &folds,
            k,
            &base,
            &space,
            threads,
            &tick,
        )?;
        pb.finish_and_clear();
        r
    } else {
        (Vec::new(), base)
    };
    mark(&mut timings.search_s);
    tracing::info!(
        max_depth = params.max_depth,
        min_samples_leaf = params.min_samples_leaf,
        "hyper-parameters chosen"
    );

    // Calibration and threshold from out-of-fold predictions on the training rows.
    let oof = out_of_fold(&prep, y, &w, &train_rows, &folds, k, &params, threads)?;
    let oof_p: Vec<f64> = train_rows.iter().map(|&r| oof[r]).collect();
    let cal_folds = util::stratified_folds(&ty, k, opts.seed.wrapping_add(1));
    let (calibrator, cal_choice) = calibrate::choose(&oof_p, &ty, &cal_folds, k);
    let oof_cal: Vec<f64> = oof_p.iter().map(|&p| calibrator.apply(p)).collect();
    let threshold = choose_threshold(&oof_cal, &ty, opts.economics.as_ref());

    mark(&mut timings.calibration_s);
    let tree = prep.fit(y, &w, &train_rows, &params, threads)?;
    drop(prep);
    mark(&mut timings.fit_s);
    let model = Model::new(tree, params, calibrator, threshold.threshold);

    let (holdout, auc_raw) = if test_rows.is_empty() {
        (None, None)
    } else {
        let hy: Vec<bool> = test_rows.iter().map(|&r| y[r]).collect();
        let leaves: Vec<usize> = test_rows
            .iter()
            .map(|&r| model.tree.leaf_of_matrix(&x, r))
            .collect();
        let p: Vec<f64> = leaves.iter().map(|&l| model.scores[l].p).collect();
        let raw: Vec<f64> = leaves.iter().map(|&l| model.tree.nodes[l].value).collect();
        (
            Some(Evaluation::compute(&p, &hy, model.threshold)),
            Some(metrics::roc_auc(&raw, &hy)),
        )
    };

    mark(&mut timings.evaluation_s);
    // importances per encoded column and per input
    let imp = &model.tree.importances;
    let mut per_input = vec![0.0; encoder.inputs.len()];
    for (c, col) in encoder.columns.iter().enumerate() {
        per_input[col.input] += imp[c];
    }
    let mut importance: Vec<Importance> = encoder
        .inputs
        .iter()
        .zip(&per_input)
        .map(|(i, &v)| Importance {
            name: i.name.clone(),
            importance: v,
        })
        .collect();
    importance.sort_by(|a, b| {
        b.importance
            .total_cmp(&a.importance)
            .then(a.name.cmp(&b.name))
    });
    let mut importance_encoded: Vec<Importance> = encoder
        .columns
        .iter()
        .zip(imp)
        .filter(|(_, &v)| v > 0.0)
        .map(|(c, &v)| Importance {
            name: c.name.clone(),
            importance: v,
        })
        .collect();
    importance_encoded.sort_by(|a, b| {
        b.importance
            .total_cmp(&a.importance)
            .then(a.name.cmp(&b.name))
    });

    let (segments, segment_report) = if opts.segments.enabled {
        let previous = match &opts.previous {
            Some(dir) => bundle::load(dir)?.bundle.segments,
            None => None,
        };
        let (m, r) = crate::segment::fit(
            &opts.segments,
            &crate::segment::FitInput {
                encoder: &encoder,
                x: &x,
                rows: &train_rows,
                y,
                mode: &data.quality.mode,
                previous: previous.as_ref(),
                seed: opts.seed,
            },
        )?;
        (Some(m), Some(r))
    } else {
        (None, None)
    };
    mark(&mut timings.segments_s);
    timings.total_s = started.elapsed().as_secs_f64();
    let (pb_file, pb_source) = match &opts.playbook {
        Some((f, s)) => (f.clone(), s.clone()),
        None => (
            crate::playbook::parse(crate::playbook::DEFAULT_PLAYBOOK, "built-in playbook")?,
            "built-in playbook".to_string(),
        ),
    };
    let playbook = crate::playbook::Playbook::compile(pb_file, &encoder, &pb_source)?;
    let label_rate = y.iter().filter(|&&b| b).count() as f64 / n as f64;
    let tree_summary = TreeSummary {
        nodes: model.tree.nodes.len(),
        leaves: model.tree.n_leaves(),
        depth: model.tree.depth(),
    };
    let bundle = Bundle {
        name: opts.name.clone(),
        software_version: env!("CARGO_PKG_VERSION").to_string(),
        mode: data.quality.mode.clone(),
        id_column: data.id_column.clone(),
        label_column: data.label_column.clone(),
        positive_value: data.positive_value.clone(),
        encoder: encoder.clone(),
        model,
        training_rows: train_rows.len(),
        training_churn_rate: tpos as f64 / ty.len() as f64,
        segments,
        playbook: Some(playbook),
    };
    let version = bundle::save(&opts.out_dir, &bundle)?;
    let card = ModelCard {
        name: opts.name.clone(),
        version,
        created_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        software_version: env!("CARGO_PKG_VERSION").to_string(),
        data_source: data.source.display().to_string(),
        data_sha256: opts.data_sha256.clone(),
        mode: data.quality.mode.clone(),
        training_rows: train_rows.len(),
        holdout_rows: test_rows.len(),
        label_rate,
        label: format!("{} = {}", data.label_column, data.positive_value),
        id_column: data.id_column.clone(),
        features: encoder.inputs.clone(),
        encoded_columns: encoder.columns.iter().map(|c| c.name.clone()).collect(),
        learner: learner.name().to_string(),
        seed: opts.seed,
        hyper_parameters: params,
        class_weight: cfg.class_weight,
        tree: tree_summary,
        cv_table,
        calibration: cal_choice,
        threshold,
        economics: opts.economics,
        holdout,
        holdout_auc_uncalibrated: auc_raw,
        importance,
        importance_encoded,
        segments: segment_report,
        data_quality: data.quality.clone(),
        timings,
    };
    write_json(&opts.out_dir.join(bundle::CARD_FILE), &card)?;
    write_json(&opts.out_dir.join(bundle::QUALITY_FILE), &data.quality)?;
    Ok(TrainOutcome { card, bundle })
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

/// A short human-readable summary of a card.
pub fn summary(card: &ModelCard) -> String {
    let mut s = format!(
        "model '{}' version {} — {} learner, depth {}, min leaf {}, {} leaves, calibration {}, threshold {:.3} ({})\n",
        card.name,
        card.version,
        card.learner,
        card.hyper_parameters.max_depth,
        card.hyper_parameters.min_samples_leaf,
        card.tree.leaves,
        card.calibration.method,
        card.threshold.threshold,
        card.threshold.objective
    );
    if let Some(h) = &card.holdout {
        s.push_str(&format!(
            "holdout ({} rows): ROC-AUC {:.4}  PR-AUC {:.4}  log loss {:.4}  Brier {:.4}  ECE {:.4}  F1 {:.3}  top-decile lift {:.2}  caught top 10%/20%: {:.1}%/{:.1}%\n",
            h.rows,
            h.roc_auc,
            h.pr_auc,
            h.log_loss,
            h.brier,
            h.ece,
            h.f1,
            h.top_decile_lift,
            100.0 * h.capture_top_10pct,
            100.0 * h.capture_top_20pct
        ));
    }
    if let Some(sr) = &card.segments {
        s.push_str(&format!("segments (k = {}):\n", sr.k));
        for p in &sr.segments {
            s.push_str(&format!(
                "  {:>2} {:<44} {:>6.1}% of customers, churn {:>5.1}%{}\n",
                p.id,
                p.name,
                100.0 * p.share,
                100.0 * p.churn_rate,
                p.revenue_share
                    .map_or(String::new(), |r| format!(", revenue {:.1}%", 100.0 * r))
            ));
        }
    }
    let top: Vec<String> = card
        .importance
        .iter()
        .take(5)
        .filter(|i| i.importance > 0.0)
        .map(|i| format!("{} {:.2}", i.name, i.importance))
        .collect();
    s.push_str(&format!("top features: {}\n", top.join(", ")));
    s
}
