#!/usr/bin/env python3
"""Golden vectors for coptim's weight-decay options and per-tensor members.

How to run (from the repository root):

    python3 scripts/golden_family.py          # (re)write the files
    python3 scripts/golden_family.py --only timm_cadoptc  # just these
    python3 scripts/golden_family.py --check  # verify them

Same inputs, tensor names, file layout and check rule as scripts/golden.py (whose
helpers this script imports): six f32 tensors including the 1-element one, the all-zero
gradient of tensor 3 at step 3, 6 steps, normwise max|diff| / max|ref| <= 1e-6 against an
independent float64 NumPy replay driven by the metadata only. The cases here add, to
the metadata of golden.py, these string keys (tests/golden/README.md):

    cautious_weight_decay   "true": decay only where u * p >= 0 (u: the unmasked update)
    corrected_weight_decay  "true": decay lr^2 / max_lr * wd (timm), max_lr = the base lr
    schedule                coptim's LrSchedule as JSON; lr of step s = lr * factor(s)
    decoupled, trust_clip, always_adapt, grad_averaging, bias_correction, max_grad_norm
                            LAMB's options (max_grad_norm "none" when off)
    alpha, centered, lr_in_momentum, decoupled
                            RMSpropTF's options
    clip_exp                ADOPT's clip exponent ("none" when off)
    timm_name, timm_kwargs  the timm name and keywords that build the case (then
                            tests/golden.rs builds it through OptimizerConfig::from_timm
                            and applies `schedule`)

References, read from the installed sources (paths under site-packages):

- Cautious weight decay (arXiv 2510.12402): pytorch_optimizer 3.9.0-4.0.0
  `BaseOptimizer.apply_cautious_weight_decay` (pytorch_optimizer/base/optimizer.py:157-171
  in 3.9.0): `p.copy_(torch.where(update * p >= 0, p * (1.0 - weight_decay * lr), p))`,
  called by Ranger25 on the update BEFORE its caution mask
  (optimizer/experimental/ranger25.py:191-196). pytorch_optimizer 4.1.0 (installed) no
  longer ships it, so `pyopt_cautious_weight_decay_` below is that line, applied before
  the step of a timm optimizer built with weight_decay=0; the update it compares with p
  is the timm update direction before its mask (sign(m_new) for AdamW, the Lion sign,
  SGD's buffer or Nesterov direction), computed from the optimizer state before the step.
- Corrected decay: timm/optim/adamw.py:295, lion.py:205, nadamw.py:275 and adopt.py:327
  (`wd_scale = lr if max_lr is None else lr ** 2 / max_lr`; ADOPT decays only from step
  2, its step 1 only sets v = g*g: adopt.py:322-328), max_lr = `_max_lr_snapshot(lr)` of the constructor lr
  (_helpers.py:79-89); the lr of each step is set in the param group as a scheduler would.
- LaProp with corrected decay (timm 'lapropc'): timm/optim/laprop.py:150-163 (exp_avg_lr_1,
  the beta1-EMA of the lrs; step size lr / exp_avg_lr_1), :262-271 (moments, m carries
  lr * (1 - beta1) * g / den), :275 (step), :278-280 (decay AFTER the step, wd_scale = lr
  or lr^2 / max_lr); the factory entry is _optim_factory.py:608-614.
- RMSpropTF (timm 'rmsproptf', 'crmsproptf', 'rmsproptfc'; built through
  `timm.optim.create_optimizer_v2(params, name, foreach=False, **kwargs)`):
  timm/optim/rmsprop_tf.py:143 (square_avg starts at ones), :260-265 (decoupled
  `p *= 1 - wd_scale * wd`, wd_scale = lr or lr^2 / max_lr; else coupled `g += wd * p`),
  :268 (square_avg += (1 - alpha) * (g^2 - square_avg)), :271-277 (centered grad_avg,
  eps inside the sqrt), :279-293 (momentum buffer with or without lr, caution on the
  new buffer only, masked copy not written back), :294-295 (no momentum: no mask).
- LAMB: timm/optim/lamb.py:145-167 (global clip: grad / max(norm / max_grad_norm, 1)),
  :184-204 (beta3, bias corrections), :337-371 (single-tensor step: lerp or mul+add first
  moment, update = (m / bc1) / (sqrt(v) / sqrt(bc2) + eps), caution mask on the update
  BEFORE weight decay, coupled `update += wd * p` or decoupled `p -= lr * wd * p`, then
  the trust ratio ||p|| / ||update|| (1 if either is 0; clamped to 1 with trust_clip)
  when wd != 0 or always_adapt, :301-313).
"""

