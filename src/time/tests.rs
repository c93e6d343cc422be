//! `time::parse` against the two parsers it replaced (kept here verbatim as oracles): every
//! form either accepted gives the same instant; the formatters against chrono's output.

use super::*;
use crate::util::Rng;

/// The former parsers, unchanged: `ingest::value::parse_timestamp` (seconds) and
/// `store::parse_instant` (milliseconds, chrono).
mod old {
    use super::days_from_civil;

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

    pub fn parse_instant(s: &str) -> Option<i64> {
        let t = s.trim();
        if let Ok(d) = chrono::DateTime::parse_from_rfc3339(t) {
            return Some(d.timestamp_millis());
        }
        for f in ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f"] {
            if let Ok(d) = chrono::NaiveDateTime::parse_from_str(t, f) {
                return Some(d.and_utc().timestamp_millis());
            }
        }
        let d = chrono::NaiveDate::parse_from_str(t, "%Y-%m-%d").ok()?;
        Some(d.and_hms_opt(0, 0, 0)?.and_utc().timestamp_millis())
    }
}

/// Which former parser accepted a text.
#[derive(Debug, Clone, Copy, PartialEq)]
enum By {
    /// The transaction-log parser only.
    Log,
    /// The ISO 8601 parser (outcomes, CLI, HTTP) only.
    Iso,
    /// Both.
    Both,
}

/// Unix ms of an RFC 3339 text, by chrono (an implementation independent of this module).
fn utc(rfc3339: &str) -> i64 {
    chrono::DateTime::parse_from_rfc3339(rfc3339)
        .unwrap_or_else(|e| panic!("{rfc3339}: {e}"))
        .timestamp_millis()
}

