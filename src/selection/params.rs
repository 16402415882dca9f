//! The options of a selection run, checked once: `SelectParams::check` gives the
//! `ValidSelectParams` the loops accept.

use crate::error::GioError;
use crate::params::{at_least, finite, Named, Valid};

/// Which loop selects (`select(method=...)`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// GIO as published: descend on a relaxed v, snap it to the nearest unused pool row.
    Gradient,
    /// Exact greedy on the unaveraged k-NN estimator.
    Greedy,
}

impl Named for Method {
    const NAMES: &'static [&'static str] = &["gradient", "greedy"];
    const VALUES: &'static [Self] = &[Method::Gradient, Method::Greedy];
}

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

impl Named for StopCriterion {
    const NAMES: &'static [&'static str] = &[
        "increase",
        "max_resets",
        "min_difference",
        "sequential_increase_tolerance",
        "min_kl",
        "data_size",
    ];
    const VALUES: &'static [Self] = &[
        StopCriterion::Increase,
        StopCriterion::MaxResets,
        StopCriterion::MinDifference,
        StopCriterion::SequentialIncreaseTolerance,
        StopCriterion::MinKl,
        StopCriterion::DataSize,
    ];
}

impl StopCriterion {
    pub fn name(self) -> &'static str {
        match self {
            StopCriterion::Never => "never",
            c => Named::name(c),
        }
    }

    /// The criterion called `name`. Reference semantics take an unknown name as `Never`, as the
    /// reference does (it never stops); fixed semantics know no such criterion.
    pub fn from_name(name: &str, semantics: Semantics) -> Option<Self> {
        match semantics {
            Semantics::Reference => Some(Self::parse(name).unwrap_or(StopCriterion::Never)),
            Semantics::Fixed => Self::parse(name),
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

impl Named for VInit {
    const NAMES: &'static [&'static str] = &["mean", "prev_opt", "jump"];
    const VALUES: &'static [Self] = &[VInit::Mean, VInit::PrevOpt, VInit::Jump];
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

impl Named for Semantics {
    const NAMES: &'static [&'static str] = &["reference", "fixed"];
    const VALUES: &'static [Self] = &[Semantics::Reference, Semantics::Fixed];
}

/// Every option of a selection run, as the caller gave it; names match `gio_rs.select`'s
/// keyword arguments (and the reference's `fit`).
#[derive(Debug, Clone, PartialEq)]
pub struct SelectParams {
    pub method: Method,
    pub semantics: Semantics,
    pub k: usize,
    /// `max_iter = N` accepts at most N + 1 rows (the reference's `total_iter > max_iter`).
    pub max_iter: usize,
    pub stop_criterion: StopCriterion,
    pub min_difference: f64,
    pub max_data_size: f64,
    pub min_kl: f64,
    pub max_sequential_increases: usize,
    // The gradient method's own options (the greedy method refuses any but their defaults).
    pub resets_allowed: bool,
    pub max_resets: usize,
    pub random_restart_prob: f64,
    /// `None` for "auto".
    pub scale_factor: Option<f64>,
    pub v_init: VInit,
    pub grad_desc_iter: usize,
    pub discard_nearest_for_xy: bool,
    pub lr: f64,
    /// Keep v after every descent (memory: one row per candidate).
    pub record_v_opts: bool,
    /// The greedy method refuses to build a distance table larger than this many bytes.
    pub greedy_max_bytes: usize,
}

/// The default cap on the greedy method's distance table: 4 GiB (M·n·8 bytes).
pub const DEFAULT_GREEDY_MAX_BYTES: usize = 1 << 32;

impl Default for SelectParams {
    fn default() -> Self {
        SelectParams {
            method: Method::Gradient,
            semantics: Semantics::Reference,
            k: 5,
            max_iter: 100,
            stop_criterion: StopCriterion::Increase,
            min_difference: 0.0,
            max_data_size: 1.0,
            min_kl: 0.0,
            max_sequential_increases: 3,
            resets_allowed: false,
            max_resets: 2,
            random_restart_prob: 0.0,
            scale_factor: None,
            v_init: VInit::Mean,
            grad_desc_iter: 50,
            discard_nearest_for_xy: false,
            lr: 0.01,
            record_v_opts: false,
            greedy_max_bytes: DEFAULT_GREEDY_MAX_BYTES,
        }
    }
}

/// `SelectParams` that passed `check`.
pub type ValidSelectParams = Valid<SelectParams>;

impl SelectParams {
    /// Checks every option on its own and against the others (the rules that need data, such as
    /// k <= n - 1, are checked when the loop sees the data).
    pub fn check(self) -> Result<ValidSelectParams, GioError> {
        at_least("k", self.k, 1)?;
        finite("min_difference", self.min_difference, None, None)?;
        finite("max_data_size", self.max_data_size, Some(0.0), None)?;
        finite("min_kl", self.min_kl, None, None)?;
        finite(
            "random_restart_prob",
            self.random_restart_prob,
            Some(0.0),
            Some(1.0),
        )?;
        if let Some(scale) = self.scale_factor {
            finite("scale_factor", scale, None, None)?;
        }
        finite("lr", self.lr, None, None)?;
        if self.semantics == Semantics::Fixed && self.stop_criterion == StopCriterion::Never {
            return Err(GioError::invalid(
                "stop_criterion",
                "'never' stops only under the reference's semantics",
            ));
        }
        if self.method == Method::Greedy {
            self.check_greedy()?;
        }
        Ok(Valid::checked(self))
    }

    /// The greedy method: fixed semantics, no pool resets, the gradient method's options at
    /// their defaults (refused rather than silently ignored).
    fn check_greedy(&self) -> Result<(), GioError> {
        if self.semantics != Semantics::Fixed {
            return Err(GioError::invalid(
                "method",
                "'greedy' runs with fixed semantics only",
            ));
        }
        if self.stop_criterion == StopCriterion::MaxResets {
            return Err(GioError::invalid(
                "stop_criterion",
                "'max_resets' resets the pool, which method='greedy' never does; use 'increase', \
                 'min_difference', 'sequential_increase_tolerance', 'min_kl' or 'data_size'",
            ));
        }
        // The gradient method's options, each with its default as Python writes it.
        let d = SelectParams::default();
        let changed = [
            (
                "resets_allowed",
                "False",
                self.resets_allowed != d.resets_allowed,
            ),
            ("max_resets", "2", self.max_resets != d.max_resets),
            (
                "random_restart_prob",
                "0.0",
                self.random_restart_prob != d.random_restart_prob,
            ),
            (
                "scale_factor",
                "'auto'",
                self.scale_factor != d.scale_factor,
            ),
            ("v_init", "'mean'", self.v_init != d.v_init),
            (
                "grad_desc_iter",
                "50",
                self.grad_desc_iter != d.grad_desc_iter,
            ),
            (
                "discard_nearest_for_xy",
                "False",
                self.discard_nearest_for_xy,
            ),
            ("lr", "0.01", self.lr != d.lr),
            ("record_v_opts", "False", self.record_v_opts),
        ];
        match changed.into_iter().find(|(_, _, changed)| *changed) {
            Some((name, default, _)) => Err(GioError::invalid(
                name,
                format!("only used by method='gradient'; leave it at its default ({default}) with method='greedy'"),
            )),
            None => Ok(()),
        }
    }
}
