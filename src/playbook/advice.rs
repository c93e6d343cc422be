//! Advice for one customer: risk band, value, treatment group and the eligible actions ranked
//! by expected net value. Runs per scored customer, so text is borrowed, not copied.

use super::predicate::Predicate;
use super::value_expr::eval_rpn;
use super::{Action, LearnedRate, Playbook, RiskBand, Rule, Treatment};
use crate::segment::{LifecycleStage, RfmClass};
use serde::Serialize;
use std::borrow::Cow;

/// A recommended action with its numbers (text borrowed from the playbook).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Recommendation<'a> {
    /// Action id.
    pub action: &'a str,
    /// Action name.
    pub name: &'a str,
    /// Channel.
    pub channel: &'a str,
    /// Cost (serialised in cents).
    #[serde(serialize_with = "crate::util::serialize_cents")]
    pub cost: f64,
    /// Save rate: the share of the customer's churn probability the action removes.
    pub save_rate: f64,
    /// P(churn) × value × save rate − cost; with an uplift model, predicted drop in churn
    /// probability × value − cost (the same number: the save rate is drop ÷ P(churn)).
    /// Serialised in cents; the ranking and the contact decision use the exact number.
    #[serde(serialize_with = "crate::util::serialize_cents")]
    pub expected_value: f64,
    /// The uplift model's predicted drop in churn probability, when one ranked the action.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uplift: Option<f64>,
    /// Why: the rule that matched and the top reasons (rendered as text).
    pub why: Why<'a>,
    /// Message with placeholders filled in (borrowed when it has none).
    pub message: Cow<'a, str>,
}

/// Why an action is recommended; rendered as text only when shown or serialised.
#[derive(Debug, Clone, PartialEq)]
pub enum Why<'a> {
    /// A rule matched; up to two risk drivers from the decision path.
    Rule {
        /// Rule id.
        rule: &'a str,
        /// Readable decision-path conditions that raised the risk.
        drivers: [Option<Cow<'a, str>>; 2],
        /// The save rate was learned from this many contacted customers (`None`: the
        /// playbook's).
        learned: Option<u64>,
        /// The effect came from the customer's uplift model (before any learned rate).
        uplift: Option<Uplift>,
    },
    /// The suppression action: no paid action pays off.
    NoPositiveValue {
        /// Best expected value among the paid actions.
        best: f64,
    },
}

impl std::fmt::Display for Why<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Why::Rule {
                rule,
                drivers,
                learned,
                uplift,
            } => {
                write!(f, "rule '{rule}'")?;
                let mut first = true;
                for d in drivers.iter().flatten() {
                    f.write_str(if first { "; risk drivers: " } else { "; " })?;
                    f.write_str(d)?;
                    first = false;
                }
                match (uplift, learned) {
                    (Some(u), _) => write!(
                        f,
                        "; uplift model ({}, held-out Qini {:.2} [{:.2}, {:.2}]): churn probability {:+.3} if offered",
                        u.learner, u.qini.value, u.qini.low, u.qini.high, -u.effect
                    ),
                    (None, Some(n)) => {
                        write!(f, "; save rate learned from {n} contacted customers")
                    }
                    (None, None) => f.write_str("; save rate from the playbook"),
                }
            }
            Why::NoPositiveValue { best } => write!(
                f,
                "no paid action has a positive expected value (best {best:.2})"
            ),
        }
    }
}

