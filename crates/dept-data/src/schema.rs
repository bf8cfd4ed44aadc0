//! Formatting: how one hub-schema row becomes its text-to-text example(s) under its task's [`Format`] (the
//! official `seq2seq_format` for [`Format::Fields`] templates, the task's own function for [`Format::Code`]).

use serde_json::Value;

use crate::error::Result;
use crate::example::TextExample;
use crate::record::Record;
use crate::task::{Format, RowId, Target, Task};
use crate::text::stsb_target;

impl Task {
    /// Formats one hub-schema row into its text-to-text example(s) (ReCoRD yields one per gold answer).
    /// `row_index` is the row's position in its source split, used as id when the row has no id of its own.
    pub fn format(&self, record: &Record, row_index: usize) -> Result<Vec<TextExample>> {
        self.format.apply(self, record, row_index)
    }

    /// The input text of a row whose target is not known (a new input to predict, as `dept serve`'s
    /// `/v1/predict` gets): a template reads only its input fields; a format written in code reads what it reads
    /// (the error names a missing field).
    pub fn format_input(&self, record: &Record) -> Result<String> {
        match self.format {
            Format::Fields { input, .. } => fields_input(input, record),
            Format::Code(format) => {
                let examples = format(record, 0)?;
                Ok(examples
                    .into_iter()
                    .next()
                    .map(|e| e.input)
                    .unwrap_or_default())
            }
        }
    }
}

/// `prefix value` for each `(prefix, field)` of a template, joined by spaces (the official `seq2seq_format`).
fn fields_input(input: &[(&str, &str)], r: &Record) -> Result<String> {
    let mut parts = Vec::with_capacity(2 * input.len());
    for (prefix, field) in input {
        parts.push(*prefix);
        parts.push(r.str(field)?);
    }
    Ok(parts.join(" "))
}

impl RowId {
    fn of(self, r: &Record, row: usize) -> String {
        match self {
            RowId::Idx => r.idx_or(row),
            RowId::Row => row.to_string(),
            RowId::Field(field) => match r.fields.get(field) {
                Some(Value::String(s)) => s.clone(),
                Some(other) => other.to_string(),
                None => row.to_string(),
            },
        }
    }
}

/// `a, b or c`: the expected values of an error message.
pub(crate) fn one_of(names: &[&str]) -> String {
    match names.split_last() {
        Some((last, [])) => last.to_string(),
        Some((last, rest)) => format!("{} or {last}", rest.join(", ")),
        None => String::new(),
    }
}

impl Format {
    /// Formats `r` for `task` (whose labels and class names the target is checked against).
    pub(crate) fn apply(&self, task: &Task, r: &Record, row: usize) -> Result<Vec<TextExample>> {
        let (input, target, id) = match *self {
            Format::Code(format) => return format(r, row),
            Format::Fields { input, target, id } => (input, target, id),
        };
        let target_text = || -> Result<String> {
            match target {
                Target::LabelId => {
                    let classes = task.labels.map_or(0, <[_]>::len) as i64;
                    Ok(r.label("label", classes)?.to_string())
                }
                Target::Score => Ok(stsb_target(r.f64("label")?)),
                Target::ClassName(field) => {
                    let names = task.class_names.unwrap_or_default();
                    let found = r.str(field)?;
                    let index = names.iter().position(|n| *n == found);
                    index
                        .map(|i| i.to_string())
                        .ok_or_else(|| r.field_error(field, &one_of(names), found))
                }
            }
        };
        let early = match target {
            Target::ClassName(_) => Some(target_text()?),
            _ => None,
        };
        let id = id.of(r, row);
        let input = fields_input(input, r)?;
        let target = match early {
            Some(text) => text,
            None => target_text()?,
        };
        Ok(vec![TextExample {
            id,
            input,
            target,
            extra: Default::default(),
        }])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expected_values_read_as_a_list() {
        assert_eq!(one_of(&["a"]), "a");
        assert_eq!(one_of(&["entailment", "neutral"]), "entailment or neutral");
        assert_eq!(
            one_of(&["entailment", "contradiction", "neutral"]),
            "entailment, contradiction or neutral"
        );
    }
}
