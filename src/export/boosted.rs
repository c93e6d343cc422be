//! The probability of a boosted model as SQL steps, repeating the native scorer's arithmetic
//! operation for operation (see [`crate::model::boost::link`]):
//! 1. `margin_1 … margin_n`: the margin, the base plus each tree's leaf value in boosting order,
//!    [`TREES_PER_STEP`] trees per step (one [`Expr::OrderedSum`] each, left to right like the
//!    native loop), so no engine meets an expression deeper than a step;
//! 2. `link_1 … link_4`: σ of the margin (and, for Platt scaling, σ of the scaled margin) with the
//!    portable exponential — argument reduction, polynomial, `× POWER(2, k)`;
//! 3. `calibrated`: the raw probability `_raw` and the calibrated one `_p` (isotonic: the knot
//!    segment's interpolation as one `CASE`).
//!
//! The output step then reads the interval and support from the calibration bin of `_raw`.

use super::model::{split_case, Split};
use super::sql::{Expr, Op, Select};
use crate::model::boost::link::{CLAMP, INV_LN2, LN2_HI, LN2_LO, P};
use crate::model::boost::{BoostTree, Ensemble};
use crate::model::calibrate::{Calibrator, TILT};
use crate::model::Boosted;

/// Margin column.
pub(super) const MARGIN: &str = "_m";
/// Uncalibrated probability σ(margin).
pub(super) const RAW: &str = "_raw";
/// Calibrated probability.
pub(super) const PROB: &str = "_p";

/// Trees summed per `WITH` step: a step's expression is then at most this many additions deep
/// (plus a tree's own depth), far below every engine's and parser's nesting limit.
pub const TREES_PER_STEP: usize = 20;

/// Named steps and the ones worth computing once (see [`super::sql::Query::materialized`]).
pub(super) struct Steps {
    /// The steps, in order.
    pub steps: Vec<(String, Select)>,
    /// Steps whose columns later steps read many times.
    pub materialized: Vec<String>,
}

/// The steps that turn step `from` (which has the `carry` columns: id and encoded columns) into
/// `calibrated`: `carry`, [`RAW`] and [`PROB`]. `max_case_depth` as for single trees: deeper
/// trees are printed as one condition chain per leaf.
pub(super) fn probability_steps(
    b: &Boosted,
    calibrator: &Calibrator,
    from: &str,
    carry: &[String],
    max_case_depth: usize,
) -> Steps {
    let mut steps = margin_steps(&b.ensemble, from, carry, max_case_depth);
    let margin_step = steps.last().map(|(n, _)| n.clone()).expect("one step");
    let mut sigmoids = vec![Expr::col(MARGIN)];
    if let Calibrator::Platt { a, b } = calibrator {
        let (lo, hi) = Calibrator::platt_bounds();
        sigmoids.push(
            Expr::Num(*a)
                .bin(Op::Mul, clamp(Expr::col(MARGIN), lo, hi))
                .bin(Op::Add, Expr::Num(*b)),
        );
    }
    steps.extend(sigmoid_steps(&margin_step, carry, &sigmoids));
    let link_step = steps.last().map(|(n, _)| n.clone()).expect("link steps");
    let mut cal = Select::new(link_step.clone());
    cal.pass(carry);
    cal.item(Expr::col(sig(0)), RAW);
    let p = match calibrator {
        Calibrator::Platt { .. } => Expr::col(sig(1)),
        Calibrator::Isotonic { x, y } => isotonic(x, y, Expr::col(sig(0))),
    };
    cal.item(p, PROB);
    steps.push(("calibrated".into(), cal));
    Steps {
        steps,
        materialized: vec![margin_step, link_step],
    }
}

/// `LEAST(GREATEST(e, lo), hi)`: `f64::clamp` for the finite values the steps hold.
fn clamp(e: Expr, lo: f64, hi: f64) -> Expr {
    Expr::Func(
        "LEAST",
        vec![
            Expr::Func("GREATEST", vec![e, Expr::Num(lo)]),
            Expr::Num(hi),
        ],
    )
}

