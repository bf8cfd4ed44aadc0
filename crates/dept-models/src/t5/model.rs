//! T5 (v1 and v1.1 / Flan layouts) on tch, run on input embeddings, frozen, with the loss and greedy decoding a
//! prompt tuner needs. Variables carry the Hugging Face checkpoint names (`encoder.block.0.layer.0.SelfAttention.q
//! .weight`, …), so `model.safetensors` loads as it is.
//!
//! Our own module rather than rust-bert's: rust-bert's T5 forms attention scores with `einsum` and fills a decoder
//! cache even in training, which made a training step about 1.85× slower than transformers' at the same shapes.
//! Here attention is a plain `matmul`, the relative-position bias is computed once per stack and shared by its
//! layers (as transformers does), training runs no cache, and greedy decoding runs the encoder once and keeps each
//! decoder layer's keys and values (cross-attention ones computed once).

use std::path::Path;

use tch::nn::{Init, Path as VarPath, VarStore};
use tch::{Device, Kind, Tensor};

use crate::backbone::{Backbone, BackboneOutput};
use crate::checkpoint::{self, LoadPlan};
use crate::layers::{
    additive_causal_mask, additive_padding_mask, at_least_fp32, linear, upcast_16_bit, NormCast,
    RmsNorm,
};
use crate::layout::{length_buckets, BUCKET_PADDING};
use crate::rows::{DecodingRows, Side, Slot};
use crate::t5::{FeedForward, T5Config};
use crate::{Architecture, ModelError};

/// A frozen T5 encoder-decoder. Its variables live in their own [`VarStore`] with gradients switched off, so an
/// optimiser over the adapter's store never sees (or keeps state for) the backbone.
pub struct T5 {
    config: T5Config,
    vs: VarStore,
    /// `shared.weight`, the word embeddings the adapter's inputs are built from (and, tied, the output layer).
    shared: Tensor,
    encoder: Stack,
    decoder: Stack,
    /// `lm_head.weight` when the output layer is not tied to `shared` (v1.1 / Flan).
    lm_head: Option<Tensor>,
}

/// Tied checkpoints may hold the word embeddings under the encoder's or decoder's name only.
const SHARED_ALIASES: &[(&str, &str)] = &[
    ("shared.weight", "encoder.embed_tokens.weight"),
    ("shared.weight", "decoder.embed_tokens.weight"),
];

impl T5 {
    /// Loads `config.json` and `model.safetensors` (or its shards) from a Hugging Face folder.
    pub fn load(dir: &Path, device: Device) -> Result<Self, ModelError> {
        let (path, value) = checkpoint::read_config(dir)?;
        let config = T5Config::from_json(&path, value)?;
        let mut t5 = Self::new_random(&config, device)?;
        let plan = LoadPlan {
            aliases: SHARED_ALIASES,
            ..LoadPlan::default()
        };
        checkpoint::load_weights(&mut t5.vs, dir, &plan)?;
        Ok(t5)
    }

    /// A model with transformers' random initialisation (`T5PreTrainedModel._init_weights`, factor 1): for tests
    /// and benchmarks, and as the skeleton `load` fills.
    pub fn new_random(config: &T5Config, device: Device) -> Result<Self, ModelError> {
        let feed_forward = config.feed_forward()?;
        let mut vs = VarStore::new(device);
        let root = vs.root();
        let shared =
            (&root / "shared").var("weight", &[config.vocab_size, config.d_model], normal(1.0));
        let encoder = Stack::new(&(&root / "encoder"), config, feed_forward, false);
        let decoder = Stack::new(&(&root / "decoder"), config, feed_forward, true);
        let lm_head = (!config.tie_word_embeddings).then(|| {
            (&root / "lm_head").var("weight", &[config.vocab_size, config.d_model], normal(1.0))
        });
        vs.freeze();
        Ok(T5 {
            config: config.clone(),
            vs,
            shared,
            encoder,
            decoder,
            lm_head,
        })
    }

    /// Writes `config.json` and `model.safetensors` in the Hugging Face layout (tiny test models, conversions).
    pub fn save(&self, dir: &Path) -> Result<(), ModelError> {
        checkpoint::save_folder(dir, &self.config.to_hf_json(), &self.vs)
    }

    pub fn config(&self) -> &T5Config {
        &self.config
    }

    /// The backbone's variables, named as in Hugging Face checkpoints (e.g. to save a tiny test model).
    pub fn var_store(&self) -> &VarStore {
        &self.vs
    }

    /// HF's `_shift_right`: the decoder sees the start token, then the targets with `-100` turned into padding.
    fn decoder_inputs(&self, labels: &Tensor) -> Tensor {
        let batch = labels.size()[0];
        let start = Tensor::full(
            [batch, 1],
            self.config.decoder_start_token_id,
            (Kind::Int64, labels.device()),
        );
        let len = labels.size()[1];
        let shifted = Tensor::cat(&[start, labels.narrow(1, 0, len - 1)], 1);
        shifted.masked_fill(&shifted.eq(-100), self.config.pad_token_id)
    }

