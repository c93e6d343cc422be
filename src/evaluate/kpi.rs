//! The KPI library of the retention brief over the store and a period, overall and per
//! segment. Formulas (also in the README):
//!
//! - customers at the start S: known (first prediction or event) before the period and not
//!   churned before it; new customers N: first known during the period; churned C: customers
//!   of S or N with a `churned` event in the period; at the end E = S + N − C;
//! - retention rate = (E − N′) / S with N′ the new customers still there at the end, i.e. the
//!   share of the starting customers still there (a new customer who left within the period
//!   does not count against it); churn rate = churned customers of S / S = 1 − retention;
//! - repurchase rate = customers with ≥ 2 purchases in the period / customers with ≥ 1;
//! - NPS = 100 × (promoters (9–10) − detractors (0–6)) / survey answers in the period (a
//!   customer's latest answer counts: the latest event time, then the greatest `external_id`,
//!   then the higher score, so the store's row order never decides);
//! - average order value = purchase amounts / purchases;
//! - CLV = m × r / (1 + d − r): m the margin per customer and period (revenue over all the
//!   period's customers, S + N, × the margin rate, since r is the retention of all of them;
//!   without purchases, the playbook's customer value × the margin rate), r the period's
//!   retention rate, d the discount rate per period. The margin per *buying* customer is
//!   reported beside it: with it the formula overstates CLV by 1 / the share who buy.

use super::data::{EvalData, Sym};
use crate::store::OutcomeEvent;
use serde::Serialize;

/// The period and the economics of the KPIs.
#[derive(Debug, Clone, Copy)]
pub struct KpiOptions {
    /// Period start (Unix ms, inclusive).
    pub from: i64,
    /// Period end (exclusive).
    pub to: i64,
    /// Share of revenue that is margin (CLV).
    pub margin_rate: f64,
    /// Discount rate per period (CLV).
    pub discount_rate: f64,
}

impl KpiOptions {
    /// The last full calendar month (UTC) before `now`, margin rate 0.3, discount rate 1% per
    /// period.
    pub fn last_full_month(now: i64) -> KpiOptions {
        let (this, prev) = crate::time::month_starts(now);
        KpiOptions {
            from: prev,
            to: this,
            margin_rate: 0.3,
            discount_rate: 0.01,
        }
    }
}

/// Customer lifetime value with its inputs.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Clv {
    /// m × r / (1 + d − r).
    pub value: f64,
    /// Margin per customer and period (m).
    pub margin: f64,
    /// Margin per buying customer (revenue / buyers × margin rate), for reference: not m,
    /// since not every customer buys. `None` without purchases.
    pub margin_per_buyer: Option<f64>,
    /// Where m comes from: `purchases` or `customer_value`.
    pub margin_source: &'static str,
    /// Retention rate of the period (r).
    pub retention_rate: f64,
    /// Discount rate per period (d).
    pub discount_rate: f64,
}

/// The KPIs of one group of customers.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct KpiRow {
    /// `all` or the segment name (`unsegmented` for customers without one).
    pub key: String,
    /// Customers at the start (S).
    pub customers_start: u64,
    /// New customers (N).
    pub customers_new: u64,
    /// Churned during the period (C).
    pub churned: u64,
    /// Customers at the end (E).
    pub customers_end: u64,
    /// (E − N′) / S: the share of S still there at the end.
    pub retention_rate: Option<f64>,
    /// Churned customers of S / S.
    pub churn_rate: Option<f64>,
    /// Customers with ≥ 1 purchase.
    pub buyers: u64,
    /// Customers with ≥ 2 purchases.
    pub repeat_buyers: u64,
    /// repeat buyers / buyers.
    pub repurchase_rate: Option<f64>,
    /// Survey answers (one per customer, the latest).
    pub responses: u64,
    /// Answers 9–10.
    pub promoters: u64,
    /// Answers 0–6.
    pub detractors: u64,
    /// Net promoter score.
    pub nps: Option<f64>,
    /// Purchases.
    pub orders: u64,
    /// Sum of purchase amounts.
    pub revenue: f64,
    /// revenue / orders.
    pub average_order_value: Option<f64>,
    /// Customer lifetime value.
    pub clv: Option<Clv>,
}

