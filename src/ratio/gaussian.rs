//! The Gaussian closed form of log r (reference_ratio.gaussian_ratio): for two Gaussians sharing
//! the covariance S_p + λI, log r(x) = w·(x − (μ_t + μ_p)/2) with w = (S_p + λI)⁻¹(μ_t − μ_p).
//! λ = α·tr(S_p)/d, α from `ALPHA_GRID` by cross-validation: fold f's target and pool rows are
//! scored by the direction fitted without them, and the α whose out-of-fold scores calibrate to
//! the largest gain wins (ties to the larger α).

use crate::error::GioError;
use crate::parallel::map_row_chunks_aligned;
use crate::ratio::calibrate::{calibrate, Calibration};
use crate::ratio::folds::{pool_fold, FoldedMoments};
use crate::ratio::moments::{Moments, BLOCK_ROWS};
use crate::ratio::solve::Cholesky;
use crate::rows::{Element, Rows};
use crate::simd::{dot, dot_block};

/// λ = α · tr(S_p)/d for α in this grid (reference_ratio.ALPHA_GRID).
pub const ALPHA_GRID: [f64; 9] = [0.01, 0.03, 0.1, 0.3, 1.0, 3.0, 10.0, 30.0, 100.0];

/// A direction and offset: score(x) = w·x + bias.
#[derive(Debug, Clone, PartialEq)]
pub struct Direction {
    pub w: Vec<f64>,
    pub bias: f64,
}

/// tr(S)/d, or 1 for a constant pool (so that λ stays positive).
pub fn covariance_scale(moments: &Moments) -> f64 {
    let d = moments.mean.len();
    let trace: f64 = (0..d).map(|i| moments.covariance[i * d + i]).sum();
    let scale = trace / d as f64;
    if scale > 0.0 {
        scale
    } else {
        1.0
    }
}

/// The closed-form direction for pool moments, the target mean and λ = `ridge`.
pub fn direction(pool: &Moments, target_mean: &[f64], ridge: f64) -> Result<Direction, GioError> {
    let d = target_mean.len();
    let factor = Cholesky::factor("covariance", &pool.covariance, d, ridge)?;
    let diff: Vec<f64> = target_mean
        .iter()
        .zip(&pool.mean)
        .map(|(t, p)| t - p)
        .collect();
    let w = factor.solve(&diff);
    let mid: Vec<f64> = target_mean
        .iter()
        .zip(&pool.mean)
        .map(|(t, p)| (t + p) / 2.0)
        .collect();
    let bias = -dot(&w, &mid);
    Ok(Direction { w, bias })
}

/// Mean of the rows of `target` whose fold is not `left_out`.
fn target_mean<U: Element>(
    target: Rows<'_, U>,
    folds: &[usize],
    left_out: Option<usize>,
) -> Vec<f64> {
    let mut sums = vec![0.0f64; target.dim()];
    let mut n = 0usize;
    for i in (0..target.len()).filter(|&i| Some(folds[i]) != left_out) {
        sums.iter_mut()
            .zip(target.row(i))
            .for_each(|(s, v)| *s += v.to_f64());
        n += 1;
    }
    sums.iter_mut().for_each(|s| *s /= n.max(1) as f64);
    sums
}

/// Directions per fold (the fold left out) and α: `[fold][alpha]`.
pub fn fold_directions<U: Element>(
    pool: &FoldedMoments,
    target: Rows<'_, U>,
    target_folds: &[usize],
    alphas: &[f64],
) -> Result<Vec<Vec<Direction>>, GioError> {
    (0..pool.n_folds())
        .map(|f| {
            let moments = pool.combined(Some(f))?.finish()?;
            let mu_t = target_mean(target, target_folds, Some(f));
            let scale = covariance_scale(&moments);
            alphas
                .iter()
                .map(|a| direction(&moments, &mu_t, a * scale))
                .collect()
        })
        .collect()
}

