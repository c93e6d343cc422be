//! A small typed SQL expression tree with one printer per dialect. Queries are built as values
//! and printed at the end, so quoting, literals, types and operator precedence are decided in one
//! place per dialect instead of by string pasting.
//!
//! Portability rules (each one keeps results bit-identical across engines):
//! - float literals are printed as `CAST('<shortest round-trip text>' AS DOUBLE)`: text-to-double
//!   casts are correctly rounded everywhere, while a bare `0.1` is a DECIMAL in DuckDB and
//!   PostgreSQL, whose conversion is not;
//! - every binary operation is parenthesised, so no engine's precedence rules matter;
//! - no raw control character: names are refused, literals and comment text escaped
//!   ([`super::quote`]);
//! - only `+ - * /`, comparisons, `LN`, `GREATEST`, `LEAST`, `FLOOR`, `POWER` (of 2, to an
//!   integer: exact), `TRIM`, `LOWER`, `CASE` and `CAST` are used; boosted models' σ is spelled
//!   out in these (`crate::model::boost::link`), as Spark's `EXP` is not glibc's.

use super::quote::{comment_text, IdentError};

/// An SQL dialect the exporter prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// PostgreSQL 12 or later.
    Postgres,
    /// DuckDB 0.10 or later.
    DuckDb,
    /// Spark SQL 3 (Databricks).
    Spark,
}

impl Dialect {
    /// Every dialect.
    pub const ALL: [Dialect; 3] = [Dialect::Postgres, Dialect::DuckDb, Dialect::Spark];

    /// The dialect's command-line name.
    pub fn name(self) -> &'static str {
        match self {
            Dialect::Postgres => "postgres",
            Dialect::DuckDb => "duckdb",
            Dialect::Spark => "spark",
        }
    }

    /// Parse a command-line name (`postgres`/`postgresql`, `duckdb`, `spark`/`databricks`).
    pub fn parse(s: &str) -> Option<Dialect> {
        match s.to_ascii_lowercase().as_str() {
            "postgres" | "postgresql" | "pg" => Some(Dialect::Postgres),
            "duckdb" => Some(Dialect::DuckDb),
            "spark" | "sparksql" | "databricks" => Some(Dialect::Spark),
            _ => None,
        }
    }

    fn type_name(self, t: SqlType) -> &'static str {
        match (self, t) {
            (Dialect::Postgres, SqlType::Double) => "DOUBLE PRECISION",
            (_, SqlType::Double) => "DOUBLE",
            (Dialect::Postgres, SqlType::Text) => "TEXT",
            (Dialect::DuckDb, SqlType::Text) => "VARCHAR",
            (Dialect::Spark, SqlType::Text) => "STRING",
            (Dialect::Spark, SqlType::Date) | (_, SqlType::Date) => "DATE",
            (_, SqlType::Timestamp) => "TIMESTAMP",
            (_, SqlType::BigInt) => "BIGINT",
        }
    }
}

/// A column type used in casts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SqlType {
    /// 64-bit IEEE float.
    Double,
    /// Text.
    Text,
    /// Calendar date.
    Date,
    /// Timestamp without time zone.
    Timestamp,
    /// 64-bit integer.
    BigInt,
}

/// A binary operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// `+`
    Add,
    /// `-`
    Sub,
    /// `*`
    Mul,
    /// `/`
    Div,
    /// `<=`
    Le,
    /// `<`
    Lt,
    /// `>`
    Gt,
    /// `>=`
    Ge,
    /// `=`
    Eq,
    /// `AND`
    And,
    /// `OR`
    Or,
}

impl Op {
    fn text(self) -> &'static str {
        match self {
            Op::Add => "+",
            Op::Sub => "-",
            Op::Mul => "*",
            Op::Div => "/",
            Op::Le => "<=",
            Op::Lt => "<",
            Op::Gt => ">",
            Op::Ge => ">=",
            Op::Eq => "=",
            Op::And => "AND",
            Op::Or => "OR",
        }
    }
}

