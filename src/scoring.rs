//! The scoring core: raw customer fields → encoded row → calibrated prediction, warnings and
//! reasons. `churn-score` (batch) and `churn-serve` (HTTP) both call [`Scorer`].

use crate::bundle::{Bundle, LoadedBundle};
use crate::features::{ColumnRole, EncodeError, Warning};
use crate::ingest::FeatureKind;
use crate::io::{RawTable, RawValue};
use crate::model::{parallel_map, Prediction};
use serde::{Deserialize, Serialize};

/// Errors of the scoring layer.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ScoreError {
    /// A feature the model needs is absent.
    #[error("field '{field}' is required by the model and missing")]
    MissingField {
        /// Field.
        field: String,
    },
    /// A value has the wrong type.
    #[error(transparent)]
    BadValue(#[from] EncodeError),
    /// Columns the model needs are absent from a batch file.
    #[error(
        "{path}: missing columns required by the model: {missing}; available columns: {available}"
    )]
    MissingColumns {
        /// File.
        path: String,
        /// Missing columns.
        missing: String,
        /// Available columns.
        available: String,
    },
    /// A bad row in a batch file.
    #[error("{path}: row {row}: {source}")]
    BadRow {
        /// File.
        path: String,
        /// 1-based data row.
        row: usize,
        /// The row's error.
        source: Box<ScoreError>,
    },
}

impl ScoreError {
    /// The field the error is about, if any.
    pub fn field(&self) -> Option<&str> {
        match self {
            ScoreError::MissingField { field } => Some(field),
            ScoreError::BadValue(e) => Some(&e.field),
            ScoreError::BadRow { source, .. } => source.field(),
            ScoreError::MissingColumns { .. } => None,
        }
    }
}

/// One step of a decision path, in the input's own terms.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Reason {
    /// Readable condition, e.g. `Contract is Month-to-month` or `tenure ≤ 5.5`.
    pub condition: String,
    /// Input field tested.
    pub field: String,
    /// Change in calibrated churn probability from the parent node to the child.
    pub effect: f64,
}

/// A scored customer.
#[derive(Debug, Clone, PartialEq)]
pub struct Scored<'a> {
    /// The prediction.
    pub prediction: Prediction,
    /// Warnings about the input.
    pub warnings: Vec<Warning>,
    /// Segment, RFM class and lifecycle stage (when the model has segments).
    pub segment: Option<crate::segment::Assignment<'a>>,
    /// Risk band, treatment group and ranked recommendations (when the model has a playbook).
    pub advice: Option<crate::playbook::Advice<'a>>,
    /// The three decision-path steps that raised the risk most (when the model has a playbook).
    pub reasons: Vec<&'a Reason>,
}

/// An actionable input with its current value and alternatives (value, columns set to 1).
struct LeverOption<'a> {
    input: usize,
    current: &'a str,
    alternatives: Vec<(&'a str, Option<usize>)>,
    clear: Vec<usize>,
}

/// Most actionable inputs the lever walk handles (more: single changes only).
const MAX_LEVER_INPUTS: usize = 16;

/// One change of an actionable input (text borrowed from the bundle).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Change<'a> {
    /// Input field.
    pub field: &'a str,
    /// Current value.
    pub from: &'a str,
    /// Suggested value.
    pub to: &'a str,
}

/// Changes to actionable inputs that lower the churn risk. Serialised with a `text` field, its
/// [`Display`](std::fmt::Display) form: `change Contract to Two year: risk 0.62 → 0.18`.
#[derive(Debug, Clone, PartialEq)]
pub struct Lever<'a> {
    /// The changes.
    pub changes: Vec<Change<'a>>,
    /// Risk now.
    pub risk_before: f64,
    /// Risk after the changes.
    pub risk_after: f64,
}

impl Serialize for Lever<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut st = s.serialize_struct("Lever", 4)?;
        st.serialize_field("changes", &self.changes)?;
        st.serialize_field("risk_before", &self.risk_before)?;
        st.serialize_field("risk_after", &self.risk_after)?;
        st.serialize_field("text", &format_args!("{self}"))?;
        st.end()
    }
}

impl std::fmt::Display for Lever<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("change ")?;
        for (i, c) in self.changes.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{} to {}", c.field, c.to)?;
        }
        write!(f, ": risk {:.2} → {:.2}", self.risk_before, self.risk_after)
    }
}

/// Which parts of a result to compute beyond the probability.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Detail {
    /// Segment, RFM class and lifecycle stage.
    pub segments: bool,
    /// Playbook advice (risk band, treatment, recommendations) and the reasons behind it.
    pub advice: bool,
}

