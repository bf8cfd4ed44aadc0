//! The sweep file: a base experiment config, keys set for every point, and a grid whose product gives the points;
//! or a list of stages, each with its own grid, run one after another, a later stage's points starting from the
//! best adapter of an earlier one ([`crate::stages`]). Every point becomes one `dept train` config in the sweep
//! folder, named by its grid values (after its stage's name) so that a grid that grows later keeps the names (and
//! finished runs) of the points it already had.

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
    /// baseline's, which has no α2). Either this or `stages`.
    #[serde(default)]
    pub grid: Option<GridSpec>,
    /// Stages run in order, each with its own grid (and optionally its own base and keys); a stage may start its
    /// points from the best adapter of an earlier stage. Either this or `grid`.
    #[serde(default)]
    pub stages: Option<Vec<StageSpec>>,
    /// Resources for the Slurm backend.
    #[serde(default)]
    pub slurm: SlurmResources,
}

/// One stage of a staged sweep file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StageSpec {
    /// Names the stage; its points are named `<stage>__<grid values>`.
    pub name: String,
    /// This stage's base config, instead of the file's.
    #[serde(default)]
    pub base: Option<BaseConfig>,
    /// Keys set on this stage's points, beside the file's `set` (a key may not be in both).
    #[serde(default)]
    pub set: Mapping,
    pub grid: GridSpec,
    /// Start every point from the best adapter of an earlier stage (the runner fills in `init_adapter`).
    #[serde(default)]
    pub init_adapter: Option<FromStage>,
}

/// `init_adapter: {from_stage: source, match: [method]}`.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct FromStage {
    /// The earlier stage whose best point's `best/` adapter each point starts from.
    pub from_stage: String,
    /// Keys whose values a point shares with the source points it picks from (`method`: DePT targets from the
    /// DePT source, PT targets from the PT source); none: the best of the whole stage.
    #[serde(default, rename = "match")]
    pub match_keys: Vec<String>,
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

/// A sweep resolved against its file: folder, grid keys, points and the stages they belong to.
#[derive(Debug)]
pub struct Sweep {
    pub name: String,
    pub file: PathBuf,
    pub out: PathBuf,
    pub grid_keys: Vec<String>,
    pub points: Vec<Point>,
    /// In the order they run; a file without `stages:` has one, unnamed, holding every point.
    pub stages: Vec<Stage>,
    pub slurm: SlurmResources,
}

/// A stage of a sweep: a run of consecutive points, and where they start from.
#[derive(Debug, Clone)]
pub struct Stage {
    /// `None` for the one stage of a file without `stages:`.
    pub name: Option<String>,
    pub points: std::ops::Range<usize>,
    pub init: Option<StageInit>,
}

/// How a stage's points start from an earlier stage: one pick per distinct value of the match keys.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct StageInit {
    #[serde(flatten)]
    pub from: FromStage,
    pub picks: Vec<Pick>,
}

/// One best-of choice: among `candidates` (points of the source stage sharing `values`), the one with the best
/// validation score; `link` (relative to the sweep folder) is made to point at its `best/` adapter, and is the
/// `init_adapter` of `users`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Pick {
    pub link: PathBuf,
    pub values: BTreeMap<String, String>,
    pub candidates: Vec<String>,
    pub users: Vec<String>,
}

/// `sweep.json`, written into the sweep folder: what `dept sweep report` groups by, and (for a staged sweep) what
/// `dept sweep pick` chooses from, so that neither needs the sweep file.
#[derive(Debug, Serialize, Deserialize)]
pub struct Manifest {
    pub name: String,
    pub grid_keys: Vec<String>,
    pub points: Vec<ManifestPoint>,
    /// Empty for a sweep without stages.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub stages: Vec<ManifestStage>,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct ManifestPoint {
    pub id: String,
    pub values: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stage: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ManifestStage {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub init_adapter: Option<StageInit>,
}

impl Manifest {
    pub fn stage(&self, name: &str) -> Option<&ManifestStage> {
        self.stages.iter().find(|s| s.name == name)
    }

