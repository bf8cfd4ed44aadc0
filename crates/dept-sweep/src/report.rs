//! `dept sweep report`: the finished runs of a sweep folder, grouped into configurations (every grid value but the
//! seed), with mean ± sample standard deviation over seeds, the best configuration per task by validation mean and,
//! when `k_shot` is swept, the paper's few-shot table. A staged sweep gets one such report per stage (its own
//! grid keys, best configurations and few-shot table) under one heading, and `report.csv` a `stage` column.
//! Written to `report.csv` and `report.md` in the sweep folder.

use std::collections::HashMap;
use std::path::{Component, Path, PathBuf};

use crate::error::{ManifestProblem, Result, ResultsProblem, SweepError};
use crate::spec::{Manifest, Sweep};
use crate::state::{self, Failure};

/// The grid key whose values repeat a configuration rather than define one.
const SEED: &str = "seed";
const TASK: &str = "task";
const K_SHOT: &str = "k_shot";
const VALIDATION: &str = "validation_";
const TEST: &str = "test_";

/// The report's files in the sweep folder.
pub const CSV_FILE: &str = "report.csv";
pub const MARKDOWN_FILE: &str = "report.md";

/// The sweep folder `target` names: a folder holding `sweep.json` (as it is), or a sweep file (its `out:`, or
/// `out` where given).
pub fn folder_of(target: &Path, out: Option<&Path>) -> Result<PathBuf> {
    if target.join("sweep.json").is_file() {
        Ok(target.to_path_buf())
    } else if target.is_dir() {
        Err(SweepError::NotASweepFolder {
            folder: target.to_path_buf(),
        })
    } else {
        Ok(Sweep::load(target, out, &[])?.out)
    }
}

/// Reads `out/sweep.json` and every finished point's `results.csv`, writes `out/report.csv` and `out/report.md`,
/// and returns the report for the caller to print.
pub fn run(out: &Path) -> Result<Report> {
    let manifest = read_manifest(&out.join("sweep.json"))?;
    let mut finished = Vec::new();
    let mut stopped = Vec::new();
    for (index, point) in manifest.points.iter().enumerate() {
        let path = out.join("runs").join(&point.id).join("results.csv");
        let results = if path.is_file() {
            read_results(&path)?
        } else {
            None
        };
        if let Some(results) = results {
            finished.push((index, results));
        } else if let Some(failure) = state::failure(out, &point.id) {
            stopped.push((point.id.clone(), Stopped::Failed(failure)));
        } else if let Some(how) = state::preemption(out, &point.id) {
            stopped.push((point.id.clone(), Stopped::Preempted(how)));
        }
    }
    let mut report = match manifest.stages.is_empty() {
        true => Report::build(&manifest, &finished),
        false => Report::staged(out, &manifest, &finished),
    };
    report.stopped = stopped;
    for (name, text) in [(CSV_FILE, report.csv()), (MARKDOWN_FILE, report.markdown())] {
        crate::write::write_file(&out.join(name), &text)?;
    }
    Ok(report)
}

pub(crate) fn read_manifest(path: &Path) -> Result<Manifest> {
    if !path.is_file() {
        return Err(SweepError::ManifestMissing {
            path: path.to_path_buf(),
            folder: path.parent().unwrap_or(Path::new(".")).to_path_buf(),
        });
    }
    let text = std::fs::read_to_string(path).map_err(|e| SweepError::io("reading", path, e))?;
    let manifest: Manifest =
        serde_json::from_str(&text).map_err(|error| SweepError::ManifestInvalid {
            path: path.to_path_buf(),
            error,
        })?;
    let mut ids = std::collections::HashSet::new();
    for point in &manifest.points {
        let bad = |problem| SweepError::BadManifest {
            path: path.to_path_buf(),
            problem,
        };
        // The id names a folder under runs/: anything but one plain name would read another point's results, or
        // a file outside the sweep.
        let mut components = Path::new(&point.id).components();
        if !matches!(
            (components.next(), components.next()),
            (Some(Component::Normal(_)), None)
        ) {
            return Err(bad(ManifestProblem::NotAFolderName(point.id.clone())));
        }
        if !ids.insert(point.id.as_str()) {
            return Err(bad(ManifestProblem::Twice(point.id.clone())));
        }
        if let Some(key) = manifest
            .grid_keys
            .iter()
            .find(|k| !point.values.contains_key(k.as_str()))
        {
            return Err(bad(ManifestProblem::MissingGridValue {
                id: point.id.clone(),
                key: key.clone(),
            }));
        }
    }
    Ok(manifest)
}

/// The row of one run's `results.csv` that the report uses.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct RunResults {
    pub(crate) task: Option<String>,
    steps: Option<f64>,
    /// `validation_*` and `test_*` columns in file order; `None` where the cell is empty.
    metrics: Vec<(String, Option<f64>)>,
}

/// The results of a finished run; `None` for a file whose last line was torn (cut short without its newline, as a
/// kill or a full disk mid-write leaves it): that point is reported as not finished, with a warning, rather than
/// failing the report. A complete file that does not parse is an error naming it.
pub(crate) fn read_results(path: &Path) -> Result<Option<RunResults>> {
    let text = std::fs::read_to_string(path).map_err(|e| SweepError::io("reading", path, e))?;
    match parse_results(&text) {
        Ok(results) => Ok(Some(results)),
        Err(problem) if !text.ends_with('\n') => {
            tracing::warn!(
                "{}: its last line is torn ({problem}); the point counts as not finished",
                path.display()
            );
            Ok(None)
        }
        Err(problem) => Err(SweepError::MalformedResults {
            path: path.to_path_buf(),
            problem,
        }),
    }
}

impl RunResults {
    /// The first `validation_*` column and its value: the metric `dept train` picked the run's best checkpoint
    /// by. `None` where that cell is empty.
    pub(crate) fn validation(&self) -> Option<(&str, f64)> {
        let (metric, value) = self
            .metrics
            .iter()
            .find(|(m, _)| m.starts_with(VALIDATION))?;
        value.map(|v| (metric.as_str(), v))
    }
}

