#!/usr/bin/env bash
# The main job: installs what is missing, then runs coptim on the bundled data.
# Extra arguments go to `coptim` (default: the AdamW vs C-AdamW comparison).
source "$(dirname "$0")/env.sh"
ensure_vulkan
cd "$ROOT"
if [ "$#" -eq 0 ]; then
    set -- compare --out out/compare
fi
exec cargo run --release --quiet -- "$@"
