//! Decoding settings ([`GenerationConfig`]) and the decodings beyond plain greedy: beam search, and greedy with
//! no repeated n-grams, both as transformers 4.57.1's `generate` defines them (`generation/utils.py`,
//! `_beam_search` and its helpers; `NoRepeatNGramLogitsProcessor` in `logits_process.py`), over any backbone's
//! row-by-row decoding ([`Backbone::start_rows`], [`Backbone::step_rows`], [`DecodingRows::retain`] to follow each
//! beam's parent).
//!
//! What transformers does, and so what this does (`K` beams, `V` the vocabulary, per batch row):
//!
//! - each step, the log-softmax of every beam's next-token logits (n-grams banned with `-inf`) plus the beam's
//!   score; the best `2K` of the `K·V` continuations (the first step all from beam 0: the other beams start at
//!   `-1e9`);
//! - a continuation ending in end-of-sequence, or reaching `max_new_tokens`, "hits a stopping criterion": it goes
//!   no further (its score gets `-1e9` there), and the best `K` of the others are the next beams;
//! - a stopping continuation among the first `K` of the `2K` is offered to the row's `K` finished hypotheses with
//!   the score `sum of log-probs / length^length_penalty` (`length` = its new tokens, end-of-sequence included);
//!   the best `K` of old and new stay. Nothing more is offered once the row is done (below);
//! - a row is done when no running beam can beat the worst finished one by the `early_stopping` heuristic
//!   ([`EarlyStopping`]), or, with `early_stopping: true`, as soon as it has `K` finished hypotheses; decoding
//!   ends when every row is done or `max_new_tokens` are reached;
//! - the answer is each row's best finished hypothesis (`num_return_sequences` = 1).
//!
//! A row that is done leaves the running batch here (transformers runs it on, but can no longer change its
//! answer), so its cost stops. The scores are kept and compared in fp32 with transformers' own arithmetic, and
//! the `-1e9` offsets added as it adds them, so that even near ties go the same way.
//!
//! Output is padded with the pad id after a row's end of sequence, as greedy output is (transformers' beam search
//! pads T5 with its end-of-sequence id, because `pad_token_id or eos_token_id` treats the pad id 0 as missing;
//! the tokens up to end of sequence are the same).
//!
//! The n-gram history of a hypothesis is the decoder's start token (encoder-decoder models) and the generated
//! tokens: what transformers sees when the input is given as `inputs_embeds`, as DePT's soft prompt requires.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use tch::{Kind, Tensor};

use crate::{Backbone, ModelError};

/// transformers' `early_stopping`: when a row of beam search stops looking for better finished hypotheses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum EarlyStopping {
    /// `false` (transformers' default): stop when the best running beam, scored at its present length, cannot
    /// beat the worst of the `K` finished hypotheses.
    #[default]
    Heuristic,
    /// `true`: stop as soon as `K` hypotheses have finished.
    WhenFull,
    /// `"never"`: as `false`, but with `length_penalty > 0` the running beam is scored as if it reached
    /// `max_new_tokens` (the canonical beam search with `length_penalty` 0).
    Never,
}

impl EarlyStopping {
    /// The value as a config file and transformers write it.
    pub fn as_str(self) -> &'static str {
        match self {
            EarlyStopping::Heuristic => "false",
            EarlyStopping::WhenFull => "true",
            EarlyStopping::Never => "never",
        }
    }
}

impl fmt::Display for EarlyStopping {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for EarlyStopping {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "false" => Ok(EarlyStopping::Heuristic),
            "true" => Ok(EarlyStopping::WhenFull),
            "never" => Ok(EarlyStopping::Never),
            other => Err(format!(
                "early stopping is true, false or never (as transformers' `early_stopping`), got `{other}`"
            )),
        }
    }
}

/// `true` and `false` as YAML booleans, `never` as a string: the values transformers' `early_stopping` takes.
impl Serialize for EarlyStopping {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            EarlyStopping::Heuristic => serializer.serialize_bool(false),
            EarlyStopping::WhenFull => serializer.serialize_bool(true),
            EarlyStopping::Never => serializer.serialize_str("never"),
        }
    }
}

