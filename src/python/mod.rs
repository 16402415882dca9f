//! The Python bindings (`gio_rs._core`): the only file that knows about Python. It converts
//! Python values into the core's checked parameter types (the same conversions Python uses for its
//! own options, exported as `check_int`, `check_float`, `check_bool`, `check_finite`), checks array
//! layout and dtype, releases the GIL around core work, runs progress callbacks and Ctrl-C checks
//! between iterations, and maps core errors and panics to Python exceptions. The public API,
//! array-likes and docstrings live in the Python package.
//!
//! One file per part: `errors` (GioError), `convert` (Python values and keyword options),
//! `params` and `results` (the classes), `host` (callbacks, Ctrl-C, the GIL), `arrays` (array
//! borrowing), and the exported functions by subject (`estimator`, `select`, `kmeans`, `sizes`, `ratio`,
//! `rowhash`).
//! A new file of bindings has a `register` function and takes one `mod` line and one line in
//! `_core` below.

use pyo3::prelude::*;

mod arrays;
mod convert;
mod errors;
mod estimator;
mod host;
mod kmeans;
mod params;
mod ratio;
mod results;
mod rowhash;
mod select;
mod sizes;

#[pymodule]
fn _core(m: &Bound<'_, PyModule>) -> PyResult<()> {
    errors::register(m)?;
    params::register(m)?;
    results::register(m)?;
    convert::register(m)?;
    estimator::register(m)?;
    select::register(m)?;
    kmeans::register(m)?;
    sizes::register(m)?;
    ratio::register(m)?;
    rowhash::register(m)?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
