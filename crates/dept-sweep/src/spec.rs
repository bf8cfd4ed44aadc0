//! The sweep file: a base experiment config, keys set for every point, and a grid whose product gives the points.
//! Every point becomes one `dept train` config in the sweep folder, named by its grid values so that a grid that
//! grows later keeps the names (and finished runs) of the points it already had.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::error::{OverrideProblem, Result, SweepError, SweepProblem};
use dept_train::ExperimentConfig;
use serde::{Deserialize, Serialize};
use serde_yaml::{Mapping, Value};

/// `SWEEP.yaml`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SweepFile {
    /// Names the sweep folder (`runs/sweeps/<name>` unless `out:` is given) and the Slurm job.
    pub name: String,
    /// The sweep folder, relative to where the sweep is run.
    #[serde(default)]
    pub out: Option<PathBuf>,
    /// A base experiment config, relative to the sweep file; `{task}` is replaced by each point's task, so that
    /// each task starts from its own config (`configs/glue/{task}.yaml`). A list is tried in order and the first
    /// file that exists is the base, so that one sweep can span tasks whose configs live in different folders.
    #[serde(default)]
    pub base: Option<BaseConfig>,
    /// Keys set on every point (after the base config).
    #[serde(default)]
    pub set: Mapping,
    /// Keys with lists of values; the points are every combination, in the order the keys are written. A list of
    /// such mappings is a union of grids, each expanded on its own (DePT's α1 × α2 grid and, beside it, the PT
    /// baseline's, which has no α2).
    pub grid: GridSpec,
    /// Resources for the Slurm backend.
    #[serde(default)]
    pub slurm: SlurmResources,
}

/// `base:`: one path template, or several tried in order.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum BaseConfig {
    One(String),
    FirstOf(Vec<String>),
}

impl BaseConfig {
    fn templates(&self) -> &[String] {
        match self {
            BaseConfig::One(one) => std::slice::from_ref(one),
            BaseConfig::FirstOf(list) => list,
        }
    }
}

/// `grid:`: one grid, or a list of grids whose points are put together.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum GridSpec {
    One(Mapping),
    Union(Vec<Mapping>),
}

impl GridSpec {
    fn grids(&self) -> &[Mapping] {
        match self {
            GridSpec::One(one) => std::slice::from_ref(one),
            GridSpec::Union(list) => list,
        }
    }
}

/// What `sweep.json` records for a grid key that the point's own grid does not have (a PT point's `lr_pair`
/// beside DePT's grid): the report shows it in that key's column.
pub const NOT_IN_POINT_GRID: &str = "-";

/// `#SBATCH` lines of the job array; unset fields are left to the cluster's defaults.
#[derive(Debug, Default, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SlurmResources {
    pub partition: Option<String>,
    pub account: Option<String>,
    pub qos: Option<String>,
    /// e.g. `gpu:1`.
    pub gres: Option<String>,
    pub cpus_per_task: Option<u32>,
    /// e.g. `32G`.
    pub mem: Option<String>,
    /// e.g. `24:00:00`.
    pub time: Option<String>,
    /// At most this many array tasks at once (`--array=…%N`).
    pub max_parallel: Option<u32>,
    /// Seconds before the time limit at which Slurm sends the task's batch script SIGUSR1
    /// (`sbatch --signal=B:USR1@N`): the script has `dept train` save and requeues the task, which resumes its
    /// run folder. [`DEFAULT_SIGNAL_SECONDS`] when unset; 0 asks for no warning. `--signal-seconds` overrides it.
    pub signal_seconds: Option<u32>,
    /// Further `sbatch` options, written as given (`--constraint=a100`).
    #[serde(default)]
    pub extra: Vec<String>,
}

/// The warning before a Slurm task's time limit when the sweep file does not say: enough to save a checkpoint
/// (about a megabyte) on a slow shared file system, and more than Slurm's own resolution (it may send the signal
/// up to a minute early).
pub const DEFAULT_SIGNAL_SECONDS: u32 = 120;

