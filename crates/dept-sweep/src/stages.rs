//! Stages: a later stage's points start from the best adapter of an earlier stage (source-task transfer, the
//! official code's `--peft_model_id`). Each target point's config names a fixed link in the sweep folder,
//! `stages/<source>/best/<match values>` (`stages/source/best/method-dept`), as its `init_adapter`, so its config
//! is known (and checked, and fingerprinted by `dept train`) before the source stage has run. When the stage
//! starts, [`pick`] chooses, per link, the source point with the best validation score and points the link at its
//! `best/` folder. The local runner calls it before it starts the stage; on Slurm every array task of the stage
//! calls it (`dept sweep pick`) before it trains, once the array it depends on has succeeded. It reads only the
//! sweep folder (`sweep.json` and the source points' `results.csv`), so it gives every caller the same answer.

use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_yaml::Mapping;

use crate::error::{Result, SweepError, SweepProblem};
use crate::spec::{point_id, scalar_text, FromStage, Manifest, Pick, Point, Stage, StageInit};

/// The name of the link a stage without match keys uses: the best of the whole source stage.
const WHOLE_STAGE: &str = "all";

/// The values of `keys` in a point's full config, or the key it lacks.
fn match_values(keys: &[String], config: &Mapping) -> Result<Vec<(String, String)>, String> {
    keys.iter()
        .map(|key| match config.get(key.as_str()) {
            Some(value) if !value.is_null() => Ok((key.clone(), scalar_text(value))),
            _ => Err(key.clone()),
        })
        .collect()
}

/// The link (relative to the sweep folder) that point `id` of a stage starting `from` another takes as its
/// `init_adapter`.
pub(crate) fn link_of(
    from: &FromStage,
    config: &Mapping,
    id: &str,
) -> Result<PathBuf, SweepProblem> {
    let values =
        match_values(&from.match_keys, config).map_err(|key| SweepProblem::MatchKeyMissing {
            id: id.to_string(),
            key,
        })?;
    let name = match values.is_empty() {
        true => WHOLE_STAGE.to_string(),
        false => point_id(&values),
    };
    Ok(Path::new("stages")
        .join(&from.from_stage)
        .join("best")
        .join(name))
}

/// The picks of stage `index` (which starts `from` an earlier stage): one per link its points use, each with the
/// source points sharing its match values. A target point no source point matches is refused here, before
/// anything runs.
pub(crate) fn plan_picks(
    stages: &[Stage],
    index: usize,
    from: &FromStage,
    points: &[Point],
) -> Result<StageInit, SweepProblem> {
    let stage_name = stages[index].name.clone().unwrap_or_default();
    let source = stages
        .iter()
        .find(|s| s.name.as_deref() == Some(from.from_stage.as_str()))
        .ok_or_else(|| SweepProblem::UnknownStage {
            stage: stage_name.clone(),
            from: from.from_stage.clone(),
            known: stages.iter().filter_map(|s| s.name.clone()).collect(),
        })?;
    let mut picks: Vec<Pick> = Vec::new();
    for point in &points[stages[index].points.clone()] {
        let link = link_of(from, &point.config, &point.id)?;
        if let Some(pick) = picks.iter_mut().find(|p| p.link == link) {
            pick.users.push(point.id.clone());
            continue;
        }
        let values = match_values(&from.match_keys, &point.config).unwrap_or_default();
        let mut candidates = Vec::new();
        for candidate in &points[source.points.clone()] {
            let theirs = match_values(&from.match_keys, &candidate.config).map_err(|key| {
                SweepProblem::MatchKeyMissing {
                    id: candidate.id.clone(),
                    key,
                }
            })?;
            if theirs == values {
                candidates.push(candidate.id.clone());
            }
        }
        if candidates.is_empty() {
            return Err(SweepProblem::NoSourcePoint {
                stage: stage_name,
                id: point.id.clone(),
                from: from.from_stage.clone(),
                values,
            });
        }
        picks.push(Pick {
            link,
            values: values.into_iter().collect(),
            candidates,
            users: vec![point.id.clone()],
        });
    }
    Ok(StageInit {
        from: from.clone(),
        picks,
    })
}

