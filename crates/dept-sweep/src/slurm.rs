//! The Slurm backend: the unfinished points become one job array (`sbatch --array`), each task a `dept train` of
//! one point with the sweep file's resources. Submissions are recorded in `slurm/submissions.txt`, so that a later
//! call sees which points are queued or running (`squeue`) and submits only the others: a cancelled, preempted or
//! timed-out task is submitted again and resumes from its checkpoint; a failed one only with `--retry-failed`.
//!
//! Stages: each stage's unfinished points are an array of their own, submitted with `--dependency=afterok:` on
//! the arrays of the stages before it that are still queued, so it starts only once they have all succeeded; its
//! tasks first pick their source (`dept sweep pick`, [`crate::stages`]). A stage after one with failed points is
//! not submitted; an array whose dependency can no longer be met (a source task failed or was cancelled) is
//! cancelled by the next `run` (and by `--wait`), which submits it again on the arrays now queued.
//!
//! Preemption: the tasks are requeueable (`--requeue`) and ask for SIGUSR1 some seconds before their time limit
//! (`--signal=B:USR1@N`). The array script passes the signal on to `dept train`, which saves a checkpoint and
//! exits with status 75; the script then requeues its own task (`scontrol requeue JOBID_INDEX`), which starts again
//! later and resumes the run folder, bit for bit.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::error::{Result, SweepError};
use crate::spec::{Sweep, DEFAULT_SIGNAL_SECONDS, MAX_SIGNAL_SECONDS};
use crate::state::{self, LiveTable, State};

fn slurm_dir(sweep: &Sweep) -> PathBuf {
    sweep.out.join("slurm")
}

/// Whether the sweep has been submitted to Slurm (then `squeue` knows which points are queued or running).
pub fn was_used(sweep: &Sweep) -> bool {
    slurm_dir(sweep).join("submissions.txt").is_file()
}

/// `(job id, points file)` of every submission so far.
fn submissions(sweep: &Sweep) -> Vec<(String, PathBuf)> {
    let text =
        std::fs::read_to_string(slurm_dir(sweep).join("submissions.txt")).unwrap_or_default();
    text.lines()
        .filter_map(|l| l.split_once(' '))
        .map(|(job, file)| (job.to_string(), PathBuf::from(file)))
        .collect()
}

/// Point id → (array task, Slurm state `PENDING`, `RUNNING`, …) of every array task `squeue` still lists (a
/// requeued task is listed again, `PENDING` until it restarts).
fn queued(sweep: &Sweep) -> Result<HashMap<String, (String, String)>> {
    let subs = submissions(sweep);
    if subs.is_empty() {
        return Ok(HashMap::new());
    }
    let jobs: Vec<&str> = subs.iter().map(|(j, _)| j.as_str()).collect();
    // One line per array task (-r), `JOBID_INDEX|STATE`, active jobs only.
    let output = Command::new("squeue")
        .args(["-h", "-r", "-o", "%i|%T", "-j", &jobs.join(",")])
        .output()
        .map_err(|error| SweepError::SlurmClient {
            command: "squeue",
            error,
        })?;
    let stderr = String::from_utf8_lossy(&output.stderr);
    // squeue refuses a list of job ids it has all forgotten: then nothing of them is queued. Any other failure
    // (controller unreachable) must not read as "nothing queued", or everything would be submitted again.
    if !output.status.success() && !stderr.contains("Invalid job id") {
        return Err(SweepError::SqueueFailed {
            status: output.status,
            stderr: stderr.trim().to_string(),
        });
    }
    let points: HashMap<String, Vec<String>> = subs
        .iter()
        .map(|(job, file)| {
            let ids = std::fs::read_to_string(file).unwrap_or_default();
            (job.clone(), ids.lines().map(str::to_string).collect())
        })
        .collect();
    Ok(parse_squeue(
        &String::from_utf8_lossy(&output.stdout),
        &points,
    ))
}

