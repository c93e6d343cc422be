//! The scoring core: raw customer fields → encoded row → calibrated prediction, warnings and
//! reasons. `churn-score` (batch) and `churn-serve` (HTTP) both call [`Scorer`].
//!
//! Submodules: [`Reason`]s (each input's net contribution along the decision path), [`Lever`]s (changes that lower the risk)
//! and batch scoring of tables ([`Scorer::score_table`]).

mod batch;
mod levers;
mod output;
mod reasons;

pub use levers::{Change, Lever};
pub use output::{
    available_columns, score_columns, score_columns_observed, select_columns, BatchOutput, Cells,
    ColumnError, OutputColumn,
};
pub use reasons::{edge_condition, Explanation, Reason};

use crate::bundle::{Bundle, LoadedBundle};
use crate::features::{EncodeError, Warning};
use crate::io::RawValue;
use crate::model::Prediction;
use crate::model::Predictor;

/// Errors of the scoring layer.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ScoreError {
    /// A feature the model needs is absent.
    #[error("field '{field}' is required by the model and missing")]
    MissingField {
        /// Field.
        field: String,
    },
    /// A value has the wrong type.
    #[error(transparent)]
    BadValue(#[from] EncodeError),
    /// Columns the model needs are absent from a batch file.
    #[error(
        "{path}: missing columns required by the model: {missing}; available columns: {available}"
    )]
    MissingColumns {
        /// File.
        path: String,
        /// Missing columns.
        missing: String,
        /// Available columns.
        available: String,
    },
    /// A bad row in a batch file.
    // the row's error is part of this message, not a `source`: a report of the error chain
    // would print it twice
    #[error("{path}: row {row}: {error}")]
    BadRow {
        /// File.
        path: String,
        /// 1-based data row.
        row: usize,
        /// The row's error.
        error: Box<ScoreError>,
    },
}

impl ScoreError {
    /// Process exit code: a row or table the model cannot score is bad input (2).
    pub fn exit_code(&self) -> i32 {
        2
    }
}

impl ScoreError {
    /// The field the error is about, if any.
    pub fn field(&self) -> Option<&str> {
        match self {
            ScoreError::MissingField { field } => Some(field),
            ScoreError::BadValue(e) => Some(&e.field),
            ScoreError::BadRow { error, .. } => error.field(),
            ScoreError::MissingColumns { .. } => None,
        }
    }
}

/// A scored customer.
#[derive(Debug, Clone, PartialEq)]
pub struct Scored<'a> {
    /// The prediction.
    pub prediction: Prediction,
    /// Warnings about the input.
    pub warnings: Vec<Warning>,
    /// Segment, RFM class and lifecycle stage (when the model has segments).
    pub segment: Option<crate::segment::Assignment<'a>>,
    /// Risk band, treatment group and ranked recommendations (when the model has a playbook).
    pub advice: Option<crate::playbook::Advice<'a>>,
    /// The three inputs that raised the risk most (when the model has a playbook).
    pub reasons: Vec<std::borrow::Cow<'a, Reason>>,
    /// The three inputs that lowered the risk most (when the model has a playbook).
    pub protective: Vec<std::borrow::Cow<'a, Reason>>,
}

/// Which parts of a result to compute beyond the probability.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Detail {
    /// Segment, RFM class and lifecycle stage.
    pub segments: bool,
    /// Playbook advice (risk band, treatment, recommendations) and the reasons behind it.
    pub advice: bool,
    /// The day (Unix days) the answer is for: exploration draws per customer and day.
    pub day: i64,
}

impl Detail {
    /// Everything the bundle can tell, for day 0 (1970-01-01; see [`Detail::on`]).
    pub const FULL: Detail = Detail {
        segments: true,
        advice: true,
        day: 0,
    };

    /// The same detail for the day holding instant `at_ms` (Unix milliseconds).
    pub fn on(self, at_ms: i64) -> Detail {
        Detail {
            day: at_ms.div_euclid(crate::time::DAY_MS),
            ..self
        }
    }
}

