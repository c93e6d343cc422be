//! The training data profile stored in the bundle: per input the training distribution over a
//! few bins, the segment mix, the base rate and the score distribution. Drift is measured
//! against it (`crate::evaluate::drift`); the binning of a row lives here once, for both sides.

use crate::features::{Encoder, InputEncoding, Matrix};
use serde::{Deserialize, Serialize};

/// Most training rows the profile reads (evenly spaced): shares from 100k rows are exact to
/// ±0.3 points, far below any drift worth an alarm.
pub const PROFILE_ROWS: usize = 100_000;

/// A distribution over bins.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Binned {
    /// Numeric bins: the cut points (a value `x` falls in the first bin whose cut is ≥ x; one
    /// more bin above the last cut, and a `missing` bin last when the input had missing values).
    /// Empty for categorical inputs and segments.
    pub cuts: Vec<f64>,
    /// Bin labels (`≤ 29.9`, `> 105.3`, `missing`, a level, `(other)`, a segment name).
    pub labels: Vec<String>,
    /// Training share of each bin (sums to 1).
    pub shares: Vec<f64>,
}

/// One input's training distribution.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InputProfile {
    /// Input name.
    pub name: String,
    /// Its bins.
    pub bins: Binned,
}

/// The training data profile.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Profile {
    /// Training rows profiled.
    pub rows: u64,
    /// Churn rate of the training rows.
    pub base_rate: f64,
    /// Per input, in encoder order.
    pub inputs: Vec<InputProfile>,
    /// Share of each segment (labels: segment names); empty without segments.
    pub segments: Binned,
    /// Distribution of the calibrated probability over its training deciles.
    pub score: Binned,
}

/// Up to 9 distinct interior cut points at the deciles of `v` (sorted in place), plus the cuts
/// that give the most frequent value a bin of its own when it holds a tenth or more of `v`:
/// with deciles alone, a yes/no input at 90% "yes" (Telco's PhoneService) had a single bin, so
/// no shift of it could ever show (PSI 0.000 after 3,000 customers were moved to "no").
pub fn decile_cuts(v: &mut [f64]) -> Vec<f64> {
    v.sort_by(|a, b| a.total_cmp(b));
    let n = v.len();
    let mut cuts: Vec<f64> = Vec::new();
    if n == 0 {
        return cuts;
    }
    let max = v[n - 1];
    for d in 1..10 {
        let c = v[(n * d / 10).min(n - 1)];
        // a cut at the maximum would leave the top bin empty
        if c < max && cuts.last().is_none_or(|&l| c > l) {
            cuts.push(c);
        }
    }
    // the dominant value: the first longest run of equal values in the sorted sample
    let (mut at, mut first, mut longest) = (0, 0, 0);
    for run in v.chunk_by(|a, b| a == b) {
        if run.len() > longest {
            (first, longest) = (at, run.len());
        }
        at += run.len();
    }
    if longest * 10 >= n {
        let mode = v[first];
        // values at a cut fall below it: a cut just under the mode and one at it isolate it
        let below = first.checked_sub(1).map(|i| v[i]);
        for c in below.into_iter().chain((mode < max).then_some(mode)) {
            if let Err(at) = cuts.binary_search_by(|x| x.total_cmp(&c)) {
                cuts.insert(at, c);
            }
        }
    }
    cuts
}

/// The bin of `x` among `cuts` (values at a cut fall below it).
#[inline]
pub fn bin_of(cuts: &[f64], x: f64) -> usize {
    cuts.partition_point(|&c| c < x)
}

fn cut_labels(cuts: &[f64]) -> Vec<String> {
    let f = crate::util::fmt_num;
    let mut l: Vec<String> = cuts.iter().map(|&c| format!("≤ {}", f(c))).collect();
    l.push(cuts.last().map_or("all".into(), |&c| format!("> {}", f(c))));
    l
}

impl Profile {
    /// The bin of input `i` for an encoded row (see [`Binned::cuts`]).
    pub fn input_bin(&self, enc: &Encoder, i: usize, row: &[f64]) -> usize {
        let cuts = &self.inputs[i].bins.cuts;
        match &enc.inputs[i].encoding {
            InputEncoding::Numeric {
                column,
                missing_column,
                ..
            } => match missing_column {
                Some(m) if row[*m] == 1.0 => cuts.len() + 1,
                _ => bin_of(cuts, row[*column]),
            },
            InputEncoding::OneHot {
                levels,
                first_column,
                other_column,
                ..
            } => (0..levels.len())
                .find(|&l| row[first_column + l] == 1.0)
                .unwrap_or_else(|| {
                    debug_assert_eq!(row[*other_column], 1.0);
                    levels.len()
                }),
        }
    }

