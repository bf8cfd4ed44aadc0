//! The adapter module: shapes, what `apply` computes, files written and read back, bad files refused.

use dept_core::{DecomposedPrompt, DeptConfig, PromptInit, PAIR_GROUP, PROMPT_GROUP};
use tch::{Device, Kind, Tensor};

fn config() -> DeptConfig {
    DeptConfig::new(3, 2, 8, 4)
        .unwrap()
        .with_init(&PromptInit::Random)
}

fn adapter_with_nonzero_b() -> DecomposedPrompt {
    tch::manual_seed(7);
    let c = config();
    let prompt = Tensor::randn([3, 4], (Kind::Float, Device::Cpu));
    let a = Tensor::randn([8, 2], (Kind::Float, Device::Cpu));
    let b = Tensor::randn([2, 4], (Kind::Float, Device::Cpu));
    DecomposedPrompt::from_tensors(c, &prompt, Some(&(a, b)), Device::Cpu).unwrap()
}

#[test]
fn init_follows_the_official_code() {
    tch::manual_seed(0);
    let c = DeptConfig::new(3, 4, 1000, 16).unwrap();
    let adapter = DecomposedPrompt::new(c, None, Device::Cpu).unwrap();
    let (a, b) = adapter.pair().unwrap();
    assert_eq!(a.size(), [1000, 4]);
    assert_eq!(b.size(), [4, 16]);
    // kaiming-uniform with a = √5 on [s, r] is U(±1/√r) = U(±0.5).
    let max = a.abs().max().double_value(&[]);
    assert!(max <= 0.5 && max > 0.45, "A bound {max}");
    assert_eq!(b.abs().sum(Kind::Double).double_value(&[]), 0.0);
    let rows = Tensor::ones([3, 16], (Kind::Float, Device::Cpu));
    let c = DeptConfig::new(3, 4, 1000, 16).unwrap();
    let from_rows = DecomposedPrompt::new(c, Some(&rows), Device::Cpu).unwrap();
    assert_eq!(from_rows.prompt().sum(Kind::Double).double_value(&[]), 48.0);
}

#[test]
fn apply_adds_the_scaled_low_rank_update_and_prepends_the_prompt() {
    let adapter = adapter_with_nonzero_b();
    let embeds = Tensor::randn([2, 5, 4], (Kind::Float, Device::Cpu));
    let mask = Tensor::from_slice2(&[[1_i64, 1, 1, 1, 1], [1, 1, 1, 0, 0]]);
    let (out, out_mask) = adapter.apply(&embeds, &mask).unwrap();
    assert_eq!(out.size(), [2, 8, 4]);
    assert_eq!(
        Vec::<Vec<i64>>::try_from(&out_mask).unwrap(),
        vec![vec![1, 1, 1, 1, 1, 1, 1, 1], vec![1, 1, 1, 1, 1, 1, 0, 0]]
    );
    let (a, b) = adapter.pair().unwrap();
    let scale = 8.0 / 2f64.sqrt();
    let expected_tokens = &embeds + a.narrow(0, 0, 5).matmul(b) * scale;
    let diff = (out.narrow(1, 3, 5) - expected_tokens)
        .abs()
        .max()
        .double_value(&[]);
    assert!(diff < 1e-6, "token rows differ by {diff}");
    let prompt_diff = (out.narrow(1, 0, 3) - adapter.prompt().unsqueeze(0))
        .abs()
        .max()
        .double_value(&[]);
    assert_eq!(prompt_diff, 0.0);
}

#[test]
fn apply_refuses_inputs_longer_than_s_and_wrong_widths() {
    let adapter = adapter_with_nonzero_b();
    let too_long = Tensor::zeros([1, 9, 4], (Kind::Float, Device::Cpu));
    let err = adapter
        .apply(&too_long, &Tensor::ones([1, 9], (Kind::Int64, Device::Cpu)))
        .unwrap_err()
        .to_string();
    assert!(err.contains("9 tokens") && err.contains("s = 8"), "{err}");
    let wrong_d = Tensor::zeros([1, 3, 5], (Kind::Float, Device::Cpu));
    let err = adapter
        .apply(&wrong_d, &Tensor::ones([1, 3], (Kind::Int64, Device::Cpu)))
        .unwrap_err()
        .to_string();
    assert!(err.contains("d = 4"), "{err}");
}

