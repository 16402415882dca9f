//! A whole fit: the checks that need X, `n_init` seeded runs of an initialisation then Lloyd,
//! the lowest inertia kept.

use super::init::{kmeans_plus_plus, plus_plus_sample, random_rows};
use super::lloyd::lloyd;
use super::params::{KMeansInit, ValidKMeansParams};
use crate::distance::row_norms;
use crate::error::GioError;
use crate::rng::SplitMix64;
use crate::rows::{Element, Rows};

/// A fitted model.
#[derive(Debug, Clone, PartialEq)]
pub struct KMeansFit {
    /// K × d, row-major.
    pub centers: Vec<f64>,
    pub labels: Vec<u32>,
    /// Σ ‖x_i − c_{label_i}‖², from exact differences.
    pub inertia: f64,
    pub n_iter: usize,
}

/// Per-feature variance mean, for the tolerance (scikit-learn's `_tolerance`).
fn mean_variance<T: Element>(x: Rows<'_, T>) -> f64 {
    let means = x.column_means();
    let n = x.len() as f64;
    let mut var = vec![0.0f64; x.dim()];
    for i in 0..x.len() {
        for ((v, &m), xv) in var.iter_mut().zip(&means).zip(x.row(i)) {
            let t = xv.to_f64() - m;
            *v += t * t;
        }
    }
    var.iter().sum::<f64>() / n / x.dim() as f64
}

/// Fits K-Means: `n_init` runs from different seeds, the lowest inertia kept (ties: the first).
/// `poll(iteration, inertia)` is called once per Lloyd iteration; its error stops the fit.
pub fn kmeans<T: Element>(
    x: Rows<'_, T>,
    params: &ValidKMeansParams,
    poll: &mut dyn FnMut(usize, f64) -> Result<(), GioError>,
) -> Result<KMeansFit, GioError> {
    let k = params.n_clusters;
    if k > x.len() {
        return Err(GioError::invalid(
            "n_clusters",
            format!("{k} clusters need at least {k} rows, X has {}", x.len()),
        ));
    }
    if let KMeansInit::Centers { dim, .. } = params.init {
        if dim != x.dim() {
            return Err(GioError::invalid(
                "init",
                format!("has {dim} columns but X has {}", x.dim()),
            ));
        }
    }
    let x_norms = row_norms(x);
    let tol = params.tol * mean_variance(x);
    let sample = plus_plus_sample(x.len(), k, params.init_sample_size);
    let mut best: Option<KMeansFit> = None;
    let runs = match params.init {
        KMeansInit::Centers { .. } => 1,
        _ => params.n_init,
    };
    for run in 0..runs {
        let mut rng =
            SplitMix64::new(params.seed ^ (run as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15));
        let centers = match &params.init {
            KMeansInit::KMeansPlusPlus => kmeans_plus_plus(x, k, sample, &mut rng),
            KMeansInit::Random => random_rows(x, k, &mut rng),
            KMeansInit::Centers { values, .. } => values.clone(),
        };
        let fit = lloyd(x, &x_norms, centers, params, tol, poll)?;
        if best.as_ref().is_none_or(|b| fit.inertia < b.inertia) {
            best = Some(fit);
        }
    }
    Ok(best.expect("n_init >= 1"))
}