/// The most `--signal=…@N` accepts.
pub const MAX_SIGNAL_SECONDS: u32 = 65535;

/// One point: its name, its grid values (as written), and its full experiment config.
#[derive(Debug, Clone)]
pub struct Point {
    pub id: String,
    pub values: Vec<(String, String)>,
    pub config: Mapping,
}

/// A sweep resolved against its file: folder, grid keys and points.
#[derive(Debug)]
pub struct Sweep {
    pub name: String,
    pub file: PathBuf,
    pub out: PathBuf,
    pub grid_keys: Vec<String>,
    pub points: Vec<Point>,
    pub slurm: SlurmResources,
}

/// `sweep.json`, written into the sweep folder: what `dept sweep report` groups by.
#[derive(Debug, Serialize, Deserialize)]
pub struct Manifest {
    pub name: String,
    pub grid_keys: Vec<String>,
    pub points: Vec<ManifestPoint>,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct ManifestPoint {
    pub id: String,
    pub values: BTreeMap<String, String>,
}

impl Sweep {
    /// Reads and expands a sweep file; every point's config is checked as `dept train` would check it, so a bad
    /// key or value is reported before anything runs. `out` overrides the file's folder; `overrides` are
    /// `key=value` items (`--set`) applied to every point after `set`, and may not name a grid key.
    pub fn load(file: &Path, out: Option<&Path>, overrides: &[String]) -> Result<Self> {
        let text = std::fs::read_to_string(file).map_err(|error| SweepError::ReadSweepFile {
            file: file.to_path_buf(),
            error,
        })?;
        let spec: SweepFile =
            serde_yaml::from_str(&text).map_err(|error| SweepError::NotASweepFile {
                file: file.to_path_buf(),
                error,
            })?;
        let bad = |problem: SweepProblem| SweepError::BadSweep {
            file: file.to_path_buf(),
            problem,
        };
        let grids = spec.checked_grids(overrides).map_err(bad)?;
        let grid_keys = union_of_keys(&grids);
        let mut set = spec.set.clone();
        apply_overrides(file, &grid_keys, overrides, &mut set)?;
        let out = match (out, &spec.out) {
            (Some(out), _) => out.to_path_buf(),
            (None, Some(out)) => out.clone(),
            (None, None) => Path::new("runs/sweeps").join(&spec.name),
        };
        let points = expand(file, &spec, &grids, &set, &out)?;
        Ok(Sweep {
            name: spec.name,
            file: file.to_path_buf(),
            out,
            grid_keys,
            points,
            slurm: spec.slurm,
        })
    }

    pub fn config_path(&self, point: &Point) -> PathBuf {
        self.out.join("configs").join(format!("{}.yaml", point.id))
    }

    pub fn run_dir(&self, point: &Point) -> PathBuf {
        self.out.join("runs").join(&point.id)
    }

    pub fn log_path(&self, point: &Point) -> PathBuf {
        self.out.join("logs").join(format!("{}.log", point.id))
    }

