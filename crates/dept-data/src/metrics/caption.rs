//! COCO captioning metrics as `pycocoevalcap` 1.2 computes them: BLEU-1..4 (`Bleu(4)`), ROUGE-L (`Rouge()`) and
//! CIDEr-D (`Cider()`), on captions that are already tokenised.
//!
//! Scores are the values `pycocoevalcap` returns: BLEU and ROUGE-L in `[0, 1]`, CIDEr-D in `[0, 10]` (it is
//! multiplied by 10 inside; papers print all of them ×100, e.g. CIDEr 116.5 for 1.165).
//!
//! ## Tokenisation
//!
//! `COCOEvalCap` first runs the Stanford PTB tokenizer (`PTBTokenizer`, a Java program) over predictions and
//! references: lower-cased, punctuation removed, tokens joined by single spaces. That needs Java, which this
//! crate avoids, so these functions take captions that are *already* in that form and do no tokenisation of
//! their own: BLEU and CIDEr-D split on whitespace (`str.split()`), ROUGE-L on single spaces (`str.split(" ")`),
//! exactly as `pycocoevalcap` does after the tokenizer. Feed them raw text and the scores will differ from the
//! official ones.
//!
//! [`ptb_tokenize`] approximates that step in Rust (its docs list where it can differ from Stanford's); it is what
//! [`crate::score()`] applies to predictions and references of `coco_caption` before these functions.
//!
//! ## Left out: METEOR and SPICE
//!
//! `pycocoevalcap`'s METEOR (`meteor-1.5.jar`) and SPICE (`spice-1.0.jar`, with Stanford CoreNLP) are Java
//! programs, with WordNet/paraphrase tables and a scene-graph parser that cannot be reproduced here bit for bit.
//! There is deliberately no `meteor` or `spice` function: report them from the official Java tools if needed.
//!
//! ## The computations (mirrored operation by operation, so values agree to the last bits)
//!
//! - BLEU (`BleuScorer.compute_score(option='closest')`): n-gram counts clipped by the maximum count in any one
//!   reference; the reference length of an image is the one closest to the prediction's length (ties: the
//!   shorter); corpus score = `prod_k (correct_k + 1e-15) / (guess_k + 1e-9)` over k ≤ n, to the power `1/n`,
//!   times the brevity penalty `exp(1 - r/c)` when `c < r` (with `ratio = (c + 1e-15) / (r + 1e-9)`), all counts
//!   and lengths summed over images first. Per-image scores use the same formula on one image.
//! - ROUGE-L (`Rouge.calc_score`): LCS length against each reference, precision and recall each maximised over
//!   the references separately, `F = (1 + b^2) P R / (R + b^2 P)` with `b = 1.2` (0 when P or R is 0); the
//!   corpus value is the mean over images (numpy's pairwise sum).
//! - CIDEr-D (`CiderScorer`): tf-idf vectors of 1..4-grams with `idf = log(#images) - log(max(1, df))`, `df` the
//!   number of images whose references contain the n-gram (the references of the evaluated set only); per n,
//!   the clipped cosine `sum min(h, r) r / (|h| |r|)` times `e^(-(l_h - l_r)^2 / (2 * 6^2))`, where `l` counts a
//!   caption's *bigrams* (a quirk of `counts2vec`: `len - 1`, or 0 for an empty caption); mean over n, mean over
//!   the references, ×10; the corpus value is the mean over images. With a single image every idf is 0 and so
//!   is CIDEr-D.
//!
//! Checked in `tests/vl_metrics.rs` against `pycocoevalcap==1.2` (`tests/reference/vl_metrics_reference.py`).

use std::collections::HashMap;

use super::check_pairs;
use crate::error::{DataError, Result};

/// The tokens `pycocoevalcap`'s `PTBTokenizer` removes after the Java tokenizer (`PUNCTUATIONS`). The bracket
/// names are upper-case here but the tokenizer runs with `-lowerCase`, which lower-cases every token it writes
/// (`-LRB-` becomes `-lrb-`), so brackets are never removed: kept on purpose, like the official scores.
const PTB_REMOVED: [&str; 17] = [
    "''", "'", "``", "`", "-LRB-", "-RRB-", "-LCB-", "-RCB-", ".", "?", "!", ",", ":", "-", "--",
    "...", ";",
];

