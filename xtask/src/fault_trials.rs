//! `cargo xtask fault-trials [N]`: the faults a run meets besides SIGKILL, N trials of each on the kill trials'
//! tiny run, each ending in a check that the run, resumed, is byte-identical to an uninterrupted one:
//! - signal: SIGTERM, SIGINT or SIGUSR1 at a pseudo-random moment (some waited into an evaluation or a checkpoint
//!   write); the run must exit 75 ("saved, resume me") or, when the signal came after it finished, 0;
//! - corruption: a finished run's `last/` damaged (a flipped byte, a truncated or a deleted file); the rerun must
//!   warn, fall back to `last.previous` and train the missing step again; with both damaged it must refuse (exit 1)
//!   and leave the folder as it was;
//! - disk full: `DEPT_FAULT_WRITE=enospc+K@last.partial` with K pseudo-random; the run must exit 74 (or 0 when it
//!   finished before write K) and its remaining checkpoints must verify.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::kill_trials::{
    differing_files, io, start_training, train_to_the_end, Moment, Setup, SplitMix,
};
use crate::process::Failure;

/// Counts of one kind of trial.
#[derive(Default)]
struct Tally {
    trials: usize,
    identical: usize,
    /// Signals that landed before the end / fallbacks taken / disk-full stops: the fault really happened.
    took_effect: usize,
}

pub fn run(root: &Path, trials: usize) -> Result<(), Failure> {
    let trial = Setup::new(root, "fault-trials")?;
    let mut rng = SplitMix(0xFA17);
    let (mut signals, mut corruptions, mut full) =
        (Tally::default(), Tally::default(), Tally::default());
    let mut refusals = 0;
    for i in 0..trials {
        trial.signal(i, &mut rng, &mut signals)?;
        trial.corruption(i, &mut rng, &mut corruptions)?;
        refusals += usize::from(trial.both_damaged(i)?);
        trial.disk_full(i, &mut rng, &mut full)?;
    }
    println!(
        "fault trials: signals {}/{} byte-identical ({} landed and exited 75); corruption {}/{} byte-identical \
         ({} fallbacks taken), {refusals}/{trials} runs with both checkpoints damaged refused; disk full {}/{} \
         byte-identical ({} stopped with status 74)",
        signals.identical,
        signals.trials,
        signals.took_effect,
        corruptions.identical,
        corruptions.trials,
        corruptions.took_effect,
        full.identical,
        full.trials,
        full.took_effect
    );
    let all = signals.identical + corruptions.identical + full.identical + refusals;
    if all == 4 * trials && corruptions.took_effect == trials {
        Ok(())
    } else {
        Err(Failure::new(
            "some fault trials did not end as they should (see above)",
        ))
    }
}

/// The trials themselves, on the kill trials' set-up.
impl Setup {
    fn signal(&self, i: usize, rng: &mut SplitMix, tally: &mut Tally) -> Result<(), Failure> {
        let (run, config) = self.run(&format!("signal-{i}"))?;
        let signal = ["TERM", "INT", "USR1"][i % 3];
        let wait_for = [
            None,
            Some(Moment::Evaluation),
            Some(Moment::CheckpointWrite),
        ][(i / 3) % 3];
        let mut child = start_training(&self.dept, &config)?;
        // `dept train` installs its handlers before it creates the run folder; a signal before that (while
        // libtorch loads) ends it by the default action, with nothing written yet, which is not what is tried here.
        while child.try_wait().ok().flatten().is_none() && !run.exists() {
            std::thread::sleep(Duration::from_millis(1));
        }
        std::thread::sleep(self.duration.mul_f64(0.5 * rng.unit()));
        if let Some(moment) = wait_for {
            while child.try_wait().ok().flatten().is_none() && !moment.is_now(&run) {
                std::thread::sleep(Duration::from_micros(50));
            }
        }
        let _ = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(child.id().to_string())
            .status();
        let sent = Instant::now();
        let status = child.wait().map_err(|e| io(&run, e))?;
        let code = status.code();
        tally.trials += 1;
        if code == Some(75) {
            tally.took_effect += 1;
            if sent.elapsed() > Duration::from_secs(2) {
                eprintln!(
                    "xtask: signal trial {i}: SIG{signal} took {:.1} s to stop the run",
                    sent.elapsed().as_secs_f64()
                );
                return Ok(());
            }
        } else if code != Some(0) {
            eprintln!(
                "xtask: signal trial {i}: SIG{signal} ended the run with {status}, not 75 or 0"
            );
            return Ok(());
        }
        train_to_the_end(&self.dept, &config)?;
        self.compare(&run, &format!("signal trial {i} (SIG{signal})"), tally);
        Ok(())
    }

    fn corruption(&self, i: usize, rng: &mut SplitMix, tally: &mut Tally) -> Result<(), Failure> {
        let (run, config) = self.finished(&format!("corrupt-{i}"))?;
        let file = damage(&run.join("last"), rng)?;
        let out = self.train_output(&config)?;
        tally.trials += 1;
        let stderr = String::from_utf8_lossy(&out.stderr);
        if out.status.success() && stderr.contains("falling back to") {
            tally.took_effect += 1;
        } else {
            eprintln!(
                "xtask: corruption trial {i} ({file}): {} without a fallback:\n{stderr}",
                out.status
            );
            return Ok(());
        }
        self.compare(&run, &format!("corruption trial {i} ({file})"), tally);
        Ok(())
    }

