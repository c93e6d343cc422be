//! One column at a time: type inference and conversion of feature columns, and the missing /
//! distinct counts of the quality report.

use super::{clean, clean_num, ColumnType};
use crate::ingest::value::{
    expected_number, number_in_range, parse_bool, parse_number, BOOL_PAIRS, NUMBER_EXPECTED,
};
use crate::ingest::{FeatureColumn, FeatureKind, FeatureValues, IngestError};
use crate::io::RawData;
use crate::util::{fmt_num, FxHashSet};
use std::borrow::Cow;

/// Infer (or apply the override for) one column's type and convert its cells.
pub(super) fn type_column(
    path: &std::path::Path,
    name: &str,
    cells: &[Option<Cow<str>>],
    keep: &[usize],
    forced: Option<&ColumnType>,
) -> Result<FeatureColumn, IngestError> {
    let vals: Vec<Option<&str>> = cells.iter().map(|v| v.as_deref()).collect();
    let bad = |pos: usize, expected: &str| IngestError::BadValue {
        path: path.to_path_buf(),
        row: keep[pos] + 1,
        column: name.to_string(),
        expected: expected.to_string(),
        value: crate::util::excerpt(vals[pos].unwrap_or("")),
    };
    let bool_pair = bool_pair(&vals);
    let numeric_fails: Vec<usize> = vals
        .iter()
        .enumerate()
        .filter(|(_, v)| matches!(v, Some(s) if parse_number(s).is_none()))
        .map(|(i, _)| i)
        .collect();
    let kind = match forced {
        Some(&t) => t,
        None => infer_type(&vals, bool_pair.is_some(), &numeric_fails).map_err(|pos| {
            match expected_number(vals[pos].unwrap_or("")) {
                "a number" => bad(
                    pos,
                    "a number (the column is otherwise numeric; set its type to categorical if that is intended)",
                ),
                range => bad(pos, range),
            }
        })?,
    };
    let (kind, values) = match kind {
        ColumnType::Numeric => {
            if let Some(&i) = numeric_fails.first() {
                return Err(bad(i, expected_number(vals[i].unwrap_or(""))));
            }
            let v = vals.iter().map(|v| v.and_then(parse_number)).collect();
            (FeatureKind::Numeric, FeatureValues::Num(v))
        }
        ColumnType::Boolean => boolean_values(&vals, bool_pair, bad)?,
        ColumnType::Categorical => (
            FeatureKind::Categorical,
            FeatureValues::Cat(vals.iter().copied().collect()),
        ),
    };
    Ok(FeatureColumn {
        name: name.to_string(),
        kind,
        values,
    })
}

/// The (true, false) tokens when the column has exactly two distinct values (ignoring case)
/// that form a known boolean pair, spelt as in the data.
fn bool_pair(vals: &[Option<&str>]) -> Option<(String, String)> {
    // Distinct values, in first-seen order (bounded).
    let mut distinct: Vec<&str> = Vec::new();
    for v in vals.iter().flatten() {
        if distinct.len() > 2 {
            break;
        }
        if !distinct.iter().any(|d| d.eq_ignore_ascii_case(v)) {
            distinct.push(v);
        }
    }
    if distinct.len() != 2 {
        return None;
    }
    let a = distinct[0].to_ascii_lowercase();
    let b = distinct[1].to_ascii_lowercase();
    BOOL_PAIRS.iter().find_map(|(t, f)| {
        if a == *t && b == *f {
            Some((distinct[0].to_string(), distinct[1].to_string()))
        } else if a == *f && b == *t {
            Some((distinct[1].to_string(), distinct[0].to_string()))
        } else {
            None
        }
    })
}

/// The inferred type of a text column without an override: boolean for a boolean pair, numeric
/// when every present cell parses, else categorical. `Err(position)` of the first stray word
/// when the column is numbers but for a few words — a data error, not a category.
fn infer_type(
    vals: &[Option<&str>],
    is_bool_pair: bool,
    numeric_fails: &[usize],
) -> Result<ColumnType, usize> {
    let n_present = vals.iter().filter(|v| v.is_some()).count();
    if is_bool_pair {
        return Ok(ColumnType::Boolean);
    }
    if numeric_fails.is_empty() {
        // no cell at all: nothing to type (its one level is "missing")
        return Ok(if n_present > 0 {
            ColumnType::Numeric
        } else {
            ColumnType::Categorical
        });
    }
    // numbers out of range (1e308, inf) make a numeric column wrong, not categorical
    if numeric_fails
        .iter()
        .all(|&i| vals[i].is_some_and(|s| s.trim().parse::<f64>().is_ok()))
    {
        return Err(numeric_fails[0]);
    }
    let distinct_fails: std::collections::HashSet<&str> =
        numeric_fails.iter().filter_map(|&i| vals[i]).collect();
    if n_present >= 50
        && (numeric_fails.len() as f64) < 0.02 * n_present as f64
        && distinct_fails.len() <= 3
    {
        return Err(numeric_fails[0]);
    }
    Ok(ColumnType::Categorical)
}

