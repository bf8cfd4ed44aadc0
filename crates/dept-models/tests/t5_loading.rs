//! Loading T5 from Hugging Face folders: round trips, sharded checkpoints, and every kind of bad folder refused
//! with a message that names the problem.

use std::path::Path;

use dept_models::t5::{T5Config, T5};
use dept_models::Backbone;
use tch::{Device, Kind, Tensor};

fn tiny_config(feed_forward_proj: &str, tied: bool) -> T5Config {
    let json = serde_json::json!({
        "vocab_size": 40, "d_model": 8, "d_kv": 4, "d_ff": 16, "num_layers": 1, "num_heads": 2,
        "relative_attention_num_buckets": 4, "feed_forward_proj": feed_forward_proj,
        "tie_word_embeddings": tied
    });
    T5Config::from_json(Path::new("config.json"), json).unwrap()
}

fn saved_model(dir: &Path, feed_forward_proj: &str, tied: bool) -> T5 {
    tch::manual_seed(3);
    let t5 = T5::new_random(&tiny_config(feed_forward_proj, tied), Device::Cpu).unwrap();
    t5.save(dir).unwrap();
    t5
}

fn logits(t5: &T5) -> Tensor {
    let ids = Tensor::from_slice2(&[[3_i64, 4, 5, 1]]);
    let mask = ids.ones_like();
    let labels = Tensor::from_slice2(&[[6_i64, 1]]);
    t5.forward(&t5.embed(&ids), &mask, &labels, false)
        .unwrap()
        .logits
}

fn load_error(dir: &Path) -> String {
    match T5::load(dir, Device::Cpu) {
        Ok(_) => panic!("{} loaded but should not", dir.display()),
        Err(e) => e.to_string(),
    }
}

#[test]
fn both_layouts_round_trip_through_a_folder() {
    for (proj, tied) in [("relu", true), ("gated-gelu", false)] {
        let dir = tempfile::tempdir().unwrap();
        let saved = saved_model(dir.path(), proj, tied);
        let loaded = T5::load(dir.path(), Device::Cpu).unwrap();
        assert!(logits(&saved).equal(&logits(&loaded)), "{proj}");
        let has_lm_head = Tensor::read_safetensors(dir.path().join("model.safetensors"))
            .unwrap()
            .iter()
            .any(|(n, _)| n == "lm_head.weight");
        assert_eq!(has_lm_head, !tied, "{proj}");
    }
}

#[test]
fn the_backbone_is_frozen() {
    let dir = tempfile::tempdir().unwrap();
    let t5 = saved_model(dir.path(), "relu", true);
    assert!(t5
        .var_store()
        .variables()
        .values()
        .all(|v| !v.requires_grad()));
    let ids = Tensor::from_slice2(&[[3_i64, 1]]);
    assert!(!t5.embed(&ids).requires_grad());
}

#[test]
fn sharded_checkpoints_load() {
    let dir = tempfile::tempdir().unwrap();
    let saved = saved_model(dir.path(), "relu", true);
    let tensors = Tensor::read_safetensors(dir.path().join("model.safetensors")).unwrap();
    std::fs::remove_file(dir.path().join("model.safetensors")).unwrap();
    let (first, second) = tensors.split_at(tensors.len() / 2);
    let mut weight_map = serde_json::Map::new();
    for (file, part) in [
        ("model-00001-of-00002.safetensors", first),
        ("model-00002-of-00002.safetensors", second),
    ] {
        Tensor::write_safetensors(part, dir.path().join(file)).unwrap();
        for (name, _) in part {
            weight_map.insert(name.clone(), file.into());
        }
    }
    let index = serde_json::json!({ "metadata": {}, "weight_map": weight_map });
    std::fs::write(
        dir.path().join("model.safetensors.index.json"),
        index.to_string(),
    )
    .unwrap();
    let loaded = T5::load(dir.path(), Device::Cpu).unwrap();
    assert!(logits(&saved).equal(&logits(&loaded)));
}

#[test]
fn half_precision_checkpoints_are_converted() {
    let dir = tempfile::tempdir().unwrap();
    saved_model(dir.path(), "relu", true);
    let path = dir.path().join("model.safetensors");
    let bf16: Vec<(String, Tensor)> = Tensor::read_safetensors(&path)
        .unwrap()
        .into_iter()
        .map(|(n, t)| (n, t.to_kind(Kind::BFloat16)))
        .collect();
    Tensor::write_safetensors(&bf16, &path).unwrap();
    let loaded = T5::load(dir.path(), Device::Cpu).unwrap();
    assert_eq!(logits(&loaded).kind(), Kind::Float);
}

