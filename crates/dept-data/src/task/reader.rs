//! Which reader maps a task's original files onto hub-schema records, with what it needs to know about their
//! layout. The readers themselves live in the family modules of [`crate::tasks`].

use std::path::Path;

use super::{SourceSplit, Task};
use crate::error::Result;
use crate::record::Record;

/// Reads one original file of a source split into hub-schema records.
pub(crate) type ReadFn = fn(&Task, SourceSplit, &Path) -> Result<Vec<Record>>;

/// How a task's original files map onto hub-schema records: the two families whose layout differs per task by data
/// alone, or a reader function of the task's family module.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Reader {
    /// A GLUE TSV with a header row, columns by name.
    GlueTsv(GlueColumns),
    /// SuperGLUE JSON lines.
    SuperGlue(SuperGlueRows),
    /// Any other format (CoLA's headerless TSV, MRQA, WinoGrande, Yelp, SciTail, PAWS, VQA, COCO): the function
    /// that reads it.
    Code(ReadFn),
}

/// The columns of a GLUE TSV with a header row.
#[derive(Debug, Clone, Copy)]
pub(crate) struct GlueColumns {
    /// (hub field, TSV column) pairs.
    pub fields: &'static [(&'static str, &'static str)],
    /// The label's column; test files lack it (the hub writes -1 there).
    pub label_column: &'static str,
    pub label: LabelColumn,
}

/// How a GLUE label column maps onto the hub's class ids.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LabelColumn {
    /// One of the task's class names ([`super::Task::class_names`]), which becomes its position.
    ClassName,
    /// Already an integer id below the number of the task's labels.
    Id,
    /// A float score (STS-B).
    Score,
}

/// How a SuperGLUE file's rows become hub records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SuperGlueRows {
    /// One record a row, a boolean label (BoolQ, WiC).
    BooleanLabel,
    /// One record a row, the label one of the task's class names (CB).
    ClassNameLabel,
    /// WSC: a boolean label, the spans of `target` lifted to the top and repaired as `wsc.fixed` does.
    Wsc,
    /// MultiRC: one record per answer.
    MultiRc,
    /// ReCoRD: one record per query.
    Record,
}
