//! Bindings of the exact-duplicate kernels (`crate::rowhash`): arrays borrowed without copies,
//! work run without the GIL, results as NumPy arrays.

use numpy::{PyArray1, PyReadonlyArray1, PyReadonlyArray2, PyUntypedArrayMethods};
use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;

use super::errors::invalid;
use super::host::run_plain;
use crate::rowhash;

type HashPair<'py> = (Bound<'py, PyArray1<u64>>, Bound<'py, PyArray1<u64>>);
type RowPairs<'py> = (Bound<'py, PyArray1<i64>>, Bound<'py, PyArray1<i64>>);

/// A C-contiguous 2-D array's values and row length.
fn values<'a, T: numpy::Element>(a: &'a PyReadonlyArray2<'_, T>) -> PyResult<(&'a [T], usize)> {
    if !a.is_c_contiguous() {
        return Err(invalid("x", "must be C-contiguous"));
    }
    Ok((a.as_slice().map_err(|e| invalid("x", e))?, a.shape()[1]))
}

/// The two 64-bit hashes of every row of `x` (a 2-D float32 or float64 C-contiguous array, no
/// NaN): float32 rows as they are, float64 rows in their canonical form (as float32 when every
/// value is exactly one).
#[pyfunction]
fn canonical_row_hashes<'py>(py: Python<'py>, x: &Bound<'py, PyAny>) -> PyResult<HashPair<'py>> {
    let (first, second) = if let Ok(a) = x.extract::<PyReadonlyArray2<'_, f32>>() {
        let (slice, dim) = values(&a)?;
        run_plain(py, || rowhash::row_hashes_f32(slice, dim))?
    } else if let Ok(a) = x.extract::<PyReadonlyArray2<'_, f64>>() {
        let (slice, dim) = values(&a)?;
        run_plain(py, || rowhash::canonical_hashes_f64(slice, dim))?
    } else {
        return Err(PyTypeError::new_err(
            "x: expected a 2-D float32 or float64 array",
        ));
    };
    Ok((
        PyArray1::from_vec(py, first),
        PyArray1::from_vec(py, second),
    ))
}

/// (rows, first rows) of the records whose hashes equal a lower row's (`rowhash::duplicate_pairs`).
#[pyfunction]
fn duplicate_pairs<'py>(
    py: Python<'py>,
    first: PyReadonlyArray1<'py, u64>,
    second: PyReadonlyArray1<'py, u64>,
    rows: PyReadonlyArray1<'py, i64>,
) -> PyResult<RowPairs<'py>> {
    let first = first.as_slice().map_err(|e| invalid("first", e))?;
    let second = second.as_slice().map_err(|e| invalid("second", e))?;
    let rows = rows.as_slice().map_err(|e| invalid("rows", e))?;
    let (repeats, firsts) = run_plain(py, || rowhash::duplicate_pairs(first, second, rows))?;
    Ok((
        PyArray1::from_vec(py, repeats),
        PyArray1::from_vec(py, firsts),
    ))
}

/// Adds this file's functions to the module.
pub(super) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(canonical_row_hashes, m)?)?;
    m.add_function(wrap_pyfunction!(duplicate_pairs, m)?)?;
    Ok(())
}
