//! A local sweep survives its runner: `dept sweep run` killed with SIGKILL at pseudo-random moments and started
//! again ends with every point trained exactly once, bit for bit as an uninterrupted sweep; the trainers of a killed
//! runner do not train on as orphans (they get SIGTERM and stop); no point ever has two trainers; a point that
//! fails is marked failed with its error while the others finish, is not retried by a plain run, and is by
//! `--retry-failed`. Tiny random T5 points on real RTE rows, two at a time.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output};
use std::time::{Duration, Instant};

fn dept() -> Command {
    Command::new(env!("CARGO_BIN_EXE_dept"))
}

fn run(command: &mut Command) -> Output {
    command.output().expect("start dept")
}

fn text(output: &Output) -> String {
    format!(
        "status {}\nstdout:\n{}\nstderr:\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// 2 seeds × 2 model folders, one of which (`late`) does not exist until the end: those two points fail when
/// their trainer starts (the sweep cannot check a folder it cannot read, so `dept train` is the one to refuse it).
fn write_sweep(dir: &Path, shared: &Path) -> PathBuf {
    let file = dir.join("kills.yaml");
    std::fs::write(
        &file,
        format!(
            "name: kills
set:
  data_dir: {data:?}
  task: rte
  method: dept
  prompt_len: 4
  rank: 2
  max_len: 64
  lr_prompt: 0.3
  max_steps: 240
  warmup_steps: 3
  batch_size: 8
  eval_batch_size: 32
  eval_every: 120
  save_every: 20
  max_train_examples: 64
  max_eval_examples: 32
  decode_max_tokens: 3
  prompt_init: random
  device: cpu
  threads: 1
grid:
  model: [tiny, late]
  seed: [42, 43]
",
            data = shared.join("data").display().to_string()
        ),
    )
    .unwrap();
    file
}

const GOOD: [&str; 2] = ["model-tiny__seed-42", "model-tiny__seed-43"];
const BAD: [&str; 2] = ["model-late__seed-42", "model-late__seed-43"];

fn sweep_run(dir: &Path, out: &str, extra: &[&str]) -> Command {
    let mut command = dept();
    command
        .current_dir(dir)
        .args(["sweep", "run", "kills.yaml", "--slots", "2", "--out", out])
        .args(extra);
    command
}

fn log_of(out: &Path, id: &str) -> String {
    std::fs::read_to_string(out.join("logs").join(format!("{id}.log"))).unwrap_or_default()
}

/// Processes whose parent is `parent`, with the point each trains (from its config path).
fn trainers_of(parent: u32) -> Vec<(i32, String)> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let stat = std::fs::read_to_string(entry.path().join("stat")).unwrap_or_default();
        // `pid (comm) state ppid …`: the fields after the last `)`.
        let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
        if after.split_whitespace().nth(1) != Some(&parent.to_string()) {
            continue;
        }
        let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
        let config = String::from_utf8_lossy(&cmdline)
            .split('\0')
            .find(|a| a.ends_with(".yaml"))
            .map(|c| {
                Path::new(c)
                    .file_stem()
                    .unwrap()
                    .to_string_lossy()
                    .to_string()
            });
        if let Some(point) = config {
            found.push((pid, point));
        }
    }
    found
}

/// Whether `pid` has ended (gone, or a zombie nobody reaped: some containers' pid 1 never does).
fn ended(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .is_some_and(|state| state == "Z" || state == "X"),
    }
}

/// A small xorshift generator: the kill moments are pseudo-random but the same on every run of the test.
struct Moments(u64);

impl Moments {
    fn next_ms(&mut self, below: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % below
    }
}

