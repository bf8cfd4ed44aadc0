//! The benchmarks' one error type. Every message names the argument, file or process at fault; a cause is printed
//! once, inside the message that wraps it (no error here is also exposed as a `source`, so a chain printer never
//! repeats it).

/// What can stop a benchmark.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    /// Arguments or inputs that cannot be benchmarked, saying what was expected.
    #[error("{0}")]
    Invalid(String),
    /// The PyTorch side of a side-by-side benchmark failed or answered something unexpected.
    #[error("{0}")]
    Python(String),
    /// A file or process operation failed: `{action} {path}: {error}`.
    #[error("{action} {}: {error}", path.display())]
    Io {
        action: &'static str,
        path: std::path::PathBuf,
        error: std::io::Error,
    },
    /// An error with what was being done when it happened.
    #[error("{context}: {error}")]
    Context {
        context: String,
        error: Box<BenchError>,
    },
    #[error(transparent)]
    Device(#[from] dept_train::device::DeviceError),
    #[error(transparent)]
    Train(#[from] dept_train::TrainError),
    #[error(transparent)]
    Model(#[from] dept_models::ModelError),
    #[error(transparent)]
    Core(#[from] dept_core::CoreError),
    #[error(transparent)]
    Data(#[from] dept_data::DataError),
    #[error(transparent)]
    Torch(#[from] tch::TchError),
    #[error(transparent)]
    Json(#[from] serde_json::Error),
}

pub type Result<T, E = BenchError> = std::result::Result<T, E>;

impl BenchError {
    pub fn io(
        action: &'static str,
        path: impl Into<std::path::PathBuf>,
        error: std::io::Error,
    ) -> Self {
        BenchError::Io {
            action,
            path: path.into(),
            error,
        }
    }
}

/// `.context(..)` / `.with_context(|| ..)`: says what was being done when an error (or a `None`) happened.
pub trait Context<T> {
    fn with_context<S: Into<String>>(self, context: impl FnOnce() -> S) -> Result<T>;
    fn context(self, context: impl Into<String>) -> Result<T>
    where
        Self: Sized,
    {
        let context = context.into();
        self.with_context(|| context)
    }
}

impl<T, E: Into<BenchError>> Context<T> for std::result::Result<T, E> {
    fn with_context<S: Into<String>>(self, context: impl FnOnce() -> S) -> Result<T> {
        self.map_err(|error| BenchError::Context {
            context: context().into(),
            error: Box::new(error.into()),
        })
    }
}

impl<T> Context<T> for Option<T> {
    fn with_context<S: Into<String>>(self, context: impl FnOnce() -> S) -> Result<T> {
        self.ok_or_else(|| BenchError::Invalid(context().into()))
    }
}

/// Returns early with [`BenchError::Invalid`], formatted as `format!` does.
macro_rules! bail {
    ($($arg:tt)*) => {
        return Err($crate::error::BenchError::Invalid(format!($($arg)*)))
    };
}

/// Returns [`BenchError::Invalid`] unless the condition holds.
macro_rules! ensure {
    ($cond:expr, $($arg:tt)*) => {
        let holds: bool = $cond;
        if !holds {
            $crate::error::bail!($($arg)*);
        }
    };
}

pub(crate) use {bail, ensure};
