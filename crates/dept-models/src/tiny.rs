//! Tiny random checkpoints in the real Hugging Face folder layout, for tests and the offline quickstart: T5
//! ([`write_tiny_t5`], [`write_tiny_t5_with_tokenizer`]), GPT-2 ([`write_tiny_gpt2`]), Llama
//! ([`write_tiny_llama`]) and CLIP's vision tower ([`write_tiny_clip`]).
//!
//! No pretrained weights can be downloaded in CI or on an air-gapped machine, so tests build models with this
//! and then load them through the same code path as a real checkpoint ([`crate::t5::T5::load`],
//! [`crate::load_backbone`]).
//!
//! Each writer lives in its model's file, beside the config it fills in (for a registered kind it is also the
//! kind's [`TinyRecipe`](crate::registry::TinyRecipe)); this module gathers them under one path. What the writers
//! share comes from the modules below them, never from here: the folder files from [`crate::checkpoint`]
//! ([`copy_tokenizer`]), the end-of-sequence id from [`crate::tokenizer`] ([`end_of_text_id`]), the decoder-only
//! models' initialisation from [`crate::registry`] ([`TINY_INITIALIZER_RANGE`]).

pub use crate::checkpoint::copy_tokenizer;
pub use crate::clip::write_tiny_clip;
pub use crate::gpt2::write_tiny_gpt2;
pub use crate::llama::write_tiny_llama;
pub use crate::registry::TINY_INITIALIZER_RANGE;
pub use crate::t5::{write_tiny_t5, write_tiny_t5_with_tokenizer, SPECIAL_TOKENS};
pub use crate::tokenizer::end_of_text_id;

#[cfg(test)]
mod tests {
    use std::path::Path;

    use serde_json::json;
    use tch::{Device, Kind, Tensor};

    use super::*;
    use crate::causal::CausalLm;
    use crate::gpt2::{tiny_gpt2, Gpt2};
    use crate::llama::{tiny_llama, Llama};
    use crate::registry::TinyModel;
    use crate::t5::T5;
    use crate::{Architecture, Backbone, TextTokenizer};

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
