"""Reference values for the CLIP-T5 + DePT parity test (tests/clip_t5_parity.rs).

Writes:
  tests/reference/clip_t5/model/                     a tiny random T5 (v1 layout), as `save_pretrained` writes it
  tests/reference/clip_t5/adapter/                   a DePT adapter with non-zero P, A, B (official PEFT key names)
  tests/reference/clip_t5/visual_embedding.safetensors  the visual embedding, `encoder.visual_embedding.*` names, in
                                                     the layout of the Rust `ClipT5` (see E_obj below)
  tests/reference/clip_t5/golden.json                batch, features, loss, logits, gradients, greedy decodes, and the
                                                     losses of padding to s and of three wrong computations

Written from VL-T5's code (VL-Adapter, `VL-T5/src/modeling_t5.py`), independently of the Rust code:

- `VisualEmbedding` with VL-Adapter's defaults `individual_vis_layer_norm`, `use_vis_layer_norm`,
  `use_vis_order_embedding` (and no additional layers), its `forward` copied here line by line:
  `feat_embedding = Sequential(Linear(feat_dim, d), T5LayerNorm(d))`, `absolute_vis_pos_embedding =
  Sequential(Linear(5, d), T5LayerNorm(d))` over `cat([boxes, area], 2)`, plus `img_order_embedding(img_order_ids)`
  (an `nn.Embedding(n_images = 2, d)`, ids all zero: one image) and `obj_order_embedding(num_embeddings −
  obj_order_ids − 1)` with `obj_order_ids = arange(N)`, where `obj_order_embedding` *is the word embedding* (VL-T5
  passes `embed_tokens`), frozen with the rest of T5. Here it is this tiny T5's own `shared` embedding, so visual
  token i reads word-embedding row V − 1 − i.
- E_obj: the Rust model stores what VL-T5 reads there as its own frozen `[N, d]` variable
  `encoder.visual_embedding.obj_order_embedding.weight`, row i for visual token i. This script saves exactly that,
  `shared.weight[V − 1 − arange(N)]`, and asserts that `LN_f(W_f x_i + b_f) + LN_p(b_p) + E_img[0] + E_obj[i]`
  with it equals VL-T5's `forward`.
- The module is called as VL-Adapter's CLIP loaders call it, with all boxes zero (`boxes = torch.zeros(
  feats.shape[0], 4)`), so the box term is `LN_p(b_p)` and `W_p` gets an exactly zero gradient, as does the unused
  image-order row 1; E_obj (frozen word embeddings) gets none (all asserted below).
- The encoder is VL-T5's `JointEncoder`: input `[prompt (m) | text + scale·A[:len]·B | visual tokens (N)]`, mask
  `[1…1 | text mask | 1…1]` (prompt in front, `inputs_embeds = torch.cat([inputs_embeds, vis_embeds], dim=1)`), and
  T5's relative position bias computed for the first `L = m + len` positions only, zero wherever a visual token is
  the query or the key (`position_bias[:, :, :L, :L] = text_position_bias`, shared by all layers). This is stock
  `T5ForConditionalGeneration` with the first encoder layer's `compute_bias` replaced by that (`vl_t5_position_bias`).
  Padding the text therefore changes no number: padding to s is asserted to give the same loss, and that loss is
  stored. `scale = lora_alpha / sqrt(r)` (DePT's `prompt_tuning_lora.py`).
- The v1 layout (ReLU, tied embeddings with the `d^-1/2` rescale): `VLT5.forward` asserts `tie_word_embeddings`.

Compared by the Rust test: loss, logits at the targets, gradients of P, A, B and of every visual parameter, greedy
decodes (the batch right-padded to its longest input), and the loss padded to s. Plus three losses a wrong
implementation would give, which the test reproduces with the matching wrong computation and which must move the
loss by far more than the tolerance: stock T5 bias over all positions (`loss_stock_t5_bias`), without E_obj
(`loss_without_obj_order`) and without the box term `LN_p(b_p)` (`loss_without_box_term`).

The golden values are float32; the same computation in float64 must agree within 2e-6 (relative to the largest
magnitude), leaving room for the test's 1e-5.

Requirements: torch==2.11.0 transformers==4.57.1 safetensors (python 3). Run from the repository root:
    /root/.cache/dept/bench-venv/bin/python tests/reference/clip_t5_reference.py
"""

import json
import math
import os
import shutil
from contextlib import contextmanager

