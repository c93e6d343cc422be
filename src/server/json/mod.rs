//! Request bodies: the byte-limited body reader and the borrowed, allocation-light customer
//! parser behind `POST /v1/score` (fields in body order, text borrowed from the body where it has
//! no escapes); the outcome events of `POST /v1/outcomes` in `outcomes` ([`parse_outcomes`]).

mod outcomes;

pub use outcomes::parse_outcomes;

use super::error::{ApiCode, ApiError};
use crate::io::RawValue;
use actix_web::http::header;
use actix_web::{web, HttpRequest};
use futures_util::StreamExt;
use serde::Serialize;
use std::borrow::Cow;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Bytes of request bodies still arriving, across all connections, against a limit: slow or
/// stalled uploads can hold at most this much memory together, whatever their number.
#[derive(Debug)]
pub struct BodyBudget {
    used: AtomicUsize,
    limit: usize,
}

impl BodyBudget {
    /// A budget of `limit` bytes.
    pub fn new(limit: usize) -> BodyBudget {
        BodyBudget {
            used: AtomicUsize::new(0),
            limit,
        }
    }

    /// Bytes now held by bodies being received.
    pub fn used(&self) -> usize {
        self.used.load(Ordering::Relaxed)
    }
}

/// The part of the budget one body holds; given back when dropped.
struct Held<'a> {
    budget: &'a BodyBudget,
    bytes: usize,
}

impl Held<'_> {
    /// Take `n` more bytes; false (taking nothing) when the budget would be exceeded.
    fn take(&mut self, n: usize) -> bool {
        let before = self.budget.used.fetch_add(n, Ordering::Relaxed);
        if before + n > self.budget.limit {
            self.budget.used.fetch_sub(n, Ordering::Relaxed);
            return false;
        }
        self.bytes += n;
        true
    }
}

impl Drop for Held<'_> {
    fn drop(&mut self) {
        self.budget.used.fetch_sub(self.bytes, Ordering::Relaxed);
    }
}

/// Read a JSON body of at most `max_body_bytes` that arrives whole within `body_timeout`, within
/// the server's pending-body budget (415 for another content type, 413 when larger, 408 when
/// slower, 503 when bodies still arriving already hold the budget).
pub async fn read_body(
    req: &HttpRequest,
    payload: web::Payload,
    config: &super::ServerConfig,
    budget: &BodyBudget,
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
    let limit = config.max_body_bytes;
    if declared.is_some_and(|len| len > limit) {
        return Err(too_large(limit));
    }
    let timeout = config.body_timeout;
    // a client that sends part of a body and stalls would hold the buffer and the connection
    // for ever: the whole body has this long, then the connection is answered and closed
    let mut held = Held { budget, bytes: 0 };
    actix_web::rt::time::timeout(timeout, collect(payload, limit, &mut held))
        .await
        .map_err(|_| {
            ApiError::new(
                ApiCode::BodyTimeout,
                format!(
                    "the request body did not arrive within {} s",
                    timeout.as_secs_f64()
                ),
            )
        })?
}

/// The body, up to `limit` bytes (no capacity taken from what the client declares), each chunk
/// taken from the budget before it is kept. Chunks are kept as received and joined once at the
/// end: a buffer grown by doubling while a body trickles in would hold up to twice the body, plus
/// the smaller buffers it left behind.
async fn collect(
    mut payload: web::Payload,
    limit: usize,
    held: &mut Held<'_>,
) -> Result<web::BytesMut, ApiError> {
    let mut chunks = Vec::new();
    let mut len = 0usize;
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|e| {
            ApiError::new(
                ApiCode::BadBody,
                format!("cannot read the request body: {e}"),
            )
        })?;
        if len + chunk.len() > limit {
            return Err(too_large(limit));
        }
        if !held.take(chunk.len()) {
            return Err(ApiError::new(
                ApiCode::ServerBusy,
                "the server is receiving too many request bodies at once; retry shortly",
            ));
        }
        len += chunk.len();
        chunks.push(chunk);
    }
    let mut body = web::BytesMut::with_capacity(len);
    for c in chunks {
        body.extend_from_slice(&c);
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
pub struct ScoreRequest<'a> {
    /// The customers to score, in order.
    pub customers: Vec<Customer<'a>>,
}

/// Parses `{"customers": [...]}` counting customers as they come: parsing stops at customer
/// `max_batch + 1`, so a body of a million empty objects costs no more memory than the limit
/// (it held 1.8 GB before the count moved into the parser).
struct RequestSeed<'f> {
    max_batch: usize,
    /// Set when parsing stopped at the limit (told apart from a malformed body this way, not by
    /// the error's text).
    over: &'f std::cell::Cell<bool>,
}