/// What a pick chose, kept beside its link (`<link>.json`) for `status` and the report.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Chosen {
    /// The link, relative to the sweep folder.
    pub link: PathBuf,
    /// The source point whose `best/` adapter the link points at.
    pub point: String,
    pub task: Option<String>,
    /// Its `validation_*` column (the metric its own `dept train` picked its best checkpoint by), and the value.
    pub metric: String,
    pub value: f64,
    /// Every candidate with its score (`None`: no validation score), in grid order.
    pub candidates: BTreeMap<String, Option<f64>>,
}

/// Chooses the source point of every pick of stage `stage` of the sweep folder `out` and points each link at its
/// `best/` adapter. Refused while a candidate has not finished, when the candidates are of different tasks (their
/// scores do not compare), when none has a score, and when a link would change after a point using it started.
pub fn pick(out: &Path, stage: &str) -> Result<Vec<Chosen>> {
    let manifest = crate::report::read_manifest(&out.join("sweep.json"))?;
    let Some(init) = stage_init(&manifest, stage)? else {
        return Ok(Vec::new());
    };
    init.picks
        .iter()
        .map(|pick| choose(out, stage, &init.from, pick).and_then(|c| link(out, pick, c)))
        .collect()
}

/// How stage `stage` of `manifest` starts: `None` for a stage that starts afresh.
fn stage_init<'a>(manifest: &'a Manifest, stage: &str) -> Result<Option<&'a StageInit>> {
    match manifest.stage(stage) {
        Some(found) => Ok(found.init_adapter.as_ref()),
        None => Err(SweepError::NoSuchStage {
            stage: stage.to_string(),
            known: manifest.stages.iter().map(|s| s.name.clone()).collect(),
        }),
    }
}

/// The best candidate of `pick` by its validation score (the first on ties).
fn choose(out: &Path, stage: &str, from: &FromStage, pick: &Pick) -> Result<Chosen> {
    let mut unfinished = Vec::new();
    let mut scored = Vec::new();
    for id in &pick.candidates {
        let path = out.join("runs").join(id).join("results.csv");
        match path.is_file() {
            true => match crate::report::read_results(&path)? {
                Some(results) => scored.push((id.clone(), results)),
                None => unfinished.push(id.clone()),
            },
            false => unfinished.push(id.clone()),
        }
    }
    if !unfinished.is_empty() {
        return Err(SweepError::SourceNotDone {
            stage: stage.to_string(),
            from: from.from_stage.clone(),
            points: unfinished,
        });
    }
    let mut tasks: Vec<String> = scored.iter().filter_map(|(_, r)| r.task.clone()).collect();
    tasks.sort();
    tasks.dedup();
    if tasks.len() > 1 {
        return Err(SweepError::SourceTasks {
            link: pick.link.clone(),
            tasks,
        });
    }
    let mut best: Option<(usize, String, f64)> = None;
    let mut candidates = BTreeMap::new();
    for (i, (id, results)) in scored.iter().enumerate() {
        let score = results.validation().filter(|(_, v)| !v.is_nan());
        candidates.insert(id.clone(), score.map(|(_, v)| v));
        if let Some((metric, value)) = score {
            if best.as_ref().is_none_or(|(_, _, top)| value > *top) {
                best = Some((i, metric.to_string(), value));
            }
        }
    }
    let Some((i, metric, value)) = best else {
        return Err(SweepError::NoSourceScore {
            link: pick.link.clone(),
            points: pick.candidates.clone(),
        });
    };
    Ok(Chosen {
        link: pick.link.clone(),
        point: scored[i].0.clone(),
        task: scored[i].1.task.clone(),
        metric,
        value,
        candidates,
    })
}

