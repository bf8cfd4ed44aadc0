//! Tiny random checkpoints in the real Hugging Face folder layout, for tests and the offline quickstart: T5
//! ([`write_tiny_t5`], [`write_tiny_t5_with_tokenizer`]), GPT-2 ([`write_tiny_gpt2`]) and Llama
//! ([`write_tiny_llama`]).
//!
//! No pretrained weights can be downloaded in CI or on an air-gapped machine, so tests build models with this
//! and then load them through the same code path as a real checkpoint ([`crate::t5::T5::load`],
//! [`crate::load_backbone`]).

use std::path::Path;

use serde_json::json;
use tch::Device;

use crate::gpt2::{gpt2_shape, Gpt2, Gpt2Config};
use crate::llama::{Llama, LlamaConfig};
use crate::registry::TinyModel;
use crate::t5::{T5Config, T5};
use crate::ModelError;

/// `<pad>`, `</s>`, `<unk>` come first, as in T5's vocabulary (ids 0, 1, 2).
pub const SPECIAL_TOKENS: [&str; 3] = ["<pad>", "</s>", "<unk>"];

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
    let path = dir.join(crate::checkpoint::TOKENIZER_FILE);
    dept_core::atomic::write_atomically(&path, |tmp| std::fs::write(tmp, tokenizer.to_string()))
        .map_err(|source| ModelError::Io {
            path,
            cause: source,
        })
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
    copy_tokenizer(tokenizer_json, dir)
}

/// A tiny random GPT-2 (`GPT2LMHeadModel` layout: `config.json`, `model.safetensors` with `transformer.*` names,
/// tied output layer) that uses an existing `tokenizer.json` (e.g. GPT-2's byte-level BPE), so real data can be
/// pushed through the decoder-only pipeline without pretrained weights. Width `d_model` (even), 2 layers, 2 heads,
/// 1 024 positions, the vocabulary exactly the tokenizer's, end of sequence (and padding) the tokenizer's
/// [`end_of_text_id`]; transformers' initialisation at [`TINY_INITIALIZER_RANGE`].
pub fn write_tiny_gpt2(
    dir: &Path,
    tokenizer_json: &Path,
    d_model: i64,
    seed: i64,
) -> Result<(), ModelError> {
    let model = tiny_gpt2(tokenizer_json, d_model, seed)?;
    model.save(dir)?;
    copy_tokenizer(tokenizer_json, dir)
}

/// A tiny random Llama (`LlamaForCausalLM` layout, untied output layer) that uses an existing `tokenizer.json`.
/// Width `d_model` (a multiple of 8), 2 layers, 4 query heads sharing 2 key/value heads (grouped-query attention),
/// head_dim `d_model / 4`, SwiGLU width `2·d_model`, 2 048 positions, the vocabulary exactly the tokenizer's. The
/// end-of-sequence id is the tokenizer's [`end_of_text_id`]: `<|endoftext|>` with GPT-2's tokenizer, which has
/// no `</s>`; it is also the beginning-of-sequence id (as in GPT-2) and, there being no pad token, padding.
/// transformers' initialisation at [`TINY_INITIALIZER_RANGE`].
pub fn write_tiny_llama(
    dir: &Path,
    tokenizer_json: &Path,
    d_model: i64,
    seed: i64,
) -> Result<(), ModelError> {
    let model = tiny_llama(tokenizer_json, d_model, seed)?;
    model.save(dir)?;
    copy_tokenizer(tokenizer_json, dir)
}

