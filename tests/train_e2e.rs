//! End-to-end runs of the `dept` binary on a tiny random T5 and a synthetic RTE-format task the tests write:
//! learning, determinism, kill-and-resume bit for bit, best-step selection, eval/predict round trips, and bad input.

mod common;

use std::path::{Path, PathBuf};

use common::cli::*;
use common::fixture::Fixture;
use serde_json::Value;

/// The base every test's run starts from; `extra` lines replace its keys.
const BASE: &str = "prompt_len: 8\nrank: 4\nmax_len: 32\nlr_prompt: 0.3\nlr_pair: 0.05\nwarmup_steps: 5\n\
                    max_steps: 60\nbatch_size: 16\neval_every: 20\nsave_every: 10\neval_batch_size: 32\n\
                    decode_max_tokens: 3\ndevice: cpu\nthreads: 1\nprompt_init: random\nbackbone_dropout: true\n";

fn fixture() -> Fixture {
    Fixture::new(256, 64)
}

impl Fixture {
    /// A config for a small CPU run into `<root>/<run>`; `extra` holds `key: value` lines that replace the base.
    fn config(&self, run: &str, extra: &str) -> PathBuf {
        self.write_config(run, &self.run_dir(run), &format!("{BASE}{extra}"))
    }
}

#[test]
fn training_learns_and_writes_the_run_folder() {
    let fx = fixture();
    let config = fx.config("learn", "backbone_dropout: false\nmax_steps: 100\n");
    let stdout = ok(&["-q", "train", config.to_str().unwrap()]);
    assert!(stdout.contains("test (best adapter): accuracy"), "{stdout}");
    let run = fx.run_dir("learn");
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
    let loss = losses(&run);
    assert_eq!(loss.len(), 100);
    let mean = |xs: &[f64]| xs.iter().sum::<f64>() / xs.len() as f64;
    let (first, last) = (mean(&loss[..10]), mean(&loss[90..]));
    assert!(
        last < 0.5 * first,
        "loss {first:.3} -> {last:.3} did not fall by half"
    );
    let csv = std::fs::read_to_string(run.join("results.csv")).unwrap();
    let mut lines = csv.lines();
    assert!(lines.next().unwrap().starts_with("task,method,m,r,"));
    assert!(lines.next().unwrap().starts_with("rte,dept,8,4,"));
    let first_record = &records(&run)[0];
    for key in [
        "step",
        "loss",
        "lr_prompt",
        "lr_pair",
        "grad_norm",
        "examples_per_s",
    ] {
        assert!(first_record.get(key).is_some(), "metrics.jsonl lacks {key}");
    }
    // Linear warm-up over 5 steps: the first update runs at rate 0, the sixth at the full α1.
    assert_eq!(records(&run)[0]["lr_prompt"].as_f64(), Some(0.0));
    assert_eq!(
        records(&run)[5]["lr_prompt"].as_f64(),
        Some(0.3 * 95.0 / 95.0)
    );
}

/// `precision: bf16` keeps the backbone in bf16 and everything that is trained or saved in fp32. It is meant for
/// CUDA; libtorch runs bf16 on the CPU too, which lets this path be tested on machines without a GPU.
#[test]
fn bf16_trains_the_backbone_in_bf16_and_keeps_the_adapter_and_optimiser_in_fp32() {
    let fx = fixture();
    let fp32 = fx.config("fp32", "backbone_dropout: false\nmax_steps: 40\n");
    let bf16 = fx.config(
        "bf16",
        "backbone_dropout: false\nmax_steps: 40\nprecision: bf16\n",
    );
    ok(&["-q", "train", fp32.to_str().unwrap()]);
    ok(&["-q", "train", bf16.to_str().unwrap()]);
    let run = fx.run_dir("bf16");
    for file in [
        "last/adapter_model.safetensors",
        "last/optimizer.safetensors",
        "best/adapter_model.safetensors",
    ] {
        for (name, tensor) in tch::Tensor::read_safetensors(run.join(file)).unwrap() {
            let kind = tensor.kind();
            assert!(
                kind == tch::Kind::Float || kind == tch::Kind::Int64,
                "{file}: {name} is {kind:?}"
            );
        }
    }
    let (low, full) = (losses(&run), losses(&fx.run_dir("fp32")));
    assert!(low.iter().all(|l| l.is_finite()), "{low:?}");
    // The first step sees the same adapter and batch: only the backbone's rounding differs (8-bit mantissa).
    let first = (low[0] - full[0]).abs() / full[0];
    assert!(
        first > 0.0 && first < 0.05,
        "bf16 {} vs fp32 {}",
        low[0],
        full[0]
    );
    // And it learns like fp32 does.
    let mean = |xs: &[f64]| xs.iter().sum::<f64>() / xs.len() as f64;
    assert!(mean(&low[30..]) < 0.7 * mean(&low[..10]), "{low:?}");
}

