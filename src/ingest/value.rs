//! Cell-level parsing shared by ingestion and scoring: missing markers, numbers, booleans,
//! label tokens and timestamps. One definition, used by training, batch scoring and HTTP.

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

/// Days since 1970-01-01 of a civil date (proleptic Gregorian).
pub fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let m = m as i64;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146097 + doe - 719468
}

/// Civil (year, month, day) of days since 1970-01-01.
pub fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719468;
    let era = if z >= 0 { z } else { z - 146096 } / 146097;
    let doe = z - era * 146097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// Format days since epoch as `YYYY-MM-DD`.
pub fn format_day(days: i64) -> String {
    let (y, m, d) = civil_from_days(days);
    format!("{y:04}-{m:02}-{d:02}")
}

fn digits(b: &[u8]) -> Option<u32> {
    // at most 9 digits: a longer date part (`20240-01-01`, a 10-digit day) overflowed u32
    if b.is_empty() || b.len() > 9 || !b.iter().all(|c| c.is_ascii_digit()) {
        return None;
    }
    Some(b.iter().fold(0u32, |a, c| a * 10 + (c - b'0') as u32))
}

fn valid_date(y: i64, m: u32, d: u32) -> bool {
    // four-digit years: a date part like `1/1/123456789` is a typo, not the year 123456789
    if !(1..=9999).contains(&y) || !(1..=12).contains(&m) || d == 0 {
        return false;
    }
    let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    let dim = [
        31,
        if leap { 29 } else { 28 },
        31,
        30,
        31,
        30,
        31,
        31,
        30,
        31,
        30,
        31,
    ];
    d <= dim[(m - 1) as usize]
}

/// Split a UTC offset (`Z`, `+HH:MM`, `-HH:MM`, `+HHMM`, `+HH`) off a time of day: the clock
/// part and the offset in seconds east of UTC (0 when there is none).
fn split_offset(t: &str) -> Option<(&str, i64)> {
    if let Some(clock) = t.strip_suffix(['Z', 'z']) {
        return Some((clock.trim_end(), 0));
    }
    let Some(i) = t.rfind(['+', '-']) else {
        return Some((t, 0));
    };
    let (clock, off) = (t[..i].trim_end(), &t[i + 1..]);
    let sign = if t.as_bytes()[i] == b'-' { -1 } else { 1 };
    let b = off.as_bytes();
    let (h, m) = match b.len() {
        2 => (digits(b)?, 0),
        4 => (digits(&b[..2])?, digits(&b[2..])?),
        5 if b[2] == b':' => (digits(&b[..2])?, digits(&b[3..])?),
        _ => return None,
    };
    // real offsets run from -12:00 to +14:00
    if h > 14 || m > 59 {
        return None;
    }
    Some((clock, sign * (h as i64 * 3600 + m as i64 * 60)))
}

/// `HH:MM[:SS[.fff]]` with an optional UTC offset, as seconds after midnight UTC (may fall
/// outside 0..86400 when the offset moves the instant to another day).
fn hms(rest: &str) -> Option<i64> {
    let (clock, offset) = split_offset(rest.trim())?;
    let mut parts = clock.split(':');
    let h = digits(parts.next()?.as_bytes())?;
    let mi = digits(parts.next()?.as_bytes())?;
    let s = match parts.next() {
        None => 0,
        Some(sec) => {
            let whole = sec.split('.').next()?;
            digits(whole.as_bytes())?
        }
    };
    if parts.next().is_some() || h > 23 || mi > 59 || s > 60 {
        return None;
    }
    Some((h * 3600 + mi * 60 + s) as i64 - offset)
}

