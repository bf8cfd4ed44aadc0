//! Our Llama against transformers 4.57.1's `LlamaForCausalLM`, with the values written by
//! tests/reference/llama_reference.py: logits of a right-padded batch (token ids, and perturbed embeddings through
//! `forward_embeds`), the tied layout, greedy decoding of a left-padded batch with the cache, a sharded bf16
//! checkpoint, and the refusals of what is not implemented.

mod common;

use std::path::{Path, PathBuf};

use common::*;
use dept_models::causal::generate_greedy;
use dept_models::causal::CausalLm;
use dept_models::llama::Llama;
use tch::{Device, Kind, Tensor};

fn llama_dir() -> PathBuf {
    reference_dir().join("llama")
}

fn golden() -> serde_json::Value {
    read_json(&llama_dir().join("golden.json"))
}

fn load(folder: &str) -> Llama {
    tch::set_num_threads(1);
    Llama::load(&llama_dir().join(folder), Device::Cpu)
        .unwrap_or_else(|e| panic!("load {folder}: {e}"))
}

fn matrix(golden: &serde_json::Value, key: &str) -> Tensor {
    let rows = int_rows(golden, key);
    padded(&rows, 0, None)
}

/// Logits `[b, t, vocab]` at the positions where `mask` is 1, row by row (as `logits[mask.bool()]`).
fn at_real(logits: &Tensor, mask: &Tensor) -> Vec<f64> {
    to_vec(&logits.index(&[Some(mask.to_kind(Kind::Bool))]))
}

/// The right-padded batch of the golden file, through the model from token ids.
fn right_padded_logits(model: &Llama, golden: &serde_json::Value) -> (Tensor, Tensor) {
    let (ids, mask) = (matrix(golden, "right_ids"), matrix(golden, "right_mask"));
    let positions = matrix(golden, "right_position_ids");
    let logits = model
        .forward_embeds(&model.embed(&ids), &mask, &positions, None, false)
        .expect("forward");
    (logits, mask)
}

#[test]
fn right_padded_logits_match_transformers() {
    let g = golden();
    let model = load("model");
    let (logits, mask) = right_padded_logits(&model, &g);
    assert_eq!(logits.kind(), Kind::Float);
    assert_close(
        "right-padded logits",
        &at_real(&logits, &mask),
        &floats(&g, "logits_at_real"),
        1e-5,
    );
}

#[test]
fn forward_embeds_runs_on_the_embeddings_it_is_given() {
    let g = golden();
    let model = load("model");
    let (ids, mask) = (matrix(&g, "right_ids"), matrix(&g, "right_mask"));
    let positions = matrix(&g, "right_position_ids");
    let delta = Tensor::from_slice(&floats(&g, "embeds_delta"))
        .to_kind(Kind::Float)
        .view([ids.size()[0], ids.size()[1], model.hidden_size()]);
    let embeds = model.embed(&ids) + delta;
    let logits = model
        .forward_embeds(&embeds, &mask, &positions, None, false)
        .expect("forward");
    assert_close(
        "perturbed-embedding logits",
        &at_real(&logits, &mask),
        &floats(&g, "perturbed_logits_at_real"),
        1e-5,
    );
}

#[test]
fn tied_model_matches_transformers() {
    let g = golden();
    let model = load("model_tied");
    assert!(model.config().tie_word_embeddings);
    assert!(!model.var_store().variables().contains_key("lm_head.weight"));
    let (logits, mask) = right_padded_logits(&model, &g);
    assert_close(
        "tied logits",
        &at_real(&logits, &mask),
        &floats(&g, "tied_logits_at_real"),
        1e-5,
    );
}

#[test]
fn left_padded_greedy_decoding_matches_generate() {
    let g = golden();
    let model = load("model");
    let (ids, mask) = (matrix(&g, "left_ids"), matrix(&g, "left_mask"));
    // The position ids transformers derives from a left-padded mask.
    let positions = (mask.cumsum(-1, Kind::Int64) - 1).masked_fill(&mask.eq(0), 1);
    assert_eq!(
        Vec::<Vec<i64>>::try_from(&positions).unwrap(),
        int_rows(&g, "left_position_ids")
    );
    let logits = model
        .forward_embeds(&model.embed(&ids), &mask, &positions, None, false)
        .expect("forward");
    assert_close(
        "left-padded logits",
        &at_real(&logits, &mask),
        &floats(&g, "left_logits_at_real"),
        1e-5,
    );

    let max_new = g["max_new_tokens"].as_i64().unwrap();
    let tokens = generate_greedy(&model, &model.embed(&ids), &mask, max_new).expect("decode");
    let tokens = Vec::<Vec<i64>>::try_from(&tokens).unwrap();
    let expected = int_rows(&g, "new_tokens");
    println!("greedy: {tokens:?} (transformers: {expected:?})");
    assert_eq!(tokens, expected, "greedy tokens");
}

