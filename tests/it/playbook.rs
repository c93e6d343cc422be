//! Retention playbook: brief strategies per RFM class, suppression, control group, validation
//! errors and levers.

use crate::util::*;
use churn::features::Encoder;
use churn::ingest::{load, CustomerData, Source};
use churn::io::RawValue;
use churn::playbook::{
    in_control, parse, Context, Playbook, RiskBand, Treatment, DEFAULT_PLAYBOOK,
};
use churn::segment::{LifecycleStage, RfmClass};
use std::collections::HashSet;

/// An encoder fitted on every row of `d`, as training would fit it.
fn encoder_over_all_rows(d: &CustomerData) -> Encoder {
    let rows: Vec<usize> = (0..d.nrows()).collect();
    Encoder::fit(d, &rows, 10)
}

fn cdnow_encoder() -> Encoder {
    encoder_over_all_rows(&load(&Source::Transactions(cdnow_spec())).unwrap())
}

fn telco_encoder() -> Encoder {
    encoder_over_all_rows(&telco_data())
}

fn advise(pb: &Playbook, class: RfmClass, p: f64) -> Vec<String> {
    let row = vec![0.0; 16];
    pb.advise(&Context {
        row: &row,
        probability: p,
        segment: None,
        rfm_class: Some(class),
        lifecycle: Some(LifecycleStage::Mature),
        customer_id: None,
        reasons: &[],
        uplift: None,
        day: 0,
    })
    .recommendations
    .into_iter()
    .map(|r| r.action.to_string())
    .collect()
}

#[test]
fn each_rfm_class_gets_the_briefs_actions() {
    let pb = Playbook::compile(
        parse(DEFAULT_PLAYBOOK, "default").unwrap(),
        &cdnow_encoder(),
        "default",
    )
    .unwrap();
    let brief: [(RfmClass, &[&str]); 4] = [
        (
            RfmClass::HighValueLoyal,
            &[
                "VIP_SERVICE",
                "PRIORITY_ACCESS",
                "CO_DESIGN_INVITE",
                "REFERRAL_INCENTIVE",
            ],
        ),
        (
            RfmClass::PotentialGrowth,
            &[
                "COMPLEMENTARY_PUSH",
                "LIMITED_TIME_DISCOUNT",
                "SUBSCRIPTION_OFFER",
            ],
        ),
        (
            RfmClass::ChurnRisk,
            &["WINBACK_EMAIL", "EXCLUSIVE_OFFER", "CHURN_REASON_SURVEY"],
        ),
        (
            RfmClass::LowValueSilent,
            &[
                "LOW_COST_REACTIVATION",
                "SIMPLIFY_PURCHASE",
                "SUPPRESS_MARKETING",
            ],
        ),
    ];
    for (class, allowed) in brief {
        for p in [0.45, 0.55] {
            let got = advise(&pb, class, p);
            assert!(!got.is_empty(), "{class} at {p}: nothing recommended");
            for a in &got {
                assert!(
                    allowed.contains(&a.as_str()),
                    "{class} at {p}: {a} is not in the brief's strategy {allowed:?}"
                );
            }
        }
    }
    // ranked by expected net value, highest first
    let row = vec![0.0; 16];
    let adv = pb.advise(&Context {
        row: &row,
        probability: 0.55,
        segment: None,
        rfm_class: Some(RfmClass::ChurnRisk),
        lifecycle: None,
        customer_id: None,
        reasons: &[],
        uplift: None,
        day: 0,
    });
    let evs: Vec<f64> = adv
        .recommendations
        .iter()
        .map(|r| r.expected_value)
        .collect();
    assert!(evs.windows(2).all(|w| w[0] >= w[1]), "{evs:?}");
    assert_eq!(adv.risk_band, RiskBand::Medium);
    let r = &adv.recommendations[0];
    assert!((r.expected_value - (0.55 * 100.0 * r.save_rate - r.cost)).abs() < 1e-9);
    assert!(r.why.to_string().contains("churn-risk-recall"), "{}", r.why);
}

#[test]
fn suppression_when_nothing_pays_and_low_cost_only_for_silent_customers() {
    let pb = Playbook::compile(
        parse(DEFAULT_PLAYBOOK, "default").unwrap(),
        &cdnow_encoder(),
        "default",
    )
    .unwrap();
    // low risk: every paid action has negative expected value → suppress
    let got = advise(&pb, RfmClass::ChurnRisk, 0.02);
    assert_eq!(got, vec!["SUPPRESS_MARKETING".to_string()]);
    // a high-risk low-value silent customer still gets low-cost actions only (cost cap 1.0),
    // even though the high-risk rule proposes an expensive offer
    let catalogue = parse(DEFAULT_PLAYBOOK, "default").unwrap().actions;
    for p in [0.3, 0.7, 0.95] {
        for a in advise(&pb, RfmClass::LowValueSilent, p) {
            let cost = catalogue.iter().find(|x| x.id == a).unwrap().cost;
            assert!(cost <= 1.0, "{a} costs {cost} at p = {p}");
        }
    }
}

