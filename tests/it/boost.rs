//! Gradient-boosted trees: the learner against a naive reference, determinism, early stopping,
//! TreeSHAP additivity on a trained bundle, and boosted models through scoring and the CLI.

use churn::features::Matrix;
use churn::model::bins::{Binned, MAX_BINS};
use churn::model::boost::{fit, sigmoid, BoostParams, Ensemble};
use churn::util::Rng;

/// Features with at most 40 distinct values each (so binning is exact) and a noisy nonlinear
/// rule.
fn data(n: usize, seed: u64) -> (Matrix, Vec<bool>) {
    let mut rng = Rng::new(seed);
    let levels = [3usize, 8, 40, 12, 2];
    let mut cols: Vec<Vec<f64>> = vec![Vec::with_capacity(n); levels.len()];
    let mut y = Vec::with_capacity(n);
    for _ in 0..n {
        let v: Vec<f64> = levels
            .iter()
            .map(|&l| rng.below(l) as f64 * 0.5 + 0.25)
            .collect();
        let z =
            0.8 * v[0] - 0.3 * v[1] + if v[2] > 7.0 { 1.0 } else { -0.2 } + 0.2 * v[3] * v[4] - 1.0;
        y.push(rng.uniform() < sigmoid(z));
        for (c, x) in cols.iter_mut().zip(v) {
            c.push(x);
        }
    }
    (
        Matrix {
            nrows: n,
            ncols: levels.len(),
            data: cols.concat(),
        },
        y,
    )
}

/// A reference regression tree grown naively: every distinct value of every column tried as a
/// threshold (midpoints), depth-first, gains and leaf values by the textbook formulas.
enum RefNode {
    Leaf(f64),
    Split(usize, f64, Box<RefNode>, Box<RefNode>),
}

fn ref_tree(
    x: &Matrix,
    all: &[Vec<f64>],
    rows: &[usize],
    g: &[f64],
    h: &[f64],
    p: &BoostParams,
    depth: usize,
) -> RefNode {
    let (gs, hs): (f64, f64) = rows
        .iter()
        .map(|&r| (g[r], h[r]))
        .fold((0.0, 0.0), |a, b| (a.0 + b.0, a.1 + b.1));
    let leaf = RefNode::Leaf(-p.learning_rate * gs / (hs + p.l2));
    if depth >= p.max_depth || rows.len() < 2 * p.min_samples_leaf {
        return leaf;
    }
    let score = |g: f64, h: f64| g * g / (h + p.l2);
    let mut best: Option<(f64, usize, f64)> = None;
    for f in 0..x.ncols {
        let mut vals: Vec<f64> = rows.iter().map(|&r| x.get(r, f)).collect();
        vals.sort_by(f64::total_cmp);
        vals.dedup();
        for w in vals.windows(2) {
            // halfway to the next value of the whole training set
            let next = all[f][all[f].partition_point(|&v| v <= w[0])];
            let t = (w[0] + next) / 2.0;
            let (mut lg, mut lh, mut ln) = (0.0, 0.0, 0usize);
            for &r in rows {
                if x.get(r, f) <= t {
                    lg += g[r];
                    lh += h[r];
                    ln += 1;
                }
            }
            let rn = rows.len() - ln;
            let (rg, rh) = (gs - lg, hs - lh);
            if ln < p.min_samples_leaf
                || rn < p.min_samples_leaf
                || lh < p.min_hessian
                || rh < p.min_hessian
            {
                continue;
            }
            let gain = score(lg, lh) + score(rg, rh) - score(gs, hs);
            if gain > 1e-12 && best.is_none_or(|b| gain > b.0 + 1e-9) {
                best = Some((gain, f, t));
            }
        }
    }
    let Some((_, f, t)) = best else { return leaf };
    let (l, r): (Vec<usize>, Vec<usize>) = rows.iter().partition(|&&r| x.get(r, f) <= t);
    RefNode::Split(
        f,
        t,
        Box::new(ref_tree(x, all, &l, g, h, p, depth + 1)),
        Box::new(ref_tree(x, all, &r, g, h, p, depth + 1)),
    )
}

