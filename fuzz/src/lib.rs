//! Shared fixture of the fuzz targets: a small model trained once per fuzzing process on the
//! bundled Telco sample, so the targets exercise a real encoder, tree, segments and playbook.

use churn::ingest::{load, CustomerTableSpec, Source};
use churn::scoring::Scorer;
use std::path::PathBuf;
use std::sync::OnceLock;

/// The Telco model (trained on first use, in a temporary directory; the targets call this in
/// their `init` block, before libFuzzer's per-input timeout applies).
pub fn telco() -> &'static Scorer {
    static SCORER: OnceLock<Scorer> = OnceLock::new();
    SCORER.get_or_init(|| {
        let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
        let spec = CustomerTableSpec {
            path: root.join("training/data/Telco-Customer-Churn.csv"),
            label: "Churn".into(),
            id: Some("customerID".into()),
            ..Default::default()
        };
        let data = load(&Source::Table(spec)).expect("the Telco sample loads");
        let out = std::env::temp_dir().join(format!("churn-fuzz-{}", std::process::id()));
        let opts = churn::train::TrainOptions {
            name: "telco".into(),
            out_dir: out.clone(),
            seed: 7,
            // one configuration, no search: the fixture only has to be a real model
            model: churn::config::ModelConfig {
                max_depth: vec![5],
                min_samples_leaf: vec![20],
                search: false,
                folds: 3,
                ..Default::default()
            },
            economics: None,
            data_sha256: String::new(),
            progress: false,
            segments: churn::segment::SegmentConfig {
                k: Some(4),
                ..Default::default()
            },
            previous: None,
            playbook: None,
            author: churn::bundle::registry::Author {
                by: "fuzz".into(),
                reason: "fuzz fixture".into(),
            },
        };
        let trained = churn::train::train(data, &opts).expect("the Telco sample trains");
        let _ = std::fs::remove_dir_all(&out);
        Scorer::new(churn::bundle::LoadedBundle {
            bundle: trained.bundle,
            version: "fuzz".into(),
            dir: out,
        })
    })
}

/// Score an encoded row through every part of the scorer (prediction, segments, reasons,
/// advice, levers), as the HTTP handler does.
pub fn score_fully(scorer: &Scorer, row: &[f64], id: Option<&str>) {
    let scored = scorer.score_encoded(row, Vec::new(), id);
    assert!((0.0..=1.0).contains(&scored.prediction.probability));
    let _ = scorer.levers(row);
    let _ = serde_json::to_string(&scored.reasons);
}
