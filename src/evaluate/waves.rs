//! The whole loop over several campaigns with known truth (`churn-train simulate --waves`):
//! score → act → outcomes → evaluate (learned save rates) → uplift models → the next wave,
//! with each wave's decisions measured against the truth at the same contact budget.
//!
//! Each wave draws new customers from the table, scores them with what the earlier waves
//! taught (learned rates in force, uplift models attached), and contacts as the service
//! decides (exploration included). Its offers are then compared with two policies that
//! contact as many treatment-group customers:
//!
//! - **oracle**: the customers and actions with the largest *true* effects;
//! - **risk-ranked**: the riskiest customers, each with the allowed action of the highest
//!   playbook save rate (what a churn score and a rule book do without learning).
//!
//! Saves are expected churners prevented: Σ take-up × true drop in churn probability.

use super::simulate::{simulate, Campaign, Decision, SimConfig};
use super::uplift as up;
use super::{EvalData, EvalError, Period};
use crate::io::RawTable;
use crate::model::uplift::UpliftParams;
use crate::playbook::LearnedRate;
use crate::scoring::Scorer;
use crate::time::DAY_MS;
use serde::Serialize;

/// One wave measured against the truth.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WaveReport {
    /// 1-based.
    pub wave: usize,
    /// Customers scored.
    pub customers: usize,
    /// Treatment-group customers offered an action: the budget every policy gets.
    pub offered: usize,
    /// Offers drawn by exploration.
    pub explored: usize,
    /// Expected churners the offers prevent (true effects × take-up).
    pub saves: f64,
    /// The oracle's saves at the same budget.
    pub oracle_saves: f64,
    /// The risk-ranked policy's saves at the same budget.
    pub risk_saves: f64,
    /// Offers of an action that truly pushes the customer out.
    pub sleeping_dog_offers: usize,
    /// Offers per action, by action id.
    pub offers_by_action: Vec<(String, usize)>,
    /// Save rates learned after this wave (all waves so far).
    pub learned: Vec<LearnedRate>,
    /// Actions whose uplift model is applied after this wave.
    pub uplift_applied: Vec<String>,
    /// Why no uplift model was trained after this wave, if none was.
    pub uplift_note: Option<String>,
}

impl WaveReport {
    /// Saves as a share of the oracle's.
    pub fn of_oracle(&self) -> f64 {
        self.saves / self.oracle_saves.max(f64::MIN_POSITIVE)
    }
}

/// How the loop runs.
#[derive(Debug, Clone)]
pub struct WaveConfig {
    /// Waves to run (at least 1).
    pub waves: usize,
    /// Train uplift models between waves with these parameters (`None`: learned rates only).
    pub uplift: Option<UpliftParams>,
}

/// The most waves one run makes.
pub const MAX_WAVES: usize = 20;

/// Saves of the best `budget` values of `gains` (each customer's gain if offered; only positive
/// gains are taken: no policy offers what it knows would do harm).
fn top_saves(mut gains: Vec<f64>, budget: usize) -> f64 {
    gains.sort_by(|a, b| b.total_cmp(a));
    gains.into_iter().take(budget).filter(|g| *g > 0.0).sum()
}

