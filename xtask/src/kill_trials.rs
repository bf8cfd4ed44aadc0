//! `cargo xtask kill-trials [N]`: SIGKILL a tiny training run at N pseudo-random moments, resume each, and check
//! that every resumed run ends with files byte-identical to an uninterrupted run's. Trials rotate through three
//! kinds of moment: anywhere (start-up, steps, evaluations), during an evaluation (waited for), and during a
//! checkpoint write (waited for: while `last.partial-<pid>` exists). A half-written file that was read back would
//! make a resume fail or differ, so this also checks that none ever is.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::gpu_bundle::target_dir;
use crate::process::{cargo, Failure};

/// Files a finished run must hold identically to the uninterrupted run.
const COMPARED: [&str; 4] = [
    "last/adapter_model.safetensors",
    "last/optimizer.safetensors",
    "last/trainer_state.json",
    "best/adapter_model.safetensors",
];

/// What every kind of trial starts from: the built `dept`, a fresh scratch folder, the tiny fixture in it, and an
/// uninterrupted run of the trials' config (the reference every trial is compared with) with its duration.
pub(crate) struct Setup {
    pub dept: PathBuf,
    pub scratch: PathBuf,
    pub fixture: PathBuf,
    pub reference: PathBuf,
    pub duration: Duration,
}

impl Setup {
    /// Builds `dept` and makes `target/<name>` from scratch.
    pub(crate) fn new(root: &Path, name: &str) -> Result<Setup, Failure> {
        cargo(root, &["build", "--package", "dept"])?;
        let dept = target_dir(root).join("debug").join("dept");
        let scratch = target_dir(root).join(name);
        let _ = fs::remove_dir_all(&scratch);
        fs::create_dir_all(&scratch).map_err(|e| io(&scratch, e))?;
        let fixture = scratch.join("fixture");
        make_fixture(&dept, &fixture)?;
        let reference = scratch.join("reference");
        let config = write_config(&scratch, &fixture, &reference)?;
        let start = Instant::now();
        train_to_the_end(&dept, &config)?;
        Ok(Setup {
            duration: start.elapsed(),
            dept,
            scratch,
            fixture,
            reference,
        })
    }

    /// The trials' config for a run into `scratch/<name>`, and that folder.
    pub(crate) fn run(&self, name: &str) -> Result<(PathBuf, PathBuf), Failure> {
        let run = self.scratch.join(name);
        let config = write_config(&self.scratch, &self.fixture, &run)?;
        Ok((run, config))
    }
}

pub fn run(root: &Path, trials: usize) -> Result<(), Failure> {
    let setup = Setup::new(root, "kill-trials")?;
    let (dept, duration) = (&setup.dept, setup.duration);
    eprintln!(
        "xtask: uninterrupted run: {:.1} s; now {trials} kill/resume trials",
        duration.as_secs_f64()
    );

    let mut rng = SplitMix(0x5EED);
    let (mut identical, mut mid_checkpoint, mut mid_evaluation, mut landed) = (0, 0, 0, 0);
    for trial in 0..trials {
        let (run, config) = setup.run(&format!("trial-{trial}"))?;
        // A moment between 2% and 98% of the uninterrupted run (start-up, loading and tokenising included).
        let at = duration.mul_f64(0.02 + 0.96 * rng.unit());
        let wait_for = match trial % 3 {
            1 => Some(Moment::Evaluation),
            2 => Some(Moment::CheckpointWrite),
            _ => None,
        };
        let kill = kill_once(dept, &config, &run, at, wait_for)?;
        landed += usize::from(kill.landed);
        mid_checkpoint += usize::from(kill.during == Some(Moment::CheckpointWrite));
        mid_evaluation += usize::from(kill.during == Some(Moment::Evaluation));
        train_to_the_end(dept, &config)?;
        let differing = differing_files(&run, &setup.reference);
        if differing.is_empty() {
            identical += 1;
        } else {
            eprintln!(
                "xtask: trial {trial} (killed at {:.2} s): {differing:?} differ from the uninterrupted run",
                at.as_secs_f64()
            );
        }
    }
    println!(
        "kill/resume trials: {identical}/{trials} ended byte-identical to the uninterrupted run ({landed} kills \
         landed before the run ended, {mid_checkpoint} of them in the middle of a checkpoint write, \
         {mid_evaluation} during an evaluation)"
    );
    if identical == trials {
        Ok(())
    } else {
        Err(Failure::new(format!(
            "{} of {trials} resumed runs differ from the uninterrupted run",
            trials - identical
        )))
    }
}

/// The quickstart's tiny T5 and synthetic RTE-format data in `fixture` (its own short run is not used).
fn make_fixture(dept: &Path, fixture: &Path) -> Result<(), Failure> {
    let mut command = Command::new(dept);
    command
        .args(["-q", "quickstart", "--steps", "40", "--dir"])
        .arg(fixture);
    run_quietly(dept, command, "dept quickstart")
}

