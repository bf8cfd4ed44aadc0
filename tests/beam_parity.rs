//! Beam search (and greedy with no repeated n-grams) against transformers' own `generate`, token for token:
//! tests/reference/beam_reference.py decodes a batch of 3 rows of different lengths with a DePT adapter on the
//! tiny T5, GPT-2, Llama and CLIP-T5 checkpoints already committed, in 13 settings (num_beams 1/3/4, length
//! penalties 2, 0.5, 0 and -1, early stopping true/false/"never", no_repeat_ngram_size 1 and 2). dept decodes the same
//! inputs through `PromptedModel::generate_with` and must return the same ids, padded with the pad id after end of
//! sequence as greedy output is.

mod common;

use common::*;
use dept_core::DecomposedPrompt;
use dept_models::clip_t5::ClipT5;
use dept_models::t5::T5;
use dept_models::{load_backbone, Backbone, EarlyStopping, GenerationConfig, PromptedModel};
use serde_json::Value;
use tch::{Device, Kind, Tensor};

fn golden() -> Value {
    read_json(&reference_dir().join("beam").join("golden.json"))
}

/// A setting of the golden file as dept's [`GenerationConfig`] (transformers' defaults where it names none).
fn config_of(setting: &Value, max_new_tokens: i64) -> GenerationConfig {
    let early_stopping = match &setting["early_stopping"] {
        Value::Null | Value::Bool(false) => EarlyStopping::Heuristic,
        Value::Bool(true) => EarlyStopping::WhenFull,
        Value::String(s) => s.parse().expect("early_stopping"),
        other => panic!("early_stopping {other}"),
    };
    GenerationConfig {
        max_new_tokens,
        num_beams: setting["num_beams"].as_i64().expect("num_beams"),
        length_penalty: setting["length_penalty"].as_f64().unwrap_or(1.0),
        early_stopping,
        no_repeat_ngram_size: setting["no_repeat_ngram_size"].as_i64().unwrap_or(0),
    }
}

/// Decodes `ids`/`mask` in every setting of the golden file and compares with transformers' tokens.
fn every_setting_matches(name: &str, model: PromptedModel<'_>, ids: &Tensor, mask: &Tensor) {
    let golden = golden();
    let max_new = golden["max_new_tokens"].as_i64().unwrap();
    let reference = &golden["models"][name];
    assert_eq!(
        model.backbone.eos_token_id(),
        reference["eos_token_id"].as_i64().unwrap()
    );
    assert_eq!(
        model.backbone.pad_token_id(),
        reference["pad_token_id"].as_i64().unwrap()
    );
    let mut compared = 0;
    for setting in golden["settings"].as_array().unwrap() {
        let label = setting["name"].as_str().unwrap();
        let config = config_of(setting, max_new);
        let generated = model
            .generate_with(ids, mask, &config)
            .unwrap_or_else(|e| panic!("{name} {label}: {e}"));
        let got = Vec::<Vec<i64>>::try_from(&generated).expect("ids");
        let expected = int_rows(&reference["cases"][label], "expected");
        assert_eq!(got, expected, "{name} {label} ({config:?})");
        compared += 1;
    }
    assert_eq!(compared, 13, "{name}: every setting of the golden file");
}

fn adapter(folder: &str) -> DecomposedPrompt {
    DecomposedPrompt::load(&reference_dir().join(folder).join("adapter"), Device::Cpu)
        .expect("load adapter")
}

#[test]
fn t5_with_an_adapter_decodes_as_transformers() {
    tch::set_num_threads(1);
    let dir = reference_dir().join("t5_dept").join("v1");
    let t5 = T5::load(&dir.join("model"), Device::Cpu).expect("load tiny T5");
    let adapter = adapter("t5_dept/v1");
    let sources = int_rows(&golden()["models"]["t5"], "sources");
    // Padded to the longest row only (the reference pads to s): padding changes nothing for T5 + DePT.
    let ids = padded(&sources, 0, None);
    let mask = ids.ne(0).to_kind(Kind::Int64);
    every_setting_matches("t5", PromptedModel::new(&t5, &adapter), &ids, &mask);
}

