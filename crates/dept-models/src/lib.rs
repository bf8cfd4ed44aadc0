//! Frozen backbones for DePT, loaded from Hugging Face checkpoint folders.
//!
//! A backbone knows nothing of tasks or of the adapter: it embeds token ids, runs on input embeddings plus an
//! attention mask (which is where a [`dept_core`] adapter plugs in), returns loss and logits, and decodes greedily.
//!
//! - [`Backbone`]: the interface every model implements.
//! - [`PromptedModel`]: a backbone with a DePT adapter in front, the one path every caller runs.
//! - [`t5::T5`]: T5 v1 (ReLU, tied embeddings) and v1.1 / Flan (gated-GELU, untied), our own module on tch.
//! - [`clip::ClipVision`], [`features`] and [`clip_t5::ClipT5`]: CLIP's vision tower, the feature files it writes
//!   once, and T5 reading those features as visual tokens (the paper's CLIP-T5).
//! - [`checkpoint`]: the Hugging Face folder layout (`config.json`, `model.safetensors`, `tokenizer.json`).
//! - [`TextTokenizer`]: `tokenizer.json` encoding and decoding as the official training code does it.

pub mod backbone;
pub mod causal;
pub mod checkpoint;
pub mod clip;
pub mod clip_t5;
pub mod decoder_only;
mod error;
pub mod features;
pub mod gpt2;
pub mod image_input;
pub mod layers;
pub mod layout;
pub mod llama;
pub mod prompted;
pub mod registry;
pub mod t5;
pub mod tiny;
pub mod tokenizer;

pub use backbone::{Backbone, BackboneOutput};
pub use error::{ConfigIssue, ModelError};
pub use layout::{Architecture, PaddedRows};
pub use prompted::PromptedModel;
pub use registry::{load_backbone, BackboneKind};
pub use tokenizer::{clean_up_tokenization_spaces, TextTokenizer};

/// Every kind of backbone, one line each: what [`load_backbone`], the tiny models and the benchmark shapes choose
/// from ([`registry`]).
pub static BACKBONES: &[&BackboneKind] = &[&t5::KIND, &gpt2::KIND, &llama::KIND];
