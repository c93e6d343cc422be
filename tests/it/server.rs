//! `churn-serve` end to end: the real binary on an ephemeral port, spoken to over HTTP.

use crate::util::*;
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::io::Read;
use std::process::{Command, Stdio};
use std::time::Duration;

/// A valid Telco customer (first row of the file) as JSON.
fn customer() -> Value {
    json!({
        "customerID": "7590-VHVEG", "gender": "Female", "SeniorCitizen": 0, "Partner": "Yes",
        "Dependents": "No", "tenure": 1, "PhoneService": "No", "MultipleLines": "No phone service",
        "InternetService": "DSL", "OnlineSecurity": "No", "OnlineBackup": "Yes",
        "DeviceProtection": "No", "TechSupport": "No", "StreamingTV": "No", "StreamingMovies": "No",
        "Contract": "Month-to-month", "PaperlessBilling": "Yes", "PaymentMethod": "Electronic check",
        "MonthlyCharges": 29.85, "TotalCharges": "29.85"
    })
}

fn with(field: &str, v: Value) -> Value {
    let mut c = customer();
    c[field] = v;
    c
}

fn without(field: &str) -> Value {
    let mut c = customer();
    c.as_object_mut().unwrap().remove(field);
    c
}

#[test]
fn happy_paths() {
    let models = models_copy("happy");
    let s = start(&models, &[], &[]);
    let r = post(
        &s.addr,
        "/v1/score",
        &json!({"customers": [customer(), with("tenure", json!(60))]}),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let v = r.json();
    assert_eq!(v["model"]["name"], "telco");
    assert_eq!(v["model"]["version"].as_str().unwrap().len(), 12);
    let res = v["results"].as_array().unwrap();
    assert_eq!(res.len(), 2);
    assert_eq!(res[0]["customer_id"], "7590-VHVEG");
    let p0 = res[0]["churn_probability"].as_f64().unwrap();
    let p1 = res[1]["churn_probability"].as_f64().unwrap();
    assert!(
        p0 > p1,
        "a one-month customer is riskier than a five-year one: {p0} vs {p1}"
    );
    let iv = res[0]["probability_interval"].as_array().unwrap();
    assert!(iv[0].as_f64().unwrap() <= p0 && p0 <= iv[1].as_f64().unwrap());
    assert!(res[0]["reasons"]
        .as_array()
        .unwrap()
        .iter()
        .any(|r| r["condition"] == "Contract is Month-to-month"));
    assert!(res[0]["predicted_churn"].is_boolean());
    assert!(res[0]["segment"].as_str().is_some_and(|s| !s.is_empty()));
    assert!(res[0]["segment_id"].is_u64());
    assert!(["low", "medium", "high"].contains(&res[0]["risk_band"].as_str().unwrap()));
    assert!(["control", "treatment"].contains(&res[0]["treatment"].as_str().unwrap()));
    assert!(res[0]["recommendations"].is_array());
    assert_eq!(
        res[0]["levers"],
        json!([]),
        "the built-in playbook marks nothing actionable"
    );

    let r = post(
        &s.addr,
        "/v1/models/telco/score",
        &json!({"customers": [with("PaymentMethod", json!("Cash"))]}),
    );
    assert_eq!(r.status, 200);
    let w = &r.json()["results"][0]["warnings"][0];
    assert_eq!(w["kind"], "unseen_category");
    assert_eq!(w["field"], "PaymentMethod");

    // JSON escapes in keys and values, a numeric id and a repeated key (the last one wins)
    // score exactly like the plain request
    let mut plain = customer();
    plain["customerID"] = json!(12345);
    let escaped = plain
        .to_string()
        .replace(
            "\"Contract\":\"Month-to-month\"",
            "\"Con\\u0074ract\":\"Month\\u002dto-month\"",
        )
        .replace("\"tenure\":1", "\"tenure\":70,\"tenure\":1");
    assert!(
        escaped.contains("\\u002d") && escaped.contains("\"tenure\":70"),
        "{escaped}"
    );
    let body = format!("{{\"customers\":[{},{escaped}]}}", plain);
    let r = post_raw(&s.addr, "/v1/score", body.as_bytes());
    assert_eq!(r.status, 200, "{}", r.body);
    let res = r.json()["results"].clone();
    assert_eq!(res[0]["customer_id"], json!(12345));
    assert_eq!(res[1]["customer_id"], json!(12345));
    assert_eq!(res[0]["churn_probability"], res[1]["churn_probability"]);
    assert_eq!(res[0]["churn_probability"].as_f64().unwrap(), p0);

    let r = http(&s.addr, "GET", "/v1/models", &[], b"");
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["models"][0]["name"], "telco");
    let r = http(&s.addr, "GET", "/v1/models/telco", &[], b"");
    assert_eq!(r.status, 200);
    assert!(r.json()["card"]["holdout"]["roc_auc"].as_f64().unwrap() > 0.75);
    assert_eq!(http(&s.addr, "GET", "/healthz", &[], b"").status, 200);
    assert_eq!(http(&s.addr, "GET", "/readyz", &[], b"").status, 200);
    let m = http(&s.addr, "GET", "/metrics", &[], b"");
    assert_eq!(m.status, 200);
    assert!(
        m.body
            .contains("churn_http_requests_total{route=\"/v1/score\",status=\"200\"} 2"),
        "{}",
        m.body
    );
    assert!(m.body.contains("churn_model_info{model=\"telco\""));
    assert!(m
        .body
        .contains("churn_scored_customers_total{model=\"telco\""));
}