/// Parse a date or datetime in a common format to seconds since 1970-01-01 UTC.
///
/// Accepted: `YYYY-MM-DD`, `YYYY/MM/DD`, `YYYYMMDD`, `DD.MM.YYYY`, `MM/DD/YYYY`, each optionally
/// followed by ` HH:MM[:SS[.fff]]` or `THH:MM:SS[.fff]`, and then optionally a UTC offset
/// (`Z`, `+02:00`, `-05:00`, `+0200`, `+02`). A time with an offset is converted to UTC
/// (`1997-10-01T01:00:00+02:00` is 1997-09-30 23:00 UTC); a date or a time without an offset
/// is taken as UTC.
pub fn parse_timestamp(s: &str) -> Option<i64> {
    let s = s.trim();
    let (date, time) = match s.find(['T', ' ']) {
        Some(i) => (&s[..i], Some(&s[i + 1..])),
        None => (s, None),
    };
    let b = date.as_bytes();
    let (y, m, d) = if b.len() == 10 && (b[4] == b'-' || b[4] == b'/') && b[7] == b[4] {
        (
            digits(&b[0..4])? as i64,
            digits(&b[5..7])?,
            digits(&b[8..10])?,
        )
    } else if b.len() == 8 && b.iter().all(|c| c.is_ascii_digit()) {
        (
            digits(&b[0..4])? as i64,
            digits(&b[4..6])?,
            digits(&b[6..8])?,
        )
    } else if date.contains('.') {
        let mut p = date.split('.');
        let d = digits(p.next()?.as_bytes())?;
        let m = digits(p.next()?.as_bytes())?;
        let y = digits(p.next()?.as_bytes())? as i64;
        (y, m, d)
    } else if date.contains('/') {
        let mut p = date.split('/');
        let m = digits(p.next()?.as_bytes())?;
        let d = digits(p.next()?.as_bytes())?;
        let y = digits(p.next()?.as_bytes())? as i64;
        if y < 100 {
            return None;
        }
        (y, m, d)
    } else {
        return None;
    };
    if !valid_date(y, m, d) {
        return None;
    }
    let secs = match time {
        None => 0,
        Some(t) if t.trim().is_empty() => 0,
        Some(t) => hms(t)?,
    };
    Some(days_from_civil(y, m, d) * 86_400 + secs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_in_common_formats() {
        let day = days_from_civil(1997, 10, 1) * 86_400;
        assert_eq!(parse_timestamp("1997-10-01"), Some(day));
        assert_eq!(parse_timestamp("19971001"), Some(day));
        assert_eq!(parse_timestamp("1997/10/01"), Some(day));
        assert_eq!(parse_timestamp("01.10.1997"), Some(day));
        assert_eq!(parse_timestamp("10/01/1997"), Some(day));
        assert_eq!(
            parse_timestamp("1997-10-01 08:26:00"),
            Some(day + 8 * 3600 + 26 * 60)
        );
        assert_eq!(
            parse_timestamp("1997-10-01T08:26:05.123Z"),
            Some(day + 8 * 3600 + 26 * 60 + 5)
        );
        assert_eq!(
            parse_timestamp("12/1/2010 8:26"),
            Some(days_from_civil(2010, 12, 1) * 86_400 + 8 * 3600 + 26 * 60)
        );
        // offsets are honoured: the instant in UTC
        let t = |s| parse_timestamp(s).unwrap();
        let at = |d: i64, h: i64| days_from_civil(1997, 10, 1) * 86_400 + d * 86_400 + h * 3600;
        assert_eq!(t("1997-10-01T01:00:00Z"), at(0, 1));
        assert_eq!(t("1997-10-01T01:00:00"), at(0, 1));
        assert_eq!(t("1997-10-01T01:00:00+02:00"), at(-1, 23));
        assert_eq!(t("1997-10-01T01:00:00-05:00"), at(0, 6));
        assert_eq!(t("1997-10-01T22:30:00-05:00"), at(1, 3) + 1800);
        assert_eq!(t("1997-10-01 01:00:00 +0200"), at(-1, 23));
        assert_eq!(t("1997-10-01T01:00+02"), at(-1, 23));
        assert_eq!(t("1997-10-01T01:00:00.250-05:00"), at(0, 6));
        assert_eq!(parse_timestamp("1997-10-01T01:00:00+25:00"), None);
        assert_eq!(parse_timestamp("1997-10-01T01:00:00+2:00"), None);
        assert_eq!(parse_timestamp("1997-13-01"), None);
        assert_eq!(parse_timestamp("1997-02-30"), None);
        assert_eq!(parse_timestamp("yesterday"), None);
        // 10+ digit parts overflowed u32 (a panic in debug builds, some other date in release)
        assert_eq!(parse_timestamp("1/1/12345678901"), None);
        assert_eq!(parse_timestamp("01.01.4294967297"), None);
        assert_eq!(parse_timestamp("1/1/123456789"), None);
        assert_eq!(format_day(days_from_civil(2000, 2, 29)), "2000-02-29");
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
