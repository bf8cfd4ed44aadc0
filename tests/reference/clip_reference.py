"""Reference values for the CLIP vision-tower and image-preprocessing parity tests (tests/clip_parity.rs).

Writes, under tests/reference/clip/:
  vision_model/        a tiny random `CLIPVisionModel` (image_size 32, patch_size 8, hidden 16, 2 layers, 2 heads,
                       intermediate 32, quick_gelu), as `save_pretrained(..., safe_serialization=True)` writes it
                       (config.json with model_type "clip_vision_model", model.safetensors with `vision_model.*`),
                       plus the `preprocessor_config.json` of a `CLIPImageProcessor` with size 32 / crop 32
  clip_model/          a tiny `CLIPModel` whose vision tower has the same weights (config.json with model_type "clip"
                       and the vision config nested under `vision_config`; model.safetensors also holds a tiny text
                       tower, `visual_projection`, `text_projection` and `logit_scale`), and the same
                       preprocessor_config.json
  images/              deterministic generated test images: a.png (RGB, 45 wide x 37 high) and b.jpg (RGB JPEG,
                       30 x 50, Pillow's default quality 75 and 4:2:0 chroma subsampling)
  golden.safetensors   for the batch [a.png, b.jpg]:
                         pixel_values       fp32 [2, 3, 32, 32]  `CLIPImageProcessor(...)(images)["pixel_values"]`
                         last_hidden_state  fp32 [2, 17, 16]      `CLIPVisionModel(pixel_values).last_hidden_state`
                         pooled             fp32 [2, 16]          `.pooler_output` (post_layernorm of the CLS state)
                         hidden_states_0    fp32 [2, 17, 16]      `output_hidden_states=True`'s first entry (the
                                                                  embeddings after pre_layrnorm; the script checks
                                                                  that there are layers + 1 and the last is
                                                                  last_hidden_state)
                         decoded_jpeg       uint8 [50, 30, 3]     b.jpg as Pillow (libjpeg) decodes it, to tell JPEG
                                                                  decoding differences from resampling ones
  golden.json          the image file names, shapes, and the checks this script made

Sizes are kept down (the two model folders are ~77 KB of fp32 weights for the dimensions the issue fixes): no RGBA
image (convert("RGB") dropping alpha is tested in Rust against Pillow's documented behaviour), no resized uint8
images (the crop's uint8 values are recoverable from pixel_values exactly).

The weights are drawn again after construction (weights N(0, 0.3), biases N(0, 0.1), layer-norm weights 1 + N(0, 0.2))
so that every parameter, biases and norms included, moves the outputs. Attention runs the "eager" implementation
(what clip.rs mirrors); the script checks that the default ("sdpa") agrees, that the CLIPModel's vision tower gives
the same outputs, and that fp32 agrees with fp64 to well under the tests' 1e-5 (about 1e-6).

Requirements (pinned): torch==2.11.0 transformers==4.57.1 safetensors==0.8.0 numpy pillow==13.0.0. The benchmark venv
(~/.cache/dept/bench-venv) has all but Pillow, which `CLIPImageProcessor` needs for its resize; install it beside it
without touching the venv:
    ~/.cache/dept/bench-venv/bin/python -m pip install --target /tmp/clip-ref-pillow pillow==13.0.0
    PYTHONPATH=/tmp/clip-ref-pillow ~/.cache/dept/bench-venv/bin/python tests/reference/clip_reference.py
(run from the repository root).
"""

import json
import os
import shutil

import numpy as np
import torch
from PIL import Image
from safetensors.torch import save_file
from transformers import (
    CLIPConfig,
    CLIPImageProcessor,
    CLIPModel,
    CLIPTextConfig,
    CLIPVisionConfig,
    CLIPVisionModel,
)

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "clip")
SEED = 0

VISION = dict(
    image_size=32,
    patch_size=8,
    hidden_size=16,
    num_hidden_layers=2,
    num_attention_heads=2,
    intermediate_size=32,
    hidden_act="quick_gelu",
    projection_dim=8,
)
# As small as a text tower can be: the Rust side never reads it, it only has to be in the file and be ignored.
TEXT = dict(
    vocab_size=16,
    hidden_size=8,
    intermediate_size=8,
    num_hidden_layers=1,
    num_attention_heads=1,
    max_position_embeddings=4,
    projection_dim=8,
)