#[test]
fn prompt_tuning_is_the_r_zero_case() {
    let c = DeptConfig::new(5, 0, 0, 4).unwrap();
    let pt = DecomposedPrompt::new(c, None, Device::Cpu).unwrap();
    assert!(pt.pair().is_none());
    assert_eq!(pt.param_groups().len(), 1);
    // No length limit without A.
    let embeds = Tensor::zeros([1, 300, 4], (Kind::Float, Device::Cpu));
    let (out, _) = pt
        .apply(&embeds, &Tensor::ones([1, 300], (Kind::Int64, Device::Cpu)))
        .unwrap();
    assert_eq!(out.size(), [1, 305, 4]);
}

#[test]
fn parameter_groups_separate_prompt_and_pair() {
    let adapter = adapter_with_nonzero_b();
    let groups = adapter.param_groups();
    assert_eq!(groups[0].0, PROMPT_GROUP);
    assert_eq!(groups[0].1.len(), 1);
    assert_eq!(groups[1].0, PAIR_GROUP);
    assert_eq!(groups[1].1.len(), 2);
    assert!(groups
        .iter()
        .flat_map(|(_, p)| p)
        .all(|p| p.requires_grad()));
    let all = adapter.parameters();
    assert_eq!(all.len(), 3);
    assert_eq!(all[0].size(), adapter.prompt().size());
}

#[test]
fn save_then_load_round_trips_with_the_official_names() {
    let dir = tempfile::tempdir().unwrap();
    let adapter = adapter_with_nonzero_b();
    adapter.save(dir.path()).unwrap();
    let names: Vec<String> = Tensor::read_safetensors(dir.path().join("adapter_model.safetensors"))
        .unwrap()
        .into_iter()
        .map(|(n, _)| n)
        .collect();
    let mut sorted = names.clone();
    sorted.sort();
    assert_eq!(
        sorted,
        [
            "prompt_embeddings",
            "prompt_encoder.lora_embedding_A",
            "prompt_encoder.lora_embedding_B"
        ]
    );
    let config: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir.path().join("adapter_config.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(config["peft_type"], "PROMPT_TUNING_LORA");
    assert_eq!(config["num_virtual_tokens"], 3);
    assert_eq!(config["max_length"], 8);
    let loaded = DecomposedPrompt::load(dir.path(), Device::Cpu).unwrap();
    assert_eq!(loaded.config(), adapter.config());
    assert!(loaded.prompt().equal(adapter.prompt()));
    let ((a1, b1), (a2, b2)) = (loaded.pair().unwrap(), adapter.pair().unwrap());
    assert!(a1.equal(a2) && b1.equal(b2));
    // No temporary files are left behind.
    let leftovers: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().contains(".tmp"))
        .collect();
    assert!(leftovers.is_empty());
}

