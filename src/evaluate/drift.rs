//! Drift against the training data profile stored in the bundle: per input the population
//! stability index (PSI) and the Jensen–Shannon distance of its binned distribution, the segment
//! mix, the score distribution and the base rate.
//!
//! Thresholds account for sample size. With n rows against a reference of N, a window drawn
//! from the training distribution has n_eff · PSI ≈ χ²(k − 1) (k bins, 1/n_eff = 1/n + 1/N),
//! so an alarm needs PSI above the customary 0.1 (warning) or 0.2 (alarm) *and* above the
//! 99.9% quantile of that null distribution; fewer than [`MIN_ROWS`] rows are never judged.

use super::stats::{chi2_quantile, Estimate};
use crate::bundle::profile::{bin_of, Binned, Profile};
use crate::features::Encoder;
use crate::io::RawValue;
use crate::store::RecentInput;
use serde::Serialize;

/// Rows below which a window's distributions are not judged.
pub const MIN_ROWS: usize = 100;
/// PSI of a warning.
pub const PSI_WARNING: f64 = 0.1;
/// PSI of an alarm.
pub const PSI_ALARM: f64 = 0.2;
/// Most recent predictions of a window whose inputs are read for drift.
pub const DRIFT_ROWS: usize = 20_000;
/// Shares are floored at this before logarithms (empty bins).
const FLOOR: f64 = 1e-4;

/// What a drift check says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DriftStatus {
    /// Too few rows to judge.
    TooFew,
    /// Within expectations.
    Stable,
    /// PSI ≥ 0.1 and beyond sampling noise.
    Warning,
    /// PSI ≥ 0.2 and beyond sampling noise.
    Alarm,
}

impl DriftStatus {
    /// 0 stable or too few, 1 warning, 2 alarm (the Prometheus gauge).
    pub fn level(self) -> i64 {
        match self {
            DriftStatus::TooFew | DriftStatus::Stable => 0,
            DriftStatus::Warning => 1,
            DriftStatus::Alarm => 2,
        }
    }
}

/// One bin: training share against the window's.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BinShare {
    /// Bin label.
    pub label: String,
    /// Training share.
    pub expected: f64,
    /// Window share.
    pub actual: f64,
}

/// The drift of one distribution.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DistributionDrift {
    /// Input name, `segment_mix` or `score`.
    pub name: String,
    /// Rows compared.
    pub n: usize,
    /// Population stability index.
    pub psi: f64,
    /// Jensen–Shannon distance (base 2, 0..1).
    pub js_distance: f64,
    /// The PSI sampling noise reaches with probability 0.1% at this n (alarms need more).
    pub noise_threshold: f64,
    /// Verdict.
    pub status: DriftStatus,
    /// Per bin.
    pub bins: Vec<BinShare>,
}

/// The realised churn rate against what the model expected, judged on the control group.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BaseRate {
    /// Training churn rate.
    pub training: f64,
    /// The group judged: `control` when the model has a control group with matured labels
    /// (a working campaign lowers the treated customers' churn: judging them alarmed on
    /// success), else `all`.
    pub group: String,
    /// Mean probability of the judged group's predictions.
    pub expected: f64,
    /// Realised churn rate of the judged group's matured predictions, if any.
    pub realised: Option<Estimate>,
    /// The treatment group's realised churn rate, shown apart (not judged).
    pub treatment: Option<Estimate>,
    /// Alarm when the realised rate's 95% interval excludes the expected rate by more than a
    /// fifth of it (at least [`MIN_ROWS`] matured predictions).
    pub status: DriftStatus,
}

/// The matured labels the base-rate check reads (see [`BaseRate::group`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Labels {
    /// `control` or `all`.
    pub group: &'static str,
    /// Matured predictions of the group.
    pub n: usize,
    /// The group's realised churn rate (Wilson interval).
    pub realised: Estimate,
    /// Mean probability of the group's predictions.
    pub expected: f64,
    /// The treatment group's realised churn rate, shown apart.
    pub treatment: Option<Estimate>,
}

