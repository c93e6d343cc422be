//! Levers: changes to the playbook's actionable inputs (contract, payment method, …) that lower
//! a customer's churn risk. Served per request, so the tree walk allocates nothing per node.
//!
//! A lever only proposes values that occur in training together with the customer's other
//! values ([`LevelSupport`](crate::features::LevelSupport)), and its `risk_after` is the
//! model's risk for customers like this one with the new values: an association learned from
//! data, not a promised effect of making the change. The saving a recommendation expects comes
//! from the playbook's save rate, not from the lever.
//!
//! Single trees are searched by walking the tree; boosted trees by ranking combinations
//! (exhaustively when there are few, greedily otherwise; see `searched_combination`) with the
//! row's margin under every combination tabulated once per request
//! ([`ChoiceTables`]), or by re-scoring each when the tables would be too large. Either way
//! every lever's `risk_after` is the model's exact prediction for the changed row (re-walking
//! only the trees whose path tests a changed column, [`RowPaths`]).

use super::Scorer;
use crate::features::InputEncoding;
use crate::ingest::FeatureKind;
use crate::model::boost::{ChoiceTables, RowPaths};
use crate::model::{Model, TreeModel};
use serde::Serialize;

mod boosted;

/// An actionable input with its current value and alternatives (value, column set to 1,
/// support state).
struct LeverOption<'a> {
    input: usize,
    current: &'a str,
    alternatives: Vec<(&'a str, Option<usize>, u32)>,
    clear: Vec<usize>,
}

/// Most reachable leaves tried, lowest risk first, before the combination search gives up.
const MAX_LEAVES_TRIED: usize = 256;
/// Most value assignments the concrete-choice search visits for one customer.
const MAX_CHOICE_STEPS: usize = 4096;

/// Boosted models without choice tables: tree evaluations one customer's exhaustive
/// combination search may take (combinations × trees); past it the search is greedy. 300
/// trees → 218 combinations, so a request stays well under a millisecond.
const MAX_TREE_EVALUATIONS: usize = 1 << 16;

