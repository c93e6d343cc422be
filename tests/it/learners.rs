//! The histogram learner against the references: linfa-trees (split by split) and our exact CART
//! (whole trees), plus determinism across thread counts and quality on the synthetic benchmark data.

use crate::util::pruned_structure;
use churn::features::{Encoder, Matrix};
use churn::model::metrics::roc_auc;
use churn::model::tree::{
    learner_by_name, CartLearner, Learner, LinfaLearner, Prepared, Structure, Tree, TreeParams,
    LEAF,
};
use churn::synth::{customer_data, SynthSpec};
use churn::util::Rng;

/// Integer features with 3..=12 distinct values and a nonlinear noisy rule.
fn few_distinct(n: usize, seed: u64) -> (Matrix, Vec<bool>) {
    let mut rng = Rng::new(seed);
    let levels = [3, 5, 7, 12, 4, 9];
    let mut cols: Vec<Vec<f64>> = vec![Vec::with_capacity(n); levels.len()];
    let mut y = Vec::with_capacity(n);
    for _ in 0..n {
        let v: Vec<f64> = levels.iter().map(|&l| rng.below(l) as f64).collect();
        let z = 0.9 * v[0] - 0.4 * v[1]
            + if v[2] > 4.0 { 1.2 } else { 0.0 }
            + 0.15 * v[3] * (v[4] - 1.5)
            - 1.0;
        y.push(rng.uniform() < 1.0 / (1.0 + (-z).exp()));
        for (c, x) in cols.iter_mut().zip(v) {
            c.push(x);
        }
    }
    let x = Matrix {
        nrows: n,
        ncols: levels.len(),
        data: cols.concat(),
    };
    (x, y)
}

fn grow(
    learner: &dyn Learner,
    x: &Matrix,
    y: &[bool],
    rows: &[usize],
    p: &TreeParams,
) -> Structure {
    let w = vec![1.0; y.len()];
    Prepared::new(learner, x, rows, 1)
        .unwrap()
        .structure(y, &w, rows, p, 1)
        .unwrap()
}

/// Rows of `rows` reaching each node of `s`.
fn node_rows(s: &Structure, x: &Matrix, rows: &[usize]) -> Vec<Vec<usize>> {
    let mut out = vec![Vec::new(); s.len()];
    for &r in rows {
        let mut i = 0usize;
        loop {
            out[i].push(r);
            let (f, t, l, rt, _) = s[i];
            if l == LEAF {
                break;
            }
            i = if x.get(r, f as usize) <= t {
                l as usize
            } else {
                rt as usize
            };
        }
    }
    out
}

#[test]
fn hist_chooses_linfas_split_at_every_node_on_few_distinct_values() {
    let hist = learner_by_name("hist").unwrap();
    let (x, y) = few_distinct(4000, 11);
    let rows: Vec<usize> = (0..x.nrows).collect();
    let p = TreeParams {
        max_depth: 5,
        min_samples_leaf: 10,
        ..TreeParams::default()
    };
    let ours = grow(hist, &x, &y, &rows, &p);
    let internal = ours.iter().filter(|n| n.2 != LEAF).count();
    assert!(internal >= 15, "a tree worth comparing ({internal} splits)");
    let per_node = node_rows(&ours, &x, &rows);
    let stump = TreeParams { max_depth: 1, ..p };
    let mut compared = 0;
    for (i, node) in ours.iter().enumerate() {
        if node.2 == LEAF {
            continue;
        }
        // linfa on exactly this node's rows, one level: its best split of that node. (Fitting the
        // whole tree in linfa would skip candidates below the root — its global-sort quirk.)
        let sub = x.select_rows(&per_node[i]);
        let sy: Vec<bool> = per_node[i].iter().map(|&r| y[r]).collect();
        let srows: Vec<usize> = (0..sub.nrows).collect();
        let w = vec![1.0; sub.nrows];
        let fitted = LinfaLearner::fit_linfa(&sub, &sy, &w, &srows, &stump).unwrap();
        // `split()` survives linfa's pruning of same-class children
        let (f, t, decrease) = fitted.root_node().split();
        assert!(decrease > 0.0, "node {i}: linfa finds a split too");
        assert_eq!(
            (f as u32, t),
            (node.0, node.1),
            "node {i} ({} rows): linfa splits on (feature, threshold) {:?}, hist on {:?}",
            sub.nrows,
            (f, t),
            (node.0, node.1)
        );
        compared += 1;
    }
    assert_eq!(compared, internal);
}

