//! Where each point stands, read from the sweep folder alone (so any backend, and any later `dept sweep` call,
//! sees the same thing): finished runs have `results.csv`, running ones hold their run folder's lock (see
//! `dept_train::run_dir::RunLock`) or a local runner's claim on the point ([`crate::claim`]), failed ones have a
//! marker with their exit status and error, preempted ones (their trainer saved on a signal and exited with
//! [`PREEMPTED`]) a marker saying so, interrupted ones a `last/` checkpoint to resume from.

use std::io::{BufRead, IsTerminal, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use crate::spec::{scalar_text, Point, Sweep};

/// The status a trainer ends with when it saved a complete checkpoint on SIGTERM/SIGINT/SIGUSR1: "resume me".
pub const PREEMPTED: i32 = dept_train::exit_status::PREEMPTED as i32;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum State {
    Pending,
    /// Stopped before the end with a checkpoint (its trainer was killed, or stopped by this runner): the next run
    /// resumes it.
    Interrupted,
    /// Its trainer saved a checkpoint on a signal and exited with [`PREEMPTED`], with how that was recorded
    /// (`exit status 75 …`): the next run, or its requeued Slurm task, resumes it. Not a failure.
    Preempted(String),
    /// In a queue (Slurm) and not started yet.
    Queued(String),
    /// Running, with who runs it (`cpu slot 1`, `gpu 0`, `slurm 1234_5`).
    Running(String),
    /// The last attempt ended with an error. A plain `dept sweep run` leaves it failed; `--retry-failed` runs it
    /// again.
    Failed(Failure),
    Done,
}

impl State {
    pub fn is_done(&self) -> bool {
        matches!(self, State::Done)
    }

    pub fn is_failed(&self) -> bool {
        matches!(self, State::Failed(_))
    }
}

/// Why a point failed: how its trainer ended (`exit status: 1; log …`) and the last `error:` line it printed
/// (none when it was killed before it could print one).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub how: String,
    pub error: Option<String>,
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.error {
            Some(error) => write!(f, "{error} ({})", self.how),
            None => f.write_str(&self.how),
        }
    }
}

impl Failure {
    /// The marker's text: `how` on the first line, the error on the second (the Slurm array script writes the
    /// same two lines).
    fn marker_text(&self) -> String {
        match &self.error {
            Some(error) => format!("{}\n{error}\n", self.how),
            None => format!("{}\n", self.how),
        }
    }

    fn from_marker(text: &str) -> Failure {
        let mut lines = text.lines().map(str::trim).filter(|l| !l.is_empty());
        Failure {
            how: lines.next().unwrap_or("failed").to_string(),
            error: lines.next().map(str::to_string),
        }
    }
}

/// Marker files beside the runs: `status/<id>.failed` holds why the last attempt failed, `status/<id>.preempted`
/// how it was preempted, `status/<id>.claim` is the lock a local runner holds on a point it runs.
pub fn status_dir(sweep: &Sweep) -> PathBuf {
    sweep.out.join("status")
}

/// `<out>/status/<id>.<kind>`, for a sweep folder `out` (the report reads markers without the sweep file).
pub fn marker(out: &Path, id: &str, kind: &str) -> PathBuf {
    out.join("status").join(format!("{id}.{kind}"))
}

pub fn failed_marker(sweep: &Sweep, point: &Point) -> PathBuf {
    marker(&sweep.out, &point.id, "failed")
}

pub fn preempted_marker(sweep: &Sweep, point: &Point) -> PathBuf {
    marker(&sweep.out, &point.id, "preempted")
}

pub fn claim_file(sweep: &Sweep, point: &Point) -> PathBuf {
    marker(&sweep.out, &point.id, "claim")
}

/// The failure recorded for point `id` of the sweep folder `out`, if any.
pub fn failure(out: &Path, id: &str) -> Option<Failure> {
    let text = std::fs::read_to_string(marker(out, id, "failed")).ok()?;
    Some(Failure::from_marker(&text))
}

/// The preemption recorded for point `id` of the sweep folder `out`, if any.
pub fn preemption(out: &Path, id: &str) -> Option<String> {
    let text = std::fs::read_to_string(marker(out, id, "preempted")).ok()?;
    Some(text.trim().to_string())
}

pub fn mark_failed(sweep: &Sweep, point: &Point, failure: &Failure) -> crate::Result<()> {
    crate::write::write_file(&failed_marker(sweep, point), &failure.marker_text())
}

pub fn mark_preempted(sweep: &Sweep, point: &Point, how: &str) -> crate::Result<()> {
    crate::write::write_file(&preempted_marker(sweep, point), &format!("{how}\n"))
}