import json
import math
import os
import sys

import numpy as np
import torch

from timm.optim import create_optimizer_v2
from timm.optim.adamw import AdamWLegacy
from timm.optim.adopt import Adopt
from timm.optim.lamb import Lamb
from timm.optim.laprop import LaProp
from timm.optim.lion import Lion as TimmLion
from timm.optim.nadamw import NAdamW
from timm.optim.sgdw import SGDW

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import golden  # noqa: E402  (same inputs, tensors, metadata and comparison)

COSINE = {"kind": "cosine", "total": golden.STEPS, "floor": 0.1}


def schedule_factor(schedule, step):
    """coptim's LrSchedule::factor for the schedules used here (src/optim/schedule.rs)."""
    if schedule is None:
        return 1.0
    assert schedule["kind"] == "cosine"
    progress = min((step - 1) / max(schedule["total"], 1), 1.0)
    floor = schedule["floor"]
    return floor + (1.0 - floor) * 0.5 * (1.0 + math.cos(math.pi * progress))


def pyopt_cautious_weight_decay_(p, update, lr, weight_decay):
    """pytorch_optimizer 3.9.0 base/optimizer.py:171 (see the module docstring)."""
    p.copy_(torch.where(update * p >= 0, p * (1.0 - weight_decay * lr), p))


# ----------------------------------------------------------------------------- directions
# The update direction each timm optimizer is about to take, before its caution mask,
# from its state before the step (only its sign matters to the decay mask).

def adamw_direction(opt, p, g, group):
    m = opt.state[p].get("exp_avg", torch.zeros_like(p))
    return m.lerp(g, 1 - group["betas"][0])


def lion_direction(opt, p, g, group):
    m = opt.state[p].get("exp_avg", torch.zeros_like(p))
    return m.lerp(g, 1 - group["betas"][0]).sign_()


def sgd_direction(opt, p, g, group):
    buf = opt.state[p].get("momentum_buffer")
    mu = group["momentum"]
    buf = g.clone() if buf is None else buf * mu + g
    return g + mu * buf if group["nesterov"] else buf


# ----------------------------------------------------------------------------- cases

def _meta(optimizer, caution, lr, wd, source, notes, **extra):
    base = dict(optimizer=optimizer, caution=caution, lr=lr, beta1=0.0, beta2=0.0, eps=0.0,
                weight_decay=wd, momentum=0.0, nesterov=False, eps_style="none",
                source=source, notes=notes)
    base.update(extra)
    return base


def _cwd_case(name, optimizer, make, direction, state_keys, caution, lr, wd, **meta):
    return dict(name=name, make=make, state_keys=state_keys, cwd=(direction, wd), schedule=None,
                meta=_meta(optimizer, caution, lr, wd,
                           f"{meta.pop('source')} with weight_decay=0, preceded each step by "
                           f"pytorch_optimizer's apply_cautious_weight_decay(p, u, lr, {wd})",
                           "p = where(u*p >= 0, p*(1 - lr*wd), p) with u the unmasked update; "
                           "then the optimizer's own step", cautious_weight_decay=True, **meta))


def _corrected_case(name, optimizer, make, state_keys, caution, lr, wd, **meta):
    return dict(name=name, make=make, state_keys=state_keys, cwd=None, schedule=COSINE,
                meta=_meta(optimizer, caution, lr, wd, meta.pop("source"),
                           "p *= 1 - (lr_t^2 / lr) * wd (timm corrected_weight_decay), "
                           "lr_t = lr * cosine factor of step t", corrected_weight_decay=True,
                           **meta))


