//! Uplift from logged campaigns (issue 33), checked on the simulator with heterogeneous
//! effects of known truth: a CALL pushes customers with more than four years of tenure out
//! (+10 points: sleeping dogs), saves 60% of the would-be churners among the other DSL
//! customers, and does nothing for the rest — among them the riskiest, fibre customers on
//! monthly contracts, who leave whatever we do (lost causes).

use super::evaluation::{pool, pool_row, pool_text, store_with};
use crate::util::*;
use churn::evaluate::simulate::{simulate, Campaign, SimConfig};
use churn::evaluate::uplift::{self as up, UpliftRows};
use churn::evaluate::EvalData;
use churn::model::uplift::{Learner, UpliftParams};
use churn::scoring::Scorer;
use std::sync::OnceLock;

pub(crate) const EFFECTS: &str = r#"
[[effect]]
action = "CALL"
points = -0.1
when = ["tenure > 48"]
[[effect]]
action = "CALL"
share = 0.6
when = ['InternetService == "DSL"']
"#;

/// CALL for customers past their first year, COUPON for the others, half held out; both cheap
/// enough that nearly everyone they are proposed to is offered them (an experiment across the
/// population, so the effect can be learned everywhere).
pub(crate) const PLAYBOOK: &str = r#"
name = "uplift"
experiment = "uplift"
holdout_percent = 50
top_n = 2
[value]
default = 100.0
[[actions]]
id = "CALL"
name = "Call"
channel = "phone"
cost = 0.1
save_rate = 0.05
[[actions]]
id = "COUPON"
name = "Coupon"
channel = "email"
cost = 0.1
save_rate = 0.05
[[rules]]
id = "new"
actions = ["COUPON"]
when = ["tenure <= 12"]
[[rules]]
id = "established"
actions = ["CALL"]
when = ["tenure > 12"]
"#;

fn scorer() -> &'static Scorer {
    static S: OnceLock<Scorer> = OnceLock::new();
    S.get_or_init(|| {
        let mut s = Scorer::new(churn::bundle::load(&trained().join("telco")).unwrap());
        s.set_playbook(
            churn::playbook::parse(PLAYBOOK, "uplift.toml").unwrap(),
            "uplift.toml",
        )
        .unwrap();
        s
    })
}

/// Every label has matured by then (scoring in January 2026, 90-day horizon).
fn as_of() -> i64 {
    churn::time::parse("2026-06-01").unwrap()
}

fn campaign(customers: usize, seed: u64) -> Campaign {
    let rules = churn::evaluate::effects::parse_effects(
        EFFECTS,
        "effects.toml",
        &scorer().bundle.encoder,
        |a| a == "CALL" || a == "COUPON",
    )
    .unwrap();
    let cfg = SimConfig {
        customers,
        seed,
        effect_rules: rules,
        ..SimConfig::default()
    };
    simulate(scorer(), pool(), &cfg).unwrap()
}

fn rows_of(c: &Campaign) -> UpliftRows {
    let data = EvalData::from_campaign(c);
    up::collect(
        &data,
        &scorer().bundle.encoder,
        90 * churn::time::DAY_MS,
        as_of(),
        &mut |i| Some(c.records[i].input.clone()),
    )
}

/// The true effect of CALL on a Telco customer (drop in churn probability).
fn true_effect(internet: &str, tenure: f64, p: f64) -> f64 {
    if tenure > 48.0 {
        -(0.1f64.min(1.0 - p))
    } else if internet == "DSL" {
        0.6 * p
    } else {
        0.0
    }
}

