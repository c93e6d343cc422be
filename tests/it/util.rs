//! Helpers shared by the integration tests: sample paths, running the binaries, loading the
//! bundled data, linfa's pruning rule for comparing trees, and running `churn-serve` with a tiny
//! HTTP client.

use churn::ingest::{load, CustomerData, CustomerTableSpec, Source, TransactionSpec};
use churn::model::tree::{Structure, LEAF};
use serde_json::Value;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

/// Repository root.
pub(crate) fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The bundled Telco sample.
pub(crate) fn telco() -> PathBuf {
    root().join("training/data/Telco-Customer-Churn.csv")
}

/// The bundled CDNOW sample.
pub(crate) fn cdnow() -> PathBuf {
    root().join("training/data/cdnow_master_transactions.csv")
}

/// The shared Online Retail log (`../shared/datasets`), or `None` (with a note) when absent.
pub(crate) fn online_retail() -> Option<PathBuf> {
    let p = root().join("../shared/datasets/online_retail/OnlineRetail.csv.gz");
    if !p.exists() {
        eprintln!("skipped: {} not present", p.display());
        return None;
    }
    Some(p)
}

/// Write `text` to `dir/name` and return the path.
pub(crate) fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

/// Run a binary of this package; returns (exit code, stdout, stderr).
pub(crate) fn run(bin: &str, args: &[&str]) -> (i32, String, String) {
    let exe = match bin {
        "churn-train" => env!("CARGO_BIN_EXE_churn-train"),
        "churn-score" => env!("CARGO_BIN_EXE_churn-score"),
        "churn-serve" => env!("CARGO_BIN_EXE_churn-serve"),
        other => panic!("unknown binary {other}"),
    };
    let out = std::process::Command::new(exe)
        .args(args)
        .current_dir(root())
        .output()
        .expect("binary runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Train the bundled Telco sample into `out` as a single tree with a small grid (fast); panics
/// on failure.
pub(crate) fn train_telco(out: &Path, depths: &str, leaf: &str) {
    train_telco_with(out, &tree_flags(depths, leaf, &[]));
}

/// The flags of a single tree with grid `depths` × `leaf`, then `extra`.
fn tree_flags<'a>(depths: &'a str, leaf: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut v = vec![
        "--max-depth",
        depths,
        "--min-samples-leaf",
        leaf,
        "--model",
        "tree",
    ];
    v.extend_from_slice(extra);
    v
}

/// Retrain into an existing model directory and make the new version its champion at once
/// (`--promote`), as a deployment that serves every retrained model does.
pub(crate) fn retrain_telco_promoted(out: &Path, depths: &str, leaf: &str) {
    train_telco_with(out, &tree_flags(depths, leaf, &["--promote"]));
}

/// Train the bundled Telco sample into `out` with the flags `extra`; panics on failure.
pub(crate) fn train_telco_with(out: &Path, extra: &[&str]) {
    train_telco_layout(&telco(), out, extra);
}

/// Train a table in the Telco layout (`Churn` label, `customerID` id) into `out` with the flags
/// `extra`; panics on failure.
pub(crate) fn train_telco_layout(data: &Path, out: &Path, extra: &[&str]) {
    let mut args = vec![
        "--data",
        data.to_str().unwrap(),
        "--label",
        "Churn",
        "--id",
        "customerID",
    ];
    // these tests were written against the brief's catalogue playbook; without one, training
    // would infer a playbook from the data (tests/it/init.rs covers that)
    if !extra.contains(&"--playbook") {
        args.extend_from_slice(&["--playbook", "training/playbook.toml"]);
    }
    args.extend_from_slice(extra);
    args.extend_from_slice(&["--out", out.to_str().unwrap(), "--quiet"]);
    let (code, _, err) = run("churn-train", &args);
    assert_eq!(code, 0, "{err}");
}

/// Train with a TOML config into `out` (`extra` flags go before `--quiet`); panics on failure.
pub(crate) fn train_config(config: &Path, out: &Path, extra: &[&str]) {
    let mut args = vec![
        "--config",
        config.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    args.push("--quiet");
    let (code, _, err) = run("churn-train", &args);
    assert_eq!(code, 0, "{err}");
}

/// Run `churn-score` on `input` with the bundle in `model`; returns (exit code, stdout, stderr).
pub(crate) fn score(
    model: &Path,
    input: &Path,
    out: &Path,
    extra: &[&str],
) -> (i32, String, String) {
    let mut args = vec![
        "--model",
        model.to_str().unwrap(),
        "--input",
        input.to_str().unwrap(),
        "--output",
        out.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    run("churn-score", &args)
}

/// The directory of the version a model directory serves: its registry's champion
/// (`DIR/versions/VERSION`), or `dir` itself for the single-directory layout.
pub(crate) fn champion_dir(dir: &Path) -> PathBuf {
    churn::bundle::registry::resolve_path(dir).unwrap()
}

/// The `model_card.json` of the version a training run into `dir` made champion.
pub(crate) fn read_card(dir: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(champion_dir(dir).join("model_card.json")).unwrap())
        .unwrap()
}

/// The bundled Telco sample as a customer table: label `Churn`, id `customerID`.
pub(crate) fn telco_spec() -> CustomerTableSpec {
    CustomerTableSpec {
        path: telco(),
        label: "Churn".into(),
        id: Some("customerID".into()),
        ..Default::default()
    }
}

/// The bundled Telco sample, loaded.
pub(crate) fn telco_data() -> CustomerData {
    load(&Source::Table(telco_spec())).unwrap()
}

/// The CDNOW log with the usual label: cutoff 1997-10-01, horizon 273 days.
pub(crate) fn cdnow_spec() -> TransactionSpec {
    TransactionSpec {
        path: cdnow(),
        customer_col: "customer_id".into(),
        time_col: "date".into(),
        amount_col: "dollar_value".into(),
        cutoff: Some("1997-10-01".into()),
        horizon_days: 273,
        ..Default::default()
    }
}

/// Merge sibling leaves that predict the same class, bottom-up — linfa-trees' pruning rule.
pub(crate) fn prune_like_linfa(s: &Structure) -> Vec<Option<u32>> {
    // returns, per node, Some(class) when the subtree collapses to one leaf
    fn go(s: &Structure, i: usize, out: &mut Vec<Option<u32>>) -> Option<bool> {
        let (_, _, l, r, c) = s[i];
        if l == LEAF {
            out[i] = Some(c as u32);
            return Some(c);
        }
        let a = go(s, l as usize, out);
        let b = go(s, r as usize, out);
        match (a, b) {
            (Some(a), Some(b)) if a == b => {
                out[i] = Some(a as u32);
                Some(a)
            }
            _ => None,
        }
    }
    let mut out = vec![None; s.len()];
    go(s, 0, &mut out);
    out
}

/// `s` with every subtree that linfa's pruning collapses turned into one leaf.
pub(crate) fn pruned_structure(s: &Structure) -> Structure {
    fn go(s: &Structure, i: usize, pruned: &[Option<u32>], out: &mut Structure) -> u32 {
        let me = out.len() as u32;
        let (f, t, l, r, c) = s[i];
        if l == LEAF || pruned[i].is_some() {
            out.push((0, 0.0, LEAF, LEAF, c));
            return me;
        }
        out.push((0, 0.0, LEAF, LEAF, c));
        let li = go(s, l as usize, pruned, out);
        let ri = go(s, r as usize, pruned, out);
        out[me as usize] = (f, t, li, ri, c);
        me
    }
    let pruned = prune_like_linfa(s);
    let mut out = Vec::new();
    go(s, 0, &pruned, &mut out);
    out
}

/// Trained once per test run: models/telco-like bundle in a temp dir of this process (a test
/// run started meanwhile in the same checkout must not delete it under our servers).
pub(crate) fn trained() -> &'static PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let tmp = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
        remove_stale_trained_dirs(&tmp);
        let dir = tmp.join(format!("churn-serve-trained-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let out = dir.join("telco");
        train_telco(&out, "4,6", "20");
        dir
    })
}

/// The bundled example exactly as the README's main command trains it (`training/telco.toml`:
/// full grid, the Telco playbook with its actionable inputs), once per test run, in
/// `DIR/telco`; returns `DIR`.
pub(crate) fn trained_example() -> &'static PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let tmp = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
        let dir = tmp.join(format!(
            "churn-serve-trained-example-{}",
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        train_config(Path::new("training/telco.toml"), &dir.join("telco"), &[]);
        dir
    })
}

