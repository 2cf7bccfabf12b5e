#!/usr/bin/env python3
"""Golden vectors for coptim from the PyTorch reference optimizers.

How to run (from the repository root):

    python3 scripts/golden.py            # (re)write tests/golden/*
    python3 scripts/golden.py --only timm_nadamw timm_factory  # just these
    python3 scripts/golden.py --check    # verify the committed files

Needs torch, timm, pytorch_optimizer, safetensors and numpy. The committed files were
produced with:

    torch 2.15.0+cu132 (PyPI wheel, run on CPU only), timm 1.0.31, pytorch_optimizer 4.1.0,
    safetensors 0.8.0, numpy 2.4.6, Python 3.11

Each case runs one reference optimizer for STEPS steps on six f32 tensors of shapes
SHAPES, on CPU, with the single-tensor (foreach=False) code path. Inputs (initial
params and the gradient of each step) come from torch.manual_seed(SEED) and are the
same for every case. Tensor 3 ([255]) gets an all-zero gradient at step 3 (empty
caution mask). Files hold, all f32:

    param.{i}.init        initial value of tensor i
    grad.{s}.{i}          gradient given to tensor i at step s (s = 1..STEPS)
    param.{i}.step{s}     tensor i after step s
    state.<key>.{i}       optimizer state of tensor i after the last step, <key> being
                          the optimizer's own state key (exp_avg, exp_avg_sq,
                          momentum_buffer); scalar step counters are not stored

and string metadata (see tests/golden/README.md).

--check does not trust the references: it (1) re-runs every case and requires the
committed files to be reproduced bit for bit, (2) replays every case with an
independent float64 NumPy implementation of the rules in CAUTIOUS_OPTIMIZERS.md and
reports, per case, max over tensors and steps of max|diff| / max|ref| (fails above
1e-6), (3) reports how far timm's/torch's foreach (multi-tensor) paths and timm's
create_optimizer_v2 factory land from the committed single-tensor results.
"""

import argparse
import json
import math
import os
import sys
from importlib.metadata import version

import numpy as np
import torch
from safetensors import safe_open
from safetensors.torch import save_file

import timm.optim
from timm.optim.adamw import AdamWLegacy
from timm.optim.adan import Adan
from timm.optim.lion import Lion as TimmLion
from timm.optim.nadamw import NAdamW
from timm.optim.laprop import LaProp
from timm.optim.mars import Mars
from timm.optim.adopt import Adopt
from timm.optim.sgdw import SGDW
from pytorch_optimizer import Lion as PyoptLion

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT_DIR = os.path.join(ROOT, "tests", "golden")

# Smallest seed >= 0 for which, in every cautious case, the 1-element tensor 0 is fully
# masked (k = 0) at some step and fully kept (k = 1) at another (per the f64 replay).
SEED = 5
STEPS = 6
SHAPES = [[1], [7], [16, 17], [255], [3, 5, 7], [257]]
# Per-tensor gradient scale (standard normal times this).
GRAD_SCALES = [1.0, 0.5, 2.0, 1.0, 0.1, 3.0]
# (step, tensor) that gets an all-zero gradient.
ZERO_GRAD_STEP, ZERO_GRAD_TENSOR = 3, 3
TOL = 1e-6

TORCH_EPS_STYLE = "torch: den = sqrt(v)/sqrt(bc2) + eps; p -= (lr/bc1) * m/den"


def make_inputs(seed=SEED, shapes=SHAPES, grad_scales=GRAD_SCALES, steps=STEPS):
    """Initial params and per-step gradients, identical for every case (other
    scripts pass their own seed, shapes, scales and steps)."""
    torch.manual_seed(seed)
    init = [torch.randn(s, dtype=torch.float32) for s in shapes]
    grads = []  # grads[s-1][i]
    for s in range(1, steps + 1):
        gs = []
        for i, shape in enumerate(shapes):
            g = torch.randn(shape, dtype=torch.float32) * grad_scales[i]
            if s == ZERO_GRAD_STEP and i == ZERO_GRAD_TENSOR:
                g = torch.zeros_like(g)
            gs.append(g)
        grads.append(gs)
    return init, grads


# ----------------------------------------------------------------------------- cases

# Each optimizer family: its metadata where a case's arguments do not say otherwise
# (hyperparameters it does not have are 0.0), its state keys and its eps placement.
FAMILIES = {
    "adamw": dict(meta=dict(lr=1e-3, betas=(0.0, 0.0), eps=0.0, weight_decay=0.0, momentum=0.0,
                            nesterov=False, eps_style=TORCH_EPS_STYLE),
                  state_keys=["exp_avg", "exp_avg_sq"]),
    "nadamw": dict(meta=dict(lr=1e-3, betas=(0.0, 0.0), eps=0.0, weight_decay=0.0, momentum=0.0,
                             nesterov=False, eps_style=TORCH_EPS_STYLE),
                   state_keys=["exp_avg", "exp_avg_sq"]),
    "laprop": dict(meta=dict(lr=1e-3, betas=(0.0, 0.0), eps=0.0, weight_decay=0.0, momentum=0.0,
                             nesterov=False, eps_style="den = sqrt(v/bc2) + eps"),
                   state_keys=["exp_avg", "exp_avg_sq"]),
    "adopt": dict(meta=dict(lr=1e-3, betas=(0.0, 0.0), eps=0.0, weight_decay=0.0, momentum=0.0,
                            nesterov=False, eps_style="n = g / max(sqrt(v), eps)"),
                  state_keys=["exp_avg", "exp_avg_sq"]),
    "lion": dict(meta=dict(lr=1e-3, betas=(0.0, 0.0), eps=0.0, weight_decay=0.0, momentum=0.0,
                           nesterov=False, eps_style="none (Lion has no eps)"),
                 state_keys=["exp_avg"]),
    "sgd": dict(meta=dict(lr=1e-3, betas=(0.0, 0.0), eps=0.0, weight_decay=0.0, momentum=0.0,
                          nesterov=False, eps_style="none (SGD has no eps)"),
                state_keys=["momentum_buffer"]),
    "mars": dict(meta=dict(lr=1e-3, betas=(0.0, 0.0), eps=0.0, weight_decay=0.0, momentum=0.0,
                           nesterov=False, eps_style=TORCH_EPS_STYLE),
                 state_keys=["exp_avg", "last_grad", "exp_avg_sq"]),
}
# Adan (proximal decay after the step) and AdanW (decoupled decay before it).
for _adan in ("adan", "adanw"):
    FAMILIES[_adan] = dict(meta=dict(lr=1e-3, betas=(0.0, 0.0, 0.0), eps=0.0, weight_decay=0.0,
                                     momentum=0.0, nesterov=False,
                                     eps_style="den = sqrt(v)/sqrt(bc3) + eps"),
                           state_keys=["exp_avg", "exp_avg_sq", "exp_avg_diff", "neg_pre_grad"])

