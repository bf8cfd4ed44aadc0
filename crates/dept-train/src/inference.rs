//! Using a saved adapter: evaluation on a split (`dept eval`) and predictions for new inputs (`dept predict`).

use std::path::{Path, PathBuf};

use dept_core::{DecomposedPrompt, DeptConfig};
use dept_data::{Split, TextExample};
use dept_models::features::FeatureStore;
use dept_models::{Backbone, EarlyStopping, TextTokenizer};

use crate::batch::{encode_for, Encoded};
use crate::config::ExperimentConfig;
use crate::evaluate::score;
use crate::trainer::{decoder, open_model};
use crate::TrainError;

/// What may replace the settings found with the adapter.
#[derive(Debug, Clone, Default)]
pub struct InferenceOverrides {
    pub model: Option<PathBuf>,
    pub data_dir: Option<PathBuf>,
    pub task: Option<String>,
    pub device: Option<String>,
    pub batch_size: Option<usize>,
    /// The image feature file of a vision-language (CLIP-T5) adapter.
    pub features: Option<PathBuf>,
    /// How to decode: what replaces the run's `decode_*` keys ([`dept_models::GenerationConfig`]'s fields).
    pub decoding: DecodingOverrides,
}

/// Replacements for the run's decoding keys (`decode_max_tokens`, `decode_num_beams`, ...), each where set.
#[derive(Debug, Clone, Default)]
pub struct DecodingOverrides {
    pub max_new_tokens: Option<i64>,
    pub num_beams: Option<i64>,
    pub length_penalty: Option<f64>,
    pub early_stopping: Option<EarlyStopping>,
    pub no_repeat_ngram_size: Option<i64>,
}

impl DecodingOverrides {
    /// Sets the keys given on `config`, then refuses a combination that cannot decode, naming the value.
    fn apply(&self, config: &mut ExperimentConfig) -> Result<(), TrainError> {
        if let Some(n) = self.max_new_tokens {
            config.decode_max_tokens = n;
        }
        if let Some(n) = self.num_beams {
            config.decode_num_beams = n;
        }
        if let Some(p) = self.length_penalty {
            config.decode_length_penalty = p;
        }
        if let Some(e) = self.early_stopping {
            config.decode_early_stopping = e;
        }
        if let Some(n) = self.no_repeat_ngram_size {
            config.decode_no_repeat_ngram_size = n;
        }
        if config.decode_max_tokens <= 0 {
            return Err(TrainError::Run(format!(
                "max new tokens must be positive, got {}",
                config.decode_max_tokens
            )));
        }
        config
            .generation()
            .validate()
            .map_err(|e| TrainError::Run(format!("decoding: {e}")))
    }
}

/// A backbone with an adapter, set up as the run that trained the adapter was.
pub struct Inference {
    pub config: ExperimentConfig,
    backbone: Box<dyn Backbone>,
    tokenizer: TextTokenizer,
    adapter: DecomposedPrompt,
    features: Option<FeatureStore>,
}

impl Inference {
    /// Opens `adapter_dir` (e.g. `runs/x/best`). Settings come from the run's `config.yaml` next to it when there
    /// is one, else from defaults, the adapter's `base_model_name_or_path` and the overrides.
    pub fn open(adapter_dir: &Path, overrides: &InferenceOverrides) -> Result<Self, TrainError> {
        let run_config = adapter_dir
            .parent()
            .map(|p| p.join("config.yaml"))
            .filter(|p| p.is_file());
        let mut config = match &run_config {
            Some(path) => ExperimentConfig::load(path, &[])?,
            None => ExperimentConfig {
                task: overrides.task.clone().unwrap_or_default(),
                ..ExperimentConfig::default()
            },
        };
        let adapter_config = DeptConfig::load(adapter_dir)?;
        if let Some(model) = &overrides.model {
            config.model = model.clone();
        } else if run_config.is_none() {
            config.model = adapter_config
                .base_model_name_or_path
                .clone()
                .map(PathBuf::from)
                .ok_or_else(|| {
                    TrainError::Run(format!(
                        "{} does not say which model it was trained on: pass --model",
                        adapter_dir.display()
                    ))
                })?;
        }
        if let Some(dir) = &overrides.data_dir {
            config.data_dir = dir.clone();
        }
        if let Some(task) = &overrides.task {
            config.task = task.clone();
        }
        if let Some(device) = &overrides.device {
            config.device = device.clone();
        }
        if let Some(n) = overrides.batch_size {
            config.eval_batch_size = n;
        }
        if let Some(features) = &overrides.features {
            config.features = Some(features.clone());
        }
        overrides.decoding.apply(&mut config)?;
        if run_config.is_none() {
            if let Some(s) = adapter_config.s {
                config.max_len = s;
            }
        }
        let (device, backbone, tokenizer, features) = open_model(&config, false)?;
        let adapter = DecomposedPrompt::load(adapter_dir, device)?;
        crate::checkpoint::load_trained(adapter_dir, &backbone.trainable_parameters())?;
        adapter
            .check_compatible(backbone.hidden_size(), config.max_len)
            .map_err(|e| {
                TrainError::Run(format!(
                    "adapter {} does not fit model {}: {e}",
                    adapter_dir.display(),
                    config.model.display()
                ))
            })?;
        Ok(Inference {
            config,
            backbone,
            tokenizer,
            adapter,
            features,
        })
    }

