//! Measure and adjust: what the logged predictions turned out to be worth once outcomes came
//! back. One core for `churn-train evaluate` and `GET /v1/evaluation`:
//!
//! - labels from outcomes ([`data`]): churned within `[scored_at, scored_at + horizon)`,
//!   pending until the horizon has passed or a `churned` event arrived;
//! - realised performance with intervals, and the performance expected from the calibrated
//!   probabilities before labels arrive ([`performance`]), overall and per model version,
//!   month and segment;
//! - the lift of each action against the control group ([`lift`]) and the save rates it
//!   teaches ([`crate::playbook::LearnedRate`]);
//! - a simulator with known truth ([`simulate`]) that the statistics are tested on.

pub mod compare;
pub mod data;
pub mod drift;
pub mod effects;
pub mod kpi;
pub mod learn;
pub mod lift;
mod load;
pub mod performance;
pub mod policy;
pub mod retrain;
pub mod simulate;
pub mod stats;
mod summary;
pub mod uplift;
pub mod waves;

pub use data::{EvalData, Label, OutcomeObs, PredictionObs, Sym};
pub use lift::{ActionLift, Arm, Verdict};
pub use load::load;
pub use performance::{Expected, Realised};
pub use stats::Estimate;

use crate::playbook::{LearnedRate, Playbook, Treatment};
use crate::time::format_instant;
use data::Timeline;
use serde::Serialize;

/// Default label horizon of customer-table models (transaction models carry their own).
pub const DEFAULT_HORIZON_DAYS: u32 = 90;

use crate::time::DAY_MS;

/// Errors of the evaluation layer.
#[derive(Debug, thiserror::Error)]
pub enum EvalError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    /// A parameter is out of range.
    #[error("{field}: {message}")]
    Invalid {
        /// The parameter (`from`, `to`, `model`, …).
        field: &'static str,
        /// What was expected.
        message: String,
    },
    /// A simulated customer could not be scored.
    #[error(transparent)]
    Score(#[from] crate::scoring::ScoreError),
}

impl EvalError {
    /// Process exit code: bad parameters are usage errors (2).
    pub fn exit_code(&self) -> i32 {
        match self {
            EvalError::Store(e) => e.exit_code(),
            EvalError::Invalid { .. } => 2,
            EvalError::Score(e) => e.exit_code(),
        }
    }
}

/// What to evaluate.
#[derive(Debug, Clone)]
pub struct EvalOptions<'a> {
    /// Model name.
    pub model: String,
    /// Label horizon in days.
    pub horizon_days: u32,
    /// Where the horizon comes from (shown in the report).
    pub horizon_source: String,
    /// Predictions scored at or after this instant (Unix ms).
    pub from: Option<i64>,
    /// Predictions scored before this instant.
    pub to: Option<i64>,
    /// Labels are judged as of this instant (default: now).
    pub as_of: i64,
    /// The model's bundle: its playbook (action costs, the priors of learned save rates), its
    /// encoder and training profile (drift).
    pub bundle: Option<&'a crate::bundle::Bundle>,
}

impl EvalOptions<'_> {
    fn playbook(&self) -> Option<&Playbook> {
        self.bundle.and_then(|b| b.playbook.as_ref())
    }
}

/// Realised and expected performance of one group of predictions.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GroupReport {
    /// Version, month (`YYYY-MM`) or segment; `all` overall.
    pub key: String,
    /// Predictions in the group.
    pub predictions: usize,
    /// Of which still pending.
    pub pending: usize,
    /// On matured predictions.
    pub realised: Realised,
    /// From the probabilities of all predictions of the group.
    pub expected: Expected,
}

/// The evaluation of one model over one period.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Evaluation {
    /// Model name.
    pub model: String,
    /// Predictions from (ISO date-time, inclusive), if limited.
    pub from: Option<String>,
    /// Predictions until (exclusive), if limited.
    pub to: Option<String>,
    /// Labels as of.
    pub as_of: String,
    /// Label horizon in days.
    pub horizon_days: u32,
    /// Where the horizon comes from.
    pub horizon_source: String,
    /// Predictions evaluated.
    pub predictions: usize,
    /// Customers (their first prediction in the period is the unit of the action lift).
    pub customers: usize,
    /// Overall.
    pub overall: GroupReport,
    /// Per model version.
    pub by_version: Vec<GroupReport>,
    /// Per calendar month of scoring (UTC).
    pub by_month: Vec<GroupReport>,
    /// Per segment.
    pub by_segment: Vec<GroupReport>,
    /// Control and treatment group: actions change the treatment group's outcomes, so the
    /// control group's realised figures judge the model alone.
    pub by_group: Vec<GroupReport>,
    /// Lift of each action (all actions `*` first), overall and per segment.
    pub actions: Vec<ActionLift>,
    /// Save rates learned from the lift (with a playbook).
    pub learned_rates: Vec<LearnedRate>,
    /// Drift of the window's most recent predictions against the training profile.
    pub drift: Option<drift::DriftReport>,
    /// Realised AUC against the expected, on the control group (else everyone).
    pub performance: performance::PerformanceCheck,
    /// Caveats.
    pub notes: Vec<String>,
}

