//! Rotary position embedding (RoPE, the default kind), as transformers' Llama computes it.

use tch::{Device, Kind, Tensor};

/// Rotary position embedding (the default kind): angle `position · inv_freq[i]`, `inv_freq = 1 / θ^(2i/dim)`.
pub struct RotaryEmbedding {
    /// `[head_dim / 2]`, fp32 whatever the weights' kind (transformers keeps this buffer fp32 when loading bf16).
    inv_freq: Tensor,
}

impl RotaryEmbedding {
    /// Frequencies for heads of `head_dim` (even) under base `theta` (`rope_theta`).
    pub fn new(head_dim: i64, theta: f64, device: Device) -> Self {
        let dim = head_dim;
        // As transformers: exponents in fp32 from integer steps, then `theta ** x` and its reciprocal in fp32.
        let exponents = Tensor::arange_start_step(0, dim, 2, (Kind::Int64, device))
            .to_kind(Kind::Float)
            / dim as f64;
        let inv_freq = Tensor::pow_scalar(theta, &exponents).reciprocal();
        RotaryEmbedding { inv_freq }
    }

    /// `position_ids` `[b, t]` → (cos, sin) `[b, t, head_dim]` in `kind`, the half-angles repeated as
    /// `cat(freqs, freqs)` to match `rotate_half`.
    pub fn forward(&self, position_ids: &Tensor, kind: Kind) -> (Tensor, Tensor) {
        // Each angle is one fp32 product, as transformers' (inv_freq ⊗ positions) matmul with an inner size of 1.
        let freqs = position_ids.to_kind(Kind::Float).unsqueeze(-1) * &self.inv_freq;
        let emb = Tensor::cat(&[&freqs, &freqs], -1);
        (emb.cos().to_kind(kind), emb.sin().to_kind(kind))
    }

    /// `x·cos + rotate_half(x)·sin` for `x` `[b, heads, t, head_dim]`, where `rotate_half` = `[−x₂, x₁]`.
    pub fn apply(x: &Tensor, cos: &Tensor, sin: &Tensor) -> Tensor {
        let half = x.size()[3] / 2;
        let rotated = Tensor::cat(&[-x.narrow(3, half, half), x.narrow(3, 0, half)], 3);
        x * cos.unsqueeze(1) + rotated * sin.unsqueeze(1)
    }
}
