//! # dept-core: the DePT method itself, independent of any model
//!
//! Decomposed Prompt Tuning (Shi & Lipani, ICLR 2024) replaces prompt tuning's `l` soft tokens with a shorter
//! prompt `P_s` (m×d) plus a low-rank pair `A` (s×r), `B` (r×d) whose product updates the frozen input embeddings
//! position by position, at the same parameter count: `l·d = m·d + (s+d)·r`. This crate holds that method and
//! nothing else: the backbones that read the prompted embeddings are `dept-models`, training is `dept-train`.
//! Prompt tuning (PT) is the case `r = 0`: one code path serves both, so comparisons are like for like.
//!
//! ## Main types
//!
//! - [`DeptConfig`]: m, r, s, d, `lora_alpha`, initialisation ([`PromptInit`]); serialised as the official
//!   `adapter_config.json` ([`ADAPTER_CONFIG_FILE`]), so adapters move to and from the Python DePT/PEFT code.
//! - [`budget::Budget`]: solve the parameter budget for m or r ([`budget::Split`], with [`budget::Rounding`]), list
//!   every exact (m, r) pair.
//! - [`DecomposedPrompt`]: the trainable tensors, [`DecomposedPrompt::apply`] (word embeddings → prompted
//!   embeddings and mask), their optimiser groups ([`PROMPT_GROUP`], [`PAIR_GROUP`]), adapter files
//!   ([`ADAPTER_WEIGHTS_FILE`], safetensors with PEFT's tensor names).
//! - [`official`]: the official code's `adapter_model.bin` (a `torch.save` archive), read by a restricted reader
//!   that runs no code, and written back; `dept import official` / `dept export official`.
//! - [`CoreError`]: the crate's one error type; [`atomic`]: files written whole or not at all.
//!
//! `examples/budget.rs` in the repository prints the paper's T5-base shapes with [`budget::Budget`].

pub mod atomic;
pub mod budget;
mod config;
mod error;
pub mod official;
mod prompt;

pub use config::{
    DeptConfig, PromptInit, ADAPTER_CONFIG_FILE, ADAPTER_WEIGHTS_FILE, DEFAULT_INIT_TEXT,
};
pub use error::CoreError;
pub use prompt::{DecomposedPrompt, PAIR_GROUP, PROMPT_GROUP};
