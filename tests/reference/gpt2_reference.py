"""Reference values for the GPT-2 parity tests (tests/gpt2_parity.rs).

Writes:
  tests/reference/gpt2/model/        a tiny random GPT2LMHeadModel as `save_pretrained(safe_serialization=True)`
                                     writes it (config.json without `n_ctx`; safetensors names `transformer.*`,
                                     `lm_head.weight` tied to `transformer.wte.weight` and not stored)
  tests/reference/gpt2/golden.json   - `right_padded`: 2 rows of different lengths, right-padded, position ids
                                       0..t-1; fp32 logits at every real position (row by row, position by position)
                                     - `perturbed`: the same batch through `inputs_embeds` = word embeddings + a
                                       fixed perturbation (stored, 4 decimals, applied in fp32); logits at real
                                       positions
                                     - `left_padded`: 2 rows left-padded with EOS, greedy decoding by
                                       `model.generate(max_new_tokens=6, do_sample=False, pad_token_id=EOS)`: the
                                       position ids transformers uses for the prompt (mask cumsum - 1, 1 at padding),
                                       the new tokens, the logits at each row's last prompt position, and the
                                       smallest top-1/top-2 logit gap over the decode (how much room fp32 has)
                                     - `tokenizer`: ids of a few strings from the real GPT-2 tokenizer, when
                                       ../shared/tokenizers/gpt2/tokenizer.json (or $DEPT_SHARED_DIR) exists

The seed and init scale were picked by trying seeds in order: each row's greedy decode must not be one repeated
token, must not hit EOS (so both rows run all 6 steps), and every greedy step must win by a logit gap of at least
1e-3 (so that float32 rounding cannot flip an argmax). A larger `initializer_range` than GPT-2's 0.02 gives the tiny
model peaked enough logits for that.

Requirements (pinned): torch==2.11.0 transformers==4.57.1 (the benchmark venv, ~/.cache/dept/bench-venv). Run from
the repository root:
    ~/.cache/dept/bench-venv/bin/python tests/reference/gpt2_reference.py
"""

import json
import os
import shutil

import torch
from transformers import GPT2Config, GPT2LMHeadModel

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OUT = os.path.join(ROOT, "tests", "reference", "gpt2")
SHARED = os.environ.get("DEPT_SHARED_DIR", os.path.join(ROOT, "..", "shared"))
TOKENIZER_FILE = os.path.join(SHARED, "tokenizers", "gpt2", "tokenizer.json")

VOCAB = 64
EOS = VOCAB - 1  # GPT-2 has no pad token: padding uses EOS, as with the real 50256
MAX_NEW_TOKENS = 6
MIN_GAP = 1e-3
INIT_RANGE = 0.35
RIGHT_ROWS = [[5, 17, 33, 2, 41, 9, 28], [12, 7, 50, 3]]
LEFT_ROWS = [[21, 8, 44, 15, 30], [6, 39, 11]]
TOKENIZER_TEXTS = [" Hello world", "Hello world", "It's 2024: naïve café — ok?\n  Done."]


def tiny_config():
    return GPT2Config(
        vocab_size=VOCAB,
        n_embd=16,
        n_layer=2,
        n_head=2,
        n_positions=64,
        initializer_range=INIT_RANGE,
        bos_token_id=EOS,
        eos_token_id=EOS,
    )


def right_padded(rows, value):
    length = max(len(r) for r in rows)
    ids = torch.tensor([r + [value] * (length - len(r)) for r in rows])
    mask = torch.tensor([[1] * len(r) + [0] * (length - len(r)) for r in rows])
    return ids, mask


def left_padded(rows, value):
    length = max(len(r) for r in rows)
    ids = torch.tensor([[value] * (length - len(r)) + r for r in rows])
    mask = torch.tensor([[0] * (length - len(r)) + [1] * len(r) for r in rows])
    return ids, mask


def short(values):
    """fp32 values with 8 significant digits: far below the tests' 1e-5 tolerance, half the size of repr."""
    return [float(f"{v:.8g}") for v in values]


def logits_at_real(logits, mask):
    return short(logits[mask.bool()].reshape(-1).tolist())


def greedy_by_hand(model, ids, mask):
    """Greedy decoding with an explicit cache and explicit position ids (what the Rust test does), to check that
    `generate` uses exactly these positions; returns new tokens and the smallest top-1/top-2 gap."""
    positions = (mask.cumsum(-1) - 1).masked_fill(mask == 0, 1)
    out = model(input_ids=ids, attention_mask=mask, position_ids=positions, use_cache=True)
    past, tokens, gap = out.past_key_values, [], float("inf")
    last = out.logits[:, -1]
    for _ in range(MAX_NEW_TOKENS):
        top = last.topk(2, dim=-1).values
        gap = min(gap, float((top[:, 0] - top[:, 1]).min()))
        token = last.argmax(-1, keepdim=True)
        tokens.append(token)
        mask = torch.cat([mask, torch.ones_like(token)], dim=1)
        positions = positions[:, -1:] + 1
        out = model(input_ids=token, attention_mask=mask, position_ids=positions, past_key_values=past,
                    use_cache=True)
        past, last = out.past_key_values, out.logits[:, -1]
    return torch.cat(tokens, dim=1), gap