/// Every form accepted before: (name, text, the instant in UTC, which parser accepted it).
#[rustfmt::skip]
const FORMATS: &[(&str, &str, &str, By)] = &[
    ("iso date", "2026-11-01", "2026-11-01T00:00:00Z", By::Both),
    ("iso date, one-digit month and day", "2026-1-5", "2026-01-05T00:00:00Z", By::Iso),
    ("iso date, year 0000", "0000-03-01", "0000-03-01T00:00:00Z", By::Iso),
    ("iso date, year 0026", "0026-03-01", "0026-03-01T00:00:00Z", By::Both),
    ("slashed date", "2026/11/01", "2026-11-01T00:00:00Z", By::Log),
    ("compact date", "20261101", "2026-11-01T00:00:00Z", By::Log),
    ("dotted day.month.year", "01.11.2026", "2026-11-01T00:00:00Z", By::Log),
    ("dotted, one-digit day", "1.11.2026", "2026-11-01T00:00:00Z", By::Log),
    ("US month/day/year", "11/01/2026", "2026-11-01T00:00:00Z", By::Log),
    ("US, one-digit day", "11/1/2026", "2026-11-01T00:00:00Z", By::Log),
    ("date, blank, HH:MM", "2026-11-01 10:05", "2026-11-01T10:05:00Z", By::Log),
    ("date, blank, HH:MM:SS", "2026-11-01 10:05:30", "2026-11-01T10:05:30Z", By::Both),
    ("date, blank, fraction", "2026-11-01 10:05:30.250", "2026-11-01T10:05:30.250Z", By::Both),
    ("date, T, HH:MM", "2026-11-01T10:05", "2026-11-01T10:05:00Z", By::Log),
    ("date, T, HH:MM:SS", "2026-11-01T10:05:30", "2026-11-01T10:05:30Z", By::Both),
    ("date, T, fraction", "2026-11-01T10:05:30.5", "2026-11-01T10:05:30.500Z", By::Both),
    ("fraction finer than ms", "2026-11-01T10:05:30.123456789", "2026-11-01T10:05:30.123Z", By::Both),
    ("one-digit hour, minute, second", "2026-11-01 8:5:3", "2026-11-01T08:05:03Z", By::Both),
    ("blanks between date and time", "2026-11-01   10:05:30", "2026-11-01T10:05:30Z", By::Both),
    ("RFC 3339 Z", "2026-11-01T10:05:30Z", "2026-11-01T10:05:30Z", By::Both),
    ("RFC 3339 lower-case t and z", "2026-11-01t10:05:30z", "2026-11-01T10:05:30Z", By::Iso),
    ("RFC 3339 blank separator", "2026-11-01 10:05:30Z", "2026-11-01T10:05:30Z", By::Both),
    ("RFC 3339 +02:00", "2026-11-01T01:00:00+02:00", "2026-10-31T23:00:00Z", By::Both),
    ("RFC 3339 -05:00", "2026-11-01T22:30:00-05:00", "2026-11-02T03:30:00Z", By::Both),
    ("RFC 3339 fraction and offset", "2026-11-01T01:00:00.250-05:00", "2026-11-01T06:00:00.250Z", By::Both),
    ("RFC 3339 +23:59", "2026-11-01T01:00:00+23:59", "2026-10-31T01:01:00Z", By::Iso),
    ("RFC 3339 minus sign U+2212", "2026-11-01T01:00:00\u{2212}05:00", "2026-11-01T06:00:00Z", By::Iso),
    ("offset +0200", "2026-11-01 01:00:00 +0200", "2026-10-31T23:00:00Z", By::Log),
    ("offset +02", "2026-11-01T01:00+02", "2026-10-31T23:00:00Z", By::Log),
    ("offset after HH:MM", "2026-11-01T01:00+02:00", "2026-10-31T23:00:00Z", By::Log),
    ("Z after a blank", "2026-11-01 08:26 Z", "2026-11-01T08:26:00Z", By::Log),
    ("US date and time", "12/1/2010 8:26", "2010-12-01T08:26:00Z", By::Log),
    ("dotted date and time", "01.10.1997 08:26:05", "1997-10-01T08:26:05Z", By::Log),
    ("compact date and time", "19971001 08:26", "1997-10-01T08:26:00Z", By::Log),
    ("slashed date, T, Z", "1997/10/01T08:26:05Z", "1997-10-01T08:26:05Z", By::Log),
    ("blanks around", "  2026-11-01T10:05:30Z  ", "2026-11-01T10:05:30Z", By::Both),
    ("before 1970", "1969-12-31T23:59:59.5Z", "1969-12-31T23:59:59.500Z", By::Both),
    ("before 1970, date", "1900-02-28", "1900-02-28T00:00:00Z", By::Both),
    ("year 1", "0001-01-01T00:00:00Z", "0001-01-01T00:00:00Z", By::Both),
    // (chrono reads no year before 0000 in RFC 3339: the instant is given in the offset)
    ("year 0 moved to year -1 by its offset", "0000-01-01T00:30:00+01:00", "0000-01-01T00:30:00+01:00", By::Iso),
    ("leap day", "2024-02-29 12:00", "2024-02-29T12:00:00Z", By::Log),
    ("leap second", "2016-12-31T23:59:60Z", "2017-01-01T00:00:00Z", By::Both),
    ("leap second with a fraction", "2016-12-31 23:59:60.5", "2017-01-01T00:00:00.500Z", By::Both),
    ("second 60 of any minute", "2026-11-01T10:05:60", "2026-11-01T10:06:00Z", By::Both),
    ("leap second, US date", "12/31/2016 23:59:60", "2017-01-01T00:00:00Z", By::Log),
    ("fraction read to its first non-digit", "2026-11-01 10:05:30.25x", "2026-11-01T10:05:30.250Z", By::Log),
    ("a minus sign inside an ignored fraction", "2026-11-01 10:05:01.5\u{2212}0100", "2026-11-01T10:05:01.500Z", By::Log),
    ("parts after a dotted year ignored", "01.11.2026.5", "2026-11-01T00:00:00Z", By::Log),
    ("date and a bare T", "2026-11-01T", "2026-11-01T00:00:00Z", By::Log),
    ("extra leading zeros", "2026-11-01 010:005", "2026-11-01T10:05:00Z", By::Log),
    ("dotted year as written", "1.1.97", "0097-01-01T00:00:00Z", By::Log),
];

/// Texts no parser accepted, and still refused.
const REFUSED: &[(&str, &str)] = &[
    ("a word", "yesterday"),
    ("empty", ""),
    ("month 13", "2026-13-01"),
    ("February 30", "2026-02-30"),
    ("February 29 of a common year", "2026-02-29"),
    ("hour 24", "2026-11-01T24:00:00Z"),
    ("minute 60", "2026-11-01T10:60:00Z"),
    ("second 61", "2026-11-01T10:00:61Z"),
    ("offset +25:00", "2026-11-01T01:00:00+25:00"),
    ("offset +2:00", "2026-11-01T01:00:00+2:00"),
    ("offset minute 60", "2026-11-01T01:00:00+01:60"),
    ("date with an offset", "2026-11-01Z"),
    ("a bare Z for a time", "2026-11-01 Z"),
    ("two-digit US year", "1/1/26"),
    ("10-digit year", "1/1/12345678901"),
    ("9-digit year", "1/1/123456789"),
    ("u32 overflow in a dotted year", "01.01.4294967297"),
    ("year 10000", "10000-01-01"),
    ("slashed day 00", "2026/11/00"),
    ("dotted year 0", "1.1.0"),
    ("no minutes", "2026-11-01T10"),
    ("three colons", "2026-11-01T10:00:00:00"),
];

