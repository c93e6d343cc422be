//! The scoring query of a bundle: raw customer table in → the columns `churn-score` writes out.
//!
//! Steps (each a `WITH` step, each reading the previous one):
//! 1. `text` and `input`: every input the model reads as trimmed text, then → number (missing tokens → NULL) or level
//!    (missing → `(missing)`), exactly as the native encoder parses cells;
//! 2. `encoded`: the encoded columns the tree, the segments, RFM and lifecycle rules test
//!    (median imputation, missing indicators, one-hot levels, the rare/unseen column);
//! 3. `scored`: the leaf (a nested `CASE` per split, or one AND-chain per leaf above the depth
//!    limit), the scaled clustering features, RFM class and lifecycle stage;
//! 4. `distances` (models with segments): squared distance to every centroid, summed in the
//!    native order;
//! 5. the output: per-leaf constants (calibration is folded into them, so no `EXP`/`LN` touches
//!    the probability), the nearest segment (ties to the lower index, as natively).

use super::sql::{Dialect, Expr, Op, Query, Select, SqlType};
use super::ExportError;
use crate::bundle::Bundle;
use crate::features::{ColumnRole, InputEncoding, MISSING_LEVEL};
use crate::ingest::value::{BOOL_PAIRS, MISSING_TOKENS};
use crate::ingest::FeatureKind;
use crate::model::tree::Tree;
use crate::segment::LifecycleStage;

/// Options of [`model_query`].
#[derive(Debug, Clone, PartialEq)]
pub struct ModelExport {
    /// Dialect to print.
    pub dialect: Dialect,
    /// Input table (optionally `schema.table`), in the training layout.
    pub table: String,
    /// Trees deeper than this are printed as one AND-chain per leaf instead of nested `CASE`s.
    pub max_case_depth: usize,
}

/// Default nesting limit: far below every engine's own (Spark's is the lowest, about 300) and
/// below the Spark-dialect parser's recursion limit the tests check with.
pub const DEFAULT_MAX_CASE_DEPTH: usize = 20;

const ID: &str = "_id";
const LEAF: &str = "_leaf";
const SEGMENT: &str = "_segment";

fn val(i: usize) -> String {
    format!("_v{i}")
}
fn col(j: usize) -> String {
    format!("_c{j}")
}
fn z(f: usize) -> String {
    format!("_z{f}")
}
fn dist(k: usize) -> String {
    format!("_d{k}")
}

