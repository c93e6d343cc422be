//! Model layer: compiled tree vs linfa, comparison semantics, calibration, bundle safety,
//! determinism and scoring behaviour.

use crate::util::*;
use churn::bundle;
use churn::config::ModelConfig;
use churn::features::{Encoder, Matrix, Warning};
use churn::io::RawValue;
use churn::model::tree::{
    fit_tree, CartLearner, Learner, LinfaLearner, Structure, Tree, TreeParams, LEAF,
};
use churn::scoring::Scorer;
use churn::train::{train, TrainOptions};
use linfa::prelude::Predict;

fn quick_options(dir: &std::path::Path, seed: u64) -> TrainOptions {
    TrainOptions {
        name: "t".into(),
        out_dir: dir.to_path_buf(),
        seed,
        model: ModelConfig {
            max_depth: vec![3, 5, 7],
            min_samples_leaf: vec![5, 20, 50],
            ..ModelConfig::default()
        },
        economics: None,
        data_sha256: "x".into(),
        progress: false,
        segments: Default::default(),
        previous: None,
        playbook: None,
        author: churn::cli::author("test".into()),
    }
}

#[test]
fn compiled_tree_agrees_with_linfa_on_every_training_row() {
    let d = telco_data();
    let rows: Vec<usize> = (0..d.nrows()).collect();
    let enc = Encoder::fit(&d, &rows, 10);
    let x = enc.transform(&d, &rows).unwrap();
    let w = vec![1.0; rows.len()];
    let params = TreeParams {
        max_depth: 6,
        min_samples_leaf: 5,
        ..TreeParams::default()
    };
    let lt = LinfaLearner::fit_linfa(&x, &d.label, &w, &rows, &params).unwrap();
    let compiled = Tree::compile(
        LinfaLearner::structure_of(&lt),
        "linfa",
        &x,
        &d.label,
        &w,
        &rows,
        params.criterion,
        1.0,
    )
    .unwrap();
    let records = ndarray::Array2::from_shape_fn((x.nrows, x.ncols), |(r, c)| x.get(r, c));
    let predicted = lt.predict(&records);
    for r in 0..x.nrows {
        let leaf = compiled.leaf_of_matrix(&x, r);
        assert_eq!(
            compiled.nodes[leaf].class,
            predicted[r] == 1,
            "row {r} disagrees with linfa"
        );
    }
    // leaf counts come from the training rows
    let total: f64 = compiled
        .nodes
        .iter()
        .filter(|n| n.is_leaf())
        .map(|n| n.n)
        .sum();
    assert_eq!(total as usize, x.nrows);
}

#[test]
fn a_value_equal_to_the_threshold_goes_left() {
    let x = Matrix {
        nrows: 4,
        ncols: 1,
        data: vec![1.0, 2.0, 3.0, 4.0],
    };
    let y = [false, false, true, true];
    let w = [1.0; 4];
    let rows = [0, 1, 2, 3];
    let p = TreeParams {
        max_depth: 1,
        ..TreeParams::default()
    };
    let hist = churn::model::tree::learner_by_name("hist").unwrap();
    for learner in [&CartLearner as &dyn Learner, &LinfaLearner, hist] {
        let t = fit_tree(learner, &x, &y, &w, &rows, &p).unwrap();
        assert_eq!(t.nodes[0].threshold, 2.5, "{}", learner.name());
        let left = t.nodes[0].left as usize;
        let right = t.nodes[0].right as usize;
        assert_eq!(
            t.leaf_of(&[2.5]),
            left,
            "x == threshold goes left ({})",
            learner.name()
        );
        assert_eq!(t.leaf_of(&[2.5000001]), right, "{}", learner.name());
        assert_eq!(t.nodes[left].n, 2.0, "{}", learner.name());
        assert_eq!(t.nodes[left].pos, 0.0, "{}", learner.name());
    }
}

/// The leaf each row reaches after pruning, as a partition label.
fn pruned_leaf(s: &Structure, pruned: &[Option<u32>], x: &Matrix, r: usize) -> usize {
    let mut i = 0usize;
    loop {
        let (f, t, l, rr, _) = s[i];
        if l == LEAF || pruned[i].is_some() {
            return i;
        }
        i = if x.get(r, f as usize) <= t {
            l as usize
        } else {
            rr as usize
        };
    }
}

