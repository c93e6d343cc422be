//! One timestamp parser behind every entry point (issue 30, item 3): each form either former
//! parser accepted reaches the same instant through a transaction-log cell, an outcome `at`
//! loaded by `churn-train outcomes`, an outcome `at` posted to `POST /v1/outcomes`, and the
//! `from` parameter of `GET /v1/evaluation`.

use super::store::{enc, get};
use crate::util::*;
use churn::ingest::{Cut, FeatureValues, Source, TransactionSpec};
use churn::store::{IdKey, Store, StoreUrl};
use serde_json::{json, Value};
use std::collections::BTreeMap;

/// (name, text, Unix ms). The forms of the transaction-log parser, of the ISO parser (outcomes,
/// CLI options, query parameters) and of both, with the instants they gave; all in the past.
const CASES: &[(&str, &str, i64)] = &[
    ("iso date", "2026-11-01", 1_793_491_200_000),
    (
        "iso date, one-digit month and day",
        "2026-1-5",
        1_767_571_200_000,
    ),
    ("slashed date", "2026/11/01", 1_793_491_200_000),
    ("compact date", "20261101", 1_793_491_200_000),
    ("dotted day.month.year", "1.11.2026", 1_793_491_200_000),
    ("US month/day/year", "11/1/2026", 1_793_491_200_000),
    ("date and HH:MM", "2026-11-01 10:05", 1_793_527_500_000),
    (
        "date, T, fraction",
        "2026-11-01T10:05:30.25",
        1_793_527_530_250,
    ),
    ("RFC 3339 Z", "2026-11-01T10:05:30Z", 1_793_527_530_000),
    (
        "RFC 3339 lower-case t and z",
        "2026-11-01t10:05:30z",
        1_793_527_530_000,
    ),
    (
        "RFC 3339 +02:00",
        "2026-11-01T01:00:00+02:00",
        1_793_487_600_000,
    ),
    (
        "RFC 3339 minus sign U+2212",
        "2026-11-01T01:00:00\u{2212}05:00",
        1_793_512_800_000,
    ),
    (
        "offset +0200 after a blank",
        "2026-11-01 01:00:00 +0200",
        1_793_487_600_000,
    ),
    (
        "offset +02 after HH:MM",
        "2026-11-01T01:00+02",
        1_793_487_600_000,
    ),
    ("US date and time", "12/1/2010 8:26", 1_291_191_960_000),
    ("leap second", "2016-12-31T23:59:60Z", 1_483_228_800_000),
    (
        "before 1970, with a fraction",
        "1969-12-31T23:59:59.5Z",
        -500,
    ),
    ("before 1970, date", "1900-02-28", -2_203_977_600_000),
];

/// Case `i`'s customer id.
fn customer(i: usize) -> String {
    format!("t{i}")
}

/// Check `got` (customer id → instant) against every case, in ms or in whole `seconds`.
fn check(entry: &str, got: &BTreeMap<String, i64>, seconds: bool) {
    for (i, (name, text, want)) in CASES.iter().enumerate() {
        let want = if seconds {
            want.div_euclid(1000)
        } else {
            *want
        };
        assert_eq!(
            got.get(&customer(i)),
            Some(&want),
            "{entry}: {name}: {text:?}"
        );
    }
}

#[test]
fn the_parser_gives_each_case_its_instant() {
    for (name, text, want) in CASES {
        assert_eq!(churn::time::parse(text), Some(*want), "{name}: {text:?}");
    }
}

/// A transaction log with one purchase per case: the recency as of 2100-01-01 tells the
/// instant the ingest layer read (in seconds).
#[test]
fn transaction_log_cells() {
    let dir = tempfile::tempdir().unwrap();
    let mut csv = String::from("customer_id,date,amount\n");
    for (i, (_, text, _)) in CASES.iter().enumerate() {
        csv.push_str(&format!("{},{text},10\n", customer(i)));
    }
    let spec = TransactionSpec {
        path: write(dir.path(), "log.csv", &csv),
        customer_col: "customer_id".into(),
        time_col: "date".into(),
        amount_col: "amount".into(),
        cut: Cut::AsOf(Some("2100-01-01".into())),
        ..TransactionSpec::default()
    };
    let data = churn::ingest::load(&Source::Transactions(spec)).unwrap();
    let as_of = churn::time::parse("2100-01-01").unwrap() / 1000;
    let recency = data
        .features
        .iter()
        .find(|f| f.name == "recency_days")
        .unwrap();
    let FeatureValues::Num(days) = &recency.values else {
        panic!("recency_days is numeric")
    };
    let got: BTreeMap<String, i64> = data
        .ids
        .unwrap()
        .into_iter()
        .zip(days)
        .map(|(id, d)| (id, as_of - (d.unwrap() * 86_400.0).round() as i64))
        .collect();
    check("transaction log", &got, true);
}

/// Every stored outcome's instant by customer id (case `i` is a purchase of `i + 1`: the
/// evaluation's view of the store keeps amounts, not customer ids).
fn stored_outcomes(url: &str) -> BTreeMap<String, i64> {
    let store = Store::open(&StoreUrl::parse(url).unwrap(), IdKey::new(None))
        .unwrap()
        .unwrap();
    let data = store
        .block_on(churn::evaluate::load(
            &store,
            "telco",
            (None, None),
            churn::store::Events::All,
        ))
        .unwrap();
    data.outcomes
        .iter()
        .map(|o| (customer(o.amount.unwrap() as usize - 1), o.at))
        .collect()
}

#[test]
fn outcome_files_through_the_cli() {
    let dir = tempfile::tempdir().unwrap();
    let mut csv = String::from("customer_id,event,at,amount\n");
    for (i, (_, text, _)) in CASES.iter().enumerate() {
        csv.push_str(&format!("{},purchase,{text},{}\n", customer(i), i + 1));
    }
    let input = write(dir.path(), "outcomes.csv", &csv);
    let url = format!("sqlite://{}", dir.path().join("store.db").display());
    let (code, _, err) = run(
        "churn-train",
        &[
            "outcomes",
            "--store",
            &url,
            "--input",
            input.to_str().unwrap(),
        ],
    );
    assert_eq!(code, 0, "{err}");
    check("churn-train outcomes", &stored_outcomes(&url), false);
}

/// `POST /v1/outcomes` with every case, then `GET /v1/evaluation?from=` with each: the period
/// it answers for starts at the case's instant (written in whole seconds).
#[test]
fn outcomes_and_evaluation_over_http() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("store.db").display());
    let s = start(trained(), &["--store", &url], &[]);
    let events: Vec<Value> = CASES
        .iter()
        .enumerate()
        .map(|(i, (_, text, _))| {
            json!({"customer_id": customer(i), "event": "purchase", "at": text, "amount": i + 1})
        })
        .collect();
    let r = post(&s.addr, "/v1/outcomes", &json!({ "outcomes": events }));
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["stored"], CASES.len(), "{}", r.body);
    check("POST /v1/outcomes", &stored_outcomes(&url), false);

    for (name, text, want) in CASES {
        let r = get(
            &s.addr,
            &format!("/v1/evaluation?model=telco&from={}", enc(text)),
        );
        assert_eq!(r.status, 200, "{name}: {text:?}: {}", r.body);
        assert_eq!(
            r.json()["from"],
            churn::time::format_instant(*want),
            "{name}: {text:?}"
        );
    }
}