    /// Profile `rows` of the encoded training matrix (at most [`PROFILE_ROWS`], evenly spaced):
    /// `p` their calibrated probabilities and `segment` their segment ids, in `rows` order.
    pub fn build(
        enc: &Encoder,
        x: &Matrix,
        rows: &[usize],
        y: &[bool],
        p: &dyn Fn(&[f64]) -> f64,
        segment: &dyn Fn(&[f64]) -> Option<usize>,
        segment_names: &[String],
    ) -> Profile {
        let step = rows.len().div_ceil(PROFILE_ROWS).max(1);
        let sample: Vec<usize> = rows.iter().copied().step_by(step).collect();
        let n = sample.len().max(1) as f64;
        let mut inputs = Vec::with_capacity(enc.inputs.len());
        for spec in &enc.inputs {
            let (cuts, labels) = match &spec.encoding {
                InputEncoding::Numeric {
                    column,
                    missing_column,
                    ..
                } => {
                    let col = x.col(*column);
                    let miss = missing_column.map(|m| x.col(m));
                    let mut v: Vec<f64> = sample
                        .iter()
                        .filter(|&&r| miss.is_none_or(|m| m[r] != 1.0))
                        .map(|&r| col[r])
                        .collect();
                    let cuts = decile_cuts(&mut v);
                    let mut labels = cut_labels(&cuts);
                    if missing_column.is_some() {
                        labels.push("missing".into());
                    }
                    (cuts, labels)
                }
                InputEncoding::OneHot { levels, .. } => {
                    let mut l = levels.clone();
                    l.push("(other)".into());
                    (Vec::new(), l)
                }
            };
            inputs.push(InputProfile {
                name: spec.name.clone(),
                bins: Binned {
                    shares: vec![0.0; labels.len()],
                    cuts,
                    labels,
                },
            });
        }
        let mut profile = Profile {
            rows: sample.len() as u64,
            base_rate: sample.iter().filter(|&&r| y[r]).count() as f64 / n,
            inputs,
            segments: Binned {
                cuts: Vec::new(),
                labels: segment_names.to_vec(),
                shares: vec![0.0; segment_names.len()],
            },
            score: Binned {
                cuts: Vec::new(),
                labels: Vec::new(),
                shares: Vec::new(),
            },
        };
        let mut scores = Vec::with_capacity(sample.len());
        for &r in &sample {
            let row = x.row(r);
            for i in 0..enc.inputs.len() {
                let b = profile.input_bin(enc, i, &row);
                profile.inputs[i].bins.shares[b] += 1.0 / n;
            }
            if let Some(s) = segment(&row).filter(|&s| s < segment_names.len()) {
                profile.segments.shares[s] += 1.0 / n;
            }
            scores.push(p(&row));
        }
        let mut sorted = scores.clone();
        let cuts = decile_cuts(&mut sorted);
        let mut shares = vec![0.0; cuts.len() + 1];
        for &s in &scores {
            shares[bin_of(&cuts, s)] += 1.0 / n;
        }
        profile.score = Binned {
            labels: cut_labels(&cuts),
            cuts,
            shares,
        };
        profile
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cuts_are_distinct_and_values_at_a_cut_fall_below() {
        let mut v: Vec<f64> = (0..1000).map(|i| (i % 7) as f64).collect();
        let cuts = decile_cuts(&mut v);
        assert!(cuts.windows(2).all(|w| w[0] < w[1]));
        assert!(cuts.len() <= 6, "{cuts:?}");
        assert_eq!(bin_of(&cuts, cuts[0]), 0);
        assert_eq!(bin_of(&cuts, 6.0), cuts.len());
        assert!(decile_cuts(&mut [3.0; 10]).is_empty());
    }

    #[test]
    fn a_dominant_value_gets_a_bin_of_its_own() {
        // yes/no at 90.3% yes (Telco's PhoneService): deciles alone gave one bin
        let mut v: Vec<f64> = (0..7043).map(|i| f64::from(u8::from(i >= 682))).collect();
        let cuts = decile_cuts(&mut v);
        assert_eq!(cuts, vec![0.0]);
        assert_eq!((bin_of(&cuts, 0.0), bin_of(&cuts, 1.0)), (0, 1));
        // a point mass inside a continuous range is isolated from its neighbours
        let mut v: Vec<f64> = (0..1000)
            .map(|i| {
                if i % 2 == 0 {
                    20.0
                } else {
                    f64::from(i) / 10.0
                }
            })
            .collect();
        let cuts = decile_cuts(&mut v);
        let at = bin_of(&cuts, 20.0);
        assert_eq!(bin_of(&cuts, 19.9), at - 1, "{cuts:?}");
        assert_eq!(bin_of(&cuts, 20.1), at + 1, "{cuts:?}");
        assert!(cuts.windows(2).all(|w| w[0] < w[1]), "{cuts:?}");
        // a dominant maximum: the cut below it is enough
        let mut v: Vec<f64> = (0..100).map(|i| if i < 80 { 5.0 } else { 1.0 }).collect();
        assert_eq!(decile_cuts(&mut v), vec![1.0]);
    }
}
