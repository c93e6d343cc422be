//! What the evaluation reads: the predictions of one model and the outcomes of their customers,
//! with text interned (a million predictions hold a few distinct versions, segments and
//! actions) and each prediction's label matured or pending.

use crate::store::OutcomeEvent;
use crate::util::FxHashMap;

/// An interned string (index into [`EvalData::names`]).
pub type Sym = u32;

/// One stored prediction, as the evaluation needs it.
#[derive(Debug, Clone, PartialEq)]
pub struct PredictionObs {
    /// Customer ([`EvalData::customer`]).
    pub customer: Sym,
    /// Unix milliseconds.
    pub scored_at: i64,
    /// Calibrated probability.
    pub probability: f64,
    /// Model version.
    pub version: Sym,
    /// Segment name.
    pub segment: Option<Sym>,
    /// `Some(true)`: control group; `Some(false)`: treatment; `None`: no playbook.
    pub control: Option<bool>,
    /// Top recommended action (treatment group).
    pub top_action: Option<Sym>,
    /// The action a control customer would have been offered.
    pub held_out: Option<Sym>,
    /// The contact decision (`None`: not recorded).
    pub contact: Option<bool>,
    /// Customer value used in the expected values.
    pub value: Option<f64>,
    /// The probability the top (or held-out) action had of being chosen (1 when not recorded:
    /// before exploration, the best action was surely chosen).
    pub propensity: f32,
}

/// One outcome event.
#[derive(Debug, Clone, PartialEq)]
pub struct OutcomeObs {
    /// Customer ([`EvalData::customer`]).
    pub customer: Sym,
    /// What happened.
    pub event: OutcomeEvent,
    /// Unix milliseconds.
    pub at: i64,
    /// The prediction it names (index into [`EvalData::predictions`]), if it names one that
    /// is loaded.
    pub prediction: Option<usize>,
    /// Action (for `action_taken`).
    pub action: Option<Sym>,
    /// Cost of the action.
    pub cost: Option<f64>,
    /// Purchase amount.
    pub amount: Option<f64>,
    /// Survey score.
    pub score: Option<i64>,
}

/// The predictions and outcomes one evaluation reads.
#[derive(Debug, Clone, Default)]
pub struct EvalData {
    /// Interned text.
    pub names: Vec<String>,
    index: FxHashMap<String, Sym>,
    /// Predictions, in the order loaded (by time).
    pub predictions: Vec<PredictionObs>,
    /// Outcome events.
    pub outcomes: Vec<OutcomeObs>,
    /// Customer key → number (customers are only compared, never shown: no name list).
    customers: FxHashMap<Box<str>, Sym>,
    /// Prediction id → index, for outcomes that name their prediction.
    ids: FxHashMap<String, usize>,
    /// The most recent predictions of the period with their stored inputs, for drift.
    pub drift_rows: Vec<crate::store::RecentInput>,
    /// The external ids of survey answers that carry one, by outcome index (ascending): they
    /// break ties between a customer's answers at the same instant (KPIs). Only surveys keep
    /// theirs, so the rest of the log costs nothing.
    survey_ids: Vec<(usize, Box<str>)>,
}

impl EvalData {
    /// Intern `s`.
    pub fn sym(&mut self, s: &str) -> Sym {
        if let Some(&k) = self.index.get(s) {
            return k;
        }
        let k = self.names.len() as Sym;
        self.names.push(s.to_string());
        self.index.insert(s.to_string(), k);
        k
    }

    /// The number of customer `key` (its own numbering, apart from [`EvalData::sym`]).
    pub fn customer(&mut self, key: &str) -> Sym {
        if let Some(&k) = self.customers.get(key) {
            return k;
        }
        let k = self.customers.len() as Sym;
        self.customers.insert(key.into(), k);
        k
    }

    /// Every customer key, indexed by its number.
    pub fn customer_keys(&self) -> Vec<&str> {
        let mut v = vec![""; self.customers.len()];
        for (k, &c) in &self.customers {
            v[c as usize] = k;
        }
        v
    }

    /// The text of `k`.
    pub fn name(&self, k: Sym) -> &str {
        &self.names[k as usize]
    }

    /// The symbol of `s`, if interned.
    pub fn find(&self, s: &str) -> Option<Sym> {
        self.index.get(s).copied()
    }

    /// Add a prediction; `id` is kept only when an outcome may name it (`keep_id`).
    pub fn push_prediction(&mut self, obs: PredictionObs, id: Option<&str>) {
        if let Some(id) = id {
            self.ids.insert(id.to_string(), self.predictions.len());
        }
        self.predictions.push(obs);
    }

