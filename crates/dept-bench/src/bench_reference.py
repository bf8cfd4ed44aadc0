"""The PyTorch side of `dept bench reference`: the official DePT training step in eager PyTorch.

transformers' T5ForConditionalGeneration (loaded from the model folder dept wrote, safetensors) and a DePT module
written for this bench after the official code (github.com/ZhengxiangShi/DePT, peft/tuners/prompt_tuning_lora.py
and peft/peft_model.py, PeftModelForSeq2SeqLM.forward, step by step as there): the word embeddings of inputs padded
to s plus scale * (A @ B), the soft prompt in front, the prompt's positions unmasked; loss from the model; backward;
clip_grad_norm_(1.0) over the model's parameters; the AdamW of transformers (`transformers.AdamW`, which the official code's transformers
version ships and its trainer builds, removed from later transformers; written out below) with two groups (the
prompt at lr_prompt, A and B at lr_pair; eps 1e-6, weight decay 0); then the gradients are cleared.

One run is one block of the bench: dept starts this script after its own block has finished and waits for it, so
the two never compute at once. The script loads the model (not timed), runs batches 0..count-1 in order (dept skips
the warm-up ones when it reads the times) and writes one JSON line per step to --out: {"step", "ms", "loss"}.
Batches and the adapter's starting values come from a safetensors file dept wrote (ids_K, mask_K, labels_K; P, A, B).
"""

import argparse
import json
import math
import sys
import time

import torch
from safetensors.torch import load_file
from transformers import T5ForConditionalGeneration


class HfAdamW(torch.optim.Optimizer):
    """transformers.AdamW (correct_bias=True), the official trainer's optimiser.

    It differs from torch.optim.AdamW in where eps goes: the step is lr * sqrt(1 - b2^t) / (1 - b1^t) times
    m / (sqrt(v) + eps), with eps added to the uncorrected sqrt(v); weight decay is applied after the step.
    """

    def __init__(self, params, lr, betas=(0.9, 0.999), eps=1e-6, weight_decay=0.0):
        super().__init__(params, dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay))

    @torch.no_grad()
    def step(self):
        for group in self.param_groups:
            beta1, beta2 = group["betas"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                state = self.state[p]
                if not state:
                    state["step"] = 0
                    state["exp_avg"] = torch.zeros_like(p)
                    state["exp_avg_sq"] = torch.zeros_like(p)
                state["step"] += 1
                exp_avg, exp_avg_sq = state["exp_avg"], state["exp_avg_sq"]
                exp_avg.mul_(beta1).add_(p.grad, alpha=1.0 - beta1)
                exp_avg_sq.mul_(beta2).addcmul_(p.grad, p.grad, value=1.0 - beta2)
                denom = exp_avg_sq.sqrt().add_(group["eps"])
                t = state["step"]
                step_size = group["lr"] * math.sqrt(1.0 - beta2**t) / (1.0 - beta1**t)
                p.addcdiv_(exp_avg, denom, value=-step_size)
                if group["weight_decay"] > 0.0:
                    p.add_(p, alpha=-group["lr"] * group["weight_decay"])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True)
    parser.add_argument("--inputs", required=True)
    parser.add_argument("--scale", type=float, required=True)
    parser.add_argument("--count", type=int, required=True, help="steps to run: batches 0..count-1")
    parser.add_argument("--out", required=True, help="JSON lines, one per step")
    parser.add_argument("--dropout", type=int, default=1)
    parser.add_argument("--threads", type=int, default=0)
    parser.add_argument("--lr-prompt", type=float, default=0.3)
    parser.add_argument("--lr-pair", type=float, default=1e-4)
    args = parser.parse_args()
    if args.threads > 0:
        torch.set_num_threads(args.threads)

    try:
        model = T5ForConditionalGeneration.from_pretrained(args.model, use_safetensors=True)
        tensors = load_file(args.inputs)
    except (OSError, ValueError) as e:
        sys.exit(f"bench_reference: {e}")
    for p in model.parameters():
        p.requires_grad_(False)
    # The official runs keep the frozen backbone's dropout on while training.
    model.train(bool(args.dropout))
    prompt = torch.nn.Parameter(tensors["P"].clone())
    a = torch.nn.Parameter(tensors["A"].clone()) if "A" in tensors else None
    b = torch.nn.Parameter(tensors["B"].clone()) if "B" in tensors else None
    pair = [p for p in (a, b) if p is not None]
    groups = [{"params": [prompt], "lr": args.lr_prompt}]
    if pair:
        groups.append({"params": pair, "lr": args.lr_pair})
    optimizer = HfAdamW(groups, lr=args.lr_prompt, eps=1e-6, weight_decay=0.0)
    params = [prompt] + pair

    # The official step, as its PeftModelForSeq2SeqLM.forward (PROMPT_TUNING_LORA branch, peft/peft_model.py) and
    # the HF Trainer it runs in do it: the full A (s rows: inputs are padded to s) times B added in place, repeated
    # over the batch; the prompt looked up through an embedding of the indices 0..m-1 per row (get_prompt); a float
    # mask for the prompt's positions; clipping and zeroing over every parameter of the model (the frozen ones
    # have no gradient).
    prompt_tokens = torch.arange(prompt.shape[0]).long()
    every_parameter = params + list(model.parameters())

    def step(k):
        ids, mask, labels = tensors[f"ids_{k}"], tensors[f"mask_{k}"], tensors[f"labels_{k}"]
        batch = ids.shape[0]
        embeds = model.shared(ids)
        if a is not None:
            embeds += args.scale * (a @ b).repeat(batch, 1, 1)
        mask = torch.cat([torch.ones(batch, prompt.shape[0]), mask], dim=1)
        prompts = torch.nn.functional.embedding(prompt_tokens.unsqueeze(0).expand(batch, -1), prompt)
        embeds = torch.cat([prompts, embeds], dim=1)
        loss = model(inputs_embeds=embeds, attention_mask=mask, labels=labels).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(every_parameter, 1.0)
        optimizer.step()
        for p in every_parameter:
            p.grad = None
        return loss.item()

    with open(args.out, "w") as out:
        for k in range(args.count):
            start = time.perf_counter()
            loss = step(k)
            ms = (time.perf_counter() - start) * 1e3
            out.write(json.dumps({"step": k, "ms": ms, "loss": loss}) + "\n")


if __name__ == "__main__":
    main()