    /// True when the model reads images (CLIP-T5): every input then needs an image id.
    pub fn reads_images(&self) -> bool {
        self.features.is_some()
    }

    /// Predictions for input texts, decoded as the config says (greedy by default).
    pub fn predict(&self, inputs: &[String]) -> Result<Vec<String>, TrainError> {
        let images = vec![None; inputs.len()];
        self.predict_with_images(inputs, &images)
    }

    /// Predictions for input texts, each with the id of its image in the run's feature file (vision-language
    /// runs; `None` for text-only ones).
    pub fn predict_with_images(
        &self,
        inputs: &[String],
        images: &[Option<String>],
    ) -> Result<Vec<String>, TrainError> {
        if let Some(store) = &self.features {
            if let Some(i) = images.iter().position(Option::is_none) {
                return Err(TrainError::Run(format!(
                    "input {i} has no image: this adapter's model reads images, give each input the id of its \
                     image in {} (`image` in the JSON lines, or --image with --text)",
                    store.path().display()
                )));
            }
        } else if images.iter().any(Option::is_some) {
            return Err(TrainError::Run(
                "images were given, but this adapter's model reads text only".into(),
            ));
        }
        let encoded: Vec<Encoded> = inputs
            .iter()
            .zip(images)
            .map(|(text, image)| {
                Ok(Encoded {
                    image: image.clone(),
                    weight: None,
                    input_ids: self.backbone.architecture().encode_source(
                        &self.tokenizer,
                        text,
                        self.config.max_len as usize,
                        self.config.max_target_len,
                    )?,
                    target_ids: Vec::new(),
                })
            })
            .collect::<Result<_, TrainError>>()?;
        self.decode(&encoded)
    }

    /// The task's scores on a split, with the examples and predictions behind them.
    pub fn evaluate(&self, split: Split) -> Result<Evaluation, TrainError> {
        if self.config.task.is_empty() {
            return Err(TrainError::Run(
                "no task known for this adapter: pass --task".into(),
            ));
        }
        let task = dept_data::task(&self.config.task)?;
        let examples = crate::trainer::split_examples(&self.config, task, split)?;
        let encoded = encode_for(
            self.backbone.architecture(),
            &self.tokenizer,
            &examples,
            self.config.max_len as usize,
            self.config.max_target_len,
            self.backbone.eos_token_id(),
        )?;
        let start = std::time::Instant::now();
        let predictions = self.decode(&encoded)?;
        let samples_per_s = examples.len() as f64 / start.elapsed().as_secs_f64();
        let scores = score(
            &self.config,
            task,
            &self.tokenizer,
            &predictions,
            &examples,
            &encoded,
        )?;
        Ok(Evaluation {
            scores,
            examples,
            predictions,
            samples_per_s,
        })
    }

    fn decode(&self, encoded: &[Encoded]) -> Result<Vec<String>, TrainError> {
        decoder(
            &self.config,
            self.backbone.as_ref(),
            &self.adapter,
            &self.tokenizer,
            self.features.as_ref(),
        )
        .predict(encoded)
    }
}

pub struct Evaluation {
    pub scores: Vec<(String, f64)>,
    pub examples: Vec<TextExample>,
    pub predictions: Vec<String>,
    /// Greedy decoding throughput (batched by length, encoder once, decoder cache in place).
    pub samples_per_s: f64,
}