/// Most combinations of one tree's options in a choice table (more: no tables).
const MAX_CHOICE_TABLE: usize = 4096;

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
/// [`Display`](std::fmt::Display) form: `change Contract to Two year: similar customers' risk
/// 0.18 (now 0.62); a model estimate, not a promised effect`.
#[derive(Debug, Clone, PartialEq)]
pub struct Lever<'a> {
    /// The changes.
    pub changes: Vec<Change<'a>>,
    /// Risk now.
    pub risk_before: f64,
    /// The model's risk for customers like this one with the changed values (an association,
    /// not the effect of making the change).
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
        write!(
            f,
            ": similar customers' risk {:.2} (now {:.2}); a model estimate, not a promised effect",
            self.risk_after, self.risk_before
        )
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
        let support = &self.bundle.encoder.support;
        let never = &pb.file.never_levers;
        let opts: Vec<LeverOption> = pb
            .actionable_inputs
            .iter()
            .filter(|&&i| support.tracks(i))
            .map(|&i| {
                let mut o = self.alternatives(i, row);
                o.alternatives.retain(|a| !never.iter().any(|n| n == a.0));
                o
            })
            .filter(|o| o.alternatives.iter().any(|a| a.0 != o.current))
            .collect();
        if opts.is_empty() {
            return Vec::new();
        }
        let search = LeverSearch {
            scorer: self,
            model,
            row,
            states: support.row_states(&self.bundle.encoder, row),
            opts,
            min_support: pb.file.lever_min_support,
            changes: Vec::new(),
            paths: None,
            tables: None,
            fixed_ok: Vec::new(),
        };
        let changes = changes_of(&search.opts);
        let search = LeverSearch {
            tables: search.choice_tables(&changes),
            fixed_ok: search.fixed_support(),
            changes,
            ..search
        };
        // without tables, exact re-scoring re-walks only the trees a change can reach
        let search = LeverSearch {
            paths: search
                .tables
                .is_none()
                .then(|| model.rescorer(row))
                .flatten(),
            ..search
        };
        let mut buf = row.to_vec();
        let mut found = search.single_changes(&mut buf);
        // a combination is only shown when it beats every single change (and the customer)
        let bound = found.iter().map(|f| f.0).fold(before, f64::min);
        if let Some(choice) = search.best_combination(bound) {
            found.push((search.apply(&choice, &mut buf), choice));
        }
        found.retain(|(p, _)| *p < before - 1e-9);
        // best overall (fewest changes among equal risk), then the best single changes
        found.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.len().cmp(&b.1.len())));
        search.levers(&found, before)
    }

    /// Current value and the alternatives of an actionable input (tracked by the encoder's
    /// level support).
    fn alternatives(&self, input: usize, row: &[f64]) -> LeverOption<'_> {
        let spec = &self.bundle.encoder.inputs[input];
        let state = |k: usize| {
            self.bundle
                .encoder
                .support
                .state(input, k)
                .expect("levers only use tracked inputs")
        };
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
                    alternatives: vec![
                        (true_token, Some(*column), state(1)),
                        (false_token, None, state(0)),
                    ],
                    clear,
                }
            }
            (
                _,
                InputEncoding::OneHot {
                    levels,
                    first_column,
                    other_column,
                    ..
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
                    .map(|(i, l)| (l.as_str(), Some(first_column + i), state(i)))
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

/// Per option, its alternatives other than the current value.
fn changes_of(opts: &[LeverOption<'_>]) -> Vec<Vec<usize>> {
    opts.iter()
        .map(|o| {
            (0..o.alternatives.len())
                .filter(|&a| o.alternatives[a].0 != o.current)
                .collect()
        })
        .collect()
}

/// The lever search for one customer: the row and the options of its actionable inputs.
struct LeverSearch<'s, 'r> {
    scorer: &'s Scorer,
    model: &'s Model,
    row: &'r [f64],
    /// The row's state of every input (see [`LevelSupport`](crate::features::LevelSupport)).
    states: Vec<Option<u32>>,
    /// Actionable inputs with at least one alternative.
    opts: Vec<LeverOption<'s>>,
    /// Training rows each pair of values of a lever needs.
    min_support: u32,
    /// Per option, its alternatives other than the current value (choice `k ≥ 1` of the
    /// option in [`ChoiceTables`] is alternative `changes[option][k - 1]`).
    changes: Vec<Vec<usize>>,
    /// The row's paths through boosted trees: a candidate re-walks only the trees that test
    /// a column it changes.
    paths: Option<RowPaths>,
    /// Boosted trees: the row's margin under every combination of the options' choices (the
    /// search ranks combinations by it; the levers shown are scored exactly).
    tables: Option<ChoiceTables>,
    /// See [`LeverSearch::fixed_support`].
    fixed_ok: Vec<Vec<bool>>,
}

impl<'s> LeverSearch<'s, '_> {
    /// Risk of the row with `choice` applied (`buf` is scratch of the row's width).
    fn apply(&self, choice: &[(usize, usize)], buf: &mut [f64]) -> f64 {
        buf.copy_from_slice(self.row);
        let mut changed = Vec::with_capacity(choice.len() * 4);
        for &(oi, ai) in choice {
            let o = &self.opts[oi];
            for &c in &o.clear {
                buf[c] = 0.0;
            }
            changed.extend_from_slice(&o.clear);
            if let Some(c) = o.alternatives[ai].1 {
                buf[c] = 1.0;
                changed.push(c);
            }
        }
        if let Some(t) = &self.tables {
            let exact = self.digits(choice).and_then(|d| {
                self.model
                    .predict_from_margin(t.exact_margin(&d[..self.opts.len()]))
            });
            if let Some(p) = exact {
                return p.probability;
            }
        }
        self.model
            .predict_changed(self.paths.as_ref(), buf, &changed)
            .probability
    }

    /// Whether `choice` gives a combination of values with training support (as
    /// [`LevelSupport::supports_states`](crate::features::LevelSupport::supports_states), with
    /// the part that does not depend on the other changes computed once, in `fixed_ok`).
    fn supported(&self, choice: &[(usize, usize)]) -> bool {
        let support = &self.scorer.bundle.encoder.support;
        choice.iter().all(|&(oi, ai)| {
            let cs = self.opts[oi].alternatives[ai].2;
            self.fixed_ok[oi][ai]
                && self.opts.iter().enumerate().all(|(oj, o)| {
                    let other = match choice.iter().find(|c| c.0 == oj) {
                        Some(&(_, aj)) => Some(o.alternatives[aj].2),
                        None => self.states[o.input],
                    };
                    other.is_none_or(|s| support.count(cs, s) >= self.min_support)
                })
        })
    }

    /// Per option and alternative: whether the value has support with the row's own value of
    /// every input that is not an option (those never change).
    fn fixed_support(&self) -> Vec<Vec<bool>> {
        let support = &self.scorer.bundle.encoder.support;
        let fixed: Vec<u32> = self
            .states
            .iter()
            .enumerate()
            .filter(|(j, _)| !self.opts.iter().any(|o| o.input == *j))
            .filter_map(|(_, s)| *s)
            .collect();
        self.opts
            .iter()
            .map(|o| {
                o.alternatives
                    .iter()
                    .map(|a| {
                        fixed
                            .iter()
                            .all(|&s| support.count(a.2, s) >= self.min_support)
                    })
                    .collect()
            })
            .collect()
    }

    /// Every supported change of one input to another value, with its risk.
    fn single_changes(&self, buf: &mut [f64]) -> Vec<(f64, Choice)> {
        let mut found = Vec::new();
        for (oi, o) in self.opts.iter().enumerate() {
            for (ai, alt) in o.alternatives.iter().enumerate() {
                if alt.0 != o.current && self.supported(&[(oi, ai)]) {
                    found.push((self.apply(&[(oi, ai)], buf), vec![(oi, ai)]));
                }
            }
        }
        found
    }

    /// The lowest-risk leaf reachable through the tree with a supported choice of values, and
    /// that choice, among leaves with a risk below `bound` (`None` with a single option, or
    /// when one change suffices).
    fn best_combination(&self, bound: f64) -> Option<Choice> {
        if self.opts.len() <= 1 {
            return None;
        }
        let Some(tree) = self.model.single_tree() else {
            return self.searched_combination(bound);
        };
        let leaves = self.reachable_leaves(tree, &self.column_options())?;
        let mut budget = MAX_CHOICE_STEPS;
        leaves
            .iter()
            .take(MAX_LEAVES_TRIED)
            .take_while(|(p, _)| *p < bound - 1e-12)
            .find_map(|(_, cons)| self.concrete_choice(cons, &mut budget))
            .filter(|c| c.len() > 1)
    }

    /// Encoded column → (option, alternative it selects).
    fn column_options(&self) -> Vec<Option<(usize, usize)>> {
        let mut col_opt = vec![None; self.row.len()];
        for (oi, o) in self.opts.iter().enumerate() {
            for (ai, (_, col, _)) in o.alternatives.iter().enumerate() {
                if let Some(c) = col {
                    col_opt[*c] = Some((oi, ai));
                }
            }
        }
        col_opt
    }

    /// Walk the tree following the row on other inputs and both branches on actionable
    /// columns; every reachable leaf's risk and constraints, lowest risk first. `None` when the
    /// options do not fit [`Cons`].
    fn reachable_leaves(
        &self,
        t: &TreeModel,
        col_opt: &[Option<(usize, usize)>],
    ) -> Option<Vec<(f64, Cons)>> {
        let fits = self.opts.len() <= MAX_LEVER_INPUTS
            && self.opts.iter().all(|o| o.alternatives.len() < 64);
        if !fits {
            return None;
        }
        let nodes = &t.tree.nodes;
        let mut leaves: Vec<(f64, Cons)> = Vec::new();
        let mut stack: Vec<(usize, Cons)> = vec![(0, [(NONE, 0u64); MAX_LEVER_INPUTS])];
        while let Some((i, cons)) = stack.pop() {
            let n = &nodes[i];
            if n.is_leaf() {
                leaves.push((t.scores[i].p, cons));
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
        // stable: equal risks keep walk order
        leaves.sort_by(|a, b| a.0.total_cmp(&b.0));
        Some(leaves)
    }

    /// Values meeting `cons` whose combination has training support, preferring each input's
    /// current value; the changes from the current values, or `None` when no supported
    /// combination exists or the search spent its `budget` of steps.
    fn concrete_choice(&self, cons: &Cons, budget: &mut usize) -> Option<Choice> {
        // per option, the allowed values (`None` = keep the current one), current first
        let mut cands: Vec<Vec<Option<usize>>> = Vec::with_capacity(self.opts.len());
        for (oi, o) in self.opts.iter().enumerate() {
            let (must, not) = cons[oi];
            let cur = o.alternatives.iter().position(|a| a.0 == o.current);
            let allowed = |a: usize| not & (1u64 << a) == 0;
            let mut c: Vec<Option<usize>> = Vec::new();
            if must != NONE {
                c.push((Some(must as usize) != cur).then_some(must as usize));
            } else {
                if cur.is_none_or(allowed) {
                    c.push(None);
                }
                c.extend(
                    (0..o.alternatives.len())
                        .filter(|&a| allowed(a) && Some(a) != cur)
                        .map(Some),
                );
            }
            if c.is_empty() {
                return None;
            }
            cands.push(c);
        }
        let mut picks = vec![None; cands.len()];
        self.search_choice(&cands, &mut picks, 0, budget)
    }

    /// Depth-first search over the values of options `k..`, pruned by pairwise support; the
    /// first supported choice (the changes `picks` ends with).
    fn search_choice(
        &self,
        cands: &[Vec<Option<usize>>],
        picks: &mut [Option<usize>],
        k: usize,
        budget: &mut usize,
    ) -> Option<Choice> {
        if k == cands.len() {
            let choice: Choice = picks
                .iter()
                .enumerate()
                .filter_map(|(oi, p)| p.map(|ai| (oi, ai)))
                .collect();
            return self.supported(&choice).then_some(choice);
        }
        for &pick in &cands[k] {
            if *budget == 0 {
                return None;
            }
            *budget -= 1;
            if !self.compatible(k, pick, &picks[..k]) {
                continue;
            }
            picks[k] = pick;
            if let Some(c) = self.search_choice(cands, picks, k + 1, budget) {
                return Some(c);
            }
        }
        picks[k] = None;
        None
    }

    /// Whether option `k` taking `pick` has support with the options decided before it (pairs
    /// where at least one side changes); a full check follows once every option is decided.
    fn compatible(&self, k: usize, pick: Option<usize>, decided: &[Option<usize>]) -> bool {
        let support = &self.scorer.bundle.encoder.support;
        let state = |oi: usize, p: Option<usize>| match p {
            Some(ai) => Some(self.opts[oi].alternatives[ai].2),
            None => self.states[self.opts[oi].input],
        };
        let sk = state(k, pick);
        decided.iter().enumerate().all(|(m, &pm)| {
            if pick.is_none() && pm.is_none() {
                return true;
            }
            match (sk, state(m, pm)) {
                (Some(a), Some(b)) => support.count(a, b) >= self.min_support,
                _ => true,
            }
        })
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
