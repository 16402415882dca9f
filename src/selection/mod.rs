//! Selection of pool rows for a target, by one of two loops, and what they share: the checked
//! options (`params`), the stop rule, the host that draws random numbers and hears progress, and
//! the result.
//!
//! - `gradient`: GIO as the reference runs it (its `GIOKL.fit`): descend on a relaxed v, snap v
//!   to the nearest unused pool row, test the stop criterion, reset the pool when allowed.
//! - `greedy`: exact greedy on the unaveraged k-NN estimator.

pub mod gradient;
pub mod greedy;
mod params;

pub use crate::kl::knn_kl_divergence;
pub use gradient::gradient_select;
pub use greedy::greedy_select;
pub use params::{
    Method, SelectParams, Semantics, StopCriterion, VInit, ValidSelectParams,
    DEFAULT_GREEDY_MAX_BYTES,
};

use crate::error::GioError;
use crate::memory;
use crate::parallel::num_threads;
use crate::rows::{Element, Rows};
use crate::simd::ROW_PANEL;

/// Runs the loop `params.method` names: rows of `train` for target `x`, starting from the
/// selection `w0` (which the greedy method allows to be empty).
pub fn select<T: Element>(
    train: Rows<'_, T>,
    x: Rows<'_, T>,
    w0: Rows<'_, T>,
    params: &ValidSelectParams,
    host: &mut dyn LoopHost,
) -> Result<Selection, GioError> {
    match params.method {
        Method::Gradient => gradient_select(train, x, w0, params, host),
        Method::Greedy => greedy_select(train, x, w0, params, host),
    }
}

/// The working set of a selection (see `crate::memory`) from `n_train` pool rows for `n_target`
/// target rows of `dim` values of `itemsize` bytes, starting from `n_start` rows: per pool row its
/// pool flag and snap distance; per target row the estimator's state (norms, nearest
/// distances, k-th neighbour distances) and each worker thread's gradient partials; the target
/// packed once in 8-row panels of its own type (`RowPanels`) and, while the X-to-X term is
/// computed, a float32 copy in 16-row panels (`PackedCenters`); the selection's rows, v and its
/// records; for the greedy method, its pool × target table of f64 log-distances.
pub fn working_set(
    n_train: usize,
    n_target: usize,
    dim: usize,
    n_start: usize,
    max_iter: usize,
    method: Method,
    itemsize: usize,
) -> usize {
    // The selection never outgrows the pool.
    let selected = n_start
        .saturating_add(max_iter.min(n_train))
        .saturating_add(1);
    let per_target = 320usize.saturating_mul(num_threads()).saturating_add(64);
    let table = match method {
        Method::Gradient => 0,
        Method::Greedy => memory::bytes(&[&[8, n_train, n_target]]),
    };
    memory::bytes(&[
        &[memory::BASE_BYTES],
        &[16, n_train],
        &[n_target, per_target],
        &[n_target.saturating_add(ROW_PANEL), dim, itemsize],
        &[n_target.saturating_add(16), dim, 4],
        &[16, dim, selected],
        &[table],
    ])
}

/// What a loop needs from its caller: random draws (so that the Python layer can use Python's
/// `random` exactly as the reference does), progress reports and interrupts.
pub trait LoopHost {
    /// A uniform draw in [0, 1) (`random.random()`).
    fn random(&mut self) -> Result<f64, GioError>;
    /// A uniform index in 0..n (`random.sample(range(n), 1)[0]`).
    fn pick(&mut self, n: usize) -> Result<usize, GioError>;
    /// Called once before the first candidate.
    fn on_start(&mut self, _kl_start: f64, _scale_factor: f64) -> Result<(), GioError> {
        Ok(())
    }
    /// Called after every candidate; an error stops the run.
    fn on_candidate(&mut self, _event: &CandidateEvent) -> Result<(), GioError> {
        Ok(())
    }
    /// Called often during long work (between descent steps); an error stops the run.
    fn poll(&mut self) -> Result<(), GioError> {
        Ok(())
    }
}

/// One candidate's outcome, for progress reporting.
#[derive(Debug, Clone, PartialEq)]
pub struct CandidateEvent {
    /// Candidates evaluated so far, this one included.
    pub candidate: usize,
    /// The reference's iteration counter `i` when this candidate was made (it steps back on
    /// a reset, so it can repeat or be negative).
    pub iteration: i64,
    /// This candidate made the loop refill the pool.
    pub reset: bool,
    /// Rows accepted so far (after this candidate).
    pub selected: usize,
    pub kl: f64,
    pub accepted: bool,
    pub num_resets: usize,
}

/// Why the loop ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopReason {
    /// More than `max_iter` rows accepted (the reference's `total_iter > max_iter`).
    MaxIter,
    Criterion(StopCriterion),
    /// No unused pool row left (fixed semantics only; the reference raises).
    PoolExhausted,
}

impl StopReason {
    pub fn name(self) -> &'static str {
        match self {
            StopReason::MaxIter => "max_iter",
            StopReason::Criterion(c) => c.name(),
            StopReason::PoolExhausted => "pool_exhausted",
        }
    }
}