/// One rule for missing-value words over HTTP and in batch files: text "NaN" is a missing value
/// (imputed, with a warning) exactly as `churn-score` reads it from a CSV cell, with the same score.
#[test]
fn nan_text_is_a_missing_value_over_http_as_in_batch() {
    let models = models_copy("nan");
    let s = start(&models, &[], &[]);
    let nan = post(
        &s.addr,
        "/v1/score",
        &json!({"customers": [with("tenure", json!("NaN"))]}),
    );
    assert_eq!(nan.status, 200, "{}", nan.body);
    let nan = nan.json();
    let warnings = nan["results"][0]["warnings"].as_array().unwrap();
    assert!(
        warnings
            .iter()
            .any(|w| w["kind"] == "imputed" && w["field"] == "tenure"),
        "{warnings:?}"
    );
    let null = post(
        &s.addr,
        "/v1/score",
        &json!({"customers": [with("tenure", json!(null))]}),
    )
    .json();
    assert_eq!(
        nan["results"][0]["churn_probability"], null["results"][0]["churn_probability"],
        "NaN text and null score the same"
    );
    // the batch path reads the same word from a file as a missing value too
    let dir = tempfile::tempdir().unwrap();
    let header = "customerID,gender,SeniorCitizen,Partner,Dependents,tenure,PhoneService,MultipleLines,InternetService,OnlineSecurity,OnlineBackup,DeviceProtection,TechSupport,StreamingTV,StreamingMovies,Contract,PaperlessBilling,PaymentMethod,MonthlyCharges,TotalCharges";
    let row = "7590-VHVEG,Female,0,Yes,No,NaN,No,No phone service,DSL,No,Yes,No,No,No,No,Month-to-month,Yes,Electronic check,29.85,29.85";
    let input = write(dir.path(), "nan.csv", &format!("{header}\n{row}\n"));
    let out = dir.path().join("out.csv");
    let (code, _, err) = score(
        &models.join("telco"),
        &input,
        &out,
        &["--columns", "churn_probability"],
    );
    assert_eq!(code, 0, "{err}");
    let text = std::fs::read_to_string(&out).unwrap();
    let batch: f64 = text.lines().nth(1).unwrap().trim().parse().unwrap();
    assert_eq!(
        batch.to_bits(),
        nan["results"][0]["churn_probability"]
            .as_f64()
            .unwrap()
            .to_bits()
    );
}