def _lamb_case(name, caution, wd, notes, **kw):
    args = dict(lr=1e-2, betas=(0.9, 0.999), eps=1e-6, weight_decay=wd, caution=caution == "mean_clamp",
                foreach=False)
    args.update(kw)
    options = dict(decoupled=args.get("decoupled_decay", False), trust_clip=args.get("trust_clip", False),
                   always_adapt=args.get("always_adapt", False),
                   grad_averaging=args.get("grad_averaging", True),
                   bias_correction=args.get("bias_correction", True),
                   max_grad_norm=args.get("max_grad_norm", 1.0))
    source = "timm.optim.lamb.Lamb(" + ", ".join(f"{k}={v!r}" for k, v in args.items()) + ")"
    return dict(name=name, make=lambda ps: Lamb(ps, **args), state_keys=["exp_avg", "exp_avg_sq"],
                cwd=None, schedule=None,
                meta=_meta("lamb", caution, 1e-2, wd, source, notes, beta1=0.9, beta2=0.999,
                           eps=1e-6, eps_style=golden.TORCH_EPS_STYLE, **options))


def _rmsprop_case(name, timm_name, kwargs, notes, schedule=None):
    """A timm RMSpropTF case: `create_optimizer_v2(params, timm_name, lr=1e-2, **kwargs)`."""
    kwargs = dict(lr=1e-2, **kwargs)
    make = lambda ps: create_optimizer_v2(ps, timm_name, foreach=False, **kwargs)
    group = make([torch.nn.Parameter(torch.zeros(1))]).param_groups[0]
    state_keys = ["square_avg"] + (["momentum_buffer"] if group["momentum"] > 0 else []) \
        + (["grad_avg"] if group["centered"] else [])
    caution = "mean_clamp" if group["caution"] and group["momentum"] > 0 else "off"
    source = f"timm.optim.create_optimizer_v2(params, {timm_name!r}, foreach=False, " + \
        ", ".join(f"{k}={v!r}" for k, v in kwargs.items()) + ") [timm.optim.RMSpropTF]"
    return dict(name=name, make=make, state_keys=state_keys, cwd=None, schedule=schedule,
                meta=_meta("rmsproptf", caution, group["lr"], group["weight_decay"], source, notes,
                           timm_name=timm_name, timm_kwargs=kwargs,
                           eps=group["eps"], momentum=group["momentum"], eps_style="sqrt(v + eps)",
                           alpha=group["alpha"], centered=group["centered"],
                           lr_in_momentum=group["lr_in_momentum"], decoupled=group["decoupled_decay"],
                           corrected_weight_decay=group["corrected_weight_decay"]))


ADAMW_ARGS = dict(lr=1e-2, betas=(0.9, 0.999), eps=1e-8, amsgrad=False, foreach=False)
LION_ARGS = dict(lr=1e-3, betas=(0.9, 0.99), foreach=False)
SGD_ARGS = dict(lr=1e-2, momentum=0.9, dampening=0.0, nesterov=True, foreach=False)
NADAMW_ARGS = dict(lr=1e-2, betas=(0.9, 0.999), eps=1e-8, foreach=False)
ADOPT_ARGS = dict(lr=1e-2, betas=(0.9, 0.9999), eps=1e-6, clip_exp=0.333, foreach=False)
LAPROP_ARGS = dict(lr=1e-2, betas=(0.9, 0.999), eps=1e-15, foreach=False)
LAPROP_META = dict(beta1=0.9, beta2=0.999, eps=1e-15, eps_style="sqrt(v / bc2) + eps")
ADOPT_META = dict(beta1=0.9, beta2=0.9999, eps=1e-6, eps_style="n = g / max(sqrt(v), eps)",
                  clip_exp=0.333, decoupled=True)
ADAMW_META = dict(beta1=0.9, beta2=0.999, eps=1e-8, eps_style=golden.TORCH_EPS_STYLE)
LION_META = dict(beta1=0.9, beta2=0.99)
SGD_META = dict(momentum=0.9, nesterov=True)

