//! Every task present in ../shared/data loads with the official split sizes and formats.
//! Skips with a message when the data folder is absent.

mod common;

use dept_data::{load_split, task, Split, OFFICIAL_SPLIT_SEED};

fn sizes(name: &str) -> Option<[usize; 3]> {
    let dir = common::data_dir()?;
    let t = task(name).unwrap();
    let mut out = [0; 3];
    for (i, split) in Split::ALL.into_iter().enumerate() {
        out[i] = load_split(t, &dir, split, OFFICIAL_SPLIT_SEED)
            .unwrap_or_else(|e| panic!("{name} {split}: {e}"))
            .len();
    }
    Some(out)
}

#[test]
fn split_sizes_equal_the_official_ones() {
    let expected: &[(&str, [usize; 3])] = &[
        ("rte", [2490, 138, 139]),
        ("cola", [8551, 521, 522]),
        ("mrpc", [3668, 204, 204]),
        ("stsb", [5749, 750, 750]),
        ("sst2", [66349, 1000, 872]),
        ("cb", [250, 28, 28]),
        ("wic", [5428, 319, 319]),
        ("wsc", [554, 52, 52]),
        ("multirc", [27243, 2424, 2424]),
    ];
    for (name, want) in expected {
        let Some(got) = sizes(name) else { return };
        assert_eq!(&got, want, "{name}");
    }
}

#[test]
fn partial_tasks_load_what_is_present_and_say_what_is_missing() {
    let Some(dir) = common::data_dir() else {
        return;
    };
    let boolq = task("boolq").unwrap();
    assert_eq!(
        load_split(boolq, &dir, Split::Validation, 42)
            .unwrap()
            .len(),
        1635
    );
    assert_eq!(
        load_split(boolq, &dir, Split::Test, 42).unwrap().len(),
        1635
    );
    let err = load_split(boolq, &dir, Split::Train, 42)
        .unwrap_err()
        .to_string();
    assert!(err.contains("train.jsonl"), "{err}");
    let qnli = task("qnli").unwrap();
    assert_eq!(load_split(qnli, &dir, Split::Test, 42).unwrap().len(), 5463);
    let wino = task("winogrande").unwrap();
    assert_eq!(load_split(wino, &dir, Split::Test, 42).unwrap().len(), 1267);
    let mnli = task("mnli").unwrap();
    assert!(load_split(mnli, &dir, Split::Test, 42).is_err());
}

fn first(name: &str, split: Split) -> Option<dept_data::TextExample> {
    let dir = common::data_dir()?;
    let examples = load_split(task(name).unwrap(), &dir, split, OFFICIAL_SPLIT_SEED).unwrap();
    Some(examples[0].clone())
}

#[test]
fn formatted_examples_are_the_official_strings() {
    let cases: &[(&str, Split, &str, &str, &str)] = &[
        (
            "rte",
            Split::Train,
            "0",
            "sentence1: No Weapons of Mass Destruction Found in Iraq Yet. sentence2: Weapons of Mass Destruction Found in Iraq.",
            "1",
        ),
        (
            "cola",
            Split::Train,
            "0",
            "sentence: Our friends won't buy this analysis, let alone the next one we propose.",
            "1",
        ),
        (
            "stsb",
            Split::Train,
            "0",
            "sentence1: A plane is taking off. sentence2: An air plane is taking off.",
            "5.0",
        ),
        (
            "sst2",
            Split::Test,
            "0",
            "sentence: it 's a charming and often affecting journey . ",
            "1",
        ),
        (
            "wic",
            Split::Train,
            "0",
            "sentence1: Do you want to come over to my place later? sentence2: A political system with no place for the less prominent groups. word: place",
            "0",
        ),
        (
            "wsc",
            Split::Train,
            "0",
            "text: * Mark * told Pete many lies about himself, which Pete included in his book. # He # should have been more skeptical.",
            "0",
        ),
        (
            "cb",
            Split::Train,
            "0",
            "premise: It was a complex language. Not written down but handed down. One might say it was peeled down. hypothesis: the language was peeled down",
            "0",
        ),
        (
            "winogrande",
            Split::Test,
            "3FCO4VKOZ4BJQ6IFC0VAIBK4KTWE7U-2",
            "sentence: Sarah was a much better surgeon than Maria so _ always got the easier cases. option0: Sarah option1: Sarah",
            "1",
        ),
        (
            "qnli",
            Split::Test,
            "0",
            "question: What came into force after the new constitution was herald? sentence: As of that day, the new constitution heralding the Second Republic came into force.",
            "0",
        ),
    ];
    for (name, split, id, input, target) in cases {
        let Some(e) = first(name, *split) else { return };
        assert_eq!(
            (e.id.as_str(), e.input.as_str(), e.target.as_str()),
            (*id, *input, *target),
            "{name} {split}"
        );
    }
}