/// Steps `margin_1 …`: [`MARGIN`] as the base plus every tree, in boosting order.
fn margin_steps(
    e: &Ensemble,
    from: &str,
    carry: &[String],
    max_case_depth: usize,
) -> Vec<(String, Select)> {
    let mut steps = Vec::new();
    let mut prev = from.to_string();
    let chunks: Vec<&[BoostTree]> = if e.trees.is_empty() {
        vec![&[]]
    } else {
        e.trees.chunks(TREES_PER_STEP).collect()
    };
    for (i, chunk) in chunks.into_iter().enumerate() {
        let mut s = Select::new(prev.clone());
        s.pass(carry);
        let start = if i == 0 {
            Expr::Num(e.base_margin)
        } else {
            Expr::col(MARGIN)
        };
        let mut terms = vec![start];
        terms.extend(chunk.iter().map(|t| tree_value(t, max_case_depth)));
        s.item(Expr::OrderedSum(terms), MARGIN);
        let name = format!("margin_{}", i + 1);
        steps.push((name.clone(), s));
        prev = name;
    }
    steps
}

/// The leaf value a row reaches in `t`.
fn tree_value(t: &BoostTree, max_case_depth: usize) -> Expr {
    let split = |i: usize| {
        let n = &t.nodes[i];
        (!n.is_leaf()).then_some(Split {
            column: n.feature as usize,
            threshold: n.threshold,
            left: n.left as usize,
            right: n.right as usize,
        })
    };
    let leaf = |i: usize| Expr::Num(t.nodes[i].value);
    split_case(&split, &leaf, t.depth() > max_case_depth)
}

/// Column `_s{i}_{part}` of the link steps.
fn part(i: usize, name: &str) -> String {
    format!("_s{i}_{name}")
}

/// σ of argument `i`.
fn sig(i: usize) -> String {
    format!("_s{i}")
}

/// Steps `link_1 … link_4`: `_s{i}` = σ(`args[i]`) for each argument, as
/// [`crate::model::boost::link::sigmoid`] computes it.
fn sigmoid_steps(from: &str, carry: &[String], args: &[Expr]) -> Vec<(String, Select)> {
    let c = |i: usize, name: &str| Expr::col(part(i, name));
    let num = Expr::Num;
    let mut steps: Vec<(String, Select)> = Vec::new();
    let mut kept: Vec<String> = carry.to_vec();
    let mut step = |items: Vec<(Expr, String)>, kept: &mut Vec<String>| {
        let from = steps.last().map_or(from.to_string(), |(n, _)| n.clone());
        let mut s = Select::new(from);
        s.pass(kept);
        let names: Vec<String> = items.iter().map(|(_, n)| n.clone()).collect();
        for (e, n) in items {
            s.item(e, n);
        }
        kept.extend(names);
        steps.push((format!("link_{}", steps.len() + 1), s));
    };
    // x = clamp(0 − z, ±CLAMP); k = floor(x / ln2 + 1/2)
    let x = |z: &Expr| clamp(num(0.0).bin(Op::Sub, z.clone()), -CLAMP, CLAMP);
    let items = (0..args.len())
        .flat_map(|i| {
            let k = Expr::Func(
                "FLOOR",
                vec![x(&args[i])
                    .bin(Op::Mul, num(INV_LN2))
                    .bin(Op::Add, num(0.5))],
            );
            [(x(&args[i]), part(i, "x")), (k, part(i, "k"))]
        })
        .collect();
    step(items, &mut kept);
    // hi = x − k·ln2_hi; lo = k·ln2_lo; r = hi − lo
    let hi = |i| c(i, "x").bin(Op::Sub, c(i, "k").bin(Op::Mul, num(LN2_HI)));
    let lo = |i| c(i, "k").bin(Op::Mul, num(LN2_LO));
    let items = (0..args.len())
        .flat_map(|i| {
            [
                (hi(i), part(i, "hi")),
                (lo(i), part(i, "lo")),
                (hi(i).bin(Op::Sub, lo(i)), part(i, "r")),
            ]
        })
        .collect();
    step(items, &mut kept);
    // t = r²; c = r − t·(P1 + t·(P2 + t·(P3 + t·(P4 + t·P5))))
    let items = (0..args.len())
        .map(|i| {
            let t = || c(i, "r").bin(Op::Mul, c(i, "r"));
            let mut poly = num(P[4]);
            for &p in P[..4].iter().rev() {
                poly = num(p).bin(Op::Add, t().bin(Op::Mul, poly));
            }
            (c(i, "r").bin(Op::Sub, t().bin(Op::Mul, poly)), part(i, "c"))
        })
        .collect();
    step(items, &mut kept);
    // y = 1 − ((lo − r·c / (2 − c)) − hi); σ = 1 / (1 + y·2^k)
    let items = (0..args.len())
        .map(|i| {
            let rc = c(i, "r").bin(Op::Mul, c(i, "c"));
            let frac = rc.bin(Op::Div, num(2.0).bin(Op::Sub, c(i, "c")));
            let y = num(1.0).bin(
                Op::Sub,
                c(i, "lo").bin(Op::Sub, frac).bin(Op::Sub, c(i, "hi")),
            );
            let two_k = Expr::Func("POWER", vec![num(2.0), c(i, "k")]);
            let e = y.bin(Op::Mul, two_k);
            (num(1.0).bin(Op::Div, num(1.0).bin(Op::Add, e)), sig(i))
        })
        .collect();
    // the last step keeps only what follows reads: carry and the σ columns
    kept.truncate(carry.len());
    step(items, &mut kept);
    steps
}

