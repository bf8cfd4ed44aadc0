"""Goldens for reading the official DePT code's adapter_model.bin (a torch.save zip archive) without unpickling it.

Writes into tests/reference/official/:

  golden.json      for each of the five adapters the official repository released (../shared/official-checkpoints,
                   github.com/ZhengxiangShi/DePT checkpoints/, MIT), what torch.load(weights_only=True) reads: every
                   tensor's name, dtype, shape, the SHA-256 of its contiguous little-endian bytes, and its sum. The
                   files themselves are not copied into the project.
  views.bin        a state dict as nn.Module.state_dict() returns it (an OrderedDict with _metadata), with tensors
                   that are views: a transposed one, two sharing one storage at different offsets, a bfloat16 and
                   an int64 one; views.json holds their values as torch.load reads them.
  evil.bin         a torch.save archive whose pickle calls os.system through __reduce__ (the classic pickle
                   exploit). It is only data: the reader under test must refuse it naming the global, without
                   running anything; torch.load(weights_only=True) refuses it too (checked below).

Run with the bench venv's python (torch 2.11): python tests/reference/official_reference.py [SHARED_DIR]
"""

import collections
import hashlib
import json
import os
import pathlib
import sys

import torch

HERE = pathlib.Path(__file__).resolve().parent
OUT = HERE / "official"
SHARED = pathlib.Path(sys.argv[1]) if len(sys.argv) > 1 else HERE.parents[2] / "shared"
FOLDERS = ["cola", "sst2", "superglue-wic", "nq", "hotpotqa"]


def describe(tensor):
    tensor = tensor.contiguous()
    raw = tensor.view(torch.uint8).numpy().tobytes() if tensor.numel() else b""
    return {
        "dtype": str(tensor.dtype).removeprefix("torch."),
        "shape": list(tensor.shape),
        "sha256": hashlib.sha256(raw).hexdigest(),
        "sum": float(tensor.double().sum()),
    }


def released():
    golden = {}
    for folder in FOLDERS:
        path = SHARED / "official-checkpoints" / folder / "adapter_model.bin"
        state = torch.load(path, map_location="cpu", weights_only=True)
        golden[folder] = {name: describe(t) for name, t in state.items()}
    return golden


def views():
    base = torch.arange(24, dtype=torch.float32).reshape(4, 6) / 8
    state = collections.OrderedDict()
    state["transposed"] = base.t()  # stride (1, 6): not contiguous
    flat = torch.arange(10, dtype=torch.float32) - 4.5
    state["head"] = flat[:4]  # both views of one storage
    state["tail"] = flat[6:].reshape(2, 2)  # storage offset 6
    state["bf16"] = torch.tensor([[1.5, -2.25], [3.0, 0.125]], dtype=torch.bfloat16)
    state["steps"] = torch.tensor([3, -1, 1 << 40], dtype=torch.int64)
    state["scalar"] = torch.tensor(2.5)
    state._metadata = collections.OrderedDict({"": {"version": 1}})
    torch.save(state, OUT / "views.bin")
    values = {
        name: {"dtype": str(t.dtype).removeprefix("torch."), "shape": list(t.shape), "values": t.double().flatten().tolist()}
        for name, t in state.items()
    }
    (OUT / "views.json").write_text(json.dumps(values, indent=1) + "\n")


class Evil:
    def __reduce__(self):
        return (os.system, ("echo this must never run",))


def evil():
    path = OUT / "evil.bin"
    torch.save({"prompt_embeddings": torch.zeros(2, 2), "payload": Evil()}, path)
    try:
        torch.load(path, weights_only=True)
    except Exception as refused:  # torch's own restricted loader refuses it too
        print("torch.load(weights_only=True) refuses evil.bin:", type(refused).__name__)
    else:
        raise SystemExit("torch.load(weights_only=True) accepted evil.bin")


def main():
    OUT.mkdir(exist_ok=True)
    (OUT / "golden.json").write_text(json.dumps(released(), indent=1, sort_keys=True) + "\n")
    views()
    evil()
    print("wrote", OUT)


if __name__ == "__main__":
    main()
