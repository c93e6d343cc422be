//! Column roles of a table the service has not seen: the label, the id, personal data,
//! identifier-like columns to drop and the tenure column with its unit — each with the reason.

use super::{Decision, InitError};
use crate::ingest::value::{is_missing_token, parse_number};
use crate::ingest::{norm_name as norm, personal_match, DEFAULT_PERSONAL_PATTERNS};
use crate::io::{RawData, RawTable};
use crate::util::{fmt_num, FxHashSet};

/// Names (lower-cased, alphanumerics only) that mark a churn label.
const LABEL_NAMES: &[&str] = &[
    "churn",
    "churned",
    "ischurn",
    "ischurned",
    "exited",
    "attrition",
    "attrited",
    "left",
    "cancelled",
    "canceled",
    "lost",
    "label",
    "target",
];

/// Name endings of identifier columns.
const ID_ENDINGS: &[&str] = &["id", "key", "number", "no", "code", "uuid", "guid"];

/// Name parts of a tenure column.
pub(crate) const TENURE_NAMES: &[&str] = &[
    "tenure",
    "customerage",
    "accountage",
    "monthsactive",
    "monthsascustomer",
    "yearsascustomer",
    "dayssincesignup",
    "membershipmonths",
    "membershipyears",
    "withus",
    "accountlength",
    "relationshiplength",
    "lengthofrelationship",
];

/// The tenure column and its unit in days.
#[derive(Debug, Clone, PartialEq)]
pub struct Tenure {
    /// Column name.
    pub column: String,
    /// Days per unit (1, 7, 30.44 or 365.25).
    pub unit_days: f64,
}

/// What the table's columns are for.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Roles {
    /// Label column.
    pub label: String,
    /// Id column, if one was found.
    pub id: Option<String>,
    /// Columns left out as personal data, with the pattern each matched.
    pub personal: Vec<(String, String)>,
    /// Identifier-like columns proposed for `drop`.
    pub drop: Vec<String>,
    /// Tenure column, if one was found.
    pub tenure: Option<Tenure>,
    /// What was decided and why, in column order.
    pub decisions: Vec<Decision>,
}

/// A column's cells summarised for role detection.
struct Profile<'a> {
    name: &'a str,
    norm: String,
    present: usize,
    /// Distinct present values (counted up to the row count).
    distinct: usize,
    /// Every present cell is a number: the numbers, in row order (`None` when missing).
    numbers: Option<Vec<Option<f64>>>,
}

impl<'a> Profile<'a> {
    fn of(name: &'a str, data: &RawData, nrows: usize) -> Profile<'a> {
        let mut seen: FxHashSet<String> = FxHashSet::default();
        let mut numbers: Option<Vec<Option<f64>>> = Some(Vec::with_capacity(nrows));
        let mut present = 0;
        for i in 0..nrows {
            let cell = data.get(i).text();
            let cell = cell
                .as_deref()
                .filter(|s| !is_missing_token(s))
                .map(str::trim);
            if let Some(nums) = numbers.as_mut() {
                match cell.map(parse_number) {
                    None => nums.push(None),
                    Some(Some(x)) => nums.push(Some(x)),
                    Some(None) => numbers = None,
                }
            }
            if let Some(c) = cell {
                present += 1;
                if !seen.contains(c) {
                    seen.insert(c.to_string());
                }
            }
        }
        Profile {
            name,
            norm: norm(name),
            present,
            distinct: seen.len(),
            numbers: numbers.filter(|_| present > 0),
        }
    }

    fn all_unique(&self, nrows: usize) -> bool {
        self.present == nrows && self.distinct == nrows && nrows > 1
    }

    fn looks_like_label(&self) -> bool {
        self.distinct == 2
            && LABEL_NAMES
                .iter()
                .any(|l| self.norm == *l || self.norm.ends_with(l))
    }

    /// Named for a position in the file rather than for a customer.
    fn names_a_row(&self) -> bool {
        ["row", "index", "line", "record", "unnamed", "serial"]
            .iter()
            .any(|w| self.norm.contains(w))
            || self.norm.is_empty()
    }

    fn id_named(&self) -> bool {
        ID_ENDINGS.iter().any(|e| self.norm.ends_with(e))
    }

    /// Whole numbers that step by one in file order (1, 2, 3, …): a row counter.
    fn row_counter(&self, nrows: usize) -> bool {
        let Some(v) = self.numbers.as_ref() else {
            return false;
        };
        nrows > 2
            && self.all_unique(nrows)
            && v.windows(2)
                .all(|w| matches!(w, [Some(a), Some(b)] if *b - *a == 1.0))
    }

    /// Why the column is an identifier to drop (a row counter, or a key), if it is one.
    fn key_reason(&self, nrows: usize) -> Option<&'static str> {
        if self.row_counter(nrows) {
            Some("a row counter (1, 2, 3, … in file order): it says where a row sits in the file, not anything about the customer")
        } else if self.surrogate_key(nrows) || (self.all_unique(nrows) && self.numbers.is_none()) {
            Some("a different value on every row: a key, not a trait customers share, so a model could only memorise it")
        } else {
            None
        }
    }

