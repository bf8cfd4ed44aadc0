//! The local backend: one `dept train` process per slot (a GPU, or a share of the CPU cores), points taken in grid
//! order stage by stage (a stage starts only once every point of the stages before it is done, and a stage that
//! starts from an earlier one has its source picked first, [`crate::stages::pick`]), finished points skipped, interrupted and preempted ones resumed from their checkpoint, failed ones left
//! failed unless asked to retry them, a live table meanwhile. SIGINT/SIGTERM stop the running points (they save
//! and resume on the next run) and end the sweep with status 130.
//!
//! Surviving the runner: each point is claimed ([`crate::claim`]) before its trainer starts, the trainer keeps the
//! claim and gets SIGTERM when the runner dies ([`prepare_trainer`]), so a runner killed with SIGKILL leaves
//! trainers that save and exit, and a runner started again waits for those and resumes them: no point ever has two
//! trainers, none that finished runs again.

use std::fs::OpenOptions;
use std::io::Write;
use std::os::fd::RawFd;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use dept_train::run_dir::RunLock;

use crate::claim::Claim;
use crate::error::{Result, SweepError};
use crate::spec::{Point, Sweep};
use crate::state::{self, Failure, LiveTable, State};

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
    /// Held (with the trainer, which inherited it) until the trainer ends.
    claim: Claim,
    /// Where this attempt's lines begin in the point's log.
    log_from: u64,
}

static STOP: AtomicBool = AtomicBool::new(false);

extern "C" fn request_stop(_: libc::c_int) {
    STOP.store(true, Ordering::SeqCst);
}

/// How a local sweep ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LocalEnd {
    /// No point is left to run: every one is done, failed (`failed`: now or before; a plain run does not retry
    /// them) or preempted (`preempted`: its trainer saved on a signal and exited with status 75; the next run
    /// resumes it).
    Finished {
        failed: Vec<(String, Failure)>,
        preempted: usize,
        not_started: NotStarted,
    },
    /// SIGINT/SIGTERM stopped it; this many points are not finished (the next call resumes them).
    Interrupted { unfinished: usize },
}

/// The stages a local run did not start because a stage before them has points that did not finish: their names
/// and point counts, in order.
pub type NotStarted = Vec<(String, usize)>;

/// Runs every unfinished point (and the failed ones too where `retry_failed`). On SIGINT/SIGTERM the running
/// points are stopped (they save and resume on the next call) and [`LocalEnd::Interrupted`] is returned; on an
/// error they are stopped too.
pub fn run(sweep: &Sweep, dept: &Path, slots: &Slots, retry_failed: bool) -> Result<LocalEnd> {
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
    let mut table = LiveTable::new();
    for (n, stage) in sweep.stages.iter().enumerate() {
        let states = state::all_on_disk(sweep);
        let earlier_done = sweep.stages[..n]
            .iter()
            .all(|s| s.points.clone().all(|i| states[i].is_done()));
        if !earlier_done {
            table.show(&LiveTable::render(sweep, &states, false));
            let not_started = sweep.stages[n..]
                .iter()
                .map(|s| (s.name.clone().unwrap_or_default(), s.points.len()))
                .collect();
            return Ok(finished(sweep, &states, not_started));
        }
        if let (Some(name), Some(_)) = (&stage.name, &stage.init) {
            for chosen in crate::stages::pick(&sweep.out, name)? {
                println!(
                    "stage {name}: {} starts from {} ({} {})",
                    chosen.link.display(),
                    chosen.point,
                    chosen.metric,
                    chosen.value
                );
            }
        }
        let mut pool = Pool::new(sweep, dept, slots, retry_failed, stage.points.clone());
        let result = pool.drive();
        if result.is_err() || STOP.load(Ordering::SeqCst) {
            pool.stop_all();
        }
        result?;
        if STOP.load(Ordering::SeqCst) {
            let unfinished = state::all_on_disk(sweep)
                .iter()
                .filter(|s| !s.is_done())
                .count();
            return Ok(LocalEnd::Interrupted { unfinished });
        }
        pool.table
            .show(&LiveTable::render(sweep, &pool.states, false));
        table = pool.table;
    }
    Ok(finished(sweep, &state::all_on_disk(sweep), Vec::new()))
}