/// Remove `churn-serve-trained-PID` directories of test processes that are gone (Linux: checked
/// in /proc; elsewhere nothing is removed).
fn remove_stale_trained_dirs(tmp: &Path) {
    if !Path::new("/proc/self").exists() {
        return;
    }
    let Ok(entries) = std::fs::read_dir(tmp) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let Some(pid) = name
            .strip_prefix("churn-serve-trained-example-")
            .or_else(|| name.strip_prefix("churn-serve-trained-"))
        else {
            continue;
        };
        if pid.parse::<u32>().is_ok() && !Path::new("/proc").join(pid).exists() {
            let _ = std::fs::remove_dir_all(e.path());
        }
    }
}

/// A copy of the trained models directory that a test may change, in the single-directory
/// layout (`DIR/telco/model.bin`) that older deployments have and that still loads.
pub(crate) fn models_copy(tag: &str) -> PathBuf {
    let src = trained();
    let dst = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("churn-serve-{tag}"));
    let _ = std::fs::remove_dir_all(&dst);
    std::fs::create_dir_all(dst.join("telco")).unwrap();
    for f in ["model.bin", "model_card.json"] {
        std::fs::copy(
            champion_dir(&src.join("telco")).join(f),
            dst.join("telco").join(f),
        )
        .unwrap();
    }
    dst
}

