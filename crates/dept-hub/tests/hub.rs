//! dept-hub against a hub-shaped server on loopback ([`dept_hub::fixture`]): a download into an empty cache, the
//! same model found offline, a connection cut mid-file that is resumed from where it stopped, a corrupted file
//! refused and kept out of the cache, a sharded model, pinned revisions, and the errors for an unknown repository,
//! an unknown revision or a model with pickle weights only.

use std::path::Path;

use dept_hub::fixture::{FixtureHub, COMMIT};
use dept_hub::{Hub, HubCache, HubError, RepoSpec, Resolver};
use sha2::Digest as _;

fn sha256(bytes: &[u8]) -> String {
    sha2::Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A repository's files: name, bytes, stored with LFS.
type Files = Vec<(String, Vec<u8>, bool)>;

fn model_repo(weights: &[(&str, Vec<u8>)]) -> Files {
    let mut files = vec![
        (
            "config.json".to_string(),
            br#"{"model_type": "t5"}"#.to_vec(),
            false,
        ),
        (
            "tokenizer.json".to_string(),
            br#"{"version": "1.0"}"#.to_vec(),
            false,
        ),
        (
            "pytorch_model.bin".to_string(),
            b"never fetched".to_vec(),
            true,
        ),
    ];
    for (name, bytes) in weights {
        files.push((
            name.to_string(),
            bytes.clone(),
            name.ends_with(".safetensors"),
        ));
    }
    files
}

fn weights(n: usize, seed: u8) -> Vec<u8> {
    (0..n)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}

fn setup(repos: Vec<(&str, Files)>) -> (FixtureHub, String, tempfile::TempDir) {
    let hub = FixtureHub::start().unwrap();
    for (id, files) in repos {
        hub.add_repo(id, files);
    }
    let endpoint = hub.endpoint().to_string();
    (hub, endpoint, tempfile::tempdir().unwrap())
}

fn online(endpoint: &str, cache: &Path) -> Resolver {
    Resolver {
        cache: HubCache::new(cache),
        hub: Some(Hub::new(endpoint, None)),
    }
}

fn offline(cache: &Path) -> Resolver {
    Resolver {
        cache: HubCache::new(cache),
        hub: None,
    }
}

#[test]
fn downloads_into_the_cache_then_resolves_offline() {
    let big = weights(300_000, 7);
    let (state, endpoint, cache) = setup(vec![(
        "org/tiny",
        model_repo(&[("model.safetensors", big.clone())]),
    )]);
    let spec = RepoSpec::parse("org/tiny").unwrap();
    // Offline with an empty cache: an error naming the model, the cache and what to do.
    let error = offline(cache.path()).model(&spec).unwrap_err().to_string();
    assert!(
        error.contains("org/tiny@main") && error.contains("HF_HUB_OFFLINE"),
        "{error}"
    );

    let folder = online(&endpoint, cache.path()).model(&spec).unwrap();
    assert_eq!(
        folder,
        cache
            .path()
            .join(format!("models--org--tiny/snapshots/{COMMIT}"))
    );
    assert_eq!(
        std::fs::read(folder.join("model.safetensors")).unwrap(),
        big
    );
    assert_eq!(
        std::fs::read(folder.join("config.json")).unwrap(),
        br#"{"model_type": "t5"}"#
    );
    // huggingface_hub's layout: relative links into blobs named by ETag, the ref recorded.
    let link = std::fs::read_link(folder.join("model.safetensors")).unwrap();
    assert_eq!(link, Path::new(&format!("../../blobs/{}", sha256(&big))));
    let main = std::fs::read_to_string(cache.path().join("models--org--tiny/refs/main")).unwrap();
    assert_eq!(main, COMMIT);
    assert!(!state.log().iter().any(|l| l.contains("pytorch_model.bin")));

    // The hub is not asked again offline, and a second online run downloads nothing.
    assert_eq!(offline(cache.path()).model(&spec).unwrap(), folder);
    let before = state.log().len();
    online(&endpoint, cache.path()).model(&spec).unwrap();
    let log = state.log();
    assert!(
        log[before..].iter().all(|l| l.starts_with("HEAD")),
        "{:?}",
        &log[before..]
    );
    // A pinned commit resolves offline without a ref.
    let pinned = RepoSpec::parse(&format!("org/tiny@{COMMIT}")).unwrap();
    assert_eq!(offline(cache.path()).model(&pinned).unwrap(), folder);
    // An unreachable hub falls back to the cache.
    assert_eq!(
        online("http://127.0.0.1:9", cache.path())
            .model(&spec)
            .unwrap(),
        folder
    );
}

#[test]
fn a_cut_download_resumes_where_it_stopped() {
    let big = weights(500_000, 3);
    let (state, endpoint, cache) = setup(vec![(
        "org/tiny",
        model_repo(&[("model.safetensors", big.clone())]),
    )]);
    state.cut_next_download_after(200_000);
    let folder = online(&endpoint, cache.path())
        .model(&RepoSpec::parse("org/tiny").unwrap())
        .unwrap();
    assert_eq!(
        std::fs::read(folder.join("model.safetensors")).unwrap(),
        big
    );
    let log = state.log();
    let cdn: Vec<&String> = log.iter().filter(|l| l.contains("/cdn/")).collect();
    assert_eq!(cdn.len(), 2, "{log:?}");
    assert!(
        cdn[0].ends_with("None") && cdn[1].ends_with("Some(200000)"),
        "{cdn:?}"
    );
    assert!(!cache
        .path()
        .join(format!(
            "models--org--tiny/blobs/{}.incomplete",
            sha256(&big)
        ))
        .exists());
}

#[test]
fn a_corrupted_download_is_refused_and_kept_out_of_the_cache() {
    let big = weights(100_000, 9);
    let (state, endpoint, cache) = setup(vec![(
        "org/tiny",
        model_repo(&[("model.safetensors", big.clone())]),
    )]);
    state.set_corrupt(true);
    let spec = RepoSpec::parse("org/tiny").unwrap();
    let error = online(&endpoint, cache.path()).model(&spec).unwrap_err();
    assert!(matches!(error, HubError::Checksum { .. }), "{error}");
    let message = error.to_string();
    assert!(
        message.contains("model.safetensors") && message.contains(&sha256(&big)),
        "{message}"
    );
    let blobs = cache.path().join("models--org--tiny/blobs");
    assert!(!blobs.join(sha256(&big)).exists());
    assert!(!blobs.join(format!("{}.incomplete", sha256(&big))).exists());
    // Fixed on the server: the next run succeeds.
    state.set_corrupt(false);
    let folder = online(&endpoint, cache.path()).model(&spec).unwrap();
    assert_eq!(
        std::fs::read(folder.join("model.safetensors")).unwrap(),
        big
    );
}

#[test]
fn sharded_weights_and_the_errors() {
    let index = br#"{"metadata": {}, "weight_map": {"a": "model-00001-of-00002.safetensors",
        "b": "model-00002-of-00002.safetensors", "c": "model-00001-of-00002.safetensors"}}"#;
    let mut sharded = model_repo(&[
        ("model-00001-of-00002.safetensors", weights(1000, 1)),
        ("model-00002-of-00002.safetensors", weights(2000, 2)),
    ]);
    sharded.push(("model.safetensors.index.json".into(), index.to_vec(), false));
    let pickle_only = model_repo(&[]);
    let (_state, endpoint, cache) =
        setup(vec![("org/sharded", sharded), ("org/pickle", pickle_only)]);
    let folder = online(&endpoint, cache.path())
        .model(&RepoSpec::parse("org/sharded").unwrap())
        .unwrap();
    assert_eq!(
        std::fs::read(folder.join("model-00002-of-00002.safetensors")).unwrap(),
        weights(2000, 2)
    );
    assert!(offline(cache.path())
        .model(&RepoSpec::parse("org/sharded").unwrap())
        .is_ok());

    let error = online(&endpoint, cache.path())
        .model(&RepoSpec::parse("org/pickle").unwrap())
        .unwrap_err()
        .to_string();
    assert!(error.contains("no safetensors weights"), "{error}");
    let error = online(&endpoint, cache.path())
        .model(&RepoSpec::parse("org/nothing").unwrap())
        .unwrap_err()
        .to_string();
    assert!(error.contains("RepoNotFound"), "{error}");
    let error = online(&endpoint, cache.path())
        .model(&RepoSpec::parse("org/sharded@v9").unwrap())
        .unwrap_err()
        .to_string();
    assert!(error.contains("RevisionNotFound"), "{error}");
}

