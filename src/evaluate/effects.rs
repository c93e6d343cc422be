//! Heterogeneous true effects for the simulator (`churn-train simulate --effects FILE`): an
//! action's effect as rules in the playbook's predicate language, so that an action helps some
//! customers, does nothing for others and drives some away — the world uplift targeting is for.
//!
//! ```toml
//! [[effect]]
//! action = "CONTRACT_UPGRADE"
//! share = 0.5                      # saves half of the would-be churners …
//! when = ['Contract == "Month-to-month"', 'InternetService == "Fiber optic"']
//!
//! [[effect]]
//! action = "DISCOUNT"
//! points = 0.10                    # … or adds 10 points of churn probability
//! when = ["tenure > 48"]
//! ```
//!
//! Per customer and action the first rule of that action whose `when` all hold applies; none
//! applying, the action's `--effect` share (else nothing).

use super::EvalError;
use crate::features::Encoder;
use crate::playbook::{parse_predicate, Predicate};
use serde::Deserialize;
use std::path::Path;

/// How a rule changes a contacted customer's churn probability p.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Change {
    /// p × (1 − share): the share of would-be churners saved (negative: churn added).
    Share(f64),
    /// p − points (clamped to 0..=1): churn probability points removed (negative: added).
    Points(f64),
}

impl Change {
    /// Churn probability `p` after the contact.
    pub fn apply(self, p: f64) -> f64 {
        match self {
            Change::Share(s) => p * (1.0 - s),
            Change::Points(d) => p - d,
        }
        .clamp(0.0, 1.0)
    }
}

/// One rule of an effects file, compiled against the model's encoder.
#[derive(Debug, Clone, PartialEq)]
pub struct EffectRule {
    /// Action id.
    pub action: String,
    /// What a contact does.
    pub change: Change,
    /// All must hold on the customer's encoded row.
    pub when: Vec<Predicate>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct EffectsFile {
    #[serde(default)]
    effect: Vec<RawRule>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRule {
    action: String,
    share: Option<f64>,
    points: Option<f64>,
    #[serde(default)]
    when: Vec<String>,
}

/// Parse and compile an effects file's `text` (named `source` in errors) against `enc`; every
/// action must be one of `actions`. Errors name the rule (1-based) and what is wrong.
pub fn parse_effects<'a>(
    text: &str,
    source: &str,
    enc: &Encoder,
    actions: impl Fn(&str) -> bool + 'a,
) -> Result<Vec<EffectRule>, EvalError> {
    let invalid = |message: String| EvalError::Invalid {
        field: "effects",
        message: format!("{source}: {message}"),
    };
    let file: EffectsFile = toml::from_str(text).map_err(|e| invalid(e.message().to_string()))?;
    if file.effect.is_empty() {
        return Err(invalid("no [[effect]] rules".into()));
    }
    file.effect
        .into_iter()
        .enumerate()
        .map(|(i, r)| {
            let at = |m: String| invalid(format!("effect {} ('{}'): {m}", i + 1, r.action));
            if !actions(&r.action) {
                return Err(at("the playbook has no such action".into()));
            }
            let change = match (r.share, r.points) {
                (Some(s), None) if (-1.0..=1.0).contains(&s) => Change::Share(s),
                (None, Some(d)) if (-1.0..=1.0).contains(&d) => Change::Points(d),
                (Some(_), Some(_)) | (None, None) => {
                    return Err(at("give exactly one of share or points".into()))
                }
                _ => return Err(at("share and points must be within -1..=1".into())),
            };
            let when = r
                .when
                .iter()
                .map(|t| parse_predicate(t, enc).map_err(&at))
                .collect::<Result<Vec<_>, _>>()?;
            Ok(EffectRule {
                action: r.action.clone(),
                change,
                when,
            })
        })
        .collect()
}

/// Read and compile the effects file at `path` (see [`parse_effects`]).
pub fn read_effects<'a>(
    path: &Path,
    enc: &Encoder,
    actions: impl Fn(&str) -> bool + 'a,
) -> Result<Vec<EffectRule>, EvalError> {
    let text = std::fs::read_to_string(path).map_err(|e| EvalError::Invalid {
        field: "effects",
        message: format!("{}: {e}", path.display()),
    })?;
    parse_effects(&text, &path.display().to_string(), enc, actions)
}

/// The change a contact with `action` makes for the customer of encoded `row`: the first of its
/// rules that holds, else `fallback`.
pub fn change_for(rules: &[EffectRule], action: &str, row: &[f64], fallback: f64) -> Change {
    rules
        .iter()
        .find(|r| r.action == action && r.when.iter().all(|p| p.holds(row)))
        .map_or(Change::Share(fallback), |r| r.change)
}
