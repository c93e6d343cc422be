//! The prediction store (issue 11) end to end: `churn-serve`, `churn-score` and `churn-train`
//! against SQLite and PostgreSQL. Each scenario is written once as a function of the store URL
//! and run on both backends (`*_sqlite` / `*_postgres`); PostgreSQL tests get a database of
//! their own on 127.0.0.1:5432, dropped when the test ends (also when it fails).

use crate::util::*;
use chrono::{Duration as Days, FixedOffset, SecondsFormat, Utc};
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The Telco playbook: its actions (CONTRACT_UPGRADE, ...) are valid in outcome events.
const PLAYBOOK: &str = "training/telco-playbook.toml";
/// How long the asynchronous writer may take before a stored prediction must be visible.
const WRITE_WAIT: Duration = Duration::from_secs(5);

// ---------------------------------------------------------------- backends

/// Run `sql` with `psql` on database `db` (PostgreSQL on loopback, trust auth); stdout or stderr.
pub(crate) fn psql(db: &str, sql: &str) -> Result<String, String> {
    let out = Command::new("psql")
        .args(["-h", "127.0.0.1", "-p", "5432", "-U", "postgres", "-d", db])
        .args(["-v", "ON_ERROR_STOP=1", "-tA", "-c", sql])
        .env("PGCONNECT_TIMEOUT", "5")
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("psql did not run: {e}"))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

/// A PostgreSQL database of one test; dropped `WITH (FORCE)` when the guard goes out of scope,
/// so a failing test leaves nothing behind.
pub(crate) struct PgDb {
    name: String,
}

impl PgDb {
    /// Create `churn_t_<test>_<pid>` (dropping a leftover of the same name first); `None`
    /// (the test skips, saying why) when no PostgreSQL answers on 127.0.0.1:5432, unless
    /// `CHURN_REQUIRE_POSTGRES=1` (set by CI) makes that a failure.
    pub(crate) fn create(test: &str) -> Option<PgDb> {
        if let Err(e) = psql("postgres", "SELECT 1") {
            if std::env::var("CHURN_REQUIRE_POSTGRES").is_ok_and(|v| v == "1") {
                panic!("CHURN_REQUIRE_POSTGRES=1 but PostgreSQL on 127.0.0.1:5432 does not answer: {e}");
            }
            eprintln!(
                "skipped: PostgreSQL on 127.0.0.1:5432 does not answer (start it, or set CHURN_REQUIRE_POSTGRES=1 to make this a failure): {}",
                e.trim()
            );
            return None;
        }
        let name = format!("churn_t_{test}_{}", std::process::id());
        assert!(name.len() <= 63, "database name too long: {name}");
        let _ = psql(
            "postgres",
            &format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
        );
        psql("postgres", &format!("CREATE DATABASE {name}"))
            .unwrap_or_else(|e| panic!("creating database {name}: {e}"));
        Some(PgDb { name })
    }

    /// The database's name.
    pub(crate) fn name(&self) -> &str {
        &self.name
    }

    pub(crate) fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:5432/{}", self.name)
    }

    /// Drop the database now (while a server may still be connected).
    fn drop_database(&self) -> Result<String, String> {
        psql(
            "postgres",
            &format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name),
        )
    }
}

impl Drop for PgDb {
    fn drop(&mut self) {
        let _ = self.drop_database();
    }
}

/// Run `body` with a fresh SQLite store in a temporary directory.
pub(crate) fn on_sqlite(body: fn(&str)) {
    let dir = tempfile::tempdir().unwrap();
    body(&format!(
        "sqlite://{}",
        dir.path().join("store.db").display()
    ));
}

/// Run `body` with a fresh PostgreSQL database named after `test`.
pub(crate) fn on_postgres(test: &str, body: fn(&str)) {
    if let Some(db) = PgDb::create(test) {
        body(&db.url());
    }
}

/// Two `#[test]`s running `body` on SQLite and on PostgreSQL.
macro_rules! both_backends {
    ($body:ident, $sqlite:ident, $postgres:ident) => {
        #[test]
        fn $sqlite() {
            on_sqlite($body)
        }
        #[test]
        fn $postgres() {
            on_postgres(stringify!($body), $body)
        }
    };
}

// ---------------------------------------------------------------- helpers

/// `churn-serve` on the shared trained Telco model with the Telco playbook and store `url`.
pub(crate) fn serve(url: &str, extra: &[&str], env: &[(&str, &str)]) -> Server {
    let pb = root().join(PLAYBOOK);
    let mut args = vec!["--store", url, "--playbook", pb.to_str().unwrap()];
    args.extend_from_slice(extra);
    start(trained(), &args, env)
}

pub(crate) fn get(addr: &str, path: &str) -> Resp {
    http(addr, "GET", path, &[], b"")
}

