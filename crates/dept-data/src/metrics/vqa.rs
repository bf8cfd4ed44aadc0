//! VQA accuracy exactly as the VQA API's `vqaEval.py` computes it in the version VL-T5 and VL-Adapter copy into
//! their `VQAEvaluator.evaluate_raw` (`VL-T5/src/vqa_data.py`, VL-Adapter's `vqa_clip_data.py`): the VQA v2 API
//! before its March 2021 change (see below).
//!
//! For one question with the annotators' answers `gold` (10 in VQA v2) and a decoded `prediction`:
//!
//! 1. the prediction is normalised by [`normalize_answer`]: `\n` and `\t` become spaces, surrounding whitespace is
//!    stripped, then [`process_punctuation`], then [`process_digit_article`];
//! 2. the gold answers are taken as they are in the annotation file, except that when they are not all the same
//!    string each goes through [`process_punctuation`] only (no lower-casing, no digit words, no articles: the VQA
//!    v2 annotation answers are already normalised, so `"two"` as a unanimous gold answer never matches `"2"`);
//! 3. for each annotator `i`, `min(1, #{j != i : gold[j] == prediction} / 3)`; the question's accuracy is the mean
//!    of these (leave-one-out: the official loop drops the one answer dict that equals the current one, and VQA
//!    answer dicts differ by `answer_id`);
//! 4. the overall accuracy is the mean over questions (the official code reports it ×100, rounded to 2 decimals;
//!    [`vqa_corpus_accuracy`] returns the unrounded fraction, like every metric of this crate).
//!
//! Quirks kept on purpose, because the official numbers have them:
//! - punctuation: each character of [`PUNCTUATION`] (`;` `/` `[` `]` `"` `{` `}` `(` `)` `=` `+` backslash `_` `-`
//!   `>` `<` `@` backtick `,` `?` `!`) is deleted everywhere when it has a space on either side somewhere in the
//!   text, or when the text has a comma between two digits anywhere (`"1,000"`); otherwise it becomes a space. `'`, `:`, `.`, `#`, `$`, `%`, `&`, `*`, `|`, `~`, `^` are not in the list;
//! - periods: `re.compile("(?!<=\d)(\.)(?!\d)")` was meant as a look-behind but is a look-ahead, so every `.` not
//!   followed by a (Unicode) digit is deleted (`"3.5"` stays, `"5."` becomes `"5"`), and `re.UNICODE` is passed as
//!   the `count` argument of `sub`, so at most 32 periods are deleted;
//! - the contractions table is applied after lower-casing, so its capitalised keys (`"Im"`, `"Ive"`, ...) never
//!   match; `"somebody'd"` maps to `"somebodyd"`;
//! - the whitespace of `strip()`/`split()` is Python's (Unicode White_Space plus U+001C..U+001F).
//!
//! The VQA API since March 2021 (GT-Vision-Lab/VQA commit "Fixed processing answers bug") differs: it strips
//! the gold answers too, and applies punctuation *and* digit/article processing to both the gold answers and the
//! prediction only when the gold answers disagree (a unanimous question compares the stripped strings). VL-T5 and
//! VL-Adapter do not have that change; this module follows them.
//!
//! Checked in `tests/vl_metrics.rs` against `tests/reference/vl_metrics_reference.py`.

use std::collections::HashMap;
use std::sync::OnceLock;

use regex::Regex;

use super::check_pairs;
use crate::error::{DataError, Result};

/// The punctuation that [`process_punctuation`] deletes or turns into a space, in the official order.
pub const PUNCTUATION: [char; 21] = [
    ';', '/', '[', ']', '"', '{', '}', '(', ')', '=', '+', '\\', '_', '-', '>', '<', '@', '`', ',',
    '?', '!',
];

/// Number words the official `manualMap` replaces (whole words, after lower-casing).
pub const MANUAL_MAP: [(&str, &str); 12] = [
    ("none", "0"),
    ("zero", "0"),
    ("one", "1"),
    ("two", "2"),
    ("three", "3"),
    ("four", "4"),
    ("five", "5"),
    ("six", "6"),
    ("seven", "7"),
    ("eight", "8"),
    ("nine", "9"),
    ("ten", "10"),
];

/// Articles the official `processDigitArticle` drops.
pub const ARTICLES: [&str; 3] = ["a", "an", "the"];

