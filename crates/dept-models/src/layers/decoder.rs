//! The Llama-family decoder block: pre-norm layers of grouped-query attention with rotary positions and a SwiGLU
//! MLP, under transformers' tensor names (`self_attn.q_proj`, `mlp.gate_proj`, `input_layernorm`, …). Llama builds
//! its layers from this; models of the same family (Mistral, Qwen 2, …) differ in their config and their mask, which
//! the caller builds and hands in through [`DecoderStep`].

use tch::nn::{Init, Path as VarPath};
use tch::Tensor;

use super::{at_least_fp32, Linear, NormCast, RmsNorm, RotaryEmbedding};
use crate::causal::KvCache;

/// The sizes and switches of one decoder layer, from the model's config.
#[derive(Debug, Clone, PartialEq)]
pub struct DecoderLayerShape {
    pub hidden_size: i64,
    /// Width of the SwiGLU MLP.
    pub intermediate_size: i64,
    pub num_attention_heads: i64,
    /// Grouped-query attention: each key/value head serves `num_attention_heads / num_key_value_heads` query heads.
    pub num_key_value_heads: i64,
    pub head_dim: i64,
    pub rms_norm_eps: f64,
    pub attention_bias: bool,
    pub mlp_bias: bool,
}

impl DecoderLayerShape {
    /// The family's RMS norm over the hidden states: normalised states cast back to the input's kind, then scaled
    /// (transformers' `LlamaRMSNorm`); also the model's final norm.
    pub fn rms_norm(&self, p: &VarPath) -> RmsNorm {
        RmsNorm::new(p, self.hidden_size, self.rms_norm_eps, NormCast::ToInput)
    }
}

/// What every layer of one forward shares.
pub struct DecoderStep<'a> {
    /// Additive attention mask `[b, 1, t, past + t]` (causal and padding, and whatever else the model hides).
    pub bias: &'a Tensor,
    /// Rotary cosines and sines `[b, t, head_dim]`, in the model's kind ([`RotaryEmbedding::forward`]).
    pub cos: &'a Tensor,
    pub sin: &'a Tensor,
    /// Dropout on the attention weights (0 outside training).
    pub dropout: f64,
}

/// Self-attention with grouped key/value heads and rotary positions.
pub struct GroupedQueryAttention {
    q_proj: Linear,
    k_proj: Linear,
    v_proj: Linear,
    o_proj: Linear,
    heads: i64,
    kv_heads: i64,
    head_dim: i64,
    /// `head_dim^-½`, applied to the scores as transformers' eager path does.
    scaling: f64,
}

impl GroupedQueryAttention {
    pub fn new(p: &VarPath, shape: &DecoderLayerShape, init: Init) -> Self {
        let (d, hd, bias) = (shape.hidden_size, shape.head_dim, shape.attention_bias);
        let (q_out, kv_out) = (
            shape.num_attention_heads * hd,
            shape.num_key_value_heads * hd,
        );
        GroupedQueryAttention {
            q_proj: Linear::new(&(p / "q_proj"), d, q_out, bias, init),
            k_proj: Linear::new(&(p / "k_proj"), d, kv_out, bias, init),
            v_proj: Linear::new(&(p / "v_proj"), d, kv_out, bias, init),
            o_proj: Linear::new(&(p / "o_proj"), q_out, d, bias, init),
            heads: shape.num_attention_heads,
            kv_heads: shape.num_key_value_heads,
            head_dim: hd,
            scaling: (hd as f64).powf(-0.5),
        }
    }

    /// `[b, t, heads · head_dim]` → `[b, heads, t, head_dim]`.
    fn split_heads(&self, x: &Tensor, heads: i64) -> Tensor {
        let (b, t) = (x.size()[0], x.size()[1]);
        x.view([b, t, heads, self.head_dim]).transpose(1, 2)
    }

