//! The Python bindings (`gio_rs._core`): the only file that knows about Python. It converts
//! Python values into the core's checked parameter types (the same conversions Python uses for its
//! own options, exported as `check_int`, `check_float`, `check_bool`, `check_finite`), checks array
//! layout and dtype, releases the GIL around core work, runs progress callbacks and Ctrl-C checks
//! between iterations, and maps core errors and panics to Python exceptions. The public API,
//! array-likes and docstrings live in the Python package.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::{Duration, Instant};

use numpy::{
    PyArray1, PyArray2, PyArrayDyn, PyArrayMethods, PyReadonlyArray1, PyReadonlyArray2,
    PyUntypedArrayMethods,
};
use pyo3::exceptions::{PyIndexError, PyRuntimeError, PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyBool, PyDict, PyString, PyType};

use crate::descent::descend_from;
use crate::error::GioError as CoreError;
use crate::kl::{self, KlParams};
use crate::kmeans::{self as core_kmeans, KMeansInit, KMeansParams, ValidKMeansParams};
use crate::params::{above, below, float_problem, unknown, Named};
use crate::rows::{nonfinite_problem, Element, Rows};
use crate::selection::{
    self, LoopHost, Method, SelectParams, Semantics, StopCriterion, ValidSelectParams,
};

pyo3::create_exception!(
    gio_rs,
    GioError,
    PyValueError,
    "Invalid input to gio_rs. The message names the argument and the problem."
);

/// How often a long computation checks for Ctrl-C.
const POLL_INTERVAL: Duration = Duration::from_millis(50);

impl From<CoreError> for PyErr {
    fn from(err: CoreError) -> PyErr {
        match err {
            CoreError::InvalidArgument { .. } => GioError::new_err(err.to_string()),
            CoreError::PoolExhausted => PyIndexError::new_err(err.to_string()),
            CoreError::Aborted => PyRuntimeError::new_err("gio_rs: aborted by the caller"),
        }
    }
}

fn invalid(name: &str, problem: impl std::fmt::Display) -> PyErr {
    GioError::new_err(format!("{name}: {problem}"))
}

// ------------------------------------------------------------------------------ Python values

/// `numbers.Integral`, `numbers.Real` and `numpy.bool_`, imported once.
static INTEGRAL: PyOnceLock<Py<PyType>> = PyOnceLock::new();
static REAL: PyOnceLock<Py<PyType>> = PyOnceLock::new();
static NUMPY_BOOL: PyOnceLock<Py<PyType>> = PyOnceLock::new();

fn is_bool(value: &Bound<'_, PyAny>) -> PyResult<bool> {
    let py = value.py();
    Ok(value.is_instance_of::<PyBool>()
        || value.is_instance(NUMPY_BOOL.import(py, "numpy", "bool_")?)?)
}

fn expected(name: &str, what: &str, value: &Bound<'_, PyAny>) -> PyErr {
    let got = value
        .get_type()
        .name()
        .map_or_else(|_| "?".into(), |n| n.to_string());
    PyTypeError::new_err(format!("{name}: expected {what}, got {got}"))
}

