"""Reference decodes for the beam-search parity tests (tests/beam_parity.rs): transformers' own `generate`.

Reads the tiny checkpoints and DePT adapters already committed (not changed):
  tests/reference/t5_dept/v1/{model,adapter}        T5 v1 (vocab 48), m = 3, r = 2, s = 8
  tests/reference/{gpt2,llama}/model                GPT-2 and Llama (vocab 64)
  tests/reference/causal_dept/{gpt2,llama}/adapter  their adapters, m = 3, r = 2, s = 12
  tests/reference/clip_t5/{model,adapter,...}       CLIP-T5 (rebuilt by clip_t5_reference.Reference, checked equal)
and writes tests/reference/beam/golden.json: per model the batch's sources (3 rows of different lengths) and, per
decoding setting (num_beams 1/3/4, length_penalty != 1, early_stopping true/false/"never", no_repeat_ngram_size 2),
what `model.generate(inputs_embeds=..., attention_mask=..., do_sample=False, max_new_tokens=8, ...)` returns:
  - `raw`: the returned ids as they are (T5: the decoder start token dropped). Beam search pads a finished row
    with `pad_token_id or eos_token_id[0]`, which for T5 (pad id 0, falsy) is its EOS id 1;
  - `expected`: the same ids with everything after each row's first EOS set to the pad id, as dept pads (greedy
    decoding in transformers pads with the pad id too); the width is the returned one.

The DePT input is computed here as the existing references compute it and fed as `inputs_embeds`:
  - T5 and CLIP-T5 (tests/reference/t5_dept_reference.py, clip_t5_reference.py): the inputs right-padded to exactly
    s, word embeddings + scale·(A·B) on all s positions (CLIP-T5: on the text padded to its longest, then the visual
    tokens, with VL-T5's text-only position bias), the prompt in front;
  - GPT-2 and Llama (causal_dept_reference.dept_embeds): left-padded, A's row by each real token's own position,
    the prompt in front; transformers' generate computes the position ids from the mask (cumsum - 1), as dept does.
New tokens are embedded plainly by the model.

Each setting is decoded again in float64 (model and adapter cast) and must give the same tokens, so that no step
of the fp32 reference is decided by a rounding-level tie; and each model's batch must have rows that end at
different steps in some setting (but GPT-2's: the tiny GPT-2 almost never predicts its EOS).

Requirements (pinned): torch==2.11.0 transformers==4.57.1 safetensors==0.8.0 (the benchmark venv,
~/.cache/dept/bench-venv). Run from the repository root:
    ~/.cache/dept/bench-venv/bin/python tests/reference/beam_reference.py
"""

import json
import math
import os
import sys

import torch
import transformers
from safetensors.torch import load_file
from transformers import T5ForConditionalGeneration

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import causal_dept_reference as causal  # noqa: E402  (its main() is guarded)
import clip_t5_reference as clip  # noqa: E402

OUT = os.path.join(HERE, "beam")
MAX_NEW_TOKENS = 8

SETTINGS = [
    dict(name="greedy", num_beams=1),
    dict(name="greedy_no_repeat_2", num_beams=1, no_repeat_ngram_size=2),
    dict(name="beams_3", num_beams=3),
    dict(name="beams_4_penalty_2_early_true", num_beams=4, length_penalty=2.0, early_stopping=True),
    dict(name="beams_4_penalty_2_early_false", num_beams=4, length_penalty=2.0, early_stopping=False),
    dict(name="beams_4_penalty_2_early_never", num_beams=4, length_penalty=2.0, early_stopping="never"),
    dict(name="beams_4_penalty_0.5_early_never", num_beams=4, length_penalty=0.5, early_stopping="never"),
    dict(name="beams_4_penalty_0_early_never", num_beams=4, length_penalty=0.0, early_stopping="never"),
    dict(name="beams_4_penalty_-1_early_false", num_beams=4, length_penalty=-1.0, early_stopping=False),
    dict(name="beams_3_no_repeat_2", num_beams=3, no_repeat_ngram_size=2),
    dict(name="beams_4_no_repeat_2_early_true", num_beams=4, no_repeat_ngram_size=2, early_stopping=True),
    # No token twice. (T5's decoder start token is in the history too, as in transformers; the tiny T5 never
    # wants its id 0 here, so crates/dept-models/src/beam.rs tests that part with a scripted model.)
    dict(name="greedy_no_repeat_1", num_beams=1, no_repeat_ngram_size=1),
    dict(name="beams_3_no_repeat_1", num_beams=3, no_repeat_ngram_size=1),
]

