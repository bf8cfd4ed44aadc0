//! T5's tiny random models (its [`TinyRecipe`](crate::registry::TinyRecipe)): a real folder with a word-level
//! tokenizer over given words, or with an existing `tokenizer.json`.

use std::path::Path;

use serde_json::json;
use tch::Device;

use crate::checkpoint;
use crate::registry::TinyModel;
use crate::t5::{T5Config, T5};
use crate::ModelError;

/// `<pad>`, `</s>`, `<unk>` come first, as in T5's vocabulary (ids 0, 1, 2).
pub const SPECIAL_TOKENS: [&str; 3] = ["<pad>", "</s>", "<unk>"];

/// The feed-forward layouts a tiny T5 can take, the default first.
pub(super) const FEED_FORWARD_VARIANTS: &[&str] = &["gated-gelu", "relu"];

/// T5's tiny recipe: the word-level tokenizer over the request's words unless a `tokenizer.json` is given.
pub(super) fn write_recipe(model: &TinyModel) -> Result<(), ModelError> {
    let feed_forward_proj = model.variant.unwrap_or(FEED_FORWARD_VARIANTS[0]);
    let (dir, d_model, seed) = (model.dir, model.d_model, model.seed);
    match model.tokenizer {
        Some(tokenizer) => {
            write_tiny_t5_with_tokenizer(dir, tokenizer, d_model, feed_forward_proj, seed)
        }
        None => write_tiny_t5(dir, model.words, d_model, feed_forward_proj, seed),
    }
}

/// Writes `config.json`, `model.safetensors` and a word-level `tokenizer.json` (lower-cased, split on
/// whitespace and punctuation, `</s>` appended) whose vocabulary is `words` after the special tokens.
pub fn write_tiny_t5(
    dir: &Path,
    words: &[&str],
    d_model: i64,
    feed_forward_proj: &str,
    seed: i64,
) -> Result<(), ModelError> {
    let mut vocab: Vec<String> = SPECIAL_TOKENS.iter().map(|s| s.to_string()).collect();
    for word in words {
        let word = word.to_lowercase();
        if !vocab.contains(&word) {
            vocab.push(word);
        }
    }
    let config = tiny_config(dir, vocab.len() as i64, d_model, feed_forward_proj)?;
    tch::manual_seed(seed);
    write_random_weights(dir, &config)?;
    let tokenizer = word_level_tokenizer(&vocab);
    checkpoint::write_file(
        &dir.join(checkpoint::TOKENIZER_FILE),
        tokenizer.to_string().as_bytes(),
    )
}

/// A tiny random T5 that uses an existing `tokenizer.json` (e.g. the real T5 vocabulary), so real data can be
/// pushed through the whole pipeline without pretrained weights. The vocabulary is padded to a multiple of 128,
/// as T5's 32 128.
pub fn write_tiny_t5_with_tokenizer(
    dir: &Path,
    tokenizer_json: &Path,
    d_model: i64,
    feed_forward_proj: &str,
    seed: i64,
) -> Result<(), ModelError> {
    let tokenizer = crate::TextTokenizer::from_file(tokenizer_json)?;
    let vocab_size = (tokenizer.vocab_size() as i64 + 127) / 128 * 128;
    let config = tiny_config(dir, vocab_size, d_model, feed_forward_proj)?;
    tch::manual_seed(seed);
    write_random_weights(dir, &config)?;
    checkpoint::copy_tokenizer(tokenizer_json, dir)
}

/// A random T5 saved in `dir`. transformers' initialisation folds attention's `1/√d_kv` into `q` (std
/// `(d·d_kv)^-½`), which suits models that are then pretrained; a tiny model trained from random weights in a test or
/// the quickstart learns the synthetic task far sooner with queries at the usual scale (`q` times `√d_kv`).
fn write_random_weights(dir: &Path, config: &T5Config) -> Result<(), ModelError> {
    let t5 = T5::new_random(config, Device::Cpu)?;
    let scale = (config.d_kv as f64).sqrt();
    tch::no_grad(|| {
        for (name, mut weight) in t5.var_store().variables() {
            if name.ends_with(".q.weight") {
                let _ = weight.g_mul_scalar_(scale);
            }
        }
    });
    t5.save(dir)
}

fn tiny_config(
    dir: &Path,
    vocab_size: i64,
    d_model: i64,
    feed_forward_proj: &str,
) -> Result<T5Config, ModelError> {
    T5Config::from_json(
        &dir.join("config.json"),
        json!({
            "vocab_size": vocab_size, "d_model": d_model, "d_kv": (d_model / 4).max(1), "d_ff": 2 * d_model,
            "num_layers": 2, "num_heads": 4, "relative_attention_num_buckets": 8,
            "relative_attention_max_distance": 32, "dropout_rate": 0.1, "feed_forward_proj": feed_forward_proj,
            "tie_word_embeddings": feed_forward_proj == "relu", "pad_token_id": 0, "eos_token_id": 1,
            "decoder_start_token_id": 0
        }),
    )
}

fn word_level_tokenizer(vocab: &[String]) -> serde_json::Value {
    let ids: serde_json::Map<String, serde_json::Value> = vocab
        .iter()
        .enumerate()
        .map(|(i, w)| (w.clone(), json!(i)))
        .collect();
    let added: Vec<serde_json::Value> = SPECIAL_TOKENS
        .iter()
        .enumerate()
        .map(|(i, t)| {
            json!({"id": i, "content": t, "single_word": false, "lstrip": false, "rstrip": false,
                   "normalized": false, "special": true})
        })
        .collect();
    json!({
        "version": "1.0",
        "truncation": null,
        "padding": null,
        "added_tokens": added,
        "normalizer": {"type": "Lowercase"},
        "pre_tokenizer": {"type": "Whitespace"},
        "post_processor": {
            "type": "TemplateProcessing",
            "single": [{"Sequence": {"id": "A", "type_id": 0}}, {"SpecialToken": {"id": "</s>", "type_id": 0}}],
            "pair": [{"Sequence": {"id": "A", "type_id": 0}}, {"SpecialToken": {"id": "</s>", "type_id": 0}},
                     {"Sequence": {"id": "B", "type_id": 0}}, {"SpecialToken": {"id": "</s>", "type_id": 0}}],
            "special_tokens": {"</s>": {"id": "</s>", "ids": [1], "tokens": ["</s>"]}}
        },
        "decoder": null,
        "model": {"type": "WordLevel", "vocab": ids, "unk_token": "<unk>"}
    })
}