#[test]
fn same_config_and_seed_give_the_same_metrics() {
    let fx = fixture();
    let a = fx.config("a", "max_steps: 30\n");
    let b = fx.config("b", "max_steps: 30\n");
    ok(&["-q", "train", a.to_str().unwrap()]);
    ok(&["-q", "train", b.to_str().unwrap()]);
    assert_eq!(
        deterministic_records(&fx.run_dir("a")),
        deterministic_records(&fx.run_dir("b"))
    );
    assert_eq!(
        bytes(fx.run_dir("a").join("last/adapter_model.safetensors")),
        bytes(fx.run_dir("b").join("last/adapter_model.safetensors"))
    );
}

#[test]
fn a_run_killed_and_resumed_ends_bit_for_bit_like_an_uninterrupted_one() {
    let fx = fixture();
    let extra = "max_steps: 50\nsave_every: 7\neval_every: 10\n";
    let whole = fx.config("whole", extra);
    ok(&["-q", "train", whole.to_str().unwrap()]);

    let pieces = fx.config("pieces", extra);
    let run = fx.run_dir("pieces");
    // Kill at several points, some between checkpoints, some likely during a checkpoint or evaluation.
    let killed = [3, 12, 21, 22, 36]
        .iter()
        .filter(|&&kill_after| run_and_kill(&pieces, &run, kill_after))
        .count();
    assert!(
        killed >= 4,
        "only {killed} of 5 runs were killed before finishing"
    );
    let stdout = ok(&["-q", "train", pieces.to_str().unwrap()]);
    assert!(stdout.contains("resumed from step"), "{stdout}");

    for file in [
        "last/adapter_model.safetensors",
        "last/optimizer.safetensors",
        "best/adapter_model.safetensors",
    ] {
        assert_eq!(
            bytes(fx.run_dir("whole").join(file)),
            bytes(run.join(file)),
            "{file} differs after kill and resume"
        );
    }
    assert_eq!(
        deterministic_records(&fx.run_dir("whole")),
        deterministic_records(&run)
    );
    let leftovers: Vec<String> = std::fs::read_dir(&run)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .filter(|n| n.contains("partial"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    // The two newest checkpoints are kept (`last.previous` is the fallback), the same in both runs.
    assert_eq!(
        bytes(
            fx.run_dir("whole")
                .join("last.previous/adapter_model.safetensors")
        ),
        bytes(run.join("last.previous/adapter_model.safetensors")),
    );
}

#[test]
fn the_best_adapter_is_the_best_validation_step_and_eval_reproduces_it() {
    let fx = fixture();
    let config = fx.config("best", "max_steps: 80\neval_every: 10\n");
    ok(&["-q", "train", config.to_str().unwrap()]);
    let run = fx.run_dir("best");
    let evals: Vec<(u64, f64)> = records(&run)
        .iter()
        .filter(|r| r["split"] == "validation")
        .map(|r| {
            (
                r["step"].as_u64().unwrap(),
                r["metrics"]["accuracy"].as_f64().unwrap(),
            )
        })
        .collect();
    assert_eq!(evals.len(), 8);
    // The first step reaching the highest accuracy.
    let best = evals
        .iter()
        .fold(evals[0], |acc, &e| if e.1 > acc.1 { e } else { acc });
    let state: Value = serde_json::from_str(
        &std::fs::read_to_string(run.join("best/trainer_state.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(state["step"].as_u64(), Some(best.0));

    let best_dir = run.join("best");
    let out = ok(&[
        "eval",
        "--adapter",
        best_dir.to_str().unwrap(),
        "--split",
        "validation",
    ]);
    let line: Value = serde_json::from_str(out.trim()).unwrap();
    let accuracy = line["metrics"]["accuracy"].as_f64().unwrap();
    assert!(
        (accuracy - best.1).abs() < 1e-9,
        "eval {accuracy} vs logged {}",
        best.1
    );
    let test = records(&run)
        .into_iter()
        .find(|r| r["split"] == "test")
        .unwrap();
    let out = ok(&["eval", "--adapter", best_dir.to_str().unwrap()]);
    let line: Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(line["split"], "test");
    assert!(
        (line["metrics"]["accuracy"].as_f64().unwrap()
            - test["metrics"]["accuracy"].as_f64().unwrap())
        .abs()
            < 1e-3
    );
}

#[test]
fn predict_round_trips_a_saved_adapter() {
    let fx = fixture();
    let config = fx.config("predict", "max_steps: 20\n");
    ok(&["-q", "train", config.to_str().unwrap()]);
    let best = fx.run_dir("predict").join("best");
    let predictions_file = fx.root.join("eval-predictions.jsonl");
    ok(&[
        "eval",
        "--adapter",
        best.to_str().unwrap(),
        "--split",
        "validation",
        "--predictions",
        predictions_file.to_str().unwrap(),
    ]);
    let evaluated: Vec<Value> = std::fs::read_to_string(&predictions_file)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let inputs: String = evaluated
        .iter()
        .map(|e| serde_json::json!({"id": e["id"], "input": e["input"]}).to_string() + "\n")
        .collect();
    let input_file = fx.root.join("inputs.jsonl");
    std::fs::write(&input_file, inputs).unwrap();
    let out = ok(&[
        "predict",
        "--adapter",
        best.to_str().unwrap(),
        "--input",
        input_file.to_str().unwrap(),
    ]);
    let predicted: Vec<Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(predicted.len(), evaluated.len());
    for (p, e) in predicted.iter().zip(&evaluated) {
        assert_eq!(p["id"], e["id"]);
        assert_eq!(p["prediction"], e["prediction"], "{}", e["input"]);
        // RTE's label ids get their class name beside them; anything else gets none.
        let expected = match p["prediction"].as_str() {
            Some("0") => Some("entailment"),
            Some("1") => Some("not_entailment"),
            _ => None,
        };
        assert_eq!(p["label"].as_str(), expected, "{p}");
    }
    let one = ok(&[
        "predict",
        "--adapter",
        best.to_str().unwrap(),
        "--text",
        evaluated[0]["input"].as_str().unwrap(),
    ]);
    let one: Value = serde_json::from_str(one.trim()).unwrap();
    assert_eq!(one["prediction"], evaluated[0]["prediction"]);
}

#[test]
fn bad_configs_and_mismatched_adapters_are_refused_with_reasons() {
    let fx = fixture();
    let typo = fx.config("typo", "max_step: 10\n");
    let err = fails(&["train", typo.to_str().unwrap()]);
    assert!(
        err.contains("unknown key `max_step`") && err.contains("max_steps"),
        "{err}"
    );

    let bad_set = fx.config("bad-set", "");
    let err = fails(&["train", bad_set.to_str().unwrap(), "--set", "batch_size=0"]);
    assert!(err.contains("batch_size"), "{err}");

    let err = fails(&["train", bad_set.to_str().unwrap(), "--set", "task=nonsense"]);
    assert!(err.contains("nonsense"), "{err}");

    // A value of the wrong type is reported with its key.
    let err = fails(&["train", bad_set.to_str().unwrap(), "--set", "lr_prompt=abc"]);
    assert!(err.contains("`lr_prompt`") && err.contains("abc"), "{err}");
    // A bad shape is refused before the model or the data is read (so no model folder is needed to see it).
    let err = fails(&[
        "train",
        bad_set.to_str().unwrap(),
        "--set",
        "prompt_len=-5",
        "--set",
        "model=/nonexistent/model",
    ]);
    assert!(
        err.contains("`prompt_len` must be at least 0, got -5"),
        "{err}"
    );
    // A missing model folder: the OS error once, with the file it could not read.
    let err = fails(&[
        "train",
        bad_set.to_str().unwrap(),
        "--set",
        "model=/nonexistent/model",
    ]);
    assert!(err.contains("/nonexistent/model/config.json"), "{err}");
    assert_eq!(err.matches("No such file or directory").count(), 1, "{err}");
    // A missing data file is found before tokenising anything.
    let empty = fx.root.join("empty-data");
    std::fs::create_dir_all(&empty).unwrap();
    let data = format!("data_dir={}", empty.display());
    let err = fails(&["train", bad_set.to_str().unwrap(), "--set", &data]);
    assert!(err.contains("empty-data"), "{err}");

    let err = fails(&["train", "/nonexistent/config.yaml"]);
    assert!(err.contains("/nonexistent/config.yaml"), "{err}");

    let err = fails(&["train", bad_set.to_str().unwrap(), "--resume"]);
    assert!(err.contains("--resume: no checkpoint"), "{err}");

    // An adapter trained for d = 32 on a model with d = 48.
    let config = fx.config("small", "max_steps: 10\n");
    ok(&["-q", "train", config.to_str().unwrap()]);
    let wide = fx.root.join("wide-model");
    dept_models::tiny::write_tiny_t5(&wide, &dept_data::synthetic::vocabulary(), 48, "relu", 2)
        .unwrap();
    let best = fx.run_dir("small").join("best");
    let err = fails(&[
        "eval",
        "--adapter",
        best.to_str().unwrap(),
        "--model",
        wide.to_str().unwrap(),
    ]);
    assert!(err.contains("d = 32") && err.contains("d = 48"), "{err}");

    // Resuming a run folder with a changed experiment is refused, naming what changed.
    let err = fails(&[
        "train",
        config.to_str().unwrap(),
        "--set",
        "lr_pair=0.5",
        "--set",
        "max_steps=20",
    ]);
    assert!(
        err.contains("lr_pair") && err.contains("--overwrite"),
        "{err}"
    );
}

/// `--overwrite` and `dept quickstart --dir` delete only folders dept made (the run marker); a run never writes
/// into someone else's non-empty folder.
#[test]
fn only_dept_folders_are_ever_deleted() {
    let fx = fixture();
    let home = fx.root.join("home");
    std::fs::create_dir_all(&home).unwrap();
    std::fs::write(home.join("notes.txt"), "keep me").unwrap();
    let config = fx.config("into-home", "max_steps: 2\n");
    let output = format!("output_dir={}", home.display());
    let err = fails(&[
        "train",
        config.to_str().unwrap(),
        "--set",
        &output,
        "--overwrite",
    ]);
    assert!(
        err.contains("refusing to delete") && err.contains("home"),
        "{err}"
    );
    let err = fails(&["train", config.to_str().unwrap(), "--set", &output]);
    assert!(err.contains("not a dept run folder"), "{err}");
    let err = fails(&[
        "quickstart",
        "--dir",
        home.to_str().unwrap(),
        "--steps",
        "1",
    ]);
    assert!(err.contains("refusing to delete"), "{err}");
    assert_eq!(
        std::fs::read_to_string(home.join("notes.txt")).unwrap(),
        "keep me"
    );

    // A run folder dept made is replaced by --overwrite.
    ok(&["-q", "train", config.to_str().unwrap()]);
    let run = fx.run_dir("into-home");
    assert!(run.join(".dept-run").is_file());
    std::fs::write(run.join("stale.txt"), "from before").unwrap();
    ok(&["-q", "train", config.to_str().unwrap(), "--overwrite"]);
    assert!(!run.join("stale.txt").exists() && run.join("last").is_dir());
}

#[test]
fn a_pretrained_adapter_initialises_a_new_run() {
    let fx = fixture();
    let source = fx.config("source", "max_steps: 20\n");
    ok(&["-q", "train", source.to_str().unwrap()]);
    let best = fx.run_dir("source").join("best");
    // Learning rates 0: the new run's adapter must stay exactly the pretrained one.
    let transfer = fx.config(
        "transfer",
        &format!(
            "max_steps: 2\neval_every: 2\nlr_prompt: 0.0\nlr_pair: 0.0\ninit_adapter: {:?}\n",
            best.display().to_string()
        ),
    );
    ok(&["-q", "train", transfer.to_str().unwrap()]);
    let load = |dir: PathBuf| dept_core::DecomposedPrompt::load(&dir, tch::Device::Cpu).unwrap();
    let (a, b) = (
        load(best.clone()),
        load(fx.run_dir("transfer").join("last")),
    );
    assert!(a.prompt().equal(b.prompt()));
    assert!(a.pair().unwrap().0.equal(b.pair().unwrap().0));
    assert!(a.pair().unwrap().1.equal(b.pair().unwrap().1));

    let mismatched = fx.config(
        "mismatched",
        &format!(
            "max_steps: 2\nprompt_len: 9\ninit_adapter: {:?}\n",
            best.display().to_string()
        ),
    );
    let err = fails(&["-q", "train", mismatched.to_str().unwrap()]);
    assert!(
        err.contains("init_adapter") && err.contains("m = 8") && err.contains("m = 9"),
        "{err}"
    );
}

#[test]
fn a_diverging_run_stops_and_keeps_the_last_good_checkpoint() {
    let fx = fixture();
    // A checkpoint after every step, so that one certainly exists when the loss stops being finite.
    let config = fx.config(
        "nan",
        "max_steps: 40\nsave_every: 1\nwarmup_steps: 0\nlr_prompt: 1.0e+38\nlr_pair: 1.0e+38\n",
    );
    let err = fails(&["-q", "train", config.to_str().unwrap()]);
    assert!(err.contains("the loss became"), "{err}");
    let failed_at: u64 = err
        .split("at step ")
        .nth(1)
        .and_then(|rest| rest.split(';').next())
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("no step in: {err}"));
    let last = fx.run_dir("nan").join("last");
    assert!(
        last.join("adapter_model.safetensors").is_file(),
        "no checkpoint kept"
    );
    let state: Value =
        serde_json::from_str(&std::fs::read_to_string(last.join("trainer_state.json")).unwrap())
            .unwrap();
    assert_eq!(state["step"].as_u64(), Some(failed_at - 1), "{state}");
    let adapter = dept_core::DecomposedPrompt::load(&last, tch::Device::Cpu).unwrap();
    let (a, b) = adapter.pair().unwrap();
    for tensor in [adapter.prompt(), a, b] {
        assert_eq!(
            tensor.isfinite().all().int64_value(&[]),
            1,
            "the kept checkpoint must hold finite values"
        );
    }
}

#[test]
fn every_shipped_config_loads() {
    let configs = Path::new(env!("CARGO_MANIFEST_DIR")).join("configs");
    let mut count = 0;
    let mut stack = vec![configs];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                // Sweep files have their own format and test (tests/sweep.rs).
                if !path.ends_with("sweeps") {
                    stack.push(path);
                }
            } else if path.extension().is_some_and(|e| e == "yaml") {
                let config = dept_train::ExperimentConfig::load(&path, &[])
                    .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
                dept_data::task(&config.task).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
                config
                    .shape(768)
                    .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
                count += 1;
            }
        }
    }
    assert!(count >= 20, "only {count} configs found");
}