    fn check_inputs(&self, embeds: &Tensor, attention_mask: &Tensor) -> Result<(), ModelError> {
        let (e, m) = (embeds.size(), attention_mask.size());
        if e.len() != 3 || e[2] != self.config.d_model {
            return Err(ModelError::Input(format!(
                "input embeddings must be [batch, len, {}], got {e:?}",
                self.config.d_model
            )));
        }
        if m != e[..2] {
            return Err(ModelError::Input(format!(
                "attention mask {m:?} does not match input embeddings {e:?}"
            )));
        }
        Ok(())
    }

    fn dropout(&self, train: bool) -> f64 {
        if train {
            self.config.dropout_rate
        } else {
            0.0
        }
    }

    /// Encoder states `[b, n, d]` of input embeddings, and the additive mask `[b, 1, 1, n]` (0 or the dtype's
    /// minimum) that attention to them uses. Public for per-part timing (`dept bench reference`); training and
    /// decoding go through [`Backbone`].
    pub fn encode(
        &self,
        embeds: &Tensor,
        attention_mask: &Tensor,
        train: bool,
    ) -> (Tensor, Tensor) {
        self.encode_with_bias_span(embeds, attention_mask, train, None)
    }

    /// [`T5::encode`] with the relative position bias on the first `span` positions only (queries and keys),
    /// zero wherever a later position is involved: VL-T5's `JointEncoder`, where only the (prompt and) text
    /// tokens get position bias and the visual tokens after them get none. `None`: every position, as T5.
    pub fn encode_with_bias_span(
        &self,
        embeds: &Tensor,
        attention_mask: &Tensor,
        train: bool,
        span: Option<i64>,
    ) -> (Tensor, Tensor) {
        let p = self.dropout(train);
        let mask = additive_padding_mask(attention_mask, embeds.kind());
        let n = embeds.size()[1];
        let position = match span {
            Some(l) if l < n => {
                let l = l.max(0);
                self.encoder
                    .position_bias(l, l, 0)
                    .constant_pad_nd([0, n - l, 0, n - l])
            }
            _ => self.encoder.position_bias(n, n, 0),
        };
        let bias = position + &mask;
        let out = self.encoder.forward(embeds, &bias, None, p);
        (out, mask)
    }

    /// The encoder's pass before decoding: [`T5::encode_with_bias_span`] without dropout, with the rows of a
    /// back-padded batch encoded in buckets of similar length ([`length_buckets`]), each padded to its own widest
    /// row instead of the batch's. A row's states do not depend on the others', and attention gives its padded keys
    /// no weight, so its states are those of the whole batch's pass up to the rounding of a narrower product (the
    /// same bits at t5-small's shape on this project's machine: `dept bench decode` checks the tokens against
    /// transformers'); the positions past a row's end, which every reader masks, are zero. On a CPU the encoder's cost follows the padded width (a batch of 32 rows of 84 to 188
    /// embeddings is about a quarter cheaper). Rows whose mask has holes, and VL-T5's bias span, keep one pass.
    fn encode_for_decoding(
        &self,
        embeds: &Tensor,
        attention_mask: &Tensor,
        span: Option<i64>,
    ) -> Result<(Tensor, Tensor), ModelError> {
        let lengths = match span {
            None => back_padded_lengths(attention_mask)?,
            Some(_) => None,
        };
        let Some(lengths) = lengths else {
            return Ok(self.encode_with_bias_span(embeds, attention_mask, false, span));
        };
        let mut order: Vec<usize> = (0..lengths.len()).collect();
        order.sort_by_key(|&row| lengths[row]);
        let widths: Vec<usize> = order.iter().map(|&row| lengths[row]).collect();
        let buckets = length_buckets(&widths, BUCKET_PADDING);
        if buckets.len() <= 1 {
            return Ok(self.encode_with_bias_span(embeds, attention_mask, false, None));
        }
        let device = embeds.device();
        let out = embeds.zeros_like();
        let mut start = 0;
        for size in buckets {
            let rows: Vec<i64> = order[start..start + size]
                .iter()
                .map(|&r| r as i64)
                .collect();
            let width = widths[start + size - 1].max(1) as i64;
            start += size;
            let index = Tensor::from_slice(&rows).to_device(device);
            let (encoded, _) = self.encode_with_bias_span(
                &embeds.index_select(0, &index).narrow(1, 0, width),
                &attention_mask.index_select(0, &index).narrow(1, 0, width),
                false,
                None,
            );
            let _ = out.narrow(1, 0, width).index_copy_(0, &index, &encoded);
        }
        Ok((out, additive_padding_mask(attention_mask, embeds.kind())))
    }

    /// Teacher-forced decoder over `labels` (shifted right) attending to encoder states: `[b, t, vocab]` logits,
    /// upcast to fp32 when the model is 16-bit (so the softmax and loss are fp32, as autocast does).
    pub fn decode(
        &self,
        labels: &Tensor,
        encoded: &Tensor,
        encoder_mask: &Tensor,
        train: bool,
    ) -> Tensor {
        let p = self.dropout(train);
        let decoder_embeds = self.embed(&self.decoder_inputs(labels));
        let t = labels.size()[1];
        let self_bias = self.decoder.position_bias(t, t, 0)
            + additive_causal_mask(t, decoder_embeds.kind(), encoded.device());
        let cross = CrossInput {
            states: encoded,
            mask: encoder_mask,
        };
        let hidden = self
            .decoder
            .forward(&decoder_embeds, &self_bias, Some(&cross), p);
        upcast_16_bit(self.logits(&hidden))
    }

