//! # dept-data: the DePT paper's tasks as text-to-text examples
//!
//! Reads the data files a user already has, and yields exactly the train/validation/test examples, text formats and
//! scores of the official DePT code (Shi & Lipani, ICLR 2024; `src/tasks.py`, `src/metrics.py`, `train.py`), and
//! for the two vision-language tasks those of VL-T5 / VL-Adapter, which the paper's VQA and captioning runs follow.
//! No tensors, no libtorch: it builds and tests in seconds.
//!
//! ## Using it (what the trainer calls)
//!
//! ```no_run
//! use dept_data::{load_split, score, task, Split, OFFICIAL_SPLIT_SEED};
//! # fn main() -> Result<(), dept_data::DataError> {
//! let rte = task("rte")?;
//! let dev = load_split(rte, "data".as_ref(), Split::Validation, OFFICIAL_SPLIT_SEED)?;
//! let predictions: Vec<String> = dev.iter().map(|e| e.target.clone()).collect();
//! let scores = score(rte, &predictions, &dev)?; // [("accuracy", 100.0)]
//! assert_eq!(scores[0].0, rte.best_metric.name());
//! # Ok(()) }
//! ```
//!
//! - [`task()`] finds a [`Task`] by name (`rte`, `boolq`, ... or the official `superglue-boolq`); [`all_tasks`] lists
//!   them. A task knows its metrics, the metric that picks the best checkpoint, its label words and split policy.
//!   The registry holds the paper's 23 tasks ([`paper_tasks`]: 21 NLP tasks, `vqa`, `coco_caption`) and the two
//!   tasks it uses only as transfer sources, `record` and `squad` ([`transfer_source_tasks`],
//!   [`Task::is_transfer_source`]).
//! - [`load_split`] returns [`TextExample`]s `{id, input, target, extra}`; [`k_shot`] draws few-shot training sets.
//! - [`score()`] scores decoded predictions against examples, in percent like the official code (accuracy 87.5, not
//!   0.875). Predictions that are not a valid label count as wrong. VQA is scored with VQA accuracy, captions with
//!   CIDEr-D, BLEU-4 and ROUGE-L on PTB-tokenised text (`metrics::vqa`, `metrics::caption`).
//!
//! ## Formats
//!
//! The official formats, with `add_prefix=False` (the official default): GLUE in [`tasks::glue`], SuperGLUE in
//! [`tasks::superglue`], MRQA in [`tasks::mrqa`], WinoGrande/Yelp/SciTail/PAWS in [`tasks::other`] (each module
//! has a table). Targets are label ids as strings (`"0"`, `"1"`), STS-B scores rounded to one decimal (`"3.8"`),
//! or answer text. VQA and COCO captions in [`tasks::vl`] (VL-T5's `vqa: {question}` and `caption:`): their
//! examples carry the image id their features are keyed by in `extra.image`.
//!
//! ## Splits
//!
//! As `AbstractTask.get(split_validation_test=True)`, shuffled with `torch.randperm` on a CPU generator seeded 42
//! (reproduced bit for bit in [`randperm`]):
//! - small sets (cola, stsb, mrpc, rte, boolq, cb, multirc, wic, wsc, scitail): the source validation split is
//!   halved, first `len/2` shuffled rows validation, the rest test; train is the source train;
//! - large sets (qqp, qnli, sst2, record, MRQA, squad, winogrande, yelp): 1000 shuffled source-train rows are
//!   validation, the rest train (Yelp: the first 100,000 of those); test is the source validation (Yelp: test);
//! - mnli: validation = validation_mismatched, test = validation_matched; paws: its own splits;
//! - vqa, coco_caption: the Karpathy splits as shipped (VQA `karpathy_{train,val,test}.json`; COCO train =
//!   `train` + `restval` images of `dataset_coco.json`, validation = `val`, test = `test`).
//!
//! ## Files
//!
//! `<data_dir>/<TASK>/...`, original release files or hub parquet exports; see [`load`] and the family modules.
//! Readers map every format onto the hub schema ([`Record`]) and keep the hub's row order, so split indices match.

pub mod error;
pub mod example;
pub mod kshot;
pub mod load;
pub mod metrics;
pub mod numpy_rng;
pub mod randperm;
pub mod readers;
pub mod record;
pub mod score;
pub mod splits;
pub mod stats;
pub mod synthetic;
pub mod task;
pub mod tasks;
pub mod text;

pub use error::{DataError, Result};
pub use example::{Extra, TextExample};
pub use kshot::k_shot;
pub use load::{find_source, load_split, load_split_subsampled, read_source, SourceFiles};
pub use record::Record;
pub use score::{score, score_all_answers};
pub use splits::{split_indices, subsampled_indices, OFFICIAL_SPLIT_SEED};
pub use task::{
    all_tasks, paper_tasks, task, transfer_source_tasks, Family, Metric, SourceSplit, Split,
    SplitPolicy, Task,
};
