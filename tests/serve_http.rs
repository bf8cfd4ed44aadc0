//! `dept serve` as a client sees it: the real binary on loopback, spoken to by a plain HTTP/1.1 client written
//! here over `TcpStream` (so that nothing between the test and the wire fixes a bad answer up), every read bounded
//! by a timeout so that a test cannot hang.
//!
//! One fixture per test binary: a tiny random T5 and 122 adapters written in Rust with different `m`, `r` and `s`
//! (prompt tuning among them), one of them in a run folder with the `config.yaml` a run writes (task rte, for
//! `/v1/predict`). The answer a request must get is what its adapter decodes alone: asked of the same server with
//! one request while nothing else runs, then compared byte for byte under load, under faults, across a reload and
//! across a shutdown.
//!
//! The tests hold one lock each: on a 2-core machine a server per test running side by side would make the
//! backpressure and memory checks measure the neighbours.

mod common;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Barrier, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use common::cli::path;
use common::server::{connect, exchange, read_reply, request_bytes, Reply, Server, ADMIN_TOKEN};
use dept_core::{DecomposedPrompt, DeptConfig};
use dept_models::TextTokenizer;
use dept_serve::openapi;
use serde_json::{json, Value};
use tch::{Device, Tensor};

/// Adapters `a000` … `a119`, besides [`SHORT`] and [`RUN`].
const ADAPTERS: usize = 120;
/// (m, r) of adapter `aNNN` is `SHAPES[NNN % 8]`; r = 0 is prompt tuning.
const SHAPES: [(i64, i64); 8] = [
    (4, 2),
    (1, 6),
    (9, 1),
    (6, 0),
    (2, 3),
    (12, 0),
    (5, 4),
    (3, 8),
];
/// s of a DePT adapter `aNNN` is `LENGTHS[NNN % 3]`: every prompt below fits the shortest.
const LENGTHS: [i64; 3] = [32, 40, 48];
/// An adapter with a small s, for inputs that are too long.
const SHORT: &str = "short";
const SHORT_S: i64 = 8;
/// The adapter in a run folder: `/v1/predict` reads its task (rte) and target length from `rte-run/config.yaml`.
const RUN: &str = "rte-run/best";
const RUN_TARGET_LEN: usize = 5;
const PROMPTS: [&str; 6] = [
    "rte sentence1: The cat sat on the mat. sentence2: A cat is sitting.",
    "rte sentence1: Paris is in France. sentence2: Paris is a city.",
    "summarize: the meeting was moved to Tuesday afternoon",
    "translate English to German: good morning",
    "question: who wrote the letter? context: Anna wrote it.",
    "cola sentence: The boys is here.",
];
/// Longer than [`SHORT_S`] tokens.
const LONG_PROMPT: &str =
    "one two three four five six seven eight nine ten eleven twelve thirteen fourteen";

// ---------------------------------------------------------------------------------------------------------------
// Fixture

struct Fixture {
    _dir: tempfile::TempDir,
    /// Scratch space for the tests' own adapter roots.
    root: PathBuf,
    model: PathBuf,
    adapters: PathBuf,
    /// The backbone's width.
    d: i64,
    tokenizer: TextTokenizer,
}

impl Fixture {
    /// Every adapter the server finds under `adapters/`.
    fn adapter_count(&self) -> usize {
        ADAPTERS + 2
    }
}

fn adapter_name(i: usize) -> String {
    format!("a{i:03}")
}

/// What client thread traffic asks of adapter `aNNN`: a prompt and a `max_tokens`, so that answers differ in
/// length and leave the running batch at different steps.
fn good_request(i: usize) -> (String, &'static str, usize) {
    (adapter_name(i), PROMPTS[i % PROMPTS.len()], 3 + i % 4)
}

fn fixture() -> Option<&'static Fixture> {
    static FIXTURE: OnceLock<Option<Fixture>> = OnceLock::new();
    FIXTURE
        .get_or_init(|| common::shared_dir().map(|shared| build_fixture(&shared)))
        .as_ref()
}

fn build_fixture(shared: &Path) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_path_buf();
    let model = root.join("t5");
    let tokenizer_file = shared.join("tokenizers/t5/tokenizer.json");
    common::cli::ok(&[
        "-q",
        "tiny-model",
        "--arch",
        "t5",
        "--tokenizer",
        path(&tokenizer_file),
        "--out",
        path(&model),
    ]);
    let config = common::read_json(&model.join("config.json"));
    let d = config["d_model"]
        .as_i64()
        .expect("d_model in the tiny T5's config");
    let adapters = root.join("adapters");
    {
        let _rng = common::global_rng();
        tch::manual_seed(20);
        for i in 0..ADAPTERS {
            let (m, r) = SHAPES[i % SHAPES.len()];
            write_adapter(&adapters.join(adapter_name(i)), m, r, LENGTHS[i % 3], d);
        }
        write_adapter(&adapters.join(SHORT), 3, 2, SHORT_S, d);
        write_adapter(&adapters.join(RUN), 8, 4, 64, d);
    }
    // The resolved config a run writes beside its checkpoints (`ExperimentConfig::to_yaml`, as `dept train` does).
    let run_config = dept_train::ExperimentConfig {
        model: model.clone(),
        task: "rte".into(),
        output_dir: adapters.join("rte-run"),
        prompt_len: Some(8),
        rank: Some(4),
        max_len: 64,
        max_target_len: RUN_TARGET_LEN,
        ..Default::default()
    };
    std::fs::write(adapters.join("rte-run/config.yaml"), run_config.to_yaml()).unwrap();
    let tokenizer = TextTokenizer::from_model_dir(&model).unwrap();
    for prompt in PROMPTS {
        let tokens = tokenizer.encode(prompt, None).unwrap().len();
        assert!(
            tokens <= LENGTHS[0] as usize,
            "{tokens} tokens in {prompt:?}: over the shortest s"
        );
    }
    Fixture {
        _dir: dir,
        root,
        model,
        adapters,
        d,
        tokenizer,
    }
}

/// A DePT (r > 0) or prompt-tuning adapter of width `d` with random P and A and a non-zero random B (a fresh
/// adapter's B is zero, and A·B would then change nothing).
fn write_adapter(dir: &Path, m: i64, r: i64, s: i64, d: i64) {
    let config = DeptConfig::new(m, r, s, d).unwrap();
    assert_eq!(config.task_type, "SEQ_2_SEQ_LM", "a T5 adapter");
    let adapter = DecomposedPrompt::new(config, None, Device::Cpu).unwrap();
    if let Some((_, b)) = adapter.pair() {
        let mut b = b.shallow_clone();
        tch::no_grad(|| b.copy_(&(Tensor::randn_like(&b) * 0.5)));
    }
    adapter.save(dir).unwrap();
}

