//! # dept-serve: many DePT and prompt-tuning adapters on one frozen backbone, over HTTP
//!
//! A DePT adapter changes only the input embeddings (m prompt rows in front, `A·B` added to the first s
//! positions), so rows of different adapters share every matrix product of the backbone. This crate serves any
//! number of adapters of one T5, GPT-2 or Llama backbone in one process, mixing requests for different adapters
//! in one forward pass and batching decoding at the iteration level: a request joins the running batch at the
//! next decoder step and leaves when it finishes.
//!
//! - [`engine`]: the model thread (libtorch never runs on the async runtime), its queue and batching policies;
//! - [`adapters`]: finding, loading, checking, naming and hashing adapter folders;
//! - [`routes`] and [`api`]: the HTTP routes (OpenAI's `/v1/completions` and `/v1/models`, dept's `/v1/predict`,
//!   admin load and unload, health, readiness, Prometheus `/metrics`, `/openapi.json`) and their JSON;
//! - [`server`]: start-up, the listener, graceful shutdown on SIGTERM/SIGINT;
//! - [`metrics`], [`openapi`], [`predict`] (task formatting for `/v1/predict`), [`ServeError`].

pub mod adapters;
pub mod api;
pub mod engine;
mod error;
pub mod metrics;
pub mod openapi;
pub mod predict;
pub mod routes;
pub mod server;

pub use engine::{EngineHandle, EngineOptions, Policy};
pub use error::ServeError;
pub use server::{serve, ServeOptions};