def attempt(seed):
    torch.manual_seed(seed)
    model = GPT2LMHeadModel(tiny_config())
    model.eval()  # dropout off, as the parity tests run
    for p in model.parameters():
        p.requires_grad_(False)
    ids, mask = left_padded(LEFT_ROWS, EOS)
    new_tokens, gap = greedy_by_hand(model, ids, mask)
    rows = new_tokens.tolist()
    ok = gap >= MIN_GAP and all(len(set(r)) > 1 and EOS not in r for r in rows)
    return model, ok


def tokenizer_ids():
    if not os.path.isfile(TOKENIZER_FILE):
        print(f"note: {TOKENIZER_FILE} not found; no tokenizer ids written")
        return None
    from transformers import GPT2Tokenizer, GPT2TokenizerFast

    fast = GPT2TokenizerFast(tokenizer_file=TOKENIZER_FILE)
    folder = os.path.dirname(TOKENIZER_FILE)
    slow = GPT2Tokenizer(os.path.join(folder, "vocab.json"), os.path.join(folder, "merges.txt"))
    cases = []
    for text in TOKENIZER_TEXTS:
        ids = fast(text)["input_ids"]
        # The slow (pure Python) BPE from vocab.json + merges.txt checks the tokenizer.json file itself.
        assert ids == slow(text)["input_ids"], (text, ids, slow(text)["input_ids"])
        cases.append({"text": text, "ids": ids})
    return cases


def main():
    torch.set_num_threads(1)
    for seed in range(200):
        model, ok = attempt(seed)
        if ok:
            break
    else:
        raise SystemExit("no seed in 0..200 gives a usable greedy decode")

    golden = {"seed": seed, "initializer_range": INIT_RANGE, "eos_token_id": EOS,
              "max_new_tokens": MAX_NEW_TOKENS}
    with torch.no_grad():
        ids, mask = right_padded(RIGHT_ROWS, EOS)
        positions = torch.arange(ids.shape[1]).unsqueeze(0).expand_as(ids)
        logits = model(input_ids=ids, attention_mask=mask, position_ids=positions).logits
        golden["right_padded"] = {
            "ids": ids.tolist(), "mask": mask.tolist(), "position_ids": positions.tolist(),
            "logits_at_real": logits_at_real(logits, mask),
        }

        g = torch.Generator().manual_seed(1234)
        noise = (torch.randn(ids.shape[0], ids.shape[1], model.config.n_embd, generator=g) * 0.1)
        noise = [round(v, 4) for v in noise.reshape(-1).tolist()]
        noise_t = torch.tensor(noise, dtype=torch.float32).reshape(ids.shape[0], ids.shape[1], -1)
        embeds = model.get_input_embeddings()(ids) + noise_t
        logits = model(inputs_embeds=embeds, attention_mask=mask, position_ids=positions).logits
        golden["perturbed"] = {
            "perturbation": noise, "logits_at_real": logits_at_real(logits, mask),
        }

        ids, mask = left_padded(LEFT_ROWS, EOS)
        generated = model.generate(input_ids=ids, attention_mask=mask, max_new_tokens=MAX_NEW_TOKENS,
                                   do_sample=False, num_beams=1, pad_token_id=EOS)
        new_tokens = generated[:, ids.shape[1]:]
        by_hand, gap = greedy_by_hand(model, ids, mask)
        assert torch.equal(new_tokens, by_hand), (new_tokens, by_hand)
        positions = (mask.cumsum(-1) - 1).masked_fill(mask == 0, 1)
        last = model(input_ids=ids, attention_mask=mask, position_ids=positions).logits[:, -1]
        golden["left_padded"] = {
            "ids": ids.tolist(), "mask": mask.tolist(), "position_ids": positions.tolist(),
            "new_tokens": new_tokens.tolist(), "logits_last": short(last.reshape(-1).tolist()),
            "min_top2_gap": gap,
        }

    cases = tokenizer_ids()
    if cases is not None:
        golden["tokenizer"] = cases

    shutil.rmtree(OUT, ignore_errors=True)
    folder = os.path.join(OUT, "model")
    model.save_pretrained(folder, safe_serialization=True)
    gen_config = os.path.join(folder, "generation_config.json")
    if os.path.exists(gen_config):
        os.remove(gen_config)
    with open(os.path.join(folder, "config.json")) as f:
        saved = json.load(f)
    assert "n_ctx" not in saved, "transformers wrote n_ctx: the test of its absence would be moot"
    assert saved["model_type"] == "gpt2"
    with open(os.path.join(OUT, "golden.json"), "w") as f:
        json.dump(golden, f)
    print(f"seed {seed}: greedy {golden['left_padded']['new_tokens']}, min gap {gap:.4f}, "
          f"tokenizer {[c['ids'] for c in cases or []]}")


if __name__ == "__main__":
    main()