/// Drift of a window.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DriftReport {
    /// Predictions whose inputs were read (the most recent of the window, at most
    /// [`DRIFT_ROWS`]).
    pub rows: usize,
    /// Stored inputs that could not be encoded (skipped).
    pub unreadable: usize,
    /// Worst status of everything below.
    pub status: DriftStatus,
    /// Inputs in alarm or warning, worst first.
    pub drifted_inputs: Vec<String>,
    /// Per input.
    pub inputs: Vec<DistributionDrift>,
    /// Segment mix (models with segments).
    pub segment_mix: Option<DistributionDrift>,
    /// Calibrated probability.
    pub score: DistributionDrift,
    /// Base rate.
    pub base_rate: BaseRate,
}

/// PSI and JS distance of `counts` (n rows) against `reference` (of `reference_rows`).
pub fn compare(
    name: &str,
    reference: &Binned,
    counts: &[f64],
    reference_rows: u64,
) -> DistributionDrift {
    let n: f64 = counts.iter().sum();
    let (mut psi, mut js) = (0.0, 0.0);
    let mut bins = Vec::with_capacity(counts.len());
    let mut k = 0;
    for (i, &c) in counts.iter().enumerate() {
        let e = reference.shares.get(i).copied().unwrap_or(0.0);
        let a = if n > 0.0 { c / n } else { 0.0 };
        if e > 0.0 || a > 0.0 {
            k += 1;
        }
        let (ef, af) = (e.max(FLOOR), a.max(FLOOR));
        psi += (af - ef) * (af / ef).ln();
        let m = (e + a) / 2.0;
        for x in [e, a] {
            if x > 0.0 {
                js += 0.5 * x * (x / m).log2();
            }
        }
        bins.push(BinShare {
            label: reference.labels.get(i).cloned().unwrap_or_default(),
            expected: e,
            actual: a,
        });
    }
    let n_eff = 1.0 / (1.0 / n.max(1.0) + 1.0 / (reference_rows.max(1) as f64));
    let noise = chi2_quantile(0.999, (k.max(2) - 1) as f64) / n_eff;
    let status = if (n as usize) < MIN_ROWS {
        DriftStatus::TooFew
    } else if psi >= PSI_ALARM.max(noise) {
        DriftStatus::Alarm
    } else if psi >= PSI_WARNING.max(noise) {
        DriftStatus::Warning
    } else {
        DriftStatus::Stable
    };
    DistributionDrift {
        name: name.to_string(),
        n: n as usize,
        psi,
        js_distance: js.max(0.0).sqrt(),
        noise_threshold: noise,
        status,
        bins,
    }
}

/// Encode a stored input (JSON object) with the model's encoder; `None` when it does not fit.
pub fn encode_stored(enc: &Encoder, input: &str) -> Option<Vec<f64>> {
    encode_fields(enc, &serde_json::from_str(input).ok()?)
}

/// [`encode_stored`] of an input already parsed into its fields.
pub fn encode_fields(
    enc: &Encoder,
    map: &serde_json::Map<String, serde_json::Value>,
) -> Option<Vec<f64>> {
    let mut row = vec![0.0; enc.width()];
    let mut warnings = Vec::new();
    for (i, spec) in enc.inputs.iter().enumerate() {
        let v = match map.get(&spec.name) {
            None | Some(serde_json::Value::Null) => RawValue::Missing,
            Some(serde_json::Value::Number(x)) => RawValue::Number(x.as_f64()?),
            Some(serde_json::Value::String(s)) => RawValue::Text(s),
            Some(serde_json::Value::Bool(b)) => RawValue::Bool(*b),
            Some(_) => return None,
        };
        enc.encode_cell(i, v, &mut row, &mut warnings).ok()?;
    }
    Some(row)
}

