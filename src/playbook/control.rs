//! The control group: a deterministic share of customers who get no recommendations, so the
//! effect of the playbook can be measured.

use super::Playbook;

/// Deterministic control-group assignment: sha256 of `experiment` and the customer id.
pub fn in_control(customer_id: &str, experiment: &str, holdout_percent: f64) -> bool {
    let v = crate::util::stable_u64(&format!("{experiment}\u{1f}{customer_id}"));
    (v % 1_000_000) as f64 / 10_000.0 < holdout_percent
}

crate::util::text_enum! {
    /// The group a customer falls in for the playbook's experiment.
    pub enum Treatment {
        /// Gets the playbook's recommendations.
        Treatment = "treatment",
        /// Held out: gets no recommendations.
        Control = "control",
    }
}

impl Playbook {
    /// The group of a customer; customers without an id are always treated.
    pub(super) fn treatment(&self, customer_id: Option<&str>) -> Treatment {
        match customer_id {
            Some(id)
                if self.file.holdout_percent > 0.0
                    && in_control(id, &self.file.experiment, self.file.holdout_percent) =>
            {
                Treatment::Control
            }
            _ => Treatment::Treatment,
        }
    }
}
