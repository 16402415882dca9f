//! What callers plan with: the working sets of the core's calls and the SIMD level.

use pyo3::prelude::*;

use crate::kmeans as core_kmeans;
use crate::selection::{self, Method};

/// Bytes a selection allocates besides its inputs (`selection::working_set`).
#[pyfunction]
#[pyo3(signature = (n_train, n_target, dim, *, n_start, max_iter, greedy = false, itemsize = 8))]
fn select_bytes(
    n_train: usize,
    n_target: usize,
    dim: usize,
    n_start: usize,
    max_iter: usize,
    greedy: bool,
    itemsize: usize,
) -> usize {
    let method = if greedy {
        Method::Greedy
    } else {
        Method::Gradient
    };
    selection::working_set(n_train, n_target, dim, n_start, max_iter, method, itemsize)
}

/// Bytes a K-Means fit allocates besides its input (`kmeans::fit_working_set`).
#[pyfunction]
#[pyo3(signature = (n_rows, dim, n_clusters, itemsize, sample_size = 0))]
fn kmeans_bytes(
    n_rows: usize,
    dim: usize,
    n_clusters: usize,
    itemsize: usize,
    sample_size: usize,
) -> usize {
    core_kmeans::fit_working_set(n_rows, dim, n_clusters, itemsize, sample_size)
}

/// Bytes an assignment to fitted centers allocates besides its input.
#[pyfunction]
fn assign_bytes(n_rows: usize, dim: usize, n_clusters: usize) -> usize {
    core_kmeans::predict_working_set(n_rows, dim, n_clusters)
}

/// The SIMD level the kernels dispatched to on this CPU: "avx512" or "avx2" (x86-64 with FMA),
/// "neon" (aarch64) or "scalar" (elsewhere, or with GIO_RS_NO_SIMD=1; GIO_RS_NO_AVX512=1 skips
/// AVX-512). Chosen once per process.
#[pyfunction]
fn simd_level() -> &'static str {
    crate::simd::level_name()
}

/// Adds this file's functions to the module.
pub(super) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(select_bytes, m)?)?;
    m.add_function(wrap_pyfunction!(kmeans_bytes, m)?)?;
    m.add_function(wrap_pyfunction!(assign_bytes, m)?)?;
    m.add_function(wrap_pyfunction!(simd_level, m)?)?;
    Ok(())
}
