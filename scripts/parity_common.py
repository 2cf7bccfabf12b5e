"""What scripts/llama_torch.py and scripts/mae_torch.py share: where the parity inputs come
from, how the PyTorch losses are written, the command line every such script has, and the
benchmark's report. Imported by those scripts (it is not run by itself)."""

import argparse
import json
import os
import statistics
import subprocess
import sys
from importlib.metadata import version

import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def inputs_path(args, exporter, export, inputs):
    """`--inputs`, or else the file coptim's `tests/<exporter>.rs` writes to `inputs` when
    the command `export` runs it."""
    if args.inputs is not None:
        return args.inputs
    if not os.path.exists(os.path.join(ROOT, "tests", f"{exporter}.rs")):
        sys.exit(f"tests/{exporter}.rs (coptim's exporter) does not exist yet; "
                 "pass --inputs PATH (e.g. a --make-inputs self-test file)")
    subprocess.run(export, cwd=ROOT, check=True)
    return inputs


def write_result(result, config, out, selftest_out):
    """Adds the library versions to `result` and writes it as JSON: to `out` for coptim's
    inputs, to `selftest_out` for self-test ones."""
    result["versions"] = {"torch": torch.__version__, "timm": version("timm"),
                          "python": sys.version.split()[0]}
    path = out if config.get("source") == "coptim" else selftest_out
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        json.dump(result, f, indent=1)
        f.write("\n")
    print(f"wrote {path}")


def rel_err(ours, theirs):
    """max |ours - theirs| / max |theirs|."""
    return float((ours - theirs).abs().max() / theirs.abs().max())


def parser(doc, selftest_inputs):
    """The command line with `--inputs` and `--out`, and the group its modes join."""
    p = argparse.ArgumentParser(description=doc.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    mode = p.add_mutually_exclusive_group()
    p.add_argument("--inputs", help="parity: read this file instead of exporting from coptim")
    p.add_argument("--out", default=selftest_inputs, help="--make-inputs: where to write")
    return p, mode


def print_step_times(times, warmup, per_step, unit):
    """Prints the median wall and process-CPU time of the (wall, cpu) `times` after the
    first `warmup`, as `unit`s (`per_step` of them a step) per second."""
    wall = sorted(t for t, _ in times[warmup:])
    cpu = statistics.median(c for _, c in times[warmup:])
    print(f"wall: {statistics.median(wall) * 1e3:.1f} ms/step = "
          f"{per_step / statistics.median(wall):.0f} {unit}/s "
          f"(slowest {per_step / wall[-1]:.0f}, fastest {per_step / wall[0]:.0f})")
    print(f"process CPU time: {cpu * 1e3:.1f} ms/step = {per_step / cpu:.0f} {unit} per "
          f"CPU-second (all threads summed; less sensitive to a shared machine)")


def run_mode(args, modes, default):
    """Runs the first of `modes` ((option attribute, function) pairs) whose option is set
    on `args`, else `default` (parity)."""
    for option, run in modes:
        if getattr(args, option):
            return run(args)
    return default(args)
