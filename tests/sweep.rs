//! `dept sweep` end to end on the tiny CPU sweep (configs/sweeps/tiny-cpu.yaml: a tiny random T5 with the real T5
//! vocabulary on real RTE and CB rows): a local sweep interrupted and resumed, its report, and the same kind of
//! sweep through a real one-node Slurm (started here from Debian's slurm-wlm and munge; skipped with a message
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

    fn conf(&self) -> PathBuf {
        self.state.join("slurm.conf")
    }
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
    let dir = tempfile::tempdir().unwrap();
    let slurm = match LocalSlurm::start(&dir.path().join("slurm")) {
        Ok(slurm) => slurm,
        Err(why) if std::env::var_os("DEPT_REQUIRE_SLURM").is_some_and(|v| v == "1") => {
            panic!("DEPT_REQUIRE_SLURM=1 but Slurm could not be started: {why}")
        }
        Err(why) => {
            println!("skipped: no local Slurm ({why})");
            return;
        }
    };
    let model = tiny_model(&shared, dir.path());
    let out = dir.path().join("out");
    // The tiny CPU sweep itself (2 tasks × 2 α2 × 2 seeds), with its `slurm:` resources.
    let sweep_file = repo().join("configs/sweeps/tiny-cpu.yaml");
    let sweep = |extra: &[&str]| {
        let mut command = dept();
        command
            .env("SLURM_CONF", slurm.conf())
            .args(["sweep", "run"])
            .arg(&sweep_file)
            .arg("--out")
            .arg(&out)
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
    };

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

#[test]
fn every_shipped_sweep_expands_into_checked_points() {
    let dir = tempfile::tempdir().unwrap();
    for (file, points) in [
        ("glue", 320),
        ("superglue", 160),
        ("fewshot", 27),
        ("tiny-cpu", 8),
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