/// `squeue -r -o '%i|%T'` lines → point id → (array task, state), through each job's points list (array index n
/// is line n of the list that job was submitted with).
fn parse_squeue(
    stdout: &str,
    points: &HashMap<String, Vec<String>>,
) -> HashMap<String, (String, String)> {
    let mut states = HashMap::new();
    for line in stdout.lines() {
        let Some((task, slurm_state)) = line.trim().split_once('|') else {
            continue;
        };
        let Some((job, index)) = task.split_once('_') else {
            continue;
        };
        let (Some(ids), Ok(index)) = (points.get(job), index.parse::<usize>()) else {
            continue;
        };
        if let Some(id) = ids.get(index) {
            states.insert(id.clone(), (task.to_string(), slurm_state.to_string()));
        }
    }
    states
}

/// Every point's state: the folder's, overridden by what `squeue` lists.
pub fn states(sweep: &Sweep) -> Result<Vec<State>> {
    let queued = queued(sweep)?;
    Ok(sweep
        .points
        .iter()
        .map(|p| match queued.get(&p.id) {
            Some((task, s)) if s == "RUNNING" || s == "COMPLETING" => {
                State::Running(format!("slurm {task}"))
            }
            Some((task, s)) => {
                // The marker of a task that saved and requeued itself stays until it starts again.
                let requeued = match state::preemption(&sweep.out, &p.id) {
                    Some(_) => ", requeued after preemption",
                    None => "",
                };
                State::Queued(format!("slurm {task} {}{requeued}", s.to_lowercase()))
            }
            None => state::on_disk(sweep, p),
        })
        .collect())
}

/// How the array's tasks are submitted, beside the sweep file's resources.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Submission {
    /// Submit the failed points too (`--retry-failed`); otherwise they are left failed.
    pub retry_failed: bool,
    /// `--signal-seconds`, over the sweep file's `slurm.signal_seconds`.
    pub signal_seconds: Option<u32>,
}

/// The reason `squeue` gives for a task whose dependency can never be met (an earlier stage's task failed).
const DEPENDENCY_NEVER_SATISFIED: &str = "DependencyNeverSatisfied";

/// Cancels the array tasks of the sweep that wait on a dependency that can never be met, and returns their point
/// ids: they would wait forever, and the next submission sends them again behind what is queued then.
fn cancel_stuck(sweep: &Sweep) -> Result<Vec<String>> {
    let subs = submissions(sweep);
    if subs.is_empty() {
        return Ok(Vec::new());
    }
    let jobs: Vec<&str> = subs.iter().map(|(j, _)| j.as_str()).collect();
    let output = Command::new("squeue")
        .args(["-h", "-r", "-o", "%i|%r", "-j", &jobs.join(",")])
        .output()
        .map_err(|error| SweepError::SlurmClient {
            command: "squeue",
            error,
        })?;
    let stuck: Vec<String> = String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|l| l.trim().split_once('|'))
        .filter(|(_, reason)| *reason == DEPENDENCY_NEVER_SATISFIED)
        .map(|(task, _)| task.to_string())
        .collect();
    if stuck.is_empty() {
        return Ok(Vec::new());
    }
    let cancel = Command::new("scancel")
        .args(&stuck)
        .output()
        .map_err(|error| SweepError::SlurmClient {
            command: "scancel",
            error,
        })?;
    if !cancel.status.success() {
        // A task that ended meanwhile cannot be cancelled, and need not be.
        eprintln!(
            "scancel {}: {}",
            stuck.join(" "),
            String::from_utf8_lossy(&cancel.stderr).trim()
        );
    }
    let points: HashMap<String, Vec<String>> = subs
        .iter()
        .map(|(job, file)| {
            let ids = std::fs::read_to_string(file).unwrap_or_default();
            (job.clone(), ids.lines().map(str::to_string).collect())
        })
        .collect();
    let lines: String = stuck.iter().map(|t| format!("{t}|PENDING\n")).collect();
    let ids: Vec<String> = parse_squeue(&lines, &points).into_keys().collect();
    println!(
        "cancelled {} task(s) whose stage can no longer start (a task they depend on failed or was cancelled): {}",
        stuck.len(),
        stuck.join(" ")
    );
    Ok(ids)
}

