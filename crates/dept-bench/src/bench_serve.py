"""The Python side of `dept bench serve`, its (d): serving DePT and PT adapters the way a transformers user can today.

One frozen backbone from the model folder dept wrote (safetensors; T5ForConditionalGeneration, or
AutoModelForCausalLM for GPT-2 and Llama) and every adapter folder below `--adapters`. transformers' `generate`
takes one set of input embeddings, so a batch can hold one adapter only: the adapter is applied to the whole batch as
the official DePT code does (github.com/ZhengxiangShi/DePT, peft/peft_model.py and peft/tuners/prompt_tuning_lora.py):
the word embeddings of the ids plus scale * (A @ B) position by position, the soft prompt in front with mask ones,
then `generate(inputs_embeds=..., attention_mask=...)`, greedy. T5's inputs are right-padded and position p is
column p; GPT-2's and Llama's are left-padded for decoding and a token's position for A is its index among the real
tokens of its row, as dept's `Architecture::apply_adapter` defines it, so that padding changes nothing. transformers
then gives the decoder-only model position ids cumsum(mask) - 1 (1 at padding), the same numbers as dept's
`generate_greedy`.

Scheduling is a closed loop of `--concurrency` clients, simulated deterministically in this one process: the first
C requests of the workload are pending from the start; the oldest pending request picks the adapter, up to
`--max-batch` pending requests of that adapter (oldest first) run as one `generate`, and each request it finishes
frees its client, whose next request (the next unsent one of the workload) arrives at that moment. The order of
batches depends on the workload, C and B alone, never on timings, so dept's side can replay it; wall-clock times give
the latencies and the throughput.

Output (`--out`, JSON lines): per request in workload order `{"index", "tokens", "latency_ms"}`, tokens being the
greedy ids cut at the request's max_new_tokens and after its first end-of-sequence; then `{"summary": {"seconds",
"requests", "tokens", "batches"}}`, seconds from the first batch to the last (loading and one warm-up generate
excluded). `--check` also decodes every request alone and fails, naming each request that differs, unless it gets
the same tokens as in its scheduled batch.
"""

import argparse
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file
from transformers import AutoConfig, AutoModelForCausalLM, GenerationConfig, T5ForConditionalGeneration

PROMPT_KEY = "prompt_embeddings"
LORA_A_KEY = "prompt_encoder.lora_embedding_A"
LORA_B_KEY = "prompt_encoder.lora_embedding_B"


class InputError(Exception):
    """Bad input (a file, a field, a value), reported in one line naming it."""


@dataclass
class Adapter:
    name: str
    prompt: torch.Tensor  # [m, d]
    pair: Optional[tuple]  # (A [s, r], B [r, d]); None for PT
    scale: float  # lora_alpha / sqrt(r), as dept's DeptConfig::scale() and the official code

    @property
    def max_length(self):
        return None if self.pair is None else self.pair[0].shape[0]


@dataclass
class Request:
    adapter: str
    input_ids: list
    max_new_tokens: int


@dataclass
class Result:
    tokens: list
    latency_ms: float


def load_adapter(folder, d):
    config_path = folder / "adapter_config.json"
    try:
        config = json.loads(config_path.read_text())
        tensors = load_file(folder / "adapter_model.safetensors")
    except (OSError, ValueError, SafetensorError) as e:
        raise InputError(f"{folder}: not a dept adapter folder: {e}") from e
    r = int(config.get("r", 0))
    prompt = tensors.get(PROMPT_KEY)
    if prompt is None or prompt.dim() != 2 or prompt.shape[1] != d:
        shape = None if prompt is None else list(prompt.shape)
        raise InputError(f"{folder}: {PROMPT_KEY} is {shape}, expected [m, d = {d}] (the backbone's width)")
    pair = None
    if r > 0:
        a, b = tensors.get(LORA_A_KEY), tensors.get(LORA_B_KEY)
        if a is None or b is None or a.dim() != 2 or a.shape[1] != r or list(b.shape) != [r, d]:
            raise InputError(f"{folder}: r = {r} needs {LORA_A_KEY} [s, {r}] and {LORA_B_KEY} [{r}, {d}]")
        pair = (a.float(), b.float())
    scale = float(config.get("lora_alpha", 8.0)) / r**0.5 if r > 0 else 0.0
    return Adapter(folder.name, prompt.float(), pair, scale)


def load_adapters(root, d):
    folders = sorted(p.parent for p in Path(root).glob("*/adapter_config.json"))
    if not folders:
        raise InputError(f"{root}: no adapter folders (sub-folders with adapter_config.json)")
    return {folder.name: load_adapter(folder, d) for folder in folders}


