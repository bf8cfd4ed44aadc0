//! The official code's adapter_model.bin: a `torch.save` archive read without unpickling it, and written back.
//! Goldens: `tests/reference/official_reference.py` (torch 2.11), which wrote `views.bin` (a `state_dict()` with
//! strided, shared, bfloat16 and int64 tensors) with what `torch.load` reads from it, and `evil.bin` (a pickle
//! calling `os.system`). The five released adapters are checked by the workspace's `tests/official_checkpoints.rs`.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use dept_core::official::{self, read_state_dict, write_state_dict};
use dept_core::{DecomposedPrompt, DeptConfig};
use tch::{Device, Kind, Tensor};

fn reference(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/reference/official")
        .join(name)
}

fn values(t: &Tensor) -> Vec<f64> {
    Vec::<f64>::try_from(t.to_kind(Kind::Double).flatten(0, -1)).unwrap()
}

#[test]
fn views_read_as_torch_load_reads_them() {
    let golden: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(reference("views.json")).unwrap()).unwrap();
    let tensors = read_state_dict(&reference("views.bin")).unwrap();
    let names: Vec<&str> = tensors.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        ["transposed", "head", "tail", "bf16", "steps", "scalar"]
    );
    for (name, tensor) in &tensors {
        let expected = &golden[name];
        let kind = match expected["dtype"].as_str().unwrap() {
            "float32" => Kind::Float,
            "bfloat16" => Kind::BFloat16,
            "int64" => Kind::Int64,
            other => panic!("{other}"),
        };
        assert_eq!(tensor.kind(), kind, "{name}");
        let shape: Vec<i64> = serde_json::from_value(expected["shape"].clone()).unwrap();
        assert_eq!(tensor.size(), shape, "{name}");
        let want: Vec<f64> = serde_json::from_value(expected["values"].clone()).unwrap();
        assert_eq!(values(tensor), want, "{name}");
        assert!(tensor.is_contiguous(), "{name}");
    }
}

#[test]
fn a_pickle_that_calls_os_system_is_refused_by_name() {
    let error = read_state_dict(&reference("evil.bin"))
        .unwrap_err()
        .to_string();
    assert!(error.contains("evil.bin"), "{error}");
    assert!(
        error.contains("refuses the global `posix.system`"),
        "{error}"
    );
}

#[test]
fn written_state_dicts_read_back_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("adapter_model.bin");
    tch::manual_seed(3);
    let tensors = vec![
        ("a", Tensor::randn([5, 7], (Kind::Float, Device::Cpu))),
        (
            "b.t",
            Tensor::randn([7, 5], (Kind::Float, Device::Cpu)).tr(),
        ),
        ("half", Tensor::randn([3], (Kind::BFloat16, Device::Cpu))),
        ("ids", Tensor::from_slice(&[1i64, -7, 1 << 40])),
        ("scalar", Tensor::from(0.5f32)),
        ("empty", Tensor::zeros([0, 4], (Kind::Float, Device::Cpu))),
    ];
    write_state_dict(&path, &tensors).unwrap();
    let read = read_state_dict(&path).unwrap();
    assert_eq!(read.len(), tensors.len());
    for ((name, want), (got_name, got)) in tensors.iter().zip(&read) {
        assert_eq!(name, got_name);
        assert_eq!(got.kind(), want.kind(), "{name}");
        assert_eq!(got.size(), want.size(), "{name}");
        assert!(got.equal(want), "{name}");
    }
    // torch names the folder inside the archive after the file.
    let mut archive = zip::ZipArchive::new(std::fs::File::open(&path).unwrap()).unwrap();
    let names: Vec<String> = archive.file_names().map(str::to_owned).collect();
    assert!(
        names.contains(&"adapter_model/data.pkl".to_string()),
        "{names:?}"
    );
    let mut version = String::new();
    archive
        .by_name("adapter_model/version")
        .unwrap()
        .read_to_string(&mut version)
        .unwrap();
    assert_eq!(version, "3\n");
}

/// The entries of a torch archive, one of them replaced (or removed with `None`).
fn rewrite(from: &Path, to: &Path, entry: &str, replace: impl Fn(Vec<u8>) -> Option<Vec<u8>>) {
    let mut archive = zip::ZipArchive::new(std::fs::File::open(from).unwrap()).unwrap();
    let mut out = zip::ZipWriter::new(std::fs::File::create(to).unwrap());
    let options =
        zip::write::FileOptions::default().compression_method(zip::CompressionMethod::Stored);
    for i in 0..archive.len() {
        let mut file = archive.by_index(i).unwrap();
        let name = file.name().to_string();
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes).unwrap();
        let bytes = if name.ends_with(entry) {
            replace(bytes)
        } else {
            Some(bytes)
        };
        if let Some(bytes) = bytes {
            out.start_file(name, options).unwrap();
            out.write_all(&bytes).unwrap();
        }
    }
    out.finish().unwrap();
}

