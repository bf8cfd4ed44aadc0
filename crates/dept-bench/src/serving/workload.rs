//! The serving bench's fixture: a random-weight model folder, a pool of adapter folders, the requests, arrival
//! times, and the memory figure for many loaded adapters.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use dept_core::{DecomposedPrompt, DeptConfig};
use dept_models::t5::{T5Config, T5};
use dept_serve::engine::{self, Command};
use dept_serve::metrics::Metrics;
use dept_serve::{EngineOptions, ServeError};
use tch::{Device, Tensor};
use tokio::sync::oneshot;

use crate::error::{BenchError, Result};

/// The adapters' shape on a released size: the paper's DePT setting (m = 60, r = 30, s = 256).
const PAPER_SHAPE: (i64, i64, i64) = (60, 30, 256);
/// On the tiny model (a check of the bench itself).
const TINY_SHAPE: (i64, i64, i64) = (8, 4, 256);

/// The model folder and the pool of adapters every phase draws from.
pub struct Setup {
    pub model: PathBuf,
    pub d: i64,
    pub vocab: i64,
    pub s: i64,
    /// `a0000`, `a0001`, … under `pool`.
    pool: PathBuf,
}

/// One request: an adapter's name, input ids, answer length.
#[derive(Debug, Clone)]
pub struct Request {
    pub adapter: String,
    pub input_ids: Vec<i64>,
    pub max_tokens: usize,
}

/// Tokens of an answer: `label` 2 (a class name and end of sequence), `mrqa` 16 (an extracted span).
pub fn answer_tokens(name: &str) -> Result<(&'static str, usize)> {
    match name {
        "label" => Ok(("label", 2)),
        "mrqa" => Ok(("mrqa", 16)),
        other => Err(BenchError::Invalid(format!(
            "--outputs takes label and mrqa, got {other:?}"
        ))),
    }
}

impl Setup {
    /// Writes the model (random weights, transformers' initialisation) and `adapters` random adapter folders.
    pub fn write(scratch: &Path, shape: &str, adapters: usize) -> Result<Setup> {
        let model = scratch.join("model");
        tch::manual_seed(0);
        let (m, r, s) = if shape == "tiny" {
            let words: Vec<String> = (0..500).map(|i| format!("w{i}")).collect();
            let words: Vec<&str> = words.iter().map(String::as_str).collect();
            dept_models::tiny::write_tiny_t5(&model, &words, 32, "relu", 0)?;
            TINY_SHAPE
        } else {
            T5::new_random(&T5Config::released(shape)?, Device::Cpu)?.save(&model)?;
            PAPER_SHAPE
        };
        let backbone = dept_models::load_backbone(&model, Device::Cpu)?;
        let (d, vocab) = (backbone.hidden_size(), backbone.vocab_size());
        let pool = scratch.join("pool");
        for i in 0..adapters {
            let config = DeptConfig::new(m, r, s, d)?;
            let adapter = DecomposedPrompt::new(config, None, Device::Cpu)?;
            if let Some((_, b)) = adapter.pair() {
                let mut b = b.shallow_clone();
                tch::no_grad(|| b.copy_(&(Tensor::randn_like(&b) * 0.1)));
            }
            adapter.save(&pool.join(adapter_name(i)))?;
        }
        Ok(Setup {
            model,
            d,
            vocab,
            s,
            pool,
        })
    }

    /// A folder holding the first `n` adapters of the pool (links to them), for an engine or the Python side.
    pub fn adapter_folder(&self, scratch: &Path, n: usize) -> Result<PathBuf> {
        let folder = scratch.join(format!("adapters-{n}"));
        if folder.is_dir() {
            return Ok(folder);
        }
        std::fs::create_dir_all(&folder).map_err(|e| BenchError::io("creating", &folder, e))?;
        for i in 0..n {
            let link = folder.join(adapter_name(i));
            std::os::unix::fs::symlink(self.pool.join(adapter_name(i)), &link)
                .map_err(|e| BenchError::io("linking", &link, e))?;
        }
        Ok(folder)
    }
}

pub(crate) fn adapter_name(i: usize) -> String {
    format!("a{i:04}")
}

/// A small deterministic generator (64-bit LCG, top bits), so that every run draws the same workload.
struct Draw(u64);

impl Draw {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 33
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    fn unit(&mut self) -> f64 {
        (self.next() as f64 + 0.5) / (1u64 << 31) as f64
    }
}

