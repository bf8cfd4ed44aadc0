//! The two vision-language tasks of the paper: VQA v2 and MSCOCO captions, both on the Karpathy split, in the JSON
//! files VL-T5 / VL-Adapter publish, formatted as VL-T5 does with task prompts (`--use_tasks_prompts`).
//!
//! | task | input | target | id | `extra` |
//! |------|-------|--------|----|---------|
//! | vqa | `vqa: {sent}` | the answer with the highest score in `label` | `question_id` | `image` = `img_id`, `answers` = the annotators' answers |
//! | coco_caption, train | `caption:` | one reference, `raw` stripped | `{cocoid}_{sentid}` | `image` |
//! | coco_caption, validation/test | `caption:` | the first reference, stripped | `cocoid` | `image`, `answers` = every reference, stripped |
//!
//! References below are to `VL-T5/src/` of VL-Adapter (ylsung/VL_adapter, commit 545fcbb), the code DePT's
//! vision-language experiments follow; VL-T5's own files are the same in these places.
//!
//! ## VQA (`<data_dir>/vqa/` or `VQA/`, `VQAv2/`)
//!
//! Files `karpathy_train.json`, `karpathy_val.json`, `karpathy_test.json` (VL-T5's `datasets/vqa/`, read by
//! `vqa_clip_data.py:76-79` as `vqa/{split}.json`; `multitask.py:1105` trains on `karpathy_train`, `:1212`
//! validates on `karpathy_val`, the test loader uses `karpathy_test`): each a JSON array of
//! `{"img_id": "COCO_val2014_000000393225", "sent": "Is the ski ...?", "question_id": 393225000,
//! "label": {"yes": 1.0, "no": 0.3}, "answers": [{"answer": "yes", ...}, ... 10 of them], "answer_type": ...,
//! "question_type": ...}`. Karpathy-split sizes: train 605,102, validation 26,729, test 26,280 questions.
//!
//! - input: `f'{prompt}{sent}{post_prompt}'` with the task prompt `"vqa: "` and an empty post-prompt
//!   (`vqa_clip_data.py:195-200`, `multitask.py:1080`, `param.py:217`); a row without `sent` uses `question`, as
//!   there.
//! - target: VL-T5 samples one answer of `label` each time an example is drawn, in proportion to its score
//!   (`vqa_clip_data.py:258-280`). Here the target is fixed: the answer with the highest score, ties broken by the
//!   lexicographically smallest answer (byte order), so it does not depend on the order of the keys in the file.
//!   When the scores sum to 0, an empty `label` `{}` included, the target is `""`, as VL-T5's `answer = ''`
//!   (`vqa_clip_data.py:268-270`). A row without `label` (a test-dev style file) is unlabelled: target `""`.
//! - `extra.answers`: the annotators' raw `answer` strings in file order, which VQA accuracy is computed against
//!   ([`crate::metrics::vqa`]; VL-T5's `evaluate_raw`, `vqa_clip_data.py:581-`, reads the same answers from the
//!   official `v2_mscoco_*_annotations.json`). A file without `answers` gives examples without them, and scoring
//!   them with VQA accuracy is an error naming the missing answers, not a 0.
//! - `extra.image`: `img_id` as in the file, the key of VL-T5's feature files (`vqa_clip_data.py:158-173`).
//! - the best checkpoint is picked by VQA accuracy (`multitask.py:443-447`).
//!
//! ## COCO captions (`<data_dir>/COCO/` or `coco/`, `mscoco/`, `COCO-Karpathy/`)
//!
//! One file for every split: Karpathy's `dataset_coco.json` (`caption_clip_data.py:80-82`),
//! `{"images": [{"filepath": "val2014", "filename": "COCO_val2014_000000391895.jpg", "cocoid": 391895,
//! "split": "train" | "restval" | "val" | "test", "sentences": [{"raw": "A man ...", "tokens": [...],
//! "sentid": 770337, "imgid": 0}, ...]}, ...], "dataset": "coco"}`. Images are routed by `split` as VL-T5's
//! `split_rename` does (`caption_clip_data.py:84-97`): train = `train` + `restval` (82,783 + 30,504 = 113,287
//! images, about 566k captions), validation = `val` (5,000 images), test = `test` (5,000 images).
//!
//! - input: VL-T5's `' '.join([prompt])` with the prompt `"caption: "` (`caption_clip_data.py:209-230`,
//!   `multitask.py:1085`), stripped to `caption:` (the T5 tokenizer drops the trailing space anyway).
//! - train: one example per reference caption, target `raw.strip()` (`caption_clip_data.py:99-111`).
//! - validation/test: one example per image (`caption_clip_data.py:112-124`); the target is its first reference
//!   (only used for a validation loss), and every reference goes to `extra.answers`, which CIDEr-D, BLEU-4 and
//!   ROUGE-L are computed against after PTB-style tokenisation ([`crate::metrics::caption::ptb_tokenize`]). The
//!   best checkpoint is picked by CIDEr (`multitask.py:528`).
//! - `extra.image`: the file name up to its first `.` (`filename.split('.')[0]`, `caption_clip_data.py:104`),
//!   e.g. `COCO_val2014_000000391895`: the same key as VQA's `img_id`, so one feature file extracted from COCO's
//!   `train2014` and `val2014` folders serves both tasks.
//!
//! ## Reading
//!
//! Both files are single JSON documents (one line, hundreds of MB); they are parsed element by element, and each
//! element is cut down to the fields the formatter needs at once, so the file's parsed tree is never held whole
//! (its bytes are, while it is parsed; gzip-compressed copies are read too). In
//! error messages, `file:N` names the N-th question (VQA) or image (COCO) of the array, counted from 1, since the
//! files have no useful line numbers. There is no hub dataset for these tasks: a parquet copy is only read if it
//! has the fields of the records built here.