/// Percent-encode a query or path value.
pub(crate) fn enc(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// Retry `f` every 50 ms until it succeeds or `timeout` passes (then panic with its last error).
pub(crate) fn eventually<T>(
    what: &str,
    timeout: Duration,
    mut f: impl FnMut() -> Result<T, String>,
) -> T {
    let started = Instant::now();
    loop {
        match f() {
            Ok(v) => return v,
            Err(e) if started.elapsed() > timeout => {
                panic!("{what}: not within {timeout:?}; last: {e}")
            }
            Err(_) => std::thread::sleep(Duration::from_millis(50)),
        }
    }
}

/// POST /v1/score; the response (asserted 200).
pub(crate) fn score_http(addr: &str, customers: &[Value]) -> Value {
    let r = post(addr, "/v1/score", &json!({ "customers": customers }));
    assert_eq!(r.status, 200, "scoring: {}", r.body);
    r.json()
}

/// GET /v1/customers/{id}, polled until it answers 200 (the writer is asynchronous).
pub(crate) fn lookup_eventually(addr: &str, id: &str) -> Value {
    eventually(&format!("lookup of {id} after scoring"), WRITE_WAIT, || {
        let r = get(addr, &format!("/v1/customers/{}", enc(id)));
        if r.status == 200 {
            Ok(r.json())
        } else {
            Err(format!("{} {}", r.status, r.body))
        }
    })
}

/// All pages of the worklist for `query` (`k=v` pairs), following `next_cursor`; also returns
/// the number of pages.
fn worklist(addr: &str, query: &[(&str, &str)]) -> (Vec<Value>, usize) {
    let mut rows = Vec::new();
    let mut cursor: Option<String> = None;
    for page in 1..=100 {
        let mut q: Vec<String> = query
            .iter()
            .map(|(k, v)| format!("{k}={}", enc(v)))
            .collect();
        if let Some(c) = &cursor {
            q.push(format!("cursor={}", enc(c)));
        }
        let r = get(addr, &format!("/v1/customers?{}", q.join("&")));
        assert_eq!(r.status, 200, "worklist {q:?}: {}", r.body);
        let v = r.json();
        let page_rows = v["customers"]
            .as_array()
            .unwrap_or_else(|| panic!("worklist without a customers array: {v}"));
        rows.extend(page_rows.iter().cloned());
        match &v["next_cursor"] {
            Value::String(c) => cursor = Some(c.clone()),
            Value::Null => return (rows, page),
            other => panic!("next_cursor is neither a string nor null: {other}"),
        }
    }
    panic!("the worklist did not end after 100 pages")
}

/// The `customer_id`s of worklist rows.
fn ids_of(rows: &[Value]) -> Vec<String> {
    rows.iter()
        .map(|r| {
            r["customer_id"]
                .as_str()
                .unwrap_or_else(|| panic!("worklist row without customer_id: {r}"))
                .to_string()
        })
        .collect()
}

/// Wait until the worklist holds `n` customers (all scored records written).
pub(crate) fn worklist_eventually(addr: &str, n: usize) -> Vec<Value> {
    eventually("every scored customer in the worklist", WRITE_WAIT, || {
        let (rows, _) = worklist(addr, &[("limit", "1000")]);
        if rows.len() == n {
            Ok(rows)
        } else {
            Err(format!("{} of {n} customers", rows.len()))
        }
    })
}

/// POST /v1/outcomes; the response.
pub(crate) fn post_outcomes(addr: &str, events: &[Value]) -> Resp {
    post(addr, "/v1/outcomes", &json!({ "outcomes": events }))
}

/// POST /v1/outcomes expecting 200 with `stored` and `duplicates`.
fn outcomes_ok(addr: &str, events: &[Value], stored: u64, duplicates: u64, what: &str) {
    let r = post_outcomes(addr, events);
    assert_eq!(r.status, 200, "{what}: {}", r.body);
    let v = r.json();
    assert_eq!(
        (v["stored"].as_u64(), v["duplicates"].as_u64()),
        (Some(stored), Some(duplicates)),
        "{what}: expected stored {stored} / duplicates {duplicates}, got {v}"
    );
}

/// A timestamp `minutes` from now in RFC 3339 UTC (`...Z`).
pub(crate) fn at(minutes: i64) -> String {
    (Utc::now() + Days::minutes(minutes)).to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// The Telco id (`customerID`) of a sample customer.
fn id_of(c: &Value) -> String {
    c["customerID"].as_str().unwrap().to_string()
}

/// The float at `v[key]`, with the JSON in the message when absent.
fn f64_at(v: &Value, key: &str) -> f64 {
    v[key]
        .as_f64()
        .unwrap_or_else(|| panic!("no number at {key}: {v}"))
}

/// `a` and `b` agree to a relative 1e-9.
fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-9 * a.abs().max(b.abs()).max(1.0)
}

/// Is `s` a UUIDv7 in the hyphenated text form?
fn is_uuid_v7(s: &str) -> bool {
    let b = s.as_bytes();
    s.len() == 36
        && [8, 13, 18, 23].iter().all(|&i| b[i] == b'-')
        && s.chars()
            .filter(|&c| c != '-')
            .all(|c| c.is_ascii_hexdigit())
        && b[14] == b'7'
}

/// Is `s` a lowercase or uppercase hex string of `n` characters?
fn is_hex(s: &str, n: usize) -> bool {
    s.len() == n && s.chars().all(|c| c.is_ascii_hexdigit())
}

/// Prometheus sample value of the first series named `name` (with or without labels).
pub(crate) fn metric(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .find(|l| l.starts_with(&format!("{name} ")) || l.starts_with(&format!("{name}{{")))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

// ---------------------------------------------------------------- 1. score → lookup

/// Scored customers can be looked up: the same probability (bit for bit), prediction id,
/// request id and advice as the score response; the latest prediction wins; unknown → 404.
fn score_then_lookup(url: &str) {
    let s = serve(url, &[], &[]);
    let customers = telco_customers(2);
    let resp = score_http(&s.addr, &customers);
    let request_id = resp["request_id"]
        .as_str()
        .unwrap_or_else(|| panic!("score response without request_id: {resp}"))
        .to_string();
    assert!(!request_id.is_empty(), "empty request_id");
    let results = resp["results"].as_array().unwrap();
    let mut pids = BTreeSet::new();
    for (c, res) in customers.iter().zip(results) {
        let id = id_of(c);
        let pid = res["prediction_id"]
            .as_str()
            .unwrap_or_else(|| panic!("result without prediction_id: {res}"));
        assert!(is_uuid_v7(pid), "prediction_id is not a UUIDv7: {pid}");
        pids.insert(pid.to_string());
        let got = lookup_eventually(&s.addr, &id);
        let ctx = format!("lookup of {id}: {got}");
        assert_eq!(got["customer_id"], id.as_str(), "{ctx}");
        assert_eq!(got["model"], "telco", "{ctx}");
        assert_eq!(got["model_version"], resp["model"]["version"], "{ctx}");
        assert_eq!(got["prediction_id"], pid, "{ctx}");
        assert_eq!(got["request_id"], request_id.as_str(), "{ctx}");
        assert_eq!(got["source"], "http", "{ctx}");
        let p = f64_at(res, "churn_probability");
        assert_eq!(
            f64_at(&got, "churn_probability").to_bits(),
            p.to_bits(),
            "probability not bit-identical: {ctx}"
        );
        for k in [
            "probability_interval",
            "predicted_churn",
            "risk_band",
            "segment_id",
            "segment",
            "treatment",
            "customer_value",
        ] {
            assert_eq!(got[k], res[k], "{k} differs from the score response: {ctx}");
        }
        let value = f64_at(res, "customer_value");
        // money comes back in cents (the value too, so the product may be a cent off)
        assert!(
            (f64_at(&got, "expected_loss") - p * value).abs() <= 0.01 + 1e-9,
            "expected_loss is not probability × value ({p} × {value}): {ctx}"
        );
        let recs = res["recommendations"].as_array().unwrap();
        let top = recs.first().map_or(Value::Null, |r| r["action"].clone());
        assert_eq!(got["top_action"], top, "top_action: {ctx}");
        // how the action was chosen and its propensity are stored as answered
        for k in ["policy", "propensity"] {
            assert_eq!(got[k], res[k], "{k}: {ctx}");
        }
        let stored: Vec<(Value, u64)> = got["recommendations"]
            .as_array()
            .unwrap_or_else(|| panic!("no recommendations array: {ctx}"))
            .iter()
            .map(|r| (r["action"].clone(), f64_at(r, "expected_value").to_bits()))
            .collect();
        let scored: Vec<(Value, u64)> = recs
            .iter()
            .map(|r| (r["action"].clone(), f64_at(r, "expected_value").to_bits()))
            .collect();
        assert_eq!(stored, scored, "recommendations differ: {ctx}");
        assert_eq!(got["input"], *c, "input is not the raw fields: {ctx}");
        let scored_at = got["scored_at"].as_str().unwrap_or_default();
        let t = chrono::DateTime::parse_from_rfc3339(scored_at)
            .unwrap_or_else(|e| panic!("scored_at {scored_at:?} is not RFC 3339 ({e}): {ctx}"));
        assert_eq!(t.offset().local_minus_utc(), 0, "scored_at not UTC: {ctx}");
        assert!(
            (Utc::now() - t.with_timezone(&Utc)).num_seconds().abs() < 120,
            "scored_at is not now: {ctx}"
        );
        assert!(
            got["age_seconds"].as_f64().is_some_and(|a| a >= 0.0),
            "age_seconds: {ctx}"
        );
    }
    assert_eq!(pids.len(), 2, "two results, two prediction ids");

    // scoring again: the lookup returns the latest prediction
    let id = id_of(&customers[0]);
    let mut changed = customers[0].clone();
    changed["tenure"] = json!("60");
    let again = score_http(&s.addr, &[changed]);
    let new_pid = again["results"][0]["prediction_id"]
        .as_str()
        .unwrap()
        .to_string();
    let p_new = f64_at(&again["results"][0], "churn_probability");
    let latest = eventually("the lookup shows the newer prediction", WRITE_WAIT, || {
        let v = get(&s.addr, &format!("/v1/customers/{id}")).json();
        if v["prediction_id"] == new_pid.as_str() {
            Ok(v)
        } else {
            Err(v.to_string())
        }
    });
    assert_eq!(
        f64_at(&latest, "churn_probability").to_bits(),
        p_new.to_bits()
    );
    assert_eq!(latest["input"]["tenure"], "60");
    // explicit model
    let named = get(&s.addr, &format!("/v1/customers/{id}?model=telco"));
    assert_eq!(named.status, 200, "?model=telco: {}", named.body);
    assert_eq!(named.json()["prediction_id"], new_pid.as_str());

    let r = get(&s.addr, "/v1/customers/NEVER-SCORED");
    assert_eq!(r.status, 404, "unknown customer: {}", r.body);
    assert_eq!(r.json()["error"]["code"], "unknown_customer", "{}", r.body);
    let r = get(&s.addr, &format!("/v1/customers/{id}?model=nope"));
    assert_eq!(r.status, 404, "unknown model: {}", r.body);
    assert_eq!(r.json()["error"]["code"], "unknown_model", "{}", r.body);
}
both_backends!(
    score_then_lookup,
    score_then_lookup_sqlite,
    score_then_lookup_postgres
);

// ---------------------------------------------------------------- 2. outcomes round trip

/// Events of all five kinds are stored once per external id; a `churned` event takes the
/// customer off the worklist, a later `retained` puts them back.
fn outcomes_round_trip(url: &str) {
    let s = serve(url, &[], &[]);
    let customers = telco_customers(3);
    let resp = score_http(&s.addr, &customers);
    let [a, b, c] = [0, 1, 2].map(|i| id_of(&customers[i]));
    worklist_eventually(&s.addr, 3);
    let pid_a = resp["results"][0]["prediction_id"].clone();
    let plus2 = FixedOffset::east_opt(2 * 3600).unwrap();
    let events = vec![
        json!({"customer_id": a, "event": "action_taken", "at": at(-120), "action": "CONTRACT_UPGRADE",
               "cost": 12.5, "prediction_id": pid_a, "external_id": "rt-1"}),
        json!({"customer_id": b, "event": "purchase",
               "at": (Utc::now() - Days::minutes(60)).with_timezone(&plus2).to_rfc3339(),
               "amount": 49.9, "external_id": "rt-2"}),
        json!({"customer_id": c, "event": "survey",
               "at": (Utc::now() - Days::days(1)).format("%Y-%m-%d").to_string(),
               "score": 7, "external_id": "rt-3"}),
        json!({"customer_id": a, "event": "retained",
               "at": (Utc::now() - Days::minutes(30)).format("%Y-%m-%dT%H:%M:%S").to_string(),
               "external_id": "rt-4"}),
        json!({"customer_id": b, "event": "churned", "at": at(-10), "external_id": "rt-5"}),
        json!({"customer_id": 12345, "event": "retained", "at": at(-5), "cost": 0, "external_id": "rt-6"}),
    ];
    outcomes_ok(&s.addr, &events, 6, 0, "first post of six events");
    outcomes_ok(&s.addr, &events, 0, 6, "the same six events again");
    // a mixed batch: two known external ids and one new
    let mixed = vec![
        events[0].clone(),
        events[2].clone(),
        json!({"customer_id": c, "event": "purchase", "at": at(-1), "amount": -5.0, "external_id": "rt-7"}),
    ];
    outcomes_ok(&s.addr, &mixed, 1, 2, "two known events and one new");
    // without external_id nothing is deduplicated
    let anon = [json!({"customer_id": c, "event": "survey", "at": at(-2), "score": 0})];
    outcomes_ok(&s.addr, &anon, 1, 0, "an event without external_id");
    outcomes_ok(
        &s.addr,
        &anon,
        1,
        0,
        "the same event without external_id again",
    );

    // the churned customer left the worklist; the others are still there
    let (rows, _) = worklist(&s.addr, &[]);
    let ids: BTreeSet<String> = ids_of(&rows).into_iter().collect();
    assert_eq!(
        ids,
        BTreeSet::from([a.clone(), c.clone()]),
        "after 'churned' for {b} the worklist holds the other two"
    );
    // a later outcome that is not `churned` makes it the latest event again
    outcomes_ok(
        &s.addr,
        &[json!({"customer_id": b, "event": "retained", "at": at(-1), "external_id": "rt-8"})],
        1,
        0,
        "retained after churned",
    );
    let (rows, _) = worklist(&s.addr, &[]);
    assert_eq!(
        ids_of(&rows).len(),
        3,
        "{b}'s latest event is 'retained', so it is back on the worklist: {rows:?}"
    );
}
both_backends!(
    outcomes_round_trip,
    outcomes_round_trip_sqlite,
    outcomes_round_trip_postgres
);

// ---------------------------------------------------------------- 3. all or nothing

/// One invalid event rejects the whole batch: nothing of it is written.
fn outcomes_all_or_nothing(url: &str) {
    let s = serve(url, &[], &[]);
    let customers = telco_customers(1);
    score_http(&s.addr, &customers);
    let x = id_of(&customers[0]);
    worklist_eventually(&s.addr, 1);

    let good0 = json!({"customer_id": x, "event": "churned", "at": at(-3), "external_id": "aon-0"});
    let bad1 = json!({"customer_id": x, "event": "retained", "at": "last tuesday", "external_id": "aon-1"});
    let good2 = json!({"customer_id": "other", "event": "purchase", "at": at(-2), "amount": 10, "external_id": "aon-2"});
    let r = post_outcomes(&s.addr, &[good0.clone(), bad1, good2.clone()]);
    assert_eq!(r.status, 422, "batch with an unparseable 'at': {}", r.body);
    let e = r.json();
    assert_eq!(e["error"]["code"], "invalid_value", "{e}");
    assert_eq!(e["error"]["field"], "outcomes[1].at", "{e}");
    // the churned event before the bad one was not written: the customer is still listed
    let (rows, _) = worklist(&s.addr, &[]);
    assert_eq!(
        ids_of(&rows),
        vec![x.clone()],
        "a rejected batch wrote its 'churned' event"
    );

    // the bad event last this time (the survey is older than the churned event above, so
    // `churned` stays the latest event of x once both are stored)
    let good3 = json!({"customer_id": x, "event": "survey", "at": at(-5), "score": 10, "external_id": "aon-3"});
    let bad4 = json!({"customer_id": x, "event": "survey", "at": at(-1), "score": 11, "external_id": "aon-4"});
    let r = post_outcomes(&s.addr, &[good3.clone(), bad4]);
    assert_eq!(r.status, 422, "batch with score 11: {}", r.body);
    assert_eq!(
        r.json()["error"]["field"],
        "outcomes[1].score",
        "{}",
        r.body
    );

    outcomes_ok(
        &s.addr,
        &[good0, good2, good3],
        3,
        0,
        "the valid events of the rejected batches, posted alone",
    );
    let (rows, _) = worklist(&s.addr, &[]);
    assert!(rows.is_empty(), "now {x} churned: {rows:?}");
}
both_backends!(
    outcomes_all_or_nothing,
    outcomes_all_or_nothing_sqlite,
    outcomes_all_or_nothing_postgres
);

// ---------------------------------------------------------------- 4. worklist

/// The worklist orders by expected loss, pages with cursors over every customer exactly once,
/// filters by risk band / treatment / segment and leaves out churned customers.
fn worklist_pages_filters_and_exclusions(url: &str) {
    let s = serve(url, &[], &[]);
    let n = 20;
    let customers = telco_customers(n);
    let resp = score_http(&s.addr, &customers);
    let scored: BTreeMap<String, &Value> = customers
        .iter()
        .zip(resp["results"].as_array().unwrap())
        .map(|(c, r)| (id_of(c), r))
        .collect();
    worklist_eventually(&s.addr, n);

    let first = get(&s.addr, "/v1/customers?limit=5");
    assert_eq!(first.status, 200, "{}", first.body);
    let first = first.json();
    assert_eq!(
        first["customers"].as_array().map(Vec::len),
        Some(5),
        "limit=5: {first}"
    );
    assert!(
        first["next_cursor"].is_string(),
        "next_cursor after the first of four pages: {first}"
    );

    let (rows, pages) = worklist(&s.addr, &[("limit", "5")]);
    assert!(
        (4..=5).contains(&pages),
        "{pages} pages of 5 for 20 customers"
    );
    let ids = ids_of(&rows);
    let unique: BTreeSet<&String> = ids.iter().collect();
    assert_eq!(unique.len(), ids.len(), "a customer on two pages: {ids:?}");
    assert_eq!(
        unique.into_iter().cloned().collect::<Vec<_>>(),
        scored.keys().cloned().collect::<Vec<_>>(),
        "the pages cover every scored customer"
    );
    let losses: Vec<f64> = rows.iter().map(|r| f64_at(r, "expected_loss")).collect();
    assert!(
        losses.windows(2).all(|w| w[0] >= w[1]),
        "not ordered by expected_loss descending: {losses:?}"
    );
    for row in &rows {
        let id = row["customer_id"].as_str().unwrap();
        let res = scored[id];
        let ctx = format!("worklist row {row} for result {res}");
        assert!(
            row["customer_key"].as_str().is_some_and(|k| !k.is_empty()),
            "{ctx}"
        );
        assert_eq!(row["prediction_id"], res["prediction_id"], "{ctx}");
        assert_eq!(
            f64_at(row, "churn_probability").to_bits(),
            f64_at(res, "churn_probability").to_bits(),
            "{ctx}"
        );
        for k in ["risk_band", "segment", "treatment"] {
            assert_eq!(row[k], res[k], "{k}: {ctx}");
        }
        assert!(
            (f64_at(row, "expected_loss")
                - f64_at(res, "churn_probability") * f64_at(res, "customer_value"))
            .abs()
                <= 0.01 + 1e-9,
            "expected_loss (in cents): {ctx}"
        );
        let top = res["recommendations"][0]["action"].clone();
        assert_eq!(row["top_action"], top, "top_action: {ctx}");
        assert!(row["scored_at"].is_string(), "{ctx}");
    }

    // by incremental value: what a contact gains first, each row the contact's expected net
    // value (its first recommendation's; 0 without a contact), in pages that keep the order
    let (by_value, _) = worklist(&s.addr, &[("order", "incremental_value"), ("limit", "3")]);
    assert_eq!(by_value.len(), n, "{by_value:?}");
    let values: Vec<f64> = by_value
        .iter()
        .map(|r| f64_at(r, "incremental_value"))
        .collect();
    assert!(
        values.windows(2).all(|w| w[0] >= w[1]),
        "not ordered by incremental_value descending: {values:?}"
    );
    for row in &by_value {
        let res = scored[row["customer_id"].as_str().unwrap()];
        let expected = if res["contact"] == true {
            f64_at(&res["recommendations"][0], "expected_value")
        } else {
            0.0
        };
        assert!(
            close(f64_at(row, "incremental_value"), expected),
            "incremental_value of {row} for {res}"
        );
    }
    assert!(values[0] > 0.0 && values[n - 1] == 0.0, "{values:?}");
    // a cursor of one order is refused under the other
    let page = get(&s.addr, "/v1/customers?limit=2").json();
    let cursor = page["next_cursor"].as_str().unwrap();
    let r = get(
        &s.addr,
        &format!(
            "/v1/customers?order=incremental_value&cursor={}",
            enc(cursor)
        ),
    );
    assert_eq!(r.status, 422, "{}", r.body);
    assert_eq!(r.json()["error"]["field"], "cursor", "{}", r.body);

    // filters return exactly the matching customers
    let expect = |key: &str, value: &str| -> BTreeSet<String> {
        scored
            .iter()
            .filter(|(_, r)| r[key] == value)
            .map(|(id, _)| id.clone())
            .collect()
    };
    let seg = scored.values().next().unwrap()["segment"]
        .as_str()
        .unwrap()
        .to_string();
    for (key, value) in [
        ("risk_band", "high"),
        ("risk_band", "medium"),
        ("risk_band", "low"),
        ("treatment", "control"),
        ("treatment", "treatment"),
        ("segment", seg.as_str()),
    ] {
        let (rows, _) = worklist(&s.addr, &[(key, value), ("limit", "3")]);
        assert!(
            rows.iter().all(|r| r[key] == value),
            "{key}={value} returned others: {rows:?}"
        );
        let got: BTreeSet<String> = ids_of(&rows).into_iter().collect();
        assert_eq!(got, expect(key, value), "{key}={value}");
    }
    assert!(
        !expect("risk_band", "high").is_empty(),
        "the sample should have a high-risk customer among the first 20"
    );

    // the top customer churns: off the worklist
    let top = ids[0].clone();
    outcomes_ok(
        &s.addr,
        &[json!({"customer_id": top, "event": "churned", "at": at(-1)})],
        1,
        0,
        "churned for the top customer",
    );
    let (rows, _) = worklist(&s.addr, &[("limit", "7")]);
    let after = ids_of(&rows);
    assert_eq!(after.len(), n - 1, "{after:?}");
    assert!(!after.contains(&top), "churned {top} still on the worklist");
    assert_eq!(after, ids[1..].to_vec(), "the rest keep their order");
}
both_backends!(
    worklist_pages_filters_and_exclusions,
    worklist_sqlite,
    worklist_postgres
);

// ---------------------------------------------------------------- 5. bad input

/// One bad-input case: the response and what it must be.
struct Case {
    name: &'static str,
    resp: Resp,
    /// Allowed statuses (the first one where the spec fixes it).
    status: &'static [u16],
    /// Allowed error codes.
    codes: &'static [&'static str],
    /// The error's `field`, where the spec names it.
    field: Option<&'static str>,
}

/// What is wrong with the response of `c`, if anything.
fn case_problem(c: &Case) -> Option<String> {
    if c.resp.status >= 500 || c.resp.status == 0 {
        return Some("a server error".into());
    }
    if !c.status.contains(&c.resp.status) {
        return Some(format!("status {} not in {:?}", c.resp.status, c.status));
    }
    let Ok(v) = serde_json::from_str::<Value>(&c.resp.body) else {
        return Some("body is not JSON".into());
    };
    let e = &v["error"];
    if !e["code"].as_str().is_some_and(|k| c.codes.contains(&k)) {
        return Some(format!("code {} not in {:?}", e["code"], c.codes));
    }
    if e["message"].as_str().is_none_or(str::is_empty) {
        return Some("no message".into());
    }
    match c.field {
        Some(f) if e["field"] != f => Some(format!("field is not {f}")),
        _ => None,
    }
}

/// Bad input to the store routes gets a JSON error with the code (and field), never a 500.
#[test]
fn bad_store_input_gets_json_errors_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("store.db").display());
    let s = serve(&url, &["--max-batch", "10"], &[]);
    let addr = s.addr.as_str();
    let customers = telco_customers(1);
    score_http(addr, &customers);
    let known = id_of(&customers[0]);
    lookup_eventually(addr, &known);

    let ev = |fields: Value| {
        let mut e = json!({"customer_id": "C-1", "event": "retained", "at": at(-1)});
        for (k, v) in fields.as_object().unwrap() {
            e[k] = v.clone();
        }
        e
    };
    let without = |field: &str, base: Value| {
        let mut e = base;
        e.as_object_mut().unwrap().remove(field);
        e
    };
    let one = |e: Value| post_outcomes(addr, &[e]);
    let raw = |path: &str, ct: &str, body: &str| {
        http(addr, "POST", path, &[("Content-Type", ct)], body.as_bytes())
    };
    const TYPE: &[&str] = &["invalid_type", "invalid_value"];
    const VALUE: &[&str] = &["invalid_value"];
    const MISSING: &[&str] = &["missing_field"];
    const NOT_FOUND_OR_BAD: &[u16] = &[404, 422];
    const ID_CODES: &[&str] = &["unknown_customer", "invalid_value", "not_found"];
    let long_id = "x".repeat(2000);
    fn case(
        name: &'static str,
        resp: Resp,
        status: &'static [u16],
        codes: &'static [&'static str],
        field: Option<&'static str>,
    ) -> Case {
        Case {
            name,
            resp,
            status,
            codes,
            field,
        }
    }
    let cases = vec![
        case(
            "customer_id as object",
            one(ev(json!({"customer_id": {"id": 1}}))),
            &[422],
            TYPE,
            Some("outcomes[0].customer_id"),
        ),
        case(
            "customer_id as bool",
            one(ev(json!({"customer_id": true}))),
            &[422],
            TYPE,
            Some("outcomes[0].customer_id"),
        ),
        case(
            "customer_id empty",
            one(ev(json!({"customer_id": ""}))),
            &[422],
            VALUE,
            Some("outcomes[0].customer_id"),
        ),
        case(
            "customer_id of 257 chars",
            one(ev(json!({"customer_id": "c".repeat(257)}))),
            &[422],
            VALUE,
            Some("outcomes[0].customer_id"),
        ),
        case(
            "cost as text",
            one(ev(json!({"cost": "cheap"}))),
            &[422],
            TYPE,
            Some("outcomes[0].cost"),
        ),
        case(
            "cost negative",
            one(ev(json!({"cost": -1.0}))),
            &[422],
            VALUE,
            Some("outcomes[0].cost"),
        ),
        case(
            "score 11",
            one(ev(json!({"event": "survey", "score": 11}))),
            &[422],
            VALUE,
            Some("outcomes[0].score"),
        ),
        case(
            "score 2.5",
            one(ev(json!({"event": "survey", "score": 2.5}))),
            &[422],
            TYPE,
            Some("outcomes[0].score"),
        ),
        case(
            "score -1",
            one(ev(json!({"event": "survey", "score": -1}))),
            &[422],
            VALUE,
            Some("outcomes[0].score"),
        ),
        case(
            "unknown event",
            one(ev(json!({"event": "cancelled"}))),
            &[422],
            VALUE,
            Some("outcomes[0].event"),
        ),
        case(
            "event as number",
            one(ev(json!({"event": 3}))),
            &[422],
            TYPE,
            Some("outcomes[0].event"),
        ),
        case(
            "unknown action id",
            one(ev(json!({"event": "action_taken", "action": "FREE_PONY"}))),
            &[422],
            VALUE,
            Some("outcomes[0].action"),
        ),
        case(
            "action_taken without action",
            one(ev(json!({"event": "action_taken"}))),
            &[422],
            MISSING,
            Some("outcomes[0].action"),
        ),
        case(
            "purchase without amount",
            one(ev(json!({"event": "purchase"}))),
            &[422],
            MISSING,
            Some("outcomes[0].amount"),
        ),
        case(
            "amount as text",
            one(ev(json!({"event": "purchase", "amount": "lots"}))),
            &[422],
            TYPE,
            Some("outcomes[0].amount"),
        ),
        case(
            "survey without score",
            one(ev(json!({"event": "survey"}))),
            &[422],
            MISSING,
            Some("outcomes[0].score"),
        ),
        case(
            "timestamp a day ahead",
            one(ev(json!({"at": at(24 * 60)}))),
            &[422],
            VALUE,
            Some("outcomes[0].at"),
        ),
        case(
            "unparseable timestamp",
            one(ev(json!({"at": "31/12/2025 10:00"}))),
            &[422],
            VALUE,
            Some("outcomes[0].at"),
        ),
        case(
            "impossible date",
            one(ev(json!({"at": "2025-02-30"}))),
            &[422],
            VALUE,
            Some("outcomes[0].at"),
        ),
        case(
            "timestamp as number",
            one(ev(json!({"at": 1_700_000_000}))),
            &[422],
            TYPE,
            Some("outcomes[0].at"),
        ),
        case(
            "missing customer_id",
            one(without("customer_id", ev(json!({})))),
            &[422],
            MISSING,
            Some("outcomes[0].customer_id"),
        ),
        case(
            "missing event",
            one(without("event", ev(json!({})))),
            &[422],
            MISSING,
            Some("outcomes[0].event"),
        ),
        case(
            "missing at",
            one(without("at", ev(json!({})))),
            &[422],
            MISSING,
            Some("outcomes[0].at"),
        ),
        case(
            "unknown field",
            one(ev(json!({"colour": "red"}))),
            &[422],
            &["unknown_field"],
            Some("outcomes[0].colour"),
        ),
        case(
            "external_id of 201 chars",
            one(ev(json!({"external_id": "e".repeat(201)}))),
            &[422],
            VALUE,
            Some("outcomes[0].external_id"),
        ),
        case(
            "prediction_id as number",
            one(ev(json!({"prediction_id": 7}))),
            &[422],
            TYPE,
            Some("outcomes[0].prediction_id"),
        ),
        case(
            "second event invalid",
            post_outcomes(addr, &[ev(json!({})), ev(json!({"event": "left"}))]),
            &[422],
            VALUE,
            Some("outcomes[1].event"),
        ),
        case(
            "event is a string",
            post(addr, "/v1/outcomes", &json!({"outcomes": ["churned"]})),
            &[422],
            &["invalid_request", "invalid_type"],
            None,
        ),
        case(
            "empty batch",
            post_outcomes(addr, &[]),
            &[422],
            &["empty_batch"],
            None,
        ),
        case(
            "batch over --max-batch",
            post_outcomes(addr, &vec![ev(json!({})); 11]),
            &[413],
            &["batch_too_large"],
            None,
        ),
        case(
            "text/plain",
            raw("/v1/outcomes", "text/plain", "{\"outcomes\":[]}"),
            &[415],
            &["unsupported_media_type"],
            None,
        ),
        case(
            "malformed JSON",
            raw("/v1/outcomes", "application/json", "{\"outcomes\": [{"),
            &[400],
            &["malformed_json"],
            None,
        ),
        case(
            "body is an array",
            post(addr, "/v1/outcomes", &json!([ev(json!({}))])),
            &[422],
            &["invalid_request"],
            Some("outcomes"),
        ),
        case(
            "outcomes is an object",
            post(addr, "/v1/outcomes", &json!({"outcomes": {"a": 1}})),
            &[422],
            &["invalid_request"],
            Some("outcomes"),
        ),
        case(
            "no outcomes key",
            post(addr, "/v1/outcomes", &json!({"events": [ev(json!({}))]})),
            &[422],
            &["invalid_request"],
            Some("outcomes"),
        ),
        case(
            "GET on outcomes",
            get(addr, "/v1/outcomes"),
            &[405],
            &["method_not_allowed"],
            None,
        ),
        case(
            "lookup of an unknown id",
            get(addr, "/v1/customers/NOPE-0000"),
            &[404],
            &["unknown_customer"],
            None,
        ),
        case(
            "lookup with %00",
            get(addr, "/v1/customers/a%00b"),
            NOT_FOUND_OR_BAD,
            ID_CODES,
            None,
        ),
        case(
            "lookup with %2F",
            get(addr, "/v1/customers/a%2Fb"),
            NOT_FOUND_OR_BAD,
            ID_CODES,
            None,
        ),
        case(
            "lookup with %FF",
            get(addr, "/v1/customers/%FF%FE"),
            NOT_FOUND_OR_BAD,
            ID_CODES,
            None,
        ),
        case(
            "lookup of a 2000-char id",
            get(addr, &format!("/v1/customers/{long_id}")),
            NOT_FOUND_OR_BAD,
            ID_CODES,
            None,
        ),
        case(
            "lookup with unknown model",
            get(addr, &format!("/v1/customers/{known}?model=unknown")),
            &[404],
            &["unknown_model"],
            None,
        ),
        case(
            "worklist limit=0",
            get(addr, "/v1/customers?limit=0"),
            &[422],
            VALUE,
            Some("limit"),
        ),
        case(
            "worklist limit=abc",
            get(addr, "/v1/customers?limit=abc"),
            &[422],
            VALUE,
            Some("limit"),
        ),
        case(
            "worklist limit=1001",
            get(addr, "/v1/customers?limit=1001"),
            &[422],
            VALUE,
            Some("limit"),
        ),
        case(
            "worklist limit=-1",
            get(addr, "/v1/customers?limit=-1"),
            &[422],
            VALUE,
            Some("limit"),
        ),
        case(
            "worklist risk_band=extreme",
            get(addr, "/v1/customers?risk_band=extreme"),
            &[422],
            VALUE,
            Some("risk_band"),
        ),
        case(
            "worklist treatment=maybe",
            get(addr, "/v1/customers?treatment=maybe"),
            &[422],
            VALUE,
            Some("treatment"),
        ),
        case(
            "worklist order unknown",
            get(addr, "/v1/customers?order=profit"),
            &[422],
            VALUE,
            Some("order"),
        ),
        case(
            "worklist cursor=garbage",
            get(addr, "/v1/customers?cursor=garbage"),
            &[422],
            VALUE,
            Some("cursor"),
        ),
        case(
            "worklist cursor=%00",
            get(addr, "/v1/customers?cursor=%00%FF"),
            &[422],
            VALUE,
            Some("cursor"),
        ),
        case(
            "worklist with unknown model",
            get(addr, "/v1/customers?model=unknown"),
            &[404],
            &["unknown_model"],
            None,
        ),
    ];
    assert!(cases.len() >= 20);
    let failures: Vec<String> = cases
        .iter()
        .filter_map(|c| {
            case_problem(c).map(|p| format!("{}: {p}: {} {}", c.name, c.resp.status, c.resp.body))
        })
        .collect();
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
    // the server is still healthy, never answered 500, and the bad batches wrote nothing
    assert_eq!(get(addr, "/healthz").status, 200);
    let m = get(addr, "/metrics").body;
    assert!(!m.contains("status=\"500\""), "a 500 was counted: {m}");
    let (rows, _) = worklist(addr, &[]);
    assert_eq!(ids_of(&rows), vec![known], "worklist after the bad input");
}

