//! The evaluation's readable summary for the terminal (`churn-train evaluate`).

use super::{drift, performance, Estimate, Evaluation};
use crate::playbook::LearnedRate;

/// `value [low, high]`, each part formatted by `f`.
fn est(e: &Estimate, f: &dyn Fn(f64) -> String) -> String {
    format!("{} [{}, {}]", f(e.value), f(e.low), f(e.high))
}

/// Three decimals.
fn num3(x: f64) -> String {
    format!("{x:.3}")
}

/// The threshold metrics line of an evaluation's summary.
fn threshold_summary(s: &mut String, pc: &performance::PerformanceCheck) {
    use std::fmt::Write;
    if let Some(t) = &pc.at_threshold {
        let both = |r: Option<Estimate>, e: Option<f64>| {
            format!(
                "{} (expected {})",
                r.map_or("-".into(), |r| est(&r, &num3)),
                e.map_or("-".into(), num3)
            )
        };
        let _ = writeln!(
            s,
            "  at threshold {:.3} ({} group, {} matured): precision {}, recall {}, F1 {} (expected {})",
            t.threshold,
            pc.group,
            t.n,
            both(t.precision, t.expected_precision),
            both(t.recall, t.expected_recall),
            t.f1.map_or("-".into(), num3),
            t.expected_f1.map_or("-".into(), num3),
        );
    }
}

/// The learned save rates of an evaluation's summary.
fn learned_summary(s: &mut String, rates: &[LearnedRate]) {
    use std::fmt::Write;
    let pct = |x: f64| format!("{:.1}%", 100.0 * x);
    if !rates.is_empty() {
        let _ = writeln!(
            s,
            "\nlearned save rates (posterior mean and 95% interval; prior = playbook; effect = churn points prevented per contact)"
        );
        for l in rates {
            let effect = l.effect.map_or("-".into(), |e| {
                format!(
                    "{:+.1} pts [{:+.1}, {:+.1}]",
                    100.0 * e.value,
                    100.0 * e.low,
                    100.0 * e.high
                )
            });
            let status = if l.harms {
                " — harms: never recommended".to_string()
            } else if l.applied {
                String::new()
            } else {
                format!(
                    " — not yet used (±{:.3}; needs [learning] min_arm customers per arm and ±{:.2})",
                    (l.save_rate_high - l.save_rate_low) / 2.0,
                    crate::playbook::MAX_HALF_WIDTH
                )
            };
            let _ = writeln!(
                s,
                "  {:<22} {:.3} [{:.3}, {:.3}] (playbook {:.3}; effect {effect} on {} contacted, take-up {}; {} control){status}",
                l.action,
                l.save_rate,
                l.save_rate_low,
                l.save_rate_high,
                l.prior_rate,
                l.treated,
                l.take_up.map_or("-".into(), pct),
                l.control,
            );
        }
    }
}