use std::fmt;
use std::io::Read;
use std::path::Path;
use std::sync::Arc;

use serde::de::{
    DeserializeSeed, Deserializer, Error as _, IgnoredAny, MapAccess, SeqAccess, Visitor,
};
use serde_json::{Map, Value};

use crate::error::{DataError, Result};
use crate::example::{Extra, TextExample};
use crate::readers::{open_text, read_error};
use crate::record::{describe, Record};
use crate::task::SourceSplit;

/// VL-T5's VQA task prompt (`multitask.py:1080`).
const VQA_PROMPT: &str = "vqa: ";
/// VL-T5's caption task prompt (`multitask.py:1085`), stripped.
const CAPTION_INPUT: &str = "caption:";

/// Python's `str.strip()`.
fn py_strip(s: &str) -> &str {
    s.trim_matches(|c: char| c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c))
}

/// An id field as text: a number as JSON writes it, a string as is.
fn id_text(r: &Record, field: &str) -> Result<String> {
    match r.value(field)? {
        Value::Number(n) => Ok(n.to_string()),
        Value::String(s) => Ok(s.clone()),
        other => Err(r.field_error(field, "an integer or a string", &describe(other))),
    }
}

// ---------------------------------------------------------------------------------------------------------------
// Reading a large JSON document element by element.

/// Reads a whole file (gzip looked through), mapping a decompression failure to [`DataError::Gzip`].
fn read_bytes(path: &Path) -> Result<Vec<u8>> {
    let mut bytes = Vec::new();
    open_text(path)?
        .read_to_end(&mut bytes)
        .map_err(|error| read_error(path, 0, error))?;
    Ok(bytes)
}

/// Hands each element of a JSON array to `each` (with its 1-based position) as soon as it is parsed. An element
/// that is not an object is a parse error; an error from `each` is kept in `failure` and stops the parse.
struct Elements<'a, F> {
    each: &'a mut F,
    failure: &'a mut Option<DataError>,
    expecting: &'static str,
}

impl<'de, F> DeserializeSeed<'de> for Elements<'_, F>
where
    F: FnMut(usize, Map<String, Value>) -> Result<()>,
{
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_seq(self)
    }
}

impl<'de, F> Visitor<'de> for Elements<'_, F>
where
    F: FnMut(usize, Map<String, Value>) -> Result<()>,
{
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(self.expecting)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let mut index = 0;
        while let Some(value) = seq.next_element::<Value>()? {
            index += 1;
            let Value::Object(map) = value else {
                return Err(A::Error::custom(format!(
                    "element {index} of the array is {}, not a JSON object",
                    describe(&value)
                )));
            };
            if let Err(e) = (self.each)(index, map) {
                *self.failure = Some(e);
                return Err(A::Error::custom("stopped"));
            }
        }
        Ok(())
    }
}

