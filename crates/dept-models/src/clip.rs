//! The vision tower of CLIP (transformers' `CLIPVisionModel`, and the `vision_model` of a `CLIPModel`, as of 4.57.1)
//! on tch, frozen.
//!
//! A ViT: a patch-embedding convolution (no bias), a class token, learned position embeddings, `pre_layrnorm`, pre-norm
//! encoder layers (layer_norm1 → self-attention scaled by `head_dim^-0.5` → residual; layer_norm2 → fc1 → activation
//! → fc2 → residual), and `post_layernorm` applied to the class token's final state only (the pooled output), as
//! transformers does. Variables carry the Hugging Face names (`vision_model.embeddings.patch_embedding.weight`, …),
//! so the `model.safetensors` of either layout loads as it is; in a `CLIPModel` folder the text tower,
//! `visual_projection`, `text_projection` and `logit_scale` are in the file and are ignored (only the vision
//! tensors are read into the model; a missing one is named).
//!
//! The computation follows transformers' eager path (matmul attention, softmax in fp32 and cast back), so that fp32
//! outputs agree to float rounding (tests/clip_parity.rs). Position embeddings are not interpolated: the input
//! must be `image_size` × `image_size`, as transformers requires without `interpolate_pos_encoding`. ResNet CLIP
//! variants (RN50, RN101, RN50x4, …: open_clip / OpenAI checkpoints, which transformers does not implement either)
//! are refused at load.

use std::path::Path;

use serde::Deserialize;
use tch::nn::{Init, Path as VarPath, VarStore};
use tch::{Device, Kind, Tensor};

use crate::checkpoint::{self, LoadPlan};
use crate::layers::Linear;
use crate::{ConfigIssue, ModelError};

/// The MLP activation (`hidden_act`); others are refused at load.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClipActivation {
    /// `x · sigmoid(1.702 x)` (OpenAI CLIP).
    QuickGelu,
    /// The exact (erf) GELU.
    Gelu,
}

impl ClipActivation {
    fn hf_name(self) -> &'static str {
        match self {
            ClipActivation::QuickGelu => "quick_gelu",
            ClipActivation::Gelu => "gelu",
        }
    }

    fn apply(self, x: &Tensor) -> Tensor {
        match self {
            ClipActivation::QuickGelu => x * (x * 1.702).sigmoid(),
            ClipActivation::Gelu => x.gelu("none"),
        }
    }
}

/// transformers' `CLIPVisionConfig`, with its defaults resolved.
#[derive(Debug, Clone, PartialEq)]
pub struct ClipVisionConfig {
    pub hidden_size: i64,
    pub intermediate_size: i64,
    pub num_hidden_layers: i64,
    pub num_attention_heads: i64,
    pub num_channels: i64,
    pub image_size: i64,
    pub patch_size: i64,
    pub hidden_act: ClipActivation,
    pub layer_norm_eps: f64,
    /// Dropout on attention weights in training (0 in every released CLIP; never applied here: the tower is frozen
    /// and run in eval mode).
    pub attention_dropout: f64,
    /// Standard deviation of [`ClipVision::new_random`]'s patch and position embeddings.
    pub initializer_range: f64,
    /// Multiplies every standard deviation of [`ClipVision::new_random`]'s init.
    pub initializer_factor: f64,
}

/// The vision section of `config.json` as written, before defaults and checks (transformers' defaults: ViT-B/32).
#[derive(Deserialize)]
struct RawVisionConfig {
    #[serde(default = "d_hidden")]
    hidden_size: i64,
    #[serde(default = "d_intermediate")]
    intermediate_size: i64,
    #[serde(default = "d_layers")]
    num_hidden_layers: i64,
    #[serde(default = "d_heads")]
    num_attention_heads: i64,
    #[serde(default = "d_channels")]
    num_channels: i64,
    #[serde(default = "d_image_size")]
    image_size: i64,
    #[serde(default = "d_patch_size")]
    patch_size: i64,
    #[serde(default = "d_act")]
    hidden_act: String,
    #[serde(default = "d_eps")]
    layer_norm_eps: f64,
    #[serde(default)]
    attention_dropout: f64,
    #[serde(default = "d_init_range")]
    initializer_range: f64,
    #[serde(default = "d_init_factor")]
    initializer_factor: f64,
}

