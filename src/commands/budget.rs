//! `dept budget`: which DePT shapes (m, r) cost exactly what a PT prompt of l tokens costs.

use anyhow::Result;
use clap::Args;
use dept_core::budget::{Budget, Rounding};

#[derive(Args)]
pub struct BudgetArgs {
    /// Hidden size d of the backbone (T5-base: 768).
    #[arg(long)]
    d: i64,
    /// Maximum input length s (rows of A; the paper uses 256).
    #[arg(long)]
    s: i64,
    /// Prompt length l of the PT baseline whose budget l·d is matched.
    #[arg(long)]
    l: i64,
    /// Solve for r given this prompt length m (instead of listing all pairs).
    #[arg(long, conflicts_with = "r")]
    m: Option<i64>,
    /// Solve for m given this rank r.
    #[arg(long)]
    r: Option<i64>,
    /// With --m or --r: round to the nearest integer instead of failing when no exact solution exists.
    #[arg(long)]
    round: bool,
}

pub fn run(args: &BudgetArgs) -> Result<()> {
    let budget = Budget::new(args.l, args.d, args.s)?;
    let rounding = if args.round {
        Rounding::Nearest
    } else {
        Rounding::Exact
    };
    let solved = match (args.m, args.r) {
        (Some(m), _) => Some(budget.rank_for(m, rounding)?),
        (None, Some(r)) => Some(budget.prompt_len_for(r, rounding)?),
        (None, None) => None,
    };
    println!(
        "budget l·d = {}·{} = {} parameters (s = {}): m·d + (s+d)·r",
        args.l,
        args.d,
        budget.total(),
        args.s
    );
    if let Some(split) = solved {
        println!(
            "m = {}, r = {}: {} parameters ({:+} against the budget)",
            split.m, split.r, split.params, split.difference
        );
        return Ok(());
    }
    println!(
        "{:>6} {:>6} {:>12} {:>12}",
        "m", "r", "prompt m·d", "pair (s+d)·r"
    );
    for p in budget.exact_pairs() {
        println!(
            "{:>6} {:>6} {:>12} {:>12}",
            p.m,
            p.r,
            p.m * args.d,
            (args.s + args.d) * p.r
        );
    }
    Ok(())
}