/// The clitics the PTB tokenizer splits off a word (`it's` → `it 's`), after lower-casing.
const PTB_CLITICS: [&str; 6] = ["'s", "'m", "'d", "'re", "'ve", "'ll"];

/// A caption as `pycocoevalcap`'s `PTBTokenizer` turns it into space-separated tokens before BLEU, ROUGE-L and
/// CIDEr-D: Stanford CoreNLP 3.4.1's `PTBTokenizer -preserveLines -lowerCase`, then the tokens of its
/// `PUNCTUATIONS` list dropped. Predictions and references must both go through it.
///
/// What it does: newlines become spaces; the text is lower-cased; each whitespace-separated chunk is split into
/// tokens: `"` (PTB `` `` `` / `''`), `` ` ``, `;`, `?`, `!`, `$`, `#` and `%` are always tokens of their own,
/// and so are `,` and `:` unless between two digits (`1,000` and `10:30` stay whole); brackets become `-lrb-`
/// `-rrb-` `-lsb-` `-rsb-` `-lcb-` `-rcb-`; a run of periods at the end of a word is split off (`man.` → `man`
/// `.`), periods inside a word stay (`3.5`); a word's leading and trailing single quotes are split off unless
/// the word is a clitic (`'s`); `n't` and the clitics `'s 'm 'd 're 've 'll` are split off the word before them
/// (`don't` → `do n't`, `can't` → `ca n't`, `dog's` → `dog 's`), as PTB does; `’` and `‘` count as `'`. Then
/// `'' ' `` ` . ? ! , : - -- ... ;` tokens are dropped and the rest joined by single spaces. Hyphenated words
/// (`black-and-white`) stay whole.
///
/// Where it can differ from Stanford's lexer (rare in captions, but it changes the scores when it happens):
/// abbreviations and acronyms keep their final period there (`mr.`, `st.`, `u.s.`), here the period is dropped
/// (`mr`, `u.s`); fused forms that PTB splits (`cannot` → `can not`, `gonna` → `gon na`) stay whole here;
/// runs of `!`/`?` and ellipses inside a word (`wait...what`), URLs, e-mail addresses, emoticons, `&` and
/// `/` or `*` (which some PTB settings escape as `\/`, `\*`) follow the simple rules above rather than the
/// lexer's special cases; and Stanford's Unicode normalisations (dashes, other quote characters, non-breaking
/// spaces) are not reproduced beyond `’`/`‘`.
pub fn ptb_tokenize(text: &str) -> String {
    let text = text.replace(['\u{2019}', '\u{2018}'], "'").to_lowercase();
    let mut tokens: Vec<String> = Vec::new();
    for chunk in text.split(char::is_whitespace).filter(|c| !c.is_empty()) {
        let chars: Vec<char> = chunk.chars().collect();
        let mut word = String::new();
        for (i, &c) in chars.iter().enumerate() {
            let between_digits = i > 0
                && i + 1 < chars.len()
                && chars[i - 1].is_ascii_digit()
                && chars[i + 1].is_ascii_digit();
            let own: Option<&str> = match c {
                '"' => Some("''"),
                '`' => Some("`"),
                '(' => Some("-lrb-"),
                ')' => Some("-rrb-"),
                '[' => Some("-lsb-"),
                ']' => Some("-rsb-"),
                '{' => Some("-lcb-"),
                '}' => Some("-rcb-"),
                ';' => Some(";"),
                '?' => Some("?"),
                '!' => Some("!"),
                '$' => Some("$"),
                '#' => Some("#"),
                '%' => Some("%"),
                ',' if !between_digits => Some(","),
                ':' if !between_digits => Some(":"),
                _ => None,
            };
            match own {
                Some(token) => {
                    ptb_word(&word, &mut tokens);
                    word.clear();
                    tokens.push(token.to_string());
                }
                None => word.push(c),
            }
        }
        ptb_word(&word, &mut tokens);
    }
    tokens.retain(|t| !PTB_REMOVED.contains(&t.as_str()));
    tokens.join(" ")
}