def make_images():
    """Deterministic content: smooth gradients plus sharp edges and a checkerboard, so that a resampling filter's
    overshoot (and its clipping) shows."""
    os.makedirs(os.path.join(OUT, "images"), exist_ok=True)
    names = []

    # a.png: 45 wide x 37 high RGB.
    h, w = 37, 45
    y, x = np.mgrid[0:h, 0:w]
    r = (x * 255 // (w - 1)).astype(np.uint8)
    g = (((x // 3 + y // 3) % 2) * 200 + 30).astype(np.uint8)
    b = np.where((x - 20) ** 2 + (y - 15) ** 2 < 100, 250, (y * 7) % 256).astype(np.uint8)
    Image.fromarray(np.stack([r, g, b], -1), "RGB").save(os.path.join(OUT, "images", "a.png"))
    names.append("a.png")

    # b.jpg: 30 wide x 50 high RGB JPEG (Pillow's defaults: quality 75, 4:2:0).
    h, w = 50, 30
    y, x = np.mgrid[0:h, 0:w]
    r = ((np.sin(x / 4.0) * 0.5 + 0.5) * 255).astype(np.uint8)
    g = (y * 255 // (h - 1)).astype(np.uint8)
    b = np.where(y > x + 10, 255, 0).astype(np.uint8)
    Image.fromarray(np.stack([r, g, b], -1), "RGB").save(os.path.join(OUT, "images", "b.jpg"))
    names.append("b.jpg")

    return names


def randomize(model, generator):
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "layer_norm" in name or "layrnorm" in name or "post_layernorm" in name:
                if name.endswith("weight"):
                    p.copy_(1 + 0.2 * torch.randn(p.shape, generator=generator))
                else:
                    p.copy_(0.1 * torch.randn(p.shape, generator=generator))
            elif name.endswith("bias"):
                p.copy_(0.1 * torch.randn(p.shape, generator=generator))
            else:
                p.copy_(0.3 * torch.randn(p.shape, generator=generator))


def run(model, pixel_values):
    with torch.no_grad():
        out = model(pixel_values=pixel_values, output_hidden_states=True)
    assert len(out.hidden_states) == model.config.num_hidden_layers + 1
    assert torch.equal(out.hidden_states[-1], out.last_hidden_state)
    return out.last_hidden_state, out.pooler_output, out.hidden_states[0]


def main():
    if os.path.isdir(OUT):
        shutil.rmtree(OUT)
    os.makedirs(OUT)
    names = make_images()

    processor = CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32})
    images = [Image.open(os.path.join(OUT, "images", n)) for n in names]
    pixel_values = torch.from_numpy(processor(images=images, return_tensors="np")["pixel_values"])
    assert pixel_values.dtype == torch.float32 and pixel_values.shape == (2, 3, 32, 32)

    tensors = {"pixel_values": pixel_values.contiguous()}
    jpeg = Image.open(os.path.join(OUT, "images", "b.jpg")).convert("RGB")
    tensors["decoded_jpeg"] = torch.from_numpy(np.array(jpeg)).contiguous()

    torch.manual_seed(SEED)
    generator = torch.Generator().manual_seed(SEED)
    vision_config = CLIPVisionConfig(**VISION)
    vision = CLIPVisionModel(vision_config).eval()
    randomize(vision, generator)
    vision.config._attn_implementation = "eager"
    last, pooled, hidden = run(vision, pixel_values)

    # The default attention ("sdpa") agrees with eager.
    vision.config._attn_implementation = "sdpa"
    last_sdpa, _, _ = run(vision, pixel_values)
    vision.config._attn_implementation = "eager"
    sdpa_diff = (last_sdpa - last).abs().max().item()
    assert sdpa_diff < 1e-5, sdpa_diff

    # fp32 against fp64 (the tests' tolerance must leave room for this).
    vision64 = CLIPVisionModel(vision_config).eval()
    vision64.load_state_dict(vision.state_dict())
    vision64 = vision64.double()
    vision64.config._attn_implementation = "eager"
    last64, pooled64, _ = run(vision64, pixel_values.double())
    fp64_rel = max(
        ((last.double() - last64).abs().max() / last64.abs().max()).item(),
        ((pooled.double() - pooled64).abs().max() / pooled64.abs().max()).item(),
    )
    # ~1e-6 with these weights: fp32 rounding alone stays well inside the tests' 1e-5.
    assert fp64_rel < 2e-6, fp64_rel

    vision_dir = os.path.join(OUT, "vision_model")
    vision.save_pretrained(vision_dir, safe_serialization=True)
    processor.save_pretrained(vision_dir)

    # The same vision tower inside a CLIPModel (with a tiny text tower and the projections).
    clip_config = CLIPConfig(text_config=TEXT, vision_config=VISION, projection_dim=8)
    clip = CLIPModel(clip_config).eval()
    randomize(clip, torch.Generator().manual_seed(SEED + 1))
    missing, unexpected = clip.vision_model.load_state_dict(vision.vision_model.state_dict())
    assert not missing and not unexpected
    clip.config._attn_implementation = "eager"
    clip.vision_model.config._attn_implementation = "eager"
    with torch.no_grad():
        out = clip.vision_model(pixel_values=pixel_values)
    assert torch.equal(out.last_hidden_state, last) and torch.equal(out.pooler_output, pooled)
    clip_dir = os.path.join(OUT, "clip_model")
    clip.save_pretrained(clip_dir, safe_serialization=True)
    processor.save_pretrained(clip_dir)

    tensors.update(
        last_hidden_state=last.contiguous(),
        pooled=pooled.contiguous(),
        hidden_states_0=hidden.contiguous(),
    )
    save_file(tensors, os.path.join(OUT, "golden.safetensors"))
    with open(os.path.join(OUT, "golden.json"), "w") as f:
        json.dump(
            {
                "images": names,
                "pixel_values_shape": list(pixel_values.shape),
                "last_hidden_state_shape": list(last.shape),
                "sdpa_vs_eager_max_abs": sdpa_diff,
                "fp32_vs_fp64_max_rel": fp64_rel,
                "versions": {
                    "torch": torch.__version__,
                    "transformers": __import__("transformers").__version__,
                    "pillow": Image.__version__,
                },
            },
            f,
            indent=1,
        )
    total = sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(OUT) for f in fs)
    print(f"wrote {OUT} ({total / 1024:.1f} KiB); sdpa-eager {sdpa_diff:.2e}, fp32-fp64 {fp64_rel:.2e}")


if __name__ == "__main__":
    main()