/// Accepted by chrono's format engine in the ISO parser, refused now (see [`parse`]).
const NO_LONGER: &[(&str, &str)] = &[
    ("two-digit year", "26-11-01"),
    ("signed year", "+2026-11-01"),
    ("negative year", "-0001-11-01"),
    ("blank after a dash", "2026- 11-01"),
    ("blank after a colon", "2026-11-01 10: 05:30"),
    ("time glued to the date", "2026-11-0110:05:30"),
];

#[test]
fn every_former_format_gives_the_former_instant() {
    for &(name, text, at, by) in FORMATS {
        let want = utc(at);
        assert_eq!(parse(text), Some(want), "{name}: {text:?}");
        let log = matches!(by, By::Log | By::Both);
        let iso = matches!(by, By::Iso | By::Both);
        assert_eq!(
            old::parse_timestamp(text),
            log.then_some(want.div_euclid(1000)),
            "{name}: {text:?} by the transaction-log parser"
        );
        assert_eq!(
            old::parse_instant(text),
            iso.then_some(want),
            "{name}: {text:?} by the ISO parser"
        );
    }
}

#[test]
fn refused_texts_stay_refused() {
    for &(name, text) in REFUSED {
        assert_eq!(parse(text), None, "{name}: {text:?}");
        assert_eq!(old::parse_timestamp(text), None, "{name}: {text:?}");
        assert_eq!(old::parse_instant(text), None, "{name}: {text:?}");
    }
    for &(name, text) in NO_LONGER {
        assert_eq!(parse(text), None, "{name}: {text:?}");
        assert!(old::parse_instant(text).is_some(), "{name}: {text:?}");
    }
}

/// A random number below `below` as text zero-padded to `width` digits.
fn num(rng: &mut Rng, below: usize, width: usize) -> String {
    let n = rng.below(below);
    format!("{n:0width$}")
}

/// A random number below `below`, zero-padded to two digits or not at all.
fn field(rng: &mut Rng, below: usize) -> String {
    let width = 1 + rng.below(2);
    num(rng, below, width)
}

/// A random date-and-time text built from the pieces both former parsers read (four-digit
/// years, no blanks inside the date or the time), valid or not.
fn random_text(rng: &mut Rng) -> String {
    let (y, m, d) = (num(rng, 10_000, 4), field(rng, 14), field(rng, 33));
    let mut s = match rng.below(6) {
        0 => format!("{y}-{m}-{d}"),
        1 => format!("{y}/{m}/{d}"),
        2 => format!("{y}{m}{d}"),
        3 => format!("{d}.{m}.{y}"),
        4 => format!("{m}/{d}/{y}"),
        _ => format!("{y}-{}-{}", num(rng, 13, 2), num(rng, 32, 2)),
    };
    if rng.below(5) == 0 {
        return s;
    }
    s.push_str(["T", "t", " ", "  ", "T "][rng.below(5)]);
    let (h, mi) = (field(rng, 26), field(rng, 62));
    s.push_str(&format!("{h}:{mi}"));
    if rng.below(4) > 0 {
        let sec = field(rng, 62);
        s.push_str(&format!(":{sec}"));
        if rng.below(2) == 0 {
            let digits = rng.below(12);
            s.push('.');
            s.extend((0..digits).map(|_| char::from(b'0' + rng.below(10) as u8)));
        }
    }
    let (h, mi) = (num(rng, 26, 2), num(rng, 62, 2));
    let sign = ["+", "-", "\u{2212}"][rng.below(3)];
    let offsets = [
        String::new(),
        "Z".into(),
        "z".into(),
        format!("{sign}{h}:{mi}"),
        format!("{sign}{h}{mi}"),
        format!("{sign}{h}"),
        format!(" {sign}{h}:{mi}"),
    ];
    s.push_str(&offsets[rng.below(offsets.len())]);
    // now and then stray characters somewhere (the former parsers' tolerances)
    while rng.below(4) == 0 {
        let at: Vec<usize> = (0..=s.len()).filter(|&i| s.is_char_boundary(i)).collect();
        let stray = [
            '.', ':', '-', '+', '/', ' ', 'T', 't', 'Z', 'x', '0', '9', '\u{2212}',
        ];
        s.insert(at[rng.below(at.len())], stray[rng.below(stray.len())]);
    }
    s
}

/// A text of the kinds [`NO_LONGER`] lists: a year not written with four digits or signed,
/// a blank after a `-` or a `:`, a time glued to a `YYYY-MM-DD` date.
fn chrono_leniency(s: &str) -> bool {
    let t = s.trim();
    let mut dashed = t.split('-');
    let year = dashed.next().unwrap_or_default();
    let glued = dashed
        .nth(1)
        .is_some_and(|d| d.bytes().take_while(u8::is_ascii_digit).count() > 2);
    t.starts_with(['+', '-'])
        || (t.contains('-') && (year.len() != 4 || !year.bytes().all(|c| c.is_ascii_digit())))
        || t.contains("- ")
        || t.contains(": ")
        || glued
}

