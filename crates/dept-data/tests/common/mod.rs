//! Shared test helpers: where the real benchmark files and the golden values are.
#![allow(dead_code)]

use std::path::PathBuf;

/// `DEPT_SHARED_DIR/data`, else `<workspace>/../shared/data`; `None` (with a printed message) when absent.
pub fn data_dir() -> Option<PathBuf> {
    let shared = std::env::var_os("DEPT_SHARED_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared"));
    let data = shared.join("data");
    if data.is_dir() {
        Some(data)
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
