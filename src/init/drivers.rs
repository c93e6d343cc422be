//! Churn drivers measured on the label — per input, the condition whose churn rate is well above
//! the base rate — and their mapping onto the brief's catalogue as a decision list of rules.

use super::playbook::field;
use super::Decision;
use crate::ingest::norm_name as norm;
use crate::ingest::{CustomerData, FeatureColumn, FeatureKind, FeatureValues};
use crate::playbook::Rule;
use crate::util::fmt_num;

/// Smallest share of rows a driver condition covers.
const MIN_SUPPORT: f64 = 0.05;
/// A driver's churn rate exceeds the base rate by at least this share of the smaller of the
/// base rate and its complement (×1.25 at a low base rate; at a base rate of 0.7, 0.775).
const MIN_EXCESS: f64 = 0.25;
/// Most driver rules written.
const MAX_DRIVERS: usize = 8;

/// How a column name maps onto the catalogue: name parts, which side of the column raises the
/// risk for the action to fit (`None`: any), and the action.
struct Mapping {
    parts: &'static [&'static str],
    low_side: Option<bool>,
    action: &'static str,
}

/// First match wins.
const MAPPINGS: &[Mapping] = &[
    Mapping {
        parts: &["complain", "satisf", "csat", "nps"],
        low_side: None,
        action: "COMPLAINT_RECOVERY",
    },
    Mapping {
        parts: &[
            "support",
            "servicecall",
            "customerservice",
            "helpdesk",
            "ticket",
            "security",
            "protection",
            "backup",
        ],
        low_side: None,
        action: "PRIORITY_SUPPORT",
    },
    Mapping {
        parts: &[
            "contract",
            "commitment",
            "plan",
            "subscriptiontype",
            "billingcycle",
        ],
        low_side: None,
        action: "CONTRACT_UPGRADE",
    },
    Mapping {
        parts: super::roles::TENURE_NAMES,
        low_side: Some(true),
        action: "WELCOME_OFFER",
    },
    Mapping {
        parts: &[
            "recency",
            "dayssince",
            "lastlogin",
            "lastpurchase",
            "lastorder",
            "inactive",
        ],
        low_side: Some(false),
        action: "WINBACK_EMAIL",
    },
    Mapping {
        parts: &[
            "frequency",
            "visits",
            "logins",
            "orders",
            "purchases",
            "sessions",
            "activemonths",
        ],
        low_side: Some(true),
        action: "REPURCHASE_INCENTIVE",
    },
    Mapping {
        parts: &["isactive", "activemember", "active"],
        low_side: Some(true),
        action: "WINBACK_EMAIL",
    },
    Mapping {
        parts: &["numofproducts", "products", "numservices", "services"],
        low_side: Some(true),
        action: "COMPLEMENTARY_PUSH",
    },
    Mapping {
        parts: &["payment", "paperless", "autopay"],
        low_side: None,
        action: "SIMPLIFY_PURCHASE",
    },
    Mapping {
        parts: &["charge", "price", "fee", "bill", "cost"],
        low_side: Some(false),
        action: "PRICE_OFFER",
    },
];

/// A condition on one input whose churn rate is well above the base rate.
struct Driver {
    column: String,
    predicate: String,
    /// The predicate that holds exactly where `predicate` does not (a missing value is its
    /// training median, so one of the two holds).
    negation: String,
    rows: usize,
    rate: f64,
    low_side: Option<bool>,
}

impl Driver {
    /// Excess churners the condition covers.
    fn score(&self, base: f64) -> f64 {
        (self.rate - base) * self.rows as f64
    }
}

/// Churn rate and row count of the rows where `hit` holds.
fn rate_where(label: &[bool], rows_in: &[usize], hit: impl Fn(usize) -> bool) -> (usize, f64) {
    let (mut rows, mut churn) = (0usize, 0usize);
    for &i in rows_in {
        if hit(i) {
            rows += 1;
            churn += label[i] as usize;
        }
    }
    (
        rows,
        if rows == 0 {
            0.0
        } else {
            churn as f64 / rows as f64
        },
    )
}

/// The candidate conditions on one column, best first.
fn conditions(c: &FeatureColumn, label: &[bool], rows: &[usize]) -> Vec<Driver> {
    // a name with a backquote cannot be written in a predicate
    let Some(f) = field(&c.name) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    let mut push = |(predicate, negation): (String, String),
                    (rows, rate): (usize, f64),
                    low_side: Option<bool>| {
        out.push(Driver {
            column: c.name.clone(),
            predicate,
            negation,
            rows,
            rate,
            low_side,
        })
    };
    match (&c.kind, &c.values) {
        (FeatureKind::Categorical, FeatureValues::Cat(t)) => {
            let mut levels: Vec<&str> = rows.iter().filter_map(|&i| t.get(i)).collect();
            levels.sort_unstable();
            levels.dedup();
            if levels.len() > 30 {
                return out;
            }
            for l in levels {
                let q = l.replace('\\', "\\\\").replace('"', "\\\"");
                if q != l {
                    continue; // a level with quotes cannot be written in a predicate
                }
                push(
                    (format!("{f} == \"{l}\""), format!("{f} != \"{l}\"")),
                    rate_where(label, rows, |i| t.get(i) == Some(l)),
                    None,
                );
            }
        }
        (
            FeatureKind::Boolean {
                true_token,
                false_token,
            },
            FeatureValues::Num(v),
        ) => {
            let (t, n) = (
                format!("{f} == \"{true_token}\""),
                format!("{f} == \"{false_token}\""),
            );
            push(
                (t.clone(), n.clone()),
                rate_where(label, rows, |i| v[i] == Some(1.0)),
                Some(false),
            );
            push(
                (n, t),
                rate_where(label, rows, |i| v[i] == Some(0.0)),
                Some(true),
            );
        }
        (FeatureKind::Numeric, FeatureValues::Num(v)) => {
            let mut present: Vec<f64> = rows.iter().filter_map(|&i| v[i]).collect();
            present.sort_by(f64::total_cmp);
            let mut xs = present.clone();
            xs.dedup();
            // a constant says nothing; whole numbers different on (nearly) every row are a key
            // (a driver on one would print a customer's id)
            let whole = xs.iter().all(|x| x.fract() == 0.0);
            if xs.len() < 2 || (whole && xs.len() * 10 >= present.len() * 9) {
                return out;
            }
            let q = |p: f64| present[((present.len() - 1) as f64 * p).round() as usize];
            let (lo, hi) = (q(0.25), q(0.75));
            let (lo_s, hi_s) = (fmt_num(lo), fmt_num(hi));
            push(
                (format!("{f} <= {lo_s}"), format!("{f} > {lo_s}")),
                rate_where(label, rows, |i| v[i].is_some_and(|x| x <= lo)),
                Some(true),
            );
            push(
                (format!("{f} >= {hi_s}"), format!("{f} < {hi_s}")),
                rate_where(label, rows, |i| v[i].is_some_and(|x| x >= hi)),
                Some(false),
            );
        }
        _ => {}
    }
    out
}