#[test]
fn loading_names_what_disagrees() {
    let dir = tempfile::tempdir().unwrap();
    adapter_with_nonzero_b().save(dir.path()).unwrap();
    let config_path = dir.path().join("adapter_config.json");
    let original = std::fs::read_to_string(&config_path).unwrap();

    // The config says r = 3 but the file holds rank-2 tensors.
    std::fs::write(&config_path, original.replace("\"r\": 2", "\"r\": 3")).unwrap();
    let err = DecomposedPrompt::load(dir.path(), Device::Cpu)
        .err()
        .unwrap()
        .to_string();
    assert!(
        err.contains("lora_embedding_A") && err.contains("[8, 3]"),
        "{err}"
    );

    // Broken JSON.
    std::fs::write(&config_path, "{ not json").unwrap();
    let err = DecomposedPrompt::load(dir.path(), Device::Cpu)
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("adapter_config.json"), "{err}");

    // A missing tensor.
    std::fs::write(&config_path, &original).unwrap();
    let prompt_only = [(
        "prompt_embeddings",
        Tensor::zeros([3, 4], (Kind::Float, Device::Cpu)),
    )];
    Tensor::write_safetensors(&prompt_only, dir.path().join("adapter_model.safetensors")).unwrap();
    let err = DecomposedPrompt::load(dir.path(), Device::Cpu)
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("prompt_encoder.lora_embedding_A"), "{err}");

    // Pickle is refused with advice.
    std::fs::remove_file(dir.path().join("adapter_model.safetensors")).unwrap();
    std::fs::write(dir.path().join("adapter_model.bin"), b"pickle").unwrap();
    let err = DecomposedPrompt::load(dir.path(), Device::Cpu)
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("pickle is never loaded"), "{err}");
    assert!(err.contains("dept import official"), "{err}");
}

#[test]
fn compatibility_check_names_both_numbers() {
    let adapter = adapter_with_nonzero_b();
    adapter.check_compatible(4, 8).unwrap();
    let err = adapter.check_compatible(768, 8).unwrap_err().to_string();
    assert!(err.contains("d = 4") && err.contains("d = 768"), "{err}");
    let err = adapter.check_compatible(4, 256).unwrap_err().to_string();
    assert!(err.contains("s = 8") && err.contains("s = 256"), "{err}");
}

#[test]
fn apply_at_gives_each_token_the_row_of_its_own_position() {
    let adapter = adapter_with_nonzero_b();
    let d = adapter.config().d;
    tch::manual_seed(3);
    let row = Tensor::randn([1, 3, d], (Kind::Float, Device::Cpu));
    let (alone, _) = adapter
        .apply(&row, &Tensor::ones([1, 3], (Kind::Int64, Device::Cpu)))
        .unwrap();
    // The same row left-padded by two: the update follows the tokens, and padding gets none.
    let padded = Tensor::cat(
        &[
            Tensor::full([1, 2, d], 7.0, (Kind::Float, Device::Cpu)),
            row.shallow_clone(),
        ],
        1,
    );
    let mask = Tensor::from_slice(&[0i64, 0, 1, 1, 1]).view([1, 5]);
    let positions = (mask.cumsum(1, Kind::Int64) - 1).clamp_min(0);
    let (left, left_mask) = adapter.apply_at(&padded, &mask, &positions).unwrap();
    let m = adapter.config().m;
    assert!(left
        .narrow(1, m + 2, 3)
        .allclose(&alone.narrow(1, m, 3), 1e-6, 1e-6, false));
    assert!(left.narrow(1, m, 2).allclose(
        &Tensor::full([1, 2, d], 7.0, (Kind::Float, Device::Cpu)),
        0.0,
        0.0,
        false
    ));
    assert_eq!(
        Vec::<i64>::try_from(left_mask.view([-1])).unwrap()[m as usize..],
        [0, 0, 1, 1, 1]
    );
    // Right padding with positions 0, 1, … is `apply`.
    let right_mask = Tensor::from_slice(&[1i64, 1, 1]).view([1, 3]);
    let (right, _) = adapter
        .apply_at(
            &row,
            &right_mask,
            &Tensor::arange(3, (Kind::Int64, Device::Cpu)).view([1, 3]),
        )
        .unwrap();
    assert!(right.allclose(&alone, 1e-6, 1e-6, false));
    // A position past s is refused.
    let s = adapter.config().s.unwrap();
    let far = Tensor::full([1, 1], s, (Kind::Int64, Device::Cpu));
    let err = adapter
        .apply_at(
            &row.narrow(1, 0, 1),
            &Tensor::ones([1, 1], (Kind::Int64, Device::Cpu)),
            &far,
        )
        .unwrap_err();
    assert!(
        err.to_string().contains("beyond the adapter's max_length"),
        "{err}"
    );
}
