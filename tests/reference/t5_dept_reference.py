"""Reference values for the T5 + DePT parity tests (tests/t5_parity.rs).

Writes, for each T5 layout (v1: ReLU, tied embeddings; v1.1: gated-GELU, untied lm_head):
  tests/reference/t5_dept/<layout>/model/      a tiny random checkpoint, as `save_pretrained` writes it
  tests/reference/t5_dept/<layout>/adapter/    a DePT adapter with non-zero P, A, B (official key names)
  tests/reference/t5_dept/<layout>/golden.json batch, loss, logits, gradients, greedy decodes, AdamW steps

The DePT forward is written here from the paper and the official code's semantics, independently of the Rust code:
inputs padded to exactly s tokens, embeddings + scale * (A @ B) at every position, the prompt prepended with mask 1.

Requirements (pinned): torch==2.4.1 transformers==4.44.2 (python 3.11). Run from the repository root:
    python tests/reference/t5_dept_reference.py
"""

import json
import math
import os
import shutil

import torch
from safetensors.torch import save_file
from transformers import T5Config, T5ForConditionalGeneration
from transformers.optimization import AdamW, get_linear_schedule_with_warmup

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "t5_dept")

M, R, S = 3, 2, 8  # prompt length, rank, max input length
LORA_ALPHA = 8
PAD, EOS = 0, 1
# Two inputs of different lengths (ids < vocab), and targets padded with -100.
INPUTS = [[5, 9, 13, 17, 21, 1], [7, 11, 1]]
TARGETS = [[4, 8, 1], [6, 1]]
MAX_NEW_TOKENS = 6
LR_PROMPT, LR_PAIR = 0.3, 0.05
WARMUP, TOTAL_STEPS = 2, 3

# Seeds and init scales were picked by trying seeds in order: greedy decoding must not be one repeated token and
# must hit EOS in some row (a degenerate decode makes a weak test), and float32 gradients must stay within ~2e-6
# of float64 ones (larger init scales make the tiny model so ill-conditioned that PyTorch's own float32 result
# is 1e-5 away from the exact one, which would leave no room for a 1e-5 parity tolerance).
LAYOUTS = {
    "v1": dict(feed_forward_proj="relu", tie_word_embeddings=True, initializer_factor=1.5, seed=33),
    "v1_1": dict(feed_forward_proj="gated-gelu", tie_word_embeddings=False, initializer_factor=1.0, seed=7),
}


def tiny_config(**layout):
    return T5Config(
        vocab_size=48,
        d_model=16,
        d_kv=4,
        d_ff=32,
        num_layers=2,
        num_decoder_layers=2,
        num_heads=4,
        relative_attention_num_buckets=8,
        relative_attention_max_distance=20,
        dropout_rate=0.1,
        layer_norm_epsilon=1e-6,
        pad_token_id=PAD,
        eos_token_id=EOS,
        decoder_start_token_id=PAD,
        **layout,
    )


def padded(rows, length, value):
    return torch.tensor([r + [value] * (length - len(r)) for r in rows])


def dept_inputs(model, ids, mask, prompt, lora_a, lora_b):
    """The official DePT input: word embeddings + scale·(A·B) on all s positions, prompt in front."""
    scale = LORA_ALPHA / math.sqrt(R)
    embeds = model.get_input_embeddings()(ids)
    embeds = embeds + scale * (lora_a @ lora_b).unsqueeze(0)
    batch = ids.shape[0]
    embeds = torch.cat([prompt.unsqueeze(0).expand(batch, -1, -1), embeds], dim=1)
    mask = torch.cat([torch.ones(batch, M, dtype=mask.dtype), mask], dim=1)
    return embeds, mask


def flat(t):
    return [float(x) for x in t.detach().reshape(-1).tolist()]


