//! A model folder from what a user wrote: a folder as it is, else a hub id resolved in the cache and, when online,
//! brought up to date from the hub (only what a backbone reads: `config.json`, `tokenizer.json` and the
//! safetensors weights, sharded or not).

use std::path::{Path, PathBuf};

use crate::{Hub, HubCache, HubError, RepoSpec};

/// The weights a model folder may hold; pickle (`pytorch_model.bin`) is never fetched, as it is never loaded.
const SINGLE_WEIGHTS: &str = "model.safetensors";
const SHARD_INDEX: &str = "model.safetensors.index.json";
const ALWAYS: [&str; 2] = ["config.json", "tokenizer.json"];

/// Whether the environment says not to touch the network (`HF_HUB_OFFLINE`, as `huggingface_hub` reads it).
pub fn offline_from_env() -> bool {
    std::env::var("HF_HUB_OFFLINE")
        .is_ok_and(|v| matches!(v.to_ascii_lowercase().as_str(), "1" | "on" | "yes" | "true"))
}

/// `model` as a folder: itself when it is one, else the snapshot folder of the hub model it names (see
/// [`Resolver`]), from the environment's cache, endpoint and offline setting. A path that cannot be a hub id
/// (absolute, `./`, `..`, more than one `/`) is returned as it is, for the loader to say it is missing.
pub fn model_folder(model: &Path) -> Result<PathBuf, HubError> {
    if model.is_dir() {
        return Ok(model.to_path_buf());
    }
    let Some(spec) = model.to_str().and_then(RepoSpec::parse) else {
        return Ok(model.to_path_buf());
    };
    let resolver = Resolver {
        cache: HubCache::from_env()?,
        hub: (!offline_from_env()).then(Hub::from_env),
    };
    resolver.model(&spec).map_err(|cause| HubError::Model {
        model: model.display().to_string(),
        cause: Box::new(cause),
    })
}

/// Resolves hub models in one cache; with no [`Hub`] (offline) from the cache alone.
pub struct Resolver {
    pub cache: HubCache,
    pub hub: Option<Hub>,
}

impl Resolver {
    /// The snapshot folder of `spec`, with every file a backbone reads.
    pub fn model(&self, spec: &RepoSpec) -> Result<PathBuf, HubError> {
        self.online_or_cached(|hub| self.download(hub, spec), |why| self.cached(spec, why))
    }

    /// `online(hub)`, or `cached(why)` when offline or when the hub is unreachable: as huggingface_hub does, an
    /// unreachable hub is not an error when the cache has what is asked.
    fn online_or_cached<T>(
        &self,
        online: impl FnOnce(&Hub) -> Result<T, HubError>,
        cached: impl FnOnce(&str) -> Result<T, HubError>,
    ) -> Result<T, HubError> {
        let Some(hub) = &self.hub else {
            return cached("HF_HUB_OFFLINE is set");
        };
        match online(hub) {
            Err(HubError::Network { url, message }) => {
                cached(&format!("the hub is unreachable ({url}: {message})"))
                    .inspect(|_| tracing::warn!("{url}: {message}; using the cache"))
            }
            other => other,
        }
    }