fn parse_results(text: &str) -> Result<RunResults, ResultsProblem> {
    let records = parse_csv(text)?;
    let [header, row] = records.as_slice() else {
        return Err(ResultsProblem::RowCount(records.len()));
    };
    if header.len() != row.len() {
        return Err(ResultsProblem::ColumnCount {
            header: header.len(),
            row: row.len(),
        });
    }
    let number = |column: &str, cell: &str| -> Result<Option<f64>, ResultsProblem> {
        let cell = cell.trim();
        if cell.is_empty() {
            return Ok(None);
        }
        cell.parse()
            .map(Some)
            .map_err(|_| ResultsProblem::NotANumber {
                column: column.to_string(),
                cell: cell.to_string(),
            })
    };
    let mut results = RunResults {
        task: None,
        steps: None,
        metrics: Vec::new(),
    };
    for (column, cell) in header.iter().zip(row) {
        match column.as_str() {
            "task" => results.task = Some(cell.clone()),
            "steps" => results.steps = number(column, cell)?,
            c if c.starts_with(VALIDATION) || c.starts_with(TEST) => results
                .metrics
                .push((column.clone(), number(column, cell)?)),
            _ => {}
        }
    }
    Ok(results)
}

/// Records of RFC 4180 text. `dept train` quotes a cell only when it holds a comma, a quote or a line break (a
/// `run_dir` may), so quoted cells, doubled quotes and line breaks inside quotes are handled; blank lines are
/// skipped and CRLF is accepted.
fn parse_csv(text: &str) -> Result<Vec<Vec<String>>, ResultsProblem> {
    let mut records = Vec::new();
    let mut record = Vec::new();
    let mut field = String::new();
    // Whether the current field was quoted: `""` is an empty field, not a blank line.
    let mut quoted = false;
    let mut line = 1;
    let mut chars = text.trim_start_matches('\u{feff}').chars().peekable();
    let mut end_record = |record: &mut Vec<String>, field: &mut String, quoted: &mut bool| {
        record.push(std::mem::take(field));
        let blank = record.len() == 1 && record[0].is_empty() && !*quoted;
        *quoted = false;
        if blank {
            record.clear();
        } else {
            records.push(std::mem::take(record));
        }
    };
    while let Some(c) = chars.next() {
        match c {
            '"' if field.is_empty() && !quoted => {
                let opened = line;
                loop {
                    match chars.next() {
                        None => return Err(ResultsProblem::UnclosedQuote(opened)),
                        Some('"') if chars.peek() == Some(&'"') => {
                            chars.next();
                            field.push('"');
                        }
                        Some('"') => break,
                        Some(c) => {
                            line += usize::from(c == '\n');
                            field.push(c);
                        }
                    }
                }
                quoted = true;
                if !matches!(chars.peek(), None | Some(',' | '\n' | '\r')) {
                    return Err(ResultsProblem::TextAfterQuote(line));
                }
            }
            ',' => {
                record.push(std::mem::take(&mut field));
                quoted = false;
            }
            '\r' if chars.peek() == Some(&'\n') => {}
            '\n' => {
                end_record(&mut record, &mut field, &mut quoted);
                line += 1;
            }
            c => field.push(c),
        }
    }
    if !record.is_empty() || !field.is_empty() || quoted {
        end_record(&mut record, &mut field, &mut quoted);
    }
    Ok(records)
}

/// Mean and sample standard deviation (n − 1) of the values present.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Stat {
    mean: f64,
    /// `None` with a single value, where the sample deviation is undefined.
    std: Option<f64>,
    n: usize,
}

impl Stat {
    fn of(values: &[f64]) -> Option<Stat> {
        let n = values.len();
        if n == 0 {
            return None;
        }
        let mean = values.iter().sum::<f64>() / n as f64;
        let std = (n > 1).then(|| {
            (values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1) as f64).sqrt()
        });
        Some(Stat { mean, std, n })
    }

    /// `79.14 ± 0.52`, or `79.14` from one value.
    fn text(&self) -> String {
        match self.std {
            Some(std) => format!("{:.2} ± {std:.2}", self.mean),
            None => format!("{:.2}", self.mean),
        }
    }
}

/// The finished points sharing every grid value but the seed.
#[derive(Debug)]
struct Configuration {
    task: String,
    /// Grid values other than task and seed, in grid order.
    values: Vec<(String, String)>,
    n_seeds: usize,
    steps: Option<Stat>,
    /// Every metric column of this configuration's runs, in file order; `None` where every cell was empty.
    metrics: Vec<(String, Option<Stat>)>,
    best: bool,
}

impl Configuration {
    fn stat(&self, metric: &str) -> Option<&Stat> {
        self.metrics.iter().find(|(m, _)| m == metric)?.1.as_ref()
    }

    /// The `validation_*` column: the metric `dept train` picked its best checkpoint by.
    fn validation(&self) -> Option<&str> {
        self.metrics
            .iter()
            .map(|(m, _)| m.as_str())
            .find(|m| m.starts_with(VALIDATION))
    }

    /// The validation mean, if it can rank this configuration (a NaN cannot).
    fn score(&self) -> Option<f64> {
        self.stat(self.validation()?)
            .map(|s| s.mean)
            .filter(|m| !m.is_nan())
    }

    /// The test metric a one-number table shows: the one validation selects by (`test_accuracy` for
    /// `validation_accuracy`), else the task's first.
    fn headline(&self) -> Option<&str> {
        let tests = || {
            self.metrics
                .iter()
                .map(|(m, _)| m.as_str())
                .filter(|m| m.starts_with(TEST))
        };
        let same = self
            .validation()
            .map(|v| format!("{TEST}{}", &v[VALIDATION.len()..]));
        tests()
            .find(|m| Some(*m) == same.as_deref())
            .or_else(|| tests().next())
    }

    /// `lr_pair=0.0001, prompt_len=60`: what distinguishes this configuration within its task.
    fn label(&self) -> String {
        if self.values.is_empty() {
            return "—".into();
        }
        self.values
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// The finished runs grouped into configurations (every grid value but the seed, and the task), ordered by where
/// their grid values first appear in the manifest.
fn group_runs<'a>(
    manifest: &Manifest,
    grid_columns: &[String],
    finished: &'a [(usize, RunResults)],
) -> Vec<Group<'a>> {
    let task_in_grid = manifest.grid_keys.iter().any(|k| k == TASK);
    // read_manifest checked that every point has a value for every grid key, so indexing cannot fail.
    let grid_part = |index: usize| -> Vec<String> {
        let values = &manifest.points[index].values;
        manifest
            .grid_keys
            .iter()
            .filter(|k| *k != SEED)
            .map(|k| values[k.as_str()].clone())
            .collect()
    };
    // Configurations are ordered by where their grid values first appear in the manifest, finished or not, so
    // the order does not shift as runs finish.
    let mut first_seen: HashMap<Vec<String>, usize> = HashMap::new();
    for index in 0..manifest.points.len() {
        first_seen.entry(grid_part(index)).or_insert(index);
    }

