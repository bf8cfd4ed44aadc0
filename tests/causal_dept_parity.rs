//! DePT on decoder-only backbones (GPT-2, Llama) against the PyTorch reference written by
//! tests/reference/causal_dept_reference.py: the official training forward (source then target, padded to exactly
//! s, `scale·(A·B)` added row by row, the prompt in front, transformers' shifted loss) gives the loss, the logits at
//! real positions and the gradients of P, A, B; batches padded only to their longest row must give the same
//! numbers. Greedy decoding of a left-padded batch (A's row by each token's own position, the prompt in front,
//! position ids from the mask, new tokens embedded plainly) must give the reference's tokens, in a batch and row by
//! row.
//!
//! The batches are built by `Batch::for_training` / `Batch::for_generation` from the golden ids, so the tests also
//! check that they are the official layout.

mod common;

use std::path::PathBuf;

use common::*;
use dept_core::DecomposedPrompt;
use dept_models::{load_backbone, Architecture, Backbone, PromptedModel};
use dept_train::batch::{Batch, Encoded};
use dept_train::config::Padding;
use tch::{Device, Tensor};

/// Relative (max-norm) tolerance for fp32 loss, logits and gradients.
const TOLERANCE: f64 = 1e-5;

struct Case {
    name: &'static str,
    dir: PathBuf,
    golden: serde_json::Value,
    backbone: Box<dyn Backbone>,
}

fn case(name: &'static str) -> Case {
    tch::set_num_threads(1);
    let dir = reference_dir().join("causal_dept").join(name);
    let golden = read_json(&dir.join("golden.json"));
    let backbone = load_backbone(&reference_dir().join(name).join("model"), Device::Cpu)
        .unwrap_or_else(|e| panic!("load the tiny {name}: {e}"));
    assert_eq!(backbone.architecture(), Architecture::DecoderOnly);
    assert_eq!(
        backbone.pad_token_id(),
        golden["pad_token_id"].as_i64().unwrap(),
        "{name} pad id"
    );
    assert_eq!(
        backbone.eos_token_id(),
        golden["eos_token_id"].as_i64().unwrap(),
        "{name} eos id"
    );
    Case {
        name,
        dir,
        golden,
        backbone,
    }
}

impl Case {
    fn int(&self, key: &str) -> i64 {
        self.golden[key]
            .as_i64()
            .unwrap_or_else(|| panic!("golden key `{key}`"))
    }

    /// A fresh adapter (no gradients accumulated), checked against the golden shape.
    fn adapter(&self) -> DecomposedPrompt {
        let adapter = DecomposedPrompt::load(&self.dir.join("adapter"), Device::Cpu)
            .unwrap_or_else(|e| panic!("{} adapter: {e}", self.name));
        let c = adapter.config();
        assert_eq!(
            (c.m, c.r, c.s, c.lora_alpha),
            (
                self.int("m"),
                self.int("r"),
                Some(self.int("s")),
                self.golden["lora_alpha"].as_f64().unwrap()
            ),
            "{} adapter config",
            self.name
        );
        adapter
            .check_compatible(self.backbone.hidden_size(), self.int("s"))
            .expect("adapter fits the backbone");
        adapter
    }

    fn pad(&self) -> i64 {
        self.backbone.pad_token_id()
    }
}

fn encoded(sources: Vec<Vec<i64>>, targets: Vec<Vec<i64>>) -> Vec<Encoded> {
    assert_eq!(sources.len(), targets.len());
    sources
        .into_iter()
        .zip(targets)
        .map(|(input_ids, target_ids)| Encoded {
            input_ids,
            target_ids,
            image: None,
            weight: None,
        })
        .collect()
}

fn rows(t: &Tensor) -> Vec<Vec<i64>> {
    Vec::<Vec<i64>>::try_from(t).expect("integer rows")
}