/// Out-of-fold scores `[alpha][row]` of rows `first_row..` of the pool (each row scored by its
/// fold's directions: one `dot_block` of the fold's block of rows against every α's w, each value
/// bit-identical to `dot`), in parallel chunks aligned to the fold blocks.
pub fn pool_oof_scores<T: Element>(
    rows: Rows<'_, T>,
    first_row: usize,
    directions: &[Vec<Direction>],
) -> Vec<Vec<f64>> {
    let (n_folds, n_alphas, d) = (directions.len(), directions[0].len(), rows.dim());
    let stacked: Vec<Vec<f64>> = directions
        .iter()
        .map(|fold| fold.iter().flat_map(|dir| dir.w.iter().copied()).collect())
        .collect();
    let per_chunk = map_row_chunks_aligned(rows.len(), d * n_alphas, BLOCK_ROWS, |start, end| {
        let mut out = vec![0.0f64; (end - start) * n_alphas];
        let mut i = start;
        while i < end {
            // Rows up to the next fold block boundary share one fold.
            let global = first_row + i;
            let stop = (i + BLOCK_ROWS - global % BLOCK_ROWS).min(end);
            let f = pool_fold(global, n_folds);
            let part = &mut out[(i - start) * n_alphas..(stop - start) * n_alphas];
            dot_block(rows.slice(i, stop).data(), &stacked[f], d, part);
            for row in part.chunks_exact_mut(n_alphas) {
                row.iter_mut()
                    .zip(&directions[f])
                    .for_each(|(v, dir)| *v += dir.bias);
            }
            i = stop;
        }
        out
    });
    let mut out = vec![Vec::with_capacity(rows.len()); n_alphas];
    for chunk in per_chunk {
        for row in chunk.chunks_exact(n_alphas) {
            out.iter_mut().zip(row).for_each(|(o, &v)| o.push(v));
        }
    }
    out
}

/// Out-of-fold scores `[alpha][row]` of the target rows.
pub fn target_oof_scores<U: Element>(
    target: Rows<'_, U>,
    target_folds: &[usize],
    directions: &[Vec<Direction>],
) -> Vec<Vec<f64>> {
    (0..directions[0].len())
        .map(|a| {
            (0..target.len())
                .map(|i| {
                    let dir = &directions[target_folds[i]][a];
                    dot(target.row(i), &dir.w) + dir.bias
                })
                .collect()
        })
        .collect()
}

/// The α with the largest gain (rounded to 1e-12), ties to the larger α: its index.
pub fn choose_alpha(alphas: &[f64], calibrations: &[Calibration]) -> usize {
    let rounded = |g: f64| (g * 1e12).round();
    (0..alphas.len())
        .max_by(|&a, &b| {
            rounded(calibrations[a].gain)
                .total_cmp(&rounded(calibrations[b].gain))
                .then(alphas[a].total_cmp(&alphas[b]))
        })
        .expect("at least one alpha")
}

/// The fitted Gaussian estimator.
#[derive(Debug, Clone, PartialEq)]
pub struct GaussianFit {
    pub direction: Direction,
    pub alpha: f64,
    pub ridge: f64,
    pub calibration: Calibration,
    /// Every α tried, with its CV calibration.
    pub cv: Vec<(f64, Calibration)>,
    pub pool: Moments,
    pub target_mean: Vec<f64>,
}

/// Fits the estimator on an in-memory pool (see the module docs); `alphas` is the grid (one
/// value: a fixed α, still calibrated by CV).
pub fn fit_gaussian<T: Element, U: Element>(
    pool: Rows<'_, T>,
    target: Rows<'_, U>,
    alphas: &[f64],
    n_folds: usize,
    seed: u64,
) -> Result<GaussianFit, GioError> {
    let n_folds = n_folds.min(target.len()).max(1);
    let mu_t = target_mean(target, &vec![0; target.len()], None);
    let mut folded = FoldedMoments::new(&mu_t, n_folds)?;
    folded.add(pool)?;
    let t_folds = crate::ratio::folds::target_folds(target.len(), n_folds, seed);
    let dirs = fold_directions(&folded, target, &t_folds, alphas)?;
    let pool_scores = pool_oof_scores(pool, 0, &dirs);
    let target_scores = target_oof_scores(target, &t_folds, &dirs);
    let cals = pool_scores
        .iter()
        .zip(&target_scores)
        .map(|(p, t)| calibrate(t, p))
        .collect::<Result<Vec<_>, _>>()?;
    let best = choose_alpha(alphas, &cals);
    let moments = folded.combined(None)?.finish()?;
    let ridge = alphas[best] * covariance_scale(&moments);
    Ok(GaussianFit {
        direction: direction(&moments, &mu_t, ridge)?,
        alpha: alphas[best],
        ridge,
        calibration: cals[best],
        cv: alphas.iter().copied().zip(cals).collect(),
        pool: moments,
        target_mean: mu_t,
    })
}
