//! Measure and adjust (issue 12), checked against a simulator with known truth: campaigns are
//! drawn from the Telco customers, scored by the real scorer (control group by the real hash),
//! contacted, and churn with the calibrated probability reduced by each action's true effect.

use super::store::{get, PgDb};
use crate::util::*;
use churn::evaluate::simulate::{simulate, Campaign, SimConfig};
use churn::evaluate::{self, EvalData, Evaluation, Period, Verdict};
use churn::scoring::Scorer;
use serde_json::Value;
use std::sync::OnceLock;

/// Two actions on two halves of the customers: COUPON for new customers (the playbook believes
/// it saves 25%; truly 0%), CALL for the others (believed 5%; truly 30%). Customers on a
/// two-year contract in their first year are offered both, so learning can change their
/// ranking. Half of the customers are held out, so both arms are large.
const PLAYBOOK: &str = r#"
name = "simulation"
experiment = "sim"
holdout_percent = 50
top_n = 2
[value]
default = 100.0
[learning]
prior_strength = 5
min_arm = 200
[[actions]]
id = "CALL"
name = "Call"
channel = "phone"
cost = 1.0
save_rate = 0.05
[[actions]]
id = "COUPON"
name = "Coupon"
channel = "email"
cost = 1.0
save_rate = 0.25
[[rules]]
id = "new"
actions = ["COUPON"]
when = ["tenure <= 12"]
[[rules]]
id = "established"
actions = ["CALL"]
when = ["tenure > 12"]
[[rules]]
id = "two-year"
actions = ["CALL", "COUPON"]
when = ['Contract == "Two year"', "tenure <= 12"]
"#;

/// Every label has matured by then (scoring in January 2026, 90-day horizon).
const AS_OF: &str = "2026-06-01";

pub(crate) fn scorer() -> &'static Scorer {
    static S: OnceLock<Scorer> = OnceLock::new();
    S.get_or_init(|| {
        let mut s = Scorer::new(churn::bundle::load(&trained().join("telco")).unwrap());
        s.set_playbook(
            churn::playbook::parse(PLAYBOOK, "simulation.toml").unwrap(),
            "simulation.toml",
        )
        .unwrap();
        s
    })
}

pub(crate) fn pool() -> &'static churn::io::RawTable {
    static T: OnceLock<churn::io::RawTable> = OnceLock::new();
    T.get_or_init(|| churn::io::read_table(&telco(), None).unwrap())
}

/// The text of column `col` in row `r` of the Telco customers (empty when missing).
pub(crate) fn pool_text(col: &str, r: usize) -> String {
    let table = pool();
    table.columns[table.index_of(col).unwrap()]
        .data
        .get(r)
        .to_text()
        .unwrap_or_default()
}

/// A store at `url` holding campaign `c`: its predictions and outcomes.
pub(crate) fn store_with(url: &str, c: &Campaign) -> churn::store::Store {
    let store = churn::store::Store::open(
        &churn::store::StoreUrl::parse(url).unwrap(),
        churn::store::IdKey::new(None),
    )
    .unwrap()
    .unwrap();
    store
        .block_on(store.insert_predictions(c.records.clone()))
        .unwrap();
    store
        .block_on(store.record_outcomes(c.outcomes.clone()))
        .unwrap();
    store
}

/// Row `r` of the Telco customers, encoded by the simulation's scorer.
pub(crate) fn pool_row(r: usize) -> Vec<f64> {
    let table = pool();
    let bind = scorer().bind(table).unwrap();
    scorer()
        .encode(
            |i| Some(table.columns[bind[i]].data.get(r)),
            &mut Vec::new(),
        )
        .unwrap()
}

fn effects() -> Vec<(String, f64)> {
    vec![("CALL".into(), 0.3), ("COUPON".into(), 0.0)]
}

fn campaign(customers: usize, seed: u64, effects: Vec<(String, f64)>) -> Campaign {
    let cfg = SimConfig {
        customers,
        seed,
        effects,
        ..SimConfig::default()
    };
    simulate(scorer(), pool(), &cfg).unwrap()
}

fn as_of() -> i64 {
    churn::time::parse(AS_OF).unwrap()
}

fn evaluate_campaign(c: &Campaign) -> Evaluation {
    let period = Period {
        as_of: Some(as_of()),
        ..Period::default()
    };
    let opts = evaluate::options("telco", Some(&scorer().bundle), &period);
    evaluate::evaluate(&EvalData::from_campaign(c), &opts).unwrap()
}

fn overall<'e>(ev: &'e Evaluation, action: &str) -> &'e churn::evaluate::ActionLift {
    ev.actions
        .iter()
        .find(|a| a.action == action && a.segment.is_none())
        .unwrap_or_else(|| panic!("no lift of {action}"))
}

fn truth(c: &Campaign, action: &str) -> f64 {
    c.truth
        .actions
        .iter()
        .find(|t| t.action == action)
        .unwrap_or_else(|| panic!("{action} is never the top action"))
        .lift
}

