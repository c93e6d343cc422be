//! Boosted models' explanations (issue 35): the per-leaf tables the server and `churn-score`
//! use give the Shapley values of the recursive TreeSHAP algorithm, and both agree with
//! LightGBM's `pred_contrib` on the same trees (written in LightGBM's model format) on Telco
//! (the default model and 300 rounds of depth 6) and Bank.
//!
//! LightGBM runs through its Python package: `CHURN_LIGHTGBM_PYTHON` names a Python that imports
//! `lightgbm` (`.ci/run` installs one); without it the comparison is skipped, unless
//! `CHURN_REQUIRE_LIGHTGBM=1`.

use crate::export_boosted::{boosted_example, rounds_300};
use crate::export_sql::{bank_model, engine_python};
use crate::util::*;
use churn::model::boost::{BoostTree, Ensemble};
use churn::model::shap::{shap_values, ShapTables};
use churn::scoring::Scorer;
use std::fmt::Write as _;
use std::path::Path;
use std::process::{Command, Stdio};

/// Encoded rows of `data` (every `step`-th row) for the model in `model`.
fn encoded(model: &Path, data: &Path, step: usize) -> (Scorer, Vec<Vec<f64>>) {
    let scorer = Scorer::new(churn::bundle::load(model).unwrap());
    let t = churn::io::read_table(data, None).unwrap();
    let bind = scorer.bind(&t).unwrap();
    let rows = (0..t.nrows)
        .step_by(step)
        .map(|r| {
            let mut w = Vec::new();
            scorer
                .encode(|i| Some(t.columns[bind[i]].data.get(r)), &mut w)
                .unwrap()
        })
        .collect();
    (scorer, rows)
}

/// One tree in LightGBM's text model format (numeric `<=` splits, no missing-value handling:
/// encoded rows carry no NaN); node counts are the trees' covers (row counts), which LightGBM's
/// TreeSHAP uses as we do.
fn lightgbm_tree(out: &mut String, index: usize, t: &BoostTree) {
    // our node → LightGBM internal index or leaf index
    let mut internal = vec![usize::MAX; t.nodes.len()];
    let mut leaf = vec![usize::MAX; t.nodes.len()];
    let (mut ni, mut nl) = (0, 0);
    for (i, n) in t.nodes.iter().enumerate() {
        if n.is_leaf() {
            leaf[i] = nl;
            nl += 1;
        } else {
            internal[i] = ni;
            ni += 1;
        }
    }
    let child = |c: u32| {
        let c = c as usize;
        if t.nodes[c].is_leaf() {
            -(leaf[c] as i64) - 1
        } else {
            internal[c] as i64
        }
    };
    let join = |v: Vec<String>| v.join(" ");
    let splits: Vec<_> = t.nodes.iter().filter(|n| !n.is_leaf()).collect();
    let leaves: Vec<_> = t.nodes.iter().filter(|n| n.is_leaf()).collect();
    assert!(
        splits
            .iter()
            .chain(&leaves)
            .all(|n| n.cover.fract() == 0.0 && n.cover >= 0.0),
        "covers are row counts"
    );
    writeln!(out, "Tree={index}\nnum_leaves={nl}\nnum_cat=0").unwrap();
    if ni > 0 {
        let f = |g: &dyn Fn(&churn::model::boost::BoostNode) -> String| {
            join(splits.iter().map(|n| g(n)).collect())
        };
        writeln!(out, "split_feature={}", f(&|n| n.feature.to_string())).unwrap();
        writeln!(out, "split_gain={}", f(&|_| "1".into())).unwrap();
        writeln!(out, "threshold={}", f(&|n| format!("{:?}", n.threshold))).unwrap();
        writeln!(out, "decision_type={}", f(&|_| "0".into())).unwrap();
        writeln!(out, "left_child={}", f(&|n| child(n.left).to_string())).unwrap();
        writeln!(out, "right_child={}", f(&|n| child(n.right).to_string())).unwrap();
    }
    let l = |g: &dyn Fn(&churn::model::boost::BoostNode) -> String| {
        join(leaves.iter().map(|n| g(n)).collect())
    };
    writeln!(out, "leaf_value={}", l(&|n| format!("{:?}", n.value))).unwrap();
    if ni > 0 {
        writeln!(out, "leaf_weight={}", l(&|n| format!("{}", n.cover))).unwrap();
        writeln!(out, "leaf_count={}", l(&|n| format!("{}", n.cover))).unwrap();
        let f = |g: &dyn Fn(&churn::model::boost::BoostNode) -> String| {
            join(splits.iter().map(|n| g(n)).collect())
        };
        writeln!(out, "internal_value={}", f(&|_| "0".into())).unwrap();
        writeln!(out, "internal_weight={}", f(&|n| format!("{}", n.cover))).unwrap();
        writeln!(out, "internal_count={}", f(&|n| format!("{}", n.cover))).unwrap();
    }
    writeln!(out, "is_linear=0\nshrinkage=1\n\n").unwrap();
}

/// `e` as a LightGBM model over `ncols` encoded columns (its base margin left out: LightGBM
/// adds no constant, and a constant does not change Shapley values).
fn lightgbm_model(e: &Ensemble, ncols: usize) -> String {
    let names: Vec<String> = (0..ncols).map(|c| format!("c{c}")).collect();
    let mut out = format!(
        "tree\nversion=v4\nnum_class=1\nnum_tree_per_iteration=1\nlabel_index=0\n\
         max_feature_idx={}\nobjective=binary sigmoid:1\nfeature_names={}\nfeature_infos={}\n\n",
        ncols - 1,
        names.join(" "),
        vec!["none"; ncols].join(" ")
    );
    for (i, t) in e.trees.iter().enumerate() {
        lightgbm_tree(&mut out, i, t);
    }
    out.push_str("end of trees\n");
    out
}

