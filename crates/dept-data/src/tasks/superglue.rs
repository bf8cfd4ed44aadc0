//! SuperGLUE: the original JSONL files mapped onto the `super_glue/<task>` hub schema, and the official formats
//! that need code (WSC, MultiRC, ReCoRD); the others are `prefix: {field}` templates in the registry entries
//! (`tasks/mod.rs`), as are each task's files and class names.
//!
//! | task | input | target |
//! |------|-------|--------|
//! | boolq | `question: {question} passage: {passage}` | 0 False, 1 True |
//! | cb | `premise: {premise} hypothesis: {hypothesis}` | 0 entailment, 1 contradiction, 2 neutral |
//! | wic | `sentence1: {sentence1} sentence2: {sentence2} word: {word}` | 0 False, 1 True |
//! | wsc | `text: {text}` with the noun marked `* noun *` and the pronoun `# pronoun #` (T5) | 0 False, 1 True |
//! | multirc | `question: {q} answer: {a} paragraph: {p}`, `<br>` → space, `<b>`/`</b>` removed | 0 False, 1 True |
//! | record | `record query: {query} entities: {e1, e2, ...} passage: {passage}` | one example per gold answer |
//!
//! Files (`<data_dir>/<TASK>/`): `train.jsonl`, `val.jsonl`, `test.jsonl` as SuperGLUE ships them. MultiRC is
//! flattened to one row per answer (paragraph → question → answer order) and ReCoRD to one row per query, with
//! entities and answers deduplicated and sorted, exactly as the hub builder does. WSC gets the hub's
//! `wsc.fixed` span repairs.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::{json, Map, Value};

use crate::error::Result;
use crate::example::{Extra, TextExample};
use crate::readers::jsonl::read_jsonl;
use crate::record::{describe, Record};
use crate::schema::one_of;
use crate::task::{SuperGlueRows, Task};
use crate::text::{mark_span, remove_markup};

use super::join;

/// Reads a SuperGLUE JSONL file into `super_glue/<task>` records.
pub(crate) fn read(task: &Task, rows: SuperGlueRows, path: &Path) -> Result<Vec<Record>> {
    let shared: Arc<PathBuf> = Arc::new(path.to_path_buf());
    let mut records = Vec::new();
    for (line, value) in read_jsonl(path)? {
        let Value::Object(row) = value else { continue };
        let source = Record {
            fields: row,
            path: Arc::clone(&shared),
            line,
        };
        match rows {
            SuperGlueRows::MultiRc => flatten_multirc(&source, &mut records)?,
            SuperGlueRows::Record => flatten_record(&source, &mut records)?,
            SuperGlueRows::BooleanLabel => records.push(with_label(None, source)?),
            SuperGlueRows::ClassNameLabel => records.push(with_label(task.class_names, source)?),
            SuperGlueRows::Wsc => records.push(wsc(source)?),
        }
    }
    Ok(records)
}

/// `_cast_label`: booleans become 0/1, class names (`names`, CB's) their ids, a missing label (test) -1.
fn cast_label(names: Option<&[&str]>, r: &Record) -> Result<i64> {
    let Some(value) = r.fields.get("label") else {
        return Ok(-1);
    };
    match (names, value) {
        (_, Value::Bool(b)) => Ok(i64::from(*b)),
        (Some(names), Value::String(s)) => names
            .iter()
            .position(|n| n == s)
            .map(|i| i as i64)
            .ok_or_else(|| r.field_error("label", &one_of(names), s)),
        // Some mirrors write booleans as strings.
        (_, Value::String(s)) if s == "true" || s == "True" => Ok(1),
        (_, Value::String(s)) if s == "false" || s == "False" => Ok(0),
        (_, other) => Err(r.field_error("label", "a boolean", &describe(other))),
    }
}

fn with_label(names: Option<&[&str]>, mut r: Record) -> Result<Record> {
    let label = cast_label(names, &r)?;
    r.set("label", label);
    Ok(r)
}

/// A WSC row: its label, and the spans of `target` at the top level, repaired.
fn wsc(r: Record) -> Result<Record> {
    let mut r = with_label(None, r)?;
    let target = match r.value("target")? {
        Value::Object(t) => t.clone(),
        other => return Err(r.field_error("target", "an object with the spans", &describe(other))),
    };
    for (k, v) in target {
        r.fields.insert(k, v);
    }
    fix_wsc_spans(&mut r)?;
    Ok(r)
}

