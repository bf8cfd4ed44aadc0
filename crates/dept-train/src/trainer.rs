//! The training run: data, adapter, optimiser, evaluation on schedule, best and last checkpoints, resume.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::time::Instant;

use dept_core::{DecomposedPrompt, DeptConfig, PromptInit};
use dept_data::task::Metric;
use dept_data::{Split, Task, TextExample, OFFICIAL_SPLIT_SEED};
use dept_models::features::FeatureStore;
use dept_models::{load_backbone, Backbone, PromptedModel, TextTokenizer};
use serde_json::{json, Value};
use tch::{Device, Kind, Tensor};

use crate::batch::{encode_for, Batch, Encoded};
use crate::checkpoint::{self, TrainState};
use crate::config::{ExperimentConfig, Precision, PromptInitKind, Shape};
use crate::evaluate::{score, Decoder};
use crate::memory::peak_memory;
use crate::optim::{AdamW, AdamWConfig};
use crate::order::DataOrder;
use crate::plot::curves_svg;
use crate::run_dir::{results_csv, MetricsLog, RunDir};
use crate::schedule::LinearWarmup;
use crate::step;
use crate::TrainError;

/// How `dept train` was asked to behave beyond the config.
#[derive(Debug, Clone, Default)]
pub struct TrainOptions {
    /// No progress bar or per-step lines.
    pub quiet: bool,
    /// Delete an existing run folder instead of resuming from it.
    pub overwrite: bool,
    /// Fail unless there is a checkpoint to resume from (`--resume`).
    pub require_checkpoint: bool,
}

/// What a finished run reports.
#[derive(Debug, Clone)]
pub struct TrainOutcome {
    pub run_dir: PathBuf,
    pub steps: u64,
    pub best_step: Option<u64>,
    pub best_validation: Option<f64>,
    pub test: Vec<(String, f64)>,
    pub resumed_from: Option<u64>,
}

/// The optimiser group of a backbone's own trained parameters (CLIP-T5's visual embedding), after the adapter's
/// prompt and pair groups.
pub const VISUAL_GROUP: usize = 2;

/// Keys that may differ between a checkpoint's config and a resumed run's without changing what is trained.
pub(crate) const RESUMABLE_CHANGES: &[&str] =
    &["log_every", "device", "threads", "eval_batch_size"];

/// A task's data, formatted and tokenised.
struct SplitData {
    examples: Vec<TextExample>,
    encoded: Vec<Encoded>,
}

/// Runs a whole experiment: set-up (or resume), optimiser steps with evaluation and checkpoints on schedule, then
/// the test split on the best adapter.
///
/// A stop signal ([`crate::stop`]) ends it with [`TrainError::Preempted`] after saving `last/`: in the middle
/// of an optimiser step the partial step is dropped and the state from before it saved; during an evaluation the
/// applied step is saved with the evaluation owed, which the resumed run runs first. Either way the resumed run
/// ends bit for bit where an uninterrupted one does.
pub fn train(
    config: &ExperimentConfig,
    options: &TrainOptions,
) -> Result<TrainOutcome, TrainError> {
    let mut trainer = Trainer::new(config, options)?;
    let mut next = trainer.owed_evaluation()?;
    while next == Continue::Go && !trainer.done() {
        let step = trainer.step()?;
        next = trainer.after_step(&step)?;
    }
    trainer.finish()
}

/// When to evaluate, when to save, which evaluation is best and when to stop early: the run's bookkeeping, kept
/// apart from tensors so that it can be tested on its own.
#[derive(Debug, Clone, Copy)]
pub struct Cadence {
    pub max_steps: u64,
    pub eval_every: u64,
    pub save_every: u64,
    pub early_stopping_patience: Option<u32>,
}

/// What an evaluation did to the run's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verdict {
    /// Better than every earlier evaluation (the first always is): `best/` is replaced.
    pub improved: bool,
    /// `early_stopping_patience` evaluations in a row without improvement.
    pub stop_early: bool,
}

impl Cadence {
    fn of(config: &ExperimentConfig) -> Self {
        Cadence {
            max_steps: config.max_steps,
            eval_every: config.eval_every,
            save_every: config.save_every,
            early_stopping_patience: config.early_stopping_patience,
        }
    }

    /// Evaluation after `step` optimiser steps: every `eval_every`, and at the last step.
    pub fn evaluates_at(&self, step: u64) -> bool {
        step % self.eval_every == 0 || step == self.max_steps
    }

    /// A `last/` checkpoint after `step`: every `save_every`, at the last step, and when stopping early.
    pub fn saves_at(&self, step: u64, stopping: bool) -> bool {
        step % self.save_every == 0 || step == self.max_steps || stopping
    }

    /// Records an evaluation of the best metric (higher is better; ties keep the earlier step, as the HF Trainer's
    /// `load_best_model_at_end` does) into `state`.
    pub fn record(&self, state: &mut TrainState, value: f64) -> Verdict {
        let improved = state.best_metric.is_none_or(|best| value > best);
        if improved {
            state.best_metric = Some(value);
            state.best_step = Some(state.step);
            state.evals_without_improvement = 0;
        } else {
            state.evals_without_improvement += 1;
        }
        Verdict {
            improved,
            stop_early: self.stopped_early(state),
        }
    }

