//! Beam search through the config and the command line: a run's `decode_*` keys decode its evaluation and are
//! what `dept predict` / `dept eval` use by default; `--num-beams`, `--length-penalty`, `--early-stopping`,
//! `--no-repeat-ngram-size` and `--max-new-tokens` replace them; bad values are refused by name. (That beam
//! search itself gives transformers' tokens is tests/beam_parity.rs.)

mod common;

use common::cli::*;
use common::fixture::Fixture;
use dept_models::EarlyStopping;
use dept_train::{DecodingOverrides, Inference, InferenceOverrides};

const RUN: &str = "prompt_len: 4\nrank: 2\nmax_len: 32\nmax_steps: 2\neval_every: 2\nsave_every: 2\n\
                   batch_size: 8\neval_batch_size: 16\ndevice: cpu\nthreads: 1\ndecode_max_tokens: 6\n\
                   decode_num_beams: 4\ndecode_no_repeat_ngram_size: 1\ndecode_early_stopping: never\n";

const TEXTS: [&str; 2] = [
    "premise: the cat sat on the mat hypothesis: a cat sat",
    "premise: a dog ran hypothesis: the dog slept",
];

fn predictions(stdout: &str) -> Vec<String> {
    json_lines(stdout)
        .iter()
        .map(|line| line["prediction"].as_str().expect("prediction").to_string())
        .collect()
}

#[test]
fn the_runs_decoding_keys_and_the_flags_that_replace_them_reach_the_decoder() {
    let fx = Fixture::new(32, 16);
    let run = fx.run_dir("run");
    let config = fx.write_config("beam", &run, RUN);
    ok(&["-q", "train", path(&config)]);
    let saved = std::fs::read_to_string(run.join("config.yaml")).unwrap();
    assert!(
        saved.contains("decode_num_beams: 4") && saved.contains("decode_early_stopping: never"),
        "{saved}"
    );
    let best = run.join("best");
    let input = fx.root.join("inputs.jsonl");
    let lines: String = TEXTS
        .iter()
        .map(|t| format!("{}\n", serde_json::json!({ "input": t })))
        .collect();
    std::fs::write(&input, lines).unwrap();
    let predict = |flags: &[&str]| {
        let mut args = vec!["predict", "--adapter", path(&best), "--input", path(&input)];
        args.extend_from_slice(flags);
        predictions(&ok(&args))
    };

    // The library with the same settings gives what the command line gives.
    let library = |decoding: DecodingOverrides| {
        let overrides = InferenceOverrides {
            decoding,
            ..InferenceOverrides::default()
        };
        let texts: Vec<String> = TEXTS.iter().map(|t| t.to_string()).collect();
        Inference::open(&best, &overrides)
            .expect("open the adapter")
            .predict(&texts)
            .expect("predict")
    };
    let run_default = predict(&[]);
    assert_eq!(
        run_default,
        library(DecodingOverrides {
            num_beams: Some(4),
            no_repeat_ngram_size: Some(1),
            early_stopping: Some(EarlyStopping::Never),
            ..DecodingOverrides::default()
        })
    );
    let greedy = predict(&["--num-beams", "1", "--no-repeat-ngram-size", "0"]);
    assert_eq!(
        greedy,
        library(DecodingOverrides {
            num_beams: Some(1),
            no_repeat_ngram_size: Some(0),
            ..DecodingOverrides::default()
        })
    );
    // The tiny random model repeats words when decoding greedily; with no 1-gram twice it cannot.
    assert_ne!(run_default, greedy, "the run's beams decode as greedy does");
    for prediction in &run_default {
        let words: Vec<&str> = prediction.split_whitespace().collect();
        let mut unique = words.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(
            unique.len(),
            words.len(),
            "a word repeats in `{prediction}`"
        );
    }
    let flags = [
        "--num-beams",
        "3",
        "--length-penalty",
        "-0.5",
        "--early-stopping",
        "true",
        "--max-new-tokens",
        "4",
    ];
    assert_eq!(
        predict(&flags),
        library(DecodingOverrides {
            num_beams: Some(3),
            length_penalty: Some(-0.5),
            early_stopping: Some(EarlyStopping::WhenFull),
            max_new_tokens: Some(4),
            ..DecodingOverrides::default()
        })
    );

    // dept eval decodes with beams too, and refuses what cannot decode by name.
    let eval = json_lines(&ok(&[
        "eval",
        "--adapter",
        path(&best),
        "--split",
        "validation",
        "--num-beams",
        "2",
    ]));
    assert!(eval[0]["metrics"]["accuracy"].is_number(), "{eval:?}");
    let wrong = fails(&[
        "predict",
        "--adapter",
        path(&best),
        "--text",
        "a",
        "--num-beams",
        "0",
    ]);
    assert!(
        wrong.contains("num_beams must be at least 1, got 0"),
        "{wrong}"
    );
    let wrong = fails(&[
        "eval",
        "--adapter",
        path(&best),
        "--early-stopping",
        "sometimes",
    ]);
    assert!(wrong.contains("`sometimes`"), "{wrong}");
}
