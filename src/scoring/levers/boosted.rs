//! The boosted side of the lever search: choice tables built per request, and the exhaustive
//! (or greedy) search over combinations that ranks by them.

use super::{Choice, LeverSearch, MAX_CHOICE_STEPS, MAX_CHOICE_TABLE, MAX_TREE_EVALUATIONS};

/// How far a ranked risk (from choice tables) may be from the exact one: the margin differs
/// by ~1e-15, and an isotonic calibration's steepest slope can magnify that many times.
const RANK_SLACK: f64 = 1e-9;

/// Most entries of one request's choice tables in all (8 bytes each: 2 MiB); past it the
/// search re-scores combinations instead.
const MAX_CHOICE_ENTRIES: usize = 1 << 18;
use crate::model::boost::{ChoiceOptions, ChoiceTables, MAX_OPTIONS};

impl LeverSearch<'_, '_> {
    /// `choice` as a choice per option (0 keeps it) for [`ChoiceTables`] (which exist for at
    /// most [`MAX_OPTIONS`] options).
    /// `None` when an alternative is not one of the option's changes.
    pub(super) fn digits(&self, choice: &[(usize, usize)]) -> Option<[usize; MAX_OPTIONS]> {
        let mut digits = [0usize; MAX_OPTIONS];
        for &(oi, ai) in choice {
            digits[oi] = 1 + self.changes[oi].iter().position(|&a| a == ai)?;
        }
        Some(digits)
    }

    /// Choice tables of a boosted model (`None` for a single tree or too many options).
    pub(super) fn choice_tables(&self, changes: &[Vec<usize>]) -> Option<ChoiceTables> {
        let b = self.model.boosted_trees()?;
        if self.opts.len() < 2 {
            return None; // no combinations to search; single changes re-score exactly
        }
        let mut option_of = vec![None; self.row.len()];
        for (oi, o) in self.opts.iter().enumerate() {
            for &c in &o.clear {
                option_of[c] = Some(oi);
            }
        }
        let choices: Vec<usize> = changes.iter().map(|c| c.len() + 1).collect();
        let value = |c: usize, k: usize| -> f64 {
            let oi = option_of[c].expect("only option columns are asked for");
            let set = self.opts[oi].alternatives[changes[oi][k - 1]].1;
            f64::from(u8::from(set == Some(c)))
        };
        b.ensemble.choice_tables(
            self.row,
            &ChoiceOptions {
                option_of: &option_of,
                choices: &choices,
                value: &value,
            },
            MAX_CHOICE_TABLE,
            MAX_CHOICE_ENTRIES,
        )
    }

    /// Risk of the row with `choice` applied, for ranking: from the choice tables when there
    /// are (equal to [`LeverSearch::apply`] up to rounding), else exact.
    fn risk(&self, choice: &[(usize, usize)], buf: &mut [f64]) -> f64 {
        let Some(t) = &self.tables else {
            return self.apply(choice, buf);
        };
        self.digits(choice)
            .and_then(|d| {
                self.model
                    .predict_from_margin(t.margin(&d[..self.opts.len()]))
            })
            .map_or_else(|| self.apply(choice, buf), |p| p.probability)
    }

    /// Boosted trees have no leaf to aim for: every supported combination of changes is
    /// ranked when there are at most [`MAX_CHOICE_STEPS`] of them (with choice tables; without,
    /// also at most [`MAX_TREE_EVALUATIONS`] tree evaluations) — the best is then optimal — else changes are
    /// added greedily, each time the one that lowers the risk most,
    /// until none does (a local optimum). Only combinations of two or more changes below
    /// `bound`.
    pub(super) fn searched_combination(&self, bound: f64) -> Option<Choice> {
        let mut buf = vec![0.0; self.row.len()];
        let changes = &self.changes;
        let space = changes
            .iter()
            .try_fold(1usize, |acc, c| acc.checked_mul(c.len() + 1))
            .unwrap_or(usize::MAX);
        // ranked risks may differ from the exact ones by rounding: keep every combination
        // within RANK_SLACK of the lowest, and decide among them on exact risks
        let mut lowest = f64::INFINITY;
        let mut near: Vec<(f64, Choice)> = Vec::new();
        let mut consider = |choice: Choice, buf: &mut [f64]| {
            if choice.len() < 2 || !self.supported(&choice) {
                return;
            }
            let p = self.risk(&choice, buf);
            if p < bound + RANK_SLACK && p <= lowest + RANK_SLACK {
                lowest = lowest.min(p);
                near.push((p, choice));
            }
        };
        let trees = self
            .model
            .boosted_trees()
            .map_or(1, |b| b.ensemble.trees.len());
        let cap = if self.tables.is_some() {
            MAX_CHOICE_STEPS
        } else {
            (MAX_TREE_EVALUATIONS / trees.max(1)).clamp(16, MAX_CHOICE_STEPS)
        };
        if space <= cap {
            // odometer over (keep | each change) per option
            let mut digit = vec![0usize; changes.len()];
            loop {
                let choice: Choice = digit
                    .iter()
                    .enumerate()
                    .filter(|(_, &d)| d > 0)
                    .map(|(oi, &d)| (oi, changes[oi][d - 1]))
                    .collect();
                consider(choice, &mut buf);
                let mut k = 0;
                while k < digit.len() {
                    digit[k] += 1;
                    if digit[k] <= changes[k].len() {
                        break;
                    }
                    digit[k] = 0;
                    k += 1;
                }
                if k == digit.len() {
                    break;
                }
            }
            near.retain(|(p, _)| *p <= lowest + RANK_SLACK);
            return self.exact_best(near, bound, &mut buf);
        }
        let mut choice: Choice = Vec::new();
        let mut risk = self.risk(&choice, &mut buf);
        loop {
            let mut step: Option<(f64, (usize, usize))> = None;
            for (oi, alts) in changes.iter().enumerate() {
                if choice.iter().any(|c| c.0 == oi) {
                    continue;
                }
                for &ai in alts {
                    let mut c = choice.clone();
                    c.push((oi, ai));
                    if !self.supported(&c) {
                        continue;
                    }
                    let p = self.risk(&c, &mut buf);
                    if p < risk - 1e-12 && step.is_none_or(|s| p < s.0) {
                        step = Some((p, (oi, ai)));
                    }
                }
            }
            let Some((p, c)) = step else { break };
            choice.push(c);
            risk = p;
        }
        choice.sort_unstable();
        if choice.len() < 2 || risk >= bound + RANK_SLACK {
            return None;
        }
        self.exact_best(vec![(risk, choice)], bound, &mut buf)
    }

    /// The best of `candidates` on exact risks (fewest changes among equal risks, the first
    /// among equal ones), if it is below `bound`.
    fn exact_best(
        &self,
        candidates: Vec<(f64, Choice)>,
        bound: f64,
        buf: &mut [f64],
    ) -> Option<Choice> {
        let mut best: Option<(f64, Choice)> = None;
        for (ranked, choice) in candidates {
            let p = if self.tables.is_some() {
                self.apply(&choice, buf)
            } else {
                ranked
            };
            let better = best
                .as_ref()
                .is_none_or(|(bp, bc)| p < *bp - 1e-12 || (p <= *bp && choice.len() < bc.len()));
            if p < bound - 1e-12 && better {
                best = Some((p, choice));
            }
        }
        best.map(|b| b.1)
    }
}