    // With `task` not in the grid every point has the base config's task, but grouping by the reported task
    // keeps runs of different tasks apart regardless.
    let mut groups: Vec<Group> = Vec::new();
    let mut group_of: HashMap<(Vec<String>, String), usize> = HashMap::new();
    for (index, results) in finished {
        let values = &manifest.points[*index].values;
        let task = match values.get(TASK).filter(|_| task_in_grid) {
            Some(task) => task.clone(),
            None => results.task.clone().unwrap_or_default(),
        };
        let key = grid_part(*index);
        let group = *group_of
            .entry((key.clone(), task.clone()))
            .or_insert_with(|| {
                groups.push(Group {
                    order: (first_seen[&key], *index),
                    task,
                    values: grid_columns
                        .iter()
                        .map(|k| (k.clone(), values[k.as_str()].clone()))
                        .collect(),
                    runs: Vec::new(),
                });
                groups.len() - 1
            });
        groups[group].runs.push(results);
    }
    groups.sort_by_key(|g| g.order);
    groups
}

impl Configuration {
    /// Mean and deviation over the group's runs of its steps and of every metric column.
    fn of_group(group: Group) -> Configuration {
        let Group {
            task, values, runs, ..
        } = group;
        let steps: Vec<f64> = runs.iter().filter_map(|r| r.steps).collect();
        let mut metrics: Vec<(String, Vec<f64>)> = Vec::new();
        for (metric, value) in runs.iter().flat_map(|r| &r.metrics) {
            let column = match metrics.iter().position(|(m, _)| m == metric) {
                Some(i) => i,
                None => {
                    metrics.push((metric.clone(), Vec::new()));
                    metrics.len() - 1
                }
            };
            metrics[column].1.extend(value);
        }
        Configuration {
            task,
            values,
            n_seeds: runs.len(),
            steps: Stat::of(&steps),
            metrics: metrics
                .into_iter()
                .map(|(m, v)| (m, Stat::of(&v)))
                .collect(),
            best: false,
        }
    }
}

/// Of `candidates` (indices into `configs`, in grid order), the one with the highest validation mean; the first on
/// ties. `None` when none has a validation score.
fn best_of(
    configs: &[Configuration],
    candidates: impl IntoIterator<Item = usize>,
) -> Option<usize> {
    let mut best: Option<(usize, f64)> = None;
    for i in candidates {
        if let Some(score) = configs[i].score() {
            if best.is_none_or(|(_, top)| score > top) {
                best = Some((i, score));
            }
        }
    }
    best.map(|(i, _)| i)
}

/// Rows are k values, columns tasks; each cell is the headline test metric of the best configuration for (task, k).
#[derive(Debug)]
struct KShotTable {
    /// Task and the test metric shown for it.
    tasks: Vec<(String, Option<String>)>,
    rows: Vec<(String, Vec<Option<Stat>>)>,
}

/// Finished runs of one configuration while the report is built.
struct Group<'a> {
    /// (first appearance of the grid values among all points, first finished point): the report's row order.
    order: (usize, usize),
    task: String,
    values: Vec<(String, String)>,
    runs: Vec<&'a RunResults>,
}

/// A sweep's results; [`Report::markdown`] and [`Report::csv`] render it.
#[derive(Debug)]
pub struct Report {
    name: String,
    pub finished: usize,
    pub total: usize,
    /// Grid keys shown per configuration: all but task and seed.
    grid_columns: Vec<String>,
    /// Union of metric columns over all tasks: validation ones first, then test ones, each in order of appearance.
    metrics: Vec<String>,
    configs: Vec<Configuration>,
    /// Tasks in order of appearance, with the index of their best configuration.
    best: Vec<(String, Option<usize>)>,
    k_shot: Option<KShotTable>,
    /// Points without results that failed or were preempted, in grid order, from the sweep folder's markers.
    pub stopped: Vec<(String, Stopped)>,
    /// A staged sweep's report per stage, in order (empty otherwise; then the fields above are the report).
    stages: Vec<StageReport>,
}

/// One stage's part of a staged sweep's report.
#[derive(Debug)]
struct StageReport {
    name: String,
    /// Where the stage's points start from (the picks made so far), one line each.
    starts_from: Vec<String>,
    report: Report,
}

/// How an unfinished point of the report ended its last attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stopped {
    /// With an error (`dept sweep run --retry-failed` runs it again).
    Failed(Failure),
    /// Saved on a signal (the next run, or its requeued Slurm task, resumes it).
    Preempted(String),
}

impl Report {
    /// `finished` holds (index in the manifest's points, results) for every point with a `results.csv`.
    fn build(manifest: &Manifest, finished: &[(usize, RunResults)]) -> Report {
        let grid_columns: Vec<String> = manifest
            .grid_keys
            .iter()
            .filter(|k| *k != SEED && *k != TASK)
            .cloned()
            .collect();
        let mut configs: Vec<Configuration> = group_runs(manifest, &grid_columns, finished)
            .into_iter()
            .map(Configuration::of_group)
            .collect();

        let mut metrics: Vec<String> = Vec::new();
        for prefix in [VALIDATION, TEST] {
            for (metric, _) in configs.iter().flat_map(|c| &c.metrics) {
                if metric.starts_with(prefix) && !metrics.contains(metric) {
                    metrics.push(metric.clone());
                }
            }
        }

        let mut tasks: Vec<String> = Vec::new();
        for config in &configs {
            if !tasks.contains(&config.task) {
                tasks.push(config.task.clone());
            }
        }
        let of_task = |task: &str| -> Vec<usize> {
            (0..configs.len())
                .filter(|&i| configs[i].task == task)
                .collect()
        };
        let best: Vec<(String, Option<usize>)> = tasks
            .iter()
            .map(|t| (t.clone(), best_of(&configs, of_task(t))))
            .collect();
        let k_shot = grid_columns
            .iter()
            .any(|k| k == K_SHOT)
            .then(|| k_shot_table(&configs, &tasks));

        for i in best.iter().filter_map(|(_, index)| *index) {
            configs[i].best = true;
        }
        Report {
            name: manifest.name.clone(),
            finished: finished.len(),
            total: manifest.points.len(),
            grid_columns,
            metrics,
            configs,
            best,
            k_shot,
            stopped: Vec::new(),
            stages: Vec::new(),
        }
    }

