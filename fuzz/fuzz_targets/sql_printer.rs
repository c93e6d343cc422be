//! The SQL text printer of `churn-train export-sql` / `features --engine sql`: identifiers,
//! string literals and comment text for every dialect. Properties: nothing printed holds a
//! character that ends a `--` comment or a line (any control character, U+2028, U+2029); a
//! printed identifier or literal is balanced-quoted and reads back (by the small reverse parsers
//! below, which follow each engine's lexer) to exactly the input; an identifier is refused only
//! when the name is empty or holds such a character; a comment stays one `--` line per line.
#![no_main]
use churn::export::{comment_text, is_line_unsafe, Dialect, Expr, IdentError, Query, Select};
use libfuzzer_sys::fuzz_target;

/// A quoted identifier back to its text: `"a""b"` (or `` `a``b` `` on Spark) → `a"b`.
fn unquote_ident(d: Dialect, s: &str) -> String {
    let q = if d == Dialect::Spark { '`' } else { '"' };
    let inner = s
        .strip_prefix(q)
        .and_then(|s| s.strip_suffix(q))
        .unwrap_or_else(|| panic!("{d:?}: {s:?} is not quoted"));
    let mut out = String::new();
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        if c == q {
            assert_eq!(chars.next(), Some(q), "{d:?}: lone quote inside {s:?}");
        }
        out.push(c);
    }
    out
}

/// A standard SQL literal `'…'` (quotes doubled) at the start of `s`: (text, rest).
fn quoted(s: &str) -> (String, &str) {
    let mut chars = s.char_indices();
    assert_eq!(chars.next().map(|(_, c)| c), Some('\''), "{s:?}");
    let mut out = String::new();
    while let Some((i, c)) = chars.next() {
        if c == '\'' {
            if s[i + 1..].starts_with('\'') {
                chars.next();
                out.push('\'');
            } else {
                return (out, &s[i + 1..]);
            }
        } else {
            out.push(c);
        }
    }
    panic!("unterminated literal {s:?}");
}

/// A PostgreSQL / DuckDB literal back to its text: `'a'`, `chr(13)`, or
/// `('a' || chr(13) || …)`.
fn read_standard(s: &str) -> String {
    let body = match s.strip_prefix('(') {
        Some(b) => b
            .strip_suffix(')')
            .unwrap_or_else(|| panic!("unbalanced {s:?}")),
        None => s,
    };
    let mut out = String::new();
    let mut rest = body;
    loop {
        if let Some(r) = rest.strip_prefix("chr(") {
            let end = r
                .find(')')
                .unwrap_or_else(|| panic!("unclosed chr in {s:?}"));
            let n: u32 = r[..end].parse().unwrap_or_else(|_| panic!("{s:?}"));
            out.push(char::from_u32(n).expect("a char"));
            rest = &r[end + 1..];
        } else {
            let (text, r) = quoted(rest);
            out.push_str(&text);
            rest = r;
        }
        if rest.is_empty() {
            break;
        }
        rest = rest
            .strip_prefix(" || ")
            .unwrap_or_else(|| panic!("expected || in {s:?} at {rest:?}"));
    }
    if s.starts_with('(') {
        assert!(body.contains(" || "), "needless parentheses {s:?}");
    }
    out
}

/// A Spark literal back to its text: `'…'` with backslash escapes, as Spark's lexer reads it.
fn read_spark(s: &str) -> String {
    let inner = s
        .strip_prefix('\'')
        .and_then(|s| s.strip_suffix('\''))
        .unwrap_or_else(|| panic!("{s:?} is not quoted"));
    let mut out = String::new();
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        match c {
            '\'' => panic!("unescaped quote in {s:?}"),
            '\\' => match chars.next() {
                Some('r') => out.push('\r'),
                Some('n') => out.push('\n'),
                Some('t') => out.push('\t'),
                Some('u') => {
                    let hex: String = chars.by_ref().take(4).collect();
                    let n = u32::from_str_radix(&hex, 16).unwrap_or_else(|_| panic!("{s:?}"));
                    out.push(char::from_u32(n).expect("a char"));
                }
                Some(e @ ('\\' | '\'')) => out.push(e),
                other => panic!("unexpected escape {other:?} in {s:?}"),
            },
            c => out.push(c),
        }
    }
    out
}

fn assert_clean(what: &str, printed: &str) {
    assert!(
        !printed.chars().any(is_line_unsafe),
        "{what}: raw control character in {printed:?}"
    );
}

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let text = text.as_ref();
    let unsafe_or_empty = text.is_empty() || text.chars().any(is_line_unsafe);
    for d in Dialect::ALL {
        match d.ident(text) {
            Ok(id) => {
                assert!(!unsafe_or_empty, "{d:?}: accepted {text:?}");
                assert_clean("identifier", &id);
                assert_eq!(unquote_ident(d, &id), text, "{d:?}: identifier {id:?}");
            }
            Err(IdentError::Empty) => assert!(text.is_empty()),
            Err(IdentError::Control { name, found }) => {
                assert_eq!(name, text);
                assert!(is_line_unsafe(found) && text.contains(found));
            }
        }
        if let Ok(t) = d.table(text) {
            assert_clean("table", &t);
        }
        let lit = d.string(text);
        assert_clean("literal", &lit);
        let back = match d {
            Dialect::Spark => read_spark(&lit),
            _ => read_standard(&lit),
        };
        assert_eq!(back, text, "{d:?}: literal {lit:?}");
        assert_eq!(Expr::str(text).to_sql(d).expect("no identifier"), lit);

        // the whole query: the comment stays one `--` line per input line, nothing raw anywhere
        let mut body = Select::new("customers");
        body.item(Expr::str(text), "v");
        let q = Query {
            steps: Vec::new(),
            body,
            materialized: Vec::new(),
        };
        let sql = q.to_sql(d, text).expect("fixed names");
        assert!(!sql.chars().any(|c| c != '\n' && is_line_unsafe(c)));
        let comment_lines = text.split('\n').count();
        let lines: Vec<&str> = sql.split('\n').collect();
        assert!(lines[..comment_lines].iter().all(|l| l.starts_with("-- ")));
        assert_eq!(lines[comment_lines], "SELECT");
    }
    let c = comment_text(text);
    assert_clean("comment", &c);
    assert_eq!(comment_text(&c), c, "comment_text is not idempotent");
});
