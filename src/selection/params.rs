//! The options of a selection run, checked once: `SelectParams::check` gives the
//! `ValidSelectParams` the loops accept.

use std::ops::Deref;

use crate::error::GioError;
use crate::params::{at_least, finite, str_repr, FloatRepr, Named};

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
    /// reference does (it never stops); fixed semantics refuse it.
    pub fn from_name(name: &str, semantics: Semantics) -> Result<Self, GioError> {
        match (Self::parse(name), semantics) {
            (Some(c), _) => Ok(c),
            (None, Semantics::Reference) => Ok(StopCriterion::Never),
            (None, Semantics::Fixed) => Err(crate::params::unknown(
                "stop_criterion",
                "criterion",
                &str_repr(name),
                Self::NAMES,
            )),
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

/// Options that passed `SelectParams::check`: the only kind the loops accept.
#[derive(Debug, Clone, PartialEq)]
pub struct ValidSelectParams(SelectParams);

impl Deref for ValidSelectParams {
    type Target = SelectParams;
    fn deref(&self) -> &SelectParams {
        &self.0
    }
}

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
        Ok(ValidSelectParams(self))
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
        let d = SelectParams::default();
        let python_bool = |b: bool| if b { "True" } else { "False" }.to_string();
        let defaults = [
            (
                "resets_allowed",
                self.resets_allowed == d.resets_allowed,
                python_bool(d.resets_allowed),
            ),
            (
                "max_resets",
                self.max_resets == d.max_resets,
                d.max_resets.to_string(),
            ),
            (
                "random_restart_prob",
                self.random_restart_prob == d.random_restart_prob,
                FloatRepr(d.random_restart_prob).to_string(),
            ),
            (
                "scale_factor",
                self.scale_factor == d.scale_factor,
                str_repr("auto"),
            ),
            ("v_init", self.v_init == d.v_init, str_repr(VInit::NAMES[0])),
            (
                "grad_desc_iter",
                self.grad_desc_iter == d.grad_desc_iter,
                d.grad_desc_iter.to_string(),
            ),
            (
                "discard_nearest_for_xy",
                self.discard_nearest_for_xy == d.discard_nearest_for_xy,
                python_bool(d.discard_nearest_for_xy),
            ),
            ("lr", self.lr == d.lr, FloatRepr(d.lr).to_string()),
            (
                "record_v_opts",
                self.record_v_opts == d.record_v_opts,
                python_bool(d.record_v_opts),
            ),
        ];
        match defaults.into_iter().find(|(_, at_default, _)| !at_default) {
            Some((name, _, default)) => Err(gradient_only(name, &default)),
            None => Ok(()),
        }
    }
}

/// The greedy method's refusal of an option only the gradient method uses.
pub fn gradient_only(name: &'static str, default: &str) -> GioError {
    GioError::invalid(
        name,
        format!(
            "only used by method='gradient'; leave it at its default ({default}) with \
             method='greedy'"
        ),
    )
}