/// The period's predictions (indices `idx`, labels `labels`) grouped overall, by model version,
/// by month, by segment and by treatment group. The groupings sort a million probabilities
/// several times each: two run at a time.
fn groupings(data: &EvalData, idx: &[usize], labels: &[Label]) -> [Vec<GroupReport>; 5] {
    let pred = |i: usize| &data.predictions[i];
    let group = |dim: usize| -> Vec<GroupReport> {
        match dim {
            0 => group_by(data, idx, labels, &|_| Some("all".into())),
            1 => group_by(data, idx, labels, &|i| {
                Some(data.name(pred(i).version).into())
            }),
            2 => group_by(data, idx, labels, &|i| {
                Some(crate::time::format_month(pred(i).scored_at).into())
            }),
            4 => group_by(data, idx, labels, &|i| {
                pred(i).control.map(|c| {
                    if c {
                        Treatment::Control
                    } else {
                        Treatment::Treatment
                    }
                    .as_str()
                    .into()
                })
            }),
            _ => group_by(data, idx, labels, &|i| {
                pred(i).segment.map(|s| data.name(s).into())
            }),
        }
    };
    std::thread::scope(|s| {
        let other = s.spawn(|| [group(2), group(3)]);
        let mine = [group(0), group(1), group(4)];
        let [m, g] = other.join().expect("grouping thread");
        let [a, v, t] = mine;
        [a, v, m, g, t]
    })
}

/// From this many action × segment cells on, the evaluation notes that their raw intervals
/// mislead when read together.
pub const MANY_CELLS: usize = 10;

/// The caveats a reader of the evaluation needs.
fn notes(
    opt: &EvalOptions<'_>,
    overall: &GroupReport,
    actions: &[ActionLift],
    has_drift: bool,
) -> Vec<String> {
    let mut notes = Vec::new();
    if !has_drift {
        notes.push(match opt.bundle {
            None => {
                "no bundle of the model is loaded: no drift, action costs or learned rates".into()
            }
            Some(_) => "the bundle holds no training profile: no drift".into(),
        });
    }
    if overall.pending > 0 {
        notes.push(format!(
            "{} of {} predictions are within their {}-day horizon without a churned event: pending, not counted as retained",
            overall.pending, overall.predictions, opt.horizon_days
        ));
    }
    if actions
        .iter()
        .any(|a| a.not_contacted.n + a.not_contacted.pending > 0)
    {
        notes.push(
            "customers recommended an action but not contacted are in neither arm of the lift (per protocol); the intention-to-treat lift, the verdicts and the learned rates count them"
                .into(),
        );
    }
    let cells = actions
        .iter()
        .filter(|a| a.segment.is_some() && a.q_value.is_some())
        .count();
    if cells >= MANY_CELLS {
        notes.push(format!(
            "{cells} action × segment cells were compared at once: at 5% each, about {:.0} would show an effect by chance; their verdicts read the Benjamini–Hochberg q_value (false discovery rate 5%), not the raw interval",
            cells as f64 * 0.05
        ));
    }
    notes
}

