#!/usr/bin/env python3
"""Golden vectors for AdamP and SGDP (timm `adamp`/`cadamp`, `sgdp`/`csgdp`).

How to run (from the repository root):

    python3 scripts/golden_projection.py          # (re)write the files
    python3 scripts/golden_projection.py --check  # verify them

The inputs of scripts/golden.py (six f32 tensors including the 1-element one and the
all-zero gradient of tensor 3 at step 3, 6 steps), plus two tensors whose gradients are
made at each step from the parameters so that timm's projection triggers:

    tensor 6, [8, 33]:  the gradient of each row orthogonal to the row's parameters
                        (the channel view projects)
    tensor 7, [12, 20]: the gradient orthogonal to the whole tensor's parameters, rows
                        not (the layer view projects, the channel view does not)

The random 2-D tensors of golden.py ([16, 17], [3, 5, 7]) do not project (the check
prints each tensor's view per step and how far its cosine is from the threshold). Same
file layout and rule as golden.py: normwise max|diff| / max|ref| <= 1e-6 against an
independent float64 NumPy replay of timm's rule driven by the metadata only. Each case
is built by `timm.optim.create_optimizer_v2(params, timm_name, **timm_kwargs)`, and
tests/golden.rs builds coptim's through `OptimizerConfig::from_timm` from the same
metadata.

Reference (timm 1.0.31, site-packages/timm/optim/):
- adamp.py:29-61 `projection`: cosine_similarity (each norm clamped at eps) per row
  (channel view, x.reshape(x.size(0), -1)) then over the tensor (layer view); the first
  view whose max |cos| < delta / sqrt(view length) projects the update
  (perturb -= p_n * sum(p_n * perturb), p_n = p / (|p| + eps)) and scales weight decay
  by wd_ratio; caution then masks against the projected gradient (spherical caution,
  :42-51: mask / max(mean(mask), 1e-3), then the masked update is projected again);
  without projection the usual mask against g (:55-59).
- adamp.py:114-149 AdamP.step: m = b1 m + (1 - b1) g, v = b2 v + (1 - b2) g^2,
  den = sqrt(v) / sqrt(bc2) + eps, perturb = (b1 m + (1 - b1) g) / den (Nesterov) or
  m / den; projection only for rank > 1 (:134), plain caution for vectors (:138-142);
  p *= 1 - lr wd ratio (wd > 0); p -= (lr / bc1) perturb.
- sgdp.py:224-246 SGDP.step: buf = mu buf + (1 - dampening) g (from zeros),
  d_p = g + mu buf (Nesterov) or buf; the same projection; p *= 1 - lr wd ratio /
  (1 - mu); p -= lr d_p.
- _optim_factory.py:371-376, 412-417, 804-816: `sgdp` {nesterov: True}, `adamp`
  {wd_ratio: 0.01, nesterov: True}, `cadamp`/`csgdp` add caution: True; the factory
  passes momentum=0.9 to SGDP.
"""

import json
import math
import os
import sys

import numpy as np
import torch
import timm.optim

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import golden  # noqa: E402  (same inputs, file layout and comparison)

EXTRA_SHAPES = [[8, 33], [12, 20]]
SHAPES = golden.SHAPES + EXTRA_SHAPES
CHANNEL, LAYER = len(golden.SHAPES), len(golden.SHAPES) + 1
EXTRA_SEED = 17

STATE_KEYS = {"adamp": ["exp_avg", "exp_avg_sq"], "sgdp": ["momentum"]}


def case(name, optimizer, timm_name, kwargs, notes):
    return dict(name=name, optimizer=optimizer, timm=timm_name, kwargs=kwargs, notes=notes)


CASES = [
    case("timm_adamp", "adamp", "adamp", {"lr": 1e-2, "weight_decay": 1e-2},
         "timm 'adamp' defaults (wd_ratio 0.01, Nesterov, delta 0.1)"),
    case("timm_cadamp", "adamp", "cadamp", {"lr": 1e-2, "weight_decay": 1e-2},
         "timm 'cadamp': spherical caution where projected, the usual mask elsewhere"),
    case("timm_cadamp_options", "adamp", "cadamp",
         {"lr": 1e-2, "weight_decay": 0.1, "betas": [0.8, 0.99], "eps": 1e-6, "delta": 0.2,
          "wd_ratio": 0.5, "nesterov": False},
         "no Nesterov, other betas, eps, delta and wd_ratio"),
    case("timm_sgdp", "sgdp", "sgdp", {"lr": 1e-2, "weight_decay": 1e-2},
         "timm 'sgdp' defaults (momentum 0.9, Nesterov, wd_ratio 0.1)"),
    case("timm_csgdp", "sgdp", "csgdp", {"lr": 1e-2, "weight_decay": 1e-2},
         "timm 'csgdp'"),
    case("timm_csgdp_options", "sgdp", "csgdp",
         {"lr": 1e-2, "weight_decay": 0.1, "momentum": 0.8, "nesterov": False, "delta": 0.2,
          "wd_ratio": 0.5},
         "no Nesterov, momentum 0.8, other delta and wd_ratio"),
]


