//! k-NN estimators of KL(X ‖ W), the target X against a selection W:
//!
//! - `averaged`: the reference's averaged estimator, kept as an incremental state (`KlState`),
//!   and `gradient`: its gradient with respect to an added point, for the gradient loop;
//! - `knn`: the unaveraged (Wang–Kulkarni–Verdú) estimator the greedy loop minimises, and the
//!   table of log distances it scores candidates from.
//!
//! What both share: the settings (`KlParams`, `EPS`) and the target's checks.

mod averaged;
mod gradient;
pub(crate) mod knn;
mod log_sum;

pub use averaged::{kl_divergence, kl_gradient, log_root_sum, size_term, Candidate, KlState};
pub use gradient::GradientWork;
pub use knn::knn_kl_divergence;

use crate::error::GioError;
use crate::rows::{Element, Rows};

/// The reference's ε inside every log.
pub const EPS: f64 = 1e-8;

/// Estimator settings shared by the KL value and its gradient.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct KlParams {
    pub k: usize,
    pub eps: f64,
    pub discard_nearest_for_xy: bool,
}

impl KlParams {
    pub fn new(k: usize, discard_nearest_for_xy: bool) -> Self {
        KlParams {
            k,
            eps: EPS,
            discard_nearest_for_xy,
        }
    }
}

/// Checks the target and k: at least 2 target rows, 1 ≤ k ≤ n − 1.
pub fn validate_target<T: Element>(x: &Rows<'_, T>, k: usize) -> Result<(), GioError> {
    let n = x.len();
    if n < 2 {
        return Err(GioError::invalid(
            "X",
            format!("the target needs at least 2 rows, got {n}"),
        ));
    }
    crate::params::at_least("k", k, 1)?;
    if k >= n {
        return Err(GioError::invalid(
            "k",
            format!(
                "must be <= n - 1 = {} for a target of {n} rows, got {k}",
                n - 1
            ),
        ));
    }
    Ok(())
}
