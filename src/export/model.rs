//! The scoring query of a bundle: raw customer table in → the columns `churn-score` writes out.
//!
//! Steps (each a `WITH` step reading the previous one, each built by one method of the private
//! `Plan`, which gathers once what they share: the bundle, its scorer (one tree or boosted
//! trees), the options, the encoded columns and inputs read, the id column):
//! 1. `text_and_input` → `text` and `input`: every input the model reads as trimmed text, then
//!    → number (missing tokens → NULL) or level (missing → `(missing)`), exactly as the native
//!    encoder parses cells;
//! 2. `encoded`: the encoded columns the trees, the segments, RFM and lifecycle rules test
//!    (median imputation, missing indicators, one-hot levels, the rare/unseen column);
//! 3. boosted trees only: `margin_*`, `link_*` and `calibrated` (`export::boosted`): the margin,
//!    σ in portable steps, the calibrated probability;
//! 4. `scored`: a tree's leaf (a nested `CASE` per split, or one AND-chain per leaf above the
//!    depth limit), the scaled clustering features, RFM class and lifecycle stage
//!    (`export::segments`);
//! 5. `distances` (models with segments): squared distance to every centroid, summed in the
//!    native order;
//! 6. `output`: a tree's per-leaf constants (calibration is folded into them, so no `EXP`/`LN`
//!    touches its probability), or boosted trees' probability with the calibration bin's interval;
//! 7. `nearest_segment` (models with segments): the `output` columns become the `nearest` step,
//!    which adds the nearest segment (ties to the lower index, as natively), and the final
//!    select names it;
//! 8. `risk_band` (models with a playbook): one more column of the probability in the final
//!    select.
//!
//! `name_id` then gives the id column its own name in the final select, and `comment` writes the
//! query's leading comment.

use super::boosted::{self, PROB, RAW};
use super::segments::{lifecycle, nearest_centroid, rfm_class, scaled};
use super::sql::{Dialect, Expr, Op, Query, Select, SqlType};
use super::{check_name, comment_text, ExportError};
use crate::bundle::Bundle;
use crate::features::{ColumnRole, InputEncoding, MISSING_LEVEL};
use crate::ingest::value::{BOOL_PAIRS, MISSING_TOKENS};
use crate::ingest::FeatureKind;
use crate::model::{Boosted, TreeModel};
use crate::segment::SegmentModel;

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
const RFM_CLASS: &str = "rfm_class";
const LIFECYCLE_STAGE: &str = "lifecycle_stage";

/// The per-leaf columns of the output, in order.
const LEAF_COLUMNS: [&str; 5] = [
    "churn_probability",
    "probability_low",
    "probability_high",
    "leaf_support",
    "predicted_churn",
];

fn val(i: usize) -> String {
    format!("_v{i}")
}
fn col(j: usize) -> String {
    format!("_c{j}")
}
fn z(f: usize) -> String {
    format!("_z{f}")
}
pub(super) fn dist(k: usize) -> String {
    format!("_d{k}")
}
/// Encoded column `j` as an expression.
pub(super) fn column(j: usize) -> Expr {
    Expr::col(col(j))
}

/// The SQL that scores the table `opts.table` with `bundle`.
pub fn model_query(
    bundle: &Bundle,
    version: &str,
    opts: &ModelExport,
) -> Result<String, ExportError> {
    let plan = Plan::new(bundle, version, opts)?;
    let (text, input) = plan.text_and_input();
    let mut steps = vec![
        ("text".to_string(), text),
        ("input".to_string(), input),
        ("encoded".to_string(), plan.encoded()?),
    ];
    let mut materialized = vec!["encoded".to_string(), "scored".to_string()];
    let mut from = "encoded".to_string();
    if let Scorer::Boosted { model, .. } = &plan.scorer {
        let mut carry = plan.ids.clone();
        carry.extend(plan.used.iter().map(|&j| col(j)));
        let b = boosted::probability_steps(
            model,
            &bundle.model.calibrator,
            &from,
            &carry,
            opts.max_case_depth,
        );
        from = b.steps.last().map(|(n, _)| n.clone()).expect("steps");
        steps.extend(b.steps);
        materialized.extend(b.materialized);
    }
    steps.push(("scored".to_string(), plan.scored(&from)));
    let from = match plan.distances() {
        Some(distances) => {
            steps.push(("distances".to_string(), distances));
            "distances"
        }
        None => "scored",
    };
    let (mut nearest, mut body) = plan.nearest_segment(plan.output(from));
    plan.risk_band(nearest.as_mut(), &mut body);
    steps.extend(nearest.map(|s| ("nearest".to_string(), s)));
    plan.name_id(&mut body);
    Query {
        steps,
        body,
        materialized,
    }
    .to_sql(opts.dialect, &plan.comment())
    .map_err(|reason| ExportError::Name {
        what: "a name in the query".into(),
        reason,
    })
}

