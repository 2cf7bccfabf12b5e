#!/usr/bin/env bash
# The GPU kit: checks and benchmarks for a machine with no Rust toolchain and no
# network, run from a copy of this repository's root.
#
#   scripts/device-check.sh prepare   # here: gathers everything into device-kit/
#   scripts/device-check.sh run       # there (or here, on lavapipe): one JSON file
#
# prepare: the release `coptim` binary, the (stripped) test executables of the kernel
#   correctness tests (optimizers and nn kernels against the f64 reference, optimizers
#   against PyTorch's golden vectors), and Debian's Vulkan loader package. Under 64 MiB.
# run: unpacks the loader (LD_LIBRARY_PATH), runs those tests, `coptim bench --json`,
#   `coptim bench --json --optimizers all` (every member of the registry, plain and
#   cautious, f32 state, at 16M and 64M parameters), `coptim bench --nn --json` and,
#   where Python has torch and timm, benches/pytorch_train.py and
#   benches/pytorch_step.py (torch's foreach and fused AdamW, and timm's plain and
#   cautious optimizer of every member the bench above ran, at the same sizes);
#   writes $OUT/device-check.json (OUT defaults to device-kit/out), whose
#   `side_by_side` lists, per member, caution and size, coptim's step next to
#   PyTorch's. Each step's own output goes to $KIT/steps/ and, after every step, into
#   the one archive $OUT/steps.tar.gz (so that a run stopped early still brings its
#   finished steps back in two files). Every step has a timeout; their sum (10.5
#   minutes) bounds the run.
# collect: (re)assembles $OUT/device-check.json from the step outputs in $STEPS
#   (default $KIT/steps; point it at an unpacked steps.tar.gz).
set -euo pipefail

KIT=${KIT:-device-kit}
# The kernel correctness tests carried in the kit.
TESTS=(optim_reference golden nn_gradcheck nn_matmul_variants)
MAX_KIT_BYTES=$((64 * 1024 * 1024))