CASES = [
    _cwd_case("pyopt_cwd_adamw", "adamw",
              lambda ps: AdamWLegacy(ps, weight_decay=0.0, caution=False, **ADAMW_ARGS),
              adamw_direction, ["exp_avg", "exp_avg_sq"], "off", 1e-2, 0.1,
              source="timm AdamWLegacy(lr=1e-2, betas=(0.9, 0.999), eps=1e-8, caution=False)", **ADAMW_META),
    _cwd_case("pyopt_cwd_cadamw", "adamw",
              lambda ps: AdamWLegacy(ps, weight_decay=0.0, caution=True, **ADAMW_ARGS),
              adamw_direction, ["exp_avg", "exp_avg_sq"], "mean_clamp", 1e-2, 0.1,
              source="timm AdamWLegacy(lr=1e-2, betas=(0.9, 0.999), eps=1e-8, caution=True)", **ADAMW_META),
    _cwd_case("pyopt_cwd_clion", "lion",
              lambda ps: TimmLion(ps, weight_decay=0.0, caution=True, **LION_ARGS),
              lion_direction, ["exp_avg"], "mean_clamp", 1e-3, 1.0,
              source="timm Lion(lr=1e-3, betas=(0.9, 0.99), caution=True)", **LION_META),
    _cwd_case("pyopt_cwd_csgdw", "sgd",
              lambda ps: SGDW(ps, weight_decay=0.0, caution=True, **SGD_ARGS),
              sgd_direction, ["momentum_buffer"], "mean_clamp", 1e-2, 0.1,
              source="timm SGDW(lr=1e-2, momentum=0.9, nesterov=True, caution=True)", **SGD_META),
    _corrected_case("timm_cadamc", "adamw",
                    lambda ps: AdamWLegacy(ps, weight_decay=0.1, caution=True, corrected_weight_decay=True,
                                           **ADAMW_ARGS),
                    ["exp_avg", "exp_avg_sq"], "mean_clamp", 1e-2, 0.1,
                    source="timm AdamWLegacy(lr=1e-2, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.1, "
                           "caution=True, corrected_weight_decay=True) [timm 'cadamc']", **ADAMW_META),
    _corrected_case("timm_clionc", "lion",
                    lambda ps: TimmLion(ps, weight_decay=1.0, caution=True, corrected_weight_decay=True,
                                        **LION_ARGS),
                    ["exp_avg"], "mean_clamp", 1e-3, 1.0,
                    source="timm Lion(lr=1e-3, betas=(0.9, 0.99), weight_decay=1.0, caution=True, "
                           "corrected_weight_decay=True) [timm 'clionc']", **LION_META),
    _corrected_case("timm_csgdc", "sgd",
                    lambda ps: SGDW(ps, weight_decay=0.1, caution=True, corrected_weight_decay=True,
                                    **SGD_ARGS),
                    ["momentum_buffer"], "mean_clamp", 1e-2, 0.1,
                    source="timm SGDW(lr=1e-2, momentum=0.9, nesterov=True, weight_decay=0.1, caution=True, "
                           "corrected_weight_decay=True) [timm 'csgdc']", **SGD_META),
    _corrected_case("timm_cnadamc", "nadamw",
                    lambda ps: NAdamW(ps, weight_decay=0.1, caution=True, corrected_weight_decay=True,
                                      **NADAMW_ARGS),
                    ["exp_avg", "exp_avg_sq"], "mean_clamp", 1e-2, 0.1,
                    source="timm NAdamW(lr=1e-2, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.1, "
                           "caution=True, corrected_weight_decay=True) [timm 'cnadamc']",
                    timm_name="cnadamc", timm_kwargs=dict(lr=1e-2, weight_decay=0.1), **ADAMW_META),
    _corrected_case("timm_cadoptc", "adopt",
                    lambda ps: Adopt(ps, weight_decay=0.1, decoupled=True, caution=True,
                                     corrected_weight_decay=True, **ADOPT_ARGS),
                    ["exp_avg", "exp_avg_sq"], "mean_clamp", 1e-2, 0.1,
                    source="timm Adopt(lr=1e-2, betas=(0.9, 0.9999), eps=1e-6, clip_exp=0.333, "
                           "weight_decay=0.1, decoupled=True, caution=True, corrected_weight_decay=True) "
                           "[timm 'cadoptc']",
                    timm_name="cadoptc", timm_kwargs=dict(lr=1e-2, weight_decay=0.1), **ADOPT_META),
    _corrected_case("timm_lapropc", "laprop",
                    lambda ps: LaProp(ps, weight_decay=0.1, corrected_weight_decay=True, **LAPROP_ARGS),
                    ["exp_avg", "exp_avg_sq"], "off", 1e-2, 0.1,
                    source="timm LaProp(lr=1e-2, betas=(0.9, 0.999), eps=1e-15, weight_decay=0.1, "
                           "corrected_weight_decay=True) [timm 'lapropc'; decay after the step]",
                    timm_name="lapropc", timm_kwargs=dict(lr=1e-2, weight_decay=0.1), **LAPROP_META),
    _lamb_case("timm_lamb", "off", 1e-2, "timm 'lamb' defaults (coupled decay, global clip at 1.0)"),
    _lamb_case("timm_clamb", "mean_clamp", 1e-2, "timm 'clamb': mask before decay and trust ratio"),
    _lamb_case("timm_lambw", "off", 1e-2, "timm 'lambw': decoupled decay", decoupled_decay=True),
    _lamb_case("timm_clambw", "mean_clamp", 1e-2, "timm 'clambw'", decoupled_decay=True),
    _lamb_case("timm_clamb_options", "mean_clamp", 0.1,
               "trust_clip, no grad averaging, clip at 20", trust_clip=True, grad_averaging=False,
               max_grad_norm=20.0),
    _lamb_case("timm_clamb_adapt", "mean_clamp", 0.0,
               "no decay, always_adapt, no bias correction, no clip", always_adapt=True,
               bias_correction=False, max_grad_norm=None),
] + [
    _rmsprop_case("timm_rmsproptf", "rmsproptf", dict(weight_decay=1e-2),
                  "factory defaults: momentum 0.9, lr in momentum, coupled decay g += wd*p"),
    _rmsprop_case("timm_crmsproptf", "crmsproptf", dict(weight_decay=1e-2),
                  "mask = (buf*g > 0) on the new buffer, g including wd*p; buf kept unmasked"),
    _rmsprop_case("timm_crmsproptf_centered", "crmsproptf", dict(weight_decay=1e-2, centered=True),
                  "centered: avg = sqrt(square_avg - grad_avg^2 + eps); three states"),
    _rmsprop_case("timm_crmsproptf_lr_out", "crmsproptf", dict(weight_decay=1e-2, lr_in_momentum=False),
                  "buf = mu*buf + g/avg; p -= lr * buf*mask"),
    _rmsprop_case("timm_crmsproptfw", "crmsproptf", dict(weight_decay=0.1, decoupled_decay=True),
                  "decoupled: p *= 1 - lr*wd before the step"),
    _rmsprop_case("timm_crmsproptf_cosine", "crmsproptf", dict(weight_decay=1e-2),
                  "lr changes every step: buf holds each step's lr * g/avg", schedule=COSINE),
    _rmsprop_case("timm_rmsproptfc", "rmsproptfc", dict(weight_decay=0.1),
                  "corrected decoupled decay lr_t^2 / lr * wd under a schedule", schedule=COSINE),
    _rmsprop_case("timm_rmsproptf_nomomentum", "crmsproptf",
                  dict(weight_decay=1e-2, momentum=0.0, centered=True),
                  "no momentum: p -= lr * g/avg and caution masks nothing; states square_avg, grad_avg"),
]