    /// Each key/value head repeated for the query heads it serves (transformers' `repeat_kv`: head `h` uses
    /// key/value head `h / groups`).
    fn repeat_kv(&self, x: &Tensor) -> Tensor {
        let groups = self.heads / self.kv_heads;
        if groups == 1 {
            return x.shallow_clone();
        }
        let s = x.size();
        x.unsqueeze(2)
            .expand([s[0], s[1], groups, s[2], s[3]], false)
            .reshape([s[0], s[1] * groups, s[2], s[3]])
    }

    /// `x` `[b, t, d]` → `[b, t, d]`; with a cache, this layer's keys and values are appended to it first.
    pub fn forward(
        &self,
        x: &Tensor,
        step: &DecoderStep,
        cache: Option<(&mut KvCache, usize)>,
    ) -> Tensor {
        let q = self.split_heads(&self.q_proj.forward(x), self.heads);
        let k = self.split_heads(&self.k_proj.forward(x), self.kv_heads);
        let v = self.split_heads(&self.v_proj.forward(x), self.kv_heads);
        let q = RotaryEmbedding::apply(&q, step.cos, step.sin);
        let k = RotaryEmbedding::apply(&k, step.cos, step.sin);
        // The cache holds rotated keys, before the repeat (as transformers' DynamicCache).
        let (k, v) = match cache {
            Some((cache, layer)) => cache.append(layer, k, v),
            None => (k, v),
        };
        let (k, v) = (self.repeat_kv(&k), self.repeat_kv(&v));
        let scores = q.matmul(&k.transpose(2, 3)) * self.scaling + step.bias;
        let weights = scores
            .softmax(-1, at_least_fp32(scores.kind()))
            .to_kind(q.kind())
            .dropout(step.dropout, step.dropout > 0.0);
        let out = weights.matmul(&v).transpose(1, 2);
        let (b, t) = (out.size()[0], out.size()[1]);
        self.o_proj
            .forward(&out.reshape([b, t, self.heads * self.head_dim]))
    }
}

/// SwiGLU: `down(silu(gate(x)) ⊙ up(x))`.
pub struct SwiGlu {
    gate_proj: Linear,
    up_proj: Linear,
    down_proj: Linear,
}

impl SwiGlu {
    pub fn new(p: &VarPath, shape: &DecoderLayerShape, init: Init) -> Self {
        let (d, ff, bias) = (shape.hidden_size, shape.intermediate_size, shape.mlp_bias);
        SwiGlu {
            gate_proj: Linear::new(&(p / "gate_proj"), d, ff, bias, init),
            up_proj: Linear::new(&(p / "up_proj"), d, ff, bias, init),
            down_proj: Linear::new(&(p / "down_proj"), ff, d, bias, init),
        }
    }

    pub fn forward(&self, x: &Tensor) -> Tensor {
        let hidden = self.gate_proj.forward(x).silu() * self.up_proj.forward(x);
        self.down_proj.forward(&hidden)
    }
}

/// Pre-norm block: `x + attn(norm(x))`, then `x + mlp(norm(x))`.
pub struct DecoderLayer {
    input_layernorm: RmsNorm,
    self_attn: GroupedQueryAttention,
    post_attention_layernorm: RmsNorm,
    mlp: SwiGlu,
}

impl DecoderLayer {
    /// The layer under `p` (`model.layers.<i>`), weight matrices drawn from `init` (norms one, biases zero).
    pub fn new(p: &VarPath, shape: &DecoderLayerShape, init: Init) -> Self {
        DecoderLayer {
            input_layernorm: shape.rms_norm(&(p / "input_layernorm")),
            self_attn: GroupedQueryAttention::new(&(p / "self_attn"), shape, init),
            post_attention_layernorm: shape.rms_norm(&(p / "post_attention_layernorm")),
            mlp: SwiGlu::new(&(p / "mlp"), shape, init),
        }
    }

    pub fn forward(
        &self,
        x: &Tensor,
        step: &DecoderStep,
        cache: Option<(&mut KvCache, usize)>,
    ) -> Tensor {
        let attended = self
            .self_attn
            .forward(&self.input_layernorm.forward(x), step, cache);
        let x = x + attended;
        let out = self.mlp.forward(&self.post_attention_layernorm.forward(&x));
        x + out
    }
}
