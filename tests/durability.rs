//! Checkpoints that survive what disks do (issue 21, items 3 and 4): a damaged checkpoint is named and the run
//! falls back to the previous one; with none valid it stops instead of starting over; a config changed under the
//! run is refused; a full disk or an I/O error during a write is retried, then ends the run with status 74 and the
//! previous checkpoint intact; on a real capped file system (a small tmpfs, where the machine lets us mount one)
//! the same holds. Every interrupted run, resumed, ends byte for byte like an uninterrupted one.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::cli::*;
use common::fixture::Fixture;

fn fixture() -> Fixture {
    Fixture::new(128, 32)
}

impl Fixture {
    /// A 20-step run into `out` saving `last/` every 5 steps and evaluating every 10 (so `best/` is written too).
    fn config(&self, name: &str, out: &Path, lr_prompt: &str) -> PathBuf {
        let lines = format!(
            "prompt_len: 8\nrank: 4\nmax_len: 32\nlr_prompt: {lr_prompt}\nlr_pair: 0.05\nwarmup_steps: 2\n\
             max_steps: 20\nbatch_size: 8\neval_every: 10\nsave_every: 5\neval_batch_size: 32\n\
             decode_max_tokens: 3\ndevice: cpu\nthreads: 1\nprompt_init: random\nbackbone_dropout: true\n"
        );
        self.write_config(name, out, &lines)
    }

    /// The uninterrupted run every other run is compared with.
    fn reference(&self) -> PathBuf {
        let out = self.root.join("whole");
        train(&self.config("whole", &out, "0.3"), None).assert_status(0);
        out
    }
}

/// `dept -q train CONFIG`, with `DEPT_FAULT_WRITE` set when a fault is asked for.
fn train(config: &Path, fault: Option<&str>) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_dept"));
    command
        .args(["-q", "train"])
        .arg(config)
        .env_remove("DEPT_LOG");
    match fault {
        Some(plan) => command.env("DEPT_FAULT_WRITE", plan),
        None => command.env_remove("DEPT_FAULT_WRITE"),
    };
    command.output().expect("run dept")
}

trait Status {
    fn assert_status(&self, expected: i32) -> String;
}

impl Status for Output {
    /// Asserts the exit status and returns stderr.
    fn assert_status(&self, expected: i32) -> String {
        let stderr = String::from_utf8_lossy(&self.stderr).to_string();
        assert_eq!(
            self.status.code(),
            Some(expected),
            "stdout:\n{}\nstderr:\n{stderr}",
            String::from_utf8_lossy(&self.stdout)
        );
        stderr
    }
}

/// The files and records an uninterrupted run and a resumed one must share byte for byte.
fn assert_same_run(whole: &Path, resumed: &Path) {
    for file in [
        "last/adapter_model.safetensors",
        "last/optimizer.safetensors",
        "last.previous/adapter_model.safetensors",
        "best/adapter_model.safetensors",
    ] {
        assert_eq!(
            bytes(whole.join(file)),
            bytes(resumed.join(file)),
            "{file} differs from the uninterrupted run"
        );
    }
    assert_eq!(deterministic_records(whole), deterministic_records(resumed));
}

fn flip_last_byte(file: &Path) {
    let mut data = std::fs::read(file).unwrap();
    let at = data.len() - 1;
    data[at] ^= 0x01;
    std::fs::write(file, data).unwrap();
}

fn verify(run: &Path) -> Output {
    dept(&["verify", path(run)])
}

#[test]
fn a_damaged_checkpoint_is_named_and_the_run_falls_back_to_the_previous_one() {
    let fx = fixture();
    let whole = fx.reference();
    let out = fx.root.join("damaged");
    let config = fx.config("damaged", &out, "0.3");
    train(&config, None).assert_status(0);
    let report = String::from_utf8_lossy(&verify(&out).stdout).to_string();
    assert!(
        report.contains("ok   last/: step 20") && report.contains("ok   last.previous/: step 15"),
        "{report}"
    );

    flip_last_byte(&out.join("last/adapter_model.safetensors"));
    let checked = verify(&out);
    let report = String::from_utf8_lossy(&checked.stdout).to_string();
    assert_eq!(checked.status.code(), Some(1), "{report}");
    assert!(
        report.contains("BAD  last/: adapter_model.safetensors changed after it was written")
            && report.contains("a resume would start from last.previous/"),
        "{report}"
    );

    // The run resumes from step 15, trains the last five steps again and ends where the uninterrupted run did.
    let out_log = train(&config, None);
    let stderr = out_log.assert_status(0);
    assert!(
        stderr.contains("is not usable (adapter_model.safetensors changed after it was written")
            && stderr.contains("falling back to")
            && stderr.contains("last.previous"),
        "{stderr}"
    );
    assert!(String::from_utf8_lossy(&out_log.stdout).contains("resumed from step 15"));
    assert_same_run(&whole, &out);
    verify(&out).assert_status(0);
}