def orthogonal(p, x, rows):
    """x (float64) less its component along p, per row of a [rows, -1] view."""
    p2, x2 = p.reshape(rows, -1), x.reshape(rows, -1)
    k = (p2 * x2).sum(1, keepdims=True) / (p2 * p2).sum(1, keepdims=True)
    return (x2 - k * p2).reshape(x.shape)


def extra_gradient(i, p, gen):
    r = torch.randn(p.shape, generator=gen, dtype=torch.float64)
    rows = p.shape[0] if i == CHANNEL else 1
    return orthogonal(p.detach().double(), r, rows).float()


def make_inputs():
    init, grads = golden.make_inputs()
    gen = torch.Generator().manual_seed(EXTRA_SEED)
    init = init + [torch.randn(s, generator=gen, dtype=torch.float32) for s in EXTRA_SHAPES]
    return init, grads, gen


def run_case(c):
    """The case's optimizer over every step; the extra tensors' gradients are made from
    the parameters before each step."""
    init, fixed, gen = make_inputs()
    params = [torch.nn.Parameter(t.clone()) for t in init]
    opt = timm.optim.create_optimizer_v2(params, c["timm"], **c["kwargs"])
    steps, grads = [], []
    for s in range(golden.STEPS):
        gs = list(fixed[s]) + [extra_gradient(i, params[i], gen) for i in (CHANNEL, LAYER)]
        for p, g in zip(params, gs):
            p.grad = g.clone()
        opt.step()
        grads.append(gs)
        steps.append([p.detach().clone() for p in params])
    states = {k: [opt.state[p][k].detach().clone() for p in params] for k in STATE_KEYS[c["optimizer"]]}
    return init, grads, steps, states


def group_of(c):
    """The parameter group timm builds (every hyperparameter the replay needs)."""
    opt = timm.optim.create_optimizer_v2([torch.nn.Parameter(torch.zeros(2))], c["timm"], **c["kwargs"])
    return {k: (list(v) if isinstance(v, tuple) else v) for k, v in opt.param_groups[0].items() if k != "params"}


def build_meta(c):
    g = group_of(c)
    betas = g.get("betas", [0.0, 0.0])
    meta = {
        "case": c["name"],
        "source": f"timm.optim.create_optimizer_v2(params, {c['timm']!r}, **{c['kwargs']!r})",
        "timm_name": c["timm"],
        "timm_kwargs": json.dumps(c["kwargs"]),
        "optimizer": c["optimizer"],
        "caution": "mean_clamp" if g["caution"] else "off",
        "group": json.dumps(g, sort_keys=True),
        "lr": golden.fmt(g["lr"]),
        "beta1": golden.fmt(betas[0]),
        "beta2": golden.fmt(betas[1]),
        "eps": golden.fmt(g["eps"]),
        "weight_decay": golden.fmt(g["weight_decay"]),
        "weight_decay_style": "decoupled, times wd_ratio where projected (SGDP: / (1 - momentum))",
        "momentum": golden.fmt(g.get("momentum", 0.0)),
        "dampening": "0.0",
        "nesterov": "true" if g["nesterov"] else "false",
        "state_keys": json.dumps(STATE_KEYS[c["optimizer"]]),
        "eps_style": golden.TORCH_EPS_STYLE if c["optimizer"] == "adamp" else "projection norms only",
        "notes": c["notes"],
        **golden.input_meta(),
    }
    meta["tensors"] = str(len(SHAPES))
    meta["shapes"] = json.dumps(SHAPES)
    meta["extra_gradients"] = json.dumps({"channel_orthogonal": CHANNEL, "layer_orthogonal": LAYER,
                                          "seed": EXTRA_SEED})
    return meta


def generate():
    for c in CASES:
        init, grads, steps, states = run_case(c)
        path = os.path.join(golden.OUT_DIR, c["name"] + ".safetensors")
        golden.save_file(golden.build_tensors(c, init, grads, steps, states), path, metadata=build_meta(c))
        print(f"wrote {os.path.relpath(path, golden.ROOT)} ({os.path.getsize(path)} bytes)")


# ----------------------------------------------------------------------------- f64 replay

def abs_cos(p, g, eps):
    return abs((p * g).sum(1)) / (np.maximum(np.linalg.norm(g, axis=1), eps) *
                                  np.maximum(np.linalg.norm(p, axis=1), eps))


def radial_free(p, x, eps):
    n = np.linalg.norm(p, axis=1, keepdims=True) + eps
    return x - p * ((p * x).sum(1, keepdims=True) / (n * n))


