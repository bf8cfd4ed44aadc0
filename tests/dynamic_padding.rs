//! The dynamic-padding claim: without dropout, a batch padded only to its longest input gives the same loss and
//! gradients as the official padding to `s`, because padded positions are masked and only rows `0..len` of `A`
//! meet real tokens; with dropout on, the two are equal in distribution only.

mod common;

use common::*;
use dept_core::DecomposedPrompt;
use dept_models::t5::T5;
use dept_models::{Backbone, PromptedModel};
use tch::{Device, Kind, Tensor};

struct Outcome {
    encoder_positions: i64,
    loss: Vec<f64>,
    grads: Vec<Vec<f64>>,
}

fn run(t5: &T5, adapter: &DecomposedPrompt, ids: &Tensor, labels: &Tensor) -> Outcome {
    adapter.var_store().variables().values().for_each(|v| {
        let mut g = v.grad();
        if g.defined() {
            let _ = g.zero_();
        }
    });
    let mask = ids.ne(0).to_kind(Kind::Int64);
    let model = PromptedModel::new(t5, adapter);
    let loss = model
        .forward_t(ids, &mask, labels, false)
        .expect("forward")
        .loss;
    loss.backward();
    let (a, b) = adapter.pair().expect("pair");
    Outcome {
        encoder_positions: adapter.config().m + ids.size()[1],
        loss: to_vec(&loss),
        grads: [adapter.prompt(), a, b]
            .iter()
            .map(|t| to_vec(&t.grad()))
            .collect(),
    }
}

/// In float64 the two paddings agree to rounding of the last bits: the computation is the same.
#[test]
fn padding_to_the_longest_input_changes_no_number_float64() {
    compare_paddings(Kind::Double, 1e-10);
}

/// In float32 the sums over more (masked, exactly zero) terms are associated differently, which moves results by
/// float32 rounding (~1e-6 relative here, the same size as PyTorch's own float32-vs-float64 difference).
#[test]
fn padding_to_the_longest_input_changes_no_number_float32() {
    compare_paddings(Kind::Float, 1e-5);
}

fn compare_paddings(kind: Kind, tolerance: f64) {
    // Loading draws too (the layers are built with their random init before the checkpoint overwrites them).
    let _rng = global_rng();
    tch::set_num_threads(1);
    for layout in ["v1", "v1_1"] {
        let dir = reference_dir().join("t5_dept").join(layout);
        let golden = read_json(&dir.join("golden.json"));
        let mut t5 = T5::load(&dir.join("model"), Device::Cpu).expect("model");
        t5.set_float_kind(kind).expect("kind");
        let mut adapter =
            DecomposedPrompt::load(&dir.join("adapter"), Device::Cpu).expect("adapter");
        adapter.set_kind(kind);
        let s = adapter.config().s.expect("s") as usize;
        let inputs = int_rows(&golden, "inputs");
        let labels = padded(&int_rows(&golden, "targets"), -100, None);

        let official = run(&t5, &adapter, &padded(&inputs, 0, Some(s)), &labels);
        let dynamic = run(&t5, &adapter, &padded(&inputs, 0, None), &labels);

        assert!(
            dynamic.encoder_positions < official.encoder_positions,
            "dynamic padding should shorten the encoder input"
        );
        let what = format!("{layout} {kind:?}");
        assert_close(
            &format!("{what} loss"),
            &dynamic.loss,
            &official.loss,
            tolerance,
        );
        for (name, (d, o)) in ["P", "A", "B"]
            .iter()
            .zip(dynamic.grads.iter().zip(&official.grads))
        {
            assert_close(&format!("{what} grad {name}"), d, o, tolerance);
        }
    }
}

