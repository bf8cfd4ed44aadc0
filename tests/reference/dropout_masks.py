"""Dropout masks on CPU: the form dept-models used before, x * (u >= p) * 1/(1 - p), the in-place float mask it
uses now, and a bool mask scaled in place; forward and forward+backward, 2 threads, at a t5-small batch's shapes.
Run with the bench venv's python (torch 2.11); docs/efficiency.md#speed quotes it under "Dropout masks made in place".
"""
import time, torch
torch.set_num_threads(2)
p = 0.1
shapes = {"attn weights [16,8,316,316]": (16, 8, 316, 316), "ff hidden [16,316,2048]": (16, 316, 2048), "hidden [16,316,512]": (16, 316, 512)}
def dept_now(x):
    return x * torch.rand_like(x).ge(p) * (1.0 / (1.0 - p))
def inplace_mask(x):
    return x * torch.rand_like(x).ge_(p).mul_(1.0 / (1.0 - p))
def bool_then_inplace(x):
    return (x * torch.rand_like(x).ge(p)).mul_(1.0 / (1.0 - p))
def where_mask(x):
    return torch.where(torch.rand_like(x).ge(p), x * (1.0 / (1.0 - p)), 0.0)
ways = [dept_now, inplace_mask, bool_then_inplace, dept_now, inplace_mask, bool_then_inplace]
for name, shape in shapes.items():
    x = torch.randn(shape, requires_grad=True)
    for way in ways:
        fw, fb = [], []
        for i in range(8):
            t = time.perf_counter(); y = way(x); t1 = time.perf_counter()
            y.sum().backward(); x.grad = None
            t2 = time.perf_counter()
            if i: fw.append(t1 - t); fb.append(t2 - t)
            del y
        fw.sort(); fb.sort()
        print(f"{name:<28} {way.__name__:<18} forward {fw[3]*1e3:7.1f} ms   forward+backward {fb[3]*1e3:7.1f} ms")
# same distribution: drop rate and mean
torch.manual_seed(0); x = torch.ones(4_000_000)
for way in [dept_now, inplace_mask, bool_then_inplace]:
    y = way(x); print(way.__name__, "kept", (y != 0).float().mean().item(), "mean", y.mean().item())