# Reference classes, by the dotted path the metadata names them with. The installed
# sources (timm 1.0.31, pytorch_optimizer 4.1.0, torch 2.15.0) each case reproduces:
#   torch.optim.AdamW            torch/optim/adamw.py (-> torch/optim/adam.py _single_tensor_adam)
#   timm.optim.adamw.AdamWLegacy timm/optim/adamw.py:57 (__init__), :160 (caution mask, _single_tensor_adamw)
#   timm.optim.lion.Lion         timm/optim/lion.py:37 (__init__), single-tensor lion below it
#   timm.optim.sgdw.SGDW         timm/optim/sgdw.py:27 (__init__), _single_tensor_sgdw below it
#   pytorch_optimizer.Lion       pytorch_optimizer/optimizer/lion.py (cautious: apply_cautious)
#   timm.optim.nadamw.NAdamW     timm/optim/nadamw.py:55 (__init__), :238 _single_tensor_nadamw
#                                (:275 decay, :279-280 moments, :326 look-ahead, :331-334 mask, :336 step)
#   timm.optim.laprop.LaProp     timm/optim/laprop.py:40 (__init__), :150-163 exp_avg_lr_1/2 and
#                                step_size, :244 _single_tensor_laprop (:262-266 moments, :268-271
#                                mask on exp_avg, :273 step, :275-277 decay after the step)
#   timm.optim.mars.Mars         timm/optim/mars.py:97 (__init__), :25 _mars_single_tensor_step
#                                (:46 path by rank, :48-52 c_t (step 1: g), :54 clip to unit norm,
#                                :55 exp_avg, :57-61 mask, :63-73 adamw/lion update with coupled
#                                decay, :75-86 the AdamW path of 1-D tensors), :207 last_grad = g
#   timm.optim.adan.Adan         timm/optim/adan.py:65 (__init__), :159-160 neg_pre_grad = -g at
#                                step 1, :198 _single_tensor_adan (:226-232 moments, :234-236 den
#                                and step sizes, :238-242 mask on exp_avg only, :244-251 decay:
#                                no_prox before, else p /= 1 + lr*wd after), :253 neg_pre_grad = -g
#   timm.optim.adopt.Adopt       timm/optim/adopt.py:65 (__init__), :262 _single_tensor_adopt
#                                (:318-319 coupled decay into the gradient, :322-324 step 1 only
#                                sets v, :326-328 decoupled decay, :330-335 normalized gradient
#                                and its clip, :337 moment, :339-343 mask against the gradient,
#                                :345 step, :347 v after the step)
CLASSES = {
    "timm.optim.mars.Mars": Mars,
    "timm.optim.adan.Adan": Adan,
    "timm.optim.adopt.Adopt": Adopt,
    "timm.optim.nadamw.NAdamW": NAdamW,
    "timm.optim.laprop.LaProp": LaProp,
    "torch.optim.AdamW": torch.optim.AdamW,
    "timm.optim.adamw.AdamWLegacy": AdamWLegacy,
    "timm.optim.lion.Lion": TimmLion,
    "timm.optim.sgdw.SGDW": SGDW,
    "pytorch_optimizer.Lion": PyoptLion,
}

# Keywords create_optimizer_v2 sets by itself from the optimizer's name (or that only
# steer execution): left out when a case is rebuilt through the factory.
FACTORY_IMPLIED = ("caution", "corrected_weight_decay", "foreach", "amsgrad", "dampening", "no_prox")


def case(name, family, cls, args, notes, suffix="", foreach=True, timm=None, factory=False):
    """One golden case: `cls(params, **args)` (args as written in the metadata) for the
    optimizer `family`; `foreach` adds the multi-tensor path and `timm` the
    create_optimizer_v2 name to cross-check in --check. With `factory`, the metadata
    also names the timm name and keyword arguments (`timm_name`, `timm_kwargs`) that
    build the same optimizer, and tests/golden.rs builds coptim's through
    `OptimizerConfig::from_timm` from them."""
    return dict(name=name, family=family, cls=cls, args=args, notes=notes, suffix=suffix,
                foreach=foreach, timm=timm, factory=factory)


def timm_case(name, family, cls, args, caution, notes, **kw):
    """A case of a timm class: `args`, then timm's caution switch, plain (uncorrected)
    decay and the single-tensor path."""
    return case(name, family, cls,
                f"{args}, caution={caution}, corrected_weight_decay=False, foreach=False",
                notes, **kw)


# The SGDW cases' hyperparameters before `nesterov`.
SGDW_ARGS = "lr=1e-2, momentum=0.9, dampening=0.0, weight_decay=1e-2"

