//! GPT-2 through rust-bert against transformers, on the tiny checkpoint and golden values written by
//! tests/reference/gpt2_reference.py: logits at real positions (token ids and perturbed input embeddings, right
//! padding), greedy decoding of a left-padded batch with a key/value cache and position ids from the mask, bf16,
//! the checkpoint layouts accepted, refusals of bad folders, and the real GPT-2 tokenizer.

mod common;

use std::path::{Path, PathBuf};

use common::*;
use dept_models::causal::{CausalLm, KvCache};
use dept_models::gpt2::Gpt2;
use dept_models::TextTokenizer;
use tch::{Device, Kind, Tensor};

fn model_dir() -> PathBuf {
    reference_dir().join("gpt2").join("model")
}

fn golden() -> serde_json::Value {
    read_json(&reference_dir().join("gpt2").join("golden.json"))
}

fn load() -> Gpt2 {
    tch::set_num_threads(1);
    Gpt2::load(&model_dir(), Device::Cpu).expect("load the tiny GPT-2")
}

fn matrix(value: &serde_json::Value, key: &str) -> Tensor {
    let rows = int_rows(value, key);
    padded(&rows, 0, None)
}

/// transformers' position ids for a padded batch (`prepare_inputs_for_generation`): mask cumsum − 1, 1 at padding.
fn positions_from_mask(mask: &Tensor) -> Tensor {
    (mask.cumsum(1, Kind::Int64) - 1).masked_fill(&mask.eq(0), 1)
}

/// Logits at the positions where `mask` is 1, row by row, as the golden file stores them.
fn logits_at_real(model: &Gpt2, embeds: &Tensor, mask: &Tensor, positions: &Tensor) -> Vec<f64> {
    let logits = tch::no_grad(|| model.forward_embeds(embeds, mask, positions, None, false))
        .expect("forward");
    assert_eq!(logits.kind(), Kind::Float, "logits come back in fp32");
    to_vec(&logits.index(&[Some(mask.ne(0))]))
}

/// Greedy decoding as a DePT evaluation runs it: the prompt once with the cache, then one token per step, the mask
/// growing by a 1 and each row's position by one; rows that produced EOS continue with padding, and decoding stops
/// when every row has.
fn greedy(model: &Gpt2, ids: &Tensor, mask: &Tensor, max_new_tokens: i64) -> Vec<Vec<i64>> {
    tch::no_grad(|| {
        let batch = ids.size()[0];
        let mut cache = KvCache::new(model.num_layers());
        let mut mask = mask.shallow_clone();
        let mut positions = positions_from_mask(&mask);
        let mut logits = model
            .forward_embeds(
                &model.embed(ids),
                &mask,
                &positions,
                Some(&mut cache),
                false,
            )
            .expect("prompt");
        let mut finished = Tensor::zeros([batch], (Kind::Bool, Device::Cpu));
        let mut tokens = Vec::new();
        for step in 0..max_new_tokens {
            let token = logits
                .select(1, -1)
                .argmax(-1, false)
                .masked_fill(&finished, model.pad_token_id());
            finished = finished.logical_or(&token.eq(model.eos_token_id()));
            tokens.push(token.shallow_clone());
            if step + 1 == max_new_tokens || bool::try_from(finished.all()).unwrap() {
                break;
            }
            mask = Tensor::cat(&[&mask, &mask.ones_like().narrow(1, 0, 1)], 1);
            positions = positions.select(1, -1).unsqueeze(1) + 1;
            let next = model.embed(&token.unsqueeze(1));
            logits = model
                .forward_embeds(&next, &mask, &positions, Some(&mut cache), false)
                .expect("step");
        }
        assert_eq!(
            cache.len(),
            ids.size()[1] + tokens.len() as i64 - 1,
            "cache length"
        );
        let tokens = Tensor::stack(&tokens, 1);
        (0..batch)
            .map(|i| Vec::<i64>::try_from(tokens.get(i)).unwrap())
            .collect()
    })
}

#[test]
fn right_padded_logits_match_transformers() {
    let (model, golden) = (load(), golden());
    let case = &golden["right_padded"];
    let (ids, mask) = (matrix(case, "ids"), matrix(case, "mask"));
    let positions = matrix(case, "position_ids");
    let logits = logits_at_real(&model, &model.embed(&ids), &mask, &positions);
    assert_close(
        "right-padded logits",
        &logits,
        &floats(case, "logits_at_real"),
        1e-5,
    );
}