    /// The model as the cache holds it, or an error saying what is missing and why the hub was not asked.
    fn cached(&self, spec: &RepoSpec, why: &str) -> Result<PathBuf, HubError> {
        let not_cached = |what: String| {
            HubError::NotCached(format!(
                "{}@{}: {what} in the Hugging Face cache {}, and {why}: run once with the hub reachable, or give a \
                 model folder",
                spec.id,
                spec.revision,
                self.cache.root().display()
            ))
        };
        let commit = self
            .cache
            .commit(spec)
            .ok_or_else(|| not_cached("no snapshot".into()))?;
        let snapshot = self.cache.snapshot(spec, &commit);
        let mut needed: Vec<String> = ALWAYS.iter().map(|f| f.to_string()).collect();
        if snapshot.join(SINGLE_WEIGHTS).is_file() {
            needed.push(SINGLE_WEIGHTS.into());
        } else if snapshot.join(SHARD_INDEX).is_file() {
            needed.extend(shards(&snapshot.join(SHARD_INDEX))?);
        } else {
            needed.push(format!("{SINGLE_WEIGHTS} (or {SHARD_INDEX})"));
        }
        let missing: Vec<&String> = needed
            .iter()
            .filter(|f| !snapshot.join(f).is_file())
            .collect();
        if !missing.is_empty() {
            return Err(not_cached(format!(
                "snapshot {commit} lacks {}",
                missing
                    .iter()
                    .map(|f| f.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
        Ok(snapshot)
    }

    fn download(&self, hub: &Hub, spec: &RepoSpec) -> Result<PathBuf, HubError> {
        let config = hub
            .metadata(spec, ALWAYS[0])?
            .ok_or_else(|| HubError::Remote {
                url: hub.url(spec, ALWAYS[0]),
                message: "no config.json: not a model repository".into(),
            })?;
        // Every later request names the commit the revision resolved to, so a branch that moves meanwhile cannot
        // mix two versions in one snapshot.
        let pinned = spec.at(&config.commit);
        self.fetch(hub, &pinned, ALWAYS[0], &config)?;
        self.fetch_required(hub, &pinned, ALWAYS[1])?;
        match hub.metadata(&pinned, SINGLE_WEIGHTS)? {
            Some(meta) => {
                self.fetch(hub, &pinned, SINGLE_WEIGHTS, &meta)?;
            }
            None => {
                let index = self.fetch_required(hub, &pinned, SHARD_INDEX).map_err(|e| match e {
                    HubError::Remote { url, .. } => HubError::Remote {
                        url,
                        message: format!(
                            "neither {SINGLE_WEIGHTS} nor {SHARD_INDEX}: the repository has no safetensors weights \
                             (pickle weights are never loaded)"
                        ),
                    },
                    other => other,
                })?;
                for shard in shards(&index)? {
                    self.fetch_required(hub, &pinned, &shard)?;
                }
            }
        }
        if !spec.is_commit() {
            self.cache.write_ref(spec, &config.commit)?;
        }
        Ok(self.cache.snapshot(spec, &config.commit))
    }

    fn fetch_required(
        &self,
        hub: &Hub,
        spec: &RepoSpec,
        filename: &str,
    ) -> Result<PathBuf, HubError> {
        let meta = hub
            .metadata(spec, filename)?
            .ok_or_else(|| HubError::Remote {
                url: hub.url(spec, filename),
                message: format!("the repository has no {filename}"),
            })?;
        self.fetch(hub, spec, filename, &meta)
    }

    /// The file's blob (downloaded unless the cache has it) linked into its snapshot.
    fn fetch(
        &self,
        hub: &Hub,
        spec: &RepoSpec,
        filename: &str,
        meta: &crate::FileMeta,
    ) -> Result<PathBuf, HubError> {
        let blob = self.cache.blob(spec, &meta.etag);
        if !blob.is_file() {
            let partial = self.cache.incomplete(spec, &meta.etag);
            hub.download(spec, filename, meta, &partial)?;
            std::fs::rename(&partial, &blob).map_err(|e| HubError::io(&blob, e))?;
        }
        self.cache.link(spec, &meta.commit, filename, &meta.etag)
    }
}

/// The shard files a `model.safetensors.index.json` names (its `weight_map`'s values), each once.
fn shards(index: &Path) -> Result<Vec<String>, HubError> {
    let text = std::fs::read_to_string(index).map_err(|e| HubError::io(index, e))?;
    let json: serde_json::Value = serde_json::from_str(&text)
        .map_err(|e| HubError::Invalid(format!("{}: not JSON: {e}", index.display())))?;
    let map = json["weight_map"]
        .as_object()
        .ok_or_else(|| HubError::Invalid(format!("{}: no weight_map object", index.display())))?;
    let mut files: Vec<String> = Vec::new();
    for value in map.values() {
        let file = value
            .as_str()
            .filter(|f| !f.contains("..") && !f.starts_with('/') && f.ends_with(".safetensors"))
            .ok_or_else(|| {
                HubError::Invalid(format!(
                    "{}: a weight_map entry {value} is not a shard file name",
                    index.display()
                ))
            })?;
        if !files.iter().any(|f| f == file) {
            files.push(file.to_string());
        }
    }
    Ok(files)
}

impl Resolver {
    /// The parquet files of one split of a dataset, from the hub's parquet export of it (the dataset viewer's
    /// `refs/convert/parquet` branch: `<config>/<split>/0000.parquet`, `0001.parquet`, …), in the cache; offline,
    /// from the cache alone. Their order is the shards' order.
    pub fn parquet_split(
        &self,
        dataset: &str,
        config: &str,
        split: &str,
    ) -> Result<Vec<PathBuf>, HubError> {
        let spec = RepoSpec::dataset(dataset, PARQUET_REVISION)
            .ok_or_else(|| HubError::Invalid(format!("{dataset}: not a hub dataset id")))?;
        self.online_or_cached(
            |hub| self.download_split(hub, &spec, config, split),
            |why| self.cached_split(&spec, config, split, why),
        )
    }

    fn download_split(
        &self,
        hub: &Hub,
        spec: &RepoSpec,
        config: &str,
        split: &str,
    ) -> Result<Vec<PathBuf>, HubError> {
        let mut files = Vec::new();
        let mut pinned = spec.clone();
        for shard in 0.. {
            let name = shard_name(config, split, shard);
            let Some(meta) = hub.metadata(&pinned, &name)? else {
                break;
            };
            if shard == 0 {
                // The rest are read at the commit the first resolved to.
                pinned = spec.at(&meta.commit);
            }
            files.push(self.fetch(hub, &pinned, &name, &meta)?);
        }
        if files.is_empty() {
            return Err(HubError::Remote {
                url: hub.url(spec, &shard_name(config, split, 0)),
                message: format!(
                    "no parquet export of {} for config {config}, split {split}",
                    spec.id
                ),
            });
        }
        // Only a split fetched whole is recorded, so that the cache never offers part of one offline.
        self.cache.write_ref(spec, &pinned.revision)?;
        Ok(files)
    }

    fn cached_split(
        &self,
        spec: &RepoSpec,
        config: &str,
        split: &str,
        why: &str,
    ) -> Result<Vec<PathBuf>, HubError> {
        let not_cached = || {
            HubError::NotCached(format!(
                "{} ({config}, {split}): no parquet files in the Hugging Face cache {}, and {why}: run once with the \
                 hub reachable",
                spec.id,
                self.cache.root().display()
            ))
        };
        let commit = self.cache.commit(spec).ok_or_else(not_cached)?;
        let snapshot = self.cache.snapshot(spec, &commit);
        let files: Vec<PathBuf> = (0..)
            .map(|shard| snapshot.join(shard_name(config, split, shard)))
            .take_while(|path| path.is_file())
            .collect();
        if files.is_empty() {
            return Err(not_cached());
        }
        Ok(files)
    }
}

/// The branch where the hub's dataset viewer keeps every dataset converted to parquet.
const PARQUET_REVISION: &str = "refs/convert/parquet";

fn shard_name(config: &str, split: &str, shard: usize) -> String {
    format!("{config}/{split}/{shard:04}.parquet")
}
