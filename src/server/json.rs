//! Request bodies: the byte-limited body reader and the borrowed, allocation-light customer
//! parser behind `POST /v1/score` (fields in body order, text borrowed from the body where it has
//! no escapes).

use super::error::{ApiCode, ApiError};
use crate::io::RawValue;
use actix_web::http::header;
use actix_web::{web, HttpRequest};
use futures_util::StreamExt;
use serde::Serialize;
use std::borrow::Cow;

/// Read a JSON body of at most `limit` bytes (415 for another content type, 413 when larger).
pub async fn read_body(
    req: &HttpRequest,
    mut payload: web::Payload,
    limit: usize,
) -> Result<web::BytesMut, ApiError> {
    let ct = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !ct
        .trim_start()
        .to_ascii_lowercase()
        .starts_with("application/json")
    {
        return Err(ApiError::new(
            ApiCode::UnsupportedMediaType,
            format!("expected Content-Type: application/json, got '{ct}'"),
        ));
    }
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|len| len > limit) {
        return Err(too_large(limit));
    }
    let mut body = web::BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|e| {
            ApiError::new(
                ApiCode::BadBody,
                format!("cannot read the request body: {e}"),
            )
        })?;
        if body.len() + chunk.len() > limit {
            return Err(too_large(limit));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

fn too_large(limit: usize) -> ApiError {
    ApiError::new(
        ApiCode::BodyTooLarge,
        format!("request body exceeds {limit} bytes"),
    )
}

/// The body of a scoring request.
#[derive(serde::Deserialize)]
pub struct ScoreRequest<'a> {
    /// The customers to score, in order.
    #[serde(borrow)]
    pub customers: Vec<Customer<'a>>,
}

/// Parse a scoring request and check its batch size (1..=`max_batch`).
pub fn parse_score_request(body: &[u8], max_batch: usize) -> Result<ScoreRequest<'_>, ApiError> {
    let parsed: ScoreRequest = serde_json::from_slice(body).map_err(|e| {
        use serde_json::error::Category;
        match e.classify() {
            Category::Data => ApiError::new(
                ApiCode::InvalidRequest,
                format!("expected {{\"customers\": [{{...}}, ...]}}: {e}"),
            )
            .field("customers"),
            _ => ApiError::new(
                ApiCode::MalformedJson,
                format!("request body is not valid JSON: {e}"),
            ),
        }
    })?;
    let n = parsed.customers.len();
    if n == 0 {
        return Err(ApiError::new(
            ApiCode::EmptyBatch,
            "customers must hold at least one customer",
        )
        .field("customers"));
    }
    if n > max_batch {
        return Err(ApiError::new(
            ApiCode::BatchTooLarge,
            format!("{n} customers exceed the limit of {max_batch} per request"),
        )
        .field("customers"));
    }
    Ok(parsed)
}

/// One customer of a request: its fields in body order, text borrowed from the body where it
/// has no escapes (no allocation per field).
pub struct Customer<'a>(pub Vec<(Cow<'a, str>, Cell<'a>)>);

/// One JSON field value of a customer.
#[derive(Debug)]
pub enum Cell<'a> {
    Null,
    Bool(bool),
    Num(serde_json::Number),
    /// A number JSON can carry but f64 cannot (overflow).
    NonFinite,
    Str(Cow<'a, str>),
    /// An array or an object.
    Compound,
}

impl Cell<'_> {
    /// The value as text (numbers and booleans as in JSON), for ids.
    pub fn text(&self) -> Cow<'_, str> {
        match self {
            Cell::Str(s) => Cow::Borrowed(s),
            Cell::Num(n) => Cow::Owned(n.to_string()),
            Cell::Bool(b) => Cow::Borrowed(if *b { "true" } else { "false" }),
            Cell::Null | Cell::NonFinite | Cell::Compound => Cow::Borrowed("null"),
        }
    }
}

impl Serialize for Cell<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Cell::Str(v) => s.serialize_str(v),
            Cell::Num(n) => n.serialize(s),
            Cell::Bool(b) => s.serialize_bool(*b),
            Cell::Null | Cell::NonFinite | Cell::Compound => s.serialize_unit(),
        }
    }
}

/// Text that borrows from the input when it can.
struct BorrowedStr<'a>(Cow<'a, str>);