/// The tokens of one word of [`ptb_tokenize`] (no always-split characters left in it).
fn ptb_word(word: &str, tokens: &mut Vec<String>) {
    if word.is_empty() {
        return;
    }
    if word.chars().all(|c| c == '.' || c == '\'') || word.chars().all(|c| c == '-') {
        tokens.push(word.to_string());
        return;
    }
    let mut word = word;
    // Split off the end: runs of periods and closing quotes, innermost last.
    let mut tail: Vec<&str> = Vec::new();
    loop {
        let trimmed = word.trim_end_matches('.');
        if trimmed.len() < word.len() && !trimmed.is_empty() {
            tail.push(&word[trimmed.len()..]);
            word = trimmed;
            continue;
        }
        if word.len() > 1 && word.ends_with('\'') {
            tail.push("'");
            word = &word[..word.len() - 1];
            continue;
        }
        break;
    }
    // Opening quotes, unless the word is a clitic written on its own (`'s`).
    while word.len() > 1 && word.starts_with('\'') && !PTB_CLITICS.contains(&word) {
        tokens.push("'".to_string());
        word = &word[1..];
    }
    if let Some(base) = word.strip_suffix("n't").filter(|b| !b.is_empty()) {
        tokens.push(base.to_string());
        tokens.push("n't".to_string());
    } else if let Some((base, clitic)) = word
        .rfind('\'')
        .map(|at| word.split_at(at))
        .filter(|(base, clitic)| !base.is_empty() && PTB_CLITICS.contains(clitic))
    {
        tokens.push(base.to_string());
        tokens.push(clitic.to_string());
    } else {
        tokens.push(word.to_string());
    }
    tokens.extend(tail.into_iter().rev().map(str::to_string));
}

/// The n-gram orders of BLEU and CIDEr-D.
const N: usize = 4;
/// CIDEr-D's Gaussian length penalty.
const SIGMA: f64 = 6.0;
/// ROUGE-L's recall weight.
const BETA: f64 = 1.2;
/// `BleuScorer`'s guards against zero division.
const SMALL: f64 = 1e-9;
const TINY: f64 = 1e-15;

/// Corpus scores of a set of predicted captions, as `pycocoevalcap` reports them.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CaptionScores {
    /// BLEU-1..4 (`Bleu_1` .. `Bleu_4`); `bleu[3] == bleu4`.
    pub bleu: [f64; 4],
    /// BLEU-4 (`Bleu_4`), in `[0, 1]`.
    pub bleu4: f64,
    /// ROUGE-L (`ROUGE_L`), in `[0, 1]`.
    pub rouge_l: f64,
    /// CIDEr-D (`CIDEr`), in `[0, 10]`.
    pub cider: f64,
}

/// A corpus score with the per-image values it averages.
#[derive(Debug, Clone, PartialEq)]
pub struct ImageScores {
    pub corpus: f64,
    pub per_image: Vec<f64>,
}

/// BLEU-1..4 for the corpus and for each image.
#[derive(Debug, Clone, PartialEq)]
pub struct BleuScores {
    pub corpus: [f64; 4],
    pub per_image: Vec<[f64; 4]>,
}

/// BLEU-4, ROUGE-L and CIDEr-D of `predictions[i]` against `references[i]` (one prediction and at least one
/// reference per image, all pre-tokenised: see the module docs).
pub fn caption_scores(predictions: &[String], references: &[Vec<String>]) -> Result<CaptionScores> {
    let bleu = bleu(predictions, references)?.corpus;
    Ok(CaptionScores {
        bleu,
        bleu4: bleu[3],
        rouge_l: rouge_l(predictions, references)?.corpus,
        cider: cider_d(predictions, references)?.corpus,
    })
}

fn check(metric: &str, predictions: &[String], references: &[Vec<String>]) -> Result<()> {
    check_pairs(metric, predictions.len(), references.len())?;
    if let Some(i) = references.iter().position(Vec::is_empty) {
        return Err(DataError::Invalid(format!(
            "{metric}: image {i} has no reference caption"
        )));
    }
    Ok(())
}

