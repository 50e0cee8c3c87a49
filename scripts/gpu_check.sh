#!/usr/bin/env bash
# One command for the GPU machine (no package access; Ubuntu 24.04, CUDA 13, Open MPI, Python 3.12 +
# PyTorch, maybe no HDF5/OpenBLAS/toml++): runs t6 from the pack that scripts/gpu_pack.sh built on
# the CPU machine (gpu_pack/t6_gpu.tar.xz, carried along) and prints one summary, within 8 minutes
# whatever happens (T6_GPU_CHECK_SECONDS, default 470 s, bounds every step together; a step that
# no longer fits is reported NOT RUN).
#   1. probe: GPU, driver, PyTorch, and which libraries come from this machine and which from the pack;
#   2. every gpu-labelled test binary natively (multi-rank ones under mpirun), plus test_backend_choice;
#   3. a 100-step t6-demo run on the CUDA backend on the bundled corpus: the loss must fall;
#   4. benchmarks, each beside its reference in the same call: t6_pretrain's step on T6-small and
#      llama_mha-small (batch 16 × 1024) against ../shared/anchors' bench_reference.py (the official
#      models under torch.compile), and bench_cuda_kernels (bf16 GEMM rate, t6 attention) against
#      PyTorch SDPA on the same shapes, and bench_decode --backend cuda (GB/s of cache read);
#   5. compute-sanitizer memcheck and racecheck on two attention shapes, when time is left.
# Logs go to $OUT (the device tool's folder) or /tmp/t6_gpu_out.
#   bash scripts/gpu_check.sh
set -u
cd "$(dirname "$0")/.."
budget=${T6_GPU_CHECK_SECONDS:-470}
out=${OUT:-/tmp/t6_gpu_out}
mkdir -p "$out"
log="$out/gpu_check.log"
summary="$out/summary.txt"
: >"$log"
: >"$summary"
work=/tmp/t6_gpu
say() { echo "$*" | tee -a "$log"; }
note() { echo "$*" | tee -a "$summary" "$log"; }
print_summary() {
  echo
  echo "================ t6 gpu_check summary ($SECONDS s) ================"
  cat "$summary"
}
trap print_summary EXIT

# step CAP COMMAND...: runs COMMAND for at most CAP seconds and never past the budget (less 15 s
# kept for the summary); its output goes to $last (read by the caller), the log and the screen (last
# lines). Returns its status, or 125 without running it when the budget has no room left.
last=/tmp/t6_gpu_last.log
step() {
  local cap=$1 left=$((budget - 15 - SECONDS))
  shift
  : >"$last"
  if ((left < 5)); then
    say "- not run (time budget spent): $*"
    return 125
  fi
  say "+ [$SECONDS s] $*"
  timeout --kill-after=5 "$((cap < left ? cap : left))" "$@" </dev/null >"$last" 2>&1
  local status=$?
  cat "$last" >>"$log"
  tail -n 20 "$last"
  return $status
}
outcome() {  # the words for a step's status
  case $1 in
    0) echo pass ;;
    124 | 137) echo "FAIL (timed out)" ;;
    125) echo "NOT RUN (time budget spent)" ;;
    *) echo "FAIL (exit $1)" ;;
  esac
}

say "== t6 gpu_check $(date -u +%FT%TZ), budget $budget s"
if [[ ! -f gpu_pack/t6_gpu.tar.xz ]]; then
  note "FAIL no gpu_pack/t6_gpu.tar.xz: run 'bash scripts/gpu_pack.sh' on the CPU machine and carry gpu_pack"
  exit 1
fi
rm -rf "$work" && mkdir -p "$work" && tar -xJf gpu_pack/t6_gpu.tar.xz -C "$work"
note "pack commit $(cat "$work/commit"), checkout $(git rev-parse HEAD 2>/dev/null || echo unknown)"

# ---- 1. probe ------------------------------------------------------------------------------------
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.sm,clocks.max.sm --format=csv 2>&1 | tee -a "$log"
note "gpu $(nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>&1 | head -1)"
python=python3
note "python $($python -c 'import sys, torch; print(sys.version.split()[0], "torch", torch.__version__, "cuda", torch.version.cuda)' 2>&1 | tail -1)"
for tool in nvcc cmake ninja mpirun; do say "$tool: $(command -v $tool || echo absent)"; done