/// A tiny random CLIP vision tower in the `CLIPVisionModel` layout (`config.json` with model_type
/// `clip_vision_model`, `model.safetensors` with `vision_model.*`, and a `preprocessor_config.json` resizing and
/// cropping to its 32-pixel input): width `hidden_size` (a multiple of 4), 2 layers, 4 heads, 8-pixel patches (16
/// patch tokens), quick-GELU, transformers' initialisation. For feature extraction on generated images without
/// pretrained weights.
pub fn write_tiny_clip(dir: &Path, hidden_size: i64, seed: i64) -> Result<(), ModelError> {
    let config = crate::clip::ClipVisionConfig {
        hidden_size,
        intermediate_size: 2 * hidden_size,
        num_hidden_layers: 2,
        num_attention_heads: 4,
        num_channels: 3,
        image_size: 32,
        patch_size: 8,
        hidden_act: crate::clip::ClipActivation::QuickGelu,
        layer_norm_eps: 1e-5,
        attention_dropout: 0.0,
        initializer_range: 0.02,
        initializer_factor: 1.0,
    };
    tch::manual_seed(seed);
    let model = crate::clip::ClipVision::new_random(&config, tch::Device::Cpu)?;
    model.save(dir)?;
    let preprocessor = serde_json::json!({
        "image_processor_type": "CLIPImageProcessor",
        "do_resize": true, "size": {"shortest_edge": 32}, "resample": 3,
        "do_center_crop": true, "crop_size": {"height": 32, "width": 32},
        "do_rescale": true, "rescale_factor": 1.0 / 255.0, "do_normalize": true,
        "image_mean": [0.48145466, 0.4578275, 0.40821073],
        "image_std": [0.26862954, 0.26130258, 0.27577711],
        "do_convert_rgb": true,
    });
    let path = dir.join(crate::image_input::PREPROCESSOR_CONFIG_FILE);
    dept_core::atomic::write_atomically(&path, |tmp| {
        std::fs::write(
            tmp,
            serde_json::to_string_pretty(&preprocessor).unwrap_or_default(),
        )
    })
    .map_err(|source| ModelError::Io {
        path,
        cause: source,
    })
}

/// The end-of-sequence token of a `tokenizer.json`: the first of `<|endoftext|>` (GPT-2), `</s>` (T5, Llama 1–2),
/// `<|end_of_text|>` (Llama 3) and `<eos>` (Gemma) that it has.
pub fn end_of_text_id(tokenizer_json: &Path) -> Result<i64, ModelError> {
    const CANDIDATES: [&str; 4] = ["<|endoftext|>", "</s>", "<|end_of_text|>", "<eos>"];
    let tokenizer =
        tokenizers::Tokenizer::from_file(tokenizer_json).map_err(|e| ModelError::Tokenizer {
            path: tokenizer_json.to_path_buf(),
            message: e.to_string(),
        })?;
    CANDIDATES
        .iter()
        .find_map(|token| tokenizer.token_to_id(token))
        .map(i64::from)
        .ok_or_else(|| ModelError::Tokenizer {
            path: tokenizer_json.to_path_buf(),
            message: format!(
                "no end-of-sequence token (looked for {}); a decoder-only model needs one",
                CANDIDATES.join(", ")
            ),
        })
}

/// `initializer_range` of the tiny decoder-only models, ten times transformers' 0.02. Their output layer is a
/// `[vocab, d]` matrix of that standard deviation applied to a normalised state of norm √d, so one logit can move by
/// about `std · d` at most: 0.6 at d = 32 and std 0.02, which keeps the loss near ln 50 257 ≈ 10.8 whatever the
/// adapter learns; at 0.2 a short test run shows the loss falling (≈ 12 to 9 in 30 steps on RTE).
pub const TINY_INITIALIZER_RANGE: f64 = 0.2;

/// The random GPT-2 [`write_tiny_gpt2`] saves.
fn tiny_gpt2(tokenizer_json: &Path, d_model: i64, seed: i64) -> Result<Gpt2, ModelError> {
    let vocab_size = crate::TextTokenizer::from_file(tokenizer_json)?.vocab_size() as i64;
    let eos = end_of_text_id(tokenizer_json)?;
    if d_model <= 0 || d_model % 2 != 0 {
        return Err(ModelError::Input(format!(
            "a tiny GPT-2 has 2 heads: d_model must be a positive even number, got {d_model}"
        )));
    }
    let config = Gpt2Config {
        vocab_size,
        n_embd: d_model,
        n_layer: 2,
        n_head: 2,
        eos_token_id: eos,
        pad_token_id: None,
        initializer_range: TINY_INITIALIZER_RANGE,
        ..gpt2_shape("gpt2")?
    };
    tch::manual_seed(seed);
    Gpt2::new_random(&config, Device::Cpu)
}

