//! Timings taken in rounds: each side of a side-by-side bench runs its whole block alone, the blocks alternate
//! round by round, and a figure is the median over every round's timed runs with its range and each round's median
//! (two rounds that disagree by more than a few percent mean a noisy machine).

use crate::efficiency::Stats;

/// One side's timed milliseconds, per round.
#[derive(Default, Clone, Debug)]
pub(crate) struct Timings {
    pub(crate) rounds: Vec<Vec<f64>>,
}

impl Timings {
    /// Median and range over every round.
    pub(crate) fn all(&self) -> Stats {
        Stats::of(self.rounds.concat())
    }

    pub(crate) fn round_medians(&self) -> Vec<f64> {
        self.rounds
            .iter()
            .map(|r| Stats::of(r.clone()).median)
            .collect()
    }

    /// Each round's total (an epoch's time when a round's runs are an epoch's steps).
    pub(crate) fn round_sums(&self) -> Vec<f64> {
        self.rounds.iter().map(|r| r.iter().sum()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn figures_span_every_round() {
        let t = Timings {
            rounds: vec![vec![3.0, 1.0, 2.0], vec![10.0, 4.0]],
        };
        let all = t.all();
        assert_eq!((all.median, all.min, all.max), (3.0, 1.0, 10.0));
        assert_eq!(t.round_medians(), vec![2.0, 7.0]);
        assert_eq!(t.round_sums(), vec![6.0, 14.0]);
    }
}
