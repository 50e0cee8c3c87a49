#!/usr/bin/env bash
# Installs dependencies, then configures and builds t6 (Release) into build/: every target (the
# library, the tools, the tests and the benches), or only the targets named.
#   bash scripts/build.sh                         everything (scripts/test.sh)
#   bash scripts/build.sh t6_pretrain t6_eval     those tools and what they need (scripts/demo.sh)
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install_deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release
targets=()
for target in "$@"; do targets+=(--target "$target"); done
cmake --build build -j"$(nproc)" "${targets[@]}"
