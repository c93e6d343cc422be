//! A playbook inferred from a customer-level table: customer value from a revenue-like column,
//! the churn drivers measured on the label, each driver mapped onto the brief's action catalogue,
//! and the inputs levers may change. Costs and save rates are the catalogue's, stated as
//! assumptions; costs are scaled to the table's money.

use super::Decision;
use crate::ingest::norm_name as norm;
use crate::ingest::{CustomerData, FeatureColumn, FeatureKind, FeatureValues};
use crate::playbook::{Action, PlaybookFile, RiskBands, Rule, ValueConfig, DEFAULT_PLAYBOOK};
use crate::util::fmt_num;

/// The catalogue's costs are for a customer worth this much; an inferred playbook scales them
/// by the table's median customer value ÷ this.
pub const REFERENCE_VALUE: f64 = 500.0;
/// Assumed share of revenue that is margin.
pub const MARGIN: f64 = 0.3;
/// Assumed yearly discount rate of the CLV.
pub const DISCOUNT: f64 = 0.1;

/// Name parts of inputs a business can change (levers), when categorical.
const ACTIONABLE_PARTS: &[&str] = &[
    "contract",
    "plan",
    "payment",
    "paperless",
    "billing",
    "support",
    "security",
    "protection",
    "backup",
    "streaming",
    "package",
    "tier",
    "subscription",
    "channel",
    "delivery",
];

/// A revenue-like column and how one unit of it becomes a year of revenue.
struct Revenue {
    column: String,
    per_year: f64,
    what: &'static str,
}

/// Revenue columns by name, best first: (name parts all present, units to a year, meaning).
const REVENUE: &[(&[&str], f64, &str)] = &[
    (&["monthly", "charge"], 12.0, "a monthly charge × 12"),
    (&["monthly", "fee"], 12.0, "a monthly fee × 12"),
    (&["monthly", "revenue"], 12.0, "monthly revenue × 12"),
    (&["monthly", "spend"], 12.0, "monthly spend × 12"),
    (&["monthly", "bill"], 12.0, "a monthly bill × 12"),
    (&["mrr"], 12.0, "monthly recurring revenue × 12"),
    (&["annual", "revenue"], 1.0, "yearly revenue"),
    (&["yearly", "revenue"], 1.0, "yearly revenue"),
    (&["arr"], 1.0, "yearly recurring revenue"),
    (
        &["monetarytotal"],
        1.0,
        "spend before the cutoff, read as a year's revenue",
    ),
    (&["revenue"], 1.0, "revenue, read as a year's"),
    (&["spend"], 1.0, "spend, read as a year's revenue"),
    (
        &["totalcharges"],
        1.0,
        "total charges, read as a year's revenue",
    ),
    (&["balance"], 0.02, "a balance earning an assumed 2% a year"),
];

/// The inferred playbook and what was decided.
pub struct Inferred {
    /// The playbook.
    pub file: PlaybookFile,
    /// Decisions and their reasons.
    pub decisions: Vec<Decision>,
    /// The revenue-like column customer value is computed from, if any.
    pub revenue: Option<String>,
}

/// A name as it is written in a predicate or value expression (backquoted unless plain);
/// `None` for a name holding a backquote itself, which neither can spell.
pub fn field(name: &str) -> Option<String> {
    if name.is_empty() || name.contains('`') {
        None
    } else if name
        .chars()
        .all(|c| c.is_alphanumeric() || c == '_' || c == '.')
        && !name.starts_with(|c: char| c.is_ascii_digit())
    {
        Some(name.to_string())
    } else {
        Some(format!("`{name}`"))
    }
}

