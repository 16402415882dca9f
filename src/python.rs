//! The Python bindings (`gio_rs._core`): the only file that knows about Python. It checks
//! array layout and dtype, releases the GIL around core work, runs progress callbacks and
//! Ctrl-C checks between iterations, and maps core errors and panics to Python exceptions.
//! The public API and argument normalisation live in the Python package.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::{Duration, Instant};

use numpy::{PyArray1, PyArrayMethods, PyReadonlyArray1, PyReadonlyArray2, PyUntypedArrayMethods};
use pyo3::exceptions::{PyIndexError, PyRuntimeError, PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::PyDict;

use crate::descent::{auto_scale_factor, descend, DescentWork};
use crate::error::GioError as CoreError;
use crate::greedy::{self, GreedyOptions};
use crate::kl::{self, KlParams, KlState};
use crate::kmeans::{self as core_kmeans, KMeansInit, KMeansParams};
use crate::rows::{Element, Rows};
use crate::select::{self, LoopHost, SelectOptions, Semantics, StopCriterion, VInit};

pyo3::create_exception!(
    gio_rs,
    GioError,
    PyValueError,
    "Invalid input to gio_rs. The message names the argument and the problem."
);

/// How often a long computation checks for Ctrl-C.
const POLL_INTERVAL: Duration = Duration::from_millis(50);

fn gio_error(err: CoreError) -> PyErr {
    match err {
        CoreError::InvalidArgument { .. } => GioError::new_err(err.to_string()),
        CoreError::PoolExhausted => PyIndexError::new_err(err.to_string()),
        CoreError::Aborted => PyRuntimeError::new_err("gio_rs: aborted by the caller"),
    }
}

/// Runs core work without the GIL; panics become a RuntimeError, never an abort.
fn run_detached<R: Send>(
    py: Python<'_>,
    host: &mut PyHost,
    f: impl FnOnce(&mut PyHost) -> Result<R, CoreError> + Send,
) -> PyResult<R> {
    let result = py.detach(|| catch_unwind(AssertUnwindSafe(|| f(host))));
    match result {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(CoreError::Aborted)) => Err(host
            .error
            .take()
            .unwrap_or_else(|| gio_error(CoreError::Aborted))),
        Ok(Err(err)) => Err(gio_error(err)),
        Err(panic) => {
            let what = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_default();
            Err(PyRuntimeError::new_err(format!(
                "gio_rs internal error (please report it): {what}"
            )))
        }
    }
}

/// The loop's view of Python: random draws, the progress callback and Ctrl-C.
struct PyHost {
    random: Option<Py<PyAny>>,
    pick: Option<Py<PyAny>>,
    callback: Option<Py<PyAny>>,
    last_poll: Instant,
    /// The Python exception that stopped the work, re-raised after the GIL is back.
    error: Option<PyErr>,
}

impl PyHost {
    fn new(
        random: Option<Py<PyAny>>,
        pick: Option<Py<PyAny>>,
        callback: Option<Py<PyAny>>,
    ) -> Self {
        PyHost {
            random,
            pick,
            callback,
            last_poll: Instant::now(),
            error: None,
        }
    }

    fn with_python<R>(
        &mut self,
        f: impl FnOnce(Python<'_>, &Self) -> PyResult<R>,
    ) -> Result<R, CoreError> {
        let result = Python::attach(|py| f(py, self));
        result.map_err(|err| {
            self.error = Some(err);
            CoreError::Aborted
        })
    }
}

impl LoopHost for PyHost {
    fn random(&mut self) -> Result<f64, CoreError> {
        self.with_python(|py, me| match &me.random {
            Some(f) => f.call0(py)?.extract::<f64>(py),
            None => Err(PyRuntimeError::new_err("no random source")),
        })
    }

    fn pick(&mut self, n: usize) -> Result<usize, CoreError> {
        self.with_python(|py, me| match &me.pick {
            Some(f) => f.call1(py, (n,))?.extract::<usize>(py),
            None => Err(PyRuntimeError::new_err("no random source")),
        })
    }

    fn on_start(&mut self, kl_start: f64, scale_factor: f64) -> Result<(), CoreError> {
        self.with_python(|py, me| {
            if let Some(cb) = &me.callback {
                cb.call_method1(py, "start", (kl_start, scale_factor))?;
            }
            Ok(())
        })
    }