#[test]
fn uplift_models_find_who_an_action_keeps_and_whom_it_pushes_out() {
    let c = campaign(60_000, 7);
    let rows = rows_of(&c);
    let n = &rows.counts;
    assert_eq!(n.customers, 60_000);
    assert_eq!(n.pending, 0);
    assert_eq!(n.rows + n.no_arm + n.unreadable, n.customers);
    let call = rows.actions.iter().find(|a| a.action == "CALL").unwrap();
    let (t, k) = call.rows.iter().fold((0, 0), |(t, k), r| {
        (t + usize::from(r.treated), k + usize::from(!r.treated))
    });
    assert!(t > 2000 && k > 2000, "CALL rows: {t} treated, {k} control");

    let bundle = &scorer().bundle;
    let (u, card, fits) = up::train(&rows, bundle, "v1", &UpliftParams::default()).unwrap();
    let a = card.actions.iter().find(|a| a.action == "CALL").unwrap();
    assert_eq!(a.treated, t);
    assert_eq!(a.learners.len(), Learner::ALL.len());
    for l in &a.learners {
        // every learner ranks better than chance on rows it did not see
        assert!(
            l.held_out.qini.low > 0.0,
            "{}: {:?}",
            l.learner,
            l.held_out.qini
        );
        assert_eq!(l.held_out.rows, t + k);
    }
    let best = a
        .learners
        .iter()
        .max_by(|x, y| x.held_out.qini.value.total_cmp(&y.held_out.qini.value))
        .unwrap();
    assert_eq!(a.learner, best.learner);
    assert!(
        a.applied,
        "CALL's model ranks better than chance: it is used"
    );
    // COUPON does nothing: a model of noise must not rank anyone
    let coupon = card.actions.iter().find(|a| a.action == "COUPON").unwrap();
    assert!(!coupon.applied, "{:?}", coupon.learners[0].held_out.qini);
    assert!(u.applied("COUPON").is_none() && u.action("COUPON").is_some());
    let fit = &fits.iter().find(|f| f.action == "CALL").unwrap().fit;
    assert_eq!(fit.folds.len(), t + k);

    // against the truth, customer by customer of the Telco table
    let model = u.action("CALL").unwrap();
    let table = pool();
    let text = pool_text;
    // CALL is proposed to customers past their first year: the effect is learned there
    let eligible: Vec<usize> = (0..table.nrows)
        .filter(|&r| text("tenure", r).parse::<f64>().unwrap() > 12.0)
        .collect();
    let (mut pred, mut truth, mut risk) = (vec![], vec![], vec![]);
    for r in 0..table.nrows {
        let row = pool_row(r);
        let p = scorer()
            .score_encoded(&row, Vec::new(), None)
            .prediction
            .probability;
        truth.push(true_effect(
            &text("InternetService", r),
            text("tenure", r).parse().unwrap(),
            p,
        ));
        pred.push(model.effect(&row));
        risk.push(p);
    }
    let mean_where = |keep: &dyn Fn(f64) -> bool| {
        let v: Vec<f64> = eligible
            .iter()
            .filter(|&&r| keep(truth[r]))
            .map(|&r| pred[r])
            .collect();
        v.iter().sum::<f64>() / v.len() as f64
    };
    let (h, x, z) = (
        mean_where(&|t| t > 0.0),
        mean_where(&|t| t < 0.0),
        mean_where(&|t| t == 0.0),
    );
    assert!(h > z + 0.05, "helped {h:.3}, no effect {z:.3}");
    assert!(x < z, "harmed {x:.3}, no effect {z:.3}");
    assert!(
        x < 0.0,
        "harmed customers are predicted to be pushed out: {x:.3}"
    );
    let on = |v: &[f64]| -> Vec<f64> { eligible.iter().map(|&r| v[r]).collect() };
    let corr = correlation(&on(&pred), &on(&truth));
    assert!(corr > 0.6, "correlation with the true effect: {corr:.3}");
    // the card says how sure it is and reads back
    assert!(card.skipped.iter().all(|(a, _)| a != "CALL"));
    let text = up::summary(&card);
    assert!(
        text.contains("CALL:") && text.contains("held-out Qini"),
        "{text}"
    );

    // the policy: among the customers CALL may be offered to, a budget of 30% of them chosen
    // by predicted uplift, by risk (today's ranking) and by the true effect (the oracle)
    let budget = eligible.len() * 3 / 10;
    let saves = |key: &dyn Fn(usize) -> f64| {
        let mut order: Vec<usize> = (0..eligible.len()).collect();
        order.sort_by(|&a, &b| key(b).total_cmp(&key(a)));
        order[..budget]
            .iter()
            .map(|&k| truth[eligible[k]])
            .sum::<f64>()
    };
    let by_uplift = saves(&|k| pred[eligible[k]]);
    let by_risk = saves(&|k| risk[eligible[k]]);
    let oracle = saves(&|k| truth[eligible[k]]);
    assert!(
        by_uplift >= 0.85 * oracle,
        "uplift policy {by_uplift:.1} vs oracle {oracle:.1} saves"
    );
    assert!(
        by_uplift >= 1.3 * by_risk,
        "uplift policy {by_uplift:.1} vs risk-ranked {by_risk:.1} saves"
    );
    // the customers it would push out are spared: contacts of the harmed drop
    let harmed_contacts = |key: &dyn Fn(usize) -> f64| {
        let mut order: Vec<usize> = (0..eligible.len()).collect();
        order.sort_by(|&a, &b| key(b).total_cmp(&key(a)));
        order[..budget]
            .iter()
            .filter(|&&k| truth[eligible[k]] < 0.0)
            .count()
    };
    let (hu, hr) = (
        harmed_contacts(&|k| pred[eligible[k]]),
        harmed_contacts(&|k| risk[eligible[k]]),
    );
    eprintln!(
        "uplift policy: {by_uplift:.1} saves ({:.2} of the oracle's {oracle:.1}, {:.2}x risk-ranked {by_risk:.1}); sleeping dogs contacted {hu} vs {hr}",
        by_uplift / oracle,
        by_uplift / by_risk
    );
    assert!(
        hu as f64 <= 0.2 * hr as f64,
        "sleeping dogs contacted: uplift {hu}, risk {hr}"
    );
}