#[test]
fn cart_and_linfa_partition_continuous_data_identically() {
    // distinct continuous values, a clear nonlinear rule with noise
    let n = 600;
    let mut rng = churn::util::Rng::new(5);
    let mut cols = [Vec::new(), Vec::new(), Vec::new()];
    let mut y = Vec::new();
    for _ in 0..n {
        let a = (rng.next_u64() % 1_000_000) as f64 / 1e4;
        let b = (rng.next_u64() % 1_000_000) as f64 / 1e4;
        let c = (rng.next_u64() % 1_000_000) as f64 / 1e4;
        let noise = rng.below(10) == 0;
        y.push(((a > 60.0 && b < 40.0) || c > 85.0) != noise);
        cols[0].push(a);
        cols[1].push(b);
        cols[2].push(c);
    }
    let x = Matrix {
        nrows: n,
        ncols: 3,
        data: cols.concat(),
    };
    let rows: Vec<usize> = (0..n).collect();
    let w = vec![1.0; n];
    // Depth ≤ 3: deeper nodes hold few rows, where linfa's f32 impurity arithmetic and its
    // random tie-break of equal class weights (HashMap order) can pick a different near-tie split.
    for depth in 1..=3 {
        let p = TreeParams {
            max_depth: depth,
            min_samples_leaf: 5,
            ..TreeParams::default()
        };
        let ours = CartLearner
            .prepare(&x, &rows, 1)
            .unwrap()
            .grow(&y, &w, &rows, &p, 1)
            .unwrap();
        let theirs = LinfaLearner
            .prepare(&x, &rows, 1)
            .unwrap()
            .grow(&y, &w, &rows, &p, 1)
            .unwrap();
        let pruned = prune_like_linfa(&ours);
        let mut map = std::collections::HashMap::new();
        for r in 0..n {
            let a = pruned_leaf(&ours, &pruned, &x, r);
            let b = pruned_leaf(&theirs, &vec![None; theirs.len()], &x, r);
            let e = map.entry(a).or_insert(b);
            assert_eq!(*e, b, "depth {depth}: row {r} lands in a different leaf");
        }
        let distinct: std::collections::HashSet<_> = map.values().collect();
        assert_eq!(
            distinct.len(),
            map.len(),
            "depth {depth}: partitions differ"
        );
    }
}

#[test]
fn training_card_holdout_and_calibration_keep_auc() {
    let dir = tempfile::tempdir().unwrap();
    let d = telco_data();
    let out = train(d.clone(), &quick_options(dir.path(), 42)).unwrap();
    let h = out.card.holdout.as_ref().unwrap();
    let raw = out.card.holdout_auc_uncalibrated.unwrap();
    assert!(
        h.roc_auc >= raw - 1e-12,
        "calibration lowered AUC: {} < {}",
        h.roc_auc,
        raw
    );
    assert!(
        h.roc_auc > 0.80,
        "holdout AUC {} is below what Telco supports",
        h.roc_auc
    );
    assert!(h.ece < 0.05, "badly calibrated: ECE {}", h.ece);
    assert_eq!(h.rows, 1409);
    assert_eq!(out.card.cv_table.len(), 9);
    assert!(out.card.importance[0].importance > 0.0);
    assert!(
        (out.card
            .importance
            .iter()
            .map(|i| i.importance)
            .sum::<f64>()
            - 1.0)
            .abs()
            < 1e-9
    );
    for f in ["model.bin", "model_card.json", "data_quality.json"] {
        assert!(champion_dir(dir.path()).join(f).exists(), "{f} written");
    }
    let card = read_card(dir.path());
    for key in [
        "created_at",
        "data_sha256",
        "cv_table",
        "holdout",
        "threshold",
        "importance",
        "data_quality",
        "features",
    ] {
        assert!(card.get(key).is_some(), "card has {key}");
    }
}

#[test]
fn same_data_config_and_seed_give_identical_bytes() {
    let d = telco_data();
    let a = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    train(d.clone(), &quick_options(a.path(), 7)).unwrap();
    train(d.clone(), &quick_options(b.path(), 7)).unwrap();
    let ba = std::fs::read(champion_dir(a.path()).join("model.bin")).unwrap();
    let bb = std::fs::read(champion_dir(b.path()).join("model.bin")).unwrap();
    assert_eq!(ba, bb);
}