def generate(layout_name, layout):
    layout = dict(layout)
    torch.manual_seed(layout.pop("seed"))
    config = tiny_config(**layout)
    model = T5ForConditionalGeneration(config)
    model.eval()  # dropout off, as the parity tests run
    for p in model.parameters():
        p.requires_grad_(False)

    d = config.d_model
    g = torch.Generator().manual_seed(99)
    prompt = (torch.randn(M, d, generator=g) * 0.5).requires_grad_(True)
    lora_a = ((torch.rand(S, R, generator=g) * 2 - 1) / math.sqrt(R)).requires_grad_(True)
    lora_b = (torch.randn(R, d, generator=g) * 0.1).requires_grad_(True)
    initial = {k: v.detach().clone() for k, v in dict(prompt=prompt, lora_a=lora_a, lora_b=lora_b).items()}

    ids = padded(INPUTS, S, PAD)
    mask = (ids != PAD).long()
    labels = padded(TARGETS, max(len(t) for t in TARGETS), -100)

    embeds, full_mask = dept_inputs(model, ids, mask, prompt, lora_a, lora_b)
    out = model(inputs_embeds=embeds, attention_mask=full_mask, labels=labels)
    out.loss.backward()
    keep = labels != -100
    golden = {
        "m": M, "r": R, "s": S, "lora_alpha": LORA_ALPHA,
        "inputs": INPUTS, "targets": TARGETS,
        "loss": float(out.loss),
        "logits_at_targets": flat(out.logits[keep]),
        "grad_prompt": flat(prompt.grad),
        "grad_lora_a": flat(lora_a.grad),
        "grad_lora_b": flat(lora_b.grad),
    }

    with torch.no_grad():
        embeds, full_mask = dept_inputs(model, ids, mask, prompt, lora_a, lora_b)
        generated = model.generate(
            inputs_embeds=embeds, attention_mask=full_mask, max_new_tokens=MAX_NEW_TOKENS,
            do_sample=False, num_beams=1,
        )
    golden["greedy"] = generated[:, 1:].tolist()  # drop the decoder start token
    golden["max_new_tokens"] = MAX_NEW_TOKENS

    # Three steps of the official optimiser: transformers.AdamW (eps 1e-6, weight decay 0), two learning rates,
    # linear warm-up then decay, gradient-norm clipping at 1.0, dropout off.
    params = {k: v.detach().clone().requires_grad_(True) for k, v in initial.items()}
    optimizer = AdamW(
        [{"params": [params["prompt"]]}, {"params": [params["lora_a"], params["lora_b"]], "lr": LR_PAIR}],
        lr=LR_PROMPT, eps=1e-6, weight_decay=0.0,
    )
    scheduler = get_linear_schedule_with_warmup(optimizer, WARMUP, TOTAL_STEPS)
    losses = []
    for _ in range(TOTAL_STEPS):
        optimizer.zero_grad()
        embeds, full_mask = dept_inputs(model, ids, mask, params["prompt"], params["lora_a"], params["lora_b"])
        loss = model(inputs_embeds=embeds, attention_mask=full_mask, labels=labels).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(list(params.values()), 1.0)
        optimizer.step()
        scheduler.step()
        losses.append(float(loss))
    golden["adamw"] = {
        "lr_prompt": LR_PROMPT, "lr_pair": LR_PAIR, "warmup_steps": WARMUP, "total_steps": TOTAL_STEPS,
        "eps": 1e-6, "weight_decay": 0.0, "max_grad_norm": 1.0, "losses": losses,
        "prompt": flat(params["prompt"]), "lora_a": flat(params["lora_a"]), "lora_b": flat(params["lora_b"]),
    }

    folder = os.path.join(OUT, layout_name)
    shutil.rmtree(folder, ignore_errors=True)
    model.save_pretrained(os.path.join(folder, "model"), safe_serialization=True)
    gen_config = os.path.join(folder, "model", "generation_config.json")
    if os.path.exists(gen_config):
        os.remove(gen_config)
    adapter = os.path.join(folder, "adapter")
    os.makedirs(adapter)
    save_file(
        {
            "prompt_embeddings": initial["prompt"].contiguous(),
            "prompt_encoder.lora_embedding_A": initial["lora_a"].contiguous(),
            "prompt_encoder.lora_embedding_B": initial["lora_b"].contiguous(),
        },
        os.path.join(adapter, "adapter_model.safetensors"),
    )
    with open(os.path.join(adapter, "adapter_config.json"), "w") as f:
        json.dump({
            "peft_type": "PROMPT_TUNING_LORA", "task_type": "SEQ_2_SEQ_LM", "num_virtual_tokens": M,
            "token_dim": d, "r": R, "max_length": S, "lora_alpha": LORA_ALPHA, "num_transformer_submodules": 1,
            "prompt_tuning_init": "RANDOM",
        }, f, indent=2)
    with open(os.path.join(folder, "golden.json"), "w") as f:
        json.dump(golden, f)
    print(f"{layout_name}: loss {golden['loss']:.6f}, greedy {golden['greedy']}, losses {losses}")


if __name__ == "__main__":
    torch.set_num_threads(1)
    for name, layout in LAYOUTS.items():
        generate(name, layout)