/// With `--store none` scoring carries no ids and the store routes answer 503 store_disabled.
#[test]
fn store_none_disables_the_store_routes() {
    let s = start(trained(), &["--store", "none"], &[]);
    let customers = telco_customers(1);
    let resp = score_http(&s.addr, &customers);
    assert!(
        resp.get("request_id").is_none(),
        "request_id without a store: {resp}"
    );
    assert!(
        resp["results"][0].get("prediction_id").is_none(),
        "prediction_id without a store: {resp}"
    );
    let id = id_of(&customers[0]);
    let event = json!({"customer_id": id, "event": "churned", "at": at(-1)});
    for (what, r) in [
        ("outcomes", post_outcomes(&s.addr, &[event])),
        ("lookup", get(&s.addr, &format!("/v1/customers/{id}"))),
        ("worklist", get(&s.addr, "/v1/customers")),
    ] {
        assert_eq!(r.status, 503, "{what} with --store none: {}", r.body);
        assert_eq!(
            r.json()["error"]["code"],
            "store_disabled",
            "{what}: {}",
            r.body
        );
    }
    let ready = get(&s.addr, "/readyz");
    assert_eq!(ready.status, 200);
    assert_eq!(
        ready.json()["store"]["status"],
        "disabled",
        "{}",
        ready.body
    );
}

