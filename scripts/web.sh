#!/usr/bin/env bash
# Builds the browser demo and serves it:
#   1. the library for wasm32-unknown-unknown in release, with only the `web`
#      feature (the bindings and the layers under them; no CLI);
#   2. wasm-bindgen (the CLI version pinned by Cargo.lock, installed when missing);
#   3. wasm-opt -Os from npm's binaryen when node_modules has it (never Debian's:
#      it corrupts wasm-bindgen output, see ENVIRONMENT.md);
#   4. copies the bundled MNIST files and Shakespeare texts next to the page;
#   5. serves web/ on http://127.0.0.1:PORT and prints the URL.
#
#   bash scripts/web.sh [--build-only] [--no-opt] [--port N]
#
# Output goes to web/pkg/ (gitignored).
source "$(dirname "$0")/env.sh"
cd "$ROOT"

BUILD_ONLY=0
OPTIMIZE=1
PORT="${PORT:-8000}"
while [ $# -gt 0 ]; do
    case "$1" in
        --build-only) BUILD_ONLY=1 ;;
        --no-opt) OPTIMIZE=0 ;;
        --port) PORT="$2"; shift ;;
        -h|--help) sed -n '2,13p' "$0"; exit 0 ;;
        *) echo "unknown argument: $1 (try --help)" >&2; exit 2 ;;
    esac
    shift
done

ensure_rust_target wasm32-unknown-unknown

# The wasm-bindgen CLI must match the wasm-bindgen crate in Cargo.lock exactly.
WB_VERSION="$(awk '/^name = "wasm-bindgen"$/ { getline; gsub(/[^0-9.]/, ""); print; exit }' Cargo.lock)"
if [ "$(wasm-bindgen --version 2>/dev/null | awk '{print $2}')" != "$WB_VERSION" ]; then
    echo "==> cargo install wasm-bindgen-cli --version $WB_VERSION (a few minutes, once)"
    # No --locked: one of its locked dependencies is missing from the registry here.
    cargo install wasm-bindgen-cli --version "$WB_VERSION" --force
fi

echo "==> cargo build (release, wasm32-unknown-unknown, features: web)"
cargo rustc --lib --release --target wasm32-unknown-unknown --no-default-features \
    --features web --crate-type cdylib

PKG="$ROOT/web/pkg"
rm -rf "$PKG"
mkdir -p "$PKG"
echo "==> wasm-bindgen $WB_VERSION -> web/pkg/"
wasm-bindgen --target web --no-typescript --out-dir "$PKG" \
    "$ROOT/target/wasm32-unknown-unknown/release/coptim.wasm"

WASM="$PKG/coptim_bg.wasm"
WASM_OPT="$ROOT/node_modules/.bin/wasm-opt"
if [ "$OPTIMIZE" -eq 1 ] && [ -x "$WASM_OPT" ]; then
    echo "==> wasm-opt -Os (npm binaryen $("$WASM_OPT" --version | awk '{print $3}'))"
    "$WASM_OPT" -Os --enable-bulk-memory --enable-nontrapping-float-to-int \
        --enable-sign-ext --enable-mutable-globals --enable-reference-types \
        --enable-multivalue "$WASM" -o "$WASM.opt"
    mv "$WASM.opt" "$WASM"
elif [ "$OPTIMIZE" -eq 1 ]; then
    echo "(node_modules/.bin/wasm-opt not found: run 'npm ci' to shrink the wasm; skipped)"
fi

mkdir -p "$PKG/mnist"
cp data/mnist/*.gz data/mnist/README.md "$PKG/mnist/"
mkdir -p "$PKG/shakespeare"
cp data/shakespeare/train.txt data/shakespeare/validation.txt data/shakespeare/README.md "$PKG/shakespeare/"
echo "==> web/pkg/coptim_bg.wasm: $(stat -c %s "$WASM") bytes ($(gzip -9c "$WASM" | wc -c) gzipped)"

if [ "$BUILD_ONLY" -eq 1 ]; then
    exit 0
fi
exec node scripts/serve.mjs web "$PORT"