impl Serialize for Why<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// What the playbook says about one customer.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Advice<'a> {
    /// low / medium / high.
    pub risk_band: RiskBand,
    /// Customer value used.
    pub value: f64,
    /// `control` or `treatment`.
    pub treatment: Treatment,
    /// Ranked recommendations (empty for the control group).
    pub recommendations: Vec<Recommendation<'a>>,
    /// The one contact decision: the customer is in the treatment group and the top-ranked
    /// recommendation has a positive expected net value. A campaign filters on this;
    /// `predicted_churn` is the model's classification, for judging the model.
    pub contact: bool,
    /// Control group: the action that would have been recommended first, when the contact
    /// decision would have been yes (the control arm of that action's lift). `None` otherwise.
    pub held_out: Option<&'a str>,
    /// Actions a matching rule proposed that the uplift model predicts would push this customer
    /// out (never recommended to them).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub harms: Vec<&'a str>,
    /// How the first action (offered, or held out for the control group) was chosen: `best`
    /// or `explore` (see [`super::explore`]); `None` when the contact decision is no.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub policy: Option<super::Choice>,
    /// The probability that this action was the one chosen for this customer (1 without
    /// exploration), for evaluating other policies on the log.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub propensity: Option<f64>,
}

/// One customer's effect of one action from an uplift model.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Uplift {
    /// Predicted drop in churn probability if the action is offered (negative: it raises it).
    pub effect: f64,
    /// The meta-learner behind it (`T-learner`, `X-learner`).
    pub learner: &'static str,
    /// Its held-out Qini coefficient with the 95% interval: how well it ranks customers.
    pub qini: crate::model::Estimate,
}

/// The uplift of action `id` for the customer being advised, if a model covers it.
pub type UpliftOf<'a> = &'a dyn Fn(&str) -> Option<Uplift>;

/// Customer context for [`Playbook::advise`].
pub struct Context<'a, 'r> {
    /// Encoded row.
    pub row: &'a [f64],
    /// Calibrated probability.
    pub probability: f64,
    /// Segment name.
    pub segment: Option<&'a str>,
    /// RFM class.
    pub rfm_class: Option<RfmClass>,
    /// Lifecycle stage.
    pub lifecycle: Option<LifecycleStage>,
    /// Customer id, if known.
    pub customer_id: Option<&'a str>,
    /// Top reasons (readable conditions), for the "why"; they outlive the context (they belong
    /// to the scorer) so recommendations can borrow them.
    pub reasons: &'a [Cow<'r, str>],
    /// Per-customer effects of the actions an uplift model covers (`None`: no uplift bundle).
    pub uplift: Option<UpliftOf<'a>>,
    /// The day (Unix days) of the decision: exploration draws per customer and day.
    pub day: i64,
}

/// An eligible action and the highest-priority matching rule that proposes it.
struct Candidate<'s> {
    action: &'s Action,
    priority: i32,
    rule: &'s str,
    /// Its uplift for this customer, when a model covers it (filled before ranking).
    uplift: Option<Uplift>,
}

/// An empty filter list matches everything; otherwise the value must be in it.
#[inline]
fn any_of(list: &[String], v: Option<&str>) -> bool {
    list.is_empty() || v.is_some_and(|v| list.iter().any(|x| x == v))
}

impl Rule {
    /// Whether the rule applies to the customer (`preds` are its compiled `when`).
    /// The file's lists stay text (they ship in the bundle as written), so the customer's
    /// labels are compared by their text.
    #[inline]
    fn matches(&self, preds: &[Predicate], ctx: &Context<'_, '_>, band: RiskBand) -> bool {
        any_of(&self.segment, ctx.segment)
            && any_of(&self.rfm_class, ctx.rfm_class.map(RfmClass::as_str))
            && any_of(&self.lifecycle, ctx.lifecycle.map(LifecycleStage::as_str))
            && any_of(&self.risk_band, Some(band.as_str()))
            && preds.iter().all(|p| p.holds(ctx.row))
    }
}

/// The save rate in force for `a` among `learned` (an applied learned rate, else the
/// playbook's) and, when learned, the contacts it was learned from.
#[inline]
fn rate_in_force(learned: &[LearnedRate], a: &Action) -> (f64, Option<u64>) {
    match learned.iter().find(|l| l.applied && l.action == a.id) {
        Some(l) => (l.save_rate, Some(l.treated)),
        None => (a.save_rate, None),
    }
}