/// What computes the probability.
enum Scorer<'a> {
    /// One tree: the leaf decides every output column.
    Tree {
        model: &'a TreeModel,
        /// Leaf node indices, ascending.
        leaves: Vec<usize>,
        /// One AND-chain per leaf instead of nested `CASE`s (the tree is deeper than the limit).
        flat: bool,
    },
    /// Boosted trees: the margin, σ and the calibration map ([`boosted`]).
    Boosted { model: &'a Boosted },
}

/// What every step of [`model_query`] reads, gathered once.
struct Plan<'a> {
    bundle: &'a Bundle,
    scorer: Scorer<'a>,
    version: &'a str,
    opts: &'a ModelExport,
    /// Encoded columns any step tests, ascending.
    used: Vec<usize>,
    /// The inputs those columns encode, ascending.
    inputs: Vec<usize>,
    /// `[_id]` when the bundle has an id column, else empty: passed through every step.
    ids: Vec<String>,
    /// Labels `scored` computes and later steps pass through (RFM class, lifecycle stage).
    labels: Vec<String>,
}

impl<'a> Plan<'a> {
    /// Check that `bundle` can be exported and gather what the steps read.
    fn new(
        bundle: &'a Bundle,
        version: &'a str,
        opts: &'a ModelExport,
    ) -> Result<Plan<'a>, ExportError> {
        // text from the command line and from the bundle's data never reaches the SQL raw:
        // names are checked here (a hostile --table such as "t\rDROP TABLE x;" would end the
        // comment that names it), literals and comment text are escaped where printed
        check_name(
            "--table: expected a table name (optionally schema.table)",
            &opts.table,
            true,
        )?;
        let enc = &bundle.encoder;
        let (scorer, splits): (Scorer, Vec<usize>) =
            match (bundle.model.single_tree(), bundle.model.boosted_trees()) {
                (Some(model), _) => {
                    let tree = &model.tree;
                    let leaves = (0..tree.nodes.len())
                        .filter(|&i| tree.nodes[i].is_leaf())
                        .collect();
                    let splits = tree
                        .nodes
                        .iter()
                        .filter(|n| !n.is_leaf())
                        .map(|n| n.feature as usize)
                        .collect();
                    let flat = tree.depth() > opts.max_case_depth;
                    (
                        Scorer::Tree {
                            model,
                            leaves,
                            flat,
                        },
                        splits,
                    )
                }
                (None, Some(model)) => {
                    let splits = model
                        .ensemble
                        .trees
                        .iter()
                        .flat_map(|t| t.nodes.iter().filter(|n| !n.is_leaf()))
                        .map(|n| n.feature as usize)
                        .collect();
                    (Scorer::Boosted { model }, splits)
                }
                (None, None) => {
                    return Err(ExportError::Bundle(
                        "the model is neither a tree nor boosted trees".into(),
                    ))
                }
            };
        let used = used_columns(splits, bundle.segments.as_ref());
        if let Some(&bad) = used.iter().find(|&&j| j >= enc.columns.len()) {
            return Err(ExportError::Bundle(format!(
                "encoded column {bad} does not exist (the encoder has {})",
                enc.columns.len()
            )));
        }
        let mut inputs: Vec<usize> = used.iter().map(|&j| enc.columns[j].input).collect();
        inputs.sort_unstable();
        inputs.dedup();
        for &i in &inputs {
            check_name(
                "the model's input column cannot be named in SQL (rename it in the data and retrain)",
                &enc.inputs[i].name,
                false,
            )?;
        }
        let ids = match &bundle.id_column {
            Some(id) => {
                check_name(
                    "the model's id column cannot be named in SQL (rename it in the data and retrain)",
                    id,
                    false,
                )?;
                vec![ID.to_string()]
            }
            None => Vec::new(),
        };
        let mut labels = Vec::new();
        if let Some(s) = &bundle.segments {
            if s.rfm.is_some() {
                labels.push(RFM_CLASS.to_string());
            }
            if s.lifecycle.is_some() {
                labels.push(LIFECYCLE_STAGE.to_string());
            }
        }
        Ok(Plan {
            bundle,
            scorer,
            version,
            opts,
            used,
            inputs,
            ids,
            labels,
        })
    }

    /// Steps `text` (every input trimmed as text) and `input` (parsed).
    fn text_and_input(&self) -> (Select, Select) {
        let mut text = Select::new(self.opts.table.clone());
        let mut input = Select::new("text");
        if let Some(id) = &self.bundle.id_column {
            text.item(Expr::col(id.clone()), ID);
            input.pass(&self.ids);
        }
        for &i in &self.inputs {
            let spec = &self.bundle.encoder.inputs[i];
            text.item(
                Expr::Func(
                    "TRIM",
                    vec![Expr::col(spec.name.clone()).cast(SqlType::Text)],
                ),
                val(i),
            );
            input.item(parse_input(&spec.kind, Expr::col(val(i))), val(i));
        }
        (text, input)
    }

    /// Step `encoded`: the encoded columns used.
    fn encoded(&self) -> Result<Select, ExportError> {
        let mut encoded = Select::new("input");
        encoded.pass(&self.ids);
        for &j in &self.used {
            encoded.item(self.encode(j)?, col(j));
        }
        Ok(encoded)
    }

    /// Encoded column `j` from its parsed input, as the native encoder computes it.
    fn encode(&self, j: usize) -> Result<Expr, ExportError> {
        let enc = &self.bundle.encoder;
        let c = &enc.columns[j];
        let v = Expr::col(val(c.input));
        let one_if = |cond: Expr| Expr::when(cond, Expr::Num(1.0), Expr::Num(0.0));
        Ok(match (&c.role, &enc.inputs[c.input].encoding) {
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
        })
    }

    /// The columns that decide the output, passed from `scored` to the output: the leaf of a
    /// tree; the raw and calibrated probabilities of boosted trees.
    fn decided(&self) -> Vec<String> {
        match self.scorer {
            Scorer::Tree { .. } => vec![LEAF.to_string()],
            Scorer::Boosted { .. } => vec![RAW.to_string(), PROB.to_string()],
        }
    }

    /// Step `scored`, reading step `from`: the leaf (or the probabilities, passed on), the
    /// scaled clustering features, RFM class and lifecycle stage.
    fn scored(&self, from: &str) -> Select {
        let mut scored = Select::new(from);
        scored.pass(&self.ids);
        match &self.scorer {
            Scorer::Tree { model, flat, .. } => {
                let tree = &model.tree;
                let split = |i: usize| {
                    let n = &tree.nodes[i];
                    (!n.is_leaf()).then_some(Split {
                        column: n.feature as usize,
                        threshold: n.threshold,
                        left: n.left as usize,
                        right: n.right as usize,
                    })
                };
                let leaf = |i: usize| Expr::Int(i as i64);
                scored.item(split_case(&split, &leaf, *flat), LEAF);
            }
            Scorer::Boosted { .. } => {
                scored.pass(&self.decided());
            }
        }
        if let Some(s) = &self.bundle.segments {
            for (f, feat) in s.features.iter().enumerate() {
                scored.item(scaled(feat), z(f));
            }
            if let Some(r) = &s.rfm {
                scored.item(rfm_class(r), RFM_CLASS);
            }
            if let Some(l) = &s.lifecycle {
                scored.item(lifecycle(l), LIFECYCLE_STAGE);
            }
        }
        scored
    }

    /// Step `distances` (models with segments): squared distance to every centroid.
    fn distances(&self) -> Option<Select> {
        let s = self.bundle.segments.as_ref()?;
        let mut ds = Select::new("scored");
        ds.pass(&self.ids).pass(&self.decided()).pass(&self.labels);
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
        Some(ds)
    }

    /// The output select, reading step `from`: the id and the probability columns (per-leaf
    /// constants of a tree).
    fn output(&self, from: &str) -> Select {
        let mut out = Select::new(from);
        if self.bundle.id_column.is_some() {
            out.item(Expr::col(ID), ID);
        }
        let columns = match &self.scorer {
            Scorer::Tree { model: m, .. } => {
                let constants: [&dyn Fn(usize) -> Expr; 5] = [
                    &|i| Expr::Num(m.scores[i].p),
                    &|i| Expr::Num(m.scores[i].low),
                    &|i| Expr::Num(m.scores[i].high),
                    &|i| Expr::Num(m.tree.nodes[i].n),
                    &|i| Expr::Bool(self.bundle.model.from_leaf(m, i).churn),
                ];
                constants.map(|f| self.per_leaf(f))
            }
            Scorer::Boosted { model } => {
                boosted::output_columns(model, self.bundle.model.threshold)
            }
        };
        for (name, e) in LEAF_COLUMNS.into_iter().zip(columns) {
            out.item(e, name);
        }
        out
    }

    /// With segments, `out` plus the nearest segment and the labels becomes step `nearest`,
    /// and the final select reads it, naming the segment: `(Some(nearest), final)`. Without,
    /// `(None, out)`.
    fn nearest_segment(&self, mut out: Select) -> (Option<Select>, Select) {
        let Some(s) = &self.bundle.segments else {
            return (None, out);
        };
        let k = s.centroids.len();
        out.item(nearest_centroid(k), SEGMENT);
        out.pass(&self.labels);
        let mut fin = Select::new("nearest");
        fin.pass(&self.ids);
        fin.pass(&LEAF_COLUMNS.map(String::from));
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
        fin.pass(&self.labels);
        (Some(out), fin)
    }

    /// With a playbook, the risk band: it depends on the probability only, so it is one more
    /// per-leaf constant of a tree in `body`, a `CASE` on the probability of boosted trees (and
    /// step `nearest`, if any, passes the leaf or the probability on).
    fn risk_band(&self, nearest: Option<&mut Select>, body: &mut Select) {
        let Some(pb) = &self.bundle.playbook else {
            return;
        };
        if let Some(nearest) = nearest {
            nearest.pass(&self.decided());
        }
        let bands = &pb.file.risk_bands;
        let band = match &self.scorer {
            Scorer::Tree { model, .. } => {
                self.per_leaf(&|i| Expr::str(bands.band(model.scores[i].p).as_str()))
            }
            Scorer::Boosted { .. } => {
                let p = || Expr::col(PROB);
                let name = |p: f64| Expr::str(bands.band(p).as_str());
                Expr::Case(
                    vec![
                        (p().bin(Op::Ge, Expr::Num(bands.high)), name(bands.high)),
                        (p().bin(Op::Ge, Expr::Num(bands.medium)), name(bands.medium)),
                    ],
                    Some(Box::new(name(f64::NEG_INFINITY))),
                )
            }
        };
        body.item(band, "risk_band");
    }

    /// The id under its own name, in the final select.
    fn name_id(&self, body: &mut Select) {
        if let Some(id) = &self.bundle.id_column {
            if let Some(first) = body.items.first_mut() {
                first.1 = id.clone();
            }
        }
    }

    /// The query's leading comment: model, version, shape, dialect, input and output.
    fn comment(&self) -> String {
        let d = self.opts.dialect;
        let shape = match &self.scorer {
            Scorer::Tree { model, flat, .. } => format!(
                "{} leaves, depth {}{}",
                model.tree.n_leaves(),
                model.tree.depth(),
                if *flat {
                    ", one condition chain per leaf"
                } else {
                    ""
                }
            ),
            Scorer::Boosted { model } => {
                let e = &model.ensemble;
                let depth = e.trees.iter().map(|t| t.depth()).max().unwrap_or(0);
                format!(
                    "{} boosted trees, {} leaves, depth up to {depth}{}, {} calibration",
                    e.trees.len(),
                    e.n_leaves(),
                    if depth > self.opts.max_case_depth {
                        ", one condition chain per leaf"
                    } else {
                        ""
                    },
                    self.bundle.model.calibrator.method()
                )
            }
        };
        format!(
            "churn model '{}' version {} ({shape}), {} dialect.\n\
             Input: {} in the training layout (text or typed columns; NULL and the texts {} are missing).\n\
             Output: the columns churn-score writes, bit-identical probabilities.",
            comment_text(&self.bundle.name),
            comment_text(self.version),
            d.name(),
            self.opts.table,
            MISSING_TOKENS
                .iter()
                .map(|t| d.string(t))
                .collect::<Vec<_>>()
                .join(" "),
        )
    }

    /// `f(leaf)` chosen by the leaf (single trees only).
    fn per_leaf(&self, f: &dyn Fn(usize) -> Expr) -> Expr {
        let leaves: &[usize] = match &self.scorer {
            Scorer::Tree { leaves, .. } => leaves,
            Scorer::Boosted { .. } => &[],
        };
        choose(Expr::col(LEAF), leaves.iter().map(|&i| (i, f(i))).collect())
    }
}