/// One large campaign: each action's measured lift covers its true effect, the working action
/// is declared a win and the useless one is not, the learned save rates move from the
/// playbook's beliefs toward the truth, and the ranking follows.
#[test]
fn measured_lift_covers_the_truth_and_learning_reorders_actions() {
    let c = campaign(40_000, 11, effects());
    let ev = evaluate_campaign(&c);
    for action in ["CALL", "COUPON"] {
        let l = overall(&ev, action);
        let lift = l.lift.unwrap();
        let t = truth(&c, action);
        assert!(
            lift.low <= t && t <= lift.high,
            "{action}: truth {t} outside [{}, {}]",
            lift.low,
            lift.high
        );
        assert!(l.contacted.n >= 1000 && l.control.n >= 1000, "{l:?}");
        // intention to treat: 80% of those to contact were, so the truth is diluted to 0.8×
        let itt = l.intention_to_treat.unwrap();
        assert!(
            itt.low <= 0.8 * t && 0.8 * t <= itt.high,
            "{action}: ITT truth {} outside [{}, {}]",
            0.8 * t,
            itt.low,
            itt.high
        );
        assert!(
            l.not_contacted.n > 0,
            "a fifth of the customers to contact were not"
        );
        assert!(l.minimum_detectable_effect.unwrap() < 0.05);
    }
    // the control group's outcomes are the model's alone: its realised figures match the
    // expected ones; the treatment group's churn is lower than its probabilities say
    let group = |k: &str| ev.by_group.iter().find(|g| g.key == k).unwrap();
    let (control, treatment) = (group("control"), group("treatment"));
    let auc = control.realised.auc.unwrap().value;
    assert!(
        (control.expected.auc - auc).abs() <= 0.02,
        "{} vs {auc}",
        control.expected.auc
    );
    let rate = control.realised.churn_rate;
    assert!(rate.low <= control.expected.churn_rate && control.expected.churn_rate <= rate.high);
    assert!(treatment.realised.churn_rate.high < treatment.expected.churn_rate);
    assert_eq!(overall(&ev, "CALL").verdict, Verdict::Saves);
    assert_eq!(overall(&ev, "COUPON").verdict, Verdict::NoEffectDetected);
    // net value per 1000 contacts: 1000 × lift × 100 − 1000 × 1
    let call = overall(&ev, "CALL");
    let nv = call.net_value_per_1000.unwrap();
    assert!((nv.value - (1000.0 * call.lift.unwrap().value * 100.0 - 1000.0)).abs() < 1e-6);

    let rate = |a: &str| ev.learned_rates.iter().find(|l| l.action == a).unwrap();
    let (call, coupon) = (rate("CALL"), rate("COUPON"));
    assert!(call.applied && coupon.applied, "{call:?} {coupon:?}");
    assert!(!call.harms && !coupon.harms);
    assert!(
        (call.save_rate - 0.3).abs() < 0.06
            && call.save_rate_low <= 0.3
            && 0.3 <= call.save_rate_high,
        "CALL learned {call:?} (truth 0.3, playbook 0.05)"
    );
    assert!(
        coupon.save_rate < 0.1 && coupon.save_rate_low <= 0.0 && 0.0 <= coupon.save_rate_high,
        "COUPON learned {coupon:?} (truth 0, playbook 0.25)"
    );
    // 80% take-up at random: the effect on the contacted is the true lift
    let e = call.effect.unwrap();
    assert!(
        e.low <= truth(&c, "CALL") && truth(&c, "CALL") <= e.high,
        "{e:?}"
    );
    assert!((call.take_up.unwrap() - 0.8).abs() < 0.03);

    // a new customer on a two-year contract is offered both: COUPON first by the playbook's
    // beliefs, CALL first once the rates are learned, and the why says which rate it used
    let (r, row) = two_year_newcomer_row();
    let _ = r;
    let top = |s: &Scorer| {
        let sc = s.score_encoded(&row, Vec::new(), None);
        let rec = sc.advice.unwrap().recommendations;
        (rec[0].action.to_string(), rec[0].why.to_string())
    };
    let (before, why_before) = top(scorer());
    assert_eq!(before, "COUPON");
    assert!(
        why_before.ends_with("save rate from the playbook"),
        "{why_before}"
    );
    let mut learned = scorer().clone();
    let used = learned
        .bundle
        .playbook
        .as_mut()
        .unwrap()
        .set_learned(&ev.learned_rates);
    assert_eq!(used, 2);
    let (after, why_after) = top(&learned);
    assert_eq!(after, "CALL");
    assert!(
        why_after.contains(&format!(
            "save rate learned from {} contacted customers",
            rate("CALL").treated
        )),
        "{why_after}"
    );
}

/// Over 200 campaigns, the 95% interval of each action's lift covers the truth 93–97% of the
/// time (400 intervals: two actions per campaign), so does the intention-to-treat interval for
/// the diluted truth (80% take-up), and the action without effect is declared a win in at most
/// 5% of the campaigns.
#[test]
fn lift_intervals_cover_the_truth_95_percent_of_the_time() {
    let (mut covered, mut intervals, mut false_wins, mut itt_covered) = (0, 0, 0, 0);
    for seed in 0..200 {
        let c = campaign(4_000, 1_000 + seed, effects());
        let ev = evaluate_campaign(&c);
        for action in ["CALL", "COUPON"] {
            let lift = overall(&ev, action).lift.unwrap();
            let t = truth(&c, action);
            intervals += 1;
            covered += (lift.low <= t && t <= lift.high) as u32;
            let itt = overall(&ev, action).intention_to_treat.unwrap();
            itt_covered += (itt.low <= 0.8 * t && 0.8 * t <= itt.high) as u32;
        }
        false_wins += (overall(&ev, "COUPON").verdict == Verdict::Saves) as u32;
    }
    let coverage = covered as f64 / intervals as f64;
    eprintln!(
        "coverage {coverage} (intention to treat {}) over {intervals} intervals; the 0% action won {false_wins} of 200",
        itt_covered as f64 / intervals as f64
    );
    assert!(
        (0.93..=0.97).contains(&coverage),
        "coverage {coverage} over {intervals} intervals"
    );
    let itt = itt_covered as f64 / intervals as f64;
    assert!(
        (0.93..=0.97).contains(&itt),
        "intention-to-treat coverage {itt} of 0.8 × the truth"
    );
    assert!(
        false_wins <= 10,
        "the 0% action won {false_wins} of 200 campaigns"
    );
}

