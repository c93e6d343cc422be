//! Several `churn-serve` replicas over one model directory and one store: what one of them (or
//! another process) changes reaches the others within the watch period (`--watch-seconds`).

use crate::store::PgDb;
use crate::util::{
    champion_dir, http, post, signal, start, telco_customers, train_telco, wait_exit,
};
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

/// `dir/models/telco` with two versions: the champion and a second one, not promoted.
/// Returns the models directory and the two versions.
fn two_versions(dir: &tempfile::TempDir) -> (std::path::PathBuf, String, String) {
    let model = dir.path().join("models/telco");
    train_telco(&model, "4,6", "20");
    train_telco(&model, "3", "100");
    let champion = champion_dir(&model)
        .file_name()
        .unwrap()
        .to_string_lossy()
        .into_owned();
    let other = std::fs::read_dir(model.join("versions"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .find(|v| *v != champion)
        .unwrap();
    (dir.path().join("models"), champion, other)
}

/// Two replicas share `dir/models` and the store at `url`, each looking for changes every
/// second.
fn promotion_and_learned_rates_reach_every_replica(dir: &tempfile::TempDir, url: &str) {
    let (models, champion, other) = two_versions(dir);
    let args = ["--watch-seconds", "1", "--store", url];
    let env = [("CHURN_ADMIN_TOKEN", "admin-secret")];
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
    assert!(took < Duration::from_secs(8), "{took:?}");

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
        assert!(took < Duration::from_secs(8), "{took:?}");
    }
}

/// A loopback port nobody listens on now, below Linux's ephemeral range (32768 and up), so
/// the outgoing connections of the load cannot take it while a replica restarts on it.
fn free_port() -> u16 {
    let seed = std::process::id() as u64 ^ Instant::now().elapsed().as_nanos() as u64;
    (0..2000u64)
        .map(|i| 20_000 + ((seed.wrapping_mul(2_654_435_761) + i * 7919) % 12_000) as u16)
        .find(|&p| std::net::TcpListener::bind(("127.0.0.1", p)).is_ok())
        .expect("a free port below 32000")
}

/// Stops the load and HAProxy when dropped, also when an assertion fails midway.
struct Stopper {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    proxy: std::process::Child,
}

impl Drop for Stopper {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let _ = self.proxy.kill();
        let _ = self.proxy.wait();
    }
}

/// HAProxy in front of `ports`: round robin, a health check on `/readyz` every 200 ms (down
/// after one failure, up after two successes), a request whose connection fails goes to another
/// replica (never a request that reached one: it may have been scored).
fn haproxy_config(front: u16, ports: &[u16]) -> String {
    let mut cfg = format!(
        "global\n  maxconn 2000\ndefaults\n  mode http\n  timeout connect 2s\n  timeout client 30s\n  timeout server 30s\n  retries 3\n  option redispatch\n  retry-on conn-failure\nfrontend fe\n  bind 127.0.0.1:{front}\n  default_backend be\nbackend be\n  balance roundrobin\n  option httpchk GET /readyz\n  http-check expect status 200\n  default-server inter 200ms fall 1 rise 2\n"
    );
    for (i, p) in ports.iter().enumerate() {
        cfg.push_str(&format!("  server r{i} 127.0.0.1:{p} check\n"));
    }
    cfg
}

/// What the load saw: answered prediction ids and their versions, and failures.
#[derive(Default)]
struct Seen {
    answered: Vec<(String, String)>,
    failures: Vec<String>,
}

/// Score one customer at a time through `addr` until `stop`.
fn drive(addr: String, stop: std::sync::Arc<std::sync::atomic::AtomicBool>, offset: usize) -> Seen {
    let customers = telco_customers(200);
    let mut seen = Seen::default();
    let mut i = offset;
    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
        let body = json!({ "customers": [customers[i % customers.len()]] });
        i += 7;
        // about 250 requests a second per client: load that keeps the replicas busy without
        // starving the rest of the test suite on a small machine
        std::thread::sleep(Duration::from_millis(4));
        let r = std::panic::catch_unwind(|| post(&addr, "/v1/score", &body));
        match r {
            Ok(r) if r.status == 200 => match serde_json::from_str::<Value>(&r.body) {
                Ok(v) => seen.answered.push((
                    v["results"][0]["prediction_id"]
                        .as_str()
                        .unwrap()
                        .to_string(),
                    v["model"]["version"].as_str().unwrap().to_string(),
                )),
                Err(e) => seen.failures.push(format!("unreadable answer: {e}")),
            },
            Ok(r) => seen.failures.push(format!("{}: {}", r.status, r.body)),
            Err(_) => seen.failures.push("no answer".into()),
        }
    }
    seen
}