/// Evaluate `data` (the predictions of one model and their customers' outcomes).
pub fn evaluate(data: &EvalData, opt: &EvalOptions<'_>) -> Result<Evaluation, EvalError> {
    if let (Some(f), Some(t)) = (opt.from, opt.to) {
        if f >= t {
            return Err(EvalError::Invalid {
                field: "from",
                message: format!(
                    "must be before to ({} ≥ {})",
                    format_instant(f),
                    format_instant(t)
                ),
            });
        }
    }
    if opt.horizon_days == 0 {
        return Err(EvalError::Invalid {
            field: "horizon_days",
            message: "must be at least 1".into(),
        });
    }
    let horizon = i64::from(opt.horizon_days) * DAY_MS;
    let tl = Timeline::new(data);
    // the period's predictions in time order
    let mut idx: Vec<usize> = (0..data.predictions.len())
        .filter(|&i| {
            let t = data.predictions[i].scored_at;
            opt.from.is_none_or(|f| t >= f) && opt.to.is_none_or(|e| t < e)
        })
        .collect();
    idx.sort_by_key(|&i| data.predictions[i].scored_at);
    let labels: Vec<Label> = idx
        .iter()
        .map(|&i| tl.label(data, &data.predictions[i], horizon, opt.as_of))
        .collect();
    let [all, by_version, by_month, by_segment, by_group] = groupings(data, &idx, &labels);
    let pred = |i: usize| &data.predictions[i];
    let overall = all
        .into_iter()
        .next()
        .unwrap_or_else(|| Bucket::default().report("all".into()));
    // the unit of the lift: each customer's first prediction in the period, with its label
    let units: Vec<(usize, Label)> = data
        .first_per_customer(&idx)
        .into_iter()
        .map(|k| (idx[k], labels[k]))
        .collect();
    let cost = |a: &str| -> Option<f64> {
        opt.playbook()
            .and_then(|pb| pb.file.actions.iter().find(|x| x.id == a))
            .map(|x| x.cost)
    };
    let arms = lift::Arms::collect(data, &tl, &units, horizon, &cost);
    let actions = arms.lifts(data);
    let learned_rates = learn::learn(&actions, opt.playbook());
    let drift = opt.bundle.and_then(|b| {
        let profile = b.profile.as_ref()?;
        Some(drift::drift(
            profile,
            &b.encoder,
            &data.drift_rows,
            base_rate_labels(&overall, &by_group),
        ))
    });

    let performance = {
        let (group, g) = judged(&overall, &by_group);
        // the judged group's matured probabilities and labels
        let (mut p, mut y) = (Vec::new(), Vec::new());
        for (&i, &l) in idx.iter().zip(&labels) {
            if l != Label::Pending && (group == "all" || pred(i).control == Some(true)) {
                p.push(pred(i).probability);
                y.push(l == Label::Churned);
            }
        }
        let threshold = opt.bundle.map(|b| b.model.threshold);
        performance::check_with(
            group,
            &g.realised,
            &g.expected,
            threshold.map(|t| (&p[..], &y[..], t)),
        )
    };
    let notes = notes(opt, &overall, &actions, drift.is_some());
    Ok(Evaluation {
        model: opt.model.clone(),
        from: opt.from.map(format_instant),
        to: opt.to.map(format_instant),
        as_of: format_instant(opt.as_of),
        horizon_days: opt.horizon_days,
        horizon_source: opt.horizon_source.clone(),
        predictions: idx.len(),
        customers: units.len(),
        overall,
        by_version,
        by_month,
        by_segment,
        by_group,
        actions,
        learned_rates,
        drift,
        performance,
        notes,
    })
}

/// The group whose labels judge the model (base rate and ranking): the control group when it has
/// matured labels, else everyone. A campaign that works lowers the treated customers' churn and
/// changes who among them churns: judged over everyone, 31 of 62 evaluations of a working
/// campaign alarmed with a perfectly calibrated control group.
fn judged<'g>(
    overall: &'g GroupReport,
    by_group: &'g [GroupReport],
) -> (&'static str, &'g GroupReport) {
    group_of(by_group, Treatment::Control).map_or(("all", overall), |c| ("control", c))
}

/// Group `k` of the treatment groupings, when it has matured labels.
fn group_of(by_group: &[GroupReport], k: Treatment) -> Option<&GroupReport> {
    by_group
        .iter()
        .find(|g| g.key == k.as_str() && g.realised.n > 0)
}

/// The labels the base-rate check judges ([`judged`]), the treatment group's shown apart.
fn base_rate_labels(overall: &GroupReport, by_group: &[GroupReport]) -> drift::Labels {
    let (group, g) = judged(overall, by_group);
    drift::Labels {
        group,
        n: g.realised.n,
        realised: g.realised.churn_rate,
        expected: g.expected.churn_rate,
        treatment: (group == "control")
            .then(|| group_of(by_group, Treatment::Treatment))
            .flatten()
            .map(|t| t.realised.churn_rate),
    }
}