/// Boolean cells as 0/1 with the column's tokens (`true` / `false` when a boolean type was
/// forced on a column without a known pair); `bad` builds the error for an unparsable cell.
fn boolean_values(
    vals: &[Option<&str>],
    bool_pair: Option<(String, String)>,
    bad: impl Fn(usize, &str) -> IngestError,
) -> Result<(FeatureKind, FeatureValues), IngestError> {
    let (t, f) = match bool_pair {
        Some(p) => p,
        None => {
            // forced boolean: accept generic tokens
            ("true".to_string(), "false".to_string())
        }
    };
    let mut out = Vec::with_capacity(vals.len());
    for (i, v) in vals.iter().enumerate() {
        out.push(match v {
            None => None,
            Some(s) => Some(match parse_bool(s, &t, &f) {
                Some(b) => b as u8 as f64,
                None => return Err(bad(i, &format!("a boolean ('{t}' or '{f}')"))),
            }),
        });
    }
    Ok((
        FeatureKind::Boolean {
            true_token: t,
            false_token: f,
        },
        FeatureValues::Num(out),
    ))
}

/// Missing cells and distinct present values (counted up to 100,000) over the kept rows.
pub(super) fn missing_and_distinct(data: &RawData, keep: &[usize]) -> (usize, usize) {
    const CAP: usize = 100_000;
    let mut missing = 0usize;
    match data {
        RawData::Num(v) => {
            let mut set: FxHashSet<u64> = FxHashSet::default();
            for &i in keep {
                match v.get(i).and_then(clean_num) {
                    None => missing += 1,
                    Some(x) if set.len() < CAP => {
                        set.insert((x + 0.0).to_bits());
                    }
                    Some(_) => {}
                }
            }
            (missing, set.len())
        }
        RawData::Text(t) => {
            let mut set: FxHashSet<&str> = FxHashSet::default();
            for &i in keep {
                match clean(t.get(i)) {
                    None => missing += 1,
                    Some(s) if set.len() < CAP => {
                        set.insert(s);
                    }
                    Some(_) => {}
                }
            }
            (missing, set.len())
        }
    }
}

/// A column read as numbers (Parquet numeric / boolean columns): numeric, or boolean when its
/// values are exactly 0 and 1 (as the text path infers from "0"/"1") or when forced.
pub(super) fn numeric_column(
    path: &std::path::Path,
    name: &str,
    mut vals: Vec<Option<f64>>,
    keep: &[usize],
    forced: Option<&ColumnType>,
) -> Result<FeatureColumn, IngestError> {
    for v in vals.iter_mut() {
        *v = v.and_then(clean_num);
    }
    let bad = |pos: usize, expected: &str| IngestError::BadValue {
        path: path.to_path_buf(),
        row: keep[pos] + 1,
        column: name.to_string(),
        expected: expected.to_string(),
        value: vals[pos].map(fmt_num).unwrap_or_default(),
    };
    if let Some(i) = vals
        .iter()
        .position(|x| x.is_some_and(|x| !number_in_range(x)))
    {
        return Err(bad(i, NUMBER_EXPECTED));
    }
    let mut seen = [false; 2];
    let mut other = false;
    for x in vals.iter().flatten() {
        match *x {
            0.0 => seen[0] = true,
            1.0 => seen[1] = true,
            _ => {
                other = true;
                break;
            }
        }
    }
    let boolean = match forced {
        Some(ColumnType::Boolean) => {
            if other {
                let i = vals
                    .iter()
                    .position(|x| x.is_some_and(|x| x != 0.0 && x != 1.0))
                    .expect("a non-0/1 value exists");
                return Err(bad(i, "a boolean ('1' or '0')"));
            }
            true
        }
        Some(_) => false,
        None => !other && seen == [true, true],
    };
    let kind = if boolean {
        FeatureKind::Boolean {
            true_token: "1".into(),
            false_token: "0".into(),
        }
    } else {
        FeatureKind::Numeric
    };
    Ok(FeatureColumn {
        name: name.to_string(),
        kind,
        values: FeatureValues::Num(vals),
    })
}