    /// Mean cross-entropy of `[b, t, vocab]` logits over targets that are not `-100`.
    pub fn loss(&self, logits: &Tensor, labels: &Tensor) -> Tensor {
        crate::backbone::token_loss(logits, labels)
    }

    /// `[b, t, d]` decoder states → `[b, t, vocab]` logits (tied: scaled by `d^-½` first, as transformers).
    fn logits(&self, hidden: &Tensor) -> Tensor {
        match &self.lm_head {
            Some(head) => linear(hidden, head, None),
            None => linear(
                &(hidden * (self.config.d_model as f64).powf(-0.5)),
                &self.shared,
                None,
            ),
        }
    }
}

impl T5 {
    /// [`Backbone::forward`] with the encoder's position bias limited to the first `span` positions
    /// ([`T5::encode_with_bias_span`]).
    pub fn forward_with_bias_span(
        &self,
        embeds: &Tensor,
        attention_mask: &Tensor,
        labels: &Tensor,
        train: bool,
        span: Option<i64>,
    ) -> Result<BackboneOutput, ModelError> {
        self.check_inputs(embeds, attention_mask)?;
        let l = labels.size();
        if l.len() != 2 || l[0] != embeds.size()[0] || l[1] == 0 {
            return Err(ModelError::Input(format!(
                "labels must be [batch = {}, target_len > 0], got {l:?}",
                embeds.size()[0]
            )));
        }
        let (encoded, encoder_mask) =
            self.encode_with_bias_span(embeds, attention_mask, train, span);
        let logits = self.decode(labels, &encoded, &encoder_mask, train);
        let loss = self.loss(&logits, labels);
        Ok(BackboneOutput { loss, logits })
    }

    /// [`Backbone::generate_greedy`] with the encoder's position bias limited to the first `span` positions.
    pub fn generate_with_bias_span(
        &self,
        embeds: &Tensor,
        attention_mask: &Tensor,
        max_new_tokens: i64,
        span: Option<i64>,
    ) -> Result<Tensor, ModelError> {
        self.check_inputs(embeds, attention_mask)?;
        let batch = embeds.size()[0];
        let device = embeds.device();
        if max_new_tokens <= 0 {
            return Ok(Tensor::zeros([batch, 0], (Kind::Int64, device)));
        }
        tch::no_grad(|| {
            // The encoder runs once; each decoder layer keeps its keys and values, the cross-attention ones
            // computed from the encoder states once.
            let (encoded, encoder_mask) = self.encode_for_decoding(embeds, attention_mask, span)?;
            let mut caches: Vec<LayerCache> = self
                .decoder
                .blocks
                .iter()
                .map(|block| block.new_cache(&encoded, max_new_tokens))
                .collect();
            let mut next = Tensor::full(
                [batch, 1],
                self.config.decoder_start_token_id,
                (Kind::Int64, device),
            );
            let mut finished = Tensor::zeros([batch], (Kind::Bool, device));
            let mut generated = Vec::with_capacity(max_new_tokens as usize);
            for step in 0..max_new_tokens {
                crate::cancel::poll()?;
                let hidden =
                    self.decoder
                        .step(&self.embed(&next), step, &encoder_mask, &mut caches);
                let token = self
                    .logits(&hidden)
                    .select(1, -1)
                    .argmax(-1, false)
                    .masked_fill(&finished, self.config.pad_token_id);
                finished = finished.logical_or(&token.eq(self.config.eos_token_id));
                next = token.unsqueeze(1);
                generated.push(next.shallow_clone());
                if bool::try_from(finished.all())? {
                    break;
                }
            }
            Ok(Tensor::cat(&generated, 1))
        })
    }
}

/// Row-by-row decoding ([`crate::rows`]). The state's slots: the encoder's 0/1 mask `[b, n]` (back-padded), the
/// decoder's 0/1 mask over its positions so far `[b, k]` (front-padded), then per decoder layer the
/// cross-attention keys and values `[b, heads, n, d_kv]` (back-padded) and the self-attention ones
/// `[b, heads, k, d_kv]` (front-padded).
const ROWS_OWNER: &str = "T5";
const ENCODER_MASK: usize = 0;
const DECODER_MASK: usize = 1;
const LAYER_SLOTS: usize = 2;
const SLOTS_PER_LAYER: usize = 4;

