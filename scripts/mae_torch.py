#!/usr/bin/env python3
"""PyTorch reference for coptim's small masked autoencoder (issue 12, items 1 and 4).

A from-scratch float32 CPU implementation of MAE at digit scale, with the state-dict names,
initialization and forward pass of the reference code (facebookresearch/mae, models_mae.py
`MaskedAutoencoderViT`, util/pos_embed.py), and six modes (run from the repository root with
`python3 scripts/mae_torch.py [MODE]`):

  (no flag)       parity: train 20 steps with torch AdamW and timm C-AdamW from coptim's
                  exported inputs and write tests/parity/mae_losses.json.
  --check-ref     load the same weights into the real reference MaskedAutoencoderViT (its
                  source copied into a temporary directory at run time, never committed) and
                  compare loss, prediction, mask and every gradient, with the same noise
                  (`--mae-repo`: a clone of github.com/facebookresearch/mae or its git dir).
  --make-inputs   SELF-TEST ONLY: fabricate an inputs file from torch's own seeded init.
  --baseline      the mean-patch baseline loss on the bundled digits' test split.
  --bench         PyTorch CPU training throughput (samples per second).
  --fit STEPS     train both optimizers STEPS steps; validation loss against the baseline.

RUST-SIDE CONTRACT
==================
Inputs: target/parity/mae_inputs.safetensors, written by the ignored Rust test that parity
mode runs first (`cargo test --test mae_parity -- --ignored export_mae_parity_inputs`;
`--inputs PATH` skips the export and reads PATH instead). Little-endian safetensors, exactly
these tensors (the model loads them strictly; D, Dd, N, P = p*p*C, F = int(D * mlp_ratio),
Fd = int(Dd * mlp_ratio)):
  param.cls_token                          F32 [1, 1, D]
  param.pos_embed                          F32 [1, N+1, D]    fixed 2-D sin-cos (not trained;
                                                              checked against ours, 1e-6 abs)
  param.patch_embed.proj.weight            F32 [D, C, p, p]
  param.patch_embed.proj.bias              F32 [D]
  param.blocks.{i}.norm1.weight / .bias    F32 [D]            i = 0..L-1 (also norm2)
  param.blocks.{i}.attn.qkv.weight         F32 [3D, D]        rows: q (all heads), k, v
  param.blocks.{i}.attn.qkv.bias           F32 [3D]
  param.blocks.{i}.attn.proj.weight / .bias  F32 [D, D] / [D]
  param.blocks.{i}.mlp.fc1.weight / .bias  F32 [F, D] / [F]
  param.blocks.{i}.mlp.fc2.weight / .bias  F32 [D, F] / [D]
  param.norm.weight / .bias                F32 [D]
  param.decoder_embed.weight / .bias       F32 [Dd, D] / [Dd]
  param.mask_token                         F32 [1, 1, Dd]
  param.decoder_pos_embed                  F32 [1, N+1, Dd]   fixed 2-D sin-cos (as pos_embed)
  param.decoder_blocks.{i}.*               as blocks.{i}.* at width Dd, hidden Fd; i < Ld
  param.decoder_norm.weight / .bias        F32 [Dd]
  param.decoder_pred.weight / .bias        F32 [P, Dd] / [P]
  images   F32 [steps, B, C, H, W]  exactly what the model sees at step s (0-based), after
                                    coptim's standardization; the loss targets come from them
  noise    F32 [steps, B, N]        the masking noise of each sample; the values of a row
                                    must be distinct (ties would make argsort ambiguous)
  lrs      F32 or F64 [steps]       learning rate of step s (schedule already applied)
Metadata key "config": a JSON object with these fields (any others are copied through);
the model's are MaskedAutoencoderViT's constructor arguments:
  source "coptim"           only then does parity mode write the committed JSON; any other
                            value writes target/parity/mae_losses.selftest.json instead
  img_size, patch_size, in_chans, embed_dim, depth, num_heads, decoder_embed_dim,
  decoder_depth, decoder_num_heads                               (integers)
  mlp_ratio, layer_norm_eps, mask_ratio                          (numbers: 4.0, 1e-6, 0.75)
  norm_pix_loss                                                  bool
  batch_size, steps                                              (integers)
  betas [b1, b2], adam_eps, weight_decay                         (AdamW)
  no_weight_decay           [names] the trainable tensors trained with weight decay 0; it must
                            be exactly timm's/MAE's rule (ndim <= 1 or a name ending ".bias":
                            every bias and LayerNorm weight; cls_token, mask_token and all
                            weight matrices are decayed), else the script stops and says so
  clip_grad_norm            null (MAE pretraining does not clip) or a number
Forward (the reference's, at step s for each sample b):
  x = patch_embed(img) + pos_embed[:, 1:]; patch n = row-major over the (H/p) x (W/p) grid;
  patch_embed(img)[n, d] = bias[d] + sum_{c,i,j} W[d, c, i, j] img[c, p*row(n)+i, p*col(n)+j]
  len_keep = int(N * (1 - mask_ratio)) (Python float arithmetic: 4 for N=16, ratio 0.75);
  the kept patches are the len_keep smallest noise values of the row; mask[n] = 1 for the
  others; their order inside the encoder does not change the result (attention is
  permutation-equivariant), so coptim may keep them in patch order (sums then differ only
  in rounding); encoder sequence = [cls_token + pos_embed[:, 0]] + kept patches;
  pre-norm blocks x += proj(attn(norm1 x)); x += fc2(gelu_erf(fc1(norm2 x))), softmax
  attention with scale head_dim^-0.5, LayerNorm eps 1e-6 everywhere; then norm;
  decoder_embed; decoder sequence = [cls] + per patch n: the encoded token if kept else
  mask_token; + decoder_pos_embed; decoder blocks; decoder_norm; decoder_pred; drop cls.
  Loss: target = patchify(img) [N, P] (pixel order (i, j, c) inside a patch); with
  norm_pix_loss target = (target - mean) / sqrt(var + 1e-6) per patch, var UNBIASED
  (divides by P - 1 = 48: torch.var's default, what the reference calls); per-patch mean
  squared error; loss = sum(per_patch * mask) / sum(mask) over the whole batch.
Training, for both optimizers, from the same initial weights, each step s in order:
  set lr = lrs[s] in every group; loss as above on images[s] with noise[s]; record it (before
  the update); backward; global gradient L2 norm n; if clip_grad_norm is set, scale the
  gradients by min(1, clip / (n + 1e-6)); optimizer step. pos_embed and decoder_pos_embed are
  not trained. Two parameter groups: no_weight_decay at 0, the rest at weight_decay.
  "adamw" is torch.optim.AdamW; "cadamw" is timm's AdamWLegacy(caution=True) (what
  timm.optim.create_optimizer_v2(opt="cadamw") builds, with the same groups as its
  filter_bias_and_bn); the caution mask is normalized per tensor. One thread, foreach=False.
Output: tests/parity/mae_losses.json, one JSON object:
  description, config (verbatim), lrs [steps]
  init_sums          {name (no "param." prefix): sum of the initial tensor, in f64}
  images_sum, noise_sum  f64 sums (the inputs did not change)
  masked_per_step    [steps] sum of the mask (B * (N - len_keep) when the noise is valid)
  adamw, cadamw      [steps] f32 loss before each step's update
  adamw_grad_norms, cadamw_grad_norms  [steps] global gradient L2 norm (before any clipping)
  first_grad_norms   {name: L2 norm of its gradient at step 1}, localizes a backward bug
  versions           {torch, timm, python}
The Rust test then checks init_sums (abs 1e-3) and the issue's target:
|coptim loss - torch loss| <= 1e-4 * |torch loss| at every step, for both optimizers.
Suggested parity run (what --make-inputs fabricates): D=64, L=4, H=4, Dd=32, Ld=2, Hd=4,
mlp_ratio 4, ratio 0.75, norm_pix_loss true, B=16, 20 steps, peak lr 1.5e-3 with 2 warm-up
steps then cosine to 0, betas (0.9, 0.95) (MAE's main_pretrain.py; the seed's HF Trainer
uses 0.999), eps 1e-8, weight decay 0.05 with the groups above, no clipping.
SELF-TEST (--make-inputs then --inputs target/parity/mae_inputs.selftest.safetensors): those
20 steps bring the loss from 1.249535 to 0.597117 (AdamW) and 0.568345 (C-AdamW), 192 masked
patches a step; the run is bitwise repeatable. Each malformed input (tied noise, a wrong
no_weight_decay list, a missing config field, a wrong sin-cos table, shapes or tensors that
do not fit the config) stops the script with a message naming the problem.

THE SPEC (/work/wt/s5/MAE_SPEC.md) CHECKED AGAINST THE REFERENCE
===============================================================
facebookresearch/mae at efb2a80 (models_mae.py, util/pos_embed.py, main_pretrain.py,
util/misc.py). Confirmed: the state-dict names and shapes, the forward order, argsort
masking (ascending noise = kept), mask 1 = removed, mask tokens appended then unshuffled with
ids_restore, cls kept first, decoder_pred on every token then cls dropped, the loss over
removed patches only, xavier_uniform on every nn.Linear (qkv as one [3D, D] matrix),
cls/mask token N(0, 0.02), LayerNorm 1/0. Corrections and additions:
 1. norm_pix_loss variance is UNBIASED (target.var(dim=-1) with torch's default
    correction=1: divides by p*p*C - 1 = 48), eps 1e-6 inside the square root.
 2. LayerNorm eps is 1e-6: every mae_vit_* factory passes partial(nn.LayerNorm, eps=1e-6)
    (the class's own default nn.LayerNorm would be 1e-5); used by blocks, norm, decoder_norm.
 3. patch_embed.proj.bias is NOT reset by initialize_weights (Conv2d is not nn.Linear): it
    keeps PyTorch's Conv2d default, uniform(-1/sqrt(fan_in), 1/sqrt(fan_in)), fan_in = C*p*p
    (= 1/7 here). patch_embed.proj.weight: xavier_uniform on the [D, C*p*p] view, i.e.
    bound sqrt(6 / (D + C*p*p)).
 4. The sin-cos tables: grid = meshgrid(w, h), so the FIRST half of the channels encodes
    the patch COLUMN and the second half the ROW (the variable named emb_h is the column);
    each half is [sin(pos * omega), cos(pos * omega)] with omega_k = 1 / 10000^(k / (D/4)),
    k < D/4, computed in float64 then cast to float32; the cls row is all zeros. Needs
    D % 4 == 0.
 5. The decoder blocks use the encoder's mlp_ratio; qkv_bias is True; MLP GELU is the exact
    (erf) one; no dropout or drop path in pretraining.
 6. MAE pretraining: AdamW betas (0.9, 0.95), weight decay 0.05 with no decay on biases and
    1-D tensors (timm add_weight_decay: cls_token and mask_token, 3-D, ARE decayed), no
    gradient clipping (NativeScaler's clip_grad=None), lr = blr * batch / 256, blr 1.5e-4.
 7. patchify hardcodes 3 channels: the reference cannot run in_chans=1 unmodified (shim 3).

REFERENCE AGREEMENT (--check-ref, run 2026-11-30)
=================================================
torch 2.15.0, timm 1.0.31, numpy 2.4.6, the reference at efb2a80 copied into a temporary
directory with four textual shims, each required to match exactly as often as stated:
 1. util/pos_embed.py `dtype=np.float)` -> `np.float64` (np.float, removed in NumPy 1.24,
    was Python's float, i.e. float64: exact);
 2. models_mae.py `, qk_scale=None` removed (2x): timm 1.0's Block has no qk_scale; None
    meant head_dim^-0.5, timm 1.0's fixed scale (exact);
 3. and 4. patchify's hardcoded 3 channels -> imgs.shape[1] (exact for C=3 too).
Default model (D=64, L=4, H=4, Dd=32, Ld=2, Hd=4, p=7, ratio 0.75, LN eps 1e-6), weights
from reference_init(seed 0) loaded strictly into both, 8 standardized test digits, the same
noise (the reference's own torch.rand, replayed by seeding). Error = max|ours - ref| /
max|ref| over a tensor; 84 trainable tensors:
  norm_pix_loss  ref attention          loss      loss err  pred err  mask   worst gradient
  false          sdpa (timm default)    1.758898  0         4.3e-7    same   4.1e-7
  false          explicit (fused off)   1.758898  0         0         same   0
  true           sdpa (timm default)    1.299745  9.2e-8    4.3e-7    same   4.0e-7
  true           explicit (fused off)   1.299745  0         0         same   0
With the same attention kernel the two are bitwise equal. Not vacuous: the same weights with
LayerNorm eps 1e-5 give a loss error of 1.5e-4, sin-cos tables with the row half first
2.1e-2, a biased norm_pix variance 9.0e-3. Feeding the kept patches to the encoder in patch
order instead of noise order changes the loss by 9.2e-8 (rounding only), so coptim may.
Fresh init (different draws): the fixed tables and every constant tensor equal the
reference's exactly; the std of each of the 30 random tensors is 0.914-1.029 x the
reference's (the smallest, mask_token and cls_token, vary most by chance).

MEAN-PATCH BASELINE (--baseline, bundled digits: mean over 8,000 train, loss on 2,000 test)
=======================================================================================
baseline_val_loss = mean over test images, patches and pixels of (target - m)^2 in f64,
m = the mean target patch over all patches of all training images (f32 targets). Averaging
over all patches is the exact expectation over MAE masks (fixed masked count per sample).
  images                      norm_pix_loss  baseline  per-position mean  predict 0
  standardized (coptim's)     true           0.571359  0.488212           0.576222
  standardized (coptim's)     false          0.989055  0.701642           0.991917
  unit [0, 1] pixels          true           0.570342  0.487354           0.575177
  unit [0, 1] pixels          false          0.094404  0.066971           0.111669
With norm_pix_loss the value depends slightly on the pixel scale (the absolute eps 1e-6);
about 41% of the 7x7 digit patches are constant (blank), whose normalized target is 0.

THROUGHPUT (--bench, 2026-11-30 on the shared 2-core dev machine, load average 9-10)
=================================================================================
Default model (232,529 trainable parameters), batch 64; one step = forward, backward,
torch AdamW (the groups above); 3 warm-up steps excluded, median of 20.
  `--bench --threads 1`                      wall 99.9 ms/step = 641 samples/s;
                                             CPU 32.3 ms/step = 1,980 samples/CPU-s
  `--bench --threads 1 --attention explicit` wall 102.5 ms = 624 samples/s; CPU 41.3 ms
                                             = 1,551 samples/CPU-s
  `--bench --threads 2`                      wall 720 ms = 89 samples/s (the two threads
                                             wait on each other on a busy machine)
Samples per CPU-second is the figure that depends least on the other users.

FEASIBILITY OF THE ISSUE'S TARGET (--fit, 2026-11-30, 1 thread, load average 7-10)
=================================================================================
The issue asks for a validation loss at most 0.6 x baseline_val_loss. `--fit STEPS` trains
the default model (seed 0) with torch AdamW and timm C-AdamW from one init, on the same
random standardized training digits and noise, batch 64 unless said, peak lr --lr with
5% linear warm-up then cosine to 0, betas (0.9, 0.95), weight decay 0.05 (groups above),
and reports the loss on the 2,000 test digits with fixed noise (seed 12) / the baseline:
  command (all with the default model)          AdamW val / x baseline   C-AdamW
  --fit 1000                (p 7, lr 1.5e-3)    0.4422 / 0.774           0.4375 / 0.766
  --fit 1000 --patch 4 --lr 3e-3                0.2957 / 0.838           0.2799 / 0.794
  --fit 1000 --no-norm-pix  (p 7, lr 1.5e-3)    0.6233 / 0.630           0.6088 / 0.616
  --fit 3000 --lr 3e-3      (p 7)               0.3315 / 0.580           0.3247 / 0.568
  --fit 1500 --lr 3e-3      (p 7)               0.3964 / 0.694           0.3808 / 0.667
  --fit 3000 --lr 3e-3 --batch 32 (p 7)         0.3760 / 0.658           0.3647 / 0.638
So with norm_pix_loss the 0.6 target needs about 3,000 steps of 64 (192,000 samples, 24
epochs of the bundled digits) at the default size and lr 3e-3; 1,000-1,500 steps end at
0.67-0.77, and the same 96,000 samples as 3,000 steps of 32 reach only 0.64-0.66. Plain
pixel targets (--no-norm-pix) come nearer sooner (0.62 after 1,000 steps). Patch 4 (N=49,
12 kept) is both slower and further from its own (lower) baseline. One seed each: the
C-AdamW lead (0.01-0.04 x baseline) is within what seeds may move.
"""

