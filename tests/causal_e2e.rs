//! End-to-end runs of the `dept` binary on tiny random decoder-only models (GPT-2 and Llama) that `dept tiny-model`
//! writes with GPT-2's real tokenizer, trained on real RTE rows (../shared): the model folder, a short DePT run
//! (run folder, results, falling loss), `eval` reproducing the logged validation score, `predict` (well-formed
//! JSON lines; a row's prediction does not depend on the left padding its batch gives it), and a run killed after
//! its first checkpoint and resumed, ending bit for bit as the uninterrupted run.
//!
//! Scores are meaningless with a random 32-wide model after 30 steps; only their form is checked.

mod common;

use std::path::{Path, PathBuf};
use std::time::Instant;

use common::cli::*;
use serde_json::Value;

/// A short CPU DePT run on RTE: 64 training rows, 16 validation and test rows, source and target within 96 tokens.
fn write_config(root: &Path, model: &Path, data_dir: &Path, run: &str) -> PathBuf {
    let yaml = format!(
        "task: rte\nmodel: {model:?}\ndata_dir: {data:?}\noutput_dir: {out:?}\nprompt_len: 4\nrank: 2\nmax_len: 96\n\
         lr_prompt: 0.3\nlr_pair: 0.05\nwarmup_steps: 5\nmax_steps: 30\nbatch_size: 8\nmax_train_examples: 64\n\
         max_eval_examples: 16\neval_every: 15\nsave_every: 15\ndecode_max_tokens: 3\ndevice: cpu\nthreads: 1\n\
         prompt_init: random\n",
        model = path(model),
        data = path(data_dir),
        out = path(&root.join(run)),
    );
    let file = root.join(format!("{run}.yaml"));
    std::fs::write(&file, yaml).unwrap();
    file
}

fn causal_pipeline(arch: &str, model_type: &str) {
    let Some(shared) = common::shared_dir() else {
        return;
    };
    let started = Instant::now();
    let lap = |what: &str| println!("{arch}: {what} at {:.1} s", started.elapsed().as_secs_f64());
    let tokenizer = shared.join("tokenizers/gpt2/tokenizer.json");
    let data_dir = shared.join("data");
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();

    // The model folder, in the Hugging Face layout.
    let model = root.join(arch);
    let out = ok(&[
        "tiny-model",
        "--arch",
        arch,
        "--out",
        path(&model),
        "--tokenizer",
        path(&tokenizer),
    ]);
    assert!(out.contains("wrote a tiny random"), "{out}");
    let config = common::read_json(&model.join("config.json"));
    assert_eq!(config["model_type"], model_type);
    assert_eq!(config["vocab_size"], 50257, "GPT-2's vocabulary");
    assert_eq!(config["eos_token_id"], 50256, "<|endoftext|>");
    assert_eq!(
        bytes(model.join("tokenizer.json")),
        bytes(tokenizer.clone())
    );
    lap("model written");

    // Training.
    let config = write_config(root, &model, &data_dir, "run");
    let stdout = ok(&["-q", "train", path(&config)]);
    assert!(stdout.contains("finished 30 steps"), "{stdout}");
    assert!(stdout.contains("test (best adapter): accuracy"), "{stdout}");
    let run = root.join("run");
    for file in [
        "config.yaml",
        "metrics.jsonl",
        "results.csv",
        "curves.svg",
        "best/adapter_config.json",
        "best/adapter_model.safetensors",
        "last/adapter_model.safetensors",
        "last/optimizer.safetensors",
        "last/trainer_state.json",
    ] {
        assert!(run.join(file).is_file(), "{file} missing");
    }
    // PEFT picks its model wrapper by the adapter's task type.
    let adapter = common::read_json(&run.join("best/adapter_config.json"));
    assert_eq!(adapter["task_type"], "CAUSAL_LM");
    let results = results_row(&run);
    assert_eq!(results["task"], "rte");
    assert_eq!((&*results["m"], &*results["r"]), ("4", "2"));
    assert_eq!(results["steps"], "30");
    for column in ["validation_accuracy", "test_accuracy"] {
        let value: f64 = results[column]
            .parse()
            .unwrap_or_else(|e| panic!("{column} = {:?}: {e}", results[column]));
        assert!((0.0..=100.0).contains(&value), "{column} = {value}");
    }
    let losses: Vec<f64> = records(&run)
        .iter()
        .filter_map(|r| r.get("loss").and_then(Value::as_f64))
        .collect();
    assert_eq!(losses.len(), 30);
    assert!(losses.iter().all(|l| l.is_finite()), "{losses:?}");
    let mean = |xs: &[f64]| xs.iter().sum::<f64>() / xs.len() as f64;
    assert!(
        losses[29] < losses[0] && mean(&losses[25..]) < mean(&losses[..5]),
        "the training loss did not fall: {losses:?}"
    );
    let validation: Vec<(u64, f64)> = records(&run)
        .iter()
        .filter(|r| r["split"] == "validation")
        .map(|r| {
            (
                r["step"].as_u64().unwrap(),
                r["metrics"]["accuracy"].as_f64().unwrap(),
            )
        })
        .collect();
    assert_eq!(validation.iter().map(|v| v.0).collect::<Vec<_>>(), [15, 30]);
    let best_step = common::read_json(&run.join("best/trainer_state.json"))["step"]
        .as_u64()
        .unwrap();
    let best_accuracy = validation.iter().find(|v| v.0 == best_step).unwrap().1;
    lap("trained");

    // Evaluation of the best adapter reproduces the logged validation score.
    let best = run.join("best");
    let predictions_file = root.join("eval-predictions.jsonl");
    let out = ok(&[
        "eval",
        "--adapter",
        path(&best),
        "--split",
        "validation",
        "--predictions",
        path(&predictions_file),
    ]);
    let line: Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(line["split"], "validation");
    assert_eq!(line["examples"], 16);
    let accuracy = line["metrics"]["accuracy"].as_f64().unwrap();
    assert!(
        (accuracy - best_accuracy).abs() < 1e-9,
        "eval {accuracy} vs logged {best_accuracy} at step {best_step}"
    );
    let evaluated = json_lines(&std::fs::read_to_string(&predictions_file).unwrap());
    assert_eq!(evaluated.len(), 16);
    for e in &evaluated {
        assert!(e["prediction"].is_string() && e["input"].is_string(), "{e}");
    }
    lap("evaluated");

    // Predictions for a short and a long input, together and alone.
    let by_length = |i: usize| evaluated[i]["input"].as_str().unwrap().len();
    let short = (0..evaluated.len()).min_by_key(|&i| by_length(i)).unwrap();
    let long = (0..evaluated.len()).max_by_key(|&i| by_length(i)).unwrap();
    assert!(by_length(long) > by_length(short));
    let inputs: String = [short, long]
        .iter()
        .map(|&i| {
            serde_json::json!({"id": evaluated[i]["id"], "input": evaluated[i]["input"]})
                .to_string()
                + "\n"
        })
        .collect();
    let input_file = root.join("inputs.jsonl");
    std::fs::write(&input_file, inputs).unwrap();
    let together = json_lines(&ok(&[
        "predict",
        "--adapter",
        path(&best),
        "--input",
        path(&input_file),
    ]));
    assert_eq!(together.len(), 2);
    for (p, &i) in together.iter().zip(&[short, long]) {
        assert_eq!(p["id"], evaluated[i]["id"]);
        assert_eq!(p["input"], evaluated[i]["input"]);
        let prediction = p["prediction"].as_str().unwrap_or_else(|| panic!("{p}"));
        // RTE's label ids get their class name beside them; anything else gets none.
        let label = match prediction {
            "0" => Some("entailment"),
            "1" => Some("not_entailment"),
            _ => None,
        };
        assert_eq!(p["label"].as_str(), label, "{p}");
        // The same prediction as in the evaluation batch of 16, padded to its own longest input.
        assert_eq!(p["prediction"], evaluated[i]["prediction"], "{p}");
    }
    let alone = json_lines(&ok(&[
        "predict",
        "--adapter",
        path(&best),
        "--text",
        evaluated[short]["input"].as_str().unwrap(),
    ]));
    assert_eq!(alone.len(), 1);
    assert_eq!(
        alone[0]["prediction"], together[0]["prediction"],
        "the short input alone vs left-padded beside a longer one"
    );
    lap("predicted");

    // Killed after the checkpoint at step 15, resumed: the same run as the uninterrupted one, bit for bit.
    let pieces_config = write_config(root, &model, &data_dir, "pieces");
    let pieces = root.join("pieces");
    assert!(
        run_and_kill(&pieces_config, &pieces, 18),
        "the run ended before it could be killed"
    );
    let stdout = ok(&["-q", "train", path(&pieces_config)]);
    assert!(stdout.contains("resumed from step 15"), "{stdout}");
    assert!(stdout.contains("finished 30 steps"), "{stdout}");
    for file in [
        "last/adapter_model.safetensors",
        "last/optimizer.safetensors",
        "best/adapter_model.safetensors",
    ] {
        assert!(
            bytes(run.join(file)) == bytes(pieces.join(file)),
            "{file} differs after kill and resume"
        );
    }
    assert_eq!(deterministic_records(&run), deterministic_records(&pieces));
    lap("killed and resumed");
}