    /// `early_stopping_patience` evaluations in a row without improvement (at least one): the run stopped, or
    /// stops now. A run resumed from such a state (stopped while testing) trains no further.
    pub fn stopped_early(&self, state: &TrainState) -> bool {
        let misses = state.evals_without_improvement;
        misses > 0 && self.early_stopping_patience.is_some_and(|p| misses >= p)
    }
}

/// Whether the run goes on after a step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Continue {
    Go,
    Stop,
}

/// What one optimiser step measured.
#[derive(Debug, Clone, Copy)]
pub struct StepReport {
    pub loss: f64,
    pub grad_norm: f64,
    pub lr_prompt: f64,
    pub lr_pair: f64,
    /// CLIP-T5's visual embedding.
    pub lr_visual: Option<f64>,
    pub examples: usize,
}

/// A training run in small steps: [`Trainer::new`] (model, data, run folder, adapter, resume), [`Trainer::step`]
/// (one optimiser step over `grad_accum` batches), [`Trainer::after_step`] (log, evaluate, checkpoint on
/// schedule) and [`Trainer::finish`] (test on the best adapter, results row, plot).
pub struct Trainer<'a> {
    config: &'a ExperimentConfig,
    task: &'static Task,
    /// The validation metric that picks the best checkpoint (`best_metric`, else the task's own).
    best_metric: Metric,
    shape: Shape,
    device: Device,
    backbone: Box<dyn Backbone>,
    tokenizer: TextTokenizer,
    /// Vision-language runs: the images' features, read per batch.
    features: Option<FeatureStore>,
    /// The backbone's own trained parameters (CLIP-T5's visual embedding), saved with every checkpoint.
    trained: Vec<(String, Tensor)>,
    train_data: SplitData,
    validation: SplitData,
    test: SplitData,
    run: RunDir,
    adapter: DecomposedPrompt,
    optimizer: AdamW,
    params: Vec<Tensor>,
    schedule: LinearWarmup,
    cadence: Cadence,
    order: DataOrder,
    state: TrainState,
    resumed_from: Option<u64>,
    /// The config's fingerprint, recorded in every checkpoint's manifest and checked on resume.
    config_sha256: String,
    log: MetricsLog,
    progress: Progress,
    window: (Instant, usize),
}

impl<'a> Trainer<'a> {
    /// Everything before the first step. What can be checked cheaply (shape, data files) is checked before the
    /// data is read and tokenised; an existing checkpoint in the run folder is resumed.
    pub fn new(config: &'a ExperimentConfig, options: &TrainOptions) -> Result<Self, TrainError> {
        let task = dept_data::task(&config.task)?;
        let best_metric = config
            .best_metric_of(task)
            .map_err(|message| TrainError::Run(format!("experiment config: {message}")))?;
        let (device, backbone, tokenizer, features) = open_model(config, options.quiet)?;
        let shape = checked_shape(config, task, backbone.as_ref(), device)?;
        let [train_data, validation, test] =
            read_data(config, task, &tokenizer, backbone.as_ref())?;
        let run = prepare_run_dir(config, shape, options)?;
        // new_adapter seeds the generator itself, so its draw does not depend on what loading did before it; a
        // checkpoint in the run folder then replaces the draw.
        let mut adapter = new_adapter(config, shape, backbone.as_ref(), &tokenizer)?;
        let trained = backbone.trainable_parameters();
        let mut optimizer = new_optimizer(config, &adapter, &trained);
        let checkpoint_bytes = checkpoint::estimated_bytes(&checkpoint::Contents {
            adapter: &adapter,
            trained: &trained,
            optimizer: Some(&optimizer),
            state: &TrainState::default(),
            config_sha256: "",
        });
        if let Some(warning) = crate::run_dir::preflight(&run.root, checkpoint_bytes)? {
            tracing::warn!("{warning}");
        }
        let config_sha256 = config.fingerprint(RESUMABLE_CHANGES);
        let restored = resume(
            options,
            &run,
            &mut adapter,
            &trained,
            &mut optimizer,
            &config_sha256,
        )?;
        let resumed_from = restored.as_ref().map(|state| state.step);
        let state = restored.unwrap_or_default();
        let log = MetricsLog::open(&run.metrics(), state.step)?;
        let mut params = adapter.parameters();
        params.extend(trained_tensors(&trained));
        Ok(Trainer {
            config,
            task,
            best_metric,
            shape,
            device,
            schedule: LinearWarmup {
                warmup_steps: config.warmup(),
                total_steps: config.max_steps,
            },
            cadence: Cadence::of(config),
            order: data_order(config, &train_data),
            progress: Progress::new(config, options, state.step),
            backbone,
            tokenizer,
            features,
            trained,
            train_data,
            validation,
            test,
            run,
            adapter,
            optimizer,
            params,
            state,
            resumed_from,
            config_sha256,
            log,
            window: (Instant::now(), 0),
        })
    }

    pub fn done(&self) -> bool {
        self.state.step >= self.config.max_steps || self.cadence.stopped_early(&self.state)
    }

