//! Bindings of the density-ratio core (`src/ratio/`): arrays borrowed by `arrays`, work run
//! without the GIL by `host::run_plain`, results as NumPy arrays.

use std::sync::Mutex;

use numpy::{PyArray1, PyArray2, PyArrayMethods, PyReadonlyArray1, PyReadonlyArray2};
use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;

use super::arrays::{extract2, rows_of};
use super::host::run_plain;
use crate::error::GioError as CoreError;
use crate::ratio::calibrate::calibrate;
use crate::ratio::folds::{target_folds, FoldedMoments};
use crate::ratio::gaussian::{fit_gaussian, GaussianFit, ALPHA_GRID};
use crate::ratio::knn::{knn_target_counts, KnnReference};
use crate::ratio::logistic::{fit_logistic, LogisticOptions};
use crate::ratio::moments::MomentsAccumulator;
use crate::ratio::score::{gumbel_keys, linear_scores, uniform_at, TopB};

/// Runs `$body` with `$t` the float type of `$x` (float32 or float64).
macro_rules! by_dtype {
    ($name:expr, $x:expr, $t:ident => $body:expr) => {{
        if $x.extract::<PyReadonlyArray2<'_, f64>>().is_ok() {
            type $t = f64;
            $body
        } else if $x.extract::<PyReadonlyArray2<'_, f32>>().is_ok() {
            type $t = f32;
            $body
        } else {
            Err(PyTypeError::new_err(format!(
                "{}: expected a 2-D float32 or float64 array",
                $name
            )))
        }
    }};
}

fn vec1(name: &'static str, v: &PyReadonlyArray1<'_, f64>) -> PyResult<Vec<f64>> {
    Ok(v.as_slice()
        .map_err(|e| PyErr::from(CoreError::invalid(name, e.to_string())))?
        .to_vec())
}

// ------------------------------------------------------------------------------ moments

/// Streaming float64 mean and covariance (divisor count) of rows, block-deterministic.
#[pyclass(module = "gio_rs._core", name = "MomentsAccumulator")]
pub struct PyMoments(Mutex<MomentsAccumulator>);

impl PyMoments {
    fn inner(&self) -> std::sync::MutexGuard<'_, MomentsAccumulator> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[pymethods]
impl PyMoments {
    #[new]
    #[pyo3(signature = (dim, shift = None))]
    fn new(dim: usize, shift: Option<PyReadonlyArray1<'_, f64>>) -> PyResult<Self> {
        let acc = match shift {
            Some(s) => {
                let s = vec1("shift", &s)?;
                if s.len() != dim {
                    return Err(
                        CoreError::invalid("shift", format!("must hold {dim} values")).into(),
                    );
                }
                MomentsAccumulator::with_shift(&s)?
            }
            None => MomentsAccumulator::new(dim)?,
        };
        Ok(PyMoments(Mutex::new(acc)))
    }

    /// Adds the next rows (a 2-D float32 or float64 array).
    fn add(&self, py: Python<'_>, rows: &Bound<'_, PyAny>) -> PyResult<()> {
        by_dtype!("rows", rows, T => {
            let view = extract2::<T>("rows", rows)?;
            let rows = rows_of("rows", &view)?;
            let mut guard = self.inner();
            let acc: &mut MomentsAccumulator = &mut guard;
            run_plain(py, || acc.add(rows))
        })
    }

    /// Folds in an accumulator over the rows right after this one's.
    fn merge(&self, other: &PyMoments) -> PyResult<()> {
        if std::ptr::eq(self, other) {
            return Err(CoreError::invalid("other", "must be another accumulator").into());
        }
        let other = other.inner().clone();
        Ok(self.inner().merge(&other)?)
    }

    #[getter]
    fn count(&self) -> usize {
        self.inner().count()
    }

    /// (count, mean, covariance) of every row added.
    #[allow(clippy::type_complexity)]
    fn finish<'py>(
        &self,
        py: Python<'py>,
    ) -> PyResult<(usize, Bound<'py, PyArray1<f64>>, Bound<'py, PyArray2<f64>>)> {
        let acc = self.inner().clone();
        let m = run_plain(py, || acc.finish())?;
        let d = m.mean.len();
        let cov = PyArray1::from_vec(py, m.covariance).reshape([d, d])?;
        Ok((m.count, PyArray1::from_vec(py, m.mean), cov))
    }
}

/// Pool moments per cross-validation fold (fold of row r: (r // 256) % folds), all about one
/// shift, from global row `first_row` on.
#[pyclass(module = "gio_rs._core", name = "FoldedMoments")]
pub struct PyFoldedMoments(Mutex<FoldedMoments>);

