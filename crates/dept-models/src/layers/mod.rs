//! Layers and numeric helpers more than one backbone uses: the fp32 upcast of 16-bit computations, the additive
//! attention masks and RMS norm (T5 and Llama), here; `nn.Linear` ([`Linear`]), rotary positions
//! ([`RotaryEmbedding`]) and the Llama-family decoder block ([`decoder`]: grouped-query attention, SwiGLU, the
//! pre-norm layer) in their own files. Each model file builds its blocks from these, so a fix here reaches every
//! backbone at once, and a new model of a known family is its config and its top-level module only.

pub mod decoder;
mod linear;
mod rotary;

pub use decoder::{DecoderLayer, DecoderLayerShape, DecoderStep, GroupedQueryAttention, SwiGlu};
pub use linear::{linear, Linear};
pub use rotary::RotaryEmbedding;

use tch::nn::{Init, Path as VarPath};
use tch::{Device, Kind, Tensor};

/// fp32 for 16-bit kinds (as transformers computes softmax and norms); fp64 stays fp64 for exactness checks.
pub fn at_least_fp32(kind: Kind) -> Kind {
    if kind == Kind::Double {
        Kind::Double
    } else {
        Kind::Float
    }
}

/// `x` in fp32 when it is 16-bit (logits handed to a softmax or a loss, as autocast does); other kinds unchanged.
pub fn upcast_16_bit(x: Tensor) -> Tensor {
    match x.kind() {
        Kind::BFloat16 | Kind::Half => x.to_kind(Kind::Float),
        _ => x,
    }
}

/// The most negative finite value of `kind`, which masked attention scores get (transformers' `finfo.min`).
pub fn min_value(kind: Kind) -> f64 {
    match kind {
        Kind::Double => f64::MIN,
        Kind::Half => -65504.0,
        Kind::BFloat16 => -3.389_531_389_251_535e38,
        _ => f32::MIN as f64,
    }
}

/// `[b, n]` mask of 1/0 → `[b, 1, 1, n]`: 0 where attended, the kind's minimum where not (transformers'
/// `get_extended_attention_mask`).
pub fn additive_padding_mask(mask: &Tensor, kind: Kind) -> Tensor {
    let keep = mask.to_kind(kind).unsqueeze(1).unsqueeze(1);
    (keep.ones_like() - keep) * min_value(kind)
}

/// `[1, 1, t, t]`: the kind's minimum above the diagonal (added to scores, with a padding mask beside it).
pub fn additive_causal_mask(t: i64, kind: Kind, device: Device) -> Tensor {
    (Tensor::ones([t, t], (kind, device)).triu(1) * min_value(kind)).view([1, 1, t, t])
}

/// `[b, 1, t, past + t]`: 0 where query `i` (at cache position `past + i`) may see key `j` — `j ≤ past + i` and
/// `attention_mask[j] ≠ 0` — and the kind's minimum elsewhere. As transformers' eager mask, the minimum is set, not
/// added, so a fully masked row (a left-padding query) gets equal scores and a finite uniform softmax.
pub fn causal_padding_bias(attention_mask: &Tensor, past: i64, t: i64, kind: Kind) -> Tensor {
    let device = attention_mask.device();
    let total = past + t;
    let queries = Tensor::arange_start(past, total, (Kind::Int64, device)).unsqueeze(1);
    let keys = Tensor::arange(total, (Kind::Int64, device)).unsqueeze(0);
    let causal = keys.le_tensor(&queries); // [t, past + t]
    let keep = attention_mask.ne(0).unsqueeze(1); // [b, 1, past + t]
    let allowed = causal.unsqueeze(0).logical_and(&keep).unsqueeze(1);
    let b = attention_mask.size()[0];
    Tensor::zeros([b, 1, t, total], (kind, device))
        .masked_fill(&allowed.logical_not(), min_value(kind))
}

