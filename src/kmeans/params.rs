//! The options of a K-Means fit and their checks (`KMeansParams` -> `ValidKMeansParams`).

use crate::error::GioError;
use crate::params::{at_least, finite, Valid};
use crate::rows::nonfinite_problem;

/// How the first centers are chosen.
#[derive(Debug, Clone, PartialEq)]
pub enum KMeansInit {
    /// Greedy k-means++ (2 + ln K candidates per step, as scikit-learn) on a sample of at most
    /// `init_sample_size` rows.
    KMeansPlusPlus,
    /// K distinct rows drawn uniformly.
    Random,
    /// These centers: K rows of `dim` values, row-major.
    Centers { values: Vec<f64>, dim: usize },
}

impl KMeansInit {
    /// The names of the initialisations that are not explicit centers.
    pub const NAMES: [&'static str; 2] = ["k-means++", "random"];
}

/// The options of a K-Means fit, as the caller gave them (`gio_rs.KMeans`'s names).
#[derive(Debug, Clone, PartialEq)]
pub struct KMeansParams {
    pub n_clusters: usize,
    /// Lloyd iterations per run, at least 1.
    pub max_iter: usize,
    /// Convergence when the centers moved by at most `tol` × (mean per-feature variance of X),
    /// in summed squared distance (scikit-learn's rule), or when no label changed.
    pub tol: f64,
    pub n_init: usize,
    pub seed: u64,
    pub init: KMeansInit,
    /// Rows k-means++ looks at (0: automatic, see `plus_plus_sample`).
    pub init_sample_size: usize,
}

/// `KMeansParams` that passed `check`.
pub type ValidKMeansParams = Valid<KMeansParams>;

impl KMeansParams {
    /// Checks every option (the rules that need X, such as K <= rows, are checked by `kmeans`).
    pub fn check(self) -> Result<ValidKMeansParams, GioError> {
        at_least("n_clusters", self.n_clusters, 1)?;
        at_least("n_init", self.n_init, 1)?;
        at_least("max_iter", self.max_iter, 1)?;
        finite("tol", self.tol, Some(0.0), None)?;
        if let KMeansInit::Centers { values, dim } = &self.init {
            if *dim == 0 || values.len() % dim != 0 {
                return Err(GioError::invalid(
                    "init",
                    format!("{} values do not split into rows of {dim}", values.len()),
                ));
            }
            let rows = values.len() / dim;
            if rows != self.n_clusters {
                return Err(GioError::invalid(
                    "init",
                    format!("has {rows} rows but n_clusters is {}", self.n_clusters),
                ));
            }
            if let Some(problem) = nonfinite_problem(values, *dim, "rows") {
                return Err(GioError::invalid("init", problem));
            }
        }
        Ok(Valid::checked(self))
    }
}