#[test]
fn with_no_valid_checkpoint_the_run_stops_instead_of_starting_over() {
    let fx = fixture();
    let out = fx.root.join("ruined");
    let config = fx.config("ruined", &out, "0.3");
    train(&config, None).assert_status(0);
    let metrics = bytes(out.join("metrics.jsonl"));
    flip_last_byte(&out.join("last/adapter_model.safetensors"));
    let optimizer = out.join("last.previous/optimizer.safetensors");
    let len = std::fs::metadata(&optimizer).unwrap().len();
    std::fs::File::options()
        .write(true)
        .open(&optimizer)
        .unwrap()
        .set_len(len - 7)
        .unwrap();
    let stderr = train(&config, None).assert_status(1);
    assert!(
        stderr.contains("no valid checkpoint to resume from")
            && stderr.contains("adapter_model.safetensors changed after it was written")
            && stderr.contains(&format!(
                "optimizer.safetensors is truncated: {} bytes, {len} written",
                len - 7
            ))
            && stderr.contains("--overwrite"),
        "{stderr}"
    );
    assert_eq!(
        bytes(out.join("metrics.jsonl")),
        metrics,
        "the log was touched"
    );
    let report = String::from_utf8_lossy(&verify(&out).stdout).to_string();
    assert!(
        report.contains("a resume would stop with an error"),
        "{report}"
    );
}

#[test]
fn a_damaged_best_checkpoint_is_not_scored_on_the_test_split() {
    let fx = fixture();
    let out = fx.root.join("best-damaged");
    let config = fx.config("best-damaged", &out, "0.3");
    train(&config, None).assert_status(0);
    let results = bytes(out.join("results.csv"));
    flip_last_byte(&out.join("best/adapter_model.safetensors"));
    // The finished run, run again, goes straight to the test split: on a damaged best/ it refuses rather than
    // scoring another adapter under the best step's name.
    let stderr = train(&config, None).assert_status(1);
    assert!(
        stderr.contains("cannot score the test split on it")
            && stderr.contains("adapter_model.safetensors changed after it was written")
            && stderr.contains(path(&out.join("best"))),
        "{stderr}"
    );
    assert_eq!(bytes(out.join("results.csv")), results);
    let report = String::from_utf8_lossy(&verify(&out).stdout).to_string();
    assert!(report.contains("BAD  best/"), "{report}");
}

#[test]
fn a_checkpoint_is_never_resumed_under_another_config() {
    let fx = fixture();
    let out = fx.root.join("edited");
    train(&fx.config("edited", &out, "0.3"), None).assert_status(0);
    // The run's saved config edited by hand to match a changed experiment: the folder check passes, the manifests
    // (which carry the config the checkpoints were trained under) do not.
    let saved = std::fs::read_to_string(out.join("config.yaml")).unwrap();
    assert!(saved.contains("lr_prompt: 0.3"), "{saved}");
    std::fs::write(
        out.join("config.yaml"),
        saved.replace("lr_prompt: 0.3", "lr_prompt: 0.5"),
    )
    .unwrap();
    let stderr = train(&fx.config("edited", &out, "0.5"), None).assert_status(1);
    assert!(stderr.contains("trained under another config"), "{stderr}");
}

#[test]
fn a_full_disk_during_a_checkpoint_exits_74_and_keeps_the_previous_one() {
    let fx = fixture();
    let whole = fx.reference();
    let out = fx.root.join("full");
    let config = fx.config("full", &out, "0.3");
    // Two `last/` checkpoints (five files each) are written, then the disk is full for good.
    let stderr = train(&config, Some("enospc+10@last.partial")).assert_status(74);
    assert!(
        stderr.contains("No space left on device")
            && stderr.contains("trying again")
            && stderr.contains("free there")
            && stderr.contains("Checkpoints written before are intact: free space")
            && stderr.contains(path(&out.join("last"))),
        "{stderr}"
    );
    let report = String::from_utf8_lossy(&verify(&out).assert_stdout_ok()).to_string();
    assert!(
        report.contains("ok   last/: step 10") && report.contains("ok   last.previous/: step 5"),
        "{report}"
    );
    // Space again: the same command resumes and ends like the uninterrupted run.
    train(&config, None).assert_status(0);
    assert_same_run(&whole, &out);
}