/// An SQL expression.
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    /// A column of the current row (quoted on printing).
    Col(String),
    /// A float constant, printed exactly.
    Num(f64),
    /// An integer constant.
    Int(i64),
    /// A string constant.
    Str(String),
    /// `TRUE` / `FALSE`.
    Bool(bool),
    /// `NULL`.
    Null,
    /// `CAST(e AS t)`.
    Cast(Box<Expr>, SqlType),
    /// A function of the portable set: `TRIM`, `LOWER`, `LN`, `GREATEST`, `LEAST`, `COALESCE`,
    /// `COUNT`, `SUM`, `MIN`, `MAX`, `AVG`, `FLOOR`, `ABS`, `POWER`.
    Func(&'static str, Vec<Expr>),
    /// `a op b`, always parenthesised.
    Bin(Box<Expr>, Op, Box<Expr>),
    /// `(a op b op c …)`: one parenthesis for a left-associated chain of one operator, so long
    /// AND-chains and sums do not nest (parsers limit nesting).
    Chain(Op, Vec<Expr>),
    /// The sum of the terms added left to right, `((a + b) + c) + …`, however many there are:
    /// `(a + b + c …)` where engines evaluate the chain as one flat list, and on Spark
    /// `aggregate(array(b, c, …), a, (acc, v) -> (acc + v))`. Spark's optimizer merges the
    /// steps of a query into one expression and its code generator nests the code of each `+`
    /// in its parent's, so 300 trees' chain ran the driver out of memory; the array's elements
    /// are siblings, and `aggregate` folds them in order.
    OrderedSum(Vec<Expr>),
    /// `NOT e`.
    Not(Box<Expr>),
    /// `e IS NULL`.
    IsNull(Box<Expr>),
    /// `e IN (list)`.
    In(Box<Expr>, Vec<Expr>),
    /// `CASE WHEN c THEN v … ELSE e END` (`ELSE NULL` when absent).
    Case(Vec<(Expr, Expr)>, Option<Box<Expr>>),
    /// `*` (in `COUNT(*)`).
    Star,
    /// `DISTINCT e` (in `COUNT(DISTINCT e)`).
    Distinct(Box<Expr>),
    /// Whole Unix seconds of a timestamp (UTC; Spark: in the session time zone).
    Epoch(Box<Expr>),
    /// `EXTRACT(field FROM e)` (`YEAR`, `MONTH`).
    Extract(&'static str, Box<Expr>),
}

/// Shorthand constructors.
impl Expr {
    /// A column.
    pub fn col(name: impl Into<String>) -> Expr {
        Expr::Col(name.into())
    }
    /// A string constant.
    pub fn str(s: impl Into<String>) -> Expr {
        Expr::Str(s.into())
    }
    /// `self op other`.
    pub fn bin(self, op: Op, other: Expr) -> Expr {
        Expr::Bin(Box::new(self), op, Box::new(other))
    }
    /// `self <= other`.
    pub fn le(self, other: Expr) -> Expr {
        self.bin(Op::Le, other)
    }
    /// `self AND other`.
    pub fn and(self, other: Expr) -> Expr {
        self.bin(Op::And, other)
    }
    /// `CAST(self AS t)`.
    pub fn cast(self, t: SqlType) -> Expr {
        Expr::Cast(Box::new(self), t)
    }
    /// `self IS NULL`.
    pub fn is_null(self) -> Expr {
        Expr::IsNull(Box::new(self))
    }
    /// `self IN (list)`.
    pub fn in_list(self, list: Vec<Expr>) -> Expr {
        Expr::In(Box::new(self), list)
    }
    /// `CASE WHEN cond THEN a ELSE b END`.
    pub fn when(cond: Expr, a: Expr, b: Expr) -> Expr {
        Expr::Case(vec![(cond, a)], Some(Box::new(b)))
    }
    /// AND of all `terms` (`TRUE` when empty).
    pub fn all(terms: Vec<Expr>) -> Expr {
        match terms.len() {
            0 => Expr::Bool(true),
            1 => terms.into_iter().next().expect("one term"),
            _ => Expr::Chain(Op::And, terms),
        }
    }
    /// Left-associated `+` of all `terms` (`0` when empty): `((a + b) + c)`, the order a Rust
    /// `iter().sum()` adds in.
    pub fn sum(terms: Vec<Expr>) -> Expr {
        match terms.len() {
            0 => Expr::Num(0.0),
            1 => terms.into_iter().next().expect("one term"),
            _ => Expr::Chain(Op::Add, terms),
        }
    }

    /// Deepest nesting of `CASE` expressions in this expression.
    pub fn case_depth(&self) -> usize {
        match self {
            Expr::Case(whens, other) => {
                1 + whens
                    .iter()
                    .flat_map(|(c, v)| [c.case_depth(), v.case_depth()])
                    .chain(other.iter().map(|e| e.case_depth()))
                    .max()
                    .unwrap_or(0)
            }
            Expr::Cast(e, _)
            | Expr::Not(e)
            | Expr::IsNull(e)
            | Expr::Epoch(e)
            | Expr::Distinct(e)
            | Expr::Extract(_, e) => e.case_depth(),
            Expr::Bin(a, _, b) => a.case_depth().max(b.case_depth()),
            Expr::Func(_, args) | Expr::Chain(_, args) | Expr::OrderedSum(args) => {
                args.iter().map(Expr::case_depth).max().unwrap_or(0)
            }
            Expr::In(e, list) => list
                .iter()
                .map(Expr::case_depth)
                .max()
                .unwrap_or(0)
                .max(e.case_depth()),
            _ => 0,
        }
    }

    /// Print for dialect `d`; an error when a column name cannot be an identifier
    /// ([`check_ident`](super::quote::check_ident)).
    pub fn to_sql(&self, d: Dialect) -> Result<String, IdentError> {
        let mut out = String::new();
        self.write(d, &mut out)?;
        Ok(out)
    }

    // one arm per expression kind, each printing its dialect's form: clearer as one match
    #[allow(clippy::too_many_lines)]
    fn write(&self, d: Dialect, out: &mut String) -> Result<(), IdentError> {
        use std::fmt::Write;
        match self {
            Expr::Col(c) => out.push_str(&d.ident(c)?),
            Expr::Num(x) => {
                // `{:?}` is Rust's shortest text that parses back to the same bits
                let _ = write!(out, "CAST('{:?}' AS {})", x, d.type_name(SqlType::Double));
            }
            Expr::Int(i) => {
                let _ = write!(out, "{i}");
            }
            Expr::Str(s) => out.push_str(&d.string(s)),
            Expr::Bool(b) => out.push_str(if *b { "TRUE" } else { "FALSE" }),
            Expr::Null => out.push_str("NULL"),
            Expr::Cast(e, t) => {
                out.push_str("CAST(");
                e.write(d, out)?;
                let _ = write!(out, " AS {})", d.type_name(*t));
            }
            Expr::Func(name, args) => {
                out.push_str(name);
                out.push('(');
                for (i, a) in args.iter().enumerate() {
                    if i > 0 {
                        out.push_str(", ");
                    }
                    a.write(d, out)?;
                }
                out.push(')');
            }
            Expr::Bin(a, op, b) => {
                out.push('(');
                a.write(d, out)?;
                out.push(' ');
                out.push_str(op.text());
                out.push(' ');
                b.write(d, out)?;
                out.push(')');
            }
            Expr::Chain(op, terms) => {
                out.push('(');
                for (i, t) in terms.iter().enumerate() {
                    if i > 0 {
                        out.push(' ');
                        out.push_str(op.text());
                        out.push(' ');
                    }
                    t.write(d, out)?;
                }
                out.push(')');
            }
            Expr::OrderedSum(terms) => match (d, terms.split_first()) {
                (_, None) => Expr::Num(0.0).write(d, out)?,
                (_, Some((first, []))) => first.write(d, out)?,
                (Dialect::Spark, Some((first, rest))) => {
                    out.push_str("aggregate(array(");
                    for (i, t) in rest.iter().enumerate() {
                        if i > 0 {
                            out.push_str(", ");
                        }
                        t.write(d, out)?;
                    }
                    out.push_str("), ");
                    first.write(d, out)?;
                    out.push_str(", (acc, v) -> (acc + v))");
                }
                _ => Expr::Chain(Op::Add, terms.clone()).write(d, out)?,
            },
            Expr::Not(e) => {
                out.push_str("(NOT ");
                e.write(d, out)?;
                out.push(')');
            }
            Expr::IsNull(e) => {
                out.push('(');
                e.write(d, out)?;
                out.push_str(" IS NULL)");
            }
            Expr::In(e, list) => {
                out.push('(');
                e.write(d, out)?;
                out.push_str(" IN (");
                for (i, a) in list.iter().enumerate() {
                    if i > 0 {
                        out.push_str(", ");
                    }
                    a.write(d, out)?;
                }
                out.push_str("))");
            }
            // no WHEN: `CASE ELSE e END` is not SQL; the value is `e` (a one-leaf tree, a
            // boosted model with one calibration bin)
            Expr::Case(whens, other) if whens.is_empty() => match other {
                Some(e) => e.write(d, out)?,
                None => out.push_str("NULL"),
            },
            Expr::Case(whens, other) => {
                out.push_str("CASE");
                for (c, v) in whens {
                    out.push_str(" WHEN ");
                    c.write(d, out)?;
                    out.push_str(" THEN ");
                    v.write(d, out)?;
                }
                if let Some(e) = other {
                    out.push_str(" ELSE ");
                    e.write(d, out)?;
                }
                out.push_str(" END");
            }
            Expr::Star => out.push('*'),
            Expr::Distinct(e) => {
                out.push_str("DISTINCT ");
                e.write(d, out)?;
            }
            Expr::Epoch(e) => match d {
                Dialect::Postgres => {
                    out.push_str("CAST(FLOOR(EXTRACT(EPOCH FROM ");
                    e.write(d, out)?;
                    out.push_str(")) AS BIGINT)");
                }
                Dialect::DuckDb => {
                    out.push_str("CAST(FLOOR(epoch(");
                    e.write(d, out)?;
                    out.push_str(")) AS BIGINT)");
                }
                Dialect::Spark => {
                    out.push_str("unix_timestamp(");
                    e.write(d, out)?;
                    out.push(')');
                }
            },
            Expr::Extract(field, e) => {
                let _ = write!(out, "EXTRACT({field} FROM ");
                e.write(d, out)?;
                out.push(')');
            }
        }
        Ok(())
    }
}

/// One `SELECT … FROM … [GROUP BY …]` of a query.
#[derive(Debug, Clone, PartialEq)]
pub struct Select {
    /// Output expressions and their names.
    pub items: Vec<(Expr, String)>,
    /// Source: a table or an earlier step's name (printed quoted).
    pub from: String,
    /// `WHERE` condition.
    pub filter: Option<Expr>,
    /// `GROUP BY` expressions.
    pub group_by: Vec<Expr>,
    /// Joined steps: `(left join?, step, USING column)`.
    pub joins: Vec<(bool, String, String)>,
}

impl Select {
    /// `SELECT items FROM from`.
    pub fn new(from: impl Into<String>) -> Select {
        Select {
            items: Vec::new(),
            from: from.into(),
            filter: None,
            group_by: Vec::new(),
            joins: Vec::new(),
        }
    }
    /// Add an output column.
    pub fn item(&mut self, e: Expr, name: impl Into<String>) -> &mut Select {
        self.items.push((e, name.into()));
        self
    }
    /// Pass columns of the source through unchanged.
    pub fn pass(&mut self, names: &[String]) -> &mut Select {
        for n in names {
            self.items.push((Expr::col(n.clone()), n.clone()));
        }
        self
    }

    fn write(&self, d: Dialect, from_table: bool, out: &mut String) -> Result<(), IdentError> {
        out.push_str("SELECT\n");
        for (i, (e, name)) in self.items.iter().enumerate() {
            out.push_str("    ");
            e.write(d, out)?;
            out.push_str(" AS ");
            out.push_str(&d.ident(name)?);
            out.push_str(if i + 1 < self.items.len() {
                ",\n"
            } else {
                "\n"
            });
        }
        out.push_str("  FROM ");
        out.push_str(&if from_table {
            d.table(&self.from)?
        } else {
            d.ident(&self.from)?
        });
        for (left, step, using) in &self.joins {
            out.push_str(if *left { "\n  LEFT JOIN " } else { "\n  JOIN " });
            out.push_str(&d.ident(step)?);
            out.push_str(" USING (");
            out.push_str(&d.ident(using)?);
            out.push(')');
        }
        if let Some(f) = &self.filter {
            out.push_str("\n  WHERE ");
            f.write(d, out)?;
        }
        if !self.group_by.is_empty() {
            out.push_str("\n  GROUP BY ");
            for (i, g) in self.group_by.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                g.write(d, out)?;
            }
        }
        Ok(())
    }
}