// ---------------------------------------------------------------- 6. outage

/// The database goes away under a running server: scoring keeps answering, the failure shows
/// in /metrics and /readyz (still 200) reports the store degraded.
#[test]
fn outage_keeps_scoring_postgres() {
    let Some(db) = PgDb::create("outage") else {
        return;
    };
    let s = serve(&db.url(), &[], &[]);
    let customers = telco_customers(3);
    score_http(&s.addr, &customers[..1]);
    lookup_eventually(&s.addr, &id_of(&customers[0]));
    let ready = get(&s.addr, "/readyz");
    assert_eq!(ready.status, 200);
    assert_eq!(ready.json()["store"]["status"], "ok", "{}", ready.body);
    let m = get(&s.addr, "/metrics").body;
    assert_eq!(
        metric(&m, "churn_store_up"),
        Some(1.0),
        "store up before the outage:\n{m}"
    );
    assert!(
        metric(&m, "churn_store_written_total").is_some_and(|w| w >= 1.0),
        "churn_store_written_total after one record:\n{m}"
    );

    db.drop_database()
        .unwrap_or_else(|e| panic!("dropping {}: {e}", db.name));
    scoring_goes_on_while_the_store_is_down(&s, &customers[1..]);
}

/// During an outage: scoring `customers` still answers 200 without waiting for the database,
/// `/readyz` stays 200 with the store "degraded" and what is wrong (never the database's own
/// message), and the metrics count the failure.
fn scoring_goes_on_while_the_store_is_down(s: &Server, customers: &[Value]) {
    let mut last = String::new();
    let degraded = eventually(
        "store failure visible in /metrics and /readyz",
        Duration::from_secs(30),
        || {
            let started = Instant::now();
            let r = post(&s.addr, "/v1/score", &json!({"customers": customers}));
            if r.status != 200 {
                panic!(
                    "scoring during the outage answered {}: {}",
                    r.status, r.body
                );
            }
            assert!(
                started.elapsed() < Duration::from_secs(5),
                "scoring waited {:?} for the database",
                started.elapsed()
            );
            let m = get(&s.addr, "/metrics").body;
            let failed = metric(&m, "churn_store_failed_total").unwrap_or(0.0);
            let up = metric(&m, "churn_store_up");
            let ready = get(&s.addr, "/readyz");
            if ready.status != 200 {
                panic!(
                    "/readyz answered {} during the outage: {}",
                    ready.status, ready.body
                );
            }
            last = format!("failed_total {failed}, up {up:?}, readyz {}", ready.body);
            let v = ready.json();
            if (failed > 0.0 || up == Some(0.0)) && v["store"]["status"] == "degraded" {
                Ok(v)
            } else {
                Err(last.clone())
            }
        },
    );
    // what is wrong, in the server's own words: the database's message stays in the log
    assert!(
        degraded["store"]["problem"]
            .as_str()
            .is_some_and(|e| !e.is_empty()),
        "degraded store without a problem text: {degraded} ({last})"
    );
    assert!(
        degraded["store"].get("error").is_none(),
        "database text reached /readyz: {degraded}"
    );
    assert_eq!(get(&s.addr, "/healthz").status, 200);
}