fn copy_adapter(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        if entry.path().is_file() {
            std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
        }
    }
}

/// One server at a time (see the module comment). A poisoned lock is still a lock.
fn serial() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

// ---------------------------------------------------------------------------------------------------------------
// Requests and what they must get

fn completion_body(adapter: &str, prompt: &str, max_tokens: usize) -> Value {
    json!({"model": adapter, "prompt": prompt, "max_tokens": max_tokens})
}

/// What one completion got.
#[derive(Debug, Clone, PartialEq)]
struct Answer {
    text: String,
    version: String,
    finish_reason: String,
}

fn answer_of(reply: &Reply) -> Answer {
    let body = reply.json();
    let choice = &body["choices"][0];
    Answer {
        text: choice["text"]
            .as_str()
            .expect("choices[0].text")
            .to_string(),
        version: body["system_fingerprint"]
            .as_str()
            .expect("system_fingerprint")
            .to_string(),
        finish_reason: choice["finish_reason"]
            .as_str()
            .expect("finish_reason")
            .to_string(),
    }
}

/// What `adapter` answers `prompt` alone (call it while nothing else runs on the server).
fn alone(server: &Server, adapter: &str, prompt: &str, max_tokens: usize) -> Answer {
    let reply = server.post(
        "/v1/completions",
        &completion_body(adapter, prompt, max_tokens),
    );
    assert_eq!(reply.status, 200, "{adapter}: {}", reply.text());
    schema("CompletionResponse", &reply.json());
    answer_of(&reply)
}

/// An adapter and a prompt whose answer runs to `max_tokens` without end of sequence (so a request for it takes
/// the whole `max_tokens` steps), with that answer.
fn long_running(server: &Server, max_tokens: usize) -> (String, &'static str, Answer) {
    for i in 0..24 {
        let (adapter, prompt, _) = good_request(i);
        let answer = alone(server, &adapter, prompt, max_tokens);
        if answer.finish_reason == "length" {
            return (adapter, prompt, answer);
        }
    }
    panic!("no adapter of the first 24 decodes {max_tokens} tokens without end of sequence");
}

fn schema(name: &str, value: &Value) {
    if let Err(problem) = openapi::check(name, value) {
        panic!("not a {name} as /openapi.json describes it: {problem}\n{value:#}");
    }
}

/// `reply` is an error of `status` in OpenAI's shape whose message holds every one of `needles`; returns the
/// message.
fn assert_error(what: &str, reply: &Reply, status: u16, needles: &[&str]) -> String {
    assert_eq!(
        reply.status,
        status,
        "{what}: expected {status}, got {}: {}",
        reply.status,
        reply.text()
    );
    let body = reply.json();
    schema("Error", &body);
    assert_eq!(body["error"]["code"], status, "{what}: {body}");
    let message = body["error"]["message"].as_str().unwrap_or_default();
    for needle in needles {
        assert!(
            message.contains(needle),
            "{what}: the message does not name {needle:?}: {message}"
        );
    }
    message.to_string()
}

fn models(server: &Server) -> BTreeMap<String, Value> {
    let reply = server.get("/v1/models");
    assert_eq!(reply.status, 200, "{}", reply.text());
    let list = reply.json();
    schema("ModelList", &list);
    list["data"]
        .as_array()
        .expect("data")
        .iter()
        .map(|card| (card["id"].as_str().expect("id").to_string(), card.clone()))
        .collect()
}

fn version_of(cards: &BTreeMap<String, Value>, name: &str) -> String {
    cards[name]["version"]
        .as_str()
        .expect("version")
        .to_string()
}

// ---------------------------------------------------------------------------------------------------------------
// 1. Routes and statuses

