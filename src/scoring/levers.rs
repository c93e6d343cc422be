//! Levers: changes to the playbook's actionable inputs (contract, payment method, …) that lower
//! a customer's churn risk. Served per request, so the tree walk allocates nothing per node.

use super::Scorer;
use crate::features::InputEncoding;
use crate::ingest::FeatureKind;
use crate::model::Model;
use serde::Serialize;

/// An actionable input with its current value and alternatives (value, columns set to 1).
struct LeverOption<'a> {
    input: usize,
    current: &'a str,
    alternatives: Vec<(&'a str, Option<usize>)>,
    clear: Vec<usize>,
}

/// Most actionable inputs the lever walk handles (more: single changes only).
const MAX_LEVER_INPUTS: usize = 16;

/// A choice of values: `(option, alternative)` pairs.
type Choice = Vec<(usize, usize)>;

/// "No alternative required" in [`Cons`].
const NONE: u8 = u8::MAX;

/// Per option: the alternative it must take ([`NONE`] = free) and a bitmask of the
/// alternatives it must not take; a Copy array, so the walk allocates nothing.
type Cons = [(u8, u64); MAX_LEVER_INPUTS];

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

impl Scorer {
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
        let search = LeverSearch {
            scorer: self,
            model,
            row,
            opts,
        };
        let mut buf = row.to_vec();
        let mut found = search.single_changes(&mut buf);
        if let Some(choice) = search.best_combination() {
            found.push((search.apply(&choice, &mut buf), choice));
        }
        found.retain(|(p, _)| *p < before - 1e-9);
        // best overall (fewest changes among equal risk), then the best single changes
        found.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.len().cmp(&b.1.len())));
        search.levers(&found, before)
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
                InputEncoding::Numeric {
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
                InputEncoding::OneHot {
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
}

/// The lever search for one customer: the row and the options of its actionable inputs.
struct LeverSearch<'s, 'r> {
    scorer: &'s Scorer,
    model: &'s Model,
    row: &'r [f64],
    /// Actionable inputs with at least one alternative.
    opts: Vec<LeverOption<'s>>,
}

impl<'s> LeverSearch<'s, '_> {
    /// Risk of the row with `choice` applied (`buf` is scratch of the row's width).
    fn apply(&self, choice: &[(usize, usize)], buf: &mut [f64]) -> f64 {
        buf.copy_from_slice(self.row);
        for &(oi, ai) in choice {
            let o = &self.opts[oi];
            for &c in &o.clear {
                buf[c] = 0.0;
            }
            if let Some(c) = o.alternatives[ai].1 {
                buf[c] = 1.0;
            }
        }
        self.model.predict(buf).probability
    }

    /// Every change of one input to another value, with its risk.
    fn single_changes(&self, buf: &mut [f64]) -> Vec<(f64, Choice)> {
        let mut found = Vec::new();
        for (oi, o) in self.opts.iter().enumerate() {
            for (ai, alt) in o.alternatives.iter().enumerate() {
                if alt.0 != o.current {
                    found.push((self.apply(&[(oi, ai)], buf), vec![(oi, ai)]));
                }
            }
        }
        found
    }

    /// The lowest-risk leaf reachable through the tree, then a concrete choice of several
    /// changes for it (`None` with a single option, or when one change suffices).
    fn best_combination(&self) -> Option<Choice> {
        if self.opts.len() <= 1 {
            return None;
        }
        let cons = self.lowest_reachable_leaf(&self.column_options())?;
        self.concrete_choice(&cons).filter(|c| c.len() > 1)
    }

    /// Encoded column → (option, alternative it selects).
    fn column_options(&self) -> Vec<Option<(usize, usize)>> {
        let mut col_opt = vec![None; self.row.len()];
        for (oi, o) in self.opts.iter().enumerate() {
            for (ai, (_, col)) in o.alternatives.iter().enumerate() {
                if let Some(c) = col {
                    col_opt[*c] = Some((oi, ai));
                }
            }
        }
        col_opt
    }

    /// Walk the tree following the row on other inputs and both branches on actionable
    /// columns; the constraints leading to the lowest-risk leaf. `None` when the options do
    /// not fit [`Cons`].
    fn lowest_reachable_leaf(&self, col_opt: &[Option<(usize, usize)>]) -> Option<Cons> {
        let fits = self.opts.len() <= MAX_LEVER_INPUTS
            && self.opts.iter().all(|o| o.alternatives.len() < 64);
        if !fits {
            return None;
        }
        let nodes = &self.model.tree.nodes;
        let mut best: Option<(f64, Cons)> = None;
        let mut stack: Vec<(usize, Cons)> = vec![(0, [(NONE, 0u64); MAX_LEVER_INPUTS])];
        while let Some((i, cons)) = stack.pop() {
            let n = &nodes[i];
            if n.is_leaf() {
                let p = self.model.scores[i].p;
                if best.as_ref().is_none_or(|b| p < b.0) {
                    best = Some((p, cons));
                }
                continue;
            }
            let f = n.feature as usize;
            let Some((oi, ai)) = col_opt[f] else {
                let next = if self.row[f] <= n.threshold {
                    n.left
                } else {
                    n.right
                };
                stack.push((next as usize, cons));
                continue;
            };
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
        best.map(|(_, cons)| cons)
    }

    /// Values meeting `cons`: the required one, else the current one if allowed, else the
    /// first allowed; the changes from the current values, or `None` if no value is allowed.
    fn concrete_choice(&self, cons: &Cons) -> Option<Choice> {
        let mut choice = Vec::new();
        for (oi, o) in self.opts.iter().enumerate() {
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
                None => return None,
            }
        }
        Some(choice)
    }

    /// The levers to show from the sorted `found`: the best one, then up to three in all with
    /// the best single changes; repeats are skipped.
    fn levers(&self, found: &[(f64, Choice)], before: f64) -> Vec<Lever<'s>> {
        let mut out: Vec<Lever<'s>> = Vec::new();
        if let Some((p, c)) = found.first() {
            self.push_lever(&mut out, *p, c, before);
        }
        for (p, c) in found.iter().filter(|f| f.1.len() == 1) {
            if out.len() >= 3 {
                break;
            }
            self.push_lever(&mut out, *p, c, before);
        }
        out
    }

    /// Add the lever of `choice` (risk `p`) unless `out` already has the same changes.
    fn push_lever(&self, out: &mut Vec<Lever<'s>>, p: f64, choice: &[(usize, usize)], before: f64) {
        let inputs = &self.scorer.bundle.encoder.inputs;
        let changes: Vec<Change> = choice
            .iter()
            .map(|&(oi, ai)| Change {
                field: &inputs[self.opts[oi].input].name,
                from: self.opts[oi].current,
                to: self.opts[oi].alternatives[ai].0,
            })
            .collect();
        if out.iter().any(|l| l.changes == changes) {
            return;
        }
        out.push(Lever {
            changes,
            risk_before: before,
            risk_after: p,
        });
    }
}
