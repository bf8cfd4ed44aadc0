//! CLIP-T5 end to end on images the test draws (PNG and JPEG), a tiny random CLIP vision tower and a tiny random T5
//! with T5's real tokenizer (../shared), on rows in VL-T5's VQA and Karpathy COCO formats:
//! `dept features extract` (and its resume), `dept train` on VQA from a feature file and on captions from the
//! images themselves, `dept eval` reproducing the logged validation score, `dept predict` with image ids, and the
//! refusals (unreadable image, missing feature key, feature width mismatch, no image for a prediction).
//!
//! Scores are meaningless with random 32-wide models after a few steps; only their form is checked, and that the
//! training loss falls.

mod common;

use std::path::{Path, PathBuf};

use common::cli::*;
use dept_models::features::{list_images, Extractor, FeatureOptions, FeatureStore};
use serde_json::{json, Value};

const COLORS: [(&str, [u8; 3]); 4] = [
    ("red", [220, 30, 30]),
    ("green", [30, 200, 40]),
    ("blue", [30, 40, 220]),
    ("yellow", [230, 220, 30]),
];

/// Image `i`: a 48×40 picture of a square of colour `i % 4` on a grey ground with a few stripes, so every image
/// differs. Even ones are PNG, odd ones JPEG.
fn draw(dir: &Path, id: &str, i: usize) -> PathBuf {
    let (w, h) = (48u32, 40u32);
    let color = COLORS[i % COLORS.len()].1;
    let img = image::RgbImage::from_fn(w, h, |x, y| {
        let inside = (10..38).contains(&x) && (8..32).contains(&y);
        let stripe = (x + y + i as u32) % 9 == 0;
        image::Rgb(match (inside, stripe) {
            (true, _) => color,
            (false, true) => [40, 40, 40],
            (false, false) => [128, 128, 128],
        })
    });
    let path = dir.join(format!("{id}.{}", if i % 2 == 0 { "png" } else { "jpg" }));
    img.save(&path).unwrap();
    path
}

fn image_id(split: &str, i: usize) -> String {
    format!("COCO_{split}2014_{:012}", i + 1)
}

/// 8 images (train2014: 0..6, val2014: 6..8) with VQA questions and COCO captions about them, in VL-T5's files.
fn write_data(root: &Path) -> (PathBuf, PathBuf) {
    let images = root.join("images");
    std::fs::create_dir_all(images.join("train2014")).unwrap();
    std::fs::create_dir_all(images.join("val2014")).unwrap();
    let ids: Vec<String> = (0..8)
        .map(|i| image_id(if i < 6 { "train" } else { "val" }, i))
        .collect();
    for (i, id) in ids.iter().enumerate() {
        let folder = if i < 6 { "train2014" } else { "val2014" };
        draw(&images.join(folder), id, i);
    }
    let data = root.join("data");
    let vqa = data.join("vqa");
    std::fs::create_dir_all(&vqa).unwrap();
    let question = |i: usize, q: usize| {
        let color = COLORS[i % COLORS.len()].0;
        let answers: Vec<Value> = (1..=10)
            .map(|k| json!({"answer": if k <= 8 { color } else { "gray" }, "answer_confidence": "yes", "answer_id": k}))
            .collect();
        let sent = ["What color is the square?", "Which color is the box?"][q % 2];
        json!({
            "img_id": ids[i], "question_id": (i * 10 + q) as i64,
            "sent": sent,
            "label": {color: 1.0, "gray": 0.6}, "answers": answers,
            "answer_type": "other", "question_type": "what color is the",
        })
    };
    let split = |range: std::ops::Range<usize>| -> Value {
        Value::Array(
            range
                .flat_map(|i| [question(i, 0), question(i, 1)])
                .collect(),
        )
    };
    std::fs::write(vqa.join("karpathy_train.json"), split(0..5).to_string()).unwrap();
    std::fs::write(vqa.join("karpathy_val.json"), split(5..7).to_string()).unwrap();
    std::fs::write(vqa.join("karpathy_test.json"), split(6..8).to_string()).unwrap();

    let coco = data.join("COCO");
    std::fs::create_dir_all(&coco).unwrap();
    let splits = [
        "train", "train", "restval", "train", "val", "val", "test", "test",
    ];
    let entries: Vec<Value> = ids
        .iter()
        .enumerate()
        .map(|(i, id)| {
            let color = COLORS[i % COLORS.len()].0;
            let sentences: Vec<Value> = [
                format!("A {color} square on a gray background."),
                format!("a {color} box with stripes around it"),
            ]
            .iter()
            .enumerate()
            .map(|(k, raw)| json!({"raw": raw, "tokens": [], "sentid": i * 10 + k, "imgid": i}))
            .collect();
            json!({
                "filepath": if i < 6 { "train2014" } else { "val2014" },
                "filename": format!("{id}.jpg"), "cocoid": i + 1, "split": splits[i],
                "imgid": i, "sentids": [i * 10, i * 10 + 1], "sentences": sentences,
            })
        })
        .collect();
    std::fs::write(
        coco.join("dataset_coco.json"),
        json!({"images": entries, "dataset": "coco"}).to_string(),
    )
    .unwrap();
    (images, data)
}