fn ref_value(n: &RefNode, x: &Matrix, r: usize) -> f64 {
    match n {
        RefNode::Leaf(v) => *v,
        RefNode::Split(f, t, l, rt) => {
            if x.get(r, *f) <= *t {
                ref_value(l, x, r)
            } else {
                ref_value(rt, x, r)
            }
        }
    }
}

/// Naive boosting: the reference tree per round on exact gradients.
fn ref_boost(x: &Matrix, y: &[bool], rows: &[usize], p: &BoostParams) -> Vec<f64> {
    let pos = rows.iter().filter(|&&r| y[r]).count() as f64;
    let base = (pos / (rows.len() as f64 - pos)).ln();
    let mut m = vec![base; x.nrows];
    // every column's distinct training values, ascending
    let all: Vec<Vec<f64>> = (0..x.ncols)
        .map(|f| {
            let mut v: Vec<f64> = rows.iter().map(|&r| x.get(r, f)).collect();
            v.sort_by(f64::total_cmp);
            v.dedup();
            v
        })
        .collect();
    for _ in 0..p.rounds {
        let mut g = vec![0.0; x.nrows];
        let mut h = vec![0.0; x.nrows];
        for &r in rows {
            let q = sigmoid(m[r]);
            g[r] = q - if y[r] { 1.0 } else { 0.0 };
            h[r] = (q * (1.0 - q)).max(1e-16);
        }
        let t = ref_tree(x, &all, rows, &g, &h, p, 0);
        for (r, mr) in m.iter_mut().enumerate() {
            *mr += ref_value(&t, x, r);
        }
    }
    m
}

fn params(rounds: usize) -> BoostParams {
    BoostParams {
        rounds,
        learning_rate: 0.3,
        max_depth: 3,
        min_samples_leaf: 5,
        early_stopping: 0,
        ..BoostParams::default()
    }
}

fn boost(
    x: &Matrix,
    y: &[bool],
    rows: &[usize],
    valid: &[usize],
    p: &BoostParams,
    threads: usize,
) -> Ensemble {
    let b = Binned::new(x, rows, MAX_BINS, threads).unwrap();
    let w = vec![1.0; y.len()];
    fit(&b, y, &w, rows, valid, p, threads).unwrap().0
}

#[test]
fn gbdt_predicts_like_a_naive_reference_booster() {
    let (x, y) = data(1500, 3);
    let rows: Vec<usize> = (0..1000).collect();
    let p = params(15);
    let e = boost(&x, &y, &rows, &[], &p, 2);
    assert_eq!(e.trees.len(), 15);
    assert_like_reference(&e, &x, &y, &rows, &p);
}

/// The ensemble's margin equals the naive reference booster's on every matrix row (training
/// rows and unseen rows alike).
fn assert_like_reference(e: &Ensemble, x: &Matrix, y: &[bool], rows: &[usize], p: &BoostParams) {
    let reference = ref_boost(x, y, rows, p);
    for (r, want) in reference.iter().enumerate() {
        let got = e.margin_of_matrix(x, r);
        assert!(
            (got - want).abs() < 1e-9,
            "min_samples_leaf {}, row {r}: gbdt margin {got} vs reference {want}",
            p.min_samples_leaf
        );
    }
}

/// Histogram bins carry no row counts: a side's rows are bounded below by its hessian sum, and
/// exact counts are taken where that bound cannot decide. On a skewed sample (hessians far
/// below their maximum) with large `min_samples_leaf`, most candidates near the limit are
/// undecided by the bound, so this checks the exact path against the naive reference, and
/// that no leaf ever holds fewer rows than allowed.
#[test]
fn min_samples_leaf_stays_exact_without_per_bin_counts() {
    let (x, y) = data(1500, 11);
    // a skewed training set: every churner but only a third of the others
    let rows: Vec<usize> = (0..1200).filter(|&r| y[r] || r % 3 == 0).collect();
    for min_leaf in [1, 40, 90] {
        let p = BoostParams {
            min_samples_leaf: min_leaf,
            max_depth: 4,
            ..params(8)
        };
        let e = boost(&x, &y, &rows, &[], &p, 2);
        assert_like_reference(&e, &x, &y, &rows, &p);
        let leaves: Vec<f64> = e
            .trees
            .iter()
            .flat_map(|t| t.nodes.iter().filter(|n| n.is_leaf()).map(|n| n.cover))
            .collect();
        assert!(
            leaves.iter().all(|&c| c >= min_leaf as f64),
            "min_samples_leaf {min_leaf}: leaf covers {leaves:?}"
        );
        // the limit binds: some leaf sits within a few rows of it
        if min_leaf > 1 {
            assert!(
                leaves.iter().any(|&c| c < 2.0 * min_leaf as f64),
                "min_samples_leaf {min_leaf} never came close to binding: {leaves:?}"
            );
        }
    }
}

