//! CLIP-T5 (VL-T5 with CLIP features, as VL-Adapter runs it and the DePT paper's Table 3 uses it): a frozen T5 whose
//! encoder reads the text tokens followed by visual tokens, one per CLIP feature vector. The visual tokens come from
//! a small trainable module, [`VisualEmbedding`], trained alongside the adapter with its own learning rate.
//!
//! With a DePT adapter the encoder input is `[soft prompt (m) | text, updated by A·B (len) | visual tokens (n)]`,
//! the mask covering all three: the adapter changes the text embeddings before the visual tokens are appended,
//! which is where VL-T5 appends them (`inputs_embeds = torch.cat([inputs_embeds, vis_embeds], dim=1)` in
//! `VL-T5/src/modeling_t5.py`, `JointEncoder.forward`), and the prompt goes in front as everywhere else.
//!
//! VL-T5 appends the visual tokens after the *padded* text, so T5's relative position bias between a word and an
//! image token depends on how far the batch was padded: results change with the batch's longest input (and with
//! padding to `s`), unlike text-only DePT, where padding changes no number. That is the default here, to match
//! VL-T5/VL-Adapter; [`VisualPosition::BeforeText`] puts the visual tokens between the prompt and the text
//! instead (`[prompt | visual | text | padding]`), where padding is at the end and changes nothing.

use std::path::Path;

use serde::{Deserialize, Serialize};
use tch::nn::{Init, VarStore};
use tch::{Device, Kind, Tensor};

use crate::backbone::{Backbone, BackboneOutput};
use crate::t5::T5;
use crate::ModelError;

/// The variables' names, VL-T5's (`encoder.visual_embedding.…`), so a VL-T5 projection loads by name.
pub const VISUAL_EMBEDDING_PREFIX: &str = "encoder.visual_embedding";

/// VL-T5's `VisualEmbedding` as VL-Adapter uses it for CLIP grid features (`use_vis_layer_norm` and
/// `individual_vis_layer_norm` on, its defaults):
///
/// `tokens = LN_f(W_f·x + b_f) + LN_p(W_p·[box, area] + b_p)`
///
/// with T5's RMS layer norm. VL-Adapter's CLIP loaders give every visual token the box `(0, 0, 0, 0)`
/// (`boxes = torch.zeros(feats.shape[0], 4)` in `vqa_clip_data.py` and `caption_clip_data.py`), so the second term
/// is `LN_p(b_p)`, one trained vector added to every token; it is computed that way here, and `W_p` is kept (and
/// saved) only so the parameter count and file match VL-T5's.
///
/// Left out: VL-T5's image- and object-order embeddings. The object-order one reads rows of the word embeddings
/// that VL-T5 adds for its 100 `<vis_extra_id_*>` tokens (vocabulary resized to 32,200), which a stock T5
/// checkpoint does not have; T5's relative position bias still tells the encoder where each visual token is.
pub struct VisualEmbedding {
    vs: VarStore,
    feat_weight: Tensor,
    feat_bias: Tensor,
    feat_norm: Tensor,
    pos_bias: Tensor,
    pos_norm: Tensor,
    eps: f64,
    feat_dim: i64,
}

impl VisualEmbedding {
    /// A trainable module from `feat_dim`-wide features to `d_model`, initialised as PyTorch initialises
    /// `nn.Linear` (VL-T5 leaves it so: `T5PreTrainedModel._init_weights` does not touch it): weights and biases
    /// uniform in ±1/√fan_in, layer norms one.
    pub fn new(feat_dim: i64, d_model: i64, eps: f64, device: Device) -> Result<Self, ModelError> {
        if feat_dim <= 0 || d_model <= 0 {
            return Err(ModelError::Input(format!(
                "visual embedding sizes must be positive, got feature width {feat_dim} and model width {d_model}"
            )));
        }
        let vs = VarStore::new(device);
        let root = vs.root();
        let uniform = |fan_in: i64| {
            let bound = 1.0 / (fan_in as f64).sqrt();
            Init::Uniform {
                lo: -bound,
                up: bound,
            }
        };
        let feat = &root / "encoder" / "visual_embedding" / "feat_embedding";
        let feat_weight = (&feat / 0).var("weight", &[d_model, feat_dim], uniform(feat_dim));
        let feat_bias = (&feat / 0).var("bias", &[d_model], uniform(feat_dim));
        let feat_norm = (&feat / 1).var("weight", &[d_model], Init::Const(1.0));
        let pos = &root / "encoder" / "visual_embedding" / "absolute_vis_pos_embedding";
        // Multiplied only by zero boxes, so it never moves; present for VL-T5's file layout and parameter count.
        let _pos_weight = (&pos / 0).var("weight", &[d_model, 5], uniform(5));
        let pos_bias = (&pos / 0).var("bias", &[d_model], uniform(5));
        let pos_norm = (&pos / 1).var("weight", &[d_model], Init::Const(1.0));
        Ok(VisualEmbedding {
            vs,
            feat_weight,
            feat_bias,
            feat_norm,
            pos_bias,
            pos_norm,
            eps,
            feat_dim,
        })
    }