/// Points `pick`'s link at the chosen point's `best/` (a relative symbolic link, so the sweep folder can move),
/// replacing it atomically; refused when it pointed elsewhere and a point using it has started.
fn link(out: &Path, pick: &Pick, chosen: Chosen) -> Result<Chosen> {
    let path = out.join(&pick.link);
    let best = out.join("runs").join(&chosen.point).join("best");
    if !best.is_dir() {
        return Err(SweepError::io(
            "reading the best adapter of",
            best,
            std::io::Error::from(std::io::ErrorKind::NotFound),
        ));
    }
    let ups = pick.link.parent().map_or(0, |p| {
        p.components()
            .filter(|c| matches!(c, Component::Normal(_)))
            .count()
    });
    let target: PathBuf = std::iter::repeat_n(Path::new(".."), ups)
        .collect::<PathBuf>()
        .join("runs")
        .join(&chosen.point)
        .join("best");
    match std::fs::read_link(&path) {
        Ok(old) if old == target => {}
        Ok(old) => {
            let started: Vec<String> = pick
                .users
                .iter()
                .filter(|id| out.join("runs").join(id).exists())
                .cloned()
                .collect();
            if !started.is_empty() {
                return Err(SweepError::SourceChanged {
                    link: path,
                    was: old,
                    now: target,
                    started,
                });
            }
            replace_link(&path, &target)?;
        }
        Err(_) => replace_link(&path, &target)?,
    }
    let record = serde_json::to_string_pretty(&chosen)
        .map_err(|e| SweepError::serialize(format!("{}.json", path.display()), e))?;
    let record_path = path.with_file_name(format!(
        "{}.json",
        path.file_name()
            .map_or_else(String::new, |n| n.to_string_lossy().to_string())
    ));
    crate::write::write_file(&record_path, &(record + "\n"))?;
    Ok(chosen)
}

/// A new symbolic link at `path` to `target`, through a temporary name and a rename (never half made, and two
/// Slurm tasks doing it at once both leave the same link).
fn replace_link(path: &Path, target: &Path) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(|e| SweepError::io("creating", dir, e))?;
    let temporary = dir.join(format!(
        ".{}.{}.tmp",
        path.file_name()
            .map_or_else(String::new, |n| n.to_string_lossy().to_string()),
        std::process::id()
    ));
    let _ = std::fs::remove_file(&temporary);
    std::os::unix::fs::symlink(target, &temporary)
        .map_err(|e| SweepError::io("linking", &temporary, e))?;
    std::fs::rename(&temporary, path).map_err(|e| SweepError::io("renaming into", path, e))
}

/// What an earlier [`pick`] chose for `link` (relative to `out`), if it has run.
pub fn chosen(out: &Path, link: &Path) -> Option<Chosen> {
    let path = out.join(link);
    let name = path.file_name()?.to_string_lossy().to_string();
    let text = std::fs::read_to_string(path.with_file_name(format!("{name}.json"))).ok()?;
    serde_json::from_str(&text).ok()
}

