//! `dept selftest`: does this machine's device compute what the CPU computes? A tiny random T5 in the Hugging Face
//! layout is loaded on both; one DePT forward + backward (dropout off) and greedy decoding are compared, and the
//! outcome comes back as a [`SelftestReport`] for the caller to print.

use std::path::Path;

use clap::Args;
use dept_core::{DecomposedPrompt, DeptConfig};
use dept_models::{load_backbone, Backbone, PromptedModel};
use dept_train::guard::guarded;
use tch::{Device, Kind, Tensor};

use crate::error::{Context, Result};
use crate::scratch::Scratch;

#[derive(Args)]
pub struct SelftestArgs {
    /// The device to check against the CPU: cuda, cuda:N (or cpu, which checks determinism).
    #[arg(long, default_value = "cuda")]
    pub device: String,
    /// Largest relative difference allowed in fp32 (max |device − cpu| / max |cpu|) for the loss and the
    /// gradients of P, A and B.
    #[arg(long, default_value_t = 1e-4)]
    pub tolerance: f64,
    /// Largest relative difference of the loss allowed with the backbone in bf16 (8-bit mantissa).
    #[arg(long, default_value_t = 5e-2)]
    pub bf16_tolerance: f64,
}

/// What one device computes for the fixed batch.
struct Outcome {
    loss: Tensor,
    grads: Vec<(&'static str, Tensor)>,
    decoded: Vec<Vec<i64>>,
}

/// One compared quantity: its relative difference to the CPU and the limit it must stay within.
pub struct Check {
    pub name: String,
    pub error: f64,
    pub limit: f64,
}

impl Check {
    pub fn passed(&self) -> bool {
        self.error <= self.limit
    }
}

/// What `dept selftest` found: each compared quantity, and whether greedy decoding agreed token for token.
pub struct SelftestReport {
    /// The setting, for the report's first line.
    pub setting: String,
    pub device: Device,
    pub checks: Vec<Check>,
    pub cpu_decodes: Vec<Vec<i64>>,
    pub device_decodes: Vec<Vec<i64>>,
}

impl SelftestReport {
    /// Names of the checks that failed (empty when the device matches the CPU).
    pub fn failures(&self) -> Vec<String> {
        let mut failed: Vec<String> = (self.checks.iter())
            .filter(|c| !c.passed())
            .map(|c| c.name.clone())
            .collect();
        if self.cpu_decodes != self.device_decodes {
            failed.push("greedy decodes".into());
        }
        failed
    }
}

impl std::fmt::Display for SelftestReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "{}", self.setting)?;
        for check in &self.checks {
            writeln!(
                f,
                "  {:<18} relative difference {:.2e}  (limit {:.0e})  {}",
                check.name,
                check.error,
                check.limit,
                if check.passed() { "ok" } else { "FAIL" }
            )?;
        }
        let same = self.cpu_decodes == self.device_decodes;
        writeln!(
            f,
            "  greedy decodes     {}  ({} rows, up to {} tokens)",
            if same { "identical" } else { "DIFFERENT" },
            self.cpu_decodes.len(),
            Batch::DECODE_TOKENS
        )?;
        if !same {
            writeln!(
                f,
                "    cpu:    {:?}\n    device: {:?}",
                self.cpu_decodes, self.device_decodes
            )?;
        }
        Ok(())
    }
}

/// Runs the comparison on a tiny T5 written to a scratch folder (removed afterwards).
pub fn run(args: &SelftestArgs) -> Result<SelftestReport> {
    let device = dept_train::device::resolve_device(&args.device)?;
    let scratch = Scratch::create("selftest")?;
    compare(args, device, scratch.path())
}

fn compare(args: &SelftestArgs, device: Device, dir: &Path) -> Result<SelftestReport> {
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

    let mut checks = Vec::new();
    let mut check = |name: &str, reference: &Tensor, other: &Tensor, limit: f64| {
        checks.push(Check {
            name: name.to_string(),
            error: relative_error(reference, other),
            limit,
        })
    };
    check("loss", &reference.loss, &checked.loss, args.tolerance);
    for ((name, a), (_, b)) in reference.grads.iter().zip(&checked.grads) {
        check(name, a, b, args.tolerance);
    }
    let mut bf16 = load_backbone(dir, device)?;
    bf16.set_float_kind(Kind::BFloat16)?;
    let low = run_on(&*bf16, &config, &prompt, &pair, &batch, device)?;
    check(
        "loss (bf16)",
        &reference.loss,
        &low.loss,
        args.bf16_tolerance,
    );
    Ok(SelftestReport {
        setting: format!(
            "tiny T5 (d {d}, gated-gelu), DePT m {m} r {r} s {s}, 3 inputs of 12/9/5 tokens; cpu vs {device:?}"
        ),
        device,
        checks,
        cpu_decodes: reference.decoded,
        device_decodes: checked.decoded,
    })
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
