//! CLIP-T5 (VL-T5 with CLIP features, as VL-Adapter runs it and the DePT paper's Table 3 uses it): a frozen T5 whose
//! encoder reads the text tokens followed by visual tokens, one per CLIP feature vector. The visual tokens come from
//! a small module, [`VisualEmbedding`], trained alongside the adapter with its own learning rate.
//!
//! With a DePT adapter the encoder input is `[soft prompt (m) | text, updated by A·B (len) | visual tokens (n)]`,
//! the mask covering all three: the adapter changes the text embeddings before the visual tokens are appended,
//! which is where VL-T5 appends them (`inputs_embeds = torch.cat([inputs_embeds, vis_embeds], dim=1)` in
//! `VL-T5/src/modeling_t5.py`, `JointEncoder.forward`), and the prompt goes in front, inside the text part, as
//! VL-T5's own prompts do.
//!
//! VL-T5's encoder gives T5's relative position bias to the prompt and text positions only: the bias is computed
//! for those `L` positions and is zero wherever a visual token is the query or the key (`position_bias[:, :, :L,
//! :L] = text_position_bias`, `JointEncoder.forward`). So here too; a consequence is that padding the text, to the
//! longest input or to `s`, changes no number, as for text-only DePT. Where a visual token sits in the image reaches
//! the encoder only through the object-order embedding (below).

use std::path::Path;

use tch::nn::{Init, VarStore};
use tch::{Device, Kind, Tensor};

use crate::backbone::{Backbone, BackboneOutput};
use crate::registry::{VisionLanguageKind, VisualInput};
use crate::rows::DecodingRows;
use crate::t5::T5;
use crate::{Architecture, ModelError};

/// CLIP-T5 in the backbone registry ([`crate::VISION_LANGUAGE_BACKBONES`]): read on a T5 folder.
pub const KIND: VisionLanguageKind = VisionLanguageKind {
    label: "CLIP-T5",
    text_kind: crate::t5::KIND.name,
    text_label: crate::t5::KIND.label,
    load: load_for_features,
};

/// [`ClipT5::load`] as the registry's loader.
fn load_for_features(
    dir: &Path,
    device: Device,
    visual: VisualInput,
) -> Result<Box<dyn Backbone>, ModelError> {
    Ok(Box::new(ClipT5::load(dir, visual, device)?))
}

/// VL-T5's `config.n_images` (`trainer_base.py`): rows of the image-order embedding (a single image uses row 0).
pub const N_IMAGES: i64 = 2;

/// VL-T5's `VisualEmbedding` as VL-Adapter uses it for CLIP grid features (its defaults
/// `individual_vis_layer_norm`, `use_vis_layer_norm` and `use_vis_order_embedding` on), for visual token `i`:
///
/// `token_i = LN_f(W_f·x_i + b_f) + LN_p(W_p·[box_i, area_i] + b_p) + E_img[0] + E_obj[i]`
///
/// with T5's RMS layer norm. The variables carry VL-T5's names (`encoder.visual_embedding.…`).
///
/// - VL-Adapter's CLIP loaders give every visual token the box `(0, 0, 0, 0)` (`boxes = torch.zeros(feats.shape[0],
///   4)` in `vqa_clip_data.py` and `caption_clip_data.py`), so the box term is `LN_p(b_p)`, one trained vector; it
///   is computed that way, and `W_p` (which never receives a gradient there either) is kept for VL-T5's layout
///   and parameter count.
/// - `E_img` (`img_order_embedding`, `N_IMAGES` rows, trained) is read at row 0 for a single image.
/// - `E_obj`: VL-T5 reads the *word embeddings* at row `V − 1 − i` of its vocabulary, resized to `V = 32,200` for its
///   100 `<vis_extra_id_*>` tokens; those rows are new, drawn N(0, 1) (`nn.Embedding`'s init) when the checkpoint
///   is resized, and stay frozen with the word embeddings. Here they are that: `tokens` frozen N(0, 1) rows
///   (`obj_order_embedding.weight`, row `i` for token `i`), saved with the adapter. (For t5-base, whose 32,128 rows grow
///   by 72, VL-T5's token 72 onwards would read the checkpoint's own rows instead: its unused padding rows, then
///   from token 100 its sentinels; these stay random.)
///
/// Weights and biases of the linear maps start uniform in ±1/√fan_in (PyTorch's `nn.Linear` init, which VL-T5's
/// `_init_weights` leaves alone), layer norms at one, the embeddings N(0, 1).
pub struct VisualEmbedding {
    vs: VarStore,
    feat_weight: Tensor,
    feat_bias: Tensor,
    feat_norm: Tensor,
    pos_bias: Tensor,
    pos_norm: Tensor,
    img_order: Tensor,
    obj_order: Tensor,
    eps: f64,
    feat_dim: i64,
    tokens: i64,
}