impl Detail {
    /// Everything the bundle can tell.
    pub const FULL: Detail = Detail {
        segments: true,
        advice: true,
    };
}

/// A loaded model ready to score.
#[derive(Debug, Clone)]
pub struct Scorer {
    /// The bundle.
    pub bundle: Bundle,
    /// Content version of the bundle.
    pub version: String,
    /// The reason for reaching each node from its parent (`None` for the root), built once so
    /// scoring formats no text.
    edges: Vec<Option<Reason>>,
    /// Input name → position.
    inputs: crate::util::FxHashMap<String, usize>,
}

impl Scorer {
    /// Wrap a loaded bundle.
    pub fn new(loaded: LoadedBundle) -> Scorer {
        let mut s = Scorer {
            bundle: loaded.bundle,
            version: loaded.version,
            edges: Vec::new(),
            inputs: Default::default(),
        };
        s.inputs = s
            .bundle
            .encoder
            .inputs
            .iter()
            .enumerate()
            .map(|(i, spec)| (spec.name.clone(), i))
            .collect();
        let nodes = &s.bundle.model.tree.nodes;
        let mut edges = vec![None; nodes.len()];
        for (i, n) in nodes.iter().enumerate() {
            if !n.is_leaf() {
                edges[n.left as usize] = Some(s.reason_step(i, n.left as usize));
                edges[n.right as usize] = Some(s.reason_step(i, n.right as usize));
            }
        }
        s.edges = edges;
        s
    }

    fn edge(&self, child: usize) -> &Reason {
        self.edges[child]
            .as_ref()
            .expect("every non-root node has a parent edge")
    }

    /// Position of input field `name` among the model's inputs.
    pub fn input_index(&self, name: &str) -> Option<usize> {
        self.inputs.get(name).copied()
    }

    /// Names of the input fields the model needs.
    pub fn input_names(&self) -> impl Iterator<Item = &str> {
        self.bundle.encoder.inputs.iter().map(|i| i.name.as_str())
    }

