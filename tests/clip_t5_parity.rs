//! CLIP-T5 + DePT against the PyTorch reference written by tests/reference/clip_t5_reference.py (torch 2.11,
//! transformers 4.57.1; VL-T5's `VisualEmbedding` with order embeddings and VL-T5's `JointEncoder`, over a tiny random
//! T5 v1). Run with `cargo test --test clip_t5_parity`; regenerate the golden files with
//! `/root/.cache/dept/bench-venv/bin/python tests/reference/clip_t5_reference.py` from the repository root.
//!
//! Compared, within 1e-5 relative to the largest magnitude (the reference's float32 is within 2e-6 of its float64):
//! loss, logits at the targets, gradients of P, A, B and of every visual-embedding parameter (`W_p`, multiplied by
//! VL-Adapter's all-zero boxes, gets none; the unused image-order row 1 gets exactly zero; the frozen `E_obj` none),
//! and greedy decodes (identical). The encoder input is `[prompt | text + A·B | visual tokens]`; the position bias
//! covers the prompt and text only (`JointEncoder.forward`: `position_bias[:, :, :L, :L] = text_position_bias`), so
//! padding the batch to s instead of its longest input changes nothing: checked here against the reference's
//! padded-to-s loss and between the two paddings (loss, logits and decodes).
//!
//! All visual variables are copied by name from `visual_embedding.safetensors`, including `E_obj`
//! (`obj_order_embedding.weight`: the rows of VL-T5's frozen word embeddings that its visual token i reads, row
//! `V − 1 − i`, stored as row i).
//!
//! So that this test can fail, three wrong computations are run here and in the reference, each of which must give
//! the reference's number for it and move the loss by far more than the tolerance: stock T5's bias over all
//! positions, visual tokens included; no object-order embedding (`E_obj` zeroed); no box term (`b_p` zeroed, so
//! `LN_p(0) = 0`). Plus the refusals: no features, features of the wrong width or token count, or for another batch.

mod common;

use std::collections::BTreeMap;

use common::*;
use dept_core::DecomposedPrompt;
use dept_models::clip_t5::ClipT5;
use dept_models::t5::T5;
use dept_models::{Backbone, PromptedModel};
use serde_json::Value;
use tch::{Device, Kind, Tensor};

const TOLERANCE: f64 = 1e-5;
const W_P: &str = "encoder.visual_embedding.absolute_vis_pos_embedding.0.weight";
const B_P: &str = "encoder.visual_embedding.absolute_vis_pos_embedding.0.bias";
const E_IMG: &str = "encoder.visual_embedding.img_order_embedding.weight";
const E_OBJ: &str = "encoder.visual_embedding.obj_order_embedding.weight";

struct Case {
    golden: Value,
    clip: ClipT5,
    adapter: DecomposedPrompt,
    features: Tensor,
    labels: Tensor,
}

fn case() -> Case {
    tch::set_num_threads(1);
    let dir = reference_dir().join("clip_t5");
    let golden = read_json(&dir.join("golden.json"));
    let t5 = T5::load(&dir.join("model"), Device::Cpu).expect("load tiny T5");
    let feat_dim = golden["feat_dim"].as_i64().unwrap();
    let tokens = golden["n_visual"].as_i64().unwrap();
    let clip = ClipT5::new(t5, feat_dim, tokens).expect("CLIP-T5");
    copy_visual_weights(&clip, &dir.join("visual_embedding.safetensors"));
    let adapter = DecomposedPrompt::load(&dir.join("adapter"), Device::Cpu).expect("load adapter");
    let shape: Vec<i64> = golden["features_shape"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_i64().unwrap())
        .collect();
    assert_eq!(shape, [3, tokens, feat_dim]);
    let features = Tensor::from_slice(&floats(&golden, "features"))
        .to_kind(Kind::Float)
        .view(shape.as_slice());
    let labels = padded(&int_rows(&golden, "targets"), -100, None);
    Case {
        golden,
        clip,
        adapter,
        features,
        labels,
    }
}

/// The reference's visual embedding, every variable (the frozen `E_obj` too), copied into the backbone's own by name.
fn copy_visual_weights(clip: &ClipT5, path: &std::path::Path) {
    let reference: BTreeMap<String, Tensor> = Tensor::read_safetensors(path)
        .expect("read visual_embedding.safetensors")
        .into_iter()
        .collect();
    let ours = clip.trainable_parameters();
    assert_eq!(
        ours.iter().map(|(n, _)| n.clone()).collect::<Vec<_>>(),
        reference.keys().cloned().collect::<Vec<_>>(),
        "the visual embedding's variable names are VL-T5's"
    );
    tch::no_grad(|| {
        for (name, mut tensor) in ours {
            let source = &reference[&name];
            assert_eq!(tensor.size(), source.size(), "{name}");
            tensor.copy_(source);
        }
    });
}

