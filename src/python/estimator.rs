//! The estimator's functions: KL by either k-NN estimator, its gradient, gradient descent on v.

use numpy::{PyArray1, PyReadonlyArray1};
use pyo3::prelude::*;

use super::arrays::{by_dtype, vector, with_rows};
use super::convert::{check_bool, check_float, check_int, number};
use super::host::{run_detached, PyHost};
use crate::descent::descend_from;
use crate::kl::{self, KlParams};
use crate::selection::{self, LoopHost};

/// KL(x ‖ y) by the averaged k-NN estimator.
#[pyfunction]
fn kl_divergence(
    py: Python<'_>,
    x: &Bound<'_, PyAny>,
    y: &Bound<'_, PyAny>,
    k: &Bound<'_, PyAny>,
    eps: &Bound<'_, PyAny>,
    discard_nearest_for_xy: &Bound<'_, PyAny>,
) -> PyResult<f64> {
    let params = KlParams {
        k: check_int("k", k, 1, i64::MAX)? as usize,
        eps: number("eps", eps)?,
        discard_nearest_for_xy: check_bool("discard_nearest_for_xy", discard_nearest_for_xy)?,
    };
    by_dtype!(x, T => with_rows::<T, 2, _>([("x", x), ("y", y)], |[x, y]| {
        run_detached(py, PyHost::default(), |_| kl::kl_divergence(x, y, params))
    }))
}

/// Closed-form gradient of KL(x ‖ w ∪ {v}) with respect to v.
#[pyfunction]
fn kl_gradient<'py>(
    py: Python<'py>,
    x: &Bound<'py, PyAny>,
    w: &Bound<'py, PyAny>,
    v: PyReadonlyArray1<'py, f64>,
    discard_nearest_for_xy: &Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyArray1<f64>>> {
    let discard = check_bool("discard_nearest_for_xy", discard_nearest_for_xy)?;
    let v = vector("v", &v)?;
    let g = by_dtype!(x, T => with_rows::<T, 2, _>([("x", x), ("w", w)], |[x, w]| {
        run_detached(py, PyHost::default(), |_| kl::kl_gradient(x, w, &v, discard))
    }))?;
    Ok(PyArray1::from_vec(py, g))
}

/// Gradient descent on v (`GIOKL.gradient_descend`'s names): `max_iterations` steps of
/// v ← v − lr·scaling_factor·∇. Returns (v, scaling_factor).
#[pyfunction]
#[allow(clippy::too_many_arguments)]
fn gradient_descend<'py>(
    py: Python<'py>,
    x: &Bound<'py, PyAny>,
    w: &Bound<'py, PyAny>,
    v: PyReadonlyArray1<'py, f64>,
    scaling_factor: &Bound<'py, PyAny>,
    max_iterations: &Bound<'py, PyAny>,
    lr: &Bound<'py, PyAny>,
    discard_nearest_for_xy: &Bound<'py, PyAny>,
) -> PyResult<(Bound<'py, PyArray1<f64>>, f64)> {
    let v = vector("v", &v)?;
    let scale = Some(check_float("scaling_factor", scaling_factor, None, None)?);
    let steps = check_int("max_iterations", max_iterations, 0, i64::MAX)? as usize;
    let lr = check_float("lr", lr, None, None)?;
    let discard = check_bool("discard_nearest_for_xy", discard_nearest_for_xy)?;
    let (v, scale) = by_dtype!(x, T => with_rows::<T, 2, _>([("X", x), ("W", w)], |[x, w]| {
        run_detached(py, PyHost::default(), |host| {
            descend_from(x, w, v, scale, steps, lr, discard, &mut || host.poll())
        })
    }))?;
    Ok((PyArray1::from_vec(py, v), scale))
}

/// KL(x ‖ y) by the unaveraged (Wang–Kulkarni–Verdú) k-NN estimator; NaN when y has < k rows.
#[pyfunction]
fn knn_kl_divergence(
    py: Python<'_>,
    x: &Bound<'_, PyAny>,
    y: &Bound<'_, PyAny>,
    k: &Bound<'_, PyAny>,
) -> PyResult<f64> {
    let k = check_int("k", k, 1, i64::MAX)? as usize;
    by_dtype!(x, T => with_rows::<T, 2, _>([("x", x), ("y", y)], |[x, y]| {
        run_detached(py, PyHost::default(), |_| selection::knn_kl_divergence(x, y, k))
    }))
}

/// Adds this file's functions to the module.
pub(super) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(kl_divergence, m)?)?;
    m.add_function(wrap_pyfunction!(kl_gradient, m)?)?;
    m.add_function(wrap_pyfunction!(gradient_descend, m)?)?;
    m.add_function(wrap_pyfunction!(knn_kl_divergence, m)?)?;
    Ok(())
}