    fn on_candidate(&mut self, e: &select::CandidateEvent) -> Result<(), CoreError> {
        self.last_poll = Instant::now();
        self.with_python(|py, me| {
            py.check_signals()?;
            if let Some(cb) = &me.callback {
                let args = (
                    e.candidate,
                    e.iteration,
                    e.selected,
                    e.kl,
                    e.accepted,
                    e.reset,
                    e.num_resets,
                );
                cb.call_method1(py, "candidate", args)?;
            }
            Ok(())
        })
    }

    fn poll(&mut self) -> Result<(), CoreError> {
        if self.last_poll.elapsed() < POLL_INTERVAL {
            return Ok(());
        }
        self.last_poll = Instant::now();
        self.with_python(|py, _| py.check_signals())
    }
}

/// A C-contiguous 2-D array of the working dtype as rows.
fn rows_of<'a, T: Element + numpy::Element>(
    name: &'static str,
    a: &'a PyReadonlyArray2<'_, T>,
) -> PyResult<Rows<'a, T>> {
    if !a.is_c_contiguous() {
        return Err(GioError::new_err(format!("{name}: must be C-contiguous")));
    }
    let slice = a
        .as_slice()
        .map_err(|e| GioError::new_err(format!("{name}: {e}")))?;
    // The public wrappers check finiteness too; this keeps direct `_core` calls safe.
    Rows::new_finite(name, slice, a.shape()[1]).map_err(gio_error)
}

fn extract2<'py, T: Element + numpy::Element>(
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

fn vector(name: &'static str, v: &PyReadonlyArray1<'_, f64>) -> PyResult<Vec<f64>> {
    Ok(v.as_slice()
        .map_err(|e| GioError::new_err(format!("{name}: {e}")))?
        .to_vec())
}

/// Dispatches on the target's dtype: float32 and float64 stay as they are.
macro_rules! by_dtype {
    ($x:expr, $f:ident ( $($arg:expr),* )) => {{
        if $x.extract::<PyReadonlyArray2<'_, f64>>().is_ok() {
            $f::<f64>($($arg),*)
        } else if $x.extract::<PyReadonlyArray2<'_, f32>>().is_ok() {
            $f::<f32>($($arg),*)
        } else {
            Err(PyTypeError::new_err("X: expected a 2-D float32 or float64 array"))
        }
    }};
}

fn kl_divergence_impl<T: Element + numpy::Element>(
    py: Python<'_>,
    x: &Bound<'_, PyAny>,
    y: &Bound<'_, PyAny>,
    k: usize,
    eps: f64,
    discard: bool,
) -> PyResult<f64> {
    let (xa, ya) = (extract2::<T>("x", x)?, extract2::<T>("y", y)?);
    let (xr, yr) = (rows_of("x", &xa)?, rows_of("y", &ya)?);
    let params = KlParams {
        k,
        eps,
        discard_nearest_for_xy: discard,
    };
    let mut host = PyHost::new(None, None, None);
    run_detached(py, &mut host, |_| kl::kl_divergence(xr, yr, params))
}

/// KL(x ‖ y) by the averaged k-NN estimator.
#[pyfunction]
#[pyo3(signature = (x, y, k, eps, discard_nearest_for_xy))]
fn kl_divergence(
    py: Python<'_>,
    x: &Bound<'_, PyAny>,
    y: &Bound<'_, PyAny>,
    k: usize,
    eps: f64,
    discard_nearest_for_xy: bool,
) -> PyResult<f64> {
    by_dtype!(
        x,
        kl_divergence_impl(py, x, y, k, eps, discard_nearest_for_xy)
    )
}

#[allow(clippy::too_many_arguments)]
fn descend_impl<'py, T: Element + numpy::Element>(
    py: Python<'py>,
    x: &Bound<'py, PyAny>,
    w: &Bound<'py, PyAny>,
    v: PyReadonlyArray1<'py, f64>,
    scale_factor: Option<f64>,
    steps: usize,
    lr: f64,
    discard: bool,
) -> PyResult<(Bound<'py, PyArray1<f64>>, f64)> {
    let (xa, wa) = (extract2::<T>("X", x)?, extract2::<T>("W", w)?);
    let (xr, wr) = (rows_of("X", &xa)?, rows_of("W", &wa)?);
    let mut v = vector("v", &v)?;
    if v.len() != xr.dim() {
        return Err(GioError::new_err(format!(
            "v: has {} values but X has {} columns",
            v.len(),
            xr.dim()
        )));
    }
    if discard && wr.is_empty() {
        return Err(GioError::new_err(
            "W: needs at least one row with discard_nearest_for_xy=True",
        ));
    }
    let mut host = PyHost::new(None, None, None);
    let (v, scale) = run_detached(py, &mut host, |host| {
        let state = KlState::without_target_term(xr, wr, KlParams::new(1, discard))?;
        let mut work = DescentWork::default();
        let scale = match scale_factor {
            Some(s) => s,
            None => auto_scale_factor(&state, &v, &mut work),
        };
        descend(&state, &mut v, scale, lr, steps, &mut work, &mut || {
            host.poll()
        })?;
        Ok((v, scale))
    })?;
    Ok((PyArray1::from_vec(py, v), scale))
}