/// The random Llama [`write_tiny_llama`] saves.
fn tiny_llama(tokenizer_json: &Path, d_model: i64, seed: i64) -> Result<Llama, ModelError> {
    let vocab_size = crate::TextTokenizer::from_file(tokenizer_json)?.vocab_size() as i64;
    // GPT-2's tokenizer (the one the tests use) has no `</s>`: `<|endoftext|>` ends sequences instead.
    let eos = end_of_text_id(tokenizer_json)?;
    if d_model <= 0 || d_model % 8 != 0 {
        return Err(ModelError::Input(format!(
            "a tiny Llama has 4 heads of an even head_dim: d_model must be a positive multiple of 8, got {d_model}"
        )));
    }
    let config = LlamaConfig {
        vocab_size,
        hidden_size: d_model,
        intermediate_size: 2 * d_model,
        num_hidden_layers: 2,
        num_attention_heads: 4,
        num_key_value_heads: 2,
        head_dim: d_model / 4,
        rms_norm_eps: 1e-5,
        rope_theta: 10000.0,
        max_position_embeddings: 2048,
        tie_word_embeddings: false,
        attention_bias: false,
        mlp_bias: false,
        attention_dropout: 0.0,
        initializer_range: TINY_INITIALIZER_RANGE,
        bos_token_id: Some(eos),
        eos_token_id: eos,
        pad_token_id: None,
    };
    tch::manual_seed(seed);
    Llama::new_random(&config, Device::Cpu)
}

/// The `tokenizer.json` a tiny model is asked for, refused when absent (decoder-only models have no vocabulary of
/// their own: its size and end-of-sequence id come from the tokenizer).
pub fn required_tokenizer<'a>(model: &TinyModel<'a>) -> Result<&'a Path, ModelError> {
    model.tokenizer.ok_or_else(|| {
        ModelError::Input(
            "a tiny decoder-only model needs a tokenizer.json: its vocabulary size and end-of-sequence id come \
             from it"
                .into(),
        )
    })
}

