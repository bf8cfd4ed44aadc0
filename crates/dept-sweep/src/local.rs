//! The local backend: one `dept train` process per slot (a GPU, or a share of the CPU cores), points taken in grid
//! order, finished points skipped, interrupted ones resumed from their checkpoint, a live table meanwhile.
//! SIGINT/SIGTERM stop the running points (they resume on the next run) and end the sweep with status 130.

use std::fs::OpenOptions;
use std::io::Write;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::error::{Result, SweepError};
use crate::spec::{Point, Sweep};
use crate::state::{self, LiveTable, State};

/// Where points run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Slots {
    /// One point per listed GPU (`CUDA_VISIBLE_DEVICES` set to it).
    Gpus(Vec<String>),
    /// This many points at once on the CPU, the cores shared between them (`threads`, unless a config sets it).
    Cpu(usize),
}

impl Slots {
    /// The slots of `--gpus 0,1` where given, else of `--slots N` (CPU).
    pub fn from_flags(gpus: Option<&str>, cpu_slots: usize) -> Result<Slots> {
        Ok(match gpus {
            Some(gpus) => Slots::Gpus(parse_gpus(gpus)?),
            None => Slots::Cpu(cpu_slots),
        })
    }
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

/// How a local sweep ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LocalEnd {
    /// Every point was tried; this many failed (their logs say why).
    Finished { failed: usize },
    /// SIGINT/SIGTERM stopped it; this many points are not finished (the next call resumes them).
    Interrupted { unfinished: usize },
}

/// Runs every unfinished point. On SIGINT/SIGTERM the running points are stopped (they resume on the next call)
/// and [`LocalEnd::Interrupted`] is returned; on an error they are stopped too.
pub fn run(sweep: &Sweep, dept: &Path, slots: &Slots) -> Result<LocalEnd> {
    if matches!(slots, Slots::Cpu(0)) {
        return Err(SweepError::NoSlots);
    }
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
    std::fs::create_dir_all(state::status_dir(sweep))
        .map_err(|e| SweepError::io("creating", state::status_dir(sweep), e))?;
    let mut pool = Pool::new(sweep, dept, slots);
    let result = pool.drive();
    if result.is_err() || STOP.load(Ordering::SeqCst) {
        pool.stop_all();
    }
    let failed = result?;
    if STOP.load(Ordering::SeqCst) {
        let unfinished = pool.states.iter().filter(|s| !s.is_done()).count();
        return Ok(LocalEnd::Interrupted { unfinished });
    }
    pool.table
        .show(&LiveTable::render(sweep, &state::all_on_disk(sweep), false));
    Ok(LocalEnd::Finished { failed })
}

/// The slots, the points waiting for one, and the points running in them.
struct Pool<'a> {
    sweep: &'a Sweep,
    dept: &'a Path,
    slots: &'a Slots,
    slot_names: Vec<String>,
    /// libtorch threads per CPU slot.
    threads: Option<usize>,
    states: Vec<State>,
    /// Point indices, last first (`pop` takes them in grid order).
    queue: Vec<usize>,
    free: Vec<usize>,
    running: Vec<Running>,
    table: LiveTable,
}

impl<'a> Pool<'a> {
    fn new(sweep: &'a Sweep, dept: &'a Path, slots: &'a Slots) -> Self {
        let slot_names: Vec<String> = match slots {
            Slots::Gpus(gpus) => gpus.iter().map(|g| format!("gpu {g}")).collect(),
            Slots::Cpu(n) => (1..=*n).map(|i| format!("cpu slot {i}")).collect(),
        };
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let threads = match slots {
            Slots::Cpu(n) => Some((cores / n).max(1)),
            Slots::Gpus(_) => None,
        };
        let states = state::all_on_disk(sweep);
        let count = |f: fn(&State) -> bool| states.iter().filter(|s| f(s)).count();
        let retried = count(|s| matches!(s, State::Failed(_)));
        if retried > 0 {
            println!("{retried} point(s) failed before and are tried again");
        }
        let elsewhere = count(|s| matches!(s, State::Running(_)));
        if elsewhere > 0 {
            println!(
                "{elsewhere} point(s) are being trained by another process and are left to it"
            );
        }
        let mut queue: Vec<usize> = (0..states.len())
            .filter(|&i| !matches!(states[i], State::Done | State::Running(_)))
            .collect();
        queue.reverse();
        Pool {
            free: (0..slot_names.len()).rev().collect(),
            sweep,
            dept,
            slots,
            slot_names,
            threads,
            states,
            queue,
            running: Vec::new(),
            table: LiveTable::new(),
        }
    }