/// Expected values and recommendation text for one customer.
struct Ranker<'c, 'a, 's> {
    ctx: &'c Context<'a, 's>,
    /// Learned save rates in force (usually none: a linear search is cheapest).
    learned: &'s [LearnedRate],
    value: f64,
    /// The first two reasons, shown in every rule's "why".
    drivers: [Option<Cow<'s, str>>; 2],
}

impl<'s> Ranker<'_, '_, 's> {
    /// The save rate in force for `a` (see [`rate_in_force`]).
    #[inline]
    fn rate(&self, a: &Action) -> (f64, Option<u64>) {
        rate_in_force(self.learned, a)
    }

    /// P(churn) × value × save rate − cost, or with an uplift: drop × value − cost.
    #[inline]
    fn ev(&self, c: &Candidate<'_>) -> f64 {
        match c.uplift {
            Some(u) => u.effect * self.value - c.action.cost,
            None => self.ctx.probability * self.value * self.rate(c.action).0 - c.action.cost,
        }
    }

    /// Highest expected value first, then higher priority, then action id.
    fn sort(&self, eligible: &mut [Candidate<'_>]) {
        eligible.sort_by(|x, y| {
            self.ev(y)
                .total_cmp(&self.ev(x))
                .then(y.priority.cmp(&x.priority))
                .then(x.action.id.cmp(&y.action.id))
        });
    }

    /// The recommendation of candidate `c`.
    fn recommend(&self, c: &Candidate<'s>) -> Recommendation<'s> {
        let a = c.action;
        let (save_rate, learned) = match c.uplift {
            Some(u) => (
                (u.effect / self.ctx.probability.max(f64::MIN_POSITIVE)).clamp(0.0, 1.0),
                None,
            ),
            None => self.rate(a),
        };
        Recommendation {
            action: &a.id,
            name: &a.name,
            channel: &a.channel,
            cost: a.cost,
            save_rate,
            expected_value: self.ev(c),
            uplift: c.uplift.map(|u| u.effect),
            why: Why::Rule {
                rule: c.rule,
                drivers: self.drivers.clone(),
                learned,
                uplift: c.uplift,
            },
            message: self.message(a),
        }
    }

    /// The action's message with placeholders filled in; borrowed when it has none.
    fn message(&self, a: &'s Action) -> Cow<'s, str> {
        if !a.message.contains('{') {
            return Cow::Borrowed(&a.message);
        }
        let ctx = self.ctx;
        Cow::Owned(
            a.message
                .replace("{customer_id}", ctx.customer_id.unwrap_or("customer"))
                .replace("{segment}", ctx.segment.unwrap_or(""))
                .replace("{rfm_class}", ctx.rfm_class.map_or("", RfmClass::as_str)),
        )
    }
}

impl Playbook {
    /// The save rate the ranking uses for `a`: its applied learned rate, else the playbook's.
    pub fn rate_in_force(&self, a: &Action) -> f64 {
        rate_in_force(&self.learned, a).0
    }

    /// Customer value of an encoded row.
    pub fn value(&self, row: &[f64]) -> f64 {
        match &self.value_rpn {
            Some(rpn) => eval_rpn(rpn, row).max(0.0),
            None => self.file.value.default,
        }
    }

    /// Rank the eligible actions for one customer.
    pub fn advise<'s>(&'s self, ctx: &Context<'_, 's>) -> Advice<'s> {
        let band = self.file.risk_bands.band(ctx.probability);
        let value = self.value(ctx.row);
        let treatment = self.treatment(ctx.customer_id);
        let ranker = Ranker {
            ctx,
            learned: &self.learned,
            value,
            drivers: [ctx.reasons.first().cloned(), ctx.reasons.get(1).cloned()],
        };
        let (mut eligible, harms) = self.eligible(ctx, band);
        ranker.sort(&mut eligible);
        let mut recs = self.recommendations(&ranker, &eligible);
        let would_contact = recs.first().is_some_and(|r| r.expected_value > 0.0);
        // the best-ranked action leads `recs` whenever the decision is yes (it pays off), so
        // it is eligible[0]; exploration may put another in its place
        let chosen = would_contact.then(|| self.choose(&ranker, &eligible));
        if let Some(c) = chosen.filter(|c| c.index > 0) {
            let rec = ranker.recommend(&eligible[c.index]);
            recs.retain(|r| r.action != rec.action);
            recs.insert(0, rec);
            recs.truncate(self.file.top_n);
        }
        let mut held_out = None;
        if treatment == Treatment::Control {
            held_out = recs.first().filter(|_| would_contact).map(|r| r.action);
            recs.clear();
        }
        let contact = treatment == Treatment::Treatment && would_contact;
        Advice {
            risk_band: band,
            value,
            treatment,
            recommendations: recs,
            contact,
            held_out,
            harms,
            policy: chosen.map(|c| c.choice),
            propensity: chosen.map(|c| c.propensity),
        }
    }

    /// The action of a customer whose contact decision is yes, among the ranked `eligible`:
    /// the best, or with the `[learning] explore` share one drawn by Thompson sampling on the
    /// expected value under each action's save-rate posterior (see [`super::explore`]).
    /// Customers without an id are not explored (their draw could not be replayed).
    fn choose(&self, ranker: &Ranker<'_, '_, '_>, eligible: &[Candidate<'_>]) -> super::Chosen {
        let learning = &self.file.learning;
        let Some(id) = ranker.ctx.customer_id.filter(|_| learning.explore > 0.0) else {
            return super::Chosen::BEST;
        };
        let pv = ranker.ctx.probability * ranker.value;
        // the suppression action is the absence of a contact: never drawn for one (it is not
        // the best either, when the decision is to contact); it is left out of the draw and
        // the drawn index stepped over it
        let suppress = self.file.suppress_action.as_deref();
        let skip = eligible
            .iter()
            .position(|c| Some(c.action.id.as_str()) == suppress);
        if skip == Some(0) {
            return super::Chosen::BEST;
        }
        let rewards: Vec<(f64, f64)> = eligible
            .iter()
            .enumerate()
            .filter(|&(i, _)| Some(i) != skip)
            .map(|(_, c)| {
                let (mean, sd) = super::explore::posterior(&self.learned, c.action, learning);
                (mean * pv - c.action.cost, sd * pv)
            })
            .collect();
        let chosen = super::explore::choose(
            &self.file.experiment,
            id,
            ranker.ctx.day,
            learning.explore,
            &rewards,
        );
        let index = match skip {
            Some(k) if chosen.index >= k => chosen.index + 1,
            _ => chosen.index,
        };
        super::Chosen { index, ..chosen }
    }

