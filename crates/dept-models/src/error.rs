use std::path::PathBuf;

/// Everything that can go wrong when loading or running a backbone, worded for the person who has to fix it.
///
/// Causes are chained once: a variant either words its cause into its message and keeps no `source` (the file
/// errors: the message is complete on its own) or forwards to it transparently; none does both, so printing the
/// chain never repeats a line.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error("cannot read {path}: {cause}")]
    Io {
        path: PathBuf,
        cause: std::io::Error,
    },
    #[error("{path}: {message}")]
    Config { path: PathBuf, message: String },
    /// A config file holds values no model can be built from, or asks for what is not implemented.
    #[error("{path}: {issue}")]
    InvalidConfig { path: PathBuf, issue: ConfigIssue },
    /// A config written in code (a benchmark shape, a tiny model) that no model can be built from.
    #[error("{model} config: {issue}")]
    InvalidShape {
        /// "GPT-2", "Llama", "CLIP vision".
        model: &'static str,
        issue: ConfigIssue,
    },
    /// A folder's `model_type` names no backbone of the registry ([`crate::registry`]).
    #[error("{path}: model_type {model_type:?} is not supported: {supported} are{hint}")]
    UnknownModelType {
        path: PathBuf,
        model_type: String,
        /// The registry's kinds, for the reader ("T5 (v1, v1.1, Flan), GPT-2 and Llama").
        supported: String,
        /// What else the reader may have meant (e.g. how CLIP-T5 is asked for), with its leading separator.
        hint: &'static str,
    },
    #[error("{path}: {message}")]
    Checkpoint { path: PathBuf, message: String },
    #[error("tokenizer {path}: {message}")]
    Tokenizer { path: PathBuf, message: String },
    #[error("{0}")]
    Input(String),
    /// A decode was stopped between two tokens by the check registered in [`crate::cancel`].
    #[error("decoding was cancelled (a stop was requested)")]
    Cancelled,
    /// The adapter refused its input (too long for its `A`, wrong width).
    #[error(transparent)]
    Adapter(#[from] dept_core::CoreError),
    #[error(transparent)]
    Torch(#[from] tch::TchError),
}

/// Why a model config cannot be used, without the file it came from ([`ModelError::InvalidConfig`] adds it).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ConfigIssue {
    /// A size the model is built from is zero or negative.
    #[error("`{field}` must be positive, found {value}")]
    NotPositive { field: String, value: i64 },
    /// A width that heads (or key/value groups) must split evenly.
    #[error("`{field}` ({value}) must be a multiple of `{divisor_field}` ({divisor})")]
    NotMultiple {
        field: String,
        value: i64,
        divisor_field: String,
        divisor: i64,
    },
    /// A number outside what the model accepts: `expected` says what is (e.g. "in [0, 1)", "positive").
    #[error("`{field}` must be {expected}, found {found}")]
    OutOfRange {
        field: String,
        expected: &'static str,
        found: f64,
    },
    /// A token id the vocabulary does not have.
    #[error("`{field}` = {id} is outside the vocabulary (vocab_size {vocab_size})")]
    OutsideVocabulary {
        field: String,
        id: i64,
        vocab_size: i64,
    },
    /// A setting the implementation does not have (a rotary scaling, an activation), and why.
    #[error("{0}")]
    Unsupported(String),
    /// A value of the wrong form (e.g. an end-of-sequence id that is no integer), and what is expected.
    #[error("{0}")]
    Malformed(String),
}

impl ConfigIssue {
    /// The same issue about a field of a nested section (`vision_config.` in a full CLIP config).
    pub fn in_section(self, prefix: &str) -> ConfigIssue {
        let nest = |field: String| format!("{prefix}{field}");
        match self {
            ConfigIssue::NotPositive { field, value } => ConfigIssue::NotPositive {
                field: nest(field),
                value,
            },
            ConfigIssue::NotMultiple {
                field,
                value,
                divisor_field,
                divisor,
            } => ConfigIssue::NotMultiple {
                field: nest(field),
                value,
                divisor_field,
                divisor,
            },
            ConfigIssue::OutOfRange {
                field,
                expected,
                found,
            } => ConfigIssue::OutOfRange {
                field: nest(field),
                expected,
                found,
            },
            ConfigIssue::OutsideVocabulary {
                field,
                id,
                vocab_size,
            } => ConfigIssue::OutsideVocabulary {
                field: nest(field),
                id,
                vocab_size,
            },
            // Free text names its first field in backticks.
            ConfigIssue::Unsupported(text) => {
                ConfigIssue::Unsupported(text.replacen('`', &format!("`{prefix}"), 1))
            }
            ConfigIssue::Malformed(text) => {
                ConfigIssue::Malformed(text.replacen('`', &format!("`{prefix}"), 1))
            }
        }
    }

    /// Each of `fields` (config key, value) must be a finite number ≥ 0 (epsilons, initialiser scales).
    pub fn check_non_negative(fields: &[(&str, f64)]) -> Result<(), ConfigIssue> {
        fields.iter().try_for_each(|&(field, v)| {
            ConfigIssue::check_range(field, v, "a non-negative number", |v| v >= 0.0)
        })
    }

    /// Each of `fields` must be a dropout probability, in `[0, 1)`.
    pub fn check_probability(fields: &[(&str, f64)]) -> Result<(), ConfigIssue> {
        fields.iter().try_for_each(|&(field, p)| {
            ConfigIssue::check_range(field, p, "in [0, 1)", |p| (0.0..1.0).contains(&p))
        })
    }

    /// `field` must be finite and within `accepts`, described to the reader as `expected`.
    pub fn check_range(
        field: &str,
        value: f64,
        expected: &'static str,
        accepts: impl Fn(f64) -> bool,
    ) -> Result<(), ConfigIssue> {
        if value.is_finite() && accepts(value) {
            return Ok(());
        }
        Err(ConfigIssue::OutOfRange {
            field: field.to_string(),
            expected,
            found: value,
        })
    }
}