CASES = [
    case("torch_adamw", "adamw", "torch.optim.AdamW",
         "lr=1e-2, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2, amsgrad=False, foreach=False",
         "p *= 1 - lr*wd; m.lerp_(g, 1-b1); v = b2*v + (1-b2)*g*g; "
         "p.addcdiv_(m, sqrt(v)/sqrt(bc2) + eps, value=-lr/bc1)", timm="adamw"),
    case("torch_adamw_nowd", "adamw", "torch.optim.AdamW",
         "lr=1e-2, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0, amsgrad=False, foreach=False",
         "as torch_adamw without weight decay"),
    timm_case("timm_adamw", "adamw", "timm.optim.adamw.AdamWLegacy",
              "lr=1e-2, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2, amsgrad=False", False,
              "same math as torch_adamw",
              suffix="[timm's own AdamW; timm.optim.AdamW is torch.optim.AdamW in timm 1.0.31]"),
    timm_case("timm_cadamw", "adamw", "timm.optim.adamw.AdamWLegacy",
              "lr=1e-2, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2, amsgrad=False", True,
              "mask = (m*g > 0) on the raw (not bias-corrected) exp_avg; "
              "mask /= max(mean(mask), 1e-3); p.addcdiv_(m*mask, den, value=-lr/bc1); "
              "exp_avg state itself is not masked",
              suffix="[= timm create_optimizer_v2 opt='cadamw']", timm="cadamw"),
    timm_case("timm_cadamw_nowd", "adamw", "timm.optim.adamw.AdamWLegacy",
              "lr=1e-2, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0, amsgrad=False", True,
              "as timm_cadamw without weight decay", timm="cadamw"),
    timm_case("timm_lion", "lion", "timm.optim.lion.Lion",
              "lr=1e-3, betas=(0.9, 0.99), weight_decay=1e-2", False,
              "p *= 1 - lr*wd; u = sign(m.lerp(g, 1-b1)); p -= lr*u; "
              "then m.lerp_(g, 1-b2) (momentum updated after the step)", timm="lion"),
    timm_case("timm_clion", "lion", "timm.optim.lion.Lion",
              "lr=1e-3, betas=(0.9, 0.99), weight_decay=1e-2", True,
              "p *= 1 - lr*wd; u = sign(m.lerp(g, 1-b1)); mask = (u*g > 0); "
              "mask /= max(mean(mask), 1e-3); p -= lr*u*mask; then m.lerp_(g, 1-b2)",
              suffix="[= timm opt='clion']", timm="clion"),
    timm_case("timm_csgdw", "sgd", "timm.optim.sgdw.SGDW",
              f"{SGDW_ARGS}, nesterov=False", True,
              "p *= 1 - lr*wd; buf = g (step 1) else buf*mu + g; u = buf; mask = (u*g > 0); "
              "mask /= max(mean(mask), 1e-3); p -= lr*u*mask", timm="csgdw"),
    timm_case("timm_csgdw_nesterov", "sgd", "timm.optim.sgdw.SGDW",
              f"{SGDW_ARGS}, nesterov=True", True,
              "as timm_csgdw with u = g + mu*buf (buf state is not masked)",
              suffix="[= timm opt='csgdw' defaults]", timm="csgdw"),
    timm_case("timm_sgdw_nesterov", "sgd", "timm.optim.sgdw.SGDW",
              f"{SGDW_ARGS}, nesterov=True", False,
              "p *= 1 - lr*wd; buf = g (step 1) else buf*mu + g; p -= lr*(g + mu*buf)", timm="sgdw"),
    case("pyopt_clion", "lion", "pytorch_optimizer.Lion",
         "lr=1e-3, betas=(0.9, 0.99), weight_decay=1e-2, weight_decouple=True, fixed_decay=False, "
         "foreach=False, maximize=False, cautious=True",
         "decoupled decay p *= 1 - wd*lr (weight_decouple=True, fixed_decay=False); "
         "u = sign(m.lerp(g, 1-b1)); m.lerp_(g, 1-b2) (u already taken from the old m); "
         "mask = (u*g > 0); mask *= numel/(sum(mask)+1); p -= lr*u*mask", foreach=False),
]


def member_cases(family, cls, args, notes, timm_name):
    """A member's plain and cautious cases (timm_<name>, timm_c<name>), both built
    through the factory in the Rust test."""
    return [
        case(f"timm_{timm_name}", family, cls, f"{args}, caution=False, foreach=False",
             notes, timm=timm_name, factory=True),
        case(f"timm_c{timm_name}", family, cls, f"{args}, caution=True, foreach=False",
             notes + "; caution: mask = (x*g > 0) / max(mean(mask), 1e-3) on the masked quantity x",
             timm="c" + timm_name, factory=True),
    ]


CASES += member_cases(
    "nadamw", "timm.optim.nadamw.NAdamW",
    "lr=1e-2, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2, corrected_weight_decay=False",
    "p *= 1 - lr*wd; m.lerp_(g, 1-b1); v = b2*v + (1-b2)*g*g; n = m.lerp(g, 1-b1) (x = n); "
    "p.addcdiv_(n, sqrt(v)/sqrt(bc2) + eps, value=-lr/bc1)", "nadamw")

CASES += member_cases(
    "laprop", "timm.optim.laprop.LaProp",
    "lr=1e-2, betas=(0.9, 0.999), eps=1e-15, weight_decay=1e-2, corrected_weight_decay=False",
    "v = b2*v + (1-b2)*g*g; m = b1*m + lr*(1-b1)*g/(sqrt(v/bc2) + eps) (x = m); "
    "p -= (lr/exp_avg_lr_1)*m, exp_avg_lr_1 = EMA_b1(lr) = lr*bc1 at a constant lr; "
    "then p -= lr*wd*p (decay after the step)", "laprop")


def mars_cases(suffix, args, notes, names=("mars", "cmars")):
    """MARS's plain and cautious cases (timm_mars<suffix>, timm_cmars<suffix>), or those of
    `names`; Mars has no foreach path."""
    args = f"lr=3e-3, betas=(0.9, 0.99), eps=1e-8, weight_decay=1e-2, {args}"
    return [case(f"timm_{name}{suffix}", "mars", "timm.optim.mars.Mars", f"{args}, caution={on}",
                 notes + ("; caution: mask = (m*g > 0) / max(mean(mask), 1e-3)" if on else ""),
                 foreach=False, timm=name, factory=True)
            for name, on in (("mars", False), ("cmars", True)) if name in names]