# The libraries t6's binaries load, given to them alone (never exported: this machine's PyTorch and
# Python must keep their own). This machine's copy of a library wins wherever it has one: its
# libstdc++ and libgomp are newer than the pack's Debian ones, and its Open MPI finds its own
# plugins. The pack's copy fills only what is missing.
system_has() { ldconfig -p 2>/dev/null | awk -v l="$1" '$1 == l {found = 1} END {exit !found}'; }
from_pack="$work/lib.used"
mkdir -p "$from_pack"
packed=()
for library in "$work"/lib/*.so* "$work"/lib/mpi/*.so*; do
  name=$(basename "$library")
  system_has "$name" && continue
  ln -sf "$library" "$from_pack/$name"
  packed+=("$name")
done
say "from the pack: ${packed[*]:-nothing}"
# The pack's Open MPI, when used, must load the plugins packed beside it, not look for them under
# Debian's paths.
if [[ -e "$from_pack/libmpi.so.40" ]]; then
  export OMPI_MCA_mca_base_component_path="$work/lib/openmpi-plugins" PMIX_MCA_mca_base_component_path="$work/lib/pmix-plugins"
  note "library Open MPI: the pack's (this machine has none), plugins from the pack"
fi
# cuBLASLt and NCCL: this machine's, from the loader's cache, the toolkit or PyTorch's wheels.
library_dirs=("$from_pack")
site_packages=$($python -c 'import site; print(" ".join(site.getsitepackages()))' 2>/dev/null)
for library in libcublasLt.so.13 libnccl.so.2; do
  found=$(ldconfig -p 2>/dev/null | awk -v l="$library" '$1 == l {print $NF; exit}')
  [[ -n "$found" ]] || found=$(find /usr/local/cuda* /usr/lib /opt /usr/local/lib $site_packages -name "$library" -print -quit 2>/dev/null)
  note "library $library: ${found:-NOT FOUND}"
  [[ -n "$found" ]] && library_dirs+=("$(dirname "$found")")
done
t6_library_path=$(IFS=:; echo "${library_dirs[*]}")
# A wrapper (timeout and mpirun run programs, not shell functions): `$t6 PROGRAM ARGS...`.
t6="$work/with_t6_libraries"
printf '#!/bin/sh\nLD_LIBRARY_PATH="%s${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" exec "$@"\n' "$t6_library_path" >"$t6"
chmod +x "$t6"
say "t6's LD_LIBRARY_PATH: $t6_library_path"
for binary in "$work"/bin/*; do
  missing=$("$t6" ldd "$binary" | grep 'not found' | awk '{print $1}' | tr '\n' ' ')
  [[ -n "$missing" ]] && note "FAIL $(basename "$binary") cannot load: $missing"
done
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
sanitizer=$(command -v compute-sanitizer || ls /usr/local/cuda/bin/compute-sanitizer /usr/local/cuda*/compute-sanitizer/compute-sanitizer 2>/dev/null | head -1)
say "compute-sanitizer: ${sanitizer:-absent}"

# ---- 2. tests ------------------------------------------------------------------------------------
# tests.txt (from gpu_pack.sh): one line per test binary, its name and its MPI ranks (1: no mpirun).
while read -r name ranks; do
  if ((ranks > 1)); then
    step 90 "$t6" mpirun -np "$ranks" --oversubscribe -x LD_LIBRARY_PATH "$work/bin/$name" --gtest_color=no
  else
    step 90 "$t6" "$work/bin/$name" --gtest_color=no
  fi
  status=$?
  counts=$(grep -E '^\[  (PASSED|FAILED|SKIPPED) +\] [0-9]+ tests?[.,]' "$last" | sort -u | tr '\n' ' ')
  note "test $name ($ranks rank$( ((ranks > 1)) && echo s)): $(outcome $status) $counts"
done <"$work/tests.txt"

# ---- 3. training on CUDA -------------------------------------------------------------------------
data=/tmp/t6_gpu_data/shakespeare runs=/tmp/t6_gpu_runs
rm -rf "$runs" && mkdir -p "$runs"
step 60 "$t6" "$work/bin/t6_preprocess" --input data_tools/corpora/tinyshakespeare.jsonl --output "$data" \
  --val-fraction 0.1 --overwrite
