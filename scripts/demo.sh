#!/usr/bin/env bash
# The README's first command: install, build, then a real (short) pretraining run on the bundled
# Shakespeare corpus with two MPI ranks on the CPU.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/build.sh

corpus=data/shakespeare
if [ ! -f "$corpus/index.json" ]; then
  build/bin/t6_preprocess --input data_tools/corpora/tinyshakespeare.jsonl --output "$corpus" --val-fraction 0.1 --overwrite
fi
# Open MPI refuses to run as root unless told that it is intended (containers, CI).
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
mpirun -np 2 --oversubscribe build/bin/t6_pretrain --config configs/t6-demo.toml --run-dir runs/demo "$@"
# The curves of the run (train and validation loss, LR, throughput) as a picture.
build/bin/t6_plot runs/demo --out runs/demo/curves.png
