"""A real client nobody here wrote: the official `openai` package against `dept serve`.

Lists the models and asks one completion per prompt, printing one JSON line with what the client returned (its
typed objects, read back as plain values). tests/serve_openai.rs compares them with what the adapter decodes alone.
"""

import argparse
import json

import openai


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--base-url", required=True)
    parser.add_argument("--model", required=True)
    parser.add_argument("--prompt", action="append", required=True)
    parser.add_argument("--max-tokens", type=int, required=True)
    args = parser.parse_args()

    client = openai.OpenAI(base_url=args.base_url, api_key="unused", max_retries=0, timeout=60)
    models = client.models.list()
    ids = [m.id for m in models.data]
    texts = []
    for prompt in args.prompt:
        completion = client.completions.create(model=args.model, prompt=prompt, max_tokens=args.max_tokens)
        texts.append({"text": completion.choices[0].text, "finish_reason": completion.choices[0].finish_reason,
                      "completion_tokens": completion.usage.completion_tokens})
    batch = client.completions.create(model=args.model, prompt=args.prompt, max_tokens=args.max_tokens)
    batched = [c.text for c in sorted(batch.choices, key=lambda c: c.index)]
    try:
        client.completions.create(model="no-such-adapter", prompt="x", max_tokens=1)
        missing = None
    except openai.NotFoundError as error:
        missing = error.status_code
    print(json.dumps({"models": ids, "completions": texts, "batched": batched, "missing": missing,
                      "openai": openai.__version__}))


if __name__ == "__main__":
    main()