#[test]
fn transient_write_errors_are_retried_and_change_nothing() {
    let fx = fixture();
    let whole = fx.reference();
    for (name, plan) in [
        ("checkpoint", "eio:2@last.partial"),
        // The third line appended to metrics.jsonl fails half written: it is cut back and written again.
        ("log", "enospc+3:1@metrics.jsonl"),
    ] {
        let out = fx.root.join(name);
        let stderr = train(&fx.config(name, &out, "0.3"), Some(plan)).assert_status(0);
        assert!(stderr.contains("trying again"), "{plan}: {stderr}");
        assert_same_run(&whole, &out);
        let metrics = std::fs::read_to_string(out.join("metrics.jsonl")).unwrap();
        assert!(metrics
            .lines()
            .all(|l| serde_json::from_str::<serde_json::Value>(l).is_ok()));
    }
}

/// A tmpfs mounted for one test and unmounted when dropped.
struct Mount(PathBuf);

impl Mount {
    /// `None` (the test then skips, saying why) where the machine does not let this process mount.
    fn tmpfs(dir: &Path, options: &str) -> Option<Mount> {
        std::fs::create_dir_all(dir).unwrap();
        let mounted = Command::new("mount")
            .args(["-t", "tmpfs", "-o", options, "tmpfs"])
            .arg(dir)
            .output()
            .is_ok_and(|o| o.status.success());
        if !mounted {
            println!("skipped: cannot mount a tmpfs here (needs root and CAP_SYS_ADMIN)");
        }
        mounted.then(|| Mount(dir.to_path_buf()))
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

#[test]
fn a_real_full_file_system_stops_the_run_cleanly_and_it_resumes() {
    let fx = fixture();
    let whole = fx.reference();
    let Some(disk) = Mount::tmpfs(&fx.root.join("disk"), "size=1m") else {
        return;
    };
    // Room for about one and a half checkpoints once a filler takes the rest: the run must fail somewhere.
    let checkpoint: u64 = std::fs::read_dir(whole.join("last"))
        .unwrap()
        .map(|e| e.unwrap().metadata().unwrap().len().div_ceil(4096) * 4096)
        .sum();
    let free = free_bytes(&disk.0);
    let filler = disk.0.join("filler");
    std::fs::write(&filler, vec![0u8; (free - 3 * checkpoint / 2) as usize]).unwrap();
    let out = disk.0.join("run");
    let config = fx.config("capped", &out, "0.3");
    let stderr = train(&config, None).assert_status(74);
    // The pre-flight check saw it coming (less room than three checkpoints) and said so before training.
    assert!(
        stderr.contains("No space left on device")
            && stderr
                .contains("three checkpoints (the last two and the one being written) need about"),
        "{stderr}"
    );
    // Whatever was written is sound, and once there is space the run ends like the uninterrupted one.
    verify(&out).assert_stdout_ok();
    std::fs::remove_file(&filler).unwrap();
    train(&config, None).assert_status(0);
    assert_same_run(&whole, &out);

    // A read-only file system is refused at once with the same status, naming the folder.
    let Some(read_only) = Mount::tmpfs(&fx.root.join("ro"), "ro,size=64k") else {
        return;
    };
    let out = read_only.0.join("run");
    let stderr = train(&fx.config("ro", &out, "0.3"), None).assert_status(74);
    assert!(
        stderr.contains("Read-only file system")
            && stderr.contains(path(&read_only.0))
            && stderr.contains("remount it read-write"),
        "{stderr}"
    );
}

fn free_bytes(dir: &Path) -> u64 {
    dept_train::retry::free_bytes(dir).expect("statvfs")
}

trait StdoutOk {
    fn assert_stdout_ok(&self) -> Vec<u8>;
}

impl StdoutOk for Output {
    fn assert_stdout_ok(&self) -> Vec<u8> {
        assert!(
            self.status.success(),
            "{}\n{}",
            String::from_utf8_lossy(&self.stdout),
            String::from_utf8_lossy(&self.stderr)
        );
        self.stdout.clone()
    }
}