/// KPIs of a period.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Kpis {
    /// Period start (ISO).
    pub from: String,
    /// Period end (exclusive).
    pub to: String,
    /// All customers.
    pub overall: KpiRow,
    /// Per segment (from each customer's latest prediction before the end).
    pub by_segment: Vec<KpiRow>,
}

#[derive(Debug, Default, Clone, Copy)]
struct Acc {
    start: u64,
    new: u64,
    churned: u64,
    churned_start: u64,
    buyers: u64,
    repeat: u64,
    responses: u64,
    promoters: u64,
    detractors: u64,
    orders: u64,
    revenue: f64,
    value_sum: f64,
    value_n: u64,
}

/// The period must be non-empty and the rates in range.
pub fn check(opt: &KpiOptions) -> Result<(), super::EvalError> {
    let bad = |field, message: String| Err(super::EvalError::Invalid { field, message });
    if opt.from >= opt.to {
        return bad(
            "from",
            format!(
                "must be before to ({} ≥ {})",
                crate::time::format_instant(opt.from),
                crate::time::format_instant(opt.to)
            ),
        );
    }
    if !(0.0..=1.0).contains(&opt.margin_rate) {
        return bad(
            "margin_rate",
            format!("must be within 0..=1, got {}", opt.margin_rate),
        );
    }
    if !(0.0..1.0).contains(&opt.discount_rate) {
        return bad(
            "discount_rate",
            format!("must be within 0..1, got {}", opt.discount_rate),
        );
    }
    Ok(())
}

/// One customer's facts in the period.
#[derive(Debug, Default, Clone, Copy)]
struct Customer {
    first_seen: Option<i64>,
    churned_before: bool,
    churned_in: bool,
    purchases: u64,
    revenue: f64,
    /// The latest answer: (time, score, outcome index).
    survey: Option<(i64, i64, usize)>,
    segment: Option<(i64, Sym)>,
    value: Option<(i64, f64)>,
}

fn seen(c: &mut Customer, at: i64) {
    c.first_seen = Some(c.first_seen.map_or(at, |f| f.min(at)));
}

/// The KPIs of `data` (all predictions of a model and all outcomes) over the period.
pub fn kpis(data: &EvalData, opt: &KpiOptions) -> Kpis {
    // customers are numbered densely from 0 (EvalData::customer): one slot each
    let n = data
        .predictions
        .iter()
        .map(|p| p.customer)
        .chain(data.outcomes.iter().map(|o| o.customer))
        .max()
        .map_or(0, |m| m as usize + 1);
    let mut cs: Vec<Option<Customer>> = vec![None; n];
    for p in &data.predictions {
        let c = cs[p.customer as usize].get_or_insert_with(Customer::default);
        seen(c, p.scored_at);
        if p.scored_at < opt.to {
            if let Some(s) = p.segment {
                if c.segment.is_none_or(|(t, _)| p.scored_at >= t) {
                    c.segment = Some((p.scored_at, s));
                }
            }
            if let Some(v) = p.value {
                if c.value.is_none_or(|(t, _)| p.scored_at >= t) {
                    c.value = Some((p.scored_at, v));
                }
            }
        }
    }
    for (k, o) in data.outcomes.iter().enumerate() {
        let c = cs[o.customer as usize].get_or_insert_with(Customer::default);
        seen(c, o.at);
        let inside = o.at >= opt.from && o.at < opt.to;
        match o.event {
            OutcomeEvent::Churned if o.at < opt.from => c.churned_before = true,
            OutcomeEvent::Churned if inside => c.churned_in = true,
            OutcomeEvent::Purchase if inside => {
                c.purchases += 1;
                c.revenue += o.amount.unwrap_or(0.0);
            }
            OutcomeEvent::Survey if inside => {
                if let Some(s) = o.score {
                    let later = |&(t, score, j): &(i64, i64, usize)| {
                        (o.at, data.survey_id(k), s) > (t, data.survey_id(j), score)
                    };
                    if c.survey.is_none_or(|x| later(&x)) {
                        c.survey = Some((o.at, s, k));
                    }
                }
            }
            _ => {}
        }
    }
    let mut groups: std::collections::BTreeMap<String, Acc> = Default::default();
    let mut all = Acc::default();
    for c in cs.iter().flatten() {
        let Some(first) = c.first_seen else { continue };
        if first >= opt.to || c.churned_before {
            continue;
        }
        let key = c
            .segment
            .map_or("unsegmented".to_string(), |(_, s)| data.name(s).to_string());
        for acc in [&mut all, groups.entry(key).or_default()] {
            add(acc, c, first, opt);
        }
    }
    Kpis {
        from: crate::time::format_instant(opt.from),
        to: crate::time::format_instant(opt.to),
        overall: row("all".into(), &all, opt),
        by_segment: groups.into_iter().map(|(k, a)| row(k, &a, opt)).collect(),
    }
}

