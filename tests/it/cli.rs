//! The command-line front ends: exit codes, messages, batch scoring end to end.

use crate::util::*;

fn read_csv(path: &std::path::Path) -> (Vec<String>, Vec<Vec<String>>) {
    let text = std::fs::read_to_string(path).unwrap();
    let mut lines = text.lines();
    let header = lines.next().unwrap().split(',').map(String::from).collect();
    let rows = lines
        .map(|l| l.split(',').map(String::from).collect())
        .collect();
    (header, rows)
}

#[test]
fn features_command_writes_the_training_layout() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("cd.csv");
    let (code, _, err) = run(
        "churn-train",
        &[
            "features",
            "--transactions",
            cdnow().to_str().unwrap(),
            "--customer-col",
            "customer_id",
            "--time-col",
            "date",
            "--amount-col",
            "dollar_value",
            "--cutoff",
            "1997-10-01",
            "--horizon-days",
            "273",
            "--output",
            out.to_str().unwrap(),
        ],
    );
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("customers out 23570"), "{err}");
    let (header, rows) = read_csv(&out);
    assert_eq!(
        header,
        [
            "customer_id",
            "recency_days",
            "frequency",
            "monetary_total",
            "monetary_mean",
            "tenure_days",
            "frequency_trend",
            "active_months",
            "churned"
        ]
    );
    assert_eq!(rows.len(), 23_570);
    assert_eq!(rows.iter().filter(|r| r[8] == "1").count(), 16_512);
    assert!(dir.path().join("cd.quality.json").exists());
}

#[test]
fn bad_input_exits_2_and_names_the_culprit() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("x.csv");
    let cases: Vec<(&str, Vec<&str>, &str)> = vec![
        (
            "unknown label column",
            vec![
                "features",
                "--data",
                "training/data/Telco-Customer-Churn.csv",
                "--label",
                "Churned",
                "--output",
                out.to_str().unwrap(),
            ],
            "'Churned'",
        ),
        (
            "missing data file",
            vec![
                "features",
                "--data",
                "nope.csv",
                "--label",
                "y",
                "--output",
                out.to_str().unwrap(),
            ],
            "nope.csv",
        ),
        (
            "unsupported output type",
            vec![
                "features",
                "--data",
                "training/data/Telco-Customer-Churn.csv",
                "--label",
                "Churn",
                "--output",
                "x.xlsx",
            ],
            "x.xlsx",
        ),
        (
            "duplicated ids",
            vec![
                "features",
                "--data",
                "training/data/Telco-Customer-Churn.csv",
                "--label",
                "Churn",
                "--id",
                "gender",
                "--output",
                out.to_str().unwrap(),
            ],
            "duplicated ids",
        ),
        (
            "holdout share above 1",
            vec![
                "--data",
                "training/data/Telco-Customer-Churn.csv",
                "--label",
                "Churn",
                "--holdout",
                "2",
                "--out",
                dir.path().to_str().unwrap(),
            ],
            "holdout",
        ),
        (
            "unknown learner",
            vec![
                "--data",
                "training/data/Telco-Customer-Churn.csv",
                "--label",
                "Churn",
                "--learner",
                "forest",
                "--out",
                dir.path().to_str().unwrap(),
            ],
            "forest",
        ),
        (
            "missing config file",
            vec!["--config", "training/missing.toml"],
            "training/missing.toml",
        ),
        ("unknown flag", vec!["--no-such-flag"], "--no-such-flag"),
    ];
    for (name, args, needle) in cases {
        let (code, _, err) = run("churn-train", &args);
        assert_eq!(code, 2, "{name}: args {args:?}: {err}");
        assert!(
            err.contains(needle),
            "{name}: args {args:?}: expected '{needle}' in: {err}"
        );
        assert!(!err.contains("panicked"), "{name}: {err}");
    }
}

#[test]
fn config_errors_name_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write(
        dir.path(),
        "c.toml",
        "[data]\npath = \"x.csv\"\nlabel = \"y\"\nlabell = 3\n",
    );
    let (code, _, err) = run("churn-train", &["--config", cfg.to_str().unwrap()]);
    assert_eq!(code, 2);
    assert!(err.contains("labell") && err.contains("c.toml"), "{err}");
}