/// Agents reach the riskiest first: 95% of the high-risk customers to contact are contacted,
/// 70% of the medium and 35% of the low. The contacted are then riskier than the control arm,
/// and comparing the two (per protocol) is biased; the learned effect (intention to treat ÷
/// take-up) covers the true effect on the contacted 93–97% of the time over 200 campaigns
/// (400 intervals), its interval carrying the control arm's uncertainty.
#[test]
fn selective_take_up_learns_the_effect_on_the_contacted() {
    let truth_effects = vec![("CALL".to_string(), 0.4), ("COUPON".to_string(), 0.0)];
    let (mut covered, mut intervals, mut rate_covered) = (0, 0, 0);
    let (mut pp_error, mut learned_error) = (0.0, 0.0);
    for seed in 0..200 {
        let cfg = SimConfig {
            customers: 4_000,
            seed: 7_000 + seed,
            effects: truth_effects.clone(),
            take_by_risk: Some([0.95, 0.7, 0.35]),
            ..SimConfig::default()
        };
        let c = simulate(scorer(), pool(), &cfg).unwrap();
        let ev = evaluate_campaign(&c);
        for (action, save) in [("CALL", 0.4), ("COUPON", 0.0)] {
            let t = c.truth.actions.iter().find(|t| t.action == action).unwrap();
            let l = ev
                .learned_rates
                .iter()
                .find(|l| l.action == action)
                .unwrap();
            let e = l.effect.unwrap();
            intervals += 1;
            covered += (e.low <= t.lift && t.lift <= e.high) as u32;
            rate_covered += (l.save_rate_low <= save && save <= l.save_rate_high) as u32;
            learned_error += e.value - t.lift;
            pp_error += overall(&ev, action).lift.unwrap().value - t.lift;
            assert!(t.take_up > 0.35 && t.take_up < 0.95, "{t:?}");
        }
    }
    let coverage = covered as f64 / intervals as f64;
    eprintln!(
        "learned effect coverage {coverage} over {intervals}; save rate posterior coverage {}; mean error: learned {:+.4}, per protocol {:+.4}",
        rate_covered as f64 / intervals as f64,
        learned_error / intervals as f64,
        pp_error / intervals as f64
    );
    assert!(
        (0.93..=0.97).contains(&coverage),
        "coverage {coverage} over {intervals} intervals"
    );
    assert!(
        (learned_error / intervals as f64).abs() < 0.005,
        "the learned effect is biased by {}",
        learned_error / intervals as f64
    );
    assert!(
        (pp_error / intervals as f64).abs() > 0.01,
        "the per-protocol lift was expected to be biased here: {}",
        pp_error / intervals as f64
    );
}

/// An action that drives customers away (50% more churn among the contacted) learns a
/// negative save rate with its interval below 0, is flagged `harms`, and after learning is
/// recommended to none of the 7,043 Telco customers (it was the top action for many before);
/// the flag survives the store (SQLite) and the next server does not offer it.
#[test]
fn a_harmful_action_is_learned_and_never_recommended() {
    let harmful = vec![("CALL".to_string(), -0.5), ("COUPON".to_string(), 0.2)];
    let c = campaign(20_000, 31, harmful);
    let ev = evaluate_campaign(&c);
    let call = ev
        .learned_rates
        .iter()
        .find(|l| l.action == "CALL")
        .unwrap();
    let e = call.effect.unwrap();
    assert!(call.harms, "{call:?}");
    assert!(e.high < 0.0 && call.save_rate < 0.0, "{call:?}");
    let truth = c.truth.actions.iter().find(|t| t.action == "CALL").unwrap();
    assert!(
        e.low <= truth.lift && truth.lift <= e.high,
        "{e:?} vs {truth:?}"
    );
    assert_eq!(overall(&ev, "CALL").verdict, Verdict::Harms);
    assert!(
        ev.summary().contains("harms: never recommended"),
        "{}",
        ev.summary()
    );

    let offered = |s: &Scorer| {
        (0..pool().nrows)
            .filter(|&r| {
                let sc = s.score_encoded(&pool_row(r), Vec::new(), None);
                sc.advice
                    .unwrap()
                    .recommendations
                    .iter()
                    .any(|x| x.action == "CALL")
            })
            .count()
    };
    let before = offered(scorer());
    assert!(before > 1000, "CALL offered to {before} before learning");
    let mut learned = scorer().clone();
    learned
        .bundle
        .playbook
        .as_mut()
        .unwrap()
        .set_learned(&ev.learned_rates);
    assert_eq!(offered(&learned), 0);

    // through the store and a server
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("store.db").display());
    let store = churn::store::Store::open(
        &churn::store::StoreUrl::parse(&url).unwrap(),
        churn::store::IdKey::new(None),
    )
    .unwrap()
    .unwrap();
    store
        .block_on(store.save_learned_rates("telco", &ev.learned_rates))
        .unwrap();
    assert_eq!(
        store.block_on(store.learned_rates("telco")).unwrap(),
        ev.learned_rates
    );
    drop(store);
    let pb = write(dir.path(), "simulation.toml", PLAYBOOK);
    let server = start(
        trained(),
        &["--store", &url, "--playbook", pb.to_str().unwrap()],
        &[],
    );
    let r = post(
        &server.addr,
        "/v1/score",
        &serde_json::json!({"customers": [two_year_newcomer()]}),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let recs = r.json()["results"][0]["recommendations"].clone();
    let actions: Vec<&str> = recs
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, ["COUPON"], "{}", r.body);
}