/// An integer (not a bool) in [minimum, maximum].
#[pyfunction]
#[pyo3(signature = (name, value, *, minimum, maximum = i64::MAX))]
fn check_int(name: &str, value: &Bound<'_, PyAny>, minimum: i64, maximum: i64) -> PyResult<i64> {
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
fn number(name: &str, value: &Bound<'_, PyAny>) -> PyResult<f64> {
    let py = value.py();
    if is_bool(value)? || !value.is_instance(REAL.import(py, "numbers", "Real")?)? {
        return Err(expected(name, "a number", value));
    }
    value.extract::<f64>()
}

/// A finite real number (not a bool) within the bounds given.
#[pyfunction]
#[pyo3(signature = (name, value, *, minimum = None, maximum = None))]
fn check_float(
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
fn check_bool(name: &str, value: &Bound<'_, PyAny>) -> PyResult<bool> {
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
struct Options<'py> {
    what: &'static str,
    given: Option<Bound<'py, PyDict>>,
    taken: Vec<&'static str>,
}

impl<'py> Options<'py> {
    fn new(what: &'static str, given: Option<&Bound<'py, PyDict>>) -> Self {
        Options {
            what,
            given: given.cloned(),
            taken: Vec::new(),
        }
    }

    fn take<V>(
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
    fn count(&mut self, name: &'static str, minimum: i64, default: usize) -> PyResult<usize> {
        self.take(name, default, |v| {
            Ok(check_int(name, v, minimum, i64::MAX)? as usize)
        })
    }

    /// A float; the core's `check` decides which values it may take.
    fn number(&mut self, name: &'static str, default: f64) -> PyResult<f64> {
        self.take(name, default, |v| number(name, v))
    }

    fn flag(&mut self, name: &'static str, default: bool) -> PyResult<bool> {
        self.take(name, default, |v| check_bool(name, v))
    }

    /// One of `C::NAMES`.
    fn choice<C: Named>(&mut self, name: &'static str, default: C) -> PyResult<C> {
        self.take(name, default, |v| {
            let text = v.extract::<String>().ok();
            match text.as_deref().and_then(C::parse) {
                Some(c) => Ok(c),
                None => Err(unknown(name, "value", &v.repr()?.to_string(), C::NAMES).into()),
            }
        })
    }

    fn finish(self) -> PyResult<()> {
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

// ----------------------------------------------------------------------------- parameters

/// The options of a selection run, checked (`gio_rs.select`'s and `GIOKL.fit`'s keyword names;
/// `semantics` is "fixed" or "reference"). Options not given take the core's defaults; the
/// attributes are the checked values Python reads.
#[pyclass(frozen, module = "gio_rs._core", name = "SelectParams")]
struct PySelectParams {
    #[pyo3(get)]
    method: &'static str,
    #[pyo3(get)]
    max_iter: usize,
    #[pyo3(get)]
    discard_nearest_for_xy: bool,
    #[pyo3(get)]
    record_v_opts: bool,
    core: ValidSelectParams,
}

#[pymethods]
impl PySelectParams {
    #[new]
    #[pyo3(signature = (**options))]
    fn new(options: Option<&Bound<'_, PyDict>>) -> PyResult<Self> {
        let (mut o, d) = (
            Options::new("SelectParams", options),
            SelectParams::default(),
        );
        let semantics = o.choice("semantics", d.semantics)?;
        let core = SelectParams {
            method: o.choice("method", d.method)?,
            semantics,
            k: o.count("k", 1, d.k)?,
            max_iter: o.count("max_iter", 0, d.max_iter)?,
            stop_criterion: o.take("stop_criterion", d.stop_criterion, |v| {
                stop_criterion(v, semantics)
            })?,
            min_difference: o.number("min_difference", d.min_difference)?,
            max_data_size: o.number("max_data_size", d.max_data_size)?,
            min_kl: o.number("min_kl", d.min_kl)?,
            max_sequential_increases: o.count(
                "max_sequential_increases",
                0,
                d.max_sequential_increases,
            )?,
            resets_allowed: o.flag("resets_allowed", d.resets_allowed)?,
            max_resets: o.count("max_resets", 0, d.max_resets)?,
            random_restart_prob: o.number("random_restart_prob", d.random_restart_prob)?,
            scale_factor: o.take("scale_factor", d.scale_factor, scale_factor)?,
            v_init: o.choice("v_init", d.v_init)?,
            grad_desc_iter: o.count("grad_desc_iter", 0, d.grad_desc_iter)?,
            discard_nearest_for_xy: o.flag("discard_nearest_for_xy", d.discard_nearest_for_xy)?,
            lr: o.number("lr", d.lr)?,
            record_v_opts: o.flag("record_v_opts", d.record_v_opts)?,
            greedy_max_bytes: o.count("greedy_max_bytes", 0, d.greedy_max_bytes)?,
        };
        o.finish()?;
        let core = core.check()?;
        Ok(PySelectParams {
            method: core.method.name(),
            max_iter: core.max_iter,
            discard_nearest_for_xy: core.discard_nearest_for_xy,
            record_v_opts: core.record_v_opts,
            core,
        })
    }
}

/// A criterion's name (a string: any other type is a TypeError, as it always was).
fn stop_criterion(value: &Bound<'_, PyAny>, semantics: Semantics) -> PyResult<StopCriterion> {
    let name = value
        .cast::<PyString>()
        .map_err(|_| expected("stop_criterion", "a string", value))?;
    StopCriterion::from_name(&name.to_cow()?, semantics).ok_or_else(|| {
        let got = value.repr().map_or_else(|_| "?".into(), |r| r.to_string());
        unknown("stop_criterion", "criterion", &got, StopCriterion::NAMES).into()
    })
}

/// "auto" (None) or a number.
fn scale_factor(value: &Bound<'_, PyAny>) -> PyResult<Option<f64>> {
    match value.cast::<PyString>() {
        Ok(s) if s.to_cow()? == "auto" => Ok(None),
        Ok(_) => Err(invalid(
            "scale_factor",
            format!("expected 'auto' or a number, got {}", value.repr()?),
        )),
        Err(_) => Ok(Some(number("scale_factor", value)?)),
    }
}

/// The options of a K-Means fit, checked (`gio_rs.KMeans`'s names; `random_state` must be an
/// integer here, `init` "k-means++", "random" or a C-contiguous float64 array of K rows).
#[pyclass(frozen, module = "gio_rs._core", name = "KMeansParams")]
struct PyKMeansParams {
    #[pyo3(get)]
    n_clusters: usize,
    #[pyo3(get)]
    max_iter: usize,
    #[pyo3(get)]
    init_sample_size: usize,
    core: ValidKMeansParams,
}

#[pymethods]
impl PyKMeansParams {
    #[new]
    #[pyo3(signature = (**options))]
    fn new(options: Option<&Bound<'_, PyDict>>) -> PyResult<Self> {
        let mut o = Options::new("KMeansParams", options);
        let seed = |v: &Bound<'_, PyAny>| Ok(check_int("random_state", v, 0, i64::MAX)? as u64);
        let core = KMeansParams {
            n_clusters: o.count("n_clusters", 1, 8)?,
            n_init: o.count("n_init", 1, 1)?,
            max_iter: o.count("max_iter", 1, 300)?,
            tol: o.number("tol", 1e-4)?,
            seed: o.take("random_state", 0, seed)?,
            // None: automatic (0).
            init_sample_size: o.take("init_sample_size", 0, |v| match v.is_none() {
                true => Ok(0),
                false => Ok(check_int("init_sample_size", v, 1, i64::MAX)? as usize),
            })?,
            init: o.take("init", KMeansInit::KMeansPlusPlus, kmeans_init)?,
        };
        o.finish()?;
        let core = core.check()?;
        Ok(PyKMeansParams {
            n_clusters: core.n_clusters,
            max_iter: core.max_iter,
            init_sample_size: core.init_sample_size,
            core,
        })
    }
}

fn kmeans_init(value: &Bound<'_, PyAny>) -> PyResult<KMeansInit> {
    if let Ok(name) = value.cast::<PyString>() {
        return match name.to_cow()?.as_ref() {
            "k-means++" => Ok(KMeansInit::KMeansPlusPlus),
            "random" => Ok(KMeansInit::Random),
            _ => Err(invalid(
                "init",
                format!(
                    "expected '{}', '{}' or an array, got {}",
                    KMeansInit::NAMES[0],
                    KMeansInit::NAMES[1],
                    value.repr()?
                ),
            )),
        };
    }
    let centers = extract2::<f64>("init", value)?;
    let rows = rows_of("init", &centers)?;
    Ok(KMeansInit::Centers {
        values: rows.data().to_vec(),
        dim: rows.dim(),
    })
}

// ----------------------------------------------------------------------------- results

/// What a selection loop produced (the core's `Selection`).
#[pyclass(frozen, get_all, module = "gio_rs._core")]
struct SelectionResult {
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
    fn new(py: Python<'_>, out: selection::Selection, dim: usize) -> PyResult<Self> {
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
struct KMeansFit {
    centers: Py<PyArray2<f64>>,
    labels: Py<PyArray1<i64>>,
    inertia: f64,
    n_iter: usize,
}

// ---------------------------------------------------------------------------- the host

/// Python's side of long core work: random draws (`random`, `pick`), progress (`callback`: an
/// object with `start` and `candidate` methods for the selection loops, a callable
/// `callback(iteration, inertia)` for K-Means) and Ctrl-C.
#[derive(Default)]
struct PyHost {
    random: Option<Py<PyAny>>,
    pick: Option<Py<PyAny>>,
    callback: Option<Py<PyAny>>,
    last_poll: Option<Instant>,
    /// The Python exception that stopped the work, raised again once the GIL is back.
    error: Option<PyErr>,
}

impl PyHost {
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

    /// K-Means' report after each Lloyd iteration.
    fn iteration(&mut self, iteration: usize, inertia: f64) -> Result<(), CoreError> {
        self.with_python(|py, me| {
            py.check_signals()?;
            if let Some(cb) = &me.callback {
                cb.call1(py, (iteration, inertia))?;
            }
            Ok(())
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

    fn on_candidate(&mut self, e: &selection::CandidateEvent) -> Result<(), CoreError> {
        self.last_poll = Some(Instant::now());
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
        if self.last_poll.is_some_and(|t| t.elapsed() < POLL_INTERVAL) {
            return Ok(());
        }
        self.last_poll = Some(Instant::now());
        self.with_python(|py, _| py.check_signals())
    }
}

/// Runs core work without the GIL, for every long call: a Python exception from the host comes
/// back as itself, a core error as its Python exception, a panic as a RuntimeError (never an
/// abort).
fn run_detached<R: Send>(
    py: Python<'_>,
    mut host: PyHost,
    f: impl FnOnce(&mut PyHost) -> Result<R, CoreError> + Send,
) -> PyResult<R> {
    host.last_poll = Some(Instant::now());
    let result = py.detach(|| catch_unwind(AssertUnwindSafe(|| f(&mut host))));
    match result {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(CoreError::Aborted)) => Err(host
            .error
            .take()
            .unwrap_or_else(|| CoreError::Aborted.into())),
        Ok(Err(err)) => Err(err.into()),
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

// ----------------------------------------------------------------------------- arrays

/// A 2-D array of the working dtype.
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

/// A C-contiguous 2-D array as rows. Only the layout is checked: the Python layer checked the
/// values when it accepted the array (`check_finite`), and the core copes with any value.
fn rows_of<'a, T: Element + numpy::Element>(
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
fn with_rows<'py, T, const N: usize, R>(
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

fn vector(name: &'static str, v: &PyReadonlyArray1<'_, f64>) -> PyResult<Vec<f64>> {
    Ok(v.as_slice().map_err(|e| invalid(name, e))?.to_vec())
}

/// Runs `$body` with `$t` the target's float type: float32 and float64 stay as they are.
macro_rules! by_dtype {
    ($x:expr, $t:ident => $body:expr) => {{
        if $x.extract::<PyReadonlyArray2<'_, f64>>().is_ok() {
            type $t = f64;
            $body
        } else if $x.extract::<PyReadonlyArray2<'_, f32>>().is_ok() {
            type $t = f32;
            $body
        } else {
            Err(PyTypeError::new_err(
                "X: expected a 2-D float32 or float64 array",
            ))
        }
    }};
}

// ------------------------------------------------------------------------------ estimator

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

// ---------------------------------------------------------------------- selection, K-Means

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
    let host = PyHost {
        random,
        pick,
        callback,
        ..PyHost::default()
    };
    by_dtype!(x, T => with_rows::<T, 3, _>(arrays, |[train, x, w0]| {
        let out = run_detached(py, host, |h| selection::select(train, x, w0, params, h))?;
        SelectionResult::new(py, out, x.dim())
    }))
}

/// K-Means on X (float32 or float64); `callback(iteration, inertia)` after every Lloyd iteration.
#[pyfunction]
#[pyo3(signature = (x, params, callback = None))]
fn kmeans(
    py: Python<'_>,
    x: &Bound<'_, PyAny>,
    params: &PyKMeansParams,
    callback: Option<Py<PyAny>>,
) -> PyResult<KMeansFit> {
    let (params, host) = (
        &params.core,
        PyHost {
            callback,
            ..PyHost::default()
        },
    );
    let fit = by_dtype!(x, T => with_rows::<T, 1, _>([("X", x)], |[x]| {
        run_detached(py, host, |h| core_kmeans::kmeans(x, params, &mut |i, e| h.iteration(i, e)))
    }))?;
    let (k, dim) = (params.n_clusters, fit.centers.len() / params.n_clusters);
    Ok(KMeansFit {
        centers: PyArray1::from_vec(py, fit.centers)
            .reshape([k, dim])?
            .unbind(),
        labels: int_array(py, fit.labels).unbind(),
        inertia: fit.inertia,
        n_iter: fit.n_iter,
    })
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

/// Indices or labels as an int64 array.
fn int_array<I: TryInto<i64>>(py: Python<'_>, values: Vec<I>) -> Bound<'_, PyArray1<i64>> {
    let ints = values.into_iter().map(|v| v.try_into().unwrap_or(i64::MAX));
    PyArray1::from_vec(py, ints.collect())
}

// ------------------------------------------------------------------------ working sets

/// Bytes a selection allocates besides its inputs (`selection::working_set`).
#[pyfunction]
#[pyo3(signature = (n_train, n_target, dim, *, n_start, max_iter, greedy = false, itemsize = 8))]
fn select_bytes(
    n_train: usize,
    n_target: usize,
    dim: usize,
    n_start: usize,
    max_iter: usize,
    greedy: bool,
    itemsize: usize,
) -> usize {
    let method = if greedy {
        Method::Greedy
    } else {
        Method::Gradient
    };
    selection::working_set(n_train, n_target, dim, n_start, max_iter, method, itemsize)
}

/// Bytes a K-Means fit allocates besides its input (`kmeans::fit_working_set`).
#[pyfunction]
#[pyo3(signature = (n_rows, dim, n_clusters, itemsize, sample_size = 0))]
fn kmeans_bytes(
    n_rows: usize,
    dim: usize,
    n_clusters: usize,
    itemsize: usize,
    sample_size: usize,
) -> usize {
    core_kmeans::fit_working_set(n_rows, dim, n_clusters, itemsize, sample_size)
}

/// Bytes an assignment to fitted centers allocates besides its input.
#[pyfunction]
fn assign_bytes(n_rows: usize, dim: usize, n_clusters: usize) -> usize {
    core_kmeans::predict_working_set(n_rows, dim, n_clusters)
}

/// The SIMD level the kernels dispatched to on this CPU: "avx512" or "avx2" (x86-64 with FMA),
/// "neon" (aarch64) or "scalar" (elsewhere, or with GIO_RS_NO_SIMD=1; GIO_RS_NO_AVX512=1 skips
/// AVX-512). Chosen once per process.
#[pyfunction]
fn simd_level() -> &'static str {
    crate::simd::level_name()
}

#[pymodule]
fn _core(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("GioError", m.py().get_type::<GioError>())?;
    m.add_class::<PySelectParams>()?;
    m.add_class::<PyKMeansParams>()?;
    m.add_class::<SelectionResult>()?;
    m.add_class::<KMeansFit>()?;
    m.add_function(wrap_pyfunction!(check_int, m)?)?;
    m.add_function(wrap_pyfunction!(check_float, m)?)?;
    m.add_function(wrap_pyfunction!(check_bool, m)?)?;
    m.add_function(wrap_pyfunction!(check_finite, m)?)?;
    m.add_function(wrap_pyfunction!(kl_divergence, m)?)?;
    m.add_function(wrap_pyfunction!(kl_gradient, m)?)?;
    m.add_function(wrap_pyfunction!(gradient_descend, m)?)?;
    m.add_function(wrap_pyfunction!(knn_kl_divergence, m)?)?;
    m.add_function(wrap_pyfunction!(select, m)?)?;
    m.add_function(wrap_pyfunction!(kmeans, m)?)?;
    m.add_function(wrap_pyfunction!(kmeans_assign, m)?)?;
    m.add_function(wrap_pyfunction!(select_bytes, m)?)?;
    m.add_function(wrap_pyfunction!(kmeans_bytes, m)?)?;
    m.add_function(wrap_pyfunction!(assign_bytes, m)?)?;
    m.add_function(wrap_pyfunction!(simd_level, m)?)?;
    crate::python_ratio::register(m)?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