# ----------------------------------------------------------------------------- run

def run_case(case, init, grads):
    """The case's optimizer over every step, with its lr schedule and decay hook."""
    params = [torch.nn.Parameter(t.clone()) for t in init]
    opt = case["make"](params)
    base_lr = case["meta"]["lr"]
    steps = []
    for s in range(golden.STEPS):
        for group in opt.param_groups:
            group["lr"] = base_lr * schedule_factor(case["schedule"], s + 1)
        with torch.no_grad():
            for p, g in zip(params, grads[s]):
                p.grad = g.clone()
                if case["cwd"] is not None:
                    direction, wd = case["cwd"]
                    group = opt.param_groups[0]
                    pyopt_cautious_weight_decay_(p, direction(opt, p, p.grad, group), group["lr"], wd)
        opt.step()
        steps.append([p.detach().clone() for p in params])
    states = {key: [opt.state[p][key].detach().clone() for p in params] for key in case["state_keys"]}
    return steps, states


def build_meta(case):
    m = case["meta"]
    meta = {
        "case": case["name"],
        "source": m["source"],
        "optimizer": m["optimizer"],
        "caution": m["caution"],
        **{k: golden.fmt(m[k]) for k in ("lr", "beta1", "beta2", "eps", "weight_decay", "momentum")},
        "dampening": "0.0",
        "nesterov": "true" if m["nesterov"] else "false",
        "state_keys": json.dumps(case["state_keys"]),
        "eps_style": m["eps_style"],
        "notes": m["notes"],
        **golden.input_meta(),
    }
    meta["weight_decay_style"] = ("cautious decoupled: only where u*p >= 0" if m.get("cautious_weight_decay")
                                  else "decoupled" if m["optimizer"] != "lamb" else
                                  "decoupled" if m["decoupled"] else "coupled: update += wd*p")
    meta["cautious_weight_decay"] = "true" if m.get("cautious_weight_decay") else "false"
    meta["corrected_weight_decay"] = "true" if m.get("corrected_weight_decay") else "false"
    meta["schedule"] = json.dumps(case["schedule"] or {"kind": "constant"})
    if "timm_name" in m:
        meta["timm_name"] = m["timm_name"]
        meta["timm_kwargs"] = json.dumps(m["timm_kwargs"])
    if m["optimizer"] == "adopt":
        meta["decoupled"] = "true" if m["decoupled"] else "false"
        meta["clip_exp"] = "none" if m["clip_exp"] is None else golden.fmt(m["clip_exp"])
    if m["optimizer"] == "rmsproptf":
        meta["weight_decay_style"] = "decoupled" if m["decoupled"] else "coupled: g += wd*p"
        meta["alpha"] = golden.fmt(m["alpha"])
        for key in ("centered", "lr_in_momentum", "decoupled"):
            meta[key] = "true" if m[key] else "false"
    if m["optimizer"] == "lamb":
        for key in ("decoupled", "trust_clip", "always_adapt", "grad_averaging", "bias_correction"):
            meta[key] = "true" if m[key] else "false"
        meta["max_grad_norm"] = "none" if m["max_grad_norm"] is None else golden.fmt(m["max_grad_norm"])
    return meta


