//! Input and target lengths for benchmark batches. The cost of PT against DePT depends on how long the inputs are
//! next to the soft prompt, so the study draws lengths from a task's profile: quantiles of token counts measured
//! on its training split (built in for the GLUE and SuperGLUE tasks, or measured from a data folder), or from a
//! uniform range.

use std::collections::BTreeMap;
use std::path::Path;

use crate::error::{bail, ensure, BenchError, Context, Result};
use dept_data::{load_split_subsampled, Family, Split};
use dept_models::TextTokenizer;
use serde::{Deserialize, Serialize};
use tch::{Device, Kind, Tensor};

/// Quantiles at 0, 5, …, 100 %.
pub const QUANTILES: usize = 21;

/// Profiles measured by `dept bench profile` on `../shared/data` with the T5 tokenizer; regenerate with the
/// command in the file's `generator` field.
const BUILTIN: &str = include_str!("length_profiles.json");

/// Token counts (`</s>` included, before truncation) of a task's formatted training examples.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LengthProfile {
    /// Examples measured.
    pub rows: usize,
    /// The source split they came from: `train`, or `validation` where the data folder has no training file.
    pub split: String,
    /// Input lengths at the quantiles 0, 5, …, 100 %.
    pub input: Vec<f64>,
    /// Target lengths at the same quantiles.
    pub target: Vec<f64>,
}

/// The committed file: how it was made, then one profile per task.
#[derive(Debug, Serialize, Deserialize)]
pub struct ProfileFile {
    pub generator: String,
    pub tokenizer: String,
    pub max_rows: usize,
    pub tasks: BTreeMap<String, LengthProfile>,
}

/// The tasks that get a built-in profile: the GLUE and SuperGLUE benchmarks the paper's efficiency study is about.
pub fn profiled_tasks() -> impl Iterator<Item = &'static dept_data::Task> {
    dept_data::all_tasks()
        .iter()
        .filter(|t| matches!(t.family, Family::Glue | Family::SuperGlue))
}

pub fn builtin_file() -> Result<ProfileFile> {
    serde_json::from_str(BUILTIN).context("the built-in length_profiles.json does not parse")
}

impl LengthProfile {
    /// The built-in profile of a task (by our or the official name).
    pub fn builtin(task: &str) -> Result<Self> {
        let name = dept_data::task(task)?.name;
        let mut file = builtin_file()?;
        match file.tasks.remove(name) {
            Some(profile) => Ok(profile),
            None => bail!(
                "no built-in length profile for {name:?} (built in: {}); measure it with --data-dir DIR \
                 --tokenizer tokenizer.json, or give --uniform MIN:MAX",
                file.tasks.keys().cloned().collect::<Vec<_>>().join(", ")
            ),
        }
    }

    /// Measures a task's training split under `data_dir`: at most `max_rows` source rows (the official seeded
    /// sample of `--max_train_samples`, seed 42), formatted as training formats them, tokenised without
    /// truncation.
    pub fn measure(
        task: &str,
        data_dir: &Path,
        tokenizer: &TextTokenizer,
        max_rows: usize,
    ) -> Result<Self> {
        let task = dept_data::task(task)?;
        let (examples, split) =
            match load_split_subsampled(task, data_dir, Split::Train, 42, Some(max_rows)) {
                Ok(examples) => (examples, "train"),
                // Some benchmark folders ship without their training file (QNLI, BoolQ here): the test split is drawn
                // from the original validation file, whose lengths follow the same distribution.
                Err(train_error) => {
                    match load_split_subsampled(task, data_dir, Split::Test, 42, Some(max_rows)) {
                        Ok(examples) => (examples, "validation"),
                        Err(_) => {
                            return Err(BenchError::Context {
                                context: format!(
                                    "reading {}'s training split under {}",
                                    task.name,
                                    data_dir.display()
                                ),
                                error: Box::new(train_error.into()),
                            })
                        }
                    }
                }
            };
        let mut inputs = Vec::with_capacity(examples.len());
        let mut targets = Vec::with_capacity(examples.len());
        for example in &examples {
            inputs.push(tokenizer.encode(&example.input, None)?.len() as f64);
            targets.push(tokenizer.encode(&example.target, None)?.len() as f64);
        }
        Ok(LengthProfile {
            rows: examples.len(),
            split: split.into(),
            input: quantiles(inputs),
            target: quantiles(targets),
        })
    }