    pub fn feat_dim(&self) -> i64 {
        self.feat_dim
    }

    /// `[b, n, feat_dim]` features (any float kind and device) → `[b, n, d_model]` fp32 tokens.
    pub fn forward(&self, features: &Tensor) -> Result<Tensor, ModelError> {
        let size = features.size();
        if size.len() != 3 || size[2] != self.feat_dim {
            return Err(ModelError::Input(format!(
                "visual features must be [batch, tokens, {}] (the width the visual projection was built for), \
                 got {size:?}: the feature file and the model or adapter do not belong together",
                self.feat_dim
            )));
        }
        let x = features.to_device(self.vs.device()).to_kind(Kind::Float);
        let feat = rms_norm(
            &x.linear(&self.feat_weight, Some(&self.feat_bias)),
            &self.feat_norm,
            self.eps,
        );
        let pos = rms_norm(&self.pos_bias, &self.pos_norm, self.eps);
        Ok(feat + pos)
    }

    /// The trainable tensors with their checkpoint names, sorted by name.
    pub fn named_parameters(&self) -> Vec<(String, Tensor)> {
        let mut named: Vec<(String, Tensor)> = self.vs.variables().into_iter().collect();
        named.sort_by(|a, b| a.0.cmp(&b.0));
        named
    }
}

/// T5's `T5LayerNorm`: scale by the root mean square over the last dimension (no mean, no bias).
fn rms_norm(x: &Tensor, weight: &Tensor, eps: f64) -> Tensor {
    let variance = x.pow_tensor_scalar(2).mean_dim(-1, true, Kind::Float);
    x * (variance + eps).rsqrt() * weight
}

/// Where the visual tokens go in the encoder's input.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VisualPosition {
    /// `[prompt | text | padding | visual]`: VL-T5's order (the default). Results depend on the padding.
    #[default]
    AfterText,
    /// `[prompt | visual | text | padding]`: padding to the longest input or to `s` gives the same numbers.
    BeforeText,
}

/// A frozen T5 with a trainable [`VisualEmbedding`]: a [`Backbone`] whose encoder also reads visual tokens.
pub struct ClipT5 {
    t5: T5,
    visual: VisualEmbedding,
    position: VisualPosition,
}

impl ClipT5 {
    /// Loads the T5 of a Hugging Face folder and builds a fresh visual embedding for `feat_dim`-wide features
    /// (trained weights are copied in by whoever saved them, see [`Backbone::trainable_parameters`]).
    pub fn load(dir: &Path, feat_dim: i64, device: Device) -> Result<Self, ModelError> {
        let t5 = T5::load(dir, device)?;
        Self::new(t5, feat_dim)
    }

    pub fn new(t5: T5, feat_dim: i64) -> Result<Self, ModelError> {
        let c = t5.config();
        let visual = VisualEmbedding::new(feat_dim, c.d_model, c.layer_norm_epsilon, t5.device())?;
        Ok(ClipT5 {
            t5,
            visual,
            position: VisualPosition::default(),
        })
    }

    /// The same model placing its visual tokens at `position`.
    pub fn with_visual_position(self, position: VisualPosition) -> Self {
        ClipT5 { position, ..self }
    }

    pub fn visual_position(&self) -> VisualPosition {
        self.position
    }

    pub fn t5(&self) -> &T5 {
        &self.t5
    }

    pub fn visual_embedding(&self) -> &VisualEmbedding {
        &self.visual
    }
}

impl Backbone for ClipT5 {
    fn hidden_size(&self) -> i64 {
        self.t5.hidden_size()
    }

    fn vocab_size(&self) -> i64 {
        self.t5.vocab_size()
    }

    fn device(&self) -> Device {
        self.t5.device()
    }