#[test]
fn score_roundtrip_rejects_and_missing_columns() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("m");
    train_telco(&model, "4,6", "20");
    let out = dir.path().join("scores.csv");
    let (code, _, err) = score(&model, &telco(), &out, &[]);
    assert_eq!(code, 0, "{err}");
    let (header, rows) = read_csv(&out);
    assert_eq!(
        header,
        [
            "customerID",
            "churn_probability",
            "probability_low",
            "probability_high",
            "leaf_support",
            "predicted_churn",
            "segment_id",
            "segment",
            "risk_band",
            "top_action",
            "expected_value",
            "treatment",
            "contact",
            "warnings"
        ]
    );
    assert_eq!(rows.len(), 7043);
    assert_eq!(rows[0][0], "7590-VHVEG", "input order kept");
    for r in &rows {
        let p: f64 = r[1].parse().unwrap();
        let lo: f64 = r[2].parse().unwrap();
        let hi: f64 = r[3].parse().unwrap();
        assert!((0.0..=1.0).contains(&p) && lo <= p && p <= hi, "{r:?}");
        assert!(r[4].parse::<u64>().unwrap() >= 20);
        assert!(["low", "medium", "high"].contains(&r[8].as_str()), "{r:?}");
        assert!(["control", "treatment"].contains(&r[11].as_str()), "{r:?}");
        if r[11] == "control" {
            assert!(r[9].is_empty(), "control customers get no action: {r:?}");
        }
    }
    let control = rows.iter().filter(|r| r[11] == "control").count() as f64 / rows.len() as f64;
    assert!((0.07..0.13).contains(&control), "control share {control}");
    // a bad playbook override is refused with its file and rule
    let bad_pb = write(
        dir.path(),
        "bad.toml",
        &std::fs::read_to_string(root().join("training/playbook.toml"))
            .unwrap()
            .replace(
                "\"WINBACK_EMAIL\", \"EXCLUSIVE_OFFER\"",
                "\"WINBACK_EMAIL\", \"TELEPORT\"",
            ),
    );
    let (code, _, err) = score(
        &model,
        &telco(),
        &out,
        &["--playbook", bad_pb.to_str().unwrap()],
    );
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("bad.toml")
            && err.contains("rule 'churn-risk-recall': actions: unknown action 'TELEPORT'"),
        "{err}"
    );
    // Parquet output
    let pq = dir.path().join("scores.parquet");
    let (code, _, err) = score(&model, &telco(), &pq, &["--quiet"]);
    assert_eq!(code, 0, "{err}");
    let t = churn::io::read_table(&pq, None).unwrap();
    assert_eq!(t.nrows, 7043);

    // --columns: only those, in that order, same numbers as the full output
    let lean = dir.path().join("lean.csv");
    let (code, _, err) = score(
        &model,
        &telco(),
        &lean,
        &["--columns", "churn_probability,customerID,risk_band"],
    );
    assert_eq!(code, 0, "{err}");
    let (lh, lr) = read_csv(&lean);
    assert_eq!(lh, ["churn_probability", "customerID", "risk_band"]);
    let (_, full) = read_csv(&out);
    assert_eq!(lr.len(), full.len());
    for (a, b) in lr.iter().zip(&full) {
        assert_eq!((&a[0], &a[1], &a[2]), (&b[1], &b[0], &b[8]));
    }
    let (code, _, err) = score(
        &model,
        &telco(),
        &lean,
        &["--columns", "churn_probability,rfm_class"],
    );
    assert_eq!(code, 2);
    assert!(
        err.contains("'rfm_class'") && err.contains("can write: customerID, churn_probability"),
        "{err}"
    );

    // a bad row: stop with its row number, or reject it with --skip-invalid
    let text = std::fs::read_to_string(telco()).unwrap();
    let mut lines: Vec<String> = text.lines().take(11).map(String::from).collect();
    let cols: Vec<&str> = lines[5].split(',').collect();
    let tenure_ix = 5;
    let mut bad: Vec<String> = cols.iter().map(|s| s.to_string()).collect();
    bad[tenure_ix] = "five".into();
    lines[5] = bad.join(",");
    let input = write(dir.path(), "in.csv", &(lines.join("\n") + "\n"));
    let (code, _, err) = score(&model, &input, &out, &[]);
    assert_eq!(code, 2);
    assert!(
        err.contains("row 5") && err.contains("'tenure'") && err.contains("'five'"),
        "{err}"
    );
    let (code, _, err) = score(&model, &input, &out, &["--skip-invalid"]);
    assert_eq!(code, 0, "{err}");
    let (_, rows) = read_csv(&out);
    assert_eq!(rows.len(), 9);
    let (rh, rr) = read_csv(&dir.path().join("scores.rejects.csv"));
    assert_eq!(&rh[..3], ["row", "error", "customerID"]);
    assert_eq!(rr.len(), 1);
    assert_eq!(rr[0][0], "5");

    // a missing column lists what is there
    let nocol = write(dir.path(), "nocol.csv", "customerID,tenure\nA,3\n");
    let (code, _, err) = score(&model, &nocol, &out, &[]);
    assert_eq!(code, 2);
    assert!(
        err.contains("'Contract'") && err.contains("available columns: customerID, tenure"),
        "{err}"
    );

    // a corrupted bundle is refused
    let bin = champion_dir(&model).join("model.bin");
    let mut bytes = std::fs::read(&bin).unwrap();
    let n = bytes.len();
    bytes.truncate(n - 10);
    std::fs::write(&bin, bytes).unwrap();
    let (code, _, err) = score(&model, &telco(), &out, &[]);
    assert_eq!(code, 2);
    assert!(
        err.contains("truncated") && err.contains("model.bin"),
        "{err}"
    );
}
