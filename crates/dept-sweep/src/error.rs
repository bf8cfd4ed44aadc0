//! The sweep engine's one error type. Every variant names the file, point, option or command at fault; a cause is
//! printed once, inside the message that wraps it (no variant exposes it as a `source` too, so a chain printer
//! never repeats it). The texts are the ones users and tests see.

use std::path::PathBuf;
use std::process::ExitStatus;

/// What can stop a sweep, its status or its report.
#[derive(Debug, thiserror::Error)]
pub enum SweepError {
    /// A file or folder operation failed: `{action} {path}: {error}`.
    #[error("{action} {}: {error}", path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("cannot read the sweep file {}: {error}", file.display())]
    ReadSweepFile {
        file: PathBuf,
        error: std::io::Error,
    },
    #[error("{}: not a sweep file (keys: name, out, base, set, grid or stages, slurm): {error}", file.display())]
    NotASweepFile {
        file: PathBuf,
        error: serde_yaml::Error,
    },
    /// The sweep file parses but cannot be expanded into points.
    #[error("{}: {problem}", file.display())]
    BadSweep {
        file: PathBuf,
        problem: SweepProblem,
    },
    /// A `--set key=value` item that cannot apply to every point.
    #[error("--set {item:?}: {problem}")]
    BadOverride {
        item: String,
        problem: OverrideProblem,
    },
    #[error("base {base:?} uses {{task}} but neither grid nor set gives a task")]
    BaseWithoutTask { base: String },
    #[error(
        "no base config for this point: none of {} exists",
        tried.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", ")
    )]
    NoBase { tried: Vec<PathBuf> },
    #[error("cannot read the base config {}: {error}", path.display())]
    ReadBase {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("{}: not valid YAML: {error}", path.display())]
    BaseNotYaml {
        path: PathBuf,
        error: serde_yaml::Error,
    },
    #[error("{}: expected a mapping of `key: value` lines", path.display())]
    BaseNotMapping { path: PathBuf },
    /// A point's config, as `dept train` checks it.
    #[error("grid point {id}: {error}")]
    PointConfig {
        id: String,
        error: Box<dept_train::TrainError>,
    },
    /// A point whose (m, r) does not fit its model's width.
    #[error("grid point {id}: {problem}")]
    PointShape {
        id: String,
        problem: dept_train::config::Invalid,
    },
    #[error(
        "point {id} has started (its run folder {} exists) and its config would change; run with the same sweep \
         file and --set as before, or delete that run folder to start it again",
        run_dir.display()
    )]
    PointStarted { id: String, run_dir: PathBuf },
    /// Writing a point config or the manifest as text (never expected to fail: they are plain maps).
    #[error("writing {what}: {error}")]
    Serialize { what: String, error: String },
    #[error("{}: not a list of key=value strings: {error}", path.display())]
    SavedOverrides {
        path: PathBuf,
        error: serde_json::Error,
    },
    /// A sweep ended with failed points (now or in an earlier run); a plain run leaves them failed.
    #[error(
        "{} point(s) failed (their logs are in {}); fix the cause, then run the same command with --retry-failed \
         to run them again:{}",
        points.len(),
        logs.display(),
        points.iter().map(|(id, failure)| format!("\n  {id}: {failure}")).collect::<String>()
    )]
    PointsFailed {
        points: Vec<(String, crate::state::Failure)>,
        logs: PathBuf,
    },
    /// A waited-for Slurm sweep ended with no task left in Slurm and points not done.
    #[error(
        "{left} point(s) did not finish (cancelled, preempted or timed out; see dept sweep status); run the same \
         command again to submit them, they resume from their last checkpoint"
    )]
    PointsUnfinished { left: usize },
    #[error(
        "--signal-seconds (or slurm.signal_seconds) is {seconds}; Slurm accepts at most {max}"
    )]
    SignalSeconds { seconds: u32, max: u32 },
    #[error("--slots must be at least 1")]
    NoSlots,
    #[error("--gpus expects device numbers separated by commas, e.g. 0,1,2; got {text:?}")]
    BadGpus { text: String },
    #[error("--gpus {text:?} names a GPU twice")]
    GpuTwice { text: String },
    /// A Slurm client (`squeue`, `sbatch`) could not be started.
    #[error("running {command} (is Slurm's client installed and SLURM_CONF set?): {error}")]
    SlurmClient {
        command: &'static str,
        error: std::io::Error,
    },
    #[error("squeue failed ({status}): {stderr}")]
    SqueueFailed { status: ExitStatus, stderr: String },
    #[error("sbatch refused the job array ({status}): {stderr}")]
    SbatchRefused { status: ExitStatus, stderr: String },
    #[error("sbatch printed {stdout:?}, not a job id")]
    SbatchNoJobId { stdout: String },
    #[error("{} has no sweep.json: give a sweep file, or the folder a sweep ran in", folder.display())]
    NotASweepFolder { folder: PathBuf },
    #[error("{} not found: is {} a sweep folder made by `dept sweep`?", path.display(), folder.display())]
    ManifestMissing { path: PathBuf, folder: PathBuf },
    #[error("{} is not a valid sweep manifest: {error}", path.display())]
    ManifestInvalid {
        path: PathBuf,
        error: serde_json::Error,
    },
    /// A manifest whose points cannot be reported safely.
    #[error("{}: {problem}", path.display())]
    BadManifest {
        path: PathBuf,
        problem: ManifestProblem,
    },
    #[error("the sweep has no stage `{stage}`; its stages are {}", known.join(", "))]
    NoSuchStage { stage: String, known: Vec<String> },
    #[error(
        "stage {stage} starts from the best point of stage {from}, but these of its points have not finished: {}",
        points.join(", ")
    )]
    SourceNotDone {
        stage: String,
        from: String,
        points: Vec<String>,
    },
    #[error(
        "{}: the source points to pick from are of different tasks ({}), whose scores do not compare; add task \
         to the stage's init_adapter.match",
        link.display(),
        tasks.join(", ")
    )]
    SourceTasks { link: PathBuf, tasks: Vec<String> },
    #[error(
        "{}: none of the source points {} has a validation score to pick the best by",
        link.display(),
        points.join(", ")
    )]
    NoSourceScore { link: PathBuf, points: Vec<String> },
    #[error(
        "{} would change from {} to {} (the source stage's results changed), but points starting from it have \
         started: {}; delete their run folders to start them from the new best, or restore the source runs",
        link.display(),
        was.display(),
        now.display(),
        started.join(", ")
    )]
    SourceChanged {
        link: PathBuf,
        was: PathBuf,
        now: PathBuf,
        started: Vec<String>,
    },
    #[error("malformed {}: {problem}", path.display())]
    MalformedResults {
        path: PathBuf,
        problem: ResultsProblem,
    },
}