    /// Unique whole numbers that are not the id, whatever the name (`CLIENTNUM`): a
    /// surrogate key.
    fn surrogate_key(&self, nrows: usize) -> bool {
        self.all_unique(nrows)
            && self
                .numbers
                .as_ref()
                .is_some_and(|v| v.iter().flatten().all(|x| x.fract() == 0.0))
    }
}

/// Roles of `raw`'s columns; `label` names the label column (else it is inferred).
pub fn infer_roles(raw: &RawTable, label: Option<&str>) -> Result<Roles, InitError> {
    let n = raw.nrows;
    let profiles: Vec<Profile> = raw
        .columns
        .iter()
        .map(|c| Profile::of(&c.name, &c.data, n))
        .collect();
    let mut roles = Roles::default();
    let label_at = find_label(raw, &profiles, label, &mut roles.decisions)?;
    roles.label = raw.columns[label_at].name.clone();
    let patterns: Vec<String> = DEFAULT_PERSONAL_PATTERNS
        .iter()
        .map(|s| s.to_string())
        .collect();
    // the id: a unique column named like an identifier — one that is not a row counter first,
    // else a counter named for customers (`customer_id` numbered 1, 2, 3, …), never one named
    // for rows (`RowNumber`, `index`)
    // (personal data never: a phone number is unique too)
    let id_at = (0..profiles.len())
        .filter(|&i| {
            let p = &profiles[i];
            i != label_at
                && p.all_unique(n)
                && p.id_named()
                && personal_match(p.name, &patterns).is_none()
                && !(p.row_counter(n) && p.names_a_row())
        })
        .min_by_key(|&i| (profiles[i].row_counter(n), i));
    for (i, p) in profiles.iter().enumerate() {
        if i == label_at {
            continue;
        }
        if Some(i) == id_at {
            roles.id = Some(p.name.to_string());
            roles.decisions.push(Decision::new(
                "id",
                p.name,
                "customer id",
                format!("every one of the {n} rows has its own value and the name ends like an identifier"),
            ));
        } else if let Some(pattern) = personal_match(p.name, &patterns) {
            roles.personal.push((p.name.to_string(), pattern.clone()));
            roles.decisions.push(Decision::new(
                "personal data",
                p.name,
                "excluded",
                format!("the name matches '{pattern}': personal data is never a model feature"),
            ));
        } else if let Some(why) = p.key_reason(n) {
            roles.drop.push(p.name.to_string());
            roles.decisions.push(Decision::new(
                "identifier-like",
                p.name,
                "dropped",
                why.into(),
            ));
        }
    }
    roles.tenure = find_tenure(&profiles, &roles);
    if let Some(t) = &roles.tenure {
        roles.decisions.push(Decision::new(
            "tenure",
            &t.column,
            &format!("lifecycle stages, unit {} days", fmt_num(t.unit_days)),
            tenure_reason(&profiles, t),
        ));
    }
    Ok(roles)
}