/// SQLite: another process holds the database's write lock, so every insert waits out the busy
/// timeout and fails; scoring goes on and the failure shows.
#[test]
fn outage_keeps_scoring_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("store.db");
    let s = serve(&format!("sqlite://{}", db.display()), &[], &[]);
    let customers = telco_customers(3);
    score_http(&s.addr, &customers[..1]);
    lookup_eventually(&s.addr, &id_of(&customers[0]));
    assert_eq!(get(&s.addr, "/readyz").json()["store"]["status"], "ok");
    let mut locker = Command::new("python3")
        .args([
            "-c",
            "import sqlite3, sys, time\n\
             c = sqlite3.connect(sys.argv[1], isolation_level=None)\n\
             c.execute('BEGIN EXCLUSIVE')\n\
             print('locked', flush=True)\n\
             time.sleep(60)",
        ])
        .arg(&db)
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3 runs");
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(locker.stdout.take().unwrap()),
        &mut line,
    )
    .unwrap();
    assert_eq!(line.trim(), "locked");
    scoring_goes_on_while_the_store_is_down(&s, &customers[1..]);
    let _ = locker.kill();
    let _ = locker.wait();
}

/// Start `churn-serve` with `store`; it must exit 2 within 30 s, naming `expect` on stderr.
fn fails_fast(store: &str, expect: &str) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_churn-serve"))
        .args(["--models", trained().to_str().unwrap()])
        .args(["--bind", "127.0.0.1:0", "--store", store])
        .env_remove("CHURN_STORE")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let status = wait_exit(
        &mut child,
        Duration::from_secs(30),
        "server with an unusable store",
    );
    let mut err = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
    assert_eq!(
        status.code(),
        Some(2),
        "exit code with store {store}: {err}"
    );
    assert!(
        err.contains(expect),
        "the message should name {expect}: {err}"
    );
}