/// How a run that has nothing more it may start ended: the failed and preempted points of the whole sweep.
fn finished(sweep: &Sweep, states: &[State], not_started: NotStarted) -> LocalEnd {
    LocalEnd::Finished {
        failed: state::failures(sweep, states),
        preempted: states
            .iter()
            .filter(|s| matches!(s, State::Preempted(_)))
            .count(),
        not_started,
    }
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
    /// Points another process holds (a trainer left by a killed runner, another runner, a Slurm task): taken
    /// over when it lets go of them unfinished.
    held_elsewhere: Vec<usize>,
    free: Vec<usize>,
    running: Vec<Running>,
    table: LiveTable,
}

impl<'a> Pool<'a> {
    /// A pool for the points `members` (one stage's) of the sweep.
    fn new(
        sweep: &'a Sweep,
        dept: &'a Path,
        slots: &'a Slots,
        retry_failed: bool,
        members: std::ops::Range<usize>,
    ) -> Self {
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
        let count = |f: fn(&State) -> bool| members.clone().filter(|&i| f(&states[i])).count();
        match (count(State::is_failed), retry_failed) {
            (0, _) => {}
            (failed, true) => println!("{failed} point(s) failed before and are tried again"),
            (failed, false) => println!(
                "{failed} point(s) failed before and are left failed (dept sweep status shows why; \
                 --retry-failed runs them again)"
            ),
        }
        let held_elsewhere: Vec<usize> = members
            .clone()
            .filter(|&i| matches!(states[i], State::Running(_)))
            .collect();
        if !held_elsewhere.is_empty() {
            println!(
                "{} point(s) are held by another process (a trainer still saving, another sweep run, a Slurm \
                 task); this run waits for them and resumes them if they stop unfinished",
                held_elsewhere.len()
            );
        }
        let mut queue: Vec<usize> = members
            .filter(|&i| match &states[i] {
                State::Done | State::Running(_) => false,
                State::Failed(_) => retry_failed,
                _ => true,
            })
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
            held_elsewhere,
            running: Vec::new(),
            table: LiveTable::new(),
        }
    }

    /// Starts points while slots are free, collects the ones that end, takes over the ones other processes let
    /// go of, until none is left or a stop is asked.
    fn drive(&mut self) -> Result<()> {
        let mut last_draw: Option<Instant> = None;
        while !STOP.load(Ordering::SeqCst) {
            self.take_over_released();
            self.start_points()?;
            if self.running.is_empty() && self.queue.is_empty() && self.held_elsewhere.is_empty() {
                break;
            }
            self.collect_ended()?;
            if last_draw.is_none_or(|t| t.elapsed() >= Duration::from_secs(2)) {
                self.table
                    .show(&LiveTable::render(self.sweep, &self.states, false));
                last_draw = Some(Instant::now());
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        Ok(())
    }

    /// Starts queued points in the free slots; a point another process holds waits instead.
    fn start_points(&mut self) -> Result<()> {
        while let (Some(&slot), Some(&index)) = (self.free.last(), self.queue.last()) {
            self.queue.pop();
            let point = &self.sweep.points[index];
            let Some(claim) = Claim::try_take(&state::claim_file(self.sweep, point))? else {
                self.hold_elsewhere(index);
                continue;
            };
            if RunLock::is_held(&self.sweep.run_dir(point)) {
                self.hold_elsewhere(index);
                continue;
            }
            let (child, log_from) = start(
                self.sweep,
                point,
                self.dept,
                self.slots,
                slot,
                self.threads,
                &claim,
            )?;
            self.free.pop();
            state::clear_markers(self.sweep, point);
            self.states[index] = State::Running(self.slot_names[slot].clone());
            self.running.push(Running {
                index,
                slot,
                child,
                claim,
                log_from,
            });
        }
        Ok(())
    }

    fn hold_elsewhere(&mut self, index: usize) {
        self.states[index] = State::Running("another process".into());
        self.held_elsewhere.push(index);
    }

    /// Points other processes have let go of: done or failed there, or queued here to resume.
    fn take_over_released(&mut self) {
        for index in std::mem::take(&mut self.held_elsewhere) {
            match state::on_disk(self.sweep, &self.sweep.points[index]) {
                State::Running(_) => self.held_elsewhere.push(index),
                finished @ (State::Done | State::Failed(_)) => self.states[index] = finished,
                resumable => {
                    self.states[index] = resumable;
                    self.queue.push(index);
                }
            }
        }
    }

    /// The trainers that have ended, and the state each left its point in.
    fn collect_ended(&mut self) -> Result<()> {
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
            let stopping = STOP.load(Ordering::SeqCst);
            let index = run.index;
            self.states[index] = self.ended(run, status, stopping)?;
        }
        Ok(())
    }

    /// The state a trainer that ended with `status` leaves its point in, recorded in the sweep folder. `stopping`:
    /// this runner asked it to stop (it was not a failure, whatever the status).
    fn ended(&mut self, run: Running, status: ExitStatus, stopping: bool) -> Result<State> {
        let Running {
            index,
            claim,
            log_from,
            ..
        } = run;
        // Released first: the folder's state below would otherwise read as held by another process.
        drop(claim);
        let point = &self.sweep.points[index];
        let run_dir = self.sweep.run_dir(point);
        if status.success() && run_dir.join("results.csv").is_file() {
            return Ok(State::Done);
        }
        if status.code() == Some(state::PREEMPTED) {
            let how = format!(
                "exit status {}: saved on a signal, resumes from its checkpoint",
                state::PREEMPTED
            );
            state::mark_preempted(self.sweep, point, &how)?;
            return Ok(State::Preempted(how));
        }
        if stopping {
            return Ok(state::on_disk(self.sweep, point));
        }
        if RunLock::is_held(&run_dir) {
            // Refused because another process took the run folder first: its point, not a failure.
            self.held_elsewhere.push(index);
            return Ok(State::Running("another process".into()));
        }
        let log = self.sweep.log_path(point);
        let failure = Failure {
            how: format!("{status}; log {}", log.display()),
            error: state::last_error(&log, log_from),
        };
        state::mark_failed(self.sweep, point, &failure)?;
        eprintln!(
            "point {} failed ({failure}):\n{}",
            point.id,
            log_tail(&log, 6)
        );
        self.table.keep_what_was_printed();
        Ok(State::Failed(failure))
    }

    /// SIGTERM to every running point (`dept train` then saves a checkpoint and ends), and waits for them.
    fn stop_all(&mut self) {
        for run in &mut self.running {
            // SAFETY: signalling our own child process.
            unsafe {
                libc::kill(run.child.id() as libc::pid_t, libc::SIGTERM);
            }
        }
        for mut run in std::mem::take(&mut self.running) {
            let index = run.index;
            self.states[index] = match run.child.wait() {
                Ok(status) => self.ended(run, status, true).unwrap_or(State::Interrupted),
                Err(_) => {
                    drop(run);
                    state::on_disk(self.sweep, &self.sweep.points[index])
                }
            };
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
    claim: &Claim,
) -> Result<(Child, u64)> {
    let log_path = sweep.log_path(point);
    let mut log = OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log_path)
        .map_err(|e| SweepError::io("opening", &log_path, e))?;
    let log_from = log
        .metadata()
        .map_err(|e| SweepError::io("reading", &log_path, e))?
        .len();
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
    let (runner, claim_fd) = (std::process::id() as libc::pid_t, claim.raw_fd());
    // SAFETY: the hook runs in the forked child before exec and makes only async-signal-safe calls.
    unsafe {
        command.pre_exec(move || prepare_trainer(runner, claim_fd));
    }
    let child = command
        .stdin(Stdio::null())
        .stdout(stdout)
        .stderr(log)
        .spawn()
        .map_err(|e| SweepError::io("starting", dept, e))?;
    Ok((child, log_from))
}

/// In a trainer between fork and exec: keep the point's claim open across exec (so it is held as long as the
/// trainer lives), and ask for SIGTERM when the runner dies, so that a runner killed with SIGKILL leaves no
/// orphan training unattended: each saves a checkpoint and exits (status 75), and the next runner resumes it.
/// (Linux sends it when the thread that forked ends: the runner starts trainers from its one driving thread.)
fn prepare_trainer(runner: libc::pid_t, claim_fd: RawFd) -> std::io::Result<()> {
    // SAFETY: fcntl, prctl and getppid on this process's own descriptor and state.
    unsafe {
        if libc::fcntl(claim_fd, libc::F_SETFD, 0) == -1 {
            return Err(std::io::Error::last_os_error());
        }
        #[cfg(target_os = "linux")]
        {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM) == -1 {
                return Err(std::io::Error::last_os_error());
            }
            // The runner died before prctl took effect: no signal would come, so do not start at all.
            if libc::getppid() != runner {
                return Err(std::io::Error::from_raw_os_error(libc::ESRCH));
            }
        }
    }
    Ok(())
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