#[test]
fn gbdt_is_deterministic_across_runs_and_thread_counts() {
    // enough rows x features that histograms and partitions near the root run on the threads
    let (x, y) = data(240_000, 5);
    let rows: Vec<usize> = (0..240_000).collect();
    let p = BoostParams {
        row_subsample: 0.7,
        col_subsample: 0.6,
        seed: 9,
        ..params(30)
    };
    let a = boost(&x, &y, &rows, &[], &p, 1);
    let b = boost(&x, &y, &rows, &[], &p, 2);
    let c = boost(&x, &y, &rows, &[], &p, 2);
    assert_eq!(a, b);
    assert_eq!(b, c);
    assert_eq!(a, boost(&x, &y, &rows, &[], &p, 3));
    // the seed matters when subsampling
    let d = boost(&x, &y, &rows, &[], &BoostParams { seed: 10, ..p }, 2);
    assert_ne!(a, d);
}

#[test]
fn early_stopping_keeps_the_best_validation_round() {
    let (x, y) = data(4000, 8);
    let rows: Vec<usize> = (0..3000).collect();
    let valid: Vec<usize> = (3000..4000).collect();
    // deep trees with a high learning rate overfit quickly
    let p = BoostParams {
        rounds: 400,
        learning_rate: 0.5,
        max_depth: 6,
        min_samples_leaf: 1,
        early_stopping: 20,
        ..BoostParams::default()
    };
    // as in training, the bins cover the validation rows too
    let both: Vec<usize> = (0..4000).collect();
    let b = Binned::new(&x, &both, MAX_BINS, 1).unwrap();
    let w = vec![1.0; y.len()];
    let (e, rep) = fit(&b, &y, &w, &rows, &valid, &p, 1).unwrap();
    let curve = &rep.valid_log_loss;
    assert!(
        curve.len() < 400,
        "stopped early ({} rounds run)",
        curve.len()
    );
    let best = (0..curve.len())
        .min_by(|&a, &b| curve[a].total_cmp(&curve[b]))
        .unwrap();
    assert_eq!(e.trees.len(), best + 1);
    assert_eq!(curve.len(), best + 1 + 20);
    // the kept ensemble reproduces the best validation loss
    let vy: Vec<bool> = valid.iter().map(|&r| y[r]).collect();
    let vp: Vec<f64> = valid
        .iter()
        .map(|&r| sigmoid(e.margin_of_matrix(&x, r)))
        .collect();
    let ll = churn::model::metrics::log_loss(&vp, &vy);
    assert!((ll - curve[best]).abs() < 1e-9);
}