fn d_hidden() -> i64 {
    768
}
fn d_intermediate() -> i64 {
    3072
}
fn d_layers() -> i64 {
    12
}
fn d_heads() -> i64 {
    12
}
fn d_channels() -> i64 {
    3
}
fn d_image_size() -> i64 {
    224
}
fn d_patch_size() -> i64 {
    32
}
fn d_act() -> String {
    "quick_gelu".into()
}
fn d_eps() -> f64 {
    1e-5
}
fn d_init_range() -> f64 {
    0.02
}
fn d_init_factor() -> f64 {
    1.0
}

const RESNET_REFUSED: &str =
    "ResNet CLIP variants (RN50, RN101, RN50x4, …) are not supported: only the ViT vision \
     tower of a Hugging Face `CLIPModel` / `CLIPVisionModel` is implemented";

/// The signs of a ResNet CLIP config: open_clip's `vision_cfg`, OpenAI's `vision_layers`, or `layers` given as the
/// list of residual-stage depths (`[3, 4, 6, 3]`) rather than a count.
fn resnet_sign(value: &serde_json::Value) -> Option<&'static str> {
    let has_stage_list =
        |v: &serde_json::Value, key: &str| v.get(key).is_some_and(|l| l.is_array());
    if let Some(cfg) = value.get("vision_cfg") {
        return Some(if has_stage_list(cfg, "layers") {
            "`vision_cfg.layers` is a list of ResNet stage depths"
        } else {
            "this is an open_clip config (`vision_cfg`), not a Hugging Face one"
        });
    }
    if has_stage_list(value, "vision_layers") {
        return Some("`vision_layers` is a list of ResNet stage depths");
    }
    for section in [Some(value), value.get("vision_config")]
        .into_iter()
        .flatten()
    {
        if has_stage_list(section, "layers") {
            return Some("`layers` is a list of ResNet stage depths");
        }
    }
    let architectures = value.get("architectures").and_then(|a| a.as_array());
    if architectures
        .into_iter()
        .flatten()
        .filter_map(|a| a.as_str())
        .any(|a| a.contains("ResNet"))
    {
        return Some("`architectures` names a ResNet");
    }
    None
}

impl ClipVisionConfig {
    /// Parses and validates a `config.json` value of either layout: a `CLIPModel` folder (`model_type` "clip", the
    /// vision config nested under `vision_config`; absent means transformers' defaults) or a `CLIPVisionModel` one
    /// (`model_type` "clip_vision_model", at the top level). `path` is only used in messages.
    pub fn from_json(path: &Path, value: serde_json::Value) -> Result<Self, ModelError> {
        let bad = |message: String| ModelError::Config {
            path: path.to_path_buf(),
            message,
        };
        if let Some(sign) = resnet_sign(&value) {
            return Err(bad(format!("{RESNET_REFUSED} ({sign})")));
        }
        let model_type = value
            .get("model_type")
            .and_then(|v| v.as_str())
            .map(str::to_owned);
        let (section, prefix) = match model_type.as_deref() {
            Some("clip") => match value.get("vision_config") {
                None | Some(serde_json::Value::Null) => (serde_json::json!({}), "vision_config."),
                Some(v @ serde_json::Value::Object(_)) => (v.clone(), "vision_config."),
                Some(other) => {
                    return Err(bad(format!(
                        "`vision_config` must be an object (a CLIPVisionConfig), found {other}"
                    )))
                }
            },
            Some("clip_vision_model") => (value, ""),
            Some(other) => {
                return Err(bad(format!(
                    "`model_type` is {other:?}, expected \"clip\" (a CLIPModel folder) or \"clip_vision_model\" (a \
                     CLIPVisionModel folder)"
                )))
            }
            None => {
                return Err(bad(
                    "`model_type` is missing, expected \"clip\" (a CLIPModel folder) or \"clip_vision_model\" (a \
                     CLIPVisionModel folder)"
                        .into(),
                ))
            }
        };
        let raw: RawVisionConfig = serde_json::from_value(section).map_err(|e| {
            bad(format!(
                "{}not a CLIP vision config: {e}",
                if prefix.is_empty() {
                    String::new()
                } else {
                    "`vision_config` is ".to_string()
                }
            ))
        })?;
        let hidden_act = match raw.hidden_act.as_str() {
            "quick_gelu" => ClipActivation::QuickGelu,
            "gelu" => ClipActivation::Gelu,
            other => {
                return Err(bad(format!(
                    "`{prefix}hidden_act` {other:?} is not supported: the CLIP vision MLP is implemented with \
                     \"quick_gelu\" and \"gelu\" only"
                )))
            }
        };
        let config = ClipVisionConfig {
            hidden_size: raw.hidden_size,
            intermediate_size: raw.intermediate_size,
            num_hidden_layers: raw.num_hidden_layers,
            num_attention_heads: raw.num_attention_heads,
            num_channels: raw.num_channels,
            image_size: raw.image_size,
            patch_size: raw.patch_size,
            hidden_act,
            layer_norm_eps: raw.layer_norm_eps,
            attention_dropout: raw.attention_dropout,
            initializer_range: raw.initializer_range,
            initializer_factor: raw.initializer_factor,
        };
        config.check().map_err(|issue| ModelError::InvalidConfig {
            path: path.to_path_buf(),
            issue: issue.in_section(prefix),
        })?;
        Ok(config)
    }