/// One report per distinct key of the predictions `idx` (with their `labels`): each key
/// computed once, into its group's bucket.
fn group_by<'d>(
    data: &EvalData,
    idx: &[usize],
    labels: &[Label],
    key: &dyn Fn(usize) -> Option<std::borrow::Cow<'d, str>>,
) -> Vec<GroupReport> {
    let mut buckets: std::collections::BTreeMap<String, Bucket> = Default::default();
    for (k, &i) in idx.iter().enumerate() {
        let Some(name) = key(i) else { continue };
        let p = data.predictions[i].probability;
        match buckets.get_mut(name.as_ref()) {
            Some(b) => b.add(p, labels[k]),
            None => {
                let mut b = Bucket::default();
                b.add(p, labels[k]);
                buckets.insert(name.into_owned(), b);
            }
        }
    }
    buckets.into_iter().map(|(k, b)| b.report(k)).collect()
}

/// The predictions of one group, split by label.
#[derive(Default)]
struct Bucket {
    /// Matured probabilities and labels.
    p: Vec<f64>,
    y: Vec<bool>,
    /// Every probability.
    all: Vec<f64>,
    pending: usize,
}

impl Bucket {
    fn add(&mut self, prob: f64, label: Label) {
        self.all.push(prob);
        match label {
            Label::Pending => self.pending += 1,
            l => {
                self.p.push(prob);
                self.y.push(l == Label::Churned);
            }
        }
    }

    fn report(self, key: String) -> GroupReport {
        GroupReport {
            key,
            predictions: self.all.len(),
            pending: self.pending,
            realised: performance::realised(&self.p, &self.y),
            expected: performance::expected(&self.all),
        }
    }
}

/// The period and label settings of an evaluation run (the query of the CLI and the API).
#[derive(Debug, Clone, Default)]
pub struct Period {
    /// Predictions scored at or after (Unix ms).
    pub from: Option<i64>,
    /// Predictions scored before.
    pub to: Option<i64>,
    /// Labels as of (default: now).
    pub as_of: Option<i64>,
    /// Label horizon override in days.
    pub horizon_days: Option<u32>,
}

/// The model to evaluate: the one named, else the only one the store has predictions of.
pub async fn resolve_model(
    store: &crate::store::Store,
    model: Option<&str>,
) -> Result<String, EvalError> {
    if let Some(m) = model {
        return Ok(m.to_string());
    }
    let models = store.models().await?;
    match models.as_slice() {
        [one] => Ok(one.clone()),
        [] => Err(EvalError::Invalid {
            field: "model",
            message: "the store holds no predictions yet".into(),
        }),
        many => Err(EvalError::Invalid {
            field: "model",
            message: format!(
                "the store holds several models; name one of: {}",
                many.join(", ")
            ),
        }),
    }
}

/// The label horizon in days of predictions by `bundle`, and where it comes from: `given` (an
/// override), else the horizon of a transaction model, else [`DEFAULT_HORIZON_DAYS`].
pub fn horizon(given: Option<u32>, bundle: Option<&crate::bundle::Bundle>) -> (u32, &'static str) {
    match (given, bundle.and_then(|b| b.transactions.as_ref())) {
        (Some(h), _) => (h, "given"),
        (None, Some(t)) => (t.horizon_days, "the model's transaction horizon"),
        (None, None) => (
            DEFAULT_HORIZON_DAYS,
            "default for customer-table models; set --horizon-days",
        ),
    }
}

/// The options of evaluating `model` over `period` with its bundle (when loaded): the label
/// horizon ([`horizon`], the period's override first) and the playbook.
pub fn options<'a>(
    model: &str,
    bundle: Option<&'a crate::bundle::Bundle>,
    period: &Period,
) -> EvalOptions<'a> {
    let (horizon_days, horizon_source) = horizon(period.horizon_days, bundle);
    EvalOptions {
        model: model.to_string(),
        horizon_days,
        horizon_source: horizon_source.to_string(),
        from: period.from,
        to: period.to,
        as_of: period.as_of.unwrap_or_else(crate::time::now_ms),
        bundle,
    }
}

/// Put the save rates learned for the scorer's model (`churn-train evaluate`) in force. A store
/// that cannot be read leaves the playbook's rates, with a warning.
pub fn apply_learned_rates(scorer: &mut crate::scoring::Scorer, store: &crate::store::Store) {
    let Some(pb) = scorer.bundle.playbook.as_mut() else {
        return;
    };
    match store.block_on(store.learned_rates(&scorer.bundle.name)) {
        Ok(rates) => {
            let used = pb.set_learned(&rates);
            if used > 0 {
                tracing::info!(model = %scorer.bundle.name, rates = used, "learned save rates in force");
            }
        }
        Err(e) => {
            tracing::warn!(model = %scorer.bundle.name, error = %e, "learned save rates unreadable; the playbook's rates apply")
        }
    }
}