    /// One optimiser step: `grad_accum` batches forward and backward, then clipping and the two-rate AdamW step.
    /// A non-finite loss stops the run before the step is applied, so `last/` keeps finite values.
    pub fn step(&mut self) -> Result<StepReport, TrainError> {
        let config = self.config;
        // Drawing the batches moves the data cursor; a stop before the step is applied saves this instead.
        let before = self.state.clone();
        // Dropout masks depend only on (seed, step): a resumed run draws exactly what the uninterrupted one did.
        tch::manual_seed(step_seed(config.seed, self.state.step));
        self.optimizer.zero_grad();
        let (batches, examples) = self.next_batches()?;
        let model = PromptedModel::new(self.backbone.as_ref(), &self.adapter);
        let loss_sum = match step::forward_backward(model, &batches, config.backbone_dropout) {
            Err(TrainError::StopRequested { signal }) => {
                // The micro-steps done so far only filled gradients, which are dropped: the saved state is the
                // last completed step, and the resumed run draws these batches (and dropout masks) again.
                self.state = before;
                return Err(self.preempt(signal));
            }
            result => result?,
        };
        if !loss_sum.is_finite() {
            return Err(TrainError::NonFiniteLoss {
                loss: loss_sum,
                step: self.state.step + 1,
                kept: self.run.last(),
            });
        }
        let factor = self.schedule.factor(self.state.step);
        let (lr_prompt, lr_pair) = (factor * config.lr_prompt, factor * config.lr_pair);
        let lr_visual = factor * config.lr_visual;
        let grad_norm = step::update_groups(
            &mut self.optimizer,
            &self.params,
            config.max_grad_norm,
            |group| match group {
                dept_core::PAIR_GROUP => lr_pair,
                VISUAL_GROUP => lr_visual,
                _ => lr_prompt,
            },
        );
        self.state.step += 1;
        Ok(StepReport {
            loss: loss_sum,
            grad_norm,
            lr_prompt,
            lr_pair,
            lr_visual: (!self.trained.is_empty()).then_some(lr_visual),
            examples,
        })
    }

    /// The `grad_accum` batches of the next optimiser step and how many examples they hold. Drawing them moves
    /// the data order kept in the train state, so a checkpoint taken after the step resumes with the next batch.
    fn next_batches(&mut self) -> Result<(Vec<Batch>, usize), TrainError> {
        let config = self.config;
        let mut batches = Vec::with_capacity(config.grad_accum);
        let mut examples = 0;
        for _ in 0..config.grad_accum {
            let indices = self.order.next_batch(&mut self.state);
            let items: Vec<&Encoded> = indices
                .iter()
                .map(|&i| &self.train_data.encoded[i])
                .collect();
            examples += items.len();
            batches.push(
                Batch::for_training(
                    &items,
                    self.backbone.architecture(),
                    config.padding,
                    config.max_len as usize,
                    self.backbone.pad_token_id(),
                    self.device,
                )
                .with_visual(&items, self.features.as_ref(), self.device)?
                .with_weights(&items, config.example_weights, self.device),
            );
        }
        Ok((batches, examples))
    }

    /// Logs the step, then evaluates and checkpoints when the cadence says so.
    pub fn after_step(&mut self, report: &StepReport) -> Result<Continue, TrainError> {
        self.log_step(report)?;
        self.evaluate_and_save()
    }

    /// A resumed run whose checkpoint a stop signal saved in the middle of an evaluation runs that evaluation
    /// (and the checkpoints and early stopping after it) before any step, as the uninterrupted run did.
    pub fn owed_evaluation(&mut self) -> Result<Continue, TrainError> {
        if !self.state.evaluation_owed {
            return Ok(Continue::Go);
        }
        self.state.evaluation_owed = false;
        self.progress.message(&format!(
            "step {}: running the evaluation that a stop signal interrupted",
            self.state.step
        ));
        self.evaluate_and_save()
    }

    /// The evaluation, checkpoints and early stopping the cadence asks for after the step in `state`. A stop
    /// signal during the evaluation saves `last/` with the evaluation owed (nothing of it was recorded yet).
    fn evaluate_and_save(&mut self) -> Result<Continue, TrainError> {
        let step = self.state.step;
        let verdict = if self.cadence.evaluates_at(step) {
            match self.evaluate() {
                Err(TrainError::StopRequested { signal }) => {
                    self.state.evaluation_owed = true;
                    return Err(self.preempt(signal));
                }
                verdict => Some(verdict?),
            }
        } else {
            None
        };
        let stop_early = verdict.is_some_and(|v| v.stop_early);
        if verdict.is_some_and(|v| v.improved) {
            self.save_checkpoint(&self.run.best(), false)?;
        }
        if self.cadence.saves_at(step, stop_early) {
            self.save_checkpoint(&self.run.last(), true)?;
        }
        if stop_early {
            self.progress.message(&format!(
                "early stopping at step {step}: {} evaluations without a better {}",
                self.state.evals_without_improvement,
                self.best_metric.name()
            ));
            return Ok(Continue::Stop);
        }
        Ok(Continue::Go)
    }

    /// After a stop signal: saves `last/` from the current state, which the caller has made consistent, and
    /// returns the error that ends the run (or the save's own error).
    fn preempt(&mut self, signal: &'static str) -> TrainError {
        let step = self.state.step;
        self.progress.message(&format!(
            "{signal}: saving a checkpoint of step {step}, then stopping (a second SIGINT aborts at once)"
        ));
        if let Err(error) = self.save_checkpoint(&self.run.last(), true) {
            return error;
        }
        TrainError::Preempted {
            signal,
            step,
            checkpoint: self.run.last(),
        }
    }