/// Every point's state, as [`states`], with the points of tasks just cancelled read from the folder.
fn states_without(sweep: &Sweep, cancelled: &[String]) -> Result<Vec<State>> {
    let mut states = states(sweep)?;
    for (point, state) in sweep.points.iter().zip(states.iter_mut()) {
        if cancelled.contains(&point.id) {
            *state = state::on_disk(sweep, point);
        }
    }
    Ok(states)
}

/// Submits every point that is neither finished nor queued (nor failed, unless retried), one array per stage, each
/// depending on the queued arrays of the stages before it; `Ok(the job ids)`, none when nothing was left.
pub fn submit(sweep: &Sweep, dept: &Path, how: Submission) -> Result<Vec<String>> {
    let signal_seconds = how
        .signal_seconds
        .or(sweep.slurm.signal_seconds)
        .unwrap_or(DEFAULT_SIGNAL_SECONDS);
    if signal_seconds > MAX_SIGNAL_SECONDS {
        return Err(SweepError::SignalSeconds {
            seconds: signal_seconds,
            max: MAX_SIGNAL_SECONDS,
        });
    }
    let cancelled = cancel_stuck(sweep)?;
    let states = states_without(sweep, &cancelled)?;
    let to_submit = |s: &State| match s {
        State::Pending | State::Interrupted | State::Preempted(_) => true,
        State::Failed(_) => how.retry_failed,
        State::Queued(_) | State::Running(_) | State::Done => false,
    };
    let failed = states.iter().filter(|s| s.is_failed()).count();
    if failed > 0 && !how.retry_failed {
        println!(
            "{failed} point(s) failed before and are left failed (dept sweep status shows why; --retry-failed \
             submits them again)"
        );
    }
    let (done, waiting) = (
        states.iter().filter(|s| s.is_done()).count(),
        states
            .iter()
            .filter(|s| matches!(s, State::Queued(_) | State::Running(_)))
            .count(),
    );
    println!(
        "{} points: {done} done, {waiting} queued or running, {} to submit",
        states.len(),
        states.iter().filter(|s| to_submit(s)).count()
    );
    let queued_jobs = queued(sweep)?;
    let mut jobs = Vec::new();
    // What a later stage's array waits for: the arrays of earlier stages submitted now, and their tasks queued or
    // running from earlier submissions, by task (`41_3`): an array one of whose tasks was cancelled can never
    // succeed as a whole, while its other tasks still can.
    let mut before: Vec<String> = Vec::new();
    for (n, stage) in sweep.stages.iter().enumerate() {
        if n > 0 {
            let earlier = sweep.stages[n - 1].points.clone();
            if earlier
                .clone()
                .any(|i| states[i].is_failed() && !how.retry_failed)
            {
                let left = sweep.stages[n..]
                    .iter()
                    .map(|s| s.points.len())
                    .sum::<usize>();
                println!(
                    "stage {} and after ({left} points) not submitted: stage {} has failed points",
                    stage.name.as_deref().unwrap_or(""),
                    sweep.stages[n - 1].name.as_deref().unwrap_or("")
                );
                break;
            }
            for i in earlier {
                let task = queued_jobs
                    .get(&sweep.points[i].id)
                    .filter(|_| !cancelled.contains(&sweep.points[i].id))
                    .map(|(task, _)| task.clone());
                if let Some(task) = task.filter(|t| !before.contains(t)) {
                    before.push(task);
                }
            }
        }
        let todo: Vec<&str> = stage
            .points
            .clone()
            .filter(|&i| to_submit(&states[i]))
            .map(|i| sweep.points[i].id.as_str())
            .collect();
        if todo.is_empty() {
            continue;
        }
        let array = Array {
            points: &todo,
            signal_seconds,
            after: &before,
            pick_stage: stage.init.as_ref().and(stage.name.as_deref()),
        };
        let job = submit_array(sweep, dept, &array)?;
        before.push(job.clone());
        jobs.push(job);
    }
    Ok(jobs)
}

/// One job array to submit: its points, and the arrays it waits for.
struct Array<'a> {
    points: &'a [&'a str],
    signal_seconds: u32,
    /// Job ids (whole arrays) and array tasks (`41_3`) that must all succeed first (`--dependency=afterok:…`).
    after: &'a [String],
    /// The stage whose source each task picks before it trains (`dept sweep pick`), for a stage that has one.
    pick_stage: Option<&'a str>,
}

