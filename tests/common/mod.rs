//! Helpers shared by the end-to-end tests.
#![allow(dead_code)]

pub mod cli;
pub mod fixture;
pub mod server;

use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use tch::{Kind, Tensor};

/// libtorch has one random generator per process, and the test harness runs a binary's tests on parallel threads:
/// a test whose numbers depend on what `tch::manual_seed` draws holds this guard from its seed to its last draw, so
/// that no other test of the binary (holding it too) draws in between. A poisoned lock is still a lock.
pub fn global_rng() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// `../shared` (or `DEPT_SHARED_DIR`): the real data and vocabularies. `None`, with a message, where it is absent;
/// a panic instead when `DEPT_REQUIRE_SHARED=1` (CI), so that a test needing them cannot pass by skipping.
pub fn shared_dir() -> Option<PathBuf> {
    let dir = std::env::var_os("DEPT_SHARED_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("..")
                .join("shared")
        });
    if dir.join("data").is_dir() && dir.join("tokenizers").is_dir() {
        Some(dir)
    } else if std::env::var_os("DEPT_REQUIRE_SHARED").is_some_and(|v| v == "1") {
        panic!(
            "{} (data/ and tokenizers/) not found and DEPT_REQUIRE_SHARED=1: this test needs the real files (set \
             DEPT_SHARED_DIR)",
            dir.display()
        );
    } else {
        println!("skipped: {} not found (set DEPT_SHARED_DIR)", dir.display());
        None
    }
}

/// The bench venv's python (torch, transformers, openai). `None`, with a message, where there is none; a panic
/// instead when `DEPT_REQUIRE_PYTHON=1` (`cargo xtask test` makes the venv and sets it), so that a test needing it
/// cannot pass by skipping.
pub fn bench_python() -> Option<PathBuf> {
    match dept_bench::python_side::python(None) {
        Ok(python) => Some(python),
        Err(why) => {
            let required = std::env::var_os("DEPT_REQUIRE_PYTHON").is_some_and(|v| v == "1");
            assert!(
                !required,
                "no bench venv python ({why}), and DEPT_REQUIRE_PYTHON=1"
            );
            println!("skipped: no bench venv python (cargo xtask bench-venv)");
            None
        }
    }
}

pub fn reference_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join("reference")
}

pub fn read_json(path: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

pub fn floats(value: &serde_json::Value, key: &str) -> Vec<f64> {
    value[key]
        .as_array()
        .unwrap_or_else(|| panic!("golden key `{key}` is not an array"))
        .iter()
        .map(|v| v.as_f64().expect("number"))
        .collect()
}

pub fn int_rows(value: &serde_json::Value, key: &str) -> Vec<Vec<i64>> {
    value[key]
        .as_array()
        .unwrap_or_else(|| panic!("golden key `{key}` is not an array"))
        .iter()
        .map(|row| {
            row.as_array()
                .expect("row")
                .iter()
                .map(|v| v.as_i64().expect("integer"))
                .collect()
        })
        .collect()
}

/// Rows padded with `pad` to the longest row (or to `len` when given), as a `[rows, len]` tensor.
pub fn padded(rows: &[Vec<i64>], pad: i64, len: Option<usize>) -> Tensor {
    let len = len.unwrap_or_else(|| rows.iter().map(Vec::len).max().unwrap_or(0));
    let flat: Vec<i64> = rows
        .iter()
        .flat_map(|r| r.iter().copied().chain(std::iter::repeat(pad)).take(len))
        .collect();
    Tensor::from_slice(&flat).view([rows.len() as i64, len as i64])
}

pub fn to_vec(t: &Tensor) -> Vec<f64> {
    let t = t.detach().to_kind(Kind::Double).flatten(0, -1);
    Vec::<f64>::try_from(&t).expect("tensor to vec")
}

/// ‖actual − expected‖∞ / ‖expected‖∞: relative error that does not explode at zeros.
pub fn rel_error(actual: &[f64], expected: &[f64]) -> f64 {
    assert_eq!(actual.len(), expected.len(), "length mismatch");
    let diff = actual
        .iter()
        .zip(expected)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f64::max);
    let scale = expected.iter().map(|b| b.abs()).fold(0.0, f64::max);
    if scale == 0.0 {
        diff
    } else {
        diff / scale
    }
}

pub fn assert_close(what: &str, actual: &[f64], expected: &[f64], tolerance: f64) -> f64 {
    let err = rel_error(actual, expected);
    println!("{what}: relative error {err:.3e} (tolerance {tolerance:.0e})");
    assert!(
        err <= tolerance,
        "{what}: relative error {err:.3e} exceeds {tolerance:.0e}"
    );
    err
}

/// The gradients of `adapter`'s P, A and B (each must exist) against a golden's `grad_prompt`, `grad_lora_a` and
/// `grad_lora_b`, labelled `{what} grad P` etc.
pub fn assert_adapter_grads(
    what: &str,
    adapter: &dept_core::DecomposedPrompt,
    golden: &serde_json::Value,
    tolerance: f64,
) {
    let (a, b) = adapter.pair().expect("DePT pair");
    for (name, tensor, key) in [
        ("grad P", adapter.prompt(), "grad_prompt"),
        ("grad A", a, "grad_lora_a"),
        ("grad B", b, "grad_lora_b"),
    ] {
        let label = format!("{what} {name}");
        let grad = tensor.grad();
        assert!(grad.defined(), "{label}: no gradient");
        assert_close(&label, &to_vec(&grad), &floats(golden, key), tolerance);
    }
}
