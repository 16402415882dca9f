//! The parameter classes: `SelectParams` and `KMeansParams`, checked into the core's valid
//! parameter types when constructed.

use pyo3::prelude::*;
use pyo3::types::{PyDict, PyString};

use super::arrays::{extract2, rows_of};
use super::convert::{check_int, expected, number, Options};
use super::errors::invalid;
use crate::kmeans::{KMeansInit, KMeansParams, ValidKMeansParams};
use crate::params::{unknown, Named};
use crate::selection::{SelectParams, Semantics, StopCriterion, ValidSelectParams};

/// The options of a selection run, checked (`gio_rs.select`'s and `GIOKL.fit`'s keyword names;
/// `semantics` is "fixed" or "reference"). Options not given take the core's defaults; the
/// attributes are the checked values Python reads.
#[pyclass(frozen, module = "gio_rs._core", name = "SelectParams")]
pub(super) struct PySelectParams {
    #[pyo3(get)]
    method: &'static str,
    #[pyo3(get)]
    max_iter: usize,
    #[pyo3(get)]
    discard_nearest_for_xy: bool,
    #[pyo3(get)]
    record_v_opts: bool,
    pub(super) core: ValidSelectParams,
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
pub(super) struct PyKMeansParams {
    #[pyo3(get)]
    n_clusters: usize,
    #[pyo3(get)]
    max_iter: usize,
    #[pyo3(get)]
    init_sample_size: usize,
    pub(super) core: ValidKMeansParams,
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

/// Adds this file's classes to the module.
pub(super) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PySelectParams>()?;
    m.add_class::<PyKMeansParams>()?;
    Ok(())
}
