//! Segments: k-means on synthetic blobs, stable ids across retrains, CDNOW profile, scoring output.

use crate::util::*;
use churn::segment::{kmeans, min_cost_matching, SegmentConfig};

#[test]
fn kmeans_recovers_well_separated_blobs() {
    let centers = [[0.0, 0.0], [10.0, 10.0], [-10.0, 8.0]];
    let mut rng = churn::util::Rng::new(11);
    let mut data = Vec::new();
    for i in 0..3000 {
        let c = centers[i % 3];
        for v in c {
            let noise = (rng.next_u64() % 2000) as f64 / 1000.0 - 1.0;
            data.push(v + noise);
        }
    }
    let cfg = SegmentConfig::default();
    let found = kmeans(&data, 2, 3, &cfg, 5).unwrap();
    for c in centers {
        let best = found
            .iter()
            .map(|f| ((f[0] - c[0]).powi(2) + (f[1] - c[1]).powi(2)).sqrt())
            .fold(f64::INFINITY, f64::min);
        assert!(best < 0.2, "no centroid near {c:?}: {found:?}");
    }
}

#[test]
fn matching_is_minimum_cost() {
    let cost = vec![
        vec![4.0, 1.0, 3.0],
        vec![2.0, 0.0, 5.0],
        vec![3.0, 2.0, 2.0],
    ];
    assert_eq!(min_cost_matching(&cost), vec![Some(1), Some(0), Some(2)]);
    // more rows than columns: one row stays unmatched
    let cost = vec![vec![1.0], vec![0.5], vec![3.0]];
    assert_eq!(min_cost_matching(&cost), vec![None, Some(0), None]);
}

#[test]
fn cdnow_segments_differ_in_churn_and_keep_ids_on_retrain() {
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("a");
    let b = dir.path().join("b");
    let cfg = root().join("training/cdnow.toml");
    train_config(&cfg, &a, &[]);
    let ca = read_card(&a);
    let segs = ca["segments"]["segments"].as_array().unwrap();
    assert!(segs.len() >= 2);
    let rates: Vec<f64> = segs
        .iter()
        .map(|s| s["churn_rate"].as_f64().unwrap())
        .collect();
    let spread = rates.iter().cloned().fold(f64::MIN, f64::max)
        - rates.iter().cloned().fold(f64::MAX, f64::min);
    assert!(spread > 0.3, "segment churn rates barely differ: {rates:?}");
    let names: std::collections::HashSet<&str> =
        segs.iter().map(|s| s["name"].as_str().unwrap()).collect();
    assert_eq!(names.len(), segs.len(), "names are unique");
    let classes: Vec<&str> = ca["segments"]["rfm_classes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["label"].as_str().unwrap())
        .collect();
    assert!(
        classes.contains(&"high_value_loyal") && classes.contains(&"low_value_silent"),
        "{classes:?}"
    );
    let total: f64 = ca["segments"]["rfm_classes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["share"].as_f64().unwrap())
        .sum();
    assert!((total - 1.0).abs() < 1e-9);

    // retrain with a different seed but --previous: ids and names persist, migration is ~diagonal
    train_config(
        &cfg,
        &b,
        &["--seed", "7", "--previous", a.to_str().unwrap()],
    );
    let cb = read_card(&b);
    let by_id = |c: &serde_json::Value| -> std::collections::BTreeMap<u64, String> {
        c["segments"]["segments"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| {
                (
                    s["id"].as_u64().unwrap(),
                    s["name"].as_str().unwrap().to_string(),
                )
            })
            .collect()
    };
    assert_eq!(by_id(&ca), by_id(&cb));
    let m = &cb["segments"]["migration"];
    let from: Vec<&str> = m["from"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    let to: Vec<&str> = m["to"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    for (i, f) in from.iter().enumerate() {
        let j = to.iter().position(|t| t == f).unwrap();
        let stay = m["share"][i][j].as_f64().unwrap();
        assert!(stay > 0.9, "customers of '{f}' mostly stay: {stay}");
    }

    // scoring writes the segment columns
    let feats = dir.path().join("f.csv");
    let (code, _, err) = run(
        "churn-train",
        &[
            "features",
            "--config",
            cfg.to_str().unwrap(),
            "--output",
            feats.to_str().unwrap(),
            "--quiet",
        ],
    );
    assert_eq!(code, 0, "{err}");
    let out = dir.path().join("s.csv");
    let (code, _, err) = score(&b, &feats, &out, &["--quiet"]);
    assert_eq!(code, 0, "{err}");
    let t = churn::io::read_table(&out, None).unwrap();
    for c in ["segment_id", "segment", "rfm_class", "lifecycle_stage"] {
        let col = t.column(c).unwrap();
        assert_eq!(
            col.data.missing_and_distinct().0,
            0,
            "{c} filled for every customer"
        );
    }
}