#[test]
fn calibration_bin_intervals_cover_the_true_churn_rate() {
    // known truth: each customer's churn probability is sigmoid(z); an interval is right when
    // it holds the mean true probability of fresh customers falling in its bin
    let (mut covered, mut total) = (0, 0);
    for seed in 0..5u64 {
        let (x, y) = data(30_000, 100 + seed);
        let truth = |r: usize| {
            let v: Vec<f64> = (0..x.ncols).map(|c| x.get(r, c)).collect();
            sigmoid(
                0.8 * v[0] - 0.3 * v[1] + if v[2] > 7.0 { 1.0 } else { -0.2 } + 0.2 * v[3] * v[4]
                    - 1.0,
            )
        };
        let train: Vec<usize> = (0..15_000).collect();
        let cal: Vec<usize> = (15_000..22_500).collect();
        let fresh: Vec<usize> = (22_500..30_000).collect();
        let e = boost(
            &x,
            &y,
            &train,
            &[],
            &BoostParams {
                learning_rate: 0.1,
                ..params(60)
            },
            2,
        );
        let raw = |r: usize| sigmoid(e.margin_of_matrix(&x, r));
        let cp: Vec<f64> = cal.iter().map(|&r| raw(r)).collect();
        let cy: Vec<bool> = cal.iter().map(|&r| y[r]).collect();
        let bins = churn::model::score_bins(&cp, &cy);
        assert!(bins.len() >= 5);
        let mut sum = vec![(0.0, 0usize); bins.len()];
        for &r in &fresh {
            let p = raw(r);
            let i = bins.partition_point(|b| b.upper < p).min(bins.len() - 1);
            sum[i].0 += truth(r);
            sum[i].1 += 1;
        }
        for (b, (s, n)) in bins.iter().zip(sum) {
            if n < 100 {
                continue;
            }
            let mean = s / n as f64;
            total += 1;
            if b.low <= mean && mean <= b.high {
                covered += 1;
            }
        }
    }
    let rate = covered as f64 / total as f64;
    assert!(total >= 60, "{total} bins checked");
    assert!(
        rate >= 0.88,
        "95% intervals covered the truth in {covered} of {total} bins"
    );
}

mod trained {
    use crate::util::{champion_dir, telco_data};
    use churn::bundle;
    use churn::config::ModelConfig;
    use churn::model::shap::{shap_values, ShapTables};
    use churn::model::ModelChoice;
    use churn::scoring::Scorer;
    use churn::train::{train, TrainOptions};
    use std::path::Path;