/// Which kind an RMS norm's normalised states take before the weight scales them. The two models' reference
/// implementations differ here, and bf16 runs match them only if each keeps its own rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NormCast {
    /// Back to the input's kind (transformers' `LlamaRMSNorm`).
    ToInput,
    /// To the weight's kind when that is 16-bit, else left in fp32 (transformers' `T5LayerNorm`).
    ToHalfWeight,
}

/// RMS norm: no mean, no bias; the mean square in fp32 (fp64 stays fp64), then scaled by `weight`.
pub struct RmsNorm {
    weight: Tensor,
    eps: f64,
    cast: NormCast,
}

impl RmsNorm {
    /// `p / "weight"` of width `width`, initialised to one.
    pub fn new(p: &VarPath, width: i64, eps: f64, cast: NormCast) -> Self {
        RmsNorm {
            weight: p.var("weight", &[width], Init::Const(1.0)),
            eps,
            cast,
        }
    }

    pub fn forward(&self, x: &Tensor) -> Tensor {
        let input_kind = x.kind();
        let x = x.to_kind(at_least_fp32(input_kind));
        let variance = x.pow_tensor_scalar(2).mean_dim(-1, true, x.kind());
        let normed = &x * (variance + self.eps).rsqrt();
        let normed = match (self.cast, self.weight.kind()) {
            (NormCast::ToInput, _) => normed.to_kind(input_kind),
            (NormCast::ToHalfWeight, k @ (Kind::Half | Kind::BFloat16)) => normed.to_kind(k),
            (NormCast::ToHalfWeight, _) => normed,
        };
        &self.weight * normed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rms_norm_casts_by_its_rule() {
        let vs = tch::nn::VarStore::new(Device::Cpu);
        let x = Tensor::from_slice(&[3.0f32, 4.0]).view([1, 2]);
        let llama = RmsNorm::new(&vs.root(), 2, 0.0, NormCast::ToInput);
        let t5 = RmsNorm::new(&(vs.root() / "t5"), 2, 0.0, NormCast::ToHalfWeight);
        // rms of (3, 4) is √12.5.
        let expected = [3.0 / 12.5f64.sqrt(), 4.0 / 12.5f64.sqrt()];
        for norm in [&llama, &t5] {
            let y =
                Vec::<f64>::try_from(norm.forward(&x).view([-1]).to_kind(Kind::Double)).unwrap();
            assert!((y[0] - expected[0]).abs() < 1e-6 && (y[1] - expected[1]).abs() < 1e-6);
        }
        let half = x.to_kind(Kind::BFloat16);
        assert_eq!(
            llama.forward(&half).kind(),
            Kind::Float,
            "fp32 weight × bf16 states"
        );
        assert_eq!(t5.forward(&half).kind(), Kind::Float);
    }

    #[test]
    fn masks_put_the_minimum_where_nothing_is_seen() {
        let mask = Tensor::from_slice(&[1i64, 1, 0]).view([1, 3]);
        let padding = additive_padding_mask(&mask, Kind::Float);
        assert_eq!(padding.size(), [1, 1, 1, 3]);
        assert_eq!(padding.double_value(&[0, 0, 0, 2]), f32::MIN as f64);
        let causal = additive_causal_mask(3, Kind::Float, Device::Cpu);
        assert_eq!(causal.double_value(&[0, 0, 0, 1]), f32::MIN as f64);
        assert_eq!(causal.double_value(&[0, 0, 1, 0]), 0.0);
        let both = causal_padding_bias(&mask, 0, 3, Kind::Float);
        assert_eq!(both.double_value(&[0, 0, 2, 1]), 0.0);
        assert_eq!(
            both.double_value(&[0, 0, 2, 2]),
            f32::MIN as f64,
            "padding key"
        );
        assert_eq!(
            both.double_value(&[0, 0, 0, 1]),
            f32::MIN as f64,
            "future key"
        );
    }
}