#[test]
fn perturbed_input_embeddings_match_transformers() {
    let (model, golden) = (load(), golden());
    let (ids, mask) = (
        matrix(&golden["right_padded"], "ids"),
        matrix(&golden["right_padded"], "mask"),
    );
    let positions = matrix(&golden["right_padded"], "position_ids");
    let case = &golden["perturbed"];
    // Stored with 4 decimals and turned into fp32 the way torch.tensor(..., dtype=float32) does: exactly.
    let perturbation = Tensor::from_slice(&floats(case, "perturbation"))
        .to_kind(Kind::Float)
        .view([ids.size()[0], ids.size()[1], model.hidden_size()]);
    let embeds = model.embed(&ids) + perturbation;
    let logits = logits_at_real(&model, &embeds, &mask, &positions);
    assert_close(
        "perturbed-embedding logits",
        &logits,
        &floats(case, "logits_at_real"),
        1e-5,
    );
}

#[test]
fn left_padded_greedy_decoding_matches_generate() {
    let (model, golden) = (load(), golden());
    let case = &golden["left_padded"];
    let (ids, mask) = (matrix(case, "ids"), matrix(case, "mask"));
    let positions = positions_from_mask(&mask);
    assert!(
        positions.equal(&matrix(case, "position_ids")),
        "position ids from the mask differ from transformers': {positions}"
    );
    let logits =
        tch::no_grad(|| model.forward_embeds(&model.embed(&ids), &mask, &positions, None, false))
            .expect("forward");
    assert_close(
        "left-padded logits at the last prompt position",
        &to_vec(&logits.select(1, -1)),
        &floats(case, "logits_last"),
        1e-5,
    );
    let max_new = golden["max_new_tokens"].as_i64().unwrap();
    let expected = int_rows(case, "new_tokens");
    let batch = greedy(&model, &ids, &mask, max_new);
    assert_eq!(batch, expected, "greedy tokens of the left-padded batch");
    println!("greedy (batch, left-padded): {batch:?}");

    // Each row alone, without padding, decodes the same tokens as in the batch.
    for (i, row) in int_rows(case, "ids").iter().enumerate() {
        let keep = int_rows(case, "mask")[i].clone();
        let real: Vec<i64> = row
            .iter()
            .zip(&keep)
            .filter(|(_, &m)| m == 1)
            .map(|(&t, _)| t)
            .collect();
        let ids = Tensor::from_slice(&real).view([1, -1]);
        let alone = greedy(&model, &ids, &ids.ones_like(), max_new);
        assert_eq!(alone[0], expected[i], "row {i} decoded alone");
    }
}

#[test]
fn bf16_runs_and_stays_close_to_fp32() {
    let (mut model, golden) = (load(), golden());
    model.set_float_kind(Kind::BFloat16).expect("bf16");
    let case = &golden["right_padded"];
    let (ids, mask) = (matrix(case, "ids"), matrix(case, "mask"));
    let positions = matrix(case, "position_ids");
    let embeds = model.embed(&ids);
    assert_eq!(embeds.kind(), Kind::BFloat16);
    let logits = logits_at_real(&model, &embeds, &mask, &positions);
    // bf16 keeps 8 significant bits: about 0.4% per rounding, a few percent through two layers.
    assert_close(
        "bf16 logits vs fp32 transformers",
        &logits,
        &floats(case, "logits_at_real"),
        5e-2,
    );
    // The cached decoding path runs in bf16 too (the tokens may differ from fp32's, so only the shape is checked).
    let left = &golden["left_padded"];
    let decoded = greedy(&model, &matrix(left, "ids"), &matrix(left, "mask"), 3);
    assert!(decoded.iter().all(|row| row.len() == 3));
}

/// A copy of the tiny checkpoint with its tensors renamed (or dropped) by `rename`, and its config edited.
fn edited_copy(
    dir: &Path,
    rename: impl Fn(&str) -> Option<String>,
    edit_config: impl Fn(&mut serde_json::Value),
) {
    let tensors = Tensor::read_safetensors(model_dir().join("model.safetensors")).expect("read");
    let renamed: Vec<(String, Tensor)> = tensors
        .into_iter()
        .filter_map(|(name, t)| rename(&name).map(|n| (n, t)))
        .collect();
    Tensor::write_safetensors(&renamed, dir.join("model.safetensors")).expect("write");
    let mut config = read_json(&model_dir().join("config.json"));
    edit_config(&mut config);
    std::fs::write(
        dir.join("config.json"),
        serde_json::to_string_pretty(&config).unwrap(),
    )
    .unwrap();
}