impl<'de> Deserialize<'de> for EarlyStopping {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Bool(bool),
            Text(String),
        }
        match Raw::deserialize(deserializer)? {
            Raw::Bool(true) => Ok(EarlyStopping::WhenFull),
            Raw::Bool(false) => Ok(EarlyStopping::Heuristic),
            Raw::Text(text) => text.parse().map_err(serde::de::Error::custom),
        }
    }
}

/// How to decode: transformers' `GenerationConfig` fields of the same names (`do_sample=False`). One beam and no
/// n-gram rule is plain greedy decoding.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GenerationConfig {
    pub max_new_tokens: i64,
    pub num_beams: i64,
    /// Finished hypotheses are scored `sum of log-probs / length^length_penalty`: above 0 favours longer ones.
    pub length_penalty: f64,
    pub early_stopping: EarlyStopping,
    /// No n-gram of this many tokens occurs twice in a hypothesis (0: no rule).
    pub no_repeat_ngram_size: i64,
}

impl GenerationConfig {
    /// Greedy decoding of at most `max_new_tokens` (transformers' defaults for the rest).
    pub fn greedy(max_new_tokens: i64) -> Self {
        GenerationConfig {
            max_new_tokens,
            num_beams: 1,
            length_penalty: 1.0,
            early_stopping: EarlyStopping::Heuristic,
            no_repeat_ngram_size: 0,
        }
    }

    /// Beam search with `num_beams` beams and transformers' defaults for the rest.
    pub fn beams(max_new_tokens: i64, num_beams: i64) -> Self {
        GenerationConfig {
            num_beams,
            ..Self::greedy(max_new_tokens)
        }
    }

    /// True where the backbone's own greedy decoding gives the answer.
    pub fn is_plain_greedy(&self) -> bool {
        self.num_beams == 1 && self.no_repeat_ngram_size == 0
    }

    /// Refuses settings transformers refuses (or that mean nothing), naming the field and value.
    pub fn validate(&self) -> Result<(), ModelError> {
        if self.num_beams < 1 {
            return Err(ModelError::Input(format!(
                "num_beams must be at least 1, got {}",
                self.num_beams
            )));
        }
        if self.no_repeat_ngram_size < 0 {
            return Err(ModelError::Input(format!(
                "no_repeat_ngram_size must be 0 (off) or more, got {}",
                self.no_repeat_ngram_size
            )));
        }
        if !self.length_penalty.is_finite() {
            return Err(ModelError::Input(format!(
                "length_penalty must be a finite number, got {}",
                self.length_penalty
            )));
        }
        Ok(())
    }
}

/// Decodes `embeds` `[batch, len, d]` (laid out as for [`Backbone::generate_greedy`]) as `config` says:
/// `[batch, ≤ max_new_tokens]` new ids, padded with the pad id after end of sequence. No gradients, no dropout.
pub fn generate(
    backbone: &dyn Backbone,
    embeds: &Tensor,
    attention_mask: &Tensor,
    config: &GenerationConfig,
) -> Result<Tensor, ModelError> {
    config.validate()?;
    let batch = embeds.size().first().copied().unwrap_or(0);
    if config.max_new_tokens <= 0 {
        return Ok(Tensor::zeros([batch, 0], (Kind::Int64, embeds.device())));
    }
    if config.is_plain_greedy() {
        return backbone.generate_greedy(embeds, attention_mask, config.max_new_tokens);
    }
    tch::no_grad(|| {
        let answers = if config.num_beams == 1 {
            greedy_without_repeats(backbone, embeds, attention_mask, config)?
        } else {
            beam_search(backbone, embeds, attention_mask, config)?
        };
        Ok(padded(&answers, backbone.pad_token_id(), embeds.device()))
    })
}

/// The rows' tokens as one `[rows, longest]` tensor, `pad` after each row's end.
fn padded(rows: &[Vec<i64>], pad: i64, device: tch::Device) -> Tensor {
    let width = rows.iter().map(Vec::len).max().unwrap_or(0);
    let flat: Vec<i64> = rows
        .iter()
        .flat_map(|r| r.iter().copied().chain(std::iter::repeat(pad)).take(width))
        .collect();
    Tensor::from_slice(&flat)
        .view([rows.len() as i64, width as i64])
        .to_device(device)
}