/// Infer a playbook for `data` named `name`, measuring churn on `rows` only (training: the
/// training rows, so the holdout judges the playbook fairly); driver levels are at least
/// `min_count` strong there, as the encoder needs to give them a column.
pub fn infer_playbook(
    data: &CustomerData,
    rows: &[usize],
    min_count: usize,
    name: &str,
) -> Inferred {
    let n = rows.len().max(1);
    let base = rows.iter().filter(|&&i| data.label[i]).count() as f64 / n as f64;
    let mut decisions = Vec::new();
    let catalogue = crate::playbook::parse(DEFAULT_PLAYBOOK, "built-in playbook")
        .expect("the built-in playbook parses");
    let (value, values, revenue) = customer_value(data, base, &mut decisions);
    let scale = scale_of(&values);
    let bands = risk_bands(base);
    decisions.push(Decision::new(
        "risk bands",
        "risk_bands",
        &format!(
            "medium ≥ {}, high ≥ {}",
            fmt_num(bands.medium),
            fmt_num(bands.high)
        ),
        format!(
            "medium from the base churn rate ({:.3}); high halfway from it to certainty",
            base
        ),
    ));
    let mut rules = super::drivers::driver_rules(data, rows, min_count, base, &mut decisions);
    rules.extend(generic_rules(
        data,
        revenue.as_deref(),
        &values,
        scale,
        &catalogue,
        &mut decisions,
    ));
    let actionable = actionable_inputs(data, &mut decisions);
    let never_levers = never_levers(data, &actionable);
    let used: Vec<&str> = rules
        .iter()
        .flat_map(|r| r.actions.iter().map(String::as_str))
        .chain(["SUPPRESS_MARKETING"])
        .collect();
    let actions: Vec<Action> = catalogue
        .actions
        .iter()
        .filter(|a| used.contains(&a.id.as_str()))
        .map(|a| Action {
            cost: scaled(a.cost, scale),
            ..a.clone()
        })
        .collect();
    if scale != 1.0 {
        decisions.push(Decision::new(
            "costs",
            "actions",
            &format!("catalogue costs × {}", fmt_num(round_to(scale, 4))),
            format!(
                "the catalogue's costs are for a customer worth {}; the median customer here is worth {} (assumption: contact costs scale with what customers bring in)",
                fmt_num(REFERENCE_VALUE),
                fmt_num(round_to(scale * REFERENCE_VALUE, 2))
            ),
        ));
    }
    let file = PlaybookFile {
        name: name.to_string(),
        experiment: format!("{name}-retention"),
        holdout_percent: 10.0,
        top_n: 3,
        actionable,
        never_levers,
        lever_min_support: crate::features::LEVER_MIN_SUPPORT,
        suppress_action: Some("SUPPRESS_MARKETING".into()),
        cost_caps: catalogue
            .cost_caps
            .iter()
            .map(|(class, cap)| (class.clone(), scaled(*cap, scale)))
            .collect(),
        value,
        risk_bands: bands,
        learning: Default::default(),
        actions,
        rules,
        text: Default::default(),
    };
    Inferred {
        file,
        decisions,
        revenue,
    }
}

fn round_to(x: f64, digits: i32) -> f64 {
    let f = 10f64.powi(digits);
    (x * f).round() / f
}

/// A catalogue cost in this table's money (cents; a paid action stays paid).
fn scaled(cost: f64, scale: f64) -> f64 {
    if cost == 0.0 {
        0.0
    } else {
        round_to(cost * scale, 2).max(0.01)
    }
}

/// Median customer value ÷ [`REFERENCE_VALUE`] (1 without values).
fn scale_of(values: &[f64]) -> f64 {
    if values.is_empty() {
        return 1.0;
    }
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let median = v[v.len() / 2];
    if median > 0.0 {
        median / REFERENCE_VALUE
    } else {
        1.0
    }
}

/// Medium at the base rate, high halfway from it to 1 (kept inside (0, 1) and apart).
fn risk_bands(base: f64) -> RiskBands {
    let medium = round_to(base.clamp(0.05, 0.8), 2);
    let high = round_to(
        (medium + (1.0 - medium) / 2.0).clamp(medium + 0.05, 0.95),
        2,
    );
    RiskBands { medium, high }
}

/// The present numbers of a numeric column.
fn numbers(c: &FeatureColumn) -> Option<&[Option<f64>]> {
    match (&c.kind, &c.values) {
        (FeatureKind::Numeric, FeatureValues::Num(v)) => Some(v),
        _ => None,
    }
}