/// A query: named steps (`WITH name AS (…)`) and a final select. The first step reads the input
/// table; every later step reads an earlier step by name.
#[derive(Debug, Clone, PartialEq)]
pub struct Query {
    /// The steps, in order.
    pub steps: Vec<(String, Select)>,
    /// The final select.
    pub body: Select,
    /// Steps computed once and stored (`AS MATERIALIZED` on PostgreSQL and DuckDB): both
    /// otherwise inline a step read once into the next, which copies an expensive column into
    /// every place that reads it (a leaf id read by six per-leaf constants, an encoded column
    /// read by every split on it) — PostgreSQL then spent minutes planning a depth-30 tree.
    /// Spark has no such keyword; its optimizer does not collapse projections that would
    /// duplicate non-trivial expressions.
    pub materialized: Vec<String>,
}

impl Query {
    /// Print for dialect `d`, with a leading comment: one `-- ` line per `\n`-separated line of
    /// `comment`, any other control character in it written as a visible escape
    /// ([`comment_text`]), so no text can end the comment early. An error when a name cannot be
    /// an identifier ([`check_ident`](super::quote::check_ident)).
    pub fn to_sql(&self, d: Dialect, comment: &str) -> Result<String, IdentError> {
        let mut out = String::new();
        for line in comment.split('\n') {
            out.push_str("-- ");
            out.push_str(&comment_text(line));
            out.push('\n');
        }
        let table = |name: &str| !self.steps.iter().any(|(n, _)| n == name);
        for (i, (name, s)) in self.steps.iter().enumerate() {
            out.push_str(if i == 0 { "WITH " } else { ",\n" });
            out.push_str(&d.ident(name)?);
            if d != Dialect::Spark && self.materialized.contains(name) {
                out.push_str(" AS MATERIALIZED (\n");
            } else {
                out.push_str(" AS (\n");
            }
            s.write(d, table(&s.from), &mut out)?;
            out.push_str("\n)");
        }
        if !self.steps.is_empty() {
            out.push('\n');
        }
        self.body.write(d, table(&self.body.from), &mut out)?;
        out.push('\n');
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literals_and_quoting_per_dialect() {
        let e = Expr::when(
            Expr::col("it\"s `x`").le(Expr::Num(0.1 + 0.2)),
            Expr::str("a'b\\c"),
            Expr::Null,
        );
        assert_eq!(
            e.to_sql(Dialect::Postgres).unwrap(),
            "CASE WHEN (\"it\"\"s `x`\" <= CAST('0.30000000000000004' AS DOUBLE PRECISION)) THEN 'a''b\\c' ELSE NULL END"
        );
        assert_eq!(
            e.to_sql(Dialect::Spark).unwrap(),
            "CASE WHEN (`it\"s ``x``` <= CAST('0.30000000000000004' AS DOUBLE)) THEN 'a\\'b\\\\c' ELSE NULL END"
        );
        assert_eq!(
            Expr::Num(1e-7).to_sql(Dialect::DuckDb).unwrap(),
            "CAST('1e-7' AS DOUBLE)"
        );
        assert_eq!(Dialect::DuckDb.table("s.t").unwrap(), "\"s\".\"t\"");
        // every literal reads back as the same bits
        for x in [0.1, 1.0 / 3.0, 5e-324, 1e15, -0.0, 123456.789e-3] {
            let t = Expr::Num(x).to_sql(Dialect::Postgres).unwrap();
            let inner = t.split('\'').nth(1).unwrap();
            assert_eq!(inner.parse::<f64>().unwrap().to_bits(), x.to_bits());
        }
    }

    #[test]
    fn a_case_without_when_is_its_else() {
        let e = Expr::Case(vec![], Some(Box::new(Expr::Int(7))));
        for d in Dialect::ALL {
            assert_eq!(e.to_sql(d).unwrap(), "7");
        }
        assert_eq!(
            Expr::Case(vec![], None).to_sql(Dialect::Spark).unwrap(),
            "NULL"
        );
    }

    #[test]
    fn case_depth_counts_nesting() {
        let inner = Expr::when(Expr::Bool(true), Expr::Int(1), Expr::Int(2));
        let outer = Expr::when(Expr::Bool(false), inner.clone(), Expr::Int(3));
        assert_eq!(inner.case_depth(), 1);
        assert_eq!(outer.case_depth(), 2);
        assert_eq!(Expr::sum(vec![Expr::Int(1), outer]).case_depth(), 2);
    }
}
