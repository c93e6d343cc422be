//! Runs README.md's command blocks as a reader would: in a scratch directory beside the bundled
//! `training/` folder, with the three binaries (and the `synth` example) on `PATH`, and compares
//! what they print with the output the README shows under them.
//!
//! - `sh` blocks: each command (a line, its `\` continuations and quoted line breaks) runs in
//!   `bash`; comment lines are skipped. `cargo run --release --bin X` and `./target/release/X`
//!   become `X`; `cargo test` is this test suite and is not run again.
//! - `console` blocks: each `$ ` line is a command; the lines under it are its output. `$ cat
//!   FILE` with output writes FILE first (the README shows the file it uses).
//! - `churn-serve` starts in the background on a free port (`--bind 127.0.0.1:0` added) and
//!   `localhost:8080` in later commands becomes that port; `kill -HUP` reaches it through its pid
//!   file.
//! - Synopses (`[--flag …]`) run with the optional parts left out (and the first of `a|b|c`),
//!   unless a placeholder (`URL`, `DIR`, …) remains; every flag they name must be in the
//!   command's `--help`.
//! - Every `curl` must answer below 400 unless the README shows an error body for it.
//! - Shown text matches line by line: `…` (alone on a line) skips lines, `…` in a line matches any
//!   text, version ids (12 hex digits) are learned on first sight and substituted into later
//!   commands, timestamps match any timestamp. Shown JSON matches key by key: every `"key":
//!   value` shown is in the answer, numbers to the shown decimals.

use crate::util::{listening, root, Server};
use regex::Regex;
use serde_json::Value;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// A fenced block of the README.
#[derive(Debug, Clone)]
pub(crate) struct Block {
    /// Line of the opening fence (1-based).
    pub(crate) line: usize,
    /// The fence's language (`sh`, `console`, `text`, `json`, …; empty when none).
    pub(crate) lang: String,
    /// The lines between the fences.
    pub(crate) body: String,
    /// Line of the closing fence.
    end: usize,
}

/// Every fenced block of README.md.
pub(crate) fn blocks() -> Vec<Block> {
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    let mut out = Vec::new();
    let mut open: Option<(usize, String, Vec<&str>)> = None;
    for (i, line) in readme.lines().enumerate() {
        match (&mut open, line.strip_prefix("```")) {
            (None, Some(lang)) => open = Some((i + 1, lang.trim().to_string(), Vec::new())),
            (Some(_), Some(_)) => {
                let (line, lang, body) = open.take().unwrap();
                out.push(Block {
                    line,
                    lang,
                    body: body.join("\n"),
                    end: i + 1,
                });
            }
            (Some((_, _, body)), None) => body.push(line),
            (None, None) => {}
        }
    }
    out
}

/// The blocks a reader runs: shell, console and Python.
pub(crate) fn command_blocks() -> Vec<Block> {
    blocks()
        .into_iter()
        .filter(|b| matches!(b.lang.as_str(), "sh" | "console" | "python"))
        .collect()
}

/// The one command block containing `needle`, and the output block right under it, if any.
pub(crate) fn find(needle: &str) -> (Block, Option<Block>) {
    let all = blocks();
    let hits: Vec<usize> = (0..all.len())
        .filter(|&i| {
            matches!(all[i].lang.as_str(), "sh" | "console" | "python")
                && all[i].body.contains(needle)
        })
        .collect();
    assert_eq!(
        hits.len(),
        1,
        "README: {} command blocks contain {needle:?}",
        hits.len()
    );
    let i = hits[0];
    let output = all
        .get(i + 1)
        .filter(|n| n.line <= all[i].end + 2 && matches!(n.lang.as_str(), "" | "text" | "json"))
        .cloned();
    (all[i].clone(), output)
}

/// One command of a block and the output the README shows for it (console blocks).
#[derive(Debug)]
struct Step {
    cmd: String,
    shown: Vec<String>,
}

/// Split an `sh` block into commands: continuation lines and open quotes join lines, comment
/// lines are dropped, `a && b` runs as two commands.
fn sh_commands(body: &str) -> Vec<String> {
    let mut cmds = Vec::new();
    let mut cur = String::new();
    for line in body.lines() {
        if cur.is_empty() && (line.trim().is_empty() || line.trim_start().starts_with('#')) {
            continue;
        }
        // an indented line continues the command above (synopses wrap that way)
        if cur.is_empty() && line.starts_with(' ') {
            cur = cmds.pop().expect("README: a block starts indented");
        }
        if !cur.is_empty() {
            cur.push('\n');
        }
        cur.push_str(line);
        let open_quote = cur.matches('\'').count() % 2 == 1;
        if !open_quote && !cur.ends_with('\\') {
            cmds.extend(cur.split(" && ").map(str::to_string));
            cur.clear();
        }
    }
    assert!(cur.is_empty(), "README: unterminated command {cur:?}");
    cmds
}