#[test]
fn bad_input_gets_json_errors_with_code_and_field() {
    let models = models_copy("bad");
    let s = start(
        &models,
        &["--max-batch", "10", "--max-body-bytes", "65536"],
        &[],
    );
    let ct = [("Content-Type", "application/json")];
    let raw = |method: &str, path: &str, headers: &[(&str, &str)], body: &str| {
        http(&s.addr, method, path, headers, body.as_bytes())
    };
    let one = |c: Value| json!({"customers": [c]});
    let big = "x".repeat(70_000);
    let long_key_field = format!("customers[0].{}", "k".repeat(64));
    let cases: Vec<(&str, Resp, u16, &str, Option<&str>)> = vec![
        (
            "truncated JSON",
            raw("POST", "/v1/score", &ct, "{\"customers\": [{"),
            400,
            "malformed_json",
            None,
        ),
        (
            "not JSON",
            raw("POST", "/v1/score", &ct, "not json"),
            400,
            "malformed_json",
            None,
        ),
        (
            "empty body",
            raw("POST", "/v1/score", &ct, ""),
            400,
            "malformed_json",
            None,
        ),
        (
            "text/plain body",
            raw("POST", "/v1/score", &[("Content-Type", "text/plain")], "{}"),
            415,
            "unsupported_media_type",
            None,
        ),
        (
            "no content type",
            raw("POST", "/v1/score", &[], "{}"),
            415,
            "unsupported_media_type",
            None,
        ),
        (
            "body over the limit",
            raw(
                "POST",
                "/v1/score",
                &ct,
                &format!("{{\"customers\":[{{\"a\":\"{big}\"}}]}}"),
            ),
            413,
            "body_too_large",
            None,
        ),
        (
            "batch over the limit",
            post(
                &s.addr,
                "/v1/score",
                &json!({"customers": vec![customer(); 11]}),
            ),
            413,
            "batch_too_large",
            Some("customers"),
        ),
        (
            "id longer than the field limit (never echoed)",
            post(&s.addr, "/v1/score", &{
                let mut c = customer();
                c["customerID"] = json!("7".repeat(5000));
                json!({"customers": [c]})
            }),
            422,
            "invalid_value",
            Some("customers[0].customerID"),
        ),
        (
            "field name longer than the field limit",
            post(&s.addr, "/v1/score", &one(json!({"k".repeat(2000): 1}))),
            422,
            "invalid_value",
            Some(long_key_field.as_str()),
        ),
        (
            "empty batch",
            post(&s.addr, "/v1/score", &json!({"customers": []})),
            422,
            "empty_batch",
            Some("customers"),
        ),
        (
            "customers is an object",
            post(&s.addr, "/v1/score", &json!({"customers": {"a": 1}})),
            422,
            "invalid_request",
            Some("customers"),
        ),
        (
            "no customers key",
            post(&s.addr, "/v1/score", &json!({"clients": [customer()]})),
            422,
            "invalid_request",
            Some("customers"),
        ),
        (
            "top level is an array",
            post(&s.addr, "/v1/score", &json!([customer()])),
            422,
            "invalid_request",
            Some("customers"),
        ),
        (
            "customers are numbers",
            post(&s.addr, "/v1/score", &json!({"customers": [1, 2]})),
            422,
            "invalid_request",
            Some("customers"),
        ),
        (
            "tenure as text",
            post(&s.addr, "/v1/score", &one(with("tenure", json!("ten")))),
            422,
            "invalid_value",
            Some("customers[0].tenure"),
        ),
        (
            "charges as Infinity",
            post(
                &s.addr,
                "/v1/score",
                &one(with("MonthlyCharges", json!("Infinity"))),
            ),
            422,
            "invalid_value",
            Some("customers[0].MonthlyCharges"),
        ),
        (
            "charges as -inf",
            post(
                &s.addr,
                "/v1/score",
                &one(with("MonthlyCharges", json!("-inf"))),
            ),
            422,
            "invalid_value",
            Some("customers[0].MonthlyCharges"),
        ),
        (
            "tenure as an object",
            post(
                &s.addr,
                "/v1/score",
                &one(with("tenure", json!({"months": 3}))),
            ),
            422,
            "invalid_type",
            Some("customers[0].tenure"),
        ),
        (
            "contract as an array",
            post(
                &s.addr,
                "/v1/score",
                &one(with("Contract", json!(["Month-to-month"]))),
            ),
            422,
            "invalid_type",
            Some("customers[0].Contract"),
        ),
        (
            "contract missing",
            post(&s.addr, "/v1/score", &one(without("Contract"))),
            422,
            "missing_field",
            Some("customers[0].Contract"),
        ),
        (
            "tenure missing",
            post(&s.addr, "/v1/score", &one(without("tenure"))),
            422,
            "missing_field",
            Some("customers[0].tenure"),
        ),
        (
            "second customer invalid",
            post(
                &s.addr,
                "/v1/score",
                &json!({"customers": [customer(), with("tenure", json!("x"))]}),
            ),
            422,
            "invalid_value",
            Some("customers[1].tenure"),
        ),
        (
            "partner neither yes nor no",
            post(&s.addr, "/v1/score", &one(with("Partner", json!("Maybe")))),
            422,
            "invalid_value",
            Some("customers[0].Partner"),
        ),
        (
            "senior citizen is 2",
            post(&s.addr, "/v1/score", &one(with("SeniorCitizen", json!(2)))),
            422,
            "invalid_value",
            Some("customers[0].SeniorCitizen"),
        ),
        (
            "charges as a boolean",
            post(
                &s.addr,
                "/v1/score",
                &one(with("MonthlyCharges", json!(true))),
            ),
            422,
            "invalid_value",
            Some("customers[0].MonthlyCharges"),
        ),
        (
            "score with unknown model",
            post(&s.addr, "/v1/models/nope/score", &one(customer())),
            404,
            "unknown_model",
            None,
        ),
        (
            "card of unknown model",
            raw("GET", "/v1/models/nope", &[], ""),
            404,
            "unknown_model",
            None,
        ),
        (
            "unknown route",
            raw("GET", "/v2/score", &[], ""),
            404,
            "not_found",
            None,
        ),
        (
            "GET on score",
            raw("GET", "/v1/score", &[], ""),
            405,
            "method_not_allowed",
            None,
        ),
        (
            "DELETE on models",
            raw("DELETE", "/v1/models", &[], ""),
            405,
            "method_not_allowed",
            None,
        ),
        (
            "PUT on healthz",
            raw("PUT", "/healthz", &[], ""),
            405,
            "method_not_allowed",
            None,
        ),
        (
            "GET on reload",
            raw("GET", "/v1/admin/reload", &[], ""),
            405,
            "method_not_allowed",
            None,
        ),
        (
            "reload without admin token",
            raw("POST", "/v1/admin/reload", &[], ""),
            403,
            "admin_disabled",
            None,
        ),
    ];
    assert!(cases.len() >= 25);
    for (name, r, status, code, field) in &cases {
        assert_eq!(r.status, *status, "{name}: {}", r.body);
        assert!(
            r.body.len() < 4096,
            "{name}: an error echoes the input: {}",
            r.body.len()
        );
        let v = r.json();
        assert_eq!(v["error"]["code"], *code, "{name}: {}", r.body);
        assert!(
            v["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty()),
            "{name}"
        );
        match field {
            Some(f) => assert_eq!(v["error"]["field"], *f, "{name}: {}", r.body),
            None => assert!(v["error"].get("field").is_none(), "{name}: {}", r.body),
        }
    }
    // the server is still healthy and never answered 500
    assert_eq!(http(&s.addr, "GET", "/healthz", &[], b"").status, 200);
    let m = http(&s.addr, "GET", "/metrics", &[], b"").body;
    assert!(!m.contains("status=\"500\""), "{m}");
}

#[test]
fn bearer_tokens_protect_v1_and_admin() {
    let models = models_copy("auth");
    let s = start(
        &models,
        &[],
        &[
            ("CHURN_API_TOKENS", "alpha, beta"),
            ("CHURN_ADMIN_TOKEN", "root"),
        ],
    );
    let body = json!({"customers": [customer()]}).to_string();
    let ct = ("Content-Type", "application/json");
    let r = http(&s.addr, "POST", "/v1/score", &[ct], body.as_bytes());
    assert_eq!(r.status, 401);
    assert_eq!(r.json()["error"]["code"], "unauthorized");
    let r = http(
        &s.addr,
        "POST",
        "/v1/score",
        &[ct, ("Authorization", "Bearer gamma")],
        body.as_bytes(),
    );
    assert_eq!(r.status, 403);
    assert_eq!(r.json()["error"]["code"], "forbidden");
    let r = http(
        &s.addr,
        "POST",
        "/v1/score",
        &[ct, ("Authorization", "Bearer beta")],
        body.as_bytes(),
    );
    assert_eq!(r.status, 200);
    assert_eq!(http(&s.addr, "GET", "/v1/models", &[], b"").status, 401);
    assert_eq!(
        http(
            &s.addr,
            "GET",
            "/v1/models",
            &[("Authorization", "Bearer alpha")],
            b""
        )
        .status,
        200
    );
    // health and metrics stay open for probes
    assert_eq!(http(&s.addr, "GET", "/healthz", &[], b"").status, 200);
    // admin needs the admin token, not an API token
    assert_eq!(
        http(
            &s.addr,
            "POST",
            "/v1/admin/reload",
            &[("Authorization", "Bearer alpha")],
            b""
        )
        .status,
        403
    );
    assert_eq!(
        http(&s.addr, "POST", "/v1/admin/reload", &[], b"").status,
        401
    );
    assert_eq!(
        http(
            &s.addr,
            "POST",
            "/v1/admin/reload",
            &[("Authorization", "Bearer root")],
            b""
        )
        .status,
        200
    );
}

#[test]
fn reload_keeps_old_model_on_failure_and_swaps_on_success() {
    let models = models_copy("reload");
    let s = start(&models, &[], &[("CHURN_ADMIN_TOKEN", "root")]);
    let admin = [("Authorization", "Bearer root")];
    let body = json!({"customers": [customer()]});
    let v1 = post(&s.addr, "/v1/score", &body).json();
    let version1 = v1["model"]["version"].as_str().unwrap().to_string();

    // corrupt the bundle on disk: reload reports it, the old model keeps answering
    let bin = models.join("telco/model.bin");
    let good = std::fs::read(&bin).unwrap();
    let mut bad = good.clone();
    let n = bad.len();
    bad[n - 5] ^= 0xff;
    std::fs::write(&bin, &bad).unwrap();
    let r = http(&s.addr, "POST", "/v1/admin/reload", &admin, b"");
    assert_eq!(r.status, 422, "{}", r.body);
    let e = r.json();
    assert_eq!(e["error"]["code"], "reload_failed");
    assert!(e["error"]["details"]["failed"]["telco"]
        .as_str()
        .unwrap()
        .contains("corrupted"));
    let again = post(&s.addr, "/v1/score", &body);
    assert_eq!(again.status, 200);
    assert_eq!(again.json()["model"]["version"], version1.as_str());
    assert!(http(&s.addr, "GET", "/metrics", &[], b"")
        .body
        .contains("churn_reload_failures_total 1"));

    // a new bundle (different hyper-parameters) is picked up
    retrain_telco_promoted(&models.join("telco"), "3", "50");
    // concurrent requests while reloading all succeed
    let addr = s.addr.clone();
    let hammer: Vec<_> = (0..4)
        .map(|_| {
            let addr = addr.clone();
            let body = body.clone();
            std::thread::spawn(move || {
                (0..40)
                    .map(|_| post(&addr, "/v1/score", &body).status)
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    for _ in 0..5 {
        let r = http(&s.addr, "POST", "/v1/admin/reload", &admin, b"");
        assert_eq!(r.status, 200, "{}", r.body);
    }
    for h in hammer {
        assert!(h.join().unwrap().iter().all(|&st| st == 200));
    }
    let v2 = post(&s.addr, "/v1/score", &body).json();
    assert_ne!(
        v2["model"]["version"],
        version1.as_str(),
        "new version answers"
    );
}

#[test]
fn http_and_batch_scoring_agree_on_500_customers() {
    let models = models_copy("parity");
    let s = start(&models, &["--max-batch", "1000"], &[]);
    let n = 500;
    let customers = telco_customers(n);
    let r = post(&s.addr, "/v1/score", &json!({ "customers": customers }));
    assert_eq!(r.status, 200, "{}", r.body);
    let http_p: Vec<f64> = r.json()["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["churn_probability"].as_f64().unwrap())
        .collect();
    // the same rows through churn-score
    let dir = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(telco()).unwrap();
    let head: Vec<&str> = text.lines().take(n + 1).collect();
    let input = write(dir.path(), "500.csv", &(head.join("\n") + "\n"));
    // Parquet keeps every bit of the f64 (polars' CSV writer prints 16 significant digits)
    let out = dir.path().join("out.parquet");
    let (code, _, err) = score(&models.join("telco"), &input, &out, &["--quiet"]);
    assert_eq!(code, 0, "{err}");
    let scored = churn::io::read_table(&out, None).unwrap();
    let col = scored.column("churn_probability").unwrap();
    assert_eq!(scored.nrows, n);
    for (i, hp) in http_p.iter().enumerate() {
        let churn::io::RawValue::Number(bp) = col.data.get(i) else {
            panic!()
        };
        assert_eq!(bp, *hp, "row {i}");
    }
}

#[test]
fn openapi_describes_every_route_and_the_model_inputs() {
    let models = models_copy("openapi");
    let s = start(&models, &[], &[("CHURN_ADMIN_TOKEN", "root")]);
    let r = http(&s.addr, "GET", "/openapi.json", &[], b"");
    assert_eq!(r.status, 200);
    let spec = r.json();
    assert_eq!(spec["openapi"], "3.1.0");
    let paths = spec["paths"].as_object().unwrap();
    assert_eq!(paths.len(), 17);
    let ids: BTreeSet<&str> = paths
        .values()
        .flat_map(|ops| ops.as_object().unwrap().values())
        .map(|op| {
            op["operationId"]
                .as_str()
                .expect("every operation has an operationId")
        })
        .collect();
    assert_eq!(ids.len(), 17, "operationIds are unique: {ids:?}");
    // the store's read paths answer for a customer scored before (the writer is asynchronous)
    assert_eq!(
        post(&s.addr, "/v1/score", &json!({"customers": [customer()]})).status,
        200
    );
    let stored = (0..100).any(|_| {
        std::thread::sleep(Duration::from_millis(50));
        http(
            &s.addr,
            "GET",
            "/v1/customers/7590-VHVEG",
            &[("Authorization", "Bearer root")],
            b"",
        )
        .status
            == 200
    });
    assert!(stored, "the scored customer reached the store");
    for (path, ops) in paths {
        for (method, _) in ops.as_object().unwrap() {
            let concrete = path
                .replace("{name}", "telco")
                .replace("{id}", "7590-VHVEG");
            let body = match path.as_str() {
                "/v1/outcomes" => {
                    // within the label horizon of the customer's first prediction (older events
                    // need ?allow_backdated=true)
                    let at = churn::time::format_instant(churn::time::now_ms() - 86_400_000);
                    json!({"outcomes": [{"customer_id": "7590-VHVEG", "event": "retained", "at": at}]})
                }
                "/v1/models/{name}/aliases" => {
                    json!({"alias": "challenger", "version": "champion"})
                }
                _ => json!({"customers": [customer()]}),
            };
            let resp = http(
                &s.addr,
                &method.to_ascii_uppercase(),
                &concrete,
                &[
                    ("Content-Type", "application/json"),
                    ("Authorization", "Bearer root"),
                ],
                body.to_string().as_bytes(),
            );
            assert!(
                resp.status == 200,
                "{method} {path} documented but answered {}: {}",
                resp.status,
                resp.body
            );
        }
    }
    let props = spec["components"]["schemas"]["Customer"]["properties"]
        .as_object()
        .unwrap();
    assert!(props.contains_key("tenure") && props.contains_key("Contract"));
    assert_eq!(props["Contract"]["x-churn-type"], "categorical");
    assert!(props["Contract"]["examples"]
        .as_array()
        .unwrap()
        .iter()
        .any(|v| v == "Month-to-month"));
    assert!(spec["paths"]["/v1/score"]["post"]["responses"]["422"].is_object());
}

/// A schema with its `$ref` followed.
fn resolved<'a>(spec: &'a Value, schema: &'a Value) -> &'a Value {
    match schema["$ref"].as_str() {
        Some(r) => {
            let name = r
                .strip_prefix("#/components/schemas/")
                .expect("a local $ref");
            resolved(spec, &spec["components"]["schemas"][name])
        }
        None => schema,
    }
}

/// Walk `value` against `schema`: every key path found (`results[].levers[].text`) goes into
/// `seen` when the schema has it as a property, into `unknown` when it does not.
fn walk_response(
    spec: &Value,
    schema: &Value,
    value: &Value,
    path: &str,
    seen: &mut BTreeSet<String>,
    unknown: &mut BTreeSet<String>,
) {
    let schema = resolved(spec, schema);
    match value {
        Value::Object(fields) => {
            for (key, v) in fields {
                let at = if path.is_empty() {
                    key.clone()
                } else {
                    format!("{path}.{key}")
                };
                match schema["properties"].get(key) {
                    Some(sub) => {
                        walk_response(spec, sub, v, &at, seen, unknown);
                        seen.insert(at);
                    }
                    None => {
                        unknown.insert(at);
                    }
                }
            }
        }
        Value::Array(items) => {
            for v in items {
                walk_response(
                    spec,
                    &schema["items"],
                    v,
                    &format!("{path}[]"),
                    seen,
                    unknown,
                );
            }
        }
        _ => {}
    }
}

/// Every property path of `schema`, through objects, array items and `$ref`s.
fn schema_paths(spec: &Value, schema: &Value, path: &str, out: &mut BTreeSet<String>) {
    let schema = resolved(spec, schema);
    if let Some(props) = schema["properties"].as_object() {
        for (key, sub) in props {
            let at = if path.is_empty() {
                key.clone()
            } else {
                format!("{path}.{key}")
            };
            schema_paths(spec, sub, &at, out);
            out.insert(at);
        }
    }
    if schema.get("items").is_some() {
        schema_paths(spec, &schema["items"], &format!("{path}[]"), out);
    }
}

/// The score response schema of `/openapi.json` lists exactly what the server returns: every key
/// of full responses (store on, so ids; the example playbook, so advice and levers; segments with
/// lifecycle stages; warnings of two kinds) is a property, recursively, and every property occurs
/// in them but for the ones this model cannot produce.
#[test]
fn openapi_score_schema_matches_full_responses_key_for_key() {
    /// Properties a Telco model never returns, and why.
    const ELSEWHERE: [(&str, &str); 5] = [
        ("results[].rfm_class", "models trained on a transaction log"),
        (
            "results[].model_version",
            "answers of a canary challenger (tests/it/challenger.rs)",
        ),
        ("results[].warnings[].min_count", "rare_category warnings"),
        ("results[].harms", "models with an uplift bundle"),
        (
            "results[].recommendations[].uplift",
            "models with an uplift bundle",
        ),
    ];
    let dir = tempfile::tempdir().unwrap();
    let store = format!("sqlite://{}", dir.path().join("store.db").display());
    let s = start(trained_example(), &["--store", &store], &[]);
    let spec = http(&s.addr, "GET", "/openapi.json", &[], b"").json();
    let ok = &spec["paths"]["/v1/score"]["post"]["responses"]["200"];
    let schema = &ok["content"]["application/json"]["schema"];
    assert_eq!(schema["$ref"], "#/components/schemas/ScoreResponse");
    // customers of the treatment group (so they get recommendations), one with a category the
    // model never saw and one with a missing number (the two warnings a Telco model gives)
    let mut ids = (0..1000)
        .map(|i| format!("SCHEMA-{i}"))
        .filter(|id| !churn::playbook::in_control(id, "telco-retention", 10.0));
    let customers: Vec<Value> = [
        customer(),
        with("Contract", json!("Decade")),
        with("tenure", Value::Null),
    ]
    .into_iter()
    .map(|mut c| {
        c["customerID"] = json!(ids.next().unwrap());
        c
    })
    .collect();
    let r = post(
        &s.addr,
        "/v1/score?detail=full",
        &json!({ "customers": customers }),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let (mut seen, mut unknown) = (BTreeSet::new(), BTreeSet::new());
    walk_response(&spec, schema, &r.json(), "", &mut seen, &mut unknown);
    assert!(
        unknown.is_empty(),
        "returned but not in the schema: {unknown:?}"
    );
    let mut documented = BTreeSet::new();
    schema_paths(&spec, schema, "", &mut documented);
    for (path, only_for) in ELSEWHERE {
        assert!(
            documented.contains(path),
            "{path} ({only_for}) is documented"
        );
        assert!(
            !seen.contains(path),
            "{path} is returned for Telco after all"
        );
        documented.remove(path);
    }
    let never: Vec<&String> = documented.difference(&seen).collect();
    assert!(
        never.is_empty(),
        "in the schema but never returned: {never:?}"
    );
}

#[test]
fn sighup_reloads_and_sigterm_shuts_down_gracefully() {
    let models = models_copy("signals");
    let mut s = start(&models, &[], &[]);
    let body = json!({"customers": [customer()]});
    let v1 = post(&s.addr, "/v1/score", &body).json()["model"]["version"].clone();
    retrain_telco_promoted(&models.join("telco"), "3", "100");
    signal(&s.child, "HUP");
    let mut v2 = v1.clone();
    for _ in 0..50 {
        std::thread::sleep(Duration::from_millis(100));
        v2 = post(&s.addr, "/v1/score", &body).json()["model"]["version"].clone();
        if v2 != v1 {
            break;
        }
    }
    assert_ne!(v1, v2, "SIGHUP picked up the new bundle");
    signal(&s.child, "TERM");
    let status = wait_exit(&mut s.child, Duration::from_secs(15), "did not shut down");
    assert!(status.success(), "graceful shutdown exits 0, got {status}");
}

/// SIGTERM with a drain period: readiness fails at once (a load balancer stops sending new
/// requests), requests are still answered during the drain, every answered prediction is stored,
/// and the server exits 0 once the drain is over — not before.
#[test]
fn sigterm_drains_then_stops_and_stores_every_answer() {
    let models = models_copy("drain");
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("store.db").display());
    let mut s = start(&models, &["--drain-seconds", "3", "--store", &url], &[]);
    assert_eq!(http(&s.addr, "GET", "/readyz", &[], b"").status, 200);
    let body = json!({"customers": [customer()]});
    signal(&s.child, "TERM");
    let t0 = std::time::Instant::now();
    loop {
        let r = http(&s.addr, "GET", "/readyz", &[], b"");
        if r.status == 503 {
            assert!(r.body.contains("draining"), "{}", r.body);
            break;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(2),
            "readiness still {}",
            r.status
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let mut answered = 0;
    while t0.elapsed() < Duration::from_secs(2) {
        let r = post(&s.addr, "/v1/score", &body);
        assert_eq!(r.status, 200, "during the drain: {}", r.body);
        answered += 1;
    }
    let status = wait_exit(&mut s.child, Duration::from_secs(18), "did not stop");
    assert!(status.success(), "a drained shutdown exits 0, got {status}");
    assert!(
        t0.elapsed() >= Duration::from_millis(2900),
        "stopped before the drain was over: {:?}",
        t0.elapsed()
    );
    let stored = count_rows(&url, "predictions");
    assert!(answered > 0);
    assert_eq!(
        stored, answered,
        "every prediction answered during the drain is stored"
    );
}

/// Ctrl-C (SIGINT) does not wait for the drain an orchestrator's SIGTERM gets: the server stops
/// at once and exits 0.
#[test]
fn sigint_stops_at_once_whatever_the_drain() {
    let models = models_copy("sigint");
    let mut s = start(&models, &["--drain-seconds", "30", "--store", "none"], &[]);
    signal(&s.child, "INT");
    let status = wait_exit(
        &mut s.child,
        Duration::from_secs(10),
        "Ctrl-C waited for the drain",
    );
    assert!(status.success(), "{status}");
}

#[test]
fn a_playbook_override_drives_recommendations_and_levers() {
    let models = models_copy("playbook");
    let pb = root().join("training/telco-playbook.toml");
    let s = start(&models, &["--playbook", pb.to_str().unwrap()], &[]);
    // a customer id in the treatment group of the telco experiment
    let id = (0..100)
        .map(|i| format!("T-{i}"))
        .find(|id| !churn::playbook::in_control(id, "telco-retention", 10.0))
        .unwrap();
    let mut c = with("InternetService", json!("Fiber optic"));
    c["customerID"] = json!(id);
    c["MonthlyCharges"] = json!(95.0);
    let r = post(&s.addr, "/v1/score", &json!({ "customers": [c] }));
    assert_eq!(r.status, 200, "{}", r.body);
    let v = &r.json()["results"][0];
    assert_eq!(v["treatment"], "treatment");
    let actions: Vec<&str> = v["recommendations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["action"].as_str().unwrap())
        .collect();
    assert!(actions.contains(&"CONTRACT_UPGRADE"), "{actions:?}");
    assert!((v["customer_value"].as_f64().unwrap() - 95.0 * 12.0).abs() < 1e-9);
    let first = &v["recommendations"][0];
    assert!(first["why"].as_str().unwrap().starts_with("rule '"));
    let levers = v["levers"].as_array().unwrap();
    assert!(!levers.is_empty());
    assert!(levers[0]["text"].as_str().unwrap().starts_with("change "));
    // an invalid override stops the server at start with the file and the rule
    let bad = models.join("bad.toml");
    std::fs::write(
        &bad,
        std::fs::read_to_string(&pb)
            .unwrap()
            .replace("[\"CONTRACT_UPGRADE\"]", "[\"CONTRACT_UPGRAYED\"]"),
    )
    .unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_churn-serve"))
        .args([
            "--models",
            models.to_str().unwrap(),
            "--bind",
            "127.0.0.1:0",
            "--playbook",
            bad.to_str().unwrap(),
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let started = std::time::Instant::now();
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        if started.elapsed() > Duration::from_secs(15) {
            let _ = child.kill();
            panic!("the server started with an invalid playbook");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(status.code(), Some(2));
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    assert!(
        err.contains("bad.toml") && err.contains("unknown action 'CONTRACT_UPGRAYED'"),
        "{err}"
    );
}

/// `?detail=` trims what is computed and returned; the probability and interval never change,
/// and with the store on a probability-only request still records the advice the loop measures.
#[test]
fn detail_query_trims_the_result_but_never_the_probability() {
    let models = models_copy("detail");
    let s = start(&models, &[], &[("CHURN_ADMIN_TOKEN", "root")]);
    let body = json!({"customers": [customer(), with("tenure", json!(60))]});
    let get = |q: &str| {
        let r = post(&s.addr, &format!("/v1/score{q}"), &body);
        assert_eq!(r.status, 200, "{q}: {}", r.body);
        r.json()
    };
    let (full, advice, prob) = (get(""), get("?detail=advice"), get("?detail=probability"));
    assert_eq!(get("?detail=full")["results"][0]["levers"], json!([]));
    for i in 0..2 {
        let (f, a, p) = (
            &full["results"][i],
            &advice["results"][i],
            &prob["results"][i],
        );
        for k in [
            "churn_probability",
            "probability_interval",
            "predicted_churn",
            "leaf_support",
            "segment",
            "segment_id",
            "warnings",
        ] {
            assert!(!f[k].is_null(), "{k}");
            assert_eq!(f[k], a[k], "advice {k}");
            assert_eq!(f[k], p[k], "probability {k}");
        }
        assert!(f["levers"].is_array());
        assert!(a.get("levers").is_none() && p.get("levers").is_none());
        for k in [
            "reasons",
            "protective",
            "risk_band",
            "treatment",
            "contact",
            "recommendations",
        ] {
            assert!(!f[k].is_null(), "{k}");
            assert_eq!(f[k], a[k], "advice {k}");
            assert!(p.get(k).is_none(), "probability-only result has {k}: {p}");
        }
    }
    // the stored prediction of a probability-only request carries the advice
    let only = json!({"customers": [with("customerID", json!("PROBABILITY-ONLY"))]});
    let r = post(&s.addr, "/v1/score?detail=probability", &only);
    assert_eq!(r.status, 200, "{}", r.body);
    let stored = (0..100).find_map(|_| {
        std::thread::sleep(Duration::from_millis(50));
        let r = http(
            &s.addr,
            "GET",
            "/v1/customers/PROBABILITY-ONLY",
            &[("Authorization", "Bearer root")],
            b"",
        );
        (r.status == 200).then(|| r.json())
    });
    let stored = stored.expect("the scored customer reached the store");
    assert_eq!(stored["risk_band"], full["results"][0]["risk_band"]);
    assert!(stored["treatment"].is_string(), "{stored}");
    // an unknown detail is refused by name, before the body is read
    let r = post(&s.addr, "/v1/score?detail=everything", &body);
    assert_eq!(r.status, 422, "{}", r.body);
    let e = r.json();
    assert_eq!(e["error"]["field"], "detail");
    assert!(e["error"]["message"]
        .as_str()
        .unwrap()
        .contains("full, advice, probability"));
}
