#!/usr/bin/env bash
# One node: one rank per GPU (or NPROC ranks on the CPU). Each rank knows its node-local rank
# (ProcessGrid::local_rank), which picks its GPU once the CUDA backend lands; until then every rank
# runs the CPU backend.
#   launch/run_local.sh configs/t6-small.toml runs/small [--set key=value ...]
# NPROC defaults to the number of GPUs nvidia-smi sees, or 2 without GPUs.
set -euo pipefail
config=${1:?usage: run_local.sh CONFIG RUN_DIR [t6_pretrain options]}
run_dir=${2:?usage: run_local.sh CONFIG RUN_DIR [t6_pretrain options]}
shift 2
here=$(cd "$(dirname "$0")/.." && pwd)
if [ -z "${NPROC:-}" ]; then
  NPROC=$(nvidia-smi -L 2>/dev/null | grep -c '^GPU' || true)
  [ "$NPROC" -gt 0 ] || NPROC=2
fi
[ "$(id -u)" -ne 0 ] || export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
# --bind-to none: each rank sets its own OpenMP/BLAS thread count (cores / ranks on the node).
exec mpirun -np "$NPROC" --bind-to none --map-by slot \
  "$here/build/bin/t6_pretrain" --config "$config" --run-dir "$run_dir" "$@"
