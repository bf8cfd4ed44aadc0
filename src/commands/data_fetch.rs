//! `dept data fetch TASK…`: each task's splits from the hub's parquet export of its dataset, through the Hugging
//! Face cache, into `<data-dir>/<Task>/<config>/<split>/NNNN.parquet` where the loaders read them.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::Args;
use dept_data::task::SourceSplit;
use dept_data::{load_split, task, Split, OFFICIAL_SPLIT_SEED};
use dept_hub::{Hub, HubCache, Resolver};

#[derive(Args)]
pub struct FetchArgs {
    /// Tasks to fetch (`rte`, `boolq`, `newsqa`, ...; see `dept data tasks`).
    #[arg(required = true)]
    pub tasks: Vec<String>,
    /// Folder holding one sub-folder per task; each task's files go into the first folder name it is looked for
    /// under.
    #[arg(long, default_value = "data")]
    pub data_dir: PathBuf,
}

pub fn fetch(args: &FetchArgs) -> Result<()> {
    let resolver = Resolver {
        cache: HubCache::from_env()?,
        hub: (!dept_hub::offline_from_env()).then(Hub::from_env),
    };
    for name in &args.tasks {
        let task = task(name)?;
        let source = task.hub_source().with_context(|| {
            format!(
                "{}: its data is not on the hub ({}); place its files by hand (dept data tasks lists where)",
                task.name, task.hub_dataset
            )
        })?;
        let folder = args.data_dir.join(task.dirs[0]);
        let mut splits: Vec<SourceSplit> = Vec::new();
        for split in [Split::Train, Split::Validation, Split::Test] {
            let source_split = task.source_split(split);
            if !splits.contains(&source_split) {
                splits.push(source_split);
            }
        }
        for split in splits {
            let shards = resolver
                .parquet_split(source.repo, source.config, split.hub_name())
                .with_context(|| {
                    format!("{}: fetching its {} split", task.name, split.hub_name())
                })?;
            let into = folder.join(source.config).join(split.hub_name());
            for shard in &shards {
                place(shard, &into)?;
            }
        }
        let sizes: Vec<String> = [Split::Train, Split::Validation, Split::Test]
            .into_iter()
            .map(|split| {
                let rows = load_split(task, &args.data_dir, split, OFFICIAL_SPLIT_SEED)?.len();
                Ok(format!("{} {rows}", split.name()))
            })
            .collect::<Result<_>>()
            .with_context(|| {
                format!(
                    "{}: reading what was fetched into {}",
                    task.name,
                    folder.display()
                )
            })?;
        println!(
            "{}: {} ({}) → {}: {}",
            task.name,
            source.repo,
            source.config,
            folder.display(),
            sizes.join(", ")
        );
    }
    Ok(())
}

/// Copies a cached file into `dir` under its own name, whole or not at all.
fn place(cached: &Path, dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let name = cached.file_name().context("a cached file has no name")?;
    let target = dir.join(name);
    dept_core::atomic::write_atomically(&target, |tmp| std::fs::copy(cached, tmp).map(|_| ()))
        .with_context(|| format!("writing {}", target.display()))
}