    /// The sizes and values a model can be built from (also for configs written in code).
    pub fn check(&self) -> Result<(), ConfigIssue> {
        checkpoint::check_positive(&[
            ("hidden_size", self.hidden_size),
            ("intermediate_size", self.intermediate_size),
            ("num_hidden_layers", self.num_hidden_layers),
            ("num_attention_heads", self.num_attention_heads),
            ("num_channels", self.num_channels),
            ("image_size", self.image_size),
            ("patch_size", self.patch_size),
        ])?;
        checkpoint::check_multiple(
            ("hidden_size", self.hidden_size),
            ("num_attention_heads", self.num_attention_heads),
        )?;
        if self.patch_size > self.image_size {
            return Err(ConfigIssue::Malformed(format!(
                "`patch_size` ({}) must not exceed `image_size` ({})",
                self.patch_size, self.image_size
            )));
        }
        ConfigIssue::check_non_negative(&[("layer_norm_eps", self.layer_norm_eps)])?;
        ConfigIssue::check_probability(&[("attention_dropout", self.attention_dropout)])?;
        ConfigIssue::check_non_negative(&[
            ("initializer_range", self.initializer_range),
            ("initializer_factor", self.initializer_factor),
        ])?;
        Ok(())
    }

    pub fn head_dim(&self) -> i64 {
        self.hidden_size / self.num_attention_heads
    }

    /// `(image_size / patch_size)²`, rounded down as transformers does.
    pub fn num_patches(&self) -> i64 {
        let side = self.image_size / self.patch_size;
        side * side
    }

    /// `config.json` of a `CLIPVisionModel` folder as transformers' `save_pretrained` writes it.
    pub fn to_hf_json(&self) -> serde_json::Value {
        serde_json::json!({
            "architectures": ["CLIPVisionModel"],
            "model_type": "clip_vision_model",
            "hidden_size": self.hidden_size,
            "intermediate_size": self.intermediate_size,
            "num_hidden_layers": self.num_hidden_layers,
            "num_attention_heads": self.num_attention_heads,
            "num_channels": self.num_channels,
            "image_size": self.image_size,
            "patch_size": self.patch_size,
            "hidden_act": self.hidden_act.hf_name(),
            "layer_norm_eps": self.layer_norm_eps,
            "attention_dropout": self.attention_dropout,
            "initializer_range": self.initializer_range,
            "initializer_factor": self.initializer_factor,
        })
    }
}

/// What [`ClipVision::forward`] returns, in the model's float kind (fp32 unless [`ClipVision::set_float_kind`]).
#[derive(Debug)]
pub struct ClipVisionOutput {
    /// `[b, 1 + patches, d]`: the last encoder layer's output (no final norm on it, as transformers).
    pub last_hidden_state: Tensor,
    /// `[b, d]`: `post_layernorm(last_hidden_state[:, 0])`, transformers' `pooler_output`.
    pub pooled: Tensor,
    /// transformers' `output_hidden_states=True` convention, `num_hidden_layers + 1` tensors `[b, 1 + patches, d]`:
    /// `[0]` is the embeddings after `pre_layrnorm` (the first layer's input), `[i]` the output of layer `i`, so the
    /// last equals `last_hidden_state`. None of them has `post_layernorm` applied.
    pub hidden_states: Vec<Tensor>,
}