prepare() {
    rm -rf "$KIT"
    mkdir -p "$KIT/tests"
    cargo build --release --bin coptim
    cp target/release/coptim "$KIT/coptim"
    local args=()
    for t in "${TESTS[@]}"; do args+=(--test "$t"); done
    cargo test --release --no-run --message-format=json "${args[@]}" |
        python3 -c '
import json, sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m.get("executable") and m["target"]["kind"] == ["test"]:
        print(m["target"]["name"], m["executable"])
' | while read -r name exe; do cp "$exe" "$KIT/tests/$name"; done
    strip "$KIT/coptim" "$KIT"/tests/*
    (cd "$KIT" && apt-get download libvulkan1 >/dev/null)
    local bytes
    bytes=$(du -sb "$KIT" | cut -f1)
    if ((bytes > MAX_KIT_BYTES)); then
        echo "device kit is $bytes bytes, over the 64 MiB limit" >&2
        exit 1
    fi
    ls -l "$KIT" "$KIT/tests"
    echo "device kit: $bytes bytes in $KIT"
}

# Unpacks the Vulkan loader package into $KIT/vulkan and puts it on the library path.
unpack_loader() {
    local deb
    deb=$(ls "$KIT"/libvulkan1_*.deb)
    rm -rf "$KIT/vulkan"
    mkdir -p "$KIT/vulkan"
    if command -v dpkg-deb >/dev/null; then
        dpkg-deb -x "$deb" "$KIT/vulkan"
    else
        (cd "$KIT/vulkan" && ar x "../$(basename "$deb")" && tar xf data.tar.*)
    fi
    local lib
    lib=$(dirname "$(find "$KIT/vulkan" -name 'libvulkan.so.1' | head -n 1)")
    export LD_LIBRARY_PATH="$PWD/$lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
    # NVIDIA's container images keep the driver's manifest outside the loader's search path.
    local nvidia_icd=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
    if [ -f "$nvidia_icd" ] && [ -z "${VK_DRIVER_FILES:-}" ]; then
        export VK_DRIVER_FILES=$nvidia_icd VK_ICD_FILENAMES=$nvidia_icd
    fi
}

# step NAME SECONDS COMMAND...: runs COMMAND with a timeout, stdout to $STEPS/NAME.out
# and stderr to $STEPS/NAME.err, appends a line "NAME rc milliseconds" to
# $STEPS/steps, and refreshes $OUT/steps.tar.gz.
step() {
    local name=$1 limit=$2
    shift 2
    local start rc=0
    start=$(date +%s%N)
    timeout --kill-after=5 "$limit" "$@" >"$STEPS/$name.out" 2>"$STEPS/$name.err" || rc=$?
    echo "$name $rc $((($(date +%s%N) - start) / 1000000))" >>"$STEPS/steps"
    tar czf "$OUT/steps.tar.gz" -C "$STEPS" .
    echo "$name: exit $rc"
}

run() {
    OUT=${OUT:-$KIT/out}
    STEPS=${STEPS:-$KIT/steps}
    rm -rf "$STEPS"
    mkdir -p "$OUT" "$STEPS"
    : >"$STEPS/steps"
    export NODEVICE_SELECT=1
    unpack_loader
    step info 30 "$KIT/coptim" info
    for t in "${TESTS[@]}"; do
        step "test_$t" 45 "$KIT/tests/$t" --test-threads 2
    done
    local bench_args=(--steps 10 --warmup 2)
    # The sizes of the family's speed targets; on a CPU adapter (lavapipe) 64K, the
    # size --quick runs.
    local member_sizes=16M,64M torch_device=cuda
    if grep -q "(Cpu)" "$STEPS/info.out"; then
        bench_args=(--quick)
        member_sizes=64K
        torch_device=cpu
    fi
    step bench 75 "$KIT/coptim" bench --json "${bench_args[@]}"
    step bench_members 90 "$KIT/coptim" bench --json --optimizers all --state-dtype f32 \
        --no-copy-sweep --params "$member_sizes" "${bench_args[@]}"
    step bench_nn 90 "$KIT/coptim" bench --nn --json
    if python3 -c 'import torch, timm' 2>/dev/null; then
        step pytorch 45 python3 benches/pytorch_train.py --threads "$(nproc)" --steps 10
        step pytorch_step 120 python3 benches/pytorch_step.py --device "$torch_device" \
            --params "$member_sizes" --impl torch-foreach,torch-fused \
            --members-from "$STEPS/bench_members.out"
    fi
    uptime >"$STEPS/uptime.out"
    tar czf "$OUT/steps.tar.gz" -C "$STEPS" .
    collect
    echo "wrote $OUT/device-check.json"
}

# Gathers every step's outcome into $OUT/device-check.json: parsed JSON for the
# benchmarks, the output tail for the rest.
collect() {
    python3 - "$STEPS" "$OUT" <<'PY'
import json, pathlib, sys
steps, out = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
def text(name, ext):
    p = steps / f"{name}.{ext}"
    return p.read_text(errors="replace") if p.exists() else ""
doc = {"uptime": text("uptime", "out").strip(), "steps": {}}
for line in (steps / "steps").read_text().splitlines():
    name, rc, ms = line.split()
    entry = {"exit": int(rc), "seconds": int(ms) / 1000}
    stdout = text(name, "out")
    try:
        entry["json"] = json.loads(stdout)
    except ValueError:
        entry["stdout_tail"] = stdout[-4000:]
    entry["stderr_tail"] = text(name, "err")[-2000:]
    doc["steps"][name] = entry
doc["passed"] = all(s["exit"] == 0 for s in doc["steps"].values())
def results(name):
    return doc["steps"].get(name, {}).get("json", {}).get("results", [])
# coptim's step of every member next to PyTorch's implementations of it (joined on
# member name, caution and parameter count; coptim's fastest stream shape).
rows = {}
for r in results("bench_members"):
    key = (r["optimizer"], r["caution"], r["params"])
    best = rows.get(key)
    if best is None or r["step_ms"] < best["coptim"]["step_ms"]:
        rows[key] = {"optimizer": r["optimizer"], "caution": r["caution"], "params": r["params"],
                     "coptim": {k: r[k] for k in ("step_ms", "gbps", "fraction_of_copy",
                                                  "bytes_per_step", "stream_shape")},
                     "pytorch": {}}
for r in results("pytorch_step"):
    row = rows.get((r["optimizer"], r["caution"], r["params"]))
    if row is not None:
        row["pytorch"][r["implementation"]] = {
            k: r[k] for k in ("step_ms", "gbps", "fraction_of_copy", "bytes_per_step")}
        row["pytorch"][r["implementation"]]["coptim_speedup"] = r["step_ms"] / row["coptim"]["step_ms"]
doc["side_by_side"] = sorted(rows.values(), key=lambda r: (r["optimizer"], r["params"], r["caution"]))
(out / "device-check.json").write_text(json.dumps(doc, indent=1))
PY
}

case "${1:-}" in
prepare) prepare ;;
run) run ;;
collect)
    OUT=${OUT:-$KIT/out}
    STEPS=${STEPS:-$KIT/steps}
    collect
    ;;
*)
    echo "usage: $0 prepare|run|collect" >&2
    exit 2
    ;;
esac
