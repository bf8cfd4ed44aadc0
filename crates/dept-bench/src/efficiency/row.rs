//! One measured variant of the efficiency study, shared by the table, the CSV and the plots.

use dept_train::memory::PeakMemory;

/// What sits in front of the frozen backbone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Variant {
    /// The backbone alone on the same tokens: no prompt, no update (gradients still flow to the input
    /// embeddings, as every input-side method needs). The floor no adapter can go under.
    Floor,
    /// Prompt tuning with `l` soft tokens.
    Pt { l: i64 },
    /// DePT with `m` soft tokens and a rank-`r` pair.
    Dept { m: i64, r: i64 },
}

impl Variant {
    pub fn label(self) -> String {
        match self {
            Variant::Floor => "backbone alone".into(),
            Variant::Pt { l } => format!("PT l={l}"),
            Variant::Dept { m, r } => format!("DePT m={m} r={r}"),
        }
    }
}

/// How batches were padded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PaddingMode {
    /// Every input padded to s (the official code).
    MaxLength,
    /// Each batch padded to its longest input.
    Longest,
}

impl PaddingMode {
    pub fn as_str(self) -> &'static str {
        match self {
            PaddingMode::MaxLength => "max_length",
            PaddingMode::Longest => "longest",
        }
    }
}

/// Median and spread of repeated timings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Stats {
    pub median: f64,
    pub min: f64,
    pub max: f64,
}

impl Stats {
    /// Of at least one value.
    pub fn of(mut values: Vec<f64>) -> Self {
        values.sort_by(f64::total_cmp);
        let n = values.len();
        let median = if n % 2 == 1 {
            values[n / 2]
        } else {
            (values[n / 2 - 1] + values[n / 2]) / 2.0
        };
        Stats {
            median,
            min: values[0],
            max: values[n - 1],
        }
    }
}

/// One variant on one shape with one padding.
#[derive(Debug, Clone)]
pub struct Row {
    /// `t5-small`, `t5-base`, `t5-large`.
    pub shape: String,
    pub padding: PaddingMode,
    pub variant: Variant,
    /// Trainable parameters (0 for the floor).
    pub params: i64,
    /// Training step (forward, backward, clipping, AdamW), milliseconds.
    pub step_ms: Stats,
    /// Batch size ÷ median step time.
    pub examples_per_s: f64,
    pub peak: Option<PeakMemory>,
    /// Greedy decoding throughput (batch size ÷ median batch time); `None` when inference was skipped.
    pub inference_samples_per_s: Option<f64>,
    /// Greedy decoding of one batch, milliseconds.
    pub inference_ms: Option<Stats>,
}