/// A frozen CLIP vision tower. Its variables live in their own [`VarStore`] with gradients switched off, and
/// [`ClipVision::forward`] runs under `no_grad`.
pub struct ClipVision {
    config: ClipVisionConfig,
    vs: VarStore,
    /// `[d, channels, patch, patch]`, no bias.
    patch_embedding: Tensor,
    /// `[d]`.
    class_embedding: Tensor,
    /// `[1 + patches, d]`.
    position_embedding: Tensor,
    pre_layrnorm: LayerNorm,
    layers: Vec<EncoderLayer>,
    post_layernorm: LayerNorm,
}

impl ClipVision {
    /// Loads `config.json` and the vision tensors of `model.safetensors` (or its shards) from a Hugging Face
    /// `CLIPModel` or `CLIPVisionModel` folder, converting the weights to fp32.
    pub fn load(dir: &Path, device: Device) -> Result<Self, ModelError> {
        let (path, value) = checkpoint::read_config(dir)?;
        let config = ClipVisionConfig::from_json(&path, value)?;
        // Zeros rather than a random draw: every variable is overwritten.
        let mut model = Self::build(&config, device, Inits::zeros());
        // `load_weights` looks up the model's variables only: the text tower and projections of a CLIPModel file are
        // never read into anything, and a missing vision tensor is named.
        checkpoint::load_weights(&mut model.vs, dir, &LoadPlan::default())?;
        Ok(model)
    }

    /// A model with transformers' random initialisation (`CLIPPreTrainedModel._init_weights`): class embedding
    /// normal(0, d^-0.5·f), patch and position embeddings normal(0, `initializer_range`·f), q/k/v normal(0,
    /// d^-0.5·(2L)^-0.5·f), out_proj normal(0, d^-0.5·f), fc1 normal(0, (2d)^-0.5·f), fc2 normal(0,
    /// d^-0.5·(2L)^-0.5·f), biases zero, norms one (f = `initializer_factor`, L = layers).
    pub fn new_random(config: &ClipVisionConfig, device: Device) -> Result<Self, ModelError> {
        config.check().map_err(|issue| ModelError::InvalidShape {
            model: "CLIP vision",
            issue,
        })?;
        let f = config.initializer_factor;
        let d = config.hidden_size as f64;
        let layers = (2 * config.num_hidden_layers) as f64;
        let normal = |stdev: f64| Init::Randn { mean: 0.0, stdev };
        let inits = Inits {
            class: normal(d.powf(-0.5) * f),
            embeddings: normal(config.initializer_range * f),
            in_proj: normal(d.powf(-0.5) * layers.powf(-0.5) * f),
            out_proj: normal(d.powf(-0.5) * f),
            fc1: normal((2.0 * d).powf(-0.5) * f),
            fc2: normal(d.powf(-0.5) * layers.powf(-0.5) * f),
            ones: Init::Const(1.0),
        };
        Ok(Self::build(config, device, inits))
    }

    fn build(config: &ClipVisionConfig, device: Device, inits: Inits) -> Self {
        let vs = VarStore::new(device);
        let root = vs.root() / "vision_model";
        let d = config.hidden_size;
        let emb = &root / "embeddings";
        let patch_embedding = (&emb / "patch_embedding").var(
            "weight",
            &[d, config.num_channels, config.patch_size, config.patch_size],
            inits.embeddings,
        );
        let class_embedding = emb.var("class_embedding", &[d], inits.class);
        let position_embedding = (&emb / "position_embedding").var(
            "weight",
            &[config.num_patches() + 1, d],
            inits.embeddings,
        );
        let pre_layrnorm = LayerNorm::new(&(&root / "pre_layrnorm"), d, &inits);
        let layers = (0..config.num_hidden_layers)
            .map(|i| EncoderLayer::new(&(&root / "encoder" / "layers" / i), config, &inits))
            .collect();
        let post_layernorm = LayerNorm::new(&(&root / "post_layernorm"), d, &inits);
        let mut vs = vs;
        vs.freeze();
        ClipVision {
            config: config.clone(),
            vs,
            patch_embedding,
            class_embedding,
            position_embedding,
            pre_layrnorm,
            layers,
            post_layernorm,
        }
    }

    /// Writes `config.json` and `model.safetensors` in the `CLIPVisionModel` layout (tiny test models).
    pub fn save(&self, dir: &Path) -> Result<(), ModelError> {
        checkpoint::save_folder(dir, &self.config.to_hf_json(), &self.vs)
    }

