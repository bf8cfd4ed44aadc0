"""Golden data for how official DePT turns target text into the *gold strings* it scores against.

Writes tests/reference/decode_golden.json. This script follows the official code (github.com/ZhengxiangShi/DePT,
commit f0266a7) and calls transformers for the real work. It does not copy the official code:

  target text   src/tasks.py:239 (NewsQA; nq/hotpotqa/searchqa are the same at :179/:199/:219):
                answer = pad_punctuation(example['answers'][0]).split("\t"), and
                src/tasks.py:58-59 (seq2seq_format) joins the pieces with ' '. pad_punctuation collapses
                whitespace, so no tab is left: the target is just pad_punctuation(answers[0]), not stripped.
  pad_punctuation  src/tasks.py:942-952, using the `regex` module (src/tasks.py:14). It puts spaces around every
                character that is NOT an underscore, whitespace, \\p{N}, \\p{L} or \\p{M}, then replaces every run
                of whitespace with one space. Note that it does NOT strip: "U.S." -> "U . S . ".
  tokenizer     train.py:511 AutoTokenizer.from_pretrained('t5-base'), with the default use_fast=True, so
                T5TokenizerFast.
  label ids     train.py:325-326: tokenizer(target, max_length=max_target_length, truncation=True). T5 appends
                </s> (id 1) and truncation keeps it, so it is the last of the L ids.
                max_target_length is src/tasks.py:46-49 get_max_target_length: the longest label's token count
                for classification tasks, else training_args.generation_max_length, which defaults to 20
                (train.py:227-228). Used at train.py:520/557/575.
  gold string   src/postprocessors.py:21 puts pad back where labels are -100. :22 calls
                tokenizer.batch_decode(labels, skip_special_tokens=True). :25 strips. Predictions get the same
                treatment at :18 and :24. clean_up_tokenization_spaces is NOT passed, so the transformers default
                applies (True in 4.26.1; see below).

Versions: the official repo has no requirements file. Its checkpoint model cards record what the authors ran:
checkpoints/newsqa/README.md:263 "- Transformers 4.26.1" and :266 "- Tokenizers 0.13.2" (the other checkpoint
READMEs say the same). In transformers 4.26.1, PreTrainedTokenizerBase.batch_decode/decode take
`clean_up_tokenization_spaces: bool = True` (tokenization_utils_base.py:3413/:3446). There is no tokenizer
attribute or init kwarg of that name in this version, so no tokenizer_config.json can change it.
PreTrainedTokenizerFast._decode (tokenization_utils_fast.py:540-558) decodes with the Rust backend and then,
when the flag is set, applies clean_up_tokenization (tokenization_utils_base.py:3519-3541). That is a fixed chain
of str.replace calls, CLEANUP_REPLACEMENTS below; this script checks that it matches on every case.

Requirements (pinned, python 3.11): transformers==4.26.1 tokenizers==0.13.2 sentencepiece regex (no torch).
Run from the repository root:
    python tests/reference/decode_reference.py [--dept-tokenizer-dir DIR]
--dept-tokenizer-dir is optional. It names a folder holding the tokenizer files saved in an official checkpoint
(checkpoints/newsqa/{tokenizer.json,tokenizer_config.json,special_tokens_map.json} plus
checkpoints/hotpotqa/spiece.model). AutoTokenizer.from_pretrained is loaded from that folder, the way train.py:511
loads it, and the script asserts that it gives exactly the same ids and strings as the tokenizer built here.
"""

import argparse
import hashlib
import inspect
import json
import os
import platform
import re as std_re

import regex  # the official pad_punctuation uses `regex` (src/tasks.py:14), for \p{..} classes
import tokenizers
import transformers
from transformers import AutoTokenizer, T5TokenizerFast

HERE = os.path.dirname(os.path.abspath(__file__))
SHARED = os.path.join(HERE, "..", "..", "..", "shared")
TOK_DIR = os.path.join(SHARED, "tokenizers", "t5")
MRQA_FILE = os.path.join(SHARED, "data", "MRQA", "NewsQA_sample.jsonl")
OUT = os.path.join(HERE, "decode_golden.json")

MAX_LENGTHS = [20, 3]  # 20 = generation_max_length default (train.py:227-228); 3 forces truncation
N_MRQA = 40

