//! `dept predict`: predictions of a saved adapter for new inputs (greedy, or beam search with `--num-beams`), as
//! JSON lines.

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
    /// JSON lines with an `input` field (and optionally `id`, and `image` for a CLIP-T5 adapter: the image's id in
    /// its feature file); without it, plain text lines are read from stdin.
    #[arg(long, conflicts_with = "text")]
    input: Option<PathBuf>,
    /// One input text given directly.
    #[arg(long)]
    text: Option<String>,
    /// With --text, for a CLIP-T5 adapter: the image's id in the feature file (e.g. COCO_val2014_000000391895).
    #[arg(long, requires = "text")]
    image: Option<String>,
    #[command(flatten)]
    overrides: InferenceArgs,
}

pub fn run(args: &PredictArgs) -> Result<()> {
    let rows = read_inputs(args)?;
    let inference = Inference::open(&args.adapter, &args.overrides.to_overrides())?;
    let inputs: Vec<String> = rows.iter().map(|row| row.input.clone()).collect();
    let images: Vec<Option<String>> = rows.iter().map(|row| row.image.clone()).collect();
    let predictions = inference.predict_with_images(&inputs, &images)?;
    // Classification targets are label ids ("0"); the class name goes beside them for a person to read.
    let task = dept_data::task(&inference.config.task).ok();
    let mut stdout = std::io::stdout().lock();
    for (row, prediction) in rows.iter().zip(predictions) {
        let mut line =
            serde_json::json!({"id": row.id, "input": row.input, "prediction": prediction});
        if let Some(image) = &row.image {
            line["image"] = serde_json::json!(image);
        }
        if let Some(name) = task.and_then(|t| t.label_name(&prediction)) {
            line["label"] = serde_json::json!(name);
        }
        if writeln!(stdout, "{line}").is_err() {
            break; // closed pipe (e.g. `| head`)
        }
    }
    Ok(())
}

/// One input to predict for.
struct Row {
    /// Defaults to the line number.
    id: serde_json::Value,
    input: String,
    image: Option<String>,
}

fn read_inputs(args: &PredictArgs) -> Result<Vec<Row>> {
    if let Some(text) = &args.text {
        return Ok(vec![Row {
            id: serde_json::json!(0),
            input: text.clone(),
            image: args.image.clone(),
        }]);
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
                let image = match value.get("image") {
                    None | Some(serde_json::Value::Null) => None,
                    Some(serde_json::Value::String(image)) => Some(image.clone()),
                    Some(other) => bail!(
                        "{}: line {}: `image` must be a string (the image id), got {other}",
                        path.display(),
                        n + 1
                    ),
                };
                rows.push(Row {
                    id: value.get("id").cloned().unwrap_or(serde_json::json!(n)),
                    input: input.to_string(),
                    image,
                });
            }
        }
        None => {
            for (n, line) in std::io::stdin().lock().lines().enumerate() {
                let line = line.context("reading stdin")?;
                if !line.trim().is_empty() {
                    rows.push(Row {
                        id: serde_json::json!(n),
                        input: line,
                        image: None,
                    });
                }
            }
        }
    }
    if rows.is_empty() {
        bail!("no inputs: give --text, --input FILE.jsonl, or lines on stdin");
    }
    Ok(rows)
}