impl<'de> serde::de::DeserializeSeed<'de> for RequestSeed<'_> {
    type Value = ScoreRequest<'de>;
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> serde::de::Visitor<'de> for RequestSeed<'_> {
    type Value = ScoreRequest<'de>;
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("an object with a customers array")
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut a: A) -> Result<Self::Value, A::Error> {
        let mut customers = None;
        while let Some(k) = a.next_key::<BorrowedStr<'de>>()? {
            if k.0 == "customers" {
                customers = Some(a.next_value_seed(CustomersSeed {
                    max_batch: self.max_batch,
                    over: self.over,
                })?);
            } else {
                a.next_value::<serde::de::IgnoredAny>()?;
            }
        }
        match customers {
            Some(customers) => Ok(ScoreRequest { customers }),
            None => Err(serde::de::Error::missing_field("customers")),
        }
    }
}

/// The `customers` array, refused past `max_batch` entries.
struct CustomersSeed<'f> {
    max_batch: usize,
    over: &'f std::cell::Cell<bool>,
}

impl<'de> serde::de::DeserializeSeed<'de> for CustomersSeed<'_> {
    type Value = Vec<Customer<'de>>;
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> serde::de::Visitor<'de> for CustomersSeed<'_> {
    type Value = Vec<Customer<'de>>;
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("an array of customer objects")
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut a: A) -> Result<Self::Value, A::Error> {
        // no capacity from the input: the array's length is whatever the client claims
        let mut v = Vec::new();
        while let Some(c) = a.next_element::<Customer<'de>>()? {
            if v.len() == self.max_batch {
                self.over.set(true);
                return Err(serde::de::Error::custom("too many customers"));
            }
            v.push(c);
        }
        Ok(v)
    }
}

/// Parse a scoring request and check its batch size (1..=`max_batch`) while parsing.
pub fn parse_score_request(body: &[u8], max_batch: usize) -> Result<ScoreRequest<'_>, ApiError> {
    use serde::de::DeserializeSeed;
    let over = std::cell::Cell::new(false);
    let mut de = serde_json::Deserializer::from_slice(body);
    let parsed = RequestSeed {
        max_batch,
        over: &over,
    }
    .deserialize(&mut de)
    .and_then(|r| de.end().map(|()| r));
    let parsed = parsed.map_err(|e| {
        use serde_json::error::Category;
        if over.get() {
            return ApiError::new(
                ApiCode::BatchTooLarge,
                format!("more than {max_batch} customers in one request (the limit)"),
            )
            .field("customers");
        }
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
    if parsed.customers.is_empty() {
        return Err(ApiError::new(
            ApiCode::EmptyBatch,
            "customers must hold at least one customer",
        )
        .field("customers"));
    }
    Ok(parsed)
}

/// Refuse a customer whose keys or text values exceed `max_bytes` (ids included): such text
/// would otherwise be echoed into responses, records and logs. The error names the field, never
/// the text.
pub fn check_field_lengths(
    cust: &Customer<'_>,
    ci: usize,
    max_bytes: usize,
) -> Result<(), ApiError> {
    for (k, v) in &cust.0 {
        let long = |what: &str, n: usize| {
            let name: String = k.chars().take(64).collect();
            ApiError::new(
                ApiCode::InvalidValue,
                format!("{what} of {n} bytes exceeds the limit of {max_bytes} bytes per field"),
            )
            .field(format!("customers[{ci}].{name}"))
        };
        if k.len() > max_bytes {
            return Err(long("a field name", k.len()));
        }
        if let Cell::Str(t) = v {
            if t.len() > max_bytes {
                return Err(long("a text value", t.len()));
            }
        }
    }
    Ok(())
}

/// One customer of a request: its fields in body order, text borrowed from the body where it
/// has no escapes (no allocation per field).
pub struct Customer<'a>(pub Vec<(Cow<'a, str>, Cell<'a>)>);

/// One JSON field value of a customer.
#[derive(Debug)]
pub enum Cell<'a> {
    /// `null`.
    Null,
    /// `true` / `false`.
    Bool(bool),
    /// A number that fits an f64.
    Num(serde_json::Number),
    /// A number JSON can carry but f64 cannot (overflow).
    NonFinite,
    /// Text, borrowed from the body when it has no escapes.
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

impl Serialize for Customer<'_> {
    /// The customer's fields as received (an object; a repeated key keeps its last value).
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut m = s.serialize_map(None)?;
        for (i, (k, v)) in self.0.iter().enumerate() {
            if !self.0[i + 1..].iter().any(|(k2, _)| k2 == k) {
                m.serialize_entry(k, v)?;
            }
        }
        m.end()
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