impl Evaluation {
    /// A readable summary for the terminal.
    pub fn summary(&self) -> String {
        use std::fmt::Write;
        let mut s = String::new();
        let pct = |x: f64| format!("{:.1}%", 100.0 * x);
        let _ = writeln!(
            s,
            "model {}: {} predictions of {} customers; labels as of {} with a {}-day horizon ({})",
            self.model,
            self.predictions,
            self.customers,
            self.as_of,
            self.horizon_days,
            self.horizon_source
        );
        let groups = std::iter::once(&self.overall)
            .chain(&self.by_group)
            .chain(&self.by_version)
            .chain(&self.by_month)
            .chain(&self.by_segment);
        let _ = writeln!(s, "\nperformance (realised on matured labels, 95% intervals; expected from the probabilities)");
        for (k, g) in groups.enumerate() {
            let label = match k {
                0 => "all".to_string(),
                _ => g.key.clone(),
            };
            let r = &g.realised;
            let auc = r.auc.map_or("-".into(), |e| est(&e, &num3));
            let _ = writeln!(
                s,
                "  {label:<24} matured {:>7} pending {:>7}  churn {} (expected {})  AUC {} (expected {:.3}){}",
                r.n,
                g.pending,
                pct(r.churn_rate.value),
                pct(g.expected.churn_rate),
                auc,
                g.expected.auc,
                r.note.as_deref().map(|n| format!("  — {n}")).unwrap_or_default()
            );
        }
        let pc = &self.performance;
        let _ = writeln!(
            s,
            "  ranking ({} group): {:?} (expected AUC {:.3}{}{})",
            pc.group,
            pc.status,
            pc.expected_auc,
            pc.expected_auc_interval
                .map(|[l, h]| format!(" [{l:.3}, {h:.3}]"))
                .unwrap_or_default(),
            pc.realised_auc
                .map(|e| format!(", realised {}", est(&e, &num3)))
                .unwrap_or_default()
        );
        let c = &pc.calibration;
        let _ = writeln!(
            s,
            "  calibration ({} group): {:?} (Hosmer–Lemeshow {:.1} on {} bins, 99.9% point {:.1}; largest gap {:.3})",
            pc.group, c.status, c.statistic, c.bins, c.critical, c.max_gap
        );
        threshold_summary(&mut s, pc);
        let _ = writeln!(
            s,
            "\naction lift (control churn − contacted churn, 95% interval; the verdict reads the intention-to-treat lift: control churn − churn of all it was recommended to)"
        );
        for a in self.actions.iter().filter(|a| a.segment.is_none()) {
            let lift = a.lift.map_or("-".into(), |e| {
                est(&e, &|x| format!("{:+.1} pts", 100.0 * x))
            });
            let _ = writeln!(
                s,
                "  {:<22} contacted {:>6} ({}), control {:>6} ({}), not contacted {:>6}: lift {lift}, ITT {}, MDE {}, {:?}",
                a.action,
                a.contacted.n,
                pct(a.contacted.rate()),
                a.control.n,
                pct(a.control.rate()),
                a.not_contacted.n,
                a.intention_to_treat.map_or("-".into(), |e| {
                    est(&e, &|x| format!("{:+.1} pts", 100.0 * x))
                }),
                a.minimum_detectable_effect.map_or("-".into(), |m| format!("{:.1} pts", 100.0 * m)),
                a.verdict
            );
        }
        learned_summary(&mut s, &self.learned_rates);
        if let Some(d) = &self.drift {
            drift_summary(&mut s, d);
        }
        for n in &self.notes {
            let _ = writeln!(s, "\nnote: {n}");
        }
        s
    }
}

/// The drift part of [`Evaluation::summary`].
fn drift_summary(s: &mut String, d: &drift::DriftReport) {
    use std::fmt::Write;
    let pct = |x: f64| format!("{:.1}%", 100.0 * x);
    let _ = writeln!(
        s,
        "\ndrift of the {} most recent predictions against training: {:?}",
        d.rows, d.status
    );
    for x in d
        .inputs
        .iter()
        .filter(|x| x.status >= drift::DriftStatus::Warning)
    {
        let _ = writeln!(
            s,
            "  {:<24} PSI {:.3} (noise {:.3}) {:?}",
            x.name, x.psi, x.noise_threshold, x.status
        );
    }
    for x in d.segment_mix.iter().chain([&d.score]) {
        let _ = writeln!(
            s,
            "  {:<24} PSI {:.3} (noise {:.3}) {:?}",
            x.name, x.psi, x.noise_threshold, x.status
        );
    }
    let b = &d.base_rate;
    let _ = writeln!(
        s,
        "  base rate ({} group): training {}, expected {}{} {:?}{}",
        b.group,
        pct(b.training),
        pct(b.expected),
        b.realised
            .map(|r| format!(
                ", realised {} [{}, {}]",
                pct(r.value),
                pct(r.low),
                pct(r.high)
            ))
            .unwrap_or_default(),
        b.status,
        b.treatment
            .map(|t| format!("; treatment realised {} (not judged)", pct(t.value)))
            .unwrap_or_default()
    );
}