/// Why a sweep file cannot be expanded (shown after its path).
#[derive(Debug, thiserror::Error)]
pub enum SweepProblem {
    #[error("name {0:?} must be letters, digits, '-', '_' or '.'")]
    Name(String),
    /// `section` is `grid` or `set`.
    #[error("{section} keys must be strings, found {key}")]
    KeyNotText { section: &'static str, key: String },
    /// A key `dept train` does not know, with its suggestion.
    #[error("{section}: {problem}")]
    UnknownKey {
        section: &'static str,
        problem: String,
    },
    #[error("grid.{0} is an empty list")]
    EmptyValues(String),
    #[error("grid is empty: give at least one key with a list of values")]
    EmptyGrid,
    #[error("`{0}` is both in set and in grid")]
    SetAndGrid(String),
    #[error("output_dir is set by the sweep (<out>/runs/<point>); set `out:` or --out to move the sweep")]
    OutputDir,
    #[error("give either `grid:` or `stages:` (each stage with its own grid), not both")]
    GridAndStages,
    #[error("stages is an empty list: give at least one stage with a grid")]
    NoStages,
    #[error("stage name {0:?} must be letters, digits, '-', '_' or '.'")]
    StageName(String),
    #[error("two stages are named {0:?}")]
    StageTwice(String),
    #[error("stage {stage}: `{key}` is set both in the file's set and in the stage's")]
    SetTwice { stage: String, key: String },
    #[error(
        "stage {stage}: init_adapter is filled in from another stage (its `init_adapter: {{from_stage: …}}`) and \
         also given by hand in {place}; keep one"
    )]
    InitAdapterTwice { stage: String, place: String },
    #[error("stage {stage} starts from stage `{from}`, which the file does not have (its stages: {})", known.join(", "))]
    UnknownStage {
        stage: String,
        from: String,
        known: Vec<String>,
    },
    #[error("the stages start from one another in a cycle: {}", path.join(" → "))]
    Cycle { path: Vec<String> },
    #[error("stage {stage} starts from stage {from}, which is listed after it; list the stages in the order they run")]
    LaterStage { stage: String, from: String },
    #[error("point {id} has no value for `{key}`, a key of init_adapter.match; give it in the grid or set")]
    MatchKeyMissing { id: String, key: String },
    #[error(
        "stage {stage}: point {id} has {}, and no point of stage {from} does",
        values.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(", ")
    )]
    NoSourcePoint {
        stage: String,
        id: String,
        from: String,
        values: Vec<(String, String)>,
    },
    #[error("two grid points are both named {id:?} ({other:?})")]
    SameName {
        id: String,
        other: Vec<(String, String)>,
    },
}

