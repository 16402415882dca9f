//! The result classes: what a selection loop produced and a fitted K-Means model, as NumPy
//! arrays.

use numpy::{PyArray1, PyArray2, PyArrayMethods};
use pyo3::prelude::*;

use crate::kmeans::KMeansFit as CoreKMeansFit;
use crate::selection;

/// What a selection loop produced (the core's `Selection`).
#[pyclass(frozen, get_all, module = "gio_rs._core")]
pub(super) struct SelectionResult {
    indices: Py<PyArray1<i64>>,
    kl_trace: Py<PyArray1<f64>>,
    kl_start: f64,
    candidate_kl: Py<PyArray1<f64>>,
    descent_iters: Py<PyArray1<i64>>,
    v_opts: Py<PyArray2<f64>>,
    scale_factor: f64,
    v: Py<PyArray1<f64>>,
    just_reset: bool,
    num_resets: usize,
    increases: usize,
    used: Py<PyArray1<bool>>,
    stop_reason: &'static str,
}

impl SelectionResult {
    pub(super) fn new(py: Python<'_>, out: selection::Selection, dim: usize) -> PyResult<Self> {
        let ints = |v: Vec<usize>| int_array(py, v).unbind();
        let n_opts = out.v_opts.len() / dim;
        Ok(SelectionResult {
            indices: ints(out.indices),
            kl_trace: PyArray1::from_vec(py, out.kl_trace).unbind(),
            kl_start: out.kl_start,
            candidate_kl: PyArray1::from_vec(py, out.candidate_kl).unbind(),
            descent_iters: ints(out.descent_iters),
            v_opts: PyArray1::from_vec(py, out.v_opts)
                .reshape([n_opts, dim])?
                .unbind(),
            scale_factor: out.scale_factor,
            v: PyArray1::from_vec(py, out.v).unbind(),
            just_reset: out.just_reset,
            num_resets: out.num_resets,
            increases: out.increases,
            used: PyArray1::from_vec(py, out.used).unbind(),
            stop_reason: out.stop_reason.name(),
        })
    }
}

/// A fitted K-Means model (the core's `KMeansFit`).
#[pyclass(frozen, get_all, module = "gio_rs._core")]
pub(super) struct KMeansFit {
    centers: Py<PyArray2<f64>>,
    labels: Py<PyArray1<i64>>,
    inertia: f64,
    n_iter: usize,
}

impl KMeansFit {
    /// The core's fit of `k` clusters as arrays.
    pub(super) fn new(py: Python<'_>, fit: CoreKMeansFit, k: usize) -> PyResult<Self> {
        let dim = fit.centers.len() / k;
        Ok(KMeansFit {
            centers: PyArray1::from_vec(py, fit.centers)
                .reshape([k, dim])?
                .unbind(),
            labels: int_array(py, fit.labels).unbind(),
            inertia: fit.inertia,
            n_iter: fit.n_iter,
        })
    }
}

/// Indices or labels as an int64 array.
pub(super) fn int_array<I: TryInto<i64>>(
    py: Python<'_>,
    values: Vec<I>,
) -> Bound<'_, PyArray1<i64>> {
    let ints = values.into_iter().map(|v| v.try_into().unwrap_or(i64::MAX));
    PyArray1::from_vec(py, ints.collect())
}

/// Adds this file's classes to the module.
pub(super) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<SelectionResult>()?;
    m.add_class::<KMeansFit>()?;
    Ok(())
}