def generate(only):
    init, grads = golden.make_inputs()
    for case in CASES:
        if only and case["name"] not in only:
            continue
        steps, states = run_case(case, init, grads)
        tensors = golden.build_tensors(case, init, grads, steps, states)
        path = os.path.join(golden.OUT_DIR, case["name"] + ".safetensors")
        golden.save_file(tensors, path, metadata=build_meta(case))
        print(f"wrote {os.path.relpath(path, golden.ROOT)} ({os.path.getsize(path)} bytes)")


# ----------------------------------------------------------------------------- f64 replay

def mask_scale(phi):
    return 1.0 / max(phi.sum() / phi.size, 1e-3)


class Replay:
    """Independent float64 implementation of the rules, driven by metadata only."""

    def __init__(self, meta, tensors):
        self.meta = meta
        self.f = lambda k: float(meta[k])
        self.on = lambda k: meta.get(k) == "true"
        nt = int(meta["tensors"])
        self.p = [tensors[f"param.{i}.init"].double().numpy().copy() for i in range(nt)]
        self.m = [np.zeros_like(x) for x in self.p]
        self.v = [np.zeros_like(x) for x in self.p]
        self.buf = [None] * nt
        self.sq = [None] * nt
        self.ga = [np.zeros_like(x) for x in self.p]
        self.schedule = json.loads(meta["schedule"])

    def lr_at(self, t):
        sched = None if self.schedule["kind"] == "constant" else self.schedule
        return self.f("lr") * schedule_factor(sched, t)

    def decay(self, p, u, lr):
        wd = self.f("weight_decay")
        rate = (lr * lr / self.f("lr") if self.on("corrected_weight_decay") else lr) * wd
        if self.on("cautious_weight_decay"):
            return np.where(u * p >= 0, p * (1 - rate), p)
        return p * (1 - rate)

    def elementwise(self, i, g, t, lr):
        opt, cautious = self.meta["optimizer"], self.meta["caution"] != "off"
        b1, b2 = self.f("beta1"), self.f("beta2")
        if opt == "adopt" and t == 1:
            self.v[i] = g * g  # ADOPT's step 1: no decay, no step
            return
        if opt in ("adamw", "nadamw"):
            self.m[i] = b1 * self.m[i] + (1 - b1) * g
            self.v[i] = b2 * self.v[i] + (1 - b2) * g * g
            bc1, bc2 = 1 - b1 ** t, 1 - b2 ** t
            n = b1 * self.m[i] + (1 - b1) * g if opt == "nadamw" else self.m[i]
            u = n / (np.sqrt(self.v[i]) / math.sqrt(bc2) + self.f("eps")) / bc1
        elif opt == "adopt":
            u = self.adopt_moment(i, g, t)
        elif opt == "lion":
            u = np.sign(b1 * self.m[i] + (1 - b1) * g)
            self.m[i] = b2 * self.m[i] + (1 - b2) * g
        else:
            mu = self.f("momentum")
            self.buf[i] = g.copy() if self.buf[i] is None else mu * self.buf[i] + g
            u = g + mu * self.buf[i] if self.on("nesterov") else self.buf[i]
        phi = (u * g > 0).astype(np.float64)
        masked = u * phi * mask_scale(phi) if cautious else u
        self.p[i] = self.decay(self.p[i], u, lr) - lr * masked

    def adopt_moment(self, i, g, t):
        """ADOPT's new first moment from step 2 (v updated after it)."""
        b1, b2 = self.f("beta1"), self.f("beta2")
        n = g / np.maximum(np.sqrt(self.v[i]), self.f("eps"))
        if self.meta["clip_exp"] != "none":
            bound = (t - 1) ** self.f("clip_exp")
            n = np.clip(n, -bound, bound)
        self.m[i] = b1 * self.m[i] + (1 - b1) * n
        self.v[i] = b2 * self.v[i] + (1 - b2) * g * g
        return self.m[i]

    def lamb(self, i, g, t, lr, clip):
        b1, b2, eps, wd = self.f("beta1"), self.f("beta2"), self.f("eps"), self.f("weight_decay")
        g = g / clip
        beta3 = 1 - b1 if self.on("grad_averaging") else 1.0
        self.m[i] = b1 * self.m[i] + beta3 * g
        self.v[i] = b2 * self.v[i] + (1 - b2) * g * g
        bc1, bc2 = (1 - b1 ** t, 1 - b2 ** t) if self.on("bias_correction") else (1.0, 1.0)
        u = (self.m[i] / bc1) / (np.sqrt(self.v[i]) / math.sqrt(bc2) + eps)
        if self.meta["caution"] != "off":
            phi = (u * g > 0).astype(np.float64)
            u = u * phi * mask_scale(phi)
        p = self.p[i]
        if wd != 0:
            if self.on("decoupled"):
                p = p * (1 - lr * wd)
            else:
                u = u + wd * p
        if wd != 0 or self.on("always_adapt"):
            w_norm, u_norm = np.linalg.norm(p), np.linalg.norm(u)
            ratio = w_norm / u_norm if w_norm > 0 and u_norm > 0 else 1.0
            u = u * (min(ratio, 1.0) if self.on("trust_clip") else ratio)
        self.p[i] = p - lr * u

    def laprop(self, i, g, t, lr):
        """LaProp (timm/optim/laprop.py:150-163, :262-280): m carries each step's lr, the step
        is lr / ema(lr) * m, and decay comes after the step."""
        b1, b2 = self.f("beta1"), self.f("beta2")
        self.v[i] = b2 * self.v[i] + (1 - b2) * g * g
        den = np.sqrt(self.v[i] / (1 - b2 ** t)) + self.f("eps")
        self.m[i] = b1 * self.m[i] + lr * (1 - b1) * g / den
        ema_lr = 0.0
        for s in range(1, t + 1):
            ema_lr = b1 * ema_lr + (1 - b1) * self.lr_at(s)
        u = self.m[i]
        if self.meta["caution"] != "off":
            phi = (u * g > 0).astype(np.float64)
            u = u * phi * mask_scale(phi)
        p = self.p[i] - (lr / ema_lr) * u
        self.p[i] = self.decay(p, self.m[i], lr)

    def rmsproptf(self, i, g, t, lr):
        alpha, eps, mu, wd = self.f("alpha"), self.f("eps"), self.f("momentum"), self.f("weight_decay")
        p = self.p[i]
        if self.on("decoupled"):
            p = self.decay(p, p, lr)
        else:
            g = g + wd * p
        sq = np.ones_like(g) if self.sq[i] is None else self.sq[i]
        self.sq[i] = sq + (1 - alpha) * (g * g - sq)
        if self.on("centered"):
            self.ga[i] = self.ga[i] + (1 - alpha) * (g - self.ga[i])
            avg = np.sqrt(self.sq[i] - self.ga[i] ** 2 + eps)
        else:
            avg = np.sqrt(self.sq[i] + eps)
        if mu == 0:
            self.p[i] = p - lr * g / avg
            return
        buf = np.zeros_like(g) if self.buf[i] is None else self.buf[i]
        self.buf[i] = mu * buf + (lr if self.on("lr_in_momentum") else 1.0) * g / avg
        u = self.buf[i]
        if self.meta["caution"] != "off":
            phi = (u * g > 0).astype(np.float64)
            u = u * phi * mask_scale(phi)
        self.p[i] = p - (u if self.on("lr_in_momentum") else lr * u)

    def run(self, tensors):
        nt, ns = len(self.p), int(self.meta["steps"])
        out = []
        for t in range(1, ns + 1):
            lr = self.lr_at(t)
            grads = [tensors[f"grad.{t}.{i}"].double().numpy() for i in range(nt)]
            if self.meta["optimizer"] == "lamb":
                norm = math.sqrt(sum(float((g * g).sum()) for g in grads))
                mgn = self.meta["max_grad_norm"]
                clip = 1.0 if mgn == "none" else max(norm / float(mgn), 1.0)
                for i in range(nt):
                    self.lamb(i, grads[i], t, lr, clip)
            else:
                step = {"rmsproptf": self.rmsproptf, "laprop": self.laprop}.get(
                    self.meta["optimizer"], self.elementwise)
                for i in range(nt):
                    step(i, grads[i], t, lr)
            out.append([x.copy() for x in self.p])
        states = {"exp_avg": self.m, "exp_avg_sq": self.v, "momentum_buffer": self.buf,
                  "square_avg": self.sq, "grad_avg": self.ga}
        return out, states