MARS_NOTES = ("c = g (step 1) else g + gamma*b1/(1-b1)*(g - last_grad); c /= max(||c||, 1) per tensor; "
              "m = b1*m + (1-b1)*c (x = m); ")
CASES += mars_cases("", "gamma=0.025, mars_type='adamw', optimize_1d=False, lr_1d_factor=1.0, betas_1d=None",
                    MARS_NOTES + "v = b2*v + (1-b2)*c*c; p -= lr*(wd*p + (m/bc1)/(sqrt(v)/sqrt(bc2) + eps)); "
                    "1-D tensors: AdamW on g; last_grad = g")
CASES += mars_cases("_lion", "gamma=0.025, mars_type='lion', optimize_1d=False, lr_1d_factor=1.0, betas_1d=None",
                    MARS_NOTES + "p -= lr*(wd*p + sign(m*mask)) (the mask's scale drops out); "
                    "1-D tensors: AdamW on g; last_grad = g")
CASES += mars_cases("_1d", "gamma=0.05, mars_type='adamw', optimize_1d=True, lr_1d_factor=1.0, betas_1d=None",
                    MARS_NOTES + "every tensor, 1-D ones too, on the MARS path (optimize_1d)", ["mars"])
CASES += mars_cases("_lion_1d", "gamma=0.025, mars_type='lion', optimize_1d=True, lr_1d_factor=1.0, "
                    "betas_1d=None", MARS_NOTES + "lion type on every tensor (optimize_1d)", ["cmars"])
CASES += mars_cases("_opts", "gamma=0.025, mars_type='adamw', optimize_1d=False, lr_1d_factor=0.5, "
                    "betas_1d=(0.8, 0.95)", MARS_NOTES + "1-D tensors: AdamW with betas_1d, "
                    "p -= lr*lr_1d_factor*(wd*p + update)", ["cmars"])

ADAN_NOTES = ("diff = g - g_prev (0 at step 1); m.lerp_(g, 1-b1) (x = m); d = b2*d + (1-b2)*diff; "
              "v = b3*v + (1-b3)*(g + b2*diff)^2; den = sqrt(v)/sqrt(bc3) + eps; "
              "p -= (lr/bc1)*(m*mask)/den + (lr*b2/bc2)*d/den (the d term never masked)")
CASES += member_cases(
    "adan", "timm.optim.adan.Adan",
    "lr=1e-2, betas=(0.98, 0.92, 0.99), eps=1e-8, weight_decay=5e-2, no_prox=False",
    ADAN_NOTES + "; then p /= 1 + lr*wd (proximal decay after the step)", "adan")
CASES += member_cases(
    "adanw", "timm.optim.adan.Adan",
    "lr=1e-2, betas=(0.98, 0.92, 0.99), eps=1e-8, weight_decay=5e-2, no_prox=True",
    "p *= 1 - lr*wd first (no_prox); " + ADAN_NOTES, "adanw")

ADOPT_NOTES = ("step 1: v = g*g only; then n = g / max(sqrt(v), eps) clipped to +-(t-1)^clip_exp; "
               "m.lerp_(n, 1-b1) (x = m, masked against g); p -= lr*m; v = b2*v + (1-b2)*g*g")
ADOPT_ARGS = "lr=1e-2, betas=(0.9, 0.9999), eps=1e-6, weight_decay=1e-2, corrected_weight_decay=False"

CASES += member_cases(
    "adopt", "timm.optim.adopt.Adopt", f"{ADOPT_ARGS}, clip_exp=0.333, decoupled=False",
    "coupled decay g += wd*p (the mask sees it); " + ADOPT_NOTES, "adopt")
CASES += member_cases(
    "adopt", "timm.optim.adopt.Adopt", f"{ADOPT_ARGS}, clip_exp=0.333, decoupled=True",
    "decoupled decay p *= 1 - lr*wd from step 2; " + ADOPT_NOTES, "adoptw")
CASES += [
    case(f"timm_{c}adopt_noclip", "adopt", "timm.optim.adopt.Adopt",
         f"{ADOPT_ARGS}, clip_exp=None, decoupled=False, caution={bool(c)}, foreach=False",
         "as timm_adopt without the clip", timm=f"{c}adopt", factory=True)
    for c in ("", "c")
]


def factory_kwargs_of(c):
    """The case's keywords as create_optimizer_v2 takes them with its timm name."""
    return {k: v for k, v in kwargs_of(c).items() if k not in FACTORY_IMPLIED}


def kwargs_of(c):
    """The case's keyword arguments as a dict (evaluated from the metadata text)."""
    return eval(f"dict({c['args']})")  # the table above is the only input


def make_of(c, **override):
    """A constructor of the case's optimizer from a list of params."""
    cls = CLASSES[c["cls"]]
    kw = {**kwargs_of(c), **override}
    return lambda ps: cls(ps, **kw)


def foreach_make_of(c):
    return make_of(c, foreach=True) if c["foreach"] else None


def factory_make_of(c):
    # create_optimizer_v2 given a plain list of tensors (not a model) does no
    # weight-decay filtering; used only as a cross-check in --check.
    if c["timm"] is None:
        return None
    kw = factory_kwargs_of(c)
    if c["foreach"]:
        kw["foreach"] = False  # a class without a foreach path (Mars) takes no such keyword
    return lambda ps: timm.optim.create_optimizer_v2(ps, opt=c["timm"], **kw)


def caution_of(c):
    kw = kwargs_of(c)
    if kw.get("cautious"):
        return "numel_over_count_plus_one"
    return "mean_clamp" if kw.get("caution") else "off"


