//! Random inputs and model shapes for random-weight benchmarks (timings do not depend on the weights).

use crate::error::{ensure, Result};
use dept_models::t5::T5Config;
use dept_train::batch::Encoded;
use tch::{Device, Kind, Tensor};

/// Random examples for random-weight benchmarks: `n` inputs whose lengths are drawn uniformly from `span` (in
/// tokens, `</s>` last) and targets of `target_len` tokens (`</s>` last).
pub fn random_examples(
    n: usize,
    span: (usize, usize),
    target_len: usize,
    vocab: i64,
) -> Result<Vec<Encoded>> {
    ensure!(target_len > 0, "need a target of at least one token");
    let lengths = draw_uniform(n, span, target_len)?;
    examples_with_lengths(&lengths, vocab)
}

/// Random token ids for examples of the given (input, target) lengths, `</s>` last in each; ids avoid the special
/// tokens 0–2.
pub fn examples_with_lengths(lengths: &[(usize, usize)], vocab: i64) -> Result<Vec<Encoded>> {
    let ids = |len: usize| -> Result<Vec<i64>> {
        ensure!(len > 0, "an example needs at least one token");
        let body = Tensor::randint_low(3, vocab, [len as i64 - 1], (Kind::Int64, Device::Cpu));
        let mut ids = Vec::<i64>::try_from(&body)?;
        ids.push(1);
        Ok(ids)
    };
    lengths
        .iter()
        .map(|&(input, target)| {
            Ok(Encoded {
                input_ids: ids(input)?,
                target_ids: ids(target)?,
                image: None,
                weight: None,
            })
        })
        .collect()
}

/// The architecture of a released T5 v1 checkpoint (relu, tied embeddings), for random-weight benchmarks
/// ([`T5Config::released`]), or `tiny`: the same layout and vocabulary at d = 32 with two layers, a quick check
/// of a bench itself (its timings mean nothing).
pub fn t5_shape(name: &str) -> Result<T5Config> {
    if name == "tiny" {
        let json = serde_json::json!({
            "vocab_size": 32128, "d_model": 32, "d_kv": 8, "d_ff": 64, "num_layers": 2, "num_heads": 4,
            "feed_forward_proj": "relu", "tie_word_embeddings": true
        });
        return Ok(T5Config::from_json(
            std::path::Path::new("<tiny shape>"),
            json,
        )?);
    }
    Ok(T5Config::released(name)?)
}

/// Uniform lengths in `[min, max]` tokens, targets of `target_len`: `--uniform MIN:MAX`.
pub fn draw_uniform(
    n: usize,
    (min, max): (usize, usize),
    target_len: usize,
) -> Result<Vec<(usize, usize)>> {
    ensure!(
        0 < min && min <= max,
        "--uniform needs 0 < MIN ≤ MAX, got {min}:{max}"
    );
    let lengths = Tensor::randint_low(
        min as i64,
        max as i64 + 1,
        [n as i64],
        (Kind::Int64, Device::Cpu),
    );
    Ok(Vec::<i64>::try_from(&lengths)?
        .into_iter()
        .map(|l| (l as usize, target_len))
        .collect())
}