T5_INPUTS = [[5, 9, 13, 17, 21, 1], [7, 11, 1], [3, 30, 22, 40, 1]]
CAUSAL_SOURCES = [[21, 8, 44, 15, 30, 19], [6, 39, 11], [2, 50, 33, 9, 14]]


def adapter(folder, dtype):
    tensors = load_file(os.path.join(folder, "adapter_model.safetensors"))
    with open(os.path.join(folder, "adapter_config.json")) as f:
        config = json.load(f)
    return (
        tensors["prompt_embeddings"].to(dtype),
        tensors["prompt_encoder.lora_embedding_A"].to(dtype),
        tensors["prompt_encoder.lora_embedding_B"].to(dtype),
        config,
    )


def generate(model, embeds, mask, setting):
    kwargs = {k: v for k, v in setting.items() if k != "name"}
    with torch.no_grad():
        return model.generate(
            inputs_embeds=embeds, attention_mask=mask, max_new_tokens=MAX_NEW_TOKENS, do_sample=False, **kwargs
        )


def t5_embeds(dtype):
    folder = os.path.join(HERE, "t5_dept", "v1")
    model = T5ForConditionalGeneration.from_pretrained(os.path.join(folder, "model"), dtype=dtype)
    model.eval()
    prompt, lora_a, lora_b, config = adapter(os.path.join(folder, "adapter"), dtype)
    m, r, s = config["num_virtual_tokens"], config["r"], config["max_length"]
    scale = config["lora_alpha"] / math.sqrt(r)
    pad = model.config.pad_token_id
    ids = torch.tensor([row + [pad] * (s - len(row)) for row in T5_INPUTS])
    mask = (ids != pad).long()
    with torch.no_grad():
        embeds = model.get_input_embeddings()(ids) + scale * (lora_a @ lora_b).unsqueeze(0)
        embeds = torch.cat([prompt.unsqueeze(0).expand(len(T5_INPUTS), -1, -1), embeds], dim=1)
    mask = torch.cat([torch.ones(len(T5_INPUTS), m, dtype=mask.dtype), mask], dim=1)
    return model, embeds, mask, T5_INPUTS


def causal_embeds(name, dtype):
    model, ids = causal.load(name)
    model = model.to(dtype)
    prompt, lora_a, lora_b, config = adapter(os.path.join(HERE, "causal_dept", name, "adapter"), dtype)
    assert (config["num_virtual_tokens"], config["r"], config["lora_alpha"]) == (causal.M, causal.R, causal.LORA_ALPHA)
    bos = [ids["bos"]] if ids["bos"] is not None else []
    sources = [bos + s for s in CAUSAL_SOURCES]
    pad = ids["pad"]
    longest = max(len(s) for s in sources)
    padded = torch.tensor([[pad] * (longest - len(s)) + s for s in sources])
    mask = torch.tensor([[0] * (longest - len(s)) + [1] * len(s) for s in sources])
    with torch.no_grad():
        embeds, full_mask, _ = causal.dept_embeds(model, padded, mask, prompt, lora_a, lora_b)
    return model, embeds, full_mask, sources


