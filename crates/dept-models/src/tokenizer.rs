//! Text to ids and back with a Hugging Face `tokenizer.json`, the way `AutoTokenizer` does it for training:
//! special tokens added (T5's `</s>`), inputs truncated to a maximum length with the special tokens kept.

use std::path::{Path, PathBuf};

use tokenizers::{PostProcessor, Tokenizer, TruncationDirection};

use crate::{checkpoint, ModelError};

/// A loaded `tokenizer.json`.
pub struct TextTokenizer {
    inner: Tokenizer,
    path: PathBuf,
}

impl TextTokenizer {
    /// `<dir>/tokenizer.json` of a model folder.
    pub fn from_model_dir(dir: &Path) -> Result<Self, ModelError> {
        Self::from_file(&dir.join(checkpoint::TOKENIZER_FILE))
    }

    pub fn from_file(path: &Path) -> Result<Self, ModelError> {
        let bad = |message: String| ModelError::Tokenizer {
            path: path.to_path_buf(),
            message,
        };
        if !path.is_file() {
            return Err(bad(
                "file not found (a Hugging Face model folder has a tokenizer.json)".into(),
            ));
        }
        let mut inner = Tokenizer::from_file(path).map_err(|e| bad(e.to_string()))?;
        inner.with_padding(None);
        inner
            .with_truncation(None)
            .map_err(|e| bad(e.to_string()))?;
        Ok(TextTokenizer {
            inner,
            path: path.to_path_buf(),
        })
    }

    /// Ids of `text` with special tokens; at most `max_len` ids when given (cut at the end, specials kept), as
    /// `tokenizer(text, max_length=max_len, truncation=True)`.
    pub fn encode(&self, text: &str, max_len: Option<usize>) -> Result<Vec<i64>, ModelError> {
        let fail = |e: tokenizers::Error| self.error(format!("cannot encode {text:?}: {e}"));
        let mut encoding = self.inner.encode(text, false).map_err(fail)?;
        if let Some(max_len) = max_len {
            // What the library's own truncation does, without reconfiguring (and so cloning) the tokenizer.
            let specials = self
                .inner
                .get_post_processor()
                .map_or(0, |p| p.added_tokens(false));
            encoding.truncate(
                max_len.saturating_sub(specials),
                0,
                TruncationDirection::Right,
            );
        }
        let encoding = self
            .inner
            .post_process(encoding, None, true)
            .map_err(fail)?;
        Ok(encoding.get_ids().iter().map(|&id| i64::from(id)).collect())
    }

    /// Ids of `text` without special tokens (no BOS, no `</s>`): a decoder-only model's target, which continues
    /// the source in one sequence.
    pub fn encode_plain(&self, text: &str) -> Result<Vec<i64>, ModelError> {
        let encoding = self
            .inner
            .encode(text, false)
            .map_err(|e| self.error(format!("cannot encode {text:?}: {e}")))?;
        Ok(encoding.get_ids().iter().map(|&id| i64::from(id)).collect())
    }

    /// Text of generated ids, special tokens (padding, `</s>`) skipped, as `batch_decode(skip_special_tokens=True)`.
    pub fn decode(&self, ids: &[i64]) -> Result<String, ModelError> {
        let ids: Vec<u32> = ids
            .iter()
            .map(|&id| u32::try_from(id).map_err(|_| self.error(format!("negative token id {id}"))))
            .collect::<Result<_, _>>()?;
        self.inner
            .decode(&ids, true)
            .map_err(|e| self.error(format!("cannot decode {ids:?}: {e}")))
    }

    /// [`decode`](Self::decode), then, with `cleanup`, [`clean_up_tokenization_spaces`]: the strings the official
    /// code scores, since its `batch_decode` (transformers 4.26.1) cleans up by default, for predictions and for
    /// the gold labels alike.
    pub fn decode_for_scoring(&self, ids: &[i64], cleanup: bool) -> Result<String, ModelError> {
        let text = self.decode(ids)?;
        Ok(if cleanup {
            clean_up_tokenization_spaces(&text)
        } else {
            text
        })
    }

    pub fn vocab_size(&self) -> usize {
        self.inner.get_vocab_size(true)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn error(&self, message: String) -> ModelError {
        ModelError::Tokenizer {
            path: self.path.clone(),
            message,
        }
    }
}

/// The end-of-sequence token of a `tokenizer.json`: the first of `<|endoftext|>` (GPT-2), `</s>` (T5, Llama 1–2),
/// `<|end_of_text|>` (Llama 3) and `<eos>` (Gemma) that it has.
pub fn end_of_text_id(tokenizer_json: &Path) -> Result<i64, ModelError> {
    const CANDIDATES: [&str; 4] = ["<|endoftext|>", "</s>", "<|end_of_text|>", "<eos>"];
    let tokenizer = Tokenizer::from_file(tokenizer_json).map_err(|e| ModelError::Tokenizer {
        path: tokenizer_json.to_path_buf(),
        message: e.to_string(),
    })?;
    CANDIDATES
        .iter()
        .find_map(|token| tokenizer.token_to_id(token))
        .map(i64::from)
        .ok_or_else(|| ModelError::Tokenizer {
            path: tokenizer_json.to_path_buf(),
            message: format!(
                "no end-of-sequence token (looked for {}); a decoder-only model needs one",
                CANDIDATES.join(", ")
            ),
        })
}

/// transformers' `clean_up_tokenization` (4.26.1, `tokenization_utils_base.py`), which `decode` and `batch_decode`
/// apply by default there: spaces before `.`, `?`, `!`, `,` and English contractions are removed, in this order.
/// T5 answers are stored with punctuation padded by spaces (`pad_punctuation`), so this changes them: `don ' t`
/// becomes `don't`, `U . S .` becomes `U. S.`, and the SQuAD normalisation then scores different tokens.
pub fn clean_up_tokenization_spaces(text: &str) -> String {
    const REPLACEMENTS: [(&str, &str); 10] = [
        (" .", "."),
        (" ?", "?"),
        (" !", "!"),
        (" ,", ","),
        (" ' ", "'"),
        (" n't", "n't"),
        (" 'm", "'m"),
        (" 's", "'s"),
        (" 've", "'ve"),
        (" 're", "'re"),
    ];
    REPLACEMENTS
        .iter()
        .fold(text.to_string(), |text, (from, to)| text.replace(from, to))
}