    /// Draws `n` (input, target) lengths: inverse-CDF sampling between the quantiles, inputs cut to `max_len`.
    pub fn draw(&self, n: usize, max_len: usize) -> Result<Vec<(usize, usize)>> {
        ensure!(
            self.input.len() == QUANTILES && self.target.len() == QUANTILES,
            "a length profile needs {QUANTILES} quantiles"
        );
        let u = Vec::<f64>::try_from(
            Tensor::rand([n as i64, 2], (Kind::Double, Device::Cpu)).view([-1]),
        )?;
        Ok(u.chunks(2)
            .map(|pair| {
                let input = inverse_cdf(&self.input, pair[0]).clamp(2, max_len.max(2));
                (input, inverse_cdf(&self.target, pair[1]).max(1))
            })
            .collect())
    }

    /// Share of inputs longer than `max_len` (cut in training), interpolated between the quantiles.
    pub fn share_over(&self, max_len: usize) -> f64 {
        let max = max_len as f64;
        let q = &self.input;
        match q.iter().position(|&v| v > max) {
            None => 0.0,
            Some(0) => 1.0,
            Some(i) => {
                let within = (max - q[i - 1]) / (q[i] - q[i - 1]);
                1.0 - ((i - 1) as f64 + within) / (QUANTILES - 1) as f64
            }
        }
    }
}

/// numpy's default (linear) quantiles at 0, 5, …, 100 %, to one decimal.
fn quantiles(mut values: Vec<f64>) -> Vec<f64> {
    values.sort_by(f64::total_cmp);
    let last = (values.len() - 1) as f64;
    (0..QUANTILES)
        .map(|i| {
            let position = last * i as f64 / (QUANTILES - 1) as f64;
            let (low, frac) = (position.floor() as usize, position.fract());
            let high = (low + 1).min(values.len() - 1);
            let q = values[low] + (values[high] - values[low]) * frac;
            (q * 10.0).round() / 10.0
        })
        .collect()
}

/// The length at cumulative probability `u` ∈ [0, 1), interpolating linearly between quantiles.
fn inverse_cdf(quantiles: &[f64], u: f64) -> usize {
    let position = u.clamp(0.0, 1.0) * (quantiles.len() - 1) as f64;
    let low = (position.floor() as usize).min(quantiles.len() - 2);
    let frac = position - low as f64;
    let value = quantiles[low] + (quantiles[low + 1] - quantiles[low]) * frac;
    value.round().max(1.0) as usize
}

/// A `--uniform` value that is not `MIN:MAX`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("expected MIN:MAX token counts, e.g. 32:128, got {0:?}")]
pub struct BadSpan(String);

/// Parses `MIN:MAX`.
pub fn parse_span(text: &str) -> Result<(usize, usize), BadSpan> {
    let bad = || BadSpan(text.to_string());
    let (min, max) = text.split_once(':').ok_or_else(bad)?;
    let parse = |s: &str| s.trim().parse::<usize>().map_err(|_| bad());
    Ok((parse(min)?, parse(max)?))
}

/// `dept bench profile`: measures tasks' length profiles from a data folder; `--out` writes them in the format of
/// the built-in file (which is how that file is made).
#[derive(clap::Args)]
pub struct ProfileArgs {
    /// Folder holding `<TASK>/…` data files.
    #[arg(long)]
    data_dir: std::path::PathBuf,
    /// tokenizer.json of the model (T5 for the built-in profiles).
    #[arg(long)]
    tokenizer: std::path::PathBuf,
    /// Tasks to measure (repeat the flag); default: every GLUE and SuperGLUE task found under --data-dir.
    #[arg(long = "task")]
    tasks: Vec<String>,
    /// Training rows measured per task (the official seeded sample above this).
    #[arg(long, default_value_t = 5000)]
    max_rows: usize,
    /// Write the profiles here as JSON.
    #[arg(long)]
    out: Option<std::path::PathBuf>,
}

