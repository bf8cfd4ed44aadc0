//! `nn.Linear` under its checkpoint names (`weight`, `bias`).

use tch::nn::{Init, Path as VarPath};
use tch::Tensor;

/// `nn.Linear`: weight `[out, in]`, optional bias.
pub struct Linear {
    weight: Tensor,
    bias: Option<Tensor>,
}

impl Linear {
    /// `p / "weight"` drawn from `init` and, when `bias`, `p / "bias"` at zero (transformers' init).
    pub fn new(p: &VarPath, input: i64, output: i64, bias: bool, init: Init) -> Self {
        Linear {
            weight: p.var("weight", &[output, input], init),
            bias: bias.then(|| p.var("bias", &[output], Init::Const(0.0))),
        }
    }

    pub fn forward(&self, x: &Tensor) -> Tensor {
        x.linear(&self.weight, self.bias.as_ref())
    }
}
