//! The first hour with a table the service has not seen: which column is the label and the id,
//! what is personal data or an identifier to drop, where tenure and revenue are, what drives
//! churn and which of the brief's actions fits each driver — written as a commented
//! `churn.toml` and `playbook.toml` (`churn-train init`), and used directly when a model is
//! trained without a playbook.
//!
//! - [`infer_roles`]: column roles from the raw table;
//! - [`infer_playbook`]: a playbook from the customer-level table (customer table or
//!   transaction features);
//! - [`write_config`], [`write_playbook`]: the files, every decision beside its key.

mod drivers;
mod playbook;
mod roles;
mod write;

pub use playbook::{field, infer_playbook, Inferred, DISCOUNT, MARGIN, REFERENCE_VALUE};
pub use roles::{infer_roles, Roles, Tenure};
pub use write::{relative_path, write_config, write_playbook};

use std::path::PathBuf;

/// Errors of the init layer.
#[derive(Debug, thiserror::Error)]
pub enum InitError {
    /// No label column could be chosen.
    #[error("{path}: {problem}")]
    Label {
        /// Input file.
        path: PathBuf,
        /// Why, and what to do.
        problem: String,
    },
}

impl InitError {
    /// Process exit code: bad input (2).
    pub fn exit_code(&self) -> i32 {
        2
    }
}

/// One decision about the table, with its reason (printed by `churn-train init`, written as a
/// comment beside the key it sets, and listed in the card of a model trained without a
/// playbook).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    /// What kind of decision: `label`, `id`, `personal data`, `driver`, …
    pub topic: &'static str,
    /// The column, rule or key it is about.
    pub subject: String,
    /// What was decided.
    pub decision: String,
    /// Why.
    pub why: String,
}

impl Decision {
    pub(crate) fn new(topic: &'static str, subject: &str, decision: &str, why: String) -> Self {
        Decision {
            topic,
            subject: subject.to_string(),
            decision: decision.to_string(),
            why,
        }
    }
}

impl std::fmt::Display for Decision {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}: {} → {} ({})",
            self.topic, self.subject, self.decision, self.why
        )
    }
}