    /// Writes `sweep.json` and every point's config (atomically; unchanged files are left alone).
    pub fn write(&self) -> Result<()> {
        std::fs::create_dir_all(self.out.join("configs"))
            .and_then(|_| std::fs::create_dir_all(self.out.join("logs")))
            .map_err(|e| SweepError::io("creating the sweep folder", &self.out, e))?;
        let manifest = Manifest {
            name: self.name.clone(),
            grid_keys: self.grid_keys.clone(),
            points: self
                .points
                .iter()
                .map(|p| ManifestPoint {
                    id: p.id.clone(),
                    values: self
                        .grid_keys
                        .iter()
                        .map(|key| (key.clone(), NOT_IN_POINT_GRID.to_string()))
                        .chain(p.values.iter().cloned())
                        .collect(),
                })
                .collect(),
        };
        let manifest = serde_json::to_string_pretty(&manifest)
            .map_err(|e| SweepError::serialize("sweep.json", e))?;
        write_if_changed(&self.out.join("sweep.json"), &(manifest + "\n"))?;
        let bodies = self
            .points
            .iter()
            .map(|point| {
                serde_yaml::to_string(&point.config).map_err(|e| {
                    SweepError::serialize(format!("the config of point {}", point.id), e)
                })
            })
            .collect::<Result<Vec<_>>>()?;
        for (point, body) in self.points.iter().zip(&bodies) {
            let path = self.config_path(point);
            if let Ok(old) = std::fs::read_to_string(&path) {
                let old_body: String = old.lines().skip(1).map(|l| format!("{l}\n")).collect();
                if old_body != *body && self.run_dir(point).exists() {
                    return Err(SweepError::PointStarted {
                        id: point.id.clone(),
                        run_dir: self.run_dir(point),
                    });
                }
            }
        }
        for (point, body) in self.points.iter().zip(bodies) {
            let header = format!(
                "# Sweep {}, point {} (written by dept sweep from {}; edits are overwritten)\n",
                self.name,
                point.id,
                self.file.display()
            );
            write_if_changed(&self.config_path(point), &(header + &body))?;
        }
        Ok(())
    }
}

/// A grid key and its values (a single value counts as a one-item list).
type GridKey = (String, Vec<Value>);

impl SweepFile {
    /// The grids (one, or each of a union), keys in the order written, after checking the name, the grid and
    /// `set` keys, and that nothing (`set`, grid or `--set`) names `output_dir`.
    fn checked_grids(&self, overrides: &[String]) -> Result<Vec<Vec<GridKey>>, SweepProblem> {
        let plain_name = |c: char| c.is_ascii_alphanumeric() || "-_.".contains(c);
        if self.name.is_empty() || !self.name.chars().all(plain_name) {
            return Err(SweepProblem::Name(self.name.clone()));
        }
        let mut grids = Vec::new();
        for mapping in self.grid.grids() {
            let mut grid = Vec::new();
            for (key, values) in mapping {
                let key = known_key("grid", key)?;
                let values = match values {
                    Value::Sequence(values) if !values.is_empty() => values.clone(),
                    Value::Sequence(_) => return Err(SweepProblem::EmptyValues(key.to_string())),
                    single => vec![single.clone()],
                };
                grid.push((key.to_string(), values));
            }
            if grid.is_empty() {
                return Err(SweepProblem::EmptyGrid);
            }
            grids.push(grid);
        }
        if grids.is_empty() {
            return Err(SweepProblem::EmptyGrid);
        }
        let keys = union_of_keys(&grids);
        for key in self.set.keys() {
            let key = known_key("set", key)?;
            if keys.iter().any(|k| k == key) {
                return Err(SweepProblem::SetAndGrid(key.to_string()));
            }
        }
        let names_output_dir = |key: &str| key == "output_dir";
        if keys.iter().any(|k| names_output_dir(k))
            || self
                .set
                .keys()
                .any(|k| k.as_str().is_some_and(names_output_dir))
            || overrides.iter().any(|o| {
                o.split('=')
                    .next()
                    .is_some_and(|k| names_output_dir(k.trim()))
            })
        {
            return Err(SweepProblem::OutputDir);
        }
        Ok(grids)
    }
}

/// Every key of the grids, each once, in the order they first appear.
fn union_of_keys(grids: &[Vec<GridKey>]) -> Vec<String> {
    let mut keys: Vec<String> = Vec::new();
    for (key, _) in grids.iter().flatten() {
        if !keys.contains(key) {
            keys.push(key.clone());
        }
    }
    keys
}

/// A `grid` or `set` key that `dept train` knows.
fn known_key<'a>(section: &'static str, key: &'a Value) -> Result<&'a str, SweepProblem> {
    let text = key.as_str().ok_or_else(|| SweepProblem::KeyNotText {
        section,
        key: format!("{key:?}"),
    })?;
    dept_train::config::check_key(text).map_err(|problem| SweepProblem::UnknownKey {
        section,
        problem: problem.to_string(),
    })?;
    Ok(text)
}

/// Applies `--set key=value` items to `set`: each must be a known key that is not a grid key of `file`.
fn apply_overrides(
    file: &Path,
    grid_keys: &[String],
    overrides: &[String],
    set: &mut Mapping,
) -> Result<()> {
    for item in overrides {
        let bad = |problem: OverrideProblem| SweepError::BadOverride {
            item: item.clone(),
            problem,
        };
        let (key, raw) = item
            .split_once('=')
            .ok_or_else(|| bad(OverrideProblem::NotKeyValue))?;
        let key = key.trim();
        dept_train::config::check_key(key)
            .map_err(|m| bad(OverrideProblem::UnknownKey(m.to_string())))?;
        if grid_keys.iter().any(|k| k == key) {
            return Err(bad(OverrideProblem::GridKey {
                key: key.to_string(),
                file: file.to_path_buf(),
            }));
        }
        let value: Value =
            serde_yaml::from_str(raw).map_err(|e| bad(OverrideProblem::NotYaml(e)))?;
        set.insert(Value::String(key.to_string()), value);
    }
    Ok(())
}

/// Every point of the grid, its config checked as `dept train` would check it.
fn expand(
    file: &Path,
    spec: &SweepFile,
    grids: &[Vec<GridKey>],
    set: &Mapping,
    out: &Path,
) -> Result<Vec<Point>> {
    let base_dir = file.parent().unwrap_or(Path::new("."));
    let mut points: Vec<Point> = Vec::new();
    let mut widths = BTreeMap::new();
    for combination in grids.iter().flat_map(|grid| product(grid)) {
        let values: Vec<(String, String)> = combination
            .iter()
            .map(|(k, v)| (k.clone(), scalar_text(v)))
            .collect();
        let id = point_id(&values);
        if let Some(other) = points.iter().find(|p| p.id == id) {
            return Err(SweepError::BadSweep {
                file: file.to_path_buf(),
                problem: SweepProblem::SameName {
                    id,
                    other: other.values.clone(),
                },
            });
        }
        let mut config = match &spec.base {
            Some(base) => read_base(base_dir, base, &combination, set)?,
            None => Mapping::new(),
        };
        for (k, v) in set {
            config.insert(k.clone(), v.clone());
        }
        for (k, v) in &combination {
            config.insert(Value::String(k.clone()), v.clone());
        }
        config.insert(
            Value::String("output_dir".into()),
            Value::String(out.join("runs").join(&id).display().to_string()),
        );
        let text = serde_yaml::to_string(&config)
            .map_err(|e| SweepError::serialize(format!("the config of point {id}"), e))?;
        let experiment = ExperimentConfig::from_yaml(&text, &file.join(format!("#{id}")), &[])
            .map_err(|error| SweepError::PointConfig {
                id: id.clone(),
                error: Box::new(error),
            })?;
        check_shape(&id, &experiment, &mut widths)?;
        points.push(Point { id, values, config });
    }
    Ok(points)
}

/// The (m, r) a point trains, where its model folder is readable: the budget arithmetic needs the model's width d
/// (which the backbone registry reads under the folder's kind's key), and a grid of m values that leaves no integer
/// r is better refused now than one run at a time. `widths` caches d per model folder.
fn check_shape(
    id: &str,
    config: &ExperimentConfig,
    widths: &mut BTreeMap<PathBuf, Option<i64>>,
) -> Result<()> {
    let d = *widths
        .entry(config.model.clone())
        .or_insert_with(|| dept_models::registry::hidden_size_of(&config.model).ok());
    match d {
        Some(d) => config
            .shape(d)
            .map(|_| ())
            .map_err(|problem| SweepError::PointShape {
                id: id.to_string(),
                problem,
            }),
        // No readable model folder here (yet): `dept train` checks the folder and the shape when the point runs.
        None => Ok(()),
    }
}

/// Every combination of the grid's values, the last key varying fastest.
fn product(grid: &[(String, Vec<Value>)]) -> Vec<Vec<(String, Value)>> {
    let mut combinations: Vec<Vec<(String, Value)>> = vec![Vec::new()];
    for (key, values) in grid {
        combinations = combinations
            .into_iter()
            .flat_map(|prefix| {
                values.iter().map(move |v| {
                    let mut next = prefix.clone();
                    next.push((key.clone(), v.clone()));
                    next
                })
            })
            .collect();
    }
    combinations
}

/// A grid value as written in YAML (`1.0e-4`, `rte`, `true`).
pub fn scalar_text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => serde_yaml::to_string(other)
            .unwrap_or_default()
            .trim()
            .trim_start_matches("---")
            .trim()
            .to_string(),
    }
}

