//! Challengers in serving (issue 34, item 3): a shadow challenger scored beside every answer
//! and stored apart, never returned, its queue dropping and counting when full; a canary
//! challenger answering a stable share of customers, recorded with its version. On SQLite and
//! PostgreSQL.

use crate::registry::two_versions;
use crate::store::{on_postgres, on_sqlite};
use crate::util::{http, post, run, start, telco_customers};
use churn::scoring::Scorer;
use churn::server::challenger::in_canary;
use churn::store::{IdKey, Store, StoreUrl};
use serde_json::{json, Value};
use std::path::Path;
use std::time::{Duration, Instant};

/// Make `version` the `challenger` of `DIR/telco`.
fn alias_challenger(models: &Path, version: &str) {
    let (code, _, err) = run(
        "churn-train",
        &[
            "models",
            "--models",
            models.to_str().unwrap(),
            "alias",
            "telco",
            "challenger",
            version,
        ],
    );
    assert_eq!(code, 0, "{err}");
}

/// The probability `version` of `DIR/telco` gives `customer` (the library's scorer).
fn probability_of(models: &Path, version: &str, customer: &Value) -> f64 {
    let s = Scorer::new(churn::bundle::load(&models.join(format!("telco@{version}"))).unwrap());
    let x =
        churn::evaluate::drift::encode_stored(&s.bundle.encoder, &customer.to_string()).unwrap();
    s.bundle.model.predict(&x).probability
}

/// The value of the metric line starting with `name` (labels included), if present.
fn metric(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .find(|l| l.starts_with(name) && l[name.len()..].starts_with(' '))
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
}

