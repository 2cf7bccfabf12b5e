#!/usr/bin/env python3
"""Golden vectors for coptim's Muon and C-Muon (tests/muon_golden.rs).

How to run (from the repository root, with torch and timm 1.0.31):

    /tmp/robust_torchenv/bin/python scripts/golden_muon.py          # (re)write
    /tmp/robust_torchenv/bin/python scripts/golden_muon.py --check  # verify

Muon is timm's `timm.optim.muon.Muon` (timm/optim/muon.py), run in float64 on CPU
with one change: its Newton-Schulz iteration, which timm runs in bfloat16
(`zeropower_via_newtonschulz(..., dtype=torch.bfloat16)`), runs in float64 here
(`_ns_f64` below), so the vectors are the exact iteration, not bf16 rounding.

C-Muon: timm has no cautious Muon. `cmuon` cases are timm's Muon with C-Optim's
c_muon.py rule (kyleliang919/C-Optim, c_muon.py `muon_update`) patched in, a copy of
timm's `_single_tensor_muon` loop with two added lines after the momentum update:

    mask = (momentum_buf * grad > 0).to(grad.dtype)
    update = update * mask / mask.mean().clamp(min=1e-3)

i.e. the mask of the NEW momentum against the gradient, mean_clamp normalization,
applied to the (Nesterov) update BEFORE the orthogonalization (C-Optim PR #11). The
fallback AdamW/NAdamW of unsuitable tensors is timm's with `caution=True` (Muon.step
passes caution=False; the patch wraps `timm.optim.muon.adamw`/`nadamw`).

Inputs: torch.manual_seed(7); shapes below (square, wide, tall, one-row, a conv
weight flattened to 12x12 and vectors, so both the Muon and
the fallback paths run); gradient of tensor i = randn * scale[i]; tensor 2 gets an
all-zero gradient at step 3; 6 steps at lr 0.02, weight decay 0.1.

File layout (safetensors, every tensor float64): `init.{i}`, `grad.{s}.{i}` and
`param.{s}.{i}` (after step s, from 1); metadata `case` (JSON: the Muon keywords,
`caution`, `lr`, `weight_decay`), `shapes` (JSON list).
"""

import functools
import json
import os
import sys

import torch
from safetensors.torch import load_file, save_file

import timm.optim.muon as tm

SHAPES = [[16, 16], [8, 40], [40, 8], [1, 32], [12, 3, 2, 2], [7], [1]]
SCALES = [1.0, 0.5, 2.0, 1.0, 0.3, 0.1, 3.0]
STEPS = 6
LR = 0.02
WD = 0.1
OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "golden", "muon")

CASES = {
    "timm_muon": dict(kw={}, caution=False),
    "timm_nmuon": dict(kw={"nesterov": True}, caution=False),
    "timm_muon_options": dict(
        kw={"adjust_lr_fn": "original", "ns_coefficients": "polar_express", "ns_steps": 6,
            "fallback_lr_scale": 0.5, "momentum": 0.9},
        caution=False,
    ),
    "cmuon": dict(kw={}, caution=True),
    "cmuon_nesterov": dict(kw={"nesterov": True, "adjust_lr_fn": "rms_to_rms"}, caution=True),
}

_timm_ns = tm.zeropower_via_newtonschulz


def _ns_f64(G, steps, coefficients, eps=tm.MUON_EPS, safety_factor=1.0, dtype=None, scale_eps=False):
    """timm's iteration in float64 instead of bfloat16."""
    return _timm_ns(G, steps, coefficients, eps=eps, safety_factor=safety_factor,
                    dtype=torch.float64, scale_eps=scale_eps)