/// Gradient descent on v: `steps` steps of v ← v − lr·scale·∇. `scale_factor=None` means the
/// reference's "auto". Returns (v, scale factor used). With steps=0 this is the scale factor.
#[pyfunction]
#[pyo3(signature = (x, w, v, scale_factor, steps, lr, discard_nearest_for_xy))]
#[allow(clippy::too_many_arguments)]
fn gradient_descend<'py>(
    py: Python<'py>,
    x: &Bound<'py, PyAny>,
    w: &Bound<'py, PyAny>,
    v: PyReadonlyArray1<'py, f64>,
    scale_factor: Option<f64>,
    steps: usize,
    lr: f64,
    discard_nearest_for_xy: bool,
) -> PyResult<(Bound<'py, PyArray1<f64>>, f64)> {
    by_dtype!(
        x,
        descend_impl(py, x, w, v, scale_factor, steps, lr, discard_nearest_for_xy)
    )
}

fn gradient_impl<'py, T: Element + numpy::Element>(
    py: Python<'py>,
    x: &Bound<'py, PyAny>,
    w: &Bound<'py, PyAny>,
    v: PyReadonlyArray1<'py, f64>,
    discard: bool,
) -> PyResult<Bound<'py, PyArray1<f64>>> {
    let (xa, wa) = (extract2::<T>("X", x)?, extract2::<T>("W", w)?);
    let (xr, wr) = (rows_of("X", &xa)?, rows_of("W", &wa)?);
    let v = vector("v", &v)?;
    let mut host = PyHost::new(None, None, None);
    let g = run_detached(py, &mut host, |_| kl::kl_gradient(xr, wr, &v, discard))?;
    Ok(PyArray1::from_vec(py, g))
}

/// Closed-form gradient of KL(X ‖ W ∪ {v}) with respect to v.
#[pyfunction]
#[pyo3(signature = (x, w, v, discard_nearest_for_xy))]
fn kl_gradient<'py>(
    py: Python<'py>,
    x: &Bound<'py, PyAny>,
    w: &Bound<'py, PyAny>,
    v: PyReadonlyArray1<'py, f64>,
    discard_nearest_for_xy: bool,
) -> PyResult<Bound<'py, PyArray1<f64>>> {
    by_dtype!(x, gradient_impl(py, x, w, v, discard_nearest_for_xy))
}

#[allow(clippy::too_many_arguments)]
fn select_impl<'py, T: Element + numpy::Element>(
    py: Python<'py>,
    train: &Bound<'py, PyAny>,
    x: &Bound<'py, PyAny>,
    w0: &Bound<'py, PyAny>,
    opts: SelectOptions,
    random: Option<Py<PyAny>>,
    pick: Option<Py<PyAny>>,
    callback: Option<Py<PyAny>>,
) -> PyResult<Bound<'py, PyDict>> {
    let (ta, xa, wa) = (
        extract2::<T>("train", train)?,
        extract2::<T>("X", x)?,
        extract2::<T>("D", w0)?,
    );
    let (tr, xr, wr) = (
        rows_of("train", &ta)?,
        rows_of("X", &xa)?,
        rows_of("D", &wa)?,
    );
    let mut host = PyHost::new(random, pick, callback);
    let out = run_detached(py, &mut host, |host| {
        select::greedy_select(tr, xr, wr, &opts, host)
    })?;
    selection_dict(py, out, xr.dim())
}