import gzip
import json
import math
import os
import subprocess
import sys
import time
from importlib.metadata import version

import torch
import torch.nn.functional as F
from safetensors import safe_open
from safetensors.torch import save_file

from parity_common import (ROOT, inputs_path, parser, print_step_times, rel_err, run_mode,
                           write_result)

INPUTS = os.path.join(ROOT, "target", "parity", "mae_inputs.safetensors")
SELFTEST_INPUTS = os.path.join(ROOT, "target", "parity", "mae_inputs.selftest.safetensors")
OUT = os.path.join(ROOT, "tests", "parity", "mae_losses.json")
SELFTEST_OUT = os.path.join(ROOT, "target", "parity", "mae_losses.selftest.json")
EXPORT = ["cargo", "test", "--test", "mae_parity", "--", "--ignored", "export_mae_parity_inputs"]
MNIST = os.path.join(ROOT, "data", "mnist")
MAE_REPO = "/work/.mirror/facebookresearch+mae/repo"
TOKEN_STD = 0.02
NORM_PIX_EPS = 1e-6
POS_EMBED_TOL = 1e-6  # |exported - ours| for the fixed tables: f32 rounding of sin/cos
MODEL_KEYS = ("img_size", "patch_size", "in_chans", "embed_dim", "depth", "num_heads",
              "decoder_embed_dim", "decoder_depth", "decoder_num_heads", "mlp_ratio",
              "layer_norm_eps", "mask_ratio", "norm_pix_loss")