    /// Both checkpoints damaged: the run must refuse to resume and leave its log as it was.
    fn both_damaged(&self, i: usize) -> Result<bool, Failure> {
        let (run, config) = self.finished(&format!("ruined-{i}"))?;
        let mut rng = SplitMix(i as u64);
        damage(&run.join("last"), &mut rng)?;
        damage(&run.join("last.previous"), &mut rng)?;
        let log = fs::read(run.join("metrics.jsonl")).map_err(|e| io(&run, e))?;
        let out = self.train_output(&config)?;
        let refused = out.status.code() == Some(1)
            && String::from_utf8_lossy(&out.stderr).contains("no valid checkpoint")
            && fs::read(run.join("metrics.jsonl")).ok() == Some(log);
        if !refused {
            eprintln!(
                "xtask: trial {i} with both checkpoints damaged: {} (expected a refusal)",
                out.status
            );
        }
        Ok(refused)
    }

    fn disk_full(&self, i: usize, rng: &mut SplitMix, tally: &mut Tally) -> Result<(), Failure> {
        let (run, config) = self.run(&format!("full-{i}"))?;
        // 40 checkpoints of five files: the disk fills up somewhere in the run.
        let skip = (rng.unit() * 200.0) as u64;
        let out = Command::new(&self.dept)
            .args(["-q", "train"])
            .arg(&config)
            .env("DEPT_FAULT_WRITE", format!("enospc+{skip}@last.partial"))
            .stdout(Stdio::null())
            .output()
            .map_err(|e| io(&run, e))?;
        tally.trials += 1;
        match out.status.code() {
            Some(74) => tally.took_effect += 1,
            Some(0) => {}
            _ => {
                eprintln!(
                    "xtask: disk-full trial {i} (after {skip} writes): {}, not 74:\n{}",
                    out.status,
                    String::from_utf8_lossy(&out.stderr)
                );
                return Ok(());
            }
        }
        let verified = Command::new(&self.dept)
            .arg("verify")
            .arg(&run)
            .stdout(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !verified {
            eprintln!("xtask: disk-full trial {i}: `dept verify` found damage after the stop");
            return Ok(());
        }
        train_to_the_end(&self.dept, &config)?;
        self.compare(
            &run,
            &format!("disk-full trial {i} (after {skip} writes)"),
            tally,
        );
        Ok(())
    }

    /// A run of the trials' config trained to its end in `scratch/name`: its folder and its config.
    fn finished(&self, name: &str) -> Result<(PathBuf, PathBuf), Failure> {
        let (run, config) = self.run(name)?;
        train_to_the_end(&self.dept, &config)?;
        Ok((run, config))
    }

    /// `dept -q train config` once more, its stderr kept for the checks.
    fn train_output(&self, config: &Path) -> Result<std::process::Output, Failure> {
        Command::new(&self.dept)
            .args(["-q", "train"])
            .arg(config)
            .stdout(Stdio::null())
            .output()
            .map_err(|e| io(config, e))
    }

    fn compare(&self, run: &Path, what: &str, tally: &mut Tally) {
        let differing = differing_files(run, &self.reference);
        if differing.is_empty() {
            tally.identical += 1;
        } else {
            eprintln!("xtask: {what}: {differing:?} differ from the uninterrupted run");
        }
    }
}

/// Damages one pseudo-randomly chosen file of a checkpoint folder: flips a byte, truncates it or deletes it.
/// Returns what it did, for messages.
fn damage(dir: &Path, rng: &mut SplitMix) -> Result<String, Failure> {
    let mut files: Vec<_> = fs::read_dir(dir)
        .map_err(|e| io(dir, e))?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    if files.is_empty() {
        return Err(Failure::new(format!(
            "{}: no files to damage",
            dir.display()
        )));
    }
    let file = &files[(rng.unit() * files.len() as f64) as usize % files.len()];
    let name = file
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut bytes = fs::read(file).map_err(|e| io(file, e))?;
    let how = match (rng.unit() * 3.0) as usize {
        0 if !bytes.is_empty() => {
            let at = (rng.unit() * bytes.len() as f64) as usize % bytes.len();
            bytes[at] ^= 1 << ((rng.unit() * 8.0) as u32 % 8);
            fs::write(file, &bytes).map_err(|e| io(file, e))?;
            format!("a bit flipped at byte {at} of {name}")
        }
        1 if !bytes.is_empty() => {
            bytes.truncate(bytes.len() / 2);
            fs::write(file, &bytes).map_err(|e| io(file, e))?;
            format!("{name} truncated to half")
        }
        _ => {
            fs::remove_file(file).map_err(|e| io(file, e))?;
            format!("{name} deleted")
        }
    };
    Ok(how)
}
