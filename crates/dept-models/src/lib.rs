//! Frozen backbones for DePT, loaded from Hugging Face checkpoint folders.
//!
//! This crate is what the adapter runs on. A backbone knows nothing of tasks or of the adapter's training: it
//! embeds token ids, runs on input embeddings plus an attention mask (which is where a [`dept_core`] adapter plugs
//! in), returns loss and logits, and decodes greedily. Training, evaluation, serving and the benchmarks all reach a
//! model through [`PromptedModel`], and load it through the [`registry`].
//!
//! # Main types
//!
//! - [`Backbone`]: the interface every model implements; [`Backbone::architecture`] says how source and target
//!   meet it.
//! - [`Architecture`] ([`layout`]): the one place that knows what an encoder-decoder and a decoder-only model each
//!   expect (source budget, target encoding, padded rows for training and decoding, the adapter's positions, the
//!   prompt's labels, PEFT's task type). Callers ask it instead of matching on it.
//! - [`PromptedModel`]: a backbone with a DePT adapter in front, the one path every caller runs.
//! - [`BackboneKind`] and [`BACKBONES`] ([`registry`]): each kind of backbone declared once, with its
//!   `model_type`s, loader, architecture, tiny random model and benchmark shapes; [`load_backbone`] and
//!   [`registry::load_vision_language`] (CLIP-T5) choose from it.
//! - The models, one file each: [`t5::T5`] (v1, v1.1 / Flan), [`gpt2::Gpt2`] (over rust-bert) and [`llama::Llama`]
//!   as [`causal::CausalLm`]s that [`decoder_only::DecoderOnly`] makes backbones; [`clip::ClipVision`],
//!   [`features`] and [`clip_t5::ClipT5`]: CLIP's vision tower, the feature files it writes once, and T5 reading
//!   those features as visual tokens (the paper's CLIP-T5).
//! - [`layers`]: what several models share (RMS norm, attention masks, the fp32 upcast of 16-bit work).
//! - [`checkpoint`]: the Hugging Face folder layout (`config.json`, `model.safetensors`, `tokenizer.json`) and
//!   tensor matching by checkpoint name; [`tiny`]: tiny random models in that layout for tests.
//! - [`TextTokenizer`]: `tokenizer.json` encoding and decoding as the official training code does it.
//! - [`ModelError`] and [`ConfigIssue`]: every failure, each cause worded once.
//!
//! # Adding a backbone
//!
//! Adding a backbone is one new file plus one registry line: the file holds the model (its config read from
//! `config.json`, its modules under the checkpoint's tensor names, built from [`layers`]), implements
//! [`Backbone`] (or [`causal::CausalLm`], which [`decoder_only::DecoderOnly`] turns into one) and declares its
//! `pub const KIND: BackboneKind`; the line is `&new_model::KIND` in [`BACKBONES`], beside the file's `pub mod`
//! line in this file. Nothing outside this crate changes: loading a folder, batching, the adapter's positions,
//! decoding, `dept tiny-model --arch` and the efficiency study's `--shape` all read the registry.
//!
//! Mistral, for example, is Llama's decoder with sliding-window attention. `mistral.rs` would read a `config.json`
//! of `model_type` "mistral" (Llama's fields plus `sliding_window`), build the embeddings, decoder layers of
//! grouped-query attention with rotary positions and the final norm under Mistral's tensor names (the same as
//! Llama's), take its RMS norms from [`layers::RmsNorm`] with [`layers::NormCast::ToInput`] and its mask from
//! [`layers::causal_padding_bias`] with the keys further back than the window also hidden, and implement
//! [`causal::CausalLm`], so that [`decoder_only::DecoderOnly`] makes it a backbone of
//! [`Architecture::DecoderOnly`]. Its `KIND` would name `model_types: &["mistral"]`, the loader, a tiny recipe
//! that needs a tokenizer (as Llama's, through [`tiny::required_tokenizer`] and [`tiny::copy_tokenizer`]) and a
//! shape "mistral-7b"; then `pub mod mistral;` and `&mistral::KIND` in [`BACKBONES`]. That is one new file and one
//! edited file (this one). One caveat of today's code: Llama's attention and decoder layer are private to
//! `llama.rs`, so a Mistral that reuses them rather than copying them would first move them to [`layers`].

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
