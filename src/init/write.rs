//! The commented `churn.toml` and `playbook.toml` that `churn-train init` writes: each key with
//! the decision behind it, assumptions marked as such.

use super::{Decision, Roles};
use crate::playbook::{PlaybookFile, Rule};
use std::fmt::Write as _;
use std::path::{Component, Path, PathBuf};

/// `s` as a TOML string (quotes and control characters escaped).
fn q(s: &str) -> String {
    toml::Value::String(s.to_string()).to_string()
}

/// A list of TOML strings.
fn list(v: &[String]) -> String {
    format!(
        "[{}]",
        v.iter().map(|s| q(s)).collect::<Vec<_>>().join(", ")
    )
}

/// A comment line (no line breaks inside).
fn comment(s: &str) -> String {
    s.replace(['\n', '\r'], " ")
}

/// A number as TOML (always with a decimal point or exponent when not whole, so it reads back
/// as the same float).
fn num(x: f64) -> String {
    toml::Value::Float(x).to_string()
}

/// `target` relative to the directory `from` (both made absolute), e.g. `../data/x.csv`.
pub fn relative_path(target: &Path, from: &Path) -> PathBuf {
    let abs = |p: &Path| {
        std::fs::canonicalize(p).unwrap_or_else(|_| {
            std::env::current_dir()
                .map(|d| d.join(p))
                .unwrap_or_else(|_| p.to_path_buf())
        })
    };
    let (t, f) = (abs(target), abs(from));
    let tc: Vec<Component> = t.components().collect();
    let fc: Vec<Component> = f.components().collect();
    let common = tc.iter().zip(&fc).take_while(|(a, b)| a == b).count();
    if common == 0 {
        return t;
    }
    let mut out = PathBuf::new();
    for _ in common..fc.len() {
        out.push("..");
    }
    for c in &tc[common..] {
        out.push(c.as_os_str());
    }
    out
}

/// The decisions about `subject`, as comment text.
fn why_of(decisions: &[Decision], topic: &str, subject: &str) -> Option<String> {
    decisions
        .iter()
        .find(|d| d.topic == topic && d.subject == subject)
        .map(|d| comment(&d.why))
}

/// The training config for a table whose roles are `roles`, its label value `positive`,
/// stored at `data_path` (written relative to `config_dir`).
pub fn write_config(
    name: &str,
    roles: &Roles,
    positive: &str,
    data_path: &Path,
    config_dir: &Path,
    revenue_column: Option<&str>,
) -> String {
    let mut s = String::new();
    let rel = relative_path(data_path, config_dir);
    let _ = writeln!(
        s,
        "# Training configuration written by `churn-train init`; edit freely."
    );
    let _ = writeln!(
        s,
        "# Train with: churn-train --config {}",
        q("churn.toml").trim_matches('"')
    );
    let _ = writeln!(s, "name = {}", q(name));
    let _ = writeln!(s, "seed = 42");
    let _ = writeln!(
        s,
        "playbook = \"playbook.toml\"   # retention playbook (relative to this file)\n"
    );
    let _ = writeln!(s, "[data]");
    let _ = writeln!(
        s,
        "path = {}   # relative to this file",
        q(&rel.display().to_string())
    );
    let why = why_of(&roles.decisions, "label", &roles.label).unwrap_or_default();
    let _ = writeln!(s, "label = {}   # {why}", q(&roles.label));
    let _ = writeln!(
        s,
        "positive = {}   # the label value that means churn",
        q(positive)
    );
    match &roles.id {
        Some(id) => {
            let why = why_of(&roles.decisions, "id", id).unwrap_or_default();
            let _ = writeln!(s, "id = {}   # {why}", q(id));
        }
        None => {
            let _ = writeln!(
                s,
                "# id: no column has a different value on every row and an id-like name"
            );
        }
    }
    let mut drop: Vec<String> = Vec::new();
    for (c, _) in &roles.personal {
        let why = why_of(&roles.decisions, "personal data", c).unwrap_or_default();
        let _ = writeln!(s, "# drop {}: {why}", comment(c));
        drop.push(c.clone());
    }
    for c in &roles.drop {
        let why = why_of(&roles.decisions, "identifier-like", c).unwrap_or_default();
        let _ = writeln!(s, "# drop {}: {why}", comment(c));
        drop.push(c.clone());
    }
    let _ = writeln!(s, "drop = {}\n", list(&drop));
    let _ = writeln!(s, "[segments]");
    let _ = writeln!(
        s,
        "# k: leave out for the automatic choice (2..=8 by silhouette)"
    );
    if let Some(t) = &roles.tenure {
        let why = why_of(&roles.decisions, "tenure", &t.column).unwrap_or_default();
        let _ = writeln!(
            s,
            "tenure_column = {}   # lifecycle stages: {why}",
            q(&t.column)
        );
    }
    if let Some(r) = revenue_column {
        let _ = writeln!(
            s,
            "revenue_column = {}   # summed as revenue in the segment profile",
            q(r)
        );
    }
    if let Some(t) = &roles.tenure {
        let _ = writeln!(s, "\n[segments.lifecycle]");
        let _ = writeln!(
            s,
            "tenure_unit_days = {}   # days per unit of {}",
            num(t.unit_days),
            comment(&t.column)
        );
    }
    s
}

