//! SIGTERM, SIGINT and SIGUSR1 sent to a running `dept train` (a tiny random T5 on a synthetic RTE-format task):
//! the run saves a complete checkpoint and exits 75 within 2 s, wherever the signal lands (in the middle of an
//! optimiser step, of a gradient-accumulation group, of an evaluation, of the final test), and the same command
//! then resumes and ends with files byte-identical to an uninterrupted run's. A second SIGINT aborts with 130 and
//! leaves the last checkpoint usable.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use common::cli::*;
use common::fixture::Fixture;
use serde_json::Value;

/// `dept_train::exit_status::PREEMPTED` and `ABORTED`.
const PREEMPTED: i32 = 75;
const ABORTED: i32 = 130;

/// Files a resumed run must hold byte for byte as the uninterrupted run does.
const COMPARED: [&str; 4] = [
    "last/adapter_model.safetensors",
    "last/optimizer.safetensors",
    "last/trainer_state.json",
    "best/adapter_model.safetensors",
];

impl Fixture {
    /// A CPU run into `<root>/<run>` with dropout on (so that a resume must also redraw the same masks); `extra`
    /// holds `key: value` lines that replace or add to the base.
    fn config(&self, run: &str, extra: &str) -> PathBuf {
        let base = "prompt_len: 8\nrank: 4\nmax_len: 32\nlr_prompt: 0.3\nlr_pair: 0.05\nwarmup_steps: 3\n\
                    batch_size: 16\neval_batch_size: 32\ndecode_max_tokens: 3\ndevice: cpu\nthreads: 1\n\
                    prompt_init: random\nbackbone_dropout: true\n";
        self.write_config(run, &self.run_dir(run), &format!("{base}{extra}"))
    }
}

/// A `dept -q train` in the background, its stderr kept in a file.
struct Training {
    child: Child,
    stderr: PathBuf,
}

