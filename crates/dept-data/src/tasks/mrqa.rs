//! MRQA 2019 (NaturalQuestions, HotpotQA, SearchQA, NewsQA, SQuAD) and the official QA format.
//!
//! Input `question: {pad(question)} context: {pad(context)}`, target `pad(answers[0])`, where `pad` is T5's
//! punctuation padding ([`crate::text::pad_punctuation`]). All gold answers (padded the same way) go to
//! `extra.answers` for max-over-gold scoring.
//!
//! Files: the MRQA release, `.jsonl.gz` whose first line is a `{"header": ...}` object and every further line a
//! context with its `qas`; each question becomes one row (`context`, `question`, `answers`, `key` = `qid`), the
//! schema of the `lucadiliello/*` hub sets the official code loads. Looked for as `<data_dir>/<Task>/train.jsonl.gz`
//! and `dev.jsonl.gz`, or the release layout `<data_dir>/MRQA/train/<Name>.jsonl.gz`, `.../dev/<Name>.jsonl.gz`.
//!
//! Not verified against the hub: whether `lucadiliello/*` keeps the MRQA order of questions and its answer lists
//! (no hub copy was at hand). SQuAD: the official code formats `squad` with `pad(str(answers))`, the whole answer
//! dict, which is a bug; we format it like the other MRQA sets (first answer text).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::Value;

use crate::error::Result;
use crate::example::{Extra, TextExample};
use crate::readers::jsonl::read_jsonl;
use crate::record::{describe, Record};
use crate::text::pad_punctuation;

/// Reads an MRQA file: skips the header line (the baseline samples have none), one record per question.
pub(crate) fn read(path: &Path) -> Result<Vec<Record>> {
    let shared: Arc<PathBuf> = Arc::new(path.to_path_buf());
    let rows = read_jsonl(path)?;
    let mut records = Vec::new();
    for (line, value) in rows {
        let Value::Object(map) = value else { continue };
        if map.contains_key("header") {
            continue;
        }
        let ctx = Record {
            fields: map,
            path: Arc::clone(&shared),
            line,
        };
        let context = ctx.str("context")?.to_string();
        let qas = match ctx.value("qas")? {
            Value::Array(qas) => qas.clone(),
            other => return Err(ctx.field_error("qas", "a list of questions", &describe(other))),
        };
        for qa in qas {
            let qa = Record {
                fields: match qa {
                    Value::Object(m) => m,
                    other => return Err(ctx.field_error("qas[]", "an object", &describe(&other))),
                },
                path: Arc::clone(&shared),
                line,
            };
            let mut row = Record::new(&shared, line);
            row.set("context", context.clone());
            row.set("question", qa.str("question")?);
            row.set("answers", qa.str_list("answers")?);
            row.set("key", qa.str("qid")?);
            records.push(row);
        }
    }
    Ok(records)
}

/// The answers of a row: a list of strings (MRQA, `lucadiliello/*`) or SQuAD's `{text: [...], answer_start: [...]}`.
fn answers(r: &Record) -> Result<Vec<String>> {
    match r.value("answers")? {
        Value::Object(map) => match map.get("text") {
            Some(Value::Array(items)) => items
                .iter()
                .map(|v| {
                    v.as_str()
                        .map(str::to_string)
                        .ok_or_else(|| r.field_error("answers.text", "strings", &describe(v)))
                })
                .collect(),
            _ => Err(r.field_error("answers", "{text: [...]}", "no text list")),
        },
        _ => r.str_list("answers"),
    }
}

pub(crate) fn format(r: &Record, row: usize) -> Result<Vec<TextExample>> {
    let golds = answers(r)?;
    let first = golds
        .first()
        .ok_or_else(|| r.field_error("answers", "at least one answer", "an empty list"))?;
    let id = ["key", "id", "qid"]
        .iter()
        .find_map(|k| r.fields.get(*k).and_then(Value::as_str).map(str::to_string))
        .unwrap_or_else(|| row.to_string());
    let question = pad_punctuation(r.str("question")?);
    let context = pad_punctuation(r.str("context")?);
    Ok(vec![TextExample {
        id,
        input: ["question:", &question, "context:", &context].join(" "),
        target: pad_punctuation(first),
        extra: Extra {
            group: None,
            answers: golds.iter().map(|a| pad_punctuation(a)).collect(),
            image: None,
            loss_weight: None,
        },
    }])
}