/// `count` requests spread uniformly over the first `adapters` adapters, inputs of 24–128 tokens (at most `s`).
pub fn requests(setup: &Setup, adapters: usize, count: usize, new_tokens: usize) -> Vec<Request> {
    let mut draw = Draw(42 + adapters as u64);
    (0..count)
        .map(|_| {
            let adapter = adapter_name(draw.below(adapters as u64) as usize);
            let len = (24 + draw.below(105) as i64).min(setup.s);
            // Ids from 3 on: 0 and 1 are T5's padding and end of sequence, 2 its unknown token.
            let input_ids = (0..len)
                .map(|_| 3 + draw.below(setup.vocab as u64 - 3) as i64)
                .collect();
            Request {
                adapter,
                input_ids,
                max_tokens: new_tokens,
            }
        })
        .collect()
}

/// Arrival times (seconds from the start) of `n` requests at `rate` per second, exponential gaps.
pub fn poisson_arrivals(n: usize, rate: f64) -> Vec<f64> {
    let mut draw = Draw(7);
    let mut at = 0.0;
    (0..n)
        .map(|_| {
            let now = at;
            at += -draw.unit().ln() / rate.max(1e-9);
            now
        })
        .collect()
}

/// The resident memory `n` small adapters take once loaded, beyond their tensors.
pub fn memory_of_adapters(setup: &Setup, scratch: &Path, n: usize) -> Result<String> {
    let (m, r, s) = (8, 4, 64);
    let source = scratch.join("memory-source");
    let config = DeptConfig::new(m, r, s, setup.d)?;
    DecomposedPrompt::new(config, None, Device::Cpu)?.save(&source)?;
    let folder = scratch.join("memory");
    for i in 0..=n {
        let dir = folder.join(adapter_name(i));
        std::fs::create_dir_all(&dir).map_err(|e| BenchError::io("creating", &dir, e))?;
        for file in ["adapter_config.json", "adapter_model.safetensors"] {
            std::fs::copy(source.join(file), dir.join(file))
                .map_err(|e| BenchError::io("copying", &dir, e))?;
        }
    }
    let model = setup.model.clone();
    let (engine, _thread) = engine::start(
        move || {
            dept_models::load_backbone(&model, Device::Cpu)
                .map_err(|e| ServeError::Startup(e.to_string()))
        },
        "memory".into(),
        Vec::new(),
        EngineOptions::default(),
        Arc::new(Metrics::new()),
    )
    .map_err(|e| BenchError::Invalid(e.to_string()))?;
    // One load first, so that one-time costs (the first tensors of their kind, the registry's first growth) are
    // not counted per adapter.
    load(&engine, &folder, 0)?;
    // Free heap pages go back to the system first: a load that reuses one then counts, as it should.
    release_free_heap();
    let before = resident_bytes()?;
    let started = std::time::Instant::now();
    for i in 1..=n {
        load(&engine, &folder, i)?;
    }
    let seconds = started.elapsed().as_secs_f64();
    let after = resident_bytes()?;
    let tensors = ((m * setup.d + s * r + r * setup.d) * 4) as f64;
    let each = (after.saturating_sub(before)) as f64 / n as f64;
    Ok(format!(
        "memory: {n} adapters (m = {m}, r = {r}, s = {s}, d = {}) loaded in {seconds:.1} s took {:.1} MiB resident: \
         {:.1} KiB each, of which {:.1} KiB are their tensors and {:.1} KiB everything else (names, descriptions, \
         libtorch's tensor and variable-store bookkeeping)",
        setup.d,
        (after.saturating_sub(before)) as f64 / (1 << 20) as f64,
        each / 1024.0,
        tensors / 1024.0,
        (each - tensors) / 1024.0
    ))
}

fn load(engine: &engine::EngineHandle, folder: &Path, i: usize) -> Result<()> {
    let (reply, answer) = oneshot::channel();
    let name = adapter_name(i);
    engine
        .send(Command::Load {
            dir: folder.join(&name),
            name,
            reply,
        })
        .map_err(|e| BenchError::Invalid(e.to_string()))?;
    answer
        .blocking_recv()
        .map_err(|_| BenchError::Invalid("the engine dropped a load".into()))?
        .map(|_| ())
        .map_err(|e| BenchError::Invalid(e.to_string()))
}

/// Returns the allocator's free pages to the system (glibc's `malloc_trim`), so that resident memory counts
/// only memory in use.
fn release_free_heap() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only releases free memory of glibc's own heap; it touches nothing in use.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// This process's resident set (`VmRSS`), in bytes.
fn resident_bytes() -> Result<u64> {
    let path = Path::new("/proc/self/status");
    let status = std::fs::read_to_string(path).map_err(|e| BenchError::io("reading", path, e))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map(|kib| kib * 1024)
        .ok_or_else(|| BenchError::Invalid("no VmRSS in /proc/self/status".into()))
}
