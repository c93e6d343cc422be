//! Retention playbook as data: actions, rules, risk bands, customer value and a control group.
//!
//! A playbook is TOML that CRM teams edit without a rebuild. It is validated against the model it
//! is used with ([`Playbook::compile`]): unknown actions or features, bad predicates and
//! out-of-range numbers are errors naming the file, the rule and the problem. The compiled form
//! evaluates on the encoded row, so rules see exactly what the model saw.

use crate::features::{Encoder, InputEncoding};
use crate::ingest::FeatureKind;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Errors of the playbook layer.
#[derive(Debug, thiserror::Error)]
pub enum PlaybookError {
    /// Reading the file failed.
    #[error("{file}: {message}")]
    Read {
        /// File.
        file: String,
        /// Why.
        message: String,
    },
    /// A rule, action or setting is invalid.
    #[error("{file}: {place}: {problem}")]
    Invalid {
        /// File.
        file: String,
        /// `rule 'x'`, `action 'Y'`, `value`, `risk_bands`, …
        place: String,
        /// What is wrong.
        problem: String,
    },
}

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

impl RiskBands {
    /// Band of a probability.
    pub fn band(&self, p: f64) -> &'static str {
        if p >= self.high {
            "high"
        } else if p >= self.medium {
            "medium"
        } else {
            "low"
        }
    }
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
    /// Actions.
    pub actions: Vec<Action>,
    /// Rules.
    pub rules: Vec<Rule>,
}

fn default_experiment() -> String {
    "retention".into()
}
fn default_top_n() -> usize {
    3
}

/// Comparison operator of a predicate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Op {
    /// `==`
    Eq,
    /// `!=`
    Ne,
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `>`
    Gt,
    /// `>=`
    Ge,
}

impl Op {
    fn holds(self, a: f64, b: f64) -> bool {
        match self {
            Op::Eq => a == b,
            Op::Ne => a != b,
            Op::Lt => a < b,
            Op::Le => a <= b,
            Op::Gt => a > b,
            Op::Ge => a >= b,
        }
    }
}

/// A predicate compiled to a test on one encoded column.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Predicate {
    /// Source text.
    pub text: String,
    /// Encoded column.
    pub column: usize,
    /// Operator.
    pub op: Op,
    /// Right-hand side on the encoded scale.
    pub value: f64,
}

/// Token of a value expression in reverse Polish notation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Tok {
    /// Encoded column.
    Col(usize),
    /// Constant.
    Num(f64),
    /// Operator `+ - * /`.
    Op(char),
}

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
}

/// A recommended action with its numbers (text borrowed from the playbook).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Recommendation<'a> {
    /// Action id.
    pub action: &'a str,
    /// Action name.
    pub name: &'a str,
    /// Channel.
    pub channel: &'a str,
    /// Cost.
    pub cost: f64,
    /// Save rate.
    pub save_rate: f64,
    /// P(churn) × value × save rate − cost.
    pub expected_value: f64,
    /// Why: the rule that matched and the top reasons (rendered as text).
    pub why: Why<'a>,
    /// Message with placeholders filled in (borrowed when it has none).
    pub message: std::borrow::Cow<'a, str>,
}

/// Why an action is recommended; rendered as text only when shown or serialised.
#[derive(Debug, Clone, PartialEq)]
pub enum Why<'a> {
    /// A rule matched; up to two risk drivers from the decision path.
    Rule {
        /// Rule id.
        rule: &'a str,
        /// Readable decision-path conditions that raised the risk.
        drivers: [Option<&'a str>; 2],
    },
    /// The suppression action: no paid action pays off.
    NoPositiveValue {
        /// Best expected value among the paid actions.
        best: f64,
    },
}

impl std::fmt::Display for Why<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Why::Rule { rule, drivers } => {
                write!(f, "rule '{rule}'")?;
                let mut first = true;
                for d in drivers.iter().flatten() {
                    f.write_str(if first { "; risk drivers: " } else { "; " })?;
                    f.write_str(d)?;
                    first = false;
                }
                Ok(())
            }
            Why::NoPositiveValue { best } => write!(
                f,
                "no paid action has a positive expected value (best {best:.2})"
            ),
        }
    }
}

impl Serialize for Why<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// What the playbook says about one customer.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Advice<'a> {
    /// low / medium / high.
    pub risk_band: &'static str,
    /// Customer value used.
    pub value: f64,
    /// `control` or `treatment`.
    pub treatment: &'static str,
    /// Ranked recommendations (empty for the control group).
    pub recommendations: Vec<Recommendation<'a>>,
}

