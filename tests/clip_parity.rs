//! Our CLIP vision tower and image preprocessing against transformers 4.57.1's `CLIPVisionModel` / `CLIPModel` and
//! `CLIPImageProcessor` (Pillow 13), with the values written by tests/reference/clip_reference.py: the tower's
//! outputs for HF's pixel values in both folder layouts, our preprocessing of a PNG and a JPEG against HF's pixel
//! values, and the refusals (unreadable image, ResNet CLIP, a missing vision tensor).

mod common;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use common::*;
use dept_models::clip::ClipVision;
use dept_models::image_input::{decode_rgb, ClipImageProcessor, Rgb8Image};
use tch::{Device, Kind, Tensor};

fn clip_dir() -> PathBuf {
    reference_dir().join("clip")
}

fn golden() -> HashMap<String, Tensor> {
    let path = clip_dir().join("golden.safetensors");
    Tensor::read_safetensors(&path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .into_iter()
        .collect()
}

fn load(folder: &str) -> ClipVision {
    tch::set_num_threads(1);
    ClipVision::load(&clip_dir().join(folder), Device::Cpu)
        .unwrap_or_else(|e| panic!("load {folder}: {e}"))
}

fn image_paths() -> Vec<PathBuf> {
    let names = read_json(&clip_dir().join("golden.json"));
    names["images"]
        .as_array()
        .expect("images")
        .iter()
        .map(|n| clip_dir().join("images").join(n.as_str().expect("name")))
        .collect()
}

fn check_outputs(folder: &str) {
    let g = golden();
    let model = load(folder);
    let out = model.forward(&g["pixel_values"]).expect("forward");
    assert_eq!(out.last_hidden_state.kind(), Kind::Float);
    assert_eq!(out.last_hidden_state.size(), [2, 17, 16]);
    assert_eq!(out.pooled.size(), [2, 16]);
    assert_close(
        &format!("{folder}: last_hidden_state"),
        &to_vec(&out.last_hidden_state),
        &to_vec(&g["last_hidden_state"]),
        1e-5,
    );
    assert_close(
        &format!("{folder}: pooled (post_layernorm of CLS)"),
        &to_vec(&out.pooled),
        &to_vec(&g["pooled"]),
        1e-5,
    );
    // transformers' `output_hidden_states`: layers + 1 entries, the first after pre_layrnorm, the last the output.
    assert_eq!(out.hidden_states.len(), 3);
    assert_close(
        &format!("{folder}: hidden_states[0] (embeddings after pre_layrnorm)"),
        &to_vec(&out.hidden_states[0]),
        &to_vec(&g["hidden_states_0"]),
        1e-5,
    );
    assert!(out.hidden_states[2].equal(&out.last_hidden_state));
}

#[test]
fn vision_model_folder_matches_transformers() {
    check_outputs("vision_model");
}

#[test]
fn clip_model_folder_loads_only_the_vision_tower() {
    check_outputs("clip_model");
    let model = load("clip_model");
    let names = model.var_store().variables();
    assert!(names.keys().all(|n| n.starts_with("vision_model.")));
    // The file does hold a text tower and projections: they were there and were ignored.
    let file: Vec<String> =
        Tensor::read_safetensors(clip_dir().join("clip_model").join("model.safetensors"))
            .unwrap()
            .into_iter()
            .map(|(n, _)| n)
            .collect();
    assert!(file.iter().any(|n| n.starts_with("text_model.")));
    assert!(file.iter().any(|n| n == "visual_projection.weight"));
}

/// Max |ours − HF| over the pixel values of image `i`, in normalised units and in uint8 levels (× std × 255).
fn pixel_diff(ours: &Tensor, hf: &Tensor) -> (f64, f64) {
    let diff = (ours - hf).abs(); // [3, H, W]
    let abs = diff.max().double_value(&[]);
    let std = Tensor::from_slice(&[0.26862954f64, 0.26130258, 0.27577711]).view([3, 1, 1]);
    let levels = (diff.to_kind(Kind::Double) * std * 255.0)
        .max()
        .double_value(&[]);
    (abs, levels)
}

#[test]
fn preprocessing_matches_clip_image_processor() {
    let g = golden();
    let processor = ClipImageProcessor::from_model_dir(&clip_dir().join("vision_model")).unwrap();
    assert_eq!(processor.crop_size, (32, 32));
    let paths = image_paths();
    let hf = &g["pixel_values"];

    // PNG: lossless decoding, so any difference is ours (resize, crop, rescale, normalise). Pillow's resampling is
    // reproduced in integer arithmetic and the float steps in numpy's order: bit for bit.
    let png = processor.preprocess(&paths[0]).expect("png");
    assert_eq!(png.size(), [3, 32, 32]);
    let (abs, levels) = pixel_diff(&png, &hf.get(0));
    println!("a.png: max |ours - HF| = {abs:.3e} ({levels:.2} uint8 levels)");
    assert_eq!(
        abs, 0.0,
        "PNG pixel values differ from CLIPImageProcessor's"
    );

    // JPEG: the `image` crate's decoder (zune-jpeg) is not Pillow's (libjpeg-turbo). Measured on b.jpg (quality 75,
    // 4:2:0): up to 18 uint8 levels at sharp chroma edges, a quarter of the values off (their chroma upsampling
    // differs); on the same picture saved 4:4:4, at most 2 levels (IDCT / colour conversion rounding). So: from
    // Pillow's decoded pixels our preprocessing must give HF's values bit for bit, and end to end the difference is
    // only the decoder's, bounded loosely and printed.
    let pil = &g["decoded_jpeg"];
    let (h, w) = (pil.size()[0] as usize, pil.size()[1] as usize);
    let pil_image = Rgb8Image {
        width: w,
        height: h,
        pixels: Vec::<u8>::try_from(&pil.flatten(0, -1)).unwrap(),
    };
    let from_pil = processor.preprocess_rgb(&pil_image).unwrap();
    let (abs, _) = pixel_diff(&from_pil, &hf.get(1));
    println!("b.jpg from Pillow's decoded pixels: max |ours - HF| = {abs:.3e}");
    assert_eq!(abs, 0.0, "preprocessing of Pillow's decoded JPEG differs");

    let ours = decode_rgb(&paths[1]).expect("jpeg");
    assert_eq!((ours.height, ours.width), (h, w));
    let decode_diff: Vec<u8> = ours
        .pixels
        .iter()
        .zip(&pil_image.pixels)
        .map(|(a, b)| a.abs_diff(*b))
        .collect();
    let decode_max = decode_diff.iter().copied().max().unwrap_or(0);
    let decode_count = decode_diff.iter().filter(|&&d| d > 0).count();
    println!(
        "b.jpg decoding (image crate vs Pillow): max {decode_max} uint8 levels, {decode_count} of {} values differ",
        decode_diff.len()
    );
    let jpeg = processor.preprocess(&paths[1]).expect("jpeg");
    let (abs, levels) = pixel_diff(&jpeg, &hf.get(1));
    let mean_levels = ((&jpeg - hf.get(1)).abs().to_kind(Kind::Double)
        * Tensor::from_slice(&[0.26862954f64, 0.26130258, 0.27577711]).view([3, 1, 1])
        * 255.0)
        .mean(Kind::Double)
        .double_value(&[]);
    println!(
        "b.jpg end to end: max |ours - HF| = {abs:.3e} ({levels:.2} uint8 levels, mean {mean_levels:.2} levels)"
    );
    assert!(
        decode_max <= 24 && levels <= 24.0 + 1e-3 && mean_levels <= 2.0,
        "JPEG pixel values differ from CLIPImageProcessor's by {levels:.2} uint8 levels (mean {mean_levels:.2})"
    );

    let batch = processor.preprocess_batch(&paths).expect("batch");
    assert_eq!(batch.size(), [2, 3, 32, 32]);
    assert!(batch.get(0).equal(&png) && batch.get(1).equal(&jpeg));

    // Our pixel values through the tower: the model-level effect of the preprocessing differences.
    let model = load("vision_model");
    let out = model.forward(&batch).expect("forward");
    for (i, name) in ["a.png", "b.jpg"].iter().enumerate() {
        let err = rel_error(
            &to_vec(&out.pooled.get(i as i64)),
            &to_vec(&g["pooled"].get(i as i64)),
        );
        println!("{name}: pooled output from our pixel values vs HF's: relative error {err:.3e}");
    }
}

#[test]
fn unreadable_image_is_an_error_naming_the_file() {
    let processor = ClipImageProcessor::from_model_dir(&clip_dir().join("vision_model")).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let garbage = tmp.path().join("not-an-image.png");
    std::fs::write(&garbage, b"this is not a PNG").unwrap();
    let e = processor.preprocess(&garbage).unwrap_err().to_string();
    assert!(e.contains("not-an-image.png"), "{e}");
    let missing = tmp.path().join("missing.jpg");
    let e = processor.preprocess(&missing).unwrap_err().to_string();
    assert!(e.contains("missing.jpg"), "{e}");
    let e = processor
        .preprocess_batch(&[clip_dir().join("images").join("a.png"), garbage])
        .unwrap_err()
        .to_string();
    assert!(e.contains("not-an-image.png"), "{e}");
}

fn copy_folder(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
    }
}

