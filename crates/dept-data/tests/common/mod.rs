//! Shared test helpers: where the real benchmark files and the golden values are.
#![allow(dead_code)]

use std::path::PathBuf;

/// `DEPT_SHARED_DIR/data`, else `<workspace>/../shared/data`; `None` (with a printed message) when absent, a
/// failure when absent and `DEPT_REQUIRE_SHARED=1` (as CI sets it).
pub fn data_dir() -> Option<PathBuf> {
    let shared = std::env::var_os("DEPT_SHARED_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared"));
    let data = shared.join("data");
    if data.is_dir() {
        Some(data)
    } else if std::env::var_os("DEPT_REQUIRE_SHARED").is_some_and(|v| v == "1") {
        // CI sets this: there the real files must be checked, not skipped.
        panic!(
            "real data not found at {} and DEPT_REQUIRE_SHARED=1 (set DEPT_SHARED_DIR)",
            data.display()
        );
    } else {
        println!(
            "skipping: real data not found at {} (set DEPT_SHARED_DIR)",
            data.display()
        );
        None
    }
}

/// A golden JSON file under tests/reference.
pub fn golden(name: &str) -> serde_json::Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/reference")
        .join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

pub fn strings(v: &serde_json::Value) -> Vec<String> {
    v.as_array()
        .expect("array")
        .iter()
        .map(|x| x.as_str().expect("string").to_string())
        .collect()
}

pub fn numbers(v: &serde_json::Value) -> Vec<usize> {
    v.as_array()
        .expect("array")
        .iter()
        .map(|x| x.as_u64().expect("number") as usize)
        .collect()
}
