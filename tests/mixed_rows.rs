//! Mixed adapters and continuous batching on the model side ([`dept_models::rows`], [`embed_mixed`]): rows of
//! eight adapters with different `m` and `r` (prompt tuning among them) in one batch, joining the running batch at
//! different steps and leaving as they finish, decode token for token what each decodes alone through
//! [`PromptedModel::generate`], for T5, GPT-2 and Llama.

mod common;

use std::path::Path;

use dept_core::{DecomposedPrompt, DeptConfig};
use dept_models::prompted::{start_mixed_rows, MixedRow};
use dept_models::{load_backbone, Backbone, DecodingRows, PromptedModel};
use tch::{Device, Kind, Tensor};

const S: i64 = 24;
const MAX_NEW: i64 = 7;

/// Eight adapters for width `d`: DePT with several (m, r), and prompt tuning (r = 0). `B` is drawn non-zero so that
/// every pair changes the numbers.
fn adapters(d: i64) -> Vec<DecomposedPrompt> {
    [
        (4, 2),
        (1, 6),
        (9, 1),
        (6, 0),
        (2, 3),
        (12, 0),
        (5, 4),
        (3, 8),
    ]
    .iter()
    .map(|&(m, r)| {
        let config = DeptConfig::new(m, r, S, d).unwrap();
        let adapter = DecomposedPrompt::new(config, None, Device::Cpu).unwrap();
        if let Some((_, b)) = adapter.pair() {
            let mut b = b.shallow_clone();
            tch::no_grad(|| b.copy_(&(Tensor::randn_like(&b) * 0.5)));
        }
        adapter
    })
    .collect()
}

/// Twelve sources of different lengths (ids in the vocabulary, EOS-free).
fn sources(vocab: i64) -> Vec<Vec<i64>> {
    (0..12)
        .map(|i| {
            let len = 3 + (i * 5) % 11;
            (0..len)
                .map(|j| 7 + (i * 37 + j * 13) % (vocab - 7))
                .collect()
        })
        .collect()
}

/// What a row decodes alone: the generated ids up to and including end of sequence.
fn alone(backbone: &dyn Backbone, source: &[i64], adapter: &DecomposedPrompt) -> Vec<i64> {
    let ids = Tensor::from_slice(source).view([1, -1]);
    let mask = ids.ones_like();
    let out = PromptedModel::new(backbone, adapter)
        .generate(&ids, &mask, MAX_NEW)
        .unwrap();
    finished(
        Vec::<i64>::try_from(out.view([-1])).unwrap(),
        backbone.eos_token_id(),
    )
}

fn finished(mut tokens: Vec<i64>, eos: i64) -> Vec<i64> {
    if let Some(end) = tokens.iter().position(|&t| t == eos) {
        tokens.truncate(end + 1);
    }
    tokens
}

/// A continuous greedy run: request `i` joins after `arrival[i]` steps of the running batch; a row leaves at end
/// of sequence or after `MAX_NEW` tokens.
fn continuous(
    backbone: &dyn Backbone,
    requests: &[(Vec<i64>, usize)],
    adapters: &[DecomposedPrompt],
    arrival: &[usize],
) -> Vec<Vec<i64>> {
    let eos = backbone.eos_token_id();
    let mut outputs: Vec<Vec<i64>> = vec![Vec::new(); requests.len()];
    let mut running: Option<DecodingRows> = None;
    let mut members: Vec<usize> = Vec::new(); // request index of each running row
    let mut logits: Option<Tensor> = None;
    let mut step = 0;
    while !outputs.iter().all(|o| done(o, eos)) {
        // Newcomers are encoded together (one mixed forward pass), then join the running rows.
        let joining: Vec<usize> = (0..requests.len())
            .filter(|&i| arrival[i] == step && outputs[i].is_empty())
            .collect();
        if !joining.is_empty() {
            let rows: Vec<MixedRow> = joining
                .iter()
                .map(|&i| MixedRow {
                    input_ids: &requests[i].0,
                    adapter: &adapters[requests[i].1],
                })
                .collect();
            let (state, first) = start_mixed_rows(backbone, &rows).unwrap();
            logits = Some(match logits.take() {
                Some(previous) => Tensor::cat(&[previous, first], 0),
                None => first,
            });
            running = Some(match running.take() {
                Some(previous) => previous.join(state).unwrap(),
                None => state,
            });
            members.extend(&joining);
        }
        if let (Some(rows), Some(current)) = (running.as_mut(), logits.take()) {
            let tokens = current.argmax(-1, false);
            let picked = Vec::<i64>::try_from(&tokens).unwrap();
            let mut keep = Vec::new();
            for (row, (&request, &token)) in members.iter().zip(&picked).enumerate() {
                outputs[request].push(token);
                if !done(&outputs[request], eos) {
                    keep.push(row as i64);
                }
            }
            let kept = Tensor::from_slice(&keep);
            members = keep.iter().map(|&r| members[r as usize]).collect();
            rows.retain(&keep);
            if !members.is_empty() {
                let next = tokens.index_select(0, &kept);
                logits = Some(backbone.step_rows(rows, &next).unwrap());
            } else {
                running = None;
            }
        }
        step += 1;
        assert!(step < 100, "the run does not end");
    }
    outputs
}