    /// Starts points while slots are free, collects the ones that end, until none is left or a stop is asked.
    fn drive(&mut self) -> Result<usize> {
        let mut failed = 0;
        let mut last_draw: Option<Instant> = None;
        while !STOP.load(Ordering::SeqCst) {
            while let (Some(&slot), Some(&index)) = (self.free.last(), self.queue.last()) {
                let point = &self.sweep.points[index];
                let child = start(self.sweep, point, self.dept, self.slots, slot, self.threads)?;
                self.free.pop();
                self.queue.pop();
                let _ = std::fs::remove_file(state::failed_marker(self.sweep, point));
                self.states[index] = State::Running(self.slot_names[slot].clone());
                self.running.push(Running { index, slot, child });
            }
            if self.running.is_empty() {
                break;
            }
            let mut ended = Vec::new();
            for (i, run) in self.running.iter_mut().enumerate() {
                let status = run.child.try_wait().map_err(|e| {
                    SweepError::io(
                        "waiting for the run of",
                        self.sweep.run_dir(&self.sweep.points[run.index]),
                        e,
                    )
                })?;
                if let Some(status) = status {
                    ended.push((i, status));
                }
            }
            for (i, status) in ended.into_iter().rev() {
                let run = self.running.remove(i);
                self.free.push(run.slot);
                let point = &self.sweep.points[run.index];
                let on_disk = state::on_disk(self.sweep, point);
                self.states[run.index] = if status.success() && on_disk.is_done() {
                    State::Done
                } else if STOP.load(Ordering::SeqCst) {
                    on_disk
                } else {
                    failed += 1;
                    let log = self.sweep.log_path(point);
                    let why = format!("{status}; log {}", log.display());
                    crate::write::write_file(&state::failed_marker(self.sweep, point), &why)?;
                    eprintln!("point {} failed ({why}):\n{}", point.id, log_tail(&log, 6));
                    self.table.keep_what_was_printed();
                    State::Failed(why)
                };
            }
            if last_draw.is_none_or(|t| t.elapsed() >= Duration::from_secs(2)) {
                self.table
                    .show(&LiveTable::render(self.sweep, &self.states, false));
                last_draw = Some(Instant::now());
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        Ok(failed)
    }

    /// SIGTERM to every running point (`dept train` then ends; its last checkpoint stays), and waits for them.
    fn stop_all(&mut self) {
        for run in &mut self.running {
            // SAFETY: signalling our own child process.
            unsafe {
                libc::kill(run.child.id() as libc::pid_t, libc::SIGTERM);
            }
        }
        for run in &mut self.running {
            let _ = run.child.wait();
        }
        for run in self.running.drain(..) {
            self.states[run.index] = state::on_disk(self.sweep, &self.sweep.points[run.index]);
        }
    }
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
        .map_err(|e| SweepError::io("opening", &log_path, e))?;
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
    let stdout = writeln!(log, "=== dept sweep: starting {} ({:?})", point.id, command)
        .and_then(|()| log.try_clone())
        .map_err(|e| SweepError::io("writing", &log_path, e))?;
    command
        .stdin(Stdio::null())
        .stdout(stdout)
        .stderr(log)
        .spawn()
        .map_err(|e| SweepError::io("starting", dept, e))
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
        return Err(SweepError::BadGpus {
            text: text.to_string(),
        });
    }
    let mut unique = gpus.clone();
    unique.sort();
    unique.dedup();
    if unique.len() != gpus.len() {
        return Err(SweepError::GpuTwice {
            text: text.to_string(),
        });
    }
    Ok(gpus)
}
