#!/usr/bin/env python3
"""Times one optimizer step of PyTorch / timm on the parameter layout `coptim bench`
uses, and prints JSON with the same fields (plus `implementation`).

    /opt/torchenv/bin/python benches/pytorch_step.py --params 1M,16M --device cpu

Implementations: torch.optim.AdamW with foreach=True and fused=True; timm's
`adamw` and `cadamw` (timm.optim.AdamW, caution off/on); timm's `lion` and `clion`.
Timing: median wall time of `optimizer.step()` over --steps steps after --warmup
(CUDA: torch.cuda.Event timestamps around the step); min_ms is the fastest
sample, a steadier figure on a shared machine. The copy yardstick is
`dst.copy_(src)` over 28 B per parameter (read + write), as in `coptim bench`.
bytes_per_step counts the same floor as coptim (p, g, state read; p, state written;
caution's count pass reads g and m once more); PyTorch runs no non-finite check.
"""

import argparse
import json
import math
import statistics
import time

import torch

MAX_LAYERS = 8


def parse_count(s):
    s = s.strip()
    mult = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}.get(s[-1:].upper())
    return int(s[:-1]) * mult if mult else int(s)


def block_params(d):
    return 12 * d * d + 13 * d


def layout_shapes(kind, p):
    """The shapes of coptim's ModelLayout (src/bench/layout.rs), in the same order."""
    if kind == "single":
        return [[p]]
    if kind == "many-small":
        n = 200
        return [[p // n + (1 if i < p % n else 0)] for i in range(n)]
    d = max(int(math.sqrt(p // (12 * MAX_LAYERS))) // 16 * 16, 16)
    layers = min(max((max(p - 2 * d, 0)) // block_params(d), 1), MAX_LAYERS)
    shapes = []
    for _ in range(layers):
        shapes += [[d], [d], [3 * d, d], [3 * d], [d, d], [d], [d], [d],
                   [4 * d, d], [4 * d], [d, 4 * d], [d]]
    shapes += [[d], [d]]
    used = layers * block_params(d) + 2 * d
    rows = max((max(p - used, 0)) // d, 1)
    return [[rows, d]] + shapes


def bytes_per_param(optimizer, caution):
    states = 2 if optimizer == "adamw" else 1
    return 12 + 2 * states * 4 + (8 if caution else 0)


def make(impl, params):
    import timm.optim

    lr, wd = 1e-3, 0.01
    if impl == "torch-foreach":
        return "adamw", False, torch.optim.AdamW(params, lr=lr, weight_decay=wd, foreach=True)
    if impl == "torch-fused":
        return "adamw", False, torch.optim.AdamW(params, lr=lr, weight_decay=wd, fused=True)
    if impl in ("timm-adamw", "timm-cadamw"):
        caution = impl == "timm-cadamw"
        return "adamw", caution, timm.optim.create_optimizer_v2(
            params, "cadamw" if caution else "adamw", lr=lr, weight_decay=wd)
    if impl in ("timm-lion", "timm-clion"):
        caution = impl == "timm-clion"
        return "lion", caution, timm.optim.create_optimizer_v2(
            params, "clion" if caution else "lion", lr=lr, weight_decay=wd)
    raise ValueError(impl)


def timed(fn, device, warmup, steps):
    for _ in range(warmup):
        fn()
    if device.type == "cuda":
        torch.cuda.synchronize()
    out = []
    for _ in range(steps):
        if device.type == "cuda":
            a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            a.record()
            fn()
            b.record()
            b.synchronize()
            out.append(a.elapsed_time(b))
        else:
            t0 = time.perf_counter()
            fn()
            out.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(out), min(out)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--params", default="1M,16M")
    ap.add_argument("--layout", default="transformer", choices=["transformer", "single", "many-small"])
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--impl", default="torch-foreach,torch-fused,timm-adamw,timm-cadamw,timm-lion,timm-clion")
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=2)
    args = ap.parse_args()
    device = torch.device(args.device)
    results, copies = [], []
    gen = torch.Generator().manual_seed(0)
    for p in [parse_count(s) for s in args.params.split(",")]:
        n_copy = p * 28 // 8
        src = torch.randn(n_copy, generator=gen).to(device)
        dst = torch.empty_like(src)
        copy_ms, _ = timed(lambda: dst.copy_(src), device, args.warmup, args.steps)
        copy_gbps = n_copy * 8 / (copy_ms * 1e6)
        copies.append({"params": p, "bytes": n_copy * 8, "ms": copy_ms, "gbps": copy_gbps})
        del src, dst
        shapes = layout_shapes(args.layout, p)
        for impl in args.impl.split(","):
            params = [torch.nn.Parameter(torch.randn(s, generator=gen).to(device)) for s in shapes]
            for t in params:
                t.grad = 0.01 * torch.randn(t.shape, generator=gen).to(device)
            try:
                optimizer, caution, opt = make(impl, params)
            except (RuntimeError, ValueError, TypeError) as e:
                print(f"skipping {impl}: {e}", file=__import__("sys").stderr)
                continue
            step_ms, min_ms = timed(opt.step, device, args.warmup, args.steps)
            total = sum(t.numel() for t in params)
            nbytes = total * bytes_per_param(optimizer, caution)
            gbps = nbytes / (step_ms * 1e6)
            results.append({
                "optimizer": optimizer, "caution": caution, "state_dtype": "f32",
                "params": total, "tensors": len(params), "step_ms": step_ms,
                "bytes_per_step": nbytes, "gbps": gbps, "fraction_of_copy": gbps / copy_gbps,
                "implementation": impl, "layout": args.layout, "copy_gbps": copy_gbps,
                "min_ms": min_ms,
            })
            del opt, params
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    print(json.dumps({
        "adapter": {"name": name, "backend": f"torch {torch.__version__}", "device_type": device.type},
        "copy_gbps": copies[-1]["gbps"] if copies else 0.0,
        "results": results,
        "copies": copies,
        "threads": torch.get_num_threads(),
    }, indent=2))


if __name__ == "__main__":
    main()
