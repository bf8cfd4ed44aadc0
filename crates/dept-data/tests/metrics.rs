//! Metrics, numpy permutations and STS-B targets against values scikit-learn / scipy / numpy produced
//! (tests/reference/metrics_reference.py).

mod common;

use dept_data::{score, score_all_answers, task, Extra, TextExample};

fn close(a: f64, b: f64, what: &str) {
    assert!((a - b).abs() < 1e-9, "{what}: ours {a}, reference {b}");
}

fn examples(targets: &[String], groups: Option<&[String]>) -> Vec<TextExample> {
    targets
        .iter()
        .enumerate()
        .map(|(i, t)| TextExample {
            id: i.to_string(),
            input: String::new(),
            target: t.clone(),
            extra: Extra {
                group: groups.map(|g| g[i].clone()),
                answers: Vec::new(),
                image: None,
                loss_weight: None,
            },
        })
        .collect()
}

fn check(task_name: &str, case: &str) {
    let golden = common::golden("metrics_golden.json");
    let c = &golden["cases"][case];
    let targets = common::strings(&c["targets"]);
    let predictions = common::strings(&c["predictions"]);
    let groups = c.get("groups").map(common::strings);
    let task = task(task_name).unwrap();
    let scores = score(task, &predictions, &examples(&targets, groups.as_deref())).unwrap();
    assert_eq!(scores.len(), task.metrics.len());
    for (name, value) in scores {
        let reference = c[name]
            .as_f64()
            .unwrap_or_else(|| panic!("{case}: no reference value for {name}"));
        close(value, reference, &format!("{task_name} {case} {name}"));
    }
}

#[test]
fn accuracy_f1_matthews_match_sklearn() {
    check("mrpc", "binary");
    check("cola", "binary");
    check("qqp", "binary");
    check("mrpc", "binary_no_positives");
    check("mrpc", "binary_constant_predictions");
    check("cola", "binary_constant_predictions");
}

#[test]
fn macro_f1_matches_sklearn() {
    check("cb", "ternary");
    check("cb", "ternary_missing_class");
}

#[test]
fn pearson_spearman_match_scipy() {
    check("stsb", "stsb");
    check("stsb", "stsb_constant");
    check("stsb", "stsb_nan");
    check("stsb", "stsb_inf");
    check("stsb", "stsb_python_floats");
}

#[test]
fn multirc_f1_and_question_em_match_reference() {
    check("multirc", "multirc");
}

#[test]
fn squad_em_f1_match_reference() {
    let golden = common::golden("metrics_golden.json");
    let c = &golden["cases"]["squad"];
    let predictions = common::strings(&c["predictions"]);
    let golds: Vec<Vec<String>> = c["golds"]
        .as_array()
        .unwrap()
        .iter()
        .map(common::strings)
        .collect();
    for (p, n) in predictions.iter().zip(common::strings(&c["normalized"])) {
        assert_eq!(dept_data::metrics::normalize_answer(p), n);
    }
    let examples: Vec<TextExample> = golds
        .iter()
        .map(|g| TextExample {
            id: String::new(),
            input: String::new(),
            target: g[0].clone(),
            extra: Extra {
                group: None,
                answers: g.clone(),
                image: None,
                loss_weight: None,
            },
        })
        .collect();
    let squad = task("squad").unwrap();
    let all = score_all_answers(squad, &predictions, &examples).unwrap();
    close(all[0].1, c["em"].as_f64().unwrap(), "em");
    close(all[1].1, c["f1"].as_f64().unwrap(), "f1");
    let first = score(squad, &predictions, &examples).unwrap();
    close(
        first[0].1,
        c["em_first_gold"].as_f64().unwrap(),
        "em first gold",
    );
    close(
        first[1].1,
        c["f1_first_gold"].as_f64().unwrap(),
        "f1 first gold",
    );
}

#[test]
fn invalid_predictions_count_as_wrong() {
    let rte = task("rte").unwrap();
    let ex = examples(&["0".into(), "1".into()], None);
    let scores = score(rte, &["0", "entailment"], &ex).unwrap();
    assert_eq!(scores, vec![("accuracy", 50.0)]);
    assert!(
        score(rte, &["0"], &ex).is_err(),
        "length mismatch must be an error"
    );
}

#[test]
fn numpy_permutation_matches_numpy() {
    let golden = common::golden("metrics_golden.json");
    for case in golden["permutations"].as_array().unwrap() {
        let seed = case["seed"].as_u64().unwrap();
        let n = case["n"].as_u64().unwrap() as usize;
        let ours = dept_data::numpy_rng::numpy_permutation(n, seed);
        let (theirs, k) = match case.get("perm") {
            Some(p) => (common::numbers(p), n.min(40)),
            None => (common::numbers(&case["head"]), 30),
        };
        assert_eq!(ours[..k], theirs[..k], "seed {seed} n {n}");
    }
}

#[test]
fn stsb_targets_match_numpy_rounding() {
    let golden = common::golden("metrics_golden.json");
    for (raw, expected) in golden["stsb_targets"].as_object().unwrap() {
        let score: f64 = raw.parse().unwrap();
        assert_eq!(
            dept_data::text::stsb_target(score),
            expected.as_str().unwrap(),
            "score {raw}"
        );
    }
}