/// With the backbone's dropout on (training, as the official code), the two paddings are equal in distribution,
/// not bit for bit: dropout masks are drawn over tensors of different shapes, so the real tokens get different
/// masks from the same seed. Over many seeds the mean losses agree within their statistical error.
#[test]
fn with_dropout_the_paddings_agree_in_distribution_not_bit_for_bit() {
    let _rng = global_rng();
    tch::set_num_threads(1);
    let dir = reference_dir().join("t5_dept").join("v1");
    let golden = read_json(&dir.join("golden.json"));
    let t5 = T5::load(&dir.join("model"), Device::Cpu).expect("model");
    let adapter = DecomposedPrompt::load(&dir.join("adapter"), Device::Cpu).expect("adapter");
    let s = adapter.config().s.expect("s") as usize;
    let inputs = int_rows(&golden, "inputs");
    let labels = padded(&int_rows(&golden, "targets"), -100, None);
    let loss = |ids: &Tensor, seed: i64| {
        tch::manual_seed(seed);
        let mask = ids.ne(0).to_kind(Kind::Int64);
        let model = PromptedModel::new(&t5, &adapter);
        tch::no_grad(|| {
            model
                .forward_t(ids, &mask, &labels, true)
                .expect("forward")
                .loss
        })
        .double_value(&[])
    };
    let (official_ids, dynamic_ids) = (padded(&inputs, 0, Some(s)), padded(&inputs, 0, None));
    let n = 300;
    let official: Vec<f64> = (0..n).map(|seed| loss(&official_ids, seed)).collect();
    let dynamic: Vec<f64> = (0..n).map(|seed| loss(&dynamic_ids, seed)).collect();

    let differing = official
        .iter()
        .zip(&dynamic)
        .filter(|(a, b)| a != b)
        .count();
    assert!(
        differing > n as usize * 9 / 10,
        "only {differing} of {n} seeds differ"
    );
    let mean = |xs: &[f64]| xs.iter().sum::<f64>() / xs.len() as f64;
    let variance = |xs: &[f64]| {
        let m = mean(xs);
        xs.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (xs.len() - 1) as f64
    };
    let standard_error = ((variance(&official) + variance(&dynamic)) / n as f64).sqrt();
    let gap = (mean(&official) - mean(&dynamic)).abs();
    println!(
        "dropout on, {n} seeds: mean loss {:.5} (pad to s) vs {:.5} (pad to longest), gap {gap:.2e}, standard error \
         {standard_error:.2e}",
        mean(&official),
        mean(&dynamic)
    );
    assert!(standard_error > 0.0);
    assert!(
        gap < 4.0 * standard_error,
        "gap {gap} vs standard error {standard_error}"
    );
}

/// CLIP-T5: VL-T5's encoder gives position bias to the prompt and text positions only, none to the visual tokens
/// after them, so padding the text to `s` or to the longest input changes no number here either (float32 rounding
/// aside); T5's bias over every position would see the padding between words and visual tokens.
#[test]
fn clip_t5_padding_to_the_longest_input_changes_no_number() {
    use dept_models::clip_t5::ClipT5;
    // The features and the visual embedding are drawn from the global generator; without the guard the other
    // tests' draws (dropout, and loading) interleave with them and the margin below depends on thread timing.
    let _rng = global_rng();
    tch::set_num_threads(1);
    let dir = reference_dir().join("t5_dept").join("v1_1");
    let golden = read_json(&dir.join("golden.json"));
    let adapter = DecomposedPrompt::load(&dir.join("adapter"), Device::Cpu).expect("adapter");
    let s = adapter.config().s.expect("s") as usize;
    let inputs = int_rows(&golden, "inputs");
    let labels = padded(&int_rows(&golden, "targets"), -100, None);
    tch::manual_seed(5);
    let features = Tensor::randn([inputs.len() as i64, 4, 6], (Kind::Float, Device::Cpu));
    let t5 = T5::load(&dir.join("model"), Device::Cpu).expect("model");
    let model = ClipT5::new(t5, 6, 4).expect("clip-t5");
    // `bias_everywhere`: the same joined input through stock T5 (position bias over every position).
    let loss = |ids: &Tensor, bias_everywhere: bool| {
        let mask = ids.ne(0).to_kind(Kind::Int64);
        tch::no_grad(|| {
            let prompted = PromptedModel::new(&model, &adapter).with_visual(Some(&features));
            let out = if bias_everywhere {
                let (embeds, mask) = prompted.embed(ids, &mask).expect("embed");
                model
                    .t5()
                    .forward_with_bias_span(&embeds, &mask, &labels, false, None)
            } else {
                prompted.forward_t(ids, &mask, &labels, false)
            };
            out.expect("forward").loss.double_value(&[])
        })
    };
    let (official, dynamic) = (padded(&inputs, 0, Some(s)), padded(&inputs, 0, None));
    let (a, b) = (loss(&official, false), loss(&dynamic, false));
    assert!((a - b).abs() / a.abs() < 1e-6, "text-only bias: {a} vs {b}");
    let (c, d) = (loss(&official, true), loss(&dynamic, true));
    println!("text-only bias: {a} / {b}; bias everywhere: {c} / {d}");
    assert!(
        (c - d).abs() / c.abs() > 1e-4,
        "bias everywhere should see the padding: {c} vs {d}"
    );
}
