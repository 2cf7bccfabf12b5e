#!/usr/bin/env python3
"""Turns one GPU session's raw outputs into the Markdown tables of BENCHMARKS.md.

    python3 scripts/gpu_report.py benches/results/h200-2026-11-30

The directory holds what the device machine brought back:
  device-check.json   `scripts/device-check.sh run` (kernel tests, `bench`, `bench --nn`,
                      PyTorch's training throughput);
  members50.json      `coptim bench --json --optimizers all --state-dtype f32
                      --params 16M,64M --steps 50 --warmup 10`;
  torch50.json        `benches/pytorch_step.py --device cuda --params 16M,64M --steps 50
                      --warmup 10 --members-from members50.json --impl torch-foreach,torch-fused`;
  adamw_nocheck.json  `coptim bench --json --optimizers adamw --state-dtype f32
                      --no-nonfinite-check --params 16M,64M --steps 50 --warmup 10`;
  mae.json, mlp.json  `coptim compare --model mae|mlp --json` (the defaults).
Every figure printed is read from those files; nothing is typed in.
"""

import json
import pathlib
import sys


def load(directory, name):
    return json.loads((directory / name).read_text())


def mib(params):
    return f"{round(params / (1 << 20))}M"


def torch_rows(torch_doc):
    return {(r["optimizer"], r["caution"], r["params"], r["implementation"]): r
            for r in torch_doc["results"]}


def members_table(members, torch_doc):
    """Every member, plain and cautious, beside timm's implementation of it."""
    torch_by_key = torch_rows(torch_doc)
    plain = {(r["optimizer"], r["params"]): r for r in members["results"] if not r["caution"]}
    lines = ["| member | size | coptim ms | GB/s | of copy | cautious / plain (byte floor) "
             "| timm ms | coptim faster by |", "| --- | --- | ---: | ---: | ---: | --- | ---: | ---: |"]
    for r in members["results"]:
        name = ("c-" if r["caution"] else "") + r["optimizer"]
        timm = next((t for (o, c, p, impl), t in torch_by_key.items()
                     if (o, c, p) == (r["optimizer"], r["caution"], r["params"])
                     and impl.startswith("timm-")), None)
        ratio = ""
        if r["caution"]:
            base = plain[(r["optimizer"], r["params"])]
            floor = r["bytes_per_step"] / base["bytes_per_step"]
            ratio = f"{r['step_ms'] / base['step_ms']:.3f}x ({floor:.3f}x)"
        timm_ms = f"{timm['step_ms']:.3f}" if timm else "–"
        faster = f"{timm['step_ms'] / r['step_ms']:.1f}x" if timm else "–"
        lines.append(f"| {name} | {mib(r['params'])} | {r['step_ms']:.3f} | {r['gbps']:.0f} | "
                     f"{100 * r['fraction_of_copy']:.1f}% | {ratio} | {timm_ms} | {faster} |")
    return "\n".join(lines)


def adamw_table(nocheck, torch_doc):
    """coptim's AdamW without the non-finite check (28 B/param) beside torch's AdamW."""
    torch_by_key = torch_rows(torch_doc)
    lines = ["| size | coptim AdamW ms | coptim C-AdamW ms | torch fused ms | torch foreach ms "
             "| fused / coptim AdamW |", "| --- | ---: | ---: | ---: | ---: | ---: |"]
    by = {(r["params"], r["caution"]): r for r in nocheck["results"]}
    for params in sorted({p for p, _ in by}):
        fused = torch_by_key[("adamw", False, params, "torch-fused")]["step_ms"]
        foreach = torch_by_key[("adamw", False, params, "torch-foreach")]["step_ms"]
        plain, cautious = by[(params, False)]["step_ms"], by[(params, True)]["step_ms"]
        lines.append(f"| {mib(params)} | {plain:.3f} | {cautious:.3f} | {fused:.3f} | "
                     f"{foreach:.3f} | {fused / plain:.2f}x |")
    return "\n".join(lines)


def copy_line(members, torch_doc):
    ours = ", ".join(f"{mib(c['params'])} {c['gbps']:.0f} GB/s" for c in members["copies"])
    theirs = ", ".join(f"{mib(c['params'])} {c['gbps']:.0f} GB/s" for c in torch_doc["copies"])
    return f"copy kernel (median of 50): {ours}; torch `copy_`: {theirs}"