    /// Encode one customer. `get(i)` returns input `i`'s value, or `None` when the field is absent.
    pub fn encode<'a>(
        &self,
        get: impl Fn(usize) -> Option<RawValue<'a>>,
        warnings: &mut Vec<Warning>,
    ) -> Result<Vec<f64>, ScoreError> {
        let mut row = vec![0.0; self.bundle.encoder.width()];
        self.encode_into(get, &mut row, warnings)?;
        Ok(row)
    }

    /// Encode one customer into `row` (of the encoder's width; every cell is overwritten).
    pub fn encode_into<'a>(
        &self,
        get: impl Fn(usize) -> Option<RawValue<'a>>,
        row: &mut [f64],
        warnings: &mut Vec<Warning>,
    ) -> Result<(), ScoreError> {
        let enc = &self.bundle.encoder;
        row.fill(0.0);
        for (i, spec) in enc.inputs.iter().enumerate() {
            let v = get(i).ok_or_else(|| ScoreError::MissingField {
                field: spec.name.clone(),
            })?;
            enc.encode_cell(i, v, row, warnings)?;
        }
        Ok(())
    }

    /// Score one customer.
    pub fn score<'a>(
        &self,
        get: impl Fn(usize) -> Option<RawValue<'a>>,
    ) -> Result<Scored<'_>, ScoreError> {
        let mut warnings = Vec::new();
        let row = self.encode(get, &mut warnings)?;
        Ok(self.score_encoded(&row, warnings, None))
    }

    /// Replace the bundle's playbook (validated against this model).
    pub fn set_playbook(
        &mut self,
        file: crate::playbook::PlaybookFile,
        source: &str,
    ) -> Result<(), crate::playbook::PlaybookError> {
        let pb = crate::playbook::Playbook::compile(file, &self.bundle.encoder, source)?;
        self.bundle.playbook = Some(pb);
        Ok(())
    }

    /// Score an encoded row; `customer_id` drives the control-group assignment.
    pub fn score_encoded(
        &self,
        row: &[f64],
        warnings: Vec<Warning>,
        customer_id: Option<&str>,
    ) -> Scored<'_> {
        self.score_encoded_with(row, warnings, customer_id, Detail::FULL)
    }

    /// Score an encoded row computing only the parts `detail` asks for (the probability always).
    pub fn score_encoded_with(
        &self,
        row: &[f64],
        warnings: Vec<Warning>,
        customer_id: Option<&str>,
        detail: Detail,
    ) -> Scored<'_> {
        let prediction = self.bundle.model.predict(row);
        // the playbook's rules may test the segment, so advice implies segments
        let segment = if detail.segments || detail.advice {
            self.bundle.segments.as_ref().map(|s| s.assign(row))
        } else {
            None
        };
        let playbook = self.bundle.playbook.as_ref().filter(|_| detail.advice);
        let reasons = if playbook.is_some() {
            self.top_reasons(row, 3)
        } else {
            Vec::new()
        };
        let advice = playbook.map(|pb| {
            let top: Vec<&str> = reasons
                .iter()
                .filter(|r| r.effect > 0.0)
                .take(2)
                .map(|r| r.condition.as_str())
                .collect();
            pb.advise(&crate::playbook::Context {
                row,
                probability: prediction.probability,
                segment: segment.as_ref().map(|s| s.segment),
                rfm_class: segment.as_ref().and_then(|s| s.rfm_class),
                lifecycle: segment.as_ref().and_then(|s| s.lifecycle_stage),
                customer_id,
                reasons: &top,
            })
        });
        Scored {
            prediction,
            warnings,
            segment,
            advice,
            reasons,
        }
    }

    /// Current value and the alternatives of an actionable input.
    fn alternatives(&self, input: usize, row: &[f64]) -> LeverOption<'_> {
        let spec = &self.bundle.encoder.inputs[input];
        match (&spec.kind, &spec.encoding) {
            (
                FeatureKind::Boolean {
                    true_token,
                    false_token,
                },
                crate::features::InputEncoding::Numeric {
                    column,
                    missing_column,
                    ..
                },
            ) => {
                let cur = if row[*column] != 0.0 {
                    true_token
                } else {
                    false_token
                };
                let mut clear = vec![*column];
                clear.extend(missing_column);
                LeverOption {
                    input,
                    current: cur,
                    alternatives: vec![(true_token, Some(*column)), (false_token, None)],
                    clear,
                }
            }
            (
                _,
                crate::features::InputEncoding::OneHot {
                    levels,
                    first_column,
                    other_column,
                },
            ) => {
                let cur = levels
                    .iter()
                    .enumerate()
                    .find(|(i, _)| row[first_column + i] != 0.0)
                    .map_or("other", |(_, l)| l.as_str());
                let mut clear: Vec<usize> = (0..levels.len()).map(|i| first_column + i).collect();
                clear.push(*other_column);
                let alts = levels
                    .iter()
                    .enumerate()
                    .filter(|(_, l)| *l != crate::features::MISSING_LEVEL)
                    .map(|(i, l)| (l.as_str(), Some(first_column + i)))
                    .collect();
                LeverOption {
                    input,
                    current: cur,
                    alternatives: alts,
                    clear,
                }
            }
            _ => LeverOption {
                input,
                current: "",
                alternatives: vec![],
                clear: vec![],
            },
        }
    }

    /// Levers: the lowest-risk outcomes reachable by changing only the playbook's actionable
    /// inputs. A walk of the tree that follows the customer's own values on every other input
    /// and both branches on actionable ones finds the lowest-risk reachable leaf; a concrete
    /// choice of values for it is then re-scored. Returns that best combination and the best
    /// single changes, lowest risk first; only levers that lower the risk.
    pub fn levers(&self, row: &[f64]) -> Vec<Lever<'_>> {
        let Some(pb) = &self.bundle.playbook else {
            return Vec::new();
        };
        let model = &self.bundle.model;
        let before = model.predict(row).probability;
        let opts: Vec<LeverOption> = pb
            .actionable_inputs
            .iter()
            .map(|&i| self.alternatives(i, row))
            .filter(|o| !o.alternatives.is_empty())
            .collect();
        if opts.is_empty() {
            return Vec::new();
        }
        let mut found: Vec<(f64, Vec<(usize, usize)>)> = Vec::new(); // (risk, [(option, alternative)])
        let apply = |choice: &[(usize, usize)], r: &mut Vec<f64>| -> f64 {
            r.copy_from_slice(row);
            for &(oi, ai) in choice {
                let o = &opts[oi];
                for &c in &o.clear {
                    r[c] = 0.0;
                }
                if let Some(c) = o.alternatives[ai].1 {
                    r[c] = 1.0;
                }
            }
            model.predict(r).probability
        };
        let is_current = |oi: usize, ai: usize| opts[oi].alternatives[ai].0 == opts[oi].current;
        let mut buf = row.to_vec();
        // single changes
        for (oi, o) in opts.iter().enumerate() {
            for ai in 0..o.alternatives.len() {
                if !is_current(oi, ai) {
                    found.push((apply(&[(oi, ai)], &mut buf), vec![(oi, ai)]));
                }
            }
        }
        // the lowest-risk leaf reachable through the tree, then a concrete choice for it
        if opts.len() > 1 {
            // encoded column → (option, alternative it selects)
            let mut col_opt: Vec<Option<(usize, usize)>> = vec![None; row.len()];
            for (oi, o) in opts.iter().enumerate() {
                for (ai, (_, col)) in o.alternatives.iter().enumerate() {
                    if let Some(c) = col {
                        col_opt[*c] = Some((oi, ai));
                    }
                }
            }
            // per option: the alternative it must take (NONE = free) and a bitmask of the
            // alternatives it must not take; a Copy array, so the walk allocates nothing
            const NONE: u8 = u8::MAX;
            type Cons = [(u8, u64); MAX_LEVER_INPUTS];
            let fits =
                opts.len() <= MAX_LEVER_INPUTS && opts.iter().all(|o| o.alternatives.len() < 64);
            let mut best: Option<(f64, Cons)> = None;
            let mut stack: Vec<(usize, Cons)> = Vec::new();
            if fits {
                stack.push((0, [(NONE, 0u64); MAX_LEVER_INPUTS]));
            }
            let nodes = &model.tree.nodes;
            while let Some((i, cons)) = stack.pop() {
                let n = &nodes[i];
                if n.is_leaf() {
                    let p = model.scores[i].p;
                    if best.as_ref().is_none_or(|b| p < b.0) {
                        best = Some((p, cons));
                    }
                    continue;
                }
                let f = n.feature as usize;
                match col_opt[f] {
                    None => {
                        let next = if row[f] <= n.threshold {
                            n.left
                        } else {
                            n.right
                        };
                        stack.push((next as usize, cons));
                    }
                    Some((oi, ai)) => {
                        // one-hot / boolean column: right (> t) selects `ai`, left excludes it
                        let (must, not) = cons[oi];
                        let bit = 1u64 << ai;
                        if (must == NONE || must as usize == ai) && not & bit == 0 {
                            let mut c = cons;
                            c[oi].0 = ai as u8;
                            stack.push((n.right as usize, c));
                        }
                        if must as usize != ai {
                            let mut c = cons;
                            c[oi].1 |= bit;
                            stack.push((n.left as usize, c));
                        }
                    }
                }
            }
            if let Some((_, cons)) = best {
                let mut choice = Vec::new();
                let mut feasible = true;
                for (oi, o) in opts.iter().enumerate() {
                    let (must, not) = cons[oi];
                    let allowed = |a: usize| not & (1u64 << a) == 0;
                    let cur = o.alternatives.iter().position(|a| a.0 == o.current);
                    let pick = if must != NONE {
                        Some(must as usize)
                    } else if cur.is_some_and(allowed) {
                        cur
                    } else {
                        (0..o.alternatives.len()).find(|&a| allowed(a))
                    };
                    match pick {
                        Some(ai) if Some(ai) != cur => choice.push((oi, ai)),
                        Some(_) => {}
                        None => feasible = false,
                    }
                }
                if feasible && choice.len() > 1 {
                    found.push((apply(&choice, &mut buf), choice));
                }
            }
        }
        found.retain(|(p, _)| *p < before - 1e-9);
        // best overall (fewest changes among equal risk), then the best single changes
        found.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.len().cmp(&b.1.len())));
        let mut out: Vec<Lever<'_>> = Vec::new();
        let push = |out: &mut Vec<_>, p: f64, choice: &[(usize, usize)]| {
            let changes: Vec<Change> = choice
                .iter()
                .map(|&(oi, ai)| Change {
                    field: &self.bundle.encoder.inputs[opts[oi].input].name,
                    from: opts[oi].current,
                    to: opts[oi].alternatives[ai].0,
                })
                .collect();
            if out.iter().any(|l: &Lever| l.changes == changes) {
                return;
            }
            out.push(Lever {
                changes,
                risk_before: before,
                risk_after: p,
            });
        };
        if let Some((p, c)) = found.first() {
            push(&mut out, *p, c);
        }
        for (p, c) in found.iter().filter(|f| f.1.len() == 1) {
            if out.len() >= 3 {
                break;
            }
            push(&mut out, *p, c);
        }
        out
    }

    /// The step from `parent` to `child` of a decision path as a reason.
    fn reason_step(&self, parent: usize, child: usize) -> Reason {
        let m = &self.bundle.model;
        let node = &m.tree.nodes[parent];
        let left = node.left as usize == child;
        let (condition, field) = self.describe(node.feature as usize, node.threshold, left);
        Reason {
            condition,
            field,
            effect: m.scores[child].p - m.scores[parent].p,
        }
    }

    /// The decision path of an encoded row as readable reasons, root first.
    pub fn reasons(&self, row: &[f64]) -> Vec<&Reason> {
        let path = self.bundle.model.tree.path(row);
        path[1..].iter().map(|&c| self.edge(c)).collect()
    }

    /// The `n` decision-path steps that raised the risk most, highest first.
    pub fn top_reasons(&self, row: &[f64], n: usize) -> Vec<&Reason> {
        let path = self.bundle.model.tree.path(row);
        let mut steps: Vec<&Reason> = path[1..].iter().map(|&c| self.edge(c)).collect();
        // stable: equal effects keep root-first order
        steps.sort_by(|a, b| b.effect.total_cmp(&a.effect));
        steps.truncate(n);
        steps
    }

    /// Readable form of `column <= threshold` (left) or its negation (right).
    pub fn describe(&self, column: usize, threshold: f64, left: bool) -> (String, String) {
        let enc = &self.bundle.encoder;
        let col = &enc.columns[column];
        let input = &enc.inputs[col.input];
        let name = input.name.clone();
        let text = match (&col.role, &input.kind) {
            (
                ColumnRole::Value,
                FeatureKind::Boolean {
                    true_token,
                    false_token,
                },
            ) => {
                format!("{name} is {}", if left { false_token } else { true_token })
            }
            (ColumnRole::Value, _) => format!(
                "{name} {} {}",
                if left { "≤" } else { ">" },
                crate::util::fmt_num(threshold)
            ),
            (ColumnRole::Missing, _) => {
                format!("{name} is {}", if left { "present" } else { "missing" })
            }
            (ColumnRole::Level { level }, _) => {
                format!("{name} is {}{level}", if left { "not " } else { "" })
            }
            (ColumnRole::Other, _) => format!(
                "{name} is {}",
                if left {
                    "a common value"
                } else {
                    "a rare or unseen value"
                }
            ),
        };
        (text, name)
    }

    /// Map the model's inputs to the columns of a batch table.
    pub fn bind(&self, table: &RawTable) -> Result<Vec<usize>, ScoreError> {
        let mut idx = Vec::new();
        let mut missing = Vec::new();
        for name in self.input_names() {
            match table.index_of(name) {
                Some(i) => idx.push(i),
                None => missing.push(format!("'{name}'")),
            }
        }
        if !missing.is_empty() {
            return Err(ScoreError::MissingColumns {
                path: table.path.display().to_string(),
                missing: missing.join(", "),
                available: table.column_list(),
            });
        }
        Ok(idx)
    }

    /// Score every row of a table in chunks of `chunk` rows over `threads` threads. Each chunk
    /// gets a collector from `init(rows_in_chunk)`, and `keep(collector, row, result)` stores what
    /// the caller needs from each row's result on the worker thread, so full results never pile
    /// up. Collectors come back in input order. Errors carry the 1-based row number.
    #[allow(clippy::too_many_arguments)]
    pub fn score_table<'s, C: Send>(
        &'s self,
        table: &RawTable,
        threads: usize,
        chunk: usize,
        detail: Detail,
        init: impl Fn(usize) -> C + Sync,
        keep: impl Fn(&mut C, usize, Result<Scored<'s>, ScoreError>) + Sync,
    ) -> Result<Vec<C>, ScoreError> {
        let bind = self.bind(table)?;
        let id_col = self
            .bundle
            .id_column
            .as_deref()
            .and_then(|c| table.index_of(c));
        let chunk = chunk.max(1);
        let nchunks = table.nrows.div_ceil(chunk);
        let path = table.path.display().to_string();
        let width = self.bundle.encoder.width();
        let parts = parallel_map(
            nchunks,
            threads,
            |c| {
                let lo = c * chunk;
                let hi = (lo + chunk).min(table.nrows);
                let mut row = vec![0.0; width];
                let mut out = init(hi - lo);
                for r in lo..hi {
                    {
                        let mut warnings = Vec::new();
                        // the id only drives the control group, i.e. the advice
                        let id = id_col
                            .filter(|_| detail.advice)
                            .and_then(|c| table.columns[c].data.get(r).text());
                        let res = self
                            .encode_into(
                                |i| Some(table.columns[bind[i]].data.get(r)),
                                &mut row,
                                &mut warnings,
                            )
                            .map(|()| {
                                self.score_encoded_with(&row, warnings, id.as_deref(), detail)
                            })
                            .map_err(|e| ScoreError::BadRow {
                                path: path.clone(),
                                row: r + 1,
                                source: Box::new(e),
                            });
                        keep(&mut out, r, res);
                    }
                }
                out
            },
            &|| {},
        );
        Ok(parts)
    }
}