impl PyFoldedMoments {
    fn inner(&self) -> std::sync::MutexGuard<'_, FoldedMoments> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[pymethods]
impl PyFoldedMoments {
    #[new]
    #[pyo3(signature = (shift, folds = 5, first_row = 0))]
    fn new(shift: PyReadonlyArray1<'_, f64>, folds: usize, first_row: usize) -> PyResult<Self> {
        let shift = vec1("shift", &shift)?;
        let inner = FoldedMoments::starting_at(&shift, folds, first_row)?;
        Ok(PyFoldedMoments(Mutex::new(inner)))
    }

    /// Adds the next rows (a 2-D float32 or float64 array).
    fn add(&self, py: Python<'_>, rows: &Bound<'_, PyAny>) -> PyResult<()> {
        by_dtype!("rows", rows, T => {
            let view = extract2::<T>("rows", rows)?;
            let rows = rows_of("rows", &view)?;
            let mut guard = self.inner();
            let acc: &mut FoldedMoments = &mut guard;
            run_plain(py, || acc.add(rows))
        })
    }

    /// Folds in the moments of the rows right after this one's.
    fn merge(&self, other: &PyFoldedMoments) -> PyResult<()> {
        if std::ptr::eq(self, other) {
            return Err(CoreError::invalid("other", "must be another FoldedMoments").into());
        }
        let other = other.inner().clone();
        Ok(self.inner().merge(&other)?)
    }

    #[getter]
    fn count(&self) -> usize {
        self.inner().count()
    }

    #[getter]
    fn next_row(&self) -> usize {
        self.inner().next_row()
    }

    #[getter]
    fn folds(&self) -> usize {
        self.inner().n_folds()
    }

    /// (count, mean, covariance) of every fold but `left_out` (None: every row).
    #[pyo3(signature = (left_out = None))]
    #[allow(clippy::type_complexity)]
    fn finish<'py>(
        &self,
        py: Python<'py>,
        left_out: Option<usize>,
    ) -> PyResult<(usize, Bound<'py, PyArray1<f64>>, Bound<'py, PyArray2<f64>>)> {
        let folded = self.inner().clone();
        if let Some(f) = left_out {
            if f >= folded.n_folds() {
                let msg = format!("must be a fold in 0..{}, got {f}", folded.n_folds());
                return Err(CoreError::invalid("left_out", msg).into());
            }
        }
        let m = run_plain(py, || folded.combined(left_out)?.finish())?;
        let d = m.mean.len();
        let cov = PyArray1::from_vec(py, m.covariance).reshape([d, d])?;
        Ok((m.count, PyArray1::from_vec(py, m.mean), cov))
    }
}

/// U in (0, 1) of rows first_row..first_row + count: the pure function of (seed, row) the
/// Gumbel keys use (the pool sample keeps the rows with the smallest U of seed + 2).
#[pyfunction]
fn ratio_uniforms<'py>(
    py: Python<'py>,
    seed: u64,
    first_row: u64,
    count: usize,
) -> Bound<'py, PyArray1<f64>> {
    let u = (0..count as u64)
        .map(|i| uniform_at(seed, first_row + i))
        .collect();
    PyArray1::from_vec(py, u)
}

/// The cross-validation fold of each of `n` target rows (a seeded permutation cut round robin).
#[pyfunction]
fn ratio_target_folds(
    py: Python<'_>,
    n: usize,
    folds: usize,
    seed: u64,
) -> PyResult<Bound<'_, PyArray1<i64>>> {
    crate::params::at_least("folds", folds, 1)?;
    let ids = target_folds(n, folds, seed);
    Ok(PyArray1::from_vec(
        py,
        ids.into_iter().map(|f| f as i64).collect(),
    ))
}

// ------------------------------------------------------------------------------ estimators

/// The Gaussian closed-form estimator fitted with its cross-validated ridge.
#[pyclass(frozen, get_all, module = "gio_rs._core")]
pub struct GaussianRatioFit {
    w: Py<PyArray1<f64>>,
    bias: f64,
    alpha: f64,
    ridge: f64,
    calibration_scale: f64,
    calibration_offset: f64,
    gain: f64,
    /// (alpha, scale, offset, gain) of every α tried.
    cv: Vec<(f64, f64, f64, f64)>,
    pool_mean: Py<PyArray1<f64>>,
    target_mean: Py<PyArray1<f64>>,
    pool_rows: usize,
}

