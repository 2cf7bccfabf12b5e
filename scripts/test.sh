#!/usr/bin/env bash
# The full test suite, as CI runs it: installs what is missing, then formatting,
# lints, the wasm32 build, Windows (DX12) and macOS (Metal) compile checks, and
# every test on lavapipe.
source "$(dirname "$0")/env.sh"
ensure_vulkan
ensure_rust_component rustfmt
ensure_rust_component clippy
ensure_rust_target wasm32-unknown-unknown
cd "$ROOT"

step() { echo; echo "==> $*"; }

step "cargo fmt --check"
cargo fmt --check

step "cargo clippy --all-targets -- -D warnings"
cargo clippy --all-targets -- -D warnings

step "wasm32 build of the library"
cargo build --lib --target wasm32-unknown-unknown --no-default-features

for target in x86_64-pc-windows-msvc aarch64-apple-darwin; do
    if rustup target add "$target" >/dev/null 2>&1; then
        step "cargo check --lib --target $target"
        cargo check --lib --target "$target"
    else
        echo "(rustup cannot add $target here: skipped)"
    fi
done

step "cargo test (lavapipe)"
cargo test --all-targets
cargo test --doc