/// A core `Selection` as the dict the Python layer reads.
fn selection_dict(
    py: Python<'_>,
    out: select::Selection,
    dim: usize,
) -> PyResult<Bound<'_, PyDict>> {
    let dict = PyDict::new(py);
    let indices: Vec<i64> = out.indices.iter().map(|&i| i as i64).collect();
    dict.set_item("indices", PyArray1::from_vec(py, indices))?;
    dict.set_item("kl_trace", PyArray1::from_vec(py, out.kl_trace))?;
    dict.set_item("kl_start", out.kl_start)?;
    dict.set_item("candidate_kl", PyArray1::from_vec(py, out.candidate_kl))?;
    let iters: Vec<i64> = out.descent_iters.iter().map(|&i| i as i64).collect();
    dict.set_item("descent_iters", PyArray1::from_vec(py, iters))?;
    let n_opts = out.v_opts.len() / dim;
    dict.set_item(
        "v_opts",
        PyArray1::from_vec(py, out.v_opts).reshape([n_opts, dim])?,
    )?;
    dict.set_item("scale_factor", out.scale_factor)?;
    dict.set_item("v", PyArray1::from_vec(py, out.v))?;
    dict.set_item("just_reset", out.just_reset)?;
    dict.set_item("num_resets", out.num_resets)?;
    dict.set_item("increases", out.increases)?;
    dict.set_item("used", PyArray1::from_vec(py, out.used))?;
    dict.set_item("stop_reason", out.stop_reason.name())?;
    Ok(dict)
}

/// The greedy GIO loop. Options are validated in Python first; the core re-checks domains.
#[pyfunction]
#[pyo3(signature = (
    train, x, w0, *, k, max_iter, stop_criterion, min_difference, resets_allowed, max_resets,
    max_data_size, min_kl, max_sequential_increases, random_restart_prob, scale_factor, v_init,
    grad_desc_iter, discard_nearest_for_xy, lr, fixed, record_v_opts, random, pick, callback
))]
#[allow(clippy::too_many_arguments)]
fn greedy_select<'py>(
    py: Python<'py>,
    train: &Bound<'py, PyAny>,
    x: &Bound<'py, PyAny>,
    w0: &Bound<'py, PyAny>,
    k: usize,
    max_iter: usize,
    stop_criterion: &str,
    min_difference: f64,
    resets_allowed: bool,
    max_resets: usize,
    max_data_size: f64,
    min_kl: f64,
    max_sequential_increases: usize,
    random_restart_prob: f64,
    scale_factor: Option<f64>,
    v_init: &str,
    grad_desc_iter: usize,
    discard_nearest_for_xy: bool,
    lr: f64,
    fixed: bool,
    record_v_opts: bool,
    random: Option<Py<PyAny>>,
    pick: Option<Py<PyAny>>,
    callback: Option<Py<PyAny>>,
) -> PyResult<Bound<'py, PyDict>> {
    let semantics = if fixed {
        Semantics::Fixed
    } else {
        Semantics::Reference
    };
    let stop_criterion = match StopCriterion::parse(stop_criterion) {
        Some(c) => c,
        None if !fixed => StopCriterion::Never,
        None => {
            return Err(GioError::new_err(format!(
                "stop_criterion: unknown criterion {stop_criterion:?}; expected one of {:?}",
                StopCriterion::NAMES
            )))
        }
    };
    let v_init = VInit::parse(v_init).ok_or_else(|| {
        GioError::new_err(format!(
            "v_init: unknown value {v_init:?}; expected one of {:?}",
            VInit::NAMES
        ))
    })?;
    let opts = SelectOptions {
        k,
        max_iter,
        stop_criterion,
        min_difference,
        resets_allowed,
        max_resets,
        max_data_size,
        min_kl,
        max_sequential_increases,
        random_restart_prob,
        scale_factor,
        v_init,
        grad_desc_iter,
        discard_nearest_for_xy,
        lr,
        semantics,
        record_v_opts,
    };
    by_dtype!(
        x,
        select_impl(py, train, x, w0, opts, random, pick, callback)
    )
}

fn knn_kl_impl<T: Element + numpy::Element>(
    py: Python<'_>,
    x: &Bound<'_, PyAny>,
    y: &Bound<'_, PyAny>,
    k: usize,
) -> PyResult<f64> {
    let (xa, ya) = (extract2::<T>("x", x)?, extract2::<T>("y", y)?);
    let (xr, yr) = (rows_of("x", &xa)?, rows_of("y", &ya)?);
    let mut host = PyHost::new(None, None, None);
    run_detached(py, &mut host, |_| greedy::knn_kl_divergence(xr, yr, k))
}

/// KL(x ‖ y) by the unaveraged (Wang–Kulkarni–Verdú) k-NN estimator; NaN when y has < k rows.
#[pyfunction]
#[pyo3(signature = (x, y, k))]
fn knn_kl_divergence(
    py: Python<'_>,
    x: &Bound<'_, PyAny>,
    y: &Bound<'_, PyAny>,
    k: usize,
) -> PyResult<f64> {
    by_dtype!(x, knn_kl_impl(py, x, y, k))
}