fn gaussian_fit_to_py(py: Python<'_>, fit: GaussianFit) -> GaussianRatioFit {
    GaussianRatioFit {
        w: PyArray1::from_vec(py, fit.direction.w).unbind(),
        bias: fit.direction.bias,
        alpha: fit.alpha,
        ridge: fit.ridge,
        calibration_scale: fit.calibration.scale,
        calibration_offset: fit.calibration.offset,
        gain: fit.calibration.gain,
        cv: fit
            .cv
            .iter()
            .map(|(a, c)| (*a, c.scale, c.offset, c.gain))
            .collect(),
        pool_mean: PyArray1::from_vec(py, fit.pool.mean).unbind(),
        target_mean: PyArray1::from_vec(py, fit.target_mean).unbind(),
        pool_rows: fit.pool.count,
    }
}

/// Fits w = (S_p + λI)⁻¹(μ_t − μ_p), λ = α·tr(S_p)/d with α from `alphas` by cross-validation.
#[pyfunction]
#[pyo3(signature = (pool, target, *, alphas = None, folds = 5, seed = 0))]
fn ratio_fit_gaussian(
    py: Python<'_>,
    pool: &Bound<'_, PyAny>,
    target: &Bound<'_, PyAny>,
    alphas: Option<Vec<f64>>,
    folds: usize,
    seed: u64,
) -> PyResult<GaussianRatioFit> {
    let alphas = alphas.unwrap_or_else(|| ALPHA_GRID.to_vec());
    if alphas.is_empty() || alphas.iter().any(|a| !(a.is_finite() && *a > 0.0)) {
        return Err(CoreError::invalid("alphas", "must be finite values > 0").into());
    }
    crate::params::at_least("folds", folds, 2)?;
    let fit = by_dtype!("pool", pool, T => {
        let (p, t) = (extract2::<T>("pool", pool)?, extract2::<T>("target", target)?);
        let (p, t) = (rows_of("pool", &p)?, rows_of("target", &t)?);
        run_plain(py, || fit_gaussian(p, t, &alphas, folds, seed))
    })?;
    Ok(gaussian_fit_to_py(py, fit))
}

/// w·x + bias for every row, in float64.
#[pyfunction]
fn ratio_scores<'py>(
    py: Python<'py>,
    rows: &Bound<'py, PyAny>,
    w: PyReadonlyArray1<'py, f64>,
    bias: f64,
) -> PyResult<Bound<'py, PyArray1<f64>>> {
    let w = vec1("w", &w)?;
    let scores = by_dtype!("rows", rows, T => {
        let view = extract2::<T>("rows", rows)?;
        let rows = rows_of("rows", &view)?;
        if rows.dim() != w.len() {
            return Err(CoreError::invalid("w", format!("must hold {} values", rows.dim())).into());
        }
        run_plain(py, || Ok(linear_scores(rows, &w, bias)))
    })?;
    Ok(PyArray1::from_vec(py, scores))
}

/// log r_i + Gumbel noise, a pure function of (seed, first_row + i).
#[pyfunction]
#[pyo3(signature = (log_ratio, seed, first_row = 0))]
fn ratio_gumbel_keys<'py>(
    py: Python<'py>,
    log_ratio: PyReadonlyArray1<'py, f64>,
    seed: u64,
    first_row: usize,
) -> PyResult<Bound<'py, PyArray1<f64>>> {
    let log_ratio = vec1("log_ratio", &log_ratio)?;
    Ok(PyArray1::from_vec(
        py,
        gumbel_keys(&log_ratio, seed, first_row),
    ))
}

/// The `capacity` largest keys with their global rows, ties to the lower row.
#[pyclass(module = "gio_rs._core", name = "TopB")]
pub struct PyTopB(Mutex<TopB>);

#[pymethods]
impl PyTopB {
    #[new]
    fn new(capacity: usize) -> PyResult<Self> {
        crate::params::at_least("capacity", capacity, 1)?;
        Ok(PyTopB(Mutex::new(TopB::new(capacity))))
    }

    #[pyo3(signature = (keys, first_row = 0))]
    fn push(&self, keys: PyReadonlyArray1<'_, f64>, first_row: usize) -> PyResult<()> {
        let keys = vec1("keys", &keys)?;
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(&keys, first_row);
        Ok(())
    }

    fn merge(&self, other: &PyTopB) -> PyResult<()> {
        if std::ptr::eq(self, other) {
            return Err(CoreError::invalid("other", "must be another TopB").into());
        }
        let other = other.0.lock().unwrap_or_else(|p| p.into_inner()).clone();
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .merge(&other);
        Ok(())
    }

