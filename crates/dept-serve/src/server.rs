//! Start-up and shutdown: the backbone and the adapters loaded on the model thread, then the listener (127.0.0.1
//! unless told otherwise), then serving until SIGTERM or SIGINT. On the signal the server stops accepting
//! connections, answers new requests on open ones with 503, lets the requests in flight finish, and gives up on
//! them after the grace period.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use dept_models::TextTokenizer;
use tokio::sync::Notify;

use crate::engine::{self, EngineOptions};
use crate::metrics::Metrics;
use crate::routes::{self, AppState};
use crate::{adapters, ServeError};

#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// The backbone's Hugging Face folder (`config.json`, `model.safetensors`, `tokenizer.json`).
    pub model: PathBuf,
    /// Every adapter folder under this one is loaded at start-up.
    pub adapters: Option<PathBuf>,
    /// Where the admin route may load adapters from (default: `adapters`).
    pub adapter_root: Option<PathBuf>,
    pub host: IpAddr,
    /// 0: any free port (the one taken is reported).
    pub port: u16,
    /// Enables the admin routes; without it they answer 403.
    pub admin_token: Option<String>,
    pub engine: EngineOptions,
    pub max_body_bytes: usize,
    pub request_timeout: Duration,
    /// How long requests in flight may take to finish after SIGTERM/SIGINT.
    pub shutdown_grace: Duration,
    /// `cpu`, `cuda`, `cuda:N` or `auto`.
    pub device: String,
}

impl Default for ServeOptions {
    fn default() -> Self {
        ServeOptions {
            model: PathBuf::new(),
            adapters: None,
            adapter_root: None,
            host: IpAddr::V4(Ipv4Addr::LOCALHOST),
            port: 8080,
            admin_token: None,
            engine: EngineOptions::default(),
            max_body_bytes: 1 << 20,
            request_timeout: Duration::from_secs(60),
            shutdown_grace: Duration::from_secs(30),
            device: "cpu".into(),
        }
    }
}

/// How serving ended.
#[derive(Debug)]
pub struct Stopped {
    /// True when requests were still in flight at the end of the grace period.
    pub cut_short: bool,
}

/// Loads everything, then serves until a signal; `ready` is called with the address and the number of adapters
/// once the server accepts requests.
pub fn serve(
    options: ServeOptions,
    ready: impl FnOnce(SocketAddr, usize),
) -> Result<Stopped, ServeError> {
    let device = dept_train::device::resolve_device(&options.device)
        .map_err(|e| ServeError::Startup(e.to_string()))?;
    // A hub id becomes its snapshot folder in the Hugging Face cache (downloaded there when online).
    let model =
        dept_hub::model_folder(&options.model).map_err(|e| ServeError::Startup(e.to_string()))?;
    let model_dir = model.clone();
    let load_backbone = move || {
        dept_models::load_backbone(&model, device).map_err(|e| ServeError::Startup(e.to_string()))
    };
    let tokenizer = TextTokenizer::from_model_dir(&model_dir)
        .map_err(|e| ServeError::Startup(e.to_string()))?;
    let initial = match &options.adapters {
        Some(dir) => adapters::discover(dir)?,
        None => Vec::new(),
    };
    let count = initial.len();
    let metrics = Arc::new(Metrics::new());
    let model_name = options.model.display().to_string();
    let (engine, _thread) = engine::start(
        load_backbone,
        model_name.clone(),
        initial,
        options.engine.clone(),
        metrics.clone(),
    )?;
    let state = Arc::new(AppState::new(
        engine,
        Arc::new(tokenizer),
        metrics,
        model_name,
        options.admin_token.clone(),
        options.adapter_root.clone().or(options.adapters.clone()),
        options.request_timeout,
    ));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| ServeError::Startup(format!("cannot start the async runtime: {e}")))?;
    runtime.block_on(run(options, state, count, ready))
}

async fn run(
    options: ServeOptions,
    state: Arc<AppState>,
    adapters: usize,
    ready: impl FnOnce(SocketAddr, usize),
) -> Result<Stopped, ServeError> {
    let address = SocketAddr::new(options.host, options.port);
    let listener = tokio::net::TcpListener::bind(address)
        .await
        .map_err(|e| ServeError::Startup(format!("cannot listen on {address}: {e}")))?;
    let bound = listener
        .local_addr()
        .map_err(|e| ServeError::Startup(format!("cannot read the listening address: {e}")))?;
    let app = routes::router(state.clone(), options.max_body_bytes);
    let stopping = Arc::new(Notify::new());
    let signal = {
        let state = state.clone();
        let stopping = stopping.clone();
        async move {
            shutdown_signal().await;
            tracing::info!("shutting down: finishing the requests in flight");
            state.draining.store(true, Ordering::SeqCst);
            stopping.notify_one();
        }
    };
    ready(bound, adapters);
    let server = axum::serve(listener, app).with_graceful_shutdown(signal);
    let grace = options.shutdown_grace;
    let deadline = async {
        stopping.notified().await;
        tokio::time::sleep(grace).await;
    };
    tokio::select! {
        served = server => {
            served.map_err(|e| ServeError::Startup(format!("the server failed: {e}")))?;
            Ok(Stopped { cut_short: false })
        }
        () = deadline => {
            tracing::warn!(
                "requests were still in flight {} s after the signal: stopping without them",
                grace.as_secs()
            );
            Ok(Stopped { cut_short: true })
        }
    }
}

/// The first SIGTERM or SIGINT.
async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut terminate =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(signal) => signal,
                Err(error) => {
                    tracing::warn!("cannot watch SIGTERM ({error}); SIGINT still stops the server");
                    let _ = interrupt.await;
                    return;
                }
            };
        tokio::select! {
            _ = interrupt => {}
            _ = terminate.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = interrupt.await;
    }
}