    /// Writes the adapter, the trained backbone parameters and the trainer state (and, for `last/`, the
    /// optimiser) into `dir`: see [`checkpoint::save`].
    fn save_checkpoint(&self, dir: &Path, with_optimizer: bool) -> Result<(), TrainError> {
        checkpoint::save(
            dir,
            &checkpoint::Contents {
                adapter: &self.adapter,
                trained: &self.trained,
                optimizer: with_optimizer.then_some(&self.optimizer),
                state: &self.state,
                config_sha256: &self.config_sha256,
            },
        )
    }

    fn log_step(&mut self, report: &StepReport) -> Result<(), TrainError> {
        let peak = peak_memory(self.device);
        self.window.1 += report.examples;
        let elapsed = self.window.0.elapsed().as_secs_f64();
        let examples_per_s = if elapsed > 0.0 {
            self.window.1 as f64 / elapsed
        } else {
            0.0
        };
        if self.state.step % self.config.log_every == 0 {
            self.window = (Instant::now(), 0);
        }
        let mut record = json!({
            "step": self.state.step, "epoch": self.state.epoch, "loss": report.loss,
            "lr_prompt": report.lr_prompt, "lr_pair": report.lr_pair, "grad_norm": report.grad_norm,
            "examples_per_s": round3(examples_per_s),
            "peak_memory_mb": peak.map(|p| p.mib().round()), "peak_memory_kind": peak.map(|p| p.kind.as_str()),
        });
        if let Some(lr) = report.lr_visual {
            record["lr_visual"] = json!(lr);
        }
        self.log.append(&record)?;
        self.progress
            .step(self.state.step, report.loss, examples_per_s);
        Ok(())
    }

    /// Greedy decoding on the validation split, scored and logged, recorded against the best so far.
    fn evaluate(&mut self) -> Result<Verdict, TrainError> {
        let start = Instant::now();
        let scores = self.score_split(&self.adapter, &self.validation)?;
        let samples_per_s = self.validation.encoded.len() as f64 / start.elapsed().as_secs_f64();
        let value = lookup(&scores, self.best_metric.name());
        self.log.append(&json!({
            "step": self.state.step, "split": "validation", "metrics": to_map(&scores),
            "inference_samples_per_s": round3(samples_per_s),
        }))?;
        let verdict = self.cadence.record(&mut self.state, value);
        self.progress.message(&format!(
            "step {}: validation {}{}",
            self.state.step,
            describe(&scores),
            if verdict.improved {
                " (best so far)"
            } else {
                ""
            }
        ));
        Ok(verdict)
    }

    fn score_split(
        &self,
        adapter: &DecomposedPrompt,
        data: &SplitData,
    ) -> Result<Vec<(String, f64)>, TrainError> {
        let predictions = decoder(
            self.config,
            self.backbone.as_ref(),
            adapter,
            &self.tokenizer,
            self.features.as_ref(),
        )
        .predict(&data.encoded)?;
        score(
            self.config,
            self.task,
            &self.tokenizer,
            &predictions,
            &data.examples,
            &data.encoded,
        )
    }

    /// The run's row of `results.csv`: what was trained, how long, the best validation
    /// score and every test metric, named so that rows of different runs line up in one table.
    fn results_columns(
        &self,
        state: &TrainState,
        test_scores: &[(String, f64)],
    ) -> Vec<(String, String)> {
        let config = self.config;
        let best_metric = self.best_metric.name();
        let mut columns: Vec<(String, String)> = vec![
            ("task".into(), self.task.name.to_string()),
            (
                "method".into(),
                format!("{:?}", config.method).to_lowercase(),
            ),
            ("m".into(), self.shape.m.to_string()),
            ("r".into(), self.shape.r.to_string()),
            ("lr_prompt".into(), config.lr_prompt.to_string()),
            ("lr_pair".into(), config.lr_pair.to_string()),
            ("seed".into(), config.seed.to_string()),
            ("steps".into(), state.step.to_string()),
            (
                "best_step".into(),
                state.best_step.map(|s| s.to_string()).unwrap_or_default(),
            ),
            (
                format!("validation_{best_metric}"),
                state.best_metric.map(|v| v.to_string()).unwrap_or_default(),
            ),
        ];
        if !self.trained.is_empty() {
            let visual = trained_count(&self.trained);
            columns.push(("lr_visual".into(), config.lr_visual.to_string()));
            columns.push(("visual_params".into(), visual.to_string()));
        }
        columns.extend(
            test_scores
                .iter()
                .map(|(k, v)| (format!("test_{k}"), v.to_string())),
        );
        columns.push(("run_dir".into(), self.run.root.display().to_string()));
        columns
    }

