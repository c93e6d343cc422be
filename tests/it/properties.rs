//! Property tests (proptest): the borrowed JSON customer parser agrees with serde_json on every
//! generated body, and a customer scores the same whether its numbers arrive as JSON numbers, as
//! the text a CSV file holds, or through the HTTP parser.

use crate::util::*;
use churn::io::RawValue;
use churn::server::json::{parse_score_request, raw_value, Cell};
use proptest::prelude::*;
use serde_json::Value;

/// A JSON field value: scalars of every kind, text with escapes and non-ASCII, and nesting.
fn json_value() -> impl Strategy<Value = Value> {
    let scalar = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        (-1e20f64..1e20).prop_map(Value::from),
        "\\PC{0,12}".prop_map(Value::String),
        Just(Value::String("a\"b\\c\n\u{1F600}\u{0}".into())),
    ];
    scalar.prop_recursive(2, 8, 3, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..3).prop_map(Value::Array),
            prop::collection::vec(("[a-z]{1,3}", inner), 0..3)
                .prop_map(|kv| Value::Object(kv.into_iter().collect())),
        ]
    })
}

/// Field names, repeated on purpose (JSON objects may repeat keys: the last one wins).
fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("tenure".to_string()),
        Just("Contract".to_string()),
        Just("k\"ey\\".to_string()),
        Just("é\u{2028}".to_string()),
        "\\PC{0,6}",
    ]
}

/// A customer object as JSON text, fields in order, repeats kept.
fn object_text(fields: &[(String, Value)]) -> String {
    let parts: Vec<String> = fields
        .iter()
        .map(|(k, v)| format!("{}:{}", Value::from(k.as_str()), v))
        .collect();
    format!("{{{}}}", parts.join(","))
}

/// Our cell and serde_json's value say the same thing.
fn same(cell: &Cell<'_>, v: &Value) -> bool {
    match (cell, v) {
        (Cell::Null, Value::Null) => true,
        (Cell::Bool(a), Value::Bool(b)) => a == b,
        (Cell::Num(a), Value::Number(b)) => a.as_f64() == b.as_f64(),
        (Cell::Str(a), Value::String(b)) => a == b,
        (Cell::Compound, Value::Array(_) | Value::Object(_)) => true,
        _ => false,
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    #[test]
    fn the_customer_parser_agrees_with_serde_json(
        customers in prop::collection::vec(prop::collection::vec((key(), json_value()), 0..6), 1..4)
    ) {
        let texts: Vec<String> = customers.iter().map(|c| object_text(c)).collect();
        let body = format!("{{\"customers\":[{}]}}", texts.join(","));
        let ours = parse_score_request(body.as_bytes(), 100).unwrap();
        let theirs: Value = serde_json::from_str(&body).unwrap();
        let theirs = theirs["customers"].as_array().unwrap();
        prop_assert_eq!(ours.customers.len(), theirs.len());
        for ((o, t), fields) in ours.customers.iter().zip(theirs).zip(&customers) {
            let t = t.as_object().unwrap();
            for (k, _) in fields {
                let cell = o.get(k).unwrap();
                prop_assert!(same(cell, &t[k.as_str()]), "{k:?}: {cell:?} vs {}", t[k.as_str()]);
            }
            // what the store records is the object serde_json sees (compound values as null)
            let mut expected = t.clone();
            for v in expected.values_mut() {
                if v.is_array() || v.is_object() {
                    *v = Value::Null;
                }
            }
            prop_assert_eq!(serde_json::to_value(o).unwrap(), Value::Object(expected));
        }
        // the batch limit counts while parsing, whatever the customers hold
        prop_assert!(parse_score_request(body.as_bytes(), customers.len() - 1).is_err());
    }
}

/// The Telco model of the shared trained directory.
fn scorer() -> &'static churn::scoring::Scorer {
    static S: std::sync::OnceLock<churn::scoring::Scorer> = std::sync::OnceLock::new();
    S.get_or_init(|| {
        churn::scoring::Scorer::new(churn::bundle::load(&trained().join("telco")).unwrap())
    })
}

/// One value per model input: missing, a number, a known level or an unseen one.
#[derive(Debug, Clone)]
enum Input {
    Missing,
    Number(f64),
    Level(usize),
    Unseen(String),
}