/// Effects as rules (`--effects FILE`): CALL saves 60% of the would-be churners on a
/// month-to-month contract, adds 10 points of churn for customers of more than four years and does
/// nothing else. The truth follows the rules customer by customer, the learned effect on the
/// contacted covers it, and a bad file is refused naming the rule and the problem.
#[test]
fn heterogeneous_effects_follow_their_rules() {
    use churn::evaluate::effects::{parse_effects, Change};
    let enc = &scorer().bundle.encoder;
    let known = |a: &str| a == "CALL" || a == "COUPON";
    let rules = parse_effects(
        r#"
[[effect]]
action = "CALL"
share = 0.6
when = ['Contract == "Month-to-month"']
[[effect]]
action = "CALL"
points = -0.1
when = ["tenure > 48"]
"#,
        "effects.toml",
        enc,
        known,
    )
    .unwrap();
    assert_eq!(rules.len(), 2);
    assert_eq!(rules[1].change, Change::Points(-0.1));
    let cfg = SimConfig {
        customers: 30_000,
        seed: 41,
        effect_rules: rules,
        ..SimConfig::default()
    };
    let c = simulate(scorer(), pool(), &cfg).unwrap();
    // the truth by hand: over the rows CALL is the contact action for, the rule that applies
    let table = pool();
    let text = |col: &str, r: usize| pool_text(col, r);
    let (mut saved, mut n) = (0.0, 0.0);
    for r in 0..table.nrows {
        let s = scorer().score_encoded(&pool_row(r), Vec::new(), None);
        let a = s.advice.unwrap();
        if !a.contact || a.recommendations[0].action != "CALL" {
            continue;
        }
        let p = s.prediction.probability;
        let tenure: f64 = text("tenure", r).parse().unwrap();
        saved += if text("Contract", r) == "Month-to-month" {
            0.6 * p
        } else if tenure > 48.0 {
            -(0.1f64.min(1.0 - p))
        } else {
            0.0
        };
        n += 1.0;
    }
    let t = c.truth.actions.iter().find(|t| t.action == "CALL").unwrap();
    assert!((t.lift - saved / n).abs() < 1e-9, "{t:?} vs {}", saved / n);
    let ev = evaluate_campaign(&c);
    let e = ev
        .learned_rates
        .iter()
        .find(|l| l.action == "CALL")
        .unwrap()
        .effect
        .unwrap();
    assert!(e.low <= t.lift && t.lift <= e.high, "{e:?} vs {t:?}");

    for (text, needle) in [
        ("[[effect]]\naction = \"CALL\"\nwhen = []", "effect 1 ('CALL'): give exactly one of share or points"),
        ("[[effect]]\naction = \"NOPE\"\nshare = 0.1", "effect 1 ('NOPE'): the playbook has no such action"),
        ("[[effect]]\naction = \"CALL\"\nshare = 0.1\n[[effect]]\naction = \"CALL\"\nshare = 0.2\nwhen = [\"shoe_size > 3\"]", "effect 2 ('CALL'): predicate 'shoe_size > 3': unknown feature"),
        ("[[effect]]\naction = \"CALL\"\nshare = 1.5", "share and points must be within -1..=1"),
        ("", "no [[effect]] or [[shift]] rules"),
        ("[[shift]]\nfrom = \"2026-02-01\"\nfactor = 2.0", "no [[effect]] rules"),
    ] {
        let err = parse_effects(text, "effects.toml", enc, known).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("effects.toml: ") && msg.contains(needle), "{msg}");
        assert_eq!(err.exit_code(), 2);
    }
    // concept shifts: a date, a factor ≥ 0, predicates on known inputs
    for (text, needle) in [
        (
            "[[shift]]\nfrom = \"February\"\nfactor = 2.0",
            "shift 1: from: expected a date",
        ),
        (
            "[[shift]]\nfrom = \"2026-02-01\"\nfactor = -1.0",
            "shift 1: factor must be a number ≥ 0",
        ),
        (
            "[[shift]]\nfrom = \"2026-02-01\"\nfactor = 2.0\nwhen = [\"shoe_size > 3\"]",
            "shift 1: predicate 'shoe_size > 3': unknown feature",
        ),
        (
            "[[shift]]\nfrom = \"2026-02-01\"\nfactor = 2.0\ncolour = 1",
            "unknown field",
        ),
    ] {
        let msg = churn::evaluate::effects::parse_world(text, "effects.toml", enc, known)
            .unwrap_err()
            .to_string();
        assert!(
            msg.contains("effects.toml: ") && msg.contains(needle),
            "{msg}"
        );
    }
    let world = churn::evaluate::effects::parse_world(
        "[[shift]]\nfrom = \"2026-02-01\"\nfactor = 3.0\nwhen = [\"tenure > 12\"]",
        "effects.toml",
        enc,
        known,
    )
    .unwrap();
    let shift = &world.shifts[0];
    let from = churn::time::parse("2026-02-01").unwrap();
    let mut row = vec![0.0; enc.width()];
    let tenure = enc.columns.iter().position(|c| c.name == "tenure").unwrap();
    row[tenure] = 24.0;
    let apply = |row: &[f64], at: i64, p: f64| {
        churn::evaluate::effects::Shift::apply_all(std::slice::from_ref(shift), row, at, p)
    };
    assert_eq!(apply(&row, from, 0.2), 0.2 * 3.0);
    assert_eq!(apply(&row, from, 0.5), 1.0, "at most 1");
    assert_eq!(apply(&row, from - 1, 0.2), 0.2, "not before the date");
    row[tenure] = 6.0;
    assert_eq!(apply(&row, from, 0.2), 0.2, "not for other customers");
}

/// With no action working, the many action × segment cells of a campaign would show effects
/// by chance if read one by one; their Benjamini–Hochberg verdicts show none in at least 95%
/// of 40 campaigns, and the JSON notes how many cells were compared.
#[test]
fn segment_cells_are_judged_at_a_false_discovery_rate() {
    let none = vec![("CALL".to_string(), 0.0), ("COUPON".to_string(), 0.0)];
    let (mut raw, mut adjusted) = (0, 0);
    for seed in 0..40 {
        let c = campaign(6_000, 9_000 + seed, none.clone());
        let ev = evaluate_campaign(&c);
        let cells: Vec<_> = ev
            .actions
            .iter()
            .filter(|a| a.segment.is_some() && a.p_value.is_some())
            .collect();
        assert!(cells.len() >= 4, "{} cells", cells.len());
        assert!(cells
            .iter()
            .all(|a| a.q_value.unwrap() + 1e-12 >= a.p_value.unwrap()));
        raw += cells
            .iter()
            .any(|a| a.p_value.unwrap() <= 0.05 && a.verdict != Verdict::TooFew)
            as u32;
        adjusted += cells
            .iter()
            .any(|a| matches!(a.verdict, Verdict::Saves | Verdict::Harms))
            as u32;
        assert_eq!(
            ev.notes.iter().any(|n| n.contains("Benjamini–Hochberg")),
            cells.len() >= churn::evaluate::MANY_CELLS,
            "{:?}",
            ev.notes
        );
    }
    eprintln!("campaigns with a chance effect: raw {raw} of 40, adjusted {adjusted} of 40");
    assert!(
        adjusted <= 2,
        "{adjusted} of 40 campaigns showed a chance effect"
    );
}

