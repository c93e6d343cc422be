//! Exploration with logged propensities: a share of the customers with a positive contact
//! decision (`[learning] explore`, default 0.1) gets an action drawn by Thompson sampling
//! instead of the top of the ranking, so an action the ranking rarely picks is still tried, and
//! its save rate can be learned; every decision records the probability it had of being made.
//!
//! - **Posteriors.** Each action's save rate is normal: its learned posterior (applied or not;
//!   the evaluation combines the playbook's rate with the measured arms, see
//!   [`super::LearnedRate`]), else the playbook's rate with the prior's spread
//!   (`[learning] prior_strength`). A Beta cannot carry a harmful action's negative rate.
//! - **Thompson sampling** on the customer's expected value: a draw θ of every allowed action's
//!   rate, and the action with the highest θ × P(churn) × value − cost. Its distribution over
//!   the actions (the chance each is the best of a draw) is computed by quadrature, and the
//!   action is drawn from that distribution, so the logged propensity is exactly the chance
//!   the decision had.
//! - **Deterministic per customer and day**: the draws come from a hash of the experiment, the
//!   customer id and the day, so a replayed request gets the same action, and tomorrow's may
//!   differ.
//! - **Propensity** of the action chosen: (1 − explore) × [it is the best] + explore × its
//!   Thompson probability. The control group is drawn the same way, so the held-out action has
//!   the same propensity as the offered one would.

use super::{Action, LearnedRate, LearningConfig};
use crate::util::Z95;
use sha2::{Digest, Sha256};
use std::sync::OnceLock;

crate::util::text_enum! {
    /// How a customer's action was chosen.
    pub enum Choice {
        /// The top of the ranking.
        Best = "best",
        /// Drawn by Thompson sampling (exploration).
        Explore = "explore",
    }
}

/// A choice among a customer's allowed actions.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Chosen {
    /// Index of the action among the allowed ones (0 is the best-ranked).
    pub index: usize,
    /// How it was chosen.
    pub choice: Choice,
    /// Probability that this action was chosen for this customer.
    pub propensity: f64,
}

impl Chosen {
    /// The best-ranked action, surely chosen (no exploration).
    pub const BEST: Chosen = Chosen {
        index: 0,
        choice: Choice::Best,
        propensity: 1.0,
    };
}

/// Normal posterior of one action's save rate: (mean, standard deviation).
pub fn posterior(learned: &[LearnedRate], a: &Action, cfg: &LearningConfig) -> (f64, f64) {
    match learned.iter().find(|l| l.action == a.id) {
        Some(l) if l.save_rate_high.is_finite() && l.save_rate_low.is_finite() => (
            l.save_rate,
            (l.save_rate_high - l.save_rate_low) / (2.0 * Z95),
        ),
        _ => (
            a.save_rate,
            super::learned::prior_variance(a.save_rate, cfg.prior_strength).map_or(0.5, f64::sqrt),
        ),
    }
}

/// Quadrature points: the standard normal's quantiles at the midpoints of [`POINTS`] equal
/// slices of probability (each slice weighs 1 / POINTS).
const POINTS: usize = 24;

fn nodes() -> &'static [f64; POINTS] {
    static N: OnceLock<[f64; POINTS]> = OnceLock::new();
    N.get_or_init(|| {
        std::array::from_fn(|i| crate::util::normal_quantile((i as f64 + 0.5) / POINTS as f64))
    })
}

/// Φ on a grid: [`PHI_STEPS`] steps per unit over ±[`PHI_RANGE`], built once.
const PHI_STEPS: f64 = 64.0;
const PHI_RANGE: f64 = 8.0;

fn phi_table() -> &'static [f64] {
    static T: OnceLock<Vec<f64>> = OnceLock::new();
    T.get_or_init(|| {
        let n = (2.0 * PHI_RANGE * PHI_STEPS) as usize;
        (0..=n)
            .map(|i| crate::util::normal_cdf(i as f64 / PHI_STEPS - PHI_RANGE))
            .collect()
    })
}

/// Φ(z) interpolated on the grid (off by less than 1e-5). Exactness does not matter here: the
/// action is drawn from the probabilities computed with it, so the logged propensity is exact
/// whatever Φ's error; a lookup instead of `erfc` keeps exploration's cost per customer small.
#[inline]
fn phi(z: f64) -> f64 {
    let t = phi_table();
    let x = (z + PHI_RANGE) * PHI_STEPS;
    if x <= 0.0 {
        return 0.0;
    }
    if x >= (t.len() - 1) as f64 {
        return 1.0;
    }
    let i = x as usize;
    let f = x - i as f64;
    t[i] + f * (t[i + 1] - t[i])
}

/// Chance that each arm (normal rewards: mean, sd) is the highest of one joint draw,
/// normalised to sum to 1.
pub fn thompson_probabilities(arms: &[(f64, f64)]) -> Vec<f64> {
    let z = nodes();
    let mut p: Vec<f64> = arms
        .iter()
        .enumerate()
        .map(|(a, &(ma, sa))| {
            z.iter()
                .map(|&zi| {
                    let x = ma + sa * zi;
                    arms.iter()
                        .enumerate()
                        .filter(|&(b, _)| b != a)
                        .map(|(b, &(mb, sb))| {
                            if sb > 0.0 {
                                phi((x - mb) / sb)
                            } else if x > mb || (x == mb && a < b) {
                                1.0
                            } else {
                                0.0
                            }
                        })
                        .product::<f64>()
                })
                .sum::<f64>()
                / POINTS as f64
        })
        .collect();
    let total: f64 = p.iter().sum();
    if total > 0.0 {
        p.iter_mut().for_each(|x| *x /= total);
    } else {
        p.iter_mut().for_each(|x| *x = 1.0 / arms.len() as f64);
    }
    p
}