/// Rows right-padded to the longest input (`None`) or to `len`.
fn text(golden: &Value, len: Option<usize>) -> (Tensor, Tensor) {
    let ids = padded(&int_rows(golden, "inputs"), 0, len);
    let mask = ids.ne(0).to_kind(Kind::Int64);
    (ids, mask)
}

impl Case {
    fn model(&self) -> PromptedModel<'_> {
        PromptedModel::new(&self.clip, &self.adapter).with_visual(Some(&self.features))
    }

    fn s(&self) -> usize {
        self.golden["s"].as_u64().unwrap() as usize
    }

    fn loss_and_logits(&self, len: Option<usize>) -> (Tensor, Tensor) {
        let (ids, mask) = text(&self.golden, len);
        let out = self
            .model()
            .forward_t(&ids, &mask, &self.labels, false)
            .expect("forward");
        (out.loss, out.logits)
    }

    fn loss(&self, len: Option<usize>) -> f64 {
        tch::no_grad(|| self.loss_and_logits(len).0.double_value(&[]))
    }

    fn greedy(&self, len: Option<usize>) -> Vec<Vec<i64>> {
        let (ids, mask) = text(&self.golden, len);
        let max_new = self.golden["max_new_tokens"].as_i64().unwrap();
        let generated = self
            .model()
            .generate(&ids, &mask, max_new)
            .expect("generate");
        Vec::<Vec<i64>>::try_from(&generated).expect("ids")
    }

    fn visual_variable(&self, name: &str) -> Tensor {
        self.clip
            .trainable_parameters()
            .into_iter()
            .find(|(n, _)| n == name)
            .unwrap_or_else(|| panic!("no {name}"))
            .1
    }

    fn golden_loss(&self, key: &str) -> f64 {
        self.golden[key]
            .as_f64()
            .unwrap_or_else(|| panic!("golden {key}"))
    }
}

#[test]
fn forward_and_gradients_match_pytorch() {
    let c = case();
    let g = &c.golden;
    let (loss, logits) = c.loss_and_logits(None);
    let logits_at_targets = logits.index(&[Some(c.labels.ne(-100))]);
    assert_close("loss", &to_vec(&loss), &[c.golden_loss("loss")], TOLERANCE);
    assert_close(
        "logits",
        &to_vec(&logits_at_targets),
        &floats(g, "logits_at_targets"),
        TOLERANCE,
    );
    loss.backward();
    assert_adapter_grads("CLIP-T5", &c.adapter, g, TOLERANCE);
    let expected = &g["grad_visual"];
    let mut compared = 0;
    for (name, tensor) in c.clip.trainable_parameters() {
        let grad = tensor.grad();
        if name == E_OBJ {
            // Rows of VL-T5's frozen word embeddings: no gradient, in the reference or here.
            assert!(!tensor.requires_grad(), "{name} must be frozen");
            assert!(!grad.defined(), "{name} must get no gradient");
            assert!(expected.get(&name).is_none(), "reference {name} grad");
            continue;
        }
        assert!(tensor.requires_grad(), "{name} is trained in VL-T5");
        let want = floats(expected, &name);
        compared += 1;
        if name == W_P {
            // It multiplies the all-zero boxes of VL-Adapter's CLIP loaders: no gradient (undefined here, as the
            // tensor takes no part in the graph; exactly zero in PyTorch).
            assert!(want.iter().all(|&x| x == 0.0), "reference {name} grad");
            assert!(
                !grad.defined() || to_vec(&grad).iter().all(|&x| x == 0.0),
                "{name} must get no gradient"
            );
            continue;
        }
        assert!(grad.defined(), "{name} got no gradient");
        let got = to_vec(&grad);
        assert_close(&format!("grad {name}"), &got, &want, TOLERANCE);
        if name == E_IMG {
            // One image: row 0 is read, row 1 is not.
            let d = c.clip.hidden_size() as usize;
            assert!(got[d..].iter().all(|&x| x == 0.0), "{name} row 1 grad");
            assert!(got[..d].iter().any(|&x| x != 0.0), "{name} row 0 grad");
        }
    }
    assert_eq!(compared, expected.as_object().unwrap().len());
}

#[test]
fn greedy_decodes_match_pytorch() {
    let c = case();
    let mut expected = int_rows(&c.golden, "greedy");
    let generated = c.greedy(None);
    // transformers pads every row to the longest one; trailing columns of padding only are not generated here.
    let width = generated.first().map_or(0, Vec::len);
    for row in &mut expected {
        assert!(row[width..].iter().all(|&t| t == 0), "greedy");
        row.truncate(width);
    }
    assert_eq!(generated, expected, "greedy");
    assert_eq!(c.greedy(Some(c.s())), generated, "greedy, padded to s");
}

