//! `gio_rs.GioError` and the mapping of core errors to Python exceptions.

use pyo3::exceptions::{PyIndexError, PyRuntimeError, PyValueError};
use pyo3::prelude::*;

use crate::error::GioError as CoreError;

pyo3::create_exception!(
    gio_rs,
    GioError,
    PyValueError,
    "Invalid input to gio_rs. The message names the argument and the problem."
);

impl From<CoreError> for PyErr {
    fn from(err: CoreError) -> PyErr {
        match err {
            CoreError::InvalidArgument { .. } => GioError::new_err(err.to_string()),
            CoreError::PoolExhausted => PyIndexError::new_err(err.to_string()),
            CoreError::Aborted => PyRuntimeError::new_err("gio_rs: aborted by the caller"),
        }
    }
}

pub(super) fn invalid(name: &str, problem: impl std::fmt::Display) -> PyErr {
    GioError::new_err(format!("{name}: {problem}"))
}

/// Adds `GioError` to the module.
pub(super) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("GioError", m.py().get_type::<GioError>())
}
