//! Timestamps: the one parser of date and time text, the civil calendar, and the formatters of
//! days and instants. A bottom layer like [`crate::util`]: it imports nothing from the crate.
//!
//! Every date or time the crate reads goes through [`parse`]: transaction-log cells and
//! `--cutoff` / `--as-of` (the ingest layer, in seconds), outcome `at` (files and
//! `POST /v1/outcomes`), the CLI's `--from` / `--to` / `--as-of` / `--start` and the HTTP
//! query parameters `from` / `to` / `as_of`. Instants are Unix milliseconds (UTC).

/// Milliseconds per day.
pub const DAY_MS: i64 = 86_400_000;

/// Milliseconds since the Unix epoch, now.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
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

/// Parse a date or a date and time to Unix milliseconds (UTC).
///
/// | part | accepted | examples |
/// |---|---|---|
/// | date | `YYYY-MM-DD` (ISO 8601; month and day may have one digit; years 0000–9999) | `2026-11-01`, `2026-1-5` |
/// | | `YYYY/MM/DD`, `YYYYMMDD` | `2026/11/01`, `20261101` |
/// | | `DD.MM.YYYY` (day and month may have one digit) | `01.11.2026`, `1.11.2026` |
/// | | `MM/DD/YYYY` (US order; month and day may have one digit; years from 100) | `11/01/2026`, `11/1/2026` |
/// | separator | `T` or blanks; `t` after `YYYY-MM-DD` | `2026-11-01T10:00`, `2026-11-01 10:00` |
/// | time | `HH:MM`, `HH:MM:SS`, `HH:MM:SS.fff` (one or two digits each; any number of fraction digits: milliseconds are kept, finer digits dropped) | `10:00`, `8:26:05`, `10:00:00.250` |
/// | offset | `Z` / `z`, `±HH:MM`, `±HHMM`, `±HH` (up to ±23:59; after the time, blanks allowed; `−HH:MM` with U+2212 as minus) | `Z`, `+02:00`, `-0500`, `+02` |
///
/// A date alone is midnight UTC; a time without an offset is UTC; a time with an offset is
/// converted (`2026-11-01T01:00:00+02:00` is 2026-10-31 23:00 UTC). Second `60` (a leap second)
/// is the first second of the next minute. Years outside 0001–9999 are refused (0000 only in
/// `YYYY-MM-DD`), as are impossible dates (`2026-02-30`).
///
/// This is the union of the crate's two former parsers, and every text either accepted gives
/// the same instant (the ingest layer's seconds are `ms.div_euclid(1000)`, what it had):
///
/// - the transaction-log parser (`ingest::value::parse_timestamp`, seconds): every form above
///   except the `t` separator, one-digit months and days in `YYYY-MM-DD`, the year 0000,
///   offsets beyond ±14:59 and U+2212. Its tolerances are kept: numbers may carry extra
///   leading zeros, a `DD.MM.YYYY` year is taken as written (`1.1.97` is the year 97), a
///   fraction is read up to its first non-digit, parts after the year of `DD.MM.YYYY` and
///   `MM/DD/YYYY` are ignored, a date followed by a bare `T` is midnight;
/// - the ISO 8601 parser of outcome times, CLI options and query parameters
///   (`store::parse_instant`, chrono): `YYYY-MM-DD`, `YYYY-MM-DD[T ]HH:MM:SS[.fff]` and
///   RFC 3339 (`Z` or `±HH:MM`). Its format engine also let through, and this parser refuses:
///   years written with fewer than four digits or with a sign (`26-11-01`, `+2026-11-01`),
///   blanks inside the date or the time (`2026- 11-01`, `10: 00:00`) and a time glued to the
///   date (`2026-11-0110:00:00`).
pub fn parse(s: &str) -> Option<i64> {
    let (date, time) = split_date_time(s.trim());
    let (y, m, d) = parse_date(date)?;
    let ms = match time {
        None => 0,
        Some(t) if t.trim().is_empty() => 0,
        Some(t) => clock_ms(t)?,
    };
    Some(days_from_civil(y, m, d) * DAY_MS + ms)
}

/// A run of 1–9 ASCII digits as a number.
fn digits(b: &[u8]) -> Option<u32> {
    // at most 9 digits: a longer date part (`20240-01-01`, a 10-digit day) overflowed u32
    if b.is_empty() || b.len() > 9 || !b.iter().all(|c| c.is_ascii_digit()) {
        return None;
    }
    Some(b.iter().fold(0u32, |a, c| a * 10 + (c - b'0') as u32))
}