/// On stable data (no action works, the model is as calibrated as at training), realised AUC
/// equals the AUC of the same probabilities and independently derived labels, and the
/// estimate from the probabilities alone lands within ±0.02 of it.
#[test]
fn realised_auc_matches_the_scorer_and_the_estimate_matches_realised() {
    let c = campaign(20_000, 5, Vec::new());
    let ev = evaluate_campaign(&c);
    let churned: std::collections::HashSet<&str> = c
        .outcomes
        .iter()
        .filter(|o| o.event == churn::store::OutcomeEvent::Churned)
        .map(|o| o.customer_id.as_str())
        .collect();
    let p: Vec<f64> = c.records.iter().map(|r| r.probability).collect();
    let y: Vec<bool> = c
        .records
        .iter()
        .map(|r| churned.contains(r.customer_key.as_str()))
        .collect();
    let auc = churn::model::metrics::roc_auc(&p, &y);
    let o = &ev.overall;
    assert_eq!(o.pending, 0);
    assert_eq!(o.realised.n, 20_000);
    let realised = o.realised.auc.unwrap();
    assert!(
        (realised.value - auc).abs() < 1e-12,
        "{} vs {auc}",
        realised.value
    );
    assert!(realised.low < auc && auc < realised.high);
    assert!(
        (o.expected.auc - realised.value).abs() <= 0.02,
        "expected AUC {} vs realised {}",
        o.expected.auc,
        realised.value
    );
    assert!((o.expected.churn_rate - o.realised.churn_rate.value).abs() < 0.015);
    // calibrated: the deciles' realised rates sit near the predicted ones
    assert!(o.realised.ece.unwrap() < 0.03, "ECE {:?}", o.realised.ece);
    assert!(ev.by_segment.len() >= 2 && ev.by_month.len() == 1 && ev.by_version.len() == 1);
}

/// Before the horizon has passed, predictions without a churned event are pending, never
/// counted as retained; a window with too few labels says so instead of giving numbers.
#[test]
fn unmatured_predictions_are_pending_and_small_windows_say_so() {
    let c = campaign(2_000, 9, effects());
    let data = EvalData::from_campaign(&c);
    // 30 days after the start: some churn is known, nothing has matured as retained
    let period = Period {
        as_of: Some(churn::time::parse("2026-01-31").unwrap()),
        ..Period::default()
    };
    let opts = evaluate::options("telco", Some(&scorer().bundle), &period);
    let ev = evaluate::evaluate(&data, &opts).unwrap();
    let o = &ev.overall;
    assert!(o.pending > 1_500, "{}", o.pending);
    assert_eq!(
        o.realised.n, o.realised.churned,
        "only churned labels are known"
    );
    assert!(ev
        .notes
        .iter()
        .any(|n| n.contains("pending, not counted as retained")));
    // a one-day window: too few to judge, and no NaN anywhere in the JSON
    let period = Period {
        from: Some(churn::time::parse("2026-01-03").unwrap()),
        to: Some(churn::time::parse("2026-01-04").unwrap()),
        as_of: Some(as_of()),
        horizon_days: None,
    };
    let ev = evaluate::evaluate(
        &data,
        &evaluate::options("telco", Some(&scorer().bundle), &period),
    )
    .unwrap();
    assert!(ev.overall.predictions < 150);
    let seg = ev
        .by_segment
        .iter()
        .find(|g| g.realised.n < 30)
        .expect("a small segment");
    assert!(seg
        .realised
        .note
        .as_deref()
        .unwrap()
        .contains("too few matured predictions"));
    let json = serde_json::to_string(&ev).unwrap();
    assert!(!json.contains("NaN") && !json.contains("inf"));
    // from after to is refused, naming the field
    let bad = Period {
        from: Some(as_of()),
        to: Some(as_of() - 1),
        ..Period::default()
    };
    let e = evaluate::evaluate(&data, &evaluate::options("telco", None, &bad)).unwrap_err();
    assert!(e.to_string().starts_with("from: must be before to"), "{e}");
}

// ---------------------------------------------------------------- through the store

/// A campaign written to a real store evaluates exactly as in memory; the learned rates round
/// trip; `GET /v1/evaluation` answers the same JSON; a server started afterwards ranks with the
/// learned rates and says so, unless `--no-learned-rates`.
fn store_round_trip(url: &str) {
    let c = campaign(8_000, 21, effects());
    let want = evaluate_campaign(&c);
    assert!(
        want.learned_rates.iter().all(|l| l.applied),
        "{:?}",
        want.learned_rates
    );
    let store = store_with(url, &c);
    let model = store
        .block_on(evaluate::resolve_model(&store, None))
        .unwrap();
    assert_eq!(model, "telco");
    let data = store
        .block_on(churn::evaluate::load(
            &store,
            &model,
            (None, None),
            churn::store::Events::LabelsAndActions,
        ))
        .unwrap();
    let period = Period {
        as_of: Some(as_of()),
        ..Period::default()
    };
    let got = evaluate::evaluate(
        &data,
        &evaluate::options(&model, Some(&scorer().bundle), &period),
    )
    .unwrap();
    assert_eq!(
        serde_json::to_value(&got).unwrap(),
        serde_json::to_value(&want).unwrap()
    );

    // the HTTP view of the same store and playbook
    let dir = tempfile::tempdir().unwrap();
    let pb = write(dir.path(), "simulation.toml", PLAYBOOK);
    let args = ["--store", url, "--playbook", pb.to_str().unwrap()];
    let server = start(trained(), &args, &[]);
    let r = get(
        &server.addr,
        &format!("/v1/evaluation?model=telco&as_of={AS_OF}"),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json(), serde_json::to_value(&want).unwrap());
    // the ranking check reaches the metrics (0 stable, 1 warning, 2 alarm)
    let m = get(&server.addr, "/metrics");
    let level = want.performance.status.level();
    assert!(
        m.body.contains(&format!(
            "churn_performance_status{{model=\"telco\"}} {level}"
        )),
        "{}",
        m.body
    );
    let r = get(&server.addr, "/v1/evaluation?from=yesterday");
    assert_eq!(r.status, 422, "{}", r.body);
    assert_eq!(r.json()["error"]["field"], "from");
    let r = get(&server.addr, "/v1/evaluation?model=nope");
    assert_eq!(r.status, 404, "{}", r.body);
    // KPIs of February to April: the library's figures over the same events
    let opt = churn::evaluate::kpi::KpiOptions {
        from: churn::time::parse("2026-02-01").unwrap(),
        to: churn::time::parse("2026-05-01").unwrap(),
        ..churn::evaluate::kpi::KpiOptions::last_full_month(0)
    };
    let kpis = churn::evaluate::kpi::kpis(&EvalData::from_campaign(&c), &opt);
    assert!(kpis.overall.nps.is_some() && kpis.overall.retention_rate.is_some());
    let r = get(
        &server.addr,
        "/v1/kpis?from=2026-02-01&to=2026-05-01&by=segment",
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json(), serde_json::to_value(&kpis).unwrap());
    for bad in [
        "by=month",
        "from=2026-02-01",
        "margin_rate=2&from=2026-02-01&to=2026-05-01",
    ] {
        let r = get(&server.addr, &format!("/v1/kpis?{bad}"));
        assert_eq!(r.status, 422, "{bad}: {}", r.body);
    }
    drop(server);

    // learned rates: stored, read back, used by the next server
    store
        .block_on(store.save_learned_rates("telco", &want.learned_rates))
        .unwrap();
    let back = store.block_on(store.learned_rates("telco")).unwrap();
    assert_eq!(back, want.learned_rates);
    // an evaluation of a period without predictions learns nothing: it keeps the stored rates
    let empty = churn::evaluate::Period {
        from: Some(4_102_444_800_000), // 2100-01-01
        as_of: Some(as_of()),
        ..churn::evaluate::Period::default()
    };
    let nothing = store
        .block_on(churn::evaluate::load(
            &store,
            "telco",
            (empty.from, empty.to),
            churn::store::Events::LabelsAndActions,
        ))
        .unwrap();
    assert!(nothing.predictions.is_empty());
    let opts = churn::evaluate::options("telco", Some(&scorer().bundle), &empty);
    let none = churn::evaluate::evaluate(&nothing, &opts).unwrap();
    let replaced = store
        .block_on(store.save_learned_rates("telco", &none.learned_rates))
        .unwrap();
    assert_eq!(replaced, 0, "{:?}", none.learned_rates);
    assert_eq!(
        store.block_on(store.learned_rates("telco")).unwrap(),
        want.learned_rates,
        "an empty period wiped the learned rates"
    );
    let customer = two_year_newcomer();
    for (extra, learned) in [(None, true), (Some("--no-learned-rates"), false)] {
        let mut a = args.to_vec();
        a.extend(extra);
        let server = start(trained(), &a, &[]);
        let r = post(
            &server.addr,
            "/v1/score",
            &serde_json::json!({"customers": [customer]}),
        );
        assert_eq!(r.status, 200, "{}", r.body);
        let top = &r.json()["results"][0]["recommendations"][0];
        let why = top["why"].as_str().unwrap_or_else(|| panic!("{}", r.body));
        let (action, says) = if learned {
            ("CALL", "save rate learned from")
        } else {
            ("COUPON", "save rate from the playbook")
        };
        assert_eq!(top["action"], action, "{}", r.body);
        assert!(why.contains(says), "{why}");
    }
}