fn add(a: &mut Acc, c: &Customer, first: i64, opt: &KpiOptions) {
    let at_start = first < opt.from;
    if at_start {
        a.start += 1;
    } else {
        a.new += 1;
    }
    if c.churned_in {
        a.churned += 1;
        a.churned_start += at_start as u64;
    }
    if c.purchases >= 1 {
        a.buyers += 1;
    }
    if c.purchases >= 2 {
        a.repeat += 1;
    }
    a.orders += c.purchases;
    a.revenue += c.revenue;
    if let Some((_, s, _)) = c.survey {
        a.responses += 1;
        a.promoters += (s >= 9) as u64;
        a.detractors += (s <= 6) as u64;
    }
    if let Some((_, v)) = c.value {
        a.value_sum += v;
        a.value_n += 1;
    }
}

fn ratio(a: f64, b: u64) -> Option<f64> {
    (b > 0).then(|| a / b as f64)
}

fn row(key: String, a: &Acc, opt: &KpiOptions) -> KpiRow {
    let end = a.start + a.new - a.churned;
    let retention = ratio((a.start - a.churned_start) as f64, a.start);
    let per_buyer = ratio(a.revenue, a.buyers).map(|m| m * opt.margin_rate);
    let margin = match (
        ratio(a.revenue, a.start + a.new),
        ratio(a.value_sum, a.value_n),
    ) {
        (Some(m), _) if a.buyers > 0 => Some((m * opt.margin_rate, "purchases")),
        (None, Some(v)) => Some((v * opt.margin_rate, "customer_value")),
        _ => None,
    };
    let clv = retention.zip(margin).and_then(|(r, (m, source))| {
        let den = 1.0 + opt.discount_rate - r;
        (den > 0.0).then(|| Clv {
            value: m * r / den,
            margin: m,
            margin_per_buyer: per_buyer,
            margin_source: source,
            retention_rate: r,
            discount_rate: opt.discount_rate,
        })
    });
    KpiRow {
        key,
        customers_start: a.start,
        customers_new: a.new,
        churned: a.churned,
        customers_end: end,
        retention_rate: retention,
        churn_rate: ratio(a.churned_start as f64, a.start),
        buyers: a.buyers,
        repeat_buyers: a.repeat,
        repurchase_rate: ratio(a.repeat as f64, a.buyers),
        responses: a.responses,
        promoters: a.promoters,
        detractors: a.detractors,
        nps: ratio(
            100.0 * (a.promoters as f64 - a.detractors as f64),
            a.responses,
        ),
        orders: a.orders,
        revenue: a.revenue,
        average_order_value: ratio(a.revenue, a.orders),
        clv,
    }
}