    /// Every prediction's index, in time order (equal times in load order).
    pub(crate) fn by_time(&self) -> Vec<usize> {
        let mut idx: Vec<usize> = (0..self.predictions.len()).collect();
        idx.sort_by_key(|&i| self.predictions[i].scored_at);
        idx
    }

    /// The positions in `idx` (prediction indices in time order) of each customer's first
    /// prediction: the unit of the lift and of the uplift rows (a customer scored again during
    /// a campaign is one experiment, not several).
    pub(crate) fn first_per_customer(&self, idx: &[usize]) -> Vec<usize> {
        let mut seen = crate::util::FxHashSet::default();
        (0..idx.len())
            .filter(|&k| seen.insert(self.predictions[idx[k]].customer))
            .collect()
    }

    /// Each customer's first prediction with its label judged as of `as_of` within
    /// `horizon_ms`, in time order: `(prediction index, churned)` of the matured ones, and how
    /// many were still pending (the rows of uplift training and of model comparison).
    pub(crate) fn first_matured(&self, horizon_ms: i64, as_of: i64) -> (Vec<(usize, bool)>, usize) {
        let tl = Timeline::new(self);
        let idx = self.by_time();
        let mut pending = 0;
        let mut matured = Vec::new();
        for k in self.first_per_customer(&idx) {
            let i = idx[k];
            match tl.label(self, &self.predictions[i], horizon_ms, as_of) {
                Label::Pending => pending += 1,
                l => matured.push((i, l == Label::Churned)),
            }
        }
        (matured, pending)
    }

    /// The index of a loaded prediction by its id.
    pub fn prediction_index(&self, id: &str) -> Option<usize> {
        self.ids.get(id).copied()
    }

    /// Add an outcome event.
    pub fn push_outcome(&mut self, obs: OutcomeObs) {
        self.outcomes.push(obs);
    }

    /// Record the external id of the outcome pushed last, when it is a survey answer.
    pub fn set_external_id(&mut self, external_id: &str) {
        if let Some(o) = self.outcomes.last() {
            if o.event == crate::store::OutcomeEvent::Survey {
                self.survey_ids
                    .push((self.outcomes.len() - 1, external_id.into()));
            }
        }
    }

    /// The external id of survey answer `outcome` (its index), if it has one.
    pub fn survey_id(&self, outcome: usize) -> Option<&str> {
        self.survey_ids
            .binary_search_by_key(&outcome, |x| x.0)
            .ok()
            .map(|k| &*self.survey_ids[k].1)
    }
}

/// Where a prediction's label stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Label {
    /// A `churned` event within `[scored_at, scored_at + horizon)`.
    Churned,
    /// The horizon has passed without a `churned` event.
    Retained,
    /// Not yet known: neither.
    Pending,
}

/// Each customer's events, sorted by time (indices into `outcomes`).
pub(crate) struct Timeline {
    by_customer: FxHashMap<Sym, Vec<usize>>,
}

impl Timeline {
    pub(crate) fn new(data: &EvalData) -> Timeline {
        let mut by_customer: FxHashMap<Sym, Vec<usize>> = FxHashMap::default();
        for (i, o) in data.outcomes.iter().enumerate() {
            by_customer.entry(o.customer).or_default().push(i);
        }
        for v in by_customer.values_mut() {
            v.sort_by_key(|&i| data.outcomes[i].at);
        }
        Timeline { by_customer }
    }

    /// The customer's events with `from <= at < to`.
    pub(crate) fn between<'d>(
        &'d self,
        data: &'d EvalData,
        customer: Sym,
        from: i64,
        to: i64,
    ) -> impl Iterator<Item = (usize, &'d OutcomeObs)> + 'd {
        let list: &[usize] = self
            .by_customer
            .get(&customer)
            .map_or(&[], |v| v.as_slice());
        let start = list.partition_point(|&i| data.outcomes[i].at < from);
        let end = list.partition_point(|&i| data.outcomes[i].at < to);
        list[start..end]
            .iter()
            .map(move |&i| (i, &data.outcomes[i]))
    }

    /// The label of prediction `p` with horizon `horizon_ms`, as of `as_of`.
    pub(crate) fn label(
        &self,
        data: &EvalData,
        p: &PredictionObs,
        horizon_ms: i64,
        as_of: i64,
    ) -> Label {
        let end = p.scored_at + horizon_ms;
        if self
            .between(data, p.customer, p.scored_at, end)
            .any(|(_, o)| o.event == OutcomeEvent::Churned)
        {
            Label::Churned
        } else if as_of >= end {
            Label::Retained
        } else {
            Label::Pending
        }
    }
}