impl T5 {
    /// [`Backbone::start_rows`] with the encoder's position bias limited to the first `span` positions.
    pub fn start_rows_with_bias_span(
        &self,
        embeds: &Tensor,
        attention_mask: &Tensor,
        span: Option<i64>,
    ) -> Result<(DecodingRows, Tensor), ModelError> {
        self.check_inputs(embeds, attention_mask)?;
        tch::no_grad(|| {
            let (encoded, _) = self.encode_for_decoding(embeds, attention_mask, span)?;
            let batch = embeds.size()[0];
            let device = embeds.device();
            let mut slots = vec![
                Slot::new(attention_mask.to_kind(Kind::Int64), 1, Side::Back),
                Slot::new(
                    Tensor::zeros([batch, 0], (Kind::Int64, device)),
                    1,
                    Side::Front,
                ),
            ];
            for block in &self.decoder.blocks {
                let (k, v) = block.cross_keys_values(&encoded);
                let attention = &block.self_attention;
                let empty = [batch, attention.heads, 0, attention.d_kv];
                slots.push(Slot::new(k, 2, Side::Back));
                slots.push(Slot::new(v, 2, Side::Back));
                slots.push(Slot::new(
                    Tensor::zeros(empty, (encoded.kind(), device)),
                    2,
                    Side::Front,
                ));
                slots.push(Slot::new(
                    Tensor::zeros(empty, (encoded.kind(), device)),
                    2,
                    Side::Front,
                ));
            }
            let mut rows =
                DecodingRows::new(ROWS_OWNER, slots, Some(DECODER_MASK), Some(ENCODER_MASK));
            let start = Tensor::full(
                [batch],
                self.config.decoder_start_token_id,
                (Kind::Int64, device),
            );
            let logits = self.step_rows(&mut rows, &start)?;
            Ok((rows, logits))
        })
    }
}

impl Backbone for T5 {
    fn architecture(&self) -> Architecture {
        Architecture::EncoderDecoder
    }

    fn hidden_size(&self) -> i64 {
        self.config.d_model
    }

    fn vocab_size(&self) -> i64 {
        self.config.vocab_size
    }

    fn device(&self) -> Device {
        self.vs.device()
    }

    fn embed(&self, input_ids: &Tensor) -> Tensor {
        Tensor::embedding(&self.shared, input_ids, -1, false, false)
    }

    fn forward(
        &self,
        embeds: &Tensor,
        attention_mask: &Tensor,
        labels: &Tensor,
        train: bool,
    ) -> Result<BackboneOutput, ModelError> {
        self.forward_with_bias_span(embeds, attention_mask, labels, train, None)
    }

    fn generate_greedy(
        &self,
        embeds: &Tensor,
        attention_mask: &Tensor,
        max_new_tokens: i64,
    ) -> Result<Tensor, ModelError> {
        self.generate_with_bias_span(embeds, attention_mask, max_new_tokens, None)
    }

    fn start_rows(
        &self,
        embeds: &Tensor,
        attention_mask: &Tensor,
    ) -> Result<(DecodingRows, Tensor), ModelError> {
        self.start_rows_with_bias_span(embeds, attention_mask, None)
    }

    /// The decoder's keys are front-padded, so every row's newest position is the last column: one position bias
    /// (that of the widest row) gives each row the distances it would have alone.
    fn step_rows(&self, rows: &mut DecodingRows, tokens: &Tensor) -> Result<Tensor, ModelError> {
        rows.check_owner(ROWS_OWNER)?;
        let batch = rows.len();
        if tokens.size() != [batch] {
            return Err(ModelError::Input(format!(
                "one token per row expected ([{batch}]), got {:?}",
                tokens.size()
            )));
        }
        tch::no_grad(|| {
            let hidden = self.embed(&tokens.view([batch, 1]));
            let kind = hidden.kind();
            let decoder_mask = Tensor::cat(
                &[
                    rows.slot(DECODER_MASK),
                    &Tensor::ones([batch, 1], (Kind::Int64, hidden.device())),
                ],
                1,
            );
            let width = decoder_mask.size()[1];
            let bias = self.decoder.position_bias(1, width, width - 1)
                + additive_padding_mask(&decoder_mask, kind);
            let encoder_mask = additive_padding_mask(rows.slot(ENCODER_MASK), kind);
            let mut hidden = hidden;
            for (i, block) in self.decoder.blocks.iter().enumerate() {
                let at = LAYER_SLOTS + i * SLOTS_PER_LAYER;
                let cross_kv = (
                    rows.slot(at).shallow_clone(),
                    rows.slot(at + 1).shallow_clone(),
                );
                let past = (
                    rows.slot(at + 2).shallow_clone(),
                    rows.slot(at + 3).shallow_clone(),
                );
                let mut stored = None;
                hidden = block.step_with(&hidden, &bias, &encoder_mask, &cross_kv, |k, v| {
                    let all = (
                        Tensor::cat(&[&past.0, &k], 2),
                        Tensor::cat(&[&past.1, &v], 2),
                    );
                    stored = Some((all.0.shallow_clone(), all.1.shallow_clone()));
                    all
                });
                if let Some((k, v)) = stored {
                    rows.set_slot(at + 2, k);
                    rows.set_slot(at + 3, v);
                }
            }
            rows.set_slot(DECODER_MASK, decoder_mask);
            let hidden = self.decoder.final_layer_norm.forward(&hidden);
            Ok(upcast_16_bit(self.logits(&hidden)).select(1, 0))
        })
    }

