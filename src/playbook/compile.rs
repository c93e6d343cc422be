//! Validation of a playbook file against the model it is used with, and its compiled form.
//!
//! Each part of the file checks itself (`validate` methods, in file order) and reports the
//! place and the problem; [`Playbook::compile`] names the file. The first problem wins.

use super::predicate::{parse_predicate, Predicate};
use super::value_expr::{compile_expression, Tok};
use super::{
    Action, LearnedRate, PlaybookError, PlaybookFile, RiskBand, RiskBands, Rule, ValueConfig,
};
use crate::features::Encoder;
use crate::ingest::FeatureKind;
use crate::segment::{LifecycleStage, RfmClass};
use serde::{Deserialize, Serialize};
use std::collections::HashSet;

/// A validated playbook bound to a model's encoder; stored in the bundle.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Playbook {
    /// The file as written.
    pub file: PlaybookFile,
    /// Per rule, its compiled predicates.
    pub predicates: Vec<Vec<Predicate>>,
    /// Compiled value expression (RPN), if any.
    pub value_rpn: Option<Vec<Tok>>,
    /// Actionable inputs (indices into the encoder's inputs).
    pub actionable_inputs: Vec<usize>,
    /// Save rates learned from measured lift (`churn-train evaluate`), applied when a model is
    /// loaded with a store ([`Playbook::set_learned`]); never part of the bundle.
    #[serde(skip)]
    pub learned: Vec<LearnedRate>,
}

/// Channels an action may use.
const CHANNELS: &[&str] = &[
    "email",
    "sms",
    "phone",
    "app_push",
    "in_app",
    "account_manager",
    "mail",
    "none",
];

/// A validation problem before it is tied to a file: where (`rule 'x'`, `top_n`, …) and what.
struct Invalid {
    place: String,
    problem: String,
}

impl Invalid {
    fn new(place: impl Into<String>, problem: String) -> Invalid {
        Invalid {
            place: place.into(),
            problem,
        }
    }

    /// The error naming the playbook file (and the line, when its `text` is known).
    fn in_file(self, file: &str, text: Option<&str>) -> PlaybookError {
        let line = text.and_then(|t| super::locate(t, &self.place, &self.problem));
        PlaybookError::Invalid {
            file: file.to_string(),
            at: line.map(|l| format!(", line {l}")).unwrap_or_default(),
            place: self.place,
            problem: self.problem,
        }
    }
}

/// `value` must be one of `allowed`: `unknown NOUN 'v'; PLURAL: a, b, …` otherwise.
fn one_of(value: &str, allowed: &[&str], noun: &str, plural: &str) -> Result<(), String> {
    if allowed.contains(&value) {
        Ok(())
    } else {
        Err(format!(
            "unknown {noun} '{value}'; {plural}: {}",
            allowed.join(", ")
        ))
    }
}

/// `v` must be a finite non-negative number: `WHAT must be ≥ 0, got v` otherwise.
fn non_negative(v: f64, what: impl std::fmt::Display) -> Result<(), String> {
    if v.is_finite() && v >= 0.0 {
        Ok(())
    } else {
        Err(format!("{what} must be ≥ 0, got {v}"))
    }
}

impl RiskBands {
    /// Cut-offs must be ordered strictly inside (0, 1).
    fn validate(&self) -> Result<(), Invalid> {
        if 0.0 < self.medium && self.medium < self.high && self.high < 1.0 {
            return Ok(());
        }
        Err(Invalid::new(
            "risk_bands",
            format!(
                "need 0 < medium < high < 1, got medium {} and high {}",
                self.medium, self.high
            ),
        ))
    }
}

impl ValueConfig {
    /// The default value must be a non-negative number.
    fn validate(&self) -> Result<(), Invalid> {
        if self.default.is_finite() && self.default >= 0.0 {
            return Ok(());
        }
        Err(Invalid::new(
            "value",
            format!(
                "default must be a non-negative number, got {}",
                self.default
            ),
        ))
    }

    /// The value expression compiled against the encoder, if there is one.
    fn compile(&self, enc: &Encoder) -> Result<Option<Vec<Tok>>, Invalid> {
        self.expression
            .as_deref()
            .map(|e| compile_expression(e, enc).map_err(|p| Invalid::new("value.expression", p)))
            .transpose()
    }
}