def state_keys_of(c):
    return FAMILIES[c["family"]]["state_keys"]


# ----------------------------------------------------------------------------- timm factory

# (timm name, keyword arguments) pairs whose parameter group tests/golden/timm_factory.json
# records, for the Rust factory `OptimizerConfig::from_timm` (tests/timm_factory.rs).
FACTORY_CASES = [
    (name, kwargs)
    for name in ("adamw", "cadamw", "lion", "clion", "sgdw", "csgdw", "nadamw", "cnadamw",
                 "laprop", "claprop")
    for kwargs in (
        {},
        {"lr": 3e-4, "weight_decay": 0.05, "betas": [0.9, 0.95], "eps": 1e-6, "momentum": 0.8,
         "foreach": False},
    )
] + [
    (name, kwargs) for name in ("adan", "adanw", "cadan", "cadanw")
    for kwargs in ({}, {"lr": 3e-4, "weight_decay": 0.02, "betas": [0.9, 0.9, 0.999], "eps": 1e-6,
                        "foreach": False})
] + [
    ("cadanw", {"no_prox": False, "caution": False}),
] + [
    ("sgdw", {"lr": 0.1, "nesterov": False, "weight_decay": 1e-4}),
    ("clion", {"lr": 1e-4, "caution": False}),
    ("cadamw", {"lr": 1e-3, "caution": False, "maximize": False, "capturable": False}),
] + [
    # LAMB and the corrected-decay names (scripts/golden_family.py has their vectors).
    (name, {}) for name in ("lamb", "lambc", "lambw", "lambcw", "lambcd", "clamb", "clambw",
                            "adamc", "cadamc", "lionc", "clionc", "sgdc", "csgdc", "lapropc")
] + [
    ("clamb", {"lr": 2e-3, "weight_decay": 0.05, "betas": [0.9, 0.95], "eps": 1e-8,
               "max_grad_norm": None, "always_adapt": True, "grad_averaging": False,
               "bias_correction": False}),
    ("clambw", {"lr": 2e-3, "weight_decay": 0.05, "corrected_weight_decay": True, "trust_clip": True}),
] + [(name, {}) for name in ("mars", "cmars")] + [
    ("cmars", {"lr": 1e-3, "weight_decay": 0.1, "betas": [0.9, 0.95], "eps": 1e-6, "gamma": 0.05,
               "mars_type": "lion", "optimize_1d": True, "lr_1d_factor": 0.5, "betas_1d": [0.8, 0.9]}),
] + [
    (name, {}) for name in ("adopt", "adoptw", "adoptc", "cadopt", "cadoptw", "cadoptc", "nadamc", "cnadamc")
] + [
    ("cadopt", {"lr": 2e-3, "weight_decay": 0.05, "betas": [0.9, 0.99], "eps": 1e-8, "clip_exp": None,
                "decoupled": True, "corrected_weight_decay": True}),
    ("adopt", {"weight_decay": 0.05, "clip_exp": 0.25, "corrected_weight_decay": True}),
] + [
    # AdamP and SGDP (scripts/golden_projection.py has their vectors; SGDP needs an lr).
    (name, kwargs) for name in ("adamp", "cadamp", "sgdp", "csgdp")
    for kwargs in ({"lr": 1e-2}, {"lr": 0.1, "weight_decay": 1e-4, "delta": 0.2, "wd_ratio": 0.5,
                                  "nesterov": False, "eps": 1e-6})
] + [
    # RMSpropTF (scripts/golden_family.py has its vectors).
    (name, kwargs) for name in ("rmsproptf", "crmsproptf", "rmsproptfw", "rmsproptfc")
    for kwargs in ({}, {"lr": 3e-4, "weight_decay": 0.05, "eps": 1e-6, "momentum": 0.8, "alpha": 0.95,
                        "centered": True, "lr_in_momentum": False, "betas": [0.9, 0.95]})
]

FACTORY_PATH = os.path.join(OUT_DIR, "timm_factory.json")


def factory_fixture():
    """Each factory case with the class and first parameter group timm builds."""
    out = []
    for name, kwargs in FACTORY_CASES:
        kw = dict(kwargs)
        if not name.endswith("sgdw") and "rmsprop" not in name and "momentum" in kw:
            kw.pop("momentum")  # not a keyword of these classes: timm would reject it
        opt = timm.optim.create_optimizer_v2([torch.nn.Parameter(torch.zeros(2))], name, **kw)
        group = {k: (list(v) if isinstance(v, tuple) else v)
                 for k, v in opt.param_groups[0].items() if k != "params"}
        out.append(dict(name=name, kwargs=kw, cls=type(opt).__module__ + "." + type(opt).__name__,
                        group=group))
    return json.dumps(out, indent=1, sort_keys=True) + "\n"


# ----------------------------------------------------------------------------- run

def run_case(make, init, grads, state_keys):
    params = [torch.nn.Parameter(t.clone()) for t in init]
    opt = make(params)
    steps = []
    for s in range(STEPS):
        for p, g in zip(params, grads[s]):
            p.grad = g.clone()
        opt.step()
        steps.append([p.detach().clone() for p in params])
    states = {}
    for key in state_keys:
        states[key] = [opt.state[p][key].detach().clone() for p in params]
    for p in params:
        st = opt.state[p]
        for k, v in st.items():
            if torch.is_tensor(v) and v.dim() > 0 and k not in state_keys:
                raise RuntimeError(f"unexpected per-tensor state key {k!r}")
    return steps, states


def fmt(x):
    return repr(float(x))


def build_tensors(case, init, grads, steps, states):
    t = {}
    for i, p in enumerate(init):
        t[f"param.{i}.init"] = p.contiguous()
    for s in range(STEPS):
        for i in range(len(init)):
            t[f"grad.{s + 1}.{i}"] = grads[s][i].contiguous()
            t[f"param.{i}.step{s + 1}"] = steps[s][i].contiguous()
    for key, ts in states.items():
        for i, v in enumerate(ts):
            t[f"state.{key}.{i}"] = v.contiguous()
    for k, v in t.items():
        assert v.dtype == torch.float32, k
    return t


