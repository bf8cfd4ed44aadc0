//! Where each point stands, read from the sweep folder alone (so any backend, and any later `dept sweep` call,
//! sees the same thing): finished runs have `results.csv`, running ones hold their run folder's lock (see
//! `dept_train::run_dir::RunLock`), failed ones have a marker with the exit status, interrupted ones a `last/`
//! checkpoint to resume from.

use std::io::{BufRead, IsTerminal, Write};
use std::path::{Path, PathBuf};

use crate::spec::{scalar_text, Point, Sweep};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum State {
    Pending,
    /// Stopped before the end with a checkpoint: the next run resumes it.
    Interrupted,
    /// In a queue (Slurm) and not started yet.
    Queued(String),
    /// Running, with who runs it (`cpu slot 1`, `gpu 0`, `slurm 1234_5`).
    Running(String),
    /// The last attempt exited with an error (its log says why); the next run tries again.
    Failed(String),
    Done,
}

impl State {
    pub fn is_done(&self) -> bool {
        matches!(self, State::Done)
    }
}

/// Marker files beside the runs: `status/<id>.failed` holds why the last attempt failed.
pub fn status_dir(sweep: &Sweep) -> PathBuf {
    sweep.out.join("status")
}

pub fn failed_marker(sweep: &Sweep, point: &Point) -> PathBuf {
    status_dir(sweep).join(format!("{}.failed", point.id))
}

/// The state the folder shows, ignoring what is running (the backends know that).
pub fn on_disk(sweep: &Sweep, point: &Point) -> State {
    let run = sweep.run_dir(point);
    if dept_train::run_dir::RunLock::is_held(&run) {
        return State::Running("another process".into());
    }
    if run.join("results.csv").is_file() {
        return State::Done;
    }
    if let Ok(reason) = std::fs::read_to_string(failed_marker(sweep, point)) {
        return State::Failed(reason.trim().to_string());
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
            "sweep {}: {} points, {} done, {} running, {} queued, {} interrupted, {} failed, {} pending\n",
            sweep.name,
            states.len(),
            count(|s| matches!(s, State::Done)),
            count(|s| matches!(s, State::Running(_))),
            count(|s| matches!(s, State::Queued(_))),
            count(|s| matches!(s, State::Interrupted)),
            count(|s| matches!(s, State::Failed(_))),
            count(|s| matches!(s, State::Pending)),
        );
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
                State::Queued(by) => format!("queued ({by})"),
                State::Running(by) => format!("running ({by})"),
                State::Failed(why) => format!("failed: {why}"),
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