fn correlation(a: &[f64], b: &[f64]) -> f64 {
    let n = a.len() as f64;
    let (ma, mb) = (a.iter().sum::<f64>() / n, b.iter().sum::<f64>() / n);
    let (mut sab, mut saa, mut sbb) = (0.0, 0.0, 0.0);
    for (x, y) in a.iter().zip(b) {
        sab += (x - ma) * (y - mb);
        saa += (x - ma).powi(2);
        sbb += (y - mb).powi(2);
    }
    sab / (saa * sbb).sqrt()
}

#[test]
fn an_uplift_bundle_is_deterministic_and_refused_beside_another_model() {
    let c = campaign(12_000, 3);
    let rows = rows_of(&c);
    let bundle = &scorer().bundle;
    let params = UpliftParams::default();
    let dir = tempfile::tempdir().unwrap();
    let mut bytes = Vec::new();
    for _ in 0..2 {
        let (u, mut card, _) = up::train(&rows, bundle, "v1", &params).unwrap();
        churn::bundle::uplift::save(dir.path(), &u, &mut card).unwrap();
        bytes.push(std::fs::read(dir.path().join("uplift.bin")).unwrap());
    }
    assert_eq!(bytes[0], bytes[1], "same rows and seed, same bytes");
    let (back, version) = churn::bundle::uplift::load(dir.path(), bundle)
        .unwrap()
        .unwrap();
    assert_eq!(version.len(), 12);
    assert_eq!(back.model, bundle.name);
    let card: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("uplift_card.json")).unwrap())
            .unwrap();
    assert_eq!(card["version"], version.as_str());
    assert!(card["actions"][0]["learners"][0]["held_out"]["qini_curve"].is_array());

    let mut other = bundle.clone();
    other.name = "bank".into();
    let e = churn::bundle::uplift::load(dir.path(), &other).unwrap_err();
    assert!(e.to_string().contains("trained for model 'telco'"), "{e}");
    // a damaged file is refused, not half-read
    let file = dir.path().join("uplift.bin");
    let mut b = std::fs::read(&file).unwrap();
    let last = b.len() - 1;
    b[last] ^= 1;
    std::fs::write(&file, &b).unwrap();
    let e = churn::bundle::uplift::load(dir.path(), bundle).unwrap_err();
    assert!(e.to_string().contains("checksum"), "{e}");
}

#[test]
fn too_few_rows_or_no_control_is_a_clear_error() {
    let c = campaign(300, 5);
    let rows = rows_of(&c);
    let e = up::train(&rows, &scorer().bundle, "v1", &UpliftParams::default()).unwrap_err();
    let msg = e.to_string();
    assert!(
        msg.contains("no action has enough matured rows") && msg.contains("300 customers"),
        "{msg}"
    );
    assert!(msg.contains("each arm needs 100"), "{msg}");
    // no control customers at all: every row treated
    let mut rows = rows_of(&campaign(8000, 6));
    for a in &mut rows.actions {
        a.rows.iter_mut().for_each(|r| r.treated = true);
    }
    let e = up::train(&rows, &scorer().bundle, "v1", &UpliftParams::default()).unwrap_err();
    assert!(e.to_string().contains("0 control rows"), "{e}");
}

