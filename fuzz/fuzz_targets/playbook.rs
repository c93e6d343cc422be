//! The playbook loader: TOML text → validated against a real model's inputs → compiled, and a
//! compiled playbook advises customers without panicking.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(
    init: {
        churn_fuzz::telco();
    },
    |data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(file) = churn::playbook::parse(text, "fuzz.toml") else {
        return;
    };
    let mut scorer = churn_fuzz::telco().clone();
    if scorer.set_playbook(file, "fuzz.toml").is_err() {
        return;
    }
    let mut warnings = Vec::new();
    if let Ok(row) = scorer.encode(|_| None, &mut warnings) {
        churn_fuzz::score_fully(&scorer, &row, Some("fuzz-customer"));
    }
});