/// The SQL that scores the table `opts.table` with `bundle`.
pub fn model_query(
    bundle: &Bundle,
    version: &str,
    opts: &ModelExport,
) -> Result<String, ExportError> {
    let Some(m) = bundle.model.single_tree() else {
        return Err(ExportError::Bundle(
            "this is a boosted model; SQL export covers single-tree models so far (retrain with --model tree to export)".into(),
        ));
    };
    let d = opts.dialect;
    let enc = &bundle.encoder;
    let tree = &m.tree;

    // encoded columns every part reads
    let mut used: Vec<usize> = tree
        .nodes
        .iter()
        .filter(|n| !n.is_leaf())
        .map(|n| n.feature as usize)
        .collect();
    if let Some(s) = &bundle.segments {
        used.extend(s.features.iter().map(|f| f.column));
        if let Some(r) = &s.rfm {
            used.extend([r.recency_column, r.frequency_column, r.monetary_column]);
        }
        if let Some(l) = &s.lifecycle {
            used.push(l.tenure_column);
            used.extend(
                l.recency_column
                    .into_iter()
                    .chain(l.frequency_column)
                    .chain(l.trend_column),
            );
        }
    }
    used.sort_unstable();
    used.dedup();
    if let Some(&bad) = used.iter().find(|&&j| j >= enc.columns.len()) {
        return Err(ExportError::Bundle(format!(
            "encoded column {bad} does not exist (the encoder has {})",
            enc.columns.len()
        )));
    }
    let mut inputs: Vec<usize> = used.iter().map(|&j| enc.columns[j].input).collect();
    inputs.sort_unstable();
    inputs.dedup();

    // 1. text: every input trimmed as text; input: parsed
    let mut text = Select::new(opts.table.clone());
    let mut input = Select::new("text");
    let has_id = bundle.id_column.is_some();
    if let Some(id) = &bundle.id_column {
        text.item(Expr::col(id.clone()), ID);
        input.pass(&[ID.to_string()]);
    }
    for &i in &inputs {
        let spec = &enc.inputs[i];
        text.item(
            Expr::Func(
                "TRIM",
                vec![Expr::col(spec.name.clone()).cast(SqlType::Text)],
            ),
            val(i),
        );
        input.item(parse_input(&spec.kind, Expr::col(val(i))), val(i));
    }

    // 2. encoded
    let mut encoded = Select::new("input");
    let ids: Vec<String> = if has_id {
        vec![ID.to_string()]
    } else {
        Vec::new()
    };
    encoded.pass(&ids);
    for &j in &used {
        let c = &enc.columns[j];
        let v = Expr::col(val(c.input));
        let one_if = |cond: Expr| Expr::when(cond, Expr::Num(1.0), Expr::Num(0.0));
        let e = match (&c.role, &enc.inputs[c.input].encoding) {
            (ColumnRole::Value, InputEncoding::Numeric { median, .. }) => {
                Expr::Func("COALESCE", vec![v, Expr::Num(*median)])
            }
            (ColumnRole::Missing, InputEncoding::Numeric { .. }) => one_if(v.is_null()),
            (ColumnRole::Level { level }, InputEncoding::OneHot { .. }) => {
                one_if(v.bin(Op::Eq, Expr::str(level.clone())))
            }
            (ColumnRole::Other, InputEncoding::OneHot { levels, .. }) => {
                let known = v.in_list(levels.iter().map(|l| Expr::str(l.clone())).collect());
                if levels.is_empty() {
                    Expr::Num(1.0)
                } else {
                    Expr::when(known, Expr::Num(0.0), Expr::Num(1.0))
                }
            }
            (role, _) => {
                return Err(ExportError::Bundle(format!(
                    "encoded column '{}' ({role:?}) does not match its input's encoding",
                    c.name
                )))
            }
        };
        encoded.item(e, col(j));
    }

    // 3. scored
    let mut scored = Select::new("encoded");
    scored.pass(&ids);
    let flat = tree.depth() > opts.max_case_depth;
    scored.item(
        if flat {
            flat_leaf(tree)
        } else {
            nested_leaf(tree, 0)
        },
        LEAF,
    );
    let c = |j: usize| Expr::col(col(j));
    let mut extra: Vec<String> = Vec::new();
    if let Some(s) = &bundle.segments {
        for (f, feat) in s.features.iter().enumerate() {
            let x = if feat.log1p {
                // ln(1 + max(x, 0)): LN is the same libm call natively and in every engine
                // (LOG1P is not portable)
                Expr::Func(
                    "LN",
                    vec![Expr::Num(1.0).bin(
                        Op::Add,
                        Expr::Func("GREATEST", vec![c(feat.column), Expr::Num(0.0)]),
                    )],
                )
            } else {
                c(feat.column)
            };
            scored.item(
                x.bin(Op::Sub, Expr::Num(feat.mean))
                    .bin(Op::Div, Expr::Num(feat.std)),
                z(f),
            );
        }
        if let Some(r) = &s.rfm {
            let recent = c(r.recency_column).le(Expr::Num(r.recency_threshold));
            let frequent = c(r.frequency_column).bin(Op::Gt, Expr::Num(r.frequency_threshold));
            let spend = c(r.monetary_column).bin(Op::Gt, Expr::Num(r.monetary_threshold));
            let mut whens = Vec::new();
            let flag = |e: &Expr, on: bool| {
                if on {
                    e.clone()
                } else {
                    Expr::Not(Box::new(e.clone()))
                }
            };
            for bits in 0..8u8 {
                let (a, b, m) = (bits & 4 != 0, bits & 2 != 0, bits & 1 != 0);
                whens.push((
                    Expr::all(vec![flag(&recent, a), flag(&frequent, b), flag(&spend, m)]),
                    Expr::str(crate::segment::rfm::class_of(a, b, m).as_str()),
                ));
            }
            scored.item(Expr::Case(whens, None), "rfm_class");
            extra.push("rfm_class".into());
        }
        if let Some(l) = &s.lifecycle {
            scored.item(lifecycle(l, &c), "lifecycle_stage");
            extra.push("lifecycle_stage".into());
        }
    }

    let mut steps = vec![
        ("text".to_string(), text),
        ("input".to_string(), input),
        ("encoded".to_string(), encoded),
        ("scored".to_string(), scored),
    ];

    // 4. distances
    let mut last = "scored".to_string();
    if let Some(s) = &bundle.segments {
        let mut ds = Select::new("scored");
        ds.pass(&ids).pass(&[LEAF.to_string()]).pass(&extra);
        for (k, centroid) in s.centroids.iter().enumerate() {
            let terms = centroid
                .iter()
                .enumerate()
                .map(|(f, &cf)| {
                    let diff = Expr::Num(cf).bin(Op::Sub, Expr::col(z(f)));
                    diff.clone().bin(Op::Mul, diff)
                })
                .collect();
            ds.item(Expr::sum(terms), dist(k));
        }
        steps.push(("distances".to_string(), ds));
        last = "distances".into();
    }

    // 5. output: per-leaf constants, then the nearest segment
    let leaves: Vec<usize> = (0..tree.nodes.len())
        .filter(|&i| tree.nodes[i].is_leaf())
        .collect();
    let per_leaf = |f: &dyn Fn(usize) -> Expr| {
        choose(Expr::col(LEAF), leaves.iter().map(|&i| (i, f(i))).collect())
    };
    let mut out = Select::new(last);
    if bundle.id_column.is_some() {
        out.item(Expr::col(ID), ID);
    }
    out.item(per_leaf(&|i| Expr::Num(m.scores[i].p)), "churn_probability");
    out.item(per_leaf(&|i| Expr::Num(m.scores[i].low)), "probability_low");
    out.item(
        per_leaf(&|i| Expr::Num(m.scores[i].high)),
        "probability_high",
    );
    out.item(per_leaf(&|i| Expr::Num(tree.nodes[i].n)), "leaf_support");
    out.item(
        per_leaf(&|i| Expr::Bool(bundle.model.from_leaf(m, i).churn)),
        "predicted_churn",
    );
    let names: Vec<String> = [
        "churn_probability",
        "probability_low",
        "probability_high",
        "leaf_support",
        "predicted_churn",
    ]
    .map(String::from)
    .to_vec();
    if let Some(s) = &bundle.segments {
        // the first centroid no later one is strictly nearer than: the native argmin, ties to
        // the lower index
        let k = s.centroids.len();
        let mut whens = Vec::new();
        for a in 0..k.saturating_sub(1) {
            let nearest = Expr::all(
                (a + 1..k)
                    .map(|b| Expr::col(dist(a)).le(Expr::col(dist(b))))
                    .collect(),
            );
            whens.push((nearest, Expr::Int(a as i64)));
        }
        out.item(
            Expr::Case(whens, Some(Box::new(Expr::Int(k as i64 - 1)))),
            SEGMENT,
        );
        out.pass(&extra);
        let mut fin = Select::new("nearest");
        if bundle.id_column.is_some() {
            fin.pass(&[ID.to_string()]);
        }
        fin.pass(&names);
        let by_segment = |f: &dyn Fn(usize) -> Expr| {
            choose(Expr::col(SEGMENT), (0..k).map(|a| (a, f(a))).collect())
        };
        fin.item(
            by_segment(&|a| Expr::Int(s.segments[a].id as i64)),
            "segment_id",
        );
        fin.item(
            by_segment(&|a| Expr::str(s.segments[a].name.clone())),
            "segment",
        );
        fin.pass(&extra);
        steps.push(("nearest".to_string(), out));
        out = fin;
    }
    // the risk band depends on the probability only: one more per-leaf constant
    if let Some(pb) = &bundle.playbook {
        if bundle.segments.is_some() {
            if let Some((_, nearest)) = steps.last_mut() {
                nearest.item(Expr::col(LEAF), LEAF);
            }
        }
        out.item(
            per_leaf(&|i| Expr::str(pb.file.risk_bands.band(m.scores[i].p).as_str())),
            "risk_band",
        );
    }
    // the id under its own name, last step
    if let Some(id) = &bundle.id_column {
        if let Some(first) = out.items.first_mut() {
            first.1 = id.clone();
        }
    }
    let comment = format!(
        "churn model '{}' version {} ({} leaves, depth {}{}), {} dialect.\n\
         Input: {} in the training layout (text or typed columns; NULL and the texts {} are missing).\n\
         Output: the columns churn-score writes, bit-identical probabilities.",
        bundle.name,
        version,
        tree.n_leaves(),
        tree.depth(),
        if flat { ", one condition chain per leaf" } else { "" },
        d.name(),
        opts.table,
        MISSING_TOKENS
            .iter()
            .map(|t| d.string(t))
            .collect::<Vec<_>>()
            .join(" "),
    );
    Ok(Query {
        steps,
        body: out,
        materialized: vec!["encoded".into(), "scored".into()],
    }
    .to_sql(d, &comment))
}