/// The encoded columns the splits, the clustering features and the RFM and lifecycle rules
/// read, ascending and without repeats.
fn used_columns(splits: Vec<usize>, segments: Option<&SegmentModel>) -> Vec<usize> {
    let mut used = splits;
    if let Some(s) = segments {
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
    used
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

/// One split of a tree: `column <= threshold` goes to `left`, else to `right`.
pub(super) struct Split {
    pub column: usize,
    pub threshold: f64,
    pub left: usize,
    pub right: usize,
}

/// What a row reaches in a tree (given by `split`: a node's split, `None` at leaves) as an
/// expression: `leaf(i)` of its leaf `i`, as nested `CASE`s, one per split, or (`flat`) as one
/// `WHEN` per leaf whose condition is the AND of its path's splits (`x <= t` left, `x > t`
/// right: the encoded values are never NULL or NaN).
pub(super) fn split_case(
    split: &dyn Fn(usize) -> Option<Split>,
    leaf: &dyn Fn(usize) -> Expr,
    flat: bool,
) -> Expr {
    if !flat {
        return nested(split, leaf, 0);
    }
    let mut whens = Vec::new();
    let mut stack = vec![(0usize, Vec::<Expr>::new())];
    while let Some((i, path)) = stack.pop() {
        let Some(n) = split(i) else {
            whens.push((Expr::all(path), leaf(i)));
            continue;
        };
        let x = column(n.column);
        let mut right = path.clone();
        right.push(x.clone().bin(Op::Gt, Expr::Num(n.threshold)));
        let mut left = path;
        left.push(x.le(Expr::Num(n.threshold)));
        stack.push((n.right, right));
        stack.push((n.left, left));
    }
    let last = whens.pop().map(|(_, v)| Box::new(v));
    Expr::Case(whens, last)
}

fn nested(split: &dyn Fn(usize) -> Option<Split>, leaf: &dyn Fn(usize) -> Expr, i: usize) -> Expr {
    match split(i) {
        None => leaf(i),
        Some(n) => Expr::when(
            column(n.column).le(Expr::Num(n.threshold)),
            nested(split, leaf, n.left),
            nested(split, leaf, n.right),
        ),
    }
}