/// GPT-2 and Llama: a left-padded batch, the prompt in front.
fn decoder_only_decodes_as_transformers(name: &str) {
    tch::set_num_threads(1);
    let backbone: Box<dyn Backbone> =
        load_backbone(&reference_dir().join(name).join("model"), Device::Cpu)
            .unwrap_or_else(|e| panic!("load the tiny {name}: {e}"));
    let adapter = adapter(&format!("causal_dept/{name}"));
    let sources = int_rows(&golden()["models"][name], "sources");
    let longest = sources.iter().map(Vec::len).max().unwrap();
    let pad = backbone.pad_token_id();
    let left = |row: &Vec<i64>, fill: i64, value: Option<i64>| -> Vec<i64> {
        std::iter::repeat_n(fill, longest - row.len())
            .chain(row.iter().map(|&t| value.unwrap_or(t)))
            .collect()
    };
    let ids: Vec<Vec<i64>> = sources.iter().map(|r| left(r, pad, None)).collect();
    let mask: Vec<Vec<i64>> = sources.iter().map(|r| left(r, 0, Some(1))).collect();
    every_setting_matches(
        name,
        PromptedModel::new(backbone.as_ref(), &adapter),
        &padded(&ids, pad, None),
        &padded(&mask, 0, None),
    );
}

#[test]
fn gpt2_with_an_adapter_decodes_as_transformers() {
    decoder_only_decodes_as_transformers("gpt2");
}

#[test]
fn llama_with_an_adapter_decodes_as_transformers() {
    decoder_only_decodes_as_transformers("llama");
}

#[test]
fn clip_t5_with_an_adapter_decodes_as_transformers() {
    tch::set_num_threads(1);
    let dir = reference_dir().join("clip_t5");
    let clip_golden = read_json(&dir.join("golden.json"));
    let t5 = T5::load(&dir.join("model"), Device::Cpu).expect("load tiny T5");
    let clip = ClipT5::new(
        t5,
        clip_golden["feat_dim"].as_i64().unwrap(),
        clip_golden["n_visual"].as_i64().unwrap(),
    )
    .expect("CLIP-T5");
    dept_train::checkpoint::load_trained(&dir, &clip.trainable_parameters())
        .expect("the visual embedding's weights");
    let adapter = adapter("clip_t5");
    let shape: Vec<i64> = clip_golden["features_shape"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_i64().unwrap())
        .collect();
    let features = Tensor::from_slice(&floats(&clip_golden, "features"))
        .to_kind(Kind::Float)
        .view(shape.as_slice());
    let sources = int_rows(&golden()["models"]["clip_t5"], "sources");
    let ids = padded(&sources, 0, None);
    let mask = ids.ne(0).to_kind(Kind::Int64);
    let model = PromptedModel::new(&clip, &adapter).with_visual(Some(&features));
    every_setting_matches("clip_t5", model, &ids, &mask);
}

/// One beam and no n-gram rule is the backbone's own greedy decoding; more beams are refused with a clear error
/// where a setting means nothing.
#[test]
fn settings_are_checked_before_decoding() {
    tch::set_num_threads(1);
    let dir = reference_dir().join("t5_dept").join("v1");
    let t5 = T5::load(&dir.join("model"), Device::Cpu).expect("load tiny T5");
    let adapter = adapter("t5_dept/v1");
    let ids = padded(&[vec![5, 9, 1]], 0, None);
    let mask = ids.ones_like();
    let model = PromptedModel::new(&t5, &adapter);
    let wrong = model
        .generate_with(&ids, &mask, &GenerationConfig::beams(4, 0))
        .unwrap_err()
        .to_string();
    assert!(
        wrong.contains("num_beams must be at least 1, got 0"),
        "{wrong}"
    );
    let none = model
        .generate_with(&ids, &mask, &GenerationConfig::beams(0, 3))
        .unwrap();
    assert_eq!(none.size(), [1, 0]);
}
