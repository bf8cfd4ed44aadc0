//! The text-to-text example every task produces.

use serde::Serialize;

/// One formatted example: what the model reads, what it must write, and what scoring needs besides.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TextExample {
    /// Id of the source row (the hub dataset's `idx`, MultiRC `paragraph-question-answer`, an MRQA `qid`, ...).
    pub id: String,
    /// Model input, e.g. `sentence1: ... sentence2: ...`.
    pub input: String,
    /// Model target, e.g. a label id `"1"`, an STS-B score `"3.8"` or an answer span.
    pub target: String,
    /// Fields that scoring needs but the model does not see.
    #[serde(skip_serializing_if = "Extra::is_empty")]
    pub extra: Extra,
}

/// Scoring side information.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Extra {
    /// MultiRC: the question the answer belongs to (`paragraph-question`); exact match is averaged per group.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    /// SQuAD / MRQA / ReCoRD: every gold answer, for max-over-gold scoring. VQA: the annotators' raw answers in
    /// file order (usually 10), for VQA accuracy. COCO captions (validation/test): every reference caption.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub answers: Vec<String>,
    /// VQA / COCO captions: the id of the image the example is about, as image feature files are keyed
    /// (VL-T5's `img_id`: `COCO_val2014_000000393225`, the COCO file name without its extension).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    /// VQA: the score of the target answer in `label` (0 when no answer is scored), by which VL-Adapter weights the
    /// example's loss (`vqa_model.py`: per-example mean over target tokens × score, then the batch mean).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub loss_weight: Option<f64>,
}

impl Extra {
    /// True when there is nothing to carry.
    pub fn is_empty(&self) -> bool {
        self.group.is_none()
            && self.answers.is_empty()
            && self.image.is_none()
            && self.loss_weight.is_none()
    }
}
