//! The experiment config: one YAML file per run, flat keys, defaults from the paper and the official code.
//!
//! Unknown keys are refused with the nearest valid key; `--set key=value` overrides any key; the resolved config
//! (every key, defaults filled in, method solved) is saved in the run folder as `config.yaml`.

use std::path::{Path, PathBuf};

use dept_core::budget::{Budget, Rounding};
use dept_models::{EarlyStopping, GenerationConfig};
use serde::{Deserialize, Serialize};
use serde_yaml::{Mapping, Value};

use crate::TrainError;

/// A config value that cannot run, with what to change (the caller adds the file it came from).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Invalid(pub String);

impl From<String> for Invalid {
    fn from(message: String) -> Self {
        Invalid(message)
    }
}

impl From<&str> for Invalid {
    fn from(message: &str) -> Self {
        Invalid(message.to_string())
    }
}

impl From<crate::device::DeviceError> for Invalid {
    fn from(error: crate::device::DeviceError) -> Self {
        Invalid(error.to_string())
    }
}

/// DePT (prompt + low-rank pair) or plain prompt tuning.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Method {
    Dept,
    Pt,
}

/// How batches are padded. `longest` (default) pads each batch to its longest input and, without dropout, gives the
/// same numbers as `max_length`, the official code's padding of every input to `max_len`, for less work.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Padding {
    Longest,
    MaxLength,
}

/// How training examples are put into batches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Batching {
    /// A fresh random order every epoch, as the official code (the default).
    Random,
    /// transformers' `group_by_length`: the shuffled order cut into mega-batches of up to 50 batches, each sorted
    /// by input length, so that most batches pad little. Which examples share a batch changes; every example is
    /// still seen once per epoch, so the data distribution does not.
    LengthGrouped,
}