    pub fn config(&self) -> &ClipVisionConfig {
        &self.config
    }

    /// The tower's variables, named as in Hugging Face checkpoints.
    pub fn var_store(&self) -> &VarStore {
        &self.vs
    }

    pub fn device(&self) -> Device {
        self.vs.device()
    }

    /// Casts the frozen weights (e.g. `Kind::BFloat16` on CUDA, `Kind::Double` for exactness checks); outputs come
    /// in that kind.
    pub fn set_float_kind(&mut self, kind: Kind) -> Result<(), ModelError> {
        checkpoint::set_float_kind(&mut self.vs, kind)?;
        Ok(())
    }

    /// `pixel_values` `[b, channels, image_size, image_size]` (as [`crate::image_input::ClipImageProcessor`] makes
    /// them; any float kind and device: they are moved to the model's) → the tower's states, without gradients.
    pub fn forward(&self, pixel_values: &Tensor) -> Result<ClipVisionOutput, ModelError> {
        let c = &self.config;
        let size = pixel_values.size();
        if size.len() != 4 || size[1..] != [c.num_channels, c.image_size, c.image_size] {
            return Err(ModelError::Input(format!(
                "pixel values must be [batch, {}, {}, {}] (the model's `num_channels` and `image_size`; position \
                 embeddings are not interpolated), got {size:?}",
                c.num_channels, c.image_size, c.image_size
            )));
        }
        if !pixel_values.is_floating_point() {
            return Err(ModelError::Input(format!(
                "pixel values must be floating point, got {:?}",
                pixel_values.kind()
            )));
        }
        tch::no_grad(|| {
            let kind = self.patch_embedding.kind();
            let pixels = pixel_values.to_device(self.device()).to_kind(kind);
            let b = size[0];
            let d = c.hidden_size;
            // [b, d, grid, grid] → [b, patches, d]
            let patches = pixels
                .f_conv2d(
                    &self.patch_embedding,
                    None::<&Tensor>,
                    [c.patch_size, c.patch_size],
                    [0, 0],
                    [1, 1],
                    1,
                )?
                .flatten(2, -1)
                .transpose(1, 2);
            let class = self.class_embedding.expand([b, 1, d], false);
            let embeddings = Tensor::cat(&[&class, &patches], 1) + &self.position_embedding;
            let mut hidden = self.pre_layrnorm.forward(&embeddings, c.layer_norm_eps);
            let mut hidden_states = Vec::with_capacity(self.layers.len() + 1);
            for layer in &self.layers {
                hidden_states.push(hidden.shallow_clone());
                hidden = layer.forward(&hidden, c);
            }
            hidden_states.push(hidden.shallow_clone());
            let pooled = self
                .post_layernorm
                .forward(&hidden.select(1, 0), c.layer_norm_eps);
            Ok(ClipVisionOutput {
                last_hidden_state: hidden,
                pooled,
                hidden_states,
            })
        })
    }
}

/// The init of each kind of weight (zeros for `load`, transformers' normals for `new_random`).
struct Inits {
    class: Init,
    embeddings: Init,
    in_proj: Init,
    out_proj: Init,
    fc1: Init,
    fc2: Init,
    ones: Init,
}

impl Inits {
    fn zeros() -> Self {
        let z = Init::Const(0.0);
        Inits {
            class: z,
            embeddings: z,
            in_proj: z,
            out_proj: z,
            fc1: z,
            fc2: z,
            ones: z,
        }
    }
}

struct LayerNorm {
    weight: Tensor,
    bias: Tensor,
}

impl LayerNorm {
    fn new(p: &VarPath, d: i64, inits: &Inits) -> Self {
        LayerNorm {
            weight: p.var("weight", &[d], inits.ones),
            bias: p.var("bias", &[d], Init::Const(0.0)),
        }
    }

    fn forward(&self, x: &Tensor, eps: f64) -> Tensor {
        let d = self.weight.size()[0];
        x.layer_norm([d], Some(&self.weight), Some(&self.bias), eps, false)
    }
}

struct EncoderLayer {
    layer_norm1: LayerNorm,
    q_proj: Linear,
    k_proj: Linear,
    v_proj: Linear,
    out_proj: Linear,
    layer_norm2: LayerNorm,
    fc1: Linear,
    fc2: Linear,
}

