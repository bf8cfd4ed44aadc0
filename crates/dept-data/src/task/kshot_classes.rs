//! Which classes a task's k-shot training sets are balanced over. Drawing them is [`crate::kshot`]'s job.

/// A task's classes in the official `num_labels_mapping` (tasks outside it have no k-shot setting there).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct KShotClasses {
    /// The classes, each drawn `k / len` times.
    pub classes: &'static [&'static str],
    /// How an example's class is read off its target.
    pub class_of: ClassOf,
}

/// How an example's k-shot class is read off its target.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ClassOf {
    /// The target is the class (label ids).
    Target,
    /// The target is a score: the first class up to and including this value, the second above it (STS-B, 2.5).
    ScoreAtMost(f64),
}

impl KShotClasses {
    /// Binary label ids, classes `"0"` and `"1"`.
    pub const BINARY: KShotClasses = KShotClasses {
        classes: &["0", "1"],
        class_of: ClassOf::Target,
    };
    /// Three label ids, classes `"0"`, `"1"` and `"2"`.
    pub const TERNARY: KShotClasses = KShotClasses {
        classes: &["0", "1", "2"],
        class_of: ClassOf::Target,
    };
}