/// Loss, logits at the real positions after the prompt, and the gradients of P, A, B against the reference, for a
/// training batch padded to s (the official layout) or to its longest row.
fn training_matches(name: &'static str, padding: Padding) {
    let c = case(name);
    let train = &c.golden["train"];
    let (m, s) = (c.int("m"), c.int("s"));
    let items = encoded(int_rows(train, "sources"), int_rows(train, "targets"));
    let refs: Vec<&Encoded> = items.iter().collect();
    let batch = Batch::for_training(
        &refs,
        Architecture::DecoderOnly,
        padding,
        s as usize,
        c.pad(),
        Device::Cpu,
    );

    // The batch is the official one (padded to s), or its first columns up to the longest row.
    let width = batch.input_ids.size()[1] as usize;
    let longest = items
        .iter()
        .map(|e| e.input_ids.len() + e.target_ids.len())
        .max()
        .unwrap();
    let expected_width = match padding {
        Padding::MaxLength => s as usize,
        Padding::Longest => longest,
    };
    assert_eq!(width, expected_width, "{name} {padding:?} batch width");
    assert!(
        longest < s as usize,
        "the golden rows must leave padding at s"
    );
    for (key, tensor) in [
        ("input_ids", &batch.input_ids),
        ("attention_mask", &batch.attention_mask),
        ("labels", &batch.labels),
    ] {
        let expected: Vec<Vec<i64>> = int_rows(train, key)
            .into_iter()
            .map(|row| row[..width].to_vec())
            .collect();
        assert_eq!(rows(tensor), expected, "{name} {padding:?} batch {key}");
    }

    let adapter = c.adapter();
    let model = PromptedModel::new(c.backbone.as_ref(), &adapter);
    let out = model
        .forward_t(
            &batch.input_ids,
            &batch.attention_mask,
            &batch.labels,
            false,
        )
        .expect("forward");
    assert_eq!(
        out.logits.size()[1],
        m + width as i64,
        "logits cover prompt and sequence"
    );
    let label = |what: &str| format!("{name} {padding:?} {what}");
    let loss = to_vec(&out.loss);
    assert_close(
        &label("loss"),
        &loss,
        &[train["loss"].as_f64().unwrap()],
        TOLERANCE,
    );
    if padding == Padding::Longest {
        assert_close(
            &label("loss vs the reference's longest-padded loss"),
            &loss,
            &[train["loss_longest"].as_f64().unwrap()],
            TOLERANCE,
        );
    }
    let real = out
        .logits
        .narrow(1, m, width as i64)
        .index(&[Some(batch.attention_mask.ne(0))]);
    assert_close(
        &label("logits at real positions"),
        &to_vec(&real),
        &floats(train, "logits_at_real"),
        TOLERANCE,
    );

    out.loss.backward();
    assert_adapter_grads(&format!("{name} {padding:?}"), &adapter, train, TOLERANCE);
}

/// Greedy decodes of a left-padded batch, and of each row alone, equal the reference's.
fn greedy_matches(name: &'static str) {
    let c = case(name);
    let generate = &c.golden["generate"];
    let max_new = generate["max_new_tokens"].as_i64().unwrap();
    let sources = int_rows(generate, "sources");
    let eos = c.backbone.eos_token_id();
    let items = encoded(sources.clone(), vec![vec![eos]; sources.len()]);
    let adapter = c.adapter();
    let model = PromptedModel::new(c.backbone.as_ref(), &adapter);
    let s = c.int("s") as usize;
    let decode = |refs: &[&Encoded]| {
        let batch = Batch::for_generation(
            refs,
            Architecture::DecoderOnly,
            Padding::Longest,
            s,
            c.pad(),
            Device::Cpu,
        );
        let generated = model
            .generate(&batch.input_ids, &batch.attention_mask, max_new)
            .expect("generate");
        (batch, rows(&generated))
    };

    let refs: Vec<&Encoded> = items.iter().collect();
    let (batch, generated) = decode(&refs);
    let longest = sources.iter().map(Vec::len).max().unwrap();
    let left_padded: Vec<Vec<i64>> = sources
        .iter()
        .map(|r| {
            std::iter::repeat_n(c.pad(), longest - r.len())
                .chain(r.iter().copied())
                .collect()
        })
        .collect();
    assert_eq!(
        rows(&batch.input_ids),
        left_padded,
        "{name}: sources left-padded"
    );
    // The first pass's logits at each row's last source token: the prompt and A's rows by each token's own
    // position, whatever the left padding. (The loss of this pass is meaningless: every label is -100.)
    let unlabelled = batch.input_ids.full_like(-100);
    let first = model
        .forward_t(&batch.input_ids, &batch.attention_mask, &unlabelled, false)
        .expect("forward")
        .logits
        .select(1, -1);
    assert_close(
        &format!("{name} first-pass logits of the left-padded batch"),
        &to_vec(&first),
        &floats(generate, "first_logits"),
        TOLERANCE,
    );
    let expected = int_rows(generate, "greedy");
    println!("{name} greedy batch: {generated:?} (reference {expected:?})");
    assert_eq!(generated, expected, "{name} greedy decodes of the batch");

    for (i, item) in items.iter().enumerate() {
        let (_, alone) = decode(&[item]);
        let expected = int_rows(generate, "greedy_alone")[i].clone();
        println!("{name} greedy row {i} alone: {alone:?} (reference {expected:?})");
        assert_eq!(
            alone,
            vec![expected],
            "{name} greedy decode of row {i} alone"
        );
    }
}

#[test]
fn gpt2_max_length_forward_and_gradients_match_pytorch() {
    training_matches("gpt2", Padding::MaxLength);
}

#[test]
fn gpt2_longest_forward_and_gradients_match_pytorch() {
    training_matches("gpt2", Padding::Longest);
}

#[test]
fn llama_max_length_forward_and_gradients_match_pytorch() {
    training_matches("llama", Padding::MaxLength);
}

#[test]
fn llama_longest_forward_and_gradients_match_pytorch() {
    training_matches("llama", Padding::Longest);
}

#[test]
fn gpt2_greedy_decodes_match_pytorch() {
    greedy_matches("gpt2");
}

#[test]
fn llama_greedy_decodes_match_pytorch() {
    greedy_matches("llama");
}