def build_meta(case):
    m = {**FAMILIES[case["family"]]["meta"], **kwargs_of(case)}
    source = f"{case['cls']}({case['args']})" + (f" {case['suffix']}" if case["suffix"] else "")
    factory = {"timm_name": case["timm"], "timm_kwargs": json.dumps(factory_kwargs_of(case))} \
        if case["factory"] else {}
    return {
        **factory,
        "case": case["name"],
        "source": source,
        "optimizer": case["family"],
        "caution": caution_of(case),
        "lr": fmt(m["lr"]),
        "beta1": fmt(m["betas"][0]),
        "beta2": fmt(m["betas"][1]),
        **({"beta3": fmt(m["betas"][2])} if len(m["betas"]) > 2 else {}),
        "eps": fmt(m["eps"]),
        "weight_decay": fmt(m["weight_decay"]),
        "weight_decay_style": "decoupled: p *= 1 - lr*weight_decay before the update, not masked",
        "momentum": fmt(m["momentum"]),
        "dampening": "0.0",
        "nesterov": "true" if m["nesterov"] else "false",
        "state_keys": json.dumps(state_keys_of(case)),
        "eps_style": m["eps_style"],
        "notes": case["notes"],
        **adopt_meta(m, case["family"]),
        **input_meta(),
    }


def adopt_meta(m, family):
    """ADOPT's own options (its cases only): decoupled decay, the clip exponent."""
    if family != "adopt":
        return {}
    clip = m["clip_exp"]
    return {"decoupled": "true" if m["decoupled"] else "false",
            "clip_exp": "none" if clip is None else fmt(clip),
            "weight_decay_style": "decoupled: p *= 1 - lr*wd before the update, from step 2"
            if m["decoupled"] else "coupled: g += wd*p before everything (the mask sees it)"}


def input_meta():
    """The metadata that describes the inputs and the environment (every case's)."""
    return {
        "steps": str(STEPS),
        "tensors": str(len(SHAPES)),
        "shapes": json.dumps(SHAPES),
        "grad_scales": json.dumps(GRAD_SCALES),
        "zero_grad": json.dumps({"step": ZERO_GRAD_STEP, "tensor": ZERO_GRAD_TENSOR}),
        "seed": str(SEED),
        "torch_version": torch.__version__,
        "timm_version": timm.__version__,
        "pytorch_optimizer_version": version("pytorch_optimizer"),
        "device": "cpu",
        "dtype": "float32",
    }


def generate(only):
    os.makedirs(OUT_DIR, exist_ok=True)
    init, grads = make_inputs()
    for case in CASES:
        if only and case["name"] not in only:
            continue
        steps, states = run_case(make_of(case), init, grads, state_keys_of(case))
        tensors = build_tensors(case, init, grads, steps, states)
        path = os.path.join(OUT_DIR, case["name"] + ".safetensors")
        save_file(tensors, path, metadata=build_meta(case))
        print(f"wrote {os.path.relpath(path, ROOT)} ({os.path.getsize(path)} bytes, {len(tensors)} tensors)")
    if not only or "timm_factory" in only:
        with open(FACTORY_PATH, "w") as f:
            f.write(factory_fixture())
        print(f"wrote {os.path.relpath(FACTORY_PATH, ROOT)}")


# ----------------------------------------------------------------------------- check

def load(path):
    with safe_open(path, framework="pt") as f:
        meta = f.metadata()
        tensors = {k: f.get_tensor(k) for k in f.keys()}
    return meta, tensors


def f64_replay(meta, tensors):
    """Independent float64 implementation of CAUTIOUS_OPTIMIZERS.md, driven by metadata only."""
    opt = meta["optimizer"]
    if opt == "mars":
        return mars_replay(meta, tensors)
    caution = meta["caution"]
    lr = float(meta["lr"])
    b1, b2 = float(meta["beta1"]), float(meta["beta2"])
    eps = float(meta["eps"])
    wd = float(meta["weight_decay"])
    mu = float(meta["momentum"])
    nesterov = meta["nesterov"] == "true"
    nt, ns = int(meta["tensors"]), int(meta["steps"])

    def f64(name):
        return tensors[name].double().numpy().copy()

    def scale(phi):
        n = phi.size
        k = int(phi.sum())
        counts[-1].append(k)
        if caution == "mean_clamp":
            return 1.0 / max(k / n, 1e-3)
        if caution == "numel_over_count_plus_one":
            return n / (k + 1)
        raise ValueError(caution)

    step_rule, decay = REPLAYS[opt]
    clip_exp = meta.get("clip_exp", "none")
    hp = dict(b1=b1, b2=b2, b3=float(meta.get("beta3", "0")), eps=eps, mu=mu, nesterov=nesterov,
              lr=lr, clip_exp=None if clip_exp == "none" else float(clip_exp))
    coupled = meta.get("decoupled") == "false"  # ADOPT's L2 decay: g += wd*p
    first_move = 2 if opt == "adopt" else 1  # ADOPT's step 1 only initializes v
    out_steps = []  # out_steps[s][i]
    counts = []  # counts[s][i]: kept coordinates k (rows stay empty when caution is off)
    p = [f64(f"param.{i}.init") for i in range(nt)]
    st = [{} for _ in range(nt)]  # per tensor: state key -> array
    for t in range(1, ns + 1):
        counts.append([])
        for i in range(nt):
            g = f64(f"grad.{t}.{i}")
            if coupled:
                g = g + wd * p[i]
            decays = not coupled and t >= first_move
            if decays and decay == "before":
                p[i] = p[i] * (1.0 - lr * wd)
            delta, x, *unmasked = step_rule(st[i], g, t, hp)
            if caution != "off":
                phi = (x * g > 0).astype(np.float64)
                delta = delta * phi * scale(phi)
            p[i] = p[i] - delta - sum(unmasked)
            if decays and decay == "after":
                p[i] = p[i] * (1.0 - lr * wd)
            elif decays and decay == "proximal":
                p[i] = p[i] / (1.0 + lr * wd)
        out_steps.append([x.copy() for x in p])
    keys = st[0].keys()
    return out_steps, {k: [s[k] for s in st] for k in keys}, counts


