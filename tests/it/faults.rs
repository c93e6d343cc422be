//! Store faults made for real: a full disk (a small tmpfs mounted for the test) and a SQLite file
//! deleted under the running server. What must hold: a write is confirmed only once it is in the
//! database, every confirmed write is there for another reader (also after a restart), the
//! server says it is degraded while writes fail, and it recovers by itself when the disk has room
//! again.

use crate::store::{at, eventually, get, metric, post_outcomes, serve};
use crate::util::*;
use serde_json::json;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// A tmpfs of a few megabytes mounted on a temporary directory, unmounted on drop.
struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    /// Mount one of `size` (e.g. `4m`); `None` (with a message) where mounting is not allowed,
    /// unless `CHURN_REQUIRE_TMPFS` is set (CI), which makes that a failure.
    fn mount(size: &str) -> Option<Tmpfs> {
        let dir = tempfile::tempdir().unwrap();
        let out = Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size},mode=0700"),
                "tmpfs",
            ])
            .arg(dir.path())
            .output();
        match out {
            Ok(o) if o.status.success() => Some(Tmpfs { dir }),
            other => {
                let why = match other {
                    Ok(o) => String::from_utf8_lossy(&o.stderr).into_owned(),
                    Err(e) => e.to_string(),
                };
                assert!(
                    std::env::var_os("CHURN_REQUIRE_TMPFS").is_none(),
                    "CHURN_REQUIRE_TMPFS is set but a tmpfs cannot be mounted: {why}"
                );
                eprintln!("skipped: cannot mount a tmpfs here ({why}); set CHURN_REQUIRE_TMPFS=1 to require it");
                None
            }
        }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount")
            .arg("-l")
            .arg(self.dir.path())
            .status();
    }
}

/// Fill the file system holding `file` until a write fails for lack of space.
fn fill(file: &Path) {
    use std::io::Write;
    let mut f = std::fs::File::create(file).unwrap();
    let block = vec![7u8; 16 * 1024];
    while f.write_all(&block).and_then(|_| f.sync_data()).is_ok() {}
}