/// `CASE WHEN key = k1 THEN v1 … ELSE vn END` over `(k, v)` pairs (the last pair is the ELSE).
fn choose(key: Expr, mut pairs: Vec<(usize, Expr)>) -> Expr {
    let last = pairs.pop().map(|(_, v)| Box::new(v));
    let whens = pairs
        .into_iter()
        .map(|(k, v)| (key.clone().bin(Op::Eq, Expr::Int(k as i64)), v))
        .collect();
    Expr::Case(whens, last)
}

/// A trimmed text cell `t` → its parsed value, as [`crate::features::Encoder::encode_cell`]
/// reads it: numbers (NULL when missing), booleans as 1 / 0, levels as text.
fn parse_input(kind: &FeatureKind, t: Expr) -> Expr {
    let missing = Expr::Chain(
        Op::Or,
        vec![
            t.clone().is_null(),
            t.clone()
                .in_list(MISSING_TOKENS.iter().map(|s| Expr::str(*s)).collect()),
        ],
    );
    match kind {
        FeatureKind::Numeric => Expr::when(missing, Expr::Null, t.cast(SqlType::Double)),
        FeatureKind::Boolean {
            true_token,
            false_token,
        } => {
            let lower = Expr::Func("LOWER", vec![t.clone()]);
            let is = |tok: &str| lower.clone().bin(Op::Eq, Expr::str(tok.to_lowercase()));
            // the column's own tokens first, then the generic pairs (a token already tested
            // is left out: the first match wins either way)
            let mut tokens: Vec<(String, f64)> = Vec::new();
            let pairs = BOOL_PAIRS
                .iter()
                .map(|(a, b)| (a.to_string(), b.to_string()));
            for (a, b) in std::iter::once((true_token.clone(), false_token.clone())).chain(pairs) {
                for (tok, v) in [(a, 1.0), (b, 0.0)] {
                    let tok = tok.to_lowercase();
                    if !tokens.iter().any(|(t, _)| *t == tok) {
                        tokens.push((tok, v));
                    }
                }
            }
            let mut whens = vec![(missing, Expr::Null)];
            whens.extend(tokens.iter().map(|(tok, v)| (is(tok), Expr::Num(*v))));
            // anything else is not a boolean: the cast fails as the native parser does
            // (PostgreSQL, DuckDB) or gives a number
            Expr::Case(whens, Some(Box::new(t.cast(SqlType::Double))))
        }
        FeatureKind::Categorical => Expr::when(missing, Expr::str(MISSING_LEVEL), t),
    }
}

