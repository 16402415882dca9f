//! The one error type of the core. The bindings map it to `gio_rs.GioError` (a ValueError),
//! `IndexError` or the Python exception a host callback raised.

/// Every fallible core function returns `Result<_, GioError>`.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum GioError {
    /// An argument is out of its domain; `name` is the argument as the user spelled it.
    #[error("{name}: {problem}")]
    InvalidArgument { name: &'static str, problem: String },
    /// The reference semantics raise here: every pool row has been used and no reset refilled it.
    #[error("the pool is exhausted: every train row has been selected or rejected")]
    PoolExhausted,
    /// The host (e.g. Python: Ctrl-C, a failing callback) asked the work to stop.
    #[error("aborted by the caller")]
    Aborted,
}

impl GioError {
    pub fn invalid(name: &'static str, problem: impl Into<String>) -> Self {
        GioError::InvalidArgument {
            name,
            problem: problem.into(),
        }
    }
}