pub fn profile(args: &ProfileArgs) -> Result<()> {
    let tokenizer = TextTokenizer::from_file(&args.tokenizer)?;
    let names: Vec<String> = if args.tasks.is_empty() {
        profiled_tasks()
            .filter(|t| {
                dept_data::find_source(t, &args.data_dir, dept_data::SourceSplit::Validation)
                    .is_ok()
                    || dept_data::find_source(t, &args.data_dir, dept_data::SourceSplit::Train)
                        .is_ok()
            })
            .map(|t| t.name.to_string())
            .collect()
    } else {
        args.tasks.clone()
    };
    ensure!(
        !names.is_empty(),
        "no GLUE or SuperGLUE task folder under {}",
        args.data_dir.display()
    );
    println!(
        "{:<10} {:>10} {:>6}  input tokens: {:>5} {:>5} {:>5} {:>5} {:>5}   target: {:>4} {:>4}",
        "task", "split", "rows", "min", "p50", "p90", "p95", "max", "p50", "max"
    );
    let mut tasks = BTreeMap::new();
    for name in names {
        let profile = LengthProfile::measure(&name, &args.data_dir, &tokenizer, args.max_rows)?;
        let (i, t) = (&profile.input, &profile.target);
        println!(
            "{:<10} {:>10} {:>6}  {:>19} {:>5} {:>5} {:>5} {:>5}   {:>12} {:>4}",
            name, profile.split, profile.rows, i[0], i[10], i[18], i[19], i[20], t[10], t[20]
        );
        tasks.insert(dept_data::task(&name)?.name.to_string(), profile);
    }
    if let Some(out) = &args.out {
        let file = ProfileFile {
            generator: format!(
                "dept bench profile --data-dir {} --tokenizer {} --max-rows {} --out {}",
                args.data_dir.display(),
                args.tokenizer.display(),
                args.max_rows,
                out.display()
            ),
            tokenizer: args.tokenizer.display().to_string(),
            max_rows: args.max_rows,
            tasks,
        };
        let text = serde_json::to_string_pretty(&file)? + "\n";
        dept_core::atomic::write_atomically(out, |tmp| std::fs::write(tmp, &text))
            .map_err(|e| BenchError::io("writing", out, e))?;
        println!("wrote {}", out.display());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_match_numpy_linear() {
        // numpy.quantile(range(1, 12), [0, .05, .5, 1]) = 1, 1.5, 6, 11.
        let q = quantiles((1..=11).map(f64::from).collect());
        assert_eq!((q[0], q[1], q[10], q[20]), (1.0, 1.5, 6.0, 11.0));
    }

    #[test]
    fn sampling_follows_the_quantiles() {
        let q: Vec<f64> = (0..QUANTILES).map(|i| 10.0 + 5.0 * i as f64).collect(); // uniform on [10, 110]
        assert_eq!(inverse_cdf(&q, 0.0), 10);
        assert_eq!(inverse_cdf(&q, 0.5), 60);
        assert_eq!(inverse_cdf(&q, 0.999_999), 110);
        tch::manual_seed(0);
        let profile = LengthProfile {
            rows: 1,
            split: "train".into(),
            input: q.clone(),
            target: vec![3.0; QUANTILES],
        };
        let drawn = profile.draw(4000, 100).unwrap();
        let below_35 = drawn.iter().filter(|(i, _)| *i <= 35).count() as f64 / 4000.0;
        assert!((below_35 - 0.255).abs() < 0.03, "{below_35}");
        assert!(drawn
            .iter()
            .all(|&(i, t)| (10..=100).contains(&i) && t == 3));
        assert!((profile.share_over(100) - 0.1).abs() < 1e-9);
        assert_eq!(profile.share_over(200), 0.0);
    }

    #[test]
    fn every_glue_and_superglue_task_with_data_is_built_in() {
        let file = builtin_file().unwrap();
        for name in [
            "rte", "mrpc", "sst2", "cola", "stsb", "qnli", "boolq", "cb", "wic", "wsc", "multirc",
        ] {
            let p = &file.tasks[name];
            assert_eq!(
                (p.input.len(), p.target.len()),
                (QUANTILES, QUANTILES),
                "{name}"
            );
            assert!(p.input.windows(2).all(|w| w[0] <= w[1]), "{name}");
            assert!(p.rows > 0);
        }
        assert!(LengthProfile::builtin("no-such-task").is_err());
    }

    #[test]
    fn spans_parse_or_say_what_was_expected() {
        assert_eq!(parse_span("32:128"), Ok((32, 128)));
        assert!(parse_span("32-128")
            .unwrap_err()
            .to_string()
            .contains("MIN:MAX"));
    }
}