/// The strongest driver per column, strongest first.
fn drivers(data: &CustomerData, rows: &[usize], min_count: usize, base: f64) -> Vec<Driver> {
    let n = rows.len();
    // a level rarer than `min_count` in these rows has no column of its own in the encoder,
    // so a predicate could not name it
    let min_rows = ((n as f64 * MIN_SUPPORT).ceil() as usize)
        .max(20)
        .max(min_count);
    let mut best: Vec<Driver> = data
        .features
        .iter()
        .filter_map(|c| {
            conditions(c, &data.label, rows)
                .into_iter()
                .filter(|d| {
                    d.rows >= min_rows
                        && d.rows < n
                        && d.rate - base >= MIN_EXCESS * base.min(1.0 - base)
                })
                .max_by(|a, b| a.score(base).total_cmp(&b.score(base)))
        })
        .collect();
    best.sort_by(|a, b| {
        b.score(base)
            .total_cmp(&a.score(base))
            .then(a.column.cmp(&b.column))
    });
    best
}

/// The catalogue action for a driver, by its column's name and side.
fn mapped(d: &Driver) -> Option<&'static str> {
    let nm = norm(&d.column);
    MAPPINGS.iter().find_map(|m| {
        let side_ok = match (m.low_side, d.low_side) {
            (Some(want), Some(got)) => want == got,
            _ => true,
        };
        (side_ok && m.parts.iter().any(|p| nm.contains(p))).then_some(m.action)
    })
}

/// One rule per mapped driver (medium and high risk), as a decision list: the most specific
/// driver (fewest customers) first, and each later rule only for customers none of the earlier
/// drivers covers — so a customer gets the action of their most specific driver, and one broad
/// driver (month-to-month contracts) does not hand its action to everyone.
pub(super) fn driver_rules(
    data: &CustomerData,
    rows: &[usize],
    min_count: usize,
    base: f64,
    decisions: &mut Vec<Decision>,
) -> Vec<Rule> {
    let mut chosen: Vec<(Driver, &'static str, String)> = Vec::new();
    for d in drivers(data, rows, min_count, base) {
        let how = format!(
            "churn rate {:.3} on {} rows ({:.1}× the base rate {:.3})",
            d.rate,
            d.rows,
            d.rate / base.max(f64::MIN_POSITIVE),
            base
        );
        let Some(action) = mapped(&d) else {
            decisions.push(Decision::new(
                "driver",
                &d.predicate,
                "no rule of its own",
                format!("{how}; the catalogue has no action that changes it (covered by the high-risk rule)"),
            ));
            continue;
        };
        if chosen.len() >= MAX_DRIVERS || chosen.iter().any(|(_, a, _)| *a == action) {
            decisions.push(Decision::new(
                "driver",
                &d.predicate,
                "no rule of its own",
                format!("{how}; a stronger driver already proposes {action}"),
            ));
            continue;
        }
        chosen.push((d, action, how));
    }
    chosen.sort_by(|a, b| a.0.rows.cmp(&b.0.rows).then(a.0.column.cmp(&b.0.column)));
    let mut rules: Vec<Rule> = Vec::new();
    let mut earlier: Vec<String> = Vec::new();
    for (d, action, how) in chosen {
        let id = format!("driver-{}", slug(&d.column));
        decisions.push(Decision::new(
            "driver",
            &d.predicate,
            &format!("rule '{id}' → {action}"),
            if earlier.is_empty() {
                how
            } else {
                format!(
                    "{how}; for customers without the {} more specific driver(s) above it",
                    earlier.len()
                )
            },
        ));
        let mut when = vec![d.predicate.clone()];
        when.extend(earlier.iter().cloned());
        earlier.push(d.negation.clone());
        rules.push(Rule {
            id,
            actions: vec![action.to_string()],
            priority: 40 - rules.len() as i32,
            segment: vec![],
            rfm_class: vec![],
            lifecycle: vec![],
            risk_band: vec!["medium".into(), "high".into()],
            when,
            max_cost: None,
        });
    }
    rules
}

/// A rule id part from a column name.
fn slug(name: &str) -> String {
    let s: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect();
    let s = s.trim_matches('-').to_string();
    if s.is_empty() {
        "column".into()
    } else {
        s
    }
}