REQUIRED_CONFIG = MODEL_KEYS + ("batch_size", "steps", "betas", "adam_eps", "weight_decay",
                                "no_weight_decay", "clip_grad_norm")
DEFAULT_MODEL = dict(img_size=28, patch_size=7, in_chans=1, embed_dim=64, depth=4,
                     num_heads=4, decoder_embed_dim=32, decoder_depth=2, decoder_num_heads=4,
                     mlp_ratio=4.0, layer_norm_eps=1e-6, mask_ratio=0.75, norm_pix_loss=True)


# ---------------------------------------------------------------- the model

def sincos_1d(dim, pos):
    """[M, dim] = [sin(pos * omega), cos(pos * omega)], omega_k = 10000^(-k / (dim/2)), f64."""
    omega = 1.0 / 10000 ** (torch.arange(dim // 2, dtype=torch.float64) / (dim / 2.0))
    out = pos.reshape(-1, 1).double() * omega[None, :]
    return torch.cat((out.sin(), out.cos()), dim=1)


def sincos_2d(dim, grid_size):
    """MAE's get_2d_sincos_pos_embed(dim, grid_size, cls_token=True) as f32 [1, 1 + G*G, dim]:
    first half of the channels from the patch column, second half from the row."""
    if dim % 4:
        sys.exit(f"the sin-cos position tables need a width divisible by 4, not {dim}")
    rows, cols = torch.meshgrid(torch.arange(grid_size), torch.arange(grid_size), indexing="ij")
    emb = torch.cat((sincos_1d(dim // 2, cols), sincos_1d(dim // 2, rows)), dim=1)
    return torch.cat((torch.zeros(1, dim, dtype=torch.float64), emb)).float()[None]


class Attention(torch.nn.Module):
    """timm Attention with qkv_bias: softmax(q k^T * head_dim^-0.5) v, explicit or sdpa."""

    def __init__(self, dim, heads, sdpa):
        super().__init__()
        self.heads, self.sdpa = heads, sdpa
        self.qkv = torch.nn.Linear(dim, 3 * dim)
        self.proj = torch.nn.Linear(dim, dim)

    def forward(self, x):
        b, n, d = x.shape
        q, k, v = self.qkv(x).reshape(b, n, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        if self.sdpa:
            a = F.scaled_dot_product_attention(q, k, v)
        else:
            a = torch.softmax(q * (d // self.heads) ** -0.5 @ k.transpose(-2, -1), dim=-1) @ v
        return self.proj(a.transpose(1, 2).reshape(b, n, d))


class Mlp(torch.nn.Module):
    def __init__(self, dim, hidden):
        super().__init__()
        self.fc1 = torch.nn.Linear(dim, hidden)
        self.fc2 = torch.nn.Linear(hidden, dim)

    def forward(self, x):
        return self.fc2(F.gelu(self.fc1(x)))


class Block(torch.nn.Module):
    """timm's pre-norm ViT block (no dropout, drop path or layer scale)."""

    def __init__(self, dim, heads, mlp_ratio, eps, sdpa):
        super().__init__()
        self.norm1 = torch.nn.LayerNorm(dim, eps=eps)
        self.attn = Attention(dim, heads, sdpa)
        self.norm2 = torch.nn.LayerNorm(dim, eps=eps)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))

    def forward(self, x):
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class PatchEmbed(torch.nn.Module):
    def __init__(self, cfg):
        super().__init__()
        p = cfg["patch_size"]
        self.proj = torch.nn.Conv2d(cfg["in_chans"], cfg["embed_dim"], p, stride=p)

    def forward(self, imgs):
        return self.proj(imgs).flatten(2).transpose(1, 2)


def blocks(cfg, width, depth, heads):
    return torch.nn.ModuleList(
        Block(cfg[width], cfg[heads], cfg["mlp_ratio"], cfg["layer_norm_eps"],
              cfg.get("sdpa", False)) for _ in range(cfg[depth]))


def patchify(imgs, p):
    """[B, C, H, W] -> [B, (H/p)(W/p), p*p*C], pixels (i, j, c) inside a patch (MAE's)."""
    b, c, h, w = imgs.shape
    x = imgs.reshape(b, c, h // p, p, w // p, p)
    return torch.einsum("nchpwq->nhwpqc", x).reshape(b, (h // p) * (w // p), p * p * c)


def patch_targets(imgs, p, norm_pix):
    """The loss targets: patches, each normalized by its mean and unbiased variance if asked."""
    target = patchify(imgs, p)
    if norm_pix:
        mean = target.mean(dim=-1, keepdim=True)
        var = target.var(dim=-1, keepdim=True)
        target = (target - mean) / (var + NORM_PIX_EPS) ** 0.5
    return target


def masking(noise, ratio):
    """(ids_keep, mask, ids_restore) of MAE's random_masking for the given noise [B, N]."""
    n = noise.shape[1]
    len_keep = int(n * (1 - ratio))
    ids_shuffle = torch.argsort(noise, dim=1)
    ids_restore = torch.argsort(ids_shuffle, dim=1)
    mask = torch.ones_like(noise)
    mask[:, :len_keep] = 0
    return ids_shuffle[:, :len_keep], torch.gather(mask, 1, ids_restore), ids_restore


class Mae(torch.nn.Module):
    """MaskedAutoencoderViT's parameters, names and forward; forward(imgs, noise) ->
    (loss, pred [B, N, P], mask [B, N]). cfg["sdpa"] picks fused attention (bench only)."""

    def __init__(self, cfg):
        super().__init__()
        self.cfg = cfg
        p, d, dd = cfg["patch_size"], cfg["embed_dim"], cfg["decoder_embed_dim"]
        grid = cfg["img_size"] // p
        self.patch_embed = PatchEmbed(cfg)
        self.cls_token = torch.nn.Parameter(torch.zeros(1, 1, d))
        self.pos_embed = torch.nn.Parameter(sincos_2d(d, grid), requires_grad=False)
        self.blocks = blocks(cfg, "embed_dim", "depth", "num_heads")
        self.norm = torch.nn.LayerNorm(d, eps=cfg["layer_norm_eps"])
        self.decoder_embed = torch.nn.Linear(d, dd)
        self.mask_token = torch.nn.Parameter(torch.zeros(1, 1, dd))
        self.decoder_pos_embed = torch.nn.Parameter(sincos_2d(dd, grid), requires_grad=False)
        self.decoder_blocks = blocks(cfg, "decoder_embed_dim", "decoder_depth",
                                     "decoder_num_heads")
        self.decoder_norm = torch.nn.LayerNorm(dd, eps=cfg["layer_norm_eps"])
        self.decoder_pred = torch.nn.Linear(dd, p * p * cfg["in_chans"])

    def encode(self, imgs, ids_keep):
        x = self.patch_embed(imgs) + self.pos_embed[:, 1:]
        x = torch.gather(x, 1, ids_keep[..., None].expand(-1, -1, x.shape[2]))
        cls = (self.cls_token + self.pos_embed[:, :1]).expand(x.shape[0], -1, -1)
        x = torch.cat((cls, x), dim=1)
        for block in self.blocks:
            x = block(x)
        return self.norm(x)

    def decode(self, latent, ids_restore):
        x = self.decoder_embed(latent)
        b, kept, dd = x.shape
        masked = self.mask_token.expand(b, ids_restore.shape[1] + 1 - kept, dd)
        x_ = torch.cat((x[:, 1:], masked), dim=1)
        x_ = torch.gather(x_, 1, ids_restore[..., None].expand(-1, -1, dd))
        x = torch.cat((x[:, :1], x_), dim=1) + self.decoder_pos_embed
        for block in self.decoder_blocks:
            x = block(x)
        return self.decoder_pred(self.decoder_norm(x))[:, 1:]

    def forward(self, imgs, noise):
        ids_keep, mask, ids_restore = masking(noise, self.cfg["mask_ratio"])
        pred = self.decode(self.encode(imgs, ids_keep), ids_restore)
        target = patch_targets(imgs, self.cfg["patch_size"], self.cfg["norm_pix_loss"])
        loss = ((pred - target) ** 2).mean(dim=-1)
        return (loss * mask).sum() / mask.sum(), pred, mask


def reference_init(model, seed):
    """MAE's initialize_weights, drawn from a seeded generator: xavier_uniform on every Linear
    and on the patch projection's [D, C*p*p] view, Linear biases 0, LayerNorm 1/0, tokens
    N(0, 0.02), the patch projection's bias uniform(+-1/sqrt(C*p*p)) (Conv2d's default,
    which MAE leaves in place)."""
    gen = torch.Generator().manual_seed(seed)
    init = torch.nn.init
    with torch.no_grad():
        w = model.patch_embed.proj.weight
        init.xavier_uniform_(w.view(w.shape[0], -1), generator=gen)
        bound = 1.0 / math.sqrt(w[0].numel())
        init.uniform_(model.patch_embed.proj.bias, -bound, bound, generator=gen)
        init.normal_(model.cls_token, std=TOKEN_STD, generator=gen)
        init.normal_(model.mask_token, std=TOKEN_STD, generator=gen)
        for m in model.modules():
            if isinstance(m, torch.nn.Linear):
                init.xavier_uniform_(m.weight, generator=gen)
                m.bias.zero_()
            elif isinstance(m, torch.nn.LayerNorm):
                m.weight.fill_(1.0)
                m.bias.zero_()


def timm_no_weight_decay(model):
    """Names timm's filter_bias_and_bn / MAE's add_weight_decay exempt from decay."""
    return sorted(n for n, p in model.named_parameters()
                  if p.requires_grad and (p.ndim <= 1 or n.endswith(".bias")))


def model_config(args, **overrides):
    """The model config: DEFAULT_MODEL, then this mode's `overrides`, then the flags."""
    cfg = dict(DEFAULT_MODEL, **overrides)
    for key in MODEL_KEYS + ("batch_size", "seed"):
        if getattr(args, key, None) is not None:
            cfg[key] = getattr(args, key)
    for width, heads in (("embed_dim", "num_heads"), ("decoder_embed_dim", "decoder_num_heads")):
        if cfg[width] % cfg[heads]:
            sys.exit(f"{width} must be a multiple of {heads}")
    if cfg["img_size"] % cfg["patch_size"]:
        sys.exit("img_size must be a multiple of patch_size")
    return cfg


# ---------------------------------------------------------------- data

def read_idx(name):
    """The uint8 array of one gzipped IDX file under data/mnist, shaped by its header."""
    with gzip.open(os.path.join(MNIST, f"{name}.gz"), "rb") as f:
        raw = f.read()
    ndim = raw[3]
    dims = [int.from_bytes(raw[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim)]
    data = torch.frombuffer(bytearray(raw[4 + 4 * ndim:]), dtype=torch.uint8)
    return data.reshape(dims)


def bundled_digits():
    """(train, test) images of the bundled digits as f32 [n, 1, 28, 28] in [0, 1]
    (coptim's Dataset: byte / 255)."""
    return tuple(read_idx(f"{split}-images-idx3-ubyte").float().div(255.0)[:, None]
                 for split in ("train", "t10k"))


def standardize(images, train):
    """coptim's Standardize::of(train) applied: (x - mean) / std, population std in f64."""
    mean = train.double().mean()
    std = ((train.double() - mean) ** 2).mean().sqrt()
    return ((images - float(mean)) * (1.0 / float(std))).float()


# ---------------------------------------------------------------- parity mode

def read_config(f, path):
    config = json.loads((f.metadata() or {}).get("config", "{}"))
    missing = [k for k in REQUIRED_CONFIG if k not in config]
    if missing or not {"images", "noise", "lrs"} <= set(f.keys()):
        sys.exit(f"{path}: needs tensors images, noise and lrs and a metadata config with "
                 f"{', '.join(REQUIRED_CONFIG)}; missing config fields: {missing}")
    return config


def check_batches(path, config, images, noise, lrs):
    c, side = config["in_chans"], config["img_size"]
    n = (side // config["patch_size"]) ** 2
    steps, batch = config["steps"], config["batch_size"]
    shapes = (tuple(images.shape), tuple(noise.shape), tuple(lrs.shape))
    if shapes != ((steps, batch, c, side, side), (steps, batch, n), (steps,)):
        sys.exit(f"{path}: images/noise/lrs shapes {shapes} do not match the config's "
                 f"[steps, B, C, H, W] / [steps, B, N] / [steps] = "
                 f"{(steps, batch, c, side, side)}, {(steps, batch, n)}, {(steps,)}")
    if not (images.isfinite().all() and noise.isfinite().all()):
        sys.exit(f"{path}: images or noise hold non-finite values")
    ties = int((noise.sort(dim=-1).values.diff(dim=-1) == 0).sum())
    if ties:
        sys.exit(f"{path}: {ties} tied noise values within a sample; the mask would depend "
                 f"on how argsort breaks ties")


def check_fixed_tables(path, config, init):
    grid = config["img_size"] // config["patch_size"]
    for name, width in (("pos_embed", "embed_dim"), ("decoder_pos_embed", "decoder_embed_dim")):
        if name not in init:
            sys.exit(f"{path}: missing param.{name}")
        err = float((init[name] - sincos_2d(config[width], grid)).abs().max())
        if err > POS_EMBED_TOL:
            sys.exit(f"{path}: param.{name} differs from MAE's 2-D sin-cos table by {err:.2e} "
                     f"(> {POS_EMBED_TOL})")


def read_inputs(path):
    """(config, initial state dict, images, noise, lrs f64) of an inputs file, checked."""
    with safe_open(path, "pt") as f:
        config = read_config(f, path)
        init = {k[len("param."):]: f.get_tensor(k) for k in f.keys() if k.startswith("param.")}
        images, noise = f.get_tensor("images").float(), f.get_tensor("noise").float()
        lrs = f.get_tensor("lrs").to(torch.float64)
    check_batches(path, config, images, noise, lrs)
    check_fixed_tables(path, config, init)
    try:
        Mae(config).load_state_dict(init, strict=True)
    except RuntimeError as e:
        sys.exit(f"{path}: the param.* tensors do not fit the config's model: {e}")
    return config, init, images, noise, lrs


def param_groups(model, config):
    """[decayed, not decayed] as config["no_weight_decay"] says, which must be timm's rule."""
    exempt = sorted(config["no_weight_decay"])
    expected = timm_no_weight_decay(model)
    if exempt != expected:
        sys.exit(f"no_weight_decay is not timm's/MAE's rule: extra "
                 f"{sorted(set(exempt) - set(expected))}, missing "
                 f"{sorted(set(expected) - set(exempt))}")
    trainable = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    return [{"params": [p for n, p in trainable if n not in exempt],
             "weight_decay": config["weight_decay"]},
            {"params": [p for n, p in trainable if n in exempt], "weight_decay": 0.0}]


def optimizer_factories(config):
    from timm.optim.adamw import AdamWLegacy

    common = dict(betas=tuple(config["betas"]), eps=config["adam_eps"], foreach=False)
    return {
        "adamw": lambda groups: torch.optim.AdamW(groups, lr=0.0, **common),
        "cadamw": lambda groups: AdamWLegacy(groups, lr=0.0, caution=True, **common),
    }


def grad_norm(params, clip):
    """The global gradient L2 norm, after clipping the gradients to `clip` if it is set."""
    if clip is not None:
        return float(torch.nn.utils.clip_grad_norm_(params, clip))
    return float(torch.linalg.vector_norm(torch.stack([p.grad.norm() for p in params])))


def train(config, init, batches, make_optimizer):
    """Losses before each update, global grad norms, masks per step, step 1's grad norms."""
    images, noise, lrs = batches
    model = Mae(config)
    model.load_state_dict(init, strict=True)
    opt = make_optimizer(param_groups(model, config))
    params = [p for p in model.parameters() if p.requires_grad]
    losses, norms, masked, first = [], [], [], None
    for step in range(images.shape[0]):
        for group in opt.param_groups:
            group["lr"] = float(lrs[step])
        loss, _, mask = model(images[step], noise[step])
        losses.append(loss.item())
        masked.append(int(mask.sum()))
        opt.zero_grad()
        loss.backward()
        if first is None:
            first = {n: float(p.grad.double().norm())
                     for n, p in model.named_parameters() if p.requires_grad}
        norms.append(grad_norm(params, config["clip_grad_norm"]))
        opt.step()
    return losses, norms, masked, first


def parity(args):
    path = inputs_path(args, "mae_parity", EXPORT, INPUTS)
    config, init, images, noise, lrs = read_inputs(path)
    torch.set_num_threads(1)
    result = {
        "description": "loss before each step's update; see scripts/mae_torch.py",
        "config": config,
        "init_sums": {k: float(t.double().sum()) for k, t in init.items()},
        "images_sum": float(images.double().sum()),
        "noise_sum": float(noise.double().sum()),
        "lrs": lrs.tolist(),
    }
    for name, make in optimizer_factories(config).items():
        losses, norms, masked, first = train(config, init, (images, noise, lrs), make)
        result[name], result[f"{name}_grad_norms"] = losses, norms
        result["masked_per_step"], result["first_grad_norms"] = masked, first
        print(f"{name}: loss {losses[0]:.6f} -> {losses[-1]:.6f}")
    write_result(result, config, OUT, SELFTEST_OUT)


# ---------------------------------------------------------------- self-test inputs

def warmup_cosine(peak, warmup, steps):
    """Linear warm-up over `warmup` steps, then cosine from peak to 0 (HF's "cosine")."""
    return [peak * (s + 1) / warmup if s < warmup else
            peak * 0.5 * (1 + math.cos(math.pi * (s - warmup) / (steps - warmup)))
            for s in range(steps)]


def distinct_noise(shape, gen):
    """Uniform [0, 1) noise, redrawn until no sample has two equal values."""
    while True:
        noise = torch.rand(shape, generator=gen)
        if not (noise.sort(dim=-1).values.diff(dim=-1) == 0).any():
            return noise


def make_inputs(args):
    """SELF-TEST: an inputs file from torch's own init, random standardized training digits and
    torch's noise (never commit the JSON made from it)."""
    steps, peak, warmup = 20, 1.5e-3, 2
    cfg = model_config(args, batch_size=16, seed=0)
    cfg.update(source="self-test (scripts/mae_torch.py --make-inputs)", steps=steps,
               betas=[0.9, 0.95], adam_eps=1e-8, weight_decay=0.05, clip_grad_norm=None)
    model = Mae(cfg)
    reference_init(model, cfg["seed"])
    cfg["no_weight_decay"] = timm_no_weight_decay(model)
    gen = torch.Generator().manual_seed(cfg["seed"] + 1)
    train_set, _ = bundled_digits()
    picks = torch.randint(0, len(train_set), (steps * cfg["batch_size"],), generator=gen)
    images = standardize(train_set[picks], train_set)
    n = (cfg["img_size"] // cfg["patch_size"]) ** 2
    tensors = {f"param.{k}": v.contiguous() for k, v in model.state_dict().items()}
    tensors["images"] = images.reshape(steps, cfg["batch_size"], *images.shape[1:]).contiguous()
    tensors["noise"] = distinct_noise((steps, cfg["batch_size"], n), gen)
    tensors["lrs"] = torch.tensor(warmup_cosine(peak, warmup, steps), dtype=torch.float32)
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    save_file(tensors, args.out, metadata={"config": json.dumps(cfg)})
    print(f"wrote {args.out} (SELF-TEST inputs; run parity with --inputs {args.out})")


# ---------------------------------------------------------------- reference check

# Each shim: (file, old text, new text, how many times it must occur, why it is exact).
REFERENCE_SHIMS = (
    ("util/pos_embed.py", "dtype=np.float)", "dtype=np.float64)", 1,
     "np.float (removed in NumPy 1.24) was an alias of Python's float, i.e. float64"),
    ("models_mae.py", ", qk_scale=None", "", 2,
     "timm 1.0 Block has no qk_scale; None meant head_dim**-0.5, timm 1.0's fixed scale"),
    ("models_mae.py", "(imgs.shape[0], 3, h, p, w, p)",
     "(imgs.shape[0], imgs.shape[1], h, p, w, p)", 1,
     "patchify hardcodes 3 channels; the same reshape with the image's own channel count"),
    ("models_mae.py", "(imgs.shape[0], h * w, p**2 * 3)",
     "(imgs.shape[0], h * w, p**2 * imgs.shape[1])", 1,
     "the same, for patchify's output width"),
)


def reference_source(repo, path):
    """A file of the MAE reference: from a git directory (a fetched mirror) or a checkout."""
    if os.path.exists(os.path.join(repo, path)):
        with open(os.path.join(repo, path), encoding="utf-8") as f:
            return f.read()
    return subprocess.run(["git", "--git-dir", repo, "show", f"HEAD:{path}"], check=True,
                          capture_output=True, text=True).stdout


def import_reference(repo, folder):
    """Copies models_mae.py and util/pos_embed.py into `folder`, applies REFERENCE_SHIMS
    (each must match exactly as often as stated) and imports models_mae from there."""
    texts = {p: reference_source(repo, p) for p in ("models_mae.py", "util/pos_embed.py")}
    for path, old, new, count, why in REFERENCE_SHIMS:
        if texts[path].count(old) != count:
            sys.exit(f"{repo}:{path}: expected {count} x {old!r} for the shim '{why}'")
        texts[path] = texts[path].replace(old, new)
    os.makedirs(os.path.join(folder, "util"))
    open(os.path.join(folder, "util", "__init__.py"), "w").close()
    for path, text in texts.items():
        with open(os.path.join(folder, path), "w", encoding="utf-8") as f:
            f.write(text)
    sys.path.insert(0, folder)
    import models_mae

    return models_mae


def reference_model(models_mae, cfg, seed):
    from functools import partial

    torch.manual_seed(seed)
    return models_mae.MaskedAutoencoderViT(
        img_size=cfg["img_size"], patch_size=cfg["patch_size"], in_chans=cfg["in_chans"],
        embed_dim=cfg["embed_dim"], depth=cfg["depth"], num_heads=cfg["num_heads"],
        decoder_embed_dim=cfg["decoder_embed_dim"], decoder_depth=cfg["decoder_depth"],
        decoder_num_heads=cfg["decoder_num_heads"], mlp_ratio=cfg["mlp_ratio"],
        norm_layer=partial(torch.nn.LayerNorm, eps=cfg["layer_norm_eps"]),
        norm_pix_loss=cfg["norm_pix_loss"])


def compare_init(ours, ref):
    """The fresh reference init against ours (different random draws): fixed tables and
    constant tensors must be equal; random ones must have a similar spread."""
    theirs = ref.state_dict()
    exact, spread = 0.0, {}
    for name, t in ours.state_dict().items():
        if t.std() == 0 or "pos_embed" in name:
            exact = max(exact, float((t - theirs[name]).abs().max()))
        else:
            spread[name] = float(t.std() / theirs[name].std())
    worst = max(spread, key=lambda n: abs(math.log(spread[n])))
    print(f"fresh init: fixed tables and constant tensors max |ours - ref| = {exact:.1e}; "
          f"std ratio ours/ref over {len(spread)} random tensors "
          f"{min(spread.values()):.3f}..{max(spread.values()):.3f} (worst {worst})")


def forward_backward(model, run):
    model.zero_grad()
    loss, pred, mask = run()
    loss.backward()
    grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.requires_grad}
    return loss.detach(), pred.detach(), mask, grads


def same_noise(cfg, batch, patches):
    """torch.rand(batch, patches) from the global generator seeded with seed + 2, which is then
    seeded again: the reference's next call draws the same noise in random_masking (its
    first and only random draw in forward)."""
    torch.manual_seed(cfg["seed"] + 2)
    noise = torch.rand(batch, patches)
    torch.manual_seed(cfg["seed"] + 2)
    return noise


def check_ref_one(models_mae, cfg, imgs, fused):
    ours = Mae(cfg)
    reference_init(ours, cfg["seed"])
    ref = reference_model(models_mae, cfg, cfg["seed"])
    if not fused:
        for block in list(ref.blocks) + list(ref.decoder_blocks):
            block.attn.fused_attn = False
    ref.load_state_dict(ours.state_dict(), strict=True)
    noise = same_noise(cfg, imgs.shape[0], ref.patch_embed.num_patches)
    b = forward_backward(ref, lambda: ref(imgs, mask_ratio=cfg["mask_ratio"]))
    a = forward_backward(ours, lambda: ours(imgs, noise))
    grads = {n: rel_err(g, b[3][n]) for n, g in a[3].items()}
    worst = max(grads, key=grads.get)
    return ours, ref, {"loss_value": float(b[0]), "loss": rel_err(a[0], b[0]),
                       "pred": rel_err(a[1], b[1]), "mask_equal": bool((a[2] == b[2]).all()),
                       "worst_grad": grads[worst], "worst_grad_tensor": worst,
                       "tensors": len(grads)}


def check_ref(args):
    import tempfile

    print(f"torch {torch.__version__}, timm {version('timm')}, reference {args.mae_repo}")
    for path, old, new, count, why in REFERENCE_SHIMS:
        print(f"shim {path}: {old!r} -> {new!r} ({count}x): {why}")
    train_set, test_set = bundled_digits()
    with tempfile.TemporaryDirectory() as folder:
        models_mae = import_reference(args.mae_repo, folder)
        for norm_pix in (False, True):
            cfg = dict(model_config(args, batch_size=8, seed=0), norm_pix_loss=norm_pix)
            imgs = standardize(test_set[:cfg["batch_size"]], train_set)
            for fused in (True, False):
                ours, ref, r = check_ref_one(models_mae, cfg, imgs, fused)
                print(f"norm_pix_loss={norm_pix!s:5} ref attention "
                      f"{'sdpa (timm default)' if fused else 'explicit':19} loss "
                      f"{r['loss_value']:.6f}  rel err loss {r['loss']:.1e}  pred "
                      f"{r['pred']:.1e}  same mask {r['mask_equal']}  worst grad "
                      f"{r['worst_grad']:.1e} ({r['worst_grad_tensor']}, {r['tensors']} tensors)")
        compare_init(ours, reference_model(models_mae, cfg, cfg["seed"] + 5))
        sensitivity(models_mae, cfg, imgs)


def sensitivity(models_mae, cfg, imgs):
    """Loss errors of plausible mistakes, to show that the check above would see them."""
    ours, ref, _ = check_ref_one(models_mae, cfg, imgs, False)
    noise = same_noise(cfg, imgs.shape[0], ref.patch_embed.num_patches)
    errors = {}
    with torch.no_grad():
        truth = ref(imgs, mask_ratio=cfg["mask_ratio"])[0]
        wrong = Mae(dict(cfg, layer_norm_eps=1e-5))
        wrong.load_state_dict(ours.state_dict())
        errors["LayerNorm eps 1e-5"] = rel_err(wrong(imgs, noise)[0], truth)
        wrong.load_state_dict(rows_first(ours.state_dict()))
        errors["sin-cos tables row first"] = rel_err(wrong(imgs, noise)[0], truth)
        _, pred, mask = ours(imgs, noise)
        target = patchify(imgs, cfg["patch_size"])
        target = (target - target.mean(-1, keepdim=True)) / (
            target.var(-1, keepdim=True, correction=0) + NORM_PIX_EPS) ** 0.5
        errors["biased variance"] = rel_err(
            (((pred - target) ** 2).mean(-1) * mask).sum() / mask.sum(), truth)
        reordered = rel_err(patch_order_loss(ours, imgs, noise), truth)
    print(f"not vacuous (norm_pix_loss={cfg['norm_pix_loss']}): loss error of ours with " +
          ", ".join(f"{k}: {v:.1e}" for k, v in errors.items()))
    print(f"allowed: kept patches in patch order instead of noise order: loss error "
          f"{reordered:.1e}")


def rows_first(state):
    """The state with both sin-cos tables' halves swapped (row first: a plausible mistake)."""
    state = dict(state)
    for name in ("pos_embed", "decoder_pos_embed"):
        half = state[name].shape[-1] // 2
        state[name] = torch.cat((state[name][..., half:], state[name][..., :half]), dim=-1)
    return state


def patch_order_loss(model, imgs, noise):
    """The loss with the kept patches fed to the encoder in patch order (what coptim may do)."""
    ids_keep, mask, ids_restore = masking(noise, model.cfg["mask_ratio"])
    ids_keep = ids_keep.sort(dim=1).values
    removed = torch.argsort(noise, dim=1)[:, ids_keep.shape[1]:]
    ids_restore = torch.argsort(torch.cat((ids_keep, removed), dim=1), dim=1)
    pred = model.decode(model.encode(imgs, ids_keep), ids_restore)
    target = patch_targets(imgs, model.cfg["patch_size"], model.cfg["norm_pix_loss"])
    return (((pred - target) ** 2).mean(dim=-1) * mask).sum() / mask.sum()


# ---------------------------------------------------------------- mean-patch baseline

def mean_patch_baseline(train, test, p, norm_pix):
    """Losses on `test` of predicting every patch as a fixed patch, in f64 from f32 targets:
    "pooled" = the mean of all training patches (the issue's baseline_val_loss), "positional"
    = the mean training patch at each patch position, "zero" = predicting 0. Averaged over
    all patches: the exact expectation of the masked loss over MAE's masks, whose count of
    masked patches per sample is fixed."""
    train_t = patch_targets(train, p, norm_pix).double()
    test_t = patch_targets(test, p, norm_pix).double()
    pooled = train_t.mean(dim=(0, 1))
    positional = train_t.mean(dim=0)
    return {"pooled": float(((test_t - pooled) ** 2).mean()),
            "positional": float(((test_t - positional) ** 2).mean()),
            "zero": float((test_t ** 2).mean()),
            "mean_patch_abs_max": float(pooled.abs().max())}


def baseline(args):
    train_set, test_set = bundled_digits()
    p = args.patch_size or DEFAULT_MODEL["patch_size"]
    print(f"bundled digits: {len(train_set)} train (the mean patch), {len(test_set)} test "
          f"(the loss), patch {p}")
    scales = {"standardized (coptim's input)": (standardize(train_set, train_set),
                                                 standardize(test_set, train_set)),
              "unit [0, 1] pixels": (train_set, test_set)}
    for label, (train, test) in scales.items():
        for norm_pix in (True, False):
            r = mean_patch_baseline(train, test, p, norm_pix)
            print(f"{label:30} norm_pix_loss={norm_pix!s:5} baseline_val_loss "
                  f"{r['pooled']:.6f}  per-position mean {r['positional']:.6f}  predicting 0 "
                  f"{r['zero']:.6f}  max |mean patch| {r['mean_patch_abs_max']:.4f}")


# ---------------------------------------------------------------- throughput

def bench_step(model, opt, cfg, images, gen):
    """One timed training step on a random batch: (wall seconds, process CPU seconds)."""
    picks = torch.randint(0, len(images), (cfg["batch_size"],), generator=gen)
    n = (cfg["img_size"] // cfg["patch_size"]) ** 2
    noise = torch.rand(cfg["batch_size"], n, generator=gen)
    wall, cpu = time.perf_counter(), time.process_time()
    loss, _, _ = model(images[picks], noise)
    opt.zero_grad()
    loss.backward()
    opt.step()
    return time.perf_counter() - wall, time.process_time() - cpu


def bench(args):
    """Training samples/s (forward, backward, AdamW step), median over timed steps."""
    if args.threads:
        torch.set_num_threads(args.threads)
    cfg = model_config(args, batch_size=64, seed=0, sdpa=args.attention == "sdpa")
    model = Mae(cfg)
    reference_init(model, cfg["seed"])
    cfg["no_weight_decay"], cfg["weight_decay"] = timm_no_weight_decay(model), 0.05
    opt = torch.optim.AdamW(param_groups(model, cfg), lr=1.5e-3, betas=(0.9, 0.95))
    train_set, _ = bundled_digits()
    images = standardize(train_set, train_set)
    gen = torch.Generator().manual_seed(1)
    times = [bench_step(model, opt, cfg, images, gen) for _ in range(args.warmup + args.steps)]
    batch = cfg["batch_size"]
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    print(f"config {json.dumps({k: cfg[k] for k in MODEL_KEYS + ('batch_size',)})}")
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, attention "
          f"{args.attention}, {trainable} trainable parameters, AdamW, {args.warmup} warm-up "
          f"steps excluded, median of {args.steps}")
    print_step_times(times, args.warmup, batch, "samples")


def validation_loss(model, images, noise, chunk=500):
    """The masked loss over a whole split with fixed noise (equal chunks: the mean of theirs)."""
    with torch.no_grad():
        losses = [model(images[i:i + chunk], noise[i:i + chunk])[0]
                  for i in range(0, len(images), chunk)]
    return float(torch.stack(losses).mean())


def fit_run(cfg, make_optimizer, data, lrs):
    """Trains one model, printing the validation loss at 5 points; returns the last one."""
    train, test, test_noise, base = data
    model = Mae(cfg)
    reference_init(model, cfg["seed"])
    opt = make_optimizer(param_groups(model, cfg))
    gen = torch.Generator().manual_seed(cfg["seed"] + 1)
    n = test_noise.shape[1]
    for step, lr in enumerate(lrs, 1):
        for group in opt.param_groups:
            group["lr"] = lr
        picks = torch.randint(0, len(train), (cfg["batch_size"],), generator=gen)
        loss = model(train[picks], torch.rand(cfg["batch_size"], n, generator=gen))[0]
        opt.zero_grad()
        loss.backward()
        opt.step()
        if step % max(1, len(lrs) // 5) == 0 or step == len(lrs):
            val = validation_loss(model, test, test_noise)
            print(f"  step {step:5}: train {loss.item():.4f}  val {val:.4f} "
                  f"= {val / base:.3f} x baseline")
    return val


def fit(args):
    """Feasibility of the issue's target (val loss <= 0.6 x the mean-patch baseline): trains
    the default model with AdamW and C-AdamW from one init on the same batches and noise."""
    torch.set_num_threads(args.threads or 1)
    cfg = model_config(args, batch_size=64, seed=0)
    cfg.update(betas=[0.9, 0.95], adam_eps=1e-8, weight_decay=0.05)
    cfg["no_weight_decay"] = timm_no_weight_decay(Mae(cfg))
    train_set, test_set = bundled_digits()
    train, test = standardize(train_set, train_set), standardize(test_set, train_set)
    base = mean_patch_baseline(train, test, cfg["patch_size"], cfg["norm_pix_loss"])["pooled"]
    n = (cfg["img_size"] // cfg["patch_size"]) ** 2
    test_noise = torch.rand(len(test), n, generator=torch.Generator().manual_seed(12))
    lrs = warmup_cosine(args.lr, max(1, args.fit // 20), args.fit)
    shown = {k: v for k, v in cfg.items() if k != "no_weight_decay"}
    print(f"config {json.dumps(shown)} ({len(cfg['no_weight_decay'])} tensors undecayed); "
          f"{args.fit} steps, peak lr {args.lr}, 5% warm-up then cosine to 0; "
          f"baseline_val_loss {base:.4f}")
    for name, make in optimizer_factories(cfg).items():
        print(name)
        wall = time.perf_counter()
        val = fit_run(cfg, make, (train, test, test_noise, base), lrs)
        print(f"  {name}: final val {val:.4f} = {val / base:.3f} x baseline "
              f"({time.perf_counter() - wall:.0f} s)")


def main():
    p, mode = parser(__doc__, SELFTEST_INPUTS)
    mode.add_argument("--check-ref", action="store_true", help="compare with models_mae.py")
    mode.add_argument("--make-inputs", action="store_true", help="SELF-TEST inputs file")
    mode.add_argument("--baseline", action="store_true", help="mean-patch baseline loss")
    mode.add_argument("--bench", action="store_true", help="CPU training samples/s")
    mode.add_argument("--fit", type=int, metavar="STEPS",
                      help="train STEPS steps with both optimizers, print validation losses")
    p.add_argument("--mae-repo", default=MAE_REPO,
                   help="--check-ref: facebookresearch/mae, a git directory or a checkout")
    for flag, key in (("--patch", "patch_size"), ("--dim", "embed_dim"), ("--depth", "depth"),
                      ("--heads", "num_heads"), ("--dec-dim", "decoder_embed_dim"),
                      ("--dec-depth", "decoder_depth"), ("--dec-heads", "decoder_num_heads"),
                      ("--batch", "batch_size"), ("--seed", "seed")):
        p.add_argument(flag, dest=key, type=int, help=f"{key} (each mode has defaults)")
    p.add_argument("--mask-ratio", dest="mask_ratio", type=float, help="default 0.75")
    p.add_argument("--mlp-ratio", dest="mlp_ratio", type=float, help="default 4")
    p.add_argument("--no-norm-pix", dest="norm_pix_loss", action="store_const", const=False,
                   help="plain pixel targets (norm_pix_loss is on by default, as in the seed)")
    p.add_argument("--threads", type=int, help="--bench, --fit: torch.set_num_threads")
    p.add_argument("--lr", type=float, default=1.5e-3, help="--fit: peak learning rate")
    p.add_argument("--attention", choices=("explicit", "sdpa"), default="sdpa",
                   help="--bench: attention kernel (parity and --check-ref use explicit)")
    p.add_argument("--warmup", type=int, default=3, help="--bench: steps excluded")
    p.add_argument("--steps", type=int, default=20, help="--bench: timed steps")
    args = p.parse_args()
    run_mode(args, (("check_ref", check_ref), ("make_inputs", make_inputs),
                    ("baseline", baseline), ("bench", bench), ("fit", fit)), parity)


if __name__ == "__main__":
    main()
