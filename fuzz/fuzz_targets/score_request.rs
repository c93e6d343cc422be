//! The HTTP customer parser behind `POST /v1/score`, then every parsed customer encoded and
//! scored as the handler does: errors are fine, panics and hangs are not.
#![no_main]
use churn::server::json::{parse_score_request, raw_value};
use libfuzzer_sys::fuzz_target;

fuzz_target!(
    init: {
        churn_fuzz::telco();
    },
    |body: &[u8]| {
    let scorer = churn_fuzz::telco();
    let Ok(req) = parse_score_request(body, 50) else {
        return;
    };
    assert!(!req.customers.is_empty() && req.customers.len() <= 50);
    let names: Vec<&str> = scorer.input_names().collect();
    for c in &req.customers {
        let _ = serde_json::to_string(c);
        let mut cells = Vec::with_capacity(names.len());
        let mut bad = false;
        for name in &names {
            match c.get(name).map(|v| raw_value(v, &|| name.to_string())) {
                Some(Ok(v)) => cells.push(Some(v)),
                Some(Err(_)) => bad = true,
                None => cells.push(None),
            }
        }
        if bad {
            continue;
        }
        let mut warnings = Vec::new();
        if let Ok(row) = scorer.encode(|i| cells[i], &mut warnings) {
            churn_fuzz::score_fully(scorer, &row, Some("fuzz-customer"));
        }
    }
});