impl Action {
    /// Cost, save rate and channel (uniqueness is the file's check).
    fn validate(&self) -> Result<(), String> {
        non_negative(self.cost, "cost")?;
        if !(0.0..=1.0).contains(&self.save_rate) {
            return Err(format!(
                "save_rate must be within 0..=1, got {}",
                self.save_rate
            ));
        }
        one_of(&self.channel, CHANNELS, "channel", "channels").map_err(|p| format!("channel: {p}"))
    }
}

impl Rule {
    /// Actions, RFM classes, lifecycle stages, risk bands and cost cap of a rule.
    fn validate(&self, action_ids: &HashSet<&str>) -> Result<(), String> {
        if self.actions.is_empty() {
            return Err("actions: lists no actions".into());
        }
        if let Some(a) = self
            .actions
            .iter()
            .find(|a| !action_ids.contains(a.as_str()))
        {
            return Err(format!("actions: unknown action '{a}'"));
        }
        for c in &self.rfm_class {
            one_of(c, &RfmClass::NAMES, "RFM class", "classes")
                .map_err(|p| format!("rfm_class: {p}"))?;
        }
        for s in &self.lifecycle {
            one_of(s, &LifecycleStage::NAMES, "lifecycle stage", "stages")
                .map_err(|p| format!("lifecycle: {p}"))?;
        }
        if let Some(b) = self
            .risk_band
            .iter()
            .find(|b| RiskBand::from_name(b).is_none())
        {
            return Err(format!(
                "risk_band: unknown risk band '{b}' ({})",
                RiskBand::NAMES.join(", ")
            ));
        }
        match self.max_cost {
            Some(m) => non_negative(m, "max_cost"),
            None => Ok(()),
        }
    }

    /// The rule's `when` predicates compiled against the encoder.
    fn compile(&self, enc: &Encoder) -> Result<Vec<Predicate>, String> {
        self.when
            .iter()
            .map(|w| parse_predicate(w, enc).map_err(|p| format!("when: {p}")))
            .collect()
    }
}

impl PlaybookFile {
    /// Holdout share, list length, risk bands and default value.
    fn validate_settings(&self) -> Result<(), Invalid> {
        if !(0.0..=50.0).contains(&self.holdout_percent) {
            return Err(Invalid::new(
                "holdout_percent",
                format!("must be 0..=50, got {}", self.holdout_percent),
            ));
        }
        if self.top_n == 0 || self.top_n > 20 {
            return Err(Invalid::new(
                "top_n",
                format!("must be 1..=20, got {}", self.top_n),
            ));
        }
        if self.lever_min_support == 0 {
            return Err(Invalid::new(
                "lever_min_support",
                "must be at least 1 (a lever needs value combinations seen in training)".into(),
            ));
        }
        non_negative(self.learning.prior_strength, "prior_strength")
            .map_err(|p| Invalid::new("learning", p))?;
        if !(0.0..=1.0).contains(&self.learning.explore) {
            return Err(Invalid::new(
                "learning",
                format!(
                    "explore must be a share in 0..=1, got {}",
                    self.learning.explore
                ),
            ));
        }
        self.risk_bands.validate()?;
        self.value.validate()
    }

    /// Every action, in order; returns the set of action ids.
    fn validate_actions(&self) -> Result<HashSet<&str>, Invalid> {
        let mut ids = HashSet::new();
        for a in &self.actions {
            let place = || format!("action '{}'", a.id);
            if !ids.insert(a.id.as_str()) {
                return Err(Invalid::new(place(), "defined twice".into()));
            }
            a.validate().map_err(|p| Invalid::new(place(), p))?;
        }
        Ok(ids)
    }

    /// The suppression action must be defined.
    fn validate_suppress_action(&self, ids: &HashSet<&str>) -> Result<(), Invalid> {
        match &self.suppress_action {
            Some(s) if !ids.contains(s.as_str()) => Err(Invalid::new(
                "suppress_action",
                format!("unknown action '{s}'"),
            )),
            _ => Ok(()),
        }
    }