/// Forgets how the point's last attempt ended, as a new attempt starts.
pub fn clear_markers(sweep: &Sweep, point: &Point) {
    let _ = std::fs::remove_file(failed_marker(sweep, point));
    let _ = std::fs::remove_file(preempted_marker(sweep, point));
}

/// The state the folder shows, ignoring what is running (the backends know that).
pub fn on_disk(sweep: &Sweep, point: &Point) -> State {
    let run = sweep.run_dir(point);
    if dept_train::run_dir::RunLock::is_held(&run)
        || crate::claim::Claim::is_held(&claim_file(sweep, point))
    {
        return State::Running("another process".into());
    }
    if run.join("results.csv").is_file() {
        return State::Done;
    }
    if let Some(failure) = failure(&sweep.out, &point.id) {
        return State::Failed(failure);
    }
    if let Some(how) = preemption(&sweep.out, &point.id) {
        return State::Preempted(how);
    }
    if run.join("last").is_dir() {
        return State::Interrupted;
    }
    State::Pending
}

/// [`on_disk`] for every point, in grid order.
pub fn all_on_disk(sweep: &Sweep) -> Vec<State> {
    sweep.points.iter().map(|p| on_disk(sweep, p)).collect()
}

/// Every failed point of `states` (in grid order), with why.
pub fn failures(sweep: &Sweep, states: &[State]) -> Vec<(String, Failure)> {
    sweep
        .points
        .iter()
        .zip(states)
        .filter_map(|(point, state)| match state {
            State::Failed(failure) => Some((point.id.clone(), failure.clone())),
            _ => None,
        })
        .collect()
}

/// The last `error: …` line a trainer printed into its log after byte `from` (where its attempt began), without
/// the `error: ` prefix: `dept` prints its error chain there as it ends.
pub fn last_error(log: &Path, from: u64) -> Option<String> {
    let mut file = std::fs::File::open(log).ok()?;
    file.seek(SeekFrom::Start(from)).ok()?;
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes).ok()?;
    String::from_utf8_lossy(&bytes)
        .lines()
        .rev()
        .find_map(|line| line.strip_prefix("error: "))
        .map(|error| error.trim().to_string())
}

/// The last step a run has logged, and its loss.
pub fn progress(run_dir: &Path) -> Option<(u64, Option<f64>)> {
    let file = std::fs::File::open(run_dir.join("metrics.jsonl")).ok()?;
    let mut last = None;
    for line in std::io::BufReader::new(file).lines().map_while(Result::ok) {
        if let Ok(record) = serde_json::from_str::<serde_json::Value>(&line) {
            if let Some(step) = record.get("step").and_then(|s| s.as_u64()) {
                let loss = record.get("loss").and_then(|l| l.as_f64());
                if loss.is_some() || last.is_none() {
                    last = Some((step, loss));
                }
            }
        }
    }
    last
}

/// `max_steps` of a point, for the progress column.
pub fn max_steps(point: &Point) -> Option<u64> {
    point
        .config
        .get("max_steps")
        .and_then(|v| scalar_text(v).parse().ok())
}

/// One line per stage (its counts), and under a stage that starts from another, where each of its links stands.
fn stage_lines(sweep: &Sweep, states: &[State]) -> String {
    let mut text = String::new();
    for stage in &sweep.stages {
        let of_stage = &states[stage.points.clone()];
        let count = |f: fn(&State) -> bool| of_stage.iter().filter(|s| f(s)).count();
        text += &format!(
            "  stage {}: {} points, {} done, {} failed\n",
            stage.name.as_deref().unwrap_or(""),
            of_stage.len(),
            count(State::is_done),
            count(State::is_failed),
        );
        if let Some(init) = &stage.init {
            for line in crate::stages::describe_picks(&sweep.out, init) {
                text += &format!("    {line}\n");
            }
        }
    }
    text
}

/// The progress table: a count line, then one line per point that is not pending or done (all of them when
/// `all`). On a terminal it redraws in place; otherwise it is printed when it changes.
pub struct LiveTable {
    lines_drawn: usize,
    terminal: bool,
    last_text: String,
}

/// Columns of the terminal on stdout (80 when unknown).
fn terminal_width() -> usize {
    // SAFETY: TIOCGWINSZ fills a winsize struct we own; on failure it is left zeroed.
    let mut size: libc::winsize = unsafe { std::mem::zeroed() };
    let ok = unsafe { libc::ioctl(libc::STDOUT_FILENO, libc::TIOCGWINSZ, &mut size) } == 0;
    if ok && size.ws_col > 0 {
        usize::from(size.ws_col)
    } else {
        80
    }
}

impl Default for LiveTable {
    fn default() -> Self {
        Self::new()
    }
}