/// Split a `console` block into `$ ` commands and the output under each.
fn console_steps(body: &str) -> Vec<Step> {
    let mut steps: Vec<Step> = Vec::new();
    let mut continued = false;
    for line in body.lines() {
        if let Some(cmd) = line.strip_prefix("$ ") {
            steps.push(Step {
                cmd: cmd.to_string(),
                shown: Vec::new(),
            });
            continued = cmd.ends_with('\\');
        } else if continued {
            let last = steps.last_mut().unwrap();
            last.cmd.push('\n');
            last.cmd.push_str(line);
            continued = line.ends_with('\\');
        } else {
            let last = steps.last_mut().expect("console output before a command");
            last.shown.push(line.to_string());
        }
    }
    steps
}

/// A scratch directory where README commands run one after another, as in one terminal.
pub(crate) struct Session {
    /// The scratch directory (the reader's working directory).
    pub(crate) dir: tempfile::TempDir,
    env: Vec<(String, String)>,
    /// The server a block started (killed when replaced or when the session ends).
    server: Option<Server>,
    /// README version id → the id this run produced.
    ids: HashMap<String, String>,
    /// Extra text substitutions (README text → this run's), e.g. a database name.
    subs: Vec<(String, String)>,
}

/// The directory of the test binaries (`target/release/deps`) → the build directory.
fn build_dir() -> PathBuf {
    Path::new(env!("CARGO_BIN_EXE_churn-train"))
        .parent()
        .unwrap()
        .to_path_buf()
}

impl Session {
    /// A scratch directory holding `training` (a link to the repository's) and a `bin` folder
    /// with the binaries; `extra_path` goes on `PATH` too (a Python venv's `bin`).
    pub(crate) fn new(extra_path: Option<&Path>) -> Session {
        let dir = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink(root().join("training"), dir.path().join("training")).unwrap();
        let bin = dir.path().join(".bin");
        std::fs::create_dir(&bin).unwrap();
        for b in ["churn-train", "churn-score", "churn-serve"] {
            std::os::unix::fs::symlink(build_dir().join(b), bin.join(b)).unwrap();
        }
        let synth = build_dir().join("examples/synth");
        if synth.exists() {
            std::os::unix::fs::symlink(synth, bin.join("synth")).unwrap();
        }
        // every curl reports its status on stderr, where the runner reads it
        std::fs::write(
            dir.path().join(".curlrc"),
            "write-out = \"%{stderr}HTTP %{http_code}\\n\"\n",
        )
        .unwrap();
        let mut path = bin.display().to_string();
        if let Some(p) = extra_path {
            path = format!("{path}:{}", p.display());
        }
        path = format!("{path}:{}", std::env::var("PATH").unwrap_or_default());
        let env = vec![
            ("PATH".into(), path),
            ("HOME".into(), dir.path().display().to_string()),
            ("USER".into(), "ann".into()),
            ("TOKEN".into(), "readme-score-token".into()),
            ("CHURN_ADMIN_TOKEN".into(), "readme-admin-token".into()),
            ("PGHOST".into(), "127.0.0.1".into()),
            ("PGUSER".into(), "postgres".into()),
        ];
        Session {
            dir,
            env,
            server: None,
            ids: HashMap::new(),
            subs: Vec::new(),
        }
    }

    /// Replace `from` by `to` in every later command (before the server address is filled in).
    pub(crate) fn substitute(&mut self, from: &str, to: &str) {
        self.subs.push((from.to_string(), to.to_string()));
    }

    /// Record that the README's version `readme` is `real` in this run.
    pub(crate) fn map_id(&mut self, readme: &str, real: &str) {
        self.ids.insert(readme.to_string(), real.to_string());
    }

