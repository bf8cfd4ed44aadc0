//! The five adapters the official DePT repository released (`../shared/official-checkpoints`, T5-base, MIT):
//! `dept import official` reads every tensor exactly as `torch.load` does (goldens by
//! `tests/reference/official_reference.py`: SHA-256 of each tensor's bytes), `dept eval` runs on the imported
//! folder (a tiny random T5 with d = 768 stands in for t5-base), and `dept export official` writes a file that
//! `torch.load(weights_only=True)` reads back equal to the released one.

mod common;

use std::path::Path;
use std::process::Command;

use common::cli;
use sha2::{Digest, Sha256};
use tch::{Kind, Tensor};

/// Folder, m, r, s, and whether the file holds A and B: the official code saved them only from its
/// `save_lora_embeddings` option on (2023-09); WiC, NQ and HotpotQA were saved before it (July 2023).
const FOLDERS: [(&str, i64, i64, i64, bool); 5] = [
    ("cola", 80, 15, 256, true),
    ("sst2", 60, 30, 256, true),
    ("superglue-wic", 60, 30, 256, false),
    ("nq", 60, 24, 512, false),
    ("hotpotqa", 60, 24, 512, false),
];

fn golden() -> serde_json::Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/reference/official/golden.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn sha256(tensor: &Tensor) -> String {
    let tensor = tensor.contiguous();
    let mut bytes = vec![0u8; tensor.numel() * tensor.kind().elt_size_in_bytes()];
    tensor.copy_data_u8(&mut bytes, tensor.numel());
    format!("{:x}", Sha256::digest(&bytes))
}

#[test]
fn the_released_adapters_import_exactly_and_evaluate() {
    let Some(shared) = common::shared_dir() else {
        return;
    };
    let released = shared.join("official-checkpoints");
    assert!(
        released.is_dir(),
        "{} is missing: the released adapters are part of ../shared",
        released.display()
    );
    let golden = golden();
    let dir = tempfile::tempdir().unwrap();
    for (folder, m, r, s, has_pair) in FOLDERS {
        let out = dir.path().join(folder);
        let source = released.join(folder);
        let import = [
            "import",
            "official",
            cli::path(&source),
            "--out",
            cli::path(&out),
        ];
        if !has_pair {
            let refused = cli::fails(&import);
            assert!(refused.contains("A and B were not saved"), "{refused}");
        }
        let printed = cli::ok(&[&import[..], &["--missing-pair", "init"]].concat());
        assert!(
            printed.contains(&format!("m = {m}, r = {r}, s = {s}, d = 768")),
            "{printed}"
        );
        let tensors = Tensor::read_safetensors(out.join("adapter_model.safetensors")).unwrap();
        let expected = golden[folder].as_object().unwrap();
        assert_eq!(expected.len(), if has_pair { 3 } else { 1 }, "{folder}");
        assert_eq!(tensors.len(), 3, "{folder}");
        for (name, tensor) in &tensors {
            if !has_pair && name.starts_with("prompt_encoder.") {
                // Not in the file: A as the official code initialises it, B = 0.
                if name.ends_with("_B") {
                    assert_eq!(tensor.abs().sum(Kind::Double).double_value(&[]), 0.0);
                }
                continue;
            }
            let want = &expected[name.as_str()];
            assert_eq!(tensor.kind(), Kind::Float, "{folder} {name}");
            let shape: Vec<i64> = serde_json::from_value(want["shape"].clone()).unwrap();
            assert_eq!(tensor.size(), shape, "{folder} {name}");
            assert_eq!(
                sha256(tensor),
                want["sha256"].as_str().unwrap(),
                "{folder} {name}: not the bytes torch.load reads"
            );
        }
    }
    // Importing over an adapter is refused unless asked.
    let again = cli::fails(&[
        "import",
        "official",
        cli::path(&released.join("cola")),
        "--out",
        cli::path(&dir.path().join("cola")),
    ]);
    assert!(again.contains("--force"), "{again}");

    // dept eval on an imported adapter: t5-base's width and s = max_length, on the task it was trained for.
    let model = dir.path().join("tiny-t5-768");
    cli::ok(&[
        "tiny-model",
        "--arch",
        "t5",
        "--d-model",
        "768",
        "--tokenizer",
        cli::path(&shared.join("tokenizers/t5/tokenizer.json")),
        "--out",
        cli::path(&model),
    ]);
    let scores = cli::ok(&[
        "eval",
        "--adapter",
        cli::path(&dir.path().join("sst2")),
        "--model",
        cli::path(&model),
        "--data-dir",
        cli::path(&shared.join("data")),
        "--task",
        "sst2",
        "--split",
        "test",
        "--device",
        "cpu",
    ]);
    assert!(scores.contains("accuracy"), "{scores}");
}

#[test]
fn an_exported_adapter_is_what_torch_load_reads_from_the_released_one() {
    let Some(shared) = common::shared_dir() else {
        return;
    };
    let Some(python) = common::bench_python() else {
        return;
    };
    let released = shared.join("official-checkpoints/cola");
    let dir = tempfile::tempdir().unwrap();
    let imported = dir.path().join("dept");
    let exported = dir.path().join("official");
    cli::ok(&[
        "import",
        "official",
        cli::path(&released),
        "--out",
        cli::path(&imported),
    ]);
    cli::ok(&[
        "export",
        "official",
        cli::path(&imported),
        "--out",
        cli::path(&exported),
    ]);
    let script = r#"
import json, sys, torch
ours = torch.load(sys.argv[1] + "/adapter_model.bin", weights_only=True)
theirs = torch.load(sys.argv[2] + "/adapter_model.bin", map_location="cpu", weights_only=True)
assert list(ours) == list(theirs), (list(ours), list(theirs))
for name in theirs:
    assert ours[name].dtype == theirs[name].dtype and torch.equal(ours[name], theirs[name]), name
ours_config = json.load(open(sys.argv[1] + "/adapter_config.json"))
theirs_config = json.load(open(sys.argv[2] + "/adapter_config.json"))
for key in ["peft_type", "num_virtual_tokens", "r", "max_length", "token_dim", "lora_alpha", "task_type"]:
    assert ours_config[key] == theirs_config[key], (key, ours_config[key], theirs_config[key])
print("equal", len(theirs))
"#;
    let output = Command::new(python)
        .args(["-c", script, cli::path(&exported), cli::path(&released)])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success() && stdout.contains("equal 3"),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
}
