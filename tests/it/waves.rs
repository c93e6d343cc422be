//! The whole loop over several waves (issue 33, item 6 and the acceptance): score → act →
//! outcomes → learned rates → uplift models → the next wave, measured against the simulator's
//! truth at the same contact budget; and exploration finding an action the playbook ranks last.

use super::evaluation::pool;
use super::uplift::{EFFECTS, PLAYBOOK};
use crate::util::*;
use churn::evaluate::effects::parse_effects;
use churn::evaluate::simulate::SimConfig;
use churn::evaluate::waves::{run, summary, WaveConfig};
use churn::scoring::Scorer;

fn scorer_with(playbook: &str) -> Scorer {
    let mut s = Scorer::new(churn::bundle::load(&trained().join("telco")).unwrap());
    s.set_playbook(
        churn::playbook::parse(playbook, "waves.toml").unwrap(),
        "waves.toml",
    )
    .unwrap();
    s
}

fn sim(s: &Scorer, effects: &str, customers: usize, seed: u64) -> SimConfig {
    let pb = s.bundle.playbook.as_ref().unwrap();
    SimConfig {
        customers,
        seed,
        take_rate: 1.0,
        effect_rules: parse_effects(effects, "effects.toml", &s.bundle.encoder, |a| {
            pb.action_ids().any(|x| x == a)
        })
        .unwrap(),
        ..SimConfig::default()
    }
}

/// CALL saves 60% of the would-be churners among DSL customers with one to four years of
/// tenure, pushes those with more than four years out (+10 points) and does nothing for the
/// rest; COUPON does nothing. After two waves of learning, the third wave's offers earn at least
/// 85% of the oracle's saves at the same budget and 1.3× the risk-ranked policy's, and the
/// sleeping dogs offered a contact drop by at least 80% from the first wave.
#[test]
fn after_two_waves_the_uplift_policy_earns_most_of_the_oracles_saves() {
    let s = scorer_with(PLAYBOOK);
    let cfg = sim(&s, EFFECTS, 30_000, 11);
    let (reports, log, last) = run(
        &s,
        pool(),
        &cfg,
        &WaveConfig {
            waves: 3,
            uplift: Some(Default::default()),
        },
    )
    .unwrap();
    eprint!("{}", summary(&reports));
    assert_eq!(reports.len(), 3);
    assert_eq!(log.records.len(), 90_000);
    let (first, third) = (&reports[0], &reports[2]);
    // the first wave offers everyone a rule allows (the playbook's rates pay off everywhere)
    assert!(first.sleeping_dog_offers > 1000, "{first:?}");
    assert!(
        reports[1].uplift_applied.contains(&"CALL".to_string()),
        "CALL's uplift model is applied after two waves: {:?}",
        reports[1]
    );
    assert!(last.uplift.is_some());
    assert!(
        third.saves >= 0.85 * third.oracle_saves,
        "wave 3: {:.1} saves vs the oracle's {:.1}",
        third.saves,
        third.oracle_saves
    );
    // the riskiest customers here are lost causes and sleeping dogs: the risk ranking saves
    // nobody at this budget
    assert!(third.saves > 0.0);
    assert!(
        third.saves >= 1.3 * third.risk_saves,
        "wave 3: {:.1} saves vs the risk-ranked {:.1}",
        third.saves,
        third.risk_saves
    );
    assert!(
        (third.sleeping_dog_offers as f64) <= 0.2 * first.sleeping_dog_offers as f64,
        "sleeping dogs offered: wave 1 {}, wave 3 {}",
        first.sleeping_dog_offers,
        third.sleeping_dog_offers
    );
    // and the third wave spends less: the offers that do nothing are gone too
    assert!(
        third.offered < first.offered,
        "{} vs {}",
        third.offered,
        first.offered
    );
    // the log holds every wave, each customer once, each wave after the last labels matured
    let ids: std::collections::BTreeSet<&str> = log
        .records
        .iter()
        .map(|r| r.customer_key.as_str())
        .collect();
    assert_eq!(ids.len(), 90_000);
}

/// GIFT truly saves half of the would-be churners, LETTER a tenth; the playbook believes the
/// opposite (LETTER 0.3, GIFT 0.05), so the ranking always offers LETTER. Without exploration
/// GIFT is never offered and never learned; with the default exploration (10%), Thompson
/// sampling tries it, its learned rate is put in force, and by the third wave it is what the
/// service offers.
const DISCOVERY: &str = r#"
name = "discovery"
experiment = "discovery"
holdout_percent = 50
top_n = 2
[value]
default = 100.0
[[actions]]
id = "LETTER"
name = "Letter"
channel = "mail"
cost = 0.5
save_rate = 0.3
[[actions]]
id = "GIFT"
name = "Gift"
channel = "mail"
cost = 0.5
save_rate = 0.05
[[rules]]
id = "everyone"
actions = ["LETTER", "GIFT"]
"#;