# Each family's step for the replay: (state, g, t, hyperparameters) -> (delta, x[, extra]),
# the step being p -= delta * mask(x * g > 0) + extra (an unmasked term); and where the
# decay goes: "before" (p *= 1 - lr*wd), "after" (the same after the step) or "proximal"
# (p /= 1 + lr*wd after the step).
def _zeros(st, g, *keys):
    for k in keys:
        st.setdefault(k, np.zeros_like(g))


def replay_adam(st, g, t, h, nesterov=False):
    _zeros(st, g, "exp_avg", "exp_avg_sq")
    b1, b2 = h["b1"], h["b2"]
    st["exp_avg"] = b1 * st["exp_avg"] + (1 - b1) * g
    st["exp_avg_sq"] = b2 * st["exp_avg_sq"] + (1 - b2) * g * g
    n = b1 * st["exp_avg"] + (1 - b1) * g if nesterov else st["exp_avg"]
    bc1, bc2 = 1 - b1 ** t, 1 - b2 ** t
    den = np.sqrt(st["exp_avg_sq"]) / math.sqrt(bc2) + h["eps"]
    return (h["lr"] / bc1) * n / den, n


def replay_lion(st, g, t, h):
    _zeros(st, g, "exp_avg")
    u = np.sign(h["b1"] * st["exp_avg"] + (1 - h["b1"]) * g)
    st["exp_avg"] = h["b2"] * st["exp_avg"] + (1 - h["b2"]) * g
    return h["lr"] * u, u


def replay_sgd(st, g, t, h):
    mu = h["mu"]
    st["momentum_buffer"] = g.copy() if t == 1 else mu * st["momentum_buffer"] + g
    u = g + mu * st["momentum_buffer"] if h["nesterov"] else st["momentum_buffer"]
    return h["lr"] * u, u


def replay_laprop(st, g, t, h):
    _zeros(st, g, "exp_avg", "exp_avg_sq")
    b1, b2, lr = h["b1"], h["b2"], h["lr"]
    st["exp_avg_sq"] = b2 * st["exp_avg_sq"] + (1 - b2) * g * g
    den = np.sqrt(st["exp_avg_sq"] / (1 - b2 ** t)) + h["eps"]
    st["exp_avg"] = b1 * st["exp_avg"] + lr * (1 - b1) * g / den
    return st["exp_avg"] / (1 - b1 ** t), st["exp_avg"]


def mars_replay(meta, tensors):
    """Float64 MARS (timm/optim/mars.py:25-87, :207) from the metadata: per tensor, the
    MARS path (rank >= 2, or every tensor with optimize_1d) or AdamW with betas_1d."""
    kw = json.loads(meta["timm_kwargs"])
    shapes = json.loads(meta["shapes"])
    b1, b2 = kw["betas"]
    b1d, b2d = kw["betas_1d"] or kw["betas"]
    lr, wd, eps, gamma = kw["lr"], kw["weight_decay"], 1e-8, kw["gamma"]
    cautious = meta["caution"] != "off"
    nt, ns = len(shapes), int(meta["steps"])
    p = [tensors[f"param.{i}.init"].double().numpy().copy() for i in range(nt)]
    st = [{k: np.zeros_like(x) for k in ("exp_avg", "last_grad", "exp_avg_sq")} for x in p]
    out_steps, counts = [], []
    for t in range(1, ns + 1):
        counts.append([])
        for i in range(nt):
            g = tensors[f"grad.{t}.{i}"].double().numpy()
            s = st[i]
            mars_path = kw["optimize_1d"] or len(shapes[i]) >= 2
            beta1, beta2 = (b1, b2) if mars_path else (b1d, b2d)
            x = g
            if mars_path:
                x = g if t == 1 else g + gamma * b1 / (1 - b1) * (g - s["last_grad"])
                x = x / max(np.linalg.norm(x), 1.0)
            s["exp_avg"] = beta1 * s["exp_avg"] + (1 - beta1) * x
            phi = (s["exp_avg"] * g > 0).astype(np.float64) if cautious else np.ones_like(g)
            scale = 1.0 / max(phi.mean(), 1e-3) if cautious else 1.0
            counts[-1].extend([int(phi.sum())] if cautious else [])
            if mars_path and kw["mars_type"] == "lion":
                u = np.sign(s["exp_avg"] * phi)
            else:
                s["exp_avg_sq"] = beta2 * s["exp_avg_sq"] + (1 - beta2) * x * x
                den = np.sqrt(s["exp_avg_sq"]) / math.sqrt(1 - beta2 ** t) + eps
                u = (s["exp_avg"] * phi * scale / (1 - beta1 ** t)) / den
            step_lr = lr if mars_path else lr * kw["lr_1d_factor"]
            p[i] = p[i] - step_lr * (wd * p[i] + u)
            s["last_grad"] = g.copy()
        out_steps.append([x.copy() for x in p])
    return out_steps, {k: [s[k] for s in st] for k in st[0]}, counts


