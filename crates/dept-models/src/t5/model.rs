//! rust-bert's T5 run on input embeddings, frozen, with the loss and greedy decoding a prompt tuner needs.

use std::path::Path;

use rust_bert::t5::T5ForConditionalGeneration;
use tch::{nn::VarStore, Device, Kind, Reduction, Tensor};

use crate::backbone::{Backbone, BackboneOutput};
use crate::checkpoint::{self, LoadPlan};
use crate::t5::T5Config;
use crate::ModelError;

/// A frozen T5 encoder-decoder. Its variables live in their own [`VarStore`] with gradients switched off, so an
/// optimiser over the adapter's store never sees (or keeps state for) the backbone.
pub struct T5 {
    config: T5Config,
    vs: VarStore,
    model: T5ForConditionalGeneration,
    /// `shared.weight`, the word embeddings the adapter's inputs are built from.
    shared: Tensor,
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

    /// A model with rust-bert's random initialisation: for tests and demos, and as the skeleton `load` fills.
    pub fn new_random(config: &T5Config, device: Device) -> Result<Self, ModelError> {
        let rb_config = config.to_rust_bert()?;
        let mut vs = VarStore::new(device);
        let model = T5ForConditionalGeneration::new(vs.root(), &rb_config);
        vs.freeze();
        let shared = vs.variables().remove("shared.weight").ok_or_else(|| {
            ModelError::Input("rust-bert's T5 has no shared.weight variable".into())
        })?;
        Ok(T5 {
            config: config.clone(),
            vs,
            model,
            shared,
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
}

impl Backbone for T5 {
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
        self.check_inputs(embeds, attention_mask)?;
        let l = labels.size();
        if l.len() != 2 || l[0] != embeds.size()[0] || l[1] == 0 {
            return Err(ModelError::Input(format!(
                "labels must be [batch = {}, target_len > 0], got {l:?}",
                embeds.size()[0]
            )));
        }
        let decoder_inputs = self.decoder_inputs(labels);
        let out = self.model.forward_t(
            None,
            Some(attention_mask),
            None,
            Some(&decoder_inputs),
            None,
            Some(embeds),
            None,
            None,
            train,
        );
        // A bf16 backbone's logits are upcast so that the softmax and the loss are computed in fp32, as autocast
        // does for cross-entropy.
        let logits = match out.decoder_output.kind() {
            Kind::BFloat16 | Kind::Half => out.decoder_output.to_kind(Kind::Float),
            _ => out.decoder_output,
        };
        let loss = logits
            .view([-1, self.config.vocab_size])
            .cross_entropy_loss::<Tensor>(&labels.view([-1]), None, Reduction::Mean, -100, 0.0);
        Ok(BackboneOutput { loss, logits })
    }

    fn generate_greedy(
        &self,
        embeds: &Tensor,
        attention_mask: &Tensor,
        max_new_tokens: i64,
    ) -> Result<Tensor, ModelError> {
        self.check_inputs(embeds, attention_mask)?;
        let batch = embeds.size()[0];
        let device = embeds.device();
        if max_new_tokens <= 0 {
            return Ok(Tensor::zeros([batch, 0], (Kind::Int64, device)));
        }
        tch::no_grad(|| {
            let start = Tensor::full(
                [batch, 1],
                self.config.decoder_start_token_id,
                (Kind::Int64, device),
            );
            // The encoder runs once; each later step feeds its output and the decoder cache back.
            let first = self.model.forward_t(
                None,
                Some(attention_mask),
                None,
                Some(&start),
                None,
                Some(embeds),
                None,
                None,
                false,
            );
            let encoder_out = first
                .encoder_hidden_state
                .ok_or_else(|| ModelError::Input("rust-bert returned no encoder output".into()))?;
            let mut logits = first.decoder_output;
            let mut cache = first.next_cache;
            let mut finished = Tensor::zeros([batch], (Kind::Bool, device));
            let mut generated = Vec::with_capacity(max_new_tokens as usize);
            for step in 0..max_new_tokens {
                let next = logits
                    .select(1, -1)
                    .argmax(-1, false)
                    .masked_fill(&finished, self.config.pad_token_id);
                finished = finished.logical_or(&next.eq(self.config.eos_token_id));
                let next = next.unsqueeze(1);
                generated.push(next.shallow_clone());
                if step + 1 == max_new_tokens || bool::try_from(finished.all())? {
                    break;
                }
                let out = self.model.forward_t(
                    None,
                    Some(attention_mask),
                    Some(&encoder_out),
                    Some(&next),
                    None,
                    None,
                    None,
                    cache,
                    false,
                );
                logits = out.decoder_output;
                cache = out.next_cache;
            }
            Ok(Tensor::cat(&generated, 1))
        })
    }

    /// Casts the backbone's weights to a floating-point kind (e.g. `Kind::BFloat16` on CUDA, `Kind::Double` for
    /// exactness checks). Inputs must then be embedded with the same kind, which [`Backbone::embed`] does.
    fn set_float_kind(&mut self, kind: Kind) -> Result<(), ModelError> {
        match kind {
            Kind::Float => self.vs.float(),
            Kind::Double => self.vs.double(),
            Kind::BFloat16 => self.vs.bfloat16(),
            Kind::Half => self.vs.half(),
            other => {
                return Err(ModelError::Input(format!(
                    "{other:?} is not a floating-point kind for model weights"
                )))
            }
        }
        Ok(())
    }

    fn pad_token_id(&self) -> i64 {
        self.config.pad_token_id
    }

    fn eos_token_id(&self) -> i64 {
        self.config.eos_token_id
    }
}