const DISCOVERY_EFFECTS: &str = r#"
[[effect]]
action = "LETTER"
share = 0.1
[[effect]]
action = "GIFT"
share = 0.5
"#;

fn offers(r: &churn::evaluate::waves::WaveReport, action: &str) -> usize {
    r.offers_by_action
        .iter()
        .find(|x| x.0 == action)
        .map_or(0, |x| x.1)
}

#[test]
fn exploration_discovers_an_action_the_playbook_ranks_last_within_three_waves() {
    let waves = WaveConfig {
        waves: 3,
        uplift: None,
    };
    let s = scorer_with(DISCOVERY);
    assert_eq!(
        s.bundle.playbook.as_ref().unwrap().file.learning.explore,
        churn::playbook::DEFAULT_EXPLORE
    );
    let cfg = sim(&s, DISCOVERY_EFFECTS, 40_000, 5);
    let (reports, log, last) = run(&s, pool(), &cfg, &waves).unwrap();
    eprint!("with exploration:\n{}", summary(&reports));
    // the first wave explores a tenth of the offers, GIFT among them, with logged propensities
    let w1 = &reports[0];
    assert!(
        (w1.explored as f64 / w1.offered as f64 - 0.1).abs() < 0.02,
        "{w1:?}"
    );
    assert!(
        offers(w1, "GIFT") > 100 && offers(w1, "GIFT") < w1.offered / 10,
        "{w1:?}"
    );
    // GIFT is only ever explored, with the small propensity of a Thompson draw; an explored
    // customer may also draw LETTER, the best, whose propensity stays above 0.9
    let action = |r: &churn::store::PredictionRecord| {
        r.top_action.clone().or_else(|| r.held_out_action.clone())
    };
    let gift: Vec<&churn::store::PredictionRecord> = log.records[..40_000]
        .iter()
        .filter(|r| action(r).as_deref() == Some("GIFT"))
        .collect();
    assert!(gift.len() > 200, "{}", gift.len());
    assert!(gift
        .iter()
        .all(|r| r.policy == Some(churn::playbook::Choice::Explore)
            && r.propensity.is_some_and(|p| p > 0.0 && p < 0.1)));
    let best: Vec<f64> = log.records[..40_000]
        .iter()
        .filter(|r| {
            r.policy == Some(churn::playbook::Choice::Best)
                && r.top_action.as_deref() == Some("LETTER")
        })
        .map(|r| r.propensity.unwrap())
        .collect();
    assert!(best.iter().all(|&p| p > 0.9 && p < 1.0), "{:?}", &best[..3]);
    // discovered: GIFT's learned rate is in force by the end and the third wave offers it most
    let gift = last
        .bundle
        .playbook
        .as_ref()
        .unwrap()
        .learned
        .iter()
        .find(|l| l.action == "GIFT")
        .cloned()
        .unwrap();
    assert!(gift.applied && gift.save_rate > 0.3, "{gift:?}");
    let w3 = &reports[2];
    assert!(
        offers(w3, "GIFT") as f64 >= 0.8 * w3.offered as f64,
        "wave 3 offers: {:?}",
        w3.offers_by_action
    );

    // without exploration the loop only confirms its first guess
    let mut file = churn::playbook::parse(DISCOVERY, "d.toml").unwrap();
    file.learning.explore = 0.0;
    let mut s0 = scorer_with(DISCOVERY);
    s0.set_playbook(file, "d.toml").unwrap();
    let (plain, _, _) = run(&s0, pool(), &cfg, &waves).unwrap();
    eprint!("without exploration:\n{}", summary(&plain));
    assert!(plain
        .iter()
        .all(|r| offers(r, "GIFT") == 0 && r.explored == 0));
    assert!(
        w3.saves > 1.5 * plain[2].saves,
        "wave 3 saves {:.1} with exploration, {:.1} without",
        w3.saves,
        plain[2].saves
    );
}

#[test]
fn a_bad_number_of_waves_is_named() {
    let s = scorer_with(PLAYBOOK);
    let cfg = sim(&s, EFFECTS, 10, 1);
    for waves in [0, 21] {
        let e = run(
            &s,
            pool(),
            &cfg,
            &WaveConfig {
                waves,
                uplift: None,
            },
        )
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            format!("waves: expected 1 to 20 waves, got {waves}")
        );
    }
}