#[test]
fn validation_rows_follow_the_torch_permutation() {
    let Some(e) = first("rte", Split::Validation) else {
        return;
    };
    // torch.randperm(277, generator=manual_seed(42))[0] == 207 (see tests/reference/randperm_torch.json).
    assert_eq!(e.id, "207");
    let Some(e) = first("sst2", Split::Validation) else {
        return;
    };
    assert_eq!(
        e.id,
        dept_data::randperm::torch_randperm(67349, 42)[0].to_string()
    );
}

#[test]
fn multirc_removes_markup_and_groups_by_question() {
    let Some(dir) = common::data_dir() else {
        return;
    };
    let train = load_split(task("multirc").unwrap(), &dir, Split::Train, 42).unwrap();
    assert!(train
        .iter()
        .all(|e| !e.input.contains("<b>") && !e.input.contains("<br>")));
    let e = &train[0];
    assert_eq!(e.id, "0-0-0");
    assert_eq!(e.extra.group.as_deref(), Some("0-0"));
    assert!(e.input.starts_with("question: What did the high-level effort to persuade Pakistan include? answer: Children, Gerd, or Dorian Popa paragraph: While this process moved along, diplomacy continued its rounds."));
}

#[test]
fn mrqa_sample_reads_and_pads_punctuation() {
    let Some(dir) = common::data_dir() else {
        return;
    };
    let path = dir.join("MRQA/NewsQA_sample.jsonl");
    if !path.is_file() {
        println!("skipping: {} absent", path.display());
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let newsqa = tmp.path().join("NewsQA");
    std::fs::create_dir(&newsqa).unwrap();
    std::fs::copy(&path, newsqa.join("dev.jsonl")).unwrap();
    let t = task("newsqa").unwrap();
    let test = load_split(t, tmp.path(), Split::Test, 42).unwrap();
    assert!(!test.is_empty());
    let e = &test[0];
    assert!(e.input.starts_with("question: "), "{}", e.input);
    assert!(
        e.input
            .contains(" context:  ( CNN ) - - What could be more powerful"),
        "{}",
        &e.input[..200]
    );
    // pad_punctuation keeps the leading space before "(", and the official join adds one: two spaces.
    assert!(!e.extra.answers.is_empty());
    assert_eq!(e.target, e.extra.answers[0]);
}

#[test]
fn k_shot_is_class_balanced_and_seeded() {
    let Some(dir) = common::data_dir() else {
        return;
    };
    let rte = task("rte").unwrap();
    let train = load_split(rte, &dir, Split::Train, 42).unwrap();
    for k in [4, 16, 32] {
        let a = dept_data::k_shot(rte, &train, k, 13).unwrap();
        assert_eq!(a.len(), k);
        // k/2 per class, except that the last free slot takes whichever class comes next (official quirk).
        let zeros = a.iter().filter(|e| e.target == "0").count();
        assert!(
            zeros == k / 2 || zeros == k / 2 + 1 || zeros + 1 == k / 2,
            "k {k}: {zeros} zeros"
        );
        assert_eq!(a, dept_data::k_shot(rte, &train, k, 13).unwrap());
        assert_ne!(a, dept_data::k_shot(rte, &train, k, 21).unwrap());
    }
    let cb = task("cb").unwrap();
    let cb_train = load_split(cb, &dir, Split::Train, 42).unwrap();
    assert_eq!(dept_data::k_shot(cb, &cb_train, 16, 42).unwrap().len(), 16);
}

/// The rows the official code selects (`kshot_reference.py` ran its draw with the real `datasets` shuffle on the
/// same files): RTE and CB (three classes, so the last-slot rule matters), k ∈ {4, 16, 32}, three seeds.
#[test]
fn k_shot_selects_the_official_rows() {
    let Some(dir) = common::data_dir() else {
        return;
    };
    let golden = common::golden("kshot_golden.json");
    let cases = golden["cases"].as_array().unwrap();
    assert_eq!(cases.len(), 18);
    for case in cases {
        let name = case["task"].as_str().unwrap();
        let (k, seed) = (case["k"].as_u64().unwrap(), case["seed"].as_u64().unwrap());
        let t = task(name).unwrap();
        let train = load_split(t, &dir, Split::Train, OFFICIAL_SPLIT_SEED).unwrap();
        let position = |id: &str| train.iter().position(|e| e.id == id).unwrap();
        let rows: Vec<usize> = dept_data::k_shot(t, &train, k as usize, seed)
            .unwrap()
            .iter()
            .map(|e| position(&e.id))
            .collect();
        assert_eq!(
            rows,
            common::numbers(&case["rows"]),
            "{name} k {k} seed {seed}"
        );
    }
}
