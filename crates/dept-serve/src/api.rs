//! The JSON a client sends and gets: OpenAI's completions and models shapes (as vLLM and LoRAX serve them), and
//! dept's own `/v1/predict` and admin bodies. [`crate::openapi`] describes the same shapes.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::adapters::AdapterInfo;
use crate::ServeError;

/// OpenAI's default `max_tokens` for completions.
pub const DEFAULT_MAX_TOKENS: usize = 16;

/// `POST /v1/completions`. Fields OpenAI defines and greedy decoding cannot honour are refused, not ignored.
#[derive(Debug, Deserialize)]
pub struct CompletionRequest {
    /// The adapter's name.
    pub model: String,
    pub prompt: Prompt,
    pub max_tokens: Option<usize>,
    pub temperature: Option<f64>,
    pub top_p: Option<f64>,
    pub n: Option<usize>,
    pub stream: Option<bool>,
    pub logprobs: Option<Value>,
    pub echo: Option<bool>,
    pub best_of: Option<usize>,
    /// dept's extension: cut inputs longer than the adapter's limit instead of refusing them.
    #[serde(default)]
    pub truncate: bool,
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

/// A prompt as OpenAI allows it: text, texts, token ids, or lists of token ids.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum Prompt {
    Text(String),
    Texts(Vec<String>),
    Ids(Vec<i64>),
    IdLists(Vec<Vec<i64>>),
}

/// One input of a completion: text to encode, or ids as given.
pub enum PromptInput {
    Text(String),
    Ids(Vec<i64>),
}

impl Prompt {
    pub fn inputs(self) -> Vec<PromptInput> {
        match self {
            Prompt::Text(text) => vec![PromptInput::Text(text)],
            Prompt::Texts(texts) => texts.into_iter().map(PromptInput::Text).collect(),
            Prompt::Ids(ids) => vec![PromptInput::Ids(ids)],
            Prompt::IdLists(lists) => lists.into_iter().map(PromptInput::Ids).collect(),
        }
    }
}

impl CompletionRequest {
    /// Refuses what greedy, non-streaming decoding cannot do, naming the field.
    pub fn check_supported(&self) -> Result<(), ServeError> {
        let refuse = |field: &str, why: &str| {
            Err(ServeError::BadRequest(format!(
                "`{field}` is not supported: {why}"
            )))
        };
        if self.stream == Some(true) {
            return refuse(
                "stream",
                "answers come whole (set stream to false or leave it out)",
            );
        }
        if self.temperature.is_some_and(|t| t != 0.0) {
            return refuse("temperature", "decoding is greedy (leave it out or set 0)");
        }
        if self.top_p.is_some_and(|p| p != 1.0) {
            return refuse("top_p", "decoding is greedy (leave it out or set 1)");
        }
        if self.n.is_some_and(|n| n != 1) || self.best_of.is_some_and(|n| n != 1) {
            return refuse("n", "greedy decoding gives one answer per prompt");
        }
        if self.logprobs.as_ref().is_some_and(|v| !v.is_null()) {
            return refuse("logprobs", "log-probabilities are not returned");
        }
        if self.echo == Some(true) {
            return refuse("echo", "the prompt is not echoed");
        }
        if self.max_tokens == Some(0) {
            return Err(ServeError::BadRequest(
                "`max_tokens` must be at least 1".into(),
            ));
        }
        Ok(())
    }
}

#[derive(Debug, Serialize)]
pub struct CompletionResponse {
    pub id: String,
    pub object: &'static str,
    pub created: u64,
    pub model: String,
    pub choices: Vec<CompletionChoice>,
    pub usage: Usage,
    /// The adapter version (content hash) that answered.
    pub system_fingerprint: String,
}

#[derive(Debug, Serialize)]
pub struct CompletionChoice {
    pub index: usize,
    pub text: String,
    pub logprobs: Option<Value>,
    /// `stop` (end of sequence) or `length` (`max_tokens` reached).
    pub finish_reason: &'static str,
}

#[derive(Debug, Serialize, Default)]
pub struct Usage {
    pub prompt_tokens: usize,
    pub completion_tokens: usize,
    pub total_tokens: usize,
}

/// `GET /v1/models`.
#[derive(Debug, Serialize)]
pub struct ModelList {
    pub object: &'static str,
    pub data: Vec<ModelCard>,
}

#[derive(Debug, Serialize)]
pub struct ModelCard {
    pub id: String,
    pub object: &'static str,
    pub created: u64,
    pub owned_by: &'static str,
    /// The backbone the adapter runs on (vLLM's field for a LoRA's base model).
    pub parent: String,
    #[serde(flatten)]
    pub adapter: AdapterInfo,
}

/// `POST /v1/predict`: raw task fields in, formatted with the adapter's task template.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PredictRequest {
    pub adapter: String,
    pub inputs: Vec<Map<String, Value>>,
    #[serde(default)]
    pub truncate: bool,
    /// Also return the generated token ids.
    #[serde(default)]
    pub return_tokens: bool,
}

#[derive(Debug, Serialize)]
pub struct PredictResponse {
    pub adapter: String,
    pub task: String,
    pub version: String,
    pub predictions: Vec<Prediction>,
}

#[derive(Debug, Serialize)]
pub struct Prediction {
    /// The class name for a task with a verbaliser (`entailment`), else the generated text.
    pub label: String,
    /// The generated text as the task's scorer reads it (`"0"`, an answer span).
    pub text: String,
    /// True when `text` is one of the task's labels (always true for free-text tasks).
    pub valid: bool,
    /// The formatted input the model read.
    pub input: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tokens: Option<Vec<i64>>,
}

/// `POST /v1/adapters`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoadRequest {
    pub name: String,
    /// The adapter folder, relative to the adapter root (or absolute, inside it).
    pub path: String,
}

/// OpenAI's error body.
#[derive(Debug, Serialize)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Serialize)]
pub struct ErrorDetail {
    pub message: String,
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub param: Option<String>,
    pub code: u16,
}

/// Reads a JSON body, naming the line and column of what is wrong.
pub fn parse<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, ServeError> {
    // serde's message ends with the line and column ("... at line 1 column 16").
    serde_json::from_slice(body).map_err(|e| {
        ServeError::BadRequest(format!(
            "the request body is not valid JSON for this route: {e}"
        ))
    })
}