class ClipT5Case:
    """CLIP-T5 as clip_t5_reference.py builds it (its committed model, adapter and features, checked below)."""

    def __init__(self, dtype):
        torch.manual_seed(0)
        self.ref = clip.Reference(dtype)
        self.length = max(len(r) for r in clip.INPUTS)

    def check_committed(self):
        golden = json.load(open(os.path.join(HERE, "clip_t5", "golden.json")))
        assert golden["inputs"] == clip.INPUTS
        assert torch.equal(self.ref.features.reshape(-1), torch.tensor(golden["features"], dtype=torch.float32))
        committed = load_file(os.path.join(HERE, "clip_t5", "model", "model.safetensors"))
        ours = self.ref.model.state_dict()
        for name, tensor in committed.items():
            assert torch.equal(ours[name], tensor), name
        prompt, _, _, _ = adapter(os.path.join(HERE, "clip_t5", "adapter"), torch.float32)
        assert torch.equal(prompt, self.ref.prompt.detach())

    def generate(self, setting):
        ids, mask = self.ref.text(self.length)
        with torch.no_grad(), self.ref.bias(self.length):
            embeds, full_mask = self.ref.encoder_inputs(ids, mask)
            return generate(self.ref.model, embeds, full_mask, setting)


def normalised(raw, eos, pad):
    """Everything after a row's first EOS set to the pad id (dept's padding)."""
    rows = []
    for row in raw:
        out, ended = [], False
        for token in row:
            out.append(pad if ended else token)
            ended = ended or token == eos
        rows.append(out)
    return rows


def cases():
    """(name, float32 decode, float64 decode, sources, eos, pad, is_encoder_decoder) per model."""
    t5_32, t5_64 = t5_embeds(torch.float32), t5_embeds(torch.float64)
    yield "t5", lambda st: generate(*t5_32[:3], st), lambda st: generate(*t5_64[:3], st), t5_32[3], t5_32[0].config
    for name in ("gpt2", "llama"):
        c32, c64 = causal_embeds(name, torch.float32), causal_embeds(name, torch.float64)
        yield name, lambda st, c=c32: generate(*c[:3], st), lambda st, c=c64: generate(*c[:3], st), c32[3], c32[0].config
    clip32, clip64 = ClipT5Case(torch.float32), ClipT5Case(torch.float64)
    clip32.check_committed()
    yield "clip_t5", clip32.generate, clip64.generate, clip.INPUTS, clip32.ref.model.config


def main():
    torch.set_num_threads(1)
    golden = {
        "versions": {"torch": torch.__version__, "transformers": transformers.__version__},
        "max_new_tokens": MAX_NEW_TOKENS,
        "settings": SETTINGS,
        "models": {},
    }
    for name, decode32, decode64, sources, config in cases():
        eos = config.eos_token_id
        pad = config.pad_token_id if config.pad_token_id is not None else eos
        start = 1 if config.is_encoder_decoder else 0  # T5's output begins with the decoder start token
        results = {}
        uneven = False
        for setting in SETTINGS:
            raw = decode32(setting)[:, start:].tolist()
            again = decode64(setting)[:, start:].tolist()
            expected = normalised(raw, eos, pad)
            assert expected == normalised(again, eos, pad), f"{name} {setting['name']}: fp32 {raw} vs fp64 {again}"
            lengths = [next((i + 1 for i, t in enumerate(row) if t == eos), len(row)) for row in expected]
            uneven = uneven or len(set(lengths)) > 1
            results[setting["name"]] = {"raw": raw, "expected": expected}
            print(f"{name:8} {setting['name']:34} {expected}")
        # The tiny GPT-2 almost never predicts its EOS (see causal_dept_reference.py): its rows run all steps.
        assert uneven or name == "gpt2", f"{name}: no setting has rows ending at different steps"
        golden["models"][name] = {"sources": sources, "eos_token_id": eos, "pad_token_id": pad, "cases": results}
    os.makedirs(OUT, exist_ok=True)
    with open(os.path.join(OUT, "golden.json"), "w") as f:
        json.dump(golden, f, indent=1)


if __name__ == "__main__":
    main()