/// The tokens that would repeat an n-gram of `size` tokens of `history` if they came next: those that followed
/// an earlier occurrence of its last `size − 1` tokens (transformers' `_calc_banned_ngram_tokens`).
fn banned_tokens(history: &[i64], size: usize) -> Vec<i64> {
    if size == 0 || history.len() + 1 < size {
        return Vec::new();
    }
    let tail = &history[history.len() + 1 - size..];
    history
        .windows(size)
        .filter(|ngram| &ngram[..size - 1] == tail)
        .map(|ngram| ngram[size - 1])
        .collect()
}

/// Sets `-inf` in `scores` `[rows, V]` at every token that would repeat an n-gram of the row's history.
fn ban_repeats(scores: &Tensor, histories: &[Vec<i64>], size: i64) {
    if size <= 0 {
        return;
    }
    let (mut rows, mut tokens) = (Vec::new(), Vec::new());
    for (row, history) in histories.iter().enumerate() {
        for token in banned_tokens(history, size as usize) {
            rows.push(row as i64);
            tokens.push(token);
        }
    }
    if rows.is_empty() {
        return;
    }
    let device = scores.device();
    let index = [
        Some(Tensor::from_slice(&rows).to_device(device)),
        Some(Tensor::from_slice(&tokens).to_device(device)),
    ];
    let mut scores = scores.shallow_clone();
    let _ = scores.index_put_(
        &index,
        &Tensor::from(f32::NEG_INFINITY)
            .to_kind(scores.kind())
            .to_device(device),
        false,
    );
}

/// The n-gram history every hypothesis starts with: the decoder's start token for an encoder-decoder model.
fn history_start(backbone: &dyn Backbone) -> Vec<i64> {
    backbone.decoder_start_token_id().into_iter().collect()
}

/// Greedy decoding with the n-gram rule (transformers' `_sample` with `do_sample=False`): the arg max of the
/// logits with banned tokens at `-inf`; a row stops at end of sequence.
fn greedy_without_repeats(
    backbone: &dyn Backbone,
    embeds: &Tensor,
    attention_mask: &Tensor,
    config: &GenerationConfig,
) -> Result<Vec<Vec<i64>>, ModelError> {
    let eos = backbone.eos_token_id();
    let batch = embeds.size()[0] as usize;
    let start = history_start(backbone);
    let mut answers: Vec<Vec<i64>> = vec![Vec::new(); batch];
    let (mut rows, mut logits) = backbone.start_rows(embeds, attention_mask)?;
    // Batch rows still decoding, in the order of the state's rows.
    let mut running: Vec<usize> = (0..batch).collect();
    for step in 0..config.max_new_tokens {
        crate::cancel::poll()?;
        let histories: Vec<Vec<i64>> = running
            .iter()
            .map(|&b| [start.as_slice(), answers[b].as_slice()].concat())
            .collect();
        ban_repeats(&logits, &histories, config.no_repeat_ngram_size);
        let tokens = Vec::<i64>::try_from(&logits.argmax(-1, false).to_device(tch::Device::Cpu))?;
        let mut keep = Vec::with_capacity(running.len());
        let mut next = Vec::with_capacity(running.len());
        for (i, (&b, &token)) in running.iter().zip(&tokens).enumerate() {
            answers[b].push(token);
            if token != eos {
                keep.push(i as i64);
                next.push(token);
            }
        }
        if keep.is_empty() || step + 1 == config.max_new_tokens {
            break;
        }
        running = keep.iter().map(|&i| running[i as usize]).collect();
        rows.retain(&keep);
        let next = Tensor::from_slice(&next).to_device(backbone.device());
        logits = backbone.step_rows(&mut rows, &next)?;
    }
    Ok(answers)
}

/// What transformers adds to a score to rule it out (`-1.0e9`, exact in fp32).
const RULED_OUT: f32 = -1.0e9;

/// One hypothesis: its new tokens and its score (the sum of log-probs while running, divided by the length
/// penalty once finished).
#[derive(Debug, Clone)]
struct Hypothesis {
    tokens: Vec<i64>,
    score: f32,
    finished: bool,
}

