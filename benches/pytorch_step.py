#!/usr/bin/env python3
"""Times one optimizer step of PyTorch / timm on the parameter layout `coptim bench`
uses, and prints JSON with the same fields (plus `implementation`).

    /opt/torchenv/bin/python benches/pytorch_step.py --params 1M,16M --device cpu
    python3 benches/pytorch_step.py --members-from bench.json   # coptim's members

Implementations (--impl): torch.optim.AdamW with foreach=True (`torch-foreach`) and
fused=True (`torch-fused`), and `timm-NAME` for any timm optimizer name (default:
timm's `adamw`, `cadamw`, `lion`, `clion`). --members-from FILE adds, for every
member in the `optimizer` fields of a `coptim bench --json` document (the registry's
algorithm names, not a list kept here), timm's plain optimizer of that name and its
cautious twin `cNAME`; coptim's `sgd` is timm's `sgdw` (decoupled decay). A member
timm lacks is listed under `skipped`, never dropped silently. Each result carries
coptim's member name in `optimizer`, so the two documents join on (optimizer,
caution, params).
Timing: median wall time of `optimizer.step()` over --steps steps after --warmup
(CUDA: torch.cuda.Event timestamps around the step); min_ms is the fastest
sample, a steadier figure on a shared machine. The copy yardstick is
`dst.copy_(src)` over 28 B per parameter (read + write), as in `coptim bench`.
bytes_per_step counts the same floor as coptim (p, g read; p written; each state
tensor of the parameter's size, as the optimizer holds it after the warm-up, read
and written; caution's count pass reads g and the first state once more); PyTorch
runs no non-finite check.
"""

import argparse
import json
import math
import statistics
import sys
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


# coptim member names that timm spells differently (its plain name for the member).
TIMM_SPELLING = {"sgd": "sgdw"}


def state_bytes(opt, param):
    """Bytes of the optimizer's state tensors of `param`'s size (not step counters)."""
    state = opt.state.get(param, {})
    return sum(t.numel() * t.element_size() for t in state.values()
               if torch.is_tensor(t) and t.numel() == param.numel())


def bytes_per_step(opt, params, caution):
    """The floor coptim counts: p and g read, p written, every state read and written,
    and for caution one more read of g and of the first state."""
    total = sum(t.numel() for t in params)
    states = sum(state_bytes(opt, t) for t in params)
    first_state = sum(min((s.numel() * s.element_size() for s in opt.state.get(t, {}).values()
                           if torch.is_tensor(s) and s.numel() == t.numel()), default=0)
                      for t in params)
    return 12 * total + 2 * states + ((4 * total + first_state) if caution else 0)


def member_impls(path):
    """timm implementations of every member in a `coptim bench --json` document:
    (impls, skipped): `timm-NAME` and `timm-cNAME` per member timm has."""
    import timm.optim

    with open(path) as f:
        doc = json.load(f)
    members = list(dict.fromkeys(r["optimizer"] for r in doc.get("results", [])))
    known = set(timm.optim.list_optimizers())
    impls, skipped = {}, []
    for member in members:
        plain = TIMM_SPELLING.get(member, member)
        for name, caution in ((plain, False), ("c" + plain, True)):
            if name in known:
                impls[f"timm-{name}"] = (member, caution)
            else:
                skipped.append({"optimizer": member, "caution": caution, "timm_name": name,
                                "reason": "not a timm optimizer name"})
    return impls, skipped


def make(impl, params, members):
    """(coptim member name, caution, optimizer) of implementation `impl`."""
    import timm.optim

    lr, wd = 1e-3, 0.01
    if impl == "torch-foreach":
        return "adamw", False, torch.optim.AdamW(params, lr=lr, weight_decay=wd, foreach=True)
    if impl == "torch-fused":
        return "adamw", False, torch.optim.AdamW(params, lr=lr, weight_decay=wd, fused=True)
    if impl.startswith("timm-"):
        name = impl[len("timm-"):]
        member, caution = members.get(impl, (name[1:] if name.startswith("c") else name,
                                             name.startswith("c")))
        return member, caution, timm.optim.create_optimizer_v2(params, name, lr=lr, weight_decay=wd)
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


def bench_size(p, impls, members, args, device, skipped):
    """The copy yardstick and every implementation's step at `p` parameters."""
    gen = torch.Generator(device=device).manual_seed(p)
    n_copy = p * 28 // 8
    src = torch.randn(n_copy, generator=gen, device=device)
    dst = torch.empty_like(src)
    copy_ms, _ = timed(lambda: dst.copy_(src), device, args.warmup, args.steps)
    copy_gbps = n_copy * 8 / (copy_ms * 1e6)
    copy = {"params": p, "bytes": n_copy * 8, "ms": copy_ms, "gbps": copy_gbps}
    del src, dst
    shapes = layout_shapes(args.layout, p)
    results = []
    for impl in impls:
        params = [torch.nn.Parameter(torch.randn(s, generator=gen, device=device)) for s in shapes]
        for t in params:
            t.grad = 0.01 * torch.randn(t.shape, generator=gen, device=device)
        try:
            optimizer, caution, opt = make(impl, params, members)
            step_ms, min_ms = timed(opt.step, device, args.warmup, args.steps)
        except (RuntimeError, ValueError, TypeError, KeyError) as e:
            print(f"skipping {impl}: {e}", file=sys.stderr)
            skipped.append({"implementation": impl, "params": p, "reason": str(e)})
            continue
        nbytes = bytes_per_step(opt, params, caution)
        gbps = nbytes / (step_ms * 1e6)
        results.append({
            "optimizer": optimizer, "caution": caution, "state_dtype": "f32",
            "params": sum(t.numel() for t in params), "tensors": len(params), "step_ms": step_ms,
            "bytes_per_step": nbytes, "gbps": gbps, "fraction_of_copy": gbps / copy_gbps,
            "implementation": impl, "layout": args.layout, "copy_gbps": copy_gbps,
            "min_ms": min_ms,
        })
        del opt, params
    return copy, results


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--params", default="1M,16M")
    ap.add_argument("--layout", default="transformer", choices=["transformer", "single", "many-small"])
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--impl", default="torch-foreach,torch-fused,timm-adamw,timm-cadamw,timm-lion,timm-clion")
    ap.add_argument("--members-from", metavar="FILE",
                    help="also time timm's plain and cautious twin of every member of this "
                         "`coptim bench --json` output")
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=2)
    args = ap.parse_args()
    device = torch.device(args.device)
    members, skipped = member_impls(args.members_from) if args.members_from else ({}, [])
    impls = list(dict.fromkeys(args.impl.split(",") + list(members)))
    results, copies = [], []
    for p in [parse_count(s) for s in args.params.split(",")]:
        copy, timed_results = bench_size(p, impls, members, args, device, skipped)
        copies.append(copy)
        results += timed_results
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    print(json.dumps({
        "adapter": {"name": name, "backend": f"torch {torch.__version__}", "device_type": device.type},
        "copy_gbps": copies[-1]["gbps"] if copies else 0.0,
        "results": results,
        "copies": copies,
        "skipped": skipped,
        "threads": torch.get_num_threads(),
    }, indent=2))


if __name__ == "__main__":
    main()
