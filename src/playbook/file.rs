//! The playbook file as CRM teams write it (TOML), before validation against a model.

use super::PlaybookError;
use serde::{Deserialize, Serialize};

/// One retention action.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Action {
    /// Identifier, e.g. `WINBACK_EMAIL`.
    pub id: String,
    /// Readable name.
    pub name: String,
    /// email, sms, phone, app_push, in_app, account_manager, none.
    pub channel: String,
    /// Cost per contact (≥ 0).
    pub cost: f64,
    /// Share of contacted would-be churners who stay (0..=1).
    pub save_rate: f64,
    /// Message template; `{customer_id}`, `{segment}`, `{rfm_class}` are filled in.
    #[serde(default)]
    pub message: String,
}

/// One rule: when it matches, its actions become eligible.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    /// Identifier shown in the "why".
    pub id: String,
    /// Actions this rule makes eligible.
    pub actions: Vec<String>,
    /// Higher wins when two rules propose the same action.
    #[serde(default)]
    pub priority: i32,
    /// Segment names (any of).
    #[serde(default)]
    pub segment: Vec<String>,
    /// RFM classes (any of).
    #[serde(default)]
    pub rfm_class: Vec<String>,
    /// Lifecycle stages (any of).
    #[serde(default)]
    pub lifecycle: Vec<String>,
    /// Risk bands (any of).
    #[serde(default)]
    pub risk_band: Vec<String>,
    /// Feature predicates, all must hold: `Contract == "Month-to-month"`, `recency_days > 90`.
    #[serde(default)]
    pub when: Vec<String>,
    /// Only actions costing at most this much (e.g. low-cost actions for silent customers).
    #[serde(default)]
    pub max_cost: Option<f64>,
}

/// Customer value used in expected net value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ValueConfig {
    /// Expression over numeric inputs with + - * / and numbers, e.g. `MonthlyCharges * 12`.
    pub expression: Option<String>,
    /// Value when there is no expression.
    pub default: f64,
}

impl Default for ValueConfig {
    fn default() -> Self {
        ValueConfig {
            expression: None,
            default: 100.0,
        }
    }
}

/// Risk band cut-offs on the calibrated probability.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RiskBands {
    /// `p >= medium` is at least medium.
    pub medium: f64,
    /// `p >= high` is high.
    pub high: f64,
}

impl Default for RiskBands {
    fn default() -> Self {
        RiskBands {
            medium: 0.3,
            high: 0.6,
        }
    }
}

crate::util::text_enum! {
    /// Risk band of a calibrated probability under [`RiskBands`]; ordered low to high, so
    /// `band as usize` is a counter slot.
    pub enum RiskBand {
        /// Below the medium cut-off.
        Low = "low",
        /// From the medium cut-off to below the high one.
        Medium = "medium",
        /// At or above the high cut-off.
        High = "high",
    }
}

impl RiskBands {
    /// Band of a probability.
    #[inline]
    pub fn band(&self, p: f64) -> RiskBand {
        if p >= self.high {
            RiskBand::High
        } else if p >= self.medium {
            RiskBand::Medium
        } else {
            RiskBand::Low
        }
    }
}

fn default_lever_min_support() -> u32 {
    crate::features::LEVER_MIN_SUPPORT
}

/// The playbook file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlaybookFile {
    /// Name.
    #[serde(default)]
    pub name: String,
    /// Experiment name for the control-group hash.
    #[serde(default = "default_experiment")]
    pub experiment: String,
    /// Share of customers (0..=50 percent) held out as a control group.
    #[serde(default)]
    pub holdout_percent: f64,
    /// Recommendations returned per customer.
    #[serde(default = "default_top_n")]
    pub top_n: usize,
    /// Inputs a customer or the business can change (for levers).
    #[serde(default)]
    pub actionable: Vec<String>,
    /// Values a lever never proposes, whatever the input (e.g. `No internet service`: a
    /// consequence of another input, not something to change).
    #[serde(default)]
    pub never_levers: Vec<String>,
    /// Training rows every pair of values in a lever's combination needs (default 5).
    #[serde(default = "default_lever_min_support")]
    pub lever_min_support: u32,
    /// Action recommended when no paid action has a positive expected value.
    #[serde(default)]
    pub suppress_action: Option<String>,
    /// Highest action cost allowed per RFM class, whatever rule proposes the action
    /// (e.g. `low_value_silent = 1.0`: low-cost actions only).
    #[serde(default)]
    pub cost_caps: std::collections::BTreeMap<String, f64>,
    /// Customer value.
    #[serde(default)]
    pub value: ValueConfig,
    /// Risk bands.
    #[serde(default)]
    pub risk_bands: RiskBands,
    /// How measured lift updates the save rates.
    #[serde(default)]
    pub learning: super::LearningConfig,
    /// Actions.
    pub actions: Vec<Action>,
    /// Rules.
    pub rules: Vec<Rule>,
    /// The TOML the file was read from, to name lines in validation errors.
    #[serde(skip)]
    pub text: SourceText,
}

/// The text a playbook was read from: never stored in a bundle, and equal to any other (two
/// playbooks are the same whatever their formatting).
#[derive(Debug, Clone, Default)]
pub struct SourceText(pub Option<std::sync::Arc<str>>);

impl PartialEq for SourceText {
    fn eq(&self, _: &SourceText) -> bool {
        true
    }
}

fn default_experiment() -> String {
    "retention".into()
}
fn default_top_n() -> usize {
    3
}

