//! Python values into checked Rust ones: the conversions the parameter classes use, exported as
//! `check_int`, `check_float`, `check_bool` and `check_finite` for the Python layer's own options,
//! and `Options`, the keyword options of a parameters constructor.

use numpy::{PyArrayDyn, PyArrayMethods, PyUntypedArrayMethods};
use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyBool, PyDict, PyType};

use super::errors::invalid;
use crate::params::{above, below, float_problem, unknown, Named};
use crate::rows::{nonfinite_problem, Element};

/// `numbers.Integral`, `numbers.Real` and `numpy.bool_`, imported once.
static INTEGRAL: PyOnceLock<Py<PyType>> = PyOnceLock::new();
static REAL: PyOnceLock<Py<PyType>> = PyOnceLock::new();
static NUMPY_BOOL: PyOnceLock<Py<PyType>> = PyOnceLock::new();

fn is_bool(value: &Bound<'_, PyAny>) -> PyResult<bool> {
    let py = value.py();
    Ok(value.is_instance_of::<PyBool>()
        || value.is_instance(NUMPY_BOOL.import(py, "numpy", "bool_")?)?)
}

pub(super) fn expected(name: &str, what: &str, value: &Bound<'_, PyAny>) -> PyErr {
    let got = value
        .get_type()
        .name()
        .map_or_else(|_| "?".into(), |n| n.to_string());
    PyTypeError::new_err(format!("{name}: expected {what}, got {got}"))
}

/// An integer (not a bool) in [minimum, maximum].
#[pyfunction]
#[pyo3(signature = (name, value, *, minimum, maximum = i64::MAX))]
pub(super) fn check_int(
    name: &str,
    value: &Bound<'_, PyAny>,
    minimum: i64,
    maximum: i64,
) -> PyResult<i64> {
    let py = value.py();
    if is_bool(value)? || !value.is_instance(INTEGRAL.import(py, "numbers", "Integral")?)? {
        return Err(expected(name, "an integer", value));
    }
    let int = value.call_method0("__index__")?;
    match int.extract::<i64>() {
        Ok(v) if v < minimum => Err(invalid(name, below(minimum, v))),
        Ok(v) if v > maximum => Err(invalid(name, above(maximum, v))),
        Ok(v) => Ok(v),
        // Past i64 either way.
        Err(_) if int.lt(0)? => Err(invalid(name, below(minimum, int.str()?))),
        Err(_) => Err(invalid(name, above(maximum, int.str()?))),
    }
}

/// A real number (not a bool) as a float; NaN and infinities pass (see `check_float`).
pub(super) fn number(name: &str, value: &Bound<'_, PyAny>) -> PyResult<f64> {
    let py = value.py();
    if is_bool(value)? || !value.is_instance(REAL.import(py, "numbers", "Real")?)? {
        return Err(expected(name, "a number", value));
    }
    value.extract::<f64>()
}

/// A finite real number (not a bool) within the bounds given.
#[pyfunction]
#[pyo3(signature = (name, value, *, minimum = None, maximum = None))]
pub(super) fn check_float(
    name: &str,
    value: &Bound<'_, PyAny>,
    minimum: Option<f64>,
    maximum: Option<f64>,
) -> PyResult<f64> {
    let v = number(name, value)?;
    match float_problem(v, minimum, maximum) {
        Some(problem) => Err(invalid(name, problem)),
        None => Ok(v),
    }
}

/// True or False (Python's or NumPy's).
#[pyfunction]
pub(super) fn check_bool(name: &str, value: &Bound<'_, PyAny>) -> PyResult<bool> {
    if !is_bool(value)? {
        return Err(expected(name, "True or False", value));
    }
    value.is_truthy()
}

