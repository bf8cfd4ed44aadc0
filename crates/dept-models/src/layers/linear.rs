//! `nn.Linear` under its checkpoint names (`weight`, `bias`), and the product every backbone's projections use.

use std::ops::RangeInclusive;

use tch::nn::{Init, Path as VarPath};
use tch::{Device, Kind, Tensor};

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
        linear(x, &self.weight, self.bias.as_ref())
    }
}

/// Row counts for which [`linear`] computes a decoding step's projections as `(W·xᵀ)ᵀ` on CPU.
///
/// libtorch's `x·Wᵀ` hands MKL a product whose small dimension is the rows; MKL then streams the weight slowly, and
/// below 16 rows it does so on one thread. Asked for `W·xᵀ` (the weight as the large left operand) it is faster,
/// measured with libtorch 2.11's MKL on this project's AVX2 machine (2 threads, t5-small's decoder projections and
/// output layer, weights streamed from memory as in a decoding step, `tests/reference/linear_forms.py`): 1.2× at
/// 1 row, 2.5× at 2 and 4, 2.0× at 8, 1.8× at 16 and 32, 1.5× at 64, 1.3× at 128, equal from 256 on. From 16 rows
/// the sums are the same bits as `x·Wᵀ`; below 16 MKL takes another kernel, whose sums differ from `x·Wᵀ` in the
/// last bits (at most 1.3e-4 on those products), as a row decoded alone differs from the same row in a batch.
const TRANSPOSED_ROWS: RangeInclusive<i64> = 1..=128;

/// `x·Wᵀ (+ b)` over the last dimension of `x`, as `nn.Linear`. A decoding step's input (`[rows, 1, in]`: one new
/// position per row) where no gradient is recorded, on CPU in fp32 with a row count in [`TRANSPOSED_ROWS`], is
/// computed as `(W·xᵀ)ᵀ` (one row against a weight with more outputs than inputs stacked twice), the same values
/// faster (the same bits from 16 rows, the last bits apart below); everything else (training, encoders and other
/// passes over whole sequences, GPUs, 16-bit) is libtorch's `linear`. Passes over whole sequences keep it because
/// there a row's values must not depend on how many rows share the product (features extracted in any batch are
/// the same bits), which MKL guarantees for `x·Wᵀ` and not for `W·xᵀ` at every width.
pub fn linear(x: &Tensor, weight: &Tensor, bias: Option<&Tensor>) -> Tensor {
    let size = x.size();
    let (rows, width) = match size.as_slice() {
        &[rows, 1, width] => (rows, width),
        _ => return x.linear(weight, bias),
    };
    let transposed = TRANSPOSED_ROWS.contains(&rows)
        && x.device() == Device::Cpu
        && x.kind() == Kind::Float
        && weight.kind() == Kind::Float
        && weight.dim() == 2
        && !x.requires_grad()
        && !weight.requires_grad()
        && bias.is_none_or(|b| !b.requires_grad());
    let outputs = weight.size()[0];
    // One row against a weight with no more outputs than inputs: MKL's matrix-vector kernel for `x·Wᵀ` is as fast
    // as any other form there.
    if !transposed || (rows == 1 && outputs <= width) {
        return x.linear(weight, bias);
    }
    let product = if rows == 1 {
        // `W·xᵀ` with one column is a matrix-vector product, which MKL runs on one thread; two equal columns make
        // it a matrix product, which it threads, and the first column is the row's result.
        let twice = x.reshape([1, width]).expand([2, width], false).contiguous();
        weight.mm(&twice.tr()).tr().narrow(0, 0, 1)
    } else {
        weight.mm(&x.reshape([rows, width]).tr()).tr()
    };
    let out = match bias {
        Some(b) => product + b,
        None => product.contiguous(),
    };
    out.view([rows, 1, outputs])
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A decoding step's projection, transposed or not, gives what libtorch's `linear` gives, with and without a
    /// bias; with gradients recorded it is libtorch's `linear` itself.
    #[test]
    fn the_transposed_form_equals_linear() {
        tch::manual_seed(0);
        let narrow = Tensor::randn([96, 64], (Kind::Float, Device::Cpu));
        let wide = Tensor::randn([96, 128], (Kind::Float, Device::Cpu));
        let bias = Tensor::randn([96], (Kind::Float, Device::Cpu));
        // One row against more outputs than inputs (stacked twice), one row against fewer (libtorch's own), a few
        // rows, the edges of the range, past it, and inputs that are not a decoding step.
        for (shape, weight) in [
            (vec![1, 1, 64], &narrow),
            (vec![1, 1, 128], &wide),
            (vec![3, 1, 64], &narrow),
            (vec![16, 1, 64], &narrow),
            (vec![128, 1, 64], &narrow),
            (vec![256, 1, 64], &narrow),
            (vec![4, 8, 64], &narrow),
            (vec![32, 64], &narrow),
        ] {
            let x = Tensor::randn(shape.as_slice(), (Kind::Float, Device::Cpu));
            for b in [None, Some(&bias)] {
                let ours = linear(&x, weight, b);
                let theirs = x.linear(weight, b);
                assert_eq!(ours.size(), theirs.size());
                let diff = (&ours - &theirs).abs().max().double_value(&[]);
                assert!(diff <= 1e-5, "{shape:?}, bias {}: {diff}", b.is_some());
            }
        }
        let weight = &narrow;
        let x = Tensor::randn([32, 1, 64], (Kind::Float, Device::Cpu)).set_requires_grad(true);
        let y = linear(&x, weight, None);
        y.sum(Kind::Float).backward();
        let expected = weight.sum_dim_intlist([0i64].as_slice(), false, Kind::Float);
        assert!(x
            .grad()
            .allclose(&expected.expand([32, 64], false), 1e-5, 1e-5, false));
    }
}