/// The official `contractions` table (120 entries, as in the Python dict), whole words, applied after the
/// number words and articles.
pub const CONTRACTIONS: [(&str, &str); 120] = [
    ("aint", "ain't"),
    ("arent", "aren't"),
    ("cant", "can't"),
    ("couldve", "could've"),
    ("couldnt", "couldn't"),
    ("couldn'tve", "couldn't've"),
    ("couldnt've", "couldn't've"),
    ("didnt", "didn't"),
    ("doesnt", "doesn't"),
    ("dont", "don't"),
    ("hadnt", "hadn't"),
    ("hadnt've", "hadn't've"),
    ("hadn'tve", "hadn't've"),
    ("hasnt", "hasn't"),
    ("havent", "haven't"),
    ("hed", "he'd"),
    ("hed've", "he'd've"),
    ("he'dve", "he'd've"),
    ("hes", "he's"),
    ("howd", "how'd"),
    ("howll", "how'll"),
    ("hows", "how's"),
    ("Id've", "I'd've"),
    ("I'dve", "I'd've"),
    ("Im", "I'm"),
    ("Ive", "I've"),
    ("isnt", "isn't"),
    ("itd", "it'd"),
    ("itd've", "it'd've"),
    ("it'dve", "it'd've"),
    ("itll", "it'll"),
    ("let's", "let's"),
    ("maam", "ma'am"),
    ("mightnt", "mightn't"),
    ("mightnt've", "mightn't've"),
    ("mightn'tve", "mightn't've"),
    ("mightve", "might've"),
    ("mustnt", "mustn't"),
    ("mustve", "must've"),
    ("neednt", "needn't"),
    ("notve", "not've"),
    ("oclock", "o'clock"),
    ("oughtnt", "oughtn't"),
    ("ow's'at", "'ow's'at"),
    ("'ows'at", "'ow's'at"),
    ("'ow'sat", "'ow's'at"),
    ("shant", "shan't"),
    ("shed've", "she'd've"),
    ("she'dve", "she'd've"),
    ("she's", "she's"),
    ("shouldve", "should've"),
    ("shouldnt", "shouldn't"),
    ("shouldnt've", "shouldn't've"),
    ("shouldn'tve", "shouldn't've"),
    ("somebody'd", "somebodyd"),
    ("somebodyd've", "somebody'd've"),
    ("somebody'dve", "somebody'd've"),
    ("somebodyll", "somebody'll"),
    ("somebodys", "somebody's"),
    ("someoned", "someone'd"),
    ("someoned've", "someone'd've"),
    ("someone'dve", "someone'd've"),
    ("someonell", "someone'll"),
    ("someones", "someone's"),
    ("somethingd", "something'd"),
    ("somethingd've", "something'd've"),
    ("something'dve", "something'd've"),
    ("somethingll", "something'll"),
    ("thats", "that's"),
    ("thered", "there'd"),
    ("thered've", "there'd've"),
    ("there'dve", "there'd've"),
    ("therere", "there're"),
    ("theres", "there's"),
    ("theyd", "they'd"),
    ("theyd've", "they'd've"),
    ("they'dve", "they'd've"),
    ("theyll", "they'll"),
    ("theyre", "they're"),
    ("theyve", "they've"),
    ("twas", "'twas"),
    ("wasnt", "wasn't"),
    ("wed've", "we'd've"),
    ("we'dve", "we'd've"),
    ("weve", "we've"),
    ("werent", "weren't"),
    ("whatll", "what'll"),
    ("whatre", "what're"),
    ("whats", "what's"),
    ("whatve", "what've"),
    ("whens", "when's"),
    ("whered", "where'd"),
    ("wheres", "where's"),
    ("whereve", "where've"),
    ("whod", "who'd"),
    ("whod've", "who'd've"),
    ("who'dve", "who'd've"),
    ("wholl", "who'll"),
    ("whos", "who's"),
    ("whove", "who've"),
    ("whyll", "why'll"),
    ("whyre", "why're"),
    ("whys", "why's"),
    ("wont", "won't"),
    ("wouldve", "would've"),
    ("wouldnt", "wouldn't"),
    ("wouldnt've", "wouldn't've"),
    ("wouldn'tve", "wouldn't've"),
    ("yall", "y'all"),
    ("yall'll", "y'all'll"),
    ("y'allll", "y'all'll"),
    ("yall'd've", "y'all'd've"),
    ("y'alld've", "y'all'd've"),
    ("y'all'dve", "y'all'd've"),
    ("youd", "you'd"),
    ("youd've", "you'd've"),
    ("you'dve", "you'd've"),
    ("youll", "you'll"),
    ("youre", "you're"),
    ("youve", "you've"),
];

/// The official `periodStrip` removes at most this many periods (`re.UNICODE == 32` passed as `count`).
const MAX_PERIODS_REMOVED: usize = 32;

/// Python's `str.isspace()`: Unicode White_Space plus the information separators U+001C..U+001F.
fn is_py_space(c: char) -> bool {
    c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c)
}

fn digit_regex() -> &'static Regex {
    static DIGIT: OnceLock<Regex> = OnceLock::new();
    DIGIT.get_or_init(|| Regex::new(r"^\d$").expect("valid pattern"))
}

