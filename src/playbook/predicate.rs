//! Rule predicates (`Contract == "Month-to-month"`, `tenure < 6`) compiled to a test on one
//! encoded column, so rules see exactly what the model saw.

use crate::features::{Encoder, InputEncoding};
use crate::ingest::FeatureKind;
use serde::{Deserialize, Serialize};

/// Comparison operator of a predicate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Op {
    /// `==`
    Eq,
    /// `!=`
    Ne,
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `>`
    Gt,
    /// `>=`
    Ge,
}

impl Op {
    /// Whether `a OP b` holds.
    #[inline]
    pub(super) fn holds(self, a: f64, b: f64) -> bool {
        match self {
            Op::Eq => a == b,
            Op::Ne => a != b,
            Op::Lt => a < b,
            Op::Le => a <= b,
            Op::Gt => a > b,
            Op::Ge => a >= b,
        }
    }
}

/// A predicate compiled to a test on one encoded column.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Predicate {
    /// Source text.
    pub text: String,
    /// Encoded column.
    pub column: usize,
    /// Operator.
    pub op: Op,
    /// Right-hand side on the encoded scale.
    pub value: f64,
}

impl Predicate {
    /// Whether the predicate holds on an encoded row.
    #[inline]
    pub fn holds(&self, row: &[f64]) -> bool {
        self.op.holds(row[self.column], self.value)
    }
}

/// Operators by symbol; two-character ones first so `<=` is not read as `<`.
const OPERATORS: [(&str, Op); 6] = [
    ("==", Op::Eq),
    ("!=", Op::Ne),
    ("<=", Op::Le),
    (">=", Op::Ge),
    ("<", Op::Lt),
    (">", Op::Gt),
];

/// A predicate's text split into `FIELD OP VALUE`, before it is bound to an encoded column.
struct PredicateParts<'t> {
    /// The whole predicate, for messages.
    text: &'t str,
    field: &'t str,
    op: Op,
    /// Right-hand side as written (quotes included).
    rhs: &'t str,
    /// Right-hand side without surrounding quotes.
    value: &'t str,
    /// Whether the right-hand side was quoted (then it is never a number).
    quoted: bool,
}

impl<'t> PredicateParts<'t> {
    /// Split at the leftmost operator (the longest one at that position).
    /// A field written in backquotes (`` `Monthly Charges` > 70 ``) may hold spaces and
    /// operator characters; the operator is looked for after the closing backquote.
    fn split(text: &'t str) -> Result<Self, String> {
        let lead = text.len() - text.trim_start().len();
        let after_field = match text.trim_start().strip_prefix('`') {
            Some(rest) => {
                let close = rest.find('`').ok_or_else(|| {
                    format!("predicate '{text}': a field opened with ` must be closed with `")
                })?;
                lead + 1 + close + 1
            }
            None => 0,
        };
        let (pos, sym, op) = OPERATORS
            .iter()
            .filter_map(|(s, o)| {
                text[after_field..]
                    .find(s)
                    .map(|p| (after_field + p, *s, *o))
            })
            .min_by_key(|(p, s, _)| (*p, std::cmp::Reverse(s.len())))
            .ok_or_else(|| format!("predicate '{text}' has no operator (==, !=, <, <=, >, >=)"))?;
        let field = text[..pos].trim();
        let field = match field.strip_prefix('`').and_then(|f| f.strip_suffix('`')) {
            Some(inner) if after_field > 0 => inner,
            _ if after_field > 0 => {
                return Err(format!(
                    "predicate '{text}': only the operator may follow the backquoted field"
                ))
            }
            _ => field,
        };
        let rhs = text[pos + sym.len()..].trim();
        if field.is_empty() || rhs.is_empty() {
            return Err(format!("predicate '{text}' must read FIELD OP VALUE"));
        }
        let quoted = rhs.len() >= 2
            && (rhs.starts_with('"') && rhs.ends_with('"')
                || rhs.starts_with('\'') && rhs.ends_with('\''));
        let value = if quoted { &rhs[1..rhs.len() - 1] } else { rhs };
        Ok(PredicateParts {
            text,
            field,
            op,
            rhs,
            value,
            quoted,
        })
    }

    /// The compiled predicate testing `column` against `value`.
    fn compiled(&self, column: usize, value: f64) -> Predicate {
        Predicate {
            text: self.text.to_string(),
            column,
            op: self.op,
            value,
        }
    }

    /// Categorical and boolean inputs only compare for (in)equality.
    fn equality_only(&self, kind: &str) -> Result<(), String> {
        if matches!(self.op, Op::Eq | Op::Ne) {
            Ok(())
        } else {
            Err(format!(
                "predicate '{}': '{}' is {kind}; use == or !=",
                self.text, self.field
            ))
        }
    }

    /// `FIELD == level`: a test of that level's one-hot column against 1.
    fn categorical(&self, levels: &[String], first_column: usize) -> Result<Predicate, String> {
        self.equality_only("categorical")?;
        let li = levels.iter().position(|l| l == self.value).ok_or_else(|| {
            format!(
                "predicate '{}': '{}' is not a level of '{}'; levels: {}",
                self.text,
                self.value,
                self.field,
                levels.join(", ")
            )
        })?;
        Ok(self.compiled(first_column + li, 1.0))
    }

    /// `FIELD == token`: a test of the 0/1 column.
    fn boolean(
        &self,
        column: usize,
        true_token: &str,
        false_token: &str,
    ) -> Result<Predicate, String> {
        self.equality_only("boolean")?;
        let v = crate::ingest::value::parse_bool(self.value, true_token, false_token).ok_or_else(
            || {
                format!(
                    "predicate '{}': expected '{true_token}' or '{false_token}'",
                    self.text
                )
            },
        )?;
        Ok(self.compiled(column, v as u8 as f64))
    }

    /// `FIELD OP number` on the value column.
    fn numeric(&self, column: usize) -> Result<Predicate, String> {
        let v = crate::ingest::value::parse_number(self.value)
            .filter(|_| !self.quoted)
            .ok_or_else(|| {
                format!(
                    "predicate '{}': '{}' is numeric; expected a number, found {}",
                    self.text, self.field, self.rhs
                )
            })?;
        Ok(self.compiled(column, v))
    }
}

/// Compile predicate `text` against the model's encoder; the error is the problem alone.
pub fn parse_predicate(text: &str, enc: &Encoder) -> Result<Predicate, String> {
    let parts = PredicateParts::split(text)?;
    let field = parts.field;
    let input = enc.inputs.iter().find(|i| i.name == field).ok_or_else(|| {
        format!(
            "predicate '{text}': unknown feature '{field}'; features: {}",
            enc.inputs
                .iter()
                .map(|i| i.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        )
    })?;
    match (&input.kind, &input.encoding) {
        (
            FeatureKind::Categorical,
            InputEncoding::OneHot {
                levels,
                first_column,
                ..
            },
        ) => parts.categorical(levels, *first_column),
        (
            FeatureKind::Boolean {
                true_token,
                false_token,
            },
            InputEncoding::Numeric { column, .. },
        ) => parts.boolean(*column, true_token, false_token),
        (_, InputEncoding::Numeric { column, .. }) => parts.numeric(*column),
        _ => Err(format!("predicate '{text}': '{field}' cannot be compared")),
    }
}