/// Customer context for [`Playbook::advise`].
pub struct Context<'a, 'r> {
    /// Encoded row.
    pub row: &'a [f64],
    /// Calibrated probability.
    pub probability: f64,
    /// Segment name.
    pub segment: Option<&'a str>,
    /// RFM class.
    pub rfm_class: Option<&'a str>,
    /// Lifecycle stage.
    pub lifecycle: Option<&'a str>,
    /// Customer id, if known.
    pub customer_id: Option<&'a str>,
    /// Top reasons (readable conditions), for the "why"; they outlive the context (they belong
    /// to the scorer) so recommendations can borrow them.
    pub reasons: &'a [&'r str],
}

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
    toml::from_str(text).map_err(|e| PlaybookError::Read {
        file: file.to_string(),
        message: e.to_string(),
    })
}

/// The default playbook shipped with the binary (`training/playbook.toml`).
pub const DEFAULT_PLAYBOOK: &str = include_str!("../training/playbook.toml");

fn parse_predicate(text: &str, enc: &Encoder) -> Result<Predicate, String> {
    let ops = [
        ("==", Op::Eq),
        ("!=", Op::Ne),
        ("<=", Op::Le),
        (">=", Op::Ge),
        ("<", Op::Lt),
        (">", Op::Gt),
    ];
    let (pos, sym, op) = ops
        .iter()
        .filter_map(|(s, o)| text.find(s).map(|p| (p, *s, *o)))
        .min_by_key(|(p, s, _)| (*p, std::cmp::Reverse(s.len())))
        .ok_or_else(|| format!("predicate '{text}' has no operator (==, !=, <, <=, >, >=)"))?;
    let field = text[..pos].trim();
    let rhs = text[pos + sym.len()..].trim();
    if field.is_empty() || rhs.is_empty() {
        return Err(format!("predicate '{text}' must read FIELD OP VALUE"));
    }
    let (ii, input) = enc
        .inputs
        .iter()
        .enumerate()
        .find(|(_, i)| i.name == field)
        .ok_or_else(|| {
            format!(
                "predicate '{text}': unknown feature '{field}'; features: {}",
                enc.inputs
                    .iter()
                    .map(|i| i.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        })?;
    let _ = ii;
    let quoted = rhs.len() >= 2
        && (rhs.starts_with('"') && rhs.ends_with('"')
            || rhs.starts_with('\'') && rhs.ends_with('\''));
    let text_value = if quoted { &rhs[1..rhs.len() - 1] } else { rhs };
    match (&input.kind, &input.encoding) {
        (
            FeatureKind::Categorical,
            InputEncoding::OneHot {
                levels,
                first_column,
                ..
            },
        ) => {
            if !matches!(op, Op::Eq | Op::Ne) {
                return Err(format!(
                    "predicate '{text}': '{field}' is categorical; use == or !="
                ));
            }
            let li = levels.iter().position(|l| l == text_value).ok_or_else(|| {
                format!(
                    "predicate '{text}': '{text_value}' is not a level of '{field}'; levels: {}",
                    levels.join(", ")
                )
            })?;
            Ok(Predicate {
                text: text.to_string(),
                column: first_column + li,
                op,
                value: 1.0,
            })
        }
        (
            FeatureKind::Boolean {
                true_token,
                false_token,
            },
            InputEncoding::Numeric { column, .. },
        ) => {
            if !matches!(op, Op::Eq | Op::Ne) {
                return Err(format!(
                    "predicate '{text}': '{field}' is boolean; use == or !="
                ));
            }
            let v = crate::ingest::value::parse_bool(text_value, true_token, false_token)
                .ok_or_else(|| {
                    format!("predicate '{text}': expected '{true_token}' or '{false_token}'")
                })?;
            Ok(Predicate {
                text: text.to_string(),
                column: *column,
                op,
                value: v as u8 as f64,
            })
        }
        (_, InputEncoding::Numeric { column, .. }) => {
            let v = crate::ingest::value::parse_number(text_value)
                .filter(|_| !quoted)
                .ok_or_else(|| {
                    format!(
                        "predicate '{text}': '{field}' is numeric; expected a number, found {rhs}"
                    )
                })?;
            Ok(Predicate {
                text: text.to_string(),
                column: *column,
                op,
                value: v,
            })
        }
        _ => Err(format!("predicate '{text}': '{field}' cannot be compared")),
    }
}

fn compile_expression(expr: &str, enc: &Encoder) -> Result<Vec<Tok>, String> {
    // shunting-yard over numbers, input names and + - * / ( )
    let prec = |c: char| if c == '*' || c == '/' { 2 } else { 1 };
    let mut out = Vec::new();
    let mut ops: Vec<char> = Vec::new();
    let chars: Vec<char> = expr.chars().collect();
    let mut i = 0;
    let mut expect_operand = true;
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            i += 1;
            continue;
        }
        if "+-*/".contains(c) && !expect_operand {
            while let Some(&top) = ops.last() {
                if top != '(' && prec(top) >= prec(c) {
                    out.push(Tok::Op(ops.pop().expect("non-empty")));
                } else {
                    break;
                }
            }
            ops.push(c);
            expect_operand = true;
            i += 1;
        } else if c == '(' && expect_operand {
            ops.push(c);
            i += 1;
        } else if c == ')' && !expect_operand {
            loop {
                match ops.pop() {
                    Some('(') => break,
                    Some(o) => out.push(Tok::Op(o)),
                    None => return Err(format!("unbalanced ')' in '{expr}'")),
                }
            }
            i += 1;
        } else if expect_operand {
            let start = i;
            while i < chars.len()
                && !" \t+*/()".contains(chars[i])
                && !(chars[i] == '-' && i > start && !chars[i - 1].eq_ignore_ascii_case(&'e'))
            {
                i += 1;
            }
            let word: String = chars[start..i].iter().collect();
            if let Some(v) = crate::ingest::value::parse_number(&word) {
                out.push(Tok::Num(v));
            } else {
                let input = enc
                    .inputs
                    .iter()
                    .find(|x| x.name == word)
                    .ok_or_else(|| format!("unknown feature '{word}' in '{expr}'"))?;
                match (&input.kind, &input.encoding) {
                    (FeatureKind::Numeric, InputEncoding::Numeric { column, .. }) => {
                        out.push(Tok::Col(*column))
                    }
                    _ => return Err(format!("'{word}' in '{expr}' is not numeric")),
                }
            }
            expect_operand = false;
        } else {
            return Err(format!("unexpected '{c}' in '{expr}'"));
        }
    }
    if expect_operand {
        return Err(format!("'{expr}' ends with an operator or is empty"));
    }
    while let Some(o) = ops.pop() {
        if o == '(' {
            return Err(format!("unbalanced '(' in '{expr}'"));
        }
        out.push(Tok::Op(o));
    }
    Ok(out)
}

