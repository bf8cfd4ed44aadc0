//! The DePT method itself, independent of any model.
//!
//! Decomposed Prompt Tuning (Shi & Lipani, ICLR 2024) replaces prompt tuning's `l` soft tokens with a shorter
//! prompt `P_s` (m×d) plus a low-rank pair `A` (s×r), `B` (r×d) whose product updates the frozen input embeddings
//! position by position, at the same parameter count: `l·d = m·d + (s+d)·r`.
//!
//! - [`DeptConfig`]: m, r, s, d, `lora_alpha`, initialisation; serialised as the official `adapter_config.json`.
//! - [`budget`]: solve the parameter budget for m or r, list every exact (m, r) pair.
//! - [`DecomposedPrompt`]: the trainable tensors, `apply(embeds, mask)`, optimiser groups, adapter files.
//!
//! Prompt tuning (PT) is the case `r = 0`: one code path serves both, so comparisons are like for like.

pub mod atomic;
pub mod budget;
mod config;
mod error;
mod prompt;

pub use config::{
    DeptConfig, PromptInit, ADAPTER_CONFIG_FILE, ADAPTER_WEIGHTS_FILE, DEFAULT_INIT_TEXT,
};
pub use error::CoreError;
pub use prompt::{DecomposedPrompt, PAIR_GROUP, PROMPT_GROUP};
