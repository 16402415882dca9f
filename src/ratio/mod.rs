//! Density-ratio selection (issue 25): score every pool row by an estimate of
//! log r(x) = log p_target(x) / p_pool(x) and keep the best `budget_rows`.

pub mod calibrate;
pub mod folds;
pub mod gaussian;
pub mod knn;
pub mod logistic;
pub mod moments;
pub mod params;
pub mod score;
pub mod solve;
