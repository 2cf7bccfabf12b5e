#!/usr/bin/env python3
"""PyTorch parity for coptim's training loop (issue 4, part 6).

How to run (from the repository root):

    python3 scripts/parity.py

It (1) runs `cargo test --test train_parity -- --ignored export_parity_inputs`,
which writes target/parity/inputs.safetensors: coptim's initial weights of a 784-64-10
ReLU MLP (PyTorch state-dict names), the 20 standardized batches of 32 digits coptim
trains on, and each step's learning rate (warm-up + cosine); (2) trains the same MLP in
PyTorch, on CPU in float32, from those weights on those batches, once with
torch.optim.AdamW and once with timm's cadamw (AdamWLegacy(caution=True), what
timm.optim.create_optimizer_v2(opt="cadamw") builds, here without its
no-decay-for-biases filter, as coptim applies one weight decay to every tensor);
(3) writes tests/parity/losses.json: the loss before each step's update, for both,
with the per-tensor sums of the initial weights (so the test notices if coptim's
initialization changes) and the versions used. tests/train_parity.rs checks coptim's
losses against it.
"""

import json
import os
import subprocess
import sys
from importlib.metadata import version

import torch
from safetensors import safe_open
from timm.optim.adamw import AdamWLegacy

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
INPUTS = os.path.join(ROOT, "target", "parity", "inputs.safetensors")
OUT = os.path.join(ROOT, "tests", "parity", "losses.json")


class Mlp(torch.nn.Module):
    def __init__(self, hidden):
        super().__init__()
        self.fc1 = torch.nn.Linear(784, hidden)
        self.fc2 = torch.nn.Linear(hidden, 10)

    def forward(self, x):
        return self.fc2(torch.relu(self.fc1(x)))


def train(make_optimizer, init, images, labels, lrs):
    model = Mlp(init["fc1.weight"].shape[0])
    model.load_state_dict(init)
    opt = make_optimizer(model.parameters())
    losses = []
    for step in range(images.shape[0]):
        for group in opt.param_groups:
            group["lr"] = float(lrs[step])
        loss = torch.nn.functional.cross_entropy(model(images[step]), labels[step])
        losses.append(loss.item())
        opt.zero_grad()
        loss.backward()
        opt.step()
    return losses


def main():
    subprocess.run(
        ["cargo", "test", "--test", "train_parity", "--", "--ignored",
         "export_parity_inputs"],
        cwd=ROOT, check=True)
    with safe_open(INPUTS, "pt") as f:
        config = json.loads(f.metadata()["config"])
        init = {k[len("param."):]: f.get_tensor(k) for k in f.keys() if k.startswith("param.")}
        images, labels, lrs = f.get_tensor("images"), f.get_tensor("labels"), f.get_tensor("lr")
    torch.set_num_threads(1)
    wd = config["weight_decay"]
    common = dict(lr=config["lr"], betas=(0.9, 0.999), eps=1e-8, weight_decay=wd)
    result = {
        "description": "loss before each step's update; see scripts/parity.py",
        "config": config,
        "init_sums": {k: float(t.double().sum()) for k, t in init.items()},
        "adamw": train(lambda ps: torch.optim.AdamW(ps, foreach=False, **common),
                       init, images, labels, lrs),
        "cadamw": train(lambda ps: AdamWLegacy(ps, caution=True, foreach=False, **common),
                        init, images, labels, lrs),
        "versions": {"torch": torch.__version__, "timm": version("timm"),
                     "python": sys.version.split()[0]},
    }
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    with open(OUT, "w") as f:
        json.dump(result, f, indent=1)
        f.write("\n")
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