/// Python's `str.split()`: runs of Unicode White_Space (and U+001C..U+001F) separate tokens.
fn py_split(s: &str) -> Vec<&str> {
    s.split(|c: char| c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c))
        .filter(|w| !w.is_empty())
        .collect()
}

/// numpy's pairwise summation (`np.add.reduce` on a contiguous float64 array), so means agree to the last bit.
fn numpy_sum(a: &[f64]) -> f64 {
    let n = a.len();
    if n < 8 {
        a.iter().fold(0.0, |s, x| s + x)
    } else if n <= 128 {
        let mut r = [0.0; 8];
        r.copy_from_slice(&a[..8]);
        let mut i = 8;
        while i < n - n % 8 {
            for j in 0..8 {
                r[j] += a[i + j];
            }
            i += 8;
        }
        let mut res = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
        for x in &a[i..] {
            res += x;
        }
        res
    } else {
        let mut n2 = n / 2;
        n2 -= n2 % 8;
        numpy_sum(&a[..n2]) + numpy_sum(&a[n2..])
    }
}

fn numpy_mean(a: &[f64]) -> f64 {
    numpy_sum(a) / a.len() as f64
}

/// N-grams with their counts, in first-seen order.
type Counts<'a, 'w> = Vec<(&'a [&'w str], usize)>;

/// The 1..4-grams of a token list with their counts, in the order `precook` first meets them (all unigrams by
/// position, then bigrams, ...), which is the order Python's dict iterates.
fn ngram_counts<'a, 'w>(words: &'a [&'w str]) -> Counts<'a, 'w> {
    let mut index: HashMap<&[&str], usize> = HashMap::new();
    let mut counts: Vec<(&[&str], usize)> = Vec::new();
    for k in 1..=N {
        for gram in words.windows(k) {
            match index.get(gram) {
                Some(&i) => counts[i].1 += 1,
                None => {
                    index.insert(gram, counts.len());
                    counts.push((gram, 1));
                }
            }
        }
    }
    counts
}

/// BLEU-1..4 as `Bleu(4).compute_score` returns them (corpus, and per image).
pub fn bleu(predictions: &[String], references: &[Vec<String>]) -> Result<BleuScores> {
    check("bleu", predictions, references)?;
    let mut total_test = 0usize;
    let mut total_ref = 0usize;
    let mut total_guess = [0usize; N];
    let mut total_correct = [0usize; N];
    let mut per_image = Vec::with_capacity(predictions.len());
    for (prediction, refs) in predictions.iter().zip(references) {
        // cook_refs: reference lengths and the maximum count of each n-gram in any one reference.
        let mut ref_lens = Vec::with_capacity(refs.len());
        let mut max_counts: HashMap<Vec<&str>, usize> = HashMap::new();
        for r in refs {
            let words = py_split(r);
            ref_lens.push(words.len());
            for (gram, count) in ngram_counts(&words) {
                let entry = max_counts.entry(gram.to_vec()).or_default();
                *entry = (*entry).max(count);
            }
        }
        // cook_test.
        let words = py_split(prediction);
        let test_len = words.len();
        let ref_len = ref_lens
            .iter()
            .map(|&l| (l.abs_diff(test_len), l))
            .min()
            .expect("at least one reference")
            .1;
        let mut guess = [0usize; N];
        for (k, g) in guess.iter_mut().enumerate() {
            *g = test_len.saturating_sub(k);
        }
        let mut correct = [0usize; N];
        for (gram, count) in ngram_counts(&words) {
            let max = max_counts.get(gram).copied().unwrap_or(0);
            correct[gram.len() - 1] += max.min(count);
        }
        per_image.push(bleu_from_counts(&correct, &guess, test_len, ref_len));
        total_test += test_len;
        total_ref += ref_len;
        for k in 0..N {
            total_guess[k] += guess[k];
            total_correct[k] += correct[k];
        }
    }
    let corpus = bleu_from_counts(&total_correct, &total_guess, total_test, total_ref);
    Ok(BleuScores { corpus, per_image })
}