#[test]
fn control_group_is_stable_and_close_to_the_share() {
    let ids: Vec<String> = (0..100_000).map(|i| format!("C{i:06}")).collect();
    let a: Vec<bool> = ids.iter().map(|id| in_control(id, "exp-1", 10.0)).collect();
    let b: Vec<bool> = ids.iter().map(|id| in_control(id, "exp-1", 10.0)).collect();
    assert_eq!(a, b, "assignment is deterministic");
    let share = a.iter().filter(|&&c| c).count() as f64 / ids.len() as f64;
    assert!((share - 0.10).abs() < 0.005, "control share {share}");
    let other: Vec<bool> = ids.iter().map(|id| in_control(id, "exp-2", 10.0)).collect();
    let overlap =
        a.iter().zip(&other).filter(|(x, y)| **x && **y).count() as f64 / ids.len() as f64;
    assert!(
        overlap < 0.02,
        "a new experiment reshuffles the groups: {overlap}"
    );
    assert!(!ids.iter().any(|id| in_control(id, "exp-1", 0.0)));
    // control customers get no action
    let mut file = parse(DEFAULT_PLAYBOOK, "default").unwrap();
    file.holdout_percent = 50.0;
    let pb = Playbook::compile(file, &cdnow_encoder(), "default").unwrap();
    let row = vec![0.0; 16];
    let mut seen = HashSet::new();
    for id in ids.iter().take(200) {
        let adv = pb.advise(&Context {
            row: &row,
            probability: 0.5,
            segment: None,
            rfm_class: Some(RfmClass::ChurnRisk),
            lifecycle: None,
            customer_id: Some(id),
            reasons: &[],
            uplift: None,
            day: 0,
        });
        seen.insert(adv.treatment);
        if adv.treatment == Treatment::Control {
            assert!(adv.recommendations.is_empty());
            assert_eq!(
                adv.treatment,
                if in_control(id, &pb.file.experiment, 50.0) {
                    Treatment::Control
                } else {
                    Treatment::Treatment
                }
            );
        }
    }
    assert_eq!(seen.len(), 2);
}

