//! `dept selftest`: does this machine's device compute what the CPU computes? A tiny random T5 in the Hugging Face
//! layout is loaded on both; one DePT forward + backward (dropout off) and greedy decoding are compared.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use clap::Args;
use dept_core::{DecomposedPrompt, DeptConfig};
use dept_models::{load_backbone, Backbone, PromptedModel};
use dept_train::guard::guarded;
use tch::{Device, Kind, Tensor};

#[derive(Args)]
pub struct SelftestArgs {
    /// The device to check against the CPU: cuda, cuda:N (or cpu, which checks determinism).
    #[arg(long, default_value = "cuda")]
    device: String,
    /// Largest relative difference allowed in fp32 (max |device − cpu| / max |cpu|) for the loss and the
    /// gradients of P, A and B.
    #[arg(long, default_value_t = 1e-4)]
    tolerance: f64,
    /// Largest relative difference of the loss allowed with the backbone in bf16 (8-bit mantissa).
    #[arg(long, default_value_t = 5e-2)]
    bf16_tolerance: f64,
}

/// What one device computes for the fixed batch.
struct Outcome {
    loss: Tensor,
    grads: Vec<(&'static str, Tensor)>,
    decoded: Vec<Vec<i64>>,
}

pub fn run(args: &SelftestArgs) -> Result<()> {
    let device = dept_train::device::resolve_device(&args.device).map_err(anyhow::Error::msg)?;
    let dir = scratch_dir();
    let result = compare(args, device, &dir);
    let _ = std::fs::remove_dir_all(&dir);
    result
}

fn compare(args: &SelftestArgs, device: Device, dir: &Path) -> Result<()> {
    dept_models::tiny::write_tiny_t5(
        dir,
        &dept_data::synthetic::vocabulary(),
        64,
        "gated-gelu",
        7,
    )
    .with_context(|| format!("writing a tiny T5 to {}", dir.display()))?;

    // Adapter values drawn once on the CPU; B is non-zero so that A receives a gradient.
    tch::manual_seed(11);
    let (m, r, s) = (5, 4, 16);
    let cpu = load_backbone(dir, Device::Cpu)?;
    let d = cpu.hidden_size();
    let config = DeptConfig::new(m, r, s, d)?;
    let prompt = Tensor::randn([m, d], (Kind::Float, Device::Cpu));
    let pair = (
        Tensor::randn([s, r], (Kind::Float, Device::Cpu)) * 0.5,
        Tensor::randn([r, d], (Kind::Float, Device::Cpu)) * 0.1,
    );
    let batch = Batch::new(cpu.vocab_size());

    let reference = run_on(&*cpu, &config, &prompt, &pair, &batch, Device::Cpu)?;
    let backbone = load_backbone(dir, device)?;
    let checked = run_on(&*backbone, &config, &prompt, &pair, &batch, device)?;

    println!("tiny T5 (d {d}, gated-gelu), DePT m {m} r {r} s {s}, 3 inputs of 12/9/5 tokens; cpu vs {device:?}");
    let mut failures = Vec::new();
    let mut row = |name: &str, reference: &Tensor, other: &Tensor, tolerance: f64| {
        let error = relative_error(reference, other);
        let ok = error <= tolerance;
        println!(
            "  {name:<18} relative difference {error:.2e}  (limit {tolerance:.0e})  {}",
            if ok { "ok" } else { "FAIL" }
        );
        if !ok {
            failures.push(name.to_string());
        }
    };
    row("loss", &reference.loss, &checked.loss, args.tolerance);
    for ((name, a), (_, b)) in reference.grads.iter().zip(&checked.grads) {
        row(name, a, b, args.tolerance);
    }

    let mut bf16 = load_backbone(dir, device)?;
    bf16.set_float_kind(Kind::BFloat16)?;
    let low = run_on(&*bf16, &config, &prompt, &pair, &batch, device)?;
    row(
        "loss (bf16)",
        &reference.loss,
        &low.loss,
        args.bf16_tolerance,
    );

    let same = reference.decoded == checked.decoded;
    println!(
        "  greedy decodes     {}  ({} rows, up to {} tokens)",
        if same { "identical" } else { "DIFFERENT" },
        reference.decoded.len(),
        Batch::DECODE_TOKENS
    );
    if !same {
        println!(
            "    cpu:    {:?}\n    device: {:?}",
            reference.decoded, checked.decoded
        );
        failures.push("greedy decodes".into());
    }
    if !failures.is_empty() {
        bail!("{device:?} differs from the CPU: {}", failures.join(", "));
    }
    println!("{device:?} matches the CPU");
    Ok(())
}

/// A fixed padded batch: ids, mask, labels (with -100 padding), drawn on the CPU.
struct Batch {
    ids: Tensor,
    mask: Tensor,
    labels: Tensor,
}

impl Batch {
    const LENGTHS: [i64; 3] = [12, 9, 5];
    const DECODE_TOKENS: i64 = 6;