/// `BleuScorer.compute_score`'s formula, the same for one image and for the corpus (counts summed over images):
/// the running product of clipped n-gram precisions to the power `1/k`, times the brevity penalty.
fn bleu_from_counts(
    correct: &[usize; N],
    guess: &[usize; N],
    test_len: usize,
    ref_len: usize,
) -> [f64; N] {
    let mut scores = [0.0; N];
    let mut product = 1.0;
    for k in 0..N {
        product *= (correct[k] as f64 + TINY) / (guess[k] as f64 + SMALL);
        scores[k] = product.powf(1.0 / (k as f64 + 1.0));
    }
    let ratio = (test_len as f64 + TINY) / (ref_len as f64 + SMALL);
    if ratio < 1.0 {
        for s in &mut scores {
            *s *= (1.0 - 1.0 / ratio).exp();
        }
    }
    scores
}

/// Length of the longest common subsequence of two token lists (`my_lcs`).
fn lcs(a: &[&str], b: &[&str]) -> usize {
    let mut prev = vec![0usize; b.len() + 1];
    let mut cur = vec![0usize; b.len() + 1];
    for x in a {
        for (j, y) in b.iter().enumerate() {
            cur[j + 1] = if x == y {
                prev[j] + 1
            } else {
                prev[j + 1].max(cur[j])
            };
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[b.len()]
}

/// ROUGE-L as `Rouge().compute_score` returns it (mean over images, and per image).
pub fn rouge_l(predictions: &[String], references: &[Vec<String>]) -> Result<ImageScores> {
    check("rouge_l", predictions, references)?;
    let beta2 = BETA * BETA;
    let per_image: Vec<f64> = predictions
        .iter()
        .zip(references)
        .map(|(prediction, refs)| {
            // `str.split(" ")`, as the official code splits (an empty caption is one empty token).
            let candidate: Vec<&str> = prediction.split(' ').collect();
            let (mut prec_max, mut rec_max) = (f64::NEG_INFINITY, f64::NEG_INFINITY);
            for r in refs {
                let reference: Vec<&str> = r.split(' ').collect();
                let l = lcs(&reference, &candidate) as f64;
                prec_max = prec_max.max(l / candidate.len() as f64);
                rec_max = rec_max.max(l / reference.len() as f64);
            }
            if prec_max != 0.0 && rec_max != 0.0 {
                ((1.0 + beta2) * prec_max * rec_max) / (rec_max + beta2 * prec_max)
            } else {
                0.0
            }
        })
        .collect();
    Ok(ImageScores {
        corpus: numpy_mean(&per_image),
        per_image,
    })
}

/// A caption's tf-idf vector (`counts2vec`): per n, the (n-gram, weight) pairs in Python's dict order and a map
/// for look-ups, the norms, and the length (its number of bigrams).
struct TfIdf<'a, 'w> {
    ordered: [Vec<(&'a [&'w str], f64)>; N],
    lookup: HashMap<&'a [&'w str], f64>,
    norm: [f64; N],
    length: usize,
}

fn counts_to_vec<'a, 'w>(
    counts: &[(&'a [&'w str], usize)],
    df: &HashMap<&[&str], f64>,
    ref_len: f64,
) -> TfIdf<'a, 'w> {
    let mut ordered: [Vec<(&[&str], f64)>; N] = Default::default();
    let mut lookup = HashMap::with_capacity(counts.len());
    let mut norm = [0.0; N];
    let mut length = 0;
    for &(gram, tf) in counts {
        let d = df.get(gram).copied().unwrap_or(0.0).max(1.0).ln();
        let n = gram.len() - 1;
        let v = tf as f64 * (ref_len - d);
        ordered[n].push((gram, v));
        lookup.insert(gram, v);
        norm[n] += v * v;
        if n == 1 {
            length += tf;
        }
    }
    for x in &mut norm {
        *x = x.sqrt();
    }
    TfIdf {
        ordered,
        lookup,
        norm,
        length,
    }
}

