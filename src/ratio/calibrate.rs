//! Calibration of a raw score into log r (reference_ratio.calibrate): a class-balanced 1-D
//! logistic fit of out-of-fold scores, target rows against pool rows, no penalty. With balanced
//! classes the fitted log-odds a·s + b estimate log p_target / p_pool; log 2 minus its log-loss is
//! the score's cross-validated gain (0 for a score that carries nothing).

use crate::error::GioError;
use crate::parallel::map_in_order;
use crate::ratio::logistic::LogisticOptions;

/// log r = scale · s + offset; `gain` in nats per row.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Calibration {
    pub scale: f64,
    pub offset: f64,
    pub gain: f64,
}

/// Rows per chunk of the calibration's sums (fixed, so the sums are the same for any thread
/// count).
const CHUNK: usize = 1 << 14;

/// The balanced 1-D logistic fit of `target_scores` (positives) against `pool_scores`, by the
/// reference's Newton method (`logistic::fit_logistic` specialised to one feature: a 2 × 2 system,
/// sums over fixed chunks in parallel), so that calibrating a million scores per α stays cheap.
pub fn calibrate(target_scores: &[f64], pool_scores: &[f64]) -> Result<Calibration, GioError> {
    let (nt, np) = (target_scores.len(), pool_scores.len());
    if nt == 0 || np == 0 {
        return Err(GioError::invalid(
            "scores",
            "calibration needs target and pool scores",
        ));
    }
    let classes = [
        (target_scores, 1.0, 0.5 / nt as f64),
        (pool_scores, 0.0, 0.5 / np as f64),
    ];
    let options = LogisticOptions::default();
    let mut theta = [0.0f64; 2];
    let mut current = sums(&classes, theta).loss;
    for _ in 0..options.max_iter {
        let at = sums(&classes, theta);
        // H = Σ w p(1−p) [s², s; s, 1] + 1e-12·I, solved by Cramer's rule.
        let (h00, h01, h11) = (at.h_ss + 1e-12, at.h_s, at.h_1 + 1e-12);
        let det = h00 * h11 - h01 * h01;
        let step = [
            (h11 * at.g_s - h01 * at.g_1) / det,
            (h00 * at.g_1 - h01 * at.g_s) / det,
        ];
        let mut t = 1.0;
        let mut accepted = None;
        while t > 1e-8 {
            let trial = [theta[0] - t * step[0], theta[1] - t * step[1]];
            let value = sums(&classes, trial).loss;
            if value <= current {
                accepted = Some((trial, value));
                break;
            }
            t /= 2.0;
        }
        let Some((trial, value)) = accepted else {
            break;
        };
        let decrease = current - value;
        (theta, current) = (trial, value);
        if decrease < options.tolerance {
            break;
        }
    }
    Ok(Calibration {
        scale: theta[0],
        offset: theta[1],
        gain: std::f64::consts::LN_2 - current,
    })
}

/// The weighted loss Σ w (softplus(z) − y z), its gradient and Hessian terms at z = a·s + b.
#[derive(Default, Clone, Copy)]
struct Sums {
    loss: f64,
    g_s: f64,
    g_1: f64,
    h_ss: f64,
    h_s: f64,
    h_1: f64,
}

impl Sums {
    fn add(mut self, o: Sums) -> Sums {
        self.loss += o.loss;
        self.g_s += o.g_s;
        self.g_1 += o.g_1;
        self.h_ss += o.h_ss;
        self.h_s += o.h_s;
        self.h_1 += o.h_1;
        self
    }
}

fn sums(classes: &[(&[f64], f64, f64); 2], theta: [f64; 2]) -> Sums {
    let mut total = Sums::default();
    for &(scores, y, w) in classes {
        let chunks = map_in_order(scores.len(), 0..scores.len().div_ceil(CHUNK), |c| {
            let part = &scores[c * CHUNK..((c + 1) * CHUNK).min(scores.len())];
            part.iter().fold(Sums::default(), |acc, &s| {
                let z = theta[0] * s + theta[1];
                // One exponential for the probability and the softplus: e = exp(−|z|).
                let e = (-z.abs()).exp();
                let p = if z >= 0.0 {
                    1.0 / (1.0 + e)
                } else {
                    e / (1.0 + e)
                };
                let (r, v) = (w * (p - y), w * p * (1.0 - p));
                acc.add(Sums {
                    loss: w * (z.max(0.0) + e.ln_1p() - y * z),
                    g_s: r * s,
                    g_1: r,
                    h_ss: v * s * s,
                    h_s: v * s,
                    h_1: v,
                })
            })
        });
        total = chunks.into_iter().fold(total, Sums::add);
    }
    total
}
