//! K-Means: greedy k-means++ on a bounded sample, then Lloyd iterations whose assignment step
//! is a tiled Gram product (‖x‖² − 2x·c + ‖c‖², never an N×K matrix), centroid sums in f64,
//! empty clusters re-seeded deterministically. Deterministic for a seed, whatever the number of
//! threads: chunk sizes depend only on the data's shape and partial sums combine in order.
//!
//! By job: `params` (the options and their checks), `init` (k-means++ and random rows),
//! `assign` (the full assignment), `bounded` (Hamerly's bounded reassignment), `lloyd` (the
//! iterations), `fit` (a whole fit), `predict`, `estimates` (working sets).

mod assign;
mod bounded;
mod estimates;
mod fit;
mod init;
mod lloyd;
mod params;
mod predict;

pub use assign::assign;
pub use estimates::{fit_working_set, predict_working_set};
pub use fit::{kmeans, KMeansFit};
pub use init::plus_plus_sample;
pub use params::{KMeansInit, KMeansParams, ValidKMeansParams};
pub use predict::predict;
