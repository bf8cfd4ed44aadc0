//! `/v1/predict`'s two task-side steps: raw fields to the task's input text, generated ids to the text its scorer
//! reads (the same strings `dept eval` scores).

use std::path::PathBuf;
use std::sync::Arc;

use dept_data::{Record, Task};
use dept_models::TextTokenizer;
use serde_json::{Map, Value};

use crate::ServeError;

/// The input text of one request's fields under `task`'s template.
pub fn input_text(
    task: &Task,
    fields: &Map<String, Value>,
) -> Result<String, dept_data::DataError> {
    let mut record = Record::new(&Arc::new(PathBuf::from("request")), 1);
    record.fields = fields.clone();
    task.format_input(&record)
}

/// The generated text without end of sequence, decoded and cleaned up as evaluation decodes predictions.
pub fn scored_text(
    tokenizer: &TextTokenizer,
    tokens: &[i64],
    eos: i64,
) -> Result<String, ServeError> {
    let content: Vec<i64> = tokens.iter().copied().filter(|&t| t != eos).collect();
    tokenizer
        .decode_for_scoring(&content, true)
        .map_err(|e| ServeError::Model(e.to_string()))
}
