//! The HTTP routes: thin handlers that read a request, check it against the loaded adapters, hand generations to
//! the engine and shape the answer. Every failure becomes a status and an OpenAI-shaped error body.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::Router;
use dept_models::TextTokenizer;
use serde::Serialize;
use tokio::sync::oneshot;

use crate::adapters::{self, AdapterInfo};
use crate::api::{self, *};
use crate::engine::{
    unknown_adapter as unknown_adapter_error, Command, EngineHandle, Generated, Generation,
};
use crate::metrics::Metrics;
use crate::ServeError;

/// What every handler shares.
pub struct AppState {
    pub engine: EngineHandle,
    pub tokenizer: Arc<TextTokenizer>,
    pub metrics: Arc<Metrics>,
    /// The backbone folder, reported as each adapter's parent.
    pub model_name: String,
    pub admin_token: Option<String>,
    pub adapter_root: Option<std::path::PathBuf>,
    pub request_timeout: Duration,
    /// Set when shutdown begins: new work is refused with 503.
    pub draining: AtomicBool,
    next_id: AtomicU64,
}

impl AppState {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        engine: EngineHandle,
        tokenizer: Arc<TextTokenizer>,
        metrics: Arc<Metrics>,
        model_name: String,
        admin_token: Option<String>,
        adapter_root: Option<std::path::PathBuf>,
        request_timeout: Duration,
    ) -> Self {
        AppState {
            engine,
            tokenizer,
            metrics,
            model_name,
            admin_token,
            adapter_root,
            request_timeout,
            draining: AtomicBool::new(false),
            next_id: AtomicU64::new(1),
        }
    }
}

type Shared = Arc<AppState>;

/// Every route, with the body limit (larger bodies get 413).
pub fn router(state: Shared, max_body_bytes: usize) -> Router {
    Router::new()
        .route("/v1/completions", post(completions))
        .route("/v1/models", get(models))
        .route("/v1/predict", post(predict))
        .route("/v1/adapters", post(load_adapter))
        .route("/v1/adapters/{*name}", delete(unload_adapter))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/openapi.json", get(openapi))
        // After every route: it applies to the routes registered before it. axum's own 405 has an empty body.
        .method_not_allowed_fallback(method_not_allowed)
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(max_body_bytes))
        .with_state(state)
}

/// A JSON answer, or a failure as its status and error body; counted in the metrics under `route`.
fn answer<T: Serialize>(
    state: &AppState,
    route: &str,
    started: Instant,
    result: Result<T, ServeError>,
) -> Response {
    let response = match result {
        Ok(body) => (StatusCode::OK, axum::Json(body)).into_response(),
        Err(error) => error_response(&error),
    };
    state.metrics.answered(
        route,
        response.status().as_u16(),
        started.elapsed().as_secs_f64(),
    );
    response
}

pub fn error_response(error: &ServeError) -> Response {
    let status = StatusCode::from_u16(error.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let body = ErrorBody {
        error: ErrorDetail {
            message: error.to_string(),
            kind: error.kind(),
            param: None,
            code: error.status(),
        },
    };
    let mut response = (status, axum::Json(body)).into_response();
    if let ServeError::Busy { retry_after_s, .. } = error {
        if let Ok(value) = HeaderValue::from_str(&retry_after_s.to_string()) {
            response.headers_mut().insert(header::RETRY_AFTER, value);
        }
    }
    response
}

/// The body, or 413 when it is over the limit (any other read failure: 400).
fn body(bytes: Result<Bytes, BytesRejection>) -> Result<Bytes, ServeError> {
    bytes.map_err(|rejection| {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ServeError::TooLarge(rejection.body_text())
        } else {
            ServeError::BadRequest(rejection.body_text())
        }
    })
}