impl LiveTable {
    pub fn new() -> Self {
        LiveTable {
            lines_drawn: 0,
            terminal: std::io::stdout().is_terminal(),
            last_text: String::new(),
        }
    }

    pub fn render(sweep: &Sweep, states: &[State], all: bool) -> String {
        let count = |f: fn(&State) -> bool| states.iter().filter(|s| f(s)).count();
        let mut text = format!(
            "sweep {}: {} points, {} done, {} running, {} queued, {} interrupted, {} preempted, {} failed, {} \
             pending\n",
            sweep.name,
            states.len(),
            count(|s| matches!(s, State::Done)),
            count(|s| matches!(s, State::Running(_))),
            count(|s| matches!(s, State::Queued(_))),
            count(|s| matches!(s, State::Interrupted)),
            count(|s| matches!(s, State::Preempted(_))),
            count(|s| matches!(s, State::Failed(_))),
            count(|s| matches!(s, State::Pending)),
        );
        if sweep.is_staged() {
            text += &stage_lines(sweep, states);
        }
        for (point, state) in sweep.points.iter().zip(states) {
            let shown = all || !matches!(state, State::Pending | State::Done);
            if !shown {
                continue;
            }
            let step = progress(&sweep.run_dir(point));
            let progress = match (step, max_steps(point)) {
                (Some((step, loss)), Some(max)) => format!(
                    "step {step}/{max}{}",
                    loss.map_or(String::new(), |l| format!(" loss {l:.3}"))
                ),
                (Some((step, _)), None) => format!("step {step}"),
                _ => String::new(),
            };
            let state = match state {
                State::Pending => "pending".to_string(),
                State::Interrupted => "interrupted (resumes)".to_string(),
                State::Preempted(how) => format!("preempted, resumes ({how})"),
                State::Queued(by) => format!("queued ({by})"),
                State::Running(by) => format!("running ({by})"),
                State::Failed(failure) => format!("failed: {failure}"),
                State::Done => "done".to_string(),
            };
            text += &format!("  {:<48} {:<28} {progress}\n", point.id, state);
        }
        text
    }

    /// Shows the table: redrawn in place on a terminal (each line cut to its width, so that the lines to redraw
    /// are the lines drawn); elsewhere (logs, CI) only its count line, when it changes.
    pub fn show(&mut self, text: &str) {
        let shown: String = if self.terminal {
            let width = terminal_width();
            text.trim_end()
                .lines()
                .map(|line| {
                    line.chars()
                        .take(width.saturating_sub(1))
                        .collect::<String>()
                        + "\n"
                })
                .collect()
        } else {
            text.lines().next().unwrap_or("").to_string() + "\n"
        };
        if shown == self.last_text {
            return;
        }
        let mut out = std::io::stdout().lock();
        if self.terminal && self.lines_drawn > 0 {
            let _ = write!(out, "\x1b[{}A\x1b[J", self.lines_drawn);
        }
        let _ = write!(out, "{shown}");
        let _ = out.flush();
        self.lines_drawn = shown.lines().count();
        self.last_text = shown;
    }

    /// Call after printing anything else, so that the next redraw does not erase it.
    pub fn keep_what_was_printed(&mut self) {
        self.lines_drawn = 0;
        self.last_text.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failure_marker_keeps_how_and_the_error_and_reads_one_line_markers_too() {
        let failure = Failure {
            how: "exit status: 1; log x.log".into(),
            error: Some("loss is not finite at step 7".into()),
        };
        assert_eq!(Failure::from_marker(&failure.marker_text()), failure);
        assert_eq!(
            failure.to_string(),
            "loss is not finite at step 7 (exit status: 1; log x.log)"
        );
        let old = Failure::from_marker("exit status 1 in slurm job 3_1; log y\n\n");
        assert_eq!(
            (old.how.as_str(), old.error),
            ("exit status 1 in slurm job 3_1; log y", None)
        );
    }

    #[test]
    fn the_last_error_line_of_this_attempt_is_found() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("p.log");
        let first = "=== start 1\nerror: first attempt's error\n";
        std::fs::write(
            &log,
            format!("{first}=== start 2\nINFO error: not at the start\nerror: a\nerror: b: c\n"),
        )
        .unwrap();
        assert_eq!(last_error(&log, 0).as_deref(), Some("b: c"));
        assert_eq!(
            last_error(&log, 0).as_deref(),
            last_error(&log, first.len() as u64).as_deref()
        );
        std::fs::write(&log, first).unwrap();
        assert_eq!(
            last_error(&log, first.len() as u64),
            None,
            "nothing printed after the offset"
        );
        assert_eq!(last_error(&dir.path().join("none.log"), 0), None);
    }
}