/// The playbook as commented TOML; reads back as `file`.
pub fn write_playbook(file: &PlaybookFile, decisions: &[Decision]) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "# Retention playbook written by `churn-train init` from the data; edit freely."
    );
    let _ = writeln!(
        s,
        "# Check an edit with: churn-train check --playbook playbook.toml [--model DIR]"
    );
    let _ = writeln!(
        s,
        "# ASSUMPTIONS: action costs and save rates are the domain brief's catalogue"
    );
    let _ = writeln!(
        s,
        "# (costs scaled to this table's money), not measured; `churn-train evaluate`"
    );
    let _ = writeln!(s, "# learns the real save rates once outcomes come back.");
    write_settings(&mut s, file, decisions);
    if let Some(d) = decisions.iter().find(|d| d.topic == "costs") {
        let _ = writeln!(s, "# costs: {} — {}", comment(&d.decision), comment(&d.why));
    }
    for a in &file.actions {
        let _ = writeln!(s, "[[actions]]");
        let _ = writeln!(s, "id = {}", q(&a.id));
        let _ = writeln!(s, "name = {}", q(&a.name));
        let _ = writeln!(s, "channel = {}", q(&a.channel));
        let _ = writeln!(
            s,
            "cost = {}        # ASSUMPTION: cost per contact",
            num(a.cost)
        );
        let _ = writeln!(
            s,
            "save_rate = {}   # ASSUMPTION: share of would-be churners a contact keeps",
            num(a.save_rate)
        );
        let _ = writeln!(s, "message = {}\n", q(&a.message));
    }
    for r in &file.rules {
        write_rule(&mut s, r, decisions);
    }
    s
}

