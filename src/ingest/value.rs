//! Cell-level parsing shared by ingestion and scoring: missing markers, numbers, booleans,
//! label tokens and timestamps (through [`crate::time`]). One definition, used by training, batch
//! scoring and HTTP.

/// Text cells that mean "missing" (compared after trimming).
pub const MISSING_TOKENS: &[&str] = &["", "NA", "N/A", "n/a", "NaN", "nan", "null", "NULL", "None"];

/// Boolean-like token pairs (lower case): (true, false).
pub const BOOL_PAIRS: &[(&str, &str)] = &[
    ("yes", "no"),
    ("true", "false"),
    ("y", "n"),
    ("t", "f"),
    ("1", "0"),
];

/// Label values taken as "churned" when `--positive` is not given (lower case).
pub const POSITIVE_TOKENS: &[&str] = &[
    "1",
    "yes",
    "y",
    "true",
    "t",
    "churn",
    "churned",
    "exited",
    "left",
    "lost",
    "cancelled",
    "canceled",
    "positive",
];

/// True when a (trimmed) text cell means missing.
pub fn is_missing_token(s: &str) -> bool {
    let t = s.trim();
    // every token is at most 4 bytes: most real values are rejected by length alone
    t.len() <= 4 && MISSING_TOKENS.contains(&t)
}

/// Largest magnitude accepted for a number anywhere (files and requests). Far above any amount,
/// count or duration in churn data, and low enough that sums and squares over a billion rows stay
/// finite (1e308 used to overflow a column's sum to infinity deep inside training).
pub const MAX_MAGNITUDE: f64 = 1e15;

/// What a number cell must be, for messages.
pub const NUMBER_EXPECTED: &str = "a finite number within ±1e15";

/// True for a number churn accepts: finite and within [`MAX_MAGNITUDE`].
#[inline]
pub fn number_in_range(x: f64) -> bool {
    x.abs() <= MAX_MAGNITUDE
}

/// What a user whose text `s` is not an acceptable number is told was expected: a number, or,
/// for a number beyond the range, [`NUMBER_EXPECTED`].
pub fn expected_number(s: &str) -> &'static str {
    if s.trim().parse::<f64>().is_ok() {
        NUMBER_EXPECTED
    } else {
        "a number"
    }
}

/// Parse a number, accepting surrounding blanks; `None` for anything else (including NaN, inf
/// and numbers beyond [`MAX_MAGNITUDE`]).
pub fn parse_number(s: &str) -> Option<f64> {
    let t = s.trim();
    match t.parse::<f64>() {
        Ok(x) if number_in_range(x) => Some(x),
        _ => None,
    }
}

/// Parse a boolean-like token against a column's own tokens and the generic pairs.
pub fn parse_bool(s: &str, true_token: &str, false_token: &str) -> Option<bool> {
    let t = s.trim();
    if t.eq_ignore_ascii_case(true_token) {
        return Some(true);
    }
    if t.eq_ignore_ascii_case(false_token) {
        return Some(false);
    }
    let l = t.to_ascii_lowercase();
    for (a, b) in BOOL_PAIRS {
        if l == *a {
            return Some(true);
        }
        if l == *b {
            return Some(false);
        }
    }
    None
}

/// Parse a date or datetime cell to seconds since 1970-01-01 UTC: [`crate::time::parse`]
/// (which lists the accepted forms) in whole seconds, rounded down (`2024-03-31T14:05:00.9` is
/// 14:05:00; before 1970 too).
pub fn parse_timestamp(s: &str) -> Option<i64> {
    crate::time::parse(s).map(|ms| ms.div_euclid(1000))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_are_whole_seconds_rounded_down() {
        let day = crate::time::days_from_civil(1997, 10, 1) * 86_400;
        assert_eq!(parse_timestamp("1997-10-01"), Some(day));
        assert_eq!(
            parse_timestamp("1997-10-01T08:26:05.999Z"),
            Some(day + 30_365)
        );
        // before 1970 the fraction still counts towards the earlier second
        assert_eq!(parse_timestamp("1969-12-31T23:59:59.5Z"), Some(-1));
        assert_eq!(parse_timestamp("1969-12-31T23:59:59Z"), Some(-1));
        assert_eq!(parse_timestamp("yesterday"), None);
    }

    #[test]
    fn numbers_and_booleans() {
        assert_eq!(parse_number(" 29.85 "), Some(29.85));
        assert_eq!(parse_number("NaN"), None);
        assert_eq!(parse_number(" "), None);
        assert_eq!(parse_bool("YES", "Yes", "No"), Some(true));
        assert_eq!(parse_bool("0", "Yes", "No"), Some(false));
        assert_eq!(parse_bool("maybe", "Yes", "No"), None);
        assert!(is_missing_token("  "));
    }
}
