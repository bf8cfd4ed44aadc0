//! Text transformations of the official code (T5 preprocessors by way of ATTEMPT/compacter), reimplemented.

use std::sync::OnceLock;

use regex::Regex;

fn regex(cell: &'static OnceLock<Regex>, pattern: &str) -> &'static Regex {
    cell.get_or_init(|| Regex::new(pattern).expect("built-in pattern is valid"))
}

/// T5's `_pad_punctuation`: a space on both sides of every character that is not `_`, whitespace, a number, a letter
/// or a mark, then runs of whitespace collapsed to one space. Not trimmed (a leading quote leaves a leading space),
/// exactly like the original; accented letters written with combining marks stay intact, precomposed ones too.
pub fn pad_punctuation(text: &str) -> String {
    static PUNCT: OnceLock<Regex> = OnceLock::new();
    static SPACES: OnceLock<Regex> = OnceLock::new();
    let padded = regex(&PUNCT, r"([^_\s\p{N}\p{L}\p{M}])").replace_all(text, " $1 ");
    regex(&SPACES, r"\s+")
        .replace_all(&padded, " ")
        .into_owned()
}

/// MultiRC's HTML markup removal: `<br>` becomes a space, `<b>` and `</b>` disappear.
pub fn remove_markup(text: &str) -> String {
    text.replace("<br>", " ")
        .replace("<b>", "")
        .replace("</b>", "")
}

/// STS-B target as the official `round_stsb_target` writes it: `str(np.round((label * 5) / 5, decimals=1))`.
///
/// The hub stores the score as float32, so the value is first narrowed to f32 and widened back, then numpy's
/// `round(x, 1)` (= `rint(x * 10) / 10`, ties to even) is applied in f64, and printed the way numpy prints a float64
/// (shortest round-trip, always with a decimal point): `"3.8"`, `"5.0"`. Note the official comment promises a
/// rounding to the nearest 0.2; the code rounds to one decimal, and this follows the code.
pub fn stsb_target(score: f64) -> String {
    let label = f64::from(score as f32);
    let scaled = (label * 5.0) / 5.0;
    let rounded = (scaled * 10.0).round_ties_even() / 10.0;
    format!("{rounded:?}")
}

/// T5's WSC span marking: finds `span` after exactly `word_index` whitespace-separated words and surrounds it with
/// `mark` (`* noun *`, `# pronoun #`). Like the original the span text is used as a regular expression; when it
/// does not match there (or is not a valid pattern) the text is returned unchanged.
pub fn mark_span(text: &str, span: &str, word_index: usize, mark: char) -> String {
    let pattern = format!(r"^((?:\S+\s){{{word_index}}})({span})");
    match Regex::new(&pattern) {
        Ok(re) => re
            .replacen(text, 1, |caps: &regex::Captures| {
                format!("{}{mark} {} {mark}", &caps[1], &caps[2])
            })
            .into_owned(),
        Err(_) => text.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pad_punctuation_pads_and_collapses() {
        assert_eq!(pad_punctuation("Hello, world!"), "Hello , world ! ");
        assert_eq!(pad_punctuation("\"Hi\"  there"), " \" Hi \" there");
        assert_eq!(pad_punctuation("snake_case 3.5"), "snake_case 3 . 5");
    }

    #[test]
    fn stsb_rounds_like_numpy_on_float32() {
        assert_eq!(stsb_target(3.8), "3.8");
        assert_eq!(stsb_target(5.0), "5.0");
        assert_eq!(stsb_target(0.0), "0.0");
        // 2.25 is exact in f32: rint(22.5) = 22 (ties to even).
        assert_eq!(stsb_target(2.25), "2.2");
        // 0.85 as f32 is 0.85000002..., so it rounds up; as f64 it would round down to 0.8.
        assert_eq!(stsb_target(0.85), "0.9");
    }

    #[test]
    fn wsc_marks_like_t5() {
        let text = "This is a test sentence .";
        let marked = mark_span(text, "test", 3, '*');
        assert_eq!(marked, "This is a * test * sentence .");
        assert_eq!(
            mark_span(&marked, "This", 0, '#'),
            "# This # is a * test * sentence ."
        );
        assert_eq!(mark_span(text, "nothing", 1, '#'), text);
    }
}
