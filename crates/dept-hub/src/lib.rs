//! # dept-hub: models from the Hugging Face hub, through the user's own cache
//!
//! `--model t5-base` (or `model: google/flan-t5-base@<revision>` in a config) names a hub model. It resolves from
//! the standard cache first ([`HubCache`]: `HF_HUB_CACHE`, `HF_HOME`, the `huggingface_hub` layout, so models
//! other tools downloaded are found and ours are found by them); online, the hub is asked which commit the
//! revision is and the missing files are downloaded into the cache ([`Hub`]: `HF_ENDPOINT`, `HF_TOKEN`), resumed
//! after a cut connection and checked against their ETags (SHA-256 for LFS files) before they enter it;
//! `HF_HUB_OFFLINE=1` uses the cache alone. Only what a backbone reads is fetched: `config.json`,
//! `tokenizer.json` and safetensors weights.

mod cache;
mod download;
mod error;
pub mod fixture;
mod resolve;
mod spec;

pub use cache::HubCache;
pub use download::{FileMeta, Hub};
pub use error::HubError;
pub use resolve::{model_folder, offline_from_env, Resolver};
pub use spec::{RepoKind, RepoSpec};
