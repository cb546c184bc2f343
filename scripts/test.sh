#!/usr/bin/env bash
# Runs every test: unit tests next to the code and the end-to-end tests of the built binary.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
cargo test --all-targets