#[test]
fn every_route_answers_in_the_documented_shape() {
    let Some(fx) = fixture() else { return };
    let _serial = serial();
    let server = Server::start(&fx.model, &["--adapters", path(&fx.adapters)]);

    let health = server.get("/healthz");
    assert_eq!(health.status, 200, "{}", health.text());
    schema("Health", &health.json());
    let ready = server.get("/readyz");
    assert_eq!(ready.status, 200, "{}", ready.text());
    schema("Readiness", &ready.json());
    assert_eq!(ready.json()["adapters"], fx.adapter_count());

    let cards = models(&server);
    assert_eq!(cards.len(), fx.adapter_count(), "{:?}", cards.keys());
    let dept = &cards["a000"];
    assert_eq!(
        (
            &dept["method"],
            &dept["m"],
            &dept["r"],
            &dept["s"],
            &dept["d"]
        ),
        (
            &json!("dept"),
            &json!(4),
            &json!(2),
            &json!(LENGTHS[0]),
            &json!(fx.d)
        ),
        "{dept}"
    );
    assert_eq!(dept["parent"], fx.model.display().to_string());
    let pt = &cards["a003"];
    assert_eq!(
        (&pt["method"], &pt["m"], &pt["r"], &pt["s"]),
        (&json!("prompt_tuning"), &json!(6), &json!(0), &Value::Null),
        "{pt}"
    );
    assert_eq!(cards[SHORT]["max_input_tokens"], SHORT_S);
    assert_eq!(cards[RUN]["task"], "rte");
    assert_eq!(cards[RUN]["max_target_len"], RUN_TARGET_LEN);
    assert_eq!(cards["a000"]["task"], Value::Null);

    // A string prompt.
    let one = server.post("/v1/completions", &completion_body("a001", PROMPTS[0], 5));
    assert_eq!(one.status, 200, "{}", one.text());
    let body = one.json();
    schema("CompletionResponse", &body);
    let first = answer_of(&one);
    assert_eq!(first.version, version_of(&cards, "a001"));
    let ids = fx.tokenizer.encode(PROMPTS[0], None).unwrap();
    assert_eq!(body["usage"]["prompt_tokens"], ids.len());
    let generated = body["usage"]["completion_tokens"].as_u64().unwrap();
    assert!(
        (1..=5).contains(&generated),
        "{generated} tokens for max_tokens 5"
    );
    assert_eq!(first.finish_reason == "length", generated == 5, "{body}");
    // A list of prompts: one choice each, in order, each what that prompt gets alone.
    let second = alone(&server, "a001", PROMPTS[1], 5);
    let both = server.post(
        "/v1/completions",
        &json!({"model": "a001", "prompt": [PROMPTS[0], PROMPTS[1]], "max_tokens": 5}),
    );
    assert_eq!(both.status, 200, "{}", both.text());
    let body = both.json();
    schema("CompletionResponse", &body);
    let choices = body["choices"].as_array().unwrap();
    assert_eq!(choices.len(), 2);
    for (index, (choice, alone)) in choices.iter().zip([&first, &second]).enumerate() {
        assert_eq!(choice["index"], index);
        assert_eq!(choice["text"], alone.text.as_str(), "prompt {index}");
    }
    // Token ids: the same ids the server's tokenizer makes of the text, so the same answer.
    let by_ids = server.post(
        "/v1/completions",
        &json!({"model": "a001", "prompt": ids, "max_tokens": 5}),
    );
    assert_eq!(by_ids.status, 200, "{}", by_ids.text());
    schema("CompletionResponse", &by_ids.json());
    assert_eq!(answer_of(&by_ids), first);

    // /v1/predict: task fields in, formatted with the run's task template.
    let request = json!({"adapter": RUN, "inputs": [
        {"sentence1": "The cat sat on the mat.", "sentence2": "A cat is sitting."},
        {"sentence1": "Paris is in France.", "sentence2": "Paris is a city."}],
        "return_tokens": true});
    let predicted = server.post("/v1/predict", &request);
    assert_eq!(predicted.status, 200, "{}", predicted.text());
    let body = predicted.json();
    schema("PredictResponse", &body);
    assert_eq!(body["task"], "rte");
    assert_eq!(body["version"], version_of(&cards, RUN).as_str());
    let predictions = body["predictions"].as_array().unwrap();
    assert_eq!(predictions.len(), 2);
    assert_eq!(
        predictions[0]["input"],
        "sentence1: The cat sat on the mat. sentence2: A cat is sitting."
    );
    for prediction in predictions {
        let tokens = prediction["tokens"].as_array().expect("return_tokens");
        assert!((1..=RUN_TARGET_LEN).contains(&tokens.len()), "{prediction}");
    }
    let again = server.post("/v1/predict", &request);
    assert_eq!(
        again.json()["predictions"],
        body["predictions"],
        "greedy: the same twice"
    );
    // An adapter without a run config has no task.
    let no_task = server.post(
        "/v1/predict",
        &json!({"adapter": "a000", "inputs": [{"sentence1": "a", "sentence2": "b"}]}),
    );
    assert_error("predict without a task", &no_task, 400, &["no task"]);

    let document = server.get("/openapi.json");
    assert_eq!(document.status, 200);
    let document = document.json();
    assert!(document["openapi"].as_str().unwrap().starts_with("3."));
    for route in [
        "/v1/completions",
        "/v1/models",
        "/v1/predict",
        "/v1/adapters",
    ] {
        assert!(document["paths"][route].is_object(), "{route} undocumented");
    }
    assert_eq!(
        server.metric("dept_loaded_adapters"),
        Some(fx.adapter_count() as f64)
    );
    assert_eq!(
        server.metric(r#"dept_requests_total{route="/v1/completions",status="200"}"#),
        Some(4.0),
        "one string prompt, one alone, one list, one of ids"
    );

    // Without --admin-token the admin routes are off.
    let load = server.send(
        "POST",
        "/v1/adapters",
        &[("Authorization", "Bearer anything")],
        json!({"name": "x", "path": "a000"}).to_string().as_bytes(),
    );
    assert_error("load with admin off", &load, 403, &["--admin-token"]);
    let unload = server.send("DELETE", "/v1/adapters/a000", &[], b"");
    assert_error("unload with admin off", &unload, 403, &["--admin-token"]);
    assert_eq!(models(&server).len(), fx.adapter_count());
}

// ---------------------------------------------------------------------------------------------------------------
// 2. Bad requests

#[test]
fn bad_requests_get_their_4xx_naming_what_is_wrong() {
    let Some(fx) = fixture() else { return };
    let _serial = serial();
    // The admin root of this test: an adapter of another width, a good one, and a link out of the root.
    let own = fx.root.join("bad-requests-root");
    write_adapter(&own.join("wide"), 4, 2, 24, fx.d + 16);
    copy_adapter(&fx.adapters.join("a005"), &own.join("good"));
    std::os::unix::fs::symlink(fx.adapters.join("a001"), own.join("escape")).unwrap();
    let max_body = 2048;
    let server = Server::start(
        &fx.model,
        &[
            "--adapters",
            path(&fx.adapters),
            "--adapter-root",
            path(&own),
            "--admin-token",
            ADMIN_TOKEN,
            "--max-body-bytes",
            &max_body.to_string(),
        ],
    );
    let raw = |target: &str, body: &[u8]| server.send("POST", target, &[], body);

    // Malformed JSON: the position of what is wrong.
    let malformed = raw("/v1/completions", br#"{"model": "a000", "prompt": }"#);
    assert_error("malformed JSON", &malformed, 400, &["line 1 column 29"]);
    let two_lines = raw(
        "/v1/completions",
        b"{\"model\": \"a000\",\n  \"prompt\" \"x\"}",
    );
    assert_error(
        "malformed JSON, line 2",
        &two_lines,
        400,
        &["line 2 column"],
    );
    let predict = raw("/v1/predict", b"[1, 2");
    assert_error("malformed predict", &predict, 400, &["line 1 column"]);
    let wrong_type = server.post("/v1/completions", &json!({"model": 7, "prompt": "x"}));
    assert_error("model as a number", &wrong_type, 400, &["invalid type"]);

    // Unknown adapter: 404 naming the known ones, never the bare backbone.
    let unknown = server.post("/v1/completions", &completion_body("nope", PROMPTS[0], 3));
    let in_all = format!("{} in all", fx.adapter_count());
    assert_error(
        "unknown adapter",
        &unknown,
        404,
        &["\"nope\"", "a000", &in_all],
    );
    let unknown = server.post(
        "/v1/predict",
        &json!({"adapter": "nope", "inputs": [{"sentence1": "a", "sentence2": "b"}]}),
    );
    assert_error(
        "unknown predict adapter",
        &unknown,
        404,
        &["\"nope\"", "a000"],
    );

    // A body over --max-body-bytes.
    let oversize = completion_body("a000", &"x".repeat(max_body), 3);
    let too_large = server.post("/v1/completions", &oversize);
    assert_error("oversize body", &too_large, 413, &["length limit"]);

    // An input longer than the adapter's s: both numbers; cut when asked.
    let tokens = fx.tokenizer.encode(LONG_PROMPT, None).unwrap().len();
    assert!(tokens > SHORT_S as usize);
    let long = server.post("/v1/completions", &completion_body(SHORT, LONG_PROMPT, 3));
    assert_error(
        "input over s",
        &long,
        400,
        &[
            &format!("has {tokens} tokens"),
            &format!("at most {SHORT_S}"),
            "truncate",
        ],
    );
    let cut = server.post(
        "/v1/completions",
        &json!({"model": SHORT, "prompt": LONG_PROMPT, "max_tokens": 3, "truncate": true}),
    );
    assert_eq!(cut.status, 200, "{}", cut.text());
    schema("CompletionResponse", &cut.json());
    assert_eq!(cut.json()["usage"]["prompt_tokens"], SHORT_S);

    // What greedy, whole-answer decoding cannot do is refused, naming the field.
    for (field, value) in [
        ("stream", json!(true)),
        ("temperature", json!(0.7)),
        ("top_p", json!(0.5)),
        ("n", json!(2)),
        ("echo", json!(true)),
    ] {
        let mut body = completion_body("a000", PROMPTS[0], 3);
        body[field] = value;
        let refused = server.post("/v1/completions", &body);
        assert_error(field, &refused, 400, &[&format!("`{field}`")]);
    }
    let zero = server.post("/v1/completions", &completion_body("a000", PROMPTS[0], 0));
    assert_error("max_tokens 0", &zero, 400, &["max_tokens"]);
    let vocab = fx.tokenizer.vocab_size();
    let outside = server.post(
        "/v1/completions",
        &json!({"model": "a000", "prompt": [5, vocab + 3], "max_tokens": 3}),
    );
    assert_error(
        "token id outside",
        &outside,
        400,
        &["outside the vocabulary"],
    );
    // More prompts in one request than the queue holds (256 by default) could never be queued whole: 400, not 429.
    let many = server.post(
        "/v1/completions",
        &json!({"model": "a000", "prompt": vec![vec![5]; 300], "max_tokens": 1}),
    );
    assert_error("300 prompts", &many, 400, &["300 prompts", "at most 256"]);
    // An empty token list (an empty string is not empty: the tokenizer adds end of sequence).
    let empty = server.post(
        "/v1/completions",
        &json!({"model": "a000", "prompt": [[]], "max_tokens": 3}),
    );
    assert_error("empty prompt", &empty, 400, &["is empty"]);
    let none = server.post(
        "/v1/completions",
        &json!({"model": "a000", "prompt": [], "max_tokens": 3}),
    );
    assert_error("no prompt", &none, 400, &["no prompt"]);

    // Unknown route, wrong method.
    let nowhere = server.get("/v2/nothing");
    assert_error("unknown route", &nowhere, 404, &["/v2/nothing"]);
    let wrong_method = server.get("/v1/completions");
    assert_error("GET /v1/completions", &wrong_method, 405, &["GET"]);
    assert_eq!(wrong_method.header("allow"), Some("POST"));
    let wrong_method = server.send("DELETE", "/healthz", &[], b"");
    assert_error("DELETE /healthz", &wrong_method, 405, &["DELETE"]);

    // Admin routes: no token, a wrong token.
    let load = |name: &str, at: &str| json!({"name": name, "path": at});
    let bare = raw("/v1/adapters", load("x", "good").to_string().as_bytes());
    assert_error("load without a token", &bare, 401, &["Bearer"]);
    let wrong = server.send(
        "POST",
        "/v1/adapters",
        &[("Authorization", "Bearer not-the-token")],
        load("x", "good").to_string().as_bytes(),
    );
    assert_error("load with a wrong token", &wrong, 401, &["Bearer"]);
    let wrong = server.send(
        "DELETE",
        "/v1/adapters/a000",
        &[("Authorization", "Bearer not-the-token")],
        b"",
    );
    assert_error("unload with a wrong token", &wrong, 401, &["Bearer"]);

    // Paths only under the adapter root; the width must be the backbone's.
    let admin_load = |name: &str, at: &str| server.admin("POST", "/v1/adapters", &load(name, at));
    assert_error("`..`", &admin_load("x", "../adapters/a000"), 400, &["`..`"]);
    assert_error(
        "symlink out of the root",
        &admin_load("x", "escape"),
        400,
        &["outside the adapter root"],
    );
    let absolute = fx.adapters.join("a002");
    assert_error(
        "absolute path outside",
        &admin_load("x", path(&absolute)),
        400,
        &["outside the adapter root"],
    );
    assert_error(
        "missing folder",
        &admin_load("x", "missing"),
        400,
        &["cannot be opened"],
    );
    assert_error("bad name", &admin_load("a b", "good"), 400, &["not valid"]);
    let wide = admin_load("x", "wide");
    assert_error(
        "another width",
        &wide,
        422,
        &[
            &format!("token_dim is {}", fx.d + 16),
            &format!("hidden size {}", fx.d),
        ],
    );

    // A good load, then its unload: the same files give the same version and the same answers.
    let cards = models(&server);
    let loaded = admin_load("extra", "good");
    assert_eq!(loaded.status, 200, "{}", loaded.text());
    schema("AdapterInfo", &loaded.json());
    assert_eq!(
        loaded.json()["version"],
        version_of(&cards, "a005").as_str()
    );
    assert_eq!(
        alone(&server, "extra", PROMPTS[2], 4).text,
        alone(&server, "a005", PROMPTS[2], 4).text
    );
    let unloaded = server.admin("DELETE", "/v1/adapters/extra", &Value::Null);
    assert_eq!(unloaded.status, 200, "{}", unloaded.text());
    schema("AdapterInfo", &unloaded.json());
    let twice = server.admin("DELETE", "/v1/adapters/extra", &Value::Null);
    assert_error("unload twice", &twice, 404, &["\"extra\""]);
    let gone = server.post("/v1/completions", &completion_body("extra", PROMPTS[2], 4));
    assert_error("unloaded adapter", &gone, 404, &["\"extra\""]);

    // Nested names are unloaded through the same route.
    let nested = admin_load("nested/extra", "good");
    assert_eq!(nested.status, 200, "{}", nested.text());
    let unloaded = server.admin("DELETE", "/v1/adapters/nested/extra", &Value::Null);
    assert_eq!(unloaded.status, 200, "{}", unloaded.text());
    assert_eq!(unloaded.json()["name"], "nested/extra");
    let no_path = server.admin("POST", "/v1/adapters", &json!({"name": "x"}));
    assert_error("load without a path", &no_path, 400, &["`path`"]);

    // Predict inputs that do not fit the task.
    let missing = server.post(
        "/v1/predict",
        &json!({"adapter": RUN, "inputs": [{"sentence1": "only one"}]}),
    );
    assert_error(
        "predict without a field",
        &missing,
        400,
        &["input 0", "sentence2"],
    );

    // Bytes that are not HTTP: answered 400 or closed, never a crash.
    let mut stream = connect(server.address).unwrap();
    let _ = stream.write_all(b"\x00\x01\x02 not http at all\r\n\r\n");
    if let Ok(reply) = read_reply(&mut stream) {
        assert_eq!(reply.status, 400, "{}", reply.text());
    }

    // Nothing of that hurt the server.
    assert_eq!(server.get("/healthz").status, 200);
    assert_eq!(models(&server).len(), fx.adapter_count());
}

// ---------------------------------------------------------------------------------------------------------------
// 3. Backpressure

#[test]
fn a_full_queue_answers_429_with_retry_after_and_the_rest_exactly() {
    let Some(fx) = fixture() else { return };
    let _serial = serial();
    let server = Server::start(
        &fx.model,
        &[
            "--adapters",
            path(&fx.adapters),
            "--queue",
            "2",
            "--max-batch",
            "1",
        ],
    );
    let (adapter, prompt, expected) = long_running(&server, 40);
    const CLIENTS: usize = 12;
    let start = Barrier::new(CLIENTS);
    let replies: Vec<Reply> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..CLIENTS)
            .map(|_| {
                let body = completion_body(&adapter, prompt, 40).to_string();
                let (start, server) = (&start, &server);
                scope.spawn(move || {
                    start.wait();
                    server.send("POST", "/v1/completions", &[], body.as_bytes())
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let (mut served, mut refused) = (0, 0);
    for reply in &replies {
        match reply.status {
            200 => {
                assert_eq!(
                    answer_of(reply),
                    expected,
                    "a served request under pressure"
                );
                served += 1;
            }
            429 => {
                assert_error("queue full", reply, 429, &["busy", "capacity 2"]);
                let retry: u64 = reply
                    .header("retry-after")
                    .expect("429 with Retry-After")
                    .parse()
                    .expect("Retry-After in seconds");
                assert!(retry >= 1);
                refused += 1;
            }
            other => panic!("{other} under pressure: {}", reply.text()),
        }
    }
    println!("{CLIENTS} at once, queue 2, batch 1: {served} served, {refused} refused with 429");
    assert!(refused >= 1, "no request was refused");
    assert!(served >= 1, "no request was served");
    assert_eq!(
        server.metric(r#"dept_requests_total{route="/v1/completions",status="429"}"#),
        Some(refused as f64)
    );
    // Once the queue drains, requests are taken again.
    assert_eq!(alone(&server, &adapter, prompt, 40), expected);
}

#[test]
fn a_request_over_the_timeout_gets_504_and_its_rows_are_dropped() {
    let Some(fx) = fixture() else { return };
    let _serial = serial();
    let server = Server::start(
        &fx.model,
        &["--adapters", path(&fx.adapters), "--timeout", "1"],
    );
    // Four rows of 4,000 tokens of an answer that does not end early: many seconds of decoding.
    let (adapter, prompt, _) = long_running(&server, 40);
    let started = Instant::now();
    let slow = server.post(
        "/v1/completions",
        &json!({"model": adapter, "prompt": vec![prompt; 4], "max_tokens": 4000}),
    );
    let waited = started.elapsed();
    assert_error("over the timeout", &slow, 504, &["limit of 1 s"]);
    assert!(waited < Duration::from_secs(5), "answered after {waited:?}");
    settle(&server);
    assert_eq!(server.metric("dept_abandoned_rows_total"), Some(4.0));
    let (adapter, prompt, max_tokens) = good_request(2);
    let after = server.post(
        "/v1/completions",
        &completion_body(&adapter, prompt, max_tokens),
    );
    assert_eq!(after.status, 200, "{}", after.text());
}

// ---------------------------------------------------------------------------------------------------------------
// 4. Load with faults

const CLIENTS: usize = 32;
const REQUESTS_PER_CLIENT: usize = 20;
/// The warm-up is the same traffic, so that the second round asks nothing of memory the first did not.
const WARM_UP_PER_CLIENT: usize = REQUESTS_PER_CLIENT;
/// Adapters the admin thread unloads and reloads while the clients run.
const CHURN: [&str; 6] = ["a000", "a017", "a034", "a051", "a068", "a085"];
const LOAD_MAX_BODY: usize = 4096;

/// What a round of traffic got.
#[derive(Debug, Default)]
struct Tally {
    exact: usize,
    /// Good requests for an adapter the admin thread had unloaded at that moment.
    unloaded: usize,
    predicted: usize,
    malformed: usize,
    unknown: usize,
    oversize: usize,
    hung_up: usize,
    adapters_served: BTreeSet<String>,
    reload_cycles: usize,
}

impl Tally {
    fn add(&mut self, other: Tally) {
        self.exact += other.exact;
        self.unloaded += other.unloaded;
        self.predicted += other.predicted;
        self.malformed += other.malformed;
        self.unknown += other.unknown;
        self.oversize += other.oversize;
        self.hung_up += other.hung_up;
        self.adapters_served.extend(other.adapters_served);
    }

    fn requests(&self) -> usize {
        self.exact
            + self.unloaded
            + self.predicted
            + self.malformed
            + self.unknown
            + self.oversize
            + self.hung_up
    }
}

/// What each good request must get, asked alone.
struct Expected {
    completions: Vec<Answer>,
    versions: HashMap<String, String>,
    predict_body: Value,
    predictions: Value,
}

/// One client's requests: good completions over many adapters and predictions (exact answers), mixed with
/// malformed JSON, unknown adapters, oversize bodies and clients that hang up before reading.
fn client(server: &Server, expected: &Expected, client: usize, requests: usize) -> Tally {
    let mut tally = Tally::default();
    for i in 0..requests {
        let n = client * requests + i;
        let adapter = (client * 37 + i * 11) % ADAPTERS;
        match n % 10 {
            0 => {
                let reply = server.send(
                    "POST",
                    "/v1/completions",
                    &[],
                    format!(r#"{{"model": "a{adapter:03}", "prompt": "#).as_bytes(),
                );
                assert_error("malformed under load", &reply, 400, &["line 1 column"]);
                tally.malformed += 1;
            }
            1 => {
                let name = format!("missing-{n}");
                let reply = server.post("/v1/completions", &completion_body(&name, PROMPTS[0], 3));
                assert_error("unknown under load", &reply, 404, &[&format!("{name:?}")]);
                tally.unknown += 1;
            }
            2 => {
                let body = completion_body(&adapter_name(adapter), &"y ".repeat(LOAD_MAX_BODY), 3);
                let reply = server.post("/v1/completions", &body);
                assert_error("oversize under load", &reply, 413, &[]);
                tally.oversize += 1;
            }
            3 => {
                // The client goes away before the answer: after sending the whole request (its row must be
                // dropped), or halfway through the body (the server must not wait for the rest).
                let body = completion_body(&adapter_name(adapter), PROMPTS[n % PROMPTS.len()], 40);
                let bytes =
                    request_bytes("POST", "/v1/completions", &[], body.to_string().as_bytes());
                let sent = if (n / 10) % 2 == 0 {
                    bytes.len()
                } else {
                    bytes.len() - 20
                };
                let mut stream = connect(server.address).expect("connect");
                stream.write_all(&bytes[..sent]).expect("send");
                std::thread::sleep(Duration::from_millis(30));
                drop(stream);
                tally.hung_up += 1;
            }
            4 => {
                let reply = server.post("/v1/predict", &expected.predict_body);
                assert_eq!(reply.status, 200, "predict under load: {}", reply.text());
                assert_eq!(
                    reply.json()["predictions"],
                    expected.predictions,
                    "predict under load"
                );
                tally.predicted += 1;
            }
            _ => {
                let (name, prompt, max_tokens) = good_request(adapter);
                let reply = server.post(
                    "/v1/completions",
                    &completion_body(&name, prompt, max_tokens),
                );
                if reply.status == 404 && CHURN.contains(&name.as_str()) {
                    assert_error(
                        "an adapter unloaded for a moment",
                        &reply,
                        404,
                        &[&format!("{name:?}")],
                    );
                    tally.unloaded += 1;
                    continue;
                }
                assert_eq!(reply.status, 200, "{name} under load: {}", reply.text());
                let answer = answer_of(&reply);
                assert_eq!(
                    answer, expected.completions[adapter],
                    "{name} under load, against what it decodes alone"
                );
                tally.exact += 1;
                tally.adapters_served.insert(name);
            }
        }
    }
    tally
}

/// [`CLIENTS`] clients of `requests` each, while an admin thread unloads and reloads the [`CHURN`] adapters (the
/// same files: the version must come back the same).
fn traffic(server: &Server, expected: &Expected, requests: usize) -> Tally {
    let clients_done = AtomicBool::new(false);
    let cycles = AtomicUsize::new(0);
    let mut tally = std::thread::scope(|scope| {
        let admin = scope.spawn(|| {
            while !clients_done.load(Ordering::SeqCst) {
                for name in CHURN {
                    let unloaded =
                        server.admin("DELETE", &format!("/v1/adapters/{name}"), &Value::Null);
                    assert_eq!(unloaded.status, 200, "unload {name}: {}", unloaded.text());
                    std::thread::sleep(Duration::from_millis(15));
                    let loaded =
                        server.admin("POST", "/v1/adapters", &json!({"name": name, "path": name}));
                    assert_eq!(loaded.status, 200, "reload {name}: {}", loaded.text());
                    assert_eq!(
                        loaded.json()["version"],
                        expected.versions[name].as_str(),
                        "{name} reloaded from the same files"
                    );
                }
                cycles.fetch_add(1, Ordering::SeqCst);
            }
        });
        let handles: Vec<_> = (0..CLIENTS)
            .map(|c| scope.spawn(move || client(server, expected, c, requests)))
            .collect();
        let mut tally = Tally::default();
        for handle in handles {
            tally.add(handle.join().expect("a client thread failed"));
        }
        clients_done.store(true, Ordering::SeqCst);
        admin.join().expect("the admin thread failed");
        tally
    });
    tally.reload_cycles = cycles.load(Ordering::SeqCst);
    tally
}

/// Waits (at most 10 s) for the engine to hold no row and no queued request.
fn settle(server: &Server) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let running = server.metric("dept_running_rows");
        let queued = server.metric("dept_queue_depth");
        if running == Some(0.0) && queued == Some(0.0) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "rows still held after the traffic: running {running:?}, queued {queued:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn under_load_with_faults_every_good_request_gets_its_exact_answer() {
    let Some(fx) = fixture() else { return };
    let _serial = serial();
    let started = Instant::now();
    let server = Server::start(
        &fx.model,
        &[
            "--adapters",
            path(&fx.adapters),
            "--admin-token",
            ADMIN_TOKEN,
            "--max-body-bytes",
            &LOAD_MAX_BODY.to_string(),
        ],
    );
    let cards = models(&server);
    let predict_body = json!({"adapter": RUN, "inputs": [
        {"sentence1": "The cat sat on the mat.", "sentence2": "A cat is sitting."}]});
    let predicted = server.post("/v1/predict", &predict_body);
    assert_eq!(predicted.status, 200, "{}", predicted.text());
    let expected = Expected {
        completions: (0..ADAPTERS)
            .map(|i| {
                let (name, prompt, max_tokens) = good_request(i);
                alone(&server, &name, prompt, max_tokens)
            })
            .collect(),
        versions: cards
            .keys()
            .map(|name| (name.clone(), version_of(&cards, name)))
            .collect(),
        predict_body,
        predictions: predicted.json()["predictions"].clone(),
    };
    let reference_s = started.elapsed().as_secs_f64();

    // A warm-up round of the same traffic: the allocator's and libtorch's pools grow to what this load needs.
    let warm_up = traffic(&server, &expected, WARM_UP_PER_CLIENT);
    settle(&server);
    let rss_warm = server.rss_kib();
    let abandoned_warm = server.metric("dept_abandoned_rows_total").unwrap_or(0.0);

    let load_started = Instant::now();
    let tally = traffic(&server, &expected, REQUESTS_PER_CLIENT);
    let load_s = load_started.elapsed().as_secs_f64();
    settle(&server);
    let rss_after = server.rss_kib();
    let abandoned = server.metric("dept_abandoned_rows_total").unwrap_or(0.0);

    println!(
        "load: {CLIENTS} clients x {REQUESTS_PER_CLIENT} requests = {} in {load_s:.1} s over {} adapters \
         ({} exact, {} while unloaded, {} predictions, {} malformed, {} unknown, {} oversize, {} hung up; \
         {} reload cycles of {} adapters); warm-up {} requests; references {reference_s:.1} s",
        tally.requests(),
        tally.adapters_served.len(),
        tally.exact,
        tally.unloaded,
        tally.predicted,
        tally.malformed,
        tally.unknown,
        tally.oversize,
        tally.hung_up,
        tally.reload_cycles,
        CHURN.len(),
        warm_up.requests(),
    );
    println!(
        "rss: {rss_warm} KiB after the warm-up, {rss_after} KiB after the load ({:+} KiB); abandoned rows \
         {abandoned_warm} after the warm-up, {abandoned} after the load",
        rss_after as i64 - rss_warm as i64
    );

    assert_eq!(tally.requests(), CLIENTS * REQUESTS_PER_CLIENT);
    assert!(
        tally.adapters_served.len() >= 100,
        "only {} adapters answered",
        tally.adapters_served.len()
    );
    assert!(
        tally.reload_cycles >= 1,
        "no unload and reload happened during the load"
    );
    assert!(
        abandoned > abandoned_warm,
        "no row was dropped for the {} clients that hung up",
        tally.hung_up
    );
    // The server is alive, every adapter is back, and its memory is where the warm-up left it. The tolerance,
    // 8 MiB: the same traffic again may touch a few pages the warm-up did not (a longer batch's activations, an
    // allocator arena of another runtime thread), well under 1 MiB in practice; a leak per request of what a
    // request holds is larger: one step's logits of one row alone are 128 KiB (32,100 tokens x 4 bytes), so
    // keeping them for each of the 640 requests would add 80 MiB.
    assert_eq!(server.get("/healthz").status, 200);
    assert_eq!(models(&server).len(), fx.adapter_count());
    let allowed = 8 * 1024;
    assert!(
        rss_after <= rss_warm + allowed,
        "resident memory grew from {rss_warm} KiB to {rss_after} KiB (allowed {allowed} KiB more)"
    );
}

// ---------------------------------------------------------------------------------------------------------------
// 5. Hot reload

#[test]
fn a_reload_under_traffic_answers_each_request_from_one_version() {
    let Some(fx) = fixture() else { return };
    let _serial = serial();
    let own = fx.root.join("reload-root");
    copy_adapter(&fx.adapters.join("a010"), &own.join("x"));
    copy_adapter(&fx.adapters.join("a011"), &own.join("y"));
    let server = Server::start(
        &fx.model,
        &["--adapters", path(&own), "--admin-token", ADMIN_TOKEN],
    );
    const MAX_TOKENS: usize = 10;
    // A prompt on which x and y differ, so that the text tells the versions apart.
    let (prompt, old, new) = PROMPTS
        .iter()
        .map(|&p| {
            (
                p,
                alone(&server, "x", p, MAX_TOKENS),
                alone(&server, "y", p, MAX_TOKENS),
            )
        })
        .find(|(_, old, new)| old.text != new.text)
        .expect("x and y answer some prompt differently");
    assert_ne!(old.version, new.version);
    // y's files under a new folder, and x's own under another: loaded as x in turn, the last time y's.
    copy_adapter(&own.join("y"), &own.join("x-new"));
    copy_adapter(&own.join("x"), &own.join("x-old"));

    const THREADS: usize = 8;
    const EACH: usize = 16;
    /// Reloads, each after a few more answers: many, since a request that reads the catalog just before one and
    /// reaches the engine just after is what would expose an answer labelled with the wrong version.
    const RELOADS: usize = 11;
    let answered = AtomicUsize::new(0);
    let last_reload: Mutex<Option<Instant>> = Mutex::new(None);
    let results: Vec<(Instant, Answer)> = std::thread::scope(|scope| {
        let reload = scope.spawn(|| {
            let deadline = Instant::now() + Duration::from_secs(60);
            for k in 0..RELOADS {
                let wait_for = answered.load(Ordering::SeqCst) + 4;
                while answered.load(Ordering::SeqCst) < wait_for {
                    assert!(Instant::now() < deadline, "the traffic does not advance");
                    std::thread::sleep(Duration::from_millis(1));
                }
                let (folder, version) = if k % 2 == 0 {
                    ("x-new", &new.version)
                } else {
                    ("x-old", &old.version)
                };
                let loaded = server.admin(
                    "POST",
                    "/v1/adapters",
                    &json!({"name": "x", "path": folder}),
                );
                assert_eq!(loaded.status, 200, "{}", loaded.text());
                assert_eq!(loaded.json()["version"], version.as_str());
                *last_reload.lock().unwrap() = Some(Instant::now());
            }
        });
        let handles: Vec<_> = (0..THREADS)
            .map(|_| {
                scope.spawn(|| {
                    (0..EACH)
                        .map(|_| {
                            let sent = Instant::now();
                            let reply = server
                                .post("/v1/completions", &completion_body("x", prompt, MAX_TOKENS));
                            assert_eq!(reply.status, 200, "{}", reply.text());
                            answered.fetch_add(1, Ordering::SeqCst);
                            (sent, answer_of(&reply))
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        let results = handles
            .into_iter()
            .flat_map(|h| h.join().expect("a client thread failed"))
            .collect();
        reload.join().expect("the reloads failed");
        results
    });
    let last_reload = last_reload.lock().unwrap().expect("the reloads happened");
    let (mut on_old, mut on_new) = (0, 0);
    for (sent, answer) in &results {
        if answer.version == old.version {
            assert_eq!(answer, &old, "an answer labelled with the old version");
            assert!(
                *sent < last_reload,
                "a request sent after the last reload (to the new files) got the old version"
            );
            on_old += 1;
        } else {
            assert_eq!(
                answer, &new,
                "an answer labelled with neither version, or the new one"
            );
            on_new += 1;
        }
    }
    println!(
        "{RELOADS} reloads under traffic: {on_old} answers from the old version, {on_new} from the new"
    );
    assert!(on_old >= 1 && on_new >= 1, "old {on_old}, new {on_new}");
    assert_eq!(version_of(&models(&server), "x"), new.version);
}

#[test]
fn a_reload_to_a_smaller_s_fails_only_the_requests_it_makes_too_long() {
    let Some(fx) = fixture() else { return };
    let _serial = serial();
    // x takes inputs of 48 tokens, then 8, then 48 …; z, an unrelated adapter, runs beside it all along.
    let own = fx.root.join("narrowing-root");
    copy_adapter(&fx.adapters.join("a002"), &own.join("x"));
    copy_adapter(&fx.adapters.join("a002"), &own.join("x-wide"));
    copy_adapter(&fx.adapters.join(SHORT), &own.join("x-narrow"));
    copy_adapter(&fx.adapters.join("a006"), &own.join("z"));
    let server = Server::start(
        &fx.model,
        &["--adapters", path(&own), "--admin-token", ADMIN_TOKEN],
    );
    let (x_prompt, z_prompt) = (PROMPTS[0], PROMPTS[1]);
    assert!(fx.tokenizer.encode(x_prompt, None).unwrap().len() > SHORT_S as usize);
    let x_wide = alone(&server, "x", x_prompt, 6);
    let z_alone = alone(&server, "z", z_prompt, 6);

    const THREADS: usize = 8;
    const EACH: usize = 20;
    const RELOADS: usize = 20;
    let answered = AtomicUsize::new(0);
    let (mut x_served, mut x_refused, mut z_served) = (0, 0, 0);
    std::thread::scope(|scope| {
        let reload = scope.spawn(|| {
            let deadline = Instant::now() + Duration::from_secs(60);
            for k in 0..RELOADS {
                let wait_for = answered.load(Ordering::SeqCst) + 2;
                while answered.load(Ordering::SeqCst) < wait_for {
                    assert!(Instant::now() < deadline, "the traffic does not advance");
                    std::thread::sleep(Duration::from_millis(1));
                }
                let folder = if k % 2 == 0 { "x-narrow" } else { "x-wide" };
                let loaded = server.admin(
                    "POST",
                    "/v1/adapters",
                    &json!({"name": "x", "path": folder}),
                );
                assert_eq!(loaded.status, 200, "{}", loaded.text());
            }
        });
        let handles: Vec<_> = (0..THREADS)
            .map(|t| {
                let answered = &answered;
                let server = &server;
                scope.spawn(move || {
                    (0..EACH)
                        .map(|i| {
                            let on_x = (t + i) % 2 == 0;
                            let (adapter, prompt) = if on_x {
                                ("x", x_prompt)
                            } else {
                                ("z", z_prompt)
                            };
                            let reply = server
                                .post("/v1/completions", &completion_body(adapter, prompt, 6));
                            answered.fetch_add(1, Ordering::SeqCst);
                            (on_x, reply)
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        for (on_x, reply) in handles
            .into_iter()
            .flat_map(|h| h.join().expect("a client thread failed"))
        {
            if !on_x {
                assert_eq!(reply.status, 200, "z, beside x's reloads: {}", reply.text());
                assert_eq!(answer_of(&reply), z_alone, "z beside x's reloads");
                z_served += 1;
            } else if reply.status == 200 {
                assert_eq!(
                    answer_of(&reply),
                    x_wide,
                    "x answered, so by its wide version"
                );
                x_served += 1;
            } else {
                assert_error(
                    "x while narrow",
                    &reply,
                    400,
                    &[&format!("at most {SHORT_S}")],
                );
                x_refused += 1;
            }
        }
        reload.join().expect("the reloads failed");
    });
    println!("{RELOADS} reloads of x between s = 48 and s = {SHORT_S}: x {x_served} served, {x_refused} refused; z {z_served} served");
    assert!(
        x_refused >= 1 && x_served >= 1,
        "x served {x_served}, refused {x_refused}"
    );
}

// ---------------------------------------------------------------------------------------------------------------
// 6. Graceful shutdown

#[test]
fn sigterm_finishes_requests_in_flight_refuses_new_ones_and_exits_0() {
    let Some(fx) = fixture() else { return };
    let _serial = serial();
    const GRACE_S: u64 = 30;
    let grace = GRACE_S.to_string();
    let mut server = Server::start(
        &fx.model,
        &["--adapters", path(&fx.adapters), "--shutdown-grace", &grace],
    );
    // Long enough (about a second or two here) that the requests still run when the new connection is tried.
    const MAX_TOKENS: usize = 600;
    let (adapter, prompt, expected) = long_running(&server, MAX_TOKENS);
    const IN_FLIGHT: usize = 3;
    let body = completion_body(&adapter, prompt, MAX_TOKENS).to_string();
    let address = server.address;
    let (replies, late, still_running, signalled) = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..IN_FLIGHT)
            .map(|_| {
                let body = body.as_bytes();
                scope.spawn(move || exchange(address, "POST", "/v1/completions", &[], body))
            })
            .collect();
        let deadline = Instant::now() + Duration::from_secs(20);
        while server.metric("dept_running_rows") != Some(IN_FLIGHT as f64) {
            assert!(Instant::now() < deadline, "the requests never ran together");
            std::thread::sleep(Duration::from_millis(5));
        }
        server.signal(libc::SIGTERM);
        let signalled = Instant::now();
        // The signal is handled on the server's runtime: give it a moment, then try a new connection.
        std::thread::sleep(Duration::from_millis(300));
        let late = exchange(
            address,
            "POST",
            "/v1/completions",
            &[],
            completion_body(&adapter, prompt, 3).to_string().as_bytes(),
        );
        let still_running = handles.iter().filter(|h| !h.is_finished()).count();
        let replies: Vec<_> = handles.into_iter().map(|h| h.join().unwrap()).collect();
        (replies, late, still_running, signalled)
    });
    for reply in replies {
        let reply = reply.unwrap_or_else(|e| panic!("a request in flight got no answer: {e}"));
        assert_eq!(reply.status, 200, "{}", reply.text());
        assert_eq!(
            answer_of(&reply),
            expected,
            "a request finished during shutdown"
        );
    }
    assert!(
        still_running > 0,
        "the requests in flight had all finished before the new connection: lengthen them"
    );
    match late {
        Err(refused) => {
            println!("a new request after SIGTERM, {still_running} in flight: {refused}")
        }
        Ok(reply) => {
            assert_error(
                "a new request after SIGTERM",
                &reply,
                503,
                &["shutting down"],
            );
        }
    }
    let status = server
        .wait_exit(Duration::from_secs(GRACE_S))
        .expect("dept serve still runs at the end of its grace period");
    println!(
        "exited {status} {:.1} s after SIGTERM",
        signalled.elapsed().as_secs_f64()
    );
    assert!(status.success(), "{status}: {}", server.stderr());
    assert!(
        server.stdout().contains("dept serve: stopped"),
        "{}",
        server.stdout()
    );

    // A grace period too short for what is running (four rows of 4,000 tokens: many seconds): the process says
    // so and fails.
    let mut server = Server::start(
        &fx.model,
        &["--adapters", path(&fx.adapters), "--shutdown-grace", "1"],
    );
    let long_body =
        json!({"model": adapter, "prompt": vec![prompt; 4], "max_tokens": 4000}).to_string();
    let address = server.address;
    std::thread::scope(|scope| {
        let request = scope.spawn(move || {
            exchange(
                address,
                "POST",
                "/v1/completions",
                &[],
                long_body.as_bytes(),
            )
        });
        let deadline = Instant::now() + Duration::from_secs(20);
        while server.metric("dept_running_rows") != Some(4.0) {
            assert!(Instant::now() < deadline, "the request never ran");
            std::thread::sleep(Duration::from_millis(5));
        }
        server.signal(libc::SIGTERM);
        let signalled = Instant::now();
        let status = server
            .wait_exit(Duration::from_secs(20))
            .expect("dept serve still runs 20 s after SIGTERM with --shutdown-grace 1");
        println!(
            "--shutdown-grace 1: exited {status} {:.1} s after SIGTERM",
            signalled.elapsed().as_secs_f64()
        );
        assert!(
            !status.success(),
            "exited {status} with a request cut short"
        );
        let stderr = server.stderr();
        assert!(
            stderr.contains("stopped with requests still in flight"),
            "{stderr}"
        );
        // The cut request gets no answer: its connection closes with the process.
        let cut = request.join().unwrap();
        assert!(
            cut.is_err(),
            "the cut request was answered: {}",
            cut.unwrap().text()
        );
    });
}