/// A running `churn-serve`, killed when dropped.
pub(crate) struct Server {
    /// The server process.
    pub(crate) child: Child,
    /// `host:port` it listens on.
    pub(crate) addr: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The `churn-serve` command on a free loopback port (unless `extra` binds one) with the models in `models`, `extra` flags
/// and `env` variables (the store, token and default-model variables of the caller's environment
/// are not inherited); stderr piped.
pub(crate) fn serve_command(models: &Path, extra: &[&str], env: &[(&str, &str)]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_churn-serve"));
    cmd.args(["--models", models.to_str().unwrap()]);
    if !extra.contains(&"--bind") {
        cmd.args(["--bind", "127.0.0.1:0"]);
    }
    if !extra.contains(&"--workers") {
        cmd.args(["--workers", "2"]);
    }
    cmd.args(extra)
        .env_remove("CHURN_API_TOKENS")
        .env_remove("CHURN_SCORE_TOKENS")
        .env_remove("CHURN_READ_TOKENS")
        .env_remove("CHURN_OUTCOMES_TOKENS")
        .env_remove("CHURN_ADMIN_TOKEN")
        .env_remove("CHURN_STORE")
        .env_remove("CHURN_ID_KEY")
        .env_remove("CHURN_DEFAULT_MODEL")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd
}

/// Start `churn-serve` ([`serve_command`]) and wait until it listens.
pub(crate) fn start(models: &Path, extra: &[&str], env: &[(&str, &str)]) -> Server {
    listening(serve_command(models, extra, env))
}

/// Spawn a `churn-serve` command (its stderr is piped here) and wait until it prints the address
/// it listens on; what it printed before is in the panic when it stops first. The rest of its
/// stderr is drained on a thread.
pub(crate) fn listening(mut cmd: Command) -> Server {
    let mut child = cmd.stderr(Stdio::piped()).spawn().unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let mut seen = Vec::new();
    let addr = loop {
        let Some(Ok(line)) = lines.next() else {
            let _ = child.kill();
            let _ = child.wait();
            panic!("churn-serve stopped before listening:\n{}", seen.join("\n"));
        };
        if let Some(a) = line.strip_prefix("churn-serve listening on http://") {
            break a.trim().to_string();
        }
        seen.push(line);
    };
    std::thread::spawn(move || for _ in lines {});
    Server { child, addr }
}

/// Send `signal` (`TERM`, `INT`, `HUP`, …) to a child process.
pub(crate) fn signal(child: &Child, signal: &str) {
    let status = Command::new("kill")
        .args([&format!("-{signal}"), &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success(), "kill -{signal} failed");
}

/// Wait for `child` to exit; after `timeout` it is killed and the test fails naming `what`.
pub(crate) fn wait_exit(
    child: &mut Child,
    timeout: Duration,
    what: &str,
) -> std::process::ExitStatus {
    let started = std::time::Instant::now();
    loop {
        if let Some(st) = child.try_wait().unwrap() {
            return st;
        }
        if started.elapsed() > timeout {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{what}: still running after {timeout:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Rows of `table` in the store at `url`.
pub(crate) fn count_rows(url: &str, table: &str) -> i64 {
    let store = churn::store::Store::open(
        &churn::store::StoreUrl::parse(url).unwrap(),
        churn::store::IdKey::new(None),
    )
    .unwrap()
    .unwrap();
    let pool = store.pool();
    let sql = format!("SELECT COUNT(*) FROM {table}");
    store
        .block_on(async move {
            sqlx::query_scalar::<_, i64>(sqlx::AssertSqlSafe(sql))
                .fetch_one(&pool)
                .await
        })
        .unwrap()
}

/// An HTTP response: status and body text.
pub(crate) struct Resp {
    /// Status code (0 when the response could not be read).
    pub(crate) status: u16,
    /// Body text.
    pub(crate) body: String,
}

impl Resp {
    /// The body as JSON; panics with the body when it is not JSON.
    pub(crate) fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }
}

/// One HTTP/1.1 request over a fresh connection (`Connection: close`), read to the end.
pub(crate) fn http(
    addr: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Resp {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes()).unwrap();
    let _ = s.write_all(body);
    let mut buf = Vec::new();
    let _ = s.read_to_end(&mut buf);
    let text = String::from_utf8_lossy(&buf).into_owned();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = text
        .split_once("\r\n\r\n")
        .map(|x| x.1.to_string())
        .unwrap_or_default();
    Resp { status, body }
}

/// POST `body` as JSON.
pub(crate) fn post(addr: &str, path: &str, body: &Value) -> Resp {
    post_raw(addr, path, body.to_string().as_bytes())
}

/// POST JSON text exactly as given (escapes, repeated keys, sizes a `Value` would not keep).
pub(crate) fn post_raw(addr: &str, path: &str, body: &[u8]) -> Resp {
    http(
        addr,
        "POST",
        path,
        &[("Content-Type", "application/json")],
        body,
    )
}

/// The text of `col` in row `r` of a table read with `churn::io::read_table` (empty when missing).
pub(crate) fn cell(table: &churn::io::RawTable, col: &str, r: usize) -> String {
    table
        .column(col)
        .unwrap()
        .data
        .get(r)
        .to_text()
        .unwrap_or_default()
}

/// The first `n` rows of the Telco sample as JSON customers, every cell as text (null when empty).
pub(crate) fn telco_customers(n: usize) -> Vec<Value> {
    let table = churn::io::read_table(&telco(), None).unwrap();
    (0..n)
        .map(|r| {
            let mut o = serde_json::Map::new();
            for c in &table.columns {
                o.insert(
                    c.name.clone(),
                    c.data.get(r).to_text().map_or(Value::Null, Value::String),
                );
            }
            Value::Object(o)
        })
        .collect()
}

/// What [`run_measured`] saw of a run.
#[cfg(target_os = "linux")]
pub(crate) struct Measured {
    /// Exit code (-1 when killed by a signal).
    pub code: i32,
    /// Standard error.
    pub stderr: String,
    /// Peak resident set of the child (VmHWM) in bytes, as last read before it exited.
    pub peak_rss: u64,
    /// Wall time.
    pub elapsed: Duration,
}

/// Run `churn-train` with `args`, sampling the child's peak RSS (`VmHWM` in
/// `/proc/PID/status`, a high-water mark the kernel keeps, read every 2 ms until the child
/// exits — so at most the last 2 ms of growth go unseen) and killing it after `timeout` (the
/// test then fails instead of hanging). Output is drained on threads so a flood of stderr
/// cannot block the child.
#[cfg(target_os = "linux")]
pub(crate) fn run_measured(args: &[&str], timeout: Duration) -> Measured {
    let started = std::time::Instant::now();
    let mut child = Command::new(env!("CARGO_BIN_EXE_churn-train"))
        .args(args)
        .current_dir(root())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("binary runs");
    let mut err_pipe = child.stderr.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut s = Vec::new();
        let _ = err_pipe.read_to_end(&mut s);
        s
    });
    let mut peak_kb = 0u64;
    let status = loop {
        if let Some(kb) = proc_kb(child.id(), "VmHWM:") {
            peak_kb = peak_kb.max(kb);
        }
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > timeout {
            let _ = child.kill();
            let _ = child.wait();
            panic!("churn-train {args:?} still running after {timeout:?}: killed");
        }
        std::thread::sleep(Duration::from_millis(2));
    };
    let elapsed = started.elapsed();
    let stderr = String::from_utf8_lossy(&reader.join().unwrap()).into_owned();
    Measured {
        code: status.code().unwrap_or(-1),
        stderr,
        peak_rss: peak_kb << 10,
        elapsed,
    }
}

/// A number from `/proc/PID/status` in kB (`VmRSS`, `VmHWM`); `None` once the process is gone.
pub(crate) fn proc_kb(pid: u32, key: &str) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    s.lines()
        .find_map(|l| l.strip_prefix(key))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

/// `churn-train features` arguments for the transaction log `p` (columns customer_id, date,
/// amount) written to `out`.
pub(crate) fn features_args<'a>(p: &'a std::path::Path, out: &'a str) -> Vec<&'a str> {
    let log = p.to_str().unwrap();
    vec![
        "features",
        "--transactions",
        log,
        "--customer-col",
        "customer_id",
        "--time-col",
        "date",
        "--amount-col",
        "amount",
        "--output",
        out,
    ]
}

/// `churn-train simulate`: a campaign of `customers` Telco customers scored by the test model
/// ([`trained`]) into the store at `url`.
pub(crate) fn simulate_into(url: &str, customers: usize) {
    let model = trained().join("telco");
    let (code, _, err) = run(
        "churn-train",
        &[
            "simulate",
            "--model",
            model.to_str().unwrap(),
            "--store",
            url,
            "--input",
            telco().to_str().unwrap(),
            "--customers",
            &customers.to_string(),
        ],
    );
    assert_eq!(code, 0, "{err}");
}