/// Starts a runner, waits until it has a trainer, lets it run a pseudo-random while, SIGKILLs it, and returns the
/// trainers it had then (pid, point).
fn kill_a_runner(dir: &Path, moments: &mut Moments, round: usize) -> Vec<(i32, String)> {
    let log = std::fs::File::create(dir.join(format!("runner-{round}.log"))).unwrap();
    let mut runner: Child = sweep_run(dir, "out", &[])
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .unwrap();
    let start = Instant::now();
    while trainers_of(runner.id()).is_empty() {
        if let Some(status) = runner.try_wait().unwrap() {
            panic!("round {round}: the runner ended ({status}) before it was killed");
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "no trainer started"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(moments.next_ms(1500)));
    let trainers = trainers_of(runner.id());
    runner.kill().unwrap();
    runner.wait().unwrap();
    trainers
}

#[test]
fn a_local_sweep_survives_its_runner_being_killed() {
    let Some(shared) = common::shared_dir() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    let out = dir.join("out");
    let tokenizer = shared.join("tokenizers/t5/tokenizer.json");
    let tiny = run(dept()
        .args(["tiny-t5", "--out"])
        .arg(dir.join("tiny"))
        .arg("--tokenizer")
        .arg(&tokenizer));
    assert!(tiny.status.success(), "{}", text(&tiny));
    write_sweep(dir, &shared);

    // The uninterrupted sweep, for comparison: the good points finish, the others fail.
    let reference = run(&mut sweep_run(dir, "reference", &[]));
    assert_eq!(reference.status.code(), Some(1), "{}", text(&reference));

    // Runners killed at pseudo-random moments while they train; the trainers of each must stop (SIGTERM from the
    // kernel as their runner dies) before their point is done, not train on unattended.
    let mut moments = Moments(0x5eed_cafe_f00d_d00d);
    let mut orphans = 0;
    for round in 0..4 {
        let trainers = kill_a_runner(dir, &mut moments, round);
        for (pid, point) in &trainers {
            let start = Instant::now();
            while !ended(*pid) {
                assert!(
                    start.elapsed() < Duration::from_secs(20),
                    "round {round}: the trainer of {point} (pid {pid}) is still running 20 s after its runner \
                     was killed"
                );
                std::thread::sleep(Duration::from_millis(20));
            }
            if GOOD.contains(&point.as_str()) {
                orphans += 1;
                assert!(
                    !out.join("runs").join(point).join("results.csv").is_file(),
                    "round {round}: {point} finished after its runner was killed: its trainer trained on"
                );
            }
        }
    }
    assert!(
        orphans >= 2,
        "only {orphans} trainers were running at a kill"
    );

    // A runner left alone ends the sweep: the good points are done, the bad ones failed with their error.
    let finished = run(&mut sweep_run(dir, "out", &[]));
    let finished_text = text(&finished);
    assert_eq!(finished.status.code(), Some(1), "{finished_text}");
    assert!(
        finished_text.contains("2 point(s) failed") && finished_text.contains("--retry-failed"),
        "{finished_text}"
    );
    for id in BAD {
        let line = finished_text
            .lines()
            .find(|l| l.trim_start().starts_with(&format!("{id}: ")))
            .unwrap_or_else(|| panic!("{id} is not listed with its error:\n{finished_text}"));
        assert!(
            line.contains("late") && line.contains("exit status: 1"),
            "{line}"
        );
    }

    // Every good point trained exactly once, resumed where it was stopped, and ended bit for bit as in the
    // uninterrupted sweep. No trainer was ever refused a run folder another trainer held.
    let mut resumed = 0;
    for id in GOOD {
        let log = log_of(&out, id);
        assert_eq!(log.matches("finished 240 steps").count(), 1, "{id}:\n{log}");
        assert!(
            !log.contains("in use by another dept train"),
            "{id}:\n{log}"
        );
        resumed += log.matches("resumed from step").count();
        for file in [
            "best/adapter_model.safetensors",
            "last/adapter_model.safetensors",
            "last/optimizer.safetensors",
        ] {
            let ours = std::fs::read(out.join("runs").join(id).join(file)).unwrap();
            let theirs = std::fs::read(dir.join("reference/runs").join(id).join(file)).unwrap();
            assert!(
                ours == theirs,
                "{id}/{file} differs from the uninterrupted sweep"
            );
        }
        let results = |root: &Path| {
            let csv =
                std::fs::read_to_string(root.join("runs").join(id).join("results.csv")).unwrap();
            // Every column but the last (the run folder, which differs).
            csv.lines()
                .map(|l| l.rsplit_once(',').unwrap().0.to_string())
                .collect::<Vec<_>>()
        };
        assert_eq!(results(&out), results(&dir.join("reference")), "{id}");
    }
    assert!(resumed >= 1, "no point resumed from a checkpoint");

    // status shows the failures with their error; a plain run leaves them failed and starts nothing.
    let status =
        run(dept()
            .current_dir(dir)
            .args(["sweep", "status", "kills.yaml", "--out", "out"]));
    let status_text = text(&status);
    assert!(status_text.contains("2 done"), "{status_text}");
    assert!(status_text.contains("2 failed"), "{status_text}");
    for id in BAD {
        assert!(
            status_text
                .lines()
                .any(|l| l.contains(id) && l.contains("failed: ") && l.contains("late")),
            "{status_text}"
        );
    }
    let starts = |id: &str| log_of(&out, id).matches("=== dept sweep: starting").count();
    let before: Vec<usize> = BAD.iter().map(|id| starts(id)).collect();
    let again = run(&mut sweep_run(dir, "out", &[]));
    assert_eq!(again.status.code(), Some(1), "{}", text(&again));
    assert!(text(&again).contains("left failed"), "{}", text(&again));
    assert_eq!(
        BAD.map(starts).to_vec(),
        before,
        "a plain run retried failed points"
    );

    // With the missing folder there, --retry-failed runs them again and the sweep is done.
    std::os::unix::fs::symlink(dir.join("tiny"), dir.join("late")).unwrap();
    let retried = run(&mut sweep_run(dir, "out", &["--retry-failed"]));
    assert!(retried.status.success(), "{}", text(&retried));
    assert!(
        text(&retried).contains("every point is done"),
        "{}",
        text(&retried)
    );
    for (id, was) in BAD.iter().zip(before) {
        assert_eq!(starts(id), was + 1, "{id}");
        assert!(out.join("runs").join(id).join("results.csv").is_file());
    }
    for id in GOOD {
        assert_eq!(
            log_of(&out, id).matches("finished 240 steps").count(),
            1,
            "{id} ran again"
        );
    }
}