/// The hub's `_fix_wst` for `wsc.fixed`: repairs span texts that are not substrings of the text (case of the first
/// letter, a trailing period, a newline), keeping its quirks (the "theyscold" case only moves the pronoun index).
fn fix_wsc_spans(r: &mut Record) -> Result<()> {
    for key in ["span1", "span2"] {
        let text_key = format!("{key}_text");
        let span = r.str(&text_key)?.to_string();
        let index = r.int(&format!("{key}_index"))?;
        let text = r.str("text")?.to_string();
        if text.contains(&span)
            || span == "Kamenev and Zinoviev"
            || span == "Kamenev, Zinoviev, and Stalin"
        {
            continue;
        }
        if span.contains("theyscold") {
            r.set("span2_index", 10);
        }
        let first_word = usize::try_from(index)
            .ok()
            .and_then(|i| text.split_whitespace().nth(i))
            .ok_or_else(|| {
                r.field_error(
                    &format!("{key}_index"),
                    "a word index inside the text",
                    &index.to_string(),
                )
            })?;
        let lower = first_word.chars().next().is_some_and(char::is_lowercase);
        let mut chars = span.chars();
        let mut fixed: String = match chars.next() {
            Some(c) if lower => c.to_lowercase().chain(chars).collect(),
            Some(c) => c.to_uppercase().chain(chars).collect(),
            None => String::new(),
        };
        fixed = fixed.trim_end_matches('.').replace('\n', " ");
        r.set(&text_key, fixed);
    }
    Ok(())
}

fn get_object<'a>(r: &'a Record, value: &'a Value, field: &str) -> Result<&'a Map<String, Value>> {
    value
        .as_object()
        .ok_or_else(|| r.field_error(field, "an object", &describe(value)))
}

fn get_array<'a>(
    r: &'a Record,
    object: &'a Map<String, Value>,
    field: &str,
) -> Result<&'a Vec<Value>> {
    match object.get(field) {
        Some(Value::Array(a)) => Ok(a),
        Some(other) => Err(r.field_error(field, "a list", &describe(other))),
        None => Err(r.field_error(field, "a list", "no such field")),
    }
}

fn get_str<'a>(r: &'a Record, object: &'a Map<String, Value>, field: &str) -> Result<&'a str> {
    match object.get(field) {
        Some(Value::String(s)) => Ok(s),
        Some(other) => Err(r.field_error(field, "a string", &describe(other))),
        None => Err(r.field_error(field, "a string", "no such field")),
    }
}

fn get_idx(r: &Record, object: &Map<String, Value>, field: &str) -> Result<i64> {
    match object.get("idx") {
        Some(Value::Number(n)) if n.is_i64() => Ok(n.as_i64().unwrap_or_default()),
        Some(other) => Err(r.field_error(&format!("{field}.idx"), "an integer", &describe(other))),
        None => Err(r.field_error(&format!("{field}.idx"), "an integer", "no such field")),
    }
}

fn flatten_multirc(r: &Record, out: &mut Vec<Record>) -> Result<()> {
    let paragraph_idx = r.int("idx")?;
    let passage = get_object(r, r.value("passage")?, "passage")?;
    let text = get_str(r, passage, "text")?;
    for question in get_array(r, passage, "questions")? {
        let question = get_object(r, question, "passage.questions[]")?;
        let question_text = get_str(r, question, "question")?;
        let question_idx = get_idx(r, question, "question")?;
        for answer in get_array(r, question, "answers")? {
            let answer = get_object(r, answer, "answers[]")?;
            let label = match answer.get("label") {
                None => -1,
                Some(Value::Bool(b)) => i64::from(*b),
                Some(Value::Number(n)) if n.as_i64().is_some_and(|v| v == 0 || v == 1) => {
                    n.as_i64().unwrap_or_default()
                }
                Some(other) => {
                    return Err(r.field_error("answers[].label", "a boolean", &describe(other)))
                }
            };
            let mut row = Record::new(&r.path, r.line);
            row.set("paragraph", text);
            row.set("question", question_text);
            row.set("answer", get_str(r, answer, "text")?);
            row.set("label", label);
            row.fields.insert(
                "idx".into(),
                json!({"paragraph": paragraph_idx, "question": question_idx, "answer": get_idx(r, answer, "answer")?}),
            );
            out.push(row);
        }
    }
    Ok(())
}

/// Python slicing `text[start:end + 1]` on code points.
fn char_slice(text: &str, start: usize, end_inclusive: usize) -> String {
    text.chars()
        .skip(start)
        .take((end_inclusive + 1).saturating_sub(start))
        .collect()
}