def load_workload(path, adapters, vocab_size):
    requests = []
    with open(path) as f:
        for number, line in enumerate(f, 1):
            if not line.strip():
                continue
            where = f"{path}:{number}"
            try:
                fields = json.loads(line)
                ids = [int(t) for t in fields["input_ids"]]
                request = Request(fields["adapter"], ids, int(fields["max_new_tokens"]))
            except (ValueError, KeyError, TypeError) as e:
                raise InputError(f"{where}: expected {{adapter, input_ids, max_new_tokens}}: {e!r}") from e
            check_request(where, request, adapters, vocab_size)
            requests.append(request)
    if not requests:
        raise InputError(f"{path}: no requests")
    return requests


def check_request(where, request, adapters, vocab_size):
    adapter = adapters.get(request.adapter)
    if adapter is None:
        raise InputError(f"{where}: unknown adapter {request.adapter!r}; known: {', '.join(sorted(adapters))}")
    if not request.input_ids or request.max_new_tokens <= 0:
        raise InputError(f"{where}: needs at least one input id and max_new_tokens > 0")
    outside = [t for t in request.input_ids if not 0 <= t < vocab_size]
    if outside:
        raise InputError(f"{where}: input ids {outside} are outside the vocabulary [0, {vocab_size})")
    s = adapter.max_length
    if s is not None and len(request.input_ids) > s:
        raise InputError(
            f"{where}: input of {len(request.input_ids)} tokens is longer than max_length s = {s} of adapter "
            f"{adapter.name!r}"
        )


def load_model(folder):
    try:
        config = AutoConfig.from_pretrained(folder)
        family = T5ForConditionalGeneration if config.model_type == "t5" else AutoModelForCausalLM
        model = family.from_pretrained(folder, use_safetensors=True).eval()
    except (OSError, ValueError) as e:
        raise InputError(f"{folder}: not a model folder transformers can load: {e}") from e
    eos = config.eos_token_id
    pad = config.pad_token_id if config.pad_token_id is not None else eos
    # Only greedy decoding, whatever defaults the folder's config would otherwise bring to generate.
    model.generation_config = GenerationConfig(
        do_sample=False,
        num_beams=1,
        eos_token_id=eos,
        pad_token_id=pad,
        decoder_start_token_id=config.decoder_start_token_id if config.is_encoder_decoder else None,
    )
    return model


class Engine:
    """One backbone decoding batches of one adapter each."""

    def __init__(self, model, adapters):
        self.model = model
        self.adapters = adapters
        self.encoder_decoder = model.config.is_encoder_decoder
        self.eos = model.generation_config.eos_token_id
        self.pad = model.generation_config.pad_token_id
        self.embed = model.get_input_embeddings()

    def decode(self, adapter_name, requests, **generate):
        """Each request's tokens (greedy unless `generate` asks for beams), cut at its max_new_tokens and after its
        first end-of-sequence."""
        embeds, mask = self.prompted_inputs(self.adapters[adapter_name], [r.input_ids for r in requests])
        longest = max(r.max_new_tokens for r in requests)
        out = self.model.generate(inputs_embeds=embeds, attention_mask=mask, max_new_tokens=longest, **generate)
        if self.encoder_decoder:
            out = out[:, 1:]  # the decoder start token
        return [cut(row, r.max_new_tokens, self.eos) for row, r in zip(out.tolist(), requests)]

    def prompted_inputs(self, adapter, rows):
        """`([b, m + len, d], [b, m + len])`: the adapter's prompt in front of the updated word embeddings."""
        m = adapter.prompt.shape[0]
        width = max(len(row) for row in rows)
        left = not self.encoder_decoder
        if left:
            # transformers 4.57.1 feeds a decoder-only model's inputs_embeds again at every step when they are one
            # column long (huggingface/transformers#41863); a masked padding column avoids it and changes nothing.
            width = max(width, 2 - m)
        ids = torch.tensor([padded(row, width, self.pad, left) for row in rows])
        mask = torch.tensor([padded([1] * len(row), width, 0, left) for row in rows])
        embeds = self.embed(ids)
        if adapter.pair is not None:
            embeds = embeds + self.update(adapter, mask)
        batch = len(rows)
        prompt = adapter.prompt.unsqueeze(0).expand(batch, m, -1)
        prompt_mask = torch.ones(batch, m, dtype=mask.dtype)
        return torch.cat([prompt, embeds], 1), torch.cat([prompt_mask, mask], 1)

    def update(self, adapter, mask):
        """scale * (A @ B) at each token's position, computed as dept's DecomposedPrompt::apply / apply_at do."""
        a, b = adapter.pair
        if self.encoder_decoder:
            return a[: mask.shape[1]] @ b * adapter.scale
        positions = (mask.cumsum(1) - 1).masked_fill(mask == 0, 0)
        return a[positions] @ b * adapter.scale * mask.unsqueeze(-1).to(b.dtype)


