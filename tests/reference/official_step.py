"""Ground truth for the DePT bench: the OFFICIAL DePT code's training step (github.com/ZhengxiangShi/DePT).

The official `peft/` fork is imported unmodified from --official-code, a checkout of the official repository (or
the folders `git archive HEAD peft src train.py` gives; checked at its commit f0266a7). It is not part of this
project: get it with `git clone https://github.com/ZhengxiangShi/DePT`. Nothing of the official logic is re-implemented except what the official code takes from the
transformers library of its time (the AdamW class and the HF Trainer's step loop), see below.

What is built, and from where (line numbers of the official files at f0266a7):
  * model: T5ForConditionalGeneration.from_pretrained(--model) (train.py:471 uses AutoModelForSeq2SeqLM, same class).
  * config: PromptTuningLoRAConfig(task_type=SEQ_2_SEQ_LM, prompt_tuning_init=RANDOM, num_virtual_tokens=m,
    num_transformer_submodules=1, r=r, token_dim=d_model, max_length=s, save_lora_embeddings=True, plus the
    tokenizer/init-text fields, unused with RANDOM) exactly as train.py:495-506; lora_alpha is NOT passed by
    train.py, so it is the dataclass default 8 (peft/tuners/prompt_tuning_lora.py:62) and the scaling is
    lora_alpha / sqrt(r) (prompt_tuning_lora.py:136), i.e. 8/sqrt(30) = 1.4606 for r = 30. Then
    get_peft_model(model, config) (train.py:507) -> PeftModelForSeq2SeqLM.
    NB the official runs use text init (train.py:198 `text_init` defaults True and the README never turns it off);
    here the prompt is RANDOM-initialised (as dept bench reference does) and in any case overwritten by P when given.
  * adapter parameters (names as in model.named_parameters(), cf. train.py:601):
      P -> prompt_encoder.default.embedding.weight   (m x d)   nn.Embedding, prompt_tuning_lora.py:129
      A -> prompt_encoder.default.lora_embedding_A   (s x r)   prompt_tuning_lora.py:131, kaiming_uniform (l.138)
      B -> prompt_encoder.default.lora_embedding_B   (r x d)   prompt_tuning_lora.py:132, zeros (l.139)
    If the inputs file holds P / A / B, they are copied into these parameters before the first step.
  * forward: PeftModelForSeq2SeqLM.forward, PROMPT_TUNING_LORA branch (peft/peft_model.py:1074-1094):
      inputs_embeds = shared(input_ids); inputs_embeds += scaling * (A @ B).repeat(batch, 1, 1)   (the FULL A, so
      the inputs must be padded to exactly s = max_length); mask = cat(ones(batch, m), attention_mask);
      inputs_embeds = cat(prompt, inputs_embeds); base_model(inputs_embeds=..., attention_mask=..., labels=...).
  * optimizer: `from transformers import AdamW` (train.py:13-14) with two groups, train.py:595-611:
      AdamW([{'params': non_lora_embedding}, {'params': lora_embedding, 'lr': lora_embedding_lr}],
            lr=learning_rate)
    where lora_embedding = [lora_embedding_A, lora_embedding_B] and non_lora_embedding = EVERY other parameter of
    the PeftModel (the prompt plus the frozen T5 weights, which never get a .grad and are skipped by the optimizer).
    Everything else is transformers.AdamW's default: betas (0.9, 0.999), eps 1e-6, weight_decay 0.0,
    correct_bias True. (The README's `--weight_decay 1e-5` only reaches TrainingArguments, which the Trainer does
    not use for an optimizer passed in through optimizers=(optimizer, scheduler), train.py:646.)
    learning_rate = --lr-prompt (0.3), lora_embedding_lr = --lr-pair (1e-4).
  * scheduler: train.py:613-615 builds get_linear_schedule_with_warmup(warmup_steps, max_steps). Off by default
    here (constant lr, as dept's bench_reference.py); --schedule-warmup/--schedule-total turn it on, and then its
    .step() runs after optimizer.step() inside the timed region as in the Trainer.
  * the step itself: src/trainer.py only overrides prediction_step (src/trainer.py:16-119), so training is the
    stock HF Seq2SeqTrainer/Trainer loop: model.train() and loss = model(**inputs).loss (training_step),
    loss.backward(), clip_grad_norm_(model.parameters(), args.max_grad_norm) with TrainingArguments' default
    max_grad_norm = 1.0 (the README passes no --max_grad_norm), optimizer.step(), lr_scheduler.step(),
    model.zero_grad(). (In the installed transformers 4.57.1: trainer.py:2697-2718 clipping via
    accelerator.clip_grad_norm_(model.parameters(), args.max_grad_norm), 2740 optimizer.step(), 2750
    lr_scheduler.step(), 2752 model.zero_grad(), 4010 model.train() in training_step; training_args.py:920
    max_grad_norm default 1.0.)
    The inputs are what default_data_collator gives (train.py:642): input_ids, attention_mask, labels.

Shims (nothing in the official files is edited):
  1. `accelerate` is not installed in the bench venv; peft/peft_model.py:23-25 imports dispatch_model,
     infer_auto_device_map, accelerate.hooks.{AlignDevicesHook, add_hook_to_module, remove_hook_from_submodules}
     and accelerate.utils.get_balanced_memory at module level. They are only used for multi-device dispatch /
     loading pretrained adapters, never on this path, so a stub module whose functions raise is put in
     sys.modules (only when the real accelerate cannot be imported). transformers itself is imported first,
     because at import it probes importlib.util.find_spec("accelerate"), which raises on a spec-less stub.
  2. transformers 4.57.1 no longer has transformers.AdamW (deprecated, then removed). HfAdamW below is
     transformers' old AdamW.step (transformers/optimization.py of the v4.2x-v4.4x era, correct_bias=True) written out
     line by line: m = b1 m + (1-b1) g; v = b2 v + (1-b2) g^2; denom = sqrt(v) + eps (eps added to the
     UNcorrected sqrt(v), unlike torch.optim.AdamW); step_size = lr * sqrt(1-b2^t) / (1-b1^t);
     p -= step_size * m / denom; then decoupled weight decay p -= lr * wd * p if wd > 0.
  3. train.py and src/trainer.py are not imported (they need datasets/src.tasks, and src/trainer.py:9 imports
     transformers.deepspeed, gone from modern transformers); their step is reproduced as described above.

Timing: each step = forward + backward + clip + optimizer.step (+ scheduler.step) + zero_grad, measured with
time.perf_counter; --warmup W untimed steps, then --steps N timed ones; step k uses batch k mod K (K batches in
the file). Output: one JSON line per timed step {"step": k, "ms": ..., "loss": ...}, then a summary JSON line.

--check-against-dept-module (needs --dropout 0): after the timed steps, runs dept's bench_reference.py
(--dept-module, default crates/dept-bench/src/bench_reference.py of this repository, run unmodified as a subprocess, as
dept runs it) on the same model, the same first batches and the same initial P, A, B, with --scale set to the
official scaling (lora_alpha/sqrt(r)), and prints the official and the dept loss of the first batch and their
relative difference, plus the worst relative difference over the first min(W+N, K) steps (same optimizer
updates on both sides).

Example: `dept bench reference --keep-inputs kept …` leaves its random model (Hugging Face layout) and the inputs
of its PyTorch side (P, A, B, ids_K / mask_K / labels_K padded to s) in kept/<shape>/; then
  python3 tests/reference/official_step.py --official-code ../DePT --model kept/t5-small/model \
      --inputs kept/t5-small/inputs.safetensors --threads 2 --warmup 1 --steps 10
  python3 tests/reference/official_step.py --official-code ../DePT --model kept/t5-small/model \
      --inputs kept/t5-small/inputs.safetensors --threads 2 --dropout 0 --steps 3 --check-against-dept-module
"""

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
import types

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
DEPT_MODULE = os.path.join(HERE, "..", "..", "crates", "dept-bench", "src", "bench_reference.py")