/// The riskiest Telco customer on a two-year contract in the first year (both actions are
/// worth offering): row index and encoded row.
fn two_year_newcomer_row() -> (usize, Vec<f64>) {
    let table = pool();
    let text = |c: &str, r: usize| {
        table.columns[table.index_of(c).unwrap()]
            .data
            .get(r)
            .to_text()
            .unwrap_or_default()
    };
    (0..table.nrows)
        .filter(|&r| {
            text("Contract", r) == "Two year" && text("tenure", r).parse::<f64>().unwrap() <= 12.0
        })
        .map(|r| (r, pool_row(r)))
        .max_by(|a, b| {
            let p = |row: &[f64]| scorer().bundle.model.predict(row).probability;
            p(&a.1).total_cmp(&p(&b.1))
        })
        .expect("a new two-year customer")
}

/// [`two_year_newcomer_row`] as JSON (treatment group: its id is chosen outside the control
/// group).
fn two_year_newcomer() -> Value {
    let (r, _) = two_year_newcomer_row();
    let mut c = telco_customers(r + 1).pop().unwrap();
    let id = (0..)
        .map(|k| format!("newcomer-{k}"))
        .find(|id| !churn::playbook::in_control(id, "sim", 50.0))
        .unwrap();
    c["customerID"] = Value::String(id);
    c
}

#[test]
fn store_round_trip_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    store_round_trip(&format!(
        "sqlite://{}",
        dir.path().join("store.db").display()
    ));
}

#[test]
fn store_round_trip_postgres() {
    let Some(db) = PgDb::create("eval_round_trip") else {
        return;
    };
    store_round_trip(&db.url());
}

/// `SimConfig::validate` checks the effects against the model's playbook: its actions pass,
/// an action it lacks is named, and no playbook at all is refused.
#[test]
fn simulation_effects_must_name_playbook_actions() {
    let playbook = scorer().bundle.playbook.as_ref();
    let cfg = |effects: Vec<(String, f64)>| SimConfig {
        effects,
        ..SimConfig::default()
    };
    cfg(effects()).validate(playbook).unwrap();
    let err = cfg(vec![("CALL".into(), 0.3), ("NOPE".into(), 0.1)])
        .validate(playbook)
        .unwrap_err();
    assert_eq!(err.to_string(), "effect: the playbook has no action 'NOPE'");
    assert_eq!(err.exit_code(), 2);
    let err = cfg(effects()).validate(None).unwrap_err();
    assert_eq!(err.to_string(), "model: the model has no playbook");
}