impl EncoderLayer {
    fn new(p: &VarPath, config: &ClipVisionConfig, inits: &Inits) -> Self {
        let (d, ff) = (config.hidden_size, config.intermediate_size);
        let attn = p / "self_attn";
        let mlp = p / "mlp";
        EncoderLayer {
            layer_norm1: LayerNorm::new(&(p / "layer_norm1"), d, inits),
            q_proj: Linear::new(&(&attn / "q_proj"), d, d, true, inits.in_proj),
            k_proj: Linear::new(&(&attn / "k_proj"), d, d, true, inits.in_proj),
            v_proj: Linear::new(&(&attn / "v_proj"), d, d, true, inits.in_proj),
            out_proj: Linear::new(&(&attn / "out_proj"), d, d, true, inits.out_proj),
            layer_norm2: LayerNorm::new(&(p / "layer_norm2"), d, inits),
            fc1: Linear::new(&(&mlp / "fc1"), d, ff, true, inits.fc1),
            fc2: Linear::new(&(&mlp / "fc2"), ff, d, true, inits.fc2),
        }
    }

    fn forward(&self, x: &Tensor, c: &ClipVisionConfig) -> Tensor {
        let h = x + self.attention(&self.layer_norm1.forward(x, c.layer_norm_eps), c);
        let mlp = self.fc2.forward(
            &c.hidden_act.apply(
                &self
                    .fc1
                    .forward(&self.layer_norm2.forward(&h, c.layer_norm_eps)),
            ),
        );
        h + mlp
    }

    /// transformers' eager attention without a mask: `softmax(q kᵀ · head_dim^-0.5)` in fp32, cast back, times `v`.
    fn attention(&self, x: &Tensor, c: &ClipVisionConfig) -> Tensor {
        let (b, t) = (x.size()[0], x.size()[1]);
        let heads = |proj: &Linear| {
            proj.forward(x)
                .view([b, t, c.num_attention_heads, c.head_dim()])
                .transpose(1, 2)
        };
        let (q, k, v) = (
            heads(&self.q_proj),
            heads(&self.k_proj),
            heads(&self.v_proj),
        );
        let scale = (c.head_dim() as f64).powf(-0.5);
        let scores = q.matmul(&k.transpose(-1, -2)) * scale;
        let weights = scores.softmax(-1, Kind::Float).to_kind(q.kind());
        let out = weights
            .matmul(&v)
            .transpose(1, 2)
            .contiguous()
            .view([b, t, c.hidden_size]);
        self.out_proj.forward(&out)
    }
}

