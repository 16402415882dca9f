//! gio_rs: Gradient Information Optimization (Everaert & Potts, arXiv 2306.11670).
//!
//! The pure-Rust core lives in the modules below; only `python` (behind the `python`
//! feature) knows about Python. Formulas and reference quirks are documented in
//! `docs/reference.md` and in the Python package's docs.

pub mod descent;
pub mod distance;
pub mod error;
pub mod kl;
pub mod kmeans;
pub mod memory;
pub mod parallel;
pub mod params;
pub mod ratio;
pub mod rng;
pub mod rowhash;
pub mod rows;
pub mod selection;
pub mod simd;

#[cfg(feature = "python")]
mod python;

pub use error::GioError;
pub use rows::{Element, Precision, Rows};