/// The walkthrough of the README with the binaries: `churn-train simulate` writes a campaign,
/// `churn-train evaluate` prints the summary, writes the JSON and stores the learned rates;
/// bad options are refused with the option named.
#[test]
fn simulate_then_evaluate_with_the_cli() {
    let dir = tempfile::tempdir().unwrap();
    let store = format!("sqlite://{}", dir.path().join("store.db").display());
    let model = trained().join("telco");
    let telco = telco();
    let simulate = |extra: &[&str]| {
        let mut args = vec![
            "simulate",
            "--model",
            model.to_str().unwrap(),
            "--store",
            &store,
        ];
        args.extend(["--input", telco.to_str().unwrap()]);
        args.extend(extra);
        run("churn-train", &args)
    };
    let (code, _, err) = simulate(&["--customers", "3000", "--effect", "WINBACK_EMAIL=0.4"]);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("simulated 3000 customers"), "{err}");
    let out = dir.path().join("evaluation.json");
    let (code, summary, err) = run(
        "churn-train",
        &[
            "evaluate",
            "--store",
            &store,
            "--models",
            trained().to_str().unwrap(),
            "--as-of",
            AS_OF,
            "--output",
            out.to_str().unwrap(),
        ],
    );
    assert_eq!(code, 0, "{err}");
    assert!(
        summary.contains("model telco: 3000 predictions of 3000 customers"),
        "{summary}"
    );
    assert!(summary.contains("action lift"), "{summary}");
    assert!(err.contains("learned save rates"), "{err}");
    let json: Value = serde_json::from_slice(&std::fs::read(&out).unwrap()).unwrap();
    assert_eq!(json["overall"]["realised"]["n"], 3000);
    assert_eq!(json["horizon_days"], 90);

    for (args, needle) in [
        (
            vec!["evaluate", "--store", &store, "--from", "soon"],
            "--from: expected a date",
        ),
        (
            vec![
                "evaluate",
                "--store",
                &store,
                "--model",
                "telco",
                "--models",
                "/nonexistent",
                "--from",
                "2026-02-01",
                "--to",
                "2026-01-01",
            ],
            "from: must be before to",
        ),
    ] {
        let (code, _, err) = run("churn-train", &args);
        assert_eq!(code, 2, "{args:?}: {err}");
        assert!(err.contains(needle), "{args:?}: {err}");
    }
    let (code, _, err) = simulate(&["--effect", "NOPE=0.3"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("no action 'NOPE'"), "{err}");
    for (flag, value, needle) in [
        (
            "--take-by-risk",
            "0.9,0.5",
            "--take-by-risk: expected HIGH,MEDIUM,LOW",
        ),
        (
            "--effect",
            "WINBACK_EMAIL=-1.5",
            "--effect: expected ACTION=SHARE with SHARE in -1..=1",
        ),
    ] {
        let (code, _, err) = simulate(&[flag, value]);
        assert_eq!(code, 2, "{flag} {value}: {err}");
        assert!(err.contains(needle), "{err}");
    }
    // selective take-up and a harmful action are simulated; the truth names the take-up
    let (code, _, err) = simulate(&[
        "--customers",
        "500",
        "--seed",
        "2",
        "--take-by-risk",
        "0.95,0.7,0.35",
        "--effect",
        "CHURN_REASON_SURVEY=-0.3",
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(
        err.contains("effect -0.30") && err.contains("take-up"),
        "{err}"
    );
    // effects as rules: a file that works and one naming an unknown feature
    let good = write(
        dir.path(),
        "effects.toml",
        "[[effect]]\naction = \"CHURN_REASON_SURVEY\"\nshare = 0.5\nwhen = ['Contract == \"Month-to-month\"']\n",
    );
    let (code, _, err) = simulate(&[
        "--customers",
        "300",
        "--seed",
        "3",
        "--effects",
        good.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{err}");
    let bad = write(
        dir.path(),
        "bad.toml",
        "[[effect]]\naction = \"CHURN_REASON_SURVEY\"\nshare = 0.5\nwhen = ['Colour == \"red\"']\n",
    );
    let (code, _, err) = simulate(&["--effects", bad.to_str().unwrap()]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("--effects: ")
            && err.contains("bad.toml: effect 1")
            && err.contains("unknown feature 'Colour'"),
        "{err}"
    );
    // a count that cannot be simulated is refused by name (u64::MAX panicked with exit 101)
    for n in ["18446744073709551615", "0", "10000001"] {
        let (code, _, err) = simulate(&["--customers", n]);
        assert_eq!(code, 2, "--customers {n}: {err}");
        assert!(err.contains("customers"), "{err}");
        assert!(!err.contains("panicked"), "{err}");
    }
}

// ---------------------------------------------------------------- drift

/// A campaign on the customers of a CSV text (the Telco layout), evaluated with labels matured.
fn drift_of(csv: &str, customers: usize) -> churn::evaluate::drift::DriftReport {
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "customers.csv", csv);
    let table = churn::io::read_table(&path, None).unwrap();
    let cfg = SimConfig {
        customers,
        seed: 77,
        ..SimConfig::default()
    };
    let c = simulate(scorer(), &table, &cfg).unwrap();
    evaluate_campaign(&c)
        .drift
        .expect("the bundle has a training profile")
}

fn telco_lines() -> (String, Vec<String>) {
    let text = std::fs::read_to_string(telco()).unwrap();
    let mut lines = text.lines().map(str::to_string);
    let header = lines.next().unwrap();
    (header, lines.collect())
}

/// Replaying the training customers raises no alarm; raising one input's values names that
/// input and no other; doubling one segment's share is detected in the segment mix.
#[test]
fn drift_names_the_shifted_input_and_the_segment_mix() {
    let (header, lines) = telco_lines();
    let replay = drift_of(&format!("{header}\n{}\n", lines.join("\n")), 20_000);
    assert_eq!(replay.rows, 20_000);
    assert!(
        replay.drifted_inputs.is_empty(),
        "{:?}",
        replay.drifted_inputs
    );
    assert!(replay
        .inputs
        .iter()
        .all(|d| d.status == churn::evaluate::drift::DriftStatus::Stable));
    assert_eq!(
        replay.segment_mix.as_ref().unwrap().status,
        churn::evaluate::drift::DriftStatus::Stable
    );
    assert_eq!(
        replay.score.status,
        churn::evaluate::drift::DriftStatus::Stable
    );
    assert_eq!(
        replay.base_rate.status,
        churn::evaluate::drift::DriftStatus::Stable
    );
    assert_eq!(replay.status, churn::evaluate::drift::DriftStatus::Stable);

    // MonthlyCharges 30% higher for everyone
    let col = header
        .split(',')
        .position(|h| h == "MonthlyCharges")
        .unwrap();
    let shifted: Vec<String> = lines
        .iter()
        .map(|l| {
            let mut f: Vec<String> = l.split(',').map(str::to_string).collect();
            let x: f64 = f[col].parse().unwrap();
            f[col] = format!("{:.2}", x * 1.3);
            f.join(",")
        })
        .collect();
    let d = drift_of(&format!("{header}\n{}\n", shifted.join("\n")), 5_000);
    assert_eq!(
        d.drifted_inputs,
        vec!["MonthlyCharges".to_string()],
        "{:?}",
        d.inputs
            .iter()
            .map(|x| (&x.name, x.psi))
            .collect::<Vec<_>>()
    );
    assert_eq!(d.status, churn::evaluate::drift::DriftStatus::Alarm);

    // one segment's share doubled: its customers' rows repeated
    let table = pool();
    let seg_of: Vec<String> = (0..table.nrows)
        .map(|r| {
            let row = pool_row(r);
            scorer()
                .score_encoded(&row, Vec::new(), None)
                .segment
                .unwrap()
                .segment
                .to_string()
        })
        .collect();
    let mut counts = std::collections::BTreeMap::<&str, usize>::new();
    for s in &seg_of {
        *counts.entry(s).or_default() += 1;
    }
    let n = table.nrows as f64;
    let (target, count) = counts
        .iter()
        .filter(|(_, &c)| (0.05..0.45).contains(&(c as f64 / n)))
        .min_by_key(|(_, &c)| c)
        .map(|(s, c)| (s.to_string(), *c))
        .unwrap_or_else(|| panic!("a segment of 5–45% of the customers: {counts:?}"));
    let q = count as f64 / n;
    // m extra rows: (q n + m) / (n + m) = 2 q
    let extra = (q * n / (1.0 - 2.0 * q)).round() as usize;
    let mine: Vec<&String> = lines
        .iter()
        .zip(&seg_of)
        .filter(|(_, s)| **s == target)
        .map(|(l, _)| l)
        .collect();
    let mut doubled: Vec<String> = lines.clone();
    doubled.extend((0..extra).map(|k| mine[k % mine.len()].clone()));
    let d = drift_of(&format!("{header}\n{}\n", doubled.join("\n")), 20_000);
    let mix = d.segment_mix.unwrap();
    assert!(
        mix.status >= churn::evaluate::drift::DriftStatus::Warning,
        "{mix:?}"
    );
    let bin = mix.bins.iter().find(|b| b.label == target).unwrap();
    assert!((bin.actual / bin.expected - 2.0).abs() < 0.25, "{bin:?}");
}

/// An input where one value holds ≥ 90% of the training rows (Telco's PhoneService: 90.3%
/// "Yes") had one bin, so its PSI was 0 whatever happened: 3,000 customers moved to "No" now
/// alarm on that input.
#[test]
fn a_shift_of_a_dominant_level_alarms() {
    let (header, lines) = telco_lines();
    let col = header.split(',').position(|h| h == "PhoneService").unwrap();
    let training = scorer().bundle.profile.as_ref().unwrap();
    let bins = &training
        .inputs
        .iter()
        .find(|p| p.name == "PhoneService")
        .unwrap()
        .bins;
    assert!(bins.shares.len() >= 2, "one bin: {bins:?}");
    let moved: Vec<String> = lines
        .iter()
        .map(|l| {
            let mut f: Vec<String> = l.split(',').map(str::to_string).collect();
            f[col] = "No".into();
            f.join(",")
        })
        .collect();
    let d = drift_of(&format!("{header}\n{}\n", moved.join("\n")), 3_000);
    let phone = d.inputs.iter().find(|x| x.name == "PhoneService").unwrap();
    assert_eq!(
        phone.status,
        churn::evaluate::drift::DriftStatus::Alarm,
        "{phone:?}"
    );
    assert!(phone.psi > 1.0, "{phone:?}");
    assert!(d.drifted_inputs.contains(&"PhoneService".to_string()));
}

/// The base rate is judged on the control group: a working campaign (treated customers churn
/// less) with a calibrated control group raises no alarm in ≥ 95% of 100 campaigns (judged over
/// everyone, half of such evaluations alarmed), while a real rise of the control group's churn
/// alarms.
#[test]
fn base_rate_is_judged_on_the_control_group() {
    use churn::evaluate::drift::DriftStatus;
    let strong = vec![("CALL".to_string(), 0.6), ("COUPON".to_string(), 0.6)];
    let mut alarms = 0;
    for seed in 0..100 {
        let c = campaign(6_000, 5_000 + seed, strong.clone());
        let b = evaluate_campaign(&c).drift.unwrap().base_rate;
        assert_eq!(b.group, "control");
        let (r, t) = (b.realised.unwrap(), b.treatment.unwrap());
        assert!(t.value < r.value, "treated churn {t:?} vs control {r:?}");
        alarms += u32::from(b.status == DriftStatus::Alarm);
    }
    assert!(alarms <= 5, "{alarms} of 100 working campaigns alarmed");

    // the control group's churn rises: 40% of its customers who stayed leave after all
    let mut c = campaign(20_000, 99, strong);
    let churned: std::collections::HashSet<String> = c
        .outcomes
        .iter()
        .filter(|o| o.event == churn::store::OutcomeEvent::Churned)
        .map(|o| o.customer_id.clone())
        .collect();
    let template = c
        .outcomes
        .iter()
        .find(|o| o.event == churn::store::OutcomeEvent::Churned)
        .unwrap()
        .clone();
    let mut rng = 7u64;
    let extra: Vec<_> = c
        .records
        .iter()
        .filter(|r| r.treatment == Some(churn::playbook::Treatment::Control))
        .filter(|r| !churned.contains(&r.customer_key))
        .filter(|_| {
            rng = rng
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (rng >> 33) % 10 < 4
        })
        .map(|r| churn::store::ValidOutcome {
            customer_id: r.customer_key.clone(),
            at: r.scored_at + 86_400_000,
            prediction_id: None,
            external_id: None,
            ..template.clone()
        })
        .collect();
    assert!(extra.len() > 100);
    c.outcomes.extend(extra);
    let b = evaluate_campaign(&c).drift.unwrap().base_rate;
    assert_eq!(b.status, DriftStatus::Alarm, "{b:?}");
}

/// The ranking check of an evaluation: on a campaign whose model is as calibrated as at
/// training it reads the control group and says stable, with the realised AUC's interval
/// around the expected AUC; the JSON carries it.
#[test]
fn the_ranking_check_reads_the_control_group() {
    use churn::evaluate::drift::DriftStatus;
    let c = campaign(20_000, 8, effects());
    let ev = evaluate_campaign(&c);
    let p = &ev.performance;
    assert_eq!(p.group, "control");
    assert_eq!(p.status, DriftStatus::Stable, "{p:?}");
    let r = p.realised_auc.unwrap();
    assert!(r.low < r.value && r.value < r.high, "{r:?}");
    let control = ev.by_group.iter().find(|g| g.key == "control").unwrap();
    assert_eq!(Some(r), control.realised.auc);
    let json = serde_json::to_value(&ev).unwrap();
    assert_eq!(json["performance"]["status"], "stable");
    assert!(ev.summary().contains("ranking (control group): Stable"));
}