/// Runs a `dept` command with its stdout dropped; a failure quotes its stderr.
fn run_quietly(dept: &Path, mut command: Command, what: &str) -> Result<(), Failure> {
    let out = command
        .stdout(Stdio::null())
        .output()
        .map_err(|e| Failure::new(format!("cannot run {}: {e}", dept.display())))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(Failure::new(format!(
            "{what} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        )))
    }
}

/// A moment a kill (or a signal) waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Moment {
    /// A checkpoint is being written: `last.partial-<pid>` (or `best.…`) exists.
    CheckpointWrite,
    /// The validation set is being decoded: the last line of `metrics.jsonl` is the training record of a step the
    /// config evaluates at, and the validation record of that step is not there yet.
    Evaluation,
}

impl Moment {
    pub(crate) fn is_now(self, run: &Path) -> bool {
        match self {
            Moment::CheckpointWrite => has_checkpoint_leftovers(run),
            Moment::Evaluation => evaluating(run),
        }
    }
}

/// What one SIGKILL did.
struct Kill {
    /// The run was still going when the kill came (else it had already finished).
    landed: bool,
    /// The moment it was waiting for, when the kill landed in it.
    during: Option<Moment>,
}

/// Starts `dept train config` and SIGKILLs it `at` after its start; with `wait_for`, from there on only once that
/// moment comes (a checkpoint write or an evaluation takes milliseconds, so such kills are made certain to be among
/// the trials rather than left to chance).
fn kill_once(
    dept: &Path,
    config: &Path,
    run: &Path,
    at: Duration,
    wait_for: Option<Moment>,
) -> Result<Kill, Failure> {
    let mut child = start_training(dept, config)?;
    std::thread::sleep(at);
    if let Some(moment) = wait_for {
        while child.try_wait().ok().flatten().is_none() && !moment.is_now(run) {
            std::thread::sleep(Duration::from_micros(50));
        }
    }
    let landed = child.try_wait().ok().flatten().is_none();
    let during = wait_for.filter(|m| landed && m.is_now(run));
    if landed {
        let _ = child.kill(); // SIGKILL
    }
    let _ = child.wait();
    Ok(Kill { landed, during })
}

/// `dept -q train config` in the background, its output dropped (stderr kept in `<run>.stderr` by callers that
/// need it: see `fault_trials`).
pub(crate) fn start_training(dept: &Path, config: &Path) -> Result<std::process::Child, Failure> {
    Command::new(dept)
        .args(["-q", "train"])
        .arg(config)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| Failure::new(format!("cannot start {}: {e}", dept.display())))
}

/// Whether the run is decoding its validation set now (see [`Moment::Evaluation`]); `EVAL_EVERY` matches the
/// trials' config.
fn evaluating(run: &Path) -> bool {
    let Ok(text) = fs::read_to_string(run.join("metrics.jsonl")) else {
        return false;
    };
    let Some(last) = text.lines().last() else {
        return false;
    };
    // A training record: {...,"loss":...,"step":N}; a validation record carries "split".
    let step = last
        .find("\"step\":")
        .and_then(|at| last[at + 7..].split(|c: char| !c.is_ascii_digit()).next())
        .and_then(|n| n.parse::<u64>().ok());
    text.ends_with('\n')
        && !last.contains("\"split\"")
        && step.is_some_and(|s| s > 0 && s % EVAL_EVERY == 0)
}

/// The compared files whose bytes differ between a resumed run and the uninterrupted one (a file that only one
/// side has differs).
pub(crate) fn differing_files(run: &Path, reference: &Path) -> Vec<&'static str> {
    COMPARED
        .iter()
        .copied()
        .filter(|file| fs::read(run.join(file)).ok() != fs::read(reference.join(file)).ok())
        .collect()
}

/// Trains (resuming whatever the run folder holds) until the run finishes.
pub(crate) fn train_to_the_end(dept: &Path, config: &Path) -> Result<(), Failure> {
    let mut command = Command::new(dept);
    command.args(["-q", "train"]).arg(config);
    run_quietly(dept, command, &format!("dept train {}", config.display()))
}

/// A checkpoint being written leaves `last.partial-<pid>` (or `best.…`) beside the checkpoint. (`last.previous` is
/// always there after the second save: the two newest checkpoints are kept.)
fn has_checkpoint_leftovers(run: &Path) -> bool {
    fs::read_dir(run)
        .map(|entries| {
            entries.flatten().any(|e| {
                let name = e.file_name().to_string_lossy().into_owned();
                (name.starts_with("last.") || name.starts_with("best."))
                    && name.contains(".partial-")
            })
        })
        .unwrap_or(false)
}

/// The trials' evaluation cadence (in [`write_config`]).
const EVAL_EVERY: u64 = 5;

/// Evaluation every 5 steps, a checkpoint after every step and a log line after every step, so that kills often
/// land in evaluations and checkpoint writes, and an evaluation in progress can be seen from the log.
fn write_config(scratch: &Path, fixture: &Path, run: &Path) -> Result<PathBuf, Failure> {
    let yaml = format!(
        "task: rte\nmodel: {:?}\ndata_dir: {:?}\noutput_dir: {:?}\nprompt_len: 8\nrank: 4\nmax_len: 32\n\
         lr_prompt: 0.3\nlr_pair: 0.05\nwarmup_steps: 5\nmax_steps: 40\nbatch_size: 16\neval_every: 5\n\
         save_every: 1\nlog_every: 1\neval_batch_size: 32\ndecode_max_tokens: 3\ndevice: cpu\nthreads: 1\n\
         prompt_init: random\n",
        fixture.join("tiny-t5").display().to_string(),
        fixture.join("data").display().to_string(),
        run.display().to_string(),
    );
    let name = run
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let path = scratch.join(format!("{name}.yaml"));
    fs::write(&path, yaml).map_err(|e| io(&path, e))?;
    Ok(path)
}

/// SplitMix64: reproducible kill moments without a dependency.
pub(crate) struct SplitMix(pub(crate) u64);

impl SplitMix {
    pub(crate) fn unit(&mut self) -> f64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        ((z ^ (z >> 31)) >> 11) as f64 / (1u64 << 53) as f64
    }
}

pub(crate) fn io(path: &Path, e: std::io::Error) -> Failure {
    Failure::new(format!("{}: {e}", path.display()))
}