/// Two uniforms in [0, 1) from the experiment, the customer and the day.
fn uniforms(experiment: &str, customer: &str, day: i64) -> (f64, f64) {
    // the bytes of "{experiment}\u{1f}explore\u{1f}{day}\u{1f}{customer}", without a string
    let h = Sha256::new()
        .chain_update(experiment)
        .chain_update("\u{1f}explore\u{1f}")
        .chain_update(day.to_string())
        .chain_update("\u{1f}")
        .chain_update(customer)
        .finalize();
    let u = |b: &[u8]| {
        (u64::from_le_bytes(b.try_into().expect("8 bytes")) >> 11) as f64 / (1u64 << 53) as f64
    };
    (u(&h[..8]), u(&h[8..16]))
}

/// Choose among a customer's allowed actions, ranked best first: `rewards` are each one's
/// expected value as a normal (mean, sd) under its save-rate posterior. With `explore` share
/// ε, the customer explores when its first uniform is below ε and then draws from the Thompson
/// probabilities with its second.
pub fn choose(
    experiment: &str,
    customer: &str,
    day: i64,
    explore: f64,
    rewards: &[(f64, f64)],
) -> Chosen {
    if explore <= 0.0 || rewards.len() < 2 {
        return Chosen::BEST;
    }
    let ts = thompson_probabilities(rewards);
    let (u_explore, u_draw) = uniforms(experiment, customer, day);
    let propensity = |i: usize| (1.0 - explore) * f64::from(u8::from(i == 0)) + explore * ts[i];
    if u_explore >= explore {
        return Chosen {
            propensity: propensity(0),
            ..Chosen::BEST
        };
    }
    let mut acc = 0.0;
    let mut index = ts.len() - 1;
    for (i, p) in ts.iter().enumerate() {
        acc += p;
        if u_draw < acc {
            index = i;
            break;
        }
    }
    Chosen {
        index,
        choice: Choice::Explore,
        propensity: propensity(index),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_phi_grid_is_within_1e5_of_erfc() {
        for i in -10_000..=10_000 {
            let z = f64::from(i) / 1000.0;
            let d = (phi(z) - crate::util::normal_cdf(z)).abs();
            assert!(d < 1e-5, "{z}: {d}");
        }
    }

    #[test]
    fn thompson_probabilities_match_the_exact_pair_and_a_simulation() {
        // two arms: P(a > b) = Φ((ma − mb) / √(sa² + sb²))
        let p = thompson_probabilities(&[(0.3, 0.1), (0.1, 0.2)]);
        let exact = crate::util::normal_cdf(0.2 / (0.01f64 + 0.04).sqrt());
        assert!((p[0] - exact).abs() < 0.005, "{p:?} vs {exact}");
        // three arms against 200,000 joint draws
        let arms = [(0.2, 0.1), (0.25, 0.05), (0.0, 0.3)];
        let p = thompson_probabilities(&arms);
        let mut rng = crate::util::Rng::new(3);
        let mut wins = [0usize; 3];
        let n = 200_000;
        for _ in 0..n {
            let draw: Vec<f64> = arms
                .iter()
                .map(|&(m, s)| m + s * crate::util::normal_quantile(rng.uniform()))
                .collect();
            let best = (0..3).max_by(|&a, &b| draw[a].total_cmp(&draw[b])).unwrap();
            wins[best] += 1;
        }
        for i in 0..3 {
            let sim = wins[i] as f64 / n as f64;
            assert!((p[i] - sim).abs() < 0.01, "arm {i}: {} vs {sim}", p[i]);
        }
        assert!((p.iter().sum::<f64>() - 1.0).abs() < 1e-12);
    }

    #[test]
    fn choices_are_deterministic_per_customer_and_day_and_match_their_propensities() {
        let rewards = [(5.0, 1.0), (4.0, 2.0), (1.0, 0.5)];
        let ts = thompson_probabilities(&rewards);
        let once = choose("e", "c1", 20_000, 0.1, &rewards);
        assert_eq!(once, choose("e", "c1", 20_000, 0.1, &rewards));
        // over many customers the shares chosen are the propensities
        let n = 100_000;
        let mut counts = [0usize; 3];
        let mut explored = 0;
        for k in 0..n {
            let c = choose("e", &format!("c{k}"), 20_000, 0.1, &rewards);
            counts[c.index] += 1;
            explored += usize::from(c.choice == Choice::Explore);
            let expected = 0.9 * f64::from(u8::from(c.index == 0)) + 0.1 * ts[c.index];
            assert!((c.propensity - expected).abs() < 1e-12);
        }
        assert!(
            (explored as f64 / n as f64 - 0.1).abs() < 0.005,
            "{explored}"
        );
        for i in 0..3 {
            let expected = 0.9 * f64::from(u8::from(i == 0)) + 0.1 * ts[i];
            let got = counts[i] as f64 / n as f64;
            assert!((got - expected).abs() < 0.005, "{i}: {got} vs {expected}");
        }
        // off, or a single action: the best, surely
        assert_eq!(choose("e", "c1", 1, 0.0, &rewards).propensity, 1.0);
        assert_eq!(choose("e", "c1", 1, 0.5, &rewards[..1]).index, 0);
        // another day, another draw for some customers
        let moved = (0..1000)
            .filter(|k| {
                let id = format!("c{k}");
                choose("e", &id, 1, 0.5, &rewards) != choose("e", &id, 2, 0.5, &rewards)
            })
            .count();
        assert!(moved > 100, "{moved}");
    }
}