#[test]
fn a_datasets_parquet_export_is_fetched_shard_by_shard() {
    let (hub, endpoint, cache) = setup(vec![]);
    hub.add_dataset(
        "org/glue",
        vec![
            ("rte/train/0000.parquet".into(), weights(5000, 1), true),
            ("rte/train/0001.parquet".into(), weights(3000, 2), true),
            ("rte/validation/0000.parquet".into(), weights(800, 3), true),
        ],
    );
    let online = online(&endpoint, cache.path());
    let train = online.parquet_split("org/glue", "rte", "train").unwrap();
    assert_eq!(train.len(), 2);
    assert_eq!(std::fs::read(&train[1]).unwrap(), weights(3000, 2));
    assert!(train[0].starts_with(
        cache
            .path()
            .join("datasets--org--glue/snapshots")
            .join(COMMIT)
    ));
    assert!(hub.log().iter().any(|l| l
        .contains("/datasets/org/glue/resolve/refs%2Fconvert%2Fparquet/rte/train/0000.parquet")));
    let main = cache
        .path()
        .join("datasets--org--glue/refs/refs/convert/parquet");
    assert_eq!(std::fs::read_to_string(main).unwrap(), COMMIT);
    // Offline from the cache; a split never fetched is an error naming it.
    assert_eq!(
        offline(cache.path())
            .parquet_split("org/glue", "rte", "train")
            .unwrap(),
        train
    );
    let error = offline(cache.path())
        .parquet_split("org/glue", "rte", "validation")
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("rte, validation") && error.contains("HF_HUB_OFFLINE"),
        "{error}"
    );
    let error = online
        .parquet_split("org/glue", "rte", "test")
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("no parquet export") && error.contains("split test"),
        "{error}"
    );
}
