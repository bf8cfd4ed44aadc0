//! `dept serve` called by a client nobody here wrote: the official `openai` Python package (in the bench venv)
//! lists the adapters and asks completions on loopback, and gets the text each adapter decodes alone.
//!
//! The python is `DEPT_BENCH_PYTHON`, else the bench venv (`cargo xtask bench-venv`). `cargo xtask test` makes
//! the venv first and sets `DEPT_REQUIRE_PYTHON=1`, so that in CI this test runs rather than skips.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::server::Server;
use dept_core::{DecomposedPrompt, DeptConfig};
use dept_models::{load_backbone, PromptedModel, TextTokenizer};
use tch::{Device, Tensor};

const MAX_TOKENS: i64 = 6;

/// The bench venv's python with `openai`; `None` (skipping, saying why) where there is none, a panic when
/// DEPT_REQUIRE_PYTHON=1.
fn python_with_openai() -> Option<PathBuf> {
    let required = std::env::var_os("DEPT_REQUIRE_PYTHON").is_some_and(|v| v == "1");
    let found = dept_bench::python_side::python(None).ok().filter(|python| {
        Command::new(python)
            .args(["-c", "import openai"])
            .status()
            .is_ok_and(|s| s.success())
    });
    if found.is_none() {
        let why = "no python with the openai package (DEPT_BENCH_PYTHON or the bench venv: cargo xtask bench-venv)";
        assert!(!required, "{why}, and DEPT_REQUIRE_PYTHON=1");
        println!("skipped: {why}");
    }
    found
}

/// What `adapter` decodes alone for `prompt`, as text.
fn expected_text(model: &Path, adapter: &Path, prompt: &str) -> String {
    let backbone = load_backbone(model, Device::Cpu).unwrap();
    let tokenizer = TextTokenizer::from_model_dir(model).unwrap();
    let adapter = DecomposedPrompt::load(adapter, Device::Cpu).unwrap();
    let ids = Tensor::from_slice(&tokenizer.encode(prompt, None).unwrap()).view([1, -1]);
    let out = PromptedModel::new(backbone.as_ref(), &adapter)
        .generate(&ids, &ids.ones_like(), MAX_TOKENS)
        .unwrap();
    let tokens: Vec<i64> = Vec::<i64>::try_from(out.view([-1]))
        .unwrap()
        .into_iter()
        .take_while(|&t| t != backbone.eos_token_id())
        .collect();
    tokenizer.decode(&tokens).unwrap()
}

#[test]
fn the_openai_package_lists_adapters_and_gets_each_adapters_completions() {
    let Some(shared) = common::shared_dir() else {
        return;
    };
    let Some(python) = python_with_openai() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("t5");
    common::cli::ok(&[
        "tiny-model",
        "--arch",
        "t5",
        "--tokenizer",
        common::cli::path(&shared.join("tokenizers/t5/tokenizer.json")),
        "--out",
        common::cli::path(&model),
    ]);
    let adapters = dir.path().join("adapters");
    {
        let _rng = common::global_rng();
        tch::manual_seed(4);
        for (name, m, r) in [("rte", 6, 3), ("boolq-pt", 10, 0)] {
            let config = DeptConfig::new(m, r, 64, 32).unwrap();
            let adapter = DecomposedPrompt::new(config, None, Device::Cpu).unwrap();
            if let Some((_, b)) = adapter.pair() {
                let mut b = b.shallow_clone();
                tch::no_grad(|| b.copy_(&(Tensor::randn_like(&b) * 0.5)));
            }
            adapter.save(&adapters.join(name)).unwrap();
        }
    }
    let server = Server::start(&model, &["--adapters", common::cli::path(&adapters)]);
    let prompts = [
        "rte sentence1: A man is playing a guitar. sentence2: A person plays music.",
        "boolq question: is the sky blue passage: The sky is blue on a clear day.",
    ];
    for adapter in ["rte", "boolq-pt"] {
        let mut command = Command::new(&python);
        command
            .arg(common::reference_dir().join("../clients/openai_client.py"))
            .args(["--base-url", &format!("{}/v1", server.url())])
            .args(["--model", adapter, "--max-tokens", &MAX_TOKENS.to_string()]);
        for prompt in prompts {
            command.args(["--prompt", prompt]);
        }
        let out = command.output().unwrap();
        assert!(
            out.status.success(),
            "the openai client failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let answer: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(
            answer["models"],
            serde_json::json!(["boolq-pt", "rte"]),
            "{answer}"
        );
        assert_eq!(answer["missing"], 404, "{answer}");
        for (i, prompt) in prompts.iter().enumerate() {
            let expected = expected_text(&model, &adapters.join(adapter), prompt);
            assert_eq!(
                answer["completions"][i]["text"], expected,
                "{adapter}: {prompt}"
            );
            assert_eq!(
                answer["batched"][i], expected,
                "{adapter} (list prompt): {prompt}"
            );
        }
        println!(
            "openai {} against {adapter}: {}",
            answer["openai"], answer["completions"]
        );
    }
}