#[test]
fn unusable_store_fails_fast_sqlite() {
    fails_fast("sqlite:///proc/nope/store.db", "/proc/nope/store.db");
}

#[test]
fn unusable_store_fails_fast_postgres() {
    let name = format!("churn_t_missing_{}", std::process::id());
    fails_fast(&format!("postgres://postgres@127.0.0.1:5432/{name}"), &name);
}

// ---------------------------------------------------------------- 7. SIGTERM

/// Records still queued at SIGTERM are written before the process exits.
fn sigterm_flushes_the_queue(url: &str) {
    let mut s = serve(url, &["--max-batch", "1000"], &[]);
    let customers = telco_customers(500);
    for chunk in customers.chunks(100) {
        score_http(&s.addr, chunk);
    }
    signal(&s.child, "TERM");
    let status = wait_exit(
        &mut s.child,
        Duration::from_secs(30),
        "churn-serve after SIGTERM",
    );
    assert!(status.success(), "graceful shutdown exits 0, got {status}");
    let (code, _, err) = run(
        "churn-train",
        &["store", "prune", "--store", url, "--older-than", "0"],
    );
    assert_eq!(code, 0, "prune: {err}");
    assert!(
        err.contains("deleted 500 predictions"),
        "all 500 records written before exit: {err}"
    );
    let (code, _, err) = run(
        "churn-train",
        &["store", "prune", "--store", url, "--older-than", "0"],
    );
    assert_eq!(code, 0, "second prune: {err}");
    assert!(err.contains("deleted 0 predictions"), "second prune: {err}");
}
both_backends!(
    sigterm_flushes_the_queue,
    sigterm_flushes_the_queue_sqlite,
    sigterm_flushes_the_queue_postgres
);