    /// The ids of the points of stage `name`.
    pub fn stage_points(&self, name: &str) -> Vec<&str> {
        self.points
            .iter()
            .filter(|p| p.stage.as_deref() == Some(name))
            .map(|p| p.id.as_str())
            .collect()
    }
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
        let mut plans = spec.checked_plans(overrides).map_err(bad)?;
        let all_grids: Vec<Vec<GridKey>> =
            plans.iter().flat_map(|p| p.grids.iter().cloned()).collect();
        let grid_keys = union_of_keys(&all_grids);
        for plan in &mut plans {
            let filled_by = plan.init.as_ref().and(plan.name.as_deref());
            apply_overrides(file, &grid_keys, filled_by, overrides, &mut plan.set)?;
        }
        let out = match (out, &spec.out) {
            (Some(out), _) => out.to_path_buf(),
            (None, Some(out)) => out.clone(),
            (None, None) => Path::new("runs/sweeps").join(&spec.name),
        };
        let mut points = Vec::new();
        let mut stages = Vec::new();
        for plan in &plans {
            let first = points.len();
            expand(file, plan, &out, &mut points)?;
            stages.push(Stage {
                name: plan.name.clone(),
                points: first..points.len(),
                init: None,
            });
        }
        for (index, plan) in plans.iter().enumerate() {
            if let Some(from) = &plan.init {
                let init = crate::stages::plan_picks(&stages, index, from, &points).map_err(bad)?;
                stages[index].init = Some(init);
            }
        }
        Ok(Sweep {
            name: spec.name,
            file: file.to_path_buf(),
            out,
            grid_keys,
            points,
            stages,
            slurm: spec.slurm,
        })
    }

    /// Whether the file has `stages:` (then point ids carry the stage's name, and the manifest the stages).
    pub fn is_staged(&self) -> bool {
        self.stages.iter().any(|s| s.name.is_some())
    }

    /// The stage of point `index`.
    pub fn stage_of(&self, index: usize) -> &Stage {
        self.stages
            .iter()
            .find(|s| s.points.contains(&index))
            .unwrap_or(&self.stages[0])
    }

    /// `sweep.json`: every grid key for every point (`-` where its own grid lacks it), and the stages.
    pub fn manifest(&self) -> Manifest {
        let stage_name = |index: usize| self.stage_of(index).name.clone();
        Manifest {
            name: self.name.clone(),
            grid_keys: self.grid_keys.clone(),
            points: self
                .points
                .iter()
                .enumerate()
                .map(|(index, p)| ManifestPoint {
                    id: p.id.clone(),
                    values: self
                        .grid_keys
                        .iter()
                        .map(|key| (key.clone(), NOT_IN_POINT_GRID.to_string()))
                        .chain(p.values.iter().cloned())
                        .collect(),
                    stage: stage_name(index),
                })
                .collect(),
            stages: self
                .stages
                .iter()
                .filter_map(|s| {
                    Some(ManifestStage {
                        name: s.name.clone()?,
                        init_adapter: s.init.clone(),
                    })
                })
                .collect(),
        }
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
        let manifest = self.manifest();
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

/// One stage as the file gives it, before expansion (a file without `stages:` is one unnamed plan).
struct StagePlan<'a> {
    name: Option<String>,
    base: Option<&'a BaseConfig>,
    /// The file's `set` and the stage's, then `--set`.
    set: Mapping,
    grids: Vec<Vec<GridKey>>,
    init: Option<FromStage>,
}

impl SweepFile {
    /// The stages (one unnamed for a plain `grid:`), their grids with keys in the order written, after checking
    /// the names, the grid and `set` keys, the stages' sources, and that nothing (`set`, grid or `--set`) names
    /// `output_dir`.
    fn checked_plans(&self, overrides: &[String]) -> Result<Vec<StagePlan<'_>>, SweepProblem> {
        if !is_plain_name(&self.name) {
            return Err(SweepProblem::Name(self.name.clone()));
        }
        for key in self.set.keys() {
            known_key("set", key)?;
        }
        let mut plans = match (&self.grid, &self.stages) {
            (Some(_), Some(_)) => return Err(SweepProblem::GridAndStages),
            (None, None) => return Err(SweepProblem::EmptyGrid),
            (None, Some(stages)) if stages.is_empty() => return Err(SweepProblem::NoStages),
            (Some(grid), None) => vec![StagePlan {
                name: None,
                base: self.base.as_ref(),
                set: self.set.clone(),
                grids: checked_grids(grid)?,
                init: None,
            }],
            (None, Some(stages)) => {
                let mut plans = Vec::new();
                for stage in stages {
                    plans.push(self.stage_plan(stage, &plans)?);
                }
                check_sources(stages)?;
                plans
            }
        };
        for plan in &mut plans {
            let keys = union_of_keys(&plan.grids);
            for key in plan.set.keys() {
                let key = known_key("set", key)?;
                if keys.iter().any(|k| k == key) {
                    return Err(SweepProblem::SetAndGrid(key.to_string()));
                }
            }
        }
        let names_output_dir = |key: &str| key == "output_dir";
        let all_keys = plans.iter().flat_map(|p| union_of_keys(&p.grids));
        if all_keys.into_iter().any(|k| names_output_dir(&k))
            || plans.iter().any(|p| {
                p.set
                    .keys()
                    .any(|k| k.as_str().is_some_and(names_output_dir))
            })
            || overrides.iter().any(|o| {
                o.split('=')
                    .next()
                    .is_some_and(|k| names_output_dir(k.trim()))
            })
        {
            return Err(SweepProblem::OutputDir);
        }
        Ok(plans)
    }