/// Poll until `model`'s stored shadow answers reach `n` (or 20 s pass); returns them.
fn shadow_pairs(url: &str, n: usize) -> Vec<churn::store::ShadowPair> {
    let store = Store::open(&StoreUrl::parse(url).unwrap(), IdKey::new(None))
        .unwrap()
        .unwrap();
    let t = Instant::now();
    loop {
        let pairs = store
            .block_on(store.shadow_pairs("telco", 100_000))
            .unwrap();
        let paired = pairs.iter().all(|p| p.champion_version.is_some());
        if (pairs.len() >= n && paired) || t.elapsed() > Duration::from_secs(20) {
            return pairs;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn shadow_beside_the_champion(url: &str) {
    let (tmp, first, second) = two_versions();
    alias_challenger(tmp.path(), &second);
    let s = start(tmp.path(), &["--store", url, "--challenger", "shadow"], &[]);
    let customers = telco_customers(100);
    for chunk in customers.chunks(5) {
        let r = post(&s.addr, "/v1/score", &json!({"customers": chunk}));
        assert_eq!(r.status, 200, "{}", r.body);
        let body = r.json();
        // the champion answers; the shadow never shows
        assert_eq!(body["model"]["version"], first.as_str());
        for res in body["results"].as_array().unwrap() {
            assert!(res.get("model_version").is_none(), "{res}");
        }
    }
    // every customer's shadow answer is stored with the challenger's version, beside the
    // champion's record of the same request
    let pairs = shadow_pairs(url, 100);
    assert_eq!(pairs.len(), 100);
    let by_id: std::collections::HashMap<&str, &Value> = customers
        .iter()
        .map(|c| (c["customerID"].as_str().unwrap(), c))
        .collect();
    let mut differ = 0;
    for p in &pairs {
        assert_eq!(p.version, second);
        assert_eq!(p.champion_version.as_deref(), Some(first.as_str()), "{p:?}");
        let want = probability_of(tmp.path(), &second, by_id[p.customer_key.as_str()]);
        assert!(
            (p.probability - want).abs() < 1e-12,
            "{} vs {want}",
            p.probability
        );
        differ += usize::from(p.champion_probability != Some(p.probability));
    }
    assert!(differ > 0, "the two versions answer differently somewhere");
    let m = http(&s.addr, "GET", "/metrics", &[], b"").body;
    assert_eq!(metric(&m, "churn_shadow_scored_total"), Some(100.0), "{m}");
    assert_eq!(metric(&m, "churn_shadow_dropped_total"), Some(0.0), "{m}");
    let info =
        format!("churn_challenger_info{{mode=\"shadow\",model=\"telco\",version=\"{second}\"}}");
    assert_eq!(metric(&m, &info), Some(1.0), "{m}");
    let listed = http(&s.addr, "GET", "/v1/models/telco/versions", &[], b"").json();
    assert_eq!(listed["challenger"]["mode"], "shadow");
    assert_eq!(
        listed["shadow"],
        json!([{"version": second, "records": 100}])
    );
    drop(s);
    // the served predictions are the champion's alone
    let store = Store::open(&StoreUrl::parse(url).unwrap(), IdKey::new(None))
        .unwrap()
        .unwrap();
    let mut served = Vec::new();
    store
        .block_on(store.reader().predictions("telco", (None, None), &mut |p| {
            served.push(p.version.to_string())
        }))
        .unwrap();
    assert_eq!(served.len(), 100);
    assert!(served.iter().all(|v| *v == first), "{served:?}");

    // with hashed ids (CHURN_ID_KEY) the stored input holds no id: the shadow answers are
    // stored all the same, under the same keys as the champion's
    let s = start(
        tmp.path(),
        &["--store", url, "--challenger", "shadow"],
        &[("CHURN_ID_KEY", "a-secret-key")],
    );
    let hashed = telco_customers(110)[100..].to_vec();
    let r = post(&s.addr, "/v1/score", &json!({"customers": hashed}));
    assert_eq!(r.status, 200, "{}", r.body);
    let pairs = shadow_pairs(url, 110);
    assert_eq!(pairs.len(), 110, "{pairs:?}");
    assert!(pairs
        .iter()
        .all(|p| p.champion_version.as_deref() == Some(first.as_str())));
    drop(s);

    // a queue of 10 customers: requests of 20 never fit and are counted, requests of 5 do
    let s = start(
        tmp.path(),
        &[
            "--store",
            url,
            "--challenger",
            "shadow",
            "--shadow-queue",
            "10",
        ],
        &[],
    );
    for chunk in customers.chunks(20) {
        assert_eq!(
            post(&s.addr, "/v1/score", &json!({"customers": chunk})).status,
            200
        );
    }
    for chunk in customers[..50].chunks(5) {
        assert_eq!(
            post(&s.addr, "/v1/score", &json!({"customers": chunk})).status,
            200
        );
    }
    let pairs = shadow_pairs(url, 160);
    let m = http(&s.addr, "GET", "/metrics", &[], b"").body;
    let (scored, dropped) = (
        metric(&m, "churn_shadow_scored_total").unwrap(),
        metric(&m, "churn_shadow_dropped_total").unwrap(),
    );
    assert!(dropped >= 100.0, "{m}");
    assert_eq!(scored + dropped, 150.0, "{m}");
    assert_eq!(
        pairs.len(),
        110 + scored as usize,
        "what was not dropped is stored"
    );
}

#[test]
fn shadow_challenger_sqlite() {
    on_sqlite(shadow_beside_the_champion)
}

#[test]
fn shadow_challenger_postgres() {
    on_postgres("shadow_challenger", shadow_beside_the_champion)
}

fn canary_share(url: &str) {
    let (tmp, first, second) = two_versions();
    alias_challenger(tmp.path(), &second);
    let s = start(
        tmp.path(),
        &["--store", url, "--challenger", "canary:0.3"],
        &[],
    );
    let customers = telco_customers(300);
    let mut canary = Vec::new();
    for round in 0..2 {
        let mut seen = Vec::new();
        for chunk in customers.chunks(100) {
            let r = post(&s.addr, "/v1/score", &json!({"customers": chunk}));
            assert_eq!(r.status, 200, "{}", r.body);
            let body = r.json();
            assert_eq!(body["model"]["version"], first.as_str());
            for (c, res) in chunk.iter().zip(body["results"].as_array().unwrap()) {
                let id = c["customerID"].as_str().unwrap();
                let by_challenger = res.get("model_version").is_some();
                assert_eq!(by_challenger, in_canary("telco", id, 0.3), "{id}");
                if by_challenger {
                    assert_eq!(res["model_version"], second.as_str());
                    let want = probability_of(tmp.path(), &second, c);
                    assert!((res["churn_probability"].as_f64().unwrap() - want).abs() < 1e-12);
                    seen.push(id.to_string());
                }
            }
        }
        if round == 0 {
            canary = seen;
        } else {
            assert_eq!(seen, canary, "the same customers each time");
        }
    }
    assert!(
        (60..=120).contains(&canary.len()),
        "{} of 300",
        canary.len()
    );
    let m = http(&s.addr, "GET", "/metrics", &[], b"").body;
    let name = format!("churn_canary_answers_total{{model=\"telco\",version=\"{second}\"}}");
    assert_eq!(metric(&m, &name), Some(2.0 * canary.len() as f64), "{m}");
    // the canary's answers are recorded as served, with its version
    let store = Store::open(&StoreUrl::parse(url).unwrap(), IdKey::new(None))
        .unwrap()
        .unwrap();
    let t = Instant::now();
    let count = loop {
        let mut versions: Vec<(String, String)> = Vec::new();
        store
            .block_on(store.reader().predictions("telco", (None, None), &mut |p| {
                versions.push((p.customer.to_string(), p.version.to_string()))
            }))
            .unwrap();
        if versions.len() >= 600 || t.elapsed() > Duration::from_secs(20) {
            break versions;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(count.len(), 600);
    for (customer, version) in &count {
        let want = if canary.contains(customer) {
            &second
        } else {
            &first
        };
        assert_eq!(version, want, "{customer}");
    }
}

#[test]
fn canary_challenger_sqlite() {
    on_sqlite(canary_share)
}

#[test]
fn canary_challenger_postgres() {
    on_postgres("canary_challenger", canary_share)
}

#[test]
fn challenger_settings_are_checked_at_start() {
    let tmp = tempfile::tempdir().unwrap();
    let models = tmp.path().to_str().unwrap();
    for (args, want) in [
        (vec!["--challenger", "canary:2"], "canary:SHARE"),
        (vec!["--challenger", "sometimes"], "expected off, shadow"),
        (vec!["--challenger", "shadow", "--store", "none"], "--store"),
    ] {
        let mut all = vec!["--models", models];
        all.extend(args.iter().copied());
        let (code, _, err) = run("churn-serve", &all);
        assert_eq!(code, 2, "{args:?}: {err}");
        assert!(err.contains(want), "{args:?}: {err}");
    }
}