/// Drift of `rows` against the bundle's profile; `labels` the matured labels of the group the
/// base rate is judged on.
pub fn drift(
    profile: &Profile,
    enc: &Encoder,
    rows: &[RecentInput],
    labels: Labels,
) -> DriftReport {
    let mut counts: Vec<Vec<f64>> = profile
        .inputs
        .iter()
        .map(|p| vec![0.0; p.bins.shares.len()])
        .collect();
    let mut seg = vec![0.0; profile.segments.labels.len()];
    let mut score = vec![0.0; profile.score.shares.len()];
    let (mut unreadable, mut read) = (0, 0usize);
    for r in rows {
        let Some(row) = encode_stored(enc, &r.input) else {
            unreadable += 1;
            continue;
        };
        read += 1;
        for (i, c) in counts.iter_mut().enumerate() {
            let b = profile.input_bin(enc, i, &row);
            if let Some(x) = c.get_mut(b) {
                *x += 1.0;
            }
        }
        if let Some(k) = r
            .segment
            .as_ref()
            .and_then(|s| profile.segments.labels.iter().position(|l| l == s))
        {
            seg[k] += 1.0;
        }
        let b = bin_of(&profile.score.cuts, r.probability);
        if let Some(x) = score.get_mut(b) {
            *x += 1.0;
        }
    }
    let inputs: Vec<DistributionDrift> = profile
        .inputs
        .iter()
        .zip(&counts)
        .map(|(p, c)| compare(&p.name, &p.bins, c, profile.rows))
        .collect();
    let segment_mix = (!profile.segments.labels.is_empty())
        .then(|| compare("segment_mix", &profile.segments, &seg, profile.rows));
    let score = compare("score", &profile.score, &score, profile.rows);
    let n = labels.n;
    let realised = (n > 0).then_some(labels.realised);
    let e = labels.expected;
    let base_status = match realised {
        _ if n < MIN_ROWS => DriftStatus::TooFew,
        Some(r) if (r.low > e * 1.2) || (r.high < e * 0.8) => DriftStatus::Alarm,
        _ => DriftStatus::Stable,
    };
    let base_rate = BaseRate {
        training: profile.base_rate,
        group: labels.group.to_string(),
        expected: e,
        realised,
        treatment: labels.treatment,
        status: base_status,
    };
    let mut drifted: Vec<&DistributionDrift> = inputs
        .iter()
        .filter(|d| d.status >= DriftStatus::Warning)
        .collect();
    drifted.sort_by(|a, b| b.psi.total_cmp(&a.psi));
    let status = inputs
        .iter()
        .map(|d| d.status)
        .chain(segment_mix.iter().map(|d| d.status))
        .chain([score.status, base_rate.status])
        .max()
        .unwrap_or(DriftStatus::TooFew);
    DriftReport {
        rows: read,
        unreadable,
        status,
        drifted_inputs: drifted.iter().map(|d| d.name.clone()).collect(),
        inputs,
        segment_mix,
        score,
        base_rate,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::util::Rng;

    fn reference() -> Binned {
        Binned {
            cuts: Vec::new(),
            labels: (0..5).map(|i| format!("b{i}")).collect(),
            shares: vec![0.1, 0.2, 0.3, 0.25, 0.15],
        }
    }

    fn draw(rng: &mut Rng, shares: &[f64], n: usize) -> Vec<f64> {
        let mut c = vec![0.0; shares.len()];
        for _ in 0..n {
            let u = rng.uniform();
            let mut acc = 0.0;
            let k = shares
                .iter()
                .position(|s| {
                    acc += s;
                    u < acc
                })
                .unwrap_or(shares.len() - 1);
            c[k] += 1.0;
        }
        c
    }

    /// Windows drawn from the reference raise no alarm at any size (small windows would with
    /// a fixed 0.1 threshold), and a shifted distribution does once the sample can show it.
    #[test]
    fn thresholds_follow_the_sample_size() {
        let mut rng = Rng::new(5);
        let r = reference();
        let mut false_alarms = 0;
        for n in [100, 150, 300, 1_000, 10_000, 100_000] {
            for _ in 0..50 {
                let c = draw(&mut rng, &r.shares, n);
                let d = compare("x", &r, &c, 50_000);
                false_alarms += (d.status >= DriftStatus::Warning) as u32;
            }
        }
        assert_eq!(false_alarms, 0);
        let shifted = [0.3, 0.2, 0.2, 0.15, 0.15];
        let d = compare("x", &r, &draw(&mut rng, &shifted, 5_000), 50_000);
        assert_eq!(d.status, DriftStatus::Alarm, "{d:?}");
        assert!(d.js_distance > 0.1 && d.js_distance < 1.0);
        let d = compare("x", &r, &draw(&mut rng, &shifted, 50), 50_000);
        assert_eq!(d.status, DriftStatus::TooFew);
    }
}
