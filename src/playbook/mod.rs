//! Retention playbook as data: actions, rules, risk bands, customer value and a control group.
//!
//! A playbook is TOML that CRM teams edit without a rebuild. It is validated against the model it
//! is used with ([`Playbook::compile`]): unknown actions or features, bad predicates and
//! out-of-range numbers are errors naming the file, the rule and the problem. The compiled form
//! evaluates on the encoded row, so rules see exactly what the model saw.
//!
//! - the file types ([`PlaybookFile`], [`Action`], [`Rule`], …) and reading;
//! - compilation and validation ([`Playbook::compile`]);
//! - predicates ([`Predicate`]) and value expressions ([`Tok`]);
//! - advice ([`Playbook::advise`]) and the control group ([`in_control`]);
//! - save rates learned from measured lift ([`LearnedRate`], [`Playbook::set_learned`]);
//! - exploration by Thompson sampling with logged propensities ([`explore`]).

mod advice;
mod compile;
mod control;
pub mod explore;
mod file;
mod learned;
mod predicate;
mod value_expr;

pub use advice::{Advice, Context, Recommendation, Uplift, UpliftOf, Why};
pub use compile::Playbook;
pub use control::{in_control, Treatment};
pub use explore::{Choice, Chosen};
pub use file::{
    locate, parse, read, Action, PlaybookFile, RiskBand, RiskBands, Rule, SourceText, ValueConfig,
    DEFAULT_PLAYBOOK,
};
pub use learned::{prior_variance, LearnedRate, LearningConfig, DEFAULT_EXPLORE, MAX_HALF_WIDTH};
pub use predicate::{parse_predicate, Op, Predicate};
pub use value_expr::Tok;

/// Errors of the playbook layer.
#[derive(Debug, thiserror::Error)]
pub enum PlaybookError {
    /// Reading the file failed.
    #[error("{file}: {message}")]
    Read {
        /// File.
        file: String,
        /// Why.
        message: String,
    },
    /// A rule, action or setting is invalid.
    #[error("{file}{at}: {place}: {problem}")]
    Invalid {
        /// File.
        file: String,
        /// `, line N` when the file's text is known, else empty.
        at: String,
        /// `rule 'x'`, `action 'Y'`, `value`, `risk_bands`, …
        place: String,
        /// What is wrong.
        problem: String,
    },
}

impl PlaybookError {
    /// Process exit code: an unreadable or invalid playbook is bad input (2).
    pub fn exit_code(&self) -> i32 {
        2
    }
}
