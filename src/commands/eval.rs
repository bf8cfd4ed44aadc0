//! `dept eval`: score a saved adapter on a split of its task.

use std::io::Write;
use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Args;
use dept_data::Split;
use dept_models::EarlyStopping;
use dept_train::{DecodingOverrides, Inference, InferenceOverrides};

#[derive(Args)]
pub struct EvalArgs {
    /// Adapter folder (adapter_config.json + adapter_model.safetensors), e.g. runs/rte-…/best.
    #[arg(long)]
    adapter: PathBuf,
    /// train | validation | test
    #[arg(long, default_value = "test")]
    split: Split,
    #[command(flatten)]
    overrides: InferenceArgs,
    /// Also write every example with its prediction here (JSON lines).
    #[arg(long)]
    predictions: Option<PathBuf>,
}

/// Settings shared by `eval` and `predict`; by default they come from the run folder the adapter is in.
#[derive(Args)]
pub struct InferenceArgs {
    /// Model folder or Hugging Face hub id (t5-base, org/name@revision; resolved through the HF cache) (default: the
    /// run's config, else the adapter's base_model_name_or_path).
    #[arg(long)]
    model: Option<PathBuf>,
    /// Data folder (default: the run's config).
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Task (default: the run's config).
    #[arg(long)]
    task: Option<String>,
    /// cpu | cuda | cuda:N | auto
    #[arg(long)]
    device: Option<String>,
    /// Decoding batch size.
    #[arg(long)]
    batch_size: Option<usize>,
    /// Image feature file of a CLIP-T5 adapter (default: the run's `features`).
    #[arg(long)]
    features: Option<PathBuf>,
    #[command(flatten)]
    decoding: DecodingArgs,
}

/// How to decode, as transformers' `generate` takes it (default: the run's `decode_*` keys; greedy unless set).
#[derive(Args)]
pub struct DecodingArgs {
    /// New tokens at most (default: the run's `decode_max_tokens`).
    #[arg(long)]
    max_new_tokens: Option<i64>,
    /// Beams of beam search; 1 decodes greedily (default: the run's `decode_num_beams`).
    #[arg(long)]
    num_beams: Option<i64>,
    /// Finished beams score sum(log p) / length^penalty: above 0 favours longer answers (default: the run's
    /// `decode_length_penalty`, 1.0).
    #[arg(long, allow_hyphen_values = true)]
    length_penalty: Option<f64>,
    /// true | false | never, as transformers' `early_stopping` (default: the run's `decode_early_stopping`).
    #[arg(long)]
    early_stopping: Option<EarlyStopping>,
    /// No n-gram of this many tokens twice in an answer; 0 is off (default: the run's
    /// `decode_no_repeat_ngram_size`).
    #[arg(long)]
    no_repeat_ngram_size: Option<i64>,
}

impl DecodingArgs {
    fn to_overrides(&self) -> DecodingOverrides {
        DecodingOverrides {
            max_new_tokens: self.max_new_tokens,
            num_beams: self.num_beams,
            length_penalty: self.length_penalty,
            early_stopping: self.early_stopping,
            no_repeat_ngram_size: self.no_repeat_ngram_size,
        }
    }
}

impl InferenceArgs {
    pub fn to_overrides(&self) -> InferenceOverrides {
        InferenceOverrides {
            model: self.model.clone(),
            data_dir: self.data_dir.clone(),
            task: self.task.clone(),
            device: self.device.clone(),
            batch_size: self.batch_size,
            features: self.features.clone(),
            decoding: self.decoding.to_overrides(),
        }
    }
}

pub fn run(args: &EvalArgs) -> Result<()> {
    let inference = Inference::open(&args.adapter, &args.overrides.to_overrides())?;
    let evaluation = inference.evaluate(args.split)?;
    if let Some(path) = &args.predictions {
        let mut out = String::new();
        for (example, prediction) in evaluation.examples.iter().zip(&evaluation.predictions) {
            let mut line = serde_json::json!({
                "id": example.id, "input": example.input, "target": example.target, "prediction": prediction,
            });
            if let Some(image) = &example.extra.image {
                line["image"] = serde_json::json!(image);
            }
            out.push_str(&line.to_string());
            out.push('\n');
        }
        std::fs::write(path, out).with_context(|| format!("writing {}", path.display()))?;
    }
    let metrics: serde_json::Map<String, serde_json::Value> = evaluation
        .scores
        .iter()
        .map(|(k, v)| (k.clone(), serde_json::json!(v)))
        .collect();
    let line = serde_json::json!({
        "adapter": args.adapter.display().to_string(),
        "task": inference.config.task,
        "split": args.split.name(),
        "examples": evaluation.examples.len(),
        "inference_samples_per_s": (evaluation.samples_per_s * 10.0).round() / 10.0,
        "metrics": metrics,
    });
    writeln!(std::io::stdout(), "{line}")?;
    Ok(())
}