# transformers 4.26.1 tokenization_utils_base.py:3530-3541: the replacements, applied in this order.
CLEANUP_REPLACEMENTS = [
    (" .", "."), (" ?", "?"), (" !", "!"), (" ,", ","), (" ' ", "'"),
    (" n't", "n't"), (" 'm", "'m"), (" 's", "'s"), (" 've", "'ve"), (" 're", "'re"),
]

FORTY_WORDS = (
    "The committee's final report, released on Tuesday in Geneva, says that about 6,000 workers lost "
    "their jobs when the plant closed, and it warns that many more could follow unless the government "
    "acts quickly to support the region's fragile economy."
)
HAND_PICKED = [
    "don't", "U.S. Army", "Beyoncé", "ŋ and 中文", "it's 5 p.m. , isn't it ?", FORTY_WORDS,
    "0", "1", "3.8",
    # extra: characters missing from the t5 vocab (-> <unk>) and a pre-padded contraction
    "a < b { c } ~ d", "I 'm sure they 're here , aren 't they ?",
]
assert len(FORTY_WORDS.split()) == 40


def pad_punctuation(text):
    """Same behaviour as official src/tasks.py:942-952 (itself a re-implementation of t5's _pad_punctuation)."""
    text = regex.sub(r"([^_\s\p{N}\p{L}\p{M}])", r" \1 ", str(text))
    return regex.sub(r"\s+", " ", text)


def cleanup(s):
    for a, b in CLEANUP_REPLACEMENTS:
        s = s.replace(a, b)
    return s


def mrqa_texts(path, n):
    """Real NewsQA answers first (answers[0], as the official preprocessor uses, src/tasks.py:239), in file
    order. The sample has fewer than n of them, so the list is filled up with sentences taken from the same
    contexts. Sentences with apostrophes, quotes, non-ASCII characters, currency, digits with separators, or
    more than 19 tokens come first, and the order is deterministic."""
    records = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            d = json.loads(line)
            if "header" in d:  # full MRQA files open with a header line; the sample here has none
                continue
            records.append(d)
    out = [("newsqa_answer", q["answers"][0]) for d in records for q in d["qas"]]
    seen = {t for _, t in out}
    cands = []
    for d in records:
        for para in d["context"].split("\n"):
            for sent in std_re.split(r"(?<=[.?!])\s+", para.strip()):
                sent = sent.strip()
                if not sent or len(sent) > 220 or sent in seen:
                    continue
                seen.add(sent)
                score = (
                    2 * any(ord(c) > 127 for c in sent)
                    + 2 * ("'" in sent or '"' in sent)
                    + any(c in "$£/;:()-" for c in sent)
                    + bool(std_re.search(r"\d[.,]\d", sent))
                    + (len(pad_punctuation(sent).split()) > 19)
                )
                cands.append((-score, len(cands), sent))
    cands.sort()
    out += [("newsqa_context_sentence", s) for _, _, s in cands[: max(0, n - len(out))]]
    return out[:n]


