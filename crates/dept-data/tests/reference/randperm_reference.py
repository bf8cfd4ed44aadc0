"""Writes randperm_torch.json: torch.randperm(n, generator=manual_seed(seed)) on the CPU.

Pinned: python 3.11, torch==2.4.1 (CPU generator; the result does not depend on CUDA).
Run:  /root/.cache/dept/torch-2.4.1/bin/python crates/dept-data/tests/reference/randperm_reference.py
The Rust test tests/randperm.rs compares crates/dept-data/src/randperm.rs against this file.
For large n only the head, the tail and a position-weighted checksum are stored, to keep the file small.
"""
import json
import os

import torch

CASES = [(seed, n) for seed in (0, 1, 42, 1234, 2**32 + 5) for n in (0, 1, 2, 3, 10, 52, 277, 1043)]
# Sizes of real splits: cola val, sst2 train, multirc val, qnli train, yelp train, and a > 2^24 size is out of scope.
CASES += [(42, n) for n in (4848, 67349, 104743, 363846, 560000)]

out = []
for seed, n in CASES:
    g = torch.Generator()
    g.manual_seed(seed)
    perm = torch.randperm(n, generator=g).tolist()
    row = {"seed": seed, "n": n, "torch": torch.__version__}
    if n <= 52:
        row["perm"] = perm
    else:
        row["head"] = perm[:20]
        row["tail"] = perm[-20:]
        row["checksum"] = str(sum((i + 1) * p for i, p in enumerate(perm)) % (2**61 - 1))
    out.append(row)

path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "randperm_torch.json")
with open(path, "w") as f:
    json.dump(out, f, separators=(",", ":"))
    f.write("\n")
print("wrote", path, len(out), "cases")
