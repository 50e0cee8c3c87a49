#!/usr/bin/env bash
# The README's test command: install, build, run the whole suite. .ci/run runs exactly this.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/build.sh
ctest --test-dir build --output-on-failure
