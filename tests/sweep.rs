//! `dept sweep` end to end on the tiny CPU sweep (configs/sweeps/tiny-cpu.yaml: a tiny random T5 with the real T5
//! vocabulary on real RTE and CB rows): a local sweep interrupted and resumed, its report, and the same kind of
//! sweep through a real one-node Slurm; and the tiny staged sweep (configs/sweeps/tiny-staged.yaml: a source stage,
//! then a target stage starting from its best points) locally, stopped between its stages and resumed, and through
//! the one-node Slurm (started here from Debian's slurm-wlm and munge; skipped with a message
//! where that cannot be done, required where `DEPT_REQUIRE_SLURM=1`, as in CI).

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

fn dept() -> Command {
    Command::new(env!("CARGO_BIN_EXE_dept"))
}

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn run_ok(command: &mut Command) -> Output {
    let output = command.output().expect("start dept");
    assert!(
        output.status.success(),
        "{command:?} failed ({}):\n{}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

/// A tiny T5 folder with the real T5 tokenizer.
fn tiny_model(shared: &Path, dir: &Path) -> PathBuf {
    let model = dir.join("tiny-t5");
    run_ok(
        dept()
            .args(["tiny-t5", "--out"])
            .arg(&model)
            .arg("--tokenizer")
            .arg(shared.join("tokenizers/t5/tokenizer.json")),
    );
    model
}

fn done_points(out: &Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(out.join("runs")) else {
        return Vec::new();
    };
    let mut done: Vec<String> = entries
        .filter_map(Result::ok)
        .filter(|e| e.path().join("results.csv").is_file())
        .map(|e| e.file_name().to_string_lossy().to_string())
        .collect();
    done.sort();
    done
}

fn starts_in_log(out: &Path, id: &str) -> usize {
    std::fs::read_to_string(out.join("logs").join(format!("{id}.log")))
        .unwrap_or_default()
        .matches("=== dept sweep:")
        .count()
}

#[test]
fn a_local_sweep_is_interrupted_resumed_and_reported() {
    let Some(shared) = common::shared_dir() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let model = tiny_model(&shared, dir.path());
    let out = dir.path().join("out");
    let sweep_args = |command: &mut Command| {
        command
            .current_dir(repo())
            .args([
                "sweep",
                "run",
                "configs/sweeps/tiny-cpu.yaml",
                "--slots",
                "2",
                "--out",
            ])
            .arg(&out)
            .arg("--set")
            .arg(format!("model={:?}", model.display().to_string()))
            .arg("--set")
            .arg(format!(
                "data_dir={:?}",
                shared.join("data").display().to_string()
            ));
    };

    // Interrupted (SIGINT, as Ctrl-C) once two points have finished and a running one has a checkpoint, so that
    let mut command = dept();
    sweep_args(&mut command);
    let child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let start = Instant::now();
    // the next call has one to resume.
    let checkpointed_unfinished = || {
        std::fs::read_dir(out.join("runs"))
            .into_iter()
            .flatten()
            .flatten()
            .any(|e| e.path().join("last").is_dir() && !e.path().join("results.csv").is_file())
    };
    while done_points(&out).len() < 2 || !checkpointed_unfinished() {
        assert!(
            start.elapsed() < Duration::from_secs(300),
            "no two points finished in 5 minutes"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    // SAFETY: signalling our own child.
    unsafe {
        libc::kill(child.id() as libc::pid_t, libc::SIGINT);
    }
    let interrupted = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&interrupted.stdout);
    assert_eq!(
        interrupted.status.code(),
        Some(130),
        "{stdout}\n{}",
        String::from_utf8_lossy(&interrupted.stderr)
    );
    assert!(
        stdout.contains("run the same command again to resume"),
        "{stdout}"
    );
    let before = done_points(&out);
    assert!((2..8).contains(&before.len()), "{before:?}");

    // Resumed: the finished points are not run again, the others finish.
    let mut command = dept();
    sweep_args(&mut command);
    let resumed = run_ok(&mut command);
    assert!(String::from_utf8_lossy(&resumed.stdout).contains("every point is done"));
    let after = done_points(&out);
    assert_eq!(after.len(), 8, "{after:?}");
    for id in &before {
        assert_eq!(
            starts_in_log(&out, id),
            1,
            "{id} ran again after it had finished"
        );
    }
    assert!(after
        .iter()
        .any(|id| !before.contains(id) && starts_in_log(&out, id) >= 1));

    // At least one point continued from the checkpoint it had when interrupted.
    let logs: String = after
        .iter()
        .map(|id| {
            std::fs::read_to_string(out.join("logs").join(format!("{id}.log"))).unwrap_or_default()
        })
        .collect();
    assert!(logs.contains("resumed from step"), "no point resumed");

    // A third call has nothing left to do: no point starts again.
    let starts: Vec<usize> = after.iter().map(|id| starts_in_log(&out, id)).collect();
    let mut command = dept();
    sweep_args(&mut command);
    run_ok(&mut command);
    assert_eq!(
        after
            .iter()
            .map(|id| starts_in_log(&out, id))
            .collect::<Vec<_>>(),
        starts
    );

    // A point whose run folder is in use by another process is reported as such.
    let busy = out.join("runs").join(&after[0]);
    let lock = dept_train::run_dir::RunLock::acquire(&busy).unwrap();
    let status = run_ok(
        dept()
            .current_dir(repo())
            .args(["sweep", "status", "configs/sweeps/tiny-cpu.yaml", "--out"])
            .arg(&out),
    );
    assert!(String::from_utf8_lossy(&status.stdout).contains("running (another process)"));
    drop(lock);

    // The report: 4 configurations (2 tasks × 2 lr_pair) over 2 seeds each, the best per task.
    let report = run_ok(dept().args(["sweep", "report"]).arg(&out));
    let markdown = String::from_utf8_lossy(&report.stdout);
    assert!(markdown.contains("8 of 8 points finished"), "{markdown}");
    let csv = std::fs::read_to_string(out.join("report.csv")).unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines.len(), 5, "{csv}");
    let header: Vec<&str> = lines[0].split(',').collect();
    let column = |name: &str| {
        header
            .iter()
            .position(|h| *h == name)
            .unwrap_or_else(|| panic!("{name} in {csv}"))
    };
    let (seeds, best, task) = (column("n_seeds"), column("best"), column("task"));
    for line in &lines[1..] {
        assert_eq!(line.split(',').nth(seeds), Some("2"), "{line}");
    }
    for t in ["rte", "cb"] {
        let bests = lines[1..]
            .iter()
            .filter(|l| l.split(',').nth(task) == Some(t) && l.split(',').nth(best) == Some("true"))
            .count();
        assert_eq!(bests, 1, "one best configuration for {t}:\n{csv}");
    }
    assert!(out.join("report.md").is_file());
}

/// Why the one-node Slurm did not start (no Slurm installed, or its script failed), for the skip message.
struct NoSlurm(String);

impl std::fmt::Display for NoSlurm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// A one-node Slurm from xtask/slurm/local-slurm.sh, stopped when dropped.
struct LocalSlurm {
    state: PathBuf,
}

impl LocalSlurm {
    fn start(state: &Path) -> Result<Self, NoSlurm> {
        let script = repo().join("xtask/slurm/local-slurm.sh");
        let output = Command::new("bash")
            .arg(&script)
            .arg("start")
            .arg(state)
            .output()
            .map_err(|e| NoSlurm(e.to_string()))?;
        if output.status.success() {
            Ok(LocalSlurm {
                state: state.to_path_buf(),
            })
        } else {
            Err(NoSlurm(format!(
                "{} ({}): {}{}",
                script.display(),
                output.status,
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            )))
        }
    }

    /// The cluster, or `None` with a message where it cannot start here; a panic instead where
    /// `DEPT_REQUIRE_SLURM=1` (CI), so that the Slurm tests cannot pass by skipping.
    fn start_or_skip(state: &Path) -> Option<Self> {
        match LocalSlurm::start(state) {
            Ok(slurm) => Some(slurm),
            Err(why) if std::env::var_os("DEPT_REQUIRE_SLURM").is_some_and(|v| v == "1") => {
                panic!("DEPT_REQUIRE_SLURM=1 but Slurm could not be started: {why}")
            }
            Err(why) => {
                println!("skipped: no local Slurm ({why})");
                None
            }
        }
    }

    fn conf(&self) -> PathBuf {
        self.state.join("slurm.conf")
    }

    /// `dept sweep run SWEEP --out OUT --backend slurm` on this cluster, on `model` and the shared data, then
    /// `extra`.
    fn sweep_run(
        &self,
        sweep: &Path,
        out: &Path,
        model: &Path,
        shared: &Path,
        extra: &[&str],
    ) -> Command {
        let mut command = dept();
        command
            .env("SLURM_CONF", self.conf())
            .args(["sweep", "run"])
            .arg(sweep)
            .arg("--out")
            .arg(out)
            .args(["--backend", "slurm"])
            .arg("--set")
            .arg(format!("model={:?}", model.display().to_string()))
            .arg("--set")
            .arg(format!(
                "data_dir={:?}",
                shared.join("data").display().to_string()
            ))
            .args(extra);
        command
    }

    /// A Slurm client command for this cluster.
    fn client(&self, program: &str) -> Command {
        let mut command = Command::new(program);
        command.env("SLURM_CONF", self.conf());
        command
    }
}

/// The Slurm tests start their own clusters, one at a time (two starting at once could pick the same ports).
fn one_cluster_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    static CLUSTER: std::sync::Mutex<()> = std::sync::Mutex::new(());
    CLUSTER
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Drop for LocalSlurm {
    fn drop(&mut self) {
        let _ = Command::new("bash")
            .arg(repo().join("xtask/slurm/local-slurm.sh"))
            .arg("stop")
            .arg(&self.state)
            .output();
    }
}

#[test]
fn a_sweep_runs_through_a_one_node_slurm_and_resumes_a_cancelled_task() {
    let Some(shared) = common::shared_dir() else {
        return;
    };
    let _one_cluster_at_a_time = one_cluster_at_a_time();
    let dir = tempfile::tempdir().unwrap();
    let Some(slurm) = LocalSlurm::start_or_skip(&dir.path().join("slurm")) else {
        return;
    };
    let model = tiny_model(&shared, dir.path());
    let out = dir.path().join("out");
    // The tiny CPU sweep itself (2 tasks × 2 α2 × 2 seeds), with its `slurm:` resources.
    let sweep_file = repo().join("configs/sweeps/tiny-cpu.yaml");
    let sweep = |extra: &[&str]| slurm.sweep_run(&sweep_file, &out, &model, &shared, extra);

    // Submit the 8 points as one array, then cancel its task 1 straight away (pending or just started).
    let submitted = run_ok(&mut sweep(&[]));
    let stdout = String::from_utf8_lossy(&submitted.stdout).to_string();
    let job = stdout
        .split("submitted job array ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("no job id in:\n{stdout}"))
        .to_string();
    run_ok(
        Command::new("scancel")
            .env("SLURM_CONF", slurm.conf())
            .arg(format!("{job}_1")),
    );

    // Waiting resubmits the cancelled point only, and every point finishes.
    let waited = run_ok(&mut sweep(&["--wait"]));
    let waited = String::from_utf8_lossy(&waited.stdout).to_string();
    assert!(waited.contains("every point is done"), "{waited}");
    assert_eq!(done_points(&out).len(), 8, "{waited}");
    let submissions = std::fs::read_to_string(out.join("slurm/submissions.txt")).unwrap();
    assert_eq!(submissions.lines().count(), 2, "{submissions}\n{waited}");
    let first: Vec<String> = std::fs::read_to_string(out.join("slurm/points-1.txt"))
        .unwrap()
        .lines()
        .map(String::from)
        .collect();
    let second = std::fs::read_to_string(out.join("slurm/points-2.txt")).unwrap();
    assert_eq!(first.len(), 8);
    assert_eq!(
        second.lines().collect::<Vec<_>>(),
        [first[1].as_str()],
        "only the cancelled point is resubmitted"
    );

    // Status reads the same folder.
    let status = run_ok(
        dept()
            .env("SLURM_CONF", slurm.conf())
            .args(["sweep", "status"])
            .arg(&sweep_file)
            .arg("--out")
            .arg(&out),
    );
    let status = String::from_utf8_lossy(&status.stdout).to_string();
    assert!(status.contains("8 points, 8 done"), "{status}");
    // CI installs Slurm with accounting: there sacct's record of the finished tasks is shown too.
    if std::env::var_os("DEPT_REQUIRE_SLURM").is_some_and(|v| v == "1") {
        assert!(
            status.contains("sacct (JobID|State") && status.contains("|COMPLETED|"),
            "{status}"
        );
    }

    // The report over the Slurm-run points.
    let report = run_ok(dept().args(["sweep", "report"]).arg(&out));
    assert!(String::from_utf8_lossy(&report.stdout).contains("8 of 8 points finished"));
}

/// `squeue`'s `STATE|REASON` of an array task, or `None` once Slurm no longer lists it.
fn task_state(slurm: &LocalSlurm, task: &str) -> Option<String> {
    let output = run_ok(
        slurm
            .client("squeue")
            .args(["-h", "-r", "-o", "%T|%r", "-j", task]),
    );
    let state = String::from_utf8_lossy(&output.stdout).trim().to_string();
    (!state.is_empty()).then_some(state)
}

/// Polls `until` every 100 ms for at most `seconds`, panicking with `what` and `context()` past that.
fn wait_for(
    seconds: u64,
    what: &str,
    mut until: impl FnMut() -> bool,
    context: impl Fn() -> String,
) {
    let start = Instant::now();
    while !until() {
        assert!(
            start.elapsed() < Duration::from_secs(seconds),
            "{what} within {seconds} s:\n{}",
            context()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Issue 21, item 2. Relies on `dept train`'s documented contract: on SIGUSR1 it saves a complete checkpoint and
/// exits with status 75 (`dept_train::exit_status::PREEMPTED`); the array script requeues the task only then.
#[test]
fn a_signalled_slurm_task_saves_requeues_itself_and_resumes_bit_identical() {
    let Some(shared) = common::shared_dir() else {
        return;
    };
    let _one_cluster_at_a_time = one_cluster_at_a_time();
    let dir = tempfile::tempdir().unwrap();
    let Some(slurm) = LocalSlurm::start_or_skip(&dir.path().join("slurm")) else {
        return;
    };
    let model = tiny_model(&shared, dir.path());
    let out = dir.path().join("out");
    // One point of the tiny CPU sweep's kind, long enough (a few seconds) to be signalled while it trains.
    let sweep_file = dir.path().join("one.yaml");
    std::fs::write(
        &sweep_file,
        "name: one
set:
  task: rte
  method: dept
  prompt_len: 4
  rank: 2
  max_len: 64
  lr_prompt: 0.3
  lr_pair: 1.0e-4
  max_steps: 400
  warmup_steps: 3
  batch_size: 8
  eval_batch_size: 32
  eval_every: 200
  save_every: 50
  max_train_examples: 64
  max_eval_examples: 32
  decode_max_tokens: 3
  prompt_init: random
  device: cpu
  threads: 1
grid:
  seed: [42]
slurm:
  cpus_per_task: 1
  time: \"00:10:00\"
",
    )
    .unwrap();
    let sweep = |extra: &[&str]| slurm.sweep_run(&sweep_file, &out, &model, &shared, extra);
    let submitted = run_ok(&mut sweep(&["--signal-seconds", "90"]));
    let stdout = String::from_utf8_lossy(&submitted.stdout).to_string();
    let job = stdout
        .split("submitted job array ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("no job id in:\n{stdout}"))
        .to_string();
    // The array asks Slurm for the warning before its time limit and to be requeueable.
    let job_info = run_ok(slurm.client("scontrol").args(["show", "job", &job]));
    let job_info = String::from_utf8_lossy(&job_info.stdout).to_string();
    assert!(job_info.contains("Requeue=1"), "{job_info}");
    let (task, id) = (format!("{job}_0"), "seed-42");
    let run_dir = out.join("runs").join(id);
    let log =
        || std::fs::read_to_string(out.join("logs").join(format!("{id}.log"))).unwrap_or_default();

    // Once it trains (a metrics line past step 0), it gets what Slurm sends before the time limit.
    wait_for(
        120,
        "the task did not start training",
        || last_step(&run_dir).is_some_and(|step| step >= 10),
        log,
    );
    run_ok(
        slurm
            .client("scancel")
            .args(["--signal=USR1", "--batch", &task]),
    );

    // It saves (exit 75), requeues itself, and waits in the queue as its own task again.
    wait_for(
        60,
        "the task did not requeue itself after SIGUSR1",
        || {
            log().contains("saved on SIGUSR1; requeueing it")
                && task_state(&slurm, &task).is_some_and(|s| s.starts_with("PENDING"))
        },
        || format!("{}\nsqueue: {:?}", log(), task_state(&slurm, &task)),
    );
    assert!(!run_dir.join("results.csv").exists(), "{}", log());
    let status = run_ok(
        dept()
            .env("SLURM_CONF", slurm.conf())
            .args(["sweep", "status"])
            .arg(&sweep_file)
            .arg("--out")
            .arg(&out),
    );
    let status = String::from_utf8_lossy(&status.stdout).to_string();
    assert!(
        status.lines().any(|l| l.contains(id)
            && l.contains(&format!(
                "queued (slurm {task} pending, requeued after preemption"
            ))),
        "{status}"
    );
    // Slurm holds a requeued job back for about two minutes before it may start again; the test does not wait.
    run_ok(
        slurm
            .client("scontrol")
            .args(["update", &format!("JobId={task}"), "StartTime=now"]),
    );

    // Waiting ends with the point done. Mostly it submits nothing new: the requeued task is queued and starts
    // again. But on this one-node Slurm the requeued task sometimes leaves the queue without running again (seen
    // twice in CI: `sweep status` showed it pending, then squeue no longer listed it). The sweep then submits the
    // point again, as it must for a task that is gone, and the new task resumes the same folder.
    let waited = run_ok(&mut sweep(&["--wait"]));
    let waited = String::from_utf8_lossy(&waited.stdout).to_string();
    assert!(waited.contains("every point is done"), "{waited}");
    let submissions = std::fs::read_to_string(out.join("slurm/submissions.txt")).unwrap();
    let finished_task = match submissions.lines().collect::<Vec<_>>()[..] {
        [_] => task.clone(),
        [_, again] => {
            assert!(waited.contains("1 to submit"), "{waited}");
            format!("{}_0", again.split_whitespace().next().unwrap())
        }
        _ => panic!("{submissions}\n--wait printed:\n{waited}\nlog:\n{}", log()),
    };
    let log = log();
    let attempt = if finished_task == task {
        "(attempt 2)"
    } else {
        "(attempt 1)"
    };
    assert!(
        log.contains(&format!("slurm job {finished_task} on")) && log.contains(attempt),
        "{log}"
    );
    assert!(log.contains("resumed from step"), "{log}");
    assert!(!out.join("status").join(format!("{id}.preempted")).exists());

    // Bit for bit what one uninterrupted `dept train` of the same config gives.
    let reference = dir.path().join("reference");
    run_ok(
        dept()
            .arg("train")
            .arg(out.join("configs").join(format!("{id}.yaml")))
            .arg("--output-dir")
            .arg(&reference),
    );
    for file in [
        "best/adapter_model.safetensors",
        "last/adapter_model.safetensors",
        "last/optimizer.safetensors",
    ] {
        let ours = std::fs::read(run_dir.join(file)).unwrap();
        let theirs = std::fs::read(reference.join(file)).unwrap();
        assert!(ours == theirs, "{file} differs from the uninterrupted run");
    }
    let results = |dir: &Path| {
        let csv = std::fs::read_to_string(dir.join("results.csv")).unwrap();
        csv.lines()
            .map(|l| l.rsplit_once(',').unwrap().0.to_string())
            .collect::<Vec<_>>()
    };
    assert_eq!(results(&run_dir), results(&reference));

    // sacct (CI keeps accounting) records both attempts of the task.
    if std::env::var_os("DEPT_REQUIRE_SLURM").is_some_and(|v| v == "1") {
        let status = run_ok(
            dept()
                .env("SLURM_CONF", slurm.conf())
                .args(["sweep", "status"])
                .arg(&sweep_file)
                .arg("--out")
                .arg(&out),
        );
        let status = String::from_utf8_lossy(&status.stdout).to_string();
        assert!(
            status.contains(&format!("{task}|REQUEUED|"))
                && status.contains(&format!("{finished_task}|COMPLETED|")),
            "{status}"
        );
    }
}

/// The last step `metrics.jsonl` of a run folder records.
fn last_step(run_dir: &Path) -> Option<u64> {
    let text = std::fs::read_to_string(run_dir.join("metrics.jsonl")).ok()?;
    text.lines()
        .rev()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find_map(|v| v.get("step").and_then(|s| s.as_u64()))
}

/// The tiny staged sweep's points: three source points, four target points.
const STAGED_SWEEP: &str = "configs/sweeps/tiny-staged.yaml";
const SOURCE_DEPT: [&str; 2] = [
    "source__method-dept__prompt_len-4__rank-2__seed-42",
    "source__method-dept__prompt_len-4__rank-2__seed-43",
];
const SOURCE_PT: &str = "source__method-pt__prompt_len-4__rank-0__seed-42";

/// The `validation_*` score in a finished run's `results.csv`.
fn validation_score(run_dir: &Path) -> f64 {
    let csv = std::fs::read_to_string(run_dir.join("results.csv")).unwrap();
    let mut lines = csv.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let row: Vec<&str> = lines.next().unwrap().split(',').collect();
    let column = header
        .iter()
        .position(|h| h.starts_with("validation_"))
        .unwrap();
    row[column].parse().unwrap()
}

/// The staged sweep's links point at the best source point of each method (the first on ties), and every target
/// point's trainer started from its method's link.
fn assert_targets_start_from_the_best_sources(out: &Path) {
    let scores: Vec<f64> = SOURCE_DEPT
        .iter()
        .map(|id| validation_score(&out.join("runs").join(id)))
        .collect();
    let best_dept = if scores[1] > scores[0] {
        SOURCE_DEPT[1]
    } else {
        SOURCE_DEPT[0]
    };
    for (method, source) in [("dept", best_dept), ("pt", SOURCE_PT)] {
        let link = out.join(format!("stages/source/best/method-{method}"));
        assert_eq!(
            std::fs::read_link(&link).unwrap(),
            Path::new("../../../runs").join(source).join("best"),
            "{scores:?}"
        );
        let record = std::fs::read_to_string(link.with_extension("json")).unwrap();
        assert!(record.contains(source), "{record}");
        for k in [4, 8] {
            let shape = if method == "dept" {
                "4__rank-2"
            } else {
                "4__rank-0"
            };
            let id = format!("target__method-{method}__prompt_len-{shape}__k_shot-{k}");
            let log = std::fs::read_to_string(out.join("logs").join(format!("{id}.log"))).unwrap();
            assert!(
                log.contains("adapter initialised from")
                    && log.contains(&format!("stages/source/best/method-{method}")),
                "{id}: {log}"
            );
            assert!(out.join("runs").join(&id).join("results.csv").is_file());
        }
    }
}

#[test]
fn a_staged_sweep_stops_at_a_failed_source_and_resumes_into_its_target_stage() {
    let Some(shared) = common::shared_dir() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let model = tiny_model(&shared, dir.path());
    let out = dir.path().join("out");
    let sweep = |extra: &[&str]| {
        let mut command = dept();
        command
            .current_dir(repo())
            .args(["sweep", "run", STAGED_SWEEP, "--slots", "2", "--out"])
            .arg(&out)
            .arg("--set")
            .arg(format!("model={:?}", model.display().to_string()))
            .arg("--set")
            .arg(format!(
                "data_dir={:?}",
                shared.join("data").display().to_string()
            ))
            .args(extra);
        command
    };
    // A file where one source point's run folder goes: its trainer fails, the other source points finish, and
    // the target stage does not start.
    let blocked = out.join("runs").join(SOURCE_DEPT[1]);
    std::fs::create_dir_all(blocked.parent().unwrap()).unwrap();
    std::fs::write(&blocked, "in the way").unwrap();
    let first = sweep(&[]).output().unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&first.stdout).to_string(),
        String::from_utf8_lossy(&first.stderr).to_string(),
    );
    assert_eq!(first.status.code(), Some(1), "{stdout}\n{stderr}");
    assert!(
        stderr.contains("1 point(s) failed") && stderr.contains(SOURCE_DEPT[1]),
        "{stderr}"
    );
    assert!(
        stdout.contains("stage target (4 points) has not started"),
        "{stdout}"
    );
    assert_eq!(done_points(&out), [SOURCE_DEPT[0], SOURCE_PT]);
    assert!(!out.join("stages").exists(), "no source was picked");
    let status = run_ok(
        dept()
            .current_dir(repo())
            .args(["sweep", "status", STAGED_SWEEP, "--out"])
            .arg(&out),
    );
    let status = String::from_utf8_lossy(&status.stdout).to_string();
    assert!(
        status.contains("stage source: 3 points, 2 done, 1 failed")
            && status.contains("stage target: 4 points, 0 done")
            && status.contains("method=dept: the best of 2 point(s) of stage source"),
        "{status}"
    );
    // Picking by hand is refused while a source point has not finished.
    let early = dept()
        .args(["sweep", "pick"])
        .arg(&out)
        .args(["--stage", "target"])
        .output()
        .unwrap();
    let early_err = String::from_utf8_lossy(&early.stderr);
    assert!(
        !early.status.success()
            && early_err.contains("have not finished")
            && early_err.contains(SOURCE_DEPT[1]),
        "{early_err}"
    );

    // Cause removed, failed point retried: the source stage finishes (its done points are not run again), then
    // the target stage runs from the best source of each method.
    std::fs::remove_file(&blocked).unwrap();
    let resumed = run_ok(&mut sweep(&["--retry-failed"]));
    let stdout = String::from_utf8_lossy(&resumed.stdout).to_string();
    assert!(stdout.contains("every point is done"), "{stdout}");
    assert!(
        stdout.contains("stage target: stages/source/best/method-dept starts from"),
        "{stdout}"
    );
    assert_eq!(done_points(&out).len(), 7);
    for id in [SOURCE_DEPT[0], SOURCE_PT] {
        assert_eq!(starts_in_log(&out, id), 1, "{id} ran again");
    }
    assert_targets_start_from_the_best_sources(&out);

    // Picking again changes nothing; an unknown stage is named with the known ones.
    let picked = run_ok(
        dept()
            .args(["sweep", "pick"])
            .arg(&out)
            .args(["--stage", "target"]),
    );
    assert_eq!(
        String::from_utf8_lossy(&picked.stdout).lines().count(),
        2,
        "one line per link"
    );
    assert_targets_start_from_the_best_sources(&out);
    let unknown = dept()
        .args(["sweep", "pick"])
        .arg(&out)
        .args(["--stage", "targte"])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("its stages are source, target"));

    // The report: one part per stage, and a stage column in the CSV.
    let report = run_ok(dept().args(["sweep", "report"]).arg(&out));
    let markdown = String::from_utf8_lossy(&report.stdout).to_string();
    assert!(
        markdown.contains("# Sweep tiny-staged: 7 of 7 points finished")
            && markdown.contains("## Sweep tiny-staged, stage source: 3 of 3 points finished")
            && markdown.contains("## Sweep tiny-staged, stage target: 4 of 4 points finished")
            && markdown.contains("### Few-shot (k_shot)"),
        "{markdown}"
    );
    let csv = std::fs::read_to_string(out.join("report.csv")).unwrap();
    let stages: Vec<&str> = csv
        .lines()
        .skip(1)
        .map(|l| l.split(',').next().unwrap())
        .collect();
    // Source: DePT (2 seeds) and PT; target: 2 methods x 2 k.
    assert_eq!(
        stages,
        ["source", "source", "target", "target", "target", "target"],
        "{csv}"
    );
}

#[test]
fn a_staged_sweep_runs_through_a_one_node_slurm_one_array_per_stage() {
    let Some(shared) = common::shared_dir() else {
        return;
    };
    let _one_cluster_at_a_time = one_cluster_at_a_time();
    let dir = tempfile::tempdir().unwrap();
    let Some(slurm) = LocalSlurm::start_or_skip(&dir.path().join("slurm")) else {
        return;
    };
    let model = tiny_model(&shared, dir.path());
    let out = dir.path().join("out");
    let sweep_file = repo().join(STAGED_SWEEP);
    let sweep = |extra: &[&str]| slurm.sweep_run(&sweep_file, &out, &model, &shared, extra);

    // Both stages are submitted at once, the target's array behind the source's.
    let submitted = run_ok(&mut sweep(&[]));
    let stdout = String::from_utf8_lossy(&submitted.stdout).to_string();
    let jobs: Vec<String> = stdout
        .split("submitted job array ")
        .skip(1)
        .map(|rest| rest.split_whitespace().next().unwrap().to_string())
        .collect();
    assert_eq!(jobs.len(), 2, "{stdout}");
    assert!(
        stdout.contains(&format!("stage target, after {} succeeds", jobs[0])),
        "{stdout}"
    );
    let info = run_ok(slurm.client("scontrol").args(["show", "job", &jobs[1]]));
    let info = String::from_utf8_lossy(&info.stdout).to_string();
    assert!(
        info.contains(&format!("Dependency=afterok:{}", jobs[0])),
        "{info}"
    );
    // The PT source (array task 2, waiting for a slot) is cancelled: the target array can never start. Waiting
    // cancels it, submits the PT source again and the target behind it, and every point finishes.
    run_ok(slurm.client("scancel").arg(format!("{}_2", jobs[0])));
    let waited = run_ok(&mut sweep(&["--wait"]));
    let waited = String::from_utf8_lossy(&waited.stdout).to_string();
    assert!(waited.contains("every point is done"), "{waited}");
    assert_eq!(done_points(&out).len(), 7, "{waited}");
    assert!(
        waited.contains("whose stage can no longer start"),
        "{waited}"
    );
    assert_targets_start_from_the_best_sources(&out);
    // Each target task picked its source itself before training.
    let log = std::fs::read_to_string(
        out.join("logs")
            .join("target__method-pt__prompt_len-4__rank-0__k_shot-4.log"),
    )
    .unwrap();
    assert!(log.contains("stages/source/best/method-pt -> "), "{log}");
    let report = run_ok(dept().args(["sweep", "report"]).arg(&out));
    assert!(String::from_utf8_lossy(&report.stdout).contains("7 of 7 points finished"));
}

#[test]
fn every_shipped_sweep_expands_into_checked_points() {
    let dir = tempfile::tempdir().unwrap();
    for (file, points) in [
        ("glue", 320),
        ("superglue", 160),
        ("fewshot", 27),
        ("tiny-cpu", 8),
        ("tiny-staged", 7),
    ] {
        let output = run_ok(
            dept()
                .current_dir(repo())
                .args([
                    "sweep",
                    "run",
                    &format!("configs/sweeps/{file}.yaml"),
                    "--dry-run",
                    "--out",
                ])
                .arg(dir.path().join(file)),
        );
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            stdout.contains(&format!("{points} points, 0 done")),
            "{file}: {stdout}"
        );
        // A dry run writes nothing.
        assert!(!dir.path().join(file).exists(), "{file}");
    }
}