#[test]
fn missing_and_misshapen_tensors_are_named() {
    let dir = tempfile::tempdir().unwrap();
    saved_model(dir.path(), "relu", true);
    let path = dir.path().join("model.safetensors");
    let mut tensors = Tensor::read_safetensors(&path).unwrap();
    tensors.retain(|(n, _)| n != "encoder.final_layer_norm.weight");
    for (name, t) in tensors.iter_mut() {
        if name == "decoder.block.0.layer.0.SelfAttention.q.weight" {
            *t = Tensor::zeros([8, 3], (Kind::Float, Device::Cpu));
        }
    }
    Tensor::write_safetensors(&tensors, &path).unwrap();
    let err = load_error(dir.path());
    assert!(
        err.contains("encoder.final_layer_norm.weight: missing"),
        "{err}"
    );
    assert!(
        err.contains(
            "decoder.block.0.layer.0.SelfAttention.q.weight: shape [8, 3], expected [8, 8]"
        ),
        "{err}"
    );
}

#[test]
fn pickle_checkpoints_are_refused_with_advice() {
    let dir = tempfile::tempdir().unwrap();
    saved_model(dir.path(), "relu", true);
    std::fs::remove_file(dir.path().join("model.safetensors")).unwrap();
    std::fs::write(dir.path().join("pytorch_model.bin"), b"not loaded").unwrap();
    let err = load_error(dir.path());
    assert!(
        err.contains("pickle is never loaded") && err.contains("save_pretrained"),
        "{err}"
    );
}

#[test]
fn bad_configs_are_explained() {
    let dir = tempfile::tempdir().unwrap();
    saved_model(dir.path(), "relu", true);
    let config_path = dir.path().join("config.json");
    let original: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&config_path).unwrap()).unwrap();
    let cases: Vec<(serde_json::Value, &str)> = vec![
        (serde_json::json!("{ nope"), "not"),
        (
            {
                let mut v = original.clone();
                v.as_object_mut().unwrap().remove("d_model");
                v
            },
            "d_model",
        ),
        (
            {
                let mut v = original.clone();
                v["feed_forward_proj"] = "gated-silu".into();
                v
            },
            "gated-silu",
        ),
        (
            {
                let mut v = original.clone();
                v["num_decoder_layers"] = 3.into();
                v
            },
            // A deeper decoder than the file holds: its missing tensors are named.
            "decoder.block.1.layer.0.SelfAttention.k.weight: missing",
        ),
        (
            {
                let mut v = original.clone();
                v["num_heads"] = 0.into();
                v
            },
            "num_heads",
        ),
    ];
    for (config, expected) in cases {
        let text = match &config {
            serde_json::Value::String(raw) => raw.clone(),
            other => other.to_string(),
        };
        std::fs::write(&config_path, text).unwrap();
        let err = load_error(dir.path());
        assert!(
            err.contains("config.json") && err.contains(expected),
            "{expected}: {err}"
        );
    }
    std::fs::remove_file(&config_path).unwrap();
    assert!(load_error(dir.path()).contains("config.json"));
}

#[test]
fn generate_stops_at_max_new_tokens_and_pads_after_eos() {
    let dir = tempfile::tempdir().unwrap();
    let t5 = saved_model(dir.path(), "gated-gelu", false);
    let ids = Tensor::from_slice2(&[[3_i64, 4, 5, 1], [7, 1, 0, 0]]);
    let mask = ids.ne(0).to_kind(Kind::Int64);
    let embeds = t5.embed(&ids);

    // Force row 0, and only row 0, to emit </s> (id 1) first: read each row's first decoder state h through an
    // identity head, then give </s> the head row w = h0 minus its projection on h1 (so w·h1 = 0), scaled up.
    let mut head = t5.var_store().variables()["lm_head.weight"].shallow_clone();
    let d = head.size()[1];
    let original = head.copy();
    tch::no_grad(|| {
        let _ = head.zero_();
        head.narrow(0, 0, d)
            .copy_(&Tensor::eye(d, (Kind::Float, Device::Cpu)));
    });
    let start = Tensor::zeros([2, 1], (Kind::Int64, Device::Cpu));
    let h = t5.forward(&embeds, &mask, &start, false).unwrap().logits;
    let h = h.narrow(2, 0, d).squeeze_dim(1).to_kind(Kind::Double);
    let (h0, h1) = (h.get(0), h.get(1));
    let w = &h0 - &h1 * (h0.dot(&h1) / h1.dot(&h1));
    tch::no_grad(|| {
        head.copy_(&original);
        head.get(1).copy_(&(w * 1e4).to_kind(Kind::Float));
    });

    let out = t5.generate_greedy(&embeds, &mask, 5).unwrap();
    let rows = Vec::<Vec<i64>>::try_from(&out).unwrap();
    assert_eq!(rows.len(), 2);
    assert!(rows[0].len() <= 5);
    assert_eq!(rows[0][0], 1, "row 0 must end at once: {rows:?}");
    assert!(
        rows[0][1..].iter().all(|&t| t == 0),
        "pads after </s>: {rows:?}"
    );
    assert_ne!(rows[1][0], 1, "row 1 must go on: {rows:?}");
    assert!(
        rows[1].len() >= 2,
        "decoding stopped with row 1 unfinished: {rows:?}"
    );
    if let Some(eos) = rows[1].iter().position(|&t| t == 1) {
        assert!(rows[1][eos + 1..].iter().all(|&t| t == 0), "{rows:?}");
    }
    assert_eq!(
        t5.generate_greedy(&embeds, &mask, 0).unwrap().size(),
        [2, 0]
    );
}
