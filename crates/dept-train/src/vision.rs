//! Vision-language runs (CLIP-T5): the feature file a config names, extracted first from a folder of images when
//! the config says how, and the backbone that reads it.

use std::io::IsTerminal;
use std::path::Path;

use dept_models::features::{
    list_images, ExtractReport, Extractor, FeatureDtype, FeatureOptions, FeatureStore, ImageFile,
};
use dept_models::registry::{load_vision_language, VisualInput};
use dept_models::Backbone;
use tch::Device;

use crate::config::ExperimentConfig;
use crate::TrainError;

/// The config's feature file, opened; `None` for a text-only run. With `images` and `clip_model` set, images
/// missing from the file are extracted into it first (all of them the first time; a killed extraction resumes).
pub fn open_features(
    config: &ExperimentConfig,
    device: Device,
    quiet: bool,
) -> Result<Option<FeatureStore>, TrainError> {
    let Some(path) = &config.features else {
        return Ok(None);
    };
    let store = match (&config.images, &config.clip_model) {
        (Some(images), Some(clip_model)) => {
            let options = FeatureOptions {
                layer: config.clip_layer,
                class_token: config.clip_class_token,
                dtype: FeatureDtype::F32,
            };
            let list = list_images(images)?;
            match complete_store(path, &list, options)? {
                Some(store) => store,
                None => {
                    let extractor =
                        Extractor::load(clip_model, device, options, config.eval_batch_size)?;
                    tracing::info!(
                        "extracting CLIP features of {} images in {} with {} into {}",
                        list.len(),
                        images.display(),
                        clip_model.display(),
                        path.display()
                    );
                    extract_with_progress(&extractor, &list, path, quiet)?;
                    FeatureStore::open(path)?
                }
            }
        }
        _ if !path.is_file() => {
            return Err(TrainError::Config {
                path: path.clone(),
                message: "the feature file (`features`) does not exist: write it with `dept features extract \
                          --model <CLIP folder> --images <folder> --out <file>`, or set `images` and `clip_model` \
                          to have the run extract it"
                    .into(),
            })
        }
        _ => FeatureStore::open(path)?,
    };
    tracing::info!(
        "visual features: {} images, {} tokens of width {} each, from {}",
        store.len(),
        store.tokens(),
        store.width(),
        path.display()
    );
    Ok(Some(store))
}

/// The file at `path`, opened, when it exists with every image of `list`, written with `options` (another layer or
/// class-token setting is an error: the file would mix two kinds of features); `None` when images are missing.
fn complete_store(
    path: &Path,
    list: &[ImageFile],
    options: FeatureOptions,
) -> Result<Option<FeatureStore>, TrainError> {
    if !path.is_file() {
        return Ok(None);
    }
    let store = FeatureStore::open(path)?;
    let meta = store.metadata();
    for (key, wanted) in [
        ("layer", options.layer.to_string()),
        ("class_token", options.class_token.to_string()),
    ] {
        if meta.get(key).is_some_and(|v| *v != wanted) {
            return Err(TrainError::Config {
                path: path.to_path_buf(),
                message: format!(
                    "the feature file was written with {key} = {}, the config asks for {wanted}: delete the file \
                     or point `features` elsewhere",
                    meta[key]
                ),
            });
        }
    }
    Ok(list
        .iter()
        .all(|image| store.contains(&image.id))
        .then_some(store))
}

/// [`Extractor::run`] with a progress bar on a terminal (log lines otherwise, nothing with `quiet`).
pub fn extract_with_progress(
    extractor: &Extractor,
    images: &[ImageFile],
    out: &Path,
    quiet: bool,
) -> Result<ExtractReport, TrainError> {
    let bar = (!quiet && std::io::stderr().is_terminal()).then(|| {
        let bar = indicatif::ProgressBar::new(images.len() as u64);
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "{bar:40} {pos}/{len} images  [{elapsed_precise} < {eta_precise}]",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        bar
    });
    let mut last_logged = 0;
    let report = extractor.run(images, out, &mut |done, total| match &bar {
        Some(bar) => bar.set_position(done as u64),
        None if !quiet && (done == total || done >= last_logged + 1000) => {
            last_logged = done;
            tracing::info!("features: {done}/{total} images");
        }
        None => {}
    })?;
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    Ok(report)
}

/// The config's model reading the feature file's visual tokens (CLIP-T5 on a T5 folder), its visual embedding
/// initialised under the run's seed (so a run and its resumption, or two runs of one config, start from the same
/// weights).
pub fn vision_language_backbone(
    config: &ExperimentConfig,
    features: &FeatureStore,
    device: Device,
) -> Result<Box<dyn Backbone>, TrainError> {
    let visual = VisualInput {
        width: features.width(),
        tokens: features.tokens(),
        seed: config.seed as i64,
    };
    Ok(load_vision_language(&config.model, device, visual)?)
}
