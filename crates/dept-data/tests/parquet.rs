//! Hub parquet exports load like the original files: a snappy-compressed `glue/rte`-schema file written here.

#[path = "support/rte_parquet.rs"]
mod rte_parquet;

use dept_data::{load_split, task, Split};
use rte_parquet::write_rte;

#[test]
fn hub_parquet_export_loads_and_splits_like_the_original() {
    let tmp = tempfile::tempdir().unwrap();
    write_rte(&tmp.path().join("RTE/rte/train-00000-of-00001.parquet"), 10);
    write_rte(&tmp.path().join("RTE/rte/validation/0000.parquet"), 277);
    let rte = task("rte").unwrap();
    let train = load_split(rte, tmp.path(), Split::Train, 42).unwrap();
    assert_eq!(train.len(), 10);
    assert_eq!(train[3].input, "sentence1: premise 3 sentence2: claim 3");
    assert_eq!(train[3].target, "1");
    let validation = load_split(rte, tmp.path(), Split::Validation, 42).unwrap();
    let test = load_split(rte, tmp.path(), Split::Test, 42).unwrap();
    assert_eq!((validation.len(), test.len()), (138, 139));
    // Same torch permutation as for the TSV: torch.randperm(277, manual_seed(42))[0] == 207.
    assert_eq!(validation[0].id, "207");
}
