"""`x @ W.T` (libtorch's `linear`, as nn.Linear runs it) against `(W @ x.T).T` on CPU, fp32, 2 threads, at a decoding
step's row counts: t5-small's decoder projections (6 layers: q, k, v, o of self-attention, q, o of cross-attention,
wi, wo) and its output layer, every weight read once per step, so they stream from memory as in decoding (together
about 150 MB, far more than the L3 cache). Prints each form's median ms per step and whether the two forms give the
same bits at that row count. Run with the bench venv's python (torch 2.11): `dept_models::layers::linear` takes the
transposed form for the row counts where this shows it faster with the same bits (docs/efficiency.md#decoding-speed).
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


for rows in [1, 2, 4, 8, 16, 32, 64, 128, 256, 1024]:
    x = {512: torch.randn(rows, 512), 2048: torch.randn(rows, 2048)}
    plain = median_ms(lambda: [F.linear(x[w.shape[1]], w) for w in weights], 9 if rows < 1024 else 3)
    transposed = median_ms(lambda: [(w @ x[w.shape[1]].t()).t() for w in weights], 9 if rows < 1024 else 3)
    same = all(torch.equal(F.linear(x[w.shape[1]], w), (w @ x[w.shape[1]].t()).t()) for w in weights)
    print(f"rows {rows:>5}: x@W.T {plain:7.1f} ms   (W@x.T).T {transposed:7.1f} ms   {plain / transposed:4.2f}x   same bits: {same}")