/// What predictions are scored against.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ScoreAgainst {
    /// The official code's gold: the target's token ids (cut to `max_target_len`, `</s>` kept) decoded back, so
    /// long answers are cut and characters outside the vocabulary (`<unk>`) are dropped.
    DecodedLabels,
    /// The target text itself (for MRQA, the first gold answer as the data holds it).
    TargetText,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Precision {
    Fp32,
    Bf16,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PromptInitKind {
    Text,
    SampledVocab,
    Random,
}

/// One experiment. Field docs are the reference for the YAML keys (see also configs/README.md).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ExperimentConfig {
    /// Hugging Face model folder (config.json, model.safetensors, tokenizer.json). `--model` overrides.
    pub model: PathBuf,
    /// Task name as `dept data tasks` lists it (rte, boolq, ...).
    pub task: String,
    /// Folder holding `<TASK>/…` data files. `--data-dir` overrides.
    pub data_dir: PathBuf,
    /// Where the run folder goes; empty: `runs/<task>-<method>-m<m>-r<r>-s<seed>`.
    pub output_dir: PathBuf,

    pub method: Method,
    /// m: soft-prompt length (for PT: l).
    pub prompt_len: Option<i64>,
    /// r: rank of the embedding update (0 for PT).
    pub rank: Option<i64>,
    /// l: a PT budget to match. Give it with one of prompt_len / rank and the other is solved exactly.
    pub budget: Option<i64>,
    /// s: inputs are cut to this many tokens; A has this many rows.
    pub max_len: i64,
    pub lora_alpha: f64,
    pub prompt_init: PromptInitKind,
    pub prompt_init_text: String,
    /// Start from a saved adapter folder instead (transfer, the official `--peft_model_id`); m, r, s, d must match.
    pub init_adapter: Option<PathBuf>,

    /// α1: learning rate of the soft prompt.
    pub lr_prompt: f64,
    /// α2: learning rate of the low-rank pair A, B.
    pub lr_pair: f64,
    pub adam_beta1: f64,
    pub adam_beta2: f64,
    pub adam_eps: f64,
    pub weight_decay: f64,
    pub warmup_steps: Option<u64>,
    /// Alternative to warmup_steps: a fraction of max_steps.
    pub warmup_ratio: Option<f64>,
    pub max_grad_norm: f64,

    pub max_steps: u64,
    pub batch_size: usize,
    pub grad_accum: usize,
    pub eval_every: u64,
    pub save_every: u64,
    pub eval_batch_size: usize,
    /// Stop after this many evaluations without a new best (unset: never).
    pub early_stopping_patience: Option<u32>,
    /// The validation metric that picks the best checkpoint (and that early stopping watches), by the name the
    /// run logs (`f1`, `em`, `accuracy`, ...). Unset: the task's own, the official `TASK_TO_METRICS[task][0]`,
    /// which is EM for MRQA although the paper's Table 2 reports F1 there.
    pub best_metric: Option<String>,
    /// Targets are cut to this many tokens (`</s>` included). The official code cuts answers of tasks without a
    /// label list (MRQA, SQuAD, ReCoRD) at `generation_max_length` = 20; label targets are far shorter.
    pub max_target_len: usize,
    /// New tokens greedy decoding may produce at evaluation. The official `generation_max_length: 20` counts
    /// T5's decoder start token, so it allows 19 new tokens.
    pub decode_max_tokens: i64,
    /// `decoded_labels` (default, as the official code) or `target_text`.
    pub score_against: ScoreAgainst,
    /// Decoded predictions and labels get transformers' `clean_up_tokenization` (spaces before `.`, `,`, `?`, `!`
    /// and contractions removed), as `batch_decode` did by default in transformers 4.26.1, which the official runs
    /// used. `false` scores the decoded text as the tokenizer gives it.
    pub decode_cleanup: bool,
    /// Decoding at evaluation and `dept predict`, as transformers' `generate` takes it (`dept_models::beam`):
    /// `num_beams` beams (1: greedy, the official `generation_num_beams`), finished beams scored
    /// `sum of log-probs / length^length_penalty`, `early_stopping` `false` (transformers' heuristic), `true` or
    /// `never`, and no n-gram of `no_repeat_ngram_size` tokens twice (0: off).
    pub decode_num_beams: i64,
    pub decode_length_penalty: f64,
    pub decode_early_stopping: EarlyStopping,
    pub decode_no_repeat_ngram_size: i64,
    pub padding: Padding,
    /// `random` (default, as the official code) or `length_grouped` (fewer padded tokens, see [`Batching`]).
    pub batching: Batching,
    pub seed: u64,
    /// Few-shot: train on k examples (official class-balanced draw with `seed`).
    pub k_shot: Option<usize>,
    /// The official `--max_train_samples` / `--max_eval_samples`: a seeded sample of n rows (seed 42, as the
    /// official code), taken before k-shot selection (unset: all).
    pub max_train_examples: Option<usize>,
    pub max_eval_examples: Option<usize>,
    /// Train with the backbone's dropout on, as the official code.
    pub backbone_dropout: bool,

    /// cpu | cuda | cuda:N | auto
    pub device: String,
    pub precision: Precision,
    /// libtorch CPU threads (unset: libtorch's default).
    pub threads: Option<i32>,
    /// Print a progress line every N steps when not on a terminal.
    pub log_every: u64,

    /// Vision-language tasks (CLIP-T5): the feature file (`dept features extract`) whose entries, keyed by image
    /// id, the encoder reads after the text. Setting it turns `model` (a T5 folder) into CLIP-T5.
    pub features: Option<PathBuf>,
    /// A folder of images to extract `features` from first, when that file is missing or lacks images (needs
    /// `clip_model`); a killed extraction resumes.
    pub images: Option<PathBuf>,
    /// The CLIP folder (`CLIPModel` or `CLIPVisionModel`) `images` are encoded with.
    pub clip_model: Option<PathBuf>,
    /// Which CLIP layer becomes the features (transformers' `hidden_states` index; -1, the last layer's output,
    /// as VL-Adapter).
    pub clip_layer: i64,
    /// Keep CLIP's class token among the visual tokens (VL-Adapter keeps the patch tokens only).
    pub clip_class_token: bool,
    /// Learning rate of CLIP-T5's visual embedding (its own optimiser group, on the same warm-up and decay).
    pub lr_visual: f64,
    /// VQA: VL-Adapter's loss, each example's mean over its target tokens weighted by its answer's score, then the
    /// batch mean (questions without a scored answer weigh 0). `false`: the mean over target tokens, as the text
    /// tasks. No effect on tasks whose examples carry no weight.
    pub example_weights: bool,
}

