//! Array borrowing: NumPy arrays of the working dtype as the core's `Rows`, without copies.

use numpy::{PyReadonlyArray1, PyReadonlyArray2, PyUntypedArrayMethods};
use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;

use super::errors::invalid;
use crate::rows::{Element, Rows};

/// A 2-D array of the working dtype.
pub(super) fn extract2<'py, T: Element + numpy::Element>(
    name: &'static str,
    obj: &Bound<'py, PyAny>,
) -> PyResult<PyReadonlyArray2<'py, T>> {
    obj.extract::<PyReadonlyArray2<'py, T>>().map_err(|_| {
        PyTypeError::new_err(format!(
            "{name}: expected a 2-D {} array (the same dtype as the target)",
            std::any::type_name::<T>().replace("f", "float")
        ))
    })
}

/// A C-contiguous 2-D array as rows. Only the layout is checked: the Python layer checked the
/// values when it accepted the array (`check_finite`), and the core copes with any value.
pub(super) fn rows_of<'a, T: Element + numpy::Element>(
    name: &'static str,
    a: &'a PyReadonlyArray2<'_, T>,
) -> PyResult<Rows<'a, T>> {
    if !a.is_c_contiguous() {
        return Err(invalid(name, "must be C-contiguous"));
    }
    let slice = a.as_slice().map_err(|e| invalid(name, e))?;
    Ok(Rows::new(name, slice, a.shape()[1])?)
}

/// Runs `f` on the named arrays as rows of the working dtype `T`.
pub(super) fn with_rows<'py, T, const N: usize, R>(
    arrays: [(&'static str, &Bound<'py, PyAny>); N],
    f: impl FnOnce([Rows<'_, T>; N]) -> PyResult<R>,
) -> PyResult<R>
where
    T: Element + numpy::Element,
{
    let views = arrays
        .iter()
        .map(|&(name, obj)| extract2::<T>(name, obj))
        .collect::<PyResult<Vec<_>>>()?;
    let rows = views
        .iter()
        .zip(arrays)
        .map(|(view, (name, _))| rows_of(name, view))
        .collect::<PyResult<Vec<_>>>()?;
    f(rows
        .try_into()
        .unwrap_or_else(|_| unreachable!("one view per array")))
}

pub(super) fn vector(name: &'static str, v: &PyReadonlyArray1<'_, f64>) -> PyResult<Vec<f64>> {
    Ok(v.as_slice().map_err(|e| invalid(name, e))?.to_vec())
}

/// Runs `$body` with `$t` the target's float type: float32 and float64 stay as they are.
macro_rules! by_dtype {
    ($x:expr, $t:ident => $body:expr) => {{
        if $x.extract::<::numpy::PyReadonlyArray2<'_, f64>>().is_ok() {
            type $t = f64;
            $body
        } else if $x.extract::<::numpy::PyReadonlyArray2<'_, f32>>().is_ok() {
            type $t = f32;
            $body
        } else {
            Err(::pyo3::exceptions::PyTypeError::new_err(
                "X: expected a 2-D float32 or float64 array",
            ))
        }
    }};
}

pub(super) use by_dtype;