    /// A report per stage of a staged manifest: each over the stage's points and the grid keys they have.
    fn staged(out: &Path, manifest: &Manifest, finished: &[(usize, RunResults)]) -> Report {
        let stages = manifest
            .stages
            .iter()
            .map(|stage| {
                let members: Vec<usize> = (0..manifest.points.len())
                    .filter(|&i| manifest.points[i].stage.as_deref() == Some(stage.name.as_str()))
                    .collect();
                let grid_keys: Vec<String> = manifest
                    .grid_keys
                    .iter()
                    .filter(|k| {
                        members.iter().any(|&i| {
                            manifest.points[i]
                                .values
                                .get(k.as_str())
                                .map(String::as_str)
                                != Some(crate::spec::NOT_IN_POINT_GRID)
                        })
                    })
                    .cloned()
                    .collect();
                let part = Manifest {
                    name: format!("{}, stage {}", manifest.name, stage.name),
                    grid_keys,
                    points: members
                        .iter()
                        .map(|&i| crate::spec::ManifestPoint {
                            id: manifest.points[i].id.clone(),
                            values: manifest.points[i].values.clone(),
                            stage: None,
                        })
                        .collect(),
                    stages: Vec::new(),
                };
                let part_finished: Vec<(usize, RunResults)> = finished
                    .iter()
                    .filter_map(|(i, results)| {
                        let at = members.iter().position(|m| m == i)?;
                        Some((at, results.clone()))
                    })
                    .collect();
                StageReport {
                    name: stage.name.clone(),
                    starts_from: stage
                        .init_adapter
                        .as_ref()
                        .map(|init| crate::stages::describe_picks(out, init))
                        .unwrap_or_default(),
                    report: Report::build(&part, &part_finished),
                }
            })
            .collect();
        let mut report = Report::build(
            &Manifest {
                name: manifest.name.clone(),
                grid_keys: Vec::new(),
                points: Vec::new(),
                stages: Vec::new(),
            },
            &[],
        );
        report.finished = finished.len();
        report.total = manifest.points.len();
        report.stages = stages;
        report
    }

    /// `report.csv` of a staged sweep: every stage's rows under the union of their columns, after a `stage` one.
    fn staged_csv(&self) -> String {
        let mut header = vec!["stage".to_string()];
        let mut rows: Vec<(String, Vec<(String, String)>)> = Vec::new();
        for part in &self.stages {
            let records = parse_csv(&part.report.csv()).unwrap_or_default();
            let Some((names, body)) = records.split_first() else {
                continue;
            };
            for name in names {
                if !header.contains(name) {
                    header.push(name.clone());
                }
            }
            for record in body {
                rows.push((
                    part.name.clone(),
                    names.iter().cloned().zip(record.iter().cloned()).collect(),
                ));
            }
        }
        let mut lines = vec![csv_line(&header)];
        for (stage, cells) in rows {
            let row: Vec<String> = header
                .iter()
                .map(|column| match column.as_str() {
                    "stage" => stage.clone(),
                    _ => cells
                        .iter()
                        .find(|(name, _)| name == column)
                        .map(|(_, v)| v.clone())
                        .unwrap_or_default(),
                })
                .collect();
            lines.push(csv_line(&row));
        }
        lines.join("\n") + "\n"
    }

    /// `report.md` of a staged sweep: the count, the stopped points, then each stage's report a level down.
    fn staged_markdown(&self) -> String {
        let mut md = format!(
            "# Sweep {}: {} of {} points finished\n\n",
            cell(&self.name),
            self.finished,
            self.total
        );
        md += &self.stopped_section();
        for part in &self.stages {
            let inner = part.report.markdown();
            let mut lines = inner.lines();
            if let Some(title) = lines.next() {
                md += &format!("#{title}\n");
            }
            if !part.starts_from.is_empty() {
                md += "\nIts points start from the best adapter of an earlier stage:\n\n";
                for line in &part.starts_from {
                    md += &format!("- {}\n", cell(line));
                }
            }
            for line in lines {
                match line.starts_with('#') {
                    true => md += &format!("#{line}\n"),
                    false => md += &format!("{line}\n"),
                }
            }
            md += "\n";
        }
        md
    }

    /// `report.csv`: one row per configuration, full precision, empty cells where a value is missing.
    pub fn csv(&self) -> String {
        if !self.stages.is_empty() {
            return self.staged_csv();
        }
        let mut header: Vec<String> = self.grid_columns.clone();
        header.extend(["task", "n_seeds", "steps_mean"].map(String::from));
        for metric in &self.metrics {
            header.extend([format!("{metric}_mean"), format!("{metric}_std")]);
        }
        header.push("best".into());
        let mut lines = vec![csv_line(&header)];
        for config in &self.configs {
            let mut row: Vec<String> = config.values.iter().map(|(_, v)| v.clone()).collect();
            row.push(config.task.clone());
            row.push(config.n_seeds.to_string());
            row.push(config.steps.map(|s| s.mean.to_string()).unwrap_or_default());
            for metric in &self.metrics {
                let stat = config.stat(metric);
                row.push(stat.map(|s| s.mean.to_string()).unwrap_or_default());
                row.push(
                    stat.and_then(|s| s.std)
                        .map(|s| s.to_string())
                        .unwrap_or_default(),
                );
            }
            row.push(config.best.to_string());
            lines.push(csv_line(&row));
        }
        lines.join("\n") + "\n"
    }