/// Random texts: whatever a former parser accepted, `parse` accepts with the same instant
/// (but for the ISO parser's leniencies, [`NO_LONGER`]). `TIME_CASES=N` runs N texts.
#[test]
fn random_texts_agree_with_the_former_parsers() {
    for &(name, text) in NO_LONGER {
        assert!(chrono_leniency(text), "{name}: {text:?}");
    }
    let mut rng = Rng::new(7);
    let (mut log, mut iso, mut lenient) = (0, 0, 0);
    let n: usize = std::env::var("TIME_CASES").map_or(300_000, |v| v.parse().unwrap());
    for _ in 0..n {
        let s = random_text(&mut rng);
        let new = parse(&s);
        if let Some(t) = old::parse_timestamp(&s) {
            assert_eq!(new.map(|ms| ms.div_euclid(1000)), Some(t), "{s:?}");
            log += 1;
        }
        match old::parse_instant(&s) {
            Some(t) if chrono_leniency(&s) => {
                // refused now, or read the same
                assert!(new.is_none() || new == Some(t), "{s:?}: {new:?} {t}");
                lenient += 1;
            }
            Some(t) => {
                assert_eq!(new, Some(t), "{s:?}");
                iso += 1;
            }
            None => {}
        }
    }
    // the generator reaches both parsers' forms
    assert!(log > n / 15 && iso > n / 60, "log {log}, iso {iso} of {n}");
    assert!(lenient < iso / 10, "lenient {lenient}, iso {iso}");
}

/// Random instants over the whole `i64` range (and near the epoch): the formatters write what
/// chrono wrote (empty outside its years), and the day text is the former `{:04}` one.
#[test]
fn formatters_write_the_former_text() {
    let mut rng = Rng::new(11);
    let mut cases = vec![
        0,
        -1,
        1,
        i64::MIN,
        i64::MAX,
        -62_167_219_200_000,
        253_402_300_800_000,
    ];
    for _ in 0..200_000 {
        let x = rng.next_u64() as i64;
        cases.push(x);
        cases.push(x >> 20); // within a few hundred thousand years
        cases.push(x >> 40); // around the epoch
    }
    for ms in cases {
        let c = chrono::DateTime::from_timestamp_millis(ms);
        let f = |fmt: &str| c.map(|d| d.format(fmt).to_string()).unwrap_or_default();
        assert_eq!(format_instant(ms), f("%Y-%m-%dT%H:%M:%SZ"), "{ms}");
        assert_eq!(format_month(ms), f("%Y-%m"), "{ms}");
        let millis = c
            .map(|d| d.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
            .unwrap_or_default();
        assert_eq!(format_instant_millis(ms), millis, "{ms}");
        let days = ms.div_euclid(DAY_MS);
        let (y, m, d) = civil_from_days(days);
        assert_eq!(days_from_civil(y, m, d), days, "{ms}");
        assert_eq!(format_day(days), format!("{y:04}-{m:02}-{d:02}"));
        if let Some(c) = c {
            use chrono::Datelike;
            assert_eq!((y, m, d), (i64::from(c.year()), c.month(), c.day()), "{ms}");
            assert_eq!(month_starts(ms), old_month_starts(ms), "{ms}");
        }
    }
    assert_eq!(format_day(days_from_civil(2000, 2, 29)), "2000-02-29");
    assert_eq!(
        format_instant(utc("2026-11-01T10:05:30.999Z")),
        "2026-11-01T10:05:30Z"
    );
    assert_eq!(
        format_instant_millis(utc("1969-12-31T23:59:59.5Z")),
        "1969-12-31T23:59:59.500Z"
    );
}

/// The former `KpiOptions::last_full_month` period (chrono): (this month's start, the last's).
fn old_month_starts(now: i64) -> (i64, i64) {
    use chrono::{Datelike, TimeZone, Utc};
    let d = chrono::DateTime::from_timestamp_millis(now).unwrap_or_default();
    let this = Utc
        .with_ymd_and_hms(d.year(), d.month(), 1, 0, 0, 0)
        .single()
        .unwrap_or_default();
    let (y, m) = if d.month() == 1 {
        (d.year() - 1, 12)
    } else {
        (d.year(), d.month() - 1)
    };
    let prev = Utc
        .with_ymd_and_hms(y, m, 1, 0, 0, 0)
        .single()
        .unwrap_or_default();
    (this.timestamp_millis(), prev.timestamp_millis())
}