fn refuse_when_draining(state: &AppState) -> Result<(), ServeError> {
    if state.draining.load(Ordering::SeqCst) {
        Err(ServeError::Draining)
    } else {
        Ok(())
    }
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// The adapter's description, or 404 naming the loaded ones.
fn adapter_info(state: &AppState, name: &str) -> Result<AdapterInfo, ServeError> {
    let catalog = state
        .engine
        .catalog
        .read()
        .unwrap_or_else(|p| p.into_inner());
    catalog.get(name).cloned().ok_or_else(|| {
        let known: Vec<String> = catalog.keys().cloned().collect();
        unknown_adapter_error(name, &known)
    })
}

/// An input's ids checked against the adapter's limits (cut to them when `truncate`), and against the model's
/// position limit with room for `max_tokens`.
fn checked_ids(
    state: &AppState,
    info: &AdapterInfo,
    input: PromptInput,
    max_tokens: usize,
    truncate: bool,
    which: usize,
) -> Result<Vec<i64>, ServeError> {
    let limit = info.max_input_tokens;
    let mut ids = match input {
        PromptInput::Text(text) => {
            let cut = truncate.then_some(limit);
            state
                .tokenizer
                .encode(&text, cut)
                .map_err(|e| ServeError::BadRequest(format!("prompt {which}: {e}")))?
        }
        PromptInput::Ids(ids) => {
            let vocab = state.tokenizer.vocab_size() as i64;
            if let Some(bad) = ids.iter().find(|&&id| id < 0 || id >= vocab) {
                return Err(ServeError::BadRequest(format!(
                    "prompt {which}: token id {bad} is outside the vocabulary (0..{vocab})"
                )));
            }
            ids
        }
    };
    if ids.is_empty() {
        return Err(ServeError::BadRequest(format!("prompt {which} is empty")));
    }
    if ids.len() > limit {
        if truncate {
            ids.truncate(limit);
        } else {
            return Err(ServeError::BadRequest(format!(
                "prompt {which} has {} tokens, adapter {:?} takes at most {limit} (its s); shorten it or send \
                 \"truncate\": true",
                ids.len(),
                info.name
            )));
        }
    }
    if let (true, Some(positions)) = (
        state.engine.model.decoder_only,
        state.engine.model.max_positions,
    ) {
        let total = info.m as usize + ids.len() + max_tokens;
        if total as i64 > positions {
            return Err(ServeError::BadRequest(format!(
                "prompt {which}: {} prompt + {} input + {max_tokens} new tokens = {total} positions, the model \
                 holds {positions}; lower max_tokens or shorten the input",
                info.m,
                ids.len()
            )));
        }
    }
    Ok(ids)
}

/// Sends every input to the engine, then waits for all answers within the request timeout. Dropping this future
/// (the client hung up, or the timeout) closes the answer channels, and the engine drops those rows.
async fn generate_all(
    state: &AppState,
    adapter: &str,
    inputs: Vec<Vec<i64>>,
    max_tokens: usize,
) -> Result<Vec<Generated>, ServeError> {
    if inputs.len() > state.engine.capacity() {
        // It could never be queued whole: a 429 would send the client back to try the same again.
        return Err(ServeError::BadRequest(format!(
            "{} prompts in one request; this server queues at most {} (--queue): send fewer per request",
            inputs.len(),
            state.engine.capacity()
        )));
    }
    let mut receivers = Vec::with_capacity(inputs.len());
    for input_ids in inputs {
        let (reply, receiver) = oneshot::channel();
        state.engine.submit(Generation {
            adapter: adapter.to_string(),
            input_ids,
            max_tokens,
            reply,
        })?;
        receivers.push(receiver);
    }
    let wait = async {
        let mut answers = Vec::with_capacity(receivers.len());
        for receiver in receivers {
            let answer = receiver
                .await
                .map_err(|_| ServeError::Model("the model thread dropped the request".into()))??;
            answers.push(answer);
        }
        Ok(answers)
    };
    match tokio::time::timeout(state.request_timeout, wait).await {
        Ok(answers) => answers,
        Err(_) => Err(ServeError::Timeout(state.request_timeout.as_secs())),
    }
}

/// The generated text without the end-of-sequence token.
fn text_of(state: &AppState, tokens: &[i64]) -> Result<String, ServeError> {
    let eos = state.engine.model.eos_token_id;
    let content: Vec<i64> = tokens.iter().copied().filter(|&t| t != eos).collect();
    state
        .tokenizer
        .decode(&content)
        .map_err(|e| ServeError::Model(e.to_string()))
}

async fn completions(
    State(state): State<Shared>,
    bytes: Result<Bytes, BytesRejection>,
) -> Response {
    let started = Instant::now();
    let result = complete(&state, bytes).await;
    answer(&state, "/v1/completions", started, result)
}

async fn complete(
    state: &AppState,
    bytes: Result<Bytes, BytesRejection>,
) -> Result<CompletionResponse, ServeError> {
    refuse_when_draining(state)?;
    let request: CompletionRequest = api::parse(&body(bytes)?)?;
    request.check_supported()?;
    let info = adapter_info(state, &request.model)?;
    let max_tokens = request.max_tokens.unwrap_or(DEFAULT_MAX_TOKENS);
    let inputs = request.prompt.inputs();
    if inputs.is_empty() {
        return Err(ServeError::BadRequest("`prompt` holds no prompt".into()));
    }
    let ids = inputs
        .into_iter()
        .enumerate()
        .map(|(i, input)| checked_ids(state, &info, input, max_tokens, request.truncate, i))
        .collect::<Result<Vec<_>, _>>()?;
    let prompt_tokens = ids.iter().map(Vec::len).sum();
    let answers = generate_all(state, &request.model, ids, max_tokens).await?;
    let completion_tokens = answers.iter().map(|a| a.tokens.len()).sum();
    let version = answers
        .first()
        .map(|a| a.version.clone())
        .unwrap_or(info.version);
    let choices = answers
        .iter()
        .enumerate()
        .map(|(index, a)| {
            Ok(CompletionChoice {
                index,
                text: text_of(state, &a.tokens)?,
                logprobs: None,
                finish_reason: if a.stopped { "stop" } else { "length" },
            })
        })
        .collect::<Result<Vec<_>, ServeError>>()?;
    Ok(CompletionResponse {
        id: format!("cmpl-{}", state.next_id.fetch_add(1, Ordering::SeqCst)),
        object: "text_completion",
        created: unix_now(),
        model: request.model,
        choices,
        usage: Usage {
            prompt_tokens,
            completion_tokens,
            total_tokens: prompt_tokens + completion_tokens,
        },
        system_fingerprint: version,
    })
}

async fn predict(State(state): State<Shared>, bytes: Result<Bytes, BytesRejection>) -> Response {
    let started = Instant::now();
    let result = predict_inner(&state, bytes).await;
    answer(&state, "/v1/predict", started, result)
}

async fn predict_inner(
    state: &AppState,
    bytes: Result<Bytes, BytesRejection>,
) -> Result<PredictResponse, ServeError> {
    refuse_when_draining(state)?;
    let request: PredictRequest = api::parse(&body(bytes)?)?;
    let info = adapter_info(state, &request.adapter)?;
    let task_name = info.task.clone().ok_or_else(|| {
        ServeError::BadRequest(format!(
            "adapter {:?} has no task (no run config.yaml beside it): use /v1/completions with formatted text",
            info.name
        ))
    })?;
    let task = dept_data::task(&task_name).map_err(|e| ServeError::Model(e.to_string()))?;
    if request.inputs.is_empty() {
        return Err(ServeError::BadRequest("`inputs` holds no input".into()));
    }
    let texts = request
        .inputs
        .iter()
        .enumerate()
        .map(|(i, fields)| {
            crate::predict::input_text(task, fields)
                .map_err(|e| ServeError::BadRequest(format!("input {i}: {e}")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let max_tokens = info.max_target_len.max(1);
    let ids = texts
        .iter()
        .enumerate()
        .map(|(i, text)| {
            checked_ids(
                state,
                &info,
                PromptInput::Text(text.clone()),
                max_tokens,
                request.truncate,
                i,
            )
        })
        .collect::<Result<Vec<_>, _>>()?;
    let answers = generate_all(state, &request.adapter, ids, max_tokens).await?;
    let version = answers
        .first()
        .map(|a| a.version.clone())
        .unwrap_or(info.version);
    let predictions = answers
        .into_iter()
        .zip(texts)
        .map(|(a, input)| {
            let text = crate::predict::scored_text(
                &state.tokenizer,
                &a.tokens,
                state.engine.model.eos_token_id,
            )?;
            Ok(Prediction {
                label: task
                    .label_name(&text)
                    .map_or_else(|| text.clone(), str::to_string),
                valid: task.is_valid_target(&text),
                text,
                input,
                tokens: request.return_tokens.then_some(a.tokens),
            })
        })
        .collect::<Result<Vec<_>, ServeError>>()?;
    Ok(PredictResponse {
        adapter: request.adapter,
        task: task_name,
        version,
        predictions,
    })
}

async fn models(State(state): State<Shared>) -> Response {
    let started = Instant::now();
    let catalog = state
        .engine
        .catalog
        .read()
        .unwrap_or_else(|p| p.into_inner());
    let data = catalog
        .values()
        .map(|info| ModelCard {
            id: info.name.clone(),
            object: "model",
            created: 0,
            owned_by: "dept",
            parent: state.model_name.clone(),
            adapter: info.clone(),
        })
        .collect();
    drop(catalog);
    answer(
        &state,
        "/v1/models",
        started,
        Ok(ModelList {
            object: "list",
            data,
        }),
    )
}

/// The admin token check: 403 when admin routes are off, 401 for a missing or wrong token.
fn check_admin(state: &AppState, headers: &HeaderMap) -> Result<(), ServeError> {
    let Some(expected) = &state.admin_token else {
        return Err(ServeError::Forbidden(
            "admin routes are off: start the server with --admin-token to load and unload adapters"
                .into(),
        ));
    };
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    // Compared in constant time, so that the answer's timing says nothing about the token.
    let same = given.len() == expected.len()
        && given
            .bytes()
            .zip(expected.bytes())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0;
    if same {
        Ok(())
    } else {
        Err(ServeError::Unauthorized(
            "admin routes need `Authorization: Bearer <admin token>`".into(),
        ))
    }
}

async fn load_adapter(
    State(state): State<Shared>,
    headers: HeaderMap,
    bytes: Result<Bytes, BytesRejection>,
) -> Response {
    let started = Instant::now();
    let result = async {
        check_admin(&state, &headers)?;
        refuse_when_draining(&state)?;
        let request: LoadRequest = api::parse(&body(bytes)?)?;
        adapters::check_name(&request.name)?;
        let root = state.adapter_root.as_ref().ok_or_else(|| {
            ServeError::Forbidden(
                "no --adapter-root was given: adapters cannot be loaded at run time".into(),
            )
        })?;
        let dir = adapters::resolve_under(root, &request.path)?;
        let (reply, receiver) = oneshot::channel();
        state.engine.send(Command::Load {
            name: request.name,
            dir,
            reply,
        })?;
        receiver
            .await
            .map_err(|_| ServeError::Model("the model thread dropped the request".into()))?
    }
    .await;
    answer(&state, "/v1/adapters", started, result)
}

async fn unload_adapter(
    State(state): State<Shared>,
    headers: HeaderMap,
    Path(name): Path<String>,
) -> Response {
    let started = Instant::now();
    let result = async {
        check_admin(&state, &headers)?;
        let (reply, receiver) = oneshot::channel();
        state.engine.send(Command::Unload { name, reply })?;
        receiver
            .await
            .map_err(|_| ServeError::Model("the model thread dropped the request".into()))?
    }
    .await;
    answer(&state, "/v1/adapters/{name}", started, result)
}

#[derive(Serialize)]
struct Health {
    status: &'static str,
}

async fn healthz(State(state): State<Shared>) -> Response {
    let started = Instant::now();
    let result = if state.engine.is_alive() {
        Ok(Health { status: "ok" })
    } else {
        Err(ServeError::Model("the model thread has stopped".into()))
    };
    answer(&state, "/healthz", started, result)
}

#[derive(Serialize)]
struct Readiness {
    status: &'static str,
    adapters: usize,
    queued: usize,
}

async fn readyz(State(state): State<Shared>) -> Response {
    let started = Instant::now();
    let result = refuse_when_draining(&state).and_then(|()| {
        if !state.engine.is_alive() {
            return Err(ServeError::Model("the model thread has stopped".into()));
        }
        let adapters = state.engine.catalog.read().map_or(0, |c| c.len());
        Ok(Readiness {
            status: "ready",
            adapters,
            queued: state.engine.queued(),
        })
    });
    answer(&state, "/readyz", started, result)
}

async fn metrics(State(state): State<Shared>) -> Response {
    state.metrics.queue_depth.set(state.engine.queued() as i64);
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        state.metrics.render(),
    )
        .into_response()
}

async fn openapi() -> Response {
    axum::Json(crate::openapi::document()).into_response()
}

async fn method_not_allowed(
    State(state): State<Shared>,
    method: axum::http::Method,
    uri: axum::http::Uri,
) -> Response {
    let started = Instant::now();
    let result: Result<(), ServeError> = Err(ServeError::MethodNotAllowed(format!(
        "{} does not take {method}: see the Allow header or GET /openapi.json",
        uri.path()
    )));
    answer(&state, "unknown", started, result)
}

async fn not_found(State(state): State<Shared>, uri: axum::http::Uri) -> Response {
    let started = Instant::now();
    let result: Result<(), ServeError> = Err(ServeError::NotFound(format!(
        "no route {}: see GET /openapi.json",
        uri.path()
    )));
    answer(&state, "unknown", started, result)
}