    fn new(vocab: i64) -> Self {
        let width = Self::LENGTHS[0];
        let positions = Tensor::arange(width, (Kind::Int64, Device::Cpu)).unsqueeze(0);
        let mask = positions
            .lt_tensor(&Tensor::from_slice(&Self::LENGTHS).unsqueeze(1))
            .to_kind(Kind::Int64);
        let ids = Tensor::randint_low(3, vocab, [3, width], (Kind::Int64, Device::Cpu)) * &mask;
        let labels = Tensor::randint_low(3, vocab, [3, 4], (Kind::Int64, Device::Cpu));
        let _ = labels.narrow(1, 2, 2).get(2).fill_(-100);
        Batch { ids, mask, labels }
    }
}

fn run_on(
    backbone: &dyn Backbone,
    config: &DeptConfig,
    prompt: &Tensor,
    pair: &(Tensor, Tensor),
    batch: &Batch,
    device: Device,
) -> Result<Outcome> {
    let pair = (pair.0.to_device(device), pair.1.to_device(device));
    let adapter = DecomposedPrompt::from_tensors(
        config.clone(),
        &prompt.to_device(device),
        Some(&pair),
        device,
    )?;
    let (ids, mask, labels) = (
        batch.ids.to_device(device),
        batch.mask.to_device(device),
        batch.labels.to_device(device),
    );
    let model = PromptedModel::new(backbone, &adapter);
    let loss = guarded(|| {
        let loss = model.forward_t(&ids, &mask, &labels, false)?.loss;
        loss.backward();
        Ok(loss.detach())
    })?;
    let decoded = guarded(|| Ok(model.generate(&ids, &mask, Batch::DECODE_TOKENS)?))?;
    let (a, b) = adapter
        .pair()
        .context("a DePT adapter with r > 0 has A and B")?;
    let to_cpu = |t: Tensor| t.to_device(Device::Cpu).to_kind(Kind::Double);
    Ok(Outcome {
        loss: to_cpu(loss),
        grads: vec![
            ("grad P", to_cpu(adapter.prompt().grad())),
            ("grad A", to_cpu(a.grad())),
            ("grad B", to_cpu(b.grad())),
        ],
        decoded: Vec::<Vec<i64>>::try_from(&decoded.to_device(Device::Cpu))?,
    })
}

/// max |a − b| / max |a|, in f64.
fn relative_error(reference: &Tensor, other: &Tensor) -> f64 {
    let reference = reference.to_kind(Kind::Double);
    let diff = (&reference - other.to_kind(Kind::Double))
        .abs()
        .max()
        .double_value(&[]);
    diff / reference
        .abs()
        .max()
        .double_value(&[])
        .max(f64::MIN_POSITIVE)
}

fn scratch_dir() -> PathBuf {
    std::env::temp_dir().join(format!("dept-selftest-{}", std::process::id()))
}