fn right_padded_logits(model: &Gpt2) -> Vec<f64> {
    let case = &golden()["right_padded"];
    let (ids, mask) = (matrix(case, "ids"), matrix(case, "mask"));
    logits_at_real(
        model,
        &model.embed(&ids),
        &mask,
        &matrix(case, "position_ids"),
    )
}

#[test]
fn bare_gpt2model_and_lm_head_only_checkpoints_load_the_same_weights() {
    let reference = right_padded_logits(&load());
    // `GPT2Model.save_pretrained` (and the original `gpt2` upload): no `transformer.` prefix.
    let bare = tempfile::tempdir().unwrap();
    edited_copy(
        bare.path(),
        |name| {
            Some(
                name.strip_prefix("transformer.")
                    .unwrap_or(name)
                    .to_string(),
            )
        },
        |_| {},
    );
    let model = Gpt2::load(bare.path(), Device::Cpu).expect("bare GPT2Model checkpoint");
    assert_eq!(right_padded_logits(&model), reference);
    // The tied word embeddings stored only as `lm_head.weight`.
    let head = tempfile::tempdir().unwrap();
    edited_copy(
        head.path(),
        |name| {
            Some(if name == "transformer.wte.weight" {
                "lm_head.weight".to_string()
            } else {
                name.to_string()
            })
        },
        |_| {},
    );
    let model = Gpt2::load(head.path(), Device::Cpu).expect("lm_head-only checkpoint");
    assert_eq!(right_padded_logits(&model), reference);
}

fn load_error(dir: &Path) -> String {
    match Gpt2::load(dir, Device::Cpu) {
        Ok(_) => panic!("{} loaded, but should have been refused", dir.display()),
        Err(e) => e.to_string(),
    }
}

#[test]
fn bad_folders_are_refused_with_the_reason() {
    let missing = "transformer.h.1.mlp.c_fc.bias";
    let dir = tempfile::tempdir().unwrap();
    edited_copy(
        dir.path(),
        |name| (name != missing).then(|| name.to_string()),
        |_| {},
    );
    let err = load_error(dir.path());
    assert!(err.contains(missing) && err.contains("missing"), "{err}");
    assert!(
        !err.contains("attn.bias"),
        "the causal-mask buffers are not checkpoint tensors: {err}"
    );

    let dir = tempfile::tempdir().unwrap();
    edited_copy(
        dir.path(),
        |n| Some(n.to_string()),
        |config| {
            config.as_object_mut().unwrap().remove("n_embd");
        },
    );
    let err = load_error(dir.path());
    assert!(
        err.contains("n_embd") && err.contains("config.json"),
        "{err}"
    );

    let dir = tempfile::tempdir().unwrap();
    edited_copy(
        dir.path(),
        |n| Some(n.to_string()),
        |config| {
            config["model_type"] = "llama".into();
        },
    );
    let err = load_error(dir.path());
    assert!(
        err.contains("\"llama\"") && err.contains("model_type"),
        "{err}"
    );

    // A wider model than the checkpoint: every misshapen tensor is reported, nothing panics.
    let dir = tempfile::tempdir().unwrap();
    edited_copy(
        dir.path(),
        |n| Some(n.to_string()),
        |config| {
            config["n_embd"] = 32.into();
        },
    );
    let err = load_error(dir.path());
    assert!(
        err.contains("transformer.h.0.attn.c_attn.weight: shape [16, 48], expected [32, 96]"),
        "{err}"
    );
}

#[test]
fn real_gpt2_tokenizer_encodes_as_transformers() {
    let Some(shared) = shared_dir() else { return };
    let golden = golden();
    let cases = golden["tokenizer"]
        .as_array()
        .expect("golden.json has tokenizer ids (run gpt2_reference.py where ../shared exists)");
    let tokenizer = TextTokenizer::from_file(&shared.join("tokenizers/gpt2/tokenizer.json"))
        .expect("load the GPT-2 tokenizer.json");
    assert_eq!(tokenizer.vocab_size(), 50257);
    for case in cases {
        let text = case["text"].as_str().unwrap();
        let expected: Vec<i64> = case["ids"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_i64().unwrap())
            .collect();
        assert_eq!(tokenizer.encode(text, None).unwrap(), expected, "{text:?}");
    }
}
