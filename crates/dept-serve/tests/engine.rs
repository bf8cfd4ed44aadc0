//! The model thread against the reference: for T5, GPT-2 and Llama tiny models and ten adapters of different `m`
//! and `r` (prompt tuning among them), every request answered by the engine — mixed with other adapters' rows,
//! joining a running batch, under each batching policy — decodes token for token what its adapter decodes alone
//! through [`PromptedModel::generate`] (fp32).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use dept_core::{DecomposedPrompt, DeptConfig};
use dept_models::{load_backbone, Backbone, PromptedModel};
use dept_serve::engine::{self, Command, EngineHandle, Generated, Generation};
use dept_serve::metrics::Metrics;
use dept_serve::{EngineOptions, Policy, ServeError};
use tch::{Device, Tensor};
use tokio::sync::oneshot;

const S: i64 = 32;
const MAX_TOKENS: usize = 12;
const SHAPES: [(i64, i64); 10] = [
    (4, 2),
    (1, 6),
    (9, 1),
    (6, 0),
    (2, 3),
    (12, 0),
    (5, 4),
    (3, 8),
    (7, 2),
    (1, 0),
];

/// `../shared` (or DEPT_SHARED_DIR); `None` with a message where it is absent, a panic when DEPT_REQUIRE_SHARED=1.
fn shared_dir() -> Option<PathBuf> {
    let dir = std::env::var_os("DEPT_SHARED_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared"));
    if dir.join("tokenizers").is_dir() {
        Some(dir)
    } else if std::env::var_os("DEPT_REQUIRE_SHARED").is_some_and(|v| v == "1") {
        panic!("{} not found and DEPT_REQUIRE_SHARED=1", dir.display());
    } else {
        println!("skipped: {} not found (set DEPT_SHARED_DIR)", dir.display());
        None
    }
}

/// Ten adapter folders for `backbone` (non-zero `B`, so every pair changes the numbers).
fn write_adapters(backbone: &dyn Backbone, root: &Path) -> Vec<String> {
    tch::manual_seed(17);
    SHAPES
        .iter()
        .enumerate()
        .map(|(i, &(m, r))| {
            let mut config = DeptConfig::new(m, r, S, backbone.hidden_size()).unwrap();
            config.task_type = backbone.architecture().peft_task_type().to_string();
            let adapter = DecomposedPrompt::new(config, None, Device::Cpu).unwrap();
            if let Some((_, b)) = adapter.pair() {
                let mut b = b.shallow_clone();
                tch::no_grad(|| b.copy_(&(Tensor::randn_like(&b) * 0.5)));
            }
            let name = format!("a{i}-m{m}-r{r}");
            adapter.save(&root.join(&name)).unwrap();
            name
        })
        .collect()
}

fn sources(vocab: i64, n: usize) -> Vec<Vec<i64>> {
    (0..n as i64)
        .map(|i| {
            let len = 2 + (i * 7) % 17;
            (0..len)
                .map(|j| 5 + (i * 31 + j * 17) % (vocab - 5))
                .collect()
        })
        .collect()
}

fn alone(backbone: &dyn Backbone, source: &[i64], adapter: &DecomposedPrompt) -> Vec<i64> {
    let ids = Tensor::from_slice(source).view([1, -1]);
    let out = PromptedModel::new(backbone, adapter)
        .generate(&ids, &ids.ones_like(), MAX_TOKENS as i64)
        .unwrap();
    let mut tokens = Vec::<i64>::try_from(out.view([-1])).unwrap();
    if let Some(end) = tokens.iter().position(|&t| t == backbone.eos_token_id()) {
        tokens.truncate(end + 1);
    }
    tokens
}

fn submit(
    engine: &EngineHandle,
    adapter: &str,
    source: &[i64],
) -> oneshot::Receiver<Result<Generated, ServeError>> {
    let (reply, answer) = oneshot::channel();
    engine
        .submit(Generation {
            adapter: adapter.to_string(),
            input_ids: source.to_vec(),
            max_tokens: MAX_TOKENS,
            reply,
        })
        .unwrap();
    answer
}

/// The value of a metric line `name value` in the text exposition.
fn metric(metrics: &Metrics, name: &str) -> f64 {
    metrics
        .render()
        .lines()
        .find_map(|l| l.strip_prefix(name).and_then(|v| v.trim().parse().ok()))
        .unwrap_or(0.0)
}