#[test]
fn validation_errors_name_the_file_the_rule_and_the_problem() {
    let enc = telco_encoder();
    let base = std::fs::read_to_string(root().join("training/telco-playbook.toml")).unwrap();
    assert!(Playbook::compile(parse(&base, "p.toml").unwrap(), &enc, "p.toml").is_ok());
    let rule = |body: &str| format!("{base}\n[[rules]]\nid = \"bad-rule\"\n{body}\n");
    let cases: Vec<(String, &str)> = vec![
        (
            rule("actions = [\"TELEPORT\"]"),
            "rule 'bad-rule': actions: unknown action 'TELEPORT'",
        ),
        (
            rule("actions = [\"WINBACK_EMAIL\"]\nwhen = ['Contrakt == \"One year\"']"),
            "unknown feature 'Contrakt'",
        ),
        (
            rule("actions = [\"WINBACK_EMAIL\"]\nwhen = ['tenure 5']"),
            "has no operator",
        ),
        (
            rule("actions = [\"WINBACK_EMAIL\"]\nwhen = ['Contract == \"Ten year\"']"),
            "'Ten year' is not a level of 'Contract'",
        ),
        (
            rule("actions = [\"WINBACK_EMAIL\"]\nwhen = ['Contract > \"One year\"']"),
            "is categorical; use == or !=",
        ),
        (
            rule("actions = [\"WINBACK_EMAIL\"]\nwhen = ['tenure > \"long\"']"),
            "expected a number",
        ),
        (
            rule("actions = [\"WINBACK_EMAIL\"]\nrfm_class = [\"vip\"]"),
            "unknown RFM class 'vip'",
        ),
        (
            rule("actions = [\"WINBACK_EMAIL\"]\nlifecycle = [\"teen\"]"),
            "unknown lifecycle stage 'teen'",
        ),
        (
            rule("actions = [\"WINBACK_EMAIL\"]\nrisk_band = [\"extreme\"]"),
            "unknown risk band 'extreme'",
        ),
        (rule("actions = []"), "lists no actions"),
        (
            base.replace(
                "save_rate = 0.35\nmessage = \"{customer_id}: your personal",
                "save_rate = 1.5\nmessage = \"{customer_id}: your personal",
            ),
            "action 'VIP_SERVICE': save_rate must be within 0..=1, got 1.5",
        ),
        (
            base.replace(
                "cost = 25.0\nsave_rate = 0.35",
                "cost = -3.0\nsave_rate = 0.35",
            ),
            "action 'VIP_SERVICE': cost must be ≥ 0, got -3",
        ),
        (
            base.replace("channel = \"account_manager\"", "channel = \"pigeon\""),
            "unknown channel 'pigeon'",
        ),
        (
            base.replace("holdout_percent = 10", "holdout_percent = 80"),
            "holdout_percent: must be 0..=50, got 80",
        ),
        (
            base.replace(
                "holdout_percent = 10",
                "holdout_percent = 10\nlever_min_support = 0",
            ),
            "lever_min_support: must be at least 1",
        ),
        (
            base.replace("medium = 0.3", "medium = 0.7"),
            "risk_bands: need 0 < medium < high < 1",
        ),
        (
            base.replace(
                "expression = \"MonthlyCharges * 12\"",
                "expression = \"ARPU * 12\"",
            ),
            "value.expression: unknown feature 'ARPU'",
        ),
        (
            base.replace(
                "expression = \"MonthlyCharges * 12\"",
                "expression = \"MonthlyCharges *\"",
            ),
            "ends with an operator",
        ),
        (
            base.replace(
                "actionable = [\"Contract\"",
                "actionable = [\"tenure\", \"Contract\"",
            ),
            "'tenure' is numeric",
        ),
        (
            base.replace(
                "actionable = [\"Contract\"",
                "actionable = [\"Colour\", \"Contract\"",
            ),
            "actionable: unknown feature 'Colour'",
        ),
        (
            base.replace(
                "actionable = [\"Contract\"",
                "actionable = [\"Contract\", \"Contract\"",
            ),
            "actionable: 'Contract' is listed twice",
        ),
        (
            base.replace(
                "cost_caps = { low_value_silent = 1.0 }",
                "cost_caps = { silent = 1.0 }",
            ),
            "cost_caps: unknown RFM class 'silent'",
        ),
        (
            base.replace(
                "suppress_action = \"SUPPRESS_MARKETING\"",
                "suppress_action = \"SHRUG\"",
            ),
            "suppress_action: unknown action 'SHRUG'",
        ),
    ];
    for (text, needle) in cases {
        assert_ne!(text, base, "case {needle} did not change the playbook");
        let err = match parse(&text, "p.toml") {
            Err(e) => e.to_string(),
            Ok(f) => match Playbook::compile(f, &enc, "p.toml") {
                Err(e) => e.to_string(),
                Ok(_) => panic!("accepted a bad playbook: {needle}"),
            },
        };
        // the file and the line of the key at fault (TOML syntax errors name theirs too)
        assert!(
            err.starts_with("p.toml, line ") || err.starts_with("p.toml: TOML parse error at line"),
            "case {needle}: {err}"
        );
        assert!(err.contains(needle), "expected '{needle}' in: {err}");
    }
    // a TOML typo names the key and line
    let e = parse("name = \"x\"\nactionz = []\n[[actions]]\n", "p.toml")
        .unwrap_err()
        .to_string();
    assert!(e.contains("p.toml") && e.contains("actionz"), "{e}");
}

#[test]
fn levers_change_only_actionable_inputs_and_always_lower_the_risk() {
    let scorer =
        churn::scoring::Scorer::new(churn::bundle::load(&trained_example().join("telco")).unwrap());
    let actionable: HashSet<String> = scorer
        .bundle
        .playbook
        .as_ref()
        .unwrap()
        .file
        .actionable
        .iter()
        .cloned()
        .collect();
    let table = churn::io::read_table(&telco(), None).unwrap();
    let bind = scorer.bind(&table).unwrap();
    let names: Vec<String> = scorer.input_names().map(String::from).collect();
    let mut with_levers = 0;
    for r in 0..500 {
        let mut w = Vec::new();
        let row = scorer
            .encode(|i| Some(table.columns[bind[i]].data.get(r)), &mut w)
            .unwrap();
        let levers = scorer.levers(&row);
        with_levers += !levers.is_empty() as usize;
        for l in levers {
            assert!(l.risk_after < l.risk_before, "row {r}: {l}");
            for c in &l.changes {
                assert!(
                    actionable.contains(c.field),
                    "row {r}: changed non-actionable {}",
                    c.field
                );
                assert_ne!(c.from, c.to);
            }
            // applying the change to the raw customer gives exactly the promised risk
            let s = scorer
                .score(|i| match l.changes.iter().find(|c| c.field == names[i]) {
                    Some(c) => Some(RawValue::Text(c.to)),
                    None => Some(table.columns[bind[i]].data.get(r)),
                })
                .unwrap();
            assert_eq!(s.prediction.probability, l.risk_after, "row {r}: {l}");
        }
    }
    assert!(
        with_levers > 100,
        "levers found for {with_levers} of 500 customers"
    );
}