def sha256(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def run_cases(tok, texts):
    cases = []
    for source, raw, preprocess in texts:
        text = pad_punctuation(raw) if preprocess == "pad_punctuation" else raw
        full = tok(text)["input_ids"]
        for L in MAX_LENGTHS:
            ids = tok(text, max_length=L, truncation=True)["input_ids"]  # train.py:326
            # postprocessors.py:22 + :25, with the version's default cleanup and with cleanup off
            gold_default = tok.batch_decode([ids], skip_special_tokens=True)[0].strip()
            gold_raw = tok.batch_decode([ids], skip_special_tokens=True, clean_up_tokenization_spaces=False)[0]
            gold_no_cleanup = gold_raw.strip()
            assert gold_default == cleanup(gold_raw).strip(), (text, gold_default, gold_raw)
            cases.append({
                "source": source, "raw": raw, "preprocess": preprocess, "text": text, "max_length": L,
                "truncated": len(full) > L, "has_unk": tok.unk_token_id in ids, "ids": ids,
                "gold_default": gold_default, "gold_no_cleanup": gold_no_cleanup,
            })
    return cases


def decode_cases(tok):
    """Id sequences like those in postprocessors.py:18/:22: generate() output starts with the decoder start
    (pad=0), and label rows are padded with pad (-100 is mapped back to pad at :21). The <unk>, </s>, pad and
    <extra_id_*> ids are all special and dropped. Token 3 is a bare '▁'."""
    e = tok.convert_tokens_to_ids("<extra_id_0>")
    hello = tok("don ' t stop")["input_ids"][:-1]
    seqs = [
        [0] + hello + [1, 0, 0],
        [0, 2] + hello + [2, 1],
        [0, e] + hello + [tok.convert_tokens_to_ids("<extra_id_1>"), 1],
        [0, 3] + hello + [3, 3, 1],
        [0, 1],
        [0, 0, 0],
        hello + [1] + hello,  # text after </s> is kept when specials are skipped
    ]
    rows = []
    for s in seqs:
        rows.append({
            "ids": s,
            "decoded_default": tok.batch_decode([s], skip_special_tokens=True)[0],
            "decoded_no_cleanup": tok.batch_decode([s], skip_special_tokens=True, clean_up_tokenization_spaces=False)[0],
        })
    return rows


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dept-tokenizer-dir", default=None)
    args = ap.parse_args()

    tok_json, spiece = os.path.join(TOK_DIR, "tokenizer.json"), os.path.join(TOK_DIR, "spiece.model")
    tok = T5TokenizerFast(tokenizer_file=tok_json, vocab_file=spiece)
    default_cleanup = inspect.signature(tok.batch_decode).parameters["clean_up_tokenization_spaces"].default
    assert not hasattr(tok, "clean_up_tokenization_spaces") or tok.clean_up_tokenization_spaces == default_cleanup

    texts = [(s, t, "pad_punctuation") for s, t in mrqa_texts(MRQA_FILE, N_MRQA)]
    for t in HAND_PICKED:
        texts.append(("hand_picked", t, "none"))
        texts.append(("hand_picked", t, "pad_punctuation"))
    cases = run_cases(tok, texts)
    decodes = decode_cases(tok)

    cross_checked = False
    if args.dept_tokenizer_dir:
        ref = AutoTokenizer.from_pretrained(args.dept_tokenizer_dir)  # as train.py:511 (use_fast default True)
        assert type(ref).__name__ == "T5TokenizerFast", type(ref)
        assert run_cases(ref, texts) == cases and decode_cases(ref) == decodes
        cross_checked = True

    n_diff = sum(c["gold_default"] != c["gold_no_cleanup"] for c in cases)
    out = {
        "header": {
            "generator": "tests/reference/decode_reference.py",
            "official_repo": "ZhengxiangShi/DePT@f0266a7",
            "pinned_transformers": "4.26.1 (checkpoints/newsqa/README.md:263; no requirements file in the repo)",
            "transformers": transformers.__version__,
            "tokenizers": tokenizers.__version__,
            "python": platform.python_version(),
            "tokenizer_class": type(tok).__name__,
            "tokenizer_json_sha256": sha256(tok_json),
            "spiece_model_sha256": sha256(spiece),
            "cross_checked_with_dept_checkpoint_from_pretrained": cross_checked,
            "skip_special_tokens": True,
            "strip_after_decode": True,
            "clean_up_tokenization_spaces_default": default_cleanup,
            "cleanup_replacements_in_order": CLEANUP_REPLACEMENTS,
            "all_special_ids": sorted(tok.all_special_ids),
            "max_lengths": MAX_LENGTHS,
            "label_call": "tokenizer(text, max_length=L, truncation=True)['input_ids']",
            "gold_default": "batch_decode(ids, skip_special_tokens=True)[0].strip()",
            "gold_no_cleanup": "batch_decode(ids, skip_special_tokens=True, clean_up_tokenization_spaces=False)[0].strip()",
            "preprocess": "pad_punctuation = official src/tasks.py:942-952; 'none' = text used as is",
            "n_cases": len(cases),
            "n_cases_cleanup_differs": n_diff,
        },
        "cases": cases,
        "decode_cases": decodes,
    }
    with open(OUT, "w", encoding="utf-8") as f:
        json.dump(out, f, ensure_ascii=False, indent=None, separators=(",", ":"))
        f.write("\n")
    print(f"wrote {OUT}: {len(cases)} cases, {n_diff} differ with cleanup, {os.path.getsize(OUT)} bytes")


if __name__ == "__main__":
    main()