impl Default for ExperimentConfig {
    /// The official code's settings (README command, `train.py`, `transformers.AdamW`), DePT with m = 60, r = 30.
    fn default() -> Self {
        ExperimentConfig {
            model: PathBuf::new(),
            task: String::new(),
            data_dir: PathBuf::from("data"),
            output_dir: PathBuf::new(),
            method: Method::Dept,
            prompt_len: Some(60),
            rank: Some(30),
            budget: None,
            max_len: 256,
            lora_alpha: 8.0,
            prompt_init: PromptInitKind::Text,
            prompt_init_text: dept_core::DEFAULT_INIT_TEXT.to_string(),
            init_adapter: None,
            lr_prompt: 3e-1,
            lr_pair: 1e-4,
            adam_beta1: 0.9,
            adam_beta2: 0.999,
            adam_eps: 1e-6,
            weight_decay: 0.0,
            warmup_steps: Some(500),
            warmup_ratio: None,
            max_grad_norm: 1.0,
            max_steps: 30_000,
            batch_size: 32,
            grad_accum: 1,
            eval_every: 1000,
            save_every: 1000,
            eval_batch_size: 32,
            early_stopping_patience: None,
            best_metric: None,
            max_target_len: 20,
            decode_max_tokens: 19,
            score_against: ScoreAgainst::DecodedLabels,
            decode_cleanup: true,
            decode_num_beams: 1,
            decode_length_penalty: 1.0,
            decode_early_stopping: EarlyStopping::Heuristic,
            decode_no_repeat_ngram_size: 0,
            padding: Padding::Longest,
            batching: Batching::Random,
            seed: 42,
            k_shot: None,
            max_train_examples: None,
            max_eval_examples: None,
            backbone_dropout: true,
            device: "auto".into(),
            precision: Precision::Fp32,
            threads: None,
            log_every: 50,
            features: None,
            images: None,
            clip_model: None,
            clip_layer: -1,
            clip_class_token: false,
            // VL-Adapter's learning rate (`--lr 1e-3` in its image scripts), with which it trains its visual
            // projection.
            lr_visual: 1e-3,
            example_weights: true,
        }
    }
}

/// The adapter shape a config resolves to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shape {
    pub m: i64,
    pub r: i64,
}

/// Experiment keys added after run checkpoints began to record the config's fingerprint, oldest first. A new key
/// goes at the end of this list, so that checkpoints written before it existed still resume
/// ([`ExperimentConfig::fingerprint`]).
pub const KEYS_ADDED_LATER: &[&str] = &[
    "best_metric",
    "decode_num_beams",
    "decode_length_penalty",
    "decode_early_stopping",
    "decode_no_repeat_ngram_size",
];

impl ExperimentConfig {
    /// Reads a YAML file, applies `overrides` (`key=value`, value parsed as YAML), and validates.
    pub fn load(path: &Path, overrides: &[String]) -> Result<Self, TrainError> {
        let text = std::fs::read_to_string(path).map_err(|e| TrainError::Config {
            path: path.to_path_buf(),
            message: format!("cannot read: {e}"),
        })?;
        Self::from_yaml(&text, path, overrides)
    }

    pub fn from_yaml(text: &str, path: &Path, overrides: &[String]) -> Result<Self, TrainError> {
        let bad = |message: String| TrainError::Config {
            path: path.to_path_buf(),
            message,
        };
        let invalid = |Invalid(message)| bad(message);
        let value: Value =
            serde_yaml::from_str(text).map_err(|e| bad(format!("not valid YAML: {e}")))?;
        let mut map = match value {
            Value::Mapping(map) => map,
            Value::Null => Mapping::new(),
            _ => return Err(bad("expected a mapping of `key: value` lines".into())),
        };
        check_keys(&map).map_err(invalid)?;
        for item in overrides {
            let (key, raw) = item
                .split_once('=')
                .ok_or_else(|| bad(format!("--set {item:?}: expected key=value")))?;
            let key = key.trim();
            check_key(key).map_err(|m| bad(format!("--set {item:?}: {m}")))?;
            let parsed: Value = serde_yaml::from_str(raw)
                .map_err(|e| bad(format!("--set {item:?}: value is not YAML: {e}")))?;
            map.insert(Value::String(key.to_string()), parsed);
        }
        let config: ExperimentConfig = serde_yaml::from_value(Value::Mapping(map.clone()))
            .map_err(|e| bad(name_the_key(&map, &e)))?;
        config.validate().map_err(invalid)?;
        Ok(config)
    }