/// The isotonic map of [`Calibrator::apply`] on the raw probability `p`: the knot segment's
/// linear interpolation, then the small identity tilt.
fn isotonic(x: &[f64], y: &[f64], p: Expr) -> Expr {
    let iso = match (x.first(), x.last()) {
        (Some(&x0), Some(&xl)) => {
            let mut whens = vec![
                (p.clone().le(Expr::Num(x0)), Expr::Num(y[0])),
                (
                    p.clone().bin(Op::Ge, Expr::Num(xl)),
                    Expr::Num(y[y.len() - 1]),
                ),
            ];
            // x[j-1] <= p < x[j]: the first knot above p closes the segment
            for j in 1..x.len() {
                let seg = Expr::Num(y[j - 1]).bin(
                    Op::Add,
                    Expr::Num(y[j] - y[j - 1])
                        .bin(Op::Mul, p.clone().bin(Op::Sub, Expr::Num(x[j - 1])))
                        .bin(Op::Div, Expr::Num(x[j] - x[j - 1])),
                );
                whens.push((p.clone().bin(Op::Lt, Expr::Num(x[j])), seg));
            }
            Expr::Case(whens, None)
        }
        _ => p.clone(),
    };
    Expr::Num(1.0 - TILT)
        .bin(Op::Mul, iso)
        .bin(Op::Add, Expr::Num(TILT).bin(Op::Mul, p))
}

/// The output columns of a boosted model read from [`RAW`] and [`PROB`]: probability, the
/// calibration bin's interval widened to include it, the bin's rows, and the decision.
pub(super) fn output_columns(b: &Boosted, threshold: f64) -> [Expr; 5] {
    let bin = |f: &dyn Fn(&crate::model::ScoreBin) -> Expr, empty: Expr| {
        let Some((last, rest)) = b.bins.split_last() else {
            return empty;
        };
        let whens = rest
            .iter()
            .map(|s| (Expr::col(RAW).le(Expr::Num(s.upper)), f(s)))
            .collect();
        Expr::Case(whens, Some(Box::new(f(last))))
    };
    let p = || Expr::col(PROB);
    [
        p(),
        Expr::Func(
            "LEAST",
            vec![bin(&|s| Expr::Num(s.low), Expr::Num(0.0)), p()],
        ),
        Expr::Func(
            "GREATEST",
            vec![bin(&|s| Expr::Num(s.high), Expr::Num(1.0)), p()],
        ),
        bin(&|s| Expr::Num(s.n), Expr::Num(0.0)),
        p().bin(Op::Ge, Expr::Num(threshold)),
    ]
}