#[test]
fn padding_to_s_changes_nothing_as_in_pytorch() {
    let c = case();
    let s = c.s();
    let (longest, longest_logits) = tch::no_grad(|| c.loss_and_logits(None));
    let (to_s, to_s_logits) = tch::no_grad(|| c.loss_and_logits(Some(s)));
    assert_close(
        "loss padded to s vs the reference's",
        &to_vec(&to_s),
        &[c.golden_loss("loss_padded_to_s")],
        TOLERANCE,
    );
    assert_close(
        "loss padded to s vs to the longest input",
        &to_vec(&to_s),
        &to_vec(&longest),
        TOLERANCE,
    );
    assert_close(
        "logits padded to s vs to the longest input",
        &to_vec(&to_s_logits),
        &to_vec(&longest_logits),
        TOLERANCE,
    );
}

/// A wrong computation gives the reference's number for that wrong computation, and a loss that differs from the
/// right one by far more than the tolerance.
fn wrong_computation_shows(what: &str, loss: f64, key: &str, c: &Case) {
    let expected = c.golden_loss(key);
    let right = c.golden_loss("loss");
    assert_close(what, &[loss], &[expected], TOLERANCE);
    let shift = rel_error(&[loss], &[right]);
    println!("{what}: loss moves by {shift:.2e} relative");
    assert!(
        shift > 20.0 * TOLERANCE,
        "{what}: moves the loss by only {shift:.2e}; the parity test could not tell it from the right computation"
    );
}

#[test]
fn stock_t5_bias_over_visual_tokens_shows() {
    let c = case();
    let (ids, mask) = text(&c.golden, None);
    let loss = tch::no_grad(|| {
        let (embeds, mask) = c.model().embed(&ids, &mask).expect("embed");
        c.clip
            .t5()
            .forward_with_bias_span(&embeds, &mask, &c.labels, false, None)
            .expect("forward")
            .loss
            .double_value(&[])
    });
    wrong_computation_shows(
        "stock T5 bias over all positions",
        loss,
        "loss_stock_t5_bias",
        &c,
    );
}

#[test]
fn dropping_the_object_order_embedding_shows() {
    let c = case();
    let mut e_obj = c.visual_variable(E_OBJ);
    tch::no_grad(|| {
        let _ = e_obj.zero_();
    });
    wrong_computation_shows("without E_obj", c.loss(None), "loss_without_obj_order", &c);
}

#[test]
fn dropping_the_box_term_shows() {
    let c = case();
    // LN_p(0) = 0: with a zero b_p (and zero boxes) the box term vanishes.
    let mut bias = c.visual_variable(B_P);
    tch::no_grad(|| {
        let _ = bias.zero_();
    });
    wrong_computation_shows(
        "without the box term",
        c.loss(None),
        "loss_without_box_term",
        &c,
    );
}

#[test]
fn missing_or_mismatched_features_are_refused() {
    let c = case();
    let (ids, mask) = text(&c.golden, None);
    let batch = ids.size()[0];
    let n = c.features.size()[1];
    let width = c.golden["feat_dim"].as_i64().unwrap();
    let forward_error = |features: Option<&Tensor>| {
        PromptedModel::new(&c.clip, &c.adapter)
            .with_visual(features)
            .forward_t(&ids, &mask, &c.labels, false)
            .err()
            .map(|e| e.to_string())
    };

    let err = forward_error(None).expect("no features must be refused");
    assert!(
        err.contains("visual features") && err.contains(&format!("{width} wide")),
        "{err}"
    );
    let err = PromptedModel::new(&c.clip, &c.adapter)
        .generate(&ids, &mask, 3)
        .expect_err("decoding without features must be refused")
        .to_string();
    assert!(err.contains("visual features"), "{err}");

    let expected_shape = format!("[batch, {n}, {width}]");
    let narrow = Tensor::zeros([batch, n, width - 1], (Kind::Float, Device::Cpu));
    let err = forward_error(Some(&narrow)).expect("features of the wrong width must be refused");
    assert!(
        err.contains(&expected_shape) && err.contains(&format!("[{batch}, {n}, {}]", width - 1)),
        "{err}"
    );

    let fewer_tokens = c.features.narrow(1, 0, n - 1);
    let err = forward_error(Some(&fewer_tokens))
        .expect("the wrong number of visual tokens must be refused");
    assert!(
        err.contains(&expected_shape) && err.contains(&format!("[{batch}, {}, {width}]", n - 1)),
        "{err}"
    );

    let fewer = c.features.narrow(0, 0, batch - 1);
    let err = forward_error(Some(&fewer)).expect("features for another batch must be refused");
    assert!(
        err.contains(&format!("visual features for {} examples", batch - 1)),
        "{err}"
    );
}