impl Kpis {
    /// A readable table for the terminal.
    pub fn summary(&self) -> String {
        use std::fmt::Write;
        let pct = |x: Option<f64>| x.map_or("-".to_string(), |v| format!("{:.1}%", 100.0 * v));
        let num = |x: Option<f64>| x.map_or("-".to_string(), |v| format!("{v:.1}"));
        let mut s = format!("KPIs from {} to {}\n", self.from, self.to);
        let rows = || std::iter::once(&self.overall).chain(&self.by_segment);
        let w = rows()
            .map(|r| r.key.chars().count())
            .max()
            .unwrap_or(5)
            .max(5);
        let _ = writeln!(
            s,
            "  {:<w$} {:>8} {:>6} {:>8} {:>9} {:>8} {:>10} {:>6} {:>8} {:>9}",
            "group",
            "start",
            "new",
            "churned",
            "retention",
            "churn",
            "repurchase",
            "NPS",
            "AOV",
            "CLV"
        );
        for r in rows() {
            let _ = writeln!(
                s,
                "  {:<w$} {:>8} {:>6} {:>8} {:>9} {:>8} {:>10} {:>6} {:>8} {:>9}",
                r.key,
                r.customers_start,
                r.customers_new,
                r.churned,
                pct(r.retention_rate),
                pct(r.churn_rate),
                pct(r.repurchase_rate),
                num(r.nps),
                num(r.average_order_value),
                num(r.clv.as_ref().map(|c| c.value)),
            );
        }
        if let Some(c) = &self.overall.clv {
            let _ = writeln!(
                s,
                "  CLV = m × r / (1 + d − r) with m {:.2} per customer ({}{}), r {:.3}, d {:.3}",
                c.margin,
                c.margin_source,
                c.margin_per_buyer
                    .map_or(String::new(), |b| format!("; {b:.2} per buying customer")),
                c.retention_rate,
                c.discount_rate
            );
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::evaluate::{OutcomeObs, PredictionObs};

    const DAY: i64 = 86_400_000;

    fn data() -> EvalData {
        let mut d = EvalData::default();
        let v = d.sym("v1");
        let (gold, new) = (d.sym("gold"), d.sym("newbies"));
        // period: days 10..20. a, b, c known before (c churned before: not counted); d, e new
        for (who, day, seg) in [
            ("a", 1, gold),
            ("b", 2, gold),
            ("c", 3, gold),
            ("d", 12, new),
            ("e", 15, new),
        ] {
            let customer = d.customer(who);
            d.push_prediction(
                PredictionObs {
                    customer,
                    scored_at: day * DAY,
                    probability: 0.5,
                    version: v,
                    segment: Some(seg),
                    control: None,
                    top_action: None,
                    held_out: None,
                    contact: None,
                    value: Some(100.0),
                    propensity: 1.0,
                },
                None,
            );
        }
        let ev = |d: &mut EvalData,
                  who: &str,
                  event,
                  day: i64,
                  amount: Option<f64>,
                  score: Option<i64>| {
            let customer = d.customer(who);
            d.push_outcome(OutcomeObs {
                customer,
                event,
                at: day * DAY,
                prediction: None,
                action: None,
                cost: None,
                amount,
                score,
            });
        };
        use OutcomeEvent::*;
        ev(&mut d, "c", Churned, 5, None, None);
        ev(&mut d, "a", Churned, 14, None, None);
        ev(&mut d, "e", Churned, 18, None, None);
        // purchases: b twice (30 + 50), d once (20); a purchase outside the period
        ev(&mut d, "b", Purchase, 11, Some(30.0), None);
        ev(&mut d, "b", Purchase, 16, Some(50.0), None);
        ev(&mut d, "d", Purchase, 13, Some(20.0), None);
        ev(&mut d, "d", Purchase, 25, Some(999.0), None);
        // surveys: b 10 (promoter), d 5 then 9 (latest counts: promoter), e 3 (detractor),
        // a 8 (passive)
        ev(&mut d, "b", Survey, 12, None, Some(10));
        ev(&mut d, "d", Survey, 13, None, Some(5));
        ev(&mut d, "d", Survey, 17, None, Some(9));
        ev(&mut d, "e", Survey, 16, None, Some(3));
        ev(&mut d, "a", Survey, 11, None, Some(8));
        d
    }

    /// Hand-computed: S = {a, b} = 2, N = {d, e} = 2, C = {a, e} = 2, E = 2, N′ = {d} = 1;
    /// retention (2 − 1) / 2 = 1/2; churn 1 / 2; repurchase 1 / 2; NPS 100 × (2 − 1) / 4 = 25;
    /// AOV 100 / 3; CLV with m = (100 / 4 customers) × 0.3 = 7.5 and r = 1/2: 7.5 × 0.5 / 0.51
    /// (per buying customer: 100 / 2 × 0.3 = 15).
    #[test]
    fn kpis_match_hand_computed_values() {
        let opt = KpiOptions {
            from: 10 * DAY,
            to: 20 * DAY,
            margin_rate: 0.3,
            discount_rate: 0.01,
        };
        let k = kpis(&data(), &opt);
        let o = &k.overall;
        assert_eq!(
            (
                o.customers_start,
                o.customers_new,
                o.churned,
                o.customers_end
            ),
            (2, 2, 2, 2)
        );
        assert_eq!(o.retention_rate, Some(0.5));
        assert_eq!(o.churn_rate, Some(0.5));
        assert_eq!(
            (o.buyers, o.repeat_buyers, o.repurchase_rate),
            (2, 1, Some(0.5))
        );
        assert_eq!((o.responses, o.promoters, o.detractors), (4, 2, 1));
        assert_eq!(o.nps, Some(25.0));
        assert_eq!(o.orders, 3);
        assert!((o.average_order_value.unwrap() - 100.0 / 3.0).abs() < 1e-12);
        let clv = o.clv.as_ref().unwrap();
        assert_eq!((clv.margin, clv.retention_rate), (7.5, 0.5));
        assert_eq!(clv.margin_per_buyer, Some(15.0));
        assert!((clv.value - 7.5 * 0.5 / 0.51).abs() < 1e-12);
        // gold: S = {a, b}, a churned: retention 1/2; CLV m = 80 / 2 × 0.3 = 12 (b bought 80),
        // 12 × 0.5 / (1.01 − 0.5)
        let gold = k.by_segment.iter().find(|r| r.key == "gold").unwrap();
        assert_eq!(gold.retention_rate, Some(0.5));
        let g = gold.clv.as_ref().unwrap();
        assert!((g.value - 12.0 * 0.5 / 0.51).abs() < 1e-9, "{g:?}");
        assert_eq!(gold.nps, Some(50.0)); // b 10, a 8
        let newbies = k.by_segment.iter().find(|r| r.key == "newbies").unwrap();
        assert_eq!(newbies.retention_rate, None, "no customers at the start");
        assert_eq!(newbies.nps, Some(0.0)); // d 9, e 3
    }

    /// Two answers of one customer at the same instant: the greater external id counts, in
    /// whichever order the store returns them; without ids, the higher score.
    #[test]
    fn nps_ties_are_broken_by_external_id_not_row_order() {
        let opt = KpiOptions {
            from: 10 * DAY,
            to: 20 * DAY,
            margin_rate: 0.3,
            discount_rate: 0.01,
        };
        let answer = |d: &mut EvalData, score: i64, id: Option<&str>| {
            let customer = d.customer("a");
            d.push_outcome(OutcomeObs {
                customer,
                event: OutcomeEvent::Survey,
                at: 12 * DAY,
                prediction: None,
                action: None,
                cost: None,
                amount: None,
                score: Some(score),
            });
            if let Some(id) = id {
                d.set_external_id(id);
            }
        };
        let nps = |answers: &[(i64, Option<&str>)]| {
            let mut d = EvalData::default();
            for &(score, id) in answers {
                answer(&mut d, score, id);
            }
            kpis(&d, &opt).overall.nps
        };
        let (late, early) = ((3, Some("survey-2")), (10, Some("survey-1")));
        assert_eq!(nps(&[late, early]), Some(-100.0));
        assert_eq!(nps(&[early, late]), Some(-100.0));
        assert_eq!(nps(&[(3, None), (10, None)]), Some(100.0));
        assert_eq!(nps(&[(10, None), (3, None)]), Some(100.0));
        // an answer with an id is later than one without at the same instant
        assert_eq!(nps(&[(3, Some("x")), (10, None)]), Some(-100.0));
    }

    #[test]
    fn the_default_period_is_the_last_full_month() {
        let now = crate::time::parse("2026-03-15T10:00:00Z").unwrap();
        let o = KpiOptions::last_full_month(now);
        assert_eq!(crate::time::format_instant(o.from), "2026-02-01T00:00:00Z");
        assert_eq!(crate::time::format_instant(o.to), "2026-03-01T00:00:00Z");
        let jan = KpiOptions::last_full_month(crate::time::parse("2026-01-05").unwrap());
        assert_eq!(
            crate::time::format_instant(jan.from),
            "2025-12-01T00:00:00Z"
        );
    }
}