/// A loaded model ready to score.
#[derive(Debug, Clone)]
pub struct Scorer {
    /// The bundle.
    pub bundle: Bundle,
    /// Content version of the bundle.
    pub version: String,
    /// Each leaf's [`Explanation`] of a single tree (empty for internal nodes), built once so
    /// scoring formats no text.
    explanations: Vec<Explanation>,
    /// TreeSHAP tables of a boosted model, built once at load so each row's reasons cost
    /// `O(depth)` per leaf.
    shap: Option<crate::model::shap::ShapTables>,
    /// Input name → position.
    inputs: crate::util::FxHashMap<String, usize>,
    /// The uplift bundle beside the model, with its content version (see
    /// [`Scorer::attach_uplift`]).
    pub uplift: Option<(std::sync::Arc<crate::bundle::uplift::UpliftBundle>, String)>,
}

impl Scorer {
    /// Wrap a loaded bundle.
    pub fn new(loaded: LoadedBundle) -> Scorer {
        let mut s = Scorer {
            bundle: loaded.bundle,
            version: loaded.version,
            explanations: Vec::new(),
            shap: None,
            inputs: Default::default(),
            uplift: None,
        };
        s.inputs = s
            .bundle
            .encoder
            .inputs
            .iter()
            .enumerate()
            .map(|(i, spec)| (spec.name.clone(), i))
            .collect();
        match &s.bundle.model.predictor {
            Predictor::Tree(t) => {
                s.explanations = reasons::explain_leaves(&t.tree, &s.bundle.encoder);
            }
            Predictor::Boosted(b) => {
                s.shap = Some(crate::model::shap::ShapTables::new(&b.ensemble));
            }
        }
        s
    }

    /// Rank recommendations by the uplift bundle in `dir` when there is one (checked against
    /// this model: another model's, or one for other encoded columns, is refused); without one,
    /// nothing changes. Returns whether one was attached.
    pub fn attach_uplift(
        &mut self,
        dir: &std::path::Path,
    ) -> Result<bool, crate::bundle::BundleError> {
        self.uplift = crate::bundle::uplift::load(dir, &self.bundle)?
            .map(|(u, v)| (std::sync::Arc::new(u), v));
        Ok(self.uplift.is_some())
    }

    /// Position of input field `name` among the model's inputs.
    pub fn input_index(&self, name: &str) -> Option<usize> {
        self.inputs.get(name).copied()
    }

    /// Names of the input fields the model needs.
    pub fn input_names(&self) -> impl Iterator<Item = &str> {
        self.bundle.encoder.inputs.iter().map(|i| i.name.as_str())
    }