fn is_py_digit(c: char) -> bool {
    let mut buf = [0u8; 4];
    digit_regex().is_match(c.encode_utf8(&mut buf))
}

/// The official `processPunctuation` (see the module docs for its rules).
pub fn process_punctuation(text: &str) -> String {
    static COMMA_STRIP: OnceLock<Regex> = OnceLock::new();
    let comma_between_digits = COMMA_STRIP
        .get_or_init(|| Regex::new(r"(\d)(,)(\d)").expect("valid pattern"))
        .is_match(text);
    let mut out = text.to_string();
    for p in PUNCTUATION {
        let spaced = text.contains(&format!("{p} ")) || text.contains(&format!(" {p}"));
        let replacement = if spaced || comma_between_digits {
            ""
        } else {
            " "
        };
        out = out.replace(p, replacement);
    }
    // periodStrip.sub("", out, count=32): delete a '.' unless a digit follows it.
    let chars: Vec<char> = out.chars().collect();
    let mut result = String::with_capacity(out.len());
    let mut removed = 0;
    for (i, &c) in chars.iter().enumerate() {
        if c == '.'
            && removed < MAX_PERIODS_REMOVED
            && !chars.get(i + 1).is_some_and(|&n| is_py_digit(n))
        {
            removed += 1;
            continue;
        }
        result.push(c);
    }
    result
}

fn contractions() -> &'static HashMap<&'static str, &'static str> {
    static MAP: OnceLock<HashMap<&'static str, &'static str>> = OnceLock::new();
    MAP.get_or_init(|| CONTRACTIONS.into_iter().collect())
}

/// The official `processDigitArticle`: lower-case, split on whitespace, number words to digits, drop articles,
/// add the apostrophe of known contractions, join with single spaces.
pub fn process_digit_article(text: &str) -> String {
    let lower = text.to_lowercase();
    let words: Vec<&str> = lower
        .split(is_py_space)
        .filter(|w| !w.is_empty())
        .map(|w| {
            MANUAL_MAP
                .iter()
                .find(|(k, _)| *k == w)
                .map_or(w, |(_, v)| *v)
        })
        .filter(|w| !ARTICLES.contains(w))
        .map(|w| contractions().get(w).copied().unwrap_or(w))
        .collect();
    words.join(" ")
}

/// How the official evaluation normalises a predicted answer: `\n`/`\t` to spaces, strip, then
/// [`process_punctuation`] and [`process_digit_article`]. `"Two dogs."` → `"2 dogs"`, `"dont"` → `"don't"`.
pub fn normalize_answer(s: &str) -> String {
    let s = s.replace(['\n', '\t'], " ");
    let s = s.trim_matches(is_py_space);
    process_digit_article(&process_punctuation(s))
}

/// One question's VQA accuracy in `[0, 1]`: `prediction` is normalised with [`normalize_answer`], the annotators'
/// `gold_answers` (as in the annotation file, usually 10) go through [`process_punctuation`] when they are not all
/// equal, and the accuracy is the mean over annotators `i` of `min(1, #{j != i : gold[j] == prediction} / 3)`.
/// With no gold answers nothing can match and the result is 0 (the official code divides by zero there;
/// [`vqa_corpus_accuracy`] rejects such a question).
pub fn vqa_accuracy(prediction: &str, gold_answers: &[String]) -> f64 {
    if gold_answers.is_empty() {
        return 0.0;
    }
    let prediction = normalize_answer(prediction);
    let all_same = gold_answers.iter().all(|g| *g == gold_answers[0]);
    let matches: Vec<bool> = gold_answers
        .iter()
        .map(|g| {
            if all_same {
                *g == prediction
            } else {
                process_punctuation(g) == prediction
            }
        })
        .collect();
    let total = matches.iter().filter(|&&m| m).count();
    let mut sum = 0.0;
    for &m in &matches {
        let others = total - usize::from(m);
        sum += f64::min(1.0, others as f64 / 3.0);
    }
    sum / gold_answers.len() as f64
}

/// The mean of [`vqa_accuracy`] over questions, a fraction (the official "overall" is this ×100, rounded to 2
/// decimals). No questions, lists of different lengths, or a question without gold answers are errors.
pub fn vqa_corpus_accuracy(predictions: &[String], gold_answers: &[Vec<String>]) -> Result<f64> {
    check_pairs("vqa", predictions.len(), gold_answers.len())?;
    if let Some(i) = gold_answers.iter().position(Vec::is_empty) {
        return Err(DataError::Invalid(format!(
            "vqa: question {i} has no gold answer"
        )));
    }
    let mut sum = 0.0;
    for (p, g) in predictions.iter().zip(gold_answers) {
        sum += vqa_accuracy(p, g);
    }
    Ok(sum / predictions.len() as f64)
}
