//! Reliability and security regressions (issue 14): each test reproduces a defect found by
//! attacking the release binaries and fails on the code before its fix.

use crate::util::*;
use serde_json::json;
use std::process::Command;

/// A number from `/proc/PID/status` in kB (`VmRSS`, `VmHWM`).
fn proc_kb(pid: u32, key: &str) -> u64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    s.lines()
        .find_map(|l| l.strip_prefix(key))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

#[test]
fn a_body_of_empty_objects_is_refused_without_taking_memory() {
    // 4 MiB of `{},` held 1.8 GB before the batch limit was checked while parsing
    let models = models_copy("memory");
    let s = start(&models, &["--store", "none"], &[]);
    let pid = s.child.id();
    assert_eq!(http(&s.addr, "GET", "/healthz", &[], b"").status, 200);
    let before = proc_kb(pid, "VmRSS:");
    let n = (4 * 1024 * 1024 - 64) / 3;
    let mut body = String::with_capacity(4 * 1024 * 1024);
    body.push_str("{\"customers\":[");
    for i in 0..n {
        body.push_str(if i == 0 { "{}" } else { ",{}" });
    }
    body.push_str("]}");
    assert!(body.len() <= 4 * 1024 * 1024);
    let r = post_raw(&s.addr, "/v1/score", body.as_bytes());
    assert_eq!(r.status, 413, "{}", r.body);
    assert_eq!(r.json()["error"]["code"], "batch_too_large");
    let peak = proc_kb(pid, "VmHWM:");
    assert!(
        peak.saturating_sub(before) <= 64 * 1024,
        "RSS grew from {before} kB to a peak of {peak} kB"
    );
}

/// Run `churn-serve` expecting it to refuse to start: (exit code, stderr).
fn refused(args: &[&str], env: &[(&str, &str)]) -> (i32, String) {
    let args: Vec<&str> = ["--store", "none"].iter().chain(args).copied().collect();
    let mut child = serve_command(trained(), &args, env).spawn().unwrap();
    // a server that starts would run forever: give it 20 s
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            let mut err = String::new();
            use std::io::Read;
            child
                .stderr
                .take()
                .unwrap()
                .read_to_string(&mut err)
                .unwrap();
            return (status.code().unwrap_or(-1), err);
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            panic!("churn-serve {args:?} {env:?} started instead of refusing");
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

#[test]
fn api_tokens_set_but_blank_refuse_to_start() {
    // a blank secret used to switch authentication off without a word
    for blank in [" , ", "", ","] {
        let (code, err) = refused(&[], &[("CHURN_API_TOKENS", blank)]);
        assert_eq!(code, 2, "{blank:?}: {err}");
        assert!(
            err.contains("CHURN_API_TOKENS is set but holds no token"),
            "{err}"
        );
    }
}

#[test]
fn a_default_model_that_is_not_loaded_refuses_to_start() {
    // /readyz answered 200 while every request without ?model= got 404
    let (code, err) = refused(&["--default", "nosuchmodel"], &[]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("--default names model 'nosuchmodel', which is not loaded (loaded: telco"),
        "{err}"
    );
}

#[test]
fn a_refused_request_leaves_no_prediction_record() {
    // the first customer of a request refused for its second was recorded anyway
    let models = models_copy("refused-record");
    let db = models.join("store.db");
    let url = format!("sqlite://{}", db.display());
    let s = start(&models, &["--store", &url], &[]);
    let good = telco_customers(1).remove(0);
    let id = good["customerID"].as_str().unwrap().to_string();
    let r = post(
        &s.addr,
        "/v1/score",
        &json!({"customers": [good, {"customerID": "X1", "tenure": "many"}]}),
    );
    assert_eq!(r.status, 422, "{}", r.body);
    // longer than the writer's linger: a queued record would have been written by now
    std::thread::sleep(std::time::Duration::from_millis(500));
    let r = http(&s.addr, "GET", &format!("/v1/customers/{id}"), &[], b"");
    assert_eq!(r.status, 404, "{}", r.body);
}

#[test]
fn churn_score_refuses_to_write_over_its_input() {
    // `--input X --output X` replaced the data being scored with the scores
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("customers.csv");
    std::fs::copy("training/data/Telco-Customer-Churn.csv", &input).unwrap();
    let before = std::fs::read(&input).unwrap();
    std::fs::create_dir(dir.path().join("sub")).unwrap();
    let same = dir.path().join("sub").join("..").join("customers.csv");
    let out = Command::new(env!("CARGO_BIN_EXE_churn-score"))
        .args(["--model", trained().join("telco").to_str().unwrap()])
        .args([
            "--input",
            input.to_str().unwrap(),
            "--output",
            same.to_str().unwrap(),
        ])
        .env_remove("CHURN_STORE")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("refusing to write the output over the input file"),
        "{err}"
    );
    assert_eq!(std::fs::read(&input).unwrap(), before);
}
