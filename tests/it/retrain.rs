//! Training from the store (issue 34, items 1 and 5): the rows it reads, the bias it avoids by
//! leaving offered customers out, and a challenger retrained after a concept shift judged
//! better on realised outcomes — while, without a shift, two models retrained the same way are
//! judged no different.

use crate::evaluation::pool;
use crate::util::{run, telco, train_telco, trained};
use churn::bundle::registry::Author;
use churn::evaluate::compare::{self, CompareCounts, CompareVerdict, Matured, Origin};
use churn::evaluate::effects::parse_world;
use churn::evaluate::retrain::{customer_table, StoreSource};
use churn::evaluate::simulate::{simulate, Campaign, SimConfig};
use churn::evaluate::EvalData;
use churn::scoring::Scorer;
use churn::time::{parse, DAY_MS};
use std::path::Path;

/// One action for everyone, contacted when the expected saving pays the call (churn
/// probability above 5 ÷ (100 × 0.3) ≈ 0.17): the campaign targets the riskiest customers.
const PLAYBOOK: &str = r#"
name = "retrain"
holdout_percent = 10
top_n = 1
[value]
default = 100.0
[[actions]]
id = "CALL"
name = "Call"
channel = "phone"
cost = 5.0
save_rate = 0.3
[[rules]]
id = "everyone"
actions = ["CALL"]
when = ["tenure >= 0"]
"#;

/// From 2026-02-01 a competitor's fibre offer reaches the DSL customers: they churn three
/// times as often (a risk the old model ranks low).
const SHIFT: &str = r#"
[[shift]]
from = "2026-02-01"
when = ['InternetService == "DSL"']
factor = 3.0
"#;

/// The world: the Telco tree, deciding with [`PLAYBOOK`].
fn world() -> Scorer {
    let mut s = Scorer::new(churn::bundle::load(&trained().join("telco")).unwrap());
    s.set_playbook(
        churn::playbook::parse(PLAYBOOK, "retrain.toml").unwrap(),
        "retrain.toml",
    )
    .unwrap();
    s
}

/// A campaign of `customers` scored from `start` (over 28 days), with the concept shift when
/// `shift`; CALL saves `save` of the would-be churners it reaches.
fn campaign(
    w: &Scorer,
    customers: usize,
    seed: u64,
    start: &str,
    shift: bool,
    save: f64,
) -> Campaign {
    let shifts = if shift {
        parse_world(SHIFT, "shift.toml", &w.bundle.encoder, |_| false)
            .unwrap()
            .shifts
    } else {
        Vec::new()
    };
    let cfg = SimConfig {
        customers,
        seed,
        effects: vec![("CALL".into(), save)],
        take_rate: 1.0,
        shifts,
        start_ms: parse(start).unwrap(),
        id_prefix: format!("c{seed}-"),
        ..SimConfig::default()
    };
    simulate(w, pool(), &cfg).unwrap()
}

/// The campaign's matured first predictions as the store would give them (labels judged a
/// year after 2026-01-01, when every horizon has passed).
fn rows(c: &Campaign, keep_offered: bool) -> (Vec<Matured>, CompareCounts) {
    let data = EvalData::from_campaign(c);
    compare::matured(
        &data,
        90 * DAY_MS,
        parse("2027-01-01").unwrap(),
        &mut |i| Some(c.records[i].input.clone()),
        keep_offered,
    )
}

fn source() -> StoreSource {
    StoreSource {
        store: "sqlite://test.db".into(),
        model: "telco".into(),
        since: None,
        as_of: parse("2027-01-01").unwrap(),
        horizon_days: 90,
    }
}

/// A single tree (`depth`, leaves of `leaf`, no search) trained on `rows` into `out`, as
/// `churn-train --from-store` would.
fn fit(
    w: &Scorer,
    rows: Vec<Matured>,
    counts: CompareCounts,
    (depth, leaf): (usize, usize),
    out: &Path,
) -> Scorer {
    let table = customer_table(&w.bundle, rows, counts, &source()).unwrap();
    let opts = churn::train::TrainOptions {
        name: "telco".into(),
        out_dir: out.to_path_buf(),
        seed: 7,
        model: churn::config::ModelConfig {
            model: churn::model::ModelChoice::Tree,
            max_depth: vec![depth],
            min_samples_leaf: vec![leaf],
            search: false,
            folds: 3,
            ..Default::default()
        },
        economics: None,
        data_sha256: churn::evaluate::retrain::fingerprint(&table),
        progress: false,
        segments: churn::segment::SegmentConfig {
            enabled: false,
            ..Default::default()
        },
        previous: None,
        playbook: Some((
            w.bundle.playbook.as_ref().unwrap().file.clone(),
            "retrain.toml".into(),
        )),
        author: Author {
            by: "test".into(),
            reason: "retrain test".into(),
        },
    };
    let outcome = churn::train::train(table, &opts).unwrap();
    Scorer::new(churn::bundle::load(&outcome.registered.dir).unwrap())
}