    /// `report.md`: best configuration per task, the few-shot table when `k_shot` is swept, then every
    /// configuration.
    pub fn markdown(&self) -> String {
        if !self.stages.is_empty() {
            return self.staged_markdown();
        }
        let mut md = format!(
            "# Sweep {}: {} of {} points finished\n\n",
            cell(&self.name),
            self.finished,
            self.total
        );
        md += &self.stopped_section();
        if self.configs.is_empty() {
            md += "No finished runs yet.\n";
            return md;
        }
        md += "Values are mean ± standard deviation over seeds (std over seeds, n−1; a single seed shows the mean \
               alone, and `(n=…)` marks a metric some seeds did not report). The best configuration of a task has the \
               highest validation mean; ties go to the first in grid order.\n\n";

        md += &self.best_section();
        if let Some(table) = &self.k_shot {
            md += &k_shot_section(table);
        }
        md += &self.all_section();
        md
    }

    /// `## Failed and preempted points`, where there are any: each with its error, or how it was preempted.
    fn stopped_section(&self) -> String {
        if self.stopped.is_empty() {
            return String::new();
        }
        let count = |failed: bool| {
            self.stopped
                .iter()
                .filter(|(_, s)| matches!(s, Stopped::Failed(_)) == failed)
                .count()
        };
        let mut md = format!(
            "## Failed and preempted points\n\n{} failed (`dept sweep run --retry-failed` runs them again), {} \
             preempted (saved; the next run resumes them).\n\n",
            count(true),
            count(false)
        );
        md += &table_head(&["point", "state", "why"]);
        for (id, stopped) in &self.stopped {
            let (state, why) = match stopped {
                Stopped::Failed(failure) => ("failed", failure.to_string()),
                Stopped::Preempted(how) => ("preempted", how.clone()),
            };
            md += &format!("| {} | {state} | {} |\n", cell(id), cell(&why));
        }
        md + "\n"
    }

    /// `## Best per task`: one row per task, its best configuration's validation and test metrics.
    fn best_section(&self) -> String {
        let mut md = "## Best per task\n\n".to_string();
        md += &table_head(&["task", "configuration", "validation", "test", "seeds"]);
        for (task, best) in &self.best {
            let Some(config) = best.map(|i| &self.configs[i]) else {
                md += &format!("| {} | — | no validation scores | — | — |\n", cell(task));
                continue;
            };
            let validation = config
                .validation()
                .map(|m| self.metric_text(config, m))
                .unwrap_or_default();
            let tests: Vec<String> = config
                .metrics
                .iter()
                .filter(|(m, _)| m.starts_with(TEST))
                .map(|(m, _)| self.metric_text(config, m))
                .collect();
            md += &format!(
                "| {} | {} | {} | {} | {} |\n",
                cell(task),
                cell(&config.label()),
                validation,
                tests.join(", "),
                config.n_seeds
            );
        }
        md
    }

    /// `## All configurations`: every configuration with every metric column.
    fn all_section(&self) -> String {
        let mut md = "\n## All configurations\n\n".to_string();
        let mut head = vec!["task".to_string()];
        head.extend(self.grid_columns.iter().map(|k| cell(k)));
        head.extend(["seeds", "steps"].map(String::from));
        head.extend(self.metrics.iter().map(|m| cell(m)));
        head.push("best".into());
        md += &table_head(&head);
        for config in &self.configs {
            let mut row = vec![cell(&config.task)];
            row.extend(config.values.iter().map(|(_, v)| cell(v)));
            row.push(config.n_seeds.to_string());
            row.push(
                config
                    .steps
                    .map(|s| format!("{:.0}", s.mean))
                    .unwrap_or_default(),
            );
            for metric in &self.metrics {
                row.push(
                    config
                        .stat(metric)
                        .map(|s| self.stat_text(config, s))
                        .unwrap_or_default(),
                );
            }
            row.push(if config.best {
                "yes".into()
            } else {
                String::new()
            });
            md += &format!("| {} |\n", row.join(" | "));
        }
        md
    }

    /// `accuracy 79.14 ± 0.52` (the column name without its split prefix).
    fn metric_text(&self, config: &Configuration, metric: &str) -> String {
        let name = metric
            .strip_prefix(VALIDATION)
            .or_else(|| metric.strip_prefix(TEST))
            .unwrap_or(metric);
        let value = config
            .stat(metric)
            .map_or("—".into(), |s| self.stat_text(config, s));
        format!("{} {value}", cell(name))
    }

    /// A stat from fewer seeds than its configuration ran says so.
    fn stat_text(&self, config: &Configuration, stat: &Stat) -> String {
        if stat.n == config.n_seeds {
            stat.text()
        } else {
            format!("{} (n={})", stat.text(), stat.n)
        }
    }
}

/// `## Few-shot (k_shot)`: rows are k values, columns tasks, and the mean over tasks.
fn k_shot_section(table: &KShotTable) -> String {
    let mut md = "\n## Few-shot (k_shot)\n\nTest metric of the best configuration for each task and k (chosen by \
                  validation mean within that k); Avg. is the mean over tasks of the cell means.\n\n"
        .to_string();
    let mut head = vec!["k".to_string()];
    head.extend(table.tasks.iter().map(|(task, metric)| match metric {
        Some(m) => format!("{} ({})", cell(task), cell(&m[TEST.len()..])),
        None => cell(task),
    }));
    head.push("Avg.".into());
    md += &table_head(&head);
    for (k, cells) in &table.rows {
        let means: Vec<f64> = cells.iter().flatten().map(|s| s.mean).collect();
        let average = match means.len() {
            0 => "—".to_string(),
            n if n == cells.len() => format!("{:.2}", means.iter().sum::<f64>() / n as f64),
            n => format!(
                "{:.2} ({n} of {} tasks)",
                means.iter().sum::<f64>() / n as f64,
                cells.len()
            ),
        };
        let cells: Vec<String> = cells
            .iter()
            .map(|s| s.map_or("—".into(), |s| s.text()))
            .collect();
        md += &format!("| {} | {} | {average} |\n", cell(k), cells.join(" | "));
    }
    md
}

