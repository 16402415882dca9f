//! The greedy GIO loop (the reference's `GIOKL.fit`, lines 157–239): descend on v, snap v to
//! the nearest unused pool row, evaluate the KL with that row, test the stop criterion, reset
//! the pool when allowed. Two semantics: the reference's, quirks included, and a fixed one.

use crate::descent::{auto_scale_factor, descend, descend_many, DescentWork};
use crate::distance::nearest_unused;
use crate::error::GioError;
use crate::kl::{Candidate, KlParams, KlState};
use crate::rows::{Element, Rows};

/// When to stop (the reference's `stop_criterion` names).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopCriterion {
    Increase,
    MaxResets,
    MinDifference,
    SequentialIncreaseTolerance,
    MinKl,
    DataSize,
    /// A name the reference does not know: it never stops (reference semantics only).
    Never,
}

impl StopCriterion {
    pub const NAMES: [&'static str; 6] = [
        "increase",
        "max_resets",
        "min_difference",
        "sequential_increase_tolerance",
        "min_kl",
        "data_size",
    ];

    /// Parses a criterion name; unknown names are `None`.
    pub fn parse(name: &str) -> Option<Self> {
        Some(match name {
            "increase" => StopCriterion::Increase,
            "max_resets" => StopCriterion::MaxResets,
            "min_difference" => StopCriterion::MinDifference,
            "sequential_increase_tolerance" => StopCriterion::SequentialIncreaseTolerance,
            "min_kl" => StopCriterion::MinKl,
            "data_size" => StopCriterion::DataSize,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            StopCriterion::Increase => "increase",
            StopCriterion::MaxResets => "max_resets",
            StopCriterion::MinDifference => "min_difference",
            StopCriterion::SequentialIncreaseTolerance => "sequential_increase_tolerance",
            StopCriterion::MinKl => "min_kl",
            StopCriterion::DataSize => "data_size",
            StopCriterion::Never => "never",
        }
    }
}

/// Where v starts each descent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VInit {
    /// mean(X) every time.
    Mean,
    /// mean(X) at the start and after a reset; otherwise the previous optimum.
    PrevOpt,
    /// A random target row every time.
    Jump,
}

impl VInit {
    pub const NAMES: [&'static str; 3] = ["mean", "prev_opt", "jump"];

    pub fn parse(name: &str) -> Option<Self> {
        Some(match name {
            "mean" => VInit::Mean,
            "prev_opt" => VInit::PrevOpt,
            "jump" => VInit::Jump,
            _ => return None,
        })
    }
}

/// Which behaviour the loop follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Semantics {
    /// Exactly `grad-info-opt` 0.1.2, quirks included (for `GIOKL`).
    Reference,
    /// The reference with its bugs fixed: `sequential_increase_tolerance` and `max_resets`
    /// stop as named, `min_kl` keeps the row that reached the target, an exhausted pool stops
    /// cleanly, and the restart coin is drawn only when `random_restart_prob > 0`.
    Fixed,
}

/// Every option of the reference's `fit` that the loop uses.
#[derive(Debug, Clone, PartialEq)]
pub struct SelectOptions {
    pub k: usize,
    pub max_iter: usize,
    pub stop_criterion: StopCriterion,
    pub min_difference: f64,
    pub resets_allowed: bool,
    pub max_resets: usize,
    pub max_data_size: f64,
    pub min_kl: f64,
    pub max_sequential_increases: usize,
    pub random_restart_prob: f64,
    /// `None` for "auto".
    pub scale_factor: Option<f64>,
    pub v_init: VInit,
    pub grad_desc_iter: usize,
    pub discard_nearest_for_xy: bool,
    pub lr: f64,
    pub semantics: Semantics,
    /// Keep v after every descent (memory: one row per candidate).
    pub record_v_opts: bool,
}

impl Default for SelectOptions {
    fn default() -> Self {
        SelectOptions {
            k: 5,
            max_iter: 100,
            stop_criterion: StopCriterion::Increase,
            min_difference: 0.0,
            resets_allowed: false,
            max_resets: 2,
            max_data_size: 1.0,
            min_kl: 0.0,
            max_sequential_increases: 3,
            random_restart_prob: 0.0,
            scale_factor: None,
            v_init: VInit::Mean,
            grad_desc_iter: 50,
            discard_nearest_for_xy: false,
            lr: 0.01,
            semantics: Semantics::Reference,
            record_v_opts: false,
        }
    }
}

