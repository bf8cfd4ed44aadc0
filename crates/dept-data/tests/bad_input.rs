//! Bad files give errors naming the file, the line and what was expected; never a panic.

use std::io::Write;
use std::path::Path;

use dept_data::{load_split, task, Split};

fn write(dir: &Path, rel: &str, bytes: &[u8]) {
    let path = dir.join(rel);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, bytes).unwrap();
}

fn load_err(name: &str, dir: &Path, split: Split) -> String {
    load_split(task(name).unwrap(), dir, split, 42)
        .expect_err("bad input must be an error")
        .to_string()
}

#[test]
fn missing_column_names_file_and_column() {
    let tmp = tempfile::tempdir().unwrap();
    write(
        tmp.path(),
        "RTE/train.tsv",
        b"index\tsentence1\tlabel\n0\ta\tentailment\n",
    );
    let err = load_err("rte", tmp.path(), Split::Train);
    assert!(
        err.contains("RTE/train.tsv:1") && err.contains("sentence2"),
        "{err}"
    );
}

#[test]
fn bad_label_names_line_and_expected_values() {
    let tmp = tempfile::tempdir().unwrap();
    write(
        tmp.path(),
        "RTE/train.tsv",
        b"index\tsentence1\tsentence2\tlabel\n0\ta\tb\tentailment\n1\tc\td\tmaybe\n",
    );
    let err = load_err("rte", tmp.path(), Split::Train);
    assert!(
        err.contains("RTE/train.tsv:3") && err.contains("maybe") && err.contains("not_entailment"),
        "{err}"
    );
}

#[test]
fn short_row_names_line_and_column_count() {
    let tmp = tempfile::tempdir().unwrap();
    write(tmp.path(), "CoLA/train.tsv", b"gj04\t1\t\tFine.\ngj04\t1\n");
    let err = load_err("cola", tmp.path(), Split::Train);
    assert!(
        err.contains("CoLA/train.tsv:2") && err.contains("at least 4"),
        "{err}"
    );
}

#[test]
fn wrong_json_names_line() {
    let tmp = tempfile::tempdir().unwrap();
    write(
        tmp.path(),
        "CB/train.jsonl",
        b"{\"premise\": \"p\", \"hypothesis\": \"h\", \"label\": \"neutral\", \"idx\": 0}\n{\"premise\": \"p\",\n",
    );
    let err = load_err("cb", tmp.path(), Split::Train);
    assert!(
        err.contains("CB/train.jsonl:2") && err.contains("JSON"),
        "{err}"
    );
}

#[test]
fn missing_field_and_bad_superglue_label() {
    let tmp = tempfile::tempdir().unwrap();
    write(
        tmp.path(),
        "CB/train.jsonl",
        b"{\"premise\": \"p\", \"label\": \"neutral\", \"idx\": 0}\n",
    );
    let err = load_err("cb", tmp.path(), Split::Train);
    assert!(
        err.contains("CB/train.jsonl:1") && err.contains("`hypothesis`"),
        "{err}"
    );
    write(
        tmp.path(),
        "CB/train.jsonl",
        b"{\"premise\": \"p\", \"hypothesis\": \"h\", \"label\": \"yes\", \"idx\": 0}\n",
    );
    let err = load_err("cb", tmp.path(), Split::Train);
    assert!(
        err.contains("`label`") && err.contains("entailment, contradiction or neutral"),
        "{err}"
    );
}