    /// One stage of `stages:`, checked against the stages before it (`earlier`).
    fn stage_plan<'a>(
        &'a self,
        stage: &'a StageSpec,
        earlier: &[StagePlan<'a>],
    ) -> Result<StagePlan<'a>, SweepProblem> {
        if !is_plain_name(&stage.name) {
            return Err(SweepProblem::StageName(stage.name.clone()));
        }
        if earlier
            .iter()
            .any(|p| p.name.as_deref() == Some(stage.name.as_str()))
        {
            return Err(SweepProblem::StageTwice(stage.name.clone()));
        }
        let mut set = self.set.clone();
        for (key, value) in &stage.set {
            let text = known_key("set", key)?;
            if self.set.contains_key(key) {
                return Err(SweepProblem::SetTwice {
                    stage: stage.name.clone(),
                    key: text.to_string(),
                });
            }
            set.insert(key.clone(), value.clone());
        }
        let grids = checked_grids(&stage.grid)?;
        if let Some(from) = &stage.init_adapter {
            let in_grid = union_of_keys(&grids).iter().any(|k| k == INIT_ADAPTER);
            if in_grid || set.contains_key(INIT_ADAPTER) {
                return Err(SweepProblem::InitAdapterTwice {
                    stage: stage.name.clone(),
                    place: if in_grid { "its grid" } else { "set" }.to_string(),
                });
            }
            for key in &from.match_keys {
                dept_train::config::check_key(key).map_err(|problem| SweepProblem::UnknownKey {
                    section: "init_adapter.match",
                    problem: problem.to_string(),
                })?;
            }
        }
        Ok(StagePlan {
            name: Some(stage.name.clone()),
            base: stage.base.as_ref().or(self.base.as_ref()),
            set,
            grids,
            init: stage.init_adapter.clone(),
        })
    }
}

/// The experiment key a stage fills in from its source stage.
pub const INIT_ADAPTER: &str = "init_adapter";

fn is_plain_name(name: &str) -> bool {
    let plain = |c: char| c.is_ascii_alphanumeric() || "-_.".contains(c);
    !name.is_empty() && name.chars().all(plain)
}

/// Each stage's `from_stage` names an earlier stage: an unknown one, the stage itself or a chain that comes back
/// to it (a cycle), and a later one are refused, each with its own message.
fn check_sources(stages: &[StageSpec]) -> Result<(), SweepProblem> {
    let index_of = |name: &str| stages.iter().position(|s| s.name == name);
    let source_of = |i: usize| {
        stages[i]
            .init_adapter
            .as_ref()
            .map(|f| f.from_stage.as_str())
    };
    for (i, stage) in stages.iter().enumerate() {
        let Some(from) = source_of(i) else {
            continue;
        };
        let Some(mut next) = index_of(from) else {
            return Err(SweepProblem::UnknownStage {
                stage: stage.name.clone(),
                from: from.to_string(),
                known: stages.iter().map(|s| s.name.clone()).collect(),
            });
        };
        let mut path = vec![stage.name.clone()];
        loop {
            path.push(stages[next].name.clone());
            if next == i {
                return Err(SweepProblem::Cycle { path });
            }
            match source_of(next).and_then(index_of) {
                Some(further) if path.len() <= stages.len() => next = further,
                _ => break,
            }
        }
        if index_of(from).is_some_and(|j| j > i) {
            return Err(SweepProblem::LaterStage {
                stage: stage.name.clone(),
                from: from.to_string(),
            });
        }
    }
    Ok(())
}