    /// The resolved config as YAML (every key, so a run folder says exactly what ran).
    pub fn to_yaml(&self) -> String {
        serde_yaml::to_string(self).unwrap_or_default()
    }

    /// SHA-256 of the resolved config without the keys in `ignored` (those a resumed run may change): what each
    /// checkpoint's manifest records, so that a checkpoint is never resumed under another experiment.
    ///
    /// Keys added to the config after checkpoints began to record it ([`KEYS_ADDED_LATER`]) count only when set to
    /// something other than their default: a checkpoint written before a key existed was trained as its default,
    /// and its fingerprint, taken without the key, must still match.
    pub fn fingerprint(&self, ignored: &[&str]) -> String {
        let mut value = serde_yaml::to_value(self).unwrap_or_default();
        let defaults = serde_yaml::to_value(ExperimentConfig::default()).unwrap_or_default();
        if let serde_yaml::Value::Mapping(keys) = &mut value {
            // First the later keys, keeping the others in order: what is left is the mapping an older dept hashed.
            for key in KEYS_ADDED_LATER {
                if keys.get(*key) == defaults.get(*key) {
                    keys.shift_remove(*key);
                }
            }
            // Then as it did (`remove` swaps the last key into the gap, and the hash sees that order).
            for key in ignored {
                keys.remove(*key);
            }
        }
        let text = serde_yaml::to_string(&value).unwrap_or_default();
        crate::checkpoint::manifest::sha256_hex(text.as_bytes())
    }

    /// Solves (m, r) from prompt_len / rank / budget. `d` is the backbone's hidden size.
    pub fn shape(&self, d: i64) -> Result<Shape, Invalid> {
        let shape = match (self.method, self.budget) {
            (Method::Pt, Some(l)) => Shape { m: l, r: 0 },
            (Method::Pt, None) => Shape {
                m: self
                    .prompt_len
                    .ok_or("method pt needs prompt_len (l) or budget")?,
                r: 0,
            },
            (Method::Dept, None) => Shape {
                m: self.prompt_len.ok_or("method dept needs prompt_len (m)")?,
                r: self.rank.ok_or("method dept needs rank (r)")?,
            },
            (Method::Dept, Some(l)) => {
                let budget = Budget::new(l, d, self.max_len).map_err(|e| e.to_string())?;
                let split = match (self.prompt_len, self.rank) {
                    (Some(m), None) => budget.rank_for(m, Rounding::Exact),
                    (None, Some(r)) => budget.prompt_len_for(r, Rounding::Exact),
                    (Some(m), Some(r)) => {
                        let s = budget.split(m, r);
                        if s.difference != 0 {
                            return Err(format!(
                                "prompt_len = {m} and rank = {r} cost {} parameters, not the budget {} (l = {l}); \
                                 give only one of them to solve the other",
                                s.params,
                                budget.total()
                            ).into());
                        }
                        Ok(s)
                    }
                    (None, None) => {
                        return Err("budget needs prompt_len or rank to solve the other".into())
                    }
                }
                .map_err(|e| e.to_string())?;
                Shape {
                    m: split.m,
                    r: split.r,
                }
            }
        };
        if self.method == Method::Dept && shape.r == 0 {
            return Err("method dept with rank 0 is prompt tuning: say `method: pt`".into());
        }
        Ok(shape)
    }

    /// The metric that picks the best checkpoint of `task`: `best_metric` when set (one of the task's metrics),
    /// else the task's own.
    pub fn best_metric_of(
        &self,
        task: &dept_data::Task,
    ) -> Result<dept_data::task::Metric, Invalid> {
        let Some(name) = &self.best_metric else {
            return Ok(task.best_metric);
        };
        task.metrics
            .iter()
            .copied()
            .find(|metric| metric.name() == name)
            .ok_or_else(|| {
                let names: Vec<&str> = task.metrics.iter().map(|m| m.name()).collect();
                Invalid(format!(
                    "`best_metric: {name}` is not a metric of task {}; it reports {}",
                    task.name,
                    names.join(", ")
                ))
            })
    }

