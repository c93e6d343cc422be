//! The first hour with one's own table: `churn-train init` writes a config and playbook that
//! train without edits, and the recommendations they give out of the box are varied and pay:
//! on Telco, Bank, CDNOW features and a generated table with awkward names, a row counter, an
//! email column and yearly tenure.

use crate::util::{cell, read_card, root, run, telco, write};
use churn::io::read_table;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// What the scored table says about the recommendations.
#[derive(Debug)]
struct Mix {
    contacted: usize,
    /// Top action → contacted customers.
    top: HashMap<String, usize>,
    /// High-risk customers in the treatment group.
    high: usize,
    /// … of them with a paid offer of positive expected value first.
    high_offered: usize,
    /// … of them whose first action is the suppression (its "why" states no paid action pays).
    high_suppressed: usize,
    /// … of them whose first action is the survey.
    high_survey: usize,
}

/// `churn-train init` on `data` (with `extra` flags), train the written config, score `data`.
fn init_train_score(dir: &Path, data: &Path, extra: &[&str]) -> (PathBuf, Mix, String) {
    let cfg_dir = dir.join("cfg");
    let mut args = vec![
        "init",
        "--data",
        data.to_str().unwrap(),
        "--out",
        cfg_dir.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    let (code, out, err) = run("churn-train", &args);
    assert_eq!(code, 0, "{err}");
    let model = dir.join("model");
    let (code, _, err) = run(
        "churn-train",
        &[
            "--config",
            cfg_dir.join("churn.toml").to_str().unwrap(),
            "--out",
            model.to_str().unwrap(),
            "--model",
            "tree",
            "--quiet",
        ],
    );
    assert_eq!(code, 0, "training the written config failed: {err}");
    let scores = dir.join("scores.csv");
    let (code, _, err) = run(
        "churn-score",
        &[
            "--model",
            model.to_str().unwrap(),
            "--input",
            data.to_str().unwrap(),
            "--output",
            scores.to_str().unwrap(),
            "--quiet",
        ],
    );
    assert_eq!(code, 0, "{err}");
    let t = read_table(&scores, None).unwrap();
    let mut mix = Mix {
        contacted: 0,
        top: HashMap::new(),
        high: 0,
        high_offered: 0,
        high_suppressed: 0,
        high_survey: 0,
    };
    for r in 0..t.nrows {
        let action = cell(&t, "top_action", r);
        if cell(&t, "contact", r) == "true" {
            mix.contacted += 1;
            *mix.top.entry(action.clone()).or_default() += 1;
        }
        if cell(&t, "risk_band", r) == "high" && cell(&t, "treatment", r) == "treatment" {
            mix.high += 1;
            // `contact` is the positive-value decision (expected_value is written in cents)
            let contact = cell(&t, "contact", r) == "true";
            match action.as_str() {
                "SUPPRESS_MARKETING" if !contact => mix.high_suppressed += 1,
                "CHURN_REASON_SURVEY" => mix.high_survey += 1,
                a if !a.is_empty() && a != "SUPPRESS_MARKETING" && contact => mix.high_offered += 1,
                _ => {}
            }
        }
    }
    (model, mix, out)
}

/// The acceptance floor: at least 4 distinct top actions, none above 60% of the contacted
/// customers, every high-risk customer offered a paying retention action or told why not
/// (the suppression, whose "why" says no paid action pays: Bank's customers without a balance
/// are worth nothing under its value expression), most of them offered one, and surveys a
/// small minority.
fn assert_good_mix(name: &str, mix: &Mix) {
    eprintln!("{name}: {mix:?}");
    assert!(mix.contacted > 0, "{name}: nobody contacted: {mix:?}");
    assert!(
        mix.top.len() >= 4,
        "{name}: fewer than 4 top actions: {mix:?}"
    );
    for (a, &n) in &mix.top {
        assert!(
            n as f64 <= 0.6 * mix.contacted as f64,
            "{name}: {a} is the top action of {n} of {} contacted: {mix:?}",
            mix.contacted
        );
    }
    assert!(mix.high > 0, "{name}: no high-risk customers: {mix:?}");
    assert_eq!(
        mix.high_offered + mix.high_suppressed + mix.high_survey,
        mix.high,
        "{name}: a high-risk customer with neither an offer nor a reason: {mix:?}"
    );
    assert!(
        mix.high_offered as f64 >= 0.75 * mix.high as f64,
        "{name}: under 75% of high-risk customers get a paying offer: {mix:?}"
    );
    assert!(
        mix.high_survey as f64 <= 0.05 * mix.high as f64,
        "{name}: over 5% of high-risk customers get only a survey: {mix:?}"
    );
}

/// None of `gone` is an input of the model in `model`.
fn assert_not_features(model: &Path, gone: &[&str]) {
    let features = features_of(&read_card(model));
    for g in gone {
        assert!(!features.iter().any(|f| f == g), "{g} in {features:?}");
    }
}

fn features_of(card: &serde_json::Value) -> Vec<String> {
    card["features"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["name"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn init_on_telco_gives_varied_paying_recommendations() {
    let dir = tempfile::tempdir().unwrap();
    let (model, mix, out) = init_train_score(dir.path(), &telco(), &[]);
    assert!(out.contains("label: Churn"), "{out}");
    assert!(out.contains("id: customerID"), "{out}");
    assert!(out.contains("MonthlyCharges"), "{out}");
    assert_good_mix("telco", &mix);
    let card = read_card(&model);
    assert!(!features_of(&card).contains(&"customerID".to_string()));
    let config = std::fs::read_to_string(dir.path().join("cfg/churn.toml")).unwrap();
    assert!(config.contains("tenure_column = \"tenure\""), "{config}");
    assert!(config.contains("tenure_unit_days = 30.44"), "{config}");
}

#[test]
fn init_on_bank_drops_the_row_counter_and_the_surname() {
    let data = root().join("../shared/datasets/bank_customer_churn/Churn_Modelling.csv");
    if !data.exists() {
        eprintln!("skipped: {} not present", data.display());
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (model, mix, out) = init_train_score(dir.path(), &data, &[]);
    assert!(out.contains("label: Exited"), "{out}");
    assert!(out.contains("id: CustomerId"), "{out}");
    assert!(out.contains("personal data: Surname → excluded"), "{out}");
    assert!(
        out.contains("identifier-like: RowNumber → dropped"),
        "{out}"
    );
    let config = std::fs::read_to_string(dir.path().join("cfg/churn.toml")).unwrap();
    assert!(config.contains("tenure_unit_days = 365.25"), "{config}");
    assert_not_features(&model, &["RowNumber", "Surname", "CustomerId"]);
    assert_good_mix("bank", &mix);
}

#[test]
fn init_on_cdnow_features_uses_spend_and_the_rfm_strategies() {
    let dir = tempfile::tempdir().unwrap();
    let features = dir.path().join("cdnow_features.csv");
    let (code, _, err) = run(
        "churn-train",
        &[
            "features",
            "--config",
            "training/cdnow.toml",
            "--output",
            features.to_str().unwrap(),
            "--quiet",
        ],
    );
    assert_eq!(code, 0, "{err}");
    let (_, mix, out) = init_train_score(dir.path(), &features, &[]);
    assert!(out.contains("monetary_total"), "{out}");
    let playbook = std::fs::read_to_string(dir.path().join("cfg/playbook.toml")).unwrap();
    assert!(playbook.contains("rfm_class"), "{playbook}");
    assert_good_mix("cdnow", &mix);
}

/// A table with awkward names (spaces, symbols), a row counter, an email column, a surrogate
/// key and tenure in years, whose churn depends on the plan, support calls, bill and tenure.
fn awkward_table(dir: &Path, n: usize) -> PathBuf {
    let mut s = String::from(
        "row_no,Account Key,E-mail Address,Yrs With Us,Monthly Bill ($),Plan Type,Support Calls,Region,Auto-Pay?,Churned?\n",
    );
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        (x >> 11) as f64 / (1u64 << 53) as f64
    };
    for i in 0..n {
        let years = (next() * 12.0).floor();
        let plan = ["Monthly", "Annual", "Two-Year"][(next() * 3.0) as usize];
        let bill = 20.0 + (next() * 100.0 * 100.0).round() / 100.0;
        let calls = (next() * next() * 8.0).floor();
        let region = ["North", "South", "East", "West"][(next() * 4.0) as usize];
        let autopay = if next() < 0.5 { "Yes" } else { "No" };
        let logit = -2.2 + if plan == "Monthly" { 1.6 } else { 0.0 } + 0.35 * calls - 0.25 * years
            + 0.012 * (bill - 70.0)
            + if autopay == "No" { 0.4 } else { 0.0 };
        let churn = next() < 1.0 / (1.0 + (-logit).exp());
        s.push_str(&format!(
            "{},{},user{}@example.com,{},{:.2},{},{},{},{},{}\n",
            i + 1,
            1_000_000 + 7 * i as u64 + (i as u64 % 3),
            i,
            years,
            bill,
            plan,
            calls,
            region,
            autopay,
            if churn { "yes" } else { "no" }
        ));
    }
    write(dir, "awkward.csv", &s)
}

#[test]
fn init_on_an_awkward_table_excludes_the_email_and_drops_the_counters() {
    let dir = tempfile::tempdir().unwrap();
    let data = awkward_table(dir.path(), 6000);
    let (model, mix, out) = init_train_score(dir.path(), &data, &[]);
    assert!(out.contains("label: Churned?"), "{out}");
    assert!(
        out.contains("personal data: E-mail Address → excluded"),
        "{out}"
    );
    assert!(out.contains("identifier-like: row_no → dropped"), "{out}");
    let config = std::fs::read_to_string(dir.path().join("cfg/churn.toml")).unwrap();
    assert!(
        config.contains("tenure_column = \"Yrs With Us\""),
        "{config}"
    );
    assert!(config.contains("tenure_unit_days = 365.25"), "{config}");
    let playbook = std::fs::read_to_string(dir.path().join("cfg/playbook.toml")).unwrap();
    assert!(
        playbook.contains("expression = \"`Monthly Bill ($)` * "),
        "{playbook}"
    );
    assert_not_features(&model, &["row_no", "E-mail Address", "Account Key"]);
    assert_good_mix("awkward", &mix);
}

#[test]
fn init_refuses_to_overwrite_and_names_a_missing_label() {
    let dir = tempfile::tempdir().unwrap();
    let data = write(dir.path(), "t.csv", "a,b,c\n1,x,0\n2,y,1\n3,z,0\n");
    let (code, _, err) = run(
        "churn-train",
        &[
            "init",
            "--data",
            data.to_str().unwrap(),
            "--out",
            dir.path().to_str().unwrap(),
        ],
    );
    assert_eq!(code, 2);
    assert!(err.contains("--label"), "{err}");
    assert!(err.contains("Two-valued columns: c"), "{err}");
    write(dir.path(), "churn.toml", "# mine\n");
    let (code, _, err) = run(
        "churn-train",
        &[
            "init",
            "--data",
            data.to_str().unwrap(),
            "--label",
            "c",
            "--out",
            dir.path().to_str().unwrap(),
        ],
    );
    assert_eq!(code, 2);
    assert!(err.contains("churn.toml exists; pass --force"), "{err}");
    assert_eq!(
        std::fs::read_to_string(dir.path().join("churn.toml")).unwrap(),
        "# mine\n"
    );
}

/// A model trained without any playbook uses the inferred one, and says so in its card.
#[test]
fn training_without_a_playbook_infers_one_and_states_it() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("m");
    let (code, _, err) = run(
        "churn-train",
        &[
            "--data",
            telco().to_str().unwrap(),
            "--label",
            "Churn",
            "--id",
            "customerID",
            "--model",
            "tree",
            "--out",
            model.to_str().unwrap(),
            "--quiet",
        ],
    );
    assert_eq!(code, 0, "{err}");
    let card = read_card(&model);
    let mix = &card["holdout_details"]["playbook"];
    let inferred: Vec<&str> = mix["inferred"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert!(
        inferred
            .iter()
            .any(|d| d.starts_with("customer value: MonthlyCharges")),
        "{inferred:?}"
    );
    assert!(mix["value"]
        .as_str()
        .unwrap()
        .starts_with("expression MonthlyCharges *"));
    let tops: Vec<&str> = mix["actions"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["customers"].as_u64().unwrap() > 0 && a["action"] != "(control group)")
        .map(|a| a["action"].as_str().unwrap())
        .collect();
    assert!(tops.len() >= 4, "{tops:?}");
    let html =
        std::fs::read_to_string(crate::util::champion_dir(&model).join("report.html")).unwrap();
    assert!(html.contains("inferred from the data"));
}

/// `churn-train check` validates a playbook against the data it is for, and an error names the
/// rule, the key and the line.
#[test]
fn check_names_the_rule_key_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let (code, _, err) = run(
        "churn-train",
        &[
            "init",
            "--data",
            telco().to_str().unwrap(),
            "--out",
            dir.path().to_str().unwrap(),
        ],
    );
    assert_eq!(code, 0, "{err}");
    let cfg = dir.path().join("churn.toml");
    let pb = dir.path().join("playbook.toml");
    let check = || {
        run(
            "churn-train",
            &[
                "check",
                "--playbook",
                pb.to_str().unwrap(),
                "--config",
                cfg.to_str().unwrap(),
            ],
        )
    };
    let (code, out, err) = check();
    assert_eq!(code, 0, "{err}");
    assert!(out.contains(": ok"), "{out}");
    // break one predicate of the high-value rule
    let text = std::fs::read_to_string(&pb).unwrap();
    let line = text
        .lines()
        .position(|l| l.starts_with("when = [\"MonthlyCharges >= "))
        .expect("the high-value rule")
        + 1;
    let broken: String = text
        .lines()
        .enumerate()
        .map(|(i, l)| {
            if i + 1 == line {
                "when = [\"MonthlyCharge >= 90\"]\n".to_string()
            } else {
                format!("{l}\n")
            }
        })
        .collect();
    std::fs::write(&pb, broken).unwrap();
    let (code, _, err) = check();
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains(&format!(
            "playbook.toml, line {line}: rule 'high-value-at-risk': when: predicate 'MonthlyCharge >= 90': unknown feature 'MonthlyCharge'"
        )),
        "{err}"
    );
    // training checks it the same way, before the search
    let (code, _, err) = run(
        "churn-train",
        &[
            "--config",
            cfg.to_str().unwrap(),
            "--out",
            dir.path().join("m").to_str().unwrap(),
            "--quiet",
        ],
    );
    assert_eq!(code, 2);
    assert!(
        err.contains(&format!("line {line}: rule 'high-value-at-risk'")),
        "{err}"
    );
}

/// A column with no value at all used to panic type inference; now it is one "missing" level,
/// and init and training go through.
#[test]
fn an_empty_column_neither_panics_init_nor_training() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = String::from("id,plan,notes,spend,churn\n");
    for i in 0..200 {
        s.push_str(&format!(
            "c{i},{},,{},{}\n",
            ["a", "b"][i % 2],
            10 + i % 17,
            if i % 3 == 0 { "yes" } else { "no" }
        ));
    }
    let data = write(dir.path(), "empty_col.csv", &s);
    let (_, _, out) = init_train_score(dir.path(), &data, &[]);
    assert!(out.contains("label: churn"), "{out}");
}