    /// Path inside the scratch directory.
    pub(crate) fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// The command as this run types it.
    fn rewrite(&self, cmd: &str) -> String {
        let mut c = cmd.to_string();
        for (from, to) in &self.subs {
            c = c.replace(from, to);
        }
        for bin in ["churn-train", "churn-score", "churn-serve"] {
            c = c.replace(&format!("cargo run --release --bin {bin} --"), bin);
            c = c.replace(&format!("cargo run --release --bin {bin}"), bin);
        }
        c = c.replace("cargo run --release --example synth --", "synth");
        c = c.replace("./target/release/", "");
        if let Some(Server { addr, .. }) = &self.server {
            c = c.replace("localhost:8080", addr);
            c = c.replace("127.0.0.1:8080", addr);
        }
        for (from, to) in &self.ids {
            c = c.replace(from, to);
        }
        c
    }

    /// Run a hidden setup command (not in the README), which must succeed; returns its output.
    pub(crate) fn setup(&mut self, cmd: &str) -> String {
        let (code, out, err) = self.shell(cmd);
        assert_eq!(code, 0, "setup `{cmd}` failed:\n{out}{err}");
        out
    }

    /// Run `cmd` in bash in the scratch directory: (exit code, stdout, stderr); ten minutes at
    /// most.
    fn shell(&self, cmd: &str) -> (i32, String, String) {
        let dir = self.dir.path();
        eprintln!("$ {cmd}"); // shown with --nocapture and when a test fails
        let (out, err) = (dir.join(".stdout"), dir.join(".stderr"));
        let mut child = Command::new("bash")
            .args(["-o", "pipefail", "-c", cmd])
            .current_dir(dir)
            .env_remove("CHURN_STORE")
            .env_remove("CHURN_DEFAULT_MODEL")
            .env_remove("RUST_LOG")
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&out).unwrap())
            .stderr(std::fs::File::create(&err).unwrap())
            .spawn()
            .unwrap();
        let start = Instant::now();
        let status = loop {
            if let Some(s) = child.try_wait().unwrap() {
                break s;
            }
            if start.elapsed() > Duration::from_secs(600) {
                let _ = child.kill();
                panic!("README command ran over ten minutes: {cmd}");
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let read = |p: &Path| String::from_utf8_lossy(&std::fs::read(p).unwrap()).into_owned();
        (status.code().unwrap_or(-1), read(&out), read(&err))
    }

    /// Start `churn-serve` as the README line says, in the background on a free port.
    pub(crate) fn serve(&mut self, cmd: &str) {
        self.server = None;
        let mut c = self.rewrite(cmd);
        if let Some(i) = c.find(" #") {
            c.truncate(i);
        }
        let c = c.trim().trim_end_matches('&').trim().to_string();
        let c = if c.contains("--bind") {
            c
        } else {
            format!("{c} --bind 127.0.0.1:0")
        };
        let mut cmd = Command::new("bash");
        cmd.args(["-c", &format!("exec {c}")])
            .current_dir(self.dir.path())
            .env_remove("CHURN_STORE")
            .env_remove("CHURN_DEFAULT_MODEL")
            .env_remove("CHURN_API_TOKENS")
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null());
        self.server = Some(listening(cmd)); // the one before is stopped when dropped
    }

    /// Run the README block containing `needle` and compare its output; returns each command's
    /// stdout.
    pub(crate) fn block(&mut self, needle: &str) -> Vec<String> {
        let (block, output) = find(needle);
        let at = format!("README.md:{}", block.line);
        match block.lang.as_str() {
            "console" => console_steps(&block.body)
                .into_iter()
                .map(|step| self.step(&at, &step.cmd, &step.shown))
                .collect(),
            "sh" => {
                let cmds = sh_commands(&block.body);
                let mut outs = Vec::new();
                let mut text = String::new();
                for cmd in &cmds {
                    let out = self.step(&at, cmd, &[]);
                    if !cmd.contains("curl ") {
                        text.push_str(&out);
                    }
                    outs.push(out);
                }
                if let Some(shown) = output {
                    let shown: Vec<String> = shown.body.lines().map(str::to_string).collect();
                    if shown.first().is_some_and(|l| l.starts_with('{')) {
                        let answer = outs
                            .iter()
                            .rev()
                            .find(|o| o.trim_start().starts_with('{'))
                            .unwrap_or_else(|| panic!("{at}: no command printed JSON"));
                        self.match_json(&at, &shown.join("\n"), answer);
                    } else {
                        self.match_text(&at, &shown, &text);
                    }
                }
                outs
            }
            other => panic!("{at}: a {other} block is run by its own test"),
        }
    }

    /// Run one command; check its status (and its curl answers); compare with `shown` (console
    /// blocks). Returns stdout.
    fn step(&mut self, at: &str, cmd: &str, shown: &[String]) -> String {
        let at = format!("{at} `{}`", cmd.lines().next().unwrap_or(""));
        if cmd.trim_start().starts_with("cargo test") {
            return String::new(); // this test suite
        }
        if let Some(file) = cmd.strip_prefix("cat ").filter(|_| !shown.is_empty()) {
            let text = shown.join("\n") + "\n";
            std::fs::write(self.path(file.trim()), text).unwrap();
        }
        let run = if cmd.contains("[--") {
            match self.synopsis(&at, cmd) {
                Some(c) => c,
                None => return String::new(),
            }
        } else {
            self.rewrite(cmd)
        };
        if run.trim_start().starts_with("churn-serve") {
            self.serve(&run);
            return String::new();
        }
        let error_shown = shown.iter().any(|l| l.contains("\"error\""));
        let assigned = Regex::new(r"^([A-Z_]+)=\$\(").unwrap();
        let var = assigned.captures(&run).map(|c| c[1].to_string());
        let run = match &var {
            Some(v) => format!("{run}\nprintf '%s' \"${v}\" > .var"),
            None => run,
        };
        // an answer that depends on background work (shadow scoring) may need a moment: a
        // request that changes nothing is asked again for up to 15 s
        let retry = cmd.starts_with("curl") && !cmd.contains("-d ") && !cmd.contains("-X ");
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let attempt = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                let (code, out, err) = if cmd.contains("curl ") {
                    self.shell(&run)
                } else {
                    self.shell(&format!("{{ {run}\n}} 2>&1"))
                };
                assert_eq!(code, 0, "{at} failed ({code}):\n{out}{err}");
                for status in err.lines().filter_map(|l| l.strip_prefix("HTTP ")) {
                    let s: u16 = status.trim().parse().unwrap_or(0);
                    assert!(
                        (200..400).contains(&s) || error_shown,
                        "{at}: HTTP {s}\n{out}"
                    );
                }
                let mut ids = self.ids.clone();
                if shown.first().is_some_and(|l| l.starts_with('{')) {
                    match_json_with(&mut ids, &at, &shown.join("\n"), &out);
                } else if !shown.is_empty() {
                    match_text_with(&mut ids, &at, shown, &out);
                }
                (ids, out)
            }));
            match attempt {
                Ok((ids, out)) => {
                    self.ids = ids;
                    if let Some(v) = var {
                        let value = std::fs::read_to_string(self.path(".var")).unwrap();
                        self.env.push((v, value));
                    }
                    return out;
                }
                Err(e) if !retry || Instant::now() > deadline => std::panic::resume_unwind(e),
                Err(_) => std::thread::sleep(Duration::from_millis(300)),
            }
        }
    }

    /// A synopsis: every flag it names is in `--help`; the command with the optional parts
    /// left out when nothing in it is a placeholder, else `None`.
    fn synopsis(&self, at: &str, cmd: &str) -> Option<String> {
        let c = self.rewrite(cmd).replace("\\\n", " ");
        let words: Vec<&str> = c
            .split_whitespace()
            .take_while(|w| !w.starts_with('-') && !w.starts_with('['))
            .collect();
        let (_, help, _) = self.shell(&format!("{} --help", words.join(" ")));
        for flag in Regex::new(r"--[a-z][a-z0-9-]*").unwrap().find_iter(&c) {
            assert!(
                help.contains(flag.as_str()),
                "{at}: {} is not in `{} --help`",
                flag.as_str(),
                words.join(" ")
            );
        }
        let bare = Regex::new(r"\[[^\]]*\]").unwrap().replace_all(&c, "");
        let bare: Vec<String> = bare
            .split_whitespace()
            .map(|w| match w.split_once('|') {
                Some((first, _)) if !w.contains('\'') && !w.contains('"') => first.to_string(),
                _ => w.to_string(),
            })
            .collect();
        let placeholder = Regex::new(r"^[A-Z][A-Z_]*(\.[a-z]+)?$").unwrap();
        if bare.iter().any(|w| placeholder.is_match(w)) {
            return None;
        }
        Some(bare.join(" "))
    }

    /// `shown` (README text) matches `printed`.
    pub(crate) fn match_text(&mut self, at: &str, shown: &[String], printed: &str) {
        match_text_with(&mut self.ids, at, shown, printed);
    }

    /// Every `"key": value` of `shown` (README JSON, possibly cut with `…`) is in `printed`.
    pub(crate) fn match_json(&mut self, at: &str, shown: &str, printed: &str) {
        match_json_with(&mut self.ids, at, shown, printed);
    }
}

