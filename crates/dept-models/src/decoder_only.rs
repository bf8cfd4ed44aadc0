//! A decoder-only language model ([`CausalLm`]: GPT-2, Llama) as a [`Backbone`]: source and target run as one
//! sequence, the loss is next-token cross-entropy on the target's positions, and greedy decoding continues a
//! left-padded batch of sources with a key/value cache.
//!
//! Position ids follow the attention mask (the running count of attended positions, minus one), as transformers
//! does for generation and as the official PEFT fork gets for right-padded training rows: a row's numbers do not
//! depend on how much padding the batch gives it, on either side.

use tch::{Kind, Tensor};

use crate::backbone::token_loss;
use crate::causal::{generate_greedy, positions_from_mask, CausalLm};
use crate::{Architecture, Backbone, BackboneOutput, ModelError};

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