    /// How evaluation and prediction decode (the `decode_*` keys).
    pub fn generation(&self) -> GenerationConfig {
        GenerationConfig {
            max_new_tokens: self.decode_max_tokens,
            num_beams: self.decode_num_beams,
            length_penalty: self.decode_length_penalty,
            early_stopping: self.decode_early_stopping,
            no_repeat_ngram_size: self.decode_no_repeat_ngram_size,
        }
    }

    /// True for a vision-language run (CLIP-T5).
    pub fn is_vision(&self) -> bool {
        self.features.is_some()
    }

    pub fn warmup(&self) -> u64 {
        match (self.warmup_ratio, self.warmup_steps) {
            (Some(ratio), _) => (ratio * self.max_steps as f64).round() as u64,
            (None, Some(steps)) => steps,
            (None, None) => 0,
        }
    }

    /// Refuses what cannot run, before the model or any data is read. The checks go in a fixed order (task,
    /// counts, rates, prompt init, device, image inputs, method) so that a config with several faults always
    /// reports the same one first.
    fn validate(&self) -> Result<(), Invalid> {
        self.validate_task()?;
        self.validate_counts()?;
        self.validate_rates()?;
        if self.prompt_init == PromptInitKind::Text && self.prompt_init_text.trim().is_empty() {
            return Err("`prompt_init: text` needs a non-empty `prompt_init_text`".into());
        }
        crate::device::parse_device(&self.device)?;
        self.validate_image_inputs()?;
        // The shape's budget arithmetic needs d; here only what does not depend on the model is checked.
        match self.method {
            Method::Pt if self.rank.is_some_and(|r| r != 0) => {
                Err("method pt takes no rank (r is 0 by definition); remove `rank` or use `method: dept`".into())
            }
            _ => Ok(()),
        }
    }

    /// A known task, with image features exactly when it reads images.
    fn validate_task(&self) -> Result<(), Invalid> {
        if self.task.is_empty() {
            return Err("`task` is required (e.g. `task: rte`)".into());
        }
        let task = dept_data::task(&self.task).map_err(|e| format!("`task`: {e}"))?;
        self.best_metric_of(task)?;
        match (task.is_vision_language(), &self.features) {
            (true, None) => Err(format!(
                "`task: {}` reads images: set `features` to a feature file from `dept features extract` (or \
                 `features` with `images` and `clip_model` to extract it first)",
                task.name
            )
            .into()),
            (false, Some(_)) => Err(format!(
                "`features` is for the vision-language tasks (vqa, coco_caption); `task: {}` reads text only",
                task.name
            )
            .into()),
            _ => Ok(()),
        }
    }

    /// Lengths, steps, sizes and caps: each positive (the optional ones when set), and the shape keys at least
    /// their least meaningful value.
    fn validate_counts(&self) -> Result<(), Invalid> {
        let optional_positive = [
            ("max_train_examples", self.max_train_examples),
            ("max_eval_examples", self.max_eval_examples),
            ("k_shot", self.k_shot),
        ];
        if let Some((key, _)) = optional_positive.iter().find(|(_, v)| *v == Some(0)) {
            return Err(format!("`{key}` must be positive when set").into());
        }
        // Shape keys are checked here, before the model or any data is read; the budget arithmetic needs d and
        // comes later.
        let shape_keys = [
            ("prompt_len", self.prompt_len, 0),
            ("rank", self.rank, 0),
            ("budget", self.budget, 1),
        ];
        for (key, value, least) in shape_keys {
            if let Some(v) = value.filter(|v| *v < least) {
                return Err(format!("`{key}` must be at least {least}, got {v}").into());
            }
        }
        let positive = [
            ("max_len", self.max_len > 0),
            ("max_steps", self.max_steps > 0),
            ("batch_size", self.batch_size > 0),
            ("grad_accum", self.grad_accum > 0),
            ("eval_every", self.eval_every > 0),
            ("save_every", self.save_every > 0),
            ("eval_batch_size", self.eval_batch_size > 0),
            ("max_target_len", self.max_target_len > 0),
            ("decode_max_tokens", self.decode_max_tokens > 0),
            ("log_every", self.log_every > 0),
            ("decode_num_beams", self.decode_num_beams > 0),
        ];
        if self.decode_no_repeat_ngram_size < 0 {
            return Err(format!(
                "`decode_no_repeat_ngram_size` must be 0 (off) or more, got {}",
                self.decode_no_repeat_ngram_size
            )
            .into());
        }
        if !self.decode_length_penalty.is_finite() {
            return Err(format!(
                "`decode_length_penalty` must be a finite number, got {}",
                self.decode_length_penalty
            )
            .into());
        }
        match positive.iter().find(|(_, ok)| !ok) {
            Some((key, _)) => Err(format!("`{key}` must be positive").into()),
            None => Ok(()),
        }
    }

