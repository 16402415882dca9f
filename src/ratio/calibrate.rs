//! Calibration of a raw score into log r (reference_ratio.calibrate): a class-balanced 1-D
//! logistic fit of out-of-fold scores, target rows against pool rows, no penalty. With balanced
//! classes the fitted log-odds a·s + b estimate log p_target / p_pool; log 2 minus its log-loss is
//! the score's cross-validated gain (0 for a score that carries nothing).

use crate::error::GioError;
use crate::ratio::logistic::{fit_logistic, LogisticOptions};
use crate::rows::Rows;

/// log r = scale · s + offset; `gain` in nats per row.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Calibration {
    pub scale: f64,
    pub offset: f64,
    pub gain: f64,
}

/// Below this CV gain (nats per balanced row) the ratio counts as flat (reference_ratio.FLAT_GAIN).
pub const FLAT_GAIN: f64 = 0.02;

/// Whether a calibrated score carries nothing: its CV gain is below `FLAT_GAIN`, or it ranks
/// the wrong way round (scale <= 0).
pub fn is_flat(calibration: &Calibration) -> bool {
    !(calibration.gain >= FLAT_GAIN && calibration.scale > 0.0)
}

/// The balanced 1-D logistic fit of `target_scores` (positives) against `pool_scores`.
pub fn calibrate(target_scores: &[f64], pool_scores: &[f64]) -> Result<Calibration, GioError> {
    let (nt, np) = (target_scores.len(), pool_scores.len());
    if nt == 0 || np == 0 {
        return Err(GioError::invalid(
            "scores",
            "calibration needs target and pool scores",
        ));
    }
    let mut weights = vec![0.5 / nt as f64; nt];
    weights.resize(nt + np, 0.5 / np as f64);
    let options = LogisticOptions {
        l2: 0.0,
        ..LogisticOptions::default()
    };
    let fit = fit_logistic(
        Rows::new("target_scores", target_scores, 1)?,
        Rows::new("pool_scores", pool_scores, 1)?,
        Some(&weights),
        options,
    )?;
    Ok(Calibration {
        scale: fit.w[0],
        offset: fit.bias,
        gain: std::f64::consts::LN_2 - fit.loss,
    })
}