fn write_config(root: &Path, name: &str, lines: &[(&str, String)]) -> PathBuf {
    let mut yaml = String::from(
        "prompt_len: 4\nrank: 2\nmax_len: 32\nlr_prompt: 0.3\nlr_pair: 0.05\nlr_visual: 0.01\nwarmup_steps: 2\n\
         max_steps: 16\nbatch_size: 4\neval_every: 8\nsave_every: 8\ndecode_max_tokens: 4\ndevice: cpu\n\
         threads: 1\nprompt_init: random\n",
    );
    for (key, value) in lines {
        yaml.push_str(&format!("{key}: {value}\n"));
    }
    let file = root.join(format!("{name}.yaml"));
    std::fs::write(&file, yaml).unwrap();
    file
}

fn quoted(p: &Path) -> String {
    format!("{:?}", path(p))
}

#[test]
fn clip_t5_extracts_trains_evaluates_and_predicts_from_generated_images() {
    let Some(shared) = common::shared_dir() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let (images, data) = write_data(root);

    // The two tasks are listed with the paper's 23.
    let tasks = ok(&["data", "tasks"]);
    assert!(
        tasks.contains("vqa") && tasks.contains("coco_caption"),
        "{tasks}"
    );

    // Models: a CLIP vision tower (16 wide: 16 patch tokens of width 16) and a T5 with T5's vocabulary.
    let clip = root.join("clip");
    ok(&[
        "tiny-model",
        "--arch",
        "clip",
        "--d-model",
        "16",
        "--out",
        path(&clip),
    ]);
    assert_eq!(
        common::read_json(&clip.join("config.json"))["model_type"],
        "clip_vision_model"
    );
    let t5 = root.join("t5");
    let tokenizer = shared.join("tokenizers/t5/tokenizer.json");
    ok(&[
        "tiny-model",
        "--arch",
        "t5",
        "--tokenizer",
        path(&tokenizer),
        "--out",
        path(&t5),
    ]);

    // Features, once; a second run finds everything done.
    let features = root.join("features.safetensors");
    let extract = |out: &Path| {
        ok(&[
            "features",
            "extract",
            "--model",
            path(&clip),
            "--images",
            path(&images),
            "--out",
            path(out),
            "--batch-size",
            "3",
            "--device",
            "cpu",
        ])
    };
    let first = extract(&features);
    assert!(
        first.contains("8 images (8 extracted now, 0 already there), 16 tokens × 16 each"),
        "{first}"
    );
    let again = extract(&features);
    assert!(
        again.contains("(0 extracted now, 8 already there)"),
        "{again}"
    );
    let store = FeatureStore::open(&features).unwrap();
    assert_eq!((store.len(), store.tokens(), store.width()), (8, 16, 16));
    assert_eq!(store.metadata()["layer"], "-1");
    assert_eq!(store.metadata()["class_token"], "false");
    // What was stored is the tower's last layer without the class token, for the right image.
    let extractor = Extractor::load(&clip, tch::Device::Cpu, FeatureOptions::default(), 1).unwrap();
    let files = list_images(&images).unwrap();
    let one = &files[3];
    let pixels = dept_models::image_input::ClipImageProcessor::from_model_dir(&clip)
        .unwrap()
        .preprocess_batch(&[&one.path])
        .unwrap();
    let states = extractor.clip().forward(&pixels).unwrap();
    let expected = states.last_hidden_state.get(0).narrow(0, 1, 16);
    assert!(store.get(&one.id).unwrap().equal(&expected), "{}", one.id);

    // VQA from the feature file.
    let vqa_run = root.join("vqa-run");
    let vqa_config = write_config(
        root,
        "vqa",
        &[
            ("task", "vqa".into()),
            ("model", quoted(&t5)),
            ("data_dir", quoted(&data)),
            ("output_dir", quoted(&vqa_run)),
            ("features", quoted(&features)),
            ("max_target_len", "4".into()),
        ],
    );
    let stdout = ok(&["-q", "train", path(&vqa_config)]);
    assert!(stdout.contains("finished 16 steps"), "{stdout}");
    assert!(
        stdout.contains("test (best adapter): vqa_accuracy"),
        "{stdout}"
    );
    for file in [
        "best/adapter_model.safetensors",
        "best/visual_embedding.safetensors",
        "last/visual_embedding.safetensors",
    ] {
        assert!(vqa_run.join(file).is_file(), "{file} missing");
    }
    let results = results_row(&vqa_run);
    // Linear 16→32 with bias and RMS norm, VL-T5's box embedding (5→32 with bias, RMS norm) and image-order
    // embedding (2 rows); the object-order rows are frozen word embeddings in VL-T5 and not counted.
    assert_eq!(
        results["visual_params"],
        (16 * 32 + 32 + 32 + 5 * 32 + 32 + 32 + 2 * 32).to_string()
    );
    let accuracy: f64 = results["test_vqa_accuracy"].parse().unwrap();
    assert!((0.0..=100.0).contains(&accuracy), "{accuracy}");
    let logs = records(&vqa_run);
    let losses: Vec<f64> = logs.iter().filter_map(|r| r["loss"].as_f64()).collect();
    assert_eq!(losses.len(), 16);
    let (early, late) = (
        losses[..4].iter().sum::<f64>(),
        losses[12..].iter().sum::<f64>(),
    );
    assert!(late < early, "the loss should fall: {losses:?}");
    assert!(logs
        .iter()
        .any(|r| r["lr_visual"].as_f64().is_some_and(|v| v > 0.0)));

    // VL-Adapter's VQA loss weighs each question by its answer's score: training questions whose label scores no
    // answer (target "") weigh 0, so a run on only those has loss 0; the token mean (`example_weights: false`)
    // trains them towards the empty answer.
    let unscored = root.join("unscored");
    std::fs::create_dir_all(unscored.join("vqa")).unwrap();
    for file in ["karpathy_val.json", "karpathy_test.json"] {
        std::fs::copy(data.join("vqa").join(file), unscored.join("vqa").join(file)).unwrap();
    }
    let mut train: Value = serde_json::from_str(
        &std::fs::read_to_string(data.join("vqa/karpathy_train.json")).unwrap(),
    )
    .unwrap();
    for row in train.as_array_mut().unwrap() {
        row["label"] = json!({});
    }
    std::fs::write(unscored.join("vqa/karpathy_train.json"), train.to_string()).unwrap();
    for (weights, zero) in [("true", true), ("false", false)] {
        let run = root.join(format!("unscored-{weights}"));
        ok(&[
            "-q",
            "train",
            path(&vqa_config),
            "--set",
            &format!("data_dir={}", quoted(&unscored)),
            "--set",
            &format!("output_dir={}", quoted(&run)),
            "--set",
            "max_steps=2",
            "--set",
            &format!("example_weights={weights}"),
        ]);
        let losses: Vec<f64> = records(&run)
            .iter()
            .filter_map(|r| r["loss"].as_f64())
            .collect();
        assert_eq!(losses.len(), 2);
        assert_eq!(
            losses.iter().all(|&l| l == 0.0),
            zero,
            "example_weights {weights}: {losses:?}"
        );
    }

    // A run killed after its first checkpoint and resumed ends where the uninterrupted one did, visual embedding
    // and its optimiser moments included.
    let resumed_run = root.join("vqa-resumed");
    let resumed_config = write_config(
        root,
        "vqa-resumed",
        &[
            ("task", "vqa".into()),
            ("model", quoted(&t5)),
            ("data_dir", quoted(&data)),
            ("output_dir", quoted(&resumed_run)),
            ("features", quoted(&features)),
            ("max_target_len", "4".into()),
        ],
    );
    let killed = run_and_kill(&resumed_config, &resumed_run, 10);
    println!("resume check: killed mid-run: {killed}");
    if killed {
        assert!(
            resumed_run
                .join("last/visual_embedding.safetensors")
                .is_file(),
            "the step-8 checkpoint"
        );
        ok(&["-q", "train", path(&resumed_config)]);
    }
    // (A run that ended before the kill still has to match: same config, same seed.)
    for file in [
        "last/visual_embedding.safetensors",
        "last/adapter_model.safetensors",
        "last/optimizer.safetensors",
        "best/visual_embedding.safetensors",
    ] {
        assert_eq!(
            std::fs::read(vqa_run.join(file)).unwrap(),
            std::fs::read(resumed_run.join(file)).unwrap(),
            "{file} differs after resuming"
        );
    }

    // `dept eval` on the best adapter reproduces the logged best validation score.
    let best = vqa_run.join("best");
    let eval = json_lines(&ok(&[
        "eval",
        "--adapter",
        path(&best),
        "--split",
        "validation",
    ]));
    let logged = results["validation_vqa_accuracy"].parse::<f64>().unwrap();
    let evaluated = eval[0]["metrics"]["vqa_accuracy"].as_f64().unwrap();
    assert!(
        (evaluated - logged).abs() < 1e-9,
        "eval {evaluated} vs logged {logged}"
    );

    // `dept predict` with image ids: a row's prediction is the same alone and in a batch.
    let inputs = root.join("inputs.jsonl");
    let rows: Vec<String> = (0..4)
        .map(|i| json!({"id": i, "input": "vqa: What color is the square?", "image": image_id(if i < 6 { "train" } else { "val" }, i)}).to_string())
        .collect();
    std::fs::write(&inputs, rows.join("\n")).unwrap();
    let batch = json_lines(&ok(&[
        "predict",
        "--adapter",
        path(&best),
        "--input",
        path(&inputs),
    ]));
    assert_eq!(batch.len(), 4);
    let alone = json_lines(&ok(&[
        "predict",
        "--adapter",
        path(&best),
        "--text",
        "vqa: What color is the square?",
        "--image",
        &image_id("train", 2),
    ]));
    assert_eq!(alone[0]["prediction"], batch[2]["prediction"]);
    assert_eq!(alone[0]["image"], image_id("train", 2));
    // Refusals: no image; an image the feature file lacks.
    let e = fails(&[
        "predict",
        "--adapter",
        path(&best),
        "--text",
        "vqa: What color?",
    ]);
    assert!(e.contains("has no image"), "{e}");
    let e = fails(&[
        "predict",
        "--adapter",
        path(&best),
        "--text",
        "vqa: What?",
        "--image",
        "COCO_nope",
    ]);
    assert!(e.contains("no features for image `COCO_nope`"), "{e}");

    // Features of another width (a 8-wide tower) do not fit the trained visual embedding.
    let narrow_clip = root.join("clip8");
    ok(&[
        "tiny-model",
        "--arch",
        "clip",
        "--d-model",
        "8",
        "--out",
        path(&narrow_clip),
    ]);
    let narrow = root.join("narrow.safetensors");
    ok(&[
        "-q",
        "features",
        "extract",
        "--model",
        path(&narrow_clip),
        "--images",
        path(&images),
        "--out",
        path(&narrow),
        "--device",
        "cpu",
    ]);
    let e = fails(&[
        "eval",
        "--adapter",
        path(&best),
        "--features",
        path(&narrow),
    ]);
    assert!(
        e.contains("visual_embedding.safetensors") && e.contains("width"),
        "{e}"
    );

    // A feature file without some of the task's images: the run stops naming the image and the file.
    let partial_images = root.join("partial-images");
    std::fs::create_dir_all(&partial_images).unwrap();
    for f in files.iter().take(3) {
        std::fs::copy(&f.path, partial_images.join(f.path.file_name().unwrap())).unwrap();
    }
    let partial = root.join("partial.safetensors");
    ok(&[
        "-q",
        "features",
        "extract",
        "--model",
        path(&clip),
        "--images",
        path(&partial_images),
        "--out",
        path(&partial),
        "--device",
        "cpu",
    ]);
    let e = fails(&[
        "-q",
        "train",
        path(&vqa_config),
        "--set",
        &format!("features={}", quoted(&partial)),
        "--set",
        &format!("output_dir={}", quoted(&root.join("partial-run"))),
    ]);
    assert!(
        e.contains("no features for image `COCO_") && e.contains("partial.safetensors"),
        "{e}"
    );

    // Captions, extracting the features inside the run from the images (the `images` + `clip_model` keys).
    let caption_run = root.join("caption-run");
    let caption_features = root.join("caption-features.safetensors");
    let caption_config = write_config(
        root,
        "caption",
        &[
            ("task", "coco_caption".into()),
            ("model", quoted(&t5)),
            ("data_dir", quoted(&data)),
            ("output_dir", quoted(&caption_run)),
            ("features", quoted(&caption_features)),
            ("images", quoted(&images)),
            ("clip_model", quoted(&clip)),
            ("max_target_len", "12".into()),
        ],
    );
    let stdout = ok(&["-q", "train", path(&caption_config)]);
    assert!(stdout.contains("test (best adapter): CIDEr"), "{stdout}");
    assert_eq!(FeatureStore::open(&caption_features).unwrap().len(), 8);
    let results = results_row(&caption_run);
    for column in ["test_CIDEr", "test_Bleu_4", "test_ROUGE_L"] {
        let value: f64 = results[column]
            .parse()
            .unwrap_or_else(|e| panic!("{column}: {e}"));
        assert!(value.is_finite() && value >= 0.0, "{column} = {value}");
    }
    let predictions = root.join("captions.jsonl");
    ok(&[
        "eval",
        "--adapter",
        path(&caption_run.join("best")),
        "--split",
        "test",
        "--predictions",
        path(&predictions),
    ]);
    let lines = json_lines(&std::fs::read_to_string(&predictions).unwrap());
    assert_eq!(lines.len(), 2, "one example per test image");
    assert!(lines.iter().all(|l| l["image"]
        .as_str()
        .is_some_and(|i| i.starts_with("COCO_val2014_"))));
}

