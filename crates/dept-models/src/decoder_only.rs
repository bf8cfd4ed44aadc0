//! A decoder-only language model ([`CausalLm`]: GPT-2, Llama) as a [`Backbone`]: source and target run as one
//! sequence, the loss is next-token cross-entropy on the target's positions, and greedy decoding continues a
//! left-padded batch of sources with a key/value cache.
//!
//! Position ids follow the attention mask (the running count of attended positions, minus one), as transformers
//! does for generation and as the official PEFT fork gets for right-padded training rows: a row's numbers do not
//! depend on how much padding the batch gives it, on either side.

use tch::{Kind, Tensor};

use crate::backbone::token_loss;
use crate::causal::{generate_greedy, positions_from_mask, CausalLm, KvCache};
use crate::rows::{DecodingRows, Side, Slot};
use crate::{Architecture, Backbone, BackboneOutput, ModelError};

/// Row-by-row decoding ([`crate::rows`]). The state's slots: the 0/1 mask over every position so far `[b, k]`, each
/// row's next position id `[b]`, then per layer the keys and values `[b, kv_heads, k, head_dim]`; positions are
/// front-padded, as a left-padded batch is.
const ROWS_OWNER: &str = "decoder-only";
const MASK: usize = 0;
const NEXT_POSITION: usize = 1;
const LAYER_SLOTS: usize = 2;

pub struct DecoderOnly {
    model: Box<dyn CausalLm>,
}

impl DecoderOnly {
    pub fn new(model: Box<dyn CausalLm>) -> Self {
        DecoderOnly { model }
    }

    /// `model` as a boxed [`Backbone`] (what a registry loader returns).
    pub fn boxed(model: impl CausalLm + 'static) -> Box<dyn Backbone> {
        Box::new(DecoderOnly::new(Box::new(model)))
    }

    pub fn model(&self) -> &dyn CausalLm {
        self.model.as_ref()
    }

    fn check_inputs(&self, embeds: &Tensor, attention_mask: &Tensor) -> Result<(), ModelError> {
        let size = embeds.size();
        if size.len() != 3
            || size[2] != self.model.hidden_size()
            || attention_mask.size() != size[..2]
        {
            return Err(ModelError::Input(format!(
                "expected embeddings [batch, len, {}] and a mask [batch, len], got {size:?} and {:?}",
                self.model.hidden_size(),
                attention_mask.size()
            )));
        }
        Ok(())
    }
}

impl Backbone for DecoderOnly {
    fn hidden_size(&self) -> i64 {
        self.model.hidden_size()
    }

    fn vocab_size(&self) -> i64 {
        self.model.vocab_size()
    }

    fn device(&self) -> tch::Device {
        self.model.device()
    }

    fn architecture(&self) -> Architecture {
        Architecture::DecoderOnly
    }

    fn embed(&self, input_ids: &Tensor) -> Tensor {
        self.model.embed(input_ids)
    }

    /// `labels` `[batch, len]` are aligned with `embeds` (`-100` wherever no token is to be predicted: prompt,
    /// source, padding); position `t` predicts `labels[t + 1]`, as transformers' causal-LM loss.
    fn forward(
        &self,
        embeds: &Tensor,
        attention_mask: &Tensor,
        labels: &Tensor,
        train: bool,
    ) -> Result<BackboneOutput, ModelError> {
        self.check_inputs(embeds, attention_mask)?;
        if labels.size() != attention_mask.size() {
            return Err(ModelError::Input(format!(
                "a decoder-only model takes labels aligned with its inputs: {:?}, got {:?}",
                attention_mask.size(),
                labels.size()
            )));
        }
        let positions = positions_from_mask(attention_mask);
        let logits = self
            .model
            .forward_embeds(embeds, attention_mask, &positions, None, train)?;
        let len = logits.size()[1];
        let loss = token_loss(&logits.narrow(1, 0, len - 1), &labels.narrow(1, 1, len - 1));
        Ok(BackboneOutput { loss, logits })
    }

    /// `embeds` are the left-padded sources (prompt in front); new tokens are embedded plainly and take the next
    /// positions. Rows that reached end of sequence are padded with the pad id.
    fn generate_greedy(
        &self,
        embeds: &Tensor,
        attention_mask: &Tensor,
        max_new_tokens: i64,
    ) -> Result<Tensor, ModelError> {
        self.check_inputs(embeds, attention_mask)?;
        generate_greedy(self.model.as_ref(), embeds, attention_mask, max_new_tokens)
    }

    /// `embeds` are left-padded sources (prompt in front), as for [`Backbone::generate_greedy`].
    fn start_rows(
        &self,
        embeds: &Tensor,
        attention_mask: &Tensor,
    ) -> Result<(DecodingRows, Tensor), ModelError> {
        self.check_inputs(embeds, attention_mask)?;
        tch::no_grad(|| {
            let mask = attention_mask.to_kind(Kind::Int64);
            let positions = positions_from_mask(&mask);
            let mut cache = KvCache::new(self.model.num_layers());
            let logits =
                self.model
                    .forward_embeds(embeds, &mask, &positions, Some(&mut cache), false)?;
            let next_position = mask.sum_dim_intlist(1, false, Kind::Int64);
            let mut slots = vec![
                Slot::new(mask, 1, Side::Front),
                Slot::per_row(next_position),
            ];
            for layer in cache.layers {
                let (k, v) = layer.ok_or_else(|| {
                    ModelError::Input("the model left a layer's key/value cache empty".into())
                })?;
                slots.push(Slot::new(k, 2, Side::Front));
                slots.push(Slot::new(v, 2, Side::Front));
            }
            let rows = DecodingRows::new(ROWS_OWNER, slots, Some(MASK), None);
            Ok((rows, logits.select(1, -1)))
        })
    }

    /// A new token is real in every row and takes the row's next position (the count of its real positions).
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
            let layers = self.model.num_layers();
            let mut cache = KvCache {
                layers: (0..layers)
                    .map(|i| {
                        let at = LAYER_SLOTS + 2 * i;
                        Some((
                            rows.slot(at).shallow_clone(),
                            rows.slot(at + 1).shallow_clone(),
                        ))
                    })
                    .collect(),
            };
            let mask = Tensor::cat(
                &[
                    rows.slot(MASK),
                    &rows.slot(MASK).ones_like().narrow(1, 0, 1),
                ],
                1,
            );
            let positions = rows.slot(NEXT_POSITION).view([batch, 1]);
            let inputs = self.model.embed(&tokens.view([batch, 1]));
            let logits =
                self.model
                    .forward_embeds(&inputs, &mask, &positions, Some(&mut cache), false)?;
            for (i, layer) in cache.layers.into_iter().enumerate() {
                let (k, v) = layer.ok_or_else(|| {
                    ModelError::Input("the model left a layer's key/value cache empty".into())
                })?;
                rows.set_slot(LAYER_SLOTS + 2 * i, k);
                rows.set_slot(LAYER_SLOTS + 2 * i + 1, v);
            }
            rows.set_slot(MASK, mask);
            rows.set_slot(NEXT_POSITION, rows.slot(NEXT_POSITION) + 1);
            Ok(logits.select(1, -1))
        })
    }

    fn max_positions(&self) -> Option<i64> {
        self.model.max_positions()
    }

    fn set_float_kind(&mut self, kind: Kind) -> Result<(), ModelError> {
        self.model.set_float_kind(kind)
    }

    fn pad_token_id(&self) -> i64 {
        self.model.pad_token_id()
    }

    fn eos_token_id(&self) -> i64 {
        self.model.eos_token_id()
    }
}