/// Measure one wave's decisions.
fn measure(wave: usize, decisions: &[Decision]) -> WaveReport {
    let treated: Vec<&Decision> = decisions.iter().filter(|d| d.treated).collect();
    let offers: Vec<(&Decision, usize)> = treated
        .iter()
        .filter_map(|d| d.offered.map(|i| (*d, i)))
        .collect();
    let budget = offers.len();
    let saves = offers.iter().map(|(d, i)| d.take * d.allowed[*i].1).sum();
    let oracle = treated
        .iter()
        .map(|d| d.take * d.allowed.iter().map(|a| a.1).fold(0.0, f64::max))
        .collect();
    // the riskiest first, each with its highest-rated action
    let mut by_risk: Vec<&&Decision> = treated.iter().filter(|d| d.risk_effect.is_some()).collect();
    by_risk.sort_by(|a, b| b.probability.total_cmp(&a.probability));
    let risk_saves = by_risk
        .iter()
        .take(budget)
        .map(|d| d.take * d.risk_effect.unwrap_or(0.0))
        .sum();
    let mut by_action: Vec<(String, usize)> = Vec::new();
    for (d, i) in &offers {
        let id = &d.allowed[*i].0;
        match by_action.iter_mut().find(|x| &x.0 == id) {
            Some(x) => x.1 += 1,
            None => by_action.push((id.clone(), 1)),
        }
    }
    by_action.sort();
    WaveReport {
        wave,
        customers: decisions.len(),
        offered: budget,
        explored: decisions
            .iter()
            .filter(|d| d.explored && d.offered.is_some())
            .count(),
        saves,
        oracle_saves: top_saves(oracle, budget),
        risk_saves,
        sleeping_dog_offers: offers.iter().filter(|(d, i)| d.allowed[*i].1 < 0.0).count(),
        offers_by_action: by_action,
        learned: Vec::new(),
        uplift_applied: Vec::new(),
        uplift_note: None,
    }
}

/// Append campaign `c` to the log `all`.
fn append(all: &mut Campaign, c: Campaign) {
    all.records.extend(c.records);
    all.outcomes.extend(c.outcomes);
    all.decisions.extend(c.decisions);
}

/// Run `cfg.waves` waves of `sim` (customers per wave, effects, take-up; each wave gets its own
/// seed, ids and dates) starting from `scorer`, learning between waves. Returns each wave's
/// report, the log of every wave (what the store would hold) and the scorer as the last wave
/// left it.
pub fn run(
    scorer: &Scorer,
    pool: &RawTable,
    sim: &SimConfig,
    cfg: &WaveConfig,
) -> Result<(Vec<WaveReport>, Campaign, Scorer), EvalError> {
    if !(1..=MAX_WAVES).contains(&cfg.waves) {
        return Err(EvalError::Invalid {
            field: "waves",
            message: format!("expected 1 to {MAX_WAVES} waves, got {}", cfg.waves),
        });
    }
    let mut scorer = scorer.clone();
    let mut all: Option<Campaign> = None;
    let mut reports = Vec::new();
    // a wave starts once every label of the one before has matured
    let gap = i64::from(sim.spread_days.max(1) + sim.horizon_days.max(2) + 1) * DAY_MS;
    for w in 0..cfg.waves {
        let wave = SimConfig {
            seed: sim.seed.wrapping_add(w as u64),
            start_ms: sim.start_ms + w as i64 * gap,
            id_prefix: format!("{}w{}-", sim.id_prefix, w + 1),
            ..sim.clone()
        };
        let c = simulate(&scorer, pool, &wave)?;
        let mut report = measure(w + 1, &c.decisions);
        match &mut all {
            Some(a) => append(a, c),
            None => all = Some(c),
        }
        let log = all.as_ref().expect("a wave ran");
        if w + 1 < cfg.waves {
            learn(
                &mut scorer,
                log,
                wave.start_ms + gap,
                sim.horizon_days,
                cfg,
                &mut report,
            )?;
        }
        reports.push(report);
    }
    Ok((reports, all.expect("a wave ran"), scorer))
}