/// The command line: a simulated campaign in a SQLite store, `churn-train uplift` writes the
/// uplift bundle and card beside the model and the training rows for peers.
#[test]
fn uplift_with_the_cli() {
    let dir = tempfile::tempdir().unwrap();
    let store = format!("sqlite://{}", dir.path().join("store.db").display());
    let models = dir.path().join("models");
    std::fs::create_dir_all(models.join("telco")).unwrap();
    std::fs::copy(
        champion_dir(&trained().join("telco")).join("model.bin"),
        models.join("telco/model.bin"),
    )
    .unwrap();
    let model = models.join("telco");
    let telco = telco();
    let effects = dir.path().join("effects.toml");
    // the same heterogeneous effect for every action of the model's playbook
    let actions: Vec<String> = churn::bundle::load(&model)
        .unwrap()
        .bundle
        .playbook
        .unwrap()
        .file
        .actions
        .iter()
        .map(|a| a.id.clone())
        .collect();
    let text: String = actions.iter().map(|a| EFFECTS.replace("CALL", a)).collect();
    std::fs::write(&effects, text).unwrap();
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
    let (code, _, err) = simulate(&["--customers", "300"]);
    assert_eq!(code, 0, "{err}");
    let uplift = |extra: &[&str]| {
        let mut args = vec![
            "uplift",
            "--store",
            &store,
            "--models",
            models.to_str().unwrap(),
            "--as-of",
            "2026-06-01",
        ];
        args.extend(extra);
        run("churn-train", &args)
    };
    let (code, _, err) = uplift(&[]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("no action has enough matured rows"), "{err}");
    assert!(!model.join("uplift.bin").exists());

    std::fs::remove_file(dir.path().join("store.db")).unwrap();
    let (code, _, err) = simulate(&[
        "--customers",
        "30000",
        "--effects",
        effects.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{err}");
    let rows_out = dir.path().join("rows.csv");
    let (code, out, err) = uplift(&["--rows-out", rows_out.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("held-out Qini"), "{out}");
    assert!(model.join("uplift.bin").exists() && model.join("uplift_card.json").exists());
    // the model's report (re-rendered from its card) has the uplift section with its Qini plot
    std::fs::copy(
        champion_dir(&trained().join("telco")).join("model_card.json"),
        model.join("model_card.json"),
    )
    .unwrap();
    let (code, _, err) = run(
        "churn-train",
        &["report", "--model", model.to_str().unwrap()],
    );
    assert_eq!(code, 0, "{err}");
    let html = std::fs::read_to_string(model.join("report.html")).unwrap();
    assert!(
        html.contains("id=\"uplift\"") && html.contains("Qini curves"),
        "no uplift section"
    );
    let table = churn::io::read_table(&rows_out, None).unwrap();
    for col in [
        "tenure", "Contract", "action", "treated", "churned", "fold", "effect_t", "effect_x",
    ] {
        assert!(table.index_of(col).is_some(), "rows.csv lacks {col}");
    }
    assert!(table.nrows > 1000);

    // the candidate policies on the same log, before switching to one
    let out_json = dir.path().join("evaluation.json");
    let evaluate = |policy: &str, output: bool| {
        let mut args = vec![
            "evaluate",
            "--store",
            &store,
            "--models",
            models.to_str().unwrap(),
            "--as-of",
            "2026-06-01",
            "--no-learned-rates",
            "--policy",
            policy,
        ];
        if output {
            args.extend(["--output", out_json.to_str().unwrap()]);
        }
        run("churn-train", &args)
    };
    let (code, out, err) = evaluate("playbook,risk:0.3,uplift", true);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("policies (off-policy"), "{out}");
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&out_json).unwrap()).unwrap();
    let p = &json["policies"]["policies"];
    assert_eq!(p.as_array().unwrap().len(), 3);
    assert_eq!(p[1]["policy"], "risk:0.3");
    assert!((p[1]["offered_share"].as_f64().unwrap() - 0.3).abs() < 0.01);
    let dr = &p[2]["doubly_robust"];
    assert!(dr["low"].as_f64().unwrap() <= dr["high"].as_f64().unwrap());
    for (bad, needle) in [
        ("risk:2", "expected playbook, nobody, risk:SHARE"),
        ("greedy", "expected playbook, nobody, risk:SHARE"),
    ] {
        let (code, _, err) = evaluate(bad, false);
        assert_eq!(code, 2, "{err}");
        assert!(err.contains(needle), "{err}");
    }

    // a candidate playbook: the model's own rules without exploration picks every customer's
    // best action itself; matched against the logged draws by their propensities, its value
    // agrees with offering everyone what was drawn
    let mut file = churn::bundle::load(&model)
        .unwrap()
        .bundle
        .playbook
        .unwrap()
        .file;
    file.learning.explore = 0.0;
    let same = dir.path().join("same.toml");
    std::fs::write(&same, toml::to_string(&file).unwrap()).unwrap();
    let policy_list = format!("playbook,{}", same.display());
    let (code, out, err) = evaluate(&policy_list, true);
    assert_eq!(code, 0, "{err}");
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&out_json).unwrap()).unwrap();
    let p = &json["policies"]["policies"];
    assert_eq!(p[1]["policy"], same.display().to_string(), "{out}");
    let interval = |v: &serde_json::Value| {
        (
            v["doubly_robust"]["low"].as_f64().unwrap(),
            v["doubly_robust"]["high"].as_f64().unwrap(),
        )
    };
    let ((a_low, a_high), (b_low, b_high)) = (interval(&p[0]), interval(&p[1]));
    assert!(
        a_low <= b_high && b_low <= a_high,
        "the candidate's value {:?} and the logged playbook's {:?} disagree",
        (b_low, b_high),
        (a_low, a_high)
    );
    assert!(p[1]["offered_share"].as_f64().unwrap() > 0.5, "{}", p[1]);
    // one naming an action the log never offered is refused, naming it
    file.actions.push(churn::playbook::Action {
        id: "BRAND_NEW".into(),
        ..file.actions[0].clone()
    });
    file.rules[0].actions.push("BRAND_NEW".into());
    let new = dir.path().join("new.toml");
    std::fs::write(&new, toml::to_string(&file).unwrap()).unwrap();
    let (code, _, err) = evaluate(new.to_str().unwrap(), false);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("BRAND_NEW") && err.contains("not in the model's playbook"),
        "{err}"
    );
}