/// The probability `s` gives the stored input `input`.
fn predict(s: &Scorer, input: &str) -> f64 {
    let x = churn::evaluate::drift::encode_stored(&s.bundle.encoder, input).unwrap();
    s.bundle.model.predict(&x).probability
}

#[test]
fn offered_customers_would_teach_the_model_that_the_targeted_risk_is_low() {
    let w = world();
    let tmp = tempfile::tempdir().unwrap();
    // CALL saves 90% of the churners it reaches, and every offered customer is reached
    let c = campaign(&w, 12_000, 11, "2026-01-01", false, 0.9);
    let (clean, clean_counts) = rows(&c, false);
    let (all, all_counts) = rows(&c, true);
    assert!(clean_counts.treated > 1000, "{clean_counts:?}");
    assert_eq!(all.len(), clean.len() + all_counts.treated);
    // where the rows come from
    let origins = |o: Origin| clean.iter().filter(|r| r.origin == o).count();
    assert!(origins(Origin::Control) > 0 && origins(Origin::NotContacted) > 0);
    assert_eq!(origins(Origin::Offered), 0);
    let ours = fit(&w, clean, clean_counts, (5, 30), &tmp.path().join("ours"));
    let naive = fit(&w, all, all_counts, (5, 30), &tmp.path().join("naive"));

    // a fresh campaign's offered customers: their churn probability without the call is known
    let next = campaign(&w, 6000, 12, "2026-01-01", false, 0.9);
    let (mut truth, mut p_ours, mut p_naive, mut n) = (0.0, 0.0, 0.0, 0.0);
    let (mut contact_ours, mut contact_naive) = (0, 0);
    for (r, d) in next.records.iter().zip(&next.decisions) {
        if d.offered.is_none() {
            continue;
        }
        let (a, b) = (predict(&ours, &r.input), predict(&naive, &r.input));
        truth += d.probability;
        p_ours += a;
        p_naive += b;
        n += 1.0;
        contact_ours += usize::from(a > 5.0 / 30.0);
        contact_naive += usize::from(b > 5.0 / 30.0);
    }
    let (truth, p_ours, p_naive) = (truth / n, p_ours / n, p_naive / n);
    eprintln!(
        "offered customers: true churn {truth:.3}, store-trained {p_ours:.3}, with the offered \
         kept {p_naive:.3}; still worth a call: {contact_ours} vs {contact_naive} of {n}"
    );
    // left out, the offered customers' risk is learned from their control group: close to
    // the truth; kept, the saves they were given make them look safe
    // (measured: true 0.465, left out 0.401, kept 0.086; what remains of the gap is the
    // fewer rows the targeted region keeps — its control share — not a bias of the labels)
    assert!((p_ours - truth).abs() < 0.2 * truth, "{p_ours} vs {truth}");
    assert!(p_naive < 0.3 * truth, "{p_naive} vs {truth}");
    assert!(
        (p_ours - truth).abs() * 4.0 < truth - p_naive,
        "{p_ours} {p_naive} {truth}"
    );
    // and the next campaign would pass over most of the customers the last one saved
    assert!(
        (contact_naive as f64) < 0.6 * contact_ours as f64,
        "{contact_naive} vs {contact_ours}"
    );
}

const TRAIN_CUSTOMERS: usize = 20_000;
const JUDGED_CUSTOMERS: usize = 2_000;
/// The replays' trees: shallow with large leaves, so that two versions retrained on different
/// customers of the same world differ little.
const REPLAY_TREE: (usize, usize) = (4, 100);

