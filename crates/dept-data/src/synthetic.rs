//! A small, learnable dataset in the GLUE RTE file layout, for smoke tests and the offline quickstart.
//!
//! Premise: `"the <animal> <verb> the <object> ."`; hypothesis: the same sentence (entailment) or one with another
//! object (not_entailment). Written as `<dir>/RTE/train.tsv` and `dev.tsv` with the original header, so it goes
//! through the real RTE reader, splits and metric.

use std::fmt::Write as _;
use std::path::Path;

use crate::{DataError, Result};

const ANIMALS: [&str; 6] = ["cat", "dog", "bird", "fox", "horse", "mouse"];
const VERBS: [&str; 4] = ["sees", "likes", "chases", "finds"];
const OBJECTS: [&str; 6] = ["ball", "tree", "river", "house", "apple", "stone"];

/// Every word the generated sentences use (plus the formatted input's field names and the label ids).
pub fn vocabulary() -> Vec<&'static str> {
    let mut words = vec!["rte", "sentence1", "sentence2", ":", ".", "the", "0", "1"];
    words.extend(ANIMALS);
    words.extend(VERBS);
    words.extend(OBJECTS);
    words
}

/// Writes `n_train` training and `n_dev` validation rows (half of each entailment), deterministic in `seed`.
pub fn write_rte_like(data_dir: &Path, n_train: usize, n_dev: usize, seed: u64) -> Result<()> {
    let dir = data_dir.join("RTE");
    std::fs::create_dir_all(&dir).map_err(|error| DataError::Io {
        path: dir.clone(),
        error,
    })?;
    let mut rng = SplitMix(seed);
    for (file, rows) in [("train.tsv", n_train), ("dev.tsv", n_dev)] {
        let mut text = String::from("index\tsentence1\tsentence2\tlabel\n");
        for i in 0..rows {
            let animal = ANIMALS[rng.below(ANIMALS.len())];
            let verb = VERBS[rng.below(VERBS.len())];
            let object = rng.below(OBJECTS.len());
            let entailed = i % 2 == 0;
            let other = if entailed {
                object
            } else {
                (object + 1 + rng.below(OBJECTS.len() - 1)) % OBJECTS.len()
            };
            let label = if entailed {
                "entailment"
            } else {
                "not_entailment"
            };
            let _ = writeln!(
                text,
                "{i}\tthe {animal} {verb} the {} .\tthe {animal} {verb} the {} .\t{label}",
                OBJECTS[object], OBJECTS[other]
            );
        }
        let path = dir.join(file);
        std::fs::write(&path, text).map_err(|error| DataError::Io { path, error })?;
    }
    Ok(())
}

/// SplitMix64: a tiny deterministic generator, enough to vary sentences.
struct SplitMix(u64);

impl SplitMix {
    fn below(&mut self, n: usize) -> usize {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        ((z ^ (z >> 31)) % n as u64) as usize
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{load_split, task, Split, OFFICIAL_SPLIT_SEED};

    #[test]
    fn loads_through_the_real_rte_reader() {
        let dir = tempfile::tempdir().unwrap();
        write_rte_like(dir.path(), 40, 20, 1).unwrap();
        let rte = task("rte").unwrap();
        let train = load_split(rte, dir.path(), Split::Train, OFFICIAL_SPLIT_SEED).unwrap();
        let validation =
            load_split(rte, dir.path(), Split::Validation, OFFICIAL_SPLIT_SEED).unwrap();
        let test = load_split(rte, dir.path(), Split::Test, OFFICIAL_SPLIT_SEED).unwrap();
        assert_eq!((train.len(), validation.len(), test.len()), (40, 10, 10));
        assert!(train[0].input.starts_with("sentence1: the "));
        let vocab = vocabulary();
        for e in &train {
            for word in e.input.split_whitespace() {
                let word = word.trim_end_matches(':');
                assert!(vocab.contains(&word), "{word} missing from the vocabulary");
            }
        }
    }
}
