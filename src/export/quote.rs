//! Text into SQL: identifiers, string literals and comment text, printed so that no raw control
//! character ever reaches the query. A lone `\r` ends a `--` comment in PostgreSQL, DuckDB and
//! Spark (though not Rust's `str::lines()`), so a table name such as `"t\rDROP TABLE x;"` in the
//! leading comment would run as SQL; and a CR LF inside a literal changes when the file is copied
//! in text mode. So: names are refused ([`check_ident`]), literals spell control characters with
//! the dialect's escapes ([`Dialect::string`]), comment text shows them as visible escapes
//! ([`comment_text`]).

use super::sql::Dialect;

impl Dialect {
    /// An identifier, quoted for this dialect (`"x"`, or `` `x` `` on Spark); refused when it
    /// is empty or holds a character [`is_line_unsafe`] (no engine can spell one portably inside
    /// a quoted identifier without the raw character, which a text-mode copy would change).
    pub fn ident(self, name: &str) -> Result<String, IdentError> {
        check_ident(name)?;
        Ok(match self {
            Dialect::Spark => format!("`{}`", name.replace('`', "``")),
            _ => format!("\"{}\"", name.replace('"', "\"\"")),
        })
    }

    /// A possibly schema-qualified table name (`schema.table`), each part quoted.
    pub fn table(self, name: &str) -> Result<String, IdentError> {
        Ok(name
            .split('.')
            .map(|p| self.ident(p))
            .collect::<Result<Vec<_>, _>>()?
            .join("."))
    }

    /// A string literal holding exactly `s`, with no raw control character in the SQL text:
    /// PostgreSQL (standard_conforming_strings, the default since 9.1) and DuckDB double the
    /// quote and spell control characters as `chr(n)` joined with `||`; Spark reads backslash
    /// escapes (`\r`, `\n`, `\t`, `\uXXXX`). So a level such as `"Yes\r\n"` survives a CRLF → LF
    /// conversion of the file and cannot end a comment or a line.
    pub fn string(self, s: &str) -> String {
        match self {
            Dialect::Spark => {
                let mut out = String::with_capacity(s.len() + 2);
                out.push('\'');
                for c in s.chars() {
                    match c {
                        '\\' => out.push_str("\\\\"),
                        '\'' => out.push_str("\\'"),
                        '\r' => out.push_str("\\r"),
                        '\n' => out.push_str("\\n"),
                        '\t' => out.push_str("\\t"),
                        c if is_line_unsafe(c) => {
                            // every such character is in the Basic Multilingual Plane
                            let _ = std::fmt::Write::write_fmt(
                                &mut out,
                                format_args!("\\u{:04X}", c as u32),
                            );
                        }
                        c => out.push(c),
                    }
                }
                out.push('\'');
                out
            }
            _ => {
                if !s.chars().any(is_line_unsafe) {
                    return format!("'{}'", s.replace('\'', "''"));
                }
                // runs of safe text as quoted literals, each unsafe character as chr(n)
                let mut parts: Vec<String> = Vec::new();
                let mut run = String::new();
                for c in s.chars() {
                    if is_line_unsafe(c) {
                        if !run.is_empty() {
                            parts.push(format!("'{}'", run.replace('\'', "''")));
                            run.clear();
                        }
                        parts.push(format!("chr({})", c as u32));
                    } else {
                        run.push(c);
                    }
                }
                if !run.is_empty() {
                    parts.push(format!("'{}'", run.replace('\'', "''")));
                }
                if parts.len() == 1 {
                    parts.pop().expect("one part")
                } else {
                    format!("({})", parts.join(" || "))
                }
            }
        }
    }
}

/// Characters that must never appear raw in printed SQL: control characters (a lone `\r` ends a
/// `--` comment in PostgreSQL, DuckDB and Spark, though not in Rust's `str::lines()`; CR LF
/// pairs change under text-mode copies) and the Unicode line and paragraph separators.
pub fn is_line_unsafe(c: char) -> bool {
    c.is_control() || matches!(c, '\u{2028}' | '\u{2029}')
}

/// `s` with every [`is_line_unsafe`] character written as a visible escape (`\r`, `\n`, `\t`,
/// `\u{…}`): data-derived text (a model name, a version) that goes into a `--` comment, where it
/// must stay on its line. Idempotent: the escapes are plain text.
pub fn comment_text(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\r' => out.push_str("\\r"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            c if is_line_unsafe(c) => out.push_str(&c.escape_unicode().to_string()),
            c => out.push(c),
        }
    }
    out
}

/// Why a name cannot be printed as an SQL identifier.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdentError {
    /// An empty name (or an empty part of `schema.table`).
    #[error("an empty name cannot be an SQL identifier")]
    Empty,
    /// The name holds a control character or line separator.
    #[error("{name:?} holds the control character {found:?}; SQL identifiers are printed without control characters (CR, LF, tab, …)")]
    Control {
        /// The refused name.
        name: String,
        /// Its first unsafe character.
        found: char,
    },
}

/// Check that `name` can be printed as a quoted identifier: not empty, and no
/// [`is_line_unsafe`] character.
pub fn check_ident(name: &str) -> Result<(), IdentError> {
    if name.is_empty() {
        return Err(IdentError::Empty);
    }
    match name.chars().find(|&c| is_line_unsafe(c)) {
        Some(found) => Err(IdentError::Control {
            name: name.to_string(),
            found,
        }),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::export::sql::{Expr, Query, Select};

    #[test]
    fn control_characters_never_reach_the_sql_raw() {
        // literals: spelled with chr() / backslash escapes, the same text when read back
        assert_eq!(
            Dialect::Postgres.string("Yes\r\nit's"),
            "('Yes' || chr(13) || chr(10) || 'it''s')"
        );
        assert_eq!(Dialect::DuckDb.string("\r"), "chr(13)");
        assert_eq!(
            Dialect::Spark.string("a\r\n\t\u{1}\u{2028}'\\"),
            "'a\\r\\n\\t\\u0001\\u2028\\'\\\\'"
        );
        assert_eq!(Dialect::Postgres.string("plain"), "'plain'");
        // identifiers: refused, naming the character
        let bad = "customers\rDROP TABLE victim;";
        for d in Dialect::ALL {
            assert_eq!(
                d.table(bad),
                Err(IdentError::Control {
                    name: bad.into(),
                    found: '\r'
                })
            );
            assert_eq!(d.table("s..t"), Err(IdentError::Empty));
            assert!(Expr::col("a\nb").to_sql(d).is_err());
        }
        // comments: one `--` line per line of the comment, control characters escaped
        let q = Query {
            steps: Vec::new(),
            body: Select::new("t"),
            materialized: Vec::new(),
        };
        let sql = q
            .to_sql(
                Dialect::DuckDb,
                "model 'x\rDROP TABLE victim;'\nsecond\u{b}",
            )
            .unwrap();
        assert!(
            sql.starts_with("-- model 'x\\rDROP TABLE victim;'\n-- second\\u{b}\nSELECT"),
            "{sql}"
        );
        assert!(!sql.chars().any(|c| c != '\n' && is_line_unsafe(c)));
    }
}
