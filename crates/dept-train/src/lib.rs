//! # dept-train: training and using DePT adapters
//!
//! Everything between an experiment config and a trained adapter: the YAML experiment config, the data of its
//! task tokenised and batched, the two-rate AdamW of the official code, the learning-rate schedule, evaluation on
//! schedule with the best and last checkpoints, resuming, and the run folder; then evaluation and prediction with
//! a saved adapter. The method itself (the prompt, the pair, the budget) is `dept-core`; the frozen backbones are
//! `dept-models`; the tasks and metrics are `dept-data`. `dept train`, `dept eval` and `dept predict` are thin
//! wrappers over this crate.
//!
//! ## Using it
//!
//! ```
//! use dept_train::config::Shape;
//! use dept_train::ExperimentConfig;
//!
//! // Keys left out keep the paper's defaults (max_len 256, lr_prompt 0.3, ...). A budget of l = 100 PT tokens
//! // with prompt_len 60 leaves, for T5-base's d = 768, a rank-30 pair.
//! let yaml = "task: rte\nmodel: models/t5-base\nbudget: 100\nprompt_len: 60\n";
//! let config = ExperimentConfig::from_yaml(yaml, "rte.yaml".as_ref(), &["max_steps=1000".to_string()])?;
//! assert_eq!((config.max_len, config.max_steps), (256, 1000));
//! assert_eq!(config.shape(768).map_err(|e| e.0)?, Shape { m: 60, r: 30 });
//! // A misspelt key is refused, naming the nearest valid one.
//! let typo = ExperimentConfig::from_yaml("task: rte\npromt_len: 60\n", "rte.yaml".as_ref(), &[]);
//! assert!(typo.is_err_and(|e| e.to_string().contains("prompt_len")));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Then [`train`]`(&config, &TrainOptions::default())` runs it; `examples/train_adapter.rs` does so end to end on
//! a tiny random T5, and `examples/predict.rs` opens the adapter it saves with [`Inference`].
//!
//! ## Main types
//!
//! - [`ExperimentConfig`] ([`config`]): one run, flat keys, defaults from the paper and the official code; unknown
//!   keys are refused; [`config::Shape`] is the (m, r) it solves to for a backbone's width.
//! - [`train`] with [`TrainOptions`] → [`TrainOutcome`] (best validation score and step, test scores, run folder).
//! - [`Inference`] (with [`InferenceOverrides`]): a backbone with a saved adapter, for [`Inference::predict`] and
//!   [`Inference::evaluate`] → [`Evaluation`].
//! - [`TrainError`]: the crate's one error type; [`exit_status`]: the process statuses its errors map to.
//!
//! ## Modules
//!
//! - [`optim`]: AdamW over parameter groups with the official code's update rule, gradient-norm clipping;
//!   [`schedule`]: linear warm-up then linear decay; [`step`]: one optimiser step, shared with the benchmarks;
//!   [`stop`]: SIGTERM/SIGINT/SIGUSR1 end a run with a saved checkpoint.
//! - [`batch`]: tokenised examples and padded batches; [`order`]: the order examples are drawn in (resumable).
//! - [`evaluate`]: greedy decoding and scoring; [`checkpoint`] (durable, verified by a manifest) and [`run_dir`]:
//!   a run's files; [`retry`]: writes retried when the disk fails; [`verify`]: a run folder checked by hand.
//! - [`device`]: `cpu | cuda[:N] | auto`; [`memory`]: peak memory (CUDA allocator or process);
//!   [`guard`]: libtorch failures (out of memory above all) as errors with advice; [`environment`]: the libtorch
//!   and devices this process sees.
//! - [`vision`]: CLIP-T5 runs (image features); [`demo`]: the offline demo behind `dept quickstart`.

pub mod batch;
pub mod checkpoint;
pub mod config;
pub mod demo;
pub mod device;
pub mod environment;
mod error;
pub mod evaluate;
pub mod exit_status;
pub mod guard;
pub mod inference;
pub mod memory;
pub mod optim;
pub mod order;
mod plot;
pub mod retry;
pub mod run_dir;
pub mod schedule;
pub mod step;
pub mod stop;
mod trainer;
pub mod verify;
pub mod vision;

pub use config::ExperimentConfig;
pub use error::TrainError;
pub use inference::{DecodingOverrides, Evaluation, Inference, InferenceOverrides};
pub use trainer::{decoder, train, TrainOptions, TrainOutcome};
