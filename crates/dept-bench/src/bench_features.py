"""The PyTorch side of `dept bench features`: CLIP feature extraction with transformers.

transformers' `CLIPImageProcessor` (the Pillow/numpy one, from the model folder's preprocessor_config.json; images
opened with Pillow) and `CLIPVisionModel` (from the same folder, safetensors), loaded twice: with
`attn_implementation="eager"` and with the default `"sdpa"`. Everything runs under `torch.no_grad()` with the
model in eval mode, on the batches of image paths dept wrote (a JSON list of batches of [id, path]).

dept drives this script through stdin so that the two implementations run interleaved on the same machine; each
request is one line, a JSON list of words (paths may hold spaces), and is answered by one line, `ok <milliseconds>`
(`ok` for the untimed check), or `error <message>` on a failure, after which the script ends:

  process             the processor on every batch: PIL open + CLIPImageProcessor(images, return_tensors="pt")
  forward ATTN        the tower (ATTN: eager | sdpa) on every batch's pixel values, preprocessed once beforehand
  full ATTN OUT       per batch: open + processor + tower, the last hidden state without the class token moved to
                      the CPU and kept per image id; then one safetensors file at OUT (what `dept features
                      extract` writes)
  check IN OUT        IN holds dept's pixel values of batch 0 (`pixel_values`); writes to OUT the last hidden state
                      of both towers on those pixel values (`eager_on_ours`, `sdpa_on_ours`), this processor's own
                      pixel values of batch 0 (`pixels`), the sdpa tower's last hidden state on them (`sdpa_on_own`)
                      and the processor's `image_std`
  quit

`--make-images DIR --count N --format jpg|png` instead writes N test images of varied sizes (smooth colour fields,
shapes and mild noise, like photographs more than like white noise) and exits.
"""

import argparse
import json
import sys
import time


def fail(message):
    print(f"error {message}", flush=True)
    sys.exit(2)


def make_images(folder, count, fmt, seed=0):
    import os

    import numpy as np
    from PIL import Image, ImageDraw

    sizes = [(640, 480), (480, 640), (640, 427), (500, 375), (640, 640), (800, 600), (427, 640), (1024, 768)]
    rng = np.random.default_rng(seed)
    os.makedirs(folder, exist_ok=True)
    for i in range(count):
        w, h = sizes[i % len(sizes)]
        y, x = np.mgrid[0:h, 0:w].astype(np.float32)
        base = np.stack(
            [
                128 + 100 * np.sin(x / rng.uniform(30, 200) + rng.uniform(0, 6))
                * np.cos(y / rng.uniform(30, 200) + rng.uniform(0, 6))
                for _ in range(3)
            ],
            axis=-1,
        )
        base += rng.normal(0, 6, base.shape)
        image = Image.fromarray(np.clip(base, 0, 255).astype(np.uint8), "RGB")
        draw = ImageDraw.Draw(image)
        for _ in range(12):
            x0, y0 = int(rng.uniform(0, w)), int(rng.uniform(0, h))
            x1, y1 = x0 + int(rng.uniform(10, w / 2)), y0 + int(rng.uniform(10, h / 2))
            colour = tuple(int(c) for c in rng.integers(0, 256, 3))
            if rng.uniform() < 0.5:
                draw.ellipse([x0, y0, x1, y1], fill=colour)
            else:
                draw.rectangle([x0, y0, x1, y1], fill=colour)
        name = os.path.join(folder, f"image_{i:05d}.{fmt}")
        if fmt == "png":
            image.save(name)
        else:
            image.save(name, quality=90)
    print("ok", flush=True)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--model")
    parser.add_argument("--batches")
    parser.add_argument("--threads", type=int, default=0)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--make-images")
    parser.add_argument("--count", type=int, default=64)
    parser.add_argument("--format", default="jpg")
    args = parser.parse_args()

    try:
        import numpy  # noqa: F401
        import PIL  # noqa: F401
    except ImportError as e:
        fail(f"this python lacks {e.name}, which CLIPImageProcessor needs: `{sys.executable} -m pip install pillow`")
    if args.make_images:
        make_images(args.make_images, args.count, args.format)
        return

    try:
        import torch
        from PIL import Image
        from safetensors.torch import load_file, save_file
        from transformers import CLIPImageProcessor, CLIPVisionModel
        import transformers
    except ImportError as e:
        fail(f"this python lacks {e.name}: the benchmark needs torch, transformers, safetensors and pillow")
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)

    def synchronize():
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    processor = CLIPImageProcessor.from_pretrained(args.model)
    models = {
        attn: CLIPVisionModel.from_pretrained(args.model, use_safetensors=True, attn_implementation=attn)
        .to(device)
        .eval()
        for attn in ("eager", "sdpa")
    }
    with open(args.batches) as f:
        batches = json.load(f)

    def pixels_of(batch):
        images = [Image.open(path) for _, path in batch]
        return processor(images=images, return_tensors="pt")["pixel_values"]

    pixels = [pixels_of(batch) for batch in batches]

    def forward(attn, pixel_values):
        return models[attn](pixel_values=pixel_values.to(device)).last_hidden_state

    def timed(work):
        synchronize()
        start = time.perf_counter()
        work()
        synchronize()
        return (time.perf_counter() - start) * 1e3

    def full(attn, out):
        features = {}
        for batch in batches:
            states = forward(attn, pixels_of(batch))[:, 1:].cpu()
            for row, (image_id, _) in enumerate(batch):
                features[image_id] = states[row].contiguous()
        save_file(features, out, metadata={"format": "transformers"})

    print(f"ready {torch.__version__} {transformers.__version__} {torch.get_num_threads()}", flush=True)
    with torch.no_grad():
        for line in sys.stdin:
            words = json.loads(line) if line.strip() else ["quit"]
            if words[0] == "quit":
                break
            try:
                if words[0] == "process":
                    ms = timed(lambda: [pixels_of(batch) for batch in batches])
                elif words[0] == "forward":
                    ms = timed(lambda: [forward(words[1], p) for p in pixels])
                elif words[0] == "full":
                    ms = timed(lambda: full(words[1], words[2]))
                elif words[0] == "check":
                    ours = load_file(words[1])["pixel_values"]
                    save_file(
                        {
                            "eager_on_ours": forward("eager", ours).cpu().contiguous(),
                            "sdpa_on_ours": forward("sdpa", ours).cpu().contiguous(),
                            "pixels": pixels[0].contiguous(),
                            "sdpa_on_own": forward("sdpa", pixels[0]).cpu().contiguous(),
                            "image_std": torch.tensor(processor.image_std, dtype=torch.float32),
                        },
                        words[2],
                    )
                    print("ok", flush=True)
                    continue
                else:
                    fail(f"unknown request {words!r}")
            except Exception as e:  # answered to dept, which stops with it
                fail(f"{type(e).__name__}: {e}".replace("\n", " "))
            print(f"ok {ms:.3f}", flush=True)


if __name__ == "__main__":
    main()