    fn embed(&self, input_ids: &Tensor) -> Tensor {
        self.t5.embed(input_ids)
    }

    fn forward(
        &self,
        embeds: &Tensor,
        attention_mask: &Tensor,
        labels: &Tensor,
        train: bool,
    ) -> Result<BackboneOutput, ModelError> {
        self.t5.forward(embeds, attention_mask, labels, train)
    }

    fn generate_greedy(
        &self,
        embeds: &Tensor,
        attention_mask: &Tensor,
        max_new_tokens: i64,
    ) -> Result<Tensor, ModelError> {
        self.t5
            .generate_greedy(embeds, attention_mask, max_new_tokens)
    }

    /// Casts the frozen T5; the trainable visual embedding stays fp32 (as the adapter does) and its tokens are cast
    /// to the word embeddings' kind where they join them.
    fn set_float_kind(&mut self, kind: Kind) -> Result<(), ModelError> {
        self.t5.set_float_kind(kind)
    }

    fn pad_token_id(&self) -> i64 {
        self.t5.pad_token_id()
    }

    fn eos_token_id(&self) -> i64 {
        self.t5.eos_token_id()
    }

    fn visual_width(&self) -> Option<i64> {
        Some(self.visual.feat_dim())
    }

    fn join_visual(
        &self,
        embeds: &Tensor,
        mask: &Tensor,
        prompt_len: i64,
        features: &Tensor,
    ) -> Result<(Tensor, Tensor), ModelError> {
        let tokens = self.visual.forward(features)?;
        let (b, n) = (tokens.size()[0], tokens.size()[1]);
        if b != embeds.size()[0] {
            return Err(ModelError::Input(format!(
                "visual features for {b} examples, text for {}",
                embeds.size()[0]
            )));
        }
        let tokens = tokens.to_kind(embeds.kind());
        let ones = Tensor::ones([b, n], (mask.kind(), mask.device()));
        Ok(match self.position {
            VisualPosition::AfterText => (
                Tensor::cat(&[embeds, &tokens], 1),
                Tensor::cat(&[mask, &ones], 1),
            ),
            VisualPosition::BeforeText => {
                let len = embeds.size()[1] - prompt_len;
                (
                    Tensor::cat(
                        &[
                            embeds.narrow(1, 0, prompt_len),
                            tokens,
                            embeds.narrow(1, prompt_len, len),
                        ],
                        1,
                    ),
                    Tensor::cat(
                        &[
                            mask.narrow(1, 0, prompt_len),
                            ones,
                            mask.narrow(1, prompt_len, len),
                        ],
                        1,
                    ),
                )
            }
        })
    }

    fn trainable_parameters(&self) -> Vec<(String, Tensor)> {
        self.visual.named_parameters()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_the_normed_projection_plus_one_trained_vector() {
        tch::manual_seed(3);
        let v = VisualEmbedding::new(6, 4, 1e-6, Device::Cpu).unwrap();
        let x = Tensor::randn([2, 3, 6], (Kind::Float, Device::Cpu));
        let out = v.forward(&x).unwrap();
        assert_eq!(out.size(), [2, 3, 4]);
        // By hand: Linear, RMS norm (weights one), plus the RMS-normed position bias.
        let y = x.matmul(&v.feat_weight.tr()) + &v.feat_bias;
        let rms =
            |t: &Tensor| t / (t.pow_tensor_scalar(2).mean_dim(-1, true, Kind::Float) + 1e-6).sqrt();
        let expected = rms(&y) + rms(&v.pos_bias);
        assert!(out.allclose(&expected, 1e-6, 1e-6, false));
        let names: Vec<String> = v.named_parameters().into_iter().map(|(n, _)| n).collect();
        assert_eq!(
            names,
            [
                "encoder.visual_embedding.absolute_vis_pos_embedding.0.bias",
                "encoder.visual_embedding.absolute_vis_pos_embedding.0.weight",
                "encoder.visual_embedding.absolute_vis_pos_embedding.1.weight",
                "encoder.visual_embedding.feat_embedding.0.bias",
                "encoder.visual_embedding.feat_embedding.0.weight",
                "encoder.visual_embedding.feat_embedding.1.weight",
            ]
        );
        let wrong = v
            .forward(&Tensor::zeros([2, 3, 5], (Kind::Float, Device::Cpu)))
            .unwrap_err()
            .to_string();
        assert!(wrong.contains("[batch, tokens, 6]"), "{wrong}");
    }
}