/// Everything a loop produced; the reference's return tuple can be rebuilt from it.
#[derive(Debug, Clone, PartialEq)]
pub struct Selection {
    /// Indices into train of the accepted rows, in order (duplicates possible after a reset).
    pub indices: Vec<usize>,
    /// KL after each accepted row.
    pub kl_trace: Vec<f64>,
    /// KL of the initial selection.
    pub kl_start: f64,
    /// Every candidate's KL, rejected and discarded ones included.
    pub candidate_kl: Vec<f64>,
    /// Steps of each descent (gradient method).
    pub descent_iters: Vec<usize>,
    /// v after each descent, row-major (empty unless `record_v_opts`).
    pub v_opts: Vec<f64>,
    /// The descent's gradient scale (NaN for the greedy method).
    pub scale_factor: f64,
    /// v as the reference returns it (empty for the greedy method).
    pub v: Vec<f64>,
    pub just_reset: bool,
    pub num_resets: usize,
    /// The reference's `increases` counter.
    pub increases: usize,
    /// Rows currently out of the pool.
    pub used: Vec<bool>,
    pub stop_reason: StopReason,
}

impl Selection {
    /// An empty selection from a pool of `n_train` rows.
    fn new(kl_start: f64, scale_factor: f64, n_train: usize) -> Self {
        Selection {
            indices: Vec::new(),
            kl_trace: Vec::new(),
            kl_start,
            candidate_kl: Vec::new(),
            descent_iters: Vec::new(),
            v_opts: Vec::new(),
            scale_factor,
            v: Vec::new(),
            just_reset: false,
            num_resets: 0,
            increases: 0,
            used: vec![false; n_train],
            stop_reason: StopReason::MaxIter,
        }
    }

    fn accept(&mut self, row: usize, kl: f64) {
        self.indices.push(row);
        self.kl_trace.push(kl);
    }

    /// The event reporting the latest candidate.
    fn event(&self, iteration: i64, kl: f64, accepted: bool, reset: bool) -> CandidateEvent {
        CandidateEvent {
            candidate: self.candidate_kl.len(),
            iteration,
            reset,
            selected: self.indices.len(),
            kl,
            accepted,
            num_resets: self.num_resets,
        }
    }
}

/// The stop test both loops run on every candidate (the reference's `_test_stop_criterion`, with
/// the fixes of fixed semantics), what a stop leads to, and the count of consecutive increases
/// the test keeps.
#[derive(Debug, Clone)]
pub struct StopRule {
    criterion: StopCriterion,
    fixed: bool,
    min_difference: f64,
    min_kl: f64,
    max_sequential_increases: usize,
    resets_allowed: bool,
    max_resets: usize,
    /// `data_size` stops once the iteration counter passes int(max_data_size · pool rows).
    data_size_limit: i64,
    consecutive_increases: usize,
}

impl StopRule {
    pub fn new(params: &ValidSelectParams, n_train: usize) -> Self {
        StopRule {
            criterion: params.stop_criterion,
            fixed: params.semantics == Semantics::Fixed,
            min_difference: params.min_difference,
            min_kl: params.min_kl,
            max_sequential_increases: params.max_sequential_increases,
            resets_allowed: params.resets_allowed,
            max_resets: params.max_resets,
            data_size_limit: (params.max_data_size * n_train as f64).trunc() as i64,
            consecutive_increases: 0,
        }
    }

    pub fn criterion(&self) -> StopCriterion {
        self.criterion
    }

    /// Whether a candidate of KL `kl` stops the run, `prev` being the KL before it, `iteration`
    /// the reference's counter and `out` the run so far (its resets and `increases` counter).
    pub fn check(&mut self, kl: f64, prev: f64, iteration: i64, out: &Selection) -> bool {
        // Every comparison with NaN is false: no criterion stops on an undefined KL.
        let increased = kl > prev;
        self.consecutive_increases = if increased {
            self.consecutive_increases + 1
        } else {
            0
        };
        match self.criterion {
            StopCriterion::Increase => increased,
            StopCriterion::MaxResets if self.fixed => increased,
            StopCriterion::MaxResets => increased && out.num_resets == self.max_resets,
            StopCriterion::MinDifference => prev - kl < self.min_difference,
            StopCriterion::SequentialIncreaseTolerance if self.fixed => {
                increased && self.consecutive_increases > self.max_sequential_increases
            }
            StopCriterion::SequentialIncreaseTolerance => {
                increased && out.increases == self.max_sequential_increases
            }
            StopCriterion::MinKl => kl < self.min_kl,
            StopCriterion::DataSize => self.data_size_reached(iteration),
            StopCriterion::Never => false,
        }
    }

    /// `data_size`'s limit passed at iteration (accepted rows, without resets) `iteration`.
    pub fn data_size_reached(&self, iteration: i64) -> bool {
        self.criterion == StopCriterion::DataSize && iteration > self.data_size_limit
    }

    /// Fixed semantics keep the row whose KL reached `min_kl`, then stop.
    pub fn keeps_stopping_row(&self) -> bool {
        self.fixed && self.criterion == StopCriterion::MinKl
    }

    /// Whether a stop refills the pool instead, after `num_resets` resets.
    pub fn may_reset(&self, num_resets: usize) -> bool {
        let allowed =
            self.resets_allowed || (self.fixed && self.criterion == StopCriterion::MaxResets);
        allowed && num_resets < self.max_resets
    }

    /// The pool was refilled: fixed semantics count increases afresh.
    pub fn after_reset(&mut self) {
        if self.fixed {
            self.consecutive_increases = 0;
        }
    }
}

/// The column counts every loop checks: the pool's and the start's must be the target's.
fn check_columns<T: Element>(
    train: Rows<'_, T>,
    x: Rows<'_, T>,
    w0: Rows<'_, T>,
) -> Result<(), GioError> {
    for (name, rows) in [("train", train), ("D", w0)] {
        if rows.dim() != x.dim() {
            return Err(GioError::invalid(
                name,
                format!("has {} columns but X has {}", rows.dim(), x.dim()),
            ));
        }
    }
    Ok(())
}