impl VisualEmbedding {
    /// A module from `tokens` visual tokens of `feat_dim`-wide features to `d_model`, randomly initialised (under the
    /// caller's seed).
    pub fn new(
        feat_dim: i64,
        tokens: i64,
        d_model: i64,
        eps: f64,
        device: Device,
    ) -> Result<Self, ModelError> {
        if feat_dim <= 0 || tokens <= 0 || d_model <= 0 {
            return Err(ModelError::Input(format!(
                "visual embedding sizes must be positive, got feature width {feat_dim}, {tokens} visual tokens and \
                 model width {d_model}"
            )));
        }
        let vs = VarStore::new(device);
        let root = vs.root() / "encoder" / "visual_embedding";
        let uniform = |fan_in: i64| {
            let bound = 1.0 / (fan_in as f64).sqrt();
            Init::Uniform {
                lo: -bound,
                up: bound,
            }
        };
        let normal = Init::Randn {
            mean: 0.0,
            stdev: 1.0,
        };
        let feat = &root / "feat_embedding";
        let feat_weight = (&feat / 0).var("weight", &[d_model, feat_dim], uniform(feat_dim));
        let feat_bias = (&feat / 0).var("bias", &[d_model], uniform(feat_dim));
        let feat_norm = (&feat / 1).var("weight", &[d_model], Init::Const(1.0));
        let pos = &root / "absolute_vis_pos_embedding";
        let pos_weight = (&pos / 0).var("weight", &[d_model, 5], uniform(5));
        let pos_bias = (&pos / 0).var("bias", &[d_model], uniform(5));
        let pos_norm = (&pos / 1).var("weight", &[d_model], Init::Const(1.0));
        let img_order = (&root / "img_order_embedding").var("weight", &[N_IMAGES, d_model], normal);
        let obj_order = (&root / "obj_order_embedding").var("weight", &[tokens, d_model], normal);
        // Rows of VL-T5's word embeddings, which stay frozen. (W_p is trainable in VL-T5 and counted here as it is
        // there, but being multiplied only by zero boxes it never gets a gradient, so it never moves.)
        let _ = pos_weight;
        let _ = obj_order.set_requires_grad(false);
        Ok(VisualEmbedding {
            vs,
            feat_weight,
            feat_bias,
            feat_norm,
            pos_bias,
            pos_norm,
            img_order,
            obj_order,
            eps,
            feat_dim,
            tokens,
        })
    }

    pub fn feat_dim(&self) -> i64 {
        self.feat_dim
    }

    /// Visual tokens per image.
    pub fn tokens(&self) -> i64 {
        self.tokens
    }

    /// `[b, tokens, feat_dim]` features (any float kind and device) → `[b, tokens, d_model]` fp32 tokens.
    pub fn forward(&self, features: &Tensor) -> Result<Tensor, ModelError> {
        let size = features.size();
        if size.len() != 3 || size[1] != self.tokens || size[2] != self.feat_dim {
            return Err(ModelError::Input(format!(
                "visual features must be [batch, {}, {}] (the tokens and width the visual embedding was built \
                 for), got {size:?}: the feature file and the model or adapter do not belong together",
                self.tokens, self.feat_dim
            )));
        }
        let x = features.to_device(self.vs.device()).to_kind(Kind::Float);
        let feat = rms_norm(
            &x.linear(&self.feat_weight, Some(&self.feat_bias)),
            &self.feat_norm,
            self.eps,
        );
        let pos = rms_norm(&self.pos_bias, &self.pos_norm, self.eps);
        Ok(feat + pos + self.img_order.get(0) + &self.obj_order)
    }

    /// Every variable with its checkpoint name, sorted by name; the trained ones require gradients.
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

/// A frozen T5 with a [`VisualEmbedding`]: a [`Backbone`] whose encoder also reads visual tokens, with VL-T5's
/// position bias (text positions only).
pub struct ClipT5 {
    t5: T5,
    visual: VisualEmbedding,
}

impl ClipT5 {
    /// Loads the T5 of a Hugging Face folder and builds a fresh visual embedding for `visual`'s tokens and width,
    /// initialised under its seed so that a run and its resumption start from the same weights (trained weights
    /// are copied in by whoever saved them, see [`Backbone::trainable_parameters`]).
    pub fn load(dir: &Path, visual: VisualInput, device: Device) -> Result<Self, ModelError> {
        let t5 = T5::load(dir, device)?;
        tch::manual_seed(visual.seed);
        Self::new(t5, visual.width, visual.tokens)
    }

    pub fn new(t5: T5, feat_dim: i64, tokens: i64) -> Result<Self, ModelError> {
        let c = t5.config();
        let visual = VisualEmbedding::new(
            feat_dim,
            tokens,
            c.d_model,
            c.layer_norm_epsilon,
            t5.device(),
        )?;
        Ok(ClipT5 { t5, visual })
    }