/// The playbook's settings: top-level keys, `[value]`, `[risk_bands]` and `[learning]`.
fn write_settings(s: &mut String, file: &PlaybookFile, decisions: &[Decision]) {
    let _ = writeln!(s, "name = {}", q(&file.name));
    let _ = writeln!(
        s,
        "experiment = {}   # control-group hash key",
        q(&file.experiment)
    );
    let _ = writeln!(
        s,
        "holdout_percent = {}   # control group: no action, measured later",
        num(file.holdout_percent)
    );
    let _ = writeln!(s, "top_n = {}", file.top_n);
    if let Some(a) = &file.suppress_action {
        let _ = writeln!(
            s,
            "suppress_action = {}   # when no paid action has a positive expected value",
            q(a)
        );
    }
    let caps: Vec<String> = file
        .cost_caps
        .iter()
        .map(|(k, v)| format!("{k} = {}", num(*v)))
        .collect();
    let _ = writeln!(
        s,
        "cost_caps = {{ {} }}   # highest action cost per RFM class",
        caps.join(", ")
    );
    let why = why_of(decisions, "levers", "actionable").unwrap_or_default();
    let _ = writeln!(s, "actionable = {}   # {why}", list(&file.actionable));
    let _ = writeln!(
        s,
        "never_levers = {}   # values a lever never proposes",
        list(&file.never_levers)
    );
    let _ = writeln!(s, "lever_min_support = {}\n", file.lever_min_support);
    let _ = writeln!(
        s,
        "[value]   # customer value in expected net value = P(churn) × value × save_rate − cost"
    );
    match &file.value.expression {
        Some(e) => {
            let why = decisions
                .iter()
                .find(|d| d.topic == "customer value")
                .map(|d| comment(&d.why))
                .unwrap_or_default();
            let _ = writeln!(s, "# {why}");
            let _ = writeln!(s, "expression = {}", q(e));
            let _ = writeln!(
                s,
                "default = {}   # used only without an expression",
                num(file.value.default)
            );
        }
        None => {
            let why = why_of(decisions, "customer value", "value").unwrap_or_default();
            let _ = writeln!(s, "default = {}   # {why}", num(file.value.default));
        }
    }
    let why = why_of(decisions, "risk bands", "risk_bands").unwrap_or_default();
    let _ = writeln!(s, "\n[risk_bands]   # {why}");
    let _ = writeln!(s, "medium = {}", num(file.risk_bands.medium));
    let _ = writeln!(s, "high = {}\n", num(file.risk_bands.high));
    let l = &file.learning;
    let _ = writeln!(s, "[learning]   # how measured lift updates the save rates");
    let _ = writeln!(s, "prior_strength = {}   # the catalogue rate weighs as much as this many measured would-be churners", num(l.prior_strength));
    let _ = writeln!(
        s,
        "min_arm = {}   # customers per arm before a learned rate is used",
        l.min_arm
    );
    let _ = writeln!(
        s,
        "explore = {}   # share of contacts whose action is drawn to learn (0 = off)\n",
        num(l.explore)
    );
}

fn write_rule(s: &mut String, r: &Rule, decisions: &[Decision]) {
    let why = r
        .when
        .first()
        .and_then(|w| why_of(decisions, "driver", w))
        .or_else(|| why_of(decisions, "rule", &r.id));
    if let Some(why) = why {
        let _ = writeln!(s, "# {why}");
    }
    let _ = writeln!(s, "[[rules]]");
    let _ = writeln!(s, "id = {}", q(&r.id));
    for (key, v) in [
        ("segment", &r.segment),
        ("rfm_class", &r.rfm_class),
        ("lifecycle", &r.lifecycle),
        ("risk_band", &r.risk_band),
        ("when", &r.when),
    ] {
        if !v.is_empty() {
            let _ = writeln!(s, "{key} = {}", list(v));
        }
    }
    let _ = writeln!(s, "actions = {}", list(&r.actions));
    if let Some(c) = r.max_cost {
        let _ = writeln!(s, "max_cost = {}", num(c));
    }
    let _ = writeln!(
        s,
        "priority = {}   # higher wins when two rules propose the same action\n",
        r.priority
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::playbook::{parse, DEFAULT_PLAYBOOK};

    #[test]
    fn a_written_playbook_reads_back_as_the_same_playbook() {
        let mut file = parse(DEFAULT_PLAYBOOK, "built-in").unwrap();
        // text that needs escaping in TOML and names that need backquotes in predicates
        file.rules[0].when = vec![
            "`Monthly Bill ($)` >= 80.5".into(),
            "Plan == \"Two \\\"Year\\\"\"".into(),
        ];
        file.actions[0].message = "{customer_id}: line\none \"quoted\" \\ back".into();
        file.actionable = vec!["Plan Type".into()];
        let text = write_playbook(&file, &[]);
        let back = parse(&text, "written").unwrap();
        assert_eq!(back, file);
        assert_eq!(back.rules[0].when, file.rules[0].when);
        assert_eq!(back.actions[0].message, file.actions[0].message);
    }

    #[test]
    fn relative_paths_climb_to_the_common_directory() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data/x.csv");
        std::fs::create_dir_all(data.parent().unwrap()).unwrap();
        std::fs::write(&data, "a\n").unwrap();
        let out = dir.path().join("cfg/nested");
        std::fs::create_dir_all(&out).unwrap();
        assert_eq!(
            relative_path(&data, &out),
            PathBuf::from("../../data/x.csv")
        );
    }
}