const HEX: &str = r"\b[0-9a-f]{12}\b";
const TIME: &str = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?Z";

/// A shown line as a pattern: `…` any text, version ids learned or substituted, timestamps any.
fn line_pattern(ids: &HashMap<String, String>, shown: &str) -> (Regex, Vec<String>) {
    static TOKEN: std::sync::OnceLock<Regex> = std::sync::OnceLock::new();
    let token = TOKEN.get_or_init(|| Regex::new(&format!("(…)|({HEX})|({TIME})")).unwrap());
    let mut pat = String::from("^");
    let mut captured = Vec::new();
    let mut last = 0;
    for m in token.find_iter(shown) {
        pat.push_str(&regex::escape(&shown[last..m.start()]));
        let t = m.as_str();
        if t == "…" {
            pat.push_str(".*?");
        } else if t.len() == 12 {
            // a version id (a timestamp is longer)
            match ids.get(t) {
                Some(real) => pat.push_str(&regex::escape(real)),
                None => {
                    pat.push_str("([0-9a-f]{12})");
                    captured.push(t.to_string());
                }
            }
        } else {
            pat.push_str(TIME);
        }
        last = m.end();
    }
    pat.push_str(&regex::escape(&shown[last..]));
    pat.push('$');
    (Regex::new(&pat).unwrap(), captured)
}