/// With an uplift bundle beside the model, the scorer ranks by predicted incremental value,
/// never offers an action to a customer it predicts to push out, and says so; without one,
/// nothing changes.
#[test]
fn scoring_ranks_by_uplift_and_spares_whom_an_action_would_push_out() {
    let c = campaign(30_000, 11);
    let rows = rows_of(&c);
    let (mut u, mut card, _) =
        up::train(&rows, &scorer().bundle, "v1", &UpliftParams::default()).unwrap();
    // CALL only: customers offered COUPON alone are scored as before
    u.actions.retain(|a| a.action == "CALL");
    let dir = tempfile::tempdir().unwrap();
    let mut plain = scorer().clone();
    assert!(
        !plain.attach_uplift(dir.path()).unwrap(),
        "no uplift bundle yet"
    );
    churn::bundle::uplift::save(dir.path(), &u, &mut card).unwrap();
    let mut s = scorer().clone();
    assert!(s.attach_uplift(dir.path()).unwrap());
    assert!(u.applied("CALL").is_some());
    let model = u.action("CALL").unwrap();
    let (mut spared, mut ranked, mut unchanged) = (0, 0, 0);
    for r in 0..pool().nrows {
        let row = pool_row(r);
        let before = plain.score_encoded(&row, Vec::new(), None);
        let after = s.score_encoded(&row, Vec::new(), None);
        assert_eq!(before.prediction.probability, after.prediction.probability);
        let (b, a) = (before.advice.unwrap(), after.advice.unwrap());
        let proposed = b.recommendations.iter().any(|x| x.action == "CALL")
            || a.recommendations.iter().any(|x| x.action == "CALL")
            || a.harms.contains(&"CALL");
        let tau = model.effect(&row);
        if a.harms.contains(&"CALL") {
            assert!(tau < 0.0);
            assert!(a.recommendations.iter().all(|x| x.action != "CALL"));
            spared += 1;
        }
        for x in a.recommendations.iter().filter(|x| x.action == "CALL") {
            assert_eq!(x.uplift, Some(tau));
            assert!((x.expected_value - (tau * a.value - x.cost)).abs() < 1e-9);
            let why = x.why.to_string();
            assert!(
                why.contains("uplift model (") && why.contains("held-out Qini"),
                "{why}"
            );
            ranked += 1;
        }
        if !proposed {
            // COUPON has no uplift model here: its ranking is as before
            let j = |v: &churn::playbook::Advice| serde_json::to_string(v).unwrap();
            if b.recommendations
                .iter()
                .all(|x| u.action(x.action).is_none())
            {
                assert_eq!(j(&b), j(&a));
                unchanged += 1;
            }
        }
    }
    assert!(spared > 50, "customers spared CALL: {spared}");
    assert!(ranked > 100, "CALL ranked by uplift: {ranked}");
    assert!(unchanged > 100, "untouched customers: {unchanged}");
}

