//! The local backend: one `dept train` process per slot (a GPU, or a share of the CPU cores), points taken in grid
//! order, finished points skipped, interrupted ones resumed from their checkpoint, a live table meanwhile.
//! SIGINT/SIGTERM stop the running points (they resume on the next run) and end the sweep with status 130.

use std::fs::OpenOptions;
use std::io::Write;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use super::spec::{Point, Sweep};
use super::state::{self, LiveTable, State};

/// Where points run.
pub enum Slots {
    /// One point per listed GPU (`CUDA_VISIBLE_DEVICES` set to it).
    Gpus(Vec<String>),
    /// This many points at once on the CPU, the cores shared between them (`threads`, unless a config sets it).
    Cpu(usize),
}

struct Running {
    index: usize,
    slot: usize,
    child: Child,
}

static STOP: AtomicBool = AtomicBool::new(false);

extern "C" fn request_stop(_: libc::c_int) {
    STOP.store(true, Ordering::SeqCst);
}

/// Runs every unfinished point; `Ok(failed points)`.
pub fn run(sweep: &Sweep, dept: &Path, slots: &Slots) -> Result<usize> {
    // SAFETY: the handler only stores to an atomic flag, which is async-signal-safe.
    unsafe {
        libc::signal(
            libc::SIGINT,
            request_stop as *const () as libc::sighandler_t,
        );
        libc::signal(
            libc::SIGTERM,
            request_stop as *const () as libc::sighandler_t,
        );
    }
    let slot_names: Vec<String> = match slots {
        Slots::Gpus(gpus) => gpus.iter().map(|g| format!("gpu {g}")).collect(),
        Slots::Cpu(n) => (1..=*n).map(|i| format!("cpu slot {i}")).collect(),
    };
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let threads = match slots {
        Slots::Cpu(n) => Some((cores / n).max(1)),
        Slots::Gpus(_) => None,
    };
    std::fs::create_dir_all(state::status_dir(sweep))
        .with_context(|| format!("creating {}", state::status_dir(sweep).display()))?;

    let mut states: Vec<State> = sweep
        .points
        .iter()
        .map(|p| state::on_disk(sweep, p))
        .collect();
    let retried = states
        .iter()
        .filter(|s| matches!(s, State::Failed(_)))
        .count();
    if retried > 0 {
        println!("{retried} point(s) failed before and are tried again");
    }
    let mut queue: Vec<usize> = (0..states.len())
        .filter(|&i| !states[i].is_done())
        .collect();
    queue.reverse(); // pop() takes them in grid order
    let mut free: Vec<usize> = (0..slot_names.len()).rev().collect();
    let mut running: Vec<Running> = Vec::new();
    let mut failed = 0;
    let mut table = LiveTable::new();
    let mut last_draw = Instant::now() - Duration::from_secs(10);

    loop {
        if STOP.load(Ordering::SeqCst) {
            break;
        }
        while let (Some(&slot), Some(&index)) = (free.last(), queue.last()) {
            let point = &sweep.points[index];
            let child = start(sweep, point, dept, slots, slot, threads)?;
            free.pop();
            queue.pop();
            let _ = std::fs::remove_file(state::failed_marker(sweep, point));
            states[index] = State::Running(slot_names[slot].clone());
            running.push(Running { index, slot, child });
        }
        if running.is_empty() {
            break;
        }
        let mut finished = Vec::new();
        for (i, run) in running.iter_mut().enumerate() {
            if let Some(status) = run.child.try_wait()? {
                finished.push((i, status));
            }
        }
        for (i, status) in finished.into_iter().rev() {
            let run = running.remove(i);
            free.push(run.slot);
            let point = &sweep.points[run.index];
            states[run.index] = if status.success() && state::on_disk(sweep, point).is_done() {
                State::Done
            } else if STOP.load(Ordering::SeqCst) {
                state::on_disk(sweep, point)
            } else {
                failed += 1;
                let why = format!("{status}; log {}", sweep.log_path(point).display());
                write_marker(&state::failed_marker(sweep, point), &why);
                eprintln!(
                    "point {} failed ({why}):\n{}",
                    point.id,
                    log_tail(&sweep.log_path(point), 6)
                );
                State::Failed(why)
            };
        }
        if last_draw.elapsed() >= Duration::from_secs(2) {
            table.show(&LiveTable::render(sweep, &states, false));
            last_draw = Instant::now();
        }
        std::thread::sleep(Duration::from_millis(200));
    }

    if STOP.load(Ordering::SeqCst) {
        for run in &mut running {
            // SAFETY: signalling our own child process.
            unsafe {
                libc::kill(run.child.id() as libc::pid_t, libc::SIGTERM);
            }
        }
        for run in &mut running {
            let _ = run.child.wait();
        }
        let left = states.iter().filter(|s| !s.is_done()).count();
        println!(
            "interrupted: {left} point(s) not finished; run the same command again to resume them (from their last \
             checkpoint where they have one)"
        );
        std::process::exit(130);
    }
    let states: Vec<State> = sweep
        .points
        .iter()
        .map(|p| state::on_disk(sweep, p))
        .collect();
    table.show(&LiveTable::render(sweep, &states, false));
    Ok(failed)
}

fn start(
    sweep: &Sweep,
    point: &Point,
    dept: &Path,
    slots: &Slots,
    slot: usize,
    threads: Option<usize>,
) -> Result<Child> {
    let log_path = sweep.log_path(point);
    let mut log = OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log_path)
        .with_context(|| format!("opening {}", log_path.display()))?;
    let mut command = Command::new(dept);
    command.arg("train").arg(sweep.config_path(point));
    match slots {
        Slots::Gpus(gpus) => {
            command.env("CUDA_VISIBLE_DEVICES", &gpus[slot]);
        }
        Slots::Cpu(_) => {
            if let (Some(threads), false) = (threads, point.config.contains_key("threads")) {
                command.arg("--set").arg(format!("threads={threads}"));
            }
        }
    }
    writeln!(log, "=== dept sweep: starting {} ({:?})", point.id, command)?;
    let child = command
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .spawn()
        .with_context(|| format!("starting {}", dept.display()))?;
    Ok(child)
}

pub fn write_marker(path: &Path, text: &str) {
    let _ = dept_core::atomic::write_atomically(path, |tmp| std::fs::write(tmp, text));
}

pub fn log_tail(path: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..]
        .iter()
        .map(|l| format!("    {l}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// `--gpus 0,1`: non-empty, no repeats.
pub fn parse_gpus(text: &str) -> Result<Vec<String>> {
    let gpus: Vec<String> = text.split(',').map(|g| g.trim().to_string()).collect();
    if gpus
        .iter()
        .any(|g| g.is_empty() || !g.chars().all(|c| c.is_ascii_digit()))
    {
        bail!("--gpus expects device numbers separated by commas, e.g. 0,1,2; got {text:?}");
    }
    let mut unique = gpus.clone();
    unique.sort();
    unique.dedup();
    if unique.len() != gpus.len() {
        bail!("--gpus {text:?} names a GPU twice");
    }
    Ok(gpus)
}
