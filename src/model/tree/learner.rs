//! The learner abstraction: a [`Learner`] prepares a matrix once into a [`Grow`], and
//! [`Prepared`] grows and compiles trees on subsets of its rows. Also the learner registry.

use super::{Structure, Tree, TreeParams};
use crate::features::Matrix;
use crate::model::ModelError;

/// Grows trees on one prepared matrix (see [`Learner::prepare`]).
pub trait Grow: Sync {
    /// Grow a tree on rows `rows` with labels `y` and sample weights `w`, using up to `threads`
    /// threads.
    fn grow(
        &self,
        y: &[bool],
        w: &[f64],
        rows: &[usize],
        params: &TreeParams,
        threads: usize,
    ) -> Result<Structure, ModelError>;

    /// The binned matrix, for learners that bin (boosting reuses it).
    fn binned(&self) -> Option<&crate::model::bins::Binned> {
        None
    }
}

/// A tree learner.
pub trait Learner: Sync {
    /// Name recorded in the bundle and the card.
    fn name(&self) -> &'static str;
    /// True when a tree grown to depth `d` is the top of the tree grown deeper (greedy CART), so
    /// the grid search can grow once and truncate.
    fn nests_by_depth(&self) -> bool {
        false
    }
    /// One-time work on the training matrix (binning, …) shared by every fit on it; `rows` are the
    /// rows any later fit may use (statistics such as bin edges come from them only).
    fn prepare<'a>(
        &self,
        x: &'a Matrix,
        rows: &[usize],
        threads: usize,
    ) -> Result<Box<dyn Grow + 'a>, ModelError>;
}

/// A learner prepared on a matrix: grows and compiles trees on subsets of the prepared rows.
pub struct Prepared<'a> {
    /// The learner.
    pub learner: &'a dyn Learner,
    /// The encoded matrix.
    pub x: &'a Matrix,
    grower: Box<dyn Grow + 'a>,
}

impl<'a> Prepared<'a> {
    /// Prepare `learner` on `x` for fits on (subsets of) `rows`.
    pub fn new(
        learner: &'a dyn Learner,
        x: &'a Matrix,
        rows: &[usize],
        threads: usize,
    ) -> Result<Prepared<'a>, ModelError> {
        Ok(Prepared {
            learner,
            x,
            grower: learner.prepare(x, rows, threads)?,
        })
    }

    /// The binned matrix when the learner bins (see [`Grow::binned`]).
    pub fn binned(&self) -> Option<&crate::model::bins::Binned> {
        self.grower.binned()
    }

    /// Grow the raw structure.
    pub fn structure(
        &self,
        y: &[bool],
        w: &[f64],
        rows: &[usize],
        params: &TreeParams,
        threads: usize,
    ) -> Result<Structure, ModelError> {
        if rows.is_empty() {
            return Err(ModelError::Fit("no training rows".into()));
        }
        self.grower.grow(y, w, rows, params, threads)
    }

    /// Grow and compile.
    pub fn fit(
        &self,
        y: &[bool],
        w: &[f64],
        rows: &[usize],
        params: &TreeParams,
        threads: usize,
    ) -> Result<Tree, ModelError> {
        let s = self.structure(y, w, rows, params, threads)?;
        Tree::compile(
            s,
            self.learner.name(),
            self.x,
            y,
            w,
            rows,
            params.criterion,
            1.0,
        )
    }
}

/// Prepare, grow and compile in one step (one thread).
pub fn fit_tree(
    learner: &dyn Learner,
    x: &Matrix,
    y: &[bool],
    w: &[f64],
    rows: &[usize],
    params: &TreeParams,
) -> Result<Tree, ModelError> {
    if rows.is_empty() {
        return Err(ModelError::Fit("no training rows".into()));
    }
    Prepared::new(learner, x, rows, 1)?.fit(y, w, rows, params, 1)
}

/// Signature of a learner that grows straight from the matrix.
pub(super) type DirectFn =
    fn(&Matrix, &[bool], &[f64], &[usize], &TreeParams) -> Result<Structure, ModelError>;

/// A learner that needs no preparation, bound to its matrix.
pub(super) struct Direct<'a> {
    /// The matrix every fit reads.
    pub(super) x: &'a Matrix,
    /// The grow function.
    pub(super) grow: DirectFn,
}

impl Grow for Direct<'_> {
    fn grow(
        &self,
        y: &[bool],
        w: &[f64],
        rows: &[usize],
        params: &TreeParams,
        _threads: usize,
    ) -> Result<Structure, ModelError> {
        (self.grow)(self.x, y, w, rows, params)
    }
}

crate::util::text_enum! {
    /// The learners a config (`model.learner`) or `--learner` can choose.
    #[derive(Default, clap::ValueEnum)]
    pub enum LearnerKind {
        /// Histogram CART (the default).
        #[default]
        Hist = "hist",
        /// The project's exact CART.
        Cart = "cart",
        /// linfa-trees (the reference implementation).
        Linfa = "linfa",
    }
}

impl LearnerKind {
    /// The learner itself.
    pub fn learner(self) -> &'static dyn Learner {
        match self {
            LearnerKind::Hist => &HIST,
            LearnerKind::Cart => &super::CartLearner,
            LearnerKind::Linfa => &super::LinfaLearner,
        }
    }
}

/// Names of the learners, default first.
pub const LEARNERS: [&str; 3] = LearnerKind::NAMES;

static HIST: super::HistLearner = super::HistLearner {
    max_bins: crate::model::bins::MAX_BINS,
};

/// Look a learner up by name.
pub fn learner_by_name(name: &str) -> Result<&'static dyn Learner, ModelError> {
    LearnerKind::from_name(name)
        .map(LearnerKind::learner)
        .ok_or_else(|| {
            ModelError::Config(format!(
                "unknown learner '{name}' (expected one of: {})",
                LEARNERS.join(", ")
            ))
        })
}
