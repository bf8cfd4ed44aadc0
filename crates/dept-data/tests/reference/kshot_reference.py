"""Golden k-shot selections, drawn the way the official DePT code draws them.

The official `train.py` (github.com/ZhengxiangShi/DePT, lines 530-546 at f0266a7) picks a k-shot training set
from the formatted training split like this:
  1. shuffle the split with `datasets.Dataset.shuffle(seed=training_args.seed)`;
  2. walk the shuffled rows in order; take a row while its label's count is below `k // num_classes`, or when
     exactly one slot is left (then any label is taken); stop once k rows are taken;
  3. `shuffled.select(taken)`: the result is in shuffled order.
This script runs step 1 with the real `datasets` library (the part a re-implementation could get wrong: which
numpy generator and how it is seeded) and steps 2-3 as described, on the real RTE and CB training files.

Run (from the repository root; ../shared must exist):
  python3 -m venv /tmp/kshot-venv && /tmp/kshot-venv/bin/pip install -r crates/dept-data/tests/reference/requirements-kshot.txt
  /tmp/kshot-venv/bin/python crates/dept-data/tests/reference/kshot_reference.py ../shared/data
It writes crates/dept-data/tests/reference/kshot_golden.json: for each case, the selected rows as indices into the
training split (file order).
"""

import csv
import json
import os
import sys

import datasets

# HF `glue/rte` and `super_glue/cb` label ids, which the official formatter turns into the target strings.
RTE_LABELS = {"entailment": "0", "not_entailment": "1"}
CB_LABELS = {"entailment": "0", "contradiction": "1", "neutral": "2"}


def rte_targets(data_dir):
    with open(os.path.join(data_dir, "RTE", "train.tsv"), newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE))
    return [RTE_LABELS[r[3]] for r in rows[1:]]


def cb_targets(data_dir):
    with open(os.path.join(data_dir, "SuperGLUE-CB", "train.jsonl"), encoding="utf-8") as f:
        return [CB_LABELS[json.loads(line)["label"]] for line in f if line.strip()]


def k_shot(targets, classes, k, seed):
    dataset = datasets.Dataset.from_dict({"row": list(range(len(targets))), "target": targets})
    shuffled = dataset.shuffle(seed=seed)
    per_class = k // len(classes)
    counts = {c: 0 for c in classes}
    taken = []
    for i, example in enumerate(shuffled):
        if sum(counts.values()) == k:
            break
        label = example["target"]
        if counts[label] < per_class or sum(counts.values()) == k - 1:
            counts[label] += 1
            taken.append(i)
    return list(shuffled.select(taken)["row"])


def main():
    data_dir = sys.argv[1] if len(sys.argv) > 1 else "../shared/data"
    cases = []
    for task, targets, classes in [
        ("rte", rte_targets(data_dir), ["0", "1"]),
        ("cb", cb_targets(data_dir), ["0", "1", "2"]),
    ]:
        for k in (4, 16, 32):
            for seed in (42, 0, 1):
                cases.append({"task": task, "k": k, "seed": seed, "rows": k_shot(targets, classes, k, seed)})
    out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "kshot_golden.json")
    with open(out, "w", encoding="utf-8") as f:
        json.dump({"generator": "kshot_reference.py", "datasets": datasets.__version__, "cases": cases}, f)
        f.write("\n")
    print(f"wrote {len(cases)} cases to {out}")


if __name__ == "__main__":
    main()
