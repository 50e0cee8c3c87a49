#!/usr/bin/env bash
# The README's test command: install, build, run the whole suite. .ci/run runs exactly this.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/build.sh
ctest --test-dir build --output-on-failure
# The CUDA backend on the emulated GPU (src/cuda_emu): the same .cu sources built by the host
# compiler, and every gpu-labelled test run on it, so the device path is tested without a GPU.
cmake -S . -B build-emu -DCMAKE_BUILD_TYPE=Release -DT6_CUDA_EMU=ON
cmake --build build-emu -j"$(nproc)" --target gpu_tests
ctest --test-dir build-emu -L gpu --output-on-failure
