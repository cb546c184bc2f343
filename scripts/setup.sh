#!/usr/bin/env bash
# Installs what building and testing wsdissect needs on a fresh Debian machine that has only
# the Rust toolchain. Idempotent: does nothing when everything is already there.
# `scripts/setup.sh --bench` also installs what bench/run.sh compares against and measures
# with: tshark, tcpdump and GNU time.
set -euo pipefail

need_apt=()
# libpcap for live capture (`--features live`); python3 runs the benchmark capture generator
# used by the ground-truth tests.
dpkg -s libpcap-dev >/dev/null 2>&1 || need_apt+=(libpcap-dev)
command -v python3 >/dev/null 2>&1 || need_apt+=(python3)
# A C++ compiler: libfuzzer-sys compiles libFuzzer when CI checks the fuzz crate (fuzz/).
command -v c++ >/dev/null 2>&1 || need_apt+=(g++)
# cmake: libz-ng-sys builds zlib-ng, the inflater behind flate2 (Cargo.toml).
command -v cmake >/dev/null 2>&1 || need_apt+=(cmake)
# Node.js runs the real peers of the live-capture tests over TLS (testdata/gen/node_wss.js).
command -v npm >/dev/null 2>&1 || need_apt+=(nodejs npm)
if [ "${1:-}" = --bench ]; then
    command -v tshark >/dev/null 2>&1 || need_apt+=(tshark)
    command -v tcpdump >/dev/null 2>&1 || need_apt+=(tcpdump)
    [ -x /usr/bin/time ] || need_apt+=(time)
fi

if [ "$(id -u)" -ne 0 ]; then
    SUDO=sudo
else
    SUDO=
fi
apt_install() {
    echo "setup: installing $*" >&2
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "$@" >/dev/null
}

if [ ${#need_apt[@]} -gt 0 ]; then
    apt_install "${need_apt[@]}"
fi

# Python `websockets` (13 or later, for its asyncio API): the real peers of the live-capture
# test (tests/live.rs). Debian's python3-websockets is older, so it comes from pip.
if ! python3 -c 'import websockets.asyncio.server' >/dev/null 2>&1; then
    python3 -m pip --version >/dev/null 2>&1 || apt_install python3-pip
    echo "setup: installing Python websockets with pip" >&2
    python3 -m pip install --quiet 'websockets>=13' 2>/dev/null ||
        python3 -m pip install --quiet --break-system-packages 'websockets>=13'
fi

# The Node peers' packages, pinned by testdata/gen/package-lock.json.
if [ ! -d "$(dirname "$0")/../testdata/gen/node_modules/ws" ]; then
    echo "setup: installing the Node test peers' packages (npm ci)" >&2
    (cd "$(dirname "$0")/../testdata/gen" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
fi

if command -v rustup >/dev/null 2>&1; then
    for c in rustfmt clippy; do
        rustup component list --installed 2>/dev/null | grep -q "^$c" || rustup component add "$c"
    done
fi
