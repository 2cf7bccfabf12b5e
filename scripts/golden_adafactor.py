#!/usr/bin/env python3
"""Golden vectors for the Adafactor family (timm `adafactor`, `cadafactor`,
`adafactorbv`, `cadafactorbv`; C-Optim's c_adafactor.py).

How to run (from the repository root; C-Optim is not a package, so its file is named):

    git -C <C-Optim checkout> show 2c0517c4db2e50b56d389ba4803eab1f4b3b8ae3:c_adafactor.py > /tmp/c_adafactor.py
    python3 scripts/golden_adafactor.py --coptim /tmp/c_adafactor.py          # (re)write
    python3 scripts/golden_adafactor.py --coptim /tmp/c_adafactor.py --check  # verify

Needs torch, timm, transformers (c_adafactor.py imports its `require_version`),
safetensors. The committed files were produced with torch 2.15.0+cu132 (CPU), timm
1.0.31, Python 3.11, C-Optim at commit 2c0517c4db2e50b56d389ba4803eab1f4b3b8ae3.

Inputs (tests/golden/adafactor/inputs.safetensors): torch.manual_seed(SEED), then the
initial params, then the gradients step by step, tensor by tensor, all torch.randn (f32)
times GRAD_SCALES[i]; tensor 3 gets an all-zero gradient at step 3. The shapes are
golden.py's six plus a square, a wide, a tall, a one-row and a 4-D (convolution-like)
tensor, so that every factoring rule factors some of them and not others. Each case's
file holds `param.{i}.step{s}` (s in SNAPSHOTS) and `state.<key>.{i}` after the last step
(the optimizer's own keys; bf16 momentum converted exactly to f32), and the metadata
`reference` (the optimizer), `kwargs` (JSON) and `caution` (the normalization, or
"off"). --check reruns every case and requires the files bit for bit; the independent
f64 replay is coptim's own reference (tests/golden_adafactor.rs).

Sources: timm/optim/adafactor.py (Adafactor.step, _get_options, _get_lr: relative step
and parameter scale only without an external lr, weight decay scaled by the step's lr,
caution on the first moment with mean_clamp(1e-3)); timm/optim/adafactor_bv.py
(_factored_dims: the two largest dims; _single_tensor_adafactor: beta2 = min(cap, 1 -
t^-decay_rate), momentum lerp in bf16, caution before the lr multiply, decay after);
C-Optim c_adafactor.py (Hugging Face's Adafactor: always factored over the last two
dims, parameter scale on every lr, caution whenever beta1 is set, numel / (k + 1)).
"""

import argparse
import importlib.util
import json
import os
import sys

import torch
from safetensors import safe_open
from safetensors.torch import save_file
from timm.optim.adafactor import Adafactor
from timm.optim.adafactor_bv import AdafactorBigVision

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import golden  # noqa: E402  (the inputs' generator)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT_DIR = os.path.join(ROOT, "tests", "golden", "adafactor")
SEED = 14
STEPS = 5
SHAPES = [[1], [7], [16, 17], [255], [3, 5, 7], [257],
          [20, 20], [17, 30], [30, 17], [1, 30], [18, 17, 2, 2]]
GRAD_SCALES = [1.0, 0.5, 2.0, 1.0, 0.1, 3.0, 1.0, 0.3, 1.5, 1.0, 0.7]
# golden.py's zero gradient: tensor 3 at step 3.
# The steps after which the params are stored (the first, the zero-gradient one, the last).
SNAPSHOTS = [1, 3, 5]

# (file name, optimizer, kwargs, caution normalization or "off")
CASES = [
    ("timm_adafactor", "timm.Adafactor", dict(weight_decay=0.01), "off"),
    ("timm_adafactor_lr", "timm.Adafactor",
     dict(lr=1e-2, betas=(0.9, 0.999), weight_decay=0.01), "off"),
    ("timm_cadafactor", "timm.Adafactor",
     dict(betas=(0.9, 0.999), weight_decay=0.01, caution=True), "mean_clamp"),
    ("timm_cadafactor_warmup", "timm.Adafactor",
     dict(betas=(0.9, 0.999), warmup_init=True, min_dim_size_to_factor=4, caution=True),
     "mean_clamp"),
    ("timm_adafactorbv", "timm.AdafactorBigVision", dict(lr=1e-2, weight_decay=0.01), "off"),
    ("timm_cadafactorbv", "timm.AdafactorBigVision",
     dict(lr=1e-2, weight_decay=0.01, clipping_threshold=1.0, caution=True), "mean_clamp"),
    ("coptim_cadafactor", "C-Optim.Adafactor", dict(beta1=0.9, weight_decay=0.01),
     "numel_over_count_plus_one"),
]


def optimizer_class(reference, coptim_path):
    if reference == "timm.Adafactor":
        return Adafactor
    if reference == "timm.AdafactorBigVision":
        return AdafactorBigVision
    spec = importlib.util.spec_from_file_location("c_adafactor", coptim_path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.Adafactor


def run_case(case, init, grads, coptim_path):
    name, reference, kwargs, caution = case
    params = [torch.nn.Parameter(p.clone()) for p in init]
    opt = optimizer_class(reference, coptim_path)(params, **kwargs)
    out = {}
    for s, gs in enumerate(grads, start=1):
        for p, g in zip(params, gs):
            p.grad = g.clone()
        opt.step()
        for i, p in enumerate(params if s in SNAPSHOTS else []):
            out[f"param.{i}.step{s}"] = p.detach().clone()
    for i, p in enumerate(params):
        for key, value in opt.state[p].items():
            if key.startswith("exp_avg"):
                out[f"state.{key}.{i}"] = torch.as_tensor(value).float().reshape(-1).clone()
    meta = dict(reference=reference, kwargs=json.dumps(kwargs), caution=caution,
                snapshots=json.dumps(SNAPSHOTS))
    return out, meta


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--coptim", required=True, help="path to C-Optim's c_adafactor.py")
    ap.add_argument("--check", action="store_true")
    args = ap.parse_args()
    init, grads = golden.make_inputs(SEED, SHAPES, GRAD_SCALES, STEPS)
    inputs = {f"param.{i}.init": p for i, p in enumerate(init)}
    for s, gs in enumerate(grads, start=1):
        inputs.update({f"grad.{s}.{i}": g for i, g in enumerate(gs)})
    shapes = json.dumps(SHAPES)
    files = [("inputs", inputs, dict(shapes=shapes, seed=str(SEED), steps=str(STEPS)))]
    files += [(c[0], *run_case(c, init, grads, args.coptim)) for c in CASES]
    os.makedirs(OUT_DIR, exist_ok=True)
    bad = 0
    for name, tensors, meta in files:
        path = os.path.join(OUT_DIR, f"{name}.safetensors")
        if not args.check:
            save_file({k: v.contiguous() for k, v in tensors.items()}, path, metadata=meta)
            continue
        with safe_open(path, "pt") as f:
            same = set(f.keys()) == set(tensors) and all(
                torch.equal(f.get_tensor(k), tensors[k]) for k in tensors)
        print(f"{name}: {'reproduced bit for bit' if same else 'DIFFERS'}")
        bad += not same
    raise SystemExit(1 if bad else 0)


if __name__ == "__main__":
    main()