fn k_shot_table(configs: &[Configuration], tasks: &[String]) -> KShotTable {
    let k_of = |c: &Configuration| {
        c.values
            .iter()
            .find(|(k, _)| k == K_SHOT)
            .map(|(_, v)| v.clone())
    };
    let mut ks: Vec<String> = Vec::new();
    for k in configs.iter().filter_map(k_of) {
        if !ks.contains(&k) {
            ks.push(k);
        }
    }
    // Numerically, so 4 < 16 < 32; anything that is not a number (an unset k) goes last, in text order.
    ks.sort_by(
        |a, b| match (a.trim().parse::<f64>(), b.trim().parse::<f64>()) {
            (Ok(x), Ok(y)) => x.total_cmp(&y),
            (Ok(_), Err(_)) => std::cmp::Ordering::Less,
            (Err(_), Ok(_)) => std::cmp::Ordering::Greater,
            (Err(_), Err(_)) => a.cmp(b),
        },
    );
    // One metric per task column, so every k of a task is compared on the same number.
    let tasks: Vec<(String, Option<String>)> = tasks
        .iter()
        .map(|t| {
            let first = configs.iter().find(|c| &c.task == t);
            (
                t.clone(),
                first.and_then(|c| c.headline()).map(String::from),
            )
        })
        .collect();
    let rows = ks
        .into_iter()
        .map(|k| {
            let cells = tasks
                .iter()
                .map(|(task, metric)| {
                    let candidates = (0..configs.len()).filter(|&i| {
                        configs[i].task == *task && k_of(&configs[i]).as_ref() == Some(&k)
                    });
                    let best = best_of(configs, candidates)?;
                    configs[best].stat(metric.as_deref()?).copied()
                })
                .collect();
            (k, cells)
        })
        .collect();
    KShotTable { tasks, rows }
}

fn csv_line(cells: &[String]) -> String {
    let escape = |s: &String| {
        if s.contains([',', '"', '\n', '\r']) {
            format!("\"{}\"", s.replace('"', "\"\""))
        } else {
            s.clone()
        }
    };
    cells.iter().map(escape).collect::<Vec<_>>().join(",")
}

/// Text safe inside a Markdown table cell.
fn cell(text: &str) -> String {
    text.replace('|', "\\|").replace('\n', " ")
}