/// A batch row's beam search: its `K` running beams (best first) and its `K` best finished hypotheses.
struct RowSearch {
    running: Vec<Hypothesis>,
    finished: Vec<Hypothesis>,
    /// transformers' `is_early_stop_heuristic_unsatisfied`: a better finished hypothesis may still come.
    improvable: bool,
}

/// A continuation of one step: which running beam it extends, the token, its summed log-prob.
struct Candidate {
    parent: usize,
    token: i64,
    log_prob: f32,
    stops: bool,
}

/// The first `k` indices of `scores` by descending score, earlier ones first among equals (as `torch.topk`).
fn top_k(scores: &[f32], k: usize) -> Vec<usize> {
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]));
    order.truncate(k);
    order
}

impl RowSearch {
    fn new(beams: usize) -> Self {
        let empty = |score| Hypothesis {
            tokens: Vec::new(),
            score,
            finished: false,
        };
        RowSearch {
            // Only beam 0 is continued at the first step: the others are copies of it.
            running: (0..beams)
                .map(|i| empty(if i == 0 { 0.0 } else { RULED_OUT }))
                .collect(),
            finished: (0..beams).map(|_| empty(RULED_OUT)).collect(),
            improvable: true,
        }
    }

    fn is_done(&self, early_stopping: EarlyStopping) -> bool {
        !self.improvable
            || (early_stopping == EarlyStopping::WhenFull
                && self.finished.iter().all(|h| h.finished))
    }

    /// One step from the row's `2K` best continuations (best first): transformers'
    /// `_get_running_beams_for_next_iteration`, `_update_finished_beams` and `_check_early_stop_heuristic`.
    /// `length` is the number of new tokens the continuations have. Returns each new running beam's parent.
    fn advance(
        &mut self,
        candidates: &[Candidate],
        length: i64,
        config: &GenerationConfig,
    ) -> Vec<usize> {
        let beams = self.running.len();
        let extended = |c: &Candidate| {
            let mut tokens = self.running[c.parent].tokens.clone();
            tokens.push(c.token);
            tokens
        };
        // The next running beams: the best continuations that do not stop.
        let running_scores: Vec<f32> = candidates
            .iter()
            .map(|c| c.log_prob + if c.stops { RULED_OUT } else { 0.0 })
            .collect();
        let chosen = top_k(&running_scores, beams);
        let running: Vec<Hypothesis> = chosen
            .iter()
            .map(|&i| Hypothesis {
                tokens: extended(&candidates[i]),
                score: running_scores[i],
                finished: false,
            })
            .collect();
        let parents = chosen.iter().map(|&i| candidates[i].parent).collect();

        // Finished hypotheses: stopping continuations among the first K, scored with the length penalty.
        let penalty = (length as f64).powf(config.length_penalty) as f32;
        let full = config.early_stopping == EarlyStopping::WhenFull
            && self.finished.iter().all(|h| h.finished);
        let mut merged = std::mem::take(&mut self.finished);
        for (i, c) in candidates.iter().enumerate() {
            let just_finished = c.stops && i < beams;
            let mut score = c.log_prob / penalty;
            if full {
                score += RULED_OUT;
            }
            if !self.improvable {
                score += RULED_OUT;
            }
            if !just_finished {
                score += RULED_OUT;
            }
            merged.push(Hypothesis {
                tokens: if just_finished {
                    extended(c)
                } else {
                    Vec::new()
                },
                score,
                finished: just_finished,
            });
        }
        let scores: Vec<f32> = merged.iter().map(|h| h.score).collect();
        self.finished = top_k(&scores, beams)
            .into_iter()
            .map(|i| merged[i].clone())
            .collect();
        self.running = running;

        // Can a running beam still beat the worst finished hypothesis?
        let hypothetical =
            if config.early_stopping == EarlyStopping::Never && config.length_penalty > 0.0 {
                config.max_new_tokens
            } else {
                length
            };
        let best_running =
            self.running[0].score / (hypothetical as f64).powf(config.length_penalty) as f32;
        let worst_finished = self
            .finished
            .iter()
            .map(|h| h.score)
            .fold(f32::INFINITY, f32::min);
        let beatable = self.finished.iter().any(|h| {
            let worst = if h.finished {
                worst_finished
            } else {
                RULED_OUT
            };
            best_running > worst
        });
        self.improvable = self.improvable && beatable;
        parents
    }

