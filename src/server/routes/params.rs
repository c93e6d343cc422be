//! Query strings into typed structs: each route declares a `serde::Deserialize` struct of
//! `Option` fields and reads it with [`query`]. A value that does not parse is a 422
//! `invalid_value` naming its parameter; a repeated parameter keeps its last value and parameters
//! the struct does not name are ignored.
//!
//! Messages by kind of failure (`KEY` is the parameter):
//! - a value outside a set (enums): `KEY 'VALUE' is not one of: A, B`;
//! - a value of the wrong form ([`Whole`], [`Instant`], numbers): `KEY must be WHAT, got 'VALUE'`;
//! - anything else a type reports: `query parameter KEY: MESSAGE`.

use crate::server::error::{ApiCode, ApiError};
use actix_web::{web, HttpRequest};
use serde::de::{self, DeserializeOwned, Deserializer, IntoDeserializer, Unexpected, Visitor};
use serde::Deserialize;
use std::fmt;

/// The query string of `req` as `T`; a value that does not parse is a 422 naming its
/// parameter, and values are checked in the order of `T`'s fields.
pub(super) fn query<T: DeserializeOwned>(req: &HttpRequest) -> Result<T, ApiError> {
    let pairs = web::Query::<Vec<(String, String)>>::from_query(req.query_string())
        .map_err(|e| ApiError::new(ApiCode::InvalidValue, format!("bad query string: {e}")))?
        .into_inner();
    if let Some((k, _)) = pairs.iter().find(|(_, v)| v.chars().any(char::is_control)) {
        // a NUL reaches no database and a CR no log line: refused here, for every route
        let k = crate::util::excerpt(k);
        return Err(ApiError::new(
            ApiCode::InvalidValue,
            format!(
                "query parameter {k} must not contain control characters (NUL, CR, LF, tab, …)"
            ),
        )
        .field(k));
    }
    parse(pairs).map_err(ParamError::into_api)
}

/// Decoded (key, value) pairs as `T`.
fn parse<T: DeserializeOwned>(pairs: Vec<(String, String)>) -> Result<T, ParamError> {
    T::deserialize(Query(pairs))
}

/// Why a query parameter was refused.
#[derive(Debug, thiserror::Error)]
enum Problem {
    /// Not one of the accepted names.
    #[error("'{got}' is not one of: {}", .allowed.join(", "))]
    NotOneOf {
        got: String,
        allowed: &'static [&'static str],
    },
    /// Not of the expected form.
    #[error("must be {expected}, got '{got}'")]
    Invalid { got: String, expected: String },
    /// Anything else.
    #[error("{0}")]
    Other(String),
}

/// A refused query parameter: the problem and, once known, the parameter's name.
#[derive(Debug, thiserror::Error)]
#[error("{problem}")]
struct ParamError {
    field: Option<String>,
    problem: Problem,
}

impl ParamError {
    fn at(mut self, field: &str) -> ParamError {
        self.field.get_or_insert_with(|| field.to_string());
        self
    }

    /// The message of the API error, naming the parameter.
    fn message(&self) -> String {
        match (&self.field, &self.problem) {
            (None, problem) => problem.to_string(),
            (Some(field), Problem::Other(m)) => format!("query parameter {field}: {m}"),
            (Some(field), problem) => format!("{field} {problem}"),
        }
    }

    fn into_api(self) -> ApiError {
        let e = ApiError::new(ApiCode::InvalidValue, self.message());
        match self.field {
            Some(field) => e.field(field),
            None => e,
        }
    }

    fn new(problem: Problem) -> ParamError {
        ParamError {
            field: None,
            problem,
        }
    }
}

impl de::Error for ParamError {
    fn custom<T: fmt::Display>(msg: T) -> ParamError {
        ParamError::new(Problem::Other(msg.to_string()))
    }

    fn invalid_value(unexp: Unexpected<'_>, exp: &dyn de::Expected) -> ParamError {
        let got = match unexp {
            Unexpected::Str(s) => crate::util::excerpt(s),
            other => other.to_string(),
        };
        ParamError::new(Problem::Invalid {
            got,
            expected: exp.to_string(),
        })
    }

    fn unknown_variant(variant: &str, expected: &'static [&'static str]) -> ParamError {
        ParamError::new(Problem::NotOneOf {
            got: crate::util::excerpt(variant),
            allowed: expected,
        })
    }
}

/// The decoded (key, value) pairs of a query string.
struct Query(Vec<(String, String)>);

impl<'de> Deserializer<'de> for Query {
    type Error = ParamError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ParamError> {
        visitor.visit_map(Pairs::new(self.0))
    }

    /// Only the fields of the struct, each with its last value, in field order.
    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, ParamError> {
        let pairs = fields
            .iter()
            .filter_map(|f| self.0.iter().rev().find(|(k, _)| k == f).cloned())
            .collect();
        visitor.visit_map(Pairs::new(pairs))
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
        option unit unit_struct newtype_struct seq tuple tuple_struct map enum identifier
        ignored_any
    }
}

/// The pairs as a map; a value's error names its key.
struct Pairs {
    rest: std::vec::IntoIter<(String, String)>,
    current: Option<(String, String)>,
}

impl Pairs {
    fn new(pairs: Vec<(String, String)>) -> Pairs {
        Pairs {
            rest: pairs.into_iter(),
            current: None,
        }
    }
}

impl<'de> de::MapAccess<'de> for Pairs {
    type Error = ParamError;

    fn next_key_seed<K: de::DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, ParamError> {
        let Some((key, value)) = self.rest.next() else {
            return Ok(None);
        };
        let k = seed.deserialize(key.as_str().into_deserializer())?;
        self.current = Some((key, value));
        Ok(Some(k))
    }