    /// Actions proposed by the matching rules (each once, with its highest-priority rule),
    /// within the cost cap of the customer's RFM class, without those the uplift model predicts
    /// to harm the customer (returned apart) or the evaluation found to harm.
    fn eligible<'s>(
        &'s self,
        ctx: &Context<'_, '_>,
        band: RiskBand,
    ) -> (Vec<Candidate<'s>>, Vec<&'s str>) {
        let mut eligible = self.proposed(ctx, band);
        // an uplift model's effect replaces the average one; an action it predicts to push this
        // customer out is never recommended to them
        let mut harms = Vec::new();
        if let Some(of) = ctx.uplift {
            for e in &mut eligible {
                e.uplift = of(&e.action.id);
            }
            eligible.retain(|e| {
                let keep = e.uplift.is_none_or(|u| u.effect >= 0.0);
                if !keep {
                    harms.push(e.action.id.as_str());
                }
                keep
            });
        }
        if self.learned.iter().any(|l| l.harms) {
            eligible.retain(|e| {
                !self
                    .learned
                    .iter()
                    .any(|l| l.harms && l.action == e.action.id)
            });
        }
        (eligible, harms)
    }

    /// Actions proposed by the matching rules (each once, with its highest-priority rule),
    /// within the cost cap of the customer's RFM class: what the playbook allows, before any
    /// learned or predicted harm.
    fn proposed<'s>(&'s self, ctx: &Context<'_, '_>, band: RiskBand) -> Vec<Candidate<'s>> {
        let mut eligible = Vec::new();
        for (r, preds) in self.file.rules.iter().zip(&self.predicates) {
            if r.matches(preds, ctx, band) {
                self.propose(r, &mut eligible);
            }
        }
        if let Some(cap) = ctx
            .rfm_class
            .and_then(|c| self.file.cost_caps.get(c.as_str()))
        {
            eligible.retain(|e| e.action.cost <= *cap);
        }
        eligible
    }

    /// The actions the rules allow for a customer (see [`Playbook::advise`]), in rule order:
    /// what any targeting policy may choose from (the simulator's oracle and risk policies).
    pub fn allowed<'s>(&'s self, ctx: &Context<'_, '_>) -> Vec<&'s Action> {
        let band = self.file.risk_bands.band(ctx.probability);
        self.proposed(ctx, band)
            .into_iter()
            .map(|c| c.action)
            .collect()
    }

    /// Add the actions of matching rule `r`; a higher priority takes over an action's rule.
    fn propose<'s>(&'s self, r: &'s Rule, eligible: &mut Vec<Candidate<'s>>) {
        for aid in &r.actions {
            let Some(a) = self.file.actions.iter().find(|a| &a.id == aid) else {
                continue;
            };
            if r.max_cost.is_some_and(|m| a.cost > m) {
                continue;
            }
            match eligible.iter_mut().find(|e| e.action.id == a.id) {
                Some(e) if e.priority >= r.priority => {}
                Some(e) => {
                    e.priority = r.priority;
                    e.rule = &r.id;
                }
                None => eligible.push(Candidate {
                    action: a,
                    priority: r.priority,
                    rule: &r.id,
                    uplift: None,
                }),
            }
        }
    }

    /// The top free or paying actions of the ranked `eligible`; the suppression action leads
    /// when no paid action pays off.
    fn recommendations<'s>(
        &'s self,
        ranker: &Ranker<'_, '_, 's>,
        eligible: &[Candidate<'s>],
    ) -> Vec<Recommendation<'s>> {
        let mut recs: Vec<Recommendation> = eligible
            .iter()
            .filter(|c| c.action.cost == 0.0 || ranker.ev(c) > 0.0)
            .take(self.file.top_n)
            .map(|c| ranker.recommend(c))
            .collect();
        let best_paid = eligible
            .iter()
            .filter(|c| c.action.cost > 0.0)
            .map(|c| ranker.ev(c))
            .fold(f64::NEG_INFINITY, f64::max);
        if recs.iter().all(|r| r.cost == 0.0) && best_paid <= 0.0 {
            self.suppress(ranker, &mut recs, best_paid);
        }
        recs
    }

    /// Put the suppression action (if any) first, explained by the best paid expected value.
    fn suppress<'s>(
        &'s self,
        ranker: &Ranker<'_, '_, 's>,
        recs: &mut Vec<Recommendation<'s>>,
        best_paid: f64,
    ) {
        let Some(sid) = &self.file.suppress_action else {
            return;
        };
        let Some(a) = self.file.actions.iter().find(|a| &a.id == sid) else {
            return;
        };
        recs.retain(|r| r.action != a.id);
        let mut r = ranker.recommend(&Candidate {
            action: a,
            priority: 0,
            rule: "",
            uplift: None,
        });
        r.why = Why::NoPositiveValue {
            best: if best_paid.is_finite() {
                best_paid
            } else {
                0.0
            },
        };
        recs.insert(0, r);
        recs.truncate(self.file.top_n);
    }
}