/// Try to match one line; on success the ids it shows are learned.
fn line_matches(ids: &mut HashMap<String, String>, shown: &str, printed: &str) -> bool {
    let (re, captured) = line_pattern(ids, shown.trim_end());
    let Some(caps) = re.captures(printed.trim_end()) else {
        return false;
    };
    let learned: Vec<(String, String)> = captured
        .iter()
        .zip(caps.iter().skip(1))
        .filter_map(|(r, c)| Some((r.clone(), c?.as_str().to_string())))
        .collect();
    // one README id is one id of this run, wherever it appears
    if learned
        .iter()
        .any(|(r, c)| learned.iter().any(|(r2, c2)| (r == r2) != (c == c2)))
        || learned
            .iter()
            .any(|(r, c)| ids.iter().any(|(r2, c2)| r != r2 && c == c2))
    {
        return false;
    }
    ids.extend(learned);
    true
}

fn match_text_with(ids: &mut HashMap<String, String>, at: &str, shown: &[String], printed: &str) {
    let printed: Vec<&str> = printed.lines().collect();
    let chunks: Vec<Vec<&String>> = shown
        .split(|l| l.trim() == "…")
        .map(|c| c.iter().collect())
        .filter(|c: &Vec<&String>| !c.is_empty())
        .collect();
    let mut from = 0;
    for chunk in &chunks {
        // the chunk's first line, compiled once: only where it matches is the chunk tried
        let (first, _) = line_pattern(ids, chunk[0].trim_end());
        let found = (from..printed.len()).find(|&start| {
            if !first.is_match(printed[start].trim_end()) {
                return false;
            }
            let mut trial = ids.clone();
            let ok = start + chunk.len() <= printed.len()
                && chunk
                    .iter()
                    .zip(&printed[start..])
                    .all(|(s, p)| line_matches(&mut trial, s, p));
            if ok {
                *ids = trial;
            }
            ok
        });
        match found {
            Some(start) => from = start + chunk.len(),
            None => panic!(
                "{at}: the README shows\n{}\nbut the command printed\n{}",
                chunk
                    .iter()
                    .map(|s| s.as_str())
                    .collect::<Vec<_>>()
                    .join("\n"),
                printed.join("\n")
            ),
        }
    }
}

/// Scalars of a JSON value by key, at any depth.
fn flatten(v: &Value, out: &mut Vec<(String, Value)>) {
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                if !x.is_object() && !x.is_array() {
                    out.push((k.clone(), x.clone()));
                }
                flatten(x, out);
            }
        }
        Value::Array(a) => a.iter().for_each(|x| flatten(x, out)),
        _ => {}
    }
}