    /// The test split on the best adapter (by `best_metric`, as `load_best_model_at_end`), then the
    /// results row and the plot.
    pub fn finish(mut self) -> Result<TrainOutcome, TrainError> {
        self.progress.finish();
        let state = self.state.clone();
        let best_dir =
            checkpoint::for_testing(&self.run.best(), &self.run.last(), &self.config_sha256)?;
        let best = DecomposedPrompt::load(&best_dir, self.device)?;
        checkpoint::load_trained(&best_dir, &self.trained)?;
        let test_scores = match self.score_split(&best, &self.test) {
            Err(TrainError::StopRequested { signal }) => {
                // `last/` already holds this state: every run saves it at its last step and when it stops early.
                // It is not written again, since the backbone now holds the best checkpoint's trained parameters.
                return Err(TrainError::Preempted {
                    signal,
                    step: state.step,
                    checkpoint: self.run.last(),
                });
            }
            result => result?,
        };
        self.log.append(&json!({"step": state.best_step.unwrap_or(state.step), "split": "test", "metrics": to_map(&test_scores)}))?;
        tracing::info!(
            "test (best step {:?}): {}",
            state.best_step,
            describe(&test_scores)
        );

        let columns = self.results_columns(&state, &test_scores);
        let run = &self.run;
        run.write_text(&run.results(), &results_csv(&columns))?;
        run.write_text(
            &run.plot(),
            &curves_svg(&self.log.records(), self.best_metric.name()),
        )?;

        Ok(TrainOutcome {
            run_dir: run.root.clone(),
            steps: state.step,
            best_step: state.best_step,
            best_validation: state.best_metric,
            test: test_scores,
            resumed_from: self.resumed_from,
        })
    }
}

/// What [`open_model`] opens.
pub(crate) type OpenedModel = (
    Device,
    Box<dyn Backbone>,
    TextTokenizer,
    Option<FeatureStore>,
);

/// The device, backbone (at the configured precision), tokenizer and, for a vision-language run, the feature file
/// a config names (CLIP-T5 is built for its width); training and inference both open their model here so they
/// run it the same way.
pub(crate) fn open_model(
    config: &ExperimentConfig,
    quiet: bool,
) -> Result<OpenedModel, TrainError> {
    if let Some(threads) = config.threads {
        tch::set_num_threads(threads);
    }
    let device = crate::device::resolve_device(&config.device)?;
    // A hub id (`t5-base`, `google/flan-t5-base@<revision>`) becomes its snapshot folder in the Hugging Face
    // cache, downloaded there when online; a folder stays itself. The config keeps what the user wrote.
    let resolved = ExperimentConfig {
        model: dept_hub::model_folder(&config.model)?,
        ..config.clone()
    };
    let config = &resolved;
    if config.precision == Precision::Bf16 && device == Device::Cpu {
        tracing::warn!(
            "precision bf16 on CPU: it is meant for CUDA; most CPUs run bf16 matrix work slower than fp32"
        );
    }
    let features = crate::vision::open_features(config, device, quiet)?;
    let mut backbone: Box<dyn Backbone> = match &features {
        Some(store) => crate::vision::vision_language_backbone(config, store, device)?,
        None => load_backbone(&config.model, device)?,
    };
    if config.precision == Precision::Bf16 {
        backbone.set_float_kind(Kind::BFloat16)?;
    }
    let tokenizer = TextTokenizer::from_model_dir(&config.model)?;
    Ok((device, backbone, tokenizer, features))
}

/// Decoding (greedy or beam search) as the config sets it up.
pub fn decoder<'a>(
    config: &ExperimentConfig,
    backbone: &'a dyn Backbone,
    adapter: &'a DecomposedPrompt,
    tokenizer: &'a TextTokenizer,
    features: Option<&'a FeatureStore>,
) -> Decoder<'a> {
    Decoder {
        backbone,
        adapter,
        tokenizer,
        features,
        padding: config.padding,
        max_len: config.max_len as usize,
        batch_size: config.eval_batch_size,
        generation: config.generation(),
        cleanup: config.decode_cleanup,
    }
}

/// Solves the adapter's (m, r) for the backbone's width and checks that DePT can be built with it, before any
/// data is read.
fn checked_shape(
    config: &ExperimentConfig,
    task: &Task,
    backbone: &dyn Backbone,
    device: Device,
) -> Result<Shape, TrainError> {
    let d = backbone.hidden_size();
    let shape = config
        .shape(d)
        .map_err(|message| TrainError::Run(format!("experiment config: {message}")))?;
    tracing::info!(
        "model {} (d = {d}) on {device:?}; task {}; DePT m = {}, r = {}, s = {}",
        config.model.display(),
        task.name,
        shape.m,
        shape.r,
        config.max_len
    );
    DeptConfig::new(shape.m, shape.r, config.max_len, d)?;
    Ok(shape)
}

/// The three splits, read and tokenised. Every split's file is looked for first, so that a missing test file
/// fails in a second rather than after the training split has been tokenised; an empty split is an error, not
/// a run that trains or scores on nothing.
fn read_data(
    config: &ExperimentConfig,
    task: &Task,
    tokenizer: &TextTokenizer,
    backbone: &dyn Backbone,
) -> Result<[SplitData; 3], TrainError> {
    for split in Split::ALL {
        dept_data::find_source(task, &config.data_dir, task.source_split(split))?;
    }
    let splits = load_data(config, task, tokenizer, backbone)?;
    let [train_data, validation, test] = &splits;
    tracing::info!(
        "data: train {}, validation {}, test {} examples",
        train_data.examples.len(),
        validation.examples.len(),
        test.examples.len()
    );
    for (split, data) in [
        (Split::Train, train_data),
        (Split::Validation, validation),
        (Split::Test, test),
    ] {
        if data.encoded.is_empty() {
            return Err(TrainError::EmptySplit {
                task: task.name.to_string(),
                split,
                data_dir: config.data_dir.clone(),
            });
        }
    }
    Ok(splits)
}

