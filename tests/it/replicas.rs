//! Several `churn-serve` replicas over one model directory and one store: what one of them (or
//! another process) changes reaches the others within the watch period (`--watch-seconds`).

use crate::store::PgDb;
use crate::util::{http, post, start, telco_customers, train_telco};
use churn::playbook::LearnedRate;
use churn::store::{IdKey, Store, StoreUrl};
use serde_json::{json, Value};
use std::time::{Duration, Instant};

/// The version a replica scores with, and its first customer's first recommendation.
fn served(addr: &str, body: &Value) -> (String, Option<Value>) {
    let r = post(addr, "/v1/score", body);
    assert_eq!(r.status, 200, "{}", r.body);
    let v = r.json();
    let version = v["model"]["version"].as_str().unwrap().to_string();
    (version, v["results"][0]["recommendations"].get(0).cloned())
}

/// Poll `addr` until `done` holds; returns how long it took (fails after 10 s).
fn until(addr: &str, body: &Value, done: impl Fn(&(String, Option<Value>)) -> bool) -> Duration {
    let t0 = Instant::now();
    loop {
        if done(&served(addr, body)) {
            return t0.elapsed();
        }
        assert!(t0.elapsed() < Duration::from_secs(10), "not propagated");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_promotion_and_learned_rates_reach_every_replica_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("store.db").display());
    promotion_and_learned_rates_reach_every_replica(&dir, &url);
}

#[test]
fn a_promotion_and_learned_rates_reach_every_replica_on_postgres() {
    let Some(db) = PgDb::create("replicas") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    promotion_and_learned_rates_reach_every_replica(&dir, &db.url());
}

/// Two replicas share `dir/models` and the store at `url`, each looking for changes every
/// second.
fn promotion_and_learned_rates_reach_every_replica(dir: &tempfile::TempDir, url: &str) {
    let model = dir.path().join("models/telco");
    train_telco(&model, "4,6", "20");
    train_telco(&model, "3", "100"); // a second version, not promoted
    let registry: Value =
        serde_json::from_slice(&std::fs::read(model.join("registry.json")).unwrap()).unwrap();
    let champion = registry["aliases"]["champion"]
        .as_str()
        .unwrap()
        .to_string();
    let other = std::fs::read_dir(model.join("versions"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .find(|v| *v != champion)
        .unwrap();
    let args = ["--watch-seconds", "1", "--store", url];
    let env = [("CHURN_ADMIN_TOKEN", "admin-secret")];
    let models = dir.path().join("models");
    let replicas = [start(&models, &args, &env), start(&models, &args, &env)];
    // a customer who gets a recommendation (treatment group)
    let body = telco_customers(40)
        .into_iter()
        .map(|c| json!({ "customers": [c] }))
        .find(|b| served(&replicas[0].addr, b).1.is_some())
        .expect("a customer with a recommendation");
    for r in &replicas {
        assert_eq!(served(&r.addr, &body).0, champion);
    }

    // promoted over HTTP on the first replica: served there at once, on the second within ~1 s
    let promote = json!({"alias": "champion", "version": other, "reason": "test"});
    let resp = http(
        &replicas[0].addr,
        "POST",
        "/v1/models/telco/aliases",
        &[
            ("Authorization", "Bearer admin-secret"),
            ("Content-Type", "application/json"),
        ],
        promote.to_string().as_bytes(),
    );
    assert_eq!(resp.status, 200, "{}", resp.body);
    assert_eq!(served(&replicas[0].addr, &body).0, other);
    let took = until(&replicas[1].addr, &body, |(v, _)| *v == other);
    eprintln!("promotion reached the second replica in {took:?}");
    assert!(took < Duration::from_secs(4), "{took:?}");

    // learned rates stored by an evaluation (here straight into the store): used by both
    let (_, rec) = served(&replicas[1].addr, &body);
    let rec = rec.unwrap();
    let action = rec["action"].as_str().unwrap().to_string();
    let store = Store::open(&StoreUrl::parse(url).unwrap(), IdKey::new(None))
        .unwrap()
        .unwrap();
    let rate = LearnedRate {
        action: action.clone(),
        save_rate: 0.77,
        save_rate_low: 0.75,
        save_rate_high: 0.79,
        prior_rate: rec["save_rate"].as_f64().unwrap(),
        effect: None,
        take_up: Some(0.8),
        evidence: 5000.0,
        treated: 10_000,
        control: 1_000,
        applied: true,
        harms: false,
    };
    store
        .block_on(store.save_learned_rates("telco", &[rate]))
        .unwrap();
    for r in &replicas {
        let took = until(&r.addr, &body, |(_, rec)| {
            rec.as_ref().is_some_and(|x| {
                x["action"] == action.as_str() && x["save_rate"].as_f64() == Some(0.77)
            })
        });
        assert!(took < Duration::from_secs(4), "{took:?}");
    }
}