    /// Casts the backbone's weights to a floating-point kind (e.g. `Kind::BFloat16` on CUDA, `Kind::Double` for
    /// exactness checks). Inputs must then be embedded with the same kind, which [`Backbone::embed`] does.
    fn set_float_kind(&mut self, kind: Kind) -> Result<(), ModelError> {
        checkpoint::set_float_kind(&mut self.vs, kind)?;
        Ok(())
    }

    fn pad_token_id(&self) -> i64 {
        self.config.pad_token_id
    }

    fn eos_token_id(&self) -> i64 {
        self.config.eos_token_id
    }

    fn decoder_start_token_id(&self) -> Option<i64> {
        Some(self.config.decoder_start_token_id)
    }
}

/// Each row's length when `mask` `[b, n]` is back-padded (ones, then zeros), else `None`.
fn back_padded_lengths(mask: &Tensor) -> Result<Option<Vec<usize>>, ModelError> {
    let keep = mask.ne(0);
    let lengths = keep.sum_dim_intlist(1, false, Kind::Int64);
    let n = mask.size()[1];
    let expected = Tensor::arange(n, (Kind::Int64, mask.device()))
        .unsqueeze(0)
        .lt_tensor(&lengths.unsqueeze(1));
    if !keep.equal(&expected) {
        return Ok(None);
    }
    let lengths = Vec::<i64>::try_from(lengths.to_device(Device::Cpu))?;
    Ok(Some(lengths.into_iter().map(|l| l as usize).collect()))
}

/// Dropout with probability `p` (0: none, in evaluation). The keep-mask comes from a uniform draw compared with
/// `p`: the same Bernoulli(1 − p) that `torch.dropout` draws, and cheaper on CPU (a step draws many masks as large
/// as the attention weights).
trait Dropped {
    fn dropped(&self, p: f64) -> Tensor;
}

impl Dropped for Tensor {
    fn dropped(&self, p: f64) -> Tensor {
        if p <= 0.0 {
            return self.shallow_clone();
        }
        let scale = 1.0 / (1.0 - p);
        let half = matches!(self.kind(), Kind::BFloat16 | Kind::Half);
        if self.device() == Device::Cpu && !half {
            // On CPU, the mask made in place in the uniform draw's own buffer (1/(1 − p) where kept, else 0), then
            // one product: one full-size temporary and pass fewer than `self * keep * scale`, and a backward that
            // multiplies by a float mask instead of converting a bool one. The values are the same bits (the
            // scale is rounded to the tensor's kind either way). Measured on the attention weights of a t5-small
            // batch, [16, 8, 316, 316] on 2 CPU threads: 159–172 ms forward and backward before, 93–99 ms after.
            // The float mask kept for the backward takes 4 bytes an element where the bool one took 1, as
            // PyTorch's own CPU dropout does; on a GPU, where memory is the limit and these passes are cheap,
            // the bool mask stays.
            let mut mask = self.rand_like();
            let _ = mask.ge_(p).g_mul_scalar_(scale);
            return self * mask;
        }
        // Drawn in fp32 for 16-bit tensors, whose coarse grid would move the drop rate; the scale stays a scalar,
        // as a 16-bit mask would round it.
        let uniform = if half {
            Tensor::rand(self.size(), (Kind::Float, self.device()))
        } else {
            self.rand_like()
        };
        self * uniform.ge(p) * scale
    }
}

fn normal(stdev: f64) -> Init {
    Init::Randn { mean: 0.0, stdev }
}

/// The encoder's states and mask, as the decoder's cross-attention sees them.
struct CrossInput<'a> {
    states: &'a Tensor,
    mask: &'a Tensor,
}

/// One decoder layer's keys and values during greedy decoding, `[b, heads, len, d_kv]`: the self-attention ones
/// in buffers allocated once for every step and filled in place, the cross-attention ones computed once.
struct LayerCache {
    self_k: Tensor,
    self_v: Tensor,
    cross_kv: (Tensor, Tensor),
}

/// `encoder` or `decoder`: the blocks, the final layer norm and the relative-position table of block 0.
struct Stack {
    blocks: Vec<Block>,
    final_layer_norm: RmsNorm,
    relative_attention_bias: Tensor,
    bidirectional: bool,
    num_buckets: i64,
    max_distance: i64,
}

impl Stack {
    fn new(p: &VarPath, config: &T5Config, feed_forward: FeedForward, is_decoder: bool) -> Self {
        let layers = if is_decoder {
            config.num_decoder_layers.unwrap_or(config.num_layers)
        } else {
            config.num_layers
        };
        let blocks: Vec<Block> = (0..layers)
            .map(|i| Block::new(&(p / "block" / i), config, feed_forward, is_decoder))
            .collect();
        let table = p / "block" / 0 / "layer" / 0 / "SelfAttention" / "relative_attention_bias";
        let relative_attention_bias = table.var(
            "weight",
            &[config.relative_attention_num_buckets, config.num_heads],
            normal((config.d_model as f64).powf(-0.5)),
        );
        Stack {
            blocks,
            final_layer_norm: t5_norm(&(p / "final_layer_norm"), config),
            relative_attention_bias,
            bidirectional: !is_decoder,
            num_buckets: config.relative_attention_num_buckets,
            max_distance: config.relative_attention_max_distance,
        }
    }