#[test]
fn hist_grows_exact_carts_tree_when_every_value_has_its_own_bin() {
    let hist = learner_by_name("hist").unwrap();
    let (x, y) = few_distinct(6000, 3);
    let rows: Vec<usize> = (0..x.nrows).filter(|r| r % 7 != 0).collect();
    for (depth, leaf) in [(3, 1), (6, 5), (10, 20)] {
        let p = TreeParams {
            max_depth: depth,
            min_samples_leaf: leaf,
            ..TreeParams::default()
        };
        let a = grow(hist, &x, &y, &rows, &p);
        let b = grow(&CartLearner, &x, &y, &rows, &p);
        assert_eq!(a, b, "depth {depth}, leaf {leaf}");
    }
}

fn synth_matrix(rows: usize, seed: u64) -> (Matrix, Vec<bool>) {
    synth_matrix_shaped(rows, 14, 4, seed)
}

fn synth_matrix_shaped(
    rows: usize,
    numeric: usize,
    categorical: usize,
    seed: u64,
) -> (Matrix, Vec<bool>) {
    let data = customer_data(&SynthSpec {
        rows,
        numeric,
        categorical,
        seed,
    })
    .unwrap();
    let all: Vec<usize> = (0..data.nrows()).collect();
    let enc = Encoder::fit(&data, &all, 10);
    (enc.transform(&data, &all).unwrap(), data.label.clone())
}

#[test]
fn threads_do_not_change_the_tree() {
    let hist = learner_by_name("hist").unwrap();
    let (x, y) = synth_matrix(120_000, 5);
    let rows: Vec<usize> = (0..x.nrows).collect();
    let w = vec![1.0; rows.len()];
    let p = TreeParams {
        max_depth: 8,
        min_samples_leaf: 20,
        ..TreeParams::default()
    };
    let one = Prepared::new(hist, &x, &rows, 1).unwrap();
    let two = Prepared::new(hist, &x, &rows, 2).unwrap();
    let a = one.structure(&y, &w, &rows, &p, 1).unwrap();
    let b = two.structure(&y, &w, &rows, &p, 2).unwrap();
    assert!(a.len() > 100);
    assert_eq!(a, b);
}

#[test]
fn hist_and_linfa_reach_the_same_holdout_auc_on_the_benchmark_data() {
    // benchmark shape (20 numeric columns), train and holdout drawn from the same rule
    let (mut x, y) = synth_matrix_shaped(30_000, 20, 0, 42);
    let n = x.nrows;
    // Break ties (jitter below the integer spacing, order kept): with repeated values linfa-trees
    // skips split candidates below the root — a value group is only considered when its last row
    // in the *global* sort order sits in the node, and values within 1e-5 count as equal. On the
    // raw benchmark data that costs linfa ~0.02 AUC at this size (0.757 vs 0.782).
    let mut rng = Rng::new(9);
    for v in x.data.iter_mut() {
        *v += rng.uniform() * 0.4;
    }
    let train: Vec<usize> = (0..n).filter(|r| r % 4 != 0).collect();
    let test: Vec<usize> = (0..n).filter(|r| r % 4 == 0).collect();
    let w = vec![1.0; n];
    let p = TreeParams {
        max_depth: 6,
        min_samples_leaf: 20,
        ..TreeParams::default()
    };
    let auc = |s: Structure| {
        let t = Tree::compile(s, "t", &x, &y, &w, &train, p.criterion, 1.0).unwrap();
        let scores: Vec<f64> = test
            .iter()
            .map(|&r| t.nodes[t.leaf_of_matrix(&x, r)].value)
            .collect();
        let labels: Vec<bool> = test.iter().map(|&r| y[r]).collect();
        roc_auc(&scores, &labels)
    };
    let hist = grow(learner_by_name("hist").unwrap(), &x, &y, &train, &p);
    let linfa = grow(&LinfaLearner, &x, &y, &train, &p);
    // linfa merges sibling leaves that predict the same class; compare at equal resolution
    let (a_hist, a_linfa) = (auc(pruned_structure(&hist)), auc(linfa));
    assert!(
        (a_hist - a_linfa).abs() <= 0.002,
        "holdout AUC hist (pruned like linfa) {a_hist:.4} vs linfa {a_linfa:.4}"
    );
    // and unpruned, hist keeps the resolution linfa throws away
    let a_full = auc(hist);
    assert!(a_full >= a_hist - 1e-9, "{a_full} < {a_hist}");
}