#[test]
fn damaged_bundles_are_refused_with_distinct_messages() {
    let dir = tempfile::tempdir().unwrap();
    let d = telco_data();
    train(d.clone(), &quick_options(dir.path(), 1)).unwrap();
    let good = std::fs::read(champion_dir(dir.path()).join("model.bin")).unwrap();
    assert!(bundle::from_bytes(&good, dir.path()).is_ok());
    let msg = |bytes: &[u8]| {
        bundle::from_bytes(bytes, std::path::Path::new("m.bin"))
            .unwrap_err()
            .to_string()
    };

    let mut magic = good.clone();
    magic[0] = b'X';
    let m1 = msg(&magic);
    assert!(m1.contains("not a churn model bundle"), "{m1}");

    let m2 = msg(&good[..good.len() / 2]);
    assert!(m2.contains("truncated"), "{m2}");

    let mut flipped = good.clone();
    let last = flipped.len() - 3;
    flipped[last] ^= 0x55;
    let m3 = msg(&flipped);
    assert!(m3.contains("corrupted"), "{m3}");

    let mut version = good.clone();
    version[8..12].copy_from_slice(&99u32.to_le_bytes());
    let m4 = msg(&version);
    assert!(m4.contains("version 99 is not supported"), "{m4}");

    let m5 = msg(b"");
    assert!(m5.contains("not a churn model bundle"));
    let all = [&m1, &m2, &m3, &m4];
    for (i, a) in all.iter().enumerate() {
        for b in &all[i + 1..] {
            assert_ne!(a, b);
        }
    }
}

#[test]
fn scoring_warns_on_unseen_levels_and_imputes_missing_values() {
    let dir = tempfile::tempdir().unwrap();
    let d = telco_data();
    train(d.clone(), &quick_options(dir.path(), 3)).unwrap();
    let scorer = Scorer::new(bundle::load(dir.path()).unwrap());
    let names: Vec<String> = scorer.input_names().map(String::from).collect();
    let base = |name: &str| -> RawValue<'static> {
        match name {
            "tenure" => RawValue::Number(2.0),
            "MonthlyCharges" => RawValue::Number(90.0),
            "TotalCharges" => RawValue::Missing,
            "SeniorCitizen" => RawValue::Number(0.0),
            "Partner" | "Dependents" => RawValue::Text("No"),
            "PhoneService" | "PaperlessBilling" => RawValue::Bool(true),
            "Contract" => RawValue::Text("Month-to-month"),
            "InternetService" => RawValue::Text("Fiber optic"),
            "PaymentMethod" => RawValue::Text("Carrier pigeon"),
            "gender" => RawValue::Text("Female"),
            _ => RawValue::Text("No"),
        }
    };
    let s = scorer.score(|i| Some(base(&names[i]))).unwrap();
    assert!(
        s.prediction.probability > 0.3,
        "a new fiber month-to-month customer is high risk"
    );
    assert!(
        s.prediction.low <= s.prediction.probability
            && s.prediction.probability <= s.prediction.high
    );
    assert!(s.warnings.contains(&Warning::UnseenCategory {
        field: "PaymentMethod".into(),
        value: "Carrier pigeon".into()
    }));
    // TotalCharges had missing values in training → indicator column, no warning
    assert!(!s
        .warnings
        .iter()
        .any(|w| matches!(w, Warning::Imputed { field, .. } if field == "TotalCharges")));
    // tenure never missing in training → imputed with a warning
    let s2 = scorer
        .score(|i| {
            Some(if names[i] == "tenure" {
                RawValue::Missing
            } else {
                base(&names[i])
            })
        })
        .unwrap();
    assert!(s2
        .warnings
        .iter()
        .any(|w| matches!(w, Warning::Imputed { field, .. } if field == "tenure")));
    // wrong type names the field
    let e = scorer
        .score(|i| {
            Some(if names[i] == "tenure" {
                RawValue::Text("ten")
            } else {
                base(&names[i])
            })
        })
        .unwrap_err();
    assert_eq!(e.field(), Some("tenure"));
    assert!(e.to_string().contains("expected a number, found 'ten'"));
    // absent field
    let e = scorer
        .score(|i| {
            if names[i] == "Contract" {
                None
            } else {
                Some(base(&names[i]))
            }
        })
        .unwrap_err();
    assert_eq!(e.field(), Some("Contract"));
    // reasons read in original terms
    let mut w = Vec::new();
    let row = scorer.encode(|i| Some(base(&names[i])), &mut w).unwrap();
    let reasons = scorer.reasons(&row);
    assert!(!reasons.is_empty());
    assert!(
        reasons
            .iter()
            .any(|r| r.condition == "Contract is Month-to-month"),
        "{reasons:?}"
    );
}