    /// Learning rates and optimiser constants: finite and non-negative, Adam's betas below 1, the warmup ratio a
    /// fraction.
    fn validate_rates(&self) -> Result<(), Invalid> {
        for (key, value) in [
            ("lr_prompt", self.lr_prompt),
            ("lr_pair", self.lr_pair),
            ("adam_eps", self.adam_eps),
            ("weight_decay", self.weight_decay),
            ("max_grad_norm", self.max_grad_norm),
            ("lora_alpha", self.lora_alpha),
            ("lr_visual", self.lr_visual),
        ] {
            if !value.is_finite() || value < 0.0 {
                return Err(format!("`{key}` must be a finite number ≥ 0, got {value}").into());
            }
        }
        for (key, value) in [
            ("adam_beta1", self.adam_beta1),
            ("adam_beta2", self.adam_beta2),
        ] {
            if !(0.0..1.0).contains(&value) {
                return Err(format!("`{key}` must lie in [0, 1), got {value}").into());
            }
        }
        match self.warmup_ratio {
            Some(ratio) if !(0.0..=1.0).contains(&ratio) => {
                Err(format!("`warmup_ratio` must lie in [0, 1], got {ratio}").into())
            }
            _ => Ok(()),
        }
    }

    /// `images` and `clip_model` extract the features file before training, so they come together and only with
    /// `features`.
    fn validate_image_inputs(&self) -> Result<(), Invalid> {
        match (&self.features, &self.images, &self.clip_model) {
            (None, Some(_), _) | (None, _, Some(_)) => Err(
                "`images` and `clip_model` need `features`: the file the image features are written to and \
                 read from"
                    .into(),
            ),
            (Some(_), Some(_), None) => {
                Err("`images` needs `clip_model`, the CLIP folder to encode them with".into())
            }
            (Some(_), None, Some(_)) => {
                Err("`clip_model` needs `images`, the folder of images to encode".into())
            }
            _ => Ok(()),
        }
    }

    /// `runs/<task>-<method>-m<m>-r<r>-s<seed>` unless `output_dir` is set.
    pub fn run_dir(&self, shape: Shape) -> PathBuf {
        if !self.output_dir.as_os_str().is_empty() {
            return self.output_dir.clone();
        }
        let method = match self.method {
            Method::Dept => "dept",
            Method::Pt => "pt",
        };
        PathBuf::from("runs").join(format!(
            "{}-{method}-m{}-r{}-s{}",
            self.task, shape.m, shape.r, self.seed
        ))
    }
}

/// serde_yaml does not say which key a type error is about ("invalid type: string \"abc\", expected f64"): find
/// the key whose value alone fails to deserialise (every other key has a default) and name it.
fn name_the_key(map: &Mapping, error: &serde_yaml::Error) -> String {
    let failing = map.iter().find_map(|(key, value)| {
        let mut alone = Mapping::new();
        alone.insert(key.clone(), value.clone());
        serde_yaml::from_value::<ExperimentConfig>(Value::Mapping(alone))
            .err()
            .and(key.as_str())
    });
    match failing {
        Some(key) => format!("`{key}`: {error}"),
        None => error.to_string(),
    }
}

fn known_keys() -> Vec<String> {
    match serde_yaml::to_value(ExperimentConfig::default()) {
        Ok(Value::Mapping(map)) => map
            .keys()
            .filter_map(|k| k.as_str().map(str::to_string))
            .collect(),
        _ => Vec::new(),
    }
}

fn check_keys(map: &Mapping) -> Result<(), Invalid> {
    for key in map.keys() {
        let key = key
            .as_str()
            .ok_or_else(|| format!("keys must be strings, found {key:?}"))?;
        check_key(key)?;
    }
    Ok(())
}