/// Read a playbook file.
pub fn read(path: &std::path::Path) -> Result<PlaybookFile, PlaybookError> {
    let file = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| PlaybookError::Read {
        file: file.clone(),
        message: e.to_string(),
    })?;
    parse(&text, &file)
}

/// Parse playbook TOML (`file` names it in messages).
pub fn parse(text: &str, file: &str) -> Result<PlaybookFile, PlaybookError> {
    let mut pb: PlaybookFile = toml::from_str(text).map_err(|e| PlaybookError::Read {
        file: file.to_string(),
        message: e.to_string(),
    })?;
    pb.text = SourceText(Some(text.into()));
    Ok(pb)
}

/// The 1-based line of `place` (`rule 'x'`, `action 'Y'`, `value.expression`, `top_n`, …) in
/// playbook `text`; within a rule or action, the line of the key `problem` starts with
/// (`when: …`, `save_rate must be …`), else the line of its `id`.
pub fn locate(text: &str, place: &str, problem: &str) -> Option<usize> {
    let lines: Vec<&str> = text.lines().collect();
    let key_of = |l: &str| {
        let t = l.trim_start();
        t.split(|c: char| c == '=' || c.is_whitespace())
            .next()
            .map(str::to_string)
            .filter(|k| !k.is_empty() && t[k.len()..].trim_start().starts_with('='))
    };
    // blocks: (header, first line, end line)
    let mut blocks: Vec<(String, usize, usize)> = vec![(String::new(), 0, lines.len())];
    for (i, l) in lines.iter().enumerate() {
        let t = l.trim();
        if t.starts_with('[') {
            if let Some(last) = blocks.last_mut() {
                last.2 = i;
            }
            let h = t.split('#').next().unwrap_or("").trim().to_string();
            blocks.push((h, i, lines.len()));
        }
    }
    let find_key = |from: usize, to: usize, key: &str| {
        (from..to).find(|&i| key_of(lines[i]).as_deref() == Some(key))
    };
    let quoted = |p: &str, what: &str| {
        p.strip_prefix(what)
            .and_then(|r| r.strip_prefix(" '"))
            .and_then(|r| r.strip_suffix('\''))
            .map(str::to_string)
    };
    // the block defining `id` (for "defined twice", the second one)
    let item = |header: &str, id: &str| {
        let mut found = blocks.iter().filter_map(|(h, from, to)| {
            let id_line = (h == header)
                .then(|| find_key(*from, *to, "id"))
                .flatten()?;
            let v = lines[id_line].split_once('=')?.1.split('#').next()?.trim();
            let v = v.trim_matches(|c| c == '"' || c == '\'');
            (v == id).then_some((*from, *to, id_line))
        });
        let first = found.next();
        if problem == "defined twice" {
            found.next().or(first)
        } else {
            first
        }
    };
    let within = |(from, to, id_line): (usize, usize, usize)| {
        // the problem starts with the key it is about (`when: …`, `save_rate must be …`)
        let key = problem
            .split(|c: char| c == ':' || c.is_whitespace())
            .next()
            .unwrap_or("");
        find_key(from, to, key).unwrap_or(id_line)
    };
    let line = if let Some(id) = quoted(place, "rule") {
        within(item("[[rules]]", &id)?)
    } else if let Some(id) = quoted(place, "action") {
        within(item("[[actions]]", &id)?)
    } else if let Some((table, key)) = place.split_once('.') {
        let (_, from, to) = blocks.iter().find(|(h, _, _)| *h == format!("[{table}]"))?;
        find_key(*from, *to, key)?
    } else {
        let (_, from, to) = &blocks[0];
        find_key(*from, *to, place).or_else(|| {
            blocks
                .iter()
                .find(|(h, _, _)| *h == format!("[{place}]"))
                .map(|b| b.1)
        })?
    };
    Some(line + 1)
}

/// The default playbook shipped with the binary (`training/playbook.toml`).
pub const DEFAULT_PLAYBOOK: &str = include_str!("../../training/playbook.toml");

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "name = \"x\"\n\n[value]\nexpression = \"a * 2\"\n\n[[actions]]\nid = \"A\"\nname = \"a\"\nchannel = \"email\"\ncost = 1.0\nsave_rate = 0.1\n\n[[rules]]\nid = \"r1\"\nactions = [\"A\"]\n\n[[rules]]\nid = \"r2\"\nwhen = [\"b > 1\"]\nactions = [\"A\"]\n";

    #[test]
    fn locate_finds_the_key_of_the_rule_or_action_in_error() {
        assert_eq!(
            locate(TEXT, "rule 'r2'", "when: predicate 'b > 1': …"),
            Some(19)
        );
        assert_eq!(locate(TEXT, "rule 'r2'", "lists nothing"), Some(18));
        assert_eq!(
            locate(TEXT, "rule 'r1'", "actions: unknown action 'B'"),
            Some(15)
        );
        assert_eq!(
            locate(TEXT, "action 'A'", "save_rate: must be within 0..=1"),
            Some(11)
        );
        assert_eq!(
            locate(TEXT, "value.expression", "unknown feature 'a'"),
            Some(4)
        );
        assert_eq!(locate(TEXT, "name", "bad"), Some(1));
        assert_eq!(locate(TEXT, "value", "default must be …"), Some(3));
        assert_eq!(locate(TEXT, "rule 'nope'", "x"), None);
        let twice = format!("{TEXT}\n[[rules]]\nid = \"r1\"\nactions = [\"A\"]\n");
        assert_eq!(locate(&twice, "rule 'r1'", "defined twice"), Some(23));
    }
}