def install_accelerate_stub():
    """Shim 1: a stand-in for `accelerate`, whose names peft_model.py imports but never calls on this path."""
    try:
        import accelerate  # noqa: F401

        return False
    except ImportError:
        pass

    def unavailable(name):
        def f(*args, **kwargs):
            raise RuntimeError(f"accelerate.{name} is a stub in official_step.py (accelerate is not installed)")

        return f

    root = types.ModuleType("accelerate")
    hooks = types.ModuleType("accelerate.hooks")
    utils = types.ModuleType("accelerate.utils")
    for name in ("dispatch_model", "infer_auto_device_map"):
        setattr(root, name, unavailable(name))
    for name in ("add_hook_to_module", "remove_hook_from_submodules"):
        setattr(hooks, name, unavailable("hooks." + name))

    class AlignDevicesHook:  # only referenced in isinstance-free code paths of device dispatch
        def __init__(self, *a, **k):
            raise RuntimeError("accelerate.hooks.AlignDevicesHook is a stub in official_step.py")

    hooks.AlignDevicesHook = AlignDevicesHook
    utils.get_balanced_memory = unavailable("utils.get_balanced_memory")
    root.hooks, root.utils = hooks, utils
    sys.modules.update({"accelerate": root, "accelerate.hooks": hooks, "accelerate.utils": utils})
    return True