#[test]
fn resnet_clip_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    copy_folder(&clip_dir().join("clip_model"), tmp.path());
    let config_path = tmp.path().join("config.json");
    let mut config = read_json(&config_path);
    // An RN50-style vision config: residual stage depths and a width instead of a patch size.
    config["vision_config"] =
        serde_json::json!({"layers": [3, 4, 6, 3], "width": 64, "image_size": 224});
    std::fs::write(&config_path, config.to_string()).unwrap();
    let e = ClipVision::load(tmp.path(), Device::Cpu)
        .err()
        .expect("refused")
        .to_string();
    assert!(
        e.contains("ResNet CLIP variants") && e.contains("config.json"),
        "{e}"
    );
}

#[test]
fn missing_vision_tensor_is_named() {
    let tmp = tempfile::tempdir().unwrap();
    copy_folder(&clip_dir().join("clip_model"), tmp.path());
    let weights = tmp.path().join("model.safetensors");
    let gone = "vision_model.encoder.layers.1.mlp.fc2.bias";
    let kept: Vec<(String, Tensor)> = Tensor::read_safetensors(&weights)
        .unwrap()
        .into_iter()
        .filter(|(n, _)| n != gone)
        .collect();
    Tensor::write_safetensors(&kept, &weights).unwrap();
    let e = ClipVision::load(tmp.path(), Device::Cpu)
        .err()
        .expect("refused")
        .to_string();
    assert!(e.contains(gone) && e.contains("missing"), "{e}");
    // Only that one: the text tower is not expected.
    assert!(e.contains("1 tensor(s)"), "{e}");
}

#[test]
fn wrong_pixel_shape_is_refused() {
    let model = load("vision_model");
    let e = model
        .forward(&Tensor::zeros([1, 3, 224, 224], (Kind::Float, Device::Cpu)))
        .expect_err("refused")
        .to_string();
    assert!(e.contains("[batch, 3, 32, 32]"), "{e}");
}
