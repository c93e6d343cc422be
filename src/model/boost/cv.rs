//! Cross-validation of boosted candidates (depth × learning rate), each early-stopped.

use super::{fit, sigmoid, BoostParams};
use crate::features::Matrix;
use crate::model::bins::Binned;
use crate::model::metrics;
use crate::model::parallel_map;
use crate::model::ModelError;
use serde::{Deserialize, Serialize};

/// One candidate of the boosted cross-validation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BoostCvRow {
    /// Tree depth.
    pub max_depth: usize,
    /// Learning rate.
    pub learning_rate: f64,
    /// Mean of the folds' early-stopped round counts.
    pub rounds: usize,
    /// Mean validation log loss over folds (uncalibrated σ(margin)).
    pub log_loss: f64,
    /// Standard deviation of the fold log losses.
    pub log_loss_std: f64,
    /// Mean validation ROC-AUC.
    pub roc_auc: f64,
    /// Mean validation Brier score.
    pub brier: f64,
}

/// Result of [`cross_validate`].
#[derive(Debug, Clone)]
pub struct BoostCv {
    /// One row per candidate, in grid order.
    pub table: Vec<BoostCvRow>,
    /// The best candidate, with `rounds` set to its mean early-stopped round count.
    pub best: BoostParams,
    /// Out-of-fold σ(margin) of the best candidate for every row of `rows` (NaN for rows that
    /// were never in a validation fold).
    pub oof: Vec<f64>,
    /// Mean validation log loss of the best candidate.
    pub log_loss: f64,
}

/// Cross-validate every candidate of `grid` on the folds of `rows`; each fit stops early on a
/// seeded 10% of its training folds, then scores its held-out fold. Only the folds listed in
/// `eval_folds` are held out (all `k` for full cross-validation).
#[allow(clippy::too_many_arguments)]
pub fn cross_validate(
    b: &Binned,
    x: &Matrix,
    y: &[bool],
    w: &[f64],
    rows: &[usize],
    folds: &[usize],
    eval_folds: &[usize],
    grid: &[BoostParams],
    threads: usize,
    tick: &(dyn Fn() + Sync),
) -> Result<BoostCv, ModelError> {
    if grid.is_empty() || eval_folds.is_empty() {
        return Err(ModelError::Config(
            "the boosted search grid is empty".into(),
        ));
    }
    let nf = eval_folds.len();
    let tasks = grid.len() * nf;
    // fewer tasks than threads: the rest go into each fit's histograms
    let inner = (threads / tasks.max(1)).max(1);
    let results = parallel_map(
        tasks,
        threads,
        |t| -> Result<(Vec<(usize, f64)>, usize), ModelError> {
            let (c, fold) = (t / nf, eval_folds[t % nf]);
            let train: Vec<usize> = rows.iter().copied().filter(|&r| folds[r] != fold).collect();
            let ty: Vec<bool> = train.iter().map(|&r| y[r]).collect();
            let (fit_i, stop_i) =
                crate::util::stratified_split(&ty, 0.1, grid[c].seed ^ (fold as u64 + 1));
            let fit_rows: Vec<usize> = fit_i.iter().map(|&i| train[i]).collect();
            let stop_rows: Vec<usize> = stop_i.iter().map(|&i| train[i]).collect();
            let (e, rep) = fit(b, y, w, &fit_rows, &stop_rows, &grid[c], inner)?;
            let out = rows
                .iter()
                .copied()
                .filter(|&r| folds[r] == fold)
                .map(|r| (r, sigmoid(e.margin_of_matrix(x, r))))
                .collect();
            Ok((out, rep.rounds))
        },
        tick,
    );
    let mut table = Vec::with_capacity(grid.len());
    let mut oofs: Vec<Vec<f64>> = Vec::with_capacity(grid.len());
    let mut per_task = results.into_iter();
    for p in grid {
        let mut oof = vec![f64::NAN; y.len()];
        let (mut lls, mut auc, mut br, mut rounds) = (Vec::new(), 0.0, 0.0, 0usize);
        for _ in 0..nf {
            let (pred, r) = per_task.next().expect("one result per task")?;
            let pp: Vec<f64> = pred.iter().map(|v| v.1).collect();
            let py: Vec<bool> = pred.iter().map(|v| y[v.0]).collect();
            lls.push(metrics::log_loss(&pp, &py));
            auc += metrics::roc_auc(&pp, &py);
            br += metrics::brier(&pp, &py);
            rounds += r;
            for (r, v) in pred {
                oof[r] = v;
            }
        }
        let m = nf as f64;
        let mean = lls.iter().sum::<f64>() / m;
        let sd = (lls.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / m).sqrt();
        table.push(BoostCvRow {
            max_depth: p.max_depth,
            learning_rate: p.learning_rate,
            rounds: rounds.div_ceil(nf).max(1),
            log_loss: mean,
            log_loss_std: sd,
            roc_auc: auc / m,
            brier: br / m,
        });
        oofs.push(oof);
    }
    // lowest log loss; ties: the earlier (simpler) candidate
    let bi = (0..table.len())
        .min_by(|&a, &b| {
            table[a]
                .log_loss
                .total_cmp(&table[b].log_loss)
                .then(a.cmp(&b))
        })
        .expect("non-empty grid");
    Ok(BoostCv {
        best: BoostParams {
            rounds: table[bi].rounds,
            early_stopping: 0,
            ..grid[bi]
        },
        log_loss: table[bi].log_loss,
        oof: oofs.swap_remove(bi),
        table,
    })
}