fn flatten_record(r: &Record, out: &mut Vec<Record>) -> Result<()> {
    let passage_idx = r.int("idx")?;
    let passage = get_object(r, r.value("passage")?, "passage")?;
    let text = get_str(r, passage, "text")?;
    let mut entities = std::collections::BTreeSet::new();
    for entity in get_array(r, passage, "entities")? {
        let span = |k: &str| entity.get(k).and_then(Value::as_u64).map(|v| v as usize);
        match (span("start"), span("end")) {
            (Some(start), Some(end)) => {
                entities.insert(char_slice(text, start, end));
            }
            _ => {
                return Err(r.field_error("passage.entities[]", "{start, end}", &describe(entity)))
            }
        }
    }
    for qa in get_array(r, &r.fields, "qas")? {
        let qa = get_object(r, qa, "qas[]")?;
        let mut answers = std::collections::BTreeSet::new();
        if let Some(list) = qa.get("answers") {
            let list = list
                .as_array()
                .ok_or_else(|| r.field_error("qas[].answers", "a list", &describe(list)))?;
            for answer in list {
                let answer = get_object(r, answer, "qas[].answers[]")?;
                answers.insert(get_str(r, answer, "text")?.to_string());
            }
        }
        let mut row = Record::new(&r.path, r.line);
        row.set("passage", text);
        row.set("query", get_str(r, qa, "query")?);
        row.set("entities", entities.iter().cloned().collect::<Vec<_>>());
        row.set("answers", answers.into_iter().collect::<Vec<_>>());
        row.fields.insert(
            "idx".into(),
            json!({"passage": passage_idx, "query": get_idx(r, qa, "qas[]")?}),
        );
        out.push(row);
    }
    Ok(())
}

fn one(id: String, input: String, target: String) -> Result<Vec<TextExample>> {
    Ok(vec![TextExample {
        id,
        input,
        target,
        extra: Extra::default(),
    }])
}

pub(crate) fn format_wsc(r: &Record, row: usize) -> Result<Vec<TextExample>> {
    let index = |k: &str| -> Result<usize> {
        let v = r.int(k)?;
        usize::try_from(v).map_err(|_| r.field_error(k, "a word index >= 0", &v.to_string()))
    };
    let (span1, span2) = (index("span1_index")?, index("span2_index")?);
    let text = mark_span(r.str("text")?, r.str("span1_text")?, span1, '*');
    // Marking span 1 added two words before span 2 when span 1 comes first.
    let span2 = span2 + if span1 < span2 { 2 } else { 0 };
    let text = mark_span(&text, r.str("span2_text")?, span2, '#');
    one(
        r.idx_or(row),
        join(&["text:", &text]),
        r.label("label", 2)?.to_string(),
    )
}

fn idx_part(r: &Record, key: &str) -> Result<String> {
    match r.value("idx")? {
        Value::Object(map) => map
            .get(key)
            .map(|v| v.to_string())
            .ok_or_else(|| r.field_error(&format!("idx.{key}"), "an integer", "no such field")),
        other => Err(r.field_error("idx", "an object", &describe(other))),
    }
}

pub(crate) fn format_multirc(r: &Record, _row: usize) -> Result<Vec<TextExample>> {
    let (p, q, a) = (
        idx_part(r, "paragraph")?,
        idx_part(r, "question")?,
        idx_part(r, "answer")?,
    );
    Ok(vec![TextExample {
        id: format!("{p}-{q}-{a}"),
        input: join(&[
            "question:",
            &remove_markup(r.str("question")?),
            "answer:",
            &remove_markup(r.str("answer")?),
            "paragraph:",
            &remove_markup(r.str("paragraph")?),
        ]),
        target: r.label("label", 2)?.to_string(),
        extra: Extra {
            group: Some(format!("{p}-{q}")),
            answers: Vec::new(),
            image: None,
            loss_weight: None,
        },
    }])
}

/// ReCoRD: `@highlight` lines joined into sentences, one example per gold answer (`<unk>` when there is none).
pub(crate) fn format_record(r: &Record, _row: usize) -> Result<Vec<TextExample>> {
    use std::sync::OnceLock;
    static AFTER_PUNCT: OnceLock<regex::Regex> = OnceLock::new();
    let after_punct = AFTER_PUNCT.get_or_init(|| {
        regex::Regex::new(r#"(\.|\?|!|"|')\n@highlight\n"#).expect("valid pattern")
    });
    let passage = after_punct.replace_all(r.str("passage")?, "$1 ");
    let passage = passage.replace("\n@highlight\n", ". ");
    let entities = r.str_list("entities")?;
    let answers = r.str_list("answers")?;
    let input = format!(
        "record query: {} entities: {} passage: {}",
        r.str("query")?,
        entities.join(", "),
        passage
    );
    let id = format!("{}-{}", idx_part(r, "passage")?, idx_part(r, "query")?);
    let targets = if answers.is_empty() {
        vec!["<unk>".to_string()]
    } else {
        answers.clone()
    };
    Ok(targets
        .into_iter()
        .map(|target| TextExample {
            id: id.clone(),
            input: input.clone(),
            target,
            extra: Extra {
                group: None,
                answers: answers.clone(),
                image: None,
                loss_weight: None,
            },
        })
        .collect())
}