/// Why a `--set` item cannot apply (shown after the item).
#[derive(Debug, thiserror::Error)]
pub enum OverrideProblem {
    #[error("expected key=value")]
    NotKeyValue,
    /// A key `dept train` does not know, with its suggestion.
    #[error("{0}")]
    UnknownKey(String),
    #[error("`{key}` is a grid key of {}", file.display())]
    GridKey { key: String, file: PathBuf },
    #[error("the value is not YAML: {0}")]
    NotYaml(serde_yaml::Error),
    #[error(
        "stage {stage} of {} fills init_adapter in from its source stage; --set cannot give it",
        file.display()
    )]
    FilledByStage { stage: String, file: PathBuf },
}

/// Why a point of `sweep.json` is refused (shown after the manifest's path).
#[derive(Debug, thiserror::Error)]
pub enum ManifestProblem {
    /// The id names a folder under runs/: anything but one plain name would read another point's results, or a
    /// file outside the sweep.
    #[error("point id `{0}` is not a plain folder name")]
    NotAFolderName(String),
    #[error("point `{0}` is listed twice")]
    Twice(String),
    #[error("point `{id}` has no value for the grid key `{key}`")]
    MissingGridValue { id: String, key: String },
}

/// Why a run's `results.csv` cannot be read (shown after its path).
#[derive(Debug, PartialEq, thiserror::Error)]
pub enum ResultsProblem {
    #[error("expected a header and exactly one row, found {0} line(s)")]
    RowCount(usize),
    #[error("the header has {header} columns but the row has {row}")]
    ColumnCount { header: usize, row: usize },
    #[error("column `{column}`: `{cell}` is not a number")]
    NotANumber { column: String, cell: String },
    #[error("line {0}: a quoted field is never closed")]
    UnclosedQuote(usize),
    #[error("line {0}: text after the closing quote of a field")]
    TextAfterQuote(usize),
}

pub type Result<T, E = SweepError> = std::result::Result<T, E>;

impl SweepError {
    pub fn io(action: &'static str, path: impl Into<PathBuf>, error: std::io::Error) -> Self {
        SweepError::Io {
            action,
            path: path.into(),
            error,
        }
    }

    pub fn serialize(what: impl Into<String>, error: impl std::fmt::Display) -> Self {
        SweepError::Serialize {
            what: what.into(),
            error: error.to_string(),
        }
    }
}
