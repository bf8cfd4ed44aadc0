//! The parameter budget `l·d = m·d + (s+d)·r`: a PT prompt of `l` tokens costs as much as a DePT prompt of `m`
//! tokens plus a rank-`r` pair (A: s×r, B: r×d).

use crate::CoreError;

/// The fixed quantities of a budget: PT length `l`, hidden size `d`, maximum input length `s`.
///
/// The paper's T5-base budget (l = 100, d = 768, s = 256), solved for either unknown:
///
/// ```
/// use dept_core::budget::{Budget, Rounding};
///
/// let budget = Budget::new(100, 768, 256)?;
/// assert_eq!(budget.total(), 76_800);
/// // The paper's main setting: m = 60 soft tokens leave a rank-30 pair.
/// assert_eq!(budget.rank_for(60, Rounding::Exact)?.r, 30);
/// assert_eq!(budget.prompt_len_for(45, Rounding::Exact)?.m, 40);
/// // No integer rank fits m = 61: Exact says so, Nearest rounds and reports the difference.
/// assert!(budget.rank_for(61, Rounding::Exact).is_err());
/// assert_eq!(budget.rank_for(61, Rounding::Nearest)?.difference, -256);
/// # Ok::<(), dept_core::CoreError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budget {
    pub l: i64,
    pub d: i64,
    pub s: i64,
}

/// A DePT shape and what it costs relative to the budget.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Split {
    pub m: i64,
    pub r: i64,
    /// Trainable parameters: `m·d + (s+d)·r`.
    pub params: i64,
    /// `params − l·d`: zero for an exact split.
    pub difference: i64,
}

/// Exact: error when no integer solves the budget. Nearest: round and report the difference.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rounding {
    Exact,
    Nearest,
}

impl Budget {
    pub fn new(l: i64, d: i64, s: i64) -> Result<Self, CoreError> {
        if l <= 0 || d <= 0 || s <= 0 {
            return Err(CoreError::Budget(format!(
                "l, d and s must be positive, got l = {l}, d = {d}, s = {s}"
            )));
        }
        Ok(Budget { l, d, s })
    }

    /// The parameters of PT with `l` tokens.
    pub fn total(&self) -> i64 {
        self.l * self.d
    }

    pub fn split(&self, m: i64, r: i64) -> Split {
        let params = m * self.d + (self.s + self.d) * r;
        Split {
            m,
            r,
            params,
            difference: params - self.total(),
        }
    }

    /// The rank that spends what a prompt of `m` tokens leaves.
    pub fn rank_for(&self, m: i64, rounding: Rounding) -> Result<Split, CoreError> {
        if !(0..=self.l).contains(&m) {
            return Err(CoreError::Budget(format!(
                "prompt length m = {m} must lie in 0..={} (l)",
                self.l
            )));
        }
        let left = (self.l - m) * self.d;
        let width = self.s + self.d;
        if left % width == 0 {
            return Ok(self.split(m, left / width));
        }
        match rounding {
            Rounding::Nearest => Ok(self.split(m, (left as f64 / width as f64).round() as i64)),
            Rounding::Exact => {
                let below = self.split(m, left / width);
                let above = self.split(m, left / width + 1);
                Err(CoreError::Budget(format!(
                    "no integer rank r gives m·d + (s+d)·r = {} for m = {m} (l = {}, d = {}, s = {}); nearest: \
                     r = {} ({:+} parameters) or r = {} ({:+}); exact pairs near it: {}",
                    self.total(),
                    self.l,
                    self.d,
                    self.s,
                    below.r,
                    below.difference,
                    above.r,
                    above.difference,
                    self.nearest_exact_description(m, |p| p.m)
                )))
            }
        }
    }