def replay_adan(st, g, t, h):
    _zeros(st, g, "exp_avg", "exp_avg_sq", "exp_avg_diff")
    b1, b2, b3, lr = h["b1"], h["b2"], h["b3"], h["lr"]
    diff = np.zeros_like(g) if t == 1 else g + st["neg_pre_grad"]
    st["exp_avg"] = b1 * st["exp_avg"] + (1 - b1) * g
    st["exp_avg_diff"] = b2 * st["exp_avg_diff"] + (1 - b2) * diff
    st["exp_avg_sq"] = b3 * st["exp_avg_sq"] + (1 - b3) * (g + b2 * diff) ** 2
    st["neg_pre_grad"] = -g
    den = np.sqrt(st["exp_avg_sq"]) / math.sqrt(1 - b3 ** t) + h["eps"]
    return (lr / (1 - b1 ** t)) * st["exp_avg"] / den, st["exp_avg"], \
        (lr * b2 / (1 - b2 ** t)) * st["exp_avg_diff"] / den


def replay_adopt(st, g, t, h):
    _zeros(st, g, "exp_avg", "exp_avg_sq")
    if t == 1:
        st["exp_avg_sq"] = g * g
        return np.zeros_like(g), np.zeros_like(g)
    n = g / np.maximum(np.sqrt(st["exp_avg_sq"]), h["eps"])
    if h["clip_exp"] is not None:
        bound = (t - 1) ** h["clip_exp"]
        n = np.clip(n, -bound, bound)
    st["exp_avg"] = h["b1"] * st["exp_avg"] + (1 - h["b1"]) * n
    st["exp_avg_sq"] = h["b2"] * st["exp_avg_sq"] + (1 - h["b2"]) * g * g
    return h["lr"] * st["exp_avg"], st["exp_avg"]


REPLAYS = {
    "adopt": (replay_adopt, "before"),
    "laprop": (replay_laprop, "after"),
    "adamw": (replay_adam, "before"),
    "nadamw": (lambda st, g, t, h: replay_adam(st, g, t, h, nesterov=True), "before"),
    "lion": (replay_lion, "before"),
    "sgd": (replay_sgd, "before"),
    "adan": (replay_adan, "proximal"),
    "adanw": (replay_adan, "before"),
}


def rel(a, ref):
    a = np.asarray(a, dtype=np.float64)
    ref = np.asarray(ref, dtype=np.float64)
    d = np.max(np.abs(a - ref))
    r = np.max(np.abs(ref))
    return d / r if r > 0 else d


def check():
    init, grads = make_inputs()
    ok = True
    total = 0
    rows = []
    for case in CASES:
        path = os.path.join(OUT_DIR, case["name"] + ".safetensors")
        total += os.path.getsize(path)
        meta, tensors = load(path)
        # (1) bitwise reproduction
        steps, states = run_case(make_of(case), init, grads, state_keys_of(case))
        fresh = build_tensors(case, init, grads, steps, states)
        same = set(fresh) == set(tensors) and all(torch.equal(fresh[k], tensors[k]) for k in fresh)
        same = same and meta == build_meta(case)
        if not same:
            ok = False
        # (2) f64 replay of the documented rule
        ref_steps, ref_states, counts = f64_replay(meta, tensors)
        worst, where = 0.0, None
        for s in range(STEPS):
            for i in range(len(SHAPES)):
                r = rel(tensors[f"param.{i}.step{s + 1}"].numpy(), ref_steps[s][i])
                if r > worst:
                    worst, where = r, f"param.{i}.step{s + 1}"
        worst_state = 0.0
        for key in state_keys_of(case):
            for i in range(len(SHAPES)):
                worst_state = max(worst_state, rel(tensors[f"state.{key}.{i}"].numpy(), ref_states[key][i]))
        if worst > TOL or worst_state > TOL:
            ok = False
        # (3) other code paths of the same reference
        extra = []
        for label, mk in (("foreach", foreach_make_of(case)), ("create_optimizer_v2", factory_make_of(case))):
            if mk is None:
                continue
            st, _ = run_case(mk, init, grads, state_keys_of(case))
            d = max(rel(st[s][i].numpy(), tensors[f"param.{i}.step{s + 1}"].numpy())
                    for s in range(STEPS) for i in range(len(SHAPES)))
            extra.append(f"{label}={d:.2e}")
        if counts[0]:
            k0 = [counts[s][0] for s in range(STEPS)]
            k3 = counts[ZERO_GRAD_STEP - 1][ZERO_GRAD_TENSOR]
            extra.append(f"k(tensor0)={k0} k(tensor{ZERO_GRAD_TENSOR},step{ZERO_GRAD_STEP})={k3}")
            if 0 not in k0 or 1 not in k0 or k3 != 0:
                print(f"warning: {case['name']}: edge cases not exercised")
        rows.append((case["name"], same, worst, where, worst_state, extra))
    print(f"{'case':22} {'bitwise':8} {'f64 params max rel':>19}  {'(worst at)':18} {'f64 state':>9}  other paths vs file")
    for name, same, worst, where, ws, extra in rows:
        print(f"{name:22} {str(same):8} {worst:19.3e}  {str(where):18} {ws:9.2e}  {' '.join(extra)}")
    print(f"total size of tests/golden/*.safetensors: {total} bytes")
    with open(FACTORY_PATH) as f:
        factory_same = f.read() == factory_fixture()
    print(f"timm_factory.json reproduced: {factory_same}")
    ok = ok and factory_same
    print("CHECK OK" if ok else "CHECK FAILED")
    return ok


def run_cli(doc, check, generate, check_help, only_help=None):
    """A golden script's command line: `--check` exits with check()'s verdict, else
    generate() runs (given `--only`'s cases where `only_help` offers that option)."""
    ap = argparse.ArgumentParser(description=doc.split("\n")[0])
    ap.add_argument("--check", action="store_true", help=check_help)
    if only_help:
        ap.add_argument("--only", nargs="+", metavar="CASE", help=only_help)
    args = ap.parse_args()
    if args.check:
        sys.exit(0 if check() else 1)
    if only_help:
        generate(args.only)
    else:
        generate()


def main():
    run_cli(__doc__, check, generate,
            "verify committed files (bitwise rerun + independent f64 replay)",
            "write only these cases (and/or timm_factory), leaving the other files as they are")


if __name__ == "__main__":
    main()
