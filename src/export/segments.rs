//! The segment columns of the scoring query: scaled clustering features, the nearest centroid,
//! RFM class and lifecycle stage, as the native [`crate::segment`] rules compute them.

use super::model::{column, dist};
use super::sql::{Expr, Op};
use crate::segment::lifecycle::LifecycleRule;
use crate::segment::rfm::RfmRule;
use crate::segment::{LifecycleStage, ScaledFeature};

/// A clustering feature in scaled space: `(x - mean) / std`, after `ln(1 + max(x, 0))` for
/// log features.
pub(super) fn scaled(feat: &ScaledFeature) -> Expr {
    let x = if feat.log1p {
        // ln(1 + max(x, 0)): LN is the same libm call natively and in every engine
        // (LOG1P is not portable)
        Expr::Func(
            "LN",
            vec![Expr::Num(1.0).bin(
                Op::Add,
                Expr::Func("GREATEST", vec![column(feat.column), Expr::Num(0.0)]),
            )],
        )
    } else {
        column(feat.column)
    };
    x.bin(Op::Sub, Expr::Num(feat.mean))
        .bin(Op::Div, Expr::Num(feat.std))
}

/// [`RfmRule`]'s class as a `CASE` over the eight recent / frequent / high-spend combinations.
pub(super) fn rfm_class(r: &RfmRule) -> Expr {
    let recent = column(r.recency_column).le(Expr::Num(r.recency_threshold));
    let frequent = column(r.frequency_column).bin(Op::Gt, Expr::Num(r.frequency_threshold));
    let spend = column(r.monetary_column).bin(Op::Gt, Expr::Num(r.monetary_threshold));
    let flag = |e: &Expr, on: bool| {
        if on {
            e.clone()
        } else {
            Expr::Not(Box::new(e.clone()))
        }
    };
    let whens = (0..8u8)
        .map(|bits| {
            let (a, b, m) = (bits & 4 != 0, bits & 2 != 0, bits & 1 != 0);
            (
                Expr::all(vec![flag(&recent, a), flag(&frequent, b), flag(&spend, m)]),
                Expr::str(crate::segment::rfm::class_of(a, b, m).as_str()),
            )
        })
        .collect();
    Expr::Case(whens, None)
}

/// The index of the nearest of `k` centroids by the `_d` distances: the first one no later one
/// is strictly nearer than — the native argmin, ties to the lower index.
pub(super) fn nearest_centroid(k: usize) -> Expr {
    let whens = (0..k.saturating_sub(1))
        .map(|a| {
            let nearest = Expr::all(
                (a + 1..k)
                    .map(|b| Expr::col(dist(a)).le(Expr::col(dist(b))))
                    .collect(),
            );
            (nearest, Expr::Int(a as i64))
        })
        .collect();
    Expr::Case(whens, Some(Box::new(Expr::Int(k as i64 - 1))))
}

/// [`crate::segment::lifecycle::LifecycleRule::stage`] as a `CASE`.
pub(super) fn lifecycle(l: &LifecycleRule) -> Expr {
    let cfg = &l.config;
    let tenure = column(l.tenure_column).bin(Op::Mul, Expr::Num(cfg.tenure_unit_days));
    let mut whens = Vec::new();
    if let Some(f) = l.frequency_column {
        whens.push((
            column(f).le(Expr::Num(0.0)),
            Expr::str(LifecycleStage::Potential.as_str()),
        ));
    }
    whens.push((
        tenure.clone().le(Expr::Num(cfg.new_days)),
        Expr::str(LifecycleStage::New.as_str()),
    ));
    let mut decline = Vec::new();
    if let Some(r) = l.recency_column {
        decline.push(column(r).bin(Op::Gt, Expr::Num(cfg.decline_recency_days)));
    }
    if let Some(t) = l.trend_column {
        decline.push(
            column(t)
                .bin(Op::Lt, Expr::Num(cfg.decline_trend))
                .and(tenure.clone().bin(Op::Gt, Expr::Num(cfg.growth_days / 2.0))),
        );
    }
    match decline.len() {
        0 => {}
        1 => whens.push((
            decline.pop().expect("one"),
            Expr::str(LifecycleStage::Decline.as_str()),
        )),
        _ => whens.push((
            Expr::Chain(Op::Or, decline),
            Expr::str(LifecycleStage::Decline.as_str()),
        )),
    }
    whens.push((
        tenure.le(Expr::Num(cfg.growth_days)),
        Expr::str(LifecycleStage::Growth.as_str()),
    ));
    Expr::Case(
        whens,
        Some(Box::new(Expr::str(LifecycleStage::Mature.as_str()))),
    )
}