/// One replay of the loop: a champion retrained from January's campaign, a challenger from
/// February's, both judged on March's customers. With `shift`, fibre customers churn twice as
/// often from February on.
fn replay(w: &Scorer, seed: u64, shift: bool, dir: &Path) -> compare::Comparison {
    let (n, judged) = (TRAIN_CUSTOMERS, JUDGED_CUSTOMERS);
    let jan = campaign(w, n, seed * 3, "2026-01-01", shift, 0.3);
    let feb = campaign(w, n, seed * 3 + 1, "2026-02-01", shift, 0.3);
    let mar = campaign(w, judged, seed * 3 + 2, "2026-03-01", shift, 0.3);
    let (r, k) = rows(&jan, false);
    let champion = fit(w, r, k, REPLAY_TREE, &dir.join(format!("champion-{seed}")));
    let (r, k) = rows(&feb, false);
    let challenger = fit(
        w,
        r,
        k,
        REPLAY_TREE,
        &dir.join(format!("challenger-{seed}")),
    );
    let (r, k) = rows(&mar, false);
    let budget = r.len() / 10;
    compare::compare(
        &r,
        k,
        ("champion", &champion),
        ("challenger", &challenger),
        budget,
    )
    .unwrap()
}

#[test]
fn after_a_shift_the_retrained_challenger_is_better_and_without_one_no_different() {
    let w = world();
    let tmp = tempfile::tempdir().unwrap();
    let t = std::time::Instant::now();
    let replays = 50;
    let judged: Vec<compare::Comparison> = (0..replays)
        .map(|seed| replay(&w, 100 + seed, false, tmp.path()))
        .collect();
    let verdicts: Vec<CompareVerdict> = judged.iter().map(|c| c.verdict).collect();
    // auto-promotion acts on "challenger better" with both intervals clear of 0, nothing else
    for c in &judged {
        if compare::promotion(c).is_some() {
            assert_eq!(c.verdict, CompareVerdict::ChallengerBetter);
            assert!(c.auc_difference.low > 0.0 && c.log_loss_difference.high < 0.0);
        }
    }
    let same = verdicts
        .iter()
        .filter(|v| **v == CompareVerdict::NoDifferenceDetected)
        .count();
    eprintln!(
        "no shift: {same} of {replays} replays 'no difference detected' ({verdicts:?}) in {:.0} s",
        t.elapsed().as_secs_f64()
    );
    // measured 47 of 50 (the versions are retrained on different customers, so some pairs
    // truly differ a little; judging 4,000 customers instead of 2,000 finds those: 43 of 50)
    assert!(same * 10 >= replays as usize * 9, "{same} of {replays}");
    let better: Vec<compare::Comparison> = (0..10)
        .map(|seed| replay(&w, 500 + seed, true, tmp.path()))
        .collect();
    let found = better
        .iter()
        .filter(|c| c.verdict == CompareVerdict::ChallengerBetter && c.auc_difference.low > 0.0)
        .count();
    eprintln!(
        "shift: challenger better in {found} of 10; AUC differences {:?}",
        better
            .iter()
            .map(|c| (
                c.auc_difference.low,
                c.auc_difference.value,
                c.auc_difference.high
            ))
            .collect::<Vec<_>>()
    );
    // measured 8 of 10: AUC gains of +0.028 to +0.040, two replays +0.012 and +0.015 with
    // intervals reaching below 0 (2,000 customers detect about ±0.02)
    assert!(found >= 8, "{found} of 10");
}

