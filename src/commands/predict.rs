//! `dept predict`: greedy predictions of a saved adapter for new inputs, as JSON lines.

use std::io::{BufRead, Write};
use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use clap::Args;
use dept_train::Inference;

use super::eval::InferenceArgs;

#[derive(Args)]
pub struct PredictArgs {
    /// Adapter folder, e.g. runs/rte-…/best.
    #[arg(long)]
    adapter: PathBuf,
    /// JSON lines with an `input` field (and optionally `id`); without it, plain text lines are read from stdin.
    #[arg(long, conflicts_with = "text")]
    input: Option<PathBuf>,
    /// One input text given directly.
    #[arg(long)]
    text: Option<String>,
    #[command(flatten)]
    overrides: InferenceArgs,
}

pub fn run(args: &PredictArgs) -> Result<()> {
    let rows = read_inputs(args)?;
    let inference = Inference::open(&args.adapter, &args.overrides.to_overrides())?;
    let inputs: Vec<String> = rows.iter().map(|(_, input)| input.clone()).collect();
    let predictions = inference.predict(&inputs)?;
    // Classification targets are label ids ("0"); the class name goes beside them for a person to read.
    let task = dept_data::task(&inference.config.task).ok();
    let mut stdout = std::io::stdout().lock();
    for ((id, input), prediction) in rows.iter().zip(predictions) {
        let mut line = serde_json::json!({"id": id, "input": input, "prediction": prediction});
        if let Some(name) = task.and_then(|t| t.label_name(&prediction)) {
            line["label"] = serde_json::json!(name);
        }
        if writeln!(stdout, "{line}").is_err() {
            break; // closed pipe (e.g. `| head`)
        }
    }
    Ok(())
}

/// `(id, input)` pairs; ids default to the line number.
fn read_inputs(args: &PredictArgs) -> Result<Vec<(serde_json::Value, String)>> {
    if let Some(text) = &args.text {
        return Ok(vec![(serde_json::json!(0), text.clone())]);
    }
    let mut rows = Vec::new();
    match &args.input {
        Some(path) => {
            let file =
                std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
            for (n, line) in std::io::BufReader::new(file).lines().enumerate() {
                let line = line.with_context(|| format!("{}: line {}", path.display(), n + 1))?;
                if line.trim().is_empty() {
                    continue;
                }
                let value: serde_json::Value = serde_json::from_str(&line).with_context(|| {
                    format!(
                        "{}: line {}: not JSON (expected {{\"input\": …}})",
                        path.display(),
                        n + 1
                    )
                })?;
                let Some(input) = value.get("input").and_then(|v| v.as_str()) else {
                    bail!(
                        "{}: line {}: no string field `input`",
                        path.display(),
                        n + 1
                    );
                };
                let id = value.get("id").cloned().unwrap_or(serde_json::json!(n));
                rows.push((id, input.to_string()));
            }
        }
        None => {
            for (n, line) in std::io::stdin().lock().lines().enumerate() {
                let line = line.context("reading stdin")?;
                if !line.trim().is_empty() {
                    rows.push((serde_json::json!(n), line));
                }
            }
        }
    }
    if rows.is_empty() {
        bail!("no inputs: give --text, --input FILE.jsonl, or lines on stdin");
    }
    Ok(rows)
}
