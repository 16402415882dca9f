//! The selection loop's function.

use pyo3::prelude::*;

use super::arrays::{by_dtype, with_rows};
use super::host::{run_detached, PyHost};
use super::params::PySelectParams;
use super::results::SelectionResult;
use crate::selection;

/// Runs the selection loop `params.method` names: rows of `train` for target `x` from the
/// selection `w0`. `random()` and `pick(n)` draw as Python's `random` does; `callback` gets
/// `start(kl_start, scale_factor)` and `candidate(...)` calls (see `gio_rs._progress`).
#[pyfunction]
#[pyo3(signature = (train, x, w0, params, *, random = None, pick = None, callback = None))]
#[allow(clippy::too_many_arguments)]
fn select<'py>(
    py: Python<'py>,
    train: &Bound<'py, PyAny>,
    x: &Bound<'py, PyAny>,
    w0: &Bound<'py, PyAny>,
    params: &PySelectParams,
    random: Option<Py<PyAny>>,
    pick: Option<Py<PyAny>>,
    callback: Option<Py<PyAny>>,
) -> PyResult<SelectionResult> {
    let (params, arrays) = (&params.core, [("train", train), ("X", x), ("D", w0)]);
    let host = PyHost::new(random, pick, callback);
    by_dtype!(x, T => with_rows::<T, 3, _>(arrays, |[train, x, w0]| {
        let out = run_detached(py, host, |h| selection::select(train, x, w0, params, h))?;
        SelectionResult::new(py, out, x.dim())
    }))
}

/// Adds this file's functions to the module.
pub(super) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(select, m)?)?;
    Ok(())
}