/// AdamW over the adapter's groups (prompt, pair) and, when the backbone trains some of its own parameters
/// (CLIP-T5's visual embedding), a third group for them, which has its own learning rate.
fn new_optimizer(
    config: &ExperimentConfig,
    adapter: &DecomposedPrompt,
    trained: &[(String, Tensor)],
) -> AdamW {
    let mut groups = adapter.param_groups();
    if !trained.is_empty() {
        let visual_params = trained_count(trained);
        tracing::info!(
            "trainable: adapter {} parameters (the PT/DePT budget, l·d = m·d + (s+d)·r), CLIP-T5 visual \
             embedding {visual_params} more (outside the budget; VL-Adapter's tables count it as updated)",
            adapter.parameters().iter().map(Tensor::numel).sum::<usize>()
        );
        groups.push((VISUAL_GROUP, trained_tensors(trained)));
    }
    AdamW::new(
        groups,
        AdamWConfig {
            beta1: config.adam_beta1,
            beta2: config.adam_beta2,
            eps: config.adam_eps,
            weight_decay: config.weight_decay,
        },
    )
}

/// Restores the run folder's `last/` checkpoint into the adapter, the backbone's trained parameters and the
/// optimiser, and returns its state; `None` when there is none to resume (an error under `--resume`, which
/// promises a resumed run).
fn resume(
    options: &TrainOptions,
    run: &RunDir,
    adapter: &mut DecomposedPrompt,
    trained: &[(String, Tensor)],
    optimizer: &mut AdamW,
    config_sha256: &str,
) -> Result<Option<TrainState>, TrainError> {
    let checkpoint_dir = checkpoint::resumable(&run.last(), config_sha256)?;
    if options.require_checkpoint && checkpoint_dir.is_none() {
        return Err(TrainError::Run(format!(
            "--resume: no checkpoint in {}; drop --resume to start a new run",
            run.last().display()
        )));
    }
    let Some(dir) = checkpoint_dir else {
        return Ok(None);
    };
    let state = checkpoint::restore(&dir, adapter, trained, optimizer)?;
    tracing::info!("resuming from {} at step {}", dir.display(), state.step);
    Ok(Some(state))
}

/// The order training examples are drawn in: batches of similar lengths or shuffled, as the config says, by
/// each example's tokenised input length.
fn data_order(config: &ExperimentConfig, train_data: &SplitData) -> DataOrder {
    DataOrder::new(
        train_data
            .encoded
            .iter()
            .map(|e| e.input_ids.len())
            .collect(),
        config.batch_size,
        config.seed,
        config.batching,
    )
}

fn load_data(
    config: &ExperimentConfig,
    task: &Task,
    tokenizer: &TextTokenizer,
    backbone: &dyn Backbone,
) -> Result<[SplitData; 3], TrainError> {
    let mut splits = Vec::with_capacity(3);
    for split in [Split::Train, Split::Validation, Split::Test] {
        let examples = split_examples(config, task, split)?;
        let encoded = encode_for(
            backbone.architecture(),
            tokenizer,
            &examples,
            config.max_len as usize,
            config.max_target_len,
            backbone.eos_token_id(),
        )?;
        splits.push(SplitData { examples, encoded });
    }
    let mut it = splits.into_iter();
    match (it.next(), it.next(), it.next()) {
        (Some(a), Some(b), Some(c)) => Ok([a, b, c]),
        _ => Err(TrainError::Run("internal: three splits expected".into())),
    }
}

/// The examples of a split as the run sees them: the official split, cut by `max_train_examples` /
/// `max_eval_examples` to seeded rows (seed 42, not the first rows), then (training only) the k-shot draw, in the
/// official code's order. Evaluation of a saved adapter uses the same rows.
pub(crate) fn split_examples(
    config: &ExperimentConfig,
    task: &Task,
    split: Split,
) -> Result<Vec<TextExample>, TrainError> {
    let cap = match split {
        Split::Train => config.max_train_examples,
        _ => config.max_eval_examples,
    };
    let examples =
        dept_data::load_split_subsampled(task, &config.data_dir, split, OFFICIAL_SPLIT_SEED, cap)?;
    match (split, config.k_shot) {
        (Split::Train, Some(k)) => Ok(dept_data::k_shot(task, &examples, k, config.seed)?),
        _ => Ok(examples),
    }
}

/// Creates the run folder, or checks that an existing one was made by the same experiment before resuming.
fn prepare_run_dir(
    config: &ExperimentConfig,
    shape: Shape,
    options: &TrainOptions,
) -> Result<RunDir, TrainError> {
    let root = config.run_dir(shape);
    if options.overwrite {
        if crate::run_dir::RunLock::is_held(&root) {
            return Err(TrainError::Run(format!(
                "--overwrite: {} is in use by another dept train right now; stop it first",
                root.display()
            )));
        }
        crate::run_dir::remove_marked(&root)?;
    }
    let run = RunDir::create(&root)?;
    let resolved = config.to_yaml();
    if checkpoint::existing(&run.last()).is_some() {
        let saved = std::fs::read_to_string(run.config()).unwrap_or_default();
        let saved: ExperimentConfig =
            serde_yaml::from_str(&saved).map_err(|e| TrainError::Config {
                path: run.config(),
                message: format!("cannot read the saved config of the run being resumed: {e}"),
            })?;
        let changed = changed_keys(&saved, config);
        if !changed.is_empty() {
            return Err(TrainError::Config {
                path: run.config(),
                message: format!(
                    "{} has a checkpoint from a different experiment ({} changed); resume with the same config, \
                     or pass --overwrite to start again",
                    run.root.display(),
                    changed.join(", ")
                ),
            });
        }
    }
    run.write_text(&run.config(), &resolved)?;
    Ok(run)
}

