//! The README's bad-input table, row by row: each kind of bad input (YAML, CLI values, model folders,
//! tokenizers, data files, adapters, feature files) must end in an error that names the file, key or value and says what was
//! expected, never a panic. Keep this list and the README's table in step.

use std::path::{Path, PathBuf};
use std::process::Command;

struct Case {
    what: &'static str,
    args: Vec<String>,
    /// Every one of these must appear in the error.
    expect: Vec<String>,
}

fn dept(args: &[String]) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_dept"))
        .args(args)
        .env_remove("DEPT_LOG")
        .output()
        .expect("run dept");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn write(path: &Path, text: &str) -> String {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
    path.display().to_string()
}

fn copy_dir(from: &Path, to: &Path) -> PathBuf {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
    }
    to.to_path_buf()
}

#[test]
fn every_kind_of_bad_input_gets_an_error_that_says_what_is_wrong() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let model = root.join("model");
    dept_models::tiny::write_tiny_t5(&model, &dept_data::synthetic::vocabulary(), 16, "relu", 1)
        .unwrap();
    let data = root.join("data");
    dept_data::synthetic::write_rte_like(&data, 64, 32, 3).unwrap();
    let (m, d) = (model.display().to_string(), data.display().to_string());
    let s = |x: &str| x.to_string();

    // A small real run, for its adapter.
    let good = write(
        &root.join("good.yaml"),
        &format!(
            "task: rte\nmodel: {m:?}\ndata_dir: {d:?}\noutput_dir: {:?}\nprompt_len: 4\nrank: 2\nmax_len: 32\n\
             max_steps: 2\neval_every: 2\nsave_every: 2\nbatch_size: 8\ndecode_max_tokens: 2\ndevice: cpu\n",
            root.join("run").display().to_string()
        ),
    );
    let (ok, err) = dept(&[s("-q"), s("train"), good.clone()]);
    assert!(ok, "{err}");
    let best = root.join("run").join("best");

    let config = |name: &str, text: &str| write(&root.join(name), text);
    let shape = config("shape.yaml", "task: rte\nprompt_len: 4\nrank: 2\n");
    // `dept train shape.yaml` with the good model and data unless `extra` names others.
    let train = |extra: &[&str]| -> Vec<String> {
        let mut args = vec![s("train"), shape.clone()];
        if !extra.contains(&"--model") {
            args.extend([s("--model"), m.clone()]);
        }
        if !extra.contains(&"--data-dir") {
            args.extend([s("--data-dir"), d.clone()]);
        }
        args.extend(extra.iter().map(|x| s(x)));
        args
    };
    let with_model = |dir: &Path| train(&["--model", &dir.display().to_string()]);

    let pickle = root.join("pickle");
    write(
        &pickle.join("config.json"),
        &std::fs::read_to_string(model.join("config.json")).unwrap(),
    );
    write(&pickle.join("pytorch_model.bin"), "");
    let truncated = copy_dir(&model, &root.join("truncated"));
    std::fs::write(truncated.join("model.safetensors"), b"\x08\x00\x00").unwrap();
    let no_tokenizer = copy_dir(&model, &root.join("no-tokenizer"));
    std::fs::remove_file(no_tokenizer.join("tokenizer.json")).unwrap();
    let broken_tokenizer = copy_dir(&model, &root.join("broken-tokenizer"));
    std::fs::write(broken_tokenizer.join("tokenizer.json"), "{").unwrap();
    let bert = root.join("bert");
    write(&bert.join("config.json"), r#"{"model_type": "bert"}"#);
    let gpt2 = root.join("gpt2");
    write(
        &gpt2.join("config.json"),
        r#"{"model_type": "gpt2", "n_embd": 16}"#,
    );
    let bad_row = root.join("bad-row");
    write(&bad_row.join("RTE/train.tsv"), "index\tsentence1\n0\tx\n");
    std::fs::copy(data.join("RTE/dev.tsv"), bad_row.join("RTE/dev.tsv")).unwrap();
    let bad_adapter = copy_dir(&best, &root.join("bad-adapter"));
    std::fs::write(bad_adapter.join("adapter_config.json"), "{}").unwrap();
    let cut_adapter = copy_dir(&best, &root.join("cut-adapter"));
    std::fs::write(cut_adapter.join("adapter_model.safetensors"), b"\x10\x00").unwrap();
    let home = root.join("home");
    write(&home.join("notes.txt"), "mine");
    let wide = root.join("wide");
    dept_models::tiny::write_tiny_t5(&wide, &dept_data::synthetic::vocabulary(), 24, "relu", 2)
        .unwrap();

    let cases = vec![
        Case {
            what: "YAML: unknown key",
            args: vec![s("train"), config("typo.yaml", "task: rte\nmax_step: 10\n")],
            expect: vec![s("unknown key `max_step`; did you mean `max_steps`?")],
        },
        Case {
            what: "YAML: not YAML",
            args: vec![s("train"), config("broken.yaml", "task: rte\n  bad: [\n")],
            expect: vec![s("broken.yaml: not valid YAML"), s("line 2")],
        },
        Case {
            what: "YAML: not a mapping",
            args: vec![s("train"), config("list.yaml", "- a\n- b\n")],
            expect: vec![s("expected a mapping of `key: value` lines")],
        },
        Case {
            what: "YAML: value of the wrong type",
            args: vec![
                s("train"),
                config("type.yaml", "task: rte\nlr_prompt: abc\n"),
            ],
            expect: vec![s("`lr_prompt`: invalid type: string \"abc\", expected f64")],
        },
        Case {
            what: "YAML: no task",
            args: vec![s("train"), config("notask.yaml", "prompt_len: 4\n")],
            expect: vec![s("`task` is required")],
        },
        Case {
            what: "YAML: unknown task",
            args: vec![s("train"), config("nonsense.yaml", "task: nonsense\n")],
            expect: vec![s("unknown task `nonsense`; known tasks: mnli")],
        },
        Case {
            what: "value out of range",
            args: train(&["--set", "prompt_len=-5"]),
            expect: vec![s("`prompt_len` must be at least 0, got -5")],
        },
        Case {
            what: "value out of range",
            args: train(&["--set", "batch_size=0"]),
            expect: vec![s("`batch_size` must be positive")],
        },
        Case {
            what: "--set without a value",
            args: train(&["--set", "batch_size"]),
            expect: vec![s("--set \"batch_size\": expected key=value")],
        },
        Case {
            what: "unknown device",
            args: train(&["--set", "device=tpu"]),
            expect: vec![s("device \"tpu\": expected cpu, cuda, cuda:N or auto")],
        },
        Case {
            what: "a GPU that is not there",
            args: train(&["--set", "device=cuda:7"]),
            expect: vec![s("device cuda:7 requested but libtorch sees")],
        },
        Case {
            what: "m and r that miss the budget",
            args: train(&["--set", "budget=100"]),
            expect: vec![
                s("prompt_len = 4 and rank = 2 cost"),
                s("give only one of them"),
            ],
        },
        Case {
            what: "missing config file",
            args: vec![s("train"), root.join("nope.yaml").display().to_string()],
            expect: vec![s("nope.yaml: cannot read")],
        },
        Case {
            what: "missing model folder",
            args: with_model(&root.join("nope")),
            expect: vec![format!(
                "cannot read {}",
                root.join("nope/config.json").display()
            )],
        },
        Case {
            what: "pickle-only checkpoint",
            args: with_model(&pickle),
            expect: vec![s("pickle is never loaded"), s("safe_serialization=True")],
        },
        Case {
            what: "truncated model.safetensors",
            args: with_model(&truncated),
            expect: vec![s("model.safetensors: not a readable safetensors file")],
        },
        Case {
            what: "unsupported model_type",
            args: with_model(&bert),
            expect: vec![s(
                "model_type \"bert\" is not supported: T5 (v1, v1.1, Flan), GPT-2 and Llama are",
            )],
        },
        Case {
            what: "GPT-2 config.json missing a key",
            args: with_model(&gpt2),
            expect: vec![s(
                "gpt2/config.json: not a GPT-2 config: missing field `vocab_size`",
            )],
        },
        Case {
            what: "no tokenizer.json",
            args: with_model(&no_tokenizer),
            expect: vec![s("no-tokenizer/tokenizer.json: file not found")],
        },
        Case {
            what: "broken tokenizer.json",
            args: with_model(&broken_tokenizer),
            expect: vec![s("broken-tokenizer/tokenizer.json: EOF while parsing")],
        },
        Case {
            what: "missing data folder",
            args: train(&["--data-dir", &root.join("nowhere").display().to_string()]),
            expect: vec![s("rte: no file for the original `train` split; looked for")],
        },
        Case {
            what: "data file with a missing column",
            args: train(&["--data-dir", &bad_row.display().to_string()]),
            expect: vec![s("RTE/train.tsv:1: field `sentence2`")],
        },
        Case {
            what: "output folder that is not a run folder",
            args: train(&["--output-dir", &home.display().to_string(), "--overwrite"]),
            expect: vec![s("refusing to delete"), s("no .dept-run marker")],
        },
        Case {
            what: "missing adapter",
            args: vec![
                s("eval"),
                s("--adapter"),
                root.join("nope").display().to_string(),
            ],
            expect: vec![s("nope/adapter_config.json: cannot read")],
        },
        Case {
            what: "adapter config without the PEFT fields",
            args: vec![s("eval"), s("--adapter"), bad_adapter.display().to_string()],
            expect: vec![s(
                "not a DePT/PT adapter config: missing field `num_virtual_tokens`",
            )],
        },
        Case {
            what: "truncated adapter weights",
            args: vec![s("eval"), s("--adapter"), cut_adapter.display().to_string()],
            expect: vec![s(
                "adapter_model.safetensors: not a readable safetensors file",
            )],
        },
        Case {
            what: "adapter for another model width",
            args: vec![
                s("eval"),
                s("--adapter"),
                best.display().to_string(),
                s("--model"),
                wide.display().to_string(),
            ],
            expect: vec![s("d = 16"), s("d = 24")],
        },
        Case {
            what: "unknown split",
            args: vec![
                s("eval"),
                s("--adapter"),
                best.display().to_string(),
                s("--split"),
                s("dev2"),
            ],
            expect: vec![s(
                "unknown split `dev2`; expected train, validation or test",
            )],
        },
        Case {
            what: "impossible budget",
            args: vec![
                s("budget"),
                s("--d"),
                s("768"),
                s("--s"),
                s("256"),
                s("--l"),
                s("0"),
            ],
            expect: vec![s("l, d and s must be positive, got l = 0")],
        },
        Case {
            what: "vision task without features",
            args: vec![s("train"), config("vqa.yaml", "task: vqa\n")],
            expect: vec![s("`task: vqa` reads images: set `features`")],
        },
        Case {
            what: "features on a text task",
            args: vec![
                s("train"),
                config("rte-f.yaml", "task: rte\nfeatures: f.safetensors\n"),
            ],
            expect: vec![s("`features` is for the vision-language tasks")],
        },
        Case {
            what: "images without clip_model",
            args: vec![
                s("train"),
                config(
                    "vqa-i.yaml",
                    "task: vqa\nfeatures: f.safetensors\nimages: imgs\n",
                ),
            ],
            expect: vec![s("`images` needs `clip_model`")],
        },
        Case {
            what: "missing feature file",
            args: vec![
                s("train"),
                config("vqa-f.yaml", "task: vqa\nfeatures: /nope/f.safetensors\n"),
                s("--model"),
                m.clone(),
            ],
            expect: vec![s(
                "/nope/f.safetensors: the feature file (`features`) does not exist",
            )],
        },
        Case {
            what: "broken feature file",
            args: vec![
                s("train"),
                config(
                    "vqa-b.yaml",
                    &format!(
                        "task: vqa\nfeatures: {:?}\n",
                        write(&root.join("broken.safetensors"), "garbage!")
                    ),
                ),
                s("--model"),
                m.clone(),
            ],
            expect: vec![s("broken.safetensors: not a safetensors feature file")],
        },
    ];
    assert!(cases.len() >= 33);
    for case in &cases {
        let (ok, err) = dept(&case.args);
        assert!(!ok, "{}: dept {:?} succeeded", case.what, case.args);
        assert!(!err.contains("panicked"), "{}: panicked:\n{err}", case.what);
        assert_each_cause_once(&err, case.what);
        for expected in &case.expect {
            assert!(
                err.contains(expected.as_str()),
                "{}: expected {expected:?} in:\n{err}",
                case.what
            );
        }
    }
}

/// Library errors chain their causes once (a message that quotes its cause does not also expose it as a source),
/// so the `error:` line never says the same thing twice.
fn assert_each_cause_once(stderr: &str, what: &str) {
    for line in stderr.lines().filter(|l| l.starts_with("error: ")) {
        let parts: Vec<&str> = line["error: ".len()..].split(": ").map(str::trim).collect();
        for (i, part) in parts.iter().enumerate() {
            let again = parts[i + 1..].iter().any(|later| later == part);
            assert!(
                part.len() < 12 || !again,
                "{what}: the cause {part:?} is printed twice in:\n{line}"
            );
        }
    }
}

#[test]
#[should_panic(expected = "printed twice")]
fn a_cause_printed_twice_is_caught() {
    assert_each_cause_once(
        "error: cannot read x.json: No such file or directory (os error 2): No such file or directory (os error 2)\n",
        "self-check",
    );
}
