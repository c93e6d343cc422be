//! The model registry: versions side by side, aliases moved by the CLI and the admin route,
//! changes recorded in the store, a broken registry file refused.

use crate::store::{on_postgres, on_sqlite};
use crate::util::{models_copy, post, run, start, train_telco};
use churn::bundle::registry::{valid_alias, ModelDir, RegistryError, REGISTRY_FILE};
use churn::bundle::MODEL_FILE;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};

/// The registry file of model directory `dir`.
fn registry(dir: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(dir.join("registry.json")).unwrap()).unwrap()
}

fn champion(dir: &Path) -> String {
    registry(dir)["aliases"]["champion"]
        .as_str()
        .unwrap()
        .to_string()
}

/// The versions registered in `dir`, sorted.
fn versions(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir.join("versions"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| !n.starts_with('.'))
        .collect();
    v.sort();
    v
}

fn models(args: &[&str]) -> (i32, String, String) {
    let mut all = vec!["models"];
    all.extend_from_slice(args);
    run("churn-train", &all)
}

/// Two versions of Telco in `DIR/telco` (depth 4, then depth 6); returns (DIR, first, second).
pub(crate) fn two_versions() -> (tempfile::TempDir, String, String) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("telco");
    train_telco(&dir, "4", "20");
    let first = champion(&dir);
    train_telco(&dir, "6", "20");
    let second = versions(&dir)
        .into_iter()
        .find(|v| *v != first)
        .expect("a second version");
    (tmp, first, second)
}