#[test]
fn churn_train_from_store_retrains_a_challenger_that_beats_the_champion_after_a_shift() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("telco");
    train_telco(&dir, "4,6", "20");
    let url = format!("sqlite://{}", tmp.path().join("store.db").display());
    let effects = tmp.path().join("effects.toml");
    std::fs::write(&effects, SHIFT).unwrap();
    let simulate = |seed: &str, start: &str| {
        let (code, _, err) = run(
            "churn-train",
            &[
                "simulate",
                "--model",
                dir.to_str().unwrap(),
                "--store",
                &url,
                "--input",
                telco().to_str().unwrap(),
                "--customers",
                "8000",
                "--seed",
                seed,
                "--start",
                start,
                "--effects",
                effects.to_str().unwrap(),
            ],
        );
        assert_eq!(code, 0, "{err}");
    };
    simulate("1", "2026-02-01");
    // nothing to learn from: a model that never scored, a date that is not one
    let d = dir.to_str().unwrap();
    let (code, _, err) = run(
        "churn-train",
        &["--from-store", &url, "--out", d, "--since", "February"],
    );
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("--since") && err.contains("February"), "{err}");
    let (code, _, err) = run(
        "churn-train",
        &[
            "--from-store",
            &url,
            "--out",
            d,
            "--as-of",
            "2026-01-15",
            "--quiet",
        ],
    );
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("from-store") && err.contains("no predictions"),
        "{err}"
    );

    let (code, _, err) = run(
        "churn-train",
        &[
            "--from-store",
            &url,
            "--out",
            d,
            "--since",
            "2026-02-01",
            "--as-of",
            "2027-01-01",
            "--model",
            "tree",
            "--max-depth",
            "4,6",
            "--min-samples-leaf",
            "20",
            "--reason",
            "fibre churn doubled in February",
        ],
    );
    assert_eq!(code, 0, "{err}");
    // the data-quality section says where the rows came from
    for want in [
        "control group",
        "not contacted",
        "offered an action",
        "scored by version",
        "the champion of",
    ] {
        assert!(err.contains(want), "{want}: {err}");
    }
    let versions = churn::bundle::registry::ModelDir::new(&dir)
        .versions()
        .unwrap();
    assert_eq!(versions.len(), 2);
    let challenger = versions
        .iter()
        .find(|v| !v.aliases.iter().any(|a| a == "champion"))
        .unwrap();
    let quality: serde_json::Value = serde_json::from_slice(
        &std::fs::read(
            dir.join("versions")
                .join(&challenger.version)
                .join("data_quality.json"),
        )
        .unwrap(),
    )
    .unwrap();
    // its card and report name the champion it was retrained from
    let vdir = dir.join("versions").join(&challenger.version);
    let card: serde_json::Value =
        serde_json::from_slice(&std::fs::read(vdir.join("model_card.json")).unwrap()).unwrap();
    let champion_version = churn::bundle::load(&dir).unwrap().version;
    assert_eq!(
        card["lineage"][0]["version"],
        champion_version.as_str(),
        "{}",
        card["lineage"]
    );
    let report = std::fs::read_to_string(vdir.join("report.html")).unwrap();
    assert!(report.contains("Version lineage") && report.contains(&champion_version));
    assert!(
        report.contains("offered an action"),
        "the row sources are in the report"
    );
    let sources = quality["sources"].as_array().unwrap();
    assert!(
        sources
            .iter()
            .any(|s| s["source"] == "control group" && s["rows"].as_u64() > Some(0)),
        "{quality}"
    );
    assert!(
        quality["source"].as_str().unwrap().contains("store.db"),
        "{quality}"
    );
    let (code, _, err) = run(
        "churn-train",
        &[
            "models",
            "--models",
            tmp.path().to_str().unwrap(),
            "alias",
            "telco",
            "challenger",
            &challenger.version,
        ],
    );
    assert_eq!(code, 0, "{err}");

    // March: the champion still serves; both are judged on its matured customers
    simulate("2", "2026-03-01");
    let json = tmp.path().join("compare.json");
    let (code, out, err) = run(
        "churn-train",
        &[
            "evaluate",
            "--store",
            &url,
            "--models",
            tmp.path().to_str().unwrap(),
            "--compare",
            "champion,challenger",
            "--from",
            "2026-03-01",
            "--as-of",
            "2027-01-01",
            "--output",
            json.to_str().unwrap(),
        ],
    );
    assert_eq!(code, 0, "{err}");
    let c: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    eprintln!("{out}");
    assert_eq!(c["verdict"], "challenger_better", "{out}");
    assert!(c["auc_difference"]["low"].as_f64().unwrap() > 0.0, "{out}");

    // with [lifecycle] promote = "when-better" the same comparison promotes, and says why
    let config = tmp.path().join("lifecycle.toml");
    std::fs::write(&config, "[lifecycle]\npromote = \"when-better\"\n").unwrap();
    let evaluate = |from: &[&str]| {
        let models = tmp.path().to_str().unwrap();
        let mut args = vec!["evaluate", "--store", &url, "--models", models];
        args.extend_from_slice(&["--compare", "champion,challenger", "--as-of", "2027-01-01"]);
        args.extend_from_slice(&["--config", config.to_str().unwrap()]);
        args.extend_from_slice(from);
        run("churn-train", &args)
    };
    // not on the customers it was trained on: a judgement without --from is refused
    let (code, _, err) = evaluate(&[]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("--from"), "{err}");
    let (code, out, err) = evaluate(&["--from", "2026-03-01"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("promoted"), "{out}");
    assert_eq!(
        churn::bundle::load(&dir).unwrap().version,
        challenger.version
    );
    let registry: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("registry.json")).unwrap()).unwrap();
    let last = registry["changes"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .clone();
    assert_eq!(last["action"], "promote", "{last}");
    assert!(
        last["by"].as_str().unwrap().contains("when-better"),
        "{last}"
    );
    assert!(
        last["reason"].as_str().unwrap().contains("AUC difference"),
        "{last}"
    );
}