/// The label column: the one named, else the only two-valued column named like a label.
fn find_label(
    raw: &RawTable,
    profiles: &[Profile],
    label: Option<&str>,
    decisions: &mut Vec<Decision>,
) -> Result<usize, InitError> {
    if let Some(l) = label {
        let i = raw.index_of(l).ok_or_else(|| InitError::Label {
            path: raw.path.clone(),
            problem: format!("no column '{l}'; columns: {}", raw.column_list()),
        })?;
        decisions.push(Decision::new(
            "label",
            l,
            "label",
            "named with --label".into(),
        ));
        return Ok(i);
    }
    let candidates: Vec<usize> = (0..profiles.len())
        .filter(|&i| profiles[i].looks_like_label())
        .collect();
    let two_valued: Vec<&str> = profiles
        .iter()
        .filter(|p| p.distinct == 2)
        .map(|p| p.name)
        .collect();
    match candidates.as_slice() {
        [i] => {
            let p = &profiles[*i];
            decisions.push(Decision::new(
                "label",
                p.name,
                "label",
                "the only two-valued column named like a churn label".into(),
            ));
            Ok(*i)
        }
        [] => Err(InitError::Label {
            path: raw.path.clone(),
            problem: format!(
                "no column is named like a churn label (churn, exited, attrition, …); name it with --label COL. Two-valued columns: {}",
                if two_valued.is_empty() { "none".to_string() } else { two_valued.join(", ") }
            ),
        }),
        many => Err(InitError::Label {
            path: raw.path.clone(),
            problem: format!(
                "several columns could be the label ({}); name one with --label COL",
                many.iter()
                    .map(|&i| profiles[i].name)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        }),
    }
}

/// A numeric column named like tenure, and its unit from the name or the range.
fn find_tenure(profiles: &[Profile], roles: &Roles) -> Option<Tenure> {
    let used = |name: &str| {
        name == roles.label
            || roles.id.as_deref() == Some(name)
            || roles.drop.iter().any(|d| d == name)
            || roles.personal.iter().any(|(c, _)| c == name)
    };
    let p = profiles.iter().find(|p| {
        !used(p.name) && p.numbers.is_some() && TENURE_NAMES.iter().any(|t| p.norm.contains(t))
    })?;
    let max = p
        .numbers
        .as_ref()?
        .iter()
        .flatten()
        .fold(f64::NEG_INFINITY, |a, &b| a.max(b));
    let unit_days = if p.norm.contains("year") || p.norm.contains("yrs") {
        365.25
    } else if p.norm.contains("month") {
        30.44
    } else if p.norm.contains("week") {
        7.0
    } else if p.norm.contains("day") {
        1.0
    } else if max <= 20.0 {
        365.25
    } else if max <= 150.0 {
        30.44
    } else {
        1.0
    };
    Some(Tenure {
        column: p.name.to_string(),
        unit_days,
    })
}

fn tenure_reason(profiles: &[Profile], t: &Tenure) -> String {
    let p = profiles
        .iter()
        .find(|p| p.name == t.column)
        .expect("the tenure column is one of the profiles");
    let max = p
        .numbers
        .as_ref()
        .map(|v| v.iter().flatten().fold(f64::NEG_INFINITY, |a, &b| a.max(b)))
        .unwrap_or(0.0);
    let unit = if t.unit_days == 365.25 {
        "years"
    } else if t.unit_days == 30.44 {
        "months"
    } else if t.unit_days == 7.0 {
        "weeks"
    } else {
        "days"
    };
    if ["year", "yrs", "month", "week", "day"]
        .iter()
        .any(|w| p.norm.contains(w))
    {
        format!("named like tenure; the name says {unit}")
    } else {
        format!(
            "named like tenure; values up to {} read as {unit} (≤ 20: years, ≤ 150: months, else days) — set segments.lifecycle.tenure_unit_days if that is wrong",
            fmt_num(max)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::io::{RawColumn, TextColumn};

    fn table(cols: &[(&str, Vec<String>)]) -> RawTable {
        let nrows = cols[0].1.len();
        RawTable {
            path: "t.csv".into(),
            columns: cols
                .iter()
                .map(|(name, cells)| RawColumn {
                    name: name.to_string(),
                    data: RawData::Text(
                        cells
                            .iter()
                            .map(|c| Some(c.as_str()))
                            .collect::<TextColumn>(),
                    ),
                })
                .collect(),
            nrows,
        }
    }

    #[test]
    fn counters_keys_ids_personal_data_and_tenure_are_told_apart() {
        let n = 40;
        let col = |f: &dyn Fn(usize) -> String| (0..n).map(f).collect::<Vec<_>>();
        let t = table(&[
            ("RowNumber", col(&|i| (i + 1).to_string())),
            ("CustomerId", col(&|i| (15_000_000 + 37 * i).to_string())),
            ("Surname", col(&|i| format!("Name{i}"))),
            ("Ticket No", col(&|i| (900 + 3 * i).to_string())),
            ("Tenure", col(&|i| (i % 11).to_string())),
            ("Plan", col(&|i| ["a", "b"][i % 2].to_string())),
            (
                "Exited",
                col(&|i| if i % 3 == 0 { "1" } else { "0" }.to_string()),
            ),
        ]);
        let r = infer_roles(&t, None).unwrap();
        assert_eq!(r.label, "Exited");
        assert_eq!(r.id.as_deref(), Some("CustomerId"));
        assert_eq!(
            r.personal,
            vec![("Surname".to_string(), "name".to_string())]
        );
        assert_eq!(
            r.drop,
            vec!["RowNumber".to_string(), "Ticket No".to_string()]
        );
        let tenure = r.tenure.unwrap();
        assert_eq!(tenure.column, "Tenure");
        assert_eq!(tenure.unit_days, 365.25);
        // a unique phone number is personal data, never the id; unique whole numbers under
        // any name are a key; a customer id numbered 1, 2, 3 … is still the id
        let t2 = table(&[
            ("phone_number", col(&|i| format!("+4470000{i:04}"))),
            ("RowNumber", col(&|i| (i + 1).to_string())),
            ("customer_id", col(&|i| (i + 1).to_string())),
            ("CLIENTNUM", col(&|i| (700_000_000 + 977 * i).to_string())),
            (
                "Churn",
                col(&|i| if i % 4 == 0 { "Yes" } else { "No" }.to_string()),
            ),
        ]);
        let r = infer_roles(&t2, None).unwrap();
        assert_eq!(r.id.as_deref(), Some("customer_id"));
        assert_eq!(r.personal.len(), 1, "{:?}", r.personal);
        assert_eq!(
            r.drop,
            vec!["RowNumber".to_string(), "CLIENTNUM".to_string()]
        );
        // a named label wins; an unknown one is an error listing the columns
        assert_eq!(infer_roles(&t, Some("Plan")).unwrap().label, "Plan");
        let e = infer_roles(&t, Some("Churn")).unwrap_err().to_string();
        assert!(
            e.contains("no column 'Churn'") && e.contains("Exited"),
            "{e}"
        );
    }
}