fn done(tokens: &[i64], eos: i64) -> bool {
    tokens.len() as i64 >= MAX_NEW || tokens.last() == Some(&eos)
}

fn check(model_dir: &Path) {
    let _rng = common::global_rng();
    tch::manual_seed(11);
    let backbone = load_backbone(model_dir, Device::Cpu).unwrap();
    let adapters = adapters(backbone.hidden_size());
    let requests: Vec<(Vec<i64>, usize)> = sources(backbone.vocab_size().min(30_000))
        .into_iter()
        .enumerate()
        .map(|(i, s)| (s, i % adapters.len()))
        .collect();
    let expected: Vec<Vec<i64>> = requests
        .iter()
        .map(|(s, a)| alone(backbone.as_ref(), s, &adapters[*a]))
        .collect();
    // All at once, then in waves that join a running batch (some arriving while others are mid-answer).
    for arrival in [vec![0; 12], vec![0, 0, 1, 1, 1, 3, 3, 4, 6, 6, 6, 9]] {
        let got = continuous(backbone.as_ref(), &requests, &adapters, &arrival);
        for (i, (g, e)) in got.iter().zip(&expected).enumerate() {
            assert_eq!(
                g, e,
                "request {i} (adapter {}) arrival {arrival:?}",
                requests[i].1
            );
        }
    }
    // Not every answer is one token: the comparison covers steps after joins and leaves.
    assert!(
        expected.iter().any(|e| e.len() as i64 == MAX_NEW),
        "{expected:?}"
    );
    let distinct: std::collections::BTreeSet<_> = expected.iter().collect();
    assert!(
        distinct.len() > 3,
        "the adapters should answer differently: {expected:?}"
    );
}

#[test]
fn t5_rows_of_eight_adapters_decode_what_each_decodes_alone() {
    let dir = tempfile::tempdir().unwrap();
    let words: Vec<String> = (0..300).map(|i| format!("w{i}")).collect();
    let words: Vec<&str> = words.iter().map(String::as_str).collect();
    dept_models::tiny::write_tiny_t5(dir.path(), &words, 32, "gated-gelu", 5).unwrap();
    check(dir.path());
}

#[test]
fn gpt2_rows_of_eight_adapters_decode_what_each_decodes_alone() {
    let Some(shared) = common::shared_dir() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let tokenizer = shared.join("tokenizers/gpt2/tokenizer.json");
    dept_models::tiny::write_tiny_gpt2(dir.path(), &tokenizer, 32, 5).unwrap();
    check(dir.path());
}

#[test]
fn llama_rows_of_eight_adapters_decode_what_each_decodes_alone() {
    let Some(shared) = common::shared_dir() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let tokenizer = shared.join("tokenizers/gpt2/tokenizer.json");
    dept_models::tiny::write_tiny_llama(dir.path(), &tokenizer, 32, 5).unwrap();
    check(dir.path());
}

#[test]
fn rows_of_another_backbone_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let words = ["a", "b", "c"];
    dept_models::tiny::write_tiny_t5(dir.path(), &words, 16, "relu", 1).unwrap();
    let t5 = load_backbone(dir.path(), Device::Cpu).unwrap();
    let embeds = Tensor::zeros([1, 3, 16], (Kind::Float, Device::Cpu));
    let mask = Tensor::ones([1, 3], (Kind::Int64, Device::Cpu));
    let (mut rows, logits) = t5.start_rows(&embeds, &mask).unwrap();
    assert_eq!(logits.size(), [1, t5.vocab_size()]);
    let wrong = t5
        .step_rows(&mut rows, &Tensor::from_slice(&[1i64, 2]))
        .unwrap_err();
    assert!(wrong.to_string().contains("one token per row"), "{wrong}");
}