    /// `[1, heads, q, k]` bias for queries at positions `offset..offset+q` and keys at `0..k` (transformers'
    /// `T5Attention.compute_bias`).
    fn position_bias(&self, q: i64, k: i64, offset: i64) -> Tensor {
        let device = self.relative_attention_bias.device();
        let context = Tensor::arange_start(offset, offset + q, (Kind::Int64, device)).unsqueeze(1);
        let memory = Tensor::arange(k, (Kind::Int64, device)).unsqueeze(0);
        let buckets = relative_position_bucket(
            &(memory - context),
            self.bidirectional,
            self.num_buckets,
            self.max_distance,
        );
        Tensor::embedding(&self.relative_attention_bias, &buckets, -1, false, false)
            .permute([2, 0, 1])
            .unsqueeze(0)
    }

    /// The whole stack over `hidden` (`[b, n, d]` embeddings); `bias` holds position bias plus mask.
    fn forward(
        &self,
        embeds: &Tensor,
        bias: &Tensor,
        cross: Option<&CrossInput>,
        p: f64,
    ) -> Tensor {
        let mut hidden = embeds.dropped(p);
        for block in &self.blocks {
            hidden = block.forward(&hidden, bias, cross, p);
        }
        self.final_layer_norm.forward(&hidden).dropped(p)
    }

    /// One greedy step of the decoder: the embedding of the last token at position `position`, attending to the
    /// cached keys and values (which grow by one).
    fn step(
        &self,
        embeds: &Tensor,
        position: i64,
        encoder_mask: &Tensor,
        caches: &mut [LayerCache],
    ) -> Tensor {
        let bias = self.position_bias(1, position + 1, position);
        let mut hidden = embeds.shallow_clone();
        for (block, cache) in self.blocks.iter().zip(caches.iter_mut()) {
            hidden = block.step(&hidden, position, &bias, encoder_mask, cache);
        }
        self.final_layer_norm.forward(&hidden)
    }
}

/// transformers' `T5Attention._relative_position_bucket`.
fn relative_position_bucket(
    relative: &Tensor,
    bidirectional: bool,
    num_buckets: i64,
    max_distance: i64,
) -> Tensor {
    let (num_buckets, mut buckets, relative) = if bidirectional {
        let half = num_buckets / 2;
        (
            half,
            relative.gt(0).to_kind(Kind::Int64) * half,
            relative.abs(),
        )
    } else {
        (num_buckets, relative.zeros_like(), -relative.clamp_max(0))
    };
    let max_exact = num_buckets / 2;
    let is_small = relative.lt(max_exact);
    let large = (relative.to_kind(Kind::Float) / max_exact as f64).log()
        / (max_distance as f64 / max_exact as f64).ln()
        * (num_buckets - max_exact) as f64;
    let large = (large.to_kind(Kind::Int64) + max_exact).clamp_max(num_buckets - 1);
    buckets += relative.where_self(&is_small, &large);
    buckets
}

struct Block {
    self_attention: Attention,
    self_norm: RmsNorm,
    cross_attention: Option<(Attention, RmsNorm)>,
    feed_forward: DenseFeedForward,
    ff_norm: RmsNorm,
}

impl Block {
    fn new(p: &VarPath, config: &T5Config, feed_forward: FeedForward, is_decoder: bool) -> Self {
        let layer = |i: i64| p / "layer" / i;
        let cross_attention = is_decoder.then(|| {
            (
                Attention::new(&(layer(1) / "EncDecAttention"), config),
                t5_norm(&(layer(1) / "layer_norm"), config),
            )
        });
        let ff = layer(if is_decoder { 2 } else { 1 });
        Block {
            self_attention: Attention::new(&(layer(0) / "SelfAttention"), config),
            self_norm: t5_norm(&(layer(0) / "layer_norm"), config),
            cross_attention,
            feed_forward: DenseFeedForward::new(&(&ff / "DenseReluDense"), config, feed_forward),
            ff_norm: t5_norm(&(&ff / "layer_norm"), config),
        }
    }

    fn forward(
        &self,
        hidden: &Tensor,
        bias: &Tensor,
        cross: Option<&CrossInput>,
        p: f64,
    ) -> Tensor {
        let normed = self.self_norm.forward(hidden);
        let (q, k, v) = self.self_attention.project(&normed, &normed);
        let mut hidden = hidden + self.self_attention.attend(&q, &k, &v, bias, p).dropped(p);
        if let (Some((attention, norm)), Some(input)) = (&self.cross_attention, cross) {
            let normed = norm.forward(&hidden);
            let (q, k, v) = attention.project(&normed, input.states);
            hidden = &hidden + attention.attend(&q, &k, &v, input.mask, p).dropped(p);
        }
        let normed = self.ff_norm.forward(&hidden);
        &hidden + self.feed_forward.forward(&normed, p).dropped(p)
    }

    fn new_cache(&self, encoded: &Tensor, steps: i64) -> LayerCache {
        let cross_kv = self.cross_keys_values(encoded);
        let shape = [
            encoded.size()[0],
            self.self_attention.heads,
            steps,
            self.self_attention.d_kv,
        ];
        let options = (encoded.kind(), encoded.device());
        LayerCache {
            self_k: Tensor::zeros(shape, options),
            self_v: Tensor::zeros(shape, options),
            cross_kv,
        }
    }