#[test]
fn training_adds_versions_never_overwrites_and_aliases_move_only_when_asked() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("telco");
    train_telco(&dir, "4", "20");
    let first = champion(&dir);
    let bin = dir.join("versions").join(&first).join("model.bin");
    let (bytes, modified) = (
        std::fs::read(&bin).unwrap(),
        std::fs::metadata(&bin).unwrap().modified().unwrap(),
    );
    // the same data, settings and seed: the same version, nothing written
    let (code, _, err) = run(
        "churn-train",
        &[
            "--data",
            crate::util::telco().to_str().unwrap(),
            "--label",
            "Churn",
            "--id",
            "customerID",
            "--max-depth",
            "4",
            "--min-samples-leaf",
            "20",
            "--model",
            "tree",
            "--playbook",
            "training/playbook.toml",
            "--out",
            dir.to_str().unwrap(),
        ],
    );
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("already registered"), "{err}");
    assert_eq!(versions(&dir), vec![first.clone()]);
    assert_eq!(std::fs::read(&bin).unwrap(), bytes);
    assert_eq!(
        std::fs::metadata(&bin).unwrap().modified().unwrap(),
        modified
    );
    // a different model: a second version; the champion stays until promoted
    train_telco(&dir, "6", "20");
    let second = versions(&dir).into_iter().find(|v| *v != first).unwrap();
    assert_eq!(champion(&dir), first);
    let models_dir = tmp.path().to_str().unwrap();
    let (code, out, err) = models(&["list", "telco", "--models", models_dir]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains(&first) && out.contains(&second) && out.contains("champion"),
        "{out}"
    );
    // the champion cannot be removed; an unknown version is named
    let (code, _, err) = models(&["remove", "telco", &first, "--models", models_dir]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("champion") && err.contains(&first), "{err}");
    let (code, _, err) = models(&["promote", "telco", "abcdef123456", "--models", models_dir]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("abcdef123456") && err.contains(&second),
        "{err}"
    );
    // promote, roll back, remove the version no alias holds
    let (code, _, err) = models(&[
        "promote",
        "telco",
        &second,
        "--models",
        models_dir,
        "--reason",
        "deeper tree",
        "--by",
        "ann",
    ]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(champion(&dir), second);
    let (code, _, err) = models(&["rollback", "telco", "--models", models_dir]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(champion(&dir), first);
    let (code, _, err) = models(&["rollback", "telco", "--models", models_dir]);
    assert_eq!(code, 2, "nothing left to roll back to: {err}");
    let (code, _, err) = models(&["remove", "telco", &second, "--models", models_dir]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(versions(&dir), vec![first.clone()]);
    let changes = registry(&dir)["changes"].clone();
    let actions: Vec<&str> = changes
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        ["register", "promote", "register", "promote", "rollback", "remove"]
    );
    assert_eq!(changes[3]["by"], "ann");
    assert_eq!(changes[3]["reason"], "deeper tree");
    // churn-score reads the champion, or any version or alias by DIR@WHICH
    let (code, _, err) = crate::util::score(
        &PathBuf::from(format!("{}@champion", dir.display())),
        &crate::util::telco(),
        &tmp.path().join("scores.csv"),
        &["--quiet"],
    );
    assert_eq!(code, 0, "{err}");
}

#[test]
fn a_single_directory_model_is_kept_as_the_champion_when_trained_into() {
    let models_dir = models_copy("registry-adopt");
    let dir = models_dir.join("telco");
    let old = churn::bundle::load(&dir).unwrap().version;
    train_telco(&dir, "6", "20");
    assert_eq!(champion(&dir), old, "the model that served keeps serving");
    assert_eq!(versions(&dir).len(), 2);
    assert!(!dir.join("model.bin").exists());
    assert!(dir
        .join("versions")
        .join(&old)
        .join("model_card.json")
        .is_file());
    let _ = std::fs::remove_dir_all(&models_dir);
}

#[test]
fn a_registry_file_edited_into_nonsense_stops_the_start_and_not_the_serving() {
    let (tmp, first, _) = two_versions();
    let dir = tmp.path().join("telco");
    let good = std::fs::read(dir.join("registry.json")).unwrap();
    std::fs::write(
        dir.join("registry.json"),
        r#"{"format": 1, "aliases": {"champion": "0123456789ab"}}"#,
    )
    .unwrap();
    let out = crate::util::serve_command(tmp.path(), &["--store", "none"], &[])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("registry.json") && err.contains("0123456789ab"),
        "the problem is named: {err}"
    );
    // a server already serving keeps its version when the file breaks under it; a model
    // directory whose first training failed (an empty versions/) does not stop the start
    std::fs::write(dir.join("registry.json"), &good).unwrap();
    std::fs::create_dir_all(tmp.path().join("acme/versions")).unwrap();
    let s = start(
        tmp.path(),
        &["--store", "none"],
        &[("CHURN_ADMIN_TOKEN", "admin-secret")],
    );
    std::fs::write(dir.join("registry.json"), "{ not json").unwrap();
    let r = crate::util::http(
        &s.addr,
        "POST",
        "/v1/admin/reload",
        &[("Authorization", "Bearer admin-secret")],
        b"",
    );
    assert_eq!(r.status, 422, "{}", r.body);
    assert!(r.body.contains("registry.json"), "{}", r.body);
    let m = crate::util::http(&s.addr, "GET", "/v1/models/telco", &[], b"").json();
    assert_eq!(m["version"], first.as_str());
    let scored = post(
        &s.addr,
        "/v1/score",
        &json!({"customers": crate::util::telco_customers(1)}),
    );
    assert_eq!(scored.status, 200, "{}", scored.body);
}