/// `churn-serve` loads the uplift bundle beside the model: recommendations carry the predicted
/// drop (`uplift`), the "why" names the uplift model, and customers CALL would push out get
/// `harms: ["CALL"]` instead of a CALL.
#[test]
fn the_server_answers_with_uplift() {
    let c = campaign(30_000, 13);
    let (u, mut card, _) = up::train(
        &rows_of(&c),
        &scorer().bundle,
        "v1",
        &UpliftParams::default(),
    )
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("models/telco");
    std::fs::create_dir_all(&model).unwrap();
    std::fs::copy(
        champion_dir(&trained().join("telco")).join("model.bin"),
        model.join("model.bin"),
    )
    .unwrap();
    churn::bundle::uplift::save(&model, &u, &mut card).unwrap();
    let playbook = dir.path().join("uplift.toml");
    std::fs::write(&playbook, PLAYBOOK).unwrap();
    let s = start(
        &dir.path().join("models"),
        &["--playbook", playbook.to_str().unwrap()],
        &[],
    );
    let customers: Vec<serde_json::Value> = telco_customers(600)
        .into_iter()
        .enumerate()
        .map(|(i, mut c)| {
            c["customerID"] = format!("UPLIFT-{i}").into();
            c
        })
        .filter(|c| !churn::playbook::in_control(c["customerID"].as_str().unwrap(), "uplift", 50.0))
        .collect();
    let r = post(
        &s.addr,
        "/v1/score?detail=advice",
        &serde_json::json!({ "customers": customers }),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let results = r.json()["results"].as_array().unwrap().clone();
    let calls: Vec<&serde_json::Value> = results
        .iter()
        .flat_map(|x| x["recommendations"].as_array().unwrap())
        .filter(|x| x["action"] == "CALL")
        .collect();
    assert!(calls.len() > 20, "{} CALL recommendations", calls.len());
    for x in &calls {
        assert!(x["uplift"].as_f64().unwrap() >= 0.0, "{x}");
        assert!(x["why"].as_str().unwrap().contains("uplift model ("), "{x}");
    }
    let spared: Vec<&serde_json::Value> = results
        .iter()
        .filter(|x| {
            x["harms"]
                .as_array()
                .is_some_and(|h| h.iter().any(|a| a == "CALL"))
        })
        .collect();
    assert!(spared.len() > 5, "{} customers spared CALL", spared.len());
    for x in &spared {
        let recs = x["recommendations"].as_array().unwrap();
        assert!(recs.iter().all(|r| r["action"] != "CALL"), "{x}");
    }
}

/// Off-policy evaluation: over 100 campaigns, the doubly robust value of a candidate policy
/// (offer CALL/COUPON by the uplift model; offer the riskiest 30%) covers what the policy
/// truly earns per eligible customer — its value run forward on the customers campaigns are
/// drawn from, from the simulator's true effects — in 90–98% of them.
#[test]
fn doubly_robust_policy_values_cover_the_truth() {
    use churn::evaluate::effects::change_for;
    use churn::evaluate::policy::{self, Policy, Unit};
    let (u, _, _) = up::train(
        &rows_of(&campaign(30_000, 21)),
        &scorer().bundle,
        "v1",
        &UpliftParams::default(),
    )
    .unwrap();
    let pb = scorer().bundle.playbook.as_ref().unwrap();
    let rules = churn::evaluate::effects::parse_effects(
        EFFECTS,
        "effects.toml",
        &scorer().bundle.encoder,
        |a| a == "CALL" || a == "COUPON",
    )
    .unwrap();
    let take = SimConfig::default().take_rate;
    // the truth over the pool: every Telco customer the playbook would offer an action to
    let (mut pool_units, mut truths) = (Vec::new(), Vec::new());
    for r in 0..pool().nrows {
        let row = pool_row(r);
        let s = scorer().score_encoded(&row, Vec::new(), None);
        let a = s.advice.unwrap();
        if !a.contact {
            continue;
        }
        let top = &a.recommendations[0];
        let p = s.prediction.probability;
        let after = change_for(&rules, top.action, &row, 0.0).apply(p);
        let churn_if_offered = take * after + (1.0 - take) * p;
        let effect = u
            .applied(top.action)
            .map_or(p * 0.05, |m| m.model.effect(&row));
        pool_units.push(Unit {
            probability: p,
            value: a.value,
            cost: top.cost,
            effect,
            offered: true,
            churned: false,
            action: 0,
            propensity: 1.0,
        });
        truths.push((
            a.value * (1.0 - churn_if_offered) - top.cost,
            a.value * (1.0 - p),
        ));
    }
    let policies = [Policy::Uplift, Policy::Risk(0.3), Policy::Playbook];
    let truth: Vec<f64> = policies
        .iter()
        .map(|&p| {
            let offer = policy::decide(p, &pool_units, &[]);
            let sum: f64 = truths
                .iter()
                .zip(&offer)
                .map(|(t, o)| if *o == policy::Choice::Hold { t.1 } else { t.0 })
                .sum();
            sum / truths.len() as f64
        })
        .collect();
    let mut covered = [0usize; 3];
    let runs = 100;
    for k in 0..runs {
        let c = campaign(4000, 1000 + k);
        let units = policy::units(&rows_of(&c), pb, Some(&u));
        let rep = policy::evaluate(&units, 0.5, &policies, &[]).unwrap();
        for (i, v) in rep.policies.iter().enumerate() {
            let e = &v.doubly_robust;
            if e.low <= truth[i] && truth[i] <= e.high {
                covered[i] += 1;
            }
        }
    }
    eprintln!("true values {truth:?}; doubly robust intervals covered {covered:?} of {runs}");
    for (i, &c) in covered.iter().enumerate() {
        assert!(
            (90..=98).contains(&c),
            "{:?}: covered {c} of {runs} (truth {:.2})",
            policies[i],
            truth[i]
        );
    }
    // the uplift policy is worth more than offering everyone, and the evaluation says so
    assert!(truth[0] > truth[2] + 1.0, "{truth:?}");
}

/// The rows read back from a real store — SQLite and PostgreSQL — are the campaign's rows, so
/// the uplift bundle trained from either equals the one trained in memory.
fn uplift_from_store(url: &str) {
    let c = campaign(8_000, 31);
    let store = store_with(url, &c);
    let bundle = &scorer().bundle;
    let got = store
        .block_on(up::from_store(&store, bundle, None, as_of(), 90))
        .unwrap();
    let want = rows_of(&c);
    assert_eq!(got.counts, want.counts);
    let sorted = |r: &UpliftRows| {
        let mut v: Vec<(String, String, bool, bool)> = r
            .actions
            .iter()
            .flat_map(|a| {
                a.rows
                    .iter()
                    .map(|x| (a.action.clone(), x.input.clone(), x.treated, x.churned))
            })
            .collect();
        v.sort();
        v
    };
    assert_eq!(sorted(&got), sorted(&want));
    // rows in scoring order either way: the same bundle
    let params = UpliftParams::default();
    let (a, _, _) = up::train(&got, bundle, "v1", &params).unwrap();
    let (b, _, _) = up::train(&want, bundle, "v1", &params).unwrap();
    assert!(
        a == b,
        "the bundle from the store differs from the one from the campaign"
    );
}

#[test]
fn uplift_from_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    uplift_from_store(&format!(
        "sqlite://{}",
        dir.path().join("store.db").display()
    ));
}

#[test]
fn uplift_from_postgres() {
    let Some(db) = super::store::PgDb::create("uplift_from_store") else {
        return;
    };
    uplift_from_store(&db.url());
}