/// Refuses NaN and infinite values in a float32 or float64 array of one or two dimensions, naming
/// up to ten of the rows (positions, for a vector) that hold them: one pass at memory speed.
#[pyfunction]
fn check_finite(name: &str, array: &Bound<'_, PyAny>) -> PyResult<()> {
    let problem = if let Ok(a) = array.cast::<PyArrayDyn<f64>>() {
        finiteness(&a.readonly())
    } else if let Ok(a) = array.cast::<PyArrayDyn<f32>>() {
        finiteness(&a.readonly())
    } else {
        return Err(PyTypeError::new_err(format!(
            "{name}: expected a float32 or float64 array"
        )));
    };
    match problem {
        Some(problem) => Err(invalid(name, problem)),
        None => Ok(()),
    }
}

fn finiteness<T: Element + numpy::Element>(a: &numpy::PyReadonlyArrayDyn<'_, T>) -> Option<String> {
    let shape = a.shape();
    let (dim, unit) = match shape {
        [_, dim] => (*dim, "rows"),
        _ => (1, "positions"),
    };
    match a.as_slice() {
        Ok(data) if a.is_c_contiguous() => nonfinite_problem(data, dim, unit),
        // Another layout: its values in row-major order (the cast that follows copies it anyway).
        _ => {
            let data: Vec<T> = a.as_array().iter().copied().collect();
            nonfinite_problem(&data, dim, unit)
        }
    }
}

/// The keyword options of a parameters constructor: each taken by name, with the core's default
/// when absent; a name nobody asked for is refused.
pub(super) struct Options<'py> {
    what: &'static str,
    given: Option<Bound<'py, PyDict>>,
    taken: Vec<&'static str>,
}

impl<'py> Options<'py> {
    pub(super) fn new(what: &'static str, given: Option<&Bound<'py, PyDict>>) -> Self {
        Options {
            what,
            given: given.cloned(),
            taken: Vec::new(),
        }
    }

    pub(super) fn take<V>(
        &mut self,
        name: &'static str,
        default: V,
        convert: impl FnOnce(&Bound<'py, PyAny>) -> PyResult<V>,
    ) -> PyResult<V> {
        self.taken.push(name);
        match self
            .given
            .as_ref()
            .map(|g| g.get_item(name))
            .transpose()?
            .flatten()
        {
            Some(value) => convert(&value),
            None => Ok(default),
        }
    }

    /// A count of at least `minimum`.
    pub(super) fn count(
        &mut self,
        name: &'static str,
        minimum: i64,
        default: usize,
    ) -> PyResult<usize> {
        self.take(name, default, |v| {
            Ok(check_int(name, v, minimum, i64::MAX)? as usize)
        })
    }

    /// A float; the core's `check` decides which values it may take.
    pub(super) fn number(&mut self, name: &'static str, default: f64) -> PyResult<f64> {
        self.take(name, default, |v| number(name, v))
    }

    pub(super) fn flag(&mut self, name: &'static str, default: bool) -> PyResult<bool> {
        self.take(name, default, |v| check_bool(name, v))
    }

    /// One of `C::NAMES`.
    pub(super) fn choice<C: Named>(&mut self, name: &'static str, default: C) -> PyResult<C> {
        self.take(name, default, |v| {
            let text = v.extract::<String>().ok();
            match text.as_deref().and_then(C::parse) {
                Some(c) => Ok(c),
                None => Err(unknown(name, "value", &v.repr()?.to_string(), C::NAMES).into()),
            }
        })
    }

    pub(super) fn finish(self) -> PyResult<()> {
        let Some(given) = self.given else {
            return Ok(());
        };
        for name in given.keys() {
            let name = name.str()?.to_string();
            if !self.taken.contains(&name.as_str()) {
                return Err(PyTypeError::new_err(format!(
                    "{}() got an unexpected keyword argument '{name}'",
                    self.what
                )));
            }
        }
        Ok(())
    }
}

/// Adds this file's functions to the module.
pub(super) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(check_int, m)?)?;
    m.add_function(wrap_pyfunction!(check_float, m)?)?;
    m.add_function(wrap_pyfunction!(check_bool, m)?)?;
    m.add_function(wrap_pyfunction!(check_finite, m)?)?;
    Ok(())
}