/// Writes the points file and the script, submits the array and records it; `Ok(job id)`.
fn submit_array(sweep: &Sweep, dept: &Path, array: &Array<'_>) -> Result<String> {
    let dir = slurm_dir(sweep);
    for folder in [dir.clone(), state::status_dir(sweep)] {
        std::fs::create_dir_all(&folder).map_err(|e| SweepError::io("creating", &folder, e))?;
    }
    let number = submissions(sweep).len() + 1;
    let points_file = absolute(&dir.join(format!("points-{number}.txt")));
    crate::write::write_file(&points_file, &(array.points.join("\n") + "\n"))?;
    let script = absolute(&dir.join("array.sh"));
    crate::write::write_file(&script, &array_script(sweep, &absolute(dept)))?;

    let job = sbatch(sweep, &script, &points_file, array)?;
    for point in sweep
        .points
        .iter()
        .filter(|p| array.points.contains(&p.id.as_str()))
    {
        state::clear_markers(sweep, point);
    }
    let record = dir.join("submissions.txt");
    let mut text = std::fs::read_to_string(&record).unwrap_or_default();
    text += &format!("{job} {}\n", points_file.display());
    crate::write::write_file(&record, &text)?;
    let stage = array
        .pick_stage
        .map_or(String::new(), |s| format!(", stage {s}"));
    let after = match array.after.is_empty() {
        true => String::new(),
        false => format!(", after {} succeeds", array.after.join(", ")),
    };
    println!(
        "submitted job array {job} ({} tasks{stage}{after}): squeue -r -j {job}",
        array.points.len()
    );
    Ok(job)
}

/// `absolute(path)`, or `path` as given where the current folder cannot be read.
fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf())
}

/// Submits `script` as a job array of `tasks` tasks over `points_file`, with the sweep file's resources, requeueable
/// and warned `signal_seconds` before the time limit (none when 0); `Ok(job id)`.
fn sbatch(sweep: &Sweep, script: &Path, points_file: &Path, array: &Array<'_>) -> Result<String> {
    let (tasks, signal_seconds) = (array.points.len(), array.signal_seconds);
    let r = &sweep.slurm;
    let mut command = Command::new("sbatch");
    command
        .arg("--parsable")
        .arg(format!("--job-name=dept-{}", sweep.name))
        .arg(format!(
            "--array=0-{}{}",
            tasks - 1,
            r.max_parallel.map_or(String::new(), |n| format!("%{n}"))
        ))
        .arg(format!(
            "--output={}",
            absolute(&sweep.out.join("logs"))
                .join("slurm-%A_%a.out")
                .display()
        ))
        .arg(format!("--chdir={}", absolute(Path::new(".")).display()))
        .arg("--export=ALL")
        // A requeued task appends to its Slurm output file rather than replacing the first attempt's.
        .arg("--requeue")
        .arg("--open-mode=append");
    if signal_seconds > 0 {
        // `B:`: to the batch script only, which passes it on to `dept train` and requeues the task.
        command.arg(format!("--signal=B:USR1@{signal_seconds}"));
    }
    for (flag, value) in [
        ("partition", &r.partition),
        ("account", &r.account),
        ("qos", &r.qos),
        ("gres", &r.gres),
        ("mem", &r.mem),
        ("time", &r.time),
    ] {
        if let Some(value) = value {
            command.arg(format!("--{flag}={value}"));
        }
    }
    if let Some(cpus) = r.cpus_per_task {
        command.arg(format!("--cpus-per-task={cpus}"));
    }
    if !array.after.is_empty() {
        command.arg(format!("--dependency=afterok:{}", array.after.join(":")));
    }
    command.args(&r.extra).arg(script).arg(points_file);
    if let Some(stage) = array.pick_stage {
        command.arg(stage);
    }
    let output = command.output().map_err(|error| SweepError::SlurmClient {
        command: "sbatch",
        error,
    })?;
    if !output.status.success() {
        return Err(SweepError::SbatchRefused {
            status: output.status,
            stderr: String::from_utf8_lossy(&output.stderr).trim().to_string(),
        });
    }
    // --parsable prints `JOBID` or `JOBID;CLUSTER`.
    let stdout = String::from_utf8_lossy(&output.stdout);
    let job = stdout.trim().split(';').next().unwrap_or("").to_string();
    if job.is_empty() || !job.chars().all(|c| c.is_ascii_digit()) {
        return Err(SweepError::SbatchNoJobId {
            stdout: stdout.trim().to_string(),
        });
    }
    Ok(job)
}