/// A real day of a year from `first_year` to 9999.
fn valid_date(y: i64, m: u32, d: u32, first_year: i64) -> bool {
    // four-digit years: a date part like `1/1/123456789` is a typo, not the year 123456789
    if !(first_year..=9999).contains(&y) || !(1..=12).contains(&m) || d == 0 {
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

/// The (year, month, day) of a date part in one of the forms of [`parse`]. The branches run
/// in the transaction-log parser's order (its `DD.MM.YYYY` and `MM/DD/YYYY` ignore parts after
/// the year, so a text with a `-` there is read by them, as before).
fn parse_date(date: &str) -> Option<(i64, u32, u32)> {
    let b = date.as_bytes();
    let (y, m, d, first_year) = if b.len() == 10 && b[4] == b'-' && b[7] == b'-' {
        return iso_date(date);
    } else if b.len() == 10 && b[4] == b'/' && b[7] == b'/' {
        (
            digits(&b[0..4])? as i64,
            digits(&b[5..7])?,
            digits(&b[8..10])?,
            1,
        )
    } else if b.len() == 8 && b.iter().all(|c| c.is_ascii_digit()) {
        (
            digits(&b[0..4])? as i64,
            digits(&b[4..6])?,
            digits(&b[6..8])?,
            1,
        )
    } else if date.contains('.') {
        let mut p = date.split('.');
        let d = digits(p.next()?.as_bytes())?;
        let m = digits(p.next()?.as_bytes())?;
        let y = digits(p.next()?.as_bytes())? as i64;
        (y, m, d, 1)
    } else if date.contains('/') {
        let mut p = date.split('/');
        let m = digits(p.next()?.as_bytes())?;
        let d = digits(p.next()?.as_bytes())?;
        let y = digits(p.next()?.as_bytes())? as i64;
        (y, m, d, 100)
    } else {
        return iso_date(date);
    };
    valid_date(y, m, d, first_year).then_some((y, m, d))
}

/// ISO 8601 `YYYY-MM-DD` (month and day may have one digit; years 0000–9999).
fn iso_date(date: &str) -> Option<(i64, u32, u32)> {
    let mut p = date.split('-');
    let (y, m, d) = (p.next()?, p.next()?, p.next()?);
    if p.next().is_some() || y.len() != 4 || m.len() > 2 || d.len() > 2 {
        return None;
    }
    let (y, m, d) = (
        digits(y.as_bytes())? as i64,
        digits(m.as_bytes())?,
        digits(d.as_bytes())?,
    );
    valid_date(y, m, d, 0).then_some((y, m, d))
}

/// The date and the time part of a (trimmed) text: split at the first `T` or blank, or at a
/// `t` (RFC 3339) before them that follows an ISO 8601 date.
fn split_date_time(s: &str) -> (&str, Option<&str>) {
    let i = s.find(['T', ' ']);
    let lower = s
        .find('t')
        .filter(|&j| i.is_none_or(|i| j < i) && iso_date(&s[..j]).is_some());
    match lower.or(i) {
        Some(i) => (&s[..i], Some(&s[i + 1..])),
        None => (s, None),
    }
}

/// Split a UTC offset (`Z`, `+HH:MM`, `-HH:MM`, `+HHMM`, `+HH`; `−HH:MM` with U+2212) off a
/// time of day: the clock part and the offset in seconds east of UTC (0 when there is none).
fn split_offset(t: &str) -> Option<(&str, i64)> {
    if let Some(clock) = t.strip_suffix(['Z', 'z']) {
        return Some((clock.trim_end(), 0));
    }
    // U+2212 only as RFC 3339 writes it, at the end: elsewhere the transaction-log parser read
    // it as part of an ignored fraction (`10:00:01.5−0100` is 10:00:01)
    if let Some((clock, off)) = t
        .rsplit_once('−')
        .filter(|(_, off)| off.len() == 5 && off.as_bytes()[2] == b':')
    {
        return Some((clock.trim_end(), -offset_seconds(off.as_bytes())?));
    }
    let Some(i) = t.rfind(['+', '-']) else {
        return Some((t, 0));
    };
    let (clock, off) = (t[..i].trim_end(), &t[i + 1..]);
    let sign = if t.as_bytes()[i] == b'-' { -1 } else { 1 };
    Some((clock, sign * offset_seconds(off.as_bytes())?))
}

/// `HH:MM`, `HHMM` or `HH` (after the sign) as seconds, up to 23:59 (RFC 3339's range; real
/// offsets run from -12:00 to +14:00).
fn offset_seconds(b: &[u8]) -> Option<i64> {
    let (h, m) = match b.len() {
        2 => (digits(b)?, 0),
        4 => (digits(&b[..2])?, digits(&b[2..])?),
        5 if b[2] == b':' => (digits(&b[..2])?, digits(&b[3..])?),
        _ => return None,
    };
    if h > 23 || m > 59 {
        return None;
    }
    Some(h as i64 * 3600 + m as i64 * 60)
}

/// Milliseconds of a fraction of a second: its first three digits (up to its first non-digit).
fn fraction_ms(frac: &str) -> i64 {
    frac.bytes()
        .take_while(u8::is_ascii_digit)
        .zip([100, 10, 1])
        .map(|(c, w)| i64::from(c - b'0') * w)
        .sum()
}

/// `HH:MM[:SS[.fff]]` with an optional UTC offset, as milliseconds after midnight UTC (may fall
/// outside one day when the offset moves the instant to another day).
fn clock_ms(rest: &str) -> Option<i64> {
    let (clock, offset) = split_offset(rest.trim())?;
    let mut parts = clock.split(':');
    let h = digits(parts.next()?.as_bytes())?;
    let mi = digits(parts.next()?.as_bytes())?;
    let (s, ms) = match parts.next() {
        None => (0, 0),
        Some(sec) => {
            let (whole, frac) = sec.split_once('.').unwrap_or((sec, ""));
            (digits(whole.as_bytes())?, fraction_ms(frac))
        }
    };
    if parts.next().is_some() || h > 23 || mi > 59 || s > 60 {
        return None;
    }
    Some(((h * 3600 + mi * 60 + s) as i64 - offset) * 1000 + ms)
}

/// `YYYY-MM-DD` of days since 1970-01-01 (a year before 1000 zero-padded to four digits).
pub fn format_day(days: i64) -> String {
    let (y, m, d) = civil_from_days(days);
    format!("{y:04}-{m:02}-{d:02}")
}

/// The UTC calendar fields of an instant: (year, month, day, milliseconds of the day); `None`
/// outside the years −262143..=262142 (the range the formatters wrote before, with chrono).
fn civil_of(ms: i64) -> Option<(i64, u32, u32, i64)> {
    let (y, m, d) = civil_from_days(ms.div_euclid(DAY_MS));
    (-262_143..=262_142)
        .contains(&y)
        .then_some((y, m, d, ms.rem_euclid(DAY_MS)))
}

/// An ISO 8601 year: four digits within 0000–9999, else signed (`+10000`, `-0001`).
fn iso_year(y: i64) -> String {
    if (0..=9999).contains(&y) {
        format!("{y:04}")
    } else {
        format!("{y:+05}")
    }
}

/// `YYYY-MM-DDTHH:MM:SS` of a UTC instant and the milliseconds of its second.
fn date_time(ms: i64) -> Option<(String, i64)> {
    let (y, m, d, t) = civil_of(ms)?;
    let s = t / 1000;
    let text = format!(
        "{}-{m:02}-{d:02}T{:02}:{:02}:{:02}",
        iso_year(y),
        s / 3600,
        s / 60 % 60,
        s % 60
    );
    Some((text, t % 1000))
}

/// `YYYY-MM-DDTHH:MM:SSZ` (RFC 3339 in whole seconds, UTC) of Unix milliseconds; empty outside
/// the representable years.
pub fn format_instant(ms: i64) -> String {
    date_time(ms).map_or_else(String::new, |(t, _)| format!("{t}Z"))
}

/// `YYYY-MM-DDTHH:MM:SS.mmmZ` (RFC 3339 with milliseconds, UTC) of Unix milliseconds; empty
/// outside the representable years.
pub fn format_instant_millis(ms: i64) -> String {
    date_time(ms).map_or_else(String::new, |(t, frac)| format!("{t}.{frac:03}Z"))
}

/// `YYYY-MM` (the UTC calendar month) of Unix milliseconds; empty outside the representable
/// years.
pub fn format_month(ms: i64) -> String {
    civil_of(ms).map_or_else(String::new, |(y, m, _, _)| {
        format!("{}-{m:02}", iso_year(y))
    })
}

/// The first instant (Unix ms) of the UTC calendar month of `ms`, and of the month before it
/// (outside the representable years: of January 1970).
pub fn month_starts(ms: i64) -> (i64, i64) {
    let (y, m, _, _) = civil_of(ms).unwrap_or((1970, 1, 1, 0));
    let (py, pm) = if m == 1 { (y - 1, 12) } else { (y, m - 1) };
    (
        days_from_civil(y, m, 1) * DAY_MS,
        days_from_civil(py, pm, 1) * DAY_MS,
    )
}

#[cfg(test)]
mod tests;