    fn step(
        &self,
        hidden: &Tensor,
        position: i64,
        bias: &Tensor,
        encoder_mask: &Tensor,
        cache: &mut LayerCache,
    ) -> Tensor {
        let LayerCache {
            self_k,
            self_v,
            cross_kv,
        } = cache;
        self.step_with(hidden, bias, encoder_mask, cross_kv, |k, v| {
            self_k.narrow(2, position, 1).copy_(&k);
            self_v.narrow(2, position, 1).copy_(&v);
            (
                self_k.narrow(2, 0, position + 1),
                self_v.narrow(2, 0, position + 1),
            )
        })
    }

    /// One decoding step of this block for the newest position `hidden` `[b, 1, d]`: `remember` stores the
    /// position's self-attention keys and values and returns every position's (greedy decoding fills buffers in
    /// place, row-by-row decoding grows tensors); `bias` is the self-attention's position bias plus mask.
    fn step_with(
        &self,
        hidden: &Tensor,
        bias: &Tensor,
        encoder_mask: &Tensor,
        cross_kv: &(Tensor, Tensor),
        remember: impl FnOnce(Tensor, Tensor) -> (Tensor, Tensor),
    ) -> Tensor {
        let normed = self.self_norm.forward(hidden);
        let (q, k, v) = self.self_attention.project(&normed, &normed);
        let (k, v) = remember(k, v);
        let mut hidden = hidden + self.self_attention.attend(&q, &k, &v, bias, 0.0);
        if let Some((attention, norm)) = &self.cross_attention {
            let normed = norm.forward(&hidden);
            let q = attention.queries(&normed);
            let (k, v) = cross_kv;
            hidden = &hidden + attention.attend(&q, k, v, encoder_mask, 0.0);
        }
        let normed = self.ff_norm.forward(&hidden);
        &hidden + self.feed_forward.forward(&normed, 0.0)
    }

    /// The cross-attention's keys and values for decoding, `[b, heads, n, d_kv]`, contiguous: split into heads
    /// they are a transposed view, which every step's attention product would copy again (at batch 32 and 188
    /// encoder positions, 150 MB a step over t5-small's 6 layers, as much as reading its weights).
    fn cross_keys_values(&self, encoded: &Tensor) -> (Tensor, Tensor) {
        match &self.cross_attention {
            Some((attention, _)) => {
                let (k, v) = attention.keys_values(encoded);
                (k.contiguous(), v.contiguous())
            }
            None => (Tensor::new(), Tensor::new()),
        }
    }
}

/// Multi-head attention without biases and without T5's (folded-in) `1/√d_kv` scaling.
struct Attention {
    q: Tensor,
    k: Tensor,
    v: Tensor,
    o: Tensor,
    heads: i64,
    d_kv: i64,
}

impl Attention {
    fn new(p: &VarPath, config: &T5Config) -> Self {
        let (d, inner) = (config.d_model, config.num_heads * config.d_kv);
        Attention {
            q: (p / "q").var(
                "weight",
                &[inner, d],
                normal(((d * config.d_kv) as f64).powf(-0.5)),
            ),
            k: (p / "k").var("weight", &[inner, d], normal((d as f64).powf(-0.5))),
            v: (p / "v").var("weight", &[inner, d], normal((d as f64).powf(-0.5))),
            o: (p / "o").var("weight", &[d, inner], normal((inner as f64).powf(-0.5))),
            heads: config.num_heads,
            d_kv: config.d_kv,
        }
    }

    /// `[b, n, d]` → `[b, heads, n, d_kv]`.
    fn split_heads(&self, x: &Tensor) -> Tensor {
        let (b, n) = (x.size()[0], x.size()[1]);
        x.view([b, n, self.heads, self.d_kv]).transpose(1, 2)
    }

    fn queries(&self, x: &Tensor) -> Tensor {
        self.split_heads(&linear(x, &self.q, None))
    }

    fn keys_values(&self, x: &Tensor) -> (Tensor, Tensor) {
        (
            self.split_heads(&linear(x, &self.k, None)),
            self.split_heads(&linear(x, &self.v, None)),
        )
    }

    fn project(&self, x: &Tensor, memory: &Tensor) -> (Tensor, Tensor, Tensor) {
        let (k, v) = self.keys_values(memory);
        (self.queries(x), k, v)
    }

    /// softmax(q·kᵀ + bias) (in fp32, as transformers) · v, heads merged and projected: `[b, n, d]`.
    fn attend(&self, q: &Tensor, k: &Tensor, v: &Tensor, bias: &Tensor, p: f64) -> Tensor {
        let scores = q.matmul(&k.transpose(-1, -2)) + bias;
        let weights = scores
            .softmax(-1, at_least_fp32(scores.kind()))
            .to_kind(scores.kind())
            .dropped(p);
        let out = weights.matmul(v).transpose(1, 2);
        let (b, n) = (out.size()[0], out.size()[1]);
        linear(&out.reshape([b, n, self.heads * self.d_kv]), &self.o, None)
    }
}

