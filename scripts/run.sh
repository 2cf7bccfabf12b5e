#!/usr/bin/env bash
# The main job: installs what is missing, then runs coptim on the bundled data.
# Extra arguments go to `coptim` (default: the AdamW vs C-AdamW comparison).
source "$(dirname "$0")/env.sh"
ensure_vulkan
cd "$ROOT"
if [ "$#" -eq 0 ]; then
    cargo run --release --quiet -- info
    exec cargo run --release --quiet -- bench --quick
fi
exec cargo run --release --quiet -- "$@"
