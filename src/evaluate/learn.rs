//! What the campaigns teach about each action: the effect on the customers actually contacted
//! and the save rate ranking uses, with honest uncertainty (see ARCHITECTURE.md, "Learned save
//! rates").
//!
//! Contacting is selective (agents reach the riskiest customers first), so the contacted are
//! not like the control arm and their difference (the per-protocol lift) is biased. Every
//! customer the action was recommended to, contacted or not, is like the control arm: their
//! difference is the intention-to-treat effect, and divided by the take-up it is the effect on
//! the contacted (the complier average effect; control customers are never contacted). The
//! contacted customers' churn without the action is what the control arm's churn leaves once
//! the customers not contacted are taken out: `(control − (1 − take-up) × not contacted) ÷
//! take-up`; the save rate is the effect over it.
//!
//! Uncertainty: each arm's churn rate and the take-up get a Jeffreys Beta posterior (the
//! counts are independent binomials), and [`DRAWS`] joint draws of the four give the effect's
//! and the save rate's distribution, the control arm's uncertainty included. The save rate
//! then meets the playbook's belief as a normal prior (`[learning] prior_strength`), and is
//! used in ranking when both arms are large enough and the result is tight enough.

use super::lift::{ActionLift, Arm};
use super::stats::{quantile_sorted, Estimate, Z95};
use crate::playbook::{LearnedRate, LearningConfig, Playbook, MAX_HALF_WIDTH};
use rand_distr::{Beta, Distribution};
use rand_xoshiro::rand_core::SeedableRng;
use rand_xoshiro::Xoshiro256PlusPlus;

/// Joint posterior draws per action (the 2.5% and 97.5% quantiles of 10,000 draws move by
/// about 0.3% of the interval's width between seeds).
pub const DRAWS: usize = 10_000;

/// Seed of the draws: a fixed one, so the same arms learn the same rates.
const SEED: u64 = 0x5eed_f1ea;

/// One learned rate per playbook action measured overall (both arms non-empty).
pub(crate) fn learn(actions: &[ActionLift], playbook: Option<&Playbook>) -> Vec<LearnedRate> {
    let Some(pb) = playbook else {
        return Vec::new();
    };
    actions
        .iter()
        .filter(|l| l.segment.is_none() && l.action != "*")
        .filter(|l| l.contacted.n > 0 && l.control.n > 0)
        .filter_map(|l| {
            let a = pb.file.actions.iter().find(|a| a.id == l.action)?;
            Some(learned_rate(
                &a.id,
                a.save_rate,
                &pb.file.learning,
                &Arms {
                    contacted: l.contacted,
                    not_contacted: l.not_contacted,
                    control: l.control,
                },
            ))
        })
        .collect()
}

/// The matured arms of one action.
#[derive(Debug, Clone, Copy)]
pub struct Arms {
    /// Recommended and contacted.
    pub contacted: Arm,
    /// Recommended, not contacted.
    pub not_contacted: Arm,
    /// Control customers who would have been offered the action.
    pub control: Arm,
}

/// Jeffreys posterior of an arm's churn rate.
fn churn_posterior(a: &Arm) -> Beta<f64> {
    let churned = a.churned as f64;
    Beta::new(churned + 0.5, a.n as f64 - churned + 0.5).expect("positive Beta parameters")
}

/// Median and 95% interval of draws `xs`.
fn estimate(mut xs: Vec<f64>) -> Estimate {
    xs.sort_by(f64::total_cmp);
    Estimate {
        value: quantile_sorted(&xs, 0.5),
        low: quantile_sorted(&xs, 0.025),
        high: quantile_sorted(&xs, 0.975),
    }
}