/// The grids of `grid:` (one, or each of a union), keys in the order written.
fn checked_grids(spec: &GridSpec) -> Result<Vec<Vec<GridKey>>, SweepProblem> {
    let mut grids = Vec::new();
    for mapping in spec.grids() {
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
    Ok(grids)
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

/// Applies `--set key=value` items to `set`: each must be a known key that is not a grid key of `file`, nor
/// `init_adapter` where the stage `filled_by` fills it in.
fn apply_overrides(
    file: &Path,
    grid_keys: &[String],
    filled_by: Option<&str>,
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
        if let (Some(stage), INIT_ADAPTER) = (filled_by, key) {
            return Err(bad(OverrideProblem::FilledByStage {
                stage: stage.to_string(),
                file: file.to_path_buf(),
            }));
        }
        let value: Value =
            serde_yaml::from_str(raw).map_err(|e| bad(OverrideProblem::NotYaml(e)))?;
        set.insert(Value::String(key.to_string()), value);
    }
    Ok(())
}

/// Every point of one stage's grids, appended to `points` (which holds the earlier stages' points: a name may not
/// repeat across them), each config checked as `dept train` would check it. A stage that starts from another
/// gets `init_adapter` set to the link [`crate::stages`] makes for its match values.
fn expand(file: &Path, plan: &StagePlan<'_>, out: &Path, points: &mut Vec<Point>) -> Result<()> {
    let base_dir = file.parent().unwrap_or(Path::new("."));
    let mut widths = BTreeMap::new();
    for combination in plan.grids.iter().flat_map(|grid| product(grid)) {
        let values: Vec<(String, String)> = combination
            .iter()
            .map(|(k, v)| (k.clone(), scalar_text(v)))
            .collect();
        let id = match &plan.name {
            Some(stage) => format!("{stage}__{}", point_id(&values)),
            None => point_id(&values),
        };
        if let Some(other) = points.iter().find(|p| p.id == id) {
            return Err(SweepError::BadSweep {
                file: file.to_path_buf(),
                problem: SweepProblem::SameName {
                    id,
                    other: other.values.clone(),
                },
            });
        }
        let mut config = match plan.base {
            Some(base) => read_base(base_dir, base, &combination, &plan.set)?,
            None => Mapping::new(),
        };
        for (k, v) in &plan.set {
            config.insert(k.clone(), v.clone());
        }
        for (k, v) in &combination {
            config.insert(Value::String(k.clone()), v.clone());
        }
        if let (Some(stage), Some(from)) = (&plan.name, &plan.init) {
            let bad = |problem| SweepError::BadSweep {
                file: file.to_path_buf(),
                problem,
            };
            if config.get(INIT_ADAPTER).is_some_and(|v| !v.is_null()) {
                return Err(bad(SweepProblem::InitAdapterTwice {
                    stage: stage.clone(),
                    place: format!("the base config of point {id}"),
                }));
            }
            let link = crate::stages::link_of(from, &config, &id).map_err(bad)?;
            config.insert(
                Value::String(INIT_ADAPTER.into()),
                Value::String(out.join(link).display().to_string()),
            );
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
    Ok(())
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

    const STAGED: &str = "name: t
set: {max_len: 64}
stages:
  - name: source
    set: {task: mnli, max_steps: 10}
    grid:
      - {method: dept, prompt_len: 4, rank: 2, seed: [1, 2]}
      - {method: pt, prompt_len: 8, rank: 0}
  - name: target
    set: {max_steps: 3}
    init_adapter: {from_stage: source, match: [method]}
    grid:
      - {task: [rte, cb], method: dept, prompt_len: 4, rank: 2, k_shot: [4, 16]}
      - {task: [rte], method: pt, prompt_len: 8, rank: 0, k_shot: [4]}
";

    #[test]
    fn stages_expand_in_order_and_targets_start_from_the_link_of_their_match_values() {
        let dir = tempfile::tempdir().unwrap();
        let s = sweep(dir.path(), STAGED).unwrap();
        assert_eq!(s.points.len(), 3 + 5);
        assert_eq!(
            s.stages
                .iter()
                .map(|st| st.points.clone())
                .collect::<Vec<_>>(),
            [0..3, 3..8]
        );
        assert_eq!(
            s.points[0].id,
            "source__method-dept__prompt_len-4__rank-2__seed-1"
        );
        assert_eq!(
            s.points[3].id,
            "target__task-rte__method-dept__prompt_len-4__rank-2__k_shot-4"
        );
        // The file's set and each stage's apply to that stage's points only.
        assert_eq!(s.points[0].config.get("max_steps"), Some(&Value::from(10)));
        assert_eq!(s.points[3].config.get("max_steps"), Some(&Value::from(3)));
        assert_eq!(s.points[3].config.get("max_len"), Some(&Value::from(64)));
        assert_eq!(s.points[0].config.get(INIT_ADAPTER), None);
        let link = |i: usize| scalar_text(s.points[i].config.get(INIT_ADAPTER).unwrap());
        assert!(
            link(3).ends_with("out/stages/source/best/method-dept"),
            "{}",
            link(3)
        );
        assert!(
            link(7).ends_with("out/stages/source/best/method-pt"),
            "{}",
            link(7)
        );
        let init = s.stages[1].init.as_ref().unwrap();
        assert_eq!(init.picks.len(), 2);
        assert_eq!(init.picks[0].candidates.len(), 2);
        assert_eq!(init.picks[0].users.len(), 4);
        assert_eq!(init.picks[1].candidates, [s.points[2].id.clone()]);
        // The manifest keeps the stages (what `dept sweep pick` reads) and each point's stage.
        s.write().unwrap();
        let manifest: Manifest =
            serde_json::from_str(&std::fs::read_to_string(s.out.join("sweep.json")).unwrap())
                .unwrap();
        assert_eq!(manifest.stage_points("source").len(), 3);
        assert_eq!(
            manifest.stage("target").unwrap().init_adapter.as_ref(),
            Some(init)
        );
        assert_eq!(manifest.points[4].values["seed"], NOT_IN_POINT_GRID);
        // A plain sweep's manifest has no stages, as before.
        let plain = sweep(dir.path(), "name: p\nset: {task: rte}\ngrid: {seed: [1]}\n").unwrap();
        plain.write().unwrap();
        let text = std::fs::read_to_string(plain.out.join("sweep.json")).unwrap();
        assert!(!text.contains("stage"), "{text}");
        assert!(!plain.is_staged() && s.is_staged());
    }

    #[test]
    fn bad_stages_are_refused_with_the_reason() {
        let dir = tempfile::tempdir().unwrap();
        let err = |text: &str| format!("{:#}", sweep(dir.path(), text).unwrap_err());
        let two = |first: &str, second: &str| {
            format!(
                "name: t\nset: {{task: rte}}\nstages:\n  - {{name: a, grid: {{seed: [1]}}{first}}}\n  - {{name: b, grid: {{seed: [2]}}{second}}}\n"
            )
        };
        let from = |stage: &str| format!(", init_adapter: {{from_stage: {stage}}}");
        let unknown = err(&two("", &from("sourse")));
        assert!(
            unknown.contains("stage `sourse`") && unknown.contains("a, b"),
            "{unknown}"
        );
        let cycle = err(&two(&from("b"), &from("a")));
        assert!(cycle.contains("cycle: a → b → a"), "{cycle}");
        assert!(err(&two(&from("a"), "")).contains("cycle: a → a"));
        assert!(err(&two(&from("b"), "")).contains("listed after it"));
        // init_adapter by hand beside a stage's source: in its set, its grid, the file's set, --set.
        let by_hand = err(&two(
            "",
            ", set: {init_adapter: x}, init_adapter: {from_stage: a}",
        ));
        assert!(by_hand.contains("also given by hand in set"), "{by_hand}");
        let in_grid = err(
            "name: t\nset: {task: rte}\nstages:\n  - {name: a, grid: {seed: [1]}}\n  - {name: b, grid: {init_adapter: [x]}, init_adapter: {from_stage: a}}\n",
        );
        assert!(in_grid.contains("by hand in its grid"), "{in_grid}");
        let file = dir.path().join("sweep.yaml");
        std::fs::write(&file, two("", &from("a"))).unwrap();
        let set = format!(
            "{:#}",
            Sweep::load(
                &file,
                Some(&dir.path().join("out")),
                &["init_adapter=x".into()]
            )
            .unwrap_err()
        );
        assert!(set.contains("--set cannot give it"), "{set}");
        // A target no source point matches, a match key a point lacks, and the other shape errors.
        let unmatched = err(
            "name: t\nset: {task: rte}\nstages:\n  - {name: a, grid: {method: dept, seed: [1]}}\n  - {name: b, grid: {method: pt, rank: 0, seed: [2]}, init_adapter: {from_stage: a, match: [method]}}\n",
        );
        assert!(
            unmatched.contains("method=pt, and no point of stage a does"),
            "{unmatched}"
        );
        assert!(
            err(&two("", ", init_adapter: {from_stage: a, match: [method]}"))
                .contains("no value for `method`")
        );
        assert!(err("name: t\ngrid: {seed: [1]}\nstages: []\n").contains("not both"));
        assert!(err("name: t\nstages: []\n").contains("stages is an empty list"));
        assert!(err(&two("", "").replace("name: b", "name: a")).contains("two stages are named"));
        assert!(err("name: t\nset: {seed: 1}\nstages:\n  - {name: a, set: {seed: 2}, grid: {lr_pair: [1]}}\n")
            .contains("both in the file's set and in the stage's"));
        assert!(
            err(&two("", ", init_adapter: {from_stage: a, match: [methd]}"))
                .contains("did you mean `method`")
        );
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