    pub fn t5(&self) -> &T5 {
        &self.t5
    }

    pub fn visual_embedding(&self) -> &VisualEmbedding {
        &self.visual
    }

    /// The encoder positions that get position bias: all but the visual tokens at the end.
    fn text_span(&self, embeds: &Tensor) -> Result<i64, ModelError> {
        let n = embeds.size().get(1).copied().unwrap_or(0);
        let span = n - self.visual.tokens();
        if span < 0 {
            return Err(ModelError::Input(format!(
                "CLIP-T5 got {n} encoder positions, fewer than its {} visual tokens: join the visual features first \
                 (PromptedModel::with_visual)",
                self.visual.tokens()
            )));
        }
        Ok(span)
    }
}

impl Backbone for ClipT5 {
    fn architecture(&self) -> Architecture {
        Architecture::EncoderDecoder
    }

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

    /// `embeds` must end with the visual tokens ([`Backbone::join_visual`]).
    fn forward(
        &self,
        embeds: &Tensor,
        attention_mask: &Tensor,
        labels: &Tensor,
        train: bool,
    ) -> Result<BackboneOutput, ModelError> {
        let span = self.text_span(embeds)?;
        self.t5
            .forward_with_bias_span(embeds, attention_mask, labels, train, Some(span))
    }

    fn generate_greedy(
        &self,
        embeds: &Tensor,
        attention_mask: &Tensor,
        max_new_tokens: i64,
    ) -> Result<Tensor, ModelError> {
        let span = self.text_span(embeds)?;
        self.t5
            .generate_with_bias_span(embeds, attention_mask, max_new_tokens, Some(span))
    }

    /// Casts the frozen T5; the visual embedding stays fp32 (as the adapter does) and its tokens are cast to the
    /// word embeddings' kind where they join them.
    fn set_float_kind(&mut self, kind: Kind) -> Result<(), ModelError> {
        self.t5.set_float_kind(kind)
    }

    fn pad_token_id(&self) -> i64 {
        self.t5.pad_token_id()
    }

    fn eos_token_id(&self) -> i64 {
        self.t5.eos_token_id()
    }

    fn decoder_start_token_id(&self) -> Option<i64> {
        self.t5.decoder_start_token_id()
    }

    /// T5's row-by-row decoding, the encoder's position bias on the text positions only (as
    /// [`Backbone::generate_greedy`]); `embeds` must end with the visual tokens.
    fn start_rows(
        &self,
        embeds: &Tensor,
        attention_mask: &Tensor,
    ) -> Result<(DecodingRows, Tensor), ModelError> {
        let span = self.text_span(embeds)?;
        self.t5
            .start_rows_with_bias_span(embeds, attention_mask, Some(span))
    }

    /// The encoder's output is in the rows' state already: the steps are T5's.
    fn step_rows(&self, rows: &mut DecodingRows, tokens: &Tensor) -> Result<Tensor, ModelError> {
        self.t5.step_rows(rows, tokens)
    }

    fn visual_width(&self) -> Option<i64> {
        Some(self.visual.feat_dim())
    }

    fn join_visual(
        &self,
        embeds: &Tensor,
        mask: &Tensor,
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
        Ok((
            Tensor::cat(&[embeds, &tokens], 1),
            Tensor::cat(&[mask, &ones], 1),
        ))
    }

    fn trainable_parameters(&self) -> Vec<(String, Tensor)> {
        self.visual.named_parameters()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_the_normed_projection_plus_trained_and_order_vectors() {
        tch::manual_seed(3);
        let v = VisualEmbedding::new(6, 3, 4, 1e-6, Device::Cpu).unwrap();
        let x = Tensor::randn([2, 3, 6], (Kind::Float, Device::Cpu));
        let out = v.forward(&x).unwrap();
        assert_eq!(out.size(), [2, 3, 4]);
        // By hand: Linear, RMS norm (weights one), plus the RMS-normed position bias.
        let y = x.matmul(&v.feat_weight.tr()) + &v.feat_bias;
        let rms =
            |t: &Tensor| t / (t.pow_tensor_scalar(2).mean_dim(-1, true, Kind::Float) + 1e-6).sqrt();
        let expected = rms(&y) + rms(&v.pos_bias) + v.img_order.get(0) + &v.obj_order;
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
                "encoder.visual_embedding.img_order_embedding.weight",
                "encoder.visual_embedding.obj_order_embedding.weight",
            ]
        );
        let trained: Vec<bool> = v
            .named_parameters()
            .iter()
            .map(|(_, t)| t.requires_grad())
            .collect();
        assert_eq!(trained, [true, true, true, true, true, true, true, false]);
        let wrong = v
            .forward(&Tensor::zeros([2, 3, 5], (Kind::Float, Device::Cpu)))
            .unwrap_err()
            .to_string();
        assert!(wrong.contains("[batch, 3, 6]"), "{wrong}");
    }
}
