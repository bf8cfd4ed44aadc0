//! `dept quickstart`: a fully offline end-to-end check that libtorch, rust-bert and the DePT adapter work
//! together: a tiny random T5, a DePT adapter in its own VarStore, a few optimiser steps on a fixed batch.

use anyhow::{Context, Result};
use clap::Args;
use dept_core::{DecomposedPrompt, DeptConfig, PromptInit, PAIR_GROUP};
use dept_models::t5::{T5Config, T5};
use dept_models::Backbone;
use dept_train::optim::{clip_grad_norm, AdamW, AdamWConfig};
use tch::{Device, Kind, Tensor};

#[derive(Args)]
pub struct QuickstartArgs {
    /// Optimiser steps to take.
    #[arg(long, default_value_t = 8)]
    steps: usize,
    /// Seed of libtorch's generator (model, adapter and batch).
    #[arg(long, default_value_t = 42)]
    seed: i64,
}

pub fn run(args: &QuickstartArgs) -> Result<()> {
    tch::manual_seed(args.seed);
    let device = Device::Cpu;
    let config = tiny_t5_config()?;
    let t5 = T5::new_random(&config, device).context("building the tiny T5")?;
    println!(
        "tiny T5: d_model {}, {} layers, vocab {} (random weights, frozen)",
        config.d_model, config.num_layers, config.vocab_size
    );

    let (m, r, s) = (4, 2, 12);
    let dept = DeptConfig::new(m, r, s, t5.hidden_size())?.with_init(&PromptInit::Random);
    let adapter = DecomposedPrompt::new(dept, None, device)?;
    println!(
        "DePT adapter: m = {m}, r = {r}, s = {s}: {} trainable parameters (backbone: 0)",
        adapter.config().num_params()
    );

    // A fixed batch of two inputs of different lengths; the target copies each input's first tokens.
    let ids = Tensor::from_slice2(&[[5_i64, 9, 13, 17, 21, 25, 1], [7, 11, 15, 1, 0, 0, 0]]);
    let mask = ids.ne(0).to_kind(Kind::Int64);
    let labels = Tensor::from_slice2(&[[5_i64, 9, 1], [7, 11, 1]]);

    let params: Vec<Tensor> = adapter
        .param_groups()
        .into_iter()
        .flat_map(|(_, p)| p)
        .collect();
    let mut optimizer = AdamW::new(adapter.param_groups(), AdamWConfig::default());
    let lr = |group: usize| if group == PAIR_GROUP { 1e-2 } else { 3e-1 };

    let loss_of = |train: bool| -> Result<Tensor> {
        let (embeds, mask) = adapter.apply(&t5.embed(&ids), &mask)?;
        Ok(t5.forward(&embeds, &mask, &labels, train)?.loss)
    };
    let before = tch::no_grad(|| loss_of(false))?.double_value(&[]);
    println!("loss before: {before:.4}");
    for step in 1..=args.steps {
        optimizer.zero_grad();
        let loss = loss_of(false)?;
        loss.backward();
        let norm = clip_grad_norm(&params, 1.0);
        optimizer.step(lr);
        println!(
            "  step {step}: loss {:.4}, grad norm {norm:.3}",
            loss.double_value(&[])
        );
    }
    let after = tch::no_grad(|| loss_of(false))?.double_value(&[]);
    println!("loss after {} steps: {after:.4}", args.steps);
    anyhow::ensure!(
        after < before,
        "the loss did not decrease ({before:.4} -> {after:.4}): training is broken"
    );
    println!("quickstart OK: forward, backward and two-rate AdamW through rust-bert's T5 work");
    Ok(())
}

fn tiny_t5_config() -> Result<T5Config> {
    let json = serde_json::json!({
        "vocab_size": 64, "d_model": 32, "d_kv": 8, "d_ff": 64, "num_layers": 2, "num_heads": 4,
        "relative_attention_num_buckets": 8, "relative_attention_max_distance": 16,
        "dropout_rate": 0.1, "feed_forward_proj": "relu", "tie_word_embeddings": true,
        "pad_token_id": 0, "eos_token_id": 1, "decoder_start_token_id": 0
    });
    Ok(T5Config::from_json(
        std::path::Path::new("<quickstart>"),
        json,
    )?)
}
