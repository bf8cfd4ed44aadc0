//! Learning-rate schedule: linear warm-up, then linear decay to zero (`get_linear_schedule_with_warmup`).

/// The multiplier of the base learning rate at each optimiser step.
///
/// ```
/// use dept_train::schedule::LinearWarmup;
///
/// let schedule = LinearWarmup { warmup_steps: 4, total_steps: 12 };
/// let factors: Vec<f64> = [0, 2, 4, 8, 12].map(|step| schedule.factor(step)).to_vec();
/// assert_eq!(factors, [0.0, 0.5, 1.0, 0.5, 0.0]);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LinearWarmup {
    pub warmup_steps: u64,
    pub total_steps: u64,
}

impl LinearWarmup {
    /// The factor applied at optimiser step `step` (0 for the first update), as Hugging Face's lambda.
    pub fn factor(&self, step: u64) -> f64 {
        if step < self.warmup_steps {
            return step as f64 / self.warmup_steps.max(1) as f64;
        }
        let left = self.total_steps.saturating_sub(step) as f64;
        let span = self.total_steps.saturating_sub(self.warmup_steps).max(1) as f64;
        (left / span).max(0.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn warms_up_then_decays_like_hugging_face() {
        let s = LinearWarmup {
            warmup_steps: 4,
            total_steps: 12,
        };
        let factors: Vec<f64> = (0..14).map(|k| s.factor(k)).collect();
        let expected = [
            0.0, 0.25, 0.5, 0.75, 1.0, 0.875, 0.75, 0.625, 0.5, 0.375, 0.25, 0.125, 0.0, 0.0,
        ];
        assert_eq!(factors, expected);
    }

    #[test]
    fn no_warmup_starts_at_full_rate() {
        let s = LinearWarmup {
            warmup_steps: 0,
            total_steps: 10,
        };
        assert_eq!(s.factor(0), 1.0);
        assert_eq!(s.factor(5), 0.5);
    }
}