/// The array task: the n-th line of the points file is its point; a second argument names the stage whose source it
/// picks first (`dept sweep pick`; a failure there fails the point with its error). It runs `dept train` in the background so that
/// it can pass Slurm's signals on: on SIGUSR1 (the warning before the time limit, or `scancel --signal=USR1
/// --batch`) the trainer saves and exits with 75, and the script requeues its own task, which resumes the folder
/// when it starts again. A preempted or failed attempt leaves its marker (`status/<id>.preempted` or `.failed`, the
/// latter with the trainer's last `error:` line) for `dept sweep status`.
fn array_script(sweep: &Sweep, dept: &Path) -> String {
    let out = absolute(&sweep.out);
    let quote = |s: &str| format!("'{}'", s.replace('\'', r"'\''"));
    format!(
        r#"#!/bin/bash
# Written by `dept sweep run --backend slurm` for sweep {name}; one array task trains one point.
set -u
ID=$(sed -n "$((SLURM_ARRAY_TASK_ID + 1))p" "$1")
if [ -z "$ID" ]; then echo "no point for array index $SLURM_ARRAY_TASK_ID in $1" >&2; exit 2; fi
OUT={out}
TASK="${{SLURM_ARRAY_JOB_ID}}_${{SLURM_ARRAY_TASK_ID}}"
LOG="$OUT/logs/$ID.log"
rm -f "$OUT/status/$ID.preempted" "$OUT/status/$ID.failed"
echo "=== dept sweep: slurm job $TASK on $(hostname) starts $ID (attempt $((${{SLURM_RESTART_COUNT:-0}} + 1)))" >> "$LOG"
FROM=$(stat -c %s "$LOG")
CONFIG="$OUT/configs/$ID.yaml"
# A stage that starts from an earlier one: its source is picked (the same by every task) before training.
if [ -n "${{2:-}}" ] && ! {dept} sweep pick "$OUT" --stage "$2" >> "$LOG" 2>&1; then
  ERROR=$(tail -c +"$((FROM + 1))" "$LOG" | sed -n 's/^error: //p' | tail -n 1)
  printf '%s\n%s\n' "picking the source of stage $2 failed in slurm job $TASK; log $LOG" "$ERROR" > "$OUT/status/$ID.failed"
  exit 1
fi
# libtorch's threads: the CPUs Slurm gave the task, unless the config says.
THREADS=()
if [ -n "${{SLURM_CPUS_PER_TASK:-}}" ] && ! grep -q '^threads:' "$CONFIG"; then
  THREADS=(--set "threads=$SLURM_CPUS_PER_TASK")
fi
# A signal to this script goes on to the trainer (which saves a checkpoint and exits with 75); `wait` returns
# early when one arrives, so it is called again until the trainer has ended.
SIGNAL=
CAUGHT=0
CHILD=
forward() {{ SIGNAL=$1; CAUGHT=1; [ -z "$CHILD" ] || kill -"$1" "$CHILD" 2>/dev/null; }}
trap 'forward USR1' USR1
trap 'forward TERM' TERM
{dept} train "$CONFIG" "${{THREADS[@]}}" >> "$LOG" 2>&1 &
CHILD=$!
# A signal that came before the trainer was started is passed on now.
[ -z "$SIGNAL" ] || kill -"$SIGNAL" "$CHILD" 2>/dev/null
CAUGHT=1
while [ "$CAUGHT" = 1 ]; do
  CAUGHT=0
  wait "$CHILD"
  STATUS=$?
done
if [ "$STATUS" -eq {preempted} ]; then
  if [ "$SIGNAL" = USR1 ]; then
    echo "exit status {preempted} in slurm job $TASK on SIGUSR1: saved, requeued to resume" > "$OUT/status/$ID.preempted"
    echo "=== dept sweep: slurm job $TASK saved on SIGUSR1; requeueing it" >> "$LOG"
    scontrol requeue "$TASK" >> "$LOG" 2>&1 ||
      echo "exit status {preempted} in slurm job $TASK on SIGUSR1: saved, but scontrol requeue failed (see its log); the next dept sweep run submits it again" > "$OUT/status/$ID.preempted"
  else
    echo "exit status {preempted} in slurm job $TASK on SIG${{SIGNAL:-TERM}}: saved; the next dept sweep run submits it again" > "$OUT/status/$ID.preempted"
  fi
elif [ "$STATUS" -ne 0 ] && [ -z "$SIGNAL" ]; then
  ERROR=$(tail -c +"$((FROM + 1))" "$LOG" | sed -n 's/^error: //p' | tail -n 1)
  printf '%s\n%s\n' "exit status $STATUS in slurm job $TASK; log $LOG" "$ERROR" > "$OUT/status/$ID.failed"
fi
exit $STATUS
"#,
        name = sweep.name,
        out = quote(&out.display().to_string()),
        dept = quote(&dept.display().to_string()),
        preempted = state::PREEMPTED,
    )
}

