"""Writes metrics_golden.json: metric values from scikit-learn / scipy / the SQuAD v1.1 normalisation, numpy
permutations (what datasets.Dataset.shuffle(seed) applies) and STS-B target strings, for tests/metrics.rs.

Pinned (see requirements.txt): python 3.11.7, numpy==2.4.6, scipy==1.17.1, scikit-learn==1.9.1.
Run:  python crates/dept-data/tests/reference/metrics_reference.py
The metric calls are the official DePT ones (src/metrics.py), written out here independently of the Rust code.
"""
import json
import os
import re
import string
from collections import Counter

import numpy as np
import scipy.stats
import sklearn.metrics


def f1_with_invalid(preds, targets):
    targets, preds = np.asarray(targets), np.asarray(preds, dtype=object)
    invalid = np.logical_and(preds != "0", preds != "1")
    preds[invalid] = ["0" if t == "1" else "1" for t in targets[invalid]]
    return 100 * sklearn.metrics.f1_score(targets.astype(np.int32), preds.astype(str).astype(np.int32))


def macro_f1(preds, targets):
    # The official code passes labels=range(3) (ints) with string labels; scikit-learn gives the same value as with
    # the string class names used here.
    return 100 * sklearn.metrics.fbeta_score(targets, preds, beta=1, labels=["0", "1", "2"], average="macro", zero_division=0)


def matthews(preds, targets):
    return 100 * sklearn.metrics.matthews_corrcoef(targets, preds)


def to_float(s):
    try:
        return float(s)
    except ValueError:
        return -1.0


def corr(fn, preds, targets):
    v = 100 * fn([to_float(t) for t in targets], [to_float(p) for p in preds])[0]
    return 0.0 if np.isnan(v) else float(v)


def normalize(s):
    s = s.lower()
    s = "".join(ch for ch in s if ch not in set(string.punctuation))
    s = re.sub(r"\b(a|an|the)\b", " ", s)
    return " ".join(s.split())


def f1_tokens(p, g):
    pt, gt = p.split(), g.split()
    same = sum((Counter(pt) & Counter(gt)).values())
    if same == 0:
        return 0.0
    prec, rec = same / len(pt), same / len(gt)
    return 2 * prec * rec / (prec + rec)


def squad(preds, golds):
    em = np.mean([max(float(normalize(p) == normalize(g)) for g in gs) for p, gs in zip(preds, golds)])
    f1 = np.mean([max(f1_tokens(normalize(p), normalize(g)) for g in gs) for p, gs in zip(preds, golds)])
    return 100 * em, 100 * f1


def group_em(preds, targets, groups):
    by = {}
    for p, t, g in zip(preds, targets, groups):
        by.setdefault(g, []).append(p == t)
    return 100 * float(np.mean([all(v) for v in by.values()]))


rng = np.random.default_rng(20240101)
cases = {}

binary_t = [str(x) for x in rng.integers(0, 2, 200)]
binary_p = [str(x) for x in rng.integers(0, 2, 200)]
for i in range(0, 200, 17):
    binary_p[i] = ["2", "yes", "", "1.0"][i % 4]
cases["binary"] = {"targets": binary_t, "predictions": binary_p,
                   "accuracy": 100 * float(np.mean(np.array(binary_p) == np.array(binary_t))),
                   "f1": f1_with_invalid(binary_p, binary_t),
                   "matthews_correlation": matthews(binary_p, binary_t)}

tern_t = [str(x) for x in rng.integers(0, 3, 120)]
tern_p = [str(x) for x in rng.integers(0, 3, 120)]
for i in range(0, 120, 13):
    tern_p[i] = "maybe"
cases["ternary"] = {"targets": tern_t, "predictions": tern_p,
                    "f1_multiclass": macro_f1(tern_p, tern_t),
                    "accuracy": 100 * float(np.mean(np.array(tern_p) == np.array(tern_t)))}
# A class that never appears in predictions or targets (zero division -> 0).
cases["ternary_missing_class"] = {"targets": ["0", "1", "0", "1"], "predictions": ["0", "0", "1", "1"],
                                  "f1_multiclass": macro_f1(["0", "0", "1", "1"], ["0", "1", "0", "1"]),
                                  "accuracy": 50.0}