class HfAdamW(torch.optim.Optimizer):
    """Shim 2: transformers.AdamW (the old, removed class) with its defaults, as train.py:608-611 builds it."""

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-6, weight_decay=0.0, correct_bias=True):
        defaults = dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, correct_bias=correct_bias)
        super().__init__(params, defaults)

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                grad = p.grad
                if grad.is_sparse:
                    raise RuntimeError("Adam does not support sparse gradients, please consider SparseAdam instead")
                state = self.state[p]
                if len(state) == 0:
                    state["step"] = 0
                    state["exp_avg"] = torch.zeros_like(p)
                    state["exp_avg_sq"] = torch.zeros_like(p)
                exp_avg, exp_avg_sq = state["exp_avg"], state["exp_avg_sq"]
                beta1, beta2 = group["betas"]
                state["step"] += 1
                exp_avg.mul_(beta1).add_(grad, alpha=(1.0 - beta1))
                exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1.0 - beta2)
                denom = exp_avg_sq.sqrt().add_(group["eps"])
                step_size = group["lr"]
                if group["correct_bias"]:
                    bias_correction1 = 1.0 - beta1 ** state["step"]
                    bias_correction2 = 1.0 - beta2 ** state["step"]
                    step_size = step_size * math.sqrt(bias_correction2) / bias_correction1
                p.addcdiv_(exp_avg, denom, value=-step_size)
                if group["weight_decay"] > 0.0:
                    p.add_(p, alpha=(-group["lr"] * group["weight_decay"]))
        return loss


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", required=True, help="T5 folder (save_pretrained layout, safetensors)")
    ap.add_argument("--inputs", required=True, help="safetensors: ids_K, mask_K, labels_K; optional P, A, B")
    ap.add_argument("--m", type=int, default=60, help="prompt length (num_virtual_tokens)")
    ap.add_argument("--r", type=int, default=30, help="rank of A, B")
    ap.add_argument("--s", type=int, default=256, help="max_length (inputs are padded to it)")
    ap.add_argument("--warmup", type=int, default=2, help="untimed steps")
    ap.add_argument("--steps", type=int, default=10, help="timed steps")
    ap.add_argument("--threads", type=int, default=0, help="torch.set_num_threads (0: leave torch's default)")
    ap.add_argument("--dropout", type=int, default=1, help="1: model.train() as the Trainer; 0: dropout off")
    ap.add_argument("--lr-prompt", type=float, default=0.3, help="learning_rate (prompt group)")
    ap.add_argument("--lr-pair", type=float, default=1e-4, help="lora_embedding_lr (A, B group)")
    ap.add_argument("--max-grad-norm", type=float, default=1.0)
    ap.add_argument("--schedule-warmup", type=int, default=None, help="enable the linear schedule, train.py:613")
    ap.add_argument("--schedule-total", type=int, default=None, help="num_training_steps of that schedule")
    ap.add_argument("--seed", type=int, default=42, help="torch seed for the official random init")
    ap.add_argument("--official-code", required=True, help="a checkout of github.com/ZhengxiangShi/DePT")
    ap.add_argument("--check-against-dept-module", action="store_true")
    ap.add_argument("--dept-module", default=DEPT_MODULE)
    ap.add_argument("--python", default=sys.executable, help="interpreter for the dept module")
    args = ap.parse_args()
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    if args.check_against_dept_module and args.dropout:
        sys.exit("official_step: --check-against-dept-module needs --dropout 0")

    # transformers must be imported before the stub: at import it probes importlib.util.find_spec("accelerate")
    # (and records it as absent), which a spec-less stub module in sys.modules would make raise.
    import transformers  # noqa: F401
    from transformers import PreTrainedModel, T5ForConditionalGeneration  # noqa: F401
    from transformers.modeling_outputs import SequenceClassifierOutput  # noqa: F401

    stubbed = install_accelerate_stub()
    sys.path.insert(0, os.path.abspath(args.official_code))
    import peft
    from peft import PromptTuningInit, PromptTuningLoRAConfig, TaskType, get_peft_model

    if not os.path.abspath(peft.__file__).startswith(os.path.abspath(args.official_code)):
        sys.exit(f"official_step: imported peft from {peft.__file__}, not the official fork")
    from safetensors.torch import load_file, save_file

    tensors = load_file(args.inputs)
    K = 0
    while f"ids_{K}" in tensors:
        K += 1
    if K == 0:
        sys.exit("official_step: no ids_0 in --inputs")
    for k in range(K):
        if tensors[f"ids_{k}"].shape[1] != args.s:
            sys.exit(f"official_step: ids_{k} has length {tensors[f'ids_{k}'].shape[1]}, the official forward "
                     f"adds the full A (s={args.s} rows): pad inputs to s")

    model = T5ForConditionalGeneration.from_pretrained(args.model, use_safetensors=True)
    d = model.config.d_model
    torch.manual_seed(args.seed)
    # train.py:495-506 (model_args.hidden_size = model.config.hidden_size, train.py:482)
    peft_config = PromptTuningLoRAConfig(
        task_type=TaskType.SEQ_2_SEQ_LM,
        prompt_tuning_init=PromptTuningInit.RANDOM,
        num_virtual_tokens=args.m,
        num_transformer_submodules=1,
        prompt_tuning_init_text="Classify this text is postive or not:",
        tokenizer_name_or_path=args.model,
        r=args.r,
        token_dim=model.config.hidden_size,
        max_length=args.s,
        save_lora_embeddings=True,
    )
    model = get_peft_model(model, peft_config)  # train.py:507
    named = dict(model.named_parameters())
    enc = model.prompt_encoder["default"]
    names = {"P": "prompt_encoder.default.embedding.weight",
             "A": "prompt_encoder.default.lora_embedding_A",
             "B": "prompt_encoder.default.lora_embedding_B"}
    with torch.no_grad():
        for key, name in names.items():
            if key in tensors:
                if tensors[key].shape != named[name].shape:
                    sys.exit(f"official_step: {key} is {tuple(tensors[key].shape)}, {name} is "
                             f"{tuple(named[name].shape)}")
                named[name].copy_(tensors[key])
    initial = {key: named[name].detach().clone() for key, name in names.items()}
    trainable = sorted(n for n, p in model.named_parameters() if p.requires_grad)
    assert trainable == sorted(names.values()), trainable

    # train.py:595-611
    lora_embedding, non_lora_embedding = [], []
    for name, param in model.named_parameters():
        if name in ["prompt_encoder.default.lora_embedding_A", "prompt_encoder.default.lora_embedding_B"]:
            lora_embedding.append(param)
        else:
            non_lora_embedding.append(param)
    optimizer = HfAdamW([
        {"params": non_lora_embedding},
        {"params": lora_embedding, "lr": args.lr_pair},
    ], lr=args.lr_prompt)
    scheduler = None
    if args.schedule_warmup is not None or args.schedule_total is not None:
        from transformers import get_linear_schedule_with_warmup

        scheduler = get_linear_schedule_with_warmup(
            optimizer, num_warmup_steps=args.schedule_warmup or 0,
            num_training_steps=args.schedule_total or (args.warmup + args.steps))

    # The Trainer's training_step calls model.train() every step; with --dropout 0 the model is put in eval mode.
    model.train(bool(args.dropout))
    params = list(model.parameters())

    def step(k):
        b = k % K
        inputs = {"input_ids": tensors[f"ids_{b}"], "attention_mask": tensors[f"mask_{b}"],
                  "labels": tensors[f"labels_{b}"]}
        model.train(bool(args.dropout))
        loss = model(**inputs).loss
        loss.backward()
        if args.max_grad_norm is not None and args.max_grad_norm > 0:
            torch.nn.utils.clip_grad_norm_(params, args.max_grad_norm)
        optimizer.step()
        if scheduler is not None:
            scheduler.step()
        model.zero_grad()
        return loss.item()

    info = {"info": "official DePT step", "official_code": os.path.abspath(args.official_code),
            "accelerate_stub": stubbed, "m": args.m, "r": args.r, "s": args.s, "d": d,
            "scaling": enc.scaling, "lora_alpha": peft_config.lora_alpha, "batches_in_file": K,
            "batch": int(tensors["ids_0"].shape[0]), "threads": torch.get_num_threads(),
            "dropout": bool(args.dropout), "P_A_B_from_inputs": [k for k in names if k in tensors]}
    print(json.dumps(info), flush=True)

    all_losses, times = [], []
    for k in range(args.warmup):
        all_losses.append(step(k))
    for j in range(args.steps):
        k = args.warmup + j
        t0 = time.perf_counter()
        loss = step(k)
        ms = (time.perf_counter() - t0) * 1e3
        all_losses.append(loss)
        times.append(ms)
        print(json.dumps({"step": j, "ms": ms, "loss": loss}), flush=True)
    summary = {"summary": True, "steps": len(times), "warmup": args.warmup}
    if times:
        summary.update(median_ms=statistics.median(times), min_ms=min(times), max_ms=max(times))
    summary["first_loss"] = all_losses[0] if all_losses else None
    print(json.dumps(summary), flush=True)

    if args.check_against_dept_module:
        n = min(len(all_losses), K)
        if n == 0:
            sys.exit("official_step: no steps run, nothing to check")
        with tempfile.TemporaryDirectory() as tmp:
            ref_inputs = os.path.join(tmp, "inputs.safetensors")
            out = os.path.join(tmp, "out.jsonl")
            t = {key: initial[key].contiguous() for key in names}
            for b in range(n):
                for kind in ("ids", "mask", "labels"):
                    t[f"{kind}_{b}"] = tensors[f"{kind}_{b}"].contiguous()
            save_file(t, ref_inputs)
            cmd = [args.python, args.dept_module, "--model", args.model, "--inputs", ref_inputs,
                   "--scale", repr(float(enc.scaling)), "--count", str(n), "--out", out, "--dropout", "0",
                   "--threads", str(torch.get_num_threads()), "--lr-prompt", repr(args.lr_prompt),
                   "--lr-pair", repr(args.lr_pair)]
            subprocess.run(cmd, check=True)
            with open(out) as f:
                ref = [json.loads(line)["loss"] for line in f if line.strip()]
        rel = [abs(a - b) / abs(a) for a, b in zip(all_losses, ref)]
        print(json.dumps({
            "check": "dept bench_reference.py vs official", "dept_module": args.dept_module,
            "scale_passed": float(enc.scaling),
            "official_loss_batch0": all_losses[0], "dept_loss_batch0": ref[0], "rel_diff_batch0": rel[0],
            "steps_compared": len(rel), "max_rel_diff_over_steps": max(rel),
            "official_losses": all_losses[:n], "dept_losses": ref,
            "schedule_on": scheduler is not None,
        }), flush=True)


if __name__ == "__main__":
    main()