import torch
from torch import nn
from safetensors.torch import save_file
from transformers import T5Config, T5ForConditionalGeneration
from transformers.models.t5.modeling_t5 import T5LayerNorm

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "clip_t5")

M, R, S = 3, 2, 8  # prompt length, rank, max input length
LORA_ALPHA = 8
FEAT_DIM, N_VISUAL = 12, 5
N_IMAGES = 2  # VL-T5's config.n_images
PAD, EOS = 0, 1
# Three inputs of different lengths (ids < vocab), and targets padded with -100.
INPUTS = [[5, 9, 13, 17, 21, 1], [7, 11, 1], [3, 25, 30, 40, 1]]
TARGETS = [[4, 8, 1], [6, 1], [12, 33, 20, 1]]
MAX_NEW_TOKENS = 8
PREFIX = "encoder.visual_embedding."
W_P = PREFIX + "absolute_vis_pos_embedding.0.weight"
E_IMG = PREFIX + "img_order_embedding.weight"
E_OBJ = PREFIX + "obj_order_embedding.weight"

# The model seed was picked by trying seeds in order (`SEARCH_SEEDS=100 python <this script>` lists those that pass
# `check_quality`): rows that decode differently, some reaching EOS and some not, more than one token, and float32
# results within 2e-6 of float64 ones. Of seeds 0-199 only 33, 87 and 89 pass; 33 has the longest row that reaches
# EOS and the weakest sensitivity loss furthest from the right one (1.2e-3 relative).
MODEL_SEED, PARAM_SEED = 33, 99
INITIALIZER_FACTOR = 1.0


def tiny_config():
    return T5Config(
        vocab_size=48,
        d_model=16,
        d_kv=4,
        d_ff=32,
        num_layers=2,
        num_decoder_layers=2,
        num_heads=4,
        relative_attention_num_buckets=8,
        relative_attention_max_distance=20,
        dropout_rate=0.1,
        layer_norm_epsilon=1e-6,
        pad_token_id=PAD,
        eos_token_id=EOS,
        decoder_start_token_id=PAD,
        feed_forward_proj="relu",
        tie_word_embeddings=True,
        initializer_factor=INITIALIZER_FACTOR,
    )


class VisualEmbedding(nn.Module):
    """VL-T5's `VisualEmbedding` (individual_vis_layer_norm, use_vis_layer_norm, use_vis_order_embedding).

    `drop` leaves one term out, for the wrong computations of the sensitivity checks: "obj_order" or "box"."""

    def __init__(self, feat_dim, d_model, eps, obj_order_embedding, pos_dim=4, n_images=N_IMAGES):
        super().__init__()
        self.feat_embedding = nn.Sequential(nn.Linear(feat_dim, d_model), T5LayerNorm(d_model, eps=eps))
        self.absolute_vis_pos_embedding = nn.Sequential(nn.Linear(pos_dim + 1, d_model), T5LayerNorm(d_model, eps=eps))
        self.obj_order_embedding = obj_order_embedding  # the (frozen) word embeddings, as VL-T5 passes them
        self.img_order_embedding = nn.Embedding(n_images, d_model)

    @staticmethod
    def get_area(pos):
        height = pos[:, :, 3] - pos[:, :, 2]
        width = pos[:, :, 1] - pos[:, :, 0]
        return height * width

    def forward(self, feats, pos, img_order_ids=None, obj_order_ids=None, drop=None):
        B, N, _ = feats.size()
        assert pos.size() == (B, N, 4)
        feat_embedding = self.feat_embedding(feats)
        device = feats.device
        area = self.get_area(pos).unsqueeze(2)
        pos = torch.cat([pos, area], dim=2)
        absolute_vis_pos_embedding = self.absolute_vis_pos_embedding(pos)
        if img_order_ids is None:
            img_order_ids = torch.zeros(N, dtype=torch.long, device=device).unsqueeze(0)
        img_order_embedding = self.img_order_embedding(img_order_ids)
        if obj_order_ids is None:
            obj_order_ids = torch.arange(N, dtype=torch.long, device=device).unsqueeze(0)
        obj_order_ids = self.obj_order_embedding.num_embeddings - obj_order_ids - 1
        obj_order_embedding = self.obj_order_embedding(obj_order_ids)
        if drop == "obj_order":
            obj_order_embedding = torch.zeros_like(obj_order_embedding)
        elif drop == "box":
            absolute_vis_pos_embedding = torch.zeros_like(absolute_vis_pos_embedding)
        else:
            assert drop is None, drop
        return feat_embedding + absolute_vis_pos_embedding + img_order_embedding + obj_order_embedding

    def obj_order_rows(self, n):
        """E_obj as the Rust model stores it: row i is what `forward` reads for visual token i."""
        v = self.obj_order_embedding.num_embeddings
        return self.obj_order_embedding.weight[v - 1 - torch.arange(n)]

    def named_trainable(self):
        """The module's own parameters under VL-T5's names (the word embeddings it borrows are T5's, frozen)."""
        return {PREFIX + n: p for n, p in self.named_parameters() if not n.startswith("obj_order_embedding.")}