const LIGHTGBM_SCRIPT: &str = r#"
import sys, numpy as np, lightgbm as lgb
model, rows, out = sys.argv[1:4]
b = lgb.Booster(model_file=model)
X = np.loadtxt(rows, delimiter=',', ndmin=2)
raw = b.predict(X, raw_score=True)
contrib = b.predict(X, pred_contrib=True)
np.savetxt(out, np.column_stack([raw, contrib]), delimiter=',', fmt='%.17g')
"#;

/// LightGBM's raw score and `pred_contrib` (one column per feature, then the expected value)
/// for `rows`, or `None` when no LightGBM is configured.
fn lightgbm_contrib(dir: &Path, e: &Ensemble, rows: &[Vec<f64>]) -> Option<Vec<Vec<f64>>> {
    let python = engine_python(
        "CHURN_LIGHTGBM_PYTHON",
        "CHURN_REQUIRE_LIGHTGBM",
        "lightgbm",
    )?;
    let ncols = rows[0].len();
    let model = write(dir, "model.txt", &lightgbm_model(e, ncols));
    let mut csv = String::new();
    for r in rows {
        assert!(r.iter().all(|v| v.is_finite()), "encoded rows are finite");
        let cells: Vec<String> = r.iter().map(|v| format!("{v:?}")).collect();
        csv.push_str(&cells.join(","));
        csv.push('\n');
    }
    let data = write(dir, "rows.csv", &csv);
    let out = dir.join("contrib.csv");
    let o = Command::new(python)
        .arg("-c")
        .arg(LIGHTGBM_SCRIPT)
        .args([&model, &data, &out])
        .stdin(Stdio::null())
        .output()
        .expect("python runs");
    assert!(
        o.status.success(),
        "LightGBM failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let text = std::fs::read_to_string(&out).unwrap();
    Some(
        text.lines()
            .map(|l| l.split(',').map(|c| c.parse().unwrap()).collect())
            .collect(),
    )
}

/// Largest absolute difference, relative to 1 or the larger magnitude.
fn close(a: f64, b: f64, tol: f64) -> bool {
    (a - b).abs() <= tol * a.abs().max(b.abs()).max(1.0)
}

/// The tables against the recursion on every row, and both against LightGBM.
fn check_model(name: &str, model: &Path, data: &Path, step: usize) {
    let (scorer, rows) = encoded(model, data, step);
    let b = scorer.bundle.model.boosted_trees().expect("boosted");
    let e = &b.ensemble;
    let ncols = rows[0].len();
    let tables = ShapTables::new(e);
    assert_eq!(
        tables.tabulated(),
        e.trees.len(),
        "{name}: every tree tabulated"
    );
    let expected = e.expected_margin();
    assert_eq!(tables.expected_margin().to_bits(), expected.to_bits());
    let mut ours = Vec::with_capacity(rows.len());
    for (r, row) in rows.iter().enumerate() {
        let fast = tables.shap_values(e, row, ncols);
        let slow = shap_values(e, row, ncols);
        for (c, (a, s)) in fast.iter().zip(&slow).enumerate() {
            assert!(
                close(*a, *s, 1e-12),
                "{name} row {r} column {c}: tables {a} vs recursion {s}"
            );
        }
        // local accuracy: the values add up to the margin
        let sum: f64 = fast.iter().sum();
        assert!(
            close(expected + sum, e.margin(row), 1e-10),
            "{name} row {r}: sum"
        );
        ours.push(fast);
    }
    let dir = tempfile::tempdir().unwrap();
    let Some(lgb) = lightgbm_contrib(dir.path(), e, &rows) else {
        return;
    };
    assert_eq!(lgb.len(), rows.len());
    let mut worst = 0.0f64;
    for (r, (l, phi)) in lgb.iter().zip(&ours).enumerate() {
        assert_eq!(
            l.len(),
            ncols + 2,
            "{name}: raw score, {ncols} contributions, bias"
        );
        // the conversion is right: LightGBM's raw score is our margin without its base
        assert!(
            close(l[0] + e.base_margin, e.margin(&rows[r]), 1e-10),
            "{name} row {r}: LightGBM raw score {} vs margin {}",
            l[0] + e.base_margin,
            e.margin(&rows[r])
        );
        assert!(
            close(l[ncols + 1] + e.base_margin, expected, 1e-10),
            "{name}: bias"
        );
        for c in 0..ncols {
            worst = worst.max((l[c + 1] - phi[c]).abs());
            assert!(
                close(l[c + 1], phi[c], 1e-12),
                "{name} row {r} column {c}: LightGBM {} vs ours {}",
                l[c + 1],
                phi[c]
            );
        }
    }
    eprintln!(
        "{name}: {} rows × {ncols} columns, {} trees: largest |LightGBM − ours| = {worst:.1e}",
        rows.len(),
        e.trees.len()
    );
}

#[test]
fn telco_default_model_shap_matches_the_recursion_and_lightgbm() {
    check_model("telco default", &boosted_example(), &telco(), 1);
}

#[test]
fn telco_300_rounds_shap_matches_the_recursion_and_lightgbm() {
    check_model("telco 300x6", &rounds_300(), &telco(), 7);
}

#[test]
fn bank_shap_matches_the_recursion_and_lightgbm() {
    let dir = tempfile::tempdir().unwrap();
    let Some((data, model)) = bank_model(dir.path(), &["--model", "boosted"]) else {
        return;
    };
    check_model("bank", &model, &data, 1);
}
