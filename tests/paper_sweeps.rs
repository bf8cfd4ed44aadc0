//! The paper's sweep files (`configs/sweeps/table*.yaml`, `figure*.yaml`, issue 22): each expands to the point
//! count that configs/sweeps/README.md states, every point checked as `dept train` would check it against a
//! stand-in for its model's width d (a `config.json` alone: the budget arithmetic reads nothing else); and a tiny
//! version of each, one point per grid of the file on tiny random models and real rows, trains end to end through
//! `dept sweep run`.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_yaml::{Mapping, Value};

fn dept() -> Command {
    Command::new(env!("CARGO_BIN_EXE_dept"))
}

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn sweeps_dir() -> PathBuf {
    repo().join("configs/sweeps")
}

fn run_ok(command: &mut Command) -> Output {
    let output = command.output().expect("start dept");
    assert!(
        output.status.success(),
        "{command:?} failed ({}):\n{}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

/// The model each paper sweep is meant for, by the `config.json` that stands in for it.
#[derive(Clone, Copy, Debug)]
enum Backbone {
    T5Base,
    T53b,
    Llama2,
}

impl Backbone {
    fn config_json(self) -> &'static str {
        match self {
            Backbone::T5Base => r#"{"model_type": "t5", "d_model": 768}"#,
            Backbone::T53b => r#"{"model_type": "t5", "d_model": 1024}"#,
            Backbone::Llama2 => r#"{"model_type": "llama", "hidden_size": 4096}"#,
        }
    }
}

/// Every paper sweep file and its model.
const PAPER_SWEEPS: [(&str, Backbone); 8] = [
    ("table1", Backbone::T5Base),
    ("table2", Backbone::T5Base),
    ("table4-5", Backbone::T5Base),
    ("figure3", Backbone::T5Base),
    ("figure5", Backbone::T5Base),
    ("table6", Backbone::Llama2),
    ("table7", Backbone::T53b),
    ("table8", Backbone::T5Base),
];

/// The point counts of configs/sweeps/README.md's table: for each row `| \`NAME.yaml\` | … | … = N |`, N (the
/// last number of the last cell).
fn readme_counts() -> Vec<(String, usize)> {
    let readme = std::fs::read_to_string(sweeps_dir().join("README.md")).unwrap();
    readme
        .lines()
        .filter_map(|line| {
            let name = line.strip_prefix("| `")?.split_once(".yaml`")?.0;
            let last_cell = line.trim_end().trim_end_matches('|').rsplit('|').next()?;
            let count = last_cell.rsplit('=').next()?.trim().replace(',', "");
            Some((name.to_string(), count.parse().ok()?))
        })
        .collect()
}

#[test]
fn every_paper_sweep_expands_to_the_count_its_readme_states_and_each_point_is_checked() {
    let counts = readme_counts();
    // Every paper sweep file in the folder is in the table (and in PAPER_SWEEPS), so none goes uncounted.
    for entry in std::fs::read_dir(sweeps_dir()).unwrap() {
        let name = entry.unwrap().file_name().to_string_lossy().to_string();
        if let Some(stem) = name.strip_suffix(".yaml") {
            if stem.starts_with("table") || stem.starts_with("figure") {
                assert!(
                    PAPER_SWEEPS.iter().any(|(file, _)| *file == stem),
                    "{name} is not in PAPER_SWEEPS"
                );
            }
        }
    }
    let dir = tempfile::tempdir().unwrap();
    for (file, backbone) in PAPER_SWEEPS {
        let stated = counts
            .iter()
            .find(|(name, _)| name == file)
            .unwrap_or_else(|| panic!("configs/sweeps/README.md has no row for {file}.yaml"))
            .1;
        let model = dir.path().join(format!("{backbone:?}"));
        std::fs::create_dir_all(&model).unwrap();
        std::fs::write(model.join("config.json"), backbone.config_json()).unwrap();
        let output = run_ok(
            dept()
                .current_dir(repo())
                .arg("sweep")
                .arg("run")
                .arg(sweeps_dir().join(format!("{file}.yaml")))
                .arg("--dry-run")
                .arg("--out")
                .arg(dir.path().join(file))
                .arg("--set")
                .arg(format!("model={:?}", model.display().to_string())),
        );
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            stdout.contains(&format!("sweep {file}: {stated} points, 0 done")),
            "{file}: the README states {stated} points:\n{stdout}"
        );
    }
}

