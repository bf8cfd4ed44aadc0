//! `--model org/name` resolved through the Hugging Face cache, end to end: a hub-shaped server on loopback
//! ([`dept_hub::fixture`], `HF_ENDPOINT`) serves a tiny T5 folder as `org/tiny-t5`; `dept eval` downloads it into
//! `HF_HUB_CACHE` (its weights over a connection cut mid-file, resumed), runs on it, then runs again offline
//! (`HF_HUB_OFFLINE=1`, the server unreachable) from the cache; an empty cache offline is an error that says so.
//! `dept data fetch rte` gets RTE's splits from the same server's parquet export of `nyu-mll/glue` into a data dir
//! the loaders read.

mod common;
#[path = "../crates/dept-data/tests/support/rte_parquet.rs"]
mod rte_parquet;

use std::path::Path;
use std::process::{Command, Output};

use common::cli;
use dept_core::{DecomposedPrompt, DeptConfig};
use dept_hub::fixture::{FixtureHub, COMMIT};

fn dept_with(env: &[(&str, &str)], args: &[&str]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_dept"));
    command.args(args).env_remove("DEPT_LOG");
    for var in [
        "HF_HOME",
        "HF_HUB_CACHE",
        "HF_ENDPOINT",
        "HF_HUB_OFFLINE",
        "HF_TOKEN",
    ] {
        command.env_remove(var);
    }
    for (key, value) in env {
        command.env(key, value);
    }
    command.output().expect("run dept")
}

#[test]
fn a_hub_model_is_downloaded_into_the_cache_then_used_offline() {
    let Some(shared) = common::shared_dir() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("tiny-t5");
    cli::ok(&[
        "tiny-model",
        "--tokenizer",
        cli::path(&shared.join("tokenizers/t5/tokenizer.json")),
        "--out",
        cli::path(&model),
    ]);
    let hub = FixtureHub::start().unwrap();
    hub.add_folder("org/tiny-t5", &model).unwrap();
    hub.cut_next_download_after(100_000);
    let adapter = dir.path().join("adapter");
    tch::manual_seed(0);
    DecomposedPrompt::new(
        DeptConfig::new(4, 2, 64, 32).unwrap(),
        None,
        tch::Device::Cpu,
    )
    .unwrap()
    .save(&adapter)
    .unwrap();
    let cache = dir.path().join("hf-cache");
    let data = shared.join("data");
    let eval = [
        "eval",
        "--adapter",
        cli::path(&adapter),
        "--model",
        "org/tiny-t5",
        "--data-dir",
        cli::path(&data),
        "--task",
        "rte",
        "--split",
        "validation",
        "--device",
        "cpu",
    ];
    let (first, second) = (
        dir.path().join("online.jsonl"),
        dir.path().join("offline.jsonl"),
    );
    let online = dept_with(
        &[
            ("HF_HUB_CACHE", cli::path(&cache)),
            ("HF_ENDPOINT", hub.endpoint()),
        ],
        &[&eval[..], &["--predictions", cli::path(&first)]].concat(),
    );
    let stdout = String::from_utf8_lossy(&online.stdout).to_string();
    assert!(
        online.status.success(),
        "{}",
        String::from_utf8_lossy(&online.stderr)
    );
    assert!(stdout.contains("accuracy"), "{stdout}");
    let snapshot = cache.join(format!("models--org--tiny-t5/snapshots/{COMMIT}"));
    for file in ["config.json", "tokenizer.json", "model.safetensors"] {
        assert_eq!(
            std::fs::read(snapshot.join(file)).unwrap(),
            std::fs::read(model.join(file)).unwrap(),
            "{file}"
        );
    }
    let log = hub.log();
    assert!(
        log.iter()
            .any(|l| l.starts_with("GET /cdn/") && l.ends_with("Some(100000)")),
        "the cut download was not resumed with a Range request: {log:?}"
    );

    // Offline, with the server unreachable: the same scores from the cache, and no request.
    let before = hub.log().len();
    let offline = dept_with(
        &[
            ("HF_HUB_CACHE", cli::path(&cache)),
            ("HF_ENDPOINT", "http://127.0.0.1:9"),
            ("HF_HUB_OFFLINE", "1"),
        ],
        &[&eval[..], &["--predictions", cli::path(&second)]].concat(),
    );
    assert!(
        offline.status.success(),
        "{}",
        String::from_utf8_lossy(&offline.stderr)
    );
    let scores = |text: &str| cli::json_lines(text)[0]["metrics"].clone();
    assert_eq!(
        scores(&String::from_utf8_lossy(&offline.stdout)),
        scores(&stdout)
    );
    assert_eq!(
        std::fs::read(&first).unwrap(),
        std::fs::read(&second).unwrap()
    );
    assert_eq!(hub.log().len(), before);

    // Offline with an empty cache: refused, naming the model, the cache and the setting.
    let empty = dir.path().join("empty-cache");
    let refused = dept_with(
        &[("HF_HUB_CACHE", cli::path(&empty)), ("HF_HUB_OFFLINE", "1")],
        &eval,
    );
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success());
    assert!(
        stderr.contains("org/tiny-t5")
            && stderr.contains("HF_HUB_OFFLINE")
            && stderr.contains(cli::path(&empty)),
        "{stderr}"
    );
    assert!(!Path::new(&empty).join("models--org--tiny-t5").exists());
}

#[test]
fn dept_data_fetch_puts_a_tasks_parquet_export_where_the_loaders_read_it() {
    let dir = tempfile::tempdir().unwrap();
    let exported = dir.path().join("export");
    rte_parquet::write_rte(&exported.join("train.parquet"), 40);
    rte_parquet::write_rte(&exported.join("validation.parquet"), 20);
    let hub = FixtureHub::start().unwrap();
    let read = |name: &str| std::fs::read(exported.join(name)).unwrap();
    hub.add_dataset(
        "nyu-mll/glue",
        vec![
            ("rte/train/0000.parquet".into(), read("train.parquet"), true),
            (
                "rte/validation/0000.parquet".into(),
                read("validation.parquet"),
                true,
            ),
        ],
    );
    let (cache, data) = (dir.path().join("hf-cache"), dir.path().join("data"));
    let env = [
        ("HF_HUB_CACHE", cli::path(&cache)),
        ("HF_ENDPOINT", hub.endpoint()),
    ];
    let fetch = ["data", "fetch", "rte", "--data-dir", cli::path(&data)];
    let out = dept_with(&env, &fetch);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // RTE's validation is halved into validation and test, as the official code does.
    assert!(
        stdout.contains("rte: nyu-mll/glue (rte)")
            && stdout.contains("train 40, validation 10, test 10"),
        "{stdout}"
    );
    assert_eq!(
        std::fs::read(data.join("RTE/rte/train/0000.parquet")).unwrap(),
        read("train.parquet")
    );
    let stats = cli::ok(&["data", "stats", "rte", "--data-dir", cli::path(&data)]);
    assert!(stats.contains("40"), "{stats}");
    // A task with no hub dataset is refused with what to do.
    let vqa = dept_with(
        &env,
        &["data", "fetch", "vqa", "--data-dir", cli::path(&data)],
    );
    assert!(String::from_utf8_lossy(&vqa.stderr).contains("not on the hub"));
}