fn check(model_dir: &Path) {
    let reference = load_backbone(model_dir, Device::Cpu).unwrap();
    let root = tempfile::tempdir().unwrap();
    let names = write_adapters(reference.as_ref(), root.path());
    let adapters: Vec<DecomposedPrompt> = names
        .iter()
        .map(|n| DecomposedPrompt::load(&root.path().join(n), Device::Cpu).unwrap())
        .collect();
    let requests: Vec<(usize, Vec<i64>)> = sources(reference.vocab_size().min(30_000), 30)
        .into_iter()
        .enumerate()
        .map(|(i, s)| ((i * 7) % names.len(), s))
        .collect();
    let expected: Vec<Vec<i64>> = requests
        .iter()
        .map(|(a, s)| alone(reference.as_ref(), s, &adapters[*a]))
        .collect();
    assert!(
        expected.iter().any(|e| e.len() == MAX_TOKENS),
        "{expected:?}"
    );

    for policy in [Policy::Continuous, Policy::PerAdapter, Policy::OneAtATime] {
        let metrics = Arc::new(Metrics::new());
        let dir = model_dir.to_path_buf();
        let initial = names
            .iter()
            .map(|n| (n.clone(), root.path().join(n)))
            .collect();
        let options = EngineOptions {
            policy,
            max_batch_rows: 8,
            ..EngineOptions::default()
        };
        let (engine, _thread) = engine::start(
            move || {
                load_backbone(&dir, Device::Cpu).map_err(|e| ServeError::Startup(e.to_string()))
            },
            "test".into(),
            initial,
            options,
            metrics.clone(),
        )
        .unwrap();
        // A first wave, then a second one sent while the first is decoding: its rows join the running batch.
        let (first, second) = requests.split_at(12);
        let mut answers: Vec<_> = first
            .iter()
            .map(|(a, s)| submit(&engine, &names[*a], s))
            .collect();
        let started = Instant::now();
        while metric(&metrics, "dept_running_rows") == 0.0
            && started.elapsed() < Duration::from_secs(10)
        {
            std::thread::sleep(Duration::from_millis(1));
        }
        answers.extend(second.iter().map(|(a, s)| submit(&engine, &names[*a], s)));
        for (i, answer) in answers.into_iter().enumerate() {
            let got = answer.blocking_recv().unwrap().unwrap();
            assert_eq!(
                got.tokens, expected[i],
                "{policy:?}: request {i} (adapter {}) decoded differently from its adapter alone",
                names[requests[i].0]
            );
            assert_eq!(
                got.stopped,
                got.tokens.last() == Some(&reference.eos_token_id())
            );
        }
        let prefills = metric(&metrics, "dept_prefill_rows_count");
        let steps = metric(&metrics, "dept_step_rows_count");
        let rows_stepped = metric(&metrics, "dept_step_rows_sum");
        match policy {
            // Rows of several adapters ran together, and some joined a batch already running.
            Policy::Continuous => {
                assert!(
                    rows_stepped / steps > 2.0,
                    "{rows_stepped} rows over {steps} steps"
                );
                assert!(prefills >= 2.0, "{prefills} admissions");
            }
            Policy::OneAtATime => assert_eq!(rows_stepped, steps, "one row per step"),
            Policy::PerAdapter => assert!(prefills >= names.len() as f64 - 1.0, "{prefills}"),
        }
    }
}

#[test]
fn t5_engine_answers_match_each_adapter_alone_under_every_policy() {
    let dir = tempfile::tempdir().unwrap();
    let words: Vec<String> = (0..400).map(|i| format!("w{i}")).collect();
    let words: Vec<&str> = words.iter().map(String::as_str).collect();
    dept_models::tiny::write_tiny_t5(dir.path(), &words, 32, "gated-gelu", 3).unwrap();
    check(dir.path());
}

#[test]
fn gpt2_engine_answers_match_each_adapter_alone_under_every_policy() {
    let Some(shared) = shared_dir() else { return };
    let dir = tempfile::tempdir().unwrap();
    dept_models::tiny::write_tiny_gpt2(
        dir.path(),
        &shared.join("tokenizers/gpt2/tokenizer.json"),
        32,
        3,
    )
    .unwrap();
    check(dir.path());
}

#[test]
fn llama_engine_answers_match_each_adapter_alone_under_every_policy() {
    let Some(shared) = shared_dir() else { return };
    let dir = tempfile::tempdir().unwrap();
    dept_models::tiny::write_tiny_llama(
        dir.path(),
        &shared.join("tokenizers/gpt2/tokenizer.json"),
        32,
        3,
    )
    .unwrap();
    check(dir.path());
}

#[test]
fn unknown_adapters_reloads_and_unloads_are_answered_on_the_model_thread() {
    let dir = tempfile::tempdir().unwrap();
    let words = ["a", "b", "c", "d"];
    dept_models::tiny::write_tiny_t5(dir.path(), &words, 16, "relu", 1).unwrap();
    let reference = load_backbone(dir.path(), Device::Cpu).unwrap();
    let root = tempfile::tempdir().unwrap();
    let names = write_adapters(reference.as_ref(), root.path());
    let model = dir.path().to_path_buf();
    let (engine, _thread) = engine::start(
        move || load_backbone(&model, Device::Cpu).map_err(|e| ServeError::Startup(e.to_string())),
        "test".into(),
        vec![(names[0].clone(), root.path().join(&names[0]))],
        EngineOptions::default(),
        Arc::new(Metrics::new()),
    )
    .unwrap();
    let missing = submit(&engine, "nope", &[5, 6])
        .blocking_recv()
        .unwrap()
        .unwrap_err();
    assert_eq!(missing.status(), 404);
    assert!(missing.to_string().contains(&names[0]), "{missing}");
    // A reload under the same name with other files: a new version; an unload: then unknown.
    let (reply, answer) = oneshot::channel();
    engine
        .send(Command::Load {
            name: names[0].clone(),
            dir: root.path().join(&names[1]),
            reply,
        })
        .unwrap();
    let reloaded = answer.blocking_recv().unwrap().unwrap();
    assert_eq!((reloaded.m, reloaded.r), SHAPES[1]);
    let answered = submit(&engine, &names[0], &[5, 6])
        .blocking_recv()
        .unwrap()
        .unwrap();
    assert_eq!(answered.version, reloaded.version);
    let (reply, answer) = oneshot::channel();
    engine
        .send(Command::Unload {
            name: names[0].clone(),
            reply,
        })
        .unwrap();
    answer.blocking_recv().unwrap().unwrap();
    assert_eq!(
        submit(&engine, &names[0], &[5])
            .blocking_recv()
            .unwrap()
            .unwrap_err()
            .status(),
        404
    );
    assert_eq!(engine.queued(), 0);
}