def nn_tables(check):
    steps = check["steps"]
    nn = steps["bench_nn"]["json"]
    best = {}
    for r in nn["matmul"]:
        key = (r["label"], r["m"], r["k"], r["n"])
        if key not in best or r["gflops"] > best[key]["gflops"]:
            best[key] = r
    default = {(r["label"], r["m"], r["k"], r["n"]): r["gflops"]
               for r in nn["matmul"] if r["variant"] == nn["default_variant"]}
    lines = [f"| product (m x k x n) | default `{nn['default_variant']}` GFLOP/s | best variant "
             "| native sgemm, 1 / 16 threads |", "| --- | ---: | --- | --- |"]
    for key, r in best.items():
        lines.append(f"| {key[0]} {key[1]} x {key[2]} x {key[3]} | {default[key]:.0f} | "
                     f"{r['variant']} {r['gflops']:.0f} | {r['native_gflops']:.0f} / "
                     f"{r['native_threaded_gflops']:.0f} |")
    torch_train = {(r["model"], r["optimizer"]): r["samples_per_s"]
                   for r in steps["pytorch"]["json"]["results"]}
    lines += ["", "| model | coptim samples/s (H200) | PyTorch CPU AdamW / timm C-AdamW samples/s "
              "(16 threads) |", "| --- | ---: | --- |"]
    for m in nn["models"]:
        cpu = (f"{torch_train[(m['model'], 'adamw')]:.0f} / {torch_train[(m['model'], 'cadamw')]:.0f}"
               if (m["model"], "adamw") in torch_train else "–")
        lines.append(f"| {m['model']} | {m['samples_per_s']:.0f} | {cpu} |")
    lines += ["", "| model | optimizer | step ms | Newton-Schulz GFLOP | same products as plain "
              "matmuls, ms |", "| --- | --- | ---: | ---: | ---: |"]
    for r in nn["muon"]:
        lines.append(f"| {r['model']} | {r['optimizer']} | {r['step_ms']:.2f} | "
                     f"{r['ns_gflop']:.3f} | {r['plain_matmul_ms']:.2f} |")
    lines += ["", "| model | optimizer | step ms | state B / param |", "| --- | --- | ---: | ---: |"]
    for r in nn["adafactor"]:
        lines.append(f"| {r['model']} | {r['optimizer']} | {r['step_ms']:.2f} | "
                     f"{r['state_bytes_per_param']:.2f} |")
    return "\n".join(lines)


def training_table(directory):
    lines = ["| model | runs | steps | median step ms | samples/s | wall s per run | "
             "final train loss (median) |", "| --- | ---: | ---: | ---: | ---: | ---: | --- |"]
    for name in ("mlp", "mae"):
        doc = load(directory, f"{name}.json")
        runs = doc["runs"]
        med = sorted(r["median_step_ms"] for r in runs)[len(runs) // 2]
        sps = sorted(r["samples_per_s"] for r in runs)[len(runs) // 2]
        wall = max(r["wall_s"] for r in runs)
        loss = ", ".join(f"{o['optimizer']} {o['final_train_loss']['median']:.4f}"
                         for o in doc["optimizers"])
        lines.append(f"| {name} | {len(runs)} | {doc['steps']} | {med:.1f} | {sps:.0f} | "
                     f"{wall:.1f} | {loss} |")
    return "\n".join(lines)


def projection_table(directory):
    """C-AdamP and C-SGDP before and after the segment-pass change, alternated twice."""
    lines = ["| run | member | size | plain ms | cautious ms | cautious / plain (byte floor) |",
             "| --- | --- | --- | ---: | ---: | --- |"]
    for run in ("before_1", "after_1", "before_2", "after_2"):
        doc = load(directory, f"projection_{run}.json")
        by = {(r["optimizer"], r["caution"], r["params"]): r for r in doc["results"]}
        for (name, caution, params), plain in by.items():
            if caution or name == "adamw":
                continue
            cautious = by[(name, True, params)]
            floor = cautious["bytes_per_step"] / plain["bytes_per_step"]
            lines.append(f"| {run.replace('_', ' ')} | {name} | {mib(params)} | "
                         f"{plain['step_ms']:.3f} | {cautious['step_ms']:.3f} | "
                         f"{cautious['step_ms'] / plain['step_ms']:.3f}x ({floor:.3f}x) |")
    return "\n".join(lines)


def jobs_line(directory):
    parts = []
    for jobs in (1, 2):
        runs = load(directory, f"mae_jobs{jobs}.json")["runs"]
        steps = ", ".join(f"{r['median_step_ms']:.1f}" for r in runs)
        parts.append(f"--jobs {jobs}: median step {steps} ms")
    return "`compare --model mae --seeds 1 --steps 100`, " + "; ".join(parts)


def main():
    directory = pathlib.Path(sys.argv[1])
    check = load(directory, "device-check.json")
    members, torch_doc = load(directory, "members50.json"), load(directory, "torch50.json")
    tests = ", ".join(f"{k[5:]} {'passed' if v['exit'] == 0 else 'FAILED'}"
                      for k, v in check["steps"].items() if k.startswith("test_"))
    print(f"Adapter: {members['adapter']['name']} ({members['adapter']['backend']}); "
          f"kernel tests: {tests}.\n")
    print(copy_line(members, torch_doc) + "\n")
    print(members_table(members, torch_doc) + "\n")
    print(adamw_table(load(directory, "adamw_nocheck.json"), torch_doc) + "\n")
    print(nn_tables(check) + "\n")
    print(training_table(directory))
    if (directory / "projection_after_1.json").exists():
        print("\n" + jobs_line(directory) + "\n")
        print(projection_table(directory))


if __name__ == "__main__":
    main()