/// Wait for a replica to exit after SIGTERM; it must exit 0.
fn stop_replica(s: &mut crate::util::Server) {
    // no batch of predictions failed to insert (each is lost: the metric says how many)
    let m = http(&s.addr, "GET", "/metrics", &[], b"");
    assert!(
        m.body.contains("\nchurn_store_failed_total 0\n"),
        "{}",
        m.body
            .lines()
            .filter(|l| l.starts_with("churn_store"))
            .collect::<Vec<_>>()
            .join("\n")
    );
    signal(&s.child, "TERM");
    let status = wait_exit(
        &mut s.child,
        Duration::from_secs(30),
        "replica did not stop",
    );
    assert!(status.success(), "{status}");
}

/// Three replicas behind HAProxy, one model directory and one PostgreSQL store, under load for
/// 60 s while a new version is promoted (through the balancer) and the replicas are restarted one
/// at a time (SIGTERM: drain, stop, start again): no request fails, every answered prediction is
/// stored exactly once and no other is, and every replica serves the new version within 10 s of
/// the promotion. Needs `haproxy` (Debian's package; `.ci/run` installs it); skipped with a note
/// without it, unless `CHURN_REQUIRE_HAPROXY=1`.
#[test]
fn three_replicas_behind_haproxy_survive_a_promotion_and_a_rolling_restart() {
    let haproxy = std::process::Command::new("haproxy").arg("-v").output();
    if haproxy.is_err() {
        assert!(
            std::env::var("CHURN_REQUIRE_HAPROXY").as_deref() != Ok("1"),
            "CHURN_REQUIRE_HAPROXY=1 but haproxy is not on PATH"
        );
        eprintln!("skipped: haproxy not on PATH (apt-get install haproxy)");
        return;
    }
    let Some(db) = PgDb::create("haproxy") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let (models, _, new) = two_versions(&dir);
    let url = db.url();
    let ports: Vec<u16> = (0..3).map(|_| free_port()).collect();
    let binds: Vec<String> = ports.iter().map(|p| format!("127.0.0.1:{p}")).collect();
    let env = [("CHURN_ADMIN_TOKEN", "admin-secret")];
    let replica = |bind: &str| {
        let args = [
            "--bind",
            bind,
            "--store",
            url.as_str(),
            "--drain-seconds",
            "2",
            "--watch-seconds",
            "1",
            "--workers",
            "1",
        ];
        start(&models, &args, &env)
    };
    let mut replicas: Vec<_> = binds.iter().map(|b| replica(b)).collect();
    let front = free_port();
    let cfg = dir.path().join("haproxy.cfg");
    std::fs::write(&cfg, haproxy_config(front, &ports)).unwrap();
    let proxy = std::process::Command::new("haproxy")
        .args(["-db", "-f", cfg.to_str().unwrap()])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let stopper = Stopper {
        stop: stop.clone(),
        proxy,
    };
    let front = format!("127.0.0.1:{front}");
    let t0 = Instant::now();
    while std::net::TcpStream::connect(&front).is_err()
        || http(&front, "GET", "/readyz", &[], b"").status != 200
    {
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "haproxy did not start"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_millis(600)); // every replica up (rise 2 × 200 ms)

    let load: Vec<_> = (0..4)
        .map(|k| {
            let (addr, stop) = (front.clone(), stop.clone());
            std::thread::spawn(move || drive(addr, stop, k))
        })
        .collect();
    let start_load = Instant::now();

    // a promotion through the balancer, then every replica on the new version within 10 s
    std::thread::sleep(Duration::from_secs(5));
    let promote = json!({"alias": "champion", "version": new, "reason": "rolling test"});
    let r = http(
        &front,
        "POST",
        "/v1/models/telco/aliases",
        &[
            ("Authorization", "Bearer admin-secret"),
            ("Content-Type", "application/json"),
        ],
        promote.to_string().as_bytes(),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let promoted = Instant::now();
    let mut direct = Vec::new(); // answers straight from a replica: stored too
    let one = json!({"customers": [telco_customers(1)[0]]});
    for b in &binds {
        loop {
            let v = post(b, "/v1/score", &one);
            assert_eq!(v.status, 200, "{}", v.body);
            let v = v.json();
            direct.push(
                v["results"][0]["prediction_id"]
                    .as_str()
                    .unwrap()
                    .to_string(),
            );
            if v["model"]["version"] == new.as_str() {
                break;
            }
            assert!(
                promoted.elapsed() < Duration::from_secs(10),
                "replica {b} still serves the old version 10 s after the promotion"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    let propagation = promoted.elapsed();

    // a rolling restart: one replica at a time drains, stops and comes back on its port
    for (i, b) in binds.iter().enumerate() {
        stop_replica(&mut replicas[i]);
        replicas[i] = replica(b);
        std::thread::sleep(Duration::from_secs(3)); // back in rotation, then the next one
    }
    let rest = Duration::from_secs(60).saturating_sub(start_load.elapsed());
    std::thread::sleep(rest);
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut seen = Seen::default();
    for t in load {
        let s = t.join().unwrap();
        seen.answered.extend(s.answered);
        seen.failures.extend(s.failures);
    }
    for r in &mut replicas {
        stop_replica(r); // writes what its queue still holds
    }
    drop(stopper);

    eprintln!(
        "{} answers in {:?}, {} failed; the promotion reached all replicas in {propagation:?}",
        seen.answered.len(),
        start_load.elapsed(),
        seen.failures.len()
    );
    assert!(
        seen.failures.is_empty(),
        "{:?}",
        &seen.failures[..seen.failures.len().min(5)]
    );
    assert!(seen.answered.len() > 500, "{}", seen.answered.len());
    assert!(seen.answered.iter().any(|(_, v)| *v == new));
    let answered: std::collections::BTreeSet<&str> = seen
        .answered
        .iter()
        .map(|(id, _)| id.as_str())
        .chain(direct.iter().map(String::as_str))
        .collect();
    assert_eq!(
        answered.len(),
        seen.answered.len() + direct.len(),
        "a prediction id answered twice"
    );
    let stored = crate::store::psql(db.name(), "SELECT prediction_id FROM predictions").unwrap();
    let stored: std::collections::BTreeSet<&str> = stored
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    let missing = answered.difference(&stored).count();
    let extra = stored.difference(&answered).count();
    assert_eq!(
        (missing, extra),
        (0, 0),
        "answered but not stored: {missing}; stored but never answered: {extra}"
    );
}

/// On PostgreSQL one evaluation runs at a time across every server sharing the store: while
/// another process holds the evaluation's advisory lock, a server answers 503 `server_busy`
/// naming the other server; once it is released, the evaluation runs.
#[test]
fn one_evaluation_at_a_time_across_servers_sharing_a_postgres_store() {
    let Some(db) = PgDb::create("exclusive") else {
        return;
    };
    let url = db.url();
    let open = || {
        Store::open(&StoreUrl::parse(&url).unwrap(), IdKey::new(None))
            .unwrap()
            .unwrap()
    };
    let (a, b) = (open(), open());
    let held = a.block_on(a.try_exclusive("evaluation")).unwrap();
    assert!(held.is_some(), "the first taker gets the lock");
    assert!(
        b.block_on(b.try_exclusive("evaluation")).unwrap().is_none(),
        "a second process does not"
    );
    assert!(
        b.block_on(b.try_exclusive("kpis")).unwrap().is_some(),
        "another job's lock is another lock"
    );

    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("models/telco");
    train_telco(&model, "4", "20");
    let s = start(&dir.path().join("models"), &["--store", url.as_str()], &[]);
    let r = http(&s.addr, "GET", "/v1/evaluation?model=telco", &[], b"");
    assert_eq!(r.status, 503, "{}", r.body);
    assert!(
        r.body.contains("another server sharing this store"),
        "{}",
        r.body
    );
    drop(held);
    let t0 = Instant::now();
    loop {
        let r = http(&s.addr, "GET", "/v1/evaluation?model=telco", &[], b"");
        if r.status == 200 {
            break;
        }
        assert_eq!(r.status, 503, "{}", r.body);
        assert!(
            t0.elapsed() < Duration::from_secs(5),
            "the lock was not released"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    // the server released its own lock after the run: this process can take it again
    let t0 = Instant::now();
    while a.block_on(a.try_exclusive("evaluation")).unwrap().is_none() {
        assert!(
            t0.elapsed() < Duration::from_secs(5),
            "the server kept the lock"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}