/// What the loop needs from its caller: random draws (so that the Python layer can use
/// Python's `random` exactly as the reference does), progress reports and interrupts.
pub trait LoopHost {
    /// A uniform draw in [0, 1) (`random.random()`).
    fn random(&mut self) -> Result<f64, GioError>;
    /// A uniform index in 0..n (`random.sample(range(n), 1)[0]`).
    fn pick(&mut self, n: usize) -> Result<usize, GioError>;
    /// Called once before the first descent.
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

/// Everything the loop produced; the reference's return tuple can be rebuilt from it.
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
    /// Steps of each descent.
    pub descent_iters: Vec<usize>,
    /// v after each descent, row-major (empty unless `record_v_opts`).
    pub v_opts: Vec<f64>,
    pub scale_factor: f64,
    /// v as the reference returns it.
    pub v: Vec<f64>,
    pub just_reset: bool,
    pub num_resets: usize,
    /// The reference's `increases` counter.
    pub increases: usize,
    /// Rows currently out of the pool.
    pub used: Vec<bool>,
    pub stop_reason: StopReason,
}

/// Checks options that have a domain; names match the Python arguments.
pub fn validate_options(opts: &SelectOptions) -> Result<(), GioError> {
    let finite = |name: &'static str, v: f64| {
        if v.is_finite() {
            Ok(())
        } else {
            Err(GioError::invalid(name, format!("must be finite, got {v}")))
        }
    };
    finite("lr", opts.lr)?;
    finite("min_difference", opts.min_difference)?;
    finite("min_kl", opts.min_kl)?;
    finite("max_data_size", opts.max_data_size)?;
    if opts.max_data_size < 0.0 {
        return Err(GioError::invalid(
            "max_data_size",
            format!("must be >= 0, got {}", opts.max_data_size),
        ));
    }
    if !(0.0..=1.0).contains(&opts.random_restart_prob) {
        return Err(GioError::invalid(
            "random_restart_prob",
            format!("must be in [0, 1], got {}", opts.random_restart_prob),
        ));
    }
    if let Some(s) = opts.scale_factor {
        finite("scale_factor", s)?;
    }
    if opts.semantics == Semantics::Fixed && opts.stop_criterion == StopCriterion::Never {
        return Err(GioError::invalid("stop_criterion", "unknown criterion"));
    }
    Ok(())
}