/// The machinery checks the shape of every point against the model: a budget no split of the m grid meets is
/// refused before anything runs (here figure3's l = 100 at s = 256 on a d = 1000 stand-in, where m = 0 needs
/// r = 100,000 / 1,256).
#[test]
fn a_paper_sweep_whose_budget_the_model_cannot_meet_is_refused_naming_the_point() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("odd");
    std::fs::create_dir_all(&model).unwrap();
    std::fs::write(
        model.join("config.json"),
        r#"{"model_type": "t5", "d_model": 1000}"#,
    )
    .unwrap();
    let output = dept()
        .current_dir(repo())
        .args([
            "sweep",
            "run",
            "configs/sweeps/figure3.yaml",
            "--dry-run",
            "--out",
        ])
        .arg(dir.path().join("out"))
        .arg("--set")
        .arg(format!("model={:?}", model.display().to_string()))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(
        stderr.contains("prompt_len-0") && stderr.contains("no integer rank"),
        "{stderr}"
    );
}

/// Tasks whose rows the tiny runs can read: the real files under ../shared/data, and Natural Questions from the
/// fixture [`mrqa_fixture`] writes.
const TASKS_WITH_DATA: [&str; 11] = [
    "cola",
    "sst2",
    "mrpc",
    "stsb",
    "rte",
    "multirc",
    "boolq",
    "wic",
    "wsc",
    "cb",
    "natural_questions",
];

/// A data folder: every folder of ../shared/data (linked), and an MRQA folder in the MRQA release format made of
/// the shared NewsQA sample's paragraphs (repeated, so that the held-out validation split leaves training rows),
/// read as Natural Questions.
fn data_dir(shared: &Path, dir: &Path) -> PathBuf {
    let data = dir.join("data");
    std::fs::create_dir_all(data.join("MRQA")).unwrap();
    for entry in std::fs::read_dir(shared.join("data")).unwrap() {
        let entry = entry.unwrap();
        if entry.file_name() != "MRQA" {
            std::os::unix::fs::symlink(entry.path(), data.join(entry.file_name())).unwrap();
        }
    }
    let sample = std::fs::read_to_string(shared.join("data/MRQA/NewsQA_sample.jsonl")).unwrap();
    let (header, paragraphs) = sample.split_once('\n').unwrap();
    let train = format!("{header}\n{}", paragraphs.repeat(140));
    std::fs::write(data.join("MRQA/train.jsonl"), train).unwrap();
    std::fs::write(data.join("MRQA/dev.jsonl"), &sample).unwrap();
    data
}

/// A tiny random model folder of `arch` with the real tokenizer of its family.
fn tiny_model(shared: &Path, dir: &Path, arch: &str) -> PathBuf {
    let model = dir.join(format!("tiny-{arch}"));
    let tokenizer = match arch {
        "llama" => "gpt2",
        _ => "t5",
    };
    run_ok(
        dept()
            .args(["tiny-model", "--quiet", "--arch", arch, "--out"])
            .arg(&model)
            .arg("--tokenizer")
            .arg(shared.join(format!("tokenizers/{tokenizer}/tokenizer.json"))),
    );
    model
}

/// Keys every tiny point gets (`--set`): a few steps on a few rows, on the CPU.
fn tiny_overrides(model: &Path, data: &Path) -> Vec<String> {
    let mut items = vec![
        format!("model={:?}", model.display().to_string()),
        format!("data_dir={:?}", data.display().to_string()),
    ];
    items.extend(
        [
            "max_len=64",
            "max_steps=2",
            "eval_every=1",
            "save_every=2",
            "warmup_steps=0",
            "batch_size=4",
            "grad_accum=1",
            "eval_batch_size=8",
            "max_train_examples=32",
            "max_eval_examples=8",
            "decode_max_tokens=3",
            "prompt_init=random",
            "device=cpu",
            "precision=fp32",
        ]
        .map(String::from),
    );
    items
}

/// The tiny shapes at the tiny models' d: DePT m = 4, r = 2; PT l = 4.
const TINY_PROMPT_LEN: i64 = 4;
const TINY_RANK: i64 = 2;

/// A key of a tiny grid: a single value (a grid key stays a grid key, so that the point names keep its value).
fn put(grid: &mut Mapping, key: &str, value: Value) {
    grid.insert(Value::from(key), value);
}