@contextmanager
def vl_t5_position_bias(model, text_len):
    """VL-T5's `JointEncoder`: relative position bias among the first `text_len` positions only, zero elsewhere."""
    attention = model.encoder.block[0].layer[0].SelfAttention
    original = attention.compute_bias

    def compute_bias(query_length, key_length, device=None, cache_position=None):
        assert query_length == key_length, "the encoder attends to itself"
        text_position_bias = original(text_len, text_len, device=device)
        num_heads = text_position_bias.size(1)
        position_bias = text_position_bias.new_zeros(1, num_heads, query_length, key_length)
        position_bias[:, :, :text_len, :text_len] = text_position_bias
        return position_bias

    attention.compute_bias = compute_bias
    try:
        yield
    finally:
        del attention.compute_bias


@contextmanager
def stock_position_bias():
    """The wrong computation: stock T5, relative position bias over all positions, visual tokens included."""
    yield


def padded(rows, length, value):
    return torch.tensor([r + [value] * (length - len(r)) for r in rows])


class Reference:
    """The frozen T5, the trainable visual embedding and adapter, and the batch, in one float kind."""

    def __init__(self, dtype):
        torch.manual_seed(MODEL_SEED)
        self.config = tiny_config()
        self.model = T5ForConditionalGeneration(self.config).to(dtype)
        self.model.eval()  # dropout off, as the parity tests run
        for p in self.model.parameters():
            p.requires_grad_(False)
        d = self.config.d_model

        g = torch.Generator().manual_seed(PARAM_SEED)
        self.prompt = (torch.randn(M, d, generator=g) * 0.5).to(dtype).requires_grad_(True)
        self.lora_a = ((torch.rand(S, R, generator=g) * 2 - 1) / math.sqrt(R)).to(dtype).requires_grad_(True)
        self.lora_b = (torch.randn(R, d, generator=g) * 0.1).to(dtype).requires_grad_(True)

        # Non-trivial values everywhere (biases not 0, layer-norm weights not 1), so a dropped term shows.
        self.visual = VisualEmbedding(FEAT_DIM, d, self.config.layer_norm_epsilon, self.model.shared)
        with torch.no_grad():
            for name, p in self.visual.named_trainable().items():
                fan_in = p.shape[-1] if p.dim() == 2 else 1
                if name.endswith("1.weight"):  # T5LayerNorm
                    p.copy_(1.0 + 0.3 * torch.randn(p.shape, generator=g))
                elif name.endswith("0.weight"):
                    p.copy_((torch.rand(p.shape, generator=g) * 2 - 1) / math.sqrt(fan_in))
                else:  # linear biases, image-order rows
                    p.copy_(torch.randn(p.shape, generator=g) * 0.5)
        self.visual = self.visual.to(dtype)
        assert self.visual.obj_order_embedding is self.model.shared
        self.features = torch.randn(len(INPUTS), N_VISUAL, FEAT_DIM, generator=g).to(dtype)
        self.labels = padded(TARGETS, max(len(t) for t in TARGETS), -100)

    def text(self, length):
        ids = padded(INPUTS, length, PAD)
        return ids, (ids != PAD).long()

    def visual_tokens(self, drop=None):
        # VL-Adapter's CLIP loaders: every visual token has the box (0, 0, 0, 0).
        boxes = torch.zeros(self.features.shape[0], N_VISUAL, 4, dtype=self.features.dtype)
        return self.visual(self.features, boxes, drop=drop)

    def encoder_inputs(self, ids, mask, drop=None):
        """`[prompt | text + scale·A·B | visual]` and its mask."""
        batch, length = ids.shape
        scale = LORA_ALPHA / math.sqrt(R)
        embeds = self.model.get_input_embeddings()(ids)
        embeds = embeds + scale * (self.lora_a[:length] @ self.lora_b).unsqueeze(0)
        prompt = self.prompt.unsqueeze(0).expand(batch, -1, -1)
        vis = self.visual_tokens(drop)
        ones = lambda n: torch.ones(batch, n, dtype=mask.dtype)
        return torch.cat([prompt, embeds, vis], 1), torch.cat([ones(M), mask, ones(N_VISUAL)], 1)

    def bias(self, length, stock=False):
        return stock_position_bias() if stock else vl_t5_position_bias(self.model, M + length)

    def trainable(self):
        named = {"prompt": self.prompt, "lora_a": self.lora_a, "lora_b": self.lora_b}
        named.update(self.visual.named_trainable())
        return named

    def zero_grad(self):
        for p in self.trainable().values():
            p.grad = None

    def forward(self, length, stock=False, drop=None):
        ids, mask = self.text(length)
        with self.bias(length, stock):
            embeds, full_mask = self.encoder_inputs(ids, mask, drop)
            return self.model(inputs_embeds=embeds, attention_mask=full_mask, labels=self.labels)

    def check_obj_order_layout(self):
        """The Rust layout (a separate `[N, d]` E_obj, row i for token i) gives VL-T5's tokens exactly."""
        with torch.no_grad():
            v = self.visual
            by_hand = (
                v.feat_embedding(self.features)
                + v.absolute_vis_pos_embedding[1](v.absolute_vis_pos_embedding[0].bias)
                + v.img_order_embedding.weight[0]
                + v.obj_order_rows(N_VISUAL)
            )
            assert torch.equal(by_hand, self.visual_tokens()), "E_obj layout differs from VL-T5's forward"

    def run(self):
        """Loss, logits at the targets, gradients and greedy decodes, the batch padded to its longest input."""
        self.check_obj_order_layout()
        length = max(len(r) for r in INPUTS)
        self.zero_grad()
        out = self.forward(length)
        out.loss.backward()
        assert self.model.shared.weight.grad is None, "the word embeddings (and so E_obj) are frozen"
        keep = self.labels != -100
        result = {
            "loss": out.loss.detach(),
            "logits_at_targets": out.logits[keep].detach(),
            "grads": {k: p.grad.detach().clone() for k, p in self.trainable().items()},
        }
        self.zero_grad()
        ids, mask = self.text(length)
        with torch.no_grad(), self.bias(length):
            embeds, full_mask = self.encoder_inputs(ids, mask)
            generated = self.model.generate(
                inputs_embeds=embeds, attention_mask=full_mask, max_new_tokens=MAX_NEW_TOKENS,
                do_sample=False, num_beams=1,
            )
        result["greedy"] = generated[:, 1:].tolist()  # drop the decoder start token
        with torch.no_grad():
            result["loss_padded_to_s"] = self.forward(S).loss
            result["loss_stock_t5_bias"] = self.forward(length, stock=True).loss
            result["loss_without_obj_order"] = self.forward(length, drop="obj_order").loss
            result["loss_without_box_term"] = self.forward(length, drop="box").loss
        return result