def _cautious_single_tensor_muon(params, grads, momentum_bufs, *, lr, weight_decay, momentum,
                                 nesterov, ns_steps, ns_coefficients, eps, safety_factor,
                                 adjust_lr_fn, conv_mode, normalize_spatial, scale_eps,
                                 capturable=False):
    """timm's _single_tensor_muon (flatten mode) with C-Optim's mask before NS."""
    assert conv_mode == "flatten"
    ns_coefficients = tm.resolve_ns_coefficients(ns_coefficients, tm._COEFFICIENTS)
    for param, grad, momentum_buf in zip(params, grads, momentum_bufs):
        param.mul_(1 - lr * weight_decay)
        momentum_buf.lerp_(grad, 1. - momentum)
        update = grad.lerp(momentum_buf, momentum) if nesterov else momentum_buf.clone()
        mask = (momentum_buf * grad > 0).to(grad.dtype)          # C-Optim c_muon.py
        update = update * mask / mask.mean().clamp(min=1e-3)     # C-Optim c_muon.py
        update_reshaped, original_shape = tm.reshape_for_muon(update, mode=conv_mode) \
            if update.ndim >= 3 else (update, update.shape)
        update_ortho = tm.zeropower_via_newtonschulz(
            update_reshaped, ns_steps, ns_coefficients, eps=eps,
            safety_factor=safety_factor, scale_eps=scale_eps)
        scale = tm.get_lr_scale(update_ortho.shape, adjust_lr_fn) if adjust_lr_fn else 1.0
        param.add_(update_ortho.reshape(original_shape), alpha=-lr * scale)


def _with_caution(fn):
    @functools.wraps(fn)
    def wrapped(*args, **kwargs):
        kwargs["caution"] = True
        return fn(*args, **kwargs)
    return wrapped


def inputs():
    torch.manual_seed(7)
    init = [torch.randn(s, dtype=torch.float64) for s in SHAPES]
    grads = []
    for s in range(1, STEPS + 1):
        step = [torch.randn(shape, dtype=torch.float64) * sc for shape, sc in zip(SHAPES, SCALES)]
        if s == 3:
            step[2] = torch.zeros_like(step[2])
        grads.append(step)
    return init, grads


def run(case):
    init, grads = inputs()
    params = [torch.nn.Parameter(p.clone()) for p in init]
    saved = (tm.zeropower_via_newtonschulz, tm._single_tensor_muon, tm.adamw, tm.nadamw)
    tm.zeropower_via_newtonschulz = _ns_f64
    if case["caution"]:
        tm._single_tensor_muon = _cautious_single_tensor_muon
        tm.adamw = _with_caution(saved[2])
        tm.nadamw = _with_caution(saved[3])
    try:
        opt = tm.Muon(params, lr=LR, weight_decay=WD, **case["kw"])
        out = {f"init.{i}": p.clone() for i, p in enumerate(init)}
        for s, step in enumerate(grads, start=1):
            for i, (p, g) in enumerate(zip(params, step)):
                p.grad = g.clone()
                out[f"grad.{s}.{i}"] = g.clone()
            opt.step()
            for i, p in enumerate(params):
                out[f"param.{s}.{i}"] = p.detach().clone()
    finally:
        tm.zeropower_via_newtonschulz, tm._single_tensor_muon, tm.adamw, tm.nadamw = saved
    meta = {"case": json.dumps(dict(case["kw"], caution=case["caution"], lr=LR, weight_decay=WD)),
            "shapes": json.dumps(SHAPES)}
    return out, meta


def main():
    check = "--check" in sys.argv
    os.makedirs(OUT, exist_ok=True)
    for name, case in CASES.items():
        tensors, meta = run(case)
        path = os.path.join(OUT, f"{name}.safetensors")
        if check:
            old = load_file(path)
            worst = max((old[k] - v).abs().max().item() for k, v in tensors.items())
            print(f"{name}: max |diff| {worst:.3e}")
            assert worst == 0.0, name
        else:
            save_file({k: v.contiguous() for k, v in tensors.items()}, path, metadata=meta)
            print(f"wrote {path}")


if __name__ == "__main__":
    main()
