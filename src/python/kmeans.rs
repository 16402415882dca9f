//! K-Means' functions: a fit, and the assignment to fitted centers.

use numpy::PyArray1;
use pyo3::prelude::*;

use super::arrays::{by_dtype, extract2, rows_of, with_rows};
use super::host::{run_detached, PyHost};
use super::params::PyKMeansParams;
use super::results::{int_array, KMeansFit};
use crate::kmeans as core_kmeans;

/// K-Means on X (float32 or float64); `callback(iteration, inertia)` after every Lloyd iteration.
#[pyfunction]
#[pyo3(signature = (x, params, callback = None))]
fn kmeans(
    py: Python<'_>,
    x: &Bound<'_, PyAny>,
    params: &PyKMeansParams,
    callback: Option<Py<PyAny>>,
) -> PyResult<KMeansFit> {
    let (params, host) = (&params.core, PyHost::new(None, None, callback));
    let fit = by_dtype!(x, T => with_rows::<T, 1, _>([("X", x)], |[x]| {
        run_detached(py, host, |h| core_kmeans::kmeans(x, params, &mut |i, e| h.iteration(i, e)))
    }))?;
    KMeansFit::new(py, fit, params.n_clusters)
}

/// Labels and squared distances of an assignment.
type Assignment<'py> = (Bound<'py, PyArray1<i64>>, Bound<'py, PyArray1<f64>>);

/// Nearest center of every row of X and the squared distance to it.
#[pyfunction]
fn kmeans_assign<'py>(
    py: Python<'py>,
    x: &Bound<'py, PyAny>,
    centers: &Bound<'py, PyAny>,
) -> PyResult<Assignment<'py>> {
    let centers = extract2::<f64>("centers", centers)?;
    let centers = rows_of("centers", &centers)?;
    let (labels, dists) = by_dtype!(x, T => with_rows::<T, 1, _>([("X", x)], |[x]| {
        run_detached(py, PyHost::default(), |_| core_kmeans::predict(x, centers))
    }))?;
    Ok((int_array(py, labels), PyArray1::from_vec(py, dists)))
}

/// Adds this file's functions to the module.
pub(super) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(kmeans, m)?)?;
    m.add_function(wrap_pyfunction!(kmeans_assign, m)?)?;
    Ok(())
}