/// CIDEr-D as `Cider().compute_score` returns it (mean over images, and per image).
pub fn cider_d(predictions: &[String], references: &[Vec<String>]) -> Result<ImageScores> {
    check("cider", predictions, references)?;
    let test_words: Vec<Vec<&str>> = predictions.iter().map(|p| py_split(p)).collect();
    let ref_words: Vec<Vec<Vec<&str>>> = references
        .iter()
        .map(|rs| rs.iter().map(|r| py_split(r)).collect())
        .collect();
    let test_counts: Vec<Counts> = test_words.iter().map(|w| ngram_counts(w)).collect();
    let ref_counts: Vec<Vec<Counts>> = ref_words
        .iter()
        .map(|rs| rs.iter().map(|w| ngram_counts(w)).collect())
        .collect();
    // Document frequency: the number of images whose references contain the n-gram.
    let mut df: HashMap<&[&str], f64> = HashMap::new();
    for refs in &ref_counts {
        let mut seen: std::collections::HashSet<&[&str]> = std::collections::HashSet::new();
        for counts in refs {
            for &(gram, _) in counts {
                if seen.insert(gram) {
                    *df.entry(gram).or_default() += 1.0;
                }
            }
        }
    }
    let ref_len = (ref_counts.len() as f64).ln();
    let denominator = 2.0 * SIGMA * SIGMA;
    let per_image: Vec<f64> = test_counts
        .iter()
        .zip(&ref_counts)
        .map(|(test, refs)| {
            let hyp = counts_to_vec(test, &df, ref_len);
            let mut score = [0.0; N];
            for r in refs {
                let reference = counts_to_vec(r, &df, ref_len);
                let delta = hyp.length as f64 - reference.length as f64;
                for (n, total) in score.iter_mut().enumerate() {
                    let mut val = 0.0;
                    for &(gram, h) in &hyp.ordered[n] {
                        let r = reference.lookup.get(gram).copied().unwrap_or(0.0);
                        val += h.min(r) * r;
                    }
                    if hyp.norm[n] != 0.0 && reference.norm[n] != 0.0 {
                        val /= hyp.norm[n] * reference.norm[n];
                    }
                    val *= std::f64::consts::E.powf(-(delta * delta) / denominator);
                    *total += val;
                }
            }
            let mut avg = numpy_mean(&score);
            avg /= refs.len() as f64;
            avg * 10.0
        })
        .collect();
    Ok(ImageScores {
        corpus: numpy_mean(&per_image),
        per_image,
    })
}

#[cfg(test)]
mod tests {
    use super::ptb_tokenize;

    #[test]
    fn ptb_tokenize_lowercases_splits_and_drops_punctuation() {
        let cases = [
            (
                "A man riding a wave on top of a surfboard.",
                "a man riding a wave on top of a surfboard",
            ),
            (
                "  Two dogs,  playing\nin the snow!  ",
                "two dogs playing in the snow",
            ),
            (
                "A \"happy\" dog; sitting: here?",
                "a happy dog sitting here",
            ),
            (
                "It's a dog's life, isn't it?",
                "it 's a dog 's life is n't it",
            ),
            (
                "I don't think they're here; we'll see.",
                "i do n't think they 're here we 'll see",
            ),
            (
                "He can't, won't and I'm sure she'd not.",
                "he ca n't wo n't and i 'm sure she 'd not",
            ),
            (
                "The dogs' bowls and 'quoted' words",
                "the dogs bowls and quoted words",
            ),
            (
                "A black-and-white cat -- on a mat - here...",
                "a black-and-white cat on a mat here",
            ),
            (
                "1,000 people at 10:30 paid $5 (50%) today",
                "1,000 people at 10:30 paid $ 5 -lrb- 50 % -rrb- today",
            ),
            (
                "A man,with a bike.On the road",
                "a man with a bike.on the road",
            ),
            (
                "3.5 inches. A [red] {sign}",
                "3.5 inches a -lsb- red -rsb- -lcb- sign -rcb-",
            ),
            ("The dog’s ball", "the dog 's ball"),
            (
                "it 's already tokenised n't it",
                "it 's already tokenised n't it",
            ),
            ("", ""),
            (" . , ! ", ""),
        ];
        for (text, want) in cases {
            assert_eq!(ptb_tokenize(text), want, "{text:?}");
        }
    }

    #[test]
    fn ptb_tokenize_is_idempotent_on_its_output() {
        for text in [
            "It's a dog's life, isn't it?",
            "1,000 people (50%) at 10:30.",
        ] {
            let once = ptb_tokenize(text);
            assert_eq!(ptb_tokenize(&once), once);
        }
    }
}
