//! Which values of the categorical and boolean inputs occur together in the training data.
//!
//! Levers change a customer's actionable inputs; a change is only worth proposing if customers
//! with the new value *and* the customer's other values exist. Structural levels make most
//! combinations impossible (`TechSupport = No internet service` only occurs with
//! `InternetService = No`), and a pairwise co-occurrence table catches exactly those: a lever
//! is proposed only when every new value occurs, in at least [`LEVER_MIN_SUPPORT`] training
//! rows, with every value the customer keeps and with every other new value.

use super::{Encoder, InputEncoding, MISSING_LEVEL};
use crate::ingest::{CustomerData, FeatureKind, FeatureValues};
use serde::{Deserialize, Serialize};

/// Default minimum number of training rows a pair of values needs for a lever to use it.
pub const LEVER_MIN_SUPPORT: u32 = 5;

/// Inputs with more states than this are not tracked (and cannot be levers).
const MAX_STATES_PER_INPUT: usize = 63;
/// Cap on all tracked states (the table has states² cells).
const MAX_STATES: usize = 512;
/// An input that is not tracked.
const UNTRACKED: u32 = u32::MAX;

/// Pairwise co-occurrence counts of the categorical and boolean inputs' values in training.
///
/// A *state* is one value of one tracked input: a kept level or `other` of a categorical input,
/// false or true of a boolean one.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LevelSupport {
    /// Per input: its first state, or `u32::MAX` when the input is not tracked.
    offsets: Vec<u32>,
    /// Per input: its number of states (0 when not tracked).
    sizes: Vec<u32>,
    /// Number of states.
    states: u32,
    /// Training rows having both states, `states × states`, row-major (the diagonal counts a
    /// single state).
    counts: Vec<u32>,
}

/// States of an input's encoding: levels + `other`, or false / true; `None` for numbers.
fn state_count(enc: &Encoder, input: usize) -> Option<usize> {
    let spec = &enc.inputs[input];
    match (&spec.kind, &spec.encoding) {
        (_, InputEncoding::OneHot { levels, .. }) => Some(levels.len() + 1),
        (FeatureKind::Boolean { .. }, InputEncoding::Numeric { .. }) => Some(2),
        _ => None,
    }
}

impl LevelSupport {
    /// Count the value pairs of the training rows `rows`.
    pub fn fit(enc: &Encoder, data: &CustomerData, rows: &[usize]) -> LevelSupport {
        let mut offsets = vec![UNTRACKED; enc.inputs.len()];
        let mut sizes = vec![0u32; enc.inputs.len()];
        let mut states = 0usize;
        for (i, (o, sz)) in offsets.iter_mut().zip(sizes.iter_mut()).enumerate() {
            if let Some(n) = state_count(enc, i) {
                if n <= MAX_STATES_PER_INPUT && states + n <= MAX_STATES {
                    *o = states as u32;
                    *sz = n as u32;
                    states += n;
                }
            }
        }
        let mut counts = vec![0u32; states * states];
        let tracked: Vec<usize> = (0..enc.inputs.len())
            .filter(|&i| offsets[i] != UNTRACKED)
            .collect();
        let mut row_states: Vec<u32> = Vec::with_capacity(tracked.len());
        for &r in rows {
            row_states.clear();
            for &i in &tracked {
                if let Some(s) = raw_state(enc, data, i, r) {
                    row_states.push(offsets[i] + s);
                }
            }
            for &a in &row_states {
                for &b in &row_states {
                    let cell = &mut counts[a as usize * states + b as usize];
                    *cell = cell.saturating_add(1);
                }
            }
        }
        LevelSupport {
            offsets,
            sizes,
            states: states as u32,
            counts,
        }
    }

    /// Whether input `input` is tracked.
    pub fn tracks(&self, input: usize) -> bool {
        self.offsets.get(input).is_some_and(|&o| o != UNTRACKED)
    }

    /// The state of input `input`'s `k`-th value (level index, `levels.len()` for `other`;
    /// 0 / 1 for booleans), if tracked.
    pub fn state(&self, input: usize, k: usize) -> Option<u32> {
        let o = *self.offsets.get(input)?;
        (o != UNTRACKED && k < self.sizes[input] as usize).then(|| o + k as u32)
    }