    /// Cost caps name known RFM classes and are non-negative.
    fn validate_cost_caps(&self) -> Result<(), Invalid> {
        for (class, cap) in &self.cost_caps {
            one_of(class, &RfmClass::NAMES, "RFM class", "classes")
                .and_then(|()| non_negative(*cap, format_args!("cap for '{class}'")))
                .map_err(|p| Invalid::new("cost_caps", p))?;
        }
        Ok(())
    }

    /// Every rule validated and its predicates compiled, in order.
    fn compile_rules(
        &self,
        ids: &HashSet<&str>,
        enc: &Encoder,
    ) -> Result<Vec<Vec<Predicate>>, Invalid> {
        let mut rule_ids = HashSet::new();
        let mut predicates = Vec::with_capacity(self.rules.len());
        for r in &self.rules {
            let place = || format!("rule '{}'", r.id);
            if !rule_ids.insert(r.id.as_str()) {
                return Err(Invalid::new(place(), "defined twice".into()));
            }
            let ps = r
                .validate(ids)
                .and_then(|()| r.compile(enc))
                .map_err(|p| Invalid::new(place(), p))?;
            predicates.push(ps);
        }
        Ok(predicates)
    }

    /// Actionable inputs as indices into the encoder's inputs; levers need non-numeric ones.
    fn actionable_inputs(&self, enc: &Encoder) -> Result<Vec<usize>, Invalid> {
        let bad = |problem: String| Invalid::new("actionable", problem);
        let mut inputs = Vec::with_capacity(self.actionable.len());
        for a in &self.actionable {
            let i = enc
                .inputs
                .iter()
                .position(|x| &x.name == a)
                .ok_or_else(|| bad(format!("unknown feature '{a}'")))?;
            if enc.inputs[i].kind == FeatureKind::Numeric {
                return Err(bad(format!(
                    "'{a}' is numeric; levers change categorical or boolean inputs"
                )));
            }
            if inputs.contains(&i) {
                return Err(bad(format!("'{a}' is listed twice")));
            }
            inputs.push(i);
        }
        Ok(inputs)
    }

    /// All checks in file order, then the compiled parts.
    fn compile_parts(&self, enc: &Encoder) -> Result<CompiledParts, Invalid> {
        self.validate_settings()?;
        let ids = self.validate_actions()?;
        self.validate_suppress_action(&ids)?;
        self.validate_cost_caps()?;
        Ok(CompiledParts {
            predicates: self.compile_rules(&ids, enc)?,
            value_rpn: self.value.compile(enc)?,
            actionable_inputs: self.actionable_inputs(enc)?,
        })
    }
}

/// What compiling adds to the file (see [`Playbook`]).
struct CompiledParts {
    predicates: Vec<Vec<Predicate>>,
    value_rpn: Option<Vec<Tok>>,
    actionable_inputs: Vec<usize>,
}

impl Playbook {
    /// Use learned save rates: ranking uses those of `rates` that name one of this playbook's
    /// actions and carry enough evidence ([`LearnedRate::applied`]); the rest keep the
    /// playbook's rate. An action learned to harm ([`LearnedRate::harms`]) is never
    /// recommended, however little else is known. Exploration draws from every learned
    /// posterior, applied or not. Returns how many are in force in ranking.
    pub fn set_learned(&mut self, rates: &[LearnedRate]) -> usize {
        self.learned = rates
            .iter()
            .filter(|r| self.file.actions.iter().any(|a| a.id == r.action))
            .cloned()
            .collect();
        self.learned.iter().filter(|r| r.applied || r.harms).count()
    }

    /// The ids of the playbook's actions (what an `action_taken` outcome may name).
    pub fn action_ids(&self) -> impl Iterator<Item = &str> {
        self.file.actions.iter().map(|a| a.id.as_str())
    }
}

impl Playbook {
    /// Validate `file` against a model's encoder and compile it.
    pub fn compile(
        file: PlaybookFile,
        enc: &Encoder,
        source: &str,
    ) -> Result<Playbook, PlaybookError> {
        let parts = file
            .compile_parts(enc)
            .map_err(|e| e.in_file(source, file.text.0.as_deref()))?;
        Ok(Playbook {
            file,
            predicates: parts.predicates,
            value_rpn: parts.value_rpn,
            actionable_inputs: parts.actionable_inputs,
            learned: Vec::new(),
        })
    }
}