/// Admin moves the champion over HTTP: served at once, refused changes answered 409, every
/// change recorded with who and why in the store at `url`.
fn promotion_over_http(url: &str) {
    let (tmp, first, second) = two_versions();
    let s = start(
        tmp.path(),
        &["--store", url],
        &[("CHURN_ADMIN_TOKEN", "admin-secret")],
    );
    let admin = [
        ("Authorization", "Bearer admin-secret"),
        ("Content-Type", "application/json"),
    ];
    let aliases = |body: Value| {
        crate::util::http(
            &s.addr,
            "POST",
            "/v1/models/telco/aliases",
            &admin,
            body.to_string().as_bytes(),
        )
    };
    let served = || {
        let r = post(
            &s.addr,
            "/v1/score",
            &json!({"customers": crate::util::telco_customers(1)}),
        );
        r.json()["model"]["version"].as_str().unwrap().to_string()
    };
    assert_eq!(served(), first);
    let listed = crate::util::http(&s.addr, "GET", "/v1/models/telco/versions", &[], b"").json();
    assert_eq!(listed["serving"], first.as_str());
    assert_eq!(listed["versions"].as_array().unwrap().len(), 2);
    // without the admin token: refused, nothing changes
    let r = post(
        &s.addr,
        "/v1/models/telco/aliases",
        &json!({"alias": "champion", "version": second}),
    );
    assert!(r.status == 401 || r.status == 403, "{}", r.body);
    let r = aliases(
        json!({"alias": "champion", "version": second, "reason": "deeper tree", "by": "ann"}),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["serving"], second.as_str());
    assert_eq!(served(), second);
    for (body, status, code) in [
        (
            json!({"alias": "champion", "action": "unset"}),
            409,
            "registry_conflict",
        ),
        (
            json!({"alias": "champion", "version": "abcdef123456"}),
            404,
            "unknown_version",
        ),
        (json!({"alias": "champion"}), 422, "missing_field"),
        (
            json!({"alias": "Champion", "version": second}),
            422,
            "invalid_value",
        ),
        (
            json!({"alias": "canary", "action": "unset"}),
            404,
            "unknown_version",
        ),
        (
            json!({"alias": "champion", "version": second, "colour": 1}),
            422,
            "invalid_request",
        ),
    ] {
        let r = aliases(body.clone());
        assert_eq!(r.status, status, "{body}: {}", r.body);
        assert_eq!(r.json()["error"]["code"], code, "{body}: {}", r.body);
    }
    let r = aliases(json!({"alias": "champion", "action": "rollback", "reason": "complaints"}));
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(served(), first);
    let r = aliases(json!({"alias": "challenger", "version": second}));
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        served(),
        first,
        "a challenger alias does not change what is served"
    );
    let listed = crate::util::http(&s.addr, "GET", "/v1/models/telco/versions", &[], b"").json();
    // the registry file's training registrations and the store's records, each change once
    let changes: Vec<&Value> = listed["changes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["action"] != "register" && c["reason"] != "first version of the model")
        .collect();
    let seen: Vec<(&str, &str, &str)> = changes
        .iter()
        .map(|c| {
            (
                c["action"].as_str().unwrap(),
                c["by"].as_str().unwrap(),
                c["reason"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        seen,
        [
            ("promote", "ann", "deeper tree"),
            ("rollback", "admin-token", "complaints"),
            ("alias", "admin-token", ""),
        ],
        "recorded in the store"
    );
    assert_eq!(listed["aliases"]["challenger"], second.as_str());
}

#[test]
fn promotion_over_http_sqlite() {
    on_sqlite(promotion_over_http)
}

#[test]
fn promotion_over_http_postgres() {
    on_postgres("promotion_over_http", promotion_over_http)
}

#[test]
fn a_registry_file_edited_into_nonsense_is_refused_with_the_problem_named() {
    let tmp = tempfile::tempdir().unwrap();
    let m = ModelDir::new(&tmp.path().join("telco"));
    std::fs::create_dir_all(m.version_dir("aaaa")).unwrap();
    std::fs::write(m.version_dir("aaaa").join(MODEL_FILE), "x").unwrap();
    for (text, expect) in [
        (
            "{\"format\": 1, \"aliases\": {\"champion\": \"ffff\"}}",
            "'ffff'",
        ),
        ("{\"format\": 2, \"aliases\": {}}", "format 2"),
        (
            "{\"format\": 1, \"aliases\": {\"Champion!\": \"aaaa\"}}",
            "'Champion!'",
        ),
        (
            "{\"format\": 1, \"aliases\": {}, \"extra\": 1}",
            "unknown field",
        ),
        ("not json", "not a registry file"),
        ("{\"format\": 1, \"aliases\": {}}", "no 'champion' alias"),
    ] {
        std::fs::write(m.dir.join(REGISTRY_FILE), text).unwrap();
        let e = m.resolve(None).unwrap_err().to_string();
        assert!(
            e.contains(expect) && e.contains("registry.json"),
            "{text}: {e}"
        );
    }
    std::fs::write(
        m.dir.join(REGISTRY_FILE),
        "{\"format\": 1, \"aliases\": {\"champion\": \"aaaa\"}}",
    )
    .unwrap();
    assert_eq!(m.resolve(None).unwrap(), m.version_dir("aaaa"));
    assert_eq!(m.resolve(Some("aaaa")).unwrap(), m.version_dir("aaaa"));
    assert!(matches!(
        m.resolve(Some("challenger")),
        Err(RegistryError::Unknown { .. })
    ));
    assert!(valid_alias("canary-2") && !valid_alias("2x") && !valid_alias(""));
}

/// 30 promotions and rollbacks, 2 s apart, while four clients score without pause: no
/// request fails, each answer carries one of the two versions, and every request started after a
/// switch answered carries the version it switched to.
fn promotion_under_load(url: &str) {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    use std::time::{Duration, Instant};
    let (tmp, first, second) = two_versions();
    let s = start(
        tmp.path(),
        &["--store", url],
        &[("CHURN_ADMIN_TOKEN", "admin-secret")],
    );
    let body = json!({"customers": crate::util::telco_customers(1)}).to_string();
    let stop = Arc::new(AtomicBool::new(false));
    let clients: Vec<_> = (0..4)
        .map(|_| {
            let (addr, body, stop) = (s.addr.clone(), body.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut seen = Vec::new();
                while !stop.load(Ordering::Relaxed) {
                    let t = Instant::now();
                    let r = crate::util::post_raw(&addr, "/v1/score", body.as_bytes());
                    let version = serde_json::from_str::<Value>(&r.body)
                        .ok()
                        .and_then(|v| v["model"]["version"].as_str().map(str::to_string));
                    seen.push((t, Instant::now(), r.status, version));
                }
                seen
            })
        })
        .collect();
    let started = Instant::now();
    let mut switches = Vec::new();
    let mut k = 0;
    // a count, not a deadline: on a busy machine a switch can take longer than usual
    while k < 30 {
        std::thread::sleep(Duration::from_secs(2));
        let sent = Instant::now();
        let (body, to) = if k % 2 == 0 {
            (
                json!({"alias": "champion", "version": second, "reason": "load test"}),
                &second,
            )
        } else {
            (json!({"alias": "champion", "action": "rollback"}), &first)
        };
        let r = crate::util::http(
            &s.addr,
            "POST",
            "/v1/models/telco/aliases",
            &[
                ("Authorization", "Bearer admin-secret"),
                ("Content-Type", "application/json"),
            ],
            body.to_string().as_bytes(),
        );
        assert_eq!(r.status, 200, "{}", r.body);
        assert_eq!(r.json()["serving"], to.as_str());
        switches.push((sent, Instant::now(), to.clone()));
        k += 1;
    }
    stop.store(true, Ordering::Relaxed);
    let seen: Vec<_> = clients
        .into_iter()
        .flat_map(|c| c.join().unwrap())
        .collect();
    assert!(seen.len() > 1000, "{} requests", seen.len());
    assert_eq!(switches.len(), 30);
    for (start, end, status, version) in &seen {
        assert_eq!(*status, 200, "a request failed during the switches");
        let v = version.as_deref().expect("every answer names its version");
        assert!(v == first || v == second, "{v}");
        // the version switched to by the last switch answered before the request started, or
        // by one under way while it ran
        let done = switches
            .iter()
            .rev()
            .find(|(_, answered, _)| answered < start)
            .map_or(first.as_str(), |(_, _, to)| to.as_str());
        let under_way = switches
            .iter()
            .filter(|(sent, answered, _)| sent < end && answered >= start)
            .map(|(_, _, to)| to.as_str());
        let allowed: Vec<&str> = std::iter::once(done).chain(under_way).collect();
        assert!(
            allowed.contains(&v),
            "a request started after a switch answered {v}, expected one of {allowed:?}; request {:?}..{:?}",
            start.duration_since(started),
            end.duration_since(started)
        );
    }
}

#[test]
fn promotion_under_load_sqlite() {
    on_sqlite(promotion_under_load)
}

#[test]
fn promotion_under_load_postgres() {
    on_postgres("promotion_under_load", promotion_under_load)
}
