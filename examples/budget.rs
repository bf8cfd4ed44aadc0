//! Solve DePT's parameter budget `l·d = m·d + (s+d)·r` with `dept_core::budget`.
//!
//! Prompt tuning (PT) trains `l` soft tokens of width `d`: `l·d` parameters. DePT spends the same budget on a
//! shorter prompt of `m` tokens plus a rank-`r` pair A (s×r) and B (r×d), where `s` is the maximum input length.
//! This prints the shapes of the paper's T5-base runs (l = 100, d = 768, s = 256), solves for either unknown and
//! shows what happens when no integer solves the budget exactly.
//!
//! Run: `cargo run -p dept --example budget` (no model or data needed).

use dept_core::budget::{Budget, Rounding};
use dept_core::DeptConfig;

fn main() -> anyhow::Result<()> {
    // T5-base: hidden size d = 768; the paper pads inputs to s = 256 tokens and compares against PT with l = 100.
    let budget = Budget::new(100, 768, 256)?;
    println!(
        "budget: l = {} PT tokens × d = {} = {} trainable parameters (s = {})",
        budget.l,
        budget.d,
        budget.total(),
        budget.s
    );

    // Given the prompt length m, the rank r that spends what is left: the paper's T5-base shapes, from plain PT
    // (r = 0) to its main setting m = 60, r = 30.
    for m in [100, 80, 60, 40] {
        let split = budget.rank_for(m, Rounding::Exact)?;
        println!(
            "  m = {:>3} -> r = {:>2}: {}·{} + ({}+{})·{} = {}",
            split.m, split.r, split.m, budget.d, budget.s, budget.d, split.r, split.params
        );
    }
    // Or the other way round: given r, the prompt length m.
    let from_rank = budget.prompt_len_for(45, Rounding::Exact)?;
    println!("r = 45 leaves prompt length m = {}", from_rank.m);

    // Every exact (m, r): here r must be a multiple of 3, since (s + d)·r = 1024·r must be a multiple of 768.
    let pairs = budget.exact_pairs();
    let ranks: Vec<String> = pairs.iter().map(|p| p.r.to_string()).collect();
    println!("{} exact pairs, r in {{{}}}", pairs.len(), ranks.join(", "));

    // m = 61 has no exact rank: Exact rounding is an error naming the nearest choices, Nearest rounds and
    // reports how far from the budget the rounded shape is.
    if let Err(error) = budget.rank_for(61, Rounding::Exact) {
        println!("m = 61, exact: {error}");
    }
    let rounded = budget.rank_for(61, Rounding::Nearest)?;
    println!(
        "m = 61, nearest: r = {} costs {} parameters ({:+} against the budget)",
        rounded.r, rounded.params, rounded.difference
    );

    // The adapter config that a run with the main setting saves (`adapter_config.json`, the official format).
    let main_setting = budget.rank_for(60, Rounding::Exact)?;
    let config = DeptConfig::new(main_setting.m, main_setting.r, budget.s, budget.d)?;
    println!(
        "DeptConfig m = {}, r = {}: {} parameters, PEFT type {}, scale lora_alpha/√r = {:.3}",
        config.m,
        config.r,
        config.num_params(),
        config.peft_type(),
        config.scale()
    );
    Ok(())
}