    fn options(dir: &Path, model: ModelChoice) -> TrainOptions {
        TrainOptions {
            name: "b".into(),
            out_dir: dir.to_path_buf(),
            seed: 7,
            model: ModelConfig {
                model,
                max_depth: vec![3, 5],
                min_samples_leaf: vec![20, 50],
                boost_max_depth: vec![3],
                boost_learning_rate: vec![0.1],
                boost_rounds: 300,
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
    fn boosted_telco_model_explains_every_row_exactly_and_retrains_identically() {
        let tmp = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
        let dir = tmp.join(format!("boost-telco-{}", std::process::id()));
        let again = tmp.join(format!("boost-telco-again-{}", std::process::id()));
        let out = train(telco_data(), &options(&dir, ModelChoice::Boosted)).unwrap();
        train(telco_data(), &options(&again, ModelChoice::Boosted)).unwrap();
        let bytes = std::fs::read(champion_dir(&dir).join("model.bin")).unwrap();
        assert_eq!(
            bytes,
            std::fs::read(champion_dir(&again).join("model.bin")).unwrap()
        );
        let loaded = bundle::load(&dir).unwrap();
        assert_eq!(loaded.bundle, out.bundle);
        let b = loaded
            .bundle
            .model
            .boosted_trees()
            .expect("a boosted model");
        let e = &b.ensemble;
        assert!(
            e.trees.len() >= 10 && e.trees.len() <= 300,
            "{} trees",
            e.trees.len()
        );
        let card = &out.card;
        let choice = card.model_choice.as_ref().unwrap();
        assert_eq!(choice.chosen, churn::model::ModelKind::Boosted);
        assert_eq!(choice.boosted.unwrap().rounds, e.trees.len());
        // importances by mean |SHAP| name Telco's known drivers first
        let top: Vec<&str> = card
            .importance
            .iter()
            .take(4)
            .map(|i| i.name.as_str())
            .collect();
        assert!(
            top.contains(&"Contract") || top.contains(&"tenure"),
            "{top:?}"
        );
        let h = card.holdout.as_ref().unwrap();
        assert!(h.roc_auc > 0.82, "holdout AUC {}", h.roc_auc);
        // every row (training and holdout): contributions + expected margin = margin, and the
        // scorer's reasons fold one-hot columns back into inputs without losing any of it
        let data = telco_data();
        let all: Vec<usize> = (0..data.label.len()).collect();
        let x = loaded.bundle.encoder.transform(&data, &all).unwrap();
        let scorer = Scorer::new(bundle::load(&dir).unwrap());
        let base = e.expected_margin();
        // the scorer's tabulated TreeSHAP must give the recursive algorithm's values
        let tables = ShapTables::new(e);
        assert_eq!(tables.tabulated(), e.trees.len());
        for r in 0..x.nrows {
            let row = x.row(r);
            let m = e.margin(&row);
            let phi = shap_values(e, &row, x.ncols);
            let sum: f64 = phi.iter().sum();
            assert!(
                (base + sum - m).abs() < 1e-9,
                "row {r}: {base} + {sum} vs {m}"
            );
            let fast = tables.shap_values(e, &row, x.ncols);
            for (c, (a, b)) in fast.iter().zip(&phi).enumerate() {
                assert!(
                    (a - b).abs() < 1e-10,
                    "row {r} column {c}: tables {a} vs {b}"
                );
            }
            let ex = scorer.explain(&row);
            let folded: f64 = ex.raised.iter().chain(&ex.lowered).map(|r| r.effect).sum();
            assert!((ex.base_rate + folded - m).abs() < 1e-9, "row {r}");
            assert!(ex.raised.windows(2).all(|w| w[0].effect >= w[1].effect));
            let p = loaded.bundle.model.predict(&row);
            assert!(p.low <= p.probability && p.probability <= p.high);
            assert!(p.support > 0.0);
        }
        // batch prediction (trees outer, branch-free walks) equals row-by-row prediction,
        // with missing values (NaN goes right) sprinkled in
        let mut flat: Vec<f64> = (0..x.nrows).flat_map(|r| x.row(r)).collect();
        for r in (0..x.nrows).step_by(7) {
            flat[r * x.ncols + r % x.ncols] = f64::NAN;
        }
        let (mut margins, mut batch) = (Vec::new(), Vec::new());
        let model = &loaded.bundle.model;
        model.predict_rows(&flat, x.ncols, &mut margins, &mut batch);
        assert_eq!(batch.len(), x.nrows);
        for (r, (b, row)) in batch.iter().zip(flat.chunks_exact(x.ncols)).enumerate() {
            assert_eq!(*b, model.predict(row), "row {r}");
        }
        // a month-to-month customer's reasons read in the input's own terms
        let m2m = (0..x.nrows)
            .find(|&r| {
                scorer
                    .explain(&x.row(r))
                    .raised
                    .iter()
                    .any(|q| q.condition == "Contract is Month-to-month")
            })
            .is_some();
        assert!(m2m);
        for d in [dir, again] {
            let _ = std::fs::remove_dir_all(d);
        }
    }

    #[test]
    fn tree_choice_keeps_the_single_tree_and_auto_records_both_candidates() {
        let tmp = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
        let dir = tmp.join(format!("boost-auto-{}", std::process::id()));
        let tree = tmp.join(format!("boost-tree-{}", std::process::id()));
        let auto = train(telco_data(), &options(&dir, ModelChoice::Auto)).unwrap();
        let single = train(telco_data(), &options(&tree, ModelChoice::Tree)).unwrap();
        assert_eq!(single.bundle.model.kind(), churn::model::ModelKind::Tree);
        let c = single.card.model_choice.as_ref().unwrap();
        assert_eq!(c.chosen, churn::model::ModelKind::Tree);
        assert!(c.boosted_cv_log_loss.is_none() && c.boosted_cv_table.is_empty());
        let a = auto.card.model_choice.as_ref().unwrap();
        let (t, b) = (a.tree_cv_log_loss.unwrap(), a.boosted_cv_log_loss.unwrap());
        let kind = if b < t {
            churn::model::ModelKind::Boosted
        } else {
            churn::model::ModelKind::Tree
        };
        assert_eq!(a.chosen, kind);
        assert_eq!(auto.bundle.model.kind(), kind);
        assert_eq!(a.boosted_cv_table.len(), 1);
        // the tree candidate under auto is the same tree `--model tree` ships
        assert_eq!(t, c.tree_cv_log_loss.unwrap());
        // `--no-search` under auto fits no boosted trees (it used to cross-validate them only
        // to ship the tree): the single configured tree, the same as `--model tree`'s
        let bare = tmp.join(format!("boost-bare-{}", std::process::id()));
        let mut o = options(&bare, ModelChoice::Auto);
        o.model.search = false;
        let plain = train(telco_data(), &o).unwrap();
        let p = plain.card.model_choice.as_ref().unwrap();
        assert_eq!(p.chosen, churn::model::ModelKind::Tree);
        assert!(p.reason.contains("--no-search"), "{}", p.reason);
        assert!(p.boosted_cv_log_loss.is_none() && p.boosted_cv_table.is_empty());
        let mut o = options(&bare, ModelChoice::Tree);
        o.model.search = false;
        let tree_only = train(telco_data(), &o).unwrap();
        assert_eq!(
            plain.bundle.model.predictor,
            tree_only.bundle.model.predictor
        );
        for d in [dir, tree, bare] {
            let _ = std::fs::remove_dir_all(d);
        }
    }
}

#[test]
fn a_format_5_bundle_still_loads_and_scores_exactly_as_before() {
    let fixture = crate::util::root().join("tests/fixtures/bundle-v5");
    let bytes = std::fs::read(fixture.join("model.bin")).unwrap();
    assert_eq!(
        &bytes[8..12],
        &5u32.to_le_bytes(),
        "the fixture is format 5"
    );
    let loaded = churn::bundle::load(&fixture).unwrap();
    assert!(loaded.bundle.model.boosted_trees().is_none());
    assert_eq!(loaded.bundle.model.kind(), churn::model::ModelKind::Tree);
    // every output cell as the software that wrote the bundle scored it
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("scores.csv");
    let (code, _, err) =
        crate::util::score(&fixture, &fixture.join("customers.csv"), &out, &["--quiet"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        std::fs::read_to_string(out).unwrap(),
        std::fs::read_to_string(fixture.join("expected.csv")).unwrap()
    );
    // a format this build does not know is refused by name
    let mut future = bytes.clone();
    future[8..12].copy_from_slice(&8u32.to_le_bytes());
    let e = churn::bundle::from_bytes(&future, std::path::Path::new("m.bin")).unwrap_err();
    assert!(e.to_string().contains("format version 8"), "{e}");
    // a bundle from before exploration keeps deciding as it did
    let pb = loaded.bundle.playbook.as_ref().unwrap();
    assert_eq!(pb.file.learning.explore, 0.0);
}

/// A format-6 bundle (before exploration) is today's layout without the playbook's
/// `[learning] explore`: built from a trained bundle by taking those 8 bytes out, it loads as
/// the same model with exploration off.
#[test]
fn a_format_6_bundle_loads_with_exploration_off() {
    use sha2::{Digest, Sha256};
    let mut bundle = churn::bundle::load(&crate::util::trained().join("telco"))
        .unwrap()
        .bundle;
    // a value whose 8 bytes occur once in the payload marks where the field is
    let marker = 0.123_456_789_012_345_f64;
    bundle.playbook.as_mut().unwrap().file.learning.explore = marker;
    let bytes = churn::bundle::to_bytes(&bundle).unwrap();
    assert_eq!(&bytes[8..12], &7u32.to_le_bytes());
    let payload = &bytes[52..];
    let at: Vec<usize> = payload
        .windows(8)
        .enumerate()
        .filter(|(_, w)| *w == marker.to_le_bytes())
        .map(|(i, _)| i)
        .collect();
    assert_eq!(at.len(), 1, "the marker occurs once");
    let mut old = payload[..at[0]].to_vec();
    old.extend_from_slice(&payload[at[0] + 8..]);
    let mut v6 = bytes[..8].to_vec();
    v6.extend_from_slice(&6u32.to_le_bytes());
    v6.extend_from_slice(&(old.len() as u64).to_le_bytes());
    v6.extend_from_slice(&Sha256::digest(&old));
    v6.extend_from_slice(&old);
    let loaded = churn::bundle::from_bytes(&v6, std::path::Path::new("v6.bin")).unwrap();
    bundle.playbook.as_mut().unwrap().file.learning.explore = 0.0;
    assert_eq!(loaded, bundle);
}
