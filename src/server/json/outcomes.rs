//! The body of `POST /v1/outcomes` (`{"outcomes":[{…}, …]}`), parsed straight into the library's
//! [`RawOutcome`]s while counting: no `serde_json::Value` tree is built, an event's values are
//! typed as they are read, and parsing stops at event `max_batch + 1` or at the first field that
//! is unknown or of the wrong type. A 4 MiB body of tiny objects therefore costs at most
//! `max_batch` small structs (it took RSS from 31 MB to 403 MB through a `Value` tree).

use super::{BorrowedStr, Cell};
use crate::server::error::{ApiCode, ApiError};
use crate::store::RawOutcome;
use crate::util::excerpt;
use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};
use std::cell::RefCell;
use std::fmt;

/// The fields an event may have, for messages.
const FIELDS: &str =
    "customer_id, event, at, prediction_id, action, cost, amount, score, external_id";

/// Parse the events of an outcomes request, checked for shape, batch size (1..=`max_batch`) and
/// field types while parsing. Field paths in errors are absolute (`outcomes[2].amount`).
pub fn parse_outcomes(body: &[u8], max_batch: usize) -> Result<Vec<RawOutcome>, ApiError> {
    let found = RefCell::new(None);
    let mut de = serde_json::Deserializer::from_slice(body);
    let parsed = Top {
        max_batch,
        found: &found,
    }
    .deserialize(&mut de)
    .and_then(|v| de.end().map(|()| v));
    let events = parsed.map_err(|e| {
        if let Some(err) = found.borrow_mut().take() {
            return err;
        }
        match e.classify() {
            serde_json::error::Category::Data => shape(),
            _ => ApiError::new(
                ApiCode::MalformedJson,
                format!("request body is not valid JSON: {e}"),
            ),
        }
    })?;
    if events.is_empty() {
        return Err(
            ApiError::new(ApiCode::EmptyBatch, "outcomes must hold at least one event")
                .field("outcomes"),
        );
    }
    Ok(events)
}

fn shape() -> ApiError {
    ApiError::new(
        ApiCode::InvalidRequest,
        "expected {\"outcomes\": [{...}, ...]}",
    )
    .field("outcomes")
}

/// Where a visitor leaves the API error that stopped parsing (serde's own error type carries
/// only text; the code and field path travel here).
type Found<'f> = &'f RefCell<Option<ApiError>>;

/// Stop parsing with `err`.
fn stop<E: de::Error>(found: Found<'_>, err: ApiError) -> E {
    *found.borrow_mut() = Some(err);
    E::custom("refused")
}

/// The top-level object: exactly one key, `outcomes`.
struct Top<'f> {
    max_batch: usize,
    found: Found<'f>,
}

impl<'de> DeserializeSeed<'de> for Top<'_> {
    type Value = Vec<RawOutcome>;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for Top<'_> {
    type Value = Vec<RawOutcome>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an object with an outcomes array")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut a: A) -> Result<Self::Value, A::Error> {
        let mut events = None;
        let mut unknown = None;
        while let Some(k) = a.next_key::<BorrowedStr<'de>>()? {
            if k.0 == "outcomes" {
                events = Some(a.next_value_seed(Events {
                    max_batch: self.max_batch,
                    found: self.found,
                })?);
            } else {
                // skipped without building it; reported once the shape is known to be right
                a.next_value::<de::IgnoredAny>()?;
                unknown.get_or_insert_with(|| excerpt(&k.0));
            }
        }
        let events = events.ok_or_else(|| stop(self.found, shape()))?;
        match unknown {
            Some(k) => Err(stop(
                self.found,
                ApiError::new(ApiCode::UnknownField, format!("unknown field '{k}'")).field(k),
            )),
            None => Ok(events),
        }
    }
}

/// The `outcomes` array, refused past `max_batch` events.
struct Events<'f> {
    max_batch: usize,
    found: Found<'f>,
}

impl<'de> DeserializeSeed<'de> for Events<'_> {
    type Value = Vec<RawOutcome>;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for Events<'_> {
    type Value = Vec<RawOutcome>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an array of event objects")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut a: A) -> Result<Self::Value, A::Error> {
        // no capacity from the input: the array's length is whatever the client claims
        let mut v = Vec::new();
        loop {
            let seed = Event {
                index: v.len(),
                found: self.found,
            };
            if v.len() == self.max_batch {
                // one more element is the refusal; parse no further
                if a.next_element::<de::IgnoredAny>()?.is_some() {
                    let err = ApiError::new(
                        ApiCode::BatchTooLarge,
                        format!(
                            "more than {} events in one request (the limit)",
                            self.max_batch
                        ),
                    )
                    .field("outcomes");
                    return Err(stop(self.found, err));
                }
                return Ok(v);
            }
            match a.next_element_seed(seed)? {
                Some(e) => v.push(e),
                None => return Ok(v),
            }
        }
    }
}

/// One event object → [`RawOutcome`] (types checked here, values by the library).
struct Event<'f> {
    index: usize,
    found: Found<'f>,
}