/// The effect on the contacted (churn points prevented per contact) and the save rate, from
/// the arms alone: posterior medians and 95% intervals. The save rate is `None` when the
/// contacted customers' churn without the action is not credibly above 0 (more than 2.5% of the
/// draws put it at or below 0).
pub fn complier_effect(arms: &Arms) -> Option<(Estimate, Option<Estimate>, f64)> {
    let (t, u, k) = (&arms.contacted, &arms.not_contacted, &arms.control);
    if t.n == 0 || k.n == 0 {
        return None;
    }
    let take = Beta::new(t.n as f64 + 1.0, u.n as f64 + 1.0).expect("positive Beta parameters");
    let (pt, pu, pk) = (churn_posterior(t), churn_posterior(u), churn_posterior(k));
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(SEED);
    let (mut effects, mut rates) = (Vec::with_capacity(DRAWS), Vec::with_capacity(DRAWS));
    let mut untreated = 0.0;
    for _ in 0..DRAWS {
        let c: f64 = take.sample(&mut rng);
        let (rt, ru, rk): (f64, f64, f64) = (
            pt.sample(&mut rng),
            pu.sample(&mut rng),
            pk.sample(&mut rng),
        );
        // the contacted customers' churn without the action
        let y0 = (rk - (1.0 - c) * ru) / c;
        effects.push(y0 - rt);
        untreated += y0;
        if y0 > 0.0 {
            rates.push((y0 - rt) / y0);
        }
    }
    let rate = (rates.len() as f64 >= 0.975 * DRAWS as f64).then(|| estimate(rates));
    Some((estimate(effects), rate, untreated / DRAWS as f64))
}

/// An action's learned save rate: the arms' save rate (see [`complier_effect`]) combined with
/// the playbook's `prior_rate` as a normal prior whose spread is that of a rate measured
/// perfectly on `prior_strength` would-be churners (the rate clamped to 0.05..0.95 for the
/// spread, so a playbook rate of 0 is a belief, not a certainty).
pub fn learned_rate(
    action: &str,
    prior_rate: f64,
    cfg: &LearningConfig,
    arms: &Arms,
) -> LearnedRate {
    let measured = complier_effect(arms);
    let prior_var = crate::playbook::prior_variance(prior_rate, cfg.prior_strength);
    let data = measured
        .and_then(|m| m.1)
        .map(|r| (r.value, ((r.high - r.low) / (2.0 * Z95)).powi(2)));
    let (mean, var) = match (prior_var, data) {
        (Some(pv), Some((m, dv))) if dv > 0.0 => {
            let w = 1.0 / pv + 1.0 / dv;
            ((prior_rate / pv + m / dv) / w, 1.0 / w)
        }
        (None, Some((m, dv))) => (m, dv),
        (Some(pv), _) => (prior_rate, pv),
        (None, None) => (prior_rate, f64::INFINITY),
    };
    let half = Z95 * var.sqrt();
    let (t, k_arm) = (&arms.contacted, &arms.control);
    let take_up = {
        let recommended = t.n + arms.not_contacted.n;
        (recommended > 0).then(|| t.n as f64 / recommended as f64)
    };
    let effect = measured.map(|m| m.0);
    LearnedRate {
        action: action.to_string(),
        save_rate: mean,
        save_rate_low: mean - half,
        save_rate_high: mean + half,
        prior_rate,
        effect,
        take_up,
        evidence: measured.map_or(0.0, |m| t.n as f64 * m.2.max(0.0)),
        treated: t.n,
        control: k_arm.n,
        applied: t.n >= cfg.min_arm
            && k_arm.n >= cfg.min_arm
            && data.is_some()
            && half <= MAX_HALF_WIDTH,
        harms: effect.is_some_and(|e| e.high < 0.0)
            && t.n >= MIN_HARM_ARM
            && k_arm.n >= MIN_HARM_ARM,
    }
}

/// Customers each arm needs before an action can be flagged as harmful. A flagged action is
/// never offered again, not even by exploration, so the flag must not rest on a handful of
/// customers: exploring a rarely ranked action gives it a few control customers at first (5
/// control customers with one churner, against 54 contacted of the riskiest kind, put a true
/// effect of 0 at −49 points [−68, −5]).
pub const MIN_HARM_ARM: u64 = 30;

#[cfg(test)]
mod tests {
    use super::*;

    fn arm(n: u64, churned: u64) -> Arm {
        Arm {
            n,
            churned,
            pending: 0,
        }
    }