/// Runs the greedy selection of rows of `train` for target `x`, starting from `w0`.
pub fn greedy_select<T: Element>(
    train: Rows<'_, T>,
    x: Rows<'_, T>,
    w0: Rows<'_, T>,
    opts: &SelectOptions,
    host: &mut dyn LoopHost,
) -> Result<Selection, GioError> {
    validate_options(opts)?;
    if train.dim() != x.dim() {
        return Err(GioError::invalid(
            "train",
            format!("has {} columns but X has {}", train.dim(), x.dim()),
        ));
    }
    if w0.dim() != x.dim() {
        return Err(GioError::invalid(
            "D",
            format!("has {} columns but X has {}", w0.dim(), x.dim()),
        ));
    }
    if w0.is_empty() {
        return Err(GioError::invalid(
            "D",
            "the initial selection needs at least one row",
        ));
    }
    if opts.discard_nearest_for_xy && w0.len() < 2 {
        return Err(GioError::invalid(
            "D",
            "needs at least 2 rows with discard_nearest_for_xy=True (the starting KL is undefined otherwise)",
        ));
    }
    let fixed = opts.semantics == Semantics::Fixed;
    let n_train = train.len();
    let mut state = KlState::new(x, w0, KlParams::new(opts.k, opts.discard_nearest_for_xy))?;
    let kl_start = state.value();
    let mean = x.column_means();
    let mut v = match opts.v_init {
        VInit::Mean | VInit::PrevOpt => mean.clone(),
        VInit::Jump => target_row(x, host)?,
    };
    let mut work = DescentWork::default();
    let scale_factor = match opts.scale_factor {
        Some(s) => s,
        None => auto_scale_factor(&state, &v, &mut work),
    };
    if fixed && !scale_factor.is_finite() {
        return Err(GioError::invalid(
            "scale_factor",
            "the automatic scale factor is not finite (the gradient vanishes at the starting v); pass a number",
        ));
    }

    let mut out = Selection {
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
    };
    host.on_start(kl_start, scale_factor)?;
    let mut prev = kl_start;
    // The reference's counters: `i` steps back on a reset and may go negative.
    let mut i: i64 = 0;
    let mut total_iter: usize = 0;
    let mut consecutive_increases: usize = 0;
    let data_size_limit = (opts.max_data_size * n_train as f64).trunc() as i64;
    let mut cand = Candidate::default();
    // From mean(X) the descent depends only on the selection size (the gradient ignores which
    // rows are selected unless discard_nearest_for_xy): run several upcoming sizes at once.
    let lookahead_ok = opts.v_init == VInit::Mean && !opts.discard_nearest_for_xy;
    let mut ahead = AheadDescents::default();

    loop {
        // Warm-up, reset or random restart: a 3× longer descent. `||` short-circuits exactly as
        // the reference's, so the restart coin is drawn only when it matters to the reference.
        let long = i == 0
            || out.just_reset
            || ((!fixed || opts.random_restart_prob > 0.0)
                && host.random()? < opts.random_restart_prob);
        let steps = if long {
            opts.grad_desc_iter.saturating_mul(3)
        } else {
            opts.grad_desc_iter
        };
        let m = state.selection_size();
        if lookahead_ok && !long {
            if !ahead.has(m) {
                // No more descents than candidates the run can still make.
                let unused = out.used.iter().filter(|&&u| !u).count();
                let left = opts.max_iter.saturating_add(2).saturating_sub(total_iter);
                let count = LOOKAHEAD.min(left).min(unused).max(1);
                ahead.fill(
                    &state,
                    &mean,
                    m,
                    count,
                    scale_factor,
                    opts.lr,
                    steps,
                    &mut work,
                    &mut || host.poll(),
                )?;
            }
            ahead.copy_to(m, &mut v);
        } else {
            descend(
                &state,
                &mut v,
                scale_factor,
                opts.lr,
                steps,
                &mut work,
                &mut || host.poll(),
            )?;
        }
        out.descent_iters.push(steps);
        if opts.record_v_opts {
            out.v_opts.extend_from_slice(&v);
        }

        // Snap: the row leaves the pool before the stop test, so a rejected row is gone too.
        let Some((idx, _)) = nearest_unused(train, &v, &out.used) else {
            if fixed {
                out.stop_reason = StopReason::PoolExhausted;
                break;
            }
            return Err(GioError::PoolExhausted);
        };
        out.used[idx] = true;
        state.evaluate(train.row(idx), &mut cand);
        let kl = cand.kl;
        out.candidate_kl.push(kl);

        if total_iter > opts.max_iter {
            out.stop_reason = StopReason::MaxIter;
            host.on_candidate(&event(&out, i, kl, false, false))?;
            break;
        }
        match opts.v_init {
            VInit::Mean => v.copy_from_slice(&mean),
            VInit::Jump => v = target_row(x, host)?,
            VInit::PrevOpt => {}
        }

        // The stop test (the reference's `_test_stop_criterion`).
        let increased = kl - prev > 0.0;
        consecutive_increases = if increased {
            consecutive_increases + 1
        } else {
            0
        };
        let criterion = opts.stop_criterion;
        let iteration = i;
        let mut reset = false;
        let mut stop = match criterion {
            StopCriterion::Increase => increased,
            StopCriterion::MaxResets if fixed => increased,
            StopCriterion::MaxResets => increased && out.num_resets == opts.max_resets,
            StopCriterion::MinDifference => prev - kl < opts.min_difference,
            StopCriterion::SequentialIncreaseTolerance if fixed => {
                increased && consecutive_increases > opts.max_sequential_increases
            }
            StopCriterion::SequentialIncreaseTolerance => {
                increased && out.increases == opts.max_sequential_increases
            }
            StopCriterion::MinKl => kl < opts.min_kl,
            StopCriterion::DataSize => i > data_size_limit,
            StopCriterion::Never => false,
        };
        if fixed && stop && criterion == StopCriterion::MinKl {
            // Fixed: the row that reached the target is kept, then the run ends.
            state.accept(&cand);
            out.indices.push(idx);
            out.kl_trace.push(kl);
            out.stop_reason = StopReason::Criterion(criterion);
            out.just_reset = false;
            host.on_candidate(&event(&out, i, kl, true, false))?;
            break;
        }
        if stop {
            if out.just_reset {
                out.increases += 1;
            }
            let may_reset = if fixed && criterion == StopCriterion::MaxResets {
                out.num_resets < opts.max_resets
            } else {
                opts.resets_allowed && out.num_resets < opts.max_resets
            };
            if may_reset {
                out.num_resets += 1;
                if opts.v_init == VInit::PrevOpt {
                    v.copy_from_slice(&mean);
                }
                out.used.fill(false);
                i -= 1;
                stop = false;
                reset = true;
                if fixed {
                    consecutive_increases = 0;
                }
            }
            out.just_reset = true;
        } else {
            out.just_reset = false;
            out.increases = 0;
        }
        if stop {
            out.stop_reason = StopReason::Criterion(criterion);
            host.on_candidate(&event(&out, iteration, kl, false, false))?;
            break;
        }
        let accepted = !out.just_reset;
        if accepted {
            state.accept(&cand);
            out.indices.push(idx);
            out.kl_trace.push(kl);
            prev = kl;
            i += 1;
            total_iter += 1;
        }
        host.on_candidate(&event(&out, iteration, kl, accepted, reset))?;
    }
    out.v = v;
    Ok(out)
}