def flat(t):
    return [float(x) for x in t.detach().reshape(-1).tolist()]


def rel_error(actual, expected):
    scale = expected.abs().max()
    return float((actual.double() - expected.double()).abs().max() / (scale if scale > 0 else 1))


def check_quality(r32, r64):
    """The golden values must make a strong test: see the comment on the seeds."""
    greedy = r32["greedy"]
    assert greedy == r64["greedy"], "float32 and float64 decode differently"
    assert any(EOS in row for row in greedy), f"no row reaches EOS: {greedy}"
    assert not all(EOS in row for row in greedy), f"every row reaches EOS: {greedy}"
    assert len({tuple(row) for row in greedy}) == len(greedy), f"two rows decode alike: {greedy}"
    assert len({t for row in greedy for t in row} - {PAD, EOS}) > 1, f"one token only: {greedy}"
    errors = {"loss": rel_error(r32["loss"], r64["loss"]),
              "logits": rel_error(r32["logits_at_targets"], r64["logits_at_targets"])}
    errors.update({k: rel_error(r32["grads"][k], r64["grads"][k]) for k in r32["grads"]})
    errors.update({k: rel_error(r32[k], r64[k]) for k in r32 if k.startswith("loss_")})
    worst = max(errors.values())
    assert worst <= 2e-6, f"float32 is {worst:.2e} from float64: {errors}"
    return worst


