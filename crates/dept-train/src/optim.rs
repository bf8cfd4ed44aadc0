//! AdamW with one learning rate per parameter group, as the official DePT code runs it.
//!
//! The official `train.py` uses `transformers.AdamW` (eps 1e-6, weight decay 0, bias correction on), whose update
//! differs from `torch.optim.AdamW` in where eps enters: `p -= lr·√(1−β2ᵗ)/(1−β1ᵗ) · m / (√v + eps)`. We implement
//! exactly that, in our own code rather than libtorch's optimiser, so that moments can be checkpointed and a
//! resumed run continues bit for bit.

use tch::{Kind, Tensor};

/// β1, β2, eps and decoupled weight decay.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AdamWConfig {
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
    pub weight_decay: f64,
}

impl Default for AdamWConfig {
    /// `transformers.AdamW`'s defaults, which the official code keeps.
    fn default() -> Self {
        AdamWConfig {
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-6,
            weight_decay: 0.0,
        }
    }
}

struct ParamState {
    group: usize,
    param: Tensor,
    exp_avg: Tensor,
    exp_avg_sq: Tensor,
    step: i64,
}

/// The optimiser: parameters in numbered groups, each group stepped with its own learning rate.
pub struct AdamW {
    config: AdamWConfig,
    params: Vec<ParamState>,
}

impl AdamW {
    /// `groups`: `(group index, parameters)`, e.g. [`dept_core::DecomposedPrompt::param_groups`].
    pub fn new(groups: Vec<(usize, Vec<Tensor>)>, config: AdamWConfig) -> Self {
        let params = groups
            .into_iter()
            .flat_map(|(group, params)| {
                params.into_iter().map(move |param| ParamState {
                    group,
                    exp_avg: param.zeros_like(),
                    exp_avg_sq: param.zeros_like(),
                    param,
                    step: 0,
                })
            })
            .collect();
        AdamW { config, params }
    }

    pub fn zero_grad(&mut self) {
        for p in &mut self.params {
            let mut grad = p.param.grad();
            if grad.defined() {
                let _ = grad.zero_();
            }
        }
    }

    /// One update. `lr(group)` gives each group's current learning rate. Parameters without a gradient are
    /// skipped (their step count does not advance), as in PyTorch.
    pub fn step(&mut self, lr: impl Fn(usize) -> f64) {
        let AdamWConfig {
            beta1,
            beta2,
            eps,
            weight_decay,
        } = self.config;
        tch::no_grad(|| {
            for p in &mut self.params {
                let grad = p.param.grad();
                if !grad.defined() {
                    continue;
                }
                let lr = lr(p.group);
                p.step += 1;
                let _ = p.exp_avg.g_mul_scalar_(beta1);
                let _ = p.exp_avg.g_add_(&(&grad * (1.0 - beta1)));
                let _ = p.exp_avg_sq.g_mul_scalar_(beta2);
                let _ = p
                    .exp_avg_sq
                    .addcmul_(&grad, &grad.g_mul_scalar(1.0 - beta2));
                let denom = p.exp_avg_sq.sqrt().g_add_scalar(eps);
                let t = p.step as f64;
                let step_size = lr * (1.0 - beta2.powf(t)).sqrt() / (1.0 - beta1.powf(t));
                let _ = p
                    .param
                    .addcdiv_(&p.exp_avg.g_mul_scalar(-step_size), &denom);
                if weight_decay > 0.0 {
                    let decay = &p.param * (-lr * weight_decay);
                    let _ = p.param.g_add_(&decay);
                }
            }
        })
    }

    /// Moments and step counts by parameter position, for checkpoints.
    pub fn state(&self) -> Vec<(Tensor, Tensor, i64)> {
        self.params
            .iter()
            .map(|p| {
                (
                    p.exp_avg.shallow_clone(),
                    p.exp_avg_sq.shallow_clone(),
                    p.step,
                )
            })
            .collect()
    }

    /// Restores what [`state`](Self::state) returned; shapes must match parameter by parameter.
    pub fn load_state(&mut self, state: Vec<(Tensor, Tensor, i64)>) -> Result<(), StateMismatch> {
        if state.len() != self.params.len() {
            return Err(StateMismatch::Count {
                saved: state.len(),
                adapter: self.params.len(),
            });
        }
        tch::no_grad(|| {
            for (i, (p, (m, v, step))) in self.params.iter_mut().zip(state).enumerate() {
                if m.size() != p.param.size() || v.size() != p.param.size() {
                    return Err(StateMismatch::Shape {
                        index: i,
                        saved: m.size(),
                        parameter: p.param.size(),
                    });
                }
                p.exp_avg.copy_(&m.to_kind(Kind::Float));
                p.exp_avg_sq.copy_(&v.to_kind(Kind::Float));
                p.step = step;
            }
            Ok(())
        })
    }
}

/// Saved optimiser state that does not fit the adapter it is loaded into.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StateMismatch {
    #[error("optimiser state has {saved} parameters, the adapter has {adapter}")]
    Count { saved: usize, adapter: usize },
    #[error("optimiser moment {index} has shape {saved:?}, parameter has {parameter:?}")]
    Shape {
        index: usize,
        saved: Vec<i64>,
        parameter: Vec<i64>,
    },
}

/// Scales all gradients so that their joint L2 norm is at most `max_norm` (PyTorch's `clip_grad_norm_`:
/// coefficient `max_norm / (norm + 1e-6)`, applied only when below 1). Returns the norm before clipping.
pub fn clip_grad_norm(params: &[Tensor], max_norm: f64) -> f64 {
    tch::no_grad(|| {
        let grads: Vec<Tensor> = params
            .iter()
            .map(Tensor::grad)
            .filter(Tensor::defined)
            .collect();
        if grads.is_empty() {
            return 0.0;
        }
        let norms: Vec<Tensor> = grads
            .iter()
            .map(|g| g.norm().to_kind(Kind::Float))
            .collect();
        let total = Tensor::stack(&norms, 0).norm();
        let total_f = f64::try_from(&total).unwrap_or(f64::NAN);
        // PyTorch evaluates `max_norm / (norm + 1e-6)` as `reciprocal(norm + 1e-6) * max_norm`.
        let coef = ((total + 1e-6).reciprocal() * max_norm).clamp_max(1.0);
        if total_f.is_finite() {
            for g in &grads {
                let mut g = g.shallow_clone();
                let _ = g.g_mul_(&coef);
            }
        }
        total_f
    })
}
