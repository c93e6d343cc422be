//! The cell parsers shared by files and HTTP: numbers, booleans, missing tokens, timestamps.
#![no_main]
use churn::ingest::value::{
    is_missing_token, parse_bool, parse_number, parse_timestamp, MAX_MAGNITUDE,
};
use churn::time::{civil_from_days, days_from_civil, DAY_MS};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    if let Some(x) = parse_number(s) {
        assert!(x.is_finite() && x.abs() <= MAX_MAGNITUDE, "{s:?} -> {x}");
    }
    let _ = parse_bool(s, "Yes", "No");
    let _ = is_missing_token(s);
    let ms = churn::time::parse(s);
    // the ingest layer's seconds are the same instant, rounded down
    assert_eq!(parse_timestamp(s), ms.map(|t| t.div_euclid(1000)), "{s:?}");
    if let Some(t) = ms {
        // a parsed instant is a real day that round-trips through the civil calendar
        let day = t.div_euclid(DAY_MS);
        let (y, m, d) = civil_from_days(day);
        assert_eq!(days_from_civil(y, m, d), day, "{s:?}");
    }
});