/// `prune --older-than DAYS` keeps recent predictions.
fn prune_keeps_recent_predictions(url: &str) {
    let s = serve(url, &[], &[]);
    let customers = telco_customers(2);
    score_http(&s.addr, &customers);
    lookup_eventually(&s.addr, &id_of(&customers[1]));
    let (code, _, err) = run(
        "churn-train",
        &["store", "prune", "--store", url, "--older-than", "1"],
    );
    assert_eq!(code, 0, "prune: {err}");
    assert!(
        err.contains("deleted 0 predictions"),
        "today's predictions are kept: {err}"
    );
    assert_eq!(
        get(&s.addr, &format!("/v1/customers/{}", id_of(&customers[0]))).status,
        200
    );
}
both_backends!(
    prune_keeps_recent_predictions,
    prune_keeps_recent_sqlite,
    prune_keeps_recent_postgres
);

// ---------------------------------------------------------------- 8. churn-score --store

/// Batch scoring logs every row (source "batch") with the probability it wrote to its output.
fn batch_scores_are_stored(url: &str) {
    let dir = tempfile::tempdir().unwrap();
    // Parquet keeps every bit of the f64
    let out = dir.path().join("scored.parquet");
    let (code, _, err) = score(
        &trained().join("telco"),
        &telco(),
        &out,
        &["--store", url, "--quiet"],
    );
    assert_eq!(code, 0, "churn-score --store: {err}");
    let table = churn::io::read_table(&out, None).unwrap();
    let ids = table.column("customerID").expect("id column in the output");
    let row = (0..table.nrows)
        .find(|&r| ids.data.get(r).to_text().as_deref() == Some("7590-VHVEG"))
        .expect("7590-VHVEG in the output");
    let churn::io::RawValue::Number(p) = table.column("churn_probability").unwrap().data.get(row)
    else {
        panic!("churn_probability is not a number")
    };

    let s = serve(url, &[], &[]);
    let r = get(&s.addr, "/v1/customers/7590-VHVEG");
    assert_eq!(r.status, 200, "batch-scored customer: {}", r.body);
    let v = r.json();
    assert_eq!(v["source"], "batch", "{v}");
    assert_eq!(v["model"], "telco", "{v}");
    assert_eq!(
        f64_at(&v, "churn_probability").to_bits(),
        p.to_bits(),
        "stored {v} vs churn-score's {p}"
    );
    assert!(v["prediction_id"].as_str().is_some_and(is_uuid_v7), "{v}");
    // the whole file is on the worklist
    let (rows, _) = worklist(&s.addr, &[("limit", "1000"), ("risk_band", "high")]);
    assert!(
        !rows.is_empty(),
        "high-risk batch customers on the worklist"
    );

    // scored over HTTP afterwards: the lookup shows the newer, http record
    let first = telco_customers(1);
    let resp = score_http(&s.addr, &first);
    let pid = resp["results"][0]["prediction_id"].clone();
    let v = eventually("the http record replaces the batch one", WRITE_WAIT, || {
        let v = get(&s.addr, "/v1/customers/7590-VHVEG").json();
        if v["prediction_id"] == pid {
            Ok(v)
        } else {
            Err(v.to_string())
        }
    });
    assert_eq!(v["source"], "http", "{v}");
}
both_backends!(
    batch_scores_are_stored,
    batch_scores_are_stored_sqlite,
    batch_scores_are_stored_postgres
);

// ---------------------------------------------------------------- 9. churn-train outcomes

const OUTCOME_HEADER: &str = "customer_id,event,at,action,cost,amount,score,external_id";

/// `churn-train outcomes --store URL --input FILE extra...`.
fn import(url: &str, input: &std::path::Path, extra: &[&str]) -> (i32, String, String) {
    let mut args = vec![
        "outcomes",
        "--store",
        url,
        "--input",
        input.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    run("churn-train", &args)
}

/// Importing outcome files: all or nothing, duplicates by external id, --skip-invalid rejects.
fn outcomes_import(url: &str) {
    let dir = tempfile::tempdir().unwrap();
    let day = (Utc::now() - Days::days(2)).format("%Y-%m-%d").to_string();
    let rows = [
        format!("7590-VHVEG,action_taken,{day}T10:00:00Z,CONTRACT_UPGRADE,20,,,imp-1"),
        format!("5575-GNVDE,purchase,{day}T11:00:00Z,,,49.5,,imp-2"),
        format!("3668-QPYBK,survey,{day},,,,9,imp-3"),
        format!("7795-CFOCW,retained,{day}T12:00:00,,,,,imp-4"),
        format!("9237-HQITU,churned,{day}T13:00:00+02:00,,,,,imp-5"),
    ];
    let valid = write(
        dir.path(),
        "valid.csv",
        &format!("{OUTCOME_HEADER}\n{}\n", rows.join("\n")),
    );
    let (code, _, err) = import(url, &valid, &[]);
    assert_eq!(code, 0, "import of valid rows: {err}");
    assert!(err.contains("stored 5 outcomes (0 duplicates)"), "{err}");
    let (code, _, err) = import(url, &valid, &[]);
    assert_eq!(code, 0, "re-import: {err}");
    assert!(err.contains("stored 0 outcomes (5 duplicates)"), "{err}");

    // one bad row (data row 3: amount is text): exit 2, row and column named, nothing stored
    let good = [
        format!("A-1,retained,{day},,,,,bad-1"),
        format!("A-2,churned,{day},,,,,bad-2"),
        format!("A-4,survey,{day},,,,0,bad-4"),
    ];
    let bad_row = format!("A-3,purchase,{day},,,lots,,bad-3");
    let bad = write(
        dir.path(),
        "bad.csv",
        &format!(
            "{OUTCOME_HEADER}\n{}\n{}\n{bad_row}\n{}\n",
            good[0], good[1], good[2]
        ),
    );
    let (code, _, err) = import(url, &bad, &[]);
    assert_eq!(code, 2, "a bad row fails the import: {err}");
    assert!(
        err.contains("row 3") && err.contains("amount"),
        "the message names data row 3 and column amount: {err}"
    );
    let good_only = write(
        dir.path(),
        "good.csv",
        &format!("{OUTCOME_HEADER}\n{}\n", good.join("\n")),
    );
    let (code, _, err) = import(url, &good_only, &[]);
    assert_eq!(code, 0, "{err}");
    assert!(
        err.contains("stored 3 outcomes (0 duplicates)"),
        "the failed import wrote nothing: {err}"
    );

    // --skip-invalid: valid rows stored, the bad one in INPUT.rejects.csv
    let skip = write(
        dir.path(),
        "skip.csv",
        &format!(
            "{OUTCOME_HEADER}\nB-1,retained,{day},,,,,skip-1\nB-2,survey,{day},,,,11,skip-2\nB-3,churned,{day},,,,,skip-3\n"
        ),
    );
    let (code, _, err) = import(url, &skip, &["--skip-invalid"]);
    assert_eq!(code, 0, "--skip-invalid: {err}");
    assert!(err.contains("stored 2 outcomes (0 duplicates)"), "{err}");
    let rejects = dir.path().join("skip.rejects.csv");
    let text = std::fs::read_to_string(&rejects)
        .unwrap_or_else(|e| panic!("rejects file {}: {e}", rejects.display()));
    assert!(
        text.contains("skip-2") && !text.contains("skip-1") && !text.contains("skip-3"),
        "the rejects file holds the bad row only: {text}"
    );
    // --rejects names the file
    let other = dir.path().join("elsewhere.csv");
    let (code, _, err) = import(
        url,
        &skip,
        &["--skip-invalid", "--rejects", other.to_str().unwrap()],
    );
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("stored 0 outcomes (2 duplicates)"), "{err}");
    assert!(
        std::fs::read_to_string(&other).is_ok_and(|t| t.contains("skip-2")),
        "--rejects {}",
        other.display()
    );
}
both_backends!(
    outcomes_import,
    outcomes_import_sqlite,
    outcomes_import_postgres
);