fn changed_keys(a: &ExperimentConfig, b: &ExperimentConfig) -> Vec<String> {
    let (Ok(serde_yaml::Value::Mapping(a)), Ok(serde_yaml::Value::Mapping(b))) =
        (serde_yaml::to_value(a), serde_yaml::to_value(b))
    else {
        return vec!["(unreadable)".into()];
    };
    a.iter()
        .filter(|(k, v)| b.get(*k) != Some(*v))
        .filter_map(|(k, _)| k.as_str())
        .filter(|k| !RESUMABLE_CHANGES.contains(k))
        .map(str::to_string)
        .collect()
}

/// The adapter at its starting point, initialised as the config says (under the run's seed).
fn new_adapter(
    config: &ExperimentConfig,
    shape: Shape,
    backbone: &dyn Backbone,
    tokenizer: &TextTokenizer,
) -> Result<DecomposedPrompt, TrainError> {
    tch::manual_seed(config.seed as i64);
    let init = match config.prompt_init {
        PromptInitKind::Text => PromptInit::Text(config.prompt_init_text.clone()),
        PromptInitKind::SampledVocab => PromptInit::SampledVocab,
        PromptInitKind::Random => PromptInit::Random,
    };
    let mut dept = DeptConfig::new(shape.m, shape.r, config.max_len, backbone.hidden_size())?
        .with_alpha(config.lora_alpha)
        .with_init(&init);
    dept.base_model_name_or_path = Some(config.model.display().to_string());
    dept.task_type = backbone.architecture().peft_task_type().into();
    let device = backbone.device();
    let rows = match &init {
        PromptInit::Text(text) => {
            let ids = dept.text_init_ids(&tokenizer.encode(text, None)?)?;
            Some(backbone.embed(&Tensor::from_slice(&ids).to_device(device)))
        }
        PromptInit::SampledVocab => {
            let high = backbone.vocab_size().min(5000);
            let ids = Tensor::randint(high, [shape.m], (Kind::Int64, device));
            Some(backbone.embed(&ids))
        }
        PromptInit::Random => None,
    };
    let mut adapter = DecomposedPrompt::new(dept, rows.as_ref(), device)?;
    if let Some(dir) = &config.init_adapter {
        let pretrained = DecomposedPrompt::load(dir, device)?;
        adapter
            .copy_from(&pretrained)
            .map_err(|e| TrainError::Config {
                path: dir.clone(),
                message: format!("init_adapter does not fit this experiment: {e}"),
            })?;
        tracing::info!("adapter initialised from {}", dir.display());
    }
    Ok(adapter)
}

/// The backbone's own variables that train: those requiring gradients (CLIP-T5's object-order rows do not).
fn trained_tensors(variables: &[(String, Tensor)]) -> Vec<Tensor> {
    variables
        .iter()
        .filter(|(_, t)| t.requires_grad())
        .map(|(_, t)| t.shallow_clone())
        .collect()
}

fn trained_count(variables: &[(String, Tensor)]) -> usize {
    trained_tensors(variables).iter().map(Tensor::numel).sum()
}

fn step_seed(seed: u64, step: u64) -> i64 {
    // SplitMix64 of (seed, step): unrelated streams for neighbouring steps.
    let mut z = seed
        .wrapping_mul(0x9E37_79B9_7F4A_7C15)
        .wrapping_add(step.wrapping_add(1).wrapping_mul(0xBF58_476D_1CE4_E5B9));
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    ((z ^ (z >> 31)) >> 1) as i64
}

fn lookup(scores: &[(String, f64)], name: &str) -> f64 {
    scores
        .iter()
        .find(|(k, _)| k == name)
        .map_or(f64::NAN, |(_, v)| *v)
}

fn to_map(scores: &[(String, f64)]) -> Value {
    Value::Object(
        scores
            .iter()
            .map(|(k, v)| (k.clone(), json!(round3(*v))))
            .collect(),
    )
}

