//! The point-in-time feature query of a transaction log: the table `churn-train features`
//! writes (id, [`crate::ingest::TRANSACTION_FEATURES`], and `churned` for a training cutoff), computed where
//! the log lives. The definitions are those of [`crate::ingest::build_transaction_features`]:
//! a purchase is an order (or, without an order id, a customer's rows at one timestamp) with an
//! amount ≥ 0; returns net into `monetary_total` only; rows before the cutoff make the features,
//! purchases in `[cutoff, cutoff + horizon)` the label.
//!
//! Two differences are inherent to SQL and documented in the README: a purchase whose lines have
//! different timestamps is placed in the trend windows by its earliest line (natively: by its
//! first line in file order), and sums of amounts are added in the engine's order, so
//! `monetary_total` and `monetary_mean` can differ in the last bits.
//!
//! Steps (each a `WITH` step, each built by one method of the private `Plan`, which holds the
//! spec, the options and the dates once):
//! 1. `rows`: the log's columns typed: the customer id trimmed, the amount (× quantity for unit
//!    prices) as a number, the timestamp, the order id (missing tokens → NULL);
//! 2. `events`: rows with a customer id, timestamps in seconds and months;
//! 3. `before`: the events before the cutoff;
//! 4. `spend`: every row's amount summed per customer, returns included;
//! 5. `active`: per customer, first and last purchase and the months with one;
//! 6. `purchases`: one row per order (or timestamp), placed at its earliest line;
//! 7. `counts`: purchases per customer: all, in the last trend window and in the one before;
//! 8. `after` (training cutoff only): purchases in the label horizon;
//! 9. `output`: the training layout, floats computed as natively (and `churned` for training).
//!
//! `comment` writes the query's leading comment.

use super::sql::{Dialect, Expr, Op, Query, Select, SqlType};
use super::{check_name, ExportError};
use crate::ingest::value::MISSING_TOKENS;
use crate::ingest::TransactionSpec;

/// Seconds per day.
const DAY: i64 = 86_400;

/// Options of [`features_query`].
#[derive(Debug, Clone, PartialEq)]
pub struct FeatureExport {
    /// Dialect to print.
    pub dialect: Dialect,
    /// The transaction table (optionally `schema.table`).
    pub table: String,
}

fn trimmed(col: &str) -> Expr {
    Expr::Func("TRIM", vec![Expr::col(col).cast(SqlType::Text)])
}

fn missing(e: Expr) -> Expr {
    Expr::Chain(
        Op::Or,
        vec![
            e.clone().is_null(),
            e.in_list(MISSING_TOKENS.iter().map(|s| Expr::str(*s)).collect()),
        ],
    )
}

/// The feature query for `spec` (its cutoff, or its as-of date when `spec` is for scoring,
/// must be set: the default cutoff depends on the last event).
pub fn features_query(spec: &TransactionSpec, opts: &FeatureExport) -> Result<String, ExportError> {
    let plan = Plan::new(spec, opts)?;
    let mut steps = vec![
        ("rows".to_string(), plan.rows()),
        ("events".to_string(), plan.events()),
        ("before".to_string(), plan.before()),
        ("spend".to_string(), plan.spend()),
        ("active".to_string(), plan.active()),
        ("purchases".to_string(), plan.purchases()),
        ("counts".to_string(), plan.counts()),
    ];
    steps.extend(plan.after().map(|after| ("after".to_string(), after)));
    Query {
        steps,
        body: plan.output(),
        materialized: vec!["events".into()],
    }
    .to_sql(opts.dialect, &plan.comment())
    .map_err(|reason| ExportError::Name {
        what: "a name in the query".into(),
        reason,
    })
}

/// Column `_t`: an event's time in seconds.
fn t() -> Expr {
    Expr::col("_t")
}

/// A purchase row: amount ≥ 0 (returns are negative).
fn purchase() -> Expr {
    Expr::col("_amt").bin(Op::Ge, Expr::Num(0.0))
}

/// What every step of [`features_query`] reads, gathered once.
struct Plan<'a> {
    spec: &'a TransactionSpec,
    opts: &'a FeatureExport,
    /// The cutoff (or as-of date), in seconds.
    cutoff: i64,
    /// The label horizon's end, in seconds.
    horizon_end: i64,
    /// The trend window, in seconds.
    window: i64,
    /// A training cutoff (with the label), not an as-of date.
    training: bool,
    /// The log has an order id column.
    has_order: bool,
}

