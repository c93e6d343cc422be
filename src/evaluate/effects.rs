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
//!
//! A concept shift changes the world itself: from a date on, the churn probability of the
//! customers a `when` selects is multiplied (at most 1) before any action acts — the change a
//! model retrained from the store should pick up and the old one cannot.
//!
//! ```toml
//! [[shift]]
//! from = "2026-03-01"              # customers scored on or after this date …
//! when = ['InternetService == "Fiber optic"']
//! factor = 2.0                     # … churn twice as often
//! ```

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

/// A concept shift: from an instant on, the churn probability of the customers `when` selects
/// is multiplied by `factor` (at most 1).
#[derive(Debug, Clone, PartialEq)]
pub struct Shift {
    /// First scoring instant it applies to (Unix ms).
    pub from_ms: i64,
    /// Multiplier of the churn probability (≥ 0).
    pub factor: f64,
    /// All must hold on the customer's encoded row.
    pub when: Vec<Predicate>,
}

impl Shift {
    /// The churn probability `p` of the customer of encoded `row` scored at `at`, after every
    /// shift of `shifts` that applies (in file order).
    pub fn apply_all(shifts: &[Shift], row: &[f64], at: i64, p: f64) -> f64 {
        shifts
            .iter()
            .filter(|s| at >= s.from_ms && s.when.iter().all(|w| w.holds(row)))
            .fold(p, |p, s| (p * s.factor).min(1.0))
    }
}

/// Everything an effects file says: the actions' effects and the concept shifts.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct World {
    /// `[[effect]]` rules.
    pub effects: Vec<EffectRule>,
    /// `[[shift]]` rules.
    pub shifts: Vec<Shift>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct EffectsFile {
    #[serde(default)]
    effect: Vec<RawRule>,
    #[serde(default)]
    shift: Vec<RawShift>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawShift {
    from: String,
    factor: f64,
    #[serde(default)]
    when: Vec<String>,
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
/// action must be one of `actions`. Errors name the rule (1-based) and what is wrong. The file
/// must hold `[[effect]]` rules (see [`parse_world`] for shifts).
pub fn parse_effects<'a>(
    text: &str,
    source: &str,
    enc: &Encoder,
    actions: impl Fn(&str) -> bool + 'a,
) -> Result<Vec<EffectRule>, EvalError> {
    let world = parse_world(text, source, enc, actions)?;
    if world.effects.is_empty() {
        return Err(EvalError::Invalid {
            field: "effects",
            message: format!("{source}: no [[effect]] rules"),
        });
    }
    Ok(world.effects)
}

/// Parse and compile an effects file with its `[[shift]]` rules (at least one rule of either
/// kind); errors as [`parse_effects`], shifts named by their number.
pub fn parse_world<'a>(
    text: &str,
    source: &str,
    enc: &Encoder,
    actions: impl Fn(&str) -> bool + 'a,
) -> Result<World, EvalError> {
    let invalid = |message: String| EvalError::Invalid {
        field: "effects",
        message: format!("{source}: {message}"),
    };
    let file: EffectsFile = toml::from_str(text).map_err(|e| invalid(e.message().to_string()))?;
    if file.effect.is_empty() && file.shift.is_empty() {
        return Err(invalid("no [[effect]] or [[shift]] rules".into()));
    }
    let shifts = file
        .shift
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let at = |m: String| invalid(format!("shift {}: {m}", i + 1));
            let from_ms = crate::time::parse(&r.from).ok_or_else(|| {
                at(format!(
                    "from: expected a date (YYYY-MM-DD) or ISO-8601 instant, got '{}'",
                    r.from
                ))
            })?;
            if !(r.factor.is_finite() && r.factor >= 0.0) {
                return Err(at(format!("factor must be a number ≥ 0, got {}", r.factor)));
            }
            let when = r
                .when
                .iter()
                .map(|t| parse_predicate(t, enc).map_err(&at))
                .collect::<Result<Vec<_>, _>>()?;
            Ok(Shift {
                from_ms,
                factor: r.factor,
                when,
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let effects = file
        .effect
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
        .collect::<Result<Vec<_>, _>>()?;
    Ok(World { effects, shifts })
}

/// Read and compile the effects file at `path`, effects and shifts (see [`parse_world`]).
pub fn read_world<'a>(
    path: &Path,
    enc: &Encoder,
    actions: impl Fn(&str) -> bool + 'a,
) -> Result<World, EvalError> {
    let text = std::fs::read_to_string(path).map_err(|e| EvalError::Invalid {
        field: "effects",
        message: format!("{}: {e}", path.display()),
    })?;
    parse_world(&text, &path.display().to_string(), enc, actions)
}

/// The change a contact with `action` makes for the customer of encoded `row`: the first of its
/// rules that holds, else `fallback`.
pub fn change_for(rules: &[EffectRule], action: &str, row: &[f64], fallback: f64) -> Change {
    rules
        .iter()
        .find(|r| r.action == action && r.when.iter().all(|p| p.holds(row)))
        .map_or(Change::Share(fallback), |r| r.change)
}
