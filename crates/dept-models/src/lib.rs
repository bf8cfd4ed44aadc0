//! Frozen backbones for DePT, loaded from Hugging Face checkpoint folders.
//!
//! This crate is what the adapter runs on. A backbone knows nothing of tasks or of the adapter's training: it
//! embeds token ids, runs on input embeddings plus an attention mask (which is where a [`dept_core`] adapter plugs
//! in), returns loss and logits, and decodes (greedily, or by beam search: [`beam`]). Training, evaluation, serving and the benchmarks all reach a
//! model through [`PromptedModel`], and load it through the [`registry`].
//!
//! # Main types
//!
//! - [`Backbone`]: the interface every model implements; [`Backbone::architecture`] says how source and target
//!   meet it.
//! - [`Architecture`] ([`layout`]): the one place that knows what an encoder-decoder and a decoder-only model each
//!   expect (source budget, target encoding, padded rows for training and decoding, the adapter's positions, the
//!   prompt's labels, PEFT's task type). Callers ask it instead of matching on it.
//! - [`PromptedModel`]: a backbone with a DePT adapter in front, the one path every caller runs;
//!   [`prompted::embed_mixed`] the same for a batch whose rows each have their own adapter (serving).
//! - [`GenerationConfig`] ([`beam`]): how to decode (greedy, beams, length penalty, early stopping, no repeated
//!   n-grams), as transformers' `generate` defines it; [`beam::generate`] runs it over any backbone.
//! - [`DecodingRows`] ([`rows`]): iteration-level decoding, rows that join and leave a running batch between two
//!   steps ([`Backbone::start_rows`], [`Backbone::step_rows`]).
//! - [`BackboneKind`] and [`BACKBONES`] ([`registry`]): each kind of backbone declared once, in its own file, with
//!   its `model_type`s, loader, architecture, config key of its width, tiny random model and benchmark shapes;
//!   [`load_backbone`] and [`registry::hidden_size_of`] choose from it. [`VisionLanguageKind`] and
//!   [`VISION_LANGUAGE_BACKBONES`] do the same for backbones reading visual features on a kind's folder (CLIP-T5,
//!   assembled in [`clip_t5`]), which [`registry::load_vision_language`] chooses from.
//! - The models, one file each: [`t5::T5`] (v1, v1.1 / Flan), [`gpt2::Gpt2`] (over rust-bert) and [`llama::Llama`]
//!   as [`causal::CausalLm`]s that [`decoder_only::DecoderOnly`] makes backbones; [`clip::ClipVision`],
//!   [`features`] and [`clip_t5::ClipT5`]: CLIP's vision tower, the feature files it writes once, and T5 reading
//!   those features as visual tokens (the paper's CLIP-T5).
//! - [`layers`]: what several models share (RMS norm, attention masks, the fp32 upcast of 16-bit work, `nn.Linear`,
//!   rotary positions, and the Llama-family decoder layer of [`layers::decoder`]: grouped-query attention, SwiGLU).
//! - [`checkpoint`]: the Hugging Face folder layout (`config.json`, `model.safetensors`, `tokenizer.json`), read and
//!   written, and tensor matching by checkpoint name; [`tiny`]: tiny random models in that layout for tests, each
//!   written by its model's file and gathered there.
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
//! of `model_type` "mistral" (Llama's fields plus `sliding_window`) into a `MistralConfig`, and build the same
//! modules under the same tensor names as Llama from the shared pieces: the embeddings, `num_hidden_layers`
//! [`layers::DecoderLayer`]s (grouped-query attention with rotary positions and a SwiGLU MLP, from the config's
//! [`layers::DecoderLayerShape`]), a [`layers::RotaryEmbedding`], the final norm from
//! [`layers::DecoderLayerShape::rms_norm`] and the output layer. The one computation of its own is the mask: it
//! starts from [`layers::causal_padding_bias`], hides the keys further back than the window too, and goes to every
//! layer in a [`layers::DecoderStep`]. It implements [`causal::CausalLm`] (embed, run the layers, norm, logits, as
//! `llama.rs` does), so that [`decoder_only::DecoderOnly`] makes it a backbone of [`Architecture::DecoderOnly`].
//! Its `KIND` would name `model_types: &["mistral"]`, `hidden_size_key: "hidden_size"`, the loader, a tiny recipe
//! that needs a tokenizer (as Llama's: [`registry::TinyModel::required_tokenizer`],
//! [`tokenizer::end_of_text_id`], [`registry::TINY_INITIALIZER_RANGE`], [`checkpoint::copy_tokenizer`]) and a shape
//! "mistral-7b"; then `pub mod mistral;` and `&mistral::KIND` in [`BACKBONES`]. That is one new file and one edited
//! file (this one): the registry module names no kind, and `dept tiny-model --arch mistral` finds the tiny recipe
//! through the registry.

pub mod backbone;
pub mod beam;
pub mod cancel;
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
pub mod rows;
pub mod t5;
pub mod tiny;
pub mod tokenizer;

pub use backbone::{Backbone, BackboneOutput};
pub use beam::{EarlyStopping, GenerationConfig};
pub use error::{ConfigIssue, ModelError};
pub use layout::{Architecture, PaddedRows};
pub use prompted::PromptedModel;
pub use registry::{load_backbone, BackboneKind, VisionLanguageKind};
pub use rows::DecodingRows;
pub use tokenizer::{clean_up_tokenization_spaces, TextTokenizer};

/// Every kind of backbone, one line each: what [`load_backbone`], the tiny models and the benchmark shapes choose
/// from ([`registry`]).
pub static BACKBONES: &[&BackboneKind] = &[&t5::KIND, &gpt2::KIND, &llama::KIND];

/// Every backbone that reads visual features after a kind's text, one line each: what
/// [`registry::load_vision_language`] chooses from.
pub static VISION_LANGUAGE_BACKBONES: &[&VisionLanguageKind] = &[&clip_t5::KIND];
