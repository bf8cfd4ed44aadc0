//! Linear axes over "nice" ticks.

/// A linear axis over "nice" ticks (1, 2, 2.5 or 5 times a power of ten); its range is the first to the last tick.
#[derive(Debug, Clone, PartialEq)]
pub struct Axis {
    pub ticks: Vec<f64>,
    pub step: f64,
}

/// One labelled position on an x axis, in data units.
#[derive(Debug, Clone, PartialEq)]
pub struct Tick {
    pub at: f64,
    pub label: String,
    pub bold: bool,
}

impl Tick {
    pub fn new(at: f64, label: impl Into<String>) -> Self {
        Tick {
            at,
            label: label.into(),
            bold: false,
        }
    }
}

/// The smallest and largest finite value, or `None` when there is none (what an axis should cover).
pub fn bounds(values: impl IntoIterator<Item = f64>) -> Option<(f64, f64)> {
    let mut finite = values.into_iter().filter(|v| v.is_finite());
    let first = finite.next()?;
    Some(finite.fold((first, first), |(lo, hi), v| (lo.min(v), hi.max(v))))
}

impl Axis {
    /// Ticks covering [lo, hi], about `target` intervals.
    pub fn nice(lo: f64, hi: f64, target: usize) -> Self {
        let (lo, hi) = if hi - lo > 1e-12 {
            (lo, hi)
        } else {
            (lo - 0.5, hi + 0.5)
        };
        let step = nice_step((hi - lo) / target.max(1) as f64);
        let k0 = (lo / step + 1e-9).floor() as i64;
        let k1 = (hi / step - 1e-9).ceil() as i64;
        Axis {
            ticks: (k0..=k1.max(k0 + 1)).map(|k| k as f64 * step).collect(),
            step,
        }
    }

    pub fn lo(&self) -> f64 {
        self.ticks[0]
    }

    pub fn hi(&self) -> f64 {
        self.ticks[self.ticks.len() - 1]
    }

    /// The pixel row of `v` in a frame from `top` to `bottom` (or, read sideways, the column from `bottom` = left
    /// to `top` = right).
    pub fn px(&self, v: f64, top: f64, bottom: f64) -> f64 {
        bottom - (v - self.lo()) / (self.hi() - self.lo()) * (bottom - top)
    }

    /// Each tick written with as many decimals as the step needs, never "-0".
    pub fn labels(&self) -> Vec<String> {
        let decimals = decimals(self.step);
        self.ticks
            .iter()
            .map(|t| {
                let s = format!("{t:.decimals$}");
                let unsigned = s.trim_start_matches('-');
                if unsigned.chars().all(|c| c == '0' || c == '.') {
                    unsigned.to_string()
                } else {
                    s
                }
            })
            .collect()
    }

    /// The ticks as labelled x positions.
    pub fn tick_marks(&self) -> Vec<Tick> {
        self.ticks
            .iter()
            .zip(self.labels())
            .map(|(&at, label)| Tick::new(at, label))
            .collect()
    }
}

fn nice_step(raw: f64) -> f64 {
    if !(raw.is_finite() && raw > 0.0) {
        return 1.0;
    }
    let magnitude = 10f64.powf(raw.log10().floor());
    let nice = match raw / magnitude {
        f if f <= 1.0 => 1.0,
        f if f <= 2.0 => 2.0,
        f if f <= 2.5 => 2.5,
        f if f <= 5.0 => 5.0,
        _ => 10.0,
    };
    nice * magnitude
}

/// Decimal places that show `step` exactly.
fn decimals(step: f64) -> usize {
    (0..6)
        .find(|&d| {
            let scaled = step * 10f64.powi(d as i32);
            (scaled - scaled.round()).abs() < 1e-6 * scaled.abs().max(1.0)
        })
        .unwrap_or(6)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_are_nice_and_cover_the_range() {
        assert_eq!(
            Axis::nice(0.43, 1.02, 5).labels(),
            ["0.4", "0.6", "0.8", "1.0", "1.2"]
        );
        assert_eq!(
            Axis::nice(1.0, 120.0, 5).labels(),
            ["0", "25", "50", "75", "100", "125"]
        );
        assert_eq!(
            Axis::nice(-0.3, 0.2, 5).labels(),
            ["-0.3", "-0.2", "-0.1", "0.0", "0.1", "0.2"]
        );
        let a = Axis::nice(5.0, 5.0, 5);
        assert!(a.lo() <= 5.0 && a.hi() >= 5.0 && a.hi() > a.lo());
    }

    #[test]
    fn non_finite_spans_fall_back_to_unit_steps() {
        assert_eq!(nice_step(f64::NAN), 1.0);
        assert_eq!(nice_step(0.0), 1.0);
    }

    #[test]
    fn px_maps_the_range_onto_the_frame() {
        let a = Axis::nice(0.0, 10.0, 5);
        assert_eq!(a.px(0.0, 100.0, 300.0), 300.0);
        assert_eq!(a.px(10.0, 100.0, 300.0), 100.0);
        assert_eq!(a.px(5.0, 100.0, 300.0), 200.0);
        let marks = a.tick_marks();
        assert_eq!(marks[1], Tick::new(2.0, "2"));
    }
}