#[test]
fn gpt2_trains_evaluates_predicts_and_resumes_on_rte() {
    causal_pipeline("gpt2", "gpt2");
}

#[test]
fn llama_trains_evaluates_predicts_and_resumes_on_rte() {
    causal_pipeline("llama", "llama");
}

/// `dept tiny-model` checks its flags; `dept tiny-t5` (scripts and configs use it) still writes a T5.
#[test]
fn tiny_model_flags_and_the_tiny_t5_alias() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("m");
    for arch in ["gpt2", "llama"] {
        let err = fails(&["tiny-model", "--arch", arch, "--out", path(&out)]);
        assert!(
            err.contains("--tokenizer") && err.contains(arch),
            "{arch}: {err}"
        );
    }
    let err = fails(&[
        "tiny-model",
        "--arch",
        "gpt2",
        "--out",
        path(&out),
        "--tokenizer",
        "tokenizer.json",
        "--feed-forward-proj",
        "relu",
    ]);
    assert!(err.contains("--feed-forward-proj"), "{err}");
    let err = fails(&["tiny-model", "--arch", "bert", "--out", path(&out)]);
    assert!(err.contains("gpt2") && err.contains("llama"), "{err}");
    assert!(!out.exists(), "nothing written on refusal");

    let stdout = ok(&[
        "tiny-t5",
        "--out",
        path(&out),
        "--feed-forward-proj",
        "relu",
    ]);
    assert!(stdout.contains("tiny random T5"), "{stdout}");
    let config = common::read_json(&out.join("config.json"));
    assert_eq!(config["model_type"], "t5");
    assert_eq!(config["feed_forward_proj"], "relu");
    let t5 = dir.path().join("t5");
    ok(&["tiny-model", "--out", path(&t5)]);
    assert_eq!(
        common::read_json(&t5.join("config.json"))["feed_forward_proj"],
        "gated-gelu"
    );
    let help = ok(&["--help"]);
    assert!(
        help.contains("tiny-model") && help.contains("tiny-t5"),
        "{help}"
    );
}
