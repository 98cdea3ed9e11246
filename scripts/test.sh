#!/usr/bin/env bash
# Builds fovea (scripts/build.sh) and runs every test except the real-data ones (label slow).
# On a machine without a GPU the tests labelled gpu skip, each saying why.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/build.sh "$@"
ctest --test-dir build -LE slow --output-on-failure -j"$(nproc)"