def golden_of(result):
    grads = result["grads"]
    assert torch.count_nonzero(grads[W_P]) == 0, "W_p multiplies zero boxes: its gradient must be exactly zero"
    assert torch.count_nonzero(grads[E_IMG][1:]) == 0, "image-order rows other than 0 must get exactly zero"
    assert torch.count_nonzero(grads[E_IMG][0]) > 0
    return {
        "loss": float(result["loss"]),
        "logits_at_targets": flat(result["logits_at_targets"]),
        "grad_prompt": flat(grads["prompt"]),
        "grad_lora_a": flat(grads["lora_a"]),
        "grad_lora_b": flat(grads["lora_b"]),
        "grad_visual": {k: flat(v) for k, v in grads.items() if k.startswith(PREFIX)},
        "greedy": result["greedy"],
        **{k: float(v) for k, v in result.items() if k.startswith("loss_")},
    }


def main():
    torch.set_num_threads(1)
    ref = Reference(torch.float32)
    ref64 = Reference(torch.float64)
    r32, r64 = ref.run(), ref64.run()
    worst = check_quality(r32, r64)
    golden = {
        "versions": {"torch": torch.__version__, "transformers": __import__("transformers").__version__},
        "m": M, "r": R, "s": S, "lora_alpha": LORA_ALPHA, "feat_dim": FEAT_DIM, "n_visual": N_VISUAL,
        "inputs": INPUTS, "targets": TARGETS, "max_new_tokens": MAX_NEW_TOKENS,
        "features_shape": list(ref.features.shape), "features": flat(ref.features),
        **golden_of(r32),
    }
    print(f"loss {golden['loss']:.6f}, greedy {golden['greedy']}, float32 vs float64 {worst:.2e}")
    # VL-T5 leaves the bias at zero around visual tokens, so padding changes nothing.
    rel = abs(golden["loss_padded_to_s"] - golden["loss"]) / abs(golden["loss"])
    print(f"loss_padded_to_s {golden['loss_padded_to_s']:.8f}: {rel:.2e} from the loss")
    assert rel <= 1e-6, "VL-T5's encoder must not depend on padding"
    for key in ("loss_stock_t5_bias", "loss_without_obj_order", "loss_without_box_term"):
        rel = abs(golden[key] - golden["loss"]) / abs(golden["loss"])
        print(f"{key} {golden[key]:.8f}: {rel:.2e} from the loss")
        assert rel > 1e-3, f"{key} is only {rel:.1e} from the loss: a weak sensitivity check"

    shutil.rmtree(OUT, ignore_errors=True)
    ref.model.save_pretrained(os.path.join(OUT, "model"), safe_serialization=True)
    gen_config = os.path.join(OUT, "model", "generation_config.json")
    if os.path.exists(gen_config):
        os.remove(gen_config)
    visual = {n: p.detach().contiguous() for n, p in ref.visual.named_trainable().items()}
    visual[E_OBJ] = ref.visual.obj_order_rows(N_VISUAL).detach().contiguous()
    save_file(visual, os.path.join(OUT, "visual_embedding.safetensors"))
    adapter = os.path.join(OUT, "adapter")
    os.makedirs(adapter)
    save_file(
        {
            "prompt_embeddings": ref.prompt.detach().contiguous(),
            "prompt_encoder.lora_embedding_A": ref.lora_a.detach().contiguous(),
            "prompt_encoder.lora_embedding_B": ref.lora_b.detach().contiguous(),
        },
        os.path.join(adapter, "adapter_model.safetensors"),
    )
    with open(os.path.join(adapter, "adapter_config.json"), "w") as f:
        json.dump({
            "peft_type": "PROMPT_TUNING_LORA", "task_type": "SEQ_2_SEQ_LM", "num_virtual_tokens": M,
            "token_dim": ref.config.d_model, "r": R, "max_length": S, "lora_alpha": LORA_ALPHA,
            "num_transformer_submodules": 1, "prompt_tuning_init": "RANDOM",
        }, f, indent=2)
    with open(os.path.join(OUT, "golden.json"), "w") as f:
        json.dump(golden, f)


def search(seeds):
    """Prints the model seeds whose golden values pass `check_quality` (how MODEL_SEED was picked)."""
    global MODEL_SEED
    torch.set_num_threads(1)
    for seed in seeds:
        MODEL_SEED = seed
        try:
            worst = check_quality(Reference(torch.float32).run(), Reference(torch.float64).run())
            print(f"seed {seed}: ok, float32 vs float64 {worst:.2e}")
        except AssertionError as e:
            print(f"seed {seed}: {e}")


if __name__ == "__main__":
    if os.environ.get("SEARCH_SEEDS"):
        search(range(int(os.environ["SEARCH_SEEDS"])))
    else:
        main()