/// `task-rte__lr_pair-0.0001__seed-42`: grid keys and values, characters outside `[A-Za-z0-9._-]` replaced.
pub fn point_id(values: &[(String, String)]) -> String {
    let clean = |s: &str| -> String {
        s.chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || ".-".contains(c) {
                    c
                } else {
                    '_'
                }
            })
            .collect()
    };
    values
        .iter()
        .map(|(k, v)| format!("{}-{}", clean(k), clean(v)))
        .collect::<Vec<_>>()
        .join("__")
}

/// The base config of one point: `{task}` in the base path is the point's task (from the grid or `set`); of
/// several templates, the first whose file exists.
fn read_base(
    dir: &Path,
    base: &BaseConfig,
    combination: &[(String, Value)],
    set: &Mapping,
) -> Result<Mapping> {
    let templates = base.templates();
    let mut paths = Vec::new();
    for template in templates {
        let path = dir.join(base_name(template, combination, set)?);
        if templates.len() == 1 || path.is_file() {
            return read_base_file(path);
        }
        paths.push(path);
    }
    Err(SweepError::NoBase { tried: paths })
}

/// One base template with `{task}` filled in.
fn base_name(base: &str, combination: &[(String, Value)], set: &Mapping) -> Result<String> {
    let task = combination
        .iter()
        .find(|(k, _)| k == "task")
        .map(|(_, v)| v.clone())
        .or_else(|| set.get("task").cloned());
    match (base.contains("{task}"), task) {
        (false, _) => Ok(base.to_string()),
        (true, Some(task)) => Ok(base.replace("{task}", &scalar_text(&task))),
        (true, None) => Err(SweepError::BaseWithoutTask {
            base: base.to_string(),
        }),
    }
}

