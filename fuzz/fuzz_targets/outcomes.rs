//! The outcome parser behind `POST /v1/outcomes`, then every parsed event through the library's
//! validation as the handler does: errors are fine, panics and hangs are not; a parse never
//! yields more events than the limit, and every accepted event keeps to the id rule and the
//! number bound.
#![no_main]
use churn::server::json::parse_outcomes;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|body: &[u8]| {
    let Ok(events) = parse_outcomes(body, 20) else {
        return;
    };
    assert!(!events.is_empty() && events.len() <= 20);
    for e in &events {
        let Ok(v) = e.validate(None, 1_800_000_000_000) else {
            continue;
        };
        assert!(churn::store::check_id(&v.customer_id).is_ok());
        for x in [v.amount, v.cost].into_iter().flatten() {
            assert!(x.is_finite() && x.abs() <= 1e15, "{x}");
        }
    }
});