/// `DenseReluDense`: `wi` → ReLU → `wo` (v1), or GELU(`wi_0`) ⊙ `wi_1` → `wo` (v1.1 / Flan).
struct DenseFeedForward {
    wi: Vec<Tensor>,
    wo: Tensor,
    kind: FeedForward,
}

impl DenseFeedForward {
    fn new(p: &VarPath, config: &T5Config, kind: FeedForward) -> Self {
        let (d, ff) = (config.d_model, config.d_ff);
        let input = |name: &str| (p / name).var("weight", &[ff, d], normal((d as f64).powf(-0.5)));
        let wi = match kind {
            FeedForward::Relu => vec![input("wi")],
            FeedForward::GatedGelu => vec![input("wi_0"), input("wi_1")],
        };
        DenseFeedForward {
            wi,
            wo: (p / "wo").var("weight", &[d, ff], normal((ff as f64).powf(-0.5))),
            kind,
        }
    }

    fn forward(&self, x: &Tensor, p: f64) -> Tensor {
        let hidden = match self.kind {
            FeedForward::Relu => linear(x, &self.wi[0], None).relu(),
            FeedForward::GatedGelu => {
                linear(x, &self.wi[0], None).gelu("tanh") * linear(x, &self.wi[1], None)
            }
        };
        linear(&hidden.dropped(p), &self.wo, None)
    }
}

/// T5's RMS norm (`T5LayerNorm`): back to the weight's kind when that is 16-bit.
fn t5_norm(p: &VarPath, config: &T5Config) -> RmsNorm {
    RmsNorm::new(
        p,
        config.d_model,
        config.layer_norm_epsilon,
        NormCast::ToHalfWeight,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Encoding a batch in length buckets before decoding gives every row the states of the one-pass encoding at
    /// its positions (zero past its end), and the tokens each row decodes alone.
    #[test]
    fn bucketed_encoding_equals_one_pass() {
        tch::manual_seed(0);
        let json = serde_json::json!({
            "vocab_size": 64, "d_model": 32, "d_kv": 8, "d_ff": 64, "num_layers": 2, "num_heads": 4,
            "feed_forward_proj": "relu", "tie_word_embeddings": true
        });
        let config = T5Config::from_json(Path::new("<test>"), json).unwrap();
        let model = T5::new_random(&config, Device::Cpu).unwrap();
        let lengths = [3i64, 12, 5, 20];
        let width = 20;
        let ids = Tensor::randint_low(3, 64, [4, width], (Kind::Int64, Device::Cpu));
        let mask = Tensor::arange(width, (Kind::Int64, Device::Cpu))
            .unsqueeze(0)
            .lt_tensor(&Tensor::from_slice(&lengths).unsqueeze(1))
            .to_kind(Kind::Int64);
        let embeds = model.embed(&ids);
        let (bucketed, bucketed_mask) =
            tch::no_grad(|| model.encode_for_decoding(&embeds, &mask, None)).unwrap();
        let (whole, whole_mask) = tch::no_grad(|| model.encode(&embeds, &mask, false));
        assert!(bucketed_mask.equal(&whole_mask));
        for (row, &len) in lengths.iter().enumerate() {
            let (ours, theirs) = (bucketed.get(row as i64), whole.get(row as i64));
            let diff = (ours.narrow(0, 0, len) - theirs.narrow(0, 0, len))
                .abs()
                .max()
                .double_value(&[]);
            assert!(diff < 1e-5, "row {row}: {diff}");
            if len < width {
                let rest = ours.narrow(0, len, width - len).abs().max();
                assert_eq!(rest.double_value(&[]), 0.0, "row {row} past its end");
            }
        }
        let together = model.generate_greedy(&embeds, &mask, 6).unwrap();
        for (row, &len) in lengths.iter().enumerate() {
            let alone = model
                .generate_greedy(
                    &embeds.narrow(0, row as i64, 1).narrow(1, 0, len),
                    &mask.narrow(0, row as i64, 1).narrow(1, 0, len),
                    6,
                )
                .unwrap();
            let width = alone.size()[1];
            assert!(
                together
                    .narrow(0, row as i64, 1)
                    .narrow(1, 0, width)
                    .equal(&alone),
                "row {row}"
            );
        }
    }

    #[test]
    fn dropout_drops_at_its_rate_and_keeps_the_mean() {
        tch::manual_seed(0);
        for kind in [Kind::Float, Kind::BFloat16] {
            let x = Tensor::ones([1_000_000], (kind, Device::Cpu));
            let y = x.dropped(0.1).to_kind(Kind::Double);
            let dropped = y
                .eq(0.0)
                .to_kind(Kind::Double)
                .mean(Kind::Double)
                .double_value(&[]);
            let mean = y.mean(Kind::Double).double_value(&[]);
            assert!((dropped - 0.1).abs() < 2e-3, "{kind:?}: dropped {dropped}");
            assert!((mean - 1.0).abs() < 1e-2, "{kind:?}: mean {mean}");
        }
        let x = Tensor::ones([10], (Kind::Float, Device::Cpu));
        assert_eq!(x.dropped(0.0), x);
    }
}