/// `Ok` for an experiment key; otherwise the message names the nearest valid key.
pub fn check_key(key: &str) -> Result<(), Invalid> {
    let known = known_keys();
    if known.iter().any(|k| k == key) {
        return Ok(());
    }
    let nearest = known
        .iter()
        .min_by_key(|k| edit_distance(k, key))
        .map(String::as_str)
        .unwrap_or("");
    Err(Invalid(format!(
        "unknown key `{key}`; did you mean `{nearest}`?"
    )))
}

/// Levenshtein distance, for "did you mean" suggestions.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let above = row[j + 1];
            row[j + 1] = (above + 1)
                .min(row[j] + 1)
                .min(diagonal + usize::from(ca != *cb));
            diagonal = above;
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(yaml: &str, overrides: &[&str]) -> Result<ExperimentConfig, TrainError> {
        let overrides: Vec<String> = overrides.iter().map(|s| s.to_string()).collect();
        ExperimentConfig::from_yaml(yaml, Path::new("exp.yaml"), &overrides)
    }

    /// Why a config is refused, as the user reads it.
    fn refusal(yaml: &str, overrides: &[&str]) -> String {
        parse(yaml, overrides).unwrap_err().to_string()
    }

    #[test]
    fn defaults_follow_the_official_code() {
        let c = parse("task: rte", &[]).unwrap();
        assert_eq!(
            (c.lr_prompt, c.adam_eps, c.weight_decay, c.max_grad_norm),
            (0.3, 1e-6, 0.0, 1.0)
        );
        assert_eq!(
            (c.max_len, c.warmup(), c.eval_every, c.decode_max_tokens),
            (256, 500, 1000, 19)
        );
        assert_eq!(c.shape(768).unwrap(), Shape { m: 60, r: 30 });
        assert_eq!(c.padding, Padding::Longest);
    }

    #[test]
    fn best_metric_picks_one_of_the_tasks_metrics() {
        let task = |name: &str| dept_data::task(name).unwrap();
        // MRQA picks by EM unless told (the official TASK_TO_METRICS order); Table 2 reports F1.
        let nq = parse("task: natural_questions", &[]).unwrap();
        assert_eq!(
            nq.best_metric_of(task("natural_questions")).unwrap().name(),
            "em"
        );
        let nq = parse("task: natural_questions\nbest_metric: f1", &[]).unwrap();
        assert_eq!(
            nq.best_metric_of(task("natural_questions")).unwrap().name(),
            "f1"
        );
        let err = refusal("task: rte\nbest_metric: f1", &[]);
        assert!(
            err.contains("`best_metric: f1` is not a metric of task rte")
                && err.contains("accuracy"),
            "{err}"
        );
    }

    #[test]
    fn unknown_keys_name_the_nearest_one() {
        let err = refusal("task: rte\nmax_step: 10", &[]);
        assert!(
            err.contains("unknown key `max_step`") && err.contains("`max_steps`"),
            "{err}"
        );
        let err = refusal("task: rte", &["lr_promt=0.1"]);
        assert!(err.contains("`lr_prompt`"), "{err}");
    }

    #[test]
    fn overrides_are_parsed_as_yaml() {
        let c = parse(
            "task: rte",
            &[
                "max_steps=200",
                "padding=max_length",
                "early_stopping_patience=3",
            ],
        )
        .unwrap();
        assert_eq!(c.max_steps, 200);
        assert_eq!(c.padding, Padding::MaxLength);
        assert_eq!(c.early_stopping_patience, Some(3));
        assert!(refusal("task: rte", &["max_steps"]).contains("key=value"));
        assert!(parse("task: rte", &["max_steps=many"]).is_err());
    }

    #[test]
    fn the_budget_solves_the_missing_half() {
        let c = parse("task: rte\nbudget: 100\nprompt_len: 40\nrank: null", &[]).unwrap();
        assert_eq!(c.shape(768).unwrap(), Shape { m: 40, r: 45 });
        let c = parse("task: rte\nbudget: 100\nprompt_len: 61\nrank: null", &[]).unwrap();
        assert!(c.shape(768).unwrap_err().0.contains("(m = 60, r = 30)"));
        let c = parse("task: rte\nmethod: pt\nbudget: 100\nrank: null", &[]).unwrap();
        assert_eq!(c.shape(768).unwrap(), Shape { m: 100, r: 0 });
        assert!(parse("task: rte\nmethod: pt\nrank: 4", &[]).is_err());
    }

    #[test]
    fn bad_values_are_named() {
        assert!(refusal("max_steps: 10", &[]).contains("`task`"));
        assert!(refusal("task: rte\nbatch_size: 0", &[]).contains("batch_size"));
        assert!(refusal("task: rte\nadam_beta2: 1.5", &[]).contains("adam_beta2"));
        assert!(refusal("task: rte\ndevice: tpu", &[]).contains("tpu"));
        assert!(refusal("task: rte\npadding: both", &[]).contains("both"));
        assert!(refusal("- a\n- b", &[]).contains("mapping"));
    }

    #[test]
    fn decoding_keys_take_transformers_values() {
        let c = parse("task: rte", &[]).unwrap();
        assert!(c.generation().is_plain_greedy());
        let c = parse(
            "task: rte\ndecode_num_beams: 4\ndecode_length_penalty: 0.6\ndecode_early_stopping: true",
            &["decode_no_repeat_ngram_size=2"],
        )
        .unwrap();
        let g = c.generation();
        assert_eq!(
            (
                g.num_beams,
                g.length_penalty,
                g.early_stopping,
                g.no_repeat_ngram_size
            ),
            (4, 0.6, EarlyStopping::WhenFull, 2)
        );
        let never = parse("task: rte", &["decode_early_stopping=never"]).unwrap();
        assert_eq!(never.decode_early_stopping, EarlyStopping::Never);
        assert_eq!(parse(&never.to_yaml(), &[]).unwrap(), never);
        assert!(refusal("task: rte\ndecode_num_beams: 0", &[]).contains("decode_num_beams"));
        assert!(refusal("task: rte\ndecode_no_repeat_ngram_size: -1", &[])
            .contains("decode_no_repeat_ngram_size"));
        assert!(refusal("task: rte\ndecode_early_stopping: soon", &[]).contains("soon"));
    }

    #[test]
    fn the_resolved_config_round_trips() {
        let c = parse("task: rte\nlr_pair: 5.0e-3", &[]).unwrap();
        let again = parse(&c.to_yaml(), &[]).unwrap();
        assert_eq!(c, again);
    }

    /// A run's `config.yaml` as dept wrote it before the keys of [`KEYS_ADDED_LATER`] existed (commit 4aed4b3), and
    /// the fingerprint its checkpoints recorded.
    const CONFIG_BEFORE_LATER_KEYS: &str = r#"model: tiny
