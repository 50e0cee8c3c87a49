#!/usr/bin/env bash
# Installs dependencies, then configures and builds t6 (Release) into build/: every target (the
# library, the tools, the tests and the benches), or only the targets named.
#   bash scripts/build.sh                  everything, with the CUDA backend where nvcc is (scripts/test.sh)
#   bash scripts/build.sh demo_tools       the tools the demo runs and what they need (scripts/demo.sh)
# A build of named targets in a fresh build/ on a machine where no GPU is visible leaves the CUDA
# backend out (T6_CUDA=OFF): nvcc compiling every kernel for a GPU that is not there took minutes
# before the demo's first step. The full build turns T6_CUDA back to its default (ON where nvcc
# is), so the tests always build and run every backend; a build/ configured already keeps its
# setting for named targets.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install_deps.sh
cuda_setting=()
if (($# == 0)); then
  cuda_setting=(-UT6_CUDA)
elif [ ! -f build/CMakeCache.txt ] && ! nvidia-smi -L 2> /dev/null | grep -q '^GPU'; then
  echo "build.sh: no GPU visible: building $* without the CUDA backend (scripts/test.sh builds everything)"
  cuda_setting=(-DT6_CUDA=OFF)
fi
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release "${cuda_setting[@]}"
targets=()
for target in "$@"; do targets+=(--target "$target"); done
cmake --build build -j"$(nproc)" "${targets[@]}"