fn table_head<S: AsRef<str>>(columns: &[S]) -> String {
    let names: Vec<&str> = columns.iter().map(|c| c.as_ref()).collect();
    format!(
        "| {} |\n|{}\n",
        names.join(" | "),
        "---|".repeat(names.len())
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Writes `sweep.json` for `points` (id, values), ids made from the values as `dept sweep` does.
    fn write_manifest(
        out: &Path,
        name: &str,
        grid_keys: &[&str],
        points: &[Vec<(&str, &str)>],
    ) -> Vec<String> {
        let ids: Vec<String> = points
            .iter()
            .map(|values| {
                values
                    .iter()
                    .map(|(k, v)| format!("{k}-{v}"))
                    .collect::<Vec<_>>()
                    .join("__")
            })
            .collect();
        let manifest = serde_json::json!({
            "name": name,
            "grid_keys": grid_keys,
            "points": ids.iter().zip(points).map(|(id, values)| serde_json::json!({
                "id": id,
                "values": values.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect::<HashMap<_, _>>(),
            })).collect::<Vec<_>>(),
        });
        std::fs::write(out.join("sweep.json"), manifest.to_string()).unwrap();
        ids
    }

    fn write_results(out: &Path, id: &str, header: &str, row: &str) {
        let dir = out.join("runs").join(id);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("results.csv"), format!("{header}\n{row}\n")).unwrap();
    }

    fn close(actual: f64, expected: f64) -> bool {
        (actual - expected).abs() < 1e-6
    }

    fn config<'a>(report: &'a Report, task: &str, value: &str) -> &'a Configuration {
        report
            .configs
            .iter()
            .find(|c| c.task == task && c.values.iter().any(|(_, v)| v == value))
            .unwrap()
    }

    const RTE: &str = "task,method,m,r,lr_prompt,lr_pair,seed,steps,best_step,validation_accuracy,test_accuracy,run_dir";
    const MRPC: &str =
        "task,method,m,r,lr_prompt,lr_pair,seed,steps,best_step,validation_accuracy,test_f1,test_accuracy,run_dir";

    /// 2 tasks × 2 lr_pair × 2 seeds; mrpc at lr_pair 0.001 seed 43 has not finished.
    fn glue_sweep(out: &Path) {
        let mut points = Vec::new();
        for task in ["rte", "mrpc"] {
            for lr in ["0.0001", "0.001"] {
                for seed in ["42", "43"] {
                    points.push(vec![("task", task), ("lr_pair", lr), ("seed", seed)]);
                }
            }
        }
        let ids = write_manifest(out, "glue-tiny", &["task", "lr_pair", "seed"], &points);
        let rows = [
            (RTE, "rte,dept,8,4,0.3,0.0001,42,120,80,60,62,runs/a"),
            (
                RTE,
                "rte,dept,8,4,0.3,0.0001,43,100,80,70,64,\"runs/with,comma\"",
            ),
            (RTE, "rte,dept,8,4,0.3,0.001,42,120,80,66,70,runs/c"),
            (RTE, "rte,dept,8,4,0.3,0.001,43,120,80,66,72,runs/d"),
            (MRPC, "mrpc,dept,8,4,0.3,0.0001,42,120,80,80,85,78,runs/e"),
            (MRPC, "mrpc,dept,8,4,0.3,0.0001,43,120,80,82,87,80,runs/f"),
            (MRPC, "mrpc,dept,8,4,0.3,0.001,42,120,80,79,90,81,runs/g"),
        ];
        for (id, (header, row)) in ids.iter().zip(rows) {
            write_results(out, id, header, row);
        }
    }

    #[test]
    fn configurations_are_averaged_over_seeds_and_the_best_per_task_chosen() {
        let dir = tempfile::tempdir().unwrap();
        glue_sweep(dir.path());
        let report = run(dir.path()).unwrap();
        assert_eq!((report.finished, report.total), (7, 8));

        let order: Vec<String> = report
            .configs
            .iter()
            .map(|c| format!("{} {}", c.task, c.label()))
            .collect();
        assert_eq!(
            order,
            [
                "rte lr_pair=0.0001",
                "rte lr_pair=0.001",
                "mrpc lr_pair=0.0001",
                "mrpc lr_pair=0.001"
            ]
        );

        let rte = config(&report, "rte", "0.0001");
        assert_eq!(rte.n_seeds, 2);
        let validation = rte.stat("validation_accuracy").unwrap();
        assert!(
            close(validation.mean, 65.0) && close(validation.std.unwrap(), 50f64.sqrt()),
            "{validation:?}"
        );
        assert!(close(rte.steps.unwrap().mean, 110.0));
        assert!(close(
            rte.stat("test_accuracy").unwrap().std.unwrap(),
            2f64.sqrt()
        ));
        assert!(rte.stat("test_f1").is_none());

        // One seed: the mean alone, no deviation.
        let single = config(&report, "mrpc", "0.001");
        assert_eq!(single.n_seeds, 1);
        assert_eq!(single.stat("test_f1").unwrap().std, None);

        // rte: 66 beats 65; mrpc: 81 beats 79 even though 0.001 has the better test score.
        let best: Vec<(&str, String)> = report
            .best
            .iter()
            .map(|(t, i)| (t.as_str(), report.configs[i.unwrap()].label()))
            .collect();
        assert_eq!(
            best,
            [
                ("rte", String::from("lr_pair=0.001")),
                ("mrpc", String::from("lr_pair=0.0001"))
            ]
        );
        let flags: Vec<bool> = report.configs.iter().map(|c| c.best).collect();
        assert_eq!(flags, [false, true, true, false]);

        let csv = std::fs::read_to_string(dir.path().join("report.csv")).unwrap();
        assert_eq!(csv, report.csv());
        let lines: Vec<&str> = csv.lines().collect();
        assert_eq!(
            lines[0],
            "lr_pair,task,n_seeds,steps_mean,validation_accuracy_mean,validation_accuracy_std,\
             test_accuracy_mean,test_accuracy_std,test_f1_mean,test_f1_std,best"
        );
        assert_eq!(lines.len(), 5);
        let first: Vec<&str> = lines[1].split(',').collect();
        assert_eq!(first[..4], ["0.0001", "rte", "2", "110"]);
        assert_eq!(first[4], "65");
        assert!(close(first[5].parse().unwrap(), 7.0710678));
        assert_eq!(first[8..], ["", "", "false"]);
        assert_eq!(lines[4], "0.001,mrpc,1,120,79,,81,,90,,false");

        let md = std::fs::read_to_string(dir.path().join("report.md")).unwrap();
        assert_eq!(md, report.markdown());
        assert!(
            md.starts_with("# Sweep glue-tiny: 7 of 8 points finished\n"),
            "{md}"
        );
        assert!(md.contains("std over seeds, n−1"), "{md}");
        assert!(
            md.contains(
                "| rte | lr_pair=0.001 | accuracy 66.00 ± 0.00 | accuracy 71.00 ± 1.41 | 2 |"
            ),
            "{md}"
        );
        assert!(
            md.contains("| mrpc | lr_pair=0.0001 | accuracy 81.00 ± 1.41 | f1 86.00 ± 1.41, accuracy 79.00 ± 1.41 | 2 |"),
            "{md}"
        );
        assert!(
            md.contains("| rte | 0.0001 | 2 | 110 | 65.00 ± 7.07 | 63.00 ± 1.41 |  |  |"),
            "{md}"
        );
        assert!(!md.contains("Few-shot"), "{md}");
    }

    #[test]
    fn ties_go_to_the_first_configuration_and_missing_scores_never_win() {
        let dir = tempfile::tempdir().unwrap();
        let points: Vec<Vec<(&str, &str)>> = ["1", "2", "3"]
            .iter()
            .map(|lr| vec![("lr_prompt", *lr), ("seed", "1")])
            .collect();
        let ids = write_manifest(dir.path(), "ties", &["lr_prompt", "seed"], &points);
        let header = "task,steps,validation_f1,test_f1";
        write_results(dir.path(), &ids[0], header, "boolq,10,,99");
        write_results(dir.path(), &ids[1], header, "boolq,10,70,50");
        write_results(dir.path(), &ids[2], header, "boolq,10,70,60");
        let report = run(dir.path()).unwrap();
        assert_eq!(report.best, [("boolq".to_string(), Some(1))]);
        // The task comes from results.csv when it is not a grid key.
        assert!(report
            .csv()
            .lines()
            .nth(2)
            .unwrap()
            .starts_with("2,boolq,1,10,70,,50,,true"));
    }

    #[test]
    fn configurations_keep_manifest_order_while_runs_finish() {
        let dir = tempfile::tempdir().unwrap();
        let points = [("a", "1"), ("b", "1"), ("a", "2")]
            .map(|(m, seed)| vec![("method", m), ("seed", seed)]);
        let ids = write_manifest(dir.path(), "order", &["method", "seed"], &points);
        // b finishes before any run of a; a still comes first, as in sweep.json.
        write_results(dir.path(), &ids[1], "task,validation_em", "squad,30");
        write_results(dir.path(), &ids[2], "task,validation_em", "squad,40");
        let report = run(dir.path()).unwrap();
        let labels: Vec<String> = report.configs.iter().map(Configuration::label).collect();
        assert_eq!(labels, ["method=a", "method=b"]);
    }

    #[test]
    fn k_shot_table_rows_are_sorted_numerically_with_the_best_per_task_and_k() {
        let dir = tempfile::tempdir().unwrap();
        let mut points = Vec::new();
        for task in ["rte", "boolq"] {
            for k in ["16", "32", "4"] {
                for lr in ["0.3", "0.5"] {
                    points.push(vec![
                        ("task", task),
                        ("k_shot", k),
                        ("lr_prompt", lr),
                        ("seed", "1"),
                    ]);
                }
            }
        }
        let ids = write_manifest(
            dir.path(),
            "few",
            &["task", "k_shot", "lr_prompt", "seed"],
            &points,
        );
        let header = "task,steps,validation_accuracy,test_accuracy";
        // (validation, test) per point, in manifest order: lr 0.5 wins at k 16 for rte only.
        let scores = [
            (50, 60),
            (55, 61),
            (52, 70),
            (51, 99),
            (40, 40),
            (30, 99), // rte: k 16, 32, 4
            (60, 80),
            (50, 99),
            (62, 82),
            (61, 99),
            (58, 50), // boolq; its last point (k 4, lr 0.5) never ran
        ];
        for (id, (validation, test)) in ids.iter().zip(scores) {
            let task = if id.starts_with("task-rte") {
                "rte"
            } else {
                "boolq"
            };
            write_results(
                dir.path(),
                id,
                header,
                &format!("{task},10,{validation},{test}"),
            );
        }
        let report = run(dir.path()).unwrap();
        let table = report.k_shot.as_ref().unwrap();
        let ks: Vec<&str> = table.rows.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(ks, ["4", "16", "32"]);
        let means: Vec<Vec<f64>> = table
            .rows
            .iter()
            .map(|(_, cells)| cells.iter().map(|c| c.unwrap().mean).collect())
            .collect();
        assert_eq!(
            means,
            [vec![40.0, 50.0], vec![61.0, 80.0], vec![70.0, 82.0]]
        );

        let md = report.markdown();
        assert!(
            md.contains("| k | rte (accuracy) | boolq (accuracy) | Avg. |"),
            "{md}"
        );
        assert!(md.contains("| 4 | 40.00 | 50.00 | 45.00 |"), "{md}");
        assert!(md.contains("| 16 | 61.00 | 80.00 | 70.50 |"), "{md}");
        assert!(md.contains("| 32 | 70.00 | 82.00 | 76.00 |"), "{md}");
        assert!(
            md.find("| 4 |").unwrap() < md.find("| 16 |").unwrap(),
            "{md}"
        );
    }

    #[test]
    fn a_malformed_results_file_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let ids = write_manifest(
            dir.path(),
            "bad",
            &["seed"],
            &[vec![("seed", "1")], vec![("seed", "2")]],
        );
        write_results(
            dir.path(),
            &ids[0],
            "task,steps,validation_accuracy",
            "rte,10,50",
        );
        write_results(
            dir.path(),
            &ids[1],
            "task,steps,validation_accuracy",
            "rte,10",
        );
        let err = format!("{:#}", run(dir.path()).unwrap_err());
        let path = dir.path().join("runs").join(&ids[1]).join("results.csv");
        assert!(err.contains(&path.display().to_string()), "{err}");
        assert!(err.contains("3 columns but the row has 2"), "{err}");
        assert!(!dir.path().join("report.csv").exists());
        // The same row cut short without its newline is a torn write: that point is left out, the report made.
        std::fs::write(&path, "task,steps,validation_accuracy\nrte,10").unwrap();
        let report = run(dir.path()).unwrap();
        assert!(dir.path().join("report.csv").exists());
        assert_eq!((report.finished, report.total), (1, ids.len()));
        std::fs::remove_file(dir.path().join("report.csv")).unwrap();

        write_results(
            dir.path(),
            &ids[1],
            "task,steps,validation_accuracy",
            "rte,10,high",
        );
        let err = format!("{:#}", run(dir.path()).unwrap_err());
        assert!(
            err.contains(&path.display().to_string()) && err.contains("`high` is not a number"),
            "{err}"
        );
    }

    #[test]
    fn a_missing_or_invalid_manifest_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sweep.json").display().to_string();
        let err = format!("{:#}", run(dir.path()).unwrap_err());
        assert!(err.contains(&path) && err.contains("not found"), "{err}");
        std::fs::write(dir.path().join("sweep.json"), "{\"name\": 3}").unwrap();
        let err = format!("{:#}", run(dir.path()).unwrap_err());
        assert!(err.contains(&path), "{err}");
        std::fs::write(
            dir.path().join("sweep.json"),
            r#"{"name": "x", "grid_keys": ["seed"], "points": [{"id": "../escape", "values": {"seed": "1"}}]}"#,
        )
        .unwrap();
        let err = format!("{:#}", run(dir.path()).unwrap_err());
        assert!(err.contains("not a plain folder name"), "{err}");
    }

    #[test]
    fn failed_and_preempted_points_are_listed_apart_with_their_errors() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path();
        let ids = write_manifest(
            out,
            "mixed",
            &["task", "seed"],
            &[
                vec![("task", "rte"), ("seed", "1")],
                vec![("task", "rte"), ("seed", "2")],
                vec![("task", "rte"), ("seed", "3")],
                vec![("task", "rte"), ("seed", "4")],
            ],
        );
        write_results(
            out,
            &ids[0],
            RTE,
            "rte,dept,4,2,0.3,0.0001,1,30,15,0.5,0.5,x",
        );
        std::fs::create_dir_all(out.join("status")).unwrap();
        std::fs::write(
            state::marker(out, &ids[1], "failed"),
            "exit status: 1; log l\nloss is NaN at step 3\n",
        )
        .unwrap();
        std::fs::write(
            state::marker(out, &ids[2], "preempted"),
            "exit status 75 in slurm job 9_2 on SIGUSR1: saved, requeued to resume\n",
        )
        .unwrap();
        let report = run(out).unwrap();
        assert_eq!(report.stopped.len(), 2, "the pending point is neither");
        let md = report.markdown();
        assert!(
            md.starts_with("# Sweep mixed: 1 of 4 points finished\n"),
            "{md}"
        );
        assert!(
            md.contains("1 failed (`dept sweep run --retry-failed` runs them again), 1 preempted"),
            "{md}"
        );
        assert!(
            md.contains(
                "| task-rte__seed-2 | failed | loss is NaN at step 3 (exit status: 1; log l) |"
            ),
            "{md}"
        );
        assert!(
            md.contains("| task-rte__seed-3 | preempted | exit status 75 in slurm job 9_2"),
            "{md}"
        );
        assert!(!md.contains("task-rte__seed-4"), "{md}");
    }

    #[test]
    fn nothing_finished_still_reports() {
        let dir = tempfile::tempdir().unwrap();
        write_manifest(
            dir.path(),
            "fresh",
            &["task", "seed"],
            &[vec![("task", "rte"), ("seed", "1")]],
        );
        let report = run(dir.path()).unwrap();
        assert_eq!((report.finished, report.total), (0, 1));
        assert!(report.markdown().contains("0 of 1 points finished"));
        assert_eq!(report.csv(), "task,n_seeds,steps_mean,best\n");
    }

    #[test]
    fn csv_records_follow_rfc_4180() {
        let text = "\u{feff}a,b,c\r\n1,\"x, \"\"y\"\"\nz\",\r\n\n\"\"\n";
        let records = parse_csv(text).unwrap();
        assert_eq!(
            records,
            [vec!["a", "b", "c"], vec!["1", "x, \"y\"\nz", ""], vec![""]]
        );
        assert!(parse_csv("a,\"b\n")
            .unwrap_err()
            .to_string()
            .contains("never closed"));
        assert!(parse_csv("a,\"b\"c\n").is_err());
        // A header without a row is not a finished run's results.
        assert!(parse_results("task,steps\n").is_err());
    }
}