fn input() -> impl Strategy<Value = Input> {
    prop_oneof![
        1 => Just(Input::Missing),
        3 => prop_oneof![
            (-1000i64..10_000).prop_map(|x| x as f64),
            (-1e6f64..1e6),
        ]
        .prop_map(Input::Number),
        3 => (0usize..8).prop_map(Input::Level),
        1 => "[A-Za-z ]{1,10}".prop_map(Input::Unseen),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    #[test]
    fn a_customer_scores_the_same_as_numbers_as_text_and_over_http(
        raw in prop::collection::vec(input(), 32)
    ) {
        let s = scorer();
        let inputs = &s.bundle.encoder.inputs;
        // the generated value of each input, made to fit its kind
        let cells: Vec<(Option<RawValue<'_>>, Option<String>)> = inputs
            .iter()
            .zip(raw.iter().cycle())
            .map(|(spec, v)| {
                use churn::ingest::FeatureKind;
                let levels = match &spec.encoding {
                    churn::features::InputEncoding::OneHot { levels, .. } => Some(levels),
                    _ => None,
                };
                match (v, levels, &spec.kind) {
                    // a missing value: null over HTTP, an empty cell in a file
                    (Input::Missing, _, _) => (Some(RawValue::Missing), Some(String::new())),
                    // a boolean input: one of its tokens, or 0 / 1
                    (other, _, FeatureKind::Boolean { true_token, false_token }) => {
                        let pick = match other {
                            Input::Number(x) => *x as i64,
                            Input::Level(i) => *i as i64,
                            _ => 0,
                        };
                        match pick.rem_euclid(4) {
                            0 => (Some(RawValue::Number(0.0)), Some("0".into())),
                            1 => (Some(RawValue::Number(1.0)), Some("1".into())),
                            2 => (Some(RawValue::Text(true_token)), Some(true_token.clone())),
                            _ => (Some(RawValue::Text(false_token)), Some(false_token.clone())),
                        }
                    }
                    (Input::Number(x), None, _) => {
                        (Some(RawValue::Number(*x)), Some(churn::util::fmt_num(*x)))
                    }
                    (Input::Level(i), Some(l), _) if !l.is_empty() => {
                        let t = l[i % l.len()].as_str();
                        (Some(RawValue::Text(t)), Some(t.to_string()))
                    }
                    (Input::Unseen(t), Some(_), _) => {
                        (Some(RawValue::Text(t.as_str())), Some(t.clone()))
                    }
                    (_, None, _) => (Some(RawValue::Number(1.0)), Some("1".into())),
                    (_, Some(_), _) => (Some(RawValue::Missing), Some(String::new())),
                }
            })
            .collect();
        let direct = s.score(|i| cells[i].0).unwrap();
        // numbers as the text a CSV cell holds
        let texts: Vec<Option<String>> = cells.iter().map(|c| c.1.clone()).collect();
        let as_text = s.score(|i| texts[i].as_deref().map(RawValue::Text)).unwrap();
        // the HTTP parser
        let mut obj = serde_json::Map::new();
        for (spec, (v, _)) in inputs.iter().zip(&cells) {
            let j = match v {
                None | Some(RawValue::Missing) => Value::Null,
                Some(RawValue::Number(x)) => Value::from(*x),
                Some(RawValue::Text(t)) => Value::from(*t),
                Some(other) => panic!("unexpected {other:?}"),
            };
            obj.insert(spec.name.clone(), j);
        }
        let body = serde_json::json!({"customers": [obj]}).to_string();
        let req = parse_score_request(body.as_bytes(), 10).unwrap();
        let c = &req.customers[0];
        let http_cells: Vec<Option<RawValue<'_>>> = inputs
            .iter()
            .map(|spec| c.get(&spec.name).map(|v| raw_value(v, &|| spec.name.clone()).unwrap()))
            .collect();
        let over_http = s.score(|i| http_cells[i]).unwrap();
        for other in [&as_text, &over_http] {
            prop_assert_eq!(direct.prediction.leaf, other.prediction.leaf);
            prop_assert_eq!(direct.prediction.probability, other.prediction.probability);
            prop_assert_eq!(
                direct.segment.as_ref().map(|a| a.segment_id),
                other.segment.as_ref().map(|a| a.segment_id)
            );
        }
        let p = &direct.prediction;
        prop_assert!(p.low <= p.probability && p.probability <= p.high);
        prop_assert!((0.0..=1.0).contains(&p.low) && (0.0..=1.0).contains(&p.high));
    }
}