fn read_base_file(path: PathBuf) -> Result<Mapping> {
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(error) => return Err(SweepError::ReadBase { path, error }),
    };
    match serde_yaml::from_str(&text) {
        Ok(Value::Mapping(map)) => Ok(map),
        Ok(Value::Null) => Ok(Mapping::new()),
        Ok(_) => Err(SweepError::BaseNotMapping { path }),
        Err(error) => Err(SweepError::BaseNotYaml { path, error }),
    }
}

fn write_if_changed(path: &Path, text: &str) -> Result<()> {
    if std::fs::read_to_string(path).is_ok_and(|old| old == text) {
        return Ok(());
    }
    crate::write::write_file(path, text)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sweep(dir: &Path, text: &str) -> Result<Sweep> {
        let file = dir.join("sweep.yaml");
        std::fs::write(&file, text).unwrap();
        Sweep::load(&file, Some(&dir.join("out")), &[])
    }

    #[test]
    fn the_grid_expands_in_key_order_with_stable_names() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("base-rte.yaml"),
            "task: rte\nmax_steps: 10\nprompt_len: 4\nrank: 2\n",
        )
        .unwrap();
        std::fs::write(
            dir.path().join("base-cb.yaml"),
            "task: cb\nmax_steps: 20\nprompt_len: 4\nrank: 2\n",
        )
        .unwrap();
        let s = sweep(
            dir.path(),
            "name: t\nbase: base-{task}.yaml\nset: {lr_prompt: 0.3}\ngrid:\n  task: [rte, cb]\n  lr_pair: [1.0e-4, 5.0e-3]\n  seed: [42, 43]\n",
        )
        .unwrap();
        assert_eq!(s.points.len(), 8);
        assert_eq!(s.grid_keys, ["task", "lr_pair", "seed"]);
        assert_eq!(s.points[0].id, "task-rte__lr_pair-0.0001__seed-42");
        assert_eq!(s.points[1].id, "task-rte__lr_pair-0.0001__seed-43");
        assert_eq!(s.points[7].id, "task-cb__lr_pair-0.005__seed-43");
        let cb = &s.points[7].config;
        assert_eq!(cb.get("max_steps"), Some(&Value::from(20)));
        assert_eq!(cb.get("lr_prompt"), Some(&Value::from(0.3)));
        assert!(scalar_text(cb.get("output_dir").unwrap())
            .ends_with("out/runs/task-cb__lr_pair-0.005__seed-43"));
        s.write().unwrap();
        let written = std::fs::read_to_string(s.config_path(&s.points[7])).unwrap();
        let config = ExperimentConfig::from_yaml(&written, Path::new("x"), &[]).unwrap();
        assert_eq!(
            (config.task.as_str(), config.lr_pair, config.seed),
            ("cb", 0.005, 43)
        );
        let manifest: Manifest =
            serde_json::from_str(&std::fs::read_to_string(s.out.join("sweep.json")).unwrap())
                .unwrap();
        assert_eq!(manifest.points[7].values["lr_pair"], "0.005");
    }

    #[test]
    fn a_union_of_grids_and_a_list_of_bases_expand_together() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("glue")).unwrap();
        std::fs::create_dir(dir.path().join("superglue")).unwrap();
        let base = "prompt_len: 4\nrank: 2\nmax_steps: ";
        std::fs::write(
            dir.path().join("glue/rte.yaml"),
            format!("task: rte\n{base}10\n"),
        )
        .unwrap();
        std::fs::write(
            dir.path().join("superglue/cb.yaml"),
            format!("task: cb\n{base}20\n"),
        )
        .unwrap();
        let s = sweep(
            dir.path(),
            "name: t\nbase: [\"glue/{task}.yaml\", \"superglue/{task}.yaml\"]\ngrid:\n  \
             - {task: [rte, cb], lr_prompt: [0.3, 0.5], lr_pair: [1.0e-4]}\n  \
             - {task: [rte, cb], method: pt, prompt_len: 8, rank: 0, lr_prompt: [0.3]}\n",
        )
        .unwrap();
        assert_eq!(s.points.len(), 4 + 2);
        assert_eq!(
            s.grid_keys,
            [
                "task",
                "lr_prompt",
                "lr_pair",
                "method",
                "prompt_len",
                "rank"
            ]
        );
        assert_eq!(s.points[3].id, "task-cb__lr_prompt-0.5__lr_pair-0.0001");
        assert_eq!(
            s.points[5].id,
            "task-cb__method-pt__prompt_len-8__rank-0__lr_prompt-0.3"
        );
        // Each task from the first base that exists; the PT grid's keys replace the base's shape.
        let pt = &s.points[5].config;
        assert_eq!(pt.get("max_steps"), Some(&Value::from(20)));
        assert_eq!(pt.get("prompt_len"), Some(&Value::from(8)));
        assert_eq!(s.points[0].config.get("max_steps"), Some(&Value::from(10)));
        // The manifest has every grid key for every point; a key of the other grid reads `-`.
        s.write().unwrap();
        let manifest: Manifest =
            serde_json::from_str(&std::fs::read_to_string(s.out.join("sweep.json")).unwrap())
                .unwrap();
        assert_eq!(manifest.points[5].values["lr_pair"], NOT_IN_POINT_GRID);
        assert_eq!(manifest.points[0].values["method"], NOT_IN_POINT_GRID);
        assert_eq!(manifest.points[5].values["method"], "pt");
        // A task with no base in any of the folders is refused, naming every path tried.
        let err = format!(
            "{:#}",
            sweep(
                dir.path(),
                "name: t\nbase: [\"glue/{task}.yaml\", \"superglue/{task}.yaml\"]\ngrid: [{task: [wic]}]\n"
            )
            .unwrap_err()
        );
        assert!(
            err.contains("glue/wic.yaml") && err.contains("superglue/wic.yaml"),
            "{err}"
        );
        // The same point twice across grids is refused; so is an empty list of grids.
        let err = format!(
            "{:#}",
            sweep(dir.path(), "name: t\ngrid: [{seed: [1]}, {seed: [1, 2]}]\n").unwrap_err()
        );
        assert!(err.contains("seed-1"), "{err}");
        assert!(format!(
            "{:#}",
            sweep(dir.path(), "name: t\ngrid: []\n").unwrap_err()
        )
        .contains("grid"));
    }

    #[test]
    fn bad_sweeps_are_refused_with_the_reason() {
        let dir = tempfile::tempdir().unwrap();
        let err = |text: &str| format!("{:#}", sweep(dir.path(), text).unwrap_err());
        assert!(err("name: t\ngrid: {lr_pare: [1]}\n").contains("did you mean `lr_pair`"));
        assert!(err("name: t\ngrid: {seed: []}\n").contains("grid.seed is an empty list"));
        assert!(err("name: t\nset: {seed: 1}\ngrid: {seed: [1, 2]}\n")
            .contains("both in set and in grid"));
        assert!(err("name: a/b\ngrid: {seed: [1]}\n").contains("must be letters"));
        assert!(err("name: t\ngrid: {lr_pair: [fast]}\n").contains("lr_pair"));
        assert!(err("name: t\nbase: missing.yaml\ngrid: {seed: [1]}\n").contains("missing.yaml"));
        assert!(err("name: t\ngird: {seed: [1]}\n").contains("not a sweep file"));
    }

    #[test]
    fn overrides_apply_to_every_point_and_the_budget_is_checked_against_the_model() {
        let dir = tempfile::tempdir().unwrap();
        let model = dir.path().join("model");
        dept_models::tiny::write_tiny_t5(
            &model,
            &dept_data::synthetic::vocabulary(),
            32,
            "gated-gelu",
            1,
        )
        .unwrap();
        let file = dir.path().join("sweep.yaml");
        std::fs::write(&file, "name: t\nset: {task: rte, budget: 10, rank: null, max_len: 64}\ngrid: {prompt_len: [4, 7]}\n").unwrap();
        let load = |extra: &[&str]| {
            let mut overrides = vec![format!("model={:?}", model.display().to_string())];
            overrides.extend(extra.iter().map(|s| s.to_string()));
            Sweep::load(&file, Some(&dir.path().join("out")), &overrides)
        };
        // d = 32, s = 64: 10·32 = m·32 + 96·r has r = 2 for m = 4 and r = 1 for m = 7.
        let sweep = load(&[]).unwrap();
        assert_eq!(
            sweep.points[0].config.get("model"),
            Some(&Value::from(model.display().to_string()))
        );
        // l = 11 leaves no integer r for m = 4: refused before anything runs, naming the point.
        let err = format!("{:#}", load(&["budget=11"]).unwrap_err());
        assert!(
            err.contains("prompt_len-4") && err.contains("no integer rank"),
            "{err}"
        );
        assert!(format!("{:#}", load(&["prompt_len=3"]).unwrap_err()).contains("is a grid key"));
        assert!(format!("{:#}", load(&["promt_len=3"]).unwrap_err())
            .contains("did you mean `prompt_len`"));
    }
}
