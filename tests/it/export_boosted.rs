//! Boosted models exported as SQL (issue 35): the default model kind scores in PostgreSQL and
//! DuckDB to the last bit of what `churn-score` writes — probability, interval, support,
//! decision, segment, RFM, lifecycle and risk band — on Telco, Bank, CDNOW, 100k edge-case rows,
//! a 300-round depth-6 model, trees as condition chains, and both calibration maps. Spark
//! runs the same exports in `export_sql::spark_runs_the_exports_identically` (one session).

use crate::export_sql::{
    bank_model, cdnow_features, check_model, export, spark_parses, synthetic_telco,
};
use crate::util::*;
use churn::model::calibrate::Calibrator;
use std::path::{Path, PathBuf};

/// A model trained once per test process into the target's scratch directory.
fn trained_once(
    cell: &'static std::sync::OnceLock<PathBuf>,
    name: &str,
    extra: &[&str],
) -> PathBuf {
    cell.get_or_init(|| {
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("export-boosted-{}", std::process::id()))
            .join(name);
        let _ = std::fs::remove_dir_all(&dir);
        train_config(Path::new("training/telco.toml"), &dir, extra);
        let b = churn::bundle::load(&dir).unwrap().bundle;
        assert!(b.model.boosted_trees().is_some(), "{name} is not boosted");
        dir
    })
    .clone()
}

/// The Telco example (segments, playbook) as boosted trees, searched as `--model auto` does.
pub(crate) fn boosted_example() -> PathBuf {
    static DIR: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    trained_once(&DIR, "telco", &["--model", "boosted"])
}

/// Telco as 300 boosting rounds of depth 6 (the benchmarks' large model).
pub(crate) fn rounds_300() -> PathBuf {
    static DIR: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    trained_once(
        &DIR,
        "telco-300",
        &[
            "--model",
            "boosted",
            "--no-search",
            "--boost-rounds",
            "300",
            "--boost-max-depth",
            "6",
        ],
    )
}

/// A copy of `model` under `dir` with the calibration map `cal`.
fn with_calibrator(model: &Path, dir: &Path, name: &str, cal: Calibrator) -> PathBuf {
    let mut b = churn::bundle::load(model).unwrap().bundle;
    b.model.calibrator = cal;
    let out = dir.join(name);
    std::fs::create_dir_all(&out).unwrap();
    churn::bundle::save(&out, &b).unwrap();
    out
}

/// A copy of `model` with Platt scaling (σ of the scaled margin: a second exponential).
pub(crate) fn with_platt(model: &Path, dir: &Path) -> PathBuf {
    with_calibrator(model, dir, "platt", Calibrator::Platt { a: 1.1, b: -0.3 })
}

#[test]
fn boosted_telco_scores_identically_in_sql() {
    let model = boosted_example();
    let dir = tempfile::tempdir().unwrap();
    let sql = std::fs::read_to_string(export(&model, "postgres", "t", dir.path(), &[])).unwrap();
    assert!(sql.contains("boosted trees"), "{}", &sql[..400]);
    assert!(sql.contains("POWER("), "the link is spelled out");
    check_model("sqlb_telco", &model, &telco(), "customerID", &[]);
}

#[test]
fn boosted_bank_scores_identically_in_sql() {
    let dir = tempfile::tempdir().unwrap();
    let Some((data, model)) = bank_model(dir.path(), &["--model", "boosted"]) else {
        return;
    };
    check_model("sqlb_bank", &model, &data, "CustomerId", &[]);
}

#[test]
fn boosted_cdnow_scores_identically_in_sql() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("cdnow");
    train_config(
        Path::new("training/cdnow.toml"),
        &model,
        &["--model", "boosted"],
    );
    let feats = cdnow_features(dir.path());
    check_model("sqlb_cdnow", &model, &feats, "customer_id", &[]);
}

#[test]
fn boosted_synthetic_edge_cases_score_identically_in_sql() {
    let model = boosted_example();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("synthetic.csv");
    synthetic_telco(&model, 100_000, &data);
    check_model("sqlb_synthetic", &model, &data, "customerID", &[]);
}

#[test]
fn boosted_300_rounds_of_depth_6_score_identically() {
    let model = rounds_300();
    let dir = tempfile::tempdir().unwrap();
    let spark = std::fs::read_to_string(export(&model, "spark", "c", dir.path(), &[])).unwrap();
    assert!(spark.contains("300 boosted trees"), "{}", &spark[..400]);
    // 300 trees in steps of TREES_PER_STEP: no expression deeper than a step
    assert!(spark.contains(&format!(
        "margin_{}",
        300usize.div_ceil(churn::export::TREES_PER_STEP)
    )));
    spark_parses(&spark);
    check_model("sqlb_300", &model, &telco(), "customerID", &[]);
}

#[test]
fn boosted_trees_deeper_than_the_limit_go_flat_and_score_identically() {
    // the default model's trees as one condition chain per leaf (the 300-round model's would be
    // 300 × 64 chains: half a minute on PostgreSQL for nothing more)
    let model = boosted_example();
    let dir = tempfile::tempdir().unwrap();
    let flags = ["--max-case-depth", "2"];
    let sql = std::fs::read_to_string(export(&model, "spark", "c", dir.path(), &flags)).unwrap();
    assert!(
        sql.contains("one condition chain per leaf"),
        "{}",
        &sql[..400]
    );
    spark_parses(&sql);
    check_model("sqlb_flat", &model, &telco(), "customerID", &flags);
}

#[test]
fn both_calibration_maps_score_identically_in_sql() {
    let model = boosted_example();
    let dir = tempfile::tempdir().unwrap();
    let platt = with_platt(&model, dir.path());
    check_model("sqlb_platt", &platt, &telco(), "customerID", &[]);
    // knots with a repeated x (a vertical step) and a flat stretch
    let iso = with_calibrator(
        &model,
        dir.path(),
        "isotonic",
        Calibrator::Isotonic {
            x: vec![0.05, 0.1, 0.2, 0.2, 0.5, 0.8],
            y: vec![0.02, 0.08, 0.15, 0.25, 0.25, 0.9],
        },
    );
    check_model("sqlb_isotonic", &iso, &telco(), "customerID", &[]);
}

#[test]
fn one_calibration_bin_exports_and_scores_identically() {
    // all out-of-fold scores tied (or very few rows) leave one bin: its interval is a constant,
    // and `CASE ELSE … END` would not parse anywhere
    let model = boosted_example();
    let dir = tempfile::tempdir().unwrap();
    let mut b = churn::bundle::load(&model).unwrap().bundle;
    let churn::model::Predictor::Boosted(bt) = &mut b.model.predictor else {
        panic!("boosted")
    };
    bt.bins.truncate(1);
    bt.bins[0].upper = f64::INFINITY;
    let out = dir.path().join("one-bin");
    std::fs::create_dir_all(&out).unwrap();
    churn::bundle::save(&out, &b).unwrap();
    check_model("sqlb_one_bin", &out, &telco(), "customerID", &[]);
}
