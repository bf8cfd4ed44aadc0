//! The Slurm backend: the unfinished points become one job array (`sbatch --array`), each task a `dept train` of
//! one point with the sweep file's resources. Submissions are recorded in `slurm/submissions.txt`, so that a later
//! call sees which points are queued or running (`squeue`) and submits only the others: a cancelled, failed or
//! timed-out task is submitted again and resumes from its checkpoint.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::error::{Result, SweepError};
use crate::spec::Sweep;
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

/// Point id → (array task, Slurm state `PENDING`, `RUNNING`, …) of every array task `squeue` still lists.
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
            Some((task, s)) => State::Queued(format!("slurm {task} {}", s.to_lowercase())),
            None => state::on_disk(sweep, p),
        })
        .collect())
}

/// Submits every point that is neither finished nor queued; `Ok(job id)` or `None` when nothing was left.
pub fn submit(sweep: &Sweep, dept: &Path) -> Result<Option<String>> {
    let states = states(sweep)?;
    let todo: Vec<&str> = sweep
        .points
        .iter()
        .zip(&states)
        .filter(|(_, s)| matches!(s, State::Pending | State::Interrupted | State::Failed(_)))
        .map(|(p, _)| p.id.as_str())
        .collect();
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
        todo.len()
    );
    if todo.is_empty() {
        return Ok(None);
    }
    let dir = slurm_dir(sweep);
    for folder in [dir.clone(), state::status_dir(sweep)] {
        std::fs::create_dir_all(&folder).map_err(|e| SweepError::io("creating", &folder, e))?;
    }
    let number = submissions(sweep).len() + 1;
    let points_file = absolute(&dir.join(format!("points-{number}.txt")));
    crate::write::write_file(&points_file, &(todo.join("\n") + "\n"))?;
    let script = absolute(&dir.join("array.sh"));
    crate::write::write_file(&script, &array_script(sweep, &absolute(dept)))?;

    let job = sbatch(sweep, &script, &points_file, todo.len())?;
    for id in &todo {
        let _ = std::fs::remove_file(state::status_dir(sweep).join(format!("{id}.failed")));
    }
    let record = dir.join("submissions.txt");
    let mut text = std::fs::read_to_string(&record).unwrap_or_default();
    text += &format!("{job} {}\n", points_file.display());
    crate::write::write_file(&record, &text)?;
    println!(
        "submitted job array {job} ({} tasks): squeue -r -j {job}",
        todo.len()
    );
    Ok(Some(job))
}

/// `absolute(path)`, or `path` as given where the current folder cannot be read.
fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf())
}

/// Submits `script` as a job array of `tasks` tasks over `points_file`, with the sweep file's resources; `Ok(job id)`.
fn sbatch(sweep: &Sweep, script: &Path, points_file: &Path, tasks: usize) -> Result<String> {
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
        .arg("--export=ALL");
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
    command.args(&r.extra).arg(script).arg(points_file);
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

/// The array task: the n-th line of the points file is its point; a failure leaves the `.failed` marker that
/// `dept sweep status` shows.
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
echo "=== dept sweep: slurm job ${{SLURM_ARRAY_JOB_ID}}_${{SLURM_ARRAY_TASK_ID}} on $(hostname) starts $ID" >> "$OUT/logs/$ID.log"
CONFIG="$OUT/configs/$ID.yaml"
# libtorch's threads: the CPUs Slurm gave the task, unless the config says.
THREADS=()
if [ -n "${{SLURM_CPUS_PER_TASK:-}}" ] && ! grep -q '^threads:' "$CONFIG"; then
  THREADS=(--set "threads=$SLURM_CPUS_PER_TASK")
fi
{dept} train "$CONFIG" "${{THREADS[@]}}" >> "$OUT/logs/$ID.log" 2>&1
STATUS=$?
if [ $STATUS -ne 0 ]; then
  echo "exit status $STATUS in slurm job ${{SLURM_ARRAY_JOB_ID}}_${{SLURM_ARRAY_TASK_ID}}; log $OUT/logs/$ID.log" > "$OUT/status/$ID.failed"
fi
exit $STATUS
"#,
        name = sweep.name,
        out = quote(&out.display().to_string()),
        dept = quote(&dept.display().to_string()),
    )
}

/// Waits until no point of the sweep is queued or running, showing the table; `Ok(points not done)`.
pub fn wait(sweep: &Sweep) -> Result<usize> {
    let mut table = LiveTable::new();
    let start = Instant::now();
    loop {
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
            return Ok(left);
        }
        std::thread::sleep(Duration::from_secs(2));
    }
}

/// `sacct`'s final state of each array task of the sweep, where accounting is enabled (`None` otherwise).
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
