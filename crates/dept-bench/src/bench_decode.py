"""The Python side of `dept bench decode`: transformers' `generate`, greedy or beam search, on DePT inputs.

The model folder and adapter dept wrote, the adapter applied as the official DePT code does and as `bench_serve.py`
applies it (its `Engine`, imported from the same folder), then `generate(inputs_embeds=..., num_beams=k)` with
transformers' defaults for everything else (length_penalty 1.0, early_stopping False, no n-gram rule), as dept's
`GenerationConfig::beams` takes them.

`--workload` (JSON): {"max_new_tokens": n, "configs": [{"batch": B, "beams": k, "batches": [[ids, ...], ...]}]}.
Every batch of every config runs once, in order; `--out` gets one JSON line per batch: {"batch", "beams", "index",
"ms", "tokens"} (each row's tokens cut after its first end of sequence). dept times the same batches and skips the
same warm-up ones; this script times them all and leaves the choice to it.
"""

import argparse
import json
import sys
import time
from pathlib import Path

import torch

from bench_serve import Engine, InputError, Request, load_adapter, load_model


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, help="Hugging Face folder (config.json, model.safetensors)")
    parser.add_argument("--adapter", required=True, help="a dept adapter folder")
    parser.add_argument("--workload", required=True, help="the batches (see the module docstring)")
    parser.add_argument("--threads", type=int, default=0, help="torch.set_num_threads (0: torch's default)")
    parser.add_argument("--out", required=True, help="JSON lines, one per batch")
    args = parser.parse_args()
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    try:
        model = load_model(args.model)
        adapter = load_adapter(Path(args.adapter), model.get_input_embeddings().embedding_dim)
        workload = json.loads(Path(args.workload).read_text())
        max_new_tokens = int(workload["max_new_tokens"])
        configs = workload["configs"]
    except (InputError, OSError, ValueError, KeyError) as e:
        sys.exit(f"bench_decode: {e}")
    engine = Engine(model, {adapter.name: adapter})
    with torch.inference_mode(), open(args.out, "w") as out:
        for config in configs:
            for index, rows in enumerate(config["batches"]):
                requests = [Request(adapter.name, row, max_new_tokens) for row in rows]
                start = time.perf_counter()
                tokens = engine.decode(adapter.name, requests, num_beams=int(config["beams"]))
                ms = (time.perf_counter() - start) * 1e3
                line = {"batch": config["batch"], "beams": config["beams"], "index": index, "ms": ms, "tokens": tokens}
                out.write(json.dumps(line) + "\n")


if __name__ == "__main__":
    main()