/// The `external_id`s of the outcomes stored in the SQLite file `db`, read by another process.
fn stored_external_ids(db: &Path) -> Vec<String> {
    let out = Command::new("python3")
        .args([
            "-c",
            "import sqlite3, sys\n\
             c = sqlite3.connect(sys.argv[1], timeout=10)\n\
             for (e,) in c.execute('SELECT external_id FROM outcomes ORDER BY external_id'):\n\
             \x20   print(e)",
        ])
        .arg(db)
        .output()
        .expect("python3 runs");
    assert!(
        out.status.success(),
        "reading {}: {}",
        db.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect()
}

/// One `churned` event with its own idempotency key.
fn event(key: &str) -> serde_json::Value {
    json!({"customer_id": key, "event": "churned", "at": at(-1), "external_id": key})
}

/// Post outcomes one at a time; the keys the server confirmed. Every answer is 200 or a 503
/// that carries no database text.
fn post_each(addr: &str, keys: impl Iterator<Item = String>) -> Vec<String> {
    let mut confirmed = Vec::new();
    for k in keys {
        let r = post_outcomes(addr, &[event(&k)]);
        match r.status {
            200 => confirmed.push(k),
            503 => {
                let lower = r.body.to_lowercase();
                for word in ["disk", "full", "sqlite", "database is", "error returned"] {
                    assert!(
                        !lower.contains(word),
                        "database text in a 503 body: {}",
                        r.body
                    );
                }
            }
            s => panic!("outcome {k}: unexpected {s}: {}", r.body),
        }
    }
    confirmed
}

fn assert_all_stored(db: &Path, confirmed: &[String], when: &str) {
    let stored = stored_external_ids(db);
    let missing: Vec<&String> = confirmed.iter().filter(|k| !stored.contains(k)).collect();
    assert!(
        missing.is_empty(),
        "{when}: {} confirmed outcomes are not in the database: {missing:?}",
        missing.len()
    );
}

#[test]
fn a_full_disk_never_confirms_a_write_it_did_not_keep() {
    let Some(fs) = Tmpfs::mount("6m") else {
        return;
    };
    let db: PathBuf = fs.path().join("store.db");
    let mut s = serve(&format!("sqlite://{}", db.display()), &[], &[]);
    let mut confirmed = post_each(&s.addr, (0..5).map(|i| format!("before-{i:03}")));
    assert_eq!(confirmed.len(), 5, "outcomes before the disk filled up");
    let filler = fs.path().join("filler");
    fill(&filler);
    // the disk is full: scoring goes on, outcomes are refused or really stored
    let customers = telco_customers(200);
    for chunk in customers.chunks(50) {
        let r = post(&s.addr, "/v1/score", &json!({ "customers": chunk }));
        assert_eq!(r.status, 200, "scoring with a full disk: {}", r.body);
    }
    confirmed.extend(post_each(&s.addr, (0..40).map(|i| format!("full-{i:03}"))));
    let degraded = eventually(
        "store degraded while the disk is full",
        Duration::from_secs(20),
        || {
            let r = get(&s.addr, "/readyz").json();
            let m = get(&s.addr, "/metrics").body;
            if r["store"]["status"] == "degraded" && metric(&m, "churn_store_up") == Some(0.0) {
                Ok(r)
            } else {
                Err(format!("{r}"))
            }
        },
    );
    assert!(
        !degraded.to_string().contains("disk is full"),
        "database text in /readyz: {degraded}"
    );
    assert_all_stored(&db, &confirmed, "while the disk is full");
    // room again: the server recovers without a restart
    std::fs::remove_file(&filler).unwrap();
    let again = eventually(
        "outcomes stored again once there is room",
        Duration::from_secs(20),
        || {
            let got = post_each(
                &s.addr,
                std::iter::once(format!("after-{}", confirmed.len())),
            );
            if got.is_empty() {
                Err("refused".into())
            } else {
                Ok(got)
            }
        },
    );
    confirmed.extend(again);
    confirmed.extend(post_each(&s.addr, (0..5).map(|i| format!("later-{i:03}"))));
    assert!(
        confirmed.iter().any(|k| k.starts_with("later-")),
        "writes work again"
    );
    eventually("store ok again", Duration::from_secs(20), || {
        let r = get(&s.addr, "/readyz").json();
        (r["store"]["status"] == "ok")
            .then_some(())
            .ok_or(format!("{r}"))
    });
    assert_all_stored(&db, &confirmed, "after recovery");
    // and after a restart
    signal(&s.child, "TERM");
    wait_exit(
        &mut s.child,
        Duration::from_secs(30),
        "churn-serve after SIGTERM",
    );
    assert_all_stored(&db, &confirmed, "after SIGTERM");
}

#[test]
fn a_deleted_store_file_shows_as_degraded() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("store.db");
    let s = serve(&format!("sqlite://{}", db.display()), &[], &[]);
    assert_eq!(get(&s.addr, "/readyz").json()["store"]["status"], "ok");
    std::fs::remove_file(&db).unwrap();
    let r = get(&s.addr, "/readyz");
    assert_eq!(r.status, 200, "scoring goes on: {}", r.body);
    assert_eq!(r.json()["store"]["status"], "degraded", "{}", r.body);
}

#[test]
fn store_files_are_private_to_their_owner() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("store.db");
    let s = serve(&format!("sqlite://{}", db.display()), &[], &[]);
    post_each(&s.addr, std::iter::once("perm-1".to_string()));
    for f in [db.clone(), db.with_extension("db-wal")] {
        if let Ok(m) = std::fs::metadata(&f) {
            assert_eq!(m.permissions().mode() & 0o777, 0o600, "{}", f.display());
        }
    }
    assert!(db.exists());
}