note "corpus for the runs: $(outcome $?)"
# First and last train loss of a run's metrics.jsonl, and the median tokens/s of its steps after the
# second (start-up, cuBLASLt's plans and the first batches are in the first ones).
summarise_run() {
  $python - "$1/metrics.jsonl" <<'PY'
import json, statistics, sys
steps = [r for r in map(json.loads, open(sys.argv[1])) if "loss" in r]
rates = [r["tokens_per_s"] for r in steps[2:]] or [r["tokens_per_s"] for r in steps]
print(f"steps={len(steps)} first_loss={steps[0]['loss']:.4f} last_loss={steps[-1]['loss']:.4f} "
      f"median_tok_s={statistics.median(rates):.0f} median_mfu={statistics.median(r['mfu'] for r in steps[2:] or steps):.3f}")
PY
}
step 120 "$t6" "$work/bin/t6_pretrain" --config configs/t6-demo.toml --run-dir "$runs/demo" \
  --set parallel.backend=cuda --set data.path="$data" --set train.max_steps=100 --set checkpoint.interval=0
status=$?
device_line=$(grep -m1 '  device ' "$last")
result=$([[ -f "$runs/demo/metrics.jsonl" ]] && summarise_run "$runs/demo" 2>&1)
if ((status == 0)) && $python -c 'import sys; w = dict(x.split("=") for x in sys.argv[1].split()); sys.exit(not float(w["last_loss"]) < float(w["first_loss"]) - 1)' "$result" 2>/dev/null; then
  note "t6-demo 100 steps on CUDA: pass, the loss falls: $result"
else
  ((status == 0)) && verdict="FAIL (the loss did not fall by 1)" || verdict=$(outcome $status)
  note "t6-demo 100 steps on CUDA: $verdict ${result:-no metrics} (see gpu_check.log)"
fi
[[ -n "$device_line" ]] && note "  ${device_line## }"

# ---- 4. benchmarks, each beside its reference ---------------------------------------------------
for pair in "t6 T6" "mha llama_mha"; do
  read -r config reference <<<"$pair"
  step 100 "$t6" "$work/bin/t6_pretrain" --config "configs/$config-small.toml" --run-dir "$runs/$config-small" \
    --set parallel.backend=cuda --set data.path="$data" --set train.global_batch_size=16 \
    --set train.micro_batch_size=16 --set train.max_steps=12 --set train.warmup_steps=2 --set eval.interval=0 \
    --set checkpoint.interval=0 --set log.interval=1
  status=$?
  device_line=$(grep -m1 '  device ' "$last")
  if ((status == 0)); then
    note "bench $config-small on CUDA, batch 16 x 1024: $(summarise_run "$runs/$config-small" 2>&1)"
    [[ -n "$device_line" ]] && note "  ${device_line## }"
  else
    note "bench $config-small on CUDA: $(outcome $status)"
  fi
  step 150 env PYTHONUNBUFFERED=1 $python "$work/anchors/bench_reference.py" $reference 16 1
  status=$?
  note "$(grep '^RESULT model=' "$last" || echo "bench_reference.py $reference: $(outcome $status)") (reference)"
done
for shape in "34 34" "12 12"; do
  read -r heads kv_heads <<<"$shape"
  step 60 "$t6" "$work/bin/bench_cuda_kernels" --batch 16 --seq 1024 --heads $heads --kv-heads $kv_heads --head-dim 64
  status=$?
  note "$(grep '^RESULT bench_cuda_kernels' "$last" || echo "bench_cuda_kernels: $(outcome $status)") heads=$heads"
  step 60 $python scripts/bench_sdpa.py 16 $heads $kv_heads 64 1024
  status=$?
  note "$(grep '^RESULT bench_sdpa' "$last" || echo "bench_sdpa: $(outcome $status)") heads=$heads"
done

# Decoding: the split-KV kernels over a bf16 cache, the GB/s of cache read beside the GPU's read
# bandwidth measured in the same call (bench_decode prints both).
step 90 "$t6" "$work/bin/bench_decode" --backend cuda --models t6,mha,gqa --contexts 8192,32768 --batches 1 \
  --steps 8 --cache-dtype bf16 --budget 8GiB
status=$?
note "$(grep '^RESULT bench_decode' "$last" || echo "bench_decode --backend cuda: $(outcome $status)")"

# ---- 5. memory and race checks of the attention kernels, if time is left ---------------------------
if [[ -n "$sanitizer" ]]; then
  for tool in memcheck racecheck; do
    step 60 "$t6" "$sanitizer" --tool $tool --error-exitcode 3 "$work/bin/test_cuda_ops" \
      --gtest_filter='Shapes/CudaAttention.*/0:Shapes/CudaAttention.*/2'
    note "compute-sanitizer $tool on attention (2 shapes): $(outcome $?)"
  done
else
  note "NOT RUN compute-sanitizer (not on PATH nor under /usr/local/cuda)"
fi
