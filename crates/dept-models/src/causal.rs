//! Decoder-only language models (GPT-2, Llama) as DePT backbones: the interface each model implements, and the
//! key/value cache greedy decoding fills.
//!
//! A causal model here is a stack over input embeddings: the caller embeds token ids ([`CausalLm::embed`]),
//! changes the embeddings (DePT adds its prompt and low-rank update there), and runs the stack with an explicit
//! attention mask and explicit position ids, so that the same code serves training (right-padded rows), and
//! left-padded batched decoding with a cache.

use tch::{Device, Kind, Tensor};

use crate::ModelError;

/// Keys and values of every layer for the positions run so far, `[batch, kv_heads, positions, head_dim]` each.
/// Each model appends to it in [`CausalLm::forward_embeds`].
#[derive(Debug, Default)]
pub struct KvCache {
    pub layers: Vec<Option<(Tensor, Tensor)>>,
}

impl KvCache {
    pub fn new(num_layers: usize) -> Self {
        KvCache {
            layers: (0..num_layers).map(|_| None).collect(),
        }
    }

    /// Positions held (0 before the first call).
    pub fn len(&self) -> i64 {
        self.layers
            .first()
            .and_then(|l| l.as_ref())
            .map_or(0, |(k, _)| k.size()[2])
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Appends this call's keys and values to layer `i` and returns everything held for it.
    pub fn append(&mut self, i: usize, keys: Tensor, values: Tensor) -> (Tensor, Tensor) {
        let joined = match self.layers[i].take() {
            Some((k, v)) => (Tensor::cat(&[k, keys], 2), Tensor::cat(&[v, values], 2)),
            None => (keys, values),
        };
        self.layers[i] = Some((joined.0.shallow_clone(), joined.1.shallow_clone()));
        joined
    }
}

/// A decoder-only language model, frozen.
pub trait CausalLm {
    /// Width `d` of the token embeddings.
    fn hidden_size(&self) -> i64;
    fn vocab_size(&self) -> i64;
    fn num_layers(&self) -> usize;
    fn device(&self) -> Device;
    /// Token ids `[batch, t]` → word embeddings `[batch, t, d]` (position information is added inside
    /// [`CausalLm::forward_embeds`], from `position_ids`).
    fn embed(&self, ids: &Tensor) -> Tensor;
    /// Logits `[batch, t, vocab]` in fp32 for `embeds` `[batch, t, d]`.
    ///
    /// - `attention_mask` `[batch, past + t]`: 1 for positions that may be attended to (real tokens, soft
    ///   prompt), 0 for padding; attention is also causal (a position sees itself and earlier ones).
    /// - `position_ids` `[batch, t]`: each token's position (GPT-2's learned positions, Llama's rotary angle).
    /// - `cache`: with one, keys and values of the `past` earlier positions come from it and this call's are
    ///   appended; without, `past` = 0.
    /// - `train` turns dropout on (GPT-2; Llama has none).
    fn forward_embeds(
        &self,
        embeds: &Tensor,
        attention_mask: &Tensor,
        position_ids: &Tensor,
        cache: Option<&mut KvCache>,
        train: bool,
    ) -> Result<Tensor, ModelError>;
    /// Casts the frozen weights (fp32 by default; bf16 for CUDA runs).
    fn set_float_kind(&mut self, kind: Kind) -> Result<(), ModelError>;
    fn eos_token_id(&self) -> i64;
    /// The id used to pad (GPT-2 and Llama checkpoints often have none: then the end-of-sequence id).
    fn pad_token_id(&self) -> i64;
    /// The most positions a sequence may hold, where the model has a hard limit ([`crate::Backbone::max_positions`]).
    fn max_positions(&self) -> Option<i64> {
        None
    }
}

/// Each position's index among the attended positions of its row (padding gets 1, as transformers fills it;
/// it is never attended).
pub fn positions_from_mask(attention_mask: &Tensor) -> Tensor {
    let mask = attention_mask.to_kind(Kind::Int64);
    (mask.cumsum(1, Kind::Int64) - 1).masked_fill(&mask.eq(0), 1)
}

/// Greedy decoding of a left-padded batch, as transformers' `generate(do_sample=False)` does it: position ids
/// from the mask (`cumsum(mask) − 1`, 1 at padding), one forward over the prompt, then one token at a time with
/// the key/value cache; rows that produced end-of-sequence get the pad id from then on, and decoding stops when
/// every row has finished. `embeds` `[batch, len, d]` (a DePT adapter may have changed them), `attention_mask`
/// `[batch, len]`. Returns the new tokens, `[batch, ≤ max_new_tokens]`.
pub fn generate_greedy<M: CausalLm + ?Sized>(
    model: &M,
    embeds: &Tensor,
    attention_mask: &Tensor,
    max_new_tokens: i64,
) -> Result<Tensor, ModelError> {
    let (e, m) = (embeds.size(), attention_mask.size());
    if e.len() != 3 || m != e[..2] {
        return Err(ModelError::Input(format!(
            "decoding needs embeddings [batch, len, d] and a mask [batch, len], got {e:?} and {m:?}"
        )));
    }
    let device = embeds.device();
    if max_new_tokens <= 0 {
        return Ok(Tensor::zeros([e[0], 0], (Kind::Int64, device)));
    }
    let (pad, eos) = (model.pad_token_id(), model.eos_token_id());
    tch::no_grad(|| {
        let mut cache = KvCache::new(model.num_layers());
        let mut mask = attention_mask.to_kind(Kind::Int64);
        let mut positions = positions_from_mask(&mask);
        let mut inputs = embeds.shallow_clone();
        let mut finished = Tensor::zeros([e[0]], (Kind::Bool, device));
        let mut generated = Vec::with_capacity(max_new_tokens as usize);
        for _ in 0..max_new_tokens {
            crate::cancel::poll()?;
            let logits =
                model.forward_embeds(&inputs, &mask, &positions, Some(&mut cache), false)?;
            let token = logits
                .select(1, -1)
                .argmax(-1, false)
                .masked_fill(&finished, pad);
            finished = finished.logical_or(&token.eq(eos));
            let token = token.unsqueeze(1);
            generated.push(token.shallow_clone());
            if bool::try_from(finished.all())? {
                break;
            }
            // The new token is real for every row; its position is the count of real positions before it
            // (transformers recomputes `cumsum(mask) − 1` and keeps the last column: the same number).
            mask = Tensor::cat(&[&mask, &mask.ones_like().narrow(1, 0, 1)], 1);
            positions = mask.sum_dim_intlist(-1, true, Kind::Int64) - 1;
            inputs = model.embed(&token);
        }
        Ok(Tensor::cat(&generated, 1))
    })
}