/// `sweep`, cut to one point per grid: each list reduced to its first value (the task to the first that has
/// data here), the shape to the tiny one, and `base` made absolute (the tiny file lives elsewhere). Grids none of
/// whose tasks has data are left out, except in a stage (the few-shot sweep's source stage trains on MNLI, which
/// has no rows here): there RTE stands in, so that the stage still runs and the next starts from it. Returns the
/// tiny sweep and its point count.
fn tiny_version(sweep: &Value) -> (Value, usize) {
    let mut tiny = sweep.clone();
    let map = tiny.as_mapping_mut().unwrap();
    let set_keys = set_keys_of(map);
    absolute_base(map);
    if let Some(Value::Sequence(stages)) = map.get_mut("stages") {
        let mut points = 0;
        for stage in stages {
            let stage = stage.as_mapping_mut().unwrap();
            absolute_base(stage);
            let mut keys = set_keys.clone();
            keys.extend(set_keys_of(stage));
            let (grids, n) = tiny_grids(stage.get("grid").unwrap(), &keys, Some("rte"));
            assert!(n > 0, "a stage without points");
            stage.insert(Value::from("grid"), grids);
            points += n;
        }
        return (tiny, points);
    }
    let (grids, points) = tiny_grids(map.get("grid").unwrap(), &set_keys, None);
    map.insert(Value::from("grid"), grids);
    (tiny, points)
}