#[test]
fn truncated_gzip_is_reported() {
    let tmp = tempfile::tempdir().unwrap();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(b"{\"header\": {\"dataset\": \"NewsQA\"}}\n")
        .unwrap();
    for i in 0..200 {
        writeln!(
            gz,
            "{{\"context\": \"c {i}\", \"qas\": [{{\"qid\": \"q{i}\", \"question\": \"why?\", \"answers\": [\"because\"]}}]}}"
        )
        .unwrap();
    }
    let bytes = gz.finish().unwrap();
    write(tmp.path(), "NewsQA/dev.jsonl.gz", &bytes[..bytes.len() / 2]);
    let err = load_err("newsqa", tmp.path(), Split::Test);
    assert!(
        err.contains("NewsQA/dev.jsonl.gz") && err.contains("gzip"),
        "{err}"
    );
    // The whole file reads fine.
    write(tmp.path(), "NewsQA/dev.jsonl.gz", &bytes);
    let test = load_split(task("newsqa").unwrap(), tmp.path(), Split::Test, 42).unwrap();
    assert_eq!(test.len(), 200);
    assert_eq!(test[0].input, "question: why ?  context: c 0");
    assert_eq!(test[0].target, "because");
}

#[test]
fn bad_csv_label_and_shape() {
    let tmp = tempfile::tempdir().unwrap();
    write(
        tmp.path(),
        "yelp_polarity/test.csv",
        b"\"1\",\"bad food\"\n\"3\",\"what\"\n",
    );
    let err = load_err("yelp_polarity", tmp.path(), Split::Test);
    assert!(
        err.contains("test.csv:2") && err.contains("1 (negative) or 2 (positive)"),
        "{err}"
    );
    write(
        tmp.path(),
        "yelp_polarity/test.csv",
        b"\"1\",\"bad food\",\"extra\"\n",
    );
    let err = load_err("yelp_polarity", tmp.path(), Split::Test);
    assert!(
        err.contains("test.csv:1") && err.contains("expected 2"),
        "{err}"
    );
}

#[test]
fn winogrande_labels_file_must_match_rows() {
    let tmp = tempfile::tempdir().unwrap();
    let row = b"{\"qID\": \"a\", \"sentence\": \"s _\", \"option1\": \"x\", \"option2\": \"y\"}\n";
    write(
        tmp.path(),
        "WinoGrande/dev.jsonl",
        &[&row[..], &row[..]].concat(),
    );
    write(tmp.path(), "WinoGrande/dev-labels.lst", b"2\n");
    let err = load_err("winogrande", tmp.path(), Split::Test);
    assert!(
        err.contains("dev-labels.lst") && err.contains("one label per row"),
        "{err}"
    );
    write(tmp.path(), "WinoGrande/dev-labels.lst", b"2\n1\n");
    let test = load_split(task("winogrande").unwrap(), tmp.path(), Split::Test, 42).unwrap();
    assert_eq!(
        test.iter().map(|e| e.target.as_str()).collect::<Vec<_>>(),
        ["1", "0"]
    );
}

#[test]
fn garbage_parquet_is_an_error() {
    let tmp = tempfile::tempdir().unwrap();
    write(
        tmp.path(),
        "RTE/rte/validation-00000-of-00001.parquet",
        b"PAR1 not really",
    );
    let err = load_err("rte", tmp.path(), Split::Validation);
    assert!(
        err.contains("validation-00000-of-00001.parquet") && err.contains("parquet"),
        "{err}"
    );
}

#[test]
fn missing_files_and_unknown_tasks_say_what_was_looked_for() {
    let tmp = tempfile::tempdir().unwrap();
    let err = load_err("rte", tmp.path(), Split::Train);
    assert!(err.contains("RTE/"), "{err}");
    let err = task("glue-rte").unwrap_err().to_string();
    assert!(err.contains("known tasks") && err.contains("rte"), "{err}");
}

#[test]
fn invalid_utf8_names_line() {
    let tmp = tempfile::tempdir().unwrap();
    write(
        tmp.path(),
        "SST-2/dev.tsv",
        b"sentence\tlabel\ngood\t1\nbad \xff\t0\n",
    );
    let err = load_err("sst2", tmp.path(), Split::Test);
    assert!(
        err.contains("SST-2/dev.tsv:3") && err.contains("UTF-8"),
        "{err}"
    );
}