/// The value expression (expected remaining margin), each row's value under it and the
/// revenue column it reads.
fn customer_value(
    data: &CustomerData,
    base: f64,
    decisions: &mut Vec<Decision>,
) -> (ValueConfig, Vec<f64>, Option<String>) {
    let found = REVENUE.iter().find_map(|(parts, per_year, what)| {
        data.features.iter().find_map(|c| {
            let nm = norm(&c.name);
            (numbers(c).is_some()
                && field(&c.name).is_some()
                && parts.iter().all(|p| nm.contains(p)))
            .then(|| Revenue {
                column: c.name.clone(),
                per_year: *per_year,
                what,
            })
        })
    });
    let Some(rev) = found else {
        decisions.push(Decision::new(
            "customer value",
            "value",
            &format!("a constant {}", fmt_num(REFERENCE_VALUE)),
            "no revenue-like column (monthly charges, revenue, spend, balance, …): every customer is worth the same; set [value] expression over a column of your data".into(),
        ));
        return (
            ValueConfig {
                expression: None,
                default: REFERENCE_VALUE,
            },
            Vec::new(),
            None,
        );
    };
    // expected remaining margin: margin × r ÷ (1 + d − r), r the yearly retention
    let r = (1.0 - base).clamp(0.05, 0.95);
    let clv = r / (1.0 + DISCOUNT - r);
    let margin = if rev.per_year < 1.0 { 1.0 } else { MARGIN };
    let factor = round_to(rev.per_year * margin * clv, 4);
    let expression = format!(
        "{} * {}",
        field(&rev.column).expect("revenue columns have writable names"),
        fmt_num(factor)
    );
    decisions.push(Decision::new(
        "customer value",
        &rev.column,
        &expression,
        format!(
            "expected remaining margin (the brief's CLV): {} × margin {} × r ÷ (1 + d − r) with r = {:.3} (1 − the base churn rate, read as yearly retention) and d = {}; margin{} and d are assumptions",
            rev.what,
            if margin == 1.0 { "1 (the 2% is margin already)".to_string() } else { fmt_num(margin) },
            r,
            fmt_num(DISCOUNT),
            if margin == 1.0 { " rate" } else { "" },
        ),
    ));
    let col = data
        .features
        .iter()
        .find(|c| c.name == rev.column)
        .and_then(numbers)
        .expect("the revenue column is numeric");
    let values: Vec<f64> = col
        .iter()
        .flatten()
        .map(|x| (x * factor).max(0.0))
        .collect();
    let zero = values.iter().filter(|&&v| v == 0.0).count();
    if zero * 20 >= values.len().max(1) {
        decisions.push(Decision::new(
            "customer value",
            "zero value",
            &format!("{zero} customers worth 0"),
            format!(
                "{:.0}% of customers have {} 0 or less: worth nothing under this expression, so no paid offer pays for them (they get the suppression, whose reason says so); add a constant to the expression if they bring other revenue",
                100.0 * zero as f64 / values.len() as f64,
                rev.column
            ),
        ));
    }
    (
        ValueConfig {
            expression: Some(expression),
            default: REFERENCE_VALUE,
        },
        values,
        Some(rev.column),
    )
}