/// Learn from the log `log` as of `as_of`: the save rates (put in force) and, when asked, the
/// uplift models (attached when any action has enough rows).
fn learn(
    scorer: &mut Scorer,
    log: &Campaign,
    as_of: i64,
    horizon_days: u32,
    cfg: &WaveConfig,
    report: &mut WaveReport,
) -> Result<(), EvalError> {
    let data = EvalData::from_campaign(log);
    let period = Period {
        as_of: Some(as_of),
        horizon_days: Some(horizon_days),
        ..Period::default()
    };
    let rates = {
        let opt = super::options(&scorer.bundle.name, Some(&scorer.bundle), &period);
        super::evaluate(&data, &opt)?.learned_rates
    };
    if let Some(pb) = scorer.bundle.playbook.as_mut() {
        pb.set_learned(&rates);
    }
    report.learned = rates;
    let Some(params) = &cfg.uplift else {
        return Ok(());
    };
    let rows = up::collect(
        &data,
        &scorer.bundle.encoder,
        i64::from(horizon_days) * DAY_MS,
        as_of,
        &mut |i| Some(log.records[i].input.clone()),
    );
    match up::train(&rows, &scorer.bundle, &scorer.version, params) {
        Ok((u, card, _)) => {
            report.uplift_applied = card
                .actions
                .iter()
                .filter(|a| a.applied)
                .map(|a| a.action.clone())
                .collect();
            scorer.uplift = Some((std::sync::Arc::new(u), format!("wave-{}", report.wave)));
        }
        Err(EvalError::Invalid {
            field: "rows",
            message,
        }) => report.uplift_note = Some(message),
        Err(e) => return Err(e),
    }
    Ok(())
}

/// The reports as text, one line per wave.
pub fn summary(reports: &[WaveReport]) -> String {
    use std::fmt::Write;
    let mut s = String::from(
        "wave  customers  offered  explored    saves  oracle  risk-ranked  of oracle  sleeping-dog offers  offers by action\n",
    );
    for r in reports {
        let actions: Vec<String> = r
            .offers_by_action
            .iter()
            .map(|(a, n)| format!("{a} {n}"))
            .collect();
        let _ = writeln!(
            s,
            "{:>4}  {:>9}  {:>7}  {:>8}  {:>7.1}  {:>6.1}  {:>11.1}  {:>8.1}%  {:>19}  {}",
            r.wave,
            r.customers,
            r.offered,
            r.explored,
            r.saves,
            r.oracle_saves,
            r.risk_saves,
            100.0 * r.of_oracle(),
            r.sleeping_dog_offers,
            actions.join(", ")
        );
        for l in r.learned.iter().filter(|l| l.applied || l.harms) {
            let _ = writeln!(
                s,
                "        learned {} {:.3} [{:.3}, {:.3}]{}",
                l.action,
                l.save_rate,
                l.save_rate_low,
                l.save_rate_high,
                if l.harms { " harms" } else { "" }
            );
        }
        if !r.uplift_applied.is_empty() {
            let _ = writeln!(
                s,
                "        uplift models applied: {}",
                r.uplift_applied.join(", ")
            );
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(p: f64, allowed: &[f64], offered: Option<usize>) -> Decision {
        Decision {
            probability: p,
            take: 1.0,
            treated: true,
            allowed: allowed
                .iter()
                .enumerate()
                .map(|(i, e)| (format!("A{i}"), *e))
                .collect(),
            offered,
            explored: false,
            risk_effect: allowed.first().copied(),
        }
    }

    #[test]
    fn policies_are_compared_at_the_same_budget() {
        let ds = [
            d(0.9, &[0.0], Some(0)),   // a lost cause, offered
            d(0.5, &[0.2, 0.3], None), // the oracle's best
            d(0.3, &[-0.1], Some(0)),  // a sleeping dog, offered
            d(0.2, &[0.1], None),      // the oracle's second
        ];
        let r = measure(1, &ds);
        assert_eq!(r.offered, 2);
        assert!((r.saves - -0.1).abs() < 1e-12);
        assert!((r.oracle_saves - 0.4).abs() < 1e-12);
        // the riskiest two: the lost cause (0) and A0 of the second (0.2)
        assert!((r.risk_saves - 0.2).abs() < 1e-12);
        assert_eq!(r.sleeping_dog_offers, 1);
        assert_eq!(r.offers_by_action, vec![("A0".to_string(), 2)]);
    }
}
