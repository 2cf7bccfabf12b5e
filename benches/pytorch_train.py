"""Training throughput of PyTorch on the CPU for coptim's default models.

Times forward + backward + optimizer step (torch AdamW, and timm's cadamw) of the
models `coptim compare` trains by default, batch 128 of 28x28 single-channel images:
  - MLP 784-256-10 with ReLU;
  - ViT: patch 14, width 64, 2 pre-norm blocks of 4 heads, MLP ratio 2, class token
    (timm VisionTransformer with the same sizes).
Prints one JSON document with samples per second (median over timed steps).

    /opt/torchenv/bin/python benches/pytorch_train.py [--threads 2] [--steps 30]
"""

import argparse
import json
import statistics
import time

import torch
from timm.models.vision_transformer import VisionTransformer
from timm.optim import create_optimizer_v2


def models():
    mlp = torch.nn.Sequential(
        torch.nn.Flatten(), torch.nn.Linear(784, 256), torch.nn.ReLU(), torch.nn.Linear(256, 10)
    )
    vit = VisionTransformer(
        img_size=28, patch_size=14, in_chans=1, num_classes=10, embed_dim=64, depth=2,
        num_heads=4, mlp_ratio=2.0, class_token=True, global_pool="token",
    )
    return {"mlp": mlp, "vit": vit}


def time_model(model, opt_name, batch, steps, warmup):
    x = torch.randn(batch, 1, 28, 28)
    y = torch.randint(0, 10, (batch,))
    opt = create_optimizer_v2(model, opt=opt_name, lr=1e-3, weight_decay=0.01)
    loss_fn = torch.nn.CrossEntropyLoss()
    times = []
    for i in range(warmup + steps):
        t0 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(model(x), y)
        loss.backward()
        opt.step()
        dt = time.perf_counter() - t0
        if i >= warmup:
            times.append(dt)
    med = statistics.median(times)
    return {"step_ms": med * 1e3, "samples_per_s": batch / med}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--batch", type=int, default=128)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    results = []
    for name, model in models().items():
        for opt_name in ("adamw", "cadamw"):
            r = time_model(model, opt_name, args.batch, args.steps, args.warmup)
            results.append({"model": name, "optimizer": opt_name, "batch": args.batch, **r})
    print(json.dumps({"torch": torch.__version__, "threads": args.threads, "results": results}, indent=1))


if __name__ == "__main__":
    main()