    fn next_value_seed<V: de::DeserializeSeed<'de>>(
        &mut self,
        seed: V,
    ) -> Result<V::Value, ParamError> {
        let (key, value) = self
            .current
            .take()
            .ok_or_else(|| <ParamError as de::Error>::custom("value before key"))?;
        seed.deserialize(Text(&value)).map_err(|e| e.at(&key))
    }
}

/// One parameter's value: text, read as whatever the field's type asks for.
struct Text<'a>(&'a str);

impl<'de> Deserializer<'de> for Text<'_> {
    type Error = ParamError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ParamError> {
        visitor.visit_str(self.0)
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ParamError> {
        visitor.visit_some(self)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, ParamError> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, ParamError> {
        visitor.visit_enum(self.0.into_deserializer())
    }

    fn deserialize_f64<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ParamError> {
        match self.0.parse::<f64>() {
            Ok(x) => visitor.visit_f64(x),
            Err(_) => Err(de::Error::invalid_value(
                Unexpected::Str(self.0),
                &"a number",
            )),
        }
    }

    /// `true` / `false`; anything else is the visitor's own type error.
    fn deserialize_bool<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ParamError> {
        match self.0 {
            "true" => visitor.visit_bool(true),
            "false" => visitor.visit_bool(false),
            other => visitor.visit_str(other),
        }
    }

    serde::forward_to_deserialize_any! {
        i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 char str string bytes byte_buf
        unit unit_struct seq tuple tuple_struct map struct identifier ignored_any
    }
}

/// A whole number from `LO` to `HI` (`?limit=`, `?horizon_days=`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Whole<const LO: u32, const HI: u32>(pub u32);

impl<'de, const LO: u32, const HI: u32> Deserialize<'de> for Whole<LO, HI> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        match text.parse::<u32>() {
            Ok(n) if (LO..=HI).contains(&n) => Ok(Whole(n)),
            _ => Err(de::Error::invalid_value(
                Unexpected::Str(&text),
                &format!("a whole number from {LO} to {HI}").as_str(),
            )),
        }
    }
}

/// A date (`YYYY-MM-DD`) or an ISO-8601 instant, as Unix milliseconds (`?from=`, `?to=`,
/// `?as_of=`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Instant(pub i64);

impl<'de> Deserialize<'de> for Instant {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        crate::time::parse(&text).map(Instant).ok_or_else(|| {
            de::Error::invalid_value(
                Unexpected::Str(&text),
                &"a date (YYYY-MM-DD) or an ISO-8601 instant",
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::playbook::RiskBand;

    #[derive(Debug, Deserialize)]
    struct Probe {
        limit: Option<Whole<1, 1000>>,
        band: Option<RiskBand>,
        from: Option<Instant>,
        rate: Option<f64>,
        name: Option<String>,
        flag: Option<bool>,
    }

    fn probe(query: &[(&str, &str)]) -> Result<Probe, ParamError> {
        parse(
            query
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        )
    }

    fn refused(query: &[(&str, &str)]) -> (Option<String>, String) {
        let e = probe(query).expect_err("refused");
        (e.field.clone(), e.message())
    }

    #[test]
    fn values_parse_into_their_types_and_absent_ones_are_none() {
        let q = probe(&[
            ("limit", "5"),
            ("band", "high"),
            ("from", "2026-02-01"),
            ("rate", "0.25"),
            ("name", ""),
        ])
        .unwrap();
        assert_eq!(q.limit, Some(Whole(5)));
        assert_eq!(q.band, Some(RiskBand::High));
        assert_eq!(q.from, crate::time::parse("2026-02-01").map(Instant));
        assert_eq!(q.rate, Some(0.25));
        assert_eq!(q.name.as_deref(), Some(""));
        let none = probe(&[]).unwrap();
        assert!(none.limit.is_none() && none.band.is_none() && none.name.is_none());
        assert!(none.flag.is_none());
    }

    #[test]
    fn the_last_value_wins_and_unknown_keys_are_ignored() {
        let q = probe(&[("limit", "abc"), ("other", "x"), ("limit", "7")]).unwrap();
        assert_eq!(q.limit, Some(Whole(7)));
        assert_eq!(
            refused(&[("limit", "7"), ("limit", "0")]).1,
            "limit must be a whole number from 1 to 1000, got '0'"
        );
    }

    #[test]
    fn each_kind_of_refusal_names_the_parameter() {
        let cases = [
            (
                "limit",
                "1001",
                "limit must be a whole number from 1 to 1000, got '1001'",
            ),
            (
                "limit",
                "-1",
                "limit must be a whole number from 1 to 1000, got '-1'",
            ),
            (
                "band",
                "extreme",
                "band 'extreme' is not one of: low, medium, high",
            ),
            (
                "from",
                "yesterday",
                "from must be a date (YYYY-MM-DD) or an ISO-8601 instant, got 'yesterday'",
            ),
            ("rate", "", "rate must be a number, got ''"),
            (
                "flag",
                "maybe",
                "query parameter flag: invalid type: string \"maybe\", expected a boolean",
            ),
        ];
        for (key, value, message) in cases {
            let (field, m) = refused(&[(key, value)]);
            assert_eq!(field.as_deref(), Some(key), "{key}={value}");
            assert_eq!(m, message, "{key}={value}");
        }
    }

    #[test]
    fn values_are_checked_in_field_order_not_query_order() {
        let (field, _) = refused(&[("rate", "x"), ("band", "x"), ("limit", "0")]);
        assert_eq!(field.as_deref(), Some("limit"));
    }
}