    /// The state an encoded row holds for input `input` (`None` when untracked or missing).
    pub fn row_state(&self, enc: &Encoder, input: usize, row: &[f64]) -> Option<u32> {
        if !self.tracks(input) {
            return None;
        }
        let k = match &enc.inputs[input].encoding {
            InputEncoding::OneHot {
                levels,
                first_column,
                ..
            } => (0..levels.len())
                .find(|&i| row[first_column + i] != 0.0)
                .unwrap_or(levels.len()),
            InputEncoding::Numeric {
                column,
                missing_column,
                ..
            } => {
                if missing_column.is_some_and(|m| row[m] != 0.0) {
                    return None;
                }
                usize::from(row[*column] != 0.0)
            }
        };
        self.state(input, k)
    }

    /// Training rows having both states.
    pub fn count(&self, a: u32, b: u32) -> u32 {
        self.counts[a as usize * self.states as usize + b as usize]
    }

    /// The state of every input of an encoded row (`None` when untracked or missing).
    pub fn row_states(&self, enc: &Encoder, row: &[f64]) -> Vec<Option<u32>> {
        (0..enc.inputs.len())
            .map(|i| self.row_state(enc, i, row))
            .collect()
    }

    /// Whether changing the inputs of `changed` (`(input, new state)`) gives a combination with
    /// support: every new state occurs at least `min` times with each other new state and with
    /// each state of `row` that is kept. Untracked inputs cannot be changed.
    pub fn supports(&self, enc: &Encoder, row: &[f64], changed: &[(usize, u32)], min: u32) -> bool {
        self.supports_states(&self.row_states(enc, row), changed, min)
    }

    /// [`supports`](Self::supports) with the row's states already computed
    /// ([`row_states`](Self::row_states)).
    pub fn supports_states(
        &self,
        states: &[Option<u32>],
        changed: &[(usize, u32)],
        min: u32,
    ) -> bool {
        changed.iter().all(|&(ci, cs)| {
            self.tracks(ci)
                && states.iter().enumerate().all(|(j, &own)| {
                    let other = match changed.iter().find(|c| c.0 == j) {
                        Some(&(_, s)) => Some(s),
                        None => own,
                    };
                    other.is_none_or(|s| self.count(cs, s) >= min)
                })
        })
    }

    /// Structural check for bundle validation: the table matches the encoder's inputs.
    pub fn check(&self, enc: &Encoder) -> Result<(), String> {
        let s = self.states as usize;
        let inputs = enc.inputs.len();
        if self.offsets.len() != inputs || self.sizes.len() != inputs {
            return Err(format!(
                "level support covers {} inputs, the encoder has {inputs}",
                self.offsets.len()
            ));
        }
        if Some(self.counts.len()) != s.checked_mul(s) {
            return Err("level support table has the wrong size".into());
        }
        for (i, (o, n)) in self.offsets.iter().zip(&self.sizes).enumerate() {
            if *o == UNTRACKED {
                continue;
            }
            if (*o as u64 + *n as u64) > s as u64 || state_count(enc, i) != Some(*n as usize) {
                return Err(format!(
                    "level support of input {i} does not match its encoding"
                ));
            }
        }
        Ok(())
    }
}

/// The state (within its input) of training row `r`'s value of input `i`.
fn raw_state(enc: &Encoder, data: &CustomerData, i: usize, r: usize) -> Option<u32> {
    match (&data.features[i].values, &enc.inputs[i].encoding) {
        (FeatureValues::Cat(v), InputEncoding::OneHot { levels, .. }) => {
            let text = v.get(r).unwrap_or(MISSING_LEVEL);
            Some(
                levels
                    .binary_search_by(|l| l.as_str().cmp(text))
                    .unwrap_or(levels.len()) as u32,
            )
        }
        (FeatureValues::Num(v), InputEncoding::Numeric { .. }) => v[r].map(|x| u32::from(x != 0.0)),
        _ => None,
    }
}