/// Waits until no point of the sweep is queued or running, showing the table; `Ok(every point's state)` then.
/// Tasks that can never start (their dependency failed) are cancelled and `resubmit` is called, to submit them
/// again behind what is queued now (or not, where an earlier stage failed).
pub fn wait(sweep: &Sweep, mut resubmit: impl FnMut() -> Result<()>) -> Result<Vec<State>> {
    let mut table = LiveTable::new();
    let start = Instant::now();
    loop {
        let cancelled = cancel_stuck(sweep)?;
        if !cancelled.is_empty() {
            table.keep_what_was_printed();
            resubmit()?;
            continue;
        }
        let states = states(sweep)?;
        table.show(&LiveTable::render(sweep, &states, false));
        if !states
            .iter()
            .any(|s| matches!(s, State::Queued(_) | State::Running(_)))
        {
            let left = states.iter().filter(|s| !s.is_done()).count();
            println!(
                "no task of the sweep left in Slurm after {:.0} s; {left} point(s) not done",
                start.elapsed().as_secs_f64()
            );
            return Ok(states);
        }
        std::thread::sleep(Duration::from_secs(2));
    }
}

/// `sacct`'s record of each attempt of each array task of the sweep (`-D`: a requeued task's earlier attempts show
/// as `REQUEUED`), where accounting is enabled (`None` otherwise).
pub fn accounting(sweep: &Sweep) -> Option<Vec<String>> {
    let jobs: Vec<String> = submissions(sweep).into_iter().map(|(j, _)| j).collect();
    if jobs.is_empty() {
        return None;
    }
    let output = Command::new("sacct")
        .args([
            "-n",
            "-P",
            "-X",
            "-D",
            "-o",
            "JobID,State,ExitCode,Elapsed",
            "-j",
            &jobs.join(","),
        ])
        .output()
        .ok()?;
    output.status.success().then(|| {
        String::from_utf8_lossy(&output.stdout)
            .lines()
            .map(str::to_string)
            .collect()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn squeue_lines_map_array_indices_to_points() {
        let points = HashMap::from([
            (
                "41".to_string(),
                vec!["a".to_string(), "b".to_string(), "c".to_string()],
            ),
            ("57".to_string(), vec!["b".to_string()]),
        ]);
        let states = parse_squeue(
            "41_0|RUNNING\n41_2|PENDING\n57_0|PENDING\n99_0|RUNNING\n41_7|PENDING\nnot a line\n",
            &points,
        );
        assert_eq!(states["a"], ("41_0".to_string(), "RUNNING".to_string()));
        assert_eq!(states["c"], ("41_2".to_string(), "PENDING".to_string()));
        assert_eq!(states["b"], ("57_0".to_string(), "PENDING".to_string()));
        assert_eq!(states.len(), 3, "unknown jobs and indices are ignored");
    }
}