#[test]
fn padding_does_not_change_results() {
    let g = golden();
    let model = load("model");
    let expected = int_rows(&g, "new_tokens");
    let max_new = g["max_new_tokens"].as_i64().unwrap();
    for (row, prompt) in int_rows(&g, "left_ids").iter().enumerate() {
        let real: Vec<i64> = prompt
            .iter()
            .zip(&int_rows(&g, "left_mask")[row])
            .filter(|(_, &m)| m == 1)
            .map(|(&id, _)| id)
            .collect();
        let ids = Tensor::from_slice(&real).view([1, real.len() as i64]);
        let mask = ids.ones_like();
        let tokens = generate_greedy(&model, &model.embed(&ids), &mask, max_new).expect("decode");
        assert_eq!(
            Vec::<Vec<i64>>::try_from(&tokens).unwrap()[0],
            expected[row],
            "row {row} decoded alone"
        );
    }
    // Right padding: each row alone gives the batch's logits at its real positions.
    let (batch_logits, batch_mask) = right_padded_logits(&model, &g);
    for (row, prompt) in int_rows(&g, "right_ids").iter().enumerate() {
        let len = int_rows(&g, "right_mask")[row].iter().sum::<i64>();
        let ids = Tensor::from_slice(&prompt[..len as usize]).view([1, len]);
        let positions = Tensor::arange(len, (Kind::Int64, Device::Cpu)).view([1, len]);
        let alone = model
            .forward_embeds(
                &model.embed(&ids),
                &ids.ones_like(),
                &positions,
                None,
                false,
            )
            .expect("forward");
        let r = row as i64;
        assert_close(
            &format!("row {row} alone vs in the batch"),
            &to_vec(&alone),
            &at_real(&batch_logits.narrow(0, r, 1), &batch_mask.narrow(0, r, 1)),
            1e-5,
        );
    }
}

#[test]
fn sharded_bf16_checkpoint_loads_and_runs_in_bf16() {
    let g = golden();
    let mut model = load("model_sharded_bf16");
    // Loaded into fp32: exactly the bf16 weights, upcast.
    let (logits, mask) = right_padded_logits(&model, &g);
    assert_close(
        "bf16 weights in fp32",
        &at_real(&logits, &mask),
        &floats(&g, "bf16_weights_logits_at_real"),
        1e-5,
    );
    model.set_float_kind(Kind::BFloat16).expect("bf16");
    assert!(model
        .var_store()
        .variables()
        .values()
        .all(|v| v.kind() == Kind::BFloat16));
    let (logits, mask) = right_padded_logits(&model, &g);
    assert_eq!(logits.kind(), Kind::Float);
    // Run in bf16 against transformers run in bf16 (loaded with `dtype=torch.bfloat16`): the same operations in the
    // same order, measured 1e-10 on CPU. The limit lets another CPU's kernels round a bf16 value or two
    // differently (one bf16 step of the largest logit is ~4e-3 of it); running in fp32 instead would be ~1e-2 away.
    assert_close(
        "bf16 run",
        &at_real(&logits, &mask),
        &floats(&g, "bf16_logits_at_real"),
        5e-3,
    );
    let (ids, mask) = (matrix(&g, "left_ids"), matrix(&g, "left_mask"));
    let tokens = generate_greedy(&model, &model.embed(&ids), &mask, 3).expect("bf16 decode");
    assert_eq!(tokens.size()[0], 2);
}

/// A copy of the reference model folder, for breaking.
fn copy_model(to: &Path) {
    for file in ["config.json", "model.safetensors"] {
        std::fs::copy(llama_dir().join("model").join(file), to.join(file)).expect("copy");
    }
}

fn edit_config(dir: &Path, key: &str, value: serde_json::Value) {
    let path = dir.join("config.json");
    let mut config = read_json(&path);
    config[key] = value;
    std::fs::write(&path, serde_json::to_string_pretty(&config).unwrap()).unwrap();
}

fn load_error(dir: &Path) -> String {
    match Llama::load(dir, Device::Cpu) {
        Ok(_) => panic!("{} should be refused", dir.display()),
        Err(e) => e.to_string(),
    }
}

#[test]
fn unsupported_configs_are_refused_by_name() {
    let tmp = tempfile::tempdir().unwrap();
    copy_model(tmp.path());
    edit_config(
        tmp.path(),
        "rope_scaling",
        serde_json::json!({"type": "linear", "factor": 2}),
    );
    let e = load_error(tmp.path());
    println!("{e}");
    assert!(
        e.contains("rope_scaling") && e.contains("linear") && e.contains("config.json"),
        "{e}"
    );

    copy_model(tmp.path());
    edit_config(tmp.path(), "hidden_act", "gelu".into());
    let e = load_error(tmp.path());
    println!("{e}");
    assert!(e.contains("hidden_act") && e.contains("gelu"), "{e}");

    copy_model(tmp.path());
    edit_config(tmp.path(), "model_type", "mistral".into());
    let e = load_error(tmp.path());
    assert!(e.contains("model_type") && e.contains("mistral"), "{e}");
}

#[test]
fn a_missing_tensor_is_named() {
    let tmp = tempfile::tempdir().unwrap();
    copy_model(tmp.path());
    let weights = tmp.path().join("model.safetensors");
    let missing = "model.layers.1.mlp.up_proj.weight";
    let tensors: Vec<(String, Tensor)> = Tensor::read_safetensors(&weights)
        .expect("read")
        .into_iter()
        .filter(|(name, _)| name != missing)
        .collect();
    Tensor::write_safetensors(&tensors, &weights).expect("write");
    let e = load_error(tmp.path());
    println!("{e}");
    assert!(e.contains(missing) && e.contains("missing"), "{e}");
}