/// The leaf index as nested `CASE`s, one per split.
fn nested_leaf(tree: &Tree, i: usize) -> Expr {
    let n = &tree.nodes[i];
    if n.is_leaf() {
        return Expr::Int(i as i64);
    }
    Expr::when(
        Expr::col(col(n.feature as usize)).le(Expr::Num(n.threshold)),
        nested_leaf(tree, n.left as usize),
        nested_leaf(tree, n.right as usize),
    )
}

/// The leaf index as one `WHEN` per leaf whose condition is the AND of its path's splits
/// (`x <= t` left, `x > t` right: the encoded values are never NULL or NaN).
fn flat_leaf(tree: &Tree) -> Expr {
    let mut whens = Vec::new();
    let mut stack = vec![(0usize, Vec::<Expr>::new())];
    while let Some((i, path)) = stack.pop() {
        let n = &tree.nodes[i];
        if n.is_leaf() {
            whens.push((Expr::all(path), Expr::Int(i as i64)));
            continue;
        }
        let x = Expr::col(col(n.feature as usize));
        let mut right = path.clone();
        right.push(x.clone().bin(Op::Gt, Expr::Num(n.threshold)));
        let mut left = path;
        left.push(x.le(Expr::Num(n.threshold)));
        stack.push((n.right as usize, right));
        stack.push((n.left as usize, left));
    }
    let last = whens.pop().map(|(_, v)| Box::new(v));
    Expr::Case(whens, last)
}

/// [`crate::segment::lifecycle::LifecycleRule::stage`] as a `CASE`.
fn lifecycle(l: &crate::segment::lifecycle::LifecycleRule, c: &dyn Fn(usize) -> Expr) -> Expr {
    let cfg = &l.config;
    let tenure = c(l.tenure_column).bin(Op::Mul, Expr::Num(cfg.tenure_unit_days));
    let mut whens = Vec::new();
    if let Some(f) = l.frequency_column {
        whens.push((
            c(f).le(Expr::Num(0.0)),
            Expr::str(LifecycleStage::Potential.as_str()),
        ));
    }
    whens.push((
        tenure.clone().le(Expr::Num(cfg.new_days)),
        Expr::str(LifecycleStage::New.as_str()),
    ));
    let mut decline = Vec::new();
    if let Some(r) = l.recency_column {
        decline.push(c(r).bin(Op::Gt, Expr::Num(cfg.decline_recency_days)));
    }
    if let Some(t) = l.trend_column {
        decline.push(
            c(t).bin(Op::Lt, Expr::Num(cfg.decline_trend))
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