task: rte
data_dir: /work/shared/data
output_dir: run
method: dept
prompt_len: 4
rank: 2
budget: null
max_len: 32
lora_alpha: 8.0
prompt_init: text
prompt_init_text: 'Classify this text is postive or not:'
init_adapter: null
lr_prompt: 0.3
lr_pair: 0.0001
adam_beta1: 0.9
adam_beta2: 0.999
adam_eps: 1e-6
weight_decay: 0.0
warmup_steps: 500
warmup_ratio: null
max_grad_norm: 1.0
max_steps: 2
batch_size: 4
grad_accum: 1
eval_every: 2
save_every: 2
eval_batch_size: 32
early_stopping_patience: null
max_target_len: 20
decode_max_tokens: 2
score_against: decoded_labels
decode_cleanup: true
padding: longest
batching: random
seed: 42
k_shot: null
max_train_examples: 16
max_eval_examples: 8
backbone_dropout: true
device: cpu
precision: fp32
threads: 1
log_every: 50
features: null
images: null
clip_model: null
clip_layer: -1
clip_class_token: false
lr_visual: 0.001
example_weights: true
"#;
    const FINGERPRINT_BEFORE_LATER_KEYS: &str =
        "473e3c70abd73869c5001ab68d12a2e690829222eae46b2b995486905f0851a0";

    #[test]
    fn keys_added_later_leave_older_fingerprints_unchanged() {
        let resumable = crate::trainer::RESUMABLE_CHANGES;
        let now = parse(CONFIG_BEFORE_LATER_KEYS, &[]).unwrap();
        assert_eq!(now.fingerprint(resumable), FINGERPRINT_BEFORE_LATER_KEYS);
        // A later key at anything but its default is part of the experiment.
        let beams = parse(CONFIG_BEFORE_LATER_KEYS, &["decode_num_beams=4"]).unwrap();
        assert_ne!(beams.fingerprint(resumable), FINGERPRINT_BEFORE_LATER_KEYS);
    }
}
