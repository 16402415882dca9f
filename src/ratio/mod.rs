//! Density-ratio selection (issue 25): score every pool row by an estimate of
//! log r(x) = log p_target(x) / p_pool(x) and keep `budget_rows` rows: the largest ("top") or a
//! seeded importance resample without replacement ("sample", Gumbel top-k on the calibrated
//! log r). The formulas follow the NumPy oracle `reference_ratio.py`; each file has one job:
//!
//! - `moments`: pool mean and covariance by float64 GEMM-shaped blocks, bit-identical for any
//!   batching, thread count and fused SIMD level; `folds`: the same per CV fold.
//! - `solve`: Cholesky of S + λI. `gaussian`: the closed form with the cross-validated ridge.
//! - `calibrate`: the class-balanced 1-D logistic calibration of out-of-fold scores and its gain
//!   (the options, their checks and the flat-ratio rule live in python/gio_rs/ratio.py).
//! - `knn`: exact k-NN target counts (GEMM-shaped approximate pass) and their log-ratio;
//!   `nearest`: one query's exact k nearest from those approximate values and their error
//!   bound. `logistic`: the L2 logistic fit.
//! - `score`: the scoring pass, counter-based Gumbel keys and the bounded top-B.

pub mod calibrate;
pub mod folds;
pub mod gaussian;
pub mod knn;
pub mod logistic;
pub mod moments;
mod nearest;
pub mod score;
pub mod solve;