    #[test]
    fn the_prior_dominates_little_evidence_and_yields_to_much() {
        let cfg = LearningConfig::default();
        // no arms: the prior, not applied
        let none = learned_rate(
            "A",
            0.2,
            &cfg,
            &Arms {
                contacted: arm(0, 0),
                not_contacted: arm(0, 0),
                control: arm(0, 0),
            },
        );
        assert_eq!(none.save_rate, 0.2);
        assert!(none.effect.is_none() && !none.applied && !none.harms);
        // everyone contacted, control churns at 40%, the contacted at 28%: 30% saved
        let much = learned_rate(
            "A",
            0.05,
            &cfg,
            &Arms {
                contacted: arm(20_000, 5_600),
                not_contacted: arm(0, 0),
                control: arm(20_000, 8_000),
            },
        );
        assert!((much.save_rate - 0.3).abs() < 0.01, "{much:?}");
        assert!(much.applied, "{much:?}");
        let e = much.effect.unwrap();
        assert!(
            (e.value - 0.12).abs() < 0.003 && e.low < 0.12 && 0.12 < e.high,
            "{e:?}"
        );
        // a little evidence: between prior and data, not applied
        let little = learned_rate(
            "A",
            0.05,
            &cfg,
            &Arms {
                contacted: arm(100, 28),
                not_contacted: arm(0, 0),
                control: arm(100, 40),
            },
        );
        assert!(
            little.save_rate > 0.05 && little.save_rate < 0.3,
            "{little:?}"
        );
        assert!(!little.applied);
    }

    /// Selective take-up: the riskier half (60% churn) is contacted 95% of the time, the
    /// other half (20%) 35% of the time, and the action saves 40% of would-be churners. The
    /// contacted differ from the control arm, yet the complier estimate finds the truth.
    #[test]
    fn take_up_by_risk_does_not_bias_the_effect() {
        let (n, high, low, save) = (100_000.0_f64, 0.6, 0.2, 0.4);
        let (th, tl) = (0.95, 0.35);
        let contacted_n = n / 2.0 * (th + tl);
        let contacted_churn = n / 2.0 * (th * high + tl * low) * (1.0 - save);
        let not_n = n / 2.0 * (2.0 - th - tl);
        let not_churn = n / 2.0 * ((1.0 - th) * high + (1.0 - tl) * low);
        let control_churn = n / 2.0 * (high + low);
        let arms = Arms {
            contacted: arm(contacted_n as u64, contacted_churn as u64),
            not_contacted: arm(not_n as u64, not_churn as u64),
            control: arm(n as u64, control_churn as u64),
        };
        let (effect, rate, _) = complier_effect(&arms).unwrap();
        let y0 = (th * high + tl * low) / (th + tl);
        assert!(
            (effect.value - save * y0).abs() < 0.005,
            "{effect:?} vs {}",
            save * y0
        );
        let rate = rate.unwrap();
        assert!((rate.value - save).abs() < 0.01, "{rate:?}");
        // the per-protocol rate is far off (here 0.26: the contacted are the riskier)
        let per_protocol = 1.0 - (contacted_churn / contacted_n) / (control_churn / n);
        assert!((per_protocol - save).abs() > 0.1, "{per_protocol}");
    }

    #[test]
    fn a_harmful_action_learns_a_negative_rate_and_is_flagged() {
        let cfg = LearningConfig::default();
        let bad = learned_rate(
            "A",
            0.2,
            &cfg,
            &Arms {
                contacted: arm(2_000, 700),
                not_contacted: arm(500, 150),
                control: arm(2_500, 750),
            },
        );
        assert!(bad.harms, "{bad:?}");
        assert!(
            bad.save_rate < 0.0 && bad.effect.unwrap().high < 0.0,
            "{bad:?}"
        );
    }

    #[test]
    fn a_handful_of_control_customers_cannot_flag_harm() {
        let arms = |control: u64, churned: u64| Arms {
            contacted: arm(54, 34),
            not_contacted: arm(13, 12),
            control: arm(control, churned),
        };
        let few = learned_rate("A", 0.25, &LearningConfig::default(), &arms(5, 1));
        assert!(few.effect.unwrap().high < 0.0 && !few.harms, "{few:?}");
        let enough = learned_rate("A", 0.25, &LearningConfig::default(), &arms(60, 12));
        assert!(enough.harms, "{enough:?}");
    }

    #[test]
    fn the_same_arms_learn_the_same_rate() {
        let arms = Arms {
            contacted: arm(900, 200),
            not_contacted: arm(100, 40),
            control: arm(1_000, 300),
        };
        let cfg = LearningConfig::default();
        assert_eq!(
            learned_rate("A", 0.1, &cfg, &arms),
            learned_rate("A", 0.1, &cfg, &arms)
        );
    }
}