/// `source: task-mnli__method-dept (validation_accuracy 84.1)` lines for a stage's picks that have been made.
pub fn describe_picks(out: &Path, init: &StageInit) -> Vec<String> {
    init.picks
        .iter()
        .map(|pick| {
            let what = match pick.values.is_empty() {
                true => WHOLE_STAGE.to_string(),
                false => pick
                    .values
                    .iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect::<Vec<_>>()
                    .join(", "),
            };
            match chosen(out, &pick.link) {
                Some(c) => format!("{what}: from {} ({} {})", c.point, c.metric, c.value),
                None => format!(
                    "{what}: the best of {} point(s) of stage {}, chosen when this stage starts",
                    pick.candidates.len(),
                    init.from.from_stage
                ),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_yaml::Value;

    fn text(value: &str) -> Value {
        Value::String(value.to_string())
    }

    fn point(id: &str, method: &str) -> Point {
        let mut config = Mapping::new();
        config.insert(text("method"), text(method));
        Point {
            id: id.to_string(),
            values: Vec::new(),
            config,
        }
    }

    fn results(dir: &Path, id: &str, task: &str, score: &str) {
        let run = dir.join("runs").join(id);
        std::fs::create_dir_all(run.join("best")).unwrap();
        std::fs::write(
            run.join("results.csv"),
            format!("task,steps,validation_accuracy,test_accuracy\n{task},2,{score},1\n"),
        )
        .unwrap();
    }

    /// A two-stage sweep folder: sources s-d1, s-d2 (dept), s-p (pt); targets t-d, t-p.
    fn folder(dir: &Path) -> Manifest {
        let points = vec![
            point("s-d1", "dept"),
            point("s-d2", "dept"),
            point("s-p", "pt"),
            point("t-d", "dept"),
            point("t-p", "pt"),
        ];
        let stages = vec![
            Stage {
                name: Some("s".into()),
                points: 0..3,
                init: None,
            },
            Stage {
                name: Some("t".into()),
                points: 3..5,
                init: None,
            },
        ];
        let from = FromStage {
            from_stage: "s".into(),
            match_keys: vec!["method".into()],
        };
        let init = plan_picks(&stages, 1, &from, &points).unwrap();
        assert_eq!(init.picks.len(), 2);
        assert_eq!(init.picks[0].link, Path::new("stages/s/best/method-dept"));
        assert_eq!(init.picks[0].candidates, ["s-d1", "s-d2"]);
        assert_eq!(init.picks[1].users, ["t-p"]);
        let manifest = Manifest {
            name: "x".into(),
            grid_keys: Vec::new(),
            points: points
                .iter()
                .enumerate()
                .map(|(i, p)| crate::spec::ManifestPoint {
                    id: p.id.clone(),
                    values: BTreeMap::new(),
                    stage: Some(if i < 3 { "s" } else { "t" }.into()),
                })
                .collect(),
            stages: vec![
                crate::spec::ManifestStage {
                    name: "s".into(),
                    init_adapter: None,
                },
                crate::spec::ManifestStage {
                    name: "t".into(),
                    init_adapter: Some(init),
                },
            ],
        };
        std::fs::write(
            dir.join("sweep.json"),
            serde_json::to_string(&manifest).unwrap(),
        )
        .unwrap();
        manifest
    }

    #[test]
    fn each_link_points_at_the_best_matching_source_and_waits_for_all_of_them() {
        let dir = tempfile::tempdir().unwrap();
        folder(dir.path());
        results(dir.path(), "s-d1", "mnli", "61.5");
        let err = pick(dir.path(), "t").unwrap_err().to_string();
        assert!(
            err.contains("s-d2") && err.contains("not finished"),
            "{err}"
        );
        results(dir.path(), "s-d2", "mnli", "70.25");
        results(dir.path(), "s-p", "mnli", "12");
        let chosen = pick(dir.path(), "t").unwrap();
        assert_eq!((chosen[0].point.as_str(), chosen[0].value), ("s-d2", 70.25));
        assert_eq!(chosen[1].point, "s-p");
        let link = dir.path().join("stages/s/best/method-dept");
        assert_eq!(
            std::fs::read_link(&link).unwrap(),
            Path::new("../../../runs/s-d2/best")
        );
        assert!(link.is_dir(), "the link resolves from the sweep folder");
        assert_eq!(
            super::chosen(dir.path(), Path::new("stages/s/best/method-dept")),
            Some(chosen[0].clone())
        );
        // Picking again gives the same links; a source whose scores changed after a target started is refused.
        pick(dir.path(), "t").unwrap();
        std::fs::create_dir_all(dir.path().join("runs/t-d")).unwrap();
        results(dir.path(), "s-d1", "mnli", "99");
        let err = pick(dir.path(), "t").unwrap_err().to_string();
        assert!(err.contains("t-d") && err.contains("s-d1"), "{err}");
        // An unknown stage is named with the known ones.
        let err = pick(dir.path(), "u").unwrap_err().to_string();
        assert!(err.contains("`u`") && err.contains("s, t"), "{err}");
        assert!(pick(dir.path(), "s").unwrap().is_empty());
    }

    #[test]
    fn sources_of_different_tasks_or_without_scores_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        folder(dir.path());
        results(dir.path(), "s-d1", "mnli", "61.5");
        results(dir.path(), "s-d2", "qqp", "70");
        results(dir.path(), "s-p", "mnli", "");
        let err = pick(dir.path(), "t").unwrap_err().to_string();
        assert!(err.contains("mnli, qqp"), "{err}");
        results(dir.path(), "s-d2", "mnli", "70");
        let err = format!("{:?}", pick(dir.path(), "t").unwrap_err());
        assert!(
            err.contains("NoSourceScore") && err.contains("s-p"),
            "{err}"
        );
    }
}