def padded(row, width, pad, left):
    fill = [pad] * (width - len(row))
    return fill + row if left else row + fill


def cut(tokens, max_new_tokens, eos):
    tokens = tokens[:max_new_tokens]
    return tokens[: tokens.index(eos) + 1] if eos in tokens else tokens


def serve(engine, workload, concurrency, max_batch):
    """The closed loop of the module docstring: `(results in workload order, seconds, batches)`."""
    start = time.perf_counter()
    unsent = min(concurrency, len(workload))
    pending = list(range(unsent))  # oldest first: arrivals only grow, ties in workload order
    arrival = dict.fromkeys(pending, start)
    results = [None] * len(workload)
    batches = 0
    while pending:
        adapter = workload[pending[0]].adapter
        batch = [i for i in pending if workload[i].adapter == adapter][:max_batch]
        tokens = engine.decode(adapter, [workload[i] for i in batch])
        now = time.perf_counter()
        batches += 1
        done = set(batch)
        pending = [i for i in pending if i not in done]
        for i, row in zip(batch, tokens):
            results[i] = Result(row, (now - arrival[i]) * 1e3)
            if unsent < len(workload):
                pending.append(unsent)
                arrival[unsent] = now
                unsent += 1
    return results, time.perf_counter() - start, batches


def check_alone(engine, workload, results):
    """Indices whose tokens decoded alone differ from their scheduled batch's, each reported on stderr."""
    differing = []
    for i, request in enumerate(workload):
        alone = engine.decode(request.adapter, [request])[0]
        if alone != results[i].tokens:
            differing.append(i)
            print(
                f"check: request {i} (adapter {request.adapter!r}) alone {alone} != batched {results[i].tokens}",
                file=sys.stderr,
            )
    return differing


def write_out(path, results, seconds, batches):
    with open(path, "w") as f:
        for i, result in enumerate(results):
            f.write(json.dumps({"index": i, "tokens": result.tokens, "latency_ms": round(result.latency_ms, 3)}) + "\n")
        tokens = sum(len(r.tokens) for r in results)
        summary = {"seconds": seconds, "requests": len(results), "tokens": tokens, "batches": batches}
        f.write(json.dumps({"summary": summary}) + "\n")


def positive(text):
    value = int(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {value}")
    return value


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, help="Hugging Face folder (config.json, model.safetensors)")
    parser.add_argument("--adapters", required=True, help="folder whose sub-folders are dept adapter folders")
    parser.add_argument("--workload", required=True, help="JSON lines {adapter, input_ids, max_new_tokens}")
    parser.add_argument("--concurrency", type=positive, required=True, help="clients of the closed loop")
    parser.add_argument("--max-batch", type=positive, required=True, help="most requests in one generate")
    parser.add_argument("--threads", type=int, default=0, help="torch.set_num_threads (0: torch's default)")
    parser.add_argument("--out", required=True, help="JSON lines: one per request, then the summary")
    parser.add_argument("--check", action="store_true", help="also decode each request alone; fail on a difference")
    return parser.parse_args()


def main():
    args = parse_args()
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    try:
        model = load_model(args.model)
        embed = model.get_input_embeddings()
        engine = Engine(model, load_adapters(args.adapters, embed.embedding_dim))
        workload = load_workload(args.workload, engine.adapters, embed.num_embeddings)
    except InputError as e:
        sys.exit(f"bench_serve: {e}")
    with torch.inference_mode():
        engine.decode(workload[0].adapter, workload[:1])  # warm-up, outside the timed run
        results, seconds, batches = serve(engine, workload, args.concurrency, args.max_batch)
        write_out(args.out, results, seconds, batches)
        if args.check:
            differing = check_alone(engine, workload, results)
            if differing:
                sys.exit(f"check FAILED: {len(differing)} of {len(workload)} requests decode differently alone")
            print(f"check: all {len(workload)} requests decode the same alone as in their {batches} batches")


if __name__ == "__main__":
    main()
