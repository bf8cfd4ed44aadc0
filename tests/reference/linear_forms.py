"""`x @ W.T` (libtorch's `linear`, as nn.Linear runs it) against `(W @ x.T).T` on CPU, fp32, 2 threads, at a decoding
step's row counts: t5-small's decoder projections (6 layers: q, k, v, o of self-attention, q, o of cross-attention,
wi, wo) and its output layer, every weight read once per step, so they stream from memory as in decoding (together
about 150 MB, far more than the L3 cache). Prints each form's median ms per step and whether the two forms give the
same bits at that row count, and the largest difference where they are not. `transposed_form` is the rule
`dept_models::layers::linear` follows: one row against a weight with more outputs than inputs is stacked twice, so that
MKL threads the product (one column is a matrix-vector product, run on one thread); one row against fewer outputs keeps
`x @ W.T`. Run with the bench venv's python (torch 2.11): `dept_models::layers::linear` takes the
transposed form for the row counts where this shows it faster: 1 to 128 (the same bits from 16 rows,
docs/efficiency.md#decoding-speed).
"""
import time
import torch

torch.set_num_threads(2)
F = torch.nn.functional
shapes = [(2048, 512)] * 6 + [(512, 2048)] * 6 + [(512, 512)] * 36 + [(32128, 512)]
weights = [torch.randn(o, i) for o, i in shapes]


def median_ms(f, n):
    for _ in range(2):
        f()
    times = []
    for _ in range(n):
        t = time.perf_counter()
        f()
        times.append(time.perf_counter() - t)
    times.sort()
    return times[len(times) // 2] * 1e3


def transposed_form(x, w):
    if x.shape[0] == 1:
        if w.shape[0] <= w.shape[1]:
            return F.linear(x, w)
        return (w @ x.expand(2, -1).contiguous().t()).t()[:1]
    return (w @ x.t()).t()


for rows in [1, 2, 4, 8, 16, 32, 64, 128, 256, 1024]:
    x = {512: torch.randn(rows, 512), 2048: torch.randn(rows, 2048)}
    plain = median_ms(lambda: [F.linear(x[w.shape[1]], w) for w in weights], 9 if rows < 1024 else 3)
    transposed = median_ms(lambda: [transposed_form(x[w.shape[1]], w) for w in weights], 9 if rows < 1024 else 3)
    pairs = [(F.linear(x[w.shape[1]], w), transposed_form(x[w.shape[1]], w)) for w in weights]
    same = all(torch.equal(a, b) for a, b in pairs)
    largest = max((a - b).abs().max().item() for a, b in pairs)
    print(
        f"rows {rows:>5}: x@W.T {plain:7.1f} ms   transposed {transposed:7.1f} ms   {plain / transposed:4.2f}x   "
        f"same bits: {same}   largest difference {largest:.1e}"
    )
