//! `tokenizer.json` encoding, truncation and decoding as transformers does it, on the real T5 and GPT-2
//! vocabularies in ../shared/tokenizers (skipped with a message when that folder is absent).

mod common;

use std::path::PathBuf;

use common::*;
use dept_models::TextTokenizer;

fn shared_tokenizers() -> Option<PathBuf> {
    shared_dir().map(|dir| dir.join("tokenizers"))
}

#[test]
fn matches_transformers_on_the_real_vocabularies() {
    let Some(dir) = shared_tokenizers() else {
        return;
    };
    let golden = read_json(&reference_dir().join("tokenizer_golden.json"));
    let max_len = golden["max_len"].as_u64().unwrap() as usize;
    let texts: Vec<String> = golden["texts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap().to_string())
        .collect();
    for name in ["t5", "gpt2"] {
        let tok = TextTokenizer::from_file(&dir.join(name).join("tokenizer.json")).unwrap();
        let expected = &golden[name];
        let ids = int_rows(expected, "ids");
        let truncated = int_rows(expected, "truncated");
        for (i, text) in texts.iter().enumerate() {
            assert_eq!(tok.encode(text, None).unwrap(), ids[i], "{name} {text:?}");
            assert_eq!(
                tok.encode(text, Some(max_len)).unwrap(),
                truncated[i],
                "{name} {text:?} truncated to {max_len}"
            );
            assert_eq!(
                tok.decode(&ids[i]).unwrap(),
                expected["decoded"][i].as_str().unwrap(),
                "{name} decode {text:?}"
            );
        }
    }
}

/// The gold strings the official code scores against: target ids (truncated to max_length with `</s>` kept), then
/// `batch_decode(skip_special_tokens=True)` with transformers 4.26.1's default clean-up, as
/// tests/reference/decode_reference.py wrote them (real NewsQA answers and sentences, `<unk>`, contractions).
#[test]
fn gold_strings_are_the_official_decodes() {
    let Some(dir) = shared_tokenizers() else {
        return;
    };
    let tok = TextTokenizer::from_file(&dir.join("t5").join("tokenizer.json")).unwrap();
    let golden = read_json(&reference_dir().join("decode_golden.json"));
    let cases = golden["cases"].as_array().unwrap();
    assert!(cases.len() > 100);
    let mut cleaned_differently = 0;
    for case in cases {
        let text = case["text"].as_str().unwrap();
        let max_len = case["max_length"].as_u64().unwrap() as usize;
        let ids = int_row(&case["ids"]);
        assert_eq!(
            tok.encode(text, Some(max_len)).unwrap(),
            ids,
            "{text:?} at {max_len}"
        );
        let official = case["gold_default"].as_str().unwrap();
        let plain = case["gold_no_cleanup"].as_str().unwrap();
        assert_eq!(
            tok.decode_for_scoring(&ids, true).unwrap().trim(),
            official,
            "{text:?}"
        );
        assert_eq!(
            tok.decode_for_scoring(&ids, false).unwrap().trim(),
            plain,
            "{text:?}"
        );
        cleaned_differently += usize::from(official != plain);
    }
    assert!(
        cleaned_differently >= 20,
        "only {cleaned_differently} cases exercise the clean-up"
    );
    for case in golden["decode_cases"].as_array().unwrap() {
        let ids = int_row(&case["ids"]);
        assert_eq!(
            tok.decode_for_scoring(&ids, true).unwrap().trim(),
            case["decoded_default"].as_str().unwrap().trim(),
            "{ids:?}"
        );
    }
}

fn int_row(value: &serde_json::Value) -> Vec<i64> {
    value
        .as_array()
        .expect("ids")
        .iter()
        .map(|v| v.as_i64().expect("id"))
        .collect()
}

#[test]
fn a_missing_tokenizer_is_named() {
    let err = TextTokenizer::from_file(std::path::Path::new("/nonexistent/tokenizer.json"))
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("/nonexistent/tokenizer.json"), "{err}");
}