fn exact_greedy_impl<'py, T: Element + numpy::Element>(
    py: Python<'py>,
    train: &Bound<'py, PyAny>,
    x: &Bound<'py, PyAny>,
    w0: &Bound<'py, PyAny>,
    opts: GreedyOptions,
    callback: Option<Py<PyAny>>,
) -> PyResult<Bound<'py, PyDict>> {
    let (ta, xa, wa) = (
        extract2::<T>("train", train)?,
        extract2::<T>("X", x)?,
        extract2::<T>("D", w0)?,
    );
    let (tr, xr, wr) = (
        rows_of("train", &ta)?,
        rows_of("X", &xa)?,
        rows_of("D", &wa)?,
    );
    let mut host = PyHost::new(None, None, callback);
    let out = run_detached(py, &mut host, |host| {
        greedy::exact_greedy_select(tr, xr, wr, &opts, host)
    })?;
    selection_dict(py, out, xr.dim())
}

/// Exact greedy selection on the unaveraged k-NN estimator (`w0` may have zero rows).
#[pyfunction]
#[pyo3(signature = (
    train, x, w0, *, k, max_iter, stop_criterion, min_difference, max_data_size, min_kl,
    max_sequential_increases, max_table_bytes, callback
))]
#[allow(clippy::too_many_arguments)]
fn exact_greedy_select<'py>(
    py: Python<'py>,
    train: &Bound<'py, PyAny>,
    x: &Bound<'py, PyAny>,
    w0: &Bound<'py, PyAny>,
    k: usize,
    max_iter: usize,
    stop_criterion: &str,
    min_difference: f64,
    max_data_size: f64,
    min_kl: f64,
    max_sequential_increases: usize,
    max_table_bytes: usize,
    callback: Option<Py<PyAny>>,
) -> PyResult<Bound<'py, PyDict>> {
    let stop_criterion = StopCriterion::parse(stop_criterion).ok_or_else(|| {
        GioError::new_err(format!(
            "stop_criterion: unknown criterion {stop_criterion:?}; expected one of {:?}",
            StopCriterion::NAMES
        ))
    })?;
    let opts = GreedyOptions {
        k,
        max_iter,
        stop_criterion,
        min_difference,
        max_data_size,
        min_kl,
        max_sequential_increases,
        max_table_bytes,
    };
    by_dtype!(x, exact_greedy_impl(py, train, x, w0, opts, callback))
}

/// Ctrl-C and an optional per-iteration callback `callback(iteration, inertia)` for K-Means.
struct KMeansHost {
    callback: Option<Py<PyAny>>,
    error: Option<PyErr>,
}

impl KMeansHost {
    fn poll(&mut self, iteration: usize, inertia: f64) -> Result<(), CoreError> {
        let result = Python::attach(|py| -> PyResult<()> {
            py.check_signals()?;
            if let Some(cb) = &self.callback {
                cb.call1(py, (iteration, inertia))?;
            }
            Ok(())
        });
        result.map_err(|err| {
            self.error = Some(err);
            CoreError::Aborted
        })
    }
}

#[allow(clippy::too_many_arguments)]
fn kmeans_impl<'py, T: Element + numpy::Element>(
    py: Python<'py>,
    x: &Bound<'py, PyAny>,
    params: KMeansParams,
    callback: Option<Py<PyAny>>,
) -> PyResult<Bound<'py, PyDict>> {
    let xa = extract2::<T>("X", x)?;
    let xr = rows_of("X", &xa)?;
    let mut host = KMeansHost {
        callback,
        error: None,
    };
    let result = py.detach(|| {
        catch_unwind(AssertUnwindSafe(|| {
            core_kmeans::kmeans(xr, &params, &mut |i, inertia| host.poll(i, inertia))
        }))
    });
    let fit = match result {
        Ok(Ok(fit)) => fit,
        Ok(Err(CoreError::Aborted)) => {
            return Err(host
                .error
                .take()
                .unwrap_or_else(|| gio_error(CoreError::Aborted)))
        }
        Ok(Err(err)) => return Err(gio_error(err)),
        Err(_) => {
            return Err(PyRuntimeError::new_err(
                "gio_rs internal error in kmeans (please report it)",
            ))
        }
    };
    let dim = xr.dim();
    let dict = PyDict::new(py);
    let k = fit.centers.len() / dim;
    dict.set_item(
        "centers",
        PyArray1::from_vec(py, fit.centers).reshape([k, dim])?,
    )?;
    dict.set_item(
        "labels",
        PyArray1::from_vec(py, fit.labels.iter().map(|&l| l as i64).collect::<Vec<_>>()),
    )?;
    dict.set_item("inertia", fit.inertia)?;
    dict.set_item("n_iter", fit.n_iter)?;
    Ok(dict)
}