/// The keys of a sweep's (or a stage's) `set`.
fn set_keys_of(map: &Mapping) -> Vec<String> {
    map.get("set")
        .and_then(Value::as_mapping)
        .map(|set| {
            set.keys()
                .filter_map(|k| k.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

/// `base:` made absolute, where the mapping has one.
fn absolute_base(map: &mut Mapping) {
    if let Some(base) = map.get_mut("base") {
        let absolute =
            |t: &Value| Value::from(sweeps_dir().join(t.as_str().unwrap()).display().to_string());
        let absolute_base = match &*base {
            Value::Sequence(list) => Value::Sequence(list.iter().map(absolute).collect()),
            one => absolute(one),
        };
        *base = absolute_base;
    }
}

/// The tiny grids of `grid` (one point each) and how many there are; `stand_in`: the task of a grid none of whose
/// tasks has data (else such a grid is left out).
fn tiny_grids(grid: &Value, set_keys: &[String], stand_in: Option<&str>) -> (Value, usize) {
    let grids = match grid {
        Value::Sequence(list) => list.clone(),
        one => vec![one.clone()],
    };
    let mut tiny_grids = Vec::new();
    for grid in grids {
        let mut grid = grid.as_mapping().unwrap().clone();
        if let Some(tasks) = grid.get("task") {
            let tasks: Vec<Value> = match tasks {
                Value::Sequence(list) => list.clone(),
                one => vec![one.clone()],
            };
            let with_data = tasks
                .into_iter()
                .find(|t| TASKS_WITH_DATA.contains(&t.as_str().unwrap()));
            let Some(task) = with_data.or_else(|| stand_in.map(Value::from)) else {
                continue;
            };
            put(&mut grid, "task", task);
        }
        for (_, value) in grid.iter_mut() {
            if let Value::Sequence(list) = value {
                *value = list[0].clone();
            }
        }
        let pt = grid.get("method").and_then(Value::as_str) == Some("pt");
        for key in ["prompt_len", "rank", "budget"] {
            assert!(
                !set_keys.iter().any(|k| k == key),
                "the tiny rewrite expects {key} in the grids, not in set"
            );
        }
        grid.remove("budget");
        put(&mut grid, "prompt_len", Value::from(TINY_PROMPT_LEN));
        put(
            &mut grid,
            "rank",
            Value::from(if pt { 0 } else { TINY_RANK }),
        );
        tiny_grids.push(Value::Mapping(grid));
    }
    let points = tiny_grids.len();
    (Value::Sequence(tiny_grids), points)
}

/// The header and the one row of a run's `results.csv`.
fn results(run_dir: &Path) -> Vec<(String, String)> {
    let text = std::fs::read_to_string(run_dir.join("results.csv")).unwrap();
    let mut lines = text.lines();
    let header = lines.next().unwrap().split(',').map(String::from);
    let row = lines.next().unwrap().split(',').map(String::from);
    header.zip(row).collect()
}

#[test]
fn a_tiny_version_of_every_paper_sweep_trains_through_the_sweep_runner() {
    let Some(shared) = common::shared_dir() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let data = data_dir(&shared, dir.path());
    let t5 = tiny_model(&shared, dir.path(), "t5");
    let llama = tiny_model(&shared, dir.path(), "llama");
    for (file, backbone) in PAPER_SWEEPS {
        let text = std::fs::read_to_string(sweeps_dir().join(format!("{file}.yaml"))).unwrap();
        let (tiny, points) = tiny_version(&serde_yaml::from_str(&text).unwrap());
        assert!(points > 0, "{file}: no grid has a task with data here");
        let tiny_file = dir.path().join(format!("{file}-tiny.yaml"));
        std::fs::write(&tiny_file, serde_yaml::to_string(&tiny).unwrap()).unwrap();
        let model = match backbone {
            Backbone::Llama2 => &llama,
            Backbone::T5Base | Backbone::T53b => &t5,
        };
        let out = dir.path().join("out").join(file);
        let mut command = dept();
        command
            .current_dir(dir.path())
            .args(["sweep", "run"])
            .arg(&tiny_file)
            .args(["--slots", "2", "--out"])
            .arg(&out);
        for item in tiny_overrides(model, &data) {
            command.arg("--set").arg(item);
        }
        let output = run_ok(&mut command);
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(stdout.contains("every point is done"), "{file}: {stdout}");
        let runs: Vec<PathBuf> = std::fs::read_dir(out.join("runs"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        assert_eq!(runs.len(), points, "{file}: {runs:?}");
        for run in &runs {
            let row = results(run);
            let value = |key: &str| {
                row.iter()
                    .find(|(k, _)| k == key)
                    .map(|(_, v)| v.as_str())
                    .unwrap_or_else(|| panic!("{}: no {key} in {row:?}", run.display()))
            };
            assert_eq!(value("steps"), "2", "{}", run.display());
            let id = run.file_name().unwrap().to_string_lossy().to_string();
            if id.contains("method-pt") {
                assert_eq!(
                    (value("method"), value("r")),
                    ("pt", "0"),
                    "{}",
                    run.display()
                );
            }
            // Table 2's MRQA points pick their best checkpoint by F1, the table's metric.
            if id.contains("best_metric-f1") {
                assert_eq!(value("task"), "natural_questions");
                assert!(!value("validation_f1").is_empty(), "{row:?}");
            }
        }
        // The report reads the union's manifest: every point finished, a PT row's α2 column `-`.
        let report = run_ok(dept().args(["sweep", "report"]).arg(&out));
        let markdown = String::from_utf8_lossy(&report.stdout);
        assert!(
            markdown.contains(&format!("{points} of {points} points finished")),
            "{file}: {markdown}"
        );
        let csv = std::fs::read_to_string(out.join("report.csv")).unwrap();
        let header: Vec<&str> = csv.lines().next().unwrap().split(',').collect();
        let columns = (
            header.iter().position(|h| *h == "method"),
            header.iter().position(|h| *h == "lr_pair"),
        );
        if file == "table1" {
            assert!(columns.0.is_some() && columns.1.is_some(), "{csv}");
        }
        if let (Some(method), Some(lr_pair)) = columns {
            for line in csv.lines().skip(1) {
                let cells: Vec<&str> = line.split(',').collect();
                // Every grid of a paper sweep names its method, so each row says which it is.
                assert!(["dept", "pt"].contains(&cells[method]), "{file}: {csv}");
                if cells[method] == "pt" {
                    assert_eq!(cells[lr_pair], "-", "{file}: {csv}");
                }
            }
        }
        // The few-shot sweep trains its source stage first and starts each target from the source of its method.
        if file == "table4-5" {
            for method in ["dept", "pt"] {
                let link = out.join(format!("stages/source/best/method-{method}"));
                let target = std::fs::read_link(&link).unwrap();
                assert!(
                    target.to_string_lossy().starts_with(&format!(
                        "../../../runs/source__task-rte__method-{method}__"
                    )),
                    "{}: {}",
                    link.display(),
                    target.display()
                );
                let log: String = runs
                    .iter()
                    .map(|r| r.file_name().unwrap().to_string_lossy().to_string())
                    .filter(|id| {
                        id.starts_with("target__") && id.contains(&format!("method-{method}"))
                    })
                    .map(|id| {
                        std::fs::read_to_string(out.join("logs").join(format!("{id}.log"))).unwrap()
                    })
                    .collect();
                assert!(log.contains("adapter initialised from"), "{method}: {log}");
            }
            assert!(
                markdown.contains("## Sweep table4-5, stage target"),
                "{markdown}"
            );
        }
        if file == "table2" {
            assert!(
                runs.iter()
                    .any(|r| r.to_string_lossy().contains("best_metric-f1")),
                "table2 ran no MRQA point: {runs:?}"
            );
        }
    }
}