/// An extraction that meets an unreadable image stops with an error naming it; the images before it are kept in a
/// part file, and the rerun (image fixed) extracts only the rest.
#[test]
fn extraction_names_unreadable_images_and_resumes() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let clip = root.join("clip");
    dept_models::tiny::write_tiny_clip(&clip, 8, 1).unwrap();
    let images = root.join("images");
    std::fs::create_dir_all(&images).unwrap();
    for i in 0..5 {
        draw(&images, &format!("img{i}"), i);
    }
    let broken = images.join("img2.png");
    std::fs::write(&broken, b"not a png").unwrap();
    let mut extractor =
        Extractor::load(&clip, tch::Device::Cpu, FeatureOptions::default(), 1).unwrap();
    extractor.part_size = 2;
    let out = root.join("f.safetensors");
    let list = list_images(&images).unwrap();
    let e = extractor
        .run(&list, &out, &mut |_, _| {})
        .unwrap_err()
        .to_string();
    assert!(e.contains(&*broken.to_string_lossy()), "{e}");
    assert!(!out.exists(), "no output file from a failed extraction");
    let parts = dept_models::features::parts_dir(&out);
    assert_eq!(
        std::fs::read_dir(&parts).unwrap().count(),
        1,
        "img0 and img1 kept"
    );

    draw(&images, "img2", 2);
    let report = extractor.run(&list, &out, &mut |_, _| {}).unwrap();
    assert_eq!((report.extracted, report.reused), (3, 2));
    assert!(!parts.exists(), "parts merged and removed");
    let store = FeatureStore::open(&out).unwrap();
    assert_eq!(store.len(), 5);

    // The same images extracted in one go give the same bytes per image.
    let fresh = root.join("fresh.safetensors");
    extractor.part_size = 100;
    extractor.run(&list, &fresh, &mut |_, _| {}).unwrap();
    let fresh = FeatureStore::open(&fresh).unwrap();
    for image in &list {
        assert!(store
            .get(&image.id)
            .unwrap()
            .equal(&fresh.get(&image.id).unwrap()));
    }

    // Other settings cannot extend an existing file.
    extractor.options.class_token = true;
    let e = extractor
        .run(&list, &out, &mut |_, _| {})
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("other settings") && e.contains("class_token"),
        "{e}"
    );
}