fn match_json_with(ids: &mut HashMap<String, String>, at: &str, shown: &str, printed: &str) {
    let answer: Value = serde_json::from_str(printed.trim())
        .unwrap_or_else(|e| panic!("{at}: not JSON ({e}):\n{printed}"));
    let mut live = Vec::new();
    flatten(&answer, &mut live);
    let pair =
        Regex::new(r#""([A-Za-z_]+)":\s*(-?\d+(?:\.\d+)?|"(?:[^"\\]|\\.)*"|true|false|null)"#)
            .unwrap();
    // a customer explores on some days ([learning] explore, drawn per customer and day): the
    // drawn action leads with the draw's propensity, the rest is as shown
    let explores = live.iter().any(|(k, v)| k == "policy" && v == "explore");
    for c in pair.captures_iter(shown) {
        let (key, text) = (&c[1], &c[2]);
        if explores && (key == "policy" || key == "propensity") {
            continue;
        }
        let candidates: Vec<&Value> = live
            .iter()
            .filter(|(k, _)| k == key)
            .map(|(_, v)| v)
            .collect();
        assert!(!candidates.is_empty(), "{at}: no \"{key}\" in\n{printed}");
        let number = |v: &Value| v.as_f64().or_else(|| v.as_str()?.parse().ok());
        let ok = if let Ok(n) = text.parse::<f64>() {
            let decimals = text.split_once('.').map_or(0, |(_, d)| d.len());
            let tolerance = 0.5 * 10f64.powi(-(decimals as i32)) + 1e-9;
            candidates
                .iter()
                .any(|v| number(v).is_some_and(|x| (x - n).abs() <= tolerance))
        } else if text.starts_with('"') {
            let s: String = serde_json::from_str(text).unwrap();
            candidates
                .iter()
                .any(|v| v.as_str().is_some_and(|x| line_matches(ids, &s, x)))
        } else {
            let want: Value = serde_json::from_str(text).unwrap();
            candidates.iter().any(|v| **v == want)
        };
        assert!(
            ok,
            "{at}: the README shows \"{key}\": {text}, the answer has {candidates:?}"
        );
    }
}

/// The comparison fails on what a reader would notice: a changed number, a missing line, one
/// README version that turns out to be two different versions, a JSON value or key that differs.
#[test]
fn the_runner_refuses_output_the_readme_does_not_show() {
    let refused = |f: &dyn Fn()| std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).is_err();
    let shown: Vec<String> = [
        "wrote models/telco/versions/93a628e07948; it is the champion",
        "…",
        "  93a628e07948  auc 0.8241 (…)",
    ]
    .map(str::to_string)
    .to_vec();
    let good = "log line\nwrote models/telco/versions/abcdefabcdef; it is the champion\nmore\n  abcdefabcdef  auc 0.8241 (on 1409 rows)\n";
    let mut ids = HashMap::new();
    match_text_with(&mut ids, "t", &shown, good);
    assert_eq!(ids["93a628e07948"], "abcdefabcdef");
    for bad in [
        good.replace("0.8241", "0.8242"),
        good.replace("more\n  abcdefabcdef  auc 0.8241 (on 1409 rows)\n", ""),
        good.replace("  abcdefabcdef  auc", "  0123456789ab  auc"),
    ] {
        assert!(
            refused(&|| match_text_with(&mut HashMap::new(), "t", &shown, &bad)),
            "{bad}"
        );
    }
    let shown = r#"{"results": [{"churn_probability": 0.532, "risk_band": "medium", "why": "rule 'x'; …"}]}"#;
    let good = r#"{"results": [{"churn_probability": 0.5324, "risk_band": "medium", "why": "rule 'x'; risk drivers: y"}]}"#;
    match_json_with(&mut HashMap::new(), "t", shown, good);
    for bad in [
        good.replace("0.5324", "0.5336"),
        good.replace("medium", "high"),
        good.replace("rule 'x'", "rule 'z'"),
        good.replace("\"risk_band\"", "\"band\""),
    ] {
        assert!(
            refused(&|| match_json_with(&mut HashMap::new(), "t", shown, &bad)),
            "{bad}"
        );
    }
}

/// Commands are split as a shell reads them: continuations, quoted line breaks, comments,
/// `&&`, and wrapped synopses.
#[test]
fn blocks_split_into_the_commands_a_shell_runs() {
    let cmds = sh_commands(
        "# a comment\ncurl -s x -d '{\n  \"a\": 1}'\na \\\n  --b && c\nsynopsis [--x]\n    [--y]\n",
    );
    assert_eq!(
        cmds,
        [
            "curl -s x -d '{\n  \"a\": 1}'",
            "a \\\n  --b",
            "c",
            "synopsis [--x]\n    [--y]"
        ]
    );
    let steps = console_steps("$ cat f.toml\n[x]\n$ run \\\n  --a\nout\n");
    assert_eq!(steps[0].cmd, "cat f.toml");
    assert_eq!(steps[0].shown, ["[x]"]);
    assert_eq!(steps[1].cmd, "run \\\n  --a");
    assert_eq!(steps[1].shown, ["out"]);
}