def option_matters(meta, tensors):
    """The replay with the case's weight-decay option or caution flipped misses the file:
    the case cannot pass with that option ignored."""
    flipped = dict(meta)
    for key in ("cautious_weight_decay", "corrected_weight_decay"):
        if meta[key] == "true":
            flipped[key] = "false"
    if flipped == meta and meta["optimizer"] == "rmsproptf" and float(meta["momentum"]) == 0:
        flipped["decoupled"] = "true"  # caution masks nothing without momentum
    elif flipped == meta:
        flipped["caution"] = "off" if meta["caution"] != "off" else "mean_clamp"
    steps, _ = Replay(flipped, tensors).run(tensors)
    worst = max(golden.rel(tensors[f"param.{i}.step{s + 1}"].numpy(), steps[s][i])
                for s in range(golden.STEPS) for i in range(len(golden.SHAPES)))
    return worst > golden.TOL


def check():
    init, grads = golden.make_inputs()
    ok = True
    print(f"{'case':22} {'bitwise':8} {'f64 params max rel':>19} {'f64 state':>10}")
    for case in CASES:
        path = os.path.join(golden.OUT_DIR, case["name"] + ".safetensors")
        meta, tensors = golden.load(path)
        steps, states = run_case(case, init, grads)
        fresh = golden.build_tensors(case, init, grads, steps, states)
        same = set(fresh) == set(tensors) and all(torch.equal(fresh[k], tensors[k]) for k in fresh)
        ref_steps, ref_states = Replay(meta, tensors).run(tensors)
        worst = max(golden.rel(tensors[f"param.{i}.step{s + 1}"].numpy(), ref_steps[s][i])
                    for s in range(golden.STEPS) for i in range(len(golden.SHAPES)))
        worst_state = max(golden.rel(tensors[f"state.{key}.{i}"].numpy(), ref_states[key][i])
                          for key in case["state_keys"] for i in range(len(golden.SHAPES)))
        sensitive = option_matters(meta, tensors)
        ok = ok and same and worst <= golden.TOL and worst_state <= golden.TOL and sensitive
        print(f"{case['name']:22} {str(same):8} {worst:19.3e} {worst_state:10.2e}  "
              f"option flipped fails: {sensitive}")
    print("CHECK OK" if ok else "CHECK FAILED")
    return ok


def main():
    golden.run_cli(__doc__, check, generate, "verify the committed files",
                   "write only these cases, leaving the other files as they are")


if __name__ == "__main__":
    main()