    fn __len__(&self) -> usize {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).len()
    }

    /// (rows as int64, keys), best first.
    fn finish<'py>(
        &self,
        py: Python<'py>,
    ) -> (Bound<'py, PyArray1<i64>>, Bound<'py, PyArray1<f64>>) {
        let top = self.0.lock().unwrap_or_else(|p| p.into_inner()).clone();
        let (rows, keys) = top.finish();
        let rows: Vec<i64> = rows.into_iter().map(|r| r as i64).collect();
        (PyArray1::from_vec(py, rows), PyArray1::from_vec(py, keys))
    }
}

/// Target rows among each query's k nearest rows of target ∪ background.
#[pyfunction]
#[pyo3(signature = (queries, target, background, k, self_index = None))]
fn ratio_knn_counts<'py>(
    py: Python<'py>,
    queries: &Bound<'py, PyAny>,
    target: &Bound<'py, PyAny>,
    background: &Bound<'py, PyAny>,
    k: usize,
    self_index: Option<PyReadonlyArray1<'py, i64>>,
) -> PyResult<Bound<'py, PyArray1<i64>>> {
    let own = match &self_index {
        Some(a) => Some(
            a.as_slice()
                .map_err(|e| PyErr::from(CoreError::invalid("self_index", e.to_string())))?,
        ),
        None => None,
    };
    let counts = by_dtype!("queries", queries, T => {
        let q = extract2::<T>("queries", queries)?;
        let (t, b) = (extract2::<T>("target", target)?, extract2::<T>("background", background)?);
        let reference = KnnReference {
            target: rows_of("target", &t)?,
            background: rows_of("background", &b)?,
        };
        let q = rows_of("queries", &q)?;
        run_plain(py, || knn_target_counts(q, &reference, k, own))
    })?;
    Ok(PyArray1::from_vec(
        py,
        counts.into_iter().map(i64::from).collect(),
    ))
}

/// L2 logistic regression positives vs negatives: (w, bias, iterations, converged, loss).
#[pyfunction]
#[pyo3(signature = (positives, negatives, *, l2 = 1e-2, sample_weight = None, max_iter = 50, tolerance = 1e-10))]
#[allow(clippy::type_complexity)]
fn ratio_fit_logistic<'py>(
    py: Python<'py>,
    positives: &Bound<'py, PyAny>,
    negatives: &Bound<'py, PyAny>,
    l2: f64,
    sample_weight: Option<PyReadonlyArray1<'py, f64>>,
    max_iter: usize,
    tolerance: f64,
) -> PyResult<(Bound<'py, PyArray1<f64>>, f64, usize, bool, f64)> {
    let weights = sample_weight
        .as_ref()
        .map(|w| vec1("sample_weight", w))
        .transpose()?;
    crate::params::finite("tolerance", tolerance, Some(0.0), None)?;
    let options = LogisticOptions {
        l2,
        max_iter,
        tolerance,
    };
    let fit = by_dtype!("positives", positives, T => {
        let (p, n) = (extract2::<T>("positives", positives)?, extract2::<T>("negatives", negatives)?);
        let (p, n) = (rows_of("positives", &p)?, rows_of("negatives", &n)?);
        run_plain(py, || fit_logistic(p, n, weights.as_deref(), options))
    })?;
    Ok((
        PyArray1::from_vec(py, fit.w),
        fit.bias,
        fit.iterations,
        fit.converged,
        fit.loss,
    ))
}

/// The class-balanced 1-D logistic calibration: (scale, offset, gain).
#[pyfunction]
fn ratio_calibrate(
    target_scores: PyReadonlyArray1<'_, f64>,
    pool_scores: PyReadonlyArray1<'_, f64>,
) -> PyResult<(f64, f64, f64)> {
    let c = calibrate(
        &vec1("target_scores", &target_scores)?,
        &vec1("pool_scores", &pool_scores)?,
    )?;
    Ok((c.scale, c.offset, c.gain))
}

/// Registers the ratio bindings into the extension module.
pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyMoments>()?;
    m.add_class::<PyTopB>()?;
    m.add_class::<PyFoldedMoments>()?;
    m.add_function(wrap_pyfunction!(ratio_uniforms, m)?)?;
    m.add_function(wrap_pyfunction!(ratio_target_folds, m)?)?;
    m.add_class::<GaussianRatioFit>()?;
    m.add_function(wrap_pyfunction!(ratio_fit_gaussian, m)?)?;
    m.add_function(wrap_pyfunction!(ratio_scores, m)?)?;
    m.add_function(wrap_pyfunction!(ratio_gumbel_keys, m)?)?;
    m.add_function(wrap_pyfunction!(ratio_knn_counts, m)?)?;
    m.add_function(wrap_pyfunction!(ratio_fit_logistic, m)?)?;
    m.add_function(wrap_pyfunction!(ratio_calibrate, m)?)?;
    Ok(())
}