impl<'a> Plan<'a> {
    /// Check `spec` and gather the dates.
    fn new(spec: &'a TransactionSpec, opts: &'a FeatureExport) -> Result<Plan<'a>, ExportError> {
        let cutoff = spec
            .explicit_cutoff()
            .map_err(|e| ExportError::Usage(e.to_string()))?
            .ok_or_else(|| {
                ExportError::Usage(
                    "the SQL feature query needs a date: --as-of DATE (scoring) or --cutoff DATE (training)"
                        .into(),
                )
            })?;
        spec.validate()
            .map_err(|e| ExportError::Usage(e.to_string()))?;
        // names from the command line reach the SQL as identifiers and in its comment: a
        // hostile one such as "t\rDROP TABLE x;" would end the comment
        check_name(
            "--table: expected a table name (optionally schema.table)",
            &opts.table,
            true,
        )?;
        let columns = [
            ("--customer-col", Some(&spec.customer_col)),
            ("--time-col", Some(&spec.time_col)),
            ("--amount-col", Some(&spec.amount_col)),
            ("--quantity-col", spec.quantity_col.as_ref()),
            ("--order-col", spec.order_col.as_ref()),
        ];
        for (flag, name) in columns {
            if let Some(name) = name {
                check_name(&format!("{flag}: expected a column name"), name, false)?;
            }
        }
        Ok(Plan {
            spec,
            opts,
            cutoff,
            horizon_end: cutoff + spec.horizon_days as i64 * DAY,
            window: spec.window_days as i64 * DAY,
            training: !spec.for_scoring(),
            has_order: spec.order_col.is_some(),
        })
    }

    /// Step `rows`: typed columns.
    fn rows(&self) -> Select {
        let spec = self.spec;
        let mut rows = Select::new(self.opts.table.clone());
        rows.item(trimmed(&spec.customer_col), "_cust");
        rows.item(
            Expr::col(spec.time_col.clone()).cast(SqlType::Timestamp),
            "_ts",
        );
        let num = |c: &str| trimmed(c).cast(SqlType::Double);
        let amount = match (&spec.quantity_col, spec.unit_price) {
            (Some(q), true) => num(&spec.amount_col).bin(Op::Mul, num(q)),
            _ => num(&spec.amount_col),
        };
        rows.item(amount, "_amt");
        if let Some(o) = &spec.order_col {
            rows.item(
                Expr::when(missing(trimmed(o)), Expr::Null, trimmed(o)),
                "_order",
            );
        }
        rows
    }

    /// Step `events`: rows with a customer id, in seconds and months.
    fn events(&self) -> Select {
        let mut events = Select::new("rows");
        events.pass(&["_cust".into()]);
        events.item(Expr::Epoch(Box::new(Expr::col("_ts"))), "_t");
        events.item(
            Expr::Extract("YEAR", Box::new(Expr::col("_ts")))
                .bin(Op::Mul, Expr::Int(12))
                .bin(Op::Add, Expr::Extract("MONTH", Box::new(Expr::col("_ts")))),
            "_month",
        );
        events.pass(&["_amt".into()]);
        if self.has_order {
            events.pass(&["_order".into()]);
        }
        events.filter = Some(Expr::Not(Box::new(missing(Expr::col("_cust")))));
        events
    }

    /// Step `before`: the events before the cutoff.
    fn before(&self) -> Select {
        let mut event_cols: Vec<String> =
            ["_cust", "_t", "_month", "_amt"].map(String::from).to_vec();
        if self.has_order {
            event_cols.push("_order".into());
        }
        let mut before = Select::new("events");
        before.pass(&event_cols);
        before.filter = Some(t().bin(Op::Lt, Expr::Int(self.cutoff)));
        before
    }

    /// Step `spend`: every row before the cutoff, returns included.
    fn spend(&self) -> Select {
        let mut spend = Select::new("before");
        spend.pass(&["_cust".into()]);
        spend.item(Expr::Func("SUM", vec![Expr::col("_amt")]), "_total");
        spend.group_by = vec![Expr::col("_cust")];
        spend
    }

    /// Step `active`: first and last purchase, and the months with one (purchases only).
    fn active(&self) -> Select {
        let mut active = Select::new("before");
        active.pass(&["_cust".into()]);
        active.item(Expr::Func("MIN", vec![t()]), "_first");
        active.item(Expr::Func("MAX", vec![t()]), "_last");
        active.item(
            Expr::Func("COUNT", vec![Expr::Distinct(Box::new(Expr::col("_month")))]),
            "_months",
        );
        active.filter = Some(purchase());
        active.group_by = vec![Expr::col("_cust")];
        active
    }

    /// Step `purchases`: one row per order (or timestamp), placed at its earliest line.
    fn purchases(&self) -> Select {
        let mut purchases = Select::new("before");
        purchases.pass(&["_cust".into()]);
        purchases.item(Expr::Func("MIN", vec![t()]), "_pt");
        purchases.filter = Some(purchase());
        purchases.group_by = if self.has_order {
            vec![
                Expr::col("_cust"),
                Expr::col("_order"),
                Expr::when(Expr::col("_order").is_null(), t(), Expr::Null),
            ]
        } else {
            vec![Expr::col("_cust"), t()]
        };
        purchases
    }

    /// Step `counts`: purchases per customer, in all, in the last trend window and the one
    /// before.
    fn counts(&self) -> Select {
        let (int, cutoff, window) = (Expr::Int, self.cutoff, self.window);
        let pt = || Expr::col("_pt");
        let mut counts = Select::new("purchases");
        counts.pass(&["_cust".into()]);
        counts.item(Expr::Func("COUNT", vec![Expr::Star]), "_count");
        let one_if = |c: Expr| Expr::Func("SUM", vec![Expr::when(c, int(1), int(0))]);
        counts.item(one_if(pt().bin(Op::Ge, int(cutoff - window))), "_recent");
        counts.item(
            one_if(
                pt().bin(Op::Lt, int(cutoff - window))
                    .and(pt().bin(Op::Ge, int(cutoff - 2 * window))),
            ),
            "_previous",
        );
        counts.group_by = vec![Expr::col("_cust")];
        counts
    }

    /// Step `after` (training cutoff only): purchases in `[cutoff, cutoff + horizon)`.
    fn after(&self) -> Option<Select> {
        if !self.training {
            return None;
        }
        let mut after = Select::new("events");
        after.pass(&["_cust".into()]);
        after.item(Expr::Func("COUNT", vec![Expr::Star]), "_after");
        after.filter = Some(Expr::all(vec![
            t().bin(Op::Ge, Expr::Int(self.cutoff)),
            t().bin(Op::Lt, Expr::Int(self.horizon_end)),
            purchase(),
        ]));
        after.group_by = vec![Expr::col("_cust")];
        Some(after)
    }

    /// The output select: the training layout, floats computed as natively.
    fn output(&self) -> Select {
        let int = Expr::Int;
        let dbl = |e: Expr| e.cast(SqlType::Double);
        let days = |a: Expr| dbl(a).bin(Op::Div, dbl(int(DAY)));
        let since_cutoff = |c: &str| days(int(self.cutoff).bin(Op::Sub, Expr::col(c)));
        let mut out = Select::new("active");
        out.joins.push((false, "spend".into(), "_cust".into()));
        out.joins.push((false, "counts".into(), "_cust".into()));
        out.item(Expr::col("_cust"), self.spec.customer_col.clone());
        out.item(since_cutoff("_last"), "recency_days");
        out.item(dbl(Expr::col("_count")), "frequency");
        out.item(Expr::col("_total"), "monetary_total");
        out.item(
            Expr::col("_total").bin(Op::Div, dbl(Expr::col("_count"))),
            "monetary_mean",
        );
        out.item(since_cutoff("_first"), "tenure_days");
        out.item(
            dbl(Expr::col("_recent")).bin(
                Op::Div,
                dbl(Expr::Func("GREATEST", vec![Expr::col("_previous"), int(1)])),
            ),
            "frequency_trend",
        );
        out.item(dbl(Expr::col("_months")), "active_months");
        if self.training {
            out.joins.push((true, "after".into(), "_cust".into()));
            out.item(
                Expr::when(Expr::col("_after").is_null(), int(1), int(0)),
                "churned",
            );
        }
        debug_assert_eq!(
            out.items.len() - 1 - self.training as usize,
            crate::ingest::TRANSACTION_FEATURES.len()
        );
        out
    }

    /// The query's leading comment: the date, dialect, input and output.
    fn comment(&self) -> String {
        let d = self.opts.dialect;
        let training = self.training;
        let day = |s: i64| crate::time::format_day(s.div_euclid(DAY));
        format!(
            "churn transaction features {} {}, {} dialect.\n\
             Input: {} with columns {} (timestamps or ISO text, read as UTC{}).\n\
             Output: the table churn-train features writes: {} per customer with a purchase before the date{}.",
            if training { "at the training cutoff" } else { "as of" },
            day(self.cutoff),
            d.name(),
            self.opts.table,
            self.spec.columns().join(", "),
            if d == Dialect::Spark { "; set spark.sql.session.timeZone=UTC" } else { "" },
            crate::ingest::TRANSACTION_FEATURES.join(", "),
            if training {
                format!(", and churned = no purchase before {}", day(self.horizon_end))
            } else {
                String::new()
            },
        )
    }
}
