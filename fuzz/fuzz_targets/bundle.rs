//! Bundle payload decoder + structural validator, past the checksum (which anyone can recompute):
//! whatever decodes and validates must score without panicking or looping.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|payload: &[u8]| {
    let path = std::path::Path::new("fuzz/model.bin");
    let Ok(bundle) = churn::bundle::decode_payload(payload, path) else {
        return;
    };
    let scorer = churn::scoring::Scorer::new(churn::bundle::LoadedBundle {
        bundle,
        version: "fuzz".into(),
        dir: path.into(),
    });
    // an all-missing customer and one with every input at 1 walk the whole scorer
    let mut warnings = Vec::new();
    for value in [None, Some(churn::io::RawValue::Number(1.0))] {
        if let Ok(row) = scorer.encode(|_| value, &mut warnings) {
            churn_fuzz::score_fully(&scorer, &row, Some("fuzz-customer"));
        }
    }
});
