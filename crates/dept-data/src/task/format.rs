//! What a task's input format is: a `prefix: {field}` template over hub-schema fields, or a function where the
//! format needs code. Applying it is [`crate::schema`]'s job.

use crate::error::Result;
use crate::example::TextExample;
use crate::record::Record;

/// Formats one hub-schema row into its example(s); `usize` is the row's position in its source split.
pub type Formatter = fn(&Record, usize) -> Result<Vec<TextExample>>;

/// How a row becomes its example(s).
#[derive(Debug, Clone, Copy)]
pub enum Format {
    /// The official `seq2seq_format` over named fields: each `(prefix, field)` of `input` gives `prefix value`,
    /// joined by spaces (`[("sentence1:", "sentence1"), ("sentence2:", "sentence2")]` →
    /// `sentence1: {sentence1} sentence2: {sentence2}`).
    Fields {
        input: &'static [(&'static str, &'static str)],
        target: Target,
        id: RowId,
    },
    /// A format that needs code of its own (WSC's span marks, MultiRC, ReCoRD, MRQA, WinoGrande, VQA, captions).
    Code(Formatter),
}

/// Where a [`Format::Fields`] target comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// `label`, an integer id below the number of the task's labels, written as is (`"1"`).
    LabelId,
    /// `label`, a similarity score rounded to the STS-B label grid (`"3.8"`).
    Score,
    /// This field holds one of the task's [`super::Task::class_names`]; the target is its position (SciTail's
    /// `gold_label`). It is checked before the input fields, in the official formatter's order.
    ClassName(&'static str),
}

/// Where a [`Format::Fields`] example id comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RowId {
    /// The hub's `idx` (a number or a string), else the row position.
    Idx,
    /// The row position (the sets without ids of their own).
    Row,
    /// This field, a string as is and any other value as JSON writes it, else the row position (PAWS `id`).
    Field(&'static str),
}