/// A tiny random CLIP vision tower in the `CLIPVisionModel` layout (`config.json` with model_type
/// `clip_vision_model`, `model.safetensors` with `vision_model.*`, and a `preprocessor_config.json` resizing and
/// cropping to its 32-pixel input): width `hidden_size` (a multiple of 4), 2 layers, 4 heads, 8-pixel patches (16
/// patch tokens), quick-GELU, transformers' initialisation. For feature extraction on generated images without
/// pretrained weights.
pub fn write_tiny_clip(dir: &Path, hidden_size: i64, seed: i64) -> Result<(), ModelError> {
    let config = ClipVisionConfig {
        hidden_size,
        intermediate_size: 2 * hidden_size,
        num_hidden_layers: 2,
        num_attention_heads: 4,
        num_channels: 3,
        image_size: 32,
        patch_size: 8,
        hidden_act: ClipActivation::QuickGelu,
        layer_norm_eps: 1e-5,
        attention_dropout: 0.0,
        initializer_range: 0.02,
        initializer_factor: 1.0,
    };
    tch::manual_seed(seed);
    let model = ClipVision::new_random(&config, Device::Cpu)?;
    model.save(dir)?;
    let preprocessor = serde_json::json!({
        "image_processor_type": "CLIPImageProcessor",
        "do_resize": true, "size": {"shortest_edge": 32}, "resample": 3,
        "do_center_crop": true, "crop_size": {"height": 32, "width": 32},
        "do_rescale": true, "rescale_factor": 1.0 / 255.0, "do_normalize": true,
        "image_mean": [0.48145466, 0.4578275, 0.40821073],
        "image_std": [0.26862954, 0.26130258, 0.27577711],
        "do_convert_rgb": true,
    });
    checkpoint::write_json(
        &dir.join(crate::image_input::PREPROCESSOR_CONFIG_FILE),
        &preprocessor,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tiny_json() -> serde_json::Value {
        serde_json::json!({
            "model_type": "clip_vision_model",
            "hidden_size": 16, "intermediate_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2,
            "image_size": 32, "patch_size": 8, "hidden_act": "quick_gelu",
        })
    }

    fn parse(value: serde_json::Value) -> Result<ClipVisionConfig, ModelError> {
        ClipVisionConfig::from_json(Path::new("config.json"), value)
    }

    #[test]
    fn clip_config_reads_both_layouts_with_defaults() {
        let vision = parse(tiny_json()).unwrap();
        assert_eq!(vision.hidden_size, 16);
        assert_eq!(vision.num_channels, 3);
        assert_eq!(vision.layer_norm_eps, 1e-5);
        assert_eq!(vision.num_patches(), 16);
        let mut nested = tiny_json();
        nested["model_type"] = "clip_vision_model".into();
        let clip = parse(serde_json::json!({
            "model_type": "clip", "text_config": {"hidden_size": 8}, "vision_config": nested,
        }))
        .unwrap();
        assert_eq!(clip, vision);
        // A CLIPModel config without `vision_config` is transformers' default tower, ViT-B/32.
        let default = parse(serde_json::json!({"model_type": "clip"})).unwrap();
        assert_eq!(
            (default.hidden_size, default.patch_size, default.image_size),
            (768, 32, 224)
        );
        assert_eq!(default.hidden_act, ClipActivation::QuickGelu);
    }

    #[test]
    fn clip_config_refusals_name_the_key() {
        let mut gelu_new = tiny_json();
        gelu_new["hidden_act"] = "gelu_new".into();
        let e = parse(gelu_new).unwrap_err().to_string();
        assert!(e.contains("`hidden_act` \"gelu_new\""), "{e}");
        let e = parse(
            serde_json::json!({"model_type": "clip", "vision_config": {"num_attention_heads": 5}}),
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("`vision_config.hidden_size` (768)"), "{e}");
        let e = parse(serde_json::json!({"model_type": "siglip"}))
            .unwrap_err()
            .to_string();
        assert!(e.contains("\"siglip\""), "{e}");
        let e = parse(serde_json::json!({"hidden_size": 16}))
            .unwrap_err()
            .to_string();
        assert!(e.contains("`model_type` is missing"), "{e}");
        let e = parse(serde_json::json!({
            "model_type": "clip", "vision_config": {"layers": [3, 4, 6, 3], "width": 64}
        }))
        .unwrap_err()
        .to_string();
        assert!(e.contains("ResNet CLIP variants"), "{e}");
        let e =
            parse(serde_json::json!({"embed_dim": 1024, "vision_cfg": {"layers": [3, 4, 6, 3]}}))
                .unwrap_err()
                .to_string();
        assert!(e.contains("ResNet CLIP variants"), "{e}");
    }

    #[test]
    fn clip_random_tower_runs_saves_and_loads() {
        let config = parse(tiny_json()).unwrap();
        let model = ClipVision::new_random(&config, Device::Cpu).unwrap();
        let pixels = Tensor::randn([2, 3, 32, 32], (Kind::Float, Device::Cpu));
        let out = model.forward(&pixels).unwrap();
        assert_eq!(out.last_hidden_state.size(), [2, 17, 16]);
        assert_eq!(out.pooled.size(), [2, 16]);
        assert_eq!(out.hidden_states.len(), 3);
        assert!(!out.pooled.requires_grad());
        assert!(out.hidden_states[2].equal(&out.last_hidden_state));

        let dir = std::env::temp_dir().join(format!("dept-clip-unit-{}", std::process::id()));
        model.save(&dir).unwrap();
        let loaded = ClipVision::load(&dir, Device::Cpu).unwrap();
        let again = loaded.forward(&pixels).unwrap();
        let _ = std::fs::remove_dir_all(&dir);
        assert_eq!(loaded.config(), &config);
        assert!(again.pooled.equal(&out.pooled));

        let e = model
            .forward(&Tensor::zeros([1, 3, 32, 40], (Kind::Float, Device::Cpu)))
            .unwrap_err()
            .to_string();
        assert!(e.contains("[batch, 3, 32, 32]"), "{e}");
    }
}