/// Rules every table gets: high risk, high value at risk, and the RFM classes when the table
/// has RFM columns.
fn generic_rules(
    data: &CustomerData,
    revenue: Option<&str>,
    values: &[f64],
    scale: f64,
    catalogue: &PlaybookFile,
    decisions: &mut Vec<Decision>,
) -> Vec<Rule> {
    let rule = |id: &str, actions: &[&str], priority: i32| Rule {
        id: id.into(),
        actions: actions.iter().map(|a| a.to_string()).collect(),
        priority,
        segment: vec![],
        rfm_class: vec![],
        lifecycle: vec![],
        risk_band: vec![],
        when: vec![],
        max_cost: None,
    };
    let mut rules = vec![Rule {
        risk_band: vec!["high".into()],
        ..rule(
            "high-risk-retention",
            &["EXCLUSIVE_OFFER", "CHURN_REASON_SURVEY"],
            10,
        )
    }];
    decisions.push(Decision::new(
        "rule",
        "high-risk-retention",
        "EXCLUSIVE_OFFER, CHURN_REASON_SURVEY",
        "every high-risk customer gets a retention offer, whatever drives the risk".into(),
    ));
    let q80 = revenue.map(|col| (col, column_quantile(data, col, 0.8)));
    if let Some((col, q80)) = q80.filter(|&(_, q)| q > 0.0 && values.iter().any(|&v| v > 0.0)) {
        rules.push(Rule {
            risk_band: vec!["medium".into(), "high".into()],
            when: vec![format!(
                "{} >= {}",
                field(col).expect("revenue columns have writable names"),
                fmt_num(q80)
            )],
            ..rule("high-value-at-risk", &["VIP_SERVICE"], 30)
        });
        decisions.push(Decision::new(
            "rule",
            "high-value-at-risk",
            "VIP_SERVICE",
            format!(
                "the most valuable fifth of customers ({col} ≥ {}) at medium or high risk",
                fmt_num(q80)
            ),
        ));
    }
    let has = |n: &str| data.features.iter().any(|c| c.name == n);
    if has("recency_days") && has("frequency") && has("monetary_total") {
        // retention spends on customers at risk: the class strategies apply from medium risk
        for r in catalogue
            .rules
            .iter()
            .filter(|r| !r.rfm_class.is_empty() && r.lifecycle.is_empty())
        {
            rules.push(Rule {
                risk_band: vec!["medium".into(), "high".into()],
                max_cost: r.max_cost.map(|c| scaled(c, scale)),
                ..r.clone()
            });
        }
        decisions.push(Decision::new(
            "rule",
            "RFM classes",
            "the brief's per-class strategies",
            "the table has recency_days, frequency and monetary_total; for customers at medium or high risk".into(),
        ));
    }
    rules
}

/// The `p`-quantile of numeric column `col`.
fn column_quantile(data: &CustomerData, col: &str, p: f64) -> f64 {
    let mut v: Vec<f64> = data
        .features
        .iter()
        .find(|c| c.name == col)
        .and_then(numbers)
        .map(|v| v.iter().flatten().copied().collect())
        .unwrap_or_default();
    v.sort_by(f64::total_cmp);
    v.get(((v.len().saturating_sub(1)) as f64 * p).round() as usize)
        .copied()
        .unwrap_or(0.0)
}

/// Categorical inputs named like something the business can change.
fn actionable_inputs(data: &CustomerData, decisions: &mut Vec<Decision>) -> Vec<String> {
    let out: Vec<String> = data
        .features
        .iter()
        .filter(|c| matches!(c.kind, FeatureKind::Categorical))
        .filter(|c| {
            let nm = norm(&c.name);
            ACTIONABLE_PARTS.iter().any(|p| nm.contains(p))
        })
        .map(|c| c.name.clone())
        .collect();
    decisions.push(Decision::new(
        "levers",
        "actionable",
        &if out.is_empty() { "none".to_string() } else { out.join(", ") },
        if out.is_empty() {
            "no categorical input is named like a plan, contract, payment, support or service; levers need categorical inputs the business can change".into()
        } else {
            "categorical inputs named like a plan, contract, payment, support or service: what a business can change".into()
        },
    ));
    out
}

/// Levels of actionable inputs that follow from another input (`No internet service`).
fn never_levers(data: &CustomerData, actionable: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for c in data
        .features
        .iter()
        .filter(|c| actionable.contains(&c.name))
    {
        if let FeatureValues::Cat(t) = &c.values {
            for l in (0..t.len()).filter_map(|i| t.get(i)) {
                let low = l.to_ascii_lowercase();
                if low.starts_with("no ")
                    && low.ends_with(" service")
                    && !out.iter().any(|o| o == l)
                {
                    out.push(l.to_string());
                }
            }
        }
    }
    out
}