/// The object around the array: hands the array under `key` to [`Elements`], skips every other value, and
/// returns whether `key` was there.
struct Holder<'a, F> {
    key: &'static str,
    expecting: &'static str,
    elements: Elements<'a, F>,
}

impl<'de, F> Visitor<'de> for Holder<'_, F>
where
    F: FnMut(usize, Map<String, Value>) -> Result<()>,
{
    type Value = bool;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(self.expecting)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<bool, A::Error> {
        let Holder { key, elements, .. } = self;
        let mut found = false;
        let mut elements = Some(elements);
        while let Some(k) = map.next_key::<String>()? {
            match elements.take() {
                Some(seed) if k == key => {
                    map.next_value_seed(seed)?;
                    found = true;
                }
                other => {
                    elements = other;
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(found)
    }
}

/// Streams the objects of the top-level array (`key == None`) or of the array under `key` of the top-level object
/// through `each`. Errors name the file; JSON syntax errors also the line and column.
fn for_each_object<F>(
    path: &Path,
    key: Option<&'static str>,
    expecting: &'static str,
    mut each: F,
) -> Result<()>
where
    F: FnMut(usize, Map<String, Value>) -> Result<()>,
{
    let bytes = read_bytes(path)?;
    let mut de = serde_json::Deserializer::from_slice(&bytes);
    let mut failure = None;
    let elements = Elements {
        each: &mut each,
        failure: &mut failure,
        expecting: if key.is_some() {
            "a JSON array of objects"
        } else {
            expecting
        },
    };
    let parsed = match key {
        None => elements.deserialize(&mut de).map(|()| true),
        Some(key) => de.deserialize_map(Holder {
            key,
            expecting,
            elements,
        }),
    }
    .and_then(|found| de.end().map(|()| found));
    match parsed {
        Ok(true) => Ok(()),
        Ok(false) => Err(DataError::Parse {
            path: path.to_path_buf(),
            line: 1,
            message: format!(
                "expected {expecting}, found an object without `{}`",
                key.unwrap_or_default()
            ),
        }),
        Err(e) => Err(failure.unwrap_or_else(|| {
            // serde_json ends its messages with the position, which `Parse` already shows.
            let text = e.to_string();
            let position = format!(" at line {} column {}", e.line(), e.column());
            let text = text.strip_suffix(&position).unwrap_or(&text);
            let message = if text.contains(expecting) {
                format!("column {}: {text}", e.column())
            } else {
                format!("column {}: {text}; expected {expecting}", e.column())
            };
            DataError::Parse {
                path: path.to_path_buf(),
                line: e.line(),
                message,
            }
        })),
    }
}

// ---------------------------------------------------------------------------------------------------------------
// VQA

/// A VL-T5 `karpathy_*.json` file: one record per question with `question_id`, `img_id`, `sent`, `label` (when
/// present) and `answers` as the list of the annotators' answer strings (when present).
pub(crate) fn read_vqa(path: &Path) -> Result<Vec<Record>> {
    let file = Arc::new(path.to_path_buf());
    let mut records = Vec::new();
    for_each_object(
        path,
        None,
        "a JSON array of questions (VL-T5's vqa/karpathy_*.json)",
        |index, mut fields| {
            let row = Record::new(&file, index);
            let mut record = row.clone();
            for field in ["question_id", "img_id", "label"] {
                if let Some(value) = fields.remove(field) {
                    record.fields.insert(field.to_string(), value);
                }
            }
            // `vqa_clip_data.py:195-198`: `sent`, else `question`.
            if let Some(sent) = fields.remove("sent").or_else(|| fields.remove("question")) {
                record.set("sent", sent);
            }
            if let Some(answers) = fields.remove("answers") {
                record.set("answers", annotator_answers(&row, answers)?);
            }
            records.push(record);
            Ok(())
        },
    )?;
    Ok(records)
}

/// `[{"answer": "net", "answer_confidence": "yes", "answer_id": 1}, ...]` → `["net", ...]` (plain strings are
/// taken as they are).
fn annotator_answers(row: &Record, answers: Value) -> Result<Vec<Value>> {
    let expected = "a list of {\"answer\": ...} objects";
    let Value::Array(items) = answers else {
        return Err(row.field_error("answers", expected, &describe(&answers)));
    };
    items
        .into_iter()
        .enumerate()
        .map(|(i, item)| match item {
            Value::String(_) => Ok(item),
            Value::Object(mut answer) => match answer.remove("answer") {
                Some(text @ Value::String(_)) => Ok(text),
                other => Err(row.field_error(
                    &format!("answers[{i}].answer"),
                    "a string",
                    &other.map_or("no such field".to_string(), |v| describe(&v)),
                )),
            },
            other => Err(row.field_error(&format!("answers[{i}]"), expected, &describe(&other))),
        })
        .collect()
}

/// The answer with the highest score in `label` (ties: the smallest answer) and its score; `("", 0)` when the
/// scores sum to 0 or there is no label.
fn most_common_answer(r: &Record) -> Result<(String, f64)> {
    let scores = match r.fields.get("label") {
        None | Some(Value::Null) => return Ok((String::new(), 0.0)),
        Some(Value::Object(scores)) => scores,
        Some(other) => {
            return Err(r.field_error("label", "an object {answer: score}", &describe(other)))
        }
    };
    let mut best: Option<(&str, f64)> = None;
    let mut sum = 0.0;
    for (answer, score) in scores {
        let score = score.as_f64().ok_or_else(|| {
            r.field_error(&format!("label.{answer}"), "a number", &describe(score))
        })?;
        sum += score;
        let better = match best {
            None => true,
            Some((best_answer, best_score)) => {
                score > best_score || (score == best_score && answer.as_str() < best_answer)
            }
        };
        if better {
            best = Some((answer, score));
        }
    }
    if sum == 0.0 {
        return Ok((String::new(), 0.0));
    }
    Ok(best
        .map(|(answer, score)| (answer.to_string(), score))
        .unwrap_or_default())
}

pub(crate) fn format_vqa(r: &Record, _row: usize) -> Result<Vec<TextExample>> {
    let sent = r.str("sent")?;
    let image = r.str("img_id")?.to_string();
    let answers = match r.fields.get("answers") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(items)) => items
            .iter()
            .map(|item| match item {
                Value::String(s) => Ok(s.clone()),
                Value::Object(o) => match o.get("answer") {
                    Some(Value::String(s)) => Ok(s.clone()),
                    _ => Err(r.field_error("answers", "a list of answers", &describe(item))),
                },
                other => Err(r.field_error("answers", "a list of answers", &describe(other))),
            })
            .collect::<Result<_>>()?,
        Some(other) => return Err(r.field_error("answers", "a list of answers", &describe(other))),
    };
    let (target, score) = most_common_answer(r)?;
    Ok(vec![TextExample {
        id: id_text(r, "question_id")?,
        input: format!("{VQA_PROMPT}{sent}"),
        target,
        extra: Extra {
            group: None,
            answers,
            image: Some(image),
            loss_weight: Some(score),
        },
    }])
}

// ---------------------------------------------------------------------------------------------------------------
// COCO captions

/// Karpathy's `dataset_coco.json`, the images of one split: for train (`train` + `restval`) one record per
/// caption `{cocoid, image, sentid, raw}`, for validation (`val`) and test (`test`) one record per image
/// `{cocoid, image, references}`.
pub(crate) fn read_coco(path: &Path, split: SourceSplit) -> Result<Vec<Record>> {
    let file = Arc::new(path.to_path_buf());
    let wanted: &[&str] = match split {
        SourceSplit::Train => &["train", "restval"],
        SourceSplit::Validation => &["val"],
        _ => &["test"],
    };
    let train = split == SourceSplit::Train;
    let mut records = Vec::new();
    for_each_object(
        path,
        Some("images"),
        "a JSON object with an `images` array (Karpathy's dataset_coco.json)",
        |index, fields| {
            let image = Record {
                fields,
                path: Arc::clone(&file),
                line: index,
            };
            let image_split = image.str("split")?;
            if !["train", "restval", "val", "test"].contains(&image_split) {
                return Err(image.field_error("split", "train, restval, val or test", image_split));
            }
            if wanted.contains(&image_split) {
                coco_image_records(&image, train, &mut records)?;
            }
            Ok(())
        },
    )?;
    Ok(records)
}

/// The records of one COCO image: one per reference caption for training, else one with every reference.
fn coco_image_records(image: &Record, train: bool, records: &mut Vec<Record>) -> Result<()> {
    let filename = image.str("filename")?;
    // `filename.split('.')[0]` (caption_clip_data.py:104).
    let image_id = filename.split('.').next().unwrap_or_default().to_string();
    let cocoid = image.value("cocoid")?.clone();
    if !(cocoid.is_i64() || cocoid.is_u64() || cocoid.is_string()) {
        return Err(image.field_error("cocoid", "an integer or a string", &describe(&cocoid)));
    }
    let Value::Array(sentences) = image.value("sentences")? else {
        return Err(image.field_error(
            "sentences",
            "a list of {\"raw\": ...} objects",
            &describe(image.value("sentences")?),
        ));
    };
    let mut references = Vec::with_capacity(sentences.len());
    for (i, sentence) in sentences.iter().enumerate() {
        let field = |name: &str| sentence.get(name);
        let Some(Value::String(raw)) = field("raw") else {
            return Err(image.field_error(
                &format!("sentences[{i}].raw"),
                "a string",
                &field("raw").map_or("no such field".to_string(), describe),
            ));
        };
        if !train {
            references.push(Value::String(raw.clone()));
            continue;
        }
        let mut record = Record::new(&image.path, image.line);
        record.set("cocoid", cocoid.clone());
        record.set("image", image_id.clone());
        match field("sentid") {
            Some(id @ Value::Number(_)) | Some(id @ Value::String(_)) => {
                record.set("sentid", id.clone())
            }
            other => {
                return Err(image.field_error(
                    &format!("sentences[{i}].sentid"),
                    "an integer or a string",
                    &other.map_or("no such field".to_string(), describe),
                ))
            }
        }
        record.set("raw", raw.clone());
        records.push(record);
    }
    if !train {
        if references.is_empty() {
            return Err(image.field_error(
                "sentences",
                "at least one reference caption for a validation/test image",
                "[]",
            ));
        }
        let mut record = Record::new(&image.path, image.line);
        record.set("cocoid", cocoid);
        record.set("image", image_id);
        record.set("references", references);
        records.push(record);
    }
    Ok(())
}

pub(crate) fn format_coco_caption(r: &Record, _row: usize) -> Result<Vec<TextExample>> {
    let cocoid = id_text(r, "cocoid")?;
    let image = Some(r.str("image")?.to_string());
    let example = if r.fields.contains_key("references") {
        let references: Vec<String> = r
            .str_list("references")?
            .iter()
            .map(|s| py_strip(s).to_string())
            .collect();
        let Some(first) = references.first().cloned() else {
            return Err(r.field_error("references", "at least one reference caption", "[]"));
        };
        TextExample {
            id: cocoid,
            input: CAPTION_INPUT.to_string(),
            target: first,
            extra: Extra {
                group: None,
                answers: references,
                image,
                loss_weight: None,
            },
        }
    } else {
        TextExample {
            id: format!("{cocoid}_{}", id_text(r, "sentid")?),
            input: CAPTION_INPUT.to_string(),
            target: py_strip(r.str("raw")?).to_string(),
            extra: Extra {
                group: None,
                answers: Vec::new(),
                image,
                loss_weight: None,
            },
        }
    };
    Ok(vec![example])
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use serde_json::json;

    use crate::load::{find_source, load_split};
    use crate::task::Split;
    use crate::tasks::task;
    use crate::TextExample;

    fn write(dir: &Path, rel: &str, text: &str) {
        let path = dir.join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }

    fn answers(words: &[&str]) -> serde_json::Value {
        words
            .iter()
            .enumerate()
            .map(|(i, a)| json!({"answer": a, "answer_confidence": "yes", "answer_id": i + 1}))
            .collect()
    }

    fn vqa_row(qid: u64, img: &str, sent: &str, label: serde_json::Value) -> serde_json::Value {
        json!({"img_id": img, "sent": sent, "question_id": qid, "label": label,
               "answer_type": "other", "question_type": "what"})
    }

    fn load(name: &str, dir: &Path, split: Split) -> Vec<TextExample> {
        load_split(task(name).unwrap(), dir, split, 42).unwrap()
    }

    fn load_err(name: &str, dir: &Path, split: Split) -> String {
        load_split(task(name).unwrap(), dir, split, 42)
            .expect_err("must be an error")
            .to_string()
    }

    /// `(id, input, target, image)` of each example.
    fn summary(examples: &[TextExample]) -> Vec<(&str, &str, &str, Option<&str>)> {
        examples
            .iter()
            .map(|e| {
                (
                    e.id.as_str(),
                    e.input.as_str(),
                    e.target.as_str(),
                    e.extra.image.as_deref(),
                )
            })
            .collect()
    }

    #[test]
    fn vqa_formats_ids_images_and_answers() {
        let tmp = tempfile::tempdir().unwrap();
        let mut first = vqa_row(
            393225000,
            "COCO_val2014_000000393225",
            "Is the ski pole in the air?",
            json!({"yes": 1.0, "no": 0.3}),
        );
        first["answers"] = answers(&[
            "yes", "yes", "no", "yes", "yes", "yes", "yes", "yes", "yes", "yes",
        ]);
        // Ties go to the smallest answer, whatever the order in the file.
        let mut tie = vqa_row(
            7,
            "COCO_train2014_000000000009",
            "What color?",
            json!({"red": 0.6, "blue": 0.6, "green": 0.3}),
        );
        tie["answers"] = answers(&["red", "blue"]);
        // An empty label gives an empty target, as VL-T5's `answer = ''`; so do scores summing to 0.
        let mut empty = vqa_row(8, "COCO_val2014_000000000042", "Why?", json!({}));
        empty["answers"] = answers(&["because"]);
        let zero = vqa_row(9, "COCO_val2014_000000000042", "How?", json!({"fast": 0.0}));
        // `question` is VL-T5's fallback for `sent`; no `label`: unlabelled.
        let question = json!({"img_id": "COCO_val2014_000000000043", "question": "Where?", "question_id": "10"});
        let file = json!([first, tie, empty, zero, question]).to_string();
        write(tmp.path(), "VQA/karpathy_val.json", &file);
        let val = load("vqa", tmp.path(), Split::Validation);
        let got = summary(&val);
        assert_eq!(
            got,
            vec![
                (
                    "393225000",
                    "vqa: Is the ski pole in the air?",
                    "yes",
                    Some("COCO_val2014_000000393225")
                ),
                (
                    "7",
                    "vqa: What color?",
                    "blue",
                    Some("COCO_train2014_000000000009")
                ),
                ("8", "vqa: Why?", "", Some("COCO_val2014_000000000042")),
                ("9", "vqa: How?", "", Some("COCO_val2014_000000000042")),
                ("10", "vqa: Where?", "", Some("COCO_val2014_000000000043")),
            ]
        );
        // The target answer's score weighs the example's loss (VL-Adapter); 0 where no answer is scored.
        let weights: Vec<Option<f64>> = val.iter().map(|e| e.extra.loss_weight).collect();
        assert_eq!(
            weights,
            [Some(1.0), Some(0.6), Some(0.0), Some(0.0), Some(0.0)]
        );
        assert_eq!(val[0].extra.answers.len(), 10);
        assert_eq!(val[0].extra.answers[2], "no");
        assert_eq!(val[1].extra.answers, vec!["red", "blue"]);
        assert!(val[3].extra.answers.is_empty() && val[4].extra.answers.is_empty());
        assert!(val[4].extra.group.is_none());
    }

    #[test]
    fn vqa_splits_come_from_the_karpathy_files() {
        let tmp = tempfile::tempdir().unwrap();
        for (file, qid) in [
            ("karpathy_train", 1),
            ("karpathy_val", 2),
            ("karpathy_test", 3),
        ] {
            let row = vqa_row(qid, "COCO_val2014_000000000001", "Q?", json!({"a": 1}));
            write(
                tmp.path(),
                &format!("vqa/{file}.json"),
                &json!([row]).to_string(),
            );
        }
        let t = task("vqa").unwrap();
        for (split, id, file) in [
            (Split::Train, "1", "karpathy_train.json"),
            (Split::Validation, "2", "karpathy_val.json"),
            (Split::Test, "3", "karpathy_test.json"),
        ] {
            let examples = load("vqa", tmp.path(), split);
            assert_eq!(examples.len(), 1);
            assert_eq!(examples[0].id, id, "{split}");
            let source = find_source(t, tmp.path(), t.source_split(split)).unwrap();
            assert_eq!(
                source,
                crate::SourceFiles::Original(tmp.path().join("vqa").join(file))
            );
        }
    }

    #[test]
    fn vqa_bad_rows_name_the_file_the_question_and_the_field() {
        let tmp = tempfile::tempdir().unwrap();
        let ok = vqa_row(1, "COCO_val2014_000000000001", "Q?", json!({"a": 1}));
        let cases = [
            (
                json!({"img_id": "COCO_x", "question_id": 2, "label": {}}),
                "field `sent`",
            ),
            (
                json!({"sent": "Q?", "question_id": 2, "label": {}}),
                "field `img_id`",
            ),
            (
                json!({"sent": "Q?", "img_id": "COCO_x", "label": {}}),
                "field `question_id`",
            ),
            (
                json!({"sent": "Q?", "img_id": "COCO_x", "question_id": 2, "label": {"a": "1"}}),
                "field `label.a`",
            ),
            (
                json!({"sent": "Q?", "img_id": "COCO_x", "question_id": 2, "label": ["a"]}),
                "field `label`",
            ),
            (
                json!({"sent": "Q?", "img_id": "COCO_x", "question_id": 2, "answers": [{"id": 1}]}),
                "answers[0].answer",
            ),
            (
                json!({"sent": 3, "img_id": "COCO_x", "question_id": 2}),
                "field `sent`: expected a string, found 3",
            ),
        ];
        for (bad, wanted) in cases {
            write(
                tmp.path(),
                "vqa/karpathy_test.json",
                &json!([ok, bad]).to_string(),
            );
            let err = load_err("vqa", tmp.path(), Split::Test);
            assert!(
                err.contains("karpathy_test.json:2") && err.contains(wanted),
                "{wanted}: {err}"
            );
        }
    }

    #[test]
    fn malformed_json_names_the_file() {
        let tmp = tempfile::tempdir().unwrap();
        for (text, wanted) in [
            ("[{\"sent\": \"Q?\",", "karpathy_val.json:1"),
            ("{\"sent\": \"Q?\"}", "a JSON array of questions"),
            ("[1, 2]", "element 1 of the array is 1"),
            ("[] trailing", "trailing characters"),
        ] {
            write(tmp.path(), "vqa/karpathy_val.json", text);
            let err = load_err("vqa", tmp.path(), Split::Validation);
            assert!(
                err.contains("vqa/karpathy_val.json") && err.contains(wanted),
                "{text}: {err}"
            );
        }
        for (text, wanted) in [
            ("{\"images\": [", "dataset_coco.json:1"),
            ("[]", "an `images` array"),
            ("{\"dataset\": \"coco\"}", "without `images`"),
            ("{\"images\": [\"x\"]}", "element 1 of the array is \"x\""),
            ("{\"images\": {}}", "invalid type: map"),
        ] {
            write(tmp.path(), "COCO/dataset_coco.json", text);
            let err = load_err("coco_caption", tmp.path(), Split::Train);
            assert!(
                err.contains("COCO/dataset_coco.json") && err.contains(wanted),
                "{text}: {err}"
            );
        }
    }

    fn coco_image(cocoid: u64, split: &str, sentences: &[(u64, &str)]) -> serde_json::Value {
        let folder = if split == "train" {
            "train2014"
        } else {
            "val2014"
        };
        json!({
            "filepath": folder,
            "filename": format!("COCO_{folder}_{cocoid:012}.jpg"),
            "imgid": 0,
            "split": split,
            "cocoid": cocoid,
            "sentids": sentences.iter().map(|s| s.0).collect::<Vec<_>>(),
            "sentences": sentences.iter().map(|(id, raw)| json!({
                "tokens": raw.split(' ').collect::<Vec<_>>(), "raw": raw, "imgid": 0, "sentid": id
            })).collect::<Vec<_>>(),
        })
    }

    fn write_coco(dir: &Path) {
        let images = json!({
            "images": [
                coco_image(1, "train", &[(10, "A man riding a horse. "), (11, " A person on a horse")]),
                coco_image(2, "val", &[(20, "A cat on a mat. "), (21, "A cat sitting.")]),
                coco_image(3, "restval", &[(30, "Two dogs playing.")]),
                coco_image(4, "test", &[(40, "A red bus."), (41, "A bus on a street"), (42, "Bus.")]),
                coco_image(5, "val", &[(50, "A plate of food.")]),
            ],
            "dataset": "coco",
        });
        write(dir, "COCO/dataset_coco.json", &images.to_string());
    }

    #[test]
    fn coco_routes_restval_into_train_and_formats_each_split() {
        let tmp = tempfile::tempdir().unwrap();
        write_coco(tmp.path());
        let train = load("coco_caption", tmp.path(), Split::Train);
        let got = summary(&train);
        assert_eq!(
            got,
            vec![
                (
                    "1_10",
                    "caption:",
                    "A man riding a horse.",
                    Some("COCO_train2014_000000000001")
                ),
                (
                    "1_11",
                    "caption:",
                    "A person on a horse",
                    Some("COCO_train2014_000000000001")
                ),
                (
                    "3_30",
                    "caption:",
                    "Two dogs playing.",
                    Some("COCO_val2014_000000000003")
                ),
            ]
        );
        assert!(train.iter().all(|e| e.extra.answers.is_empty()));

        let val = load("coco_caption", tmp.path(), Split::Validation);
        assert_eq!(val.len(), 2);
        assert_eq!(
            (val[0].id.as_str(), val[0].target.as_str()),
            ("2", "A cat on a mat.")
        );
        assert_eq!(
            val[0].extra.answers,
            vec!["A cat on a mat.", "A cat sitting."]
        );
        assert_eq!(
            val[0].extra.image.as_deref(),
            Some("COCO_val2014_000000000002")
        );
        assert_eq!(val[1].id, "5");

        let test = load("coco_caption", tmp.path(), Split::Test);
        assert_eq!(test.len(), 1);
        assert_eq!(test[0].id, "4");
        assert_eq!(test[0].input, "caption:");
        assert_eq!(test[0].extra.answers.len(), 3);
    }

    #[test]
    fn coco_bad_images_name_the_file_the_image_and_the_field() {
        let tmp = tempfile::tempdir().unwrap();
        let ok = coco_image(1, "val", &[(10, "A cat.")]);
        let mut no_raw = coco_image(2, "val", &[(20, "A dog.")]);
        no_raw["sentences"][0]
            .as_object_mut()
            .unwrap()
            .remove("raw");
        let mut no_filename = coco_image(2, "val", &[(20, "A dog.")]);
        no_filename.as_object_mut().unwrap().remove("filename");
        let mut bad_split = coco_image(2, "val", &[(20, "A dog.")]);
        bad_split["split"] = json!("dev");
        let no_sentences = coco_image(2, "val", &[]);
        for (bad, wanted) in [
            (no_raw, "field `sentences[0].raw`"),
            (no_filename, "field `filename`"),
            (
                bad_split,
                "field `split`: expected train, restval, val or test, found dev",
            ),
            (no_sentences, "at least one reference caption"),
        ] {
            let file = json!({"images": [ok, bad]}).to_string();
            write(tmp.path(), "COCO/dataset_coco.json", &file);
            let err = load_err("coco_caption", tmp.path(), Split::Validation);
            assert!(
                err.contains("dataset_coco.json:2") && err.contains(wanted),
                "{wanted}: {err}"
            );
        }
        // Train ids need each caption's `sentid`.
        let mut no_sentid = coco_image(3, "train", &[(30, "A bird.")]);
        no_sentid["sentences"][0]
            .as_object_mut()
            .unwrap()
            .remove("sentid");
        write(
            tmp.path(),
            "COCO/dataset_coco.json",
            &json!({"images": [no_sentid]}).to_string(),
        );
        let err = load_err("coco_caption", tmp.path(), Split::Train);
        assert!(
            err.contains("dataset_coco.json:1") && err.contains("sentences[0].sentid"),
            "{err}"
        );
    }

    #[test]
    fn gzip_files_are_read_too() {
        use std::io::Write;
        let tmp = tempfile::tempdir().unwrap();
        let row = vqa_row(5, "COCO_val2014_000000000001", "Q?", json!({"a": 1}));
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(json!([row]).to_string().as_bytes()).unwrap();
        let bytes = gz.finish().unwrap();
        std::fs::create_dir_all(tmp.path().join("vqa")).unwrap();
        std::fs::write(tmp.path().join("vqa/karpathy_val.json"), &bytes).unwrap();
        assert_eq!(load("vqa", tmp.path(), Split::Validation)[0].id, "5");
        std::fs::write(
            tmp.path().join("vqa/karpathy_val.json"),
            &bytes[..bytes.len() / 2],
        )
        .unwrap();
        let err = load_err("vqa", tmp.path(), Split::Validation);
        assert!(
            err.contains("karpathy_val.json") && err.contains("gzip"),
            "{err}"
        );
    }
}