fn eval_rpn(rpn: &[Tok], row: &[f64]) -> f64 {
    let mut st: Vec<f64> = Vec::with_capacity(4);
    for t in rpn {
        match t {
            Tok::Col(c) => st.push(row[*c]),
            Tok::Num(v) => st.push(*v),
            Tok::Op(o) => {
                let b = st.pop().unwrap_or(0.0);
                let a = st.pop().unwrap_or(0.0);
                st.push(match o {
                    '+' => a + b,
                    '-' => a - b,
                    '*' => a * b,
                    _ => {
                        if b == 0.0 {
                            0.0
                        } else {
                            a / b
                        }
                    }
                });
            }
        }
    }
    st.pop().unwrap_or(0.0)
}

/// Deterministic control-group assignment: sha256 of `experiment` and the customer id.
pub fn in_control(customer_id: &str, experiment: &str, holdout_percent: f64) -> bool {
    let h = Sha256::digest(format!("{experiment}\u{1f}{customer_id}").as_bytes());
    let v = u64::from_le_bytes(h[..8].try_into().expect("8 bytes"));
    (v % 1_000_000) as f64 / 10_000.0 < holdout_percent
}

impl Playbook {
    /// Validate `file` against a model's encoder and compile it.
    pub fn compile(
        file: PlaybookFile,
        enc: &Encoder,
        source: &str,
    ) -> Result<Playbook, PlaybookError> {
        let bad = |place: String, problem: String| PlaybookError::Invalid {
            file: source.to_string(),
            place,
            problem,
        };
        if !(0.0..=50.0).contains(&file.holdout_percent) {
            return Err(bad(
                "holdout_percent".into(),
                format!("must be 0..=50, got {}", file.holdout_percent),
            ));
        }
        if file.top_n == 0 || file.top_n > 20 {
            return Err(bad(
                "top_n".into(),
                format!("must be 1..=20, got {}", file.top_n),
            ));
        }
        let rb = file.risk_bands;
        if !(0.0 < rb.medium && rb.medium < rb.high && rb.high < 1.0) {
            return Err(bad(
                "risk_bands".into(),
                format!(
                    "need 0 < medium < high < 1, got medium {} and high {}",
                    rb.medium, rb.high
                ),
            ));
        }
        if !file.value.default.is_finite() || file.value.default < 0.0 {
            return Err(bad(
                "value".into(),
                format!(
                    "default must be a non-negative number, got {}",
                    file.value.default
                ),
            ));
        }
        let mut ids = std::collections::HashSet::new();
        for a in &file.actions {
            let place = format!("action '{}'", a.id);
            if !ids.insert(a.id.as_str()) {
                return Err(bad(place, "defined twice".into()));
            }
            if !(a.cost.is_finite() && a.cost >= 0.0) {
                return Err(bad(place, format!("cost must be ≥ 0, got {}", a.cost)));
            }
            if !(0.0..=1.0).contains(&a.save_rate) {
                return Err(bad(
                    place,
                    format!("save_rate must be within 0..=1, got {}", a.save_rate),
                ));
            }
            if !CHANNELS.contains(&a.channel.as_str()) {
                return Err(bad(
                    place,
                    format!(
                        "unknown channel '{}'; channels: {}",
                        a.channel,
                        CHANNELS.join(", ")
                    ),
                ));
            }
        }
        if let Some(s) = &file.suppress_action {
            if !ids.contains(s.as_str()) {
                return Err(bad(
                    "suppress_action".into(),
                    format!("unknown action '{s}'"),
                ));
            }
        }
        for (class, cap) in &file.cost_caps {
            if !crate::segment::rfm::CLASSES.contains(&class.as_str()) {
                return Err(bad(
                    "cost_caps".into(),
                    format!(
                        "unknown RFM class '{class}'; classes: {}",
                        crate::segment::rfm::CLASSES.join(", ")
                    ),
                ));
            }
            if !(cap.is_finite() && *cap >= 0.0) {
                return Err(bad(
                    "cost_caps".into(),
                    format!("cap for '{class}' must be ≥ 0, got {cap}"),
                ));
            }
        }
        let mut predicates = Vec::new();
        let mut rule_ids = std::collections::HashSet::new();
        for r in &file.rules {
            let place = format!("rule '{}'", r.id);
            if !rule_ids.insert(r.id.as_str()) {
                return Err(bad(place, "defined twice".into()));
            }
            if r.actions.is_empty() {
                return Err(bad(place, "lists no actions".into()));
            }
            for a in &r.actions {
                if !ids.contains(a.as_str()) {
                    return Err(bad(place.clone(), format!("unknown action '{a}'")));
                }
            }
            for c in &r.rfm_class {
                if !crate::segment::rfm::CLASSES.contains(&c.as_str()) {
                    return Err(bad(
                        place.clone(),
                        format!(
                            "unknown RFM class '{c}'; classes: {}",
                            crate::segment::rfm::CLASSES.join(", ")
                        ),
                    ));
                }
            }
            for s in &r.lifecycle {
                if !crate::segment::lifecycle::STAGES.contains(&s.as_str()) {
                    return Err(bad(
                        place.clone(),
                        format!(
                            "unknown lifecycle stage '{s}'; stages: {}",
                            crate::segment::lifecycle::STAGES.join(", ")
                        ),
                    ));
                }
            }
            for b in &r.risk_band {
                if !["low", "medium", "high"].contains(&b.as_str()) {
                    return Err(bad(
                        place.clone(),
                        format!("unknown risk band '{b}' (low, medium, high)"),
                    ));
                }
            }
            if let Some(m) = r.max_cost {
                if !(m.is_finite() && m >= 0.0) {
                    return Err(bad(place.clone(), format!("max_cost must be ≥ 0, got {m}")));
                }
            }
            let mut ps = Vec::new();
            for w in &r.when {
                ps.push(parse_predicate(w, enc).map_err(|p| bad(place.clone(), p))?);
            }
            predicates.push(ps);
        }
        let value_rpn = match &file.value.expression {
            Some(e) => {
                Some(compile_expression(e, enc).map_err(|p| bad("value.expression".into(), p))?)
            }
            None => None,
        };
        let mut actionable_inputs = Vec::new();
        for a in &file.actionable {
            let i = enc
                .inputs
                .iter()
                .position(|x| &x.name == a)
                .ok_or_else(|| bad("actionable".into(), format!("unknown feature '{a}'")))?;
            if enc.inputs[i].kind == FeatureKind::Numeric {
                return Err(bad(
                    "actionable".into(),
                    format!("'{a}' is numeric; levers change categorical or boolean inputs"),
                ));
            }
            actionable_inputs.push(i);
        }
        Ok(Playbook {
            file,
            predicates,
            value_rpn,
            actionable_inputs,
        })
    }