#[test]
fn damaged_archives_are_errors_naming_what_is_wrong() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.bin");
    write_state_dict(
        &good,
        &[("w", Tensor::ones([4, 3], (Kind::Float, Device::Cpu)))],
    )
    .unwrap();
    let bad = dir.path().join("bad.bin");
    let error = |path: &Path| read_state_dict(path).unwrap_err().to_string();

    rewrite(&good, &bad, "data/0", |bytes| Some(bytes[..40].to_vec()));
    let message = error(&bad);
    assert!(
        message.contains("holds 40 bytes") && message.contains("need 48"),
        "{message}"
    );

    rewrite(&good, &bad, "data/0", |_| None);
    assert!(
        error(&bad).contains("is not in the archive"),
        "{}",
        error(&bad)
    );

    rewrite(&good, &bad, "byteorder", |_| Some(b"big".to_vec()));
    assert!(error(&bad).contains("little-endian"), "{}", error(&bad));

    // A view reaching past its storage: size (4, 3) with stride (4, 1) needs 15 elements of 12.
    rewrite(&good, &bad, "data.pkl", |bytes| {
        let at = bytes
            .windows(4)
            .position(|w| w == [b'K', 3, b'K', 1])
            .unwrap();
        let mut bytes = bytes;
        bytes[at + 1] = 4;
        Some(bytes)
    });
    assert!(error(&bad).contains("reach element"), "{}", error(&bad));

    let whole = std::fs::read(&good).unwrap();
    for cut in [0, 10, whole.len() / 2, whole.len() - 1] {
        std::fs::write(&bad, &whole[..cut]).unwrap();
        assert!(
            error(&bad).contains("not a torch.save zip archive"),
            "cut at {cut}: {}",
            error(&bad)
        );
    }
    std::fs::write(&bad, b"\x80\x02}q\x00.").unwrap();
    assert!(error(&bad).contains("older than 1.6"), "{}", error(&bad));
}

#[test]
fn an_adapter_exports_and_imports_unchanged() {
    let dir = tempfile::tempdir().unwrap();
    tch::manual_seed(5);
    for (m, r) in [(6, 3), (9, 0)] {
        let config = DeptConfig::new(m, r, 16, 8).unwrap();
        let adapter = DecomposedPrompt::new(config.clone(), None, Device::Cpu).unwrap();
        if let Some((_, b)) = adapter.pair() {
            let mut b = b.shallow_clone();
            tch::no_grad(|| b.copy_(&Tensor::randn_like(&b)));
        }
        let exported = dir.path().join(format!("official-{r}"));
        official::export(&adapter, &exported).unwrap();
        let config_json: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(exported.join("adapter_config.json")).unwrap(),
        )
        .unwrap();
        assert_eq!(config_json["peft_type"], adapter.config().peft_type());
        let imported = dir.path().join(format!("dept-{r}"));
        let back = official::import(&exported, &imported, official::MissingPair::Refuse).unwrap();
        assert_eq!(back.config(), adapter.config());
        assert!(back.prompt().equal(adapter.prompt()));
        match (back.pair(), adapter.pair()) {
            (Some((a1, b1)), Some((a0, b0))) => assert!(a1.equal(a0) && b1.equal(b0)),
            (None, None) => {}
            _ => panic!("the pair differs"),
        }
        let reloaded = DecomposedPrompt::load(&imported, Device::Cpu).unwrap();
        assert!(reloaded.prompt().equal(adapter.prompt()));
    }
}

#[test]
fn a_prompt_without_its_pair_is_refused_unless_asked() {
    let dir = tempfile::tempdir().unwrap();
    tch::manual_seed(6);
    let config = DeptConfig::new(4, 2, 16, 8).unwrap();
    let adapter = DecomposedPrompt::new(config, None, Device::Cpu).unwrap();
    let folder = dir.path().join("old");
    official::export(&adapter, &folder).unwrap();
    // What the official code wrote before save_lora_embeddings: the prompt only.
    write_state_dict(
        &folder.join("adapter_model.bin"),
        &[("prompt_embeddings", adapter.prompt().shallow_clone())],
    )
    .unwrap();
    let error = official::load(&folder, Device::Cpu, official::MissingPair::Refuse)
        .err()
        .unwrap()
        .to_string();
    assert!(
        error.contains("r = 2") && error.contains("--missing-pair init"),
        "{error}"
    );
    let loaded = official::load(&folder, Device::Cpu, official::MissingPair::Initialise).unwrap();
    assert!(loaded.prompt().equal(adapter.prompt()));
    let (a, b) = loaded.pair().unwrap();
    assert_eq!(a.size(), [16, 2]);
    assert_eq!(b.abs().sum(Kind::Double).double_value(&[]), 0.0);
}
