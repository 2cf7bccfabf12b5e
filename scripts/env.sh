# Shared by scripts/run.sh and scripts/test.sh: idempotent installers for what a
# fresh Debian/Ubuntu machine with only Rust lacks. Source it; do not run it.

set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export NODEVICE_SELECT=1

# Runs a command as root (directly, or through sudo when available).
as_root() {
    if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

APT_UPDATED=0
apt_install() {
    if [ "$APT_UPDATED" -eq 0 ]; then
        as_root apt-get -o DPkg::Lock::Timeout=300 update -qq
        APT_UPDATED=1
    fi
    as_root env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 install -y -qq "$@"
}

# A Vulkan loader and Mesa's lavapipe (Vulkan on the CPU) when no Vulkan driver exists.
ensure_vulkan() {
    if ldconfig -p | grep -q 'libvulkan.so.1' && ls /usr/share/vulkan/icd.d/*.json >/dev/null 2>&1; then
        return
    fi
    echo "==> installing the Vulkan loader and Mesa lavapipe"
    apt_install libvulkan1 mesa-vulkan-drivers
}

ensure_rust_target() {
    if ! rustup target list --installed | grep -qx "$1"; then
        echo "==> rustup target add $1"
        rustup target add "$1"
    fi
}

ensure_rust_component() {
    if ! rustup component list --installed | grep -q "^$1"; then
        echo "==> rustup component add $1"
        rustup component add "$1"
    fi
}

# node/npm and Debian's Chromium for the browser tests.
ensure_browser_tools() {
    if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
        echo "==> installing node and npm"
        apt_install nodejs npm
    fi
    if ! command -v chromium >/dev/null; then
        echo "==> installing chromium"
        apt_install chromium
    fi
}