// ---------------------------------------------------------------- 10. HMAC ids

/// HMAC-SHA256 of `id` keyed with `key`, lowercase hex.
fn hmac_hex(key: &str, id: &str) -> String {
    use hmac::Mac;
    let mut m = hmac::Hmac::<sha2::Sha256>::new_from_slice(key.as_bytes()).unwrap();
    m.update(id.as_bytes());
    m.finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// With CHURN_ID_KEY the store keys customers by HMAC: lookups by raw id still work, the
/// worklist shows keys only, and outcomes for a raw id reach the hashed customer.
fn hmac_customer_keys(url: &str) {
    let s = serve(url, &[], &[("CHURN_ID_KEY", "secret")]);
    let customers = telco_customers(3);
    let resp = score_http(&s.addr, &customers);
    for (c, res) in customers.iter().zip(resp["results"].as_array().unwrap()) {
        let got = lookup_eventually(&s.addr, &id_of(c));
        assert_eq!(
            got["customer_id"],
            id_of(c),
            "lookup echoes the requested id: {got}"
        );
        assert_eq!(got["prediction_id"], res["prediction_id"], "{got}");
    }
    let (rows, _) = worklist(&s.addr, &[]);
    assert_eq!(rows.len(), 3, "{rows:?}");
    let keys: BTreeSet<String> = rows
        .iter()
        .map(|r| {
            assert!(
                r.get("customer_id").is_none(),
                "raw id on the worklist: {r}"
            );
            let k = r["customer_key"].as_str().unwrap_or_default();
            assert!(is_hex(k, 64), "customer_key is not 64 hex chars: {r}");
            k.to_ascii_lowercase()
        })
        .collect();
    let expected: BTreeSet<String> = customers
        .iter()
        .map(|c| hmac_hex("secret", &id_of(c)))
        .collect();
    assert_eq!(keys, expected, "keys are HMAC-SHA256(CHURN_ID_KEY, id)");

    let gone = id_of(&customers[0]);
    outcomes_ok(
        &s.addr,
        &[json!({"customer_id": gone, "event": "churned", "at": at(-1)})],
        1,
        0,
        "churned by raw id",
    );
    let (rows, _) = worklist(&s.addr, &[]);
    let left: Vec<&str> = rows
        .iter()
        .filter_map(|r| r["customer_key"].as_str())
        .collect();
    assert_eq!(left.len(), 2, "{rows:?}");
    assert!(
        !left
            .iter()
            .any(|k| k.eq_ignore_ascii_case(&hmac_hex("secret", &gone))),
        "the churned customer (by raw id) is still listed: {rows:?}"
    );
}
both_backends!(
    hmac_customer_keys,
    hmac_customer_keys_sqlite,
    hmac_customer_keys_postgres
);

/// The whole content of the store as text (`sqlite3 .dump` / `pg_dump --data-only`), or None
/// when the client tool is not installed.
fn dump_store(url: &str) -> Option<String> {
    let mut cmd = if let Some(path) = url.strip_prefix("sqlite://") {
        let mut c = Command::new("sqlite3");
        c.args([path, ".dump"]);
        c
    } else {
        let db = url.rsplit('/').next().unwrap();
        let mut c = Command::new("pg_dump");
        c.args([
            "-h",
            "127.0.0.1",
            "-p",
            "5432",
            "-U",
            "postgres",
            "--data-only",
            db,
        ])
        .env("PGCONNECT_TIMEOUT", "5");
        c
    };
    let out = cmd.stdin(Stdio::null()).output().ok()?;
    assert!(
        out.status.success(),
        "dumping {url}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Some(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// With CHURN_ID_KEY no raw customer id reaches the database: not as a key, not in the
/// stored input fields, not in outcomes.
fn hmac_stores_no_raw_ids(url: &str) {
    let s = serve(url, &[], &[("CHURN_ID_KEY", "secret")]);
    let customers = telco_customers(2);
    score_http(&s.addr, &customers);
    for c in &customers {
        lookup_eventually(&s.addr, &id_of(c));
    }
    let id = id_of(&customers[0]);
    outcomes_ok(
        &s.addr,
        &[json!({"customer_id": id, "event": "retained", "at": at(-1)})],
        1,
        0,
        "an outcome by raw id",
    );
    let Some(dump) = dump_store(url) else {
        eprintln!("no sqlite3 / pg_dump: raw-id check skipped");
        return;
    };
    assert!(
        dump.contains(&hmac_hex("secret", &id)),
        "the dump does not show the keyed id, so it cannot be the store's content"
    );
    let leaks: Vec<&str> = dump
        .lines()
        .filter(|l| customers.iter().any(|c| l.contains(&id_of(c))))
        .collect();
    assert!(
        leaks.is_empty(),
        "raw customer ids stored although CHURN_ID_KEY is set:\n{}",
        leaks.join("\n")
    );
}
both_backends!(
    hmac_stores_no_raw_ids,
    hmac_stores_no_raw_ids_sqlite,
    hmac_stores_no_raw_ids_postgres
);

/// The README's main command serves without `--store`: predictions land in `MODELS/store.db`
/// and the lookup answers from it.
#[test]
fn the_default_store_is_sqlite_beside_the_models() {
    let models = models_copy(&format!("default-store-{}", std::process::id()));
    let _ = std::fs::remove_file(models.join("store.db"));
    let s = start(&models, &[], &[]);
    let customers = telco_customers(1);
    score_http(&s.addr, &customers);
    let found = lookup_eventually(&s.addr, &id_of(&customers[0]));
    assert_eq!(found["customer_id"], customers[0]["customerID"], "{found}");
    assert!(models.join("store.db").is_file());
}

/// `store prune` also deletes the outcomes of customers it leaves without a prediction and gives
/// the space back: before, outcomes were kept for ever and the SQLite file never shrank.
fn prune_takes_outcomes_and_space(url: &str) {
    // a campaign in January 2026: predictions and outcomes long before the cutoff
    simulate_into(url, 2000);
    let count = |table: &str| count_rows(url, table);
    assert_eq!(count("predictions"), 2000);
    assert!(count("outcomes") > 100, "the simulation reported outcomes");
    let file = url.strip_prefix("sqlite://").map(std::path::PathBuf::from);
    let size = |f: &std::path::Path| std::fs::metadata(f).unwrap().len();
    // the space the store takes: the database and its write-ahead log, which holds the rows
    // until a checkpoint moves them (on a busy machine the file alone can still be one page)
    let wal = |f: &std::path::Path| {
        let mut w = f.as_os_str().to_owned();
        w.push("-wal");
        std::fs::metadata(w).map_or(0, |m| m.len())
    };
    let before = file.as_deref().map(|f| size(f) + wal(f));
    let (code, _, err) = run(
        "churn-train",
        &["store", "prune", "--store", url, "--older-than", "30"],
    );
    assert_eq!(code, 0, "prune: {err}");
    assert!(err.contains("deleted 2000 predictions"), "{err}");
    assert_eq!(count("predictions"), 0);
    assert_eq!(
        count("outcomes"),
        0,
        "outcomes of pruned customers are gone"
    );
    assert_eq!(count("customer_last_outcome"), 0);
    if let (Some(f), Some(b)) = (file, before) {
        assert!(
            size(&f) * 2 < b,
            "the file shrank: {b} -> {} bytes",
            size(&f)
        );
    }
}
both_backends!(
    prune_takes_outcomes_and_space,
    prune_takes_outcomes_and_space_sqlite,
    prune_takes_outcomes_and_space_postgres
);