fn describe(scores: &[(String, f64)]) -> String {
    scores
        .iter()
        .map(|(k, v)| format!("{k} {v:.2}"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn round3(v: f64) -> f64 {
    (v * 1000.0).round() / 1000.0
}

/// A progress bar on a terminal; plain log lines every `log_every` steps otherwise; nothing with `--quiet`.
struct Progress {
    bar: Option<indicatif::ProgressBar>,
    quiet: bool,
    log_every: u64,
    max_steps: u64,
}

impl Progress {
    fn new(config: &ExperimentConfig, options: &TrainOptions, start: u64) -> Self {
        let bar = (!options.quiet && std::io::stderr().is_terminal()).then(|| {
            let bar = indicatif::ProgressBar::new(config.max_steps);
            bar.set_style(
                indicatif::ProgressStyle::with_template(
                    "{bar:40} {pos}/{len} steps  {msg}  [{elapsed_precise} < {eta_precise}]",
                )
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
            );
            bar.set_position(start);
            bar
        });
        Progress {
            bar,
            quiet: options.quiet,
            log_every: config.log_every,
            max_steps: config.max_steps,
        }
    }

    fn step(&self, step: u64, loss: f64, examples_per_s: f64) {
        match &self.bar {
            Some(bar) => {
                bar.set_position(step);
                bar.set_message(format!("loss {loss:.4}  {examples_per_s:.1} ex/s"));
            }
            None if !self.quiet && (step % self.log_every == 0 || step == self.max_steps) => {
                tracing::info!(
                    "step {step}/{}: loss {loss:.4}, {examples_per_s:.1} examples/s",
                    self.max_steps
                );
            }
            None => {}
        }
    }

    fn message(&self, text: &str) {
        match &self.bar {
            Some(bar) => bar.println(text),
            None => tracing::info!("{text}"),
        }
    }

    fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cadence(patience: Option<u32>) -> Cadence {
        Cadence {
            max_steps: 25,
            eval_every: 10,
            save_every: 4,
            early_stopping_patience: patience,
        }
    }

    #[test]
    fn evaluation_and_saving_follow_their_cadence_and_the_last_step() {
        let c = cadence(None);
        let evals: Vec<u64> = (1..=25).filter(|&s| c.evaluates_at(s)).collect();
        assert_eq!(evals, [10, 20, 25]);
        let saves: Vec<u64> = (1..=25).filter(|&s| c.saves_at(s, false)).collect();
        assert_eq!(saves, [4, 8, 12, 16, 20, 24, 25]);
        assert!(
            c.saves_at(7, true),
            "stopping early saves wherever it happens"
        );
    }

    #[test]
    fn the_best_is_the_first_of_the_highest_values() {
        let c = cadence(None);
        let mut state = TrainState::default();
        let mut improvements = Vec::new();
        for (step, value) in [(10, 50.0), (20, 70.0), (30, 70.0), (40, 60.0), (50, 71.0)] {
            state.step = step;
            improvements.push(c.record(&mut state, value).improved);
        }
        assert_eq!(improvements, [true, true, false, false, true]);
        assert_eq!((state.best_step, state.best_metric), (Some(50), Some(71.0)));
        // A tie never replaces the earlier best.
        let mut state = TrainState::default();
        for (step, value) in [(10, 70.0), (20, 70.0)] {
            state.step = step;
            c.record(&mut state, value);
        }
        assert_eq!(state.best_step, Some(10));
        // NaN (a metric that could not be computed) never counts as better.
        state.step = 30;
        assert!(!c.record(&mut state, f64::NAN).improved);
    }

    #[test]
    fn early_stopping_counts_evaluations_without_improvement_and_resets() {
        let c = cadence(Some(2));
        let mut state = TrainState::default();
        let verdicts: Vec<(bool, bool)> = [60.0, 50.0, 61.0, 55.0, 54.0]
            .into_iter()
            .map(|v| {
                let verdict = c.record(&mut state, v);
                (verdict.improved, verdict.stop_early)
            })
            .collect();
        assert_eq!(
            verdicts,
            [
                (true, false),
                (false, false),
                (true, false),
                (false, false),
                (false, true)
            ]
        );
        assert_eq!(state.evals_without_improvement, 2);
        // Without a patience nothing stops.
        let c = cadence(None);
        let mut state = TrainState::default();
        assert!((0..10).all(|i| !c.record(&mut state, -(i as f64)).stop_early));
    }

    /// A run stopped by a signal while it tested its best adapter after stopping early resumes into testing, not
    /// into more steps: the state it saved says it stopped.
    #[test]
    fn a_state_that_stopped_early_says_so_and_a_patience_of_zero_waits_for_a_miss() {
        let c = cadence(Some(2));
        let mut state = TrainState::default();
        let stopped: Vec<bool> = [60.0, 50.0, 40.0]
            .into_iter()
            .map(|v| {
                c.record(&mut state, v);
                c.stopped_early(&state)
            })
            .collect();
        assert_eq!(stopped, [false, false, true]);
        let c = cadence(Some(0));
        let mut state = TrainState::default();
        assert!(!c.record(&mut state, 60.0).stop_early);
        assert!(!c.stopped_early(&state));
        assert!(c.record(&mut state, 50.0).stop_early);
        assert!(c.stopped_early(&state));
    }

    #[test]
    fn an_owed_evaluation_is_marked_only_when_owed_and_older_states_owe_none() {
        let older = r#"{"step": 12, "epoch": 0, "cursor": 192, "best_metric": 50.0, "best_step": 10,
                        "evals_without_improvement": 0}"#;
        let state: TrainState = serde_json::from_str(older).unwrap();
        assert!(!state.evaluation_owed);
        assert!(!serde_json::to_string(&state)
            .unwrap()
            .contains("evaluation_owed"));
        let owed = TrainState {
            evaluation_owed: true,
            ..state
        };
        let text = serde_json::to_string(&owed).unwrap();
        assert!(text.contains("\"evaluation_owed\":true"), "{text}");
        assert_eq!(serde_json::from_str::<TrainState>(&text).unwrap(), owed);
    }
}
