//! The options of a ratio selection (`select(method="ratio", ...)`), checked once:
//! `RatioParams::check` gives the `ValidRatioParams` the estimators accept.

use crate::error::GioError;
use crate::params::{at_least, finite, Named, Valid};

/// Which estimate of log r scores the pool (`estimator=`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Estimator {
    /// The Gaussian closed form with the cross-validated ridge.
    Gaussian,
    /// Target share among the k nearest rows of target ∪ a pool sample.
    Knn,
    /// L2 logistic regression target against pool.
    Logistic,
    /// The mean of the estimators' normalised ranks.
    Rank,
}

impl Named for Estimator {
    const NAMES: &'static [&'static str] = &["gaussian", "knn", "logistic", "rank"];
    const VALUES: &'static [Self] = &[
        Estimator::Gaussian,
        Estimator::Knn,
        Estimator::Logistic,
        Estimator::Rank,
    ];
}

/// How the budget is filled (`mode=`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// The B rows with the largest ratio, ranked.
    Top,
    /// Seeded importance resampling without replacement (Gumbel top-k on log r).
    Sample,
}

impl Named for Mode {
    const NAMES: &'static [&'static str] = &["top", "sample"];
    const VALUES: &'static [Self] = &[Mode::Top, Mode::Sample];
}

/// Every option of a ratio selection, as the caller gave it.
#[derive(Debug, Clone, PartialEq)]
pub struct RatioParams {
    pub estimator: Estimator,
    pub mode: Mode,
    pub budget_rows: usize,
    /// Neighbours of the k-NN estimator.
    pub k: usize,
    /// A fixed ridge α (λ = α·tr(S_p)/d); `None` chooses it by cross-validation.
    pub ridge: Option<f64>,
    /// Cross-validation folds (at most the target's rows are used).
    pub folds: usize,
    /// Pool rows in the k-NN reference set (and the logistic fit's negatives) when the pool is
    /// larger.
    pub sample_rows: usize,
    /// Added to both k-NN counts (keeps log r finite).
    pub knn_prior: f64,
    pub seed: u64,
}

impl Default for RatioParams {
    fn default() -> Self {
        RatioParams {
            estimator: Estimator::Gaussian,
            mode: Mode::Top,
            budget_rows: 1,
            k: 100,
            ridge: None,
            folds: 5,
            sample_rows: 20_000,
            knn_prior: 0.5,
            seed: 0,
        }
    }
}

/// `RatioParams` that passed `check`.
pub type ValidRatioParams = Valid<RatioParams>;

impl RatioParams {
    /// Checks every option on its own (rules that need the data, such as budget_rows <= pool
    /// rows and k < reference rows, are checked where the data is seen).
    pub fn check(self) -> Result<ValidRatioParams, GioError> {
        at_least("budget_rows", self.budget_rows, 1)?;
        at_least("k", self.k, 1)?;
        if let Some(ridge) = self.ridge {
            finite("ridge", ridge, None, None)?;
            if ridge <= 0.0 {
                return Err(GioError::invalid(
                    "ridge",
                    format!("must be > 0, got {}", crate::params::FloatRepr(ridge)),
                ));
            }
        }
        at_least("folds", self.folds, 2)?;
        at_least("sample_rows", self.sample_rows, 1)?;
        finite("knn_prior", self.knn_prior, Some(0.0), None)?;
        if self.knn_prior <= 0.0 {
            return Err(GioError::invalid("knn_prior", "must be > 0, got 0.0"));
        }
        Ok(Valid::checked(self))
    }

    /// The budget against the pool's rows.
    pub fn check_budget(&self, pool_rows: usize) -> Result<(), GioError> {
        if self.budget_rows > pool_rows {
            return Err(GioError::invalid(
                "budget_rows",
                format!(
                    "must be <= the pool's {pool_rows} rows, got {}",
                    self.budget_rows
                ),
            ));
        }
        Ok(())
    }
}

/// Bytes an in-memory ratio selection allocates besides its inputs: per-fold moments and the
/// Cholesky factors (d² each), the block panels per thread, the scores (per α during CV) and
/// the top-B, and for k-NN the Gram blocks of each query chunk against the reference.
pub fn working_set(n_pool: usize, n_target: usize, dim: usize, params: &RatioParams) -> usize {
    use crate::memory::{bytes, BASE_BYTES};
    use crate::parallel::num_threads;
    let alphas = crate::ratio::gaussian::ALPHA_GRID.len();
    let reference = n_target.saturating_add(params.sample_rows.min(n_pool));
    let knn = match params.estimator {
        Estimator::Gaussian => 0,
        _ => bytes(&[&[8, 32, reference, num_threads()], &[8, reference, dim]]),
    };
    bytes(&[
        &[BASE_BYTES],
        &[8, dim, dim, params.folds + 3],
        &[8, dim, crate::ratio::moments::BLOCK_ROWS, num_threads() + 1],
        &[8, n_pool, alphas + 2],
        &[24, params.budget_rows.min(n_pool)],
        &[knn],
    ])
}
