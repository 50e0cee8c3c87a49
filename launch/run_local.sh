#!/usr/bin/env bash
# One node: one rank per GPU (or NPROC ranks on the CPU). Each rank knows its node-local rank
# (ProcessGrid::local_rank), which picks its GPU once the CUDA backend lands; until then every rank
# runs the CPU backend.
#   launch/run_local.sh configs/t6-small.toml runs/small [--set key=value ...]
# NPROC defaults to the number of GPUs nvidia-smi sees, or 2 without GPUs.
# SIGTERM, SIGINT or SIGUSR1 to this script (kill, Ctrl-C, a scheduler) makes every rank finish its
# step, save a checkpoint and exit 0, and this script exits 0 (launch/README.md, "Stopping a run").
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
# When a rank dies or fails, Open MPI 4's mpirun ends the others with SIGCONT, then SIGTERM and
# SIGKILL each odls_base_sigkill_timeout seconds later, and cannot exit before both waits are over,
# whatever the ranks do: a long timeout would hold every failed job that long (2 × 300 s for the
# 300 s once suggested). A stop never needs it: it reaches the ranks as SIGUSR1 (below), which
# mpirun forwards without ending anything. So keep Open MPI's 1 s, even if the caller set more.
export OMPI_MCA_odls_base_sigkill_timeout=1
# --bind-to none: each rank sets its own OpenMP/BLAS thread count (cores / ranks on the node).
# mpirun runs in its own session, so a signal to this script's process group reaches it only as
# the SIGUSR1 sent below: mpirun forwards SIGUSR1 and keeps waiting for the ranks, which stop
# cleanly, so it exits 0 (a SIGTERM to mpirun itself makes it exit 1 even when every rank exits 0).
setsid mpirun -np "$NPROC" --bind-to none --map-by slot \
  "$here/build/bin/t6_pretrain" --config "$config" --run-dir "$run_dir" "$@" &
launcher=$!
trap 'kill -USR1 "$launcher" 2>/dev/null || true' TERM INT USR1
# wait returns early when a trapped signal arrives; wait again for mpirun's own exit code.
status=0
while :; do
  wait "$launcher" && status=0 || status=$?
  kill -0 "$launcher" 2>/dev/null || break
done
exit "$status"