impl<'de: 'a, 'a> serde::Deserialize<'de> for BorrowedStr<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> serde::de::Visitor<'de> for V<'a> {
            type Value = BorrowedStr<'a>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(BorrowedStr(Cow::Borrowed(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
                Ok(BorrowedStr(Cow::Owned(v.to_string())))
            }
            fn visit_string<E>(self, v: String) -> Result<Self::Value, E> {
                Ok(BorrowedStr(Cow::Owned(v)))
            }
        }
        d.deserialize_str(V(std::marker::PhantomData))
    }
}

impl<'de: 'a, 'a> serde::Deserialize<'de> for Cell<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> serde::de::Visitor<'de> for V<'a> {
            type Value = Cell<'a>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a JSON value")
            }
            fn visit_unit<E>(self) -> Result<Self::Value, E> {
                Ok(Cell::Null)
            }
            fn visit_none<E>(self) -> Result<Self::Value, E> {
                Ok(Cell::Null)
            }
            fn visit_bool<E>(self, v: bool) -> Result<Self::Value, E> {
                Ok(Cell::Bool(v))
            }
            fn visit_i64<E>(self, v: i64) -> Result<Self::Value, E> {
                Ok(Cell::Num(v.into()))
            }
            fn visit_u64<E>(self, v: u64) -> Result<Self::Value, E> {
                Ok(Cell::Num(v.into()))
            }
            fn visit_f64<E>(self, v: f64) -> Result<Self::Value, E> {
                Ok(serde_json::Number::from_f64(v).map_or(Cell::NonFinite, Cell::Num))
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Cell::Str(Cow::Borrowed(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Cell::Str(Cow::Owned(v.to_string())))
            }
            fn visit_string<E>(self, v: String) -> Result<Self::Value, E> {
                Ok(Cell::Str(Cow::Owned(v)))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut a: A,
            ) -> Result<Self::Value, A::Error> {
                while a.next_element::<serde::de::IgnoredAny>()?.is_some() {}
                Ok(Cell::Compound)
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut a: A,
            ) -> Result<Self::Value, A::Error> {
                while a
                    .next_entry::<serde::de::IgnoredAny, serde::de::IgnoredAny>()?
                    .is_some()
                {}
                Ok(Cell::Compound)
            }
        }
        d.deserialize_any(V(std::marker::PhantomData))
    }
}

impl<'de: 'a, 'a> serde::Deserialize<'de> for Customer<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> serde::de::Visitor<'de> for V<'a> {
            type Value = Customer<'a>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a customer object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut a: A,
            ) -> Result<Self::Value, A::Error> {
                let mut v = Vec::with_capacity(a.size_hint().unwrap_or(24));
                while let Some((k, c)) = a.next_entry::<BorrowedStr<'a>, Cell<'a>>()? {
                    v.push((k.0, c));
                }
                Ok(Customer(v))
            }
        }
        d.deserialize_map(V(std::marker::PhantomData))
    }
}

impl Customer<'_> {
    /// The last value given for `key` (JSON objects with repeated keys: the last one wins).
    pub fn get(&self, key: &str) -> Option<&Cell<'_>> {
        self.0.iter().rev().find(|(k, _)| k == key).map(|(_, c)| c)
    }
}

/// A JSON value as a raw cell; `field` names the field in errors (built only on error).
///
/// Text goes to the one cell parser (`ingest::value`, through the encoder) exactly as a CSV cell
/// does: `"NaN"` is a missing value and text spelling an infinity is not a number, over HTTP as in
/// batch files.
pub fn raw_value<'a>(
    v: &'a Cell<'a>,
    field: &dyn Fn() -> String,
) -> Result<RawValue<'a>, ApiError> {
    let non_finite =
        || ApiError::new(ApiCode::InvalidValue, "numbers must be finite").field(field());
    match v {
        Cell::Null => Ok(RawValue::Missing),
        Cell::Bool(b) => Ok(RawValue::Bool(*b)),
        Cell::Num(n) => match n.as_f64() {
            Some(x) if x.is_finite() => Ok(RawValue::Number(x)),
            _ => Err(non_finite()),
        },
        Cell::NonFinite => Err(non_finite()),
        Cell::Str(s) => Ok(RawValue::Text(s)),
        Cell::Compound => Err(ApiError::new(
            ApiCode::InvalidType,
            "expected a number, string, boolean or null",
        )
        .field(field())),
    }
}
