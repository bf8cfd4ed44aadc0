//! Split statistics for `dept data stats`: sizes, label balance and input lengths, so a user can check data before
//! spending GPU hours.

use std::collections::BTreeMap;
use std::path::Path;

use tokenizers::Tokenizer;

use crate::error::{DataError, Result};
use crate::example::TextExample;

/// How inputs are measured.
pub enum Lengths {
    /// Whitespace-separated words (no tokenizer given).
    Words,
    /// Tokens of a Hugging Face `tokenizer.json`, special tokens included (what the model sees).
    Tokens(Box<Tokenizer>),
}

impl Lengths {
    /// Tokens of the `tokenizer.json` at `path` if one is given, else words.
    pub fn new(tokenizer: Option<&Path>) -> Result<Self> {
        tokenizer.map_or(Ok(Lengths::Words), Lengths::tokenizer)
    }

    /// Loads a `tokenizer.json`.
    pub fn tokenizer(path: &Path) -> Result<Self> {
        Tokenizer::from_file(path)
            .map(|t| Lengths::Tokens(Box::new(t)))
            .map_err(|e| DataError::Tokenizer {
                path: path.to_path_buf(),
                message: e.to_string(),
            })
    }

    /// The unit name for display.
    pub fn unit(&self) -> &'static str {
        match self {
            Lengths::Words => "words",
            Lengths::Tokens(_) => "tokens",
        }
    }

    fn measure(&self, texts: &[&str]) -> Result<Vec<usize>> {
        match self {
            Lengths::Words => Ok(texts.iter().map(|t| t.split_whitespace().count()).collect()),
            Lengths::Tokens(tokenizer) => texts
                .chunks(512)
                .map(|chunk| {
                    tokenizer
                        .encode_batch(chunk.to_vec(), true)
                        .map(|encs| encs.iter().map(|e| e.len()).collect::<Vec<_>>())
                        .map_err(|e| {
                            DataError::Invalid(format!("tokenizer could not encode inputs: {e}"))
                        })
                })
                .collect::<Result<Vec<_>>>()
                .map(|v| v.concat()),
        }
    }
}

/// Statistics of one split.
#[derive(Debug, Clone, PartialEq)]
pub struct SplitStats {
    pub examples: usize,
    /// Target → count, for tasks with label words (empty for free-text answers).
    pub labels: BTreeMap<String, usize>,
    /// Input length at the 0th, 50th, 90th, 95th, 99th and 100th percentile (nearest rank).
    pub input_percentiles: Vec<(u8, usize)>,
    /// How many inputs are longer than `max_len`.
    pub over_max_len: usize,
}

/// The percentiles reported.
pub const PERCENTILES: [u8; 6] = [0, 50, 90, 95, 99, 100];

/// Computes the statistics of one split.
pub fn split_stats(
    examples: &[TextExample],
    with_labels: bool,
    lengths: &Lengths,
    max_len: usize,
) -> Result<SplitStats> {
    let mut labels = BTreeMap::new();
    if with_labels {
        for e in examples {
            *labels.entry(e.target.clone()).or_insert(0) += 1;
        }
    }
    let texts: Vec<&str> = examples.iter().map(|e| e.input.as_str()).collect();
    let mut lens = lengths.measure(&texts)?;
    lens.sort_unstable();
    let input_percentiles = if lens.is_empty() {
        Vec::new()
    } else {
        PERCENTILES
            .iter()
            .map(|&p| {
                let rank = ((f64::from(p) / 100.0) * lens.len() as f64).ceil() as usize;
                (p, lens[rank.clamp(1, lens.len()) - 1])
            })
            .collect()
    };
    Ok(SplitStats {
        examples: examples.len(),
        labels,
        over_max_len: lens.iter().filter(|&&l| l > max_len).count(),
        input_percentiles,
    })
}