    /// Customer value of an encoded row.
    pub fn value(&self, row: &[f64]) -> f64 {
        match &self.value_rpn {
            Some(rpn) => eval_rpn(rpn, row).max(0.0),
            None => self.file.value.default,
        }
    }

    /// Rank the eligible actions for one customer.
    pub fn advise<'s>(&'s self, ctx: &Context<'_, 's>) -> Advice<'s> {
        let band = self.file.risk_bands.band(ctx.probability);
        let value = self.value(ctx.row);
        let treatment = match ctx.customer_id {
            Some(id)
                if self.file.holdout_percent > 0.0
                    && in_control(id, &self.file.experiment, self.file.holdout_percent) =>
            {
                "control"
            }
            _ => "treatment",
        };
        let any = |list: &[String], v: Option<&str>| {
            list.is_empty() || v.is_some_and(|v| list.iter().any(|x| x == v))
        };
        // eligible action → (priority, rule id)
        let mut eligible: Vec<(&Action, i32, &str)> = Vec::new();
        for (r, preds) in self.file.rules.iter().zip(&self.predicates) {
            let ok = any(&r.segment, ctx.segment)
                && any(&r.rfm_class, ctx.rfm_class)
                && any(&r.lifecycle, ctx.lifecycle)
                && any(&r.risk_band, Some(band))
                && preds.iter().all(|p| p.op.holds(ctx.row[p.column], p.value));
            if !ok {
                continue;
            }
            for aid in &r.actions {
                let Some(a) = self.file.actions.iter().find(|a| &a.id == aid) else {
                    continue;
                };
                if r.max_cost.is_some_and(|m| a.cost > m) {
                    continue;
                }
                match eligible.iter_mut().find(|e| e.0.id == a.id) {
                    Some(e) if e.1 >= r.priority => {}
                    Some(e) => {
                        e.1 = r.priority;
                        e.2 = &r.id;
                    }
                    None => eligible.push((a, r.priority, &r.id)),
                }
            }
        }
        if let Some(cap) = ctx.rfm_class.and_then(|c| self.file.cost_caps.get(c)) {
            eligible.retain(|e| e.0.cost <= *cap);
        }
        let ev = |a: &Action| ctx.probability * value * a.save_rate - a.cost;
        eligible.sort_by(|x, y| {
            ev(y.0)
                .total_cmp(&ev(x.0))
                .then(y.1.cmp(&x.1))
                .then(x.0.id.cmp(&y.0.id))
        });
        let drivers = [ctx.reasons.first().copied(), ctx.reasons.get(1).copied()];
        let make = |a: &'s Action, rule: &'s str| -> Recommendation<'s> {
            Recommendation {
                action: &a.id,
                name: &a.name,
                channel: &a.channel,
                cost: a.cost,
                save_rate: a.save_rate,
                expected_value: ev(a),
                why: Why::Rule { rule, drivers },
                message: if a.message.contains('{') {
                    std::borrow::Cow::Owned(
                        a.message
                            .replace("{customer_id}", ctx.customer_id.unwrap_or("customer"))
                            .replace("{segment}", ctx.segment.unwrap_or(""))
                            .replace("{rfm_class}", ctx.rfm_class.unwrap_or("")),
                    )
                } else {
                    std::borrow::Cow::Borrowed(&a.message)
                },
            }
        };
        let mut recs: Vec<Recommendation> = eligible
            .iter()
            .filter(|(a, _, _)| a.cost == 0.0 || ev(a) > 0.0)
            .take(self.file.top_n)
            .map(|(a, _, r)| make(a, r))
            .collect();
        let best_paid = eligible
            .iter()
            .filter(|(a, _, _)| a.cost > 0.0)
            .map(|(a, _, _)| ev(a))
            .fold(f64::NEG_INFINITY, f64::max);
        if recs.iter().all(|r| r.cost == 0.0) && best_paid <= 0.0 {
            if let Some(sid) = &self.file.suppress_action {
                if let Some(a) = self.file.actions.iter().find(|a| &a.id == sid) {
                    recs.retain(|r| r.action != a.id);
                    let mut r = make(a, "");
                    r.why = Why::NoPositiveValue {
                        best: if best_paid.is_finite() {
                            best_paid
                        } else {
                            0.0
                        },
                    };
                    recs.insert(0, r);
                    recs.truncate(self.file.top_n);
                }
            }
        }
        if treatment == "control" {
            recs.clear();
        }
        Advice {
            risk_band: band,
            value,
            treatment,
            recommendations: recs,
        }
    }
}