/// K-Means on X (float32 or float64). `init` is "k-means++", "random" or "centers" (then
/// `centers` holds them, K × d float64).
#[pyfunction]
#[pyo3(signature = (x, *, n_clusters, max_iter, tol, n_init, seed, init, centers, init_sample_size, callback))]
#[allow(clippy::too_many_arguments)]
fn kmeans<'py>(
    py: Python<'py>,
    x: &Bound<'py, PyAny>,
    n_clusters: usize,
    max_iter: usize,
    tol: f64,
    n_init: usize,
    seed: u64,
    init: &str,
    centers: Option<PyReadonlyArray2<'py, f64>>,
    init_sample_size: usize,
    callback: Option<Py<PyAny>>,
) -> PyResult<Bound<'py, PyDict>> {
    let init = match (init, centers) {
        ("k-means++", _) => KMeansInit::KMeansPlusPlus,
        ("random", _) => KMeansInit::Random,
        ("centers", Some(c)) => KMeansInit::Centers(
            c.as_slice()
                .map_err(|e| GioError::new_err(format!("init: {e}")))?
                .to_vec(),
        ),
        (other, _) => return Err(GioError::new_err(format!("init: unknown value {other:?}"))),
    };
    let params = KMeansParams {
        n_clusters,
        max_iter,
        tol,
        n_init,
        seed,
        init,
        init_sample_size,
    };
    by_dtype!(x, kmeans_impl(py, x, params, callback))
}

/// Labels and squared distances of an assignment.
type Assignment<'py> = (Bound<'py, PyArray1<i64>>, Bound<'py, PyArray1<f64>>);

fn assign_impl<'py, T: Element + numpy::Element>(
    py: Python<'py>,
    x: &Bound<'py, PyAny>,
    centers: PyReadonlyArray2<'py, f64>,
) -> PyResult<Assignment<'py>> {
    let xa = extract2::<T>("X", x)?;
    let xr = rows_of("X", &xa)?;
    let cr = rows_of("centers", &centers)?;
    if cr.dim() != xr.dim() {
        return Err(GioError::new_err(format!(
            "centers: have {} columns but X has {}",
            cr.dim(),
            xr.dim()
        )));
    }
    let (labels, dists) = py.detach(|| {
        let norms = crate::distance::row_norms(xr);
        let mut labels = vec![0u32; xr.len()];
        let mut dists = vec![0.0f64; xr.len()];
        core_kmeans::assign(xr, &norms, cr, &mut labels, &mut dists);
        (labels, dists)
    });
    let labels: Vec<i64> = labels.iter().map(|&l| l as i64).collect();
    Ok((
        PyArray1::from_vec(py, labels),
        PyArray1::from_vec(py, dists),
    ))
}

/// Nearest center of every row of X and the squared distance to it.
#[pyfunction]
fn kmeans_assign<'py>(
    py: Python<'py>,
    x: &Bound<'py, PyAny>,
    centers: PyReadonlyArray2<'py, f64>,
) -> PyResult<Assignment<'py>> {
    by_dtype!(x, assign_impl(py, x, centers))
}

/// The SIMD level the kernels dispatched to on this CPU ("avx512", "avx2" or "baseline").
#[pyfunction]
fn simd_level() -> &'static str {
    crate::simd::level_name()
}

#[pymodule]
fn _core(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("GioError", m.py().get_type::<GioError>())?;
    m.add_function(wrap_pyfunction!(kl_divergence, m)?)?;
    m.add_function(wrap_pyfunction!(kl_gradient, m)?)?;
    m.add_function(wrap_pyfunction!(gradient_descend, m)?)?;
    m.add_function(wrap_pyfunction!(greedy_select, m)?)?;
    m.add_function(wrap_pyfunction!(exact_greedy_select, m)?)?;
    m.add_function(wrap_pyfunction!(knn_kl_divergence, m)?)?;
    m.add_function(wrap_pyfunction!(kmeans, m)?)?;
    m.add_function(wrap_pyfunction!(kmeans_assign, m)?)?;
    m.add_function(wrap_pyfunction!(simd_level, m)?)?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