    /// The best finished hypothesis's tokens.
    fn answer(&self) -> Vec<i64> {
        self.finished
            .first()
            .map(|h| h.tokens.clone())
            .unwrap_or_default()
    }
}

fn beam_search(
    backbone: &dyn Backbone,
    embeds: &Tensor,
    attention_mask: &Tensor,
    config: &GenerationConfig,
) -> Result<Vec<Vec<i64>>, ModelError> {
    let beams = config.num_beams as usize;
    let keep = 2 * beams; // transformers' `beams_to_keep` with one end-of-sequence id
    let eos = backbone.eos_token_id();
    let device = backbone.device();
    let batch = embeds.size()[0] as usize;
    let start = history_start(backbone);
    let mut searches: Vec<RowSearch> = (0..batch).map(|_| RowSearch::new(beams)).collect();
    let mut answers: Vec<Vec<i64>> = vec![Vec::new(); batch];

    // Every beam of a row starts as a copy of the row's state.
    let (mut rows, first) = backbone.start_rows(embeds, attention_mask)?;
    let copies: Vec<i64> = (0..batch as i64)
        .flat_map(|b| std::iter::repeat_n(b, beams))
        .collect();
    rows.retain(&copies);
    let mut logits = first.index_select(0, &Tensor::from_slice(&copies).to_device(first.device()));
    // Batch rows still searching, in the order of the state's rows (K state rows each).
    let mut running: Vec<usize> = (0..batch).collect();

    for step in 0..config.max_new_tokens {
        crate::cancel::poll()?;
        let length = step + 1;
        let log_probs = logits.log_softmax(-1, Kind::Float);
        let vocab = log_probs.size()[1];
        if config.no_repeat_ngram_size > 0 {
            let histories: Vec<Vec<i64>> = running
                .iter()
                .flat_map(|&b| searches[b].running.iter())
                .map(|h| [start.as_slice(), h.tokens.as_slice()].concat())
                .collect();
            ban_repeats(&log_probs, &histories, config.no_repeat_ngram_size);
        }
        let scores: Vec<f32> = running
            .iter()
            .flat_map(|&b| searches[b].running.iter().map(|h| h.score))
            .collect();
        let n = running.len() as i64;
        let scores = Tensor::from_slice(&scores)
            .to_device(log_probs.device())
            .view([n, beams as i64, 1]);
        let totals = (log_probs.view([n, beams as i64, vocab]) + scores).view([n, -1]);
        let (values, indices) = totals.topk(keep as i64, -1, true, true);
        let values = Vec::<f32>::try_from(&values.to_device(tch::Device::Cpu).reshape([-1]))?;
        let indices = Vec::<i64>::try_from(&indices.to_device(tch::Device::Cpu).reshape([-1]))?;

        let last_step = length >= config.max_new_tokens;
        let mut state_rows = Vec::new();
        let mut next_tokens = Vec::new();
        let mut still = Vec::new();
        for (i, &b) in running.iter().enumerate() {
            let candidates: Vec<Candidate> = (0..keep)
                .map(|j| {
                    let index = indices[i * keep + j];
                    let token = index % vocab;
                    Candidate {
                        parent: (index / vocab) as usize,
                        token,
                        log_prob: values[i * keep + j],
                        stops: token == eos || last_step,
                    }
                })
                .collect();
            let search = &mut searches[b];
            let parents = search.advance(&candidates, length, config);
            if last_step || search.is_done(config.early_stopping) {
                answers[b] = search.answer();
                continue;
            }
            still.push(b);
            state_rows.extend(parents.iter().map(|&p| (i * beams + p) as i64));
            next_tokens.extend(search.running.iter().map(|h| h.tokens[h.tokens.len() - 1]));
        }
        if still.is_empty() {
            break;
        }
        running = still;
        rows.retain(&state_rows);
        logits = backbone.step_rows(
            &mut rows,
            &Tensor::from_slice(&next_tokens).to_device(device),
        )?;
    }
    Ok(answers)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rows::{DecodingRows, Slot};
    use crate::{Architecture, BackboneOutput};
    use tch::Device;

    /// A model whose next-token logits are always `LOGITS` (token 0 first, then 3, 2, ...), end of sequence 4, as
    /// an encoder-decoder (decoder start token 0) or a decoder-only model.
    struct Scripted {
        start: Option<i64>,
    }

    const LOGITS: [f32; 5] = [5.0, 0.5, 1.0, 2.0, -3.0];

    impl Scripted {
        fn logits(rows: i64) -> Tensor {
            Tensor::from_slice(&LOGITS).view([1, 5]).repeat([rows, 1])
        }
    }

    impl Backbone for Scripted {
        fn hidden_size(&self) -> i64 {
            2
        }
        fn vocab_size(&self) -> i64 {
            5
        }
        fn device(&self) -> Device {
            Device::Cpu
        }
        fn architecture(&self) -> Architecture {
            match self.start {
                Some(_) => Architecture::EncoderDecoder,
                None => Architecture::DecoderOnly,
            }
        }
        fn embed(&self, input_ids: &Tensor) -> Tensor {
            input_ids
                .to_kind(Kind::Float)
                .unsqueeze(-1)
                .repeat([1, 1, 2])
        }
        fn forward(
            &self,
            _: &Tensor,
            _: &Tensor,
            _: &Tensor,
            _: bool,
        ) -> Result<BackboneOutput, ModelError> {
            Err(ModelError::Input("scripted".into()))
        }
        fn generate_greedy(&self, _: &Tensor, _: &Tensor, _: i64) -> Result<Tensor, ModelError> {
            Err(ModelError::Input("scripted".into()))
        }
        fn start_rows(
            &self,
            embeds: &Tensor,
            _: &Tensor,
        ) -> Result<(DecodingRows, Tensor), ModelError> {
            let rows = embeds.size()[0];
            let state = DecodingRows::new(
                "scripted",
                vec![Slot::per_row(Tensor::zeros(
                    [rows],
                    (Kind::Int64, Device::Cpu),
                ))],
                None,
                None,
            );
            Ok((state, Self::logits(rows)))
        }
        fn step_rows(&self, rows: &mut DecodingRows, _: &Tensor) -> Result<Tensor, ModelError> {
            Ok(Self::logits(rows.len()))
        }
        fn set_float_kind(&mut self, _: Kind) -> Result<(), ModelError> {
            Ok(())
        }
        fn pad_token_id(&self) -> i64 {
            0
        }
        fn eos_token_id(&self) -> i64 {
            4
        }
        fn decoder_start_token_id(&self) -> Option<i64> {
            self.start
        }
    }

    /// With no token twice, an encoder-decoder model may not generate its decoder start token (transformers counts
    /// it in the history); a decoder-only model given embeddings has no history before its first token.
    #[test]
    fn the_decoder_start_token_counts_for_the_n_gram_rule() {
        let decode = |start, num_beams| {
            let model = Scripted { start };
            let config = GenerationConfig {
                no_repeat_ngram_size: 1,
                ..GenerationConfig::beams(3, num_beams)
            };
            let embeds = Tensor::zeros([1, 2, 2], (Kind::Float, Device::Cpu));
            let out = generate(&model, &embeds, &embeds.select(2, 0).ones_like(), &config).unwrap();
            Vec::<Vec<i64>>::try_from(&out).unwrap()
        };
        assert_eq!(decode(Some(0), 1), [[3, 2, 1]]);
        assert_eq!(decode(None, 1), [[0, 3, 2]]);
        // With beams, orders of the same tokens tie (the logits never change): only which tokens is checked.
        assert!(!decode(Some(0), 2)[0].contains(&0));
        assert!(decode(None, 2)[0].contains(&0));
    }

    #[test]
    fn banned_tokens_follow_earlier_occurrences_of_the_last_tokens() {
        // Bigrams: the last token 7 came before 3 and before 9.
        assert_eq!(banned_tokens(&[7, 3, 5, 7, 9, 7], 2), [3, 9]);
        // Trigrams: (5, 7) came before 9 once.
        assert_eq!(banned_tokens(&[5, 7, 9, 5, 7], 3), [9]);
        // Too short a history bans nothing; size 1 bans every token seen.
        assert!(banned_tokens(&[4], 3).is_empty());
        assert_eq!(banned_tokens(&[4, 6], 1), [4, 6]);
        assert!(banned_tokens(&[4, 6], 0).is_empty());
    }

    #[test]
    fn early_stopping_reads_and_writes_as_transformers_spells_it() {
        for (text, value) in [
            ("true", EarlyStopping::WhenFull),
            ("false", EarlyStopping::Heuristic),
            ("never", EarlyStopping::Never),
        ] {
            let parsed: EarlyStopping = serde_json::from_str(
                &(if text == "never" {
                    "\"never\"".into()
                } else {
                    text.to_string()
                }),
            )
            .unwrap();
            assert_eq!(parsed, value);
            assert_eq!(text.parse::<EarlyStopping>().unwrap(), value);
            assert_eq!(value.to_string(), text);
        }
        assert_eq!(
            serde_json::to_string(&EarlyStopping::WhenFull).unwrap(),
            "true"
        );
        let wrong = serde_json::from_str::<EarlyStopping>("\"sometimes\"").unwrap_err();
        assert!(wrong.to_string().contains("`sometimes`"), "{wrong}");
    }

    #[test]
    fn settings_transformers_refuses_are_refused() {
        assert!(GenerationConfig::beams(5, 0).validate().is_err());
        let ngram = GenerationConfig {
            no_repeat_ngram_size: -1,
            ..GenerationConfig::greedy(5)
        };
        assert!(ngram.validate().unwrap_err().to_string().contains("-1"));
        let penalty = GenerationConfig {
            length_penalty: f64::NAN,
            ..GenerationConfig::greedy(5)
        };
        assert!(penalty.validate().is_err());
        assert!(GenerationConfig::greedy(5).is_plain_greedy());
        assert!(!GenerationConfig::beams(5, 2).is_plain_greedy());
    }

    /// A hand-made step: two beams, one end-of-sequence continuation among the first two finishes and is scored
    /// with the length penalty; the running beams are the best that do not stop.
    #[test]
    fn a_stopping_continuation_finishes_and_the_others_run_on() {
        let config = GenerationConfig {
            length_penalty: 2.0,
            ..GenerationConfig::beams(10, 2)
        };
        let mut search = RowSearch::new(2);
        let c = |parent, token, log_prob: f32, stops| Candidate {
            parent,
            token,
            log_prob,
            stops,
        };
        let parents = search.advance(
            &[
                c(0, 1, -0.5, true),
                c(0, 4, -0.7, false),
                c(0, 6, -0.9, false),
                c(0, 1, -1.0, true),
            ],
            1,
            &config,
        );
        assert_eq!(parents, [0, 0]);
        let running: Vec<&[i64]> = search.running.iter().map(|h| h.tokens.as_slice()).collect();
        assert_eq!(running, [&[4][..], &[6][..]]);
        assert!(search.finished[0].finished && search.finished[0].tokens == [1]);
        assert_eq!(search.finished[0].score, -0.5);
        // The fourth continuation stops too but is not among the first two: it is not kept.
        assert!(!search.finished[1].finished);
        assert!(search.improvable && !search.is_done(EarlyStopping::Heuristic));
        // At length 2 another end of sequence, among the first two, takes the second finished slot.
        search.advance(
            &[
                c(0, 1, -3.7, true),
                c(1, 5, -3.8, false),
                c(0, 8, -3.9, false),
                c(1, 9, -4.0, false),
            ],
            2,
            &config,
        );
        assert_eq!(search.finished[1].tokens, [4, 1]);
        assert!((search.finished[1].score - (-3.7 / 4.0)).abs() < 1e-6);
        // Now both slots hold finished ones and the best running beam (-3.8 / 4) cannot beat -0.925: done.
        assert!(search.is_done(EarlyStopping::Heuristic));
        assert_eq!(search.answer(), [1]);
    }
}