/// `<dir>/tokenizer.json`, a copy of `tokenizer_json` written atomically (with the folder's usual permissions,
/// not those of the source, which may be a read-only shared file).
pub fn copy_tokenizer(tokenizer_json: &Path, dir: &Path) -> Result<(), ModelError> {
    let text = std::fs::read(tokenizer_json).map_err(|source| ModelError::Io {
        path: tokenizer_json.to_path_buf(),
        cause: source,
    })?;
    let target = dir.join(crate::checkpoint::TOKENIZER_FILE);
    dept_core::atomic::write_atomically(&target, |tmp| std::fs::write(tmp, &text)).map_err(
        |source| ModelError::Io {
            path: target,
            cause: source,
        },
    )
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::causal::CausalLm;
    use crate::{Architecture, Backbone, TextTokenizer};
    use tch::{Kind, Tensor};

    /// A word-level `tokenizer.json` shaped like GPT-2's: no special tokens added to encodings, `<|endoftext|>`
    /// (id 6, the last) its only special token.
    fn gpt2_like_tokenizer(dir: &Path) -> std::path::PathBuf {
        let words = ["the", "cat", "sat", "0", "1", "on"];
        let mut vocab: serde_json::Map<String, serde_json::Value> = words
            .iter()
            .enumerate()
            .map(|(i, w)| (w.to_string(), json!(i)))
            .collect();
        vocab.insert("<|endoftext|>".into(), json!(6));
        let tokenizer = json!({
            "version": "1.0", "truncation": null, "padding": null,
            "added_tokens": [{"id": 6, "content": "<|endoftext|>", "single_word": false, "lstrip": false,
                              "rstrip": false, "normalized": false, "special": true}],
            "normalizer": null, "pre_tokenizer": {"type": "Whitespace"}, "post_processor": null, "decoder": null,
            "model": {"type": "WordLevel", "vocab": vocab, "unk_token": "the"}
        });
        let path = dir.join("gpt2-like-tokenizer.json");
        std::fs::write(&path, tokenizer.to_string()).unwrap();
        path
    }

    fn logits(model: &dyn CausalLm) -> Tensor {
        let ids = Tensor::from_slice(&[6i64, 6, 0, 1, 2, 5, 0, 3, 4, 1]).view([2, 5]);
        let mask = Tensor::from_slice(&[0i64, 0, 1, 1, 1, 1, 1, 1, 1, 1]).view([2, 5]);
        let positions = crate::causal::positions_from_mask(&mask);
        model
            .forward_embeds(&model.embed(&ids), &mask, &positions, None, false)
            .unwrap()
    }

    fn files(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
            .collect();
        names.sort();
        names
    }

    fn safetensors_names(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = Tensor::read_safetensors(dir.join("model.safetensors"))
            .unwrap()
            .into_iter()
            .map(|(name, _)| name)
            .collect();
        names.sort();
        names
    }

    #[test]
    fn tiny_gpt2_folder_round_trips_with_identical_logits() {
        let dir = tempfile::tempdir().unwrap();
        let tokenizer = gpt2_like_tokenizer(dir.path());
        let out = dir.path().join("gpt2");
        let model = tiny_gpt2(&tokenizer, 16, 3).unwrap();
        model.save(&out).unwrap();
        copy_tokenizer(&tokenizer, &out).unwrap();
        assert_eq!(
            files(&out),
            ["config.json", "model.safetensors", "tokenizer.json"],
            "no temporary files left"
        );

        let config: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(out.join("config.json")).unwrap())
                .unwrap();
        assert_eq!(config["model_type"], "gpt2");
        assert_eq!(config["architectures"], json!(["GPT2LMHeadModel"]));
        assert_eq!(
            (
                &config["vocab_size"],
                &config["n_embd"],
                &config["n_layer"],
                &config["n_head"]
            ),
            (&json!(7), &json!(16), &json!(2), &json!(2))
        );
        assert_eq!(
            (&config["eos_token_id"], &config["bos_token_id"]),
            (&json!(6), &json!(6))
        );
        assert_eq!(config["n_positions"], 1024);
        assert!(
            config.get("n_ctx").is_none(),
            "transformers no longer writes n_ctx"
        );

        let names = safetensors_names(&out);
        assert!(names.contains(&"transformer.h.0.attn.c_attn.weight".to_string()));
        assert!(names.contains(&"transformer.wte.weight".to_string()));
        assert!(
            !names
                .iter()
                .any(|n| n.ends_with(".attn.bias") || n.starts_with("lm_head")),
            "causal-mask buffers and the tied head are not stored: {names:?}"
        );
        // 4 global tensors (wte, wpe, ln_f weight and bias) and 12 per layer, as transformers saves them.
        assert_eq!(names.len(), 4 + 2 * 12, "{names:?}");
        let weights = Tensor::read_safetensors(out.join("model.safetensors")).unwrap();
        let c_attn = &weights
            .iter()
            .find(|(n, _)| n == "transformer.h.1.attn.c_attn.weight")
            .unwrap()
            .1;
        assert_eq!(c_attn.size(), [16, 48], "Conv1D layout [in, out]");

        let loaded = Gpt2::load(&out, Device::Cpu).unwrap();
        assert_eq!(loaded.config(), model.config());
        assert!(logits(&loaded).equal(&logits(&model)), "identical logits");

        let backbone = crate::load_backbone(&out, Device::Cpu).unwrap();
        assert_eq!(backbone.architecture(), Architecture::DecoderOnly);
        assert_eq!((backbone.vocab_size(), backbone.hidden_size()), (7, 16));
        assert_eq!((backbone.eos_token_id(), backbone.pad_token_id()), (6, 6));
    }

    #[test]
    fn tiny_llama_folder_round_trips_with_identical_logits() {
        let dir = tempfile::tempdir().unwrap();
        let tokenizer = gpt2_like_tokenizer(dir.path());
        let out = dir.path().join("llama");
        let model = tiny_llama(&tokenizer, 32, 3).unwrap();
        model.save(&out).unwrap();
        copy_tokenizer(&tokenizer, &out).unwrap();
        assert_eq!(
            files(&out),
            ["config.json", "model.safetensors", "tokenizer.json"]
        );
        let config: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(out.join("config.json")).unwrap())
                .unwrap();
        assert_eq!(config["model_type"], "llama");
        assert_eq!(
            (
                &config["num_attention_heads"],
                &config["num_key_value_heads"],
                &config["head_dim"]
            ),
            (&json!(4), &json!(2), &json!(8)),
            "grouped-query attention"
        );
        assert_eq!(config["eos_token_id"], 6);
        assert_eq!(config["vocab_size"], 7);
        let names = safetensors_names(&out);
        for name in [
            "model.embed_tokens.weight",
            "model.layers.1.self_attn.k_proj.weight",
            "model.layers.0.mlp.gate_proj.weight",
            "model.norm.weight",
            "lm_head.weight",
        ] {
            assert!(
                names.contains(&name.to_string()),
                "{name} missing: {names:?}"
            );
        }
        let loaded = Llama::load(&out, Device::Cpu).unwrap();
        assert_eq!(loaded.config(), model.config());
        assert!(logits(&loaded).equal(&logits(&model)), "identical logits");
        let backbone = crate::load_backbone(&out, Device::Cpu).unwrap();
        assert_eq!(backbone.architecture(), Architecture::DecoderOnly);
        assert_eq!((backbone.eos_token_id(), backbone.pad_token_id()), (6, 6));
        assert_eq!(logits(&loaded).kind(), Kind::Float);
    }

    #[test]
    fn tiny_decoder_only_writers_check_their_inputs() {
        let dir = tempfile::tempdir().unwrap();
        let tokenizer = gpt2_like_tokenizer(dir.path());
        let out = dir.path().join("model");
        let err = write_tiny_gpt2(&out, &tokenizer, 15, 1)
            .unwrap_err()
            .to_string();
        assert!(err.contains("even") && err.contains("15"), "{err}");
        let err = write_tiny_llama(&out, &tokenizer, 20, 1)
            .unwrap_err()
            .to_string();
        assert!(err.contains("multiple of 8") && err.contains("20"), "{err}");
        assert!(!out.exists(), "nothing written for refused shapes");

        // A vocabulary without an end-of-sequence token.
        let t5_like = dir.path().join("t5-like");
        write_tiny_t5(&t5_like, &["a"], 8, "relu", 1).unwrap();
        let mut json: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(t5_like.join("tokenizer.json")).unwrap())
                .unwrap();
        json["added_tokens"] = json!([]);
        json["post_processor"] = serde_json::Value::Null;
        json["model"]["vocab"] = json!({"<unk>": 0, "a": 1});
        let no_eos = dir.path().join("no-eos.json");
        std::fs::write(&no_eos, json.to_string()).unwrap();
        let err = write_tiny_gpt2(&out, &no_eos, 16, 1)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("end-of-sequence") && err.contains("<|endoftext|>"),
            "{err}"
        );

        let err = write_tiny_llama(&out, &dir.path().join("absent.json"), 16, 1)
            .unwrap_err()
            .to_string();
        assert!(err.contains("absent.json"), "{err}");

        // The public writers produce loadable folders.
        write_tiny_gpt2(&dir.path().join("g"), &tokenizer, 16, 1).unwrap();
        write_tiny_llama(&dir.path().join("l"), &tokenizer, 16, 1).unwrap();
        for name in ["g", "l"] {
            let folder = dir.path().join(name);
            assert_eq!(
                files(&folder),
                ["config.json", "model.safetensors", "tokenizer.json"]
            );
            let backbone = crate::load_backbone(&folder, Device::Cpu).unwrap();
            assert_eq!(backbone.hidden_size(), 16);
            let tok = TextTokenizer::from_model_dir(&folder).unwrap();
            assert_eq!(tok.encode("the cat", None).unwrap(), vec![0, 1]);
        }
    }

    /// Every kind of the registry writes its tiny model by its recipe, and the folder loads back as that kind,
    /// with the architecture the kind declares.
    #[test]
    fn every_registered_kind_round_trips_its_tiny_model() {
        let dir = tempfile::tempdir().unwrap();
        let tokenizer = gpt2_like_tokenizer(dir.path());
        for kind in crate::BACKBONES {
            let out = dir.path().join(kind.name);
            let request = TinyModel {
                dir: &out,
                tokenizer: kind.tiny.needs_tokenizer.then_some(tokenizer.as_path()),
                words: &["the", "cat"],
                d_model: 16,
                variant: None,
                seed: 1,
            };
            (kind.tiny.write)(&request).unwrap();
            assert_eq!(crate::registry::kind_of(&out).unwrap().name, kind.name);
            let backbone = crate::load_backbone(&out, Device::Cpu).unwrap();
            assert_eq!(backbone.architecture(), kind.architecture, "{}", kind.name);
            assert_eq!(backbone.hidden_size(), 16, "{}", kind.name);
            if kind.tiny.needs_tokenizer {
                let refused = (kind.tiny.write)(&TinyModel {
                    tokenizer: None,
                    dir: &dir.path().join("refused"),
                    ..request
                });
                assert!(refused.is_err(), "{}: a tokenizer is required", kind.name);
            }
        }
    }

    #[test]
    fn writes_a_loadable_folder() {
        let dir = tempfile::tempdir().unwrap();
        write_tiny_t5(
            dir.path(),
            &["the", "cat", "sat", ":", "0", "1"],
            16,
            "relu",
            1,
        )
        .unwrap();
        let t5 = T5::load(dir.path(), Device::Cpu).unwrap();
        assert_eq!(t5.vocab_size(), 9);
        let tok = TextTokenizer::from_model_dir(dir.path()).unwrap();
        assert_eq!(
            tok.encode("The cat: dog", None).unwrap(),
            vec![3, 4, 6, 2, 1]
        );
        assert_eq!(tok.decode(&[3, 4, 1, 0]).unwrap(), "the cat");
    }
}
