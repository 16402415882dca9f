//! The callback host: Python's side of long core work (random draws, progress, Ctrl-C), and
//! `run_detached`, which runs core work without the GIL and maps what comes back.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::{Duration, Instant};

use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;

use crate::error::GioError as CoreError;
use crate::selection::{self, LoopHost};

/// How often a long computation checks for Ctrl-C.
const POLL_INTERVAL: Duration = Duration::from_millis(50);

/// Python's side of long core work: random draws (`random`, `pick`), progress (`callback`: an
/// object with `start` and `candidate` methods for the selection loops, a callable
/// `callback(iteration, inertia)` for K-Means) and Ctrl-C.
#[derive(Default)]
pub(super) struct PyHost {
    random: Option<Py<PyAny>>,
    pick: Option<Py<PyAny>>,
    callback: Option<Py<PyAny>>,
    last_poll: Option<Instant>,
    /// The Python exception that stopped the work, raised again once the GIL is back.
    error: Option<PyErr>,
}

impl PyHost {
    /// A host with these random draws and this progress callback (each may be absent).
    pub(super) fn new(
        random: Option<Py<PyAny>>,
        pick: Option<Py<PyAny>>,
        callback: Option<Py<PyAny>>,
    ) -> Self {
        PyHost {
            random,
            pick,
            callback,
            ..PyHost::default()
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

    /// K-Means' report after each Lloyd iteration.
    pub(super) fn iteration(&mut self, iteration: usize, inertia: f64) -> Result<(), CoreError> {
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
pub(super) fn run_detached<R: Send>(
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
        Err(panic) => Err(panic_error(panic)),
    }
}

/// Runs core work that needs no host (no callbacks, no Ctrl-C checks) without the GIL.
pub(super) fn run_plain<R: Send>(
    py: Python<'_>,
    f: impl FnOnce() -> Result<R, CoreError> + Send,
) -> PyResult<R> {
    match py.detach(|| catch_unwind(AssertUnwindSafe(f))) {
        Ok(result) => Ok(result?),
        Err(panic) => Err(panic_error(panic)),
    }
}

/// A panic in core work as the RuntimeError every binding raises for it (never an abort).
fn panic_error(panic: Box<dyn std::any::Any + Send>) -> PyErr {
    let what = panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_default();
    PyRuntimeError::new_err(format!("gio_rs internal error (please report it): {what}"))
}