    /// Encode one customer. `get(i)` returns input `i`'s value, or `None` when the field is absent.
    pub fn encode<'a>(
        &self,
        get: impl Fn(usize) -> Option<RawValue<'a>>,
        warnings: &mut Vec<Warning>,
    ) -> Result<Vec<f64>, ScoreError> {
        let mut row = vec![0.0; self.bundle.encoder.width()];
        self.encode_into(get, &mut row, warnings)?;
        Ok(row)
    }

    /// Encode one customer into `row` (of the encoder's width; every cell is overwritten).
    pub fn encode_into<'a>(
        &self,
        get: impl Fn(usize) -> Option<RawValue<'a>>,
        row: &mut [f64],
        warnings: &mut Vec<Warning>,
    ) -> Result<(), ScoreError> {
        let enc = &self.bundle.encoder;
        row.fill(0.0);
        for (i, spec) in enc.inputs.iter().enumerate() {
            let v = get(i).ok_or_else(|| ScoreError::MissingField {
                field: spec.name.clone(),
            })?;
            enc.encode_cell(i, v, row, warnings)?;
        }
        Ok(())
    }

    /// Score one customer.
    pub fn score<'a>(
        &self,
        get: impl Fn(usize) -> Option<RawValue<'a>>,
    ) -> Result<Scored<'_>, ScoreError> {
        let mut warnings = Vec::new();
        let row = self.encode(get, &mut warnings)?;
        Ok(self.score_encoded(&row, warnings, None))
    }

    /// Replace the bundle's playbook (validated against this model).
    pub fn set_playbook(
        &mut self,
        file: crate::playbook::PlaybookFile,
        source: &str,
    ) -> Result<(), crate::playbook::PlaybookError> {
        let pb = crate::playbook::Playbook::compile(file, &self.bundle.encoder, source)?;
        self.bundle.playbook = Some(pb);
        Ok(())
    }

    /// The actions the playbook's rules allow for the customer of encoded `row`, scored as `s`
    /// (its probability and segment; empty without a playbook).
    pub fn allowed_actions(&self, row: &[f64], s: &Scored<'_>) -> Vec<&crate::playbook::Action> {
        let Some(pb) = self.bundle.playbook.as_ref() else {
            return Vec::new();
        };
        let segment = s.segment.as_ref();
        pb.allowed(&crate::playbook::Context {
            row,
            probability: s.prediction.probability,
            segment: segment.map(|a| a.segment),
            rfm_class: segment.and_then(|a| a.rfm_class),
            lifecycle: segment.and_then(|a| a.lifecycle_stage),
            customer_id: None,
            reasons: &[],
            uplift: None,
            day: 0,
        })
    }

    /// Score an encoded row; `customer_id` drives the control-group assignment.
    pub fn score_encoded(
        &self,
        row: &[f64],
        warnings: Vec<Warning>,
        customer_id: Option<&str>,
    ) -> Scored<'_> {
        self.score_encoded_with(row, warnings, customer_id, Detail::FULL)
    }

    /// Score an encoded row computing only the parts `detail` asks for (the probability always).
    pub fn score_encoded_with(
        &self,
        row: &[f64],
        warnings: Vec<Warning>,
        customer_id: Option<&str>,
        detail: Detail,
    ) -> Scored<'_> {
        let prediction = self.bundle.model.predict(row);
        self.score_predicted(row, prediction, warnings, customer_id, detail)
    }

    /// [`Scorer::score_encoded_with`] when the row's prediction is already known (batch
    /// scoring predicts a block of rows at once).
    pub fn score_predicted(
        &self,
        row: &[f64],
        prediction: crate::model::Prediction,
        warnings: Vec<Warning>,
        customer_id: Option<&str>,
        detail: Detail,
    ) -> Scored<'_> {
        // the playbook's rules may test the segment, so advice implies segments
        let segment = if detail.segments || detail.advice {
            self.bundle.segments.as_ref().map(|s| s.assign(row))
        } else {
            None
        };
        let playbook = self.bundle.playbook.as_ref().filter(|_| detail.advice);
        let (reasons, protective) = if playbook.is_some() {
            self.top_reasons_with_leaf(row, prediction.leaf, 3)
        } else {
            (Vec::new(), Vec::new())
        };
        let advice = playbook.map(|pb| {
            // only risk-raising inputs explain a retention action
            let top: Vec<std::borrow::Cow<str>> = reasons
                .iter()
                .take(2)
                .map(|r| match r {
                    std::borrow::Cow::Borrowed(b) => {
                        std::borrow::Cow::Borrowed(b.condition.as_str())
                    }
                    std::borrow::Cow::Owned(o) => std::borrow::Cow::Owned(o.condition.clone()),
                })
                .collect();
            let uplift_of = |action: &str| {
                let (u, _) = self.uplift.as_ref()?;
                let a = u.applied(action)?;
                Some(crate::playbook::Uplift {
                    effect: a.model.effect(row),
                    learner: a.model.learner().title(),
                    qini: a.qini,
                })
            };
            pb.advise(&crate::playbook::Context {
                row,
                probability: prediction.probability,
                segment: segment.as_ref().map(|s| s.segment),
                rfm_class: segment.as_ref().and_then(|s| s.rfm_class),
                lifecycle: segment.as_ref().and_then(|s| s.lifecycle_stage),
                customer_id,
                reasons: &top,
                uplift: self
                    .uplift
                    .is_some()
                    .then_some(&uplift_of as crate::playbook::UpliftOf<'_>),
                day: detail.day,
            })
        });
        Scored {
            prediction,
            warnings,
            segment,
            advice,
            reasons,
            protective,
        }
    }
}