impl Training {
    fn start(config: &Path) -> Self {
        let stderr = config.with_extension("stderr");
        let child = Command::new(env!("CARGO_BIN_EXE_dept"))
            .args(["-q", "train", path(config)])
            .env_remove("DEPT_LOG")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&stderr).unwrap())
            .spawn()
            .unwrap();
        Training { child, stderr }
    }

    /// Waits until `ready(records)` holds for the run's metrics.jsonl and returns those records; panics if the
    /// run ends first.
    fn wait_for(&mut self, run: &Path, what: &str, ready: impl Fn(&[Value]) -> bool) -> Vec<Value> {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!(
                    "the run ended ({status}) before {what}:\n{}",
                    self.stderr_text()
                );
            }
            let text = std::fs::read_to_string(run.join("metrics.jsonl")).unwrap_or_default();
            // A line being appended may be incomplete: only whole lines count.
            let records: Vec<Value> = text
                .lines()
                .filter_map(|l| serde_json::from_str(l).ok())
                .collect();
            if ready(&records) {
                return records;
            }
            assert!(Instant::now() < deadline, "no {what} within 60 s");
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    fn signal(&self, signal: libc::c_int) {
        // SAFETY: signalling the child this test started (it has not been waited for, so its pid is not reused).
        assert_eq!(
            unsafe { libc::kill(self.child.id() as libc::pid_t, signal) },
            0
        );
    }

    /// Blocks until `signal` is no longer pending for the process: it has been delivered to its handler.
    fn wait_until_delivered(&mut self, signal: libc::c_int) {
        let status = format!("/proc/{}/status", self.child.id());
        let bit = 1u64 << (signal - 1);
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let text = std::fs::read_to_string(&status).unwrap_or_default();
            let pending = text
                .lines()
                .filter(|l| l.starts_with("ShdPnd:") || l.starts_with("SigPnd:"))
                .filter_map(|l| u64::from_str_radix(l.split_whitespace().nth(1)?, 16).ok())
                .fold(0, |a, b| a | b);
            if pending & bit == 0 {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "signal {signal} still pending after 5 s"
            );
            std::thread::sleep(Duration::from_micros(100));
        }
    }

    /// The exit status, which must come within `limit`.
    fn exit_within(&mut self, limit: Duration) -> ExitStatus {
        let start = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            if start.elapsed() > limit {
                let _ = self.child.kill();
                let _ = self.child.wait();
                panic!(
                    "still running {limit:?} after the signal:\n{}",
                    self.stderr_text()
                );
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    fn stderr_text(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }
}

/// Training steps in `records` (one line each carries a loss).
fn steps(records: &[Value]) -> usize {
    records.iter().filter(|r| r.get("loss").is_some()).count()
}

fn is_validation_of(record: &Value, step: u64) -> bool {
    record["split"] == "validation" && record["step"].as_u64() == Some(step)
}

/// Sends `signal` `delay` after `ready` holds, checks the status 75 within 2 s, the message and the checkpoint, and returns
/// the saved trainer state.
fn preempt(
    config: &Path,
    run: &Path,
    signal: libc::c_int,
    what: &str,
    delay: Duration,
    ready: impl Fn(&[Value]) -> bool,
) -> Value {
    let mut training = Training::start(config);
    let seen = steps(&training.wait_for(run, what, ready)) as u64;
    std::thread::sleep(delay);
    training.signal(signal);
    let status = training.exit_within(Duration::from_secs(2));
    let stderr = training.stderr_text();
    assert_eq!(
        status.code(),
        Some(PREEMPTED),
        "{what}: {status}:\n{stderr}"
    );
    let state = common::read_json(&run.join("last/trainer_state.json"));
    let step = state["step"].as_u64().unwrap();
    // The run stops at the next micro-step, evaluation batch or decoded token: the step under way when the
    // signal came is the last one it can have finished, not the next evaluation's or checkpoint's.
    assert!(
        (seen..=seen + 1).contains(&step),
        "{what}: signalled after step {seen}, saved step {step}"
    );
    let name = match signal {
        libc::SIGTERM => "SIGTERM",
        libc::SIGINT => "SIGINT",
        _ => "SIGUSR1",
    };
    let message = format!(
        "stopped by {name} at step {step}; checkpoint {} saved; run the same command to resume",
        run.join("last").display()
    );
    assert!(stderr.contains(&message), "{what}: {stderr}");
    for file in [
        "adapter_config.json",
        "adapter_model.safetensors",
        "optimizer.safetensors",
    ] {
        assert!(run.join("last").join(file).is_file(), "{what}: no {file}");
    }
    // The metrics hold every step up to the saved one: none was lost, none is ahead of the checkpoint that a
    // resume would not redo.
    assert_eq!(steps(&records(run)), step as usize, "{what}");
    state
}

/// Resumes with the same command, to the end, and compares with the uninterrupted run.
fn resume_and_compare(config: &Path, run: &Path, whole: &Path, what: &str) {
    let stdout = ok(&["-q", "train", path(config)]);
    assert!(stdout.contains("resumed from step"), "{what}: {stdout}");
    for file in COMPARED {
        assert!(
            bytes(whole.join(file)) == bytes(run.join(file)),
            "{what}: {file} differs from the uninterrupted run's"
        );
    }
    assert_eq!(
        deterministic_records(whole),
        deterministic_records(run),
        "{what}: metrics.jsonl"
    );
}

#[test]
fn sigterm_and_sigusr1_in_the_middle_of_training_save_and_the_resumed_run_ends_bit_for_bit() {
    let fx = Fixture::new(256, 64);
    let extra = "max_steps: 30\neval_every: 10\nsave_every: 7\n";
    let whole = fx.config("whole", extra);
    ok(&["-q", "train", path(&whole)]);
    for (signal, after) in [(libc::SIGTERM, 4), (libc::SIGUSR1, 17)] {
        let name = format!("signal {signal} after {after} steps");
        let config = fx.config(&format!("stopped-{signal}"), extra);
        let run = fx.run_dir(&format!("stopped-{signal}"));
        let state = preempt(&config, &run, signal, &name, Duration::ZERO, |r| {
            steps(r) >= after
        });
        assert!(
            state["step"].as_u64().unwrap() >= after as u64,
            "{name}: {state}"
        );
        resume_and_compare(&config, &run, &fx.run_dir("whole"), &name);
    }
}

/// With `grad_accum: 4` a signal most likely lands between the micro-steps of an optimiser step: the partial
/// step is dropped, and the saved data cursor is the one from before its batches were drawn.
#[test]
fn sigint_in_the_middle_of_a_gradient_accumulation_step_drops_the_partial_step() {
    let fx = Fixture::new(256, 64);
    let extra = "max_steps: 12\ngrad_accum: 4\neval_every: 6\nsave_every: 5\n";
    let whole = fx.config("whole", extra);
    ok(&["-q", "train", path(&whole)]);
    let config = fx.config("stopped", extra);
    let run = fx.run_dir("stopped");
    let state = preempt(&config, &run, libc::SIGINT, "SIGINT", Duration::ZERO, |r| {
        steps(r) >= 3
    });
    // 16 batches of 16 make an epoch, 4 batches a step: the saved position is that of whole steps.
    let step = state["step"].as_u64().unwrap();
    let drawn = state["epoch"].as_u64().unwrap() * 256 + state["cursor"].as_u64().unwrap();
    assert_eq!(drawn, step * 4 * 16, "{state}");
    resume_and_compare(&config, &run, &fx.run_dir("whole"), "SIGINT mid-step");
}

/// Evaluation after every step over 200 validation examples takes most of the run's time: a signal sent just
/// after a step's line appears lands in that step's evaluation, which the resumed run owes and runs first. The
/// resumed run is then stopped again while it scores the test split at the end, and resumed once more. A split is
/// decoded as one batch, so what stops its decoding is the check between two tokens (in `dept-models`).
#[test]
fn signals_during_evaluation_and_the_final_test_resume_into_them() {
    let fx = Fixture::new(256, 400);
    let extra =
        "max_steps: 4\neval_every: 1\nsave_every: 10\nearly_stopping_patience: 2\neval_batch_size: 200\n";
    let whole = fx.config("whole", extra);
    ok(&["-q", "train", path(&whole)]);
    let config = fx.config("stopped", extra);
    let run = fx.run_dir("stopped");

    // Sent as soon as step 2's line is seen, the signal comes while its validation batch is being decoded. (A
    // further 10 ms wait let the evaluation finish first on a fast machine: 4 failures in 12 runs, none in 12
    // without it.)
    let state = preempt(
        &config,
        &run,
        libc::SIGTERM,
        "SIGTERM in evaluation",
        Duration::ZERO,
        |r| steps(r) >= 2,
    );
    assert_eq!(state["evaluation_owed"], true, "{state}");
    let owed = state["step"].as_u64().unwrap();
    assert!(
        !records(&run).iter().any(|r| is_validation_of(r, owed)),
        "the interrupted evaluation left a record"
    );

    // The resumed run evaluates step `owed` first; once the last step's validation record is there (the last
    // step the uninterrupted run took: early stopping may end it before max_steps), the test split is being
    // scored.
    let final_step = steps(&records(&fx.run_dir("whole"))) as u64;
    let state = preempt(
        &config,
        &run,
        libc::SIGUSR1,
        "SIGUSR1 in the final test",
        Duration::ZERO,
        |r| r.iter().any(|r| is_validation_of(r, final_step)),
    );
    assert_eq!(state["step"].as_u64(), Some(final_step), "{state}");
    assert_eq!(state["evaluation_owed"], Value::Null, "{state}");
    assert!(!run.join("results.csv").exists());
    resume_and_compare(&config, &run, &fx.run_dir("whole"), "signals in evaluation");
    assert!(records(&run).iter().any(|r| r["split"] == "test"));
}

/// The first SIGINT starts the orderly stop; a second one while it is under way ends the process at once with 130.
/// The checkpoint written before stays usable: the same command resumes and ends like an uninterrupted run.
#[test]
fn a_second_sigint_aborts_at_once_with_130_and_the_last_checkpoint_resumes() {
    // Steps over 512 examples (about a quarter of a second each here), so that both signals land in one.
    let fx = Fixture::new(1024, 64);
    let extra = "max_steps: 4\nbatch_size: 512\neval_every: 10\nsave_every: 2\n";
    let whole = fx.config("whole", extra);
    ok(&["-q", "train", path(&whole)]);
    let config = fx.config("aborted", extra);
    let run = fx.run_dir("aborted");
    let mut training = Training::start(&config);
    // Step 3 is neither evaluated nor saved: right after its line, step 4's forward pass runs.
    training.wait_for(&run, "step 3", |r| steps(r) >= 3);
    std::thread::sleep(Duration::from_millis(20));
    training.signal(libc::SIGINT);
    training.wait_until_delivered(libc::SIGINT);
    training.signal(libc::SIGINT);
    let status = training.exit_within(Duration::from_secs(2));
    let stderr = training.stderr_text();
    assert_eq!(status.code(), Some(ABORTED), "{status}:\n{stderr}");
    assert!(!stderr.contains("stopped by"), "{stderr}");
    let state = common::read_json(&run.join("last/trainer_state.json"));
    assert_eq!(state["step"], 2, "the checkpoint of step 2 is the last one");
    resume_and_compare(&config, &run, &fx.run_dir("whole"), "double SIGINT");
}