# Edge cases the official code defines by convention: no positives (F1 0), constant predictions (Matthews 0).
for name, t, p in [("binary_no_positives", ["0"] * 6, ["0"] * 6),
                   ("binary_constant_predictions", ["0", "1", "1", "0", "1"], ["1"] * 5)]:
    cases[name] = {"targets": t, "predictions": p,
                   "accuracy": 100 * float(np.mean(np.array(p) == np.array(t))),
                   "f1": f1_with_invalid(p, t), "matthews_correlation": matthews(p, t)}

sts_t = [str(np.round(x, 1)) for x in rng.uniform(0, 5, 150)]
sts_p = [str(np.round(x, 1)) for x in rng.uniform(0, 5, 150)]
for i in range(0, 150, 11):
    sts_p[i] = "n/a"
sts_p[3] = sts_p[4]  # ties
cases["stsb"] = {"targets": sts_t, "predictions": sts_p,
                 "pearson": corr(scipy.stats.pearsonr, sts_p, sts_t),
                 "spearmanr": corr(scipy.stats.spearmanr, sts_p, sts_t)}
# Constant predictions, NaN / infinite predictions (scipy NaN -> 0, but spearmanr ranks inf) and Python float() syntax.
for name, p in [("stsb_constant", ["2.0"] * 10),
                ("stsb_nan", ["nan", "1.0", "2.5", "0.5", "4.0", "3.0", "1.5", "2.0", "4.5", "3.5"]),
                ("stsb_inf", ["inf", "1.0", "2.5", "0.5", "4.0", "3.0", "1.5", "2.0", "4.5", "3.5"]),
                ("stsb_python_floats", ["1_5", " 2.5 ", "+3", ".5", "1e0", "abc", "4.", "-0", "2_0.5", "5"])]:
    cases[name] = {"targets": sts_t[:10], "predictions": p,
                   "pearson": corr(scipy.stats.pearsonr, p, sts_t[:10]),
                   "spearmanr": corr(scipy.stats.spearmanr, p, sts_t[:10])}

multirc_groups = [f"{i // 5}-{i % 3}" for i in range(60)]
multirc_t = [str(x) for x in rng.integers(0, 2, 60)]
multirc_p = [t if rng.uniform() < 0.8 else ("1" if t == "0" else "0") for t in multirc_t]
cases["multirc"] = {"targets": multirc_t, "predictions": multirc_p, "groups": multirc_groups,
                    "f1": f1_with_invalid(multirc_p, multirc_t),
                    "em": group_em(multirc_p, multirc_t, multirc_groups)}

qa_golds = [["The Eiffel Tower", "Eiffel Tower"], ["1889"], ["Gustave Eiffel's company"], ["an apple, a pear"],
            ["Fran ç ois"], ["New York City"], ["the  cat"], ["$5.00"]]
qa_preds = ["eiffel tower", "in 1889", "Gustave Eiffel", "apple pear", "François", "York", "", "5.00 dollars"]
em, f1 = squad(qa_preds, qa_golds)
em1, f11 = squad(qa_preds, [[g[0]] for g in qa_golds])
cases["squad"] = {"golds": qa_golds, "predictions": qa_preds, "em": em, "f1": f1,
                  "em_first_gold": em1, "f1_first_gold": f11,
                  "normalized": [normalize(p) for p in qa_preds]}

perms = []
for seed in (0, 1, 42, 2**40 + 3):
    for n in (0, 1, 2, 5, 16, 100, 1000):
        perms.append({"seed": seed, "n": n, "perm": np.random.default_rng(seed).permutation(n).tolist()[:40]})
perms.append({"seed": 42, "n": 67349, "head": np.random.default_rng(42).permutation(67349).tolist()[:30]})

# STS-B targets as the official round_stsb_target writes them from the hub's float32 labels.
scores = ["0.000", "0.200", "0.850", "1.250", "2.250", "2.750", "3.800", "3.950", "4.333", "4.667", "5.000", "0.5", "1.05", "2.45"]
stsb = {s: str(np.round((float(np.float32(float(s))) * 5) / 5, decimals=1)) for s in scores}

out = {"versions": {"numpy": np.__version__, "scipy": scipy.__version__, "sklearn": sklearn.__version__},
       "cases": cases, "permutations": perms, "stsb_targets": stsb}
path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "metrics_golden.json")
with open(path, "w") as f:
    json.dump(out, f, separators=(",", ":"))
    f.write("\n")
print("wrote", path)