    /// The prompt length that the budget leaves beside a rank-`r` pair.
    pub fn prompt_len_for(&self, r: i64, rounding: Rounding) -> Result<Split, CoreError> {
        let pair = (self.s + self.d) * r;
        if r < 0 || pair > self.total() {
            return Err(CoreError::Budget(format!(
                "rank r = {r} must lie in 0..={} for l = {}, d = {}, s = {}",
                self.total() / (self.s + self.d),
                self.l,
                self.d,
                self.s
            )));
        }
        let left = self.total() - pair;
        if left % self.d == 0 {
            return Ok(self.split(left / self.d, r));
        }
        match rounding {
            Rounding::Nearest => Ok(self.split((left as f64 / self.d as f64).round() as i64, r)),
            Rounding::Exact => {
                let below = self.split(left / self.d, r);
                let above = self.split(left / self.d + 1, r);
                Err(CoreError::Budget(format!(
                    "no integer prompt length m gives m·d + (s+d)·r = {} for r = {r} (l = {}, d = {}, s = {}); \
                     nearest: m = {} ({:+} parameters) or m = {} ({:+}); exact pairs near it: {}",
                    self.total(),
                    self.l,
                    self.d,
                    self.s,
                    below.m,
                    below.difference,
                    above.m,
                    above.difference,
                    self.nearest_exact_description(r, |p| p.r)
                )))
            }
        }
    }

    /// Every (m, r) with m, r ≥ 0 that spends the budget exactly, from r = 0 (plain PT) upwards.
    pub fn exact_pairs(&self) -> Vec<Split> {
        let width = self.s + self.d;
        (0..=self.total() / width)
            .filter(|r| (self.total() - width * r) % self.d == 0)
            .map(|r| self.split((self.total() - width * r) / self.d, r))
            .collect()
    }

    fn nearest_exact_description(&self, target: i64, key: impl Fn(&Split) -> i64) -> String {
        let mut pairs = self.exact_pairs();
        pairs.sort_by_key(|p| (key(p) - target).abs());
        let shown: Vec<String> = pairs
            .iter()
            .take(2)
            .map(|p| format!("(m = {}, r = {})", p.m, p.r))
            .collect();
        if shown.is_empty() {
            "none".into()
        } else {
            shown.join(", ")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t5_base() -> Budget {
        Budget::new(100, 768, 256).unwrap()
    }

    #[test]
    fn t5_base_pairs_of_the_paper_spend_76800() {
        let b = t5_base();
        assert_eq!(b.total(), 76_800);
        let pairs = b.exact_pairs();
        for (m, r) in [(100, 0), (80, 15), (60, 30), (40, 45)] {
            assert!(
                pairs
                    .iter()
                    .any(|p| p.m == m && p.r == r && p.difference == 0),
                "({m}, {r}) missing from {pairs:?}"
            );
        }
        assert!(pairs.iter().all(|p| p.params == 76_800));
        // r must be a multiple of 3 here (1024·r divisible by 768): r = 0, 3, …, 75.
        assert_eq!(pairs.len(), 26);
    }

    #[test]
    fn solves_either_unknown() {
        let b = t5_base();
        assert_eq!(b.rank_for(60, Rounding::Exact).unwrap().r, 30);
        assert_eq!(b.prompt_len_for(45, Rounding::Exact).unwrap().m, 40);
    }

    #[test]
    fn exact_mode_names_the_nearest_solutions() {
        let err = t5_base()
            .rank_for(61, Rounding::Exact)
            .unwrap_err()
            .to_string();
        assert!(err.contains("r = 29"), "{err}");
        assert!(err.contains("(m = 60, r = 30)"), "{err}");
    }

    #[test]
    fn nearest_mode_reports_the_difference() {
        let split = t5_base().rank_for(61, Rounding::Nearest).unwrap();
        // (100 − 61)·768 / 1024 = 29.25 → 29, which costs 61·768 + 1024·29 = 76 544.
        assert_eq!(
            (split.r, split.params, split.difference),
            (29, 76_544, -256)
        );
    }

    #[test]
    fn out_of_range_inputs_are_errors() {
        assert!(t5_base().rank_for(101, Rounding::Exact).is_err());
        assert!(t5_base().prompt_len_for(76, Rounding::Exact).is_err());
        assert!(Budget::new(0, 768, 256).is_err());
    }
}