def project(p, g, u, delta, wd_ratio, eps, cautious, margins):
    """timm's projection in float64; returns (update, weight decay ratio)."""
    if p.ndim > 1:
        for rows in (p.shape[0], 1):
            pv, gv, uv = p.reshape(rows, -1), g.reshape(rows, -1), u.reshape(rows, -1)
            limit = delta / math.sqrt(pv.shape[1])
            cos = abs_cos(pv, gv, eps)
            margins.append((rows, float(cos.max() / limit)))
            if cos.max() < limit:
                up = radial_free(pv, uv, eps)
                if cautious:
                    phi = (up * radial_free(pv, gv, eps) > 0).astype(np.float64)
                    up = radial_free(pv, up * phi / max(phi.mean(), 1e-3), eps)
                return up.reshape(p.shape), wd_ratio
    if cautious:
        phi = (u * g > 0).astype(np.float64)
        u = u * phi / max(phi.mean(), 1e-3)
    return u, 1.0


def replay(meta, tensors):
    f = lambda k: float(meta[k])  # noqa: E731
    group = json.loads(meta["group"])
    nt, ns = int(meta["tensors"]), int(meta["steps"])
    lr, wd, eps, b1, b2, mu = f("lr"), f("weight_decay"), f("eps"), f("beta1"), f("beta2"), f("momentum")
    nesterov, cautious = meta["nesterov"] == "true", meta["caution"] != "off"
    p = [tensors[f"param.{i}.init"].double().numpy().copy() for i in range(nt)]
    st = [[np.zeros_like(x), np.zeros_like(x)] for x in p]
    out, views = [], []
    for t in range(1, ns + 1):
        margins_t = []
        for i in range(nt):
            g = tensors[f"grad.{t}.{i}"].double().numpy()
            s = st[i]
            if meta["optimizer"] == "adamp":
                s[0] = b1 * s[0] + (1 - b1) * g
                s[1] = b2 * s[1] + (1 - b2) * g * g
                den = np.sqrt(s[1]) / math.sqrt(1 - b2 ** t) + eps
                u = (b1 * s[0] + (1 - b1) * g if nesterov else s[0]) / den
                size, decay_scale = lr / (1 - b1 ** t), 1.0
            else:
                s[0] = mu * s[0] + g
                u = g + mu * s[0] if nesterov else s[0].copy()
                size, decay_scale = lr, 1.0 / (1 - mu)
            margins = []
            u, ratio = project(p[i], g, u, group["delta"], group["wd_ratio"], eps, cautious, margins)
            margins_t.append(margins)
            p[i] = p[i] * (1 - lr * wd * ratio * decay_scale) - size * u
        out.append([x.copy() for x in p])
        views.append(margins_t)
    keys = json.loads(meta["state_keys"])
    return out, {k: [s[j] for s in st] for j, k in enumerate(keys)}, views


def check():
    ok = True
    print(f"{'case':22} {'bitwise':8} {'f64 params max rel':>19} {'f64 state':>10}  views")
    for c in CASES:
        path = os.path.join(golden.OUT_DIR, c["name"] + ".safetensors")
        meta, tensors = golden.load(path)
        init, grads, steps, states = run_case(c)
        fresh = golden.build_tensors(c, init, grads, steps, states)
        same = set(fresh) == set(tensors) and all(torch.equal(fresh[k], tensors[k]) for k in fresh)
        same = same and meta == build_meta(c)
        ref, ref_states, views = replay(meta, tensors)
        worst = max(golden.rel(tensors[f"param.{i}.step{s + 1}"].numpy(), ref[s][i])
                    for s in range(golden.STEPS) for i in range(len(SHAPES)))
        worst_state = max(golden.rel(tensors[f"state.{k}.{i}"].numpy(), ref_states[k][i])
                          for k in STATE_KEYS[c["optimizer"]] for i in range(len(SHAPES)))
        # Per 2-D tensor: the view that projected (or none) and the cos/limit ratio
        # closest to 1 over the steps (far from 1: no f32 rounding can flip the test).
        summary = []
        for i, shape in enumerate(SHAPES):
            if len(shape) < 2:
                continue
            chosen = {("chan" if m[-1][0] > 1 else "layer") if m[-1][1] < 1 else "none"
                      for m in (views[s][i] for s in range(golden.STEPS))}
            closest = min(abs(math.log(r)) for s in range(golden.STEPS) for _, r in views[s][i])
            summary.append(f"t{i}:{'/'.join(sorted(chosen))}(x{math.exp(closest):.1f})")
        ok = ok and same and worst <= golden.TOL and worst_state <= golden.TOL
        print(f"{c['name']:22} {str(same):8} {worst:19.3e} {worst_state:10.2e}  {' '.join(summary)}")
    print("CHECK OK" if ok else "CHECK FAILED")
    return ok


def main():
    golden.run_cli(__doc__, check, generate, "verify the committed files")


if __name__ == "__main__":
    main()