impl Event<'_> {
    fn refuse<E: de::Error>(&self, code: ApiCode, field: Option<&str>, message: String) -> E {
        let path = match field {
            Some(f) => format!("outcomes[{}].{f}", self.index),
            None => format!("outcomes[{}]", self.index),
        };
        stop(self.found, ApiError::new(code, message).field(path))
    }

    fn not_an_object<E: de::Error>(&self) -> E {
        self.refuse(
            ApiCode::InvalidType,
            None,
            "expected an event object".into(),
        )
    }
}

impl<'de> DeserializeSeed<'de> for Event<'_> {
    type Value = RawOutcome;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Event<'_> {
    type Value = RawOutcome;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an event object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut a: A) -> Result<RawOutcome, A::Error> {
        let mut raw = RawOutcome::default();
        while let Some(k) = a.next_key::<BorrowedStr<'de>>()? {
            let key = k.0.as_ref();
            let v: Cell<'de> = a.next_value()?;
            let wrong = |expected: &str| -> A::Error {
                self.refuse(
                    ApiCode::InvalidType,
                    Some(key),
                    format!("{key}: expected {expected}"),
                )
            };
            let text = |v: Cell<'de>| match v {
                Cell::Null => Ok(None),
                Cell::Str(s) => Ok(Some(s.into_owned())),
                _ => Err(wrong("a string")),
            };
            let number = |v: Cell<'de>| match v {
                Cell::Null => Ok(None),
                Cell::Num(n) => Ok(n.as_f64()),
                // beyond f64: refused by the library's range check, naming the field
                Cell::NonFinite => Ok(Some(f64::INFINITY)),
                _ => Err(wrong("a number")),
            };
            match key {
                "customer_id" => {
                    raw.customer_id = match v {
                        Cell::Null => None,
                        Cell::Str(s) => Some(s.into_owned()),
                        Cell::Num(n) => Some(n.to_string()),
                        _ => return Err(wrong("a string or a number")),
                    }
                }
                "event" => raw.event = text(v)?,
                "at" => raw.at = text(v)?,
                "prediction_id" => raw.prediction_id = text(v)?,
                "action" => raw.action = text(v)?,
                "external_id" => raw.external_id = text(v)?,
                "cost" => raw.cost = number(v)?,
                "amount" => raw.amount = number(v)?,
                "score" => raw.score = number(v)?,
                other => {
                    let name = excerpt(other);
                    return Err(self.refuse(
                        ApiCode::UnknownField,
                        Some(&name),
                        format!("unknown field '{name}' ({FIELDS})"),
                    ));
                }
            }
        }
        Ok(raw)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, _: A) -> Result<RawOutcome, A::Error> {
        Err(self.not_an_object())
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<RawOutcome, E> {
        Err(self.not_an_object())
    }
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<RawOutcome, E> {
        Err(self.not_an_object())
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<RawOutcome, E> {
        Err(self.not_an_object())
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<RawOutcome, E> {
        Err(self.not_an_object())
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<RawOutcome, E> {
        Err(self.not_an_object())
    }
    fn visit_unit<E: de::Error>(self) -> Result<RawOutcome, E> {
        Err(self.not_an_object())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(body: &str) -> ApiError {
        parse_outcomes(body.as_bytes(), 3).expect_err("refused")
    }

    #[test]
    fn events_are_typed_while_parsing() {
        let v = parse_outcomes(
            br#"{"outcomes":[{"customer_id":7,"event":"churned","at":"2026-01-01","amount":null}]}"#,
            3,
        )
        .unwrap();
        assert_eq!(v[0].customer_id.as_deref(), Some("7"));
        assert_eq!(v[0].event.as_deref(), Some("churned"));
        assert_eq!(v[0].amount, None);
    }

    #[test]
    fn refusals_name_the_field() {
        let e = err(r#"{"outcomes":[{"event":"x"},{"amount":"12"}]}"#);
        assert_eq!(e.code(), ApiCode::InvalidType);
        assert_eq!(e.field_path(), Some("outcomes[1].amount"));
        let e = err(r#"{"outcomes":[{"nope":1}]}"#);
        assert_eq!(e.code(), ApiCode::UnknownField);
        assert_eq!(e.field_path(), Some("outcomes[0].nope"));
        let e = err(r#"{"outcomes":[1]}"#);
        assert_eq!(e.field_path(), Some("outcomes[0]"));
        let e = err(r#"{"outcomes":[{},{},{},{}]}"#);
        assert_eq!(e.code(), ApiCode::BatchTooLarge);
        let e = err(r#"{"outcomes":[]}"#);
        assert_eq!(e.code(), ApiCode::EmptyBatch);
        let e = err(r#"{"other":[]}"#);
        assert_eq!(e.code(), ApiCode::InvalidRequest);
        let e = err(r#"{"outcomes":[{}],"other":[]}"#);
        assert_eq!(e.code(), ApiCode::UnknownField);
        assert_eq!(err(r#"{}"#).code(), ApiCode::InvalidRequest);
        assert_eq!(err(r#"{"outcomes":"#).code(), ApiCode::MalformedJson);
        assert_eq!(err(r#"{"outcomes":{}}"#).code(), ApiCode::InvalidRequest);
    }

    #[test]
    fn long_field_names_are_not_echoed_in_full() {
        let name = "k".repeat(10_000);
        let e = err(&format!(r#"{{"outcomes":[{{"{name}":1}}]}}"#));
        assert!(e.to_string().len() < 400, "{e}");
    }
}
