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
//!   them. A name not in the registry is an error ([`DataError::UnknownTask`], listing the known ones), never a
//!   default task. The registry holds the paper's 23 tasks ([`paper_tasks`]: 21 NLP tasks, `vqa`,
//!   `coco_caption`) and the two tasks it uses only as transfer sources, `record` and `squad`
//!   ([`transfer_source_tasks`], [`Role`]).
//! - [`load_split`] returns [`TextExample`]s `{id, input, target, extra}`; [`k_shot`] draws few-shot training sets.
//! - [`score()`] scores decoded predictions against examples, in percent like the official code (accuracy 87.5, not
//!   0.875). Predictions that are not a valid label count as wrong. VQA is scored with VQA accuracy, captions with
//!   CIDEr-D, BLEU-4 and ROUGE-L on PTB-tokenised text (`metrics::vqa`, `metrics::caption`).
//! - [`stats`], [`report`] and [`export`]: what `dept data` computes, prints and writes to check data before
//!   training (split statistics, the task table, one JSON line per formatted example).
//!
//! ## Main types
//!
//! - [`Task`]: one registry entry, and everything known about its task, so nothing looks a task up by name: its
//!   folders and release files ([`task::Files`]), metrics, labels ([`Task::labels`]) and their class names (the
//!   verbaliser, [`Task::class_names`], [`Task::label_name`]), k-shot classes ([`KShotClasses`]), [`Role`], split
//!   policy ([`SplitPolicy`]), reader, and input format ([`task::Format`]: a `prefix: {field}` template, or a
//!   function where the format needs code).
//! - [`Record`]: one source row in the hub dataset's schema, whatever file it came from; [`TextExample`] (with
//!   [`Extra`]): what the model reads and writes and what scoring needs besides.
//! - [`Split`] (train/validation/test as the paper uses them) and [`SourceSplit`] (as the files ship them).
//! - [`Metric`] and [`score()`]; [`DataError`], the crate's one error type.
//!
//! ## How to add a task
//!
//! 1. `src/tasks/mod.rs`: add a `Task { .. }` entry to the registry (`ALL`), next to its family: names, folders,
//!    `files` (file-name templates per split), metrics, `labels`, `class_names`, `k_shot`, `role`, `split_policy`,
//!    `reader` (the family's reader when the files are in a known format) and `format` (usually a
//!    `Format::Fields` template such as `[("premise:", "premise"), ("hypothesis:", "hypothesis")]`).
//! 2. Only when its files are in a new format: a reader function in its family module `src/tasks/<family>.rs` (a new
//!    module is one `pub mod` line in `tasks/mod.rs`), named in the entry as `reader: Reader::Code(..)` (a
//!    `fn(&Task, SourceSplit, &Path) -> Result<Vec<Record>>`); an input format that needs code is a `Format::Code`
//!    function beside the reader. Nothing else changes: the types in `src/task/` are only the facts an entry holds.
//! 3. `cargo test -p dept-data`: `tasks::tests::every_entry_is_consistent` checks the entry (class names and k-shot
//!    classes against the labels, the role against the paper's list, GLUE columns against the input fields) and
//!    `load::tests::malformed_files_never_panic` runs its reader on broken files.
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
pub mod export;
pub mod kshot;
pub mod load;
pub mod metrics;
pub mod numpy_rng;
pub mod randperm;
pub mod readers;
pub mod record;
pub mod report;
pub mod schema;
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
    ClassOf, Family, KShotClasses, Metric, Role, SourceSplit, Split, SplitPolicy, Task,
};
pub use tasks::{all_tasks, paper_tasks, task, transfer_source_tasks};
