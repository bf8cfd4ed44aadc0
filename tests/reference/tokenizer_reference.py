"""Reference token ids for tests/tokenizer.rs, from transformers' tokenizers over ../shared/tokenizers.

Requirements (pinned): transformers==4.44.2 sentencepiece==0.2.3 protobuf==7.36.2 (python 3.11). Run from the repository root:
    python tests/reference/tokenizer_reference.py
"""

import json
import os

from transformers import GPT2TokenizerFast, T5TokenizerFast

HERE = os.path.dirname(os.path.abspath(__file__))
SHARED = os.path.join(HERE, "..", "..", "..", "shared", "tokenizers")
TEXTS = [
    "rte sentence1: A man is playing a guitar. sentence2: A person plays music.",
    "Classify this text is postive or not:",
    "double  spaces,\ttabs and Ünïcödé — 123.45",
    "",
]
MAX_LEN = 8


def main():
    out = {"max_len": MAX_LEN, "texts": TEXTS}
    # Built from the original vocabularies (sentencepiece model; vocab.json + merges.txt), not from the
    # tokenizer.json files the Rust side reads, so the two sides share no input file.
    tokenizers = {
        "t5": T5TokenizerFast(vocab_file=os.path.join(SHARED, "t5", "spiece.model"), legacy=True),
        "gpt2": GPT2TokenizerFast(
            vocab_file=os.path.join(SHARED, "gpt2", "vocab.json"),
            merges_file=os.path.join(SHARED, "gpt2", "merges.txt"),
        ),
    }
    for name, tok in tokenizers.items():
        out[name] = {
            "ids": [tok(t)["input_ids"] for t in TEXTS],
            "truncated": [tok(t, max_length=MAX_LEN, truncation=True)["input_ids"] for t in TEXTS],
            "decoded": [tok.decode(tok(t)["input_ids"], skip_special_tokens=True) for t in TEXTS],
        }
    with open(os.path.join(HERE, "tokenizer_golden.json"), "w") as f:
        json.dump(out, f, ensure_ascii=False, indent=1)


if __name__ == "__main__":
    main()
