//! VQA accuracy and COCO caption metrics against tests/reference/vl_metrics_golden.json, which
//! tests/reference/vl_metrics_reference.py wrote with pycocoevalcap==1.2 (BLEU, ROUGE-L, CIDEr-D) and a Python
//! implementation of the VQA API's evaluation as VL-T5 / VL-Adapter run it.

mod common;

use dept_data::metrics::caption::{bleu, caption_scores, cider_d, rouge_l};
use dept_data::metrics::vqa::{
    normalize_answer, process_punctuation, vqa_accuracy, vqa_corpus_accuracy, CONTRACTIONS,
};
use serde_json::Value;

/// Relative closeness within 1e-9 (the computations are mirrored operation by operation; on the machine that
/// made the golden they agree bit for bit, which `--nocapture` shows); returns the relative difference.
fn close(ours: f64, reference: f64, what: &str) -> f64 {
    let scale = ours.abs().max(reference.abs());
    let diff = (ours - reference).abs();
    assert!(
        diff <= 1e-9 * scale,
        "{what}: ours {ours:e}, reference {reference:e}"
    );
    if diff == 0.0 {
        0.0
    } else {
        diff / scale
    }
}

/// A golden float: Python's `repr` in a JSON string, read back exactly (serde_json's own float parsing may be
/// one ulp off).
fn float(v: &Value) -> f64 {
    v.as_str()
        .expect("float as a string")
        .parse()
        .expect("a float")
}

fn f64s(v: &Value) -> Vec<f64> {
    v.as_array().expect("array").iter().map(float).collect()
}

fn references(v: &Value) -> Vec<Vec<String>> {
    v.as_array()
        .expect("array")
        .iter()
        .map(common::strings)
        .collect()
}

#[test]
fn vqa_normalisation_matches_reference() {
    let golden = common::golden("vl_metrics_golden.json");
    let cases = golden["vqa"]["normalisation"].as_array().unwrap();
    assert!(cases.len() > 50);
    for c in cases {
        let input = c["input"].as_str().unwrap();
        assert_eq!(
            normalize_answer(input),
            c["normalized"].as_str().unwrap(),
            "normalize_answer({input:?})"
        );
        assert_eq!(
            process_punctuation(input),
            c["punctuation"].as_str().unwrap(),
            "process_punctuation({input:?})"
        );
    }
}

#[test]
fn vqa_tables_match_reference() {
    let golden = common::golden("vl_metrics_golden.json");
    let words = golden["vqa"]["table_words"].as_array().unwrap();
    // Every contraction key, number word and article, normalised on both sides.
    assert_eq!(words.len(), CONTRACTIONS.len() + 12 + 3);
    for (i, (key, _)) in CONTRACTIONS.iter().enumerate() {
        assert_eq!(words[i][0].as_str().unwrap(), *key, "table order");
    }
    for w in words {
        let input = w[0].as_str().unwrap();
        assert_eq!(normalize_answer(input), w[1].as_str().unwrap(), "{input:?}");
    }
}

#[test]
fn vqa_accuracy_matches_reference() {
    let golden = common::golden("vl_metrics_golden.json");
    let cases = golden["vqa"]["cases"].as_array().unwrap();
    let mut predictions = Vec::new();
    let mut golds = Vec::new();
    for c in cases {
        let name = c["name"].as_str().unwrap();
        let prediction = c["prediction"].as_str().unwrap();
        let gold = common::strings(&c["gold"]);
        assert_eq!(
            normalize_answer(prediction),
            c["normalized"].as_str().unwrap(),
            "{name}"
        );
        let ours = vqa_accuracy(prediction, &gold);
        // Sums of thirds divided by 10, in the same order: bit-identical.
        assert_eq!(ours, float(&c["accuracy"]), "{name}");
        predictions.push(prediction.to_string());
        golds.push(gold);
    }
    let corpus = vqa_corpus_accuracy(&predictions, &golds).unwrap();
    assert_eq!(corpus, float(&golden["vqa"]["corpus_accuracy"]));
}

#[test]
fn vqa_accuracy_leave_one_out_values() {
    let gold = |n: usize| -> Vec<String> {
        (0..10)
            .map(|i| {
                if i < n {
                    "2".to_string()
                } else {
                    "x".to_string()
                }
            })
            .collect()
    };
    let expected = [0.0, 0.3, 0.6, 0.9, 1.0, 1.0];
    for (n, e) in expected.iter().enumerate() {
        assert!(
            (vqa_accuracy("two", &gold(n)) - e).abs() < 1e-15,
            "{n} matching annotators"
        );
    }
    // A unanimous gold answer is compared as it stands (the official evaluation processes gold answers only when
    // they disagree, and then only their punctuation).
    let unanimous = vec!["Two".to_string(); 10];
    assert_eq!(vqa_accuracy("Two", &unanimous), 0.0);
    assert_eq!(vqa_accuracy("2", &vec!["2".to_string(); 10]), 1.0);
    assert_eq!(vqa_accuracy("2", &[]), 0.0);
    assert!(vqa_corpus_accuracy(&["2".to_string()], &[vec![]]).is_err());
    assert!(vqa_corpus_accuracy(&[], &[]).is_err());
    assert!(vqa_corpus_accuracy(&["2".to_string()], &[]).is_err());
}

