#!/usr/bin/env bash
# The full test suite, as CI runs it: installs what is missing (lavapipe, Rust
# components and the wasm target, node/npm and Chromium), then formatting, lints, docs
# (native, the lean core without default features, and wasm32), Windows (DX12) and macOS (Metal) compile checks, every Rust
# test on lavapipe, and the browser demo's end-to-end tests in headless Chromium.
source "$(dirname "$0")/env.sh"
ensure_vulkan
ensure_rust_component rustfmt
ensure_rust_component clippy
ensure_rust_target wasm32-unknown-unknown
ensure_browser_tools
cd "$ROOT"

step() { echo; echo "==> $*"; }

step "cargo fmt --check"
cargo fmt --check

step "cargo clippy --all-targets -- -D warnings"
cargo clippy --all-targets -- -D warnings

step "cargo doc --no-deps (warnings are errors)"
RUSTDOCFLAGS="-D warnings" cargo doc --no-deps

step "lean core (no default features): clippy natively and for wasm32"
cargo clippy --all-targets --no-default-features -- -D warnings
cargo clippy --lib --target wasm32-unknown-unknown --no-default-features -- -D warnings

step "wasm32 with the browser bindings (feature web): clippy and build"
cargo clippy --lib --target wasm32-unknown-unknown --no-default-features --features web -- -D warnings
cargo build --lib --target wasm32-unknown-unknown --no-default-features --features web

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

# The browser demo: Debian's chromium driven by npm's playwright-core (no browser
# download); WebGPU runs on Chromium's bundled SwiftShader. See tests/web/ and
# scripts/web.sh (which installs the pinned wasm-bindgen-cli when missing).
step "npm ci (playwright-core, binaryen)"
npm ci --no-audit --no-fund

step "build the browser demo (scripts/web.sh --build-only)"
bash scripts/web.sh --build-only

step "browser end-to-end tests (node --test tests/web/: demo, embed, llama, mae, no-webgpu)"
node --test --test-concurrency=1 tests/web/
