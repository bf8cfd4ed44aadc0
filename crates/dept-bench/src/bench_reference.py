"""The PyTorch side of `dept bench reference`: the official DePT training step in eager PyTorch.

transformers' T5ForConditionalGeneration (loaded from the model folder dept wrote, safetensors) and a DePT module
written for this bench after the official code (github.com/ZhengxiangShi/DePT, peft/tuners/prompt_tuning_lora.py
and peft/peft_model.py): the word embeddings of inputs padded to s plus scale * (A @ B), the soft prompt in front,
the prompt's positions unmasked; loss from the model; backward; clip_grad_norm_(1.0); torch.optim.AdamW with two
groups (prompt at lr_prompt, A and B at lr_pair; eps 1e-6, weight decay 0), as the official trainer builds it.

dept drives this script through stdin so that the two implementations run interleaved on the same machine at the
same time: each line `step K` runs one training step on batch K and answers `ok <milliseconds> <loss>`; `quit` ends.
Batches and the adapter's starting values come from a safetensors file dept wrote (ids_K, mask_K, labels_K; P, A, B).
"""

import argparse
import sys
import time

import torch
from safetensors.torch import load_file
from transformers import T5ForConditionalGeneration


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", required=True)
    parser.add_argument("--inputs", required=True)
    parser.add_argument("--scale", type=float, required=True)
    parser.add_argument("--dropout", type=int, default=1)
    parser.add_argument("--threads", type=int, default=0)
    parser.add_argument("--lr-prompt", type=float, default=0.3)
    parser.add_argument("--lr-pair", type=float, default=1e-4)
    args = parser.parse_args()
    if args.threads > 0:
        torch.set_num_threads(args.threads)

    model = T5ForConditionalGeneration.from_pretrained(args.model, use_safetensors=True)
    for p in model.parameters():
        p.requires_grad_(False)
    # The official runs keep the frozen backbone's dropout on while training.
    model.train(bool(args.dropout))
    tensors = load_file(args.inputs)
    prompt = torch.nn.Parameter(tensors["P"].clone())
    a = torch.nn.Parameter(tensors["A"].clone()) if "A" in tensors else None
    b = torch.nn.Parameter(tensors["B"].clone()) if "B" in tensors else None
    pair = [p for p in (a, b) if p is not None]
    groups = [{"params": [prompt], "lr": args.lr_prompt}]
    if pair:
        groups.append({"params": pair, "lr": args.lr_pair})
    optimizer = torch.optim.AdamW(groups, eps=1e-6, weight_decay=0.0)
    params = [prompt] + pair

    def step(k):
        ids, mask, labels = tensors[f"ids_{k}"], tensors[f"mask_{k}"], tensors[f"labels_{k}"]
        optimizer.zero_grad()
        embeds = model.shared(ids)
        if a is not None:
            embeds = embeds + args.scale * (a[: ids.shape[1]] @ b)
        batch = ids.shape[0]
        embeds = torch.cat([prompt.unsqueeze(0).expand(batch, -1, -1), embeds], dim=1)
        mask = torch.cat([torch.ones(batch, prompt.shape[0], dtype=mask.dtype), mask], dim=1)
        loss = model(inputs_embeds=embeds, attention_mask=mask, labels=labels).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimizer.step()
        return loss.item()

    print("ready", flush=True)
    for line in sys.stdin:
        words = line.split()
        if not words or words[0] == "quit":
            break
        start = time.perf_counter()
        loss = step(int(words[1]))
        print(f"ok {(time.perf_counter() - start) * 1e3:.3f} {loss:.6f}", flush=True)


if __name__ == "__main__":
    main()