/// Descents to come, computed together: one pass over X per step serves all of them.
const LOOKAHEAD: usize = 8;

/// Results of standard-length descents from mean(X) for selection sizes
/// `first_size..first_size + count`.
#[derive(Default)]
struct AheadDescents {
    first_size: usize,
    count: usize,
    vs: Vec<f64>,
}

impl AheadDescents {
    fn has(&self, size: usize) -> bool {
        self.count > 0 && size >= self.first_size && size < self.first_size + self.count
    }

    #[allow(clippy::too_many_arguments)]
    fn fill<T: Element>(
        &mut self,
        state: &KlState<'_, T>,
        mean: &[f64],
        first_size: usize,
        count: usize,
        scale_factor: f64,
        lr: f64,
        steps: usize,
        work: &mut DescentWork,
        poll: &mut dyn FnMut() -> Result<(), GioError>,
    ) -> Result<(), GioError> {
        let sizes: Vec<usize> = (first_size..first_size + count).collect();
        self.vs.clear();
        for _ in 0..count {
            self.vs.extend_from_slice(mean);
        }
        self.count = 0;
        descend_many(
            state,
            &mut self.vs,
            &sizes,
            scale_factor,
            lr,
            steps,
            work,
            poll,
        )?;
        self.first_size = first_size;
        self.count = count;
        Ok(())
    }

    fn copy_to(&self, size: usize, v: &mut [f64]) {
        let b = size - self.first_size;
        v.copy_from_slice(&self.vs[b * v.len()..(b + 1) * v.len()]);
    }
}

fn event(out: &Selection, iteration: i64, kl: f64, accepted: bool, reset: bool) -> CandidateEvent {
    CandidateEvent {
        candidate: out.candidate_kl.len(),
        iteration,
        reset,
        selected: out.indices.len(),
        kl,
        accepted,
        num_resets: out.num_resets,
    }
}

fn target_row<T: Element>(x: Rows<'_, T>, host: &mut dyn LoopHost) -> Result<Vec<f64>, GioError> {
    let j = host.pick(x.len())?;
    if j >= x.len() {
        return Err(GioError::invalid(
            "rng",
            format!("picked row {j} of a target with {} rows", x.len()),
        ));
    }
    Ok(x.row(j).iter().map(|v| v.to_f64()).collect())
}