#[test]
fn vqa_normalisation_edge_cases() {
    assert_eq!(normalize_answer("Two"), "2");
    assert_eq!(normalize_answer("the dog"), "dog");
    assert_eq!(normalize_answer("An apple"), "apple");
    assert_eq!(normalize_answer("dont"), "don't");
    assert_eq!(normalize_answer("1,000"), "1000");
    assert_eq!(normalize_answer("yes, sir"), "yes sir");
    assert_eq!(normalize_answer("red,white"), "red white");
    assert_eq!(normalize_answer("5."), "5");
    assert_eq!(normalize_answer("3.5"), "3.5");
    assert_eq!(normalize_answer("e.g."), "eg");
    assert_eq!(normalize_answer(" \n yes\t"), "yes");
    assert_eq!(normalize_answer("Im"), "im");
    assert_eq!(normalize_answer("none"), "0");
    assert_eq!(normalize_answer("50%"), "50%");
    // At most 32 periods are removed (re.UNICODE passed as sub's count).
    let dots = ".".repeat(40);
    assert_eq!(normalize_answer(&dots), ".".repeat(8));
}

fn check_caption_set(name: &str) {
    let golden = common::golden("vl_metrics_golden.json");
    let g = &golden["captions"][name];
    let predictions = common::strings(&g["predictions"]);
    let refs = references(&g["references"]);
    let mut worst = 0.0f64;

    let b = bleu(&predictions, &refs).unwrap();
    let want = f64s(&g["bleu"]);
    assert_eq!(want.len(), 4);
    for (k, (ours, theirs)) in b.corpus.iter().zip(&want).enumerate() {
        let what = format!("{name} corpus BLEU-{}", k + 1);
        worst = worst.max(close(*ours, *theirs, &what));
    }
    let per_image = g["bleu_per_image"].as_array().unwrap();
    assert_eq!(b.per_image.len(), per_image.len());
    for (i, (ours, theirs)) in b.per_image.iter().zip(per_image).enumerate() {
        let theirs = f64s(theirs);
        for k in 0..4 {
            let what = format!("{name} image {i} BLEU-{}", k + 1);
            worst = worst.max(close(ours[k], theirs[k], &what));
        }
    }

    let r = rouge_l(&predictions, &refs).unwrap();
    let what = format!("{name} ROUGE-L");
    worst = worst.max(close(r.corpus, float(&g["rouge_l"]), &what));
    let want = f64s(&g["rouge_l_per_image"]);
    assert_eq!(r.per_image.len(), want.len());
    for (i, (a, b)) in r.per_image.iter().zip(want).enumerate() {
        worst = worst.max(close(*a, b, &format!("{name} image {i} ROUGE-L")));
    }

    let c = cider_d(&predictions, &refs).unwrap();
    let what = format!("{name} CIDEr-D");
    worst = worst.max(close(c.corpus, float(&g["cider"]), &what));
    let want = f64s(&g["cider_per_image"]);
    assert_eq!(c.per_image.len(), want.len());
    for (i, (a, b)) in c.per_image.iter().zip(want).enumerate() {
        worst = worst.max(close(*a, b, &format!("{name} image {i} CIDEr-D")));
    }
    println!("{name}: largest relative difference from pycocoevalcap {worst:e}");

    let all = caption_scores(&predictions, &refs).unwrap();
    assert_eq!(all.bleu, b.corpus);
    assert_eq!(all.bleu4, b.corpus[3]);
    assert_eq!(all.rouge_l, r.corpus);
    assert_eq!(all.cider, c.corpus);
}

#[test]
fn caption_metrics_match_pycocoevalcap() {
    check_caption_set("main");
}

#[test]
fn caption_edge_cases_match_pycocoevalcap() {
    // An empty prediction, a prediction equal to a reference, a tie for the closest reference length.
    check_caption_set("edge");
    // One image: every idf is log(1) - log(1) = 0, so CIDEr-D is 0.
    check_caption_set("single");
}

#[test]
fn caption_bad_input_is_an_error() {
    let p = vec!["a dog".to_string()];
    assert!(caption_scores(&p, &[]).is_err());
    assert!(caption_scores(&[], &[]).is_err());
    assert!(caption_scores(&p, &[vec![]]).is_err());
}
